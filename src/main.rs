//! `netdes`: the command-line front end. Glue only: parsing arguments, calling the
//! `scenarios` crate, printing, and choosing exit codes (0 ok, 1 run/output failure,
//! 2 invalid input).

use clap::{Parser, Subcommand};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "netdes",
    version,
    about = "Deterministic discrete-event network simulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and write summary.json (and trace.jsonl, pcaps) to the output directory.
    #[command(
        after_help = "Examples:\n  netdes run scenarios/examples/ping-two-routers.ron\n  netdes run lossy.ron --seed 7 --set 'links[1].loss=Bernoulli(0.05)' --trace"
    )]
    Run {
        file: PathBuf,
        /// Override the scenario's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Output directory (default out/<scenario name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Override a value: PATH=VALUE, e.g. links[0].delay=5ms (repeatable).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Write trace.jsonl.
        #[arg(long)]
        trace: bool,
        /// Stop after this many events (results are marked partial).
        #[arg(long)]
        max_events: Option<u64>,
        /// Stop after this many wall-clock seconds (results are marked partial).
        #[arg(long)]
        max_wall: Option<f64>,
        /// Print nothing on success.
        #[arg(long)]
        quiet: bool,
        /// Print summary.json to stdout instead of the human summary.
        #[arg(long)]
        json: bool,
    },
    /// Check a scenario for every error `run` would report, without running it.
    Check {
        file: PathBuf,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { file, set } => check(&file, &set),
        Command::Run {
            file,
            seed,
            out,
            set,
            trace,
            max_events,
            max_wall,
            quiet,
            json,
        } => {
            let opts = scenarios::RunOptions {
                seed,
                out_dir: out,
                trace,
                max_events,
                max_wall_s: max_wall,
            };
            run(&file, &set, opts, quiet, json)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

/// Loads FILE and makes every check `run` makes before it starts the simulation.
fn check(file: &Path, set: &[String]) -> Result<(), ExitCode> {
    let loaded = scenarios::load_file(file, set).map_err(invalid)?;
    scenarios::check(&loaded).map_err(invalid)?;
    let s = &loaded.scenario;
    print_out(&format!(
        "{}: ok ({} nodes, {} links, {} apps)\n",
        file.display(),
        s.nodes.0.len(),
        s.links.len(),
        s.apps.len()
    ))?;
    Ok(())
}

fn run(
    file: &Path,
    set: &[String],
    mut opts: scenarios::RunOptions,
    quiet: bool,
    json: bool,
) -> Result<(), ExitCode> {
    let loaded = scenarios::load_file(file, set).map_err(invalid)?;
    let out_dir = opts
        .out_dir
        .get_or_insert_with(|| PathBuf::from("out").join(&loaded.scenario.name))
        .clone();
    let o = scenarios::run(&loaded, &opts).map_err(|e| match e {
        scenarios::RunError::Scenario(e) => invalid(e),
        e => fail(&format!("error: {e}")),
    })?;
    if json {
        let s =
            serde_json::to_string_pretty(&o.summary).map_err(|e| fail(&format!("error: {e}")))?;
        print_out(&(s + "\n"))?;
    } else if !quiet {
        print_out(&reports::human_summary(
            &o.summary,
            &out_dir.display().to_string(),
        ))?;
    }
    Ok(())
}

/// Invalid input: the located message, exit code 2.
fn invalid(e: scenarios::ScenarioError) -> ExitCode {
    print_err(&e.to_string());
    ExitCode::from(2)
}

/// A run or output failure: the message, exit code 1.
fn fail(message: &str) -> ExitCode {
    print_err(message);
    ExitCode::from(1)
}

/// Writes `text` to stdout. A reader that went away (`netdes run --json FILE | head`) only
/// means nobody wants the rest: stop quietly with exit code 0. Any other write error is an
/// output failure (exit code 1). Never panics, unlike `print!`.
fn print_out(text: &str) -> Result<(), ExitCode> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(ExitCode::SUCCESS),
        Err(e) => Err(fail(&format!("error: cannot write to stdout: {e}"))),
    }
}

/// Writes a line to stderr, ignoring failure: there is nowhere left to report it.
fn print_err(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

//! `netdes`: the command-line front end. Glue only: parsing arguments, calling the
//! `scenarios` crate, printing, and choosing exit codes (0 ok, 1 run/output failure,
//! 2 invalid input).

use clap::{Parser, Subcommand};
use std::path::PathBuf;
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
    /// Check a scenario for errors without running it.
    Check {
        file: PathBuf,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file, set } => match scenarios::load_file(&file, &set) {
            Ok(l) => {
                println!(
                    "{}: ok ({} nodes, {} links, {} apps)",
                    file.display(),
                    l.scenario.nodes.0.len(),
                    l.scenario.links.len(),
                    l.scenario.apps.len()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
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
            let loaded = match scenarios::load_file(&file, &set) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let out_dir = out.unwrap_or_else(|| PathBuf::from("out").join(&loaded.scenario.name));
            let opts = scenarios::RunOptions {
                seed,
                out_dir: Some(out_dir.clone()),
                trace,
                max_events,
                max_wall_s: max_wall,
            };
            match scenarios::run(&loaded, &opts) {
                Ok(o) => {
                    if json {
                        match serde_json::to_string_pretty(&o.summary) {
                            Ok(s) => println!("{s}"),
                            Err(e) => {
                                eprintln!("error: {e}");
                                return ExitCode::from(1);
                            }
                        }
                    } else if !quiet {
                        print!(
                            "{}",
                            reports::human_summary(&o.summary, &out_dir.display().to_string())
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(scenarios::RunError::Scenario(e)) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

//! `netdes`: the command-line front end. Glue only: parsing arguments, calling the
//! `scenarios` crate, printing, and choosing exit codes (0 ok, 1 run/output failure,
//! 2 invalid input).

use clap::{Parser, Subcommand};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "netdes",
    version,
    about = "Deterministic discrete-event network simulator",
    long_about = "Deterministic discrete-event network simulator: scenarios are RON files; the same \
scenario and seed give the same events, bit for bit (trace_digest in summary.json).",
    after_help = "Examples:\n  netdes run scenarios/examples/ping-two-routers.ron\n  netdes run scenarios/examples/dumbbell.ron --set duration=5s --report\n  netdes check my-scenario.ron\n  netdes list cc\n  netdes sweep scenarios/sweeps/bulk-loss.ron --jobs 4\n\nExit codes: 0 success (also for runs cut short by --max-events/--max-wall: see `complete`),\n1 run or output failure (and `merge` with runs missing), 2 invalid input or usage.\n\nDocs: docs/tutorial.md (start here), docs/scenario-reference.md, docs/output.md, docs/sweeps.md."
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
        /// Write report.html (plots and tables) and the time series it shows.
        #[arg(long)]
        report: bool,
    },
    /// Check a scenario for every error `run` would report, without running it.
    #[command(
        after_help = "Prints `FILE: ok (N nodes, M links, K apps)` and exits 0, or the first error as\nFILE:LINE:COL: error: MESSAGE and exits 2.\n\nExamples:\n  netdes check scenarios/examples/lossy-udp-cbr.ron\n  netdes check my.ron --set 'links[0].queue=Red(limit: \"100 packets\")'"
    )]
    Check {
        file: PathBuf,
        /// Override a value: PATH=VALUE, e.g. links[0].delay=5ms (repeatable).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
    },
    /// List the apps, congestion controllers, queue disciplines and loss models, with their parameters.
    #[command(
        after_help = "Examples:\n  netdes list\n  netdes list cc\n  netdes list apps --json | jq '.apps[].name'"
    )]
    List {
        /// Only this part.
        #[arg(value_enum, default_value = "all")]
        what: ListWhat,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a parameter sweep: every point of a sweep file, for every seed, in parallel.
    #[command(
        after_help = "Results (in --out, default out/<sweep name>): sweep.json, results.jsonl, results.csv\n(one row per point and seed, written as each run finishes), aggregate.csv (mean, std dev,\n95% CI across seeds), report.html.\n\nExamples:\n  netdes sweep scenarios/sweeps/dumbbell-queue.ron --jobs 4\n  netdes sweep study.ron --out results/study --resume        # after an interruption\n  netdes sweep study.ron --out shard-3 --shard 3/8           # one of 8 machines\n  netdes merge --out results/study shard-*                   # combine the shards"
    )]
    Sweep {
        file: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Output directory (default out/<sweep name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Keep the results already in the output directory and run only the missing ones.
        #[arg(long)]
        resume: bool,
        /// Run only slice K of N (1-based), e.g. 3/8, for a cluster; combine with `netdes merge`.
        #[arg(long, value_name = "K/N")]
        shard: Option<scenarios::sweep::Shard>,
        /// Stop each run after this many events (its row is marked partial).
        #[arg(long)]
        max_events: Option<u64>,
        /// Stop each run after this many wall-clock seconds (its row is marked partial).
        #[arg(long)]
        max_wall: Option<f64>,
        /// Print nothing but errors (no progress, no summary).
        #[arg(long)]
        quiet: bool,
        /// Print a JSON summary of the sweep to stdout at the end.
        #[arg(long)]
        json: bool,
    },
    /// Merge the output directories of a sharded sweep into one, as a single machine would have written it.
    #[command(
        after_help = "Exit code 1 (after writing the merged files) when runs are still missing.\n\nExample:\n  netdes merge --out results/study shard-1 shard-2 shard-3"
    )]
    Merge {
        /// Output directory for the merged results.
        #[arg(long)]
        out: PathBuf,
        /// Sweep output directories (shards) to combine.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Print nothing but errors.
        #[arg(long)]
        quiet: bool,
        /// Print a JSON summary of the merge to stdout.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ListWhat {
    All,
    Apps,
    Cc,
    Queues,
    Loss,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { file, set } => check(&file, &set),
        Command::List { what, json } => list(what, json),
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
            report,
        } => {
            let opts = scenarios::RunOptions {
                seed,
                out_dir: out,
                trace,
                max_events,
                max_wall_s: max_wall,
                report,
            };
            run(&file, &set, opts, quiet, json)
        }
        Command::Sweep {
            file,
            jobs,
            out,
            resume,
            shard,
            max_events,
            max_wall,
            quiet,
            json,
        } => sweep(
            &file,
            SweepArgs {
                jobs,
                out,
                resume,
                shard,
                max_events,
                max_wall,
            },
            quiet,
            json,
        ),
        Command::Merge {
            out,
            dirs,
            quiet,
            json,
        } => merge(&out, &dirs, quiet, json),
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

fn list(what: ListWhat, json: bool) -> Result<(), ExitCode> {
    let c = scenarios::catalog::catalog();
    if json {
        let value = match what {
            ListWhat::All => serde_json::to_value(&c),
            ListWhat::Apps => serde_json::to_value(serde_json::json!({
                "apps": c.apps, "tcp_socket_options": c.tcp_socket_options
            })),
            ListWhat::Cc => serde_json::to_value(serde_json::json!({
                "congestion_controllers": c.congestion_controllers
            })),
            ListWhat::Queues => serde_json::to_value(serde_json::json!({
                "queue_disciplines": c.queue_disciplines
            })),
            ListWhat::Loss => {
                serde_json::to_value(serde_json::json!({ "loss_models": c.loss_models }))
            }
        };
        let text = value
            .and_then(|v| serde_json::to_string_pretty(&v))
            .map_err(|e| fail(&format!("error: {e}")))?;
        return print_out(&(text + "\n"));
    }
    let part = match what {
        ListWhat::All => "all",
        ListWhat::Apps => "apps",
        ListWhat::Cc => "cc",
        ListWhat::Queues => "queues",
        ListWhat::Loss => "loss",
    };
    print_out(&c.human(part))
}

struct SweepArgs {
    jobs: Option<usize>,
    out: Option<PathBuf>,
    resume: bool,
    shard: Option<scenarios::sweep::Shard>,
    max_events: Option<u64>,
    max_wall: Option<f64>,
}

fn sweep(file: &Path, a: SweepArgs, quiet: bool, json: bool) -> Result<(), ExitCode> {
    use scenarios::sweep::progress;
    let sweep = scenarios::sweep::Sweep::load(file).map_err(invalid)?;
    let opts = scenarios::sweep::SweepOptions {
        out_dir: a
            .out
            .unwrap_or_else(|| PathBuf::from("out").join(&sweep.name)),
        jobs: a.jobs,
        resume: a.resume,
        shard: a.shard,
        max_events: a.max_events,
        max_wall_s: a.max_wall,
        report: true,
    };
    let reporter: Box<dyn scenarios::sweep::Progress> = if quiet {
        Box::new(progress::Silent)
    } else if io::stderr().is_terminal() {
        Box::new(progress::Bar::new())
    } else {
        Box::new(progress::Lines::new(std::time::Duration::from_secs(1)))
    };
    let o = scenarios::sweep::run_sweep(&sweep, &opts, reporter.as_ref()).map_err(sweep_failed)?;
    print_sweep_outcome(&o, quiet, json)
}

fn merge(out: &Path, dirs: &[PathBuf], quiet: bool, json: bool) -> Result<(), ExitCode> {
    let o = scenarios::sweep::merge(out, dirs, true).map_err(sweep_failed)?;
    print_sweep_outcome(&o, quiet, json)?;
    if o.missing > 0 {
        print_err(&format!(
            "error: {} of {} runs are missing from the merged results",
            o.missing, o.total
        ));
        return Err(ExitCode::from(1));
    }
    Ok(())
}

fn print_sweep_outcome(
    o: &reports::sweep::SweepOutcome,
    quiet: bool,
    json: bool,
) -> Result<(), ExitCode> {
    if json {
        let s = serde_json::to_string_pretty(o).map_err(|e| fail(&format!("error: {e}")))?;
        print_out(&(s + "\n"))
    } else if quiet {
        Ok(())
    } else {
        print_out(&o.human())
    }
}

fn sweep_failed(e: scenarios::sweep::SweepError) -> ExitCode {
    use scenarios::sweep::SweepError as E;
    // Scenario errors already start with FILE:LINE:COL: error:.
    print_err(&match e {
        E::Input(_) | E::Point { .. } => e.to_string(),
        _ => format!("error: {e}"),
    });
    ExitCode::from(e.exit_code())
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

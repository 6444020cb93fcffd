//! The Linux anchor: real kernel TCP through an emulated dumbbell, to compare netdes's
//! TCP (and its BBR v1 port) with the kernel it models. `run.sh` beside `src/` builds the
//! topology (network namespaces, veths, tbf, TUN devices) and runs this program's parts in
//! it; this program owns the parts that move or count bytes:
//!
//! - `delay-line`: the propagation delay and random loss of both directions, over two TUN
//!   devices in the router namespace (what netem would do, which this kernel lacks);
//! - `sink` / `source`: N bulk TCP flows with a chosen congestion controller, byte counts
//!   per flow, and `ss -tin` samples of every sender socket;
//! - `report`: one JSON line from what the parts wrote;
//! - `netdes`: the same experiment in netdes (no root needed), as one JSON line of the
//!   same shape.
//!
//! It needs root (namespaces, TUN) and runs in real time, so it is a measurement tool,
//! never part of `cargo test`'s runs (its pure functions have unit tests).

mod delay_line;
mod netdes;
mod report;
mod ss;
mod traffic;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Linux anchor for netdes: parts run by tests/anchors/linux/run.sh")]
struct Cli {
    #[command(subcommand)]
    part: Part,
}

#[derive(Subcommand)]
enum Part {
    /// Delay (and, on the data path, random loss) between two pairs of TUN reads and writes.
    DelayLine(delay_line::Options),
    /// Accepts N connections and counts the bytes of each until a deadline.
    Sink(traffic::SinkOptions),
    /// Opens N connections and sends as fast as TCP lets it between two instants.
    Source(traffic::SourceOptions),
    /// Combines the parts' outputs into one JSON line.
    Report(report::Options),
    /// Runs the matching netdes dumbbell and prints the same JSON line.
    Netdes(netdes::Options),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.part {
        Part::DelayLine(o) => delay_line::run(&o),
        Part::Sink(o) => traffic::sink(&o),
        Part::Source(o) => traffic::source(&o),
        Part::Report(o) => report::run(&o),
        Part::Netdes(o) => netdes::run(&o),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("linux-anchor: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `value` as one JSON line to `path`.
fn write_json(path: &PathBuf, value: &serde_json::Value) -> std::io::Result<()> {
    std::fs::write(path, format!("{value}\n"))
}

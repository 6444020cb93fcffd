//! Runs a scenario with its event trace written, and reads `trace.jsonl` back as records
//! the tests can search (see docs/output.md for the record format).

use scenarios::{run, Loaded, Outcome, RunOptions};
use std::path::PathBuf;

/// One trace record: its time, node, event name, and the whole JSON object.
#[derive(Debug, Clone)]
pub struct Ev {
    pub t: u64,
    pub node: String,
    pub event: String,
    pub v: serde_json::Value,
}

impl Ev {
    /// The string field `k`, or "" if absent.
    pub fn s(&self, k: &str) -> String {
        self.v[k].as_str().unwrap_or_default().to_string()
    }
}

/// Runs `l` into an output directory of its own (named after the process and `tag`) with
/// the trace on; returns the outcome, the trace records in order, and the directory (which
/// holds the captures too; the caller removes it).
pub fn run_traced(l: &Loaded, tag: &str) -> (Outcome, Vec<Ev>, PathBuf) {
    let dir = std::env::temp_dir().join(format!("netdes-trace-{}-{tag}", std::process::id()));
    let o = run(
        l,
        &RunOptions {
            out_dir: Some(dir.clone()),
            trace: true,
            ..Default::default()
        },
    )
    .expect("scenario runs");
    let text = std::fs::read_to_string(dir.join("trace.jsonl")).expect("trace written");
    let evs = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON trace record");
            Ev {
                t: v["t_ns"].as_u64().expect("t_ns"),
                node: v["node"].as_str().expect("node").to_string(),
                event: v["event"].as_str().expect("event").to_string(),
                v,
            }
        })
        .collect();
    (o, evs, dir)
}

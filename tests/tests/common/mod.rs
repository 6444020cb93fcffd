//! Helpers shared by the end-to-end test binaries (each includes this with `mod common;`).

// Each test binary compiles its own copy and uses only some of the helpers.
#![allow(dead_code)]

pub mod bottleneck;

use scenarios::{run, Loaded, Outcome, RunOptions};

/// Runs `l` with an output directory of its own (named after the process and `tag`),
/// returns the outcome and the contents of the output `files` (e.g. "tcp-series.csv"),
/// and removes the directory.
pub fn run_and_read(l: &Loaded, tag: &str, files: &[&str]) -> (Outcome, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("netdes-test-{}-{tag}", std::process::id()));
    let o = run(
        l,
        &RunOptions {
            out_dir: Some(dir.clone()),
            ..Default::default()
        },
    )
    .expect("scenario runs");
    let texts = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f} written: {e}"))
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (o, texts)
}

/// The flow named `id` in a run's summary.
pub fn flow<'a>(o: &'a Outcome, id: &str) -> &'a reports::FlowSummary {
    o.summary
        .flows
        .iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("no flow {id}"))
}

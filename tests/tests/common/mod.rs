//! Helpers shared by the end-to-end test binaries (each includes this with `mod common;`).

// Each test binary compiles its own copy and uses only some of the helpers.
#![allow(dead_code)]

pub mod bottleneck;
pub mod cc_figures;
pub mod frames;
pub mod trace;

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

/// Like [`run_and_read`], for binary files (pcaps).
pub fn run_and_read_bytes(l: &Loaded, tag: &str, files: &[&str]) -> (Outcome, Vec<Vec<u8>>) {
    let dir = std::env::temp_dir().join(format!("netdes-test-{}-{tag}", std::process::id()));
    let o = run(
        l,
        &RunOptions {
            out_dir: Some(dir.clone()),
            ..Default::default()
        },
    )
    .expect("scenario runs");
    let bytes = files
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f} written: {e}")))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (o, bytes)
}

/// The frames of a pcap file written by netdes (nanosecond pcap, host byte order), with
/// their times in nanoseconds.
pub fn pcap_frames(pcap: &[u8]) -> Vec<(u64, Vec<u8>)> {
    assert!(pcap.len() >= 24, "no pcap header");
    let word = |at: usize| u32::from_ne_bytes(pcap[at..at + 4].try_into().unwrap());
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let t = u64::from(word(at)) * 1_000_000_000 + u64::from(word(at + 4));
        let len = word(at + 8) as usize;
        at += 16;
        frames.push((t, pcap[at..at + len].to_vec()));
        at += len;
    }
    assert_eq!(at, pcap.len(), "a truncated record");
    frames
}

/// Whether tshark is installed; without it the caller skips its cross-check, except under
/// CI, where `.ci/run` installs it and its absence is an error.
pub fn tshark_available() -> bool {
    let ok = std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok();
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "tshark must be installed in CI (.ci/run installs it)"
        );
        eprintln!("tshark not installed: skipping the tshark cross-check");
    }
    ok
}

/// Frames of `pcap` matching a tshark display filter.
pub fn tshark_count(pcap: &std::path::Path, filter: &str) -> usize {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-Y", filter, "-T", "fields", "-e", "frame.number"])
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// tshark reads the pcap without a malformed packet or an error-level expert note
/// (skipped when tshark is missing, except in CI).
pub fn tshark_no_malformed(pcap: &[u8]) {
    if !tshark_available() {
        return;
    }
    // Tests run in parallel threads: one file per call.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path =
        std::env::temp_dir().join(format!("netdes-tshark-{}-{call}.pcap", std::process::id()));
    std::fs::write(&path, pcap).unwrap();
    let bad = tshark_count(&path, "_ws.malformed || _ws.expert.severity == error");
    let _ = std::fs::remove_file(&path);
    assert_eq!(bad, 0, "malformed frames");
}

/// The node named `name` in a run's summary.
pub fn node<'a>(o: &'a Outcome, name: &str) -> &'a reports::NodeSummary {
    o.summary
        .nodes
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("no node {name}"))
}

/// The first address of `name` in a run's summary, without its prefix length.
pub fn addr(o: &Outcome, name: &str) -> String {
    node(o, name).addresses[0]
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The DNS counter `k` of node `name` (0 if it never counted).
pub fn dns_counter(o: &Outcome, name: &str, k: &str) -> u64 {
    node(o, name).dns.get(k).copied().unwrap_or(0)
}

//! Golden digests: the `trace_digest` of every example scenario at its default seed is
//! checked in as `tests/golden/digests.txt`, one line per example:
//!
//! ```text
//! <file-name> <seed> <trace_digest>
//! ```
//!
//! sorted by file name. Equal digests mean identical behaviour (see `docs/output.md`), so
//! this test catches any change to what a run does, intended or not. When a change is
//! intended, re-bless and commit the new file with the change that caused it:
//!
//! ```sh
//! NETDES_BLESS=1 cargo test -p netdes-tests --test golden
//! ```

use scenarios::{load_file, run, RunOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const BLESS: &str = "NETDES_BLESS=1 cargo test -p netdes-tests --test golden";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples")
}

fn golden_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/digests.txt")
}

/// (seed, trace_digest) of one run.
type Golden = (u64, String);

/// Runs every example at its default seed: file name -> (seed, digest).
fn actual_digests() -> BTreeMap<String, Golden> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("scenarios/examples exists")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let l = load_file(p, &[]).unwrap_or_else(|e| panic!("{e}"));
            let o =
                run(&l, &RunOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, (o.summary.seed, o.summary.trace_digest))
        })
        .collect()
}

fn render(digests: &BTreeMap<String, Golden>) -> String {
    digests
        .iter()
        .map(|(name, (seed, digest))| format!("{name} {seed} {digest}\n"))
        .collect()
}

/// Parses the golden file. Malformed lines are returned as problems.
fn parse(text: &str) -> (BTreeMap<String, Golden>, Vec<String>) {
    let mut golden = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [name, seed, digest] if seed.parse::<u64>().is_ok() => {
                let entry = (seed.parse().unwrap(), digest.to_string());
                if golden.insert(name.to_string(), entry).is_some() {
                    problems.push(format!("line {}: {name} is listed twice", i + 1));
                }
            }
            _ => problems.push(format!(
                "line {}: expected `<file-name> <seed> <trace_digest>`, found `{line}`",
                i + 1
            )),
        }
    }
    (golden, problems)
}

fn bless_requested() -> bool {
    std::env::var("NETDES_BLESS").is_ok_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn every_example_matches_its_golden_digest() {
    let actual = actual_digests();
    assert!(!actual.is_empty(), "no examples in scenarios/examples");
    let path = golden_file();
    if bless_requested() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, render(&actual)).unwrap();
        eprintln!("blessed {} examples into {}", actual.len(), path.display());
        return;
    }
    let (text, mut problems) = match std::fs::read_to_string(&path) {
        Ok(text) => (text, Vec::new()),
        Err(e) => (
            String::new(),
            vec![format!("cannot read the golden file: {e}")],
        ),
    };
    let (golden, malformed) = parse(&text);
    problems.extend(malformed);
    for (name, (seed, digest)) in &actual {
        match golden.get(name) {
            None => problems.push(format!(
                "{name}: new example without a golden line (now: seed {seed}, digest {digest})"
            )),
            Some((gseed, gdigest)) if (gseed, gdigest) != (seed, digest) => problems.push(format!(
                "{name}: changed: golden seed {gseed}, digest {gdigest}; \
                     now seed {seed}, digest {digest}"
            )),
            Some(_) => {}
        }
    }
    for name in golden.keys().filter(|n| !actual.contains_key(*n)) {
        problems.push(format!(
            "{name}: golden line for an example that no longer exists"
        ));
    }
    if problems.is_empty() && text != render(&actual) {
        problems.push("the file is not in canonical form (sorted, one line each)".into());
    }
    assert!(
        problems.is_empty(),
        "{} does not match the examples:\n  {}\n\nA changed digest means the run behaves \
         differently. If that is intended, re-bless with\n  {BLESS}\nand commit the new \
         file together with the change.",
        path.display(),
        problems.join("\n  ")
    );
}

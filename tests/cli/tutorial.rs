//! docs/tutorial.md works as written: every ```sh block runs, in order, as a bash script
//! (errors are fatal) from a scratch directory where `scenarios/` is the repository's,
//! with the netdes under test first on PATH. A line `! COMMAND` must exit with code 2.

use std::path::Path;

/// The ```sh blocks of a Markdown text, in order.
fn sh_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// `! COMMAND` lines become a check that COMMAND exits with code 2.
fn script(block: &str) -> String {
    let mut s = String::from("set -euo pipefail\n");
    for line in block.lines() {
        match line.strip_prefix("! ") {
            Some(cmd) => s.push_str(&format!(
                "set +e; {cmd}; rc=$?; set -e; [ \"$rc\" -eq 2 ] || {{ echo \"expected exit code 2, got $rc: {}\" >&2; exit 1; }}\n",
                cmd.replace('"', "\\\"").replace('$', "\\$")
            )),
            None => {
                s.push_str(line);
                s.push('\n');
            }
        }
    }
    s
}

#[test]
fn every_command_of_the_tutorial_works() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/tutorial.md")).unwrap();
    let blocks = sh_blocks(&text);
    assert!(blocks.len() >= 8, "{} blocks", blocks.len());
    let dir = std::env::temp_dir().join(format!("netdes-tutorial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(root.join("scenarios"), dir.join("scenarios")).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_netdes"))
        .parent()
        .unwrap()
        .to_path_buf();
    let mut path = vec![bin];
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(path).unwrap();
    for (i, block) in blocks.iter().enumerate() {
        let o = std::process::Command::new("bash")
            .arg("-c")
            .arg(script(block))
            .current_dir(&dir)
            .env("PATH", &path)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "tutorial block {} failed:\n{block}\nstdout:\n{}\nstderr:\n{}",
            i + 1,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // What the text says the commands produce.
    for f in [
        "out/ping-two-routers/summary.json",
        "out/ping-two-routers/link-r1-r2.pcap",
        "out/bottleneck/report.html",
        "out/bottleneck/tcp-series.csv",
        "out/queue-study/report.html",
        "out/queue-study/results.csv",
    ] {
        assert!(dir.join(f).exists(), "{f}");
    }
    let results = std::fs::read_to_string(dir.join("out/queue-study/results.csv")).unwrap();
    assert_eq!(results.lines().count(), 1 + 24);
    let agg = std::fs::read_to_string(dir.join("out/queue-study/aggregate.csv")).unwrap();
    assert_eq!(agg.lines().count(), 1 + 6);
    let _ = std::fs::remove_dir_all(&dir);
}

//! The command line as a user meets it: exit codes and located error messages.
//! Each file in tests/broken/ starts with `// expect: LINE:COL TEXT`.

use std::path::Path;
use std::process::Command;

fn netdes() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netdes"))
}

#[test]
fn every_broken_scenario_is_rejected_with_a_located_message_and_exit_code_2() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("// expect: "))
            .expect("expect header");
        let (pos, words) = expect.split_once(' ').unwrap_or((expect, ""));
        for cmd in ["check", "run"] {
            let mut c = netdes();
            c.arg(cmd).arg(&path);
            if cmd == "run" {
                c.args(["--out", "/tmp/netdes-broken"]);
            }
            let out = c.output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{}: {err}", path.display());
            assert!(
                !err.contains("panicked") && !err.contains("backtrace"),
                "{err}"
            );
            let located = format!("{}:{pos}: error:", path.display());
            assert!(
                err.starts_with(&located),
                "{}: expected `{located}`, got: {err}",
                path.display()
            );
            assert!(
                err.contains(words.trim()),
                "{}: expected `{words}` in: {err}",
                path.display()
            );
        }
        n += 1;
    }
    assert!(n >= 12, "{n} broken scenarios");
}

#[test]
fn run_writes_summary_and_trace_and_exit_code_0() {
    let out = std::env::temp_dir().join(format!("netdes-cli-{}", std::process::id()));
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/examples/ping-two-routers.ron");
    let o = netdes()
        .arg("run")
        .arg(&ex)
        .arg("--out")
        .arg(&out)
        .args(["--trace", "--set", "apps[0].count=2"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("2 packets transmitted, 2 received"),
        "{stdout}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for key in [
        "seed",
        "sim_time_s",
        "events",
        "wall_s",
        "trace_digest",
        "flows",
        "links",
    ] {
        assert!(summary.get(key).is_some(), "summary.json lacks {key}");
    }
    let trace = std::fs::read_to_string(out.join("trace.jsonl")).unwrap();
    for line in trace.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            v["t_ns"].is_u64() && v["node"].is_string() && v["event"].is_string(),
            "{line}"
        );
    }
    assert!(out.join("link-r1-r2.pcap").exists());
    let bad_set = netdes()
        .arg("run")
        .arg(&ex)
        .args(["--set", "links[9].delay=1ms"])
        .output()
        .unwrap();
    assert_eq!(bad_set.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&out);
}

//! The command line as a user meets it: exit codes and located error messages.
//! Each file in tests/broken/ starts with `// expect: LINE:COL TEXT`.

use std::path::Path;
use std::process::Command;

mod report;
mod sweep;
mod tutorial;

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
    assert!(n >= 20, "{n} broken scenarios");
}

/// Errors that only building the network finds (subnet conflicts, gateways off every
/// subnet) must be reported by `check` exactly as `run` reports them.
#[test]
fn check_reports_build_time_errors_exactly_like_run() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    for name in ["conflicting-subnets.ron", "gateway-off-subnet.ron"] {
        let path = dir.join(name);
        let out_dir = std::env::temp_dir().join(format!("netdes-build-{}", std::process::id()));
        let check = netdes().arg("check").arg(&path).output().unwrap();
        let run = netdes()
            .arg("run")
            .arg(&path)
            .arg("--out")
            .arg(&out_dir)
            .output()
            .unwrap();
        let check_err = String::from_utf8_lossy(&check.stderr);
        let run_err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "run {name}: {run_err}");
        assert_eq!(check.status.code(), Some(2), "check {name}: {check_err}");
        assert!(check.stdout.is_empty(), "check {name} printed ok");
        assert_eq!(check_err, run_err, "{name}: check and run disagree");
        assert!(
            check_err.starts_with(&format!("{}:", path.display())),
            "{check_err}"
        );
        let _ = std::fs::remove_dir_all(&out_dir);
    }
}

/// `netdes run --json FILE | head -c 10`: the reader goes away before the summary is
/// printed. The binary must not panic on EPIPE; it stops quietly with exit code 0.
#[test]
fn run_json_into_a_closed_pipe_exits_quietly_without_panicking() {
    let out = std::env::temp_dir().join(format!("netdes-epipe-{}", std::process::id()));
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/examples/ping-two-routers.ron");
    // 20 000 ping replies make the JSON summary (about 1.5 MB) far larger than a pipe buffer,
    // so printing it hits the closed pipe whenever the reader was closed.
    let mut child = netdes()
        .arg("run")
        .arg(&ex)
        .arg("--out")
        .arg(&out)
        .args(["--json", "--set", "apps[0].count=20000"])
        .args(["--set", "apps[0].interval=100us"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Read a little, as `head -c 10` would, then close the read end.
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 10];
    std::io::Read::read_exact(&mut stdout, &mut head).unwrap();
    assert_eq!(head[0], b'{');
    drop(stdout);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.is_empty(), "expected no message, got: {err}");
    assert!(out.join("summary.json").exists());
    let _ = std::fs::remove_dir_all(&out);
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

/// `--set` creates a map the file does not have when the path names its key in brackets:
/// here the scenario-wide `sysctl`, so every host sends with TTL 1 and the first router
/// answers time exceeded.
#[test]
fn set_adds_a_sysctl_map_the_file_lacks() {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/examples/ping-two-routers.ron");
    assert!(!std::fs::read_to_string(&ex).unwrap().contains("sysctl"));
    let out = std::env::temp_dir().join(format!("netdes-cli-ttl-{}", std::process::id()));
    let o = netdes()
        .arg("run")
        .arg(&ex)
        .arg("--out")
        .arg(&out)
        .args(["--set", "apps[0].count=2"])
        .args(["--set", "sysctl[\"ip_default_ttl\"]=1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        stdout.matches("Time to live exceeded").count(),
        2,
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// A run stopped by --max-events exits 0 and says, in summary.json and on stdout, that its
/// results are partial.
#[test]
fn bounded_runs_are_marked_partial() {
    let out = std::env::temp_dir().join(format!("netdes-partial-{}", std::process::id()));
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/examples/tcp-bulk-lossy.ron");
    let o = netdes()
        .arg("run")
        .arg(&ex)
        .arg("--out")
        .arg(&out)
        .args(["--max-events", "300"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("(PARTIAL: stopped early)"), "{stdout}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["complete"], false);
    assert_eq!(s["stop_reason"], "max_events");
    assert_eq!(s["events"], 300);
    let _ = std::fs::remove_dir_all(&out);
}

/// Help shows examples for every command, and `list` shows what scenarios can use.
#[test]
fn help_has_examples_and_list_shows_the_catalog() {
    for cmd in [
        &[][..],
        &["run"],
        &["check"],
        &["sweep"],
        &["merge"],
        &["list"],
    ] {
        let o = netdes().args(cmd).arg("--help").output().unwrap();
        assert_eq!(o.status.code(), Some(0));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("Example"), "netdes {cmd:?} --help: {text}");
        assert!(text.contains("netdes "), "{text}");
    }
    let o = netdes().arg("list").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "TcpBulk",
        "cubic",
        "bbr",
        "CoDel",
        "GilbertElliott",
        "max_p",
        "keep_idle",
    ] {
        assert!(text.contains(needle), "netdes list lacks {needle}");
    }
    let o = netdes().args(["list", "cc", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["congestion_controllers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    for cc in ["bbr", "cubic", "newreno", "reno"] {
        assert!(names.contains(&cc), "{names:?}");
    }
    let o = netdes().args(["list", "nonsense"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
}

//! `netdes sweep` and `netdes merge` through the real binary: identical results whatever
//! the number of jobs, shards merged byte for byte, a killed sweep resumed without losing
//! or repeating a finished run, and bounds marking rows partial.

use super::netdes;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A scratch directory of this test process, emptied.
fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netdes-sweep-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A sweep of 2 x 4 points x `replications` seeds over a short lossy TCP transfer, written
/// into `dir`.
fn sweep_file(dir: &Path, replications: u32) -> PathBuf {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/examples/tcp-bulk-lossy.ron");
    let text = format!(
        r#"Sweep(
    name: "t",
    base: {base:?},
    set: ["apps[1].bytes=300KB", "links[0].capture=false"],
    axes: [
        Axis(name: "cc", path: "apps[1].cc", values: ["newreno", "cubic"]),
        Axis(name: "loss", path: "links[0].loss", range: Log(from: 0.001, to: 0.03, steps: 4), format: "Bernoulli({{}})"),
    ],
    replications: {replications},
    metrics: {{ "goodput": "flows[bulk].goodput_bps", "retrans": "sum(flows[*].retransmits)" }},
)"#,
        base = base.display().to_string()
    );
    let f = dir.join("t.ron");
    std::fs::write(&f, text).unwrap();
    f
}

fn sweep(file: &Path, out: &Path, extra: &[&str]) -> Output {
    netdes()
        .arg("sweep")
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(0), "stderr: {err}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const FILES: [&str; 4] = [
    "sweep.json",
    "results.jsonl",
    "results.csv",
    "aggregate.csv",
];

fn read(dir: &Path, f: &str) -> String {
    std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{}/{f}: {e}", dir.display()))
}

fn assert_same_files(a: &Path, b: &Path) {
    for f in FILES {
        assert!(
            read(a, f) == read(b, f),
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

#[test]
fn sweep_results_are_identical_for_any_jobs_and_for_merged_shards() {
    let dir = scratch("jobs");
    let file = sweep_file(&dir, 3);
    let one = dir.join("one");
    let two = dir.join("two");
    let summary = ok(&sweep(&file, &one, &["--jobs", "1", "--json"]));
    let s: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(
        (s["total"].as_u64(), s["ran"].as_u64()),
        (Some(24), Some(24))
    );
    ok(&sweep(&file, &two, &["--jobs", "2", "--quiet"]));
    assert_same_files(&one, &two);

    let results = read(&one, "results.jsonl");
    assert_eq!(results.lines().count(), 24);
    let keys: Vec<(u64, u64)> = results
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["point"].as_u64().unwrap(), v["seed"].as_u64().unwrap())
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "canonical order: by point, then seed");
    let csv = read(&one, "results.csv");
    assert_eq!(
        csv.lines().next(),
        Some("point,seed,cc,loss,goodput,retrans,complete,stop_reason,trace_digest")
    );
    assert!(csv
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("0,1,newreno,Bernoulli(0.001),"));
    let agg = read(&one, "aggregate.csv");
    assert_eq!(agg.lines().count(), 1 + 8);
    assert!(agg.starts_with(
        "point,cc,loss,runs,partial,goodput_mean,goodput_std,goodput_ci95,goodput_n,"
    ));
    // Seeds differ, so replications differ: the spread is real.
    let first: Vec<&str> = agg.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(first[3], "3");
    assert!(first[6].parse::<f64>().unwrap() > 0.0, "{agg}");

    // Three shards on "three machines", merged.
    let mut shards = Vec::new();
    for k in 1..=3 {
        let d = dir.join(format!("shard-{k}"));
        let out = ok(&sweep(
            &file,
            &d,
            &["--shard", &format!("{k}/3"), "--jobs", "1"],
        ));
        assert!(out.contains("16 runs are not in these results"), "{out}");
        assert_eq!(read(&d, "results.jsonl").lines().count(), 8);
        shards.push(d);
    }
    let merged = dir.join("merged");
    let o = netdes()
        .arg("merge")
        .arg("--out")
        .arg(&merged)
        .args(&shards)
        .output()
        .unwrap();
    ok(&o);
    assert_same_files(&one, &merged);

    // Two shards only: merged files are written, but the merge says what is missing.
    let partial = dir.join("partial");
    let o = netdes()
        .arg("merge")
        .arg("--out")
        .arg(&partial)
        .args(&shards[..2])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("8 of 24 runs are missing"));
    assert_eq!(read(&partial, "results.jsonl").lines().count(), 16);

    // A directory of another sweep is refused.
    let other = dir.join("other");
    let file2 = sweep_file(&dir, 1);
    ok(&sweep(&file2, &other, &["--quiet"]));
    let o = netdes()
        .arg("merge")
        .arg("--out")
        .arg(dir.join("bad"))
        .arg(&one)
        .arg(&other)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("hold different sweeps"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_killed_sweep_resumes_without_losing_or_repeating_a_run() {
    let dir = scratch("kill");
    let file = sweep_file(&dir, 6);
    let reference = dir.join("reference");
    ok(&sweep(&file, &reference, &["--jobs", "2", "--quiet"]));

    let out = dir.join("killed");
    let mut child = netdes()
        .arg("sweep")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(["--jobs", "1", "--quiet"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let results = out.join("results.jsonl");
    let started = std::time::Instant::now();
    loop {
        let n = std::fs::read_to_string(&results).map_or(0, |t| t.lines().count());
        if n >= 5 {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 120,
            "no results after two minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let kept = read(&out, "results.jsonl");
    let kept_rows = kept.lines().filter(|l| l.ends_with('}')).count();
    assert!((5..48).contains(&kept_rows), "{kept_rows} rows at the kill");
    // Every complete line is a finished run.
    for l in kept.lines().take(kept_rows) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["trace_digest"].as_str().map(str::len), Some(32));
    }

    // Without --resume, the results are not overwritten.
    let o = sweep(&file, &out, &["--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));

    let summary = ok(&sweep(&file, &out, &["--resume", "--jobs", "2", "--json"]));
    let s: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(s["reused"].as_u64(), Some(kept_rows as u64), "{summary}");
    assert_eq!(s["ran"].as_u64(), Some(48 - kept_rows as u64), "{summary}");
    assert_same_files(&reference, &out);

    // Resuming a finished sweep runs nothing and changes nothing.
    let summary = ok(&sweep(&file, &out, &["--resume", "--json"]));
    let s: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(s["ran"].as_u64(), Some(0));
    assert_same_files(&reference, &out);

    // A changed sweep file is not resumed into old results.
    let changed = read(&dir, "t.ron").replace("300KB", "301KB");
    std::fs::write(&file, changed).unwrap();
    let o = sweep(&file, &out, &["--resume", "--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("different sweep"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sweep_bounds_mark_rows_partial_and_bad_points_fail_before_any_run() {
    let dir = scratch("bounds");
    let file = sweep_file(&dir, 1);
    let out = dir.join("out");
    let text = ok(&sweep(&file, &out, &["--max-events", "500"]));
    assert!(text.contains("8 runs were cut short"), "{text}");
    for l in read(&out, "results.jsonl").lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["complete"], false);
        assert_eq!(v["stop_reason"], "max_events");
    }
    assert!(read(&out, "aggregate.csv")
        .lines()
        .nth(1)
        .unwrap()
        .contains(",1,1,"));

    // A value that makes an invalid scenario: the located error names the point.
    let bad = read(&dir, "t.ron").replace(
        r#"values: ["newreno", "cubic"]"#,
        r#"values: ["newreno", "nosuchcc"]"#,
    );
    std::fs::write(&file, bad).unwrap();
    let out = dir.join("bad");
    let o = sweep(&file, &out, &["--quiet"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unknown congestion control \"nosuchcc\""),
        "{err}"
    );
    assert!(
        err.contains("(sweep point 4: cc=nosuchcc, loss=Bernoulli(0.001))"),
        "{err}"
    );
    assert!(!out.join("results.jsonl").exists() || read(&out, "results.jsonl").is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// PATH with the netdes binary under test first, as the recipes call `netdes`.
fn path_with_netdes() -> std::ffi::OsString {
    let bin = Path::new(env!("CARGO_BIN_EXE_netdes"))
        .parent()
        .unwrap()
        .to_path_buf();
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

/// The Slurm recipe, with Slurm's variables set as a 3-task array would set them, and the
/// GNU parallel recipe: both give the single-machine results byte for byte.
#[test]
fn the_cluster_recipes_in_the_docs_reproduce_the_single_machine_results() {
    let dir = scratch("recipes");
    let file = sweep_file(&dir, 2);
    let single = dir.join("single");
    ok(&sweep(&file, &single, &["--quiet"]));
    let recipes = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/recipes");

    let prefix = dir.join("slurm");
    for k in 1..=3 {
        let o = std::process::Command::new("bash")
            .arg(recipes.join("slurm-sweep.sh"))
            .arg(&file)
            .arg(&prefix)
            .env("PATH", path_with_netdes())
            .env("SLURM_ARRAY_TASK_ID", k.to_string())
            .env("SLURM_ARRAY_TASK_COUNT", "3")
            .env("SLURM_CPUS_PER_TASK", "2")
            .output()
            .unwrap();
        ok(&o);
    }
    let merged = dir.join("slurm-merged");
    let shards: Vec<PathBuf> = (1..=3)
        .map(|k| dir.join(format!("slurm.shard-{k}")))
        .collect();
    ok(&netdes()
        .arg("merge")
        .arg("--out")
        .arg(&merged)
        .args(&shards)
        .output()
        .unwrap());
    assert_same_files(&single, &merged);

    let has_parallel = std::process::Command::new("parallel")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_parallel && std::env::var_os("CI").is_none() {
        eprintln!("skipping the GNU parallel recipe: `parallel` is not installed");
    } else {
        let out = dir.join("par");
        let o = std::process::Command::new("bash")
            .arg(recipes.join("parallel-sweep.sh"))
            .arg(&file)
            .arg(&out)
            .arg("4")
            .env("PATH", path_with_netdes())
            .output()
            .unwrap();
        ok(&o);
        assert_same_files(&single, &out);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

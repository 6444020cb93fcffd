//! The dumbbell of `../shared/anchors/ns3/run.sh`, in netdes, optionally side by side with
//! ns-3 3.37 on identical parameters.
//!
//! ```text
//! cargo bench -p scenarios --bench dumbbell -- --flows=10 --cc=cubic --bw=100 --delay=10 \
//!     --duration=30 [--loss=0.01] [--queue=100] [--seed=1] [--flow-cc=cubic,bbr] [--ns3] \
//!     [--repeat=5]
//! cargo bench -p scenarios --bench dumbbell -- --suite [--ns3] [--repeat=5]
//! ```
//!
//! Prints one JSON line per case with netdes's per-flow and total goodput (Mb/s, bytes
//! received by each sink over duration - 0.1 s, as the anchor measures), its event count
//! and the wall time of the run (the fastest of `--repeat` identical runs). With `--ns3` it also runs the anchor (which installs
//! libns3-dev and compiles it on first use) and adds ns-3's goodput and wall time and the
//! ratios. `--suite` runs the cases of BENCHMARKS.md: 1 flow x 100 Mb/s x 10 s, 10 x 100
//! Mb/s x 30 s and 100 x 1 Gb/s x 10 s, for each registered controller among newreno,
//! cubic and bbr. See `scenarios::dumbbell` for the topology.

use scenarios::dumbbell::Dumbbell;
use scenarios::{load_str, run, RunOptions};
use std::process::Command;

fn ns3_name(cc: &str) -> &'static str {
    match cc {
        "newreno" => "TcpNewReno",
        "reno" => "TcpLinuxReno",
        "cubic" => "TcpCubic",
        "bbr" => "TcpBbr",
        _ => "TcpNewReno",
    }
}

fn arg<'a>(args: &'a [String], key: &str) -> Option<&'a str> {
    let prefix = format!("--{key}=");
    args.iter().find_map(|a| a.strip_prefix(prefix.as_str()))
}

fn parse<T: std::str::FromStr>(args: &[String], key: &str, default: T) -> T {
    match arg(args, key) {
        Some(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("--{key}={v}: not a valid value");
            std::process::exit(2)
        }),
        None => default,
    }
}

struct Measured {
    goodputs: Vec<f64>,
    events: u64,
    wall_s: f64,
}

/// Runs the case `repeat` times and keeps the fastest wall time: the runs are identical
/// (same seed, same trace), so the spread is the machine's noise alone.
fn run_netdes(d: &Dumbbell, repeat: u32) -> Measured {
    let l = load_str("dumbbell.ron", &d.to_ron(), &[]).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let run_once = || {
        run(&l, &RunOptions::default()).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        })
    };
    let o = run_once();
    let mut fastest = o.summary.wall_s;
    for _ in 1..repeat {
        fastest = fastest.min(run_once().summary.wall_s);
    }
    Measured {
        goodputs: o
            .summary
            .flows
            .iter()
            .map(|f| d.goodput_bps(f.rx_bytes) / 1e6)
            .collect(),
        events: o.summary.events,
        wall_s: fastest,
    }
}

/// Runs the ns-3 anchor; `None` (with a message) if it is not available.
fn run_ns3(d: &Dumbbell) -> Option<serde_json::Value> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/anchors/ns3/run.sh");
    let mut c = Command::new("bash");
    c.arg(&script)
        .arg(format!("--flows={}", d.flows))
        .arg(format!("--cc={}", ns3_name(&d.cc)))
        .arg(format!("--bw={}", d.bottleneck_mbps))
        .arg(format!("--delay={}", d.delay_ms))
        .arg(format!("--duration={}", d.duration_s))
        .arg(format!("--queue={}", d.queue_packets))
        .arg(format!("--seed={}", d.seed));
    if d.loss > 0.0 {
        c.arg(format!("--loss={}", d.loss));
    }
    let out = match c.output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            eprintln!("ns-3 anchor failed: {}", String::from_utf8_lossy(&o.stderr));
            return None;
        }
        Err(e) => {
            eprintln!("cannot run {}: {e}", script.display());
            return None;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))?;
    serde_json::from_str(line).ok()
}

fn case(d: &Dumbbell, with_ns3: bool, repeat: u32) {
    let m = run_netdes(d, repeat);
    let total: f64 = m.goodputs.iter().sum();
    let mut line = serde_json::json!({
        "cc": d.cc, "flows": d.flows, "bw_mbps": d.bottleneck_mbps, "delay_ms": d.delay_ms,
        "duration_s": d.duration_s, "loss": d.loss, "queue": d.queue_packets, "seed": d.seed,
        "netdes": {
            "total_goodput_mbps": (total * 1000.0).round() / 1000.0,
            "goodput_mbps": m.goodputs.iter().map(|g| (g * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            "events": m.events,
            "wall_s": (m.wall_s * 1e4).round() / 1e4,
            "runs": repeat,
        },
    });
    if with_ns3 {
        if let Some(n) = run_ns3(d) {
            let ns3_wall = n["wall_s"].as_f64().unwrap_or(f64::NAN);
            let ns3_total = n["total_goodput_mbps"].as_f64().unwrap_or(f64::NAN);
            line["ns3"] = n;
            line["wall_ratio"] = serde_json::json!((ns3_wall / m.wall_s * 10.0).round() / 10.0);
            line["goodput_ratio"] =
                serde_json::json!((total / ns3_total * 1000.0).round() / 1000.0);
        }
    }
    println!("{line}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let with_ns3 = args.iter().any(|a| a == "--ns3");
    let repeat: u32 = parse(&args, "repeat", 1);
    if args.iter().any(|a| a == "--suite") {
        let registered = protocols::tcp::cc::names();
        for cc in ["newreno", "cubic", "bbr"] {
            if !registered.iter().any(|n| n == cc) {
                eprintln!("{cc} is not available yet: skipped");
                continue;
            }
            for (flows, bw, duration) in [(1, 100.0, 10.0), (10, 100.0, 30.0), (100, 1000.0, 10.0)]
            {
                let d = Dumbbell {
                    flows,
                    cc: cc.into(),
                    bottleneck_mbps: bw,
                    duration_s: duration,
                    ..Dumbbell::default()
                };
                case(&d, with_ns3, repeat);
            }
        }
        return;
    }
    let d = Dumbbell {
        flows: parse(&args, "flows", 1),
        cc: arg(&args, "cc").unwrap_or("newreno").to_string(),
        bottleneck_mbps: parse(&args, "bw", 100.0),
        delay_ms: parse(&args, "delay", 10.0),
        duration_s: parse(&args, "duration", 10.0),
        loss: parse(&args, "loss", 0.0),
        queue_packets: parse(&args, "queue", 100),
        seed: parse(&args, "seed", 1),
        flow_cc: arg(&args, "flow-cc")
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        ..Dumbbell::default()
    };
    case(&d, with_ns3, repeat);
}

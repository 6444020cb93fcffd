//! Wall time to simulate one bulk TCP flow: 100 Mb/s for 60 simulated seconds through a
//! router with a 250-packet drop-tail bottleneck queue (NewReno, named on the sender since
//! the default is CUBIC; otherwise Linux defaults, SACK and timestamps on), so the flow
//! runs the classic sawtooth with fast recoveries.
//!
//! `cargo bench -p scenarios --bench tcp_bulk [-- RUNS]` prints, for the median of RUNS
//! runs (default 5): wall seconds, data segments sent, nanoseconds of wall time per data
//! segment, scheduler events per second and the flow's goodput. No output files are
//! written and tracing is off, as in a sweep. See BENCHMARKS.md.

use scenarios::{load_str, run, RunOptions};

const SCENARIO: &str = r#"Scenario(
    name: "tcp-bulk-100mbps-60s",
    duration: "60s",
    nodes: {
        "a": Host(sysctl: { "tcp_congestion_control": "newreno" }),
        "r": Router(),
        "b": Host(),
    },
    links: [
        Link(a: "a", b: "r", rate: "1Gbps", delay: "1ms"),
        Link(a: "r", b: "b", rate: "100Mbps", delay: "10ms",
             queue: DropTail(limit: "250 packets")),
    ],
    apps: [
        TcpSink(on: "b", port: 5001),
        TcpBulk(name: "bulk", from: "a", to: "b:5001", bytes: "10GB"),
    ],
)"#;

fn main() {
    // `cargo bench` passes `--bench`; the only argument we take is a number of runs.
    let runs = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(5)
        .max(1);
    let loaded = match load_str("tcp-bulk.ron", SCENARIO, &[]) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut samples = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        let o = match run(&loaded, &RunOptions::default()) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
        samples.push(o.summary.wall_s);
        last = Some(o);
    }
    samples.sort_by(f64::total_cmp);
    let wall = samples[samples.len() / 2];
    let Some(o) = last else { return };
    let Some(flow) = o.summary.flows.first() else {
        eprintln!("the scenario has no flow");
        std::process::exit(1);
    };
    let segments = flow.tx_packets;
    println!("tcp bulk 100 Mb/s x 60 s, median of {runs} runs");
    println!(
        "  wall time          {wall:.3} s (min {:.3}, max {:.3})",
        samples[0],
        samples[samples.len() - 1]
    );
    println!("  data segments      {segments}");
    println!(
        "  wall per segment   {:.0} ns",
        wall * 1e9 / segments.max(1) as f64
    );
    println!(
        "  events             {} ({:.2} M/s)",
        o.summary.events,
        o.summary.events as f64 / wall / 1e6
    );
    println!(
        "  goodput            {:.2} Mb/s, {} retransmits",
        flow.goodput_bps / 1e6,
        flow.retransmits.unwrap_or(0)
    );
    println!("  trace digest       {}", o.summary.trace_digest);
}

//! TCP Vegas against its published operating point (Brakmo & Peterson, "TCP Vegas: End to
//! End Congestion Avoidance on a Global Internet", IEEE JSAC 13(8), 1995): once per round
//! trip Vegas estimates how many of its segments sit in queues, Diff = (Expected -
//! Actual) x BaseRTT, and adds or removes one segment of window to keep Diff between
//! alpha and beta, so each connection keeps alpha to beta segments queued at the
//! bottleneck, loses nothing to a deep buffer, and keeps the link busy. Linux's
//! `tcp_vegas.c` uses alpha = 2, beta = 4 and counts whole segments (Diff is rounded
//! down, so the band is 2 <= Diff < 5).
//!
//! Each flow's share of the queue comes from Little's law: a flow that gets a fraction
//! s of the link has, on average, s times the packets waiting.
//!
//! The long runs are `#[ignore]`d in the default test run; CI runs them in release mode:
//!
//! ```text
//! cargo test --release -p netdes-tests --test validation_vegas -- --ignored --nocapture
//! ```

mod common;

use common::bottleneck::{self, Measured};

/// Linux's thresholds.
const ALPHA: f64 = 2.0;
const BETA: f64 = 4.0;

/// N Vegas flows into a 1000-packet drop-tail queue for `duration_s`, measured from
/// `warmup_s`. Returns the measurement and each flow's mean queued packets.
fn run_vegas(n: usize, duration_s: f64, warmup_s: f64, stagger_ms: u64) -> (Measured, Vec<f64>) {
    let queue = r#"DropTail(limit: "1000p")"#;
    let ron = bottleneck::dumbbell(n, "vegas", queue, duration_s, stagger_ms);
    let m = bottleneck::measure(&ron, warmup_s, duration_s, 0.1);
    let total: u64 = m.flow_bytes.iter().sum();
    let per_flow = m
        .flow_bytes
        .iter()
        .map(|b| m.queue_mean * *b as f64 / total.max(1) as f64)
        .collect();
    (m, per_flow)
}

/// How far `x` is outside [lo, hi], relative to the band's middle (0 inside).
fn outside(x: f64, lo: f64, hi: f64) -> f64 {
    let mid = (lo + hi) / 2.0;
    if x < lo {
        (x - lo) / mid
    } else if x > hi {
        (x - hi) / mid
    } else {
        0.0
    }
}

/// A short run in every `cargo test`: two flows, no loss, a busy link, and each flow's
/// share of the queue within Vegas' band.
#[test]
fn vegas_keeps_each_flow_between_alpha_and_beta_queued() {
    let (m, per_flow) = run_vegas(2, 4.0, 2.0, 0);
    println!("{m:?} {per_flow:?}");
    assert_eq!(m.drops, 0);
    assert!(m.utilization > 0.99, "{m:?}");
    for q in &per_flow {
        assert!(*q >= ALPHA - 0.5 && *q < BETA + 1.5, "{per_flow:?}");
    }
}

/// One to eight flows started together, over 30 s after a 5 s warm-up: every flow's
/// queued packets against [alpha, beta + 1), the total queue against [N alpha,
/// N (beta + 1)). Then four flows started 10 ms apart, where the last one's base RTT is
/// wrong.
#[test]
#[ignore = "long: run with --ignored in release (CI does)"]
fn vegas_queues_alpha_to_beta_segments_per_flow_as_published() {
    println!(
        "Vegas (Brakmo & Peterson 1995; Linux alpha = {ALPHA}, beta = {BETA}): C x RTT = {:.1} packets, 1000-packet drop-tail queue",
        bottleneck::bdp_packets()
    );
    println!(
        "  flows  queue (packets)  per flow (packets)                         utilization  drops"
    );
    let mut worst: f64 = 0.0;
    for n in [1usize, 2, 4, 8] {
        let (m, per_flow) = run_vegas(n, 35.0, 5.0, 0);
        let shown: Vec<String> = per_flow.iter().map(|q| format!("{q:.2}")).collect();
        println!(
            "  {n:>5}  {:>15.2}  {:<42}  {:>11.4}  {:>5}",
            m.queue_mean,
            shown.join(" "),
            m.utilization,
            m.drops
        );
        println!(
            "         published: {}..{} per flow, {}..{} in all; error (outside the band, of its middle): {:+.1}%",
            ALPHA,
            BETA + 1.0,
            ALPHA * n as f64,
            (BETA + 1.0) * n as f64,
            outside(m.queue_mean, ALPHA * n as f64, (BETA + 1.0) * n as f64) * 100.0
        );
        assert_eq!(m.drops, 0);
        assert!(m.utilization > 0.99, "{m:?}");
        for q in &per_flow {
            worst = worst.max(outside(*q, ALPHA, BETA + 1.0).abs());
        }
        worst = worst.max(outside(m.queue_mean, ALPHA * n as f64, (BETA + 1.0) * n as f64).abs());
    }
    assert!(worst < 0.15, "outside the band by {:.1}%", worst * 100.0);

    // Vegas' known weakness (Mo et al. 1999; Low, Peterson and Wang 2002): a flow that
    // starts while a queue stands takes that queue for propagation delay, underestimates
    // its Diff and keeps more queued than beta, at the others' expense.
    let (m, per_flow) = run_vegas(4, 35.0, 5.0, 10);
    let shown: Vec<String> = per_flow.iter().map(|q| format!("{q:.2}")).collect();
    println!(
        "  flows started 10 ms apart: queue {:.2}, per flow {} (the last one's base RTT includes the queue the others built)",
        m.queue_mean,
        shown.join(" ")
    );
    assert!(m.utilization > 0.99 && m.drops == 0, "{m:?}");
    assert!(per_flow[3] > BETA + 1.0, "{per_flow:?}");
}

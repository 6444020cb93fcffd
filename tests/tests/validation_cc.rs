//! Congestion control against published models (RB-CC-*). Every check prints the
//! published value, the simulated value and the relative error, and fails beyond the
//! tolerance the issue sets.
//!
//! These runs simulate many minutes of traffic, so they are `#[ignore]`d in the default
//! test run; CI runs them in release mode:
//!
//! ```text
//! cargo test --release -p netdes-tests --test validation_cc -- --ignored --nocapture
//! ```

use scenarios::dumbbell::Dumbbell;
use scenarios::{load_str, run, RunOptions};

const MSS_BITS: f64 = 1448.0 * 8.0;

/// Mean goodput (b/s) of one flow over `seeds` runs of `d`.
fn mean_goodput(d: &Dumbbell, seeds: u64) -> f64 {
    let mut total = 0.0;
    for seed in 1..=seeds {
        let d = Dumbbell { seed, ..d.clone() };
        let l = load_str("dumbbell.ron", &d.to_ron(), &[]).expect("loads");
        let o = run(&l, &RunOptions::default()).expect("runs");
        total += d.goodput_bps(o.summary.flows[0].rx_bytes);
    }
    total / seeds as f64
}

/// Padhye et al. 1998 (PFTK), full model without the receive-window cap: packets per
/// second for loss p, round trip `rtt`, `b` packets per growth step and timeout `t0`.
/// For small p it is Mathis et al. 1997: sqrt(3/(2b)) / (rtt sqrt(p)).
fn pftk_bps(p: f64, rtt: f64, b: f64, t0: f64) -> f64 {
    let denom = rtt * (2.0 * b * p / 3.0).sqrt()
        + t0 * (1.0f64).min(3.0 * (3.0 * b * p / 8.0).sqrt()) * p * (1.0 + 32.0 * p * p);
    MSS_BITS / denom
}

fn mathis_bps(p: f64, rtt: f64, c: f64) -> f64 {
    MSS_BITS / rtt * c / p.sqrt()
}

/// RB-CC-01: NewReno's throughput under random loss follows Mathis / PFTK.
///
/// The model's `b` is how many segments of acknowledgement make the window grow by one
/// segment per round trip. Linux's Reno counts acknowledged segments, not ACKs
/// (`tcp_cong_avoid_ai`), so delayed ACKs do not slow its growth: b = 1 with and without
/// delayed ACKs (C = sqrt(3/2)). The C = sqrt(3/4) of the delayed-ACK model describes
/// implementations that count ACKs (ns-3's TcpNewReno, old BSD); its error is printed
/// for reference. Path: 100 Mb/s, RTT 100 ms, a 1000-packet queue so that only the random
/// loss limits the flow, 4 seeds per point.
#[test]
#[ignore = "long: run with --ignored in release (CI does)"]
fn newreno_throughput_follows_mathis_and_pftk() {
    let rtt = 0.1;
    // Linux's RTO: SRTT + max(4 RTTVAR, 200 ms), about 0.3 s on this path.
    let t0 = 0.3;
    println!(
        "RB-CC-01  NewReno vs PFTK (b = 1, T0 = {t0} s), RTT {} ms",
        rtt * 1e3
    );
    println!(
        "  loss   delack  published Mb/s  simulated Mb/s  error   (ACK-counting model, error)"
    );
    let mut worst: f64 = 0.0;
    for p in [0.001, 0.005, 0.01, 0.02] {
        for delayed_ack in [true, false] {
            let model = pftk_bps(p, rtt, 1.0, t0);
            // Enough time for about 300 loss events.
            let duration = (300.0 / (p * model / MSS_BITS)).clamp(60.0, 900.0).round();
            let d = Dumbbell {
                cc: "newreno".into(),
                bottleneck_mbps: 100.0,
                delay_ms: 48.0,
                queue_packets: 1000,
                loss: p,
                duration_s: duration,
                delayed_ack,
                ..Dumbbell::default()
            };
            let sim = mean_goodput(&d, 4);
            let err = sim / model - 1.0;
            let ack_model = if delayed_ack {
                mathis_bps(p, rtt, (3.0f64 / 4.0).sqrt())
            } else {
                mathis_bps(p, rtt, (3.0f64 / 2.0).sqrt())
            };
            println!(
                "  {:5.1}%  {:6}  {:14.3}  {:14.3}  {:+6.1}%  ({:.3}, {:+.1}%)",
                p * 100.0,
                if delayed_ack { "on" } else { "off" },
                model / 1e6,
                sim / 1e6,
                err * 100.0,
                ack_model / 1e6,
                (sim / ack_model - 1.0) * 100.0
            );
            worst = worst.max(err.abs());
        }
    }
    assert!(worst <= 0.20, "worst error {:.1}% > 20%", worst * 100.0);
}

/// Mean window (segments) over `seeds` runs: goodput x RTT / MSS.
fn mean_window(d: &Dumbbell, seeds: u64, rtt: f64) -> f64 {
    mean_goodput(d, seeds) * rtt / MSS_BITS
}

/// RB-CC-02: CUBIC's average window under random loss follows RFC 9438 section 5:
/// AVG_W = (C(3+beta)/(4(1-beta)))^(1/4) RTT^(3/4) / p^(3/4) segments in the cubic
/// region, and never less than the Reno-friendly AIMD(alpha, beta) window
/// sqrt(alpha (1+beta) / (2 (1-beta) p)) with alpha = 3(1-beta)/(1+beta). Checked in the
/// cubic region (RTT 200 ms, loss 0.01% and 0.02%) and the Reno-friendly region (RTT
/// 10 ms, loss 0.2% and 0.5%), 2 seeds each, tolerance 25%.
#[test]
#[ignore = "long: run with --ignored in release (CI does)"]
fn cubic_average_window_follows_rfc_9438() {
    let (c, beta) = (0.4f64, 0.7f64);
    let alpha = 3.0 * (1.0 - beta) / (1.0 + beta);
    println!("RB-CC-02  CUBIC average window vs RFC 9438 section 5 (segments)");
    println!("  RTT     loss    region         published  simulated  error");
    let mut worst: f64 = 0.0;
    for (delay_ms, p, duration) in [
        (98.0f64, 0.0001f64, 600.0f64),
        (98.0, 0.0002, 400.0),
        (3.0, 0.002, 200.0),
        (3.0, 0.005, 200.0),
    ] {
        let rtt = 2.0 * (2.0 + delay_ms) / 1e3;
        let cubic =
            (c * (3.0 + beta) / (4.0 * (1.0 - beta))).powf(0.25) * rtt.powf(0.75) / p.powf(0.75);
        let reno = (alpha * (1.0 + beta) / (2.0 * (1.0 - beta) * p)).sqrt();
        let (model, region) = if cubic >= reno {
            (cubic, "cubic")
        } else {
            (reno, "Reno-friendly")
        };
        let d = Dumbbell {
            cc: "cubic".into(),
            bottleneck_mbps: 100.0,
            delay_ms,
            queue_packets: 3000,
            loss: p,
            duration_s: duration,
            ..Dumbbell::default()
        };
        let sim = mean_window(&d, 2, rtt);
        let err = sim / model - 1.0;
        println!(
            "  {:4.0} ms  {:5.2}%  {:13}  {:9.1}  {:9.1}  {:+6.1}%",
            rtt * 1e3,
            p * 100.0,
            region,
            model,
            sim,
            err * 100.0
        );
        worst = worst.max(err.abs());
    }
    assert!(worst <= 0.25, "worst error {:.1}% > 25%", worst * 100.0);
}

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

mod common;

use common::cc_figures::{goodputs, jain, mean_srtt_ms, payload_capacity_bps};

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

/// RB-CC-04: BBR under random loss (Cardwell et al. 2016: 100 Mb/s, 100 ms, 60 s) keeps
/// the link rate x (1 - p): at least 90% of it up to 5% loss, 75% at 15%; CUBIC's rate
/// at 1% loss is at least 10 times below its lossless rate.
///
/// Both hosts may grow their socket buffers to 32 MiB (Linux 6.16's `tcp_rmem` maximum;
/// the ns-3 anchor uses 16 MiB), so that the controller, not the buffers, limits the
/// flow: with 5% or more loss the data behind unrepaired holes (SACKed, not yet
/// acknowledged) fills Linux's default 4 MB send buffer after Startup's overshoot, which
/// is printed for reference at 5%.
///
/// One seed per point up to 5%; at 15% the median of five seeds, as BBR v1's Startup
/// there is bimodal (docs/validation.md): when a loss in the initial window is found
/// during its compressed ACK train, packet conservation cuts the window to the three or
/// four segments pacing had let out, Startup sees three rounds without growth and ends
/// near 1 Mb/s, and at that rate the long-term sampler takes the random loss for a
/// policer. Seeds 1 and 5 do that; the other three reach the link.
#[test]
#[ignore = "long: run with --ignored in release (CI does)"]
fn bbr_keeps_the_link_rate_under_random_loss() {
    let capacity = payload_capacity_bps(100.0);
    let base = Dumbbell {
        bottleneck_mbps: 100.0,
        delay_ms: 48.0,
        duration_s: 60.0,
        tcp_buffer_max: Some(32 << 20),
        ..Dumbbell::default()
    };
    println!("RB-CC-04  goodput under random loss, 100 Mb/s, RTT 100 ms, 60 s (Mb/s)");
    println!("  cc      loss   capacity x (1-p)  simulated  share");
    for (p, required, seeds) in [
        (0.001, 0.90, 1),
        (0.01, 0.90, 1),
        (0.02, 0.90, 1),
        (0.05, 0.90, 1),
        (0.15, 0.75, 5),
    ] {
        let target = capacity * (1.0 - p);
        let mut shares: Vec<(u64, f64)> = (1..=seeds)
            .map(|seed| {
                let d = Dumbbell {
                    cc: "bbr".into(),
                    loss: p,
                    seed,
                    ..base.clone()
                };
                (seed, goodputs(&d)[0])
            })
            .collect();
        for &(seed, sim) in &shares {
            println!(
                "  bbr    {:5.1}%  {:16.2}  {:9.2}  {:5.1}%  seed {seed}",
                p * 100.0,
                target / 1e6,
                sim / 1e6,
                100.0 * sim / target
            );
        }
        shares.sort_by(|a, b| a.1.total_cmp(&b.1));
        let share = shares[shares.len() / 2].1 / target;
        let which = if seeds > 1 { "median share" } else { "share" };
        println!(
            "  bbr    {:5.1}%  {which} {:.1}%, required >= {:.0}%",
            p * 100.0,
            share * 100.0,
            required * 100.0
        );
        assert!(
            share >= required,
            "BBR at {}% loss: {:.1}%",
            p * 100.0,
            share * 100.0
        );
    }
    let default_buffers = goodputs(&Dumbbell {
        cc: "bbr".into(),
        loss: 0.05,
        tcp_buffer_max: None,
        ..base.clone()
    })[0];
    println!(
        "  bbr      5.0%  {:16.2}  {:9.2}  {:5.1}%  Linux's default buffers (reported)",
        capacity * 0.95 / 1e6,
        default_buffers / 1e6,
        100.0 * default_buffers / (capacity * 0.95)
    );
    let lossless = goodputs(&Dumbbell {
        cc: "cubic".into(),
        ..base.clone()
    })[0];
    let lossy = goodputs(&Dumbbell {
        cc: "cubic".into(),
        loss: 0.01,
        ..base.clone()
    })[0];
    println!(
        "  cubic   0.0%  {:16.2}  {:9.2}\n  cubic   1.0%  {:16.2}  {:9.2}  lossless / lossy = {:.1} (published >= 10)",
        capacity / 1e6,
        lossless / 1e6,
        capacity * 0.99 / 1e6,
        lossy / 1e6,
        lossless / lossy
    );
    assert!(lossless >= 10.0 * lossy);
}

/// Fairness: 4 and 16 flows of one controller, started together, share a 100 Mb/s,
/// 24 ms bottleneck with a one-BDP (200-packet) drop-tail queue; Jain's index of their
/// 60-second goodputs is at least 0.95 for NewReno and CUBIC. BBR v1's index there is
/// reported: with 16 flows in a buffer of one BDP or less they lose 10-14% of their
/// packets, and BBR's long-term sampler takes that for a policer and pins flows at the
/// rates Startup left them (0.61-0.85 over five seeds here; Linux 6.18's BBR on the Linux
/// anchor, 0.57-0.75: docs/validation.md). In a 10-BDP queue BBR v1 must reach 0.95 too.
#[test]
#[ignore = "long: run with --ignored in release (CI does)"]
fn flows_of_one_controller_share_fairly() {
    println!("Fairness  Jain's index over 60 s, 100 Mb/s, RTT 24 ms, 200-packet queue");
    println!("  cc       flows  Jain    total Mb/s  min..max Mb/s");
    for cc in ["newreno", "cubic", "bbr"] {
        for flows in [4usize, 16] {
            let d = Dumbbell {
                flows,
                cc: cc.into(),
                delay_ms: 10.0,
                queue_packets: 200,
                duration_s: 60.0,
                ..Dumbbell::default()
            };
            let g = goodputs(&d);
            let j = jain(&g);
            let lo = g.iter().cloned().fold(f64::MAX, f64::min);
            let hi = g.iter().cloned().fold(0.0, f64::max);
            println!(
                "  {cc:8} {flows:5}  {j:.4}  {:10.2}  {:.2}..{:.2}",
                g.iter().sum::<f64>() / 1e6,
                lo / 1e6,
                hi / 1e6
            );
            if cc != "bbr" {
                assert!(j >= 0.95, "{cc} x {flows}: Jain {j:.4}");
            }
        }
    }
    // BBR v1 in a 10-BDP queue, where it loses nothing and its long-term sampler stays
    // idle: there its flows converge, as Linux's do (0.95-1.00 on the Linux anchor).
    println!("  BBR in a 2000-packet (10-BDP) queue:");
    for flows in [4usize, 16] {
        let d = Dumbbell {
            flows,
            cc: "bbr".into(),
            delay_ms: 10.0,
            queue_packets: 2000,
            duration_s: 60.0,
            ..Dumbbell::default()
        };
        let g = goodputs(&d);
        let j = jain(&g);
        println!(
            "  bbr      {flows:5}  {j:.4}  {:10.2}",
            g.iter().sum::<f64>() / 1e6
        );
        assert!(j >= 0.95, "bbr x {flows}, deep queue: Jain {j:.4}");
    }
    // CUBIC against BBR, two flows each, on a shallow and a deep buffer.
    for queue in [100u32, 2000] {
        let d = Dumbbell {
            flows: 4,
            flow_cc: vec!["cubic".into(), "bbr".into(), "cubic".into(), "bbr".into()],
            delay_ms: 10.0,
            queue_packets: queue,
            duration_s: 60.0,
            ..Dumbbell::default()
        };
        let g = goodputs(&d);
        let cubic = g[0] + g[2];
        let bbr = g[1] + g[3];
        println!(
            "  2 cubic vs 2 bbr, {queue}-packet queue: cubic {:.1}%, bbr {:.1}% of {:.2} Mb/s",
            100.0 * cubic / (cubic + bbr),
            100.0 * bbr / (cubic + bbr),
            (cubic + bbr) / 1e6
        );
        assert!(cubic + bbr >= 0.9 * payload_capacity_bps(100.0));
    }
}

/// RB-CC-05: behind a deep buffer (100 Mb/s, RTT 40 ms, 2000 packets: six BDPs, 242 ms
/// of queue when full) CUBIC keeps the queue 70-100% full, while BBR after Startup keeps
/// it near empty: its queueing delay (mean SRTT after the first 10 s minus the base RTT)
/// is at most a quarter of CUBIC's.
#[test]
#[ignore = "long: run with --ignored in release (CI does)"]
fn bbr_keeps_a_deep_buffer_nearly_empty() {
    let base_rtt_ms = 40.0;
    let full_ms = 2000.0 * 1514.0 * 8.0 / 100e6 * 1e3;
    let mut delay = Vec::new();
    for cc in ["cubic", "bbr"] {
        let d = Dumbbell {
            cc: cc.into(),
            delay_ms: 18.0,
            queue_packets: 2000,
            duration_s: 60.0,
            record: Some("(tcp_series: true)".into()),
            ..Dumbbell::default()
        };
        let l = load_str("dumbbell.ron", &d.to_ron(), &[]).expect("loads");
        let (o, files) = common::run_and_read(&l, &format!("deep-{cc}"), &["tcp-series.csv"]);
        let queueing = mean_srtt_ms(&files[0], 10.0) - base_rtt_ms;
        println!(
            "RB-CC-05  {cc:5}: goodput {:6.2} Mb/s, queueing delay {queueing:6.1} ms ({:5.1}% of a full queue)",
            d.goodput_bps(o.summary.flows[0].rx_bytes) / 1e6,
            100.0 * queueing / full_ms
        );
        delay.push(queueing);
    }
    let (cubic, bbr) = (delay[0], delay[1]);
    println!(
        "RB-CC-05  BBR / CUBIC queueing delay: {:.3} (published: at most 0.25)",
        bbr / cubic
    );
    assert!(cubic >= 0.7 * full_ms, "CUBIC's queue {cubic:.1} ms");
    assert!(
        bbr <= 0.25 * cubic,
        "BBR {bbr:.1} ms vs CUBIC {cubic:.1} ms"
    );
}

//! BBRv3 (`bbr3`) against its published behaviour: draft-ietf-ccwg-bbr-06's design goals
//! and models, and the published evaluations of BBRv3 next to BBR v1 and CUBIC. Every
//! check prints the published value, the simulated value and the relative error (or
//! the ratio a claim is about), and BBR v1 (`bbr`) runs on the same paths for the
//! comparisons the BBRv3 work was about.
//!
//! These runs simulate minutes of traffic, so they are `#[ignore]`d in the default test
//! run; CI runs them in release mode:
//!
//! ```text
//! cargo test --release -p netdes-tests --test validation_bbr3 -- --ignored --nocapture --test-threads=1
//! ```

mod common;

use common::cc_figures::{goodputs, jain, mean_srtt_ms, payload_capacity_bps};

use scenarios::dumbbell::Dumbbell;
use scenarios::load_str;

fn rel_err(published: f64, measured: f64) -> f64 {
    measured / published - 1.0
}

/// The draft's model of BBRv3 under random loss p below its 2% threshold (sections
/// 5.3.3.8.3 and 5.5.10.3): each round of ProbeBW_CRUISE with loss cuts the short-term
/// model to what the last round delivered, (1 - p) of it, and every probe (REFILL, UP)
/// restores the full rate; probes come every min(2.5 s on average, 62.5 rounds). The
/// share of link x (1 - p) is then the mean of (1 - p)^n over the cruise rounds of a
/// cycle, with `probe_rounds` rounds of REFILL and UP at the full rate, less ProbeRTT's
/// 2% (section 5.3.4.2).
fn draft_loss_model_share(p: f64, rtt_s: f64, probe_rounds: f64) -> f64 {
    let cruise = (2.5 / rtt_s).min(62.5);
    let decayed: f64 = if p > 0.0 {
        (1.0 - (1.0 - p).powf(cruise)) / p
    } else {
        cruise
    };
    (decayed + probe_rounds) / (cruise + probe_rounds) * 0.98
}

/// RB-CC-04 setup (100 Mb/s, RTT 100 ms, 100-packet queue, 60 s) with random loss.
/// Published: BBRv3 keeps high throughput with average loss up to 1% (draft 3.1: "full
/// throughput ... achieved with average packet loss rates of up to 1%", and its loss
/// model of section 5.3.3.8.3, [`draft_loss_model_share`]; Gomez et al., Computer
/// Communications 2024: high throughput at 1% loss), and stops probing, backing off, when
/// a round loses more than 2% (draft 2.8, `BBR.LossThresh`), where BBR v1 keeps its rate
/// up to 5-15% (Cardwell et al. 2016). Checked: at 0.1% and 1% the share of link x (1 - p)
/// is within 25% of the draft's model; at 2% (the threshold itself) it is reported; at 5%
/// and 15% BBRv3 gets less than a quarter of its own rate at 1% (and at 5% less than half
/// of BBR v1's, which holds its rate there); CUBIC at 1% is far below BBRv3.
#[test]
#[ignore = "long: run with --ignored in release (CI does)"]
fn bbr3_keeps_its_rate_below_the_loss_threshold_and_backs_off_above() {
    let capacity = payload_capacity_bps(100.0);
    let base = Dumbbell {
        bottleneck_mbps: 100.0,
        delay_ms: 48.0,
        duration_s: 60.0,
        ..Dumbbell::default()
    };
    println!("BBRv3 under random loss: 100 Mb/s, RTT 100 ms, 100-packet queue, 60 s (Mb/s)");
    println!("  loss   capacity x (1-p)  bbr3     share   draft model  error    bbr (v1)  share");
    let mut rows = Vec::new();
    for p in [0.001, 0.01, 0.02, 0.05, 0.15] {
        let target = capacity * (1.0 - p);
        let v3 = goodputs(&Dumbbell {
            cc: "bbr3".into(),
            loss: p,
            ..base.clone()
        })[0];
        let v1 = goodputs(&Dumbbell {
            cc: "bbr".into(),
            loss: p,
            ..base.clone()
        })[0];
        let model = draft_loss_model_share(p, 0.1, 6.0);
        let share = v3 / target;
        let err = if p < 0.02 {
            format!("{:+6.1}%", rel_err(model, share) * 100.0)
        } else if p == 0.02 {
            "at thr.".into()
        } else {
            "  above".into()
        };
        println!(
            "  {:5.1}%  {:16.2}  {:7.2}  {:5.1}%  {:10.1}%  {err}  {:8.2}  {:5.1}%",
            p * 100.0,
            target / 1e6,
            v3 / 1e6,
            share * 100.0,
            model * 100.0,
            v1 / 1e6,
            100.0 * v1 / target
        );
        rows.push((p, share, model, v3, v1));
    }
    let cubic = goodputs(&Dumbbell {
        cc: "cubic".into(),
        loss: 0.01,
        ..base.clone()
    })[0];
    let v3_at_1 = rows[1].3;
    println!(
        "  cubic at 1%: {:.2} Mb/s, bbr3 / cubic = {:.1}",
        cubic / 1e6,
        v3_at_1 / cubic
    );
    for &(p, share, model, _, _) in &rows[..2] {
        assert!(
            rel_err(model, share).abs() <= 0.25,
            "bbr3 at {}%: {share:.3} vs model {model:.3}",
            p * 100.0
        );
    }
    // BBR v1 keeps its rate at 5% here; at 15% ours collapses too (docs/validation.md).
    let (v3_at_5, v1_at_5) = (rows[3].3, rows[3].4);
    assert!(
        v3_at_5 < 0.5 * v1_at_5,
        "at 5%: bbr3 {v3_at_5:.0} vs bbr {v1_at_5:.0}"
    );
    for &(p, _, _, v3, _) in &rows[3..] {
        assert!(v3 < 0.25 * v3_at_1, "at {}%: bbr3 {v3:.0}", p * 100.0);
    }
    assert!(v3_at_1 >= 5.0 * cubic);
}

/// RB-CC-05 setup (100 Mb/s, RTT 40 ms, a 2000-packet drop-tail queue: six BDPs, 242 ms
/// when full, 60 s). Published: BBRv3 "consistently keeps low queue occupancy" with deep
/// buffers (Gomez et al. 2024), bounded by its cwnd gain to at most one BDP of queue
/// (draft 3.2: queue at most 1.5 BDP; cwnd_gain 2), while CUBIC fills the buffer; the
/// RB-CC-05 criterion: queueing delay at most a quarter of CUBIC's.
#[test]
#[ignore = "long: run with --ignored in release (CI does)"]
fn bbr3_keeps_a_deep_buffer_nearly_empty() {
    let base_rtt_ms = 40.0;
    let full_ms = 2000.0 * 1514.0 * 8.0 / 100e6 * 1e3;
    let mut delay = Vec::new();
    for cc in ["cubic", "bbr", "bbr3"] {
        let d = Dumbbell {
            cc: cc.into(),
            delay_ms: 18.0,
            queue_packets: 2000,
            duration_s: 60.0,
            record: Some("(tcp_series: true)".into()),
            ..Dumbbell::default()
        };
        let l = load_str("dumbbell.ron", &d.to_ron(), &[]).expect("loads");
        let (o, files) = common::run_and_read(&l, &format!("deep3-{cc}"), &["tcp-series.csv"]);
        let queueing = mean_srtt_ms(&files[0], 10.0) - base_rtt_ms;
        println!(
            "Deep buffer  {cc:5}: goodput {:6.2} Mb/s, queueing delay {queueing:6.1} ms ({:5.1}% of a full queue, {:4.2} base RTTs)",
            d.goodput_bps(o.summary.flows[0].rx_bytes) / 1e6,
            100.0 * queueing / full_ms,
            queueing / base_rtt_ms
        );
        delay.push(queueing);
    }
    let (cubic, v3) = (delay[0], delay[2]);
    println!(
        "Deep buffer  bbr3 / cubic queueing delay: {:.3} (published: at most 0.25); bbr3 queue {:.2} BDP (published: at most 1)",
        v3 / cubic,
        v3 / base_rtt_ms
    );
    assert!(cubic >= 0.7 * full_ms, "CUBIC's queue {cubic:.1} ms");
    assert!(
        v3 <= 0.25 * cubic,
        "BBRv3 {v3:.1} ms vs CUBIC {cubic:.1} ms"
    );
    assert!(v3 <= base_rtt_ms, "BBRv3 queue {v3:.1} ms");
}

/// Fairness: 4 and 16 flows started together share a 100 Mb/s, 24 ms bottleneck with a
/// one-BDP (200-packet) queue for 60 s; Jain's index of their goodputs, for five seeds
/// (the flows' random probe timing differs). Published: BBRv3's ProbeBW_DOWN gain of 0.90
/// is "the minimum pacing_gain value that allows bandwidth-based convergence to
/// approximate fairness" (draft 5.3.3.1), and BBRv3 flows converge where BBR v1's need a
/// common ProbeRTT (Cardwell et al., IETF 117 ccwg); the issue asks Jain's index >= 0.95.
/// Checked on the mean over the seeds; BBR v1 runs the same seeds for the comparison.
#[test]
#[ignore = "long: run with --ignored in release (CI does)"]
fn bbr3_flows_share_fairly() {
    println!("Fairness  Jain's index over 60 s, 100 Mb/s, RTT 24 ms, 200-packet queue, seeds 1-5");
    println!("  cc     flows  mean    min     published  error    per seed");
    let mut v3 = Vec::new();
    for cc in ["bbr3", "bbr"] {
        for flows in [4usize, 16] {
            let mut index = Vec::new();
            for seed in 1..=5 {
                let d = Dumbbell {
                    flows,
                    cc: cc.into(),
                    delay_ms: 10.0,
                    queue_packets: 200,
                    duration_s: 60.0,
                    seed,
                    ..Dumbbell::default()
                };
                let g = goodputs(&d);
                assert!(g.iter().sum::<f64>() >= 0.9 * payload_capacity_bps(100.0));
                index.push(jain(&g));
            }
            let mean = index.iter().sum::<f64>() / index.len() as f64;
            let min = index.iter().cloned().fold(1.0, f64::min);
            let each: Vec<String> = index.iter().map(|j| format!("{j:.4}")).collect();
            println!(
                "  {cc:6} {flows:5}  {mean:.4}  {min:.4}  >= 0.95     {:+5.1}%  {}",
                rel_err(0.95, mean).min(0.0) * 100.0,
                each.join(" ")
            );
            if cc == "bbr3" {
                v3.push((flows, mean));
            }
        }
    }
    for (flows, mean) in v3 {
        assert!(mean >= 0.95, "bbr3 x {flows}: mean Jain {mean:.4}");
    }
}

/// CUBIC against BBRv3 and against BBR v1 (two flows each, 100 Mb/s, RTT 24 ms, 60 s), in a
/// shallow (100-packet, half a BDP) and a deep (2000-packet, 10 BDP) buffer. Published:
/// BBRv3 aims at "Reno/CUBIC coexistence" (draft 5.3.3.8: probing spaced so that loss-based
/// flows can grow), and evaluations find its share against CUBIC far closer to fair than
/// BBR v1's in shallow buffers, where v1 starves CUBIC (Gomez et al. 2024; Cardwell et al.,
/// IETF 117). Checked: in the shallow buffer CUBIC gets a larger share against BBRv3 than
/// against BBR v1, and the link stays used.
#[test]
#[ignore = "long: run with --ignored in release (CI does)"]
fn bbr3_leaves_cubic_more_than_bbr_v1_does() {
    println!("CUBIC vs BBR, 2 + 2 flows, 100 Mb/s, RTT 24 ms, 60 s: CUBIC's share");
    let mut shallow = Vec::new();
    for queue in [100u32, 2000] {
        for bbr in ["bbr3", "bbr"] {
            let d = Dumbbell {
                flows: 4,
                flow_cc: vec!["cubic".into(), bbr.into(), "cubic".into(), bbr.into()],
                delay_ms: 10.0,
                queue_packets: queue,
                duration_s: 60.0,
                ..Dumbbell::default()
            };
            let g = goodputs(&d);
            let cubic = g[0] + g[2];
            let other = g[1] + g[3];
            let share = cubic / (cubic + other);
            println!(
                "  {queue:4}-packet queue, cubic vs {bbr:4}: cubic {:5.1}%, {bbr} {:5.1}% of {:.2} Mb/s (fair: 50%)",
                100.0 * share,
                100.0 * (1.0 - share),
                (cubic + other) / 1e6
            );
            assert!(cubic + other >= 0.9 * payload_capacity_bps(100.0));
            if queue == 100 {
                shallow.push(share);
            }
        }
    }
    assert!(
        shallow[0] > shallow[1],
        "CUBIC's share: {:.3} against bbr3, {:.3} against bbr",
        shallow[0],
        shallow[1]
    );
}

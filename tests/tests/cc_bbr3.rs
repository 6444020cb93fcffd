//! BBRv3 (`bbr3`, draft-ietf-ccwg-bbr) end to end: bulk TCP over a 100 Mb/s, 20 ms
//! bottleneck behind a 1 Gb/s access link, with `tcp_congestion_control: "bbr3"` on the
//! sender. The tests read the controller's state changes (`tcp_cc_state` in trace.jsonl),
//! the sender's `tcp-series.csv` and the flows' summary, and check the draft's shapes in
//! simulated time: Startup, Drain, the ProbeBW cycle with its timing, ProbeRTT every 5 s
//! at half the BDP; the loss response in a shallow buffer; the ECN response.
//!
//! Durations are short so that each test stays within seconds in a debug build.

mod common;

use scenarios::load_str;

/// Payload bytes per full segment (1500 - 20 IP - 20 TCP - 12 timestamp option).
const MSS: f64 = 1448.0;
/// Bytes each full segment occupies on the bottleneck (plus the 14-byte Ethernet header).
const FRAME: f64 = 1514.0;
/// The RTT without queueing: 2 x 20 ms plus the serialization of a segment and an ACK.
const BASE_RTT_NS: u64 = 40_139_000;
const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

/// What a 100 Mb/s bottleneck carries as TCP payload, in bytes per second.
fn payload_bytes_per_sec() -> f64 {
    100e6 / 8.0 * MSS / FRAME
}

/// host snd -- 1 Gb/s -- router r -- `rate`, 20 ms, `queue`, `loss` -- host rcv, one bulk
/// flow per entry of `ccs`, started 50 ms apart, on a sender host of its own.
fn scenario(ccs: &[&str], duration: &str, rate: &str, queue: &str, extra: &str) -> String {
    let senders: String = (0..ccs.len())
        .map(|i| format!(r#""snd{i}": Host({extra}),"#))
        .collect();
    let links: String = (0..ccs.len())
        .map(|i| format!(r#"Link(a: "snd{i}", b: "r", rate: "1Gbps"),"#))
        .collect();
    let bulks: String = ccs
        .iter()
        .enumerate()
        .map(|(i, cc)| {
            format!(
                r#"TcpBulk(name: "bulk{i}", from: "snd{i}", to: "rcv:5001", cc: "{cc}", start: "{}ms"),"#,
                50 * i
            )
        })
        .collect();
    format!(
        r#"Scenario(
    name: "cc-bbr3",
    duration: "{duration}",
    seed: 1,
    nodes: {{ {senders} "r": Router(), "rcv": Host({extra}) }},
    links: [
        {links}
        Link(a: "r", b: "rcv", rate: "{rate}", delay: "20ms", queue: {queue}),
    ],
    apps: [
        TcpSink(on: "rcv", port: 5001),
        {bulks}
    ],
    record: (tcp_series: true, trace: [Tcp]),
)"#
    )
}

/// One `tcp_cc_state` event: when a connection's controller entered `state`.
#[derive(Clone, Debug)]
struct Phase {
    t_ns: u64,
    conn: String,
    state: String,
    cwnd: f64,
}

struct Run {
    phases: Vec<Phase>,
    /// When each retransmission left.
    retransmit_times: Vec<u64>,
    goodput_bps: Vec<f64>,
    retransmits: Vec<u64>,
    /// (t_ns, srtt_us) of every ACK the first sender processed.
    srtt: Vec<(u64, f64)>,
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let at = line
        .find(&format!("\"{key}\":"))
        .unwrap_or_else(|| panic!("{key} in {line}"));
    let rest = &line[at + key.len() + 3..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest.find(['"', ',', '}']).unwrap_or(rest.len());
    &rest[..end]
}

fn run_flows(ccs: &[&str], duration: &str, rate: &str, queue: &str, extra: &str) -> Run {
    let text = scenario(ccs, duration, rate, queue, extra);
    let l = load_str("cc-bbr3.ron", &text, &[]).expect("scenario loads");
    let tag: String = ccs.concat() + rate + &queue.len().to_string() + &extra.len().to_string();
    let (o, files) = common::run_and_read(
        &l,
        &format!("cc-bbr3-{tag}"),
        &["trace.jsonl", "tcp-series.csv"],
    );
    let phases = files[0]
        .lines()
        .filter(|l| l.contains("\"event\":\"tcp_cc_state\""))
        .map(|l| Phase {
            t_ns: field(l, "t_ns").parse().unwrap(),
            conn: field(l, "conn").to_string(),
            state: field(l, "state").to_string(),
            cwnd: field(l, "cwnd").parse().unwrap(),
        })
        .collect();
    let retransmit_times = files[0]
        .lines()
        .filter(|l| l.contains("\"event\":\"tcp_tx\"") && l.contains("\"retransmit\":true"))
        .map(|l| field(l, "t_ns").parse().unwrap())
        .collect();
    let mut lines = files[1].lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (t, node, srtt) = (col("t_ns"), col("node"), col("srtt_us"));
    let srtt = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r[node] == "snd0")
        .map(|r| (r[t].parse().unwrap(), r[srtt].parse().unwrap()))
        .collect();
    let flows: Vec<&reports::FlowSummary> = (0..ccs.len())
        .map(|i| common::flow(&o, &format!("bulk{i}")))
        .collect();
    Run {
        phases,
        retransmit_times,
        goodput_bps: flows.iter().map(|f| f.goodput_bps).collect(),
        retransmits: flows.iter().map(|f| f.retransmits.unwrap_or(0)).collect(),
        srtt,
    }
}

/// How long each visit of `state` lasted (until the connection's next state change):
/// (start, length) in ns.
fn stays(phases: &[Phase], state: &str) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for (i, p) in phases.iter().enumerate() {
        if p.state != state {
            continue;
        }
        if let Some(next) = phases[i + 1..].iter().find(|n| n.conn == p.conn) {
            out.push((p.t_ns, next.t_ns - p.t_ns));
        }
    }
    out
}

// Draft 5.3.1-5.3.4 in the trace of one lossless flow (1000-packet queue, 12 s):
// - Startup, then Drain, then ProbeBW, within the first second (log2 of a 330-segment
//   BDP from a 10-segment window: about 6 round trips);
// - the ProbeBW states in the draft's order: DOWN (or straight to CRUISE when nothing is
//   queued), CRUISE, REFILL, UP, DOWN, with ProbeRTT ending in CRUISE;
// - REFILL lasts one round trip, UP at least three (the bandwidth stops growing after
//   three rounds), and a probe comes 2 to 3 s after the cycle began (the Reno bound here,
//   63 rounds of 40 ms, is 2.5 s, so at most that);
// - ProbeRTT comes 5 s after the last lower RTT sample (the run's start, then each
//   ProbeRTT's end), holds the window at half the BDP (0.5 x payload rate x base RTT,
//   within 2%) for 200 ms (and at least a round trip) from when in flight got there.
#[test]
fn bbr3_startup_drain_probe_bw_cycle_and_probe_rtt_every_five_seconds() {
    let r = run_flows(
        &["bbr3"],
        "12s",
        "100Mbps",
        r#"DropTail(limit: "1000 packets")"#,
        "",
    );
    let p = &r.phases;
    let names: Vec<&str> = p.iter().map(|p| p.state.as_str()).collect();
    assert_eq!(names[..2], ["startup", "drain"], "{names:?}");
    assert!(p[1].t_ns < SEC, "Drain at {} ns", p[1].t_ns);
    assert!(
        p[2].t_ns - p[1].t_ns <= 4 * BASE_RTT_NS,
        "Drain {:?}",
        &p[1..3]
    );
    // The order of the cycle.
    for w in names[2..].windows(2) {
        let ok = matches!(
            (w[0], w[1]),
            ("probe_bw_down", "probe_bw_cruise")
                | ("probe_bw_down", "probe_bw_refill")
                | ("probe_bw_cruise", "probe_bw_refill")
                | ("probe_bw_refill", "probe_bw_up")
                | ("probe_bw_up", "probe_bw_down")
                | ("probe_rtt", "probe_bw_cruise")
        ) || w[1] == "probe_rtt";
        assert!(ok, "{} -> {} in {names:?}", w[0], w[1]);
    }
    let refills = stays(p, "probe_bw_refill");
    let ups = stays(p, "probe_bw_up");
    assert!(refills.len() >= 3 && ups.len() >= 3, "{names:?}");
    for &(at, len) in &refills {
        assert!(
            (BASE_RTT_NS..=2 * BASE_RTT_NS).contains(&len),
            "REFILL at {at} lasted {len} ns"
        );
    }
    for &(at, len) in &ups {
        assert!(
            (3 * BASE_RTT_NS..=6 * BASE_RTT_NS).contains(&len),
            "UP at {at} lasted {len} ns"
        );
    }
    // From the start of each cycle (DOWN, or the end of ProbeRTT) to its probe.
    let mut cycle_start = None;
    let mut waits = Vec::new();
    for ph in &p[2..] {
        match ph.state.as_str() {
            "probe_bw_down" => cycle_start = Some(ph.t_ns),
            "probe_bw_cruise" if cycle_start.is_none() => cycle_start = Some(ph.t_ns),
            "probe_bw_refill" => {
                if let Some(s) = cycle_start.take() {
                    waits.push(ph.t_ns - s);
                }
            }
            "probe_rtt" => cycle_start = None,
            _ => {}
        }
    }
    assert!(waits.len() >= 3, "{waits:?}");
    for w in &waits {
        assert!(
            (2 * SEC..=2 * SEC + SEC / 2 + 2 * BASE_RTT_NS).contains(w),
            "probe {w} ns after the cycle began: {waits:?}"
        );
    }
    // ProbeRTT: every 5 s, at half the BDP, 200 ms and a round.
    let probe_rtts = stays(p, "probe_rtt");
    assert_eq!(probe_rtts.len(), 2, "{names:?}");
    let half_bdp = 0.5 * payload_bytes_per_sec() * BASE_RTT_NS as f64 / SEC as f64;
    // The first comes 5 s after the lowest RTT sample, one of Startup's first ones.
    let mut last_low_rtt = probe_rtts[0].0 - 5 * SEC - BASE_RTT_NS;
    assert!(last_low_rtt <= 4 * BASE_RTT_NS, "{probe_rtts:?}");
    for (i, &(at, len)) in probe_rtts.iter().enumerate() {
        let entry = p.iter().find(|x| x.t_ns == at).unwrap();
        assert!(
            (entry.cwnd / half_bdp - 1.0).abs() <= 0.02,
            "ProbeRTT {i}: cwnd {} vs half the BDP {half_bdp:.0}",
            entry.cwnd
        );
        let since = at - last_low_rtt;
        assert!(
            (5 * SEC..=5 * SEC + 2 * BASE_RTT_NS).contains(&since),
            "ProbeRTT {i} at {at} ns, {since} ns after the last lower RTT"
        );
        assert!(
            (200 * MS..=200 * MS + 2 * BASE_RTT_NS).contains(&len),
            "ProbeRTT {i} lasted {len} ns"
        );
        last_low_rtt = at + len;
    }
    // Full use of the link, no loss, and a short queue once ProbeBW runs.
    assert!(
        r.goodput_bps[0] >= 0.85 * payload_bytes_per_sec() * 8.0,
        "{:?}",
        r.goodput_bps
    );
    assert_eq!(r.retransmits, [0]);
    let late: Vec<f64> = r
        .srtt
        .iter()
        .filter(|&&(t, _)| t > 2 * SEC)
        .map(|&(_, s)| s)
        .collect();
    let mean = late.iter().sum::<f64>() / late.len() as f64;
    assert!(
        mean <= 1.25 * BASE_RTT_NS as f64 / 1e3,
        "mean SRTT {mean:.0} us"
    );
}

// Draft 5.5.10 against BBR v1 in a shallow (20-packet) buffer at 20 Mb/s: BBR v1 ignores
// the losses its probing causes and probes every eight round trips; BBRv3 caps its
// in-flight data where a probe lost more than 2% (inflight_longterm), leaves 15% of it
// free while cruising and probes every 2-3 s, so after Startup it retransmits far less
// (the aim of the v2/v3 loss response: Cardwell et al. at IETF 117 report 12% fewer
// retransmits than v1 on Google's traffic; in a buffer this shallow the difference is
// larger: 3 times fewer is required, 3.7 times measured: 22 against 6) while keeping
// the link busy. (Before pacing charged payload only and an RTO kept what was in flight,
// v1 overshot more and the factor was 8; bbr3's probes then also hit its 2% loss bound
// and ended UP early, which they no longer do in this buffer.)
#[test]
fn bbr3_loses_far_less_than_bbr_v1_in_a_shallow_buffer() {
    let mut retrans = Vec::new();
    for cc in ["bbr", "bbr3"] {
        let r = run_flows(
            &[cc],
            "6s",
            "20Mbps",
            r#"DropTail(limit: "20 packets")"#,
            "",
        );
        let capacity = 20e6 * MSS / FRAME;
        let after_startup = r.retransmit_times.iter().filter(|&&t| t > 2 * SEC).count();
        println!(
            "{cc}: goodput {:.2} Mb/s, {} retransmits, {after_startup} after 2 s",
            r.goodput_bps[0] / 1e6,
            r.retransmits[0]
        );
        assert!(
            r.goodput_bps[0] >= 0.8 * capacity,
            "{cc}: {:?}",
            r.goodput_bps
        );
        retrans.push(after_startup);
    }
    assert!(
        retrans[1] * 3 <= retrans[0],
        "retransmits after 2 s: bbr {}, bbr3 {}",
        retrans[0],
        retrans[1]
    );
}

/// Mean queueing delay (ms) the first sender saw after `from_ns`: mean SRTT less the base
/// RTT.
fn mean_queueing_ms(r: &Run, from_ns: u64) -> f64 {
    let late: Vec<f64> = r
        .srtt
        .iter()
        .filter(|&&(t, _)| t > from_ns)
        .map(|&(_, s)| s)
        .collect();
    late.iter().sum::<f64>() / late.len() as f64 / 1e3 - BASE_RTT_NS as f64 / 1e6
}

// The ECN response (Linux BBRv3; the draft requires CE to count as congestion). Two
// flows through a queue that marks CE above K = 20 packets (RED step marking as DCTCP's,
// 100 Mb/s, RTT 40 ms, 4 s): BBR v1 with ECN negotiated ignores the marks and the two
// keep a standing queue of about a BDP (46 ms measured); BBRv3 ends each probe when more
// than half of a flight comes back marked and cuts its short-term model in marked rounds,
// so the queue stays within a few K (5 ms measured; required: at most a quarter of
// v1's), with no loss and the link full, whether the receiver echoes each segment's mark
// (DCTCP-style, L4S: `Bbr3::with_ecn_mode(EcnMode::Dctcp)` on both ends) or RFC 3168's
// ECE-until-CWR. Without ECN the same queue drops instead of marking, and BBRv3 loses
// packets.
#[test]
fn bbr3_responds_to_ce_marks() {
    use protocols::tcp::cc::{self, Bbr3, EcnMode};
    cc::register("bbr3-l4s", || Box::new(Bbr3::with_ecn_mode(EcnMode::Dctcp)));
    let red =
        r#"Red(limit: "1000p", min_th: "20p", max_th: "20p", weight: 1, gentle: false, ecn: true)"#;
    let capacity = 100e6 * MSS / FRAME;
    let mut runs = Vec::new();
    for (cc, host) in [
        ("bbr", r#"sysctl: { "tcp_ecn": 1 }"#),
        (
            "bbr3-l4s",
            r#"sysctl: { "tcp_congestion_control": "bbr3-l4s" }"#,
        ),
        ("bbr3", r#"sysctl: { "tcp_ecn": 1 }"#),
        ("bbr3", r#"sysctl: { "tcp_ecn": 0 }"#),
    ] {
        let r = run_flows(&[cc, cc], "4s", "100Mbps", red, host);
        let q = mean_queueing_ms(&r, 2 * SEC);
        let goodput: f64 = r.goodput_bps.iter().sum();
        let retransmits: u64 = r.retransmits.iter().sum();
        println!(
            "{cc} ({host}): goodput {:.2} Mb/s, {retransmits} retransmits, mean queueing {q:.2} ms",
            goodput / 1e6
        );
        runs.push((q, goodput, retransmits));
    }
    let v1 = runs[0].0;
    assert!(v1 >= 20.0, "BBR v1's standing queue: {v1:.1} ms");
    for (q, goodput, retransmits) in &runs[1..3] {
        assert!(*q <= v1 / 4.0, "BBRv3 queueing {q:.1} ms vs v1 {v1:.1} ms");
        assert!(*goodput >= 0.85 * capacity, "{goodput}");
        assert_eq!(*retransmits, 0);
    }
    assert!(runs[3].2 > 0, "without ECN the queue drops");
}

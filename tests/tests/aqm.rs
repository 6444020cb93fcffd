//! Active queue management through whole runs (RB-LINK-05 RED, RB-LINK-06 CoDel): the
//! `aqm-codel` example against drop-tail, and ECN marking of ECN-capable UDP end to end
//! (counters, trace records and the CE codepoint in the packets on the wire).

mod common;

use scenarios::{load_file, load_str, run, Outcome, RunOptions};
use std::path::Path;

use common::flow;

/// The queue counters of one link direction.
#[derive(Debug, PartialEq)]
struct Counts {
    queue_drops: u64,
    aqm_drops: u64,
    ecn_marks: u64,
    max_queue_packets: u64,
}

/// The counters of link direction `id` ("<link>:<from>-><to>").
fn stats(o: &Outcome, id: &str) -> Counts {
    let w = &o.built.world;
    for l in w.links() {
        for (d, ch) in l.dirs.iter().enumerate() {
            let from = w.node_name(l.ends[d].0);
            let to = w.node_name(l.ends[1 - d].0);
            if format!("{}:{from}->{to}", l.name) == id {
                let s = ch.stats;
                return Counts {
                    queue_drops: s.queue_drops,
                    aqm_drops: s.aqm_drops,
                    ecn_marks: s.ecn_marks,
                    max_queue_packets: s.max_queue_packets,
                };
            }
        }
    }
    panic!("no link direction {id}")
}

// RB-LINK-06
#[test]
fn codel_keeps_the_ping_near_the_base_rtt_where_drop_tail_bloats() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples/aqm-codel.ron");
    let o = run(&load_file(&path, &[]).unwrap(), &RunOptions::default()).unwrap();
    // Base RTT: 2 x (1 ms + 20 ms) plus serialization.
    let bloated = flow(&o, "ping-droptail").rtt_ms.unwrap();
    let codel = flow(&o, "ping-codel").rtt_ms.unwrap();
    assert!(bloated.min > 42.0 && codel.min > 42.0);
    assert!(bloated.mean > 300.0 && bloated.max > 800.0, "{bloated:?}");
    assert!(codel.mean < 60.0 && codel.max < 100.0, "{codel:?}");
    // Drop-tail lets the queue grow; CoDel drops early, at the head, and keeps it short.
    let tail = stats(&o, "r1-b1:r1->b1");
    assert!(tail.max_queue_packets > 500, "{tail:?}");
    assert_eq!((tail.aqm_drops, tail.ecn_marks), (0, 0));
    let head = stats(&o, "r2-b2:r2->b2");
    assert!(head.aqm_drops > 0 && head.queue_drops == 0, "{head:?}");
    assert!(head.max_queue_packets < 300, "{head:?}");
    assert_eq!(head.ecn_marks, 0, "TCP here does not negotiate ECN");
    // Every transfer completes.
    for side in ["droptail", "codel"] {
        for i in 1..=4 {
            let id = format!("{side}-{i}");
            assert_eq!(flow(&o, &id).rx_bytes, 5_000_000, "{id}");
        }
    }
}

/// Two CBR flows of 8 Mbit/s into a 10 Mbit/s bottleneck with `queue`: "ect" sends ECT(0)
/// (TOS 2), "plain" sends Not-ECT, for 4 s; the queue drains before the end. Runs with trace.jsonl and a capture of the bottleneck
/// written to `out`.
fn two_flows(queue: &str, out: &Path) -> Outcome {
    let src = format!(
        r#"Scenario(
    name: "ecn",
    duration: "5s",
    nodes: {{ "a": Host(), "r": Router(), "b": Host() }},
    links: [
        Link(a: "a", b: "r", rate: "100Mbps", delay: "1ms"),
        Link(a: "r", b: "b", rate: "10Mbps", delay: "5ms", queue: {queue}, capture: true),
    ],
    apps: [
        UdpSink(on: "b", port: 5001),
        UdpSink(on: "b", port: 5002),
        UdpCbr(name: "ect", from: "a", to: "b:5001", rate: "8Mbps", size: 1000, tos: 2,
                duration: "4s"),
        UdpCbr(name: "plain", from: "a", to: "b:5002", rate: "8Mbps", size: 1000,
                duration: "4s"),
    ],
)"#
    );
    let l = load_str("ecn.ron", &src, &[]).unwrap();
    let opts = RunOptions {
        out_dir: Some(out.to_path_buf()),
        trace: true,
        ..Default::default()
    };
    run(&l, &opts).unwrap()
}

/// (UDP destination port, TOS byte) of every IPv4/UDP frame in a pcap file.
fn udp_tos(pcap: &Path) -> Vec<(u16, u8)> {
    let bytes = std::fs::read(pcap).unwrap();
    let mut out = Vec::new();
    let mut at = 24; // global header
    while at + 16 <= bytes.len() {
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &bytes[at + 16..at + 16 + caplen];
        at += 16 + caplen;
        if frame.len() >= 14 + 20 + 8 && frame[12..14] == [0x08, 0x00] && frame[14 + 9] == 17 {
            let ihl = (frame[14] & 0x0f) as usize * 4;
            let dport = u16::from_be_bytes([frame[14 + ihl + 2], frame[14 + ihl + 3]]);
            out.push((dport, frame[15]));
        }
    }
    out
}

/// Trace records (lines of trace.jsonl) with `event` (and `reason`, if given).
fn events<'a>(trace: &'a str, event: &str, reason: Option<&str>) -> Vec<&'a str> {
    let event = format!("\"event\":\"{event}\"");
    let reason = reason.map(|r| format!("\"reason\":\"{r}\""));
    trace
        .lines()
        .filter(|l| l.contains(&event))
        .filter(|l| reason.as_ref().is_none_or(|r| l.contains(r)))
        .collect()
}

fn ecn_end_to_end(queue: &str, qdisc: &str, name: &str) {
    let out = std::env::temp_dir().join(format!("netdes-aqm-{name}-{}", std::process::id()));
    let o = two_flows(queue, &out);
    let s = stats(&o, "r-b:r->b");
    // The ECT flow is marked, the other dropped early.
    assert!(s.ecn_marks > 50, "{s:?}");
    assert!(s.aqm_drops > 50, "{s:?}");
    let trace = std::fs::read_to_string(out.join("trace.jsonl")).unwrap();
    let marks = events(&trace, "ecn_mark", None);
    assert_eq!(marks.len() as u64, s.ecn_marks);
    assert_eq!(
        events(&trace, "drop", Some("aqm")).len() as u64,
        s.aqm_drops
    );
    let tail = format!(r#""node":"r","event":"ecn_mark","link":"r-b","qdisc":"{qdisc}"}}"#);
    assert!(marks[0].ends_with(&tail), "{}", marks[0]);
    // On the wire: CE on marked ECT(0) datagrams only; the plain flow stays Not-ECT.
    let frames = udp_tos(&out.join("link-r-b.pcap"));
    let ce = frames.iter().filter(|f| *f == &(5001, 3)).count() as u64;
    let ect = frames.iter().filter(|f| *f == &(5001, 2)).count() as u64;
    assert_eq!(ce, s.ecn_marks, "every mark reaches the wire");
    assert!(ect > 0, "some ECT datagrams pass unmarked");
    assert!(frames.iter().filter(|f| f.0 == 5002).all(|f| f.1 == 0));
    assert!(frames.iter().any(|f| f.0 == 5002));
    // The marked flow loses less than the dropped one.
    let lost = |id| flow(&o, id).lost_packets;
    assert!(
        lost("ect") < lost("plain"),
        "{} {}",
        lost("ect"),
        lost("plain")
    );
    let _ = std::fs::remove_dir_all(&out);
}

// RB-LINK-06
#[test]
fn codel_with_ecn_marks_ect_datagrams_and_drops_the_others() {
    ecn_end_to_end("CoDel(ecn: true)", "codel", "codel");
}

// RB-LINK-05
#[test]
fn red_with_ecn_marks_ect_datagrams_and_drops_the_others() {
    ecn_end_to_end(
        r#"Red(limit: "200p", min_th: "20p", max_th: "60p", max_p: 0.1, ecn: true)"#,
        "red",
        "red",
    );
}

// RB-LINK-05
#[test]
fn red_drops_are_deterministic_and_depend_on_the_seed() {
    let src = |queue: &str| {
        format!(
            r#"Scenario(
    name: "red-seed",
    duration: "3s",
    nodes: {{ "a": Host(), "b": Host() }},
    links: [ Link(a: "a", b: "b", rate: "10Mbps", queue: {queue}, loss: Bernoulli(0.01)) ],
    apps: [
        UdpSink(on: "b", port: 5001),
        UdpCbr(name: "cbr", from: "a", to: "b:5001", rate: "12Mbps", size: 1000),
    ],
)"#
        )
    };
    let red = load_str(
        "r.ron",
        &src(r#"Red(limit: "100p", min_th: "10p", max_th: "30p")"#),
        &[],
    )
    .unwrap();
    let at = |seed| {
        let o = run(
            &red,
            &RunOptions {
                seed: Some(seed),
                ..Default::default()
            },
        )
        .unwrap();
        (o.summary.trace_digest.clone(), stats(&o, "a-b:a->b"))
    };
    let (d1, s1) = at(1);
    assert_eq!(at(1).0, d1, "same seed, same run");
    let (d2, s2) = at(2);
    assert_ne!(d1, d2);
    assert!(s1.aqm_drops > 0 && s2.aqm_drops > 0);
    assert_ne!(s1.aqm_drops, s2.aqm_drops);
    assert_eq!(
        s1.queue_drops, 0,
        "RED keeps the average below the hard limit"
    );
}

//! TCP with ECN end to end (RFC 3168 as Linux does it), on the `tcp-ecn` example: a bulk
//! transfer that asks for ECN through a CoDel queue that marks, next to the same transfer
//! without ECN through the same queue, which drops. Checks the queue counters, the
//! sender's window reductions in the TCP time series, and the ECN bits on the wire as
//! tshark decodes them. Also DCTCP on the `dctcp` example (its validation against the
//! published model is `validation_dctcp.rs`).

mod common;

use common::flow;
use scenarios::{load_file, run, Outcome, RunOptions};
use std::path::{Path, PathBuf};

/// (ecn_marks, aqm_drops, queue_drops) of link direction `id` ("<link>:<from>-><to>").
fn queue_counts(o: &Outcome, id: &str) -> (u64, u64, u64) {
    let l = o
        .summary
        .links
        .iter()
        .find(|l| l.id == id)
        .unwrap_or_else(|| panic!("no link direction {id}"));
    (l.ecn_marks, l.aqm_drops, l.queue_drops)
}

/// One row of tcp-series.csv: (node, ca_state, cwnd, ssthresh).
fn series(csv: &str) -> Vec<(String, String, u64, u64)> {
    csv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[1].to_string(),
                f[3].to_string(),
                f[4].parse().unwrap(),
                f[5].parse().unwrap(),
            )
        })
        .collect()
}

/// Runs the example with its outputs in a directory of its own, with `sets` overrides.
fn run_example(tag: &str, sets: &[String]) -> (Outcome, PathBuf) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples/tcp-ecn.ron");
    let dir = std::env::temp_dir().join(format!("netdes-tcp-ecn-{tag}-{}", std::process::id()));
    let o = run(
        &load_file(&path, sets).unwrap(),
        &RunOptions {
            out_dir: Some(dir.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    (o, dir)
}

/// The ECN window reductions of node `node`'s sender: (cwnd before, ssthresh chosen) at
/// each entry into the CWR state.
fn cwr_entries(rows: &[(String, String, u64, u64)], node: &str) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut prev: Option<&(String, String, u64, u64)> = None;
    for r in rows.iter().filter(|r| r.0 == node) {
        if let Some(p) = prev {
            if r.1 == "cwr" && p.1 != "cwr" {
                out.push((p.2, r.3));
            }
        }
        prev = Some(r);
    }
    out
}

#[test]
fn ecn_marks_replace_drops_and_the_sender_halves_its_window_at_each() {
    // The ECN sender runs NewReno, whose reduction is exactly half (the default, CUBIC,
    // takes 0.7).
    let newreno = r#"nodes["a1"].sysctl["tcp_congestion_control"]="newreno""#.to_string();
    let (o, dir) = run_example("series", &[newreno]);
    let csv = std::fs::read_to_string(dir.join("tcp-series.csv")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    // With ECN: CoDel marks and never drops; nothing is retransmitted.
    let (marks, aqm_drops, queue_drops) = queue_counts(&o, "r1-b1:r1->b1");
    assert!(marks >= 5, "{marks} marks");
    assert_eq!((aqm_drops, queue_drops), (0, 0));
    let ecn = flow(&o, "ecn");
    assert_eq!(ecn.rx_bytes, 3_000_000);
    assert_eq!(ecn.retransmits, Some(0));
    // Without: the same queue drops, and TCP retransmits what it dropped.
    let (marks2, drops2, _) = queue_counts(&o, "r2-b2:r2->b2");
    assert_eq!(marks2, 0);
    assert!(drops2 > 0);
    let plain = flow(&o, "no-ecn");
    assert_eq!(plain.rx_bytes, 3_000_000);
    assert_eq!(plain.retransmits, Some(drops2));

    // Each reduction halves the window it starts from (NewReno's ssthresh), at most
    // once per mark, and only where ECN is on.
    let rows = series(&csv);
    let cuts = cwr_entries(&rows, "a1");
    assert!(!cuts.is_empty() && cuts.len() as u64 <= marks, "{cuts:?}");
    for (cwnd, ssthresh) in &cuts {
        assert_eq!(*ssthresh, (cwnd / 2).max(2 * 1448), "{cuts:?}");
    }
    assert!(rows.iter().filter(|r| r.0 == "a2").all(|r| r.1 != "cwr"));
    // Every episode ends: the last row of a1 is back in the open state.
    let last = rows.iter().rev().find(|r| r.0 == "a1").unwrap();
    assert_eq!(last.1, "open");
}

#[test]
fn tshark_decodes_the_ecn_negotiation_ect_ce_ece_and_cwr() {
    let (o, dir) = run_example("pcap", &[]);
    let pcap = dir.join("link-r1-b1.pcap");
    let csv = std::fs::read_to_string(dir.join("tcp-series.csv")).unwrap();
    if !tshark_available() {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let count = |filter: &str| tshark_count(&pcap, filter);
    assert_eq!(count("_ws.malformed || _ws.expert.severity == error"), 0);
    // The ECN-setup SYN and SYN-ACK (RFC 3168 6.1.1), both Not-ECT.
    assert_eq!(
        count("tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.flags.ece == 1 && tcp.flags.cwr == 1 && ip.dsfield.ecn == 0"),
        1
    );
    assert_eq!(
        count("tcp.flags.syn == 1 && tcp.flags.ack == 1 && tcp.flags.ece == 1 && tcp.flags.cwr == 0 && ip.dsfield.ecn == 0"),
        1
    );
    // Data is ECT(0), or CE where CoDel marked it (the capture is taken as a frame
    // starts on the wire, after the mark); pure ACKs are Not-ECT.
    let (marks, _, _) = queue_counts(&o, "r1-b1:r1->b1");
    assert_eq!(count("ip.dsfield.ecn == 3"), marks as usize);
    assert_eq!(count("tcp.len > 0 && ip.dsfield.ecn == 0"), 0);
    assert!(count("tcp.len > 0 && ip.dsfield.ecn == 2") > 2000);
    assert!(count("tcp.len == 0 && tcp.flags.syn == 0 && ip.dsfield.ecn == 0") > 500);
    assert_eq!(count("tcp.len == 0 && ip.dsfield.ecn != 0"), 0);
    // The receiver echoes ECE on its ACKs; CWR rides one data segment per reduction.
    assert!(count("tcp.flags.ece == 1 && tcp.flags.syn == 0 && tcp.len == 0") > marks as usize);
    let cuts = cwr_entries(&series(&csv), "a1");
    assert_eq!(
        count("tcp.flags.cwr == 1 && tcp.flags.syn == 0 && tcp.len > 0"),
        cuts.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tshark_available() -> bool {
    let ok = std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok();
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "tshark must be installed in CI"
        );
        eprintln!("tshark not installed: skipping the tshark cross-check");
    }
    ok
}

fn tshark_count(pcap: &Path, filter: &str) -> usize {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-Y", filter])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{filter}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// The `dctcp` example: DCTCP with step marking at K = 20 next to CUBIC on a 1000-packet
/// drop-tail queue, both at 100 Mb/s.
#[test]
fn dctcp_keeps_the_queue_near_k_where_cubic_fills_a_deep_buffer() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples/dctcp.ron");
    let o = run(&load_file(&path, &[]).unwrap(), &RunOptions::default()).unwrap();
    let link = |id: &str| {
        o.summary
            .links
            .iter()
            .find(|l| l.id == id)
            .unwrap_or_else(|| panic!("no link direction {id}"))
    };
    let marked = link("r1-b1:r1->b1");
    let tail = link("r2-b2:r2->b2");
    assert!(marked.ecn_marks > 1000, "{marked:?}");
    assert!(marked.max_queue_packets < 60, "{marked:?}");
    assert!(tail.max_queue_packets > 500, "{tail:?}");
    assert!(marked.utilization > 0.95 && tail.utilization > 0.95);
    for id in ["dctcp-1", "dctcp-2"] {
        assert_eq!(flow(&o, id).retransmits, Some(0), "{id}");
    }
    // Only the (Not-ECT) pings are dropped at the marking threshold; one more counts as
    // lost because its reply was still on the way at the end.
    let ping = flow(&o, "ping-dctcp");
    assert_eq!(ping.lost_packets, marked.aqm_drops + 1, "{ping:?}");
    let (dctcp, cubic) = (ping.rtt_ms.unwrap(), flow(&o, "ping-cubic").rtt_ms.unwrap());
    assert!(dctcp.min > 10.0 && dctcp.max < 12.0, "{dctcp:?}");
    assert!(cubic.mean > 50.0, "{cubic:?}");
}

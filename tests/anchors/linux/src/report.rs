//! The report: one JSON line from the sink's byte counts, the source's `ss` samples, the
//! bottleneck qdisc's statistics and the delay line's, in the shape of the ns-3 anchor's
//! line (per-flow and total goodput in Mb/s) plus what the comparison with netdes needs:
//! Jain's index, loss at the queue, retransmissions, min RTTs and BBR's long-term time.

use crate::ss::{self, BbrInfo, SocketSample};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Options {
    #[arg(long)]
    sink: PathBuf,
    #[arg(long)]
    source: PathBuf,
    #[arg(long)]
    samples: PathBuf,
    /// `tc -s qdisc show dev <bottleneck>` output.
    #[arg(long)]
    tc: PathBuf,
    #[arg(long)]
    delay_stats: PathBuf,
    /// The run's parameters as a JSON object, copied into the line.
    #[arg(long)]
    params: String,
    /// Seconds the flows ran (goodput = bytes / seconds).
    #[arg(long)]
    seconds: f64,
}

/// Packets sent and dropped by a qdisc, from `tc -s qdisc show` output.
#[derive(Debug, PartialEq)]
pub struct QdiscStats {
    pub sent_bytes: u64,
    pub sent_packets: u64,
    pub dropped: u64,
}

pub fn parse_tc(text: &str) -> Option<QdiscStats> {
    let line = text.lines().find(|l| l.trim_start().starts_with("Sent "))?;
    let t: Vec<&str> = line.split_whitespace().collect();
    // Sent <bytes> bytes <pkts> pkt (dropped <n>, overlimits ...
    Some(QdiscStats {
        sent_bytes: t.get(1)?.parse().ok()?,
        sent_packets: t.get(3)?.parse().ok()?,
        dropped: t.get(6)?.trim_end_matches(',').parse().ok()?,
    })
}

/// Jain's fairness index: 1 when all are equal, 1/n when one takes everything.
pub fn jain(x: &[f64]) -> f64 {
    let sum: f64 = x.iter().sum();
    let squares: f64 = x.iter().map(|v| v * v).sum();
    if squares == 0.0 {
        return 0.0;
    }
    sum * sum / (x.len() as f64 * squares)
}

/// Each local port's BBR samples `(t, info)` from a samples file.
pub fn bbr_series(samples: &str) -> BTreeMap<u16, Vec<(f64, BbrInfo)>> {
    let mut out: BTreeMap<u16, Vec<(f64, BbrInfo)>> = BTreeMap::new();
    let mut t = 0.0;
    for line in samples.lines() {
        if let Some(v) = line.strip_prefix("# t=") {
            t = v.trim().parse().unwrap_or(t);
            continue;
        }
        if let Some(s) = ss::parse_line(line) {
            if let Some(b) = s.bbr {
                out.entry(s.local_port).or_default().push((t, b));
            }
        }
    }
    out
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_json(path: &PathBuf) -> Result<Value, String> {
    serde_json::from_str(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

/// The fields every simulator's line has alike: per-flow and total goodput (Mb/s), Jain's
/// index, and the bottleneck queue's packets sent and dropped and its loss rate.
pub fn shared_fields(goodput: &[f64], sent: u64, dropped: u64) -> Value {
    json!({
        "goodput_mbps": goodput.iter().map(|g| round(*g, 3)).collect::<Vec<_>>(),
        "total_goodput_mbps": round(goodput.iter().sum::<f64>(), 3),
        "jain": round(jain(goodput), 4),
        "queue": {
            "sent_packets": sent,
            "dropped": dropped,
            "loss": round(dropped as f64 / (sent + dropped).max(1) as f64, 5),
        },
    })
}

/// `line` with the fields of `more` added (objects merged one level deep).
pub fn merged(mut line: Value, more: Value) -> Value {
    if let (Some(l), Value::Object(m)) = (line.as_object_mut(), more) {
        for (k, v) in m {
            match (l.get_mut(&k), v) {
                (Some(Value::Object(a)), Value::Object(b)) => a.extend(b),
                (_, v) => {
                    l.insert(k, v);
                }
            }
        }
    }
    line
}

pub fn run(o: &Options) -> Result<(), String> {
    let sink = read_json(&o.sink)?;
    let source = read_json(&o.source)?;
    let delay = read_json(&o.delay_stats)?;
    let params: Value = serde_json::from_str(&o.params).map_err(|e| format!("--params: {e}"))?;
    let qdisc = parse_tc(&read(&o.tc)?).ok_or("no `Sent` line in the tc statistics")?;
    let samples = read(&o.samples)?;

    let rx: Vec<u64> = sink["rx_bytes"]
        .as_array()
        .ok_or("sink: no rx_bytes")?
        .iter()
        .map(|v| v.as_u64().unwrap_or(0))
        .collect();
    let ports: Vec<u16> = sink["peer_ports"]
        .as_array()
        .ok_or("sink: no peer_ports")?
        .iter()
        .map(|v| v.as_u64().unwrap_or(0) as u16)
        .collect();
    let goodput: Vec<f64> = rx
        .iter()
        .map(|&b| b as f64 * 8.0 / o.seconds / 1e6)
        .collect();
    let final_ss: BTreeMap<u16, SocketSample> = source["final_ss"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l.as_str().and_then(ss::parse_line))
        .map(|s| (s.local_port, s))
        .collect();
    let series = bbr_series(&samples);

    let per_flow = |f: &dyn Fn(&SocketSample) -> Value| -> Vec<Value> {
        ports
            .iter()
            .map(|p| final_ss.get(p).map(f).unwrap_or(Value::Null))
            .collect()
    };
    let retrans: Vec<Value> = per_flow(&|s| json!(s.retrans_total));
    let (retrans_sum, segs_sum) = ports
        .iter()
        .filter_map(|p| final_ss.get(p))
        .fold((0u64, 0u64), |(r, d), s| {
            (r + s.retrans_total, d + s.data_segs_out)
        });
    let min_rtt: Vec<Value> = per_flow(&|s| json!(s.minrtt_ms));
    let shared = shared_fields(&goodput, qdisc.sent_packets, qdisc.dropped);
    let mut line = merged(
        shared,
        json!({
            "sim": "linux",
            "params": params,
            "queue": {
                "mean_packet_bytes": round(qdisc.sent_bytes as f64 / qdisc.sent_packets.max(1) as f64, 1),
            },
            "random_drops": delay["data"]["random_drops"],
            "retrans_segments": retrans,
            "retrans_rate": round(retrans_sum as f64 / segs_sum.max(1) as f64, 5),
            "min_rtt_ms": min_rtt,
            "delay_line_lateness": {
                "data": delay["data"]["lateness"],
                "ack": delay["ack"]["lateness"],
            },
        }),
    );
    if !series.is_empty() {
        let lt: Vec<ss::LtTime> = ports
            .iter()
            .map(|p| series.get(p).map(|s| ss::lt_time(s)).unwrap_or_default())
            .collect();
        line["bbr_lt_fraction"] = json!(lt
            .iter()
            .map(|l| round(l.fraction(), 3))
            .collect::<Vec<_>>());
        line["bbr_lt_periods"] = json!(lt.iter().map(|l| l.periods).collect::<Vec<_>>());
        let bw_at_end: Vec<Value> = ports
            .iter()
            .map(|p| {
                series
                    .get(p)
                    .and_then(|s| s.last())
                    .map(|(_, b)| json!(round(b.bw_bps / 1e6, 2)))
                    .unwrap_or(Value::Null)
            })
            .collect();
        line["bbr_bw_at_end_mbps"] = json!(bw_at_end);
    }
    println!("{line}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tc_statistics_give_sent_and_dropped() {
        let text = "qdisc tbf 8001: root refcnt 2 rate 100Mbit burst 3000b lat 24.0ms\n \
            Sent 90123000 bytes 60082 pkt (dropped 812, overlimits 4000 requeues 0)\n \
            backlog 0b 0p requeues 0\n";
        assert_eq!(
            parse_tc(text),
            Some(QdiscStats {
                sent_bytes: 90_123_000,
                sent_packets: 60_082,
                dropped: 812
            })
        );
        assert_eq!(parse_tc("nothing"), None);
    }

    #[test]
    fn a_line_merges_the_shared_fields_with_its_own_queue_fields() {
        let line = merged(
            shared_fields(&[1.0, 3.0], 900, 100),
            json!({ "sim": "linux", "queue": { "mean_packet_bytes": 1514.0 } }),
        );
        assert_eq!(
            line,
            json!({
                "sim": "linux",
                "goodput_mbps": [1.0, 3.0],
                "total_goodput_mbps": 4.0,
                "jain": 0.8,
                "queue": {
                    "sent_packets": 900, "dropped": 100, "loss": 0.1,
                    "mean_packet_bytes": 1514.0,
                },
            })
        );
    }

    #[test]
    fn jain_is_one_for_equal_shares_and_one_over_n_for_a_monopoly() {
        assert!((jain(&[3.0, 3.0, 3.0, 3.0]) - 1.0).abs() < 1e-12);
        assert!((jain(&[8.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12);
        assert_eq!(jain(&[0.0, 0.0]), 0.0);
    }

    #[test]
    fn samples_are_grouped_by_local_port_with_their_time() {
        let text = "# t=0.1000\n\
            0 0 10.1.0.1:40000 10.2.0.1:5000 bbr cwnd:10 bbr:(bw:1Mbps,mrtt:24,pacing_gain:2.88672,cwnd_gain:2.88672)\n\
            0 0 10.1.0.1:40001 10.2.0.1:5000 cubic cwnd:10\n\
            # t=0.2000\n\
            0 0 10.1.0.1:40000 10.2.0.1:5000 bbr cwnd:12 bbr:(bw:2Mbps,mrtt:24,pacing_gain:1,cwnd_gain:2)\n";
        let s = bbr_series(text);
        assert_eq!(s.len(), 1);
        let v = &s[&40000];
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].0, 0.2);
        assert_eq!(v[1].1.bw_bps, 2e6);
    }
}

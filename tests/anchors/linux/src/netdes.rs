//! The same experiment in netdes: `scenarios::dumbbell` with the anchor's parameters (the
//! base RTT split as netdes's dumbbell has it: 1 ms access links on both sides), reported
//! in the anchor's JSON shape, so that a Linux line and a netdes line sit side by side.
//! BBR's long-term time comes from the `tcp_cc_state` trace (`probe_bw_lt`), exactly,
//! where Linux's is inferred from `ss` samples.

use crate::report::jain;
use scenarios::dumbbell::Dumbbell;
use scenarios::{load_str, run as run_scenario, RunOptions};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(clap::Args)]
pub struct Options {
    #[arg(long)]
    flows: usize,
    #[arg(long)]
    cc: String,
    /// Bottleneck rate, Mb/s.
    #[arg(long, default_value_t = 100.0)]
    bw: f64,
    /// Base RTT, ms (the bottleneck's one-way delay is rtt / 2 - 2 ms).
    #[arg(long, default_value_t = 24.0)]
    rtt: f64,
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Drop-tail queue, packets.
    #[arg(long, default_value_t = 100)]
    queue: u32,
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Largest tcp_rmem/tcp_wmem; default Linux's 6 MB / 4 MB.
    #[arg(long)]
    buffer_max: Option<u64>,
}

/// A sender's time in each `tcp_cc_state` state, from its state changes `(t_ns, state)`
/// up to `end_ns`: (time from its first ProbeBW on, time in `probe_bw_lt`, periods).
pub fn lt_time(changes: &[(u64, String)], end_ns: u64) -> (u64, u64, usize) {
    let Some(first) = changes.iter().position(|(_, s)| s.starts_with("probe_bw")) else {
        return (0, 0, 0);
    };
    let after_startup = end_ns.saturating_sub(changes[first].0);
    let mut in_lt = 0;
    let mut periods = 0;
    for (i, (t, state)) in changes.iter().enumerate().skip(first) {
        if state == "probe_bw_lt" {
            let until = changes.get(i + 1).map_or(end_ns, |(t, _)| *t);
            in_lt += until.saturating_sub(*t);
            periods += 1;
        }
    }
    (after_startup, in_lt, periods)
}

/// Every `tcp_cc_state` event of a trace, grouped by node: `(t_ns, state)` in order.
pub fn cc_states(trace: &str) -> BTreeMap<String, Vec<(u64, String)>> {
    let mut out: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    for line in trace.lines().filter(|l| l.contains("\"tcp_cc_state\"")) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(t), Some(node), Some(state)) =
            (v["t_ns"].as_u64(), v["node"].as_str(), v["state"].as_str())
        else {
            continue;
        };
        out.entry(node.to_string())
            .or_default()
            .push((t, state.to_string()));
    }
    out
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

pub fn run(o: &Options) -> Result<(), String> {
    let d = Dumbbell {
        flows: o.flows,
        cc: o.cc.clone(),
        bottleneck_mbps: o.bw,
        delay_ms: o.rtt / 2.0 - 2.0,
        duration_s: o.duration,
        loss: o.loss,
        queue_packets: o.queue,
        seed: o.seed,
        tcp_buffer_max: o.buffer_max,
        record: Some("(trace: [Tcp])".into()),
        ..Dumbbell::default()
    };
    if d.delay_ms < 0.0 {
        return Err("--rtt must be at least 4 ms (two 1 ms access links each way)".into());
    }
    let loaded = load_str("dumbbell.ron", &d.to_ron(), &[]).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("linux-anchor-netdes-{}", std::process::id()));
    let outcome = run_scenario(
        &loaded,
        &RunOptions {
            out_dir: Some(dir.clone()),
            ..RunOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let trace = std::fs::read_to_string(dir.join("trace.jsonl")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let s = &outcome.summary;

    let goodput: Vec<f64> = s
        .flows
        .iter()
        .map(|f| d.goodput_bps(f.rx_bytes) / 1e6)
        .collect();
    let neck = s
        .links
        .iter()
        .find(|l| l.from == "left" && l.to == "right")
        .ok_or("no left-to-right bottleneck in the summary")?;
    let (retrans, data_segs): (u64, u64) = s.flows.iter().fold((0, 0), |(r, n), f| {
        (r + f.retransmits.unwrap_or(0), n + f.tx_packets)
    });
    let mut line = json!({
        "sim": "netdes",
        "params": {
            "flows": o.flows, "cc": o.cc, "bw_mbps": o.bw, "rtt_ms": o.rtt,
            "duration_s": o.duration, "queue_packets": o.queue, "loss": o.loss,
            "seed": o.seed, "buffer_max": o.buffer_max,
        },
        "goodput_mbps": goodput.iter().map(|g| round(*g, 3)).collect::<Vec<_>>(),
        "total_goodput_mbps": round(goodput.iter().sum::<f64>(), 3),
        "jain": round(jain(&goodput), 4),
        "queue": {
            "sent_packets": neck.tx_packets,
            "dropped": neck.queue_drops,
            "loss": round(neck.queue_drops as f64 / (neck.tx_packets + neck.queue_drops).max(1) as f64, 5),
        },
        "random_drops": neck.loss_drops,
        "retrans_segments": s.flows.iter().map(|f| f.retransmits).collect::<Vec<_>>(),
        "retrans_rate": round(retrans as f64 / data_segs.max(1) as f64, 5),
    });
    let states = cc_states(&trace);
    if states.keys().any(|n| n.starts_with('s')) {
        let end_ns = (o.duration * 1e9) as u64;
        let lt: Vec<(u64, u64, usize)> = (0..o.flows)
            .map(|i| {
                states
                    .get(&format!("s{i}"))
                    .map_or((0, 0, 0), |c| lt_time(c, end_ns))
            })
            .collect();
        line["bbr_lt_fraction"] = json!(lt
            .iter()
            .map(|(all, lt, _)| round(*lt as f64 / (*all).max(1) as f64, 3))
            .collect::<Vec<_>>());
        line["bbr_lt_periods"] = json!(lt.iter().map(|l| l.2).collect::<Vec<_>>());
    }
    println!("{line}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_term_time_counts_from_the_first_probe_bw() {
        let changes: Vec<(u64, String)> = [
            (0, "startup"),
            (100, "drain"),
            (130, "probe_bw"),
            (400, "probe_bw_lt"),
            (600, "probe_bw"),
            (700, "probe_rtt"),
            (720, "probe_bw"),
            (900, "probe_bw_lt"),
        ]
        .into_iter()
        .map(|(t, s)| (t, s.to_string()))
        .collect();
        assert_eq!(lt_time(&changes, 1000), (870, 300, 2));
        assert_eq!(lt_time(&changes[..2], 1000), (0, 0, 0));
    }

    #[test]
    fn states_are_read_per_node_from_the_trace() {
        let trace = r#"{"t_ns":5,"node":"s0","event":"tcp_cc_state","conn":"a","state":"startup","cwnd":1,"pacing_rate":2}
{"t_ns":6,"node":"s0","event":"tcp_tx","conn":"a"}
{"t_ns":9,"node":"s1","event":"tcp_cc_state","conn":"b","state":"probe_bw_lt","cwnd":1,"pacing_rate":2}"#;
        let s = cc_states(trace);
        assert_eq!(s["s0"], vec![(5, "startup".to_string())]);
        assert_eq!(s["s1"], vec![(9, "probe_bw_lt".to_string())]);
    }
}

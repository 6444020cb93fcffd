//! The same experiment in netdes: `scenarios::dumbbell` with the anchor's parameters (the
//! base RTT split as netdes's dumbbell has it: 1 ms access links on both sides), reported
//! in the anchor's JSON shape, so that a Linux line and a netdes line sit side by side.
//! BBR's long-term time comes from the `tcp_cc_state` trace (`probe_bw_lt`), exactly,
//! where Linux's is inferred from `ss` samples.

use crate::report::{merged, round, shared_fields};
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
    /// Keep the run's outputs here, with the `tcp_probe` points in the trace as well
    /// (every ACK: cwnd, in flight, delivered, ...), to follow a run in detail.
    #[arg(long)]
    keep: Option<std::path::PathBuf>,
    /// With one flow: write which packets the bottleneck's random loss dropped, in the
    /// order the sender's packets crossed it (one `0` or `1` a line), for the Linux delay
    /// line's `--drop-pattern`, so that Linux meets the very losses this run met.
    #[arg(long)]
    drop_pattern_out: Option<std::path::PathBuf>,
    /// Resolve the routers' ARP across the bottleneck before the flows start (a ping at
    /// 0 s; the flows start at 1.5 s and still run duration - 0.1 s), as on the anchor's
    /// layer-3 path, where the SYN waits for no ARP (`run.sh --arp-wait` does the opposite).
    #[arg(long)]
    warm_arp: bool,
    /// `PATH=VALUE` changes to the generated scenario, as `netdes run --set` takes them
    /// (e.g. `links[0].jitter=500us`; the bottleneck is `links[0]`).
    #[arg(long = "set")]
    overrides: Vec<String>,
}

/// The random-loss decisions of the bottleneck, in crossing order, for a one-flow run: a
/// `drop` with reason `loss` at `left` is a dropped packet (traced when its serialization
/// ended); a segment `d0` received (or the SYN that moved its listener to SYN_RECV) crossed
/// `hop_ns` earlier (the bottleneck's delay, the
/// access link's delay and serialization). ARP requests, which the Linux anchor's
/// layer-3 path does not carry, are left out: a loss while `left` waits for an ARP reply
/// is its request's (the packet that wanted the address waits in `left` meanwhile).
pub fn drop_pattern(trace: &str, hop_ns: impl Fn(u64) -> u64) -> Vec<bool> {
    let mut crossings: Vec<(u64, bool)> = Vec::new();
    let mut arp_pending = false;
    for line in trace.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(t), Some(node), Some(event)) =
            (v["t_ns"].as_u64(), v["node"].as_str(), v["event"].as_str())
        else {
            continue;
        };
        match (node, event) {
            ("left", "arp_request") => arp_pending = true,
            ("left", "arp_resolved") => arp_pending = false,
            ("left", "drop") if v["reason"] == "loss" && !arp_pending => {
                crossings.push((t, true));
            }
            ("d0", "tcp_rx") => {
                let len = v["len"].as_u64().unwrap_or(0);
                crossings.push((t.saturating_sub(hop_ns(len)), false));
            }
            // The listener's SYN is traced as the state change it causes, not as tcp_rx.
            ("d0", "tcp_state") if v["to"] == "SYN_RECV" => {
                crossings.push((t.saturating_sub(hop_ns(0)), false));
            }
            _ => {}
        }
    }
    crossings.sort_by_key(|c| c.0);
    crossings.into_iter().map(|c| c.1).collect()
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

pub fn run(o: &Options) -> Result<(), String> {
    let d = Dumbbell {
        flows: o.flows,
        cc: o.cc.clone(),
        bottleneck_mbps: o.bw,
        delay_ms: o.rtt / 2.0 - 2.0,
        loss: o.loss,
        queue_packets: o.queue,
        seed: o.seed,
        tcp_buffer_max: o.buffer_max,
        warm_arp: o.warm_arp,
        start_s: if o.warm_arp { 1.5 } else { 0.1 },
        duration_s: if o.warm_arp {
            o.duration + 1.4
        } else {
            o.duration
        },
        record: Some(if o.keep.is_some() {
            "(trace: [Tcp, TcpProbe, Link, Arp])".into()
        } else if o.drop_pattern_out.is_some() {
            "(trace: [Tcp, Link, Arp])".into()
        } else {
            "(trace: [Tcp])".into()
        }),
        ..Dumbbell::default()
    };
    if o.drop_pattern_out.is_some() && o.flows != 1 {
        return Err("--drop-pattern-out needs --flows=1".into());
    }
    if d.delay_ms < 0.0 {
        return Err("--rtt must be at least 4 ms (two 1 ms access links each way)".into());
    }
    let loaded = load_str("dumbbell.ron", &d.to_ron(), &o.overrides).map_err(|e| e.to_string())?;
    let dir = o.keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("linux-anchor-netdes-{}", std::process::id()))
    });
    let outcome = run_scenario(
        &loaded,
        &RunOptions {
            out_dir: Some(dir.clone()),
            ..RunOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let trace = std::fs::read_to_string(dir.join("trace.jsonl")).unwrap_or_default();
    if let Some(path) = &o.drop_pattern_out {
        // Bottleneck delay, then the 1 ms access link at 10 x the rate: serialization
        // of the frame (payload + 52 bytes of TCP/IP + 14 of Ethernet).
        let access_bps = o.bw * 10.0 * 1e6;
        let hop = |len: u64| {
            let ser = ((len + 66) * 8) as f64 / access_bps * 1e9;
            ((d.delay_ms + 1.0) * 1e6 + ser) as u64
        };
        let pattern: String = drop_pattern(&trace, hop)
            .iter()
            .map(|&lost| if lost { "1\n" } else { "0\n" })
            .collect();
        std::fs::write(path, pattern).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if o.keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let s = &outcome.summary;

    let tcp: Vec<&reports::FlowSummary> = s.flows.iter().filter(|f| f.proto == "tcp").collect();
    let goodput: Vec<f64> = tcp
        .iter()
        .map(|f| d.goodput_bps(f.rx_bytes) / 1e6)
        .collect();
    let neck = s
        .links
        .iter()
        .find(|l| l.from == "left" && l.to == "right")
        .ok_or("no left-to-right bottleneck in the summary")?;
    let (retrans, data_segs): (u64, u64) = tcp.iter().fold((0, 0), |(r, n), f| {
        (r + f.retransmits.unwrap_or(0), n + f.tx_packets)
    });
    let shared = shared_fields(&goodput, neck.tx_packets, neck.queue_drops);
    let mut line = merged(
        shared,
        json!({
            "sim": "netdes",
            "params": {
                "flows": o.flows, "cc": o.cc, "bw_mbps": o.bw, "rtt_ms": o.rtt,
                "duration_s": o.duration, "queue_packets": o.queue, "loss": o.loss,
                "seed": o.seed, "buffer_max": o.buffer_max, "warm_arp": o.warm_arp,
                "set": o.overrides,
            },
            "random_drops": neck.loss_drops,
            "retrans_segments": tcp.iter().map(|f| f.retransmits).collect::<Vec<_>>(),
            "retrans_rate": round(retrans as f64 / data_segs.max(1) as f64, 5),
        }),
    );
    let states = cc_states(&trace);
    if states.keys().any(|n| n.starts_with('s')) {
        let end_ns = (d.duration_s * 1e9) as u64;
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
    fn the_drop_pattern_interleaves_losses_and_deliveries_in_crossing_order() {
        let trace = r#"{"t_ns":1,"node":"left","event":"arp_request","target":"10.0.0.2"}
{"t_ns":2,"node":"left","event":"drop","link":"left-right","reason":"loss"}
{"t_ns":3,"node":"left","event":"arp_resolved","ip":"10.0.0.2"}
{"t_ns":10,"node":"left","event":"drop","link":"left-right","reason":"loss"}
{"t_ns":12,"node":"left","event":"drop","link":"left-right","reason":"queue_full"}
{"t_ns":105,"node":"d0","event":"tcp_state","from":"LISTEN","to":"SYN_RECV"}
{"t_ns":130,"node":"left","event":"drop","link":"left-right","reason":"loss"}
{"t_ns":150,"node":"d0","event":"tcp_rx","len":1448}
{"t_ns":160,"node":"s0","event":"tcp_rx","len":0}"#;
        // Delivered segments crossed 100 ns (plus 1 per 100 bytes) before d0 got them.
        let p = drop_pattern(trace, |len| 100 + len / 100);
        assert_eq!(p, vec![false, true, false, true]);
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

//! Figures the congestion-control validations compute from dumbbell runs.

use scenarios::dumbbell::Dumbbell;
use scenarios::{load_str, run, RunOptions};

/// Goodput (b/s) of each flow of one run of `d`.
pub fn goodputs(d: &Dumbbell) -> Vec<f64> {
    let l = load_str("dumbbell.ron", &d.to_ron(), &[]).expect("loads");
    let o = run(&l, &RunOptions::default()).expect("runs");
    o.summary
        .flows
        .iter()
        .map(|f| d.goodput_bps(f.rx_bytes))
        .collect()
}

/// Jain's fairness index of `x`: 1 when all are equal, 1/n when one takes everything.
pub fn jain(x: &[f64]) -> f64 {
    let sum: f64 = x.iter().sum();
    let squares: f64 = x.iter().map(|v| v * v).sum();
    sum * sum / (x.len() as f64 * squares)
}

/// Payload capacity (b/s) of a bottleneck of `mbps` with 1448-byte segments carrying
/// timestamps: 1448 of every 1514 bytes serialized (links serialize the Ethernet frame
/// without FCS, preamble or gap).
pub fn payload_capacity_bps(mbps: f64) -> f64 {
    mbps * 1e6 * 1448.0 / 1514.0
}

/// Mean smoothed RTT (ms) of the sender `s0` after `from_s`, from a run's tcp-series.csv.
pub fn mean_srtt_ms(csv: &str, from_s: f64) -> f64 {
    let header: Vec<&str> = csv.lines().next().unwrap_or("").split(',').collect();
    let col = |name: &str| header.iter().position(|c| *c == name);
    let srtt_col = col("srtt_us").expect("srtt_us column");
    let node_col = col("node").expect("node column");
    let (mut sum, mut n) = (0.0, 0u64);
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let t = f[0].parse::<f64>().unwrap_or(0.0) / 1e9;
        if f[node_col] != "s0" || t < from_s {
            continue;
        }
        if let Ok(v) = f[srtt_col].parse::<f64>() {
            sum += v / 1e3;
            n += 1;
        }
    }
    sum / n.max(1) as f64
}

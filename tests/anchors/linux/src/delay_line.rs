//! The delay line: each packet the kernel routes into a TUN device is read, held until
//! its arrival time plus a fixed delay, and written back into the same device, where the
//! router's policy routing (`ip rule iif tunX lookup main`) forwards it on. On the data
//! direction packets are dropped at random first (Bernoulli, seeded), after the bottleneck
//! queue (the tbf on the TUN device's egress), as netdes's lossy bottleneck link does.
//!
//! A reader thread per direction timestamps packets as the kernel hands them over; a writer
//! thread sleeps until the head packet is due. The delay is constant, so order is kept.
//! The writer records how late each packet left (the emulation's jitter). This module owns
//! no topology: `run.sh` creates the namespaces, routes and qdiscs.

use crate::write_json;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tun_rs::{DeviceBuilder, SyncDevice};

#[derive(clap::Args)]
pub struct Options {
    /// TUN device of the data direction (senders to receivers), created by this program.
    #[arg(long)]
    data_tun: String,
    /// TUN device of the ACK direction (receivers to senders).
    #[arg(long)]
    ack_tun: String,
    /// One-way delay added in each direction, in milliseconds (base RTT = 2 x this).
    #[arg(long)]
    one_way_ms: f64,
    /// Random loss probability on the data direction.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Seed of the loss decisions.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Loss decisions to replay on the data direction, one `0` or `1` a line (as
    /// `linux-anchor netdes --drop-pattern-out` writes them): packet k is dropped when
    /// line k says 1; past the last line the seeded `--loss` decides.
    #[arg(long)]
    drop_pattern: Option<PathBuf>,
    /// Extra delay (ms) of the first IPv4 packet of the data direction (the SYN), as the
    /// first packet of netdes's dumbbell waits for its routers' ARP resolution across the
    /// bottleneck (the anchor's layer-3 path has no ARP).
    #[arg(long, default_value_t = 0.0)]
    first_packet_extra_ms: f64,
    /// Transmit queue length of the TUN devices (packets the kernel may hold for a reader).
    #[arg(long, default_value_t = 4000)]
    tx_queue_len: u32,
    /// When to stop (ns since the Unix epoch); then the statistics are written and the
    /// devices go away.
    #[arg(long)]
    stop_at_ns: u64,
    /// Where to write the statistics (one JSON line).
    #[arg(long)]
    stats: PathBuf,
}

/// SplitMix64: a small seeded generator for the loss decisions (the anchor does not need
/// netdes's named ChaCha streams; it only needs a reproducible loss pattern per seed).
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The loss decisions of one direction: a replayed pattern first, then Bernoulli draws.
pub struct Loss {
    pattern: Vec<bool>,
    next: usize,
    p: f64,
    rng: SplitMix64,
}

impl Loss {
    pub fn new(pattern: Vec<bool>, p: f64, seed: u64) -> Self {
        Loss {
            pattern,
            next: 0,
            p,
            rng: SplitMix64::new(seed),
        }
    }

    /// Whether the next packet is lost.
    pub fn drops_next(&mut self) -> bool {
        if let Some(&lost) = self.pattern.get(self.next) {
            self.next += 1;
            return lost;
        }
        self.p > 0.0 && self.rng.next_f64() < self.p
    }
}

/// Parses a drop pattern: one `0` or `1` a line.
pub fn parse_pattern(text: &str) -> Result<Vec<bool>, String> {
    text.lines()
        .enumerate()
        .map(|(i, l)| match l.trim() {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(format!("line {}: expected 0 or 1, found {other:?}", i + 1)),
        })
        .collect()
}

/// Counters a reader updates while the writer and the main thread look on.
#[derive(Default)]
struct ReaderCounters {
    packets: AtomicU64,
    bytes: AtomicU64,
    dropped: AtomicU64,
    not_ipv4: AtomicU64,
}

/// An IPv4 packet (version nibble 4) as a TUN device without packet information hands it.
pub fn is_ipv4(packet: &[u8]) -> bool {
    packet.first().is_some_and(|b| b >> 4 == 4)
}

/// Lateness is kept in 1-µs buckets up to this many µs (and one bucket for the rest), so
/// that recording it allocates nothing.
const LATENESS_BUCKETS: usize = 100_000;

/// What a writer measured: packets written, failures, and how late (µs past due) each
/// packet left, as a histogram.
pub struct WriterStats {
    written: u64,
    send_errors: u64,
    late_us: Vec<u64>,
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            written: 0,
            send_errors: 0,
            late_us: vec![0; LATENESS_BUCKETS + 1],
        }
    }
}

impl WriterStats {
    pub fn record_lateness(&mut self, us: u128) {
        let bucket = (us as usize).min(LATENESS_BUCKETS);
        self.late_us[bucket] += 1;
    }

    /// Mean, median, 99th and 99.9th percentiles, maximum (µs; the last bucket stands
    /// for "at least 100 ms"), and how many packets left more than 1 ms late.
    pub fn lateness_summary(&self) -> serde_json::Value {
        let n: u64 = self.late_us.iter().sum();
        if n == 0 {
            return json!(null);
        }
        let mean = self
            .late_us
            .iter()
            .enumerate()
            .map(|(us, &c)| us as f64 * c as f64)
            .sum::<f64>()
            / n as f64;
        let pct = |p: f64| {
            let rank = ((n - 1) as f64 * p).round() as u64;
            let mut seen = 0;
            for (us, &c) in self.late_us.iter().enumerate() {
                seen += c;
                if seen > rank {
                    return us;
                }
            }
            LATENESS_BUCKETS
        };
        json!({
            "mean_us": (mean * 10.0).round() / 10.0,
            "p50_us": pct(0.5),
            "p99_us": pct(0.99),
            "p999_us": pct(0.999),
            "max_us": pct(1.0),
            "over_1ms": self.late_us[1001..].iter().sum::<u64>(),
        })
    }
}

fn open(name: &str, tx_queue_len: u32) -> std::io::Result<Arc<SyncDevice>> {
    let dev = DeviceBuilder::new()
        .name(name)
        .mtu(1500)
        .tx_queue_len(tx_queue_len)
        .enable(true)
        .build_sync()?;
    Ok(Arc::new(dev))
}

/// Starts one direction: returns the reader's counters and the writer's join handle.
fn direction(
    dev: Arc<SyncDevice>,
    delay: Duration,
    first_extra: Duration,
    loss: Loss,
    stop_at: Instant,
) -> (Arc<ReaderCounters>, std::thread::JoinHandle<WriterStats>) {
    let counters = Arc::new(ReaderCounters::default());
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    {
        let dev = Arc::clone(&dev);
        let counters = Arc::clone(&counters);
        std::thread::spawn(move || {
            let mut loss = loss;
            let mut first_extra = Some(first_extra);
            let mut buf = vec![0u8; 65536];
            loop {
                let n = match dev.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        eprintln!("delay line: read: {e}");
                        return;
                    }
                };
                let mut due = Instant::now() + delay;
                if is_ipv4(&buf[..n]) {
                    due += first_extra.take().unwrap_or_default();
                }
                counters.packets.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
                // Only IPv4 packets (the experiment's) draw a loss decision, so that a
                // replayed pattern stays aligned; anything else the kernel sends into the
                // device (IPv6 neighbour discovery, should IPv6 be on) is only delayed.
                if !is_ipv4(&buf[..n]) {
                    counters.not_ipv4.fetch_add(1, Ordering::Relaxed);
                } else if loss.drops_next() {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if tx.send((due, buf[..n].to_vec())).is_err() {
                    return;
                }
            }
        });
    }
    let writer = std::thread::spawn(move || {
        let mut stats = WriterStats::default();
        loop {
            let now = Instant::now();
            if now >= stop_at {
                return stats;
            }
            let (due, packet) = match rx.recv_timeout(stop_at - now) {
                Ok(p) => p,
                Err(_) => return stats,
            };
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            let sent_at = Instant::now();
            match dev.send(&packet) {
                Ok(_) => stats.written += 1,
                Err(_) => stats.send_errors += 1,
            }
            stats.record_lateness(sent_at.saturating_duration_since(due).as_micros());
        }
    });
    (counters, writer)
}

pub fn run(o: &Options) -> Result<(), String> {
    if !(0.0..1.0).contains(&o.loss) || !(0.0..=1e6).contains(&o.one_way_ms) {
        return Err("need 0 <= loss < 1 and one-way-ms >= 0".into());
    }
    // Threads inherit the timer slack: 1 ns instead of the default 50 µs makes the
    // writers' sleeps end on time (run.sh also runs this under SCHED_FIFO, where slack
    // does not apply).
    if let Err(e) = std::fs::write("/proc/self/timerslack_ns", "1") {
        eprintln!("delay line: cannot set timer slack: {e}");
    }
    let pattern = match &o.drop_pattern {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|t| parse_pattern(&t).map_err(|e| format!("{}: {e}", path.display())))?,
        None => Vec::new(),
    };
    let pattern_len = pattern.len();
    let data = open(&o.data_tun, o.tx_queue_len).map_err(|e| format!("{}: {e}", o.data_tun))?;
    let ack = open(&o.ack_tun, o.tx_queue_len).map_err(|e| format!("{}: {e}", o.ack_tun))?;
    let delay = Duration::from_secs_f64(o.one_way_ms / 1e3);
    let until_stop = (UNIX_EPOCH + Duration::from_nanos(o.stop_at_ns))
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let stop_at = Instant::now() + until_stop;
    let first_extra = Duration::from_secs_f64(o.first_packet_extra_ms.max(0.0) / 1e3);
    let data_loss = Loss::new(pattern, o.loss, o.seed);
    let (data_in, data_out) = direction(data, delay, first_extra, data_loss, stop_at);
    let no_loss = Loss::new(Vec::new(), 0.0, 0);
    let (ack_in, ack_out) = direction(ack, delay, Duration::ZERO, no_loss, stop_at);
    let summarize = |name: &str, c: &ReaderCounters, w: std::thread::JoinHandle<WriterStats>| {
        let w = w.join().unwrap_or_default();
        json!({
            "direction": name,
            "packets_in": c.packets.load(Ordering::Relaxed),
            "bytes_in": c.bytes.load(Ordering::Relaxed),
            "random_drops": c.dropped.load(Ordering::Relaxed),
            "not_ipv4": c.not_ipv4.load(Ordering::Relaxed),
            "written": w.written,
            "send_errors": w.send_errors,
            "lateness": w.lateness_summary(),
        })
    };
    let stats = json!({
        "one_way_ms": o.one_way_ms,
        "loss": o.loss,
        "seed": o.seed,
        "drop_pattern_len": pattern_len,
        "data": summarize("data", &data_in, data_out),
        "ack": summarize("ack", &ack_in, ack_out),
    });
    write_json(&o.stats, &stats).map_err(|e| format!("{}: {e}", o.stats.display()))?;
    // The readers are blocked in reads; leaving the process closes the devices.
    std::process::exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_decisions_follow_the_seed_and_the_rate() {
        let draws = |seed| {
            let mut r = SplitMix64::new(seed);
            (0..100_000).filter(|_| r.next_f64() < 0.15).count()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        let n = draws(7);
        assert!((14_500..15_500).contains(&n), "{n}");
    }

    #[test]
    fn a_replayed_pattern_comes_before_the_random_draws() {
        let pattern = parse_pattern("0\n1\n1\n0\n").expect("parses");
        let mut l = Loss::new(pattern, 0.0, 1);
        let got: Vec<bool> = (0..6).map(|_| l.drops_next()).collect();
        assert_eq!(got, [false, true, true, false, false, false]);
        let mut always = Loss::new(vec![false], 0.999_999, 1);
        assert!(!always.drops_next());
        assert!(always.drops_next());
        assert!(parse_pattern("0\n2\n").unwrap_err().contains("line 2"));
    }

    #[test]
    fn only_ipv4_packets_are_recognised_as_the_experiments() {
        assert!(is_ipv4(&[0x45, 0, 0, 40]));
        assert!(!is_ipv4(&[0x60, 0, 0, 0]));
        assert!(!is_ipv4(&[]));
    }

    #[test]
    fn lateness_summary_takes_order_statistics() {
        let mut w = WriterStats::default();
        assert!(w.lateness_summary().is_null());
        for us in (1..=1000).rev() {
            w.record_lateness(us);
        }
        w.record_lateness(5000);
        w.record_lateness(1_000_000);
        let s = w.lateness_summary();
        assert_eq!(s["p50_us"], 502);
        assert_eq!(s["p99_us"], 992);
        assert_eq!(s["max_us"], LATENESS_BUCKETS);
        assert_eq!(s["over_1ms"], 2);
    }
}

//! The traffic: a sink that accepts N connections and counts each one's bytes up to a
//! deadline, and a source that opens N connections with a chosen congestion controller
//! (`TCP_CONGESTION`) and writes as fast as TCP takes the data from a common start instant
//! to the deadline, sampling `ss -tinHO` of its sockets as it goes.
//!
//! Instants are wall-clock times (ns since the Unix epoch) given by `run.sh`, because the
//! sink and the source run in different namespaces of one machine: one clock.

use crate::write_json;
use serde_json::json;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(clap::Args)]
pub struct SinkOptions {
    /// Address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    #[arg(long)]
    flows: usize,
    /// When the flows start (ns since the Unix epoch).
    #[arg(long)]
    start_at_ns: u64,
    /// How long they run; bytes are counted up to start + seconds.
    #[arg(long)]
    seconds: f64,
    /// Per-flow byte counts, one JSON line.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub struct SourceOptions {
    /// The sink's address.
    #[arg(long)]
    connect: SocketAddr,
    #[arg(long)]
    flows: usize,
    /// Congestion controller (`TCP_CONGESTION`): bbr, cubic, reno, ...
    #[arg(long)]
    cc: String,
    #[arg(long)]
    start_at_ns: u64,
    #[arg(long)]
    seconds: f64,
    /// Period of the `ss` samples in milliseconds; 0 takes none (only the final one).
    /// Keep it below the min RTT for BBR's long-term-mode inference (see `ss`).
    #[arg(long, default_value_t = 20)]
    ss_interval_ms: u64,
    /// Raw `ss -tinHO` samples, each preceded by a `# t=<seconds since start>` line.
    #[arg(long)]
    samples: PathBuf,
    /// The final `ss` sample and the local ports, one JSON line.
    #[arg(long)]
    out: PathBuf,
}

fn instant_of(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

fn sleep_until(t: SystemTime) {
    if let Ok(d) = t.duration_since(SystemTime::now()) {
        std::thread::sleep(d);
    }
}

fn seconds_since(t: SystemTime) -> f64 {
    match SystemTime::now().duration_since(t) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

pub fn sink(o: &SinkOptions) -> Result<(), String> {
    let start = instant_of(o.start_at_ns);
    let end = start + Duration::from_secs_f64(o.seconds);
    let listener = TcpListener::bind(o.listen).map_err(|e| format!("{}: {e}", o.listen))?;
    let counters: Arc<Vec<AtomicU64>> = Arc::new((0..o.flows).map(|_| AtomicU64::new(0)).collect());
    let peers: Arc<Vec<AtomicU64>> = Arc::new((0..o.flows).map(|_| AtomicU64::new(0)).collect());
    {
        let counters = Arc::clone(&counters);
        let peers = Arc::clone(&peers);
        let flows = o.flows;
        std::thread::spawn(move || {
            for i in 0..flows {
                let (mut stream, peer) = match listener.accept() {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("sink: accept: {e}");
                        return;
                    }
                };
                peers[i].store(peer.port() as u64, Ordering::Relaxed);
                let counters = Arc::clone(&counters);
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 18];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        counters[i].fetch_add(n as u64, Ordering::Relaxed);
                    }
                });
            }
        });
    }
    // Bytes received before the start (none: the source waits) are subtracted anyway.
    sleep_until(start);
    let at_start: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let mut per_second: Vec<Vec<u64>> = Vec::new();
    let mut last = at_start.clone();
    let whole_seconds = o.seconds.floor() as u64;
    for s in 1..=whole_seconds {
        sleep_until(start + Duration::from_secs(s));
        let now: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        per_second.push(now.iter().zip(&last).map(|(a, b)| a - b).collect());
        last = now;
    }
    sleep_until(end);
    let rx: Vec<u64> = counters
        .iter()
        .zip(&at_start)
        .map(|(c, s)| c.load(Ordering::Relaxed) - s)
        .collect();
    let peer_ports: Vec<u64> = peers.iter().map(|p| p.load(Ordering::Relaxed)).collect();
    let out = json!({
        "rx_bytes": rx,
        "peer_ports": peer_ports,
        "late_s": seconds_since(end),
        "rx_bytes_per_second": per_second,
    });
    write_json(&o.out, &out).map_err(|e| format!("{}: {e}", o.out.display()))?;
    // Keep reading a while, so that the source's final `ss` sample still finds its
    // connections established (leaving now would reset them).
    std::thread::sleep(Duration::from_secs(1));
    std::process::exit(0)
}

fn ss_snapshot(dst: &SocketAddr) -> String {
    let filter = format!("dst {}", dst.ip());
    match Command::new("ss")
        .args(["-tinHO", "state", "established", filter.as_str()])
        .output()
    {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => {
            eprintln!("source: ss: {e}");
            String::new()
        }
    }
}

pub fn source(o: &SourceOptions) -> Result<(), String> {
    let start = instant_of(o.start_at_ns);
    let end = start + Duration::from_secs_f64(o.seconds);
    let mut sockets = Vec::new();
    let mut local_ports = Vec::new();
    for _ in 0..o.flows {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
            .map_err(|e| format!("socket: {e}"))?;
        s.set_tcp_congestion(o.cc.as_bytes())
            .map_err(|e| format!("TCP_CONGESTION {}: {e}", o.cc))?;
        s.connect(&(o.connect).into())
            .map_err(|e| format!("connect {}: {e}", o.connect))?;
        let port = s
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .map(|a| a.port())
            .unwrap_or(0);
        local_ports.push(port);
        sockets.push(Arc::new(s));
    }
    // The sockets stay open (held here) after the writers stop, for the final sample.
    for s in &sockets {
        let s = Arc::clone(s);
        std::thread::spawn(move || {
            let buf = vec![0x5au8; 1 << 18];
            sleep_until(start);
            while SystemTime::now() < end {
                if (&*s).write(&buf).is_err() {
                    return;
                }
            }
        });
    }
    let mut samples = String::new();
    if o.ss_interval_ms > 0 {
        let period = Duration::from_millis(o.ss_interval_ms);
        let mut next = start;
        while next < end {
            sleep_until(next);
            let t = seconds_since(start);
            samples.push_str(&format!("# t={t:.4}\n"));
            samples.push_str(&ss_snapshot(&o.connect));
            next += period;
        }
    }
    sleep_until(end);
    let last = ss_snapshot(&o.connect);
    drop(sockets);
    std::fs::write(&o.samples, samples).map_err(|e| format!("{}: {e}", o.samples.display()))?;
    let out = json!({
        "cc": o.cc,
        "local_ports": local_ports,
        "final_ss": last.lines().collect::<Vec<_>>(),
    });
    write_json(&o.out, &out).map_err(|e| format!("{}: {e}", o.out.display()))?;
    std::process::exit(0)
}

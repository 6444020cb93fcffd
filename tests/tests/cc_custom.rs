//! A user-defined congestion controller, end to end: written against the public trait,
//! registered by name, chosen from a scenario file with an app's `cc` option, and seen
//! in the results. It also checks the delivery-rate samples every controller receives.

mod common;

use protocols::tcp::cc::{self, AckSample, CongestionControl, Window};
use scenarios::load_str;
use std::sync::atomic::{AtomicU64, Ordering};

/// Holds the window at a fixed number of segments and records the highest delivery
/// rate it was told of.
#[derive(Debug)]
struct FixedWindow {
    segments: u64,
}

static MAX_RATE: AtomicU64 = AtomicU64::new(0);
static SAMPLES: AtomicU64 = AtomicU64::new(0);

impl CongestionControl for FixedWindow {
    fn name(&self) -> &'static str {
        "fixed"
    }
    fn init(&mut self, w: &mut Window, _conn: &cc::ConnStart) {
        w.cwnd = self.segments * w.mss as u64;
    }
    fn on_ack(&mut self, w: &mut Window, ack: &AckSample) {
        w.cwnd = self.segments * w.mss as u64;
        if let Some(r) = ack.rate.filter(|r| !r.is_app_limited) {
            SAMPLES.fetch_add(1, Ordering::Relaxed);
            MAX_RATE.fetch_max(r.bytes_per_sec(), Ordering::Relaxed);
        }
    }
    fn ssthresh(&mut self, w: &Window, _in_flight: u64) -> u64 {
        w.cwnd
    }
}

fn scenario(window: u64) -> String {
    format!(
        r#"Scenario(
    name: "custom-cc",
    duration: "5s",
    nodes: {{ "a": Host(), "r": Router(), "b": Host() }},
    links: [
        Link(a: "a", b: "r", rate: "1Gbps", delay: "1ms"),
        Link(a: "r", b: "b", rate: "100Mbps", delay: "10ms"),
    ],
    apps: [
        TcpSink(on: "b", port: 5001),
        TcpBulk(name: "bulk", from: "a", to: "b:5001", cc: "fixed{window}"),
    ],
    record: (tcp_series: true),
)"#
    )
}

fn run_with_window(window: u64) -> (f64, Vec<u64>) {
    MAX_RATE.store(0, Ordering::Relaxed);
    SAMPLES.store(0, Ordering::Relaxed);
    let l = load_str("custom.ron", &scenario(window), &[]).expect("loads");
    let (o, files) = common::run_and_read(&l, &format!("cc-custom-{window}"), &["tcp-series.csv"]);
    let csv = &files[0];
    let cwnds = csv
        .lines()
        .skip(1)
        .filter(|l| l.contains(",a,"))
        .map(|l| {
            l.split(',')
                .nth(4)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    (o.summary.flows[0].goodput_bps, cwnds)
}

// The tests share the statistics above, so they run in one test function.
#[test]
fn a_registered_controller_drives_the_window_and_sees_delivery_rates() {
    cc::register("fixed20", || Box::new(FixedWindow { segments: 20 }));
    cc::register("fixed300", || Box::new(FixedWindow { segments: 300 }));
    assert!(cc::names().contains(&"fixed20".to_string()));

    // 20 segments per round trip of about 22.3 ms: window-limited, far below the link.
    let (goodput, cwnds) = run_with_window(20);
    assert!(cwnds.len() > 1000);
    assert!(
        cwnds.iter().all(|&c| c == 20 * 1448),
        "the controller sets cwnd"
    );
    let rtt = 0.0223;
    let expected = 20.0 * 1448.0 / rtt;
    let measured = MAX_RATE.load(Ordering::Relaxed) as f64;
    assert!(SAMPLES.load(Ordering::Relaxed) > 1000);
    assert!(
        (measured / expected - 1.0).abs() < 0.05,
        "delivery rate {measured:.0} B/s, window/RTT {expected:.0} B/s"
    );
    assert!((goodput / 8.0 / expected - 1.0).abs() < 0.1, "{goodput}");

    // 300 segments exceed the path's BDP (about 190): the bottleneck sets the rate,
    // 100 Mb/s of frames carrying 1448 of 1518 bytes as payload.
    let (_, _) = run_with_window(300);
    let link = 100e6 / 8.0 * 1448.0 / 1518.0;
    let measured = MAX_RATE.load(Ordering::Relaxed) as f64;
    assert!(
        (measured / link - 1.0).abs() < 0.03,
        "delivery rate {measured:.0} B/s, bottleneck {link:.0} B/s"
    );
}

/// Reno's window, halved at every reduction, counting what it is told of ECN.
#[derive(Debug, Default)]
struct EcnWatcher {
    acked_in_ca: u64,
}

static ECE_EVENTS: AtomicU64 = AtomicU64::new(0);
static ECE_SAMPLES: AtomicU64 = AtomicU64::new(0);
static CWR_ENTERED: AtomicU64 = AtomicU64::new(0);
static CWR_EXITED: AtomicU64 = AtomicU64::new(0);
static LAST_DELIVERED: AtomicU64 = AtomicU64::new(0);
static LAST_DELIVERED_CE: AtomicU64 = AtomicU64::new(0);

impl CongestionControl for EcnWatcher {
    fn name(&self) -> &'static str {
        "ecn-watcher"
    }
    fn on_ack_event(&mut self, ev: &cc::AckEvent) {
        ECE_EVENTS.fetch_add(ev.ece as u64, Ordering::Relaxed);
        assert!(ev.delivered_ce <= ev.delivered && ev.snd_una <= ev.snd_nxt);
        LAST_DELIVERED.store(ev.delivered, Ordering::Relaxed);
        LAST_DELIVERED_CE.store(ev.delivered_ce, Ordering::Relaxed);
    }
    fn on_ack(&mut self, w: &mut Window, ack: &AckSample) {
        ECE_SAMPLES.fetch_add(ack.ece as u64, Ordering::Relaxed);
        if !ack.cwnd_limited {
            return;
        }
        if w.in_slow_start() {
            w.cwnd += ack.acked;
            return;
        }
        self.acked_in_ca += ack.acked;
        if self.acked_in_ca >= w.cwnd {
            self.acked_in_ca -= w.cwnd;
            w.cwnd += w.mss as u64;
        }
    }
    fn ssthresh(&mut self, w: &Window, _in_flight: u64) -> u64 {
        (w.cwnd / 2).max(2 * w.mss as u64)
    }
    fn on_event(&mut self, _w: &mut Window, ev: cc::CcEvent) {
        match ev {
            cc::CcEvent::EnterCwr => CWR_ENTERED.fetch_add(1, Ordering::Relaxed),
            cc::CcEvent::ExitCwr => CWR_EXITED.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }
}

// A user controller hears of ECN: ECE on the ACKs (`AckEvent` on every ACK, `AckSample` on
// those that grow the window), the bytes they delivered, and each CWR episode.
#[test]
fn a_registered_controller_is_told_of_ecn_echoes_and_cwr_episodes() {
    cc::register("ecn-watcher", || Box::new(EcnWatcher::default()));
    let src = r#"Scenario(
    name: "custom-cc-ecn",
    duration: "10s",
    nodes: { "a": Host(sysctl: { "tcp_ecn": 1 }), "r": Router(), "b": Host() },
    links: [
        Link(a: "a", b: "r", rate: "1Gbps", delay: "1ms"),
        Link(a: "r", b: "b", rate: "10Mbps", delay: "10ms",
             queue: Red(limit: "1000p", min_th: "10p", max_th: "30p", max_p: "10%", ecn: true)),
    ],
    apps: [
        TcpSink(on: "b", port: 5001),
        TcpBulk(name: "bulk", from: "a", to: "b:5001", bytes: "4MB", cc: "ecn-watcher"),
    ],
)"#;
    let l = load_str("custom-ecn.ron", src, &[]).expect("loads");
    let o = scenarios::run(&l, &scenarios::RunOptions::default()).expect("runs");
    let f = &o.summary.flows[0];
    assert_eq!(f.rx_bytes, 4_000_000);
    assert_eq!(f.retransmits, Some(0), "RED marks, it does not drop");
    let events = ECE_EVENTS.load(Ordering::Relaxed);
    let entered = CWR_ENTERED.load(Ordering::Relaxed);
    assert!(entered >= 3, "{entered} CWR episodes");
    assert!(entered <= CWR_EXITED.load(Ordering::Relaxed) + 1);
    assert!(events >= entered, "{events} ECE ACKs");
    // Outside CWR, ECE ACKs reach on_ack too (the one that starts each episode does not
    // grow the window, so fewer do).
    assert!(ECE_SAMPLES.load(Ordering::Relaxed) < events);
    let (delivered, ce) = (
        LAST_DELIVERED.load(Ordering::Relaxed),
        LAST_DELIVERED_CE.load(Ordering::Relaxed),
    );
    assert!(
        delivered >= 4_000_000 && ce > 0 && ce < delivered / 4,
        "{ce} of {delivered}"
    );
}

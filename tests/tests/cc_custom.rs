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

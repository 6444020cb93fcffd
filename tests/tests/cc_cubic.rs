//! CUBIC end to end: one bulk flow through a drop-tail bottleneck, its window read back from
//! `tcp-series.csv`. Each loss cuts the window to 0.7 of what it was, and the regrowth is
//! the cubic curve: concave up to W_max, flat around K = cbrt((W_max - cwnd) / C) seconds
//! after the cut, convex beyond. Also that CUBIC is the default controller.

mod common;

use scenarios::load_str;

/// A sender on a 1 Gb/s access link behind a 20 Mb/s, 50 ms bottleneck with a 100-packet
/// queue: about 180 segments in flight fill the pipe and another 100 the queue, so the
/// window peaks near 280 segments (K about 6 s).
const SCENARIO: &str = r#"Scenario(
    name: "cubic-dumbbell",
    duration: "DURATION",
    nodes: {
        "a": Host(sysctl: { "tcp_congestion_control": "cubic" }),
        "r": Router(),
        "b": Host(),
    },
    links: [
        Link(a: "a", b: "r", rate: "1Gbps", delay: "1ms"),
        Link(a: "r", b: "b", rate: "20Mbps", delay: "50ms", queue: DropTail(limit: "100 packets")),
    ],
    apps: [
        TcpSink(on: "b", port: 5001),
        TcpBulk(name: "bulk", from: "a", to: "b:5001"),
    ],
    record: (tcp_series: true),
)"#;

/// One `tcp_probe` point of the sender.
#[derive(Clone, Debug)]
struct Point {
    t: f64,
    state: String,
    cwnd: u64,
}

fn series(duration: &str, tag: &str) -> Vec<Point> {
    let src = SCENARIO.replace("DURATION", duration);
    let l = load_str("cubic.ron", &src, &[]).expect("loads");
    let (_, files) = common::run_and_read(&l, &format!("cc-cubic-{tag}"), &["tcp-series.csv"]);
    let csv = &files[0];
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (t, node, state, cwnd) = (col("t_ns"), col("node"), col("ca_state"), col("cwnd"));
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[node] == "a")
        .map(|f| Point {
            t: f[t].parse::<f64>().unwrap() / 1e9,
            state: f[state].to_string(),
            cwnd: f[cwnd].parse().unwrap(),
        })
        .collect()
}

/// The sender's MSS: 1500-byte frames less IPv4, TCP and timestamp headers.
const MSS: f64 = 1448.0;

/// One loss episode and the congestion-avoidance epoch after it.
#[derive(Debug)]
struct Epoch {
    /// The window when the loss was detected.
    cwnd_loss: u64,
    /// W_max as Linux keeps it (lowered by fast convergence).
    w_max: f64,
    /// When the epoch began (the first ACK after recovery) and its first window.
    start: f64,
    cwnd_start: u64,
    /// The points from `start` to the next loss.
    points: Vec<Point>,
    /// The next loss ended the epoch (rather than the end of the run).
    ended_by_loss: bool,
}

/// Splits the series at each fast recovery.
fn epochs(s: &[Point]) -> Vec<Epoch> {
    let mut out: Vec<Epoch> = Vec::new();
    let mut last_max = 0.0;
    let mut i = 1;
    while i < s.len() {
        if s[i].state == "recovery" && s[i - 1].state != "recovery" {
            let cwnd_loss = s[i - 1].cwnd;
            // Linux's fast convergence, from what the series shows.
            let w = cwnd_loss as f64;
            last_max = if w < last_max { w * 1741.0 / 2048.0 } else { w };
            while i < s.len() && s[i].state == "recovery" {
                i += 1;
            }
            if i == s.len() {
                break;
            }
            let start = i;
            while i < s.len() && s[i].state != "recovery" && s[i].state != "loss" {
                i += 1;
            }
            out.push(Epoch {
                cwnd_loss,
                w_max: last_max,
                start: s[start].t,
                cwnd_start: s[start].cwnd,
                points: s[start..i].to_vec(),
                ended_by_loss: i < s.len(),
            });
            continue;
        }
        i += 1;
    }
    out
}

impl Epoch {
    /// The window `dt` seconds into the epoch.
    fn cwnd_at(&self, dt: f64) -> f64 {
        let t = self.start + dt;
        self.points
            .iter()
            .take_while(|p| p.t <= t)
            .last()
            .map_or(self.cwnd_start, |p| p.cwnd) as f64
    }
    /// Seconds into the epoch when the window first reaches `cwnd` bytes.
    fn reaches(&self, cwnd: f64) -> Option<f64> {
        self.points
            .iter()
            .find(|p| p.cwnd as f64 >= cwnd)
            .map(|p| p.t - self.start)
    }
    fn end(&self) -> f64 {
        self.points.last().map_or(self.start, |p| p.t) - self.start
    }
}

#[test]
fn cubic_window_after_losses() {
    let s = series("40s", "shape");
    assert!(s.len() > 10_000, "{} points", s.len());
    let epochs = epochs(&s);
    assert!(epochs.len() >= 6, "{} losses", epochs.len());
    assert!(
        s.iter().all(|p| p.state != "loss"),
        "no retransmission timeout"
    );

    // Every loss keeps 717/1024 of the window (PRR ends at ssthresh).
    for e in &epochs {
        let ratio = e.cwnd_start as f64 / e.cwnd_loss as f64;
        assert!((ratio - 0.7).abs() < 0.01, "{e:?}: ratio {ratio}");
    }

    // Where the window grows past W_max before the next loss (the epochs after fast
    // convergence lowered W_max), the curve is flat around K: it crosses W_max - 2 and
    // W_max + 2 segments at K -/+ 1.7 s, and the midpoint of the two is K.
    let mut plateaus = 0;
    for e in epochs.iter().filter(|e| e.ended_by_loss) {
        let k = ((e.w_max - e.cwnd_start as f64) / MSS / 0.4).cbrt();
        let (Some(t1), Some(t2)) = (
            e.reaches(e.w_max - 2.0 * MSS),
            e.reaches(e.w_max + 2.0 * MSS),
        ) else {
            // The next loss came first: at least concave all the way.
            let half = e.end() / 2.0;
            let first = e.cwnd_at(half) - e.cwnd_start as f64;
            let second = e.cwnd_at(e.end()) - e.cwnd_at(half);
            assert!(first > second, "{:?}: {first} then {second}", e.w_max);
            continue;
        };
        plateaus += 1;
        let plateau = (t1 + t2) / 2.0;
        assert!(
            (plateau / k - 1.0).abs() < 0.2,
            "W_max {:.1} segments, cwnd {:.1}: plateau {plateau:.2} s after the epoch began, K {k:.2} s",
            e.w_max / MSS,
            e.cwnd_start as f64 / MSS
        );
        // Concave then convex: the first second and the last second before the next loss
        // each grow the window several times more than the second around K.
        let around_k = (e.cwnd_at(k + 0.5) - e.cwnd_at(k - 0.5)).max(MSS);
        let first = e.cwnd_at(1.0) - e.cwnd_start as f64;
        let last = e.cwnd_at(e.end()) - e.cwnd_at(e.end() - 1.0);
        assert!(first > 3.0 * around_k, "{first} vs {around_k} around K");
        assert!(last > 3.0 * around_k, "{last} vs {around_k} around K");
        assert!(e.end() > k + 1.0);
    }
    assert!(plateaus >= 2, "{plateaus} epochs passed W_max");
}

/// CUBIC is the default, as Linux's `net.ipv4.tcp_congestion_control`: the same path
/// with no controller named anywhere runs event for event as with "cubic", and not as
/// with "newreno". In these 2 s the difference shows in slow start: HyStart leaves it
/// before the 100-packet queue overflows, NewReno overshoots and loses packets.
#[test]
fn a_host_that_names_no_controller_runs_cubic() {
    let run = |sysctl: &str| {
        let src = SCENARIO
            .replace("DURATION", "2s")
            .replace(r#"sysctl: { "tcp_congestion_control": "cubic" }"#, sysctl)
            .replace("record: (tcp_series: true),", "");
        let l = load_str("default-cc.ron", &src, &[]).expect("loads");
        let o = scenarios::run(&l, &scenarios::RunOptions::default()).expect("runs");
        let drops: u64 = o.summary.links.iter().map(|l| l.queue_drops).sum();
        (o.summary.trace_digest, drops)
    };
    let default = run("");
    assert_eq!(default.1, 0);
    assert_eq!(
        default,
        run(r#"sysctl: { "tcp_congestion_control": "cubic" }"#)
    );
    let newreno = run(r#"sysctl: { "tcp_congestion_control": "newreno" }"#);
    assert!(newreno.1 > 0, "{newreno:?}");
    assert_ne!(default.0, newreno.0);
}

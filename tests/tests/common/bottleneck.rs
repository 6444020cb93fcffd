//! A dumbbell measured from inside the run, for the controller validations: N senders
//! and receivers on 1 Gb/s, 0.5 ms access links around a 100 Mb/s, 4 ms bottleneck
//! (base RTT 10.2 ms). The run is stepped so that the bottleneck's queue can be sampled;
//! counters and the flows' received bytes are taken over a measurement window.

use sim_core::time::SimTime;

/// Bottleneck rate, and the frame of a full-sized data segment (1448 payload bytes, 12 of
/// timestamps, 40 of TCP/IP headers, 14 of Ethernet).
pub const RATE_BPS: f64 = 100e6;
pub const FRAME_BYTES: f64 = 1514.0;

/// The base RTT: 10 ms of propagation plus the serialization of a data frame on the
/// three links and of an ACK (66-byte frame) on the way back.
pub fn base_rtt_s() -> f64 {
    0.010 + FRAME_BYTES * 8.0 * (1.0 / RATE_BPS + 2.0 / 1e9) + 66.0 * 8.0 * 2.2e-8
}

/// C x RTT in packets.
pub fn bdp_packets() -> f64 {
    RATE_BPS / (FRAME_BYTES * 8.0) * base_rtt_s()
}

/// The scenario: `n` flows f0.. from a<i> to b<i>, started `stagger_ms` apart, every host
/// with congestion controller `cc`, the bottleneck with `queue` (RON).
pub fn dumbbell(n: usize, cc: &str, queue: &str, duration_s: f64, stagger_ms: u64) -> String {
    let mut nodes = String::new();
    let mut links = String::new();
    let mut apps = String::new();
    for i in 0..n {
        nodes.push_str(&format!(r#""a{i}": Host(), "b{i}": Host(), "#));
        links.push_str(&format!(
            r#"Link(a: "a{i}", b: "r1", rate: "1Gbps", delay: "500us"),
               Link(a: "r2", b: "b{i}", rate: "1Gbps", delay: "500us"),
            "#
        ));
        apps.push_str(&format!(
            r#"TcpSink(on: "b{i}", port: 5001),
               TcpBulk(name: "f{i}", from: "a{i}", to: "b{i}:5001", start: "{}ms"),
            "#,
            stagger_ms * i as u64
        ));
    }
    format!(
        r#"Scenario(
    name: "bottleneck",
    duration: "{duration_s}s",
    sysctl: {{ "tcp_congestion_control": "{cc}" }},
    nodes: {{ {nodes} "r1": Router(), "r2": Router() }},
    links: [
        {links}
        Link(a: "r1", b: "r2", rate: "100Mbps", delay: "4ms", queue: {queue}),
    ],
    apps: [ {apps} ],
)"#
    )
}

/// What a run measured over its window.
#[derive(Debug)]
pub struct Measured {
    /// Bottleneck busy fraction.
    pub utilization: f64,
    /// Marked frames / frames sent on the bottleneck.
    pub marked: f64,
    /// Frames the bottleneck dropped (queue full or AQM).
    pub drops: u64,
    /// Time-average of the packets waiting (not counting the one being sent).
    pub queue_mean: f64,
    /// Means, over chunks of `chunk_s`, of the queue's maximum and minimum.
    pub queue_max: f64,
    pub queue_min: f64,
    /// Payload bytes each flow (f0, f1, ...) delivered in the window.
    pub flow_bytes: Vec<u64>,
}

/// Runs scenario `ron` to `duration_s`, measuring from `warmup_s`; the queue is sampled
/// every 20 us.
pub fn measure(ron: &str, warmup_s: f64, duration_s: f64, chunk_s: f64) -> Measured {
    let l = scenarios::load_str("bottleneck.ron", ron, &[]).expect("loads");
    let mut built = scenarios::build::build(&l, l.scenario.seed).expect("builds");
    let w = &mut built.world;
    let link = w
        .links()
        .iter()
        .position(|l| l.name == "r1-r2")
        .expect("the bottleneck");
    let flow_bytes = |w: &sim_core::world::World| -> Vec<u64> {
        let mut f: Vec<(usize, u64)> = w
            .net
            .flows
            .iter()
            .filter_map(|f| Some((f.id.strip_prefix('f')?.parse().ok()?, f.rx_bytes)))
            .collect();
        f.sort();
        f.into_iter().map(|(_, b)| b).collect()
    };
    w.start();
    let step = 20_000u64;
    let warmup = SimTime::from_nanos((warmup_s * 1e9) as u64);
    let end = SimTime::from_nanos((duration_s * 1e9) as u64);
    let chunk_len = ((chunk_s * 1e9 / step as f64).round() as usize).max(1);
    let mut t = SimTime::ZERO;
    let mut at_warmup = None;
    let (mut sum, mut samples) = (0u64, 0u64);
    let (mut chunk_max, mut chunk_min, mut in_chunk) = (0usize, usize::MAX, 0usize);
    let (mut maxima, mut minima) = (Vec::new(), Vec::new());
    while t < end {
        t = SimTime::from_nanos(t.as_nanos() + step);
        w.run(t, None, || false);
        if t < warmup {
            continue;
        }
        if at_warmup.is_none() {
            at_warmup = Some((w.links()[link].dirs[0].stats, flow_bytes(w)));
        }
        let q = w.links()[link].dirs[0].queue_len();
        sum += q as u64;
        samples += 1;
        chunk_max = chunk_max.max(q);
        chunk_min = chunk_min.min(q);
        in_chunk += 1;
        if in_chunk == chunk_len {
            maxima.push(chunk_max as f64);
            minima.push(chunk_min as f64);
            (chunk_max, chunk_min, in_chunk) = (0, usize::MAX, 0);
        }
    }
    let (s0, bytes0) = at_warmup.expect("the window is not empty");
    let s1 = w.links()[link].dirs[0].stats;
    let bytes1 = flow_bytes(w);
    let span_ns = (end.as_nanos() - warmup.as_nanos()) as f64;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Measured {
        utilization: (s1.busy_ns - s0.busy_ns) as f64 / span_ns,
        marked: (s1.ecn_marks - s0.ecn_marks) as f64 / (s1.tx_packets - s0.tx_packets) as f64,
        drops: s1.queue_drops + s1.aqm_drops - s0.queue_drops - s0.aqm_drops,
        queue_mean: sum as f64 / samples as f64,
        queue_max: mean(&maxima),
        queue_min: mean(&minima),
        flow_bytes: bytes1.iter().zip(&bytes0).map(|(b1, b0)| b1 - b0).collect(),
    }
}

/// Prints one check: published, measured, relative error; returns the error.
pub fn report(what: &str, published: f64, measured: f64) -> f64 {
    let e = (measured - published) / published;
    println!(
        "  {what:<40} published {published:>8.3}  simulated {measured:>8.3}  error {:>+6.1}%",
        e * 100.0
    );
    e
}

//! Sampled time series (`record: (series_interval: ...)`): exact values in virtual time,
//! and no effect on what the run does.

mod common;

use scenarios::load_str;

/// h1 sends 1000-byte datagrams every millisecond (8 Mb/s of payload) to h2 through r,
/// and pings h2 every 25 ms from 50 ms on; the r-h2 link runs at `rate`.
fn scenario(rate: &str, series: bool) -> String {
    let record = if series {
        r#"record: (series_interval: "100ms"),"#
    } else {
        ""
    };
    format!(
        r#"Scenario(
    name: "series",
    duration: "1s",
    nodes: {{ "h1": Host(), "r": Router(), "h2": Host() }},
    links: [
        Link(a: "h1", b: "r", rate: "100Mbps", delay: "1ms"),
        Link(a: "r", b: "h2", rate: "{rate}", delay: "1ms", queue: DropTail(limit: "1000 packets")),
    ],
    apps: [
        UdpSink(on: "h2", port: 9),
        UdpCbr(name: "cbr", from: "h1", to: "h2:9", rate: "8Mbps", size: 1000, start: "0s"),
        Ping(name: "p", from: "h1", to: "h2", interval: "25ms", start: "50ms"),
    ],
    {record}
)"#
    )
}

/// The rows of `name`: the time, then the numbers (0 for an empty field).
fn rows(csv: &str, name: &str) -> Vec<Vec<u64>> {
    let t = reports::series::Table::parse(csv);
    t.rows
        .iter()
        .filter(|r| r[1] == name)
        .map(|r| {
            let mut v = vec![r[0].parse().unwrap()];
            v.extend(r[2..].iter().map(|x| {
                if x.is_empty() {
                    0
                } else {
                    x.parse::<u64>().unwrap()
                }
            }));
            v
        })
        .collect()
}

#[test]
fn flow_and_link_series_sample_exactly_and_leave_the_digest_alone() {
    let with = load_str("s.ron", &scenario("100Mbps", true), &[]).unwrap_or_else(|e| panic!("{e}"));
    let without = load_str("s.ron", &scenario("100Mbps", false), &[]).unwrap();
    let (o, files) = common::run_and_read(&with, "series", &["flow-series.csv", "link-series.csv"]);
    let (plain, _) = common::run_and_read(&without, "plain", &[]);
    assert_eq!(o.summary.trace_digest, plain.summary.trace_digest);
    assert_eq!(o.summary.events, plain.summary.events);

    // One row per flow and per link direction every 100 ms, from 100 ms to 1 s.
    let flow = rows(&files[0], "cbr");
    let times: Vec<u64> = flow.iter().map(|r| r[0]).collect();
    assert_eq!(
        times,
        (1..=10).map(|k| k * 100_000_000).collect::<Vec<u64>>()
    );
    // Steady state: exactly 100 datagrams of 1000 bytes arrive per 100 ms = 8 Mb/s.
    for r in &flow[1..] {
        assert_eq!(r[3], 8_000_000, "{r:?}");
    }
    // The last sample's cumulative bytes are the summary's.
    let last = flow.last().unwrap();
    let f = common::flow(&o, "cbr");
    assert_eq!((last[1], last[2]), (f.rx_bytes, f.tx_bytes));
    assert!(
        flow.iter().all(|r| r[4] == 0),
        "CBR to a sink has no RTT samples"
    );
    // Four pings every 100 ms: 2 ms of propagation each way, 98-byte frames serialized on
    // two links each way (7.84 us each), and at most one CBR frame ahead in a queue
    // (83.36 us) per hop.
    let ping = rows(&files[0], "p");
    let min = 4_000_000 + 4 * 7_840;
    for r in &ping {
        assert!((min..=min + 4 * 83_360).contains(&r[4]), "{r:?}");
    }
    // The pings at 50 and 75 ms meet no queue: exactly the analytic RTT.
    assert_eq!(ping[0][4], min);
    let link = rows(&files[1], "r-h2:r->h2");
    assert_eq!(link.len(), 10);
    // 1000 bytes of payload + UDP 8 + IP 20 + Ethernet 14 = 1042 bytes a frame.
    // Plus four echo requests of 98 bytes.
    assert_eq!(link[5][3] - link[4][3], 100 * 1042 + 4 * 98);
    assert_eq!(link[5][4], (100 * 1042 + 4 * 98) * 8 * 10);
    assert!(link.iter().all(|r| r[1] == 0), "no queue at 100 Mb/s");

    // At 4 Mb/s the link drains a frame every 2.084 ms while one arrives every 1 ms: the
    // queue grows by about 52 frames every 100 ms (plus the echo requests).
    let slow = load_str("s.ron", &scenario("4Mbps", true), &[]).unwrap();
    let (o, files) = common::run_and_read(&slow, "slow", &["link-series.csv"]);
    let link = rows(&files[0], "r-h2:r->h2");
    let queue: Vec<u64> = link.iter().map(|r| r[1]).collect();
    println!("queue every 100 ms: {queue:?}");
    assert!(queue.windows(2).all(|w| w[1] > w[0]), "{queue:?}");
    for w in queue.windows(2) {
        assert!((50..=57).contains(&(w[1] - w[0])), "{queue:?}");
    }
    let max = o
        .summary
        .links
        .iter()
        .find(|l| l.id == "r-h2:r->h2")
        .unwrap()
        .max_queue_packets;
    assert!(*queue.last().unwrap() <= max);
    // Its throughput is the link's rate, in whole frames that started in the step: 100 ms
    // / 2.084 ms = 47.98, so about 48 CBR frames (and up to four small echo requests).
    for r in &link[1..] {
        let bytes = r[4] / 80;
        assert!((46 * 1042..=48 * 1042 + 4 * 98).contains(&bytes), "{r:?}");
    }
}

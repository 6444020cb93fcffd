//! End-to-end tests of the TCP examples (`scenarios/examples/tcp-*.ron`): each runs the
//! whole pipeline (file, build, run, summary and trace) and checks the behaviour the
//! example is about, with exact virtual times where the reference behaviour gives one.
//! The tags name the reference behaviours (`../shared/reference-behaviors.md`).

mod common;

use scenarios::{load_file, run, Outcome, RunOptions};
use std::path::{Path, PathBuf};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples")
}

fn run_example(name: &str, sets: &[&str]) -> Outcome {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let l = load_file(&examples_dir().join(format!("{name}.ron")), &sets).expect("example loads");
    run(&l, &RunOptions::default()).expect("example runs")
}

/// Runs an example writing its outputs (trace.jsonl included); returns the outcome and the
/// trace lines.
fn run_traced(name: &str) -> (Outcome, Vec<String>, PathBuf) {
    let l = load_file(&examples_dir().join(format!("{name}.ron")), &[]).expect("example loads");
    let dir = std::env::temp_dir().join(format!("netdes-tcp-e2e-{}-{name}", std::process::id()));
    let o = run(
        &l,
        &RunOptions {
            out_dir: Some(dir.clone()),
            trace: true,
            ..Default::default()
        },
    )
    .expect("example runs");
    let trace = std::fs::read_to_string(dir.join("trace.jsonl")).expect("trace written");
    (o, trace.lines().map(str::to_string).collect(), dir)
}

use common::flow;

fn extra(f: &reports::FlowSummary, key: &str) -> f64 {
    *f.extra
        .get(key)
        .unwrap_or_else(|| panic!("flow {} has no extra.{key}: {:?}", f.id, f.extra))
}

fn tcp_counter(o: &Outcome, node: &str, name: &str) -> u64 {
    let n = o.summary.nodes.iter().find(|n| n.name == node).unwrap();
    n.tcp.get(name).copied().unwrap_or(0)
}

fn assert_ok(f: &reports::FlowSummary, state: &str) {
    assert_eq!(f.error, None, "{}: {f:?}", f.id);
    assert_eq!(f.state.as_deref(), Some(state), "{}: {f:?}", f.id);
}

fn assert_failed(f: &reports::FlowSummary, errno: &str) {
    assert_eq!(f.error.as_deref(), Some(errno), "{}: {f:?}", f.id);
    assert_eq!(f.state.as_deref(), Some("CLOSED"), "{}: {f:?}", f.id);
}

/// A bulk flow that arrived byte for byte.
fn assert_verified(f: &reports::FlowSummary, bytes: u64) {
    assert_eq!(f.rx_bytes, bytes, "{}: {f:?}", f.id);
    assert_eq!(extra(f, "verified_bytes"), bytes as f64, "{}", f.id);
    assert_eq!(extra(f, "mismatches"), 0.0, "{}", f.id);
}

/// The string or number value of `key` in a trace line (a flat JSON object).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let rest = &line[line.find(&pat)? + pat.len()..];
    if let Some(s) = rest.strip_prefix('"') {
        s.split('"').next()
    } else {
        rest.split([',', '}']).next()
    }
}

fn t_ns(line: &str) -> u64 {
    field(line, "t_ns").unwrap().parse().unwrap()
}

/// Trace lines of `event` on `node`.
fn events<'a>(trace: &'a [String], node: &str, event: &str) -> Vec<&'a String> {
    trace
        .iter()
        .filter(|l| field(l, "node") == Some(node) && field(l, "event") == Some(event))
        .collect()
}

/// The states a node's connections went through, in order ("FROM>TO").
fn transitions(trace: &[String], node: &str, conn_contains: &str) -> Vec<String> {
    events(trace, node, "tcp_state")
        .into_iter()
        .filter(|l| field(l, "conn").is_some_and(|c| c.contains(conn_contains)))
        .map(|l| format!("{}>{}", field(l, "from").unwrap(), field(l, "to").unwrap()))
        .collect()
}

// RB-TCP-01, RB-TCP-02, RB-TCP-08
#[test]
fn handshake_request_and_three_way_close() {
    let (o, trace, dir) = run_traced("tcp-handshake-close");
    let f = flow(&o, "get");
    assert_ok(f, "TIME_WAIT");
    assert_eq!((f.tx_packets, f.tx_bytes, f.rx_bytes), (1, 200, 5000));
    assert_eq!(f.retransmits, Some(0));
    assert_eq!(f.rtt_ms.unwrap().samples, 1);
    // The SYN carries Linux's options and a random ISN; the SYN-ACK acknowledges ISN + 1.
    let syn = events(&trace, "client", "tcp_tx")[0];
    assert_eq!(field(syn, "flags"), Some("S"));
    let opts = field(syn, "opts").unwrap();
    assert!(
        opts.starts_with("mss 1460,sackOK,TS val ") && opts.ends_with(",wscale 7"),
        "{opts}"
    );
    let isn: u32 = field(syn, "seq").unwrap().parse().unwrap();
    let synack = events(&trace, "server", "tcp_tx")[0];
    assert_eq!(field(synack, "flags"), Some("S."));
    assert_eq!(
        field(synack, "ack"),
        Some(isn.wrapping_add(1).to_string().as_str())
    );
    // Data segments never exceed the announced MSS less the timestamp option.
    for l in events(&trace, "server", "tcp_tx") {
        let len: u32 = field(l, "len").unwrap().parse().unwrap();
        assert!(len <= 1448, "{l}");
    }
    assert_eq!(
        transitions(&trace, "client", ":80"),
        [
            "CLOSED>SYN_SENT",
            "SYN_SENT>ESTABLISHED",
            "ESTABLISHED>FIN_WAIT_1",
            "FIN_WAIT_1>FIN_WAIT_2",
            "FIN_WAIT_2>TIME_WAIT"
        ]
    );
    assert_eq!(
        transitions(&trace, "server", "->10.0.0.2"),
        [
            "LISTEN>SYN_RECV",
            "SYN_RECV>ESTABLISHED",
            "ESTABLISHED>CLOSE_WAIT",
            "CLOSE_WAIT>LAST_ACK",
            "LAST_ACK>CLOSED"
        ]
    );
    // Three-way close: the server's FIN carries its ACK of the client's FIN.
    let fins: Vec<_> = events(&trace, "server", "tcp_tx")
        .into_iter()
        .filter(|l| field(l, "flags") == Some("F."))
        .collect();
    assert_eq!(fins.len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

// RB-TCP-04, RB-ARP-03
#[test]
fn syn_to_a_dead_address_times_out_at_127_s() {
    let (o, trace, dir) = run_traced("tcp-syn-dead-address");
    let f = flow(&o, "dead");
    assert_failed(f, "ETIMEDOUT");
    assert_eq!(extra(f, "error_at_s"), 127.0);
    assert_eq!(f.retransmits, Some(6));
    let syns: Vec<u64> = events(&trace, "client", "tcp_tx")
        .into_iter()
        .filter(|l| field(l, "flags") == Some("S"))
        .map(|l| t_ns(l))
        .collect();
    let s = 1_000_000_000;
    assert_eq!(syns, [0, s, 3 * s, 7 * s, 15 * s, 31 * s, 63 * s]);
    let err = events(&trace, "client", "tcp_error");
    assert_eq!(err.len(), 1);
    assert_eq!(t_ns(err[0]), 127 * s);
    assert_eq!(field(err[0], "errno"), Some("ETIMEDOUT"));
    // Nothing answered: no ICMP error, no RST.
    let client = o.summary.nodes.iter().find(|n| n.name == "client").unwrap();
    assert_eq!(client.counters.get("icmp_received"), None);
    assert_eq!(tcp_counter(&o, "client", "InRsts"), 0);
    let _ = std::fs::remove_dir_all(dir);
}

// RB-TCP-03
#[test]
fn connecting_to_a_closed_port_is_refused_within_a_round_trip() {
    let (o, trace, dir) = run_traced("tcp-closed-port");
    let refused = flow(&o, "refused");
    assert_failed(refused, "ECONNREFUSED");
    // Started at 100 ms; one round trip (10 ms of propagation) plus ARP on both hops.
    let at = extra(refused, "error_at_s");
    assert!(at > 0.110 && at < 0.122, "{at}");
    assert_eq!(refused.retransmits, Some(0));
    assert_eq!(tcp_counter(&o, "server", "OutRsts"), 1);
    // The RST answers the SYN: no ACK number of ours to echo, so seq 0 and ack ISN + 1.
    let syn = events(&trace, "client", "tcp_tx")
        .into_iter()
        .find(|l| field(l, "conn").is_some_and(|c| c.ends_with(":5002")))
        .unwrap();
    let isn: u32 = field(syn, "seq").unwrap().parse().unwrap();
    let rst = events(&trace, "server", "tcp_tx")
        .into_iter()
        .find(|l| field(l, "flags") == Some("R."))
        .unwrap();
    assert_eq!(field(rst, "seq"), Some("0"));
    assert_eq!(
        field(rst, "ack"),
        Some(isn.wrapping_add(1).to_string().as_str())
    );
    let accepted = flow(&o, "accepted");
    assert_ok(accepted, "TIME_WAIT");
    assert_verified(accepted, 10_000);
    let _ = std::fs::remove_dir_all(dir);
}

// RB-ARP-02
#[test]
fn connecting_to_an_unowned_lan_address_fails_with_ehostunreach_when_arp_gives_up() {
    let (o, trace, dir) = run_traced("tcp-arp-failure");
    let f = flow(&o, "nobody");
    assert_failed(f, "EHOSTUNREACH");
    assert_eq!(extra(f, "error_at_s"), 3.0);
    // Only ARP requests left the host: three of them, a second apart; never a SYN.
    let a = o
        .summary
        .links
        .iter()
        .find(|l| l.id == "a-sw:a->sw")
        .unwrap();
    assert_eq!(a.tx_packets, 3);
    let asks: Vec<u64> = events(&trace, "a", "arp_request")
        .into_iter()
        .map(|l| t_ns(l))
        .collect();
    assert_eq!(asks, [0, 1_000_000_000, 2_000_000_000]);
    let _ = std::fs::remove_dir_all(dir);
}

// RB-TCP-06
#[test]
fn accept_queue_overflow_drops_or_resets_and_late_clients_get_in() {
    let o = run_example("tcp-accept-overflow", &[]);
    for id in ["p1", "p2", "p3", "p4", "p5", "s1", "s2", "s3", "s5"] {
        let f = flow(&o, id);
        assert_ok(f, "TIME_WAIT");
        assert_verified(f, 20_000);
    }
    // The first three were accepted from the queue at once.
    for id in ["p1", "p2", "p3"] {
        assert_eq!(flow(&o, id).retransmits, Some(0), "{id}");
    }
    // p4 thought it was connected at once, but its data waited for room in the queue.
    let p4 = flow(&o, "p4");
    assert!(extra(p4, "connect_ms") < 25.0);
    assert!(p4.retransmits.unwrap() > 0);
    // p5's SYN was dropped twice: it got in with the SYN sent 3 s after the first.
    let p5 = flow(&o, "p5");
    assert!(
        (3000.0..3030.0).contains(&extra(p5, "connect_ms")),
        "{p5:?}"
    );
    // With tcp_abort_on_overflow = 1 the overflowing ACK gets a reset instead.
    assert_failed(flow(&o, "s4"), "ECONNRESET");
    for server in ["patient", "strict"] {
        assert!(tcp_counter(&o, server, "ListenOverflows") >= 3, "{server}");
    }
    assert_eq!(tcp_counter(&o, "patient", "OutRsts"), 0);
    assert!(tcp_counter(&o, "strict", "OutRsts") >= 1);
}

// RB-TCP-07
#[test]
fn syn_cookies_keep_a_flooded_server_reachable() {
    let o = run_example("tcp-syn-flood", &[]);
    let ok = flow(&o, "legit-cookies");
    assert_ok(ok, "TIME_WAIT");
    assert_eq!((ok.rx_packets, ok.rx_bytes), (2, 20_000));
    assert!(tcp_counter(&o, "cookies", "SyncookiesSent") > 1000);
    assert!(tcp_counter(&o, "cookies", "SyncookiesRecv") >= 1);
    let dropped = flow(&o, "legit-nocookies");
    assert_failed(dropped, "ETIMEDOUT");
    // Started at 1 s; tcp_syn_retries = 2: SYNs at 0, 1 and 3 s, failure at 7 s.
    assert_eq!(extra(dropped, "error_at_s"), 8.0);
    assert_eq!(tcp_counter(&o, "nocookies", "SyncookiesSent"), 0);
    assert!(tcp_counter(&o, "nocookies", "ListenDrops") > 1000);
}

// RB-TCP-09, RB-TCP-22
#[test]
fn time_wait_holds_the_port_for_60_s_and_reuse_needs_so_reuseaddr() {
    let (o, trace, dir) = run_traced("tcp-time-wait-reuse");
    assert_ok(flow(&o, "first"), "CLOSED");
    assert_failed(flow(&o, "no-reuse"), "EADDRINUSE");
    assert_failed(flow(&o, "same-peer"), "EADDRNOTAVAIL");
    assert_ok(flow(&o, "other-peer"), "CLOSED");
    assert_eq!(flow(&o, "other-peer").rx_bytes, 1000);
    assert_ok(flow(&o, "later"), "TIME_WAIT");
    assert_eq!(flow(&o, "later").rx_bytes, 1000);
    // TIME_WAIT lasts exactly 60 s.
    let tw: Vec<(u64, String)> = events(&trace, "client", "tcp_state")
        .into_iter()
        .filter(|l| field(l, "conn") == Some("10.0.0.2:20000->10.0.1.2:80"))
        .map(|l| {
            (
                t_ns(l),
                format!("{}>{}", field(l, "from").unwrap(), field(l, "to").unwrap()),
            )
        })
        .collect();
    let enter = tw
        .iter()
        .find(|(_, s)| s == "FIN_WAIT_2>TIME_WAIT")
        .unwrap()
        .0;
    let leave = tw.iter().find(|(_, s)| s == "TIME_WAIT>CLOSED").unwrap().0;
    assert_eq!(leave - enter, 60_000_000_000);
    let _ = std::fs::remove_dir_all(dir);
}

// RB-TCP-14
#[test]
fn half_closed_connection_keeps_receiving() {
    let (o, trace, dir) = run_traced("tcp-half-close");
    let f = flow(&o, "upload");
    assert_ok(f, "TIME_WAIT");
    assert_eq!(f.tx_bytes, 300_000);
    // What came back is the sender's stream, in order (see also the ignored test below).
    assert!(f.rx_bytes > 290_000, "{f:?}");
    assert_eq!(extra(f, "echo_verified_bytes"), f.rx_bytes as f64);
    assert_eq!(extra(f, "echo_mismatches"), 0.0);
    // Walk the client's connection: data arrives after it reached FIN_WAIT_2, and the
    // server sends data after it reached CLOSE_WAIT.
    let mut client_state = "";
    let mut server_state = "";
    let (mut rx_in_fin_wait_2, mut tx_in_close_wait) = (0, 0);
    for l in &trace {
        let (node, ev) = (field(l, "node").unwrap(), field(l, "event").unwrap());
        let data = field(l, "len").is_some_and(|n| n != "0");
        match (node, ev) {
            ("client", "tcp_state") => client_state = field(l, "to").unwrap(),
            ("server", "tcp_state") if !field(l, "conn").unwrap().starts_with("0.0.0.0") => {
                server_state = field(l, "to").unwrap()
            }
            ("client", "tcp_rx") if data && client_state == "FIN_WAIT_2" => rx_in_fin_wait_2 += 1,
            ("server", "tcp_tx") if data && server_state == "CLOSE_WAIT" => tx_in_close_wait += 1,
            _ => {}
        }
    }
    assert!(
        rx_in_fin_wait_2 > 0 && tx_in_close_wait > 0,
        "{rx_in_fin_wait_2} {tx_in_close_wait}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// The echo server's last 744 bytes travel in the segment that carries its FIN. The
/// client is in FIN_WAIT_2, moves to TIME_WAIT, and `conn.rs` `enter_time_wait()` clears
/// the receive buffer, so the application, which still holds the socket, never reads
/// them (Linux keeps unread data readable after tcp_time_wait()). Un-ignore when fixed.
#[test]
fn half_close_delivers_every_echoed_byte() {
    let o = run_example("tcp-half-close", &[]);
    let f = flow(&o, "upload");
    assert_eq!(f.rx_bytes, 300_000);
    assert_eq!(extra(f, "echo_verified_bytes"), 300_000.0);
}

// RB-TCP-20, RB-TCP-21
#[test]
fn a_crashed_peer_is_noticed_only_by_keepalive_or_retransmission_and_a_killed_one_closes() {
    let o = run_example("tcp-peer-crash", &[]);
    // Idle since about 70 ms: probes at 5, 6 and 7 s of idleness, failure at 8 s.
    let ka = flow(&o, "keepalive");
    assert_failed(ka, "ETIMEDOUT");
    let at = extra(ka, "error_at_s");
    assert!((8.0..8.2).contains(&at), "{at}");
    assert_ok(flow(&o, "idle"), "ESTABLISHED");
    let busy = flow(&o, "busy");
    assert_failed(busy, "ETIMEDOUT");
    // Fifteen timeouts of the same segment (earlier retransmissions were fast ones, from
    // queue drops while the server was up).
    assert_eq!(extra(busy, "rto_timeouts"), 15.0);
    assert!(busy.retransmits.unwrap() >= 15);
    assert!(extra(busy, "error_at_s") > 924.6, "{busy:?}");
    // The killed app's kernel closes: FIN after reading everything, RST with unread data.
    assert_ok(flow(&o, "to-killed"), "CLOSED");
    let rst = flow(&o, "to-killed-busy");
    assert_failed(rst, "ECONNRESET");
    assert!((2.0..2.05).contains(&extra(rst, "error_at_s")));
    // The crash sends nothing: the only RST the client received came from server2.
    assert_eq!(tcp_counter(&o, "client", "InRsts"), 1);
}

// RB-TCP-35
#[test]
fn a_slow_reader_closes_the_window_and_the_sender_probes() {
    let (o, trace, dir) = run_traced("tcp-zero-window");
    let f = flow(&o, "upload");
    assert_ok(f, "TIME_WAIT");
    assert_verified(f, 40_000);
    // The reader's pace (40 kb/s), not the path's, sets the goodput.
    assert!(f.goodput_bps < 45_000.0, "{}", f.goodput_bps);
    let zero_windows = events(&trace, "server", "tcp_tx")
        .into_iter()
        .filter(|l| field(l, "win") == Some("0"))
        .count();
    assert!(zero_windows >= 2, "{zero_windows}");
    let probes = events(&trace, "client", "tcp_zero_window_probe").len();
    assert!(probes >= 1);
    // The sender never had more in flight than the receive buffer (14480 bytes) holds.
    for l in events(&trace, "client", "tcp_tx") {
        let len: u64 = field(l, "len").unwrap().parse().unwrap();
        assert!(len <= 1448);
    }
    if common::tshark_available() {
        let pcap = dir.join("link-client-r.pcap");
        assert_eq!(
            common::tshark_count(&pcap, "tcp.analysis.zero_window_probe"),
            probes
        );
        assert!(common::tshark_count(&pcap, "tcp.analysis.zero_window") >= zero_windows);
    }
    let _ = std::fs::remove_dir_all(dir);
}

// RB-IP-04
#[test]
fn path_mtu_discovery_shrinks_segments_and_a_black_hole_times_out() {
    let (o, trace, dir) = run_traced("tcp-pmtu-blackhole");
    let ok = flow(&o, "ok");
    assert_ok(ok, "TIME_WAIT");
    assert_verified(ok, 100_000);
    // Too-big segments are resent at once, never after a timeout.
    assert!(ok.retransmits.unwrap() > 0);
    assert_eq!(extra(ok, "rto_timeouts"), 0.0);
    let pmtu = events(&trace, "ok", "tcp_pmtu");
    assert_eq!(pmtu.len(), 1);
    assert_eq!(
        (field(pmtu[0], "mtu"), field(pmtu[0], "mss")),
        (Some("1000"), Some("948"))
    );
    let bh = flow(&o, "blackhole");
    assert_failed(bh, "ETIMEDOUT");
    assert_eq!(bh.rx_bytes, 0);
    assert_eq!(bh.retransmits, Some(5));
    assert!(events(&trace, "blackhole", "tcp_pmtu").is_empty());
    let r2 = o.summary.nodes.iter().find(|n| n.name == "r2").unwrap();
    assert!(r2.counters["frag_needed"] > 0 && r2.counters["no_route"] > 0);
    let _ = std::fs::remove_dir_all(dir);
}

// RB-TCP-30, RB-TCP-33
#[test]
fn a_bulk_transfer_over_a_lossy_path_arrives_byte_exact() {
    let (o, _, dir) = run_traced("tcp-bulk-lossy");
    let f = flow(&o, "bulk");
    assert_ok(f, "TIME_WAIT");
    assert_verified(f, 2_000_000);
    assert_eq!(f.tx_bytes, 2_000_000);
    let r = f.retransmits.unwrap();
    assert!(r > 0);
    let lost: u64 = o.summary.links.iter().map(|l| l.loss_drops).sum();
    assert!(lost > 0);
    if common::tshark_available() {
        // tshark calls a retransmission sent within an RTT of the original "out of order".
        let pcap = dir.join("link-client-r.pcap");
        let resent = common::tshark_count(
            &pcap,
            "ip.src == 10.0.0.2 && (tcp.analysis.retransmission || tcp.analysis.fast_retransmission || tcp.analysis.out_of_order)",
        );
        assert_eq!(resent as u64, r);
    }
    let _ = std::fs::remove_dir_all(dir);
    // Other loss patterns: whatever arrives is exactly the sender's bytes, in order.
    // (Duplicate ACKs are compared with tshark in the test below.)
    for seed in 1..=4 {
        let o = run_example("tcp-bulk-lossy", &[&format!("seed={seed}")]);
        let f = flow(&o, "bulk");
        assert_eq!(f.error, None);
        assert!(f.rx_bytes > 0);
        assert_eq!(extra(f, "verified_bytes"), f.rx_bytes as f64, "seed {seed}");
        assert_eq!(extra(f, "mismatches"), 0.0, "seed {seed}");
    }
}

/// Regression: with seed 1 an RTO at 1.21 s left cwnd at one segment and it never grew
/// again, because an ACK covering everything in flight skipped the controller.
#[test]
fn lossy_transfers_complete_whatever_the_loss_pattern() {
    for seed in 1..=4 {
        let o = run_example("tcp-bulk-lossy", &[&format!("seed={seed}")]);
        let f = flow(&o, "bulk");
        assert_ok(f, "TIME_WAIT");
        assert_verified(f, 2_000_000);
    }
}

/// RB-TCP-30 with every impairment at once: corrupted frames (which fail their checksum
/// at the receiver), duplicated frames, reordering and loss, in both directions.
#[test]
fn corruption_and_duplication_do_not_damage_the_stream() {
    let o = run_example(
        "tcp-bulk-lossy",
        &[
            r#"links[0].corrupt="1%""#,
            r#"links[0].duplicate="1%""#,
            r#"links[1].corrupt="1%""#,
            r#"links[1].duplicate="2%""#,
        ],
    );
    let f = flow(&o, "bulk");
    assert_ok(f, "TIME_WAIT");
    assert_verified(f, 2_000_000);
    let corrupted: u64 = o.summary.links.iter().map(|l| l.corrupted).sum();
    let duplicated: u64 = o.summary.links.iter().map(|l| l.duplicated).sum();
    assert!(
        corrupted > 10 && duplicated > 10,
        "{corrupted} {duplicated}"
    );
}

#[test]
fn the_same_tcp_run_gives_the_same_digest() {
    let a = run_example("tcp-bulk-lossy", &[]);
    let b = run_example("tcp-bulk-lossy", &[]);
    assert_eq!(a.summary.trace_digest, b.summary.trace_digest);
    let c = run_example("tcp-bulk-lossy", &["seed=8"]);
    assert_ne!(a.summary.trace_digest, c.summary.trace_digest);
}

/// The per-connection time series: `record.tcp_series` writes tcp-series.csv with one row
/// per ACK the sender processed, the same points `tcp_probe` puts in trace.jsonl.
#[test]
fn tcp_series_follows_the_sender_through_loss_and_recovery() {
    let l = load_file(
        &examples_dir().join("tcp-bulk-lossy.ron"),
        &["record=(trace: [TcpProbe, Tcp], tcp_series: true)".to_string()],
    )
    .expect("example loads");
    let (o, files) = common::run_and_read(&l, "tcp-series", &["tcp-series.csv", "trace.jsonl"]);
    let (csv, trace) = (&files[0], &files[1]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(reports::TCP_SERIES_COLUMNS.join(",").as_str())
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let probes = trace
        .lines()
        .filter(|l| l.contains("\"tcp_probe\""))
        .count();
    assert_eq!(rows.len(), probes);
    // Only the sender has outstanding data; the sink's one row is its SYN-ACK being acked.
    let client: Vec<_> = rows.iter().filter(|r| r[1] == "client").collect();
    assert!(client.len() > 500, "{}", client.len());
    let num = |r: &Vec<&str>, i: usize| r[i].parse::<u64>().expect("integer column");
    let mut last_t = 0;
    let mut last_delivered = 0;
    for r in &client {
        assert_eq!(r.len(), reports::TCP_SERIES_COLUMNS.len());
        assert!(num(r, 0) >= last_t);
        assert!(num(r, 4) >= 1448, "cwnd below one segment: {r:?}");
        assert!(num(r, 10) >= last_delivered, "delivered went back: {r:?}");
        last_t = num(r, 0);
        last_delivered = num(r, 10);
    }
    assert_eq!(last_delivered, 2_000_000, "every data byte");
    // Losses show: ssthresh was set and some rows are in recovery.
    assert!(client.iter().any(|r| num(r, 5) < u32::MAX as u64));
    assert!(client.iter().any(|r| r[3] == "recovery"));
    // The srtt tracks the 30 ms path RTT plus serialization.
    let srtt = num(client.last().unwrap(), 6);
    assert!((30_000..40_000).contains(&srtt), "{srtt}");
    assert_eq!(flow(&o, "bulk").rx_bytes, 2_000_000);
}

/// tshark's analysis of what the sender received agrees with the sender's own count of
/// duplicate ACKs (captured at the client, so ACKs lost on the way are not counted by
/// either). ACKs are not reordered here: tshark compares an ACK with the previous one on
/// the wire, the sender (as Linux) with its snd_una, so an ACK arriving after an older,
/// overtaken one is a duplicate only for the sender.
#[test]
fn duplicate_acks_agree_with_tshark() {
    if !common::tshark_available() {
        return;
    }
    let l = load_file(
        &examples_dir().join("tcp-bulk-lossy.ron"),
        &[
            r#"nodes["client"]=Host(capture: true)"#.to_string(),
            r#"links[0].b_to_a=(loss: Bernoulli("0.5%"), reorder: (probability: "0%", delay: "5ms"))"#
                .to_string(),
        ],
    )
    .expect("example loads");
    let dir = std::env::temp_dir().join(format!("netdes-tcp-dupack-{}", std::process::id()));
    let o = run(
        &l,
        &RunOptions {
            out_dir: Some(dir.clone()),
            ..Default::default()
        },
    )
    .expect("example runs");
    let ours = extra(flow(&o, "bulk"), "dup_acks");
    assert!(ours > 50.0, "{ours}");
    let theirs = common::tshark_count(
        &dir.join("node-client.pcap"),
        "ip.src == 10.0.1.2 && tcp.analysis.duplicate_ack",
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(theirs as f64, ours);
}

//! DHCP end to end (RB-DHCP-01..04): whole scenarios, asserted exactly in virtual time
//! from their trace, metrics and captures.
//!
//! Timing arithmetic: a DHCP message is 300 bytes of BOOTP, so 342 bytes on the wire,
//! 2736 ns at 1 Gbit/s; with 100 us links, one crossing of a switch (two hops) takes
//! `H` = 2 * (2736 + 100000) ns. ARP frames are padded to 60 bytes (480 ns).

mod common;

use scenarios::{load_file, load_str, run, Loaded, Outcome, RunOptions};
use std::path::Path;

const HOP: u64 = 2736 + 100_000;
const H: u64 = 2 * HOP;
const ARP_HOP: u64 = 480 + 100_000;
const S: u64 = 1_000_000_000;

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

struct Run {
    o: Outcome,
    trace: Vec<String>,
}

impl Run {
    /// Times of `event` on `node` whose fields match `with`.
    fn times(&self, node: &str, event: &str, with: &[(&str, &str)]) -> Vec<u64> {
        self.trace
            .iter()
            .filter(|l| field(l, "node") == Some(node) && field(l, "event") == Some(event))
            .filter(|l| with.iter().all(|(k, v)| field(l, k) == Some(*v)))
            .map(|l| {
                field(l, "t_ns")
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(u64::MAX)
            })
            .collect()
    }
    fn lines(&self, node: &str, event: &str) -> Vec<&String> {
        self.trace
            .iter()
            .filter(|l| field(l, "node") == Some(node) && field(l, "event") == Some(event))
            .collect()
    }
    /// The `dhcp_bound` events of new leases (not renewals or rebinds).
    fn acquired(&self, node: &str) -> Vec<&String> {
        self.lines(node, "dhcp_bound")
            .into_iter()
            .filter(|l| field(l, "how") == Some("acquired"))
            .collect()
    }
    fn metric(&self, node: &str, key: &str) -> f64 {
        self.o
            .summary
            .nodes
            .iter()
            .find(|n| n.name == node)
            .and_then(|n| n.metrics.get(key).copied())
            .unwrap_or(0.0)
    }
    fn addresses(&self, node: &str) -> Vec<String> {
        self.o
            .summary
            .nodes
            .iter()
            .find(|n| n.name == node)
            .map(|n| n.addresses.clone())
            .unwrap_or_default()
    }
}

fn load(src: &str) -> Loaded {
    load_str("dhcp-test.ron", src, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn run_traced(src: &str, tag: &str) -> Run {
    let (o, files) = common::run_and_read(&load(src), tag, &["trace.jsonl"]);
    Run {
        o,
        trace: files[0].lines().map(str::to_string).collect(),
    }
}

/// One LAN, 10.0.0.0/24: router r (.1), server srv (.2), web (.3), DHCP host c; `extra`
/// nodes, links, apps and faults are spliced in.
fn lan(extra_nodes: &str, extra_links: &str, server: &str, apps: &str, faults: &str) -> String {
    format!(
        r#"Scenario(
    name: "dhcp-test",
    duration: "130s",
    nodes: {{ "sw": Switch(), "r": Router(), "srv": Host(), "web": Host(),
              "c": Host(dhcp: true), {extra_nodes} }},
    links: [
        Link(a: "r", b: "sw", subnet: "10.0.0.0/24", delay: "100us"),
        Link(a: "srv", b: "sw", delay: "100us", capture: true),
        Link(a: "web", b: "sw", delay: "100us"),
        Link(a: "c", b: "sw", delay: "100us"),
        {extra_links}
    ],
    apps: [
        {server}
        {apps}
    ],
    faults: [ {faults} ],
    record: (trace: [Dhcp, Arp, Fault]),
)"#
    )
}

const SERVER: &str = r#"DhcpServer(on: "srv", lease: "120s",
            pools: [Pool(range: "10.0.0.100-10.0.0.110", dns: ["web"])]),"#;

// RB-DHCP-01, RB-DHCP-04
#[test]
fn dora_takes_four_crossings_then_the_arp_check_and_the_app_starts_at_the_lease() {
    let r = run_traced(
        &lan(
            "",
            "",
            SERVER,
            r#"Ping(from: "c", to: "web", count: 1),"#,
            "",
        ),
        "dora",
    );
    let sent = |ty| r.times("c", "dhcp_send", &[("type", ty)]);
    assert_eq!(sent("discover"), [0]);
    assert_eq!(r.times("srv", "dhcp_recv", &[("type", "discover")]), [H]);
    assert_eq!(r.times("c", "dhcp_recv", &[("type", "offer")]), [2 * H]);
    assert_eq!(sent("request"), [2 * H, 2 * H + 60 * S, 2 * H + 120 * S]);
    assert_eq!(r.times("c", "dhcp_recv", &[("type", "ack")])[0], 4 * H);
    // The OFFER went to the offered address at c's MAC, without ARP.
    let offer = r.lines("srv", "dhcp_send")[0];
    assert_eq!(field(offer, "dst"), Some("10.0.0.100"));
    assert!(
        r.times("srv", "arp_request", &[])
            .iter()
            .all(|t| *t > 60 * S),
        "the server answers DORA without ARP"
    );
    // The REQUEST is broadcast and names the server.
    let req = r.lines("c", "dhcp_send")[1];
    assert_eq!(field(req, "dst"), Some("255.255.255.255"));
    // ARP probe at the ACK, address in use one second later (RB-DHCP-03).
    assert_eq!(
        r.times("c", "arp_probe", &[("target", "10.0.0.100")]),
        [4 * H]
    );
    let bound_at = 4 * H + S;
    assert_eq!(r.times("c", "arp_announce", &[]), [bound_at]);
    let bound = r.acquired("c");
    assert_eq!(bound.len(), 1);
    // RB-DHCP-04: mask, router, lease time (and DNS server, below) came with the ACK.
    assert_eq!(field(bound[0], "addr"), Some("10.0.0.100"));
    assert_eq!(field(bound[0], "prefix_len"), Some("24"));
    assert_eq!(field(bound[0], "router"), Some("10.0.0.1"));
    assert_eq!(field(bound[0], "server"), Some("10.0.0.2"));
    assert_eq!(field(bound[0], "lease_s"), Some("120"));
    assert_eq!(field(bound[0], "t_ns"), Some(bound_at.to_string().as_str()));
    // The ping waited for the address: its ARP for web starts at the lease.
    assert_eq!(
        r.times("c", "arp_request", &[("target", "10.0.0.3")]),
        [bound_at]
    );
    let ping =
        r.o.summary
            .apps
            .iter()
            .find(|a| a.node == "c" && a.app == "ping-1");
    assert!(
        ping.is_some_and(|p| p.lines.iter().any(|l| l.contains("1 received"))),
        "{ping:?}"
    );
    assert_eq!(r.metric("c", "dhcp.client.leases"), 1.0);
    assert_eq!(
        r.metric("c", "dhcp.client.time_to_lease_s"),
        bound_at as f64 / 1e9
    );
    // Renewed at T1 = 60 s after the REQUEST (unicast to the server) and again at 120 s.
    assert_eq!(
        r.times(
            "c",
            "dhcp_send",
            &[("type", "request"), ("dst", "10.0.0.2")]
        ),
        [2 * H + 60 * S, 2 * H + 120 * S]
    );
    assert_eq!(r.metric("c", "dhcp.client.renewals"), 2.0);
    assert_eq!(r.metric("srv", "dhcp.server.offers"), 1.0);
    assert_eq!(r.metric("srv", "dhcp.server.acks"), 3.0);
    assert_eq!(r.metric("srv", "dhcp.server.pool_size"), 11.0);
    assert_eq!(r.metric("srv", "dhcp.server.pool_in_use"), 1.0);
    assert_eq!(r.addresses("c"), ["10.0.0.100/24"]);
}

// RB-DHCP-01
#[test]
fn unanswered_discovers_back_off_4_8_16_32_64_64_seconds_from_the_clients_stream() {
    let r = run_traced(&lan("", "", "", "", ""), "backoff");
    let got = r.times("c", "dhcp_send", &[("type", "discover")]);
    // The client's named stream: its xid first, then one draw per transmission.
    let mut rng =
        sim_core::rng::RngFactory::new(1).stream("node:c:app:dhcp-client:xid-and-backoff");
    let _xid = rng.next_u32();
    let mut want = vec![0u64];
    while want.len() < got.len() {
        let attempt = want.len() as u32 - 1;
        let wait = protocols::dhcp::client::backoff(&mut rng, attempt);
        want.push(want[want.len() - 1] + wait.as_nanos());
    }
    assert_eq!(got, want);
    println!(
        "DISCOVER times (s): {:?}",
        got.iter().map(|t| *t as f64 / 1e9).collect::<Vec<_>>()
    );
    // 0, ~4, ~12, ~28, ~60, ~124 s within the 130 s run: six transmissions.
    assert_eq!(got.len(), 6);
    for (i, nominal) in [0.0, 4.0, 12.0, 28.0, 60.0, 124.0].iter().enumerate() {
        assert!((got[i] as f64 / 1e9 - nominal).abs() <= i as f64, "{got:?}");
    }
    assert!(r.addresses("c").is_empty());
}

// RB-DHCP-02
#[test]
fn with_the_server_down_the_client_renews_at_t1_rebinds_at_t2_and_drops_the_address_at_expiry() {
    let r = run_traced(
        &lan("", "", SERVER, "", r#"NodeCrash(node: "srv", at: "10s")"#),
        "rebind",
    );
    let start = 2 * H; // the REQUEST that the ACK answered
    let requests: Vec<(u64, String)> = r
        .lines("c", "dhcp_send")
        .iter()
        .filter(|l| field(l, "type") == Some("request"))
        .map(|l| {
            (
                field(l, "t_ns").and_then(|t| t.parse().ok()).unwrap_or(0),
                field(l, "dst").unwrap_or("").to_string(),
            )
        })
        .collect();
    let ucast = "10.0.0.2".to_string();
    let bcast = "255.255.255.255".to_string();
    assert_eq!(
        requests,
        [
            (start, bcast.clone()),
            // RENEWING at T1 = 60 s: unicast; the next try would be 60 s later, past T2.
            (start + 60 * S, ucast),
            // REBINDING at T2 = 105 s: broadcast; 15 s left, so no retransmission.
            (start + 105 * S, bcast),
        ]
    );
    assert_eq!(
        r.times("c", "dhcp_expired", &[("addr", "10.0.0.100")]),
        [start + 120 * S]
    );
    assert_eq!(
        r.times("c", "dhcp_send", &[("type", "discover")])[..2],
        [0, start + 120 * S]
    );
    assert!(r.addresses("c").is_empty(), "{:?}", r.addresses("c"));
    assert_eq!(r.metric("c", "dhcp.client.expiries"), 1.0);
    assert_eq!(r.metric("c", "dhcp.client.renewals"), 0.0);
}

// RB-DHCP-02
#[test]
fn a_server_back_before_t2_answers_the_rebind_and_the_client_keeps_its_address() {
    let r = run_traced(
        &lan(
            "",
            "",
            SERVER,
            "",
            r#"NodeCrash(node: "srv", at: "10s", for: "90s")"#,
        ),
        "rebind-ok",
    );
    // The renewal at T1 finds the server down; it is back at 100 s with its lease database,
    // and ACKs the REBIND at T2 (broadcast, answered to ciaddr).
    let start = 2 * H;
    let t2 = start + 105 * S;
    assert_eq!(
        r.times(
            "c",
            "dhcp_send",
            &[("type", "request"), ("dst", "255.255.255.255")]
        ),
        [start, t2]
    );
    assert_eq!(r.times("c", "dhcp_recv", &[("type", "ack")]).len(), 2);
    assert!(r.times("c", "dhcp_expired", &[]).is_empty());
    assert_eq!(r.metric("c", "dhcp.client.rebinds"), 1.0);
    assert_eq!(r.addresses("c"), ["10.0.0.100/24"]);
}

// RB-DHCP-03
#[test]
fn an_address_in_use_is_declined_and_a_new_one_leased_after_10_s() {
    let rogue_link = r#"Link(a: "rogue", b: "sw", delay: "100us", a_addr: "10.0.0.100/24"),"#;
    let r = run_traced(
        &lan(r#""rogue": Host(),"#, rogue_link, SERVER, "", ""),
        "conflict",
    );
    assert_eq!(
        r.times("c", "arp_probe", &[("target", "10.0.0.100")]),
        [4 * H]
    );
    // The rogue answers the probe (Linux answers probes for its own address).
    let conflict = 4 * H + 4 * ARP_HOP;
    assert_eq!(
        r.times("c", "address_conflict", &[("addr", "10.0.0.100")]),
        [conflict]
    );
    assert_eq!(
        r.times("c", "dhcp_send", &[("type", "decline")]),
        [conflict]
    );
    assert_eq!(
        r.times("srv", "dhcp_declined", &[("addr", "10.0.0.100")]),
        [conflict + H]
    );
    let again = conflict + 10 * S;
    assert_eq!(
        r.times("c", "dhcp_send", &[("type", "discover")]),
        [0, again]
    );
    let bound = r.acquired("c");
    assert_eq!(bound.len(), 1);
    assert_eq!(field(bound[0], "addr"), Some("10.0.0.101"));
    assert_eq!(
        field(bound[0], "t_ns"),
        Some((again + 4 * H + S).to_string().as_str())
    );
    assert_eq!(r.metric("c", "dhcp.client.declines"), 1.0);
    assert_eq!(r.metric("srv", "dhcp.server.declines"), 1.0);
    // The time to lease includes the conflict and the 10 s wait.
    assert_eq!(
        r.metric("c", "dhcp.client.time_to_lease_s"),
        (again + 4 * H + S) as f64 / 1e9
    );
}

// RB-DHCP-03
#[test]
fn after_a_restart_the_client_asks_for_its_previous_address_first() {
    let r = run_traced(
        &lan(
            "",
            "",
            SERVER,
            "",
            r#"NodeCrash(node: "c", at: "20s", for: "5s")"#,
        ),
        "reboot",
    );
    let reboot = 25 * S;
    // INIT-REBOOT: a broadcast REQUEST for the old address, no DISCOVER.
    assert_eq!(r.times("c", "dhcp_send", &[("type", "discover")]), [0]);
    assert_eq!(
        r.times(
            "c",
            "dhcp_send",
            &[("type", "request"), ("ciaddr", "0.0.0.0")]
        ),
        [2 * H, reboot]
    );
    assert_eq!(
        r.times("c", "dhcp_recv", &[("type", "ack")])[1],
        reboot + 2 * H
    );
    let bound = r.acquired("c");
    assert_eq!(bound.len(), 2);
    assert_eq!(field(bound[1], "addr"), Some("10.0.0.100"));
    assert_eq!(
        field(bound[1], "t_ns"),
        Some((reboot + 2 * H + S).to_string().as_str())
    );
    // Metrics outlive the crash.
    assert_eq!(r.metric("c", "dhcp.client.leases"), 2.0);
    assert_eq!(
        r.metric("c", "dhcp.client.time_to_lease_s"),
        (2 * H + S) as f64 / 1e9
    );
}

// RB-DHCP-03
#[test]
fn after_its_link_comes_back_the_client_asks_for_its_previous_address() {
    let r = run_traced(
        &lan(
            "",
            "",
            SERVER,
            "",
            r#"LinkDown(link: "c-sw", at: "20s", for: "5s")"#,
        ),
        "relink",
    );
    let up = 25 * S;
    assert_eq!(
        r.times(
            "c",
            "dhcp_send",
            &[("type", "request"), ("ciaddr", "0.0.0.0")]
        ),
        [2 * H, up]
    );
    let bound = r.acquired("c");
    assert_eq!(bound.len(), 2);
    assert_eq!(field(bound[1], "addr"), Some("10.0.0.100"));
    assert_eq!(
        field(bound[1], "t_ns"),
        Some((up + 2 * H + S).to_string().as_str())
    );
}

// RB-DHCP-01, RB-DHCP-04
#[test]
fn a_relay_agent_carries_dora_across_the_router() {
    // c -- sw -- r (relay) -- srv, on two subnets.
    let src = r#"Scenario(
    name: "dhcp-relay",
    duration: "5s",
    nodes: { "sw": Switch(), "r": Router(), "srv": Host(), "c": Host(dhcp: true) },
    links: [
        Link(a: "r", b: "sw", subnet: "10.0.2.0/24", delay: "100us"),
        Link(a: "c", b: "sw", delay: "100us"),
        Link(a: "r", b: "srv", subnet: "10.0.9.0/24", delay: "100us"),
    ],
    apps: [
        DhcpServer(on: "srv", pools: [Pool(subnet: "10.0.2.0/24")]),
        DhcpRelay(on: "r", servers: ["srv"]),
    ],
    record: (trace: [Dhcp, Arp]),
)"#;
    let r = run_traced(src, "relay");
    // DISCOVER to the relay (H), ARP for the server, to the server (HOP); the OFFER back
    // to the relay (HOP) and on to c's MAC (H).
    let at_server = H + 2 * ARP_HOP + HOP;
    let recv = r.lines("srv", "dhcp_recv");
    assert_eq!(field(recv[0], "t_ns"), Some(at_server.to_string().as_str()));
    assert_eq!(field(recv[0], "giaddr"), Some("10.0.2.1"));
    let offer_at_c = at_server + HOP + H;
    assert_eq!(
        r.times("c", "dhcp_recv", &[("type", "offer")]),
        [offer_at_c]
    );
    let ack_at_c = offer_at_c + 2 * (H + HOP);
    assert_eq!(r.times("c", "dhcp_recv", &[("type", "ack")]), [ack_at_c]);
    let bound = r.acquired("c");
    // The default pool: every address not assigned statically; r has 10.0.2.1.
    assert_eq!(field(bound[0], "addr"), Some("10.0.2.2"));
    assert_eq!(field(bound[0], "router"), Some("10.0.2.1"));
    assert_eq!(field(bound[0], "server"), Some("10.0.9.2"));
    assert_eq!(r.metric("r", "dhcp.relay.to_server"), 2.0);
    assert_eq!(r.metric("r", "dhcp.relay.to_client"), 2.0);
    assert_eq!(r.metric("srv", "dhcp.server.pool_size"), 253.0);
}

// RB-DHCP-01
#[test]
fn with_two_servers_the_client_takes_the_first_offer_and_the_other_withdraws_its_own() {
    let slow = r#"Link(a: "srv2", b: "sw", delay: "1ms"),"#;
    let servers = r#"DhcpServer(on: "srv", lease: "120s", pools: [Pool(range: "10.0.0.100-10.0.0.149")]),
        DhcpServer(on: "srv2", lease: "120s", pools: [Pool(range: "10.0.0.150-10.0.0.199")]),"#;
    let r = run_traced(&lan(r#""srv2": Host(),"#, slow, servers, "", ""), "two");
    let slow_way = HOP + 2736 + 1_000_000;
    assert_eq!(
        r.times("c", "dhcp_recv", &[("type", "offer")]),
        [2 * H, 2 * slow_way]
    );
    let req = r.lines("c", "dhcp_send")[1];
    assert_eq!(field(req, "type"), Some("request"));
    assert_eq!(field(req, "t_ns"), Some((2 * H).to_string().as_str()));
    // srv2 hears the REQUEST naming srv and withdraws its offer of .150.
    assert_eq!(
        r.times("srv2", "dhcp_withdrawn", &[("addr", "10.0.0.150")]),
        [2 * H + slow_way]
    );
    assert_eq!(
        field(r.lines("c", "dhcp_bound")[0], "server"),
        Some("10.0.0.2")
    );
    assert_eq!(r.metric("srv2", "dhcp.server.offers"), 1.0);
    assert_eq!(r.metric("srv2", "dhcp.server.withdrawn"), 1.0);
    assert_eq!(r.metric("srv2", "dhcp.server.acks"), 0.0);
    assert_eq!(r.metric("srv2", "dhcp.server.pool_in_use"), 0.0);
}

#[test]
fn malformed_dhcp_datagrams_are_counted_and_dropped() {
    // Five 100-byte datagrams of zeros to the server's port: no magic cookie.
    let junk = r#"UdpCbr(from: "web", to: "srv:67", rate: "1Mbps", size: 100, count: 5),"#;
    let r = run_traced(&lan("", "", SERVER, junk, ""), "malformed");
    assert_eq!(r.metric("srv", "dhcp.server.malformed"), 5.0);
    assert_eq!(r.lines("srv", "dhcp_malformed").len(), 5);
    assert_eq!(
        r.addresses("c"),
        ["10.0.0.100/24"],
        "the server keeps serving"
    );
}

/// tshark decodes the DHCP captures (the dhcp-lan example's and a DECLINE's) without a
/// malformed packet and sees every message type.
#[test]
fn tshark_decodes_dhcp_captures_without_malformed_packets() {
    if std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").is_err(),
            "tshark must be installed in CI (.ci/run installs it)"
        );
        eprintln!("tshark not installed: skipping (CI installs it)");
        return;
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples/dhcp-lan.ron");
    let rogue_link = r#"Link(a: "rogue", b: "sw", delay: "100us", a_addr: "10.0.0.100/24"),"#;
    let cases = [
        (
            "lan",
            load_file(&example, &[]).unwrap_or_else(|e| panic!("{e}")),
        ),
        (
            "decline",
            load(&lan(r#""rogue": Host(),"#, rogue_link, SERVER, "", "")),
        ),
    ];
    let mut types = std::collections::BTreeSet::new();
    let mut pcaps = 0;
    for (tag, l) in cases {
        let dir =
            std::env::temp_dir().join(format!("netdes-dhcp-tshark-{}-{tag}", std::process::id()));
        run(
            &l,
            &RunOptions {
                out_dir: Some(dir.clone()),
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for f in std::fs::read_dir(&dir).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_none_or(|e| e != "pcap") {
                continue;
            }
            pcaps += 1;
            let tshark = |args: &[&str]| {
                let out = std::process::Command::new("tshark")
                    .arg("-r")
                    .arg(&p)
                    .args(args)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8_lossy(&out.stdout).into_owned()
            };
            let bad = tshark(&[
                "-Y",
                "_ws.malformed || _ws.expert.severity == error",
                "-T",
                "fields",
                "-e",
                "frame.number",
            ]);
            assert!(bad.is_empty(), "malformed frames in {}: {bad}", p.display());
            let kinds = tshark(&["-Y", "dhcp", "-T", "fields", "-e", "dhcp.option.dhcp"]);
            types.extend(kinds.lines().map(str::to_string));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert_eq!(pcaps, 3);
    // 1 Discover, 2 Offer, 3 Request, 4 Decline, 5 ACK.
    for t in ["1", "2", "3", "4", "5"] {
        assert!(
            types.contains(t),
            "DHCP message type {t} missing: {types:?}"
        );
    }
}

#[test]
fn the_dhcp_lan_example_leases_every_client_and_renews() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples/dhcp-lan.ron");
    let l = load_file(&example, &[]).unwrap_or_else(|e| panic!("{e}"));
    let o = run(&l, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let r = Run {
        o,
        trace: Vec::new(),
    };
    for c in ["c1", "c2", "c3", "c4", "c5"] {
        assert_eq!(r.metric(c, "dhcp.client.leases"), 1.0, "{c}");
        assert_eq!(r.metric(c, "dhcp.client.renewals"), 2.0, "{c}");
        let t = r.metric(c, "dhcp.client.time_to_lease_s");
        println!(
            "{c}: time to lease {t:.6} s, addresses {:?}",
            r.addresses(c)
        );
        assert!(t > 1.0 && t < 1.01, "{c}: {t}");
    }
    assert_eq!(r.addresses("c4"), ["10.0.2.100/24"]);
    assert_eq!(
        r.metric("dhcp1", "dhcp.server.acks") + r.metric("dhcp2", "dhcp.server.acks"),
        15.0
    );
    assert_eq!(
        r.metric("dhcp1", "dhcp.server.withdrawn") + r.metric("dhcp2", "dhcp.server.withdrawn"),
        5.0
    );
    assert_eq!(r.metric("dhcp1", "dhcp.server.pool_size"), 100.0);
    // c1 reached web by name through ns, the DNS server of its lease.
    let www = common::flow(&r.o, "tcp-rr-5");
    assert_eq!(www.dst, "www.campus.example:80");
    assert_eq!(www.error, None);
    assert_eq!(www.rx_packets, 20);
    assert!(www.extra["dns_lookup_ms"] > 0.0, "{www:?}");
    let ns = r.o.summary.nodes.iter().find(|n| n.name == "ns");
    assert_eq!(ns.and_then(|n| n.dns.get("auth_answers").copied()), Some(1));
}

/// DHCP and DNS together: a DHCP host's stub resolver uses the DNS servers of its lease
/// (option 6, the pool's `dns`), which replace the ones the host was declared with. `ns`
/// is a recursive resolver, `root` the authoritative server of the root zone, where
/// www.campus.example is web's address. `c` was declared with a server nobody runs
/// (10.0.0.99): if the lease's servers were added to it rather than replacing it, the
/// lookup would go there first and wait 5 s for it.
fn dhcp_and_dns(pool_dns: &str) -> String {
    format!(
        r#"Scenario(
    name: "dhcp-dns",
    duration: "20s",
    nodes: {{ "sw": Switch(), "r": Router(), "srv": Host(), "web": Host(), "ns": Host(),
              "root": Host(), "c": Host(dhcp: true, dns: ["10.0.0.99"]) }},
    links: [
        Link(a: "r", b: "sw", subnet: "10.0.0.0/24", delay: "100us"),
        Link(a: "srv", b: "sw", delay: "100us"),
        Link(a: "web", b: "sw", delay: "100us"),
        Link(a: "ns", b: "sw", delay: "100us"),
        Link(a: "root", b: "sw", delay: "100us"),
        Link(a: "c", b: "sw", delay: "100us"),
    ],
    zones: {{ ".": Zone(records: [A(name: "www.campus.example.", addr: "web")]) }},
    apps: [
        DhcpServer(on: "srv", pools: [Pool(range: "10.0.0.100-10.0.0.110", dns: {pool_dns})]),
        DnsServer(on: "root", zones: ["."]),
        DnsResolver(on: "ns", root_hints: ["root"]),
        TcpServer(on: "web", port: 80),
        TcpRequestResponse(name: "www", from: "c", to: "www.campus.example:80", count: 1),
    ],
    record: (trace: [Dhcp, Dns]),
)"#
    )
}

#[test]
fn a_dhcp_hosts_lookups_go_to_the_dns_servers_of_its_lease() {
    let r = run_traced(&dhcp_and_dns(r#"["ns"]"#), "dns-from-lease");
    let addr = |n: &str| r.addresses(n)[0].split('/').next().unwrap().to_string();
    let (ns, web) = (addr("ns"), addr("web"));
    let bound = r.acquired("c");
    assert_eq!(bound.len(), 1);
    let bound_at: u64 = field(bound[0], "t_ns").unwrap().parse().unwrap();
    assert_eq!(bound_at, 4 * H + S);
    // The app waited for the lease, then its lookup went to the lease's server at once:
    // one query, to ns, none to the declared 10.0.0.99.
    let queries = r.lines("c", "stub_query");
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(r.times("c", "stub_query", &[("server", &ns)]), [bound_at]);
    assert_eq!(field(queries[0], "attempt"), Some("1"));
    assert_eq!(field(queries[0], "transport"), Some("udp"));
    // The resolver asked the root, and c got web's address.
    assert_eq!(r.lines("ns", "upstream_query").len(), 1);
    let done = r.lines("c", "lookup_done");
    assert_eq!(done.len(), 1);
    assert_eq!(field(done[0], "result"), Some("ok"));
    assert_eq!(field(done[0], "addr"), Some(web.as_str()));
    let done_at: u64 = field(done[0], "t_ns").unwrap().parse().unwrap();
    let latency: u64 = field(done[0], "latency_ns").unwrap().parse().unwrap();
    assert_eq!(done_at - bound_at, latency);
    println!(
        "lease at {:.6} s, lookup through {ns} took {:.3} ms",
        bound_at as f64 / 1e9,
        latency as f64 / 1e6
    );
    // The flow connected to web by that name after the lookup and got its answer.
    let f = common::flow(&r.o, "www");
    assert_eq!(f.extra["dns_lookup_ms"], latency as f64 / 1e6);
    assert_eq!(f.error, None);
    assert_eq!(f.dst, "www.campus.example:80");
    assert_eq!(f.rx_packets, 1);
    let stub = |k: &str| {
        r.o.summary
            .nodes
            .iter()
            .find(|n| n.name == "c")
            .and_then(|n| n.dns.get(k).copied())
            .unwrap_or(0)
    };
    assert_eq!(stub("stub_lookups"), 1);
    assert_eq!(stub("stub_answers"), 1);
    assert_eq!(stub("stub_udp_queries"), 1);
    assert_eq!(stub("stub_timeouts"), 0);

    // Without option 6 the lease leaves the host no DNS server: the lookup fails at once.
    let r = run_traced(&dhcp_and_dns("[]"), "no-dns-in-lease");
    assert!(r.lines("c", "stub_query").is_empty());
    assert_eq!(
        r.times("c", "lookup_done", &[("result", "no_servers")]),
        [4 * H + S]
    );
    assert_eq!(
        common::flow(&r.o, "www").error.as_deref(),
        Some("EAI_AGAIN")
    );
}

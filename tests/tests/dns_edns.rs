//! End-to-end EDNS(0) tests (RFC 6891): a 917-byte answer through a recursive resolver,
//! with and without EDNS at the stub and at the resolver, and a server without EDNS. Every
//! lookup's latency is asserted to the nanosecond against the sum of the frames' times on
//! the links (delay plus serialization, store and forward), the DNS messages encoded here
//! with the same library and the same zones, and TCP's frames as Linux sends them.

mod common;

use common::dns_counter;
use common::frames::{arrive, dns_over_tcp, udp, Hop, G1, M100, MS, TCP_ACK, UDP_HEADERS};
use common::trace::{run_traced, Ev};
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use protocols::dns::edns;
use protocols::dns::server::auth_reply;
use protocols::dns::stub::Transport;
use protocols::dns::wire::{encode, fqdn, query};
use protocols::dns::zone::{Zone, ZoneData, ZoneRecord, ZoneSpec};
use scenarios::{load_str, Outcome};
use std::net::Ipv4Addr;
use std::path::PathBuf;

const S: u64 = 1_000_000_000;

/// The addresses of "many": 55 A records, a 917-byte answer (928 with an OPT record).
const MANY: usize = 55;

/// The network: client -1ms,100M- r -1ms,1G- resolver; r -5ms- ns1 (the root and
/// campus.example); r -10ms- old (old.example, a server without EDNS).
fn scenario(client_options: &str, resolver_options: &str) -> String {
    let many: String = (0..MANY)
        .map(|i| match i {
            0 => r#"A(name: "many", addr: "ns1"), "#.to_string(),
            i => format!(r#"A(name: "many", addr: "10.99.0.{i}"), "#),
        })
        .collect();
    format!(
        r#"Scenario(
    name: "dns-edns",
    duration: "6s",
    nodes: {{
        "client": Host(capture: true, dns: ["resolver"]{client_options}),
        "r": Router(),
        "resolver": Host(capture: true),
        "ns1": Host(),
        "old": Host(),
    }},
    links: [
        Link(a: "client", b: "r", rate: "100Mbps", delay: "1ms"),
        Link(a: "r", b: "resolver", rate: "1Gbps", delay: "1ms"),
        Link(a: "r", b: "ns1", rate: "1Gbps", delay: "5ms"),
        Link(a: "r", b: "old", rate: "1Gbps", delay: "10ms"),
    ],
    zones: {{
        ".": Zone(records: [
            Ns(name: "@", host: "ns1.campus.example."), A(name: "ns1.campus.example.", addr: "ns1"),
            Ns(name: "old.example", host: "ns.old.example."), A(name: "ns.old.example.", addr: "old"),
        ]),
        "campus.example": Zone(records: [Ns(name: "@", host: "ns1"), A(name: "ns1", addr: "ns1"), {many}]),
        "old.example": Zone(records: [
            Ns(name: "@", host: "ns"), A(name: "ns", addr: "old"),
            A(name: "www", addr: "old"), A(name: "mail", addr: "old"),
        ]),
    }},
    apps: [
        DnsServer(on: "ns1", zones: [".", "campus.example"]),
        DnsServer(on: "old", zones: ["old.example"], edns: false),
        DnsResolver(on: "resolver", root_hints: ["ns1"]{resolver_options}),
        // ARP on every hop, so that the lookups below cost their DNS messages only.
        Ping(name: "warm", from: "client", to: "ns1.campus.example", count: 1, start: "1s"),
        Ping(name: "warm-old", from: "client", to: "old", count: 1, start: "1s"),
        Ping(name: "many", from: "client", to: "many.campus.example", count: 1, start: "2s"),
        Ping(name: "old", from: "client", to: "www.old.example", count: 1, start: "3s"),
        Ping(name: "old-again", from: "client", to: "mail.old.example", count: 1, start: "4s"),
    ],
    record: (trace: [Dns]),
)"#
    )
}

/// The zones of the scenario, as the servers load them (addresses as the plan gives them).
fn zones() -> (Vec<Zone>, Vec<Zone>) {
    let rec = |name: &str, data: ZoneData| ZoneRecord {
        name: name.into(),
        ttl: 3600,
        data,
    };
    let a = |s: &str| ZoneData::A(s.parse::<Ipv4Addr>().unwrap());
    let zone = |origin: &str, records| {
        Zone::new(&ZoneSpec {
            origin: origin.into(),
            serial: 1,
            soa_ttl: 3600,
            negative_ttl: 300,
            records,
        })
        .unwrap()
    };
    // The addresses only need the right length: every A record is 16 bytes.
    let root = zone(
        ".",
        vec![
            rec("@", ZoneData::Ns("ns1.campus.example.".into())),
            rec("ns1.campus.example.", a("10.0.2.2")),
            rec("old.example", ZoneData::Ns("ns.old.example.".into())),
            rec("ns.old.example.", a("10.0.3.2")),
        ],
    );
    let mut campus = vec![
        rec("@", ZoneData::Ns("ns1".into())),
        rec("ns1", a("10.0.2.2")),
    ];
    campus.extend((0..MANY).map(|i| rec("many", a(&format!("10.99.0.{i}")))));
    let old = zone(
        "old.example",
        vec![
            rec("@", ZoneData::Ns("ns".into())),
            rec("ns", a("10.0.3.2")),
            rec("www", a("10.0.3.2")),
            rec("mail", a("10.0.3.2")),
        ],
    );
    (vec![root, zone("campus.example", campus)], vec![old])
}

/// A query for `name`/A, RD as a stub sends it or clear as a resolver does, with an OPT
/// record advertising `edns` bytes if given.
fn q(name: &str, rd: bool, edns: Option<u16>) -> Message {
    let mut m = query(1, &fqdn(name).unwrap(), RecordType::A, rd);
    m.edns = edns.map(edns::opt);
    m
}

fn len(m: &Message) -> usize {
    encode(m).unwrap().len()
}

/// The length of the reply of a server serving `zones` with EDNS support `support`.
fn reply_len(zones: &[Zone], support: Option<u16>, query: &Message, t: Transport) -> usize {
    auth_reply(zones, support, query, t).unwrap().bytes.len()
}

const CLIENT_RESOLVER: [Hop; 2] = [(MS, M100), (MS, G1)];
const RESOLVER_CLIENT: [Hop; 2] = [(MS, G1), (MS, M100)];
const RESOLVER_NS1: [Hop; 2] = [(MS, G1), (5 * MS, G1)];
const NS1_RESOLVER: [Hop; 2] = [(5 * MS, G1), (MS, G1)];
const RESOLVER_OLD: [Hop; 2] = [(MS, G1), (10 * MS, G1)];
const OLD_RESOLVER: [Hop; 2] = [(10 * MS, G1), (MS, G1)];

fn run_edns(
    client_options: &str,
    resolver_options: &str,
    tag: &str,
) -> (Outcome, Vec<Ev>, PathBuf) {
    let l = load_str(
        "dns-edns.ron",
        &scenario(client_options, resolver_options),
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    run_traced(&l, &format!("edns-{tag}"))
}

/// The lookup of `name` on the client: its latency and result.
fn lookup(evs: &[Ev], name: &str) -> (u64, String) {
    let d = evs
        .iter()
        .find(|e| e.event == "lookup_done" && e.s("name") == name)
        .unwrap_or_else(|| panic!("no lookup of {name}"));
    (d.v["latency_ns"].as_u64().unwrap(), d.s("result"))
}

/// The `event`s between `from` and `to` (inclusive) on `node`.
fn events<'a>(evs: &'a [Ev], node: &str, event: &str, from: u64, to: u64) -> Vec<&'a Ev> {
    evs.iter()
        .filter(|e| e.node == node && e.event == event && e.t >= from && e.t <= to)
        .collect()
}

fn report(what: &str, expected: u64, measured: u64) {
    println!(
        "{what}: expected {:.6} ms, measured {:.6} ms, error {:.1e}",
        expected as f64 / 1e6,
        measured as f64 / 1e6,
        (measured as f64 - expected as f64).abs() / expected as f64
    );
}

#[test]
fn a_917_byte_answer_comes_over_udp_with_edns_and_over_tcp_twice_without() {
    let (campus, _) = zones();
    let name = "many.campus.example";
    let plain = len(&q(name, true, None));
    let with_opt = len(&q(name, true, Some(1200)));
    assert_eq!((plain, with_opt), (37, 48));
    // The answer from ns1, the same from the resolver: 917 bytes, 928 with an OPT record;
    // TC alone is the header and the question.
    let full = reply_len(&campus, Some(1232), &q(name, false, None), Transport::Tcp);
    let full_opt = reply_len(
        &campus,
        Some(1232),
        &q(name, false, Some(1232)),
        Transport::Udp,
    );
    let tc = reply_len(&campus, Some(1232), &q(name, false, None), Transport::Udp);
    assert_eq!((full, full_opt, tc), (917, 928, 37));
    let t0 = 2 * S;

    // 1. EDNS everywhere (the stub with options edns0, the resolver's 1232 bytes): one UDP
    //    round trip on each hop, the OPT records in every message.
    let (o, evs, dir) = run_edns(", dns_options: DnsOptions(edns0: true)", "", "edns");
    let at_resolver = udp(&CLIENT_RESOLVER, t0, with_opt);
    let from_ns1 = udp(
        &NS1_RESOLVER,
        udp(&RESOLVER_NS1, at_resolver, with_opt),
        full_opt,
    );
    let expected = udp(&RESOLVER_CLIENT, from_ns1, full_opt) - t0;
    let (latency, result) = lookup(&evs, name);
    report("EDNS on both hops", expected, latency);
    assert_eq!((latency, result.as_str()), (expected, "ok"));
    let stub_q = events(&evs, "client", "stub_query", t0, t0 + latency);
    assert_eq!(stub_q.len(), 1);
    assert_eq!(stub_q[0].v["edns"], 1200);
    let up = events(&evs, "resolver", "upstream_query", t0, t0 + latency);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].s("transport"), "udp");
    assert_eq!(up[0].v["edns"], 1232);
    let auth = events(&evs, "ns1", "auth_answer", t0, t0 + latency);
    assert_eq!(auth[0].v["truncated"], false);
    assert_eq!(auth[0].v["edns"], 1232);
    assert_eq!(dns_counter(&o, "client", "stub_truncated"), 0);
    assert_eq!(dns_counter(&o, "resolver", "resolver_truncated_in"), 0);
    assert_eq!(dns_counter(&o, "resolver", "resolver_truncated_out"), 0);
    assert_eq!(
        common::flow(&o, "many").rx_packets,
        1,
        "ns1, the first address, answers"
    );
    if common::tshark_available() {
        let pcap = dir.join("node-client.pcap");
        assert_eq!(
            common::tshark_count(&pcap, "_ws.malformed || _ws.expert.severity == error"),
            0
        );
        // Every query of the stub advertises 1200 bytes (warm, many, old, old-again) ...
        assert_eq!(
            common::tshark_count(
                &pcap,
                "dns.flags.response == 0 && dns.rr.udp_payload_size == 1200"
            ),
            4
        );
        // ... and the 55 addresses come in one UDP datagram with the resolver's OPT.
        assert_eq!(
            common::tshark_count(
                &pcap,
                "udp && dns.count.answers == 55 && dns.rr.udp_payload_size == 1232 && dns.flags.truncated == 0"
            ),
            1
        );
        assert_eq!(common::tshark_count(&pcap, "tcp"), 0);
    }
    let _ = std::fs::remove_dir_all(&dir);

    // 2. No EDNS anywhere (RFC 1035): ns1 truncates to 512 bytes, the resolver asks again
    //    over TCP; its own answer is truncated too, and the stub asks again over TCP.
    let (o, evs, dir) = run_edns("", ", edns: false", "plain");
    let _ = std::fs::remove_dir_all(&dir);
    let at_resolver = udp(&CLIENT_RESOLVER, t0, plain);
    let tc_in = udp(&NS1_RESOLVER, udp(&RESOLVER_NS1, at_resolver, plain), tc);
    let from_ns1 = dns_over_tcp(&RESOLVER_NS1, tc_in, plain, full);
    // The resolver ACKs ns1's answer and closes the connection (FIN) as it reads it, then
    // answers the client: that answer waits for both segments on its first link.
    let at_router = arrive(
        &RESOLVER_CLIENT[..1],
        from_ns1,
        &[TCP_ACK, TCP_ACK, UDP_HEADERS + tc],
    );
    let tc_out = udp(&RESOLVER_CLIENT[1..], at_router, tc);
    let expected_plain = dns_over_tcp(&CLIENT_RESOLVER, tc_out, plain, full) - t0;
    let (latency, result) = lookup(&evs, name);
    report("no EDNS: TC and TCP on both hops", expected_plain, latency);
    assert_eq!((latency, result.as_str()), (expected_plain, "ok"));
    let truncated = events(&evs, "resolver", "truncated", t0, t0 + latency);
    assert_eq!(truncated.len(), 1);
    assert_eq!(truncated[0].t, tc_in, "TC reaches the resolver");
    let up = events(&evs, "resolver", "upstream_query", t0, t0 + latency);
    let transports: Vec<String> = up.iter().map(|e| e.s("transport")).collect();
    assert_eq!(transports, ["udp", "tcp"]);
    assert_eq!(up[1].t, tc_in, "... and it asks over TCP at once");
    assert!(up.iter().all(|e| e.v.get("edns").is_none()));
    let stub_tc = events(&evs, "client", "stub_truncated", t0, t0 + latency);
    assert_eq!(stub_tc[0].t, tc_out);
    assert_eq!(dns_counter(&o, "resolver", "resolver_tcp_retries"), 1);
    assert_eq!(dns_counter(&o, "client", "stub_tcp_queries"), 1);
    println!(
        "EDNS saves {:.3} ms of {:.3} ms",
        (expected_plain - expected) as f64 / 1e6,
        expected_plain as f64 / 1e6
    );

    // 3. glibc's default stub (no edns0) behind an EDNS resolver: one UDP message from
    //    ns1, then TC to the stub at 512 bytes and TCP on the last hop only.
    let (o, evs, dir) = run_edns("", "", "glibc");
    let at_resolver = udp(&CLIENT_RESOLVER, t0, plain);
    let from_ns1 = udp(
        &NS1_RESOLVER,
        udp(&RESOLVER_NS1, at_resolver, with_opt),
        full_opt,
    );
    let tc_out = udp(&RESOLVER_CLIENT, from_ns1, tc);
    let expected = dns_over_tcp(&CLIENT_RESOLVER, tc_out, plain, full) - t0;
    let (latency, result) = lookup(&evs, name);
    report("EDNS upstream only", expected, latency);
    assert_eq!((latency, result.as_str()), (expected, "ok"));
    assert_eq!(dns_counter(&o, "resolver", "resolver_truncated_in"), 0);
    assert_eq!(dns_counter(&o, "resolver", "resolver_truncated_out"), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_server_without_edns_makes_the_resolver_ask_again_without_opt_and_remember_it() {
    let (campus, old) = zones();
    let (o, evs, dir) = run_edns("", "", "fallback");
    // www.old.example at 3 s: the root (ns1) refers the resolver to old.example; old
    // answers the query with OPT FORMERR without OPT (RFC 6891 7); the resolver asks again
    // at once without OPT (6.2.2) and gets the answer.
    let name = "www.old.example";
    let t0 = 3 * S;
    let client_q = len(&q(name, true, None));
    let up_opt = q(name, false, Some(1232));
    let up_plain = q(name, false, None);
    let referral = reply_len(&campus, Some(1232), &up_opt, Transport::Udp);
    let formerr = reply_len(&old, None, &up_opt, Transport::Udp);
    let answer = reply_len(&old, None, &up_plain, Transport::Udp);
    assert_eq!(formerr, len(&up_plain), "FORMERR: header and question");
    let at_resolver = udp(&CLIENT_RESOLVER, t0, client_q);
    let referred = udp(
        &NS1_RESOLVER,
        udp(&RESOLVER_NS1, at_resolver, len(&up_opt)),
        referral,
    );
    let refused = udp(
        &OLD_RESOLVER,
        udp(&RESOLVER_OLD, referred, len(&up_opt)),
        formerr,
    );
    let answered = udp(
        &OLD_RESOLVER,
        udp(&RESOLVER_OLD, refused, len(&up_plain)),
        answer,
    );
    // The resolver's answer has the same records as old's.
    let expected = udp(&RESOLVER_CLIENT, answered, answer) - t0;
    let (latency, result) = lookup(&evs, name);
    report("FORMERR, then again without OPT", expected, latency);
    assert_eq!((latency, result.as_str()), (expected, "ok"));
    let up = events(&evs, "resolver", "upstream_query", t0, t0 + latency);
    let asked: Vec<(String, Option<u64>)> = up
        .iter()
        .map(|e| (e.s("server"), e.v.get("edns").and_then(|v| v.as_u64())))
        .collect();
    let ns1 = "10.0.2.2".to_string();
    let old_addr = "10.0.3.2".to_string();
    assert_eq!(
        asked,
        [
            (ns1, Some(1232)),
            (old_addr.clone(), Some(1232)),
            (old_addr.clone(), None)
        ]
    );
    let fallback = events(&evs, "resolver", "edns_fallback", t0, t0 + latency);
    assert_eq!(fallback.len(), 1);
    assert_eq!(fallback[0].t, refused);
    let old_answers = events(&evs, "old", "auth_answer", t0, t0 + latency);
    assert_eq!(old_answers[0].s("outcome"), "formerr");
    assert_eq!(old_answers[1].s("outcome"), "answer");

    // mail.old.example at 4 s: the resolver remembers; one query to old, without OPT.
    let name = "mail.old.example";
    let t0 = 4 * S;
    let up_plain = q(name, false, None);
    let answer = reply_len(&old, None, &up_plain, Transport::Udp);
    let at_resolver = udp(&CLIENT_RESOLVER, t0, len(&q(name, true, None)));
    let answered = udp(
        &OLD_RESOLVER,
        udp(&RESOLVER_OLD, at_resolver, len(&up_plain)),
        answer,
    );
    let expected = udp(&RESOLVER_CLIENT, answered, answer) - t0;
    let (latency, _) = lookup(&evs, name);
    report("a server known without EDNS", expected, latency);
    assert_eq!(latency, expected);
    let up = events(&evs, "resolver", "upstream_query", t0, t0 + latency);
    assert_eq!(up.len(), 1);
    assert_eq!((up[0].s("server"), up[0].v.get("edns")), (old_addr, None));
    assert_eq!(dns_counter(&o, "resolver", "resolver_edns_fallbacks"), 1);
    assert_eq!(dns_counter(&o, "old", "auth_edns_rejected"), 1);
    if common::tshark_available() {
        let pcap = dir.join("node-resolver.pcap");
        assert_eq!(
            common::tshark_count(&pcap, "_ws.malformed || _ws.expert.severity == error"),
            0
        );
        // The FORMERR, without an OPT record, and the answers with the OPT of ns1.
        assert_eq!(common::tshark_count(&pcap, "dns.flags.rcode == 1"), 1);
        assert_eq!(
            common::tshark_count(&pcap, "dns.flags.rcode == 1 && dns.rr.udp_payload_size"),
            0
        );
        assert_eq!(
            common::tshark_count(
                &pcap,
                "dns.flags.response == 0 && ip.src == 10.0.1.2 && dns.rr.udp_payload_size == 1232"
            ),
            4,
            "warm, many, the referral and the query old refused"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn glibc_with_edns0_behind_a_resolver_without_edns_fails_with_eai_again() {
    // The resolver answers the OPT query FORMERR; glibc moves on to the next server (there
    // is none: the next round) and never falls back: two round trips, then EAI_AGAIN.
    let (o, evs, dir) = run_edns(
        ", dns_options: DnsOptions(edns0: true)",
        ", edns: false",
        "refused",
    );
    let _ = std::fs::remove_dir_all(&dir);
    let name = "many.campus.example";
    let t0 = 2 * S;
    let query = len(&q(name, true, Some(1200)));
    let formerr = len(&q(name, true, None));
    let first = udp(&RESOLVER_CLIENT, udp(&CLIENT_RESOLVER, t0, query), formerr);
    let expected = udp(
        &RESOLVER_CLIENT,
        udp(&CLIENT_RESOLVER, first, query),
        formerr,
    ) - t0;
    let (latency, result) = lookup(&evs, name);
    report("FORMERR twice", expected, latency);
    assert_eq!((latency, result.as_str()), (expected, "servfail"));
    let f = common::flow(&o, "many");
    assert_eq!(f.error.as_deref(), Some("EAI_AGAIN"));
    // warm, many, old and old-again: twice each.
    assert_eq!(dns_counter(&o, "resolver", "resolver_edns_rejected"), 8);
    assert_eq!(dns_counter(&o, "resolver", "resolver_upstream_queries"), 0);
}

//! End-to-end DNS tests (RB-DNS-01..03) on the `dns-hierarchy` example and small scenarios
//! of their own: the whole pipeline (file, build, run, summary, trace, pcap), with exact
//! virtual times. Expected latencies are computed from the links (delay plus serialization
//! of frames whose DNS messages are encoded here with the same library).

mod common;

use common::trace::{run_traced, Ev};
use common::{addr, dns_counter};
use hickory_proto::rr::RecordType;
use protocols::dns::wire::{encode, fqdn, query};
use protocols::dns::zone::{answer, Zone, ZoneData, ZoneRecord, ZoneSpec};
use scenarios::{load_file, load_str, Outcome};
use std::path::{Path, PathBuf};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples")
}

fn example(sets: &[&str], tag: &str) -> (Outcome, Vec<Ev>, PathBuf) {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let l = load_file(&examples_dir().join("dns-hierarchy.ron"), &sets).expect("loads");
    run_traced(&l, tag)
}

fn extra(o: &Outcome, flow: &str, k: &str) -> f64 {
    *common::flow(o, flow)
        .extra
        .get(k)
        .unwrap_or_else(|| panic!("{flow} has no {k}"))
}

/// Events of `kind` between `from` and `to` (inclusive).
fn between<'a>(evs: &'a [Ev], kind: &str, from: u64, to: u64) -> Vec<&'a Ev> {
    evs.iter()
        .filter(|e| e.event == kind && e.t >= from && e.t <= to)
        .collect()
}

/// The lookup that started at `t` on the client: (its stub_query, its lookup_done).
fn lookup_at(evs: &[Ev], t: u64) -> (&Ev, &Ev) {
    let q = evs
        .iter()
        .find(|e| e.event == "stub_query" && e.t == t)
        .unwrap_or_else(|| panic!("no lookup at {t}"));
    let name = q.s("name");
    let d = evs
        .iter()
        .find(|e| e.event == "lookup_done" && e.t >= t && e.s("name") == name)
        .unwrap();
    (q, d)
}

/// Nanoseconds to serialize a frame carrying a UDP payload of `dns` bytes at `bps`.
fn ser_udp(dns: usize, bps: u64) -> u64 {
    let frame = (14 + 20 + 8 + dns) as u64;
    (frame * 8 * 1_000_000_000).div_ceil(bps)
}

const MS: u64 = 1_000_000;
const M100: u64 = 100_000_000;
const G1: u64 = 1_000_000_000;

/// Length of the query for `name`/A with RD and of the answer holding `records`.
fn lengths(name: &str, rd: bool, records: &[(&str, ZoneData)]) -> (usize, usize) {
    let n = fqdn(name).unwrap();
    let q = query(1, &n, RecordType::A, rd);
    let zone = Zone::new(&ZoneSpec {
        origin: "campus.example".into(),
        serial: 1,
        soa_ttl: 60,
        negative_ttl: 60,
        records: records
            .iter()
            .map(|(n, d)| ZoneRecord {
                name: n.to_string(),
                ttl: 60,
                data: d.clone(),
            })
            .collect(),
    })
    .unwrap();
    // The resolver's answer has the same sections as the authoritative one.
    let (a, _) = answer(&[zone], &q);
    (encode(&q).unwrap().len(), encode(&a).unwrap().len())
}

#[test]
fn iterative_resolution_then_the_cache_then_ttl_expiry() {
    // RB-DNS-01
    let (o, evs, dir) = example(&[], "hier");
    let _ = std::fs::remove_dir_all(&dir);
    let (root, tld, ns1) = (addr(&o, "root"), addr(&o, "tld"), addr(&o, "ns1"));
    // The first lookup: root, then the TLD, then the campus server, each asked at the
    // instant the previous referral arrives.
    let (q1, d1) = lookup_at(&evs, 1_000_000_000);
    let upstream = between(&evs, "upstream_query", q1.t, d1.t);
    let servers: Vec<String> = upstream.iter().map(|e| e.s("server")).collect();
    assert_eq!(servers, vec![root.clone(), tld.clone(), ns1.clone()]);
    let referrals = between(&evs, "referral", q1.t, d1.t);
    assert_eq!(referrals.len(), 2);
    assert_eq!(referrals[0].s("name"), "example.");
    assert_eq!(referrals[1].s("name"), "campus.example.");
    assert_eq!(
        (referrals[0].t, referrals[1].t),
        (upstream[1].t, upstream[2].t)
    );
    assert_eq!(d1.s("addr"), addr(&o, "web"));

    // At 2 s: from the cache. Latency = the client-resolver round trip exactly:
    // 1 ms + 1 ms each way, the query over 100 Mb/s and 1 Gb/s, the answer back.
    let (q, a) = lengths(
        "www.campus.example",
        true,
        &[
            ("www", ZoneData::Cname("web".into())),
            ("web", ZoneData::A("10.0.5.2".parse().unwrap())),
        ],
    );
    let rtt = 4 * MS + ser_udp(q, M100) + ser_udp(q, G1) + ser_udp(a, G1) + ser_udp(a, M100);
    let (q2, d2) = lookup_at(&evs, 2_000_000_000);
    assert!(between(&evs, "upstream_query", q2.t, d2.t).is_empty());
    assert_eq!(d2.v["latency_ns"].as_u64().unwrap(), rtt);
    println!(
        "cache hit: measured {} ns, expected {rtt} ns",
        d2.v["latency_ns"]
    );
    assert_eq!(extra(&o, "www-again", "dns_lookup_ms"), rtt as f64 / 1e6);

    // At 20 s web's A (TTL 10 s) has expired; the CNAME and the zone's servers have not:
    // one query, for web.campus.example, to the campus server only.
    let (q3, d3) = lookup_at(&evs, 20_000_000_000);
    let up = between(&evs, "upstream_query", q3.t, d3.t);
    assert_eq!(up.len(), 1);
    assert_eq!(
        (up[0].s("server"), up[0].s("name")),
        (ns1, "web.campus.example.".into())
    );
    let (uq, ua) = lengths(
        "web.campus.example",
        false,
        &[("web", ZoneData::A("10.0.5.2".parse().unwrap()))],
    );
    let upstream_rtt = 12 * MS + 2 * ser_udp(uq, G1) + 2 * ser_udp(ua, G1);
    assert_eq!(d3.v["latency_ns"].as_u64().unwrap(), rtt + upstream_rtt);
    assert_eq!(dns_counter(&o, "resolver", "resolver_cache_hits"), 3);
    assert_eq!(dns_counter(&o, "client", "stub_hosts_hits"), 1);
}

#[test]
fn the_answer_expires_exactly_ttl_after_it_was_cached() {
    // RB-DNS-01: web's A (TTL 10 s) is cached when the campus server's answer reaches the
    // resolver; a query reaching the resolver 1 ns before expiry is a hit, one at expiry
    // goes upstream.
    let (o, evs, dir) = example(&[], "ttl-probe");
    let _ = std::fs::remove_dir_all(&dir);
    let cached_at = evs
        .iter()
        .find(|e| {
            e.node == "resolver" && e.event == "answer" && e.s("name") == "www.campus.example."
        })
        .unwrap()
        .t;
    let (q, _) = lengths("www.campus.example", true, &[]);
    let one_way = 2 * MS + ser_udp(q, M100) + ser_udp(q, G1);
    let expiry = cached_at + 10_000_000_000;
    let _ = o;
    for (start, upstream) in [(expiry - 1 - one_way, 0), (expiry - one_way, 1)] {
        let set = format!("apps[7].start={start}ns");
        let (o, evs, dir) = example(&[&set], &format!("ttl-{start}"));
        let _ = std::fs::remove_dir_all(&dir);
        let (q, d) = lookup_at(&evs, start);
        let arrived = evs
            .iter()
            .find(|e| {
                e.node == "resolver"
                    && e.t >= q.t
                    && (e.event == "answer" || e.event == "upstream_query")
            })
            .unwrap();
        assert_eq!(arrived.t, start + one_way);
        let ups = between(&evs, "upstream_query", q.t, d.t);
        assert_eq!(
            ups.len(),
            upstream,
            "lookup reaching the resolver at {}",
            arrived.t
        );
        println!(
            "query reaches the resolver {} ns before expiry: {} upstream queries",
            expiry as i64 - arrived.t as i64,
            ups.len()
        );
        // www (3), nope (1), big (UDP and TCP) and www-later when it misses.
        assert_eq!(
            dns_counter(&o, "resolver", "resolver_upstream_queries"),
            6 + upstream as u64
        );
    }
}

#[test]
fn nxdomain_is_cached_for_the_negative_ttl() {
    // RB-DNS-01 (RFC 2308): NXDOMAIN with the zone's SOA; cached for min(SOA TTL,
    // MINIMUM) = 30 s.
    let (o, evs, dir) = example(&[], "neg");
    let _ = std::fs::remove_dir_all(&dir);
    let (q1, d1) = lookup_at(&evs, 3_000_000_000);
    assert_eq!(d1.s("result"), "nxdomain");
    assert_eq!(between(&evs, "upstream_query", q1.t, d1.t).len(), 1);
    let (q2, d2) = lookup_at(&evs, 10_000_000_000);
    assert_eq!(d2.s("result"), "nxdomain");
    assert!(between(&evs, "upstream_query", q2.t, d2.t).is_empty());
    assert_eq!(dns_counter(&o, "resolver", "resolver_negative_hits"), 1);
    assert_eq!(dns_counter(&o, "resolver", "resolver_nxdomain"), 2);
    assert_eq!(dns_counter(&o, "client", "stub_nxdomain"), 2);
    let f = common::flow(&o, "nope-again");
    assert_eq!(f.error.as_deref(), Some("EAI_NONAME"));
    assert_eq!(f.tx_packets, 0);

    // The negative entry was stored when the NXDOMAIN reached the resolver; asked again
    // exactly 30 s later, the resolver goes upstream.
    let stored = evs
        .iter()
        .find(|e| {
            e.node == "resolver" && e.event == "answer" && e.s("name") == "nope.campus.example."
        })
        .unwrap()
        .t;
    let (q, _) = lengths("nope.campus.example", true, &[]);
    let one_way = 2 * MS + ser_udp(q, M100) + ser_udp(q, G1);
    for (at, upstream) in [
        (stored + 30_000_000_000 - 1, 0),
        (stored + 30_000_000_000, 1),
    ] {
        let set = format!("apps[9].start={}ns", at - one_way);
        let (_, evs, dir) = example(&[&set, "duration=40s"], &format!("neg-{at}"));
        let _ = std::fs::remove_dir_all(&dir);
        let (q, d) = lookup_at(&evs, at - one_way);
        assert_eq!(between(&evs, "upstream_query", q.t, d.t).len(), upstream);
    }
}

#[test]
fn truncated_answers_are_retried_over_tcp_by_resolver_and_stub() {
    // RB-DNS-02
    let (o, evs, dir) = example(&[], "tc");
    let (q, d) = lookup_at(&evs, 4_000_000_000);
    let auth: Vec<&Ev> = between(&evs, "auth_answer", q.t, d.t);
    assert_eq!(auth.len(), 2);
    assert_eq!(
        (auth[0].v["truncated"].as_bool(), auth[0].s("transport")),
        (Some(true), "udp".into())
    );
    assert_eq!(
        (auth[1].v["truncated"].as_bool(), auth[1].s("transport")),
        (Some(false), "tcp".into())
    );
    let trunc = between(&evs, "truncated", q.t, d.t);
    let up = between(&evs, "upstream_query", q.t, d.t);
    assert_eq!(
        up.iter().map(|e| e.s("transport")).collect::<Vec<_>>(),
        vec!["udp", "tcp"]
    );
    assert_eq!(
        trunc[0].t, up[1].t,
        "the resolver asks over TCP as the TC answer arrives"
    );
    assert_eq!(up[0].s("server"), up[1].s("server"));
    let stub_tc = between(&evs, "stub_truncated", q.t, d.t);
    let stub_q = between(&evs, "stub_query", q.t, d.t);
    assert_eq!(
        stub_q.iter().map(|e| e.s("transport")).collect::<Vec<_>>(),
        vec!["udp", "tcp"]
    );
    assert_eq!(stub_tc[0].t, stub_q[1].t);
    assert_eq!(d.s("result"), "ok");
    assert_eq!(dns_counter(&o, "resolver", "resolver_tcp_retries"), 1);
    assert_eq!(dns_counter(&o, "resolver", "resolver_truncated_out"), 1);
    assert_eq!(dns_counter(&o, "resolver", "resolver_tcp_queries"), 1);
    assert_eq!(dns_counter(&o, "client", "stub_tcp_queries"), 1);
    assert_eq!(dns_counter(&o, "ns1", "auth_truncated"), 1);
    assert_eq!(dns_counter(&o, "ns1", "auth_tcp_queries"), 1);
    assert_eq!(
        common::flow(&o, "big").rx_packets,
        2,
        "the pings to big's first address"
    );

    // tshark decodes DNS over UDP and over TCP in the captures, with no malformed frame.
    if common::tshark_available() {
        let pcap = dir.join("node-client.pcap");
        assert_eq!(
            common::tshark_count(&pcap, "_ws.malformed || _ws.expert.severity == error"),
            0
        );
        assert_eq!(common::tshark_count(&pcap, "dns.flags.truncated == 1"), 1);
        assert_eq!(
            common::tshark_count(
                &pcap,
                "tcp && dns.flags.response == 1 && dns.count.answers == 32"
            ),
            1
        );
        assert!(common::tshark_count(&pcap, "udp && dns") >= 12);
        let pcap = dir.join("node-resolver.pcap");
        assert_eq!(
            common::tshark_count(&pcap, "_ws.malformed || _ws.expert.severity == error"),
            0
        );
        assert_eq!(
            common::tshark_count(&pcap, "tcp && dns.flags.response == 1"),
            2
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client whose DNS servers never answer (their host crashes at once), asking at 1 s.
fn silent_servers(servers: &str, options: &str) -> (Outcome, Vec<Ev>) {
    let src = format!(
        r#"Scenario(
    name: "dns-timeouts",
    duration: "60s",
    nodes: {{
        "client": Host(dns: [{servers}]{options}),
        "r": Router(),
        "dead": Host(),
        "web": Host(),
    }},
    links: [
        Link(a: "client", b: "r", delay: "1ms"),
        Link(a: "r", b: "dead", delay: "1ms"),
        Link(a: "r", b: "web", delay: "1ms"),
    ],
    apps: [
        TcpServer(on: "web", port: 80),
        TcpRequestResponse(name: "get", from: "client", to: "www.example.org:80", start: "1s"),
    ],
    faults: [ NodeCrash(node: "dead", at: "0s") ],
)"#
    );
    let l = load_str("timeouts.ron", &src, &[]).unwrap_or_else(|e| panic!("{e}"));
    let (o, evs, dir) = run_traced(&l, "timeouts");
    let _ = std::fs::remove_dir_all(&dir);
    (o, evs)
}

#[test]
fn silent_servers_time_out_after_five_seconds_twice_each_then_the_lookup_fails() {
    // RB-DNS-03: glibc's defaults (timeout:5 attempts:2), servers in order.
    let s1 = "10.0.1.2"; // dead's address
    let s2 = "10.0.1.77";
    let s3 = "10.0.1.78";
    for (servers, expect) in [
        (vec![s1], vec![(s1, 1), (s1, 2)]),
        (vec![s1, s2], vec![(s1, 1), (s2, 1), (s1, 2), (s2, 2)]),
        (
            vec![s1, s2, s3],
            vec![(s1, 1), (s2, 1), (s3, 1), (s1, 2), (s2, 2), (s3, 2)],
        ),
    ] {
        let list = servers
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (o, evs) = silent_servers(&list, "");
        let queries: Vec<(String, u64, u64)> = evs
            .iter()
            .filter(|e| e.event == "stub_query")
            .map(|e| (e.s("server"), e.v["attempt"].as_u64().unwrap(), e.t))
            .collect();
        let got: Vec<(&str, u64)> = queries.iter().map(|(s, a, _)| (s.as_str(), *a)).collect();
        assert_eq!(got, expect);
        // glibc send_dg: server 0 waits 5 s; server i > 0 waits (5 << i) / n s.
        let n = servers.len() as u64;
        let wait = |i: u64| if i == 0 { 5 } else { ((5u64 << i) / n).max(1) };
        let mut t = 1_000_000_000u64;
        for (k, (_, _, at)) in queries.iter().enumerate() {
            assert_eq!(*at, t, "query {k}");
            t += wait(k as u64 % n) * 1_000_000_000;
        }
        let done = evs.iter().find(|e| e.event == "lookup_done").unwrap();
        assert_eq!(done.t, t);
        assert_eq!(done.s("result"), "timeout");
        println!("{n} server(s): lookup fails at {:.3} s", t as f64 / 1e9);
        assert_eq!(dns_counter(&o, "client", "stub_timeouts"), 2 * n);
        let f = common::flow(&o, "get");
        assert_eq!(f.error.as_deref(), Some("EAI_AGAIN"));
        assert_eq!(f.extra["error_at_s"], t as f64 / 1e9);
        assert_eq!(f.extra["dns_lookup_ms"], (t - 1_000_000_000) as f64 / 1e6);
    }
    // resolv.conf options change it: timeout:1 attempts:3 fails after 3 s.
    let (_, evs) = silent_servers(
        "\"10.0.1.2\"",
        ", dns_options: DnsOptions(timeout: 1, attempts: 3)",
    );
    let done = evs.iter().find(|e| e.event == "lookup_done").unwrap();
    assert_eq!(done.t, 4_000_000_000);
}

#[test]
fn malformed_dns_messages_are_counted_and_dropped() {
    // Datagrams of zeros to port 53 of the resolver and of the campus server: counted,
    // dropped, and the servers go on answering.
    let (o, evs, dir) = example(
        &[
            r#"apps[10]=UdpCbr(from: "client", to: "resolver:53", rate: "8kbps", size: 40, count: 3, start: "500ms")"#,
            r#"apps[11]=UdpCbr(from: "resolver", to: "ns1:53", rate: "8kbps", size: 40, count: 2, start: "500ms")"#,
        ],
        "malformed",
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(dns_counter(&o, "resolver", "resolver_malformed"), 3);
    assert_eq!(dns_counter(&o, "ns1", "auth_malformed"), 2);
    assert_eq!(evs.iter().filter(|e| e.event == "malformed").count(), 5);
    // www, www-again, nope, nope-again and www-later (big and gateway were replaced).
    assert_eq!(dns_counter(&o, "resolver", "resolver_queries"), 5);
    let (_, d) = lookup_at(&evs, 1_000_000_000);
    assert_eq!(d.s("result"), "ok");
}

//! The campus example (issue 7): DHCP leases that hand out the campus resolver, iterative
//! resolution through root, TLD and authoritative servers on both sides of the router,
//! and a request/response workload by name. Every lookup's latency is asserted to the
//! nanosecond against the links: the DNS messages' round trips (encoded here with the same
//! library and the same zones) plus one ARP round trip wherever two nodes talk for the
//! first time.

mod common;

use common::frames::{arp, reverse, udp, udp_round_trip, Hop, G1, M100, MS, US};
use common::trace::{run_traced, Ev};
use common::{addr, dns_counter};
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use protocols::dns::edns;
use protocols::dns::server::auth_reply;
use protocols::dns::stub::Transport;
use protocols::dns::wire::{encode, fqdn, query};
use protocols::dns::zone::{Zone, ZoneData, ZoneRecord, ZoneSpec};
use scenarios::{load_file, Outcome};
use std::path::{Path, PathBuf};

const S: u64 = 1_000_000_000;

/// Host to switch, switch to host (or router) on either LAN: 50 us at 1 Gb/s.
const LAN: Hop = (50 * US, G1);
/// From a host on the office LAN to another, or to r1.
const OFFICE: [Hop; 2] = [LAN, LAN];
/// From a lab host to r1.
const LAB: [Hop; 2] = [LAN, LAN];
/// From a lab host through r1 to an office host.
const LAB_OFFICE: [Hop; 4] = [LAN, LAN, LAN, LAN];
/// r1 to the internet router.
const UPLINK: Hop = (4 * MS, M100);
const ROOT_LINK: Hop = (20 * MS, G1);
const TLD_LINK: Hop = (15 * MS, G1);
const EXT_LINK: Hop = (10 * MS, G1);

/// From the resolver to a server behind the internet router.
fn to_internet(last: Hop) -> Vec<Hop> {
    vec![LAN, LAN, UPLINK, last]
}

fn run_campus() -> (Outcome, Vec<Ev>, PathBuf) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples/campus.ron");
    let l = load_file(&path, &[]).expect("loads");
    run_traced(&l, "campus")
}

fn metric(o: &Outcome, node: &str, k: &str) -> f64 {
    let n = common::node(o, node);
    n.metrics.get(k).copied().unwrap_or(0.0)
}

/// The zones of campus.ron, record for record where it matters for the sizes: the
/// servers' answers and referrals (addresses are all 4 bytes; TTLs do not count).
fn zone(origin: &str, records: &[(&str, ZoneData)]) -> Vec<Zone> {
    let records = records
        .iter()
        .map(|(name, data)| ZoneRecord {
            name: name.to_string(),
            ttl: 3600,
            data: data.clone(),
        })
        .collect();
    vec![Zone::new(&ZoneSpec {
        origin: origin.into(),
        serial: 1,
        soa_ttl: 3600,
        negative_ttl: 300,
        records,
    })
    .unwrap()]
}

fn a() -> ZoneData {
    ZoneData::A("10.0.0.1".parse().unwrap())
}

fn ns(host: &str) -> ZoneData {
    ZoneData::Ns(host.into())
}

/// Bytes of the answer of `zones` (a server with EDNS) to the resolver's query for `name`:
/// RD clear, an OPT record of 1232 bytes.
fn upstream_answer(zones: &[Zone], name: &str) -> usize {
    auth_reply(zones, Some(1232), &resolver_query(name), Transport::Udp)
        .unwrap()
        .bytes
        .len()
}

fn resolver_query(name: &str) -> Message {
    let mut m = query(1, &fqdn(name).unwrap(), RecordType::A, false);
    m.edns = Some(edns::opt(edns::DEFAULT_PAYLOAD));
    m
}

/// Bytes of a stub's query (glibc's default: no OPT record).
fn stub_query(name: &str) -> usize {
    encode(&query(1, &fqdn(name).unwrap(), RecordType::A, true))
        .unwrap()
        .len()
}

/// Bytes of the resolver's answer to a stub: the question and the A record.
fn stub_answer(zones: &[Zone], name: &str) -> usize {
    let q = query(1, &fqdn(name).unwrap(), RecordType::A, true);
    auth_reply(zones, Some(1232), &q, Transport::Udp)
        .unwrap()
        .bytes
        .len()
}

/// The lookup of `name` the stub of `node` started at `t`: its latency, the server asked
/// and the upstream queries (server, edns) the resolver made meanwhile.
fn lookup(evs: &[Ev], node: &str, name: &str, t: u64) -> (u64, String, Vec<(String, u64)>) {
    let q = evs
        .iter()
        .find(|e| e.node == node && e.event == "stub_query" && e.t == t && e.s("name") == name)
        .unwrap_or_else(|| panic!("{node} does not look {name} up at {t}"));
    let d = evs
        .iter()
        .find(|e| e.node == node && e.event == "lookup_done" && e.t >= t && e.s("name") == name)
        .unwrap();
    assert_eq!(d.s("result"), "ok", "{node} {name}");
    let upstream = evs
        .iter()
        .filter(|e| e.event == "upstream_query" && e.t >= t && e.t <= d.t)
        .map(|e| (e.s("server"), e.v["edns"].as_u64().unwrap_or(0)))
        .collect();
    (d.v["latency_ns"].as_u64().unwrap(), q.s("server"), upstream)
}

fn report(what: &str, expected: u64, measured: u64) {
    println!(
        "{what}: computed {:.6} ms, measured {:.6} ms, relative error {:.1e}",
        expected as f64 / 1e6,
        measured as f64 / 1e6,
        (measured as f64 - expected as f64).abs() / expected as f64
    );
}

#[test]
fn campus_leases_resolve_through_the_hierarchy_and_serve_every_request() {
    let (o, evs, dir) = run_campus();
    let resolver = addr(&o, "resolver");
    let (root, tld, ns1, ns_ext) = (
        addr(&o, "root"),
        addr(&o, "tld"),
        addr(&o, "ns1"),
        addr(&o, "ns-ext"),
    );

    // Every client leased once, an office address on the office LAN and a lab address in
    // the lab (relayed by r1), and its stub asks the resolver of its lease.
    let clients = ["c1", "c2", "c3", "c4", "c5"];
    for c in clients {
        assert_eq!(metric(&o, c, "dhcp.client.leases"), 1.0, "{c}");
        let a = addr(&o, c);
        let lan = if c == "c4" || c == "c5" {
            "10.0.2."
        } else {
            "10.0.1."
        };
        assert!(a.starts_with(lan), "{c}: {a}");
        assert!(
            evs.iter()
                .filter(|e| e.node == c && e.event == "stub_query")
                .all(|e| e.s("server") == resolver),
            "{c} asks the resolver"
        );
    }
    let acks = metric(&o, "dhcp1", "dhcp.server.acks") + metric(&o, "dhcp2", "dhcp.server.acks");
    assert_eq!(acks, 5.0);
    // r1 relays the two lab clients' DISCOVER and REQUEST to both servers, and back both
    // servers' OFFERs and the ACK to each.
    assert_eq!(metric(&o, "r1", "dhcp.relay.to_server"), 8.0);
    assert_eq!(metric(&o, "r1", "dhcp.relay.to_client"), 6.0);

    // Every request of every client was answered.
    for f in &o.summary.flows {
        if f.id.starts_with('c') {
            assert_eq!(f.error, None, "{}", f.id);
            let count = f.rtt_ms.as_ref().unwrap().samples;
            assert!(count == 3 || count == 5, "{}: {count}", f.id);
            assert_eq!(f.rx_bytes, count * 20000, "{}", f.id);
        }
    }

    // Message sizes, from the zones.
    let root_zone = zone(
        ".",
        &[
            ("@", ns("a.root-servers.net.")),
            ("a.root-servers.net.", a()),
            ("example", ns("ns.example.")),
            ("ns.example.", a()),
            ("org", ns("ns.org.")),
            ("ns.org.", a()),
        ],
    );
    let example = zone(
        "example",
        &[
            ("@", ns("ns")),
            ("ns", a()),
            ("campus", ns("ns1.campus")),
            ("ns1.campus", a()),
        ],
    );
    let org = zone(
        "org",
        &[
            ("@", ns("ns")),
            ("ns", a()),
            ("example", ns("ns.example")),
            ("ns.example", a()),
        ],
    );
    let campus = zone(
        "campus.example",
        &[("@", ns("ns1")), ("ns1", a()), ("www", a())],
    );
    let example_org = zone("example.org", &[("@", ns("ns")), ("ns", a()), ("www", a())]);
    let www = "www.campus.example";
    let ext = "www.example.org";
    let up = encode(&resolver_query(www)).unwrap().len();
    let up_ext = encode(&resolver_query(ext)).unwrap().len();
    let (q, a_www) = (stub_query(www), stub_answer(&campus, www));
    let (q_ext, a_ext) = (stub_query(ext), stub_answer(&example_org, ext));

    // 1. c1 at 2 s: a cold cache. c1 ARPs for the resolver; the resolver asks the root
    //    (ARP for r1, r1 for the internet router, that router for the root, each as the
    //    query reaches it), the TLD (the internet router ARPs for it), then ns1 (the
    //    resolver ARPs for it); each asked the instant the referral arrives.
    let t0 = 2 * S;
    let mut t = udp(&OFFICE, arp(&OFFICE, t0), q);
    let to_root = to_internet(ROOT_LINK);
    t = arp(&OFFICE, t);
    t = udp(&OFFICE, t, up);
    t = udp(&[UPLINK], arp(&[UPLINK], t), up);
    t = udp(&[ROOT_LINK], arp(&[ROOT_LINK], t), up);
    t = udp(&reverse(&to_root), t, upstream_answer(&root_zone, www));
    let to_tld = to_internet(TLD_LINK);
    t = udp(&to_tld[..3], t, up);
    t = udp(&[TLD_LINK], arp(&[TLD_LINK], t), up);
    t = udp(&reverse(&to_tld), t, upstream_answer(&example, www));
    t = udp_round_trip(&OFFICE, arp(&OFFICE, t), up, upstream_answer(&campus, www));
    let expected = udp(&OFFICE, t, a_www) - t0;
    let (latency, server, upstream) = lookup(&evs, "c1", www, t0);
    report(
        "c1, cold cache: root, TLD, ns1 (and ARP)",
        expected,
        latency,
    );
    assert_eq!(latency, expected);
    assert_eq!(server, resolver);
    let e = 1232;
    assert_eq!(
        upstream,
        [(root.clone(), e), (tld.clone(), e), (ns1.clone(), e)]
    );

    // 2. c2 at 3.5 s: from the cache; c2 talks to the resolver for the first time (ARP).
    let t0 = 3_500_000_000;
    let expected = udp_round_trip(&OFFICE, arp(&OFFICE, t0), q, a_www) - t0;
    let (latency, _, upstream) = lookup(&evs, "c2", www, t0);
    report("c2, cache hit (and ARP)", expected, latency);
    assert_eq!((latency, upstream.len()), (expected, 0));

    // 3. c3 at 4.5 s: www.example.org; "org" is not cached: the root, the TLD, then
    //    example.org's server (the internet router ARPs for it).
    let t0 = 4_500_000_000;
    let mut t = udp(&OFFICE, arp(&OFFICE, t0), q_ext);
    t = udp_round_trip(&to_root, t, up_ext, upstream_answer(&root_zone, ext));
    t = udp_round_trip(&to_tld, t, up_ext, upstream_answer(&org, ext));
    let to_ext = to_internet(EXT_LINK);
    t = udp(&to_ext[..3], t, up_ext);
    t = udp(&[EXT_LINK], arp(&[EXT_LINK], t), up_ext);
    t = udp(&reverse(&to_ext), t, upstream_answer(&example_org, ext));
    let expected = udp(&OFFICE, t, a_ext) - t0;
    let (latency, _, upstream) = lookup(&evs, "c3", ext, t0);
    report(
        "c3, www.example.org: root, TLD, example.org (and ARP)",
        expected,
        latency,
    );
    assert_eq!(latency, expected);
    assert_eq!(upstream, [(root, e), (tld, e), (ns_ext, e)]);

    // 4. c4 at 7.25 s, in the lab: from the cache, across r1 (c4 ARPs for r1).
    let t0 = 7_250_000_000;
    let expected = udp_round_trip(&LAB_OFFICE, arp(&LAB, t0), q_ext, a_ext) - t0;
    let (latency, _, upstream) = lookup(&evs, "c4", ext, t0);
    report(
        "c4, cache hit across the router (and ARP)",
        expected,
        latency,
    );
    assert_eq!((latency, upstream.len()), (expected, 0));

    // 5. c1 at 10 s: from the cache, the stub-resolver round trip alone.
    let t0 = 10 * S;
    let expected = udp_round_trip(&OFFICE, t0, q, a_www) - t0;
    let (latency, _, upstream) = lookup(&evs, "c1", www, t0);
    report("c1 again, cache hit", expected, latency);
    assert_eq!((latency, upstream.len()), (expected, 0));

    // 6. c5 at 45 s: www's A record (TTL 30 s) has expired, campus.example's NS records
    //    (1 h) have not: one query, to ns1.
    let t0 = 45 * S;
    let mut t = udp(&LAB_OFFICE, arp(&LAB, t0), q);
    t = udp_round_trip(&OFFICE, t, up, upstream_answer(&campus, www));
    let expected = udp(&reverse(&LAB_OFFICE), t, a_www) - t0;
    let (latency, _, upstream) = lookup(&evs, "c5", www, t0);
    report("c5, expired A: ns1 alone (and ARP)", expected, latency);
    assert_eq!(latency, expected);
    assert_eq!(upstream, [(ns1, e)]);

    // 7. c3 at 50 s: www.example.org is still cached (TTL 5 min).
    let t0 = 50 * S;
    let expected = udp_round_trip(&OFFICE, t0, q_ext, a_ext) - t0;
    let (latency, _, upstream) = lookup(&evs, "c3", ext, t0);
    report("c3 again, cache hit", expected, latency);
    assert_eq!((latency, upstream.len()), (expected, 0));

    assert_eq!(dns_counter(&o, "resolver", "resolver_queries"), 7);
    assert_eq!(dns_counter(&o, "resolver", "resolver_cache_hits"), 4);
    assert_eq!(dns_counter(&o, "resolver", "resolver_upstream_queries"), 7);
    assert_eq!(dns_counter(&o, "resolver", "resolver_truncated_out"), 0);
    for (server, queries) in [("root", 2), ("tld", 2), ("ns1", 2), ("ns-ext", 1)] {
        assert_eq!(
            dns_counter(&o, server, "auth_edns_queries"),
            queries,
            "{server}"
        );
    }

    // tshark decodes the resolver's capture (DHCP broadcasts, DNS with OPT records)
    // without a malformed packet.
    if common::tshark_available() {
        let pcap = dir.join("node-resolver.pcap");
        assert_eq!(
            common::tshark_count(&pcap, "_ws.malformed || _ws.expert.severity == error"),
            0
        );
        // The 7 upstream queries and their 7 answers carry OPT records.
        assert_eq!(
            common::tshark_count(&pcap, "dns.rr.udp_payload_size == 1232"),
            14
        );
        // The office clients' DISCOVER and REQUEST broadcasts.
        assert_eq!(common::tshark_count(&pcap, "dhcp"), 6);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

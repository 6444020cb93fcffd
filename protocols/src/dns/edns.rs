//! EDNS(0) (RFC 6891) through hickory-proto's `Edns`: the OPT pseudo-record with which a
//! requester advertises the largest UDP response it can take, the responder's rules (how
//! large a UDP response may be, FORMERR from a server without EDNS, BADVERS for a version
//! it does not implement), and a requester's memory of servers found without EDNS.
//!
//! Owns no sockets, timers or resolution state: the stub, the resolver and the servers ask
//! it what to put in a message and what a message means.

use super::wire::{self, UDP_LIMIT};
use hickory_proto::op::{Edns, Message, ResponseCode};
use sim_core::time::{SimDuration, SimTime};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The UDP payload size glibc's stub advertises with `options edns0`
/// (`RESOLV_EDNS_BUFFER_SIZE` in resolv-internal.h).
pub const GLIBC_PAYLOAD: u16 = 1200;

/// The UDP payload size BIND, Unbound, NSD and Knot advertise and answer within by default
/// since DNS Flag Day 2020 (IPv6's 1280-byte minimum MTU less headers: no fragmentation).
pub const DEFAULT_PAYLOAD: u16 = 1232;

/// How long a requester remembers that a server does not implement EDNS (Unbound's
/// `infra-host-ttl` default; RFC 6891 6.2.2 allows caching it "for a brief time").
pub const NO_EDNS_MEMORY: SimDuration = SimDuration::from_secs(900);

/// The OPT record of a query: version 0, DO clear, no options, advertising `payload` bytes
/// (at least 512, RFC 6891 6.2.5).
pub fn opt(payload: u16) -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(payload);
    e
}

/// What a responder makes of a query's OPT record (or its absence).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Negotiated {
    /// Answer it. A UDP response may be `udp_limit` bytes long (512 without EDNS, else
    /// min(requester's payload, responder's)); `opt` (the responder's OPT) goes in the
    /// response when the query had one.
    Answer { udp_limit: usize, opt: Option<Edns> },
    /// The query has an OPT record and the responder does not implement EDNS: FORMERR
    /// without an OPT record (RFC 6891 7).
    FormErr,
    /// The query asks for an EDNS version above 0: BADVERS, with the responder's OPT of
    /// version 0 (RFC 6891 6.1.3).
    BadVers(Edns),
}

/// The EDNS part of answering `query` for a responder whose EDNS support is `support`
/// (its own UDP payload size, or `None` without EDNS).
pub fn negotiate(support: Option<u16>, query: &Message) -> Negotiated {
    let Some(asked) = &query.edns else {
        return Negotiated::Answer {
            udp_limit: UDP_LIMIT,
            opt: None,
        };
    };
    let Some(ours) = support else {
        return Negotiated::FormErr;
    };
    if asked.version() > 0 {
        return Negotiated::BadVers(opt(ours));
    }
    // Values below 512 count as 512 (RFC 6891 6.2.3), on either side.
    let limit = asked.max_payload().max(512).min(ours.max(512));
    Negotiated::Answer {
        udp_limit: limit as usize,
        opt: Some(opt(ours)),
    }
}

/// The response to `query` that [`negotiate`] rejected (`FormErr` or `BadVers`); `None` for
/// an `Answer`.
pub fn rejection(query: &Message, n: &Negotiated) -> Option<Message> {
    match n {
        Negotiated::Answer { .. } => None,
        Negotiated::FormErr => Some(wire::response_to(query, ResponseCode::FormErr)),
        Negotiated::BadVers(ours) => {
            let mut r = wire::response_to(query, ResponseCode::BADVERS);
            r.edns = Some(ours.clone());
            Some(r)
        }
    }
}

/// Does `response`, to a query sent with an OPT record, say that the server does not
/// implement EDNS? That is FORMERR without an OPT record (RFC 6891 7); a FORMERR with an
/// OPT record comes from a server that does, and is a failure like any other.
pub fn says_no_edns(response: &Message) -> bool {
    response.metadata.response_code == ResponseCode::FormErr && response.edns.is_none()
}

/// The servers a requester found without EDNS, each until [`NO_EDNS_MEMORY`] after it was
/// found out; queries to them go without an OPT record meanwhile.
#[derive(Clone, Debug, Default)]
pub struct NoEdnsServers {
    until: BTreeMap<Ipv4Addr, SimTime>,
}

impl NoEdnsServers {
    /// `server` answered FORMERR to a query with an OPT record at `now`.
    pub fn learn(&mut self, now: SimTime, server: Ipv4Addr) {
        self.until.insert(server, now + NO_EDNS_MEMORY);
        // Forget the expired ones, so that the map stays as small as the servers in use.
        self.until.retain(|_, t| *t > now);
    }

    /// Is `server` known to lack EDNS at `now`?
    pub fn lacks_edns(&self, now: SimTime, server: Ipv4Addr) -> bool {
        self.until.get(&server).is_some_and(|t| now < *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::{decode, encode, fqdn, query};
    use hickory_proto::rr::RecordType;

    fn q(edns: Option<Edns>) -> Message {
        let mut m = query(3, &fqdn("www.example").unwrap(), RecordType::A, true);
        m.edns = edns;
        m
    }

    #[test]
    fn the_opt_record_round_trips_with_its_payload_size() {
        let bytes = encode(&q(Some(opt(GLIBC_PAYLOAD)))).unwrap();
        // 11 bytes more than the plain query: root name, type 41, class = payload, TTL,
        // RDLENGTH 0 (RFC 6891 6.1.2).
        assert_eq!(bytes.len(), encode(&q(None)).unwrap().len() + 11);
        let m = decode(&bytes).unwrap();
        let e = m.edns.expect("OPT decoded");
        assert_eq!((e.max_payload(), e.version()), (1200, 0));
        assert!(!e.flags().dnssec_ok);
        assert!(
            m.additionals.is_empty(),
            "the OPT is not an additional record"
        );
        // Below 512 counts as 512.
        assert_eq!(opt(100).max_payload(), 512);
    }

    #[test]
    fn the_udp_limit_is_the_smaller_of_the_two_sizes_and_512_without_edns() {
        let limit = |support, edns| match negotiate(support, &q(edns)) {
            Negotiated::Answer { udp_limit, opt } => (udp_limit, opt.map(|o| o.max_payload())),
            other => panic!("{other:?}"),
        };
        assert_eq!(limit(Some(1232), None), (512, None));
        assert_eq!(limit(None, None), (512, None));
        assert_eq!(limit(Some(1232), Some(opt(1200))), (1200, Some(1232)));
        assert_eq!(limit(Some(1232), Some(opt(4096))), (1232, Some(1232)));
        assert_eq!(limit(Some(4096), Some(opt(1232))), (1232, Some(4096)));
    }

    #[test]
    fn a_server_without_edns_answers_formerr_without_opt() {
        let query = q(Some(opt(1232)));
        let n = negotiate(None, &query);
        assert_eq!(n, Negotiated::FormErr);
        let r = rejection(&query, &n).unwrap();
        let r = decode(&encode(&r).unwrap()).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(r.metadata.id, 3);
        assert!(r.edns.is_none());
        assert!(says_no_edns(&r));
    }

    #[test]
    fn an_unknown_version_gets_badvers_with_version_0() {
        let mut e = opt(1232);
        e.set_version(1);
        let query = q(Some(e));
        let n = negotiate(Some(1232), &query);
        let r = rejection(&query, &n).unwrap();
        let r = decode(&encode(&r).unwrap()).unwrap();
        // BADVERS is 16: 0 in the header, 1 in the OPT's extended RCODE.
        assert_eq!(u16::from(r.metadata.response_code), 16);
        assert!(!says_no_edns(&r));
        let opt = r.edns.expect("BADVERS carries an OPT");
        assert_eq!(opt.version(), 0);
    }

    /// A query with an OPT record, as bytes (the OPT record is the last 11).
    fn query_bytes() -> Vec<u8> {
        encode(&q(Some(opt(1232)))).unwrap()
    }

    /// The same query with its OPT record twice (RFC 6891 6.1.1 forbids it).
    fn query_with_two_opt_records() -> Vec<u8> {
        let mut two = query_bytes();
        let opt_rr = two[two.len() - 11..].to_vec();
        two.extend_from_slice(&opt_rr);
        two[11] = 2; // ARCOUNT
        two
    }

    #[test]
    fn malformed_opt_records_make_the_message_undecodable() {
        use crate::dns::wire::MalformedDns;
        let two = query_with_two_opt_records();
        // An OPT record in the answer section (6.1.1: additional section only).
        let mut in_answer = query_bytes();
        in_answer[7] = 1; // ANCOUNT
        in_answer[11] = 0; // ARCOUNT
                           // RDLENGTH beyond the end of the message.
        let mut long = query_bytes();
        let n = long.len();
        long[n - 1] = 16;
        // An option whose length runs past the record's data.
        let mut bad_option = query_bytes();
        let n = bad_option.len();
        bad_option[n - 1] = 4; // RDLENGTH 4: one option header ...
        bad_option.extend_from_slice(&[0, 10, 0, 200]); // ... promising 200 bytes
        for bytes in [&two, &in_answer, &long, &bad_option] {
            assert_eq!(decode(bytes), Err(MalformedDns::Undecodable));
        }
    }

    /// RFC 6891 6.1.1: "If a query message with more than one OPT RR is received, a
    /// FORMERR (RCODE=1) MUST be returned." The resolver counts the query as malformed and
    /// answers FORMERR with the query's id and question.
    #[test]
    fn a_query_with_two_opt_records_gets_formerr() {
        use crate::dns::resolver::{Client, Resolver, ResolverConfig, ResolverOut};
        use sim_core::rng::RngFactory;
        use std::net::SocketAddrV4;
        let two = query_with_two_opt_records();
        let mut r = Resolver::new(ResolverConfig::default(), RngFactory::new(1).stream("ids"));
        let client = Client::Udp(SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 40000));
        let mut out = Vec::new();
        assert!(r.on_query(SimTime::ZERO, client, &two, &mut out).is_err());
        assert_eq!(r.counters.malformed, 1);
        let [ResolverOut::Reply { client: to, bytes }] = out.as_slice() else {
            panic!("one reply expected, got {out:?}");
        };
        assert_eq!(*to, client);
        let reply = decode(bytes).unwrap();
        let asked = q(None);
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(reply.metadata.id, asked.metadata.id);
        assert_eq!(reply.queries, asked.queries);
        assert!(reply.edns.is_none());
    }

    proptest::proptest! {
        /// Mangled EDNS queries and answers (any OPT data, sizes, versions, flags, and
        /// random bytes changed or cut off) never make a server, the resolver or the stub
        /// panic: each message is either handled or counted as malformed and dropped.
        #[test]
        fn mangled_edns_messages_are_handled_or_counted_never_a_panic(
            rdata in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            class in proptest::prelude::any::<u16>(),
            ttl in proptest::prelude::any::<u32>(),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..4),
            cut in proptest::prelude::any::<usize>(),
            response in proptest::prelude::any::<bool>(),
        ) {
            use crate::dns::resolver::{Client, Resolver, ResolverConfig};
            use crate::dns::server::auth_reply;
            use crate::dns::stub::{StubConfig, StubResolver, Transport};
            use crate::dns::zone::{Zone, ZoneData, ZoneRecord, ZoneSpec};
            use sim_core::rng::RngFactory;
            use std::net::SocketAddrV4;

            // A query (or the resolver's answer to it) whose OPT record is replaced by one
            // with arbitrary class (payload size), TTL (extended RCODE, version, flags) and
            // data, then bytes changed and the message cut short.
            let mut m = q(None);
            if response {
                m.metadata.message_type = hickory_proto::op::MessageType::Response;
            }
            let mut bytes = encode(&m).unwrap();
            bytes[11] = 1; // ARCOUNT
            bytes.push(0);
            bytes.extend_from_slice(&41u16.to_be_bytes());
            bytes.extend_from_slice(&class.to_be_bytes());
            bytes.extend_from_slice(&ttl.to_be_bytes());
            bytes.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            bytes.extend_from_slice(&rdata);
            for (at, v) in flips {
                let n = bytes.len();
                bytes[at % n] ^= v;
            }
            bytes.truncate(12 + cut % (bytes.len() - 11));

            let decodable = decode(&bytes).is_ok();
            let zone = Zone::new(&ZoneSpec {
                origin: "example".into(),
                serial: 1,
                soa_ttl: 60,
                negative_ttl: 60,
                records: vec![ZoneRecord {
                    name: "www".into(),
                    ttl: 60,
                    data: ZoneData::A(Ipv4Addr::new(10, 0, 0, 80)),
                }],
            })
            .unwrap();
            if let Ok(m) = decode(&bytes) {
                for support in [None, Some(DEFAULT_PAYLOAD)] {
                    for t in [Transport::Udp, Transport::Tcp] {
                        let _ = auth_reply(std::slice::from_ref(&zone), support, &m, t);
                    }
                }
            }
            // The resolver, as the server of a client and as the client of a server.
            let server = Ipv4Addr::new(10, 0, 0, 1);
            let mut r = Resolver::new(
                ResolverConfig { root_hints: vec![server], ..ResolverConfig::default() },
                RngFactory::new(1).stream("ids"),
            );
            let client = Client::Udp(SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 40000));
            let mut out = Vec::new();
            proptest::prop_assert_eq!(r.on_query(SimTime::ZERO, client, &bytes, &mut out).is_ok(), decodable);
            let from = SocketAddrV4::new(server, 53);
            proptest::prop_assert_eq!(r.on_udp_response(SimTime::ZERO, from, &bytes, &mut out).is_ok(), decodable);
            proptest::prop_assert_eq!(r.on_tcp_response(SimTime::ZERO, 1, &bytes, &mut out).is_ok(), decodable);
            proptest::prop_assert_eq!(r.counters.malformed, if decodable { 0 } else { 3 });
            // The stub, waiting for an answer from that server.
            let mut s = StubResolver::new(StubConfig { edns0: true, ..StubConfig::default() });
            s.start(SimTime::ZERO, 1, "www.example", &[server], 3, &mut Vec::new());
            let res = s.on_udp(SimTime::ZERO, 1, from, &bytes, &mut Vec::new());
            proptest::prop_assert_eq!(res.is_ok(), decodable);
            proptest::prop_assert_eq!(s.counters.malformed, u64::from(!decodable));
        }
    }

    #[test]
    fn servers_without_edns_are_remembered_for_900_seconds() {
        let s = Ipv4Addr::new(10, 0, 0, 9);
        let mut m = NoEdnsServers::default();
        assert!(!m.lacks_edns(SimTime::ZERO, s));
        m.learn(SimTime::from_secs(5), s);
        assert!(m.lacks_edns(SimTime::from_nanos(904_999_999_999), s));
        assert!(!m.lacks_edns(SimTime::from_secs(905), s));
        assert!(!m.lacks_edns(SimTime::from_secs(6), Ipv4Addr::new(10, 0, 0, 8)));
    }
}

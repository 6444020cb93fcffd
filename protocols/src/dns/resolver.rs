//! A recursive resolver (RFC 1034 5.3.3, RFC 1035 7): it answers clients' recursive
//! queries from its cache or by iterative queries (RD clear) that start at the deepest zone
//! cut it knows name servers for, or at the root hints, and follow referrals (NS records
//! with glue) down to an authoritative answer (RB-DNS-01). Answers, CNAMEs, referrals and
//! glue are cached for their TTLs; NXDOMAIN and NODATA for the SOA's TTL (RFC 2308). A
//! truncated UDP answer is asked again over TCP of the same server (RB-DNS-02); a server
//! that does not answer within `timeout` is replaced by the next of the zone's servers, for
//! `attempts` rounds, then the client gets SERVFAIL. Identical questions in progress share
//! one resolution. Answers to clients over UDP are limited to 512 bytes (TC set beyond).
//!
//! EDNS (RFC 6891, [`super::edns`]): with `edns` set, upstream queries carry an OPT record
//! advertising that many bytes; a server that answers FORMERR without an OPT record is
//! asked again at once without one, and remembered as such for 15 minutes (as Unbound
//! does). Clients' OPT records raise the limit of their UDP answers to min(theirs, ours); a
//! resolver without `edns` answers them FORMERR.
//!
//! A state machine without sockets or timers (like [`super::stub`]): its host app
//! (`dns::server`) connects it to UDP, TCP and a timer.

use super::cache::{Cache, Cached};
use super::edns::{self, Negotiated, NoEdnsServers};
use super::stub::Transport;
use super::wire::{self, MalformedDns};
use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{CNAME, NS};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use sim_core::rng::SimRng;
use sim_core::time::{SimDuration, SimTime};
use std::net::{Ipv4Addr, SocketAddrV4};

#[derive(Clone, Debug, PartialEq)]
pub struct ResolverConfig {
    /// Addresses of the root servers (the root hints).
    pub root_hints: Vec<Ipv4Addr>,
    /// How long to wait for an upstream answer.
    pub timeout: SimDuration,
    /// Rounds over a zone's servers before giving up with SERVFAIL.
    pub attempts: u32,
    /// Cache entries kept at most.
    pub cache_size: usize,
    /// Upstream queries one resolution may make at most (referral loops end here).
    pub max_upstream: u32,
    /// EDNS: the UDP payload size advertised upstream and allowed in answers to clients
    /// that advertise one; `None`: no EDNS at all.
    pub edns: Option<u16>,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            root_hints: Vec::new(),
            timeout: SimDuration::from_secs(2),
            attempts: 2,
            cache_size: 10_000,
            max_upstream: 32,
            edns: Some(edns::DEFAULT_PAYLOAD),
        }
    }
}

/// Who asked: a UDP client's address, or a TCP connection (the host's key for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Udp(SocketAddrV4),
    Tcp(u64),
}

/// What the resolver asks its host to do.
#[derive(Clone, Debug, PartialEq)]
pub enum ResolverOut {
    /// Answer a client (over UDP: already within 512 bytes).
    Reply { client: Client, bytes: Vec<u8> },
    /// Query `server` port 53 for resolution `task` (over TCP: a new connection; report
    /// the answer with [`Resolver::on_tcp_response`]).
    Send {
        task: u64,
        server: Ipv4Addr,
        transport: Transport,
        bytes: Vec<u8>,
        /// The name asked (for traces).
        name: String,
        /// The UDP payload size its OPT record advertises (`None`: no OPT record).
        edns: Option<u16>,
    },
    /// An event worth a trace record: (event, name, server or client address).
    Note {
        event: &'static str,
        name: String,
        addr: Option<Ipv4Addr>,
    },
}

/// The resolver's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResolverCounters {
    /// Client queries.
    pub queries: u64,
    /// Client queries over TCP.
    pub tcp_queries: u64,
    /// Client queries answered from the cache alone (positive or negative).
    pub cache_hits: u64,
    /// ... of which from a negative entry.
    pub negative_hits: u64,
    pub upstream_queries: u64,
    pub upstream_timeouts: u64,
    pub referrals: u64,
    /// NXDOMAIN answers to clients.
    pub nxdomain: u64,
    pub servfail: u64,
    /// Truncated upstream answers received.
    pub truncated_in: u64,
    /// Answers to clients truncated to 512 bytes.
    pub truncated_out: u64,
    /// Upstream questions asked again over TCP.
    pub tcp_retries: u64,
    pub malformed: u64,
    /// Client queries with an OPT record.
    pub edns_queries: u64,
    /// Client queries answered FORMERR or BADVERS because of their OPT record.
    pub edns_rejected: u64,
    /// Upstream queries asked again without an OPT record after a FORMERR.
    pub edns_fallbacks: u64,
}

#[derive(Clone, Debug)]
struct Waiter {
    client: Client,
    query: Message,
    /// How long a UDP answer may be, and the OPT record it carries (EDNS negotiation).
    udp_limit: usize,
    opt: Option<Edns>,
}

#[derive(Clone, Debug)]
struct Task {
    key: u64,
    qname: Name,
    qtype: RecordType,
    waiters: Vec<Waiter>,
    /// The name being resolved now (after CNAMEs).
    cur: Name,
    /// CNAMEs followed so far.
    chain: Vec<Record>,
    /// The zone cut the servers are for.
    zone: Name,
    servers: Vec<Ipv4Addr>,
    idx: usize,
    round: u32,
    transport: Transport,
    id: u16,
    /// The query in flight carries an OPT record.
    edns: bool,
    deadline: SimTime,
    sent: u32,
}

/// How a resolution ended.
struct Outcome {
    rcode: ResponseCode,
    answers: Vec<Record>,
    authority: Vec<Record>,
}

/// See the module documentation.
pub struct Resolver {
    cfg: ResolverConfig,
    pub cache: Cache,
    tasks: Vec<Task>,
    next_key: u64,
    rng: SimRng,
    no_edns: NoEdnsServers,
    pub counters: ResolverCounters,
}

/// CNAMEs one resolution follows at most.
const MAX_CHAIN: usize = 8;

impl Resolver {
    /// `rng` draws the query ids.
    pub fn new(cfg: ResolverConfig, rng: SimRng) -> Self {
        Resolver {
            cache: Cache::new(cfg.cache_size),
            cfg,
            tasks: Vec::new(),
            next_key: 1,
            rng,
            no_edns: NoEdnsServers::default(),
            counters: ResolverCounters::default(),
        }
    }

    pub fn poll_at(&self) -> Option<SimTime> {
        self.tasks.iter().map(|t| t.deadline).min()
    }

    pub fn pending(&self) -> usize {
        self.tasks.len()
    }

    /// A client's query arrived.
    pub fn on_query(
        &mut self,
        now: SimTime,
        client: Client,
        bytes: &[u8],
        out: &mut Vec<ResolverOut>,
    ) -> Result<(), MalformedDns> {
        let q = wire::decode(bytes).inspect_err(|_| {
            self.counters.malformed += 1;
            if let Some(bytes) = wire::formerr_reply(bytes).and_then(|m| wire::encode(&m)) {
                out.push(ResolverOut::Reply { client, bytes });
            }
        })?;
        if q.metadata.message_type != MessageType::Query {
            return Ok(());
        }
        self.counters.queries += 1;
        if matches!(client, Client::Tcp(_)) {
            self.counters.tcp_queries += 1;
        }
        if q.edns.is_some() {
            self.counters.edns_queries += 1;
        }
        let (udp_limit, opt) = match edns::negotiate(self.cfg.edns, &q) {
            Negotiated::Answer { udp_limit, opt } => (udp_limit, opt),
            rejected => {
                self.counters.edns_rejected += 1;
                let reply = edns::rejection(&q, &rejected).and_then(|r| wire::encode(&r));
                if let Some(bytes) = reply {
                    out.push(ResolverOut::Reply { client, bytes });
                }
                return Ok(());
            }
        };
        let (qname, qtype) = wire::question(&q);
        let (qname, qtype) = (qname.clone(), qtype);
        let waiter = Waiter {
            client,
            query: q,
            udp_limit,
            opt,
        };
        if let Some(t) = self
            .tasks
            .iter_mut()
            .find(|t| t.qname == qname && t.qtype == qtype)
        {
            t.waiters.push(waiter);
            return Ok(());
        }
        let key = self.next_key;
        self.next_key += 1;
        self.tasks.push(Task {
            key,
            qname: qname.clone(),
            qtype,
            waiters: vec![waiter],
            cur: qname,
            chain: Vec::new(),
            zone: Name::root(),
            servers: Vec::new(),
            idx: 0,
            round: 0,
            transport: Transport::Udp,
            id: 0,
            edns: false,
            deadline: now,
            sent: 0,
        });
        let upstream = self.counters.upstream_queries;
        let negative = self.step(now, self.tasks.len() - 1, out);
        if self.counters.upstream_queries == upstream {
            self.counters.cache_hits += 1;
            if negative {
                self.counters.negative_hits += 1;
            }
        }
        Ok(())
    }

    /// Advances task `i` from the cache: answers it, or sends the next upstream query.
    /// Returns whether it ended with a negative answer.
    fn step(&mut self, now: SimTime, i: usize, out: &mut Vec<ResolverOut>) -> bool {
        loop {
            let t = &self.tasks[i];
            if t.chain.len() > MAX_CHAIN {
                self.finish(now, i, servfail(), out);
                return false;
            }
            let (cur, qtype) = (t.cur.clone(), t.qtype);
            let mut chain = t.chain.clone();
            match self.cache.get(now, &cur, qtype) {
                Some(Cached::Records(r)) => {
                    chain.extend(r);
                    self.finish(now, i, outcome(ResponseCode::NoError, chain, None), out);
                    return false;
                }
                Some(Cached::NxDomain(soa)) => {
                    self.finish(now, i, outcome(ResponseCode::NXDomain, chain, soa), out);
                    return true;
                }
                Some(Cached::NoData(soa)) => {
                    self.finish(now, i, outcome(ResponseCode::NoError, chain, soa), out);
                    return true;
                }
                None => {}
            }
            if qtype != RecordType::CNAME {
                if let Some(c) = self.cache.records(now, &cur, RecordType::CNAME) {
                    if let Some(RData::CNAME(CNAME(target))) = c.first().map(|r| &r.data) {
                        let t = &mut self.tasks[i];
                        t.cur = target.clone();
                        t.chain.extend(c);
                        continue;
                    }
                }
            }
            let (zone, servers) = self.closest_servers(now, &cur);
            let t = &mut self.tasks[i];
            t.zone = zone;
            t.servers = servers;
            t.idx = 0;
            t.round = 0;
            t.transport = Transport::Udp;
            if t.servers.is_empty() {
                self.finish(now, i, servfail(), out);
                return false;
            }
            self.send(now, i, out);
            return false;
        }
    }

    /// The deepest zone cut above `name` with cached name servers that have cached
    /// addresses, else the root hints.
    fn closest_servers(&self, now: SimTime, name: &Name) -> (Name, Vec<Ipv4Addr>) {
        for k in (0..=name.num_labels()).rev() {
            let zone = name.trim_to(k as usize);
            let Some(ns) = self.cache.records(now, &zone, RecordType::NS) else {
                continue;
            };
            let addrs: Vec<Ipv4Addr> = ns
                .iter()
                .filter_map(|r| match &r.data {
                    RData::NS(NS(h)) => self.cache.records(now, h, RecordType::A),
                    _ => None,
                })
                .flatten()
                .filter_map(|r| match r.data {
                    RData::A(a) => Some(a.0),
                    _ => None,
                })
                .collect();
            if !addrs.is_empty() {
                return (zone, addrs);
            }
        }
        (Name::root(), self.cfg.root_hints.clone())
    }

    fn send(&mut self, now: SimTime, i: usize, out: &mut Vec<ResolverOut>) {
        if self.tasks[i].sent >= self.cfg.max_upstream {
            self.finish(now, i, servfail(), out);
            return;
        }
        let id = self.rng.next_u32() as u16;
        let t = &mut self.tasks[i];
        t.id = id;
        t.sent += 1;
        t.deadline = now + self.cfg.timeout;
        let server = t.servers[t.idx % t.servers.len()];
        let mut q = wire::query(id, &t.cur, t.qtype, false);
        q.edns = self
            .cfg
            .edns
            .filter(|_| !self.no_edns.lacks_edns(now, server))
            .map(edns::opt);
        t.edns = q.edns.is_some();
        let Some(bytes) = wire::encode(&q) else {
            self.finish(now, i, servfail(), out);
            return;
        };
        self.counters.upstream_queries += 1;
        out.push(ResolverOut::Send {
            task: t.key,
            server,
            transport: t.transport,
            bytes,
            name: t.cur.to_ascii(),
            edns: q.edns.as_ref().map(|e| e.max_payload()),
        });
    }

    fn next_server(&mut self, now: SimTime, i: usize, out: &mut Vec<ResolverOut>) {
        let t = &mut self.tasks[i];
        t.transport = Transport::Udp;
        t.idx += 1;
        if t.idx >= t.servers.len() {
            t.idx = 0;
            t.round += 1;
        }
        if t.round >= self.cfg.attempts.max(1) {
            self.finish(now, i, servfail(), out);
            return;
        }
        self.send(now, i, out);
    }

    /// Upstream timeouts due at `now`.
    pub fn on_timer(&mut self, now: SimTime, out: &mut Vec<ResolverOut>) {
        while let Some(i) = self.tasks.iter().position(|t| t.deadline <= now) {
            self.counters.upstream_timeouts += 1;
            let t = &self.tasks[i];
            out.push(ResolverOut::Note {
                event: "upstream_timeout",
                name: t.cur.to_ascii(),
                addr: Some(t.servers[t.idx % t.servers.len()]),
            });
            self.next_server(now, i, out);
        }
    }

    /// A UDP answer from an upstream server arrived.
    pub fn on_udp_response(
        &mut self,
        now: SimTime,
        from: SocketAddrV4,
        bytes: &[u8],
        out: &mut Vec<ResolverOut>,
    ) -> Result<(), MalformedDns> {
        let m = wire::decode(bytes).inspect_err(|_| self.counters.malformed += 1)?;
        let Some(i) = self.tasks.iter().position(|t| {
            t.transport == Transport::Udp
                && t.id == m.metadata.id
                && t.servers[t.idx % t.servers.len()] == *from.ip()
                && from.port() == wire::DNS_PORT
        }) else {
            return Ok(());
        };
        self.response(now, i, m, out);
        Ok(())
    }

    /// A whole answer arrived on the TCP connection of `task`.
    pub fn on_tcp_response(
        &mut self,
        now: SimTime,
        task: u64,
        bytes: &[u8],
        out: &mut Vec<ResolverOut>,
    ) -> Result<(), MalformedDns> {
        let m = wire::decode(bytes).inspect_err(|_| self.counters.malformed += 1)?;
        let Some(i) = self
            .tasks
            .iter()
            .position(|t| t.key == task && t.transport == Transport::Tcp && t.id == m.metadata.id)
        else {
            return Ok(());
        };
        self.response(now, i, m, out);
        Ok(())
    }

    /// The TCP connection of `task` failed.
    pub fn on_tcp_error(&mut self, now: SimTime, task: u64, out: &mut Vec<ResolverOut>) {
        if let Some(i) = self
            .tasks
            .iter()
            .position(|t| t.key == task && t.transport == Transport::Tcp)
        {
            self.next_server(now, i, out);
        }
    }

    fn response(&mut self, now: SimTime, i: usize, m: Message, out: &mut Vec<ResolverOut>) {
        let t = &self.tasks[i];
        let (qn, qt) = wire::question(&m);
        if *qn != t.cur || qt != t.qtype || m.metadata.message_type != MessageType::Response {
            return;
        }
        let server = t.servers[t.idx % t.servers.len()];
        if t.edns && edns::says_no_edns(&m) {
            // RFC 6891 6.2.2: ask again without the OPT record, and remember the server.
            self.counters.edns_fallbacks += 1;
            self.no_edns.learn(now, server);
            out.push(ResolverOut::Note {
                event: "edns_fallback",
                name: t.cur.to_ascii(),
                addr: Some(server),
            });
            self.send(now, i, out);
            return;
        }
        if m.metadata.truncation && t.transport == Transport::Udp {
            self.counters.truncated_in += 1;
            self.counters.tcp_retries += 1;
            out.push(ResolverOut::Note {
                event: "truncated",
                name: t.cur.to_ascii(),
                addr: Some(server),
            });
            self.tasks[i].transport = Transport::Tcp;
            self.send(now, i, out);
            return;
        }
        let (cur, qtype, zone) = (t.cur.clone(), t.qtype, t.zone.clone());
        match m.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            _ => return self.next_server(now, i, out),
        }
        // The answer section: cache its RRsets, then follow the CNAMEs from `cur`.
        self.cache_rrsets(now, &m.answers);
        let mut owner = cur.clone();
        let mut chain = Vec::new();
        for _ in 0..=MAX_CHAIN {
            let c = m
                .answers
                .iter()
                .find(|r| r.name == owner && r.record_type() == RecordType::CNAME);
            match (c, qtype) {
                (Some(c), q) if q != RecordType::CNAME => {
                    chain.push(c.clone());
                    if let RData::CNAME(CNAME(target)) = &c.data {
                        owner = target.clone();
                    }
                }
                _ => break,
            }
        }
        let soa = m
            .authorities
            .iter()
            .find(|r| r.record_type() == RecordType::SOA)
            .cloned();
        if m.metadata.response_code == ResponseCode::NXDomain {
            self.cache.put_negative(now, &owner, None, soa.clone());
            let t = &mut self.tasks[i];
            t.chain.extend(chain);
            let answers = t.chain.clone();
            self.finish(now, i, outcome(ResponseCode::NXDomain, answers, soa), out);
            return;
        }
        let found: Vec<Record> = m
            .answers
            .iter()
            .filter(|r| r.name == owner && r.record_type() == qtype)
            .cloned()
            .collect();
        if !found.is_empty() {
            let t = &mut self.tasks[i];
            t.chain.extend(chain);
            let mut answers = t.chain.clone();
            answers.extend(found);
            self.finish(now, i, outcome(ResponseCode::NoError, answers, None), out);
            return;
        }
        if owner != cur {
            // The chain leads elsewhere: resolve the target from the top.
            let t = &mut self.tasks[i];
            t.chain.extend(chain);
            t.cur = owner;
            self.step(now, i, out);
            return;
        }
        if m.answers.is_empty() && (soa.is_some() || m.metadata.authoritative) {
            self.cache.put_negative(now, &cur, Some(qtype), soa.clone());
            let answers = self.tasks[i].chain.clone();
            self.finish(now, i, outcome(ResponseCode::NoError, answers, soa), out);
            return;
        }
        // A referral to a zone below the current cut and above the name?
        let ns: Vec<Record> = m
            .authorities
            .iter()
            .filter(|r| r.record_type() == RecordType::NS)
            .cloned()
            .collect();
        let cut = ns.first().map(|r| r.name.clone());
        let useful = cut
            .as_ref()
            .is_some_and(|c| c.zone_of(&cur) && zone.zone_of(c) && *c != zone);
        if !useful {
            // Lame or bogus: try another server.
            return self.next_server(now, i, out);
        }
        self.counters.referrals += 1;
        out.push(ResolverOut::Note {
            event: "referral",
            name: cut.map(|c| c.to_ascii()).unwrap_or_default(),
            addr: Some(server),
        });
        let hosts: Vec<Name> = ns
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(NS(h)) => Some(h.clone()),
                _ => None,
            })
            .collect();
        let glue: Vec<Record> = m
            .additionals
            .iter()
            .filter(|r| r.record_type() == RecordType::A && hosts.contains(&r.name))
            .cloned()
            .collect();
        self.cache_rrsets(now, &ns);
        self.cache_rrsets(now, &glue);
        let (new_zone, _) = self.closest_servers(now, &cur);
        if new_zone == zone {
            // No usable address for the new servers (no glue): give up on this server.
            return self.next_server(now, i, out);
        }
        self.step(now, i, out);
    }

    /// Caches the RRsets among `records` (grouped by name and type).
    fn cache_rrsets(&mut self, now: SimTime, records: &[Record]) {
        let mut keys: Vec<(Name, RecordType)> = Vec::new();
        for r in records {
            let k = (r.name.clone(), r.record_type());
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        for (name, t) in keys {
            let set: Vec<Record> = records
                .iter()
                .filter(|r| r.name == name && r.record_type() == t)
                .cloned()
                .collect();
            self.cache.put_rrset(now, set);
        }
    }

    fn finish(&mut self, _now: SimTime, i: usize, o: Outcome, out: &mut Vec<ResolverOut>) {
        let t = self.tasks.remove(i);
        match o.rcode {
            ResponseCode::NXDomain => self.counters.nxdomain += t.waiters.len() as u64,
            ResponseCode::ServFail => self.counters.servfail += t.waiters.len() as u64,
            _ => {}
        }
        out.push(ResolverOut::Note {
            event: "answer",
            name: t.qname.to_ascii(),
            addr: None,
        });
        for w in t.waiters {
            let mut r = wire::response_to(&w.query, o.rcode);
            r.metadata.recursion_available = true;
            r.answers = o.answers.clone();
            r.authorities = o.authority.clone();
            r.edns = w.opt;
            let bytes = match w.client {
                Client::Udp(_) => wire::encode_udp(&r, w.udp_limit).map(|(b, truncated)| {
                    if truncated {
                        self.counters.truncated_out += 1;
                    }
                    b
                }),
                Client::Tcp(_) => wire::encode(&r),
            };
            if let Some(bytes) = bytes {
                out.push(ResolverOut::Reply {
                    client: w.client,
                    bytes,
                });
            }
        }
    }
}

fn outcome(rcode: ResponseCode, answers: Vec<Record>, soa: Option<Record>) -> Outcome {
    Outcome {
        rcode,
        answers,
        authority: soa.into_iter().collect(),
    }
}

fn servfail() -> Outcome {
    outcome(ResponseCode::ServFail, Vec::new(), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::server::auth_reply;
    use crate::dns::wire::{decode, encode, fqdn, query, response_to};
    use crate::dns::zone::{Zone, ZoneData, ZoneRecord, ZoneSpec};
    use hickory_proto::rr::rdata::A;
    use sim_core::rng::RngFactory;

    const ROOT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const TLD: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const AUTH: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
    const AUTH2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 4);
    const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 40000);

    fn rec(name: &str, ttl: u32, data: ZoneData) -> ZoneRecord {
        ZoneRecord {
            name: name.into(),
            ttl,
            data,
        }
    }

    fn zone(origin: &str, negative_ttl: u32, records: Vec<ZoneRecord>) -> Zone {
        Zone::new(&ZoneSpec {
            origin: origin.into(),
            serial: 1,
            soa_ttl: 3600,
            negative_ttl,
            records,
        })
        .unwrap()
    }

    /// root → example. (on TLD) → campus.example. (on AUTH and AUTH2).
    fn hierarchy() -> Vec<(Ipv4Addr, Vec<Zone>)> {
        hierarchy_with(Vec::new())
    }

    /// The same, with `extra` records in the campus zone.
    fn hierarchy_with(extra: Vec<ZoneRecord>) -> Vec<(Ipv4Addr, Vec<Zone>)> {
        let root = zone(
            ".",
            3600,
            vec![
                rec("example.", 172800, ZoneData::Ns("ns.example.".into())),
                rec("ns.example.", 172800, ZoneData::A(TLD)),
            ],
        );
        let tld = zone(
            "example",
            900,
            vec![
                rec("@", 172800, ZoneData::Ns("ns".into())),
                rec("ns", 172800, ZoneData::A(TLD)),
                rec("campus", 3600, ZoneData::Ns("ns1.campus".into())),
                rec("campus", 3600, ZoneData::Ns("ns2.campus".into())),
                rec("ns1.campus", 3600, ZoneData::A(AUTH)),
                rec("ns2.campus", 3600, ZoneData::A(AUTH2)),
            ],
        );
        let mut records = vec![
            rec("@", 3600, ZoneData::Ns("ns1".into())),
            rec("ns1", 3600, ZoneData::A(AUTH)),
            rec("www", 60, ZoneData::A(Ipv4Addr::new(10, 1, 0, 80))),
            rec("web", 300, ZoneData::Cname("www".into())),
        ];
        for i in 0..40 {
            records.push(rec("big", 60, ZoneData::A(Ipv4Addr::new(10, 2, 0, i))));
        }
        records.extend(extra);
        let campus = zone("campus.example", 30, records);
        vec![
            (ROOT, vec![root]),
            (TLD, vec![tld]),
            (AUTH, vec![campus.clone()]),
            (AUTH2, vec![campus]),
        ]
    }

    fn resolver() -> Resolver {
        resolver_with_edns(Some(edns::DEFAULT_PAYLOAD))
    }

    fn resolver_with_edns(edns: Option<u16>) -> Resolver {
        Resolver::new(
            ResolverConfig {
                root_hints: vec![ROOT],
                edns,
                ..ResolverConfig::default()
            },
            RngFactory::new(1).stream("ids"),
        )
    }

    fn secs(s: f64) -> SimTime {
        SimTime::from_nanos((s * 1e9).round() as u64)
    }

    /// The network: delivers the resolver's upstream queries to the zones at once (servers
    /// in `silent` drop them) until nothing is left to send; returns the servers asked, in
    /// order, and the replies to clients.
    /// Servers answer as `DnsAuthServer` does (`auth_reply`), with EDNS unless in
    /// `no_edns`.
    struct Net {
        servers: Vec<(Ipv4Addr, Vec<Zone>)>,
        silent: Vec<Ipv4Addr>,
        no_edns: Vec<Ipv4Addr>,
        asked: Vec<(Ipv4Addr, Transport)>,
        /// The payload size each query in `asked` advertised (None: no OPT record).
        asked_edns: Vec<Option<u16>>,
        replies: Vec<(Client, Message)>,
    }

    impl Net {
        fn new() -> Self {
            Net {
                servers: hierarchy(),
                silent: Vec::new(),
                no_edns: Vec::new(),
                asked: Vec::new(),
                asked_edns: Vec::new(),
                replies: Vec::new(),
            }
        }

        fn run(&mut self, r: &mut Resolver, now: SimTime, mut out: Vec<ResolverOut>) {
            while !out.is_empty() {
                let mut next = Vec::new();
                for o in out {
                    match o {
                        ResolverOut::Reply { client, bytes } => {
                            self.replies.push((client, decode(&bytes).unwrap()))
                        }
                        ResolverOut::Send {
                            task,
                            server,
                            transport,
                            bytes,
                            ..
                        } => {
                            let q = decode(&bytes).unwrap();
                            self.asked.push((server, transport));
                            self.asked_edns
                                .push(q.edns.as_ref().map(|e| e.max_payload()));
                            if self.silent.contains(&server) {
                                continue;
                            }
                            let zones = &self.servers.iter().find(|(a, _)| *a == server).unwrap().1;
                            let support = Some(edns::DEFAULT_PAYLOAD)
                                .filter(|_| !self.no_edns.contains(&server));
                            let b = auth_reply(zones, support, &q, transport).unwrap().bytes;
                            match transport {
                                Transport::Udp => {
                                    let from = SocketAddrV4::new(server, 53);
                                    r.on_udp_response(now, from, &b, &mut next).unwrap();
                                }
                                Transport::Tcp => {
                                    r.on_tcp_response(now, task, &b, &mut next).unwrap();
                                }
                            }
                        }
                        ResolverOut::Note { .. } => {}
                    }
                }
                out = next;
            }
        }

        fn ask(&mut self, r: &mut Resolver, now: SimTime, client: Client, name: &str, id: u16) {
            self.ask_edns(r, now, client, name, id, None);
        }

        /// Asks with an OPT record advertising `edns` bytes, if given.
        fn ask_edns(
            &mut self,
            r: &mut Resolver,
            now: SimTime,
            client: Client,
            name: &str,
            id: u16,
            edns: Option<u16>,
        ) {
            self.asked.clear();
            self.asked_edns.clear();
            self.replies.clear();
            let mut q = query(id, &fqdn(name).unwrap(), RecordType::A, true);
            q.edns = edns.map(edns::opt);
            let mut out = Vec::new();
            r.on_query(now, client, &encode(&q).unwrap(), &mut out)
                .unwrap();
            self.run(r, now, out);
        }

        fn servers_asked(&self) -> Vec<Ipv4Addr> {
            self.asked.iter().map(|(s, _)| *s).collect()
        }
    }

    fn addrs(m: &Message) -> Vec<Ipv4Addr> {
        m.answers
            .iter()
            .filter_map(|r| match r.data {
                RData::A(A(a)) => Some(a),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn resolves_iteratively_from_the_root_then_answers_from_the_cache() {
        // RB-DNS-01
        let mut r = resolver();
        let mut net = Net::new();
        net.ask(
            &mut r,
            secs(0.0),
            Client::Udp(CLIENT),
            "www.campus.example",
            11,
        );
        assert_eq!(net.servers_asked(), vec![ROOT, TLD, AUTH]);
        let (client, m) = &net.replies[0];
        assert_eq!(*client, Client::Udp(CLIENT));
        assert_eq!(m.metadata.id, 11);
        assert!(m.metadata.recursion_available && !m.metadata.authoritative);
        assert_eq!(addrs(m), vec![Ipv4Addr::new(10, 1, 0, 80)]);
        assert_eq!(m.answers[0].ttl, 60);
        assert_eq!((r.counters.referrals, r.counters.upstream_queries), (2, 3));
        assert_eq!(r.counters.cache_hits, 0);
        // Ten seconds later: from the cache, the TTL counted down.
        net.ask(
            &mut r,
            secs(10.0),
            Client::Udp(CLIENT),
            "www.campus.example",
            12,
        );
        assert!(net.asked.is_empty());
        assert_eq!(net.replies[0].1.answers[0].ttl, 50);
        assert_eq!(r.counters.cache_hits, 1);
        assert_eq!(r.counters.queries, 2);
    }

    #[test]
    fn an_expired_answer_is_asked_again_of_the_zones_own_server_at_its_ttl() {
        let mut r = resolver();
        let mut net = Net::new();
        net.ask(
            &mut r,
            secs(1.0),
            Client::Udp(CLIENT),
            "www.campus.example",
            1,
        );
        // TTL 60 from t = 1 s: still cached just before 61 s ...
        net.ask(
            &mut r,
            SimTime::from_nanos(60_999_999_999),
            Client::Udp(CLIENT),
            "www.campus.example",
            2,
        );
        assert!(net.asked.is_empty());
        assert_eq!(net.replies[0].1.answers[0].ttl, 0);
        // ... gone at 61 s: one query, straight to the zone's server (its NS are cached).
        net.ask(
            &mut r,
            secs(61.0),
            Client::Udp(CLIENT),
            "www.campus.example",
            3,
        );
        assert_eq!(net.servers_asked(), vec![AUTH]);
        assert_eq!(net.replies[0].1.answers[0].ttl, 60);
    }

    #[test]
    fn cnames_are_followed_and_cached() {
        let mut r = resolver();
        let mut net = Net::new();
        net.ask(
            &mut r,
            secs(0.0),
            Client::Udp(CLIENT),
            "web.campus.example",
            1,
        );
        let m = &net.replies[0].1;
        assert_eq!(m.answers[0].record_type(), RecordType::CNAME);
        assert_eq!(addrs(m), vec![Ipv4Addr::new(10, 1, 0, 80)]);
        net.ask(
            &mut r,
            secs(1.0),
            Client::Udp(CLIENT),
            "web.campus.example",
            2,
        );
        assert!(net.asked.is_empty());
        assert_eq!(net.replies[0].1.answers.len(), 2);
    }

    #[test]
    fn nxdomain_is_cached_for_the_soa_negative_ttl() {
        // RB-DNS-01, RFC 2308
        let mut r = resolver();
        let mut net = Net::new();
        net.ask(
            &mut r,
            secs(0.0),
            Client::Udp(CLIENT),
            "nope.campus.example",
            1,
        );
        let m = &net.replies[0].1;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(m.authorities[0].ttl, 30);
        assert_eq!(r.counters.nxdomain, 1);
        net.ask(
            &mut r,
            secs(29.9),
            Client::Udp(CLIENT),
            "nope.campus.example",
            2,
        );
        assert!(net.asked.is_empty());
        assert_eq!(
            net.replies[0].1.metadata.response_code,
            ResponseCode::NXDomain
        );
        assert_eq!(r.counters.negative_hits, 1);
        net.ask(
            &mut r,
            secs(30.0),
            Client::Udp(CLIENT),
            "nope.campus.example",
            3,
        );
        assert_eq!(net.servers_asked(), vec![AUTH]);
        assert_eq!(r.counters.nxdomain, 3);
    }

    #[test]
    fn truncated_upstream_answers_are_asked_again_over_tcp() {
        // RB-DNS-02, without EDNS: 512 bytes on every hop.
        let mut r = resolver_with_edns(None);
        let mut net = Net::new();
        net.ask(
            &mut r,
            secs(0.0),
            Client::Udp(CLIENT),
            "big.campus.example",
            1,
        );
        assert_eq!(
            net.asked,
            vec![
                (ROOT, Transport::Udp),
                (TLD, Transport::Udp),
                (AUTH, Transport::Udp),
                (AUTH, Transport::Tcp)
            ]
        );
        assert_eq!((r.counters.truncated_in, r.counters.tcp_retries), (1, 1));
        // The UDP client gets TC; over TCP it gets all 40 from the cache.
        assert!(net.replies[0].1.metadata.truncation);
        assert_eq!(r.counters.truncated_out, 1);
        net.ask(&mut r, secs(0.1), Client::Tcp(5), "big.campus.example", 2);
        assert!(net.asked.is_empty());
        assert_eq!(net.replies[0].0, Client::Tcp(5));
        assert_eq!(addrs(&net.replies[0].1).len(), 40);
        assert_eq!(r.counters.tcp_queries, 1);
    }

    /// 80 addresses: 1,328 bytes with an OPT record, more than 1232.
    fn huge() -> Vec<ZoneRecord> {
        (0..80)
            .map(|i| rec("huge", 60, ZoneData::A(Ipv4Addr::new(10, 4, 0, i))))
            .collect()
    }

    #[test]
    fn with_edns_upstream_answers_up_to_1232_bytes_come_over_udp_and_clients_get_what_they_advertise(
    ) {
        // RFC 6891 6.2.3-6.2.5: the resolver advertises 1232 bytes; the campus server answers
        // the 40 addresses of "big" (669 bytes) in one UDP message.
        let mut r = resolver();
        let mut net = Net::new();
        net.ask(
            &mut r,
            secs(0.0),
            Client::Udp(CLIENT),
            "big.campus.example",
            1,
        );
        assert_eq!(
            net.asked,
            vec![
                (ROOT, Transport::Udp),
                (TLD, Transport::Udp),
                (AUTH, Transport::Udp)
            ]
        );
        assert_eq!(net.asked_edns, vec![Some(1232); 3]);
        assert_eq!((r.counters.truncated_in, r.counters.tcp_retries), (0, 0));
        // A client without EDNS gets 512 bytes at most: TC, and no OPT record.
        let m = &net.replies[0].1;
        assert!(m.metadata.truncation && m.answers.is_empty() && m.edns.is_none());
        // A client advertising 1200 bytes (glibc's edns0) gets all 40 over UDP, with the
        // resolver's OPT record; from the cache.
        net.ask_edns(
            &mut r,
            secs(1.0),
            Client::Udp(CLIENT),
            "big.campus.example",
            2,
            Some(edns::GLIBC_PAYLOAD),
        );
        assert!(net.asked.is_empty());
        let m = &net.replies[0].1;
        assert!(!m.metadata.truncation);
        assert_eq!(addrs(m).len(), 40);
        assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(1232));
        assert_eq!((r.counters.edns_queries, r.counters.truncated_out), (1, 1));
        // Beyond 1232 bytes the campus server truncates even with EDNS: TCP, with the OPT.
        net.servers = hierarchy_with(huge());
        net.ask_edns(
            &mut r,
            secs(2.0),
            Client::Udp(CLIENT),
            "huge.campus.example",
            3,
            Some(edns::GLIBC_PAYLOAD),
        );
        assert_eq!(
            net.asked,
            vec![(AUTH, Transport::Udp), (AUTH, Transport::Tcp)]
        );
        assert_eq!(net.asked_edns, vec![Some(1232); 2]);
        // ... and 1,328 bytes are more than the client's 1200: TC for it too.
        assert!(net.replies[0].1.metadata.truncation);
        assert_eq!((r.counters.truncated_in, r.counters.truncated_out), (1, 2));
    }

    #[test]
    fn a_server_without_edns_is_asked_again_without_opt_and_remembered_for_900_s() {
        // RFC 6891 6.2.2 and 7: FORMERR without an OPT record from the campus servers.
        let mut r = resolver();
        let mut net = Net::new();
        net.no_edns = vec![AUTH, AUTH2];
        net.ask(
            &mut r,
            secs(0.0),
            Client::Udp(CLIENT),
            "www.campus.example",
            1,
        );
        assert_eq!(net.servers_asked(), vec![ROOT, TLD, AUTH, AUTH]);
        assert_eq!(
            net.asked_edns,
            vec![Some(1232), Some(1232), Some(1232), None]
        );
        assert_eq!(addrs(&net.replies[0].1), vec![Ipv4Addr::new(10, 1, 0, 80)]);
        assert_eq!(r.counters.edns_fallbacks, 1);
        // www (TTL 60 s) expires; 61 s later the campus server is asked without OPT at once.
        net.ask(
            &mut r,
            secs(61.0),
            Client::Udp(CLIENT),
            "www.campus.example",
            2,
        );
        assert_eq!(net.asked_edns, vec![None]);
        assert_eq!(r.counters.edns_fallbacks, 1);
        // 900 s after it was found out, the resolver tries EDNS again (and falls back again).
        net.ask(
            &mut r,
            SimTime::from_nanos(899_999_999_999),
            Client::Udp(CLIENT),
            "www.campus.example",
            3,
        );
        assert_eq!(net.asked_edns, vec![None]);
        net.ask(
            &mut r,
            secs(960.0),
            Client::Udp(CLIENT),
            "www.campus.example",
            4,
        );
        assert_eq!(net.asked_edns, vec![Some(1232), None]);
        assert_eq!(r.counters.edns_fallbacks, 2);
        // 4 + 1 + 1 + 2 queries.
        assert_eq!(r.counters.upstream_queries, 8);
    }

    #[test]
    fn formerr_with_an_opt_record_is_a_failure_not_a_missing_edns() {
        let mut r = resolver();
        let mut out = Vec::new();
        let q = encode(&query(
            1,
            &fqdn("www.campus.example").unwrap(),
            RecordType::A,
            true,
        ));
        r.on_query(secs(0.0), Client::Udp(CLIENT), &q.unwrap(), &mut out)
            .unwrap();
        let sent = out
            .iter()
            .find_map(|o| match o {
                ResolverOut::Send { bytes, .. } => Some(decode(bytes).unwrap()),
                _ => None,
            })
            .unwrap();
        let mut formerr = response_to(&sent, ResponseCode::FormErr);
        formerr.edns = Some(edns::opt(1232));
        out.clear();
        let from = SocketAddrV4::new(ROOT, 53);
        r.on_udp_response(secs(0.1), from, &encode(&formerr).unwrap(), &mut out)
            .unwrap();
        // The next (and only) root server, in the next round: with EDNS still.
        let again = out
            .iter()
            .find_map(|o| match o {
                ResolverOut::Send { bytes, .. } => Some(decode(bytes).unwrap()),
                _ => None,
            })
            .unwrap();
        assert!(again.edns.is_some());
        assert_eq!(r.counters.edns_fallbacks, 0);
    }

    #[test]
    fn a_resolver_without_edns_answers_opt_queries_formerr_without_opt() {
        let mut r = resolver_with_edns(None);
        let mut net = Net::new();
        net.ask_edns(
            &mut r,
            secs(0.0),
            Client::Udp(CLIENT),
            "www.campus.example",
            7,
            Some(1200),
        );
        assert!(net.asked.is_empty());
        let m = &net.replies[0].1;
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(m.metadata.id, 7);
        assert!(m.edns.is_none());
        assert_eq!((r.counters.edns_queries, r.counters.edns_rejected), (1, 1));
        // Its upstream queries carry no OPT record.
        net.ask(
            &mut r,
            secs(0.0),
            Client::Udp(CLIENT),
            "www.campus.example",
            8,
        );
        assert_eq!(net.asked_edns, vec![None; 3]);
    }

    #[test]
    fn silent_servers_time_out_then_the_next_is_asked_then_servfail() {
        let mut r = resolver();
        let mut net = Net::new();
        net.ask(
            &mut r,
            secs(0.0),
            Client::Udp(CLIENT),
            "www.campus.example",
            1,
        );
        // Both campus servers go silent; the answer expires at 60 s.
        net.silent = vec![AUTH, AUTH2];
        net.ask(
            &mut r,
            secs(60.0),
            Client::Udp(CLIENT),
            "www.campus.example",
            2,
        );
        assert_eq!(net.servers_asked(), vec![AUTH]);
        assert_eq!(r.poll_at(), Some(secs(62.0)));
        let mut t = secs(60.0);
        net.asked.clear();
        while let Some(due) = r.poll_at() {
            t = due;
            let mut out = Vec::new();
            r.on_timer(due, &mut out);
            net.run(&mut r, due, out);
        }
        // 2 s each: AUTH2 at 62, AUTH at 64, AUTH2 at 66, SERVFAIL at 68.
        assert_eq!(net.servers_asked(), vec![AUTH2, AUTH, AUTH2]);
        assert_eq!(t, secs(68.0));
        assert_eq!(
            net.replies[0].1.metadata.response_code,
            ResponseCode::ServFail
        );
        assert_eq!((r.counters.upstream_timeouts, r.counters.servfail), (4, 1));
    }

    #[test]
    fn identical_questions_share_one_resolution() {
        let mut r = resolver();
        let mut out = Vec::new();
        let q = |id| {
            encode(&query(
                id,
                &fqdn("www.campus.example").unwrap(),
                RecordType::A,
                true,
            ))
            .unwrap()
        };
        r.on_query(secs(0.0), Client::Udp(CLIENT), &q(1), &mut out)
            .unwrap();
        let other = SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 50000);
        r.on_query(secs(0.0), Client::Udp(other), &q(2), &mut out)
            .unwrap();
        let mut net = Net::new();
        net.run(&mut r, secs(0.0), out);
        assert_eq!(net.servers_asked(), vec![ROOT, TLD, AUTH]);
        let ids: Vec<(Client, u16)> = net
            .replies
            .iter()
            .map(|(c, m)| (*c, m.metadata.id))
            .collect();
        assert_eq!(ids, vec![(Client::Udp(CLIENT), 1), (Client::Udp(other), 2)]);
    }

    #[test]
    fn malformed_queries_and_answers_are_counted_and_dropped() {
        let mut r = resolver();
        let mut out = Vec::new();
        assert!(r
            .on_query(secs(0.0), Client::Udp(CLIENT), &[0, 1, 2], &mut out)
            .is_err());
        assert!(r
            .on_udp_response(secs(0.0), SocketAddrV4::new(ROOT, 53), &[9; 20], &mut out)
            .is_err());
        assert_eq!(r.counters.malformed, 2);
        assert_eq!(r.counters.queries, 0);
        assert!(out.is_empty());
    }

    proptest::proptest! {
        /// A resolver never answers from an expired record: a query answered without going
        /// upstream comes within the TTL of the last upstream answer for the name (the
        /// negative TTL for a name that does not exist), with the TTL counted down; a query
        /// after it goes upstream.
        #[test]
        fn never_answers_from_an_expired_record(
            ttls in proptest::collection::vec(1u32..40, 3),
            queries in proptest::collection::vec((0usize..4, 0u64..25_000), 1..40),
        ) {
            let extra = ttls
                .iter()
                .enumerate()
                .map(|(i, t)| rec(&format!("n{i}"), *t, ZoneData::A(Ipv4Addr::new(10, 3, 0, i as u8))))
                .collect();
            let mut net = Net::new();
            net.servers = hierarchy_with(extra);
            let mut r = resolver();
            let mut now = SimTime::ZERO;
            // name index -> when its answer was last fetched upstream.
            let mut fetched: Vec<Option<SimTime>> = vec![None; 4];
            for (k, (name, advance_ms)) in queries.into_iter().enumerate() {
                now += SimDuration::from_millis(advance_ms);
                // Names 0..3 exist (TTLs `ttls`); name 3 does not (negative TTL 30 s).
                let (owner, ttl) = match name {
                    3 => ("nx.campus.example".to_string(), 30),
                    i => (format!("n{i}.campus.example"), ttls[i]),
                };
                net.ask(&mut r, now, Client::Udp(CLIENT), &owner, k as u16);
                let reply = &net.replies[0].1;
                let went_up = net.asked.iter().any(|(s, _)| *s == AUTH);
                let fresh = fetched[name]
                    .map(|at| now < at + SimDuration::from_secs(ttl as u64));
                if went_up {
                    proptest::prop_assert!(fresh != Some(true), "went upstream for a fresh entry");
                    fetched[name] = Some(now);
                } else {
                    proptest::prop_assert_eq!(fresh, Some(true), "answered {} from an expired entry at {:?}", owner, now);
                }
                let at = fetched[name].unwrap_or(now);
                // Whole seconds left, rounded down: never more than is left.
                let left = (ttl as u64 * 1_000_000_000 - (now - at).as_nanos()) / 1_000_000_000;
                let shown = if name == 3 {
                    proptest::prop_assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
                    reply.authorities[0].ttl
                } else {
                    reply.answers[0].ttl
                };
                proptest::prop_assert_eq!(shown as u64, left);
            }
        }
    }
}

//! The stub resolver of a host (glibc's `res_send` behaviour): one A query per lookup,
//! sent to the host's DNS servers in order (`options rotate` starts each lookup at the next
//! server), `attempts` rounds over the list, each attempt waiting `timeout` seconds for the
//! first server and `(timeout << i) / n` for server `i` of `n` (glibc's `send_dg`), then
//! failure (RB-DNS-03). A response with TC set is asked again over TCP of the same server
//! (RB-DNS-02). SERVFAIL, NOTIMP and REFUSED move on to the next server; NXDOMAIN,
//! FORMERR and answers are final. With `options edns0` queries carry an OPT record
//! advertising 1200 bytes (RFC 6891), and a FORMERR (a server without EDNS) moves on to the
//! next server instead: glibc's `send_dg` does not fall back to plain queries. Responses
//! from the wrong address, with the wrong id or question are ignored as glibc does
//! (`res_queriesmatch`; a FORMERR without a question is one of them); undecodable ones are
//! counted and dropped.
//!
//! A state machine without sockets or timers: inputs are calls with the current time, and
//! outputs are [`StubOut`]s (send this message, this lookup is over). The host
//! (`dns::host`) connects it to UDP, TCP and a timer.

use super::edns;
use super::wire::{self, fqdn, MalformedDns};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, RecordType};
use sim_core::time::{SimDuration, SimTime};
use std::net::{Ipv4Addr, SocketAddrV4};

/// resolv.conf `options`: glibc's defaults are `timeout:5 attempts:2`, no `rotate`, no
/// `edns0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StubConfig {
    /// Seconds (glibc RES_TIMEOUT, `options timeout:n`).
    pub timeout_s: u32,
    /// Rounds over the server list (RES_DFLRETRY, `options attempts:n`).
    pub attempts: u32,
    pub rotate: bool,
    /// `options edns0` (RES_USE_EDNS0): queries carry an OPT record advertising 1200 bytes.
    pub edns0: bool,
}

impl Default for StubConfig {
    fn default() -> Self {
        StubConfig {
            timeout_s: 5,
            attempts: 2,
            rotate: false,
            edns0: false,
        }
    }
}

/// Why a lookup failed (the getaddrinfo error it maps to in [`LookupError::eai`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// NXDOMAIN.
    #[error("Name or service not known")]
    NxDomain,
    /// The name exists without an address.
    #[error("No address associated with hostname")]
    NoData,
    /// No server answered in time.
    #[error("Temporary failure in name resolution")]
    Timeout,
    /// Every server that answered failed (SERVFAIL, REFUSED, NOTIMP).
    #[error("Temporary failure in name resolution (server failure)")]
    ServFail,
    /// A server answered a plain query (no OPT record) FORMERR: glibc's `res_query`
    /// takes it as the answer, NO_RECOVERY.
    #[error("Non-recoverable failure in name resolution")]
    FormErr,
    /// The host has no DNS servers.
    #[error("No DNS servers configured")]
    NoServers,
    /// Not a valid domain name.
    #[error("Invalid domain name")]
    BadName,
}

impl LookupError {
    /// The getaddrinfo error code.
    pub fn eai(self) -> &'static str {
        match self {
            LookupError::NxDomain | LookupError::BadName => "EAI_NONAME",
            LookupError::NoData => "EAI_NODATA",
            LookupError::Timeout | LookupError::ServFail | LookupError::NoServers => "EAI_AGAIN",
            LookupError::FormErr => "EAI_FAIL",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            LookupError::NxDomain => "nxdomain",
            LookupError::NoData => "nodata",
            LookupError::Timeout => "timeout",
            LookupError::ServFail => "servfail",
            LookupError::FormErr => "formerr",
            LookupError::NoServers => "no_servers",
            LookupError::BadName => "bad_name",
        }
    }
}

/// The addresses of a name, or why there are none.
pub type LookupResult = Result<Vec<Ipv4Addr>, LookupError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// What the stub asks its host to do.
#[derive(Clone, Debug, PartialEq)]
pub enum StubOut {
    /// Send the DNS message `bytes` to `server` port 53 for lookup `key` (over TCP: open a
    /// connection, send it length-prefixed, and report the answer with
    /// [`StubResolver::on_tcp`]).
    Send {
        key: u64,
        server: Ipv4Addr,
        transport: Transport,
        bytes: Vec<u8>,
        attempt: u32,
        /// The UDP payload size its OPT record advertises (`None`: no OPT record).
        edns: Option<u16>,
    },
    /// A server did not answer in time.
    TimedOut {
        key: u64,
        server: Ipv4Addr,
        transport: Transport,
    },
    /// The server's UDP answer was truncated: the next Send is over TCP.
    Truncated { key: u64, server: Ipv4Addr },
    /// The lookup is over; its sockets can go.
    Done {
        key: u64,
        result: LookupResult,
        latency: SimDuration,
    },
}

/// The stub's counters (also in the host's `dns` counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StubCounters {
    pub lookups: u64,
    pub answers: u64,
    pub nxdomain: u64,
    pub nodata: u64,
    pub failures: u64,
    pub udp_queries: u64,
    pub tcp_queries: u64,
    pub timeouts: u64,
    pub truncated: u64,
    pub malformed: u64,
    pub latency_ns_sum: u64,
    pub latency_ns_max: u64,
}

#[derive(Clone, Debug)]
struct Lookup {
    key: u64,
    name: Name,
    id: u16,
    servers: Vec<Ipv4Addr>,
    /// First server of this lookup (rotate).
    offset: usize,
    /// Round over the servers (glibc `try`).
    round: u32,
    /// Position in this round (glibc `ns_shift`).
    shift: usize,
    transport: Transport,
    deadline: SimTime,
    started: SimTime,
    /// A server answered with a failure code.
    server_failed: bool,
}

impl Lookup {
    fn server_index(&self) -> usize {
        (self.shift + self.offset) % self.servers.len()
    }
    fn server(&self) -> Ipv4Addr {
        self.servers[self.server_index()]
    }
}

/// See the module documentation.
#[derive(Clone, Debug, Default)]
pub struct StubResolver {
    cfg: StubConfig,
    lookups: Vec<Lookup>,
    next_offset: usize,
    pub counters: StubCounters,
}

impl StubResolver {
    pub fn new(cfg: StubConfig) -> Self {
        StubResolver {
            cfg,
            ..StubResolver::default()
        }
    }

    /// How long glibc waits for server `ns` of `n` (`send_dg`: `retrans << ns`, divided by
    /// the number of servers for all but the first, at least one second).
    pub fn attempt_timeout(&self, ns: usize, n: usize) -> SimDuration {
        let mut s = (self.cfg.timeout_s as u64) << ns.min(32);
        if ns > 0 {
            s /= n.max(1) as u64;
        }
        SimDuration::from_secs(s.max(1))
    }

    /// When the next timeout is due.
    pub fn poll_at(&self) -> Option<SimTime> {
        self.lookups.iter().map(|l| l.deadline).min()
    }

    pub fn pending(&self) -> usize {
        self.lookups.len()
    }

    /// Starts looking up `name` (its A records) through `servers`, with query id `id`.
    pub fn start(
        &mut self,
        now: SimTime,
        key: u64,
        name: &str,
        servers: &[Ipv4Addr],
        id: u16,
        out: &mut Vec<StubOut>,
    ) {
        self.counters.lookups += 1;
        let Ok(qname) = fqdn(name) else {
            self.finish_with(now, now, key, Err(LookupError::BadName), out);
            return;
        };
        if servers.is_empty() {
            self.finish_with(now, now, key, Err(LookupError::NoServers), out);
            return;
        }
        let offset = if self.cfg.rotate {
            let o = self.next_offset % servers.len();
            self.next_offset = self.next_offset.wrapping_add(1);
            o
        } else {
            0
        };
        let l = Lookup {
            key,
            name: qname,
            id,
            servers: servers.to_vec(),
            offset,
            round: 0,
            shift: 0,
            transport: Transport::Udp,
            deadline: now,
            started: now,
            server_failed: false,
        };
        self.lookups.push(l);
        let i = self.lookups.len() - 1;
        self.send(now, i, out);
    }

    fn send(&mut self, now: SimTime, i: usize, out: &mut Vec<StubOut>) {
        let l = &self.lookups[i];
        let n = l.servers.len();
        let wait = self.attempt_timeout(l.server_index(), n);
        let mut q = wire::query(l.id, &l.name, RecordType::A, true);
        if self.cfg.edns0 {
            q.edns = Some(edns::opt(edns::GLIBC_PAYLOAD));
        }
        let advertised = q.edns.as_ref().map(|e| e.max_payload());
        let Some(bytes) = wire::encode(&q) else {
            let (key, started) = (l.key, l.started);
            self.lookups.remove(i);
            self.finish_with(now, started, key, Err(LookupError::BadName), out);
            return;
        };
        let l = &mut self.lookups[i];
        l.deadline = now + wait;
        match l.transport {
            Transport::Udp => self.counters.udp_queries += 1,
            Transport::Tcp => self.counters.tcp_queries += 1,
        }
        out.push(StubOut::Send {
            key: l.key,
            server: l.server(),
            transport: l.transport,
            bytes,
            attempt: l.round + 1,
            edns: advertised,
        });
    }

    /// Moves lookup `i` on to the next server, the next round, or failure.
    fn next_server(&mut self, now: SimTime, i: usize, out: &mut Vec<StubOut>) {
        let attempts = self.cfg.attempts.max(1);
        let l = &mut self.lookups[i];
        l.transport = Transport::Udp;
        l.shift += 1;
        if l.shift >= l.servers.len() {
            l.shift = 0;
            l.round += 1;
        }
        if l.round >= attempts {
            let l = self.lookups.remove(i);
            let err = if l.server_failed {
                LookupError::ServFail
            } else {
                LookupError::Timeout
            };
            self.finish_with(now, l.started, l.key, Err(err), out);
            return;
        }
        self.send(now, i, out);
    }

    fn finish_with(
        &mut self,
        now: SimTime,
        started: SimTime,
        key: u64,
        result: LookupResult,
        out: &mut Vec<StubOut>,
    ) {
        let latency = now.saturating_since(started);
        let c = &mut self.counters;
        match &result {
            Ok(_) => c.answers += 1,
            Err(LookupError::NxDomain) => c.nxdomain += 1,
            Err(LookupError::NoData) => c.nodata += 1,
            Err(_) => c.failures += 1,
        }
        c.latency_ns_sum += latency.as_nanos();
        c.latency_ns_max = c.latency_ns_max.max(latency.as_nanos());
        out.push(StubOut::Done {
            key,
            result,
            latency,
        });
    }

    /// Timeouts due at `now`.
    pub fn on_timer(&mut self, now: SimTime, out: &mut Vec<StubOut>) {
        while let Some(i) = self.lookups.iter().position(|l| l.deadline <= now) {
            self.counters.timeouts += 1;
            let l = &self.lookups[i];
            out.push(StubOut::TimedOut {
                key: l.key,
                server: l.server(),
                transport: l.transport,
            });
            self.next_server(now, i, out);
        }
    }

    /// A UDP datagram for lookup `key` arrived from `from`.
    pub fn on_udp(
        &mut self,
        now: SimTime,
        key: u64,
        from: SocketAddrV4,
        bytes: &[u8],
        out: &mut Vec<StubOut>,
    ) -> Result<(), MalformedDns> {
        let Some(i) = self.lookups.iter().position(|l| l.key == key) else {
            return Ok(());
        };
        let l = &self.lookups[i];
        if l.transport != Transport::Udp
            || *from.ip() != l.server()
            || from.port() != wire::DNS_PORT
        {
            return Ok(());
        }
        let m = self.decode(bytes)?;
        self.response(now, i, m, out);
        Ok(())
    }

    /// A whole DNS message arrived over the TCP connection of lookup `key`.
    pub fn on_tcp(
        &mut self,
        now: SimTime,
        key: u64,
        bytes: &[u8],
        out: &mut Vec<StubOut>,
    ) -> Result<(), MalformedDns> {
        let Some(i) = self
            .lookups
            .iter()
            .position(|l| l.key == key && l.transport == Transport::Tcp)
        else {
            return Ok(());
        };
        let m = self.decode(bytes)?;
        self.response(now, i, m, out);
        Ok(())
    }

    /// The TCP connection of lookup `key` failed (refused, reset, timed out).
    pub fn on_tcp_error(&mut self, now: SimTime, key: u64, out: &mut Vec<StubOut>) {
        if let Some(i) = self
            .lookups
            .iter()
            .position(|l| l.key == key && l.transport == Transport::Tcp)
        {
            self.next_server(now, i, out);
        }
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<Message, MalformedDns> {
        wire::decode(bytes).inspect_err(|_| self.counters.malformed += 1)
    }

    fn response(&mut self, now: SimTime, i: usize, m: Message, out: &mut Vec<StubOut>) {
        let l = &self.lookups[i];
        let (qn, qt) = wire::question(&m);
        if m.metadata.id != l.id || *qn != l.name || qt != RecordType::A {
            return; // not ours: keep waiting, as glibc does
        }
        if m.metadata.truncation && l.transport == Transport::Udp {
            self.counters.truncated += 1;
            let (key, server) = (l.key, l.server());
            out.push(StubOut::Truncated { key, server });
            self.lookups[i].transport = Transport::Tcp;
            self.send(now, i, out);
            return;
        }
        let result = match m.metadata.response_code {
            ResponseCode::NoError => {
                let addrs = addresses(&m, &l.name);
                if addrs.is_empty() {
                    Err(LookupError::NoData)
                } else {
                    Ok(addrs)
                }
            }
            ResponseCode::NXDomain => Err(LookupError::NxDomain),
            // Only a server without EDNS answers FORMERR to an OPT query (send_dg's
            // RES_F_EDNS0ERR, below); to a plain query it is final.
            ResponseCode::FormErr if !self.cfg.edns0 => Err(LookupError::FormErr),
            _ => {
                self.lookups[i].server_failed = true;
                self.next_server(now, i, out);
                return;
            }
        };
        let l = self.lookups.remove(i);
        self.finish_with(now, l.started, l.key, result, out);
    }
}

/// The A addresses of `name` in an answer, following its CNAME chain.
pub fn addresses(m: &Message, name: &Name) -> Vec<Ipv4Addr> {
    let mut owner = name.clone();
    for _ in 0..16 {
        let cname = m.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(CNAME(t)) if r.name == owner => Some(t.clone()),
            _ => None,
        });
        match cname {
            Some(t) => owner = t,
            None => break,
        }
    }
    m.answers
        .iter()
        .filter(|r| r.name == owner)
        .filter_map(|r| match &r.data {
            RData::A(A(a)) => Some(*a),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::{encode, query, response_to};
    use hickory_proto::rr::Record;

    const S1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 53);
    const S2: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 53);
    const S3: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 53);

    fn secs(s: u64) -> SimTime {
        SimTime::from_secs(s)
    }

    fn sends(out: &[StubOut]) -> Vec<(Ipv4Addr, Transport)> {
        out.iter()
            .filter_map(|o| match o {
                StubOut::Send {
                    server, transport, ..
                } => Some((*server, *transport)),
                _ => None,
            })
            .collect()
    }

    fn done(out: &[StubOut]) -> Option<(LookupResult, SimDuration)> {
        out.iter().find_map(|o| match o {
            StubOut::Done {
                result, latency, ..
            } => Some((result.clone(), *latency)),
            _ => None,
        })
    }

    fn answer(id: u16, name: &str, addr: Option<Ipv4Addr>, rcode: ResponseCode) -> Vec<u8> {
        let n = fqdn(name).unwrap();
        let mut r = response_to(&query(id, &n, RecordType::A, true), rcode);
        if let Some(a) = addr {
            r.add_answer(Record::from_rdata(n, 60, RData::A(A(a))));
        }
        encode(&r).unwrap()
    }

    #[test]
    fn no_servers_or_a_bad_name_fail_at_once() {
        let mut s = StubResolver::new(StubConfig::default());
        let mut out = Vec::new();
        s.start(secs(1), 1, "www.example", &[], 5, &mut out);
        assert_eq!(done(&out).unwrap().0, Err(LookupError::NoServers));
        out.clear();
        s.start(secs(1), 2, "a..b", &[S1], 5, &mut out);
        assert_eq!(done(&out).unwrap().0, Err(LookupError::BadName));
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn one_server_two_attempts_of_five_seconds_then_failure() {
        // RB-DNS-03
        let mut s = StubResolver::new(StubConfig::default());
        let mut out = Vec::new();
        s.start(secs(1), 1, "www.example", &[S1], 77, &mut out);
        assert_eq!(sends(&out), vec![(S1, Transport::Udp)]);
        assert_eq!(s.poll_at(), Some(secs(6)));
        out.clear();
        s.on_timer(SimTime::from_nanos(5_999_999_999), &mut out);
        assert!(out.is_empty(), "nothing before 5 s");
        s.on_timer(secs(6), &mut out);
        assert_eq!(sends(&out), vec![(S1, Transport::Udp)]);
        assert_eq!(s.poll_at(), Some(secs(11)));
        out.clear();
        s.on_timer(secs(11), &mut out);
        let (r, latency) = done(&out).unwrap();
        assert_eq!(r, Err(LookupError::Timeout));
        assert_eq!(latency, SimDuration::from_secs(10));
        assert_eq!(s.counters.timeouts, 2);
        assert_eq!(s.counters.udp_queries, 2);
        assert_eq!(s.counters.failures, 1);
        assert_eq!(s.pending(), 0);
        assert_eq!(s.poll_at(), None);
    }

    #[test]
    fn servers_are_tried_in_order_with_glibc_timeouts_each_round() {
        let mut s = StubResolver::new(StubConfig::default());
        // glibc: server 0 waits 5 s, server i>0 (5 << i) / n.
        assert_eq!(s.attempt_timeout(0, 3), SimDuration::from_secs(5));
        assert_eq!(s.attempt_timeout(1, 3), SimDuration::from_secs(3));
        assert_eq!(s.attempt_timeout(2, 3), SimDuration::from_secs(6));
        assert_eq!(s.attempt_timeout(1, 2), SimDuration::from_secs(5));
        let mut out = Vec::new();
        let mut at = SimTime::ZERO;
        s.start(at, 1, "www.example", &[S1, S2, S3], 1, &mut out);
        let mut order = sends(&out);
        while let Some(t) = s.poll_at() {
            at = t;
            out.clear();
            s.on_timer(t, &mut out);
            order.extend(sends(&out));
        }
        let servers: Vec<Ipv4Addr> = order.iter().map(|(s, _)| *s).collect();
        assert_eq!(servers, vec![S1, S2, S3, S1, S2, S3]);
        assert_eq!(at, secs(2 * (5 + 3 + 6)), "fails after two rounds");
        assert_eq!(done(&out).unwrap().0, Err(LookupError::Timeout));
    }

    #[test]
    fn rotate_starts_each_lookup_at_the_next_server() {
        let mut s = StubResolver::new(StubConfig {
            rotate: true,
            ..StubConfig::default()
        });
        let mut out = Vec::new();
        s.start(SimTime::ZERO, 1, "a.example", &[S1, S2], 1, &mut out);
        s.start(SimTime::ZERO, 2, "b.example", &[S1, S2], 2, &mut out);
        assert_eq!(
            sends(&out),
            vec![(S1, Transport::Udp), (S2, Transport::Udp)]
        );
    }

    #[test]
    fn answers_nxdomain_and_failures_from_the_right_server() {
        let mut s = StubResolver::new(StubConfig::default());
        let mut out = Vec::new();
        s.start(SimTime::ZERO, 1, "www.example", &[S1, S2], 9, &mut out);
        let from1 = SocketAddrV4::new(S1, 53);
        // Wrong id, wrong server, wrong question: ignored.
        let a = Ipv4Addr::new(10, 9, 9, 9);
        s.on_udp(
            secs(1),
            1,
            from1,
            &answer(8, "www.example", Some(a), ResponseCode::NoError),
            &mut out,
        )
        .unwrap();
        s.on_udp(
            secs(1),
            1,
            SocketAddrV4::new(S2, 53),
            &answer(9, "www.example", Some(a), ResponseCode::NoError),
            &mut out,
        )
        .unwrap();
        s.on_udp(
            secs(1),
            1,
            from1,
            &answer(9, "other.example", Some(a), ResponseCode::NoError),
            &mut out,
        )
        .unwrap();
        assert_eq!(done(&out), None);
        // Garbage: counted and dropped.
        assert!(s.on_udp(secs(1), 1, from1, &[0xff; 5], &mut out).is_err());
        assert_eq!(s.counters.malformed, 1);
        // SERVFAIL moves on to the next server at once.
        out.clear();
        s.on_udp(
            secs(2),
            1,
            from1,
            &answer(9, "www.example", None, ResponseCode::ServFail),
            &mut out,
        )
        .unwrap();
        assert_eq!(sends(&out), vec![(S2, Transport::Udp)]);
        out.clear();
        s.on_udp(
            secs(3),
            1,
            SocketAddrV4::new(S2, 53),
            &answer(9, "www.example", Some(a), ResponseCode::NoError),
            &mut out,
        )
        .unwrap();
        assert_eq!(done(&out), Some((Ok(vec![a]), SimDuration::from_secs(3))));
        // NXDOMAIN is final.
        out.clear();
        s.start(SimTime::ZERO, 2, "nope.example", &[S1, S2], 3, &mut out);
        s.on_udp(
            secs(1),
            2,
            from1,
            &answer(3, "nope.example", None, ResponseCode::NXDomain),
            &mut out,
        )
        .unwrap();
        assert_eq!(done(&out).unwrap().0, Err(LookupError::NxDomain));
        assert_eq!(s.counters.nxdomain, 1);
    }

    #[test]
    fn truncated_answers_are_asked_again_over_tcp_of_the_same_server() {
        // RB-DNS-02
        let mut s = StubResolver::new(StubConfig::default());
        let mut out = Vec::new();
        s.start(SimTime::ZERO, 1, "big.example", &[S1, S2], 4, &mut out);
        let n = fqdn("big.example").unwrap();
        let mut tc = response_to(&query(4, &n, RecordType::A, true), ResponseCode::NoError);
        tc.metadata.truncation = true;
        out.clear();
        s.on_udp(
            secs(1),
            1,
            SocketAddrV4::new(S1, 53),
            &encode(&tc).unwrap(),
            &mut out,
        )
        .unwrap();
        assert!(out.contains(&StubOut::Truncated { key: 1, server: S1 }));
        assert_eq!(sends(&out), vec![(S1, Transport::Tcp)]);
        assert_eq!(s.poll_at(), Some(secs(6)));
        // A UDP answer no longer counts; the TCP one does.
        let a = Ipv4Addr::new(10, 1, 1, 1);
        out.clear();
        s.on_udp(
            secs(2),
            1,
            SocketAddrV4::new(S1, 53),
            &answer(4, "big.example", Some(a), ResponseCode::NoError),
            &mut out,
        )
        .unwrap();
        assert_eq!(done(&out), None);
        s.on_tcp(
            secs(2),
            1,
            &answer(4, "big.example", Some(a), ResponseCode::NoError),
            &mut out,
        )
        .unwrap();
        assert_eq!(done(&out).unwrap().0, Ok(vec![a]));
        assert_eq!((s.counters.truncated, s.counters.tcp_queries), (1, 1));
        // A failed TCP connection moves on to the next server, over UDP.
        out.clear();
        s.start(SimTime::ZERO, 2, "big.example", &[S1, S2], 4, &mut out);
        s.on_udp(
            secs(1),
            2,
            SocketAddrV4::new(S1, 53),
            &encode(&tc).unwrap(),
            &mut out,
        )
        .unwrap();
        out.clear();
        s.on_tcp_error(secs(1), 2, &mut out);
        assert_eq!(sends(&out), vec![(S2, Transport::Udp)]);
    }

    fn sent_queries(out: &[StubOut]) -> Vec<Message> {
        out.iter()
            .filter_map(|o| match o {
                StubOut::Send { bytes, .. } => Some(wire::decode(bytes).unwrap()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn with_edns0_queries_advertise_1200_bytes_over_udp_and_tcp() {
        let mut s = StubResolver::new(StubConfig {
            edns0: true,
            ..StubConfig::default()
        });
        let mut out = Vec::new();
        s.start(SimTime::ZERO, 1, "big.example", &[S1], 4, &mut out);
        let q = &sent_queries(&out)[0];
        assert_eq!(q.edns.as_ref().map(|e| e.max_payload()), Some(1200));
        // TC (the answer was over 1200 bytes): the TCP query carries the OPT record too.
        let n = fqdn("big.example").unwrap();
        let mut tc = response_to(q, ResponseCode::NoError);
        tc.metadata.truncation = true;
        out.clear();
        s.on_udp(
            secs(1),
            1,
            SocketAddrV4::new(S1, 53),
            &encode(&tc).unwrap(),
            &mut out,
        )
        .unwrap();
        let again = &sent_queries(&out)[0];
        assert_eq!(sends(&out), vec![(S1, Transport::Tcp)]);
        assert_eq!(again.edns.as_ref().map(|e| e.max_payload()), Some(1200));
        assert_eq!(wire::question(again), (&n, RecordType::A));
        // Without the option, no OPT record (glibc's default).
        let mut plain = StubResolver::new(StubConfig::default());
        out.clear();
        plain.start(SimTime::ZERO, 1, "big.example", &[S1], 4, &mut out);
        assert!(sent_queries(&out)[0].edns.is_none());
    }

    #[test]
    fn with_edns0_a_formerr_moves_on_to_the_next_server_without_falling_back() {
        // glibc's send_dg: FORMERR to an EDNS query ends that server's try (RES_F_EDNS0ERR);
        // the query is never sent again without the OPT record.
        let mut s = StubResolver::new(StubConfig {
            edns0: true,
            ..StubConfig::default()
        });
        let mut out = Vec::new();
        s.start(SimTime::ZERO, 1, "www.example", &[S1, S2], 6, &mut out);
        let formerr = answer(6, "www.example", None, ResponseCode::FormErr);
        let mut t = 0;
        let mut order = sends(&out);
        while s.pending() > 0 {
            t += 1;
            let server = order.last().unwrap().0;
            out.clear();
            s.on_udp(
                secs(t),
                1,
                SocketAddrV4::new(server, 53),
                &formerr,
                &mut out,
            )
            .unwrap();
            assert!(sent_queries(&out).iter().all(|q| q.edns.is_some()));
            order.extend(sends(&out));
        }
        let servers: Vec<Ipv4Addr> = order.iter().map(|(a, _)| *a).collect();
        assert_eq!(servers, vec![S1, S2, S1, S2]);
        let (result, latency) = done(&out).unwrap();
        assert_eq!(result, Err(LookupError::ServFail));
        assert_eq!(result.unwrap_err().eai(), "EAI_AGAIN");
        assert_eq!(latency, SimDuration::from_secs(4));
    }

    #[test]
    fn a_formerr_to_a_plain_query_ends_the_lookup_and_one_without_question_is_ignored() {
        // glibc: send_dg ignores a reply whose question does not match the query
        // (res_queriesmatch), which a FORMERR without a question section never does; one
        // with the question is the answer, and res_query maps FORMERR to NO_RECOVERY,
        // which getaddrinfo reports as EAI_FAIL.
        let mut s = StubResolver::new(StubConfig::default());
        let mut out = Vec::new();
        s.start(SimTime::ZERO, 1, "www.example", &[S1, S2], 6, &mut out);
        let from1 = SocketAddrV4::new(S1, 53);
        let mut bare =
            Message::error_msg(6, hickory_proto::op::OpCode::Query, ResponseCode::FormErr);
        bare.metadata.recursion_desired = true;
        out.clear();
        assert!(s
            .on_udp(secs(1), 1, from1, &encode(&bare).unwrap(), &mut out)
            .is_err());
        assert!(out.is_empty(), "ignored: {out:?}");
        assert_eq!(s.pending(), 1);
        let formerr = answer(6, "www.example", None, ResponseCode::FormErr);
        s.on_udp(secs(2), 1, from1, &formerr, &mut out).unwrap();
        assert_eq!(sends(&out), vec![], "no other server is asked");
        let (result, latency) = done(&out).unwrap();
        assert_eq!(result, Err(LookupError::FormErr));
        assert_eq!(result.unwrap_err().eai(), "EAI_FAIL");
        assert_eq!(latency, SimDuration::from_secs(2));
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn cname_chains_lead_to_the_addresses() {
        let n = fqdn("web.example").unwrap();
        let t = fqdn("www.example").unwrap();
        let mut r = response_to(&query(1, &n, RecordType::A, true), ResponseCode::NoError);
        r.add_answer(Record::from_rdata(
            n.clone(),
            60,
            RData::CNAME(CNAME(t.clone())),
        ));
        r.add_answer(Record::from_rdata(t, 60, RData::A(A(Ipv4Addr::LOCALHOST))));
        assert_eq!(addresses(&r, &n), vec![Ipv4Addr::LOCALHOST]);
    }
}

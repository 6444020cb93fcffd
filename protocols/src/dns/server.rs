//! DNS servers as apps on UDP and TCP port 53: [`DnsAuthServer`] answers from its zones
//! (RFC 1034 4.3.2, no recursion); [`DnsResolverApp`] runs a recursive [`Resolver`] for
//! its clients. Both answer UDP within 512 bytes, or within the size EDNS negotiated (TC
//! beyond), and TCP in full, and count and drop malformed messages. [`auth_reply`] is the
//! authoritative server's answer without the app around it.

use super::edns::{self, Negotiated};
use super::resolver::{Client, Resolver, ResolverConfig, ResolverOut};
use super::stub::Transport;
use super::tcp_channel::TcpChannel;
use super::wire::{self, DNS_PORT};
use super::zone::{self, AuthOutcome, Zone};
use super::AuthCounters;
use crate::app::{App, Os};
use crate::tcp::{TcpEvent, TcpSocketId};
use crate::udp::SocketId;
use sim_core::packet::Payload;
use sim_core::sched::TimerHandle;
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::TraceValue;
use std::net::SocketAddrV4;

/// listen() backlog of the DNS servers.
const BACKLOG: u32 = 128;

/// Port 53 over UDP and TCP: the listening sockets and the accepted connections.
#[derive(Default)]
struct Port53 {
    udp: Option<SocketId>,
    listener: Option<TcpSocketId>,
    conns: Vec<TcpChannel>,
    next_conn: u64,
    lines: Vec<String>,
}

/// Something a client sent to port 53.
enum Request {
    Udp(SocketAddrV4, Vec<u8>),
    Tcp(u64, Vec<u8>),
}

impl Port53 {
    fn open(&mut self, os: &mut Os<'_, '_>) {
        match os.udp_bind(Some(DNS_PORT)) {
            Ok(s) => self.udp = Some(s),
            Err(e) => self.lines.push(format!("cannot bind UDP port 53: {e}")),
        }
        let s = os.tcp_socket();
        let r = os
            .tcp_bind(s, DNS_PORT)
            .and_then(|_| os.tcp_listen(s, BACKLOG));
        match r {
            Ok(()) => self.listener = Some(s),
            Err(e) => self
                .lines
                .push(format!("cannot listen on TCP port 53: {e}")),
        }
    }

    fn is_ours_udp(&self, sock: SocketId) -> bool {
        self.udp == Some(sock)
    }

    /// Handles a TCP event on the listener or a client connection; returns the requests
    /// that arrived.
    fn on_tcp(&mut self, os: &mut Os<'_, '_>, sock: TcpSocketId, ev: TcpEvent) -> Vec<Request> {
        let mut got = Vec::new();
        if Some(sock) == self.listener {
            while let Ok((c, _)) = os.tcp_accept(sock) {
                self.next_conn += 1;
                self.conns.push(TcpChannel::accepted(c, self.next_conn));
            }
            return got;
        }
        let Some(i) = self.conns.iter().position(|c| c.sock == sock) else {
            return got;
        };
        let close = match ev {
            TcpEvent::Readable => match self.conns[i].read(os) {
                Ok(r) => {
                    let key = self.conns[i].key;
                    got.extend(r.messages.into_iter().map(|m| Request::Tcp(key, m)));
                    r.eof
                }
                Err(_) => true,
            },
            TcpEvent::Writable => self.conns[i].flush(os).is_err(),
            TcpEvent::Error(_) => true,
            _ => false,
        };
        if close {
            self.conns.remove(i).close(os);
        }
        got
    }

    fn reply(&mut self, os: &mut Os<'_, '_>, to: &Request, bytes: &[u8]) {
        match to {
            Request::Udp(from, _) => {
                if let Some(s) = self.udp {
                    let _ = os.udp_send(s, *from, Payload::bytes(bytes), None);
                }
            }
            Request::Tcp(key, _) => self.reply_tcp(os, *key, bytes),
        }
    }

    fn reply_tcp(&mut self, os: &mut Os<'_, '_>, key: u64, bytes: &[u8]) {
        if let Some(i) = self.conns.iter().position(|c| c.key == key) {
            if self.conns[i].send(os, bytes).is_err() {
                self.conns.remove(i).close(os);
            }
        }
    }
}

fn payload_bytes(p: &Payload) -> Vec<u8> {
    let mut b = Vec::new();
    p.write_to(&mut b);
    b
}

/// An authoritative server's settings.
#[derive(Clone, Debug)]
pub struct DnsAuthConfig {
    pub name: String,
    pub zones: Vec<Zone>,
    /// EDNS: the largest UDP response it sends to a requester that advertises more;
    /// `None`: no EDNS (queries with an OPT record get FORMERR).
    pub edns: Option<u16>,
}

/// What an authoritative server made of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthReplyKind {
    /// Answered from the zones.
    Zone(AuthOutcome),
    /// FORMERR: an OPT record and no EDNS here (RFC 6891 7).
    FormErr,
    /// BADVERS: an EDNS version above 0 (RFC 6891 6.1.3).
    BadVers,
}

impl AuthReplyKind {
    pub fn name(self) -> &'static str {
        match self {
            AuthReplyKind::Zone(o) => o.name(),
            AuthReplyKind::FormErr => "formerr",
            AuthReplyKind::BadVers => "badvers",
        }
    }
}

/// An authoritative server's reply, encoded.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthReply {
    pub bytes: Vec<u8>,
    pub kind: AuthReplyKind,
    /// Truncated to fit UDP (TC set).
    pub truncated: bool,
}

/// The reply of an authoritative server serving `zones`, with EDNS support `edns`, to the
/// query `q` that came over `transport`; `None` if hickory cannot encode it.
pub fn auth_reply(
    zones: &[Zone],
    edns: Option<u16>,
    q: &hickory_proto::op::Message,
    transport: Transport,
) -> Option<AuthReply> {
    let negotiated = edns::negotiate(edns, q);
    let (resp, kind, udp_limit) = match negotiated {
        Negotiated::Answer { udp_limit, opt } => {
            let (mut resp, outcome) = zone::answer(zones, q);
            resp.edns = opt;
            (resp, AuthReplyKind::Zone(outcome), udp_limit)
        }
        ref rejected => {
            let kind = match rejected {
                Negotiated::BadVers(_) => AuthReplyKind::BadVers,
                _ => AuthReplyKind::FormErr,
            };
            (edns::rejection(q, rejected)?, kind, wire::UDP_LIMIT)
        }
    };
    let (bytes, truncated) = match transport {
        Transport::Udp => wire::encode_udp(&resp, udp_limit)?,
        Transport::Tcp => (wire::encode(&resp)?, false),
    };
    Some(AuthReply {
        bytes,
        kind,
        truncated,
    })
}

/// An authoritative-only name server (like NSD): see the module documentation.
pub struct DnsAuthServer {
    cfg: DnsAuthConfig,
    port: Port53,
    counters: AuthCounters,
}

impl DnsAuthServer {
    pub fn new(cfg: DnsAuthConfig) -> Self {
        DnsAuthServer {
            cfg,
            port: Port53::default(),
            counters: AuthCounters::default(),
        }
    }

    fn serve(&mut self, os: &mut Os<'_, '_>, req: Request) {
        let (bytes, src) = match &req {
            Request::Udp(from, b) => (b, Some(*from.ip())),
            Request::Tcp(_, b) => (b, None),
        };
        let q = match wire::decode(bytes) {
            Ok(q) if q.metadata.message_type == hickory_proto::op::MessageType::Query => q,
            Ok(_) => return,
            Err(_) => {
                self.counters.malformed += 1;
                let mut f = vec![("app", TraceValue::String(self.cfg.name.clone()))];
                if let Some(s) = src {
                    f.push(("src", s.into()));
                }
                let formerr = wire::formerr_reply(bytes).and_then(|m| wire::encode(&m));
                f.push(("formerr", formerr.is_some().into()));
                os.trace_dns("malformed", &f);
                if let Some(reply) = formerr {
                    self.port.reply(os, &req, &reply);
                }
                return;
            }
        };
        self.counters.queries += 1;
        let transport = match req {
            Request::Udp(..) => Transport::Udp,
            Request::Tcp(..) => Transport::Tcp,
        };
        if transport == Transport::Tcp {
            self.counters.tcp_queries += 1;
        }
        if q.edns.is_some() {
            self.counters.edns_queries += 1;
        }
        let Some(reply) = auth_reply(&self.cfg.zones, self.cfg.edns, &q, transport) else {
            return;
        };
        match reply.kind {
            AuthReplyKind::Zone(AuthOutcome::Answer) => self.counters.answers += 1,
            AuthReplyKind::Zone(AuthOutcome::Referral) => self.counters.referrals += 1,
            AuthReplyKind::Zone(AuthOutcome::NxDomain) => self.counters.nxdomain += 1,
            AuthReplyKind::Zone(AuthOutcome::NoData) => self.counters.nodata += 1,
            AuthReplyKind::Zone(AuthOutcome::Refused) => self.counters.refused += 1,
            AuthReplyKind::FormErr | AuthReplyKind::BadVers => self.counters.edns_rejected += 1,
        }
        if reply.truncated {
            self.counters.truncated += 1;
        }
        let (qname, qtype) = wire::question(&q);
        let mut fields = vec![
            ("name", TraceValue::String(qname.to_ascii())),
            ("qtype", TraceValue::String(qtype.to_string())),
            ("outcome", TraceValue::Str(reply.kind.name())),
            ("truncated", reply.truncated.into()),
            ("transport", TraceValue::Str(transport.name())),
        ];
        if let Some(e) = &q.edns {
            fields.push(("edns", u64::from(e.max_payload()).into()));
        }
        os.trace_dns("auth_answer", &fields);
        self.port.reply(os, &req, &reply.bytes);
    }
}

impl App for DnsAuthServer {
    fn name(&self) -> &str {
        &self.cfg.name
    }
    fn start(&mut self, os: &mut Os<'_, '_>) {
        self.port.open(os);
    }
    fn on_udp(&mut self, os: &mut Os<'_, '_>, sock: SocketId, from: SocketAddrV4, p: &Payload) {
        if self.port.is_ours_udp(sock) {
            self.serve(os, Request::Udp(from, payload_bytes(p)));
        }
    }
    fn on_tcp(&mut self, os: &mut Os<'_, '_>, sock: TcpSocketId, ev: TcpEvent) {
        for r in self.port.on_tcp(os, sock, ev) {
            self.serve(os, r);
        }
    }
    fn finish(&mut self, os: &mut Os<'_, '_>) {
        for (k, v) in self.counters.fields() {
            os.dns_count(k, v);
        }
    }
    fn report(&self) -> Vec<String> {
        let c = &self.counters;
        let mut lines = self.port.lines.clone();
        lines.push(format!(
            "{} zones; {} queries ({} over TCP): {} answers, {} referrals, {} NXDOMAIN, {} NODATA, {} refused, {} truncated, {} malformed",
            self.cfg.zones.len(),
            c.queries,
            c.tcp_queries,
            c.answers,
            c.referrals,
            c.nxdomain,
            c.nodata,
            c.refused,
            c.truncated,
            c.malformed
        ));
        if c.edns_queries > 0 {
            lines.push(format!(
                "EDNS: {} queries with an OPT record, {} rejected (FORMERR or BADVERS)",
                c.edns_queries, c.edns_rejected
            ));
        }
        lines
    }
}

/// A recursive resolver's settings.
#[derive(Clone, Debug)]
pub struct DnsResolverConfig {
    pub name: String,
    pub resolver: ResolverConfig,
}

/// A recursive resolver (like Unbound): see the module documentation.
pub struct DnsResolverApp {
    cfg: DnsResolverConfig,
    port: Port53,
    resolver: Option<Resolver>,
    /// The socket for upstream UDP queries.
    upstream: Option<SocketId>,
    /// Upstream TCP connections, keyed by resolution.
    upstream_tcp: Vec<TcpChannel>,
    timer: Option<(SimTime, TimerHandle)>,
    summary: Vec<String>,
}

impl DnsResolverApp {
    pub fn new(cfg: DnsResolverConfig) -> Self {
        DnsResolverApp {
            cfg,
            port: Port53::default(),
            resolver: None,
            upstream: None,
            upstream_tcp: Vec::new(),
            timer: None,
            summary: Vec::new(),
        }
    }

    fn apply(&mut self, os: &mut Os<'_, '_>, out: Vec<ResolverOut>) {
        for o in out {
            match o {
                ResolverOut::Reply { client, bytes } => match client {
                    Client::Udp(to) => {
                        if let Some(s) = self.port.udp {
                            let _ = os.udp_send(s, to, Payload::bytes(&bytes), None);
                        }
                    }
                    Client::Tcp(key) => self.port.reply_tcp(os, key, &bytes),
                },
                ResolverOut::Send {
                    task,
                    server,
                    transport,
                    bytes,
                    name,
                    edns,
                } => {
                    let mut fields = vec![
                        ("name", TraceValue::String(name)),
                        ("server", server.into()),
                        ("transport", TraceValue::Str(transport.name())),
                    ];
                    if let Some(size) = edns {
                        fields.push(("edns", u64::from(size).into()));
                    }
                    os.trace_dns("upstream_query", &fields);
                    let to = SocketAddrV4::new(server, DNS_PORT);
                    self.close_upstream_tcp(os, task);
                    match transport {
                        Transport::Udp => {
                            if let Some(s) = self.upstream {
                                let _ = os.udp_send(s, to, Payload::bytes(&bytes), None);
                            }
                        }
                        Transport::Tcp => match TcpChannel::connect(os, to, task) {
                            Ok(mut ch) => {
                                let _ = ch.send(os, &bytes);
                                self.upstream_tcp.push(ch);
                            }
                            Err(_) => {
                                let mut more = Vec::new();
                                if let Some(r) = self.resolver.as_mut() {
                                    r.on_tcp_error(os.now(), task, &mut more);
                                }
                                self.apply(os, more);
                            }
                        },
                    }
                }
                ResolverOut::Note { event, name, addr } => {
                    let mut f = vec![("name", TraceValue::String(name))];
                    if let Some(a) = addr {
                        f.push(("addr", a.into()));
                    }
                    os.trace_dns(event, &f);
                }
            }
        }
        self.arm(os);
    }

    fn close_upstream_tcp(&mut self, os: &mut Os<'_, '_>, task: u64) {
        if let Some(i) = self.upstream_tcp.iter().position(|c| c.key == task) {
            self.upstream_tcp.remove(i).close(os);
        }
    }

    fn arm(&mut self, os: &mut Os<'_, '_>) {
        let want = self.resolver.as_ref().and_then(|r| r.poll_at());
        if want == self.timer.map(|(t, _)| t) {
            return;
        }
        if let Some((_, h)) = self.timer.take() {
            os.cancel_timer(h);
        }
        if let Some(t) = want {
            let now = os.now();
            let delay = if t > now { t - now } else { SimDuration::ZERO };
            self.timer = Some((t, os.set_timer(delay, 0)));
        }
    }

    fn query(&mut self, os: &mut Os<'_, '_>, client: Client, bytes: &[u8]) {
        let mut out = Vec::new();
        let Some(r) = self.resolver.as_mut() else {
            return;
        };
        if r.on_query(os.now(), client, bytes, &mut out).is_err() {
            os.trace_dns(
                "malformed",
                &[("app", TraceValue::String(self.cfg.name.clone()))],
            );
        }
        self.apply(os, out);
    }
}

impl App for DnsResolverApp {
    fn name(&self) -> &str {
        &self.cfg.name
    }
    fn start(&mut self, os: &mut Os<'_, '_>) {
        self.port.open(os);
        self.upstream = os.udp_bind(None).ok();
        self.resolver = Some(Resolver::new(
            self.cfg.resolver.clone(),
            os.rng("query-ids"),
        ));
    }
    fn on_timer(&mut self, os: &mut Os<'_, '_>, _token: u64) {
        self.timer = None;
        let mut out = Vec::new();
        if let Some(r) = self.resolver.as_mut() {
            r.on_timer(os.now(), &mut out);
        }
        self.apply(os, out);
    }
    fn on_udp(&mut self, os: &mut Os<'_, '_>, sock: SocketId, from: SocketAddrV4, p: &Payload) {
        let bytes = payload_bytes(p);
        if self.port.is_ours_udp(sock) {
            self.query(os, Client::Udp(from), &bytes);
        } else if Some(sock) == self.upstream {
            let mut out = Vec::new();
            let Some(r) = self.resolver.as_mut() else {
                return;
            };
            if r.on_udp_response(os.now(), from, &bytes, &mut out).is_err() {
                os.trace_dns("malformed", &[("src", (*from.ip()).into())]);
            }
            self.apply(os, out);
        }
    }
    fn on_tcp(&mut self, os: &mut Os<'_, '_>, sock: TcpSocketId, ev: TcpEvent) {
        if let Some(i) = self.upstream_tcp.iter().position(|c| c.sock == sock) {
            let task = self.upstream_tcp[i].key;
            let now = os.now();
            let mut out = Vec::new();
            let failed = match ev {
                TcpEvent::Connected => self.upstream_tcp[i].on_connected(os).is_err(),
                TcpEvent::Writable => self.upstream_tcp[i].flush(os).is_err(),
                TcpEvent::Readable => match self.upstream_tcp[i].read(os) {
                    Ok(got) => match (got.messages.first(), self.resolver.as_mut()) {
                        (Some(m), Some(r)) => {
                            if r.on_tcp_response(now, task, m, &mut out).is_err() {
                                os.trace_dns("malformed", &[]);
                            }
                            self.close_upstream_tcp(os, task);
                            false
                        }
                        _ => got.eof,
                    },
                    Err(_) => true,
                },
                TcpEvent::Error(_) => true,
                TcpEvent::Incoming => false,
            };
            if failed {
                self.close_upstream_tcp(os, task);
                if let Some(r) = self.resolver.as_mut() {
                    r.on_tcp_error(now, task, &mut out);
                }
            }
            self.apply(os, out);
            return;
        }
        for r in self.port.on_tcp(os, sock, ev) {
            if let Request::Tcp(key, bytes) = r {
                self.query(os, Client::Tcp(key), &bytes);
            }
        }
    }
    fn finish(&mut self, os: &mut Os<'_, '_>) {
        if let Some(r) = self.resolver.as_mut() {
            for (k, v) in r.counters.fields() {
                os.dns_count(k, v);
            }
            let c = r.counters;
            self.summary = vec![format!(
                "{} queries ({} over TCP): {} from cache ({} negative), {} upstream queries, {} timeouts, {} referrals, {} NXDOMAIN, {} SERVFAIL, {} truncated answers in, {} out, {} TCP retries, {} malformed; {} cache entries",
                c.queries,
                c.tcp_queries,
                c.cache_hits,
                c.negative_hits,
                c.upstream_queries,
                c.upstream_timeouts,
                c.referrals,
                c.nxdomain,
                c.servfail,
                c.truncated_in,
                c.truncated_out,
                c.tcp_retries,
                c.malformed,
                r.cache.len()
            )];
            if c.edns_queries + c.edns_fallbacks > 0 {
                self.summary.push(format!(
                    "EDNS: {} client queries with an OPT record, {} rejected; {} upstream fallbacks to plain DNS",
                    c.edns_queries, c.edns_rejected, c.edns_fallbacks
                ));
            }
        }
    }
    fn report(&self) -> Vec<String> {
        let mut lines = self.port.lines.clone();
        lines.extend(self.summary.iter().cloned());
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::{decode, fqdn, query};
    use crate::dns::zone::{ZoneData, ZoneRecord, ZoneSpec};
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::RecordType;
    use std::net::Ipv4Addr;

    /// "many.example" has 55 addresses: 921 bytes with an OPT record.
    fn zones() -> Vec<Zone> {
        let records = (0..55)
            .map(|i| ZoneRecord {
                name: "many".into(),
                ttl: 60,
                data: ZoneData::A(Ipv4Addr::new(10, 5, 0, i)),
            })
            .collect();
        vec![Zone::new(&ZoneSpec {
            origin: "example".into(),
            serial: 1,
            soa_ttl: 60,
            negative_ttl: 60,
            records,
        })
        .unwrap()]
    }

    fn ask(server: Option<u16>, client: Option<u16>, transport: Transport) -> (AuthReply, Message) {
        let mut q = query(5, &fqdn("many.example").unwrap(), RecordType::A, false);
        q.edns = client.map(edns::opt);
        let r = auth_reply(&zones(), server, &q, transport).unwrap();
        let m = decode(&r.bytes).unwrap();
        (r, m)
    }

    #[test]
    fn a_900_byte_answer_is_truncated_without_edns_and_whole_with_it() {
        // Without an OPT record: 512 bytes, TC, no records (RFC 1035 4.2.1).
        let (r, m) = ask(Some(1232), None, Transport::Udp);
        assert!(r.truncated && m.metadata.truncation && m.answers.is_empty());
        assert!(m.edns.is_none());
        // Advertising 1200 bytes: all 55 in one datagram, with the server's OPT record.
        let (r, m) = ask(Some(1232), Some(1200), Transport::Udp);
        assert_eq!((r.truncated, r.bytes.len()), (false, 921));
        assert_eq!(m.answers.len(), 55);
        assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(1232));
        assert_eq!(r.kind, AuthReplyKind::Zone(AuthOutcome::Answer));
        // The smaller of the two sizes counts: a server that sends 900 bytes at most
        // truncates, keeping its OPT record in the truncated answer (RFC 6891 7).
        let (r, m) = ask(Some(900), Some(4096), Transport::Udp);
        assert!(r.truncated && m.answers.is_empty());
        assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(900));
        // Over TCP everything goes.
        let (r, m) = ask(Some(1232), None, Transport::Tcp);
        assert!(!r.truncated);
        assert_eq!(m.answers.len(), 55);
    }

    #[test]
    fn a_server_without_edns_answers_formerr_and_plain_queries_as_before() {
        let (r, m) = ask(None, Some(1232), Transport::Udp);
        assert_eq!(r.kind, AuthReplyKind::FormErr);
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert!(m.edns.is_none() && m.answers.is_empty());
        assert_eq!(m.metadata.id, 5);
        let (r, _) = ask(None, None, Transport::Udp);
        assert!(r.truncated);
        assert_eq!(r.kind, AuthReplyKind::Zone(AuthOutcome::Answer));
    }
}

//! The stub resolver inside a host's stack: what `getaddrinfo()` is to a program. Apps ask
//! with [`crate::Os::lookup`]; the host answers from its static host entries (/etc/hosts)
//! or runs a [`StubResolver`] lookup against the DNS servers the host has *at that moment*
//! ([`crate::Os::dns_servers`], which a DHCP client may change), over its own UDP sockets
//! (a fresh ephemeral port per lookup, as glibc opens a socket per query) and TCP
//! connections. Results reach the app through [`crate::App::on_resolved`], queued like TCP
//! events, so an app's callback is never re-entered.
//!
//! Owns the stub's sockets and timer; the host stack routes their events here.

use super::stub::{LookupResult, StubConfig, StubOut, StubResolver, Transport};
use super::tcp_channel::TcpChannel;
use super::wire::DNS_PORT;
use crate::app::Os;
use crate::tcp::{TcpEvent, TcpSocketId};
use crate::udp::SocketId;
use sim_core::packet::Payload;
use sim_core::rng::SimRng;
use sim_core::sched::TimerHandle;
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::TraceValue;
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

/// What apps and the host's resolver share through [`crate::Os`]: lookups asked for,
/// results to deliver, and the node's DNS counters.
#[derive(Debug, Default)]
pub struct DnsShared {
    /// (app, token, name) waiting to start.
    pub(crate) requests: VecDeque<(usize, u64, String)>,
    /// (app, token, result) waiting for delivery.
    pub(crate) resolved: VecDeque<(usize, u64, LookupResult)>,
    /// The node's DNS counters by report name.
    pub(crate) counters: BTreeMap<&'static str, u64>,
}

impl DnsShared {
    pub(crate) fn clear(&mut self) {
        self.requests.clear();
        self.resolved.clear();
    }
    pub(crate) fn add(&mut self, key: &'static str, n: u64) {
        if n > 0 {
            *self.counters.entry(key).or_insert(0) += n;
        }
    }
}

struct Waiting {
    key: u64,
    app: usize,
    token: u64,
    name: String,
    udp: Option<SocketId>,
}

/// The host's stub resolver and its sockets. See the module documentation.
pub struct HostResolver {
    stub: StubResolver,
    /// Static entries (lower-case name without the final dot, address).
    hosts: Vec<(String, Ipv4Addr)>,
    waiting: Vec<Waiting>,
    tcp: Vec<TcpChannel>,
    next_key: u64,
    timer: Option<(SimTime, TimerHandle)>,
    ids: SimRng,
    pub(crate) hosts_hits: u64,
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl HostResolver {
    pub fn new(cfg: StubConfig, hosts: &[(String, Ipv4Addr)], ids: SimRng) -> Self {
        HostResolver {
            stub: StubResolver::new(cfg),
            hosts: hosts.iter().map(|(n, a)| (normalize(n), *a)).collect(),
            waiting: Vec::new(),
            tcp: Vec::new(),
            next_key: 1,
            timer: None,
            ids,
            hosts_hits: 0,
        }
    }

    pub fn counters(&self) -> &super::stub::StubCounters {
        &self.stub.counters
    }

    /// Starts a lookup for `app`.
    pub(crate) fn start(&mut self, os: &mut Os<'_, '_>, app: usize, token: u64, name: &str) {
        let wanted = normalize(name);
        let static_hits: Vec<Ipv4Addr> = self
            .hosts
            .iter()
            .filter(|(n, _)| *n == wanted)
            .map(|(_, a)| *a)
            .collect();
        if !static_hits.is_empty() {
            self.hosts_hits += 1;
            os.trace_dns(
                "hosts_hit",
                &[
                    ("name", TraceValue::String(name.to_string())),
                    ("addr", static_hits[0].into()),
                ],
            );
            os.dns.resolved.push_back((app, token, Ok(static_hits)));
            return;
        }
        let key = self.next_key;
        self.next_key += 1;
        self.waiting.push(Waiting {
            key,
            app,
            token,
            name: name.to_string(),
            udp: None,
        });
        let servers = os.dns_servers().to_vec();
        let id = self.ids.next_u32() as u16;
        let mut out = Vec::new();
        self.stub.start(os.now(), key, name, &servers, id, &mut out);
        self.apply(os, out);
    }

    fn name_of(&self, key: u64) -> String {
        self.waiting
            .iter()
            .find(|w| w.key == key)
            .map(|w| w.name.clone())
            .unwrap_or_default()
    }

    fn apply(&mut self, os: &mut Os<'_, '_>, out: Vec<StubOut>) {
        for o in out {
            match o {
                StubOut::Send {
                    key,
                    server,
                    transport,
                    bytes,
                    attempt,
                    edns,
                } => {
                    let mut fields = vec![
                        ("name", TraceValue::String(self.name_of(key))),
                        ("server", server.into()),
                        ("transport", TraceValue::Str(transport.name())),
                        ("attempt", (attempt as u64).into()),
                    ];
                    if let Some(size) = edns {
                        fields.push(("edns", u64::from(size).into()));
                    }
                    os.trace_dns("stub_query", &fields);
                    self.send(os, key, server, transport, &bytes);
                }
                StubOut::TimedOut {
                    key,
                    server,
                    transport,
                } => {
                    os.trace_dns(
                        "stub_timeout",
                        &[
                            ("name", TraceValue::String(self.name_of(key))),
                            ("server", server.into()),
                            ("transport", TraceValue::Str(transport.name())),
                        ],
                    );
                    self.close_tcp(os, key);
                }
                StubOut::Truncated { key, server } => {
                    os.trace_dns(
                        "stub_truncated",
                        &[
                            ("name", TraceValue::String(self.name_of(key))),
                            ("server", server.into()),
                        ],
                    );
                }
                StubOut::Done {
                    key,
                    result,
                    latency,
                } => {
                    self.close_tcp(os, key);
                    let Some(i) = self.waiting.iter().position(|w| w.key == key) else {
                        continue;
                    };
                    let w = self.waiting.remove(i);
                    if let Some(s) = w.udp {
                        os.udp_close(s);
                    }
                    let outcome = match &result {
                        Ok(_) => "ok",
                        Err(e) => e.name(),
                    };
                    let mut fields = vec![
                        ("name", TraceValue::String(w.name.clone())),
                        ("result", TraceValue::Str(outcome)),
                        ("latency_ns", latency.as_nanos().into()),
                    ];
                    if let Ok(a) = &result {
                        fields.push(("addr", a[0].into()));
                    }
                    os.trace_dns("lookup_done", &fields);
                    os.dns.resolved.push_back((w.app, w.token, result));
                }
            }
        }
        self.arm(os);
    }

    fn send(
        &mut self,
        os: &mut Os<'_, '_>,
        key: u64,
        server: Ipv4Addr,
        transport: Transport,
        bytes: &[u8],
    ) {
        let to = SocketAddrV4::new(server, DNS_PORT);
        match transport {
            Transport::Udp => {
                let Some(w) = self.waiting.iter_mut().find(|w| w.key == key) else {
                    return;
                };
                let sock = match w.udp {
                    Some(s) => Some(s),
                    None => os.udp_bind(None).ok(),
                };
                w.udp = sock;
                if let Some(s) = sock {
                    // A send error (no route) is a silent loss: the attempt times out.
                    let _ = os.udp_send(s, to, Payload::bytes(bytes), None);
                }
            }
            Transport::Tcp => {
                self.close_tcp(os, key);
                match TcpChannel::connect(os, to, key) {
                    Ok(mut ch) => {
                        let _ = ch.send(os, bytes);
                        self.tcp.push(ch);
                    }
                    Err(_) => {
                        let mut out = Vec::new();
                        self.stub.on_tcp_error(os.now(), key, &mut out);
                        self.apply(os, out);
                    }
                }
            }
        }
    }

    fn close_tcp(&mut self, os: &mut Os<'_, '_>, key: u64) {
        if let Some(i) = self.tcp.iter().position(|c| c.key == key) {
            self.tcp.remove(i).close(os);
        }
    }

    /// Keeps the host timer at the stub's next deadline.
    fn arm(&mut self, os: &mut Os<'_, '_>) {
        let want = self.stub.poll_at();
        if want == self.timer.map(|(t, _)| t) {
            return;
        }
        if let Some((_, h)) = self.timer.take() {
            os.cancel_timer(h);
        }
        if let Some(t) = want {
            let now = os.now();
            let delay = if t > now { t - now } else { SimDuration::ZERO };
            let h = os.set_timer(delay, 0);
            self.timer = Some((t, h));
        }
    }

    pub(crate) fn on_timer(&mut self, os: &mut Os<'_, '_>) {
        self.timer = None;
        let mut out = Vec::new();
        self.stub.on_timer(os.now(), &mut out);
        self.apply(os, out);
    }

    pub(crate) fn on_udp(
        &mut self,
        os: &mut Os<'_, '_>,
        sock: SocketId,
        from: SocketAddrV4,
        payload: &Payload,
    ) {
        let Some(key) = self
            .waiting
            .iter()
            .find(|w| w.udp == Some(sock))
            .map(|w| w.key)
        else {
            return;
        };
        let mut bytes = Vec::new();
        payload.write_to(&mut bytes);
        let mut out = Vec::new();
        if self
            .stub
            .on_udp(os.now(), key, from, &bytes, &mut out)
            .is_err()
        {
            os.trace_dns("malformed", &[("src", (*from.ip()).into())]);
        }
        self.apply(os, out);
    }

    pub(crate) fn on_tcp(&mut self, os: &mut Os<'_, '_>, sock: TcpSocketId, ev: TcpEvent) {
        let Some(i) = self.tcp.iter().position(|c| c.sock == sock) else {
            return;
        };
        let key = self.tcp[i].key;
        let now = os.now();
        let mut out = Vec::new();
        let failed = match ev {
            TcpEvent::Connected => self.tcp[i].on_connected(os).is_err(),
            TcpEvent::Writable => self.tcp[i].flush(os).is_err(),
            TcpEvent::Readable => match self.tcp[i].read(os) {
                Ok(got) => {
                    if let Some(m) = got.messages.first() {
                        if self.stub.on_tcp(now, key, m, &mut out).is_err() {
                            os.trace_dns("malformed", &[]);
                        }
                        false
                    } else {
                        got.eof
                    }
                }
                Err(_) => true,
            },
            TcpEvent::Error(_) => true,
            TcpEvent::Incoming => false,
        };
        if failed {
            self.close_tcp(os, key);
            self.stub.on_tcp_error(now, key, &mut out);
        }
        self.apply(os, out);
    }
}

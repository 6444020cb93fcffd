//! The stack of one host or router: sockets plus apps, behind sim-core's `Stack` trait.
//!
//! Owns dispatch: timers to the app that set them, datagrams to the socket's owner, TCP
//! segments to the host's [`TcpStack`] and its events to the apps, ICMP echo replies to the
//! app holding the identifier, ICMP errors to the socket that sent the offending datagram.
//! Datagrams to a UDP port nobody listens on get ICMP port unreachable.

use crate::app::{App, AppFactory, Os, PacketInfo, APP_TOKEN_BITS};
use crate::dns::host::{DnsShared, HostResolver};
use crate::tcp::seq::SeqNum;
use crate::tcp::{TcpConfig, TcpEnv, TcpEvent, TcpSocketId, TcpStack};
use crate::udp::{self, UdpTable};
use sim_core::ip::{IcmpIn, SendError, SendRequest, Upcall};
use sim_core::packet::{ip_proto, Ecn, IcmpMessage, IpBody, TransportPacket, UnreachableCode};
use sim_core::sched::TimerHandle;
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::{Category, TraceValue};
use sim_core::world::{NodeCx, Stack, StackReport};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;

/// An app and when it starts (time since the run began).
pub struct AppSlot {
    pub start: SimTime,
    pub factory: AppFactory,
    /// Start no earlier than `start` and not before the node has an address (the apps of a
    /// host configured at run time, e.g. by DHCP, wait for the first lease).
    pub wait_for_address: bool,
}

/// A TCP event waiting for its app.
pub(crate) type Notice = (usize, TcpSocketId, TcpEvent);

/// Stack timer tokens with this app index are the stack's own (app start times).
const START_TIMER_APP: u64 = (1 << (63 - APP_TOKEN_BITS)) - 1;
/// ... and this one is the TCP stack's wake-up.
const TCP_TIMER_APP: u64 = START_TIMER_APP - 1;
/// ... and this one stops an app (a "kill" fault).
const KILL_TIMER_APP: u64 = START_TIMER_APP - 2;
/// The app index of the host's stub resolver: its timer, sockets and TCP events.
const STUB_APP: u64 = START_TIMER_APP - 3;

/// The name of the [`StackReport`] in which a host's stack reports its TCP counters at the
/// end of the run: one `"<Name> <value>"` line per non-zero counter, named as `nstat` names
/// them without the `Tcp`/`TcpExt` prefix (see [`tcp_counter_fields`]).
pub const TCP_COUNTERS_REPORT: &str = "kernel:tcp";

/// The host's TCP counters with their `nstat` names (without the `Tcp`/`TcpExt` prefix).
pub fn tcp_counter_fields(c: &crate::tcp::TcpCounters) -> [(&'static str, u64); 22] {
    [
        ("ActiveOpens", c.active_opens),
        ("PassiveOpens", c.passive_opens),
        ("AttemptFails", c.attempt_fails),
        ("EstabResets", c.estab_resets),
        ("InSegs", c.segs_in),
        ("OutSegs", c.segs_out),
        ("RetransSegs", c.retrans_segs),
        ("InErrs", c.malformed),
        ("OutRsts", c.resets_sent),
        ("InRsts", c.resets_received),
        ("ListenOverflows", c.listen_overflows),
        ("ListenDrops", c.listen_drops),
        ("SyncookiesSent", c.syncookies_sent),
        ("SyncookiesRecv", c.syncookies_recv),
        ("SyncookiesFailed", c.syncookies_failed),
        ("TWRecycled", c.time_wait_recycled),
        ("TCPChallengeACK", c.challenge_acks),
        ("TCPAbortOnData", c.abort_on_data),
        ("TCPAbortOnTimeout", c.abort_on_timeout),
        ("TCPLostRetransmit", c.lost_retransmits),
        ("TCPLossProbes", c.loss_probes),
        ("TCPLossProbeRecovery", c.loss_probe_recoveries),
    ]
}

/// What a host runs: its apps and its kernel's TCP settings.
pub struct HostConfig {
    pub apps: Vec<AppSlot>,
    pub tcp: TcpConfig,
    /// Apps to kill (their sockets closed as the kernel does for a dead process), by
    /// index in `apps`, and when.
    pub kills: Vec<(usize, SimTime)>,
    /// The host's DNS servers at boot (like `nameserver` lines in /etc/resolv.conf); a
    /// DHCP client may replace them at run time (see [`Os::set_dns_servers`]).
    pub dns_servers: Vec<Ipv4Addr>,
    /// Static host entries (/etc/hosts): name, address; the stub resolver looks here
    /// first.
    pub hosts: Vec<(String, Ipv4Addr)>,
    /// The stub resolver's options (resolv.conf `options`).
    pub resolver: crate::dns::StubConfig,
}

pub struct HostStack {
    config: Rc<HostConfig>,
    apps: Vec<Option<Box<dyn App>>>,
    app_names: Vec<String>,
    udp: Option<UdpTable>,
    tcp: Option<TcpStack>,
    tcp_timer: Option<(SimTime, TimerHandle)>,
    notices: VecDeque<Notice>,
    icmp_idents: Vec<(u16, usize)>,
    reports: Vec<StackReport>,
    dns_servers: Vec<Ipv4Addr>,
    dns: DnsShared,
    resolver: Option<HostResolver>,
    /// Apps (by index) waiting for the node to get an address before they start.
    waiting_for_address: Vec<usize>,
    pktinfo: Option<PacketInfo>,
}

/// The TCP stack's view of the node (see [`TcpEnv`]).
pub(crate) struct TcpIo<'a, 'b> {
    pub cx: &'a mut NodeCx<'b>,
    pub notices: &'a mut VecDeque<Notice>,
}

impl TcpEnv for TcpIo<'_, '_> {
    fn now(&self) -> SimTime {
        self.cx.now()
    }
    fn send(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ecn: Ecn,
        pkt: TransportPacket,
    ) -> Result<(), SendError> {
        let mut req = SendRequest::new(dst, ip_proto::TCP, IpBody::Transport(pkt));
        req.src = Some(src);
        req.dont_fragment = true;
        req.tos = ecn.bits();
        self.cx.send(req)
    }
    fn route(&self, dst: Ipv4Addr) -> Option<(Ipv4Addr, u32)> {
        self.cx.ip().source_for(dst)
    }
    fn is_local(&self, addr: Ipv4Addr) -> bool {
        self.cx.ip().is_local(addr)
    }
    fn notify(&mut self, owner: usize, sock: TcpSocketId, event: TcpEvent) {
        self.notices.push_back((owner, sock, event));
    }
    fn tracing(&self) -> bool {
        self.cx.tracing(Category::Tcp)
    }
    fn trace(&mut self, event: &'static str, fields: &[(&'static str, TraceValue)]) {
        self.cx.trace(Category::Tcp, event, fields);
    }
    fn probing(&self) -> bool {
        self.cx.tracing(Category::TcpProbe)
    }
    fn probe(&mut self, fields: &[(&'static str, TraceValue)]) {
        self.cx.trace(Category::TcpProbe, "tcp_probe", fields);
    }
}

impl HostStack {
    /// A stack that runs `config`'s apps; shared so a restart can build them again.
    pub fn new(config: Rc<HostConfig>) -> Self {
        HostStack {
            config,
            apps: Vec::new(),
            app_names: Vec::new(),
            udp: None,
            tcp: None,
            tcp_timer: None,
            notices: VecDeque::new(),
            icmp_idents: Vec::new(),
            reports: Vec::new(),
            dns_servers: Vec::new(),
            dns: DnsShared::default(),
            resolver: None,
            waiting_for_address: Vec::new(),
            pktinfo: None,
        }
    }

    /// Runs `f` on the host's stub resolver with an [`Os`] of its own.
    fn with_resolver(
        &mut self,
        cx: &mut NodeCx<'_>,
        f: impl FnOnce(&mut HostResolver, &mut Os<'_, '_>),
    ) {
        let (Some(udp), Some(tcp), Some(r)) =
            (self.udp.as_mut(), self.tcp.as_mut(), self.resolver.as_mut())
        else {
            return;
        };
        let mut os = Os {
            cx,
            udp,
            icmp_idents: &mut self.icmp_idents,
            tcp,
            notices: &mut self.notices,
            dns_servers: &mut self.dns_servers,
            dns: &mut self.dns,
            pktinfo: None,
            app: STUB_APP as usize,
            app_name: "resolver",
        };
        f(r, &mut os);
    }

    fn with_app(
        &mut self,
        cx: &mut NodeCx<'_>,
        app: usize,
        f: impl FnOnce(&mut dyn App, &mut Os<'_, '_>),
    ) {
        let (Some(udp), Some(tcp)) = (self.udp.as_mut(), self.tcp.as_mut()) else {
            return;
        };
        let Some(Some(a)) = self.apps.get_mut(app) else {
            return;
        };
        let mut os = Os {
            cx,
            udp,
            icmp_idents: &mut self.icmp_idents,
            tcp,
            notices: &mut self.notices,
            dns_servers: &mut self.dns_servers,
            dns: &mut self.dns,
            pktinfo: self.pktinfo,
            app,
            app_name: self.app_names.get(app).map_or("", |s| s.as_str()),
        };
        f(a.as_mut(), &mut os);
    }

    /// Sets the start timer of app `i`: at its start time, or now if that has passed.
    fn schedule_start(&self, cx: &mut NodeCx<'_>, i: usize) {
        let Some(s) = self.config.apps.get(i) else {
            return;
        };
        let now = cx.now();
        let delay = if s.start > now {
            s.start - now
        } else {
            SimDuration::ZERO
        };
        cx.set_timer(delay, (START_TIMER_APP << APP_TOKEN_BITS) | i as u64);
    }

    /// Delivers queued TCP events (which may queue more), starts apps that waited for an
    /// address once there is one, then re-arms the TCP wake-up.
    fn settle(&mut self, cx: &mut NodeCx<'_>) {
        if !self.waiting_for_address.is_empty() && cx.primary_addr().is_some() {
            for i in std::mem::take(&mut self.waiting_for_address) {
                self.schedule_start(cx, i);
            }
        }
        loop {
            if let Some((app, sock, ev)) = self.notices.pop_front() {
                if app == STUB_APP as usize {
                    self.with_resolver(cx, |r, os| r.on_tcp(os, sock, ev));
                } else {
                    self.with_app(cx, app, |a, os| a.on_tcp(os, sock, ev));
                }
            } else if let Some((app, token, name)) = self.dns.requests.pop_front() {
                self.with_resolver(cx, |r, os| r.start(os, app, token, &name));
            } else if let Some((app, token, result)) = self.dns.resolved.pop_front() {
                self.with_app(cx, app, |a, os| a.on_resolved(os, token, &result));
            } else {
                break;
            }
        }
        let Some(tcp) = self.tcp.as_ref() else { return };
        let want = tcp.poll_at();
        if want == self.tcp_timer.map(|(t, _)| t) {
            return;
        }
        if let Some((_, h)) = self.tcp_timer.take() {
            cx.cancel_timer(h);
        }
        if let Some(t) = want {
            let now = cx.now();
            let delay = if t > now { t - now } else { SimDuration::ZERO };
            let h = cx.set_timer(delay, TCP_TIMER_APP << APP_TOKEN_BITS);
            self.tcp_timer = Some((t, h));
        }
    }

    fn with_tcp(&mut self, cx: &mut NodeCx<'_>, f: impl FnOnce(&mut TcpStack, &mut TcpIo<'_, '_>)) {
        if let Some(tcp) = self.tcp.as_mut() {
            let mut io = TcpIo {
                cx,
                notices: &mut self.notices,
            };
            f(tcp, &mut io);
        }
    }

    fn deliver_icmp(&mut self, cx: &mut NodeCx<'_>, msg: IcmpIn) {
        let owner = match &msg.message {
            IcmpMessage::EchoReply { ident, .. } => self
                .icmp_idents
                .iter()
                .find(|(i, _)| i == ident)
                .map(|(_, a)| *a),
            IcmpMessage::DestUnreachable { quote, .. }
            | IcmpMessage::TimeExceeded { quote, .. } => match quote.protocol {
                ip_proto::UDP => self
                    .udp
                    .as_ref()
                    .and_then(|u| u.lookup(quote.ports().0))
                    .map(|(_, a)| a),
                ip_proto::TCP => {
                    self.tcp_icmp(cx, &msg.message);
                    None
                }
                ip_proto::ICMP => {
                    // Quoted echo request: identifier at bytes 4-5.
                    let ident = u16::from_be_bytes([quote.data[4], quote.data[5]]);
                    self.icmp_idents
                        .iter()
                        .find(|(i, _)| *i == ident)
                        .map(|(_, a)| *a)
                }
                _ => None,
            },
            IcmpMessage::EchoRequest { .. } => None,
        };
        if let Some(app) = owner {
            self.with_app(cx, app, |a, os| a.on_icmp(os, &msg));
        }
    }

    /// An ICMP error about a TCP segment we sent goes to its connection.
    fn tcp_icmp(&mut self, cx: &mut NodeCx<'_>, m: &IcmpMessage) {
        let (quote, code, mtu) = match m {
            IcmpMessage::DestUnreachable {
                code,
                next_hop_mtu,
                quote,
            } => (quote, Some(*code), *next_hop_mtu),
            IcmpMessage::TimeExceeded { quote, .. } => (quote, None, 0),
            _ => return,
        };
        if quote.data_len < 8 {
            return;
        }
        let (sport, dport) = quote.ports();
        let seq = SeqNum(u32::from_be_bytes([
            quote.data[4],
            quote.data[5],
            quote.data[6],
            quote.data[7],
        ]));
        let local = SocketAddrV4::new(quote.src, sport);
        let remote = SocketAddrV4::new(quote.dst, dport);
        self.with_tcp(cx, |tcp, io| {
            tcp.icmp_error(io, local, remote, seq, code, mtu)
        });
    }

    fn deliver_udp(&mut self, cx: &mut NodeCx<'_>, d: sim_core::ip::Datagram) {
        let Some(h) = udp::decode(&d.packet) else {
            cx.trace(Category::Udp, "malformed", &[("src", d.src.into())]);
            return;
        };
        let target = self.udp.as_ref().and_then(|u| u.lookup(h.dst_port));
        match target {
            Some((sock, app)) => {
                let from = SocketAddrV4::new(d.src, h.src_port);
                let payload = d.packet.payload.clone();
                if app == STUB_APP as usize {
                    self.with_resolver(cx, |r, os| r.on_udp(os, sock, from, &payload));
                } else {
                    self.pktinfo = Some(PacketInfo {
                        iface: d.iface,
                        dst: d.dst,
                    });
                    self.with_app(cx, app, |a, os| a.on_udp(os, sock, from, &payload));
                    self.pktinfo = None;
                }
            }
            None => {
                if let Some(u) = self.udp.as_mut() {
                    u.no_port += 1;
                }
                let is_broadcast = d.dst == Ipv4Addr::BROADCAST || !cx.ip().is_local(d.dst);
                if is_broadcast {
                    return;
                }
                cx.trace(
                    Category::Udp,
                    "port_unreachable",
                    &[("port", h.dst_port.into()), ("src", d.src.into())],
                );
                send_unreachable(cx, &d, UnreachableCode::Port);
            }
        }
    }

    fn kill_app(&mut self, cx: &mut NodeCx<'_>, app: usize) {
        if self.apps.get(app).is_none_or(|a| a.is_none()) {
            return;
        }
        let name = self.app_names.get(app).cloned().unwrap_or_default();
        cx.trace(
            Category::App,
            "app_killed",
            &[("app", TraceValue::String(name))],
        );
        self.with_app(cx, app, |a, os| a.finish(os));
        if let Some(Some(a)) = self.apps.get(app) {
            let lines = a.report();
            if !lines.is_empty() {
                self.reports.push(StackReport {
                    app: a.name().to_string(),
                    lines,
                });
            }
        }
        self.apps[app] = None;
        self.with_tcp(cx, |tcp, io| tcp.close_owned_by(io, app));
        if let Some(u) = self.udp.as_mut() {
            u.close_owned_by(app);
        }
    }
}

/// Answers `d` with ICMP destination unreachable, from the address it was sent to.
fn send_unreachable(cx: &mut NodeCx<'_>, d: &sim_core::ip::Datagram, code: UnreachableCode) {
    let msg = IcmpMessage::DestUnreachable {
        code,
        next_hop_mtu: 0,
        quote: d.quote(),
    };
    let mut req = SendRequest::new(d.src, ip_proto::ICMP, IpBody::Icmp(msg));
    req.src = Some(d.dst);
    let _ = cx.send(req);
}

impl Stack for HostStack {
    fn boot(&mut self, cx: &mut NodeCx<'_>) {
        let mut rng = cx.rng("udp-ephemeral");
        self.udp = Some(UdpTable::new(&mut rng));
        let mut rng = cx.rng("tcp");
        self.tcp = Some(TcpStack::new(self.config.tcp.clone(), &mut rng));
        self.tcp_timer = None;
        self.notices.clear();
        self.icmp_idents.clear();
        self.dns_servers.clone_from(&self.config.dns_servers);
        self.dns.clear();
        self.resolver = Some(HostResolver::new(
            self.config.resolver,
            &self.config.hosts,
            cx.rng("dns-stub"),
        ));
        self.apps = self
            .config
            .apps
            .iter()
            .map(|s| Some((s.factory)()))
            .collect();
        self.app_names = self
            .apps
            .iter()
            .map(|a| a.as_ref().map_or(String::new(), |a| a.name().to_string()))
            .collect();
        let now = cx.now();
        self.waiting_for_address.clear();
        let has_address = cx.primary_addr().is_some();
        for (i, s) in self.config.apps.iter().enumerate() {
            if s.wait_for_address && !has_address {
                self.waiting_for_address.push(i);
            } else {
                self.schedule_start(cx, i);
            }
        }
        for &(app, at) in &self.config.kills {
            if at >= now {
                cx.set_timer(at - now, (KILL_TIMER_APP << APP_TOKEN_BITS) | app as u64);
            }
        }
    }

    fn on_timer(&mut self, cx: &mut NodeCx<'_>, token: u64) {
        let app = token >> APP_TOKEN_BITS;
        let app_token = token & ((1 << APP_TOKEN_BITS) - 1);
        match app {
            START_TIMER_APP => {
                self.with_app(cx, app_token as usize, |a, os| a.start(os));
            }
            TCP_TIMER_APP => {
                self.tcp_timer = None;
                self.with_tcp(cx, |tcp, io| tcp.on_timers(io));
            }
            KILL_TIMER_APP => self.kill_app(cx, app_token as usize),
            STUB_APP => self.with_resolver(cx, |r, os| r.on_timer(os)),
            _ => {
                self.with_app(cx, app as usize, |a, os| a.on_timer(os, app_token));
            }
        }
        self.settle(cx);
    }

    fn on_upcall(&mut self, cx: &mut NodeCx<'_>, upcall: Upcall) {
        match upcall {
            Upcall::Datagram(d) if d.protocol == ip_proto::UDP => self.deliver_udp(cx, d),
            Upcall::Datagram(d) if d.protocol == ip_proto::TCP => {
                self.with_tcp(cx, |tcp, io| {
                    tcp.input(io, d.src, d.dst, Ecn::of_tos(d.tos), &d.packet)
                });
            }
            Upcall::Datagram(d) => {
                // No handler for this protocol: protocol unreachable, as Linux does.
                cx.trace(
                    Category::Ip,
                    "protocol_unreachable",
                    &[("protocol", d.protocol.into())],
                );
                send_unreachable(cx, &d, UnreachableCode::Protocol);
            }
            Upcall::Icmp(m) => self.deliver_icmp(cx, m),
            Upcall::AddressConflict { iface, addr, mac } => {
                for i in 0..self.apps.len() {
                    self.with_app(cx, i, |a, os| a.on_address_conflict(os, iface, addr, mac));
                }
            }
            Upcall::Carrier { iface, up } => {
                for i in 0..self.apps.len() {
                    self.with_app(cx, i, |a, os| a.on_carrier(os, iface, up));
                }
            }
        }
        self.settle(cx);
    }

    fn finish(&mut self, cx: &mut NodeCx<'_>) {
        for i in 0..self.apps.len() {
            self.with_app(cx, i, |a, os| a.finish(os));
        }
        for a in self.apps.iter().flatten() {
            let lines = a.report();
            if !lines.is_empty() {
                self.reports.push(StackReport {
                    app: a.name().to_string(),
                    lines,
                });
            }
        }
        if let Some(r) = self.resolver.as_ref() {
            for (k, v) in r.counters().fields() {
                self.dns.add(k, v);
            }
            self.dns.add("stub_hosts_hits", r.hosts_hits);
        }
        let lines: Vec<String> = self
            .dns
            .counters
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !lines.is_empty() {
            self.reports.push(StackReport {
                app: crate::dns::DNS_COUNTERS_REPORT.to_string(),
                lines,
            });
        }
        if let Some(tcp) = self.tcp.as_ref() {
            let lines: Vec<String> = tcp_counter_fields(tcp.counters())
                .iter()
                .filter(|(_, v)| *v > 0)
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            if !lines.is_empty() {
                self.reports.push(StackReport {
                    app: TCP_COUNTERS_REPORT.to_string(),
                    lines,
                });
            }
        }
    }

    fn report(&self) -> Vec<StackReport> {
        self.reports.clone()
    }
}

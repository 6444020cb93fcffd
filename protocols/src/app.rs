//! The application API: what a simulated program can do and what it is told.
//!
//! An [`App`] is a state machine driven by callbacks; it acts through [`Os`], the node's
//! system-call surface (sockets, timers, clock, randomness, measurements). Users write their
//! own apps against the same API as the built-in ones:
//!
//! ```ignore
//! struct Hello;
//! impl App for Hello {
//!     fn name(&self) -> &str { "hello" }
//!     fn start(&mut self, os: &mut Os<'_, '_>) {
//!         let s = os.udp_bind(None).unwrap();
//!         let dst = os.resolve("server").unwrap();
//!         let _ = os.udp_send(s, std::net::SocketAddrV4::new(dst, 7), Payload::zeros(10), None);
//!     }
//! }
//! ```

use crate::dns::LookupResult;
use crate::tcp::{Errno, Shutdown, SockOpts, TcpEvent, TcpInfo, TcpSocketId, TcpStack};
use crate::udp::{self, SocketId, UdpError, UdpTable};
use sim_core::ip::Iface;
use sim_core::ip::{IcmpIn, SendError, SendRequest};
use sim_core::metrics::{FlowId, FlowStats};
use sim_core::packet::{ip_proto, IcmpMessage, IpBody, MacAddr, Payload};
use sim_core::rng::SimRng;
use sim_core::route::Prefix;
use sim_core::sched::TimerHandle;
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::{Category, TraceValue};
use sim_core::world::NodeCx;
use std::net::{Ipv4Addr, SocketAddrV4};

/// Bits of a stack timer token that belong to the app; the rest name the app.
pub(crate) const APP_TOKEN_BITS: u32 = 40;

/// A simulated program on a host or router.
pub trait App {
    /// The app's name (unique per run; used for flows, reports and random streams).
    fn name(&self) -> &str;
    /// Called at the app's start time.
    fn start(&mut self, os: &mut Os<'_, '_>);
    /// A timer set with [`Os::set_timer`] fired.
    fn on_timer(&mut self, _os: &mut Os<'_, '_>, _token: u64) {}
    /// A datagram arrived on one of the app's UDP sockets.
    fn on_udp(
        &mut self,
        _os: &mut Os<'_, '_>,
        _sock: SocketId,
        _from: SocketAddrV4,
        _payload: &Payload,
    ) {
    }
    /// An ICMP message for the app: echo replies for its ping identifier, and errors about
    /// datagrams it sent (like Linux's IP_RECVERR).
    fn on_icmp(&mut self, _os: &mut Os<'_, '_>, _msg: &IcmpIn) {}
    /// Something happened on one of the app's TCP sockets (poll-style readiness).
    fn on_tcp(&mut self, _os: &mut Os<'_, '_>, _sock: TcpSocketId, _event: TcpEvent) {}
    /// A lookup started with [`Os::lookup`] finished (with the `token` it was given).
    fn on_resolved(&mut self, _os: &mut Os<'_, '_>, _token: u64, _result: &LookupResult) {}
    /// Another node claims `addr` on `iface`, which some app watches
    /// ([`Os::watch_address`]); told to every app.
    fn on_address_conflict(
        &mut self,
        _os: &mut Os<'_, '_>,
        _iface: u16,
        _addr: Ipv4Addr,
        _mac: MacAddr,
    ) {
    }
    /// The link on `iface` went down or came up; told to every app.
    fn on_carrier(&mut self, _os: &mut Os<'_, '_>, _iface: u16, _up: bool) {}
    /// The run ended (or the node crashed): record final measurements.
    fn finish(&mut self, _os: &mut Os<'_, '_>) {}
    /// Human-readable result lines (like the program's own output).
    fn report(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Builds an app; called at boot and again after the node restarts.
pub type AppFactory = Box<dyn Fn() -> Box<dyn App>>;

/// The node's facilities, as seen by one app.
pub struct Os<'a, 'b> {
    pub(crate) cx: &'a mut NodeCx<'b>,
    pub(crate) udp: &'a mut UdpTable,
    pub(crate) icmp_idents: &'a mut Vec<(u16, usize)>,
    pub(crate) tcp: &'a mut TcpStack,
    pub(crate) notices: &'a mut std::collections::VecDeque<crate::host::Notice>,
    pub(crate) dns_servers: &'a mut Vec<Ipv4Addr>,
    pub(crate) dns: &'a mut crate::dns::host::DnsShared,
    pub(crate) pktinfo: Option<PacketInfo>,
    pub(crate) app: usize,
    pub(crate) app_name: &'a str,
}

impl Os<'_, '_> {
    pub fn now(&self) -> SimTime {
        self.cx.now()
    }
    pub fn node_name(&self) -> &str {
        self.cx.node_name()
    }
    pub fn local_addr(&self) -> Option<Ipv4Addr> {
        self.cx.primary_addr()
    }
    /// Sets a timer; `token` (below 2^40) comes back in [`App::on_timer`].
    pub fn set_timer(&mut self, delay: SimDuration, token: u64) -> TimerHandle {
        let t = ((self.app as u64) << APP_TOKEN_BITS) | (token & ((1 << APP_TOKEN_BITS) - 1));
        self.cx.set_timer(delay, t)
    }
    pub fn cancel_timer(&mut self, h: TimerHandle) -> bool {
        self.cx.cancel_timer(h)
    }
    /// A random stream private to this app: keyed by the node, the app's name and
    /// `purpose`, so it does not change when other apps or nodes are added.
    pub fn rng(&self, purpose: &str) -> SimRng {
        self.cx.rng(&format!("app:{}:{purpose}", self.app_name))
    }
    /// The host's DNS servers, in order of preference (its resolv.conf `nameserver`s).
    pub fn dns_servers(&self) -> &[Ipv4Addr] {
        self.dns_servers
    }
    /// Replaces the host's DNS servers (a DHCP client does this when it gets a lease).
    pub fn set_dns_servers(&mut self, servers: &[Ipv4Addr]) {
        self.dns_servers.clear();
        self.dns_servers.extend_from_slice(servers);
    }
    /// Looks `name` up through the host's stub resolver (static host entries, then DNS
    /// through [`Os::dns_servers`] as they are now), like getaddrinfo(); the result comes
    /// back in [`App::on_resolved`] with `token`, never from inside this call. A dotted
    /// address resolves to itself.
    pub fn lookup(&mut self, name: &str, token: u64) {
        match name.parse::<Ipv4Addr>() {
            Ok(a) => self.dns.resolved.push_back((self.app, token, Ok(vec![a]))),
            Err(_) => self
                .dns
                .requests
                .push_back((self.app, token, name.to_string())),
        }
    }
    /// Adds to one of the node's DNS counters (reported per node in summary.json; the
    /// DNS server apps add theirs when they finish).
    pub fn dns_count(&mut self, counter: &'static str, n: u64) {
        self.dns.add(counter, n);
    }
    /// Emits a `dns` trace event from this node.
    pub fn trace_dns(&mut self, event: &'static str, fields: &[(&'static str, TraceValue)]) {
        self.cx.trace(Category::Dns, event, fields);
    }
    /// Resolves a node name or a dotted address.
    pub fn resolve(&self, name_or_addr: &str) -> Option<Ipv4Addr> {
        name_or_addr
            .parse()
            .ok()
            .or_else(|| self.cx.resolve_name(name_or_addr))
    }
    pub fn udp_bind(&mut self, port: Option<u16>) -> Result<SocketId, UdpError> {
        self.udp.bind(port, self.app).map(|(s, _)| s)
    }
    pub fn udp_port(&self, s: SocketId) -> Option<u16> {
        self.udp.port(s)
    }
    pub fn udp_close(&mut self, s: SocketId) {
        self.udp.close(s)
    }
    /// setsockopt(IP_TOS): the TOS byte (DSCP and ECN bits) of the socket's datagrams.
    pub fn udp_set_tos(&mut self, s: SocketId, tos: u8) -> Result<(), UdpError> {
        self.udp.set_tos(s, tos)
    }
    /// Sends a datagram; `ttl` overrides the node's default (traceroute uses it).
    pub fn udp_send(
        &mut self,
        s: SocketId,
        dst: SocketAddrV4,
        payload: Payload,
        ttl: Option<u8>,
    ) -> Result<(), AppSendError> {
        let (sport, tos) = self
            .udp
            .sending(s)
            .ok_or(AppSendError::Udp(UdpError::BadSocket))?;
        let pkt = udp::encode(sport, dst.port(), payload).map_err(AppSendError::Udp)?;
        let mut req = SendRequest::new(*dst.ip(), ip_proto::UDP, IpBody::Transport(pkt));
        req.ttl = ttl;
        req.tos = tos;
        self.cx.send(req).map_err(AppSendError::Ip)
    }
    /// Sends a datagram the way a raw or packet socket can: out of a given interface,
    /// from a given source address (0.0.0.0 included) and to a given link-layer address.
    pub fn udp_send_with(
        &mut self,
        s: SocketId,
        dst: SocketAddrV4,
        payload: Payload,
        opts: &UdpSendOptions,
    ) -> Result<(), AppSendError> {
        let (sport, tos) = self
            .udp
            .sending(s)
            .ok_or(AppSendError::Udp(UdpError::BadSocket))?;
        let pkt = udp::encode(sport, dst.port(), payload).map_err(AppSendError::Udp)?;
        let mut req = SendRequest::new(*dst.ip(), ip_proto::UDP, IpBody::Transport(pkt));
        req.tos = tos;
        req.iface = opts.iface;
        req.src = opts.src;
        req.link_dst = opts.link_dst;
        self.cx.send(req).map_err(AppSendError::Ip)
    }
    /// IP_PKTINFO of the datagram being delivered to [`App::on_udp`]: the interface it
    /// arrived on and the address it was sent to. `None` outside `on_udp`.
    pub fn udp_pktinfo(&self) -> Option<PacketInfo> {
        self.pktinfo
    }
    /// The node's interfaces (interface i is port i), as `ip addr` shows them.
    pub fn interfaces(&self) -> &[Iface] {
        self.cx.ip().ifaces()
    }
    /// `ip addr replace ADDR/LEN dev IFACE`: gives the interface an address and its
    /// connected route.
    pub fn configure_iface(
        &mut self,
        iface: u16,
        addr: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), AppSendError> {
        self.cx
            .configure_iface(iface, addr, prefix_len)
            .map_err(AppSendError::Ip)
    }
    /// `ip addr flush dev IFACE`.
    pub fn deconfigure_iface(&mut self, iface: u16) {
        self.cx.deconfigure_iface(iface)
    }
    /// `ip route replace PREFIX [via GATEWAY] dev IFACE`.
    pub fn set_route(&mut self, prefix: Prefix, iface: u16, gateway: Option<Ipv4Addr>) {
        self.cx.set_route(prefix, iface, gateway)
    }
    /// `ip route del PREFIX` (of a route added with [`Os::set_route`]).
    pub fn remove_route(&mut self, prefix: Prefix) -> bool {
        self.cx.remove_route(prefix)
    }
    /// Receive every datagram arriving on `iface`, whatever its destination address, as a
    /// packet socket does (a DHCP client before it has an address).
    pub fn set_receive_any(&mut self, iface: u16, on: bool) {
        self.cx.set_receive_any(iface, on)
    }
    /// Be told ([`App::on_address_conflict`]) when another node claims `addr` on `iface`.
    pub fn watch_address(&mut self, iface: u16, addr: Ipv4Addr, on: bool) {
        self.cx.watch_address(iface, addr, on)
    }
    /// Sends an ARP probe (RFC 5227) for `addr`, as `arping -D` does.
    pub fn arp_probe(&mut self, iface: u16, addr: Ipv4Addr) {
        self.cx.arp_probe(iface, addr)
    }
    /// Sends a gratuitous ARP announcing `addr`, as `arping -A` does.
    pub fn arp_announce(&mut self, iface: u16, addr: Ipv4Addr) {
        self.cx.arp_announce(iface, addr)
    }
    /// Adds to a named counter of this node in summary.json (`nodes[].metrics`).
    pub fn metric_add(&mut self, name: &'static str, v: f64) {
        self.cx.metric_add(name, v)
    }
    /// Sets a named gauge of this node.
    pub fn metric_set(&mut self, name: &'static str, v: f64) {
        self.cx.metric_set(name, v)
    }
    /// Raises a named high-water mark of this node.
    pub fn metric_max(&mut self, name: &'static str, v: f64) {
        self.cx.metric_max(name, v)
    }
    /// Is `cat` being traced?
    pub fn tracing(&self, cat: Category) -> bool {
        self.cx.tracing(cat)
    }
    /// Emits a trace event of category `cat` from this node (protocol apps such as DHCP
    /// trace under their own category).
    pub fn trace_in(
        &mut self,
        cat: Category,
        event: &'static str,
        fields: &[(&'static str, TraceValue)],
    ) {
        self.cx.trace(cat, event, fields);
    }
    /// Reserves an ICMP echo identifier for this app; echo replies carrying it come back
    /// through [`App::on_icmp`].
    pub fn icmp_ident(&mut self) -> u16 {
        let ident = 0x1000 + self.icmp_idents.len() as u16;
        self.icmp_idents.push((ident, self.app));
        ident
    }
    /// Sends an ICMP echo request.
    pub fn ping(
        &mut self,
        dst: Ipv4Addr,
        ident: u16,
        seq: u16,
        payload: Payload,
        ttl: Option<u8>,
    ) -> Result<(), AppSendError> {
        let mut req = SendRequest::new(
            dst,
            ip_proto::ICMP,
            IpBody::Icmp(IcmpMessage::EchoRequest {
                ident,
                seq,
                payload,
            }),
        );
        req.ttl = ttl;
        self.cx.send(req).map_err(AppSendError::Ip)
    }
    /// The statistics of a flow this app feeds.
    pub fn flow(&mut self, id: FlowId) -> Option<&mut FlowStats> {
        self.cx.flows().get_mut(id)
    }
    // ------------------------------------------------------------------ TCP

    /// socket(AF_INET, SOCK_STREAM).
    pub fn tcp_socket(&mut self) -> TcpSocketId {
        self.tcp.socket(self.app)
    }
    /// setsockopt(): changes the socket's options.
    pub fn tcp_set(&mut self, s: TcpSocketId, f: impl FnOnce(&mut SockOpts)) -> Result<(), Errno> {
        let (tcp, mut io) = self.tcp_io();
        tcp.set_opts(&mut io, s, f)
    }
    /// bind() to `port` on every local address (0 picks an ephemeral port).
    pub fn tcp_bind(&mut self, s: TcpSocketId, port: u16) -> Result<(), Errno> {
        self.tcp_bind_addr(s, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
    }
    pub fn tcp_bind_addr(&mut self, s: TcpSocketId, addr: SocketAddrV4) -> Result<(), Errno> {
        let (tcp, mut io) = self.tcp_io();
        tcp.bind(&mut io, s, addr)
    }
    pub fn tcp_listen(&mut self, s: TcpSocketId, backlog: u32) -> Result<(), Errno> {
        let (tcp, mut io) = self.tcp_io();
        tcp.listen(&mut io, s, backlog)
    }
    /// accept(): a new connection and its peer, or EAGAIN.
    pub fn tcp_accept(&mut self, s: TcpSocketId) -> Result<(TcpSocketId, SocketAddrV4), Errno> {
        let (tcp, mut io) = self.tcp_io();
        tcp.accept(&mut io, s)
    }
    /// connect() (non-blocking): [`TcpEvent::Connected`] or an error event follows.
    pub fn tcp_connect(&mut self, s: TcpSocketId, to: SocketAddrV4) -> Result<(), Errno> {
        let (tcp, mut io) = self.tcp_io();
        tcp.connect(&mut io, s, to)
    }
    /// send(): queues as much of `data` as the send buffer takes; EAGAIN when full
    /// ([`TcpEvent::Writable`] follows when space opens).
    pub fn tcp_send(&mut self, s: TcpSocketId, data: &Payload) -> Result<usize, Errno> {
        let (tcp, mut io) = self.tcp_io();
        tcp.send(&mut io, s, data)
    }
    /// recv(): appends up to `max` bytes (as payload pieces) to `out`; `Ok(0)` is end of
    /// stream, EAGAIN means nothing to read yet.
    pub fn tcp_recv(
        &mut self,
        s: TcpSocketId,
        max: usize,
        out: &mut Vec<Payload>,
    ) -> Result<usize, Errno> {
        let (tcp, mut io) = self.tcp_io();
        tcp.recv(&mut io, s, max, out)
    }
    /// recv() into real bytes (for small messages).
    pub fn tcp_read(&mut self, s: TcpSocketId, max: usize) -> Result<Vec<u8>, Errno> {
        let mut pieces = Vec::new();
        self.tcp_recv(s, max, &mut pieces)?;
        let mut out = Vec::new();
        for p in &pieces {
            p.write_to(&mut out);
        }
        Ok(out)
    }
    pub fn tcp_shutdown(&mut self, s: TcpSocketId, how: Shutdown) -> Result<(), Errno> {
        let (tcp, mut io) = self.tcp_io();
        tcp.shutdown(&mut io, s, how)
    }
    pub fn tcp_close(&mut self, s: TcpSocketId) -> Result<(), Errno> {
        let (tcp, mut io) = self.tcp_io();
        tcp.close(&mut io, s)
    }
    /// getsockopt(TCP_INFO).
    pub fn tcp_info(&self, s: TcpSocketId) -> Result<TcpInfo, Errno> {
        self.tcp.info(s)
    }
    /// The connection with this 4-tuple and its TCP_INFO, also after the app closed it (it
    /// may linger in FIN_WAIT_2, LAST_ACK or TIME_WAIT); `None` once the kernel has freed
    /// it. Like `ss -ti`: for final reports, not for the data path.
    pub fn tcp_find(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> Option<(TcpSocketId, TcpInfo)> {
        self.tcp
            .connections()
            .find(|(_, _, i)| i.local == local && i.remote == remote)
            .map(|(id, _, i)| (id, i))
    }
    /// Free space in the socket's send buffer.
    pub fn tcp_send_space(&self, s: TcpSocketId) -> Result<u64, Errno> {
        self.tcp.send_space(s)
    }

    /// Sends a hand-made TCP segment, bypassing the socket layer (a raw socket, as SYN
    /// flood tools use); `src` may be any address (spoofing).
    pub fn tcp_raw_send(
        &mut self,
        src: Option<Ipv4Addr>,
        dst: Ipv4Addr,
        segment: &crate::tcp::wire::TcpRepr,
        payload: Payload,
    ) -> Result<(), AppSendError> {
        let mut req =
            SendRequest::new(dst, ip_proto::TCP, IpBody::Transport(segment.emit(payload)));
        req.src = src;
        self.cx.send(req).map_err(AppSendError::Ip)
    }

    /// Emits an `app` trace event from this node.
    pub fn trace(&mut self, event: &'static str, fields: &[(&'static str, TraceValue)]) {
        self.cx.trace(Category::App, event, fields);
    }
}

impl<'b> Os<'_, 'b> {
    fn tcp_io(&mut self) -> (&mut TcpStack, crate::host::TcpIo<'_, 'b>) {
        (
            &mut *self.tcp,
            crate::host::TcpIo {
                cx: &mut *self.cx,
                notices: &mut *self.notices,
            },
        )
    }
}

/// How [`Os::udp_send_with`] sends (all `None`: as [`Os::udp_send`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpSendOptions {
    /// Out of this interface, whatever the routes say (SO_BINDTODEVICE).
    pub iface: Option<u16>,
    /// From this address (0.0.0.0 before the interface has one).
    pub src: Option<Ipv4Addr>,
    /// To this link-layer address, without ARP (needs `iface`).
    pub link_dst: Option<MacAddr>,
}

/// Where a received datagram arrived (IP_PKTINFO).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    pub iface: u16,
    pub dst: Ipv4Addr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppSendError {
    #[error(transparent)]
    Udp(UdpError),
    #[error(transparent)]
    Ip(SendError),
}

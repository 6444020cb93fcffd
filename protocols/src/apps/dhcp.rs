//! The DHCP apps: a client (dhclient), a server (dhcpd) and a relay agent (dhcrelay).
//!
//! Each adapts a state machine of `crate::dhcp` to [`Os`]: it owns the UDP socket, decodes
//! what arrives (counting and dropping anything malformed), turns the machine's actions
//! into sends, interface changes and ARP checks, keeps one timer at the machine's
//! deadline, and reports metrics (`dhcp.client.*`, `dhcp.server.*`, `dhcp.relay.*`) and
//! trace events (category `Dhcp`). The protocol logic lives in the state machines.

use crate::app::{App, Os, UdpSendOptions};
use crate::dhcp::client::{Action, BoundBy, Client, ClientConfig, Dest, Lease, Note};
use crate::dhcp::relay::{relay, ClientDest, Relay};
use crate::dhcp::server::{Arrival, Outcome, ReplyDest, Server, ServerConfig};
use crate::dhcp::{self, Message, Opcode, CLIENT_PORT, SERVER_PORT};
use crate::udp::SocketId;
use sim_core::packet::Payload;
use sim_core::route::Prefix;
use sim_core::sched::TimerHandle;
use sim_core::time::SimTime;
use sim_core::trace::{Category, TraceValue};
use std::borrow::Cow;
use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;

/// The client's lease file: it survives the node's crashes (like
/// /var/lib/dhcp/dhclient.leases on disk), so a rebooted client can ask for its address.
pub type LeaseFile = Rc<RefCell<Option<Lease>>>;

fn bytes(p: &Payload) -> Cow<'_, [u8]> {
    match p {
        Payload::Bytes(b) => Cow::Borrowed(b),
        other => {
            let mut v = Vec::with_capacity(other.len());
            other.write_to(&mut v);
            Cow::Owned(v)
        }
    }
}

/// Decodes a datagram, or counts and traces it as malformed (`<role>.malformed`).
fn decode_or_count(
    os: &mut Os<'_, '_>,
    payload: &Payload,
    from: SocketAddrV4,
    metric: &'static str,
) -> Option<Message> {
    match dhcp::decode(&bytes(payload)) {
        Ok(m) => Some(m),
        Err(e) => {
            os.metric_add(metric, 1.0);
            if os.tracing(Category::Dhcp) {
                os.trace_in(
                    Category::Dhcp,
                    "dhcp_malformed",
                    &[
                        ("src", (*from.ip()).into()),
                        ("reason", TraceValue::String(e.to_string())),
                    ],
                );
            }
            None
        }
    }
}

fn trace_message(
    os: &mut Os<'_, '_>,
    event: &'static str,
    role: &'static str,
    peer: Ipv4Addr,
    m: &Message,
) {
    if os.tracing(Category::Dhcp) {
        let peer_key = if event == "dhcp_send" { "dst" } else { "src" };
        os.trace_in(
            Category::Dhcp,
            event,
            &[
                ("role", role.into()),
                ("type", dhcp::type_name(dhcp::message_type(m)).into()),
                ("xid", m.xid().into()),
                (peer_key, peer.into()),
                ("yiaddr", m.yiaddr().into()),
                ("ciaddr", m.ciaddr().into()),
                ("giaddr", m.giaddr().into()),
            ],
        );
    }
}

/// Encodes and sends; a message dhcproto cannot encode is traced and dropped.
fn send(
    os: &mut Os<'_, '_>,
    sock: SocketId,
    role: &'static str,
    m: &Message,
    dst: SocketAddrV4,
    opts: &UdpSendOptions,
) {
    let Some(b) = dhcp::encode(m) else {
        os.trace_in(
            Category::Dhcp,
            "dhcp_encode_failed",
            &[("role", role.into())],
        );
        return;
    };
    trace_message(os, "dhcp_send", role, *dst.ip(), m);
    let _ = os.udp_send_with(sock, dst, Payload::bytes(&b), opts);
}

// ---------------------------------------------------------------------- client

#[derive(Clone)]
pub struct DhcpClientConfig {
    pub name: String,
    /// The interface to configure.
    pub iface: u16,
    pub lease_file: LeaseFile,
}

/// The DHCP client of one interface.
pub struct DhcpClient {
    cfg: DhcpClientConfig,
    core: Option<Client>,
    sock: Option<SocketId>,
    timer: Option<(SimTime, TimerHandle)>,
    out: Vec<Action>,
    error: Option<String>,
}

impl DhcpClient {
    pub fn new(cfg: DhcpClientConfig) -> Self {
        DhcpClient {
            cfg,
            core: None,
            sock: None,
            timer: None,
            out: Vec::new(),
            error: None,
        }
    }

    /// Carries out the core's actions, then keeps the timer at its deadline.
    fn apply(&mut self, os: &mut Os<'_, '_>) {
        let i = self.cfg.iface;
        for a in std::mem::take(&mut self.out) {
            match a {
                Action::Send { msg, to } => {
                    let Some(sock) = self.sock else { continue };
                    let (dst, opts) = match to {
                        Dest::Broadcast => (
                            Ipv4Addr::BROADCAST,
                            UdpSendOptions {
                                iface: Some(i),
                                ..Default::default()
                            },
                        ),
                        Dest::Unicast(s) => (s, UdpSendOptions::default()),
                    };
                    send(
                        os,
                        sock,
                        "client",
                        &msg,
                        SocketAddrV4::new(dst, SERVER_PORT),
                        &opts,
                    );
                }
                Action::Configure(l) => {
                    let _ = os.configure_iface(i, l.addr, l.prefix_len);
                    let default = Prefix::new(Ipv4Addr::UNSPECIFIED, 0);
                    match l.router {
                        Some(r) => os.set_route(default, i, Some(r)),
                        None => {
                            os.remove_route(default);
                        }
                    }
                    os.set_dns_servers(&l.dns);
                }
                Action::Deconfigure => {
                    os.remove_route(Prefix::new(Ipv4Addr::UNSPECIFIED, 0));
                    os.deconfigure_iface(i);
                }
                Action::ReceiveAny(on) => os.set_receive_any(i, on),
                Action::Probe(addr) => {
                    os.watch_address(i, addr, true);
                    os.arp_probe(i, addr);
                }
                Action::Unwatch(addr) => os.watch_address(i, addr, false),
                Action::Announce(addr) => os.arp_announce(i, addr),
                Action::Save(l) => *self.cfg.lease_file.borrow_mut() = l,
                Action::Note(n) => self.note(os, n),
            }
        }
        let want = self.core.as_ref().and_then(|c| c.deadline());
        if want != self.timer.map(|(t, _)| t) {
            if let Some((_, h)) = self.timer.take() {
                os.cancel_timer(h);
            }
            if let Some(at) = want {
                let now = os.now();
                let delay = at.saturating_since(now);
                self.timer = Some((at, os.set_timer(delay, 0)));
            }
        }
    }

    fn note(&mut self, os: &mut Os<'_, '_>, n: Note) {
        match n {
            Note::Bound(how) => {
                let (metric, name) = match how {
                    BoundBy::Acquired { elapsed } => {
                        let s = elapsed.as_secs_f64();
                        os.metric_set("dhcp.client.time_to_lease_s", s);
                        os.metric_max("dhcp.client.time_to_lease_max_s", s);
                        ("dhcp.client.leases", "acquired")
                    }
                    BoundBy::Renewed => ("dhcp.client.renewals", "renewed"),
                    BoundBy::Rebound => ("dhcp.client.rebinds", "rebound"),
                };
                os.metric_add(metric, 1.0);
                let lease = self.core.as_ref().and_then(|c| c.lease()).cloned();
                if let (Some(l), true) = (lease, os.tracing(Category::Dhcp)) {
                    os.trace_in(
                        Category::Dhcp,
                        "dhcp_bound",
                        &[
                            ("how", name.into()),
                            ("addr", l.addr.into()),
                            ("prefix_len", l.prefix_len.into()),
                            ("router", l.router.unwrap_or(Ipv4Addr::UNSPECIFIED).into()),
                            ("server", l.server.into()),
                            ("lease_s", l.lease.as_secs_f64().into()),
                        ],
                    );
                }
            }
            Note::Declined(addr) => {
                os.metric_add("dhcp.client.declines", 1.0);
                os.trace_in(Category::Dhcp, "dhcp_declined", &[("addr", addr.into())]);
            }
            Note::Nak => {
                os.metric_add("dhcp.client.naks", 1.0);
                os.trace_in(Category::Dhcp, "dhcp_nak", &[]);
            }
            Note::Expired(addr) => {
                os.metric_add("dhcp.client.expiries", 1.0);
                os.trace_in(Category::Dhcp, "dhcp_expired", &[("addr", addr.into())]);
            }
            Note::Ignored => os.metric_add("dhcp.client.ignored", 1.0),
        }
    }
}

impl App for DhcpClient {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn start(&mut self, os: &mut Os<'_, '_>) {
        let Some(mac) = os.interfaces().get(self.cfg.iface as usize).map(|f| f.mac) else {
            self.error = Some(format!("no interface {}", self.cfg.iface));
            return;
        };
        match os.udp_bind(Some(CLIENT_PORT)) {
            Ok(s) => self.sock = Some(s),
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        }
        let cfg = ClientConfig::new(mac, os.node_name());
        let mut core = Client::new(cfg, os.rng("xid-and-backoff"));
        let saved = self.cfg.lease_file.borrow().clone();
        core.start(os.now(), saved, &mut self.out);
        self.core = Some(core);
        self.apply(os);
    }

    fn on_timer(&mut self, os: &mut Os<'_, '_>, _token: u64) {
        self.timer = None;
        if let Some(c) = self.core.as_mut() {
            c.on_timer(os.now(), &mut self.out);
        }
        self.apply(os);
    }

    fn on_udp(&mut self, os: &mut Os<'_, '_>, _s: SocketId, from: SocketAddrV4, payload: &Payload) {
        if os.udp_pktinfo().is_some_and(|p| p.iface != self.cfg.iface) {
            return;
        }
        let Some(m) = decode_or_count(os, payload, from, "dhcp.client.malformed") else {
            return;
        };
        trace_message(os, "dhcp_recv", "client", *from.ip(), &m);
        if let Some(c) = self.core.as_mut() {
            c.on_message(os.now(), &m, &mut self.out);
        }
        self.apply(os);
    }

    fn on_address_conflict(
        &mut self,
        os: &mut Os<'_, '_>,
        iface: u16,
        addr: Ipv4Addr,
        _mac: sim_core::packet::MacAddr,
    ) {
        if iface != self.cfg.iface {
            return;
        }
        if let Some(c) = self.core.as_mut() {
            c.on_conflict(os.now(), addr, &mut self.out);
        }
        self.apply(os);
    }

    fn on_carrier(&mut self, os: &mut Os<'_, '_>, iface: u16, up: bool) {
        if iface != self.cfg.iface {
            return;
        }
        if let Some(c) = self.core.as_mut() {
            c.on_carrier(os.now(), up, &mut self.out);
        }
        self.apply(os);
    }

    fn report(&self) -> Vec<String> {
        if let Some(e) = &self.error {
            return vec![format!("dhcp client: {e}")];
        }
        let Some(c) = &self.core else {
            return Vec::new();
        };
        match c.lease() {
            Some(l) => vec![format!(
                "bound {}/{} via {} (server {}, lease {} s)",
                l.addr,
                l.prefix_len,
                l.router.map_or("none".to_string(), |r| r.to_string()),
                l.server,
                l.lease.as_secs_f64()
            )],
            None => vec![format!("no lease ({})", c.state().name())],
        }
    }
}

// ---------------------------------------------------------------------- server

#[derive(Clone, Debug, PartialEq)]
pub struct DhcpServerConfig {
    pub name: String,
    pub server: ServerConfig,
}

/// The server's bindings: they survive the node's crashes, as dhcpd.leases on disk does.
pub type LeaseDb = Rc<RefCell<Server>>;

/// A new lease database for a server with `cfg`.
pub fn lease_db(cfg: ServerConfig) -> LeaseDb {
    Rc::new(RefCell::new(Server::new(cfg)))
}

/// A DHCP server.
pub struct DhcpServer {
    name: String,
    core: LeaseDb,
    sock: Option<SocketId>,
    error: Option<String>,
}

impl DhcpServer {
    pub fn new(name: &str, db: LeaseDb) -> Self {
        DhcpServer {
            name: name.to_string(),
            core: db,
            sock: None,
            error: None,
        }
    }

    fn update_pool_gauges(&self, os: &mut Os<'_, '_>) {
        let used = self.core.borrow().leased(os.now()) as f64;
        os.metric_set("dhcp.server.pool_in_use", used);
        os.metric_max("dhcp.server.pool_in_use_max", used);
    }
}

impl App for DhcpServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn start(&mut self, os: &mut Os<'_, '_>) {
        match os.udp_bind(Some(SERVER_PORT)) {
            Ok(s) => self.sock = Some(s),
            Err(e) => self.error = Some(e.to_string()),
        }
        os.metric_set(
            "dhcp.server.pool_size",
            self.core.borrow().pool_size() as f64,
        );
        self.update_pool_gauges(os);
    }

    fn on_udp(
        &mut self,
        os: &mut Os<'_, '_>,
        sock: SocketId,
        from: SocketAddrV4,
        payload: &Payload,
    ) {
        let Some(info) = os.udp_pktinfo() else { return };
        let Some(ifc) = os.interfaces().get(info.iface as usize).cloned() else {
            return;
        };
        let Some(m) = decode_or_count(os, payload, from, "dhcp.server.malformed") else {
            return;
        };
        trace_message(os, "dhcp_recv", "server", *from.ip(), &m);
        let server_id = if ifc.is_configured()
            && info.dst != Ipv4Addr::BROADCAST
            && info.dst != ifc.prefix.broadcast()
        {
            info.dst
        } else {
            ifc.addr
        };
        let at = Arrival {
            server_id,
            subnet: ifc.prefix,
        };
        let (outcome, reply) = self.core.borrow_mut().handle(os.now(), &m, at);
        let metric = match outcome {
            Outcome::Offered(_) => Some("dhcp.server.offers"),
            Outcome::Acked(_) => Some("dhcp.server.acks"),
            Outcome::Nakked => Some("dhcp.server.naks"),
            Outcome::Withdrawn(_) => Some("dhcp.server.withdrawn"),
            Outcome::Declined(_) => Some("dhcp.server.declines"),
            Outcome::Released(_) => Some("dhcp.server.releases"),
            Outcome::Exhausted => Some("dhcp.server.exhausted"),
            Outcome::Silent => None,
        };
        if let Some(k) = metric {
            os.metric_add(k, 1.0);
        }
        match outcome {
            Outcome::Withdrawn(a) | Outcome::Declined(a) => {
                let ev = if matches!(outcome, Outcome::Withdrawn(_)) {
                    "dhcp_withdrawn"
                } else {
                    "dhcp_declined"
                };
                os.trace_in(Category::Dhcp, ev, &[("addr", a.into())]);
            }
            Outcome::Exhausted => os.trace_in(Category::Dhcp, "dhcp_exhausted", &[]),
            _ => {}
        }
        self.update_pool_gauges(os);
        let Some(r) = reply else { return };
        let (dst, opts) = match r.to {
            ReplyDest::Relay(g) => (SocketAddrV4::new(g, SERVER_PORT), UdpSendOptions::default()),
            ReplyDest::Unicast(a) => (SocketAddrV4::new(a, CLIENT_PORT), UdpSendOptions::default()),
            ReplyDest::Broadcast => (
                SocketAddrV4::new(Ipv4Addr::BROADCAST, CLIENT_PORT),
                UdpSendOptions {
                    iface: Some(info.iface),
                    src: Some(server_id),
                    link_dst: None,
                },
            ),
            ReplyDest::Link { addr, mac } => (
                SocketAddrV4::new(addr, CLIENT_PORT),
                UdpSendOptions {
                    iface: Some(info.iface),
                    src: Some(server_id),
                    link_dst: Some(mac),
                },
            ),
        };
        send(os, sock, "server", &r.msg, dst, &opts);
    }

    fn finish(&mut self, os: &mut Os<'_, '_>) {
        self.update_pool_gauges(os);
    }

    fn report(&self) -> Vec<String> {
        if let Some(e) = &self.error {
            return vec![format!("dhcp server: bind failed: {e}")];
        }
        let core = self.core.borrow();
        let c = &core.counters;
        vec![format!(
            "{} discovers, {} requests: {} offers, {} acks, {} naks, {} declines, {} withdrawn; pool of {}",
            c.discovers,
            c.requests,
            c.offers,
            c.acks,
            c.naks,
            c.declines,
            c.withdrawn,
            core.pool_size()
        )]
    }
}

// ---------------------------------------------------------------------- relay

#[derive(Clone, Debug, PartialEq)]
pub struct DhcpRelayConfig {
    pub name: String,
    /// The servers requests are forwarded to.
    pub servers: Vec<Ipv4Addr>,
}

/// A DHCP relay agent (on a router).
pub struct DhcpRelay {
    cfg: DhcpRelayConfig,
    sock: Option<SocketId>,
    forwarded: u64,
    error: Option<String>,
}

impl DhcpRelay {
    pub fn new(cfg: DhcpRelayConfig) -> Self {
        DhcpRelay {
            cfg,
            sock: None,
            forwarded: 0,
            error: None,
        }
    }
}

impl App for DhcpRelay {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn start(&mut self, os: &mut Os<'_, '_>) {
        match os.udp_bind(Some(SERVER_PORT)) {
            Ok(s) => self.sock = Some(s),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn on_udp(
        &mut self,
        os: &mut Os<'_, '_>,
        sock: SocketId,
        from: SocketAddrV4,
        payload: &Payload,
    ) {
        let Some(info) = os.udp_pktinfo() else { return };
        let local: Vec<Ipv4Addr> = os.interfaces().iter().map(|f| f.addr).collect();
        let Some(ifc) = os.interfaces().get(info.iface as usize).cloned() else {
            return;
        };
        let Some(m) = decode_or_count(os, payload, from, "dhcp.relay.malformed") else {
            return;
        };
        trace_message(os, "dhcp_recv", "relay", *from.ip(), &m);
        // A server on the arrival network hears the client itself.
        if m.opcode() == Opcode::BootRequest
            && self
                .cfg
                .servers
                .iter()
                .any(|s| ifc.is_configured() && ifc.prefix.contains(*s))
        {
            return;
        }
        match relay(m, ifc.addr, &local) {
            Relay::ToServers(m) => {
                for &s in &self.cfg.servers {
                    send(
                        os,
                        sock,
                        "relay",
                        &m,
                        SocketAddrV4::new(s, SERVER_PORT),
                        &UdpSendOptions::default(),
                    );
                    os.metric_add("dhcp.relay.to_server", 1.0);
                }
                self.forwarded += 1;
            }
            Relay::ToClient { msg, iface, to } => {
                let (dst, link_dst) = match to {
                    ClientDest::Broadcast => (Ipv4Addr::BROADCAST, None),
                    ClientDest::Link { addr, mac } => (addr, Some(mac)),
                };
                let opts = UdpSendOptions {
                    iface: Some(iface),
                    src: Some(msg.giaddr()),
                    link_dst,
                };
                send(
                    os,
                    sock,
                    "relay",
                    &msg,
                    SocketAddrV4::new(dst, CLIENT_PORT),
                    &opts,
                );
                os.metric_add("dhcp.relay.to_client", 1.0);
                self.forwarded += 1;
            }
            Relay::Drop(reason) => {
                os.metric_add("dhcp.relay.dropped", 1.0);
                os.trace_in(
                    Category::Dhcp,
                    "dhcp_relay_drop",
                    &[("reason", reason.into())],
                );
            }
        }
    }

    fn report(&self) -> Vec<String> {
        match &self.error {
            Some(e) => vec![format!("dhcp relay: bind failed: {e}")],
            None => vec![format!(
                "relayed {} messages (servers {})",
                self.forwarded,
                self.cfg
                    .servers
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        }
    }
}

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

use crate::udp::{self, SocketId, UdpError, UdpTable};
use sim_core::ip::{IcmpIn, SendError, SendRequest};
use sim_core::metrics::{FlowId, FlowStats};
use sim_core::packet::{ip_proto, IcmpMessage, IpBody, Payload};
use sim_core::rng::SimRng;
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
    pub(crate) app: usize,
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
    /// A random stream private to this app.
    pub fn rng(&self, purpose: &str) -> SimRng {
        self.cx.rng(purpose)
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
    /// Sends a datagram; `ttl` overrides the node's default (traceroute uses it).
    pub fn udp_send(
        &mut self,
        s: SocketId,
        dst: SocketAddrV4,
        payload: Payload,
        ttl: Option<u8>,
    ) -> Result<(), AppSendError> {
        let sport = self
            .udp
            .port(s)
            .ok_or(AppSendError::Udp(UdpError::BadSocket))?;
        let pkt = udp::encode(sport, dst.port(), payload).map_err(AppSendError::Udp)?;
        let mut req = SendRequest::new(*dst.ip(), ip_proto::UDP, IpBody::Transport(pkt));
        req.ttl = ttl;
        self.cx.send(req).map_err(AppSendError::Ip)
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
    /// Emits an `app` trace event from this node.
    pub fn trace(&mut self, event: &'static str, fields: &[(&'static str, TraceValue)]) {
        self.cx.trace(Category::App, event, fields);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppSendError {
    #[error(transparent)]
    Udp(UdpError),
    #[error(transparent)]
    Ip(SendError),
}

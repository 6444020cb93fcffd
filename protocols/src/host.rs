//! The stack of one host or router: sockets plus apps, behind sim-core's `Stack` trait.
//!
//! Owns dispatch: timers to the app that set them, datagrams to the socket's owner, ICMP
//! echo replies to the app holding the identifier, ICMP errors to the app whose socket sent
//! the offending datagram. Datagrams to a port nobody listens on get ICMP port unreachable.

use crate::app::{App, AppFactory, Os, APP_TOKEN_BITS};
use crate::udp::{self, UdpTable};
use sim_core::ip::{IcmpError, IcmpIn, SendRequest, Upcall};
use sim_core::packet::{ip_proto, IcmpMessage, IpBody, Ipv4Packet, UnreachableCode};
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::Category;
use sim_core::world::{NodeCx, Stack, StackReport};
use std::net::SocketAddrV4;

/// An app and when it starts (time since the run began).
pub struct AppSlot {
    pub start: SimTime,
    pub factory: AppFactory,
}

/// Stack timer tokens with this app index are the stack's own (app start times).
const START_TIMER_APP: u64 = (1 << (63 - APP_TOKEN_BITS)) - 1;

pub struct HostStack {
    slots: std::rc::Rc<Vec<AppSlot>>,
    apps: Vec<Option<Box<dyn App>>>,
    udp: Option<UdpTable>,
    icmp_idents: Vec<(u16, usize)>,
    reports: Vec<StackReport>,
}

impl HostStack {
    /// A stack that runs `slots`' apps; shared so a restart can build them again.
    pub fn new(slots: std::rc::Rc<Vec<AppSlot>>) -> Self {
        HostStack {
            slots,
            apps: Vec::new(),
            udp: None,
            icmp_idents: Vec::new(),
            reports: Vec::new(),
        }
    }

    fn with_app(
        &mut self,
        cx: &mut NodeCx<'_>,
        app: usize,
        f: impl FnOnce(&mut dyn App, &mut Os<'_, '_>),
    ) {
        let Some(udp) = self.udp.as_mut() else { return };
        let Some(Some(a)) = self.apps.get_mut(app) else {
            return;
        };
        let mut os = Os {
            cx,
            udp,
            icmp_idents: &mut self.icmp_idents,
            app,
        };
        f(a.as_mut(), &mut os);
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
                self.with_app(cx, app, |a, os| a.on_udp(os, sock, from, &payload));
            }
            None => {
                if let Some(u) = self.udp.as_mut() {
                    u.no_port += 1;
                }
                let is_broadcast =
                    d.dst == std::net::Ipv4Addr::BROADCAST || !cx.ip().is_local(d.dst);
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

// IcmpError and Ipv4Packet are re-exported for apps that build their own errors.
#[allow(unused_imports)]
use {IcmpError as _, Ipv4Packet as _};

impl Stack for HostStack {
    fn boot(&mut self, cx: &mut NodeCx<'_>) {
        let mut rng = cx.rng("udp-ephemeral");
        self.udp = Some(UdpTable::new(&mut rng));
        self.icmp_idents.clear();
        self.apps = self.slots.iter().map(|s| Some((s.factory)())).collect();
        let now = cx.now();
        for (i, s) in self.slots.iter().enumerate() {
            let delay = if s.start > now {
                s.start - now
            } else {
                SimDuration::ZERO
            };
            cx.set_timer(delay, (START_TIMER_APP << APP_TOKEN_BITS) | i as u64);
        }
    }

    fn on_timer(&mut self, cx: &mut NodeCx<'_>, token: u64) {
        let app = (token >> APP_TOKEN_BITS) as usize;
        let app_token = token & ((1 << APP_TOKEN_BITS) - 1);
        if app as u64 == START_TIMER_APP {
            let i = app_token as usize;
            self.with_app(cx, i, |a, os| a.start(os));
        } else {
            self.with_app(cx, app, |a, os| a.on_timer(os, app_token));
        }
    }

    fn on_upcall(&mut self, cx: &mut NodeCx<'_>, upcall: Upcall) {
        match upcall {
            Upcall::Datagram(d) if d.protocol == ip_proto::UDP => self.deliver_udp(cx, d),
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
        }
    }

    fn finish(&mut self, cx: &mut NodeCx<'_>) {
        for i in 0..self.apps.len() {
            self.with_app(cx, i, |a, os| a.finish(os));
        }
        let name = cx.node_name().to_string();
        for a in self.apps.iter().flatten() {
            let lines = a.report();
            if !lines.is_empty() {
                self.reports.push(StackReport {
                    app: a.name().to_string(),
                    lines,
                });
            }
        }
        let _ = name;
    }

    fn report(&self) -> Vec<StackReport> {
        self.reports.clone()
    }
}

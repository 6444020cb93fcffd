//! The gossip app: one member of a gossip group, a [`GossipNode`] on a UDP socket.
//!
//! Owns the member's socket, its round and anti-entropy timers, the birth of the rumors
//! it originates, the translation between member indices and addresses, and its entries
//! in the group's [`GossipLog`]. The protocol itself is [`crate::gossip`].
//!
//! Timing: every member ticks at start + j * period (the same instants on every member,
//! as if their clocks were synchronised), so rounds are synchronous; a member that
//! restarts after a crash comes back with no rumors and ticks at the next such instant.
//! Anti-entropy runs every `anti_entropy` on each member, at a phase drawn at random when
//! the member starts, so exchanges spread over the period. A rumor is born at its time on
//! its origin, if the origin is up then (not if it restarts later).
//!
//! With membership (SWIM, [`crate::gossip::swim`]), each member also probes one member per
//! protocol period, at a random phase, and stops gossiping to members it believes dead.
//!
//! Every datagram on the port is decoded; one that is not a valid message is counted
//! (`malformed`), traced and dropped. The app prints nothing unless it could not bind its
//! port: what the group did is in the log.

use crate::app::{App, Os};
use crate::gossip::{
    decode, encode, encode_swim, Dest, Effects, GossipConfig, GossipNode, Message, Packet, Peers,
    RumorPlan, SharedLog, Status, Swim, SwimConfig, SwimEffects, SwimMessage,
};
use crate::udp::SocketId;
use sim_core::packet::{pattern_byte, Payload};
use sim_core::rng::SimRng;
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::Category;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;

/// What every member of one gossip app shares.
#[derive(Debug)]
pub struct GossipGroup {
    pub name: String,
    pub port: u16,
    /// Every member's address; a member's index is its position.
    pub members: Vec<Ipv4Addr>,
    pub protocol: GossipConfig,
    /// The first tick (T_0).
    pub start: SimTime,
    pub period: SimDuration,
    pub anti_entropy: Option<SimDuration>,
    /// The rumors; a rumor's id is its index.
    pub rumors: Vec<RumorPlan>,
    /// SWIM membership, if the members run it.
    pub membership: Option<Membership>,
    pub log: SharedLog,
}

/// How the members run SWIM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    pub swim: SwimConfig,
    /// A protocol period: one probe each.
    pub probe_period: SimDuration,
    /// How long a direct ping has before the indirect ones go out.
    pub probe_timeout: SimDuration,
}

const TICK: u64 = 0;
const ANTI_ENTROPY: u64 = 1;
const PROBE: u64 = 2;
const PROBE_TIMEOUT: u64 = 3;
/// Tokens from this one on are rumor births (token - BIRTH = rumor id).
const BIRTH: u64 = 4;

/// One member.
pub struct GossipApp {
    group: Rc<GossipGroup>,
    me: u32,
    node: GossipNode,
    swim: Option<Swim>,
    sfx: SwimEffects,
    sock: Option<SocketId>,
    rng: Option<SimRng>,
    fx: Effects,
    buf: Vec<u8>,
    /// When this incarnation started: rumors due before are not this one's to start.
    started: SimTime,
    /// The rumors this member originates, and whether each is born yet.
    mine: Vec<(u32, bool)>,
    send_errors: u64,
    error: Option<String>,
}

impl GossipApp {
    /// Member `me` of `group`.
    pub fn new(group: Rc<GossipGroup>, me: u32) -> Self {
        let peers = Peers::All {
            members: group.members.len() as u32,
        };
        let mine = (0..group.rumors.len() as u32)
            .filter(|&r| group.rumors[r as usize].origin == me)
            .map(|r| (r, false))
            .collect();
        GossipApp {
            node: GossipNode::new(group.protocol, me, peers),
            swim: None,
            sfx: SwimEffects::default(),
            group,
            me,
            sock: None,
            rng: None,
            fx: Effects::default(),
            buf: Vec::new(),
            started: SimTime::ZERO,
            mine,
            send_errors: 0,
            error: None,
        }
    }

    fn round(&self, now: SimTime) -> u64 {
        self.group.log.borrow().round_of(now)
    }

    /// Starts the rumors of this member that are due.
    fn originate_due(&mut self, os: &mut Os<'_, '_>) {
        let now = os.now();
        for (id, born) in self.mine.iter_mut() {
            let plan = self.group.rumors[*id as usize];
            if *born || plan.at > now || plan.at < self.started {
                continue;
            }
            *born = true;
            let value = (0..plan.size)
                .map(|i| pattern_byte(u64::from(*id), u64::from(i)))
                .collect();
            if self.node.originate(*id, value) {
                let mut log = self.group.log.borrow_mut();
                log.born(*id, now);
                log.informed(self.me, *id, now);
            }
        }
    }

    /// Sends what the node asked for; `sender` answers the message being handled.
    fn flush(&mut self, os: &mut Os<'_, '_>, sender: Option<SocketAddrV4>) {
        let now = os.now();
        let round = self.round(now);
        for (id, via) in self.fx.learned.drain(..) {
            self.group.log.borrow_mut().informed(self.me, id, now);
            if os.tracing(Category::App) {
                os.trace(
                    "gossip_informed",
                    &[
                        ("app", self.group.name.clone().into()),
                        ("rumor", id.into()),
                        ("round", round.into()),
                        ("via", via.name().into()),
                    ],
                );
            }
        }
        let sends = std::mem::take(&mut self.fx.sends);
        for (dest, m) in &sends {
            if encode(m, &mut self.buf).is_ok() {
                self.transmit(os, *dest, sender, false);
            } else {
                self.send_errors += 1;
            }
        }
        self.fx.sends = sends;
        self.fx.sends.clear();
    }

    /// Sends the encoded message in `buf` to `dest` (`sender` answers the message being
    /// handled) and logs it.
    fn transmit(
        &mut self,
        os: &mut Os<'_, '_>,
        dest: Dest,
        sender: Option<SocketAddrV4>,
        membership: bool,
    ) {
        let to = match dest {
            Dest::Peer(p) => self
                .group
                .members
                .get(p as usize)
                .map(|a| SocketAddrV4::new(*a, self.group.port)),
            Dest::Sender => sender,
        };
        let (Some(sock), Some(to)) = (self.sock, to) else {
            return;
        };
        {
            let mut log = self.group.log.borrow_mut();
            log.sent(self.me, os.now(), self.buf.len());
            if membership {
                log.membership_sent();
            }
        }
        if os
            .udp_send(sock, to, Payload::bytes(&self.buf), None)
            .is_err()
        {
            self.send_errors += 1;
        }
    }

    /// Applies membership changes to the gossip peers and the log, and sends what SWIM
    /// asked for.
    fn flush_swim(&mut self, os: &mut Os<'_, '_>, sender: Option<SocketAddrV4>) {
        let now = os.now();
        for (member, status) in self.sfx.changes.drain(..) {
            self.node.set_reachable(member, status != Status::Dead);
            self.group
                .log
                .borrow_mut()
                .view_changed(self.me, member, status, now);
            if os.tracing(Category::App) {
                let addr = self.group.members.get(member as usize).copied();
                os.trace(
                    "gossip_member",
                    &[
                        ("app", self.group.name.clone().into()),
                        ("member", member.into()),
                        ("addr", addr.unwrap_or(Ipv4Addr::UNSPECIFIED).into()),
                        ("status", status.name().into()),
                    ],
                );
            }
        }
        let sends = std::mem::take(&mut self.sfx.sends);
        for (dest, m) in &sends {
            if encode_swim(m, &mut self.buf).is_ok() {
                self.transmit(os, *dest, sender, true);
            } else {
                self.send_errors += 1;
            }
        }
        self.sfx.sends = sends;
        self.sfx.sends.clear();
    }

    fn handle_swim(&mut self, os: &mut Os<'_, '_>, from: SocketAddrV4, m: SwimMessage) {
        self.group.log.borrow_mut().received(self.me);
        if let Some(swim) = self.swim.as_mut() {
            swim.receive(os.now(), m, &mut self.sfx);
            self.flush_swim(os, Some(from));
        }
    }

    fn handle(&mut self, os: &mut Os<'_, '_>, from: SocketAddrV4, m: Message) {
        self.group.log.borrow_mut().received(self.me);
        if let Some(rng) = self.rng.as_mut() {
            self.node.receive(m, rng, &mut self.fx);
        }
        self.flush(os, Some(from));
    }
}

impl App for GossipApp {
    fn name(&self) -> &str {
        &self.group.name
    }

    fn start(&mut self, os: &mut Os<'_, '_>) {
        let now = os.now();
        self.started = now;
        match os.udp_bind(Some(self.group.port)) {
            Ok(s) => self.sock = Some(s),
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        }
        // Keyed by the start time too: a member that restarts draws new peers, not the
        // ones of its first life again.
        let mut rng = os.rng(&format!("gossip@{}", now.as_nanos()));
        self.group.log.borrow_mut().member_up(self.me, now);
        // Births first: a rumor due at a tick is spread by that tick.
        for (id, _) in &self.mine {
            let at = self.group.rumors[*id as usize].at;
            if at >= now {
                os.set_timer(at - now, BIRTH + u64::from(*id));
            }
        }
        let next = self.group.log.borrow().next_tick(now);
        os.set_timer(next - now, TICK);
        if let Some(ae) = self.group.anti_entropy {
            let phase = SimDuration::from_nanos(rng.below(ae.as_nanos().max(1)));
            os.set_timer(phase, ANTI_ENTROPY);
        }
        if let Some(m) = self.group.membership {
            // The start time in milliseconds: a restarted member is a newer incarnation.
            let incarnation = (now.as_nanos() / 1_000_000).min(u64::from(u32::MAX)) as u32;
            self.swim = Some(Swim::new(
                m.swim,
                self.me,
                self.group.members.len() as u32,
                incarnation,
            ));
            let phase = SimDuration::from_nanos(rng.below(m.probe_period.as_nanos().max(1)));
            os.set_timer(phase, PROBE);
        }
        self.rng = Some(rng);
    }

    fn on_timer(&mut self, os: &mut Os<'_, '_>, token: u64) {
        self.originate_due(os);
        let Some(rng) = self.rng.as_mut() else { return };
        match token {
            TICK => {
                self.node.tick(rng, &mut self.fx);
                os.set_timer(self.group.period, TICK);
            }
            ANTI_ENTROPY => {
                self.node.anti_entropy(rng, &mut self.fx);
                if let Some(ae) = self.group.anti_entropy {
                    os.set_timer(ae, ANTI_ENTROPY);
                }
            }
            PROBE | PROBE_TIMEOUT => {
                let (Some(swim), Some(m)) = (self.swim.as_mut(), self.group.membership) else {
                    return;
                };
                if token == PROBE {
                    swim.period(os.now(), rng, &mut self.sfx);
                    os.set_timer(m.probe_timeout, PROBE_TIMEOUT);
                    os.set_timer(m.probe_period, PROBE);
                } else {
                    swim.probe_timeout(rng, &mut self.sfx);
                }
                self.flush_swim(os, None);
                return;
            }
            _ => {}
        }
        self.flush(os, None);
    }

    fn on_udp(
        &mut self,
        os: &mut Os<'_, '_>,
        _sock: SocketId,
        from: SocketAddrV4,
        payload: &Payload,
    ) {
        let decoded = match payload {
            Payload::Bytes(b) => decode(b),
            other => {
                let mut bytes = Vec::with_capacity(other.len());
                other.write_to(&mut bytes);
                decode(&bytes)
            }
        };
        match decoded {
            Ok(Packet::Gossip(m)) => self.handle(os, from, m),
            Ok(Packet::Swim(m)) => self.handle_swim(os, from, m),
            Err(e) => {
                self.group.log.borrow_mut().malformed(self.me);
                if os.tracing(Category::App) {
                    os.trace(
                        "gossip_malformed",
                        &[
                            ("app", self.group.name.clone().into()),
                            ("src", (*from.ip()).into()),
                            ("error", e.to_string().into()),
                        ],
                    );
                }
            }
        }
    }

    fn finish(&mut self, os: &mut Os<'_, '_>) {
        if self.sock.is_some() {
            self.group.log.borrow_mut().member_down(self.me, os.now());
        }
    }

    fn report(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(e) = &self.error {
            v.push(format!(
                "gossip on port {}: bind failed: {e}",
                self.group.port
            ));
        }
        if self.send_errors > 0 {
            v.push(format!("gossip: {} send errors", self.send_errors));
        }
        v
    }
}

//! SWIM membership (Das, Gupta and Motivala, "SWIM: Scalable Weakly-consistent
//! Infection-style Process Group Membership Protocol", DSN 2002) as a state machine:
//! failure detection by direct and indirect probes, suspicion, and infection-style
//! dissemination of membership updates piggybacked on the probes.
//!
//! Owns one member's view of the others (alive, suspect or dead, with incarnation
//! numbers) and its probe in progress. Like [`super::node`], it never sees sockets,
//! addresses or timers: the caller starts each protocol period ([`Swim::period`]), calls
//! [`Swim::probe_timeout`] when the direct probe's time is up, hands it every membership
//! message with the current time ([`Swim::receive`]), and sends what it asks for.
//!
//! - Each period the member pings one random member it does not believe dead. If no ACK
//!   came by the probe timeout, it asks `indirect` other members to ping the target for it
//!   (PING_REQ); they relay the target's ACK. If the period ends without an ACK, the target
//!   becomes *suspect*.
//! - A suspect not cleared within `suspicion` is declared *dead*. A member that hears it
//!   is suspected (or declared dead) at its current incarnation refutes it: it raises its
//!   incarnation and announces itself alive, which overrides the older news.
//! - Every change of view is queued and piggybacked on the next membership messages, each
//!   update `retransmit_mult * ceil(log10(n + 1))` times (memberlist's rule), freshest
//!   first, at most `max_piggyback` per message. Every message also starts with the
//!   sender's own "alive at my incarnation": whoever hears from a member learns it is
//!   alive, so a refutation reaches everyone the member talks to, and a member wrongly
//!   declared dead (or restarted) comes back in the views of the members it probes.
//! - Every `reconnect_every` periods the member probes a member it believes dead instead,
//!   telling it so: a member that is in fact alive (a partition healed, a false alarm, a
//!   restart) refutes in its ACK and comes back. Without this, the two sides of a healed
//!   partition would each believe the other dead forever, since nobody probes the dead.
//!   (memberlist and Serf solve the same problem with full-state syncs and reconnects.)
//!   Likewise a member pinged by a member it doubts tells it so in its ACK.
//! - A member's first incarnation is given by the caller (the app uses its start time in
//!   milliseconds), so a member that restarts with no state announces an incarnation newer
//!   than the one it died with, and comes back alive in the others' views.
//!
//! Precedence of updates about member m (incarnation i against the view's j): alive
//! applies if i > j; suspect if i > j, or i = j and m is alive in the view; dead if i > j,
//! or i = j and m is not dead yet.

use super::node::Dest;
use super::wire::{Status, SwimKind, SwimMessage, Update};
use sim_core::rng::SimRng;
use sim_core::time::{SimDuration, SimTime};
use std::collections::BTreeMap;

/// SWIM's parameters (the same for every member).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwimConfig {
    /// Members asked to ping on our behalf when a direct ping is not answered (k).
    pub indirect: u32,
    /// How long a suspect has to refute before it is declared dead.
    pub suspicion: SimDuration,
    /// The most updates one message carries.
    pub max_piggyback: usize,
    /// Each update is sent `retransmit_mult * ceil(log10(n + 1))` times.
    pub retransmit_mult: u32,
    /// Every this many periods, probe a member believed dead instead (0: never).
    pub reconnect_every: u32,
}

impl Default for SwimConfig {
    /// memberlist's LAN defaults where they apply: 3 indirect probes, retransmit
    /// multiplier 4; a 5 s suspicion; up to 64 updates per message (memberlist fills
    /// the datagram; 64 updates are 576 bytes); a reconnect probe every 5 periods.
    fn default() -> Self {
        SwimConfig {
            indirect: 3,
            suspicion: SimDuration::from_secs(5),
            max_piggyback: 64,
            retransmit_mult: 4,
            reconnect_every: 5,
        }
    }
}

/// What a call asks the caller to do, and how the view changed.
#[derive(Debug, Default)]
pub struct SwimEffects {
    pub sends: Vec<(Dest, SwimMessage)>,
    /// (member, new status) for every change of this member's view of another.
    pub changes: Vec<(u32, Status)>,
}

impl SwimEffects {
    pub fn clear(&mut self) {
        self.sends.clear();
        self.changes.clear();
    }
}

#[derive(Clone, Copy, Debug)]
struct View {
    status: Status,
    incarnation: u32,
    /// When it became suspect.
    since: SimTime,
}

#[derive(Clone, Copy, Debug)]
struct Probe {
    target: u32,
    seq: u32,
    acked: bool,
    /// A probe of a member believed dead: no indirect pings, no suspicion.
    reconnect: bool,
}

/// A ping sent for another member (PING_REQ): its ACK goes to `requester` as `their_seq`.
#[derive(Clone, Copy, Debug)]
struct Relay {
    seq: u32,
    requester: u32,
    their_seq: u32,
    target: u32,
}

/// One member's membership state.
#[derive(Clone, Debug)]
pub struct Swim {
    cfg: SwimConfig,
    me: u32,
    incarnation: u32,
    view: Vec<View>,
    seq: u32,
    probe: Option<Probe>,
    relays: Vec<Relay>,
    /// Updates still to piggyback, by member: the update and how many sends are left.
    pending: BTreeMap<u32, (Update, u32)>,
    transmissions: u32,
    /// Periods since the last reconnect probe.
    since_reconnect: u64,
}

impl Swim {
    /// Member `me` of `members`, believing everyone alive, at `incarnation`. It announces
    /// itself alive on its first messages.
    pub fn new(cfg: SwimConfig, me: u32, members: u32, incarnation: u32) -> Self {
        let digits = f64::from(members + 1).log10().ceil().max(1.0) as u32;
        let mut s = Swim {
            cfg,
            me,
            incarnation,
            view: vec![
                View {
                    status: Status::Alive,
                    incarnation: 0,
                    since: SimTime::ZERO,
                };
                members as usize
            ],
            seq: 0,
            probe: None,
            relays: Vec::new(),
            pending: BTreeMap::new(),
            transmissions: cfg.retransmit_mult.max(1) * digits,
            since_reconnect: 0,
        };
        s.queue(Update {
            member: me,
            status: Status::Alive,
            incarnation,
        });
        s
    }

    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// This member's belief about `member`.
    pub fn status(&self, member: u32) -> Status {
        if member == self.me {
            return Status::Alive;
        }
        self.view
            .get(member as usize)
            .map_or(Status::Dead, |v| v.status)
    }

    /// Starts a protocol period: an unanswered probe makes its target suspect, expired
    /// suspicions become deaths, and a new member is pinged.
    pub fn period(&mut self, now: SimTime, rng: &mut SimRng, fx: &mut SwimEffects) {
        if let Some(p) = self.probe.take() {
            let v = self.view[p.target as usize];
            if !p.acked && v.status == Status::Alive {
                self.apply(
                    now,
                    Update {
                        member: p.target,
                        status: Status::Suspect,
                        incarnation: v.incarnation,
                    },
                    fx,
                );
            }
        }
        for m in 0..self.view.len() as u32 {
            let v = self.view[m as usize];
            if v.status == Status::Suspect && v.since + self.cfg.suspicion <= now {
                self.apply(
                    now,
                    Update {
                        member: m,
                        status: Status::Dead,
                        incarnation: v.incarnation,
                    },
                    fx,
                );
            }
        }
        // Relays live for one period: a late ACK is of no use to the requester.
        self.relays.clear();
        self.since_reconnect += 1;
        let reconnect = self.cfg.reconnect_every > 0
            && self.since_reconnect >= u64::from(self.cfg.reconnect_every);
        if reconnect {
            self.since_reconnect = 0;
            if let Some(target) = self.pick_dead(rng) {
                // Tell it it is believed dead: if it is alive it refutes in its ACK.
                self.seq = self.seq.wrapping_add(1);
                self.probe = Some(Probe {
                    target,
                    seq: self.seq,
                    acked: false,
                    reconnect: true,
                });
                let mut m = self.message(SwimKind::Ping, self.seq, target);
                m.updates.insert(
                    1,
                    Update {
                        member: target,
                        status: Status::Dead,
                        incarnation: self.view[target as usize].incarnation,
                    },
                );
                fx.sends.push((Dest::Peer(target), m));
                return;
            }
        }
        let Some(&target) = self.pick(rng, 1, None).first() else {
            return;
        };
        self.seq = self.seq.wrapping_add(1);
        self.probe = Some(Probe {
            target,
            seq: self.seq,
            acked: false,
            reconnect: false,
        });
        let m = self.message(SwimKind::Ping, self.seq, target);
        fx.sends.push((Dest::Peer(target), m));
    }

    /// A random member believed dead, if any.
    fn pick_dead(&self, rng: &mut SimRng) -> Option<u32> {
        let dead: Vec<u32> = (0..self.view.len() as u32)
            .filter(|&m| m != self.me && self.view[m as usize].status == Status::Dead)
            .collect();
        (!dead.is_empty()).then(|| dead[rng.below(dead.len() as u64) as usize])
    }

    /// The direct probe's time is up: if it was not answered, ask `indirect` others.
    pub fn probe_timeout(&mut self, rng: &mut SimRng, fx: &mut SwimEffects) {
        let Some(p) = self.probe.filter(|p| !p.acked && !p.reconnect) else {
            return;
        };
        for helper in self.pick(rng, self.cfg.indirect, Some(p.target)) {
            let m = self.message(SwimKind::PingReq, p.seq, p.target);
            fx.sends.push((Dest::Peer(helper), m));
        }
    }

    /// Handles a membership message.
    pub fn receive(&mut self, now: SimTime, msg: SwimMessage, fx: &mut SwimEffects) {
        for u in &msg.updates {
            self.apply(now, *u, fx);
        }
        match msg.kind {
            SwimKind::Ping => {
                let mut m = self.message(SwimKind::Ack, msg.seq, self.me);
                // A ping from a member we doubt: tell it, so that it can refute.
                if let Some(v) = self
                    .view
                    .get(msg.from as usize)
                    .filter(|v| v.status != Status::Alive && msg.from != self.me)
                {
                    m.updates.insert(
                        1,
                        Update {
                            member: msg.from,
                            status: v.status,
                            incarnation: v.incarnation,
                        },
                    );
                }
                fx.sends.push((Dest::Sender, m));
            }
            SwimKind::PingReq => {
                if msg.target == self.me || msg.target as usize >= self.view.len() {
                    return;
                }
                self.seq = self.seq.wrapping_add(1);
                self.relays.push(Relay {
                    seq: self.seq,
                    requester: msg.from,
                    their_seq: msg.seq,
                    target: msg.target,
                });
                let m = self.message(SwimKind::Ping, self.seq, msg.target);
                fx.sends.push((Dest::Peer(msg.target), m));
            }
            SwimKind::Ack => {
                if let Some(p) = self.probe.as_mut() {
                    if p.seq == msg.seq && p.target == msg.target {
                        p.acked = true;
                        return;
                    }
                }
                if let Some(i) = self
                    .relays
                    .iter()
                    .position(|r| r.seq == msg.seq && r.target == msg.target)
                {
                    let r = self.relays.swap_remove(i);
                    let m = self.message(SwimKind::Ack, r.their_seq, r.target);
                    fx.sends.push((Dest::Peer(r.requester), m));
                }
            }
        }
    }

    /// Applies an update (heard or decided here) if it is newer than the view.
    fn apply(&mut self, now: SimTime, u: Update, fx: &mut SwimEffects) {
        if u.member == self.me {
            if u.status != Status::Alive && u.incarnation >= self.incarnation {
                // Refute: a newer incarnation of me is alive.
                self.incarnation = u.incarnation.wrapping_add(1);
                self.queue(Update {
                    member: self.me,
                    status: Status::Alive,
                    incarnation: self.incarnation,
                });
            }
            return;
        }
        let Some(v) = self.view.get_mut(u.member as usize) else {
            return;
        };
        let newer = u.incarnation > v.incarnation;
        let same = u.incarnation == v.incarnation;
        let applies = match u.status {
            Status::Alive => newer,
            Status::Suspect => newer || (same && v.status == Status::Alive),
            Status::Dead => newer || (same && v.status != Status::Dead),
        };
        if !applies {
            return;
        }
        let changed = v.status != u.status;
        *v = View {
            status: u.status,
            incarnation: u.incarnation,
            since: now,
        };
        if changed {
            fx.changes.push((u.member, u.status));
        }
        self.queue(u);
    }

    fn queue(&mut self, u: Update) {
        self.pending.insert(u.member, (u, self.transmissions));
    }

    /// A message that says the sender is alive at its incarnation, then carries the
    /// freshest pending updates.
    fn message(&mut self, kind: SwimKind, seq: u32, target: u32) -> SwimMessage {
        let mut order: Vec<(u32, u32)> = self
            .pending
            .iter()
            .filter(|(&m, _)| m != self.me)
            .map(|(&m, &(_, left))| (left, m))
            .collect();
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut updates = vec![Update {
            member: self.me,
            status: Status::Alive,
            incarnation: self.incarnation,
        }];
        self.pending.remove(&self.me);
        for (_, m) in order
            .into_iter()
            .take(self.cfg.max_piggyback.saturating_sub(1))
        {
            if let Some((u, left)) = self.pending.get_mut(&m) {
                updates.push(*u);
                *left -= 1;
                if *left == 0 {
                    self.pending.remove(&m);
                }
            }
        }
        SwimMessage {
            kind,
            seq,
            from: self.me,
            target,
            updates,
        }
    }

    /// `n` distinct random members other than me and `except`, not believed dead.
    fn pick(&self, rng: &mut SimRng, n: u32, except: Option<u32>) -> Vec<u32> {
        let candidates: Vec<u32> = (0..self.view.len() as u32)
            .filter(|&m| {
                m != self.me && Some(m) != except && self.view[m as usize].status != Status::Dead
            })
            .collect();
        let mut out = Vec::new();
        let mut pool = candidates;
        while out.len() < n as usize && !pool.is_empty() {
            let i = rng.below(pool.len() as u64) as usize;
            out.push(pool.swap_remove(i));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::rng::RngFactory;

    fn t(ms: u64) -> SimTime {
        SimTime::from_nanos(ms * 1_000_000)
    }

    fn cfg() -> SwimConfig {
        SwimConfig {
            indirect: 2,
            suspicion: SimDuration::from_secs(3),
            max_piggyback: 8,
            retransmit_mult: 1,
            reconnect_every: 0,
        }
    }

    fn only(fx: &mut SwimEffects) -> (Dest, SwimMessage) {
        assert_eq!(fx.sends.len(), 1, "{:?}", fx.sends);
        fx.sends.pop().unwrap()
    }

    #[test]
    fn a_ping_is_acked_and_an_ack_clears_the_probe() {
        let mut r = RngFactory::new(1).stream("s");
        let mut a = Swim::new(cfg(), 0, 2, 0);
        let mut b = Swim::new(cfg(), 1, 2, 0);
        let mut fx = SwimEffects::default();
        a.period(t(0), &mut r, &mut fx);
        let (to, ping) = only(&mut fx);
        assert_eq!(to, Dest::Peer(1));
        assert_eq!((ping.kind, ping.from, ping.target), (SwimKind::Ping, 0, 1));
        assert_eq!(
            ping.updates,
            [Update {
                member: 0,
                status: Status::Alive,
                incarnation: 0
            }],
            "a new member announces itself"
        );
        b.receive(t(1), ping.clone(), &mut fx);
        let (to, ack) = only(&mut fx);
        assert_eq!(to, Dest::Sender);
        assert_eq!(
            (ack.kind, ack.seq, ack.target),
            (SwimKind::Ack, ping.seq, 1)
        );
        a.receive(t(2), ack, &mut fx);
        a.probe_timeout(&mut r, &mut fx);
        assert!(fx.sends.is_empty(), "an answered probe needs no help");
        a.period(t(1000), &mut r, &mut fx);
        assert_eq!(a.status(1), Status::Alive);
        assert!(fx.changes.is_empty());
    }

    #[test]
    fn an_unanswered_probe_asks_others_then_suspects_then_declares_dead() {
        let mut r = RngFactory::new(2).stream("s");
        let mut a = Swim::new(cfg(), 0, 4, 0);
        let mut fx = SwimEffects::default();
        // Member 3 is the only one a can probe besides two helpers that stay silent.
        a.period(t(0), &mut r, &mut fx);
        let (_, ping) = only(&mut fx);
        let target = ping.target;
        a.probe_timeout(&mut r, &mut fx);
        assert_eq!(fx.sends.len(), 2);
        for (to, m) in &fx.sends {
            assert_eq!(
                (m.kind, m.target, m.seq),
                (SwimKind::PingReq, target, ping.seq)
            );
            assert!(matches!(to, Dest::Peer(p) if *p != target && *p != 0));
        }
        fx.clear();
        a.period(t(1000), &mut r, &mut fx);
        assert_eq!(a.status(target), Status::Suspect);
        assert_eq!(fx.changes, [(target, Status::Suspect)]);
        // The suspicion travels on the next probe.
        let (_, m) = fx.sends.pop().unwrap();
        assert!(m.updates.contains(&Update {
            member: target,
            status: Status::Suspect,
            incarnation: 0
        }));
        fx.clear();
        a.period(t(3999), &mut r, &mut fx);
        assert_eq!(
            a.status(target),
            Status::Suspect,
            "not before the suspicion ends"
        );
        fx.clear();
        a.period(t(4000), &mut r, &mut fx);
        assert_eq!(a.status(target), Status::Dead);
        assert!(fx.changes.contains(&(target, Status::Dead)));
        // A dead member is never probed again.
        for k in 5..50 {
            fx.clear();
            a.period(t(k * 1000), &mut r, &mut fx);
            for (_, m) in &fx.sends {
                assert_ne!(m.target, target);
            }
        }
    }

    #[test]
    fn ping_req_relays_the_targets_ack_to_the_requester() {
        let mut r = RngFactory::new(3).stream("s");
        let mut helper = Swim::new(cfg(), 1, 3, 0);
        let mut target = Swim::new(cfg(), 2, 3, 0);
        let mut fx = SwimEffects::default();
        let req = SwimMessage {
            kind: SwimKind::PingReq,
            seq: 40,
            from: 0,
            target: 2,
            updates: Vec::new(),
        };
        helper.receive(t(0), req, &mut fx);
        let (to, ping) = only(&mut fx);
        assert_eq!(
            (to, ping.kind, ping.target),
            (Dest::Peer(2), SwimKind::Ping, 2)
        );
        target.receive(t(1), ping, &mut fx);
        let (_, ack) = only(&mut fx);
        helper.receive(t(2), ack, &mut fx);
        let (to, relayed) = only(&mut fx);
        assert_eq!(to, Dest::Peer(0));
        assert_eq!(
            (relayed.kind, relayed.seq, relayed.target),
            (SwimKind::Ack, 40, 2)
        );
        // The requester counts it as its probe's answer.
        let mut a = Swim::new(cfg(), 0, 3, 0);
        a.period(t(0), &mut r, &mut fx);
        fx.clear();
        let p = a.probe.unwrap();
        a.receive(
            t(5),
            SwimMessage {
                seq: p.seq,
                target: p.target,
                ..relayed
            },
            &mut fx,
        );
        assert!(a.probe.unwrap().acked);
    }

    #[test]
    fn a_suspected_member_refutes_with_a_newer_incarnation() {
        let mut b = Swim::new(cfg(), 1, 3, 0);
        let mut c = Swim::new(cfg(), 2, 3, 0);
        let mut fx = SwimEffects::default();
        let suspect = Update {
            member: 1,
            status: Status::Suspect,
            incarnation: 0,
        };
        let news = |u: Vec<Update>| SwimMessage {
            kind: SwimKind::Ack,
            seq: 0,
            from: 0,
            target: 0,
            updates: u,
        };
        c.receive(t(0), news(vec![suspect]), &mut fx);
        assert_eq!(c.status(1), Status::Suspect);
        b.receive(t(0), news(vec![suspect]), &mut fx);
        assert_eq!(b.incarnation(), 1);
        // b's next message carries "alive at 1", which clears c's suspicion.
        b.period(t(10), &mut RngFactory::new(4).stream("s"), &mut fx);
        let alive: Vec<Update> = fx
            .sends
            .iter()
            .flat_map(|(_, m)| m.updates.clone())
            .collect();
        assert!(alive.contains(&Update {
            member: 1,
            status: Status::Alive,
            incarnation: 1
        }));
        fx.clear();
        c.receive(t(20), news(alive), &mut fx);
        assert_eq!(c.status(1), Status::Alive);
        assert_eq!(fx.changes, [(1, Status::Alive)]);
        // Old news does not override newer: suspect at 0 after alive at 1.
        fx.clear();
        c.receive(t(30), news(vec![suspect]), &mut fx);
        assert_eq!(c.status(1), Status::Alive);
        // A member that restarts announces a newer incarnation than it died with.
        c.receive(
            t(40),
            news(vec![Update {
                member: 1,
                status: Status::Dead,
                incarnation: 1,
            }]),
            &mut fx,
        );
        assert_eq!(c.status(1), Status::Dead);
        let reborn = Swim::new(cfg(), 1, 3, 5000);
        let hello = reborn.pending.get(&1).unwrap().0;
        c.receive(t(5000), news(vec![hello]), &mut fx);
        assert_eq!(c.status(1), Status::Alive);
    }

    #[test]
    fn a_member_wrongly_believed_dead_comes_back_through_a_reconnect_probe() {
        let mut c = cfg();
        c.reconnect_every = 3;
        let mut r = RngFactory::new(5).stream("s");
        let mut a = Swim::new(c, 0, 2, 0);
        let mut b = Swim::new(c, 1, 2, 0);
        let mut fx = SwimEffects::default();
        let dead = Update {
            member: 1,
            status: Status::Dead,
            incarnation: 0,
        };
        a.apply(t(0), dead, &mut fx);
        assert_eq!(a.status(1), Status::Dead);
        // Periods 1 and 2: nobody alive to probe. Period 3: the reconnect probe.
        for k in 1..3 {
            fx.clear();
            a.period(t(k * 1000), &mut r, &mut fx);
            assert!(fx.sends.is_empty());
        }
        fx.clear();
        a.period(t(3000), &mut r, &mut fx);
        let (to, ping) = only(&mut fx);
        assert_eq!((to, ping.target), (Dest::Peer(1), 1));
        assert!(
            ping.updates.contains(&dead),
            "b is told it is believed dead"
        );
        a.probe_timeout(&mut r, &mut fx);
        assert!(fx.sends.is_empty(), "no indirect probes for the dead");
        b.receive(t(3001), ping, &mut fx);
        assert_eq!(b.incarnation(), 1, "b refutes");
        let (_, ack) = only(&mut fx);
        assert_eq!(
            ack.updates[0],
            Update {
                member: 1,
                status: Status::Alive,
                incarnation: 1
            }
        );
        a.receive(t(3002), ack, &mut fx);
        assert_eq!(a.status(1), Status::Alive);
        assert_eq!(fx.changes, [(1, Status::Alive)]);
    }

    #[test]
    fn updates_are_piggybacked_a_limited_number_of_times_freshest_first() {
        let mut c = cfg();
        c.max_piggyback = 2;
        c.retransmit_mult = 2;
        // n = 9: ceil(log10 10) = 1, so every update goes out twice.
        let mut a = Swim::new(c, 0, 9, 0);
        let mut fx = SwimEffects::default();
        for m in 1..4 {
            a.apply(
                t(0),
                Update {
                    member: m,
                    status: Status::Suspect,
                    incarnation: 0,
                },
                &mut fx,
            );
        }
        let mut sent: BTreeMap<u32, u32> = BTreeMap::new();
        for _ in 0..10 {
            let m = a.message(SwimKind::Ping, 0, 5);
            assert!(m.updates.len() <= 2);
            for u in m.updates {
                *sent.entry(u.member).or_default() += 1;
            }
        }
        // Member 0 (the sender) says it is alive in every message; the rest go twice.
        assert_eq!(sent.values().collect::<Vec<_>>(), [&10, &2, &2, &2]);
    }
}

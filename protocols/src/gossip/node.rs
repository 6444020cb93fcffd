//! One gossip participant as a pure state machine: rumor mongering (push, pull,
//! push-pull; feedback or blind; coin or counter loss of interest) and anti-entropy.
//!
//! Owns what a node knows (rumors, which are hot) and what it answers. It never sees
//! sockets, addresses, timers or the clock: the caller decides when a round starts
//! ([`GossipNode::tick`]) and when to run anti-entropy ([`GossipNode::anti_entropy`]),
//! hands it every message that arrives ([`GossipNode::receive`]), and sends what it asks
//! for ([`Effects::sends`]) to a member index or back to the sender. Randomness (peer
//! choice, coin flips) comes from the caller's stream.
//!
//! The algorithms are those of Demers et al., "Epidemic algorithms for replicated
//! database maintenance" (PODC 1987):
//!
//! - A node that learns a rumor it did not know becomes *infective* for it: the rumor is
//!   *hot* (unless mongering is off). Each round it contacts `fanout` distinct random
//!   peers. PUSH sends the hot rumors; PULL asks for the peer's hot rumors, naming the ids
//!   it knows; PUSH_PULL does both in one exchange.
//! - Loss of interest (the rumor turns *removed*: known, no longer spread): with
//!   **feedback**, a contact counts against a rumor only when the peer already knew it
//!   (the peer says so in FEEDBACK, or in the ids of PULL / PUSH_PULL / REPLY); **blind**,
//!   every contact counts. **Coin**: each counting contact removes the rumor with
//!   probability 1/k. **Counter**: the k-th counting contact removes it. **Never**: the node
//!   stays infective (plain push gossip as analysed by Pittel 1987).
//! - Anti-entropy is a three-way exchange of full state, as Cassandra's SYN / ACK / ACK2:
//!   SYNC (every id I know) → SYNC_REPLY (the rumors you lack, the ids I lack) →
//!   SYNC_DATA (those rumors). Two nodes that complete it know the union of their rumors.
//!
//! Messages are answered only when the answer carries something (FEEDBACK when some
//! pushed rumor was known, REPLY when there is a rumor or feedback to give, SYNC_REPLY
//! when the states differ), so silence means "nothing to add".

use super::wire::{Kind, Message, Rumor};
use sim_core::rng::SimRng;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Which rumor-mongering exchange a round uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Push,
    Pull,
    PushPull,
    /// No rumor mongering: rumors spread by anti-entropy only.
    Off,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Push => "push",
            Mode::Pull => "pull",
            Mode::PushPull => "push-pull",
            Mode::Off => "off",
        }
    }
}

/// When an infective node loses interest in a rumor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoseInterest {
    Never,
    /// Each counting contact removes the rumor with probability 1/k.
    Coin {
        k: u32,
    },
    /// The k-th counting contact removes the rumor.
    Counter {
        k: u32,
    },
}

impl LoseInterest {
    pub fn name(self) -> &'static str {
        match self {
            LoseInterest::Never => "never",
            LoseInterest::Coin { .. } => "coin",
            LoseInterest::Counter { .. } => "counter",
        }
    }
    pub fn k(self) -> Option<u32> {
        match self {
            LoseInterest::Never => None,
            LoseInterest::Coin { k } | LoseInterest::Counter { k } => Some(k),
        }
    }
}

/// The protocol's parameters (the same for every member).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GossipConfig {
    pub mode: Mode,
    /// Peers contacted per round (at least 1).
    pub fanout: u32,
    /// Loss of interest counts only contacts that already knew the rumor.
    pub feedback: bool,
    pub lose_interest: LoseInterest,
}

/// Whom a node may contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peers {
    /// Every member `0..members` except the node itself.
    All { members: u32 },
    /// These members (the node itself excluded by the caller).
    List(Rc<[u32]>),
}

/// Where a message goes: a member (by index) or back to whoever sent the message being
/// handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    Peer(u32),
    Sender,
}

/// What a call asks the caller to do, and what the node learned. The caller clears it
/// (or keeps appending: calls only push).
#[derive(Debug, Default)]
pub struct Effects {
    pub sends: Vec<(Dest, Message)>,
    /// Rumors the node did not know before, with the kind of message that brought them.
    pub learned: Vec<(u32, Kind)>,
}

impl Effects {
    pub fn clear(&mut self) {
        self.sends.clear();
        self.learned.clear();
    }
}

#[derive(Clone, Debug)]
struct Entry {
    value: Vec<u8>,
    hot: bool,
    /// Counting contacts so far (Counter).
    strikes: u32,
}

/// One member's gossip state.
#[derive(Clone, Debug)]
pub struct GossipNode {
    cfg: GossipConfig,
    me: u32,
    peers: Peers,
    known: BTreeMap<u32, Entry>,
    /// Peers not to contact (believed dead by the membership protocol).
    avoid: std::collections::BTreeSet<u32>,
}

impl GossipNode {
    /// A node with member index `me`. A peer list is cleaned of `me` and duplicates.
    pub fn new(cfg: GossipConfig, me: u32, peers: Peers) -> Self {
        let peers = match peers {
            Peers::List(l) => {
                let mut v: Vec<u32> = l.iter().copied().filter(|&p| p != me).collect();
                v.sort_unstable();
                v.dedup();
                Peers::List(v.into())
            }
            all => all,
        };
        GossipNode {
            cfg,
            me,
            peers,
            known: BTreeMap::new(),
            avoid: std::collections::BTreeSet::new(),
        }
    }

    /// Stops (`false`) or resumes (`true`) contacting `peer`, as membership decides.
    pub fn set_reachable(&mut self, peer: u32, reachable: bool) {
        if reachable {
            self.avoid.remove(&peer);
        } else if peer != self.me {
            self.avoid.insert(peer);
        }
    }

    pub fn config(&self) -> &GossipConfig {
        &self.cfg
    }

    /// Starts a rumor here. Returns false if the node already knew it.
    pub fn originate(&mut self, id: u32, value: Vec<u8>) -> bool {
        if self.known.contains_key(&id) {
            return false;
        }
        self.known.insert(
            id,
            Entry {
                value,
                hot: self.cfg.mode != Mode::Off,
                strikes: 0,
            },
        );
        true
    }

    pub fn knows(&self, id: u32) -> bool {
        self.known.contains_key(&id)
    }

    pub fn is_hot(&self, id: u32) -> bool {
        self.known.get(&id).is_some_and(|e| e.hot)
    }

    /// The ids this node knows, ascending.
    pub fn known_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.known.keys().copied()
    }

    pub fn value(&self, id: u32) -> Option<&[u8]> {
        self.known.get(&id).map(|e| e.value.as_slice())
    }

    pub fn has_hot(&self) -> bool {
        self.known.values().any(|e| e.hot)
    }

    /// One rumor-mongering round: contact `fanout` random peers (RB-GOS-01, RB-GOS-02).
    pub fn tick(&mut self, rng: &mut SimRng, fx: &mut Effects) {
        let (kind, pushes, pulls) = match self.cfg.mode {
            Mode::Off => return,
            Mode::Push => (Kind::Push, true, false),
            Mode::Pull => (Kind::Pull, false, true),
            Mode::PushPull => (Kind::PushPull, true, true),
        };
        let hot: Vec<Rumor> = if pushes {
            self.hot_rumors()
        } else {
            Vec::new()
        };
        if kind == Kind::Push && hot.is_empty() {
            return;
        }
        let targets = self.choose_peers(rng);
        for &t in &targets {
            let mut m = Message::new(kind);
            m.rumors.clone_from(&hot);
            m.feedback = kind == Kind::Push && self.cfg.feedback;
            if pulls {
                m.ids = self.known_ids().collect();
            }
            fx.sends.push((Dest::Peer(t), m));
        }
        if !self.cfg.feedback {
            // Blind: every contact that carried a rumor counts against it.
            for _ in &targets {
                for r in &hot {
                    self.strike(r.id, rng);
                }
            }
        }
    }

    /// Starts an anti-entropy exchange with one random peer (RB-GOS-03).
    pub fn anti_entropy(&mut self, rng: &mut SimRng, fx: &mut Effects) {
        if let Some(&t) = self.choose_peers_n(rng, 1).first() {
            let mut m = Message::new(Kind::Sync);
            m.ids = self.known_ids().collect();
            fx.sends.push((Dest::Peer(t), m));
        }
    }

    /// Handles a message from a peer.
    pub fn receive(&mut self, msg: Message, rng: &mut SimRng, fx: &mut Effects) {
        let Message {
            kind,
            feedback,
            rumors,
            mut ids,
        } = msg;
        ids.sort_unstable();
        ids.dedup();
        match kind {
            Kind::Push => {
                let already = self.merge(rumors, kind, fx);
                if feedback && !already.is_empty() {
                    let mut m = Message::new(Kind::Feedback);
                    m.ids = already;
                    fx.sends.push((Dest::Sender, m));
                }
            }
            Kind::Feedback => {
                if self.cfg.feedback {
                    for id in ids {
                        self.strike(id, rng);
                    }
                }
            }
            Kind::Pull | Kind::PushPull => {
                // Answer from what was hot before this exchange taught us anything.
                let mut reply = Message::new(Kind::Reply);
                reply.rumors = self.serve_pull(&ids, rng);
                let already = self.merge(rumors, kind, fx);
                if kind == Kind::PushPull && self.cfg.feedback {
                    reply.ids = already;
                }
                if !reply.rumors.is_empty() || !reply.ids.is_empty() {
                    fx.sends.push((Dest::Sender, reply));
                }
            }
            Kind::Reply => {
                self.merge(rumors, kind, fx);
                if self.cfg.feedback {
                    for id in ids {
                        self.strike(id, rng);
                    }
                }
            }
            Kind::Sync => {
                let mut reply = Message::new(Kind::SyncReply);
                reply.rumors = self
                    .known
                    .iter()
                    .filter(|(id, _)| ids.binary_search(id).is_err())
                    .map(|(&id, e)| Rumor {
                        id,
                        value: e.value.clone(),
                    })
                    .collect();
                reply.ids = ids
                    .into_iter()
                    .filter(|id| !self.known.contains_key(id))
                    .collect();
                if !reply.rumors.is_empty() || !reply.ids.is_empty() {
                    fx.sends.push((Dest::Sender, reply));
                }
            }
            Kind::SyncReply => {
                self.merge(rumors, kind, fx);
                let mut data = Message::new(Kind::SyncData);
                data.rumors = ids
                    .into_iter()
                    .filter_map(|id| {
                        self.known.get(&id).map(|e| Rumor {
                            id,
                            value: e.value.clone(),
                        })
                    })
                    .collect();
                if !data.rumors.is_empty() {
                    fx.sends.push((Dest::Sender, data));
                }
            }
            Kind::SyncData => {
                self.merge(rumors, kind, fx);
            }
        }
    }

    /// The hot rumors a puller that knows `theirs` (sorted) lacks; counts the contact
    /// against hot rumors (all of them blind, the ones the puller knew with feedback).
    fn serve_pull(&mut self, theirs: &[u32], rng: &mut SimRng) -> Vec<Rumor> {
        let mut out = Vec::new();
        let mut counted = Vec::new();
        for (&id, e) in self.known.iter().filter(|(_, e)| e.hot) {
            let known_there = theirs.binary_search(&id).is_ok();
            if !known_there {
                out.push(Rumor {
                    id,
                    value: e.value.clone(),
                });
            }
            if known_there || !self.cfg.feedback {
                counted.push(id);
            }
        }
        for id in counted {
            self.strike(id, rng);
        }
        out
    }

    /// Adds the rumors not known yet; returns the ids that were already known.
    fn merge(&mut self, rumors: Vec<Rumor>, via: Kind, fx: &mut Effects) -> Vec<u32> {
        let mut already = Vec::new();
        for r in rumors {
            if self.known.contains_key(&r.id) {
                already.push(r.id);
            } else {
                self.known.insert(
                    r.id,
                    Entry {
                        value: r.value,
                        hot: self.cfg.mode != Mode::Off,
                        strikes: 0,
                    },
                );
                fx.learned.push((r.id, via));
            }
        }
        already
    }

    /// A contact that counts against hot rumor `id` (coin or counter, RB-GOS-02).
    fn strike(&mut self, id: u32, rng: &mut SimRng) {
        let Some(e) = self.known.get_mut(&id).filter(|e| e.hot) else {
            return;
        };
        match self.cfg.lose_interest {
            LoseInterest::Never => {}
            LoseInterest::Coin { k } => {
                if rng.chance(1.0 / f64::from(k.max(1))) {
                    e.hot = false;
                }
            }
            LoseInterest::Counter { k } => {
                e.strikes += 1;
                if e.strikes >= k {
                    e.hot = false;
                }
            }
        }
    }

    fn hot_rumors(&self) -> Vec<Rumor> {
        self.known
            .iter()
            .filter(|(_, e)| e.hot)
            .map(|(&id, e)| Rumor {
                id,
                value: e.value.clone(),
            })
            .collect()
    }

    fn choose_peers(&self, rng: &mut SimRng) -> Vec<u32> {
        self.choose_peers_n(rng, self.cfg.fanout.max(1))
    }

    /// `n` distinct random peers (all of them if there are fewer), none avoided.
    fn choose_peers_n(&self, rng: &mut SimRng, n: u32) -> Vec<u32> {
        let candidates = match &self.peers {
            Peers::All { members } => {
                let base = if self.me < *members {
                    members - 1
                } else {
                    *members
                };
                base - self.avoid.range(..*members).count() as u32
            }
            Peers::List(l) => l.iter().filter(|p| !self.avoid.contains(p)).count() as u32,
        };
        let want = n.min(candidates) as usize;
        let mut out: Vec<u32> = Vec::with_capacity(want);
        while out.len() < want {
            let p = match &self.peers {
                Peers::All { members } if self.me < *members => {
                    let x = rng.below(u64::from(members - 1)) as u32;
                    if x >= self.me {
                        x + 1
                    } else {
                        x
                    }
                }
                Peers::All { members } => rng.below(u64::from(*members)) as u32,
                Peers::List(l) => l[rng.below(l.len() as u64) as usize],
            };
            if !out.contains(&p) && !self.avoid.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}

//! A synchronous round model of a gossip cluster, without network or scheduler: the
//! lightweight harness for the statistics of large clusters over many seeds (the full
//! simulator runs the same [`GossipNode`]s over UDP).
//!
//! Owns an array of [`GossipNode`]s, a message queue and an optional Bernoulli message
//! loss. In [`Rounds::round`] every live node ticks once, in index order, and then every
//! message is delivered in the order it was sent, answers included, until none is left:
//! exactly what the simulator does when all nodes gossip at the same instant and the
//! network delay is much shorter than the period. A dead node sends nothing and what is
//! sent to it is lost.

use super::node::{Dest, Effects, GossipConfig, GossipNode, Peers};
use super::wire::Message;
use sim_core::rng::{RngFactory, SimRng};
use std::collections::VecDeque;

pub struct Rounds {
    pub nodes: Vec<GossipNode>,
    peers: Vec<Peers>,
    rngs: Vec<SimRng>,
    alive: Vec<bool>,
    loss: f64,
    loss_rng: SimRng,
    queue: VecDeque<(u32, u32, Message)>,
    fx: Effects,
    /// Messages sent so far (lost ones included).
    pub messages: u64,
    /// Messages sent so far, per node.
    pub sent: Vec<u64>,
}

impl Rounds {
    /// `n` nodes that may each contact every other one.
    pub fn new(n: u32, cfg: GossipConfig, seed: u64) -> Self {
        Self::with_peers(
            (0..n).map(|_| Peers::All { members: n }).collect(),
            cfg,
            seed,
        )
    }

    /// One node per entry of `peers`, contacting only its listed peers.
    pub fn with_peers(peers: Vec<Peers>, cfg: GossipConfig, seed: u64) -> Self {
        let f = RngFactory::new(seed);
        let n = peers.len();
        Rounds {
            nodes: peers
                .iter()
                .enumerate()
                .map(|(i, p)| GossipNode::new(cfg, i as u32, p.clone()))
                .collect(),
            peers,
            rngs: (0..n).map(|i| f.stream(&format!("gossip:{i}"))).collect(),
            alive: vec![true; n],
            loss: 0.0,
            loss_rng: f.stream("gossip:loss"),
            queue: VecDeque::new(),
            fx: Effects::default(),
            messages: 0,
            sent: vec![0; n],
        }
    }

    /// Each message is lost with probability `p`.
    pub fn set_loss(&mut self, p: f64) {
        self.loss = p;
    }

    /// Kills a node (`false`) or revives it (`true`) with no state, as a restarted node.
    pub fn set_alive(&mut self, node: u32, alive: bool) {
        let i = node as usize;
        if alive && !self.alive[i] {
            let cfg = *self.nodes[i].config();
            self.nodes[i] = GossipNode::new(cfg, node, self.peers[i].clone());
        }
        self.alive[i] = alive;
    }

    pub fn is_alive(&self, node: u32) -> bool {
        self.alive[node as usize]
    }

    pub fn originate(&mut self, node: u32, id: u32) {
        self.nodes[node as usize].originate(id, Vec::new());
    }

    /// One rumor-mongering round.
    pub fn round(&mut self) {
        for i in 0..self.nodes.len() {
            if self.alive[i] {
                self.nodes[i].tick(&mut self.rngs[i], &mut self.fx);
                self.enqueue(i as u32, i as u32);
            }
        }
        self.deliver();
    }

    /// One anti-entropy round: every live node starts an exchange with one random peer.
    pub fn anti_entropy_round(&mut self) {
        for i in 0..self.nodes.len() {
            if self.alive[i] {
                self.nodes[i].anti_entropy(&mut self.rngs[i], &mut self.fx);
                self.enqueue(i as u32, i as u32);
            }
        }
        self.deliver();
    }

    /// Live nodes that know rumor `id`.
    pub fn informed(&self, id: u32) -> usize {
        self.live_nodes().filter(|n| n.knows(id)).count()
    }

    /// Live nodes for which rumor `id` is hot.
    pub fn infective(&self, id: u32) -> usize {
        self.live_nodes().filter(|n| n.is_hot(id)).count()
    }

    pub fn live(&self) -> usize {
        self.alive.iter().filter(|a| **a).count()
    }

    fn live_nodes(&self) -> impl Iterator<Item = &GossipNode> {
        self.nodes
            .iter()
            .zip(&self.alive)
            .filter(|(_, a)| **a)
            .map(|(n, _)| n)
    }

    /// Queues what `from` asked to send; `sender` is who `Dest::Sender` means.
    fn enqueue(&mut self, from: u32, sender: u32) {
        for (dest, m) in self.fx.sends.drain(..) {
            let to = match dest {
                Dest::Peer(p) => p,
                Dest::Sender => sender,
            };
            self.messages += 1;
            self.sent[from as usize] += 1;
            self.queue.push_back((from, to, m));
        }
        self.fx.learned.clear();
    }

    fn deliver(&mut self) {
        while let Some((from, to, m)) = self.queue.pop_front() {
            let lost = self.loss > 0.0 && self.loss_rng.chance(self.loss);
            let t = to as usize;
            if lost || !self.alive.get(t).copied().unwrap_or(false) {
                continue;
            }
            self.nodes[t].receive(m, &mut self.rngs[t], &mut self.fx);
            self.enqueue(to, from);
        }
    }
}

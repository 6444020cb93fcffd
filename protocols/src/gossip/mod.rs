//! Gossip: epidemic dissemination of rumors among a group of members over UDP.
//!
//! - [`wire`]: the message format (a compact documented binary layout) and its defensive
//!   decoder.
//! - [`node`]: [`GossipNode`], one member's protocol as a state machine driven by calls
//!   (round tick, anti-entropy, message in) and answering with messages to send; rumor
//!   mongering in push, pull and push-pull modes with feedback or blind, coin or counter
//!   loss of interest (Demers et al. 1987), and three-way anti-entropy.
//! - [`swim`]: [`Swim`], optional SWIM membership (ping, ping-req, suspicion, piggybacked
//!   updates) as a state machine; a member's gossip avoids peers it believes dead.
//! - [`rounds`]: a synchronous round model of a whole cluster of `GossipNode`s, without
//!   network: the lightweight harness for statistics over many large runs.
//! - [`metrics`]: the cluster-wide log that the members of one app write to, and its
//!   reduction to per-round dissemination figures.
//!
//! The app that puts a `GossipNode` on a host ([`crate::apps::gossip::GossipApp`]) owns
//! sockets, timers and addresses. This module never touches them.
//!
//! Architecture invariant: `node`, `swim` and `rounds` are pure (no scheduler, no `NodeCx`), so a
//! test can drive any number of members round by round.

pub mod metrics;
pub mod node;
pub mod rounds;
pub mod swim;
pub mod wire;

pub use metrics::{GossipLog, GossipStats, RumorPlan, SharedLog};
pub use node::{Dest, Effects, GossipConfig, GossipNode, LoseInterest, Mode, Peers};
pub use swim::{Swim, SwimConfig, SwimEffects};
pub use wire::{
    decode, encode, encode_swim, DecodeError, Kind, Message, Packet, Rumor, Status, SwimKind,
    SwimMessage, Update,
};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

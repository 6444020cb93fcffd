//! The simulation engine of netdes: virtual time, the event scheduler, seeded randomness,
//! the packet model, links, switches, IPv4 with ARP and ICMP, routing, topology planning,
//! measurements, tracing and packet capture.
//!
//! Layering, from the bottom (a module uses only those above it in this list):
//! - [`time`]: `SimTime` and `SimDuration`, integer nanoseconds; no floating point.
//! - [`sched`]: the event queue, ordered by (time, insertion sequence), with cancellable
//!   timers. It knows nothing of what an event means.
//! - [`rng`]: one ChaCha stream per (run seed, stable entity name).
//! - [`packet`]: frames as structured values; [`wire`] turns them into real bytes (for
//!   captures, tests and tools; the simulation never reads those bytes).
//! - [`aqm`], [`link`], [`switch`]: queue disciplines, full-duplex links with
//!   serialization, delay and impairments, and learning switches. They decide; they do
//!   not schedule, so each is unit-tested without a world.
//! - [`route`], [`ip`]: routing tables with ECMP, and the IPv4 layer of a node (ARP,
//!   forwarding, fragmentation, the ICMP the kernel sends).
//! - [`topology`], [`fattree`]: planning addresses and routes for a graph of nodes, in
//!   general and in closed form for k-ary fat-trees.
//! - [`metrics`], [`trace`], [`capture`]: counters, the trace digest and protocol events,
//!   pcap files.
//! - [`world`]: nodes, links and the event loop that drives them; a node's transport
//!   protocols and applications plug in through the [`world::Stack`] trait.
//!
//! Architecture invariant: this crate knows nothing of transport protocols (a transport
//! packet is opaque header bytes plus a payload description), nothing of scenario files,
//! the command line or output formats. See `ARCHITECTURE.md`.
pub mod aqm;
pub mod capture;
pub mod fattree;
pub mod ip;
pub mod link;
pub mod metrics;
pub mod packet;
pub mod rng;
pub mod route;
pub mod sched;
pub mod switch;
pub mod time;
pub mod topology;
pub mod trace;
pub mod wire;
pub mod world;

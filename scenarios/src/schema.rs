//! The scenario file format (RON), as Rust types. Documented field by field in
//! `docs/scenario-reference.md`; every field has a default unless marked required.
//!
//! Unknown fields are errors (`deny_unknown_fields`). Values with units are strings
//! ("100Mbps", "20ms", "100 packets"); their parsing lives in `units`.

use crate::units::{Duration, Ipv4Net, Probability, QueueLimit, Rate};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default = "default_duration")]
    pub duration: Duration,
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub nodes: NamedMap<NodeDecl>,
    #[serde(default)]
    pub links: Vec<LinkDecl>,
    #[serde(default)]
    pub routing: Routing,
    #[serde(default)]
    pub apps: Vec<AppDecl>,
    #[serde(default)]
    pub faults: Vec<FaultDecl>,
    #[serde(default)]
    pub record: Record,
}

fn default_duration() -> Duration {
    Duration::from_nanos(10_000_000_000)
}
fn default_seed() -> u64 {
    1
}

/// A map written `{ "name": value, ... }` that keeps file order and rejects duplicate names.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedMap<T>(pub Vec<(String, T)>);

impl<T> Default for NamedMap<T> {
    fn default() -> Self {
        NamedMap(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for NamedMap<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = NamedMap<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of names to values, like { \"h1\": Host(), \"r1\": Router() }")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, T)> = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    if out.iter().any(|(n, _)| *n == k) {
                        return Err(serde::de::Error::custom(format!(
                            "duplicate name \"{k}\": each name may be defined once"
                        )));
                    }
                    if k.is_empty() || k.contains(char::is_whitespace) {
                        return Err(serde::de::Error::custom(format!(
                            "invalid name \"{k}\": expected a non-empty name without spaces"
                        )));
                    }
                    let v = m.next_value::<T>()?;
                    out.push((k, v));
                }
                Ok(NamedMap(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub enum NodeDecl {
    Host(#[serde(default)] L3Decl),
    Router(#[serde(default)] L3Decl),
    Switch(#[serde(default)] SwitchDecl),
}

/// Settings of a host or router.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename = "Node")]
pub struct L3Decl {
    /// Static routes, added to (or, with `routing: Static`, instead of) automatic ones.
    #[serde(default)]
    pub routes: Vec<RouteDecl>,
    /// Write everything this node sends and receives to `node-<name>.pcap`.
    #[serde(default)]
    pub capture: bool,
    /// Kernel knobs (Linux names): ip_default_ttl, arp_retries, arp_retry_interval_ms,
    /// arp_cache_timeout_s, ipfrag_time_s, icmp_echo_ignore_all.
    #[serde(default)]
    pub sysctl: NamedMap<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename = "Switch")]
pub struct SwitchDecl {
    /// MAC table ageing time (Linux bridge default 300 s).
    #[serde(default)]
    pub aging: Option<Duration>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename = "Route")]
pub struct RouteDecl {
    /// Destination prefix, e.g. "10.0.9.0/24" or "0.0.0.0/0".
    pub to: Ipv4Net,
    /// Gateway address (must be on a connected subnet).
    pub via: std::net::Ipv4Addr,
}

/// Link settings shared by both directions, with optional per-direction overrides.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename = "Link")]
pub struct LinkDecl {
    pub a: String,
    pub b: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_rate")]
    pub rate: Rate,
    #[serde(default)]
    pub delay: Duration,
    #[serde(default)]
    pub jitter: Duration,
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    #[serde(default)]
    pub queue: QueueDecl,
    #[serde(default)]
    pub loss: LossDecl,
    #[serde(default)]
    pub duplicate: Option<Probability>,
    #[serde(default)]
    pub reorder: Option<ReorderDecl>,
    #[serde(default)]
    pub corrupt: Option<Probability>,
    #[serde(default)]
    pub a_to_b: Option<DirectionDecl>,
    #[serde(default)]
    pub b_to_a: Option<DirectionDecl>,
    /// The subnet of this link's segment.
    #[serde(default)]
    pub subnet: Option<Ipv4Net>,
    /// Address of the `a` end, e.g. "10.0.1.1/24".
    #[serde(default)]
    pub a_addr: Option<Ipv4Net>,
    #[serde(default)]
    pub b_addr: Option<Ipv4Net>,
    /// Write both directions to `link-<name>.pcap`.
    #[serde(default)]
    pub capture: bool,
}

fn default_rate() -> Rate {
    Rate::from_bits_per_sec(1_000_000_000).unwrap_or_else(|| unreachable!())
}
fn default_mtu() -> u32 {
    1500
}

/// Per-direction overrides of a link's settings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename = "Direction")]
pub struct DirectionDecl {
    #[serde(default)]
    pub rate: Option<Rate>,
    #[serde(default)]
    pub delay: Option<Duration>,
    #[serde(default)]
    pub jitter: Option<Duration>,
    #[serde(default)]
    pub queue: Option<QueueDecl>,
    #[serde(default)]
    pub loss: Option<LossDecl>,
    #[serde(default)]
    pub duplicate: Option<Probability>,
    #[serde(default)]
    pub reorder: Option<ReorderDecl>,
    #[serde(default)]
    pub corrupt: Option<Probability>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub enum QueueDecl {
    /// Drop-tail FIFO; `limit` like "100 packets" or "64KiB" (default 1000 packets).
    DropTail {
        #[serde(default)]
        limit: Option<QueueLimit>,
    },
}

impl Default for QueueDecl {
    fn default() -> Self {
        QueueDecl::DropTail { limit: None }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub enum LossDecl {
    #[default]
    None,
    Bernoulli(Probability),
    /// Gilbert-Elliott: p = P(good->bad), r = P(bad->good), loss in each state.
    GilbertElliott {
        p: Probability,
        r: Probability,
        #[serde(default)]
        loss_good: Option<Probability>,
        #[serde(default)]
        loss_bad: Option<Probability>,
    },
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename = "Reorder")]
pub struct ReorderDecl {
    pub probability: Probability,
    /// Extra delay of a reordered frame.
    pub delay: Duration,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub enum Routing {
    /// Shortest paths in router hops, with ECMP. `reconverge`: recompute routes this long
    /// after a link or node fails or recovers (default: routes never change).
    Auto {
        #[serde(default)]
        ecmp: Ecmp,
        #[serde(default)]
        reconverge: Option<Duration>,
    },
    /// Only connected routes and the `routes` given on each node.
    Static,
}

impl Default for Routing {
    fn default() -> Self {
        Routing::Auto {
            ecmp: Ecmp::PerFlow,
            reconverge: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
pub enum Ecmp {
    #[default]
    PerFlow,
    PerPacket,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub enum AppDecl {
    Ping {
        from: String,
        to: String,
        #[serde(default)]
        name: Option<String>,
        /// Echo requests to send (default: until the run ends).
        #[serde(default)]
        count: Option<u32>,
        #[serde(default)]
        interval: Option<Duration>,
        /// Payload bytes (default 56).
        #[serde(default)]
        size: Option<u32>,
        #[serde(default)]
        ttl: Option<u8>,
        #[serde(default)]
        start: Duration,
    },
    Traceroute {
        from: String,
        to: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        max_hops: Option<u8>,
        #[serde(default)]
        probes: Option<u8>,
        #[serde(default)]
        wait: Option<Duration>,
        #[serde(default)]
        start: Duration,
    },
    UdpCbr {
        from: String,
        /// "node:port" or "a.b.c.d:port".
        to: String,
        rate: Rate,
        #[serde(default)]
        name: Option<String>,
        /// UDP payload bytes per datagram (default 1000, at least 24).
        #[serde(default)]
        size: Option<u32>,
        #[serde(default)]
        start: Duration,
        #[serde(default)]
        duration: Option<Duration>,
        #[serde(default)]
        count: Option<u64>,
    },
    UdpSink {
        on: String,
        port: u16,
        #[serde(default)]
        name: Option<String>,
    },
    UdpEcho {
        on: String,
        port: u16,
        #[serde(default)]
        name: Option<String>,
    },
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub enum FaultDecl {
    /// Take a link down at `at`; back up after `for` if given.
    LinkDown {
        link: String,
        at: Duration,
        #[serde(default, rename = "for")]
        for_: Option<Duration>,
    },
    LinkUp {
        link: String,
        at: Duration,
    },
    /// Crash a node (it loses all state); restart it after `for` if given.
    NodeCrash {
        node: String,
        at: Duration,
        #[serde(default, rename = "for")]
        for_: Option<Duration>,
    },
    NodeRestart {
        node: String,
        at: Duration,
    },
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename = "Record")]
pub struct Record {
    /// Trace categories written to trace.jsonl (all when empty and --trace is given).
    #[serde(default)]
    pub trace: Vec<TraceCategory>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum TraceCategory {
    Link,
    L2,
    Arp,
    Ip,
    Icmp,
    Udp,
    Tcp,
    App,
    Fault,
}

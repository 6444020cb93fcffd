//! The scenario file format (RON), as Rust types. Documented field by field in
//! `docs/scenario-reference.md`; every field has a default unless marked required.
//!
//! Unknown fields are errors (`deny_unknown_fields`). Values with units are strings
//! ("100Mbps", "20ms", "100 packets"); their parsing lives in `units`.

use crate::units::{ByteSize, Duration, Ipv4Net, Probability, QueueLimit, Rate};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default = "default_duration")]
    pub duration: Duration,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Kernel knobs for every host and router (e.g. `{ "tcp_congestion_control": "cubic" }`);
    /// a node's own `sysctl` overrides them knob by knob.
    #[serde(default)]
    pub sysctl: NamedMap<SysctlValue>,
    /// Required unless `groups` declares the nodes.
    #[serde(default)]
    pub nodes: NamedMap<NodeDecl>,
    /// Many hosts at once: each group adds its hosts, switches, routers and links to
    /// `nodes` and `links` when the file is loaded (see the `groups` and `fabric` modules).
    #[serde(default)]
    pub groups: Vec<GroupDecl>,
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
    /// DNS zones by origin (`"."` is the root), served by `DnsServer` apps.
    #[serde(default)]
    pub zones: NamedMap<ZoneDecl>,
    /// What the groups added, for locating errors in it (not part of the file).
    #[serde(skip)]
    pub generated: Generated,
}

/// The nodes and links that `groups` added, and the declaration each came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Generated {
    /// Links before this index are written in the file; the others come from groups.
    pub first_link: usize,
    /// For each generated link: the path of what declared it (`groups[0].link`).
    pub link_origin: Vec<String>,
    /// Generated node name -> the path of its group (`groups[0]`).
    pub node_origin: std::collections::BTreeMap<String, String>,
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

impl<T: Serialize> Serialize for NamedMap<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
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

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub enum NodeDecl {
    Host(#[serde(default)] L3Decl),
    Router(#[serde(default)] L3Decl),
    Switch(#[serde(default)] SwitchDecl),
}

/// Settings of a host or router.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "Node")]
pub struct L3Decl {
    /// Static routes, added to (or, with `routing: Static`, instead of) automatic ones.
    #[serde(default)]
    pub routes: Vec<RouteDecl>,
    /// Write everything this node sends and receives to `node-<name>.pcap`.
    #[serde(default)]
    pub capture: bool,
    /// Kernel knobs (Linux names): IP and ARP (ip_default_ttl, arp_retries, ...) and TCP
    /// (tcp_syn_retries, tcp_rmem, somaxconn, ...); see `build::sysctl_names`.
    #[serde(default)]
    pub sysctl: NamedMap<SysctlValue>,
    /// DNS servers (resolv.conf `nameserver`s), in order: node names or addresses.
    #[serde(default)]
    pub dns: Vec<String>,
    /// Static host entries (/etc/hosts): DNS name to node name or address.
    #[serde(default)]
    pub hosts: NamedMap<String>,
    /// resolv.conf `options` of the stub resolver.
    #[serde(default)]
    pub dns_options: Option<DnsOptionsDecl>,
    /// Hosts only: the interface has no address until a DHCP server leases one (with the
    /// default route and DNS servers); the host's apps start once it has one.
    #[serde(default)]
    pub dhcp: bool,
}

/// resolv.conf `options` (glibc defaults: timeout 5 s, 2 attempts, no rotate, no edns0).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "DnsOptions")]
pub struct DnsOptionsDecl {
    /// Seconds per attempt (`options timeout:n`, 1 to 30).
    #[serde(default)]
    pub timeout: Option<u32>,
    /// Rounds over the servers (`options attempts:n`, 1 to 5).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Start each lookup at the next server (`options rotate`).
    #[serde(default)]
    pub rotate: bool,
    /// Queries carry an EDNS OPT record advertising 1200 bytes (`options edns0`).
    #[serde(default)]
    pub edns0: bool,
}

/// A DNS zone: its records and TTLs.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "Zone")]
pub struct ZoneDecl {
    /// TTL of records that give none, and of the SOA (default 1h).
    #[serde(default)]
    pub ttl: Option<Duration>,
    /// The SOA MINIMUM: how long resolvers cache NXDOMAIN and NODATA (default 5m).
    #[serde(default)]
    pub negative_ttl: Option<Duration>,
    /// The SOA serial (default 1).
    #[serde(default)]
    pub serial: Option<u32>,
    #[serde(default)]
    pub records: Vec<RecordDecl>,
}

/// A resource record. `name` is relative to the zone unless it ends with '.'; `"@"` is
/// the zone itself.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub enum RecordDecl {
    /// An address: `addr` is a node name (its first address) or a dotted address.
    A {
        name: String,
        addr: String,
        #[serde(default)]
        ttl: Option<Duration>,
    },
    /// A name server of `name` (a delegation when below the zone's apex).
    Ns {
        name: String,
        host: String,
        #[serde(default)]
        ttl: Option<Duration>,
    },
    /// An alias.
    Cname {
        name: String,
        target: String,
        #[serde(default)]
        ttl: Option<Duration>,
    },
}

/// A sysctl's value: an integer (`6`), a string (`"4096 131072 6291456"`, `"newreno"`,
/// `"30s"`) or a boolean. Which kinds a knob takes is checked when the scenario is
/// validated.
#[derive(Clone, Debug, PartialEq)]
pub enum SysctlValue {
    Int(u64),
    Str(String),
    Bool(bool),
}

impl fmt::Display for SysctlValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysctlValue::Int(v) => write!(f, "{v}"),
            SysctlValue::Str(v) => write!(f, "{v:?}"),
            SysctlValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

impl Serialize for SysctlValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SysctlValue::Int(v) => s.serialize_u64(*v),
            SysctlValue::Str(v) => s.serialize_str(v),
            SysctlValue::Bool(v) => s.serialize_bool(*v),
        }
    }
}

impl<'de> Deserialize<'de> for SysctlValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SysctlValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a sysctl value: a non-negative integer, a string like \"4096 131072 6291456\" or a boolean",
                )
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SysctlValue, E> {
                Ok(SysctlValue::Int(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SysctlValue, E> {
                u64::try_from(v)
                    .map(SysctlValue::Int)
                    .map_err(|_| E::custom(format!("sysctl values are not negative, found {v}")))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<SysctlValue, E> {
                Ok(SysctlValue::Bool(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SysctlValue, E> {
                Ok(SysctlValue::Str(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<SysctlValue, E> {
                Err(E::custom(format!(
                    "expected a whole number or a string for a sysctl, found {v}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "Switch")]
pub struct SwitchDecl {
    /// MAC table ageing time (Linux bridge default 300 s).
    #[serde(default)]
    pub aging: Option<Duration>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "Route")]
pub struct RouteDecl {
    /// Destination prefix, e.g. "10.0.9.0/24" or "0.0.0.0/0".
    pub to: Ipv4Net,
    /// Gateway address (must be on a connected subnet).
    pub via: std::net::Ipv4Addr,
}

/// Link settings shared by both directions, with optional per-direction overrides.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
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
    /// Boxed, like `b_to_a`: rarely given, and a generated fabric has 300,000 links.
    #[serde(default)]
    pub a_to_b: Option<Box<DirectionDecl>>,
    #[serde(default)]
    pub b_to_a: Option<Box<DirectionDecl>>,
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
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
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

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub enum QueueDecl {
    /// Drop-tail FIFO; `limit` like "100 packets" or "64KiB" (default 1000 packets).
    DropTail {
        #[serde(default)]
        limit: Option<QueueLimit>,
    },
    /// Random Early Detection (Floyd & Jacobson). The thresholds are in the unit of `limit`
    /// (packets or bytes), which selects packet or byte mode. Defaults: limit 1000 packets,
    /// max_th = limit/4, min_th = max_th/3, max_p 0.02, weight 0.002, gentle, no ECN,
    /// avpkt 1000 bytes.
    Red {
        #[serde(default)]
        limit: Option<QueueLimit>,
        #[serde(default)]
        min_th: Option<QueueLimit>,
        #[serde(default)]
        max_th: Option<QueueLimit>,
        #[serde(default)]
        max_p: Option<Probability>,
        /// The EWMA weight w_q of the average queue.
        #[serde(default)]
        weight: Option<Probability>,
        #[serde(default)]
        gentle: Option<bool>,
        #[serde(default)]
        ecn: bool,
        /// Typical packet size, for the idle-time correction of the average.
        #[serde(default)]
        avpkt: Option<ByteSize>,
    },
    /// Controlled Delay (RFC 8289). Defaults as Linux's codel: limit 1000 packets, target
    /// 5ms, interval 100ms, no ECN.
    CoDel {
        #[serde(default)]
        limit: Option<QueueLimit>,
        #[serde(default)]
        target: Option<Duration>,
        #[serde(default)]
        interval: Option<Duration>,
        #[serde(default)]
        ecn: bool,
    },
}

impl Default for QueueDecl {
    fn default() -> Self {
        QueueDecl::DropTail { limit: None }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "Reorder")]
pub struct ReorderDecl {
    pub probability: Probability,
    /// Extra delay of a reordered frame.
    pub delay: Duration,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
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

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Serialize)]
pub enum Ecmp {
    #[default]
    PerFlow,
    PerPacket,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
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
        /// The TOS byte of the datagrams (DSCP and ECN bits): 2 sends ECT(0), 1 ECT(1).
        #[serde(default)]
        tos: u8,
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
    /// iperf-like bulk TCP sender.
    TcpBulk(TcpBulkDecl),
    /// TCP sink: accepts, reads and verifies bulk streams.
    TcpSink(TcpSinkDecl),
    /// TCP request/response client.
    TcpRequestResponse(TcpRequestResponseDecl),
    /// TCP request/response server.
    TcpServer(TcpServerDecl),
    /// TCP echo server.
    TcpEcho(TcpEchoDecl),
    /// Gossip among a group of hosts: rumor mongering and anti-entropy over UDP.
    Gossip(GossipDecl),
    /// Authoritative DNS server for `zones` (origins in the scenario's `zones`).
    DnsServer {
        on: String,
        zones: Vec<String>,
        #[serde(default)]
        name: Option<String>,
        /// EDNS (RFC 6891); `false`: a server without EDNS, which answers queries with an
        /// OPT record FORMERR.
        #[serde(default = "yes")]
        edns: bool,
        /// The largest UDP answer it sends with EDNS, in bytes (default 1232).
        #[serde(default)]
        edns_size: Option<u32>,
    },
    /// Recursive DNS resolver; `root_hints`: the root servers (nodes or addresses).
    DnsResolver {
        on: String,
        root_hints: Vec<String>,
        #[serde(default)]
        name: Option<String>,
        /// Wait for an upstream answer (default 2s).
        #[serde(default)]
        timeout: Option<Duration>,
        /// Rounds over a zone's servers before SERVFAIL (default 2).
        #[serde(default)]
        attempts: Option<u32>,
        /// Cache entries kept at most (default 10000).
        #[serde(default)]
        cache_size: Option<u32>,
        /// EDNS (RFC 6891) upstream and to clients; `false`: none (plain queries, FORMERR
        /// to clients' OPT records).
        #[serde(default = "yes")]
        edns: bool,
        /// The UDP payload size it advertises upstream and answers clients within, in
        /// bytes (default 1232).
        #[serde(default)]
        edns_size: Option<u32>,
    },
    /// DHCP server (RFC 2131) on a host or router with static addresses.
    DhcpServer(DhcpServerDecl),
    /// DHCP relay agent on a router: forwards clients' requests to `servers`.
    DhcpRelay {
        on: String,
        /// Server node names or addresses.
        servers: Vec<String>,
        #[serde(default)]
        name: Option<String>,
    },
    /// SYNs from spoofed random sources through a raw socket.
    SynFlood {
        from: String,
        /// "node:port" or "a.b.c.d:port".
        to: String,
        /// SYNs per second.
        rate: u64,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        start: Duration,
        #[serde(default)]
        duration: Option<Duration>,
        #[serde(default)]
        count: Option<u64>,
        /// Network the spoofed source addresses are drawn from (default 198.18.0.0/15).
        #[serde(default)]
        source: Option<Ipv4Net>,
    },
}

impl AppDecl {
    /// The socket options of a TCP app; `None` for the others.
    pub fn tcp_sockopts(&self) -> Option<SockOptsDecl> {
        match self {
            AppDecl::TcpBulk(d) => Some(d.sockopts()),
            AppDecl::TcpSink(d) => Some(d.sockopts()),
            AppDecl::TcpRequestResponse(d) => Some(d.sockopts()),
            AppDecl::TcpServer(d) => Some(d.sockopts()),
            AppDecl::TcpEcho(d) => Some(d.sockopts()),
            _ => None,
        }
    }
}

/// Socket options common to the TCP apps (applied with setsockopt to every socket the app
/// opens; accepted connections inherit the listener's).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SockOptsDecl {
    pub reuse_addr: bool,
    pub keepalive: bool,
    pub keep_idle: Option<Duration>,
    pub keep_intvl: Option<Duration>,
    pub keep_cnt: Option<u8>,
    pub nodelay: bool,
    pub linger: Option<Duration>,
    pub sndbuf: Option<ByteSize>,
    pub rcvbuf: Option<ByteSize>,
    pub max_seg: Option<u16>,
    pub cc: Option<String>,
}

/// A TCP app's settings struct: its own fields plus the socket options.
macro_rules! tcp_app_decl {
    ($(#[$meta:meta])* $name:ident = $rename:literal {
        $($(#[$fmeta:meta])* $field:ident : $ty:ty,)*
    }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
        #[serde(deny_unknown_fields, rename = $rename)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// SO_REUSEADDR.
            #[serde(default)]
            pub reuse_addr: bool,
            /// SO_KEEPALIVE.
            #[serde(default)]
            pub keepalive: bool,
            /// TCP_KEEPIDLE (default: the host's tcp_keepalive_time).
            #[serde(default)]
            pub keep_idle: Option<Duration>,
            /// TCP_KEEPINTVL (default: tcp_keepalive_intvl).
            #[serde(default)]
            pub keep_intvl: Option<Duration>,
            /// TCP_KEEPCNT (default: tcp_keepalive_probes).
            #[serde(default)]
            pub keep_cnt: Option<u8>,
            /// TCP_NODELAY.
            #[serde(default)]
            pub nodelay: bool,
            /// SO_LINGER; "0s" aborts connections with RST on close.
            #[serde(default)]
            pub linger: Option<Duration>,
            /// SO_SNDBUF (default: tcp_wmem's default).
            #[serde(default)]
            pub sndbuf: Option<ByteSize>,
            /// SO_RCVBUF (default: tcp_rmem's default, auto-tuned).
            #[serde(default)]
            pub rcvbuf: Option<ByteSize>,
            /// TCP_MAXSEG.
            #[serde(default)]
            pub max_seg: Option<u16>,
            /// TCP_CONGESTION: the congestion controller, e.g. "cubic" (default: the
            /// host's tcp_congestion_control).
            #[serde(default)]
            pub cc: Option<String>,
        }

        impl $name {
            /// The socket options given on the app.
            pub fn sockopts(&self) -> SockOptsDecl {
                SockOptsDecl {
                    reuse_addr: self.reuse_addr,
                    keepalive: self.keepalive,
                    keep_idle: self.keep_idle,
                    keep_intvl: self.keep_intvl,
                    keep_cnt: self.keep_cnt,
                    nodelay: self.nodelay,
                    linger: self.linger,
                    sndbuf: self.sndbuf,
                    rcvbuf: self.rcvbuf,
                    max_seg: self.max_seg,
                    cc: self.cc.clone(),
                }
            }
        }
    };
}

fn yes() -> bool {
    true
}

tcp_app_decl! {
    /// `TcpBulk(...)`: connects to `to` and writes `bytes` (or for `duration`, or until
    /// the run ends) of generated data.
    TcpBulkDecl = "TcpBulk" {
        from: String,
        /// "node:port" or "a.b.c.d:port".
        to: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        bytes: Option<ByteSize>,
        #[serde(default)]
        start: Duration,
        /// Stop writing this long after `start`.
        #[serde(default)]
        duration: Option<Duration>,
        /// When done: FIN, read to end of stream, close (false: stay connected).
        #[serde(default = "yes")]
        close: bool,
        /// Bytes per send() call (default 64KiB).
        #[serde(default)]
        write_size: Option<ByteSize>,
        /// Bind this local port before connecting.
        #[serde(default)]
        local_port: Option<u16>,
    }
}

tcp_app_decl! {
    /// `TcpSink(...)`: listens on `port`, reads and verifies everything.
    TcpSinkDecl = "TcpSink" {
        on: String,
        port: u16,
        #[serde(default)]
        name: Option<String>,
        /// listen() backlog (default 128).
        #[serde(default)]
        backlog: Option<u32>,
        /// Read at most this fast per connection (default: as fast as data arrives).
        #[serde(default)]
        read_rate: Option<Rate>,
        /// Start accepting connections only this long after the start.
        #[serde(default)]
        accept_delay: Option<Duration>,
    }
}

tcp_app_decl! {
    /// `TcpRequestResponse(...)`: `count` requests of `request` bytes, each answered
    /// with `response` bytes by a `TcpServer`.
    TcpRequestResponseDecl = "TcpRequestResponse" {
        from: String,
        /// "node:port" or "a.b.c.d:port".
        to: String,
        #[serde(default)]
        name: Option<String>,
        /// Requests (default 1).
        #[serde(default)]
        count: Option<u64>,
        /// Request bytes (default 100, at least 16).
        #[serde(default)]
        request: Option<u32>,
        /// Response bytes (default 1000).
        #[serde(default)]
        response: Option<u64>,
        /// A new connection for every request (default: one connection).
        #[serde(default)]
        per_connection: bool,
        /// Start requests at least this far apart.
        #[serde(default)]
        interval: Option<Duration>,
        #[serde(default)]
        start: Duration,
        /// Bind this local port before connecting.
        #[serde(default)]
        local_port: Option<u16>,
    }
}

tcp_app_decl! {
    /// `TcpServer(...)`: answers `TcpRequestResponse` requests.
    TcpServerDecl = "TcpServer" {
        on: String,
        port: u16,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        backlog: Option<u32>,
        /// Answer every request with this many bytes (default: what the request asks).
        #[serde(default)]
        response: Option<u64>,
    }
}

tcp_app_decl! {
    /// `TcpEcho(...)`: TCP echo server.
    TcpEchoDecl = "TcpEcho" {
        on: String,
        port: u16,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        backlog: Option<u32>,
    }
}

/// `Gossip(...)`: every member runs one gossip node; they spread the `rumors`.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "Gossip")]
pub struct GossipDecl {
    /// The members: host groups (all their hosts) and hosts or routers, by name.
    pub on: Vec<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// UDP port every member listens on (default 7946).
    #[serde(default)]
    pub port: Option<u16>,
    /// Rumor mongering exchange (default Push).
    #[serde(default)]
    pub mode: GossipModeDecl,
    /// Peers contacted per round (default 1).
    #[serde(default)]
    pub fanout: Option<u32>,
    /// Round length (default 1s).
    #[serde(default)]
    pub period: Option<Duration>,
    /// The first round (default 0s).
    #[serde(default)]
    pub start: Duration,
    /// Loss of interest counts only contacts that already knew the rumor (default true).
    #[serde(default = "yes")]
    pub feedback: bool,
    /// When a member stops spreading a rumor (default Counter(k: 2)).
    #[serde(default)]
    pub lose_interest: LoseInterestDecl,
    /// Anti-entropy (push-pull of the full state with one random peer) this often.
    #[serde(default)]
    pub anti_entropy: Option<Duration>,
    #[serde(default)]
    pub rumors: Vec<RumorDecl>,
    /// SWIM membership: failure detection; members stop gossiping to members they believe
    /// dead (default: none, every member gossips with every other).
    #[serde(default)]
    pub membership: Option<SwimDecl>,
}

/// `Swim(...)`: SWIM failure detection and membership dissemination.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "Swim")]
pub struct SwimDecl {
    /// One probe per member this often (default 1s).
    #[serde(default)]
    pub probe_period: Option<Duration>,
    /// Time for a direct ping's ACK before indirect pings (default 500ms).
    #[serde(default)]
    pub probe_timeout: Option<Duration>,
    /// Members asked to ping indirectly (default 3).
    #[serde(default)]
    pub indirect: Option<u32>,
    /// How long a suspect has to refute before it is declared dead (default 5s).
    #[serde(default)]
    pub suspicion: Option<Duration>,
    /// Every this many periods, probe a member believed dead instead (default 5; 0:
    /// never).
    #[serde(default)]
    pub reconnect_every: Option<u32>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Serialize, Eq)]
pub enum GossipModeDecl {
    #[default]
    Push,
    Pull,
    PushPull,
    /// No rumor mongering: anti-entropy only.
    Off,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Serialize, Eq)]
#[serde(deny_unknown_fields)]
pub enum LoseInterestDecl {
    Never,
    /// Each counting contact removes the rumor with probability 1/k.
    Coin {
        k: u32,
    },
    /// The k-th counting contact removes it.
    Counter {
        k: u32,
    },
}

impl Default for LoseInterestDecl {
    fn default() -> Self {
        LoseInterestDecl::Counter { k: 2 }
    }
}

/// `Rumor(from, at, size)`: a rumor born on member `from` at `at`.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "Rumor")]
pub struct RumorDecl {
    pub from: String,
    pub at: Duration,
    /// Value bytes (default 16).
    #[serde(default)]
    pub size: Option<u32>,
}

/// A declaration of many hosts and the network that joins them.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
pub enum GroupDecl {
    HostGroup(HostGroupDecl),
    FatTree(FatTreeDecl),
}

impl GroupDecl {
    /// The group's name; apps name it to mean all its hosts.
    pub fn name(&self) -> &str {
        match self {
            GroupDecl::HostGroup(d) => &d.name,
            GroupDecl::FatTree(d) => &d.name,
        }
    }
}

/// `FatTree(...)`: a k-ary fat-tree data center network (Al-Fares et al. 2008): k pods of
/// k/2 edge and k/2 aggregation routers, (k/2)^2 core routers, k/2 hosts per edge router.
/// It is the whole network of its scenario.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "FatTree")]
pub struct FatTreeDecl {
    /// Names the fabric; its nodes are named after it, apps name it to mean all its hosts.
    pub name: String,
    /// The arity: an even number from 2 to 128 (k = 74 gives 101,306 hosts).
    pub k: u32,
    /// Every host's link to its edge router.
    #[serde(default)]
    pub host_link: LinkTemplate,
    /// Every edge router's link to each aggregation router of its pod.
    #[serde(default)]
    pub agg_link: LinkTemplate,
    /// Every aggregation router's link to each core router of its column.
    #[serde(default)]
    pub core_link: LinkTemplate,
    /// Kernel knobs of the hosts.
    #[serde(default)]
    pub sysctl: NamedMap<SysctlValue>,
}

/// `HostGroup(...)`: `count` hosts on one switched LAN, or on `lans` LANs each behind a
/// gateway router, the gateways joined by a core router.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "HostGroup")]
pub struct HostGroupDecl {
    /// Names the group; apps name it to mean all its hosts.
    pub name: String,
    pub count: u32,
    /// Host names: `{}` is replaced by the index 0..count-1 (default "<name>-{}").
    #[serde(default)]
    pub hosts: Option<String>,
    /// LANs the hosts are spread over, in consecutive blocks (default 1).
    #[serde(default)]
    pub lans: Option<u32>,
    /// The block the LAN subnets are cut from (default 172.(16+g).0.0/16 for group g).
    #[serde(default)]
    pub subnet: Option<Ipv4Net>,
    /// Every host's link to its LAN switch.
    #[serde(default)]
    pub link: LinkTemplate,
    /// Every gateway's link to the core router (lans > 1).
    #[serde(default)]
    pub uplink: LinkTemplate,
    /// Kernel knobs of the hosts.
    #[serde(default)]
    pub sysctl: NamedMap<SysctlValue>,
}

/// The settings of a generated link: a `Link` without ends, names or addresses.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "Link")]
pub struct LinkTemplate {
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
}

impl Default for LinkTemplate {
    fn default() -> Self {
        LinkTemplate {
            rate: default_rate(),
            delay: Duration::default(),
            jitter: Duration::default(),
            mtu: default_mtu(),
            queue: QueueDecl::default(),
            loss: LossDecl::default(),
            duplicate: None,
            reorder: None,
            corrupt: None,
        }
    }
}

impl LinkTemplate {
    /// A link from `a` to `b` with these settings.
    pub fn link(
        &self,
        a: &str,
        b: &str,
        name: Option<String>,
        subnet: Option<Ipv4Net>,
    ) -> LinkDecl {
        LinkDecl {
            a: a.to_string(),
            b: b.to_string(),
            name,
            rate: self.rate,
            delay: self.delay,
            jitter: self.jitter,
            mtu: self.mtu,
            queue: self.queue.clone(),
            loss: self.loss.clone(),
            duplicate: self.duplicate,
            reorder: self.reorder.clone(),
            corrupt: self.corrupt,
            a_to_b: None,
            b_to_a: None,
            subnet,
            a_addr: None,
            b_addr: None,
            capture: false,
        }
    }
}

/// `DhcpServer(...)`: leases addresses from `pools`.
#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "DhcpServer")]
pub struct DhcpServerDecl {
    pub on: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Address pools, one per subnet served (default: one for each subnet the server is
    /// on, with every address not assigned statically).
    #[serde(default)]
    pub pools: Vec<PoolDecl>,
    /// Lease time of pools that do not set one (default 1h).
    #[serde(default)]
    pub lease: Option<Duration>,
    /// How long an offered address is held for the client (default 30s).
    #[serde(default)]
    pub offer_hold: Option<Duration>,
    /// Fixed addresses for DHCP hosts, by node name: `{ "printer": "10.0.1.50" }`.
    #[serde(default)]
    pub reservations: NamedMap<std::net::Ipv4Addr>,
}

/// One pool of a DHCP server: a subnet (a segment of the network) and a range in it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "Pool")]
pub struct PoolDecl {
    /// The subnet served (default: the subnet containing `range`).
    #[serde(default)]
    pub subnet: Option<Ipv4Net>,
    /// Addresses handed out, "first-last" (default: every address of the subnet not
    /// assigned statically).
    #[serde(default)]
    pub range: Option<String>,
    /// Default gateway given to clients: a node name or an address (default: the first
    /// router on the subnet).
    #[serde(default)]
    pub router: Option<String>,
    /// DNS servers given to clients: node names or addresses.
    #[serde(default)]
    pub dns: Vec<String>,
    /// Lease time (default: the server's `lease`).
    #[serde(default)]
    pub lease: Option<Duration>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
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
    /// Kill an app (by name) at `at`: the kernel closes its sockets, as for a killed
    /// process.
    KillApp {
        app: String,
        at: Duration,
    },
}

#[derive(Clone, Debug, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, rename = "Record")]
pub struct Record {
    /// Trace categories written to trace.jsonl (all when empty and --trace is given).
    #[serde(default)]
    pub trace: Vec<TraceCategory>,
    /// Write `tcp-series.csv`: one row per ACK each TCP sender processes (cwnd, ssthresh,
    /// RTT, RTO, bytes in flight, delivered bytes), whether or not trace.jsonl is written.
    #[serde(default)]
    pub tcp_series: bool,
    /// Sample every flow and link direction at this step of simulated time:
    /// `flow-series.csv` (received bytes, throughput) and `link-series.csv` (queue
    /// occupancy, throughput). Off by default.
    #[serde(default)]
    pub series_interval: Option<Duration>,
    /// List link directions that sent no frame in summary.json (default). `false` leaves
    /// them out, which keeps the summary of a large topology with light traffic small.
    #[serde(default = "yes")]
    pub idle_links: bool,
}

impl Default for Record {
    fn default() -> Self {
        Record {
            trace: Vec::new(),
            tcp_series: false,
            series_interval: None,
            idle_links: true,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Serialize, Eq)]
pub enum TraceCategory {
    Link,
    L2,
    Arp,
    Ip,
    Icmp,
    Udp,
    Tcp,
    TcpProbe,
    App,
    Fault,
    Dns,
    Dhcp,
}

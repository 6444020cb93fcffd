//! Building a [`World`] from a validated scenario.

use crate::load::{app_name, app_node, link_name, Loaded, ScenarioError};
use crate::schema::*;
use protocols::apps::dhcp as dhcp_apps;
use protocols::apps::{cbr, echo, ping, syn_flood, tcp_bulk, tcp_echo, tcp_rr, traceroute};
use protocols::host::{AppSlot, HostConfig, HostStack};
use protocols::tcp::{SockOpts, TcpConfig};
use protocols::App;
use sim_core::aqm::{Aqm, CoDelConfig, RedConfig};
use sim_core::ip::{Iface, IpConfig, IpNode};
use sim_core::link::{ChannelConfig, LossModel, QueueLimit};
use sim_core::packet::MacAddr;
use sim_core::route::{EcmpMode, NextHop, Prefix, Route, RouteOrigin, RouteTable};
use sim_core::switch::{LearningSwitch, DEFAULT_AGING};
use sim_core::time::{SimDuration, SimTime};
use sim_core::topology::{self, AddressPlan, NodeKind, TopoLink, TopoNode, TopologyError};
use sim_core::world::{FaultAction, LinkId, NodeId, NodeSpec, RerouteConfig, World};
use std::rc::Rc;

/// The IP layer's kernel knobs; with TCP's (`TcpConfig::KNOBS` and an alias) they make up
/// what a scenario may set per host or router (see [`sysctl_names`]).
pub const IP_SYSCTLS: &[&str] = &[
    "ip_default_ttl",
    "arp_retries",
    "arp_retry_interval_ms",
    "arp_cache_timeout_s",
    "arp_delay_first_probe_s",
    "arp_ucast_probes",
    "ipfrag_time_s",
    "icmp_echo_ignore_all",
];

/// Other names accepted for TCP knobs (`tcp_rto_min` in milliseconds).
const TCP_SYSCTL_ALIASES: &[&str] = &["tcp_rto_min_ms"];

/// Every sysctl name a scenario may use, in documentation order.
pub fn sysctl_names() -> impl Iterator<Item = &'static str> {
    IP_SYSCTLS
        .iter()
        .chain(TcpConfig::KNOBS)
        .chain(TCP_SYSCTL_ALIASES)
        .copied()
}

pub fn is_sysctl(name: &str) -> bool {
    sysctl_names().any(|k| k == name)
}

/// A sysctl problem: (knob name, message).
type SysctlError = (String, String);

fn dur(d: crate::units::Duration) -> SimDuration {
    SimDuration::from_nanos(d.as_nanos())
}

fn prefix(n: crate::units::Ipv4Net) -> Prefix {
    Prefix::new(n.addr(), n.prefix_len())
}

/// A deterministic, locally administered MAC for a node's port.
fn mac_for(node: &str, port: usize) -> MacAddr {
    let h = blake3::hash(format!("mac:{node}:{port}").as_bytes());
    let b = h.as_bytes();
    MacAddr([0x02, b[0], b[1], b[2], b[3], b[4]])
}

/// The hard limit of a queue: `limit`, or 1000 packets (Linux's txqueuelen).
fn hard_limit(limit: Option<crate::units::QueueLimit>) -> QueueLimit {
    match limit {
        None => QueueLimit::default(),
        Some(crate::units::QueueLimit::Packets(n)) => QueueLimit {
            packets: Some(n),
            bytes: None,
        },
        Some(crate::units::QueueLimit::Bytes(b)) => QueueLimit {
            packets: None,
            bytes: Some(b),
        },
    }
}

/// A problem with a queue declaration: (the field at fault, message).
type QueueError = (&'static str, String);

/// Link-layer header bytes on top of the IP MTU: CoDel's "MTU" is a whole frame (Linux's
/// psched_mtu: device MTU plus hard header length).
const ETHERNET_HEADER: u32 = 14;

/// The hard limit and discipline a queue declaration asks for, on a link with IP MTU
/// `mtu`. Defaults: DropTail as Linux's txqueuelen; Red as tc-red's rules (max_th =
/// limit/4, min_th = max_th/3, probability 0.02) with w_q = 0.002 and gentle on, as
/// Floyd recommends; CoDel as Linux's codel (5 ms, 100 ms, 1000 packets, no ECN).
fn queue_config(q: &QueueDecl, mtu: u32) -> Result<(QueueLimit, Aqm), QueueError> {
    use crate::units::QueueLimit as Limit;
    match q {
        QueueDecl::DropTail { limit } => Ok((hard_limit(*limit), Aqm::None)),
        QueueDecl::Red {
            limit,
            min_th,
            max_th,
            max_p,
            weight,
            gentle,
            ecn,
            avpkt,
        } => {
            let lim = limit.unwrap_or(Limit::Packets(1000));
            let (cap, bytes) = match lim {
                Limit::Packets(n) => (n as u64, false),
                Limit::Bytes(b) => (b, true),
            };
            let show = |v: u64| match bytes {
                false => Limit::Packets(v.min(u32::MAX as u64) as u32).to_string(),
                true => Limit::Bytes(v).to_string(),
            };
            let threshold =
                |field: &'static str, v: Option<Limit>| match v {
                    None => Ok(None),
                    Some(Limit::Packets(n)) if !bytes => Ok(Some(n as u64)),
                    Some(Limit::Bytes(b)) if bytes => Ok(Some(b)),
                    Some(other) => {
                        Err((
                            field,
                            format!(
                        "{field} is {other} but limit is {lim}{}: give the thresholds and the \
                         limit in the same unit (packets, or bytes for byte mode)",
                        if limit.is_none() { " (the default)" } else { "" }
                    ),
                        ))
                    }
                };
            let max = threshold("max_th", *max_th)?;
            let min = threshold("min_th", *min_th)?;
            let max_default = max.is_none();
            let max = max.unwrap_or(cap / 4);
            let min = min.unwrap_or(max / 3);
            if max > cap {
                return Err((
                    "max_th",
                    format!("max_th ({}) must not exceed limit ({lim})", show(max)),
                ));
            }
            if max == 0 {
                return Err((
                    "max_th",
                    format!(
                        "max_th ({}) must be greater than 0{}",
                        show(max),
                        if max_default {
                            ", limit/4 by default"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            if min > max {
                return Err((
                    "min_th",
                    format!(
                        "min_th ({}) must not exceed max_th ({}{})",
                        show(min),
                        show(max),
                        if max_default {
                            ", limit/4 by default"
                        } else {
                            ""
                        }
                    ),
                ));
            }
            let max_p = max_p.map_or(0.02, |p| p.value());
            if max_p <= 0.0 {
                return Err((
                    "max_p",
                    "max_p must be greater than 0 (and at most 1)".into(),
                ));
            }
            let weight = weight.map_or(0.002, |p| p.value());
            if weight <= 0.0 {
                return Err((
                    "weight",
                    "weight must be greater than 0 (and at most 1)".into(),
                ));
            }
            let avpkt = avpkt.map_or(1000, |b| b.as_bytes());
            if avpkt == 0 || avpkt > u32::MAX as u64 {
                return Err((
                    "avpkt",
                    format!(
                        "avpkt must be from 1B to {}",
                        crate::units::ByteSize::from_bytes(u32::MAX as u64)
                    ),
                ));
            }
            let red = RedConfig {
                min_th: min,
                max_th: max,
                bytes,
                max_p,
                weight,
                gentle: gentle.unwrap_or(true),
                ecn: *ecn,
                avpkt: avpkt as u32,
            };
            Ok((hard_limit(Some(lim)), Aqm::Red(red)))
        }
        QueueDecl::CoDel {
            limit,
            target,
            interval,
            ecn,
        } => {
            let d = CoDelConfig::default();
            let target = target.map_or(d.target, dur);
            if target == SimDuration::ZERO {
                return Err(("target", "target must be greater than zero".into()));
            }
            let interval = interval.map_or(d.interval, dur);
            if interval == SimDuration::ZERO {
                return Err(("interval", "interval must be greater than zero".into()));
            }
            let codel = CoDelConfig {
                target,
                interval,
                ecn: *ecn,
                mtu: mtu + ETHERNET_HEADER,
            };
            Ok((hard_limit(*limit), Aqm::CoDel(codel)))
        }
    }
}

/// The configuration of link `i`'s direction with overrides `over` (`dir` names that
/// field: "a_to_b" or "b_to_a").
fn channel(
    l: &Loaded,
    i: usize,
    k: &LinkDecl,
    dir: &str,
    over: Option<&DirectionDecl>,
) -> Result<ChannelConfig, ScenarioError> {
    let o = over.cloned().unwrap_or_default();
    let (queue_decl, queue_path) = match &o.queue {
        Some(q) => (q, format!("links[{i}].{dir}.queue")),
        None => (&k.queue, format!("links[{i}].queue")),
    };
    let (queue, aqm) = queue_config(queue_decl, k.mtu)
        .map_err(|(field, m)| l.error_at(&format!("{queue_path}.{field}"), m))?;
    let loss = match o.loss.as_ref().unwrap_or(&k.loss) {
        LossDecl::None => LossModel::None,
        LossDecl::Bernoulli(p) => LossModel::Bernoulli(p.value()),
        LossDecl::GilbertElliott {
            p,
            r,
            loss_good,
            loss_bad,
        } => LossModel::GilbertElliott {
            p: p.value(),
            r: r.value(),
            loss_good: loss_good.map_or(0.0, |x| x.value()),
            loss_bad: loss_bad.map_or(1.0, |x| x.value()),
        },
    };
    let reorder = o.reorder.as_ref().or(k.reorder.as_ref());
    Ok(ChannelConfig {
        rate_bps: o.rate.unwrap_or(k.rate).bits_per_sec(),
        delay: dur(o.delay.unwrap_or(k.delay)),
        jitter: dur(o.jitter.unwrap_or(k.jitter)),
        queue,
        aqm,
        loss,
        duplicate: o.duplicate.or(k.duplicate).map_or(0.0, |p| p.value()),
        reorder: reorder.map_or(0.0, |r| r.probability.value()),
        reorder_delay: reorder.map_or(SimDuration::ZERO, |r| dur(r.delay)),
        corrupt: o.corrupt.or(k.corrupt).map_or(0.0, |p| p.value()),
    })
}

/// An integer sysctl (a number, or a string holding one) in `lo..=hi`.
fn sysctl_int(v: &SysctlValue, lo: u64, hi: u64) -> Result<u64, String> {
    let n = match v {
        SysctlValue::Int(n) => Some(*n),
        SysctlValue::Str(t) => t.trim().parse().ok(),
        SysctlValue::Bool(_) => None,
    };
    match n {
        Some(n) if (lo..=hi).contains(&n) => Ok(n),
        Some(n) => Err(format!("{n} is out of range: expected {lo} to {hi}")),
        None => Err(format!("expected an integer, found {v}")),
    }
}

/// A boolean sysctl: 0 or 1 (any non-zero integer is on, as in Linux), or true/false.
fn sysctl_flag(v: &SysctlValue) -> Result<bool, String> {
    match v {
        SysctlValue::Bool(b) => Ok(*b),
        _ => sysctl_int(v, 0, u64::MAX)
            .map(|n| n != 0)
            .map_err(|_| format!("expected 0, 1, true or false, found {v}")),
    }
}

/// A time sysctl: an integer in `unit_ns` (Linux's unit for the knob), or a duration
/// string with its unit ("30s", "200ms").
fn sysctl_time(v: &SysctlValue, unit_ns: u64, unit: &str) -> Result<SimDuration, String> {
    if let Ok(n) = sysctl_int(v, 0, u64::MAX / unit_ns) {
        return Ok(SimDuration::from_nanos(n * unit_ns));
    }
    match v {
        SysctlValue::Str(t) => t
            .parse::<crate::units::Duration>()
            .map(dur)
            .map_err(|e| e.to_string()),
        _ => Err(format!(
            "expected a number of {unit} or a duration like \"200ms\", found {v}"
        )),
    }
}

/// tcp_rmem / tcp_wmem: "min default max" in bytes, as Linux writes them.
fn sysctl_triple(v: &SysctlValue) -> Result<[u32; 3], String> {
    let bad = || {
        format!("expected three byte counts \"min default max\" like \"4096 131072 6291456\", found {v}")
    };
    let SysctlValue::Str(t) = v else {
        return Err(bad());
    };
    let nums: Vec<u32> = t
        .split_whitespace()
        .map(|x| x.parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    match nums[..] {
        [a, b, c] if a <= b && b <= c && a > 0 => Ok([a, b, c]),
        [_, _, _] => Err(format!("{t:?}: expected 0 < min <= default <= max")),
        _ => Err(bad()),
    }
}

/// The IP layer's settings from a node's sysctls (TCP knobs are left to [`tcp_config`]).
pub(crate) fn ip_config(d: &L3Decl) -> Result<IpConfig, SysctlError> {
    let mut c = IpConfig::default();
    for (k, v) in &d.sysctl.0 {
        let e = |m: String| (k.clone(), m);
        let int = |lo, hi| sysctl_int(v, lo, hi).map_err(e);
        match k.as_str() {
            "ip_default_ttl" => c.default_ttl = int(0, u64::MAX)?.clamp(1, 255) as u8,
            "arp_retries" => c.arp_retries = int(0, u64::MAX)?.clamp(1, 255) as u8,
            "arp_retry_interval_ms" => {
                c.arp_retry_interval =
                    SimDuration::from_millis(int(0, u64::MAX / 1_000_000)?.max(1))
            }
            "arp_cache_timeout_s" => {
                c.arp_cache_timeout = SimDuration::from_secs(int(0, u64::MAX / 1_000_000_000)?)
            }
            "arp_delay_first_probe_s" => {
                c.arp_delay_first_probe = SimDuration::from_secs(int(0, u64::MAX / 1_000_000_000)?)
            }
            "arp_ucast_probes" => c.arp_ucast_probes = int(0, 255)? as u8,
            "ipfrag_time_s" => {
                c.reassembly_timeout =
                    SimDuration::from_secs(int(0, u64::MAX / 1_000_000_000)?.max(1))
            }
            "icmp_echo_ignore_all" => c.echo_reply = !sysctl_flag(v).map_err(e)?,
            _ => {}
        }
    }
    Ok(c)
}

/// A host's TCP settings from its sysctls: Linux's defaults, overridden by name.
pub fn tcp_config(d: &L3Decl) -> Result<TcpConfig, SysctlError> {
    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;
    let mut c = TcpConfig::default();
    for (k, v) in &d.sysctl.0 {
        let e = |m: String| (k.clone(), m);
        let int = |lo, hi| sysctl_int(v, lo, hi).map_err(e);
        let flag = || sysctl_flag(v).map_err(e);
        let secs = || sysctl_time(v, S, "seconds").map_err(e);
        let millis = || sysctl_time(v, MS, "milliseconds").map_err(e);
        match k.as_str() {
            "tcp_syn_retries" => c.syn_retries = int(1, 127)? as u8,
            "tcp_synack_retries" => c.synack_retries = int(0, 255)? as u8,
            "tcp_retries2" => c.retries2 = int(0, 255)? as u8,
            "tcp_orphan_retries" => c.orphan_retries = int(0, 255)? as u8,
            "tcp_fin_timeout" => c.fin_timeout = secs()?,
            "tcp_time_wait" => c.time_wait = secs()?,
            "tcp_abort_on_overflow" => c.abort_on_overflow = flag()?,
            "tcp_syncookies" => c.syncookies = int(0, 2)? as u8,
            "somaxconn" => c.somaxconn = int(0, u32::MAX as u64)? as u32,
            "tcp_max_syn_backlog" => c.max_syn_backlog = int(1, u32::MAX as u64)? as u32,
            "tcp_keepalive_time" => c.keepalive_time = secs()?,
            "tcp_keepalive_intvl" => c.keepalive_intvl = secs()?,
            "tcp_keepalive_probes" => c.keepalive_probes = int(1, 127)? as u8,
            "tcp_rmem" => c.rmem = sysctl_triple(v).map_err(e)?,
            "tcp_wmem" => c.wmem = sysctl_triple(v).map_err(e)?,
            "tcp_moderate_rcvbuf" => c.moderate_rcvbuf = flag()?,
            "tcp_init_cwnd" => c.initial_cwnd = int(1, u32::MAX as u64)? as u32,
            "tcp_rto_min" | "tcp_rto_min_ms" => c.rto_min = millis()?,
            "tcp_rto_max" => c.rto_max = millis()?,
            "tcp_rto_initial" => c.rto_initial = millis()?,
            "tcp_sack" => c.sack = flag()?,
            "tcp_timestamps" => c.timestamps = flag()?,
            "tcp_window_scaling" => c.window_scaling = flag()?,
            "tcp_congestion_control" => {
                let name = match v {
                    SysctlValue::Str(t) => t.trim().to_string(),
                    _ => return Err(e(format!("expected a name like \"newreno\", found {v}"))),
                };
                if protocols::tcp::cc::by_name(&name).is_none() {
                    return Err(e(format!(
                        "unknown congestion control \"{name}\"; expected one of: {}",
                        protocols::tcp::cc::names().join(", ")
                    )));
                }
                c.congestion_control = name;
            }
            "tcp_slow_start_after_idle" => c.slow_start_after_idle = flag()?,
            "tcp_pacing" => c.pacing = flag()?,
            "tcp_gso" => c.gso = flag()?,
            "tcp_min_tso_segs" => c.min_tso_segs = int(1, 255)? as u32,
            "tcp_tso_rtt_log" => c.tso_rtt_log = int(0, 31)? as u8,
            "tcp_quickack" => c.quickack = flag()?,
            "tcp_delack_min" => c.delack_min = millis()?,
            "tcp_delack_max" => c.delack_max = millis()?,
            "tcp_reordering" => c.reordering = int(1, u32::MAX as u64)? as u32,
            "tcp_recovery" => c.recovery = int(0, 7)? as u8,
            "tcp_early_retrans" => c.early_retrans = int(0, 4)? as u8,
            "tcp_ecn" => c.ecn = int(0, 2)? as u8,
            "tcp_ecn_fallback" => c.ecn_fallback = flag()?,
            _ => {}
        }
    }
    if c.rto_min > c.rto_max {
        return Err((
            "tcp_rto_min".into(),
            "tcp_rto_min must not exceed tcp_rto_max".into(),
        ));
    }
    Ok(c)
}

fn sockopts(o: &SockOptsDecl) -> SockOpts {
    SockOpts {
        reuse_addr: o.reuse_addr,
        keepalive: o.keepalive,
        keep_idle: o.keep_idle.map(dur),
        keep_intvl: o.keep_intvl.map(dur),
        keep_cnt: o.keep_cnt,
        nodelay: o.nodelay,
        linger: o.linger.map(dur),
        sndbuf: o.sndbuf.map(|b| b.as_bytes().min(u32::MAX as u64) as u32),
        rcvbuf: o.rcvbuf.map(|b| b.as_bytes().min(u32::MAX as u64) as u32),
        max_seg: o.max_seg,
        // Validation rejected names that are not registered (and so too long).
        congestion: o.cc.as_deref().and_then(protocols::tcp::cc::CcName::new),
    }
}

/// What was built, for reporting.
pub struct Built {
    pub world: World,
    pub plan: AddressPlan,
    pub kinds: Vec<NodeKind>,
    /// Link directions in order: (link id, from, to).
    pub link_names: Vec<String>,
    /// The gossip apps, in app order.
    pub gossip: Vec<crate::gossip::GossipRun>,
}

fn topo_error(l: &Loaded, e: TopologyError) -> ScenarioError {
    let link = match &e {
        TopologyError::ConflictingSubnets { second, .. } => Some(*second),
        TopologyError::AddressOutsideSubnet { link, .. }
        | TopologyError::DuplicateAddress { link, .. }
        | TopologyError::SubnetFull { link, .. }
        | TopologyError::AddressOnSwitch { link } => Some(*link),
        TopologyError::OutOfSubnets => None,
    };
    l.error_at(
        &link
            .map(|i| format!("links[{i}]"))
            .unwrap_or_else(|| "links".into()),
        e.to_string(),
    )
}

/// Every check that building the network makes (addressing, subnets, route gateways),
/// without running anything: `netdes check`. It builds the world with the scenario's seed
/// and drops it, so it rejects exactly what [`build`] (and so `netdes run`) rejects, with
/// the same messages. No build error depends on the seed.
pub fn check(l: &Loaded) -> Result<(), ScenarioError> {
    build(l, l.scenario.seed).map(drop)
}

/// Builds the world for `l` with `seed`.
pub fn build(l: &Loaded, seed: u64) -> Result<Built, ScenarioError> {
    let s = &l.scenario;
    let names: Vec<&str> = s.nodes.0.iter().map(|(n, _)| n.as_str()).collect();
    let by_name: std::collections::BTreeMap<&str, usize> =
        names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let index = |n: &str| by_name.get(n).copied().unwrap_or(0);
    let kinds: Vec<NodeKind> = s
        .nodes
        .0
        .iter()
        .map(|(_, d)| match d {
            NodeDecl::Host(_) => NodeKind::Host,
            NodeDecl::Router(_) => NodeKind::Router,
            NodeDecl::Switch(_) => NodeKind::Switch,
        })
        .collect();
    let topo_nodes: Vec<TopoNode> = names
        .iter()
        .zip(&kinds)
        .enumerate()
        .map(|(i, (n, k))| TopoNode {
            name: n.to_string(),
            kind: *k,
            dynamic_address: is_dhcp_host(s, i),
        })
        .collect();
    let topo_links: Vec<TopoLink> = s
        .links
        .iter()
        .map(|k| TopoLink {
            a: index(&k.a),
            b: index(&k.b),
            subnet: k.subnet.map(prefix),
            a_addr: k.a_addr.map(|n| (n.addr(), n.prefix_len())),
            b_addr: k.b_addr.map(|n| (n.addr(), n.prefix_len())),
        })
        .collect();
    let plan = topology::plan_addresses(&topo_nodes, &topo_links).map_err(|e| topo_error(l, e))?;
    let (ecmp, reconverge) = match &s.routing {
        Routing::Auto { ecmp, reconverge } => (
            match ecmp {
                Ecmp::PerFlow => EcmpMode::PerFlow,
                Ecmp::PerPacket => EcmpMode::PerPacket,
            },
            *reconverge,
        ),
        Routing::Static => (EcmpMode::PerFlow, None),
    };
    let auto = matches!(s.routing, Routing::Auto { .. });
    let fabric = crate::fabric::fat_tree(s);
    let auto_tables = if let (true, Some(t)) = (auto, fabric) {
        // The same routes to every host, in closed form (see `sim_core::fattree`).
        t.auto_routes()
    } else if auto {
        topology::auto_routes(
            &topo_nodes,
            &plan,
            &vec![true; s.links.len()],
            &vec![true; names.len()],
        )
    } else {
        vec![None; names.len()]
    };

    let node_addr = |n: &str| -> Option<std::net::Ipv4Addr> {
        n.parse().ok().or_else(|| {
            by_name
                .get(n)
                .and_then(|&i| plan.ifaces[i].iter().flatten().next().map(|(a, _)| *a))
        })
    };
    let dns = DnsBuild {
        zones: dns_zones(l, &node_addr)?,
        addrs: names
            .iter()
            .map(|n| (n.to_string(), node_addr(n)))
            .collect(),
    };
    let dhcp = dhcp_apps(l, &plan, &kinds)?;
    let mut world = World::new(seed);
    world.reserve(names.len(), s.links.len());
    // Flows first so apps can refer to them.
    let mut flow_ids = Vec::new();
    for (i, a) in s.apps.iter().enumerate() {
        let name = app_name(a, i);
        let id = match a {
            AppDecl::Ping { from, to, .. } => {
                Some(world.net.flows.register(&name, from, to, "icmp"))
            }
            AppDecl::UdpCbr { from, to, .. } => {
                Some(world.net.flows.register(&name, from, to, "udp"))
            }
            AppDecl::TcpBulk(d) => Some(world.net.flows.register(&name, &d.from, &d.to, "tcp")),
            AppDecl::TcpRequestResponse(d) => {
                Some(world.net.flows.register(&name, &d.from, &d.to, "tcp"))
            }
            _ => None,
        };
        flow_ids.push(id);
    }
    // The apps of each node, in app order; a gossip app is on every member.
    let mut apps_of: Vec<Vec<(usize, Option<u32>)>> = vec![Vec::new(); names.len()];
    let mut gossip = Vec::new();
    let mut gossip_of_app: Vec<Option<usize>> = vec![None; s.apps.len()];
    for (i, a) in s.apps.iter().enumerate() {
        match (app_node(a), a) {
            (Some((n, _)), _) => apps_of[index(n)].push((i, None)),
            (None, AppDecl::Gossip(g)) => {
                let (run, nodes) = crate::gossip::prepare(s, app_name(a, i), g, &plan, &by_name);
                for (me, ni) in nodes.into_iter().enumerate() {
                    apps_of[ni].push((i, Some(me as u32)));
                }
                gossip_of_app[i] = Some(gossip.len());
                gossip.push(run);
            }
            (None, _) => {}
        }
    }
    // The link on each (node, port).
    let mut port_link: Vec<Vec<usize>> = plan.ifaces.iter().map(|p| vec![0; p.len()]).collect();
    for (li, ends) in plan.link_ports.iter().enumerate() {
        for &(n, p) in ends {
            if let Some(slot) = port_link.get_mut(n).and_then(|v| v.get_mut(p as usize)) {
                *slot = li;
            }
        }
    }
    let mut static_routes: Vec<Vec<Route>> = vec![Vec::new(); names.len()];
    for (ni, (name, decl)) in s.nodes.0.iter().enumerate() {
        let spec = match decl {
            NodeDecl::Switch(sw) => NodeSpec::Switch(LearningSwitch::new(
                sw.aging.map(dur).unwrap_or(DEFAULT_AGING),
            )),
            NodeDecl::Host(d) | NodeDecl::Router(d) => {
                let ifaces: Vec<Iface> = plan.ifaces[ni]
                    .iter()
                    .enumerate()
                    .map(|(port, a)| {
                        let link = port_link[ni][port];
                        let (addr, pfx) = a.unwrap_or((
                            std::net::Ipv4Addr::UNSPECIFIED,
                            Prefix::new(std::net::Ipv4Addr::UNSPECIFIED, 32),
                        ));
                        Iface {
                            mac: mac_for(name, port),
                            addr,
                            prefix: pfx,
                            mtu: s.links[link].mtu,
                        }
                    })
                    .collect();
                let forwarding = matches!(decl, NodeDecl::Router(_));
                let mut ecmp_rng = world.net.rng.stream(&format!("ecmp:{name}"));
                let ecmp_seed = ecmp_rng.next_u64();
                let spray = world.net.rng.stream(&format!("ecmp-spray:{name}"));
                let mut ip = IpNode::new(
                    NodeId(ni as u32),
                    forwarding,
                    ifaces,
                    ip_config(d).map_err(|(k, m)| {
                        l.error_at(&format!("nodes[\"{name}\"].sysctl[\"{k}\"]"), m)
                    })?,
                    ecmp,
                    ecmp_seed,
                    spray,
                );
                if let Some(t) = &auto_tables[ni] {
                    for r in t {
                        ip.routes.insert(r.clone());
                    }
                }
                for (ri, r) in d.routes.iter().enumerate() {
                    let Some(iface) = ip.ifaces().iter().position(|f| f.prefix.contains(r.via))
                    else {
                        return Err(l.error_at(
                            &format!("nodes[\"{name}\"].routes[{ri}].via"),
                            format!(
                                "gateway {} is not on any subnet of \"{name}\" ({})",
                                r.via,
                                ip.ifaces()
                                    .iter()
                                    .map(|f| f.prefix.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    };
                    let route = Route {
                        prefix: prefix(r.to),
                        next_hops: std::sync::Arc::new([NextHop {
                            iface: iface as u16,
                            gateway: Some(r.via),
                        }]),
                        origin: RouteOrigin::Static,
                    };
                    static_routes[ni].push(route.clone());
                    ip.routes.insert(route);
                }
                let mine: Vec<usize> = apps_of[ni].iter().map(|&(i, _)| i).collect();
                let dhcp_host = is_dhcp_host(s, ni);
                let mut slots: Vec<AppSlot> = apps_of[ni]
                    .iter()
                    .filter_map(|&(i, member)| match (gossip_of_app[i], member) {
                        (Some(g), Some(me)) => Some(crate::gossip::slot(&gossip[g], me)),
                        _ => app_slot(&s.apps[i], i, flow_ids[i], &dns, &dhcp),
                    })
                    .map(|mut slot| {
                        slot.wait_for_address = dhcp_host;
                        slot
                    })
                    .collect();
                if dhcp_host {
                    // The client goes last, so the user's apps keep their indices; the
                    // lease file outlives the stack, as a file on disk would.
                    let cfg = dhcp_apps::DhcpClientConfig {
                        name: crate::load::DHCP_CLIENT_APP.to_string(),
                        iface: 0,
                        lease_file: Default::default(),
                    };
                    slots.push(AppSlot {
                        start: SimTime::ZERO,
                        factory: Box::new(move || {
                            Box::new(dhcp_apps::DhcpClient::new(cfg.clone())) as Box<dyn App>
                        }),
                        wait_for_address: false,
                    });
                }
                // KillApp faults for this node's apps, by index among them.
                let kills = s
                    .faults
                    .iter()
                    .filter_map(|f| match f {
                        FaultDecl::KillApp { app, at } => mine
                            .iter()
                            .position(|&i| app_name(&s.apps[i], i) == *app)
                            .map(|k| (k, SimTime::from_nanos(at.as_nanos()))),
                        _ => None,
                    })
                    .collect();
                let tcp = tcp_config(d).map_err(|(k, m)| {
                    l.error_at(&format!("nodes[\"{name}\"].sysctl[\"{k}\"]"), m)
                })?;
                let config = Rc::new(HostConfig {
                    apps: slots,
                    tcp,
                    kills,
                    dns_servers: d.dns.iter().filter_map(|n| dns.addr(n)).collect(),
                    hosts: d
                        .hosts
                        .0
                        .iter()
                        .filter_map(|(h, a)| Some((h.clone(), dns.addr(a)?)))
                        .collect(),
                    resolver: stub_config(d.dns_options.as_ref()),
                });
                NodeSpec::Ip {
                    ip: Box::new(ip),
                    factory: Some(Box::new(move || Box::new(HostStack::new(config.clone())))),
                }
            }
        };
        world.add_node(name, spec);
    }
    let mut link_names = Vec::new();
    for (i, k) in s.links.iter().enumerate() {
        let name = link_name(s, i);
        world.add_link(
            &name,
            NodeId(index(&k.a) as u32),
            NodeId(index(&k.b) as u32),
            k.mtu,
            channel(l, i, k, "a_to_b", k.a_to_b.as_deref())?,
            channel(l, i, k, "b_to_a", k.b_to_a.as_deref())?,
        );
        link_names.push(name);
    }
    for f in &s.faults {
        let link_id = |n: &str| LinkId(link_names.iter().position(|x| x == n).unwrap_or(0) as u32);
        let at = |d: crate::units::Duration| SimTime::from_nanos(d.as_nanos());
        match f {
            FaultDecl::LinkDown { link, at: t, for_ } => {
                world.schedule_fault(at(*t), FaultAction::LinkDown(link_id(link)));
                if let Some(d) = for_ {
                    world.schedule_fault(at(*t) + dur(*d), FaultAction::LinkUp(link_id(link)));
                }
            }
            FaultDecl::LinkUp { link, at: t } => {
                world.schedule_fault(at(*t), FaultAction::LinkUp(link_id(link)))
            }
            FaultDecl::NodeCrash { node, at: t, for_ } => {
                let n = NodeId(index(node) as u32);
                world.schedule_fault(at(*t), FaultAction::NodeCrash(n));
                if let Some(d) = for_ {
                    world.schedule_fault(at(*t) + dur(*d), FaultAction::NodeRestart(n));
                }
            }
            FaultDecl::NodeRestart { node, at: t } => {
                world.schedule_fault(at(*t), FaultAction::NodeRestart(NodeId(index(node) as u32)))
            }
            // Handled by the app's host (HostConfig::kills).
            FaultDecl::KillApp { .. } => {}
        }
    }
    if let (true, Some(after)) = (auto, reconverge) {
        let plan2 = plan.clone();
        let nodes2 = topo_nodes.clone();
        let statics = static_routes.clone();
        world.set_rerouting(
            RerouteConfig {
                after: Some(dur(after)),
            },
            Box::new(move |w: &World| {
                let link_up: Vec<bool> = w.links().iter().map(|l| l.dirs[0].is_up()).collect();
                let node_up: Vec<bool> = (0..w.node_count())
                    .map(|i| w.is_up(NodeId(i as u32)))
                    .collect();
                let tables = topology::auto_routes(&nodes2, &plan2, &link_up, &node_up);
                tables
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let t = t?;
                        let ip = w.ip_node(NodeId(i as u32))?;
                        let mut table = RouteTable::default();
                        for r in ip
                            .routes
                            .routes()
                            .iter()
                            .filter(|r| r.origin == RouteOrigin::Connected)
                        {
                            table.insert(r.clone());
                        }
                        for r in t.into_iter().chain(statics[i].iter().cloned()) {
                            table.insert(r);
                        }
                        Some(table)
                    })
                    .collect()
            }),
        );
    }
    Ok(Built {
        world,
        plan,
        kinds,
        link_names,
        gossip,
    })
}

/// What building the DNS apps needs: the zones (by [`crate::load::zone_key`]) and the
/// nodes' first addresses.
struct DnsBuild {
    zones: Vec<(String, protocols::dns::zone::Zone)>,
    addrs: std::collections::BTreeMap<String, Option<std::net::Ipv4Addr>>,
}

impl DnsBuild {
    /// A node's first address, or a dotted address.
    fn addr(&self, node_or_addr: &str) -> Option<std::net::Ipv4Addr> {
        node_or_addr
            .parse()
            .ok()
            .or_else(|| self.addrs.get(node_or_addr).copied().flatten())
    }
}

/// Default TTL of zone records, and default negative TTL (SOA MINIMUM).
const ZONE_TTL: u32 = 3600;
const ZONE_NEGATIVE_TTL: u32 = 300;

/// The scenario's zones, loaded (names checked, node names turned into addresses).
fn dns_zones(
    l: &Loaded,
    node_addr: &dyn Fn(&str) -> Option<std::net::Ipv4Addr>,
) -> Result<Vec<(String, protocols::dns::zone::Zone)>, ScenarioError> {
    use crate::load::{ttl_secs, zone_key};
    use protocols::dns::zone::{Zone, ZoneData, ZoneRecord, ZoneSpec};
    let mut out = Vec::new();
    for (origin, z) in &l.scenario.zones.0 {
        let at = |f: &str| format!("zones[\"{origin}\"]{f}");
        let ttl_of = |d: Option<crate::units::Duration>, dflt: u32, f: &str| match d {
            None => Ok(dflt),
            Some(d) => ttl_secs(d).map_err(|m| l.error_at(&at(f), m)),
        };
        let ttl = ttl_of(z.ttl, ZONE_TTL, ".ttl")?;
        let mut records = Vec::new();
        for (i, r) in z.records.iter().enumerate() {
            let (name, rttl, data) = match r {
                RecordDecl::A { name, addr, ttl } => {
                    let a = node_addr(addr).ok_or_else(|| {
                        l.error_at(
                            &at(&format!(".records[{i}].addr")),
                            format!("node \"{addr}\" has no address"),
                        )
                    })?;
                    (name, ttl, ZoneData::A(a))
                }
                RecordDecl::Ns { name, host, ttl } => (name, ttl, ZoneData::Ns(host.clone())),
                RecordDecl::Cname { name, target, ttl } => {
                    (name, ttl, ZoneData::Cname(target.clone()))
                }
            };
            records.push(ZoneRecord {
                name: name.clone(),
                ttl: ttl_of(*rttl, ttl, &format!(".records[{i}].ttl"))?,
                data,
            });
        }
        let spec = ZoneSpec {
            origin: origin.clone(),
            serial: z.serial.unwrap_or(1),
            soa_ttl: ttl,
            negative_ttl: ttl_of(z.negative_ttl, ZONE_NEGATIVE_TTL, ".negative_ttl")?,
            records,
        };
        let zone = Zone::new(&spec).map_err(|e| {
            // Point at the first record the error names, else at the zone.
            let culprit = spec
                .records
                .iter()
                .position(|r| e.to_string().contains(&format!("\"{}\"", r.name)));
            l.error_at(
                &at(&culprit
                    .map(|i| format!(".records[{i}]"))
                    .unwrap_or_default()),
                e.to_string(),
            )
        })?;
        out.push((zone_key(origin), zone));
    }
    Ok(out)
}

/// resolv.conf options of a host.
fn stub_config(o: Option<&DnsOptionsDecl>) -> protocols::dns::StubConfig {
    let d = protocols::dns::StubConfig::default();
    match o {
        None => d,
        Some(o) => protocols::dns::StubConfig {
            timeout_s: o.timeout.unwrap_or(d.timeout_s),
            attempts: o.attempts.unwrap_or(d.attempts),
            rotate: o.rotate,
            edns0: o.edns0,
        },
    }
}

/// A DNS server's EDNS UDP payload size as declared (`edns_size` is validated to fit 16
/// bits by `load`), or `None` without EDNS.
fn edns_payload(edns: bool, size: Option<u32>) -> Option<u16> {
    let size = size.map_or(protocols::dns::edns::DEFAULT_PAYLOAD, |n| {
        u16::try_from(n).unwrap_or(u16::MAX)
    });
    edns.then_some(size)
}

/// listen() backlog of the TCP server apps unless given (iperf3 and many servers use 128).
const DEFAULT_BACKLOG: u32 = 128;

/// A DHCP server's or relay agent's settings, resolved against the address plan.
#[derive(Clone)]
enum DhcpApp {
    Server(dhcp_apps::DhcpServerConfig),
    Relay(dhcp_apps::DhcpRelayConfig),
}

/// Is node `i` (in file order) a host with `dhcp`?
fn is_dhcp_host(s: &Scenario, i: usize) -> bool {
    matches!(s.nodes.0.get(i), Some((_, NodeDecl::Host(h))) if h.dhcp)
}

/// Default lease time of a DHCP server (dnsmasq's; ISC dhcpd uses 12 h).
const DHCP_DEFAULT_LEASE: SimDuration = SimDuration::from_secs(3600);
const DHCP_DEFAULT_OFFER_HOLD: SimDuration = SimDuration::from_secs(30);

/// Resolves every DHCP server's pools and every relay's servers against the address
/// plan, by app index.
fn dhcp_apps(
    l: &Loaded,
    plan: &AddressPlan,
    kinds: &[NodeKind],
) -> Result<std::collections::BTreeMap<usize, DhcpApp>, ScenarioError> {
    use protocols::dhcp::server::{PoolConfig, ServerConfig};
    use std::net::Ipv4Addr;
    let s = &l.scenario;
    let index = |n: &str| s.nodes.0.iter().position(|(k, _)| k == n);
    // A node's first address (validation made sure it is a node with static ones).
    let addr_of = |v: &str| -> Option<Ipv4Addr> {
        v.parse().ok().or_else(|| {
            plan.ifaces[index(v)?]
                .iter()
                .flatten()
                .map(|(a, _)| *a)
                .next()
        })
    };
    let static_addrs = |seg: usize| -> Vec<Ipv4Addr> {
        plan.segments[seg]
            .members
            .iter()
            .filter_map(|&(n, p)| plan.ifaces[n][p as usize].map(|(a, _)| a))
            .collect()
    };
    let first_router = |seg: usize| -> Option<Ipv4Addr> {
        plan.segments[seg]
            .members
            .iter()
            .filter(|&&(n, _)| kinds[n] == NodeKind::Router)
            .filter_map(|&(n, p)| plan.ifaces[n][p as usize].map(|(a, _)| a))
            .min()
    };
    let mut out = std::collections::BTreeMap::new();
    for (i, a) in s.apps.iter().enumerate() {
        match a {
            AppDecl::DhcpServer(d) => {
                let lease = d.lease.map_or(DHCP_DEFAULT_LEASE, dur);
                let mut pools = Vec::new();
                let own: Vec<usize> = index(&d.on)
                    .map(|n| plan.port_segment[n].clone())
                    .unwrap_or_default();
                let decls: Vec<(Option<PoolDecl>, Option<usize>)> = if d.pools.is_empty() {
                    own.iter().map(|&seg| (None, Some(seg))).collect()
                } else {
                    d.pools.iter().map(|p| (Some(p.clone()), None)).collect()
                };
                for (pi, (p, seg)) in decls.into_iter().enumerate() {
                    let p = p.unwrap_or_default();
                    let at = |f: &str| format!("apps[{i}].pools[{pi}]{f}");
                    let range = match &p.range {
                        Some(r) => Some(
                            crate::load::parse_range(r)
                                .map_err(|m| l.error_at(&at(".range"), m))?,
                        ),
                        None => None,
                    };
                    let seg = match (seg, p.subnet, range) {
                        (Some(seg), _, _) => Some(seg),
                        (None, Some(n), _) => {
                            let want = prefix(n);
                            plan.segments.iter().position(|g| g.prefix == want)
                        }
                        (None, None, Some((first, _))) => {
                            plan.segments.iter().position(|g| g.prefix.contains(first))
                        }
                        (None, None, None) => None,
                    };
                    let Some(seg) = seg else {
                        return Err(l.error_at(
                            &at(""),
                            format!(
                                "no segment of the network has this pool's subnet; the subnets are: {}",
                                plan.segments
                                    .iter()
                                    .map(|g| g.prefix.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    };
                    let subnet = plan.segments[seg].prefix;
                    let ((first, last), exclude) = match range {
                        Some(r) => {
                            if !subnet.contains(r.0) || !subnet.contains(r.1) {
                                return Err(l.error_at(
                                    &at(".range"),
                                    format!("the range is not inside the subnet {subnet}"),
                                ));
                            }
                            (r, Vec::new())
                        }
                        None => {
                            let (lo, hi) = if subnet.len >= 31 {
                                (
                                    subnet.network,
                                    subnet.network | !sim_core::route::mask(subnet.len),
                                )
                            } else {
                                (
                                    subnet.network + 1,
                                    (subnet.network | !sim_core::route::mask(subnet.len)) - 1,
                                )
                            };
                            let mut ex = static_addrs(seg);
                            ex.extend(d.reservations.0.iter().map(|(_, a)| *a));
                            ((Ipv4Addr::from(lo), Ipv4Addr::from(hi)), ex)
                        }
                    };
                    let router = match &p.router {
                        Some(r) => addr_of(r),
                        None => first_router(seg),
                    };
                    pools.push(PoolConfig {
                        subnet,
                        first,
                        last,
                        exclude,
                        router,
                        dns: p.dns.iter().filter_map(|v| addr_of(v)).collect(),
                        lease: p.lease.map_or(lease, dur),
                    });
                }
                let reservations = d
                    .reservations
                    .0
                    .iter()
                    .map(|(host, a)| (mac_for(host, 0), *a))
                    .collect();
                out.insert(
                    i,
                    DhcpApp::Server(dhcp_apps::DhcpServerConfig {
                        name: app_name(a, i),
                        server: ServerConfig {
                            pools,
                            reservations,
                            offer_hold: d.offer_hold.map_or(DHCP_DEFAULT_OFFER_HOLD, dur),
                        },
                    }),
                );
            }
            AppDecl::DhcpRelay { servers, .. } => {
                out.insert(
                    i,
                    DhcpApp::Relay(dhcp_apps::DhcpRelayConfig {
                        name: app_name(a, i),
                        servers: servers.iter().filter_map(|v| addr_of(v)).collect(),
                    }),
                );
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The slot of a single-node app; None for a gossip app (one slot per member, built by
/// `gossip::slot`).
fn app_slot(
    a: &AppDecl,
    i: usize,
    flow: Option<sim_core::metrics::FlowId>,
    dns: &DnsBuild,
    dhcp: &std::collections::BTreeMap<usize, DhcpApp>,
) -> Option<AppSlot> {
    let name = app_name(a, i);
    let start_of = |d: &crate::units::Duration| SimTime::from_nanos(d.as_nanos());
    let (start, factory): (SimTime, protocols::AppFactory) = match a.clone() {
        AppDecl::Ping {
            to,
            count,
            interval,
            size,
            ttl,
            start,
            ..
        } => {
            let cfg = ping::PingConfig {
                name,
                to,
                count: count.unwrap_or(u32::MAX),
                interval: interval.map(dur).unwrap_or(SimDuration::from_secs(1)),
                size: size.unwrap_or(56),
                ttl,
                flow,
            };
            (
                start_of(&start),
                Box::new(move || Box::new(ping::Ping::new(cfg.clone())) as Box<dyn App>),
            )
        }
        AppDecl::Traceroute {
            to,
            max_hops,
            probes,
            wait,
            start,
            ..
        } => {
            let cfg = traceroute::TracerouteConfig {
                name,
                to,
                max_hops: max_hops.unwrap_or(30),
                probes: probes.unwrap_or(3).max(1),
                wait: wait.map(dur).unwrap_or(SimDuration::from_secs(5)),
                base_port: 33434,
                size: 32,
            };
            (
                start_of(&start),
                Box::new(move || {
                    Box::new(traceroute::Traceroute::new(cfg.clone())) as Box<dyn App>
                }),
            )
        }
        AppDecl::UdpCbr {
            to,
            rate,
            size,
            start,
            duration,
            count,
            tos,
            ..
        } => {
            let (host, port) = to.rsplit_once(':').unwrap_or((to.as_str(), "0"));
            let cfg = cbr::UdpCbrConfig {
                name,
                to_host: host.to_string(),
                to_port: port.parse().unwrap_or(0),
                rate_bps: rate.bits_per_sec(),
                size: size.unwrap_or(1000),
                duration: duration.map(dur),
                count,
                tos,
                flow: flow.unwrap_or(sim_core::metrics::FlowId(0)),
            };
            (
                start_of(&start),
                Box::new(move || Box::new(cbr::UdpCbr::new(cfg.clone())) as Box<dyn App>),
            )
        }
        AppDecl::UdpSink { port, .. } => {
            let cfg = cbr::UdpSinkConfig { name, port };
            (
                SimTime::ZERO,
                Box::new(move || Box::new(cbr::UdpSink::new(cfg.clone())) as Box<dyn App>),
            )
        }
        AppDecl::UdpEcho { port, .. } => {
            let cfg = echo::UdpEchoConfig { name, port };
            (
                SimTime::ZERO,
                Box::new(move || Box::new(echo::UdpEcho::new(cfg.clone())) as Box<dyn App>),
            )
        }
        AppDecl::TcpBulk(d) => {
            let (to_host, to_port) = protocols::apps::tcp_flow::split_target(&d.to);
            let cfg = tcp_bulk::TcpBulkConfig {
                name,
                to_host,
                to_port,
                bytes: d.bytes.map(|b| b.as_bytes()),
                duration: d.duration.map(dur),
                close: d.close,
                write_size: d.write_size.map_or(tcp_bulk::DEFAULT_WRITE_SIZE, |b| {
                    b.as_bytes().clamp(1, u32::MAX as u64) as u32
                }),
                local_port: d.local_port,
                opts: sockopts(&d.sockopts()),
                flow: flow.unwrap_or(sim_core::metrics::FlowId(0)),
            };
            (
                start_of(&d.start),
                Box::new(move || {
                    Box::new(tcp_bulk::TcpBulkSender::new(cfg.clone())) as Box<dyn App>
                }),
            )
        }
        AppDecl::TcpSink(d) => {
            let cfg = tcp_bulk::TcpSinkConfig {
                name,
                port: d.port,
                backlog: d.backlog.unwrap_or(DEFAULT_BACKLOG),
                read_rate_bps: d.read_rate.map(|r| r.bits_per_sec()),
                accept_delay: d.accept_delay.map(dur),
                opts: sockopts(&d.sockopts()),
            };
            (
                SimTime::ZERO,
                Box::new(move || Box::new(tcp_bulk::TcpSink::new(cfg.clone())) as Box<dyn App>),
            )
        }
        AppDecl::TcpRequestResponse(d) => {
            let (to_host, to_port) = protocols::apps::tcp_flow::split_target(&d.to);
            let cfg = tcp_rr::TcpRrConfig {
                name,
                to_host,
                to_port,
                count: d.count.unwrap_or(1),
                request: d.request.unwrap_or(100),
                response: d.response.unwrap_or(1000),
                per_connection: d.per_connection,
                interval: d.interval.map(dur),
                local_port: d.local_port,
                opts: sockopts(&d.sockopts()),
                flow: flow.unwrap_or(sim_core::metrics::FlowId(0)),
            };
            (
                start_of(&d.start),
                Box::new(move || {
                    Box::new(tcp_rr::TcpRequestResponse::new(cfg.clone())) as Box<dyn App>
                }),
            )
        }
        AppDecl::TcpServer(d) => {
            let cfg = tcp_rr::TcpServerConfig {
                name,
                port: d.port,
                backlog: d.backlog.unwrap_or(DEFAULT_BACKLOG),
                response: d.response,
                opts: sockopts(&d.sockopts()),
            };
            (
                SimTime::ZERO,
                Box::new(move || Box::new(tcp_rr::TcpServer::new(cfg.clone())) as Box<dyn App>),
            )
        }
        AppDecl::TcpEcho(d) => {
            let cfg = tcp_echo::TcpEchoConfig {
                name,
                port: d.port,
                backlog: d.backlog.unwrap_or(DEFAULT_BACKLOG),
                opts: sockopts(&d.sockopts()),
            };
            (
                SimTime::ZERO,
                Box::new(move || Box::new(tcp_echo::TcpEcho::new(cfg.clone())) as Box<dyn App>),
            )
        }
        AppDecl::SynFlood {
            to,
            rate,
            start,
            duration,
            count,
            source,
            ..
        } => {
            let (to_host, to_port) = protocols::apps::tcp_flow::split_target(&to);
            let cfg = syn_flood::SynFloodConfig {
                name,
                to_host,
                to_port,
                rate,
                duration: duration.map(dur),
                count,
                source: source.map_or((std::net::Ipv4Addr::new(198, 18, 0, 0), 15), |n| {
                    (n.addr(), n.prefix_len())
                }),
            };
            (
                start_of(&start),
                Box::new(move || Box::new(syn_flood::SynFlood::new(cfg.clone())) as Box<dyn App>),
            )
        }
        AppDecl::DnsServer {
            zones,
            edns,
            edns_size,
            ..
        } => {
            let keys: Vec<String> = zones.iter().map(|z| crate::load::zone_key(z)).collect();
            let cfg = protocols::dns::server::DnsAuthConfig {
                name,
                zones: dns
                    .zones
                    .iter()
                    .filter(|(k, _)| keys.contains(k))
                    .map(|(_, z)| z.clone())
                    .collect(),
                edns: edns_payload(edns, edns_size),
            };
            (
                SimTime::ZERO,
                Box::new(move || {
                    Box::new(protocols::dns::server::DnsAuthServer::new(cfg.clone()))
                        as Box<dyn App>
                }),
            )
        }
        AppDecl::DnsResolver {
            root_hints,
            timeout,
            attempts,
            cache_size,
            edns,
            edns_size,
            ..
        } => {
            let d = protocols::dns::resolver::ResolverConfig::default();
            let cfg = protocols::dns::server::DnsResolverConfig {
                name,
                resolver: protocols::dns::resolver::ResolverConfig {
                    root_hints: root_hints.iter().filter_map(|h| dns.addr(h)).collect(),
                    timeout: timeout.map(dur).unwrap_or(d.timeout),
                    attempts: attempts.unwrap_or(d.attempts),
                    cache_size: cache_size.map_or(d.cache_size, |c| c as usize),
                    max_upstream: d.max_upstream,
                    edns: edns_payload(edns, edns_size),
                },
            };
            (
                SimTime::ZERO,
                Box::new(move || {
                    Box::new(protocols::dns::server::DnsResolverApp::new(cfg.clone()))
                        as Box<dyn App>
                }),
            )
        }
        AppDecl::DhcpServer(_) | AppDecl::DhcpRelay { .. } => {
            // `dhcp_apps` resolved every DHCP app before the nodes were built. A server's
            // lease database outlives its node's crashes, as a file would.
            let (relay, db) = match dhcp.get(&i).cloned() {
                Some(DhcpApp::Relay(c)) => (Some(c), None),
                Some(DhcpApp::Server(c)) => (None, Some(dhcp_apps::lease_db(c.server))),
                None => (None, None),
            };
            let db = db.unwrap_or_else(|| {
                dhcp_apps::lease_db(protocols::dhcp::server::ServerConfig {
                    pools: Vec::new(),
                    reservations: Vec::new(),
                    offer_hold: DHCP_DEFAULT_OFFER_HOLD,
                })
            });
            (
                SimTime::ZERO,
                Box::new(move || match relay.clone() {
                    Some(c) => Box::new(dhcp_apps::DhcpRelay::new(c)) as Box<dyn App>,
                    None => Box::new(dhcp_apps::DhcpServer::new(&name, db.clone())),
                }),
            )
        }
        AppDecl::Gossip(_) => return None,
    };
    Some(AppSlot {
        start,
        factory,
        wait_for_address: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::load_str;

    fn with_sysctl(sysctl: &str) -> Result<Loaded, ScenarioError> {
        let src = format!(
            r#"Scenario(
    name: "t",
    nodes: {{
        "h1": Host(sysctl: {sysctl}),
        "h2": Host(),
    }},
    links: [ Link(a: "h1", b: "h2") ],
)"#
        );
        load_str("t.ron", &src, &[])
    }

    fn tcp_of(l: &Loaded) -> TcpConfig {
        match &l.scenario.nodes.0[0].1 {
            NodeDecl::Host(d) => tcp_config(d).unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn scenario_wide_sysctls_apply_to_every_node_unless_it_sets_its_own() {
        let l = crate::load_str(
            "g.ron",
            r#"Scenario(
                name: "x",
                sysctl: { "tcp_congestion_control": "reno", "tcp_syn_retries": 2 },
                nodes: { "h1": Host(sysctl: { "tcp_syn_retries": 4 }), "h2": Host(), "r": Router() },
                links: [ Link(a: "h1", b: "r"), Link(a: "r", b: "h2") ],
            )"#,
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let tcp = |i: usize| match &l.scenario.nodes.0[i].1 {
            NodeDecl::Host(d) | NodeDecl::Router(d) => tcp_config(d).unwrap(),
            _ => unreachable!(),
        };
        assert_eq!(tcp(0).syn_retries, 4);
        assert_eq!(tcp(0).congestion_control, "reno");
        assert_eq!(tcp(1).syn_retries, 2);
        assert_eq!(tcp(2).congestion_control, "reno");
        let err = crate::load_str(
            "g.ron",
            "Scenario(name: \"x\", sysctl: { \"tcp_syn_retries\": \"lots\" },\n nodes: { \"h\": Host() })",
            &[],
        )
        .unwrap_err();
        assert_eq!((err.line, err.col), (1, 50), "{err}");
        assert!(
            err.to_string().contains("sysctl[\"tcp_syn_retries\"]"),
            "{err}"
        );
    }

    #[test]
    fn every_tcp_knob_is_a_sysctl() {
        for k in TcpConfig::KNOBS {
            assert!(is_sysctl(k), "{k} missing from the sysctls");
        }
    }

    #[test]
    fn every_tcp_knob_can_be_set_by_its_linux_name() {
        let l = with_sysctl(
            r#"{
            "tcp_syn_retries": 2, "tcp_synack_retries": 3, "tcp_retries2": 8,
            "tcp_orphan_retries": 4, "tcp_fin_timeout": 30, "tcp_time_wait": "10s",
            "tcp_abort_on_overflow": 1, "tcp_syncookies": 2, "somaxconn": 128,
            "tcp_max_syn_backlog": 256, "tcp_keepalive_time": 600, "tcp_keepalive_intvl": "15s",
            "tcp_keepalive_probes": 5, "tcp_rmem": "4096 87380 1048576",
            "tcp_wmem": "4096  65536 2097152", "tcp_moderate_rcvbuf": false,
            "tcp_init_cwnd": 4, "tcp_rto_min": 100, "tcp_rto_max": "60s",
            "tcp_rto_initial": "3s", "tcp_sack": 0, "tcp_timestamps": false,
            "tcp_window_scaling": 0, "tcp_congestion_control": "reno",
            "tcp_slow_start_after_idle": 0, "tcp_delack_min": "20ms", "tcp_delack_max": 100,
            "tcp_reordering": 5, "tcp_pacing": true, "tcp_gso": false, "tcp_min_tso_segs": 4,
            "tcp_tso_rtt_log": 0, "tcp_quickack": true,
            "tcp_recovery": 4, "tcp_early_retrans": 0, "tcp_ecn": 1, "tcp_ecn_fallback": 0,
        }"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let c = tcp_of(&l);
        let s = SimDuration::from_secs;
        let ms = SimDuration::from_millis;
        let want = TcpConfig {
            syn_retries: 2,
            synack_retries: 3,
            retries2: 8,
            orphan_retries: 4,
            fin_timeout: s(30),
            time_wait: s(10),
            abort_on_overflow: true,
            syncookies: 2,
            somaxconn: 128,
            max_syn_backlog: 256,
            keepalive_time: s(600),
            keepalive_intvl: s(15),
            keepalive_probes: 5,
            rmem: [4096, 87380, 1048576],
            wmem: [4096, 65536, 2097152],
            moderate_rcvbuf: false,
            initial_cwnd: 4,
            rto_min: ms(100),
            rto_max: s(60),
            rto_initial: s(3),
            sack: false,
            timestamps: false,
            window_scaling: false,
            congestion_control: "reno".into(),
            slow_start_after_idle: false,
            pacing: true,
            gso: false,
            min_tso_segs: 4,
            tso_rtt_log: 0,
            quickack: true,
            delack_min: ms(20),
            delack_max: ms(100),
            reordering: 5,
            recovery: 4,
            early_retrans: 0,
            ecn: 1,
            ecn_fallback: false,
        };
        assert_eq!(c, want);
        // Every field differs from Linux's default, so no knob is silently ignored.
        let d = TcpConfig::default();
        assert_ne!(c.syn_retries, d.syn_retries);
        assert_ne!(c.delack_max, d.delack_max);
        // Nothing set: Linux's defaults; the alias tcp_rto_min_ms takes milliseconds.
        assert_eq!(tcp_of(&with_sysctl("{}").unwrap()), d);
        let l = with_sysctl(r#"{ "tcp_rto_min_ms": 50 }"#).unwrap();
        assert_eq!(tcp_of(&l).rto_min, ms(50));
    }

    #[test]
    fn bad_sysctl_values_are_located_errors() {
        let cases = [
            (r#"{ "tcp_rmem": 4096 }"#, "expected three byte counts"),
            (r#"{ "tcp_rmem": "1 2" }"#, "expected three byte counts"),
            (r#"{ "tcp_wmem": "9 8 7" }"#, "min <= default <= max"),
            (
                r#"{ "tcp_syncookies": 3 }"#,
                "out of range: expected 0 to 2",
            ),
            (r#"{ "tcp_syn_retries": "many" }"#, "expected an integer"),
            (r#"{ "tcp_sack": "yes" }"#, "expected 0, 1, true or false"),
            (r#"{ "tcp_fin_timeout": "soon" }"#, "duration"),
            (
                r#"{ "tcp_congestion_control": "no-such-cc" }"#,
                "unknown congestion control \"no-such-cc\"",
            ),
            (r#"{ "tcp_congestion_control": 1 }"#, "expected a name"),
            (
                r#"{ "ip_default_ttl": "64" , "arp_retries": "x" }"#,
                "expected an integer",
            ),
            (
                r#"{ "tcp_rto_min": "2s", "tcp_rto_max": "1s" }"#,
                "must not exceed",
            ),
        ];
        for (sysctl, want) in cases {
            let e = with_sysctl(sysctl).unwrap_err();
            assert!(e.message.contains(want), "{sysctl}: {e}");
            assert_eq!(e.line, 4, "{sysctl}: {e}");
            assert!(e.col > 30, "points at the value: {e}");
        }
        let e = with_sysctl(r#"{ "tcp_syn_retires": 2 }"#).unwrap_err();
        assert!(
            e.message.contains("unknown sysctl \"tcp_syn_retires\""),
            "{e}"
        );
        assert!(e.message.contains("tcp_syn_retries"), "{e}");
        let e = with_sysctl(r#"{ "tcp_rmem": -1 }"#).unwrap_err();
        assert!(e.message.contains("not negative"), "{e}");
        // Integers may be written as strings, as Linux reads them.
        let l = with_sysctl(r#"{ "ip_default_ttl": "32", "tcp_syn_retries": "3" }"#).unwrap();
        assert_eq!(tcp_of(&l).syn_retries, 3);
    }

    const APPS: &str = r#"Scenario(
    name: "t",
    nodes: { "c": Host(), "r": Router(), "s": Host() },
    links: [ Link(a: "c", b: "r"), Link(a: "r", b: "s") ],
    apps: [
        TcpSink(on: "s", port: 5001, backlog: 4, read_rate: "1Mbps", accept_delay: "1s",
                rcvbuf: "16KiB", keepalive: true),
        TcpBulk(from: "c", to: "s:5001", bytes: "1MB", duration: "2s", close: false,
                write_size: "8KiB", local_port: 4000, nodelay: true, linger: "0s",
                keep_idle: "5s", keep_intvl: "1s", keep_cnt: 3, sndbuf: "64KiB",
                max_seg: 1000, reuse_addr: true, start: "1s"),
        TcpServer(on: "s", port: 80, response: 10),
        TcpRequestResponse(from: "c", to: "s:80", count: 3, request: 10, response: 5,
                           per_connection: true, interval: "100ms"),
        TcpEcho(on: "s", port: 7),
        SynFlood(from: "c", to: "s:80", rate: 100, count: 10, source: "10.99.0.0/16"),
    ],
    faults: [ KillApp(app: "tcp-echo-4", at: "1s") ],
)"#;

    #[test]
    fn tcp_apps_parse_build_and_register_tcp_flows() {
        let l = load_str("t.ron", APPS, &[]).unwrap_or_else(|e| panic!("{e}"));
        let AppDecl::TcpBulk(b) = &l.scenario.apps[1] else {
            panic!("{:?}", l.scenario.apps[1]);
        };
        let o = sockopts(&b.sockopts());
        assert_eq!(
            o,
            SockOpts {
                reuse_addr: true,
                keepalive: false,
                keep_idle: Some(SimDuration::from_secs(5)),
                keep_intvl: Some(SimDuration::from_secs(1)),
                keep_cnt: Some(3),
                nodelay: true,
                linger: Some(SimDuration::ZERO),
                sndbuf: Some(65536),
                rcvbuf: None,
                max_seg: Some(1000),
                congestion: None,
            }
        );
        assert!(!b.close);
        let names: Vec<String> = (0..6).map(|i| app_name(&l.scenario.apps[i], i)).collect();
        assert_eq!(
            names,
            [
                "tcp-sink-0",
                "tcp-bulk-1",
                "tcp-server-2",
                "tcp-rr-3",
                "tcp-echo-4",
                "syn-flood-5"
            ]
        );
        let b = build(&l, 1).unwrap_or_else(|e| panic!("{e}"));
        let flows: Vec<_> = b
            .world
            .net
            .flows
            .iter()
            .map(|f| (f.id.clone(), f.proto))
            .collect();
        assert_eq!(
            flows,
            [
                ("tcp-bulk-1".to_string(), "tcp"),
                ("tcp-rr-3".to_string(), "tcp")
            ]
        );
    }

    #[test]
    fn tcp_app_mistakes_are_located_errors() {
        let cases = [
            ("apps[1].to=s", "expected \"node:port\""),
            ("apps[1].to=nowhere:80", "unknown node \"nowhere\""),
            ("apps[3].to=s:99999", "invalid port"),
            ("apps[5].to=s", "expected \"node:port\""),
            (
                r#"faults=[KillApp(app: "ghost", at: "1s")]"#,
                "unknown app \"ghost\"",
            ),
            ("apps[1].bytes=10", "byte size"),
            ("apps[5].rate=0", "rate must be at least 1"),
        ];
        for (set, want) in cases {
            let e = load_str("t.ron", APPS, &[set.to_string()]).unwrap_err();
            assert!(e.message.contains(want), "{set}: {e}");
            assert!(e.line > 1, "{set}: {e}");
        }
        let bad = APPS.replace("close: false", "close: false, colse: true");
        let e = load_str("t.ron", &bad, &[]).unwrap_err();
        assert!(e.message.contains("unknown field `colse`"), "{e}");
        assert!(e.message.contains("write_size"), "{e}");
    }

    /// A two-host scenario whose link has `queue: <queue>` and the given direction overrides.
    fn with_queue(queue: &str, extra: &str) -> Result<Built, ScenarioError> {
        let src = format!(
            r#"Scenario(
    name: "t",
    nodes: {{ "h1": Host(), "h2": Host() }},
    links: [
        Link(a: "h1", b: "h2", rate: "10Mbps",
             queue: {queue}{extra}),
    ],
)"#
        );
        let l = load_str("t.ron", &src, &[])?;
        build(&l, 1)
    }

    fn configs(b: &Built) -> [&ChannelConfig; 2] {
        let d = &b.world.links()[0].dirs;
        [&d[0].config, &d[1].config]
    }

    #[test]
    fn queue_disciplines_get_linux_defaults() {
        let b = with_queue("Red()", "").unwrap();
        let [c, _] = configs(&b);
        assert_eq!(c.queue, QueueLimit::default());
        assert_eq!(
            c.aqm,
            Aqm::Red(RedConfig {
                min_th: 83,
                max_th: 250,
                bytes: false,
                max_p: 0.02,
                weight: 0.002,
                gentle: true,
                ecn: false,
                avpkt: 1000,
            })
        );
        assert_eq!(c.aqm, Aqm::Red(RedConfig::default()));
        let b = with_queue(
            r#"Red(limit: "150KB", min_th: "15KB", max_th: "45KB", max_p: "10%", weight: 0.01, gentle: false, ecn: true, avpkt: "1500B")"#,
            "",
        )
        .unwrap();
        let [c, _] = configs(&b);
        assert_eq!(c.queue.bytes, Some(150_000));
        assert_eq!(
            c.aqm,
            Aqm::Red(RedConfig {
                min_th: 15_000,
                max_th: 45_000,
                bytes: true,
                max_p: 0.1,
                weight: 0.01,
                gentle: false,
                ecn: true,
                avpkt: 1500,
            })
        );
        let b = with_queue("CoDel()", "").unwrap();
        let [c, _] = configs(&b);
        assert_eq!(c.queue, QueueLimit::default());
        assert_eq!(
            c.aqm,
            Aqm::CoDel(CoDelConfig {
                target: SimDuration::from_millis(5),
                interval: SimDuration::from_millis(100),
                ecn: false,
                mtu: 1514,
            })
        );
        // A direction may have its own discipline.
        let b = with_queue(
            r#"DropTail(limit: "20 packets")"#,
            r#", b_to_a: (queue: CoDel(target: "2ms", interval: "50ms", ecn: true, limit: "100p"))"#,
        )
        .unwrap();
        let [ab, ba] = configs(&b);
        assert_eq!(ab.aqm, Aqm::None);
        assert_eq!(ab.queue.packets, Some(20));
        assert_eq!(ba.queue.packets, Some(100));
        assert_eq!(
            ba.aqm,
            Aqm::CoDel(CoDelConfig {
                target: SimDuration::from_millis(2),
                interval: SimDuration::from_millis(50),
                ecn: true,
                mtu: 1514,
            })
        );
    }

    #[test]
    fn bad_queue_parameters_are_located_errors_naming_the_field() {
        let cases = [
            (
                r#"Red(min_th: "50p", max_th: "20p")"#,
                "",
                "min_th",
                "min_th (50 packets) must not exceed max_th (20 packets)",
            ),
            (
                r#"Red(limit: "100p", min_th: "30p")"#,
                "",
                "min_th",
                "must not exceed max_th (25 packets, limit/4 by default)",
            ),
            (
                r#"Red(limit: "100p", max_th: "200p")"#,
                "",
                "max_th",
                "max_th (200 packets) must not exceed limit (100 packets)",
            ),
            (
                r#"Red(min_th: "15KB")"#,
                "",
                "min_th",
                "min_th is 15KB but limit is 1000 packets (the default)",
            ),
            (
                r#"Red(max_p: 0)"#,
                "",
                "max_p",
                "max_p must be greater than 0",
            ),
            (
                r#"Red(weight: 0)"#,
                "",
                "weight",
                "weight must be greater than 0",
            ),
            (r#"Red(avpkt: "0B")"#, "", "avpkt", "avpkt must be from 1B"),
            (
                r#"CoDel(target: "0s")"#,
                "",
                "target",
                "target must be greater than zero",
            ),
            (
                r#"CoDel(interval: "0ms")"#,
                "",
                "interval",
                "interval must be greater than zero",
            ),
            (
                "DropTail()",
                r#", a_to_b: (queue: Red(max_th: "2000p"))"#,
                "a_to_b.queue.max_th",
                "must not exceed limit",
            ),
        ];
        for (queue, extra, field, want) in cases {
            let e = with_queue(queue, extra).err().expect(queue);
            assert!(e.message.contains(want), "{queue}: {e}");
            assert!(e.message.contains(field), "{queue}: {e}");
            assert_eq!(e.line, 6, "{queue}: {e}");
            assert!(e.col > 13, "{queue}: points into the link: {e}");
        }
        // An absent field with a bad default: the error points at the queue.
        let e = with_queue(r#"Red(limit: "2p")"#, "").err().unwrap();
        assert!(
            e.message
                .contains("max_th (0 packets) must be greater than 0, limit/4 by default"),
            "{e}"
        );
        assert!(e.message.contains("(at links[0].queue.max_th)"), "{e}");
        assert_eq!((e.line, e.col), (6, 21), "{e}");
    }
}

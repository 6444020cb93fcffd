//! Building a [`World`] from a validated scenario.

use crate::load::{app_name, app_node, link_name, Loaded, ScenarioError};
use crate::schema::*;
use protocols::apps::{cbr, echo, ping, traceroute};
use protocols::host::{AppSlot, HostConfig, HostStack};
use protocols::App;
use sim_core::ip::{Iface, IpConfig, IpNode};
use sim_core::link::{ChannelConfig, LossModel, QueueLimit};
use sim_core::packet::MacAddr;
use sim_core::route::{EcmpMode, NextHop, Prefix, Route, RouteOrigin, RouteTable};
use sim_core::switch::{LearningSwitch, DEFAULT_AGING};
use sim_core::time::{SimDuration, SimTime};
use sim_core::topology::{self, AddressPlan, NodeKind, TopoLink, TopoNode, TopologyError};
use sim_core::world::{FaultAction, LinkId, NodeId, NodeSpec, RerouteConfig, World};
use std::rc::Rc;

/// Kernel knobs a scenario may set per host or router.
pub const SYSCTLS: &[&str] = &[
    "ip_default_ttl",
    "arp_retries",
    "arp_retry_interval_ms",
    "arp_cache_timeout_s",
    "ipfrag_time_s",
    "icmp_echo_ignore_all",
];

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

fn channel(k: &LinkDecl, over: Option<&DirectionDecl>) -> ChannelConfig {
    let o = over.cloned().unwrap_or_default();
    let queue = match o.queue.as_ref().unwrap_or(&k.queue) {
        QueueDecl::DropTail { limit } => match limit {
            None => QueueLimit::default(),
            Some(crate::units::QueueLimit::Packets(n)) => QueueLimit {
                packets: Some(*n),
                bytes: None,
            },
            Some(crate::units::QueueLimit::Bytes(b)) => QueueLimit {
                packets: None,
                bytes: Some(*b),
            },
        },
    };
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
    ChannelConfig {
        rate_bps: o.rate.unwrap_or(k.rate).bits_per_sec(),
        delay: dur(o.delay.unwrap_or(k.delay)),
        jitter: dur(o.jitter.unwrap_or(k.jitter)),
        queue,
        loss,
        duplicate: o.duplicate.or(k.duplicate).map_or(0.0, |p| p.value()),
        reorder: reorder.map_or(0.0, |r| r.probability.value()),
        reorder_delay: reorder.map_or(SimDuration::ZERO, |r| dur(r.delay)),
        corrupt: o.corrupt.or(k.corrupt).map_or(0.0, |p| p.value()),
    }
}

fn ip_config(d: &L3Decl) -> IpConfig {
    let mut c = IpConfig::default();
    for (k, v) in &d.sysctl.0 {
        let v = *v;
        match k.as_str() {
            "ip_default_ttl" => c.default_ttl = v.clamp(1, 255) as u8,
            "arp_retries" => c.arp_retries = v.clamp(1, 255) as u8,
            "arp_retry_interval_ms" => c.arp_retry_interval = SimDuration::from_millis(v.max(1)),
            "arp_cache_timeout_s" => c.arp_cache_timeout = SimDuration::from_secs(v),
            "ipfrag_time_s" => c.reassembly_timeout = SimDuration::from_secs(v.max(1)),
            "icmp_echo_ignore_all" => c.echo_reply = v == 0,
            _ => {}
        }
    }
    c
}

/// What was built, for reporting.
pub struct Built {
    pub world: World,
    pub plan: AddressPlan,
    pub kinds: Vec<NodeKind>,
    /// Link directions in order: (link id, from, to).
    pub link_names: Vec<String>,
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
    let index = |n: &str| names.iter().position(|x| *x == n).unwrap_or(0);
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
        .map(|(n, k)| TopoNode {
            name: n.to_string(),
            kind: *k,
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
    let auto_tables = if auto {
        topology::auto_routes(
            &topo_nodes,
            &plan,
            &vec![true; s.links.len()],
            &vec![true; names.len()],
        )
    } else {
        vec![None; names.len()]
    };

    let mut world = World::new(seed);
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
            _ => None,
        };
        flow_ids.push(id);
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
                        let link = plan
                            .link_ports
                            .iter()
                            .position(|ends| ends.contains(&(ni, port as u16)))
                            .unwrap_or(0);
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
                    ip_config(d),
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
                    let Some(iface) = ip.ifaces.iter().position(|f| f.prefix.contains(r.via))
                    else {
                        return Err(l.error_at(
                            &format!("nodes[\"{name}\"].routes[{ri}].via"),
                            format!(
                                "gateway {} is not on any subnet of \"{name}\" ({})",
                                r.via,
                                ip.ifaces
                                    .iter()
                                    .map(|f| f.prefix.to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    };
                    let route = Route {
                        prefix: prefix(r.to),
                        next_hops: vec![NextHop {
                            iface: iface as u16,
                            gateway: Some(r.via),
                        }],
                        origin: RouteOrigin::Static,
                    };
                    static_routes[ni].push(route.clone());
                    ip.routes.insert(route);
                }
                let slots: Vec<AppSlot> = s
                    .apps
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| app_node(a).0 == name)
                    .map(|(i, a)| app_slot(a, i, flow_ids[i]))
                    .collect();
                let config = Rc::new(HostConfig {
                    apps: slots,
                    tcp: protocols::tcp::TcpConfig::default(),
                    kills: Vec::new(),
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
            channel(k, k.a_to_b.as_ref()),
            channel(k, k.b_to_a.as_ref()),
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
    })
}

fn app_slot(a: &AppDecl, i: usize, flow: Option<sim_core::metrics::FlowId>) -> AppSlot {
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
    };
    AppSlot { start, factory }
}

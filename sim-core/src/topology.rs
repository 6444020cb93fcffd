//! Topology planning: broadcast domains, automatic addressing and automatic routes.
//!
//! Owns the graph view of the network (a petgraph graph of nodes joined by links) and the
//! algorithms over it. It produces plain data (addresses per port, routes per node) for the
//! world to install; it never touches packets or time.
//!
//! - A *segment* is a broadcast domain: the links joined by switches. Every segment is one
//!   IPv4 subnet. Unless given, segment k (in order of its first link) gets
//!   10.(k / 256).(k % 256).0/24; inside it routers get the lowest host numbers in link
//!   order, then hosts, skipping addresses given explicitly.
//! - Automatic routes are shortest paths in router hops over segments; every equal-cost
//!   next hop is kept (ECMP). Hosts never forward; a single-homed host gets a default route
//!   via the first router on its segment.
//! - A host with `dynamic_address` gets no address and no routes: it is a member of its
//!   segment, but its stack configures it at run time (e.g. by DHCP).

use crate::route::{NextHop, Prefix, Route, RouteOrigin};
use petgraph::graph::{NodeIndex, UnGraph};
use petgraph::unionfind::UnionFind;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Host,
    Router,
    Switch,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TopoNode {
    pub name: String,
    pub kind: NodeKind,
    /// The node's interfaces are left without address or routes, to be configured at run
    /// time.
    pub dynamic_address: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TopoLink {
    pub a: usize,
    pub b: usize,
    /// The subnet of this link's segment, if the scenario gives one.
    pub subnet: Option<Prefix>,
    /// Explicit addresses for the a and b ends (host bits set), with prefix length.
    pub a_addr: Option<(Ipv4Addr, u8)>,
    pub b_addr: Option<(Ipv4Addr, u8)>,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TopologyError {
    #[error("links {first} and {second} are on the same segment but name different subnets ({a} and {b})")]
    ConflictingSubnets {
        first: usize,
        second: usize,
        a: Prefix,
        b: Prefix,
    },
    #[error("link {link}: address {addr} is not inside its segment's subnet {subnet}")]
    AddressOutsideSubnet {
        link: usize,
        addr: Ipv4Addr,
        subnet: Prefix,
    },
    #[error("link {link}: address {addr} is already used by another interface")]
    DuplicateAddress { link: usize, addr: Ipv4Addr },
    #[error("link {link}: subnet {subnet} has no room for {needed} interfaces")]
    SubnetFull {
        link: usize,
        subnet: Prefix,
        needed: usize,
    },
    #[error("link {link}: an address was given for a switch end; switches have no addresses")]
    AddressOnSwitch { link: usize },
    #[error("more than 65536 segments need automatic subnets")]
    OutOfSubnets,
}

/// One broadcast domain.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub prefix: Prefix,
    /// The links that make up the segment.
    pub links: Vec<usize>,
    /// (node, port) of every host or router interface on it, in link order.
    pub members: Vec<(usize, u16)>,
}

/// Where every interface sits and what address it has.
#[derive(Clone, Debug, PartialEq)]
pub struct AddressPlan {
    /// Per node, per port: (address, prefix) for hosts and routers; None for switch ports.
    pub ifaces: Vec<Vec<Option<(Ipv4Addr, Prefix)>>>,
    /// Per node, per port: the segment index.
    pub port_segment: Vec<Vec<usize>>,
    pub segments: Vec<Segment>,
    /// (node, port) at each end of each link.
    pub link_ports: Vec<[(usize, u16); 2]>,
}

/// The network as a graph, for analysis.
pub fn graph(nodes: &[TopoNode], links: &[TopoLink]) -> UnGraph<usize, usize> {
    let mut g = UnGraph::with_capacity(nodes.len(), links.len());
    let idx: Vec<NodeIndex> = (0..nodes.len()).map(|i| g.add_node(i)).collect();
    for (i, l) in links.iter().enumerate() {
        g.add_edge(idx[l.a], idx[l.b], i);
    }
    g
}

/// Groups links into segments, assigns subnets and addresses.
pub fn plan_addresses(
    nodes: &[TopoNode],
    links: &[TopoLink],
) -> Result<AddressPlan, TopologyError> {
    // Ports in link order.
    let mut port_count = vec![0u16; nodes.len()];
    let mut link_ports = Vec::with_capacity(links.len());
    for l in links {
        let pa = port_count[l.a];
        port_count[l.a] += 1;
        let pb = port_count[l.b];
        port_count[l.b] += 1;
        link_ports.push([(l.a, pa), (l.b, pb)]);
    }
    // Links sharing a switch belong to one segment.
    let mut uf = UnionFind::<usize>::new(links.len());
    let mut first_link_of_switch: BTreeMap<usize, usize> = BTreeMap::new();
    for (i, l) in links.iter().enumerate() {
        for end in [l.a, l.b] {
            if nodes[end].kind == NodeKind::Switch {
                match first_link_of_switch.get(&end) {
                    Some(&j) => {
                        uf.union(i, j);
                    }
                    None => {
                        first_link_of_switch.insert(end, i);
                    }
                }
            }
        }
    }
    let mut seg_of_root: BTreeMap<usize, usize> = BTreeMap::new();
    let mut seg_links: Vec<Vec<usize>> = Vec::new();
    for i in 0..links.len() {
        let root = uf.find(i);
        let s = *seg_of_root.entry(root).or_insert_with(|| {
            seg_links.push(Vec::new());
            seg_links.len() - 1
        });
        seg_links[s].push(i);
    }
    let mut port_segment: Vec<Vec<usize>> =
        port_count.iter().map(|&n| vec![0; n as usize]).collect();
    for (s, ls) in seg_links.iter().enumerate() {
        for &i in ls {
            for (n, p) in link_ports[i] {
                port_segment[n][p as usize] = s;
            }
        }
    }
    // Subnets: explicit ones first, then automatic ones avoiding them.
    let mut prefixes: Vec<Option<(Prefix, usize)>> = vec![None; seg_links.len()];
    for (s, ls) in seg_links.iter().enumerate() {
        for &i in ls {
            let explicit = links[i]
                .subnet
                .or_else(|| links[i].a_addr.map(|(a, len)| Prefix::new(a, len)))
                .or_else(|| links[i].b_addr.map(|(a, len)| Prefix::new(a, len)));
            if let Some(p) = explicit {
                match prefixes[s] {
                    Some((q, j)) if q != p => {
                        return Err(TopologyError::ConflictingSubnets {
                            first: j,
                            second: i,
                            a: q,
                            b: p,
                        });
                    }
                    Some(_) => {}
                    None => prefixes[s] = Some((p, i)),
                }
            }
        }
    }
    let taken: BTreeSet<Prefix> = prefixes.iter().flatten().map(|(p, _)| *p).collect();
    let overlaps_taken = |p: &Prefix| {
        taken
            .iter()
            .any(|t| t.contains(p.addr()) || p.contains(t.addr()))
    };
    let mut next_auto: u32 = 0;
    let mut segments = Vec::with_capacity(seg_links.len());
    let mut ifaces: Vec<Vec<Option<(Ipv4Addr, Prefix)>>> =
        port_count.iter().map(|&n| vec![None; n as usize]).collect();
    let mut used: BTreeSet<Ipv4Addr> = BTreeSet::new();
    for (s, ls) in seg_links.iter().enumerate() {
        let prefix = match prefixes[s] {
            Some((p, _)) => p,
            None => loop {
                if next_auto >= 65536 {
                    return Err(TopologyError::OutOfSubnets);
                }
                let p = Prefix::new(
                    Ipv4Addr::new(10, (next_auto / 256) as u8, (next_auto % 256) as u8, 0),
                    24,
                );
                next_auto += 1;
                if !overlaps_taken(&p) {
                    break p;
                }
            },
        };
        // Members: L3 ends of the segment's links, in link order (a end before b end).
        let mut members = Vec::new();
        let mut explicit: Vec<((usize, u16), Ipv4Addr, usize)> = Vec::new();
        for &i in ls {
            let l = &links[i];
            for (k, (n, p)) in link_ports[i].into_iter().enumerate() {
                let addr = if k == 0 { l.a_addr } else { l.b_addr };
                if nodes[n].kind == NodeKind::Switch {
                    if addr.is_some() {
                        return Err(TopologyError::AddressOnSwitch { link: i });
                    }
                    continue;
                }
                members.push((n, p));
                if let Some((a, _)) = addr {
                    if !prefix.contains(a) {
                        return Err(TopologyError::AddressOutsideSubnet {
                            link: i,
                            addr: a,
                            subnet: prefix,
                        });
                    }
                    if !used.insert(a) {
                        return Err(TopologyError::DuplicateAddress { link: i, addr: a });
                    }
                    explicit.push(((n, p), a, i));
                }
            }
        }
        for ((n, p), a, _) in &explicit {
            ifaces[*n][*p as usize] = Some((*a, prefix));
        }
        let host_bits = 32 - prefix.len as u32;
        let capacity: u64 = if prefix.len >= 31 {
            1u64 << host_bits
        } else {
            (1u64 << host_bits) - 2
        };
        let first_host: u32 = if prefix.len >= 31 { 0 } else { 1 };
        let mut next_host: u64 = 0;
        let mut order: Vec<(usize, u16)> = members
            .iter()
            .copied()
            .filter(|(n, _)| nodes[*n].kind == NodeKind::Router)
            .collect();
        order.extend(
            members
                .iter()
                .copied()
                .filter(|(n, _)| nodes[*n].kind == NodeKind::Host),
        );
        for (n, p) in order {
            if ifaces[n][p as usize].is_some() || nodes[n].dynamic_address {
                continue;
            }
            let addr = loop {
                if next_host >= capacity {
                    return Err(TopologyError::SubnetFull {
                        link: ls[0],
                        subnet: prefix,
                        needed: members.len(),
                    });
                }
                let a = Ipv4Addr::from(prefix.network + first_host + next_host as u32);
                next_host += 1;
                if !used.contains(&a) {
                    break a;
                }
            };
            used.insert(addr);
            ifaces[n][p as usize] = Some((addr, prefix));
        }
        segments.push(Segment {
            prefix,
            links: ls.clone(),
            members,
        });
    }
    Ok(AddressPlan {
        ifaces,
        port_segment,
        segments,
        link_ports,
    })
}

/// Interned next-hop sets: routes with the same equal-cost next hops share one allocation
/// (in a network of many LANs, every route of a gateway goes out of the same uplink).
#[derive(Default)]
pub struct EcmpGroups {
    groups: BTreeMap<Vec<NextHop>, Arc<[NextHop]>>,
}

impl EcmpGroups {
    /// The shared set of these next hops (in the order given).
    pub fn intern(&mut self, hops: &[NextHop]) -> Arc<[NextHop]> {
        if let Some(g) = self.groups.get(hops) {
            return g.clone();
        }
        let g: Arc<[NextHop]> = hops.into();
        self.groups.insert(hops.to_vec(), g.clone());
        g
    }

    /// Distinct sets interned so far.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// Shortest-path routes for every node (None for switches), with all equal-cost next hops.
/// `link_up` and `node_up` exclude failed parts (used when rerouting after a fault).
pub fn auto_routes(
    nodes: &[TopoNode],
    plan: &AddressPlan,
    link_up: &[bool],
    node_up: &[bool],
) -> Vec<Option<Vec<Route>>> {
    let n = nodes.len();
    // The link on each port (one per port), so that checking a member is O(1) on
    // segments with thousands of ports.
    let mut port_link: Vec<Vec<usize>> =
        plan.port_segment.iter().map(|p| vec![0; p.len()]).collect();
    for (l, ends) in plan.link_ports.iter().enumerate() {
        for &(node, port) in ends {
            port_link[node][port as usize] = l;
        }
    }
    // Active members per segment.
    let active = |node: usize, port: u16| -> bool {
        node_up.get(node).copied().unwrap_or(true)
            && link_up
                .get(port_link[node][port as usize])
                .copied()
                .unwrap_or(true)
    };
    // Interfaces without an address (configured at run time) take no part in routing.
    let seg_members: Vec<Vec<(usize, u16)>> = plan
        .segments
        .iter()
        .map(|s| {
            s.members
                .iter()
                .copied()
                .filter(|&(nd, p)| active(nd, p) && plan.ifaces[nd][p as usize].is_some())
                .collect()
        })
        .collect();
    // Segments each node is on (active ports only).
    let mut node_segs: Vec<Vec<(usize, u16)>> = vec![Vec::new(); n];
    for (s, ms) in seg_members.iter().enumerate() {
        for &(nd, p) in ms {
            node_segs[nd].push((s, p));
        }
    }
    let is_router = |i: usize| nodes[i].kind == NodeKind::Router;
    let addr_of = |nd: usize, p: u16| plan.ifaces[nd][p as usize].map(|(a, _)| a);
    let mut tables: Vec<Option<Vec<Route>>> = nodes
        .iter()
        .map(|nd| (nd.kind != NodeKind::Switch).then(Vec::new))
        .collect();
    // Routers (and multi-homed hosts) get a route to every segment they are not on.
    let full_table = |i: usize| is_router(i) || node_segs[i].len() > 1;
    let full_nodes: Vec<usize> = (0..n).filter(|&i| full_table(i)).collect();
    // Only nodes with full tables take part in the search: single-homed hosts neither
    // forward nor need next hops, and big LANs are mostly made of them.
    let seg_full: Vec<Vec<(usize, u16)>> = seg_members
        .iter()
        .map(|ms| {
            ms.iter()
                .copied()
                .filter(|&(nd, _)| full_table(nd))
                .collect()
        })
        .collect();
    let mut groups = EcmpGroups::default();
    let mut scratch: Vec<NextHop> = Vec::new();
    let mut dist: Vec<u32> = vec![u32::MAX; n];
    let mut hops: Vec<BTreeSet<NextHop>> = vec![BTreeSet::new(); n];
    let mut touched: Vec<usize> = Vec::new();
    for (dest, seg) in plan.segments.iter().enumerate() {
        for &i in &touched {
            dist[i] = u32::MAX;
            hops[i].clear();
        }
        touched.clear();
        let mut queue = VecDeque::new();
        for &(nd, _) in &seg_members[dest] {
            if dist[nd] != 0 {
                dist[nd] = 0;
                touched.push(nd);
                queue.push_back(nd);
            }
        }
        while let Some(m) = queue.pop_front() {
            if !is_router(m) {
                continue; // hosts never forward
            }
            for &(s, mport) in &node_segs[m] {
                let Some(gw) = addr_of(m, mport) else {
                    continue;
                };
                for &(nd, p) in &seg_full[s] {
                    if nd == m {
                        continue;
                    }
                    let d = dist[m] + 1;
                    if dist[nd] == u32::MAX {
                        dist[nd] = d;
                        touched.push(nd);
                        queue.push_back(nd);
                    }
                    if dist[nd] == d {
                        hops[nd].insert(NextHop {
                            iface: p,
                            gateway: Some(gw),
                        });
                    }
                }
            }
        }
        for &i in &full_nodes {
            if dist[i] == 0 || dist[i] == u32::MAX {
                continue;
            }
            if let Some(t) = tables[i].as_mut() {
                t.push(Route {
                    prefix: seg.prefix,
                    next_hops: {
                        scratch.clear();
                        scratch.extend(hops[i].iter().copied());
                        groups.intern(&scratch)
                    },
                    origin: RouteOrigin::Auto,
                });
            }
        }
    }
    // Single-homed hosts: default route via the first router on their segment.
    let seg_gateway: Vec<Option<Ipv4Addr>> = seg_members
        .iter()
        .map(|ms| {
            ms.iter()
                .filter(|&&(nd, _)| is_router(nd))
                .filter_map(|&(nd, p)| addr_of(nd, p))
                .min()
        })
        .collect();
    for i in 0..n {
        if nodes[i].kind != NodeKind::Host || full_table(i) {
            continue;
        }
        let Some(&(s, port)) = node_segs[i].first() else {
            continue;
        };
        let gw = seg_gateway[s];
        if let (Some(gw), Some(t)) = (gw, tables[i].as_mut()) {
            t.push(Route {
                prefix: Prefix::new(Ipv4Addr::UNSPECIFIED, 0),
                next_hops: groups.intern(&[NextHop {
                    iface: port,
                    gateway: Some(gw),
                }]),
                origin: RouteOrigin::Auto,
            });
        }
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, kind: NodeKind) -> TopoNode {
        TopoNode {
            name: name.into(),
            kind,
            dynamic_address: false,
        }
    }
    fn link(a: usize, b: usize) -> TopoLink {
        TopoLink {
            a,
            b,
            subnet: None,
            a_addr: None,
            b_addr: None,
        }
    }

    #[test]
    fn switched_lan_is_one_subnet_routers_first() {
        // h0, h1 -- s -- r ; r -- h2
        let nodes = vec![
            node("h0", NodeKind::Host),
            node("h1", NodeKind::Host),
            node("s", NodeKind::Switch),
            node("r", NodeKind::Router),
            node("h2", NodeKind::Host),
        ];
        let links = vec![link(0, 2), link(1, 2), link(2, 3), link(3, 4)];
        let plan = plan_addresses(&nodes, &links).unwrap();
        assert_eq!(plan.segments.len(), 2);
        assert_eq!(
            plan.ifaces[3][0],
            Some((
                "10.0.0.1".parse().unwrap(),
                Prefix::new("10.0.0.0".parse().unwrap(), 24)
            ))
        );
        assert_eq!(
            plan.ifaces[0][0].unwrap().0,
            "10.0.0.2".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(
            plan.ifaces[1][0].unwrap().0,
            "10.0.0.3".parse::<Ipv4Addr>().unwrap()
        );
        assert_eq!(
            plan.ifaces[4][0].unwrap().0,
            "10.0.1.2".parse::<Ipv4Addr>().unwrap()
        );
        let routes = auto_routes(&nodes, &plan, &[true; 4], &[true; 5]);
        let h0 = routes[0].as_ref().unwrap();
        assert_eq!(h0.len(), 1);
        assert_eq!(
            h0[0].next_hops[0].gateway,
            Some("10.0.0.1".parse().unwrap())
        );
        assert!(routes[2].is_none());
    }

    #[test]
    fn diamond_has_two_equal_cost_next_hops() {
        // h0 - r0 - {r1, r2} - r3 - h1
        let nodes = vec![
            node("h0", NodeKind::Host),
            node("r0", NodeKind::Router),
            node("r1", NodeKind::Router),
            node("r2", NodeKind::Router),
            node("r3", NodeKind::Router),
            node("h1", NodeKind::Host),
        ];
        let links = vec![
            link(0, 1),
            link(1, 2),
            link(1, 3),
            link(2, 4),
            link(3, 4),
            link(4, 5),
        ];
        let plan = plan_addresses(&nodes, &links).unwrap();
        let routes = auto_routes(&nodes, &plan, &[true; 6], &[true; 6]);
        let r0 = routes[1].as_ref().unwrap();
        let to_h1 = r0
            .iter()
            .find(|r| r.prefix == plan.segments[5].prefix)
            .unwrap();
        assert_eq!(to_h1.next_hops.len(), 2);
        // With r1-r3 down, only the path through r2 remains.
        let mut up = [true; 6];
        up[3] = false;
        let routes = auto_routes(&nodes, &plan, &up, &[true; 6]);
        let to_h1 = routes[1]
            .as_ref()
            .unwrap()
            .iter()
            .find(|r| r.prefix == plan.segments[5].prefix)
            .unwrap()
            .clone();
        assert_eq!(to_h1.next_hops.len(), 1);
    }

    #[test]
    fn dynamically_addressed_hosts_get_no_address_and_no_routes() {
        // d (dynamic), h -- s -- r -- h2
        let mut d = node("d", NodeKind::Host);
        d.dynamic_address = true;
        let nodes = vec![
            d,
            node("h", NodeKind::Host),
            node("s", NodeKind::Switch),
            node("r", NodeKind::Router),
            node("h2", NodeKind::Host),
        ];
        let links = vec![link(0, 2), link(1, 2), link(2, 3), link(3, 4)];
        let plan = plan_addresses(&nodes, &links).unwrap();
        assert_eq!(plan.ifaces[0][0], None);
        assert_eq!(plan.segments[0].members[0], (0, 0), "still on its segment");
        assert_eq!(
            plan.ifaces[1][0].unwrap().0,
            "10.0.0.2".parse::<Ipv4Addr>().unwrap(),
            "static hosts keep the addresses they would have had"
        );
        let routes = auto_routes(&nodes, &plan, &[true; 4], &[true; 5]);
        assert_eq!(routes[0], Some(vec![]));
        assert_eq!(routes[1].as_ref().unwrap().len(), 1);
        let h2 = &routes[4].as_ref().unwrap()[0];
        assert_eq!(h2.prefix, Prefix::new(Ipv4Addr::UNSPECIFIED, 0));
    }

    #[test]
    fn explicit_addresses_are_checked() {
        let nodes = vec![node("a", NodeKind::Host), node("b", NodeKind::Host)];
        let mut l = link(0, 1);
        l.subnet = Some(Prefix::new("192.168.1.0".parse().unwrap(), 24));
        l.a_addr = Some(("192.168.2.1".parse().unwrap(), 24));
        assert!(matches!(
            plan_addresses(&nodes, &[l]),
            Err(TopologyError::AddressOutsideSubnet { .. })
        ));
    }
}

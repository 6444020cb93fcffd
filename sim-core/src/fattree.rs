//! k-ary fat-trees (Al-Fares, Loukissas and Vahdat, "A Scalable, Commodity Data Center
//! Network Architecture", SIGCOMM 2008): the nodes and links of one, their addresses and
//! every node's routes, in closed form.
//!
//! Owns the layout only. It produces the same plain data as [`crate::topology`] (links
//! with addresses, routes per node) and never touches packets or time.
//!
//! A fat-tree of even arity k has k pods. Pod p has k/2 edge routers and k/2 aggregation
//! routers; edge router i has k/2 hosts and a link to every aggregation router of its
//! pod. The (k/2)^2 core routers form k/2 columns of k/2: core m of column j has a link
//! to aggregation router j of every pod. So k^3/4 hosts, 5k^2/4 routers and 3k^3/4 links,
//! every router with k ports.
//!
//! Every link is its own /31 (RFC 3021), so hosts are not on a shared LAN and no ARP
//! request is ever flooded. With k at most [`MAX_K`], inside 10.0.0.0/8:
//!
//! | Link | Subnet | Lower address | Upper address |
//! |---|---|---|---|
//! | host x on edge i of pod p | 10.p.i.2x/31 | edge router | host (10.p.i.2x+1) |
//! | edge i – aggregation j of pod p | 10.(128+p).i.2j/31 | edge router | aggregation router |
//! | aggregation j of pod p – core m of column j | 10.(128+p).(64+j).2m/31 | aggregation router | core router |
//!
//! Routes are two-level as in Al-Fares: a /16 per pod (10.p.0.0/16) and a /24 per edge
//! router (10.p.i.0/24). Their next hops are exactly those that shortest-path routing
//! over every segment ([`crate::topology::auto_routes`]) gives for every host address,
//! all equal-cost ones included (a test checks this for several k):
//!
//! - a host: default route via its edge router;
//! - edge router i of pod p: the /24 of every other edge router of the pod and the /16 of
//!   every other pod, each via all k/2 aggregation routers of the pod (k/2-way ECMP);
//! - aggregation router j of pod p: the /24 of each edge router of its pod via that
//!   router, and the /16 of every other pod via all k/2 cores of column j (k/2-way ECMP);
//! - core router: the /16 of each pod via that pod's aggregation router.
//!
//! Where the two differ, and why: the links between routers are not advertised (as
//! RFC 7938 allows for a data center's point-to-point links). A router reaches the
//! addresses of its own links only. Shortest paths to a link depend on its pod at the
//! cores and on its aggregation column at the edge routers, which no single address
//! hierarchy aggregates for both, so exact routes to every link would take on the order
//! of 10 million entries at k = 74, for addresses no application uses. And an address in
//! a pod's or edge router's block that no host has is forwarded to that pod or edge
//! router (which then has no route for it) instead of being refused at the first router.
//!
//! Routes with the same next hops share one allocation ([`crate::topology::EcmpGroups`]):
//! a router has one set for all its ports going up and one per port going down. At
//! k = 74 the 6,845 routers have 700,928 route entries (and every host a default route),
//! sharing about 310,000 next-hop sets.

use crate::route::{NextHop, Prefix, Route, RouteOrigin};
use crate::topology::{EcmpGroups, NodeKind};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// The largest arity: pods and edge routers are numbered in one address octet each.
pub const MAX_K: u32 = 128;

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FatTreeError {
    #[error("k must be an even number from 2 to {MAX_K}, found {0}")]
    BadArity(u32),
}

/// One node of a fat-tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FatNode {
    /// Host `host` of edge router `edge` of pod `pod`.
    Host {
        pod: u32,
        edge: u32,
        host: u32,
    },
    Edge {
        pod: u32,
        edge: u32,
    },
    Agg {
        pod: u32,
        agg: u32,
    },
    /// Core router `core` of column `column` (linked to aggregation router `column` of
    /// every pod).
    Core {
        column: u32,
        core: u32,
    },
}

impl FatNode {
    pub fn kind(&self) -> NodeKind {
        match self {
            FatNode::Host { .. } => NodeKind::Host,
            _ => NodeKind::Router,
        }
    }
}

/// The three tiers of links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Host – edge router.
    Host,
    /// Edge – aggregation router.
    Aggregation,
    /// Aggregation – core router.
    Core,
}

/// One link: `a` is the lower end (the edge router of a host link, the edge router of an
/// edge–aggregation link, the aggregation router of an aggregation–core link).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FatLink {
    pub a: FatNode,
    pub b: FatNode,
    pub tier: Tier,
    /// The /31 of the link: `a` has its lower address, `b` the upper one.
    pub subnet: Prefix,
}

impl FatLink {
    pub fn a_addr(&self) -> Ipv4Addr {
        self.subnet.addr()
    }
    pub fn b_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.subnet.network + 1)
    }
}

/// A k-ary fat-tree. Nodes are numbered hosts first (by pod, edge router, host), then edge
/// routers (by pod, edge), aggregation routers (by pod, aggregation), core routers (by
/// column, core); links host links first (by pod, edge, host), then edge–aggregation
/// links (by pod, edge, aggregation), then aggregation–core links (by pod, aggregation,
/// core). A node's port i is the i-th link that names it, so an edge router's ports are
/// its hosts and then its aggregation routers, an aggregation router's its edge routers
/// and then its cores, and a core router's port p leads to pod p.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FatTree {
    k: u32,
}

fn addr(b: u32, c: u32, d: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, b as u8, c as u8, d as u8)
}

impl FatTree {
    pub fn new(k: u32) -> Result<FatTree, FatTreeError> {
        if k == 0 || !k.is_multiple_of(2) || k > MAX_K {
            return Err(FatTreeError::BadArity(k));
        }
        Ok(FatTree { k })
    }

    pub fn k(&self) -> u32 {
        self.k
    }
    fn half(&self) -> u32 {
        self.k / 2
    }
    pub fn host_count(&self) -> usize {
        (self.k * self.half() * self.half()) as usize
    }
    /// Edge routers, and as many aggregation routers.
    pub fn edge_count(&self) -> usize {
        (self.k * self.half()) as usize
    }
    pub fn core_count(&self) -> usize {
        (self.half() * self.half()) as usize
    }
    pub fn router_count(&self) -> usize {
        2 * self.edge_count() + self.core_count()
    }
    pub fn node_count(&self) -> usize {
        self.host_count() + self.router_count()
    }
    pub fn link_count(&self) -> usize {
        3 * self.host_count()
    }

    /// Node number `i` (see [`FatTree`] for the order); `i` must be below
    /// [`FatTree::node_count`].
    pub fn node(&self, i: usize) -> FatNode {
        let h = self.half() as usize;
        let (hosts, edges) = (self.host_count(), self.edge_count());
        if i < hosts {
            FatNode::Host {
                pod: (i / (h * h)) as u32,
                edge: (i / h % h) as u32,
                host: (i % h) as u32,
            }
        } else if i < hosts + edges {
            let e = i - hosts;
            FatNode::Edge {
                pod: (e / h) as u32,
                edge: (e % h) as u32,
            }
        } else if i < hosts + 2 * edges {
            let a = i - hosts - edges;
            FatNode::Agg {
                pod: (a / h) as u32,
                agg: (a % h) as u32,
            }
        } else {
            let c = i - hosts - 2 * edges;
            FatNode::Core {
                column: (c / h) as u32,
                core: (c % h) as u32,
            }
        }
    }

    /// The number of node `n`.
    pub fn index(&self, n: FatNode) -> usize {
        let h = self.half() as usize;
        let (hosts, edges) = (self.host_count(), self.edge_count());
        match n {
            FatNode::Host { pod, edge, host } => {
                (pod as usize * h + edge as usize) * h + host as usize
            }
            FatNode::Edge { pod, edge } => hosts + pod as usize * h + edge as usize,
            FatNode::Agg { pod, agg } => hosts + edges + pod as usize * h + agg as usize,
            FatNode::Core { column, core } => {
                hosts + 2 * edges + column as usize * h + core as usize
            }
        }
    }

    /// Link number `l` (see [`FatTree`] for the order); `l` must be below
    /// [`FatTree::link_count`].
    pub fn link(&self, l: usize) -> FatLink {
        let h = self.half() as usize;
        let per_tier = self.host_count();
        let (tier, r) = (l / per_tier, l % per_tier);
        // Every tier has k * h * h links, numbered (pod, x, y) with x, y < h.
        let (pod, x, y) = ((r / (h * h)) as u32, (r / h % h) as u32, (r % h) as u32);
        match tier {
            0 => FatLink {
                a: FatNode::Edge { pod, edge: x },
                b: FatNode::Host {
                    pod,
                    edge: x,
                    host: y,
                },
                tier: Tier::Host,
                subnet: Prefix::new(addr(pod, x, 2 * y), 31),
            },
            1 => FatLink {
                a: FatNode::Edge { pod, edge: x },
                b: FatNode::Agg { pod, agg: y },
                tier: Tier::Aggregation,
                subnet: Prefix::new(addr(128 + pod, x, 2 * y), 31),
            },
            _ => FatLink {
                a: FatNode::Agg { pod, agg: x },
                b: FatNode::Core { column: x, core: y },
                tier: Tier::Core,
                subnet: Prefix::new(addr(128 + pod, 64 + x, 2 * y), 31),
            },
        }
    }

    pub fn links(&self) -> impl Iterator<Item = FatLink> + '_ {
        (0..self.link_count()).map(|l| self.link(l))
    }

    /// The address of host `host` of edge router `edge` of pod `pod`.
    pub fn host_addr(&self, pod: u32, edge: u32, host: u32) -> Ipv4Addr {
        addr(pod, edge, 2 * host + 1)
    }

    /// The /16 of pod `pod`'s hosts.
    pub fn pod_prefix(&self, pod: u32) -> Prefix {
        Prefix::new(addr(pod, 0, 0), 16)
    }

    /// The /24 of the hosts of edge router `edge` of pod `pod`.
    pub fn edge_prefix(&self, pod: u32, edge: u32) -> Prefix {
        Prefix::new(addr(pod, edge, 0), 24)
    }

    /// The automatic routes of node `i` (connected routes are the interfaces' own, as
    /// with [`crate::topology::auto_routes`]). Next-hop sets come from `groups`.
    pub fn routes(&self, i: usize, groups: &mut EcmpGroups) -> Vec<Route> {
        let h = self.half();
        let auto = |prefix: Prefix, next_hops: Arc<[NextHop]>| Route {
            prefix,
            next_hops,
            origin: RouteOrigin::Auto,
        };
        let hop = |iface: u32, gw: Ipv4Addr| NextHop {
            iface: iface as u16,
            gateway: Some(gw),
        };
        match self.node(i) {
            FatNode::Host { pod, edge, host } => vec![auto(
                Prefix::new(Ipv4Addr::UNSPECIFIED, 0),
                groups.intern(&[hop(0, addr(pod, edge, 2 * host))]),
            )],
            FatNode::Edge { pod, edge } => {
                // Up through every aggregation router of the pod (ports h..k).
                let ups: Vec<NextHop> = (0..h)
                    .map(|j| hop(h + j, addr(128 + pod, edge, 2 * j + 1)))
                    .collect();
                let up = groups.intern(&ups);
                let mut out = Vec::with_capacity((self.k + h) as usize);
                for p in 0..self.k {
                    if p != pod {
                        out.push(auto(self.pod_prefix(p), up.clone()));
                        continue;
                    }
                    for e in (0..h).filter(|&e| e != edge) {
                        out.push(auto(self.edge_prefix(p, e), up.clone()));
                    }
                }
                out
            }
            FatNode::Agg { pod, agg } => {
                // Up through every core of the column (ports h..k), down to one edge router.
                let ups: Vec<NextHop> = (0..h)
                    .map(|m| hop(h + m, addr(128 + pod, 64 + agg, 2 * m + 1)))
                    .collect();
                let up = groups.intern(&ups);
                let mut out = Vec::with_capacity((self.k + h) as usize);
                for p in 0..self.k {
                    if p != pod {
                        out.push(auto(self.pod_prefix(p), up.clone()));
                        continue;
                    }
                    for e in 0..h {
                        let down = groups.intern(&[hop(e, addr(128 + pod, e, 2 * agg))]);
                        out.push(auto(self.edge_prefix(p, e), down));
                    }
                }
                out
            }
            FatNode::Core { column, core } => (0..self.k)
                .map(|p| {
                    let down = groups.intern(&[hop(p, addr(128 + p, 64 + column, 2 * core))]);
                    auto(self.pod_prefix(p), down)
                })
                .collect(),
        }
    }

    /// Every node's automatic routes, in node order (the shape of
    /// [`crate::topology::auto_routes`]'s result).
    pub fn auto_routes(&self) -> Vec<Option<Vec<Route>>> {
        let mut groups = EcmpGroups::default();
        (0..self.node_count())
            .map(|i| Some(self.routes(i, &mut groups)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::RouteTable;
    use crate::topology::{auto_routes, plan_addresses, TopoLink, TopoNode};

    #[test]
    fn arity_must_be_even_and_at_most_128() {
        for k in [0, 3, 75, 130] {
            assert_eq!(FatTree::new(k), Err(FatTreeError::BadArity(k)));
        }
        let t = FatTree::new(74).unwrap();
        assert_eq!(t.host_count(), 101_306);
        assert_eq!(t.router_count(), 6_845);
        assert_eq!(t.link_count(), 303_918);
        assert_eq!(FatTree::new(128).unwrap().host_count(), 524_288);
    }

    #[test]
    fn node_numbers_and_nodes_correspond() {
        let t = FatTree::new(6).unwrap();
        for i in 0..t.node_count() {
            assert_eq!(t.index(t.node(i)), i);
        }
        assert_eq!(
            t.node(t.host_count() - 1),
            FatNode::Host {
                pod: 5,
                edge: 2,
                host: 2
            }
        );
        assert_eq!(
            t.node(t.node_count() - 1),
            FatNode::Core { column: 2, core: 2 }
        );
    }

    /// The fat-tree as `topology` sees it, with the same addresses.
    fn as_topology(t: &FatTree) -> (Vec<TopoNode>, Vec<TopoLink>) {
        let nodes = (0..t.node_count())
            .map(|i| TopoNode {
                name: format!("{:?}", t.node(i)),
                kind: t.node(i).kind(),
                dynamic_address: false,
            })
            .collect();
        let links = t
            .links()
            .map(|l| TopoLink {
                a: t.index(l.a),
                b: t.index(l.b),
                subnet: Some(l.subnet),
                a_addr: Some((l.a_addr(), 31)),
                b_addr: Some((l.b_addr(), 31)),
            })
            .collect();
        (nodes, links)
    }

    fn table(connected: &[Option<(Ipv4Addr, Prefix)>], auto: &[Route]) -> RouteTable {
        let mut t = RouteTable::default();
        for (port, a) in connected.iter().enumerate() {
            if let Some((_, prefix)) = a {
                t.insert(Route {
                    prefix: *prefix,
                    next_hops: Arc::new([NextHop {
                        iface: port as u16,
                        gateway: None,
                    }]),
                    origin: RouteOrigin::Connected,
                });
            }
        }
        for r in auto {
            t.insert(r.clone());
        }
        t
    }

    /// For every node and every address of every host link, the closed-form routes and
    /// shortest-path routing over all segments choose among the same next hops; the
    /// links between routers are reached by their own ends only.
    #[test]
    fn routes_to_every_host_address_equal_shortest_path_routing() {
        for k in [2, 4, 6, 8] {
            let t = FatTree::new(k).unwrap();
            let (nodes, links) = as_topology(&t);
            let plan = plan_addresses(&nodes, &links).unwrap();
            let generic = auto_routes(
                &nodes,
                &plan,
                &vec![true; links.len()],
                &vec![true; nodes.len()],
            );
            let closed = t.auto_routes();
            let mut compared = 0;
            for n in 0..t.node_count() {
                let g = table(&plan.ifaces[n], generic[n].as_ref().unwrap());
                let c = table(&plan.ifaces[n], closed[n].as_ref().unwrap());
                for (l, link) in t.links().enumerate() {
                    for a in [link.a_addr(), link.b_addr()] {
                        let (gr, cr) = (g.lookup(a), c.lookup(a));
                        if link.tier == Tier::Host || n < t.host_count() {
                            assert_eq!(
                                gr.map(|r| &r.next_hops),
                                cr.map(|r| &r.next_hops),
                                "k={k}: node {:?} to {a} (link {l})",
                                t.node(n)
                            );
                            compared += 1;
                        } else {
                            let own = plan.link_ports[l].iter().any(|&(m, _)| m == n);
                            assert_eq!(cr.is_some(), own, "k={k} {:?} {a}", t.node(n));
                        }
                    }
                }
            }
            assert!(compared > 2 * t.host_count() * t.node_count() - 1);
        }
    }

    #[test]
    fn ecmp_fans_out_k_over_2_ways_going_up() {
        let t = FatTree::new(8).unwrap();
        let routes = t.auto_routes();
        let edge = t.index(FatNode::Edge { pod: 0, edge: 0 });
        let agg = t.index(FatNode::Agg { pod: 0, agg: 1 });
        let far = t.host_addr(5, 2, 3);
        for n in [edge, agg] {
            let r = routes[n].as_ref().unwrap();
            let to_far = r.iter().find(|r| r.prefix.contains(far)).unwrap();
            assert_eq!(to_far.next_hops.len(), 4);
            // One next-hop set per router for all the routes going up.
            let up = r
                .iter()
                .filter(|x| Arc::ptr_eq(&x.next_hops, &to_far.next_hops));
            assert_eq!(up.count(), if n == edge { 7 + 3 } else { 7 });
        }
    }
}

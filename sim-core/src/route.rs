//! A node's IPv4 routing table: longest-prefix match and ECMP next-hop choice.
//!
//! Owns lookups only. Which routes exist is decided elsewhere (connected routes by the
//! interfaces, static routes by the scenario, automatic routes by `topology`).
//!
//! ECMP (RB-IP-05): among equal-cost next hops, a flow is pinned to one by a seeded hash of
//! its 5-tuple, so its packets never take different paths; spraying picks per packet.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// An IPv4 prefix (network address with host bits cleared, and length).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    pub network: u32,
    pub len: u8,
}

impl Prefix {
    pub fn new(addr: Ipv4Addr, len: u8) -> Self {
        let len = len.min(32);
        Prefix {
            network: u32::from(addr) & mask(len),
            len,
        }
    }
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.len) == self.network
    }
    pub fn addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network | !mask(self.len))
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

pub fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len.min(32) as u32)
    }
}

/// Where to send a packet: out of an interface, to a gateway or directly to the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NextHop {
    pub iface: u16,
    /// None for a connected route: the destination itself is the next hop.
    pub gateway: Option<Ipv4Addr>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteOrigin {
    Connected,
    /// Added at run time by the node's own stack (`ip route add`, e.g. by a DHCP client);
    /// survives route recomputation, gone when the node crashes.
    Dynamic,
    Static,
    Auto,
}

impl RouteOrigin {
    pub fn name(self) -> &'static str {
        match self {
            RouteOrigin::Connected => "connected",
            RouteOrigin::Dynamic => "dynamic",
            RouteOrigin::Static => "static",
            RouteOrigin::Auto => "auto",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub prefix: Prefix,
    /// Equal-cost next hops, in a fixed order. Shared: the routes of a big network use
    /// few distinct sets (an ECMP group), so routes with the same set may share one.
    pub next_hops: Arc<[NextHop]>,
    pub origin: RouteOrigin,
}

/// How a router chooses among equal-cost next hops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EcmpMode {
    /// Hash of the 5-tuple: a flow stays on one path.
    #[default]
    PerFlow,
    /// Each packet picks at random (packets of a flow may be reordered).
    PerPacket,
}

/// The 5-tuple a router may hash on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

impl FlowKey {
    /// A seeded 64-bit hash (SplitMix-style mixing): stable across machines and runs.
    pub fn hash(&self, seed: u64) -> u64 {
        let a = ((u32::from(self.src) as u64) << 32) | u32::from(self.dst) as u64;
        let b =
            ((self.protocol as u64) << 32) | ((self.src_port as u64) << 16) | self.dst_port as u64;
        let mut x = seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x = mix(x ^ b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f));
        mix(x)
    }
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A fast hasher for the `(prefix length, network)` keys of [`RouteTable`] (and the IP
/// layer's neighbour table): one multiply per word (the keys are not attacker-chosen, and
/// the maps are never iterated). Lookups hash once per prefix length present, on every
/// packet sent or forwarded.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // Fold the high bits, which the multiply mixes best, into the low ones the table uses.
        self.0 ^ (self.0 >> 32)
    }
}

/// Routes indexed for longest-prefix match. Lookups only ever use the map by key, so its
/// iteration order never matters.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    by_len: HashMap<(u8, u32), usize, BuildHasherDefault<PrefixHasher>>,
    /// Distinct prefix lengths present, longest first.
    lengths: Vec<u8>,
    /// Recent lookups, direct-mapped by destination: (destination, route index + 1; 0 for
    /// an empty entry). A router looks up the same few destinations packet after packet;
    /// every change to the table empties it.
    recent: [Cell<(u32, u32)>; RECENT],
}

/// Entries in [`RouteTable::recent`] (a power of two).
const RECENT: usize = 8;

fn recent_index(dst: u32) -> usize {
    (dst.wrapping_mul(0x9e37_79b9) >> (32 - RECENT.trailing_zeros())) as usize
}

impl RouteTable {
    /// Adds a route, or replaces the one with the same prefix unless that one is more
    /// specific in origin (a connected route is never replaced by a learned one).
    pub fn insert(&mut self, route: Route) {
        self.forget_recent();
        let key = (route.prefix.len, route.prefix.network);
        match self.by_len.get(&key) {
            Some(&i) => {
                if self.routes[i].origin >= route.origin
                    || self.routes[i].origin == RouteOrigin::Auto
                {
                    self.routes[i] = route;
                }
            }
            None => {
                self.by_len.insert(key, self.routes.len());
                if !self.lengths.contains(&route.prefix.len) {
                    self.lengths.push(route.prefix.len);
                    self.lengths.sort_unstable_by(|a, b| b.cmp(a));
                }
                self.routes.push(route);
            }
        }
    }

    /// Removes every route of one origin (before installing recomputed automatic routes).
    pub fn remove_origin(&mut self, origin: RouteOrigin) {
        self.forget_recent();
        let kept: Vec<Route> = self
            .routes
            .drain(..)
            .filter(|r| r.origin != origin)
            .collect();
        self.by_len.clear();
        self.lengths.clear();
        for r in kept {
            self.insert(r);
        }
    }

    /// Removes the route for `prefix` if it has origin `origin`; returns it.
    pub fn remove(&mut self, prefix: Prefix, origin: RouteOrigin) -> Option<Route> {
        let i = *self.by_len.get(&(prefix.len, prefix.network))?;
        if self.routes[i].origin != origin {
            return None;
        }
        self.forget_recent();
        let mut kept = std::mem::take(&mut self.routes);
        let removed = kept.remove(i);
        self.by_len.clear();
        self.lengths.clear();
        for r in kept {
            self.insert(r);
        }
        Some(removed)
    }

    pub fn lookup(&self, dst: Ipv4Addr) -> Option<&Route> {
        let d = u32::from(dst);
        let slot = &self.recent[recent_index(d)];
        let (cached, index) = slot.get();
        if index != 0 && cached == d {
            return self.routes.get(index as usize - 1);
        }
        let i = self
            .lengths
            .iter()
            .find_map(|&len| self.by_len.get(&(len, d & mask(len))).copied())?;
        slot.set((d, i as u32 + 1));
        self.routes.get(i)
    }

    fn forget_recent(&mut self) {
        self.recent = Default::default();
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// Picks the next hop for a packet among a route's equal-cost next hops.
pub fn choose_next_hop(
    route: &Route,
    mode: EcmpMode,
    key: &FlowKey,
    seed: u64,
    spray_draw: u64,
) -> NextHop {
    let n = route.next_hops.len() as u64;
    if n <= 1 {
        return route.next_hops[0];
    }
    let i = match mode {
        EcmpMode::PerFlow => key.hash(seed) % n,
        EcmpMode::PerPacket => spray_draw % n,
    };
    route.next_hops[i as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(net: &str, len: u8, iface: u16) -> Route {
        Route {
            prefix: Prefix::new(net.parse().unwrap(), len),
            next_hops: Arc::new([NextHop {
                iface,
                gateway: None,
            }]),
            origin: RouteOrigin::Static,
        }
    }

    // RB-IP-01
    #[test]
    fn longest_prefix_wins() {
        let mut t = RouteTable::default();
        t.insert(r("0.0.0.0", 0, 0));
        t.insert(r("10.0.0.0", 8, 1));
        t.insert(r("10.1.0.0", 16, 2));
        t.insert(r("10.1.2.0", 24, 3));
        let iface = |a: &str| t.lookup(a.parse().unwrap()).unwrap().next_hops[0].iface;
        assert_eq!(iface("10.1.2.3"), 3);
        assert_eq!(iface("10.1.3.3"), 2);
        assert_eq!(iface("10.2.0.1"), 1);
        assert_eq!(iface("192.168.0.1"), 0);
        let mut t = RouteTable::default();
        t.insert(r("10.0.0.0", 8, 1));
        assert!(t.lookup("11.0.0.1".parse().unwrap()).is_none());
    }

    /// Repeated lookups are answered from the recent-lookup cache, which every change to
    /// the table must empty.
    #[test]
    fn repeated_lookups_see_every_change() {
        let mut t = RouteTable::default();
        let iface = |t: &RouteTable| {
            t.lookup("10.1.2.3".parse().unwrap())
                .map(|r| r.next_hops[0].iface)
        };
        assert_eq!(iface(&t), None);
        t.insert(r("10.0.0.0", 8, 1));
        assert_eq!((iface(&t), iface(&t)), (Some(1), Some(1)));
        t.insert(r("10.1.0.0", 16, 2));
        assert_eq!((iface(&t), iface(&t)), (Some(2), Some(2)));
        let mut d = r("10.1.2.0", 24, 3);
        d.origin = RouteOrigin::Dynamic;
        t.insert(d);
        assert_eq!(iface(&t), Some(3));
        t.remove(
            Prefix::new("10.1.2.0".parse().unwrap(), 24),
            RouteOrigin::Dynamic,
        );
        assert_eq!(iface(&t), Some(2));
        t.remove_origin(RouteOrigin::Static);
        assert_eq!(iface(&t), None);
        // Many destinations sharing cache entries.
        t.insert(r("0.0.0.0", 0, 4));
        t.insert(r("10.0.0.0", 8, 5));
        for k in 0..64u32 {
            let a = Ipv4Addr::from(0x0a00_0000 + k * 977);
            let b = Ipv4Addr::from(0xc000_0000 + k * 977);
            assert_eq!(t.lookup(a).unwrap().next_hops[0].iface, 5);
            assert_eq!(t.lookup(b).unwrap().next_hops[0].iface, 4);
        }
    }

    #[test]
    fn remove_takes_only_a_route_of_the_given_origin() {
        let mut t = RouteTable::default();
        t.insert(r("10.0.0.0", 8, 1));
        let mut d = r("0.0.0.0", 0, 2);
        d.origin = RouteOrigin::Dynamic;
        t.insert(d.clone());
        let p = |a: &str, len| Prefix::new(a.parse().unwrap(), len);
        assert_eq!(t.remove(p("10.0.0.0", 8), RouteOrigin::Dynamic), None);
        assert_eq!(t.remove(p("0.0.0.0", 0), RouteOrigin::Dynamic), Some(d));
        assert!(t.lookup("11.0.0.1".parse().unwrap()).is_none());
        assert_eq!(
            t.lookup("10.0.0.1".parse().unwrap()).unwrap().next_hops[0].iface,
            1
        );
        assert_eq!(t.len(), 1);
    }

    // RB-IP-05
    #[test]
    fn per_flow_choice_is_stable_and_spreads() {
        let route = Route {
            prefix: Prefix::new(Ipv4Addr::UNSPECIFIED, 0),
            next_hops: (0..4)
                .map(|i| NextHop {
                    iface: i,
                    gateway: None,
                })
                .collect::<Vec<_>>()
                .into(),
            origin: RouteOrigin::Auto,
        };
        let mut counts = [0; 4];
        for port in 0..4000u16 {
            let key = FlowKey {
                src: Ipv4Addr::new(10, 0, 0, 1),
                dst: Ipv4Addr::new(10, 0, 9, 1),
                protocol: 17,
                src_port: 32768 + port,
                dst_port: 5001,
            };
            let a = choose_next_hop(&route, EcmpMode::PerFlow, &key, 42, 0);
            let b = choose_next_hop(&route, EcmpMode::PerFlow, &key, 42, 7);
            assert_eq!(a, b);
            counts[a.iface as usize] += 1;
        }
        for c in counts {
            assert!((850..1150).contains(&c), "{counts:?}");
        }
    }
}

//! The IPv4 layer of a host or router: interfaces, ARP, forwarding, fragmentation and
//! reassembly, and the ICMP messages the kernel itself sends (echo replies and errors).
//!
//! Owns everything between a frame arriving on a port and a datagram handed up to the
//! node's transport stack (as an [`Upcall`]), and the reverse. It does not know any
//! transport protocol: transport packets are opaque apart from their ports.
//!
//! Behaviours (see reference-behaviors.md): RB-IP-01 (longest-prefix match, net
//! unreachable), RB-IP-02 (TTL and time exceeded), RB-IP-03 (fragmentation, DF, reassembly
//! timeout), RB-IP-05 (ECMP), RB-ARP-01/02 (resolution, caching, ageing, retries, host
//! unreachable on failure).
//!
//! ARP follows Linux's neighbour state machine, simplified: an entry is REACHABLE for
//! `arp_cache_timeout` after it was last confirmed, then STALE. A packet to a stale entry
//! still goes to its MAC and starts a re-confirmation (DELAY for `arp_delay_first_probe`,
//! then PROBE: up to `arp_ucast_probes` requests unicast to that MAC, `arp_retry_interval`
//! apart); any ARP packet from the neighbour confirms it, and if none comes the entry is
//! dropped (FAILED) and the next packet resolves afresh. Resolution sends `arp_retries`
//! broadcast requests `arp_retry_interval` apart (Linux: mcast_solicit 3, retrans_time 1 s)
//! and then fails: queued packets are dropped and their senders get ICMP host unreachable
//! (a local sender from the node itself, as Linux does).
//!
//! Run-time configuration (what `ip addr`, `ip route` and a packet socket give a Linux
//! program, for stacks that configure the node themselves, e.g. a DHCP client): an
//! interface may start without an address ([`Iface::is_configured`]) and get one later
//! ([`IpNode::configure_iface`]); routes may be added and removed ([`RouteOrigin::Dynamic`]);
//! an interface may deliver every datagram that arrives on it whatever its destination
//! ([`IpNode::set_receive_any`]); a datagram may be sent to a given link-layer address
//! without ARP ([`SendRequest::link_dst`]); ARP probes and announcements (RFC 5227) can be
//! sent, and ARP traffic claiming a watched address from another MAC is reported as
//! [`Upcall::AddressConflict`]. A crash undoes all of it: the node boots with the
//! addresses and routes it was built with.

use crate::link::PacketId;
use crate::node_trace;
use crate::packet::*;
use crate::rng::SimRng;
use crate::route::{
    choose_next_hop, EcmpMode, FlowKey, Prefix, PrefixHasher, Route, RouteOrigin, RouteTable,
};
use crate::sched::TimerHandle;
use crate::time::{SimDuration, SimTime};
use crate::trace::Category;
use crate::wire;
use crate::world::{Net, NodeId};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Kernel knobs of the IP layer, with Linux defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct IpConfig {
    /// net.ipv4.ip_default_ttl
    pub default_ttl: u8,
    /// ARP requests sent before giving up (mcast_solicit).
    pub arp_retries: u8,
    /// Time between ARP requests (retrans_time_ms).
    pub arp_retry_interval: SimDuration,
    /// How long a resolved entry is REACHABLE after it was last confirmed; it is STALE then.
    pub arp_cache_timeout: SimDuration,
    /// How long a stale entry in use waits before its first unicast probe (Linux's
    /// `delay_first_probe_time`, DELAY).
    pub arp_delay_first_probe: SimDuration,
    /// Unicast requests sent to re-confirm a stale entry in use before it is dropped
    /// (Linux's `ucast_solicit`, PROBE).
    pub arp_ucast_probes: u8,
    /// Packets held per unresolved neighbour (Linux's unres_qlen_bytes default holds ~101).
    pub arp_queue_len: usize,
    /// net.ipv4.ipfrag_time
    pub reassembly_timeout: SimDuration,
    /// Reply to echo requests (net.ipv4.icmp_echo_ignore_all = 0).
    pub echo_reply: bool,
}

impl Default for IpConfig {
    fn default() -> Self {
        IpConfig {
            default_ttl: 64,
            arp_retries: 3,
            arp_retry_interval: SimDuration::from_secs(1),
            arp_cache_timeout: SimDuration::from_secs(60),
            arp_delay_first_probe: SimDuration::from_secs(5),
            arp_ucast_probes: 3,
            arp_queue_len: 101,
            reassembly_timeout: SimDuration::from_secs(30),
            echo_reply: true,
        }
    }
}

/// One IPv4 interface; interface i is the node's port i.
#[derive(Clone, Debug, PartialEq)]
pub struct Iface {
    pub mac: MacAddr,
    /// 0.0.0.0 while the interface has no address.
    pub addr: Ipv4Addr,
    pub prefix: Prefix,
    pub mtu: u32,
}

impl Iface {
    /// Does the interface have an address?
    pub fn is_configured(&self) -> bool {
        !self.addr.is_unspecified()
    }
}

/// A transport packet delivered to this node.
#[derive(Clone, Debug, PartialEq)]
pub struct Datagram {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    pub tos: u8,
    pub iface: u16,
    pub packet: TransportPacket,
}

impl Datagram {
    /// The RFC 792 quote of this datagram, for an ICMP error about it.
    pub fn quote(&self) -> Quote {
        let h = self.packet.header.as_slice();
        let mut data = [0u8; 8];
        let n = h.len().min(8);
        data[..n].copy_from_slice(&h[..n]);
        Quote {
            src: self.src,
            dst: self.dst,
            protocol: self.protocol,
            ttl: self.ttl,
            tos: self.tos,
            ident: 0,
            total_len: (IPV4_HEADER_LEN + self.packet.len()).min(u16::MAX as usize) as u16,
            dont_fragment: false,
            more_fragments: false,
            fragment_offset: 0,
            data,
            data_len: n as u8,
        }
    }
}

/// An ICMP message delivered to this node's stack (echo replies and errors; echo requests
/// are answered by the IP layer itself).
#[derive(Clone, Debug, PartialEq)]
pub struct IcmpIn {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub message: IcmpMessage,
}

/// What the IP layer hands up to the node's stack.
#[derive(Clone, Debug, PartialEq)]
pub enum Upcall {
    Datagram(Datagram),
    Icmp(IcmpIn),
    /// An ARP packet on `iface` from another MAC claims `addr`, which the stack watches
    /// ([`IpNode::watch_address`]): a reply or announcement from `addr`, or another node's
    /// probe for it (RFC 5227 section 2.1.1).
    AddressConflict {
        iface: u16,
        addr: Ipv4Addr,
        mac: MacAddr,
    },
    /// The link on `iface` went down or came back up (carrier, as netlink reports it).
    Carrier {
        iface: u16,
        up: bool,
    },
}

/// A datagram the stack asks the IP layer to send.
#[derive(Clone, Debug, PartialEq)]
pub struct SendRequest {
    /// Source address; `None` picks the outgoing interface's address.
    pub src: Option<Ipv4Addr>,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    /// `None` uses the node's default TTL.
    pub ttl: Option<u8>,
    pub tos: u8,
    pub dont_fragment: bool,
    /// Send out of this interface regardless of routes (needed for 255.255.255.255).
    pub iface: Option<u16>,
    /// With `iface`: send to this link-layer address without ARP, as a packet socket can
    /// (a DHCP server answering a client that has no address yet).
    pub link_dst: Option<MacAddr>,
    pub body: IpBody,
}

impl SendRequest {
    pub fn new(dst: Ipv4Addr, protocol: u8, body: IpBody) -> Self {
        SendRequest {
            src: None,
            dst,
            protocol,
            ttl: None,
            tos: 0,
            dont_fragment: false,
            iface: None,
            link_dst: None,
            body,
        }
    }

    /// The unfragmented datagram this request sends from `src`, with IP ID `ident` (and
    /// `default_ttl` unless the request sets one).
    fn into_packet(self, src: Ipv4Addr, ident: u16, default_ttl: u8) -> Ipv4Packet {
        Ipv4Packet {
            src,
            dst: self.dst,
            ttl: self.ttl.unwrap_or(default_ttl),
            tos: self.tos,
            protocol: self.protocol,
            ident,
            dont_fragment: self.dont_fragment,
            more_fragments: false,
            fragment_offset: 0,
            corrupted: false,
            body: self.body,
        }
    }
}

/// Errors reported synchronously by a send, as Linux's sendmsg would.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("network is unreachable (no route to {0})")]
    NetUnreachable(Ipv4Addr),
    #[error("message too long for the path: MTU {mtu}")]
    MessageTooLong { mtu: u32 },
    #[error("no such interface {0}")]
    NoSuchInterface(u16),
    #[error("the node is down")]
    NodeDown,
}

/// Timer tokens with this bit belong to the IP layer; the rest are the stack's.
pub(crate) const IP_TIMER_BIT: u64 = 1 << 63;
const TIMER_ARP: u64 = 1 << 56;

/// The token of the ARP timer (retry, delay or probe) for `target` on `iface`.
fn arp_timer_token(iface: u16, target: Ipv4Addr) -> u64 {
    IP_TIMER_BIT | TIMER_ARP | ((iface as u64) << 32) | u32::from(target) as u64
}
const TIMER_REASSEMBLY: u64 = 2 << 56;
const TIMER_KIND_MASK: u64 = 0x7f << 56;

enum NeighState {
    Incomplete {
        sent: u8,
        timer: Option<TimerHandle>,
    },
    /// Confirmed at `confirmed`: REACHABLE until `arp_cache_timeout` later, STALE after.
    Reachable { mac: MacAddr, confirmed: SimTime },
    /// A stale entry that was used, being re-confirmed while packets still go to `mac`:
    /// DELAY while `sent` is 0, then PROBE with `sent` unicast requests out.
    Reconfirming {
        mac: MacAddr,
        sent: u8,
        timer: Option<TimerHandle>,
    },
}

struct Neighbor {
    state: NeighState,
    pending: VecDeque<Ipv4Packet>,
}

type NeighborKey = (u16, Ipv4Addr);

/// A set of addresses: inline when there are at most four (most nodes), so that asking
/// costs no pointer chase; otherwise sorted on the heap behind a one-hash Bloom filter of
/// 16 bits per address, so that a router asked about a packet it forwards (nearly always
/// "no") mostly answers from one bit.
#[derive(Clone, Debug, Default)]
struct AddrSet {
    few: [u32; 4],
    n: usize,
    many: Vec<u32>,
    filter: Vec<u64>,
    /// log2 of the filter's size in bits.
    filter_bits: u32,
}

impl AddrSet {
    fn new(mut addrs: Vec<u32>) -> Self {
        addrs.sort_unstable();
        addrs.dedup();
        let mut set = AddrSet {
            n: addrs.len(),
            ..AddrSet::default()
        };
        if addrs.len() <= set.few.len() {
            set.few[..addrs.len()].copy_from_slice(&addrs);
        } else {
            set.filter_bits = (addrs.len() * 16)
                .next_power_of_two()
                .trailing_zeros()
                .max(6);
            set.filter = vec![0; 1 << (set.filter_bits - 6)];
            for &a in &addrs {
                let h = set.filter_hash(a);
                set.filter[h / 64] |= 1 << (h % 64);
            }
            set.many = addrs;
        }
        set
    }

    #[inline]
    fn filter_hash(&self, a: u32) -> usize {
        (a.wrapping_mul(0x9e37_79b1) >> (32 - self.filter_bits)) as usize
    }

    #[inline]
    fn contains(&self, a: Ipv4Addr) -> bool {
        let a = u32::from(a);
        if self.n <= self.few.len() {
            return self.few[..self.n].contains(&a);
        }
        let h = self.filter_hash(a);
        self.filter[h / 64] & (1 << (h % 64)) != 0 && self.many.binary_search(&a).is_ok()
    }
}

/// The neighbour (ARP) table: looked up by key only (on every packet sent), never
/// iterated. It remembers the last resolved entry looked up, outside the hash table: a
/// node sends most packets to one or two next hops. Every change goes through the
/// methods below, which forget it.
#[derive(Default)]
struct Neighbors {
    map: HashMap<NeighborKey, Neighbor, BuildHasherDefault<PrefixHasher>>,
    /// (key, MAC, confirmed) of a `Reachable` entry, as it is in `map`.
    last: Cell<Option<(NeighborKey, MacAddr, SimTime)>>,
}

impl Neighbors {
    /// The MAC and confirmation time of `key`'s entry, if resolved.
    #[inline]
    fn reachable(&self, key: NeighborKey) -> Option<(MacAddr, SimTime)> {
        if let Some((k, mac, confirmed)) = self.last.get() {
            if k == key {
                return Some((mac, confirmed));
            }
        }
        match self.map.get(&key).map(|n| &n.state) {
            Some(&NeighState::Reachable { mac, confirmed }) => {
                self.last.set(Some((key, mac, confirmed)));
                Some((mac, confirmed))
            }
            _ => None,
        }
    }
    fn get(&self, key: &NeighborKey) -> Option<&Neighbor> {
        self.map.get(key)
    }
    fn contains_key(&self, key: &NeighborKey) -> bool {
        self.map.contains_key(key)
    }
    fn get_mut(&mut self, key: &NeighborKey) -> Option<&mut Neighbor> {
        self.last.set(None);
        self.map.get_mut(key)
    }
    fn insert(&mut self, key: NeighborKey, n: Neighbor) {
        self.last.set(None);
        self.map.insert(key, n);
    }
    fn remove(&mut self, key: &NeighborKey) -> Option<Neighbor> {
        self.last.set(None);
        self.map.remove(key)
    }
    fn clear(&mut self) {
        self.last.set(None);
        self.map.clear();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ReassemblyKey {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ident: u16,
}

struct Reassembly {
    key: ReassemblyKey,
    whole: Option<Arc<IpBody>>,
    /// Received byte ranges, merged and sorted.
    have: Vec<(u32, u32)>,
    total: Option<u32>,
    first: Option<Ipv4Packet>,
    timer: TimerHandle,
}

/// The network layer of one host or router.
pub struct IpNode {
    pub node: NodeId,
    pub forwarding: bool,
    pub config: IpConfig,
    /// Read through [`Self::ifaces`]; changed only here, so that the address index below
    /// stays in step.
    pub(crate) ifaces: Vec<Iface>,
    /// The interfaces' addresses and their subnets' broadcast addresses: every packet asks
    /// whether it is for this node, and a router may have many interfaces.
    local_addrs: AddrSet,
    broadcast_addrs: AddrSet,
    pub routes: RouteTable,
    pub ecmp: EcmpMode,
    ecmp_seed: u64,
    spray_rng: SimRng,
    neighbors: Neighbors,
    reassembly: BTreeMap<u32, Reassembly>,
    reassembly_index: BTreeMap<ReassemblyKey, u32>,
    next_reassembly_serial: u32,
    next_ident: u16,
    pub(crate) upcalls: VecDeque<Upcall>,
    /// Each interface's address and prefix as built, restored when the node crashes.
    boot_addrs: Vec<(Ipv4Addr, Prefix)>,
    /// Interfaces that deliver every arriving datagram to the stack.
    receive_any: Vec<u16>,
    /// (interface, address) pairs whose ARP claims by other nodes are reported.
    arp_watch: Vec<(u16, Ipv4Addr)>,
}

impl IpNode {
    pub fn new(
        node: NodeId,
        forwarding: bool,
        ifaces: Vec<Iface>,
        config: IpConfig,
        ecmp: EcmpMode,
        ecmp_seed: u64,
        spray_rng: SimRng,
    ) -> Self {
        let boot_addrs = ifaces.iter().map(|i| (i.addr, i.prefix)).collect();
        let mut n = IpNode {
            node,
            forwarding,
            config,
            ifaces,
            local_addrs: AddrSet::default(),
            broadcast_addrs: AddrSet::default(),
            routes: RouteTable::default(),
            ecmp,
            ecmp_seed,
            spray_rng,
            neighbors: Neighbors::default(),
            reassembly: BTreeMap::new(),
            reassembly_index: BTreeMap::new(),
            next_reassembly_serial: 0,
            next_ident: 1,
            upcalls: VecDeque::new(),
            boot_addrs,
            receive_any: Vec::new(),
            arp_watch: Vec::new(),
        };
        n.install_connected_routes();
        n.index_addresses();
        n
    }

    /// The node's interfaces (interface i is port i).
    pub fn ifaces(&self) -> &[Iface] {
        &self.ifaces
    }

    /// Rebuilds the address index after the interfaces changed.
    fn index_addresses(&mut self) {
        self.local_addrs = AddrSet::new(
            self.ifaces
                .iter()
                .filter(|i| i.is_configured())
                .map(|i| u32::from(i.addr))
                .collect(),
        );
        self.broadcast_addrs = AddrSet::new(
            self.ifaces
                .iter()
                .filter(|i| i.prefix.len < 31)
                .map(|i| u32::from(i.prefix.broadcast()))
                .collect(),
        );
    }

    fn install_connected_routes(&mut self) {
        for i in 0..self.ifaces.len() {
            self.install_connected_route(i as u16);
        }
    }

    fn install_connected_route(&mut self, iface: u16) {
        let Some(ifc) = self.ifaces.get(iface as usize) else {
            return;
        };
        if ifc.is_configured() {
            self.routes.insert(connected_route(ifc.prefix, iface));
        }
    }

    /// Forgets all dynamic state (the node crashed). Routes and addresses as built stay:
    /// they are configuration; what the stack configured at run time goes.
    pub fn reset(&mut self) {
        self.neighbors.clear();
        self.reassembly.clear();
        self.reassembly_index.clear();
        self.upcalls.clear();
        self.receive_any.clear();
        self.arp_watch.clear();
        for i in 0..self.ifaces.len() {
            let boot = self.boot_addrs[i];
            let ifc = &self.ifaces[i];
            if (ifc.addr, ifc.prefix) != boot {
                self.deconfigure_iface(i as u16);
                self.ifaces[i].addr = boot.0;
                self.ifaces[i].prefix = boot.1;
                self.install_connected_route(i as u16);
            }
        }
        self.index_addresses();
        if self
            .routes
            .routes()
            .iter()
            .any(|r| r.origin == RouteOrigin::Dynamic)
        {
            self.routes.remove_origin(RouteOrigin::Dynamic);
        }
    }

    pub fn is_local(&self, addr: Ipv4Addr) -> bool {
        !addr.is_unspecified() && self.local_addrs.contains(addr)
    }

    // ---------------------------------------------------------------- run-time configuration

    /// Gives `iface` the address `addr/prefix_len` (replacing any it had) and its
    /// connected route, as `ip addr replace` does.
    pub fn configure_iface(
        &mut self,
        iface: u16,
        addr: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), SendError> {
        if self.ifaces.get(iface as usize).is_none() {
            return Err(SendError::NoSuchInterface(iface));
        }
        self.deconfigure_iface(iface);
        let ifc = &mut self.ifaces[iface as usize];
        ifc.addr = addr;
        ifc.prefix = Prefix::new(addr, prefix_len);
        self.install_connected_route(iface);
        self.index_addresses();
        Ok(())
    }

    /// Removes `iface`'s address and connected route (`ip addr flush`). Routes through
    /// gateways on it stay until removed, as in Linux.
    pub fn deconfigure_iface(&mut self, iface: u16) {
        let Some(ifc) = self.ifaces.get_mut(iface as usize) else {
            return;
        };
        if !ifc.is_configured() {
            return;
        }
        let prefix = ifc.prefix;
        ifc.addr = Ipv4Addr::UNSPECIFIED;
        ifc.prefix = Prefix::new(Ipv4Addr::UNSPECIFIED, 32);
        self.index_addresses();
        let ours = self.routes.routes().iter().any(|r| {
            r.prefix == prefix
                && r.origin == RouteOrigin::Connected
                && r.next_hops.iter().any(|h| h.iface == iface)
        });
        if ours {
            self.routes.remove(prefix, RouteOrigin::Connected);
        }
    }

    /// Adds (or replaces) a run-time route to `prefix` out of `iface`, via `gateway` if
    /// given.
    pub fn set_route(&mut self, prefix: Prefix, iface: u16, gateway: Option<Ipv4Addr>) {
        self.routes.insert(Route {
            prefix,
            next_hops: std::sync::Arc::new([crate::route::NextHop { iface, gateway }]),
            origin: RouteOrigin::Dynamic,
        });
    }

    /// Removes the run-time route to `prefix`; false if there was none.
    pub fn remove_route(&mut self, prefix: Prefix) -> bool {
        self.routes.remove(prefix, RouteOrigin::Dynamic).is_some()
    }

    /// Delivers every datagram arriving on `iface` to the stack, whatever its destination
    /// address (as a packet socket sees them), or stops doing so. A forwarding node still
    /// forwards what is not for it and delivers a copy.
    pub fn set_receive_any(&mut self, iface: u16, on: bool) {
        self.receive_any.retain(|&i| i != iface);
        if on {
            self.receive_any.push(iface);
        }
    }

    /// Reports ARP claims of `addr` on `iface` by other nodes as
    /// [`Upcall::AddressConflict`] (or stops doing so).
    pub fn watch_address(&mut self, iface: u16, addr: Ipv4Addr, on: bool) {
        self.arp_watch.retain(|&w| w != (iface, addr));
        if on {
            self.arp_watch.push((iface, addr));
        }
    }

    /// Sends an ARP probe for `addr` (RFC 5227: a request with sender address 0.0.0.0),
    /// asking whether any node uses it.
    pub fn arp_probe(&mut self, net: &mut Net, iface: u16, addr: Ipv4Addr) {
        self.send_arp_claim(net, iface, Ipv4Addr::UNSPECIFIED, addr, "arp_probe");
    }

    /// Sends a gratuitous ARP request announcing that `iface` now holds `addr` (RFC 5227
    /// announcement: sender and target address both `addr`), so neighbours update their
    /// caches.
    pub fn arp_announce(&mut self, net: &mut Net, iface: u16, addr: Ipv4Addr) {
        self.send_arp_claim(net, iface, addr, addr, "arp_announce");
    }

    fn send_arp_claim(
        &mut self,
        net: &mut Net,
        iface: u16,
        sender_ip: Ipv4Addr,
        target_ip: Ipv4Addr,
        event: &'static str,
    ) {
        let Some(ifc) = self.ifaces.get(iface as usize) else {
            return;
        };
        let mac = ifc.mac;
        node_trace!(net, Category::Arp, self.node, event, "iface" => iface, "target" => target_ip);
        net.transmit(
            self.node,
            iface,
            Frame {
                src: mac,
                dst: MacAddr::BROADCAST,
                body: FrameBody::Arp(ArpPacket {
                    op: ArpOp::Request,
                    sender_mac: mac,
                    sender_ip,
                    target_mac: MacAddr::ZERO,
                    target_ip,
                }),
            },
        );
    }

    fn is_local_broadcast(&self, addr: Ipv4Addr) -> bool {
        addr == Ipv4Addr::BROADCAST || self.broadcast_addrs.contains(addr)
    }

    /// The source address and interface MTU a locally originated datagram to `dst` would
    /// use (the route lookup Linux does at connect time); `None` without a route.
    pub fn source_for(&self, dst: Ipv4Addr) -> Option<(Ipv4Addr, u32)> {
        let route = self.routes.lookup(dst)?;
        let hop = route.next_hops.first()?;
        let ifc = self.ifaces.get(hop.iface as usize)?;
        Some((ifc.addr, ifc.mtu))
    }

    /// The node's first address, if any.
    pub fn primary_addr(&self) -> Option<Ipv4Addr> {
        self.ifaces
            .iter()
            .find(|i| i.is_configured())
            .map(|i| i.addr)
    }

    fn alloc_ident(&mut self) -> u16 {
        let id = self.next_ident;
        self.next_ident = self.next_ident.wrapping_add(1);
        id
    }

    /// Is a resolved, fresh ARP entry present? (for tests and reports)
    pub fn arp_entry(&self, now: SimTime, iface: u16, ip: Ipv4Addr) -> Option<MacAddr> {
        match self.neighbors.reachable((iface, ip)) {
            Some((mac, confirmed))
                if now.saturating_since(confirmed) < self.config.arp_cache_timeout =>
            {
                Some(mac)
            }
            _ => None,
        }
    }

    // ---------------------------------------------------------------- sending

    /// Sends a datagram from this node.
    pub fn send(&mut self, net: &mut Net, req: SendRequest) -> Result<(), SendError> {
        if !net.node_is_up(self.node) {
            return Err(SendError::NodeDown);
        }
        let ident = self.alloc_ident();
        match self.direct_hop(net, &req) {
            Some((iface, src, mac)) => {
                let frame = Frame {
                    src: self.ifaces[iface as usize].mac,
                    dst: mac,
                    body: FrameBody::Ipv4(req.into_packet(src, ident, self.config.default_ttl)),
                };
                net.transmit(self.node, iface, frame);
                Ok(())
            }
            None => self.send_routed(net, req, ident),
        }
    }

    /// The common case of a send, decided without side effects: routed (no interface
    /// given, not to this node), a route with one next hop, a datagram that fits the
    /// interface, a next hop whose MAC is known. Returns the interface, the source address
    /// and the next hop's MAC; the datagram is then built once, as a frame, where the
    /// general path would move it through five calls. `None`: the general path decides
    /// (the same way, for these cases).
    fn direct_hop(&self, net: &Net, req: &SendRequest) -> Option<(u16, Ipv4Addr, MacAddr)> {
        if req.iface.is_some() || self.is_local(req.dst) {
            return None;
        }
        let [hop] = self.routes.lookup(req.dst)?.next_hops[..] else {
            return None;
        };
        let ifc = self.ifaces.get(hop.iface as usize)?;
        let next = hop.gateway.unwrap_or(req.dst);
        let broadcast =
            next == Ipv4Addr::BROADCAST || (ifc.prefix.len < 31 && next == ifc.prefix.broadcast());
        if IPV4_HEADER_LEN + req.body.len() > ifc.mtu as usize || broadcast {
            return None;
        }
        let mac = self.arp_entry(net.now(), hop.iface, next)?;
        let src = match req.src {
            Some(a) if !a.is_unspecified() => a,
            _ => ifc.addr,
        };
        Some((hop.iface, src, mac))
    }

    /// Sends a datagram (with IP ID `ident`) by the general path.
    fn send_routed(
        &mut self,
        net: &mut Net,
        req: SendRequest,
        ident: u16,
    ) -> Result<(), SendError> {
        let (iface, link_dst) = (req.iface, req.link_dst);
        let src = req.src.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let mut pkt = req.into_packet(src, ident, self.config.default_ttl);
        if let Some(iface) = iface {
            let ifc = self
                .ifaces
                .get(iface as usize)
                .ok_or(SendError::NoSuchInterface(iface))?;
            if pkt.src.is_unspecified() && !ifc.addr.is_unspecified() {
                pkt.src = ifc.addr;
            }
            let dst = pkt.dst;
            return self.output(net, iface, dst, link_dst, pkt, true);
        }
        if self.is_local(pkt.dst) {
            if pkt.src.is_unspecified() {
                pkt.src = pkt.dst;
            }
            net.loopback(self.node, pkt);
            return Ok(());
        }
        self.route_and_output(net, pkt, true)
    }

    fn route_and_output(
        &mut self,
        net: &mut Net,
        mut pkt: Ipv4Packet,
        local: bool,
    ) -> Result<(), SendError> {
        let Some(route) = self.routes.lookup(pkt.dst) else {
            net.counters(self.node).no_route += 1;
            node_trace!(net, Category::Ip, self.node, "no_route",
                "dst" => pkt.dst);
            if !local {
                self.icmp_error(net, &pkt, IcmpError::Unreachable(UnreachableCode::Net, 0));
            }
            return Err(SendError::NetUnreachable(pkt.dst));
        };
        let hop = match route.next_hops[..] {
            [only] => only,
            _ => {
                let draw = if self.ecmp == EcmpMode::PerPacket {
                    self.spray_rng.next_u64()
                } else {
                    0
                };
                choose_next_hop(route, self.ecmp, &flow_key(&pkt), self.ecmp_seed, draw)
            }
        };
        let iface = hop.iface;
        let next = hop.gateway.unwrap_or(pkt.dst);
        if pkt.src.is_unspecified() {
            if let Some(ifc) = self.ifaces.get(iface as usize) {
                pkt.src = ifc.addr;
            }
        }
        self.output(net, iface, next, None, pkt, local)
    }

    /// Fragments if needed, then resolves the next hop (unless `link_dst` names its
    /// link-layer address) and transmits.
    fn output(
        &mut self,
        net: &mut Net,
        iface: u16,
        next: Ipv4Addr,
        link_dst: Option<MacAddr>,
        pkt: Ipv4Packet,
        local: bool,
    ) -> Result<(), SendError> {
        let Some(ifc) = self.ifaces.get(iface as usize) else {
            return Err(SendError::NoSuchInterface(iface));
        };
        let mtu = ifc.mtu;
        if pkt.total_len() as u32 <= mtu {
            self.transmit_to(net, iface, next, link_dst, pkt);
            return Ok(());
        }
        if pkt.dont_fragment {
            net.counters(self.node).frag_needed += 1;
            node_trace!(net, Category::Ip, self.node, "frag_needed",
                "dst" => pkt.dst, "len" => pkt.total_len(), "mtu" => mtu);
            if local {
                return Err(SendError::MessageTooLong { mtu });
            }
            self.icmp_error(
                net,
                &pkt,
                IcmpError::Unreachable(UnreachableCode::FragmentationNeeded, mtu as u16),
            );
            return Ok(());
        }
        let frags = fragment(&pkt, mtu);
        net.counters(self.node).fragments_created += frags.len() as u64;
        node_trace!(net, Category::Ip, self.node, "fragmented",
            "dst" => pkt.dst, "ident" => pkt.ident, "len" => pkt.total_len(), "mtu" => mtu, "fragments" => frags.len());
        for f in frags {
            self.transmit_to(net, iface, next, link_dst, f);
        }
        Ok(())
    }

    fn transmit_to(
        &mut self,
        net: &mut Net,
        iface: u16,
        next: Ipv4Addr,
        link_dst: Option<MacAddr>,
        pkt: Ipv4Packet,
    ) {
        match link_dst {
            Some(dst) => {
                let src = self.ifaces[iface as usize].mac;
                net.transmit(
                    self.node,
                    iface,
                    Frame {
                        src,
                        dst,
                        body: FrameBody::Ipv4(pkt),
                    },
                );
            }
            None => self.resolve_and_transmit(net, iface, next, pkt),
        }
    }

    fn resolve_and_transmit(&mut self, net: &mut Net, iface: u16, next: Ipv4Addr, pkt: Ipv4Packet) {
        let ifc = &self.ifaces[iface as usize];
        let src_mac = ifc.mac;
        let is_bcast =
            next == Ipv4Addr::BROADCAST || (ifc.prefix.len < 31 && next == ifc.prefix.broadcast());
        if is_bcast {
            net.transmit(
                self.node,
                iface,
                Frame {
                    src: src_mac,
                    dst: MacAddr::BROADCAST,
                    body: FrameBody::Ipv4(pkt),
                },
            );
            return;
        }
        let mac = match self.arp_entry(net.now(), iface, next) {
            Some(mac) => Some(mac),
            None => self.stale_mac(net, iface, next),
        };
        if let Some(mac) = mac {
            net.transmit(
                self.node,
                iface,
                Frame {
                    src: src_mac,
                    dst: mac,
                    body: FrameBody::Ipv4(pkt),
                },
            );
            return;
        }
        let limit = self.config.arp_queue_len;
        let start_resolution = match self.neighbors.get_mut(&(iface, next)) {
            Some(
                n @ Neighbor {
                    state: NeighState::Incomplete { .. },
                    ..
                },
            ) => {
                if n.pending.len() < limit {
                    n.pending.push_back(pkt);
                }
                false
            }
            // A resolved entry was served above.
            _ => {
                let mut pending = VecDeque::new();
                pending.push_back(pkt);
                self.neighbors.insert(
                    (iface, next),
                    Neighbor {
                        state: NeighState::Incomplete {
                            sent: 0,
                            timer: None,
                        },
                        pending,
                    },
                );
                true
            }
        };
        if start_resolution {
            self.send_arp_request(net, iface, next);
        }
    }

    /// The MAC of a stale entry for `next` (resolved, past `arp_cache_timeout`): packets
    /// still go there. Its first use starts the delay before unicast probes (Linux's STALE
    /// to DELAY).
    fn stale_mac(&mut self, net: &mut Net, iface: u16, next: Ipv4Addr) -> Option<MacAddr> {
        let n = self.neighbors.get_mut(&(iface, next))?;
        match n.state {
            NeighState::Incomplete { .. } => None,
            NeighState::Reconfirming { mac, .. } => Some(mac),
            NeighState::Reachable { mac, .. } => {
                let delay = self.config.arp_delay_first_probe;
                let timer = net.set_timer(self.node, delay, arp_timer_token(iface, next));
                n.state = NeighState::Reconfirming {
                    mac,
                    sent: 0,
                    timer: Some(timer),
                };
                Some(mac)
            }
        }
    }

    /// An ARP request from `iface` for `target`, sent to `dst` (broadcast, or the cached
    /// MAC of a stale entry).
    fn arp_request_frame(&self, iface: u16, target: Ipv4Addr, dst: MacAddr) -> Frame {
        let ifc = &self.ifaces[iface as usize];
        Frame {
            src: ifc.mac,
            dst,
            body: FrameBody::Arp(ArpPacket {
                op: ArpOp::Request,
                sender_mac: ifc.mac,
                sender_ip: ifc.addr,
                target_mac: MacAddr::ZERO,
                target_ip: target,
            }),
        }
    }

    fn send_arp_request(&mut self, net: &mut Net, iface: u16, target: Ipv4Addr) {
        let frame = self.arp_request_frame(iface, target, MacAddr::BROADCAST);
        node_trace!(net, Category::Arp, self.node, "arp_request",
            "iface" => iface, "target" => target);
        net.transmit(self.node, iface, frame);
        let token = arp_timer_token(iface, target);
        let timer = net.set_timer(self.node, self.config.arp_retry_interval, token);
        if let Some(n) = self.neighbors.get_mut(&(iface, target)) {
            if let NeighState::Incomplete { sent, timer: t } = &mut n.state {
                *sent += 1;
                *t = Some(timer);
            }
        }
    }

    fn arp_timer(&mut self, net: &mut Net, iface: u16, target: Ipv4Addr) {
        let sent = match self.neighbors.get(&(iface, target)).map(|n| &n.state) {
            Some(NeighState::Incomplete { sent, .. }) => *sent,
            Some(&NeighState::Reconfirming { mac, sent, .. }) => {
                self.reconfirm_timer(net, iface, target, mac, sent);
                return;
            }
            _ => return,
        };
        if sent < self.config.arp_retries {
            self.send_arp_request(net, iface, target);
            return;
        }
        let Some(n) = self.neighbors.remove(&(iface, target)) else {
            return;
        };
        net.counters(self.node).arp_failures += 1;
        node_trace!(net, Category::Arp, self.node, "arp_failed",
            "iface" => iface, "target" => target, "dropped" => n.pending.len());
        for pkt in n.pending {
            self.icmp_error(net, &pkt, IcmpError::Unreachable(UnreachableCode::Host, 0));
        }
    }

    /// The DELAY or a PROBE interval of a stale entry in use ended without a
    /// confirmation: send the next unicast request to `mac`, or drop the entry (FAILED)
    /// once `arp_ucast_probes` are out; the next packet then resolves it by broadcast.
    fn reconfirm_timer(
        &mut self,
        net: &mut Net,
        iface: u16,
        target: Ipv4Addr,
        mac: MacAddr,
        sent: u8,
    ) {
        if sent >= self.config.arp_ucast_probes {
            self.neighbors.remove(&(iface, target));
            net.counters(self.node).arp_failures += 1;
            node_trace!(net, Category::Arp, self.node, "arp_failed",
                "iface" => iface, "target" => target, "dropped" => 0u64);
            return;
        }
        let frame = self.arp_request_frame(iface, target, mac);
        node_trace!(net, Category::Arp, self.node, "arp_reconfirm",
            "iface" => iface, "target" => target, "mac" => mac);
        net.transmit(self.node, iface, frame);
        let interval = self.config.arp_retry_interval;
        let timer = net.set_timer(self.node, interval, arp_timer_token(iface, target));
        if let Some(Neighbor {
            state: NeighState::Reconfirming { sent, timer: t, .. },
            ..
        }) = self.neighbors.get_mut(&(iface, target))
        {
            *sent += 1;
            *t = Some(timer);
        }
    }

    // ---------------------------------------------------------------- receiving

    /// Handles a frame that arrived on `port`. Anything for the stack is queued in
    /// `upcalls`.
    pub fn receive_frame(&mut self, net: &mut Net, port: u16, frame: Frame) {
        let Some(ifc) = self.ifaces.get(port as usize) else {
            return;
        };
        if frame.dst != ifc.mac && !frame.dst.is_group() {
            return; // flooded by a switch to everyone; not for us
        }
        match frame.body {
            FrameBody::Arp(arp) => self.receive_arp(net, port, arp),
            FrameBody::Ipv4(pkt) => self.receive_ipv4(net, port, pkt),
        }
    }

    fn receive_arp(&mut self, net: &mut Net, port: u16, arp: ArpPacket) {
        let now = net.now();
        let ifc = self.ifaces[port as usize].clone();
        if !self.arp_watch.is_empty() {
            self.check_address_conflict(net, port, ifc.mac, &arp);
        }
        let for_us = ifc.is_configured() && arp.target_ip == ifc.addr;
        if arp.sender_ip.is_unspecified() {
            // A probe (RFC 5227): as Linux's arp_process, answer it if it asks for our
            // address, to the prober's MAC and with target address 0.0.0.0, and learn
            // nothing from it.
            if for_us && arp.op == ArpOp::Request {
                self.send_arp_reply(net, port, &arp, Ipv4Addr::UNSPECIFIED);
            }
            return;
        }
        // Update an existing entry for the sender, or create one if the request is for us.
        let key = (port, arp.sender_ip);
        if self.neighbors.contains_key(&key) || (for_us && arp.op == ArpOp::Request) {
            let pending = match self.neighbors.remove(&key) {
                Some(Neighbor {
                    state:
                        NeighState::Incomplete { timer, .. } | NeighState::Reconfirming { timer, .. },
                    pending,
                }) => {
                    if let Some(t) = timer {
                        net.cancel_timer(t);
                    }
                    node_trace!(net, Category::Arp, self.node, "arp_resolved",
                        "iface" => port, "ip" => arp.sender_ip, "mac" => arp.sender_mac);
                    pending
                }
                Some(n) => n.pending,
                None => VecDeque::new(),
            };
            self.neighbors.insert(
                key,
                Neighbor {
                    state: NeighState::Reachable {
                        mac: arp.sender_mac,
                        confirmed: now,
                    },
                    pending: VecDeque::new(),
                },
            );
            for pkt in pending {
                net.transmit(
                    self.node,
                    port,
                    Frame {
                        src: ifc.mac,
                        dst: arp.sender_mac,
                        body: FrameBody::Ipv4(pkt),
                    },
                );
            }
        }
        if for_us && arp.op == ArpOp::Request {
            self.send_arp_reply(net, port, &arp, arp.sender_ip);
        }
    }

    /// Answers the ARP request `arp` received on `port`, addressed to its sender's MAC;
    /// `target_ip` is the requester's address, or 0.0.0.0 for a probe (RFC 5227).
    fn send_arp_reply(&self, net: &mut Net, port: u16, arp: &ArpPacket, target_ip: Ipv4Addr) {
        let ifc = &self.ifaces[port as usize];
        node_trace!(net, Category::Arp, self.node, "arp_reply",
            "iface" => port, "to" => arp.sender_ip);
        net.transmit(
            self.node,
            port,
            Frame {
                src: ifc.mac,
                dst: arp.sender_mac,
                body: FrameBody::Arp(ArpPacket {
                    op: ArpOp::Reply,
                    sender_mac: ifc.mac,
                    sender_ip: ifc.addr,
                    target_mac: arp.sender_mac,
                    target_ip,
                }),
            },
        );
    }

    /// Reports `arp` if another node claims an address watched on `port`.
    fn check_address_conflict(&mut self, net: &mut Net, port: u16, own: MacAddr, arp: &ArpPacket) {
        if arp.sender_mac == own {
            return;
        }
        let claimed = if arp.sender_ip.is_unspecified() {
            // Another node probing for the same address (RFC 5227 section 2.1.1).
            (arp.op == ArpOp::Request).then_some(arp.target_ip)
        } else {
            Some(arp.sender_ip)
        };
        let Some(addr) = claimed.filter(|a| self.arp_watch.contains(&(port, *a))) else {
            return;
        };
        node_trace!(net, Category::Arp, self.node, "address_conflict",
            "iface" => port, "addr" => addr, "mac" => arp.sender_mac);
        self.upcalls.push_back(Upcall::AddressConflict {
            iface: port,
            addr,
            mac: arp.sender_mac,
        });
    }

    /// Forwards the frame stored as `pkt`, which arrived on `port`, where it lies in the
    /// world's packet store, when only the common case applies: an IPv4 packet for another
    /// node with TTL to spare, a route (not sprayed), a next hop whose MAC is known and an
    /// MTU it fits. Returns false having changed nothing otherwise; the caller then takes
    /// the frame out for [`Self::receive_frame`], which decides the same way on a moved
    /// frame and handles every other case. (Rewriting a frame where it is saves moving
    /// its ~150 bytes some ten times per hop.)
    pub(crate) fn forward_in_place(&mut self, net: &mut Net, port: u16, pkt: PacketId) -> bool {
        if !self.forwarding {
            return false;
        }
        let Some(ifc) = self.ifaces.get(port as usize) else {
            return false;
        };
        let Some(Frame {
            dst,
            body: FrameBody::Ipv4(p),
            ..
        }) = net.packets.frame(pkt)
        else {
            return false;
        };
        if *dst != ifc.mac
            || p.ttl <= 1
            || p.src.is_unspecified()
            || self.is_local(p.dst)
            || self.is_local_broadcast(p.dst)
            || self.receive_any.contains(&port)
        {
            return false;
        }
        let Some(route) = self.routes.lookup(p.dst) else {
            return false;
        };
        if self.ecmp == EcmpMode::PerPacket && route.next_hops.len() > 1 {
            return false; // the spraying draw is the slow path's to take
        }
        let hop = match route.next_hops[..] {
            [only] => only,
            _ => choose_next_hop(route, self.ecmp, &flow_key(p), self.ecmp_seed, 0),
        };
        let Some(out) = self.ifaces.get(hop.iface as usize) else {
            return false;
        };
        let next = hop.gateway.unwrap_or(p.dst);
        let broadcast =
            next == Ipv4Addr::BROADCAST || (out.prefix.len < 31 && next == out.prefix.broadcast());
        if p.total_len() as u32 > out.mtu || broadcast {
            return false;
        }
        let Some(next_mac) = self.arp_entry(net.now(), hop.iface, next) else {
            return false;
        };
        let src_mac = out.mac;
        if let Some(Frame {
            src,
            dst,
            body: FrameBody::Ipv4(p),
        }) = net.packets.frame_mut(pkt)
        {
            p.ttl -= 1;
            *src = src_mac;
            *dst = next_mac;
        }
        net.counters(self.node).forwarded += 1;
        net.transmit_stored(self.node, hop.iface, pkt);
        true
    }

    pub(crate) fn receive_ipv4(&mut self, net: &mut Net, port: u16, pkt: Ipv4Packet) {
        if self.is_local(pkt.dst) || self.is_local_broadcast(pkt.dst) {
            self.local_input(net, port, pkt);
            return;
        }
        if !self.receive_any.is_empty() && self.receive_any.contains(&port) {
            if !self.forwarding {
                self.local_input(net, port, pkt);
                return;
            }
            self.local_input(net, port, pkt.clone());
        }
        if !self.forwarding {
            return;
        }
        if pkt.ttl <= 1 {
            net.counters(self.node).ttl_expired += 1;
            node_trace!(net, Category::Ip, self.node, "ttl_expired",
                "src" => pkt.src, "dst" => pkt.dst);
            self.icmp_error(
                net,
                &pkt,
                IcmpError::TimeExceeded(TimeExceededCode::TtlInTransit),
            );
            return;
        }
        let mut pkt = pkt;
        pkt.ttl -= 1;
        net.counters(self.node).forwarded += 1;
        let _ = self.route_and_output(net, pkt, false);
    }

    fn local_input(&mut self, net: &mut Net, port: u16, pkt: Ipv4Packet) {
        let pkt = if pkt.is_fragment() {
            match self.reassemble(net, pkt) {
                Some(p) => p,
                None => return,
            }
        } else {
            pkt
        };
        if pkt.corrupted {
            net.counters(self.node).checksum_errors += 1;
            node_trace!(net, Category::Ip, self.node, "checksum_error",
                "src" => pkt.src, "protocol" => pkt.protocol);
            return;
        }
        net.counters(self.node).delivered += 1;
        match pkt.body {
            IpBody::Icmp(msg) => {
                net.counters(self.node).icmp_received += 1;
                if let IcmpMessage::EchoRequest {
                    ident,
                    seq,
                    payload,
                } = msg
                {
                    if self.config.echo_reply && !self.is_local_broadcast(pkt.dst) {
                        let mut req = SendRequest::new(
                            pkt.src,
                            ip_proto::ICMP,
                            IpBody::Icmp(IcmpMessage::EchoReply {
                                ident,
                                seq,
                                payload,
                            }),
                        );
                        req.src = Some(pkt.dst);
                        let _ = self.send(net, req);
                    }
                    return;
                }
                node_trace!(net, Category::Icmp, self.node, "icmp_received",
                    "src" => pkt.src, "kind" => icmp_kind(&msg));
                self.upcalls.push_back(Upcall::Icmp(IcmpIn {
                    src: pkt.src,
                    dst: pkt.dst,
                    ttl: pkt.ttl,
                    message: msg,
                }));
            }
            IpBody::Transport(packet) => {
                self.upcalls.push_back(Upcall::Datagram(Datagram {
                    src: pkt.src,
                    dst: pkt.dst,
                    protocol: pkt.protocol,
                    ttl: pkt.ttl,
                    tos: pkt.tos,
                    iface: port,
                    packet,
                }));
            }
            IpBody::Fragment(_) => {
                // A reassembled datagram whose original body was itself opaque bytes.
                net.counters(self.node).malformed += 1;
            }
        }
    }

    fn reassemble(&mut self, net: &mut Net, pkt: Ipv4Packet) -> Option<Ipv4Packet> {
        let key = ReassemblyKey {
            src: pkt.src,
            dst: pkt.dst,
            protocol: pkt.protocol,
            ident: pkt.ident,
        };
        let IpBody::Fragment(frag) = &pkt.body else {
            net.counters(self.node).malformed += 1;
            return None;
        };
        let serial = match self.reassembly_index.get(&key) {
            Some(&s) => s,
            None => {
                let s = self.next_reassembly_serial;
                self.next_reassembly_serial = s.wrapping_add(1);
                let timer = net.set_timer(
                    self.node,
                    self.config.reassembly_timeout,
                    IP_TIMER_BIT | TIMER_REASSEMBLY | s as u64,
                );
                self.reassembly_index.insert(key, s);
                self.reassembly.insert(
                    s,
                    Reassembly {
                        key,
                        whole: None,
                        have: Vec::new(),
                        total: None,
                        first: None,
                        timer,
                    },
                );
                s
            }
        };
        let entry = self.reassembly.get_mut(&serial)?;
        let start = pkt.fragment_offset as u32;
        let end = start + frag.len;
        entry.whole.get_or_insert_with(|| frag.whole.clone());
        if !pkt.more_fragments {
            entry.total = Some(end);
        }
        if start == 0 {
            entry.first = Some(pkt.clone());
        }
        insert_range(&mut entry.have, start, end);
        let complete = entry.total.is_some_and(|t| entry.have == [(0, t)]);
        if !complete {
            return None;
        }
        let entry = self.reassembly.remove(&serial)?;
        self.reassembly_index.remove(&key);
        net.cancel_timer(entry.timer);
        net.counters(self.node).reassembled += 1;
        node_trace!(net, Category::Ip, self.node, "reassembled",
            "src" => pkt.src, "ident" => pkt.ident, "len" => entry.total.unwrap_or(0));
        let whole = entry.whole?;
        Some(Ipv4Packet {
            more_fragments: false,
            fragment_offset: 0,
            corrupted: pkt.corrupted || entry.first.as_ref().is_some_and(|f| f.corrupted),
            body: (*whole).clone(),
            ..pkt
        })
    }

    fn reassembly_timeout(&mut self, net: &mut Net, serial: u32) {
        let Some(entry) = self.reassembly.remove(&serial) else {
            return;
        };
        self.reassembly_index.remove(&entry.key);
        net.counters(self.node).reassembly_timeouts += 1;
        node_trace!(net, Category::Ip, self.node, "reassembly_timeout",
            "src" => entry.key.src, "ident" => entry.key.ident);
        // RFC 792: time exceeded (reassembly) only if the first fragment arrived.
        if let Some(first) = entry.first {
            self.icmp_error(
                net,
                &first,
                IcmpError::TimeExceeded(TimeExceededCode::FragmentReassembly),
            );
        }
    }

    /// Handles an IP-layer timer (token has [`IP_TIMER_BIT`]).
    pub(crate) fn timer(&mut self, net: &mut Net, token: u64) {
        match token & TIMER_KIND_MASK {
            TIMER_ARP => {
                let iface = ((token >> 32) & 0xffff) as u16;
                let ip = Ipv4Addr::from(token as u32);
                self.arp_timer(net, iface, ip);
            }
            TIMER_REASSEMBLY => self.reassembly_timeout(net, token as u32),
            _ => {}
        }
    }

    // ---------------------------------------------------------------- ICMP errors

    /// Sends an ICMP error about `about` to its source, following RFC 1122's rules: never
    /// about an ICMP error, a broadcast, or a non-initial fragment. If the source is this
    /// node, the error is delivered locally (as Linux reports errors to local senders).
    pub fn icmp_error(&mut self, net: &mut Net, about: &Ipv4Packet, err: IcmpError) {
        if about.fragment_offset != 0
            || self.is_local_broadcast(about.dst)
            || about.src.is_unspecified()
        {
            return;
        }
        if let IpBody::Icmp(m) = &about.body {
            if m.is_error() {
                return;
            }
        }
        let quote = wire::quote_of(about);
        let message = match err {
            IcmpError::Unreachable(code, mtu) => IcmpMessage::DestUnreachable {
                code,
                next_hop_mtu: mtu,
                quote,
            },
            IcmpError::TimeExceeded(code) => IcmpMessage::TimeExceeded { code, quote },
        };
        net.counters(self.node).icmp_sent += 1;
        node_trace!(net, Category::Icmp, self.node, "icmp_sent",
            "dst" => about.src, "kind" => icmp_kind(&message));
        if self.is_local(about.src) {
            self.upcalls.push_back(Upcall::Icmp(IcmpIn {
                src: about.src,
                dst: about.src,
                ttl: self.config.default_ttl,
                message,
            }));
            return;
        }
        let req = SendRequest::new(about.src, ip_proto::ICMP, IpBody::Icmp(message));
        let _ = self.send(net, req);
    }
}

fn connected_route(prefix: Prefix, iface: u16) -> Route {
    Route {
        prefix,
        next_hops: std::sync::Arc::new([crate::route::NextHop {
            iface,
            gateway: None,
        }]),
        origin: RouteOrigin::Connected,
    }
}

/// An ICMP error the IP layer can generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    Unreachable(UnreachableCode, u16),
    TimeExceeded(TimeExceededCode),
}

/// A short name for an ICMP message, as used in traces.
pub fn icmp_kind(m: &IcmpMessage) -> &'static str {
    match m {
        IcmpMessage::EchoRequest { .. } => "echo_request",
        IcmpMessage::EchoReply { .. } => "echo_reply",
        IcmpMessage::DestUnreachable { code, .. } => code.name(),
        IcmpMessage::TimeExceeded {
            code: TimeExceededCode::TtlInTransit,
            ..
        } => "ttl_exceeded",
        IcmpMessage::TimeExceeded { .. } => "reassembly_time_exceeded",
    }
}

fn flow_key(pkt: &Ipv4Packet) -> FlowKey {
    let (src_port, dst_port) = match &pkt.body {
        IpBody::Transport(t) => t.ports(),
        IpBody::Icmp(
            IcmpMessage::EchoRequest { ident, .. } | IcmpMessage::EchoReply { ident, .. },
        ) => (*ident, 0),
        // Fragments after the first carry no ports; hash them on addresses only, like the
        // first fragment (whose transport header routers do not parse either).
        _ => (0, 0),
    };
    let (src_port, dst_port) = if pkt.is_fragment() {
        (0, 0)
    } else {
        (src_port, dst_port)
    };
    FlowKey {
        src: pkt.src,
        dst: pkt.dst,
        protocol: pkt.protocol,
        src_port,
        dst_port,
    }
}

/// Splits `pkt` into fragments that fit `mtu` (RB-IP-03). All share the IP ID.
pub fn fragment(pkt: &Ipv4Packet, mtu: u32) -> Vec<Ipv4Packet> {
    let chunk = ((mtu.saturating_sub(IPV4_HEADER_LEN as u32)) / 8 * 8).max(8);
    let (whole, base) = match &pkt.body {
        IpBody::Fragment(f) => (f.whole.clone(), f.offset),
        body => (Arc::new(body.clone()), 0),
    };
    let len = pkt.body.len() as u32;
    let mut out = Vec::with_capacity(len.div_ceil(chunk) as usize);
    let mut k = 0;
    while k < len {
        let n = chunk.min(len - k);
        out.push(Ipv4Packet {
            more_fragments: k + n < len || pkt.more_fragments,
            fragment_offset: pkt.fragment_offset + k as u16,
            body: IpBody::Fragment(FragmentData {
                whole: whole.clone(),
                offset: base + k,
                len: n,
            }),
            ..pkt.clone()
        });
        k += n;
    }
    out
}

fn insert_range(have: &mut Vec<(u32, u32)>, start: u32, end: u32) {
    have.push((start, end));
    have.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(have.len());
    for &(s, e) in have.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    *have = merged;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inline and the filtered forms against a plain list, for members and others.
    #[test]
    fn address_sets_answer_like_a_list() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u32
        };
        for n in [0, 1, 3, 4, 5, 11, 101, 300] {
            let addrs: Vec<u32> = (0..n).map(|_| rnd()).collect();
            let set = AddrSet::new(addrs.clone());
            for &a in &addrs {
                assert!(set.contains(Ipv4Addr::from(a)));
            }
            for _ in 0..2000 {
                let a = rnd();
                assert_eq!(set.contains(Ipv4Addr::from(a)), addrs.contains(&a));
            }
        }
    }

    fn udp_like(len: u32) -> Ipv4Packet {
        Ipv4Packet {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 1, 1),
            ttl: 64,
            tos: 0,
            protocol: ip_proto::UDP,
            ident: 7,
            dont_fragment: false,
            more_fragments: false,
            fragment_offset: 0,
            corrupted: false,
            body: IpBody::Transport(TransportPacket {
                header: HeaderBytes::new(&[0, 1, 0, 2, 0, 0, 0, 0]).unwrap(),
                payload: Payload::zeros(len - 8),
                checksum: ChecksumField::At {
                    offset: 6,
                    zero_as_ones: true,
                },
            }),
        }
    }

    // RB-IP-03
    #[test]
    fn fragments_fit_share_the_id_and_cover_the_payload() {
        let p = udp_like(3000);
        let frags = fragment(&p, 1500);
        assert_eq!(frags.len(), 3);
        assert!(frags.iter().all(|f| f.total_len() <= 1500 && f.ident == 7));
        assert_eq!(frags.iter().map(|f| f.body.len()).sum::<usize>(), 3000);
        assert_eq!(
            frags.iter().map(|f| f.fragment_offset).collect::<Vec<_>>(),
            vec![0, 1480, 2960]
        );
        assert_eq!(
            frags.iter().map(|f| f.more_fragments).collect::<Vec<_>>(),
            vec![true, true, false]
        );
        // Refragmenting a fragment keeps offsets relative to the original datagram.
        let again = fragment(&frags[0], 576);
        assert_eq!(
            again.iter().map(|f| f.fragment_offset).collect::<Vec<_>>(),
            vec![0, 552, 1104]
        );
        assert!(again.iter().all(|f| f.more_fragments));
    }

    #[test]
    fn ranges_merge() {
        let mut h = Vec::new();
        insert_range(&mut h, 1480, 2960);
        insert_range(&mut h, 2960, 3000);
        assert_eq!(h, vec![(1480, 3000)]);
        insert_range(&mut h, 0, 1480);
        assert_eq!(h, vec![(0, 3000)]);
    }
}

//! The world: nodes, links and the event loop that drives them.
//!
//! Owns the scheduler, the packet store, the links' channels, fault injection and the run
//! loop. Hosts and routers are an [`IpNode`] plus a [`Stack`] (the transport protocols and
//! applications, supplied by the `protocols` crate through [`StackFactory`]); switches are a
//! [`LearningSwitch`]. The world knows nothing of transport protocols or scenario files.
//!
//! Determinism: events are processed in (time, insertion) order; every processed event is
//! folded into the trace digest; all randomness comes from named streams.

use crate::capture::PcapSink;
use crate::ip::{IpNode, SendError, SendRequest, Upcall, IP_TIMER_BIT};
use crate::link::{Channel, Fate, Offer, PacketId, Transmission};
use crate::metrics::{FlowTable, NodeCounters, NodeMetrics};
use crate::packet::{Frame, FrameBody, Ipv4Packet};
use crate::rng::{RngFactory, SimRng};
use crate::route::Prefix;
use crate::sched::{LaneId, Scheduler, TimerHandle};
use crate::switch::{LearningSwitch, SwitchDecision};
use crate::time::{SimDuration, SimTime};
use crate::trace::{Category, Tracer};
use crate::trace_event;
use std::net::Ipv4Addr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// The CE codepoint of the IPv4 ECN field (RFC 3168).
const ECN_CE: u8 = 0b11;

/// Whether a frame's packet is ECN-capable: IPv4 with ECT(0), ECT(1) or CE (RFC 3168).
fn ecn_capable(frame: &Frame) -> bool {
    matches!(&frame.body, FrameBody::Ipv4(p) if p.tos & ECN_CE != 0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u32);

/// Emits a trace record from a node if the category is enabled; fields are built only then.
#[macro_export]
macro_rules! node_trace {
    ($net:expr, $cat:expr, $node:expr, $event:expr $(, $k:expr => $v:expr)* $(,)?) => {
        if $net.tracer.enabled($cat) {
            let fields: &[(&'static str, $crate::trace::TraceValue)] =
                &[$(($k, $crate::trace::TraceValue::from($v))),*];
            $net.emit_trace($node, $event, fields);
        }
    };
}

/// What the scheduler carries. Small and `Copy`, so scheduling never allocates.
///
/// `repr(u32)`: a 4-byte tag and C-like, aligned fields. With the default layout the tag
/// is one byte and an event is copied as a byte, 16 bytes at offset 1 and 8 more, and the
/// next read of it stalls on store forwarding (a quarter of the scheduler's time).
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub(crate) enum Event {
    /// A channel finished serializing its current frame and frames wait behind it.
    /// `gen`: the channel's service generation when this was scheduled.
    TxDone {
        link: u32,
        dir: u8,
        gen: u32,
    },
    /// A frame reaches the far end of a channel.
    Arrive {
        link: u32,
        dir: u8,
        epoch: u32,
        pkt: PacketId,
    },
    /// A datagram sent by a node to one of its own addresses.
    Loopback {
        node: u32,
        epoch: u32,
        pkt: PacketId,
    },
    Timer {
        node: u32,
        epoch: u32,
        token: u64,
    },
    Boot {
        node: u32,
        epoch: u32,
    },
    Fault {
        index: u32,
    },
    Reroute,
}

/// The transport protocols and applications of one host or router.
pub trait Stack {
    /// The node has booted (at time zero, or when it restarts after a crash).
    fn boot(&mut self, cx: &mut NodeCx<'_>);
    /// A timer the stack set has fired.
    fn on_timer(&mut self, cx: &mut NodeCx<'_>, token: u64);
    /// The IP layer delivers a datagram or an ICMP message.
    fn on_upcall(&mut self, cx: &mut NodeCx<'_>, upcall: Upcall);
    /// The run is over: a chance to flush final measurements into the flow table.
    fn finish(&mut self, _cx: &mut NodeCx<'_>) {}
    /// Lines for the human summary (e.g. ping statistics, a traceroute).
    fn report(&self) -> Vec<StackReport> {
        Vec::new()
    }
}

/// A named block of output lines and structured data from an application.
#[derive(Clone, Debug, PartialEq)]
pub struct StackReport {
    pub app: String,
    pub lines: Vec<String>,
}

/// Computes every node's routing table (None for switches) from the world's current state.
pub type RouteBuilder = Box<dyn FnMut(&World) -> Vec<Option<crate::route::RouteTable>>>;

/// Builds a fresh stack for a node: at the start and again at each restart.
pub type StackFactory = Box<dyn FnMut() -> Box<dyn Stack>>;

/// What a stack may do: send, set timers, read the clock, record measurements.
pub struct NodeCx<'a> {
    pub(crate) ip: &'a mut IpNode,
    pub(crate) net: &'a mut Net,
}

impl<'a> NodeCx<'a> {
    pub fn now(&self) -> SimTime {
        self.net.now()
    }
    pub fn node(&self) -> NodeId {
        self.ip.node
    }
    pub fn node_name(&self) -> &str {
        self.net.node_name(self.ip.node)
    }
    pub fn ip(&self) -> &IpNode {
        self.ip
    }
    pub fn primary_addr(&self) -> Option<Ipv4Addr> {
        self.ip.primary_addr()
    }
    pub fn send(&mut self, req: SendRequest) -> Result<(), SendError> {
        self.ip.send(self.net, req)
    }
    /// Sets a timer; `token` comes back in [`Stack::on_timer`]. Tokens must be below 2^63.
    pub fn set_timer(&mut self, delay: SimDuration, token: u64) -> TimerHandle {
        debug_assert!(token & IP_TIMER_BIT == 0);
        self.net
            .set_timer(self.ip.node, delay, token & !IP_TIMER_BIT)
    }
    pub fn cancel_timer(&mut self, h: TimerHandle) -> bool {
        self.net.cancel_timer(h)
    }
    /// A random stream private to this node and `purpose` (e.g. an app's name), and to
    /// this boot of the node: after a crash and restart the node draws afresh, as a
    /// rebooted machine does (new ISN secret, ephemeral ports, query ids), instead of
    /// replaying its first life. The first boot's streams do not name the boot, so they
    /// stay what they were before restarts were counted.
    pub fn rng(&self, purpose: &str) -> SimRng {
        let name = self.node_name();
        match self.net.epochs[self.ip.node.0 as usize] {
            0 => self.net.rng.stream(&format!("node:{name}:{purpose}")),
            boot => self
                .net
                .rng
                .stream(&format!("node:{name}:boot{boot}:{purpose}")),
        }
    }
    pub fn flows(&mut self) -> &mut FlowTable {
        &mut self.net.flows
    }
    /// Adds `v` to this node's counter `name` (see [`NodeMetrics`]).
    pub fn metric_add(&mut self, name: &'static str, v: f64) {
        self.net.metrics.add(self.ip.node.0, name, v);
    }
    /// Sets this node's gauge `name`.
    pub fn metric_set(&mut self, name: &'static str, v: f64) {
        self.net.metrics.set(self.ip.node.0, name, v);
    }
    /// Raises this node's high-water mark `name` to `v`.
    pub fn metric_max(&mut self, name: &'static str, v: f64) {
        self.net.metrics.max(self.ip.node.0, name, v);
    }

    // Run-time configuration of the node (see `ip`'s module documentation).

    /// Gives `iface` the address `addr/prefix_len` and its connected route.
    pub fn configure_iface(
        &mut self,
        iface: u16,
        addr: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), SendError> {
        let r = self.ip.configure_iface(iface, addr, prefix_len);
        self.net.node_addrs[self.ip.node.0 as usize] = self.ip.primary_addr();
        r
    }
    /// Removes `iface`'s address and connected route.
    pub fn deconfigure_iface(&mut self, iface: u16) {
        self.ip.deconfigure_iface(iface);
        self.net.node_addrs[self.ip.node.0 as usize] = self.ip.primary_addr();
    }
    /// Adds or replaces a run-time route.
    pub fn set_route(&mut self, prefix: Prefix, iface: u16, gateway: Option<Ipv4Addr>) {
        self.ip.set_route(prefix, iface, gateway);
    }
    /// Removes a run-time route; false if there was none.
    pub fn remove_route(&mut self, prefix: Prefix) -> bool {
        self.ip.remove_route(prefix)
    }
    /// Delivers every datagram arriving on `iface` to the stack (or stops).
    pub fn set_receive_any(&mut self, iface: u16, on: bool) {
        self.ip.set_receive_any(iface, on);
    }
    /// Reports ARP claims of `addr` on `iface` by other nodes (or stops).
    pub fn watch_address(&mut self, iface: u16, addr: Ipv4Addr, on: bool) {
        self.ip.watch_address(iface, addr, on);
    }
    /// Sends an RFC 5227 ARP probe for `addr` on `iface`.
    pub fn arp_probe(&mut self, iface: u16, addr: Ipv4Addr) {
        self.ip.arp_probe(self.net, iface, addr);
    }
    /// Sends a gratuitous ARP announcing `addr` on `iface`.
    pub fn arp_announce(&mut self, iface: u16, addr: Ipv4Addr) {
        self.ip.arp_announce(self.net, iface, addr);
    }

    pub fn tracer(&mut self) -> &mut Tracer {
        &mut self.net.tracer
    }
    /// Resolves a node name to its first address (for apps addressing peers by name).
    pub fn resolve_name(&self, name: &str) -> Option<Ipv4Addr> {
        self.net
            .node_index(name)
            .and_then(|i| self.net.node_addrs[i as usize])
    }
    /// Is `cat` being recorded? (Lets callers skip building costly fields.)
    pub fn tracing(&self, cat: Category) -> bool {
        self.net.tracer.enabled(cat)
    }
    /// Emits a trace record from this node.
    pub fn trace(
        &mut self,
        cat: Category,
        event: &'static str,
        fields: &[(&'static str, crate::trace::TraceValue)],
    ) {
        if self.net.tracer.enabled(cat) {
            let t = self.net.now();
            let name = &self.net.names[self.ip.node.0 as usize];
            self.net.tracer.emit(t, name, event, fields);
        }
    }
}

/// Which side of a link a node's port is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortBinding {
    pub link: LinkId,
    pub side: u8,
}

/// A full-duplex link: `dirs[0]` carries frames from `ends[0]` to `ends[1]`.
pub struct Link {
    pub name: String,
    pub ends: [(NodeId, u16); 2],
    pub mtu: u32,
    pub dirs: [Channel; 2],
    pub(crate) capture: Option<usize>,
    /// The scheduler lane of each direction's arrivals (a channel delivers in order).
    lanes: [LaneId; 2],
}

/// Storage for frames in flight, reused so steady state does not allocate.
#[derive(Default)]
pub(crate) struct PacketStore {
    /// Each slot's uid and frame (`None` when free). The uid sits beside the frame rather
    /// than in an `Option<(u64, Frame)>`, so storing a frame writes it once.
    slots: Vec<(u64, Option<Frame>)>,
    free: Vec<u32>,
    next_uid: u64,
}

impl PacketStore {
    fn insert(&mut self, frame: Frame) -> PacketId {
        let uid = self.next_uid;
        self.next_uid += 1;
        match self.free.pop() {
            Some(i) => {
                let slot = &mut self.slots[i as usize];
                slot.0 = uid;
                slot.1 = Some(frame);
                PacketId(i)
            }
            None => {
                self.slots.push((uid, Some(frame)));
                PacketId((self.slots.len() - 1) as u32)
            }
        }
    }
    fn get(&self, id: PacketId) -> Option<(u64, &Frame)> {
        let (uid, f) = self.slots.get(id.0 as usize)?;
        Some((*uid, f.as_ref()?))
    }
    pub(crate) fn frame(&self, id: PacketId) -> Option<&Frame> {
        self.slots.get(id.0 as usize)?.1.as_ref()
    }
    pub(crate) fn frame_mut(&mut self, id: PacketId) -> Option<&mut Frame> {
        self.slots.get_mut(id.0 as usize)?.1.as_mut()
    }
    /// Gives a stored frame the next uid, as taking it out and inserting it again would.
    fn restamp(&mut self, id: PacketId) {
        if let Some((uid, Some(_))) = self.slots.get_mut(id.0 as usize) {
            *uid = self.next_uid;
            self.next_uid += 1;
        }
    }
    fn take(&mut self, id: PacketId) -> Option<(u64, Frame)> {
        let (uid, slot) = self.slots.get_mut(id.0 as usize)?;
        let f = slot.take()?;
        self.free.push(id.0);
        Some((*uid, f))
    }
    pub(crate) fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

/// Everything nodes share: the clock and scheduler, links, captures, trace and flows.
pub struct Net {
    pub(crate) sched: Scheduler<Event>,
    pub links: Vec<Link>,
    pub(crate) packets: PacketStore,
    pub(crate) ports: Vec<Vec<PortBinding>>,
    pub(crate) names: Vec<String>,
    /// Node ids by name, for lookups by name in O(log n) (only ever used by key).
    pub(crate) ids_by_name: std::collections::BTreeMap<String, u32>,
    pub(crate) node_addrs: Vec<Option<Ipv4Addr>>,
    pub(crate) epochs: Vec<u32>,
    pub(crate) up: Vec<bool>,
    pub(crate) counters: Vec<NodeCounters>,
    pub tracer: Tracer,
    pub flows: FlowTable,
    pub metrics: NodeMetrics,
    pub rng: RngFactory,
    pub(crate) captures: Vec<(String, PcapSink)>,
    pub(crate) node_capture: Vec<Option<usize>>,
    pub(crate) capture_errors: Vec<String>,
}

impl Net {
    pub fn now(&self) -> SimTime {
        self.sched.now()
    }
    pub fn node_name(&self, n: NodeId) -> &str {
        &self.names[n.0 as usize]
    }
    /// The node named `name` (the first one added, if several share it).
    pub fn node_index(&self, name: &str) -> Option<u32> {
        self.ids_by_name.get(name).copied()
    }
    pub fn node_is_up(&self, n: NodeId) -> bool {
        self.up[n.0 as usize]
    }
    pub fn counters(&mut self, n: NodeId) -> &mut NodeCounters {
        &mut self.counters[n.0 as usize]
    }
    pub fn set_timer(&mut self, n: NodeId, delay: SimDuration, token: u64) -> TimerHandle {
        let at = self.now() + delay;
        let epoch = self.epochs[n.0 as usize];
        self.sched.schedule_timer(
            at,
            Event::Timer {
                node: n.0,
                epoch,
                token,
            },
        )
    }
    pub fn cancel_timer(&mut self, h: TimerHandle) -> bool {
        self.sched.cancel(h)
    }

    /// Emits a trace record from `node` (use through [`node_trace!`]).
    pub fn emit_trace(
        &mut self,
        node: NodeId,
        event: &'static str,
        fields: &[(&'static str, crate::trace::TraceValue)],
    ) {
        let t = self.sched.now();
        self.tracer
            .emit(t, &self.names[node.0 as usize], event, fields);
    }

    fn capture(&mut self, index: Option<usize>, t: SimTime, frame: &Frame) {
        if let Some(i) = index {
            if let Some((_, sink)) = self.captures.get_mut(i) {
                sink.write(t.as_nanos(), frame);
            }
        }
    }

    /// Hands a frame to the link on `port` of `node`.
    pub fn transmit(&mut self, node: NodeId, port: u16, frame: Frame) {
        let Some(&binding) = self.ports[node.0 as usize].get(port as usize) else {
            return;
        };
        let pkt = self.packets.insert(frame);
        self.offer(node, binding, pkt);
    }

    /// Hands the frame stored as `pkt` (a forwarded one, rewritten in place) to the link
    /// on `port` of `node`, as [`Self::transmit`] would after taking it out: it is
    /// stamped anew, as if inserted now.
    pub(crate) fn transmit_stored(&mut self, node: NodeId, port: u16, pkt: PacketId) {
        let Some(&binding) = self.ports[node.0 as usize].get(port as usize) else {
            self.packets.take(pkt);
            return;
        };
        self.packets.restamp(pkt);
        self.offer(node, binding, pkt);
    }

    /// Offers a stored frame to one direction of a link: transmission starts, it waits
    /// in the queue, or it is dropped (and freed).
    fn offer(&mut self, node: NodeId, binding: PortBinding, pkt: PacketId) {
        let PortBinding { link, side } = binding;
        let Some((_, frame)) = self.packets.get(pkt) else {
            return;
        };
        let wire_len = frame.wire_len() as u32;
        let ect = ecn_capable(frame);
        self.counters[node.0 as usize].tx_frames += 1;
        let now = self.now();
        let l = &mut self.links[link.0 as usize];
        match l.dirs[side as usize].offer(now, pkt, wire_len, ect) {
            Offer::Transmit(tx) => self.start_transmission(link, side, tx),
            Offer::Queued { ce, wake } => {
                if ce {
                    self.mark_ce(link, side, pkt);
                }
                if let Some(at) = wake {
                    self.schedule_tx_done(link, side, at);
                }
            }
            Offer::DroppedAqm => {
                if self.tracer.enabled(Category::Link) {
                    let l = &self.links[link.0 as usize];
                    let (name, qdisc) = (l.name.clone(), l.dirs[side as usize].config.aqm.name());
                    node_trace!(self, Category::Link, node, "drop", "link" => name, "reason" => "aqm", "qdisc" => qdisc);
                }
                self.packets.take(pkt);
            }
            Offer::DroppedQueueFull | Offer::DroppedDown => {
                let reason = if l.dirs[side as usize].is_up() {
                    "queue_full"
                } else {
                    "link_down"
                };
                if self.tracer.enabled(Category::Link) {
                    let name = self.links[link.0 as usize].name.clone();
                    node_trace!(self, Category::Link, node, "drop", "link" => name, "reason" => reason);
                }
                self.packets.take(pkt);
            }
        }
    }

    /// Sets the CE codepoint (RFC 3168) of a packet that the queue discipline of `link`'s
    /// direction `side` marked instead of dropping it.
    fn mark_ce(&mut self, link: LinkId, side: u8, pkt: PacketId) {
        if let Some(Frame {
            body: FrameBody::Ipv4(p),
            ..
        }) = self.packets.frame_mut(pkt)
        {
            p.tos |= ECN_CE;
        }
        if self.tracer.enabled(Category::Link) {
            let l = &self.links[link.0 as usize];
            let node = l.ends[side as usize].0;
            let (name, qdisc) = (l.name.clone(), l.dirs[side as usize].config.aqm.name());
            node_trace!(self, Category::Link, node, "ecn_mark", "link" => name, "qdisc" => qdisc);
        }
    }

    /// Frees the frames the queue discipline of `link`'s direction `side` dropped when
    /// dequeuing (CoDel), tracing each as a drop.
    fn free_aqm_dropped(&mut self, link: LinkId, side: u8) {
        let now = self.now();
        let l = &mut self.links[link.0 as usize];
        let from = &self.names[l.ends[side as usize].0 .0 as usize];
        let ch = &mut l.dirs[side as usize];
        let qdisc = ch.config.aqm.name();
        for p in ch.drain_aqm_dropped() {
            self.packets.take(p);
            trace_event!(self.tracer, Category::Link, now, from, "drop", "link" => l.name.clone(), "reason" => "aqm", "qdisc" => qdisc);
        }
    }

    /// A frame starts on `link`'s direction `side`: captured as it leaves, then lost,
    /// or its arrival (and that of a duplicate) scheduled now.
    fn start_transmission(&mut self, link: LinkId, side: u8, tx: Transmission) {
        let now = self.now();
        let pkt = tx.pkt;
        if tx.ce {
            self.mark_ce(link, side, pkt);
        }
        let l = &self.links[link.0 as usize];
        let (node, _) = l.ends[side as usize];
        let link_cap = l.capture;
        let node_cap = self.node_capture[node.0 as usize];
        if link_cap.is_some() || node_cap.is_some() {
            if let Some((_, frame)) = self.packets.get(pkt) {
                let frame = frame.clone();
                self.capture(link_cap, now, &frame);
                if node_cap != link_cap {
                    self.capture(node_cap, now, &frame);
                }
            }
        }
        match tx.fate {
            Fate::Lost => {
                if self.tracer.enabled(Category::Link) {
                    let name = self.links[link.0 as usize].name.clone();
                    node_trace!(self, Category::Link, node, "drop", "link" => name, "reason" => "loss");
                }
                self.packets.take(pkt);
            }
            Fate::Arrives {
                at,
                corrupted,
                duplicate_at,
            } => {
                if corrupted {
                    if let Some(Frame {
                        body: FrameBody::Ipv4(p),
                        ..
                    }) = self.packets.frame_mut(pkt)
                    {
                        p.corrupted = true;
                    }
                }
                let l = &self.links[link.0 as usize];
                let (lane, epoch) = (l.lanes[side as usize], l.dirs[side as usize].epoch());
                if let Some(dup_at) = duplicate_at {
                    if let Some((_, f)) = self.packets.get(pkt) {
                        let copy = f.clone();
                        let id = self.packets.insert(copy);
                        self.links[link.0 as usize].dirs[side as usize].note_copy(id);
                        self.sched.schedule_in_lane(
                            lane,
                            dup_at,
                            Event::Arrive {
                                link: link.0,
                                dir: side,
                                epoch,
                                pkt: id,
                            },
                        );
                    }
                }
                self.sched.schedule_in_lane(
                    lane,
                    at,
                    Event::Arrive {
                        link: link.0,
                        dir: side,
                        epoch,
                        pkt,
                    },
                );
            }
        }
        if let Some(at) = tx.wake {
            self.schedule_tx_done(link, side, at);
        }
    }

    /// Has the world call [`Channel::finish`] for `link`'s direction `side` at `at`.
    fn schedule_tx_done(&mut self, link: LinkId, side: u8, at: SimTime) {
        let gen = self.links[link.0 as usize].dirs[side as usize].service_gen();
        self.sched.schedule(
            at,
            Event::TxDone {
                link: link.0,
                dir: side,
                gen,
            },
        );
    }

    /// Delivers a datagram addressed to the sending node itself, after zero time.
    pub(crate) fn loopback(&mut self, node: NodeId, pkt: Ipv4Packet) {
        let frame = Frame {
            src: Default::default(),
            dst: Default::default(),
            body: FrameBody::Ipv4(pkt),
        };
        let id = self.packets.insert(frame);
        let epoch = self.epochs[node.0 as usize];
        let now = self.now();
        self.sched.schedule(
            now,
            Event::Loopback {
                node: node.0,
                epoch,
                pkt: id,
            },
        );
    }
}

enum NodeState {
    Ip {
        ip: Box<IpNode>,
        stack: Option<Box<dyn Stack>>,
        factory: Option<StackFactory>,
    },
    Switch(LearningSwitch),
}

/// A fault at a given time (RB-LINK-04).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    LinkDown(LinkId),
    LinkUp(LinkId),
    NodeCrash(NodeId),
    NodeRestart(NodeId),
}

/// How automatic routes react to faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RerouteConfig {
    /// After a link or node fails or recovers, recompute automatic routes this much later
    /// (a routing protocol's convergence time). `None`: routes never change.
    pub after: Option<SimDuration>,
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The configured end time was reached.
    EndTime,
    /// Nothing left to do before the end time.
    Idle,
    /// The event budget ran out.
    MaxEvents,
    /// The caller's stop check said stop (e.g. a wall-clock limit).
    Interrupted,
}

/// The simulated network.
pub struct World {
    pub net: Net,
    nodes: Vec<NodeState>,
    faults: Vec<FaultAction>,
    reroute: RerouteConfig,
    route_builder: Option<RouteBuilder>,
    events: u64,
}

/// Builder-facing description of a node.
pub enum NodeSpec {
    Ip {
        ip: Box<IpNode>,
        factory: Option<StackFactory>,
    },
    Switch(LearningSwitch),
}

impl World {
    /// An empty world with a seed; add nodes and links, then `start`.
    pub fn new(seed: u64) -> Self {
        World {
            net: Net {
                sched: Scheduler::new(),
                links: Vec::new(),
                packets: PacketStore::default(),
                ports: Vec::new(),
                names: Vec::new(),
                ids_by_name: std::collections::BTreeMap::new(),
                node_addrs: Vec::new(),
                epochs: Vec::new(),
                up: Vec::new(),
                counters: Vec::new(),
                tracer: Tracer::default(),
                flows: FlowTable::default(),
                metrics: NodeMetrics::default(),
                rng: RngFactory::new(seed),
                captures: Vec::new(),
                node_capture: Vec::new(),
                capture_errors: Vec::new(),
            },
            nodes: Vec::new(),
            faults: Vec::new(),
            reroute: RerouteConfig::default(),
            route_builder: None,
            events: 0,
        }
    }

    /// Makes room for `nodes` more nodes and `links` more links, so that a builder that
    /// knows the size of the network never copies the growing tables (nor holds two of
    /// them at once).
    pub fn reserve(&mut self, nodes: usize, links: usize) {
        self.nodes.reserve_exact(nodes);
        let n = &mut self.net;
        n.names.reserve_exact(nodes);
        n.node_addrs.reserve_exact(nodes);
        n.ports.reserve_exact(nodes);
        n.epochs.reserve_exact(nodes);
        n.up.reserve_exact(nodes);
        n.counters.reserve_exact(nodes);
        n.node_capture.reserve_exact(nodes);
        n.links.reserve_exact(links);
    }

    /// Adds a node; its ports are bound as links are added (port i = the i-th link added
    /// that touches it).
    pub fn add_node(&mut self, name: &str, spec: NodeSpec) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        let (state, addr) = match spec {
            NodeSpec::Ip { ip, factory } => {
                let addr = ip.primary_addr();
                (
                    NodeState::Ip {
                        ip,
                        stack: None,
                        factory,
                    },
                    addr,
                )
            }
            NodeSpec::Switch(s) => (NodeState::Switch(s), None),
        };
        self.nodes.push(state);
        self.net.names.push(name.to_string());
        self.net.ids_by_name.entry(name.to_string()).or_insert(id.0);
        self.net.node_addrs.push(addr);
        self.net.ports.push(Vec::new());
        self.net.epochs.push(0);
        self.net.up.push(true);
        self.net.counters.push(NodeCounters::default());
        self.net.node_capture.push(None);
        id
    }

    /// Adds a link between the next free ports of `a` and `b`.
    pub fn add_link(
        &mut self,
        name: &str,
        a: NodeId,
        b: NodeId,
        mtu: u32,
        ab: crate::link::ChannelConfig,
        ba: crate::link::ChannelConfig,
    ) -> LinkId {
        let id = LinkId(self.net.links.len() as u32);
        let pa = self.net.ports[a.0 as usize].len() as u16;
        self.net.ports[a.0 as usize].push(PortBinding { link: id, side: 0 });
        let pb = self.net.ports[b.0 as usize].len() as u16;
        self.net.ports[b.0 as usize].push(PortBinding { link: id, side: 1 });
        let names = &self.net.names;
        // One stream per direction for impairments, and one for RED's drops, so that
        // choosing a queue discipline shifts no impairment draws.
        let channel = |config, from: NodeId, to: NodeId| {
            let stream = format!(
                "link:{name}:{}>{}",
                names[from.0 as usize], names[to.0 as usize]
            );
            let rng = self.net.rng.stream(&stream);
            let red = self.net.rng.stream(&format!("{stream}:red"));
            Channel::new(config, rng, red)
        };
        let dirs = [channel(ab, a, b), channel(ba, b, a)];
        let lanes = [self.net.sched.add_lane(), self.net.sched.add_lane()];
        self.net.links.push(Link {
            name: name.to_string(),
            ends: [(a, pa), (b, pb)],
            mtu,
            dirs,
            capture: None,
            lanes,
        });
        id
    }

    /// Writes every frame sent on `link` (both directions, at the start of transmission)
    /// to a pcap file.
    pub fn capture_link(&mut self, link: LinkId, label: &str, sink: PcapSink) {
        self.net.captures.push((label.to_string(), sink));
        self.net.links[link.0 as usize].capture = Some(self.net.captures.len() - 1);
    }

    /// Writes every frame a node sends (at transmission start) and receives (at arrival).
    pub fn capture_node(&mut self, node: NodeId, label: &str, sink: PcapSink) {
        self.net.captures.push((label.to_string(), sink));
        self.net.node_capture[node.0 as usize] = Some(self.net.captures.len() - 1);
    }

    pub fn schedule_fault(&mut self, at: SimTime, action: FaultAction) {
        self.faults.push(action);
        let index = (self.faults.len() - 1) as u32;
        self.net.sched.schedule(at, Event::Fault { index });
    }

    /// Recompute automatic routes after faults, with `builder` producing each node's table.
    pub fn set_rerouting(&mut self, config: RerouteConfig, builder: RouteBuilder) {
        self.reroute = config;
        self.route_builder = Some(builder);
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.net.node_index(name).map(NodeId)
    }
    pub fn node_name(&self, n: NodeId) -> &str {
        self.net.node_name(n)
    }
    pub fn ip_node(&self, n: NodeId) -> Option<&IpNode> {
        match self.nodes.get(n.0 as usize)? {
            NodeState::Ip { ip, .. } => Some(ip),
            NodeState::Switch(_) => None,
        }
    }
    pub fn ip_node_mut(&mut self, n: NodeId) -> Option<&mut IpNode> {
        match self.nodes.get_mut(n.0 as usize)? {
            NodeState::Ip { ip, .. } => Some(ip),
            NodeState::Switch(_) => None,
        }
    }
    pub fn switch(&self, n: NodeId) -> Option<&LearningSwitch> {
        match self.nodes.get(n.0 as usize)? {
            NodeState::Switch(s) => Some(s),
            NodeState::Ip { .. } => None,
        }
    }
    pub fn is_up(&self, n: NodeId) -> bool {
        self.net.up[n.0 as usize]
    }
    pub fn counters(&self, n: NodeId) -> &NodeCounters {
        &self.net.counters[n.0 as usize]
    }
    pub fn links(&self) -> &[Link] {
        &self.net.links
    }
    pub fn ports(&self, n: NodeId) -> &[PortBinding] {
        &self.net.ports[n.0 as usize]
    }
    pub fn now(&self) -> SimTime {
        self.net.now()
    }
    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.events
    }
    pub fn trace_digest(&self) -> String {
        self.net.tracer.digest_hex()
    }
    /// Frames currently stored (queued or in flight), for leak checks.
    pub fn live_packets(&self) -> usize {
        self.net.packets.live()
    }

    /// Schedules every host's and router's boot at time zero. Call once, before `run`.
    pub fn start(&mut self) {
        for i in 0..self.nodes.len() {
            if matches!(self.nodes[i], NodeState::Ip { .. }) {
                self.net.sched.schedule(
                    SimTime::ZERO,
                    Event::Boot {
                        node: i as u32,
                        epoch: 0,
                    },
                );
            }
        }
    }

    /// Runs until `end`, the event budget, or `should_stop` (checked every 4096 events).
    pub fn run(
        &mut self,
        end: SimTime,
        max_events: Option<u64>,
        mut should_stop: impl FnMut() -> bool,
    ) -> StopReason {
        loop {
            match self.net.sched.peek_time() {
                None => return StopReason::Idle,
                Some(t) if t > end => return StopReason::EndTime,
                Some(_) => {}
            }
            if max_events.is_some_and(|m| self.events >= m) {
                return StopReason::MaxEvents;
            }
            if self.events & 4095 == 0 && self.events > 0 && should_stop() {
                return StopReason::Interrupted;
            }
            let Some((t, ev)) = self.net.sched.pop() else {
                return StopReason::Idle;
            };
            self.events += 1;
            self.dispatch(t, ev);
        }
    }

    fn digest(&mut self, t: SimTime, kind: u64, a: u64, pkt: Option<PacketId>) {
        let (uid, len) = pkt
            .and_then(|p| self.net.packets.get(p))
            .map(|(u, f)| (u, f.len() as u64))
            .unwrap_or((u64::MAX, 0));
        self.net
            .tracer
            .digest_event([t.as_nanos(), kind << 56 | a, uid, len]);
    }

    #[inline(always)]
    fn dispatch(&mut self, t: SimTime, ev: Event) {
        match ev {
            Event::TxDone { link, dir, gen } => {
                self.digest(t, 1, (link as u64) << 8 | dir as u64, None);
                self.tx_done(link, dir, gen);
            }
            Event::Arrive {
                link,
                dir,
                epoch,
                pkt,
            } => {
                self.digest(t, 2, (link as u64) << 8 | dir as u64, Some(pkt));
                self.arrive(link, dir, epoch, pkt);
            }
            Event::Loopback { node, epoch, pkt } => {
                self.digest(t, 3, node as u64, Some(pkt));
                let frame = self.net.packets.take(pkt);
                if epoch != self.net.epochs[node as usize] {
                    return;
                }
                if let (
                    Some((
                        _,
                        Frame {
                            body: FrameBody::Ipv4(p),
                            ..
                        },
                    )),
                    NodeState::Ip { ip, .. },
                ) = (frame, &mut self.nodes[node as usize])
                {
                    ip.receive_ipv4(&mut self.net, 0, p);
                    self.drain_upcalls(node);
                }
            }
            Event::Timer { node, epoch, token } => {
                self.digest(t, 4, node as u64, None);
                self.net.tracer.digest_event([token, 0, 0, 0]);
                if epoch != self.net.epochs[node as usize] {
                    return;
                }
                if let NodeState::Ip { ip, stack, .. } = &mut self.nodes[node as usize] {
                    if token & IP_TIMER_BIT != 0 {
                        ip.timer(&mut self.net, token);
                    } else if let Some(s) = stack.as_mut() {
                        s.on_timer(
                            &mut NodeCx {
                                ip,
                                net: &mut self.net,
                            },
                            token,
                        );
                    }
                    self.drain_upcalls(node);
                }
            }
            Event::Boot { node, epoch } => {
                self.digest(t, 5, node as u64, None);
                if epoch != self.net.epochs[node as usize] {
                    return;
                }
                if let NodeState::Ip { ip, stack, factory } = &mut self.nodes[node as usize] {
                    if let Some(f) = factory.as_mut() {
                        let mut s = f();
                        s.boot(&mut NodeCx {
                            ip,
                            net: &mut self.net,
                        });
                        *stack = Some(s);
                    }
                    self.drain_upcalls(node);
                }
            }
            Event::Fault { index } => {
                self.digest(t, 6, index as u64, None);
                if let Some(&f) = self.faults.get(index as usize) {
                    self.apply_fault(f);
                }
            }
            Event::Reroute => {
                self.digest(t, 7, 0, None);
                self.recompute_routes();
            }
        }
    }

    fn drain_upcalls(&mut self, node: u32) {
        if let NodeState::Ip { ip, stack, .. } = &mut self.nodes[node as usize] {
            while let Some(u) = ip.upcalls.pop_front() {
                if let Some(s) = stack.as_mut() {
                    s.on_upcall(
                        &mut NodeCx {
                            ip,
                            net: &mut self.net,
                        },
                        u,
                    );
                }
            }
        }
    }

    fn tx_done(&mut self, link: u32, dir: u8, gen: u32) {
        let now = self.net.now();
        let next = self.net.links[link as usize].dirs[dir as usize].finish(now, gen);
        self.net.free_aqm_dropped(LinkId(link), dir);
        if let Some(tx) = next {
            self.net.start_transmission(LinkId(link), dir, tx);
        }
    }

    fn arrive(&mut self, link: u32, dir: u8, epoch: u32, pkt: PacketId) {
        if self.net.packets.get(pkt).is_none() {
            return;
        }
        let l = &mut self.net.links[link as usize];
        let channel = &mut l.dirs[dir as usize];
        if channel.epoch() != epoch || channel.take_aborted(pkt) {
            // The link went down while the frame was in flight, or the sender crashed
            // while serializing it.
            self.net.packets.take(pkt);
            return;
        }
        let (node, port) = l.ends[1 - dir as usize];
        let n = node.0 as usize;
        if !self.net.up[n] {
            self.net.packets.take(pkt);
            self.net.counters[n].dropped_node_down += 1;
            return;
        }
        self.net.counters[n].rx_frames += 1;
        let now = self.net.now();
        if let Some(i) = self.net.node_capture[n] {
            if let Some((_, sink)) = self.net.captures.get_mut(i) {
                if let Some((_, frame)) = self.net.packets.get(pkt) {
                    sink.write(now.as_nanos(), frame);
                }
            }
        }
        if let NodeState::Ip { ip, .. } = &mut self.nodes[n] {
            if ip.forward_in_place(&mut self.net, port, pkt) {
                return;
            }
        }
        let Some((_, frame)) = self.net.packets.take(pkt) else {
            return;
        };
        match &mut self.nodes[n] {
            NodeState::Switch(sw) => {
                let decision = sw.handle(now, port, frame.src, frame.dst);
                match decision {
                    SwitchDecision::Forward(p) => self.net.transmit(node, p, frame),
                    SwitchDecision::Flood => {
                        let ports = self.net.ports[n].len() as u16;
                        for p in (0..ports).filter(|&p| p != port) {
                            self.net.transmit(node, p, frame.clone());
                        }
                    }
                    SwitchDecision::Filter => {}
                }
            }
            NodeState::Ip { ip, .. } => {
                ip.receive_frame(&mut self.net, port, frame);
                self.drain_upcalls(node.0);
            }
        }
    }

    fn apply_fault(&mut self, f: FaultAction) {
        let now = self.net.now();
        match f {
            FaultAction::LinkDown(l) | FaultAction::LinkUp(l) => {
                let down = matches!(f, FaultAction::LinkDown(_));
                let link = &mut self.net.links[l.0 as usize];
                let mut dropped = Vec::new();
                for d in link.dirs.iter_mut() {
                    if down {
                        dropped.extend(d.set_down(now));
                    } else {
                        d.set_up();
                    }
                }
                let name = link.name.clone();
                let ends = link.ends;
                for p in dropped {
                    self.net.packets.take(p);
                }
                if down {
                    for (node, port) in ends {
                        if let NodeState::Switch(sw) = &mut self.nodes[node.0 as usize] {
                            sw.forget_port(port);
                        }
                    }
                }
                let ev = if down { "link_down" } else { "link_up" };
                trace_event!(self.net.tracer, Category::Fault, now, "-", ev, "link" => name);
                for (node, port) in ends {
                    self.carrier(node, port, !down);
                }
            }
            FaultAction::NodeCrash(n) => {
                let i = n.0 as usize;
                if !self.net.up[i] {
                    return;
                }
                self.net.up[i] = false;
                self.net.epochs[i] = self.net.epochs[i].wrapping_add(1);
                let ports = self.net.ports[i].clone();
                for b in ports {
                    let dropped =
                        self.net.links[b.link.0 as usize].dirs[b.side as usize].flush(now);
                    for p in dropped {
                        self.net.packets.take(p);
                    }
                }
                match &mut self.nodes[i] {
                    NodeState::Ip { ip, stack, .. } => {
                        if let Some(mut s) = stack.take() {
                            // Let the dying stack record what it measured so far.
                            s.finish(&mut NodeCx {
                                ip,
                                net: &mut self.net,
                            });
                        }
                        ip.reset();
                    }
                    NodeState::Switch(sw) => sw.clear(),
                }
                let name = self.net.names[i].clone();
                trace_event!(self.net.tracer, Category::Fault, now, &name, "node_crash");
            }
            FaultAction::NodeRestart(n) => {
                let i = n.0 as usize;
                if self.net.up[i] {
                    return;
                }
                self.net.up[i] = true;
                let epoch = self.net.epochs[i];
                if matches!(self.nodes[i], NodeState::Ip { .. }) {
                    self.net
                        .sched
                        .schedule(now, Event::Boot { node: n.0, epoch });
                }
                let name = self.net.names[i].clone();
                trace_event!(self.net.tracer, Category::Fault, now, &name, "node_restart");
            }
        }
        if let Some(after) = self.reroute.after {
            if self.route_builder.is_some() {
                self.net.sched.schedule(now + after, Event::Reroute);
            }
        }
    }

    /// Tells the stack of `node` (if it is up) that the link on `port` went down or up.
    fn carrier(&mut self, node: NodeId, port: u16, up: bool) {
        if !self.net.up[node.0 as usize] {
            return;
        }
        if let NodeState::Ip { ip, .. } = &mut self.nodes[node.0 as usize] {
            ip.upcalls.push_back(Upcall::Carrier { iface: port, up });
            self.drain_upcalls(node.0);
        }
    }

    fn recompute_routes(&mut self) {
        let Some(mut builder) = self.route_builder.take() else {
            return;
        };
        let tables = builder(self);
        self.route_builder = Some(builder);
        for (i, t) in tables.into_iter().enumerate() {
            if let (Some(mut t), NodeState::Ip { ip, .. }) = (t, &mut self.nodes[i]) {
                // Routes the node's stack added at run time are not the builder's to drop.
                for r in ip.routes.routes() {
                    if r.origin == crate::route::RouteOrigin::Dynamic {
                        t.insert(r.clone());
                    }
                }
                ip.routes = t;
            }
        }
        trace_event!(
            self.net.tracer,
            Category::Fault,
            self.net.now(),
            "-",
            "routes_recomputed"
        );
    }

    /// Ends the run: stacks record final measurements, captures are flushed.
    /// Returns capture files written as (label, packets) and any capture errors.
    pub fn finish(&mut self) -> (Vec<(String, u64)>, Vec<String>) {
        for i in 0..self.nodes.len() {
            if let NodeState::Ip {
                ip, stack: Some(s), ..
            } = &mut self.nodes[i]
            {
                s.finish(&mut NodeCx {
                    ip,
                    net: &mut self.net,
                });
            }
        }
        let mut written = Vec::new();
        let mut errors = std::mem::take(&mut self.net.capture_errors);
        for (label, sink) in self.net.captures.drain(..) {
            match sink.finish() {
                Ok(n) => written.push((label, n)),
                Err(e) => errors.push(format!("{label}: {e}")),
            }
        }
        if let Err(e) = self.net.tracer.finish() {
            errors.push(format!("trace: {e}"));
        }
        (written, errors)
    }

    /// Reports from every node's stack, in node order.
    pub fn reports(&self) -> Vec<(String, StackReport)> {
        let mut out = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if let NodeState::Ip { stack: Some(s), .. } = n {
                for r in s.report() {
                    out.push((self.net.names[i].clone(), r));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    //! The run-time configuration API of `NodeCx`, through a world of two nodes on one link:
    //! "a" starts without an address, "b" has 10.0.0.1/24.

    use super::*;
    use crate::ip::{Iface, IpConfig};
    use crate::link::ChannelConfig;
    use crate::packet::{
        ip_proto, ChecksumField, HeaderBytes, IpBody, MacAddr, Payload, TransportPacket,
    };
    use crate::route::EcmpMode;
    use std::cell::RefCell;
    use std::rc::Rc;

    type Script = Rc<dyn Fn(&mut NodeCx<'_>, u64)>;

    /// A stack that runs `script` at boot (token 0) and on its timers, and records upcalls.
    struct Scripted {
        script: Script,
        log: Rc<RefCell<Vec<Upcall>>>,
    }

    impl Stack for Scripted {
        fn boot(&mut self, cx: &mut NodeCx<'_>) {
            (self.script)(cx, 0);
        }
        fn on_timer(&mut self, cx: &mut NodeCx<'_>, token: u64) {
            (self.script)(cx, token);
        }
        fn on_upcall(&mut self, _cx: &mut NodeCx<'_>, u: Upcall) {
            self.log.borrow_mut().push(u);
        }
    }

    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const LEASED: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);

    fn mac(n: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, n])
    }

    fn datagram() -> IpBody {
        IpBody::Transport(TransportPacket {
            header: HeaderBytes::new(&[0, 68, 0, 67, 0, 8, 0, 0]).unwrap_or_else(|| unreachable!()),
            payload: Payload::empty(),
            checksum: ChecksumField::None,
        })
    }

    /// Builds the world; returns it with both nodes' upcall logs.
    fn world(a: Script, b: Script) -> (World, [Rc<RefCell<Vec<Upcall>>>; 2]) {
        world_with(
            a,
            b,
            ChannelConfig {
                delay: SimDuration::from_millis(1),
                ..Default::default()
            },
        )
    }

    /// The same, with both directions of the link configured as `c`.
    fn world_with(
        a: Script,
        b: Script,
        c: ChannelConfig,
    ) -> (World, [Rc<RefCell<Vec<Upcall>>>; 2]) {
        let mut w = World::new(1);
        let logs = [Rc::default(), Rc::default()];
        for (i, (addr, script)) in [(Ipv4Addr::UNSPECIFIED, a), (B, b)].into_iter().enumerate() {
            let len = if addr.is_unspecified() { 32 } else { 24 };
            let ifaces = vec![Iface {
                mac: mac(i as u8 + 1),
                addr,
                prefix: Prefix::new(addr, len),
                mtu: 1500,
            }];
            let rng = w.net.rng.stream("x");
            let ip = IpNode::new(
                NodeId(i as u32),
                false,
                ifaces,
                IpConfig::default(),
                EcmpMode::PerFlow,
                0,
                rng,
            );
            let log: Rc<RefCell<Vec<Upcall>>> = Rc::clone(&logs[i]);
            let factory: StackFactory = Box::new(move || {
                Box::new(Scripted {
                    script: script.clone(),
                    log: log.clone(),
                })
            });
            w.add_node(
                ["a", "b"][i],
                NodeSpec::Ip {
                    ip: Box::new(ip),
                    factory: Some(factory),
                },
            );
        }
        w.add_link("a-b", NodeId(0), NodeId(1), 1500, c.clone(), c);
        (w, logs)
    }

    fn run_until(w: &mut World, secs: u64) {
        w.run(SimTime::from_secs(secs), None, || false);
    }

    #[test]
    fn an_unconfigured_interface_broadcasts_from_zero_and_receives_by_mac_when_asked() {
        // a: at boot broadcast from 0.0.0.0; at t=1 s accept anything on iface 0.
        let a: Script = Rc::new(|cx, token| {
            if token == 0 {
                assert_eq!(cx.primary_addr(), None);
                let mut req = SendRequest::new(Ipv4Addr::BROADCAST, ip_proto::UDP, datagram());
                req.iface = Some(0);
                cx.send(req).unwrap();
                cx.set_timer(SimDuration::from_secs(1), 1);
            } else {
                cx.set_receive_any(0, true);
            }
        });
        // b: at 0.5 s and 1.5 s, unicast to 10.0.0.9 at a's MAC, without ARP.
        let b: Script = Rc::new(|cx, token| {
            if token == 0 {
                cx.set_timer(SimDuration::from_millis(500), 1);
                cx.set_timer(SimDuration::from_millis(1500), 2);
                return;
            }
            let mut req = SendRequest::new(LEASED, ip_proto::UDP, datagram());
            req.iface = Some(0);
            req.link_dst = Some(mac(1));
            cx.send(req).unwrap();
        });
        let (mut w, [la, lb]) = world(a, b);
        w.start();
        run_until(&mut w, 3);
        let got = lb.borrow();
        assert!(
            matches!(&got[..], [Upcall::Datagram(d)] if d.src.is_unspecified() && d.dst == Ipv4Addr::BROADCAST),
            "{got:?}"
        );
        // Only the second unicast arrives: a accepted any destination from t=1 s on.
        let got = la.borrow();
        assert!(
            matches!(&got[..], [Upcall::Datagram(d)] if d.dst == LEASED && d.src == B),
            "{got:?}"
        );
        assert_eq!(w.counters(NodeId(1)).arp_failures, 0);
    }

    #[test]
    fn a_probe_for_a_used_address_is_answered_and_reported_as_a_conflict() {
        let a: Script = Rc::new(|cx, token| {
            if token == 0 {
                cx.watch_address(0, B, true);
                cx.watch_address(0, LEASED, true);
                cx.arp_probe(0, B);
                cx.arp_probe(0, LEASED);
            }
        });
        let (mut w, [la, _]) = world(a, Rc::new(|_, _| {}));
        w.start();
        run_until(&mut w, 1);
        assert_eq!(
            *la.borrow(),
            vec![Upcall::AddressConflict {
                iface: 0,
                addr: B,
                mac: mac(2)
            }]
        );
    }

    #[test]
    fn addresses_and_routes_set_at_run_time_work_and_a_crash_undoes_them() {
        let a: Script = Rc::new(|cx, token| {
            if token == 0 {
                cx.configure_iface(0, LEASED, 24).unwrap();
                cx.set_route(Prefix::new(Ipv4Addr::UNSPECIFIED, 0), 0, Some(B));
                assert_eq!(cx.primary_addr(), Some(LEASED));
                assert_eq!(cx.resolve_name("a"), Some(LEASED));
                // Through the default route: ARP for the gateway b, then b gets it.
                let req = SendRequest::new(Ipv4Addr::new(192, 0, 2, 1), ip_proto::UDP, datagram());
                cx.send(req).unwrap();
                cx.arp_announce(0, LEASED);
            }
        });
        // b takes any datagram, so it sees the one routed through it as the gateway.
        let (mut w, [_, lb]) = world(a, Rc::new(|cx, _| cx.set_receive_any(0, true)));
        w.start();
        run_until(&mut w, 1);
        assert!(
            matches!(&lb.borrow()[..], [Upcall::Datagram(d)] if d.src == LEASED && d.dst.octets()[0] == 192),
            "{:?}",
            lb.borrow()
        );
        let b = w.ip_node(NodeId(1)).unwrap();
        assert_eq!(b.arp_entry(w.now(), 0, LEASED), Some(mac(1)));
        let a = w.ip_node(NodeId(0)).unwrap();
        assert_eq!(a.routes.len(), 2);
        // Carrier changes reach the stacks at both ends.
        w.schedule_fault(SimTime::from_secs(2), FaultAction::LinkDown(LinkId(0)));
        w.schedule_fault(SimTime::from_secs(3), FaultAction::LinkUp(LinkId(0)));
        run_until(&mut w, 4);
        assert_eq!(
            lb.borrow()[1..],
            [
                Upcall::Carrier {
                    iface: 0,
                    up: false
                },
                Upcall::Carrier { iface: 0, up: true }
            ]
        );
        w.schedule_fault(SimTime::from_secs(5), FaultAction::NodeCrash(NodeId(0)));
        run_until(&mut w, 6);
        let a = w.ip_node(NodeId(0)).unwrap();
        assert!(!a.ifaces[0].is_configured());
        assert!(a.routes.is_empty(), "{:?}", a.routes);
        assert_eq!(a.primary_addr(), None);
    }

    #[test]
    fn a_crash_cuts_off_the_frame_being_serialized_and_its_duplicate() {
        // a broadcasts three datagrams at boot; each 60-byte frame takes 10 ms at 48 kb/s
        // and every frame is duplicated. a crashes at 15 ms, while the second is on the
        // wire: only the first (and its copy) reaches b.
        let a: Script = Rc::new(|cx, token| {
            if token == 0 {
                for _ in 0..3 {
                    let mut req = SendRequest::new(Ipv4Addr::BROADCAST, ip_proto::UDP, datagram());
                    req.iface = Some(0);
                    cx.send(req).unwrap();
                }
            }
        });
        let (mut w, [_, lb]) = world_with(
            a,
            Rc::new(|_, _| {}),
            ChannelConfig {
                rate_bps: 48_000,
                delay: SimDuration::from_millis(1),
                duplicate: 1.0,
                ..Default::default()
            },
        );
        w.schedule_fault(SimTime(15_000_000), FaultAction::NodeCrash(NodeId(0)));
        w.start();
        run_until(&mut w, 1);
        assert_eq!(lb.borrow().len(), 2, "{:?}", lb.borrow());
        let stats = w.links()[0].dirs[0].stats;
        assert_eq!((stats.tx_packets, stats.down_drops), (2, 2));
        assert_eq!(w.net.packets.live(), 0, "every frame was freed");
    }

    /// a sends b a datagram every second from 1 s to 62 s, and one at 75 s, while b
    /// crashes at `crash` if given; returns a's ARP trace as (ns, event, target or ip) and
    /// b's upcall log.
    fn arp_run(crash: Option<u64>) -> (Vec<(u64, &'static str)>, usize, Vec<Upcall>) {
        let a: Script = Rc::new(|cx, token| {
            if token == 0 {
                cx.configure_iface(0, LEASED, 24).unwrap();
            } else {
                let _ = cx.send(SendRequest::new(B, ip_proto::UDP, datagram()));
            }
            match token {
                0..=61 => {
                    cx.set_timer(SimDuration::from_secs(1), token + 1);
                }
                62 => {
                    cx.set_timer(SimDuration::from_secs(13), 75);
                }
                _ => {}
            }
        });
        let (mut w, [la, lb]) = world(a, Rc::new(|_, _| {}));
        let buf = Rc::new(RefCell::new(crate::trace::TraceBuffer::default()));
        w.net.tracer.attach(
            Box::new(crate::trace::SharedTraceBuffer(Rc::clone(&buf))),
            &[Category::Arp],
        );
        if let Some(s) = crash {
            w.schedule_fault(SimTime::from_secs(s), FaultAction::NodeCrash(NodeId(1)));
        }
        w.start();
        run_until(&mut w, 90);
        let arp = buf
            .borrow()
            .records
            .iter()
            .filter(|r| r.node == "a")
            .map(|r| (r.t.as_nanos(), r.event))
            .collect();
        let got = lb.borrow().len();
        let log = la.borrow().clone();
        (arp, got, log)
    }

    // RB-ARP-01, with Linux's NUD states: an entry is REACHABLE for arp_cache_timeout (60
    // s) after its confirmation, then STALE. Using a stale entry keeps sending to its MAC
    // and, after delay_first_probe_time (5 s), sends unicast requests (ucast_solicit 3, 1 s
    // apart); an answer makes it REACHABLE again, silence drops it, and the next packet
    // resolves by broadcast.
    #[test]
    fn a_stale_arp_entry_is_used_while_unicast_probes_reconfirm_it() {
        // The reply to the first request comes back after two crossings of a 60-byte frame
        // (480 ns at 1 Gb/s) and 1 ms: the entry is confirmed at 1.00200096 s. The send at
        // 61 s still finds it reachable; the one at 62 s finds it stale.
        let rtt = 2 * (480 + 1_000_000);
        let s = 1_000_000_000u64;
        let resolved_then_stale = [
            (s, "arp_request"),
            (s + rtt, "arp_resolved"),
            (67 * s, "arp_reconfirm"),
        ];
        let (arp, got, _) = arp_run(None);
        assert_eq!(
            arp,
            [&resolved_then_stale[..], &[(67 * s + rtt, "arp_resolved")]].concat()
        );
        assert_eq!(got, 63, "every datagram arrived, none waited for ARP");
        // b crashed at 30 s: the three unicast probes go unanswered, the entry is dropped
        // at 70 s, and the datagram of 75 s starts a broadcast resolution that fails.
        let (arp, got, log) = arp_run(Some(30));
        assert_eq!(
            arp,
            [
                &resolved_then_stale[..],
                &[
                    (68 * s, "arp_reconfirm"),
                    (69 * s, "arp_reconfirm"),
                    (70 * s, "arp_failed"),
                    (75 * s, "arp_request"),
                    (76 * s, "arp_request"),
                    (77 * s, "arp_request"),
                    (78 * s, "arp_failed"),
                ][..],
            ]
            .concat()
        );
        assert_eq!(got, 29);
        assert!(
            matches!(log.last(), Some(Upcall::Icmp(_))),
            "the last datagram's sender hears host unreachable: {log:?}"
        );
    }

    #[test]
    fn a_restarted_node_draws_new_random_numbers() {
        // Each boot of a draws from its "x" stream; b never restarts.
        let draws: Rc<RefCell<Vec<(&str, u64)>>> = Rc::default();
        let (da, db) = (Rc::clone(&draws), Rc::clone(&draws));
        let a: Script = Rc::new(move |cx, _| da.borrow_mut().push(("a", cx.rng("x").next_u64())));
        let b: Script = Rc::new(move |cx, token| {
            db.borrow_mut().push(("b", cx.rng("x").next_u64()));
            if token == 0 {
                cx.set_timer(SimDuration::from_secs(3), 1);
            }
        });
        let (mut w, _) = world(a, b);
        let first_boot = w.net.rng.stream("node:a:x").next_u64();
        for (at, action) in [
            (1, FaultAction::NodeCrash(NodeId(0))),
            (2, FaultAction::NodeRestart(NodeId(0))),
            (3, FaultAction::NodeCrash(NodeId(0))),
            (4, FaultAction::NodeRestart(NodeId(0))),
        ] {
            w.schedule_fault(SimTime::from_secs(at), action);
        }
        w.start();
        run_until(&mut w, 5);
        let got = draws.borrow();
        let of = |node: &str| -> Vec<u64> {
            got.iter()
                .filter(|(n, _)| *n == node)
                .map(|(_, v)| *v)
                .collect()
        };
        let a = of("a");
        assert_eq!(a.len(), 3);
        assert_eq!(a[0], first_boot, "the first boot keeps its stream");
        assert!(a[0] != a[1] && a[1] != a[2] && a[0] != a[2], "{a:?}");
        assert_eq!(a[1], w.net.rng.stream("node:a:boot1:x").next_u64());
        let b = of("b");
        assert_eq!(b, vec![w.net.rng.stream("node:b:x").next_u64(); 2]);
    }
}

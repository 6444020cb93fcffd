//! Workloads shared by the criterion benches (`benches/scheduler.rs`,
//! `benches/forwarding.rs`) and the quick number printer (`examples/throughput.rs`).
//!
//! - [`HoldModel`]: the classic steady-state "hold" benchmark of an event set. The queue
//!   holds N pending events; each step pops the earliest and schedules one more at
//!   now + a pseudo-random delay, so the queue size stays N.
//! - [`TimerModel`]: the same with cancellable timers: each step pops one event, sets two
//!   timers and cancels one of them (a retransmission timer that is usually cancelled).
//! - [`ForwardingModel`]: a whole [`World`]: host - 8 routers - host, with a source that
//!   keeps a UDP-like flow going at line rate. The figure is packet-hops (link traversals)
//!   per second of wall time.

#![allow(dead_code)] // each bench target uses part of this module

use sim_core::ip::{Iface, IpConfig, IpNode, SendRequest, Upcall};
use sim_core::link::ChannelConfig;
use sim_core::packet::{ip_proto, ChecksumField, HeaderBytes, IpBody, MacAddr, Payload};
use sim_core::packet::{TransportPacket, ETHERNET_HEADER_LEN, IPV4_HEADER_LEN};
use sim_core::route::EcmpMode;
use sim_core::sched::{Scheduler, TimerHandle};
use sim_core::time::{SimDuration, SimTime};
use sim_core::topology::{self, NodeKind, TopoLink, TopoNode};
use sim_core::world::{NodeCx, NodeId, NodeSpec, Stack, World};
use std::net::Ipv4Addr;

/// A small deterministic generator for delays (xorshift64*).
#[derive(Clone, Copy)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }
    #[inline]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A delay in [1, 2^20] ns (up to ~1 ms).
    #[inline]
    pub fn delay(&mut self) -> SimDuration {
        SimDuration::from_nanos((self.next() >> 44) + 1)
    }
}

/// An event the size of the world's own `Event` payload (16 bytes).
#[derive(Clone, Copy, Debug)]
pub struct Ev {
    pub a: u32,
    pub b: u32,
    pub token: u64,
}

/// Steady-state hold model with plain (non-cancellable) events.
pub struct HoldModel {
    pub sched: Scheduler<Ev>,
    rng: XorShift,
}

impl HoldModel {
    pub fn new(n: usize) -> Self {
        let mut sched = Scheduler::new();
        let mut rng = XorShift::new(0x9e37_79b9_7f4a_7c15);
        for i in 0..n {
            let at = SimTime::ZERO + rng.delay();
            sched.schedule(
                at,
                Ev {
                    a: i as u32,
                    b: 0,
                    token: i as u64,
                },
            );
        }
        HoldModel { sched, rng }
    }

    /// Pops and reschedules `steps` events; returns a checksum so nothing is optimised away.
    #[inline(never)]
    pub fn run(&mut self, steps: u64) -> u64 {
        let mut sum = 0u64;
        for _ in 0..steps {
            let (t, ev) = self.sched.pop().expect("the hold model never runs dry");
            sum = sum.wrapping_add(ev.token);
            let d = self.rng.delay();
            self.sched.schedule(t + d, ev);
        }
        sum
    }
}

/// Steady-state hold model with cancellable timers: each step pops one event and sets two
/// timers, cancelling the first. The heap therefore also carries cancelled entries, which
/// the scheduler discards when they surface.
pub struct TimerModel {
    pub sched: Scheduler<Ev>,
    rng: XorShift,
    spare: Option<TimerHandle>,
}

impl TimerModel {
    pub fn new(n: usize) -> Self {
        let mut sched = Scheduler::new();
        let mut rng = XorShift::new(0x2545_f491_4f6c_dd1d);
        for i in 0..n {
            let at = SimTime::ZERO + rng.delay();
            sched.schedule_timer(
                at,
                Ev {
                    a: i as u32,
                    b: 0,
                    token: i as u64,
                },
            );
        }
        TimerModel {
            sched,
            rng,
            spare: None,
        }
    }

    /// Runs `steps` steps (each pops one live event); returns a checksum.
    #[inline(never)]
    pub fn run(&mut self, steps: u64) -> u64 {
        let mut sum = 0u64;
        for _ in 0..steps {
            let (t, ev) = self.sched.pop().expect("the timer model never runs dry");
            sum = sum.wrapping_add(ev.token);
            // A retransmission timer that will be cancelled, and the event that replaces
            // the popped one.
            let d = self.rng.delay();
            let cancelled = self.sched.schedule_timer(t + d + d, ev);
            if let Some(h) = self.spare.replace(cancelled) {
                self.sched.cancel(h);
            }
            let d = self.rng.delay();
            self.sched.schedule_timer(t + d, ev);
        }
        sum
    }
}

// ------------------------------------------------------------------ forwarding

/// Routers between the two hosts.
pub const ROUTERS: usize = 8;
/// UDP payload bytes per datagram.
pub const PAYLOAD: u32 = 1000;
/// Link rate and propagation delay.
pub const RATE_BPS: u64 = 10_000_000_000;
pub const DELAY: SimDuration = SimDuration::from_micros(5);

/// Sends one pre-encoded UDP datagram to `dst` every `interval` (a timer per datagram).
struct Source {
    dst: Ipv4Addr,
    interval: SimDuration,
    packet: TransportPacket,
}

impl Stack for Source {
    fn boot(&mut self, cx: &mut NodeCx<'_>) {
        cx.set_timer(SimDuration::ZERO, 0);
    }
    fn on_timer(&mut self, cx: &mut NodeCx<'_>, _token: u64) {
        let req = SendRequest::new(
            self.dst,
            ip_proto::UDP,
            IpBody::Transport(self.packet.clone()),
        );
        let _ = cx.send(req);
        cx.set_timer(self.interval, 0);
    }
    fn on_upcall(&mut self, _cx: &mut NodeCx<'_>, _upcall: Upcall) {}
}

/// Accepts and drops whatever arrives.
struct Sink;

impl Stack for Sink {
    fn boot(&mut self, _cx: &mut NodeCx<'_>) {}
    fn on_timer(&mut self, _cx: &mut NodeCx<'_>, _token: u64) {}
    fn on_upcall(&mut self, _cx: &mut NodeCx<'_>, _upcall: Upcall) {}
}

/// A UDP header (RFC 768) as bytes, checksum left zero for the core to fill in.
fn udp_packet(src_port: u16, dst_port: u16, payload: u32) -> TransportPacket {
    let len = 8 + payload as u16;
    let mut h = [0u8; 8];
    h[0..2].copy_from_slice(&src_port.to_be_bytes());
    h[2..4].copy_from_slice(&dst_port.to_be_bytes());
    h[4..6].copy_from_slice(&len.to_be_bytes());
    TransportPacket {
        header: HeaderBytes::new(&h).expect("8 bytes fit"),
        payload: Payload::zeros(payload),
        checksum: ChecksumField::At {
            offset: 6,
            zero_as_ones: true,
        },
    }
}

/// host "src" - r1 - ... - r8 - host "dst", addressed and routed automatically.
pub struct ForwardingModel {
    pub world: World,
}

impl ForwardingModel {
    pub fn new() -> Self {
        let mut nodes = vec![TopoNode {
            name: "src".into(),
            kind: NodeKind::Host,
            dynamic_address: false,
        }];
        for i in 1..=ROUTERS {
            nodes.push(TopoNode {
                name: format!("r{i}"),
                kind: NodeKind::Router,
                dynamic_address: false,
            });
        }
        nodes.push(TopoNode {
            name: "dst".into(),
            kind: NodeKind::Host,
            dynamic_address: false,
        });
        let links: Vec<TopoLink> = (0..nodes.len() - 1)
            .map(|i| TopoLink {
                a: i,
                b: i + 1,
                subnet: None,
                a_addr: None,
                b_addr: None,
            })
            .collect();
        let plan = topology::plan_addresses(&nodes, &links).expect("a chain is addressable");
        let routes = topology::auto_routes(
            &nodes,
            &plan,
            &vec![true; links.len()],
            &vec![true; nodes.len()],
        );
        let dst_addr = plan.ifaces[nodes.len() - 1][0]
            .expect("dst has an address")
            .0;

        // One datagram per serialization time: the source keeps the path busy at line rate
        // without building a queue.
        let frame = ETHERNET_HEADER_LEN as u64 + IPV4_HEADER_LEN as u64 + 8 + PAYLOAD as u64;
        let interval = SimDuration::serialization(frame, RATE_BPS);

        let mut world = World::new(1);
        for (ni, node) in nodes.iter().enumerate() {
            let ifaces: Vec<Iface> = plan.ifaces[ni]
                .iter()
                .enumerate()
                .map(|(port, a)| {
                    let (addr, prefix) = a.expect("hosts and routers have addresses");
                    Iface {
                        mac: MacAddr([0x02, 0, 0, ni as u8, port as u8, 1]),
                        addr,
                        prefix,
                        mtu: 1500,
                    }
                })
                .collect();
            let forwarding = node.kind == NodeKind::Router;
            let mut ip = IpNode::new(
                NodeId(ni as u32),
                forwarding,
                ifaces,
                IpConfig::default(),
                EcmpMode::PerFlow,
                ni as u64,
                world.net.rng.stream(&format!("ecmp-spray:{}", node.name)),
            );
            for r in routes[ni].iter().flatten() {
                ip.routes.insert(r.clone());
            }
            let factory: sim_core::world::StackFactory = match ni {
                0 => {
                    let packet = udp_packet(40000, 5001, PAYLOAD);
                    Box::new(move || {
                        Box::new(Source {
                            dst: dst_addr,
                            interval,
                            packet: packet.clone(),
                        }) as Box<dyn Stack>
                    })
                }
                _ => Box::new(|| Box::new(Sink) as Box<dyn Stack>),
            };
            world.add_node(
                &node.name,
                NodeSpec::Ip {
                    ip: Box::new(ip),
                    factory: Some(factory),
                },
            );
        }
        for (i, l) in links.iter().enumerate() {
            let cfg = ChannelConfig {
                rate_bps: RATE_BPS,
                delay: DELAY,
                ..ChannelConfig::default()
            };
            world.add_link(
                &format!("l{i}"),
                NodeId(l.a as u32),
                NodeId(l.b as u32),
                1500,
                cfg.clone(),
                cfg,
            );
        }
        world.start();
        let mut m = ForwardingModel { world };
        // Warm up: boot, ARP on every hop, and fill the pipeline.
        m.run_events(100_000);
        m
    }

    /// Frames that have crossed (started on) a link so far, over all links and directions.
    pub fn packet_hops(&self) -> u64 {
        self.world
            .links()
            .iter()
            .flat_map(|l| l.dirs.iter())
            .map(|c| c.stats.tx_packets)
            .sum()
    }

    /// Runs `n` more events; returns the packet-hops they made.
    #[inline(never)]
    pub fn run_events(&mut self, n: u64) -> u64 {
        let before = self.packet_hops();
        let budget = self.world.events() + n;
        self.world.run(SimTime::MAX, Some(budget), || false);
        self.packet_hops() - before
    }
}

impl Default for ForwardingModel {
    fn default() -> Self {
        Self::new()
    }
}

//! Test drivers for the TCP stack, packetdrill style: a [`Host`] is one stack with a
//! recording environment (inject segments, advance time, inspect what went out), and a
//! [`Pair`] wires two hosts through a wire with a delay and a programmable drop rule.
//!
//! Compiled for tests only; nothing here runs in a simulation.

use super::seq::SeqNum;
use super::wire::{TcpOptions, TcpRepr};
use super::{TcpConfig, TcpEnv, TcpEvent, TcpSocketId, TcpStack};
use sim_core::ip::SendError;
use sim_core::packet::{Ecn, Payload, TransportPacket};
use sim_core::rng::RngFactory;
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::TraceValue;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{Ipv4Addr, SocketAddrV4};

/// A segment a host sent.
#[derive(Clone, Debug)]
pub struct Sent {
    pub at: SimTime,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub seg: TcpRepr,
    pub payload: Payload,
    /// The ECN field of the segment's IP header.
    pub ecn: Ecn,
}

impl Sent {
    pub fn len(&self) -> usize {
        self.payload.len()
    }
    pub fn flags(&self) -> u8 {
        self.seg.flags
    }
    pub fn is(&self, f: u8) -> bool {
        self.seg.flags == f
    }
}

pub struct TestEnv {
    pub now: SimTime,
    pub addr: Ipv4Addr,
    pub mtu: u32,
    pub sent: Vec<Sent>,
    pub events: Vec<(usize, TcpSocketId, TcpEvent)>,
    pub no_route: bool,
}

impl TcpEnv for TestEnv {
    fn now(&self) -> SimTime {
        self.now
    }
    fn send(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ecn: Ecn,
        pkt: TransportPacket,
    ) -> Result<(), SendError> {
        if self.no_route && dst != self.addr {
            return Err(SendError::NetUnreachable(dst));
        }
        let seg = TcpRepr::parse(&pkt).expect("the stack emits valid headers");
        self.sent.push(Sent {
            at: self.now,
            src,
            dst,
            seg,
            payload: pkt.payload,
            ecn,
        });
        Ok(())
    }
    fn route(&self, _dst: Ipv4Addr) -> Option<(Ipv4Addr, u32)> {
        (!self.no_route).then_some((self.addr, self.mtu))
    }
    fn is_local(&self, addr: Ipv4Addr) -> bool {
        addr == self.addr
    }
    fn notify(&mut self, owner: usize, sock: TcpSocketId, event: TcpEvent) {
        self.events.push((owner, sock, event));
    }
    fn tracing(&self) -> bool {
        false
    }
    fn trace(&mut self, _event: &'static str, _fields: &[(&'static str, TraceValue)]) {}
}

/// One TCP stack and its recorded outputs.
pub struct Host {
    pub tcp: TcpStack,
    pub env: TestEnv,
}

pub const APP: usize = 0;

impl Host {
    pub fn new(addr: Ipv4Addr, cfg: TcpConfig) -> Host {
        let mut rng = RngFactory::new(7).stream(&format!("tcp:{addr}"));
        Host {
            tcp: TcpStack::new(cfg, &mut rng),
            env: TestEnv {
                now: SimTime::ZERO,
                addr,
                mtu: 1500,
                sent: Vec::new(),
                events: Vec::new(),
                no_route: false,
            },
        }
    }

    pub fn addr(&self, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self.env.addr, port)
    }

    /// Fires every timer due up to `t`, in order, and leaves the clock at `t`.
    pub fn advance_to(&mut self, t: SimTime) {
        while let Some(p) = self.tcp.poll_at() {
            if p > t {
                break;
            }
            self.env.now = self.env.now.max(p);
            self.tcp.on_timers(&mut self.env);
        }
        self.env.now = self.env.now.max(t);
    }

    pub fn inject(&mut self, from: Ipv4Addr, seg: TcpRepr, payload: Payload) {
        self.inject_ecn(from, seg, payload, Ecn::NotEct);
    }

    /// Injects a segment whose IP header carries `ecn`.
    pub fn inject_ecn(&mut self, from: Ipv4Addr, seg: TcpRepr, payload: Payload, ecn: Ecn) {
        let pkt = seg.emit(payload);
        let dst = self.env.addr;
        self.tcp.input(&mut self.env, from, dst, ecn, &pkt);
    }

    pub fn take_sent(&mut self) -> Vec<Sent> {
        std::mem::take(&mut self.env.sent)
    }

    pub fn take_events(&mut self) -> Vec<(usize, TcpSocketId, TcpEvent)> {
        std::mem::take(&mut self.env.events)
    }

    pub fn listen(&mut self, port: u16, backlog: u32) -> TcpSocketId {
        let s = self.tcp.socket(APP);
        let a = self.addr(port);
        self.tcp.bind(&mut self.env, s, a).unwrap();
        self.tcp.listen(&mut self.env, s, backlog).unwrap();
        s
    }

    pub fn connect(&mut self, to: SocketAddrV4) -> TcpSocketId {
        let s = self.tcp.socket(APP);
        self.tcp.connect(&mut self.env, s, to).unwrap();
        s
    }

    pub fn send(&mut self, s: TcpSocketId, data: &Payload) -> usize {
        self.tcp.send(&mut self.env, s, data).unwrap_or(0)
    }

    pub fn read_all(&mut self, s: TcpSocketId) -> (Vec<Payload>, bool) {
        let mut out = Vec::new();
        let mut eof = false;
        loop {
            match self.tcp.recv(&mut self.env, s, usize::MAX, &mut out) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        (out, eof)
    }
}

/// A peer segment for packetdrill-style tests.
pub fn seg(src_port: u16, dst_port: u16, fl: u8, seq: u32, ack: u32, window: u16) -> TcpRepr {
    TcpRepr {
        src_port,
        dst_port,
        seq: SeqNum(seq),
        ack: SeqNum(ack),
        flags: fl,
        window,
        options: TcpOptions::default(),
    }
}

/// The options Linux puts in a SYN with MSS `mss`.
pub fn linux_syn_options(mss: u16, tsval: u32, tsecr: u32) -> TcpOptions {
    TcpOptions {
        mss: Some(mss),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some((tsval, tsecr)),
        ..TcpOptions::default()
    }
}

pub fn at_ms(ms: u64) -> SimTime {
    SimTime::from_nanos(ms * 1_000_000)
}

pub fn at_s(s: u64) -> SimTime {
    SimTime::from_secs(s)
}

/// Decides whether the wire loses a segment: (sender index, segment, how many segments
/// that sender has sent so far).
pub type DropRule = Box<dyn FnMut(usize, &Sent, u64) -> bool>;

/// (extra delay, duplicate?) for a segment: (sender index, segment, count).
pub type ImpairRule = Box<dyn FnMut(usize, &Sent, u64) -> (SimDuration, bool)>;

/// Two hosts joined by a wire with a fixed one-way delay.
pub struct Pair {
    pub hosts: [Host; 2],
    pub delay: SimDuration,
    pub drop: Option<DropRule>,
    /// Extra delay (reordering) and duplication per segment.
    pub impair: Option<ImpairRule>,
    /// Marks an ECN-capable segment CE (as a queue would) when this says so.
    pub mark: Option<DropRule>,
    /// Every segment that went onto the wire, in order, with its sender's index.
    pub log: Vec<(usize, Sent, bool)>,
    queue: BinaryHeap<Reverse<(SimTime, u64, usize)>>,
    in_flight: Vec<Option<Sent>>,
    sent_count: [u64; 2],
    seq: u64,
    pub now: SimTime,
}

impl Pair {
    pub fn new(cfg_a: TcpConfig, cfg_b: TcpConfig, delay: SimDuration) -> Pair {
        Pair {
            hosts: [
                Host::new(Ipv4Addr::new(10, 0, 0, 1), cfg_a),
                Host::new(Ipv4Addr::new(10, 0, 0, 2), cfg_b),
            ],
            delay,
            drop: None,
            impair: None,
            mark: None,
            log: Vec::new(),
            queue: BinaryHeap::new(),
            in_flight: Vec::new(),
            sent_count: [0; 2],
            seq: 0,
            now: SimTime::ZERO,
        }
    }

    /// Moves what the hosts sent onto the wire.
    pub fn collect(&mut self) {
        for i in 0..2 {
            for mut s in self.hosts[i].take_sent() {
                self.sent_count[i] += 1;
                let n = self.sent_count[i];
                let dropped = self.drop.as_mut().is_some_and(|d| d(i, &s, n));
                if s.ecn != Ecn::NotEct && self.mark.as_mut().is_some_and(|m| m(i, &s, n)) {
                    s.ecn = Ecn::Ce;
                }
                self.log.push((i, s.clone(), dropped));
                if dropped {
                    continue;
                }
                let to = if s.dst == self.hosts[0].env.addr {
                    0
                } else {
                    1
                };
                let (extra, dup) = self
                    .impair
                    .as_mut()
                    .map_or((SimDuration::ZERO, false), |f| f(i, &s, n));
                let at = s.at + self.delay + extra;
                if dup {
                    self.in_flight.push(Some(s.clone()));
                    self.queue.push(Reverse((at, self.seq, to)));
                    self.seq += 1;
                }
                self.in_flight.push(Some(s));
                self.queue.push(Reverse((at, self.seq, to)));
                self.seq += 1;
            }
        }
    }

    /// Runs the pair until `t` (deliveries and timers in time order).
    pub fn run_until(&mut self, t: SimTime) {
        loop {
            self.collect();
            let next_wire = self.queue.peek().map(|Reverse((at, ..))| *at);
            let next_timer = (0..2)
                .filter_map(|i| self.hosts[i].tcp.poll_at().map(|p| (p, i)))
                .min();
            let wire_first = match (next_wire, next_timer) {
                (Some(w), Some((p, _))) => w <= p,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if wire_first {
                let Some(Reverse((at, seq, to))) = self.queue.pop() else {
                    break;
                };
                if at > t {
                    self.queue.push(Reverse((at, seq, to)));
                    break;
                }
                self.now = at;
                let idx = seq as usize;
                let Some(s) = self.in_flight.get_mut(idx).and_then(|x| x.take()) else {
                    continue;
                };
                let h = &mut self.hosts[to];
                h.advance_to(at);
                h.inject_ecn(s.src, s.seg, s.payload, s.ecn);
            } else {
                let Some((p, i)) = next_timer else { break };
                if p > t {
                    break;
                }
                self.now = p;
                self.hosts[i].advance_to(p);
            }
        }
        self.now = self.now.max(t);
        for h in &mut self.hosts {
            h.advance_to(t);
        }
        self.collect();
    }

    pub fn flags_log(&self) -> Vec<(usize, u8)> {
        self.log.iter().map(|(i, s, _)| (*i, s.seg.flags)).collect()
    }
}

/// Flag names for assertions and failure messages (`"S."` for SYN-ACK).
pub fn flag_str(f: u8) -> String {
    super::wire::flag_names(f)
}

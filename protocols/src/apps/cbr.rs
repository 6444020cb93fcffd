//! Constant-bit-rate UDP: a sender that emits fixed-size datagrams at a fixed rate, and a
//! sink that counts them.
//!
//! Each datagram starts with a 24-byte header (magic "NDCB", flow id u32, sequence u64,
//! send time u64 ns, all big-endian) and is padded with zeros to `size` payload bytes. The
//! sink uses it to attribute bytes to the sender's flow, detect loss and duplicates by
//! sequence number, and measure one-way delay. Pointed at a UDP echo server, the sender
//! measures round-trip times from the echoes.
//!
//! The rate counts UDP payload bits, as iperf does: the interval between datagrams is
//! size * 8 / rate.
//!
//! The sink remembers which of the last [`SEQ_WINDOW`] sequence numbers (counting back
//! from the highest seen) have arrived, in a bitmap of fixed size allocated with the flow's
//! first datagram, so receiving allocates nothing however long the run. A datagram further
//! behind than that cannot be told from a duplicate: it is counted as one, and a datagram
//! that was lost stays lost.

use crate::app::{App, Os};
use crate::udp::SocketId;
use sim_core::metrics::FlowId;
use sim_core::packet::Payload;
use sim_core::time::{SimDuration, SimTime};
use std::net::SocketAddrV4;

const MAGIC: &[u8; 4] = b"NDCB";
pub const CBR_HEADER_LEN: u32 = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CbrHeader {
    flow: u32,
    seq: u64,
    sent_ns: u64,
}

fn encode_header(h: CbrHeader) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[..4].copy_from_slice(MAGIC);
    b[4..8].copy_from_slice(&h.flow.to_be_bytes());
    b[8..16].copy_from_slice(&h.seq.to_be_bytes());
    b[16..24].copy_from_slice(&h.sent_ns.to_be_bytes());
    b
}

fn decode_header(p: &Payload) -> Option<CbrHeader> {
    let h = p.head();
    if h.len() < 24 || &h[..4] != MAGIC {
        return None;
    }
    Some(CbrHeader {
        flow: u32::from_be_bytes(h[4..8].try_into().ok()?),
        seq: u64::from_be_bytes(h[8..16].try_into().ok()?),
        sent_ns: u64::from_be_bytes(h[16..24].try_into().ok()?),
    })
}

#[derive(Clone, Debug, PartialEq)]
pub struct UdpCbrConfig {
    pub name: String,
    /// "node:port" or "a.b.c.d:port" target, already split.
    pub to_host: String,
    pub to_port: u16,
    pub rate_bps: u64,
    /// UDP payload bytes per datagram (at least 24).
    pub size: u32,
    /// Stop sending after this long (None: until the run ends).
    pub duration: Option<SimDuration>,
    /// Stop after this many datagrams.
    pub count: Option<u64>,
    /// The TOS byte of the datagrams (IP_TOS): DSCP and ECN bits, e.g. 2 for ECT(0).
    pub tos: u8,
    pub flow: FlowId,
}

pub struct UdpCbr {
    cfg: UdpCbrConfig,
    sock: Option<SocketId>,
    dst: Option<SocketAddrV4>,
    seq: u64,
    started: SimTime,
    interval: SimDuration,
    errors: u64,
    note: Option<String>,
}

impl UdpCbr {
    pub fn new(cfg: UdpCbrConfig) -> Self {
        let size = cfg.size.max(CBR_HEADER_LEN);
        let interval = SimDuration::serialization(size as u64, cfg.rate_bps.max(1));
        UdpCbr {
            cfg: UdpCbrConfig { size, ..cfg },
            sock: None,
            dst: None,
            seq: 0,
            started: SimTime::ZERO,
            interval,
            errors: 0,
            note: None,
        }
    }

    fn send_one(&mut self, os: &mut Os<'_, '_>) {
        let (Some(sock), Some(dst)) = (self.sock, self.dst) else {
            return;
        };
        let now = os.now();
        if self.cfg.duration.is_some_and(|d| now >= self.started + d)
            || self.cfg.count.is_some_and(|c| self.seq >= c)
        {
            return;
        }
        let head = encode_header(CbrHeader {
            flow: self.cfg.flow.0,
            seq: self.seq,
            sent_ns: now.as_nanos(),
        });
        self.seq += 1;
        let size = self.cfg.size;
        if let Some(f) = os.flow(self.cfg.flow) {
            f.on_tx(now, size as u64);
        }
        if os
            .udp_send(sock, dst, Payload::with_head(&head, size), None)
            .is_err()
        {
            self.errors += 1;
        }
        os.set_timer(self.interval, 0);
    }
}

impl App for UdpCbr {
    fn name(&self) -> &str {
        &self.cfg.name
    }
    fn start(&mut self, os: &mut Os<'_, '_>) {
        self.started = os.now();
        let Some(ip) = os.resolve(&self.cfg.to_host) else {
            self.note = Some(format!("cannot resolve {}", self.cfg.to_host));
            return;
        };
        self.dst = Some(SocketAddrV4::new(ip, self.cfg.to_port));
        self.sock = os.udp_bind(None).ok();
        if let Some(s) = self.sock {
            let _ = os.udp_set_tos(s, self.cfg.tos);
        }
        self.send_one(os);
    }
    fn on_timer(&mut self, os: &mut Os<'_, '_>, _token: u64) {
        self.send_one(os);
    }
    /// Echoed datagrams give round-trip times.
    fn on_udp(
        &mut self,
        os: &mut Os<'_, '_>,
        _sock: SocketId,
        _from: SocketAddrV4,
        payload: &Payload,
    ) {
        if let Some(h) = decode_header(payload) {
            if h.flow == self.cfg.flow.0 {
                let rtt = os.now().as_nanos().saturating_sub(h.sent_ns);
                let now = os.now();
                if let Some(f) = os.flow(self.cfg.flow) {
                    f.on_rx(now, payload.len() as u64);
                    f.rtt.add(rtt);
                }
            }
        }
    }
    fn report(&self) -> Vec<String> {
        let dst = self
            .dst
            .map(|d| d.to_string())
            .unwrap_or_else(|| self.cfg.to_host.clone());
        let mut v = vec![format!(
            "udp cbr to {dst}: sent {} datagrams of {} bytes at {} b/s",
            self.seq, self.cfg.size, self.cfg.rate_bps
        )];
        if self.errors > 0 {
            v.push(format!("  {} send errors", self.errors));
        }
        if let Some(n) = &self.note {
            v.push(format!("  {n}"));
        }
        v
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct UdpSinkConfig {
    pub name: String,
    pub port: u16,
}

/// How many sequence numbers, counting back from the highest received, the sink remembers
/// (a 8 KiB bitmap per flow).
pub const SEQ_WINDOW: u64 = 1 << 16;

struct FlowRx {
    flow: u32,
    /// A ring: bit `seq % SEQ_WINDOW` is set when `seq` arrived, for the `SEQ_WINDOW`
    /// sequence numbers up to `max_seq`.
    seen: Box<[u64]>,
    unique: u64,
    max_seq: Option<u64>,
    duplicates: u64,
    owd_sum_ns: u128,
}

impl FlowRx {
    fn new(flow: u32) -> Self {
        FlowRx {
            flow,
            seen: vec![0; (SEQ_WINDOW / 64) as usize].into_boxed_slice(),
            unique: 0,
            max_seq: None,
            duplicates: 0,
            owd_sum_ns: 0,
        }
    }

    fn bit(seq: u64) -> (usize, u64) {
        let i = seq % SEQ_WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    /// Records `seq`; false if it is a duplicate (or too old to tell).
    fn receive(&mut self, seq: u64) -> bool {
        match self.max_seq {
            Some(m) if seq <= m => {
                if m - seq >= SEQ_WINDOW {
                    return false;
                }
            }
            Some(m) => {
                // The window moves up to `seq`: forget what the reused bits said.
                if seq - m >= SEQ_WINDOW {
                    self.seen.fill(0);
                } else {
                    for s in m + 1..=seq {
                        let (w, b) = Self::bit(s);
                        self.seen[w] &= !b;
                    }
                }
                self.max_seq = Some(seq);
            }
            None => self.max_seq = Some(seq),
        }
        let (w, b) = Self::bit(seq);
        if self.seen[w] & b != 0 {
            return false;
        }
        self.seen[w] |= b;
        true
    }
}

pub struct UdpSink {
    cfg: UdpSinkConfig,
    flows: Vec<FlowRx>,
    foreign: u64,
    error: Option<String>,
}

impl UdpSink {
    pub fn new(cfg: UdpSinkConfig) -> Self {
        UdpSink {
            cfg,
            flows: Vec::new(),
            foreign: 0,
            error: None,
        }
    }
}

impl App for UdpSink {
    fn name(&self) -> &str {
        &self.cfg.name
    }
    fn start(&mut self, os: &mut Os<'_, '_>) {
        if let Err(e) = os.udp_bind(Some(self.cfg.port)) {
            self.error = Some(e.to_string());
        }
    }
    fn on_udp(
        &mut self,
        os: &mut Os<'_, '_>,
        _sock: SocketId,
        _from: SocketAddrV4,
        payload: &Payload,
    ) {
        let Some(h) = decode_header(payload) else {
            self.foreign += 1;
            return;
        };
        let now = os.now();
        let i = match self.flows.iter().position(|f| f.flow == h.flow) {
            Some(i) => i,
            None => {
                self.flows.push(FlowRx::new(h.flow));
                self.flows.len() - 1
            }
        };
        let rx = &mut self.flows[i];
        if !rx.receive(h.seq) {
            rx.duplicates += 1;
            return;
        }
        rx.unique += 1;
        rx.owd_sum_ns += now.as_nanos().saturating_sub(h.sent_ns) as u128;
        let (unique, max_seq, owd) = (rx.unique, rx.max_seq, rx.owd_sum_ns);
        if let Some(f) = os.flow(FlowId(h.flow)) {
            f.on_rx(now, payload.len() as u64);
            // Lost: sequence numbers below the highest seen that never arrived. Datagrams
            // still in flight at the end of the run are not counted as lost.
            f.lost_packets = max_seq.map_or(0, |m| m + 1 - unique);
            f.extra
                .insert("one_way_delay_mean_ms", owd as f64 / unique as f64 / 1e6);
        }
    }
    fn finish(&mut self, os: &mut Os<'_, '_>) {
        for rx in &self.flows {
            if let Some(f) = os.flow(FlowId(rx.flow)) {
                f.extra.insert("duplicates", rx.duplicates as f64);
            }
        }
    }
    fn report(&self) -> Vec<String> {
        if let Some(e) = &self.error {
            return vec![format!(
                "udp sink on port {}: bind failed: {e}",
                self.cfg.port
            )];
        }
        let total: u64 = self.flows.iter().map(|f| f.unique).sum();
        vec![format!(
            "udp sink on port {}: received {} datagrams from {} flows",
            self.cfg.port,
            total,
            self.flows.len()
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = CbrHeader {
            flow: 3,
            seq: 99,
            sent_ns: 123_456,
        };
        let p = Payload::with_head(&encode_header(h), 1000);
        assert_eq!(decode_header(&p), Some(h));
        assert_eq!(decode_header(&Payload::zeros(100)), None);
    }

    #[test]
    fn sink_window_detects_duplicates_and_reordering() {
        let mut rx = FlowRx::new(0);
        for seq in [0, 1, 3, 2, 5] {
            assert!(rx.receive(seq), "{seq}");
        }
        assert!(!rx.receive(3), "a duplicate");
        assert!(rx.receive(4), "a late datagram inside the window");
        // Jump far ahead: the window moves, old bits are forgotten.
        let far = 5 + SEQ_WINDOW + 10;
        assert!(rx.receive(far));
        assert!(!rx.receive(far));
        assert!(!rx.receive(5), "too old to tell: counted as a duplicate");
        assert!(
            rx.receive(far - SEQ_WINDOW + 1),
            "the oldest the window remembers"
        );
        assert!(!rx.receive(far - SEQ_WINDOW), "just out of the window");
        // Advancing by one reuses one bit: the sequence it stood for is forgotten.
        assert!(rx.receive(far + 1));
        assert!(!rx.receive(far - SEQ_WINDOW + 1), "now out of the window");
        assert!(!rx.receive(far + 1));
    }
}

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

#[derive(Default)]
struct FlowRx {
    flow: u32,
    /// Bit i set: sequence i received.
    seen: Vec<u64>,
    unique: u64,
    max_seq: Option<u64>,
    duplicates: u64,
    owd_sum_ns: u128,
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
                self.flows.push(FlowRx {
                    flow: h.flow,
                    ..Default::default()
                });
                self.flows.len() - 1
            }
        };
        let rx = &mut self.flows[i];
        let (word, bit) = ((h.seq / 64) as usize, h.seq % 64);
        if word >= rx.seen.len() {
            rx.seen.resize(word + 1, 0);
        }
        if rx.seen[word] & (1 << bit) != 0 {
            rx.duplicates += 1;
            return;
        }
        rx.seen[word] |= 1 << bit;
        rx.unique += 1;
        rx.max_seq = Some(rx.max_seq.map_or(h.seq, |m| m.max(h.seq)));
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
}

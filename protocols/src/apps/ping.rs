//! ping: ICMP echo requests at an interval; reports each reply and a summary.

use crate::app::{App, Os};
use sim_core::ip::IcmpIn;
use sim_core::metrics::FlowId;
use sim_core::packet::{IcmpMessage, Payload};
use sim_core::time::{SimDuration, SimTime};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

#[derive(Clone, Debug, PartialEq)]
pub struct PingConfig {
    pub name: String,
    /// Node name or address.
    pub to: String,
    pub count: u32,
    pub interval: SimDuration,
    /// ICMP payload bytes (ping -s; default 56).
    pub size: u32,
    pub ttl: Option<u8>,
    pub flow: Option<FlowId>,
}

pub struct Ping {
    cfg: PingConfig,
    dst: Option<Ipv4Addr>,
    ident: u16,
    next_seq: u16,
    sent: u32,
    received: u32,
    errors: u32,
    outstanding: BTreeMap<u16, SimTime>,
    rtts: Vec<u64>,
    lines: Vec<String>,
    lookup: super::tcp_flow::TargetLookup,
}

impl Ping {
    pub fn new(cfg: PingConfig) -> Self {
        Ping {
            cfg,
            dst: None,
            ident: 0,
            next_seq: 1,
            sent: 0,
            received: 0,
            errors: 0,
            outstanding: BTreeMap::new(),
            rtts: Vec::new(),
            lines: Vec::new(),
            lookup: Default::default(),
        }
    }

    /// Starts pinging the resolved destination.
    fn begin(&mut self, os: &mut Os<'_, '_>) {
        self.ident = os.icmp_ident();
        self.lines.push(format!(
            "PING {} ({}) {}({}) bytes of data.",
            self.cfg.to,
            self.dst.unwrap_or(Ipv4Addr::UNSPECIFIED),
            self.cfg.size,
            self.cfg.size + 28
        ));
        self.send_one(os);
    }

    fn send_one(&mut self, os: &mut Os<'_, '_>) {
        let Some(dst) = self.dst else { return };
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let now = os.now();
        // Like iputils, the payload starts with the send time.
        let payload = Payload::with_head(&now.as_nanos().to_be_bytes(), self.cfg.size);
        self.sent += 1;
        if let Some(f) = self.cfg.flow.and_then(|f| os.flow(f)) {
            f.on_tx(now, self.cfg.size as u64);
        }
        match os.ping(dst, self.ident, seq, payload, self.cfg.ttl) {
            Ok(()) => {
                self.outstanding.insert(seq, now);
            }
            Err(e) => {
                self.errors += 1;
                self.lines.push(format!("ping: sendmsg: {e}"));
            }
        }
        if self.sent < self.cfg.count {
            os.set_timer(self.cfg.interval, 0);
        }
    }
}

impl App for Ping {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn start(&mut self, os: &mut Os<'_, '_>) {
        // A node name or address at once; a DNS name through the host's resolver.
        self.dst = self.lookup.resolve_or_lookup(os, &self.cfg.to);
        if self.dst.is_some() {
            self.begin(os);
        }
    }

    fn on_resolved(&mut self, os: &mut Os<'_, '_>, token: u64, result: &crate::dns::LookupResult) {
        match self.lookup.on_resolved(os, self.cfg.flow, token, result) {
            Some(Ok(ip)) => {
                self.dst = Some(ip);
                self.begin(os);
            }
            // As iputils: "ping: NAME: Name or service not known".
            Some(Err(e)) => self.lines.push(format!("ping: {}: {e}", self.cfg.to)),
            None => {}
        }
    }

    fn on_timer(&mut self, os: &mut Os<'_, '_>, _token: u64) {
        self.send_one(os);
    }

    fn on_icmp(&mut self, os: &mut Os<'_, '_>, msg: &IcmpIn) {
        match &msg.message {
            IcmpMessage::EchoReply { seq, payload, .. } => {
                let Some(sent_at) = self.outstanding.remove(seq) else {
                    return;
                }; // duplicate
                let rtt = os.now().saturating_since(sent_at).as_nanos();
                self.received += 1;
                self.rtts.push(rtt);
                let now = os.now();
                if let Some(f) = self.cfg.flow.and_then(|f| os.flow(f)) {
                    f.on_rx(now, payload.len() as u64);
                    f.rtt.add(rtt);
                }
                self.lines.push(format!(
                    "{} bytes from {}: icmp_seq={} ttl={} time={} ms",
                    payload.len() + 8,
                    msg.src,
                    seq,
                    msg.ttl,
                    super::ms(rtt)
                ));
            }
            IcmpMessage::DestUnreachable { code, quote, .. } => {
                let seq = u16::from_be_bytes([quote.data[6], quote.data[7]]);
                self.outstanding.remove(&seq);
                self.errors += 1;
                let what = match code.name() {
                    "host_unreachable" => "Destination Host Unreachable".to_string(),
                    "net_unreachable" => "Destination Net Unreachable".to_string(),
                    "fragmentation_needed" => "Frag needed".to_string(),
                    other => format!("Destination unreachable ({other})"),
                };
                self.lines
                    .push(format!("From {} icmp_seq={} {}", msg.src, seq, what));
            }
            IcmpMessage::TimeExceeded { quote, .. } => {
                let seq = u16::from_be_bytes([quote.data[6], quote.data[7]]);
                self.outstanding.remove(&seq);
                self.errors += 1;
                self.lines.push(format!(
                    "From {} icmp_seq={} Time to live exceeded",
                    msg.src, seq
                ));
            }
            IcmpMessage::EchoRequest { .. } => {}
        }
    }

    fn finish(&mut self, os: &mut Os<'_, '_>) {
        let lost = self.sent - self.received;
        if let Some(f) = self.cfg.flow.and_then(|f| os.flow(f)) {
            f.lost_packets = lost as u64;
        }
    }

    fn report(&self) -> Vec<String> {
        let mut out = self.lines.clone();
        if self.dst.is_none() {
            return out;
        }
        let loss = if self.sent == 0 {
            0.0
        } else {
            100.0 * (self.sent - self.received) as f64 / self.sent as f64
        };
        out.push(format!("--- {} ping statistics ---", self.cfg.to));
        let errors = if self.errors > 0 {
            format!("+{} errors, ", self.errors)
        } else {
            String::new()
        };
        out.push(format!(
            "{} packets transmitted, {} received, {}{}% packet loss",
            self.sent,
            self.received,
            errors,
            fmt_pct(loss)
        ));
        if !self.rtts.is_empty() {
            let min = *self.rtts.iter().min().unwrap_or(&0);
            let max = *self.rtts.iter().max().unwrap_or(&0);
            let mean = self.rtts.iter().map(|&r| r as f64).sum::<f64>() / self.rtts.len() as f64;
            out.push(format!(
                "rtt min/avg/max = {}/{:.3}/{} ms",
                super::ms(min),
                mean / 1e6,
                super::ms(max)
            ));
        }
        out
    }
}

fn fmt_pct(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

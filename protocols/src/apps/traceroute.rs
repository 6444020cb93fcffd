//! traceroute: UDP probes to ports from 33434 up with TTL 1, 2, ...; each hop's ICMP time
//! exceeded names a router; port unreachable from the destination ends the trace.
//! Probes go one at a time (traceroute -N 1), `probes` per hop, each waiting up to `wait`.

use crate::app::{App, Os};
use crate::udp::SocketId;
use sim_core::ip::IcmpIn;
use sim_core::packet::{IcmpMessage, Payload, UnreachableCode};
use sim_core::sched::TimerHandle;
use sim_core::time::{SimDuration, SimTime};
use std::net::{Ipv4Addr, SocketAddrV4};

#[derive(Clone, Debug, PartialEq)]
pub struct TracerouteConfig {
    pub name: String,
    pub to: String,
    pub max_hops: u8,
    pub probes: u8,
    pub wait: SimDuration,
    pub base_port: u16,
    /// UDP payload bytes per probe (traceroute's default packet is 60 bytes: 32 of payload).
    pub size: u32,
}

/// One hop's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hop {
    pub ttl: u8,
    /// (responder, RTT in ns) per probe; None for a timeout.
    pub probes: Vec<Option<(Ipv4Addr, u64)>>,
}

pub struct Traceroute {
    cfg: TracerouteConfig,
    dst: Option<Ipv4Addr>,
    sock: Option<SocketId>,
    ttl: u8,
    probe: u8,
    port: u16,
    sent_at: SimTime,
    timer: Option<TimerHandle>,
    reached: bool,
    done: bool,
    pub hops: Vec<Hop>,
}

impl Traceroute {
    pub fn new(cfg: TracerouteConfig) -> Self {
        let port = cfg.base_port;
        Traceroute {
            cfg,
            dst: None,
            sock: None,
            ttl: 1,
            probe: 0,
            port,
            sent_at: SimTime::ZERO,
            timer: None,
            reached: false,
            done: false,
            hops: Vec::new(),
        }
    }

    fn send_probe(&mut self, os: &mut Os<'_, '_>) {
        let (Some(dst), Some(sock)) = (self.dst, self.sock) else {
            return;
        };
        if self.probe == 0 {
            self.hops.push(Hop {
                ttl: self.ttl,
                probes: Vec::new(),
            });
        }
        self.port = self.port.wrapping_add(1);
        self.sent_at = os.now();
        let _ = os.udp_send(
            sock,
            SocketAddrV4::new(dst, self.port.wrapping_sub(1)),
            Payload::zeros(self.cfg.size),
            Some(self.ttl),
        );
        self.timer = Some(os.set_timer(self.cfg.wait, 0));
    }

    fn record(&mut self, os: &mut Os<'_, '_>, result: Option<(Ipv4Addr, u64)>) {
        if let Some(t) = self.timer.take() {
            os.cancel_timer(t);
        }
        if let Some(h) = self.hops.last_mut() {
            h.probes.push(result);
        }
        self.probe += 1;
        if self.probe >= self.cfg.probes {
            self.probe = 0;
            if self.reached || self.ttl >= self.cfg.max_hops {
                self.done = true;
                return;
            }
            self.ttl += 1;
        }
        self.send_probe(os);
    }
}

impl App for Traceroute {
    fn name(&self) -> &str {
        &self.cfg.name
    }
    fn start(&mut self, os: &mut Os<'_, '_>) {
        self.dst = os.resolve(&self.cfg.to);
        self.sock = os.udp_bind(None).ok();
        self.send_probe(os);
    }
    fn on_timer(&mut self, os: &mut Os<'_, '_>, _token: u64) {
        self.timer = None;
        if !self.done {
            self.record(os, None);
        }
    }
    fn on_icmp(&mut self, os: &mut Os<'_, '_>, msg: &IcmpIn) {
        if self.done {
            return;
        }
        let quote = match &msg.message {
            IcmpMessage::TimeExceeded { quote, .. } => quote,
            IcmpMessage::DestUnreachable { quote, code, .. } => {
                if *code == UnreachableCode::Port
                    || msg.src == self.dst.unwrap_or(Ipv4Addr::UNSPECIFIED)
                {
                    self.reached = true;
                }
                quote
            }
            _ => return,
        };
        // Only the reply to the probe in flight counts (late replies are ignored).
        if quote.ports().1 != self.port.wrapping_sub(1) {
            return;
        }
        let rtt = os.now().saturating_since(self.sent_at).as_nanos();
        self.record(os, Some((msg.src, rtt)));
    }
    fn report(&self) -> Vec<String> {
        let mut out = vec![format!(
            "traceroute to {} ({}), {} hops max, {} byte packets",
            self.cfg.to,
            self.dst.map(|d| d.to_string()).unwrap_or_default(),
            self.cfg.max_hops,
            self.cfg.size + 28
        )];
        for h in &self.hops {
            let mut line = format!("{:>2} ", h.ttl);
            let mut last: Option<Ipv4Addr> = None;
            for p in &h.probes {
                match p {
                    Some((addr, rtt)) => {
                        if last != Some(*addr) {
                            line.push_str(&format!(" {addr}"));
                            last = Some(*addr);
                        }
                        line.push_str(&format!("  {} ms", super::ms(*rtt)));
                    }
                    None => line.push_str(" *"),
                }
            }
            out.push(line);
        }
        out
    }
}

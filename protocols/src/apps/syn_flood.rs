//! A SYN flood (like `hping3 -S --flood --rand-source`): bare SYNs at a fixed rate from
//! random spoofed source addresses and ports, through a raw socket. It never answers the
//! SYN-ACKs (they go to the spoofed addresses), so every SYN leaves a half-open connection
//! at the target unless the target answers with a SYN cookie (RB-TCP-07).
//!
//! Each SYN draws, from the app's own random stream, a source address among the hosts of
//! the `source` network, a source port in 1024-65535 and an initial sequence number. It
//! carries one option, MSS 1460. Its IP source is the spoofed address.

use crate::app::{App, Os};
use crate::tcp::seq::SeqNum;
use crate::tcp::wire::{flags, TcpOptions, TcpRepr};
use sim_core::packet::Payload;
use sim_core::rng::SimRng;
use sim_core::time::{SimDuration, SimTime};
use std::net::Ipv4Addr;

#[derive(Clone, Debug, PartialEq)]
pub struct SynFloodConfig {
    pub name: String,
    pub to_host: String,
    pub to_port: u16,
    /// SYNs per second.
    pub rate: u64,
    /// Stop this long after the start (None: at the end of the run).
    pub duration: Option<SimDuration>,
    /// Stop after this many SYNs.
    pub count: Option<u64>,
    /// Spoofed sources are drawn from this network (address, prefix length).
    pub source: (Ipv4Addr, u8),
}

pub struct SynFlood {
    cfg: SynFloodConfig,
    rng: Option<SimRng>,
    dst: Option<Ipv4Addr>,
    started: SimTime,
    interval: SimDuration,
    sent: u64,
    errors: u64,
    note: Option<String>,
}

impl SynFlood {
    pub fn new(cfg: SynFloodConfig) -> Self {
        let interval = SimDuration::from_nanos((1_000_000_000 / cfg.rate.max(1)).max(1));
        SynFlood {
            cfg,
            rng: None,
            dst: None,
            started: SimTime::ZERO,
            interval,
            sent: 0,
            errors: 0,
            note: None,
        }
    }

    /// A random address in the source network (any host bits, but not all zeros or ones
    /// when there is room to avoid them).
    fn spoofed(&self, rng: &mut SimRng) -> Ipv4Addr {
        let (net, len) = self.cfg.source;
        let len = len.min(32);
        let host_bits = 32 - len as u32;
        let mask = if host_bits == 32 {
            0
        } else {
            !0u32 << host_bits
        };
        let base = u32::from(net) & mask;
        let span = 1u64 << host_bits;
        let host = if span > 2 {
            1 + rng.below(span - 2)
        } else {
            rng.below(span)
        };
        Ipv4Addr::from(base | host as u32)
    }

    fn send_one(&mut self, os: &mut Os<'_, '_>) {
        let (Some(dst), Some(mut rng)) = (self.dst, self.rng.take()) else {
            return;
        };
        let now = os.now();
        let over = self.cfg.duration.is_some_and(|d| now >= self.started + d)
            || self.cfg.count.is_some_and(|c| self.sent >= c);
        if over {
            self.rng = Some(rng);
            return;
        }
        let src = self.spoofed(&mut rng);
        let syn = TcpRepr {
            src_port: 1024 + rng.below(65536 - 1024) as u16,
            dst_port: self.cfg.to_port,
            seq: SeqNum(rng.next_u32()),
            ack: SeqNum(0),
            flags: flags::SYN,
            window: 64240,
            options: TcpOptions {
                mss: Some(1460),
                ..TcpOptions::default()
            },
        };
        self.rng = Some(rng);
        self.sent += 1;
        if os
            .tcp_raw_send(Some(src), dst, &syn, Payload::empty())
            .is_err()
        {
            self.errors += 1;
        }
        os.set_timer(self.interval, 0);
    }
}

impl App for SynFlood {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn start(&mut self, os: &mut Os<'_, '_>) {
        self.started = os.now();
        self.dst = os.resolve(&self.cfg.to_host);
        if self.dst.is_none() {
            self.note = Some(format!("cannot resolve {}", self.cfg.to_host));
            return;
        }
        self.rng = Some(os.rng("syn-flood"));
        self.send_one(os);
    }

    fn on_timer(&mut self, os: &mut Os<'_, '_>, _token: u64) {
        self.send_one(os);
    }

    fn report(&self) -> Vec<String> {
        let (net, len) = self.cfg.source;
        let dst = self
            .dst
            .map_or_else(|| self.cfg.to_host.clone(), |d| d.to_string());
        let mut v = vec![format!(
            "syn flood to {dst}:{}: sent {} SYNs at {}/s from random sources in {net}/{len}",
            self.cfg.to_port, self.sent, self.cfg.rate
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoofed_sources_stay_in_their_network() {
        let f = SynFlood::new(SynFloodConfig {
            name: "f".into(),
            to_host: "x".into(),
            to_port: 80,
            rate: 1000,
            duration: None,
            count: None,
            source: ("198.18.0.0".parse().unwrap(), 15),
        });
        assert_eq!(f.interval, SimDuration::from_millis(1));
        let mut rng = sim_core::rng::RngFactory::new(1).stream("t");
        for _ in 0..1000 {
            let a = u32::from(f.spoofed(&mut rng));
            assert_eq!(a >> 17, u32::from(Ipv4Addr::new(198, 18, 0, 0)) >> 17);
            assert!(a & 0x1ffff != 0 && a & 0x1ffff != 0x1ffff);
        }
    }
}

//! A learning Ethernet switch (RB-L2-01).
//!
//! Owns the MAC table and the forwarding decision; it neither queues nor transmits (the
//! world sends frames on the ports it returns). It never looks above the Ethernet header.

use crate::packet::MacAddr;
use crate::time::{SimDuration, SimTime};
use std::collections::BTreeMap;

/// Linux bridge default ageing time.
pub const DEFAULT_AGING: SimDuration = SimDuration::from_secs(300);

/// Where a frame goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwitchDecision {
    /// To the one port where the destination was learned.
    Forward(u16),
    /// To every port but the ingress (broadcast, group or unknown destination).
    Flood,
    /// The destination is on the ingress port: nothing to do.
    Filter,
}

#[derive(Clone, Debug)]
pub struct LearningSwitch {
    pub aging: SimDuration,
    table: BTreeMap<MacAddr, (u16, SimTime)>,
    pub flooded: u64,
    pub forwarded: u64,
}

impl LearningSwitch {
    pub fn new(aging: SimDuration) -> Self {
        LearningSwitch {
            aging,
            table: BTreeMap::new(),
            flooded: 0,
            forwarded: 0,
        }
    }

    /// Learns the source and decides where the frame goes.
    pub fn handle(
        &mut self,
        now: SimTime,
        ingress: u16,
        src: MacAddr,
        dst: MacAddr,
    ) -> SwitchDecision {
        if !src.is_group() {
            self.table.insert(src, (ingress, now));
        }
        if dst.is_group() {
            self.flooded += 1;
            return SwitchDecision::Flood;
        }
        match self.table.get(&dst) {
            Some(&(port, seen)) if now.saturating_since(seen) < self.aging => {
                if port == ingress {
                    SwitchDecision::Filter
                } else {
                    self.forwarded += 1;
                    SwitchDecision::Forward(port)
                }
            }
            Some(_) => {
                self.table.remove(&dst);
                self.flooded += 1;
                SwitchDecision::Flood
            }
            None => {
                self.flooded += 1;
                SwitchDecision::Flood
            }
        }
    }

    /// Forgets everything (the switch restarted).
    pub fn clear(&mut self) {
        self.table.clear();
    }

    /// Forgets what was learned on a port (its link went down).
    pub fn forget_port(&mut self, port: u16) {
        self.table.retain(|_, (p, _)| *p != port);
    }

    pub fn table_len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(x: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, x])
    }

    // RB-L2-01
    #[test]
    fn floods_unknown_learns_and_ages() {
        let mut s = LearningSwitch::new(SimDuration::from_secs(300));
        let t0 = SimTime::ZERO;
        assert_eq!(s.handle(t0, 0, mac(1), mac(2)), SwitchDecision::Flood);
        assert_eq!(s.handle(t0, 1, mac(2), mac(1)), SwitchDecision::Forward(0));
        assert_eq!(s.handle(t0, 0, mac(1), mac(2)), SwitchDecision::Forward(1));
        assert_eq!(
            s.handle(t0, 0, mac(1), MacAddr::BROADCAST),
            SwitchDecision::Flood
        );
        assert_eq!(s.handle(t0, 0, mac(3), mac(1)), SwitchDecision::Filter);
        // mac(2) was last seen at t0; 300 s later it has aged out.
        let later = SimTime::from_secs(300);
        assert_eq!(s.handle(later, 0, mac(1), mac(2)), SwitchDecision::Flood);
    }
}

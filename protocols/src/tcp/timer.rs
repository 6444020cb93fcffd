//! Connection timers without a scheduler: a lazy queue of (deadline, socket, kind).
//!
//! A connection records its deadlines itself; the queue only needs an entry at or before
//! each deadline. Pushing a later deadline (the common case: the RTO restarts on every
//! ACK) costs nothing; the stale entry fires, finds the deadline moved, and queues it again.
//! This keeps the host's scheduler to one pending timer per host.

use sim_core::time::SimTime;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum TimerKind {
    /// Retransmission: RTO, SYN and SYN-ACK retries.
    Retransmit = 0,
    /// Zero-window probes.
    Persist = 1,
    DelayedAck = 2,
    Keepalive = 3,
    /// TIME_WAIT and orphaned FIN_WAIT_2 lifetimes.
    Linger = 4,
    /// The next paced transmission.
    Pacing = 5,
}

pub const TIMER_KINDS: usize = 6;

impl TimerKind {
    pub const ALL: [TimerKind; TIMER_KINDS] = [
        TimerKind::Retransmit,
        TimerKind::Persist,
        TimerKind::DelayedAck,
        TimerKind::Keepalive,
        TimerKind::Linger,
        TimerKind::Pacing,
    ];
}

/// A connection's deadlines and what it has queued.
#[derive(Clone, Copy, Debug, Default)]
pub struct Deadlines {
    pub at: [Option<SimTime>; TIMER_KINDS],
    queued: [Option<SimTime>; TIMER_KINDS],
}

#[derive(Debug, Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<(SimTime, u32, u32, u8)>>,
}

impl TimerQueue {
    pub fn next(&self) -> Option<SimTime> {
        self.heap.peek().map(|Reverse(e)| e.0)
    }

    /// Pops the next entry due at or before `now`: (slot, generation, kind, entry time).
    pub fn pop_due(&mut self, now: SimTime) -> Option<(u32, u32, TimerKind, SimTime)> {
        match self.heap.peek() {
            Some(Reverse((t, ..))) if *t <= now => {}
            _ => return None,
        }
        let Reverse((t, slot, gen, kind)) = self.heap.pop()?;
        Some((slot, gen, TimerKind::ALL[kind as usize], t))
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }

    fn push(&mut self, at: SimTime, slot: u32, gen: u32, kind: TimerKind) {
        self.heap.push(Reverse((at, slot, gen, kind as u8)));
    }
}

impl Deadlines {
    pub fn set(&mut self, q: &mut TimerQueue, slot: u32, gen: u32, kind: TimerKind, at: SimTime) {
        let k = kind as usize;
        self.at[k] = Some(at);
        if self.queued[k].is_none_or(|queued| at < queued) {
            self.queued[k] = Some(at);
            q.push(at, slot, gen, kind);
        }
    }

    pub fn clear(&mut self, kind: TimerKind) {
        self.at[kind as usize] = None;
    }

    pub fn get(&self, kind: TimerKind) -> Option<SimTime> {
        self.at[kind as usize]
    }

    /// A queued entry for `kind` (queued at `entry`) came due at `now`: is the deadline
    /// really due? If not, make sure an entry stays queued for it.
    pub fn due(
        &mut self,
        q: &mut TimerQueue,
        slot: u32,
        gen: u32,
        kind: TimerKind,
        entry: SimTime,
        now: SimTime,
    ) -> bool {
        let k = kind as usize;
        if self.queued[k] == Some(entry) {
            self.queued[k] = None;
        }
        match self.at[k] {
            Some(d) if d <= now => {
                self.at[k] = None;
                true
            }
            Some(d) => {
                if self.queued[k].is_none() {
                    self.queued[k] = Some(d);
                    q.push(d, slot, gen, kind);
                }
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postponed_deadline_fires_once_at_the_new_time() {
        let mut q = TimerQueue::default();
        let mut d = Deadlines::default();
        let k = TimerKind::Retransmit;
        d.set(&mut q, 1, 0, k, SimTime::from_nanos(10));
        d.set(&mut q, 1, 0, k, SimTime::from_nanos(30));
        assert_eq!(q.next(), Some(SimTime::from_nanos(10)));
        let (s, g, kind, t) = q.pop_due(SimTime::from_nanos(10)).unwrap();
        assert!(!d.due(&mut q, s, g, kind, t, SimTime::from_nanos(10)));
        assert_eq!(q.next(), Some(SimTime::from_nanos(30)));
        let (s, g, kind, t) = q.pop_due(SimTime::from_nanos(30)).unwrap();
        assert!(d.due(&mut q, s, g, kind, t, SimTime::from_nanos(30)));
        assert_eq!(q.next(), None);
    }

    #[test]
    fn earlier_deadline_queues_a_new_entry() {
        let mut q = TimerQueue::default();
        let mut d = Deadlines::default();
        let k = TimerKind::DelayedAck;
        d.set(&mut q, 1, 0, k, SimTime::from_nanos(50));
        d.set(&mut q, 1, 0, k, SimTime::from_nanos(20));
        let (s, g, kind, t) = q.pop_due(SimTime::from_nanos(20)).unwrap();
        assert!(d.due(&mut q, s, g, kind, t, SimTime::from_nanos(20)));
        // The stale entry at 50 finds nothing due.
        let (s, g, kind, t) = q.pop_due(SimTime::from_nanos(50)).unwrap();
        assert!(!d.due(&mut q, s, g, kind, t, SimTime::from_nanos(50)));
    }
}

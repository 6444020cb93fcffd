//! Connection timers without a scheduler: a lazy queue of (deadline, socket, kind).
//!
//! A connection records its deadlines itself; the queue only needs an entry at or before
//! each deadline. Pushing a later deadline (the common case: the RTO restarts on every
//! ACK) costs nothing; the stale entry fires, finds the deadline moved, and queues it again.
//! This keeps the host's scheduler to one pending timer per host.

use sim_core::time::SimTime;

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

/// A queued entry: (deadline, slot, generation) packed into one key, then the kind; they
/// pop in the order of the tuple (deadline, slot, generation, kind).
#[derive(Clone, Copy, Debug)]
struct Entry {
    key: u128,
    kind: u8,
}

impl Entry {
    fn new(at: SimTime, slot: u32, gen: u32, kind: TimerKind) -> Self {
        Entry {
            key: (at.as_nanos() as u128) << 64 | (slot as u128) << 32 | gen as u128,
            kind: kind as u8,
        }
    }

    #[inline]
    fn before(&self, other: &Entry) -> bool {
        (self.key, self.kind) < (other.key, other.kind)
    }

    fn time(&self) -> SimTime {
        SimTime::from_nanos((self.key >> 64) as u64)
    }
}

/// A binary min-heap of entries (a few per connection; every paced segment pushes and pops
/// one), moving a hole instead of swapping.
#[derive(Debug, Default)]
pub struct TimerQueue {
    heap: Vec<Entry>,
}

impl TimerQueue {
    pub fn next(&self) -> Option<SimTime> {
        self.heap.first().map(Entry::time)
    }

    /// Pops the next entry due at or before `now`: (slot, generation, kind, entry time).
    pub fn pop_due(&mut self, now: SimTime) -> Option<(u32, u32, TimerKind, SimTime)> {
        let top = *self.heap.first()?;
        if top.time() > now {
            return None;
        }
        let last = self.heap.pop()?;
        if !self.heap.is_empty() {
            self.sift_down(last);
        }
        Some((
            (top.key >> 32) as u32,
            top.key as u32,
            TimerKind::ALL[top.kind as usize],
            top.time(),
        ))
    }

    pub fn clear(&mut self) {
        self.heap.clear();
    }

    fn push(&mut self, at: SimTime, slot: u32, gen: u32, kind: TimerKind) {
        let e = Entry::new(at, slot, gen, kind);
        let mut i = self.heap.len();
        self.heap.push(e);
        while i > 0 {
            let parent = (i - 1) / 2;
            let p = self.heap[parent];
            if !e.before(&p) {
                break;
            }
            self.heap[i] = p;
            i = parent;
        }
        self.heap[i] = e;
    }

    /// Places `e` at the root (which is free) or below it.
    fn sift_down(&mut self, e: Entry) {
        let n = self.heap.len();
        let mut i = 0;
        loop {
            let mut c = 2 * i + 1;
            if c >= n {
                break;
            }
            if c + 1 < n && self.heap[c + 1].before(&self.heap[c]) {
                c += 1;
            }
            let child = self.heap[c];
            if !child.before(&e) {
                break;
            }
            self.heap[i] = child;
            i = c;
        }
        self.heap[i] = e;
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

    /// Pops in the order of (deadline, slot, generation, kind), as a sorted list would.
    #[test]
    fn pops_in_tuple_order() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut q = TimerQueue::default();
        let mut reference = Vec::new();
        for round in 0..2000u64 {
            if rnd(3) > 0 {
                let (t, slot, gen) = (round / 4 + rnd(40), rnd(4) as u32, rnd(3) as u32);
                let kind = TimerKind::ALL[rnd(TIMER_KINDS as u64) as usize];
                q.push(SimTime::from_nanos(t), slot, gen, kind);
                reference.push((SimTime::from_nanos(t), slot, gen, kind));
            } else {
                let now = SimTime::from_nanos(round / 4 + rnd(20));
                reference.sort();
                let expect = reference
                    .first()
                    .filter(|e| e.0 <= now)
                    .map(|&(t, s, g, k)| (s, g, k, t));
                if expect.is_some() {
                    reference.remove(0);
                }
                assert_eq!(q.pop_due(now), expect);
                assert_eq!(q.next(), reference.iter().min().map(|e| e.0));
            }
        }
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

//! The event scheduler: a priority queue of events ordered by (time, insertion sequence).
//!
//! Owns event ordering and timer cancellation. It knows nothing of what an event means.
//!
//! Invariants:
//! - Events pop in non-decreasing time; equal times pop in the order they were scheduled.
//! - A cancelled event never pops.
//! - Steady state allocates nothing: the heap and the cancellation slots reuse their storage.

use crate::time::SimTime;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Identifies a cancellable scheduled event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerHandle {
    slot: u32,
    generation: u32,
}

const NOT_CANCELLABLE: u32 = u32::MAX;

struct Entry<E> {
    /// (time << 64 | seq): one comparison orders by time, then insertion.
    key: u128,
    slot: u32,
    generation: u32,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse for earliest first.
        other.key.cmp(&self.key)
    }
}

/// A deterministic event queue with cancellable timers.
pub struct Scheduler<E> {
    heap: BinaryHeap<Entry<E>>,
    next_seq: u64,
    now: SimTime,
    /// Current generation of each cancellation slot.
    generations: Vec<u32>,
    free_slots: Vec<u32>,
    live_timers: usize,
}

impl<E> Default for Scheduler<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> Scheduler<E> {
    pub fn new() -> Self {
        Scheduler {
            heap: BinaryHeap::with_capacity(1024),
            next_seq: 0,
            now: SimTime::ZERO,
            generations: Vec::new(),
            free_slots: Vec::new(),
            live_timers: 0,
        }
    }

    /// The time of the event most recently popped.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Events waiting, including cancelled ones not yet discarded.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    fn key(&mut self, at: SimTime) -> u128 {
        debug_assert!(at >= self.now, "event scheduled in the past");
        let at = at.max(self.now);
        let seq = self.next_seq;
        self.next_seq += 1;
        ((at.0 as u128) << 64) | seq as u128
    }

    /// Schedules `event` at `at` (not before now). It cannot be cancelled.
    pub fn schedule(&mut self, at: SimTime, event: E) {
        let key = self.key(at);
        self.heap.push(Entry {
            key,
            slot: NOT_CANCELLABLE,
            generation: 0,
            event,
        });
    }

    /// Schedules `event` at `at` and returns a handle that can cancel it.
    pub fn schedule_timer(&mut self, at: SimTime, event: E) -> TimerHandle {
        let key = self.key(at);
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.generations.push(0);
                (self.generations.len() - 1) as u32
            }
        };
        let generation = self.generations[slot as usize];
        self.live_timers += 1;
        self.heap.push(Entry {
            key,
            slot,
            generation,
            event,
        });
        TimerHandle { slot, generation }
    }

    /// Cancels a timer. Returns false if it already fired or was cancelled.
    pub fn cancel(&mut self, handle: TimerHandle) -> bool {
        match self.generations.get_mut(handle.slot as usize) {
            Some(g) if *g == handle.generation => {
                // Bump the generation so the heap entry is recognised as stale when popped;
                // the slot is freed then, not now, so it is not reused while the entry waits.
                *g = g.wrapping_add(1);
                self.live_timers -= 1;
                true
            }
            _ => false,
        }
    }

    /// True while the timer is scheduled and not cancelled.
    pub fn is_pending(&self, handle: TimerHandle) -> bool {
        self.generations.get(handle.slot as usize) == Some(&handle.generation)
    }

    /// Time of the next event that will pop, skipping cancelled ones.
    pub fn peek_time(&mut self) -> Option<SimTime> {
        self.discard_cancelled();
        self.heap.peek().map(|e| SimTime((e.key >> 64) as u64))
    }

    fn discard_cancelled(&mut self) {
        while let Some(top) = self.heap.peek() {
            if top.slot == NOT_CANCELLABLE || self.generations[top.slot as usize] == top.generation
            {
                return;
            }
            let slot = top.slot;
            self.heap.pop();
            self.free_slots.push(slot);
        }
    }

    /// Removes and returns the next event, advancing `now` to its time.
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        loop {
            let entry = self.heap.pop()?;
            if entry.slot != NOT_CANCELLABLE {
                let g = &mut self.generations[entry.slot as usize];
                if *g != entry.generation {
                    self.free_slots.push(entry.slot);
                    continue;
                }
                *g = g.wrapping_add(1);
                self.live_timers -= 1;
                self.free_slots.push(entry.slot);
            }
            let t = SimTime((entry.key >> 64) as u64);
            self.now = t;
            return Some((t, entry.event));
        }
    }

    /// Live (not cancelled) timers; for tests and diagnostics.
    pub fn live_timers(&self) -> usize {
        self.live_timers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_times_pop_in_insertion_order() {
        let mut s = Scheduler::new();
        s.schedule(SimTime(10), 'b');
        s.schedule(SimTime(5), 'a');
        s.schedule(SimTime(10), 'c');
        s.schedule(SimTime(10), 'd');
        let order: Vec<char> = std::iter::from_fn(|| s.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, vec!['a', 'b', 'c', 'd']);
    }

    #[test]
    fn cancelled_timers_never_pop_and_slots_are_reused() {
        let mut s = Scheduler::new();
        let h1 = s.schedule_timer(SimTime(10), 1);
        let h2 = s.schedule_timer(SimTime(20), 2);
        assert!(s.cancel(h1));
        assert!(!s.cancel(h1), "double cancel reports false");
        assert!(s.is_pending(h2));
        assert_eq!(s.pop(), Some((SimTime(20), 2)));
        assert!(!s.is_pending(h2));
        assert!(!s.cancel(h2), "a fired timer cannot be cancelled");
        assert_eq!(s.pop(), None);
        // Both slots are free again; new timers reuse them with a new generation.
        let h3 = s.schedule_timer(SimTime(30), 3);
        assert!(h3 != h1 && h3 != h2);
        assert!(!s.cancel(h1));
        assert_eq!(s.pop(), Some((SimTime(30), 3)));
        assert_eq!(s.live_timers(), 0);
    }

    #[test]
    fn peek_skips_cancelled() {
        let mut s = Scheduler::new();
        let h = s.schedule_timer(SimTime(1), 1);
        s.schedule(SimTime(2), 2);
        s.cancel(h);
        assert_eq!(s.peek_time(), Some(SimTime(2)));
    }
}

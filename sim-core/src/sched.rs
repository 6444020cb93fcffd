//! The event scheduler: a priority queue of events ordered by (time, insertion sequence).
//!
//! Owns event ordering and timer cancellation. It knows nothing of what an event means.
//!
//! Invariants:
//! - Events pop in non-decreasing time; equal times pop in the order they were scheduled.
//! - A cancelled event never pops.
//! - Steady state allocates nothing: event slots, the heap and the bucket chunks are reused,
//!   and their storage grows only when more events are pending than ever before. (The one
//!   exception is scheduling an event before the next one after `peek_time` looked at it,
//!   which rebuilds the queue; the world only does that between runs.)
//!
//! Design. Events live in a slab of slots (which also holds the cancellation generations);
//! the queue orders small entries that name a slot. The queue has two forms, and switches
//! between them with hysteresis:
//! - up to a few thousand entries, a binary heap of (time, sequence, slot);
//! - above that, a radix heap on times, which does much less work per event on large
//!   queues. No pending event is earlier than `last` (the time of the earliest one, once
//!   it has been looked at), so an event can sit in the bucket named by the highest bit in
//!   which its time differs from `last`: bucket 0 holds the events at `last` itself, bucket
//!   b (1..=64) those whose highest differing bit is b - 1. When bucket 0 runs empty, the
//!   lowest non-empty bucket is emptied: its earliest time becomes `last` and its events
//!   move to lower buckets (each event moves a few times in its life, always down). A
//!   bucket is a FIFO list of chunks from a shared pool. Every bucket lists its events in
//!   scheduling order: a new event is the latest scheduled so far and is appended, and a
//!   bucket is only emptied into lower buckets, which are all empty then, in its own order.
//!   So bucket 0, whose events all have the same time, pops from the front in scheduling
//!   order.
//!
//! Either way, the pop order is exactly the (time, sequence) order: the form in use never
//! shows in the results.
//!
//! Lanes. Most pending events in a network are frames in flight on a link, and a link
//! delivers them in the order it sent them: their times never decrease. Such events can be
//! scheduled in a lane ([`Scheduler::schedule_in_lane`]), a FIFO that holds the events
//! themselves (they cannot be cancelled, so they need no slot) and of which only the head
//! waits in the binary heap; when the head pops, the next one takes its place with a
//! single sift-down. The heap then holds one entry per busy lane instead of one per frame
//! (about 15 instead of 150 for one TCP flow over three links), most insertions cost a
//! push onto a deque, and a lane's events are read back in the order they were written.
//! Merging sorted runs through a heap on the same (time, sequence) keys gives the same
//! order as one heap of everything, so lanes never show in the results either. An event
//! that would not keep its lane in order, and every event while the radix heap is in use
//! (it relies on entries arriving in scheduling order), is scheduled as any other.

use crate::time::SimTime;

/// Identifies a cancellable scheduled event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerHandle {
    slot: u32,
    generation: u32,
}

/// A FIFO of events whose times never decrease (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LaneId(u32);

/// In a heap entry's `slot`: the entry is the head of the lane in the other bits.
const LANE_BIT: u32 = 1 << 31;

/// An event waiting in a lane.
#[derive(Clone, Copy)]
struct LaneEntry<E> {
    time: u64,
    seq: u64,
    event: E,
}

/// A lane: a ring buffer of entries, oldest first. (Not a `VecDeque`: its out-of-line
/// `push_back` takes the entry through memory and reads it back with wider loads than
/// the caller's stores, a store-forwarding stall on every frame sent.)
struct Lane<E> {
    /// A power of two of elements, all initialized (`len` of them, from `head` on,
    /// cyclically, are live).
    buf: Vec<LaneEntry<E>>,
    head: usize,
    len: usize,
}

impl<E: Copy> Lane<E> {
    fn new() -> Self {
        Lane {
            buf: Vec::new(),
            head: 0,
            len: 0,
        }
    }

    #[inline(always)]
    fn front(&self) -> Option<&LaneEntry<E>> {
        (self.len > 0).then(|| &self.buf[self.head])
    }

    #[inline(always)]
    fn back(&self) -> Option<&LaneEntry<E>> {
        (self.len > 0).then(|| &self.buf[(self.head + self.len - 1) & (self.buf.len() - 1)])
    }

    #[inline(always)]
    fn push_back(&mut self, e: LaneEntry<E>) {
        if self.len == self.buf.len() {
            self.grow(e);
        } else {
            let i = (self.head + self.len) & (self.buf.len() - 1);
            self.buf[i] = e;
        }
        self.len += 1;
    }

    /// Doubles the buffer (unrolling the ring) and appends `e`.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, e: LaneEntry<E>) {
        let n = self.buf.len();
        let size = (2 * n).max(8);
        let mut buf = Vec::with_capacity(size);
        buf.extend((0..n).map(|k| self.buf[(self.head + k) & (n - 1)]));
        // `e`, then copies of it, so that every element is initialized.
        buf.resize(size, e);
        self.buf = buf;
        self.head = 0;
    }

    #[inline(always)]
    fn pop_front(&mut self) -> Option<LaneEntry<E>> {
        if self.len == 0 {
            return None;
        }
        let e = self.buf[self.head];
        self.head = (self.head + 1) & (self.buf.len() - 1);
        self.len -= 1;
        Some(e)
    }
}

/// Entries in the binary heap above which the queue becomes a radix heap.
const TO_RADIX: usize = 4096;
/// Pending events below which it becomes a binary heap again.
const TO_HEAP: usize = 1024;

/// Storage for one scheduled event.
struct Slot<E> {
    /// Scheduling order (ties between equal times).
    seq: u64,
    /// None once cancelled (the queue entry is discarded when it surfaces).
    event: Option<E>,
    /// Bumped whenever the slot's event pops or is cancelled, so old handles go stale.
    generation: u32,
    /// Set by `schedule_timer`: the event counts as a live timer and may be cancelled.
    timer: bool,
}

/// A pending event in the binary heap.
#[derive(Clone, Copy, PartialEq, Eq)]
struct HeapEntry {
    time: u64,
    seq: u64,
    slot: u32,
}

impl HeapEntry {
    #[inline]
    fn key(&self) -> u128 {
        ((self.time as u128) << 64) | self.seq as u128
    }
}

/// A binary min-heap of entries by (time, sequence). std's `BinaryHeap::push` writes the
/// new entry field by field and reads it straight back with a wider load, which stalls on
/// store forwarding on every push; here the entry being placed stays in registers and
/// each slot is written once, with a hole moving up or down (the same for pops).
struct MinHeap {
    v: Vec<HeapEntry>,
}

impl MinHeap {
    fn with_capacity(n: usize) -> Self {
        MinHeap {
            v: Vec::with_capacity(n),
        }
    }

    fn len(&self) -> usize {
        self.v.len()
    }

    #[inline]
    fn peek(&self) -> Option<&HeapEntry> {
        self.v.first()
    }

    #[inline(always)]
    fn push(&mut self, e: HeapEntry) {
        let i = self.v.len();
        self.v.push(e);
        self.sift_up(i, e);
    }

    /// Puts `e` in the hole at `i` or above it, moving later parents down.
    #[inline(always)]
    fn sift_up(&mut self, mut i: usize, e: HeapEntry) {
        let key = e.key();
        while i > 0 {
            let parent = (i - 1) / 2;
            let p = self.v[parent];
            if key >= p.key() {
                break;
            }
            self.v[i] = p;
            i = parent;
        }
        self.v[i] = e;
    }

    /// Removes the earliest entry. The last entry fills the hole, and almost always
    /// belongs near the bottom: the hole first moves down to a leaf along the earlier
    /// children (one comparison per level instead of two), then the entry moves up from
    /// there to its place (Floyd's bottom-up heapsort).
    #[inline]
    fn pop(&mut self) {
        let Some(last) = self.v.pop() else {
            return;
        };
        let n = self.v.len();
        if n == 0 {
            return;
        }
        let mut i = 0;
        while let Some(c) = self.earlier_child(i, n) {
            self.v[i] = self.v[c];
            i = c;
        }
        self.sift_up(i, last);
    }

    /// The earlier of the children of `i` among the first `n` entries, if it has any.
    #[inline(always)]
    fn earlier_child(&self, i: usize, n: usize) -> Option<usize> {
        let c = 2 * i + 1;
        if c >= n {
            return None;
        }
        Some(if c + 1 < n && self.v[c + 1].key() < self.v[c].key() {
            c + 1
        } else {
            c
        })
    }

    /// Replaces the earliest entry (the heap is not empty) by `e`.
    #[inline]
    fn replace_top(&mut self, e: HeapEntry) {
        if !self.v.is_empty() {
            self.sift_down(e);
        }
    }

    /// Places `e` at the root or below it, moving earlier children up into the hole.
    #[inline]
    fn sift_down(&mut self, e: HeapEntry) {
        let key = e.key();
        let n = self.v.len();
        let mut i = 0;
        while let Some(c) = self.earlier_child(i, n) {
            let child = self.v[c];
            if child.key() >= key {
                break;
            }
            self.v[i] = child;
            i = c;
        }
        self.v[i] = e;
    }

    /// Takes the entries out (in no particular order), leaving the heap empty.
    fn take_vec(&mut self) -> Vec<HeapEntry> {
        std::mem::take(&mut self.v)
    }

    /// A heap of `v`'s entries.
    fn from_vec(mut v: Vec<HeapEntry>) -> Self {
        // Sorted by key is a valid heap.
        v.sort_unstable_by_key(HeapEntry::key);
        MinHeap { v }
    }
}

/// A pending event in a radix bucket.
#[derive(Clone, Copy)]
struct Entry {
    time: u64,
    slot: u32,
}

const NO_ENTRY: Entry = Entry { time: 0, slot: 0 };

/// Bucket 0 plus one bucket per bit of a u64 time.
const BUCKETS: usize = 65;
/// Entries per chunk (512 bytes).
const CHUNK: usize = 32;
/// No chunk.
const NIL: u32 = u32::MAX;

/// A FIFO list of chunks: entries `start..` of chunk `head`, through entries `..end` of
/// chunk `tail`. Every bucket owns at least one chunk; it is empty when `head == tail` and
/// `start == end`.
#[derive(Clone, Copy)]
struct Bucket {
    head: u32,
    tail: u32,
    start: u32,
    end: u32,
}

#[inline]
fn bucket_of(time: u64, last: u64) -> usize {
    (64 - (time ^ last).leading_zeros()) as usize
}

/// The radix heap. Its chunks are allocated the first time it is used.
struct Radix {
    buckets: [Bucket; BUCKETS],
    /// The chunk pool; `next[c]` links chunk c to the next chunk of its bucket or of the
    /// free list.
    chunks: Vec<[Entry; CHUNK]>,
    next: Vec<u32>,
    free_chunk: u32,
    /// Bit b - 1 is set when bucket b (1..=64) is non-empty.
    nonempty: u64,
    /// No entry is earlier than this.
    last: u64,
}

impl Radix {
    fn new() -> Self {
        Radix {
            buckets: std::array::from_fn(|i| Bucket {
                head: i as u32,
                tail: i as u32,
                start: 0,
                end: 0,
            }),
            chunks: Vec::new(),
            next: Vec::new(),
            free_chunk: NIL,
            nonempty: 0,
            last: 0,
        }
    }

    /// Empties the heap and sets `last`; gives every bucket its first chunk on first use.
    fn reset(&mut self, last: u64) {
        if self.chunks.is_empty() {
            self.chunks = vec![[NO_ENTRY; CHUNK]; BUCKETS];
            self.next = vec![NIL; BUCKETS];
        }
        for b in 0..BUCKETS {
            let bk = self.take_bucket(b);
            self.release_list(bk);
        }
        self.last = last;
    }

    /// Makes sure the pool has enough chunks for `pending` entries, so that `alloc_chunk`
    /// never has to allocate: a bucket of n entries spans at most n / CHUNK + 2 chunks, and
    /// emptying a bucket holds one more chunk for a moment.
    #[inline]
    fn reserve_for(&mut self, pending: usize) {
        while self.chunks.len() < pending / CHUNK + 2 * BUCKETS + 1 {
            self.chunks.push([NO_ENTRY; CHUNK]);
            self.next.push(NIL);
            self.release_chunk((self.chunks.len() - 1) as u32);
        }
    }

    /// A chunk from the free list (or a new one, which `reserve_for` makes unnecessary).
    #[inline]
    fn alloc_chunk(&mut self) -> u32 {
        let c = self.free_chunk;
        if c != NIL {
            self.free_chunk = self.next[c as usize];
            self.next[c as usize] = NIL;
            return c;
        }
        self.chunks.push([NO_ENTRY; CHUNK]);
        self.next.push(NIL);
        (self.chunks.len() - 1) as u32
    }

    #[inline]
    fn release_chunk(&mut self, c: u32) {
        self.next[c as usize] = self.free_chunk;
        self.free_chunk = c;
    }

    /// Releases every chunk of a list taken by `take_bucket` but its tail (which stayed
    /// with the bucket).
    fn release_list(&mut self, bk: Bucket) {
        let mut c = bk.head;
        while c != bk.tail {
            let n = self.next[c as usize];
            self.release_chunk(c);
            c = n;
        }
    }

    /// Appends `e` to bucket `b` (without marking it non-empty).
    #[inline]
    fn append(&mut self, b: usize, e: Entry) {
        let mut bk = self.buckets[b];
        if bk.end as usize == CHUNK {
            let c = self.alloc_chunk();
            self.next[bk.tail as usize] = c;
            bk.tail = c;
            bk.end = 0;
        }
        self.chunks[bk.tail as usize][bk.end as usize] = e;
        bk.end += 1;
        self.buckets[b] = bk;
    }

    /// Adds an entry (its time is not before `last`).
    #[inline]
    fn push(&mut self, e: Entry) {
        debug_assert!(e.time >= self.last);
        let b = bucket_of(e.time, self.last);
        self.append(b, e);
        if b > 0 {
            self.nonempty |= 1 << (b - 1);
        }
    }

    /// Takes bucket `b`'s list, leaving the bucket empty with the list's last chunk.
    #[inline]
    fn take_bucket(&mut self, b: usize) -> Bucket {
        let bk = self.buckets[b];
        self.buckets[b] = Bucket {
            head: bk.tail,
            tail: bk.tail,
            start: 0,
            end: 0,
        };
        if b > 0 {
            self.nonempty &= !(1 << (b - 1));
        }
        bk
    }

    /// Calls `f` on every entry of a list, in order.
    fn for_each(&self, bk: Bucket, mut f: impl FnMut(Entry)) {
        let (mut c, mut i) = (bk.head, bk.start as usize);
        loop {
            let end = if c == bk.tail { bk.end as usize } else { CHUNK };
            self.chunks[c as usize][i..end].iter().for_each(|&e| f(e));
            if c == bk.tail {
                return;
            }
            (c, i) = (self.next[c as usize], 0);
        }
    }

    /// The earliest entry (left in place), or None if the heap is empty.
    #[inline]
    fn front(&mut self) -> Option<Entry> {
        let mut bk = self.buckets[0];
        if bk.head == bk.tail && bk.start == bk.end {
            if self.nonempty == 0 {
                return None;
            }
            self.redistribute();
            bk = self.buckets[0];
        }
        Some(self.chunks[bk.head as usize][bk.start as usize])
    }

    /// Removes the entry `front` returned.
    #[inline]
    fn advance(&mut self) {
        let mut bk = self.buckets[0];
        bk.start += 1;
        if bk.head == bk.tail {
            if bk.start == bk.end {
                bk.start = 0;
                bk.end = 0;
            }
        } else if bk.start as usize == CHUNK {
            let next = self.next[bk.head as usize];
            self.release_chunk(bk.head);
            bk.head = next;
            bk.start = 0;
        }
        self.buckets[0] = bk;
    }

    /// Bucket 0 is empty: empties the lowest non-empty bucket into lower ones, its earliest
    /// time becoming `last`.
    fn redistribute(&mut self) {
        let b = self.nonempty.trailing_zeros() as usize + 1;
        let mut min = u64::MAX;
        self.for_each(self.buckets[b], |e| min = min.min(e.time));
        self.last = min;
        let src = self.take_bucket(b);
        // The lower buckets are all empty: mark the ones that receive entries at the end.
        let mut touched = 0u64;
        let (mut c, mut i) = (src.head, src.start as usize);
        loop {
            let is_tail = c == src.tail;
            let end = if is_tail { src.end as usize } else { CHUNK };
            // Chunk c is released only after this loop, so appending cannot reuse it. (The
            // tail stays with bucket b, which receives nothing.)
            for k in i..end {
                let e = self.chunks[c as usize][k];
                // Always a lower bucket: `min` shares every bit above b - 1 with `e.time`.
                let nb = bucket_of(e.time, min);
                self.append(nb, e);
                touched |= 1 << nb;
            }
            if is_tail {
                break;
            }
            let n = self.next[c as usize];
            self.release_chunk(c);
            (c, i) = (n, 0);
        }
        self.nonempty |= touched >> 1;
    }
}

/// A deterministic event queue with cancellable timers.
pub struct Scheduler<E> {
    /// The queue while it is small. While the radix heap is in use, its (empty) buffer is
    /// kept for switching back and as scratch space.
    heap: MinHeap,
    radix: Radix,
    radix_mode: bool,
    /// Each lane's events in order; a non-empty lane's head is also in the heap (its entry
    /// names the lane with [`LANE_BIT`]). All empty while the radix heap is in use.
    lanes: Vec<Lane<E>>,
    /// Pending events, including cancelled ones not yet discarded.
    len: usize,
    slots: Vec<Slot<E>>,
    free_slots: Vec<u32>,
    next_seq: u64,
    now: SimTime,
    live_timers: usize,
    /// Switching thresholds ([`TO_RADIX`], [`TO_HEAP`]; smaller in tests).
    to_radix: usize,
    to_heap: usize,
}

impl<E: Copy> Default for Scheduler<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Copy> Scheduler<E> {
    pub fn new() -> Self {
        Self::with_thresholds(TO_RADIX, TO_HEAP)
    }

    fn with_thresholds(to_radix: usize, to_heap: usize) -> Self {
        Scheduler {
            heap: MinHeap::with_capacity(1024),
            radix: Radix::new(),
            radix_mode: false,
            lanes: Vec::new(),
            len: 0,
            slots: Vec::with_capacity(1024),
            free_slots: Vec::with_capacity(1024),
            next_seq: 0,
            now: SimTime::ZERO,
            live_timers: 0,
            to_radix,
            to_heap,
        }
    }

    /// The time of the event most recently popped.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// Events waiting, including cancelled ones not yet discarded.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The time and sequence number of an event scheduled now for `at`.
    #[inline(always)]
    fn stamp(&mut self, at: SimTime) -> (u64, u64) {
        debug_assert!(at >= self.now, "event scheduled in the past");
        let seq = self.next_seq;
        self.next_seq += 1;
        self.len += 1;
        (at.max(self.now).0, seq)
    }

    /// Stores an event in a free slot. (Always inlined, as are the scheduling calls: an
    /// event passed through memory, written field by field by the caller and read back
    /// whole, stalls on store forwarding.)
    #[inline(always)]
    fn store(&mut self, seq: u64, timer: bool, event: E) -> u32 {
        match self.free_slots.pop() {
            Some(i) => {
                let s = &mut self.slots[i as usize];
                s.seq = seq;
                s.event = Some(event);
                s.timer = timer;
                i
            }
            None => {
                self.slots.push(Slot {
                    seq,
                    event: Some(event),
                    generation: 0,
                    timer,
                });
                debug_assert!(self.slots.len() < LANE_BIT as usize);
                // Every slot may be free at once: keep room for that in the free list now,
                // so that popping never allocates.
                let cap = self.slots.capacity();
                self.free_slots.reserve(cap - self.free_slots.len());
                (self.slots.len() - 1) as u32
            }
        }
    }

    #[inline(always)]
    fn insert(&mut self, at: SimTime, timer: bool, event: E) -> TimerHandle {
        let (time, seq) = self.stamp(at);
        let slot = self.store(seq, timer, event);
        if !self.radix_mode {
            self.heap_push(HeapEntry { time, seq, slot });
        } else {
            self.radix_insert(time, slot);
        }
        TimerHandle {
            slot,
            generation: self.slots[slot as usize].generation,
        }
    }

    #[inline(always)]
    fn heap_push(&mut self, e: HeapEntry) {
        self.heap.push(e);
        if self.heap.len() > self.to_radix {
            self.switch_to_radix();
        }
    }

    // The radix-heap paths are out of line, so that the binary-heap paths stay small.

    #[inline(never)]
    fn radix_insert(&mut self, time: u64, slot: u32) {
        if time < self.radix.last {
            // Scheduled before an event `peek_time` looked at (between two runs).
            self.rebuild_radix();
        }
        self.radix.reserve_for(self.len);
        self.radix.push(Entry { time, slot });
    }

    /// Moves every pending entry from the radix heap into the heap's buffer (unordered).
    fn drain_radix(&mut self) {
        let mut v = self.heap.take_vec();
        for b in 0..BUCKETS {
            let bk = self.radix.take_bucket(b);
            self.radix.for_each(bk, |e| {
                let seq = self.slots[e.slot as usize].seq;
                v.push(HeapEntry {
                    time: e.time,
                    seq,
                    slot: e.slot,
                });
            });
            self.radix.release_list(bk);
        }
        self.heap = MinHeap::from_vec(v);
    }

    /// Fills the (empty) radix heap from the heap's buffer, in (time, sequence) order so that
    /// every bucket lists its entries in scheduling order. `last` is `now`, which no pending
    /// event precedes.
    fn fill_radix(&mut self) {
        let mut v = self.heap.take_vec();
        v.sort_unstable_by_key(HeapEntry::key);
        self.radix.reset(self.now.0);
        self.radix.reserve_for(v.len());
        for e in &v {
            self.radix.push(Entry {
                time: e.time,
                slot: e.slot,
            });
        }
        v.clear();
        self.heap = MinHeap::from_vec(v);
    }

    #[cold]
    #[inline(never)]
    fn switch_to_radix(&mut self) {
        self.drain_lanes();
        self.fill_radix();
        self.radix_mode = true;
    }

    /// Moves every lane's events into slots and the heap's buffer (unordered), in place
    /// of the lanes' head entries, and empties the lanes.
    fn drain_lanes(&mut self) {
        let mut v = self.heap.take_vec();
        v.retain(|e| e.slot & LANE_BIT == 0);
        let mut lanes = std::mem::take(&mut self.lanes);
        for lane in &mut lanes {
            while let Some(e) = lane.pop_front() {
                let slot = self.store(e.seq, false, e.event);
                v.push(HeapEntry {
                    time: e.time,
                    seq: e.seq,
                    slot,
                });
            }
        }
        self.lanes = lanes;
        self.heap = MinHeap::from_vec(v);
    }

    #[cold]
    #[inline(never)]
    fn switch_to_heap(&mut self) {
        self.drain_radix();
        self.radix_mode = false;
    }

    /// Sorts every pending event into the radix heap again, relative to `now`.
    #[cold]
    #[inline(never)]
    fn rebuild_radix(&mut self) {
        self.drain_radix();
        self.fill_radix();
    }

    /// The earliest entry (left in place) as (time, slot), or None if nothing is pending.
    #[inline]
    fn front(&mut self) -> Option<(u64, u32)> {
        if self.radix_mode {
            self.radix_front()
        } else {
            self.heap.peek().map(|e| (e.time, e.slot))
        }
    }

    #[inline(never)]
    fn radix_front(&mut self) -> Option<(u64, u32)> {
        self.radix.front().map(|e| (e.time, e.slot))
    }

    /// Removes the entry `front` returned, a slot's (not a lane's), and frees the slot.
    #[inline]
    fn advance(&mut self, slot: u32) {
        self.len -= 1;
        self.free_slots.push(slot);
        if self.radix_mode {
            self.radix_advance();
        } else {
            self.heap.pop();
        }
    }

    /// Takes the head of `lane`, whose entry `front` returned; the lane's next event, if
    /// any, takes its place in the heap with one sift-down.
    #[inline]
    fn pop_lane(&mut self, lane: u32) -> Option<E> {
        let q = &mut self.lanes[(lane & !LANE_BIT) as usize];
        let head = q.pop_front()?;
        self.len -= 1;
        match q.front() {
            Some(next) => {
                self.heap.replace_top(HeapEntry {
                    time: next.time,
                    seq: next.seq,
                    slot: lane,
                });
            }
            None => {
                self.heap.pop();
            }
        }
        Some(head.event)
    }

    #[inline(never)]
    fn radix_advance(&mut self) {
        self.radix.advance();
        if self.len < self.to_heap {
            self.switch_to_heap();
        }
    }

    /// Schedules `event` at `at` (not before now). It cannot be cancelled.
    #[inline(always)]
    pub fn schedule(&mut self, at: SimTime, event: E) {
        self.insert(at, false, event);
    }

    /// A new, empty lane.
    pub fn add_lane(&mut self) -> LaneId {
        self.lanes.push(Lane::new());
        debug_assert!(self.lanes.len() < LANE_BIT as usize);
        LaneId((self.lanes.len() - 1) as u32)
    }

    /// Schedules `event` at `at` (not before now) in `lane`; it cannot be cancelled. Pops
    /// in the same order as [`Self::schedule`] would; cheaper when `at` is not before the
    /// time of the lane's last event, as for frames a link delivers in order.
    #[inline(always)]
    pub fn schedule_in_lane(&mut self, lane: LaneId, at: SimTime, event: E) {
        let in_order = match self.lanes.get(lane.0 as usize) {
            Some(q) => q.back().is_none_or(|b| at.max(self.now).0 >= b.time),
            None => false,
        };
        if self.radix_mode || !in_order {
            self.insert(at, false, event);
            return;
        }
        let (time, seq) = self.stamp(at);
        let q = &mut self.lanes[lane.0 as usize];
        q.push_back(LaneEntry { time, seq, event });
        if q.len == 1 {
            self.heap_push(HeapEntry {
                time,
                seq,
                slot: LANE_BIT | lane.0,
            });
        }
    }

    /// Schedules `event` at `at` and returns a handle that can cancel it.
    #[inline(always)]
    pub fn schedule_timer(&mut self, at: SimTime, event: E) -> TimerHandle {
        self.live_timers += 1;
        self.insert(at, true, event)
    }

    /// Cancels a timer. Returns false if it already fired or was cancelled.
    pub fn cancel(&mut self, handle: TimerHandle) -> bool {
        match self.slots.get_mut(handle.slot as usize) {
            Some(s) if s.generation == handle.generation && s.timer && s.event.is_some() => {
                // The bucket entry stays until it surfaces; the slot is freed then, not now,
                // so it is not reused while the entry waits.
                s.event = None;
                s.generation = s.generation.wrapping_add(1);
                self.live_timers -= 1;
                true
            }
            _ => false,
        }
    }

    /// True while the timer is scheduled and not cancelled.
    pub fn is_pending(&self, handle: TimerHandle) -> bool {
        self.slots
            .get(handle.slot as usize)
            .is_some_and(|s| s.generation == handle.generation && s.event.is_some())
    }

    /// Time of the next event that will pop, skipping cancelled ones.
    #[inline(always)]
    pub fn peek_time(&mut self) -> Option<SimTime> {
        loop {
            let (time, slot) = self.front()?;
            if slot & LANE_BIT != 0 || self.slots[slot as usize].event.is_some() {
                return Some(SimTime(time));
            }
            self.advance(slot);
        }
    }

    /// Removes and returns the next event, advancing `now` to its time. (Always inlined:
    /// returned through memory, the event is read back whole right after being written
    /// in pieces, and stalls on store forwarding.)
    #[inline(always)]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        loop {
            let (time, slot) = self.front()?;
            if slot & LANE_BIT != 0 {
                let event = self.pop_lane(slot)?;
                let t = SimTime(time);
                self.now = t;
                return Some((t, event));
            }
            self.advance(slot);
            let s = &mut self.slots[slot as usize];
            let Some(event) = s.event.take() else {
                continue; // cancelled
            };
            s.generation = s.generation.wrapping_add(1);
            if s.timer {
                self.live_timers -= 1;
            }
            let t = SimTime(time);
            self.now = t;
            return Some((t, event));
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

    /// A small deterministic generator for the randomized tests.
    fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    /// Compares a scheduler with the given switching thresholds against a reference (a list
    /// of (time, seq) searched for its minimum) over random schedules, timers, lanes
    /// (mostly in order, sometimes not), cancellations, peeks and pops, including events
    /// scheduled before a peeked-at event and many events at equal times.
    fn check_against_reference(to_radix: usize, to_heap: usize, rounds: usize, ops: usize) {
        let mut rnd = xorshift(0x2545_f491_4f6c_dd1d);
        for round in 0..rounds {
            let mut s: Scheduler<u64> = Scheduler::with_thresholds(to_radix, to_heap);
            let lanes: Vec<LaneId> = (0..4).map(|_| s.add_lane()).collect();
            let mut lane_last = [0u64; 4];
            // (time, seq, cancelled, handle)
            let mut reference: Vec<(u64, u64, bool, Option<TimerHandle>)> = Vec::new();
            let mut seq = 0u64;
            let mut now = 0u64;
            let span = [4u64, 1000, 1 << 40][round % 3];
            // Phases that grow and shrink the queue, so that it changes form both ways.
            let grow = [6u64, 3, 5, 2][round % 4];
            for op in 0..ops {
                let inserts = if (op / 500) % 2 == 0 { grow } else { 3 };
                let r = rnd() % 10;
                if r < inserts {
                    let mut at = now + rnd() % span;
                    let h = match rnd() % 3 {
                        0 => Some(s.schedule_timer(SimTime(at), seq)),
                        1 => {
                            s.schedule(SimTime(at), seq);
                            None
                        }
                        _ => {
                            let l = (rnd() % 4) as usize;
                            if !rnd().is_multiple_of(8) {
                                at = at.max(lane_last[l]);
                            }
                            lane_last[l] = lane_last[l].max(at);
                            s.schedule_in_lane(lanes[l], SimTime(at), seq);
                            None
                        }
                    };
                    reference.push((at, seq, false, h));
                    seq += 1;
                } else if r == 6 {
                    // Cancel a random timer (maybe one that already fired or was cancelled).
                    if let Some(i) =
                        (!reference.is_empty()).then(|| (rnd() % reference.len() as u64) as usize)
                    {
                        if let Some(h) = reference[i].3 {
                            assert_eq!(s.cancel(h), !reference[i].2);
                            reference[i].2 = true;
                            assert!(!s.is_pending(h));
                        }
                    }
                } else if r == 7 {
                    let expect = reference
                        .iter()
                        .filter(|r| !r.2)
                        .min_by_key(|r| (r.0, r.1))
                        .map(|r| SimTime(r.0));
                    assert_eq!(s.peek_time(), expect);
                } else {
                    let expect = reference
                        .iter()
                        .filter(|r| !r.2)
                        .min_by_key(|r| (r.0, r.1))
                        .map(|r| (r.0, r.1));
                    assert_eq!(s.pop().map(|(t, e)| (t.0, e)), expect);
                    if let Some((t, e)) = expect {
                        now = t;
                        reference.retain(|r| r.1 != e);
                    }
                }
                let live = reference.iter().filter(|r| !r.2);
                assert_eq!(s.live_timers(), live.filter(|r| r.3.is_some()).count());
            }
            // Drain: everything left pops in (time, seq) order.
            let mut rest: Vec<_> = reference
                .iter()
                .filter(|r| !r.2)
                .map(|r| (r.0, r.1))
                .collect();
            rest.sort();
            let popped: Vec<_> = std::iter::from_fn(|| s.pop().map(|(t, e)| (t.0, e))).collect();
            assert_eq!(popped, rest);
            assert!(s.is_empty());
        }
    }

    #[test]
    fn a_lane_in_order_keeps_only_its_head_in_the_heap() {
        let mut s = Scheduler::new();
        let lane = s.add_lane();
        for i in 0..1000u64 {
            s.schedule_in_lane(lane, SimTime(10 + i / 2), i);
        }
        s.schedule(SimTime(12), 5000);
        assert_eq!((s.len(), s.heap.len()), (1001, 2));
        // Out of order for the lane: queued as any other event, still popped in order.
        s.schedule_in_lane(lane, SimTime(11), 6000);
        assert_eq!(s.heap.len(), 3);
        let order: Vec<u64> = std::iter::from_fn(|| s.pop().map(|(_, e)| e)).collect();
        let mut expect: Vec<u64> = (0..1000).collect();
        expect.insert(4, 6000);
        expect.insert(7, 5000);
        assert_eq!(order, expect);
    }

    #[test]
    fn matches_a_reference_queue_as_a_binary_heap() {
        check_against_reference(usize::MAX, 0, 12, 3000);
    }

    #[test]
    fn matches_a_reference_queue_as_a_radix_heap() {
        check_against_reference(0, 0, 12, 3000);
    }

    #[test]
    fn matches_a_reference_queue_while_switching_forms() {
        check_against_reference(40, 10, 24, 4000);
        check_against_reference(4, 1, 12, 2000);
    }

    /// The real thresholds, with a queue large enough to cross them both ways.
    #[test]
    fn large_queue_pops_in_order_through_both_forms() {
        let mut rnd = xorshift(7);
        let mut s: Scheduler<u64> = Scheduler::new();
        let mut last = (0, 0);
        let mut popped = 0u64;
        let mut seq = 0u64;
        for phase in 0..4 {
            let target = if phase % 2 == 0 {
                3 * TO_RADIX
            } else {
                TO_HEAP / 2
            };
            while (s.len() < target) == (phase % 2 == 0) {
                if phase % 2 == 0 || rnd() & 3 == 0 {
                    let at = s.now().0 + rnd() % 5000;
                    s.schedule(SimTime(at), seq);
                    seq += 1;
                }
                if phase % 2 == 1 || rnd() & 3 == 0 {
                    let (t, e) = s.pop().unwrap();
                    assert!((t.0, e) > last, "{:?} after {:?}", (t.0, e), last);
                    last = (t.0, e);
                    popped += 1;
                }
            }
            assert_eq!(s.radix_mode, phase % 2 == 0);
        }
        assert!(popped > TO_RADIX as u64);
    }
}

//! The byte stream's storage: what the sender keeps until it is acknowledged, and what the
//! receiver holds until the application reads it (in order, and out of order).
//!
//! Offsets are 64-bit stream positions (byte 0 is the first byte after the SYN), so no
//! wraparound arithmetic happens here. Payloads are [`Payload`] values: bulk senders write
//! a generated pattern that costs nothing to store or slice; real bytes are kept as bytes.

use sim_core::packet::{pattern_byte, Payload};
use std::collections::VecDeque;
use std::sync::Arc;

/// `len` bytes of `p` starting at byte `off`.
pub fn slice_payload(p: &Payload, off: usize, len: usize) -> Payload {
    let total = p.len();
    let off = off.min(total);
    let len = len.min(total - off);
    if off == 0 && len == total {
        return p.clone();
    }
    match p {
        Payload::Inline {
            head,
            head_len,
            len: _,
        } => {
            let h = *head_len as usize;
            if off >= h {
                Payload::zeros(len as u32)
            } else {
                let end = (off + len).min(h);
                Payload::with_head(&head[off..end], len as u32)
            }
        }
        Payload::Pattern { stream, offset, .. } => Payload::Pattern {
            stream: *stream,
            offset: offset + off as u64,
            len: len as u32,
        },
        Payload::Bytes(b) => Payload::Bytes(Arc::from(&b[off..off + len])),
    }
}

/// Can `b` follow `a` as one payload without copying?
fn try_merge(a: &Payload, b: &Payload) -> Option<Payload> {
    match (a, b) {
        (
            Payload::Pattern {
                stream: s1,
                offset: o1,
                len: l1,
            },
            Payload::Pattern {
                stream: s2,
                offset: o2,
                len: l2,
            },
        ) if s1 == s2 && o1 + *l1 as u64 == *o2 && (*l1 as u64 + *l2 as u64) <= u32::MAX as u64 => {
            Some(Payload::Pattern {
                stream: *s1,
                offset: *o1,
                len: l1 + l2,
            })
        }
        (
            Payload::Inline {
                head_len: 0,
                len: l1,
                ..
            },
            Payload::Inline {
                head_len: 0,
                len: l2,
                ..
            },
        ) => Some(Payload::zeros(l1 + l2)),
        _ => None,
    }
}

/// Concatenates payloads into one (real bytes unless they merge without copying).
pub fn concat_payloads(parts: &[Payload]) -> Payload {
    match parts {
        [] => Payload::empty(),
        [one] => one.clone(),
        _ => {
            let mut acc = parts[0].clone();
            let mut ok = true;
            for p in &parts[1..] {
                match try_merge(&acc, p) {
                    Some(m) => acc = m,
                    None => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                return acc;
            }
            let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
            for p in parts {
                p.write_to(&mut out);
            }
            Payload::Bytes(Arc::from(out))
        }
    }
}

/// Data written by the application and not yet acknowledged.
#[derive(Debug, Default)]
pub struct SendBuffer {
    /// (stream offset of first byte, payload), contiguous and in order.
    chunks: VecDeque<(u64, Payload)>,
    /// Stream offset of the first byte still held.
    start: u64,
    /// Stream offset just past the last byte written.
    end: u64,
}

impl SendBuffer {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Appends `p` (merging with the previous chunk when that costs nothing).
    pub fn push(&mut self, p: Payload) {
        let n = p.len() as u64;
        if n == 0 {
            return;
        }
        if let Some((_, last)) = self.chunks.back_mut() {
            if let Some(m) = try_merge(last, &p) {
                *last = m;
                self.end += n;
                return;
            }
        }
        self.chunks.push_back((self.end, p));
        self.end += n;
    }

    /// Forgets everything before stream offset `upto` (it was acknowledged).
    pub fn release(&mut self, upto: u64) {
        let upto = upto.min(self.end);
        while let Some((at, p)) = self.chunks.front() {
            let chunk_end = at + p.len() as u64;
            if chunk_end <= upto {
                self.chunks.pop_front();
            } else {
                if *at < upto {
                    let cut = (upto - at) as usize;
                    let rest = slice_payload(p, cut, p.len() - cut);
                    self.chunks[0] = (upto, rest);
                }
                break;
            }
        }
        self.start = self.start.max(upto);
        if self.chunks.is_empty() {
            self.chunks = VecDeque::new();
        }
    }

    /// The bytes `[from, from + len)` as one payload.
    pub fn read(&self, from: u64, len: u64) -> Payload {
        let to = (from + len).min(self.end);
        let mut parts: [Option<Payload>; 4] = [None, None, None, None];
        let mut n = 0;
        let mut spill: Vec<Payload> = Vec::new();
        // Chunks are contiguous: find the first one that ends after `from`.
        let idx = self
            .chunks
            .partition_point(|(at, p)| at + p.len() as u64 <= from);
        for (at, p) in self.chunks.iter().skip(idx) {
            if *at >= to {
                break;
            }
            let s = from.max(*at) - at;
            let e = to.min(at + p.len() as u64) - at;
            let piece = slice_payload(p, s as usize, (e - s) as usize);
            if n < parts.len() {
                parts[n] = Some(piece);
                n += 1;
            } else {
                spill.push(piece);
            }
        }
        if n == 1 && spill.is_empty() {
            return parts[0].take().unwrap_or_else(Payload::empty);
        }
        let mut all: Vec<Payload> = parts.into_iter().flatten().collect();
        all.extend(spill);
        concat_payloads(&all)
    }
}

/// Received data: in order and waiting for the application, and out of order.
#[derive(Debug, Default)]
pub struct RecvBuffer {
    ready: VecDeque<Payload>,
    /// Bytes of `ready[0]` already read.
    front_read: usize,
    ready_len: u64,
    /// Out-of-order segments sorted by stream offset, never overlapping. A deque rather
    /// than a tree: segments mostly arrive in ascending order (appends), and it keeps its
    /// capacity from one loss episode to the next, so steady state does not allocate.
    ooo: VecDeque<(u64, Payload)>,
    ooo_len: u64,
    /// Stream offset of the next in-order byte expected.
    next: u64,
}

impl RecvBuffer {
    pub fn next(&self) -> u64 {
        self.next
    }
    /// Bytes held (readable plus out of order).
    pub fn held(&self) -> u64 {
        self.ready_len + self.ooo_len
    }
    pub fn readable(&self) -> u64 {
        self.ready_len
    }
    pub fn has_ooo(&self) -> bool {
        !self.ooo.is_empty()
    }

    /// Stores the segment at stream offset `at`; returns how many bytes became readable.
    pub fn insert(&mut self, at: u64, p: &Payload) -> u64 {
        let len = p.len() as u64;
        let end = at + len;
        if end <= self.next || len == 0 {
            return 0;
        }
        let before = self.next;
        if at <= self.next {
            let skip = (self.next - at) as usize;
            let piece = slice_payload(p, skip, p.len() - skip);
            self.push_ready(piece);
            self.pull_ooo();
        } else {
            self.insert_ooo(at, p);
        }
        self.next - before
    }

    fn push_ready(&mut self, piece: Payload) {
        let n = piece.len() as u64;
        self.next += n;
        self.ready_len += n;
        let mergeable = self.ready.len() > 1 || self.front_read == 0;
        if let (true, Some(last)) = (mergeable, self.ready.back_mut()) {
            if let Some(m) = try_merge(last, &piece) {
                *last = m;
                return;
            }
        }
        self.ready.push_back(piece);
    }

    fn pull_ooo(&mut self) {
        while let Some(&(at, _)) = self.ooo.front() {
            if at > self.next {
                break;
            }
            let Some((at, p)) = self.ooo.pop_front() else {
                break;
            };
            self.ooo_len -= p.len() as u64;
            let end = at + p.len() as u64;
            if end > self.next {
                let skip = (self.next - at) as usize;
                self.push_ready(slice_payload(&p, skip, p.len() - skip));
            }
        }
    }

    /// Stores the parts of `p` (at stream offset `at`) that no held segment covers.
    fn insert_ooo(&mut self, at: u64, p: &Payload) {
        let end = at + p.len() as u64;
        // First held segment that ends after `at`: everything before it is left of us.
        let first = self.ooo.partition_point(|(s, q)| s + q.len() as u64 <= at);
        let mut i = first;
        let mut cursor = at;
        while cursor < end {
            let next_start = self.ooo.get(i).map_or(end, |(s, _)| (*s).min(end));
            if next_start > cursor {
                let piece =
                    slice_payload(p, (cursor - at) as usize, (next_start - cursor) as usize);
                self.ooo_len += next_start - cursor;
                self.ooo.insert(i, (cursor, piece));
                i += 1;
                cursor = next_start;
                continue;
            }
            // `ooo[i]` covers `cursor`: skip past it.
            let (s, q) = &self.ooo[i];
            cursor = cursor.max(s + q.len() as u64);
            i += 1;
        }
        self.coalesce_ooo(first.saturating_sub(1), i);
    }

    /// Merges neighbours among `ooo[from..=to]` that continue each other without a copy
    /// (pattern pieces), so that the queue holds about one entry per run of contiguous
    /// data: SACK blocks are built from it on every ACK sent.
    fn coalesce_ooo(&mut self, from: usize, to: usize) {
        let mut to = to.min(self.ooo.len().saturating_sub(1));
        let mut j = from;
        while j < to {
            let (s, a) = &self.ooo[j];
            let (s2, b) = &self.ooo[j + 1];
            let merged = (s + a.len() as u64 == *s2)
                .then(|| try_merge(a, b))
                .flatten();
            match merged {
                Some(m) => {
                    self.ooo[j].1 = m;
                    self.ooo.remove(j + 1);
                    to -= 1;
                }
                None => j += 1,
            }
        }
    }

    /// Out-of-order ranges, merged, in ascending order (for SACK blocks).
    pub fn ooo_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let mut it = self
            .ooo
            .iter()
            .map(|(s, p)| (*s, s + p.len() as u64))
            .peekable();
        std::iter::from_fn(move || {
            let (s, mut e) = it.next()?;
            while let Some(&(s2, e2)) = it.peek() {
                if s2 != e {
                    break;
                }
                e = e2;
                it.next();
            }
            Some((s, e))
        })
    }

    /// The out-of-order range (as [`Self::ooo_ranges`] merges them) that holds offset
    /// `off`, found with a binary search: the receiver looks for the range of the latest
    /// arrival on every ACK it sends.
    pub fn ooo_range_holding(&self, off: u64) -> Option<(u64, u64)> {
        let end_of = |i: usize| self.ooo[i].0 + self.ooo[i].1.len() as u64;
        let i = self.ooo.partition_point(|(s, q)| s + q.len() as u64 <= off);
        if self.ooo.get(i).is_none_or(|(s, _)| *s > off) {
            return None;
        }
        let (mut first, mut last) = (i, i);
        while first > 0 && end_of(first - 1) == self.ooo[first].0 {
            first -= 1;
        }
        while last + 1 < self.ooo.len() && self.ooo[last + 1].0 == end_of(last) {
            last += 1;
        }
        Some((self.ooo[first].0, end_of(last)))
    }

    /// Takes up to `max` readable bytes, appending the pieces to `out`.
    pub fn read(&mut self, max: u64, out: &mut Vec<Payload>) -> u64 {
        let mut got = 0;
        while got < max {
            let Some(front) = self.ready.front() else {
                break;
            };
            let avail = (front.len() - self.front_read) as u64;
            let take = avail.min(max - got);
            out.push(slice_payload(front, self.front_read, take as usize));
            got += take;
            if take == avail {
                self.ready.pop_front();
                self.front_read = 0;
            } else {
                self.front_read += take as usize;
            }
        }
        self.ready_len -= got;
        // Give back a large queue once drained (idle connections stay small); a small one
        // is kept so that a busy connection does not allocate on every read.
        if self.ready.is_empty() && self.ready.capacity() > 16 {
            self.ready = VecDeque::new();
        }
        got
    }

    /// Drops everything (RST, abort).
    pub fn clear(&mut self) {
        self.ready = VecDeque::new();
        self.front_read = 0;
        self.ready_len = 0;
        self.ooo.clear();
        self.ooo_len = 0;
    }
}

/// Checks a received byte stream against what a pattern (or byte) sender wrote, without
/// storing it: each pattern stream must continue exactly where it left off.
#[derive(Debug, Default, Clone)]
pub struct StreamVerifier {
    expected: Option<(u64, u64)>,
    pub verified: u64,
    pub mismatches: u64,
}

impl StreamVerifier {
    /// Checks the next received piece; returns false on the first mismatch in it.
    pub fn check(&mut self, p: &Payload) -> bool {
        match p {
            Payload::Pattern {
                stream,
                offset,
                len,
            } => {
                let ok = match self.expected {
                    None => true,
                    Some((s, o)) => s == *stream && o == *offset,
                };
                self.expected = Some((*stream, offset + *len as u64));
                self.tally(ok, *len as u64)
            }
            Payload::Bytes(b) => {
                // Bytes that reached us by a copy (e.g. a segment merged from pieces):
                // compare with the pattern continuation.
                let ok = match self.expected {
                    Some((s, o)) => b
                        .iter()
                        .enumerate()
                        .all(|(i, &x)| x == pattern_byte(s, o + i as u64)),
                    None => false,
                };
                if let Some((s, o)) = self.expected {
                    self.expected = Some((s, o + b.len() as u64));
                }
                self.tally(ok, b.len() as u64)
            }
            Payload::Inline { .. } => self.tally(false, p.len() as u64),
        }
    }

    fn tally(&mut self, ok: bool, n: u64) -> bool {
        if ok {
            self.verified += n;
        } else {
            self.mismatches += 1;
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(offset: u64, len: u32) -> Payload {
        Payload::Pattern {
            stream: 7,
            offset,
            len,
        }
    }

    #[test]
    fn send_buffer_reads_and_releases() {
        let mut b = SendBuffer::default();
        b.push(pat(0, 1000));
        b.push(pat(1000, 1000));
        assert_eq!(b.len(), 2000);
        assert_eq!(b.read(500, 1000), pat(500, 1000));
        b.push(Payload::bytes(b"hello"));
        let mixed = b.read(1998, 4);
        let mut bytes = Vec::new();
        mixed.write_to(&mut bytes);
        assert_eq!(&bytes[2..], b"he");
        assert_eq!(bytes[0], pattern_byte(7, 1998));
        b.release(1500);
        assert_eq!(b.len(), 505);
        assert_eq!(b.read(1500, 10), pat(1500, 10));
        b.release(2005);
        assert!(b.is_empty());
    }

    #[test]
    fn receive_buffer_reorders_and_trims_overlap() {
        let mut r = RecvBuffer::default();
        assert_eq!(r.insert(100, &pat(100, 100)), 0);
        assert_eq!(r.insert(150, &pat(150, 100)), 0);
        assert_eq!(r.ooo_ranges().collect::<Vec<_>>(), vec![(100, 250)]);
        // Filling holes between held segments keeps them sorted and disjoint.
        assert_eq!(r.insert(400, &pat(400, 50)), 0);
        assert_eq!(r.insert(300, &pat(300, 50)), 0);
        assert_eq!(r.insert(200, &pat(200, 300)), 0);
        assert_eq!(r.ooo_ranges().collect::<Vec<_>>(), vec![(100, 500)]);
        assert_eq!(r.ooo_range_holding(100), Some((100, 500)));
        assert_eq!(r.ooo_range_holding(499), Some((100, 500)));
        assert_eq!(r.ooo_range_holding(500), None);
        assert_eq!(r.ooo_range_holding(99), None);
        assert_eq!(r.held(), 400);
        // Contiguous pattern pieces are held as one.
        assert_eq!(r.ooo.len(), 1);
        let mut out = Vec::new();
        assert_eq!(r.insert(0, &pat(0, 100)), 500);
        assert_eq!(r.read(1000, &mut out), 500);
        let mut v = StreamVerifier::default();
        for p in &out {
            assert!(v.check(p), "{p:?}");
        }
        assert_eq!(v.verified, 500);
        let mut r = RecvBuffer::default();
        assert_eq!(r.insert(100, &pat(100, 100)), 0);
        assert_eq!(r.insert(150, &pat(150, 100)), 0);
        assert_eq!(r.held(), 150);
        assert_eq!(r.insert(0, &pat(0, 120)), 250);
        assert!(!r.has_ooo());
        let mut out = Vec::new();
        assert_eq!(r.read(1000, &mut out), 250);
        let mut v = StreamVerifier::default();
        for p in &out {
            assert!(v.check(p), "{p:?}");
        }
        assert_eq!(v.verified, 250);
        // A duplicate is ignored.
        assert_eq!(r.insert(0, &pat(0, 100)), 0);
    }

    /// Byte payloads are not coalesced: adjacent entries still form one range.
    #[test]
    fn range_holding_an_offset_spans_adjacent_entries() {
        let mut r = RecvBuffer::default();
        let bytes = |n: usize| Payload::bytes(&vec![7u8; n]);
        r.insert(100, &bytes(10));
        r.insert(110, &bytes(10));
        r.insert(120, &bytes(10));
        r.insert(200, &bytes(10));
        r.insert(90, &bytes(10));
        assert!(r.ooo.len() >= 4);
        let ranges: Vec<_> = r.ooo_ranges().collect();
        assert_eq!(ranges, vec![(90, 130), (200, 210)]);
        for off in 0..260 {
            let expect = ranges.iter().copied().find(|(s, e)| *s <= off && off < *e);
            assert_eq!(r.ooo_range_holding(off), expect, "offset {off}");
        }
    }

    #[test]
    fn verifier_catches_gaps() {
        let mut v = StreamVerifier::default();
        assert!(v.check(&pat(0, 10)));
        assert!(!v.check(&pat(11, 10)));
        assert_eq!(v.mismatches, 1);
    }
}

//! An index of the SACK scoreboard: which stretches of the send sequence space are SACKed,
//! as sorted, disjoint, non-adjacent ranges of send offsets.
//!
//! Owns only the ranges. The connection keeps the retransmission queue and the flags on
//! its segments; it tells this index when a segment is SACKed and when the cumulative ACK
//! moves, so that the ranges are always the union of the queued SACKed segments' ranges.
//! Walks over the queue (SACK tagging, RACK's loss scan, finding the next segment to
//! retransmit) use [`SackedRanges::run_end`] to jump over a run of SACKed segments with a
//! binary search instead of stepping through each: with many segments SACKed above a few
//! holes, as when a bottleneck queue overflows under BBR, those walks were the largest
//! per-ACK cost.

/// Sorted, disjoint, non-adjacent `[start, end)` ranges of send offsets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SackedRanges {
    ranges: Vec<(u64, u64)>,
}

impl SackedRanges {
    /// Adds `[start, end)` (a segment that was just SACKed), merging with the ranges it
    /// touches.
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // The first range that ends at or after `start`: the first that may touch it.
        let i = self.ranges.partition_point(|&(_, e)| e < start);
        match self.ranges.get(i) {
            Some(&(s, _)) if s <= end => {
                let r = &mut self.ranges[i];
                r.0 = r.0.min(start);
                r.1 = r.1.max(end);
                // Absorb the following ranges the grown one now reaches.
                let mut j = i + 1;
                while j < self.ranges.len() && self.ranges[j].0 <= self.ranges[i].1 {
                    self.ranges[i].1 = self.ranges[i].1.max(self.ranges[j].1);
                    j += 1;
                }
                self.ranges.drain(i + 1..j);
            }
            _ => self.ranges.insert(i, (start, end)),
        }
    }

    /// Forgets everything below `ack` (cumulatively acknowledged).
    pub fn release_below(&mut self, ack: u64) {
        let gone = self.ranges.partition_point(|&(_, e)| e <= ack);
        self.ranges.drain(..gone);
        if let Some(first) = self.ranges.first_mut() {
            first.0 = first.0.max(ack);
        }
    }

    /// The end of the range holding offset `off`, if it is SACKed.
    pub fn run_end(&self, off: u64) -> Option<u64> {
        let i = self.ranges.partition_point(|&(_, e)| e <= off);
        self.ranges
            .get(i)
            .filter(|&&(s, _)| s <= off)
            .map(|&(_, e)| e)
    }

    /// [`Self::run_end`] for a walk in increasing offsets: `cursor` (start it at 0)
    /// remembers where the previous call stopped, so that a walk over every run costs one
    /// step per run instead of a binary search each. The ranges must not change during
    /// the walk.
    pub fn run_end_walking(&self, cursor: &mut usize, off: u64) -> Option<u64> {
        while self.ranges.get(*cursor).is_some_and(|&(_, e)| e <= off) {
            *cursor += 1;
        }
        self.ranges
            .get(*cursor)
            .filter(|&&(s, _)| s <= off)
            .map(|&(_, e)| e)
    }

    /// A cursor for [`Self::run_end_walking`] for a walk that starts at offset `off`: the
    /// same as one moved there from 0, found with a binary search.
    pub fn cursor_at(&self, off: u64) -> usize {
        self.ranges.partition_point(|&(_, e)| e <= off)
    }

    #[cfg(test)]
    pub fn as_slice(&self) -> &[(u64, u64)] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_merge_and_release_trims() {
        let mut r = SackedRanges::default();
        r.insert(10, 20);
        r.insert(30, 40);
        r.insert(50, 60);
        assert_eq!(r.as_slice(), &[(10, 20), (30, 40), (50, 60)]);
        // Adjacent on both sides: one range.
        r.insert(20, 30);
        assert_eq!(r.as_slice(), &[(10, 40), (50, 60)]);
        r.insert(0, 5);
        r.insert(45, 50);
        assert_eq!(r.as_slice(), &[(0, 5), (10, 40), (45, 60)]);
        assert_eq!(r.run_end(12), Some(40));
        assert_eq!(r.run_end(40), None);
        assert_eq!(r.run_end(5), None);
        assert_eq!(r.run_end(0), Some(5));
        r.release_below(15);
        assert_eq!(r.as_slice(), &[(15, 40), (45, 60)]);
        r.release_below(40);
        assert_eq!(r.as_slice(), &[(45, 60)]);
        r.release_below(100);
        assert_eq!(r.as_slice(), &[]);
    }

    /// Against a bitmap of offsets, under random inserts and releases.
    #[test]
    fn matches_a_bitmap() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..50 {
            let mut r = SackedRanges::default();
            let mut bits = [false; 200];
            let mut floor = 0;
            for _ in 0..100 {
                if rnd(8) == 0 {
                    floor = (floor + rnd(20)).min(200);
                    r.release_below(floor);
                    bits[..floor as usize].iter_mut().for_each(|b| *b = false);
                } else {
                    let s = floor + rnd(200 - floor.min(199));
                    let e = (s + 1 + rnd(10)).min(200);
                    r.insert(s, e);
                    bits[s as usize..e as usize]
                        .iter_mut()
                        .for_each(|b| *b = true);
                }
                let mut expect = Vec::new();
                for (i, &b) in bits.iter().enumerate() {
                    match (b, expect.last_mut()) {
                        (true, Some((_, e))) if *e == i as u64 => *e += 1,
                        (true, _) => expect.push((i as u64, i as u64 + 1)),
                        _ => {}
                    }
                }
                assert_eq!(r.as_slice(), &expect[..]);
                let mut cursor = 0;
                for (i, &b) in bits.iter().enumerate() {
                    let mut from_here = r.cursor_at(i as u64);
                    assert_eq!(
                        r.run_end_walking(&mut from_here, i as u64),
                        r.run_end(i as u64)
                    );
                    let end = expect
                        .iter()
                        .find(|(s, e)| *s <= i as u64 && (i as u64) < *e);
                    assert_eq!(r.run_end(i as u64), end.map(|r| r.1));
                    assert_eq!(r.run_end_walking(&mut cursor, i as u64), end.map(|r| r.1));
                    assert_eq!(b, end.is_some());
                }
            }
        }
    }
}

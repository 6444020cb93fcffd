//! TCP sequence numbers: 32-bit values compared modulo 2^32 (RFC 9293 section 3.4,
//! RB-TCP-31).
//!
//! `a.before(b)` means `a` precedes `b` in sequence space, i.e. `(b - a) mod 2^32` lies
//! in `1 ..= 2^31 - 1`. This is only a strict order among numbers less than 2^31 apart,
//! which TCP guarantees by bounding windows.

use std::fmt;
use std::ops::{Add, Sub};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// `self` comes strictly before `other`.
    pub fn before(self, other: SeqNum) -> bool {
        (self.0.wrapping_sub(other.0) as i32) < 0
    }
    /// `self` comes strictly after `other`.
    pub fn after(self, other: SeqNum) -> bool {
        other.before(self)
    }
    pub fn before_eq(self, other: SeqNum) -> bool {
        !self.after(other)
    }
    pub fn after_eq(self, other: SeqNum) -> bool {
        !self.before(other)
    }
    /// `lo <= self <= hi` in sequence space.
    pub fn between(self, lo: SeqNum, hi: SeqNum) -> bool {
        hi.0.wrapping_sub(lo.0) >= self.0.wrapping_sub(lo.0)
    }
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self.after(other) {
            self
        } else {
            other
        }
    }
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self.before(other) {
            self
        } else {
            other
        }
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    fn add(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }
}

impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    fn sub(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(n))
    }
}

/// The signed distance `self - other` in sequence space.
impl Sub<SeqNum> for SeqNum {
    type Output = i32;
    fn sub(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
}

impl fmt::Debug for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RB-TCP-31
    #[test]
    fn comparisons_wrap_around() {
        let a = SeqNum(u32::MAX - 10);
        let b = a + 20;
        assert_eq!(b.0, 9);
        assert!(a.before(b));
        assert!(b.after(a));
        assert_eq!(b - a, 20);
        assert_eq!(a - b, -20);
        assert!(SeqNum(5).between(a, b));
        assert!(!SeqNum(10).between(a, b));
        assert_eq!(a.max(b), b);
        assert_eq!(a.min(b), a);
        assert!(a.before_eq(a) && a.after_eq(a));
    }

    #[test]
    fn half_space_boundary() {
        let a = SeqNum(0);
        assert!(a.before(SeqNum(0x7fff_ffff)));
        assert!(a.after(SeqNum(0x8000_0001)));
    }
}

//! Round-trip time estimation and the retransmission timeout (RFC 6298 with Linux's
//! `tcp_rtt_estimator` and `tcp_set_rto`, RB-TCP-32).
//!
//! Linux differs from the RFC in one respect worth knowing: the variance term is floored
//! at `rto_min` per window of data (`mdev_max`), so RTO = SRTT + max(4 * RTTVAR, rto_min)
//! roughly; the first sample R gives RTO = R + max(2R, rto_min).

use super::seq::SeqNum;
use sim_core::time::SimDuration;

#[derive(Clone, Copy, Debug)]
pub struct RttEstimator {
    /// Smoothed RTT, in ns (0 until the first sample).
    srtt: u64,
    /// Mean deviation times four (Linux's `mdev_us`), ns.
    mdev: u64,
    /// Largest `mdev` in the current window of data, floored at `rto_min`.
    mdev_max: u64,
    /// The variance term RTO uses (Linux's `rttvar_us`), ns.
    rttvar: u64,
    /// When `snd_una` passes this, a window of data has been sampled.
    rtt_seq: SeqNum,
    min_rtt: u64,
    rto: SimDuration,
}

impl RttEstimator {
    pub fn new(initial_rto: SimDuration) -> Self {
        RttEstimator {
            srtt: 0,
            mdev: 0,
            mdev_max: 0,
            rttvar: 0,
            rtt_seq: SeqNum(0),
            min_rtt: u64::MAX,
            rto: initial_rto,
        }
    }

    /// Feeds one RTT sample, taken when `snd_una` moved; `snd_nxt` marks the window.
    pub fn sample(
        &mut self,
        rtt: SimDuration,
        snd_una: SeqNum,
        snd_nxt: SeqNum,
        rto_min: SimDuration,
        rto_max: SimDuration,
    ) {
        let m = rtt.as_nanos().max(1);
        let rto_min = rto_min.as_nanos();
        self.min_rtt = self.min_rtt.min(m);
        if self.srtt != 0 {
            // srtt += (m - srtt) / 8
            let err = m as i64 - self.srtt as i64;
            self.srtt = (self.srtt as i64 + err / 8).max(1) as u64;
            // mdev += (|err| - mdev) / 4, with Linux's damping of RTT decreases.
            let mut dev = err.abs() - (self.mdev / 4) as i64;
            if err < 0 && dev > 0 {
                dev >>= 3;
            }
            self.mdev = (self.mdev as i64 + dev).max(0) as u64;
            if self.mdev > self.mdev_max {
                self.mdev_max = self.mdev;
                if self.mdev_max > self.rttvar {
                    self.rttvar = self.mdev_max;
                }
            }
            if snd_una.after(self.rtt_seq) {
                if self.mdev_max < self.rttvar {
                    self.rttvar -= (self.rttvar - self.mdev_max) / 4;
                }
                self.rtt_seq = snd_nxt;
                self.mdev_max = rto_min;
            }
        } else {
            self.srtt = m;
            self.mdev = 2 * m;
            self.mdev_max = self.mdev.max(rto_min);
            self.rttvar = self.mdev_max;
            self.rtt_seq = snd_nxt;
        }
        let rto = SimDuration::from_nanos(self.srtt + self.rttvar);
        self.rto = rto.min(rto_max);
    }

    /// The current RTO, before exponential backoff.
    pub fn rto(&self) -> SimDuration {
        self.rto
    }
    pub fn srtt(&self) -> Option<SimDuration> {
        (self.srtt != 0).then(|| SimDuration::from_nanos(self.srtt))
    }
    /// RTTVAR as RFC 6298 defines it (a quarter of Linux's variance term).
    pub fn rttvar(&self) -> SimDuration {
        SimDuration::from_nanos(self.mdev / 4)
    }
    pub fn min_rtt(&self) -> Option<SimDuration> {
        (self.min_rtt != u64::MAX).then(|| SimDuration::from_nanos(self.min_rtt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: SimDuration = SimDuration::from_millis(200);
    const MAX: SimDuration = SimDuration::from_secs(120);

    // RB-TCP-32: the first sample R gives RTO = R + max(2R, 200 ms).
    #[test]
    fn first_sample() {
        let mut e = RttEstimator::new(SimDuration::from_secs(1));
        assert_eq!(e.rto(), SimDuration::from_secs(1));
        e.sample(
            SimDuration::from_millis(50),
            SeqNum(1),
            SeqNum(100),
            MIN,
            MAX,
        );
        assert_eq!(e.rto(), SimDuration::from_millis(250));
        let mut e = RttEstimator::new(SimDuration::from_secs(1));
        e.sample(
            SimDuration::from_millis(300),
            SeqNum(1),
            SeqNum(100),
            MIN,
            MAX,
        );
        assert_eq!(e.rto(), SimDuration::from_millis(900));
        assert_eq!(e.srtt(), Some(SimDuration::from_millis(300)));
    }

    // RB-TCP-32: SRTT moves by 1/8 of the error.
    #[test]
    fn smoothing() {
        let mut e = RttEstimator::new(SimDuration::from_secs(1));
        e.sample(
            SimDuration::from_millis(100),
            SeqNum(1),
            SeqNum(10),
            MIN,
            MAX,
        );
        e.sample(
            SimDuration::from_millis(180),
            SeqNum(5),
            SeqNum(10),
            MIN,
            MAX,
        );
        assert_eq!(e.srtt(), Some(SimDuration::from_millis(110)));
        // A steady RTT decays the variance down to the rto_min floor.
        for i in 0..200u32 {
            e.sample(
                SimDuration::from_millis(100),
                SeqNum(20 + i * 10),
                SeqNum(30 + i * 10),
                MIN,
                MAX,
            );
        }
        let rto = e.rto().as_nanos();
        assert!((300_000_000..=301_000_000).contains(&rto), "{rto}");
    }
}

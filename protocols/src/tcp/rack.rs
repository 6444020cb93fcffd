//! RACK and TLP (RFC 8985), as Linux implements them in `tcp_recovery.c` and
//! `tcp_send_loss_probe`: time-based loss detection and the tail loss probe.
//!
//! Owns the RACK state (the most recently sent segment known to be delivered, its RTT,
//! whether reordering was seen) and the rules on it: which delivery advances it, how wide
//! the reordering window is, when a segment sent before it counts as lost, and how long
//! the probe timeout is. Pure functions of times and sequence offsets.
//!
//! Does not own the retransmission queue, the flags on segments or any timer: the
//! connection walks its queue, asks [`Rack::loss_wait`] about each candidate and arms the
//! timers this module computes.

use sim_core::time::{SimDuration, SimTime};

/// Linux `TCP_TIMEOUT_MIN` (2 jiffies at HZ=1000): slack added to RACK's reordering timer
/// and to the probe timeout.
pub const TIMEOUT_MIN: SimDuration = SimDuration::from_millis(2);

/// The probe timeout when there is no RTT sample yet (Linux `TCP_TIMEOUT_INIT`).
pub const PTO_WITHOUT_RTT: SimDuration = SimDuration::from_secs(1);

/// RACK's view of the connection (Linux `tcp_sock.rack` and `reord_seen`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rack {
    /// When the most recently sent delivered segment was (last) sent, and its end offset
    /// (the tie-break between segments sent at the same instant).
    xmit_time: SimTime,
    end: u64,
    /// The RTT of the last delivery that advanced RACK.
    rtt: SimDuration,
    /// Whether a delivery advanced RACK since the last loss scan.
    advanced: bool,
    /// Whether a never-retransmitted segment was delivered below one already SACKed.
    reordering_seen: bool,
}

impl Rack {
    /// Linux `tcp_rack_advance`: a segment sent at `sent_at` ending at `end` was delivered
    /// at `now`. A delivery of a retransmitted segment faster than the minimum RTT is
    /// ambiguous (the original may have arrived) and is ignored.
    pub fn on_delivered(
        &mut self,
        now: SimTime,
        sent_at: SimTime,
        end: u64,
        retransmitted: bool,
        min_rtt: Option<SimDuration>,
    ) {
        let rtt = now.saturating_since(sent_at);
        if retransmitted && min_rtt.is_none_or(|m| rtt < m) {
            return;
        }
        self.advanced = true;
        self.rtt = rtt;
        if sent_after(sent_at, end, self.xmit_time, self.end) {
            self.xmit_time = sent_at;
            self.end = end;
        }
    }

    /// Records that the network reordered segments (Linux `tcp_check_sack_reordering`).
    pub fn saw_reordering(&mut self) {
        self.reordering_seen = true;
    }

    /// Whether a scan can find anything new, clearing the flag (Linux checks and resets
    /// `rack.advanced` in `tcp_rack_mark_lost`).
    pub fn take_advanced(&mut self) -> bool {
        std::mem::take(&mut self.advanced)
    }

    /// Linux `tcp_rack_reo_wnd`: without reordering seen, no window at all during recovery
    /// or once `dupthresh` segments are SACKed (unless `keep_window`); otherwise a quarter
    /// of the minimum RTT, at most the smoothed RTT.
    pub fn reorder_window(
        &self,
        in_recovery: bool,
        sacked_segments: u64,
        dupthresh: u32,
        keep_window: bool,
        min_rtt: Option<SimDuration>,
        srtt: Option<SimDuration>,
    ) -> SimDuration {
        if !self.reordering_seen
            && (in_recovery || (sacked_segments >= dupthresh as u64 && !keep_window))
        {
            return SimDuration::ZERO;
        }
        let srtt = srtt.unwrap_or(SimDuration::ZERO);
        match min_rtt {
            Some(m) => SimDuration::from_nanos(m.as_nanos() / 4).min(srtt),
            None => srtt,
        }
    }

    /// For a segment not yet delivered: `None` if it was sent after RACK's segment (RACK
    /// knows nothing about it yet), `Some(ZERO)` if it is lost now, else how long until it
    /// will be (Linux `tcp_rack_skb_timeout`).
    pub fn loss_wait(
        &self,
        now: SimTime,
        sent_at: SimTime,
        end: u64,
        reorder_window: SimDuration,
    ) -> Option<SimDuration> {
        if !sent_after(self.xmit_time, self.end, sent_at, end) {
            return None;
        }
        let deadline = sent_at + self.rtt + reorder_window;
        Some(deadline.saturating_since(now))
    }

    /// Whether a segment sent at `sent_at` ending at `end` was sent before RACK's segment,
    /// so that [`Rack::loss_wait`] has an answer for it.
    pub fn sent_before(&self, sent_at: SimTime, end: u64) -> bool {
        sent_after(self.xmit_time, self.end, sent_at, end)
    }

    /// Whether anything was ever delivered (RACK has a reference segment).
    pub fn rtt(&self) -> SimDuration {
        self.rtt
    }
}

/// Linux `tcp_skb_sent_after`: whether (t1, end1) was sent after (t2, end2).
fn sent_after(t1: SimTime, end1: u64, t2: SimTime, end2: u64) -> bool {
    t1 > t2 || (t1 == t2 && end1 > end2)
}

/// Linux `tcp_schedule_loss_probe`'s timeout: two smoothed RTTs, plus the minimum RTO
/// when a single segment is out (its ACK may be delayed), else plus [`TIMEOUT_MIN`];
/// never later than `rto_left`, when the RTO would fire.
pub fn probe_timeout(
    srtt: Option<SimDuration>,
    one_segment_out: bool,
    rto_min: SimDuration,
    rto_left: Option<SimDuration>,
) -> SimDuration {
    let pto = match srtt {
        Some(s) => {
            s * 2
                + if one_segment_out {
                    rto_min
                } else {
                    TIMEOUT_MIN
                }
        }
        None => PTO_WITHOUT_RTT,
    };
    match rto_left {
        Some(r) if r > SimDuration::ZERO => pto.min(r),
        _ => pto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> SimDuration {
        SimDuration::from_millis(v)
    }
    fn at(v: u64) -> SimTime {
        SimTime::ZERO + ms(v)
    }

    #[test]
    fn a_segment_sent_before_a_delivered_one_is_lost_after_rtt_plus_window() {
        let mut r = Rack::default();
        // Segment [1000, 2000) sent at 10 ms, delivered (SACKed) at 60 ms: RTT 50 ms.
        r.on_delivered(at(60), at(10), 2000, false, Some(ms(40)));
        assert!(r.take_advanced());
        assert!(!r.take_advanced());
        // [0, 1000) sent at 5 ms: lost at 5 + 50 + 10 = 65 ms with a 10 ms window.
        assert_eq!(r.loss_wait(at(60), at(5), 1000, ms(10)), Some(ms(5)));
        assert_eq!(
            r.loss_wait(at(65), at(5), 1000, ms(10)),
            Some(SimDuration::ZERO)
        );
        // Sent at the same instant with a lower end: before, so a candidate.
        assert!(r.loss_wait(at(60), at(10), 1500, ms(0)).is_some());
        // Sent later: RACK cannot judge it.
        assert_eq!(r.loss_wait(at(60), at(11), 3000, ms(0)), None);
        assert_eq!(r.loss_wait(at(60), at(10), 2500, ms(0)), None);
    }

    #[test]
    fn fast_deliveries_of_retransmissions_are_ambiguous() {
        let mut r = Rack::default();
        r.on_delivered(at(100), at(90), 2000, true, Some(ms(40)));
        assert!(
            !r.take_advanced(),
            "10 ms < min RTT 40 ms: the original arrived"
        );
        r.on_delivered(at(100), at(90), 2000, true, None);
        assert!(!r.take_advanced(), "no RTT sample yet: ambiguous");
        r.on_delivered(at(100), at(50), 2000, true, Some(ms(40)));
        assert!(r.take_advanced());
        assert_eq!(r.rtt(), ms(50));
    }

    #[test]
    fn the_reference_segment_only_moves_forward_in_send_order() {
        let mut r = Rack::default();
        r.on_delivered(at(100), at(50), 5000, false, None);
        // An older segment delivered later updates the RTT but not the reference.
        r.on_delivered(at(110), at(40), 4000, false, None);
        assert_eq!(r.rtt(), ms(70));
        // The reference stays the segment sent at 50 ms: one sent at 45 ms is judged
        // against it, with the latest RTT (lost at 45 + 70 = 115 ms).
        assert_eq!(r.loss_wait(at(110), at(45), 4500, ms(0)), Some(ms(5)));
        assert_eq!(r.loss_wait(at(110), at(55), 4500, ms(0)), None);
    }

    #[test]
    fn reorder_window_follows_linux() {
        let mut r = Rack::default();
        let (min_rtt, srtt) = (Some(ms(40)), Some(ms(60)));
        assert_eq!(r.reorder_window(true, 0, 3, false, min_rtt, srtt), ms(0));
        assert_eq!(r.reorder_window(false, 3, 3, false, min_rtt, srtt), ms(0));
        assert_eq!(r.reorder_window(false, 3, 3, true, min_rtt, srtt), ms(10));
        assert_eq!(r.reorder_window(false, 2, 3, false, min_rtt, srtt), ms(10));
        assert_eq!(
            r.reorder_window(false, 2, 3, false, min_rtt, Some(ms(8))),
            ms(8)
        );
        r.saw_reordering();
        assert_eq!(r.reorder_window(true, 9, 3, false, min_rtt, srtt), ms(10));
    }

    #[test]
    fn probe_timeout_is_two_srtt_with_delayed_ack_allowance() {
        let rto_min = ms(200);
        assert_eq!(probe_timeout(Some(ms(50)), false, rto_min, None), ms(102));
        assert_eq!(probe_timeout(Some(ms(50)), true, rto_min, None), ms(300));
        assert_eq!(
            probe_timeout(Some(ms(50)), true, rto_min, Some(ms(250))),
            ms(250)
        );
        assert_eq!(probe_timeout(None, false, rto_min, None), ms(1000));
    }
}

//! Reno (RFC 5681) and NewReno (RFC 6582) with Linux's arithmetic: `tcp_reno_cong_avoid`
//! counts bytes (slow start adds everything acknowledged, up to ssthresh; congestion
//! avoidance adds one MSS per window acknowledged) and `tcp_reno_ssthresh` halves cwnd.
//!
//! The two differ only in fast recovery without SACK, which the connection runs: Reno
//! leaves recovery on the first ACK of new data (a partial ACK ends it), NewReno stays
//! until everything outstanding at the loss is acknowledged and retransmits the next
//! hole on each partial ACK. With SACK both use RFC 6675 recovery.

use super::{AckSample, CcEvent, CongestionControl, Window};

/// Reno's and NewReno's shared window arithmetic (Linux `tcp_reno_cong_avoid`), also
/// DCTCP's.
#[derive(Clone, Debug, Default)]
pub(super) struct RenoWindow {
    /// Bytes acknowledged toward the next one-MSS increase.
    acked_in_ca: u64,
}

impl RenoWindow {
    pub(super) fn on_ack(&mut self, w: &mut Window, ack: &AckSample) {
        if !ack.cwnd_limited {
            return;
        }
        let mut acked = ack.acked;
        if w.in_slow_start() {
            let room = w.ssthresh - w.cwnd;
            let grow = acked.min(room);
            w.cwnd += grow;
            acked -= grow;
            if acked == 0 {
                return;
            }
        }
        self.acked_in_ca += acked;
        if self.acked_in_ca >= w.cwnd {
            let steps = self.acked_in_ca / w.cwnd;
            self.acked_in_ca -= steps * w.cwnd;
            w.cwnd += steps * w.mss as u64;
        }
    }

    pub(super) fn on_event(&mut self, ev: CcEvent) {
        if matches!(
            ev,
            CcEvent::Timeout | CcEvent::EnterRecovery | CcEvent::EnterCwr
        ) {
            self.acked_in_ca = 0;
        }
    }
}

/// Linux `tcp_reno_ssthresh`: half the window, at least two segments.
pub(super) fn half_window(w: &Window) -> u64 {
    (w.cwnd / 2).max(2 * w.mss as u64)
}

/// The Reno family: `PARTIAL_ACK_ENDS_RECOVERY` tells Reno (RFC 5681) from NewReno
/// (RFC 6582); the window arithmetic is shared.
#[derive(Clone, Debug, Default)]
pub struct RenoFamily<const PARTIAL_ACK_ENDS_RECOVERY: bool> {
    window: RenoWindow,
}

/// NewReno (RFC 6582): Linux's default recovery without SACK.
pub type NewReno = RenoFamily<false>;

/// Reno (RFC 5681): as NewReno, but without SACK a partial ACK ends fast recovery.
pub type Reno = RenoFamily<true>;

impl<const PARTIAL_ACK_ENDS_RECOVERY: bool> CongestionControl
    for RenoFamily<PARTIAL_ACK_ENDS_RECOVERY>
{
    fn name(&self) -> &'static str {
        if PARTIAL_ACK_ENDS_RECOVERY {
            "reno"
        } else {
            "newreno"
        }
    }
    fn on_ack(&mut self, w: &mut Window, ack: &AckSample) {
        self.window.on_ack(w, ack);
    }
    fn ssthresh(&mut self, w: &Window, _in_flight: u64) -> u64 {
        half_window(w)
    }
    fn on_event(&mut self, _w: &mut Window, ev: CcEvent) {
        self.window.on_event(ev);
    }
    fn partial_ack_ends_recovery(&self) -> bool {
        PARTIAL_ACK_ENDS_RECOVERY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tcp::cc::AckSample;

    fn ack(acked: u64) -> AckSample {
        crate::tcp::cc::open_ack(acked)
    }

    // RB-TCP-37: slow start adds what is acknowledged; avoidance adds one MSS per window.
    #[test]
    fn slow_start_then_avoidance() {
        let mut cc = NewReno::default();
        let mut w = Window {
            cwnd: 10 * 1000,
            ssthresh: 15 * 1000,
            mss: 1000,
        };
        cc.on_ack(&mut w, &ack(4000));
        assert_eq!(w.cwnd, 14000);
        cc.on_ack(&mut w, &ack(3000));
        assert_eq!(w.cwnd, 15000); // capped at ssthresh, 2000 left toward avoidance
        cc.on_ack(&mut w, &ack(13000));
        assert_eq!(w.cwnd, 16000);
        assert_eq!(cc.ssthresh(&w, 0), 8000);
        let mut idle = ack(5000);
        idle.cwnd_limited = false;
        cc.on_ack(&mut w, &idle);
        assert_eq!(w.cwnd, 16000);
    }
}

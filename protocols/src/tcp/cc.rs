//! The congestion-control seam: what a controller sees and what it decides.
//!
//! The connection owns the window variables (as Linux's `tcp_sock` does) and hands them
//! to the controller at the moments Linux's `tcp_congestion_ops` are called: growth on an
//! ACK while the connection is in the Open state, a new slow-start threshold when a loss is
//! detected, and notable events. Loss recovery itself (Proportional Rate Reduction, RFC
//! 6937, during fast recovery; one segment after an RTO) is the connection's job, so every
//! controller gets the same, Linux-faithful recovery.
//!
//! All quantities are bytes.

use sim_core::time::{SimDuration, SimTime};

/// The window state a controller reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub cwnd: u64,
    pub ssthresh: u64,
    /// The sender's maximum segment size.
    pub mss: u32,
}

impl Window {
    pub fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }
}

/// One ACK's news, as a controller needs it.
#[derive(Clone, Copy, Debug)]
pub struct AckInfo {
    pub now: SimTime,
    /// Bytes newly acknowledged, cumulatively or by SACK.
    pub delivered: u64,
    /// The RTT sample this ACK gave, if any (Karn's rule applied).
    pub rtt: Option<SimDuration>,
    /// Bytes in flight before this ACK.
    pub prior_in_flight: u64,
    /// Whether the sender was limited by the congestion window (not by the application or
    /// the receiver): Linux's `tcp_is_cwnd_limited`.
    pub cwnd_limited: bool,
}

/// Something that happened to the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CcEvent {
    /// Fast recovery began (after ssthresh was taken).
    EnterRecovery,
    /// Recovery ended with all data up to the recovery point acknowledged.
    ExitRecovery,
    /// A retransmission timeout (after ssthresh was taken).
    Timeout,
    /// Transmission restarts after an idle period.
    IdleRestart,
}

/// A congestion controller (NewReno now; the next issue adds CUBIC, BBR and a registry).
pub trait CongestionControl: std::fmt::Debug {
    fn name(&self) -> &'static str;
    /// Grows the window on an ACK that advanced `snd_una` in the Open state.
    fn on_ack(&mut self, w: &mut Window, ack: &AckInfo);
    /// The slow-start threshold to use after a loss (fast recovery or RTO).
    fn ssthresh(&mut self, w: &Window, in_flight: u64) -> u64;
    fn on_event(&mut self, _w: &mut Window, _ev: CcEvent) {}
}

/// NewReno's window growth (RFC 5681 / RFC 6582; Linux `tcp_reno_cong_avoid`): slow start
/// adds what was acknowledged, up to ssthresh; congestion avoidance adds one MSS per
/// window of acknowledged data. The partial-ACK handling of RFC 6582 lives in the
/// connection's recovery, which applies it when SACK is off.
#[derive(Clone, Debug, Default)]
pub struct NewReno {
    /// Bytes acknowledged toward the next one-MSS increase.
    acked_in_ca: u64,
}

impl CongestionControl for NewReno {
    fn name(&self) -> &'static str {
        "newreno"
    }

    fn on_ack(&mut self, w: &mut Window, ack: &AckInfo) {
        if !ack.cwnd_limited {
            return;
        }
        let mut acked = ack.delivered;
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

    fn ssthresh(&mut self, w: &Window, _in_flight: u64) -> u64 {
        // Linux tcp_reno_ssthresh: half the window, at least two segments.
        (w.cwnd / 2).max(2 * w.mss as u64)
    }

    fn on_event(&mut self, _w: &mut Window, ev: CcEvent) {
        if matches!(ev, CcEvent::Timeout | CcEvent::EnterRecovery) {
            self.acked_in_ca = 0;
        }
    }
}

/// Builds the controller a host's `tcp_congestion_control` names.
pub fn by_name(name: &str) -> Option<Box<dyn CongestionControl>> {
    match name {
        "newreno" | "reno" => Some(Box::new(NewReno::default())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(delivered: u64) -> AckInfo {
        AckInfo {
            now: SimTime::ZERO,
            delivered,
            rtt: None,
            prior_in_flight: 0,
            cwnd_limited: true,
        }
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

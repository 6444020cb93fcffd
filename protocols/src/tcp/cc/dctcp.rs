//! DCTCP (RFC 8257; Alizadeh et al., SIGCOMM 2010) as Linux's `tcp_dctcp.c`.
//!
//! The sender keeps `alpha`, an estimate of the fraction of its data that meets
//! congestion marks: once per window of data (when the ACKs pass the `snd_nxt` of the
//! previous update) it folds in the fraction F of the bytes delivered over that window
//! that were delivered by ACKs carrying ECE, `alpha = (1 - g) alpha + g F` with
//! g = 1/16, in Linux's fixed point (alpha scaled by 1024, starting at 1024). On ECE the
//! connection's CWR state asks for ssthresh, which is `cwnd (1 - alpha/2)`, and brings
//! the window down to it once per window; between reductions the window grows as Reno's.
//! A loss halves the window (Linux `dctcp_react_to_loss`, on entering fast recovery or on
//! an RTO that takes a new ssthresh).
//!
//! DCTCP needs ECN on both ends: its [`EcnMode::Dctcp`] makes the connection ask for ECN
//! whatever `tcp_ecn` says, put ECT(0) on every segment, and, on the receiving side, echo
//! the CE state of each data segment (ACKing at once when it changes), so that the
//! sender's count of ECE-acknowledged bytes follows the marks even with delayed ACKs. If
//! the peer does not agree to ECN, the controller behaves as Reno (Linux switches to
//! `dctcp-reno`).
//!
//! Differences from Linux: bytes instead of segments when counting delivered and
//! ECE-delivered data (the fraction is the same for full-sized segments); the window
//! arithmetic of ssthresh is in whole segments, as Linux's. No undo of spurious
//! reductions (netdes has none), no PLB (the path-load-balancing extension).

use super::reno::{half_window, RenoWindow};
use super::{AckEvent, AckSample, CcEvent, CongestionControl, ConnStart, EcnMode, Window};

/// Linux `DCTCP_MAX_ALPHA`: alpha's fixed-point unit.
pub const DCTCP_MAX_ALPHA: u32 = 1024;
/// Linux `dctcp_shift_g`: g = 1/2^4.
const SHIFT_G: u32 = 4;

/// The DCTCP controller.
#[derive(Clone, Debug)]
pub struct Dctcp {
    /// Fraction of marked data, times 1024 (Linux `dctcp_alpha`).
    alpha: u32,
    /// The update is due when `snd_una` reaches this stream position.
    next_seq: u64,
    /// `delivered` and `delivered_ce` at the last update.
    old_delivered: u64,
    old_delivered_ce: u64,
    /// ECN was negotiated; without it DCTCP is Reno.
    ecn: bool,
    /// ssthresh was just taken (the RTO that follows it reacts as to a loss).
    ssthresh_taken: bool,
    reno: RenoWindow,
    /// Alpha updates so far, for tests and validation.
    updates: u64,
}

impl Default for Dctcp {
    fn default() -> Self {
        Dctcp {
            alpha: DCTCP_MAX_ALPHA,
            next_seq: 0,
            old_delivered: 0,
            old_delivered_ce: 0,
            ecn: true,
            ssthresh_taken: false,
            reno: RenoWindow::default(),
            updates: 0,
        }
    }
}

impl Dctcp {
    /// The estimated fraction of marked data, alpha, in [0, 1].
    pub fn alpha(&self) -> f64 {
        self.alpha as f64 / DCTCP_MAX_ALPHA as f64
    }

    /// How many times alpha was updated (once per window of data).
    pub fn alpha_updates(&self) -> u64 {
        self.updates
    }

    /// ECN is on: this connection runs DCTCP rather than its Reno fallback.
    pub fn ecn_enabled(&self) -> bool {
        self.ecn
    }

    /// Linux `dctcp_react_to_loss`: half the window, at least two segments.
    fn react_to_loss(&self, w: &mut Window) {
        let mss = w.mss.max(1) as u64;
        w.ssthresh = (w.cwnd / mss / 2).max(2) * mss;
    }
}

impl CongestionControl for Dctcp {
    fn name(&self) -> &'static str {
        "dctcp"
    }

    fn init(&mut self, _w: &mut Window, conn: &ConnStart) {
        *self = Dctcp {
            ecn: conn.ecn,
            ..Dctcp::default()
        };
    }

    /// Linux `dctcp_update_alpha`.
    fn on_ack_event(&mut self, ev: &AckEvent) {
        self.ssthresh_taken = false;
        if !self.ecn || ev.snd_una < self.next_seq {
            return;
        }
        let delivered = ev.delivered.saturating_sub(self.old_delivered);
        let delivered_ce = ev.delivered_ce.saturating_sub(self.old_delivered_ce);
        // alpha = (1 - g) alpha + g F, in 1/1024: alpha falls by alpha/16 (to 0 once that
        // rounds to nothing) and rises by F/16.
        let decay = self.alpha >> SHIFT_G;
        self.alpha -= if decay == 0 { self.alpha } else { decay };
        if delivered_ce > 0 {
            let f = (delivered_ce << (10 - SHIFT_G)) / delivered.max(1);
            self.alpha = (self.alpha as u64 + f).min(DCTCP_MAX_ALPHA as u64) as u32;
        }
        self.updates += 1;
        self.next_seq = ev.snd_nxt;
        self.old_delivered = ev.delivered;
        self.old_delivered_ce = ev.delivered_ce;
    }

    fn on_ack(&mut self, w: &mut Window, ack: &AckSample) {
        self.ssthresh_taken = false;
        self.reno.on_ack(w, ack);
    }

    /// Linux `dctcp_ssthresh`: `cwnd - cwnd alpha / 2`, in whole segments, at least two.
    fn ssthresh(&mut self, w: &Window, _in_flight: u64) -> u64 {
        self.ssthresh_taken = true;
        if !self.ecn {
            return half_window(w);
        }
        let mss = w.mss.max(1) as u64;
        let segs = w.cwnd / mss;
        let cut = (segs * self.alpha as u64) >> 11;
        (segs - cut).max(2) * mss
    }

    fn on_event(&mut self, w: &mut Window, ev: CcEvent) {
        let ssthresh_taken = std::mem::take(&mut self.ssthresh_taken);
        self.reno.on_event(ev);
        if !self.ecn {
            return;
        }
        match ev {
            // Linux dctcp_state(TCP_CA_Recovery): a loss halves the window, whatever
            // alpha says.
            CcEvent::EnterRecovery => self.react_to_loss(w),
            // Linux CA_EVENT_LOSS comes only with a new ssthresh.
            CcEvent::Timeout if ssthresh_taken => self.react_to_loss(w),
            _ => {}
        }
    }

    fn ecn_mode(&self) -> EcnMode {
        EcnMode::Dctcp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::time::SimTime;

    const MSS: u64 = 1000;

    fn start(ecn: bool) -> (Dctcp, Window) {
        let mut cc = Dctcp::default();
        let mut w = Window {
            cwnd: 100 * MSS,
            ssthresh: 50 * MSS,
            mss: MSS as u32,
        };
        cc.init(
            &mut w,
            &ConnStart {
                now: SimTime::ZERO,
                seed: 0,
                srtt: None,
                ecn,
            },
        );
        (cc, w)
    }

    fn event(snd_una: u64, snd_nxt: u64, delivered: u64, delivered_ce: u64) -> AckEvent {
        AckEvent {
            now: SimTime::ZERO,
            snd_una,
            snd_nxt,
            delivered,
            delivered_ce,
            ece: false,
            rtt: None,
        }
    }

    fn ack(acked: u64) -> AckSample {
        crate::tcp::cc::open_ack(acked)
    }

    #[test]
    fn alpha_is_an_ewma_of_the_marked_fraction_with_g_one_sixteenth() {
        let (mut cc, _) = start(true);
        assert_eq!(cc.alpha, 1024);
        // The first ACK closes the first (empty) window: no marks, alpha decays by 1/16.
        cc.on_ack_event(&event(1, 100_001, 0, 0));
        assert_eq!(cc.alpha, 1024 - 64);
        // Within the window: nothing changes.
        cc.on_ack_event(&event(50_001, 100_001, 50_000, 10_000));
        assert_eq!(cc.alpha, 960);
        // The window is acknowledged: F = 25_000 / 100_000 = 1/4.
        cc.on_ack_event(&event(100_001, 200_001, 100_000, 25_000));
        // 960 - 60 + (25_000 << 6) / 100_000 = 900 + 16 = 916.
        assert_eq!(cc.alpha, 916);
        assert_eq!(cc.alpha_updates(), 2);
        // Many windows with F = 1/4 converge on alpha = 1/4 (within the fixed point's
        // rounding: each update adds 16 and takes alpha/16 rounded down).
        let (mut d, mut ce) = (100_000, 25_000);
        for k in 2..200u64 {
            d += 100_000;
            ce += 25_000;
            cc.on_ack_event(&event(k * 100_000 + 1, (k + 1) * 100_000 + 1, d, ce));
        }
        assert!((cc.alpha() - 0.25).abs() < 16.0 / 1024.0, "{}", cc.alpha());
        // Without marks alpha decays to zero (alpha/16 rounds to nothing below 16).
        for k in 200..400u64 {
            d += 100_000;
            cc.on_ack_event(&event(k * 100_000 + 1, (k + 1) * 100_000 + 1, d, ce));
        }
        assert_eq!(cc.alpha, 0);
    }

    #[test]
    fn ssthresh_cuts_the_window_by_alpha_over_two() {
        let (mut cc, w) = start(true);
        // alpha = 1: half.
        assert_eq!(cc.ssthresh(&w, 0), 50 * MSS);
        cc.alpha = 256; // 1/4: cut by 1/8
        assert_eq!(cc.ssthresh(&w, 0), (100 - 12) * MSS);
        cc.alpha = 0;
        assert_eq!(cc.ssthresh(&w, 0), 100 * MSS);
        // Whole segments and at least two, as Linux.
        cc.alpha = 1024;
        let small = Window {
            cwnd: 3 * MSS + 500,
            ..w
        };
        assert_eq!(cc.ssthresh(&small, 0), 2 * MSS);
    }

    #[test]
    fn losses_halve_the_window_whatever_alpha() {
        let (mut cc, mut w) = start(true);
        cc.alpha = 100;
        let _ = cc.ssthresh(&w, 0);
        cc.on_event(&mut w, CcEvent::EnterRecovery);
        assert_eq!(w.ssthresh, 50 * MSS);
        // An RTO that took a new ssthresh reacts; one that did not (in the same window)
        // does not.
        w.ssthresh = 77 * MSS;
        cc.on_event(&mut w, CcEvent::Timeout);
        assert_eq!(w.ssthresh, 77 * MSS);
        let _ = cc.ssthresh(&w, 0);
        cc.on_event(&mut w, CcEvent::Timeout);
        assert_eq!(w.ssthresh, 50 * MSS);
    }

    #[test]
    fn without_ecn_it_is_reno() {
        let (mut cc, mut w) = start(false);
        assert!(!cc.ecn_enabled());
        cc.alpha = 10;
        assert_eq!(cc.ssthresh(&w, 0), 50 * MSS);
        cc.on_ack_event(&event(1, 100_001, 100_000, 50_000));
        assert_eq!(cc.alpha_updates(), 0);
        // Reno's growth: one segment per window in congestion avoidance.
        w.ssthresh = 10 * MSS;
        cc.on_ack(&mut w, &ack(100 * MSS));
        assert_eq!(w.cwnd, 101 * MSS);
    }
}

//! TCP Vegas (Brakmo & Peterson, IEEE JSAC 1995) as Linux's `tcp_vegas.c`.
//!
//! Once per round trip Vegas compares the window it has with the window the path's base
//! RTT would need for the rate it gets: `diff = cwnd (rtt - base_rtt) / base_rtt`
//! segments, where `base_rtt` is the smallest RTT seen and `rtt` the smallest seen over
//! the last round trip (the minimum filters out delayed ACKs). `diff` estimates how many
//! of the flow's segments sit in queues. In congestion avoidance the window grows by one
//! segment when `diff < alpha`, shrinks by one when `diff > beta`, and holds in between,
//! so each flow keeps between alpha and beta segments queued (Linux: 2 and 4). In slow
//! start the window grows as Reno's, and once `diff > gamma` (1) it drops to the rate it
//! gets (`cwnd base_rtt / rtt + 1`) and slow start ends. Losses halve the window, as
//! Reno's.
//!
//! As Linux, Vegas runs only in the Open state: any other state (Disorder, CWR,
//! Recovery, Loss) switches it off and it restarts its per-round-trip measurement on
//! returning to Open; until a round trip has given more than two RTT samples it behaves
//! as Reno. Restarting after idle forgets the base RTT too.
//!
//! Differences from Linux: the state is followed through the ACKs (`AckSample::ca_state`)
//! and events, so a change to Open or Disorder that no ACK of new data reports is seen one
//! ACK late. Windows are counted in whole segments as Linux counts packets.

use super::reno::{half_window, RenoWindow};
use super::{AckEvent, AckSample, CaState, CcEvent, CongestionControl, ConnStart, Window};
use sim_core::time::SimDuration;

/// Vegas' thresholds in segments (Linux's module parameters and defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VegasParams {
    /// Grow when fewer than this many segments are queued.
    pub alpha: u64,
    /// Shrink when more than this many are.
    pub beta: u64,
    /// Leave slow start when more than this many are.
    pub gamma: u64,
}

impl Default for VegasParams {
    fn default() -> Self {
        VegasParams {
            alpha: 2,
            beta: 4,
            gamma: 1,
        }
    }
}

/// The Vegas controller.
#[derive(Clone, Debug, Default)]
pub struct Vegas {
    params: VegasParams,
    /// Vegas' adjustments are on (the connection is in the Open state).
    enabled: bool,
    /// The per-round-trip decision is due when `snd_una` passes this stream position.
    beg_snd_nxt: u64,
    /// RTT samples in this round trip, their minimum, and the minimum ever (base RTT).
    cnt_rtt: u32,
    min_rtt: Option<SimDuration>,
    base_rtt: Option<SimDuration>,
    /// The stream edges the last ACK reported.
    snd_una: u64,
    snd_nxt: u64,
    /// Whether the connection is in the Open state, as the last ACK or event said.
    open: bool,
    reno: RenoWindow,
    /// The last `diff` computed (segments), for tests.
    last_diff: Option<u64>,
}

impl Vegas {
    /// Vegas with other thresholds than Linux's.
    pub fn with_params(params: VegasParams) -> Vegas {
        Vegas {
            params,
            ..Vegas::default()
        }
    }

    /// The smallest RTT seen (Vegas' estimate of the propagation delay).
    pub fn base_rtt(&self) -> Option<SimDuration> {
        self.base_rtt
    }

    /// The last once-per-round-trip estimate of this flow's queued segments.
    pub fn last_diff(&self) -> Option<u64> {
        self.last_diff
    }

    /// Linux `vegas_enable`: start a fresh round-trip measurement.
    fn enable(&mut self) {
        self.enabled = true;
        self.beg_snd_nxt = self.snd_nxt;
        self.cnt_rtt = 0;
        self.min_rtt = None;
    }

    /// Linux `tcp_vegas_init`: as `enable`, and forget the base RTT.
    fn restart(&mut self) {
        self.base_rtt = None;
        self.enable();
    }

    /// Linux `tcp_slow_start`: grow by what was acknowledged, up to ssthresh.
    fn slow_start(w: &mut Window, acked: u64) {
        w.cwnd = (w.cwnd + acked).min(w.ssthresh.max(w.cwnd));
    }

    /// Linux `tcp_vegas_cong_avoid`.
    fn cong_avoid(&mut self, w: &mut Window, ack: &AckSample) {
        if !self.enabled {
            self.reno.on_ack(w, ack);
            return;
        }
        if self.snd_una <= self.beg_snd_nxt {
            if w.in_slow_start() {
                Self::slow_start(w, ack.acked);
            }
            return;
        }
        // Once per round trip.
        self.beg_snd_nxt = self.snd_nxt;
        match (self.min_rtt, self.base_rtt) {
            (Some(rtt), Some(base)) if self.cnt_rtt > 2 => self.adjust(w, ack, rtt, base),
            // Too few samples to tell delayed ACKs from queueing: Reno.
            _ => self.reno.on_ack(w, ack),
        }
        self.cnt_rtt = 0;
        self.min_rtt = None;
    }

    fn adjust(&mut self, w: &mut Window, ack: &AckSample, rtt: SimDuration, base: SimDuration) {
        let mss = w.mss.max(1) as u64;
        let (rtt_us, base_us) = (rtt.as_nanos() / 1000, (base.as_nanos() / 1000).max(1));
        let segs = w.cwnd / mss;
        // The window the rate we get would need at the base RTT, and how many segments
        // more we have out: Brakmo and Peterson's Diff.
        let target = segs * base_us / rtt_us.max(1);
        let diff = segs * rtt_us.saturating_sub(base_us) / base_us;
        self.last_diff = Some(diff);
        let mut cwnd_segs = segs;
        // Linux tcp_vegas_ssthresh: min(ssthresh, cwnd) after a cut.
        let mut cap_ssthresh = false;
        if diff > self.params.gamma && w.in_slow_start() {
            // Too fast for slow start: match the rate we get and leave slow start.
            cwnd_segs = cwnd_segs.min(target + 1);
            cap_ssthresh = true;
        } else if w.in_slow_start() {
            Self::slow_start(w, ack.acked);
            cwnd_segs = w.cwnd / mss;
        } else if diff > self.params.beta {
            cwnd_segs = cwnd_segs.saturating_sub(1);
            cap_ssthresh = true;
        } else if diff < self.params.alpha {
            cwnd_segs += 1;
        }
        cwnd_segs = cwnd_segs.max(2);
        w.cwnd = cwnd_segs * mss;
        if cap_ssthresh {
            w.ssthresh = w.ssthresh.min(w.cwnd);
        }
        // Linux tcp_current_ssthresh: at least three quarters of the window.
        w.ssthresh = w.ssthresh.max(((cwnd_segs >> 1) + (cwnd_segs >> 2)) * mss);
    }

    /// Linux `tcp_vegas_state`: Vegas runs in the Open state only.
    fn set_state(&mut self, open: bool) {
        if open {
            self.enable();
        } else {
            self.enabled = false;
        }
    }
}

impl CongestionControl for Vegas {
    fn name(&self) -> &'static str {
        "vegas"
    }

    fn init(&mut self, _w: &mut Window, _conn: &ConnStart) {
        *self = Vegas::with_params(self.params);
        self.restart();
        self.open = true;
    }

    /// Linux `tcp_vegas_pkts_acked`: every RTT sample feeds the base RTT and this round
    /// trip's minimum.
    fn on_ack_event(&mut self, ev: &AckEvent) {
        self.snd_una = ev.snd_una;
        self.snd_nxt = ev.snd_nxt;
        let Some(rtt) = ev.rtt else { return };
        // Never zero, as Linux's `rtt_us + 1`.
        let rtt = rtt + SimDuration::from_nanos(1000);
        self.base_rtt = Some(self.base_rtt.map_or(rtt, |b| b.min(rtt)));
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        self.cnt_rtt += 1;
    }

    fn on_ack(&mut self, w: &mut Window, ack: &AckSample) {
        let open = ack.ca_state == CaState::Open;
        if open != self.open {
            self.set_state(open);
            self.open = open;
        }
        self.cong_avoid(w, ack);
    }

    fn ssthresh(&mut self, w: &Window, _in_flight: u64) -> u64 {
        half_window(w)
    }

    fn on_event(&mut self, _w: &mut Window, ev: CcEvent) {
        self.reno.on_event(ev);
        match ev {
            CcEvent::TxStart | CcEvent::IdleRestart => self.restart(),
            CcEvent::EnterRecovery | CcEvent::EnterCwr | CcEvent::Timeout => {
                self.set_state(false);
                self.open = false;
            }
            CcEvent::ExitRecovery | CcEvent::ExitCwr => {
                self.set_state(true);
                self.open = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::time::SimTime;

    const MSS: u64 = 1000;

    fn start() -> (Vegas, Window) {
        let mut v = Vegas::default();
        let mut w = Window {
            cwnd: 10 * MSS,
            ssthresh: u64::MAX,
            mss: MSS as u32,
        };
        v.init(
            &mut w,
            &ConnStart {
                now: SimTime::ZERO,
                seed: 0,
                srtt: None,
                ecn: false,
            },
        );
        (v, w)
    }

    fn event(snd_una: u64, snd_nxt: u64, rtt_us: u64) -> AckEvent {
        AckEvent {
            now: SimTime::ZERO,
            snd_una,
            snd_nxt,
            delivered: 0,
            delivered_ce: 0,
            ece: false,
            rtt: Some(SimDuration::from_nanos(rtt_us * 1000 - 1000)),
        }
    }

    fn ack(acked: u64) -> AckSample {
        crate::tcp::cc::open_ack(acked)
    }

    /// One round trip: `n` ACKs of one segment each with RTT `rtt_us`, the window's
    /// segments sent since the last one ending at `nxt`.
    fn round(v: &mut Vegas, w: &mut Window, una: &mut u64, nxt: u64, n: u64, rtt_us: u64) {
        for _ in 0..n {
            *una += MSS;
            v.on_ack_event(&event(*una, nxt, rtt_us));
            v.on_ack(w, &ack(MSS));
        }
    }

    #[test]
    fn congestion_avoidance_holds_between_alpha_and_beta_queued_segments() {
        let (mut v, mut w) = start();
        w.cwnd = 20 * MSS;
        w.ssthresh = 20 * MSS;
        let (mut una, mut nxt) = (0, 20 * MSS);
        // Base RTT 10 ms; the window is all in the pipe: diff 0 < alpha, grow by one
        // segment at the round trip's end.
        round(&mut v, &mut w, &mut una, nxt, 20, 10_000);
        nxt += 20 * MSS;
        round(&mut v, &mut w, &mut una, nxt, 1, 10_000);
        assert_eq!(v.last_diff(), Some(0));
        assert_eq!(w.cwnd, 21 * MSS);
        // 3 segments' worth of queueing: 21 x 1.5 ms / 10 ms = 3 (floor): hold.
        round(&mut v, &mut w, &mut una, nxt, 20, 11_500);
        nxt += 21 * MSS;
        round(&mut v, &mut w, &mut una, nxt, 1, 11_500);
        assert_eq!(v.last_diff(), Some(3));
        assert_eq!(w.cwnd, 21 * MSS);
        // 6 queued: shrink by one, and ssthresh follows.
        round(&mut v, &mut w, &mut una, nxt, 20, 13_000);
        nxt += 21 * MSS;
        round(&mut v, &mut w, &mut una, nxt, 1, 13_000);
        assert_eq!(v.last_diff(), Some(6));
        assert_eq!(w.cwnd, 20 * MSS);
        assert_eq!(w.ssthresh, 20 * MSS);
        // Within a round trip nothing changes in congestion avoidance.
        round(&mut v, &mut w, &mut una, nxt + 100 * MSS, 5, 10_000);
        assert_eq!(w.cwnd, 20 * MSS);
    }

    #[test]
    fn slow_start_ends_at_the_rate_it_gets_once_more_than_gamma_is_queued() {
        let (mut v, mut w) = start();
        let (mut una, mut nxt) = (0, 10 * MSS);
        // First round trip: base RTT 10 ms, slow start doubles the window.
        round(&mut v, &mut w, &mut una, nxt, 10, 10_000);
        assert_eq!(w.cwnd, 20 * MSS);
        nxt += 20 * MSS;
        // The RTT grows to 12.5 ms. The next round trip starts with Reno (one sample so
        // far) and slow start goes on to 40 segments.
        round(&mut v, &mut w, &mut una, nxt, 20, 12_500);
        assert_eq!(w.cwnd, 40 * MSS);
        nxt += 40 * MSS;
        // At its end 20 samples say diff = 40 x 2.5 / 10 = 10 > gamma: the window drops
        // to the rate it gets, 40 x 10 / 12.5 + 1 = 33 segments, and slow start ends.
        round(&mut v, &mut w, &mut una, nxt, 1, 12_500);
        assert_eq!(v.last_diff(), Some(10));
        assert_eq!(w.cwnd, 33 * MSS);
        assert_eq!(w.ssthresh, 33 * MSS);
        assert!(!w.in_slow_start());
    }

    #[test]
    fn too_few_rtt_samples_mean_reno_and_recovery_switches_vegas_off() {
        let (mut v, mut w) = start();
        w.cwnd = 20 * MSS;
        w.ssthresh = 10 * MSS;
        // Two samples per round trip (delayed ACKs of a tiny window): Reno's growth.
        v.on_ack_event(&event(MSS, 20 * MSS, 10_000));
        v.on_ack(&mut w, &ack(20 * MSS));
        assert_eq!(w.cwnd, 21 * MSS);
        // Fast recovery: Vegas is off; back in Open it starts a fresh round trip.
        v.on_event(&mut w, CcEvent::EnterRecovery);
        assert!(!v.enabled);
        v.on_event(&mut w, CcEvent::ExitRecovery);
        assert!(v.enabled && v.cnt_rtt == 0);
        // After idle the base RTT is forgotten.
        assert!(v.base_rtt().is_some());
        v.on_event(&mut w, CcEvent::TxStart);
        assert_eq!(v.base_rtt(), None);
    }
}

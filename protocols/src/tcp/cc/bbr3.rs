//! BBRv3 as draft-ietf-ccwg-bbr-06 specifies it (`bbr3`), with Linux's BBRv3
//! (`net/ipv4/tcp_bbr.c`, github.com/google/bbr branch v3) where the draft leaves a choice
//! open, in bytes and simulated nanoseconds. It owns the controller's model and state
//! machine only; the connection measures delivery rates, detects losses and sends.
//!
//! The model (draft section 2.9):
//! - `max_bw`: the largest delivery rate over the current and the previous ProbeBW cycle
//!   (a two-slot max filter advanced once per cycle); `min_rtt`: the smallest RTT over
//!   10 s, refreshed by ProbeRTT;
//! - long term, `inflight_longterm`: the in-flight volume at which a bandwidth probe saw
//!   more than 2% loss (or, with ECN, more than 50% of its data CE-marked), raised again
//!   when more turns out to be safe;
//! - short term, `bw_shortterm` and `inflight_shortterm`: cut to
//!   max(latest delivery, 0.7 x themselves) once per round trip with loss (and inflight
//!   by 1 - alpha/3 with ECN marks), only while not probing, and reset when a probe starts.
//!
//! `bw` = min(`max_bw`, `bw_shortterm`) paces the flow at `pacing_gain` x `bw` x 99%
//! (payload bytes, the unit of the bandwidth samples, as the connection charges them),
//! and cwnd is `cwnd_gain` x `bw` x `min_rtt` plus the ACK-aggregation estimate, capped by
//! the model. The states and their (pacing, cwnd) gains:
//!
//! - **Startup** (2.77, 2): until three rounds without 25% bandwidth growth, or a round of
//!   fast recovery with at least six loss events and more than 2% of the flight lost
//!   (`BBRStartupHighLoss`; then `inflight_longterm` = max(BDP, latest delivered)), or
//!   two rounds with more than 50% CE marks;
//! - **Drain** (0.5, 2): until in flight is down to the BDP, or 3 rounds passed;
//! - **ProbeBW**, a cycle of four states: **DOWN** (0.9, 2) until in flight is at most the
//!   BDP and 85% of `inflight_longterm`; **CRUISE** (1, 2, capped at 85% of
//!   `inflight_longterm`) until it is time to probe: 2 to 3 s (uniformly drawn) after DOWN
//!   began, or earlier after min(63, BDP in segments) rounds (Reno coexistence, the count
//!   starting at 0 or 1 at random); **REFILL** (1, 2), one round, short-term model reset;
//!   **UP** (1.25, 2.25), raising `inflight_longterm` by 1, 2, 4, ... segments per round
//!   while it limits the window, until the bandwidth stops growing for three rounds, the
//!   loss rate passes 2% (then `inflight_longterm` = max(in flight at that loss, 0.7 x
//!   target), back to DOWN) or, after a probe that went too high, in flight reaches
//!   `inflight_longterm` (precautionary probing: then REFILL again right after DOWN's first
//!   round if that probe saw no excess loss);
//! - **ProbeRTT** (1, 0.5): when no RTT sample was below the 5-second minimum for 5 s, the
//!   window is held at half the BDP (at least four segments) for 200 ms and a round, then
//!   CRUISE (or Startup if the pipe was never full).
//!
//! The random choices (the probe wait and the Reno round count) come from a generator
//! seeded with [`ConnStart::seed`], the connection's value from the run's named
//! randomness, or [`Bbr3::with_seed`]: runs are deterministic and flows that start
//! together do not probe in step.
//!
//! ECN (Linux BBRv3; the draft leaves the response open but requires CE to count as
//! congestion): when ECN was negotiated, BBRv3 keeps alpha, the EWMA (gain 1/16,
//! starting at one) of the fraction of data delivered by ECE-carrying ACKs per round; a
//! round with ECE cuts `inflight_shortterm` by alpha/3 (outside probing); a sample with
//! more than 50% of its data marked counts as "too high" like excess loss; after a cycle
//! with marks and no loss it probes again at once. Marks are exact with DCTCP-style (L4S)
//! echo ([`Bbr3::with_ecn_mode`]); with RFC 3168 echo every ACK carries ECE from a mark
//! until the sender's CWR arrives, so marks count for about a round.
//!
//! Differences from the draft, mostly because of what the connection offers:
//! - As in Linux, rounds (and loss rounds) start only on ACKs with a valid delivery-rate
//!   sample, since the full-pipe check reads the rate of the round-start ACK.
//! - Netdes detects no spurious recoveries, so the undo path (draft 5.5.11) never runs
//!   and no undo state is kept. A loss repaired by a tail loss probe marks nothing lost,
//!   and there is no TLP-recovery event, so it gets no loss response (Linux has one).
//! - SACK is assumed (netdes hosts negotiate it by default): the "any loss is too much
//!   without SACK" rule is not applied. "Six discontiguous lost ranges" in a Startup round
//!   is counted as six ACKs that marked new losses, as Linux does.
//! - As in Linux, an ACK whose newest delivered segment shows excess loss or ECN marks
//!   during a probe handles it as the lost-segment path does (the draft handles loss per
//!   lost segment only, and has no ECN).
//! - ProbeRTT cannot mark the connection application-limited (the connection offers no
//!   such call), so BBRv3 itself treats the samples of segments sent from ProbeRTT's start
//!   until everything then outstanding was delivered as application-limited.
//! - `on_event` carries no time: restarting from idle checks the end of ProbeRTT against
//!   the time of the last ACK.
//! - There is no TSO: the send quantum is the draft's (1 ms at the pacing rate, 2 segments
//!   to 64 KB) and only sets the offload budget (3 quanta), the smallest cwnd target.

use super::{
    AckSample, CaState, CcEvent, CongestionControl, ConnStart, EcnMode, LostSegment, Window,
};
use sim_core::time::{SimDuration, SimTime};

/// Fixed-point 1.0 for gains and fractions: per mille, so the draft's decimal constants
/// are exact.
const UNIT: u64 = 1000;
/// 4 ln 2: the smallest pacing gain that doubles the sending rate each round.
const STARTUP_PACING_GAIN: u64 = 2770;
const DRAIN_PACING_GAIN: u64 = 500;
const DEFAULT_CWND_GAIN: u64 = 2000;
const PROBE_DOWN_PACING_GAIN: u64 = 900;
const PROBE_UP_PACING_GAIN: u64 = 1250;
const PROBE_UP_CWND_GAIN: u64 = 2250;
const PROBE_RTT_CWND_GAIN: u64 = 500;
const PACING_MARGIN_PERCENT: u64 = 1;
/// The loss rate per round trip that ends a bandwidth probe (2%).
const LOSS_THRESH: u64 = 20;
/// The multiplicative decrease per lossy round (0.7).
const BETA: u64 = 700;
/// The share of `inflight_longterm` left free for other flows (15%).
const HEADROOM: u64 = 150;
/// The smallest window, in segments.
const MIN_PIPE_CWND_SEGS: u64 = 4;
/// Bandwidth growth that means the pipe is not full yet (25%)...
const FULL_BW_THRESH: u64 = 1250;
/// ...and the rounds without it that mean it is.
const FULL_BW_COUNT: u32 = 3;
/// Loss-marking ACKs in a Startup round that, with more than 2% lost, end Startup.
const STARTUP_FULL_LOSS_COUNT: u32 = 6;
/// The extra-acked max filter's window, in rounds (1 in Startup).
const EXTRA_ACKED_FILTER_LEN: u64 = 10;
const MIN_RTT_FILTER_LEN: SimDuration = SimDuration::from_secs(10);
const PROBE_RTT_INTERVAL: SimDuration = SimDuration::from_secs(5);
const PROBE_RTT_DURATION: SimDuration = SimDuration::from_millis(200);
/// Drain ends after this many rounds even if in flight is still above the BDP.
const DRAIN_MAX_ROUNDS: u64 = 3;
/// The Reno-coexistence bound on rounds between probes...
const BW_PROBE_MAX_ROUNDS: u64 = 63;
/// ...whose count starts at a random value below this.
const BW_PROBE_RAND_ROUNDS: u64 = 2;
/// The wall-clock wait between probes: 2 s plus up to 1 s.
const BW_PROBE_BASE: SimDuration = SimDuration::from_secs(2);
const BW_PROBE_RAND_NANOS: u64 = 1_000_000_000;
/// The most doublings of the `inflight_longterm` growth step in ProbeBW_UP.
const MAX_PROBE_UP_ROUNDS: u32 = 30;
/// The largest send quantum.
const SEND_QUANTUM_MAX: u64 = 64 * 1024;
/// A fraction of data delivered CE-marked above which a probe went too high (50%).
const ECN_THRESH: u64 = 500;
/// Rounds above `ECN_THRESH` that end Startup.
const STARTUP_FULL_ECN_COUNT: u32 = 2;
/// alpha's EWMA gain, 1/16, as a shift.
const ECN_ALPHA_GAIN_SHIFT: u32 = 4;
/// A round with marks cuts `inflight_shortterm` by alpha x 1/3.
const ECN_FACTOR_DIVISOR: u64 = 3;
/// After a cycle with marks and no loss, the first UP round grows `inflight_longterm` by
/// about this fraction of it.
const ECN_REPROBE_GAIN: u64 = 500;
/// Linux `TCP_INIT_CWND`, in segments, before the connection's window is known.
const INIT_CWND_SEGS: u64 = 10;
/// The nominal RTT for the first pacing rate, before any RTT sample.
const DEFAULT_RTT: SimDuration = SimDuration::from_millis(1);
const NANOS_PER_SEC: u128 = 1_000_000_000;
/// The model's "Infinity".
const INF: u64 = u64::MAX;

/// BBRv3's state machine (draft section 5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bbr3State {
    /// Double the sending rate each round to find the bandwidth.
    Startup,
    /// Drain the queue Startup built.
    Drain,
    /// Decelerate: drain the queue a probe built and leave headroom.
    ProbeBwDown,
    /// Send at the estimated bandwidth until it is time to probe.
    ProbeBwCruise,
    /// Refill the pipe for one round before probing.
    ProbeBwRefill,
    /// Accelerate: probe for more bandwidth.
    ProbeBwUp,
    /// Cut in flight to half the BDP to measure the propagation delay.
    ProbeRtt,
}

impl Bbr3State {
    /// The name traces use (`tcp_cc_state`).
    pub fn name(self) -> &'static str {
        match self {
            Bbr3State::Startup => "startup",
            Bbr3State::Drain => "drain",
            Bbr3State::ProbeBwDown => "probe_bw_down",
            Bbr3State::ProbeBwCruise => "probe_bw_cruise",
            Bbr3State::ProbeBwRefill => "probe_bw_refill",
            Bbr3State::ProbeBwUp => "probe_bw_up",
            Bbr3State::ProbeRtt => "probe_rtt",
        }
    }

    fn is_probe_bw(self) -> bool {
        matches!(
            self,
            Bbr3State::ProbeBwDown
                | Bbr3State::ProbeBwCruise
                | Bbr3State::ProbeBwRefill
                | Bbr3State::ProbeBwUp
        )
    }
}

/// What the incoming ACKs say about bandwidth probing (draft `BBR.ack_phase`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AckPhase {
    Init,
    Refilling,
    ProbeStarting,
    ProbeFeedback,
    ProbeStopping,
}

/// Kathleen Nichols' windowed max filter (Linux `lib/win_minmax.c`): the best, second and
/// third best values over a window, in constant space.
#[derive(Clone, Copy, Debug, Default)]
struct WindowedMax {
    s: [(u64, u64); 3],
}

impl WindowedMax {
    fn get(&self) -> u64 {
        self.s[0].1
    }

    /// Adds `v` measured at time `t` to a filter over `win` time units.
    fn update(&mut self, win: u64, t: u64, v: u64) {
        let e = (t, v);
        if v >= self.s[0].1 || t.saturating_sub(self.s[2].0) > win {
            self.s = [e; 3];
            return;
        }
        if v >= self.s[1].1 {
            self.s[1] = e;
            self.s[2] = e;
        } else if v >= self.s[2].1 {
            self.s[2] = e;
        }
        let dt = t.saturating_sub(self.s[0].0);
        if dt > win {
            self.s = [self.s[1], self.s[2], e];
            if t.saturating_sub(self.s[0].0) > win {
                self.s = [self.s[1], self.s[2], e];
            }
        } else if self.s[1].0 == self.s[0].0 && dt > win / 4 {
            self.s[1] = e;
            self.s[2] = e;
        } else if self.s[2].0 == self.s[1].0 && dt > win / 2 {
            self.s[2] = e;
        }
    }
}

/// The rate sample of one ACK as BBRv3 reads it (draft section 2.3, `RS`). As in
/// Linux, only an ACK with a valid delivery-rate sample can start a round or feed the
/// latest-delivery signals: the full-pipe check compares the round-start ACK's rate.
#[derive(Clone, Copy, Debug, Default)]
struct Rs {
    /// Bytes per second; 0 when the ACK gave no valid delivery-rate sample.
    delivery_rate: u64,
    /// Bytes delivered while the newest delivered segment was in flight.
    delivered: u64,
    /// The delivered count when that segment was sent; `None` when nothing was delivered.
    prior_delivered: Option<u64>,
    is_app_limited: bool,
    newly_acked: u64,
    newly_lost: u64,
    tx_in_flight: u64,
    lost: u64,
    delivered_ce: u64,
    rtt: Option<SimDuration>,
    ece: bool,
}

/// splitmix64: a small, well-mixed deterministic generator.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `x` scaled by `frac` per mille.
fn scaled(x: u64, frac: u64) -> u64 {
    if x == INF {
        return INF;
    }
    (x as u128 * frac as u128 / UNIT as u128).min(INF as u128) as u64
}

/// Bytes sent in `d` at `bw` bytes per second, rounded up.
fn bytes_in(bw: u64, d: SimDuration) -> u64 {
    (bw as u128 * d.as_nanos() as u128)
        .div_ceil(NANOS_PER_SEC)
        .min(INF as u128 - 1) as u64
}

/// Bytes per second when `bytes` take `d`.
fn per_sec(bytes: u64, d: SimDuration) -> u64 {
    let ns = d.as_nanos().max(1) as u128;
    (bytes as u128 * NANOS_PER_SEC / ns).min(INF as u128) as u64
}

/// BBRv3. See the module documentation.
#[derive(Clone, Debug)]
pub struct Bbr3 {
    state: Bbr3State,
    pacing_gain: u64,
    cwnd_gain: u64,
    // Round counting (5.5.1).
    round_count: u64,
    round_start: bool,
    next_round_delivered: u64,
    idle_restart: bool,
    drain_start_round: u64,
    // The data-rate model.
    /// `max_bw` filter: the previous and the current ProbeBW cycle's largest samples.
    bw_hi: [u64; 2],
    bw_shortterm: u64,
    bw: u64,
    // The data-volume model.
    min_rtt: Option<SimDuration>,
    min_rtt_stamp: SimTime,
    extra_acked: WindowedMax,
    extra_acked_interval_start: SimTime,
    extra_acked_delivered: u64,
    inflight_longterm: u64,
    inflight_shortterm: u64,
    // Congestion signals (5.5.10).
    bw_latest: u64,
    inflight_latest: u64,
    loss_round_delivered: u64,
    loss_round_start: bool,
    is_loss_in_round: bool,
    loss_events_in_round: u32,
    loss_in_cycle: bool,
    // Startup.
    full_bw_reached: bool,
    full_bw_now: bool,
    full_bw: u64,
    full_bw_count: u32,
    // ProbeBW.
    ack_phase: AckPhase,
    is_bw_probe_sample: bool,
    bw_probe_up_acked: u64,
    probe_up_acked_per_inc: u64,
    bw_probe_up_rounds: u32,
    rounds_since_probe_up: u64,
    bw_probe_wait: SimDuration,
    cycle_stamp: SimTime,
    prev_probe_too_high: bool,
    prev_probe_precautionary: bool,
    // ProbeRTT and min_rtt (5.3.4).
    probe_rtt_min_delay: Option<SimDuration>,
    probe_rtt_min_stamp: SimTime,
    probe_rtt_expired: bool,
    probe_rtt_done_stamp: Option<SimTime>,
    probe_rtt_round_done: bool,
    /// Segments sent from the start of ProbeRTT until everything then outstanding is
    /// delivered count as application-limited: delivered counts at sending from..=to.
    probe_rtt_app_limited: Option<(u64, u64)>,
    prior_cwnd: u64,
    // ECN (Linux).
    ecn_mode: EcnMode,
    ecn_eligible: bool,
    /// EWMA of the marked fraction, per mille.
    ecn_alpha: u64,
    alpha_last_delivered: u64,
    alpha_last_delivered_ce: u64,
    /// The connection's ECE-delivered total (Linux `delivered_ce`) as last seen.
    delivered_ce_now: u64,
    ecn_in_round: bool,
    ecn_in_cycle: bool,
    startup_ecn_rounds: u32,
    // Control.
    /// Bytes per second; 0 before `init`.
    pacing_rate: u64,
    has_seen_rtt: bool,
    init_cwnd: u64,
    // The connection as last seen.
    mss: u64,
    now: SimTime,
    delivered: u64,
    in_flight: u64,
    cwnd: u64,
    cwnd_limited: bool,
    ca_state: CaState,
    /// The window and ssthresh after the last ACK, to undo an idle restart.
    last_window: Option<(u64, u64)>,
    rng: u64,
    seeded: bool,
}

impl Default for Bbr3 {
    fn default() -> Self {
        Bbr3 {
            state: Bbr3State::Startup,
            pacing_gain: STARTUP_PACING_GAIN,
            cwnd_gain: DEFAULT_CWND_GAIN,
            round_count: 0,
            round_start: false,
            next_round_delivered: 0,
            idle_restart: false,
            drain_start_round: 0,
            bw_hi: [0; 2],
            bw_shortterm: INF,
            bw: 0,
            min_rtt: None,
            min_rtt_stamp: SimTime::ZERO,
            extra_acked: WindowedMax::default(),
            extra_acked_interval_start: SimTime::ZERO,
            extra_acked_delivered: 0,
            inflight_longterm: INF,
            inflight_shortterm: INF,
            bw_latest: 0,
            inflight_latest: 0,
            loss_round_delivered: 1,
            loss_round_start: false,
            is_loss_in_round: false,
            loss_events_in_round: 0,
            loss_in_cycle: false,
            full_bw_reached: false,
            full_bw_now: false,
            full_bw: 0,
            full_bw_count: 0,
            ack_phase: AckPhase::Init,
            is_bw_probe_sample: false,
            bw_probe_up_acked: 0,
            probe_up_acked_per_inc: INF,
            bw_probe_up_rounds: 0,
            rounds_since_probe_up: 0,
            bw_probe_wait: SimDuration::ZERO,
            cycle_stamp: SimTime::ZERO,
            prev_probe_too_high: false,
            prev_probe_precautionary: false,
            probe_rtt_min_delay: None,
            probe_rtt_min_stamp: SimTime::ZERO,
            probe_rtt_expired: false,
            probe_rtt_done_stamp: None,
            probe_rtt_round_done: false,
            probe_rtt_app_limited: None,
            prior_cwnd: 0,
            ecn_mode: EcnMode::Classic,
            ecn_eligible: false,
            ecn_alpha: UNIT,
            alpha_last_delivered: 0,
            alpha_last_delivered_ce: 0,
            delivered_ce_now: 0,
            ecn_in_round: false,
            ecn_in_cycle: false,
            startup_ecn_rounds: 0,
            pacing_rate: 0,
            has_seen_rtt: false,
            init_cwnd: 0,
            mss: 1,
            now: SimTime::ZERO,
            delivered: 0,
            in_flight: 0,
            cwnd: 0,
            cwnd_limited: false,
            ca_state: CaState::Open,
            last_window: None,
            rng: 0,
            seeded: false,
        }
    }
}

impl Bbr3 {
    /// A controller whose random choices come from `seed` rather than the connection's.
    pub fn with_seed(seed: u64) -> Self {
        Bbr3 {
            rng: seed,
            seeded: true,
            ..Bbr3::default()
        }
    }

    /// A controller that uses ECN as `mode` says: [`EcnMode::Dctcp`] asks for ECN whatever
    /// the host's `tcp_ecn` and gets the exact, per-segment (L4S-style) echo from a peer
    /// that does the same, as Linux BBRv3 on an `ecn_low` route.
    pub fn with_ecn_mode(mode: EcnMode) -> Self {
        Bbr3 {
            ecn_mode: mode,
            ..Bbr3::default()
        }
    }

    /// The current state.
    pub fn state(&self) -> Bbr3State {
        self.state
    }

    /// The pacing and cwnd gains, per mille.
    pub fn pacing_gain(&self) -> u64 {
        self.pacing_gain
    }
    pub fn cwnd_gain(&self) -> u64 {
        self.cwnd_gain
    }

    /// `max_bw` and `bw` = min(`max_bw`, `bw_shortterm`), bytes per second.
    pub fn max_bw(&self) -> u64 {
        self.bw_hi[0].max(self.bw_hi[1])
    }
    pub fn bw(&self) -> u64 {
        self.bw
    }

    /// The short- and long-term model, `None` while unset (infinite).
    pub fn bw_shortterm(&self) -> Option<u64> {
        (self.bw_shortterm != INF).then_some(self.bw_shortterm)
    }
    pub fn inflight_shortterm(&self) -> Option<u64> {
        (self.inflight_shortterm != INF).then_some(self.inflight_shortterm)
    }
    pub fn inflight_longterm(&self) -> Option<u64> {
        (self.inflight_longterm != INF).then_some(self.inflight_longterm)
    }

    /// The minimum-RTT estimate.
    pub fn min_rtt(&self) -> Option<SimDuration> {
        self.min_rtt
    }

    /// Packet-timed rounds so far.
    pub fn round_count(&self) -> u64 {
        self.round_count
    }

    /// The wall-clock wait before the next bandwidth probe, drawn when ProbeBW_DOWN began.
    pub fn bw_probe_wait(&self) -> SimDuration {
        self.bw_probe_wait
    }

    /// Whether the pipe was ever judged full.
    pub fn full_bw_reached(&self) -> bool {
        self.full_bw_reached
    }

    /// The EWMA of the CE-marked fraction of delivered data, in [0, 1].
    pub fn ecn_alpha(&self) -> f64 {
        self.ecn_alpha as f64 / UNIT as f64
    }

    /// A uniform draw in 0..n.
    fn random_below(&mut self, n: u64) -> u64 {
        ((splitmix64(&mut self.rng) as u128 * n as u128) >> 64) as u64
    }

    fn min_pipe_cwnd(&self) -> u64 {
        MIN_PIPE_CWND_SEGS * self.mss
    }

    /// Draft BBRBDPMultiple: `gain` x `bw` x `min_rtt`, the initial window before any RTT
    /// sample.
    fn bdp_multiple(&self, bw: u64, gain: u64) -> u64 {
        match self.min_rtt {
            None => self.init_cwnd,
            Some(rtt) => scaled(bytes_in(bw, rtt), gain),
        }
    }

    /// Draft SetSendQuantum: 1 ms at the pacing rate, 2 segments to 64 KB.
    fn send_quantum(&self) -> u64 {
        bytes_in(self.pacing_rate, SimDuration::from_millis(1))
            .min(SEND_QUANTUM_MAX)
            .max(2 * self.mss)
    }

    /// Draft BBRQuantizationBudget.
    fn quantization_budget(&self, inflight_cap: u64) -> u64 {
        let offload_budget = 3 * self.send_quantum();
        let mut cap = inflight_cap.max(offload_budget).max(self.min_pipe_cwnd());
        if self.state == Bbr3State::ProbeBwUp {
            cap = cap.saturating_add(2 * self.mss);
        }
        cap
    }

    /// Draft BBRInflight: the in-flight target for `bw` and `gain`.
    fn inflight(&self, bw: u64, gain: u64) -> u64 {
        self.quantization_budget(self.bdp_multiple(bw, gain))
    }

    /// Draft BBRTargetInflight: the BDP, unless congestion cut the window.
    fn target_inflight(&self) -> u64 {
        self.bdp_multiple(self.bw, UNIT).min(self.cwnd)
    }

    /// Draft BBRInflightWithHeadroom: 85% of `inflight_longterm`.
    fn inflight_with_headroom(&self) -> u64 {
        if self.inflight_longterm == INF {
            return INF;
        }
        let headroom = scaled(self.inflight_longterm, HEADROOM).max(self.mss);
        self.inflight_longterm
            .saturating_sub(headroom)
            .max(self.min_pipe_cwnd())
    }

    fn probe_rtt_cwnd(&self) -> u64 {
        self.bdp_multiple(self.bw, PROBE_RTT_CWND_GAIN)
            .max(self.min_pipe_cwnd())
    }

    fn recovering(s: CaState) -> bool {
        matches!(s, CaState::Recovery | CaState::Loss)
    }

    fn update_gains(&mut self) {
        let (pacing, cwnd) = match self.state {
            Bbr3State::Startup => (STARTUP_PACING_GAIN, DEFAULT_CWND_GAIN),
            Bbr3State::Drain => (DRAIN_PACING_GAIN, DEFAULT_CWND_GAIN),
            Bbr3State::ProbeBwDown => (PROBE_DOWN_PACING_GAIN, DEFAULT_CWND_GAIN),
            Bbr3State::ProbeBwCruise | Bbr3State::ProbeBwRefill => (UNIT, DEFAULT_CWND_GAIN),
            Bbr3State::ProbeBwUp => (PROBE_UP_PACING_GAIN, PROBE_UP_CWND_GAIN),
            Bbr3State::ProbeRtt => (UNIT, PROBE_RTT_CWND_GAIN),
        };
        self.pacing_gain = pacing;
        self.cwnd_gain = cwnd;
    }

    fn set_state(&mut self, state: Bbr3State) {
        self.state = state;
        self.update_gains();
    }

    // ---- Saving and restoring the window (5.6.4.4) ----

    fn save_cwnd(&mut self) {
        if !Self::recovering(self.ca_state) && self.state != Bbr3State::ProbeRtt {
            self.prior_cwnd = self.cwnd;
        } else {
            self.prior_cwnd = self.prior_cwnd.max(self.cwnd);
        }
    }

    fn restore_cwnd(&mut self, w: &mut Window) {
        w.cwnd = w.cwnd.max(self.prior_cwnd);
        self.cwnd = w.cwnd;
    }

    // ---- Rounds and the delivery signals (5.5.1, 5.5.10) ----

    fn start_round(&mut self) {
        self.next_round_delivered = self.delivered;
    }

    fn update_round(&mut self, rs: &Rs) {
        self.round_start = false;
        if let Some(p) = rs.prior_delivered.filter(|_| rs.delivery_rate > 0) {
            if p >= self.next_round_delivered {
                self.start_round();
                self.round_count += 1;
                self.rounds_since_probe_up += 1;
                self.round_start = true;
            }
        }
    }

    fn update_latest_delivery_signals(&mut self, rs: &Rs) {
        self.loss_round_start = false;
        if rs.delivery_rate == 0 {
            return;
        }
        self.bw_latest = self.bw_latest.max(rs.delivery_rate);
        self.inflight_latest = self.inflight_latest.max(rs.delivered);
        if rs
            .prior_delivered
            .is_some_and(|p| p >= self.loss_round_delivered)
        {
            self.loss_round_delivered = self.delivered;
            self.loss_round_start = true;
        }
    }

    fn advance_latest_delivery_signals(&mut self, rs: &Rs) {
        if self.loss_round_start {
            self.bw_latest = rs.delivery_rate;
            self.inflight_latest = rs.delivered;
        }
    }

    fn reset_congestion_signals(&mut self) {
        self.is_loss_in_round = false;
        self.ecn_in_round = false;
        self.loss_in_cycle = false;
        self.ecn_in_cycle = false;
        self.bw_latest = 0;
        self.inflight_latest = 0;
    }

    fn reset_short_term_model(&mut self) {
        self.bw_shortterm = INF;
        self.inflight_shortterm = INF;
    }

    fn is_probing_bw(&self) -> bool {
        matches!(
            self.state,
            Bbr3State::Startup | Bbr3State::ProbeBwRefill | Bbr3State::ProbeBwUp
        )
    }

    /// Draft UpdateMaxBw, and Linux's once-per-round ECN alpha.
    fn update_max_bw(&mut self, rs: &Rs) {
        self.update_round(rs);
        if self.round_start {
            self.update_ecn_alpha();
        }
        if rs.delivery_rate > 0 && (rs.delivery_rate >= self.max_bw() || !rs.is_app_limited) {
            self.bw_hi[1] = self.bw_hi[1].max(rs.delivery_rate);
        }
    }

    /// Draft AdvanceMaxBwFilter: a new ProbeBW cycle; forget the one before the last.
    fn advance_max_bw_filter(&mut self) {
        if self.bw_hi[1] == 0 {
            return;
        }
        self.bw_hi[0] = self.bw_hi[1];
        self.bw_hi[1] = 0;
    }

    /// Linux `bbr_update_ecn_alpha`: once per round, alpha = 15/16 alpha + 1/16 F, where F
    /// is the fraction of the round's data delivered by ACKs carrying ECE.
    fn update_ecn_alpha(&mut self) {
        if !self.ecn_eligible {
            return;
        }
        let delivered = self.delivered.saturating_sub(self.alpha_last_delivered);
        if delivered == 0 {
            return;
        }
        let delivered_ce = self
            .delivered_ce_now
            .saturating_sub(self.alpha_last_delivered_ce);
        let ce_ratio =
            (delivered_ce.min(delivered) as u128 * UNIT as u128 / delivered as u128) as u64;
        self.ecn_alpha = (self.ecn_alpha - (self.ecn_alpha >> ECN_ALPHA_GAIN_SHIFT)
            + (ce_ratio >> ECN_ALPHA_GAIN_SHIFT))
            .min(UNIT);
        self.alpha_last_delivered = self.delivered;
        self.alpha_last_delivered_ce = self.delivered_ce_now;
        // Linux bbr_check_ecn_too_high_in_startup.
        if !self.full_bw_reached {
            if ce_ratio >= ECN_THRESH {
                self.startup_ecn_rounds += 1;
            } else {
                self.startup_ecn_rounds = 0;
            }
            if self.startup_ecn_rounds >= STARTUP_FULL_ECN_COUNT {
                self.handle_queue_too_high_in_startup();
            }
        }
    }
}

impl Bbr3 {
    // ---- Responding to congestion (5.5.10) ----

    /// Draft UpdateCongestionSignals: the bandwidth filter on every ACK, the lower bounds
    /// once per loss round.
    fn update_congestion_signals(&mut self, rs: &Rs) {
        self.ecn_in_round |= self.ecn_eligible && rs.ece;
        self.update_max_bw(rs);
        if !self.loss_round_start {
            return;
        }
        self.adapt_lower_bounds_from_congestion();
        self.is_loss_in_round = false;
        self.ecn_in_round = false;
    }

    /// Draft AdaptLowerBoundsFromCongestion, with Linux's ECN response.
    fn adapt_lower_bounds_from_congestion(&mut self) {
        if self.is_probing_bw() {
            return;
        }
        let mut ecn_inflight = INF;
        if self.ecn_in_round {
            self.init_lower_bounds(false);
            let cut = UNIT - self.ecn_alpha / ECN_FACTOR_DIVISOR;
            ecn_inflight = scaled(self.inflight_shortterm, cut);
        }
        if self.is_loss_in_round {
            self.init_lower_bounds(true);
            self.bw_shortterm = self.bw_latest.max(scaled(self.bw_shortterm, BETA));
            self.inflight_shortterm = self
                .inflight_latest
                .max(scaled(self.inflight_shortterm, BETA));
        }
        self.inflight_shortterm = self.inflight_shortterm.min(ecn_inflight);
    }

    /// Draft InitLowerBounds: the first congestion of a cycle starts from the model.
    fn init_lower_bounds(&mut self, with_bw: bool) {
        if with_bw && self.bw_shortterm == INF {
            self.bw_shortterm = self.max_bw();
        }
        if self.inflight_shortterm == INF {
            self.inflight_shortterm = self.cwnd;
        }
    }

    /// Draft NoteLoss.
    fn note_loss(&mut self, delivered: u64) {
        if !self.is_loss_in_round {
            self.loss_round_delivered = delivered;
            self.save_cwnd();
        }
        self.is_loss_in_round = true;
        self.loss_in_cycle = true;
    }

    /// Draft IsInflightTooHigh (loss) and Linux's ECN rule.
    fn is_inflight_too_high(&self, rs: &Rs) -> bool {
        if rs.lost > 0 && rs.tx_in_flight > 0 && rs.lost > scaled(rs.tx_in_flight, LOSS_THRESH) {
            return true;
        }
        self.ecn_eligible
            && rs.delivered_ce > 0
            && rs.delivered > 0
            && rs.delivered_ce > scaled(rs.delivered, ECN_THRESH)
    }

    /// Draft HandleInflightTooHigh: a probe pushed in flight past what the path takes.
    fn handle_inflight_too_high(&mut self, tx_in_flight: u64, is_app_limited: bool) {
        self.prev_probe_too_high = true;
        self.is_bw_probe_sample = false;
        if !is_app_limited {
            self.inflight_longterm = tx_in_flight.max(scaled(self.target_inflight(), BETA));
        }
        if self.state == Bbr3State::ProbeBwUp {
            self.start_probe_bw_down();
        }
    }

    /// Draft BBRInflightAtLoss: where within the lost segment the loss rate crossed 2%.
    fn inflight_at_loss(seg: &LostSegment) -> u64 {
        let inflight_prev = seg.tx_in_flight.saturating_sub(seg.len);
        let lost_prev = seg.lost.saturating_sub(seg.len);
        let budget = (inflight_prev as u128 * LOSS_THRESH as u128).div_ceil(UNIT as u128) as u64;
        let lost_prefix = if lost_prev >= budget {
            0
        } else {
            (budget - lost_prev) * UNIT / (UNIT - LOSS_THRESH)
        };
        inflight_prev + lost_prefix
    }

    // ---- ACK aggregation (5.5.9) ----

    fn update_ack_aggregation(&mut self, rs: &Rs) {
        if rs.newly_acked == 0 {
            return;
        }
        let interval = self.now.saturating_since(self.extra_acked_interval_start);
        let mut expected = bytes_in(self.bw, interval);
        if self.extra_acked_delivered <= expected {
            self.extra_acked_delivered = 0;
            self.extra_acked_interval_start = self.now;
            expected = 0;
        }
        self.extra_acked_delivered += rs.newly_acked;
        let extra = (self.extra_acked_delivered - expected).min(self.cwnd);
        let len = if self.full_bw_reached {
            EXTRA_ACKED_FILTER_LEN
        } else {
            1
        };
        self.extra_acked.update(len, self.round_count, extra);
    }

    // ---- Startup and Drain (5.3.1, 5.3.2) ----

    fn reset_full_bw(&mut self) {
        self.full_bw = 0;
        self.full_bw_count = 0;
        self.full_bw_now = false;
    }

    /// Draft CheckFullBWReached: three rounds without 25% growth.
    fn check_full_bw_reached(&mut self, rs: &Rs) {
        if self.full_bw_now || !self.round_start || rs.is_app_limited {
            return;
        }
        if rs.delivery_rate >= scaled(self.full_bw, FULL_BW_THRESH) {
            self.reset_full_bw();
            self.full_bw = rs.delivery_rate;
            return;
        }
        self.full_bw_count += 1;
        self.full_bw_now = self.full_bw_count >= FULL_BW_COUNT;
        if self.full_bw_now {
            self.full_bw_reached = true;
        }
    }

    /// The draft's loss exit from Startup (Linux `bbr_handle_queue_too_high_in_startup`):
    /// the pipe is full, and in flight should stay at max(BDP, the latest delivered).
    fn handle_queue_too_high_in_startup(&mut self) {
        self.full_bw_reached = true;
        let bdp = self.bdp_multiple(self.bw, UNIT);
        self.inflight_longterm = bdp.max(self.inflight_latest);
    }

    /// Draft CheckStartupHighLoss: a round of fast recovery with at least six
    /// loss-marking ACKs and more than 2% of the flight lost.
    fn check_startup_high_loss(&mut self, rs: &Rs) {
        if self.full_bw_reached {
            return;
        }
        if rs.newly_lost > 0 {
            self.loss_events_in_round = self.loss_events_in_round.saturating_add(1);
        }
        if self.loss_round_start
            && self.ca_state == CaState::Recovery
            && self.loss_events_in_round >= STARTUP_FULL_LOSS_COUNT
            && self.is_inflight_too_high(rs)
        {
            self.handle_queue_too_high_in_startup();
            return;
        }
        if self.loss_round_start {
            self.loss_events_in_round = 0;
        }
    }

    fn check_startup_done(&mut self, w: &mut Window, rs: &Rs) {
        self.check_startup_high_loss(rs);
        if self.state == Bbr3State::Startup && self.full_bw_reached {
            self.enter_drain(w);
        }
    }

    fn enter_drain(&mut self, w: &mut Window) {
        self.set_state(Bbr3State::Drain);
        self.drain_start_round = self.round_count;
        // Not used by BBR: shows (as Linux) that Startup is over.
        w.ssthresh = self.inflight(self.max_bw(), UNIT);
    }

    fn check_drain_done(&mut self) {
        if self.state == Bbr3State::Drain
            && (self.in_flight <= self.inflight(self.bw, UNIT)
                || self.round_count > self.drain_start_round + DRAIN_MAX_ROUNDS)
        {
            self.enter_probe_bw();
        }
    }

    // ---- ProbeBW (5.3.3) ----

    fn enter_probe_bw(&mut self) {
        self.start_probe_bw_down();
    }

    /// Draft PickProbeWait: 0 or 1 rounds already counted, and 2-3 s of wall clock.
    fn pick_probe_wait(&mut self) {
        self.rounds_since_probe_up = self.random_below(BW_PROBE_RAND_ROUNDS);
        self.bw_probe_wait =
            BW_PROBE_BASE + SimDuration::from_nanos(self.random_below(BW_PROBE_RAND_NANOS));
    }

    fn start_probe_bw_down(&mut self) {
        self.reset_congestion_signals();
        self.probe_up_acked_per_inc = INF;
        self.pick_probe_wait();
        self.cycle_stamp = self.now;
        self.ack_phase = AckPhase::ProbeStopping;
        self.start_round();
        self.set_state(Bbr3State::ProbeBwDown);
    }

    fn start_probe_bw_cruise(&mut self) {
        self.set_state(Bbr3State::ProbeBwCruise);
    }

    /// Draft StartProbeBW_REFILL; `up_rounds` starts the `inflight_longterm` growth
    /// further along (Linux's ECN re-probe).
    fn start_probe_bw_refill(&mut self, up_rounds: u32) {
        self.reset_short_term_model();
        self.bw_probe_up_rounds = up_rounds;
        self.bw_probe_up_acked = 0;
        self.prev_probe_precautionary = false;
        self.ack_phase = AckPhase::Refilling;
        self.start_round();
        self.set_state(Bbr3State::ProbeBwRefill);
    }

    fn start_probe_bw_up(&mut self, rs: &Rs) {
        self.ack_phase = AckPhase::ProbeStarting;
        self.start_round();
        self.reset_full_bw();
        self.full_bw = rs.delivery_rate;
        self.set_state(Bbr3State::ProbeBwUp);
        self.raise_inflight_longterm_slope();
    }

    /// Draft RaiseInflightLongtermSlope: 1, 2, 4, ... segments more per round.
    fn raise_inflight_longterm_slope(&mut self) {
        let growth_this_round = 1u64 << self.bw_probe_up_rounds;
        self.bw_probe_up_rounds = (self.bw_probe_up_rounds + 1).min(MAX_PROBE_UP_ROUNDS);
        self.probe_up_acked_per_inc = (self.cwnd / growth_this_round).max(self.mss);
    }

    /// Draft ProbeInflightLongtermUpward.
    fn probe_inflight_longterm_upward(&mut self, rs: &Rs) {
        if !self.cwnd_limited || self.cwnd < self.inflight_longterm {
            return;
        }
        self.bw_probe_up_acked += rs.newly_acked;
        if self.bw_probe_up_acked >= self.probe_up_acked_per_inc {
            let delta = self.bw_probe_up_acked / self.probe_up_acked_per_inc;
            self.bw_probe_up_acked -= delta * self.probe_up_acked_per_inc;
            self.inflight_longterm = self.inflight_longterm.saturating_add(delta * self.mss);
        }
        if self.round_start {
            self.raise_inflight_longterm_slope();
        }
    }

    /// Draft AdaptLongTermModel; true when it decided a state transition.
    fn adapt_long_term_model(&mut self, rs: &Rs) -> bool {
        if self.ack_phase == AckPhase::ProbeStarting && self.round_start {
            self.ack_phase = AckPhase::ProbeFeedback;
        }
        if self.ack_phase == AckPhase::ProbeStopping && self.round_start {
            self.is_bw_probe_sample = false;
            self.ack_phase = AckPhase::Init;
            if self.state.is_probe_bw() && !rs.is_app_limited {
                self.advance_max_bw_filter();
            }
            // Precautionary probing: the cautious probe caused no excess loss.
            if self.state.is_probe_bw()
                && self.prev_probe_precautionary
                && !self.prev_probe_too_high
            {
                self.start_probe_bw_refill(0);
                return true;
            }
        }
        if self.is_inflight_too_high(rs) {
            if self.is_bw_probe_sample {
                self.handle_inflight_too_high(rs.tx_in_flight, rs.is_app_limited);
            }
            return false;
        }
        if self.inflight_longterm == INF {
            return false;
        }
        if rs.tx_in_flight > self.inflight_longterm {
            self.inflight_longterm = rs.tx_in_flight;
        }
        if self.state == Bbr3State::ProbeBwUp {
            self.probe_inflight_longterm_upward(rs);
        }
        false
    }

    fn has_elapsed_in_phase(&self, interval: SimDuration) -> bool {
        self.now > self.cycle_stamp + interval
    }

    /// Draft IsRenoCoexistenceProbeTime: a Reno flow with our BDP (in segments, at most
    /// 63) would probe every that many rounds.
    fn is_reno_coexistence_probe_time(&self) -> bool {
        let reno_rounds = self.target_inflight() / self.mss;
        self.rounds_since_probe_up >= reno_rounds.min(BW_PROBE_MAX_ROUNDS)
    }

    /// Draft IsTimeToProbeBW, with Linux's quick re-probe after ECN-only congestion.
    fn check_time_to_probe_bw(&mut self) -> bool {
        if self.ecn_eligible
            && self.ecn_in_cycle
            && !self.loss_in_cycle
            && self.ca_state == CaState::Open
        {
            let half = scaled(self.inflight_longterm, ECN_REPROBE_GAIN) / self.mss;
            let n = (u64::BITS - 1 - half.max(1).leading_zeros()).min(MAX_PROBE_UP_ROUNDS);
            self.start_probe_bw_refill(n);
            return true;
        }
        if self.has_elapsed_in_phase(self.bw_probe_wait) || self.is_reno_coexistence_probe_time() {
            self.start_probe_bw_refill(0);
            return true;
        }
        false
    }

    fn is_time_to_cruise(&self) -> bool {
        self.in_flight <= self.inflight_with_headroom()
            && self.in_flight <= self.inflight(self.max_bw(), UNIT)
    }

    /// Draft IsTimeToGoDown.
    fn is_time_to_go_down(&mut self, rs: &Rs) -> bool {
        if self.prev_probe_too_high && self.in_flight >= self.inflight_longterm {
            self.prev_probe_precautionary = true;
            return true;
        }
        if self.cwnd_limited && self.cwnd >= self.inflight_longterm {
            // In flight is held at inflight_longterm: the bandwidth cannot show yet.
            self.reset_full_bw();
            self.full_bw = rs.delivery_rate;
        } else if self.full_bw_now {
            return true;
        }
        false
    }

    /// Draft UpdateProbeBWCyclePhase.
    fn update_probe_bw_cycle_phase(&mut self, rs: &Rs) {
        if !self.full_bw_reached {
            return;
        }
        if self.adapt_long_term_model(rs) {
            return;
        }
        match self.state {
            Bbr3State::ProbeBwDown => {
                if self.check_time_to_probe_bw() {
                    return;
                }
                if self.is_time_to_cruise() {
                    self.start_probe_bw_cruise();
                }
            }
            Bbr3State::ProbeBwCruise => {
                self.check_time_to_probe_bw();
            }
            Bbr3State::ProbeBwRefill => {
                if self.round_start {
                    self.is_bw_probe_sample = true;
                    self.start_probe_bw_up(rs);
                }
            }
            Bbr3State::ProbeBwUp => {
                if self.is_time_to_go_down(rs) {
                    self.prev_probe_too_high = false;
                    self.start_probe_bw_down();
                }
            }
            Bbr3State::Startup | Bbr3State::Drain | Bbr3State::ProbeRtt => {}
        }
    }

    // ---- min_rtt and ProbeRTT (5.3.4) ----

    /// Draft UpdateMinRTT.
    fn update_min_rtt(&mut self, rs: &Rs) {
        self.probe_rtt_expired = self.now > self.probe_rtt_min_stamp + PROBE_RTT_INTERVAL;
        if let Some(rtt) = rs.rtt {
            if self.probe_rtt_min_delay.is_none_or(|m| rtt < m) || self.probe_rtt_expired {
                self.probe_rtt_min_delay = Some(rtt);
                self.probe_rtt_min_stamp = self.now;
            }
        }
        let min_rtt_expired = self.now > self.min_rtt_stamp + MIN_RTT_FILTER_LEN;
        if let Some(d) = self.probe_rtt_min_delay {
            if self.min_rtt.is_none_or(|m| d < m) || min_rtt_expired {
                self.min_rtt = Some(d);
                self.min_rtt_stamp = self.probe_rtt_min_stamp;
            }
        }
    }

    /// Draft CheckProbeRTT.
    fn check_probe_rtt(&mut self, w: &mut Window, rs: &Rs) {
        if self.state != Bbr3State::ProbeRtt && self.probe_rtt_expired && !self.idle_restart {
            self.set_state(Bbr3State::ProbeRtt);
            self.save_cwnd();
            self.probe_rtt_done_stamp = None;
            self.ack_phase = AckPhase::ProbeStopping;
            self.start_round();
            self.probe_rtt_app_limited = Some((self.delivered, self.delivered));
        }
        if self.state == Bbr3State::ProbeRtt {
            self.handle_probe_rtt(w);
        }
        if rs.newly_acked > 0 {
            self.idle_restart = false;
        }
    }

    fn handle_probe_rtt(&mut self, w: &mut Window) {
        // Draft MarkConnectionAppLimited: the low rate of this state says nothing.
        let until = self.delivered + self.in_flight;
        if let Some((_, to)) = &mut self.probe_rtt_app_limited {
            *to = (*to).max(until);
        }
        if self.probe_rtt_done_stamp.is_none() && self.in_flight <= self.probe_rtt_cwnd() {
            self.probe_rtt_done_stamp = Some(self.now + PROBE_RTT_DURATION);
            self.probe_rtt_round_done = false;
            self.start_round();
        } else if self.probe_rtt_done_stamp.is_some() {
            if self.round_start {
                self.probe_rtt_round_done = true;
            }
            if self.probe_rtt_round_done {
                self.check_probe_rtt_done(w);
            }
        }
    }

    fn check_probe_rtt_done(&mut self, w: &mut Window) {
        if self.probe_rtt_done_stamp.is_some_and(|d| self.now > d) {
            self.probe_rtt_min_stamp = self.now;
            self.restore_cwnd(w);
            self.exit_probe_rtt();
        }
    }

    fn exit_probe_rtt(&mut self) {
        self.reset_short_term_model();
        if self.full_bw_reached {
            self.start_probe_bw_down();
            self.start_probe_bw_cruise();
        } else {
            self.set_state(Bbr3State::Startup);
        }
    }

    // ---- Control parameters (5.6) ----

    /// Draft InitPacingRate: Startup's gain times the initial window per SRTT (or per a
    /// nominal 1 ms before any RTT sample).
    fn init_pacing_rate(&mut self, srtt: Option<SimDuration>) {
        let rtt = match srtt {
            Some(r) => {
                self.has_seen_rtt = true;
                r.max(SimDuration::from_nanos(1))
            }
            None => DEFAULT_RTT,
        };
        self.pacing_rate = scaled(per_sec(self.init_cwnd, rtt), STARTUP_PACING_GAIN);
    }

    /// Draft SetPacingRateWithGain: never slower until the pipe was full.
    fn set_pacing_rate_with_gain(&mut self, gain: u64) {
        let rate = scaled(scaled(self.bw, gain), UNIT - PACING_MARGIN_PERCENT * 10);
        if self.full_bw_reached || rate > self.pacing_rate {
            self.pacing_rate = rate;
        }
    }

    /// Draft SetCwnd with BoundCwndForProbeRTT and BoundCwndForModel.
    fn set_cwnd(&mut self, w: &mut Window, rs: &Rs) {
        let max_inflight = self.quantization_budget(
            self.bdp_multiple(self.bw, self.cwnd_gain)
                .saturating_add(self.extra_acked.get()),
        );
        let mut cwnd = w.cwnd;
        if self.full_bw_reached {
            cwnd = cwnd.saturating_add(rs.newly_acked).min(max_inflight);
        } else if cwnd < max_inflight || self.delivered < self.init_cwnd {
            cwnd = cwnd.saturating_add(rs.newly_acked);
        }
        cwnd = cwnd.max(self.min_pipe_cwnd());
        if self.state == Bbr3State::ProbeRtt {
            cwnd = cwnd.min(self.probe_rtt_cwnd());
        }
        // BoundCwndForModel: the volume caps of the draft's table (5.6.1).
        let mut cap = INF;
        if self.state.is_probe_bw() && self.state != Bbr3State::ProbeBwCruise {
            cap = self.inflight_longterm;
        } else if matches!(self.state, Bbr3State::ProbeRtt | Bbr3State::ProbeBwCruise) {
            cap = self.inflight_with_headroom();
        }
        cap = cap.min(self.inflight_shortterm).max(self.min_pipe_cwnd());
        w.cwnd = cwnd.min(cap);
        self.cwnd = w.cwnd;
    }

    /// Turns the connection's ACK into the draft's rate sample.
    fn sample(&self, ack: &AckSample) -> Rs {
        let probe_rtt_limited = |prior: u64| {
            self.probe_rtt_app_limited
                .is_some_and(|(from, to)| prior >= from && prior <= to)
        };
        let rate = ack
            .rate
            .filter(|r| r.delivered > 0 && r.interval > SimDuration::ZERO);
        let mut rs = Rs {
            delivery_rate: rate.map_or(0, |r| r.bytes_per_sec()),
            newly_acked: ack.acked,
            newly_lost: ack.lost,
            ece: ack.ece,
            ..Rs::default()
        };
        if let Some(f) = ack.flight {
            rs.delivered = f.delivered;
            rs.prior_delivered = Some(f.prior_delivered);
            rs.is_app_limited = f.is_app_limited || probe_rtt_limited(f.prior_delivered);
            rs.tx_in_flight = f.tx_in_flight;
            rs.lost = f.lost;
            rs.delivered_ce = f.delivered_ce;
            rs.rtt = f.rtt;
        } else if let Some(r) = rate {
            rs.is_app_limited = r.is_app_limited || probe_rtt_limited(r.prior_delivered);
        }
        rs
    }

    /// Sets up the controller; `init_cwnd` is the connection's initial window.
    fn start(&mut self, w: &mut Window, conn: &ConnStart) {
        let (seed, seeded, ecn_mode) = (self.rng, self.seeded, self.ecn_mode);
        *self = Bbr3 {
            rng: if seeded { seed } else { conn.seed },
            seeded,
            ecn_mode,
            ..Bbr3::default()
        };
        self.mss = (w.mss as u64).max(1);
        self.init_cwnd = if w.cwnd > 0 {
            w.cwnd
        } else {
            INIT_CWND_SEGS * self.mss
        };
        self.cwnd = w.cwnd;
        self.now = conn.now;
        self.ecn_eligible = conn.ecn;
        // OnInit: min_rtt from the handshake's RTT, if any.
        self.min_rtt = conn.srtt;
        self.probe_rtt_min_delay = conn.srtt;
        self.min_rtt_stamp = conn.now;
        self.probe_rtt_min_stamp = conn.now;
        self.extra_acked_interval_start = conn.now;
        self.cycle_stamp = conn.now;
        w.ssthresh = u64::MAX;
        self.init_pacing_rate(conn.srtt);
        self.set_state(Bbr3State::Startup);
    }
}

impl CongestionControl for Bbr3 {
    fn name(&self) -> &'static str {
        "bbr3"
    }

    fn init(&mut self, w: &mut Window, conn: &ConnStart) {
        self.start(w, conn);
    }

    fn on_ack(&mut self, w: &mut Window, ack: &AckSample) {
        if self.pacing_rate == 0 {
            // Not initialized (a test driving the controller directly).
            self.start(
                w,
                &ConnStart {
                    now: ack.now,
                    seed: 0,
                    srtt: None,
                    ecn: false,
                },
            );
        }
        self.mss = (w.mss as u64).max(1);
        self.now = ack.now;
        self.delivered = ack.delivered;
        self.delivered_ce_now = ack.delivered_ce;
        self.in_flight = ack.in_flight;
        self.cwnd = w.cwnd;
        self.cwnd_limited = ack.cwnd_limited;
        let prev_ca_state = self.ca_state;
        self.ca_state = ack.ca_state;
        if !self.has_seen_rtt && ack.srtt.is_some() {
            self.init_pacing_rate(ack.srtt);
        }
        let rs = self.sample(ack);
        // Leaving loss recovery restores the last known good window (5.6.4.4).
        if Self::recovering(prev_ca_state) && !Self::recovering(ack.ca_state) {
            self.restore_cwnd(w);
        }

        // UpdateModelAndState.
        self.update_latest_delivery_signals(&rs);
        self.update_congestion_signals(&rs);
        self.update_ack_aggregation(&rs);
        self.check_full_bw_reached(&rs);
        self.check_startup_done(w, &rs);
        self.check_drain_done();
        self.update_probe_bw_cycle_phase(&rs);
        self.update_min_rtt(&rs);
        self.check_probe_rtt(w, &rs);
        self.advance_latest_delivery_signals(&rs);
        self.bw = self.max_bw().min(self.bw_shortterm);

        // UpdateControlParameters.
        self.set_pacing_rate_with_gain(self.pacing_gain);
        self.set_cwnd(w, &rs);
        self.loss_in_cycle |= rs.lost > 0;
        self.ecn_in_cycle |= rs.delivered_ce > 0;
        self.last_window = Some((w.cwnd, w.ssthresh));
    }

    /// The connection found `seg` lost (draft HandleLostPacket).
    fn on_segment_lost(&mut self, seg: &LostSegment) {
        self.note_loss(seg.delivered);
        if !self.is_bw_probe_sample {
            return;
        }
        let rs = Rs {
            tx_in_flight: seg.tx_in_flight,
            lost: seg.lost,
            is_app_limited: seg.is_app_limited,
            ..Rs::default()
        };
        if self.is_inflight_too_high(&rs) {
            self.handle_inflight_too_high(Self::inflight_at_loss(seg), seg.is_app_limited);
        }
    }

    /// ssthresh is not BBR's: remember the window and leave ssthresh as it is.
    fn ssthresh(&mut self, w: &Window, _in_flight: u64) -> u64 {
        self.cwnd = w.cwnd;
        self.save_cwnd();
        w.ssthresh
    }

    fn on_event(&mut self, w: &mut Window, ev: CcEvent) {
        self.mss = (w.mss as u64).max(1);
        match ev {
            // Draft OnEnterFastRecovery / OnEnterRTO: remember the window to restore (the
            // connection then restarts an RTO from one segment).
            CcEvent::EnterRecovery | CcEvent::Timeout => {
                self.cwnd = w.cwnd;
                self.save_cwnd();
            }
            CcEvent::TxStart => {
                // Draft HandleRestartFromIdle.
                self.idle_restart = true;
                self.extra_acked_interval_start = self.now;
                if self.state.is_probe_bw() {
                    self.set_pacing_rate_with_gain(UNIT);
                } else if self.state == Bbr3State::ProbeRtt {
                    self.check_probe_rtt_done(w);
                }
            }
            CcEvent::IdleRestart => {
                // Like Linux, BBR keeps its window after idle: undo the reduction.
                if let Some((cwnd, ssthresh)) = self.last_window {
                    w.cwnd = w.cwnd.max(cwnd);
                    w.ssthresh = ssthresh;
                }
            }
            // Recovery's end is followed through each ACK's loss state; ECN reductions
            // are the model's (ECE in the samples), not the connection's CWR state.
            CcEvent::ExitRecovery | CcEvent::EnterCwr | CcEvent::ExitCwr => {}
        }
    }

    fn controls_window(&self) -> bool {
        true
    }

    fn pacing_rate(&self) -> Option<u64> {
        (self.pacing_rate > 0).then_some(self.pacing_rate)
    }

    /// Linux BBRv3's `bbr_min_tso_segs`: one segment per burst below 1.2 Mb/s, else two.
    fn min_tso_segs(&self) -> Option<u32> {
        Some(if self.pacing_rate < 1_200_000 / 8 {
            1
        } else {
            2
        })
    }

    fn ecn_mode(&self) -> EcnMode {
        self.ecn_mode
    }

    /// Room for the extra data in flight that probing and ACK aggregation call for (Linux
    /// `bbr_sndbuf_expand`).
    fn sndbuf_windows(&self) -> u64 {
        3
    }

    fn phase(&self) -> Option<&'static str> {
        Some(self.state.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::cc::{FlightSample, RateSample};

    const MSS: u64 = 1000;
    /// 100 Mbit/s in bytes per second.
    const BW: u64 = 12_500_000;
    const RTT: SimDuration = SimDuration::from_millis(40);

    /// Drives a controller with synthetic ACKs, keeping the connection's counters.
    struct Driver {
        cc: Bbr3,
        w: Window,
        now: SimTime,
        delivered: u64,
        delivered_ce: u64,
        /// The delivered count when the current round's segments were sent.
        round_base: u64,
        rtt: SimDuration,
        in_flight: u64,
        ca: CaState,
        /// Bytes the next ACK reports newly lost.
        lost: u64,
        /// Bytes reported lost so far.
        lost_total: u64,
        /// The loss and marks the next ACK's newest segment saw while in flight.
        flight_lost: u64,
        flight_ce: u64,
        ece: bool,
        cwnd_limited: bool,
    }

    impl Driver {
        fn new(cc: Bbr3) -> Self {
            Driver::with(cc, RTT, false)
        }

        fn with(mut cc: Bbr3, rtt: SimDuration, ecn: bool) -> Self {
            let mut w = Window {
                cwnd: 10 * MSS,
                ssthresh: u64::MAX,
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
            Driver {
                cc,
                w,
                now: SimTime::ZERO,
                delivered: 0,
                delivered_ce: 0,
                round_base: 0,
                rtt,
                in_flight: 10 * MSS,
                ca: CaState::Open,
                lost: 0,
                lost_total: 0,
                flight_lost: 0,
                flight_ce: 0,
                ece: false,
                cwnd_limited: true,
            }
        }

        /// One ACK at `now + gap` for `acked` bytes whose newest segment was sent at the
        /// start of the round, with a delivery-rate sample of `bw` over one RTT.
        fn ack_with(&mut self, gap: SimDuration, acked: u64, bw: u64, app_limited: bool) {
            self.now += gap;
            if self.cc.state() == Bbr3State::ProbeRtt {
                // The sender drains to the window ProbeRTT set.
                self.in_flight = self.in_flight.min(self.w.cwnd);
            }
            let prior_in_flight = self.in_flight;
            self.delivered += acked;
            if self.ece {
                self.delivered_ce += acked;
            }
            let sampled = bytes_in(bw, self.rtt).max(1);
            let rate = (bw > 0).then_some(RateSample {
                delivered: sampled,
                interval: self.rtt,
                prior_delivered: self.round_base,
                rtt: self.rtt,
                is_app_limited: app_limited,
            });
            let lost = std::mem::take(&mut self.lost);
            self.lost_total += lost;
            let s = AckSample {
                now: self.now,
                acked,
                lost,
                lost_total: self.lost_total,
                rtt: Some(self.rtt),
                min_rtt: Some(self.rtt),
                srtt: Some(self.rtt),
                prior_in_flight,
                in_flight: self.in_flight,
                delivered: self.delivered,
                cwnd_limited: self.cwnd_limited,
                ca_state: self.ca,
                rate,
                ece: self.ece,
                delivered_ce: self.delivered_ce,
                flight: Some(FlightSample {
                    tx_in_flight: self.in_flight.max(1),
                    lost: self.flight_lost,
                    delivered: sampled,
                    delivered_ce: self.flight_ce,
                    prior_delivered: self.round_base,
                    is_app_limited: app_limited,
                    rtt: Some(self.rtt),
                }),
            };
            self.cc.on_ack(&mut self.w, &s);
            self.w.cwnd = self.w.cwnd.max(MSS);
        }

        /// The next ACKs are for segments sent after everything delivered so far.
        fn next_round(&mut self) {
            self.round_base = self.delivered;
        }

        /// One round trip: `acks` ACKs spread over one RTT, each for `acked` bytes.
        fn round(&mut self, acks: u32, acked: u64, bw: u64) {
            self.next_round();
            let gap = self.rtt / acks as u64;
            for _ in 0..acks {
                self.ack_with(gap, acked, bw, false);
            }
        }

        /// Rounds at `bw` with one BDP in flight until ProbeBW.
        fn run_to_probe_bw(&mut self, bw: u64) {
            self.in_flight = bytes_in(bw, self.rtt);
            for _ in 0..30 {
                self.round(1, bytes_in(bw, self.rtt), bw);
                if self.cc.state().is_probe_bw() {
                    return;
                }
            }
            panic!("never reached ProbeBW: {:?}", self.cc);
        }

        /// Rounds of `acks` ACKs at `bw` until the state is `want` (at most `max` rounds);
        /// returns the time it was entered.
        fn rounds_until(&mut self, want: Bbr3State, acks: u32, bw: u64, max: u32) -> SimTime {
            let per_ack = bytes_in(bw, self.rtt) / acks as u64;
            let gap = self.rtt / acks as u64;
            for _ in 0..max {
                self.next_round();
                for _ in 0..acks {
                    self.ack_with(gap, per_ack, bw, false);
                    if self.cc.state() == want {
                        return self.now;
                    }
                }
            }
            panic!("no {want:?} within {max} rounds: {:?}", self.cc);
        }

        fn lose(&mut self, len: u64, tx_in_flight: u64, lost: u64) {
            self.cc.on_segment_lost(&LostSegment {
                now: self.now,
                len,
                tx_in_flight,
                lost,
                is_app_limited: false,
                delivered: self.delivered,
            });
        }
    }

    /// The pacing rate for `bw` and `gain`: gain x bw less the 1% margin.
    fn paced(bw: u64, gain: u64) -> u64 {
        scaled(scaled(bw, gain), 990)
    }

    fn bdp(bw: u64) -> u64 {
        bytes_in(bw, RTT)
    }

    // Draft 5.3.1 (test case A.1): Startup paces at 2.77 x bw (less 1%) with cwnd gain 2
    // while the bandwidth grows, and after three rounds without 25% growth enters Drain
    // (pacing gain 0.5).
    #[test]
    fn startup_grows_at_2_77_and_exits_after_three_flat_rounds() {
        let mut d = Driver::new(Bbr3::with_seed(1));
        // Before any RTT sample: 2.77 x ten segments per nominal millisecond.
        assert_eq!(d.cc.pacing_rate(), Some(27_700_000));
        assert_eq!(d.cc.phase(), Some("startup"));
        d.cc.has_seen_rtt = true;
        let mut bw = 1_000_000;
        for _ in 0..6 {
            d.in_flight = 4 * bytes_in(bw, RTT);
            d.round(1, bytes_in(bw, RTT), bw);
            assert_eq!(d.cc.state(), Bbr3State::Startup);
            assert_eq!(d.cc.max_bw(), bw);
            assert_eq!((d.cc.pacing_gain(), d.cc.cwnd_gain()), (2770, 2000));
            if bw > 10_000_000 {
                assert_eq!(d.cc.pacing_rate(), Some(paced(bw, 2770)), "bw {bw}");
            }
            bw *= 2;
        }
        let top = bw / 2;
        // 20% more is not growth; the third such round fills the pipe.
        for r in 0..3 {
            assert_eq!(d.cc.state(), Bbr3State::Startup, "flat round {r}");
            d.round(1, bytes_in(top, RTT), top * 6 / 5);
        }
        assert!(d.cc.full_bw_reached());
        assert_eq!(d.cc.state(), Bbr3State::Drain);
        assert_eq!((d.cc.pacing_gain(), d.cc.cwnd_gain()), (500, 2000));
        assert_eq!(d.cc.pacing_rate(), Some(paced(top * 6 / 5, 500)));
        // ssthresh shows (as Linux) that Startup is over: one BDP plus the budget.
        assert_eq!(d.w.ssthresh, d.cc.inflight(top * 6 / 5, UNIT));
    }

    // Draft 5.3.1.3 (A.2): in Startup, a round of fast recovery with at least six
    // loss-marking ACKs and more than 2% of the flight lost ends Startup, even when the
    // samples are application-limited; inflight_longterm = max(BDP, latest delivered).
    #[test]
    fn startup_exits_on_a_round_of_high_loss() {
        for (events, lost_per_mille, exits) in [(6, 25, true), (5, 25, false), (6, 15, false)] {
            let mut d = Driver::new(Bbr3::with_seed(2));
            let bw = BW / 4;
            d.in_flight = 2 * bdp(bw);
            for _ in 0..3 {
                d.round(1, bdp(bw), bw);
            }
            // A round of recovery: the first loss starts a loss round, and ACKs of
            // segments sent before it mark new losses.
            d.next_round();
            d.ack_with(RTT / 8, bdp(bw) / 8, bw, true);
            d.ca = CaState::Recovery;
            d.lose(MSS, d.in_flight, MSS);
            for _ in 0..events {
                d.lost = MSS;
                d.ack_with(RTT / 8, bdp(bw) / 8, bw, true);
            }
            // The round ends: the newest segment's flight lost this share.
            d.next_round();
            d.flight_lost = d.in_flight * lost_per_mille / 1000;
            d.ack_with(RTT / 8, bdp(bw) / 8, bw, true);
            assert_eq!(
                d.cc.state() == Bbr3State::Drain,
                exits,
                "{events} events, {lost_per_mille}/1000 lost"
            );
            if exits {
                // max(BDP, the most delivered in a round's sample): here both the BDP.
                assert_eq!(d.cc.inflight_longterm(), Some(bdp(bw)));
            } else {
                assert_eq!(d.cc.inflight_longterm(), None);
            }
        }
    }

    /// A controller in Drain at `BW`, with three BDPs in flight.
    fn in_drain() -> Driver {
        let mut d = Driver::new(Bbr3::with_seed(3));
        d.in_flight = 3 * bdp(BW);
        for _ in 0..4 {
            d.round(1, bdp(BW), BW);
        }
        assert_eq!(d.cc.state(), Bbr3State::Drain);
        d
    }

    // Draft 5.3.2 (A.3, A.4): Drain ends when in flight is down to one BDP (plus the
    // quantization budget), or after three rounds in any case.
    #[test]
    fn drain_ends_at_one_bdp_in_flight_or_after_three_rounds() {
        let mut d = in_drain();
        let target = d.cc.inflight(BW, UNIT);
        assert_eq!(target, bdp(BW).max(3 * d.cc.send_quantum()));
        d.in_flight = target + 1;
        d.ack_with(SimDuration::from_millis(1), MSS, BW, false);
        assert_eq!(d.cc.state(), Bbr3State::Drain);
        d.in_flight = target;
        d.ack_with(SimDuration::from_millis(1), MSS, BW, false);
        // DOWN, and at one BDP it may cruise at once.
        assert_eq!(d.cc.state(), Bbr3State::ProbeBwCruise);

        let mut d = in_drain();
        let start = d.cc.round_count();
        d.in_flight = 2 * bdp(BW);
        for r in 1..=3 {
            d.round(1, MSS, BW);
            assert_eq!(d.cc.state(), Bbr3State::Drain, "round {r}");
        }
        d.round(1, MSS, BW);
        assert_eq!(d.cc.round_count(), start + 4);
        assert_eq!(d.cc.state(), Bbr3State::ProbeBwDown);
        assert_eq!(d.cc.pacing_gain(), 900);
        assert_eq!(d.cc.pacing_rate(), Some(paced(BW, 900)));
    }

    /// A controller cruising at `BW` with RTT `rtt`.
    fn cruising(seed: u64, rtt: SimDuration) -> Driver {
        let mut d = Driver::with(Bbr3::with_seed(seed), rtt, false);
        d.run_to_probe_bw(BW);
        assert_eq!(d.cc.state(), Bbr3State::ProbeBwCruise);
        d
    }

    // Draft 5.3.3 and 5.3.3.8: the ProbeBW cycle. CRUISE (gain 1) lasts until the
    // wall-clock probe wait drawn at DOWN's start (2-3 s) has passed; REFILL (gain 1,
    // short-term model reset) lasts one round; UP (pacing 1.25, cwnd 2.25) lasts until
    // three rounds show no 25% growth; DOWN (0.9) until in flight is down to the BDP.
    #[test]
    fn probe_bw_cycles_down_cruise_refill_up_with_the_drafts_timing() {
        // 100 ms RTT: the Reno bound (63 rounds, 6.3 s) is above the 3 s wall clock.
        let rtt = SimDuration::from_millis(100);
        let mut d = cruising(4, rtt);
        let bdp = bytes_in(BW, rtt);
        d.in_flight = bdp;
        for cycle in 0..3 {
            assert_eq!(d.cc.pacing_gain(), UNIT);
            let step = rtt / 10;
            let refill = d.rounds_until(Bbr3State::ProbeBwRefill, 10, BW, 80);
            // Timed from the start of the cycle (DOWN, or the end of a ProbeRTT).
            let (down_at, wait) = (d.cc.cycle_stamp, d.cc.bw_probe_wait());
            assert!(
                wait >= SimDuration::from_secs(2) && wait < SimDuration::from_secs(3),
                "{wait}"
            );
            assert!(
                refill > down_at + wait && refill <= down_at + wait + step,
                "cycle {cycle}: REFILL at {refill}, DOWN at {down_at} + {wait}"
            );
            assert_eq!(d.cc.phase(), Some("probe_bw_refill"));
            assert_eq!((d.cc.pacing_gain(), d.cc.cwnd_gain()), (UNIT, 2000));
            assert_eq!(d.cc.bw_shortterm(), None);
            // One round of REFILL.
            let rounds = d.cc.round_count();
            let up = d.rounds_until(Bbr3State::ProbeBwUp, 10, BW, 2);
            assert_eq!(d.cc.round_count(), rounds + 1);
            assert!(up <= refill + rtt, "{refill} -> {up}");
            assert_eq!((d.cc.pacing_gain(), d.cc.cwnd_gain()), (1250, 2250));
            assert_eq!(d.cc.pacing_rate(), Some(paced(BW, 1250)));
            // Three rounds without growth.
            let rounds = d.cc.round_count();
            d.rounds_until(Bbr3State::ProbeBwDown, 10, BW, 4);
            assert_eq!(d.cc.round_count(), rounds + 3);
            assert_eq!(d.cc.pacing_rate(), Some(paced(BW, 900)));
            // Down: a queue to drain first.
            d.in_flight = bdp + 10 * MSS;
            d.round(10, bdp / 10, BW);
            assert_eq!(d.cc.state(), Bbr3State::ProbeBwDown);
            d.in_flight = bdp;
            d.ack_with(step, MSS, BW, false);
            assert_eq!(d.cc.state(), Bbr3State::ProbeBwCruise);
        }
    }

    // Draft 5.3.3.8 PickProbeWait: the wall-clock wait is uniform in [2, 3) s and the
    // round count starts at 0 or 1, from the seed alone.
    #[test]
    fn probe_waits_are_uniform_between_two_and_three_seconds() {
        let mut buckets = [0u32; 10];
        let mut starts = [0u32; 2];
        for seed in 0..500 {
            let mut cc = Bbr3::with_seed(seed);
            let mut again = Bbr3::with_seed(seed);
            cc.pick_probe_wait();
            again.pick_probe_wait();
            assert_eq!(cc.bw_probe_wait, again.bw_probe_wait);
            let ms = cc.bw_probe_wait.as_nanos() / 1_000_000;
            assert!((2000..3000).contains(&ms), "{ms}");
            buckets[((ms - 2000) / 100) as usize] += 1;
            starts[cc.rounds_since_probe_up as usize] += 1;
        }
        for b in buckets {
            assert!((25..=75).contains(&b), "{buckets:?}");
        }
        assert!(starts[0] > 200 && starts[1] > 200, "{starts:?}");
    }

    // Draft 5.3.3.8.2: with a small BDP, a Reno flow would probe every BDP-in-segments
    // rounds: BBR probes after min(63, BDP / MSS) rounds counted from DOWN's start (the
    // count starting at 0 or 1), well before its 2-3 s wall clock.
    #[test]
    fn small_bdp_flows_probe_on_the_reno_time_scale() {
        let rtt = SimDuration::from_millis(20);
        let bw = 1_250_000; // 10 Mb/s: a 25-segment BDP
        let mut d = Driver::with(Bbr3::with_seed(5), rtt, false);
        d.run_to_probe_bw(bw);
        d.in_flight = bytes_in(bw, rtt);
        let start = d.cc.rounds_since_probe_up;
        let round0 = d.cc.round_count();
        d.rounds_until(Bbr3State::ProbeBwRefill, 2, bw, 40);
        let segs = d.cc.target_inflight() / MSS;
        assert_eq!(segs, 25);
        assert_eq!(d.cc.round_count() - round0, segs - start);
        assert!(d.now.saturating_since(d.cc.cycle_stamp) < SimDuration::from_secs(1));
    }

    /// A controller just entered ProbeBW_UP at `BW`.
    fn probing_up() -> Driver {
        let mut d = cruising(6, RTT);
        d.in_flight = bdp(BW);
        d.rounds_until(Bbr3State::ProbeBwUp, 4, BW, 100);
        assert!(d.cc.is_bw_probe_sample);
        d
    }

    // Draft 5.5.10.2: a segment lost while probing, whose flight lost more than 2%, sets
    // inflight_longterm to where the loss rate crossed 2% (at least 0.7 x the target),
    // and UP ends. A loss of 2% or less changes nothing.
    #[test]
    fn a_lossy_probe_sets_inflight_longterm_and_ends_up() {
        let mut d = probing_up();
        d.lose(MSS, 600_000, 11_000); // 1.8%
        assert_eq!(d.cc.state(), Bbr3State::ProbeBwUp);
        assert_eq!(d.cc.inflight_longterm(), None);
        // 12 of 600 segments lost: 11 before this one, below the 2% budget (11.98 KB)
        // of the 599 KB before it, so the crossing is 0.48 KB / 0.98 into this segment.
        d.lose(MSS, 600_000, 12_500);
        assert_eq!(d.cc.state(), Bbr3State::ProbeBwDown);
        // DOWN starts with fresh congestion signals (draft ResetCongestionSignals).
        assert!(!d.cc.is_loss_in_round && !d.cc.loss_in_cycle);
        assert_eq!((d.cc.bw_latest, d.cc.inflight_latest), (0, 0));
        assert_eq!(d.cc.inflight_longterm(), Some(599_000 + 480_000 / 980));
        assert!(d.cc.prev_probe_too_high);
        // Once per probe.
        d.lose(MSS, 300_000, 30_000);
        assert_eq!(d.cc.inflight_longterm(), Some(599_489));

        // At least 0.7 x the target in flight (the BDP).
        let mut d = probing_up();
        d.lose(MSS, 100_000, 10_000);
        assert_eq!(d.cc.inflight_longterm(), Some(bdp(BW) * 7 / 10));
        // Not probing: a loss is noted but the long-term model stays.
        let mut d = cruising(7, RTT);
        d.lose(MSS, 100_000, 10_000);
        assert_eq!(d.cc.inflight_longterm(), None);
        assert!(d.cc.is_loss_in_round);
    }

    // Draft 5.3.3.6 and 5.3.3.9: after a probe that went too high, the next UP is
    // precautionary: it stops as soon as in flight reaches inflight_longterm; when its
    // feedback round shows no excess loss the flow refills and probes again at once, and
    // that probe raises inflight_longterm by 1, 2, 4, ... segments per round while the
    // window is held at it.
    #[test]
    fn precautionary_probing_then_inflight_longterm_grows_exponentially() {
        let mut d = probing_up();
        d.lose(MSS, 400_000, 20_000);
        let hi = d.cc.inflight_longterm().unwrap();
        assert_eq!(hi, 400_000 - MSS);
        // Back to cruising below it, then the next probe.
        d.in_flight = hi * 85 / 100;
        d.rounds_until(Bbr3State::ProbeBwCruise, 4, BW, 10);
        assert_eq!(d.w.cwnd, d.cc.inflight_with_headroom());
        assert_eq!(d.w.cwnd, hi - hi * 15 / 100);
        d.rounds_until(Bbr3State::ProbeBwUp, 4, BW, 100);
        assert_eq!(d.w.cwnd, hi, "UP's cap");
        d.in_flight = hi;
        d.ack_with(RTT / 4, MSS, BW, false);
        assert_eq!(d.cc.state(), Bbr3State::ProbeBwDown);
        assert!(d.cc.prev_probe_precautionary && !d.cc.prev_probe_too_high);
        // DOWN's first round of feedback shows no excess loss: REFILL at once.
        d.in_flight = hi * 85 / 100;
        d.rounds_until(Bbr3State::ProbeBwRefill, 4, BW, 2);
        d.rounds_until(Bbr3State::ProbeBwUp, 4, BW, 2);
        // Held at inflight_longterm: it grows by 1, 2, 4, 8 segments per round.
        d.in_flight = hi;
        let mut last = hi;
        for r in 0..4 {
            // The first round's ACKs are for segments sent before UP began.
            let per_ack = d.w.cwnd / 8;
            for _ in 0..8 {
                d.ack_with(RTT / 8, per_ack, BW, false);
                d.in_flight = d.w.cwnd;
            }
            d.next_round();
            let now = d.cc.inflight_longterm().unwrap();
            let grew = (now - last) / MSS;
            assert!(
                (1u64 << r..=(1u64 << r) + 1).contains(&grew),
                "round {r}: +{grew} segments"
            );
            assert_eq!(d.cc.state(), Bbr3State::ProbeBwUp);
            last = now;
        }
    }

    // Draft 5.5.10.3: outside probing, each round with loss cuts bw_shortterm and
    // inflight_shortterm to max(latest delivery, 0.7 x themselves), starting from max_bw
    // and cwnd; BBR.bw = min(max_bw, bw_shortterm) then paces the flow. The short-term
    // model is reset when REFILL starts a probe and when ProbeRTT ends, and no cut is
    // made while probing (REFILL, UP).
    #[test]
    fn lossy_rounds_cut_the_short_term_model_until_the_next_probe() {
        let mut d = cruising(8, SimDuration::from_millis(100));
        let bdp = bytes_in(BW, d.rtt);
        d.in_flight = bdp;
        let cwnd = d.w.cwnd;
        // A round of samples at a quarter of the rate, with a loss.
        d.round(4, bdp / 8, BW / 4);
        d.lose(MSS, bdp, MSS);
        d.round(4, bdp / 8, BW / 4);
        assert_eq!(d.cc.bw_shortterm(), Some(BW * 7 / 10));
        assert_eq!(d.cc.inflight_shortterm(), Some(cwnd * 7 / 10));
        assert_eq!(d.cc.bw(), BW * 7 / 10);
        assert_eq!(d.cc.pacing_rate(), Some(paced(BW * 7 / 10, UNIT)));
        assert_eq!(d.w.cwnd, cwnd * 7 / 10);
        // A second lossy round: 0.49.
        d.lose(MSS, bdp, MSS);
        d.round(4, bdp / 8, BW / 4);
        assert_eq!(d.cc.bw_shortterm(), Some(BW * 49 / 100));
        assert_eq!(d.cc.inflight_shortterm(), Some(cwnd * 49 / 100));
        // Not below what the last round delivered.
        d.round(4, bdp / 8, BW * 45 / 100);
        d.lose(MSS, bdp, MSS);
        d.round(4, bdp / 8, BW / 4);
        assert_eq!(d.cc.bw_shortterm(), Some(BW * 45 / 100));
        // A round without loss changes nothing.
        d.round(4, bdp / 4, BW / 4);
        assert_eq!(d.cc.bw_shortterm(), Some(BW * 45 / 100));
        // REFILL resets it, and losses while probing do not cut it.
        d.rounds_until(Bbr3State::ProbeBwRefill, 4, BW, 40);
        assert_eq!(d.cc.bw_shortterm(), None);
        assert_eq!(d.cc.inflight_shortterm(), None);
        d.lose(MSS, bdp, MSS);
        d.round(4, bdp / 4, BW / 2);
        assert_eq!(d.cc.state(), Bbr3State::ProbeBwUp);
        d.lose(MSS, 4 * bdp, MSS);
        d.round(4, bdp / 4, BW / 2);
        assert_eq!(d.cc.bw_shortterm(), None);
    }

    // Draft 5.3.4 (A.10): 5 s without an RTT sample below the 5-second minimum start
    // ProbeRTT: cwnd gain 0.5, the window at half the BDP (at least four segments), for
    // 200 ms from when in flight got there and at least a round; then CRUISE with the
    // window restored and the short-term model reset; the next ProbeRTT 5 s later.
    #[test]
    fn probe_rtt_every_five_seconds_at_half_the_bdp() {
        let mut d = cruising(9, RTT);
        let cwnd = d.w.cwnd;
        d.rtt = RTT + SimDuration::from_millis(5);
        let step = SimDuration::from_millis(10);
        let mut entered = Vec::new();
        let mut exited = Vec::new();
        let mut was = d.cc.state();
        while entered.len() < 3 {
            d.next_round();
            for _ in 0..4 {
                d.in_flight = if d.cc.state() == Bbr3State::ProbeRtt {
                    d.w.cwnd
                } else {
                    bdp(BW)
                };
                d.ack_with(step, 2 * MSS, BW, false);
                let now = d.cc.state();
                if now == Bbr3State::ProbeRtt && was != Bbr3State::ProbeRtt {
                    entered.push(d.now);
                    assert_eq!((d.cc.pacing_gain(), d.cc.cwnd_gain()), (UNIT, 500));
                    let min_rtt = d.cc.min_rtt().unwrap();
                    assert_eq!(d.w.cwnd, bytes_in(BW, min_rtt) / 2);
                    assert_eq!(d.cc.phase(), Some("probe_rtt"));
                }
                if now != Bbr3State::ProbeRtt && was == Bbr3State::ProbeRtt {
                    exited.push(d.now);
                    assert_eq!(now, Bbr3State::ProbeBwCruise);
                    assert!(d.w.cwnd >= 2 * bdp(BW), "{} (before: {cwnd})", d.w.cwnd);
                    assert_eq!(d.cc.bw_shortterm(), None);
                }
                was = now;
            }
        }
        // The first: 5 s after the last sample at the minimum (the start of the run).
        let first_sample = SimTime::ZERO + RTT;
        assert!(
            entered[0] > first_sample + PROBE_RTT_INTERVAL
                && entered[0] <= first_sample + PROBE_RTT_INTERVAL + step,
            "{entered:?}"
        );
        for (i, (&inn, &out)) in entered.iter().zip(&exited).enumerate() {
            // 200 ms from the first ACK at half the BDP, and a round (40 ms) in it.
            let len = out.saturating_since(inn);
            assert!(
                len > PROBE_RTT_DURATION && len <= PROBE_RTT_DURATION + step * 2,
                "ProbeRTT {i} lasted {len}"
            );
            if let Some(&next) = entered.get(i + 1) {
                let gap = next.saturating_since(out);
                assert!(
                    gap > PROBE_RTT_INTERVAL && gap <= PROBE_RTT_INTERVAL + step,
                    "{gap}"
                );
            }
        }
        // The 10 s min_rtt filter took the higher RTT.
        assert_eq!(d.cc.min_rtt(), Some(d.rtt));
    }

    // Draft 5.4 (A.11): restarting after idle paces at exactly bw and, when the ProbeRTT
    // interval passed while idle, skips ProbeRTT.
    #[test]
    fn an_idle_restart_paces_at_bw_and_skips_probe_rtt() {
        let mut d = cruising(10, RTT);
        d.in_flight = 0;
        d.now += SimDuration::from_secs(6);
        d.cc.on_event(&mut d.w, CcEvent::TxStart);
        assert_eq!(d.cc.pacing_rate(), Some(paced(BW, UNIT)));
        d.in_flight = 10 * MSS;
        for _ in 0..20 {
            d.round(2, 2 * MSS, BW);
            assert_ne!(d.cc.state(), Bbr3State::ProbeRtt);
        }
    }

    // Draft A.7: application-limited rounds without loss never end UP (or Startup), and
    // application-limited samples below max_bw do not enter the filter.
    #[test]
    fn app_limited_rounds_never_end_probe_up() {
        let mut d = probing_up();
        for _ in 0..50 {
            d.next_round();
            d.ack_with(RTT, 2 * MSS, BW / 3, true);
            assert_eq!(d.cc.state(), Bbr3State::ProbeBwUp);
        }
        assert_eq!(d.cc.max_bw(), BW);
        let mut d = Driver::new(Bbr3::with_seed(11));
        for _ in 0..50 {
            d.next_round();
            d.ack_with(RTT, 2 * MSS, 1_000_000, true);
        }
        assert_eq!(d.cc.state(), Bbr3State::Startup);
    }

    // Draft 5.5.5, 5.5.6: max_bw is the largest sample of the current and the previous
    // ProbeBW cycle; the filter advances one round after each probe.
    #[test]
    fn max_bw_forgets_a_sample_after_two_cycles() {
        let rtt = SimDuration::from_millis(100);
        let mut d = cruising(12, rtt);
        d.in_flight = bytes_in(BW, rtt);
        d.round(4, MSS, 2 * BW);
        assert_eq!(d.cc.max_bw(), 2 * BW);
        for cycle in 0..2 {
            assert_eq!(d.cc.max_bw(), 2 * BW, "cycle {cycle}");
            d.rounds_until(Bbr3State::ProbeBwDown, 4, BW, 100);
            d.round(4, MSS, BW);
        }
        assert_eq!(d.cc.max_bw(), BW);
    }

    // Linux BBRv3's ECN response (the draft requires CE to count as congestion): alpha is
    // an EWMA, gain 1/16 from 1, of the marked fraction per round; a marked round cuts
    // inflight_shortterm by alpha/3 outside probing; a sample more than half marked ends
    // a probe; two rounds at least half marked end Startup.
    #[test]
    fn ecn_marks_feed_alpha_and_cut_inflight() {
        let mut d = Driver::with(Bbr3::with_seed(13), RTT, true);
        d.in_flight = 10 * bdp(BW);
        d.round(1, bdp(BW), BW);
        assert_eq!(d.cc.ecn_alpha, 1000 - 1000 / 16);
        // Two rounds fully marked: Startup ends.
        d.ece = true;
        d.round(1, bdp(BW), BW * 2);
        assert_eq!(d.cc.state(), Bbr3State::Startup);
        d.round(1, bdp(BW), BW * 4);
        assert_eq!(d.cc.state(), Bbr3State::Drain);

        let mut d = Driver::with(Bbr3::with_seed(14), SimDuration::from_millis(100), true);
        d.run_to_probe_bw(BW);
        let bdp = bytes_in(BW, d.rtt);
        d.in_flight = bdp;
        // Unmarked rounds: alpha decays by 1/16 per round.
        let a = d.cc.ecn_alpha;
        d.round(4, bdp / 4, BW);
        assert_eq!(d.cc.ecn_alpha, a - a / 16);
        for _ in 0..60 {
            d.round(4, bdp / 4, BW);
        }
        // A quarter of a round marked.
        let (a, cwnd) = (d.cc.ecn_alpha, d.w.cwnd);
        assert_eq!(d.cc.state(), Bbr3State::ProbeBwCruise);
        d.next_round();
        d.ece = true;
        d.ack_with(d.rtt / 4, bdp / 4, BW, false);
        d.ece = false;
        for _ in 0..3 {
            d.ack_with(d.rtt / 4, bdp / 4, BW, false);
        }
        d.round(4, bdp / 4, BW);
        // Updated at the marked round's start (a quarter of the data since the last
        // update was marked) and at the next.
        let ewma = |a: u64, f: u64| a - a / 16 + f / 16;
        assert_eq!(d.cc.ecn_alpha, ewma(ewma(a, 250), 0));
        let alpha = d.cc.ecn_alpha;
        assert_eq!(
            d.cc.inflight_shortterm(),
            Some(scaled(cwnd, 1000 - alpha / 3))
        );
        // While probing, a sample more than half marked is "too high".
        d.in_flight = bdp;
        d.rounds_until(Bbr3State::ProbeBwUp, 4, BW, 100);
        d.flight_ce = bdp * 6 / 10;
        d.ack_with(d.rtt / 4, MSS, BW, false);
        assert_eq!(d.cc.state(), Bbr3State::ProbeBwDown);
        assert!(d.cc.prev_probe_too_high);
    }

    // The cwnd caps of the draft's table (5.6.1): CRUISE and ProbeRTT keep 15% of
    // inflight_longterm free; DOWN, REFILL and UP stop at inflight_longterm; all at
    // inflight_shortterm; never below four segments.
    #[test]
    fn cwnd_caps_follow_the_state() {
        let mut d = probing_up();
        d.lose(MSS, 300_000, 10_000);
        let hi = d.cc.inflight_longterm().unwrap();
        assert_eq!(d.cc.state(), Bbr3State::ProbeBwDown);
        // In flight at the cap (more would show it safe and raise it).
        d.in_flight = hi;
        d.round(4, MSS, BW);
        assert_eq!(d.w.cwnd, hi);
        d.in_flight = 0;
        d.ack_with(RTT / 4, MSS, BW, false);
        assert_eq!(d.cc.state(), Bbr3State::ProbeBwCruise);
        assert_eq!(d.w.cwnd, hi - hi * 15 / 100);
        d.cc.inflight_shortterm = 2 * MSS;
        d.ack_with(RTT / 4, MSS, BW, false);
        assert_eq!(d.w.cwnd, MIN_PIPE_CWND_SEGS * MSS);
    }

    #[test]
    fn windowed_max_filter_keeps_the_best_of_the_window() {
        let mut f = WindowedMax::default();
        f.update(10, 0, 100);
        f.update(10, 1, 50);
        assert_eq!(f.get(), 100);
        f.update(10, 4, 40);
        f.update(10, 11, 30);
        assert_eq!(f.get(), 40);
        f.update(10, 12, 60);
        assert_eq!(f.get(), 60);
    }
}

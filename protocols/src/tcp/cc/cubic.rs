//! CUBIC (RFC 9438) as Linux's `tcp_cubic.c` runs it, with Linux's HyStart, and HyStart++
//! (RFC 9406) as an option.
//!
//! # The algorithm
//!
//! After a loss the window follows `W_cubic(t) = C (t - K)^3 + W_max`, where `W_max` is
//! the window at the loss, `t` the time since the epoch began (the first ACK of congestion
//! avoidance after the reduction) and `K = cbrt((W_max - cwnd_epoch) / C)` the time it
//! takes to return to `W_max`: concave up to `W_max`, a plateau, then convex probing. The
//! window shrinks to `beta` times itself on a loss (`ssthresh`), and with fast convergence
//! a loss below the previous `W_max` lowers `W_max` to `cwnd (1 + beta) / 2`, so a flow
//! that is losing bandwidth gives it up sooner. In the Reno-friendly region CUBIC grows at
//! least as fast as an estimated Reno flow `W_est` would (AIMD with
//! `alpha = 3 (1 - beta) / (1 + beta)`).
//!
//! Constants are Linux's: `beta = 717/1024` (0.700), `C = 410/1024` (0.400, Linux's
//! `bic_scale * 10 / 1024`), `W_est` grows by one segment per `15/8 cwnd` acknowledged
//! (`alpha = 8/15`, Linux's `beta_scale`), fast convergence and TCP friendliness on.
//!
//! # How the window grows (Linux `bictcp_update` and `tcp_cong_avoid_ai`)
//!
//! On each ACK the target is `W_cubic(t + delay_min)` (where the window should be one
//! round trip from now), and the controller derives `cnt`, the amount acknowledged per
//! one-segment increase: `cwnd / (target - cwnd)` below the target, `100 cwnd` (almost no
//! growth) at or above it, at most 20 segments while no loss has set `W_max` (5% per RTT),
//! lowered to reach `W_est` in the Reno-friendly region, and never below 2 segments (at
//! most 1.5x per round trip). `cnt` is recomputed at most once per jiffy, and not at all
//! while cwnd is unchanged for `HZ/32`; this module models `HZ = 1000` (1 ms jiffies, 31 ms).
//! Slow start is Linux's: cwnd grows by what is acknowledged, up to ssthresh, and the
//! rest feeds congestion avoidance. No growth when the window did not limit the sender
//! (`cwnd_limited` false).
//!
//! # Bytes instead of packets
//!
//! The connection's window is in bytes; Linux counts packets. Every Linux formula is kept
//! with both sides scaled by the MSS: `W_max`, `cwnd`, the target and `W_est` are bytes,
//! `cnt` is bytes acknowledged per one-MSS increase (Linux's `cnt × mss`), and the
//! increase counter counts bytes. With whole segments this gives Linux's numbers; with a
//! fractional window (after `cwnd × 0.7`, or byte-counted slow start) nothing is rounded
//! to whole segments, so there is no drift: the target keeps sub-segment precision where
//! Linux truncates to whole packets. `K` is `cbrt(2^40 / 410 × (W_max - cwnd) / mss)` in
//! units of 1/1024 s, as Linux's, so it also keeps the fraction.
//!
//! Everything is integer arithmetic on simulated nanoseconds (no floating point): `t` is
//! exact to the nanosecond before being converted to Linux's 1/1024 s units, and the cube
//! root is an exact integer one (floor), where Linux uses a table plus one Newton step
//! (about 0.2% error).
//!
//! # HyStart (Linux's default)
//!
//! In slow start with cwnd of at least 16 segments, each ACK with an RTT sample runs two
//! detectors, and either ends slow start by setting ssthresh to cwnd:
//! - ACK train: ACKs spaced at most 2 ms apart that keep arriving for longer than
//!   `delay_min / 2` since the round began;
//! - delay: after 8 samples in a round, the round's minimum RTT exceeds `delay_min` by
//!   `clamp(delay_min / 8, 4 ms, 16 ms)`.
//!
//! Rounds: Linux ends a round when `snd_una` passes the `snd_nxt` recorded at its start.
//! A controller sees no sequence numbers, so a round here ends when the connection's
//! delivered count passes `delivered + in_flight` as recorded at the round's start (the
//! bytes that will have been delivered once everything then outstanding is). Both start
//! the next round on the first ACK of data sent after the round began.
//!
//! The RTT is `AckSample::rtt` (Karn-filtered, from the oldest newly acknowledged
//! segment); Linux's `pkts_acked` uses the newest one. Delay samples are ignored for a
//! second after an epoch starts (after a reduction), as in Linux. `delay_min` is the
//! controller's own, forgotten on an RTO, in nanoseconds (Linux: microseconds).
//!
//! # HyStart++ (RFC 9406), optional
//!
//! With [`HystartMode::PlusPlus`] the initial slow start (until the first loss) uses
//! HyStart++ instead: per round, the minimum of the first RTT samples is compared with the
//! previous round's, and a rise by `clamp(last / 8, 4 ms, 16 ms)` after 8 samples enters
//! Conservative Slow Start, which grows a quarter as fast. A round whose minimum falls
//! back below the baseline resumes slow start; 5 rounds of CSS end slow start (ssthresh =
//! cwnd). Each ACK counts at most 8 segments (`L = 8`, unpaced). The round in which CSS
//! begins counts as its first round. Later slow starts (after an RTO) are standard.
//!
//! # Where this differs from RFC 9438 (Linux is followed)
//!
//! - `C = 0.40039`, `beta = 0.7002`, `alpha = 8/15` (RFC: 0.4, 0.7, 0.529), and `alpha`
//!   stays 8/15 when `W_est` passes `W_max` (RFC: it becomes 1).
//! - The Reno-friendly region caps `cnt` so cwnd moves toward `W_est` (RFC: cwnd =
//!   `W_est`); above the cubic target cwnd still grows by one segment per `100 cwnd`
//!   acknowledged (RFC: not at all); growth is at most 1.5x per RTT (RFC: the target is
//!   clamped to `1.5 cwnd`).
//! - The RTT in `W_cubic(t + RTT)` is the minimum RTT (`delay_min`).
//! - ssthresh is `cwnd × beta` (RFC: flight size), at least 2 segments.
//! - After an RTO Linux forgets all CUBIC state (`W_max`, `delay_min`, the epoch), so the
//!   next epoch starts with `K = 0` at the current window (as the RFC's timeout rule) and
//!   with the 5%-per-RTT floor of a flow that never saw a loss.
//! - When transmission starts again after an idle period, the epoch start moves forward by
//!   the idle time (`CA_EVENT_TX_START`), so the window resumes where the curve left it.
//!   The controller is not told the time of that event, so the idle time is measured at
//!   the first ACK after it: the restart's send time is that ACK's time minus its RTT
//!   sample, the last send before the idle the previous ACK's time minus the RTT of the
//!   newest segment it covered (the delivery-rate sample's RTT), falling back to the RTT
//!   sample and then SRTT when those are missing.
//!
//! The connection's own behaviour around the controller (PRR in fast recovery, one
//! segment after an RTO, cwnd-limited tracking, window restart after idle) is the
//! connection's, as for every window-based controller.

use super::{AckSample, CcEvent, CongestionControl, Window};
use sim_core::time::SimTime;

/// `beta` scaled by 1024 (Linux `beta = 717`).
const BETA: u64 = 717;
const BETA_SCALE: u64 = 1024;
/// `C` as Linux's `cube_rtt_scale = bic_scale * 10`: `C = 410 / 1024`.
const CUBE_RTT_SCALE: u64 = 41 * 10;
/// Linux `BICTCP_HZ`: CUBIC's clock counts 1/1024 s.
const BICTCP_HZ: u32 = 10;
/// Linux `cube_factor`: `2^(3 BICTCP_HZ) / C`, so that `K = cbrt(cube_factor × ΔW)` in
/// 1/1024 s for `ΔW` in segments.
const CUBE_FACTOR: u64 = (1 << (10 + 3 * BICTCP_HZ)) / CUBE_RTT_SCALE;
/// Linux `beta_scale`: `W_est` grows one segment per `beta_scale / 8` windows acknowledged
/// (15, so `alpha = 8/15`).
const FRIENDLY_SCALE: u64 = 8 * (BETA_SCALE + BETA) / 3 / (BETA_SCALE - BETA);

const NS_PER_SEC: u64 = 1_000_000_000;
/// The modelled kernel tick (`HZ = 1000`).
const JIFFY_NS: u64 = 1_000_000;
const HZ: u64 = NS_PER_SEC / JIFFY_NS;

const HYSTART_LOW_WINDOW: u64 = 16;
const HYSTART_ACK_DELTA_NS: u64 = 2_000_000;
const HYSTART_MIN_SAMPLES: u32 = 8;
const HYSTART_DELAY_MIN_NS: u64 = 4_000_000;
const HYSTART_DELAY_MAX_NS: u64 = 16_000_000;

/// RFC 9406 constants.
const HSPP_MIN_RTT_DIVISOR: u64 = 8;
const HSPP_N_RTT_SAMPLE: u32 = 8;
const HSPP_CSS_GROWTH_DIVISOR: u64 = 4;
const HSPP_CSS_ROUNDS: u32 = 5;
const HSPP_L: u64 = 8;

/// How CUBIC leaves slow start before a loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HystartMode {
    /// Linux's HyStart: ACK-train and delay detection (the default).
    #[default]
    Linux,
    /// HyStart++ (RFC 9406) in the initial slow start.
    PlusPlus,
    /// Plain slow start until a loss.
    Off,
}

/// CUBIC congestion control. `Cubic::default()` is Linux's configuration.
#[derive(Clone, Debug)]
pub struct Cubic {
    /// Slow-start exit heuristic.
    pub hystart: HystartMode,
    /// Linux `fast_convergence`.
    pub fast_convergence: bool,
    /// Linux `tcp_friendliness`: the Reno-friendly region.
    pub tcp_friendliness: bool,

    // Linux `struct bictcp` (all cleared by `reset`), in bytes and nanoseconds.
    /// Bytes acknowledged per one-MSS increase.
    cnt: u64,
    last_max_cwnd: u64,
    last_cwnd: u64,
    /// Jiffy of the last `cnt` computation.
    last_jiffy: u64,
    origin_point: u64,
    /// Time from the epoch's start to the origin point, in 1/1024 s.
    k: u64,
    /// Minimum RTT in ns, 0 while unknown.
    delay_min: u64,
    epoch_start: Option<SimTime>,
    /// Bytes acknowledged since `W_est` last grew.
    ack_cnt: u64,
    /// `W_est`, the window a Reno flow would have.
    tcp_cwnd: u64,

    // HyStart (Linux).
    found: bool,
    sample_cnt: u32,
    round_start: SimTime,
    /// The round ends when the delivered count passes this.
    round_end: u64,
    last_ack: SimTime,
    /// Minimum RTT of the current round (ns).
    curr_rtt: u64,

    // HyStart++.
    /// Still in the initial slow start, where HyStart++ applies.
    pp_active: bool,
    pp_last_round_min: u64,
    pp_css_baseline: Option<u64>,
    pp_css_rounds: u32,

    /// Bytes acknowledged toward the next increase (Linux `snd_cwnd_cnt`).
    cwnd_cnt: u64,
    /// Estimated time of the last transmission (for the idle shift).
    last_send: Option<SimTime>,
    tx_start_pending: bool,
    last_now: SimTime,
}

impl Default for Cubic {
    fn default() -> Self {
        Cubic::with_hystart(HystartMode::Linux)
    }
}

impl Cubic {
    pub fn new() -> Self {
        Self::default()
    }

    /// Linux's CUBIC with another slow-start exit.
    pub fn with_hystart(hystart: HystartMode) -> Self {
        Cubic {
            hystart,
            fast_convergence: true,
            tcp_friendliness: true,
            cnt: 0,
            last_max_cwnd: 0,
            last_cwnd: 0,
            last_jiffy: 0,
            origin_point: 0,
            k: 0,
            delay_min: 0,
            epoch_start: None,
            ack_cnt: 0,
            tcp_cwnd: 0,
            found: false,
            sample_cnt: 0,
            round_start: SimTime::ZERO,
            round_end: 0,
            last_ack: SimTime::ZERO,
            curr_rtt: u64::MAX,
            pp_active: true,
            pp_last_round_min: u64::MAX,
            pp_css_baseline: None,
            pp_css_rounds: 0,
            cwnd_cnt: 0,
            last_send: None,
            tx_start_pending: false,
            last_now: SimTime::ZERO,
        }
    }

    /// Linux `bictcp_reset`: forget the window history and the minimum RTT.
    fn reset(&mut self) {
        self.cnt = 0;
        self.last_max_cwnd = 0;
        self.last_cwnd = 0;
        self.last_jiffy = 0;
        self.origin_point = 0;
        self.k = 0;
        self.delay_min = 0;
        self.epoch_start = None;
        self.ack_cnt = 0;
        self.tcp_cwnd = 0;
        self.found = false;
    }

    /// Linux `bictcp_hystart_reset`: a new round starts now and ends once `end` bytes
    /// have been delivered.
    fn hystart_reset(&mut self, now: SimTime, end: u64) {
        self.round_start = now;
        self.last_ack = now;
        self.round_end = end;
        self.curr_rtt = u64::MAX;
        self.sample_cnt = 0;
    }

    /// Linux `cubictcp_cwnd_event(CA_EVENT_TX_START)`, applied at the first ACK after the
    /// restart: move the epoch forward by the time nothing was sent.
    fn shift_epoch_after_idle(&mut self, ack: &AckSample) {
        let (Some(epoch), Some(last_send)) = (self.epoch_start, self.last_send) else {
            return;
        };
        let Some(rtt) = ack.rtt.or(ack.srtt) else {
            return;
        };
        let restart = SimTime::from_nanos(ack.now.as_nanos().saturating_sub(rtt.as_nanos()));
        let idle = restart.as_nanos().saturating_sub(last_send.as_nanos());
        if idle > 0 {
            let shifted = SimTime::from_nanos(epoch.as_nanos() + idle);
            self.epoch_start = Some(shifted.min(restart));
        }
    }

    /// Linux `cubictcp_acked`: the minimum RTT and slow-start exit.
    fn pkts_acked(&mut self, w: &mut Window, ack: &AckSample) {
        if self.hystart == HystartMode::PlusPlus && self.pp_active {
            self.hystart_pp(w, ack);
        }
        let Some(rtt) = ack.rtt else {
            return;
        };
        // Delay samples right after a reduction are discarded.
        if let Some(e) = self.epoch_start {
            if ack.now.saturating_since(e).as_nanos() < NS_PER_SEC {
                return;
            }
        }
        let delay = rtt.as_nanos().max(1);
        if self.delay_min == 0 || self.delay_min > delay {
            self.delay_min = delay;
        }
        if self.hystart == HystartMode::Linux
            && !self.found
            && w.in_slow_start()
            && w.cwnd >= HYSTART_LOW_WINDOW * w.mss.max(1) as u64
        {
            self.hystart_update(w, ack, delay);
        }
    }

    /// Linux `hystart_update`.
    fn hystart_update(&mut self, w: &mut Window, ack: &AckSample, delay: u64) {
        let now = ack.now;
        if ack.delivered > self.round_end {
            self.hystart_reset(now, ack.delivered + ack.in_flight);
        }
        // ACK train: closely spaced ACKs that keep coming for half the minimum RTT. Linux
        // adds a cushion for TSO/GRO batching (none here: no TSO) and halves the threshold
        // unless the stack paces the socket; a controller cannot tell, so it always does.
        if now.saturating_since(self.last_ack).as_nanos() <= HYSTART_ACK_DELTA_NS {
            self.last_ack = now;
            let threshold = self.delay_min / 2;
            if now.saturating_since(self.round_start).as_nanos() > threshold {
                self.found = true;
                w.ssthresh = w.cwnd;
            }
        }
        // Delay increase: the round's minimum RTT over the first samples.
        self.curr_rtt = self.curr_rtt.min(delay);
        if self.sample_cnt < HYSTART_MIN_SAMPLES {
            self.sample_cnt += 1;
        } else {
            let thresh = (self.delay_min >> 3).clamp(HYSTART_DELAY_MIN_NS, HYSTART_DELAY_MAX_NS);
            if self.curr_rtt > self.delay_min + thresh {
                self.found = true;
                w.ssthresh = w.cwnd;
            }
        }
    }

    /// RFC 9406 per-ACK processing: rounds, RTT samples, entering and leaving CSS.
    fn hystart_pp(&mut self, w: &mut Window, ack: &AckSample) {
        if !w.in_slow_start() {
            return;
        }
        if ack.delivered > self.round_end {
            // A round ended.
            if self.pp_css_baseline.is_some() {
                self.pp_css_rounds += 1;
                if self.pp_css_rounds >= HSPP_CSS_ROUNDS {
                    w.ssthresh = w.cwnd;
                    self.pp_active = false;
                    self.pp_css_baseline = None;
                    return;
                }
            }
            self.pp_last_round_min = self.curr_rtt;
            self.hystart_reset(ack.now, ack.delivered + ack.in_flight);
        }
        let Some(rtt) = ack.rtt else {
            return;
        };
        self.curr_rtt = self.curr_rtt.min(rtt.as_nanos().max(1));
        self.sample_cnt = self.sample_cnt.saturating_add(1);
        if self.sample_cnt < HSPP_N_RTT_SAMPLE || self.curr_rtt == u64::MAX {
            return;
        }
        match self.pp_css_baseline {
            None => {
                if self.pp_last_round_min == u64::MAX {
                    return;
                }
                let thresh = (self.pp_last_round_min / HSPP_MIN_RTT_DIVISOR)
                    .clamp(HYSTART_DELAY_MIN_NS, HYSTART_DELAY_MAX_NS);
                if self.curr_rtt >= self.pp_last_round_min + thresh {
                    self.pp_css_baseline = Some(self.curr_rtt);
                    self.pp_css_rounds = 0;
                }
            }
            Some(base) => {
                if self.curr_rtt < base {
                    // The delay rise was spurious: back to slow start.
                    self.pp_css_baseline = None;
                }
            }
        }
    }

    /// Slow start (Linux `tcp_slow_start`, or HyStart++'s limited and conservative
    /// growth); returns what is left for congestion avoidance.
    fn slow_start(&mut self, w: &mut Window, acked: u64) -> u64 {
        let mss = w.mss.max(1) as u64;
        if self.hystart == HystartMode::PlusPlus && self.pp_active {
            let n = acked.min(HSPP_L * mss);
            let grow = if self.pp_css_baseline.is_some() {
                n / HSPP_CSS_GROWTH_DIVISOR
            } else {
                n
            };
            w.cwnd = (w.cwnd + grow).min(w.ssthresh);
            return 0;
        }
        let cwnd = (w.cwnd + acked).min(w.ssthresh);
        let used = cwnd - w.cwnd;
        w.cwnd = cwnd;
        acked - used
    }

    /// Linux `bictcp_update`: recompute `cnt` for the current window and time.
    fn update(&mut self, cwnd: u64, mss: u64, acked: u64, now: SimTime) {
        self.ack_cnt += acked;
        let jiffy = now.as_nanos() / JIFFY_NS;
        if self.last_cwnd == cwnd && jiffy.saturating_sub(self.last_jiffy) <= HZ / 32 {
            return;
        }
        // The cubic part is computed at most once per jiffy.
        if !(self.epoch_start.is_some() && jiffy == self.last_jiffy) {
            self.last_cwnd = cwnd;
            self.last_jiffy = jiffy;
            self.cubic_cnt(cwnd, mss, acked, now);
        }
        if self.tcp_friendliness {
            // W_est grows one segment per 15/8 windows acknowledged.
            let per_seg = (cwnd.saturating_mul(FRIENDLY_SCALE) / 8).max(1);
            if self.ack_cnt > per_seg {
                let n = (self.ack_cnt - 1) / per_seg;
                self.ack_cnt -= n * per_seg;
                self.tcp_cwnd += n * mss;
            }
            if self.tcp_cwnd > cwnd {
                let max_cnt = mul_div(cwnd, mss, self.tcp_cwnd - cwnd);
                self.cnt = self.cnt.min(max_cnt);
            }
        }
        // At most one segment per two acknowledged: 1.5x per round trip.
        self.cnt = self.cnt.max(2 * mss);
    }

    /// The cubic function's `cnt` (the first half of Linux `bictcp_update`).
    fn cubic_cnt(&mut self, cwnd: u64, mss: u64, acked: u64, now: SimTime) {
        let epoch = match self.epoch_start {
            Some(e) => e,
            None => {
                self.epoch_start = Some(now);
                self.ack_cnt = acked;
                self.tcp_cwnd = cwnd;
                if self.last_max_cwnd <= cwnd {
                    self.k = 0;
                    self.origin_point = cwnd;
                } else {
                    let segs_scaled =
                        CUBE_FACTOR as u128 * (self.last_max_cwnd - cwnd) as u128 / mss as u128;
                    self.k = cube_root(segs_scaled);
                    self.origin_point = self.last_max_cwnd;
                }
                now
            }
        };
        // Time since the epoch began plus the minimum RTT, in 1/1024 s.
        let t_ns = now.saturating_since(epoch).as_nanos() as u128 + self.delay_min as u128;
        let t = ((t_ns << BICTCP_HZ) / NS_PER_SEC as u128) as u64;
        // (Clamped at 2^40 / 1024 s, 34 years, so that the cube cannot overflow.)
        let offs = t.abs_diff(self.k).min(1 << 40) as u128;
        // C (t - K)^3, in bytes.
        let delta = (CUBE_RTT_SCALE as u128)
            .saturating_mul(offs * offs * offs)
            .saturating_mul(mss as u128)
            >> (10 + 3 * BICTCP_HZ);
        let delta = delta.min(u64::MAX as u128 / 4) as u64;
        let target = if t < self.k {
            self.origin_point.saturating_sub(delta)
        } else {
            self.origin_point.saturating_add(delta)
        };
        self.cnt = if target > cwnd {
            mul_div(cwnd, mss, target - cwnd)
        } else {
            cwnd.saturating_mul(100)
        };
        // Without a loss yet, grow at least 5% per round trip.
        if self.last_max_cwnd == 0 {
            self.cnt = self.cnt.min(20 * mss);
        }
    }

    /// Linux `tcp_cong_avoid_ai`: one MSS per `cnt` bytes acknowledged.
    fn cong_avoid_ai(&mut self, w: &mut Window, acked: u64) {
        let mss = w.mss.max(1) as u64;
        let cnt = self.cnt.max(1);
        if self.cwnd_cnt >= cnt {
            self.cwnd_cnt = 0;
            w.cwnd += mss;
        }
        self.cwnd_cnt += acked;
        if self.cwnd_cnt >= cnt {
            let n = self.cwnd_cnt / cnt;
            self.cwnd_cnt -= n * cnt;
            w.cwnd += n * mss;
        }
    }
}

/// `a × b / c` without overflow, saturating.
fn mul_div(a: u64, b: u64, c: u64) -> u64 {
    (a as u128 * b as u128 / c.max(1) as u128).min(u64::MAX as u128) as u64
}

/// The integer cube root, rounded down (Newton's method from above).
fn cube_root(a: u128) -> u64 {
    if a == 0 {
        return 0;
    }
    let bits = 128 - a.leading_zeros();
    let mut x: u128 = 1 << bits.div_ceil(3);
    loop {
        let y = (2 * x + a / (x * x)) / 3;
        if y >= x {
            return x as u64;
        }
        x = y;
    }
}

impl CongestionControl for Cubic {
    fn name(&self) -> &'static str {
        "cubic"
    }

    fn init(&mut self, _w: &mut Window, conn: &super::ConnStart) {
        let now = conn.now;
        self.reset();
        self.hystart_reset(now, 0);
        self.last_now = now;
    }

    fn on_ack(&mut self, w: &mut Window, ack: &AckSample) {
        self.last_now = ack.now;
        if self.tx_start_pending {
            self.tx_start_pending = false;
            self.shift_epoch_after_idle(ack);
        }
        self.pkts_acked(w, ack);
        // The newest segment this ACK covered was sent at about now - its RTT.
        if let Some(rtt) = ack.rate.map(|r| r.rtt).or(ack.rtt).or(ack.srtt) {
            self.last_send = Some(SimTime::from_nanos(
                ack.now.as_nanos().saturating_sub(rtt.as_nanos()),
            ));
        }
        if !ack.cwnd_limited {
            return;
        }
        let mut acked = ack.acked;
        if w.in_slow_start() {
            acked = self.slow_start(w, acked);
            if acked == 0 {
                return;
            }
        }
        let mss = w.mss.max(1) as u64;
        self.update(w.cwnd, mss, acked, ack.now);
        self.cong_avoid_ai(w, acked);
    }

    /// Linux `cubictcp_recalc_ssthresh`: end the epoch, remember `W_max` (lowered by fast
    /// convergence) and keep `beta` of the window.
    fn ssthresh(&mut self, w: &Window, _in_flight: u64) -> u64 {
        self.epoch_start = None;
        self.pp_active = false;
        self.pp_css_baseline = None;
        if w.cwnd < self.last_max_cwnd && self.fast_convergence {
            self.last_max_cwnd = mul_div(w.cwnd, BETA_SCALE + BETA, 2 * BETA_SCALE);
        } else {
            self.last_max_cwnd = w.cwnd;
        }
        mul_div(w.cwnd, BETA, BETA_SCALE).max(2 * w.mss as u64)
    }

    fn on_event(&mut self, _w: &mut Window, ev: CcEvent) {
        match ev {
            // Linux tcp_init_cwnd_reduction clears snd_cwnd_cnt for either reduction.
            CcEvent::EnterRecovery | CcEvent::EnterCwr => self.cwnd_cnt = 0,
            // Linux `cubictcp_state(TCP_CA_Loss)`: forget everything. The next HyStart round
            // starts at the first ACK that runs HyStart.
            CcEvent::Timeout => {
                self.reset();
                self.hystart_reset(self.last_now, 0);
                self.cwnd_cnt = 0;
                self.pp_active = false;
                self.tx_start_pending = false;
            }
            CcEvent::TxStart => self.tx_start_pending = self.epoch_start.is_some(),
            CcEvent::ExitRecovery | CcEvent::ExitCwr | CcEvent::IdleRestart => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::tcp::cc::{CaState, RateSample};
    use sim_core::time::SimDuration;

    const MSS: u64 = 1000;

    /// A controller with a fluid model of its path: every round trip, the window is
    /// acknowledged two segments at a time (delayed ACKs), evenly spread.
    struct Path {
        cc: Cubic,
        w: Window,
        now: SimTime,
        delivered: u64,
        cwnd_limited: bool,
    }

    impl Path {
        fn new(cc: Cubic, cwnd_segs: u64, ssthresh: u64) -> Path {
            let mut w = Window {
                cwnd: cwnd_segs * MSS,
                ssthresh,
                mss: MSS as u32,
            };
            let mut cc = cc;
            let now = SimTime::from_secs(1);
            cc.init(
                &mut w,
                &crate::tcp::cc::ConnStart {
                    now,
                    seed: 0,
                    srtt: None,
                    ecn: false,
                },
            );
            Path {
                cc,
                w,
                now,
                delivered: 0,
                cwnd_limited: true,
            }
        }

        fn ack(&mut self, acked: u64, rtt: SimDuration) {
            self.delivered += acked;
            let sample = AckSample {
                now: self.now,
                acked,
                lost: 0,
                lost_total: 0,
                rtt: Some(rtt),
                min_rtt: None,
                srtt: Some(rtt),
                prior_in_flight: self.w.cwnd,
                in_flight: self.w.cwnd.saturating_sub(acked),
                delivered: self.delivered,
                cwnd_limited: self.cwnd_limited,
                ca_state: CaState::Open,
                rate: Some(RateSample {
                    delivered: self.w.cwnd,
                    interval: rtt,
                    prior_delivered: self.delivered.saturating_sub(self.w.cwnd),
                    rtt,
                    is_app_limited: false,
                }),
                ece: false,
                delivered_ce: 0,
                flight: None,
            };
            self.cc.on_ack(&mut self.w, &sample);
        }

        /// One round trip of ACKs for the whole window, `rtt` apart from first to last.
        fn round(&mut self, rtt: SimDuration) {
            let cwnd = self.w.cwnd;
            let n = cwnd.div_ceil(2 * MSS);
            let gap = rtt.as_nanos() / n;
            for i in 0..n {
                self.now += SimDuration::from_nanos(gap);
                self.ack((cwnd - i * 2 * MSS).min(2 * MSS), rtt);
            }
        }

        /// A loss at the current window, then fast recovery ending at ssthresh (what the
        /// connection does).
        fn loss(&mut self) {
            let ss = self.cc.ssthresh(&self.w, self.w.cwnd);
            self.w.ssthresh = ss;
            self.cc.on_event(&mut self.w, CcEvent::EnterRecovery);
            self.w.cwnd = ss;
            self.cc.on_event(&mut self.w, CcEvent::ExitRecovery);
        }

        fn segs(&self) -> f64 {
            self.w.cwnd as f64 / MSS as f64
        }
    }

    const RTT_100MS: SimDuration = SimDuration::from_millis(100);

    /// `W_cubic(t)` in segments with RFC 9438's constants.
    fn w_cubic(w_max: f64, cwnd_epoch: f64, t: f64) -> f64 {
        let k = ((w_max - cwnd_epoch) / 0.4).cbrt();
        0.4 * (t - k).powi(3) + w_max
    }

    #[test]
    fn cube_root_is_exact() {
        for a in (0u128..5000).chain([u64::MAX as u128, 1 << 90, (1 << 90) - 1]) {
            let r = cube_root(a) as u128;
            assert!(
                r * r * r <= a && (r + 1) * (r + 1) * (r + 1) > a,
                "{a}: {r}"
            );
        }
        for r in [1u128, 2, 1000, 4316, 1 << 20, (1 << 42) - 1] {
            assert_eq!(cube_root(r * r * r) as u128, r);
            assert_eq!(cube_root(r * r * r - 1) as u128, r - 1);
        }
        assert_eq!(CUBE_FACTOR, 2_681_735_677);
        assert_eq!(FRIENDLY_SCALE, 15);
    }

    // K = cbrt(W_max (1 - beta) / C): 4.217 s for W_max = 100 segments.
    #[test]
    fn k_matches_the_formula() {
        let mut p = Path::new(Cubic::default(), 100, u64::MAX);
        p.w.ssthresh = p.w.cwnd;
        p.loss();
        assert_eq!(p.w.cwnd, 70_019); // 100 segments x 717/1024
        assert_eq!(p.cc.last_max_cwnd, 100 * MSS);
        p.ack(2 * MSS, RTT_100MS);
        let k = p.cc.k as f64 / 1024.0;
        let expected = (100.0f64 * 0.3 / 0.4).cbrt();
        assert!(
            (k - expected).abs() < 0.005,
            "K = {k} s, expected {expected}"
        );
        assert_eq!(p.cc.origin_point, 100 * MSS);
        // 1000 segments: K = 9.09 s.
        let mut p = Path::new(Cubic::default(), 1000, u64::MAX);
        p.w.ssthresh = p.w.cwnd;
        p.loss();
        p.ack(2 * MSS, RTT_100MS);
        let k = p.cc.k as f64 / 1024.0;
        assert!((k - 9.0856).abs() < 0.01, "K = {k} s");
    }

    // The window follows W_cubic(t): concave up to W_max, flat around K, convex after.
    #[test]
    fn window_follows_the_cubic_function() {
        let mut p = Path::new(Cubic::default(), 1000, u64::MAX);
        p.w.ssthresh = p.w.cwnd;
        // A delay sample first, as a real connection has.
        p.cc.delay_min = RTT_100MS.as_nanos();
        p.loss();
        let epoch_cwnd = p.segs();
        let t0 = p.now;
        let mut checked = 0;
        let checkpoints = [1.0, 3.0, 6.0, 9.0, 10.0, 12.0, 14.0];
        let mut prev = p.segs();
        let mut increments = Vec::new();
        while checked < checkpoints.len() {
            p.round(RTT_100MS);
            let t = p.now.saturating_since(t0).as_secs_f64();
            increments.push((t, p.segs() - prev));
            prev = p.segs();
            if t >= checkpoints[checked] {
                let expected = w_cubic(1000.0, epoch_cwnd, t);
                let got = p.segs();
                assert!(
                    (got - expected).abs() <= 1.0,
                    "t = {t:.2} s: cwnd {got} segments, W_cubic {expected:.2}"
                );
                checked += 1;
            }
        }
        // Concave then convex: fast at first, slowest around K, faster again.
        let rate = |from: f64, to: f64| -> f64 {
            increments
                .iter()
                .filter(|(t, _)| *t > from && *t <= to)
                .map(|(_, d)| d)
                .sum::<f64>()
                / (to - from)
        };
        assert!(rate(0.0, 2.0) > 10.0 * rate(8.0, 10.0).max(0.1));
        assert!(rate(12.0, 14.0) > 5.0 * rate(8.0, 10.0).max(0.1));
    }

    // ssthresh = 0.7 cwnd, at least two segments.
    #[test]
    fn a_loss_keeps_beta_of_the_window() {
        let mut cc = Cubic::default();
        let w = Window {
            cwnd: 100 * MSS,
            ssthresh: 50 * MSS,
            mss: MSS as u32,
        };
        assert_eq!(cc.ssthresh(&w, 0), 70_019);
        let w = Window { cwnd: 2 * MSS, ..w };
        assert_eq!(cc.ssthresh(&w, 0), 2 * MSS);
    }

    // A loss below the previous W_max lowers W_max to cwnd (1 + beta) / 2.
    #[test]
    fn fast_convergence_lowers_w_max() {
        for (fast, expected) in [(true, 76_508), (false, 90_000)] {
            let mut cc = Cubic {
                fast_convergence: fast,
                ..Cubic::default()
            };
            let mut w = Window {
                cwnd: 100 * MSS,
                ssthresh: 50 * MSS,
                mss: MSS as u32,
            };
            cc.ssthresh(&w, 0);
            assert_eq!(cc.last_max_cwnd, 100_000);
            w.cwnd = 90 * MSS;
            assert_eq!(cc.ssthresh(&w, 0), 63_017);
            assert_eq!(cc.last_max_cwnd, expected); // 90 000 x 1741 / 2048
                                                    // A loss above W_max sets it to the window.
            w.cwnd = 120 * MSS;
            cc.ssthresh(&w, 0);
            assert_eq!(cc.last_max_cwnd, 120_000);
        }
    }

    // At a 1 ms RTT the cubic curve barely moves in 0.3 s, but a Reno flow would have grown
    // by 8/15 segment per round trip: CUBIC follows W_est.
    #[test]
    fn reno_friendly_region_at_short_rtt() {
        let rtt = SimDuration::from_millis(1);
        let run = |friendly: bool| {
            let mut p = Path::new(
                Cubic {
                    tcp_friendliness: friendly,
                    ..Cubic::default()
                },
                20,
                u64::MAX,
            );
            p.w.ssthresh = p.w.cwnd;
            p.cc.delay_min = rtt.as_nanos();
            p.loss();
            let start = p.segs();
            for _ in 0..300 {
                p.round(rtt);
            }
            (start, p.segs(), p.cc.tcp_cwnd as f64 / MSS as f64)
        };
        let (start, friendly, w_est) = run(true);
        // W_est after 300 round trips: 14 + 300 x 8/15 = 174 segments.
        let expected = start + 300.0 * 8.0 / 15.0;
        assert!(
            (w_est - expected).abs() < 3.0,
            "W_est {w_est}, expected {expected}"
        );
        assert!(
            friendly <= w_est + 1.0 && friendly >= w_est - 5.0,
            "cwnd {friendly} segments, W_est {w_est}"
        );
        let (_, cubic_only, _) = run(false);
        let cubic = w_cubic(20.0, start, 0.3);
        assert!(
            (cubic_only - cubic).abs() < 1.5,
            "cwnd {cubic_only}, W_cubic {cubic}"
        );
    }

    // HyStart: a round whose minimum RTT exceeds delay_min by more than
    // clamp(delay_min / 8, 4 ms, 16 ms) = 12.5 ms ends slow start after 8 samples.
    #[test]
    fn hystart_delay_increase_ends_slow_start() {
        let run = |extra_ms: u64| {
            let mut p = Path::new(Cubic::default(), 16, u64::MAX);
            p.round(RTT_100MS);
            p.round(RTT_100MS);
            assert!(p.w.in_slow_start());
            assert_eq!(p.segs(), 64.0);
            p.round(RTT_100MS + SimDuration::from_millis(extra_ms));
            p
        };
        let p = run(10);
        assert!(
            !p.cc.found && p.w.in_slow_start(),
            "10 ms is below the threshold"
        );
        assert_eq!(p.segs(), 128.0);
        let p = run(13);
        assert!(p.cc.found);
        assert!(!p.w.in_slow_start());
        // The 9th ACK of the new round (after 8 samples) found it, at 64 + 8 x 2 segments,
        // and the window has grown only by avoidance since.
        assert_eq!(p.w.ssthresh, 80 * MSS);
        assert!(p.segs() < 84.0, "{}", p.segs());
        assert_eq!(p.cc.delay_min, RTT_100MS.as_nanos());
    }

    // HyStart: an ACK train (ACKs at most 2 ms apart) longer than delay_min / 2.
    #[test]
    fn hystart_ack_train_ends_slow_start() {
        let rtt = SimDuration::from_millis(20);
        let mut p = Path::new(Cubic::default(), 16, u64::MAX);
        // 8 ACKs 2.5 ms apart: no train. 16 ACKs 1.25 ms apart: 10 ms after the round
        // began (at the first of them) the train is longer than 20 ms / 2.
        p.round(rtt);
        assert!(!p.cc.found);
        p.round(rtt);
        assert!(p.cc.found);
        assert!(!p.w.in_slow_start());
        // The round began at its first ACK; the 10th, 11.25 ms later, finds the train, with
        // the window grown by the 9 ACKs before it.
        assert_eq!(p.w.ssthresh, (32 + 2 * 9) * MSS);
        // Without HyStart slow start goes on.
        let mut p = Path::new(Cubic::with_hystart(HystartMode::Off), 16, u64::MAX);
        p.round(rtt);
        p.round(rtt);
        assert!(p.w.in_slow_start() && p.segs() == 64.0);
    }

    // No growth while the window does not limit the sender, in slow start or avoidance.
    #[test]
    fn no_growth_unless_cwnd_limited() {
        let mut p = Path::new(Cubic::default(), 10, u64::MAX);
        p.cwnd_limited = false;
        for _ in 0..20 {
            p.round(RTT_100MS);
        }
        assert_eq!(p.segs(), 10.0);
        p.w.cwnd = 200 * MSS;
        p.w.ssthresh = p.w.cwnd;
        p.loss();
        let c = p.w.cwnd;
        for _ in 0..50 {
            p.round(RTT_100MS);
        }
        assert_eq!(p.w.cwnd, c);
        p.cwnd_limited = true;
        p.round(RTT_100MS);
        assert!(p.w.cwnd > c);
    }

    // An RTO forgets W_max: the next epoch starts at the window with K = 0 and grows at
    // least 5% per round trip.
    #[test]
    fn timeout_forgets_the_history() {
        let mut p = Path::new(Cubic::default(), 100, u64::MAX);
        p.w.ssthresh = p.w.cwnd;
        p.cc.ssthresh(&p.w, 0);
        p.cc.on_event(&mut p.w, CcEvent::Timeout);
        assert_eq!(p.cc.last_max_cwnd, 0);
        p.w.cwnd = 40 * MSS;
        p.w.ssthresh = 40 * MSS;
        p.ack(2 * MSS, RTT_100MS);
        assert_eq!((p.cc.k, p.cc.origin_point), (0, 40 * MSS));
        assert!(p.cc.cnt <= 20 * MSS);
        for _ in 0..10 {
            p.round(RTT_100MS);
        }
        assert!(p.segs() >= 40.0 * 1.05f64.powi(9), "{}", p.segs());
    }

    // After an idle period the epoch moves forward by the idle time, so the window resumes
    // on the curve where it stopped instead of jumping ahead.
    #[test]
    fn idle_time_shifts_the_epoch() {
        let run = |idle: bool| {
            let mut p = Path::new(Cubic::default(), 1000, u64::MAX);
            p.w.ssthresh = p.w.cwnd;
            p.cc.delay_min = RTT_100MS.as_nanos();
            p.loss();
            for _ in 0..20 {
                p.round(RTT_100MS);
            }
            let before = p.w.cwnd;
            p.now += SimDuration::from_secs(5);
            if idle {
                p.cc.on_event(&mut p.w, CcEvent::TxStart);
            }
            p.round(RTT_100MS);
            (before, p.w.cwnd, p.cc.epoch_start)
        };
        let (before, after, epoch) = run(true);
        assert!(after - before <= 10 * MSS, "{before} -> {after}");
        let (_, jumped, epoch_unshifted) = run(false);
        assert!(jumped - before > 50 * MSS, "{before} -> {jumped}");
        // Shifted by the 5 s idle (plus the model's spacing of the first ACK, 0.125 ms).
        let shift = epoch.unwrap().saturating_since(epoch_unshifted.unwrap());
        let idle = SimDuration::from_secs(5);
        assert!(
            shift >= idle && shift <= idle + SimDuration::from_millis(1),
            "{shift}"
        );
    }

    // HyStart++: a delay rise enters Conservative Slow Start (a quarter of the growth),
    // and five CSS rounds end slow start.
    #[test]
    fn hystart_plus_plus_css() {
        let mut p = Path::new(Cubic::with_hystart(HystartMode::PlusPlus), 16, u64::MAX);
        p.round(RTT_100MS);
        p.round(RTT_100MS);
        assert!(p.cc.pp_css_baseline.is_none());
        let before = p.w.cwnd;
        p.round(RTT_100MS + SimDuration::from_millis(20));
        assert!(p.cc.pp_css_baseline.is_some(), "in CSS");
        // 8 samples at full speed, then a quarter.
        let grown = p.w.cwnd - before;
        assert!(grown < before / 2, "{grown}");
        let mut rounds = 1;
        while p.w.in_slow_start() {
            p.round(RTT_100MS + SimDuration::from_millis(20));
            rounds += 1;
            assert!(rounds < 10);
        }
        // Slow start ended at the first ACK of the 6th round; the rest of that round grew
        // the window by avoidance only (at most 5%).
        assert!(p.w.ssthresh * 100 >= p.w.cwnd * 95, "{:?}", p.w);
        assert!(!p.cc.pp_active);
        // A spurious rise: the next round's minimum falls back and slow start resumes.
        let mut p = Path::new(Cubic::with_hystart(HystartMode::PlusPlus), 16, u64::MAX);
        p.round(RTT_100MS);
        p.round(RTT_100MS);
        p.round(RTT_100MS + SimDuration::from_millis(20));
        assert!(p.cc.pp_css_baseline.is_some());
        p.round(RTT_100MS);
        p.round(RTT_100MS);
        assert!(p.cc.pp_css_baseline.is_none());
        assert!(p.w.in_slow_start());
    }
}

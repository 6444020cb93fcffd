//! Active queue management: RED (Floyd & Jacobson 1993) and CoDel (RFC 8289), with ECN.
//!
//! Owns the two algorithms as state machines over queue lengths, frame lengths and times.
//! Like [`crate::link`], it handles no packets and schedules nothing. RED decides when a frame
//! arrives, from the backlog it finds. CoDel decides when a frame leaves the queue, and
//! pulls frames from the queue through a closure, so it can drop several in a row. The
//! channel applies the decisions and counts them. The world sets the CE codepoint in the
//! packet when a decision is "mark".
//!
//! RED (RB-LINK-05), as Floyd & Jacobson's paper describes it and Linux's `sch_red` runs it:
//!
//! - At each arrival the average queue moves towards the backlog the frame finds (waiting
//!   frames only, in packets or bytes): `avg = (1 - w) avg + w q`. If the queue had gone
//!   idle (a dequeue found it empty, as in Linux), the first arrival instead decays it as
//!   if `m` empty-queue samples had been taken, `avg = (1 - w)^m avg`, where `m` is the
//!   idle time divided by the serialization time of an `avpkt`-byte frame.
//! - Below `min_th` nothing happens. Between `min_th` and `max_th`,
//!   `p_b = max_p (avg - min_th) / (max_th - min_th)`. With `gentle`, between `max_th` and
//!   `2 max_th`, `p_b = max_p + (1 - max_p) (avg - max_th) / max_th`. In those regions
//!   `count` (frames since the last drop or mark) spaces the drops out:
//!   `p_a = p_b / (1 - count p_b)`, and a frame is dropped or marked with probability `p_a`.
//!   Above `max_th` (`2 max_th` with `gentle`) every frame is dropped or marked. With
//!   `min_th` = `max_th`, weight 1 and no gentle region this is a step at the threshold
//!   on the instantaneous queue: DCTCP's marking threshold K (RFC 8257 section 3.1).
//! - With `ecn`, a frame whose ECN field is not Not-ECT is marked CE instead of dropped, in
//!   every region (Linux semantics without `harddrop`). Other frames are dropped.
//! - Byte mode measures the queue in bytes; the drop probability does not depend on the
//!   frame's size (as in Linux).
//!
//! CoDel (RB-LINK-06), as RFC 8289's pseudocode with Linux's ECN handling: the sojourn time
//! of the frame at the head is measured when it is dequeued. Once it has stayed at or
//! above `target` (with more than one MTU still queued) for `interval`, CoDel drops (or,
//! with `ecn` and an ECN-capable frame, marks) and enters the dropping state; the next
//! drops follow at `interval / sqrt(count)` after the previous scheduled one, until the
//! sojourn time falls below `target` or the queue runs out of more than an MTU. Re-entering
//! the dropping state soon after leaving it starts from the previous episode's drop rate
//! (the count re-use rule of RFC 8289 section 5.6).

use crate::rng::SimRng;
use crate::time::{SimDuration, SimTime};

/// The queue discipline of a channel, besides its hard limit ([`crate::link::QueueLimit`]).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Aqm {
    /// Plain drop-tail FIFO.
    #[default]
    None,
    Red(RedConfig),
    CoDel(CoDelConfig),
}

impl Aqm {
    /// The discipline's name, as traces report it.
    pub fn name(&self) -> &'static str {
        match self {
            Aqm::None => "drop_tail",
            Aqm::Red(_) => "red",
            Aqm::CoDel(_) => "codel",
        }
    }
}

/// RED parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RedConfig {
    /// Thresholds on the average queue: packets, or bytes with `bytes`.
    pub min_th: u64,
    pub max_th: u64,
    /// Measure the queue in bytes (of waiting frames' wire lengths) instead of packets.
    pub bytes: bool,
    /// Drop probability at `max_th`, in (0, 1].
    pub max_p: f64,
    /// EWMA weight of the average queue, w_q, in (0, 1].
    pub weight: f64,
    /// Ramp the probability from `max_p` to 1 between `max_th` and `2 max_th`.
    pub gentle: bool,
    /// Mark ECN-capable frames CE instead of dropping them.
    pub ecn: bool,
    /// Typical frame size in wire bytes, for the idle-time correction.
    pub avpkt: u32,
}

impl Default for RedConfig {
    /// The scenario defaults for a 1000-packet queue: `max_th` = limit/4, `min_th` =
    /// `max_th`/3 (tc's rule), `max_p` 0.02, w_q 0.002, gentle, no ECN, avpkt 1000 bytes.
    fn default() -> Self {
        RedConfig {
            min_th: 83,
            max_th: 250,
            bytes: false,
            max_p: 0.02,
            weight: 0.002,
            gentle: true,
            ecn: false,
            avpkt: 1000,
        }
    }
}

/// CoDel parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CoDelConfig {
    /// Acceptable standing queue delay.
    pub target: SimDuration,
    /// How long the delay may stay above `target` before CoDel acts.
    pub interval: SimDuration,
    /// Mark ECN-capable frames CE instead of dropping them.
    pub ecn: bool,
    /// Wire bytes of a full-size frame: CoDel never drops while at most this much is
    /// queued behind the head (Linux: the device MTU plus the link header).
    pub mtu: u32,
}

impl Default for CoDelConfig {
    /// Linux's defaults: target 5 ms, interval 100 ms, no ECN, a 1500-byte MTU (1514 wire).
    fn default() -> Self {
        CoDelConfig {
            target: SimDuration::from_millis(5),
            interval: SimDuration::from_millis(100),
            ecn: false,
            mtu: 1514,
        }
    }
}

/// `base^exp` by repeated squaring: only multiplications, so the result is the same on
/// every machine (unlike `powf`).
fn pow_int(base: f64, mut exp: u64) -> f64 {
    let (mut acc, mut b) = (1.0, base);
    while exp > 0 {
        if exp & 1 == 1 {
            acc *= b;
        }
        b *= b;
        exp >>= 1;
        if acc == 0.0 {
            break;
        }
    }
    acc
}

/// RED's state: the average queue, the count since the last drop, the idle period.
#[derive(Clone, Debug, PartialEq)]
pub struct RedState {
    avg: f64,
    /// Frames since the last drop or mark while the average was above `min_th`; -1 below.
    count: i64,
    /// When a dequeue last found the queue empty, until the next arrival.
    idle_since: Option<SimTime>,
}

impl Default for RedState {
    fn default() -> Self {
        RedState {
            avg: 0.0,
            count: -1,
            idle_since: None,
        }
    }
}

impl RedState {
    /// The average queue (packets or bytes).
    pub fn average(&self) -> f64 {
        self.avg
    }

    /// A dequeue found the queue empty at `now`: the idle period starts (if not already).
    pub fn start_idle(&mut self, now: SimTime) {
        self.idle_since.get_or_insert(now);
    }

    /// Updates the average for a frame arriving at `now` that finds `backlog` waiting, on a
    /// link of `rate_bps`.
    pub fn update_average(&mut self, cfg: &RedConfig, now: SimTime, backlog: u64, rate_bps: u64) {
        let w = cfg.weight;
        match self.idle_since.take() {
            Some(since) => {
                let slot = SimDuration::serialization(cfg.avpkt as u64, rate_bps)
                    .as_nanos()
                    .max(1);
                let m = now.saturating_since(since).as_nanos() / slot;
                self.avg *= pow_int(1.0 - w, m);
            }
            None => self.avg = (1.0 - w) * self.avg + w * backlog as f64,
        }
    }

    /// The base probability p_b for the current average: `None` below `min_th`,
    /// `Some(1.0)` in the forced region.
    pub fn base_probability(&self, cfg: &RedConfig) -> Option<f64> {
        let (avg, min, max) = (self.avg, cfg.min_th as f64, cfg.max_th as f64);
        if avg < min {
            None
        } else if avg < max {
            let span = max - min;
            Some(if span > 0.0 {
                cfg.max_p * (avg - min) / span
            } else {
                cfg.max_p
            })
        } else if cfg.gentle && avg < 2.0 * max {
            Some(cfg.max_p + (1.0 - cfg.max_p) * (avg - max) / max)
        } else {
            Some(1.0)
        }
    }

    /// Decides for an arrival (after [`Self::update_average`]): true to drop or mark it.
    /// Draws exactly one number from `rng` when the average is in a probabilistic region,
    /// none otherwise.
    pub fn decide(&mut self, cfg: &RedConfig, rng: &mut SimRng) -> bool {
        let forced_from = if cfg.gentle { 2.0 } else { 1.0 } * cfg.max_th as f64;
        let Some(p_b) = self.base_probability(cfg) else {
            self.count = -1;
            return false;
        };
        if self.avg >= forced_from {
            self.count = 0;
            return true;
        }
        self.count += 1;
        let p_a = spaced_probability(p_b, self.count);
        if rng.uniform() < p_a {
            self.count = 0;
            true
        } else {
            false
        }
    }
}

/// Floyd & Jacobson's `p_a = p_b / (1 - count p_b)`, 1 once `count p_b` reaches 1.
pub fn spaced_probability(p_b: f64, count: i64) -> f64 {
    let denom = 1.0 - count as f64 * p_b;
    if denom <= 0.0 {
        1.0
    } else {
        (p_b / denom).min(1.0)
    }
}

/// What CoDel sees of a frame taken from the head of the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// When it was queued.
    pub enqueued: SimTime,
    /// Its ECN field is not Not-ECT (it may be marked CE).
    pub ect: bool,
    /// Wire bytes still queued after it was taken.
    pub backlog_after: u64,
}

/// CoDel's state (RFC 8289 section 5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoDelState {
    /// When the sojourn time may be judged to have stayed above target for an interval.
    first_above_time: Option<SimTime>,
    drop_next: SimTime,
    count: u32,
    lastcount: u32,
    dropping: bool,
}

/// `t + interval / sqrt(count)`, exactly: the floor of the real quotient, in nanoseconds.
pub fn control_law(t: SimTime, interval: SimDuration, count: u32) -> SimTime {
    let i = interval.as_nanos() as u128;
    // floor(sqrt(floor(x))) = floor(sqrt(x)), so this is floor(i / sqrt(count)).
    let step = (i * i / count.max(1) as u128).isqrt();
    t + SimDuration(step as u64)
}

impl CoDelState {
    pub fn dropping(&self) -> bool {
        self.dropping
    }
    pub fn count(&self) -> u32 {
        self.count
    }
    /// When the next drop is due while dropping.
    pub fn drop_next(&self) -> SimTime {
        self.drop_next
    }

    /// RFC 8289 `dodequeue`'s verdict on a dequeued head: may it be dropped?
    fn ok_to_drop(&mut self, cfg: &CoDelConfig, now: SimTime, head: Option<&Head>) -> bool {
        let Some(h) = head else {
            self.first_above_time = None;
            return false;
        };
        let sojourn = now.saturating_since(h.enqueued);
        if sojourn < cfg.target || h.backlog_after <= cfg.mtu as u64 {
            // Went below: it must stay above for a whole interval again.
            self.first_above_time = None;
            return false;
        }
        match self.first_above_time {
            None => {
                self.first_above_time = Some(now + cfg.interval);
                false
            }
            Some(t) => now >= t,
        }
    }

    /// A frame went straight into service on an idle link: it was enqueued and dequeued at
    /// once with a sojourn time of zero, which ends any dropping state.
    pub fn pass_through(&mut self) {
        self.first_above_time = None;
        self.dropping = false;
    }

    /// RFC 8289 `dequeue` at `now`. `pop` takes the head of the queue; `drop` disposes of a
    /// frame CoDel dropped. Returns the frame to send, if any, and whether to mark it CE.
    pub fn dequeue<T>(
        &mut self,
        cfg: &CoDelConfig,
        now: SimTime,
        mut pop: impl FnMut() -> Option<(T, Head)>,
        mut drop: impl FnMut(T),
    ) -> Option<(T, bool)> {
        let mut r = pop();
        let mut ok = self.ok_to_drop(cfg, now, r.as_ref().map(|(_, h)| h));
        let mut mark = false;
        if self.dropping {
            if !ok {
                // The sojourn time fell below target: leave the dropping state.
                self.dropping = false;
            }
            // Time for the next drop(s). A large backlog may make several due at once.
            while self.dropping && now >= self.drop_next {
                // Dropping implies the head was ok to drop, so there is one.
                let Some((frame, head)) = r.take() else { break };
                self.count = self.count.saturating_add(1);
                if cfg.ecn && head.ect {
                    mark = true;
                    r = Some((frame, head));
                    self.drop_next = control_law(self.drop_next, cfg.interval, self.count);
                    break;
                }
                drop(frame);
                r = pop();
                ok = self.ok_to_drop(cfg, now, r.as_ref().map(|(_, h)| h));
                if ok {
                    self.drop_next = control_law(self.drop_next, cfg.interval, self.count);
                } else {
                    self.dropping = false;
                }
            }
        } else if ok {
            // The sojourn time has been above target for an interval: drop (or mark) and
            // enter the dropping state.
            if let Some((frame, head)) = r {
                if cfg.ecn && head.ect {
                    mark = true;
                    r = Some((frame, head));
                } else {
                    drop(frame);
                    r = pop();
                    self.ok_to_drop(cfg, now, r.as_ref().map(|(_, h)| h));
                }
            }
            self.dropping = true;
            // If the last episode ended recently, start from the drop rate that controlled
            // the queue then (RFC 8289 section 5.6, Linux's rule).
            let delta = self.count.wrapping_sub(self.lastcount);
            let since_next = now.as_nanos() as i128 - self.drop_next.as_nanos() as i128;
            self.count = if delta > 1 && since_next < 16 * cfg.interval.as_nanos() as i128 {
                delta
            } else {
                1
            };
            self.lastcount = self.count;
            self.drop_next = control_law(now, cfg.interval, self.count);
        }
        r.map(|(frame, _)| (frame, mark))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::RngFactory;

    #[test]
    fn pow_int_matches_repeated_multiplication() {
        let mut x = 1.0;
        for m in 0..200u64 {
            assert!((pow_int(0.998, m) - x).abs() <= 1e-12 * x, "{m}");
            x *= 0.998;
        }
        assert_eq!(pow_int(0.5, 5000), 0.0);
        assert_eq!(pow_int(0.3, 0), 1.0);
    }

    // DCTCP's marking (RFC 8257 section 3.1): RED with min_th = max_th = K, weight 1 and
    // no gentle region marks exactly the frames that find at least K waiting, and draws
    // no random number.
    #[test]
    fn red_with_equal_thresholds_and_weight_one_is_a_step_at_k() {
        let cfg = RedConfig {
            min_th: 20,
            max_th: 20,
            weight: 1.0,
            gentle: false,
            max_p: 1.0,
            ecn: true,
            ..RedConfig::default()
        };
        let f = RngFactory::new(3);
        let mut rng = f.stream("red");
        let mut red = RedState::default();
        for (i, backlog) in [0u64, 5, 19, 20, 21, 40, 19, 0, 20].into_iter().enumerate() {
            red.update_average(&cfg, SimTime(i as u64), backlog, 1_000_000_000);
            assert_eq!(red.average(), backlog as f64);
            assert_eq!(
                red.decide(&cfg, &mut rng),
                backlog >= 20,
                "backlog {backlog}"
            );
        }
        assert_eq!(rng.next_u64(), f.stream("red").next_u64(), "no draws");
    }

    #[test]
    fn control_law_is_the_floor_of_interval_over_sqrt_count() {
        let i = SimDuration::from_millis(100);
        assert_eq!(control_law(SimTime(0), i, 1), SimTime(100_000_000));
        assert_eq!(control_law(SimTime(0), i, 2), SimTime(70_710_678));
        assert_eq!(control_law(SimTime(0), i, 3), SimTime(57_735_026));
        assert_eq!(control_law(SimTime(0), i, 4), SimTime(50_000_000));
        assert_eq!(control_law(SimTime(7), i, 100), SimTime(10_000_007));
    }

    /// The mean spacing between drops, in frames, when the average stays where it gives
    /// `p_b` (renewal: the long-run drop fraction is 1 / E[X]).
    fn expected_drop_fraction(p_b: f64) -> f64 {
        let (mut survive, mut mean) = (1.0, 0.0);
        for n in 1..100_000i64 {
            let p = spaced_probability(p_b, n);
            mean += n as f64 * survive * p;
            survive *= 1.0 - p;
            if survive == 0.0 {
                break;
            }
        }
        1.0 / mean
    }

    fn drop_fraction(cfg: &RedConfig, avg: f64, n: u32) -> f64 {
        let mut red = RedState {
            avg,
            ..Default::default()
        };
        let mut rng = RngFactory::new(11).stream("red-test");
        let drops = (0..n).filter(|_| red.decide(cfg, &mut rng)).count();
        drops as f64 / n as f64
    }

    // RB-LINK-05
    #[test]
    fn red_drop_rate_matches_the_count_spaced_probability() {
        let cfg = RedConfig {
            min_th: 5,
            max_th: 15,
            max_p: 0.1,
            gentle: false,
            ..Default::default()
        };
        for (avg, p_b) in [(7.5, 0.025), (10.0, 0.05), (14.0, 0.09)] {
            let red = RedState {
                avg,
                ..Default::default()
            };
            assert!((red.base_probability(&cfg).unwrap() - p_b).abs() < 1e-12);
            let expected = expected_drop_fraction(p_b);
            // Count spacing roughly doubles the rate of independent drops at p_b.
            assert!(expected > 1.8 * p_b && expected < 2.1 * p_b, "{expected}");
            let measured = drop_fraction(&cfg, avg, 400_000);
            assert!(
                (measured - expected).abs() < 0.03 * expected,
                "avg {avg}: measured {measured}, expected {expected}"
            );
        }
        // Below min_th nothing is dropped; at or above max_th (not gentle) everything is.
        assert_eq!(drop_fraction(&cfg, 4.9, 10_000), 0.0);
        assert_eq!(drop_fraction(&cfg, 15.0, 10_000), 1.0);
    }

    // RB-LINK-05
    #[test]
    fn red_gentle_region_ramps_from_max_p_to_one() {
        let cfg = RedConfig {
            min_th: 5,
            max_th: 15,
            max_p: 0.1,
            gentle: true,
            ..Default::default()
        };
        let at = |avg| {
            RedState {
                avg,
                ..Default::default()
            }
            .base_probability(&cfg)
            .unwrap()
        };
        assert!((at(15.0) - 0.1).abs() < 1e-12);
        assert!((at(18.0) - (0.1 + 0.9 * 0.2)).abs() < 1e-12);
        assert!((at(22.5) - 0.55).abs() < 1e-12);
        let expected = expected_drop_fraction(0.28);
        let measured = drop_fraction(&cfg, 18.0, 200_000);
        assert!(
            (measured - expected).abs() < 0.03 * expected,
            "measured {measured}, expected {expected}"
        );
        assert!(drop_fraction(&cfg, 16.0, 10_000) < 0.5);
        // Count spacing drops every frame after the first drop once p_b reaches 1/2
        // (p_a = p_b / (1 - p_b) >= 1).
        assert!(drop_fraction(&cfg, 22.5, 10_000) >= 0.9999);
        assert_eq!(drop_fraction(&cfg, 30.0, 10_000), 1.0);
    }

    /// A synthetic queue for CoDel: frames are (id, enqueue time), each 1000 wire bytes.
    struct Fifo(std::collections::VecDeque<(u32, SimTime)>, bool);

    impl Fifo {
        fn pop(&mut self) -> Option<(u32, Head)> {
            let (id, at) = self.0.pop_front()?;
            Some((
                id,
                Head {
                    enqueued: at,
                    ect: self.1,
                    backlog_after: self.0.len() as u64 * 1000,
                },
            ))
        }
    }

    /// Dequeues at each of `times` from a queue whose head always has the sojourn time
    /// `sojourn(t)` (and a long backlog behind it). Returns the times of drops and marks.
    fn drive(
        state: &mut CoDelState,
        cfg: &CoDelConfig,
        times: &[SimTime],
        sojourn: impl Fn(SimTime) -> SimDuration,
    ) -> (Vec<SimTime>, Vec<SimTime>) {
        drive_ect(state, cfg, times, sojourn, false)
    }

    /// [`drive`] with frames that are ECN-capable if `ect`.
    fn drive_ect(
        state: &mut CoDelState,
        cfg: &CoDelConfig,
        times: &[SimTime],
        sojourn: impl Fn(SimTime) -> SimDuration,
        ect: bool,
    ) -> (Vec<SimTime>, Vec<SimTime>) {
        let (mut drops, mut marks) = (Vec::new(), Vec::new());
        for &t in times {
            let at = SimTime(t.0 - sojourn(t).0);
            let mut q = Fifo((0..10).map(|i| (i, at)).collect(), ect);
            let mut dropped = 0;
            let r = state.dequeue(cfg, t, || q.pop(), |_| dropped += 1);
            drops.extend(std::iter::repeat_n(t, dropped));
            if let Some((_, true)) = r {
                marks.push(t);
            }
        }
        (drops, marks)
    }

    fn ms(x: u64) -> SimTime {
        SimTime(x * 1_000_000)
    }

    /// Every millisecond from `a` to `b` (exclusive), plus the `extra` instants, sorted.
    fn grid(a: u64, b: u64, extra: &[SimTime]) -> Vec<SimTime> {
        let mut v: Vec<SimTime> = (a..b).map(ms).chain(extra.iter().copied()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Scheduled drop times from `first` with counts starting at `count`: each is the
    /// previous plus interval / sqrt(count) (RFC 8289 control law).
    fn schedule(first: SimTime, count: u32, n: usize) -> Vec<SimTime> {
        let interval = SimDuration::from_millis(100);
        let mut v = vec![first];
        let mut next = control_law(first, interval, count);
        for k in 1..n as u32 {
            v.push(next);
            next = control_law(next, interval, count + k);
        }
        v
    }

    // RB-LINK-06
    #[test]
    fn codel_drops_after_an_interval_above_target_then_at_interval_over_sqrt_count() {
        let cfg = CoDelConfig::default();
        let mut s = CoDelState::default();
        // Below target for 45 ms: nothing happens.
        let (drops, _) = drive(&mut s, &cfg, &grid(5, 50, &[]), |_| {
            SimDuration::from_micros(4_999)
        });
        assert!(drops.is_empty());
        assert!(!s.dropping());
        // From 50 ms the sojourn time is 10 ms: it has been above target for an interval at
        // 150 ms (first_above_time = 50 + 100 ms), then drops follow the control law.
        let expected = schedule(ms(150), 1, 6);
        assert_eq!(
            expected[..4],
            [
                ms(150),
                ms(250),
                SimTime(320_710_678),
                SimTime(320_710_678 + 57_735_026)
            ]
        );
        let times = grid(50, 500, &expected);
        let (drops, _) = drive(&mut s, &cfg, &times, |_| SimDuration::from_millis(10));
        assert_eq!(drops, expected);
        assert!(s.dropping());
        let count = s.count();
        // The sojourn time falls below target: dropping stops at once.
        let (drops, _) = drive(&mut s, &cfg, &grid(500, 520, &[]), |_| {
            SimDuration::from_millis(4)
        });
        assert!(drops.is_empty());
        assert!(!s.dropping());
        // Back above target soon after (within 16 intervals of the last scheduled drop):
        // after an interval, dropping resumes with the previous episode's count
        // (delta = count - lastcount), so the spacing is interval / sqrt(delta).
        let delta = count - 1;
        assert!(delta > 1);
        let resumed = schedule(ms(620), delta, 4);
        let times = grid(520, 750, &resumed);
        let (drops, _) = drive(&mut s, &cfg, &times, |_| SimDuration::from_millis(10));
        assert_eq!(drops, resumed);
        assert_eq!(s.count(), delta + 3);
    }

    // RB-LINK-06
    #[test]
    fn codel_restarts_from_count_one_after_a_long_pause() {
        let cfg = CoDelConfig::default();
        let mut s = CoDelState::default();
        let first = schedule(ms(110), 1, 5);
        drive(&mut s, &cfg, &grid(10, 450, &first), |_| {
            SimDuration::from_millis(10)
        });
        assert!(s.count() > 2);
        // Leave, then stay below target for more than 16 intervals.
        drive(&mut s, &cfg, &grid(450, 2300, &[]), |_| {
            SimDuration::from_millis(1)
        });
        let again = schedule(ms(2400), 1, 3);
        let (drops, _) = drive(&mut s, &cfg, &grid(2300, 2700, &again), |_| {
            SimDuration::from_millis(10)
        });
        assert_eq!(drops[..3], again[..]);
    }

    // RB-LINK-06
    #[test]
    fn codel_needs_more_than_an_mtu_queued_and_marks_with_ecn() {
        let cfg = CoDelConfig {
            ecn: true,
            ..Default::default()
        };
        // One frame of backlog behind the head: never dropped, however long it waited.
        let mut s = CoDelState::default();
        for t in 0..300 {
            let mut q = Fifo([(0, SimTime::ZERO), (1, SimTime::ZERO)].into(), false);
            let r = s.dequeue(&cfg, ms(t), || q.pop(), |_| panic!("dropped"));
            assert_eq!(r, Some((0, false)));
        }
        // ECN-capable frames are marked at the drop times, never dropped.
        let expected = schedule(ms(110), 1, 4);
        let times = grid(10, 385, &expected);
        let ten = |_| SimDuration::from_millis(10);
        let mut s = CoDelState::default();
        let (drops, marks) = drive_ect(&mut s, &cfg, &times, ten, true);
        assert!(drops.is_empty());
        assert_eq!(marks, expected);
        // Frames that are not ECN-capable are dropped at the same times.
        let mut s = CoDelState::default();
        let (drops, marks) = drive_ect(&mut s, &cfg, &times, ten, false);
        assert!(marks.is_empty());
        assert_eq!(drops, expected);
    }
}

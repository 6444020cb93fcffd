//! Cluster-wide dissemination measurements of one gossip app, fed by its members.
//!
//! Owns the record of what happened (members starting and stopping, rumors being born and
//! learned, messages) and its reduction to per-round figures. Every member of one app
//! shares one [`GossipLog`] (a [`SharedLog`]) and only ever writes to it: nothing in the
//! simulation reads it, so it cannot change behaviour. It knows no output format.
//!
//! **Rounds.** Members gossip at the instants T_j = start + j * period (j = 0, 1, ...), all
//! at once. A round is the interval [T_j, T_{j+1}); with network delays far below the
//! period, every exchange a tick starts ends within its round. A rumor born at time b is
//! first spread at its first tick T_{r0} >= b; "after j rounds" means at T_{r0 + j}, so
//! the counts at j = 0 are those at the first tick (the origin alone, normally). A count
//! "at T" includes everything that happened at or before T.

use sim_core::time::{SimDuration, SimTime};
use std::cell::RefCell;
use std::rc::Rc;

/// A rumor of the scenario: it is born on member `origin` at `at`, if that member is up
/// then, with `size` value bytes. Its id is its index in the app's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RumorPlan {
    pub origin: u32,
    pub at: SimTime,
    pub size: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    Up,
    Down,
    Informed(u32),
}

/// The shared log of one gossip app.
pub type SharedLog = Rc<RefCell<GossipLog>>;

#[derive(Debug)]
pub struct GossipLog {
    members: u32,
    rumors: usize,
    start: SimTime,
    period: SimDuration,
    events: Vec<(SimTime, u32, What)>,
    born: Vec<Option<SimTime>>,
    sent: Vec<u64>,
    received: Vec<u64>,
    malformed: Vec<u64>,
    bytes_sent: u64,
    sent_per_round: Vec<u64>,
    run_over: bool,
}

/// One round of the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundStats {
    pub round: u64,
    /// T_round.
    pub t: SimTime,
    /// Members running the app at T_round.
    pub live: u64,
    /// Messages sent during the round, [T_round, T_round+1).
    pub messages: u64,
}

/// How one rumor spread.
#[derive(Clone, Debug, PartialEq)]
pub struct RumorStats {
    pub id: u32,
    pub origin: u32,
    /// When it was born (None: its origin was down at its time, or the time is after the
    /// run).
    pub born: Option<SimTime>,
    /// r0: the round whose tick first spread it.
    pub first_round: Option<u64>,
    /// Members that knew it at some time.
    pub informed: u64,
    /// Fraction of members that never knew it.
    pub residue: f64,
    /// Members up at the end, and how many of them know it.
    pub final_live: u64,
    pub final_informed: u64,
    /// The first time every member up knew it.
    pub full_at: Option<SimTime>,
    /// The first j with every member up at T_{r0+j} knowing it.
    pub rounds_to_full: Option<u64>,
    /// Messages the cluster sent in rounds r0 .. r0 + rounds_to_full (anti-entropy included).
    pub messages_to_full: Option<u64>,
    /// For j = 0, 1, ...: members that had known it by T_{r0+j} (ever, crashes ignored).
    pub informed_per_round: Vec<u64>,
    /// For j = 0, 1, ...: members up at T_{r0+j} that know it then.
    pub live_informed_per_round: Vec<u64>,
}

/// Everything a log says about a run that ended at `end`.
#[derive(Clone, Debug, PartialEq)]
pub struct GossipStats {
    pub members: u32,
    pub rounds: Vec<RoundStats>,
    pub rumors: Vec<RumorStats>,
    pub sent: u64,
    pub received: u64,
    pub malformed: u64,
    pub bytes_sent: u64,
    /// Messages sent per member: mean and maximum.
    pub sent_per_member_mean: f64,
    pub sent_per_member_max: u64,
}

impl GossipLog {
    pub fn new(members: u32, rumors: usize, start: SimTime, period: SimDuration) -> Self {
        let m = members as usize;
        GossipLog {
            members,
            rumors,
            start,
            period: period.max(SimDuration::from_nanos(1)),
            events: Vec::new(),
            born: vec![None; rumors],
            sent: vec![0; m],
            received: vec![0; m],
            malformed: vec![0; m],
            bytes_sent: 0,
            sent_per_round: Vec::new(),
            run_over: false,
        }
    }

    pub fn shared(self) -> SharedLog {
        Rc::new(RefCell::new(self))
    }

    /// The round a time falls in (0 before the start).
    pub fn round_of(&self, t: SimTime) -> u64 {
        if t <= self.start {
            return 0;
        }
        (t - self.start).as_nanos() / self.period.as_nanos()
    }

    /// The next tick at or after `t`.
    pub fn next_tick(&self, t: SimTime) -> SimTime {
        if t <= self.start {
            return self.start;
        }
        let p = self.period.as_nanos();
        let since = (t - self.start).as_nanos();
        self.start + SimDuration::from_nanos(since.div_ceil(p).saturating_mul(p))
    }

    pub fn member_up(&mut self, m: u32, t: SimTime) {
        self.events.push((t, m, What::Up));
    }

    /// A member stopped (crash or kill). Ignored once [`GossipLog::end_run`] was called:
    /// stopping every app at the end of the run is not a failure.
    pub fn member_down(&mut self, m: u32, t: SimTime) {
        if !self.run_over {
            self.events.push((t, m, What::Down));
        }
    }

    /// The run is over; apps finishing now are not going down.
    pub fn end_run(&mut self) {
        self.run_over = true;
    }

    pub fn born(&mut self, rumor: u32, t: SimTime) {
        if let Some(b) = self.born.get_mut(rumor as usize) {
            b.get_or_insert(t);
        }
    }

    /// Member `m` learned (or originated) `rumor`. Ids outside the app's rumors are not
    /// tracked.
    pub fn informed(&mut self, m: u32, rumor: u32, t: SimTime) {
        if (rumor as usize) < self.rumors {
            self.events.push((t, m, What::Informed(rumor)));
        }
    }

    pub fn sent(&mut self, m: u32, t: SimTime, bytes: usize) {
        if let Some(s) = self.sent.get_mut(m as usize) {
            *s += 1;
        }
        self.bytes_sent += bytes as u64;
        let r = self.round_of(t) as usize;
        if self.sent_per_round.len() <= r {
            self.sent_per_round.resize(r + 1, 0);
        }
        self.sent_per_round[r] += 1;
    }

    pub fn received(&mut self, m: u32) {
        if let Some(s) = self.received.get_mut(m as usize) {
            *s += 1;
        }
    }

    pub fn malformed(&mut self, m: u32) {
        if let Some(s) = self.malformed.get_mut(m as usize) {
            *s += 1;
        }
    }

    /// Replays the log up to `end` into per-round figures.
    pub fn stats(&self, end: SimTime, plans: &[RumorPlan]) -> GossipStats {
        let n = self.members as usize;
        let r_count = self.rumors;
        let boundaries = if end >= self.start {
            (end - self.start).as_nanos() / self.period.as_nanos() + 1
        } else {
            0
        } as usize;
        let tick =
            |j: usize| self.start + SimDuration::from_nanos(j as u64 * self.period.as_nanos());
        let mut up = vec![false; n];
        let mut knows = vec![vec![false; n]; r_count];
        let mut ever = vec![vec![false; n]; r_count];
        let mut live = 0u64;
        let mut knowing = vec![0u64; r_count];
        let mut ever_count = vec![0u64; r_count];
        let mut full_at: Vec<Option<SimTime>> = vec![None; r_count];
        let mut live_at = Vec::with_capacity(boundaries);
        let mut knowing_at = vec![Vec::with_capacity(boundaries); r_count];
        let mut ever_at = vec![Vec::with_capacity(boundaries); r_count];
        let mut j = 0;
        let mut snapshot = |j: usize, live: u64, knowing: &[u64], ever_count: &[u64]| {
            debug_assert_eq!(live_at.len(), j);
            live_at.push(live);
            for r in 0..r_count {
                knowing_at[r].push(knowing[r]);
                ever_at[r].push(ever_count[r]);
            }
        };
        for &(t, m, what) in self.events.iter().filter(|e| e.0 <= end) {
            while j < boundaries && tick(j) < t {
                snapshot(j, live, &knowing, &ever_count);
                j += 1;
            }
            let i = m as usize;
            if i >= n {
                continue;
            }
            match what {
                What::Up => {
                    if !up[i] {
                        up[i] = true;
                        live += 1;
                    }
                }
                What::Down => {
                    if up[i] {
                        up[i] = false;
                        live -= 1;
                        for r in 0..r_count {
                            if knows[r][i] {
                                knows[r][i] = false;
                                knowing[r] -= 1;
                            }
                        }
                    }
                }
                What::Informed(r) => {
                    let r = r as usize;
                    if up[i] && !knows[r][i] {
                        knows[r][i] = true;
                        knowing[r] += 1;
                    }
                    if !ever[r][i] {
                        ever[r][i] = true;
                        ever_count[r] += 1;
                    }
                }
            }
            for r in 0..r_count {
                let born = self.born[r].is_some_and(|b| b <= t);
                if born && full_at[r].is_none() && live > 0 && knowing[r] == live {
                    full_at[r] = Some(t);
                }
            }
        }
        while j < boundaries {
            snapshot(j, live, &knowing, &ever_count);
            j += 1;
        }
        let rounds: Vec<RoundStats> = (0..boundaries)
            .map(|j| RoundStats {
                round: j as u64,
                t: tick(j),
                live: live_at[j],
                messages: self.sent_per_round.get(j).copied().unwrap_or(0),
            })
            .collect();
        let rumors = (0..r_count)
            .map(|r| {
                let born = self.born[r].filter(|&b| b <= end);
                let first_round = born
                    .map(|b| self.round_of(self.next_tick(b)))
                    .filter(|&r0| (r0 as usize) < boundaries);
                let (per_round, live_per_round, rounds_to_full) = match first_round {
                    Some(r0) => {
                        let r0 = r0 as usize;
                        let full = (r0..boundaries)
                            .find(|&j| live_at[j] > 0 && knowing_at[r][j] == live_at[j])
                            .map(|j| (j - r0) as u64);
                        (
                            ever_at[r][r0..].to_vec(),
                            knowing_at[r][r0..].to_vec(),
                            full,
                        )
                    }
                    None => (Vec::new(), Vec::new(), None),
                };
                let messages_to_full = first_round.zip(rounds_to_full).map(|(r0, k)| {
                    (r0..r0 + k)
                        .map(|j| self.sent_per_round.get(j as usize).copied().unwrap_or(0))
                        .sum()
                });
                RumorStats {
                    id: r as u32,
                    origin: plans.get(r).map_or(0, |p| p.origin),
                    born,
                    first_round,
                    informed: ever_count[r],
                    residue: if n == 0 {
                        0.0
                    } else {
                        1.0 - ever_count[r] as f64 / n as f64
                    },
                    final_live: live,
                    final_informed: knowing[r],
                    full_at: full_at[r],
                    rounds_to_full,
                    messages_to_full,
                    informed_per_round: per_round,
                    live_informed_per_round: live_per_round,
                }
            })
            .collect();
        let sent: u64 = self.sent.iter().sum();
        GossipStats {
            members: self.members,
            rounds,
            rumors,
            sent,
            received: self.received.iter().sum(),
            malformed: self.malformed.iter().sum(),
            bytes_sent: self.bytes_sent,
            sent_per_member_mean: if n == 0 { 0.0 } else { sent as f64 / n as f64 },
            sent_per_member_max: self.sent.iter().copied().max().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> SimTime {
        SimTime::from_nanos(x * 1_000_000_000)
    }

    #[test]
    fn rounds_count_from_the_first_tick_after_birth() {
        // Four members, period 1 s from t = 1 s. Rumor 0 is born at 2.5 s on member 0:
        // first spread at the tick of 3 s (round 2).
        let mut log = GossipLog::new(4, 1, s(1), SimDuration::from_secs(1));
        for m in 0..4 {
            log.member_up(m, s(1));
        }
        let ms = |x: u64| SimTime::from_nanos(x * 1_000_000);
        log.born(0, ms(2500));
        log.informed(0, 0, ms(2500));
        log.sent(0, s(3), 20);
        log.informed(1, 0, ms(3001));
        log.sent(0, s(4), 20);
        log.sent(1, s(4), 20);
        log.informed(2, 0, ms(4001));
        // Member 3 crashes before anyone tells it: the live members are then all informed.
        log.member_down(3, ms(4500));
        log.end_run();
        log.member_down(0, s(6));
        let plans = [RumorPlan {
            origin: 0,
            at: ms(2500),
            size: 0,
        }];
        let st = log.stats(s(6), &plans);
        assert_eq!(st.rounds.len(), 6);
        assert_eq!(
            st.rounds.iter().map(|r| r.live).collect::<Vec<_>>(),
            [4, 4, 4, 4, 3, 3]
        );
        assert_eq!(
            st.rounds.iter().map(|r| r.messages).collect::<Vec<_>>(),
            [0, 0, 1, 2, 0, 0]
        );
        let r = &st.rumors[0];
        assert_eq!(r.first_round, Some(2));
        assert_eq!(r.informed_per_round, [1, 2, 3, 3]);
        assert_eq!(r.live_informed_per_round, [1, 2, 3, 3]);
        assert_eq!(r.full_at, Some(ms(4500)));
        assert_eq!(r.rounds_to_full, Some(2));
        assert_eq!(r.messages_to_full, Some(3));
        assert_eq!(r.informed, 3);
        assert_eq!(r.residue, 0.25);
        assert_eq!((r.final_live, r.final_informed), (3, 3));
        assert_eq!(st.sent, 3);
        assert_eq!(st.sent_per_member_max, 2);
        assert_eq!(st.bytes_sent, 60);
    }

    #[test]
    fn a_crash_forgets_and_a_rumor_never_born_has_no_rounds() {
        let mut log = GossipLog::new(2, 2, s(0), SimDuration::from_secs(1));
        log.member_up(0, s(0));
        log.member_up(1, s(0));
        log.born(0, s(0));
        log.informed(0, 0, s(0));
        log.informed(1, 0, SimTime::from_nanos(1));
        log.member_down(1, SimTime::from_nanos(1_500_000_000));
        log.member_up(1, s(2));
        let st = log.stats(s(3), &[]);
        let r = &st.rumors[0];
        assert_eq!(r.live_informed_per_round, [1, 2, 1, 1]);
        assert_eq!(r.informed_per_round, [1, 2, 2, 2]);
        assert_eq!(r.rounds_to_full, Some(1));
        assert_eq!(r.full_at, Some(SimTime::from_nanos(1)));
        assert_eq!(r.final_informed, 1);
        let never = &st.rumors[1];
        assert_eq!(never.born, None);
        assert!(never.informed_per_round.is_empty());
        assert_eq!(never.residue, 1.0);
        assert_eq!(log.next_tick(SimTime::from_nanos(1)), s(1));
        assert_eq!(log.next_tick(s(2)), s(2));
    }
}

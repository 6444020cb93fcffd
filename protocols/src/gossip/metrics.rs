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

use super::wire::Status;
use sim_core::time::{SimDuration, SimTime};
use std::cell::RefCell;
use std::collections::BTreeMap;
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
    /// (time, observer, member, new status): every change of a member's membership view.
    views: Vec<(SimTime, u32, u32, Status)>,
    membership_sent: u64,
}

/// How well membership (SWIM) tracked the members.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MembershipStats {
    /// Membership messages sent (also counted in [`GossipStats::sent`]).
    pub sent: u64,
    /// Members declared suspect / dead by some member, counting each declaration.
    pub suspicions: u64,
    pub deaths: u64,
    /// Of those, declarations about a member that was up then.
    pub false_suspicions: u64,
    pub false_deaths: u64,
    /// One entry per time a member went down.
    pub failures: Vec<FailureStats>,
    /// At the end: (member up, member up) pairs where the first believes the second dead.
    pub wrongly_dead_at_end: u64,
}

/// How one failure (a member going down) was detected.
#[derive(Clone, Debug, PartialEq)]
pub struct FailureStats {
    pub member: u32,
    pub down: SimTime,
    /// When it came back, if it did.
    pub up: Option<SimTime>,
    /// The first time some member suspected it / declared it dead while it was down.
    pub first_suspect: Option<SimTime>,
    pub first_dead: Option<SimTime>,
    /// The first time every member up believed it dead.
    pub all_dead: Option<SimTime>,
    /// After it came back: the first time no member up doubted it (believed it suspect or
    /// dead).
    pub rejoined: Option<SimTime>,
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
            views: Vec::new(),
            membership_sent: 0,
        }
    }

    /// `observer` now believes `member` is `status`.
    pub fn view_changed(&mut self, observer: u32, member: u32, status: Status, t: SimTime) {
        self.views.push((t, observer, member, status));
    }

    /// A membership message was sent (call [`GossipLog::sent`] too).
    pub fn membership_sent(&mut self) {
        self.membership_sent += 1;
    }

    /// Replays up, down and view changes up to `end` into failure-detection figures.
    pub fn membership_stats(&self, end: SimTime) -> MembershipStats {
        let n = self.members as usize;
        let mut st = MembershipStats {
            sent: self.membership_sent,
            ..MembershipStats::default()
        };
        let mut up = vec![false; n];
        let mut live = 0u64;
        // Each observer's non-alive beliefs, and how many members up believe m dead.
        let mut beliefs: Vec<BTreeMap<u32, Status>> = vec![BTreeMap::new(); n];
        let mut dead_count = vec![0u64; n];
        let mut doubt_count = vec![0u64; n];
        // The open failure of each member, as an index into st.failures, and failures
        // whose member is back and not yet believed alive by everyone.
        let mut open: Vec<Option<usize>> = vec![None; n];
        let mut rejoining: Vec<Option<usize>> = vec![None; n];
        /// What happened to a member: it went up or down, or its view of a member
        /// changed.
        #[derive(Clone, Copy)]
        enum Step {
            Life(bool),
            View(u32, Status),
        }
        let lives = self.events.iter().filter_map(|&(t, m, w)| match w {
            What::Up => Some((t, m, Step::Life(true))),
            What::Down => Some((t, m, Step::Life(false))),
            What::Informed(_) => None,
        });
        let views = self
            .views
            .iter()
            .map(|&(t, o, m, s)| (t, o, Step::View(m, s)));
        // Both are in time order; merge them, lifecycle first at equal times.
        let mut merged: Vec<(SimTime, u32, Step)> =
            lives.chain(views).filter(|e| e.0 <= end).collect();
        merged.sort_by_key(|e| (e.0, matches!(e.2, Step::View(..))));
        for (t, o, step) in merged {
            let (life, view) = match step {
                Step::Life(up) => (Some(up), None),
                Step::View(m, s) => (None, Some((m, s))),
            };
            let o = o as usize;
            if o >= n {
                continue;
            }
            match (life, view) {
                (Some(true), _) if !up[o] => {
                    up[o] = true;
                    live += 1;
                    // A restarted member starts believing everyone alive (its old
                    // beliefs stopped counting when it went down).
                    beliefs[o].clear();
                    if let Some(f) = open[o].take() {
                        st.failures[f].up = Some(t);
                        rejoining[o] = Some(f);
                    }
                }
                (Some(false), _) if up[o] => {
                    up[o] = false;
                    live -= 1;
                    for (&m, &s) in &beliefs[o] {
                        doubt_count[m as usize] -= 1;
                        if s == Status::Dead {
                            dead_count[m as usize] -= 1;
                        }
                    }
                    // Down again before everyone took it back: that rejoin never
                    // completed.
                    rejoining[o] = None;
                    st.failures.push(FailureStats {
                        member: o as u32,
                        down: t,
                        up: None,
                        first_suspect: None,
                        first_dead: None,
                        all_dead: None,
                        rejoined: None,
                    });
                    open[o] = Some(st.failures.len() - 1);
                }
                (None, Some((m, s))) if up[o] && (m as usize) < n => {
                    let was = beliefs[o].get(&m).copied().unwrap_or(Status::Alive);
                    if was == Status::Dead {
                        dead_count[m as usize] -= 1;
                    }
                    if s == Status::Dead {
                        dead_count[m as usize] += 1;
                    }
                    if was != Status::Alive {
                        doubt_count[m as usize] -= 1;
                    }
                    if s != Status::Alive {
                        doubt_count[m as usize] += 1;
                    }
                    if s == Status::Alive {
                        beliefs[o].remove(&m);
                    } else {
                        beliefs[o].insert(m, s);
                    }
                    let target_up = up[m as usize];
                    match s {
                        Status::Suspect => {
                            st.suspicions += 1;
                            st.false_suspicions += u64::from(target_up);
                        }
                        Status::Dead => {
                            st.deaths += 1;
                            st.false_deaths += u64::from(target_up);
                        }
                        Status::Alive => {}
                    }
                    if let Some(f) = open[m as usize] {
                        let rec = &mut st.failures[f];
                        match s {
                            Status::Suspect => {
                                rec.first_suspect.get_or_insert(t);
                            }
                            Status::Dead => {
                                rec.first_dead.get_or_insert(t);
                            }
                            Status::Alive => {}
                        }
                    }
                }
                _ => continue,
            }
            // Failures every member up now believes: the dead count covers all of them.
            for f in open.iter().flatten() {
                let rec = &mut st.failures[*f];
                if rec.all_dead.is_none() && live > 0 && dead_count[rec.member as usize] == live {
                    rec.all_dead = Some(t);
                }
            }
            for slot in rejoining.iter_mut() {
                if let Some(f) = *slot {
                    if doubt_count[st.failures[f].member as usize] == 0 {
                        st.failures[f].rejoined = Some(t);
                        *slot = None;
                    }
                }
            }
        }
        st.wrongly_dead_at_end = (0..n)
            .filter(|&o| up[o])
            .map(|o| {
                beliefs[o]
                    .iter()
                    .filter(|(&m, &s)| s == Status::Dead && up[m as usize])
                    .count() as u64
            })
            .sum();
        st
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
    fn membership_figures_follow_each_failure_and_count_false_alarms() {
        let ms = |x: u64| SimTime::from_nanos(x * 1_000_000);
        let mut log = GossipLog::new(3, 0, s(0), SimDuration::from_secs(1));
        for m in 0..3 {
            log.member_up(m, s(0));
        }
        // A false alarm: 0 suspects 1 while 1 is up, then takes it back.
        log.view_changed(0, 1, Status::Suspect, ms(500));
        log.view_changed(0, 1, Status::Alive, ms(700));
        // 2 crashes at 1 s; 0 suspects it at 2 s and declares it dead at 5 s, 1 at 6 s.
        log.member_down(2, s(1));
        log.view_changed(0, 2, Status::Suspect, s(2));
        log.view_changed(1, 2, Status::Suspect, ms(2100));
        log.view_changed(0, 2, Status::Dead, s(5));
        log.view_changed(1, 2, Status::Dead, s(6));
        // It restarts at 8 s; 0 takes it back at 9 s, 1 at 10 s.
        log.member_up(2, s(8));
        log.view_changed(0, 2, Status::Alive, s(9));
        log.view_changed(1, 2, Status::Alive, s(10));
        // 1 wrongly believes 0 dead at the end.
        log.view_changed(1, 0, Status::Dead, s(11));
        let st = log.membership_stats(s(12));
        assert_eq!((st.suspicions, st.false_suspicions), (3, 1));
        assert_eq!((st.deaths, st.false_deaths), (3, 1));
        assert_eq!(st.wrongly_dead_at_end, 1);
        assert_eq!(
            st.failures,
            [FailureStats {
                member: 2,
                down: s(1),
                up: Some(s(8)),
                first_suspect: Some(s(2)),
                first_dead: Some(s(5)),
                all_dead: Some(s(6)),
                rejoined: Some(s(10)),
            }]
        );
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

//! Links: full-duplex, each direction an independent [`Channel`] with a queue, a
//! serializer, a propagation delay and netem-style impairments.
//!
//! Owns queueing (drop-tail, or RED or CoDel from [`crate::aqm`] within the hard limit),
//! serialization timing, impairment decisions and link statistics. It does not own packets
//! (it handles [`PacketId`]s, lengths and whether a packet is ECN-capable) nor schedule
//! events: the world asks it what happens and schedules accordingly, so a channel can be
//! driven in a unit test. When the queue discipline marks a packet instead of dropping it,
//! the channel says so (`ce` in [`Offer`] and [`Transmission`]) and the world sets the CE
//! codepoint in the packet. Frames CoDel drops when dequeuing are kept in a reusable buffer
//! for the world to free ([`Channel::drain_aqm_dropped`]).
//!
//! Timing (RB-LINK-01): a frame of S bytes (its Ethernet wire length) whose transmission
//! starts at t finishes serializing at t + S*8/R and arrives at t + S*8/R + D (+ jitter).
//! Frames are serialized one after another; a frame waits in the queue while another is
//! being serialized. A frame's fate (loss, jitter, duplication, reordering, corruption) is
//! decided when its serialization starts, drawing from the channel's random stream in the
//! order frames start (which is the order they finish); a lost frame still uses the link
//! for its serialization time. The world schedules the frame's arrival at once, and asks
//! the channel for the next frame ([`Channel::finish`]) only when frames wait behind the
//! one being serialized (the `wake` times): a frame that leaves an empty queue costs one
//! event, its arrival, not two.

use crate::aqm::{Aqm, CoDelState, Head, RedState};
use crate::rng::SimRng;
use crate::time::{SimDuration, SimTime};
use std::collections::VecDeque;

/// Index of a packet in the world's packet store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(pub u32);

/// Which packets a queue holds at most (the hard limit, whatever the discipline). Counts
/// exclude the frame being serialized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimit {
    pub packets: Option<u32>,
    pub bytes: Option<u64>,
}

impl Default for QueueLimit {
    /// Linux's default txqueuelen: 1000 packets.
    fn default() -> Self {
        QueueLimit {
            packets: Some(1000),
            bytes: None,
        }
    }
}

/// Random loss models (RB-LINK-03).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum LossModel {
    #[default]
    None,
    /// Each frame is lost independently with probability p.
    Bernoulli(f64),
    /// Two-state Markov chain (Gilbert-Elliott): in the good state frames are lost with
    /// `loss_good`, in the bad state with `loss_bad`; after each frame the chain moves
    /// good->bad with probability `p` and bad->good with probability `r`.
    GilbertElliott {
        p: f64,
        r: f64,
        loss_good: f64,
        loss_bad: f64,
    },
}

/// One direction's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelConfig {
    pub rate_bps: u64,
    pub delay: SimDuration,
    /// Extra delay drawn uniformly from [0, jitter] per frame. Frames stay in order (as with
    /// netem plus a rate limit) unless reordering is configured.
    pub jitter: SimDuration,
    pub queue: QueueLimit,
    /// Active queue management within the hard limit `queue` (RED, CoDel), or drop-tail.
    pub aqm: Aqm,
    pub loss: LossModel,
    /// Probability that a frame is delivered twice.
    pub duplicate: f64,
    /// Probability that a frame is held back by `reorder_delay` extra, letting later frames
    /// overtake it.
    pub reorder: f64,
    pub reorder_delay: SimDuration,
    /// Probability that a frame is damaged (it then fails its checksum at the receiver).
    pub corrupt: f64,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            rate_bps: 1_000_000_000,
            delay: SimDuration::ZERO,
            jitter: SimDuration::ZERO,
            queue: QueueLimit::default(),
            aqm: Aqm::None,
            loss: LossModel::None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: SimDuration::ZERO,
            corrupt: 0.0,
        }
    }
}

/// Counters for one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames refused because the queue was at its hard limit (tail drops).
    pub queue_drops: u64,
    /// Frames the queue discipline dropped early: RED at arrival, CoDel at dequeue.
    pub aqm_drops: u64,
    /// Frames the queue discipline marked CE instead of dropping them.
    pub ecn_marks: u64,
    pub loss_drops: u64,
    /// Frames dropped because the link (or the sending node) was down.
    pub down_drops: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    pub busy_ns: u64,
    pub max_queue_packets: u64,
}

/// What happens to a frame offered to a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// The channel was idle: serialization starts now.
    Transmit(Transmission),
    /// The frame waits in the queue. `ce`: the queue discipline marked it. `wake`: it is
    /// the only frame waiting, so the world must call [`Channel::finish`] at this time,
    /// when the frame in service has been serialized (with [`Channel::service_gen`]).
    Queued {
        ce: bool,
        wake: Option<SimTime>,
    },
    /// Refused: the queue is at its hard limit.
    DroppedQueueFull,
    /// Dropped early by the queue discipline (RED).
    DroppedAqm,
    DroppedDown,
}

/// A frame whose serialization starts now: how long it takes, whether the queue
/// discipline marked it (set its ECN field to CE before it goes out), and what happens to
/// it on the wire. `wake`: frames wait behind it, so the world must call
/// [`Channel::finish`] at this time, when it has been serialized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmission {
    pub pkt: PacketId,
    pub duration: SimDuration,
    pub ce: bool,
    pub fate: Fate,
    pub wake: Option<SimTime>,
}

/// The frame being serialized: until when, whether it will arrive (its `Arrive` is then
/// already scheduled), and the duplicate the world made of it, if any.
#[derive(Clone, Copy, Debug)]
struct InService {
    pkt: PacketId,
    until: SimTime,
    arrives: bool,
    copy: Option<PacketId>,
}

/// A frame waiting in the queue.
#[derive(Clone, Copy, Debug)]
struct Queued {
    pkt: PacketId,
    len: u32,
    /// Its ECN field is ECT(0), ECT(1) or CE.
    ect: bool,
    enqueued: SimTime,
}

/// What happens to a frame when it has been serialized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Lost,
    Arrives {
        at: SimTime,
        corrupted: bool,
        /// A duplicate copy arrives too, at this time.
        duplicate_at: Option<SimTime>,
    },
}

/// Queue slots reserved when a channel first queues a frame (it grows from there).
const QUEUE_INITIAL_CAPACITY: usize = 16;

/// One direction of a link.
pub struct Channel {
    pub config: ChannelConfig,
    pub stats: ChannelStats,
    queue: VecDeque<Queued>,
    queued_bytes: u64,
    /// The frame serialized last, kept until the channel next notices it is idle (a frame
    /// finishing with an empty queue needs no event).
    in_service: Option<InService>,
    /// Bumped when the queue is flushed, so that a `finish` call the world scheduled
    /// before can be recognised as stale.
    service_gen: u32,
    /// Frames cut off mid-serialization by a crash of the sending node, whose arrival is
    /// already scheduled: they must not arrive ([`Self::take_aborted`]).
    aborted: Vec<PacketId>,
    up: bool,
    /// Bumped when the link goes down, so frames in flight can be recognised as lost.
    epoch: u32,
    last_arrival: SimTime,
    ge_bad: bool,
    rng: SimRng,
    /// RED's draws, a stream of their own so that they shift no impairment draws.
    aqm_rng: SimRng,
    red: RedState,
    codel: CoDelState,
    /// Frames CoDel dropped at dequeue, until the world frees them.
    aqm_dropped: Vec<PacketId>,
    /// The last serialization time computed, as (wire length, rate, time): frames of one
    /// size follow each other, and the exact computation divides in 128 bits.
    serialization_cache: (u32, u64, SimDuration),
}

impl Channel {
    /// A channel drawing impairments from `rng` and RED's drops from `aqm_rng`.
    pub fn new(config: ChannelConfig, rng: SimRng, aqm_rng: SimRng) -> Self {
        Channel {
            config,
            stats: ChannelStats::default(),
            // Room for a burst is made when the first frame queues (`offer`): most links
            // of a big network never queue anything.
            queue: VecDeque::new(),
            queued_bytes: 0,
            in_service: None,
            service_gen: 0,
            aborted: Vec::new(),
            up: true,
            epoch: 0,
            last_arrival: SimTime::ZERO,
            ge_bad: false,
            rng,
            aqm_rng,
            red: RedState::default(),
            codel: CoDelState::default(),
            aqm_dropped: Vec::new(),
            serialization_cache: (u32::MAX, 0, SimDuration::ZERO),
        }
    }

    pub fn is_up(&self) -> bool {
        self.up
    }
    pub fn epoch(&self) -> u32 {
        self.epoch
    }
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }
    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes
    }
    /// Serializing a frame at `now`, or frames are waiting.
    pub fn is_busy(&self, now: SimTime) -> bool {
        self.in_service.is_some_and(|s| s.until > now) || !self.queue.is_empty()
    }
    /// What a `finish` call must carry to be current; see [`Offer::Queued`].
    pub fn service_gen(&self) -> u32 {
        self.service_gen
    }
    /// RED's average queue (packets or bytes); 0 for other disciplines.
    pub fn red_average(&self) -> f64 {
        self.red.average()
    }
    /// CoDel's state, for inspection.
    pub fn codel(&self) -> &CoDelState {
        &self.codel
    }

    fn serialization(&mut self, wire_len: u32) -> SimDuration {
        let rate = self.config.rate_bps;
        let (len, r, d) = self.serialization_cache;
        if len == wire_len && r == rate {
            return d;
        }
        let d = SimDuration::serialization(wire_len as u64, rate);
        self.serialization_cache = (wire_len, rate, d);
        d
    }

    /// Starts serializing a frame at `now` and decides its fate, drawing the channel's
    /// impairments in the order frames start, which is the order they finish.
    fn start(&mut self, now: SimTime, pkt: PacketId, wire_len: u32, ce: bool) -> Transmission {
        let duration = self.serialization(wire_len);
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += wire_len as u64;
        self.stats.busy_ns = self.stats.busy_ns.saturating_add(duration.as_nanos());
        let until = now + duration;
        let fate = self.decide_fate(until);
        self.in_service = Some(InService {
            pkt,
            until,
            arrives: fate != Fate::Lost,
            copy: None,
        });
        Transmission {
            pkt,
            duration,
            ce,
            fate,
            wake: (!self.queue.is_empty()).then_some(until),
        }
    }

    /// Records the duplicate the world made of the frame in service (its fate said
    /// `duplicate_at`), so that a crash aborting the frame aborts the copy too.
    pub fn note_copy(&mut self, copy: PacketId) {
        if let Some(s) = self.in_service.as_mut() {
            s.copy = Some(copy);
        }
    }

    /// True (once) if `pkt` was cut off mid-serialization by a crash of the sending node;
    /// the world then frees it instead of delivering it.
    pub fn take_aborted(&mut self, pkt: PacketId) -> bool {
        if self.aborted.is_empty() {
            return false;
        }
        match self.aborted.iter().position(|&p| p == pkt) {
            Some(i) => {
                self.aborted.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Forgets the last frame if it has been serialized by `now` and nothing waits: the
    /// channel is idle again, since the time that frame finished.
    fn retire_finished(&mut self, now: SimTime) {
        if let Some(s) = self.in_service {
            if s.until <= now && self.queue.is_empty() {
                self.in_service = None;
                if matches!(self.config.aqm, Aqm::Red(_)) {
                    self.red.start_idle(s.until);
                }
            }
        }
    }

    /// Offers a frame of `wire_len` bytes at `now`; `ect`: its ECN field is not Not-ECT, so
    /// the queue discipline may mark it instead of dropping it. Admission: RED's early
    /// drop or mark (RB-LINK-05), then the hard limit (RB-LINK-02 drop-tail).
    pub fn offer(&mut self, now: SimTime, pkt: PacketId, wire_len: u32, ect: bool) -> Offer {
        if !self.up {
            self.stats.down_drops += 1;
            return Offer::DroppedDown;
        }
        self.retire_finished(now);
        let mut ce = false;
        if let Aqm::Red(red) = &self.config.aqm {
            let backlog = if red.bytes {
                self.queued_bytes
            } else {
                self.queue.len() as u64
            };
            self.red
                .update_average(red, now, backlog, self.config.rate_bps);
            if self.red.decide(red, &mut self.aqm_rng) {
                if red.ecn && ect {
                    ce = true;
                } else {
                    self.stats.aqm_drops += 1;
                    return Offer::DroppedAqm;
                }
            }
        }
        if self.in_service.is_none() {
            // Queued and dequeued at once: a sojourn time of zero.
            self.codel.pass_through();
            self.stats.ecn_marks += ce as u64;
            return Offer::Transmit(self.start(now, pkt, wire_len, ce));
        }
        let limit = self.config.queue;
        let over_packets = limit
            .packets
            .is_some_and(|n| self.queue.len() as u64 >= n as u64);
        let over_bytes = limit
            .bytes
            .is_some_and(|b| self.queued_bytes + wire_len as u64 > b);
        if over_packets || over_bytes {
            self.stats.queue_drops += 1;
            return Offer::DroppedQueueFull;
        }
        if self.queue.capacity() == 0 {
            self.queue.reserve(QUEUE_INITIAL_CAPACITY);
        }
        let wake = if self.queue.is_empty() {
            self.in_service.map(|s| s.until)
        } else {
            None
        };
        self.queue.push_back(Queued {
            pkt,
            len: wire_len,
            ect,
            enqueued: now,
        });
        self.queued_bytes += wire_len as u64;
        self.stats.max_queue_packets = self.stats.max_queue_packets.max(self.queue.len() as u64);
        self.stats.ecn_marks += ce as u64;
        Offer::Queued { ce, wake }
    }

    /// The frame in service has been serialized at `now`, as a `wake` time said: starts
    /// the next frame, if one is left (frames CoDel dropped on the way are then in
    /// [`Self::drain_aqm_dropped`]). Does nothing for a `gen` from before a flush.
    pub fn finish(&mut self, now: SimTime, gen: u32) -> Option<Transmission> {
        if gen != self.service_gen {
            return None;
        }
        let s = self.in_service.take()?;
        debug_assert_eq!(s.until, now, "finish called when the frame in service ends");
        let (q, ce) = self.dequeue(now)?;
        Some(self.start(now, q.pkt, q.len, ce))
    }

    /// Takes the next frame to send from the queue, with whether to mark it CE.
    fn dequeue(&mut self, now: SimTime) -> Option<(Queued, bool)> {
        let Channel {
            config,
            queue,
            queued_bytes,
            codel,
            red,
            stats,
            aqm_dropped,
            ..
        } = self;
        let mut pop = || {
            let q = queue.pop_front()?;
            *queued_bytes -= q.len as u64;
            let head = Head {
                enqueued: q.enqueued,
                ect: q.ect,
                backlog_after: *queued_bytes,
            };
            Some((q, head))
        };
        match &config.aqm {
            Aqm::CoDel(cfg) => {
                let r = codel.dequeue(cfg, now, pop, |q: Queued| {
                    stats.aqm_drops += 1;
                    if aqm_dropped.capacity() == 0 {
                        aqm_dropped.reserve(16);
                    }
                    aqm_dropped.push(q.pkt);
                });
                if let Some((_, true)) = r {
                    stats.ecn_marks += 1;
                }
                r
            }
            Aqm::Red(_) => match pop() {
                Some((q, _)) => Some((q, false)),
                None => {
                    red.start_idle(now);
                    None
                }
            },
            Aqm::None => pop().map(|(q, _)| (q, false)),
        }
    }

    /// Frames the queue discipline dropped at dequeue since the last call, for the caller
    /// to free. Empty unless the discipline is CoDel.
    pub fn drain_aqm_dropped(&mut self) -> std::vec::Drain<'_, PacketId> {
        self.aqm_dropped.drain(..)
    }

    fn lost(&mut self) -> bool {
        match self.config.loss {
            LossModel::None => false,
            LossModel::Bernoulli(p) => self.rng.chance(p),
            LossModel::GilbertElliott {
                p,
                r,
                loss_good,
                loss_bad,
            } => {
                let lost = self
                    .rng
                    .chance(if self.ge_bad { loss_bad } else { loss_good });
                let flip = self.rng.chance(if self.ge_bad { r } else { p });
                if flip {
                    self.ge_bad = !self.ge_bad;
                }
                lost
            }
        }
    }

    fn decide_fate(&mut self, now: SimTime) -> Fate {
        if self.lost() {
            self.stats.loss_drops += 1;
            return Fate::Lost;
        }
        let c = &self.config;
        let (jitter, corrupt_p, dup_p, reorder_p) = (c.jitter, c.corrupt, c.duplicate, c.reorder);
        let mut at = now + c.delay;
        if jitter.as_nanos() > 0 {
            at += SimDuration(self.rng.range_inclusive(0, jitter.as_nanos()));
        }
        // Jitter alone never reorders: a frame cannot arrive before the one sent before it.
        at = at.max(self.last_arrival);
        let corrupted = corrupt_p > 0.0 && self.rng.chance(corrupt_p);
        if corrupted {
            self.stats.corrupted += 1;
        }
        let duplicate_at = (dup_p > 0.0 && self.rng.chance(dup_p)).then_some(at);
        if duplicate_at.is_some() {
            self.stats.duplicated += 1;
        }
        if reorder_p > 0.0 && self.rng.chance(reorder_p) {
            self.stats.reordered += 1;
            // Held back; later frames may overtake it and it does not hold them back.
            let held = at + self.config.reorder_delay;
            return Fate::Arrives {
                at: held,
                corrupted,
                duplicate_at,
            };
        }
        self.last_arrival = at;
        Fate::Arrives {
            at,
            corrupted,
            duplicate_at,
        }
    }

    /// Takes the channel down at `now`: queued frames are dropped and returned so their
    /// storage can be freed; frames in flight, the one being serialized included, will be
    /// recognised by epoch when they arrive.
    pub fn set_down(&mut self, now: SimTime) -> Vec<PacketId> {
        self.up = false;
        self.epoch = self.epoch.wrapping_add(1);
        self.drop_all(now, false)
    }

    /// Drops everything queued or being serialized at `now` (the sending node crashed),
    /// keeping the link up. Returns the queued frames, to be freed; the frame cut off
    /// mid-serialization is recognised by [`Self::take_aborted`] when it would arrive.
    pub fn flush(&mut self, now: SimTime) -> Vec<PacketId> {
        self.drop_all(now, true)
    }

    fn drop_all(&mut self, now: SimTime, abort_in_service: bool) -> Vec<PacketId> {
        self.service_gen = self.service_gen.wrapping_add(1);
        if let Some(s) = self.in_service.take() {
            if s.until > now && s.arrives {
                self.stats.down_drops += 1;
                if abort_in_service {
                    self.aborted.push(s.pkt);
                    self.aborted.extend(s.copy);
                }
            }
        }
        let dropped: Vec<PacketId> = self.queue.drain(..).map(|q| q.pkt).collect();
        self.queued_bytes = 0;
        self.stats.down_drops += dropped.len() as u64;
        dropped
    }

    pub fn set_up(&mut self) {
        self.up = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aqm::{CoDelConfig, RedConfig};
    use crate::rng::RngFactory;

    fn chan(config: ChannelConfig) -> Channel {
        let f = RngFactory::new(1);
        Channel::new(config, f.stream("test"), f.stream("test:red"))
    }

    // RB-LINK-01
    #[test]
    fn back_to_back_frames_serialize_one_after_another() {
        let mut c = chan(ChannelConfig {
            rate_bps: 8_000_000, // 1 byte per microsecond
            delay: SimDuration::from_millis(10),
            ..Default::default()
        });
        assert_eq!(
            c.offer(SimTime::ZERO, PacketId(1), 1000, false),
            Offer::Transmit(Transmission {
                pkt: PacketId(1),
                duration: SimDuration::from_micros(1000),
                ce: false,
                fate: Fate::Arrives {
                    at: SimTime(11_000_000),
                    corrupted: false,
                    duplicate_at: None
                },
                wake: None
            })
        );
        // The first frame to wait asks for a wake-up when the link frees; the next does not.
        let t1 = SimTime(1_000_000);
        assert_eq!(
            c.offer(SimTime::ZERO, PacketId(2), 500, false),
            Offer::Queued {
                ce: false,
                wake: Some(t1)
            }
        );
        assert_eq!(
            c.offer(SimTime(10), PacketId(3), 500, false),
            Offer::Queued {
                ce: false,
                wake: None
            }
        );
        assert!(c.is_busy(SimTime(999_999)));
        assert_eq!(
            c.finish(t1, c.service_gen()),
            Some(Transmission {
                pkt: PacketId(2),
                duration: SimDuration::from_micros(500),
                ce: false,
                fate: Fate::Arrives {
                    at: SimTime(11_500_000),
                    corrupted: false,
                    duplicate_at: None
                },
                wake: Some(SimTime(1_500_000))
            })
        );
        let last = c.finish(SimTime(1_500_000), c.service_gen()).unwrap();
        assert_eq!((last.pkt, last.wake), (PacketId(3), None));
        // Nothing waits behind the last frame: the link is idle once it is serialized, and
        // the next frame starts at once.
        assert!(c.is_busy(SimTime(1_999_999)));
        assert!(!c.is_busy(SimTime(2_000_000)));
        assert!(matches!(
            c.offer(SimTime(2_000_000), PacketId(4), 500, false),
            Offer::Transmit(Transmission {
                pkt: PacketId(4),
                ..
            })
        ));
        // A wake-up scheduled before a flush is stale.
        c.offer(SimTime(2_000_000), PacketId(5), 500, false);
        let stale = c.service_gen();
        assert_eq!(c.flush(SimTime(2_100_000)), vec![PacketId(5)]);
        assert_eq!(c.finish(SimTime(2_500_000), stale), None);
        // The frame cut off mid-serialization must not arrive.
        assert!(c.take_aborted(PacketId(4)));
        assert!(!c.take_aborted(PacketId(4)));
    }

    /// The fate of a frame offered to an idle channel at `t`.
    fn fate_alone(c: &mut Channel, t: SimTime, pkt: u32) -> Fate {
        match c.offer(t, PacketId(pkt), 100, false) {
            Offer::Transmit(tx) => tx.fate,
            other => panic!("the channel is busy at {t:?}: {other:?}"),
        }
    }

    // RB-LINK-02
    #[test]
    fn drop_tail_holds_at_most_limit_packets() {
        let mut c = chan(ChannelConfig {
            queue: QueueLimit {
                packets: Some(3),
                bytes: None,
            },
            ..Default::default()
        });
        assert!(matches!(
            c.offer(SimTime::ZERO, PacketId(0), 100, false),
            Offer::Transmit { .. }
        ));
        for i in 1..=3 {
            assert!(matches!(
                c.offer(SimTime::ZERO, PacketId(i), 100, false),
                Offer::Queued { ce: false, .. }
            ));
        }
        assert_eq!(
            c.offer(SimTime::ZERO, PacketId(4), 100, false),
            Offer::DroppedQueueFull
        );
        assert_eq!(c.stats.queue_drops, 1);
        assert_eq!(c.queue_len(), 3);
    }

    #[test]
    fn byte_limit_counts_bytes() {
        let mut c = chan(ChannelConfig {
            queue: QueueLimit {
                packets: None,
                bytes: Some(1000),
            },
            ..Default::default()
        });
        assert!(matches!(
            c.offer(SimTime::ZERO, PacketId(0), 600, false),
            Offer::Transmit { .. }
        ));
        assert!(matches!(
            c.offer(SimTime::ZERO, PacketId(1), 600, false),
            Offer::Queued { ce: false, .. }
        ));
        assert_eq!(
            c.offer(SimTime::ZERO, PacketId(2), 600, false),
            Offer::DroppedQueueFull
        );
        assert!(matches!(
            c.offer(SimTime::ZERO, PacketId(3), 400, false),
            Offer::Queued { ce: false, .. }
        ));
    }

    // RB-LINK-03
    #[test]
    fn bernoulli_loss_rate_matches() {
        let mut c = chan(ChannelConfig {
            loss: LossModel::Bernoulli(0.1),
            ..Default::default()
        });
        let mut lost = 0;
        for i in 0..20_000 {
            if fate_alone(&mut c, SimTime(i as u64 * 1000), i) == Fate::Lost {
                lost += 1;
            }
        }
        assert!((1800..2200).contains(&lost), "lost {lost}");
        assert_eq!(c.stats.loss_drops, lost);
    }

    #[test]
    fn gilbert_elliott_losses_come_in_bursts() {
        let mut c = chan(ChannelConfig {
            loss: LossModel::GilbertElliott {
                p: 0.01,
                r: 0.2,
                loss_good: 0.0,
                loss_bad: 1.0,
            },
            ..Default::default()
        });
        let mut outcomes = Vec::new();
        for i in 0..50_000 {
            outcomes.push(fate_alone(&mut c, SimTime(i as u64 * 1000), i) == Fate::Lost);
        }
        let losses = outcomes.iter().filter(|&&l| l).count() as f64;
        let bursts = outcomes.windows(2).filter(|w| !w[0] && w[1]).count() as f64;
        // Stationary loss = p/(p+r) = 0.0476; mean burst length = 1/r = 5.
        assert!((losses / 50_000.0 - 0.0476).abs() < 0.01, "{losses}");
        assert!((losses / bursts - 5.0).abs() < 0.8, "{}", losses / bursts);
    }

    #[test]
    fn jitter_without_reordering_keeps_order_and_reorder_lets_frames_overtake() {
        let mut c = chan(ChannelConfig {
            delay: SimDuration::from_millis(5),
            jitter: SimDuration::from_millis(4),
            ..Default::default()
        });
        let mut last = SimTime::ZERO;
        for i in 0..1000 {
            if let Fate::Arrives { at, .. } = fate_alone(&mut c, SimTime(i as u64 * 1000), i) {
                assert!(at >= last);
                last = at;
            }
        }
        let mut c = chan(ChannelConfig {
            delay: SimDuration::from_millis(1),
            reorder: 0.5,
            reorder_delay: SimDuration::from_millis(10),
            ..Default::default()
        });
        let arrivals: Vec<SimTime> = (0..100)
            .map(|i| match fate_alone(&mut c, SimTime(i as u64 * 1000), i) {
                Fate::Arrives { at, .. } => at,
                Fate::Lost => unreachable!(),
            })
            .collect();
        assert!(
            arrivals.windows(2).any(|w| w[1] < w[0]),
            "some frame overtakes another"
        );
    }

    // RB-LINK-04
    #[test]
    fn down_link_drops_queue_and_refuses_frames() {
        let mut c = chan(ChannelConfig::default());
        c.offer(SimTime::ZERO, PacketId(0), 100, false);
        c.offer(SimTime::ZERO, PacketId(1), 100, false);
        // The queued frame is returned to be freed; the one being serialized is in flight
        // and recognised by the epoch when it would arrive.
        let dropped = c.set_down(SimTime::ZERO);
        assert_eq!(dropped, vec![PacketId(1)]);
        assert_eq!(c.stats.down_drops, 2);
        assert!(!c.take_aborted(PacketId(0)));
        assert_eq!(
            c.offer(SimTime::ZERO, PacketId(2), 100, false),
            Offer::DroppedDown
        );
        assert_eq!(c.epoch(), 1);
        c.set_up();
        assert!(matches!(
            c.offer(SimTime::ZERO, PacketId(3), 100, false),
            Offer::Transmit { .. }
        ));
    }

    fn ms(x: u64) -> SimTime {
        SimTime(x * 1_000_000)
    }

    /// 8 Mbit/s, so a 1000-byte frame takes exactly 1 ms; room for 5000 frames.
    fn aqm_chan(aqm: Aqm) -> Channel {
        chan(ChannelConfig {
            rate_bps: 8_000_000,
            queue: QueueLimit {
                packets: Some(5000),
                bytes: None,
            },
            aqm,
            ..Default::default()
        })
    }

    fn red(f: impl FnOnce(&mut RedConfig)) -> Aqm {
        let mut cfg = RedConfig::default();
        f(&mut cfg);
        Aqm::Red(cfg)
    }

    // RB-LINK-05
    #[test]
    fn red_average_follows_the_ewma_and_decays_over_idle_time() {
        let w = 0.25;
        let mut c = aqm_chan(red(|r| {
            r.min_th = 1000;
            r.max_th = 2000;
            r.weight = w;
        }));
        // Each arrival moves the average towards the frames it finds waiting.
        let mut avg = 0.0;
        for i in 0..10u32 {
            let waiting = c.queue_len() as f64;
            c.offer(SimTime::ZERO, PacketId(i), 1000, false);
            avg = (1.0 - w) * avg + w * waiting;
            assert_eq!(c.red_average(), avg, "after frame {i}");
        }
        assert!(avg > 3.0);
        // Serving frames does not move it; the last frame leaves the queue empty at 10 ms.
        for k in 1..=9 {
            c.finish(ms(k), c.service_gen()).unwrap();
        }
        assert_eq!(c.red_average(), avg);
        // 37.5 ms idle = 37 slots of an avpkt (1000-byte) frame: (1 - w)^37.
        c.offer(SimTime(47_500_000), PacketId(10), 1000, false);
        let decayed = avg * (1.0 - w).powi(37);
        assert!((c.red_average() - decayed).abs() < 1e-12 * avg);
        // The next arrival, with the link busy, is an ordinary sample again.
        c.offer(SimTime(47_600_000), PacketId(11), 1000, false);
        assert!((c.red_average() - (1.0 - w) * decayed).abs() < 1e-12 * avg);
    }

    // RB-LINK-05
    #[test]
    fn red_marks_ecn_capable_frames_instead_of_dropping_them() {
        // w = 1: the average is the backlog each frame finds. A negligible max_p keeps the
        // region between the thresholds quiet; from max_th (4 waiting) RED acts on all.
        let mut c = aqm_chan(red(|r| {
            r.min_th = 2;
            r.max_th = 4;
            r.max_p = 1e-12;
            r.weight = 1.0;
            r.gentle = false;
            r.ecn = true;
        }));
        c.config.queue.packets = Some(8);
        for i in 0..5 {
            assert!(
                !matches!(
                    c.offer(SimTime::ZERO, PacketId(i), 1000, true),
                    Offer::Queued { ce: true, .. } | Offer::Transmit(Transmission { ce: true, .. })
                ),
                "frame {i}"
            );
        }
        assert_eq!(c.queue_len(), 4);
        // Not ECN-capable: dropped early.
        assert_eq!(
            c.offer(SimTime::ZERO, PacketId(5), 1000, false),
            Offer::DroppedAqm
        );
        // ECN-capable: marked and queued, up to the hard limit, which still drops.
        for i in 6..10 {
            assert!(matches!(
                c.offer(SimTime::ZERO, PacketId(i), 1000, true),
                Offer::Queued { ce: true, .. }
            ));
        }
        assert_eq!(
            c.offer(SimTime::ZERO, PacketId(10), 1000, true),
            Offer::DroppedQueueFull
        );
        assert_eq!(c.stats.aqm_drops, 1);
        assert_eq!(c.stats.ecn_marks, 4);
        assert_eq!(c.stats.queue_drops, 1);
        // Without `ecn`, ECN-capable frames are dropped like any other.
        let mut c = aqm_chan(red(|r| {
            r.min_th = 2;
            r.max_th = 4;
            r.max_p = 1e-12;
            r.weight = 1.0;
            r.gentle = false;
        }));
        for i in 0..5 {
            c.offer(SimTime::ZERO, PacketId(i), 1000, true);
        }
        assert_eq!(
            c.offer(SimTime::ZERO, PacketId(5), 1000, true),
            Offer::DroppedAqm
        );
        assert_eq!(c.stats.ecn_marks, 0);
    }

    // RB-LINK-05
    #[test]
    fn red_byte_mode_measures_waiting_bytes() {
        let cfg = |bytes| {
            red(move |r| {
                r.min_th = 3000;
                r.max_th = 6000;
                r.max_p = 1e-12;
                r.weight = 1.0;
                r.gentle = false;
                r.bytes = bytes;
            })
        };
        // Frames of 1500 bytes find 0, 0, 1500, ..., 4500 bytes waiting; the next finds
        // 6000 = max_th and is dropped.
        let mut c = aqm_chan(cfg(true));
        for i in 0..5 {
            assert_ne!(
                c.offer(SimTime::ZERO, PacketId(i), 1500, false),
                Offer::DroppedAqm
            );
        }
        assert_eq!(c.red_average(), 4500.0);
        assert_eq!(
            c.offer(SimTime::ZERO, PacketId(5), 1500, false),
            Offer::DroppedAqm
        );
        // In packet mode the same thresholds are thousands of packets away.
        let mut c = aqm_chan(cfg(false));
        for i in 0..10 {
            assert_ne!(
                c.offer(SimTime::ZERO, PacketId(i), 1500, false),
                Offer::DroppedAqm
            );
        }
        assert_eq!(c.stats.aqm_drops, 0);
    }

    // RB-LINK-05
    #[test]
    fn red_draws_from_its_own_stream_and_leaves_impairment_draws_alone() {
        // The n-th frame served meets the n-th loss draw, whether or not RED (drawing in
        // its probabilistic region) dropped frames before it.
        let fates = |aqm: Aqm| {
            let mut c = chan(ChannelConfig {
                loss: LossModel::Bernoulli(0.3),
                ..Default::default()
            });
            c.config.aqm = aqm;
            let mut fates = Vec::new();
            let mut t = SimTime::ZERO;
            for i in 0..2000u32 {
                // Keep 20 frames waiting: RED's average sits between its thresholds.
                while c.queue_len() < 20 {
                    if let Offer::Transmit(tx) = c.offer(t, PacketId(i), 100, false) {
                        fates.push(tx.fate == Fate::Lost);
                    }
                }
                // 100 bytes at 1 Gb/s.
                t += SimDuration(800);
                if let Some(tx) = c.finish(t, c.service_gen()) {
                    fates.push(tx.fate == Fate::Lost);
                }
            }
            (fates, c.stats.aqm_drops)
        };
        let (plain, none) = fates(Aqm::None);
        let (red, drops) = fates(red(|r| {
            r.min_th = 10;
            r.max_th = 30;
            r.max_p = 0.5;
            r.weight = 1.0;
        }));
        assert_eq!(none, 0);
        assert!(drops > 100, "{drops}");
        assert_eq!(plain, red);
    }

    fn codel(ecn: bool) -> Aqm {
        Aqm::CoDel(CoDelConfig {
            ecn,
            ..Default::default()
        })
    }

    /// (time, packet) of each frame CoDel dropped or marked.
    type Events = Vec<(SimTime, PacketId)>;

    /// Serves frames back to back from 1 ms until `end`, returning the frames CoDel
    /// dropped and those it marked.
    fn serve(c: &mut Channel, end: SimTime) -> (Events, Events) {
        let (mut drops, mut marks) = (Vec::new(), Vec::new());
        let mut t = ms(1);
        while t <= end {
            let next = c.finish(t, c.service_gen());
            drops.extend(c.drain_aqm_dropped().map(|p| (t, p)));
            let next = next.expect("the queue never runs dry here");
            if next.ce {
                marks.push((t, next.pkt));
            }
            assert_eq!(next.duration, SimDuration::from_millis(1));
            t += next.duration;
        }
        (drops, marks)
    }

    /// CoDel's drop times for a queue that stays long from `first` on, dequeued every
    /// millisecond: the control law's instants, rounded up to the next dequeue.
    fn codel_schedule(first: SimTime, end: SimTime) -> Vec<SimTime> {
        let interval = SimDuration::from_millis(100);
        let mut v = vec![first];
        let (mut due, mut count) = (crate::aqm::control_law(first, interval, 1), 1);
        loop {
            let at = ms(due.0.div_ceil(1_000_000));
            if at > end {
                return v;
            }
            v.push(at);
            count += 1;
            due = crate::aqm::control_law(due, interval, count);
        }
    }

    // RB-LINK-06
    #[test]
    fn codel_drops_at_dequeue_at_the_control_law_times() {
        // 1000 frames at t = 0: the frame dequeued at k ms has waited k ms. At 5 ms the
        // sojourn time reaches target; an interval later, at 105 ms, CoDel drops the head
        // (frame 105) and sends the next one instead.
        let mut c = aqm_chan(codel(false));
        for i in 0..1000 {
            c.offer(SimTime::ZERO, PacketId(i), 1000, false);
        }
        let (drops, marks) = serve(&mut c, ms(600));
        let expected = codel_schedule(ms(105), ms(600));
        assert_eq!(
            expected[..4],
            [ms(105), ms(205), ms(276), ms(334)],
            "205 + 70.71, 275.71 + 57.74"
        );
        assert_eq!(drops.iter().map(|d| d.0).collect::<Vec<_>>(), expected);
        assert_eq!(drops[0].1, PacketId(105));
        assert!(marks.is_empty());
        assert_eq!(c.stats.aqm_drops, expected.len() as u64);
        assert_eq!(c.stats.queue_drops, 0);
        assert!(c.codel().dropping());
    }

    // RB-LINK-06
    #[test]
    fn codel_marks_ecn_capable_frames_at_the_drop_times() {
        let mut c = aqm_chan(codel(true));
        for i in 0..1000 {
            c.offer(SimTime::ZERO, PacketId(i), 1000, true);
        }
        let (drops, marks) = serve(&mut c, ms(600));
        assert!(drops.is_empty());
        let expected = codel_schedule(ms(105), ms(600));
        assert_eq!(marks.iter().map(|m| m.0).collect::<Vec<_>>(), expected);
        assert_eq!(marks[0].1, PacketId(105));
        assert_eq!(c.stats.ecn_marks, expected.len() as u64);
        assert_eq!(c.stats.aqm_drops, 0);
        // With `ecn`, frames that are not ECN-capable are still dropped.
        let mut c = aqm_chan(codel(true));
        for i in 0..1000 {
            c.offer(SimTime::ZERO, PacketId(i), 1000, false);
        }
        let (drops, marks) = serve(&mut c, ms(600));
        assert!(marks.is_empty());
        assert_eq!(drops.len(), expected.len());
    }

    // RB-LINK-06
    #[test]
    fn codel_leaves_a_standing_queue_below_target_alone() {
        // One arrival per millisecond, one departure per millisecond, `waiting` frames in
        // the queue: each frame waits `waiting` ms.
        let run = |waiting: u32| {
            let mut c = aqm_chan(codel(false));
            for i in 0..=waiting {
                c.offer(SimTime::ZERO, PacketId(i), 1000, false);
            }
            let mut drops = Vec::new();
            for k in 1..=3000 {
                c.finish(ms(k), c.service_gen()).unwrap();
                drops.extend(c.drain_aqm_dropped().map(|_| ms(k)));
                c.offer(ms(k), PacketId(waiting + k as u32), 1000, false);
            }
            (drops, c)
        };
        // 4 ms < target: never a drop.
        let (drops, c) = run(4);
        assert!(drops.is_empty());
        assert_eq!(c.queue_len(), 4);
        // 5 ms = target counts as above. From 5 ms the head has waited 5 ms, so one
        // interval later (105 ms) CoDel drops; the queue is then 4 ms long, below target,
        // and CoDel leaves the dropping state at the next dequeue.
        let (drops, c) = run(5);
        assert_eq!(drops, vec![ms(105)]);
        assert!(!c.codel().dropping());
        assert_eq!(c.queue_len(), 4);
    }
}

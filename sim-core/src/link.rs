//! Links: full-duplex, each direction an independent [`Channel`] with a queue, a
//! serializer, a propagation delay and netem-style impairments.
//!
//! Owns queueing, serialization timing, impairment decisions and link statistics. It does
//! not own packets (it handles [`PacketId`]s and lengths) nor schedule events: the world
//! asks it what happens and schedules accordingly, so a channel can be driven in a unit test.
//!
//! Timing (RB-LINK-01): a frame of S bytes (its Ethernet wire length) whose transmission
//! starts at t finishes serializing at t + S*8/R and arrives at t + S*8/R + D (+ jitter).
//! Frames are serialized one after another; a frame waits in the queue while another is
//! being serialized. Impairments are applied when a frame finishes serializing, so a lost
//! frame still used the link.

use crate::rng::SimRng;
use crate::time::{SimDuration, SimTime};
use std::collections::VecDeque;

/// Index of a packet in the world's packet store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketId(pub u32);

/// Which packets a queue holds at most. Counts exclude the frame being serialized.
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
    pub queue_drops: u64,
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
    /// The channel was idle: serialization starts now and ends after this long.
    Transmit(SimDuration),
    Queued,
    DroppedQueueFull,
    DroppedDown,
}

/// The next frame to serialize and how long it takes.
pub type NextFrame = (PacketId, SimDuration);

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

/// One direction of a link.
pub struct Channel {
    pub config: ChannelConfig,
    pub stats: ChannelStats,
    queue: VecDeque<(PacketId, u32)>,
    queued_bytes: u64,
    in_service: Option<(PacketId, u32)>,
    up: bool,
    /// Bumped when the link goes down, so frames in flight can be recognised as lost.
    epoch: u32,
    last_arrival: SimTime,
    ge_bad: bool,
    rng: SimRng,
    /// The last serialization time computed, as (wire length, rate, time): frames of one
    /// size follow each other, and the exact computation divides in 128 bits.
    serialization_cache: (u32, u64, SimDuration),
}

impl Channel {
    pub fn new(config: ChannelConfig, rng: SimRng) -> Self {
        Channel {
            config,
            stats: ChannelStats::default(),
            queue: VecDeque::with_capacity(64),
            queued_bytes: 0,
            in_service: None,
            up: true,
            epoch: 0,
            last_arrival: SimTime::ZERO,
            ge_bad: false,
            rng,
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
    pub fn is_busy(&self) -> bool {
        self.in_service.is_some()
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

    fn start(&mut self, pkt: PacketId, wire_len: u32) -> SimDuration {
        let d = self.serialization(wire_len);
        self.in_service = Some((pkt, wire_len));
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += wire_len as u64;
        self.stats.busy_ns = self.stats.busy_ns.saturating_add(d.as_nanos());
        d
    }

    /// Offers a frame of `wire_len` bytes (RB-LINK-02 drop-tail admission).
    pub fn offer(&mut self, pkt: PacketId, wire_len: u32) -> Offer {
        if !self.up {
            self.stats.down_drops += 1;
            return Offer::DroppedDown;
        }
        if self.in_service.is_none() {
            return Offer::Transmit(self.start(pkt, wire_len));
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
        self.queue.push_back((pkt, wire_len));
        self.queued_bytes += wire_len as u64;
        self.stats.max_queue_packets = self.stats.max_queue_packets.max(self.queue.len() as u64);
        Offer::Queued
    }

    /// The frame in service has been serialized at `now`. Returns it with its fate, and the
    /// next frame to serialize with its serialization time, if any.
    pub fn finish(&mut self, now: SimTime) -> Option<(PacketId, Fate, Option<NextFrame>)> {
        let (pkt, _) = self.in_service.take()?;
        let fate = self.decide_fate(now);
        let next = self.queue.pop_front().map(|(p, len)| {
            self.queued_bytes -= len as u64;
            (p, self.start(p, len))
        });
        Some((pkt, fate, next))
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

    /// Takes the channel down: queued frames and the frame in service are dropped and
    /// returned so their storage can be freed; frames in flight will be recognised by epoch.
    pub fn set_down(&mut self) -> Vec<PacketId> {
        self.up = false;
        self.epoch = self.epoch.wrapping_add(1);
        self.flush()
    }

    /// Drops everything queued or in service (the sending node crashed), keeping the link up.
    pub fn flush(&mut self) -> Vec<PacketId> {
        let mut dropped: Vec<PacketId> =
            self.in_service.take().map(|(p, _)| p).into_iter().collect();
        dropped.extend(self.queue.drain(..).map(|(p, _)| p));
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
    use crate::rng::RngFactory;

    fn chan(config: ChannelConfig) -> Channel {
        Channel::new(config, RngFactory::new(1).stream("test"))
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
            c.offer(PacketId(1), 1000),
            Offer::Transmit(SimDuration::from_micros(1000))
        );
        assert_eq!(c.offer(PacketId(2), 500), Offer::Queued);
        let t1 = SimTime(1_000_000);
        let (p, fate, next) = c.finish(t1).unwrap();
        assert_eq!(p, PacketId(1));
        assert_eq!(
            fate,
            Fate::Arrives {
                at: SimTime(11_000_000),
                corrupted: false,
                duplicate_at: None
            }
        );
        assert_eq!(next, Some((PacketId(2), SimDuration::from_micros(500))));
        let (_, fate, next) = c.finish(SimTime(1_500_000)).unwrap();
        assert_eq!(
            fate,
            Fate::Arrives {
                at: SimTime(11_500_000),
                corrupted: false,
                duplicate_at: None
            }
        );
        assert_eq!(next, None);
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
        assert!(matches!(c.offer(PacketId(0), 100), Offer::Transmit(_)));
        for i in 1..=3 {
            assert_eq!(c.offer(PacketId(i), 100), Offer::Queued);
        }
        assert_eq!(c.offer(PacketId(4), 100), Offer::DroppedQueueFull);
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
        assert!(matches!(c.offer(PacketId(0), 600), Offer::Transmit(_)));
        assert_eq!(c.offer(PacketId(1), 600), Offer::Queued);
        assert_eq!(c.offer(PacketId(2), 600), Offer::DroppedQueueFull);
        assert_eq!(c.offer(PacketId(3), 400), Offer::Queued);
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
            c.offer(PacketId(i), 100);
            if c.finish(SimTime(i as u64)).unwrap().1 == Fate::Lost {
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
            c.offer(PacketId(i), 100);
            outcomes.push(c.finish(SimTime(i as u64)).unwrap().1 == Fate::Lost);
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
            c.offer(PacketId(i), 100);
            if let Fate::Arrives { at, .. } = c.finish(SimTime(i as u64 * 1000)).unwrap().1 {
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
            .map(|i| {
                c.offer(PacketId(i), 100);
                match c.finish(SimTime(i as u64 * 1000)).unwrap().1 {
                    Fate::Arrives { at, .. } => at,
                    Fate::Lost => unreachable!(),
                }
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
        c.offer(PacketId(0), 100);
        c.offer(PacketId(1), 100);
        let dropped = c.set_down();
        assert_eq!(dropped, vec![PacketId(0), PacketId(1)]);
        assert_eq!(c.offer(PacketId(2), 100), Offer::DroppedDown);
        assert_eq!(c.epoch(), 1);
        c.set_up();
        assert!(matches!(c.offer(PacketId(3), 100), Offer::Transmit(_)));
    }
}

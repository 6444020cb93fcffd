//! Congestion control: the controller trait, what a controller is told on each ACK, and
//! the registry that maps names (`tcp_congestion_control`, an app's `cc`) to controllers.
//!
//! The connection owns the window variables (as Linux's `tcp_sock` does) and loss
//! detection. It calls the controller at the moments Linux calls `tcp_congestion_ops`:
//! - [`CongestionControl::on_ack`] on every ACK that acknowledges new data, cumulatively
//!   or by SACK, with an [`AckSample`]: bytes delivered, the RTT sample, bytes in flight,
//!   whether the window was the limit, the loss-recovery state, and a delivery-rate
//!   sample ([`RateSample`], Linux `tcp_rate.c`);
//! - [`CongestionControl::ssthresh`] when a loss is detected (fast recovery or RTO);
//! - [`CongestionControl::on_event`] when recovery starts or ends, after an RTO, and when
//!   transmission starts again after an idle period;
//! - [`CongestionControl::on_ack_event`] on every ACK, in every state, before loss
//!   detection reacts to it (Linux `in_ack_event`), with an [`AckEvent`]: where the
//!   stream's edges are, what was delivered and how much of it by ACKs carrying ECE.
//!
//! Controllers that judge the loss or ECN rate of each flight (BBRv3) also get, in
//! [`AckSample::flight`], the state of the newest segment an ACK delivered as it was when
//! sent ([`FlightSample`], Linux `rate_sample.tx_in_flight` and `lost`), and hear of each
//! segment marked lost through [`CongestionControl::on_segment_lost`] (Linux
//! `skb_marked_lost`). A controller with a state machine names its current state with
//! [`CongestionControl::phase`]; the connection traces each change (`tcp_cc_state`).
//!
//! ECN (RFC 3168, negotiated per the host's `tcp_ecn`): an ACK with ECE puts the
//! connection in the CWR state once per window of data, as Linux does: the controller's
//! `ssthresh` is the new target, PRR walks the window down to it, and
//! [`CcEvent::EnterCwr`]/[`CcEvent::ExitCwr`] bracket the episode. A controller sees ECE
//! in each [`AckSample`] and [`AckEvent`]; one whose [`CongestionControl::ecn_mode`] is
//! [`EcnMode::Dctcp`] has ECN negotiated whatever `tcp_ecn` says and gets DCTCP's
//! receiver echo (see [`EcnMode`]).
//!
//! Window-based controllers (Reno, CUBIC) grow the window in `on_ack` while the
//! connection is not recovering; during fast recovery the connection applies Proportional
//! Rate Reduction (RFC 6937) and after an RTO restarts from one segment above what is in
//! flight, so they all get Linux's recovery. A controller that returns true from
//! [`CongestionControl::controls_window`] (BBR, Linux's `cong_control`) is called on every
//! ACK in every state and sets the window itself. A controller may ask for pacing with
//! [`CongestionControl::pacing_rate`]; the connection then spaces its segments so
//! (fq-style, per connection).
//!
//! Users add their own controllers with [`register`]; scenario files name them like the
//! built-in ones. All quantities are bytes, times are simulated.

mod bbr;
mod bbr3;
mod cubic;
mod dctcp;
mod reno;
mod vegas;

pub use bbr::{Bbr, BbrMode};
pub use bbr3::{Bbr3, Bbr3State};
pub use cubic::{Cubic, HystartMode};
pub use dctcp::Dctcp;
pub use reno::{NewReno, Reno, RenoFamily};
pub use vegas::{Vegas, VegasParams};

use sim_core::time::{SimDuration, SimTime};
use std::collections::BTreeMap;
use std::sync::{OnceLock, RwLock};

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

/// Loss-recovery state (Linux's `icsk_ca_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaState {
    /// Nothing is missing.
    Open,
    /// Duplicate ACKs or SACKs arrived, but nothing is deemed lost yet.
    Disorder,
    /// The window is being reduced once after an ECN-Echo (RFC 3168), until an ACK covers
    /// data sent after the reduction began.
    Cwr,
    /// Fast recovery after a loss.
    Recovery,
    /// After a retransmission timeout.
    Loss,
}

impl CaState {
    pub fn name(self) -> &'static str {
        match self {
            CaState::Open => "open",
            CaState::Disorder => "disorder",
            CaState::Cwr => "cwr",
            CaState::Recovery => "recovery",
            CaState::Loss => "loss",
        }
    }
}

/// A delivery-rate sample (Linux `struct rate_sample`, draft-cheng-iccrg-delivery-rate-
/// estimation): how much was delivered over which interval, measured from the most
/// recently sent segment this ACK covered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSample {
    /// Bytes delivered during `interval`.
    pub delivered: u64,
    /// The longer of the send and the ACK intervals of the sampled flight.
    pub interval: SimDuration,
    /// The connection's delivered count when the sampled segment was sent.
    pub prior_delivered: u64,
    /// The RTT of the sampled segment (not Karn-filtered: it is the newest one sent).
    pub rtt: SimDuration,
    /// The sender was application-limited when the segment was sent, so the rate is a
    /// lower bound of what the path can do.
    pub is_app_limited: bool,
}

impl RateSample {
    /// Delivery rate in bytes per second.
    pub fn bytes_per_sec(&self) -> u64 {
        let ns = self.interval.as_nanos().max(1) as u128;
        (self.delivered as u128 * 1_000_000_000 / ns) as u64
    }
}

/// The newest segment an ACK delivered, as it was when it was (last) sent, and what
/// happened between then and this ACK (Linux `rate_sample` fields `tx_in_flight`,
/// `lost`, `delivered`, `delivered_ce`; draft-ietf-ccwg-bbr's RS.tx_in_flight and
/// RS.lost): the loss and ECN-mark rates of the flight it belonged to. Present whenever
/// the ACK delivered a segment, even when no delivery-rate sample could be made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlightSample {
    /// Bytes in flight just after it was sent, itself included.
    pub tx_in_flight: u64,
    /// Bytes marked lost after it was sent, up to this ACK's loss detection (excluded).
    pub lost: u64,
    /// Bytes delivered after it was sent, this ACK included (Linux `rs->delivered`).
    pub delivered: u64,
    /// The part of `delivered` that ACKs carrying ECE delivered.
    pub delivered_ce: u64,
    /// The connection's delivered count when it was sent.
    pub prior_delivered: u64,
    /// It was sent while the sender was application-limited.
    pub is_app_limited: bool,
    /// Its RTT, unless it was ever retransmitted (then ambiguous).
    pub rtt: Option<SimDuration>,
}

/// A segment the connection just marked lost, as it was when it was (last) sent (Linux
/// `skb_marked_lost` reading the segment's `tx` state; draft-ietf-ccwg-bbr
/// HandleLostPacket).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LostSegment {
    pub now: SimTime,
    /// Its length in bytes.
    pub len: u64,
    /// Bytes in flight just after it was sent, itself included.
    pub tx_in_flight: u64,
    /// Bytes marked lost since it was sent, itself included.
    pub lost: u64,
    /// It was sent while the sender was application-limited.
    pub is_app_limited: bool,
    /// Everything the connection has delivered so far, the ACK being processed included.
    pub delivered: u64,
}

/// One ACK's news, as a controller needs it.
#[derive(Clone, Copy, Debug)]
pub struct AckSample {
    pub now: SimTime,
    /// Bytes newly acknowledged, cumulatively or by SACK.
    pub acked: u64,
    /// Bytes newly deemed lost while processing this ACK.
    pub lost: u64,
    /// Bytes deemed lost so far, however found: while processing ACKs, by RACK's
    /// reordering timer or by an RTO (Linux `tp->lost`).
    pub lost_total: u64,
    /// The RTT sample this ACK gave, if any (Karn's rule applied).
    pub rtt: Option<SimDuration>,
    /// The connection's minimum RTT and smoothed RTT so far.
    pub min_rtt: Option<SimDuration>,
    pub srtt: Option<SimDuration>,
    /// Bytes in flight before and after this ACK.
    pub prior_in_flight: u64,
    pub in_flight: u64,
    /// Everything the connection has delivered so far (bytes).
    pub delivered: u64,
    /// Whether the sender was limited by the congestion window (not by the application or
    /// the receiver): Linux's `tcp_is_cwnd_limited`.
    pub cwnd_limited: bool,
    pub ca_state: CaState,
    /// Delivery-rate sample; `None` when this ACK delivered nothing measurable.
    pub rate: Option<RateSample>,
    /// The ACK carried ECN-Echo (ECN was negotiated): the receiver saw congestion marks.
    pub ece: bool,
    /// The part of `delivered` that ACKs carrying ECE delivered (Linux `delivered_ce`, in
    /// bytes).
    pub delivered_ce: u64,
    /// The newest segment this ACK delivered, as sent; `None` when it delivered none.
    pub flight: Option<FlightSample>,
}

/// What every ACK reports, before loss detection and the window react to it (Linux's
/// `in_ack_event`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckEvent {
    pub now: SimTime,
    /// Stream positions, counted in bytes from the start of the connection (they never
    /// wrap): the first byte not yet acknowledged, after this ACK, and the next byte to
    /// be sent. Compare them with each other to delimit windows of data.
    pub snd_una: u64,
    pub snd_nxt: u64,
    /// Bytes delivered so far, this ACK included, and the part of them delivered by ACKs
    /// carrying ECE (Linux `delivered`, `delivered_ce`).
    pub delivered: u64,
    pub delivered_ce: u64,
    /// This ACK carried ECN-Echo.
    pub ece: bool,
    /// The RTT of the most recently sent segment this ACK delivered, cumulatively or by
    /// SACK, unless it was ever retransmitted (Linux `ca_rtt_us`, what `pkts_acked`
    /// gets): less inflated by delayed ACKs than the Karn sample of the oldest one.
    pub rtt: Option<SimDuration>,
}

/// How a controller uses ECN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EcnMode {
    /// As the host's `tcp_ecn` says; once negotiated, RFC 3168: the receiver echoes ECE
    /// from the first CE mark until the sender's CWR, and the sender reduces its window
    /// once per window of data.
    #[default]
    Classic,
    /// DCTCP's (RFC 8257, Linux `TCP_CONG_NEEDS_ECN` with `dctcp_ece_ack_update`): ECN is
    /// requested and accepted whatever `tcp_ecn` says, every segment carries ECT(0), and
    /// the receiver echoes the CE state of each data segment, ACKing at once when that
    /// state changes (first the data before the change with the old state). If the peer
    /// does not agree to ECN the controller learns it from [`ConnStart::ecn`].
    Dctcp,
}

/// What a controller learns when its connection is established.
#[derive(Clone, Copy, Debug)]
pub struct ConnStart {
    pub now: SimTime,
    /// A per-connection value from the run's seeded randomness, for controllers that make
    /// random choices (BBR's ProbeBW phase): connections never share it by accident, and
    /// the same seed gives the same run.
    pub seed: u64,
    /// The handshake's RTT sample, if there was one.
    pub srtt: Option<SimDuration>,
    /// ECN was negotiated with the peer.
    pub ecn: bool,
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
    /// Transmission restarts after an idle period (the window was already reduced, Linux
    /// `tcp_cwnd_restart`).
    IdleRestart,
    /// The first transmission with nothing in flight (Linux `CA_EVENT_TX_START`).
    TxStart,
    /// An ECN-Echo started a window reduction (after ssthresh was taken): the CWR state.
    EnterCwr,
    /// The reduction ended, with the window at ssthresh (Linux `CA_EVENT_COMPLETE_CWR`).
    ExitCwr,
}

/// A congestion controller. See the module documentation for when each method is called.
pub trait CongestionControl: std::fmt::Debug {
    /// The name scenario files use.
    fn name(&self) -> &'static str;
    /// Called once when the connection is established, with the initial window set.
    fn init(&mut self, _w: &mut Window, _conn: &ConnStart) {}
    /// An ACK acknowledged new data.
    fn on_ack(&mut self, w: &mut Window, ack: &AckSample);
    /// Every ACK, in every state, before loss detection and the window react to it
    /// (Linux `in_ack_event`): for estimates made from each ACK, such as DCTCP's fraction
    /// of ECE-marked bytes, which the reduction that may follow already uses.
    fn on_ack_event(&mut self, _ev: &AckEvent) {}
    /// The slow-start threshold to use after a loss (fast recovery or RTO).
    fn ssthresh(&mut self, w: &Window, in_flight: u64) -> u64;
    fn on_event(&mut self, _w: &mut Window, _ev: CcEvent) {}
    /// True for controllers that set the window in every state (BBR): the connection then
    /// calls `on_ack` on every ACK that finds data outstanding (as Linux calls
    /// `cong_control`), during recovery too, and does not apply PRR.
    fn controls_window(&self) -> bool {
        false
    }
    /// The pacing rate in payload bytes per second, if this controller paces (the
    /// connection charges each segment's payload, as Linux's internal pacing does).
    fn pacing_rate(&self) -> Option<u64> {
        None
    }
    /// The fewest segments in a GSO burst (Linux `min_tso_segs`), if the controller
    /// chooses; else the connection uses `tcp_min_tso_segs`.
    fn min_tso_segs(&self) -> Option<u32> {
        None
    }
    /// Reno (RFC 5681): without SACK, the first ACK of new data ends fast recovery.
    /// NewReno and everything after it (RFC 6582) wait for the whole flight.
    fn partial_ack_ends_recovery(&self) -> bool {
        false
    }
    /// How this controller uses ECN (see [`EcnMode`]).
    fn ecn_mode(&self) -> EcnMode {
        EcnMode::Classic
    }
    /// How many congestion windows of data the send buffer grows to hold (Linux
    /// `sndbuf_expand`; 2 unless the controller needs more, as BBR's pacing gains do).
    fn sndbuf_windows(&self) -> u64 {
        2
    }
    /// The connection marked a segment lost (fast recovery, RACK, an RTO), before the
    /// ACK or timer that found it reaches the controller (Linux `skb_marked_lost`).
    fn on_segment_lost(&mut self, _seg: &LostSegment) {}
    /// The controller's state-machine state, if it has one worth tracing (BBRv3's
    /// `probe_bw_up`, ...): the connection traces each change as `tcp_cc_state`.
    fn phase(&self) -> Option<&'static str> {
        None
    }
}

/// A controller's name as a socket option holds it: at most 16 bytes, as Linux's
/// `TCP_CA_NAME_MAX`, so that socket options stay `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CcName {
    bytes: [u8; 16],
    len: u8,
}

impl CcName {
    /// `None` when `name` is longer than 16 bytes.
    pub fn new(name: &str) -> Option<CcName> {
        let b = name.as_bytes();
        if b.len() > 16 {
            return None;
        }
        let mut bytes = [0; 16];
        bytes[..b.len()].copy_from_slice(b);
        Some(CcName {
            bytes,
            len: b.len() as u8,
        })
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl std::fmt::Debug for CcName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Builds a fresh controller.
pub type Factory = fn() -> Box<dyn CongestionControl>;

fn registry() -> &'static RwLock<BTreeMap<String, Factory>> {
    static REGISTRY: OnceLock<RwLock<BTreeMap<String, Factory>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut m: BTreeMap<String, Factory> = BTreeMap::new();
        m.insert("reno".into(), || Box::new(Reno::default()));
        m.insert("newreno".into(), || Box::new(NewReno::default()));
        m.insert("bbr".into(), || Box::new(Bbr::default()));
        m.insert("bbr3".into(), || Box::new(Bbr3::default()));
        m.insert("cubic".into(), || Box::new(Cubic::default()));
        m.insert("dctcp".into(), || Box::new(Dctcp::default()));
        m.insert("vegas".into(), || Box::new(Vegas::default()));
        RwLock::new(m)
    })
}

/// Makes a controller available by `name` to scenario files and sockets, replacing any
/// earlier one of that name. Register before loading the scenarios that use it.
pub fn register(name: &str, factory: Factory) {
    let mut r = registry().write().unwrap_or_else(|e| e.into_inner());
    r.insert(name.to_string(), factory);
}

/// Builds the controller registered as `name`.
pub fn by_name(name: &str) -> Option<Box<dyn CongestionControl>> {
    let r = registry().read().unwrap_or_else(|e| e.into_inner());
    r.get(name).map(|f| f())
}

/// The registered names, sorted.
pub fn names() -> Vec<String> {
    let r = registry().read().unwrap_or_else(|e| e.into_inner());
    r.keys().cloned().collect()
}

/// For controller unit tests: an ACK of `acked` bytes in the Open state, window-limited,
/// with no RTT, rate or ECN information.
#[cfg(test)]
pub(crate) fn open_ack(acked: u64) -> AckSample {
    AckSample {
        now: SimTime::ZERO,
        acked,
        lost: 0,
        lost_total: 0,
        rtt: None,
        min_rtt: None,
        srtt: None,
        prior_in_flight: 0,
        in_flight: 0,
        delivered: 0,
        cwnd_limited: true,
        ca_state: CaState::Open,
        rate: None,
        ece: false,
        delivered_ce: 0,
        flight: None,
    }
}

//! One TCP connection: the RFC 9293 state machine with Linux's timers and defaults.
//!
//! Owns: sequence-space bookkeeping, the retransmission queue and SACK scoreboard, loss
//! recovery (RFC 6675 with SACK, RFC 6582 NewReno without; Proportional Rate Reduction as
//! Linux does), the ECN window reduction (Linux's CWR state; the ECN flags themselves are
//! `ecn`'s), the RTO, delayed ACKs, flow control with window scaling and persist
//! probes, Nagle, keepalive, path MTU updates, and close through TIME_WAIT.
//!
//! Does not own: port binding, demultiplexing, listen queues or segments for no
//! connection (the stack's), nor where segments go (the [`TcpEnv`]'s).
//!
//! Inside, the send side counts in 64-bit offsets from the ISS (the SYN is offset 0, data
//! byte k is offset k + 1) and the receive side in offsets from the peer's ISN, so only the
//! conversions at the wire deal with wraparound.

use super::buffer::{RecvBuffer, SendBuffer};
use super::cc::{
    AckEvent, AckSample, CaState, CcEvent, CongestionControl, ConnStart, EcnMode, FlightSample,
    LostSegment, RateSample, Window,
};
use super::config::{Errno, SockOpts, TcpConfig};
use super::ecn::EcnState;
use super::rack::{self, Rack};
use super::rtt::RttEstimator;
use super::scoreboard::SackedRanges;
use super::seq::SeqNum;
use super::timer::{Deadlines, TimerKind, TimerQueue};
use super::wire::{flags, SackBlocks, TcpOptions, TcpRepr};
use super::{TcpCounters, TcpEnv, TcpEvent, TcpInfo, TcpSocketId, TcpState};
use sim_core::packet::{Ecn, Payload};
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::TraceValue;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddrV4;

/// Linux's `TCP_MAX_QUICKACKS`.
const MAX_QUICKACKS: u8 = 16;
/// Linux's `sysctl_tcp_invalid_ratelimit`: at most one out-of-window ACK per 500 ms.
const OOW_RATELIMIT: SimDuration = SimDuration::from_millis(500);
/// MSS assumed when the peer sends no MSS option (RFC 9293, RB-TCP-02).
pub const DEFAULT_PEER_MSS: u16 = 536;
/// Linux's `TCP_TIMEOUT_INIT`: the base of the SYN retry schedule.
const TIMEOUT_INIT: SimDuration = SimDuration::from_secs(1);
/// What the pacing clock charges for one GSO burst (one Linux skb): where it started
/// (the clock or now, whichever is later), the payload bytes sent in it so far, and the
/// credit for starting late (now minus the clock, if the clock was behind).
#[derive(Clone, Copy, Debug, Default)]
struct PacedBurst {
    base: SimTime,
    bytes: u64,
    credit: u64,
}

/// The largest GSO burst in bytes: Linux's `sk_gso_max_size`, the device's 64 KB less
/// `MAX_TCP_HEADER + 1`.
const GSO_MAX_BYTES: u64 = 65536 - 321;
/// Linux's default `sk_pacing_shift`: a GSO burst is about 1 ms of data at the pacing rate.
const PACING_SHIFT: u32 = 10;

/// Linux `tcp_tso_autosize`: segments of `mss` bytes in a GSO burst at a pacing rate of
/// `rate` bytes per second: rate >> 10 (about 1 ms), plus 64 KB >> (min RTT in µs >>
/// `rtt_log`) while that shift is under 32, at most 64 KB, at least `floor`.
pub(super) fn tso_autosize(
    rate: u64,
    mss: u64,
    min_rtt: Option<SimDuration>,
    rtt_log: Option<u8>,
    floor: u32,
) -> u32 {
    let mut bytes = rate >> PACING_SHIFT;
    if let (Some(min_rtt), Some(log)) = (min_rtt, rtt_log) {
        let shift = (min_rtt.as_nanos() / 1000)
            .checked_shr(log as u32)
            .unwrap_or(0);
        if shift < 32 {
            bytes += GSO_MAX_BYTES >> shift;
        }
    }
    let segs = bytes.min(GSO_MAX_BYTES) / mss.max(1);
    (segs.min(u32::MAX as u64) as u32).max(floor).max(1)
}

/// Data segments sent before pacing starts to count (Linux `tcp_update_skb_after_send`).
const UNPACED_SEGS: u64 = 10;

/// What the stack passes to every connection call.
pub(crate) struct Ctx<'a> {
    pub now: SimTime,
    pub cfg: &'a TcpConfig,
    pub env: &'a mut dyn TcpEnv,
    pub timers: &'a mut TimerQueue,
    pub counters: &'a mut TcpCounters,
}

const SENT_SACKED: u8 = 1;
const SENT_LOST: u8 = 2;
/// A retransmission of this segment is in flight.
const SENT_RETRANS: u8 = 4;
/// The segment was retransmitted at some point (Karn's rule).
const SENT_EVER_RETRANS: u8 = 8;
const SENT_FIN: u8 = 16;

/// One transmitted, unacknowledged segment.
#[derive(Clone, Copy, Debug)]
struct Sent {
    start: u64,
    end: u64,
    sent_at: SimTime,
    flags: u8,
    /// The connection's delivery state when this was (last) sent, for rate samples.
    tx: TxSnapshot,
}

/// Linux `tcp_skb_cb.tx`: what a delivery-rate sample needs from a segment's sending.
#[derive(Clone, Copy, Debug, Default)]
struct TxSnapshot {
    delivered: u64,
    delivered_time: SimTime,
    first_tx_time: SimTime,
    app_limited: bool,
    /// Bytes in flight just after the segment left, itself included (`tx.in_flight`),
    /// and the connection's lost and ECE-delivered totals then (`tx.lost`,
    /// `tx.delivered_ce`): for [`FlightSample`] and [`LostSegment`].
    in_flight: u64,
    lost: u64,
    delivered_ce: u64,
}

/// The most recently sent segment among those an ACK delivered (Linux `rate_sample`
/// while it is being built).
#[derive(Clone, Copy, Debug)]
struct RateProbe {
    tx: TxSnapshot,
    sent_at: SimTime,
    end: u64,
    /// The segment was retransmitted at some point, so its RTT is ambiguous (Karn).
    ever_retrans: bool,
}

/// Linux `tcp_rate_skb_delivered`: keep the most recently sent of the delivered segments.
fn rate_probe(probe: &mut Option<RateProbe>, s: &Sent) {
    let newer =
        probe.is_none_or(|p| s.sent_at > p.sent_at || (s.sent_at == p.sent_at && s.end > p.end));
    if newer {
        *probe = Some(RateProbe {
            tx: s.tx,
            sent_at: s.sent_at,
            end: s.end,
            ever_retrans: s.has(SENT_EVER_RETRANS),
        });
    }
}

/// What the one retransmission timer (`TimerKind::Retransmit`) is armed for, as Linux
/// shares `icsk_retransmit_timer` between the RTO, RACK's reordering timeout and the
/// tail loss probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum XmitTimer {
    Rto,
    ReorderTimeout,
    LossProbe,
}

/// What one ACK did, for loss recovery and the congestion controller.
#[derive(Clone, Copy, Debug)]
struct AckNews {
    una_advanced: bool,
    newly_sacked: bool,
    /// Bytes newly acknowledged, cumulatively or by SACK.
    delivered: u64,
    prior_in_flight: u64,
    rtt: Option<SimDuration>,
    rate: Option<RateSample>,
    flight: Option<FlightSample>,
    /// `lost_total` before this ACK.
    lost_before: u64,
    /// The ACK carried ECN-Echo.
    ece: bool,
}

impl Sent {
    fn len(&self) -> u64 {
        self.end - self.start
    }
    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
    /// Marked lost and not retransmitted since.
    fn waits_for_retransmission(&self) -> bool {
        self.has(SENT_LOST) && !self.has(SENT_RETRANS)
    }
}

/// What a segment did to the connection, for the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InputOutcome {
    Nothing,
    /// A SYN_RECV child completed the handshake.
    Established,
    /// The connection is gone; remove it.
    Closed,
    /// Answer the segment with a reset; the connection stays.
    Reset,
    /// TIME_WAIT accepted a new SYN for the same 4-tuple: remove, then give the SYN to
    /// the listener.
    Reopen,
}

/// Delayed-ACK machinery (Linux's `icsk_ack`).
#[derive(Clone, Copy, Debug)]
struct AckState {
    /// An ACK is owed.
    pending: bool,
    /// Send the owed ACK at once.
    now: bool,
    quick: u8,
    pingpong: bool,
    ato: SimDuration,
    lrcvtime: SimTime,
    /// Estimate of the peer's segment size.
    rcv_mss: u32,
}

/// Dynamic right-sizing of the receive buffer (Linux `tcp_rcv_space_adjust`).
#[derive(Clone, Copy, Debug)]
struct RcvSpace {
    time: SimTime,
    seq: u64,
    space: u64,
}

/// The receiver's estimate of the round trip (Linux `rcv_rtt_est`), which paces receive
/// buffer auto-tuning: from timestamps when they are on, else once per window of data.
#[derive(Clone, Copy, Debug, Default)]
struct RcvRtt {
    /// Smoothed RTT in microseconds, times 8; 0 before the first sample.
    rtt_us8: u64,
    /// Sequence-based measurement: the stream offset that ends the current one, and when
    /// it started (`None` before the first).
    seq: u64,
    time: Option<SimTime>,
    last_tsecr: u32,
}

impl RcvRtt {
    /// Linux `tcp_rcv_rtt_update`: an EWMA (gain 1/8) of timestamp samples; window-based
    /// samples (`min_only`) can only lower the estimate, as they overestimate the RTT.
    fn update(&mut self, sample_us: u64, min_only: bool) {
        let m = sample_us.max(1);
        self.rtt_us8 = if self.rtt_us8 == 0 {
            m << 3
        } else if min_only {
            self.rtt_us8.min(m << 3)
        } else {
            self.rtt_us8 - (self.rtt_us8 >> 3) + m
        };
    }
}

pub(crate) struct Conn {
    pub id: TcpSocketId,
    /// The owning app; `None` once the app closed it (orphaned).
    pub owner: Option<usize>,
    pub state: TcpState,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub opts: SockOpts,
    /// For connections created by a listener and not yet accepted.
    pub parent: Option<TcpSocketId>,
    /// A SYN_RECV child whose final ACK arrived while the accept queue was full.
    pub acked_while_full: bool,
    pub listen: Option<Box<super::stack::ListenState>>,
    pub deadlines: Deadlines,

    iss: SeqNum,
    irs: SeqNum,
    snd_wscale: u8,
    rcv_wscale: u8,
    sack_ok: bool,
    /// The peer's SYN carried window scaling (so ours does too).
    ws_negotiated: bool,
    ts_ok: bool,
    ts_off: u32,
    ts_recent: u32,
    /// MSS the peer announced.
    peer_mss: u32,
    /// MSS we announce (interface MTU - 40).
    advmss: u32,
    pmtu: u32,

    snd_una: u64,
    snd_nxt: u64,
    snd_wnd: u64,
    snd_wl1: SeqNum,
    snd_wl2: SeqNum,
    max_window: u64,
    sndbuf: SendBuffer,
    sndbuf_cap: u64,
    fin_queued: bool,
    rtx: VecDeque<Sent>,
    /// The SACKed stretches of `rtx`, for walks that jump over them.
    sacked: SackedRanges,
    /// No segment that is lost and not yet retransmitted starts below this offset (Linux
    /// `retransmit_skb_hint`): where the search for the next one begins...
    rtx_hint: u64,
    /// ...and none ends above this one: where the search can give up.
    rtx_hint_end: u64,
    /// Where RACK's loss scan starts ([`Conn::rack_detect_loss`]): every segment below is
    /// SACKed, lost and not yet retransmitted, or retransmitted after RACK's segment was
    /// sent, and so has nothing to tell the scan yet. Linux keeps such segments out of its
    /// time-sorted list instead.
    rack_scan_from: u64,
    /// The retransmissions below `rack_scan_from`, earliest first, as (send time, end):
    /// once RACK's segment was sent after one, the scan starts from it again. An entry
    /// outlives its retransmission if that is SACKed, acknowledged, found lost or sent
    /// again, and is then dropped.
    rack_scan_retrans: BinaryHeap<Reverse<(SimTime, u64)>>,
    sacked_bytes: u64,
    lost_bytes: u64,
    retrans_bytes: u64,
    /// NewReno (no SACK): duplicate ACKs counted as virtual SACKs, in segments.
    reno_dupacks: u32,
    ca: CaState,
    high_seq: u64,
    prior_cwnd: u64,
    prr_delivered: u64,
    prr_out: u64,
    win: Window,
    cc: Box<dyn CongestionControl>,
    /// Whether the sender used its whole window in the current window of data (Linux
    /// `tcp_cwnd_validate`), with the most it had outstanding and where that window ends.
    cwnd_limited: bool,
    max_in_flight: u64,
    /// Delivery-rate state (Linux `tcp_rate.c`): bytes delivered so far and when the last
    /// were, when the current flight began, and the delivered mark up to which samples
    /// are application-limited (0: not limited).
    delivered: u64,
    delivered_time: SimTime,
    first_tx_time: SimTime,
    app_limited: u64,
    /// Bytes ever marked lost (for the controller's per-ACK loss count).
    lost_total: u64,
    /// The controller's state as last traced (`tcp_cc_state`).
    cc_phase: Option<&'static str>,
    /// ECN flags, and the bytes delivered by ACKs carrying ECE (Linux `delivered_ce`).
    ecn: EcnState,
    delivered_ce: u64,
    /// RACK loss detection (RFC 8985) and the end of the highest SACKed segment, below
    /// which a late original delivery means reordering.
    rack: Rack,
    highest_sacked: u64,
    /// What the retransmission timer slot is armed for (Linux `icsk_pending`).
    xmit_timer: XmitTimer,
    /// `snd_nxt` when the outstanding tail loss probe went out (Linux `tlp_high_seq`),
    /// and whether it was a retransmission.
    tlp_high_seq: Option<u64>,
    tlp_retrans: bool,
    /// Earliest time the next segment may leave when pacing.
    pacing_next: SimTime,
    /// The GSO burst being sent: what the pacing clock charges for it.
    burst: PacedBurst,
    /// The next paced segment joins `burst` instead of starting a new one.
    burst_continues: bool,
    cwnd_usage_seq: u64,
    rcv_rtt: RcvRtt,
    last_send: SimTime,
    /// End of the last small segment sent (Minshall's Nagle variant).
    snd_sml: u64,
    rtt: RttEstimator,
    rto: SimDuration,
    retransmits: u8,
    retrans_stamp: Option<SimTime>,
    probes_out: u8,
    /// Unanswered keepalive probes.
    ka_probes: u8,
    /// When the last zero-window probe (one byte at `snd_nxt`, not counted as sent) left.
    probe_out: Option<SimTime>,
    soft_err: Option<Errno>,

    rcvbuf: RecvBuffer,
    /// Stream offset of the peer's FIN, once seen (possibly out of order).
    fin_at: Option<u64>,
    fin_received: bool,
    /// Receive offset (from the peer's ISN) when we last advertised a window, and that
    /// window.
    rcv_wup: u64,
    rcv_wnd: u64,
    rcv_ssthresh: u64,
    rcvbuf_cap: u64,
    rcv_space: RcvSpace,
    last_ooo: Option<u64>,
    last_rcv: SimTime,
    ack: AckState,
    last_oow_ack: Option<SimTime>,

    pub pending_err: Option<Errno>,
    pub shut_rd: bool,
    pub shut_wr: bool,
    want_write: bool,
    connect_notified: bool,

    bytes_acked: u64,
    bytes_received: u64,
    /// Bytes the application has read (receive-buffer auto-tuning follows this).
    bytes_copied: u64,
    segs_out: u64,
    /// Data segments sent, retransmissions included (Linux `data_segs_out`).
    data_segs_out: u64,
    segs_in: u64,
    retrans_segs: u64,
    rto_timeouts: u64,
    fast_retransmits: u64,
    dup_acks_in: u64,
    zero_window_probes: u64,
}

fn model_timeout(boundary: u8, rto_base: SimDuration, rto_max: SimDuration) -> SimDuration {
    // Linux tcp_model_timeout: exponential backoff from rto_base up to rto_max, then linear.
    let base = rto_base.as_nanos().max(1);
    let ratio = rto_max.as_nanos() / base;
    let thresh = if ratio == 0 {
        0
    } else {
        63 - ratio.leading_zeros()
    };
    let b = boundary as u32;
    if b <= thresh {
        SimDuration::from_nanos(((2u64 << b) - 1) * base)
    } else {
        SimDuration::from_nanos(
            ((2u64 << thresh) - 1) * base + (b - thresh) as u64 * rto_max.as_nanos(),
        )
    }
}

impl Conn {
    pub fn new(
        id: TcpSocketId,
        owner: Option<usize>,
        cfg: &TcpConfig,
        opts: SockOpts,
        cc: Box<dyn CongestionControl>,
    ) -> Conn {
        let unspecified = SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0);
        Conn {
            id,
            owner,
            state: TcpState::Closed,
            local: unspecified,
            remote: unspecified,
            opts,
            parent: None,
            acked_while_full: false,
            listen: None,
            deadlines: Deadlines::default(),
            iss: SeqNum(0),
            irs: SeqNum(0),
            snd_wscale: 0,
            rcv_wscale: 0,
            sack_ok: false,
            ws_negotiated: false,
            ts_ok: false,
            ts_off: 0,
            ts_recent: 0,
            peer_mss: DEFAULT_PEER_MSS as u32,
            advmss: 1460,
            pmtu: 1500,
            snd_una: 0,
            snd_nxt: 0,
            snd_wnd: 0,
            snd_wl1: SeqNum(0),
            snd_wl2: SeqNum(0),
            max_window: 0,
            sndbuf: SendBuffer::default(),
            sndbuf_cap: 0,
            fin_queued: false,
            rtx: VecDeque::new(),
            sacked: SackedRanges::default(),
            rtx_hint: u64::MAX,
            rtx_hint_end: 0,
            rack_scan_from: 0,
            rack_scan_retrans: BinaryHeap::new(),
            sacked_bytes: 0,
            lost_bytes: 0,
            retrans_bytes: 0,
            reno_dupacks: 0,
            ca: CaState::Open,
            high_seq: 0,
            prior_cwnd: 0,
            prr_delivered: 0,
            prr_out: 0,
            win: Window {
                cwnd: 0,
                ssthresh: u64::MAX,
                mss: 536,
            },
            cc,
            cwnd_limited: false,
            max_in_flight: 0,
            delivered: 0,
            delivered_time: SimTime::ZERO,
            first_tx_time: SimTime::ZERO,
            app_limited: 0,
            lost_total: 0,
            cc_phase: None,
            ecn: EcnState::default(),
            delivered_ce: 0,
            rack: Rack::default(),
            highest_sacked: 0,
            xmit_timer: XmitTimer::Rto,
            tlp_high_seq: None,
            tlp_retrans: false,
            pacing_next: SimTime::ZERO,
            burst: PacedBurst::default(),
            burst_continues: false,
            cwnd_usage_seq: 0,
            rcv_rtt: RcvRtt::default(),
            last_send: SimTime::ZERO,
            snd_sml: 0,
            rtt: RttEstimator::new(cfg.rto_initial),
            rto: cfg.rto_initial,
            retransmits: 0,
            retrans_stamp: None,
            probes_out: 0,
            ka_probes: 0,
            probe_out: None,
            soft_err: None,
            rcvbuf: RecvBuffer::default(),
            fin_at: None,
            fin_received: false,
            rcv_wup: 0,
            rcv_wnd: 0,
            rcv_ssthresh: 0,
            rcvbuf_cap: 0,
            rcv_space: RcvSpace {
                time: SimTime::ZERO,
                seq: 0,
                space: 0,
            },
            last_ooo: None,
            last_rcv: SimTime::ZERO,
            ack: AckState {
                pending: false,
                now: false,
                quick: 0,
                pingpong: false,
                ato: SimDuration::ZERO,
                lrcvtime: SimTime::ZERO,
                rcv_mss: 536,
            },
            last_oow_ack: None,
            pending_err: None,
            shut_rd: false,
            shut_wr: false,
            want_write: false,
            connect_notified: false,
            bytes_acked: 0,
            bytes_received: 0,
            bytes_copied: 0,
            segs_out: 0,
            data_segs_out: 0,
            segs_in: 0,
            retrans_segs: 0,
            rto_timeouts: 0,
            fast_retransmits: 0,
            dup_acks_in: 0,
            zero_window_probes: 0,
        }
    }

    // ------------------------------------------------------------------ helpers

    /// The controller needs ECN (DCTCP): ECN is forced on and every segment is ECT.
    fn needs_ecn(&self) -> bool {
        self.cc.ecn_mode() == EcnMode::Dctcp
    }

    /// The IP ECN codepoint of an outgoing segment; `new_data`: it carries data never sent
    /// before.
    fn ecn_codepoint(&self, new_data: bool) -> Ecn {
        self.ecn.codepoint(self.needs_ecn(), new_data)
    }

    fn seq_of(&self, off: u64) -> SeqNum {
        self.iss + off as u32
    }

    /// The send offset an incoming ACK number stands for.
    fn ack_off(&self, ack: SeqNum) -> i64 {
        self.snd_una as i64 + (ack - self.seq_of(self.snd_una)) as i64
    }

    /// Receive offset (from the peer's ISN) of the next byte expected: SYN, data, FIN.
    fn rcv_nxt_off(&self) -> u64 {
        1 + self.rcvbuf.next() + self.fin_received as u64
    }

    fn rcv_nxt(&self) -> SeqNum {
        self.irs + self.rcv_nxt_off() as u32
    }

    /// Send offset of the FIN, if one is queued.
    fn fin_off(&self) -> Option<u64> {
        self.fin_queued.then(|| self.sndbuf.end() + 1)
    }

    /// Offset of the first data byte not yet sent.
    fn data_nxt(&self) -> u64 {
        self.snd_nxt.max(1) - 1
    }

    fn unsent(&self) -> u64 {
        self.sndbuf.end().saturating_sub(self.data_nxt())
    }

    pub fn mss(&self) -> u32 {
        let opt = if self.ts_ok { 12 } else { 0 };
        let mut m = self.peer_mss.min(self.pmtu.saturating_sub(40)).max(64) - opt;
        if let Some(clamp) = self.opts.max_seg {
            m = m.min(clamp as u32).max(48);
        }
        m
    }

    /// Bytes in flight (RFC 6675 "pipe"; Linux `tcp_packets_in_flight` in bytes).
    fn in_flight(&self) -> u64 {
        let out = self.snd_nxt - self.snd_una;
        let reno_sacked = self.reno_dupacks as u64 * self.win.mss as u64;
        (out + self.retrans_bytes).saturating_sub(self.sacked_bytes + self.lost_bytes + reno_sacked)
    }

    fn ts_val(&self, now: SimTime) -> u32 {
        ((now.as_nanos() / 1_000_000) as u32).wrapping_add(self.ts_off)
    }

    /// The RTT the echoed timestamp of `seg` gives (RFC 7323 RTTM, Linux
    /// `tcp_rtt_tsopt_us`), for ACKs of retransmitted data, where Karn's rule forbids
    /// timing the segment itself.
    fn ts_rtt(&self, now: SimTime, seg: &TcpRepr) -> Option<SimDuration> {
        let (_, ecr) = seg.options.timestamps.filter(|_| self.ts_ok)?;
        if ecr == 0 {
            return None;
        }
        let ms = self.ts_val(now).wrapping_sub(ecr);
        (ms < 1 << 30).then(|| SimDuration::from_millis(ms as u64))
    }

    /// The handshake's RTT sample: the SYN (or SYN-ACK) timed if it was sent once, else
    /// from the echoed timestamp, as Linux's `tcp_ack_update_rtt` does for a SYN-ACK or
    /// final ACK that acknowledges a retransmitted SYN (or SYN-ACK).
    fn handshake_rtt(&self, ctx: &Ctx<'_>, seg: &TcpRepr) -> Option<SimDuration> {
        if self.retransmits == 0 {
            Some(ctx.now.saturating_since(self.last_send))
        } else {
            self.ts_rtt(ctx.now, seg)
        }
    }

    fn set_timer(&mut self, ctx: &mut Ctx<'_>, kind: TimerKind, after: SimDuration) {
        if kind == TimerKind::Retransmit {
            self.xmit_timer = XmitTimer::Rto;
        }
        let at = ctx.now + after;
        self.deadlines
            .set(ctx.timers, self.id.slot, self.id.gen, kind, at);
    }

    fn clear_timer(&mut self, kind: TimerKind) {
        self.deadlines.clear(kind);
    }

    /// Arms the retransmission timer slot for `what` (Linux `inet_csk_reset_xmit_timer`).
    fn arm_xmit_timer(&mut self, ctx: &mut Ctx<'_>, what: XmitTimer, after: SimDuration) {
        self.set_timer(ctx, TimerKind::Retransmit, after);
        self.xmit_timer = what;
    }

    /// Linux `tcp_rearm_rto`: the RTO from now, or, replacing a reordering timeout or a
    /// loss probe, from when the oldest outstanding segment was sent.
    fn rearm_rto(&mut self, ctx: &mut Ctx<'_>) {
        if self.snd_una == self.snd_nxt {
            self.clear_timer(TimerKind::Retransmit);
            return;
        }
        let mut after = self.rto;
        let pending = self.deadlines.get(TimerKind::Retransmit).is_some();
        if pending && self.xmit_timer != XmitTimer::Rto {
            if let Some(head) = self.rtx.front() {
                let deadline = head.sent_at + self.rto;
                after = deadline
                    .saturating_since(ctx.now)
                    .max(SimDuration::from_nanos(1));
            }
        }
        self.arm_xmit_timer(ctx, XmitTimer::Rto, after);
    }

    /// Linux `tcp_schedule_loss_probe`: with TLP on, SACK, data out and no loss being
    /// repaired, arm the probe timer instead of the RTO. `advancing` (an ACK moved
    /// `snd_una`) means the RTO would restart from now.
    fn schedule_loss_probe(&mut self, ctx: &mut Ctx<'_>, advancing: bool) -> bool {
        if !ctx.cfg.tlp()
            || !self.sack_ok
            || self.snd_una == self.snd_nxt
            || !matches!(self.ca, CaState::Open | CaState::Cwr)
        {
            return false;
        }
        let rto_left = if advancing {
            Some(self.rto)
        } else {
            self.rtx
                .front()
                .map(|h| (h.sent_at + self.rto).saturating_since(ctx.now))
        };
        let one_out = self.rtx.len() == 1;
        let pto = rack::probe_timeout(self.rtt.srtt(), one_out, ctx.cfg.rto_min, rto_left);
        self.arm_xmit_timer(ctx, XmitTimer::LossProbe, pto);
        true
    }

    pub fn clear_all_timers(&mut self) {
        for k in TimerKind::ALL {
            self.deadlines.clear(k);
        }
    }

    fn notify(&mut self, ctx: &mut Ctx<'_>, ev: TcpEvent) {
        if self.parent.is_some() {
            return;
        }
        if let Some(owner) = self.owner {
            ctx.env.notify(owner, self.id, ev);
        }
    }

    pub fn set_state(&mut self, ctx: &mut Ctx<'_>, to: TcpState) {
        let from = self.state;
        if from == to {
            return;
        }
        debug_assert!(from.may_become(to), "{} -> {}", from.name(), to.name());
        self.state = to;
        if ctx.env.tracing() {
            ctx.env.trace(
                "tcp_state",
                &[
                    ("conn", self.conn_label()),
                    ("from", TraceValue::Str(from.name())),
                    ("to", TraceValue::Str(to.name())),
                ],
            );
        }
    }

    fn conn_label(&self) -> TraceValue {
        TraceValue::String(format!(
            "{}:{}->{}:{}",
            self.local.ip(),
            self.local.port(),
            self.remote.ip(),
            self.remote.port()
        ))
    }

    fn trace_error(&self, ctx: &mut Ctx<'_>, err: Errno) {
        if ctx.env.tracing() {
            ctx.env.trace(
                "tcp_error",
                &[
                    ("conn", self.conn_label()),
                    ("errno", TraceValue::Str(err.name())),
                    ("state", TraceValue::Str(self.state.name())),
                ],
            );
        }
    }

    /// The connection failed: report `err` to the owner and close.
    fn fail(&mut self, ctx: &mut Ctx<'_>, err: Errno) {
        self.trace_error(ctx, err);
        self.pending_err = Some(err);
        self.set_state(ctx, TcpState::Closed);
        self.discard_queues();
        self.clear_all_timers();
        self.notify(ctx, TcpEvent::Error(err));
    }

    fn discard_queues(&mut self) {
        self.sndbuf = SendBuffer::default();
        self.rtx = VecDeque::new();
        self.sacked = SackedRanges::default();
        self.rtx_hint = u64::MAX;
        self.rtx_hint_end = 0;
        self.rack_scan_from = 0;
        self.rack_scan_retrans = BinaryHeap::new();
        self.sacked_bytes = 0;
        self.lost_bytes = 0;
        self.retrans_bytes = 0;
        self.reno_dupacks = 0;
    }

    // ------------------------------------------------------------------ setup

    fn init_buffers(&mut self, cfg: &TcpConfig) {
        self.rcvbuf_cap = self.opts.rcvbuf.map_or(cfg.rmem[1], |b| b.max(cfg.rmem[0])) as u64;
        self.sndbuf_cap = self.opts.sndbuf.map_or(cfg.wmem[1], |b| b.max(cfg.wmem[0])) as u64;
        // Window scale large enough for the biggest buffer auto-tuning may reach.
        let max_space = if self.opts.rcvbuf.is_some() {
            self.rcvbuf_cap
        } else {
            (cfg.rmem[2] as u64).max(self.rcvbuf_cap)
        };
        self.rcv_wscale = 0;
        if cfg.window_scaling {
            let mut space = max_space;
            while space > 65535 && self.rcv_wscale < 14 {
                space >>= 1;
                self.rcv_wscale += 1;
            }
        }
    }

    /// Addresses, the MSS we announce (interface MTU - 40, clamped by TCP_MAXSEG) and the
    /// buffers: what every way of opening a connection sets first.
    fn set_endpoints(
        &mut self,
        cfg: &TcpConfig,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        mtu: u32,
    ) {
        self.local = local;
        self.remote = remote;
        self.pmtu = mtu;
        self.advmss = mtu.saturating_sub(40).max(88);
        if let Some(m) = self.opts.max_seg {
            self.advmss = self.advmss.min(m as u32);
        }
        self.init_buffers(cfg);
    }

    /// The initial receive window (Linux `tcp_select_initial_window`): at most 65535,
    /// rounded down to a multiple of the MSS (64240 for MSS 1460).
    fn initial_window(&self) -> u64 {
        let space = self.rcvbuf_cap.min(65535);
        let mss = self.advmss as u64;
        if space > mss {
            space / mss * mss
        } else {
            space
        }
    }

    fn syn_options(&self, cfg: &TcpConfig, now: SimTime, tsecr: u32) -> TcpOptions {
        let mut o = TcpOptions {
            mss: Some(self.advmss.min(65535) as u16),
            ..TcpOptions::default()
        };
        let syn_ack = self.state == TcpState::SynReceived;
        if cfg.window_scaling && (!syn_ack || self.ws_negotiated) {
            o.window_scale = Some(self.rcv_wscale);
        }
        if cfg.sack && (!syn_ack || self.sack_ok) {
            o.sack_permitted = true;
        }
        if cfg.timestamps && (!syn_ack || self.ts_ok) {
            o.timestamps = Some((self.ts_val(now), tsecr));
        }
        o
    }

    /// Active open: send the SYN.
    #[allow(clippy::too_many_arguments)]
    pub fn connect(
        &mut self,
        ctx: &mut Ctx<'_>,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        mtu: u32,
        isn: SeqNum,
        ts_off: u32,
    ) -> Result<(), Errno> {
        self.set_endpoints(ctx.cfg, local, remote, mtu);
        self.iss = isn;
        self.ts_off = ts_off;
        self.rcv_wnd = self.initial_window();
        self.snd_una = 0;
        self.snd_nxt = 0;
        self.ecn = EcnState::connect(ctx.cfg.ecn, self.needs_ecn());
        self.set_state(ctx, TcpState::SynSent);
        ctx.counters.active_opens += 1;
        self.send_syn(ctx, false)?;
        self.rto = ctx.cfg.rto_initial;
        self.set_timer(ctx, TimerKind::Retransmit, self.rto);
        Ok(())
    }

    fn send_syn(&mut self, ctx: &mut Ctx<'_>, retransmit: bool) -> Result<(), Errno> {
        let syn_ack = self.state == TcpState::SynReceived;
        let tsecr = if syn_ack { self.ts_recent } else { 0 };
        let options = self.syn_options(ctx.cfg, ctx.now, tsecr);
        let mut fl = flags::SYN;
        let ack = if syn_ack {
            fl |= flags::ACK | self.ecn.synack_flags();
            self.rcv_nxt()
        } else {
            fl |= self.ecn.syn_flags(retransmit, ctx.cfg.ecn_fallback);
            SeqNum(0)
        };
        let repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: self.iss,
            ack,
            flags: fl,
            window: self.rcv_wnd.min(65535) as u16,
            options,
        };
        if syn_ack {
            self.rcv_wup = self.rcv_nxt_off();
        }
        self.snd_nxt = self.snd_nxt.max(1);
        if retransmit {
            self.retrans_segs += 1;
            ctx.counters.retrans_segs += 1;
        }
        let ecn = self.ecn_codepoint(false);
        self.transmit(ctx, repr, Payload::empty(), retransmit, ecn)
    }

    /// Passive open: a child socket for a SYN that reached a listener.
    #[allow(clippy::too_many_arguments)]
    pub fn accept_syn(
        &mut self,
        ctx: &mut Ctx<'_>,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        mtu: u32,
        syn: &TcpRepr,
        syn_ecn: Ecn,
        isn: SeqNum,
        ts_off: u32,
    ) {
        self.set_endpoints(ctx.cfg, local, remote, mtu);
        self.iss = isn;
        self.ts_off = ts_off;
        self.learn_syn(ctx.cfg, syn);
        self.ecn = EcnState::accept(ctx.cfg.ecn, self.needs_ecn(), syn.flags, syn_ecn);
        self.rcv_wnd = self.initial_window();
        self.state = TcpState::Listen;
        self.set_state(ctx, TcpState::SynReceived);
        ctx.counters.passive_opens += 1;
        self.last_rcv = ctx.now;
        let _ = self.send_syn(ctx, false);
        self.rto = TIMEOUT_INIT;
        self.set_timer(ctx, TimerKind::Retransmit, self.rto);
    }

    /// A connection rebuilt from a valid SYN cookie: established at once, with the MSS the
    /// cookie encoded and none of the other options (Linux without timestamps).
    #[allow(clippy::too_many_arguments)]
    pub fn establish_from_cookie(
        &mut self,
        ctx: &mut Ctx<'_>,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        mtu: u32,
        ack_seg: &TcpRepr,
        peer_mss: u32,
    ) {
        self.set_endpoints(ctx.cfg, local, remote, mtu);
        self.rcv_wscale = 0;
        self.iss = ack_seg.ack - 1;
        self.irs = ack_seg.seq - 1;
        self.peer_mss = peer_mss;
        self.snd_una = 1;
        self.snd_nxt = 1;
        self.snd_wnd = ack_seg.window as u64;
        self.max_window = self.snd_wnd;
        self.snd_wl1 = ack_seg.seq;
        self.snd_wl2 = ack_seg.ack;
        self.rcv_wnd = self.initial_window();
        self.rcv_wup = 1;
        self.state = TcpState::Listen;
        self.set_state(ctx, TcpState::SynReceived);
        self.set_state(ctx, TcpState::Established);
        self.on_established(ctx);
    }

    fn learn_syn(&mut self, cfg: &TcpConfig, syn: &TcpRepr) {
        self.irs = syn.seq;
        let o = &syn.options;
        self.peer_mss = o.mss.map_or(DEFAULT_PEER_MSS as u32, |m| m.max(64) as u32);
        match o.window_scale {
            Some(ws) if cfg.window_scaling => {
                self.snd_wscale = ws.min(14);
                self.ws_negotiated = true;
            }
            _ => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
                self.ws_negotiated = false;
            }
        }
        self.sack_ok = cfg.sack && o.sack_permitted;
        match o.timestamps {
            Some((val, _)) if cfg.timestamps => {
                self.ts_ok = true;
                self.ts_recent = val;
            }
            _ => self.ts_ok = false,
        }
        // The window in a SYN is never scaled.
        self.snd_wnd = syn.window as u64;
        self.max_window = self.snd_wnd;
        self.snd_wl1 = syn.seq;
    }

    /// Both directions are synchronized: size the windows and buffers.
    fn on_established(&mut self, ctx: &mut Ctx<'_>) {
        let mss = self.mss();
        self.win.mss = mss;
        self.win.cwnd = ctx.cfg.initial_cwnd as u64 * mss as u64;
        self.win.ssthresh = u64::MAX;
        self.ecn.established(self.rcv_nxt_off());
        let start = self.conn_start(ctx.now);
        self.cc.init(&mut self.win, &start);
        // Linux tcp_initialize_rcv_mss: a conservative guess until segments arrive.
        self.ack.rcv_mss = self
            .advmss
            .min(mss)
            .min((self.rcv_wnd / 2) as u32)
            .clamp(88, 536);
        self.rcv_ssthresh = self.rcv_wnd;
        self.rcv_space = RcvSpace {
            time: ctx.now,
            seq: 0,
            space: self.rcv_wnd.min(10 * self.advmss as u64),
        };
        self.expand_sndbuf(ctx.cfg);
        self.last_rcv = ctx.now;
        self.last_send = ctx.now;
        self.arm_keepalive(ctx);
    }

    fn expand_sndbuf(&mut self, cfg: &TcpConfig) {
        if self.opts.sndbuf.is_some() {
            return;
        }
        // Linux tcp_sndbuf_expand: room for twice (the controller may ask for more) the
        // larger of the congestion window and the initial window, in payload bytes here.
        let segs = (self.win.cwnd / self.win.mss.max(1) as u64).max(cfg.initial_cwnd as u64);
        let want = self.cc.sndbuf_windows() * segs * self.win.mss as u64;
        self.sndbuf_cap = self.sndbuf_cap.max(want.min(cfg.wmem[2] as u64));
    }

    // ------------------------------------------------------------------ output

    /// Emits one segment and does the bookkeeping every transmission shares.
    #[inline(always)]
    fn transmit(
        &mut self,
        ctx: &mut Ctx<'_>,
        repr: TcpRepr,
        payload: Payload,
        retransmit: bool,
        ecn: Ecn,
    ) -> Result<(), Errno> {
        let len = payload.len();
        if ctx.env.tracing() {
            self.trace_segment(ctx, "tcp_tx", &repr, len, retransmit);
        }
        let pkt = repr.emit(payload);
        self.segs_out += 1;
        ctx.counters.segs_out += 1;
        if repr.has(flags::ACK) && repr.ack == self.rcv_nxt() {
            // Any ACK we send carries the owed acknowledgement (DCTCP's ACK of the data
            // before a CE change acknowledges less, and owes on).
            self.ack.pending = false;
            self.ack.now = false;
            self.clear_timer(TimerKind::DelayedAck);
            if self.ack.quick > 0 {
                self.ack.quick -= 1;
            }
        }
        self.last_send = ctx.now;
        ctx.env
            .send(*self.local.ip(), *self.remote.ip(), ecn, pkt)
            .map_err(|e| match e {
                sim_core::ip::SendError::NetUnreachable(_) => Errno::NetUnreach,
                sim_core::ip::SendError::MessageTooLong { .. } => Errno::MsgSize,
                _ => Errno::HostUnreach,
            })
    }

    fn trace_segment(
        &self,
        ctx: &mut Ctx<'_>,
        event: &'static str,
        r: &TcpRepr,
        len: usize,
        retransmit: bool,
    ) {
        let f = super::wire::flag_names(r.flags);
        let mut opts = String::new();
        let o = &r.options;
        if let Some(m) = o.mss {
            opts.push_str(&format!("mss {m},"));
        }
        if o.sack_permitted {
            opts.push_str("sackOK,");
        }
        if let Some((v, e)) = o.timestamps {
            opts.push_str(&format!("TS val {v} ecr {e},"));
        }
        if let Some(ws) = o.window_scale {
            opts.push_str(&format!("wscale {ws},"));
        }
        for (l, rr) in o.sack.as_slice() {
            opts.push_str(&format!("sack {l}:{rr},"));
        }
        opts.pop();
        ctx.env.trace(
            event,
            &[
                ("conn", self.conn_label()),
                ("flags", TraceValue::String(f)),
                ("seq", r.seq.0.into()),
                ("ack", r.ack.0.into()),
                ("len", len.into()),
                ("win", r.window.into()),
                ("opts", TraceValue::String(opts)),
                ("retransmit", TraceValue::Bool(retransmit)),
            ],
        );
    }

    /// The window to advertise now: Linux's `__tcp_select_window` plus the never-shrink
    /// rule of `tcp_select_window`. An offered right edge is never moved left, so a
    /// sub-MSS window does appear when the peer has used up most of the last offer.
    fn select_window(&mut self) -> u64 {
        let granule = 1u64 << self.rcv_wscale;
        let mut w = self.window_to_offer();
        let cur = (self.rcv_wup + self.rcv_wnd).saturating_sub(self.rcv_nxt_off());
        if w < cur {
            w = cur.div_ceil(granule) * granule;
        }
        w = w.min(65535u64 << self.rcv_wscale);
        self.rcv_wnd = w;
        self.rcv_wup = self.rcv_nxt_off();
        w
    }

    /// Linux `__tcp_select_window`: when less than half the buffer is free, offer zero
    /// rather than less than a segment (as the peer sends them) or 1/16 of the buffer
    /// (silly window avoidance, RFC 9293 3.8.6.2.2); otherwise the free space capped by
    /// `rcv_ssthresh`, in whole segments when there is no window scaling.
    fn window_to_offer(&self) -> u64 {
        let full = self.rcvbuf_cap;
        let granule = 1u64 << self.rcv_wscale;
        let mss = (self.ack.rcv_mss as u64).min(full).max(1);
        let mut free = full.saturating_sub(self.rcvbuf.held());
        if free < full / 2 {
            free = free / granule * granule;
            if free < full >> 4 || free < mss {
                return 0;
            }
        }
        // The window clamp: no more than the header can express.
        free = free.min(self.rcv_ssthresh).min(65535 << self.rcv_wscale);
        if self.rcv_wscale > 0 {
            return free.div_ceil(granule) * granule;
        }
        let current = self.rcv_wnd;
        if current + mss <= free || current > free {
            free / mss * mss
        } else if mss == full && free > current + full / 2 {
            free
        } else {
            current
        }
    }

    /// SACK blocks for an ACK (RFC 2018 4): the block holding the most recently received
    /// segment first, then the others in ascending order.
    fn sack_blocks(&self) -> SackBlocks {
        let mut blocks = SackBlocks::default();
        if !self.sack_ok || !self.rcvbuf.has_ooo() {
            return blocks;
        }
        let max = if self.ts_ok { 3 } else { 4 };
        let base = self.irs + 1;
        let recent = self.last_ooo.and_then(|o| self.rcvbuf.ooo_range_holding(o));
        if let Some((s, e)) = recent {
            blocks.push(base + s as u32, base + e as u32);
        }
        for (s, e) in self.rcvbuf.ooo_ranges() {
            if blocks.len() >= max {
                break;
            }
            if Some((s, e)) != recent {
                blocks.push(base + s as u32, base + e as u32);
            }
        }
        blocks
    }

    /// A segment carrying the current ACK and window.
    #[inline(always)]
    fn make_segment(&mut self, now: SimTime, seq_off: u64, fl: u8) -> TcpRepr {
        let window = (self.select_window() >> self.rcv_wscale).min(65535) as u16;
        let mut options = TcpOptions::default();
        if self.ts_ok {
            options.timestamps = Some((self.ts_val(now), self.ts_recent));
        }
        options.sack = self.sack_blocks();
        TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: self.seq_of(seq_off),
            ack: self.rcv_nxt(),
            flags: fl | flags::ACK | self.ecn.header_flags(),
            window,
            options,
        }
    }

    pub fn send_ack(&mut self, ctx: &mut Ctx<'_>) {
        let repr = self.make_segment(ctx.now, self.snd_nxt, 0);
        let ecn = self.ecn_codepoint(false);
        let _ = self.transmit(ctx, repr, Payload::empty(), false, ecn);
    }

    /// DCTCP's ACK of the data that arrived before the CE state changed: up to receive
    /// offset `rcv_off`, with ECE as the old state was (Linux `__tcp_send_ack(sk,
    /// prior_rcv_nxt)`). It does not count as the owed ACK.
    fn send_prior_ack(&mut self, ctx: &mut Ctx<'_>, rcv_off: u64, ece: bool) {
        let mut repr = self.make_segment(ctx.now, self.snd_nxt, 0);
        repr.ack = self.irs + rcv_off as u32;
        repr.flags &= !flags::ECE;
        if ece {
            repr.flags |= flags::ECE;
        }
        let ecn = self.ecn_codepoint(false);
        let _ = self.transmit(ctx, repr, Payload::empty(), false, ecn);
    }

    /// An ACK for an out-of-window or otherwise unacceptable segment, rate-limited.
    fn send_oow_ack(&mut self, ctx: &mut Ctx<'_>, challenge: bool) {
        if let Some(last) = self.last_oow_ack {
            if ctx.now.saturating_since(last) < OOW_RATELIMIT {
                return;
            }
        }
        self.last_oow_ack = Some(ctx.now);
        if challenge {
            ctx.counters.challenge_acks += 1;
            if ctx.env.tracing() {
                ctx.env
                    .trace("tcp_challenge_ack", &[("conn", self.conn_label())]);
            }
        }
        self.send_ack(ctx);
    }

    /// Sends a reset for this connection (abort).
    pub fn send_reset(&mut self, ctx: &mut Ctx<'_>) {
        let mut repr = self.make_segment(ctx.now, self.snd_nxt, flags::RST);
        repr.options.sack = SackBlocks::default();
        ctx.counters.resets_sent += 1;
        let ecn = self.ecn_codepoint(false);
        let _ = self.transmit(ctx, repr, Payload::empty(), false, ecn);
    }

    /// Sends what the windows, Nagle and recovery allow.
    pub fn push(&mut self, ctx: &mut Ctx<'_>) {
        if !matches!(
            self.state,
            TcpState::Established
                | TcpState::CloseWait
                | TcpState::FinWait1
                | TcpState::Closing
                | TcpState::LastAck
        ) {
            return;
        }
        if ctx.cfg.slow_start_after_idle
            && self.snd_una == self.snd_nxt
            && ctx.now.saturating_since(self.last_send) > self.rto
            && self.win.cwnd > ctx.cfg.initial_cwnd as u64 * self.win.mss as u64
            && self.ca == CaState::Open
            && !self.cc.controls_window()
        {
            // Linux tcp_cwnd_restart: halve per idle RTO, down to the initial window.
            let iw = ctx.cfg.initial_cwnd as u64 * self.win.mss as u64;
            let mut idle = ctx.now.saturating_since(self.last_send).as_nanos();
            let rto = self.rto.as_nanos().max(1);
            let mut cwnd = self.win.cwnd;
            while idle > rto && cwnd > iw {
                cwnd /= 2;
                idle -= rto;
            }
            self.win.ssthresh = self.win.ssthresh.max(self.win.cwnd / 4 * 3);
            self.win.cwnd = cwnd.max(iw);
            self.cc.on_event(&mut self.win, CcEvent::IdleRestart);
        }
        let mut sent_any = false;
        let mut sent_new = false;
        let nothing_was_out = self.snd_una == self.snd_nxt;
        let mut hit_cwnd = false;
        let pacing = self.pacing_rate(ctx.cfg);
        // Segments the current GSO burst may still take: when pacing, the clock is checked
        // once per burst (Linux checks it per skb), and the burst then leaves back to back.
        let mut burst_left = 0;
        loop {
            if self.in_flight() >= self.win.cwnd {
                hit_cwnd = true;
                break;
            }
            if let (Some(rate), 0) = (pacing, burst_left) {
                if ctx.now < self.pacing_next && self.has_something_to_send() {
                    let wait = self.pacing_next.saturating_since(ctx.now);
                    self.set_timer(ctx, TimerKind::Pacing, wait);
                    break;
                }
                burst_left = self.tso_segs(ctx.cfg, rate);
                self.burst_continues = false;
            }
            if self.snd_una == self.snd_nxt && self.has_something_to_send() {
                self.cc.on_event(&mut self.win, CcEvent::TxStart);
                self.trace_cc_phase(ctx);
            }
            if self.ca != CaState::Open && self.retransmit_next_lost(ctx) {
                sent_any = true;
                burst_left = burst_left.saturating_sub(1);
                self.burst_continues = burst_left > 0;
                continue;
            }
            if !self.send_new_segment(ctx, None) {
                break;
            }
            sent_any = true;
            sent_new = true;
            burst_left = burst_left.saturating_sub(1);
            self.burst_continues = burst_left > 0;
        }
        // Segments sent from elsewhere (retransmission timeout, loss probe, window probe)
        // are bursts of their own.
        self.burst_continues = false;
        // Linux tcp_event_new_data_sent, then one loss probe per tail (tcp_write_xmit).
        if sent_new && (nothing_was_out || self.xmit_timer == XmitTimer::LossProbe) {
            self.rearm_rto(ctx);
        }
        if sent_any && self.deadlines.get(TimerKind::Retransmit).is_none() {
            self.set_timer(ctx, TimerKind::Retransmit, self.rto);
        }
        if sent_new {
            self.schedule_loss_probe(ctx, false);
        }
        if sent_any || hit_cwnd {
            self.cwnd_validate(hit_cwnd);
        }
        self.check_app_limited();
        self.check_persist(ctx);
    }

    /// Unsent data (or a FIN), or a segment marked lost and not yet resent.
    fn has_something_to_send(&self) -> bool {
        self.unsent() > 0
            || self.fin_off().is_some_and(|f| self.snd_nxt <= f)
            || (self.ca != CaState::Open && self.lost_bytes > self.retrans_bytes)
    }

    /// Linux `tcp_rate_check_app_limited`: with less than a segment to send, room in the
    /// window and no lost segment waiting, the sender is application-limited, and rate
    /// samples of what it sends now say so.
    fn check_app_limited(&mut self) {
        if self.unsent() < self.win.mss as u64
            && self.in_flight() < self.win.cwnd
            && self.lost_bytes <= self.retrans_bytes
        {
            self.app_limited = (self.delivered + self.in_flight()).max(1);
        }
    }

    /// Linux `tcp_rate_skb_sent`: the delivery state a segment carries when it leaves,
    /// taken before the segment counts as outstanding.
    fn tx_snapshot(&mut self, ctx: &Ctx<'_>) -> TxSnapshot {
        if self.snd_nxt == self.snd_una {
            // Nothing outstanding (Linux checks `packets_out`, not the in-flight
            // estimate, which an RTO or loss marking can zero spuriously): a new flight,
            // whose intervals start now.
            self.first_tx_time = ctx.now;
            self.delivered_time = ctx.now;
        }
        TxSnapshot {
            delivered: self.delivered,
            delivered_time: self.delivered_time,
            first_tx_time: self.first_tx_time,
            app_limited: self.app_limited != 0,
            in_flight: self.in_flight(),
            lost: self.lost_total,
            delivered_ce: self.delivered_ce,
        }
    }

    /// The pacing rate in bytes per second, if this connection paces: what the controller
    /// asks for, else with `tcp_pacing` on, Linux's `tcp_update_pacing_rate` (twice cwnd
    /// per SRTT in slow start, 1.2 times in congestion avoidance).
    fn pacing_rate(&self, cfg: &TcpConfig) -> Option<u64> {
        if let Some(r) = self.cc.pacing_rate() {
            return Some(r.max(1));
        }
        if !cfg.pacing {
            return None;
        }
        let srtt = self.rtt.srtt()?.as_nanos().max(1);
        let ratio = if self.win.in_slow_start() { 200 } else { 120 };
        let cwnd = self.win.cwnd.max(self.in_flight());
        Some(((cwnd as u128 * 1_000_000_000 * ratio / 100 / srtt as u128) as u64).max(1))
    }

    /// Advances the pacing clock past a data segment of `len` payload bytes just sent
    /// (Linux `tcp_update_skb_after_send`, the EDT model), charging its GSO burst as one
    /// skb: the time the burst's payload takes at the rate (Linux divides the headerless
    /// `skb->len`, so a rate in payload bytes per second, as BBR's delivery rate is, sends
    /// that many payload bytes), less up to half of it as credit for starting late. The
    /// first data segments leave back to back, as the original fq qdisc did not pace a
    /// flow's first 10 MSS: a burst counts once the 10th has been sent.
    fn paced(&mut self, ctx: &Ctx<'_>, len: u64) {
        if len > 0 {
            self.data_segs_out += 1;
        }
        let Some(rate) = self.pacing_rate(ctx.cfg) else {
            return;
        };
        if !self.burst_continues {
            let prior = self.pacing_next;
            let base = prior.max(ctx.now);
            self.burst = PacedBurst {
                base,
                bytes: 0,
                credit: base.saturating_since(prior).as_nanos(),
            };
        }
        self.burst.bytes += len;
        let b = self.burst;
        self.pacing_next = b.base;
        if self.data_segs_out < UNPACED_SEGS {
            return;
        }
        let len_ns = (b.bytes as u128 * 1_000_000_000 / rate as u128) as u64;
        let ns = len_ns - b.credit.min(len_ns / 2);
        self.pacing_next += SimDuration::from_nanos(ns);
    }

    /// Segments per GSO burst when pacing at `rate` (Linux `tcp_tso_autosize`): about
    /// 1 ms of data (`sk_pacing_shift`), plus 64 KB >> (min RTT in µs >> `tso_rtt_log`)
    /// for short RTTs, at most 64 KB, at least the controller's minimum (BBR: 1 below 1.2
    /// Mb/s, else 2) or `tcp_min_tso_segs`. One without GSO.
    fn tso_segs(&self, cfg: &TcpConfig, rate: u64) -> u32 {
        if !cfg.gso {
            return 1;
        }
        let floor = self.cc.min_tso_segs().unwrap_or(cfg.min_tso_segs);
        let rtt_log = (cfg.tso_rtt_log > 0).then_some(cfg.tso_rtt_log);
        tso_autosize(
            rate,
            self.win.mss as u64,
            self.rtt.min_rtt(),
            rtt_log,
            floor,
        )
    }

    /// Switches to another controller (TCP_CONGESTION), which starts from the current
    /// window, as Linux's `tcp_reinit_congestion_control`.
    pub fn set_controller(&mut self, ctx: &mut Ctx<'_>, cc: Box<dyn CongestionControl>) {
        self.cc = cc;
        if self.win.cwnd > 0 {
            let start = self.conn_start(ctx.now);
            self.cc.init(&mut self.win, &start);
        }
    }

    /// What the controller is told at `init`: the seed mixes our ISN (from the host's
    /// seeded stream) with the peer's, so each connection gets its own.
    fn conn_start(&self, now: SimTime) -> ConnStart {
        let mut z = ((self.iss.0 as u64) << 32 | self.irs.0 as u64) ^ 0x9e37_79b9_7f4a_7c15;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ConnStart {
            now,
            seed: z ^ (z >> 31),
            srtt: self.rtt.srtt(),
            ecn: self.ecn.ok(),
        }
    }

    /// Linux `tcp_cwnd_validate`: remember, per window of data, whether the window was the
    /// limit (rather than the application or the receiver), so that it only grows when it
    /// is used (RFC 7661).
    fn cwnd_validate(&mut self, limited: bool) {
        let outstanding = self.snd_nxt - self.snd_una;
        if self.snd_una >= self.cwnd_usage_seq
            || limited
            || (!self.cwnd_limited && outstanding > self.max_in_flight)
        {
            self.cwnd_limited = limited;
            self.max_in_flight = outstanding;
            self.cwnd_usage_seq = self.snd_nxt;
        }
    }

    /// Linux `tcp_is_cwnd_limited`: in slow start the window may grow to twice what was
    /// in flight.
    fn is_cwnd_limited(&self) -> bool {
        self.cwnd_limited || (self.win.in_slow_start() && self.win.cwnd < 2 * self.max_in_flight)
    }

    /// Sends one new segment if the windows and Nagle allow; false if nothing went out.
    /// `fill` sends a partial segment that exactly fills what is left of the peer's window
    /// (Linux `tcp_write_wakeup`, from the persist timer).
    fn send_new_segment(&mut self, ctx: &mut Ctx<'_>, fill: Option<u64>) -> bool {
        let mss = fill.unwrap_or(self.win.mss as u64).min(self.win.mss as u64);
        let unsent = self.unsent();
        let fin_off = self.fin_off();
        let fin_pending = fin_off.is_some_and(|f| self.snd_nxt <= f);
        if unsent == 0 && !fin_pending {
            return false;
        }
        let len = unsent.min(mss);
        let wnd_end = self.snd_una + self.snd_wnd;
        if len > 0 && self.snd_nxt + len > wnd_end {
            // Linux sends only segments that fit the window entirely.
            return false;
        }
        let ends_stream = self.data_nxt() + len == self.sndbuf.end();
        let with_fin = fin_pending && ends_stream;
        if len < mss && len > 0 && !with_fin && fill.is_none() {
            // Nagle (Minshall's variant): hold a small segment while another small one
            // is unacknowledged.
            let small_unacked = self.snd_sml > self.snd_una;
            if !self.opts.nodelay && small_unacked {
                return false;
            }
        }
        let start = self.snd_nxt;
        self.probe_out = None;
        let payload = self.sndbuf.read(self.data_nxt(), len);
        let mut fl = 0;
        if ends_stream && len > 0 {
            fl |= flags::PSH;
        }
        if with_fin {
            fl |= flags::FIN;
        }
        let mut repr = self.make_segment(ctx.now, start, fl);
        if len > 0 {
            // RFC 3168 6.1.2: CWR on the first new data after a window reduction.
            repr.flags |= self.ecn.take_cwr();
        }
        let ecn = self.ecn_codepoint(len > 0);
        let end = start + len + with_fin as u64;
        let tx = self.tx_snapshot(ctx);
        self.snd_nxt = end;
        if len < mss {
            self.snd_sml = end;
        }
        self.rtx.push_back(Sent {
            start,
            end,
            sent_at: ctx.now,
            flags: if with_fin { SENT_FIN } else { 0 },
            tx,
        });
        self.paced(ctx, len);
        if matches!(self.ca, CaState::Recovery | CaState::Cwr) {
            self.prr_out += end - start;
        }
        let _ = self.transmit(ctx, repr, payload, false, ecn);
        true
    }

    /// Retransmits the first segment marked lost and not yet retransmitted (Linux
    /// `tcp_xmit_retransmit_queue`). Resending the oldest outstanding segment restarts the
    /// RTO, unless RACK's reordering timer holds the timer slot: the RTO then measures
    /// from this retransmission, so a head that needs several retransmissions, each found
    /// lost by RACK a round trip later, does not time out while the repair progresses.
    fn retransmit_next_lost(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let (hint, hint_end) = (self.rtx_hint, self.rtx_hint_end);
        if hint == u64::MAX {
            // Nothing became lost since the last search came up empty.
            return false;
        }
        let mut i = self.index_from(0, hint);
        let mut cursor = self
            .rtx
            .get(i)
            .map_or(0, |s| self.sacked.cursor_at(s.start));
        loop {
            let Some(s) = self.rtx.get(i).filter(|s| s.end <= hint_end) else {
                debug_assert!(
                    self.rtx
                        .iter()
                        .all(|s| !s.has(SENT_LOST) || s.has(SENT_RETRANS)),
                    "a lost segment waits beyond the retransmission hints"
                );
                self.rtx_hint = u64::MAX;
                self.rtx_hint_end = 0;
                return false;
            };
            if s.has(SENT_SACKED) {
                i = self.skip_sacked_walking(i, &mut cursor);
            } else if s.has(SENT_LOST) && !s.has(SENT_RETRANS) {
                break;
            } else {
                i += 1;
            }
        }
        self.rtx_hint = self.rtx[i].start;
        self.retransmit_index(ctx, i);
        if i == 0 && self.xmit_timer != XmitTimer::ReorderTimeout {
            self.arm_xmit_timer(ctx, XmitTimer::Rto, self.rto);
        }
        true
    }

    /// The first index at or after `i` whose segment is not SACKed.
    fn skip_sacked(&self, i: usize) -> usize {
        match self.rtx.get(i) {
            Some(s) if s.has(SENT_SACKED) => {
                let end = self.sacked.run_end(s.start).unwrap_or(s.end);
                self.index_past_run(i, end)
            }
            _ => i,
        }
    }

    /// [`Self::skip_sacked`] for a walk up the queue that does not change the scoreboard:
    /// `cursor` (start it at 0) follows the walk through the SACKed ranges.
    fn skip_sacked_walking(&self, i: usize, cursor: &mut usize) -> usize {
        match self.rtx.get(i) {
            Some(s) if s.has(SENT_SACKED) => {
                let end = self
                    .sacked
                    .run_end_walking(cursor, s.start)
                    .unwrap_or(s.end);
                self.index_past_run(i, end)
            }
            _ => i,
        }
    }

    /// The index of the first segment at or after `end`, where the SACKed run that holds
    /// segment `i` ends.
    fn index_past_run(&self, i: usize, end: u64) -> usize {
        debug_assert!(
            self.rtx.get(i).is_none_or(|s| end >= s.end),
            "scoreboard out of step with the queue"
        );
        self.index_from(i, end)
    }

    /// The index of the first segment that starts at or after `off`, at or after index
    /// `i` (no segment before `i` does). Segments are mostly full-sized: the index is
    /// guessed from the distance, and searched for only if the guess is wrong.
    fn index_from(&self, i: usize, off: u64) -> usize {
        let Some(s) = self.rtx.get(i) else {
            return i;
        };
        if s.start >= off {
            return i;
        }
        let mss = (self.win.mss as u64).max(1);
        let guess = i.saturating_add((off - s.start).div_ceil(mss) as usize);
        let past = |k: usize| self.rtx.get(k).is_none_or(|x| x.start >= off);
        if past(guess) && !past(guess - 1) {
            return guess;
        }
        self.rtx.partition_point(|x| x.start < off)
    }

    /// The segment `[start, end)` may have become lost and not retransmitted: the search
    /// for the next retransmission must look there again.
    fn lower_rtx_hint(&mut self, start: u64, end: u64) {
        self.rtx_hint = self.rtx_hint.min(start);
        self.rtx_hint_end = self.rtx_hint_end.max(end);
    }

    /// Retransmits `rtx[i]` (split to the current MSS first if it grew too big for it).
    fn retransmit_index(&mut self, ctx: &mut Ctx<'_>, i: usize) {
        let mss = self.win.mss as u64;
        let s = self.rtx[i];
        let data_len = s.len() - s.has(SENT_FIN) as u64;
        if data_len > mss {
            let mut head = s;
            head.end = s.start + mss;
            head.flags &= !SENT_FIN;
            let mut tail = s;
            tail.start = head.end;
            self.rtx[i] = head;
            self.rtx.insert(i + 1, tail);
        }
        let s = self.rtx[i];
        let fin = s.has(SENT_FIN);
        let data_len = s.len() - fin as u64;
        let payload = if data_len > 0 {
            self.sndbuf.read(s.start - 1, data_len)
        } else {
            Payload::empty()
        };
        let mut fl = if fin { flags::FIN } else { 0 };
        if data_len > 0 && s.start - 1 + data_len == self.sndbuf.end() {
            fl |= flags::PSH;
        }
        let repr = self.make_segment(ctx.now, s.start, fl);
        if self.retrans_stamp.is_none() {
            self.retrans_stamp = Some(s.sent_at);
        }
        let seg = &mut self.rtx[i];
        if !seg.has(SENT_RETRANS) {
            self.retrans_bytes += seg.len();
        }
        seg.flags |= SENT_RETRANS | SENT_EVER_RETRANS;
        seg.sent_at = ctx.now;
        if seg.start < self.rack_scan_from {
            self.rack_scan_retrans.push(Reverse((ctx.now, seg.end)));
        }
        let tx = self.tx_snapshot(ctx);
        self.rtx[i].tx = tx;
        self.paced(ctx, data_len);
        if matches!(self.ca, CaState::Recovery | CaState::Cwr) {
            self.prr_out += s.len();
        }
        self.retrans_segs += 1;
        ctx.counters.retrans_segs += 1;
        let ecn = self.ecn_codepoint(false);
        let _ = self.transmit(ctx, repr, payload, true, ecn);
    }

    /// Zero window with data waiting and nothing in flight: arm the persist timer.
    fn check_persist(&mut self, ctx: &mut Ctx<'_>) {
        let blocked = self.snd_nxt == self.snd_una
            && (self.unsent() > 0 || self.fin_off().is_some_and(|f| self.snd_nxt <= f))
            && self.snd_una + self.snd_wnd
                < self.snd_nxt + self.unsent().min(self.win.mss as u64).max(1);
        if blocked {
            if self.deadlines.get(TimerKind::Persist).is_none() {
                let t = self.probe_timeout(ctx.cfg);
                self.set_timer(ctx, TimerKind::Persist, t);
            }
        } else {
            self.clear_timer(TimerKind::Persist);
            if self.deadlines.get(TimerKind::Persist).is_none() {
                self.probes_out = 0;
            }
        }
    }

    fn probe_timeout(&self, cfg: &TcpConfig) -> SimDuration {
        let base = self.rtt.rto().max(cfg.rto_min);
        let t = base.as_nanos().saturating_mul(1 << self.probes_out.min(20));
        SimDuration::from_nanos(t).min(cfg.rto_max)
    }

    /// Persist timer: send a one-byte zero-window probe beyond the window.
    fn on_persist(&mut self, ctx: &mut Ctx<'_>) {
        if self.snd_nxt != self.snd_una || self.unsent() == 0 {
            self.probes_out = 0;
            return;
        }
        let room = (self.snd_una + self.snd_wnd).saturating_sub(self.snd_nxt);
        if room > 0 {
            // Part of a segment fits: send exactly that.
            if self.send_new_segment(ctx, Some(room)) {
                self.set_timer(ctx, TimerKind::Retransmit, self.rto);
            }
            self.probes_out = 0;
            self.check_persist(ctx);
            return;
        }
        let seq = self.snd_nxt;
        let payload = self.sndbuf.read(self.data_nxt(), 1);
        let repr = self.make_segment(ctx.now, seq, 0);
        self.zero_window_probes += 1;
        if ctx.env.tracing() {
            ctx.env
                .trace("tcp_zero_window_probe", &[("conn", self.conn_label())]);
        }
        // A window probe is not ECN-capable (Linux's probe carries no data).
        let ecn = self.ecn_codepoint(false);
        let _ = self.transmit(ctx, repr, payload, false, ecn);
        self.probe_out = Some(ctx.now);
        self.probes_out = self.probes_out.saturating_add(1);
        let t = self.probe_timeout(ctx.cfg);
        self.set_timer(ctx, TimerKind::Persist, t);
    }

    // ------------------------------------------------------------------ input

    /// Processes a segment for this connection (any state but LISTEN); `ecn` is the ECN
    /// field of its IP header.
    pub fn input(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &TcpRepr,
        payload: &Payload,
        ecn: Ecn,
    ) -> InputOutcome {
        self.segs_in += 1;
        if ctx.env.tracing() {
            self.trace_segment(ctx, "tcp_rx", seg, payload.len(), false);
        }
        match self.state {
            TcpState::SynSent => return self.input_syn_sent(ctx, seg),
            TcpState::TimeWait => return self.input_time_wait(ctx, seg, payload),
            TcpState::Closed | TcpState::Listen => return InputOutcome::Nothing,
            _ => {}
        }
        let seq_len = seg.seq_len(payload.len());
        let rst = seg.has(flags::RST);

        // PAWS (RFC 7323): an old timestamp marks an old duplicate.
        if self.ts_ok && !rst {
            if let Some((val, _)) = seg.options.timestamps {
                if (val.wrapping_sub(self.ts_recent) as i32) < 0 && seq_len > 0 {
                    self.send_oow_ack(ctx, false);
                    return InputOutcome::Nothing;
                }
            }
        }

        // Sequence acceptability (Linux tcp_sequence): not entirely before what we last
        // acknowledged, not beyond the right edge of the window.
        let rcv_nxt = self.rcv_nxt();
        let wup = self.irs + self.rcv_wup as u32;
        let right = rcv_nxt + self.receive_window() as u32;
        let end = seg.seq + seq_len;
        let acceptable = !end.before(wup) && !seg.seq.after(right);
        if !acceptable {
            if !rst {
                if self.state == TcpState::SynReceived && seg.has(flags::SYN) {
                    // A retransmitted SYN: answer with the SYN-ACK again.
                    let _ = self.send_syn(ctx, true);
                    return InputOutcome::Nothing;
                }
                self.send_oow_ack(ctx, false);
            }
            return InputOutcome::Nothing;
        }

        if rst {
            // RFC 5961: only an exact RST resets; an in-window one gets a challenge ACK.
            if seg.seq == rcv_nxt {
                ctx.counters.resets_received += 1;
                return self.on_reset(ctx);
            }
            self.send_oow_ack(ctx, true);
            return InputOutcome::Nothing;
        }

        // Simultaneous open: the peer's SYN-ACK completes our SYN_RECV (Linux lets it
        // past the RFC 5961 SYN check).
        let simultaneous_synack = self.state == TcpState::SynReceived
            && self.parent.is_none()
            && seg.has(flags::SYN | flags::ACK)
            && seg.has(flags::ACK)
            && seg.seq + 1 == rcv_nxt
            && self.ack_off(seg.ack) == self.snd_nxt as i64;
        if seg.has(flags::SYN) && !simultaneous_synack {
            if self.state == TcpState::SynReceived && seg.seq == self.irs {
                let _ = self.send_syn(ctx, true);
                return InputOutcome::Nothing;
            }
            // RFC 5961 section 4: a SYN in a synchronized state gets a challenge ACK.
            self.send_oow_ack(ctx, true);
            return InputOutcome::Nothing;
        }

        if !seg.has(flags::ACK) {
            return InputOutcome::Nothing;
        }

        // Timestamps: remember the peer's clock for segments covering rcv_wup.
        if self.ts_ok {
            if let Some((val, _)) = seg.options.timestamps {
                if !seg.seq.after(wup) {
                    self.ts_recent = val;
                }
            }
        }
        self.last_rcv = ctx.now;
        self.ka_probes = 0;

        let mut outcome = InputOutcome::Nothing;
        if self.state == TcpState::SynReceived {
            if self.ack_off(seg.ack) != 1 {
                return InputOutcome::Reset;
            }
            if self.parent.is_some() {
                // The stack decides whether the accept queue has room.
                return InputOutcome::Established;
            }
            self.handshake_acked(ctx, seg);
            self.set_state(ctx, TcpState::Established);
            self.on_established(ctx);
            self.notify_connected(ctx);
            outcome = InputOutcome::Established;
        }

        if let Some(o) = self.process_ack(ctx, seg, payload) {
            return o;
        }
        if let Some(o) = self.process_data(ctx, seg, payload, ecn) {
            return o;
        }
        self.push(ctx);
        self.ack_snd_check(ctx);
        if self.state == TcpState::Closed {
            return InputOutcome::Closed;
        }
        outcome
    }

    /// Completes a SYN_RECV child's handshake once the stack found room for it.
    pub fn finish_passive_open(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &TcpRepr,
        payload: &Payload,
        ecn: Ecn,
    ) -> InputOutcome {
        self.handshake_acked(ctx, seg);
        self.set_state(ctx, TcpState::Established);
        self.on_established(ctx);
        self.finish_passive_open_data(ctx, seg, payload, ecn)
    }

    /// The rest of the segment that completed a passive open: its ACK and data.
    pub fn finish_passive_open_data(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &TcpRepr,
        payload: &Payload,
        ecn: Ecn,
    ) -> InputOutcome {
        if let Some(o) = self.process_ack(ctx, seg, payload) {
            return o;
        }
        if let Some(o) = self.process_data(ctx, seg, payload, ecn) {
            return o;
        }
        self.push(ctx);
        self.ack_snd_check(ctx);
        InputOutcome::Nothing
    }

    /// The ACK of our SYN-ACK arrived (SYN_RECV to ESTABLISHED).
    fn handshake_acked(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr) {
        self.snd_una = 1;
        self.snd_wnd = (seg.window as u64) << self.snd_wscale;
        self.max_window = self.max_window.max(self.snd_wnd);
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
        self.clear_timer(TimerKind::Retransmit);
        if let Some(r) = self.handshake_rtt(ctx, seg) {
            self.rtt_sample(ctx, r);
        }
        self.retransmits = 0;
        self.retrans_stamp = None;
        self.rto = self.rtt.rto().max(ctx.cfg.rto_min);
    }

    fn notify_connected(&mut self, ctx: &mut Ctx<'_>) {
        if !self.connect_notified {
            self.connect_notified = true;
            self.notify(ctx, TcpEvent::Connected);
        }
    }

    /// The receive window still open to the peer.
    fn receive_window(&self) -> u64 {
        (self.rcv_wup + self.rcv_wnd).saturating_sub(self.rcv_nxt_off())
    }

    fn input_syn_sent(&mut self, ctx: &mut Ctx<'_>, seg: &TcpRepr) -> InputOutcome {
        if seg.has(flags::ACK) {
            let ack = self.ack_off(seg.ack);
            if ack != 1 {
                if seg.has(flags::RST) {
                    return InputOutcome::Nothing;
                }
                // An ACK for something we never sent (e.g. a stale connection's challenge
                // ACK after our restart): reset it, as RFC 9293 says.
                return InputOutcome::Reset;
            }
        }
        if seg.has(flags::RST) {
            if seg.has(flags::ACK) {
                ctx.counters.resets_received += 1;
                ctx.counters.attempt_fails += 1;
                self.fail(ctx, Errno::ConnRefused);
                return InputOutcome::Closed;
            }
            return InputOutcome::Nothing;
        }
        if !seg.has(flags::SYN) {
            return InputOutcome::Nothing;
        }
        self.learn_syn(ctx.cfg, seg);
        self.clear_timer(TimerKind::Retransmit);
        if seg.has(flags::ACK) {
            self.ecn.on_synack(seg.flags);
            self.snd_una = 1;
            self.snd_wl2 = seg.ack;
            if let Some(r) = self.handshake_rtt(ctx, seg) {
                self.rtt_sample(ctx, r);
            }
            self.retransmits = 0;
            self.retrans_stamp = None;
            self.rto = self.rtt.rto().max(ctx.cfg.rto_min);
            self.set_state(ctx, TcpState::Established);
            self.on_established(ctx);
            self.send_ack(ctx);
            self.notify_connected(ctx);
            self.push(ctx);
            InputOutcome::Nothing
        } else {
            // Simultaneous open (RB-TCP-12).
            self.ecn.on_syn(seg.flags);
            self.set_state(ctx, TcpState::SynReceived);
            self.rcv_wnd = self.initial_window();
            let _ = self.send_syn(ctx, false);
            self.set_timer(ctx, TimerKind::Retransmit, self.rto);
            InputOutcome::Nothing
        }
    }

    fn input_time_wait(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &TcpRepr,
        payload: &Payload,
    ) -> InputOutcome {
        if seg.has(flags::RST) {
            // RFC 1337 is off in Linux by default: a reset ends TIME_WAIT early.
            self.clear_all_timers();
            return InputOutcome::Closed;
        }
        let rcv_nxt = self.rcv_nxt();
        if seg.has(flags::SYN) && seg.seq.after(rcv_nxt) {
            // A new incarnation of the connection (Linux TCP_TW_SYN).
            ctx.counters.time_wait_recycled += 1;
            self.clear_all_timers();
            return InputOutcome::Reopen;
        }
        if seg.has(flags::FIN) && seg.seq + payload.len() as u32 + 1 == rcv_nxt {
            // A retransmitted FIN: ACK it again and restart the TIME_WAIT clock (RB-TCP-09).
            self.send_ack(ctx);
            let tw = ctx.cfg.time_wait;
            self.set_timer(ctx, TimerKind::Linger, tw);
            return InputOutcome::Nothing;
        }
        if seg.seq_len(payload.len()) > 0 || !seg.has(flags::ACK) {
            self.send_oow_ack(ctx, false);
        }
        InputOutcome::Nothing
    }

    fn on_reset(&mut self, ctx: &mut Ctx<'_>) -> InputOutcome {
        let err = match self.state {
            TcpState::SynReceived if self.parent.is_some() => {
                self.set_state(ctx, TcpState::Closed);
                self.clear_all_timers();
                return InputOutcome::Closed;
            }
            TcpState::SynSent => Errno::ConnRefused,
            TcpState::CloseWait => Errno::Pipe,
            TcpState::Closing | TcpState::LastAck => {
                self.set_state(ctx, TcpState::Closed);
                self.clear_all_timers();
                return InputOutcome::Closed;
            }
            _ => Errno::ConnReset,
        };
        if matches!(self.state, TcpState::Established | TcpState::CloseWait) {
            ctx.counters.estab_resets += 1;
        }
        self.rcvbuf.clear();
        self.fail(ctx, err);
        InputOutcome::Closed
    }

    /// ACK processing (RFC 9293 "fifth, check the ACK field", Linux `tcp_ack`). Returns
    /// an outcome when the connection ended.
    fn process_ack(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &TcpRepr,
        payload: &Payload,
    ) -> Option<InputOutcome> {
        let ack = self.ack_off(seg.ack);
        if ack == self.snd_nxt as i64 + 1 && self.probe_out.is_some() && self.unsent() > 0 {
            // The peer took our one-byte zero-window probe: it was sent after all.
            let sent_at = self.probe_out.take().unwrap_or(ctx.now);
            let tx = self.tx_snapshot(ctx);
            self.rtx.push_back(Sent {
                start: self.snd_nxt,
                end: self.snd_nxt + 1,
                sent_at,
                flags: 0,
                tx,
            });
            self.snd_nxt += 1;
        }
        if ack > self.snd_nxt as i64 {
            // Acknowledges data never sent: drop (Linux sends nothing here).
            return Some(InputOutcome::Nothing);
        }
        if ack < self.snd_una as i64 {
            // An old ACK: too old means a blind injection attempt (RFC 5961 5.2).
            if (self.snd_una as i64 - ack) as u64 > self.max_window.max(65535) {
                self.send_oow_ack(ctx, true);
                return Some(InputOutcome::Nothing);
            }
            return None;
        }
        let ack = ack as u64;
        let prior_una = self.snd_una;
        let prior_in_flight = self.in_flight();
        let nwin = (seg.window as u64) << self.snd_wscale;

        // Window update (Linux tcp_may_update_window). An ACK that may update the window
        // is not a duplicate ACK (Linux FLAG_WIN_UPDATE), even if the window is unchanged.
        let win_update = ack > prior_una
            || seg.seq.after(self.snd_wl1)
            || (seg.seq == self.snd_wl1 && (nwin > self.snd_wnd || nwin == 0));
        if win_update {
            let opened = self.snd_wnd == 0 && nwin > 0;
            self.snd_wnd = nwin;
            self.max_window = self.max_window.max(nwin);
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
            if opened {
                self.probes_out = 0;
                self.clear_timer(TimerKind::Persist);
            }
        }

        // SACK scoreboard.
        let mut delivered = 0;
        let mut newly_sacked = false;
        let mut probe: Option<RateProbe> = None;
        let lost_before = self.lost_total;
        let min_rtt = self.rtt.min_rtt();
        let prior_highest_sacked = self.highest_sacked;
        if self.sack_ok && !seg.options.sack.is_empty() {
            for &(l, r) in seg.options.sack.as_slice() {
                let lo = self.ack_off(l);
                let hi = self.ack_off(r);
                if lo < ack as i64 || hi > self.snd_nxt as i64 || lo >= hi {
                    continue; // D-SACK or bogus
                }
                let (lo, hi) = (lo as u64, hi as u64);
                let mut i = self.index_from(0, lo);
                while i < self.rtx.len() {
                    if self.rtx[i].start >= hi {
                        break;
                    }
                    if self.rtx[i].has(SENT_SACKED) {
                        i = self.skip_sacked(i);
                        continue;
                    }
                    let s = &mut self.rtx[i];
                    i += 1;
                    if s.end <= hi {
                        s.flags |= SENT_SACKED;
                        self.sacked.insert(s.start, s.end);
                        self.sacked_bytes += s.len();
                        delivered += s.len();
                        newly_sacked = true;
                        rate_probe(&mut probe, s);
                        let retransmitted = s.has(SENT_EVER_RETRANS);
                        self.rack
                            .on_delivered(ctx.now, s.sent_at, s.end, retransmitted, min_rtt);
                        if !retransmitted && s.start < prior_highest_sacked {
                            self.rack.saw_reordering();
                        }
                        self.highest_sacked = self.highest_sacked.max(s.end);
                        if s.has(SENT_LOST) {
                            s.flags &= !SENT_LOST;
                            self.lost_bytes -= s.len();
                        }
                        if s.has(SENT_RETRANS) {
                            s.flags &= !SENT_RETRANS;
                            self.retrans_bytes -= s.len();
                        }
                    }
                }
            }
        }

        let is_dupack = ack == prior_una
            && payload.is_empty()
            && !seg.has(flags::SYN | flags::FIN)
            && prior_una < self.snd_nxt
            && !win_update;

        let mut rtt = None;
        let mut fin_acked = false;
        if ack > prior_una {
            // Remove what is acknowledged.
            let mut seq_rtt: Option<SimTime> = None;
            let mut ever_retrans = false;
            while let Some(s) = self.rtx.front().copied() {
                if s.end > ack {
                    if s.start < ack {
                        // Partially acknowledged: trim.
                        let front = &mut self.rtx[0];
                        let cut = ack - s.start;
                        if s.has(SENT_LOST) {
                            self.lost_bytes -= cut;
                        }
                        if s.has(SENT_RETRANS) {
                            self.retrans_bytes -= cut;
                        }
                        front.start = ack;
                        if !s.has(SENT_SACKED) {
                            delivered += cut;
                        }
                    }
                    break;
                }
                self.rtx.pop_front();
                if s.has(SENT_SACKED) {
                    self.sacked_bytes -= s.len();
                } else {
                    delivered += s.len();
                    rate_probe(&mut probe, &s);
                    let retransmitted = s.has(SENT_EVER_RETRANS);
                    self.rack
                        .on_delivered(ctx.now, s.sent_at, s.end, retransmitted, min_rtt);
                    if !retransmitted && s.start < prior_highest_sacked {
                        self.rack.saw_reordering();
                    }
                }
                if s.has(SENT_LOST) {
                    self.lost_bytes -= s.len();
                }
                if s.has(SENT_RETRANS) {
                    self.retrans_bytes -= s.len();
                }
                if s.has(SENT_FIN) {
                    fin_acked = true;
                }
                if s.has(SENT_EVER_RETRANS) {
                    ever_retrans = true;
                } else if seq_rtt.is_none() {
                    seq_rtt = Some(s.sent_at);
                }
            }
            let data_acked = ack.min(self.sndbuf.end() + 1) - prior_una.max(1).min(ack);
            self.bytes_acked += data_acked;
            self.sndbuf.release(ack.saturating_sub(1));
            self.sacked.release_below(ack);
            self.snd_una = ack;
            // Karn's rule, with timestamps as the tiebreaker (RB-TCP-32, RB-TCP-38).
            if let Some(t) = seq_rtt.filter(|_| !ever_retrans) {
                rtt = Some(ctx.now.saturating_since(t));
            } else {
                rtt = self.ts_rtt(ctx.now, seg);
            }
            if let Some(r) = rtt {
                self.rtt_sample(ctx, r);
            }
            self.retransmits = 0;
            self.retrans_stamp = None;
            self.reno_dupacks = if self.sack_ok {
                0
            } else {
                // A cumulative ACK consumes the virtual SACKs it covers (Linux tcp_remove_reno_sacks).
                let segs = (ack - prior_una).div_ceil(self.win.mss.max(1) as u64) as u32;
                self.reno_dupacks.saturating_sub(segs)
            };
            if self.snd_una == self.snd_nxt {
                self.clear_timer(TimerKind::Retransmit);
            }
            if self.want_write && self.sndbuf.len() < self.sndbuf_cap {
                self.want_write = false;
                self.notify(ctx, TcpEvent::Writable);
            }
        } else if is_dupack {
            self.dup_acks_in += 1;
            if !self.sack_ok {
                let max = ((self.snd_nxt - self.snd_una) / self.win.mss.max(1) as u64) as u32;
                self.reno_dupacks = (self.reno_dupacks + 1).min(max.saturating_sub(1));
                delivered += self.win.mss as u64;
            }
        }

        // Linux ca_rtt_us: the newest segment delivered, unless it was retransmitted.
        let newest_rtt = probe
            .filter(|p| !p.ever_retrans)
            .map(|p| ctx.now.saturating_since(p.sent_at));
        let rate = self.rate_sample(ctx.now, delivered, probe);
        let ece = self.ecn.ece(seg.flags);
        if ece {
            self.delivered_ce += delivered;
        }
        // Linux tcp_rate_skb_delivered's tx_in_flight and lost, taken before this ACK's
        // loss detection.
        let flight = probe.map(|p| FlightSample {
            tx_in_flight: p.tx.in_flight,
            lost: self.lost_total - p.tx.lost,
            delivered: self.delivered - p.tx.delivered,
            delivered_ce: self.delivered_ce - p.tx.delivered_ce,
            prior_delivered: p.tx.delivered,
            is_app_limited: p.tx.app_limited,
            rtt: (!p.ever_retrans).then(|| ctx.now.saturating_since(p.sent_at)),
        });
        // Linux accepts CWR on any acceptable ACK, pure ones too.
        if self.ecn.accept_cwr(seg.flags, !payload.is_empty()) {
            self.ack.now = true;
        }
        self.cc.on_ack_event(&AckEvent {
            now: ctx.now,
            snd_una: self.snd_una,
            snd_nxt: self.snd_nxt,
            delivered: self.delivered,
            delivered_ce: self.delivered_ce,
            ece,
            rtt: newest_rtt,
        });
        let news = AckNews {
            una_advanced: ack > prior_una,
            newly_sacked,
            delivered,
            prior_in_flight,
            rtt,
            rate,
            flight,
            lost_before,
            ece,
        };
        if self.tlp_high_seq.is_some() {
            self.process_tlp_ack(ctx, ack, news.una_advanced, is_dupack && !newly_sacked);
        }
        // With nothing outstanding before this ACK (a pure receiver's case) Linux's
        // tcp_ack stops here (`if (!prior_packets) goto no_queue`): no loss detection,
        // no controller.
        if prior_una == self.snd_nxt {
            debug_assert!(!fin_acked);
            return None;
        }
        // Loss detection and recovery (Linux tcp_fastretrans_alert), then the controller.
        let reorder_timer = self.recovery(ctx, &news);
        // Linux tcp_set_xmit_timer: a loss probe or the RTO, unless RACK armed its timer.
        let set_xmit_timer = news.una_advanced && self.snd_una < self.snd_nxt && !reorder_timer;
        if set_xmit_timer && !self.schedule_loss_probe(ctx, true) {
            self.rearm_rto(ctx);
        }
        self.cong_control(ctx, &news);
        // Something was outstanding: a point of the sender's time series.
        self.probe(ctx);
        if fin_acked {
            if let Some(o) = self.on_fin_acked(ctx) {
                return Some(o);
            }
        }
        None
    }

    fn rtt_sample(&mut self, ctx: &mut Ctx<'_>, r: SimDuration) {
        self.rtt.sample(
            r,
            self.seq_of(self.snd_una),
            self.seq_of(self.snd_nxt),
            ctx.cfg.rto_min,
            ctx.cfg.rto_max,
        );
        self.rto = self.rtt.rto().max(ctx.cfg.rto_min).min(ctx.cfg.rto_max);
    }

    /// Loss detection and recovery state (Linux `tcp_fastretrans_alert`); during fast
    /// recovery the window follows PRR unless the controller sets it itself. Returns
    /// whether RACK armed its reordering timer (which then replaces the RTO).
    fn recovery(&mut self, ctx: &mut Ctx<'_>, news: &AckNews) -> bool {
        let mss = self.win.mss as u64;
        let full_control = self.cc.controls_window();
        // Leaving a recovery episode.
        let partial_ack_ends = self.ca == CaState::Recovery
            && !self.sack_ok
            && news.una_advanced
            && self.cc.partial_ack_ends_recovery();
        if self.ca == CaState::Cwr && self.snd_una > self.high_seq {
            // Linux tcp_end_cwnd_reduction: held until something sent after the reduction
            // began (and so carrying CWR) is acknowledged.
            if !full_control {
                self.win.cwnd = self.win.ssthresh.max(mss);
            }
            self.cc.on_event(&mut self.win, CcEvent::ExitCwr);
            self.ca = CaState::Open;
            self.trace_ca(ctx);
        }
        if matches!(self.ca, CaState::Recovery | CaState::Loss)
            && (self.snd_una >= self.high_seq || partial_ack_ends)
        {
            if self.ca == CaState::Recovery {
                if !full_control {
                    self.win.cwnd = self.win.ssthresh.max(mss);
                }
                self.cc.on_event(&mut self.win, CcEvent::ExitRecovery);
            }
            self.ca = CaState::Open;
            self.reno_dupacks = 0;
            self.trace_ca(ctx);
        }
        // Everything acknowledged: nothing can be lost, but the window still grows.
        let all_acked = self.snd_una == self.snd_nxt;
        let mut reorder_timer = false;
        if self.sack_ok && !all_acked {
            if ctx.cfg.rack() {
                reorder_timer = self.rack_mark_lost(ctx);
            } else if news.newly_sacked {
                self.mark_lost_from_sacks(ctx.now);
            }
        }
        match self.ca {
            CaState::Open | CaState::Disorder | CaState::Cwr => {
                let dupthresh = ctx.cfg.reordering;
                let trigger = !all_acked
                    && if self.sack_ok {
                        self.lost_bytes > 0
                    } else {
                        self.reno_dupacks >= dupthresh
                    };
                if trigger {
                    self.enter_recovery(ctx);
                    if !full_control {
                        self.prr_update(ctx, news.delivered);
                    }
                    return reorder_timer;
                }
                // Linux tcp_try_to_open: an ECN-Echo starts one reduction per window.
                if news.ece && self.ca != CaState::Cwr {
                    self.enter_cwr(ctx);
                }
                if self.ca == CaState::Cwr {
                    if !full_control {
                        self.prr_update(ctx, news.delivered);
                    }
                    return reorder_timer;
                }
                self.ca = if self.sacked_bytes > 0 || self.reno_dupacks > 0 {
                    CaState::Disorder
                } else {
                    CaState::Open
                };
            }
            CaState::Recovery => {
                if news.una_advanced && !self.sack_ok {
                    // NewReno partial ACK (RFC 6582): the next hole is lost too.
                    self.lower_rtx_hint(0, u64::MAX);
                    let mut newly_lost = None;
                    if let Some(s) = self.rtx.front_mut() {
                        if !s.has(SENT_LOST) {
                            s.flags |= SENT_LOST;
                            s.flags &= !SENT_RETRANS;
                            self.lost_bytes += s.len();
                            newly_lost = Some(*s);
                        } else if s.has(SENT_RETRANS) {
                            s.flags &= !SENT_RETRANS;
                            self.retrans_bytes -= s.len();
                        }
                    }
                    if let Some(s) = newly_lost {
                        self.note_lost(ctx.now, &s);
                    }
                }
                if !full_control {
                    self.prr_update(ctx, news.delivered);
                }
            }
            CaState::Loss => {}
        }
        reorder_timer
    }

    /// Linux `tcp_rack_mark_lost`: after a delivery moved RACK on, marks what it shows
    /// lost and arms the reordering timer for segments that may still be reordered.
    /// Returns whether the timer was armed.
    fn rack_mark_lost(&mut self, ctx: &mut Ctx<'_>) -> bool {
        if !self.rack.take_advanced() {
            return false;
        }
        match self.rack_detect_loss(ctx) {
            Some(wait) => {
                let after = (wait + rack::TIMEOUT_MIN).min(self.rto);
                self.arm_xmit_timer(ctx, XmitTimer::ReorderTimeout, after);
                true
            }
            None => false,
        }
    }

    /// Linux `tcp_rack_detect_loss`: every segment in flight that was sent before RACK's
    /// segment and has waited an RTT plus the reordering window is lost, retransmissions
    /// included. Returns the longest wait of those not lost yet.
    fn rack_detect_loss(&mut self, ctx: &mut Ctx<'_>) -> Option<SimDuration> {
        let mss = self.win.mss.max(1) as u64;
        let window = self.rack.reorder_window(
            matches!(self.ca, CaState::Recovery | CaState::Loss),
            self.sacked_bytes.div_ceil(mss),
            ctx.cfg.reordering,
            ctx.cfg.recovery & super::config::RACK_NO_DUPTHRESH != 0,
            self.rtt.min_rtt(),
            self.rtt.srtt(),
        );
        let mut longest: Option<SimDuration> = None;
        // Start past the segments that cannot have anything to say (see `rack_scan_from`),
        // or at the lowest of the retransmissions among them that RACK's segment was
        // sent after.
        let recorded_below = self.rack_scan_from;
        let mut from = recorded_below;
        while let Some(&Reverse((t, end))) = self.rack_scan_retrans.peek() {
            if !self.rack.sent_before(t, end) {
                break;
            }
            self.rack_scan_retrans.pop();
            // The segment that ends there (its start may have moved: a partial ACK, or a
            // split before a later retransmission), if that retransmission is still out.
            let k = self.rtx.partition_point(|s| s.end < end);
            if let Some(s) = self.rtx.get(k).filter(|s| {
                s.end == end
                    && s.sent_at == t
                    && s.has(SENT_EVER_RETRANS)
                    && !s.has(SENT_SACKED)
                    && !s.waits_for_retransmission()
            }) {
                from = from.min(s.start);
            }
        }
        self.debug_check_rack_scan_from(from);
        let mut i = self.index_from(0, from);
        let mut cursor = self
            .rtx
            .get(i)
            .map_or(0, |s| self.sacked.cursor_at(s.start));
        // The first segment the next scan has to look at again, if any.
        let mut next_from = None;
        while i < self.rtx.len() {
            let s = self.rtx[i];
            if s.has(SENT_SACKED) {
                i = self.skip_sacked_walking(i, &mut cursor);
                continue;
            }
            i += 1;
            if s.has(SENT_LOST) && !s.has(SENT_RETRANS) {
                continue;
            }
            let Some(wait) = self.rack.loss_wait(ctx.now, s.sent_at, s.end, window) else {
                // Originals go out in sequence order, and a retransmission after its
                // original: past the first original sent after RACK's segment, every
                // segment was.
                if s.has(SENT_EVER_RETRANS) {
                    // Those below `recorded_below` are recorded already.
                    if next_from.is_none() && s.start >= recorded_below {
                        self.rack_scan_retrans.push(Reverse((s.sent_at, s.end)));
                    }
                    continue;
                }
                next_from.get_or_insert(s.start);
                break;
            };
            if wait > SimDuration::ZERO {
                next_from.get_or_insert(s.start);
                longest = Some(longest.map_or(wait, |l| l.max(wait)));
                continue;
            }
            self.lower_rtx_hint(s.start, s.end);
            let seg = &mut self.rtx[i - 1];
            if seg.has(SENT_RETRANS) {
                seg.flags &= !SENT_RETRANS;
                self.retrans_bytes -= s.len();
                ctx.counters.lost_retransmits += 1;
            }
            if !seg.has(SENT_LOST) {
                seg.flags |= SENT_LOST;
                self.lost_bytes += s.len();
            }
            self.note_lost(ctx.now, &s);
        }
        self.rack_scan_from = next_from.unwrap_or(self.snd_nxt);
        longest
    }

    /// Debug builds: no segment below `from` has anything to tell RACK's loss scan.
    fn debug_check_rack_scan_from(&self, from: u64) {
        if cfg!(debug_assertions) {
            for s in self.rtx.iter().take_while(|s| s.start < from) {
                let waiting = s.has(SENT_LOST) && !s.has(SENT_RETRANS);
                let retransmitted_later =
                    s.has(SENT_EVER_RETRANS) && !self.rack.sent_before(s.sent_at, s.end);
                assert!(
                    s.has(SENT_SACKED) || waiting || retransmitted_later,
                    "RACK scan would skip {s:?} (from {from})"
                );
            }
        }
    }

    /// Linux `tcp_rack_reo_timeout`: the reordering window passed; what RACK now finds
    /// lost starts (or continues) fast recovery and is retransmitted.
    fn on_reorder_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let prior_in_flight = self.in_flight();
        self.rack_detect_loss(ctx);
        if self.in_flight() != prior_in_flight {
            if self.ca != CaState::Recovery {
                self.enter_recovery(ctx);
                if !self.cc.controls_window() {
                    self.prr_update(ctx, self.win.mss as u64);
                }
            }
            self.push(ctx);
        }
        if self.deadlines.get(TimerKind::Retransmit).is_none() || self.xmit_timer != XmitTimer::Rto
        {
            self.rearm_rto(ctx);
        }
    }

    /// Linux `tcp_send_loss_probe`: new data if the window allows, else the last segment
    /// again, so that a lost tail draws SACKs and fast recovery instead of an RTO.
    fn send_loss_probe(&mut self, ctx: &mut Ctx<'_>) {
        if self.tlp_high_seq.is_some() {
            // At most one probe per tail.
            self.rearm_rto(ctx);
            return;
        }
        self.tlp_retrans = false;
        let sent = if self.send_new_segment(ctx, Some(u64::MAX)) {
            true
        } else if let Some(last) = self.rtx.len().checked_sub(1) {
            let mss = self.win.mss as u64;
            let s = self.rtx[last];
            let data_len = s.len() - s.has(SENT_FIN) as u64;
            let i = if data_len > mss {
                // Probe with the last MSS of an oversized segment.
                let mut head = s;
                head.end = s.end - mss - s.has(SENT_FIN) as u64;
                head.flags &= !SENT_FIN;
                let mut tail = s;
                tail.start = head.end;
                self.rtx[last] = head;
                self.rtx.push_back(tail);
                last + 1
            } else {
                last
            };
            // Linux's probe is not a retransmission for tcp_retries2's clock, which starts
            // at the first RTO retransmission (from the probe's send time).
            let stamp = self.retrans_stamp;
            self.retransmit_index(ctx, i);
            self.retrans_stamp = stamp;
            self.tlp_retrans = true;
            true
        } else {
            false
        };
        if sent {
            self.tlp_high_seq = Some(self.snd_nxt);
            ctx.counters.loss_probes += 1;
            if ctx.env.tracing() {
                ctx.env.trace(
                    "tcp_loss_probe",
                    &[
                        ("conn", self.conn_label()),
                        ("retransmission", self.tlp_retrans.into()),
                    ],
                );
            }
            // The RTO restarts from the probe.
            self.clear_timer(TimerKind::Retransmit);
        }
        self.rearm_rto(ctx);
    }

    /// Linux `tcp_process_tlp_ack`: an ACK beyond the probe without a sign that the probe
    /// was redundant means the probe repaired a loss; the window is reduced once, as for
    /// any congestion signal, without a recovery episode.
    fn process_tlp_ack(&mut self, ctx: &mut Ctx<'_>, ack: u64, una_advanced: bool, pure_dup: bool) {
        let Some(high) = self.tlp_high_seq else {
            return;
        };
        if ack < high {
            return;
        }
        if !self.tlp_retrans {
            self.tlp_high_seq = None;
        } else if ack > high {
            self.tlp_high_seq = None;
            ctx.counters.loss_probe_recoveries += 1;
            self.reduce_cwnd_once(ctx);
        } else if !una_advanced && pure_dup {
            // The original and the probe both arrived: nothing was lost.
            self.tlp_high_seq = None;
        }
    }

    /// Linux `tcp_init_cwnd_reduction` + `tcp_end_cwnd_reduction` in the CWR state: the
    /// controller's reduction applied at once.
    fn reduce_cwnd_once(&mut self, ctx: &mut Ctx<'_>) {
        self.high_seq = self.snd_nxt;
        self.prior_cwnd = self.win.cwnd;
        let in_flight = self.in_flight();
        self.win.ssthresh = self.cc.ssthresh(&self.win, in_flight);
        if !self.cc.controls_window() {
            self.win.cwnd = self.win.ssthresh.max(self.win.mss as u64);
        }
        self.ecn.queue_cwr();
        if self.ca == CaState::Cwr {
            // This reduction ends an ECN one under way (Linux tcp_try_keep_open).
            self.ca = CaState::Open;
        }
        self.trace_ca(ctx);
    }

    /// Linux `tcp_enter_cwr`: an ECN-Echo reduces the window once per window of data. The
    /// controller's ssthresh is the target and PRR walks the window down to it, as in
    /// fast recovery but without retransmitting; CWR goes out on the next new data.
    fn enter_cwr(&mut self, ctx: &mut Ctx<'_>) {
        self.high_seq = self.snd_nxt;
        self.tlp_high_seq = None;
        self.prior_cwnd = self.win.cwnd;
        self.prr_delivered = 0;
        self.prr_out = 0;
        let in_flight = self.in_flight();
        self.win.ssthresh = self.cc.ssthresh(&self.win, in_flight);
        self.ecn.queue_cwr();
        self.ca = CaState::Cwr;
        self.cc.on_event(&mut self.win, CcEvent::EnterCwr);
        self.trace_ca(ctx);
    }

    /// Hands the ACK to the congestion controller (Linux `tcp_cong_control`): a controller
    /// that sets the window itself hears of every ACK that found data outstanding; the
    /// others grow the window on ACKs of new data outside fast recovery.
    fn cong_control(&mut self, ctx: &mut Ctx<'_>, news: &AckNews) {
        let full_control = self.cc.controls_window();
        let grows = news.una_advanced && !matches!(self.ca, CaState::Recovery | CaState::Cwr);
        if !full_control && !grows {
            return;
        }
        let sample = AckSample {
            now: ctx.now,
            acked: news.delivered,
            lost: self.lost_total - news.lost_before,
            lost_total: self.lost_total,
            rtt: news.rtt,
            min_rtt: self.rtt.min_rtt(),
            srtt: self.rtt.srtt(),
            prior_in_flight: news.prior_in_flight,
            in_flight: self.in_flight(),
            delivered: self.delivered,
            // After an RTO the window restarts from what is in flight and must grow.
            cwnd_limited: self.ca == CaState::Loss || self.is_cwnd_limited(),
            ca_state: self.ca,
            rate: news.rate,
            ece: news.ece,
            delivered_ce: self.delivered_ce,
            flight: news.flight,
        };
        self.cc.on_ack(&mut self.win, &sample);
        if full_control {
            self.win.cwnd = self.win.cwnd.max(self.win.mss as u64);
        }
        self.trace_cc_phase(ctx);
        // Linux tcp_new_space: acknowledged data freed room, and the window is not full
        // (tcp_should_expand_sndbuf), whatever the loss-recovery state.
        if news.una_advanced && self.in_flight() < self.win.cwnd {
            self.expand_sndbuf(ctx.cfg);
        }
    }

    /// Linux `tcp_rate_gen`: turns the most recently sent segment this ACK delivered into
    /// a delivery-rate sample, and moves the connection's delivered count on.
    fn rate_sample(
        &mut self,
        now: SimTime,
        delivered: u64,
        probe: Option<RateProbe>,
    ) -> Option<RateSample> {
        if delivered == 0 {
            return None;
        }
        self.delivered += delivered;
        self.delivered_time = now;
        if self.app_limited != 0 && self.delivered > self.app_limited {
            self.app_limited = 0;
        }
        let p = probe?;
        // The flight the sampled segment belonged to began when it was sent.
        self.first_tx_time = p.sent_at;
        let send_elapsed = p.sent_at.saturating_since(p.tx.first_tx_time);
        let ack_elapsed = now.saturating_since(p.tx.delivered_time);
        let interval = send_elapsed.max(ack_elapsed);
        // An interval shorter than the path's minimum RTT would overestimate the rate.
        if interval == SimDuration::ZERO || self.rtt.min_rtt().is_some_and(|m| interval < m) {
            return None;
        }
        Some(RateSample {
            delivered: self.delivered - p.tx.delivered,
            interval,
            prior_delivered: p.tx.delivered,
            rtt: now.saturating_since(p.sent_at),
            is_app_limited: p.tx.app_limited,
        })
    }

    /// RFC 6675 IsLost: a segment with DupThresh segments (or (DupThresh-1)*MSS + 1
    /// bytes) SACKed above it is lost.
    fn mark_lost_from_sacks(&mut self, now: SimTime) {
        let mss = self.win.mss as u64;
        let mut sacked_above_segs = 0u32;
        let mut sacked_above_bytes = 0u64;
        for i in (0..self.rtx.len()).rev() {
            let s = self.rtx[i];
            if s.has(SENT_SACKED) {
                sacked_above_segs += 1;
                sacked_above_bytes += s.len();
                continue;
            }
            let lost = sacked_above_segs >= 3 || sacked_above_bytes > 2 * mss;
            if lost && !s.has(SENT_LOST) && !s.has(SENT_RETRANS) {
                self.lower_rtx_hint(s.start, s.end);
                self.rtx[i].flags |= SENT_LOST;
                self.lost_bytes += s.len();
                self.note_lost(now, &s);
            }
        }
    }

    fn enter_recovery(&mut self, ctx: &mut Ctx<'_>) {
        if self.ca != CaState::Cwr {
            let in_flight = self.in_flight();
            self.prior_cwnd = self.win.cwnd;
            self.win.ssthresh = self.cc.ssthresh(&self.win, in_flight);
            self.high_seq = self.snd_nxt;
            self.prr_delivered = 0;
            self.prr_out = 0;
            self.ecn.queue_cwr();
        }
        // From the CWR state the window is already coming down for this window of data
        // (Linux tcp_enter_recovery): no second reduction.
        self.cc.on_event(&mut self.win, CcEvent::EnterRecovery);
        self.ca = CaState::Recovery;
        self.fast_retransmits += 1;
        if !self.sack_ok {
            // NewReno: the first unacknowledged segment is lost.
            self.lower_rtx_hint(0, u64::MAX);
            if let Some(s) = self.rtx.front_mut() {
                if !s.has(SENT_LOST) {
                    s.flags |= SENT_LOST;
                    self.lost_bytes += s.len();
                    let s = *s;
                    self.note_lost(ctx.now, &s);
                }
            }
        }
        self.trace_ca(ctx);
    }

    /// Proportional Rate Reduction (RFC 6937, Linux `tcp_cwnd_reduction`).
    fn prr_update(&mut self, _ctx: &mut Ctx<'_>, delivered: u64) {
        if delivered == 0 {
            return;
        }
        let mss = self.win.mss as u64;
        self.prr_delivered += delivered;
        let pipe = self.in_flight();
        let ssthresh = self.win.ssthresh;
        let sndcnt = if pipe > ssthresh {
            let dividend = ssthresh * self.prr_delivered + self.prior_cwnd.max(1) - 1;
            (dividend / self.prior_cwnd.max(1)).saturating_sub(self.prr_out)
        } else {
            let limit = self
                .prr_delivered
                .saturating_sub(self.prr_out)
                .max(delivered)
                + mss;
            (ssthresh - pipe).min(limit)
        };
        let sndcnt = sndcnt.max(if self.prr_out == 0 { mss } else { 0 });
        self.win.cwnd = (pipe + sndcnt).max(mss);
    }

    /// One point of the connection's time series (Linux's `tcp:tcp_probe` tracepoint).
    fn probe(&self, ctx: &mut Ctx<'_>) {
        if ctx.env.probing() {
            let us = |d: SimDuration| d.as_nanos() / 1000;
            ctx.env.probe(&[
                ("conn", self.conn_label()),
                ("ca_state", TraceValue::Str(self.ca.name())),
                ("cwnd", self.win.cwnd.into()),
                ("ssthresh", self.win.ssthresh.min(u32::MAX as u64).into()),
                ("srtt_us", self.rtt.srtt().map_or(0, us).into()),
                ("rttvar_us", us(self.rtt.rttvar()).into()),
                ("rto_us", us(self.rto).into()),
                ("in_flight", self.in_flight().into()),
                ("delivered", (self.bytes_acked + self.sacked_bytes).into()),
                ("snd_wnd", self.snd_wnd.into()),
            ]);
        }
    }

    /// Counts `s` as newly marked lost and tells the controller (Linux
    /// `tcp_mark_skb_lost` with `skb_marked_lost`).
    fn note_lost(&mut self, now: SimTime, s: &Sent) {
        self.lost_total += s.len();
        self.cc.on_segment_lost(&LostSegment {
            now,
            len: s.len(),
            tx_in_flight: s.tx.in_flight,
            lost: self.lost_total - s.tx.lost,
            is_app_limited: s.tx.app_limited,
            delivered: self.delivered,
        });
    }

    /// Traces the controller's state when it changed (`tcp_cc_state`).
    fn trace_cc_phase(&mut self, ctx: &mut Ctx<'_>) {
        let phase = self.cc.phase();
        if phase == self.cc_phase {
            return;
        }
        self.cc_phase = phase;
        if let (Some(state), true) = (phase, ctx.env.tracing()) {
            let pacing = self.cc.pacing_rate().unwrap_or(0);
            ctx.env.trace(
                "tcp_cc_state",
                &[
                    ("conn", self.conn_label()),
                    ("state", TraceValue::Str(state)),
                    ("cwnd", self.win.cwnd.into()),
                    ("pacing_rate", pacing.into()),
                ],
            );
        }
    }

    fn trace_ca(&self, ctx: &mut Ctx<'_>) {
        if ctx.env.tracing() {
            ctx.env.trace(
                "tcp_ca_state",
                &[
                    ("conn", self.conn_label()),
                    ("ca_state", TraceValue::Str(self.ca.name())),
                    ("cwnd", self.win.cwnd.into()),
                    ("ssthresh", self.win.ssthresh.min(u32::MAX as u64).into()),
                ],
            );
        }
    }

    /// Our FIN was acknowledged.
    fn on_fin_acked(&mut self, ctx: &mut Ctx<'_>) -> Option<InputOutcome> {
        match self.state {
            TcpState::FinWait1 => {
                self.set_state(ctx, TcpState::FinWait2);
                if self.owner.is_none() {
                    // Orphaned: give the peer tcp_fin_timeout to finish (RB-TCP-10).
                    let t = ctx.cfg.fin_timeout;
                    self.set_timer(ctx, TimerKind::Linger, t);
                }
                None
            }
            TcpState::Closing => {
                self.enter_time_wait(ctx);
                None
            }
            TcpState::LastAck => {
                self.set_state(ctx, TcpState::Closed);
                self.clear_all_timers();
                Some(InputOutcome::Closed)
            }
            _ => None,
        }
    }

    fn enter_time_wait(&mut self, ctx: &mut Ctx<'_>) {
        self.set_state(ctx, TcpState::TimeWait);
        self.clear_all_timers();
        self.discard_queues();
        if self.owner.is_none() {
            // Only an orphan's unread data can go; an application may still read it.
            self.rcvbuf.clear();
        }
        let tw = ctx.cfg.time_wait;
        self.set_timer(ctx, TimerKind::Linger, tw);
    }

    /// Data and FIN (RFC 9293 "seventh, process the segment text"; Linux `tcp_data_queue`).
    fn process_data(
        &mut self,
        ctx: &mut Ctx<'_>,
        seg: &TcpRepr,
        payload: &Payload,
        ecn: Ecn,
    ) -> Option<InputOutcome> {
        let len = payload.len() as u64;
        let fin = seg.has(flags::FIN);
        if len == 0 && !fin {
            return None;
        }
        if !matches!(
            self.state,
            TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2
        ) {
            return None;
        }
        // Stream offset of the segment's first byte.
        let rel = seg.seq - self.rcv_nxt();
        let at = self.rcvbuf.next() as i64 + rel as i64;
        if self.owner.is_none() && self.parent.is_none() {
            // Data after close(): the application will never read it (RB-TCP-15).
            let new_data = at + len as i64 > self.rcvbuf.next() as i64;
            if len > 0 && new_data {
                ctx.counters.abort_on_data += 1;
                self.send_reset(ctx);
                self.set_state(ctx, TcpState::Closed);
                self.clear_all_timers();
                return Some(InputOutcome::Closed);
            }
        }
        if len > 0 {
            self.ack.rcv_mss = self.ack.rcv_mss.max(len.min(self.advmss as u64) as u32);
            if at + len as i64 <= self.rcvbuf.next() as i64 {
                // Entirely old: a retransmission; ACK at once (and enter quickack).
                self.enter_quickack();
                self.ack.now = true;
                self.ack.pending = true;
            } else if at > self.rcvbuf.next() as i64 {
                // Out of order: keep it and ACK at once with SACK blocks.
                let at = at as u64;
                let room = self.receive_window();
                if at + len > self.rcvbuf.next() + room + self.advmss as u64 {
                    self.ack.now = true;
                    self.ack.pending = true;
                } else {
                    self.check_ce(ctx, ecn);
                    self.rcvbuf.insert(at, payload);
                    self.last_ooo = Some(at);
                    self.ack.now = true;
                    self.ack.pending = true;
                    self.enter_quickack();
                    // Linux tcp_data_queue_ofo: with SACK, out-of-order data grows the
                    // window too (without, it must not, to force duplicate ACKs).
                    if self.sack_ok {
                        self.grow_window();
                    }
                }
                if fin {
                    self.fin_at = Some(at + len);
                }
            } else if self.receive_window() == 0 && at == self.rcvbuf.next() as i64 {
                // A zero window: in-order data is dropped and re-ACKed (a window probe).
                self.ack.now = true;
                self.ack.pending = true;
                return None;
            } else {
                let had_ooo = self.rcvbuf.has_ooo();
                let n = self.rcvbuf.insert(at.max(0) as u64, payload);
                if n > 0 {
                    self.rcv_rtt_measure_ts(ctx, seg, len);
                    self.bytes_received += n;
                    self.event_data_recv(ctx, n);
                    self.check_ce(ctx, ecn);
                    self.ack.pending = true;
                    if had_ooo && !self.rcvbuf.has_ooo() {
                        // RFC 5681 4.2: ACK at once when a gap is filled.
                        self.ack.now = true;
                    }
                    self.notify(ctx, TcpEvent::Readable);
                }
                if fin {
                    self.fin_at = Some(at.max(0) as u64 + len);
                }
            }
        } else if fin {
            let at = at.max(0) as u64;
            if at >= self.rcvbuf.next() {
                self.fin_at = Some(at);
            }
        }
        // The FIN counts once all data before it arrived.
        if !self.fin_received && self.fin_at == Some(self.rcvbuf.next()) {
            self.fin_received = true;
            return self.on_fin(ctx);
        }
        None
    }

    /// Linux `tcp_fin`.
    fn on_fin(&mut self, ctx: &mut Ctx<'_>) -> Option<InputOutcome> {
        self.ack.pending = true;
        self.notify(ctx, TcpEvent::Readable);
        match self.state {
            TcpState::Established => {
                self.set_state(ctx, TcpState::CloseWait);
                self.ack.pingpong = true;
            }
            TcpState::FinWait1 => {
                self.send_ack(ctx);
                self.set_state(ctx, TcpState::Closing);
            }
            TcpState::FinWait2 => {
                self.send_ack(ctx);
                self.enter_time_wait(ctx);
            }
            _ => {}
        }
        None
    }

    /// Linux `tcp_ecn_check_ce`: what a queued data segment's ECN field asks of the
    /// receiver (the echo, quick ACKs, DCTCP's ACK on a CE state change).
    fn check_ce(&mut self, ctx: &mut Ctx<'_>, ecn: Ecn) {
        let delack_armed = self.deadlines.get(TimerKind::DelayedAck).is_some();
        let r = self
            .ecn
            .on_data(ecn, self.needs_ecn(), self.rcv_nxt_off(), delack_armed);
        if let Some((rcv_off, ece)) = r.prior_ack {
            self.send_prior_ack(ctx, rcv_off, ece);
        }
        if r.ack_now {
            self.ack.now = true;
            self.ack.pending = true;
        }
        if r.quickack {
            self.enter_quickack_upto(2);
        }
    }

    /// Linux `tcp_enter_quickack_mode(sk, max)`: up to `max` immediate ACKs.
    fn enter_quickack_upto(&mut self, max: u8) {
        let quick = (self.rcv_wnd / (2 * self.ack.rcv_mss.max(1) as u64)).min(max as u64) as u8;
        self.ack.quick = self
            .ack
            .quick
            .max(if quick == 0 { max.min(2) } else { quick });
        self.ack.pingpong = false;
        self.ack.ato = SimDuration::from_millis(40);
    }

    fn enter_quickack(&mut self) {
        let quick =
            (self.rcv_wnd / (2 * self.ack.rcv_mss.max(1) as u64)).min(MAX_QUICKACKS as u64) as u8;
        self.ack.quick = self.ack.quick.max(quick.max(2));
        self.ack.pingpong = false;
        self.ack.ato = SimDuration::from_millis(40);
    }

    /// Linux `tcp_event_data_recv`: adapts the delayed-ACK timeout to the arrival pattern.
    fn event_data_recv(&mut self, ctx: &mut Ctx<'_>, _n: u64) {
        let ato_min = ctx.cfg.delack_min;
        let now = ctx.now;
        if self.ack.ato == SimDuration::ZERO {
            self.enter_quickack();
            self.ack.ato = ato_min;
        } else {
            let m = now.saturating_since(self.ack.lrcvtime);
            if m <= ato_min / 2 {
                self.ack.ato = self.ack.ato / 2 + ato_min / 2;
            } else if m < self.ack.ato {
                self.ack.ato = (self.ack.ato / 2 + m).min(self.rto);
            } else if m > self.rto {
                self.enter_quickack();
            }
        }
        self.ack.lrcvtime = now;
        self.rcv_rtt_measure(now);
        self.rcv_space_adjust(ctx);
        self.grow_window();
    }

    /// Linux `tcp_grow_window`: each arriving segment lets the offered window grow by two
    /// segments, up to the receive buffer.
    fn grow_window(&mut self) {
        let clamp = self.rcvbuf_cap;
        if self.rcv_ssthresh < clamp {
            self.rcv_ssthresh = (self.rcv_ssthresh + 2 * self.advmss as u64).min(clamp);
        }
    }

    /// Linux `tcp_rcv_rtt_measure_ts`: a full-sized segment echoing a timestamp we have not
    /// seen echoed yet gives an RTT sample (millisecond resolution, as our clock ticks).
    fn rcv_rtt_measure_ts(&mut self, ctx: &Ctx<'_>, seg: &TcpRepr, len: u64) {
        let Some((_, ecr)) = seg.options.timestamps.filter(|_| self.ts_ok) else {
            return;
        };
        if ecr == self.rcv_rtt.last_tsecr {
            return;
        }
        self.rcv_rtt.last_tsecr = ecr;
        if ecr != 0 && len >= self.ack.rcv_mss as u64 {
            let ms = self.ts_val(ctx.now).wrapping_sub(ecr);
            if ms > 0 && ms < 1 << 30 {
                self.rcv_rtt.update(ms as u64 * 1000, false);
            }
        }
    }

    /// Linux `tcp_rcv_rtt_measure`: the time to receive one window's worth of data is an
    /// upper bound of the RTT.
    fn rcv_rtt_measure(&mut self, now: SimTime) {
        let next = self.rcv_nxt_off();
        if let Some(t) = self.rcv_rtt.time {
            if next < self.rcv_rtt.seq {
                return;
            }
            self.rcv_rtt
                .update(now.saturating_since(t).as_nanos() / 1000, true);
        }
        self.rcv_rtt.seq = next + self.rcv_wnd;
        self.rcv_rtt.time = Some(now);
    }

    /// Receive-buffer auto-tuning, once per RTT (Linux `tcp_rcv_space_adjust`).
    fn rcv_space_adjust(&mut self, ctx: &mut Ctx<'_>) {
        if !ctx.cfg.moderate_rcvbuf || self.opts.rcvbuf.is_some() {
            return;
        }
        let rtt_us = self.rcv_rtt.rtt_us8 >> 3;
        if rtt_us == 0 || ctx.now.saturating_since(self.rcv_space.time).as_nanos() / 1000 < rtt_us {
            return;
        }
        let copied = self.bytes_copied.saturating_sub(self.rcv_space.seq);
        if copied > self.rcv_space.space {
            // Twice what the application took in the last RTT, plus room for the sender
            // to speed up as much again as it just did (slow start).
            let mut rcvwin = 2 * copied + 16 * self.advmss as u64;
            let space = self.rcv_space.space.max(1);
            rcvwin += 2 * (rcvwin * (copied - space) / space);
            let cap = (ctx.cfg.rmem[2] as u64).max(self.rcvbuf_cap);
            self.rcvbuf_cap = self.rcvbuf_cap.max(rcvwin.min(cap));
            self.rcv_space.space = copied;
        }
        self.rcv_space.seq = self.bytes_copied;
        self.rcv_space.time = ctx.now;
    }

    /// Sends the owed ACK now or arms the delayed-ACK timer (Linux `__tcp_ack_snd_check`).
    fn ack_snd_check(&mut self, ctx: &mut Ctx<'_>) {
        if !self.ack.pending {
            return;
        }
        let unacked = self.rcv_nxt_off() - self.rcv_wup;
        let in_quickack = self.ack.quick > 0 && !self.ack.pingpong;
        if (unacked > self.ack.rcv_mss as u64)
            || in_quickack
            || ctx.cfg.quickack
            || self.ack.now
            || self.rcvbuf.has_ooo()
        {
            self.send_ack(ctx);
            return;
        }
        self.schedule_delayed_ack(ctx);
    }

    /// Linux `tcp_send_delayed_ack`.
    fn schedule_delayed_ack(&mut self, ctx: &mut Ctx<'_>) {
        let mut ato = self.ack.ato.max(ctx.cfg.delack_min);
        if ato > ctx.cfg.delack_min {
            let mut max_ato = SimDuration::from_millis(500);
            if self.ack.pingpong {
                max_ato = ctx.cfg.delack_max;
            }
            if let Some(srtt) = self.rtt.srtt() {
                let rtt = srtt.max(ctx.cfg.delack_min);
                if rtt < max_ato {
                    max_ato = rtt;
                }
            }
            ato = ato.min(max_ato);
        }
        let timeout = ctx.now + ato;
        if let Some(existing) = self.deadlines.get(TimerKind::DelayedAck) {
            if existing <= ctx.now + ato / 4 {
                self.send_ack(ctx);
                return;
            }
            if existing <= timeout {
                return;
            }
        }
        self.deadlines.set(
            ctx.timers,
            self.id.slot,
            self.id.gen,
            TimerKind::DelayedAck,
            timeout,
        );
    }

    // ------------------------------------------------------------------ timers

    /// A deadline of `kind` passed. Returns true when the connection is gone.
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>, kind: TimerKind) -> bool {
        match kind {
            TimerKind::Retransmit => self.on_retransmit_timer(ctx),
            TimerKind::Persist => {
                self.on_persist(ctx);
                false
            }
            TimerKind::DelayedAck => {
                if self.ack.pending {
                    if self.ack.pingpong {
                        self.ack.pingpong = false;
                        self.ack.ato = ctx.cfg.delack_min;
                    } else {
                        self.ack.ato = (self.ack.ato * 2).min(self.rto);
                    }
                    self.send_ack(ctx);
                }
                false
            }
            TimerKind::Keepalive => self.on_keepalive(ctx),
            TimerKind::Pacing => {
                self.push(ctx);
                false
            }
            TimerKind::Linger => {
                // TIME_WAIT over, or an orphaned FIN_WAIT_2 timed out.
                self.set_state(ctx, TcpState::Closed);
                self.clear_all_timers();
                true
            }
        }
    }

    /// Linux `retransmits_timed_out`.
    fn write_timed_out(&self, ctx: &Ctx<'_>, boundary: u8, base: SimDuration) -> bool {
        if self.retransmits == 0 {
            return false;
        }
        let Some(start) = self.retrans_stamp else {
            return false;
        };
        ctx.now.saturating_since(start) >= model_timeout(boundary, base, ctx.cfg.rto_max)
    }

    fn on_retransmit_timer(&mut self, ctx: &mut Ctx<'_>) -> bool {
        match self.state {
            TcpState::SynSent => {
                if self.retransmits > 0
                    && self.write_timed_out(ctx, ctx.cfg.syn_retries, TIMEOUT_INIT)
                {
                    ctx.counters.attempt_fails += 1;
                    let err = self.soft_err.unwrap_or(Errno::TimedOut);
                    self.fail(ctx, err);
                    return true;
                }
                if self.retrans_stamp.is_none() {
                    self.retrans_stamp = Some(self.last_send);
                }
                self.retransmits += 1;
                self.rto_timeouts += 1;
                self.trace_rto(ctx);
                let _ = self.send_syn(ctx, true);
                self.rto = (self.rto * 2).min(ctx.cfg.rto_max);
                self.set_timer(ctx, TimerKind::Retransmit, self.rto);
                false
            }
            TcpState::SynReceived => {
                // SYN-ACK retries (RB-TCP-05), also for children whose ACK found the
                // accept queue full (RB-TCP-06).
                if self.retransmits >= ctx.cfg.synack_retries {
                    self.set_state(ctx, TcpState::Closed);
                    self.clear_all_timers();
                    return true;
                }
                self.retransmits += 1;
                self.rto_timeouts += 1;
                self.trace_rto(ctx);
                let _ = self.send_syn(ctx, true);
                let t = TIMEOUT_INIT
                    .as_nanos()
                    .saturating_mul(1 << self.retransmits.min(30));
                self.rto = SimDuration::from_nanos(t).min(ctx.cfg.rto_max);
                self.set_timer(ctx, TimerKind::Retransmit, self.rto);
                false
            }
            _ => {
                if self.rtx.is_empty() {
                    return false;
                }
                match self.xmit_timer {
                    XmitTimer::Rto => {}
                    XmitTimer::ReorderTimeout => {
                        self.on_reorder_timeout(ctx);
                        return false;
                    }
                    XmitTimer::LossProbe => {
                        self.send_loss_probe(ctx);
                        return false;
                    }
                }
                self.tlp_high_seq = None;
                let limit = if self.owner.is_none() {
                    ctx.cfg.orphan_retry_limit()
                } else {
                    ctx.cfg.retries2
                };
                if self.write_timed_out(ctx, limit, ctx.cfg.rto_min) {
                    ctx.counters.abort_on_timeout += 1;
                    let err = self.soft_err.unwrap_or(Errno::TimedOut);
                    self.fail(ctx, err);
                    return true;
                }
                self.rto_timeouts += 1;
                self.trace_rto(ctx);
                self.enter_loss(ctx);
                if let Some(i) = self.rtx.iter().position(|s| !s.has(SENT_SACKED)) {
                    self.retransmit_index(ctx, i);
                }
                self.retransmits = self.retransmits.saturating_add(1);
                self.rto = (self.rto * 2).min(ctx.cfg.rto_max);
                self.set_timer(ctx, TimerKind::Retransmit, self.rto);
                false
            }
        }
    }

    fn trace_rto(&self, ctx: &mut Ctx<'_>) {
        if ctx.env.tracing() {
            ctx.env.trace(
                "tcp_rto",
                &[
                    ("conn", self.conn_label()),
                    ("rto_ms", (self.rto.as_nanos() as f64 / 1e6).into()),
                    ("retransmits", self.retransmits.into()),
                    ("state", TraceValue::Str(self.state.name())),
                ],
            );
        }
    }

    /// Linux `tcp_enter_loss`: everything not SACKed and not sent within the last RACK RTT
    /// is lost; the window restarts one segment above what is left in flight.
    fn enter_loss(&mut self, ctx: &mut Ctx<'_>) {
        let in_flight = self.in_flight();
        if self.ca != CaState::Loss || self.retransmits == 0 {
            if matches!(self.ca, CaState::Open | CaState::Disorder) || self.snd_una == self.high_seq
            {
                self.win.ssthresh = self.cc.ssthresh(&self.win, in_flight);
            }
            self.cc.on_event(&mut self.win, CcEvent::Timeout);
            self.trace_cc_phase(ctx);
        }
        // Linux tcp_timeout_mark_lost: with RACK, segments sent within the last RACK RTT
        // (other than the first) are not presumed lost yet.
        let rack = ctx.cfg.rack() && self.sack_ok;
        let (rack_rtt, now) = (self.rack.rtt(), ctx.now);
        let recent = |s: &Sent, first: bool| rack && !first && s.sent_at + rack_rtt > now;
        let mut first = true;
        self.lower_rtx_hint(0, u64::MAX);
        for i in 0..self.rtx.len() {
            let s = self.rtx[i];
            if s.has(SENT_SACKED) {
                continue;
            }
            let skip = recent(&s, first);
            first = false;
            if skip {
                continue;
            }
            let seg = &mut self.rtx[i];
            if seg.has(SENT_RETRANS) {
                seg.flags &= !SENT_RETRANS;
                self.retrans_bytes -= s.len();
            }
            if !seg.has(SENT_LOST) {
                seg.flags |= SENT_LOST;
                self.lost_bytes += s.len();
                self.note_lost(ctx.now, &s);
            }
        }
        self.reno_dupacks = 0;
        // Linux tcp_enter_loss: one segment beyond what is still presumed in flight (one
        // segment when everything was marked lost).
        self.win.cwnd = self.in_flight() + self.win.mss as u64;
        self.high_seq = self.snd_nxt;
        self.ca = CaState::Loss;
        self.ecn.queue_cwr();
        self.trace_ca(ctx);
        self.probe(ctx);
    }

    pub fn arm_keepalive(&mut self, ctx: &mut Ctx<'_>) {
        if self.opts.keepalive {
            let t = self.opts.keep_idle.unwrap_or(ctx.cfg.keepalive_time);
            self.set_timer(ctx, TimerKind::Keepalive, t);
        }
    }

    /// Linux `tcp_keepalive_timer`.
    fn on_keepalive(&mut self, ctx: &mut Ctx<'_>) -> bool {
        if !self.opts.keepalive
            || !matches!(
                self.state,
                TcpState::Established | TcpState::CloseWait | TcpState::FinWait2
            )
        {
            return false;
        }
        let idle_limit = self.opts.keep_idle.unwrap_or(ctx.cfg.keepalive_time);
        let intvl = self.opts.keep_intvl.unwrap_or(ctx.cfg.keepalive_intvl);
        let probes = self.opts.keep_cnt.unwrap_or(ctx.cfg.keepalive_probes);
        if !self.rtx.is_empty() || self.unsent() > 0 {
            // Data outstanding: the retransmission timer watches the peer.
            self.set_timer(ctx, TimerKind::Keepalive, idle_limit);
            return false;
        }
        let idle = ctx.now.saturating_since(self.last_rcv);
        if idle >= idle_limit {
            if self.ka_probes >= probes {
                self.send_reset(ctx);
                self.fail(ctx, self.soft_err.unwrap_or(Errno::TimedOut));
                return true;
            }
            // A probe: one byte before snd_una, which the peer must ACK.
            let repr = self.make_segment(ctx.now, self.snd_una.saturating_sub(1), 0);
            if ctx.env.tracing() {
                ctx.env
                    .trace("tcp_keepalive_probe", &[("conn", self.conn_label())]);
            }
            let ecn = self.ecn_codepoint(false);
            let _ = self.transmit(ctx, repr, Payload::empty(), false, ecn);
            self.ka_probes += 1;
            self.set_timer(ctx, TimerKind::Keepalive, intvl);
        } else {
            self.set_timer(ctx, TimerKind::Keepalive, idle_limit - idle);
        }
        false
    }

    // ------------------------------------------------------------------ ICMP

    /// An ICMP error about a segment of this connection (Linux `tcp_v4_err`).
    pub fn icmp_error(&mut self, ctx: &mut Ctx<'_>, err: Errno, frag_mtu: Option<u32>) -> bool {
        if let Some(mtu) = frag_mtu {
            // Path MTU discovery (RB-IP-04): shrink and retransmit what no longer fits.
            if mtu >= 68 && mtu < self.pmtu {
                self.pmtu = mtu;
                let mss = self.mss();
                if ctx.env.tracing() {
                    ctx.env.trace(
                        "tcp_pmtu",
                        &[
                            ("conn", self.conn_label()),
                            ("mtu", mtu.into()),
                            ("mss", mss.into()),
                        ],
                    );
                }
                if mss < self.win.mss {
                    self.win.mss = mss;
                    // Linux tcp_simple_retransmit: too-big segments are lost; resend now.
                    self.lower_rtx_hint(0, u64::MAX);
                    for i in 0..self.rtx.len() {
                        let s = &mut self.rtx[i];
                        let data = s.len() - s.has(SENT_FIN) as u64;
                        if data > mss as u64 && !s.has(SENT_SACKED) {
                            if s.has(SENT_RETRANS) {
                                s.flags &= !SENT_RETRANS;
                                self.retrans_bytes -= s.len();
                            }
                            if !s.has(SENT_LOST) {
                                s.flags |= SENT_LOST;
                                self.lost_bytes += s.len();
                                let s = *s;
                                self.note_lost(ctx.now, &s);
                            }
                        }
                    }
                    if matches!(self.ca, CaState::Open | CaState::Disorder | CaState::Cwr) {
                        self.high_seq = self.snd_nxt;
                        self.prior_cwnd = self.win.cwnd;
                        self.ca = CaState::Loss;
                        self.trace_ca(ctx);
                    }
                    let _ = self.retransmit_next_lost(ctx);
                    self.push(ctx);
                }
            }
            return false;
        }
        match self.state {
            TcpState::SynSent | TcpState::SynReceived if self.parent.is_none() => {
                ctx.counters.attempt_fails += 1;
                self.fail(ctx, err);
                true
            }
            _ => {
                self.soft_err = Some(err);
                false
            }
        }
    }

    // ------------------------------------------------------------------ API

    /// send(): queues what fits in the send buffer; returns the bytes taken.
    pub fn api_send(&mut self, ctx: &mut Ctx<'_>, data: &Payload) -> Result<usize, Errno> {
        if let Some(e) = self.pending_err.take() {
            return Err(e);
        }
        match self.state {
            TcpState::Established | TcpState::CloseWait => {}
            TcpState::SynSent | TcpState::SynReceived => return Err(Errno::Again),
            TcpState::Closed if !self.connect_notified => return Err(Errno::NotConn),
            _ => return Err(Errno::Pipe),
        }
        if self.shut_wr {
            return Err(Errno::Pipe);
        }
        let room = self.sndbuf_cap.saturating_sub(self.sndbuf.len());
        let take = (data.len() as u64).min(room) as usize;
        if take == 0 {
            self.want_write = true;
            return Err(Errno::Again);
        }
        if take < data.len() {
            self.want_write = true;
        }
        let piece = super::buffer::slice_payload(data, 0, take);
        self.sndbuf.push(piece);
        self.push(ctx);
        Ok(take)
    }

    /// recv(): up to `max` bytes into `out`; Ok(0) means end of stream.
    pub fn api_recv(
        &mut self,
        ctx: &mut Ctx<'_>,
        max: usize,
        out: &mut Vec<Payload>,
    ) -> Result<usize, Errno> {
        if self.rcvbuf.readable() == 0 {
            if let Some(e) = self.pending_err.take() {
                return Err(e);
            }
            if self.fin_received || self.shut_rd || self.state == TcpState::Closed {
                return Ok(0);
            }
            return Err(Errno::Again);
        }
        let before_wnd = self.receive_window();
        let n = self.rcvbuf.read(max as u64, out) as usize;
        self.bytes_copied += n as u64;
        // Linux tcp_cleanup_rbuf: tell the peer when the window has grown a lot.
        if matches!(
            self.state,
            TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2
        ) {
            let clamp = self.rcvbuf_cap.min(65535 << self.rcv_wscale);
            let new_wnd = self.window_to_offer();
            if 2 * before_wnd <= clamp && new_wnd > 0 && new_wnd >= 2 * before_wnd {
                self.send_ack(ctx);
            }
        }
        Ok(n)
    }

    /// shutdown(SHUT_WR): queue a FIN after the data.
    pub fn api_shutdown_write(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Errno> {
        if self.shut_wr {
            return Ok(());
        }
        match self.state {
            TcpState::Established => self.set_state(ctx, TcpState::FinWait1),
            TcpState::CloseWait => self.set_state(ctx, TcpState::LastAck),
            TcpState::SynReceived => self.set_state(ctx, TcpState::FinWait1),
            TcpState::SynSent => {
                self.set_state(ctx, TcpState::Closed);
                self.clear_all_timers();
                return Ok(());
            }
            _ => return Err(Errno::NotConn),
        }
        self.shut_wr = true;
        self.fin_queued = true;
        self.push(ctx);
        Ok(())
    }

    /// close(): returns true when the connection is gone at once.
    pub fn api_close(&mut self, ctx: &mut Ctx<'_>) -> bool {
        self.owner = None;
        let unread = self.rcvbuf.readable() > 0;
        let linger0 = self.opts.linger == Some(SimDuration::ZERO);
        match self.state {
            TcpState::Closed | TcpState::Listen => {
                self.set_state(ctx, TcpState::Closed);
                self.clear_all_timers();
                return true;
            }
            TcpState::SynSent => {
                self.set_state(ctx, TcpState::Closed);
                self.clear_all_timers();
                return true;
            }
            _ => {}
        }
        if unread || linger0 {
            // RB-TCP-15 / RB-TCP-16: abort with RST, discard everything, no TIME_WAIT.
            if matches!(
                self.state,
                TcpState::Established
                    | TcpState::CloseWait
                    | TcpState::FinWait1
                    | TcpState::FinWait2
                    | TcpState::SynReceived
            ) {
                self.send_reset(ctx);
            }
            self.discard_queues();
            self.rcvbuf.clear();
            self.set_state(ctx, TcpState::Closed);
            self.clear_all_timers();
            return true;
        }
        if !self.shut_wr {
            let _ = self.api_shutdown_write(ctx);
        } else if self.state == TcpState::FinWait2 {
            let t = ctx.cfg.fin_timeout;
            self.set_timer(ctx, TimerKind::Linger, t);
        }
        false
    }

    pub fn info(&self) -> TcpInfo {
        TcpInfo {
            state: self.state,
            local: self.local,
            remote: self.remote,
            mss: self.win.mss,
            cwnd: self.win.cwnd,
            ssthresh: self.win.ssthresh,
            srtt: self.rtt.srtt(),
            rttvar: self.rtt.rttvar(),
            min_rtt: self.rtt.min_rtt(),
            rto: self.rto,
            bytes_in_flight: self.in_flight(),
            bytes_acked: self.bytes_acked,
            bytes_received: self.bytes_received,
            bytes_unsent: self.unsent(),
            segs_out: self.segs_out,
            segs_in: self.segs_in,
            retransmits: self.retrans_segs,
            rto_timeouts: self.rto_timeouts,
            fast_retransmits: self.fast_retransmits,
            dup_acks_in: self.dup_acks_in,
            zero_window_probes: self.zero_window_probes,
            snd_wnd: self.snd_wnd,
            rcv_wnd: self.rcv_wnd,
            rcv_rtt: (self.rcv_rtt.rtt_us8 > 0)
                .then(|| SimDuration::from_nanos((self.rcv_rtt.rtt_us8 >> 3) * 1000)),
            ca_state: self.ca.name(),
            error: self.pending_err,
            ecn: self.ecn.ok(),
        }
    }

    /// Is `seq` within what we have sent and not had acknowledged (ICMP validation)?
    pub fn seq_in_flight(&self, seq: SeqNum) -> bool {
        let off = self.ack_off(seq);
        off >= self.snd_una as i64 && off <= self.snd_nxt as i64
    }

    pub fn readable(&self) -> bool {
        self.rcvbuf.readable() > 0 || self.fin_received
    }

    pub fn send_space(&self) -> u64 {
        self.sndbuf_cap.saturating_sub(self.sndbuf.len())
    }
}

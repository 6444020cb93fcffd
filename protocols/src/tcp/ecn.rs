//! ECN in TCP: RFC 3168 as Linux runs it, and DCTCP's echo of every segment's CE state
//! (RFC 8257 section 3.2, Linux `dctcp_ece_ack_update`).
//!
//! Owns one connection's ECN flags (Linux `tp->ecn_flags`) and the rules that read and
//! write them: the negotiation (an ECN-setup SYN carries ECE and CWR, the SYN-ACK that
//! agrees carries ECE alone), which codepoint a segment carries in its IP header (ECT(0)
//! on new data; not on pure ACKs, retransmissions or window probes, except for a
//! controller that needs ECN, whose segments all carry it), ECE on every segment while
//! the receiver waits for the sender's CWR, CWR on the first new data segment after a
//! window reduction, and what an arriving data segment's ECN field asks of the receiver.
//!
//! Does not own the window reduction (the connection's CWR state with PRR) nor when ACKs
//! go out: [`EcnState::on_data`] says what the delayed-ACK machinery should do.

use super::wire::flags;
use sim_core::packet::Ecn;

/// What a data segment's ECN field asks of the receiver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CeReaction {
    /// Enter quick-ACK mode for (at most) two ACKs (Linux `tcp_enter_quickack_mode(sk, 2)`).
    pub quickack: bool,
    /// ACK this segment at once (DCTCP: the CE state changed).
    pub ack_now: bool,
    /// DCTCP: first send an ACK up to this receive offset with this ECE, for the data
    /// that arrived before the change and whose delayed ACK is pending.
    pub prior_ack: Option<(u64, bool)>,
}

/// One connection's ECN state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct EcnState {
    /// ECN is requested (before the handshake ends) or negotiated: Linux `TCP_ECN_OK`.
    ok: bool,
    /// Set CWR on the next new data segment: `TCP_ECN_QUEUE_CWR`.
    queue_cwr: bool,
    /// Set ECE on every segment until the peer's CWR: `TCP_ECN_DEMAND_CWR`.
    demand_cwr: bool,
    /// An ECT or CE data segment has arrived: `TCP_ECN_SEEN`.
    seen: bool,
    /// DCTCP's echo: whether the last ECN-capable data segment was CE, and the receive
    /// offset after it.
    ce_state: bool,
    prior_rcv_nxt: u64,
}

impl EcnState {
    /// ECN is on for this connection.
    pub fn ok(&self) -> bool {
        self.ok
    }

    /// An active open (Linux `tcp_ecn_send_syn`): request ECN with `tcp_ecn` = 1, or
    /// always for a controller that needs it.
    pub fn connect(tcp_ecn: u8, needs_ecn: bool) -> EcnState {
        EcnState {
            ok: tcp_ecn == 1 || needs_ecn,
            ..EcnState::default()
        }
    }

    /// A passive open (Linux `tcp_ecn_create_request`): agree when the SYN asks with ECE
    /// and CWR and either the host allows ECN (`tcp_ecn` 1 or 2) and the SYN itself is
    /// not ECN-capable (RFC 3168 6.1.1: a SYN never is, so an ECT SYN means a broken
    /// path), or our controller needs ECN.
    pub fn accept(tcp_ecn: u8, needs_ecn: bool, syn_flags: u8, syn_ecn: Ecn) -> EcnState {
        let asks = syn_flags & (flags::ECE | flags::CWR) == flags::ECE | flags::CWR;
        let plain_syn = syn_ecn == Ecn::NotEct;
        EcnState {
            ok: asks && ((plain_syn && tcp_ecn != 0) || needs_ecn),
            ..EcnState::default()
        }
    }

    /// The ECN flags of our SYN: ECE and CWR when requesting, except on retransmissions
    /// with `tcp_ecn_fallback` (Linux `tcp_ecn_clear_syn`).
    pub fn syn_flags(&self, retransmit: bool, fallback: bool) -> u8 {
        if self.ok && !(retransmit && fallback) {
            flags::ECE | flags::CWR
        } else {
            0
        }
    }

    /// The ECN flags of our SYN-ACK (Linux `tcp_ecn_make_synack`, `tcp_ecn_send_synack`).
    pub fn synack_flags(&self) -> u8 {
        if self.ok {
            flags::ECE
        } else {
            0
        }
    }

    /// The peer's SYN-ACK arrived (Linux `tcp_ecn_rcv_synack`): ECN holds if it has ECE
    /// without CWR.
    pub fn on_synack(&mut self, seg_flags: u8) {
        if seg_flags & (flags::ECE | flags::CWR) != flags::ECE {
            self.ok = false;
        }
    }

    /// The peer's SYN arrived in SYN_SENT, a simultaneous open (Linux `tcp_ecn_rcv_syn`):
    /// ECN holds if it asks with ECE and CWR.
    pub fn on_syn(&mut self, seg_flags: u8) {
        if seg_flags & (flags::ECE | flags::CWR) != flags::ECE | flags::CWR {
            self.ok = false;
        }
    }

    /// The connection is established with the receive side at `rcv_nxt` (DCTCP's
    /// `prior_rcv_nxt` starts there).
    pub fn established(&mut self, rcv_nxt: u64) {
        self.prior_rcv_nxt = rcv_nxt;
        self.ce_state = false;
    }

    /// The IP ECN codepoint of an outgoing segment (Linux `tcp_ecn_send`): ECT(0) on new
    /// data when ECN is on, and on every segment of a controller that needs ECN (which
    /// also marks its SYN and SYN-ACK, as Linux's `INET_ECN_xmit` at socket set-up does).
    pub fn codepoint(&self, needs_ecn: bool, new_data: bool) -> Ecn {
        if self.ok && (needs_ecn || new_data) {
            Ecn::Ect0
        } else {
            Ecn::NotEct
        }
    }

    /// Header flags every non-SYN segment carries: ECE while the receiver owes the peer
    /// an echo.
    pub fn header_flags(&self) -> u8 {
        if self.ok && self.demand_cwr {
            flags::ECE
        } else {
            0
        }
    }

    /// CWR for a new data segment, if a reduction is queued (it is taken).
    pub fn take_cwr(&mut self) -> u8 {
        if std::mem::take(&mut self.queue_cwr) {
            flags::CWR
        } else {
            0
        }
    }

    /// The window was reduced (ECN-Echo, fast recovery, RTO, a tail loss probe's repair):
    /// tell the receiver with CWR on the next new data (Linux `tcp_ecn_queue_cwr`).
    pub fn queue_cwr(&mut self) {
        if self.ok {
            self.queue_cwr = true;
        }
    }

    /// Whether an ACK with `seg_flags` reports congestion (Linux `tcp_ecn_rcv_ecn_echo`).
    pub fn ece(&self, seg_flags: u8) -> bool {
        self.ok && seg_flags & flags::ECE != 0 && seg_flags & flags::SYN == 0
    }

    /// A segment with `seg_flags` arrived (Linux `tcp_ecn_accept_cwr`, called for every
    /// acceptable ACK since Linux 5.10): CWR ends the echo. Returns whether to ACK the
    /// segment at once: the sender just reduced its window, maybe to one segment, so a
    /// data segment must not wait for a delayed ACK.
    pub fn accept_cwr(&mut self, seg_flags: u8, has_data: bool) -> bool {
        if seg_flags & flags::CWR == 0 {
            return false;
        }
        self.demand_cwr = false;
        has_data
    }

    /// A data segment with IP ECN field `ecn` was queued, in order or not (Linux
    /// `__tcp_ecn_check_ce`), leaving the receive side at `rcv_nxt`. `dctcp`: the
    /// controller needs ECN, so the echo follows each segment's CE state; `delack_armed`:
    /// an ACK for earlier data is waiting on the delayed-ACK timer.
    pub fn on_data(
        &mut self,
        ecn: Ecn,
        dctcp: bool,
        rcv_nxt: u64,
        delack_armed: bool,
    ) -> CeReaction {
        let mut r = CeReaction::default();
        if !self.ok {
            return r;
        }
        match ecn {
            Ecn::NotEct => {
                // Linux: after ECT data, a Not-ECT one is a retransmission; ACK quickly so
                // that a queue that marked the original stops.
                r.quickack = self.seen;
            }
            Ecn::Ce => {
                if dctcp {
                    self.dctcp_echo(true, rcv_nxt, delack_armed, &mut r);
                }
                if !self.demand_cwr {
                    // The sender may have a tiny window: do not delay the echo.
                    r.quickack = true;
                    self.demand_cwr = true;
                }
                self.seen = true;
            }
            Ecn::Ect0 | Ecn::Ect1 => {
                if dctcp {
                    self.dctcp_echo(false, rcv_nxt, delack_armed, &mut r);
                }
                self.seen = true;
            }
        }
        r
    }

    /// DCTCP's two-state echo (Linux `dctcp_ece_ack_update`): ECE follows the CE state of
    /// the latest segment; when it changes, the data before it is ACKed with the old state
    /// if its ACK was being delayed, and the new segment is ACKed at once.
    fn dctcp_echo(&mut self, ce: bool, rcv_nxt: u64, delack_armed: bool, r: &mut CeReaction) {
        if self.ce_state != ce {
            if delack_armed {
                r.prior_ack = Some((self.prior_rcv_nxt, self.ce_state));
            }
            r.ack_now = true;
        }
        self.prior_rcv_nxt = rcv_nxt;
        self.ce_state = ce;
        self.demand_cwr = ce;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECE: u8 = flags::ECE;
    const CWR: u8 = flags::CWR;

    #[test]
    fn negotiation_follows_tcp_ecn_on_both_sides() {
        // (client tcp_ecn, server tcp_ecn) -> negotiated, as Linux: 1 requests, 1 and 2
        // accept, 0 does neither.
        for (client, server, want) in [
            (0, 0, false),
            (0, 1, false),
            (0, 2, false),
            (1, 0, false),
            (1, 1, true),
            (1, 2, true),
            (2, 0, false),
            (2, 1, false),
            (2, 2, false),
        ] {
            let mut c = EcnState::connect(client, false);
            let syn = flags::SYN | c.syn_flags(false, true);
            let s = EcnState::accept(server, false, syn, Ecn::NotEct);
            let synack = flags::SYN | flags::ACK | s.synack_flags();
            c.on_synack(synack);
            assert_eq!((c.ok(), s.ok()), (want, want), "{client} {server}");
        }
    }

    #[test]
    fn a_controller_that_needs_ecn_forces_it_but_not_on_a_peer_that_refuses() {
        let c = EcnState::connect(0, true);
        assert_eq!(c.syn_flags(false, true), ECE | CWR);
        // Its SYN is ECT(0): a plain host takes that for a broken path and refuses.
        assert_eq!(c.codepoint(true, false), Ecn::Ect0);
        assert!(!EcnState::accept(2, false, ECE | CWR, Ecn::Ect0).ok());
        // A listener that needs ECN agrees whatever its tcp_ecn.
        assert!(EcnState::accept(0, true, ECE | CWR, Ecn::Ect0).ok());
        assert!(!EcnState::accept(0, true, ECE, Ecn::NotEct).ok());
    }

    #[test]
    fn a_retransmitted_syn_falls_back_and_a_bad_synack_turns_ecn_off() {
        let c = EcnState::connect(1, false);
        assert_eq!(c.syn_flags(true, true), 0);
        assert_eq!(c.syn_flags(true, false), ECE | CWR);
        let mut c2 = c;
        c2.on_synack(ECE | CWR); // both: a reflector, not an ECN peer
        assert!(!c2.ok());
        let mut c3 = c;
        c3.on_syn(ECE); // simultaneous open without CWR
        assert!(!c3.ok());
    }

    #[test]
    fn ect_only_on_new_data() {
        let mut e = EcnState::connect(1, false);
        e.on_synack(ECE);
        assert_eq!(e.codepoint(false, true), Ecn::Ect0);
        assert_eq!(e.codepoint(false, false), Ecn::NotEct);
        assert_eq!(e.codepoint(true, false), Ecn::Ect0);
        let off = EcnState::connect(2, false);
        assert_eq!(off.codepoint(false, true), Ecn::NotEct);
    }

    #[test]
    fn the_receiver_echoes_from_the_first_ce_until_cwr() {
        let mut e = EcnState::connect(1, false);
        e.on_synack(ECE);
        assert_eq!(
            e.on_data(Ecn::Ect0, false, 100, false),
            CeReaction::default()
        );
        assert_eq!(e.header_flags(), 0);
        let r = e.on_data(Ecn::Ce, false, 200, false);
        assert!(r.quickack && !r.ack_now);
        assert_eq!(e.header_flags(), ECE);
        // A second mark: still echoing, no new quick-ACK.
        assert!(!e.on_data(Ecn::Ce, false, 300, false).quickack);
        assert_eq!(
            e.on_data(Ecn::Ect0, false, 400, false),
            CeReaction::default()
        );
        assert_eq!(e.header_flags(), ECE);
        assert!(e.accept_cwr(CWR | flags::ACK, true));
        assert_eq!(e.header_flags(), 0);
        // A Not-ECT segment after ECT ones is a retransmission: ACK quickly.
        assert!(e.on_data(Ecn::NotEct, false, 500, false).quickack);
    }

    #[test]
    fn cwr_is_sent_once_after_a_reduction() {
        let mut e = EcnState::connect(1, false);
        e.on_synack(ECE);
        assert_eq!(e.take_cwr(), 0);
        e.queue_cwr();
        assert_eq!(e.take_cwr(), CWR);
        assert_eq!(e.take_cwr(), 0);
        let mut off = EcnState::connect(0, false);
        off.queue_cwr();
        assert_eq!(off.take_cwr(), 0);
    }

    #[test]
    fn dctcp_echoes_each_segments_ce_state_and_acks_state_changes_at_once() {
        let mut e = EcnState::connect(0, true);
        e.on_synack(ECE);
        e.established(1);
        // Unmarked data: no change from the initial state.
        assert_eq!(
            e.on_data(Ecn::Ect0, true, 1449, true),
            CeReaction::default()
        );
        // CE with a delayed ACK pending: the earlier data is ACKed without ECE first,
        // then this segment at once with ECE.
        let r = e.on_data(Ecn::Ce, true, 2897, true);
        assert_eq!(r.prior_ack, Some((1449, false)));
        assert!(r.ack_now && !r.quickack);
        assert_eq!(e.header_flags(), ECE);
        // Still CE: nothing special.
        assert_eq!(e.on_data(Ecn::Ce, true, 4345, false), CeReaction::default());
        // Back to unmarked, no delayed ACK pending: ACK at once, ECE off.
        let r = e.on_data(Ecn::Ect0, true, 5793, false);
        assert_eq!(r.prior_ack, None);
        assert!(r.ack_now);
        assert_eq!(e.header_flags(), 0);
    }
}

//! TCP (RFC 9293) with Linux's behaviour and defaults.
//!
//! Layering inside this module, bottom up:
//! - [`seq`]: sequence numbers modulo 2^32.
//! - [`wire`]: header and options, parse and emit (real bytes, Linux's option layout).
//! - [`buffer`]: send and receive byte storage (pattern payloads cost nothing).
//! - [`rtt`]: RTT estimation and RTO (RFC 6298, Linux constants).
//! - [`cc`]: the congestion-control seam and NewReno.
//! - [`timer`]: connection deadlines without a scheduler.
//! - `ecn`: one connection's ECN flags (RFC 3168 negotiation, ECT, ECE and CWR, DCTCP's
//!   echo).
//! - `scoreboard`: the SACKed ranges of the send space, for walks over the retransmission
//!   queue that jump over SACKed runs.
//! - `conn`: one connection's state machine: handshake, data transfer, loss recovery,
//!   flow control, close, TIME_WAIT; it emits segments and events through [`TcpEnv`].
//! - [`stack`]: a host's sockets: the socket API, port binding, demultiplexing, listen
//!   queues and SYN cookies, resets for segments nobody owns.
//!
//! Architecture invariant: nothing here knows the scheduler, links or scenario files. A
//! [`stack::TcpStack`] is driven by three calls (a segment arrived, time advanced, the
//! application called the API) and answers through the [`TcpEnv`] it is given, so a unit
//! test can play packetdrill: inject segments and time, and assert what comes out.

pub mod buffer;
pub mod cc;
pub mod config;
mod conn;
mod ecn;
mod rack;
pub mod rtt;
mod scoreboard;
pub mod seq;
pub mod stack;
pub mod timer;
pub mod wire;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use config::{Errno, SockOpts, TcpConfig};
pub use stack::TcpStack;

use sim_core::ip::SendError;
use sim_core::packet::{Ecn, TransportPacket};
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::TraceValue;
use std::net::{Ipv4Addr, SocketAddrV4};

/// A socket handle: a slot and the slot's generation, so a stale handle is EBADF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TcpSocketId {
    pub slot: u32,
    pub gen: u32,
}

/// RFC 9293 connection states (LISTEN included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpState {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl TcpState {
    /// The name netstat and the RFC use (`"SYN_SENT"`).
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Closed => "CLOSED",
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynReceived => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
        }
    }

    /// Is this transition on RFC 9293's state diagram (plus Linux's extra edges: abort to
    /// CLOSED from any state, and SYN_SENT back to CLOSED on failure)?
    pub fn may_become(self, to: TcpState) -> bool {
        use TcpState::*;
        if to == Closed {
            return true;
        }
        matches!(
            (self, to),
            (Closed, Listen)
                | (Closed, SynSent)
                | (Listen, SynSent)
                | (Listen, SynReceived)
                | (SynSent, SynReceived)
                | (SynSent, Established)
                | (SynReceived, Established)
                | (SynReceived, FinWait1)
                | (SynReceived, CloseWait)
                | (Established, FinWait1)
                | (Established, CloseWait)
                | (FinWait1, FinWait2)
                | (FinWait1, Closing)
                | (FinWait1, TimeWait)
                | (FinWait2, TimeWait)
                | (CloseWait, LastAck)
                | (Closing, TimeWait)
        )
    }
}

/// What a socket tells its application (poll-style, edge-triggered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpEvent {
    /// connect() completed.
    Connected,
    /// A listening socket has a connection to accept().
    Incoming,
    /// Data (or end of stream) can be read.
    Readable,
    /// Send-buffer space opened after a short or refused send().
    Writable,
    /// The connection failed or was reset; the error is also returned by the next call.
    Error(Errno),
}

/// Which directions shutdown() closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    Read,
    Write,
    Both,
}

/// A snapshot of a connection, like Linux's `struct tcp_info`.
#[derive(Clone, Debug, PartialEq)]
pub struct TcpInfo {
    pub state: TcpState,
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    pub mss: u32,
    pub cwnd: u64,
    pub ssthresh: u64,
    pub srtt: Option<SimDuration>,
    pub rttvar: SimDuration,
    pub min_rtt: Option<SimDuration>,
    pub rto: SimDuration,
    pub bytes_in_flight: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub bytes_unsent: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    pub retransmits: u64,
    pub rto_timeouts: u64,
    pub fast_retransmits: u64,
    pub dup_acks_in: u64,
    pub zero_window_probes: u64,
    pub snd_wnd: u64,
    pub rcv_wnd: u64,
    /// The receiver's RTT estimate (Linux `tcpi_rcv_rtt`), which paces buffer auto-tuning.
    pub rcv_rtt: Option<SimDuration>,
    pub ca_state: &'static str,
    pub error: Option<Errno>,
    /// ECN was negotiated (Linux `TCPI_OPT_ECN`).
    pub ecn: bool,
}

/// Per-host TCP counters (a subset of Linux's `netstat -s` TcpExt).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpCounters {
    pub active_opens: u64,
    pub passive_opens: u64,
    pub attempt_fails: u64,
    pub estab_resets: u64,
    pub resets_sent: u64,
    pub resets_received: u64,
    pub segs_in: u64,
    pub segs_out: u64,
    pub retrans_segs: u64,
    pub listen_overflows: u64,
    pub listen_drops: u64,
    pub syncookies_sent: u64,
    pub syncookies_recv: u64,
    pub syncookies_failed: u64,
    pub malformed: u64,
    pub time_wait_recycled: u64,
    pub challenge_acks: u64,
    pub abort_on_data: u64,
    pub abort_on_timeout: u64,
    /// Retransmissions that RACK found lost in their turn.
    pub lost_retransmits: u64,
    /// Tail loss probes sent, and those that repaired a loss.
    pub loss_probes: u64,
    pub loss_probe_recoveries: u64,
}

/// What the TCP stack needs from the node it runs on.
pub trait TcpEnv {
    fn now(&self) -> SimTime;
    /// Sends a segment as an IPv4 datagram with DF set (path MTU discovery is always on,
    /// as on Linux) and `ecn` in the ECN field of its TOS byte.
    fn send(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ecn: Ecn,
        pkt: TransportPacket,
    ) -> Result<(), SendError>;
    /// The source address and interface MTU a datagram to `dst` would use; `None` when
    /// there is no route.
    fn route(&self, dst: Ipv4Addr) -> Option<(Ipv4Addr, u32)>;
    fn is_local(&self, addr: Ipv4Addr) -> bool;
    /// Queues an event for the application that owns the socket.
    fn notify(&mut self, owner: usize, sock: TcpSocketId, event: TcpEvent);
    fn tracing(&self) -> bool;
    fn trace(&mut self, event: &'static str, fields: &[(&'static str, TraceValue)]);
    /// Whether per-ACK `tcp_probe` records (the congestion time series) are wanted.
    fn probing(&self) -> bool {
        false
    }
    /// Emits a `tcp_probe` record.
    fn probe(&mut self, _fields: &[(&'static str, TraceValue)]) {}
}

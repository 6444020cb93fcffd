//! Kernel knobs (per host, Linux names and defaults) and socket options (per socket).

use sim_core::time::SimDuration;

/// `tcp_recovery` bit: RACK loss detection (Linux `TCP_RACK_LOSS_DETECTION`).
pub const RACK_LOSS_DETECTION: u8 = 0x1;
/// `tcp_recovery` bit: no zero reordering window once `tcp_reordering` segments are SACKed.
pub const RACK_NO_DUPTHRESH: u8 = 0x4;

/// `net.ipv4.tcp_*` and `net.core.somaxconn`, with Linux's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct TcpConfig {
    /// SYN retransmissions before connect() fails with ETIMEDOUT (tcp_syn_retries).
    pub syn_retries: u8,
    /// SYN-ACK retransmissions before a half-open connection is dropped.
    pub synack_retries: u8,
    /// Retransmissions of data before the connection fails (tcp_retries2).
    pub retries2: u8,
    /// Retransmissions for orphaned sockets (tcp_orphan_retries; 0 means 8, as in Linux).
    pub orphan_retries: u8,
    /// Lifetime of an orphaned FIN_WAIT_2 socket (tcp_fin_timeout).
    pub fin_timeout: SimDuration,
    /// TIME_WAIT duration (TCP_TIMEWAIT_LEN, fixed at 60 s in Linux; configurable here).
    pub time_wait: SimDuration,
    /// Reset the client when the accept queue overflows instead of dropping its ACK.
    pub abort_on_overflow: bool,
    /// 0 never, 1 when the SYN queue is full, 2 always (tcp_syncookies).
    pub syncookies: u8,
    /// Upper bound on listen() backlogs (net.core.somaxconn).
    pub somaxconn: u32,
    /// tcp_max_syn_backlog: with cookies off, SYNs are dropped once the SYN queue is
    /// three-quarters of this full.
    pub max_syn_backlog: u32,
    pub keepalive_time: SimDuration,
    pub keepalive_intvl: SimDuration,
    pub keepalive_probes: u8,
    /// tcp_rmem: min, default, max receive buffer (payload bytes).
    pub rmem: [u32; 3],
    /// tcp_wmem: min, default, max send buffer (payload bytes).
    pub wmem: [u32; 3],
    /// Receive buffer auto-tuning (tcp_moderate_rcvbuf).
    pub moderate_rcvbuf: bool,
    /// Initial congestion window in segments (RFC 6928).
    pub initial_cwnd: u32,
    pub rto_min: SimDuration,
    pub rto_max: SimDuration,
    pub rto_initial: SimDuration,
    pub sack: bool,
    pub timestamps: bool,
    pub window_scaling: bool,
    /// Congestion controller for new connections (net.ipv4.tcp_congestion_control).
    pub congestion_control: String,
    /// tcp_slow_start_after_idle: restart from the initial window after an idle RTO.
    pub slow_start_after_idle: bool,
    /// Pace every connection at Linux's default pacing rate (what the `fq` qdisc does with
    /// `sk_pacing_rate`); controllers that pace (BBR) do regardless. Not a Linux sysctl:
    /// on Linux this is `net.core.default_qdisc = fq`.
    pub pacing: bool,
    /// Send paced data in GSO bursts, as Linux does by default: each wake-up of the
    /// pacing clock sends up to `tcp_tso_autosize` segments back to back (about 1 ms at the
    /// pacing rate), and the clock then waits for all of them. `false` is `ethtool -K
    /// <dev> gso off tso off`: one segment per wake-up. Not a Linux sysctl (`tcp_gso`).
    pub gso: bool,
    /// The fewest segments in a GSO burst, for controllers that do not choose
    /// (net.ipv4.tcp_min_tso_segs).
    pub min_tso_segs: u32,
    /// A GSO burst grows by 64 KB >> (min RTT in µs >> this), so that flows with a short
    /// RTT send bigger bursts (net.ipv4.tcp_tso_rtt_log; 0 turns it off).
    pub tso_rtt_log: u8,
    /// Acknowledge every segment at once, never delaying (Linux's per-route `quickack 1`;
    /// there is no sysctl).
    pub quickack: bool,
    /// Delayed ACK bounds (TCP_DELACK_MIN, TCP_DELACK_MAX) and TCP_ATO_MIN.
    pub delack_min: SimDuration,
    pub delack_max: SimDuration,
    /// Duplicate ACKs (or SACKed segments) that signal a loss (tcp_reordering).
    pub reordering: u32,
    /// tcp_recovery: bit 0x1 detects losses with RACK (RFC 8985) instead of counting
    /// duplicate ACKs; bit 0x4 keeps RACK's reordering window even when `reordering`
    /// segments are SACKed (Linux `TCP_RACK_NO_DUPTHRESH`).
    pub recovery: u8,
    /// tcp_early_retrans: 3 or 4 sends a tail loss probe (RFC 8985 TLP) after two
    /// round trips without an ACK; other values do not.
    pub early_retrans: u8,
    /// tcp_ecn: 0 no ECN, 1 request ECN on outgoing connections and accept it on incoming
    /// ones, 2 accept it on incoming connections only (RFC 3168).
    pub ecn: u8,
    /// tcp_ecn_fallback: a retransmitted SYN no longer asks for ECN, in case a middlebox
    /// drops ECN-setup SYNs.
    pub ecn_fallback: bool,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            syn_retries: 6,
            synack_retries: 5,
            retries2: 15,
            orphan_retries: 0,
            fin_timeout: SimDuration::from_secs(60),
            time_wait: SimDuration::from_secs(60),
            abort_on_overflow: false,
            syncookies: 1,
            somaxconn: 4096,
            max_syn_backlog: 1024,
            keepalive_time: SimDuration::from_secs(7200),
            keepalive_intvl: SimDuration::from_secs(75),
            keepalive_probes: 9,
            rmem: [4096, 131072, 6291456],
            wmem: [4096, 16384, 4194304],
            moderate_rcvbuf: true,
            initial_cwnd: 10,
            rto_min: SimDuration::from_millis(200),
            rto_max: SimDuration::from_secs(120),
            rto_initial: SimDuration::from_secs(1),
            sack: true,
            timestamps: true,
            window_scaling: true,
            congestion_control: "cubic".to_string(),
            slow_start_after_idle: true,
            pacing: false,
            gso: true,
            min_tso_segs: 2,
            tso_rtt_log: 9,
            quickack: false,
            delack_min: SimDuration::from_millis(40),
            delack_max: SimDuration::from_millis(200),
            reordering: 3,
            recovery: RACK_LOSS_DETECTION,
            early_retrans: 3,
            ecn: 2,
            ecn_fallback: true,
        }
    }
}

impl TcpConfig {
    /// The sysctl names of these knobs (scenario files set them per host), for
    /// documentation and error messages.
    pub const KNOBS: &'static [&'static str] = &[
        "tcp_syn_retries",
        "tcp_synack_retries",
        "tcp_retries2",
        "tcp_orphan_retries",
        "tcp_fin_timeout",
        "tcp_time_wait",
        "tcp_abort_on_overflow",
        "tcp_syncookies",
        "somaxconn",
        "tcp_max_syn_backlog",
        "tcp_keepalive_time",
        "tcp_keepalive_intvl",
        "tcp_keepalive_probes",
        "tcp_rmem",
        "tcp_wmem",
        "tcp_moderate_rcvbuf",
        "tcp_init_cwnd",
        "tcp_rto_min",
        "tcp_rto_max",
        "tcp_rto_initial",
        "tcp_sack",
        "tcp_timestamps",
        "tcp_window_scaling",
        "tcp_congestion_control",
        "tcp_slow_start_after_idle",
        "tcp_pacing",
        "tcp_gso",
        "tcp_min_tso_segs",
        "tcp_tso_rtt_log",
        "tcp_quickack",
        "tcp_delack_min",
        "tcp_delack_max",
        "tcp_reordering",
        "tcp_recovery",
        "tcp_early_retrans",
        "tcp_ecn",
        "tcp_ecn_fallback",
    ];

    /// Whether losses are detected by RACK rather than by duplicate-ACK counting.
    pub fn rack(&self) -> bool {
        self.recovery & RACK_LOSS_DETECTION != 0
    }

    /// Whether tail loss probes are on.
    pub fn tlp(&self) -> bool {
        matches!(self.early_retrans, 3 | 4)
    }

    /// Orphan retry limit as Linux computes it (0 means 8).
    pub fn orphan_retry_limit(&self) -> u8 {
        if self.orphan_retries == 0 {
            8
        } else {
            self.orphan_retries
        }
    }
}

/// Per-socket options (setsockopt).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SockOpts {
    pub reuse_addr: bool,
    pub keepalive: bool,
    /// TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT overrides.
    pub keep_idle: Option<SimDuration>,
    pub keep_intvl: Option<SimDuration>,
    pub keep_cnt: Option<u8>,
    pub nodelay: bool,
    /// SO_LINGER: `Some(0)` aborts on close.
    pub linger: Option<SimDuration>,
    /// SO_SNDBUF / SO_RCVBUF (payload bytes); set values disable auto-tuning.
    pub sndbuf: Option<u32>,
    pub rcvbuf: Option<u32>,
    /// TCP_MAXSEG: clamp on the MSS this socket announces and uses.
    pub max_seg: Option<u16>,
    /// TCP_CONGESTION: this socket's controller instead of the host's
    /// `tcp_congestion_control`.
    pub congestion: Option<super::cc::CcName>,
}

/// Socket errors, named as Linux names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Errno {
    #[error("ECONNREFUSED: connection refused")]
    ConnRefused,
    #[error("ETIMEDOUT: connection timed out")]
    TimedOut,
    #[error("ECONNRESET: connection reset by peer")]
    ConnReset,
    #[error("EPIPE: broken pipe")]
    Pipe,
    #[error("EHOSTUNREACH: no route to host")]
    HostUnreach,
    #[error("ENETUNREACH: network is unreachable")]
    NetUnreach,
    #[error("EADDRINUSE: address already in use")]
    AddrInUse,
    #[error("EADDRNOTAVAIL: cannot assign requested address")]
    AddrNotAvail,
    #[error("EAGAIN: resource temporarily unavailable")]
    Again,
    #[error("EINVAL: invalid argument")]
    Inval,
    #[error("ENOTCONN: transport endpoint is not connected")]
    NotConn,
    #[error("EISCONN: transport endpoint is already connected")]
    IsConn,
    #[error("EALREADY: operation already in progress")]
    Already,
    #[error("EBADF: bad file descriptor")]
    BadF,
    #[error("EMSGSIZE: message too long")]
    MsgSize,
    #[error("ECONNABORTED: software caused connection abort")]
    ConnAborted,
    #[error("EPROTO: protocol error")]
    Proto,
}

impl Errno {
    /// The symbolic name (`"ECONNREFUSED"`), as used in traces and summaries.
    pub fn name(self) -> &'static str {
        match self {
            Errno::ConnRefused => "ECONNREFUSED",
            Errno::TimedOut => "ETIMEDOUT",
            Errno::ConnReset => "ECONNRESET",
            Errno::Pipe => "EPIPE",
            Errno::HostUnreach => "EHOSTUNREACH",
            Errno::NetUnreach => "ENETUNREACH",
            Errno::AddrInUse => "EADDRINUSE",
            Errno::AddrNotAvail => "EADDRNOTAVAIL",
            Errno::Again => "EAGAIN",
            Errno::Inval => "EINVAL",
            Errno::NotConn => "ENOTCONN",
            Errno::IsConn => "EISCONN",
            Errno::Already => "EALREADY",
            Errno::BadF => "EBADF",
            Errno::MsgSize => "EMSGSIZE",
            Errno::ConnAborted => "ECONNABORTED",
            Errno::Proto => "EPROTO",
        }
    }
}

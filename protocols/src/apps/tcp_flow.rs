//! What the TCP apps share: how a bulk stream names its flow, and how a client keeps track
//! of its connections so that it can report their final state, retransmissions and error
//! into its flow when it finishes.
//!
//! A bulk sender writes [`Payload::Pattern`] data whose stream id is [`stream_for`] its
//! flow, so a sink (which registers no flow of its own) can attribute what it receives to
//! the sender's flow with [`flow_of_stream`], exactly as the UDP sink uses the CBR header.

use crate::app::Os;
use crate::dns::{LookupError, LookupResult};
use crate::tcp::{Errno, SockOpts, TcpInfo, TcpSocketId, TcpState};
use sim_core::metrics::FlowId;
use sim_core::packet::Payload;
use sim_core::time::{SimDuration, SimTime};
use std::net::{Ipv4Addr, SocketAddrV4};

/// High 32 bits of the pattern stream id of every netdes bulk flow ("NDSB").
const STREAM_TAG: u64 = 0x4e44_5342;

/// The pattern stream a bulk sender feeding `flow` writes.
pub fn stream_for(flow: FlowId) -> u64 {
    STREAM_TAG << 32 | flow.0 as u64
}

/// The flow a received pattern stream belongs to, if it is a netdes bulk stream.
pub fn flow_of_stream(stream: u64) -> Option<FlowId> {
    (stream >> 32 == STREAM_TAG).then_some(FlowId(stream as u32))
}

/// The flow of a received piece, if it is part of a netdes bulk stream.
pub fn flow_of_payload(p: &Payload) -> Option<FlowId> {
    match p {
        Payload::Pattern { stream, .. } => flow_of_stream(*stream),
        _ => None,
    }
}

/// The app timer/lookup token [`TargetLookup`] uses (apps' own tokens are small).
pub const LOOKUP_TOKEN: u64 = 1 << 39;

/// How a client finds its target's address: a node name or dotted address at once, else a
/// DNS lookup through the host's stub resolver ([`Os::lookup`]) whose latency is recorded
/// in the client's flow as `dns_lookup_ms` (and a failure as the flow's getaddrinfo error,
/// `EAI_NONAME` or `EAI_AGAIN`, with `error_at_s`).
#[derive(Debug, Default)]
pub struct TargetLookup {
    started: Option<SimTime>,
    /// The address and how long the lookup took.
    pub resolved: Option<(Ipv4Addr, SimDuration)>,
    pub error: Option<LookupError>,
}

impl TargetLookup {
    /// The address of `host` now, or `None` after starting a DNS lookup (its result comes
    /// to [`TargetLookup::on_resolved`]).
    pub fn resolve_or_lookup(&mut self, os: &mut Os<'_, '_>, host: &str) -> Option<Ipv4Addr> {
        if let Some(a) = os.resolve(host) {
            return Some(a);
        }
        self.started = Some(os.now());
        os.lookup(host, LOOKUP_TOKEN);
        None
    }

    /// Takes the result of our lookup (`None` if `token` is not ours) and records it in
    /// `flow`.
    pub fn on_resolved(
        &mut self,
        os: &mut Os<'_, '_>,
        flow: Option<FlowId>,
        token: u64,
        result: &LookupResult,
    ) -> Option<Result<Ipv4Addr, LookupError>> {
        let started = self.started.filter(|_| token == LOOKUP_TOKEN)?;
        self.started = None;
        let now = os.now();
        let took = now.saturating_since(started);
        let outcome = match result {
            Ok(a) if !a.is_empty() => Ok(a[0]),
            Ok(_) => Err(LookupError::NoData),
            Err(e) => Err(*e),
        };
        if let Some(f) = flow.and_then(|f| os.flow(f)) {
            f.extra.insert("dns_lookup_ms", took.as_millis_f64());
            if let Err(e) = outcome {
                f.error = Some(e.eai());
                f.extra.insert("error_at_s", now.as_secs_f64());
            }
        }
        match outcome {
            Ok(a) => self.resolved = Some((a, took)),
            Err(e) => self.error = Some(e),
        }
        Some(outcome)
    }

    /// A report line about the lookup, if there was one.
    pub fn line(&self, host: &str) -> Option<String> {
        if let Some((a, took)) = self.resolved {
            return Some(format!(
                "resolved {host} to {a} in {:.3} ms",
                took.as_millis_f64()
            ));
        }
        self.error
            .map(|e| format!("cannot resolve {host}: {e} ({})", e.eai()))
    }
}

/// Splits `"host:port"`; the scenario loader has already checked the form.
pub fn split_target(to: &str) -> (String, u16) {
    match to.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.parse().unwrap_or(0)),
        None => (to.to_string(), 0),
    }
}

/// One connection a client opened.
#[derive(Debug)]
struct Entry {
    /// The connection (which keeps its id until the kernel frees it).
    id: TcpSocketId,
    /// The socket, while the app holds it.
    sock: Option<TcpSocketId>,
    remote: SocketAddrV4,
    /// The latest TCP_INFO seen.
    last: Option<TcpInfo>,
    /// The kernel has freed the connection.
    gone: bool,
}

/// The connections of a client app, for its final report.
#[derive(Debug, Default)]
pub struct ConnLog {
    entries: Vec<Entry>,
    /// The first error any connection failed with, and when.
    pub error: Option<(Errno, SimTime)>,
}

/// Totals over every connection of a [`ConnLog`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnTotals {
    pub connections: usize,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    pub retransmits: u64,
    pub rto_timeouts: u64,
    pub fast_retransmits: u64,
    /// Duplicate ACKs the connections received.
    pub dup_acks_in: u64,
    /// The state of the most recent connection (CLOSED once the kernel freed it).
    pub state: Option<TcpState>,
    /// TCP_INFO of the most recent connection still known.
    pub last: Option<TcpInfo>,
}

impl ConnLog {
    /// Records a new connection's socket (call after connect()).
    pub fn opened(&mut self, os: &Os<'_, '_>, sock: TcpSocketId, remote: SocketAddrV4) {
        self.entries.push(Entry {
            id: sock,
            sock: Some(sock),
            remote,
            last: os.tcp_info(sock).ok(),
            gone: false,
        });
    }

    /// Records that the app failed with `err` (only the first error is kept).
    pub fn failed(&mut self, err: Errno, now: SimTime) {
        if self.error.is_none() {
            self.error = Some((err, now));
        }
    }

    /// Takes a last look at `sock` and forgets it: call just before tcp_close().
    pub fn closing(&mut self, os: &Os<'_, '_>, sock: TcpSocketId) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.sock == Some(sock)) {
            if let Ok(i) = os.tcp_info(sock) {
                e.last = Some(i);
            }
            e.sock = None;
        }
    }

    /// Refreshes every connection's TCP_INFO: through the socket while the app holds it,
    /// else by its 4-tuple while the kernel still has it (FIN_WAIT_2, TIME_WAIT ...).
    pub fn refresh(&mut self, os: &Os<'_, '_>) {
        for e in &mut self.entries {
            if e.gone {
                continue;
            }
            let info = match e.sock {
                Some(s) => os.tcp_info(s).ok(),
                // The same 4-tuple may belong to a newer connection by now.
                None => e
                    .last
                    .as_ref()
                    .filter(|l| l.local.port() != 0)
                    .and_then(|l| os.tcp_find(l.local, e.remote))
                    .filter(|(id, _)| *id == e.id)
                    .map(|(_, i)| i),
            };
            match info {
                Some(i) => e.last = Some(i),
                None => e.gone = true,
            }
        }
    }

    /// Sums over every connection (call [`ConnLog::refresh`] first).
    pub fn totals(&self) -> ConnTotals {
        let mut t = ConnTotals {
            connections: self.entries.len(),
            ..ConnTotals::default()
        };
        for i in self.entries.iter().filter_map(|e| e.last.as_ref()) {
            t.bytes_acked += i.bytes_acked;
            t.bytes_received += i.bytes_received;
            t.segs_out += i.segs_out;
            t.segs_in += i.segs_in;
            t.retransmits += i.retransmits;
            t.rto_timeouts += i.rto_timeouts;
            t.fast_retransmits += i.fast_retransmits;
            t.dup_acks_in += i.dup_acks_in;
        }
        if let Some(e) = self.entries.last() {
            t.state = Some(if e.gone {
                TcpState::Closed
            } else {
                e.last.as_ref().map_or(TcpState::Closed, |i| i.state)
            });
            t.last = e.last.clone();
        }
        t
    }

    /// Writes the final state, error and retransmissions into `flow` and returns the
    /// totals: what every TCP client does when it finishes. Counts are added to what the
    /// flow holds, so an app that runs again after its node restarted adds to the first
    /// run's; the state is the latest, and an error replaces an earlier one.
    pub fn finish_flow(&mut self, os: &mut Os<'_, '_>, flow: FlowId) -> ConnTotals {
        self.refresh(os);
        let t = self.totals();
        let error = self.error;
        if let Some(f) = os.flow(flow) {
            f.state = Some(t.state.unwrap_or(TcpState::Closed).name());
            *f.extra.entry("retransmits").or_insert(0.0) += t.retransmits as f64;
            *f.extra.entry("rto_timeouts").or_insert(0.0) += t.rto_timeouts as f64;
            *f.extra.entry("dup_acks").or_insert(0.0) += t.dup_acks_in as f64;
            if let Some((e, at)) = error {
                f.error = Some(e.name());
                f.extra.insert("error_at_s", at.as_secs_f64());
            }
            if let Some(rtt) = t.last.as_ref().and_then(|i| i.srtt) {
                f.extra.insert("srtt_ms", rtt.as_millis_f64());
            }
        }
        t
    }
}

/// `"10.0.0.2:40123 -> 10.0.2.2:5001"` for a connection's report line.
pub fn conn_label(i: &TcpInfo) -> String {
    format!("{} -> {}", i.local, i.remote)
}

/// Seconds with three decimals, as the TCP apps print times.
pub fn secs(t: SimTime) -> String {
    format!("{:.3}", t.as_secs_f64())
}

/// Bits per second as "12.345 Mbit/s".
pub fn mbits(bytes: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "0.000 Mbit/s".into();
    }
    format!("{:.3} Mbit/s", bytes as f64 * 8.0 / seconds / 1e6)
}

/// A listening socket with the app's socket options, bound to `port` on every address.
pub fn listen_with(
    os: &mut Os<'_, '_>,
    opts: SockOpts,
    port: u16,
    backlog: u32,
) -> Result<TcpSocketId, Errno> {
    let s = os.tcp_socket();
    os.tcp_set(s, |o| *o = opts)?;
    os.tcp_bind(s, port)?;
    os.tcp_listen(s, backlog)?;
    Ok(s)
}

/// The last lines of a client's report: its note, then the error it met or its final state.
pub fn push_outcome(
    lines: &mut Vec<String>,
    note: Option<&str>,
    log: &ConnLog,
    state: Option<crate::tcp::TcpState>,
) {
    if let Some(n) = note {
        lines.push(n.to_string());
    }
    match log.error {
        Some((e, at)) => lines.push(format!("error at {} s: {e}", secs(at))),
        None => lines.push(format!(
            "final state {}",
            state.map_or("CLOSED", |s| s.name())
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_name_their_flow() {
        let s = stream_for(FlowId(7));
        assert_eq!(flow_of_stream(s), Some(FlowId(7)));
        assert_eq!(flow_of_stream(7), None);
        let p = Payload::Pattern {
            stream: s,
            offset: 10,
            len: 5,
        };
        assert_eq!(flow_of_payload(&p), Some(FlowId(7)));
        assert_eq!(flow_of_payload(&Payload::zeros(5)), None);
    }

    #[test]
    fn targets_split_at_the_last_colon() {
        assert_eq!(split_target("srv:80"), ("srv".to_string(), 80));
        assert_eq!(
            split_target("10.0.0.1:5001"),
            ("10.0.0.1".to_string(), 5001)
        );
        assert_eq!(mbits(1_000_000, 1.0), "8.000 Mbit/s");
    }
}

//! Built-in applications. Each is an [`crate::App`] with a plain config struct.
//!
//! - [`ping::Ping`]: ICMP echo, RTT min/mean/max and loss, like iputils ping.
//! - [`traceroute::Traceroute`]: UDP probes with rising TTL, one line per hop.
//! - [`cbr::UdpCbr`] and [`cbr::UdpSink`]: constant-bit-rate UDP sender and its sink.
//! - [`echo::UdpEcho`]: sends every datagram back to its sender.
//! - [`tcp_bulk::TcpBulkSender`] and [`tcp_bulk::TcpSink`]: iperf-like bulk TCP transfer of
//!   a generated pattern, verified byte for byte by the sink.
//! - [`tcp_rr::TcpRequestResponse`] and [`tcp_rr::TcpServer`]: request/response over one
//!   long-lived connection or a connection per request, with per-request latency.
//! - [`tcp_echo::TcpEcho`]: TCP echo server.
//! - [`syn_flood::SynFlood`]: SYNs from spoofed sources through a raw socket.
//! - [`gossip::GossipApp`]: one member of a gossip group (rumor mongering and
//!   anti-entropy over UDP, [`crate::gossip`]).
//! - [`dhcp::DhcpClient`], [`dhcp::DhcpServer`] and [`dhcp::DhcpRelay`]: DHCP (RFC 2131).
//!
//! [`tcp_flow`] holds what the TCP apps share (flow attribution, final connection state).

pub mod cbr;
pub mod dhcp;
pub mod echo;
pub mod gossip;
pub mod ping;
pub mod syn_flood;
pub mod tcp_bulk;
pub mod tcp_echo;
pub mod tcp_flow;
pub mod tcp_rr;
pub mod traceroute;

/// Formats milliseconds like ping does (three decimals).
pub(crate) fn ms(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

//! Built-in applications. Each is an [`crate::App`] with a plain config struct.
//!
//! - [`ping::Ping`]: ICMP echo, RTT min/mean/max and loss, like iputils ping.
//! - [`traceroute::Traceroute`]: UDP probes with rising TTL, one line per hop.
//! - [`cbr::UdpCbr`] and [`cbr::UdpSink`]: constant-bit-rate UDP sender and its sink.
//! - [`echo::UdpEcho`]: sends every datagram back to its sender.

pub mod cbr;
pub mod echo;
pub mod ping;
pub mod traceroute;

/// Formats milliseconds like ping does (three decimals).
pub(crate) fn ms(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

//! When frames reach the end of a path, computed from the links alone: each link sends
//! the frames in turn (serialization at its rate, frames padded to Ethernet's 60 bytes)
//! and delays them; each node forwards a frame once it has all of it. For the tests that
//! assert latencies to the nanosecond (DNS over UDP and TCP, ARP).

/// A link direction: (delay in ns, bits per second).
pub type Hop = (u64, u64);

pub const US: u64 = 1_000;
pub const MS: u64 = 1_000_000;
pub const M100: u64 = 100_000_000;
pub const G1: u64 = 1_000_000_000;

/// Ethernet, IPv4 and UDP headers.
pub const UDP_HEADERS: usize = 14 + 20 + 8;
/// An ARP frame (42 bytes, padded to 60 on the wire).
pub const ARP: usize = 14 + 28;
/// A TCP segment without data, with the timestamp option (a 32-byte TCP header).
pub const TCP_ACK: usize = 14 + 20 + 32;
/// A SYN or SYN-ACK with Linux's options (MSS, SACK permitted, timestamps, window scale).
pub const TCP_SYN: usize = 14 + 20 + 40;

/// When `frames` (bytes each, from the Ethernet header on), sent back to back at `t`,
/// have all reached the end of `path`.
pub fn arrive(path: &[Hop], t: u64, frames: &[usize]) -> u64 {
    let mut at = vec![t; frames.len()];
    for &(delay, bps) in path {
        let mut free = 0;
        for (a, &bytes) in at.iter_mut().zip(frames) {
            let start = (*a).max(free);
            free = start + ((bytes.max(60) as u64) * 8 * 1_000_000_000).div_ceil(bps);
            *a = free + delay;
        }
    }
    at.last().copied().unwrap_or(t)
}

/// The path back.
pub fn reverse(path: &[Hop]) -> Vec<Hop> {
    path.iter().rev().copied().collect()
}

/// A UDP datagram carrying `payload` bytes sent at `t`: when it is in.
pub fn udp(path: &[Hop], t: u64, payload: usize) -> u64 {
    arrive(path, t, &[UDP_HEADERS + payload])
}

/// A UDP request of `ask` bytes at `t` and the answer of `answer` bytes sent the instant
/// it arrives: when the answer is in.
pub fn udp_round_trip(path: &[Hop], t: u64, ask: usize, answer: usize) -> u64 {
    udp(&reverse(path), udp(path, t, ask), answer)
}

/// ARP resolution of the neighbour at the end of `path` (one link, or two through a
/// switch) starting at `t`: the broadcast request there, the reply back. When the reply is
/// in (and the packets that waited for it leave).
pub fn arp(path: &[Hop], t: u64) -> u64 {
    arrive(&reverse(path), arrive(path, t, &[ARP]), &[ARP])
}

/// A DNS message over TCP on a fresh connection at `t`: SYN and SYN-ACK, then the ACK and
/// the length-prefixed query back to back; the server ACKs at once (Linux's quick-ACK mode
/// at the start of a connection) and sends the length-prefixed answer right behind. When
/// the answer is in.
pub fn dns_over_tcp(path: &[Hop], t: u64, query: usize, answer: usize) -> u64 {
    let back = reverse(path);
    let syn = arrive(path, t, &[TCP_SYN]);
    let syn_ack = arrive(&back, syn, &[TCP_SYN]);
    let request = arrive(path, syn_ack, &[TCP_ACK, TCP_ACK + 2 + query]);
    arrive(&back, request, &[TCP_ACK, TCP_ACK + 2 + answer])
}

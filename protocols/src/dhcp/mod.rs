//! DHCP for IPv4 (RFC 2131, options from RFC 2132): the client and server state machines,
//! the relay agent's forwarding rules, and the message codec.
//!
//! Owns the protocol logic only. [`client::Client`], [`server::Server`] and [`relay`] never
//! see the scheduler, sockets or the IP layer: they are driven by calls carrying the time
//! and a decoded message, and answer with actions (messages to send and where, interface
//! changes, ARP checks, a deadline). The apps in `crate::apps::dhcp` adapt them to
//! [`crate::Os`]; unit tests drive them directly. Messages are encoded and decoded with the
//! `dhcproto` crate; [`decode`] adds the checks dhcproto leaves out (length, magic cookie,
//! hardware type, message type), so anything malformed is reported as a [`DecodeError`]
//! and counted and dropped by the apps. See `docs/dhcp.md` for which RFC 2131 behaviours
//! are modelled.

pub mod client;
#[cfg(test)]
mod proptests;
pub mod relay;
pub mod server;

pub use dhcproto::v4::{DhcpOption, Flags, HType, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Encodable};
use sim_core::packet::MacAddr;
use sim_core::time::SimDuration;
use std::net::Ipv4Addr;

/// The UDP port servers and relay agents listen on.
pub const SERVER_PORT: u16 = 67;
/// The UDP port clients listen on.
pub const CLIENT_PORT: u16 = 68;
/// BOOTP messages are at least 300 bytes (RFC 1542 section 2.1); shorter ones are padded.
pub const MIN_MESSAGE_LEN: usize = 300;
/// The fixed BOOTP header (236 bytes) and the magic cookie.
const HEADER_LEN: usize = 240;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// Relay agents discard requests that have crossed this many relays (RFC 1542 4.1.1).
pub const MAX_HOPS: u8 = 16;

/// Why a datagram is not a DHCP message we accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0} bytes: shorter than the 240-byte BOOTP header and magic cookie")]
    Short(usize),
    #[error("wrong magic cookie {0:?}")]
    BadCookie([u8; 4]),
    #[error("op {0} is neither BOOTREQUEST nor BOOTREPLY")]
    BadOpcode(u8),
    #[error("hardware type {htype} length {hlen}: only Ethernet (1, 6) is supported")]
    NotEthernet { htype: u8, hlen: u8 },
    #[error("no DHCP message type option")]
    NoMessageType,
    #[error("option {code} is cut short or has a wrong length ({len})")]
    BadOption { code: u8, len: usize },
    #[error("undecodable: {0}")]
    Codec(String),
}

/// Decodes and checks a DHCP message.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Short(bytes.len()));
    }
    let cookie = [bytes[236], bytes[237], bytes[238], bytes[239]];
    if cookie != MAGIC_COOKIE {
        return Err(DecodeError::BadCookie(cookie));
    }
    if !matches!(bytes[0], 1 | 2) {
        return Err(DecodeError::BadOpcode(bytes[0]));
    }
    if bytes[1] != 1 || bytes[2] != 6 {
        return Err(DecodeError::NotEthernet {
            htype: bytes[1],
            hlen: bytes[2],
        });
    }
    check_option_lengths(&bytes[HEADER_LEN..])?;
    let msg = Message::from_bytes(bytes).map_err(|e| DecodeError::Codec(e.to_string()))?;
    match msg.opts().msg_type() {
        Some(MessageType::Unknown(_)) | None => Err(DecodeError::NoMessageType),
        Some(_) => Ok(msg),
    }
}

/// Walks the options' type-length-value framing and checks the lengths of the options
/// whose size is fixed by their RFC. dhcproto reads those with fixed-size reads (and
/// `debug_assert!`s some lengths), so a wrong length would desynchronize or panic it.
fn check_option_lengths(mut opts: &[u8]) -> Result<(), DecodeError> {
    while let Some((&code, rest)) = opts.split_first() {
        match code {
            0 => {
                opts = rest;
                continue;
            }
            255 => return Ok(()),
            _ => {}
        }
        let Some((&len, rest)) = rest.split_first() else {
            return Err(DecodeError::BadOption { code, len: 0 });
        };
        let len = len as usize;
        let ok = rest.len() >= len
            && match code {
                // Rapid commit (RFC 4039).
                80 => len == 0,
                // Message type, BLQ state and data source.
                53 | 156 | 157 => len == 1,
                // Maximum message size, client system architecture (RFC 4578).
                57 | 93 => len == 2,
                // Client network interface identifier (RFC 4578).
                94 => len == 3,
                // Time offset, lease time, T1, T2, last transaction time, IPv6-only
                // preferred, BLQ times.
                2 | 51 | 58 | 59 | 91 | 106 | 152..=155 => len == 4,
                // Client FQDN (RFC 4702): flags and two rcodes first.
                81 => len >= 3,
                // BLQ status code: the code first.
                151 => len >= 1,
                _ => true,
            };
        if !ok {
            return Err(DecodeError::BadOption { code, len });
        }
        opts = &rest[len..];
    }
    Ok(())
}

/// Encodes a message, padded to the BOOTP minimum of 300 bytes; `None` if dhcproto cannot
/// encode it (an option too long for its length byte).
pub fn encode(msg: &Message) -> Option<Vec<u8>> {
    let mut bytes = msg.to_vec().ok()?;
    if bytes.len() < MIN_MESSAGE_LEN {
        bytes.resize(MIN_MESSAGE_LEN, 0); // Pad options after End
    }
    Some(bytes)
}

/// A new message with the fixed fields every message of ours has: Ethernet, `mac` as the
/// client hardware address, `xid`.
pub fn new_message(op: Opcode, xid: u32, mac: MacAddr, kind: MessageType) -> Message {
    // dhcproto's constructor draws a random xid from the thread RNG; it is overwritten.
    let z = Ipv4Addr::UNSPECIFIED;
    let mut m = Message::new_with_id(xid, z, z, z, z, &mac.0);
    m.set_opcode(op);
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    m
}

/// The message's type (decoded messages always have one).
pub fn message_type(m: &Message) -> MessageType {
    m.opts().msg_type().unwrap_or(MessageType::Unknown(0))
}

/// The client hardware address, if it is an Ethernet address.
pub fn chaddr_mac(m: &Message) -> Option<MacAddr> {
    let c = m.chaddr();
    (c.len() == 6).then(|| MacAddr([c[0], c[1], c[2], c[3], c[4], c[5]]))
}

/// What a server identifies a client by: its client identifier option, or else its
/// hardware address (RFC 2131 section 4.2).
pub fn client_key(m: &Message) -> Vec<u8> {
    match m.opts().get(OptionCode::ClientIdentifier) {
        Some(DhcpOption::ClientIdentifier(id)) if !id.is_empty() => id.clone(),
        _ => m.chaddr().to_vec(),
    }
}

/// The client identifier an Ethernet client sends: hardware type 1 and its MAC.
pub fn client_identifier(mac: MacAddr) -> Vec<u8> {
    let mut id = vec![1];
    id.extend_from_slice(&mac.0);
    id
}

pub fn server_identifier(m: &Message) -> Option<Ipv4Addr> {
    match m.opts().get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(a)) => Some(*a),
        _ => None,
    }
}

pub fn requested_address(m: &Message) -> Option<Ipv4Addr> {
    match m.opts().get(OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(a)) => Some(*a),
        _ => None,
    }
}

/// The lowercase name of a message type, as traces show it ("discover", "offer", ...).
pub fn type_name(t: MessageType) -> &'static str {
    match t {
        MessageType::Discover => "discover",
        MessageType::Offer => "offer",
        MessageType::Request => "request",
        MessageType::Decline => "decline",
        MessageType::Ack => "ack",
        MessageType::Nak => "nak",
        MessageType::Release => "release",
        MessageType::Inform => "inform",
        _ => "other",
    }
}

/// The prefix length of a contiguous subnet mask; `None` for a non-contiguous one.
pub fn mask_len(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let len = m.leading_ones();
    (m.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

/// Whole seconds of a duration, as lease-time options carry them (at most 2^32 - 2:
/// 0xffffffff means "infinite").
pub fn secs_u32(d: SimDuration) -> u32 {
    (d.as_nanos() / 1_000_000_000).min(u32::MAX as u64 - 1) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    #[test]
    fn messages_round_trip_through_dhcproto_padded_to_300_bytes() {
        let mut m = new_message(Opcode::BootRequest, 0x1234_5678, MAC, MessageType::Discover);
        m.opts_mut()
            .insert(DhcpOption::ClientIdentifier(client_identifier(MAC)));
        m.opts_mut().insert(DhcpOption::Hostname("c1".into()));
        let bytes = encode(&m).unwrap();
        assert_eq!(bytes.len(), MIN_MESSAGE_LEN);
        assert_eq!(&bytes[236..240], &MAGIC_COOKIE);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.xid(), 0x1234_5678);
        assert_eq!(message_type(&back), MessageType::Discover);
        assert_eq!(chaddr_mac(&back), Some(MAC));
        assert_eq!(client_key(&back), vec![1, 2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn malformed_messages_are_rejected_with_a_reason() {
        let good = encode(&new_message(Opcode::BootReply, 1, MAC, MessageType::Offer)).unwrap();
        assert_eq!(decode(&good[..100]), Err(DecodeError::Short(100)));
        let mut bad = good.clone();
        bad[236] = 0;
        assert!(matches!(decode(&bad), Err(DecodeError::BadCookie(_))));
        let mut bad = good.clone();
        bad[0] = 7;
        assert_eq!(decode(&bad), Err(DecodeError::BadOpcode(7)));
        let mut bad = good.clone();
        bad[2] = 16;
        assert!(matches!(decode(&bad), Err(DecodeError::NotEthernet { .. })));
        let mut bad = good.clone();
        bad[240..].fill(0); // only Pad: no message type
        assert_eq!(decode(&bad), Err(DecodeError::NoMessageType));
        // A client network interface option of two bytes instead of three, and one whose
        // length runs past the end.
        let mut bad = good[..240].to_vec();
        bad.extend_from_slice(&[53, 1, 1, 94, 2, 0, 0, 255]);
        assert_eq!(
            decode(&bad),
            Err(DecodeError::BadOption { code: 94, len: 2 })
        );
        let mut bad = good[..240].to_vec();
        bad.extend_from_slice(&[53, 1, 1, 12, 9, b'h']);
        assert_eq!(
            decode(&bad),
            Err(DecodeError::BadOption { code: 12, len: 9 })
        );
        assert!(decode(&[0u8; 1000]).is_err());
    }

    proptest::proptest! {
        /// Whatever follows a valid header, decoding returns a message or an error and
        /// never panics; what decodes re-encodes.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            op in 1u8..3,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            tlvs in proptest::collection::vec(
                (proptest::prelude::any::<u8>(), proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12)),
                0..12,
            ),
        ) {
            let mut bytes = vec![0u8; HEADER_LEN];
            bytes[0] = op;
            bytes[1] = 1;
            bytes[2] = 6;
            bytes[236..240].copy_from_slice(&MAGIC_COOKIE);
            // Well-framed options with arbitrary codes and contents, then arbitrary bytes.
            bytes.extend_from_slice(&[53, 1, 1]);
            for (code, data) in &tlvs {
                bytes.push(*code);
                bytes.push(data.len() as u8);
                bytes.extend_from_slice(data);
            }
            bytes.extend_from_slice(&body);
            if let Ok(m) = decode(&bytes) {
                let _ = encode(&m);
            }
            let _ = decode(&body);
        }
    }

    #[test]
    fn mask_lengths() {
        assert_eq!(mask_len(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(mask_len(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(mask_len(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
        assert_eq!(mask_len(Ipv4Addr::new(255, 0, 255, 0)), None);
    }
}

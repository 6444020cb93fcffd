//! The packet model: Ethernet frames carrying ARP or IPv4, as structured values.
//!
//! Owns the in-memory representation of everything that crosses a link. Headers that the
//! core interprets (Ethernet, ARP, IPv4, ICMP) are structured fields; transport headers are
//! opaque bytes written by the transport protocol (the core reads only the first four bytes,
//! the ports, for ECMP hashing, as a router would). Payloads are described, not stored, when
//! their content is synthetic, so a packet needs no heap allocation. `wire` turns a frame
//! into real bytes for capture.
//!
//! Invariant: `len()` of every type equals the length of its encoding in `wire`.

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// IP protocol numbers the core knows by name.
pub mod ip_proto {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
}

/// Bytes an Ethernet II header adds to an IP packet on the wire.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// Smallest Ethernet frame without FCS; shorter frames are padded on the wire.
pub const ETHERNET_MIN_FRAME_LEN: usize = 60;
pub const IPV4_HEADER_LEN: usize = 20;
pub const ICMP_HEADER_LEN: usize = 8;
pub const ARP_LEN: usize = 28;

/// The ECN field of an IPv4 header (RFC 3168 section 5): the two low bits of the TOS byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Ecn {
    /// Not ECN-capable (00).
    #[default]
    NotEct,
    /// ECN-capable transport, ECT(1) (01).
    Ect1,
    /// ECN-capable transport, ECT(0) (10): what TCP sets.
    Ect0,
    /// Congestion experienced (11): set by a queue instead of dropping the packet.
    Ce,
}

impl Ecn {
    /// The ECN field of a TOS byte.
    pub fn of_tos(tos: u8) -> Ecn {
        match tos & 0b11 {
            0b00 => Ecn::NotEct,
            0b01 => Ecn::Ect1,
            0b10 => Ecn::Ect0,
            _ => Ecn::Ce,
        }
    }
    /// The two bits of this codepoint, as they sit in the TOS byte.
    pub fn bits(self) -> u8 {
        match self {
            Ecn::NotEct => 0b00,
            Ecn::Ect1 => 0b01,
            Ecn::Ect0 => 0b10,
            Ecn::Ce => 0b11,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    /// Group (multicast or broadcast) addresses have the low bit of the first octet set.
    pub fn is_group(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}
impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An Ethernet II frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    pub src: MacAddr,
    pub dst: MacAddr,
    pub body: FrameBody,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FrameBody {
    Arp(ArpPacket),
    Ipv4(Ipv4Packet),
}

impl Frame {
    /// Bytes of the frame as captured (header plus L3 packet, no padding, no FCS).
    pub fn len(&self) -> usize {
        ETHERNET_HEADER_LEN
            + match &self.body {
                FrameBody::Arp(_) => ARP_LEN,
                FrameBody::Ipv4(p) => p.total_len(),
            }
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes the frame occupies on the wire for serialization: padded to the Ethernet minimum.
    pub fn wire_len(&self) -> usize {
        self.len().max(ETHERNET_MIN_FRAME_LEN)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOp {
    Request,
    Reply,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpPacket {
    pub op: ArpOp,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

/// An IPv4 packet (no options).
#[derive(Clone, Debug, PartialEq)]
pub struct Ipv4Packet {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    /// DSCP and ECN bits.
    pub tos: u8,
    pub protocol: u8,
    pub ident: u16,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// Offset of this fragment's data in the original payload, in bytes (a multiple of 8).
    pub fragment_offset: u16,
    /// Damaged in transit: the receiver's checksum check fails and it is dropped and counted.
    pub corrupted: bool,
    pub body: IpBody,
}

impl Ipv4Packet {
    pub fn total_len(&self) -> usize {
        IPV4_HEADER_LEN + self.body.len()
    }
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.fragment_offset != 0
    }
}

/// What an IPv4 packet carries.
#[derive(Clone, Debug, PartialEq)]
pub enum IpBody {
    Icmp(IcmpMessage),
    Transport(TransportPacket),
    /// A slice of a larger datagram's payload, made by fragmentation.
    Fragment(FragmentData),
}

impl IpBody {
    pub fn len(&self) -> usize {
        match self {
            IpBody::Icmp(m) => m.len(),
            IpBody::Transport(t) => t.len(),
            IpBody::Fragment(f) => f.len as usize,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `len` bytes starting at `offset` of the payload of the original (unfragmented) datagram.
#[derive(Clone, Debug, PartialEq)]
pub struct FragmentData {
    pub whole: Arc<IpBody>,
    pub offset: u32,
    pub len: u32,
}

/// Where a transport protocol keeps its checksum, so the core can fill it in when it
/// writes real bytes (RFC 768 / RFC 9293 pseudo-header checksum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumField {
    None,
    /// Byte offset in the transport header; `zero_as_ones` applies UDP's rule that a
    /// computed zero is sent as 0xffff.
    At {
        offset: u8,
        zero_as_ones: bool,
    },
}

/// A transport-layer packet: the header as real bytes (checksum field left zero) and a payload.
#[derive(Clone, Debug, PartialEq)]
pub struct TransportPacket {
    pub header: HeaderBytes,
    pub payload: Payload,
    pub checksum: ChecksumField,
}

impl TransportPacket {
    pub fn len(&self) -> usize {
        self.header.len() + self.payload.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Source and destination ports, when the header is long enough to hold them.
    pub fn ports(&self) -> (u16, u16) {
        let h = self.header.as_slice();
        if h.len() >= 4 {
            (
                u16::from_be_bytes([h[0], h[1]]),
                u16::from_be_bytes([h[2], h[3]]),
            )
        } else {
            (0, 0)
        }
    }
}

/// Up to 60 header bytes stored inline (the largest TCP header).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HeaderBytes {
    len: u8,
    bytes: [u8; 60],
}

impl HeaderBytes {
    pub const MAX: usize = 60;

    /// Copies `bytes`; `None` if longer than 60 bytes.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.len() > Self::MAX {
            return None;
        }
        let mut b = [0u8; 60];
        b[..bytes.len()].copy_from_slice(bytes);
        Some(HeaderBytes {
            len: bytes.len() as u8,
            bytes: b,
        })
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes[..self.len as usize]
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for HeaderBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeaderBytes(")?;
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Application bytes. Synthetic payloads are described by a rule rather than stored.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// `head` (up to 32 bytes, e.g. an app's sequence number and timestamp), then zeros up
    /// to `len` bytes in total.
    Inline {
        head: [u8; 32],
        head_len: u8,
        len: u32,
    },
    /// Bytes `offset .. offset + len` of the pseudo-random byte stream `stream`
    /// (see [`pattern_byte`]): lets a receiver verify a bulk stream without storing it.
    Pattern { stream: u64, offset: u64, len: u32 },
    /// Real message bytes (DNS, DHCP, user data).
    Bytes(Arc<[u8]>),
}

impl Payload {
    pub fn empty() -> Self {
        Payload::Inline {
            head: [0; 32],
            head_len: 0,
            len: 0,
        }
    }

    pub fn zeros(len: u32) -> Self {
        Payload::Inline {
            head: [0; 32],
            head_len: 0,
            len,
        }
    }

    /// `head` followed by zeros up to `len` bytes (at least `head.len()`; at most 32 head bytes are kept).
    pub fn with_head(head: &[u8], len: u32) -> Self {
        let n = head.len().min(32);
        let mut h = [0u8; 32];
        h[..n].copy_from_slice(&head[..n]);
        Payload::Inline {
            head: h,
            head_len: n as u8,
            len: len.max(n as u32),
        }
    }

    pub fn bytes(data: &[u8]) -> Self {
        Payload::Bytes(Arc::from(data))
    }

    pub fn len(&self) -> usize {
        match self {
            Payload::Inline { len, .. } => *len as usize,
            Payload::Pattern { len, .. } => *len as usize,
            Payload::Bytes(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first bytes of the payload (the inline head, or up to 32 real bytes).
    pub fn head(&self) -> &[u8] {
        match self {
            Payload::Inline { head, head_len, .. } => &head[..*head_len as usize],
            Payload::Pattern { .. } => &[],
            Payload::Bytes(b) => &b[..b.len().min(32)],
        }
    }

    /// Appends the payload's bytes to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Inline {
                head,
                head_len,
                len,
            } => {
                let h = *head_len as usize;
                out.extend_from_slice(&head[..h]);
                out.resize(out.len() + (*len as usize).saturating_sub(h), 0);
            }
            Payload::Pattern {
                stream,
                offset,
                len,
            } => {
                out.extend((0..*len as u64).map(|i| pattern_byte(*stream, offset.wrapping_add(i))))
            }
            Payload::Bytes(b) => out.extend_from_slice(b),
        }
    }
}

/// Byte `pos` of the pseudo-random stream `stream`: a cheap, fixed mixing function, so that
/// sender and receiver agree without sharing state.
pub fn pattern_byte(stream: u64, pos: u64) -> u8 {
    let mut x = pos.wrapping_add(stream.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    x ^= x >> 29;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 32;
    x as u8
}

/// ICMP destination unreachable codes (RFC 792).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnreachableCode {
    Net,
    Host,
    Protocol,
    Port,
    FragmentationNeeded,
    AdminProhibited,
}

impl UnreachableCode {
    pub fn code(self) -> u8 {
        match self {
            UnreachableCode::Net => 0,
            UnreachableCode::Host => 1,
            UnreachableCode::Protocol => 2,
            UnreachableCode::Port => 3,
            UnreachableCode::FragmentationNeeded => 4,
            UnreachableCode::AdminProhibited => 13,
        }
    }
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => UnreachableCode::Net,
            1 => UnreachableCode::Host,
            2 => UnreachableCode::Protocol,
            3 => UnreachableCode::Port,
            4 => UnreachableCode::FragmentationNeeded,
            13 => UnreachableCode::AdminProhibited,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            UnreachableCode::Net => "net_unreachable",
            UnreachableCode::Host => "host_unreachable",
            UnreachableCode::Protocol => "protocol_unreachable",
            UnreachableCode::Port => "port_unreachable",
            UnreachableCode::FragmentationNeeded => "fragmentation_needed",
            UnreachableCode::AdminProhibited => "admin_prohibited",
        }
    }
}

/// ICMP time exceeded codes (RFC 792).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeExceededCode {
    TtlInTransit,
    FragmentReassembly,
}

/// The start of the datagram an ICMP error is about: its IP header and the first 8 bytes
/// of its payload (RFC 792), enough for the sender to find the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quote {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    pub tos: u8,
    pub ident: u16,
    pub total_len: u16,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    pub fragment_offset: u16,
    pub data: [u8; 8],
    /// How many of `data` are present (fewer when the payload was shorter).
    pub data_len: u8,
}

impl Quote {
    /// Source and destination ports of the quoted datagram (TCP and UDP put them first).
    pub fn ports(&self) -> (u16, u16) {
        if self.data_len >= 4 {
            (
                u16::from_be_bytes([self.data[0], self.data[1]]),
                u16::from_be_bytes([self.data[2], self.data[3]]),
            )
        } else {
            (0, 0)
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum IcmpMessage {
    EchoRequest {
        ident: u16,
        seq: u16,
        payload: Payload,
    },
    EchoReply {
        ident: u16,
        seq: u16,
        payload: Payload,
    },
    DestUnreachable {
        code: UnreachableCode,
        /// Next-hop MTU for `FragmentationNeeded` (RFC 1191), else 0.
        next_hop_mtu: u16,
        quote: Quote,
    },
    TimeExceeded {
        code: TimeExceededCode,
        quote: Quote,
    },
}

impl IcmpMessage {
    pub fn len(&self) -> usize {
        ICMP_HEADER_LEN
            + match self {
                IcmpMessage::EchoRequest { payload, .. }
                | IcmpMessage::EchoReply { payload, .. } => payload.len(),
                IcmpMessage::DestUnreachable { quote, .. }
                | IcmpMessage::TimeExceeded { quote, .. } => {
                    IPV4_HEADER_LEN + quote.data_len as usize
                }
            }
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            IcmpMessage::DestUnreachable { .. } | IcmpMessage::TimeExceeded { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecn_codepoints_are_the_low_two_tos_bits() {
        for (tos, e) in [
            (0x00, Ecn::NotEct),
            (0x01, Ecn::Ect1),
            (0x02, Ecn::Ect0),
            (0x03, Ecn::Ce),
            (0xb8 | 0x02, Ecn::Ect0),
        ] {
            assert_eq!(Ecn::of_tos(tos), e);
            assert_eq!(e.bits(), tos & 3);
        }
    }

    #[test]
    fn lengths_add_up() {
        let p = Ipv4Packet {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            ttl: 64,
            tos: 0,
            protocol: ip_proto::ICMP,
            ident: 1,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
            corrupted: false,
            body: IpBody::Icmp(IcmpMessage::EchoRequest {
                ident: 1,
                seq: 1,
                payload: Payload::zeros(56),
            }),
        };
        assert_eq!(p.total_len(), 84);
        let f = Frame {
            src: MacAddr::ZERO,
            dst: MacAddr::BROADCAST,
            body: FrameBody::Ipv4(p),
        };
        assert_eq!(f.len(), 98);
        assert_eq!(f.wire_len(), 98);
    }

    #[test]
    fn payload_writes_its_declared_length() {
        for p in [
            Payload::with_head(&[1, 2, 3], 10),
            Payload::Pattern {
                stream: 9,
                offset: 100,
                len: 7,
            },
            Payload::bytes(&[5; 12]),
            Payload::empty(),
        ] {
            let mut v = Vec::new();
            p.write_to(&mut v);
            assert_eq!(v.len(), p.len());
        }
    }
}

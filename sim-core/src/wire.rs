//! Real bytes for the packet model: Ethernet II frames carrying ARP or IPv4 (ICMP, transport
//! segments, fragments), encoded and decoded.
//!
//! Owns: the byte encoding of a [`Frame`] ([`encode_frame`]), its inverse ([`decode_frame`]),
//! the Internet checksums (IPv4 header, ICMP, and the RFC 768 / RFC 9293 pseudo-header checksum
//! of transport segments), the RFC 792 quote of a datagram ([`quote_of`]) and the bit flip that
//! makes a `corrupted` packet fail its checksum. Header layouts and checksum arithmetic come
//! from `etherparse`; this module only maps the model onto them.
//!
//! Does not own: the model types (`packet`) or any simulation behaviour. The simulator never
//! reads these bytes to make decisions; they exist for captures (`capture`), tests and tools.
//!
//! Encoding rules:
//! - No Ethernet padding, no FCS: the encoding of a frame is exactly `frame.len()` bytes.
//! - IPv4 headers have no options (IHL 5) and a correct header checksum.
//! - A transport packet is its header bytes then its payload; its checksum field (if any) is
//!   filled in from the pseudo-header of the packet that carries it.
//! - A fragment is bytes `[offset, offset + len)` of the encoding of the original datagram's
//!   payload (`whole`), encoded with the fragment's own src/dst/protocol, which equal the
//!   original's.
//! - A `corrupted` packet gets one flipped bit after all checksums are computed (see
//!   [`ip_body_bytes`]); lengths and the IP header are never damaged.
//!
//! Decoding is the inverse for everything `encode_frame` produces, with these limits: IPv4
//! options, ICMP types other than echo/unreachable/time-exceeded, and ICMP error quotes with
//! more than 8 data bytes are rejected; payloads come back as [`Payload::Bytes`]; and a
//! fragment decodes standing alone (see [`decode_frame`]). Decoding never panics.

use std::net::Ipv4Addr;
use std::sync::Arc;

use etherparse::checksum::Sum16BitWords;
use etherparse::icmpv4::{DestUnreachableHeader, TimeExceededCode as EtherTimeExceeded};
use etherparse::{
    ArpEthIpv4Packet, ArpHardwareId, ArpOperation, ArpPacketSlice, EtherType, Ethernet2Header,
    IcmpEchoHeader, Icmpv4Header, Icmpv4Slice, Icmpv4Type, IpDscp, IpEcn, IpFragOffset, IpNumber,
    Ipv4Header, Ipv4HeaderSlice,
};
use thiserror::Error;

use crate::packet::{
    ip_proto, ArpOp, ArpPacket, ChecksumField, FragmentData, Frame, FrameBody, HeaderBytes,
    IcmpMessage, IpBody, Ipv4Packet, MacAddr, Payload, Quote, TimeExceededCode, TransportPacket,
    UnreachableCode, ARP_LEN, ETHERNET_HEADER_LEN, ICMP_HEADER_LEN, IPV4_HEADER_LEN,
};

/// Why a byte string is not a frame [`decode_frame`] understands.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("{layer}: truncated: need {needed} bytes, have {available}")]
    Truncated {
        layer: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("unsupported EtherType {0:#06x}")]
    UnsupportedEtherType(u16),
    #[error("unsupported ARP packet: {0}")]
    UnsupportedArp(&'static str),
    #[error("IPv4: bad version {0}")]
    BadIpVersion(u8),
    #[error("IPv4: bad header length (IHL {0})")]
    BadIhl(u8),
    #[error("IPv4: header options are not supported (IHL {0})")]
    Ipv4Options(u8),
    #[error("IPv4: total length {total_len} is shorter than the header")]
    BadTotalLength { total_len: u16 },
    #[error("ICMP: unsupported type {icmp_type} code {code}")]
    UnsupportedIcmp { icmp_type: u8, code: u8 },
    #[error("ICMP: bad quoted datagram: {0}")]
    BadQuote(&'static str),
    #[error("TCP: bad data offset {0}")]
    BadTcpDataOffset(u8),
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// Appends the bytes of `frame` to `out`: Ethernet II header, then ARP or IPv4. No padding,
/// no FCS, so exactly `frame.len()` bytes are appended (for a well-formed model: see below).
///
/// The model is trusted, not validated: a checksum offset that does not fit in its header is
/// ignored, a fragment range beyond its `whole` is zero-filled, and an IPv4 packet longer than
/// 65535 bytes gets a saturated total length (the IP layer never builds one).
pub fn encode_frame(frame: &Frame, out: &mut Vec<u8>) {
    let ether_type = match frame.body {
        FrameBody::Arp(_) => EtherType::ARP,
        FrameBody::Ipv4(_) => EtherType::IPV4,
    };
    let eth = Ethernet2Header {
        source: frame.src.0,
        destination: frame.dst.0,
        ether_type,
    };
    out.extend_from_slice(&eth.to_bytes());
    match &frame.body {
        FrameBody::Arp(a) => out.extend_from_slice(&arp_bytes(a)),
        FrameBody::Ipv4(p) => encode_ipv4(p, out),
    }
}

/// The bytes of the IP payload of `pkt` (what follows its IPv4 header on the wire), including
/// the bit flip of a `corrupted` packet.
///
/// The flip: the lowest bit of the last byte of the IP payload when the transport/ICMP payload
/// (echo data, quoted data bytes, transport payload, fragment data) is non-empty; otherwise one
/// bit of the transport/ICMP checksum field (never turning a UDP checksum into 0, "no
/// checksum"). A transport packet without a checksum field and without payload is left
/// intact, since nothing could detect the damage anyway.
pub fn ip_body_bytes(pkt: &Ipv4Packet) -> Vec<u8> {
    let mut out = Vec::with_capacity(pkt.body.len());
    encode_ip_body(pkt, &mut out);
    out
}

/// The RFC 792 quote of `pkt` for an ICMP error about it: its header fields and the first
/// `min(8, payload length)` bytes of [`ip_body_bytes`] (for a fragment, the fragment's own
/// bytes; for a corrupted packet, the bytes as damaged).
pub fn quote_of(pkt: &Ipv4Packet) -> Quote {
    let body = ip_body_bytes(pkt);
    let n = body.len().min(8);
    let mut data = [0u8; 8];
    data[..n].copy_from_slice(&body[..n]);
    Quote {
        src: pkt.src,
        dst: pkt.dst,
        protocol: pkt.protocol,
        ttl: pkt.ttl,
        tos: pkt.tos,
        ident: pkt.ident,
        total_len: u16::try_from(pkt.total_len()).unwrap_or(u16::MAX),
        dont_fragment: pkt.dont_fragment,
        more_fragments: pkt.more_fragments,
        fragment_offset: pkt.fragment_offset,
        data,
        data_len: n as u8,
    }
}

fn arp_bytes(a: &ArpPacket) -> [u8; ARP_LEN] {
    ArpEthIpv4Packet {
        operation: match a.op {
            ArpOp::Request => ArpOperation::REQUEST,
            ArpOp::Reply => ArpOperation::REPLY,
        },
        sender_mac: a.sender_mac.0,
        sender_ipv4: a.sender_ip.octets(),
        target_mac: a.target_mac.0,
        target_ipv4: a.target_ip.octets(),
    }
    .to_bytes()
}

/// The IPv4 header fields shared by packets and quotes.
struct IpFields {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    ttl: u8,
    tos: u8,
    ident: u16,
    dont_fragment: bool,
    more_fragments: bool,
    /// In bytes; written in 8-byte units.
    fragment_offset: u16,
    total_len: u16,
}

/// A 20-byte IPv4 header with a correct header checksum.
fn ipv4_header_bytes(f: &IpFields) -> [u8; IPV4_HEADER_LEN] {
    let mut h = Ipv4Header {
        dscp: IpDscp::try_new(f.tos >> 2).unwrap_or_default(),
        ecn: IpEcn::try_new(f.tos & 3).unwrap_or(IpEcn::ZERO),
        total_len: f.total_len,
        identification: f.ident,
        dont_fragment: f.dont_fragment,
        more_fragments: f.more_fragments,
        fragment_offset: IpFragOffset::try_new(f.fragment_offset / 8).unwrap_or_default(),
        time_to_live: f.ttl,
        protocol: IpNumber(f.protocol),
        header_checksum: 0,
        source: f.src.octets(),
        destination: f.dst.octets(),
        options: Default::default(),
    };
    h.header_checksum = h.calc_header_checksum();
    let mut bytes = [0u8; IPV4_HEADER_LEN];
    for (b, v) in bytes.iter_mut().zip(h.to_bytes()) {
        *b = v;
    }
    bytes
}

fn encode_ipv4(p: &Ipv4Packet, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; IPV4_HEADER_LEN]);
    encode_ip_body(p, out);
    let total_len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
    let header = ipv4_header_bytes(&IpFields {
        src: p.src,
        dst: p.dst,
        protocol: p.protocol,
        ttl: p.ttl,
        tos: p.tos,
        ident: p.ident,
        dont_fragment: p.dont_fragment,
        more_fragments: p.more_fragments,
        fragment_offset: p.fragment_offset,
        total_len,
    });
    out[start..start + IPV4_HEADER_LEN].copy_from_slice(&header);
}

/// Where the single-bit error of a corrupted packet goes, relative to the start of the IP body.
#[derive(Clone, Copy, Debug)]
enum FlipAt {
    /// Flip the lowest bit of this byte (the last payload byte).
    Byte(usize),
    /// Flip a bit of the big-endian checksum at this position; `no_zero` keeps a UDP checksum
    /// from becoming 0 ("no checksum").
    Checksum {
        pos: usize,
        no_zero: bool,
    },
    Nowhere,
}

fn encode_ip_body(p: &Ipv4Packet, out: &mut Vec<u8>) {
    let start = out.len();
    let flip = encode_body(&p.body, p.src, p.dst, p.protocol, out);
    if p.corrupted {
        apply_flip(&mut out[start..], flip);
    }
}

fn apply_flip(body: &mut [u8], flip: FlipAt) {
    match flip {
        FlipAt::Byte(i) => {
            if let Some(b) = body.get_mut(i) {
                *b ^= 1;
            }
        }
        FlipAt::Checksum { pos, no_zero } => {
            if let Some(field) = body.get_mut(pos..pos + 2) {
                let old = u16::from_be_bytes([field[0], field[1]]);
                let mut new = old ^ 1;
                if no_zero && new == 0 {
                    new = old ^ 2;
                }
                field.copy_from_slice(&new.to_be_bytes());
            }
        }
        FlipAt::Nowhere => {}
    }
}

/// Appends the encoding of `body` as carried by a packet with these addresses and protocol.
fn encode_body(
    body: &IpBody,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    out: &mut Vec<u8>,
) -> FlipAt {
    match body {
        IpBody::Icmp(m) => encode_icmp(m, out),
        IpBody::Transport(t) => encode_transport(t, src, dst, protocol, out),
        IpBody::Fragment(f) => encode_fragment(f, src, dst, protocol, out),
    }
}

fn encode_fragment(
    f: &FragmentData,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    out: &mut Vec<u8>,
) -> FlipAt {
    // Encode the whole original payload in place, then keep only this fragment's range.
    let s = out.len();
    encode_body(&f.whole, src, dst, protocol, out);
    let whole_len = out.len() - s;
    let from = (f.offset as usize).min(whole_len);
    let to = from.saturating_add(f.len as usize).min(whole_len);
    out.copy_within(s + from..s + to, s);
    out.truncate(s + (to - from));
    out.resize(s + f.len as usize, 0);
    match f.len {
        0 => FlipAt::Nowhere,
        n => FlipAt::Byte(n as usize - 1),
    }
}

fn encode_transport(
    t: &TransportPacket,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    out: &mut Vec<u8>,
) -> FlipAt {
    let s = out.len();
    out.extend_from_slice(t.header.as_slice());
    t.payload.write_to(out);
    let mut flip = if t.payload.is_empty() {
        FlipAt::Nowhere
    } else {
        FlipAt::Byte(out.len() - s - 1)
    };
    if let ChecksumField::At {
        offset,
        zero_as_ones,
    } = t.checksum
    {
        let o = offset as usize;
        if o + 2 <= t.header.len() {
            out[s + o] = 0;
            out[s + o + 1] = 0;
            let sum = pseudo_header_sum(src, dst, protocol, out.len() - s).add_slice(&out[s..]);
            let c = if zero_as_ones {
                sum.to_ones_complement_with_no_zero()
            } else {
                sum.ones_complement()
            };
            // `Sum16BitWords` works in native byte order: its result's native bytes are the
            // on-wire bytes.
            out[s + o..s + o + 2].copy_from_slice(&c.to_ne_bytes());
            if t.payload.is_empty() {
                flip = FlipAt::Checksum {
                    pos: o,
                    no_zero: zero_as_ones,
                };
            }
        }
    }
    flip
}

/// The RFC 768 / RFC 9293 pseudo-header: source, destination, zero, protocol, length.
fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: usize) -> Sum16BitWords {
    let l = (len as u16).to_be_bytes();
    Sum16BitWords::new()
        .add_4bytes(src.octets())
        .add_4bytes(dst.octets())
        .add_4bytes([0, protocol, l[0], l[1]])
}

fn encode_icmp(m: &IcmpMessage, out: &mut Vec<u8>) -> FlipAt {
    let s = out.len();
    out.extend_from_slice(&[0; ICMP_HEADER_LEN]);
    let icmp_type = match m {
        IcmpMessage::EchoRequest {
            ident,
            seq,
            payload,
        } => {
            payload.write_to(out);
            Icmpv4Type::EchoRequest(IcmpEchoHeader {
                id: *ident,
                seq: *seq,
            })
        }
        IcmpMessage::EchoReply {
            ident,
            seq,
            payload,
        } => {
            payload.write_to(out);
            Icmpv4Type::EchoReply(IcmpEchoHeader {
                id: *ident,
                seq: *seq,
            })
        }
        IcmpMessage::DestUnreachable {
            code,
            next_hop_mtu,
            quote,
        } => {
            write_quote(quote, out);
            // `from_values` keeps the MTU only for code 4 (fragmentation needed).
            match DestUnreachableHeader::from_values(code.code(), *next_hop_mtu) {
                Some(h) => Icmpv4Type::DestinationUnreachable(h),
                None => Icmpv4Type::Unknown {
                    type_u8: etherparse::icmpv4::TYPE_DEST_UNREACH,
                    code_u8: code.code(),
                    bytes5to8: [0; 4],
                },
            }
        }
        IcmpMessage::TimeExceeded { code, quote } => {
            write_quote(quote, out);
            Icmpv4Type::TimeExceeded(match code {
                TimeExceededCode::TtlInTransit => EtherTimeExceeded::TtlExceededInTransit,
                TimeExceededCode::FragmentReassembly => {
                    EtherTimeExceeded::FragmentReassemblyTimeExceeded
                }
            })
        }
    };
    let header = Icmpv4Header::with_checksum(icmp_type, &out[s + ICMP_HEADER_LEN..]);
    for (b, v) in out[s..s + ICMP_HEADER_LEN]
        .iter_mut()
        .zip(header.to_bytes())
    {
        *b = v;
    }
    // The ICMP "payload" for the corruption rule: echo data, or the quoted data bytes (the
    // quoted IP header is not payload).
    let payload_len = match m {
        IcmpMessage::EchoRequest { payload, .. } | IcmpMessage::EchoReply { payload, .. } => {
            payload.len()
        }
        IcmpMessage::DestUnreachable { quote, .. } | IcmpMessage::TimeExceeded { quote, .. } => {
            quote_data_len(quote)
        }
    };
    if payload_len > 0 {
        FlipAt::Byte(out.len() - s - 1)
    } else {
        FlipAt::Checksum {
            pos: 2,
            no_zero: false,
        }
    }
}

fn quote_data_len(q: &Quote) -> usize {
    (q.data_len as usize).min(q.data.len())
}

fn write_quote(q: &Quote, out: &mut Vec<u8>) {
    out.extend_from_slice(&ipv4_header_bytes(&IpFields {
        src: q.src,
        dst: q.dst,
        protocol: q.protocol,
        ttl: q.ttl,
        tos: q.tos,
        ident: q.ident,
        dont_fragment: q.dont_fragment,
        more_fragments: q.more_fragments,
        fragment_offset: q.fragment_offset,
        total_len: q.total_len,
    }));
    out.extend_from_slice(&q.data[..quote_data_len(q)]);
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/// Parses the bytes of an Ethernet II frame back into the model. Never panics.
///
/// - Bytes after the IPv4 total length or after the 28 ARP bytes (Ethernet padding) are
///   ignored.
/// - Payloads come back as [`Payload::Bytes`]. A transport packet gets its header bytes with
///   the checksum field zeroed (the model keeps it zero) and a checksum descriptor: UDP
///   (protocol 17, 8-byte header) `At { offset: 6, zero_as_ones: true }`, or
///   [`ChecksumField::None`] when the UDP checksum on the wire is 0 ("no checksum"); TCP
///   (protocol 6, header of data offset × 4 bytes) `At { offset: 16, zero_as_ones: false }`;
///   other protocols an empty header, everything as payload, and no checksum.
/// - A fragment (MF set or offset ≠ 0) decodes *standing alone*: its `whole` is an
///   [`IpBody::Transport`] with an empty header, no checksum and just this fragment's bytes as
///   payload, with `FragmentData { offset: 0, len }` (the packet's `fragment_offset` keeps the
///   real offset). Decoded fragments therefore cannot be reassembled into the model of the
///   original datagram, and their transport checksum cannot be verified.
/// - A bad IPv4 header, ICMP or transport checksum sets `corrupted = true`; it is not an error.
///   Truncation, inconsistent lengths, wrong versions and unsupported contents are errors.
pub fn decode_frame(bytes: &[u8]) -> Result<Frame, WireError> {
    let (eth, rest) = Ethernet2Header::from_slice(bytes).map_err(|_| WireError::Truncated {
        layer: "Ethernet",
        needed: ETHERNET_HEADER_LEN,
        available: bytes.len(),
    })?;
    let body = if eth.ether_type == EtherType::ARP {
        FrameBody::Arp(decode_arp(rest)?)
    } else if eth.ether_type == EtherType::IPV4 {
        FrameBody::Ipv4(decode_ipv4(rest)?)
    } else {
        return Err(WireError::UnsupportedEtherType(eth.ether_type.0));
    };
    Ok(Frame {
        src: MacAddr(eth.source),
        dst: MacAddr(eth.destination),
        body,
    })
}

fn decode_arp(bytes: &[u8]) -> Result<ArpPacket, WireError> {
    let truncated = || WireError::Truncated {
        layer: "ARP",
        needed: ARP_LEN,
        available: bytes.len(),
    };
    if bytes.len() < ARP_LEN {
        return Err(truncated());
    }
    let arp = ArpPacketSlice::from_slice(bytes).map_err(|_| truncated())?;
    if arp.hw_addr_type() != ArpHardwareId::ETHERNET || arp.hw_addr_size() != 6 {
        return Err(WireError::UnsupportedArp("hardware type is not Ethernet"));
    }
    if arp.proto_addr_type() != EtherType::IPV4 || arp.proto_addr_size() != 4 {
        return Err(WireError::UnsupportedArp("protocol type is not IPv4"));
    }
    let op = match arp.operation() {
        ArpOperation::REQUEST => ArpOp::Request,
        ArpOperation::REPLY => ArpOp::Reply,
        _ => {
            return Err(WireError::UnsupportedArp(
                "operation is not request or reply",
            ))
        }
    };
    let mac = |s: &[u8]| <[u8; 6]>::try_from(s).map(MacAddr).map_err(|_| truncated());
    let ip = |s: &[u8]| {
        <[u8; 4]>::try_from(s)
            .map(Ipv4Addr::from)
            .map_err(|_| truncated())
    };
    Ok(ArpPacket {
        op,
        sender_mac: mac(arp.sender_hw_addr())?,
        sender_ip: ip(arp.sender_protocol_addr())?,
        target_mac: mac(arp.target_hw_addr())?,
        target_ip: ip(arp.target_protocol_addr())?,
    })
}

/// Checks version and IHL of an IPv4 header at the start of `bytes` and parses it.
fn ipv4_header_slice<'a>(
    bytes: &'a [u8],
    layer: &'static str,
) -> Result<Ipv4HeaderSlice<'a>, WireError> {
    if bytes.len() < IPV4_HEADER_LEN {
        return Err(WireError::Truncated {
            layer,
            needed: IPV4_HEADER_LEN,
            available: bytes.len(),
        });
    }
    let (version, ihl) = (bytes[0] >> 4, bytes[0] & 0xf);
    if version != 4 {
        return Err(WireError::BadIpVersion(version));
    }
    if ihl < 5 {
        return Err(WireError::BadIhl(ihl));
    }
    if ihl > 5 {
        return Err(WireError::Ipv4Options(ihl));
    }
    Ipv4HeaderSlice::from_slice(&bytes[..IPV4_HEADER_LEN]).map_err(|_| WireError::Truncated {
        layer,
        needed: IPV4_HEADER_LEN,
        available: bytes.len(),
    })
}

fn decode_ipv4(bytes: &[u8]) -> Result<Ipv4Packet, WireError> {
    let h = ipv4_header_slice(bytes, "IPv4")?;
    let total_len = h.total_len();
    if (total_len as usize) < IPV4_HEADER_LEN {
        return Err(WireError::BadTotalLength { total_len });
    }
    if total_len as usize > bytes.len() {
        return Err(WireError::Truncated {
            layer: "IPv4",
            needed: total_len as usize,
            available: bytes.len(),
        });
    }
    let header_ok = checksum_verifies(Sum16BitWords::new().add_slice(h.slice()));
    let data = &bytes[IPV4_HEADER_LEN..total_len as usize];
    let (src, dst, protocol) = (h.source_addr(), h.destination_addr(), h.protocol().0);
    let fragment_offset = h.fragments_offset().byte_offset();
    let more_fragments = h.more_fragments();

    let (body, body_ok) = if more_fragments || fragment_offset != 0 {
        let whole = IpBody::Transport(TransportPacket {
            header: header_bytes(&[])?,
            payload: Payload::bytes(data),
            checksum: ChecksumField::None,
        });
        let fragment = FragmentData {
            whole: Arc::new(whole),
            offset: 0,
            len: data.len() as u32,
        };
        (IpBody::Fragment(fragment), true)
    } else if protocol == ip_proto::ICMP {
        let (m, ok) = decode_icmp(data)?;
        (IpBody::Icmp(m), ok)
    } else {
        let (t, ok) = decode_transport(data, src, dst, protocol)?;
        (IpBody::Transport(t), ok)
    };

    Ok(Ipv4Packet {
        src,
        dst,
        ttl: h.ttl(),
        tos: (h.dcp().value() << 2) | h.ecn().value(),
        protocol,
        ident: h.identification(),
        dont_fragment: h.dont_fragment(),
        more_fragments,
        fragment_offset,
        corrupted: !header_ok || !body_ok,
        body,
    })
}

/// A checksum verifies when the ones' complement sum over the data, checksum included, is
/// all ones.
fn checksum_verifies(sum: Sum16BitWords) -> bool {
    sum.ones_complement() == 0
}

fn header_bytes(bytes: &[u8]) -> Result<HeaderBytes, WireError> {
    // Callers pass at most 60 bytes (TCP's maximum); the error is a formality.
    HeaderBytes::new(bytes).ok_or(WireError::BadTcpDataOffset((bytes.len() / 4) as u8))
}

fn decode_transport(
    data: &[u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
) -> Result<(TransportPacket, bool), WireError> {
    let (header_len, checksum) = match protocol {
        ip_proto::UDP => {
            if data.len() < 8 {
                return Err(WireError::Truncated {
                    layer: "UDP",
                    needed: 8,
                    available: data.len(),
                });
            }
            // A zero UDP checksum means "none" (RFC 768): keep it that way.
            let checksum = if data[6] == 0 && data[7] == 0 {
                ChecksumField::None
            } else {
                ChecksumField::At {
                    offset: 6,
                    zero_as_ones: true,
                }
            };
            (8, checksum)
        }
        ip_proto::TCP => {
            if data.len() < 20 {
                return Err(WireError::Truncated {
                    layer: "TCP",
                    needed: 20,
                    available: data.len(),
                });
            }
            let data_offset = data[12] >> 4;
            if data_offset < 5 {
                return Err(WireError::BadTcpDataOffset(data_offset));
            }
            let header_len = data_offset as usize * 4;
            if header_len > data.len() {
                return Err(WireError::Truncated {
                    layer: "TCP",
                    needed: header_len,
                    available: data.len(),
                });
            }
            let checksum = ChecksumField::At {
                offset: 16,
                zero_as_ones: false,
            };
            (header_len, checksum)
        }
        _ => (0, ChecksumField::None),
    };
    let ok = match checksum {
        ChecksumField::At { .. } => {
            checksum_verifies(pseudo_header_sum(src, dst, protocol, data.len()).add_slice(data))
        }
        ChecksumField::None => true,
    };
    let mut header = header_bytes(&data[..header_len])?;
    if let ChecksumField::At { offset, .. } = checksum {
        let o = offset as usize;
        if let Some(field) = header.as_mut_slice().get_mut(o..o + 2) {
            field.fill(0);
        }
    }
    let t = TransportPacket {
        header,
        payload: Payload::bytes(&data[header_len..]),
        checksum,
    };
    Ok((t, ok))
}

fn decode_icmp(data: &[u8]) -> Result<(IcmpMessage, bool), WireError> {
    let (Some(&icmp_type), Some(&code)) = (data.first(), data.get(1)) else {
        return Err(WireError::Truncated {
            layer: "ICMP",
            needed: ICMP_HEADER_LEN,
            available: data.len(),
        });
    };
    if data.len() < ICMP_HEADER_LEN {
        return Err(WireError::Truncated {
            layer: "ICMP",
            needed: ICMP_HEADER_LEN,
            available: data.len(),
        });
    }
    let unsupported = WireError::UnsupportedIcmp { icmp_type, code };
    // etherparse refuses timestamp messages of the wrong length; we support none of them.
    let icmp = Icmpv4Slice::from_slice(data).map_err(|_| unsupported.clone())?;
    if icmp.header_len() != ICMP_HEADER_LEN {
        return Err(unsupported);
    }
    let ok = checksum_verifies(Sum16BitWords::new().add_slice(data));
    let rest = icmp.payload();
    let m = match icmp.icmp_type() {
        Icmpv4Type::EchoRequest(h) => IcmpMessage::EchoRequest {
            ident: h.id,
            seq: h.seq,
            payload: Payload::bytes(rest),
        },
        Icmpv4Type::EchoReply(h) => IcmpMessage::EchoReply {
            ident: h.id,
            seq: h.seq,
            payload: Payload::bytes(rest),
        },
        Icmpv4Type::DestinationUnreachable(h) => {
            let code = UnreachableCode::from_code(h.code_u8()).ok_or(unsupported)?;
            let next_hop_mtu = match h {
                DestUnreachableHeader::FragmentationNeeded { next_hop_mtu } => next_hop_mtu,
                _ => 0,
            };
            IcmpMessage::DestUnreachable {
                code,
                next_hop_mtu,
                quote: decode_quote(rest)?,
            }
        }
        Icmpv4Type::TimeExceeded(c) => IcmpMessage::TimeExceeded {
            code: match c {
                EtherTimeExceeded::TtlExceededInTransit => TimeExceededCode::TtlInTransit,
                EtherTimeExceeded::FragmentReassemblyTimeExceeded => {
                    TimeExceededCode::FragmentReassembly
                }
            },
            quote: decode_quote(rest)?,
        },
        _ => return Err(unsupported),
    };
    Ok((m, ok))
}

fn decode_quote(bytes: &[u8]) -> Result<Quote, WireError> {
    let h = ipv4_header_slice(bytes, "ICMP quote").map_err(|e| match e {
        WireError::Truncated { .. } => WireError::BadQuote("shorter than an IPv4 header"),
        WireError::BadIpVersion(_) => WireError::BadQuote("not IPv4"),
        WireError::Ipv4Options(_) => WireError::BadQuote("quoted header has options"),
        _ => WireError::BadQuote("bad quoted IPv4 header"),
    })?;
    let rest = &bytes[IPV4_HEADER_LEN..];
    let mut data = [0u8; 8];
    if rest.len() > data.len() {
        return Err(WireError::BadQuote("more than 8 bytes of quoted data"));
    }
    data[..rest.len()].copy_from_slice(rest);
    Ok(Quote {
        src: h.source_addr(),
        dst: h.destination_addr(),
        protocol: h.protocol().0,
        ttl: h.ttl(),
        tos: (h.dcp().value() << 2) | h.ecn().value(),
        ident: h.identification(),
        total_len: h.total_len(),
        dont_fragment: h.dont_fragment(),
        more_fragments: h.more_fragments(),
        fragment_offset: h.fragments_offset().byte_offset(),
        data,
        data_len: rest.len() as u8,
    })
}

// ---------------------------------------------------------------------------------------------
// Test fixtures (shared with `capture`'s tests)
// ---------------------------------------------------------------------------------------------

/// Sample frames of every kind the encoder handles.
#[cfg(test)]
pub(crate) mod samples {
    use super::*;
    use crate::packet::ip_proto;

    pub const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
    pub const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);
    pub const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    pub const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);

    pub fn frame(body: FrameBody) -> Frame {
        Frame {
            src: MAC_A,
            dst: MAC_B,
            body,
        }
    }

    pub fn ipv4(protocol: u8, body: IpBody) -> Ipv4Packet {
        Ipv4Packet {
            src: IP_A,
            dst: IP_B,
            ttl: 64,
            tos: 0,
            protocol,
            ident: 0x1234,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
            corrupted: false,
            body,
        }
    }

    pub fn arp(op: ArpOp) -> Frame {
        let a = ArpPacket {
            op,
            sender_mac: MAC_A,
            sender_ip: IP_A,
            target_mac: if op == ArpOp::Request {
                MacAddr::ZERO
            } else {
                MAC_B
            },
            target_ip: Ipv4Addr::new(10, 0, 0, 2),
        };
        Frame {
            src: MAC_A,
            dst: if op == ArpOp::Request {
                MacAddr::BROADCAST
            } else {
                MAC_B
            },
            body: FrameBody::Arp(a),
        }
    }

    pub fn echo_request() -> Ipv4Packet {
        ipv4(
            ip_proto::ICMP,
            IpBody::Icmp(IcmpMessage::EchoRequest {
                ident: 0x4242,
                seq: 7,
                payload: Payload::with_head(&[0xde, 0xad, 0xbe, 0xef, 1, 2, 3], 56),
            }),
        )
    }

    pub fn echo_reply_empty() -> Ipv4Packet {
        ipv4(
            ip_proto::ICMP,
            IpBody::Icmp(IcmpMessage::EchoReply {
                ident: 0x4242,
                seq: 8,
                payload: Payload::empty(),
            }),
        )
    }

    /// A UDP datagram with a real 8-byte header (checksum left zero) and `payload`.
    pub fn udp_with(sport: u16, dport: u16, payload: Payload) -> TransportPacket {
        let len = (8 + payload.len()) as u16;
        let mut h = [0u8; 8];
        h[0..2].copy_from_slice(&sport.to_be_bytes());
        h[2..4].copy_from_slice(&dport.to_be_bytes());
        h[4..6].copy_from_slice(&len.to_be_bytes());
        TransportPacket {
            header: HeaderBytes::new(&h).unwrap(),
            payload,
            checksum: ChecksumField::At {
                offset: 6,
                zero_as_ones: true,
            },
        }
    }

    pub fn udp(payload_len: u32) -> Ipv4Packet {
        let payload = Payload::Pattern {
            stream: 3,
            offset: 17,
            len: payload_len,
        };
        ipv4(
            ip_proto::UDP,
            IpBody::Transport(udp_with(40000, 9, payload)),
        )
    }

    /// A 20-byte TCP header (data offset 5, ACK|PSH) with a payload.
    pub fn tcp() -> Ipv4Packet {
        let mut h = [0u8; 20];
        h[0..2].copy_from_slice(&443u16.to_be_bytes());
        h[2..4].copy_from_slice(&51000u16.to_be_bytes());
        h[4..8].copy_from_slice(&1000u32.to_be_bytes());
        h[8..12].copy_from_slice(&2000u32.to_be_bytes());
        h[12] = 5 << 4;
        h[13] = 0x18;
        h[14..16].copy_from_slice(&65535u16.to_be_bytes());
        let t = TransportPacket {
            header: HeaderBytes::new(&h).unwrap(),
            payload: Payload::bytes(b"hello, tcp"),
            checksum: ChecksumField::At {
                offset: 16,
                zero_as_ones: false,
            },
        };
        ipv4(ip_proto::TCP, IpBody::Transport(t))
    }

    pub fn unreachable(code: UnreachableCode, next_hop_mtu: u16) -> Ipv4Packet {
        let mut about = udp(100);
        about.ttl = 3;
        let mut p = ipv4(
            ip_proto::ICMP,
            IpBody::Icmp(IcmpMessage::DestUnreachable {
                code,
                next_hop_mtu,
                quote: quote_of(&about),
            }),
        );
        p.src = Ipv4Addr::new(10, 0, 9, 9);
        p.dst = IP_A;
        p
    }

    pub fn time_exceeded(code: TimeExceededCode) -> Ipv4Packet {
        let mut about = echo_request();
        about.ttl = 0;
        let mut p = ipv4(
            ip_proto::ICMP,
            IpBody::Icmp(IcmpMessage::TimeExceeded {
                code,
                quote: quote_of(&about),
            }),
        );
        p.src = Ipv4Addr::new(10, 0, 9, 9);
        p
    }

    /// The unfragmented datagram: a UDP packet with a 3000-byte payload (IP body 3008 bytes).
    pub fn big_udp() -> Ipv4Packet {
        let mut p = udp(3000);
        p.dont_fragment = false;
        p
    }

    /// `big_udp` split into fragments of 1480, 1480 and 48 bytes.
    pub fn fragments() -> Vec<Ipv4Packet> {
        let orig = big_udp();
        let whole = Arc::new(orig.body.clone());
        [(0u32, 1480u32, true), (1480, 1480, true), (2960, 48, false)]
            .into_iter()
            .map(|(offset, len, mf)| Ipv4Packet {
                more_fragments: mf,
                fragment_offset: offset as u16,
                body: IpBody::Fragment(FragmentData {
                    whole: whole.clone(),
                    offset,
                    len,
                }),
                ..orig.clone()
            })
            .collect()
    }

    fn corrupt(mut p: Ipv4Packet) -> Ipv4Packet {
        p.corrupted = true;
        p
    }

    /// Corrupted packets covering each place the flip can go.
    pub fn corrupted() -> Vec<(&'static str, Ipv4Packet)> {
        let mut frag = fragments()[1].clone();
        frag.corrupted = true;
        vec![
            ("corrupted udp", corrupt(udp(64))),
            ("corrupted empty udp", corrupt(udp(0))),
            ("corrupted tcp", corrupt(tcp())),
            ("corrupted echo", corrupt(echo_request())),
            ("corrupted empty echo", corrupt(echo_reply_empty())),
            (
                "corrupted unreachable",
                corrupt(unreachable(UnreachableCode::Port, 0)),
            ),
            ("corrupted fragment", frag),
        ]
    }

    /// Every kind of frame, named.
    pub fn all() -> Vec<(&'static str, Frame)> {
        let mut v = vec![
            ("arp request", arp(ArpOp::Request)),
            ("arp reply", arp(ArpOp::Reply)),
            ("echo request", frame(FrameBody::Ipv4(echo_request()))),
            (
                "empty echo reply",
                frame(FrameBody::Ipv4(echo_reply_empty())),
            ),
            ("udp", frame(FrameBody::Ipv4(udp(200)))),
            ("empty udp", frame(FrameBody::Ipv4(udp(0)))),
            ("tcp", frame(FrameBody::Ipv4(tcp()))),
            (
                "port unreachable",
                frame(FrameBody::Ipv4(unreachable(UnreachableCode::Port, 0))),
            ),
            (
                "host unreachable",
                frame(FrameBody::Ipv4(unreachable(UnreachableCode::Host, 0))),
            ),
            (
                "admin prohibited",
                frame(FrameBody::Ipv4(unreachable(
                    UnreachableCode::AdminProhibited,
                    0,
                ))),
            ),
            (
                "fragmentation needed",
                frame(FrameBody::Ipv4(unreachable(
                    UnreachableCode::FragmentationNeeded,
                    1400,
                ))),
            ),
            (
                "ttl exceeded",
                frame(FrameBody::Ipv4(time_exceeded(
                    TimeExceededCode::TtlInTransit,
                ))),
            ),
            (
                "reassembly exceeded",
                frame(FrameBody::Ipv4(time_exceeded(
                    TimeExceededCode::FragmentReassembly,
                ))),
            ),
        ];
        for (i, f) in fragments().into_iter().enumerate() {
            let name = ["fragment 0", "fragment 1", "fragment 2"][i];
            v.push((name, frame(FrameBody::Ipv4(f))));
        }
        for (name, p) in corrupted() {
            v.push((name, frame(FrameBody::Ipv4(p))));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice, UdpHeader};

    fn encode(f: &Frame) -> Vec<u8> {
        let mut v = Vec::new();
        encode_frame(f, &mut v);
        v
    }

    fn ip_of(f: &Frame) -> &Ipv4Packet {
        match &f.body {
            FrameBody::Ipv4(p) => p,
            FrameBody::Arp(_) => panic!("not IPv4"),
        }
    }

    /// Encode, decode, re-encode: the bytes must survive, and the lengths must match the model.
    fn round_trip(f: &Frame) -> Frame {
        let bytes = encode(f);
        assert_eq!(bytes.len(), f.len(), "encoded length != model length");
        let d = decode_frame(&bytes).unwrap_or_else(|e| panic!("decode failed: {e}"));
        assert_eq!(d.len(), f.len());
        assert_eq!(encode(&d), bytes, "re-encoded bytes differ");
        d
    }

    fn ones_sum_ok(bytes: &[u8]) -> bool {
        checksum_verifies(Sum16BitWords::new().add_slice(bytes))
    }

    /// The IPv4 header of an encoded frame verifies, per etherparse and per our own sum.
    fn check_ip_header(bytes: &[u8]) {
        let ip = &bytes[ETHERNET_HEADER_LEN..];
        let (h, _) = Ipv4Header::from_slice(ip).expect("etherparse parses the IPv4 header");
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert!(ones_sum_ok(&ip[..20]));
        assert_eq!(h.total_len as usize, ip.len());
    }

    #[test]
    fn every_sample_round_trips() {
        for (name, f) in all() {
            let bytes = encode(&f);
            assert_eq!(bytes.len(), f.len(), "{name}");
            let d = decode_frame(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            // A corrupted packet with a flipped payload bit cannot re-encode to the same bytes
            // (the encoder would checksum the damaged payload, then damage it again).
            let flipped_payload = matches!(&f.body, FrameBody::Ipv4(p) if p.corrupted);
            if !flipped_payload {
                assert_eq!(encode(&d), bytes, "{name}");
            }
            if let FrameBody::Ipv4(p) = &f.body {
                check_ip_header(&bytes);
                // A corrupted packet's flip is visible as `corrupted`, except in fragments,
                // whose transport checksum cannot be checked alone.
                if !p.is_fragment() {
                    assert_eq!(ip_of(&d).corrupted, p.corrupted, "{name}");
                }
            }
        }
    }

    #[test]
    fn arp_request_and_reply() {
        for op in [ArpOp::Request, ArpOp::Reply] {
            let f = arp(op);
            let d = round_trip(&f);
            assert_eq!(d, f);
            let bytes = encode(&f);
            assert_eq!(&bytes[12..14], &[0x08, 0x06]);
            assert_eq!(&bytes[14..20], &[0, 1, 8, 0, 6, 4]);
            let s = SlicedPacket::from_ethernet(&bytes).unwrap();
            let Some(NetSlice::Arp(a)) = s.net else {
                panic!("etherparse did not see ARP")
            };
            let a = a.to_packet().try_eth_ipv4().unwrap();
            let want = if op == ArpOp::Request { 1 } else { 2 };
            assert_eq!(a.operation.0, want);
            assert_eq!(a.sender_ipv4_addr(), IP_A);
        }
    }

    #[test]
    fn echo_request_with_head() {
        let p = echo_request();
        let f = frame(FrameBody::Ipv4(p.clone()));
        let d = round_trip(&f);
        let dp = ip_of(&d);
        assert!(!dp.corrupted);
        assert_eq!(dp.total_len(), 84);
        let IpBody::Icmp(IcmpMessage::EchoRequest {
            ident,
            seq,
            payload,
        }) = &dp.body
        else {
            panic!("not an echo request: {dp:?}")
        };
        assert_eq!((*ident, *seq, payload.len()), (0x4242, 7, 56));
        assert_eq!(&payload.head()[..4], &[0xde, 0xad, 0xbe, 0xef]);
        // Everything but the payload representation is equal.
        let mut expect = p.clone();
        if let IpBody::Icmp(IcmpMessage::EchoRequest { payload, .. }) = &mut expect.body {
            let mut v = Vec::new();
            payload.write_to(&mut v);
            *payload = Payload::bytes(&v);
        }
        assert_eq!(*dp, expect);

        let bytes = encode(&f);
        let s = SlicedPacket::from_ethernet(&bytes).unwrap();
        let Some(TransportSlice::Icmpv4(icmp)) = s.transport else {
            panic!("etherparse did not see ICMP")
        };
        let h = icmp.header();
        assert_eq!(h.checksum, h.icmp_type.calc_checksum(icmp.payload()));
        assert!(matches!(h.icmp_type, Icmpv4Type::EchoRequest(_)));
    }

    fn udp_checksum_ok_per_etherparse(bytes: &[u8]) {
        let s = SlicedPacket::from_ethernet(bytes).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &s.net else {
            panic!("no IPv4")
        };
        let (src, dst) = (ip.header().source(), ip.header().destination());
        let Some(TransportSlice::Udp(udp)) = s.transport else {
            panic!("etherparse did not see UDP")
        };
        let want = udp
            .to_header()
            .calc_checksum_ipv4_raw(src, dst, udp.payload())
            .unwrap();
        assert_eq!(udp.checksum(), want);
        assert_ne!(udp.checksum(), 0);
    }

    #[test]
    fn udp_round_trip_and_checksum() {
        for n in [0, 1, 200, 1471] {
            let p = udp(n);
            let f = frame(FrameBody::Ipv4(p.clone()));
            let d = round_trip(&f);
            let dp = ip_of(&d);
            assert!(!dp.corrupted);
            let IpBody::Transport(t) = &dp.body else {
                panic!("not transport")
            };
            assert_eq!(
                t.checksum,
                ChecksumField::At {
                    offset: 6,
                    zero_as_ones: true
                }
            );
            // The model keeps the checksum bytes zero.
            let IpBody::Transport(orig) = &p.body else {
                unreachable!()
            };
            assert_eq!(t.header, orig.header);
            assert_eq!(t.ports(), (40000, 9));
            udp_checksum_ok_per_etherparse(&encode(&f));
        }
    }

    #[test]
    fn udp_without_checksum_decodes_as_none() {
        let mut p = udp(10);
        if let IpBody::Transport(t) = &mut p.body {
            t.checksum = ChecksumField::None;
        }
        let f = frame(FrameBody::Ipv4(p.clone()));
        let bytes = encode(&f);
        assert_eq!(&bytes[34 + 6..34 + 8], &[0, 0]);
        let d = round_trip(&f);
        assert_eq!(*ip_of(&d), {
            let mut e = p;
            if let IpBody::Transport(t) = &mut e.body {
                let mut v = Vec::new();
                t.payload.write_to(&mut v);
                t.payload = Payload::bytes(&v);
            }
            e
        });
    }

    #[test]
    fn tcp_round_trip_and_checksum() {
        let f = frame(FrameBody::Ipv4(tcp()));
        let d = round_trip(&f);
        let dp = ip_of(&d);
        assert!(!dp.corrupted);
        let IpBody::Transport(t) = &dp.body else {
            panic!("not transport")
        };
        assert_eq!(t.header.len(), 20);
        assert_eq!(t.payload.len(), 10);
        assert_eq!(&t.header.as_slice()[16..18], &[0, 0]);
        let bytes = encode(&f);
        let s = SlicedPacket::from_ethernet(&bytes).unwrap();
        let Some(TransportSlice::Tcp(tcp)) = s.transport else {
            panic!("etherparse did not see TCP")
        };
        let want = tcp
            .calc_checksum_ipv4(IP_A.octets(), IP_B.octets())
            .unwrap();
        assert_eq!(tcp.checksum(), want);
    }

    #[test]
    fn other_protocols_are_all_payload() {
        let t = TransportPacket {
            header: HeaderBytes::new(&[]).unwrap(),
            payload: Payload::bytes(&[1, 2, 3, 4, 5]),
            checksum: ChecksumField::None,
        };
        let f = frame(FrameBody::Ipv4(ipv4(132, IpBody::Transport(t.clone()))));
        let d = round_trip(&f);
        assert_eq!(ip_of(&d).body, IpBody::Transport(t));
    }

    fn icmp_checks(bytes: &[u8]) -> Icmpv4Header {
        let s = SlicedPacket::from_ethernet(bytes).unwrap();
        let Some(TransportSlice::Icmpv4(icmp)) = s.transport else {
            panic!("etherparse did not see ICMP")
        };
        let h = icmp.header();
        assert_eq!(h.checksum, h.icmp_type.calc_checksum(icmp.payload()));
        // The quoted header carries its own correct checksum.
        let quoted = &icmp.payload()[..20];
        assert!(ones_sum_ok(quoted), "quoted header checksum");
        let (qh, _) = Ipv4Header::from_slice(quoted).unwrap();
        assert_eq!(qh.header_checksum, qh.calc_header_checksum());
        h
    }

    #[test]
    fn dest_unreachable_port_and_frag_needed() {
        let about = udp(100);
        let q = quote_of(&about);
        assert_eq!(q.total_len, 20 + 8 + 100);
        assert_eq!(q.data_len, 8);
        assert_eq!(q.ports(), (40000, 9));
        assert_eq!(&q.data[..8], &ip_body_bytes(&about)[..8]);

        let f = frame(FrameBody::Ipv4(unreachable(UnreachableCode::Port, 0)));
        let d = round_trip(&f);
        assert_eq!(d, f, "no payloads inside: decodes exactly");
        let h = icmp_checks(&encode(&f));
        assert_eq!(
            h.icmp_type,
            Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::Port)
        );

        let f = frame(FrameBody::Ipv4(unreachable(
            UnreachableCode::FragmentationNeeded,
            1400,
        )));
        let d = round_trip(&f);
        assert_eq!(d, f);
        let bytes = encode(&f);
        let icmp = &bytes[34..];
        assert_eq!(&icmp[..2], &[3, 4]);
        assert_eq!(&icmp[4..8], &[0, 0, 0x05, 0x78]);
        let h = icmp_checks(&bytes);
        assert_eq!(
            h.icmp_type,
            Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
                next_hop_mtu: 1400
            })
        );
    }

    #[test]
    fn short_quotes() {
        // A datagram with fewer than 8 payload bytes is quoted whole.
        let t = TransportPacket {
            header: HeaderBytes::new(&[]).unwrap(),
            payload: Payload::bytes(&[9, 8, 7]),
            checksum: ChecksumField::None,
        };
        let q = quote_of(&ipv4(200, IpBody::Transport(t)));
        assert_eq!((q.data_len, &q.data[..3]), (3, &[9, 8, 7][..]));
        let mut p = unreachable(UnreachableCode::Protocol, 0);
        if let IpBody::Icmp(IcmpMessage::DestUnreachable { quote, .. }) = &mut p.body {
            *quote = q;
        }
        let f = frame(FrameBody::Ipv4(p));
        assert_eq!(round_trip(&f), f);
        // And one with none at all.
        let q = quote_of(&ipv4(
            200,
            IpBody::Transport(TransportPacket {
                header: HeaderBytes::new(&[]).unwrap(),
                payload: Payload::empty(),
                checksum: ChecksumField::None,
            }),
        ));
        assert_eq!(q.data_len, 0);
        let mut p = time_exceeded(TimeExceededCode::TtlInTransit);
        if let IpBody::Icmp(IcmpMessage::TimeExceeded { quote, .. }) = &mut p.body {
            *quote = q;
        }
        let f = frame(FrameBody::Ipv4(p));
        assert_eq!(round_trip(&f), f);
    }

    #[test]
    fn time_exceeded_both_codes() {
        for (code, wire) in [
            (TimeExceededCode::TtlInTransit, 0u8),
            (TimeExceededCode::FragmentReassembly, 1),
        ] {
            let f = frame(FrameBody::Ipv4(time_exceeded(code)));
            let d = round_trip(&f);
            assert_eq!(d, f);
            let bytes = encode(&f);
            assert_eq!(&bytes[34..36], &[11, wire]);
            let h = icmp_checks(&bytes);
            assert!(matches!(h.icmp_type, Icmpv4Type::TimeExceeded(_)));
            // The quote is of an echo request with TTL 0.
            let IpBody::Icmp(IcmpMessage::TimeExceeded { quote, .. }) = &ip_of(&d).body else {
                unreachable!()
            };
            assert_eq!((quote.ttl, quote.protocol, quote.total_len), (0, 1, 84));
            assert_eq!(quote.data[0], 8);
        }
    }

    #[test]
    fn fragments_reassemble_to_the_whole_body() {
        let orig = big_udp();
        let whole = ip_body_bytes(&orig);
        assert_eq!(whole.len(), 3008);
        let mut joined = Vec::new();
        for (i, p) in fragments().into_iter().enumerate() {
            let f = frame(FrameBody::Ipv4(p.clone()));
            let bytes = encode(&f);
            check_ip_header(&bytes);
            // Offset in 8-byte units, MF flag.
            let ip = &bytes[14..34];
            let flags_off = u16::from_be_bytes([ip[6], ip[7]]);
            assert_eq!((flags_off & 0x1fff) as usize * 8, [0, 1480, 2960][i]);
            assert_eq!(flags_off & 0x2000 != 0, i < 2);
            assert_eq!(flags_off & 0x4000, 0);
            joined.extend_from_slice(&bytes[34..]);

            let d = round_trip(&f);
            let dp = ip_of(&d);
            assert_eq!(dp.fragment_offset, p.fragment_offset);
            assert_eq!(dp.more_fragments, p.more_fragments);
            let IpBody::Fragment(fd) = &dp.body else {
                panic!("not a fragment")
            };
            assert_eq!((fd.offset, fd.len), (0, [1480, 1480, 48][i]));

            // A quote of a fragment is its own first bytes.
            let q = quote_of(&p);
            assert_eq!(&q.data[..], &bytes[34..42]);
        }
        assert_eq!(joined, whole);
        // The UDP checksum verifies over the reassembled datagram.
        let (udp, payload) = UdpHeader::from_slice(&joined).unwrap();
        let want = udp
            .calc_checksum_ipv4_raw(IP_A.octets(), IP_B.octets(), payload)
            .unwrap();
        assert_eq!(udp.checksum, want);
        assert_eq!(udp.length, 3008);
        assert!(checksum_verifies(
            pseudo_header_sum(IP_A, IP_B, 17, joined.len()).add_slice(&joined)
        ));
    }

    #[test]
    fn corrupted_packets_fail_their_checksum_only() {
        for (name, p) in corrupted() {
            let f = frame(FrameBody::Ipv4(p.clone()));
            let bytes = encode(&f);
            assert_eq!(bytes.len(), f.len(), "{name}");
            check_ip_header(&bytes);
            let mut clean = p.clone();
            clean.corrupted = false;
            let good = encode(&frame(FrameBody::Ipv4(clean)));
            let diff: u32 = bytes
                .iter()
                .zip(&good)
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            assert_eq!(diff, 1, "{name}: exactly one bit flipped");
            let d = decode_frame(&bytes).unwrap();
            if !p.is_fragment() {
                assert!(ip_of(&d).corrupted, "{name}");
            }
            // etherparse still parses it all the way down.
            let s = SlicedPacket::from_ethernet(&bytes).unwrap();
            assert!(s.net.is_some(), "{name}");
        }
        // Payload present: the last byte's low bit is what changed.
        let p = udp(64);
        let mut c = p.clone();
        c.corrupted = true;
        let (a, b) = (ip_body_bytes(&p), ip_body_bytes(&c));
        assert_eq!(a[..a.len() - 1], b[..b.len() - 1]);
        assert_eq!(a[a.len() - 1] ^ b[b.len() - 1], 1);
    }

    #[test]
    fn corrupted_udp_checksum_never_becomes_zero() {
        // Find the source port whose empty datagram has checksum 0x0001: flipping bit 0 would
        // give 0 ("no checksum"), so the encoder must flip another bit.
        let port = (0..=u16::MAX)
            .find(|&sp| {
                let p = ipv4(
                    ip_proto::UDP,
                    IpBody::Transport(udp_with(sp, 9, Payload::empty())),
                );
                ip_body_bytes(&p)[6..8] == [0, 1]
            })
            .expect("some port gives checksum 1");
        let mut p = ipv4(
            ip_proto::UDP,
            IpBody::Transport(udp_with(port, 9, Payload::empty())),
        );
        p.corrupted = true;
        let body = ip_body_bytes(&p);
        assert_ne!(&body[6..8], &[0, 0]);
        let d = decode_frame(&encode(&frame(FrameBody::Ipv4(p)))).unwrap();
        assert!(ip_of(&d).corrupted);
    }

    #[test]
    fn bad_ip_header_checksum_is_corruption() {
        let mut bytes = encode(&frame(FrameBody::Ipv4(udp(10))));
        bytes[14 + 8] ^= 0x10; // TTL
        let d = decode_frame(&bytes).unwrap();
        assert!(ip_of(&d).corrupted);
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        for f in [
            arp(ArpOp::Request),
            frame(FrameBody::Ipv4(echo_reply_empty())),
        ] {
            let mut bytes = encode(&f);
            assert!(bytes.len() < 60);
            bytes.resize(60, 0);
            let d = decode_frame(&bytes).unwrap();
            assert_eq!(encode(&d), encode(&f));
        }
    }

    #[test]
    fn errors_for_bad_input() {
        assert!(matches!(
            decode_frame(&[0; 10]),
            Err(WireError::Truncated { .. })
        ));
        let mut b = encode(&frame(FrameBody::Ipv4(udp(10))));
        b[12] = 0x86;
        b[13] = 0xdd;
        assert_eq!(
            decode_frame(&b),
            Err(WireError::UnsupportedEtherType(0x86dd))
        );
        let mut b = encode(&frame(FrameBody::Ipv4(udp(10))));
        b[14] = 0x65;
        assert_eq!(decode_frame(&b), Err(WireError::BadIpVersion(6)));
        let mut b = encode(&frame(FrameBody::Ipv4(udp(10))));
        b[14] = 0x44;
        assert_eq!(decode_frame(&b), Err(WireError::BadIhl(4)));
        let mut b = encode(&frame(FrameBody::Ipv4(udp(10))));
        b[14] = 0x46;
        assert_eq!(decode_frame(&b), Err(WireError::Ipv4Options(6)));
        let mut b = encode(&frame(FrameBody::Ipv4(udp(10))));
        b[16] = 0;
        b[17] = 19;
        assert_eq!(
            decode_frame(&b),
            Err(WireError::BadTotalLength { total_len: 19 })
        );
        let mut b = encode(&frame(FrameBody::Ipv4(tcp())));
        b[34 + 12] = 0x40;
        assert_eq!(decode_frame(&b), Err(WireError::BadTcpDataOffset(4)));
        let mut b = encode(&frame(FrameBody::Ipv4(echo_request())));
        b[34] = 13; // timestamp
        assert!(matches!(
            decode_frame(&b),
            Err(WireError::UnsupportedIcmp { icmp_type: 13, .. })
        ));
        let mut b = encode(&arp(ArpOp::Request));
        b[14 + 7] = 3;
        assert!(matches!(
            decode_frame(&b),
            Err(WireError::UnsupportedArp(_))
        ));
        // Every proper prefix of a frame is an error, never a panic.
        for (name, f) in all() {
            let bytes = encode(&f);
            for n in 0..bytes.len() {
                assert!(decode_frame(&bytes[..n]).is_err(), "{name}: prefix {n}");
            }
        }
    }

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = Lcg(0x5eed);
        let mut decoded = 0;
        // Pure noise, with a plausible Ethernet/IPv4 prefix half of the time.
        for i in 0..600 {
            let len = (rng.next() % 120) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if i % 2 == 0 && v.len() > 15 {
                v[12] = 0x08;
                v[13] = if i % 4 == 0 { 0x00 } else { 0x06 };
                v[14] = 0x45;
            }
            decoded += decode_frame(&v).is_ok() as u32;
        }
        // Valid frames with random bytes damaged and random truncation.
        let samples = all();
        for _ in 0..3000 {
            let (_, f) = &samples[(rng.next() % samples.len() as u64) as usize];
            let mut v = encode(f);
            for _ in 0..1 + rng.next() % 3 {
                let i = (rng.next() % v.len() as u64) as usize;
                v[i] ^= 1 << (rng.next() % 8);
            }
            if rng.next() & 3 == 0 {
                v.truncate((rng.next() % (v.len() as u64 + 1)) as usize);
            }
            if let Ok(d) = decode_frame(&v) {
                decoded += 1;
                // Whatever decodes re-encodes to a frame of its model length.
                assert_eq!(encode(&d).len(), d.len());
            }
        }
        assert!(decoded > 0);
    }
}

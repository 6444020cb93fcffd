//! The TCP header on the wire (RFC 9293 section 3.1) with the options netdes speaks:
//! MSS, window scale and timestamps (RFC 7323), SACK-permitted and SACK blocks (RFC 2018).
//!
//! [`TcpRepr`] is the parsed form; [`TcpRepr::emit`] writes real header bytes (checksum
//! left for sim-core to fill in when a frame is written to a capture) in the option layout
//! Linux uses, so captures look like Linux's; [`TcpRepr::parse`] reads any well-formed
//! header, skipping unknown options. Encoding goes through etherparse.

use super::seq::SeqNum;
use etherparse::{TcpHeader, TcpHeaderSlice, TcpOptionElement};
use sim_core::packet::{ChecksumField, HeaderBytes, Payload, TransportPacket};

pub const TCP_HEADER_LEN: usize = 20;

/// Header flag bits (the low byte of the flags field).
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// tcpdump-style flag letters (`"S."` for SYN-ACK, `"FP."` for FIN-PSH-ACK, `"SEW"` for an
/// ECN-setup SYN).
pub fn flag_names(f: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [
        (flags::SYN, 'S'),
        (flags::FIN, 'F'),
        (flags::RST, 'R'),
        (flags::PSH, 'P'),
        (flags::ACK, '.'),
        (flags::ECE, 'E'),
        (flags::CWR, 'W'),
    ] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Up to four SACK blocks (left edge, right edge).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackBlocks {
    blocks: [(SeqNum, SeqNum); 4],
    len: u8,
}

impl SackBlocks {
    pub fn push(&mut self, left: SeqNum, right: SeqNum) -> bool {
        if (self.len as usize) < self.blocks.len() {
            self.blocks[self.len as usize] = (left, right);
            self.len += 1;
            true
        } else {
            false
        }
    }
    pub fn as_slice(&self) -> &[(SeqNum, SeqNum)] {
        &self.blocks[..self.len as usize]
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n as u8);
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// (TSval, TSecr)
    pub timestamps: Option<(u32, u32)>,
    pub sack: SackBlocks,
}

impl TcpOptions {
    /// Bytes these options take on the wire, padded as [`TcpRepr::emit`] lays them out.
    pub fn wire_len(&self, syn: bool) -> usize {
        let mut n = 0;
        if syn {
            n += self.mss.map_or(0, |_| 4);
            n += match (self.sack_permitted, self.timestamps.is_some()) {
                (true, true) => 12,
                (false, true) => 12,
                (true, false) => 4,
                (false, false) => 0,
            };
            n += self.window_scale.map_or(0, |_| 4);
        } else {
            n += self.timestamps.map_or(0, |_| 12);
            if !self.sack.is_empty() {
                n += 4 + 8 * self.sack.len();
            }
        }
        n
    }
}

/// A parsed TCP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: u8,
    /// The raw 16-bit window field (unscaled).
    pub window: u16,
    pub options: TcpOptions,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TcpParseError {
    #[error("malformed TCP header: {0}")]
    Header(String),
}

impl TcpRepr {
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    /// Sequence space the segment occupies: payload plus one each for SYN and FIN.
    pub fn seq_len(&self, payload_len: usize) -> u32 {
        payload_len as u32 + self.has(flags::SYN) as u32 + self.has(flags::FIN) as u32
    }

    /// Reads the header of `pkt`. (From a header slice rather than a `TcpHeader`: the
    /// same checks without copying the options out first.)
    #[inline(always)]
    pub fn parse(pkt: &TransportPacket) -> Result<TcpRepr, TcpParseError> {
        let h = TcpHeaderSlice::from_slice(pkt.header.as_slice())
            .map_err(|e| TcpParseError::Header(e.to_string()))?;
        let mut options = TcpOptions::default();
        for opt in h.options_iterator() {
            // An unknown or truncated option ends option parsing, as in Linux.
            let Ok(opt) = opt else { break };
            match opt {
                TcpOptionElement::Noop => {}
                TcpOptionElement::MaximumSegmentSize(m) => options.mss = Some(m),
                TcpOptionElement::WindowScale(s) => options.window_scale = Some(s.min(14)),
                TcpOptionElement::SelectiveAcknowledgementPermitted => {
                    options.sack_permitted = true
                }
                TcpOptionElement::SelectiveAcknowledgement(first, rest) => {
                    options.sack.push(SeqNum(first.0), SeqNum(first.1));
                    for (l, r) in rest.into_iter().flatten() {
                        options.sack.push(SeqNum(l), SeqNum(r));
                    }
                }
                TcpOptionElement::Timestamp(v, e) => options.timestamps = Some((v, e)),
            }
        }
        let mut flags = 0;
        for (set, bit) in [
            (h.fin(), flags::FIN),
            (h.syn(), flags::SYN),
            (h.rst(), flags::RST),
            (h.psh(), flags::PSH),
            (h.ack(), flags::ACK),
            (h.urg(), flags::URG),
            (h.ece(), flags::ECE),
            (h.cwr(), flags::CWR),
        ] {
            if set {
                flags |= bit;
            }
        }
        Ok(TcpRepr {
            src_port: h.source_port(),
            dst_port: h.destination_port(),
            seq: SeqNum(h.sequence_number()),
            ack: SeqNum(h.acknowledgment_number()),
            flags,
            window: h.window_size(),
            options,
        })
    }

    /// Writes the header in Linux's option layout and pairs it with `payload`.
    pub fn emit(&self, payload: Payload) -> TransportPacket {
        use TcpOptionElement as O;
        let mut h = TcpHeader::new(self.src_port, self.dst_port, self.seq.0, self.window);
        h.acknowledgment_number = self.ack.0;
        h.fin = self.has(flags::FIN);
        h.syn = self.has(flags::SYN);
        h.rst = self.has(flags::RST);
        h.psh = self.has(flags::PSH);
        h.ack = self.has(flags::ACK);
        h.urg = self.has(flags::URG);
        h.ece = self.has(flags::ECE);
        h.cwr = self.has(flags::CWR);
        let o = &self.options;
        let mut opts: [O; 12] = std::array::from_fn(|_| O::Noop);
        let mut n = 0;
        let mut put = |e: O| {
            opts[n] = e;
            n += 1;
        };
        if self.has(flags::SYN) {
            // Linux: MSS, SACK-permitted + timestamps (or NOP NOP SACK-permitted), NOP WS.
            if let Some(m) = o.mss {
                put(O::MaximumSegmentSize(m));
            }
            match (o.sack_permitted, o.timestamps) {
                (true, Some((v, e))) => {
                    put(O::SelectiveAcknowledgementPermitted);
                    put(O::Timestamp(v, e));
                }
                (false, Some((v, e))) => {
                    put(O::Noop);
                    put(O::Noop);
                    put(O::Timestamp(v, e));
                }
                (true, None) => {
                    put(O::Noop);
                    put(O::Noop);
                    put(O::SelectiveAcknowledgementPermitted);
                }
                (false, None) => {}
            }
            if let Some(ws) = o.window_scale {
                put(O::Noop);
                put(O::WindowScale(ws));
            }
        } else {
            if let Some((v, e)) = o.timestamps {
                put(O::Noop);
                put(O::Noop);
                put(O::Timestamp(v, e));
            }
            let blocks = o.sack.as_slice();
            if let Some((first, rest)) = blocks.split_first() {
                let mut more = [None; 3];
                for (slot, b) in more.iter_mut().zip(rest) {
                    *slot = Some((b.0 .0, b.1 .0));
                }
                put(O::Noop);
                put(O::Noop);
                put(O::SelectiveAcknowledgement((first.0 .0, first.1 .0), more));
            }
        }
        // Layouts above never exceed the 40 option bytes (at most TS + 3 SACK blocks, or
        // 4 blocks without TS), so this cannot fail; an overlong set is dropped, not sent.
        if h.set_options(&opts[..n]).is_err() {
            h.set_options(&[]).ok();
        }
        // `write` into a buffer: the same bytes as `to_bytes`, without building them one
        // by one into an ArrayVec.
        let mut buf = [0u8; TcpHeader::MAX_LEN];
        let len = h.header_len();
        let written = h.write(&mut &mut buf[..]);
        debug_assert!(
            written.is_ok(),
            "a TCP header fits in TcpHeader::MAX_LEN bytes"
        );
        let header = HeaderBytes::new(&buf[..len]).unwrap_or_else(|| {
            HeaderBytes::new(&buf[..TCP_HEADER_LEN]).expect("20-byte header fits")
        });
        TransportPacket {
            header,
            payload,
            checksum: ChecksumField::At {
                offset: 16,
                zero_as_ones: false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn() -> TcpRepr {
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: SeqNum(12345),
            ack: SeqNum(0),
            flags: flags::SYN,
            window: 64240,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((1000, 0)),
                sack: SackBlocks::default(),
            },
        }
    }

    #[test]
    fn syn_has_linux_layout_and_round_trips() {
        let r = syn();
        let pkt = r.emit(Payload::empty());
        let h = pkt.header.as_slice();
        assert_eq!(h.len(), 40);
        // MSS, SACK_PERM, TS, NOP, WS
        assert_eq!(&h[20..24], &[2, 4, 0x05, 0xb4]);
        assert_eq!(&h[24..26], &[4, 2]);
        assert_eq!(h[26], 8);
        assert_eq!(&h[36..40], &[1, 3, 3, 7]);
        assert_eq!(r.options.wire_len(true), 20);
        assert_eq!(TcpRepr::parse(&pkt).unwrap(), r);
    }

    #[test]
    fn data_segment_with_sack_round_trips() {
        let mut r = syn();
        r.flags = flags::ACK | flags::PSH;
        r.options.mss = None;
        r.options.window_scale = None;
        r.options.sack_permitted = false;
        r.options.sack.push(SeqNum(10), SeqNum(20));
        r.options.sack.push(SeqNum(30), SeqNum(40));
        r.options.sack.push(SeqNum(50), SeqNum(60));
        let pkt = r.emit(Payload::zeros(100));
        assert_eq!(pkt.header.len(), 20 + r.options.wire_len(false));
        assert_eq!(TcpRepr::parse(&pkt).unwrap(), r);
        assert_eq!(r.seq_len(100), 100);
    }

    #[test]
    fn truncated_header_is_an_error() {
        let pkt = TransportPacket {
            header: HeaderBytes::new(&[0u8; 12]).unwrap(),
            payload: Payload::empty(),
            checksum: ChecksumField::None,
        };
        assert!(TcpRepr::parse(&pkt).is_err());
    }
}

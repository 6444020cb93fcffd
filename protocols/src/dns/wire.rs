//! DNS messages on the wire (RFC 1035 section 4), through hickory-proto: decoding with
//! the checks every role makes, encoding with the 512-byte UDP limit and the TC bit, and the
//! two-byte length prefix of DNS over TCP (RFC 1035 4.2.2, RFC 7766).
//!
//! Owns no state of any resolver or server; it never sees sockets or time.

use hickory_proto::op::{Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

/// The DNS port.
pub const DNS_PORT: u16 = 53;
/// Largest DNS message over UDP without EDNS0 (RFC 1035 2.3.4).
pub const UDP_LIMIT: usize = 512;

/// Why a received DNS message was dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MalformedDns {
    #[error("undecodable DNS message")]
    Undecodable,
    #[error("DNS message without exactly one question")]
    NoQuestion,
}

/// A name as an absolute (fully qualified) domain name: `"www.example"` and
/// `"www.example."` are the same name.
pub fn fqdn(s: &str) -> Result<Name, hickory_proto::ProtoError> {
    if s == "." {
        return Ok(Name::root());
    }
    let mut n = Name::from_ascii(s)?;
    n.set_fqdn(true);
    Ok(n)
}

/// Decodes a message that must carry exactly one question (all netdes DNS traffic does).
pub fn decode(bytes: &[u8]) -> Result<Message, MalformedDns> {
    let m = Message::from_vec(bytes).map_err(|_| MalformedDns::Undecodable)?;
    if m.queries.len() != 1 {
        return Err(MalformedDns::NoQuestion);
    }
    Ok(m)
}

/// The FORMERR answer to a query that [`decode`] rejected, as BIND and Unbound send one
/// (RFC 1035 4.1.1; RFC 6891 6.1.1 requires it for a query with two OPT records): only
/// when the header says "standard query" and the question section holds one readable
/// question, which the answer echoes. `None` for anything else (a response, another
/// opcode, no readable question), which is dropped without an answer.
pub fn formerr_reply(bytes: &[u8]) -> Option<Message> {
    let mut decoder = BinDecoder::new(bytes);
    let header = Header::read(&mut decoder).ok()?;
    if header.metadata.message_type != MessageType::Query
        || header.metadata.op_code != OpCode::Query
        || header.counts.queries != 1
    {
        return None;
    }
    let question = Query::read(&mut decoder).ok()?;
    let mut m = Message::error_msg(header.metadata.id, OpCode::Query, ResponseCode::FormErr);
    m.metadata.recursion_desired = header.metadata.recursion_desired;
    m.add_query(question);
    Some(m)
}

/// A standard query for (`name`, `qtype`) with `id`; `rd`: recursion desired.
pub fn query(id: u16, name: &Name, qtype: RecordType, rd: bool) -> Message {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = rd;
    m.add_query(Query::query(name.clone(), qtype));
    m
}

/// An empty response to `q`: same id, question and RD bit.
pub fn response_to(q: &Message, rcode: ResponseCode) -> Message {
    let mut m = Message::error_msg(q.metadata.id, OpCode::Query, rcode);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.add_queries(q.queries.iter().cloned());
    m
}

/// The question of a message decoded by [`decode`].
pub fn question(m: &Message) -> (&Name, RecordType) {
    match m.queries.first() {
        Some(q) => (q.name(), q.query_type()),
        // decode() guarantees one question; a hand-built message without one asks for
        // the root's SOA, which matches nothing anybody asked.
        None => (ROOT.get_or_init(Name::root), RecordType::SOA),
    }
}

static ROOT: std::sync::OnceLock<Name> = std::sync::OnceLock::new();

/// Encodes `m`; `None` if hickory cannot (a name or record it refuses).
pub fn encode(m: &Message) -> Option<Vec<u8>> {
    m.to_vec().ok()
}

/// Encodes a response for UDP: if it is longer than `limit` bytes ([`UDP_LIMIT`], or what
/// EDNS negotiated, see [`super::edns::negotiate`]), the records are dropped and TC is set
/// (RFC 1035 4.2.1, RFC 2181 9, RFC 6891 7: the OPT record stays), so the client asks
/// again over TCP. Returns the bytes and whether it was truncated.
pub fn encode_udp(m: &Message, limit: usize) -> Option<(Vec<u8>, bool)> {
    let full = encode(m)?;
    if full.len() <= limit {
        return Some((full, false));
    }
    let mut t = m.truncate();
    t.metadata.id = m.metadata.id;
    Some((encode(&t)?, true))
}

/// A message with its two-byte length prefix, for TCP.
pub fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.extend_from_slice(&(bytes.len().min(u16::MAX as usize) as u16).to_be_bytes());
    out.extend_from_slice(&bytes[..bytes.len().min(u16::MAX as usize)]);
    out
}

/// Reassembles length-prefixed messages from a TCP byte stream.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
}

impl Deframer {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    /// The next complete message, if one has arrived.
    pub fn next_message(&mut self) -> Option<Vec<u8>> {
        if self.buf.len() < 2 {
            return None;
        }
        let len = u16::from_be_bytes([self.buf[0], self.buf[1]]) as usize;
        if self.buf.len() < 2 + len {
            return None;
        }
        let msg = self.buf[2..2 + len].to_vec();
        self.buf.drain(..2 + len);
        Some(msg)
    }
}

/// A short name for a response code, for traces and reports.
pub fn rcode_name(r: ResponseCode) -> &'static str {
    match r {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};
    use std::net::Ipv4Addr;

    #[test]
    fn only_a_standard_query_with_a_readable_question_gets_formerr() {
        let n = fqdn("www.example.org").unwrap();
        let good = encode(&query(0x4242, &n, RecordType::A, true)).unwrap();
        // The question, then an answer count with no answer behind it.
        let mut broken = good.clone();
        broken[7] = 1; // ANCOUNT
        assert!(decode(&broken).is_err());
        let r = formerr_reply(&broken).expect("a FORMERR");
        assert_eq!(r.metadata.id, 0x4242);
        assert_eq!(r.metadata.message_type, MessageType::Response);
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        assert!(r.metadata.recursion_desired);
        assert_eq!(r.queries, decode(&good).unwrap().queries);
        // A broken response, another opcode, two questions, a cut question or header:
        // nothing to answer.
        let mut response = broken.clone();
        response[2] |= 0x80;
        let mut notify = broken.clone();
        notify[2] |= 4 << 3;
        let mut two_questions = broken.clone();
        two_questions[5] = 2;
        for bytes in [
            &response,
            &notify,
            &two_questions,
            &broken[..20].to_vec(),
            &broken[..8].to_vec(),
        ] {
            assert!(formerr_reply(bytes).is_none(), "{bytes:?}");
        }
    }

    #[test]
    fn queries_round_trip_and_names_are_absolute() {
        let n = fqdn("www.Example.org").unwrap();
        assert!(n.is_fqdn());
        assert_eq!(n, fqdn("www.example.org.").unwrap());
        let bytes = encode(&query(0x1234, &n, RecordType::A, true)).unwrap();
        let m = decode(&bytes).unwrap();
        assert_eq!(m.metadata.id, 0x1234);
        assert!(m.metadata.recursion_desired);
        assert_eq!(question(&m), (&n, RecordType::A));
    }

    #[test]
    fn large_udp_answers_are_truncated_with_tc() {
        let n = fqdn("big.example.").unwrap();
        let q = query(7, &n, RecordType::A, true);
        let mut r = response_to(&q, ResponseCode::NoError);
        for i in 0..40u8 {
            r.add_answer(Record::from_rdata(
                n.clone(),
                60,
                RData::A(A(Ipv4Addr::new(10, 0, 0, i))),
            ));
        }
        assert!(encode(&r).unwrap().len() > UDP_LIMIT);
        let (bytes, truncated) = encode_udp(&r, UDP_LIMIT).unwrap();
        assert!(truncated);
        assert!(bytes.len() <= UDP_LIMIT);
        let t = decode(&bytes).unwrap();
        assert!(t.metadata.truncation);
        assert_eq!(t.metadata.id, 7);
        assert!(t.answers.is_empty());
        // A small answer goes as it is.
        let (_, truncated) =
            encode_udp(&response_to(&q, ResponseCode::NXDomain), UDP_LIMIT).unwrap();
        assert!(!truncated);
        // With a larger limit (EDNS) the whole answer goes.
        let (bytes, truncated) = encode_udp(&r, 1232).unwrap();
        assert!(!truncated);
        assert_eq!(decode(&bytes).unwrap().answers.len(), 40);
    }

    #[test]
    fn malformed_messages_are_rejected() {
        assert_eq!(decode(&[1, 2, 3]), Err(MalformedDns::Undecodable));
        let mut m = query(1, &fqdn("a.").unwrap(), RecordType::A, false);
        m.queries.clear();
        assert_eq!(decode(&encode(&m).unwrap()), Err(MalformedDns::NoQuestion));
        // A header promising a question that is not there.
        let mut b = encode(&query(1, &fqdn("a.").unwrap(), RecordType::A, false)).unwrap();
        b.truncate(14);
        assert_eq!(decode(&b), Err(MalformedDns::Undecodable));
    }

    #[test]
    fn tcp_frames_reassemble_across_reads() {
        let a = frame(b"hello");
        let b = frame(b"dns");
        let mut d = Deframer::default();
        d.push(&a[..3]);
        assert_eq!(d.next_message(), None);
        d.push(&a[3..]);
        d.push(&b[..1]);
        assert_eq!(d.next_message().as_deref(), Some(&b"hello"[..]));
        assert_eq!(d.next_message(), None);
        d.push(&b[1..]);
        assert_eq!(d.next_message().as_deref(), Some(&b"dns"[..]));
    }
}

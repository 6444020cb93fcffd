//! The gossip message format: a compact binary layout carried as real UDP payload bytes.
//!
//! Owns encoding and defensive decoding of [`Message`]s. It knows nothing of sockets, time
//! or what a message means (that is [`super::node`]).
//!
//! Gossip messages (kinds 1 to 8) have this layout, all integers big-endian:
//!
//! ```text
//! offset size  field
//!  0     2     magic "GS" (0x47 0x53)
//!  2     1     version, 1
//!  3     1     kind: 1 PUSH, 2 FEEDBACK, 3 PULL, 4 PUSH_PULL, 5 REPLY,
//!                    6 SYNC, 7 SYNC_REPLY, 8 SYNC_DATA
//!  4     1     flags: bit 0 = feedback wanted (PUSH only); other bits 0
//!  5     1     reserved, 0
//!  6     2     R, the number of rumors
//!  8     ...   R rumors, each: id u32, value length L u16, L value bytes
//!  ...   2     N, the number of rumor ids
//!  ...   4*N   N rumor ids, u32 each
//! ```
//!
//! Which kinds carry rumors and which carry ids is fixed (see [`Kind::has_rumors`] and
//! [`Kind::has_ids`]); the other count must be zero.
//!
//! The membership messages of SWIM ([`super::swim`]) share the first six bytes:
//!
//! ```text
//! offset size  field
//!  0     2     magic "GS"
//!  2     1     version, 1
//!  3     1     kind: 9 PING, 10 PING_REQ, 11 ACK
//!  4     1     flags, 0
//!  5     1     reserved, 0
//!  6     4     seq: the probe's sequence number (an ACK echoes the PING's)
//! 10     4     from: the sender's member index
//! 14     4     target: PING the member pinged, PING_REQ the member to ping for the
//!              sender, ACK the member that answers
//! 18     2     U, the number of membership updates
//! 20     9*U   U updates: member u32, status u8 (0 alive, 1 suspect, 2 dead),
//!              incarnation u32
//! ```
//!
//! A message is malformed, and decoding fails with a [`DecodeError`], if it is shorter
//! than its counts say, has bytes left over, has an unknown magic, version, kind, flag or
//! status, or fills a section its kind does not use. Decoding never panics and allocates
//! at most what the input's length allows.

/// Bytes before the rumors: magic, version, kind, flags, reserved, rumor count.
pub const HEADER_LEN: usize = 8;
/// Bytes a rumor adds besides its value: id and value length.
pub const RUMOR_OVERHEAD: usize = 6;
/// The most value bytes a rumor may carry.
pub const MAX_VALUE_LEN: usize = u16::MAX as usize;

const MAGIC: [u8; 2] = *b"GS";
const VERSION: u8 = 1;
const FLAG_FEEDBACK: u8 = 1;

/// What a message is for (see [`super::node`] for what each does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Rumor mongering, push: the sender's hot rumors.
    Push = 1,
    /// The answer to a PUSH that wanted feedback: the pushed rumors the receiver already knew.
    Feedback = 2,
    /// Rumor mongering, pull: the ids the sender knows; asks for hot rumors it lacks.
    Pull = 3,
    /// Rumor mongering, push-pull: hot rumors plus the ids the sender knows.
    PushPull = 4,
    /// The answer to PULL or PUSH_PULL: hot rumors the asker lacks, and (PUSH_PULL with
    /// feedback) the pushed rumors that were already known.
    Reply = 5,
    /// Anti-entropy, first message: every id the sender knows.
    Sync = 6,
    /// Anti-entropy, answer: the rumors the initiator lacks and the ids the answerer lacks.
    SyncReply = 7,
    /// Anti-entropy, last message: the rumors the answerer asked for.
    SyncData = 8,
}

impl Kind {
    fn from_code(c: u8) -> Option<Kind> {
        Some(match c {
            1 => Kind::Push,
            2 => Kind::Feedback,
            3 => Kind::Pull,
            4 => Kind::PushPull,
            5 => Kind::Reply,
            6 => Kind::Sync,
            7 => Kind::SyncReply,
            8 => Kind::SyncData,
            _ => return None,
        })
    }

    /// Whether messages of this kind carry rumors.
    pub fn has_rumors(self) -> bool {
        matches!(
            self,
            Kind::Push | Kind::PushPull | Kind::Reply | Kind::SyncReply | Kind::SyncData
        )
    }

    /// Whether messages of this kind carry rumor ids.
    pub fn has_ids(self) -> bool {
        matches!(
            self,
            Kind::Feedback
                | Kind::Pull
                | Kind::PushPull
                | Kind::Reply
                | Kind::Sync
                | Kind::SyncReply
        )
    }

    /// The name used in traces and docs.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Push => "push",
            Kind::Feedback => "feedback",
            Kind::Pull => "pull",
            Kind::PushPull => "push_pull",
            Kind::Reply => "reply",
            Kind::Sync => "sync",
            Kind::SyncReply => "sync_reply",
            Kind::SyncData => "sync_data",
        }
    }
}

/// Membership message kinds (SWIM).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SwimKind {
    /// Are you alive? (answered with ACK)
    Ping = 9,
    /// Please ping `target` for me and pass its ACK on.
    PingReq = 10,
    /// I am alive (from `target`), answering PING `seq`.
    Ack = 11,
}

impl SwimKind {
    pub fn name(self) -> &'static str {
        match self {
            SwimKind::Ping => "ping",
            SwimKind::PingReq => "ping_req",
            SwimKind::Ack => "ack",
        }
    }
}

/// What a member believes of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Alive = 0,
    Suspect = 1,
    Dead = 2,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Alive => "alive",
            Status::Suspect => "suspect",
            Status::Dead => "dead",
        }
    }
}

/// A membership update: `member` is `status` at `incarnation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update {
    pub member: u32,
    pub status: Status,
    pub incarnation: u32,
}

/// Bytes one update takes.
pub const UPDATE_LEN: usize = 9;
/// Bytes of a membership message before its updates.
pub const SWIM_HEADER_LEN: usize = 20;

/// A membership message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwimMessage {
    pub kind: SwimKind,
    pub seq: u32,
    pub from: u32,
    pub target: u32,
    /// Piggybacked membership updates.
    pub updates: Vec<Update>,
}

impl SwimMessage {
    pub fn encoded_len(&self) -> usize {
        SWIM_HEADER_LEN + UPDATE_LEN * self.updates.len()
    }
}

/// Any message on the gossip port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    Gossip(Message),
    Swim(SwimMessage),
}

/// One rumor: an id and an opaque value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rumor {
    pub id: u32,
    pub value: Vec<u8>,
}

/// A gossip message. `rumors` is empty unless [`Kind::has_rumors`], `ids` unless
/// [`Kind::has_ids`]; `feedback` is only meaningful on PUSH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub feedback: bool,
    pub rumors: Vec<Rumor>,
    pub ids: Vec<u32>,
}

impl Message {
    pub fn new(kind: Kind) -> Self {
        Message {
            kind,
            feedback: false,
            rumors: Vec::new(),
            ids: Vec::new(),
        }
    }

    /// The encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN
            + self
                .rumors
                .iter()
                .map(|r| RUMOR_OVERHEAD + r.value.len())
                .sum::<usize>()
            + 2
            + 4 * self.ids.len()
    }
}

/// Why a datagram is not a gossip message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("shorter than its counts say")]
    Truncated,
    #[error("bad magic (not a gossip message)")]
    BadMagic,
    #[error("unsupported version {0}")]
    BadVersion(u8),
    #[error("unknown message kind {0}")]
    BadKind(u8),
    #[error("unknown flags {0:#04x}")]
    BadFlags(u8),
    #[error("reserved byte is {0}, not 0")]
    Reserved(u8),
    #[error("unknown member status {0}")]
    BadStatus(u8),
    #[error("a section its kind does not use is not empty")]
    UnexpectedSection,
    #[error("{0} bytes left over after the message")]
    TrailingBytes(usize),
}

/// Why a message cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("more than 65535 rumors or ids")]
    TooMany,
    #[error("a rumor value is longer than 65535 bytes")]
    ValueTooLong,
}

/// Encodes `m` into `out` (cleared first).
pub fn encode(m: &Message, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let rumor_count = u16::try_from(m.rumors.len()).map_err(|_| EncodeError::TooMany)?;
    let id_count = u16::try_from(m.ids.len()).map_err(|_| EncodeError::TooMany)?;
    out.clear();
    out.reserve(m.encoded_len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(m.kind as u8);
    out.push(if m.feedback && m.kind == Kind::Push {
        FLAG_FEEDBACK
    } else {
        0
    });
    out.push(0);
    out.extend_from_slice(&rumor_count.to_be_bytes());
    for r in &m.rumors {
        let len = u16::try_from(r.value.len()).map_err(|_| EncodeError::ValueTooLong)?;
        out.extend_from_slice(&r.id.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&r.value);
    }
    out.extend_from_slice(&id_count.to_be_bytes());
    for id in &m.ids {
        out.extend_from_slice(&id.to_be_bytes());
    }
    Ok(())
}

/// Encodes a membership message into `out` (cleared first).
pub fn encode_swim(m: &SwimMessage, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let count = u16::try_from(m.updates.len()).map_err(|_| EncodeError::TooMany)?;
    out.clear();
    out.reserve(m.encoded_len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, m.kind as u8, 0, 0]);
    for v in [m.seq, m.from, m.target] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&count.to_be_bytes());
    for u in &m.updates {
        out.extend_from_slice(&u.member.to_be_bytes());
        out.push(u.status as u8);
        out.extend_from_slice(&u.incarnation.to_be_bytes());
    }
    Ok(())
}

/// A cursor over untrusted bytes.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.data.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Decodes one message, rejecting anything that does not follow the layout exactly.
pub fn decode(data: &[u8]) -> Result<Packet, DecodeError> {
    let mut r = Reader { data };
    let head = r.take(HEADER_LEN - 2)?;
    if head[..2] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if head[2] != VERSION {
        return Err(DecodeError::BadVersion(head[2]));
    }
    let swim = match head[3] {
        9 => Some(SwimKind::Ping),
        10 => Some(SwimKind::PingReq),
        11 => Some(SwimKind::Ack),
        _ => None,
    };
    if let Some(kind) = swim {
        return decode_swim(kind, head, r).map(Packet::Swim);
    }
    let kind = Kind::from_code(head[3]).ok_or(DecodeError::BadKind(head[3]))?;
    let flags = head[4];
    let allowed = if kind == Kind::Push { FLAG_FEEDBACK } else { 0 };
    if flags & !allowed != 0 {
        return Err(DecodeError::BadFlags(flags));
    }
    if head[5] != 0 {
        return Err(DecodeError::Reserved(head[5]));
    }
    let rumor_count = r.u16()? as usize;
    if rumor_count > 0 && !kind.has_rumors() {
        return Err(DecodeError::UnexpectedSection);
    }
    // Every rumor takes at least RUMOR_OVERHEAD bytes: a count the input cannot hold is
    // rejected before anything is allocated for it.
    if rumor_count * RUMOR_OVERHEAD > r.data.len() {
        return Err(DecodeError::Truncated);
    }
    let mut rumors = Vec::with_capacity(rumor_count);
    for _ in 0..rumor_count {
        let id = r.u32()?;
        let len = r.u16()? as usize;
        rumors.push(Rumor {
            id,
            value: r.take(len)?.to_vec(),
        });
    }
    let id_count = r.u16()? as usize;
    if id_count > 0 && !kind.has_ids() {
        return Err(DecodeError::UnexpectedSection);
    }
    if id_count * 4 > r.data.len() {
        return Err(DecodeError::Truncated);
    }
    let ids = (0..id_count).map(|_| r.u32()).collect::<Result<_, _>>()?;
    if !r.data.is_empty() {
        return Err(DecodeError::TrailingBytes(r.data.len()));
    }
    Ok(Packet::Gossip(Message {
        kind,
        feedback: flags & FLAG_FEEDBACK != 0,
        rumors,
        ids,
    }))
}

fn decode_swim(kind: SwimKind, head: &[u8], mut r: Reader<'_>) -> Result<SwimMessage, DecodeError> {
    if head[4] != 0 {
        return Err(DecodeError::BadFlags(head[4]));
    }
    if head[5] != 0 {
        return Err(DecodeError::Reserved(head[5]));
    }
    let seq = r.u32()?;
    let from = r.u32()?;
    let target = r.u32()?;
    let count = r.u16()? as usize;
    if count * UPDATE_LEN > r.data.len() {
        return Err(DecodeError::Truncated);
    }
    let mut updates = Vec::with_capacity(count);
    for _ in 0..count {
        let member = r.u32()?;
        let code = r.take(1)?[0];
        let status = match code {
            0 => Status::Alive,
            1 => Status::Suspect,
            2 => Status::Dead,
            other => return Err(DecodeError::BadStatus(other)),
        };
        let incarnation = r.u32()?;
        updates.push(Update {
            member,
            status,
            incarnation,
        });
    }
    if !r.data.is_empty() {
        return Err(DecodeError::TrailingBytes(r.data.len()));
    }
    Ok(SwimMessage {
        kind,
        seq,
        from,
        target,
        updates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        Message {
            kind: Kind::PushPull,
            feedback: false,
            rumors: vec![
                Rumor {
                    id: 7,
                    value: b"hello".to_vec(),
                },
                Rumor {
                    id: 0x0102_0304,
                    value: Vec::new(),
                },
            ],
            ids: vec![1, 7, 0xffff_ffff],
        }
    }

    #[test]
    fn layout_is_as_documented() {
        let mut push = Message::new(Kind::Push);
        push.feedback = true;
        push.rumors.push(Rumor {
            id: 0x0a0b_0c0d,
            value: vec![0xee, 0xff],
        });
        let mut b = Vec::new();
        encode(&push, &mut b).unwrap();
        assert_eq!(
            b,
            [
                b'G', b'S', 1, 1, 1, 0, // magic, version, PUSH, feedback flag, reserved
                0, 1, // one rumor
                0x0a, 0x0b, 0x0c, 0x0d, 0, 2, 0xee, 0xff, // id, length, value
                0, 0, // no ids
            ]
        );
        assert_eq!(b.len(), push.encoded_len());
        let mut sync = Message::new(Kind::Sync);
        sync.ids = vec![3, 0x100];
        encode(&sync, &mut b).unwrap();
        assert_eq!(
            b,
            [b'G', b'S', 1, 6, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 1, 0]
        );
    }

    #[test]
    fn every_kind_round_trips() {
        for code in 1..=8 {
            let kind = Kind::from_code(code).unwrap();
            let mut m = sample();
            m.kind = kind;
            m.feedback = kind == Kind::Push;
            if !kind.has_rumors() {
                m.rumors.clear();
            }
            if !kind.has_ids() {
                m.ids.clear();
            }
            let mut b = Vec::new();
            encode(&m, &mut b).unwrap();
            assert_eq!(b.len(), m.encoded_len());
            assert_eq!(decode(&b), Ok(Packet::Gossip(m)), "{kind:?}");
        }
        for kind in [SwimKind::Ping, SwimKind::PingReq, SwimKind::Ack] {
            let m = swim_sample(kind);
            let mut b = Vec::new();
            encode_swim(&m, &mut b).unwrap();
            assert_eq!(b.len(), m.encoded_len());
            assert_eq!(decode(&b), Ok(Packet::Swim(m)), "{kind:?}");
        }
    }

    fn swim_sample(kind: SwimKind) -> SwimMessage {
        SwimMessage {
            kind,
            seq: 7,
            from: 3,
            target: 0x0102_0304,
            updates: vec![
                Update {
                    member: 5,
                    status: Status::Suspect,
                    incarnation: 2,
                },
                Update {
                    member: 0,
                    status: Status::Dead,
                    incarnation: 0xffff_ffff,
                },
            ],
        }
    }

    #[test]
    fn membership_layout_is_as_documented_and_checked() {
        let mut b = Vec::new();
        encode_swim(&swim_sample(SwimKind::PingReq), &mut b).unwrap();
        assert_eq!(
            b,
            [
                b'G', b'S', 1, 10, 0, 0, // magic, version, PING_REQ, flags, reserved
                0, 0, 0, 7, 0, 0, 0, 3, 1, 2, 3, 4, // seq, from, target
                0, 2, // two updates
                0, 0, 0, 5, 1, 0, 0, 0, 2, // member 5 suspect at incarnation 2
                0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, // member 0 dead
            ]
        );
        let with = |i: usize, v: u8| {
            let mut x = b.clone();
            x[i] = v;
            x
        };
        assert_eq!(decode(&with(24, 3)), Err(DecodeError::BadStatus(3)));
        assert_eq!(decode(&with(4, 1)), Err(DecodeError::BadFlags(1)));
        assert_eq!(decode(&with(5, 1)), Err(DecodeError::Reserved(1)));
        assert_eq!(decode(&b[..b.len() - 1]), Err(DecodeError::Truncated));
        assert_eq!(decode(&b[..19]), Err(DecodeError::Truncated));
        let mut long = b.clone();
        long.push(9);
        assert_eq!(decode(&long), Err(DecodeError::TrailingBytes(1)));
        for cut in 0..b.len() {
            assert!(decode(&b[..cut]).is_err());
        }
    }

    #[test]
    fn malformed_messages_are_rejected_with_a_reason() {
        let mut good = Vec::new();
        encode(&sample(), &mut good).unwrap();
        let with = |i: usize, v: u8| {
            let mut b = good.clone();
            b[i] = v;
            b
        };
        assert_eq!(decode(&[]), Err(DecodeError::Truncated));
        assert_eq!(decode(&good[..5]), Err(DecodeError::Truncated));
        assert_eq!(decode(&with(0, b'X')), Err(DecodeError::BadMagic));
        assert_eq!(decode(&with(2, 2)), Err(DecodeError::BadVersion(2)));
        assert_eq!(decode(&with(3, 12)), Err(DecodeError::BadKind(12)));
        assert_eq!(decode(&with(3, 0)), Err(DecodeError::BadKind(0)));
        assert_eq!(decode(&with(4, 1)), Err(DecodeError::BadFlags(1)));
        assert_eq!(decode(&with(5, 1)), Err(DecodeError::Reserved(1)));
        // SYNC carries no rumors.
        assert_eq!(decode(&with(3, 6)), Err(DecodeError::UnexpectedSection));
        // One byte short, one byte too many.
        assert_eq!(decode(&good[..good.len() - 1]), Err(DecodeError::Truncated));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(decode(&long), Err(DecodeError::TrailingBytes(1)));
        // A rumor count far beyond the input fails before allocating for it.
        let mut huge = good[..6].to_vec();
        huge.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(decode(&huge), Err(DecodeError::Truncated));
        // A value length past the end.
        let mut b = good.clone();
        b[12] = 0xff;
        assert_eq!(decode(&b), Err(DecodeError::Truncated));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A deterministic sweep of random inputs and of every truncation and one-byte
        // corruption of a valid message.
        let mut good = Vec::new();
        encode(&sample(), &mut good).unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err());
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut b = good.clone();
                b[i] = v;
                let _ = decode(&b);
            }
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode(&bytes);
        }
    }
}

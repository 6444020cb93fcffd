//! UDP (RFC 768): header encoding and the socket table of one node.
//!
//! Owns port allocation and the mapping from ports to the apps that own them. Linux
//! semantics: ephemeral ports come from net.ipv4.ip_local_port_range = 32768-60999, picked
//! from a random starting point and then sequentially; binding a port in use fails with
//! EADDRINUSE.

use sim_core::packet::{ChecksumField, HeaderBytes, Payload, TransportPacket};
use sim_core::rng::SimRng;
use std::collections::BTreeMap;

pub const EPHEMERAL_LOW: u16 = 32768;
pub const EPHEMERAL_HIGH: u16 = 60999;
pub const UDP_HEADER_LEN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UdpError {
    #[error("EADDRINUSE: port {0} is already bound")]
    AddrInUse(u16),
    #[error("EADDRNOTAVAIL: no free ephemeral port")]
    NoFreePort,
    #[error("EBADF: no such socket")]
    BadSocket,
    #[error("EMSGSIZE: a UDP datagram carries at most 65507 bytes")]
    TooLong,
}

#[derive(Clone, Debug)]
struct Socket {
    port: u16,
    owner: usize,
    /// The TOS byte of datagrams sent from it (IP_TOS), ECN bits included.
    tos: u8,
}

/// The UDP sockets of one node.
#[derive(Debug)]
pub struct UdpTable {
    sockets: BTreeMap<u32, Socket>,
    by_port: BTreeMap<u16, u32>,
    next_id: u32,
    next_ephemeral: u16,
    pub no_port: u64,
}

impl UdpTable {
    pub fn new(rng: &mut SimRng) -> Self {
        let span = (EPHEMERAL_HIGH - EPHEMERAL_LOW) as u64 + 1;
        UdpTable {
            sockets: BTreeMap::new(),
            by_port: BTreeMap::new(),
            next_id: 0,
            next_ephemeral: EPHEMERAL_LOW + rng.below(span) as u16,
            no_port: 0,
        }
    }

    /// Binds `port` (or an ephemeral port if `None`) for app `owner`.
    pub fn bind(&mut self, port: Option<u16>, owner: usize) -> Result<(SocketId, u16), UdpError> {
        let port = match port {
            Some(p) if self.by_port.contains_key(&p) => return Err(UdpError::AddrInUse(p)),
            Some(p) => p,
            None => self.ephemeral()?,
        };
        let id = self.next_id;
        self.next_id += 1;
        self.sockets.insert(
            id,
            Socket {
                port,
                owner,
                tos: 0,
            },
        );
        self.by_port.insert(port, id);
        Ok((SocketId(id), port))
    }

    /// Closes every socket `owner` holds (the app was killed).
    pub fn close_owned_by(&mut self, owner: usize) {
        let ids: Vec<u32> = self
            .sockets
            .iter()
            .filter(|(_, s)| s.owner == owner)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.close(SocketId(id));
        }
    }

    fn ephemeral(&mut self) -> Result<u16, UdpError> {
        let span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
        for _ in 0..span {
            let p = self.next_ephemeral;
            self.next_ephemeral = if p >= EPHEMERAL_HIGH {
                EPHEMERAL_LOW
            } else {
                p + 1
            };
            if !self.by_port.contains_key(&p) {
                return Ok(p);
            }
        }
        Err(UdpError::NoFreePort)
    }

    pub fn close(&mut self, s: SocketId) {
        if let Some(sock) = self.sockets.remove(&s.0) {
            self.by_port.remove(&sock.port);
        }
    }

    pub fn port(&self, s: SocketId) -> Option<u16> {
        self.sockets.get(&s.0).map(|x| x.port)
    }

    /// setsockopt(IP_TOS): the TOS byte of the socket's datagrams. As in Linux, a UDP
    /// socket sends the ECN bits it is given, so `tos` 2 sends ECT(0).
    pub fn set_tos(&mut self, s: SocketId, tos: u8) -> Result<(), UdpError> {
        let sock = self.sockets.get_mut(&s.0).ok_or(UdpError::BadSocket)?;
        sock.tos = tos;
        Ok(())
    }

    /// The source port and TOS byte for a datagram sent from `s`.
    pub fn sending(&self, s: SocketId) -> Option<(u16, u8)> {
        self.sockets.get(&s.0).map(|x| (x.port, x.tos))
    }

    /// The socket bound to `port` and its owning app.
    pub fn lookup(&self, port: u16) -> Option<(SocketId, usize)> {
        let id = *self.by_port.get(&port)?;
        self.sockets.get(&id).map(|s| (SocketId(id), s.owner))
    }
}

/// Builds a UDP packet; the core fills in the checksum when it writes real bytes.
pub fn encode(src_port: u16, dst_port: u16, payload: Payload) -> Result<TransportPacket, UdpError> {
    let len = UDP_HEADER_LEN + payload.len();
    if len > 65535 - 20 {
        return Err(UdpError::TooLong);
    }
    let h = etherparse::UdpHeader {
        source_port: src_port,
        destination_port: dst_port,
        length: len as u16,
        checksum: 0,
    };
    let header = HeaderBytes::new(&h.to_bytes()).ok_or(UdpError::TooLong)?;
    Ok(TransportPacket {
        header,
        payload,
        checksum: ChecksumField::At {
            offset: 6,
            zero_as_ones: true,
        },
    })
}

/// Parsed UDP header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub length: u16,
}

/// Parses the header of a received packet; `None` if malformed (short header or a length
/// field that disagrees with the packet).
pub fn decode(p: &TransportPacket) -> Option<UdpHeader> {
    let (h, _) = etherparse::UdpHeader::from_slice(p.header.as_slice()).ok()?;
    if h.length as usize != p.len() {
        return None;
    }
    Some(UdpHeader {
        src_port: h.source_port,
        dst_port: h.destination_port,
        length: h.length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::rng::RngFactory;

    #[test]
    fn ephemeral_ports_are_in_linux_range_and_unique() {
        let mut t = UdpTable::new(&mut RngFactory::new(1).stream("x"));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let (_, p) = t.bind(None, 0).unwrap();
            assert!((EPHEMERAL_LOW..=EPHEMERAL_HIGH).contains(&p));
            assert!(seen.insert(p));
        }
        assert_eq!(t.bind(Some(5001), 0).map(|x| x.1), Ok(5001));
        assert_eq!(t.bind(Some(5001), 1), Err(UdpError::AddrInUse(5001)));
    }

    #[test]
    fn header_round_trips() {
        let p = encode(40000, 53, Payload::zeros(100)).unwrap();
        assert_eq!(p.len(), 108);
        assert_eq!(
            decode(&p),
            Some(UdpHeader {
                src_port: 40000,
                dst_port: 53,
                length: 108
            })
        );
    }
}

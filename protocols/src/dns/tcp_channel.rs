//! One DNS-over-TCP connection (RFC 7766) seen from an app: messages out with their
//! two-byte length prefix, queued while the connection opens or the send buffer is full;
//! messages in, reassembled from the byte stream.

use super::wire::{frame, Deframer};
use crate::app::Os;
use crate::tcp::{Errno, TcpSocketId};
use sim_core::packet::Payload;

#[derive(Debug)]
pub struct TcpChannel {
    pub sock: TcpSocketId,
    /// The owner's key for the connection (a lookup, a resolution, a client).
    pub key: u64,
    connected: bool,
    out: Vec<u8>,
    input: Deframer,
}

/// What reading a channel gave.
#[derive(Debug, Default)]
pub struct Received {
    pub messages: Vec<Vec<u8>>,
    /// The peer closed its side.
    pub eof: bool,
}

impl TcpChannel {
    /// An accepted connection.
    pub fn accepted(sock: TcpSocketId, key: u64) -> Self {
        TcpChannel {
            sock,
            key,
            connected: true,
            out: Vec::new(),
            input: Deframer::default(),
        }
    }

    /// Opens a connection to `to` (non-blocking); call [`TcpChannel::on_connected`] when
    /// it is up.
    pub fn connect(
        os: &mut Os<'_, '_>,
        to: std::net::SocketAddrV4,
        key: u64,
    ) -> Result<Self, Errno> {
        let sock = os.tcp_socket();
        let ch = TcpChannel {
            sock,
            key,
            connected: false,
            out: Vec::new(),
            input: Deframer::default(),
        };
        if let Err(e) = os.tcp_connect(sock, to) {
            let _ = os.tcp_close(sock);
            return Err(e);
        }
        Ok(ch)
    }

    pub fn on_connected(&mut self, os: &mut Os<'_, '_>) -> Result<(), Errno> {
        self.connected = true;
        self.flush(os)
    }

    /// Queues one message and sends what the connection takes.
    pub fn send(&mut self, os: &mut Os<'_, '_>, msg: &[u8]) -> Result<(), Errno> {
        self.out.extend_from_slice(&frame(msg));
        self.flush(os)
    }

    /// Sends queued bytes (call on Writable too).
    pub fn flush(&mut self, os: &mut Os<'_, '_>) -> Result<(), Errno> {
        while self.connected && !self.out.is_empty() {
            match os.tcp_send(self.sock, &Payload::bytes(&self.out)) {
                Ok(0) | Err(Errno::Again) => break,
                Ok(n) => {
                    self.out.drain(..n.min(self.out.len()));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads everything available.
    pub fn read(&mut self, os: &mut Os<'_, '_>) -> Result<Received, Errno> {
        let mut got = Received::default();
        loop {
            match os.tcp_read(self.sock, 64 * 1024) {
                Ok(b) if b.is_empty() => {
                    got.eof = true;
                    break;
                }
                Ok(b) => self.input.push(&b),
                Err(Errno::Again) => break,
                Err(e) => return Err(e),
            }
        }
        while let Some(m) = self.input.next_message() {
            got.messages.push(m);
        }
        Ok(got)
    }

    pub fn close(self, os: &mut Os<'_, '_>) {
        let _ = os.tcp_close(self.sock);
    }
}

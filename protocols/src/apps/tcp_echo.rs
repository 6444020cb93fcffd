//! TCP echo server (RFC 862): sends back every byte it receives, in order, on the same
//! connection.
//!
//! It reads only while everything read so far has been handed back to TCP, so a client
//! that does not read its echoes eventually stops the server from reading (back pressure,
//! as a real echo server blocked in write() behaves). At end of stream it finishes echoing,
//! then closes: after the client's shutdown(SHUT_WR) it keeps sending what it owes (the
//! client's half-closed connection still receives), then sends its own FIN.

use super::tcp_flow::listen_with;
use crate::app::{App, Os};
use crate::tcp::buffer::slice_payload;
use crate::tcp::{Errno, SockOpts, TcpEvent, TcpSocketId};
use sim_core::packet::Payload;
use std::collections::VecDeque;

const READ_SIZE: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub struct TcpEchoConfig {
    pub name: String,
    pub port: u16,
    pub backlog: u32,
    pub opts: SockOpts,
}

#[derive(Debug)]
struct EchoConn {
    sock: TcpSocketId,
    /// Read but not yet accepted by send().
    pending: VecDeque<Payload>,
    eof: bool,
    open: bool,
    echoed: u64,
}

pub struct TcpEcho {
    cfg: TcpEchoConfig,
    listener: Option<TcpSocketId>,
    conns: Vec<EchoConn>,
    resets: u64,
    error: Option<String>,
    /// Reused for every read, so reading does not allocate.
    scratch: Vec<Payload>,
}

impl TcpEcho {
    pub fn new(cfg: TcpEchoConfig) -> Self {
        TcpEcho {
            scratch: Vec::new(),
            cfg,
            listener: None,
            conns: Vec::new(),
            resets: 0,
            error: None,
        }
    }

    fn listen(&mut self, os: &mut Os<'_, '_>) -> Result<TcpSocketId, Errno> {
        listen_with(os, self.cfg.opts, self.cfg.port, self.cfg.backlog)
    }

    /// Sends what is pending; true when all of it went.
    fn flush(&mut self, os: &mut Os<'_, '_>, i: usize) -> Result<bool, Errno> {
        let c = &mut self.conns[i];
        while let Some(p) = c.pending.pop_front() {
            match os.tcp_send(c.sock, &p) {
                Ok(n) => {
                    c.echoed += n as u64;
                    if n < p.len() {
                        c.pending.push_front(slice_payload(&p, n, p.len() - n));
                        return Ok(false);
                    }
                }
                Err(Errno::Again) => {
                    c.pending.push_front(p);
                    return Ok(false);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn service(&mut self, os: &mut Os<'_, '_>, i: usize) {
        let mut pieces = std::mem::take(&mut self.scratch);
        self.service_into(os, i, &mut pieces);
        pieces.clear();
        self.scratch = pieces;
    }

    fn service_into(&mut self, os: &mut Os<'_, '_>, i: usize, pieces: &mut Vec<Payload>) {
        loop {
            if !self.conns[i].open {
                return;
            }
            match self.flush(os, i) {
                Ok(true) => {}
                Ok(false) => return, // Writable follows
                Err(_) => {
                    self.resets += 1;
                    self.close(os, i);
                    return;
                }
            }
            if self.conns[i].eof {
                self.close(os, i);
                return;
            }
            pieces.clear();
            match os.tcp_recv(self.conns[i].sock, READ_SIZE, pieces) {
                Ok(0) => self.conns[i].eof = true,
                Ok(_) => self.conns[i].pending.extend(pieces.drain(..)),
                Err(Errno::Again) => return,
                Err(_) => {
                    self.resets += 1;
                    self.close(os, i);
                    return;
                }
            }
        }
    }

    fn close(&mut self, os: &mut Os<'_, '_>, i: usize) {
        let c = &mut self.conns[i];
        if c.open {
            c.open = false;
            c.pending.clear();
            let _ = os.tcp_close(c.sock);
        }
    }
}

impl App for TcpEcho {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn start(&mut self, os: &mut Os<'_, '_>) {
        match self.listen(os) {
            Ok(s) => self.listener = Some(s),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn on_tcp(&mut self, os: &mut Os<'_, '_>, sock: TcpSocketId, ev: TcpEvent) {
        if Some(sock) == self.listener {
            while let Ok((s, _)) = os.tcp_accept(sock) {
                self.conns.push(EchoConn {
                    sock: s,
                    pending: VecDeque::new(),
                    eof: false,
                    open: true,
                    echoed: 0,
                });
                let i = self.conns.len() - 1;
                self.service(os, i);
            }
            return;
        }
        let Some(i) = self.conns.iter().position(|c| c.sock == sock && c.open) else {
            return;
        };
        match ev {
            TcpEvent::Error(_) => {
                self.resets += 1;
                self.close(os, i);
            }
            _ => self.service(os, i),
        }
    }

    fn report(&self) -> Vec<String> {
        if let Some(e) = &self.error {
            return vec![format!(
                "tcp echo on port {}: listen failed: {e}",
                self.cfg.port
            )];
        }
        let echoed: u64 = self.conns.iter().map(|c| c.echoed).sum();
        let mut v = vec![format!(
            "tcp echo on port {}: {} connections, echoed {echoed} bytes",
            self.cfg.port,
            self.conns.len()
        )];
        if self.resets > 0 {
            v.push(format!(
                "  {} connections failed or were reset",
                self.resets
            ));
        }
        v
    }
}

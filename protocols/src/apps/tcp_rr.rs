//! Request/response over TCP: [`TcpRequestResponse`] (the client) sends requests one at a
//! time and times each answer; [`TcpServer`] answers them.
//!
//! The protocol: a request is `request` bytes long and starts with a 16-byte header, two
//! big-endian u64s: the request's own length (header included) and the number of response
//! bytes wanted. The rest of the request is zeros. The server reads the header, skips the
//! rest of the request, then writes the response (zeros). One request is outstanding at a
//! time. Requests shorter than the header are sent as 16 bytes.
//!
//! The client either keeps one connection for all its requests, or opens a new connection
//! per request (`per_connection`: connect, request, response, close, like HTTP/1.0). Each
//! request's latency (from its send, or from connect() in per-connection mode, to the last
//! response byte) is an RTT sample of the client's flow. When a server reads end of stream
//! it finishes any response it owes, then closes.

use super::tcp_flow::{conn_label, listen_with, push_outcome, secs, ConnLog, TargetLookup};
use crate::app::{App, Os};
use crate::tcp::buffer::slice_payload;
use crate::tcp::{Errno, SockOpts, TcpEvent, TcpSocketId};
use sim_core::metrics::FlowId;
use sim_core::packet::Payload;
use sim_core::time::{SimDuration, SimTime};
use std::net::SocketAddrV4;

/// Bytes of the request header.
pub const RR_HEADER_LEN: u32 = 16;
/// Largest piece a server writes per send() call.
const WRITE_SIZE: u64 = 64 * 1024;
const READ_SIZE: usize = 64 * 1024;
const TIMER_NEXT: u64 = 1;

/// The request header: total request length and wanted response length.
pub fn encode_request_header(request_len: u64, response_len: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(&request_len.to_be_bytes());
    h[8..].copy_from_slice(&response_len.to_be_bytes());
    h
}

/// (request length, response length) from a complete header.
pub fn decode_request_header(h: &[u8; 16]) -> (u64, u64) {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&h[..8]);
    b.copy_from_slice(&h[8..]);
    (u64::from_be_bytes(a), u64::from_be_bytes(b))
}

#[derive(Clone, Debug, PartialEq)]
pub struct TcpRrConfig {
    pub name: String,
    pub to_host: String,
    pub to_port: u16,
    /// Requests to make.
    pub count: u64,
    /// Request bytes (at least 16).
    pub request: u32,
    /// Response bytes asked for.
    pub response: u64,
    /// A new connection per request (else one connection for all).
    pub per_connection: bool,
    /// Start requests at least this far apart (None: each right after the previous answer).
    pub interval: Option<SimDuration>,
    /// bind() to this local port first.
    pub local_port: Option<u16>,
    pub opts: SockOpts,
    pub flow: FlowId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Waiting for the DNS lookup of the target.
    Resolving,
    Connecting,
    /// Request bytes handed to TCP so far.
    Sending(u64),
    /// Response bytes received so far.
    Receiving(u64),
    Done,
}

/// The request/response client. See the module documentation.
pub struct TcpRequestResponse {
    cfg: TcpRrConfig,
    sock: Option<TcpSocketId>,
    remote: Option<SocketAddrV4>,
    log: ConnLog,
    phase: Phase,
    /// Requests answered.
    done: u64,
    sent: u64,
    req_started: SimTime,
    first_start: Option<SimTime>,
    last_answer: Option<SimTime>,
    note: Option<String>,
    lines: Vec<String>,
    /// Reused for every read, so reading does not allocate.
    scratch: Vec<Payload>,
    lookup: TargetLookup,
}

impl TcpRequestResponse {
    pub fn new(cfg: TcpRrConfig) -> Self {
        let cfg = TcpRrConfig {
            request: cfg.request.max(RR_HEADER_LEN),
            ..cfg
        };
        TcpRequestResponse {
            scratch: Vec::new(),
            cfg,
            sock: None,
            remote: None,
            log: ConnLog::default(),
            phase: Phase::Idle,
            done: 0,
            sent: 0,
            req_started: SimTime::ZERO,
            first_start: None,
            last_answer: None,
            note: None,
            lines: Vec::new(),
            lookup: TargetLookup::default(),
        }
    }

    fn request(&self) -> Payload {
        Payload::with_head(
            &encode_request_header(self.cfg.request as u64, self.cfg.response),
            self.cfg.request,
        )
    }

    fn fail(&mut self, os: &mut Os<'_, '_>, err: Errno) {
        self.log.failed(err, os.now());
        self.phase = Phase::Done;
        self.close(os);
    }

    fn close(&mut self, os: &mut Os<'_, '_>) {
        if let Some(s) = self.sock.take() {
            self.log.closing(os, s);
            let _ = os.tcp_close(s);
        }
    }

    fn connect(&mut self, os: &mut Os<'_, '_>) -> Result<(), Errno> {
        let ip = match self.remote {
            Some(r) => *r.ip(),
            None => match self.lookup.resolve_or_lookup(os, &self.cfg.to_host) {
                Some(ip) => ip,
                None => {
                    // A DNS name: connect when the lookup is done.
                    self.phase = Phase::Resolving;
                    return Ok(());
                }
            },
        };
        let remote = SocketAddrV4::new(ip, self.cfg.to_port);
        self.remote = Some(remote);
        let s = os.tcp_socket();
        self.sock = Some(s);
        let opts = self.cfg.opts;
        os.tcp_set(s, |o| *o = opts)?;
        if let Some(p) = self.cfg.local_port {
            os.tcp_bind(s, p)?;
        }
        self.phase = Phase::Connecting;
        let r = os.tcp_connect(s, remote);
        self.log.opened(os, s, remote);
        r
    }

    /// Starts the next request, or ends the run of requests.
    fn next(&mut self, os: &mut Os<'_, '_>) {
        if self.sent >= self.cfg.count {
            self.phase = Phase::Done;
            self.close(os);
            return;
        }
        self.req_started = os.now();
        self.first_start.get_or_insert(self.req_started);
        if self.sock.is_none() {
            if let Err(e) = self.connect(os) {
                self.fail(os, e);
            }
            return;
        }
        self.phase = Phase::Sending(0);
        self.send(os);
    }

    fn send(&mut self, os: &mut Os<'_, '_>) {
        let (Phase::Sending(off), Some(s)) = (self.phase, self.sock) else {
            return;
        };
        let req = self.request();
        let total = req.len() as u64;
        let rest = slice_payload(&req, off as usize, (total - off) as usize);
        match os.tcp_send(s, &rest) {
            Ok(n) => {
                let off = off + n as u64;
                if off < total {
                    self.phase = Phase::Sending(off);
                    return;
                }
                self.sent += 1;
                let now = os.now();
                if let Some(f) = os.flow(self.cfg.flow) {
                    f.on_tx(now, total);
                }
                self.phase = Phase::Receiving(0);
            }
            Err(Errno::Again) => {}
            Err(e) => self.fail(os, e),
        }
    }

    fn read(&mut self, os: &mut Os<'_, '_>) {
        let mut pieces = std::mem::take(&mut self.scratch);
        self.read_into(os, &mut pieces);
        pieces.clear();
        self.scratch = pieces;
    }

    fn read_into(&mut self, os: &mut Os<'_, '_>, pieces: &mut Vec<Payload>) {
        let Some(s) = self.sock else { return };
        loop {
            pieces.clear();
            match os.tcp_recv(s, READ_SIZE, pieces) {
                Ok(0) => {
                    // The server hung up.
                    if self.phase != Phase::Done {
                        self.note = Some(format!(
                            "server closed the connection after {} answers",
                            self.done
                        ));
                        self.phase = Phase::Done;
                    }
                    self.close(os);
                    return;
                }
                Ok(n) => {
                    if let Phase::Receiving(got) = self.phase {
                        let got = got + n as u64;
                        if got >= self.cfg.response {
                            self.answered(os);
                            if self.sock.is_none() {
                                return;
                            }
                        } else {
                            self.phase = Phase::Receiving(got);
                        }
                    }
                }
                Err(Errno::Again) => return,
                Err(e) => {
                    self.fail(os, e);
                    return;
                }
            }
        }
    }

    fn answered(&mut self, os: &mut Os<'_, '_>) {
        let now = os.now();
        self.done += 1;
        self.last_answer = Some(now);
        let latency = now.saturating_since(self.req_started);
        let bytes = self.cfg.response;
        if let Some(f) = os.flow(self.cfg.flow) {
            f.on_rx(now, bytes);
            f.rtt.add(latency.as_nanos());
        }
        self.phase = Phase::Idle;
        if self.cfg.per_connection {
            self.close(os);
        }
        match self.cfg.interval {
            Some(iv) if self.sent < self.cfg.count => {
                let due = self.req_started + iv;
                if due > now {
                    os.set_timer(due - now, TIMER_NEXT);
                    return;
                }
                self.next(os);
            }
            _ => self.next(os),
        }
    }
}

impl App for TcpRequestResponse {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn start(&mut self, os: &mut Os<'_, '_>) {
        self.next(os);
    }

    fn on_timer(&mut self, os: &mut Os<'_, '_>, token: u64) {
        if token == TIMER_NEXT && self.phase == Phase::Idle {
            self.next(os);
        }
    }

    fn on_resolved(&mut self, os: &mut Os<'_, '_>, token: u64, result: &crate::dns::LookupResult) {
        if self.phase != Phase::Resolving {
            return;
        }
        match self
            .lookup
            .on_resolved(os, Some(self.cfg.flow), token, result)
        {
            Some(Ok(ip)) => {
                self.remote = Some(SocketAddrV4::new(ip, self.cfg.to_port));
                // The request's latency starts at connect(), after the lookup.
                self.req_started = os.now();
                self.first_start = Some(self.req_started);
                if let Err(e) = self.connect(os) {
                    self.fail(os, e);
                }
            }
            Some(Err(_)) => {
                self.note = self.lookup.line(&self.cfg.to_host);
                self.phase = Phase::Done;
            }
            None => {}
        }
    }

    fn on_tcp(&mut self, os: &mut Os<'_, '_>, sock: TcpSocketId, ev: TcpEvent) {
        if Some(sock) != self.sock {
            return;
        }
        match ev {
            TcpEvent::Connected if self.phase == Phase::Connecting => {
                self.phase = Phase::Sending(0);
                self.send(os);
            }
            TcpEvent::Writable => self.send(os),
            TcpEvent::Readable => self.read(os),
            TcpEvent::Error(e) => self.fail(os, e),
            _ => {}
        }
    }

    fn finish(&mut self, os: &mut Os<'_, '_>) {
        let t = self.log.finish_flow(os, self.cfg.flow);
        let unanswered = self.sent - self.done;
        if let Some(f) = os.flow(self.cfg.flow) {
            f.lost_packets += unanswered;
            *f.extra.entry("connections").or_insert(0.0) += t.connections as f64;
        }
        let target = self
            .remote
            .map(|r| r.to_string())
            .unwrap_or_else(|| format!("{}:{}", self.cfg.to_host, self.cfg.to_port));
        let mode = if self.cfg.per_connection {
            "a connection per request"
        } else {
            "one connection"
        };
        let mut lines = vec![format!(
            "tcp request/response to {target} ({mode}): {} of {} requests answered, {} connections, {} retransmits",
            self.done, self.cfg.count, t.connections, t.retransmits
        )];
        if let Some(i) = &t.last {
            if i.remote.port() != 0 {
                lines.push(format!("last connection {}", conn_label(i)));
            }
        }
        if let (Some(a), Some(b)) = (self.first_start, self.last_answer) {
            lines.push(format!(
                "requests of {} bytes, responses of {} bytes, from {} s to {} s",
                self.cfg.request,
                self.cfg.response,
                secs(a),
                secs(b)
            ));
        }
        if self.lookup.resolved.is_some() {
            lines.extend(self.lookup.line(&self.cfg.to_host));
        }
        push_outcome(&mut lines, self.note.as_deref(), &self.log, t.state);
        self.lines = lines;
    }

    fn report(&self) -> Vec<String> {
        self.lines.clone()
    }
}

// ---------------------------------------------------------------------- server

#[derive(Clone, Debug, PartialEq)]
pub struct TcpServerConfig {
    pub name: String,
    pub port: u16,
    pub backlog: u32,
    /// Answer every request with this many bytes, whatever its header asks.
    pub response: Option<u64>,
    pub opts: SockOpts,
}

#[derive(Debug)]
struct ServerConn {
    sock: TcpSocketId,
    /// Header bytes collected so far (a complete header moves to `body_left`).
    header: Vec<u8>,
    /// Request bytes still to skip after the header, and the response it asked for.
    body: Option<(u64, u64)>,
    /// Response bytes owed.
    owed: u64,
    eof: bool,
    open: bool,
}

/// The responder for [`TcpRequestResponse`]. See the module documentation.
pub struct TcpServer {
    cfg: TcpServerConfig,
    listener: Option<TcpSocketId>,
    conns: Vec<ServerConn>,
    requests: u64,
    resets: u64,
    error: Option<String>,
    /// Reused for every read, so reading does not allocate.
    scratch: Vec<Payload>,
}

impl TcpServer {
    pub fn new(cfg: TcpServerConfig) -> Self {
        TcpServer {
            scratch: Vec::new(),
            cfg,
            listener: None,
            conns: Vec::new(),
            requests: 0,
            resets: 0,
            error: None,
        }
    }

    fn listen(&mut self, os: &mut Os<'_, '_>) -> Result<TcpSocketId, Errno> {
        listen_with(os, self.cfg.opts, self.cfg.port, self.cfg.backlog)
    }

    /// Parses request bytes from connection `i`, counting completed requests and the
    /// response bytes they are owed.
    fn parse(&mut self, i: usize, pieces: &[Payload]) {
        let fixed = self.cfg.response;
        let c = &mut self.conns[i];
        for p in pieces {
            let mut off = 0usize;
            while off < p.len() {
                match c.body {
                    None => {
                        let take = (RR_HEADER_LEN as usize - c.header.len()).min(p.len() - off);
                        slice_payload(p, off, take).write_to(&mut c.header);
                        off += take;
                        if c.header.len() == RR_HEADER_LEN as usize {
                            let mut h = [0u8; 16];
                            h.copy_from_slice(&c.header);
                            c.header.clear();
                            let (req, resp) = decode_request_header(&h);
                            c.body = Some((
                                req.max(RR_HEADER_LEN as u64) - RR_HEADER_LEN as u64,
                                fixed.unwrap_or(resp),
                            ));
                        }
                    }
                    Some((left, resp)) => {
                        let take = (left as usize).min(p.len() - off);
                        off += take;
                        c.body = Some((left - take as u64, resp));
                    }
                }
                if let Some((0, resp)) = c.body {
                    c.body = None;
                    c.owed += resp;
                    self.requests += 1;
                }
            }
        }
    }

    fn service(&mut self, os: &mut Os<'_, '_>, i: usize) {
        let mut pieces = std::mem::take(&mut self.scratch);
        self.service_into(os, i, &mut pieces);
        pieces.clear();
        self.scratch = pieces;
    }

    fn service_into(&mut self, os: &mut Os<'_, '_>, i: usize, pieces: &mut Vec<Payload>) {
        // Read what is there.
        while self.conns[i].open && !self.conns[i].eof {
            pieces.clear();
            match os.tcp_recv(self.conns[i].sock, READ_SIZE, pieces) {
                Ok(0) => self.conns[i].eof = true,
                Ok(_) => self.parse(i, pieces),
                Err(Errno::Again) => break,
                Err(_) => {
                    self.resets += 1;
                    self.close(os, i);
                    return;
                }
            }
        }
        // Write what is owed.
        while self.conns[i].open && self.conns[i].owed > 0 {
            let n = self.conns[i].owed.min(WRITE_SIZE);
            match os.tcp_send(self.conns[i].sock, &Payload::zeros(n as u32)) {
                Ok(k) => {
                    self.conns[i].owed -= k as u64;
                    if (k as u64) < n {
                        break;
                    }
                }
                Err(Errno::Again) => break,
                Err(_) => {
                    self.resets += 1;
                    self.close(os, i);
                    return;
                }
            }
        }
        if self.conns[i].eof && self.conns[i].owed == 0 {
            self.close(os, i);
        }
    }

    fn close(&mut self, os: &mut Os<'_, '_>, i: usize) {
        let c = &mut self.conns[i];
        if c.open {
            c.open = false;
            let _ = os.tcp_close(c.sock);
        }
    }
}

impl App for TcpServer {
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
                self.conns.push(ServerConn {
                    sock: s,
                    header: Vec::new(),
                    body: None,
                    owed: 0,
                    eof: false,
                    open: true,
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
                "tcp server on port {}: listen failed: {e}",
                self.cfg.port
            )];
        }
        let mut v = vec![format!(
            "tcp server on port {}: {} connections, answered {} requests",
            self.cfg.port,
            self.conns.len(),
            self.requests
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_header_round_trips() {
        let h = encode_request_header(100, 123_456);
        assert_eq!(decode_request_header(&h), (100, 123_456));
    }

    #[test]
    fn the_server_frames_requests_split_anywhere() {
        let mut s = TcpServer::new(TcpServerConfig {
            name: "s".into(),
            port: 80,
            backlog: 1,
            response: None,
            opts: SockOpts::default(),
        });
        s.conns.push(ServerConn {
            sock: TcpSocketId { slot: 0, gen: 0 },
            header: Vec::new(),
            body: None,
            owed: 0,
            eof: false,
            open: true,
        });
        // Two requests of 40 bytes asking for 1000 and 7 bytes, cut at odd places.
        let mut bytes = Vec::new();
        Payload::with_head(&encode_request_header(40, 1000), 40).write_to(&mut bytes);
        Payload::with_head(&encode_request_header(40, 7), 40).write_to(&mut bytes);
        let pieces = [
            Payload::bytes(&bytes[..5]),
            Payload::bytes(&bytes[5..17]),
            Payload::bytes(&bytes[17..60]),
            Payload::bytes(&bytes[60..]),
        ];
        s.parse(0, &pieces[..3]);
        assert_eq!((s.requests, s.conns[0].owed), (1, 1000));
        s.parse(0, &pieces[3..]);
        assert_eq!((s.requests, s.conns[0].owed), (2, 1007));
        // A header-only request (length below 16) completes at once.
        s.parse(0, &[Payload::bytes(&encode_request_header(3, 5))]);
        assert_eq!((s.requests, s.conns[0].owed), (3, 1012));
    }
}

//! A host's TCP: the socket API, port binding, demultiplexing, listen queues and SYN
//! cookies, and resets for segments that belong to no connection.
//!
//! Owns the socket table and the 4-tuple and listener indexes. Each connection's protocol
//! behaviour lives in `conn`; this module decides which connection a segment is for,
//! creates connections for SYNs that reach a listener (or answers with a SYN cookie), and
//! moves completed ones to the accept queue (Linux `tcp_v4_rcv`, `tcp_conn_request`,
//! `tcp_check_req`, `inet_csk_accept`).

use super::cc;
use super::config::{Errno, SockOpts, TcpConfig};
use super::conn::{Conn, Ctx, InputOutcome};
use super::seq::SeqNum;
use super::timer::TimerQueue;
use super::wire::{flags, TcpOptions, TcpRepr};
use super::{Shutdown, TcpCounters, TcpEnv, TcpEvent, TcpInfo, TcpSocketId, TcpState};
use sim_core::packet::{Ecn, Payload, TransportPacket, UnreachableCode};
use sim_core::rng::SimRng;
use sim_core::time::SimTime;
use sim_core::trace::TraceValue;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

pub const EPHEMERAL_LOW: u16 = 32768;
pub const EPHEMERAL_HIGH: u16 = 60999;

/// Linux's SYN-cookie MSS table (`msstab`).
const COOKIE_MSS: [u16; 4] = [536, 1300, 1440, 1460];
const COOKIE_BITS: u32 = 24;
/// Cookies older than this many 64-second periods are refused (Linux MAX_SYNCOOKIE_AGE).
const COOKIE_MAX_AGE: u32 = 2;

/// A listening socket's queues.
#[derive(Debug, Default)]
pub struct ListenState {
    /// min(backlog, somaxconn).
    pub backlog: u32,
    /// Established connections waiting for accept().
    pub accept_q: VecDeque<TcpSocketId>,
    /// Half-open children (SYN_RECV).
    pub syn_q: u32,
    /// When a SYN cookie was last sent (cookies are only accepted shortly after).
    pub last_cookie: Option<SimTime>,
}

struct Slot {
    gen: u32,
    conn: Option<Box<Conn>>,
}

type FourTuple = (Ipv4Addr, u16, Ipv4Addr, u16);

/// The TCP sockets of one host.
pub struct TcpStack {
    cfg: TcpConfig,
    slots: Vec<Slot>,
    free: Vec<u32>,
    conns: BTreeMap<FourTuple, u32>,
    listeners: BTreeMap<(u16, Ipv4Addr), u32>,
    /// (port, slot) of every socket holding a local port.
    bound: BTreeSet<(u16, u32)>,
    timers: TimerQueue,
    next_ephemeral: u16,
    secret: u64,
    counters: TcpCounters,
}

fn mix(mut x: u64) -> u64 {
    // SplitMix64's finalizer: a fixed, well-distributed mixing function.
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn tuple_hash(secret: u64, t: &FourTuple, salt: u64) -> u64 {
    let a = (u32::from(t.0) as u64) << 32 | u32::from(t.2) as u64;
    let b = (t.1 as u64) << 16 | t.3 as u64;
    mix(secret ^ mix(a ^ mix(b ^ mix(salt))))
}

impl TcpStack {
    /// A stack with `cfg`; `rng` seeds the host's secret (ISNs, timestamps, cookies) and
    /// the ephemeral port cursor.
    pub fn new(cfg: TcpConfig, rng: &mut SimRng) -> Self {
        let span = (EPHEMERAL_HIGH - EPHEMERAL_LOW) as u64 + 1;
        TcpStack {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            conns: BTreeMap::new(),
            listeners: BTreeMap::new(),
            bound: BTreeSet::new(),
            timers: TimerQueue::default(),
            next_ephemeral: EPHEMERAL_LOW + rng.below(span) as u16,
            secret: rng.next_u64(),
            counters: TcpCounters::default(),
        }
    }

    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }
    pub fn counters(&self) -> &TcpCounters {
        &self.counters
    }
    /// When the stack next needs [`TcpStack::on_timers`].
    pub fn poll_at(&self) -> Option<SimTime> {
        self.timers.next()
    }

    fn conn(&self, id: TcpSocketId) -> Result<&Conn, Errno> {
        match self.slots.get(id.slot as usize) {
            Some(Slot { gen, conn: Some(c) }) if *gen == id.gen => Ok(c),
            _ => Err(Errno::BadF),
        }
    }

    fn conn_mut(&mut self, id: TcpSocketId) -> Result<&mut Conn, Errno> {
        match self.slots.get_mut(id.slot as usize) {
            Some(Slot { gen, conn: Some(c) }) if *gen == id.gen => Ok(c),
            _ => Err(Errno::BadF),
        }
    }

    /// Runs `f` on a connection with the context it needs.
    fn with<R>(
        &mut self,
        env: &mut dyn TcpEnv,
        id: TcpSocketId,
        f: impl FnOnce(&mut Conn, &mut Ctx<'_>) -> R,
    ) -> Result<R, Errno> {
        let now = env.now();
        let TcpStack {
            slots,
            timers,
            cfg,
            counters,
            ..
        } = self;
        let conn = match slots.get_mut(id.slot as usize) {
            Some(Slot { gen, conn: Some(c) }) if *gen == id.gen => c,
            _ => return Err(Errno::BadF),
        };
        let mut ctx = Ctx {
            now,
            cfg,
            env,
            timers,
            counters,
        };
        Ok(f(conn, &mut ctx))
    }

    fn alloc(&mut self, owner: Option<usize>, opts: SockOpts) -> TcpSocketId {
        let cc = controller(&self.cfg, &opts);
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot { gen: 0, conn: None });
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        let id = TcpSocketId { slot, gen: s.gen };
        s.conn = Some(Box::new(Conn::new(id, owner, &self.cfg, opts, cc)));
        id
    }

    /// Forgets a connection entirely.
    fn free_slot(&mut self, id: TcpSocketId) {
        self.unhash(id);
        if let Some(s) = self.slots.get_mut(id.slot as usize) {
            if s.gen == id.gen && s.conn.is_some() {
                s.conn = None;
                s.gen = s.gen.wrapping_add(1);
                self.free.push(id.slot);
            }
        }
    }

    /// Removes a connection from the lookup tables and releases its port.
    fn unhash(&mut self, id: TcpSocketId) {
        let Ok(c) = self.conn(id) else { return };
        let key = (
            *c.local.ip(),
            c.local.port(),
            *c.remote.ip(),
            c.remote.port(),
        );
        let port = c.local.port();
        let listen_key = (port, *c.local.ip());
        if self.conns.get(&key) == Some(&id.slot) {
            self.conns.remove(&key);
        }
        if self.listeners.get(&listen_key) == Some(&id.slot) {
            self.listeners.remove(&listen_key);
        }
        self.bound.remove(&(port, id.slot));
    }

    /// A connection reached CLOSED: unhash it, and free it unless an application still
    /// holds it (it learns of the error on its next call).
    fn release(&mut self, env: &mut dyn TcpEnv, id: TcpSocketId) {
        let Ok(c) = self.conn(id) else { return };
        let parent = c.parent;
        let owned = c.owner.is_some();
        self.unhash(id);
        if let Some(pid) = parent {
            let in_accept_q = self
                .conn(pid)
                .ok()
                .and_then(|l| l.listen.as_ref())
                .is_some_and(|l| l.accept_q.contains(&id));
            if in_accept_q {
                // accept() will hand it over; the application then sees the error.
                return;
            }
            if let Ok(l) = self.conn_mut(pid) {
                if let Some(ls) = l.listen.as_mut() {
                    ls.syn_q = ls.syn_q.saturating_sub(1);
                }
            }
            self.free_slot(id);
            return;
        }
        if !owned {
            self.free_slot(id);
        }
        let _ = env;
    }

    // ------------------------------------------------------------------ socket API

    pub fn socket(&mut self, owner: usize) -> TcpSocketId {
        self.alloc(Some(owner), SockOpts::default())
    }

    /// setsockopt(): turning SO_KEEPALIVE on arms the keepalive timer, as in Linux.
    pub fn set_opts(
        &mut self,
        env: &mut dyn TcpEnv,
        id: TcpSocketId,
        f: impl FnOnce(&mut SockOpts),
    ) -> Result<(), Errno> {
        self.with(env, id, |c, ctx| {
            let before = c.opts;
            f(&mut c.opts);
            if !before.keepalive && c.opts.keepalive {
                c.arm_keepalive(ctx);
            }
            if before.congestion != c.opts.congestion {
                c.set_controller(ctx, controller(ctx.cfg, &c.opts));
            }
        })
    }

    pub fn opts(&self, id: TcpSocketId) -> Result<SockOpts, Errno> {
        Ok(self.conn(id)?.opts)
    }

    /// Would binding `addr` for socket `id` conflict (Linux `inet_csk_bind_conflict`)?
    fn bind_conflict(&self, id: TcpSocketId, addr: SocketAddrV4) -> bool {
        let Ok(me) = self.conn(id) else { return true };
        let reuse = me.opts.reuse_addr;
        self.bound
            .range((addr.port(), 0)..=(addr.port(), u32::MAX))
            .filter(|(_, slot)| *slot != id.slot)
            .filter_map(|(_, slot)| self.slots[*slot as usize].conn.as_deref())
            .any(|other| {
                let overlap = addr.ip().is_unspecified()
                    || other.local.ip().is_unspecified()
                    || other.local.ip() == addr.ip();
                overlap && !(reuse && other.opts.reuse_addr && other.state != TcpState::Listen)
            })
    }

    pub fn bind(
        &mut self,
        env: &mut dyn TcpEnv,
        id: TcpSocketId,
        addr: SocketAddrV4,
    ) -> Result<(), Errno> {
        let c = self.conn(id)?;
        if c.state != TcpState::Closed || c.local.port() != 0 {
            return Err(Errno::Inval);
        }
        if !addr.ip().is_unspecified() && !env.is_local(*addr.ip()) {
            return Err(Errno::AddrNotAvail);
        }
        let addr = if addr.port() == 0 {
            let port = self.pick_ephemeral(|s, p| !s.bound_any(p))?;
            SocketAddrV4::new(*addr.ip(), port)
        } else {
            addr
        };
        if self.bind_conflict(id, addr) {
            return Err(Errno::AddrInUse);
        }
        self.conn_mut(id)?.local = addr;
        self.bound.insert((addr.port(), id.slot));
        Ok(())
    }

    fn bound_any(&self, port: u16) -> bool {
        self.bound
            .range((port, 0)..=(port, u32::MAX))
            .next()
            .is_some()
    }

    /// The next free ephemeral port (Linux walks the range from a random start).
    fn pick_ephemeral(&mut self, ok: impl Fn(&Self, u16) -> bool) -> Result<u16, Errno> {
        let span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
        for _ in 0..span {
            let p = self.next_ephemeral;
            self.next_ephemeral = if p >= EPHEMERAL_HIGH {
                EPHEMERAL_LOW
            } else {
                p + 1
            };
            if ok(self, p) {
                return Ok(p);
            }
        }
        Err(Errno::AddrNotAvail)
    }

    pub fn listen(
        &mut self,
        env: &mut dyn TcpEnv,
        id: TcpSocketId,
        backlog: u32,
    ) -> Result<(), Errno> {
        let c = self.conn(id)?;
        match c.state {
            TcpState::Listen => {
                let b = backlog.min(self.cfg.somaxconn);
                if let Some(l) = self.conn_mut(id)?.listen.as_mut() {
                    l.backlog = b;
                }
                return Ok(());
            }
            TcpState::Closed => {}
            _ => return Err(Errno::Inval),
        }
        if c.local.port() == 0 {
            self.bind(env, id, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        }
        let c = self.conn(id)?;
        let key = (c.local.port(), *c.local.ip());
        // Two listeners on one port need distinct addresses, whatever SO_REUSEADDR says.
        let clash = self.listeners.iter().any(|((p, ip), _)| {
            *p == key.0 && (ip.is_unspecified() || key.1.is_unspecified() || *ip == key.1)
        });
        if clash {
            return Err(Errno::AddrInUse);
        }
        let backlog = backlog.min(self.cfg.somaxconn);
        self.listeners.insert(key, id.slot);
        self.with(env, id, |c, ctx| {
            c.listen = Some(Box::new(ListenState {
                backlog,
                ..ListenState::default()
            }));
            c.set_state(ctx, TcpState::Listen);
        })?;
        Ok(())
    }

    /// accept(): the oldest established connection, or EAGAIN.
    pub fn accept(
        &mut self,
        env: &mut dyn TcpEnv,
        id: TcpSocketId,
    ) -> Result<(TcpSocketId, SocketAddrV4), Errno> {
        let l = self.conn_mut(id)?;
        let owner = l.owner;
        let Some(ls) = l.listen.as_mut() else {
            return Err(Errno::Inval);
        };
        let Some(child) = ls.accept_q.pop_front() else {
            return Err(Errno::Again);
        };
        let more = !ls.accept_q.is_empty();
        let c = self.conn_mut(child)?;
        c.parent = None;
        c.owner = owner;
        let remote = c.remote;
        let readable = c.readable() || c.pending_err.is_some();
        if let Some(o) = owner {
            if readable {
                env.notify(o, child, TcpEvent::Readable);
            }
            if more {
                env.notify(o, id, TcpEvent::Incoming);
            }
        }
        Ok((child, remote))
    }

    pub fn connect(
        &mut self,
        env: &mut dyn TcpEnv,
        id: TcpSocketId,
        remote: SocketAddrV4,
    ) -> Result<(), Errno> {
        let c = self.conn(id)?;
        match c.state {
            TcpState::Closed if c.remote.port() == 0 => {}
            TcpState::SynSent => return Err(Errno::Already),
            TcpState::Closed => return Err(Errno::Inval),
            _ => return Err(Errno::IsConn),
        }
        if remote.port() == 0 {
            return Err(Errno::ConnRefused);
        }
        let (src, mtu) = if env.is_local(*remote.ip()) {
            (*remote.ip(), 65536)
        } else {
            env.route(*remote.ip()).ok_or(Errno::NetUnreach)?
        };
        let bound = c.local;
        let local_ip = if bound.ip().is_unspecified() {
            src
        } else {
            *bound.ip()
        };
        let local = if bound.port() == 0 {
            let r = remote;
            let port = self.pick_ephemeral(|s, p| {
                !s.bound_any(p) && !s.conns.contains_key(&(local_ip, p, *r.ip(), r.port()))
            })?;
            self.bound.insert((port, id.slot));
            SocketAddrV4::new(local_ip, port)
        } else {
            SocketAddrV4::new(local_ip, bound.port())
        };
        let key = (local_ip, local.port(), *remote.ip(), remote.port());
        if self.conns.contains_key(&key) {
            return Err(Errno::AddrNotAvail);
        }
        let isn = self.isn(env.now(), &key);
        let ts_off = tuple_hash(self.secret, &(local_ip, 0, *remote.ip(), 0), 2) as u32;
        self.conns.insert(key, id.slot);
        let r = self.with(env, id, |c, ctx| {
            c.connect(ctx, local, remote, mtu, isn, ts_off)
        })?;
        if let Err(e) = r {
            self.unhash(id);
            self.with(env, id, |c, ctx| c.set_state(ctx, TcpState::Closed))?;
            if let Ok(c) = self.conn_mut(id) {
                c.remote = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
                c.local = bound;
            }
            if bound.port() != 0 {
                self.bound.insert((bound.port(), id.slot));
            }
            return Err(e);
        }
        Ok(())
    }

    /// Linux `secure_tcp_seq`: a keyed hash of the 4-tuple plus a 64 ns clock.
    fn isn(&self, now: SimTime, key: &FourTuple) -> SeqNum {
        let h = tuple_hash(self.secret, key, 1) as u32;
        SeqNum(h.wrapping_add((now.as_nanos() >> 6) as u32))
    }

    pub fn send(
        &mut self,
        env: &mut dyn TcpEnv,
        id: TcpSocketId,
        data: &Payload,
    ) -> Result<usize, Errno> {
        self.with(env, id, |c, ctx| c.api_send(ctx, data))?
    }

    /// Writes as much of `data` as fits, like a blocking loop would over time: returns the
    /// bytes taken (possibly 0 with EAGAIN semantics folded into `Ok(0)`).
    pub fn recv(
        &mut self,
        env: &mut dyn TcpEnv,
        id: TcpSocketId,
        max: usize,
        out: &mut Vec<Payload>,
    ) -> Result<usize, Errno> {
        self.with(env, id, |c, ctx| c.api_recv(ctx, max, out))?
    }

    pub fn shutdown(
        &mut self,
        env: &mut dyn TcpEnv,
        id: TcpSocketId,
        how: Shutdown,
    ) -> Result<(), Errno> {
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.conn_mut(id)?.shut_rd = true;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            let gone = self.with(env, id, |c, ctx| {
                let r = c.api_shutdown_write(ctx);
                (r, c.state == TcpState::Closed)
            })?;
            if gone.1 {
                self.unhash(id);
            }
            return gone.0;
        }
        Ok(())
    }

    /// close(): the application lets go of the socket.
    pub fn close(&mut self, env: &mut dyn TcpEnv, id: TcpSocketId) -> Result<(), Errno> {
        let c = self.conn(id)?;
        if c.state == TcpState::Listen {
            self.close_listener(env, id);
            return Ok(());
        }
        let gone = self.with(env, id, |c, ctx| c.api_close(ctx))?;
        if gone {
            self.free_slot(id);
        }
        Ok(())
    }

    fn close_listener(&mut self, env: &mut dyn TcpEnv, id: TcpSocketId) {
        // Children: half-open ones vanish; accepted-queue ones are reset (Linux
        // inet_csk_listen_stop).
        let children: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.conn.as_ref().is_some_and(|c| c.parent == Some(id)))
            .map(|(i, _)| i as u32)
            .collect();
        for slot in children {
            let gen = self.slots[slot as usize].gen;
            let cid = TcpSocketId { slot, gen };
            let _ = self.with(env, cid, |c, ctx| {
                if c.state != TcpState::SynReceived {
                    c.send_reset(ctx);
                }
                c.clear_all_timers();
            });
            self.free_slot(cid);
        }
        let _ = self.with(env, id, |c, ctx| {
            c.listen = None;
            c.set_state(ctx, TcpState::Closed);
        });
        self.free_slot(id);
    }

    /// Closes every socket an application holds (the process was killed: RB-TCP-21).
    pub fn close_owned_by(&mut self, env: &mut dyn TcpEnv, owner: usize) {
        let ids: Vec<TcpSocketId> = self
            .slots
            .iter()
            .filter_map(|s| s.conn.as_ref())
            .filter(|c| c.owner == Some(owner) && c.parent.is_none())
            .map(|c| c.id)
            .collect();
        for id in ids {
            let _ = self.close(env, id);
        }
    }

    pub fn info(&self, id: TcpSocketId) -> Result<TcpInfo, Errno> {
        Ok(self.conn(id)?.info())
    }

    pub fn state(&self, id: TcpSocketId) -> Result<TcpState, Errno> {
        Ok(self.conn(id)?.state)
    }

    /// Free space in the send buffer.
    pub fn send_space(&self, id: TcpSocketId) -> Result<u64, Errno> {
        Ok(self.conn(id)?.send_space())
    }

    /// Every live connection (for reports): id, owner, info.
    pub fn connections(&self) -> impl Iterator<Item = (TcpSocketId, Option<usize>, TcpInfo)> + '_ {
        self.slots
            .iter()
            .filter_map(|s| s.conn.as_deref())
            .filter(|c| c.state != TcpState::Listen)
            .map(|c| (c.id, c.owner, c.info()))
    }

    // ------------------------------------------------------------------ input

    /// The listener for `port` on `dst`: bound to that address, or to all addresses.
    fn listener_for(&self, port: u16, dst: Ipv4Addr) -> Option<u32> {
        self.listeners
            .get(&(port, dst))
            .or_else(|| self.listeners.get(&(port, Ipv4Addr::UNSPECIFIED)))
            .copied()
    }

    /// A TCP segment arrived for `dst` from `src`, with `ecn` in its IP header's ECN field.
    pub fn input(
        &mut self,
        env: &mut dyn TcpEnv,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ecn: Ecn,
        pkt: &TransportPacket,
    ) {
        self.counters.segs_in += 1;
        let seg = match TcpRepr::parse(pkt) {
            Ok(s) => s,
            Err(_) => {
                self.counters.malformed += 1;
                if env.tracing() {
                    env.trace("tcp_malformed", &[("src", TraceValue::Ip(src))]);
                }
                return;
            }
        };
        let payload = &pkt.payload;
        let key = (dst, seg.dst_port, src, seg.src_port);
        if let Some(&slot) = self.conns.get(&key) {
            let id = TcpSocketId {
                slot,
                gen: self.slots[slot as usize].gen,
            };
            let outcome = self
                .with(env, id, |c, ctx| c.input(ctx, &seg, payload, ecn))
                .unwrap_or(InputOutcome::Nothing);
            self.handle_outcome(env, id, outcome, src, dst, &seg, payload, ecn);
            return;
        }
        let listener = self.listener_for(seg.dst_port, dst);
        if let Some(slot) = listener {
            let id = TcpSocketId {
                slot,
                gen: self.slots[slot as usize].gen,
            };
            self.listen_input(env, id, src, dst, &seg, payload, ecn);
            return;
        }
        // Nobody here (RB-TCP-03): reset, unless it is a reset.
        if env.tracing() {
            env.trace(
                "tcp_no_socket",
                &[("src", TraceValue::Ip(src)), ("port", seg.dst_port.into())],
            );
        }
        self.reset_for(env, src, dst, &seg, payload.len());
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_outcome(
        &mut self,
        env: &mut dyn TcpEnv,
        id: TcpSocketId,
        outcome: InputOutcome,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &TcpRepr,
        payload: &Payload,
        ecn: Ecn,
    ) {
        match outcome {
            InputOutcome::Nothing => {}
            InputOutcome::Closed => self.release(env, id),
            InputOutcome::Reset => self.reset_for(env, src, dst, seg, payload.len()),
            InputOutcome::Established => self.child_established(env, id, seg, payload, ecn),
            InputOutcome::Reopen => {
                self.free_slot(id);
                let listener = self.listener_for(seg.dst_port, dst);
                if let Some(slot) = listener {
                    let lid = TcpSocketId {
                        slot,
                        gen: self.slots[slot as usize].gen,
                    };
                    self.listen_input(env, lid, src, dst, seg, payload, ecn);
                } else {
                    self.reset_for(env, src, dst, seg, payload.len());
                }
            }
        }
    }

    /// A SYN_RECV child got its final ACK: into the accept queue if there is room
    /// (RB-TCP-06).
    fn child_established(
        &mut self,
        env: &mut dyn TcpEnv,
        id: TcpSocketId,
        seg: &TcpRepr,
        payload: &Payload,
        ecn: Ecn,
    ) {
        let Ok(c) = self.conn(id) else { return };
        let Some(pid) = c.parent else {
            return;
        };
        let Ok(l) = self.conn(pid) else {
            // The listener is gone.
            let _ = self.with(env, id, |c, ctx| {
                c.send_reset(ctx);
                c.clear_all_timers();
            });
            self.free_slot(id);
            return;
        };
        let (full, owner) = match l.listen.as_ref() {
            // Linux sk_acceptq_is_full: the queue holds backlog + 1 before it is "full".
            Some(ls) => (ls.accept_q.len() as u32 > ls.backlog, l.owner),
            None => (true, l.owner),
        };
        if full {
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            if env.tracing() {
                env.trace("tcp_listen_overflow", &[("port", seg.dst_port.into())]);
            }
            if self.cfg.abort_on_overflow {
                let _ = self.with(env, id, |c, ctx| {
                    c.send_reset(ctx);
                    c.set_state(ctx, TcpState::Closed);
                    c.clear_all_timers();
                });
                self.release(env, id);
            } else if let Ok(c) = self.conn_mut(id) {
                // The ACK is dropped; the SYN-ACK timer will ask the client again.
                c.acked_while_full = true;
            }
            return;
        }
        if let Ok(l) = self.conn_mut(pid) {
            if let Some(ls) = l.listen.as_mut() {
                ls.syn_q = ls.syn_q.saturating_sub(1);
                ls.accept_q.push_back(id);
            }
        }
        let outcome = self
            .with(env, id, |c, ctx| {
                c.finish_passive_open(ctx, seg, payload, ecn)
            })
            .unwrap_or(InputOutcome::Nothing);
        if let Some(o) = owner {
            env.notify(o, pid, TcpEvent::Incoming);
        }
        if outcome == InputOutcome::Closed {
            self.release(env, id);
        }
    }

    /// A segment for a listening socket (Linux `tcp_v4_rcv` in LISTEN, `tcp_conn_request`).
    #[allow(clippy::too_many_arguments)]
    fn listen_input(
        &mut self,
        env: &mut dyn TcpEnv,
        lid: TcpSocketId,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &TcpRepr,
        payload: &Payload,
        ecn: Ecn,
    ) {
        if seg.has(flags::RST) {
            return;
        }
        let local = SocketAddrV4::new(dst, seg.dst_port);
        let remote = SocketAddrV4::new(src, seg.src_port);
        if seg.has(flags::ACK) {
            if !seg.has(flags::SYN) && self.try_cookie(env, lid, local, remote, seg, payload, ecn) {
                return;
            }
            self.reset_for(env, src, dst, seg, payload.len());
            return;
        }
        if !seg.has(flags::SYN) {
            return;
        }
        let Ok(l) = self.conn(lid) else { return };
        let Some(ls) = l.listen.as_ref() else { return };
        let (backlog, syn_q, accept_len) = (ls.backlog, ls.syn_q, ls.accept_q.len() as u32);
        let opts = l.opts;
        let owner = l.owner;
        let mut want_cookie = false;
        if self.cfg.syncookies == 2 || syn_q >= backlog {
            if self.cfg.syncookies == 0 {
                self.counters.listen_drops += 1;
                self.trace_drop(env, "syn_queue_full", seg);
                return;
            }
            want_cookie = true;
        }
        if accept_len > backlog {
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            self.trace_drop(env, "accept_queue_full", seg);
            return;
        }
        if !want_cookie
            && self.cfg.syncookies == 0
            && self.cfg.max_syn_backlog.saturating_sub(syn_q) < self.cfg.max_syn_backlog >> 2
        {
            self.counters.listen_drops += 1;
            self.trace_drop(env, "syn_backlog", seg);
            return;
        }
        let mtu = env.route(src).map_or(1500, |(_, m)| m);
        if want_cookie {
            self.send_cookie(env, lid, local, remote, seg, mtu);
            return;
        }
        let key = (dst, seg.dst_port, src, seg.src_port);
        let isn = self.isn(env.now(), &key);
        let ts_off = tuple_hash(self.secret, &(dst, 0, src, 0), 2) as u32;
        let cid = self.alloc(owner, opts);
        if let Ok(c) = self.conn_mut(cid) {
            c.parent = Some(lid);
        }
        self.conns.insert(key, cid.slot);
        self.bound.insert((seg.dst_port, cid.slot));
        if let Ok(l) = self.conn_mut(lid) {
            if let Some(ls) = l.listen.as_mut() {
                ls.syn_q += 1;
            }
        }
        let _ = self.with(env, cid, |c, ctx| {
            c.accept_syn(ctx, local, remote, mtu, seg, ecn, isn, ts_off)
        });
    }

    fn trace_drop(&self, env: &mut dyn TcpEnv, why: &'static str, seg: &TcpRepr) {
        if env.tracing() {
            env.trace(
                "tcp_syn_dropped",
                &[
                    ("reason", TraceValue::Str(why)),
                    ("port", seg.dst_port.into()),
                ],
            );
        }
    }

    fn cookie_time(now: SimTime) -> u32 {
        (now.as_nanos() / 64_000_000_000) as u32
    }

    /// Linux `secure_tcp_syn_cookie`.
    fn cookie(&self, key: &FourTuple, peer_isn: SeqNum, count: u32, data: u32) -> u32 {
        let mask = (1u32 << COOKIE_BITS) - 1;
        let h1 = tuple_hash(self.secret, key, 0x100) as u32;
        let h2 = tuple_hash(self.secret, key, 0x200 + count as u64) as u32;
        h1.wrapping_add(peer_isn.0)
            .wrapping_add(count << COOKIE_BITS)
            .wrapping_add(h2.wrapping_add(data) & mask)
    }

    /// Linux `check_tcp_syn_cookie`: the MSS index, if the cookie is valid and fresh.
    fn check_cookie(
        &self,
        key: &FourTuple,
        peer_isn: SeqNum,
        cookie: u32,
        now: SimTime,
    ) -> Option<u32> {
        let mask = (1u32 << COOKIE_BITS) - 1;
        let h1 = tuple_hash(self.secret, key, 0x100) as u32;
        let rest = cookie.wrapping_sub(h1).wrapping_sub(peer_isn.0);
        let count_now = Self::cookie_time(now);
        let diff = count_now.wrapping_sub(rest >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
        if diff >= COOKIE_MAX_AGE {
            return None;
        }
        let count = count_now.wrapping_sub(diff);
        let h2 = tuple_hash(self.secret, key, 0x200 + count as u64) as u32;
        let data = rest.wrapping_sub(h2) & mask;
        (data < COOKIE_MSS.len() as u32).then_some(data)
    }

    fn send_cookie(
        &mut self,
        env: &mut dyn TcpEnv,
        lid: TcpSocketId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        syn: &TcpRepr,
        mtu: u32,
    ) {
        let key = (*local.ip(), local.port(), *remote.ip(), remote.port());
        let peer_mss = syn
            .options
            .mss
            .unwrap_or(536)
            .min(mtu.saturating_sub(40) as u16);
        let idx = COOKIE_MSS.iter().rposition(|&m| m <= peer_mss).unwrap_or(0) as u32;
        let now = env.now();
        let isn = self.cookie(&key, syn.seq, Self::cookie_time(now), idx);
        self.counters.syncookies_sent += 1;
        if let Ok(l) = self.conn_mut(lid) {
            if let Some(ls) = l.listen.as_mut() {
                ls.last_cookie = Some(now);
            }
        }
        let repr = TcpRepr {
            src_port: local.port(),
            dst_port: remote.port(),
            seq: SeqNum(isn),
            ack: syn.seq + 1,
            flags: flags::SYN | flags::ACK,
            window: 64240,
            options: TcpOptions {
                mss: Some(COOKIE_MSS[idx as usize]),
                ..TcpOptions::default()
            },
        };
        if env.tracing() {
            env.trace(
                "tcp_syncookie_sent",
                &[("src", TraceValue::Ip(*remote.ip()))],
            );
        }
        self.counters.segs_out += 1;
        let _ = env.send(
            *local.ip(),
            *remote.ip(),
            Ecn::NotEct,
            repr.emit(Payload::empty()),
        );
    }

    /// An ACK for a listener: is it the end of a SYN-cookie handshake?
    #[allow(clippy::too_many_arguments)]
    fn try_cookie(
        &mut self,
        env: &mut dyn TcpEnv,
        lid: TcpSocketId,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr,
        payload: &Payload,
        ecn: Ecn,
    ) -> bool {
        if self.cfg.syncookies == 0 {
            return false;
        }
        let now = env.now();
        let Ok(l) = self.conn(lid) else { return false };
        let Some(ls) = l.listen.as_ref() else {
            return false;
        };
        let recent = ls
            .last_cookie
            .is_some_and(|t| now.saturating_since(t).as_nanos() < 2 * 64_000_000_000)
            || self.cfg.syncookies == 2;
        if !recent {
            return false;
        }
        let (backlog, accept_len, owner, opts) =
            (ls.backlog, ls.accept_q.len() as u32, l.owner, l.opts);
        let key = (*local.ip(), local.port(), *remote.ip(), remote.port());
        let Some(idx) = self.check_cookie(&key, seg.seq - 1, (seg.ack - 1).0, now) else {
            self.counters.syncookies_failed += 1;
            return false;
        };
        self.counters.syncookies_recv += 1;
        if accept_len > backlog {
            self.counters.listen_overflows += 1;
            self.counters.listen_drops += 1;
            return true;
        }
        let mtu = env.route(*remote.ip()).map_or(1500, |(_, m)| m);
        let cid = self.alloc(owner, opts);
        if let Ok(c) = self.conn_mut(cid) {
            c.parent = Some(lid);
        }
        self.conns.insert(key, cid.slot);
        self.bound.insert((local.port(), cid.slot));
        if let Ok(l) = self.conn_mut(lid) {
            if let Some(ls) = l.listen.as_mut() {
                ls.accept_q.push_back(cid);
            }
        }
        self.counters.passive_opens += 1;
        let mss = COOKIE_MSS[idx as usize] as u32;
        let outcome = self
            .with(env, cid, |c, ctx| {
                c.establish_from_cookie(ctx, local, remote, mtu, seg, mss);
                c.finish_passive_open_data(ctx, seg, payload, ecn)
            })
            .unwrap_or(InputOutcome::Nothing);
        if let Some(o) = owner {
            env.notify(o, lid, TcpEvent::Incoming);
        }
        if outcome == InputOutcome::Closed {
            self.release(env, cid);
        }
        true
    }

    /// Answers a segment that has no connection with a reset (RFC 9293 "if the
    /// connection does not exist").
    fn reset_for(
        &mut self,
        env: &mut dyn TcpEnv,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &TcpRepr,
        len: usize,
    ) {
        if seg.has(flags::RST) {
            return;
        }
        let (seq, ack, fl) = if seg.has(flags::ACK) {
            (seg.ack, SeqNum(0), flags::RST)
        } else {
            (
                SeqNum(0),
                seg.seq + seg.seq_len(len),
                flags::RST | flags::ACK,
            )
        };
        let repr = TcpRepr {
            src_port: seg.dst_port,
            dst_port: seg.src_port,
            seq,
            ack,
            flags: fl,
            window: 0,
            options: TcpOptions::default(),
        };
        self.counters.resets_sent += 1;
        self.counters.segs_out += 1;
        if env.tracing() {
            env.trace(
                "tcp_tx",
                &[
                    (
                        "flags",
                        TraceValue::Str(if fl & flags::ACK != 0 { "R." } else { "R" }),
                    ),
                    ("seq", seq.0.into()),
                    ("ack", ack.0.into()),
                    ("len", 0u32.into()),
                    ("dst", TraceValue::Ip(src)),
                    ("dport", seg.src_port.into()),
                ],
            );
        }
        let _ = env.send(dst, src, Ecn::NotEct, repr.emit(Payload::empty()));
    }

    /// An ICMP error quoting a segment we sent from `local` to `remote` whose sequence
    /// number was `seq`.
    pub fn icmp_error(
        &mut self,
        env: &mut dyn TcpEnv,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seq: SeqNum,
        code: Option<UnreachableCode>,
        next_hop_mtu: u16,
    ) {
        let key = (*local.ip(), local.port(), *remote.ip(), remote.port());
        let Some(&slot) = self.conns.get(&key) else {
            return;
        };
        let id = TcpSocketId {
            slot,
            gen: self.slots[slot as usize].gen,
        };
        let (err, mtu) = match code {
            None => (Errno::HostUnreach, None), // time exceeded
            Some(UnreachableCode::Net) => (Errno::NetUnreach, None),
            Some(UnreachableCode::Host) | Some(UnreachableCode::AdminProhibited) => {
                (Errno::HostUnreach, None)
            }
            Some(UnreachableCode::Protocol) => (Errno::Proto, None),
            Some(UnreachableCode::Port) => (Errno::ConnRefused, None),
            Some(UnreachableCode::FragmentationNeeded) => {
                (Errno::MsgSize, Some(next_hop_mtu as u32))
            }
        };
        let gone = self
            .with(env, id, |c, ctx| {
                if !c.seq_in_flight(seq) {
                    return false;
                }
                if ctx.env.tracing() {
                    ctx.env.trace(
                        "tcp_icmp",
                        &[
                            ("errno", TraceValue::Str(err.name())),
                            ("seq", seq.0.into()),
                        ],
                    );
                }
                c.icmp_error(ctx, err, mtu)
            })
            .unwrap_or(false);
        if gone {
            self.release(env, id);
        }
    }

    // ------------------------------------------------------------------ time

    /// Runs every connection deadline that is due at `env.now()`.
    pub fn on_timers(&mut self, env: &mut dyn TcpEnv) {
        let now = env.now();
        while let Some((slot, gen, kind, entry)) = self.timers.pop_due(now) {
            let id = TcpSocketId { slot, gen };
            let TcpStack { slots, timers, .. } = self;
            let due = match slots.get_mut(slot as usize) {
                Some(Slot {
                    gen: g,
                    conn: Some(c),
                }) if *g == gen => c.deadlines.due(timers, slot, gen, kind, entry, now),
                _ => false,
            };
            if !due {
                continue;
            }
            let gone = self
                .with(env, id, |c, ctx| c.on_timer(ctx, kind))
                .unwrap_or(false);
            if gone {
                self.release(env, id);
            }
        }
    }

    /// Drops every connection without a word (the host crashed).
    pub fn crash(&mut self) {
        self.slots.clear();
        self.free.clear();
        self.conns.clear();
        self.listeners.clear();
        self.bound.clear();
        self.timers.clear();
    }
}

/// The controller a socket uses: its TCP_CONGESTION, else the host's default; NewReno if
/// neither names a registered one (scenario validation rejects unknown names before).
fn controller(cfg: &TcpConfig, opts: &SockOpts) -> Box<dyn cc::CongestionControl> {
    let name = opts
        .congestion
        .as_ref()
        .map_or(cfg.congestion_control.as_str(), |n| n.as_str());
    cc::by_name(name).unwrap_or_else(|| Box::new(cc::NewReno::default()))
}

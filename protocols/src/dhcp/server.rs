//! The DHCP server state machine (RFC 2131 sections 4.3 and 4.1).
//!
//! Owns the server's address pools and bindings: which address is offered to or leased by
//! which client, until when. It answers one decoded message at a time with at most one
//! reply and where to send it; it never touches sockets or the clock (the caller passes
//! the time). Expiry is lazy: a binding past its time is simply free.
//!
//! Allocation (section 4.3.1), in order: the client's reservation (by MAC); its current or
//! previous address if still free for it; the address it asks for (option 50) if free; the
//! lowest free address of the pool; and, when the pool is otherwise full, the address
//! declined longest ago (as ISC dhcpd reclaims abandoned leases). An offered address is
//! held for the client for `offer_hold`; a REQUEST naming another server withdraws the
//! offer (section 3.1 step 4). Replies go to the relay agent (giaddr), else NAKs are
//! broadcast, else to ciaddr, else broadcast if the client set the broadcast flag, else to
//! the offered address at the client's MAC without ARP (section 4.1).

use super::*;
use sim_core::route::Prefix;
use sim_core::time::SimTime;
use std::collections::BTreeMap;

/// One range of addresses on one subnet, and the options that go with it.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolConfig {
    pub subnet: Prefix,
    /// First and last address handed out (inclusive).
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
    /// Addresses in the range never handed out (e.g. configured statically).
    pub exclude: Vec<Ipv4Addr>,
    /// Option 3.
    pub router: Option<Ipv4Addr>,
    /// Option 6.
    pub dns: Vec<Ipv4Addr>,
    pub lease: SimDuration,
}

impl PoolConfig {
    fn in_range(&self, a: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&a)
    }
    /// Addresses the pool can hand out.
    pub fn size(&self) -> u64 {
        let n = u32::from(self.last) as u64 + 1 - u32::from(self.first) as u64;
        n - self.exclude.iter().filter(|a| self.in_range(**a)).count() as u64
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub pools: Vec<PoolConfig>,
    /// Fixed addresses by client MAC (inside a pool's subnet, not necessarily its range).
    pub reservations: Vec<(MacAddr, Ipv4Addr)>,
    /// How long an offered address is kept for the client.
    pub offer_hold: SimDuration,
}

/// Where a request reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// The server identifier to use: the server's address the request reached.
    pub server_id: Ipv4Addr,
    /// The subnet of the interface the request arrived on.
    pub subnet: Prefix,
}

/// Where a reply goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyDest {
    /// To the relay agent at giaddr, port 67.
    Relay(Ipv4Addr),
    /// 255.255.255.255 on the arrival interface.
    Broadcast,
    /// To the client's address (ciaddr), through the routing table.
    Unicast(Ipv4Addr),
    /// To `addr` at the client's hardware address `mac`, without ARP, on the arrival
    /// interface.
    Link { addr: Ipv4Addr, mac: MacAddr },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub msg: Message,
    pub to: ReplyDest,
}

/// What a request did, for metrics and traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Offered(Ipv4Addr),
    Acked(Ipv4Addr),
    Nakked,
    /// A REQUEST for another server: our offer was withdrawn.
    Withdrawn(Ipv4Addr),
    Declined(Ipv4Addr),
    Released(Ipv4Addr),
    /// No free address in the pool.
    Exhausted,
    /// No pool for the client's network, not our client, or not a request we answer.
    Silent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hold {
    Offered,
    Bound,
    Declined,
}

#[derive(Clone, Debug, PartialEq)]
struct Binding {
    client: Vec<u8>,
    hold: Hold,
    /// Offered and Bound: free after this. Declined: when it was declined.
    until: SimTime,
}

/// Counters a server reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCounters {
    pub discovers: u64,
    pub requests: u64,
    pub offers: u64,
    pub acks: u64,
    pub naks: u64,
    pub declines: u64,
    pub releases: u64,
    pub withdrawn: u64,
    pub exhausted: u64,
}

/// A DHCP server.
pub struct Server {
    cfg: ServerConfig,
    bindings: BTreeMap<Ipv4Addr, Binding>,
    /// Each client's most recent address.
    by_client: BTreeMap<Vec<u8>, Ipv4Addr>,
    pub counters: ServerCounters,
}

impl Server {
    pub fn new(cfg: ServerConfig) -> Self {
        Server {
            cfg,
            bindings: BTreeMap::new(),
            by_client: BTreeMap::new(),
            counters: ServerCounters::default(),
        }
    }

    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// Addresses all pools can hand out.
    pub fn pool_size(&self) -> u64 {
        self.cfg.pools.iter().map(|p| p.size()).sum()
    }

    /// Addresses leased and not expired at `now`.
    pub fn leased(&self, now: SimTime) -> u64 {
        self.bindings
            .values()
            .filter(|b| b.hold == Hold::Bound && b.until > now)
            .count() as u64
    }

    /// The client holding a lease on `addr` at `now`, if any (by client key).
    pub fn lease_holder(&self, now: SimTime, addr: Ipv4Addr) -> Option<&[u8]> {
        self.bindings
            .get(&addr)
            .filter(|b| b.hold == Hold::Bound && b.until > now)
            .map(|b| b.client.as_slice())
    }

    /// Handles one request.
    pub fn handle(&mut self, now: SimTime, msg: &Message, at: Arrival) -> (Outcome, Option<Reply>) {
        if msg.opcode() != Opcode::BootRequest {
            return (Outcome::Silent, None);
        }
        let client = client_key(msg);
        match message_type(msg) {
            MessageType::Discover => {
                self.counters.discovers += 1;
                self.discover(now, msg, at, client)
            }
            MessageType::Request => {
                self.counters.requests += 1;
                self.request(now, msg, at, client)
            }
            MessageType::Decline => (self.decline(now, msg, at, &client), None),
            MessageType::Release => (self.release(now, msg, &client), None),
            _ => (Outcome::Silent, None),
        }
    }

    // ------------------------------------------------------------------ requests

    fn discover(
        &mut self,
        now: SimTime,
        msg: &Message,
        at: Arrival,
        client: Vec<u8>,
    ) -> (Outcome, Option<Reply>) {
        let Some(pool) = self.pool_for_network(msg, at) else {
            return (Outcome::Silent, None);
        };
        let Some(addr) = self.allocate(now, pool, msg, &client) else {
            self.counters.exhausted += 1;
            return (Outcome::Exhausted, None);
        };
        let hold_until = now + self.cfg.offer_hold;
        match self.bindings.get_mut(&addr) {
            // A client asking again while it holds a lease keeps it bound.
            Some(b) if b.client == client && b.hold == Hold::Bound && b.until > now => {}
            _ => {
                self.bindings.insert(
                    addr,
                    Binding {
                        client: client.clone(),
                        hold: Hold::Offered,
                        until: hold_until,
                    },
                );
            }
        }
        self.by_client.insert(client, addr);
        self.counters.offers += 1;
        let reply = self.answer(msg, at, MessageType::Offer, addr, pool);
        (Outcome::Offered(addr), Some(reply))
    }

    fn request(
        &mut self,
        now: SimTime,
        msg: &Message,
        at: Arrival,
        client: Vec<u8>,
    ) -> (Outcome, Option<Reply>) {
        if let Some(server) = server_identifier(msg) {
            // SELECTING: the client chose a server.
            if server != at.server_id {
                return (self.withdraw(&client), None);
            }
            let Some(pool) = self.pool_for_network(msg, at) else {
                return (Outcome::Silent, None);
            };
            let Some(addr) = requested_address(msg) else {
                return self.nak(msg, at);
            };
            if self.may_lease(now, pool, addr, msg, &client) {
                return self.ack(now, msg, at, pool, addr, client);
            }
            return self.nak(msg, at);
        }
        if msg.ciaddr().is_unspecified() {
            // INIT-REBOOT: verify the client's notion of its address.
            let Some(addr) = requested_address(msg) else {
                return (Outcome::Silent, None);
            };
            let Some(pool) = self.pool_for_network(msg, at) else {
                return (Outcome::Silent, None);
            };
            if !self.cfg.pools[pool].subnet.contains(addr) {
                return self.nak(msg, at); // on the wrong network
            }
            return self.verify(now, msg, at, pool, addr, client);
        }
        // RENEWING (unicast) or REBINDING (broadcast): the client has ciaddr.
        let addr = msg.ciaddr();
        let Some(pool) = self.pool_of_address(addr) else {
            return (Outcome::Silent, None);
        };
        self.verify(now, msg, at, pool, addr, client)
    }

    /// INIT-REBOOT, RENEWING, REBINDING: ACK the client's own address, NAK an address
    /// someone else holds, and stay silent about a client we know nothing of.
    fn verify(
        &mut self,
        now: SimTime,
        msg: &Message,
        at: Arrival,
        pool: usize,
        addr: Ipv4Addr,
        client: Vec<u8>,
    ) -> (Outcome, Option<Reply>) {
        let ours = self
            .bindings
            .get(&addr)
            .is_some_and(|b| b.client == client && b.hold != Hold::Declined);
        if ours && self.may_lease(now, pool, addr, msg, &client) {
            return self.ack(now, msg, at, pool, addr, client);
        }
        let taken = self
            .bindings
            .get(&addr)
            .is_some_and(|b| b.client != client && b.hold != Hold::Declined && b.until > now);
        if taken {
            return self.nak(msg, at);
        }
        (Outcome::Silent, None)
    }

    fn withdraw(&mut self, client: &[u8]) -> Outcome {
        let Some(&addr) = self.by_client.get(client) else {
            return Outcome::Silent;
        };
        match self.bindings.get(&addr) {
            Some(b) if b.client == client && b.hold == Hold::Offered => {
                self.bindings.remove(&addr);
                self.counters.withdrawn += 1;
                Outcome::Withdrawn(addr)
            }
            _ => Outcome::Silent,
        }
    }

    fn decline(&mut self, now: SimTime, msg: &Message, at: Arrival, client: &[u8]) -> Outcome {
        if server_identifier(msg).is_some_and(|s| s != at.server_id) {
            return Outcome::Silent;
        }
        let Some(addr) = requested_address(msg) else {
            return Outcome::Silent;
        };
        match self.bindings.get_mut(&addr) {
            Some(b) if b.client == client && b.hold != Hold::Declined => {
                b.hold = Hold::Declined;
                b.until = now;
                b.client.clear();
                self.by_client.remove(client);
                self.counters.declines += 1;
                Outcome::Declined(addr)
            }
            _ => Outcome::Silent,
        }
    }

    fn release(&mut self, now: SimTime, msg: &Message, client: &[u8]) -> Outcome {
        let addr = msg.ciaddr();
        match self.bindings.get_mut(&addr) {
            Some(b) if b.client == client && b.hold == Hold::Bound => {
                b.until = now;
                self.counters.releases += 1;
                Outcome::Released(addr)
            }
            _ => Outcome::Silent,
        }
    }

    fn ack(
        &mut self,
        now: SimTime,
        msg: &Message,
        at: Arrival,
        pool: usize,
        addr: Ipv4Addr,
        client: Vec<u8>,
    ) -> (Outcome, Option<Reply>) {
        let lease = self.cfg.pools[pool].lease;
        self.bindings.insert(
            addr,
            Binding {
                client: client.clone(),
                hold: Hold::Bound,
                until: now + lease,
            },
        );
        self.by_client.insert(client, addr);
        self.counters.acks += 1;
        let reply = self.answer(msg, at, MessageType::Ack, addr, pool);
        (Outcome::Acked(addr), Some(reply))
    }

    fn nak(&mut self, msg: &Message, at: Arrival) -> (Outcome, Option<Reply>) {
        self.counters.naks += 1;
        let mut m = reply_base(msg, MessageType::Nak);
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(at.server_id));
        let to = if msg.giaddr().is_unspecified() {
            ReplyDest::Broadcast
        } else {
            // The relay agent must broadcast it (section 4.3.2).
            m.set_flags(Flags::default().set_broadcast());
            ReplyDest::Relay(msg.giaddr())
        };
        (Outcome::Nakked, Some(Reply { msg: m, to }))
    }

    // ------------------------------------------------------------------ addresses

    /// The pool for the network the client is on: the relay's (giaddr) or the arrival
    /// interface's.
    fn pool_for_network(&self, msg: &Message, at: Arrival) -> Option<usize> {
        let g = msg.giaddr();
        self.cfg.pools.iter().position(|p| {
            if g.is_unspecified() {
                p.subnet == at.subnet
            } else {
                p.subnet.contains(g)
            }
        })
    }

    fn pool_of_address(&self, a: Ipv4Addr) -> Option<usize> {
        self.cfg.pools.iter().position(|p| p.subnet.contains(a))
    }

    fn reservation_of(&self, msg: &Message) -> Option<Ipv4Addr> {
        let mac = chaddr_mac(msg)?;
        self.cfg
            .reservations
            .iter()
            .find(|(m, _)| *m == mac)
            .map(|(_, a)| *a)
    }

    fn reserved_for_other(&self, a: Ipv4Addr, msg: &Message) -> bool {
        let mac = chaddr_mac(msg);
        self.cfg
            .reservations
            .iter()
            .any(|(m, r)| *r == a && Some(*m) != mac)
    }

    /// Is `a` free for `client` at `now` (no other client offered it, leases it, or
    /// declined it)?
    fn free_for(&self, now: SimTime, a: Ipv4Addr, client: &[u8]) -> bool {
        match self.bindings.get(&a) {
            None => true,
            Some(b) if b.hold == Hold::Declined => false,
            Some(b) => b.client == client || b.until <= now,
        }
    }

    /// May `client` have `addr` from `pool`: in its range (or reserved for it), not
    /// excluded, not reserved for another, and free for it?
    fn may_lease(
        &self,
        now: SimTime,
        pool: usize,
        addr: Ipv4Addr,
        msg: &Message,
        client: &[u8],
    ) -> bool {
        let p = &self.cfg.pools[pool];
        let reserved = self.reservation_of(msg) == Some(addr);
        let in_pool = reserved || (p.in_range(addr) && !p.exclude.contains(&addr));
        p.subnet.contains(addr)
            && in_pool
            && !self.reserved_for_other(addr, msg)
            && self.free_for(now, addr, client)
    }

    fn allocate(
        &self,
        now: SimTime,
        pool: usize,
        msg: &Message,
        client: &[u8],
    ) -> Option<Ipv4Addr> {
        let p = &self.cfg.pools[pool];
        if let Some(r) = self.reservation_of(msg).filter(|r| p.subnet.contains(*r)) {
            return self.free_for(now, r, client).then_some(r);
        }
        let candidates = [self.by_client.get(client).copied(), requested_address(msg)];
        if let Some(a) = candidates
            .into_iter()
            .flatten()
            .find(|a| self.may_lease(now, pool, *a, msg, client))
        {
            return Some(a);
        }
        let usable = |a: Ipv4Addr| !p.exclude.contains(&a) && !self.reserved_for_other(a, msg);
        let range = u32::from(p.first)..=u32::from(p.last);
        if let Some(a) = range
            .clone()
            .map(Ipv4Addr::from)
            .find(|a| usable(*a) && self.free_for(now, *a, client))
        {
            return Some(a);
        }
        range
            .map(Ipv4Addr::from)
            .filter(|a| usable(*a))
            .filter_map(|a| match self.bindings.get(&a) {
                Some(b) if b.hold == Hold::Declined => Some((b.until, a)),
                _ => None,
            })
            .min()
            .map(|(_, a)| a)
    }

    // ------------------------------------------------------------------ replies

    /// An OFFER or ACK of `addr` with the pool's options.
    fn answer(
        &self,
        msg: &Message,
        at: Arrival,
        kind: MessageType,
        addr: Ipv4Addr,
        pool: usize,
    ) -> Reply {
        let p = &self.cfg.pools[pool];
        let mut m = reply_base(msg, kind);
        m.set_yiaddr(addr);
        if kind == MessageType::Ack {
            m.set_ciaddr(msg.ciaddr());
        }
        let lease = secs_u32(p.lease);
        let o = m.opts_mut();
        o.insert(DhcpOption::ServerIdentifier(at.server_id));
        o.insert(DhcpOption::AddressLeaseTime(lease));
        o.insert(DhcpOption::Renewal(lease / 2));
        o.insert(DhcpOption::Rebinding((lease as u64 * 7 / 8) as u32));
        o.insert(DhcpOption::SubnetMask(Ipv4Addr::from(
            sim_core::route::mask(p.subnet.len),
        )));
        if let Some(r) = p.router {
            o.insert(DhcpOption::Router(vec![r]));
        }
        if !p.dns.is_empty() {
            o.insert(DhcpOption::DomainNameServer(p.dns.clone()));
        }
        let to = if !msg.giaddr().is_unspecified() {
            ReplyDest::Relay(msg.giaddr())
        } else if !msg.ciaddr().is_unspecified() {
            ReplyDest::Unicast(msg.ciaddr())
        } else if msg.flags().broadcast() {
            ReplyDest::Broadcast
        } else {
            match chaddr_mac(msg) {
                Some(mac) => ReplyDest::Link { addr, mac },
                None => ReplyDest::Broadcast,
            }
        };
        Reply { msg: m, to }
    }
}

/// A reply to `msg` with the fields section 4.3.1 (table 3) copies from the request.
fn reply_base(msg: &Message, kind: MessageType) -> Message {
    let mac = chaddr_mac(msg).unwrap_or(MacAddr::ZERO);
    let mut m = new_message(Opcode::BootReply, msg.xid(), mac, kind);
    m.set_chaddr(msg.chaddr());
    m.set_flags(msg.flags());
    m.set_giaddr(msg.giaddr());
    m
}

#[cfg(test)]
mod tests;

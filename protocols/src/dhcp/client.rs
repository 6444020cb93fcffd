//! The DHCP client state machine (RFC 2131 section 4.4, figure 5).
//!
//! Owns one interface's lease: acquiring it (DISCOVER, OFFER, REQUEST, ACK), checking it
//! with ARP before use, renewing it at T1 (unicast to the server), rebinding at T2
//! (broadcast), dropping it at expiry, declining a conflicting address, and reacquiring
//! the previous address after a reboot or reconnection (INIT-REBOOT). It never touches
//! sockets, timers or the interface: each call returns [`Action`]s for the driver, and
//! [`Client::deadline`] says when to call [`Client::on_timer`] next.
//!
//! Timing (RB-DHCP-01, RB-DHCP-02): DISCOVER and REQUEST are retransmitted after 4 s, 8 s,
//! 16 s, 32 s and then every 64 s, each randomized by a uniform draw from -1 s to +1 s
//! (section 4.1); a REQUEST unanswered after its 64 s wait sends the client back to INIT.
//! In RENEWING and REBINDING the client waits half the time left until T2 (resp. the
//! expiry), at least 60 s, and never past T2 (resp. the expiry) (section 4.4.5). Lease
//! times count from when the client sent the first request of the exchange (section
//! 4.4.1), so the client's lease never outlives the server's. The client picks the first
//! OFFER (dhclient's select-timeout 0). INIT-REBOOT gives up after `reboot_timeout`
//! (dhclient's `reboot`, 10 s) and falls back to INIT. After a DECLINE it waits 10 s before
//! starting again (section 3.1 step 5).

use super::*;
use sim_core::rng::SimRng;
use sim_core::time::SimTime;

/// Settings of a client.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// The interface's hardware address (chaddr and client identifier).
    pub mac: MacAddr,
    /// Sent as the host name option (12).
    pub hostname: String,
    /// How long to wait for an answer to the ARP probe of a new address before using it.
    pub arp_check: SimDuration,
    /// How long INIT-REBOOT tries before falling back to INIT.
    pub reboot_timeout: SimDuration,
    /// The wait before starting again after a DECLINE.
    pub decline_wait: SimDuration,
}

impl ClientConfig {
    pub fn new(mac: MacAddr, hostname: &str) -> Self {
        ClientConfig {
            mac,
            hostname: hostname.to_string(),
            arp_check: SimDuration::from_secs(1),
            reboot_timeout: SimDuration::from_secs(10),
            decline_wait: SimDuration::from_secs(10),
        }
    }
}

/// A lease: the address and the parameters that came with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    /// The server identifier (option 54): where renewals go.
    pub server: Ipv4Addr,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    /// When the lease started: the first transmission of the request it answers.
    pub start: SimTime,
    pub lease: SimDuration,
    pub t1: SimDuration,
    pub t2: SimDuration,
}

impl Lease {
    pub fn t1_at(&self) -> SimTime {
        self.start + self.t1
    }
    pub fn t2_at(&self) -> SimTime {
        self.start + self.t2
    }
    pub fn expires(&self) -> SimTime {
        self.start + self.lease
    }
}

/// Where a client message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// 255.255.255.255 out of the client's interface, from its address or 0.0.0.0.
    Broadcast,
    /// Unicast to the server, through the routing table.
    Unicast(Ipv4Addr),
}

/// How a lease was obtained, for metrics and traces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundBy {
    /// A new lease (DORA or INIT-REBOOT); `elapsed` since the client began acquiring.
    Acquired {
        elapsed: SimDuration,
    },
    Renewed,
    Rebound,
}

/// Something the client did that metrics and traces report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    Bound(BoundBy),
    Declined(Ipv4Addr),
    Nak,
    Expired(Ipv4Addr),
    /// A reply that is not for us, not expected now, or lacks a lease time.
    Ignored,
}

/// What the driver must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Send {
        msg: Message,
        to: Dest,
    },
    /// Give the interface the lease's address and prefix, a default route via its router,
    /// and its DNS servers.
    Configure(Lease),
    /// Remove the address and the default route.
    Deconfigure,
    /// Receive datagrams for any address on the interface (while it has none).
    ReceiveAny(bool),
    /// Watch the address for ARP conflicts and send an ARP probe for it.
    Probe(Ipv4Addr),
    /// Stop watching the address.
    Unwatch(Ipv4Addr),
    /// Send a gratuitous ARP announcing the address.
    Announce(Ipv4Addr),
    /// Write (or erase) the lease file, which survives a reboot.
    Save(Option<Lease>),
    Note(Note),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Waiting to start (after a DECLINE).
    Init,
    Selecting,
    Requesting,
    /// INIT-REBOOT: asking for the previous address.
    Rebooting,
    /// ACKed; waiting for an ARP conflict before using the address.
    Checking,
    Bound,
    Renewing,
    Rebinding,
    /// The link is down.
    Down,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Init => "init",
            State::Selecting => "selecting",
            State::Requesting => "requesting",
            State::Rebooting => "rebooting",
            State::Checking => "checking",
            State::Bound => "bound",
            State::Renewing => "renewing",
            State::Rebinding => "rebinding",
            State::Down => "down",
        }
    }
}

const MIN_RENEW_WAIT: SimDuration = SimDuration::from_secs(60);
/// The retransmission after which a REQUEST gives up: the fifth transmission's 64 s wait.
const REQUEST_ATTEMPTS: u32 = 5;

/// One interface's DHCP client.
pub struct Client {
    cfg: ClientConfig,
    rng: SimRng,
    state: State,
    xid: u32,
    /// The message retransmissions resend.
    pending: Option<(Message, Dest)>,
    attempt: u32,
    deadline: Option<SimTime>,
    /// When the current exchange's first message was sent (lease start, `secs`).
    exchange_start: SimTime,
    /// When the client began looking for a lease (for `secs` and time-to-lease).
    acquire_start: SimTime,
    /// INIT-REBOOT gives up at this time.
    reboot_until: SimTime,
    /// The server chosen in SELECTING and the address it offered.
    offer: Option<(Ipv4Addr, Ipv4Addr)>,
    /// The lease in use (Bound, Renewing, Rebinding), being checked (Checking) or kept
    /// while the link is down.
    lease: Option<Lease>,
    /// Is the lease's address configured on the interface?
    configured: bool,
    /// The last address we had, asked for again in DISCOVER.
    previous: Option<Ipv4Addr>,
}

impl Client {
    pub fn new(cfg: ClientConfig, rng: SimRng) -> Self {
        Client {
            cfg,
            rng,
            state: State::Down,
            xid: 0,
            pending: None,
            attempt: 0,
            deadline: None,
            exchange_start: SimTime::ZERO,
            acquire_start: SimTime::ZERO,
            reboot_until: SimTime::ZERO,
            offer: None,
            lease: None,
            configured: false,
            previous: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }
    /// The lease in use, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref().filter(|_| self.configured)
    }
    /// When [`Client::on_timer`] must be called next.
    pub fn deadline(&self) -> Option<SimTime> {
        self.deadline
    }

    /// The interface is up (boot): reacquire `saved` (the lease file) if it has not
    /// expired, else start afresh.
    pub fn start(&mut self, now: SimTime, saved: Option<Lease>, out: &mut Vec<Action>) {
        out.push(Action::ReceiveAny(true));
        self.acquire_start = now;
        match saved.filter(|l| l.expires() > now) {
            Some(l) => {
                self.previous = Some(l.addr);
                self.lease = Some(l);
                self.begin_reboot(now, out);
            }
            None => self.begin_discover(now, out),
        }
    }

    // ------------------------------------------------------------------ events

    /// A DHCP message arrived for the client (decoded by the caller).
    pub fn on_message(&mut self, now: SimTime, msg: &Message, out: &mut Vec<Action>) {
        if msg.opcode() != Opcode::BootReply
            || msg.xid() != self.xid
            || chaddr_mac(msg) != Some(self.cfg.mac)
        {
            out.push(Action::Note(Note::Ignored));
            return;
        }
        match (self.state, message_type(msg)) {
            (State::Selecting, MessageType::Offer) => self.on_offer(now, msg, out),
            (State::Requesting, MessageType::Ack | MessageType::Nak)
                if server_identifier(msg).is_none_or(|s| Some(s) == self.offer.map(|o| o.0)) =>
            {
                self.on_answer(now, msg, out)
            }
            (
                State::Rebooting | State::Renewing | State::Rebinding,
                MessageType::Ack | MessageType::Nak,
            ) => self.on_answer(now, msg, out),
            _ => out.push(Action::Note(Note::Ignored)),
        }
    }

    /// The deadline passed.
    pub fn on_timer(&mut self, now: SimTime, out: &mut Vec<Action>) {
        match self.deadline {
            Some(d) if d <= now => {}
            _ => return,
        }
        self.deadline = None;
        match self.state {
            State::Init => self.begin_discover(now, out),
            State::Selecting => self.retransmit(now, out),
            State::Requesting if self.attempt + 1 >= REQUEST_ATTEMPTS => {
                self.begin_discover(now, out)
            }
            State::Requesting => self.retransmit(now, out),
            State::Rebooting if now >= self.reboot_until => {
                self.lease = None;
                out.push(Action::Save(None));
                self.begin_discover(now, out);
            }
            State::Rebooting => self.retransmit(now, out),
            State::Checking => self.bind(now, out),
            State::Bound => self.begin_renew(now, out),
            State::Renewing if self.lease.as_ref().is_some_and(|l| now >= l.t2_at()) => {
                self.begin_rebind(now, out)
            }
            State::Rebinding if self.lease.as_ref().is_some_and(|l| now >= l.expires()) => {
                self.expire(now, out)
            }
            State::Renewing | State::Rebinding => self.retransmit(now, out),
            State::Down => {}
        }
    }

    /// Another node claims `addr` (an answer to our ARP probe).
    pub fn on_conflict(&mut self, now: SimTime, addr: Ipv4Addr, out: &mut Vec<Action>) {
        if self.state != State::Checking || self.lease.as_ref().map(|l| l.addr) != Some(addr) {
            return;
        }
        let lease = self.lease.take();
        out.push(Action::Unwatch(addr));
        let mut m = self.request_base(MessageType::Decline);
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
        if let Some(l) = &lease {
            m.opts_mut().insert(DhcpOption::ServerIdentifier(l.server));
        }
        out.push(Action::Send {
            msg: m,
            to: Dest::Broadcast,
        });
        out.push(Action::Save(None));
        out.push(Action::Note(Note::Declined(addr)));
        self.previous = None;
        self.pending = None;
        self.state = State::Init;
        self.deadline = Some(now + self.cfg.decline_wait);
    }

    /// The link went down or came back up.
    pub fn on_carrier(&mut self, now: SimTime, up: bool, out: &mut Vec<Action>) {
        if !up {
            if self.state == State::Down {
                return;
            }
            if self.state == State::Checking {
                if let Some(l) = &self.lease {
                    out.push(Action::Unwatch(l.addr));
                }
            }
            if self.configured {
                out.push(Action::Deconfigure);
                self.configured = false;
            }
            self.state = State::Down;
            self.deadline = None;
            self.pending = None;
            return;
        }
        if self.state != State::Down {
            return;
        }
        out.push(Action::ReceiveAny(true));
        self.acquire_start = now;
        match &self.lease {
            Some(l) if l.expires() > now => self.begin_reboot(now, out),
            _ => {
                self.lease = None;
                self.begin_discover(now, out);
            }
        }
    }

    // ------------------------------------------------------------------ transitions

    fn new_xid(&mut self) {
        self.xid = self.rng.next_u32();
    }

    fn begin_discover(&mut self, now: SimTime, out: &mut Vec<Action>) {
        self.new_xid();
        self.offer = None;
        self.state = State::Selecting;
        let mut m = self.request_base(MessageType::Discover);
        if let Some(a) = self.previous {
            m.opts_mut().insert(DhcpOption::RequestedIpAddress(a));
        }
        self.first_send(now, m, Dest::Broadcast, out);
    }

    fn begin_reboot(&mut self, now: SimTime, out: &mut Vec<Action>) {
        let Some(addr) = self.lease.as_ref().map(|l| l.addr) else {
            return self.begin_discover(now, out);
        };
        self.new_xid();
        self.state = State::Rebooting;
        self.reboot_until = now + self.cfg.reboot_timeout;
        let mut m = self.request_base(MessageType::Request);
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
        self.first_send(now, m, Dest::Broadcast, out);
    }

    fn on_offer(&mut self, now: SimTime, msg: &Message, out: &mut Vec<Action>) {
        let (Some(server), addr) = (server_identifier(msg), msg.yiaddr()) else {
            out.push(Action::Note(Note::Ignored));
            return;
        };
        if addr.is_unspecified() {
            out.push(Action::Note(Note::Ignored));
            return;
        }
        self.offer = Some((server, addr));
        self.state = State::Requesting;
        let mut m = self.request_base(MessageType::Request);
        m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
        m.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
        // Same xid as the DISCOVER (section 4.4.1); a new exchange for lease timing.
        self.first_send(now, m, Dest::Broadcast, out);
    }

    /// An ACK or NAK in REQUESTING, REBOOTING, RENEWING or REBINDING.
    fn on_answer(&mut self, now: SimTime, msg: &Message, out: &mut Vec<Action>) {
        if message_type(msg) == MessageType::Nak {
            out.push(Action::Note(Note::Nak));
            if self.configured {
                // Losing a lease in use: a new acquisition starts now.
                out.push(Action::Deconfigure);
                out.push(Action::ReceiveAny(true));
                self.configured = false;
                self.acquire_start = now;
            }
            self.lease = None;
            self.previous = None;
            out.push(Action::Save(None));
            return self.begin_discover(now, out);
        }
        let Some(lease) = self.lease_from(msg) else {
            out.push(Action::Note(Note::Ignored));
            return;
        };
        match self.state {
            State::Requesting | State::Rebooting => {
                self.pending = None;
                self.state = State::Checking;
                out.push(Action::Probe(lease.addr));
                self.lease = Some(lease);
                self.deadline = Some(now + self.cfg.arp_check);
            }
            State::Renewing | State::Rebinding => {
                let how = if self.state == State::Renewing {
                    BoundBy::Renewed
                } else {
                    BoundBy::Rebound
                };
                let changed = self.lease.as_ref().is_none_or(|old| {
                    (old.addr, old.prefix_len, old.router, &old.dns)
                        != (lease.addr, lease.prefix_len, lease.router, &lease.dns)
                });
                if changed {
                    out.push(Action::Configure(lease.clone()));
                }
                self.enter_bound(lease, how, out);
            }
            _ => out.push(Action::Note(Note::Ignored)),
        }
    }

    /// The ARP check found no conflict: use the address.
    fn bind(&mut self, now: SimTime, out: &mut Vec<Action>) {
        let Some(lease) = self.lease.clone() else {
            return self.begin_discover(now, out);
        };
        out.push(Action::Unwatch(lease.addr));
        out.push(Action::Configure(lease.clone()));
        out.push(Action::ReceiveAny(false));
        out.push(Action::Announce(lease.addr));
        self.configured = true;
        let elapsed = now.saturating_since(self.acquire_start);
        self.enter_bound(lease, BoundBy::Acquired { elapsed }, out);
    }

    fn enter_bound(&mut self, lease: Lease, how: BoundBy, out: &mut Vec<Action>) {
        self.pending = None;
        self.state = State::Bound;
        self.deadline = Some(lease.t1_at());
        self.previous = Some(lease.addr);
        out.push(Action::Save(Some(lease.clone())));
        out.push(Action::Note(Note::Bound(how)));
        self.lease = Some(lease);
    }

    fn begin_renew(&mut self, now: SimTime, out: &mut Vec<Action>) {
        let Some(l) = self.lease.clone() else { return };
        self.new_xid();
        self.state = State::Renewing;
        let mut m = self.request_base(MessageType::Request);
        m.set_ciaddr(l.addr);
        self.first_send(now, m, Dest::Unicast(l.server), out);
    }

    fn begin_rebind(&mut self, now: SimTime, out: &mut Vec<Action>) {
        let Some(l) = self.lease.clone() else { return };
        self.new_xid();
        self.state = State::Rebinding;
        let mut m = self.request_base(MessageType::Request);
        m.set_ciaddr(l.addr);
        self.first_send(now, m, Dest::Broadcast, out);
    }

    fn expire(&mut self, now: SimTime, out: &mut Vec<Action>) {
        let Some(l) = self.lease.take() else { return };
        out.push(Action::Deconfigure);
        out.push(Action::ReceiveAny(true));
        out.push(Action::Save(None));
        out.push(Action::Note(Note::Expired(l.addr)));
        self.configured = false;
        self.acquire_start = now;
        self.begin_discover(now, out);
    }

    // ------------------------------------------------------------------ sending

    /// A client message with the fields and options every one of ours carries.
    fn request_base(&self, kind: MessageType) -> Message {
        let mut m = new_message(Opcode::BootRequest, self.xid, self.cfg.mac, kind);
        let o = m.opts_mut();
        o.insert(DhcpOption::ClientIdentifier(client_identifier(
            self.cfg.mac,
        )));
        if kind != MessageType::Decline {
            o.insert(DhcpOption::Hostname(self.cfg.hostname.clone()));
            o.insert(DhcpOption::ParameterRequestList(vec![
                OptionCode::SubnetMask,
                OptionCode::Router,
                OptionCode::DomainNameServer,
                OptionCode::AddressLeaseTime,
                OptionCode::Renewal,
                OptionCode::Rebinding,
            ]));
        }
        m
    }

    fn first_send(&mut self, now: SimTime, msg: Message, to: Dest, out: &mut Vec<Action>) {
        self.attempt = 0;
        self.exchange_start = now;
        self.pending = Some((msg, to));
        self.send_pending(now, out);
    }

    fn retransmit(&mut self, now: SimTime, out: &mut Vec<Action>) {
        self.attempt += 1;
        self.send_pending(now, out);
    }

    /// Sends the pending message with `secs` filled in and sets the retransmission
    /// deadline.
    fn send_pending(&mut self, now: SimTime, out: &mut Vec<Action>) {
        let secs = now.saturating_since(self.acquire_start).as_nanos() / 1_000_000_000;
        let wait = self.retransmission_wait(now);
        let Some((msg, to)) = self.pending.as_mut() else {
            return;
        };
        msg.set_secs(secs.min(u16::MAX as u64) as u16);
        out.push(Action::Send {
            msg: msg.clone(),
            to: *to,
        });
        self.deadline = Some(now + wait);
    }

    /// How long to wait for an answer to the message just sent.
    fn retransmission_wait(&mut self, now: SimTime) -> SimDuration {
        match (self.state, &self.lease) {
            (State::Renewing, Some(l)) => renew_wait(now, l.t2_at()),
            (State::Rebinding, Some(l)) => renew_wait(now, l.expires()),
            (State::Rebooting, _) => {
                let w = backoff(&mut self.rng, self.attempt);
                let left = self.reboot_until.saturating_since(now);
                if w < left {
                    w
                } else {
                    left
                }
            }
            _ => backoff(&mut self.rng, self.attempt),
        }
    }

    /// The lease an ACK grants, timed from the start of the exchange.
    fn lease_from(&self, msg: &Message) -> Option<Lease> {
        let opts = msg.opts();
        let secs = |code| match opts.get(code) {
            Some(
                DhcpOption::AddressLeaseTime(s) | DhcpOption::Renewal(s) | DhcpOption::Rebinding(s),
            ) => Some(*s as u64),
            _ => None,
        };
        let lease_s = secs(OptionCode::AddressLeaseTime)?;
        let mut t1 = secs(OptionCode::Renewal).unwrap_or(lease_s / 2);
        let mut t2 = secs(OptionCode::Rebinding).unwrap_or(lease_s * 7 / 8);
        if !(t1 < t2 && t2 < lease_s) {
            (t1, t2) = (lease_s / 2, lease_s * 7 / 8);
        }
        let addr = if msg.yiaddr().is_unspecified() {
            self.lease.as_ref()?.addr
        } else {
            msg.yiaddr()
        };
        let prefix_len = match opts.get(OptionCode::SubnetMask) {
            Some(DhcpOption::SubnetMask(m)) => mask_len(*m),
            _ => None,
        }
        .unwrap_or_else(|| classful_len(addr));
        let router = match opts.get(OptionCode::Router) {
            Some(DhcpOption::Router(r)) => r.first().copied(),
            _ => None,
        };
        let dns = match opts.get(OptionCode::DomainNameServer) {
            Some(DhcpOption::DomainNameServer(d)) => d.clone(),
            _ => Vec::new(),
        };
        let server = server_identifier(msg)
            .or(self.lease.as_ref().map(|l| l.server))
            .or(self.offer.map(|o| o.0))?;
        let s = SimDuration::from_secs;
        Some(Lease {
            addr,
            prefix_len,
            server,
            router,
            dns,
            start: self.exchange_start,
            lease: s(lease_s),
            t1: s(t1),
            t2: s(t2),
        })
    }
}

/// RFC 2131 section 4.1: 4 s before the first retransmission, doubling to 64 s, each
/// randomized by a uniform draw from -1 s to +1 s.
pub fn backoff(rng: &mut SimRng, attempt: u32) -> SimDuration {
    let base = 4_000_000_000u64 << attempt.min(4);
    let jitter = rng.below(2_000_000_001);
    SimDuration::from_nanos(base - 1_000_000_000 + jitter)
}

/// Section 4.4.5: half the time left until `until`, at least 60 s, but never past `until`.
fn renew_wait(now: SimTime, until: SimTime) -> SimDuration {
    let left = until.saturating_since(now);
    let half = left / 2;
    let w = if half > MIN_RENEW_WAIT {
        half
    } else {
        MIN_RENEW_WAIT
    };
    if w < left {
        w
    } else {
        left
    }
}

/// The class A/B/C prefix length of an address (RFC 2132 section 3.3: a client without a
/// subnet mask option assumes its network's natural mask).
fn classful_len(a: Ipv4Addr) -> u8 {
    match a.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

#[cfg(test)]
mod tests;

//! The client state machine driven without a scheduler: messages and times are injected,
//! actions and deadlines asserted to the nanosecond.

use super::*;
use sim_core::rng::RngFactory;

const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 9, 53);

fn rng() -> SimRng {
    RngFactory::new(7).stream("dhcp-client-test")
}

fn client() -> Client {
    Client::new(ClientConfig::new(MAC, "c1"), rng())
}

fn t(s: f64) -> SimTime {
    SimTime::from_nanos((s * 1e9) as u64)
}

/// The messages among `out`: (type, destination, message).
fn sent(out: &[Action]) -> Vec<(MessageType, Dest, Message)> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send { msg, to } => Some((message_type(msg), *to, msg.clone())),
            _ => None,
        })
        .collect()
}

fn only_sent(out: &[Action]) -> (MessageType, Dest, Message) {
    let s = sent(out);
    assert_eq!(s.len(), 1, "{out:?}");
    s.into_iter().next().unwrap_or_else(|| unreachable!())
}

/// A server reply to the client's message `to`.
fn reply(to: &Message, kind: MessageType, lease_s: u32) -> Message {
    let mut m = new_message(Opcode::BootReply, to.xid(), MAC, kind);
    if kind != MessageType::Nak {
        m.set_yiaddr(ADDR);
        let o = m.opts_mut();
        o.insert(DhcpOption::AddressLeaseTime(lease_s));
        o.insert(DhcpOption::Renewal(lease_s / 2));
        o.insert(DhcpOption::Rebinding(lease_s * 7 / 8));
        o.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        o.insert(DhcpOption::Router(vec![ROUTER]));
        o.insert(DhcpOption::DomainNameServer(vec![DNS]));
    }
    m.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
    m
}

/// Runs the client to BOUND: DISCOVER at `t0`, OFFER and ACK 1 ms later, ARP check 1 s.
/// Returns the client and the REQUEST it sent.
fn bound(lease_s: u32) -> (Client, Message) {
    let mut c = client();
    let mut out = Vec::new();
    c.start(t(0.0), None, &mut out);
    let (_, _, discover) = only_sent(&out);
    out.clear();
    c.on_message(
        t(0.001),
        &reply(&discover, MessageType::Offer, lease_s),
        &mut out,
    );
    let (_, _, request) = only_sent(&out);
    out.clear();
    c.on_message(
        t(0.002),
        &reply(&request, MessageType::Ack, lease_s),
        &mut out,
    );
    c.on_timer(t(1.002), &mut out);
    assert_eq!(c.state(), State::Bound);
    (c, request)
}

// RB-DHCP-01
#[test]
fn discover_is_retransmitted_after_4_8_16_32_64_64_seconds_each_plus_minus_one() {
    let mut c = client();
    let mut out = Vec::new();
    c.start(SimTime::ZERO, None, &mut out);
    assert_eq!(out[0], Action::ReceiveAny(true));
    let (kind, to, first) = only_sent(&out);
    assert_eq!((kind, to), (MessageType::Discover, Dest::Broadcast));
    assert_eq!(first.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(
        !first.flags().broadcast(),
        "Linux clients do not set the broadcast flag"
    );
    // The same draws, in the same order: the xid, then one backoff per transmission.
    let mut r = rng();
    assert_eq!(first.xid(), r.next_u32());
    let mut at = SimTime::ZERO;
    let mut times = Vec::new();
    for attempt in 0..7 {
        let wait = backoff(&mut r, attempt);
        let base = 4u64 << attempt.min(4);
        assert!(wait.as_nanos().abs_diff(base * 1_000_000_000) <= 1_000_000_000);
        at += wait;
        assert_eq!(c.deadline(), Some(at), "attempt {attempt}");
        out.clear();
        c.on_timer(at, &mut out);
        let (kind, to, m) = only_sent(&out);
        assert_eq!(
            (kind, to, m.xid()),
            (MessageType::Discover, Dest::Broadcast, first.xid())
        );
        assert_eq!(m.secs() as u64, at.as_nanos() / 1_000_000_000);
        times.push(at.as_secs_f64());
    }
    // 4, 12, 28, 60, 124, 188, 252 s, each within the accumulated jitter.
    let nominal = [4.0, 12.0, 28.0, 60.0, 124.0, 188.0, 252.0];
    for (i, (got, want)) in times.iter().zip(nominal).enumerate() {
        assert!((got - want).abs() <= (i + 1) as f64, "{times:?}");
    }
    // A timer call before the deadline does nothing.
    out.clear();
    c.on_timer(at, &mut out);
    assert!(out.is_empty());
}

// RB-DHCP-01, RB-DHCP-04
#[test]
fn dora_requests_the_offer_from_the_chosen_server_then_checks_and_binds() {
    let mut c = client();
    let mut out = Vec::new();
    c.start(SimTime::ZERO, None, &mut out);
    let (_, _, discover) = only_sent(&out);
    out.clear();
    c.on_message(
        t(0.001),
        &reply(&discover, MessageType::Offer, 3600),
        &mut out,
    );
    let (kind, to, req) = only_sent(&out);
    assert_eq!((kind, to), (MessageType::Request, Dest::Broadcast));
    assert_eq!(req.xid(), discover.xid());
    assert_eq!(server_identifier(&req), Some(SERVER));
    assert_eq!(requested_address(&req), Some(ADDR));
    assert_eq!(req.ciaddr(), Ipv4Addr::UNSPECIFIED);
    // A second OFFER (another server) is ignored.
    out.clear();
    c.on_message(
        t(0.0015),
        &reply(&discover, MessageType::Offer, 60),
        &mut out,
    );
    assert_eq!(out, vec![Action::Note(Note::Ignored)]);
    // The ACK: probe the address for 1 s before using it.
    out.clear();
    c.on_message(t(0.002), &reply(&req, MessageType::Ack, 3600), &mut out);
    assert_eq!(out, vec![Action::Probe(ADDR)]);
    assert_eq!(c.state(), State::Checking);
    assert_eq!(c.deadline(), Some(t(1.002)));
    assert_eq!(c.lease(), None);
    out.clear();
    c.on_timer(t(1.002), &mut out);
    let lease = Lease {
        addr: ADDR,
        prefix_len: 24,
        server: SERVER,
        router: Some(ROUTER),
        dns: vec![DNS],
        start: t(0.001),
        lease: SimDuration::from_secs(3600),
        t1: SimDuration::from_secs(1800),
        t2: SimDuration::from_secs(3150),
    };
    assert_eq!(
        out,
        vec![
            Action::Unwatch(ADDR),
            Action::Configure(lease.clone()),
            Action::ReceiveAny(false),
            Action::Announce(ADDR),
            Action::Save(Some(lease.clone())),
            Action::Note(Note::Bound(BoundBy::Acquired {
                elapsed: SimDuration::from_nanos(1_002_000_000)
            })),
        ]
    );
    // T1 counts from the REQUEST that the ACK answers (sent at 1 ms).
    assert_eq!(c.deadline(), Some(t(1800.001)));
    assert_eq!(c.lease(), Some(&lease));
}

// RB-DHCP-02
#[test]
fn renewal_is_unicast_at_t1_rebinding_broadcast_at_t2_and_the_address_dropped_at_expiry() {
    let (mut c, _) = bound(600);
    // Lease 600 s from 1 ms: T1 300.001 s, T2 525.001 s, expiry 600.001 s.
    assert_eq!(c.deadline(), Some(t(300.001)));
    let mut out = Vec::new();
    c.on_timer(t(300.001), &mut out);
    let (kind, to, renew) = only_sent(&out);
    assert_eq!((kind, to), (MessageType::Request, Dest::Unicast(SERVER)));
    assert_eq!(renew.ciaddr(), ADDR);
    assert_eq!(server_identifier(&renew), None);
    assert_eq!(requested_address(&renew), None);
    // Retransmit after half the time left until T2 (112.5 s), then after 60 s (half of
    // 112.5 s is below the 60 s minimum), then at T2 (52.5 s left).
    assert_eq!(c.deadline(), Some(t(412.501)));
    out.clear();
    c.on_timer(t(412.501), &mut out);
    assert_eq!(only_sent(&out).1, Dest::Unicast(SERVER));
    assert_eq!(c.deadline(), Some(t(472.501)));
    out.clear();
    c.on_timer(t(472.501), &mut out);
    assert_eq!(only_sent(&out).1, Dest::Unicast(SERVER));
    assert_eq!(c.deadline(), Some(t(525.001)));
    out.clear();
    c.on_timer(t(525.001), &mut out);
    let (kind, to, rebind) = only_sent(&out);
    assert_eq!((kind, to), (MessageType::Request, Dest::Broadcast));
    assert_eq!(rebind.ciaddr(), ADDR);
    assert_eq!(c.state(), State::Rebinding);
    // 75 s left: at least 60 s, then the expiry.
    assert_eq!(c.deadline(), Some(t(585.001)));
    out.clear();
    c.on_timer(t(585.001), &mut out);
    assert_eq!(only_sent(&out).1, Dest::Broadcast);
    assert_eq!(c.deadline(), Some(t(600.001)));
    out.clear();
    c.on_timer(t(600.001), &mut out);
    assert_eq!(
        out[..4],
        [
            Action::Deconfigure,
            Action::ReceiveAny(true),
            Action::Save(None),
            Action::Note(Note::Expired(ADDR))
        ]
    );
    let (kind, _, discover) = only_sent(&out);
    assert_eq!(kind, MessageType::Discover);
    assert_eq!(
        requested_address(&discover),
        Some(ADDR),
        "asks for its old address"
    );
    assert_eq!(c.state(), State::Selecting);
    assert_eq!(c.lease(), None);
}

// RB-DHCP-02
#[test]
fn an_ack_to_a_renewal_extends_the_lease_from_the_renewal() {
    let (mut c, _) = bound(600);
    let mut out = Vec::new();
    c.on_timer(t(300.001), &mut out);
    let (_, _, renew) = only_sent(&out);
    out.clear();
    c.on_message(t(300.002), &reply(&renew, MessageType::Ack, 600), &mut out);
    assert!(
        !out.iter().any(|a| matches!(a, Action::Configure(_))),
        "same lease: no change"
    );
    assert!(out.contains(&Action::Note(Note::Bound(BoundBy::Renewed))));
    assert_eq!(c.deadline(), Some(t(600.001)));
    assert_eq!(c.state(), State::Bound);
}

// RB-DHCP-03
#[test]
fn a_conflict_during_the_arp_check_declines_and_starts_again_after_10_s() {
    let mut c = client();
    let mut out = Vec::new();
    c.start(SimTime::ZERO, None, &mut out);
    let (_, _, d) = only_sent(&out);
    out.clear();
    c.on_message(t(0.001), &reply(&d, MessageType::Offer, 60), &mut out);
    let (_, _, r) = only_sent(&out);
    out.clear();
    c.on_message(t(0.002), &reply(&r, MessageType::Ack, 60), &mut out);
    out.clear();
    c.on_conflict(t(0.003), Ipv4Addr::new(10, 0, 0, 99), &mut out);
    assert!(out.is_empty(), "not the address being checked");
    c.on_conflict(t(0.003), ADDR, &mut out);
    let (kind, to, decline) = only_sent(&out);
    assert_eq!((kind, to), (MessageType::Decline, Dest::Broadcast));
    assert_eq!(requested_address(&decline), Some(ADDR));
    assert_eq!(server_identifier(&decline), Some(SERVER));
    assert_eq!(decline.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(out.contains(&Action::Unwatch(ADDR)));
    assert!(out.contains(&Action::Note(Note::Declined(ADDR))));
    assert!(!out.iter().any(|a| matches!(a, Action::Configure(_))));
    assert_eq!(c.deadline(), Some(t(10.003)));
    out.clear();
    c.on_timer(t(10.003), &mut out);
    let (kind, _, again) = only_sent(&out);
    assert_eq!(kind, MessageType::Discover);
    assert_eq!(
        requested_address(&again),
        None,
        "does not ask for the declined address"
    );
}

// RB-DHCP-03
#[test]
fn after_a_reboot_the_client_requests_its_previous_address_then_falls_back_to_discover() {
    let (c, _) = bound(600);
    let saved = c.lease().cloned();
    let mut c = client();
    let mut out = Vec::new();
    c.start(t(100.0), saved.clone(), &mut out);
    let (kind, to, req) = only_sent(&out);
    assert_eq!((kind, to), (MessageType::Request, Dest::Broadcast));
    assert_eq!(requested_address(&req), Some(ADDR));
    assert_eq!(server_identifier(&req), None);
    assert_eq!(req.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert_eq!(c.state(), State::Rebooting);
    // One retransmission after 4 s +- 1, then the 10 s reboot timeout ends it.
    let first = c.deadline().unwrap();
    assert!(first >= t(103.0) && first <= t(105.0));
    out.clear();
    c.on_timer(first, &mut out);
    assert_eq!(only_sent(&out).0, MessageType::Request);
    assert_eq!(c.deadline(), Some(t(110.0)));
    out.clear();
    c.on_timer(t(110.0), &mut out);
    assert_eq!(out[0], Action::Save(None));
    assert_eq!(only_sent(&out).0, MessageType::Discover);
    // An expired lease file is not used.
    let mut c = client();
    out.clear();
    c.start(t(700.0), saved, &mut out);
    assert_eq!(only_sent(&out).0, MessageType::Discover);
}

// RB-DHCP-03
#[test]
fn an_ack_to_init_reboot_is_checked_then_bound() {
    let (c, _) = bound(600);
    let saved = c.lease().cloned();
    let mut c = client();
    let mut out = Vec::new();
    c.start(t(100.0), saved, &mut out);
    let (_, _, req) = only_sent(&out);
    out.clear();
    c.on_message(t(100.001), &reply(&req, MessageType::Ack, 600), &mut out);
    assert_eq!(out, vec![Action::Probe(ADDR)]);
    out.clear();
    c.on_timer(t(101.001), &mut out);
    assert!(out.contains(&Action::Note(Note::Bound(BoundBy::Acquired {
        elapsed: SimDuration::from_nanos(1_001_000_000)
    }))));
    assert_eq!(c.deadline(), Some(t(400.0)));
}

#[test]
fn carrier_loss_drops_the_address_and_carrier_return_reboots() {
    let (mut c, _) = bound(600);
    let mut out = Vec::new();
    c.on_carrier(t(50.0), false, &mut out);
    assert_eq!(out, vec![Action::Deconfigure]);
    assert_eq!((c.state(), c.deadline()), (State::Down, None));
    out.clear();
    c.on_carrier(t(60.0), true, &mut out);
    let (kind, _, req) = only_sent(&out);
    assert_eq!(kind, MessageType::Request);
    assert_eq!(requested_address(&req), Some(ADDR));
    assert_eq!(c.state(), State::Rebooting);
}

#[test]
fn a_nak_restarts_discovery_and_foreign_replies_are_ignored() {
    let mut c = client();
    let mut out = Vec::new();
    c.start(SimTime::ZERO, None, &mut out);
    let (_, _, d) = only_sent(&out);
    out.clear();
    let mut other = reply(&d, MessageType::Offer, 60);
    other.set_xid(d.xid().wrapping_add(1));
    c.on_message(t(0.001), &other, &mut out);
    assert_eq!(out, vec![Action::Note(Note::Ignored)]);
    out.clear();
    c.on_message(t(0.001), &reply(&d, MessageType::Offer, 60), &mut out);
    let (_, _, r) = only_sent(&out);
    out.clear();
    c.on_message(t(0.002), &reply(&r, MessageType::Nak, 60), &mut out);
    assert_eq!(out[0], Action::Note(Note::Nak));
    let (kind, _, d2) = only_sent(&out);
    assert_eq!(kind, MessageType::Discover);
    assert_ne!(d2.xid(), d.xid());
}

#[test]
fn an_unanswered_request_goes_back_to_init_after_five_transmissions() {
    let mut c = client();
    let mut out = Vec::new();
    c.start(SimTime::ZERO, None, &mut out);
    let (_, _, d) = only_sent(&out);
    out.clear();
    c.on_message(t(0.001), &reply(&d, MessageType::Offer, 60), &mut out);
    let mut requests = 1;
    loop {
        let at = c.deadline().unwrap();
        out.clear();
        c.on_timer(at, &mut out);
        let (kind, _, _) = only_sent(&out);
        if kind == MessageType::Discover {
            break;
        }
        requests += 1;
    }
    assert_eq!(requests, 5);
}

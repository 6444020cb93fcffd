//! The server state machine driven without a scheduler.

use super::*;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const OTHER_SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 3);
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 1);
const RELAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 1);

fn a(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 1, last)
}

fn mac(n: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, n])
}

fn t(s: u64) -> SimTime {
    SimTime::from_secs(s)
}

fn pool(subnet: &str, first: Ipv4Addr, last: Ipv4Addr) -> PoolConfig {
    PoolConfig {
        subnet: Prefix::new(subnet.parse().unwrap(), 24),
        first,
        last,
        exclude: Vec::new(),
        router: Some(ROUTER),
        dns: vec![Ipv4Addr::new(10, 0, 9, 53)],
        lease: SimDuration::from_secs(600),
    }
}

fn server() -> Server {
    Server::new(ServerConfig {
        pools: vec![
            pool("10.0.1.0", a(100), a(102)),
            pool(
                "10.0.2.0",
                Ipv4Addr::new(10, 0, 2, 100),
                Ipv4Addr::new(10, 0, 2, 199),
            ),
        ],
        reservations: vec![(mac(9), a(50))],
        offer_hold: SimDuration::from_secs(30),
    })
}

fn here() -> Arrival {
    Arrival {
        server_id: SERVER,
        subnet: Prefix::new(a(0), 24),
    }
}

fn msg(n: u8, kind: MessageType) -> Message {
    let mut m = new_message(Opcode::BootRequest, 1000 + n as u32, mac(n), kind);
    m.opts_mut()
        .insert(DhcpOption::ClientIdentifier(client_identifier(mac(n))));
    m
}

fn discover(n: u8) -> Message {
    msg(n, MessageType::Discover)
}

fn select(n: u8, server: Ipv4Addr, addr: Ipv4Addr) -> Message {
    let mut m = msg(n, MessageType::Request);
    m.opts_mut().insert(DhcpOption::ServerIdentifier(server));
    m.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
    m
}

fn init_reboot(n: u8, addr: Ipv4Addr) -> Message {
    let mut m = msg(n, MessageType::Request);
    m.opts_mut().insert(DhcpOption::RequestedIpAddress(addr));
    m
}

fn renew(n: u8, addr: Ipv4Addr) -> Message {
    let mut m = msg(n, MessageType::Request);
    m.set_ciaddr(addr);
    m
}

/// DORA for client `n` at `now`; the address it got.
fn lease(s: &mut Server, now: SimTime, n: u8) -> Ipv4Addr {
    let (o, _) = s.handle(now, &discover(n), here());
    let Outcome::Offered(addr) = o else {
        panic!("{o:?}")
    };
    let (o, _) = s.handle(now, &select(n, SERVER, addr), here());
    assert_eq!(o, Outcome::Acked(addr));
    addr
}

// RB-DHCP-01, RB-DHCP-04
#[test]
fn an_offer_carries_the_pools_options_and_goes_to_the_clients_mac() {
    let mut s = server();
    let (o, r) = s.handle(t(0), &discover(1), here());
    assert_eq!(o, Outcome::Offered(a(100)));
    let r = r.unwrap();
    assert_eq!(
        r.to,
        ReplyDest::Link {
            addr: a(100),
            mac: mac(1)
        }
    );
    let m = &r.msg;
    assert_eq!(
        (m.opcode(), m.xid(), m.yiaddr()),
        (Opcode::BootReply, 1001, a(100))
    );
    assert_eq!(message_type(m), MessageType::Offer);
    let o = m.opts();
    assert_eq!(
        o.get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER))
    );
    assert_eq!(
        o.get(OptionCode::SubnetMask),
        Some(&DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)))
    );
    assert_eq!(
        o.get(OptionCode::Router),
        Some(&DhcpOption::Router(vec![ROUTER]))
    );
    assert_eq!(
        o.get(OptionCode::DomainNameServer),
        Some(&DhcpOption::DomainNameServer(vec![Ipv4Addr::new(
            10, 0, 9, 53
        )]))
    );
    assert_eq!(
        o.get(OptionCode::AddressLeaseTime),
        Some(&DhcpOption::AddressLeaseTime(600))
    );
    assert_eq!(o.get(OptionCode::Renewal), Some(&DhcpOption::Renewal(300)));
    assert_eq!(
        o.get(OptionCode::Rebinding),
        Some(&DhcpOption::Rebinding(525))
    );
    // The broadcast flag asks for a broadcast reply.
    let mut d = discover(2);
    d.set_flags(Flags::default().set_broadcast());
    let (_, r) = s.handle(t(0), &d, here());
    assert_eq!(r.unwrap().to, ReplyDest::Broadcast);
    assert_eq!(s.counters.offers, 2);
}

#[test]
fn a_relayed_discover_is_served_from_the_relays_subnet_and_answered_to_the_relay() {
    let mut s = server();
    let mut d = discover(1);
    d.set_giaddr(RELAY);
    let (o, r) = s.handle(t(0), &d, here());
    assert_eq!(o, Outcome::Offered(Ipv4Addr::new(10, 0, 2, 100)));
    let r = r.unwrap();
    assert_eq!(r.to, ReplyDest::Relay(RELAY));
    assert_eq!(r.msg.giaddr(), RELAY);
    // A network without a pool gets no answer.
    d.set_giaddr(Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(s.handle(t(0), &d, here()), (Outcome::Silent, None));
}

// RB-DHCP-01
#[test]
fn a_request_for_another_server_withdraws_our_offer() {
    let mut s = server();
    let (o, _) = s.handle(t(0), &discover(1), here());
    assert_eq!(o, Outcome::Offered(a(100)));
    let (o, r) = s.handle(
        t(0),
        &select(1, OTHER_SERVER, Ipv4Addr::new(10, 0, 1, 200)),
        here(),
    );
    assert_eq!((o, r), (Outcome::Withdrawn(a(100)), None));
    // The address is free again at once.
    assert_eq!(lease(&mut s, t(1), 2), a(100));
    assert_eq!(s.counters.withdrawn, 1);
}

#[test]
fn leases_are_exclusive_until_they_expire_and_offers_are_held_30_s() {
    let mut s = server();
    assert_eq!(lease(&mut s, t(0), 1), a(100));
    assert_eq!(lease(&mut s, t(0), 2), a(101));
    assert_eq!(s.leased(t(0)), 2);
    // Client 3 is offered .102 and does not answer; it stays held for 30 s.
    assert_eq!(
        s.handle(t(0), &discover(3), here()).0,
        Outcome::Offered(a(102))
    );
    assert_eq!(
        s.handle(t(29), &discover(4), here()),
        (Outcome::Exhausted, None)
    );
    assert_eq!(
        s.handle(t(30), &discover(4), here()).0,
        Outcome::Offered(a(102))
    );
    // Client 3's late REQUEST for it is refused.
    let (o, r) = s.handle(t(31), &select(3, SERVER, a(102)), here());
    assert_eq!(o, Outcome::Nakked);
    let r = r.unwrap();
    assert_eq!(
        (message_type(&r.msg), r.to),
        (MessageType::Nak, ReplyDest::Broadcast)
    );
    // Leases end at their expiry, 600 s after the ACK.
    assert_eq!(s.leased(t(599)), 2);
    assert_eq!(s.leased(t(600)), 0);
    assert_eq!(
        s.lease_holder(t(599), a(100)),
        Some(&client_identifier(mac(1))[..])
    );
    assert_eq!(s.lease_holder(t(600), a(100)), None);
}

// RB-DHCP-02
#[test]
fn renewals_and_rebinds_extend_the_clients_own_lease_and_are_answered_to_ciaddr() {
    let mut s = server();
    let addr = lease(&mut s, t(0), 1);
    let (o, r) = s.handle(t(300), &renew(1, addr), here());
    assert_eq!(o, Outcome::Acked(addr));
    let r = r.unwrap();
    assert_eq!(r.to, ReplyDest::Unicast(addr));
    assert_eq!(r.msg.ciaddr(), addr);
    assert_eq!(s.leased(t(899)), 1);
    // Another client renewing an address it does not hold is refused.
    assert_eq!(s.handle(t(300), &renew(2, addr), here()).0, Outcome::Nakked);
    // Renewing an address nobody holds: silence (it may be another server's client).
    assert_eq!(
        s.handle(t(300), &renew(2, a(102)), here()),
        (Outcome::Silent, None)
    );
}

// RB-DHCP-03
#[test]
fn init_reboot_is_acked_for_the_own_address_nakked_off_network_and_unknown_clients_get_silence() {
    let mut s = server();
    let addr = lease(&mut s, t(0), 1);
    let (o, r) = s.handle(t(100), &init_reboot(1, addr), here());
    assert_eq!(o, Outcome::Acked(addr));
    assert_eq!(r.unwrap().to, ReplyDest::Link { addr, mac: mac(1) });
    assert_eq!(
        s.handle(t(100), &init_reboot(1, Ipv4Addr::new(10, 0, 7, 5)), here())
            .0,
        Outcome::Nakked
    );
    assert_eq!(
        s.handle(t(100), &init_reboot(2, addr), here()).0,
        Outcome::Nakked
    );
    assert_eq!(
        s.handle(t(100), &init_reboot(3, a(102)), here()),
        (Outcome::Silent, None)
    );
}

// RB-DHCP-03
#[test]
fn a_declined_address_is_not_offered_again_while_others_are_free() {
    let mut s = server();
    let (o, _) = s.handle(t(0), &discover(1), here());
    assert_eq!(o, Outcome::Offered(a(100)));
    s.handle(t(0), &select(1, SERVER, a(100)), here());
    let mut d = msg(1, MessageType::Decline);
    d.opts_mut().insert(DhcpOption::RequestedIpAddress(a(100)));
    d.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER));
    assert_eq!(
        s.handle(t(1), &d, here()),
        (Outcome::Declined(a(100)), None)
    );
    assert_eq!(s.leased(t(1)), 0);
    assert_eq!(
        s.handle(t(11), &discover(1), here()).0,
        Outcome::Offered(a(101))
    );
    lease(&mut s, t(11), 1);
    lease(&mut s, t(11), 2);
    // Pool otherwise full: the declined address is reclaimed.
    assert_eq!(lease(&mut s, t(12), 3), a(100));
}

#[test]
fn reservations_are_kept_for_their_mac() {
    let mut s = server();
    assert_eq!(lease(&mut s, t(0), 9), a(50));
    let mut d = discover(1);
    d.opts_mut().insert(DhcpOption::RequestedIpAddress(a(50)));
    assert_eq!(s.handle(t(0), &d, here()).0, Outcome::Offered(a(100)));
    assert_eq!(
        s.handle(t(0), &select(1, SERVER, a(50)), here()).0,
        Outcome::Nakked
    );
}

#[test]
fn a_client_gets_its_previous_or_requested_address_when_free() {
    let mut s = server();
    assert_eq!(lease(&mut s, t(0), 1), a(100));
    // After expiry, the same client gets the same address back.
    assert_eq!(lease(&mut s, t(700), 1), a(100));
    let mut d = discover(2);
    d.opts_mut().insert(DhcpOption::RequestedIpAddress(a(102)));
    assert_eq!(s.handle(t(700), &d, here()).0, Outcome::Offered(a(102)));
}

//! Reference-behaviour tests for TCP, each citing its RB item. Single-stack tests inject
//! segments and time and assert exactly what the stack emits (packetdrill style); pair
//! tests run two stacks over a wire.

use super::harness::*;
use super::seq::SeqNum;
use super::wire::flags::*;
use super::wire::TcpOptions;
use super::{Errno, Shutdown, TcpConfig, TcpEvent, TcpState};
use sim_core::packet::{Ecn, Payload};
use sim_core::time::{SimDuration, SimTime};
use std::net::Ipv4Addr;

const PEER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);

fn host() -> Host {
    Host::new(Ipv4Addr::new(10, 0, 0, 1), TcpConfig::default())
}

fn pattern(offset: u64, len: u32) -> Payload {
    Payload::Pattern {
        stream: 1,
        offset,
        len,
    }
}

/// Client host with a connection established to PEER:80 (peer ISN 5000, MSS 1460, no
/// options unless `opts`). Returns (host, socket, our ISS).
fn established_client(opts: TcpOptions) -> (Host, super::TcpSocketId, u32) {
    established_client_with(TcpConfig::default(), opts)
}

/// As [`established_client`], on a host configured with `cfg`.
fn established_client_with(cfg: TcpConfig, opts: TcpOptions) -> (Host, super::TcpSocketId, u32) {
    let mut h = Host::new(Ipv4Addr::new(10, 0, 0, 1), cfg);
    let s = h.connect(std::net::SocketAddrV4::new(PEER, 80));
    let syn = h.take_sent().remove(0);
    let iss = syn.seg.seq.0;
    let mut sa = seg(80, syn.seg.src_port, SYN | ACK, 5000, iss + 1, 65535);
    sa.options = opts;
    h.inject(PEER, sa, Payload::empty());
    h.take_sent();
    h.take_events();
    (h, s, iss)
}

// RB-TCP-01
#[test]
fn handshake_carries_random_isn_and_linux_options() {
    let mut h = host();
    let s = h.connect(std::net::SocketAddrV4::new(PEER, 80));
    let out = h.take_sent();
    assert_eq!(out.len(), 1);
    let syn = &out[0];
    assert!(syn.is(SYN));
    let o = syn.seg.options;
    assert_eq!(o.mss, Some(1460));
    assert_eq!(o.window_scale, Some(7));
    assert!(o.sack_permitted);
    assert!(o.timestamps.is_some());
    assert_eq!(syn.seg.window, 64240);
    assert!((32768..=60999).contains(&syn.seg.src_port));
    // Another host (another secret) picks another ISN.
    let mut h2 = Host::new(Ipv4Addr::new(10, 0, 0, 2), TcpConfig::default());
    h2.connect(std::net::SocketAddrV4::new(PEER, 80));
    assert_ne!(h2.take_sent()[0].seg.seq, syn.seg.seq);

    let iss = syn.seg.seq.0;
    let mut sa = seg(80, syn.seg.src_port, SYN | ACK, 777, iss + 1, 65535);
    sa.options = linux_syn_options(1460, 100, o.timestamps.unwrap().0);
    h.inject(PEER, sa, Payload::empty());
    let out = h.take_sent();
    assert_eq!(out.len(), 1);
    assert!(out[0].is(ACK));
    assert_eq!(out[0].seg.seq.0, iss + 1);
    assert_eq!(out[0].seg.ack.0, 778);
    assert_eq!(h.tcp.state(s).unwrap(), TcpState::Established);
    assert_eq!(h.take_events(), vec![(APP, s, TcpEvent::Connected)]);
}

// RB-TCP-02
#[test]
fn mss_is_negotiated_and_defaults_to_536() {
    let (mut h, s, _) = established_client(TcpOptions {
        mss: Some(1000),
        ..TcpOptions::default()
    });
    h.send(s, &pattern(0, 5000));
    let out = h.take_sent();
    assert!(!out.is_empty());
    assert!(out.iter().all(|x| x.len() <= 1000));
    assert_eq!(out[0].len(), 1000);

    let (mut h, s, _) = established_client(TcpOptions::default());
    h.send(s, &pattern(0, 5000));
    let out = h.take_sent();
    assert_eq!(out[0].len(), 536);
    assert!(out.iter().all(|x| x.len() <= 536));
}

// RB-TCP-03
#[test]
fn syn_to_closed_or_unlistened_port_gets_rst() {
    let mut h = host();
    // A socket bound to 80 but never listening is as good as closed.
    let bound = h.tcp.socket(APP);
    let a = h.addr(80);
    h.tcp.bind(&mut h.env, bound, a).unwrap();
    for port in [80, 81] {
        h.inject(
            PEER,
            seg(40000, port, SYN, 1000, 0, 65535),
            Payload::empty(),
        );
        let out = h.take_sent();
        assert_eq!(out.len(), 1);
        assert!(out[0].is(RST | ACK));
        assert_eq!(out[0].seg.seq.0, 0);
        assert_eq!(out[0].seg.ack.0, 1001);
    }
    // And the client side: RST in SYN_SENT fails connect() at once.
    let s = h.connect(std::net::SocketAddrV4::new(PEER, 80));
    let syn = h.take_sent().remove(0);
    h.env.now = at_ms(10);
    h.inject(
        PEER,
        seg(80, syn.seg.src_port, RST | ACK, 0, syn.seg.seq.0 + 1, 0),
        Payload::empty(),
    );
    assert_eq!(
        h.take_events(),
        vec![(APP, s, TcpEvent::Error(Errno::ConnRefused))]
    );
    assert_eq!(h.tcp.state(s).unwrap(), TcpState::Closed);
    let mut out = Vec::new();
    assert_eq!(
        h.tcp.recv(&mut h.env, s, 10, &mut out),
        Err(Errno::ConnRefused)
    );
}

// RB-TCP-04
#[test]
fn unanswered_syn_retries_at_linux_times_then_etimedout_at_127s() {
    let mut h = host();
    let s = h.connect(std::net::SocketAddrV4::new(PEER, 80));
    h.advance_to(at_s(200));
    let times: Vec<u64> = h
        .take_sent()
        .iter()
        .inspect(|x| assert!(x.is(SYN)))
        .map(|x| x.at.as_nanos() / 1_000_000_000)
        .collect();
    assert_eq!(times, vec![0, 1, 3, 7, 15, 31, 63]);
    let ev = h.take_events();
    assert_eq!(ev, vec![(APP, s, TcpEvent::Error(Errno::TimedOut))]);
    // The error surfaced exactly at 127 s: the socket is closed and the port free.
    let mut h = host();
    let s = h.connect(std::net::SocketAddrV4::new(PEER, 80));
    h.advance_to(SimTime::from_nanos(127_000_000_000 - 1));
    assert_eq!(h.tcp.state(s).unwrap(), TcpState::SynSent);
    h.advance_to(at_s(127));
    assert_eq!(h.tcp.state(s).unwrap(), TcpState::Closed);
}

// Karn's rule with timestamps as the tiebreaker, in the handshake (Linux
// tcp_ack_update_rtt): a SYN-ACK for a retransmitted SYN cannot be timed from the SYN,
// but its echoed timestamp gives the RTT of the retransmission it answers.
#[test]
fn a_synack_after_a_syn_retransmission_is_timed_by_its_timestamp() {
    let mut h = host();
    let s = h.connect(std::net::SocketAddrV4::new(PEER, 80));
    h.advance_to(at_ms(1000));
    let syns = h.take_sent();
    assert_eq!(syns.len(), 2);
    let (retransmitted_val, _) = syns[1].seg.options.timestamps.unwrap();
    h.advance_to(at_ms(1100));
    let mut sa = seg(
        80,
        syns[0].seg.src_port,
        SYN | ACK,
        5000,
        syns[0].seg.seq.0 + 1,
        65535,
    );
    sa.options = linux_syn_options(1460, 7, retransmitted_val);
    h.inject(PEER, sa, Payload::empty());
    let info = h.tcp.info(s).unwrap();
    assert_eq!(info.state, TcpState::Established);
    assert_eq!(info.srtt, Some(SimDuration::from_millis(100)));
    // Without timestamps there is nothing to time it by.
    let mut h = host();
    let s = h.connect(std::net::SocketAddrV4::new(PEER, 80));
    h.advance_to(at_ms(1100));
    let syns = h.take_sent();
    let mut sa = seg(
        80,
        syns[0].seg.src_port,
        SYN | ACK,
        5000,
        syns[0].seg.seq.0 + 1,
        65535,
    );
    sa.options.mss = Some(1460);
    h.inject(PEER, sa, Payload::empty());
    assert_eq!(h.tcp.info(s).unwrap().srtt, None);
}

// RB-TCP-04 with a smaller tcp_syn_retries
#[test]
fn syn_retries_is_configurable() {
    let cfg = TcpConfig {
        syn_retries: 2,
        ..TcpConfig::default()
    };
    let mut h = Host::new(Ipv4Addr::new(10, 0, 0, 1), cfg);
    let s = h.connect(std::net::SocketAddrV4::new(PEER, 80));
    h.advance_to(SimTime::from_nanos(at_s(7).as_nanos() - 1));
    assert_eq!(h.tcp.state(s).unwrap(), TcpState::SynSent);
    h.advance_to(at_s(7));
    assert_eq!(h.take_sent().len(), 3);
    assert_eq!(
        h.take_events(),
        vec![(APP, s, TcpEvent::Error(Errno::TimedOut))]
    );
}

// RB-TCP-05
#[test]
fn synack_retries_then_half_open_connection_is_dropped() {
    let mut h = host();
    let l = h.listen(80, 128);
    h.inject(PEER, seg(40000, 80, SYN, 1000, 0, 65535), Payload::empty());
    h.advance_to(at_s(100));
    let out = h.take_sent();
    let times: Vec<u64> = out
        .iter()
        .map(|x| x.at.as_nanos() / 1_000_000_000)
        .collect();
    assert!(out.iter().all(|x| x.is(SYN | ACK)));
    assert_eq!(times, vec![0, 1, 3, 7, 15, 31]);
    // Dropped silently: a late ACK now finds no connection and is reset.
    let isn = out[0].seg.seq.0;
    h.inject(
        PEER,
        seg(40000, 80, ACK, 1001, isn + 1, 65535),
        Payload::empty(),
    );
    let out = h.take_sent();
    assert_eq!(out.len(), 1);
    assert!(out[0].is(RST));
    assert_eq!(h.tcp.accept(&mut h.env, l), Err(Errno::Again));
}

fn syn_in(h: &mut Host, sport: u16) -> u32 {
    h.inject(PEER, seg(sport, 80, SYN, 1000, 0, 65535), Payload::empty());
    let sa = h.take_sent().pop().expect("SYN-ACK");
    assert!(sa.is(SYN | ACK));
    sa.seg.seq.0
}

fn ack_in(h: &mut Host, sport: u16, isn: u32) {
    h.inject(
        PEER,
        seg(sport, 80, ACK, 1001, isn + 1, 65535),
        Payload::empty(),
    );
}

/// Backlog 2: two connections wait in the accept queue and two more handshakes are
/// half done; the third ACK fills the queue (Linux allows backlog + 1, since
/// `sk_acceptq_is_full` is `len > backlog`) and the fourth overflows it.
fn fill_accept_queue(h: &mut Host) -> u32 {
    for sport in [40001, 40002] {
        let isn = syn_in(h, sport);
        ack_in(h, sport, isn);
    }
    let isn3 = syn_in(h, 40003);
    let isn4 = syn_in(h, 40004);
    ack_in(h, 40003, isn3);
    assert_eq!(h.tcp.counters().listen_overflows, 0);
    ack_in(h, 40004, isn4);
    assert_eq!(h.tcp.counters().listen_overflows, 1);
    isn4
}

// RB-TCP-06 (tcp_abort_on_overflow = 0)
#[test]
fn accept_queue_overflow_drops_the_ack_and_completes_later() {
    let mut h = host();
    let l = h.listen(80, 2);
    let isn4 = fill_accept_queue(&mut h);
    assert!(h.take_sent().is_empty(), "the ACK is dropped silently");
    // A full queue also drops new SYNs.
    h.inject(PEER, seg(40005, 80, SYN, 1000, 0, 65535), Payload::empty());
    assert!(h.take_sent().is_empty());
    // Room appears; the SYN-ACK retransmission at 1 s brings the client's ACK again.
    h.tcp.accept(&mut h.env, l).unwrap();
    h.advance_to(at_s(1));
    let out = h.take_sent();
    assert_eq!(out.len(), 1);
    assert!(out[0].is(SYN | ACK));
    assert_eq!(out[0].dst, PEER);
    assert_eq!(out[0].seg.dst_port, 40004);
    ack_in(&mut h, 40004, isn4);
    let mut ports = Vec::new();
    while let Ok((_, peer)) = h.tcp.accept(&mut h.env, l) {
        ports.push(peer.port());
    }
    assert_eq!(ports, vec![40002, 40003, 40004]);
}

// RB-TCP-06 (tcp_abort_on_overflow = 1)
#[test]
fn accept_queue_overflow_with_abort_sends_rst() {
    let cfg = TcpConfig {
        abort_on_overflow: true,
        ..TcpConfig::default()
    };
    let mut h = Host::new(Ipv4Addr::new(10, 0, 0, 1), cfg);
    h.listen(80, 2);
    fill_accept_queue(&mut h);
    let out = h.take_sent();
    assert_eq!(out.len(), 1);
    assert!(out[0].flags() & RST != 0);
    assert_eq!(out[0].seg.dst_port, 40004);
}

// RB-TCP-07
#[test]
fn syn_flood_gets_cookies_and_a_real_client_still_connects() {
    let mut h = host();
    let l = h.listen(80, 8);
    for i in 0..100u16 {
        h.inject(
            Ipv4Addr::new(192, 0, 2, (i % 250) as u8 + 1),
            seg(1000 + i, 80, SYN, 7 * i as u32, 0, 65535),
            Payload::empty(),
        );
    }
    assert_eq!(h.tcp.counters().syncookies_sent, 92);
    h.take_sent();
    // A legitimate client, answered with a cookie, completes.
    let mut syn = seg(45000, 80, SYN, 9000, 0, 65535);
    syn.options.mss = Some(1460);
    h.inject(PEER, syn, Payload::empty());
    let sa = h.take_sent().pop().unwrap();
    assert!(sa.is(SYN | ACK));
    assert_eq!(sa.seg.options.mss, Some(1460));
    h.inject(
        PEER,
        seg(45000, 80, ACK, 9001, sa.seg.seq.0 + 1, 65535),
        Payload::empty(),
    );
    assert_eq!(h.tcp.counters().syncookies_recv, 1);
    let (c, peer) = h.tcp.accept(&mut h.env, l).unwrap();
    assert_eq!(peer.port(), 45000);
    assert_eq!(h.tcp.state(c).unwrap(), TcpState::Established);
    // A forged ACK (wrong cookie) is reset.
    h.inject(PEER, seg(45001, 80, ACK, 1, 12345, 65535), Payload::empty());
    assert!(h.take_sent().pop().unwrap().is(RST));

    // Without cookies the flood fills the SYN queue and the client's SYN is dropped.
    let cfg = TcpConfig {
        syncookies: 0,
        ..TcpConfig::default()
    };
    let mut h = Host::new(Ipv4Addr::new(10, 0, 0, 1), cfg);
    h.listen(80, 8);
    for i in 0..8u16 {
        h.inject(PEER, seg(1000 + i, 80, SYN, 1, 0, 65535), Payload::empty());
    }
    h.take_sent();
    h.inject(PEER, seg(45000, 80, SYN, 9000, 0, 65535), Payload::empty());
    assert!(h.take_sent().is_empty());
    assert!(h.tcp.counters().listen_drops >= 1);
}

fn pair() -> Pair {
    Pair::new(
        TcpConfig::default(),
        TcpConfig::default(),
        SimDuration::from_millis(10),
    )
}

/// Client (host 0) connected to server (host 1) port 80; returns (client, server) sockets.
fn connected(p: &mut Pair) -> (super::TcpSocketId, super::TcpSocketId) {
    let l = p.hosts[1].listen(80, 16);
    let to = p.hosts[1].addr(80);
    let c = p.hosts[0].connect(to);
    p.run_until(p.now + SimDuration::from_millis(30));
    let (s, _) = p.hosts[1].tcp.accept(&mut p.hosts[1].env, l).unwrap();
    assert_eq!(p.hosts[0].tcp.state(c).unwrap(), TcpState::Established);
    (c, s)
}

fn state(p: &Pair, h: usize, s: super::TcpSocketId) -> TcpState {
    p.hosts[h].tcp.state(s).unwrap_or(TcpState::Closed)
}

// RB-TCP-08
#[test]
fn four_way_close_and_three_way_close() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    p.log.clear();
    p.hosts[0].tcp.close(&mut p.hosts[0].env, c).unwrap();
    p.run_until(p.now + SimDuration::from_millis(5));
    assert_eq!(state(&p, 0, c), TcpState::FinWait1);
    p.run_until(p.now + SimDuration::from_millis(10));
    assert_eq!(state(&p, 1, s), TcpState::CloseWait);
    // The server does not close yet: its delayed ACK goes out alone (pingpong: 40 ms+).
    p.run_until(p.now + SimDuration::from_millis(300));
    assert_eq!(state(&p, 0, c), TcpState::FinWait2);
    p.hosts[1].tcp.close(&mut p.hosts[1].env, s).unwrap();
    p.run_until(p.now + SimDuration::from_millis(5));
    assert_eq!(state(&p, 1, s), TcpState::LastAck);
    p.run_until(p.now + SimDuration::from_millis(30));
    assert_eq!(state(&p, 1, s), TcpState::Closed);
    assert_eq!(state(&p, 0, c), TcpState::TimeWait);
    let flags: Vec<String> = p
        .log
        .iter()
        .map(|(i, x, _)| format!("{i}{}", flag_str(x.flags())))
        .collect();
    assert_eq!(flags, vec!["0F.", "1.", "1F.", "0."]);

    // Three-way close: the server closes as soon as it sees EOF.
    let mut p = pair();
    let (c, s) = connected(&mut p);
    p.log.clear();
    p.hosts[0].tcp.close(&mut p.hosts[0].env, c).unwrap();
    p.run_until(p.now + SimDuration::from_millis(10));
    let (_, eof) = p.hosts[1].read_all(s);
    assert!(eof);
    p.hosts[1].tcp.close(&mut p.hosts[1].env, s).unwrap();
    p.run_until(p.now + SimDuration::from_millis(50));
    let flags: Vec<String> = p
        .log
        .iter()
        .map(|(i, x, _)| format!("{i}{}", flag_str(x.flags())))
        .collect();
    assert_eq!(flags, vec!["0F.", "1F.", "0."]);
    assert_eq!(state(&p, 0, c), TcpState::TimeWait);
}

// RB-TCP-09
#[test]
fn time_wait_lasts_60s_and_a_retransmitted_fin_restarts_it() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    p.hosts[0].tcp.close(&mut p.hosts[0].env, c).unwrap();
    p.run_until(p.now + SimDuration::from_millis(10));
    p.hosts[1].read_all(s);
    p.hosts[1].tcp.close(&mut p.hosts[1].env, s).unwrap();
    // Lose the client's last ACK so the server retransmits its FIN.
    p.drop = Some(Box::new(|i, x, _| i == 0 && x.is(ACK)));
    p.run_until(p.now + SimDuration::from_millis(25));
    let tw_start = p.now;
    assert_eq!(state(&p, 0, c), TcpState::TimeWait);
    p.drop = None;
    // The server's FIN comes again after its RTO; the client re-ACKs and restarts.
    p.run_until(tw_start + SimDuration::from_secs(5));
    let refin = p
        .log
        .iter()
        .filter(|(i, x, _)| *i == 1 && x.flags() & FIN != 0)
        .map(|(_, x, _)| x.at)
        .nth(1)
        .expect("FIN retransmitted");
    assert_eq!(state(&p, 1, s), TcpState::Closed);
    let restart = refin + p.delay;
    p.run_until(SimTime::from_nanos(
        (restart + SimDuration::from_secs(60)).as_nanos() - 1,
    ));
    assert_eq!(state(&p, 0, c), TcpState::TimeWait);
    p.run_until(restart + SimDuration::from_secs(60));
    assert_eq!(state(&p, 0, c), TcpState::Closed);
}

// RB-TCP-10
#[test]
fn orphaned_fin_wait_2_dies_after_fin_timeout_but_shutdown_waits_forever() {
    let mut p = pair();
    let (c, _s) = connected(&mut p);
    p.hosts[0].tcp.close(&mut p.hosts[0].env, c).unwrap();
    p.run_until(p.now + SimDuration::from_millis(300));
    assert_eq!(state(&p, 0, c), TcpState::FinWait2);
    let t = p.now;
    p.run_until(t + SimDuration::from_secs(59));
    assert_eq!(state(&p, 0, c), TcpState::FinWait2);
    p.run_until(t + SimDuration::from_secs(61));
    assert_eq!(state(&p, 0, c), TcpState::Closed);

    let mut p = pair();
    let (c, _s) = connected(&mut p);
    p.hosts[0]
        .tcp
        .shutdown(&mut p.hosts[0].env, c, Shutdown::Write)
        .unwrap();
    p.run_until(p.now + SimDuration::from_secs(1000));
    assert_eq!(state(&p, 0, c), TcpState::FinWait2);
}

// RB-TCP-11
#[test]
fn simultaneous_close_goes_through_closing() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    p.hosts[0].tcp.close(&mut p.hosts[0].env, c).unwrap();
    p.hosts[1].tcp.close(&mut p.hosts[1].env, s).unwrap();
    assert_eq!(state(&p, 0, c), TcpState::FinWait1);
    p.run_until(p.now + SimDuration::from_millis(10));
    assert_eq!(state(&p, 0, c), TcpState::Closing);
    assert_eq!(state(&p, 1, s), TcpState::Closing);
    p.run_until(p.now + SimDuration::from_millis(15));
    assert_eq!(state(&p, 0, c), TcpState::TimeWait);
    assert_eq!(state(&p, 1, s), TcpState::TimeWait);
}

// RB-TCP-12
#[test]
fn simultaneous_open_takes_four_segments() {
    let mut p = pair();
    let a = p.hosts[0].tcp.socket(APP);
    let b = p.hosts[1].tcp.socket(APP);
    let (a_addr, b_addr) = (p.hosts[0].addr(5000), p.hosts[1].addr(6000));
    p.hosts[0].tcp.bind(&mut p.hosts[0].env, a, a_addr).unwrap();
    p.hosts[1].tcp.bind(&mut p.hosts[1].env, b, b_addr).unwrap();
    p.hosts[0]
        .tcp
        .connect(&mut p.hosts[0].env, a, b_addr)
        .unwrap();
    p.hosts[1]
        .tcp
        .connect(&mut p.hosts[1].env, b, a_addr)
        .unwrap();
    p.run_until(p.now + SimDuration::from_millis(15));
    assert_eq!(state(&p, 0, a), TcpState::SynReceived);
    assert_eq!(state(&p, 1, b), TcpState::SynReceived);
    p.run_until(p.now + SimDuration::from_millis(20));
    assert_eq!(state(&p, 0, a), TcpState::Established);
    assert_eq!(state(&p, 1, b), TcpState::Established);
    let flags: Vec<String> = p.log.iter().map(|(_, x, _)| flag_str(x.flags())).collect();
    assert_eq!(flags, vec!["S", "S", "S.", "S."]);
    assert_eq!(
        p.hosts[0].take_events(),
        vec![(APP, a, TcpEvent::Connected)]
    );
}

// RB-TCP-14
#[test]
fn half_close_lets_the_peer_keep_sending() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    p.hosts[0]
        .tcp
        .shutdown(&mut p.hosts[0].env, c, Shutdown::Write)
        .unwrap();
    p.run_until(p.now + SimDuration::from_millis(20));
    let (_, eof) = p.hosts[1].read_all(s);
    assert!(eof);
    assert_eq!(p.hosts[1].send(s, &pattern(0, 3000)), 3000);
    p.run_until(p.now + SimDuration::from_millis(50));
    let (got, eof) = p.hosts[0].read_all(c);
    assert!(!eof);
    assert_eq!(got.iter().map(|x| x.len()).sum::<usize>(), 3000);
    assert_eq!(
        p.hosts[0].tcp.send(&mut p.hosts[0].env, c, &pattern(0, 1)),
        Err(Errno::Pipe)
    );
}

// RB-TCP-15
#[test]
fn close_with_unread_data_sends_rst_and_data_after_close_gets_rst() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    p.hosts[0].send(c, &pattern(0, 100));
    p.run_until(p.now + SimDuration::from_millis(20));
    p.log.clear();
    p.hosts[1].tcp.close(&mut p.hosts[1].env, s).unwrap();
    p.run_until(p.now + SimDuration::from_millis(20));
    assert!(p.log[0].1.flags() & RST != 0, "{:?}", p.flags_log());
    assert_eq!(
        p.hosts[0].take_events().last(),
        Some(&(APP, c, TcpEvent::Error(Errno::ConnReset)))
    );

    // Data arriving after close() (orphan in FIN_WAIT) is answered with RST.
    let mut p = pair();
    let (c, s) = connected(&mut p);
    p.hosts[1].tcp.close(&mut p.hosts[1].env, s).unwrap();
    p.run_until(p.now + SimDuration::from_millis(30));
    p.log.clear();
    p.hosts[0].send(c, &pattern(0, 100));
    p.run_until(p.now + SimDuration::from_millis(30));
    let rst = p
        .log
        .iter()
        .find(|(i, x, _)| *i == 1 && x.flags() & RST != 0);
    assert!(rst.is_some(), "{:?}", p.flags_log());
}

// RB-TCP-16
#[test]
fn linger_zero_aborts_with_rst_and_skips_time_wait() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    p.hosts[0]
        .tcp
        .set_opts(&mut p.hosts[0].env, c, |o| {
            o.linger = Some(SimDuration::ZERO)
        })
        .unwrap();
    p.hosts[0].send(c, &pattern(0, 100_000));
    p.log.clear();
    p.hosts[0].tcp.close(&mut p.hosts[0].env, c).unwrap();
    assert!(
        p.hosts[0].tcp.state(c).is_err(),
        "the socket is gone at once"
    );
    p.run_until(p.now + SimDuration::from_millis(30));
    let last0 = p.log.iter().rev().find(|(i, _, _)| *i == 0).unwrap();
    assert!(last0.1.flags() & RST != 0);
    assert_eq!(state(&p, 1, s), TcpState::Closed);
}

// RB-TCP-17
#[test]
fn after_rst_recv_reports_econnreset_and_send_epipe() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    p.hosts[1]
        .tcp
        .set_opts(&mut p.hosts[1].env, s, |o| {
            o.linger = Some(SimDuration::ZERO)
        })
        .unwrap();
    p.hosts[1].tcp.close(&mut p.hosts[1].env, s).unwrap();
    p.run_until(p.now + SimDuration::from_millis(20));
    let mut out = Vec::new();
    assert_eq!(
        p.hosts[0].tcp.recv(&mut p.hosts[0].env, c, 10, &mut out),
        Err(Errno::ConnReset)
    );
    assert_eq!(
        p.hosts[0].tcp.send(&mut p.hosts[0].env, c, &pattern(0, 1)),
        Err(Errno::Pipe)
    );
}

// RB-TCP-18
#[test]
fn only_an_exact_rst_resets_an_in_window_one_gets_a_challenge_ack() {
    let (mut h, s, iss) = established_client(TcpOptions::default());
    // Out of window: ignored silently.
    h.inject(
        PEER,
        seg(80, h_port(&h, s), RST, 5001 + 1_000_000, 0, 0),
        Payload::empty(),
    );
    assert!(h.take_sent().is_empty());
    // In window, not exact: challenge ACK.
    h.inject(
        PEER,
        seg(80, h_port(&h, s), RST, 5001 + 100, 0, 0),
        Payload::empty(),
    );
    let out = h.take_sent();
    assert_eq!(out.len(), 1);
    assert!(out[0].is(ACK));
    assert_eq!(out[0].seg.seq.0, iss + 1);
    assert_eq!(out[0].seg.ack.0, 5001);
    assert_eq!(h.tcp.state(s).unwrap(), TcpState::Established);
    // Exact: reset.
    h.inject(
        PEER,
        seg(80, h_port(&h, s), RST, 5001, 0, 0),
        Payload::empty(),
    );
    assert_eq!(h.tcp.state(s).unwrap(), TcpState::Closed);
    assert_eq!(
        h.take_events(),
        vec![(APP, s, TcpEvent::Error(Errno::ConnReset))]
    );
}

fn h_port(h: &Host, s: super::TcpSocketId) -> u16 {
    h.tcp.info(s).unwrap().local.port()
}

// RB-TCP-19
#[test]
fn syn_on_established_connection_gets_a_challenge_ack_and_the_rst_clears_it() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    let port = p.hosts[0].tcp.info(c).unwrap().local.port();
    // The client host restarts and reuses the port: a fresh stack on the same address.
    p.hosts[0] = Host::new(Ipv4Addr::new(10, 0, 0, 1), TcpConfig::default());
    p.hosts[0].advance_to(p.now);
    let c2 = p.hosts[0].tcp.socket(APP);
    let a = p.hosts[0].addr(port);
    p.hosts[0].tcp.bind(&mut p.hosts[0].env, c2, a).unwrap();
    let to = p.hosts[1].addr(80);
    p.hosts[0].tcp.connect(&mut p.hosts[0].env, c2, to).unwrap();
    p.log.clear();
    p.run_until(p.now + SimDuration::from_millis(35));
    let flags: Vec<String> = p
        .log
        .iter()
        .map(|(i, x, _)| format!("{i}{}", flag_str(x.flags())))
        .collect();
    // SYN, challenge ACK, RST from the new client; the stale connection is gone.
    assert_eq!(&flags[..3], &["0S", "1.", "0R"]);
    assert_eq!(state(&p, 1, s), TcpState::Closed);
    // The SYN retransmission at 1 s then connects.
    p.run_until(p.now + SimDuration::from_secs(2));
    assert_eq!(p.hosts[0].tcp.state(c2).unwrap(), TcpState::Established);
}

// RB-TCP-20 (retransmissions to a crashed peer)
#[test]
fn retries2_gives_etimedout_after_924_6_seconds() {
    let mut p = Pair::new(
        TcpConfig::default(),
        TcpConfig::default(),
        SimDuration::from_micros(100),
    );
    let (c, _s) = connected(&mut p);
    // Warm the RTT estimator so RTO sits at its 200 ms floor.
    for i in 0..20u64 {
        p.hosts[0].send(c, &pattern(i * 100, 100));
        p.run_until(p.now + SimDuration::from_millis(300));
    }
    let rto = p.hosts[0].tcp.info(c).unwrap().rto;
    // RTO = SRTT + max(4 * RTTVAR, 200 ms): just above 200 ms on this short path.
    assert_eq!(rto, SimDuration::from_micros(200_200));
    // The server vanishes.
    p.drop = Some(Box::new(|_, _, _| true));
    let t0 = p.now;
    p.hosts[0].send(c, &pattern(2000, 100));
    p.run_until(t0 + SimDuration::from_secs(924));
    assert_eq!(p.hosts[0].tcp.state(c).unwrap(), TcpState::Established);
    p.run_until(t0 + SimDuration::from_secs(2000));
    let sends: Vec<SimTime> = p
        .log
        .iter()
        .filter(|(i, x, d)| *i == 0 && *d && x.len() > 0)
        .map(|(_, x, _)| x.at)
        .collect();
    assert_eq!(
        sends.len(),
        17,
        "original + tail loss probe + tcp_retries2 = 15 retransmissions"
    );
    let gaps: Vec<u64> = sends
        .windows(2)
        .map(|w| (w[1] - w[0]).as_nanos() / 100_000)
        .collect();
    // The probe after 2 x SRTT + 200 ms (one segment out), capped at the RTO; then
    // exponential backoff from the RTO restarted at the probe (in 0.1 ms), capped at 120 s.
    let mut want = vec![2002u64];
    for k in 0..15u32 {
        want.push((2002u64 << k).min(1_200_000));
    }
    assert_eq!(gaps, want);
    let err = p.hosts[0]
        .take_events()
        .into_iter()
        .find(|e| matches!(e.2, TcpEvent::Error(_)));
    assert_eq!(err.map(|e| e.2), Some(TcpEvent::Error(Errno::TimedOut)));
    // Linux gives up at the first RTO expiry at least 0.2 * (2^10 - 1) + 6 * 120 = 924.6 s
    // after the first retransmission's previous sending (here the probe): 120 s after the
    // last retransmission.
    let died = *sends.last().unwrap() + SimDuration::from_secs(120);
    assert!(died - sends[1] >= SimDuration::from_millis(924_600));
    assert!(died - sends[1] < SimDuration::from_millis(925_000));
}

// RB-TCP-20 (keepalive)
#[test]
fn keepalive_drops_a_silent_peer_after_the_probes() {
    let mut p = pair();
    let (c, _s) = connected(&mut p);
    // Linux arms the keepalive timer in setsockopt(SO_KEEPALIVE).
    p.hosts[0]
        .tcp
        .set_opts(&mut p.hosts[0].env, c, |o| o.keepalive = true)
        .unwrap();
    let t0 = p.now;
    p.drop = Some(Box::new(|_, _, _| true));
    p.run_until(t0 + SimDuration::from_secs(9000));
    let probes: Vec<u64> = p
        .log
        .iter()
        .filter(|(i, _, d)| *i == 0 && *d)
        .map(|(_, x, _)| (x.at - t0).as_nanos() / 1_000_000_000)
        .collect();
    assert_eq!(
        probes[..9],
        [7200, 7275, 7350, 7425, 7500, 7575, 7650, 7725, 7800]
    );
    assert_eq!(p.hosts[0].tcp.state(c).unwrap(), TcpState::Closed);
    // Keepalive off: stays ESTABLISHED forever.
    let mut p = pair();
    let (c, _s) = connected(&mut p);
    p.drop = Some(Box::new(|_, _, _| true));
    p.run_until(p.now + SimDuration::from_secs(20000));
    assert_eq!(p.hosts[0].tcp.state(c).unwrap(), TcpState::Established);
}

// RB-TCP-22
#[test]
fn port_reuse_needs_reuseaddr_and_time_wait() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    let _ = c;
    // Server closes first: its side of the connection sits in TIME_WAIT holding port 80.
    p.hosts[1].tcp.close(&mut p.hosts[1].env, s).unwrap();
    p.run_until(p.now + SimDuration::from_millis(20));
    p.hosts[0].read_all(c);
    p.hosts[0].tcp.close(&mut p.hosts[0].env, c).unwrap();
    p.run_until(p.now + SimDuration::from_millis(50));
    assert_eq!(state(&p, 1, s), TcpState::TimeWait);
    let h = &mut p.hosts[1];
    // The listener itself is still bound: close it so only TIME_WAIT holds the port.
    let l2 = h.tcp.socket(APP);
    let a = h.addr(80);
    assert_eq!(h.tcp.bind(&mut h.env, l2, a), Err(Errno::AddrInUse));
}

// RB-TCP-33 (SACK): fast retransmit after the third duplicate ACK
#[test]
fn fast_retransmit_after_three_dupacks_with_sack() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    // Lose the third data segment once.
    let mut lost = false;
    p.drop = Some(Box::new(move |i, x, _| {
        let third = matches!(x.payload, Payload::Pattern { offset, .. } if offset == 2 * 1448);
        if i == 0 && third && !lost {
            lost = true;
            return true;
        }
        false
    }));
    assert_eq!(p.hosts[0].send(c, &pattern(0, 10 * 1448)), 10 * 1448);
    p.run_until(p.now + SimDuration::from_millis(100));
    let retrans: Vec<_> = p
        .log
        .iter()
        .filter(|(i, x, _)| {
            *i == 0 && matches!(x.payload, Payload::Pattern { offset, .. } if offset == 2 * 1448)
        })
        .map(|(_, x, d)| (x.at, *d))
        .collect();
    assert_eq!(retrans.len(), 2, "{retrans:?}");
    // Retransmitted on the third duplicate ACK: one RTT after the 6th segment left.
    let info = p.hosts[0].tcp.info(c).unwrap();
    assert_eq!(info.fast_retransmits, 1);
    assert_eq!(info.rto_timeouts, 0);
    let (got, _) = p.hosts[1].read_all(s);
    let mut v = super::buffer::StreamVerifier::default();
    for g in &got {
        assert!(v.check(g));
    }
    assert_eq!(v.verified, 10 * 1448);
}

// RB-TCP-37
#[test]
fn initial_window_is_ten_segments_and_slow_start_doubles() {
    let mut p = pair();
    let (c, _s) = connected(&mut p);
    p.log.clear();
    p.hosts[0].send(c, &pattern(0, 1_000_000));
    p.run_until(p.now + SimDuration::from_millis(1));
    let first_flight = p
        .log
        .iter()
        .filter(|(i, x, _)| *i == 0 && x.len() > 0)
        .count();
    assert_eq!(first_flight, 10);
    // After one RTT (20 ms) every ACK added one segment: 20 in flight.
    p.run_until(p.now + SimDuration::from_millis(20));
    let info = p.hosts[0].tcp.info(c).unwrap();
    assert_eq!(info.cwnd, 20 * 1448);
}

// RB-TCP-35
#[test]
fn zero_window_stops_the_sender_and_persist_probes_back_off() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    // The server never reads: its buffer fills and the window closes.
    let mut written = 0u64;
    for _ in 0..60 {
        written += p.hosts[0].send(c, &pattern(written, (400_000 - written) as u32)) as u64;
        p.run_until(p.now + SimDuration::from_millis(50));
    }
    let info = p.hosts[0].tcp.info(c).unwrap();
    assert_eq!(info.snd_wnd, 0);
    assert!(info.zero_window_probes >= 2, "{info:?}");
    // Reading opens the window; the transfer resumes and completes.
    for _ in 0..200 {
        if written < 400_000 {
            written += p.hosts[0].send(c, &pattern(written, (400_000 - written) as u32)) as u64;
        }
        p.hosts[1].read_all(s);
        p.run_until(p.now + SimDuration::from_millis(50));
    }
    let info = p.hosts[0].tcp.info(c).unwrap();
    assert_eq!(info.bytes_acked, 400_000);
}

// RB-TCP-30: a lossy, reordering wire still delivers the exact byte stream.
#[test]
fn byte_stream_survives_loss() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    let mut k = 0u64;
    p.drop = Some(Box::new(move |_, _, _| {
        k = k
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (k >> 33).is_multiple_of(20)
    }));
    let total = 300_000u64;
    let mut written = 0u64;
    let mut v = super::buffer::StreamVerifier::default();
    let mut eof = false;
    for _ in 0..4000 {
        if written < total {
            let n = p.hosts[0].send(c, &pattern(written, (total - written).min(20_000) as u32));
            written += n as u64;
            if written == total {
                p.hosts[0].tcp.close(&mut p.hosts[0].env, c).unwrap();
            }
        }
        let (got, e) = p.hosts[1].read_all(s);
        for g in &got {
            assert!(v.check(g), "mismatch at {}", v.verified);
        }
        if e {
            eof = true;
            break;
        }
        p.run_until(p.now + SimDuration::from_millis(20));
    }
    assert!(eof);
    assert_eq!(v.verified, total);
    assert_eq!(v.mismatches, 0);
}

#[test]
fn seq_numbers_in_trace_wrap() {
    // RB-TCP-31 at the connection level: a peer ISN near 2^32 wraps during transfer.
    let mut h = host();
    let s = h.connect(std::net::SocketAddrV4::new(PEER, 80));
    let syn = h.take_sent().remove(0);
    let peer_isn = u32::MAX - 100;
    h.inject(
        PEER,
        seg(
            80,
            syn.seg.src_port,
            SYN | ACK,
            peer_isn,
            syn.seg.seq.0 + 1,
            65535,
        ),
        Payload::empty(),
    );
    h.take_sent();
    let d = seg(
        80,
        syn.seg.src_port,
        ACK | PSH,
        peer_isn.wrapping_add(1),
        syn.seg.seq.0 + 1,
        65535,
    );
    h.inject(PEER, d, pattern(0, 500));
    let ack = h.take_sent();
    let last = ack.last().map(|x| x.seg.ack);
    h.advance_to(at_s(1));
    let last = last.or_else(|| h.take_sent().last().map(|x| x.seg.ack));
    assert_eq!(last, Some(SeqNum(peer_isn) + 501));
    let (got, _) = h.read_all(s);
    assert_eq!(got.iter().map(|p| p.len()).sum::<usize>(), 500);
}

// RB-TCP-13
#[test]
fn self_connect_completes_and_closes() {
    let mut p = pair();
    let s = p.hosts[0].tcp.socket(APP);
    let me = p.hosts[0].addr(7777);
    p.hosts[0].tcp.bind(&mut p.hosts[0].env, s, me).unwrap();
    p.hosts[0].tcp.connect(&mut p.hosts[0].env, s, me).unwrap();
    p.run_until(p.now + SimDuration::from_millis(50));
    assert_eq!(state(&p, 0, s), TcpState::Established);
    p.hosts[0].send(s, &pattern(0, 5000));
    p.run_until(p.now + SimDuration::from_millis(50));
    let (got, _) = p.hosts[0].read_all(s);
    assert_eq!(got.iter().map(|x| x.len()).sum::<usize>(), 5000);
    p.hosts[0]
        .tcp
        .shutdown(&mut p.hosts[0].env, s, Shutdown::Write)
        .unwrap();
    p.run_until(p.now + SimDuration::from_millis(50));
    // Its own FIN arrives: FIN_WAIT_1 -> CLOSING -> TIME_WAIT, like a simultaneous close.
    assert_eq!(state(&p, 0, s), TcpState::TimeWait);
    let flags: Vec<String> = p.log.iter().map(|(_, x, _)| flag_str(x.flags())).collect();
    assert_eq!(&flags[..2], &["S", "S."]);
}

// RB-TCP-34
#[test]
fn delayed_ack_every_second_segment_or_after_40ms() {
    let (mut h, s, iss) = established_client(linux_syn_options(1460, 1, 1));
    let port = h_port(&h, s);
    let _ = iss;
    let mut seq = 5001u32;
    let data = |h: &mut Host, seq: &mut u32, n: u32| {
        let mut d = seg(80, port, ACK, *seq, iss + 1, 65535);
        d.options.timestamps = Some((2, 1));
        h.inject(PEER, d, pattern(0, n));
        *seq += n;
    };
    // Quick-ACK mode at the start: every segment is ACKed at once.
    data(&mut h, &mut seq, 1448);
    assert_eq!(h.take_sent().len(), 1);
    // Quick-ACK mode lasts 16 ACKs; then owed ACKs wait.
    h.read_all(s);
    for _ in 0..20 {
        data(&mut h, &mut seq, 1448);
        h.read_all(s);
    }
    let now = h.env.now;
    h.advance_to(now + SimDuration::from_millis(100));
    h.take_sent();
    let t0 = h.env.now;
    // Two full segments: ACKed immediately on the second.
    data(&mut h, &mut seq, 1448);
    assert!(h.take_sent().is_empty());
    data(&mut h, &mut seq, 1448);
    let out = h.take_sent();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].seg.ack.0, seq);
    // One small segment alone waits for the delayed-ACK timer (40 ms at most here).
    data(&mut h, &mut seq, 100);
    assert!(h.take_sent().is_empty());
    h.advance_to(t0 + SimDuration::from_millis(39));
    assert!(h.take_sent().is_empty());
    h.advance_to(t0 + SimDuration::from_millis(40));
    let out = h.take_sent();
    assert_eq!(out.len(), 1, "delayed ACK at 40 ms");
    assert_eq!(out[0].seg.ack.0, seq);
}

// RB-TCP-36
#[test]
fn nagle_holds_small_writes_while_data_is_unacknowledged() {
    let (mut h, s, iss) = established_client(TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    });
    let port = h_port(&h, s);
    h.send(s, &pattern(0, 100));
    h.send(s, &pattern(100, 100));
    h.send(s, &pattern(200, 100));
    let out = h.take_sent();
    assert_eq!(out.len(), 1, "later small writes wait");
    assert_eq!(out[0].len(), 100);
    assert!(out[0].flags() & PSH != 0);
    h.inject(
        PEER,
        seg(80, port, ACK, 5001, iss + 101, 65535),
        Payload::empty(),
    );
    let out = h.take_sent();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].len(), 200, "held writes go out merged");
    // With TCP_NODELAY every write leaves at once.
    let (mut h, s, _) = established_client(TcpOptions::default());
    h.tcp.set_opts(&mut h.env, s, |o| o.nodelay = true).unwrap();
    h.send(s, &pattern(0, 100));
    h.send(s, &pattern(100, 100));
    assert_eq!(h.take_sent().len(), 2);
}

// RB-TCP-33 (no SACK): NewReno retransmits the next hole on a partial ACK
#[test]
fn newreno_partial_ack_retransmits_the_next_hole() {
    let newreno = TcpConfig {
        congestion_control: "newreno".into(),
        ..TcpConfig::default()
    };
    let (mut h, s, iss) = established_client_with(
        newreno,
        TcpOptions {
            mss: Some(1000),
            ..TcpOptions::default()
        },
    );
    let port = h_port(&h, s);
    h.send(s, &pattern(0, 10_000));
    let out = h.take_sent();
    assert_eq!(out.len(), 10);
    let una = iss + 1;
    // Segments 1 and 4 (0-based) are lost: an ACK for byte 1000, then three duplicates.
    for _ in 0..4 {
        h.inject(
            PEER,
            seg(80, port, ACK, 5001, una + 1000, 65535),
            Payload::empty(),
        );
    }
    let out = h.take_sent();
    assert_eq!(
        out[0].seg.seq.0,
        una + 1000,
        "fast retransmit of the first hole"
    );
    // The retransmission fills it: partial ACK up to the second hole.
    h.inject(
        PEER,
        seg(80, port, ACK, 5001, una + 4000, 65535),
        Payload::empty(),
    );
    let out = h.take_sent();
    assert!(
        out.iter()
            .any(|x| x.seg.seq.0 == una + 4000 && x.len() == 1000),
        "{:?}",
        out.iter().map(|x| x.seg.seq.0 - una).collect::<Vec<_>>()
    );
    let info = h.tcp.info(s).unwrap();
    assert_eq!(info.ca_state, "recovery");
    assert_eq!(info.rto_timeouts, 0);
}

// RB-IP-04
#[test]
fn fragmentation_needed_lowers_mss_and_retransmits_at_once() {
    let (mut h, s, iss) = established_client(TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    });
    let port = h_port(&h, s);
    h.send(s, &pattern(0, 3000));
    let out = h.take_sent();
    assert_eq!(out[0].len(), 1460);
    h.env.now = at_ms(5);
    let me = h.addr(port);
    h.tcp.icmp_error(
        &mut h.env,
        me,
        std::net::SocketAddrV4::new(PEER, 80),
        SeqNum(iss + 1),
        Some(sim_core::packet::UnreachableCode::FragmentationNeeded),
        1200,
    );
    let out = h.take_sent();
    assert!(!out.is_empty(), "retransmitted without waiting for the RTO");
    assert!(out.iter().all(|x| x.len() <= 1160));
    assert_eq!(out[0].seg.seq.0, iss + 1);
    assert_eq!(out[0].at, at_ms(5));
    assert_eq!(h.tcp.info(s).unwrap().mss, 1160);
}

// RB-TCP-21
#[test]
fn killed_process_closes_with_fin_or_rst() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    p.log.clear();
    p.hosts[0].tcp.close_owned_by(&mut p.hosts[0].env, APP);
    p.run_until(p.now + SimDuration::from_millis(30));
    assert_eq!(flag_str(p.log[0].1.flags()), "F.");
    assert_eq!(state(&p, 1, s), TcpState::CloseWait);
    let _ = c;
    // With unread data the kernel resets instead.
    let mut p = pair();
    let (c, _s) = connected(&mut p);
    p.hosts[1].send(_s, &pattern(0, 10));
    p.run_until(p.now + SimDuration::from_millis(30));
    p.log.clear();
    p.hosts[0].tcp.close_owned_by(&mut p.hosts[0].env, APP);
    p.run_until(p.now + SimDuration::from_millis(30));
    assert!(p.log[0].1.flags() & RST != 0);
    let _ = c;
}

// RB-TCP-35 (receiver side): silly window avoidance. Without window scaling a receiver
// whose application does not read offers whole multiples of the MSS and then exactly
// zero, never a sliver of a few hundred bytes.
#[test]
fn receiver_offers_whole_segments_then_exactly_zero() {
    let (mut h, s, iss) = established_client(TcpOptions::default());
    let port = h.tcp.info(s).unwrap().local.port();
    let mss = 1460u32;
    let mut seq = 5001u32;
    let mut window = 65535u32;
    let mut offered = Vec::new();
    let mut right_edge = seq + window;
    for i in 0..200u64 {
        if seq + mss > right_edge {
            break;
        }
        h.advance_to(at_ms(1 + 300 * i));
        let data = seg(80, port, ACK, seq, iss + 1, 65535);
        h.inject(PEER, data, pattern((seq - 5001) as u64, mss));
        seq += mss;
        // Force the ACK out now rather than waiting for the delayed-ACK timer.
        h.advance_to(at_ms(1 + 300 * i + 250));
        for out in h.take_sent() {
            if out.is(ACK) && out.seg.ack.0 == seq {
                window = out.seg.window as u32;
                right_edge = seq + window;
                offered.push(window);
            }
        }
    }
    assert_eq!(*offered.last().unwrap(), 0, "{offered:?}");
    for w in &offered {
        assert!(*w == 0 || w % mss == 0, "sliver {w} in {offered:?}");
    }
    // The buffer (128 KiB) held about twice the first offer before closing.
    let held = (seq - 5001) as u64;
    assert!((120_000..=131_072).contains(&held), "{held}");
}

// Regression: a sender limited by the receiver's window kept growing cwnd without bound
// (is_cwnd_limited was sticky). Linux grows cwnd only when it is the limit (RFC 7661):
// in slow start up to twice what was in flight, plus what the last window in which cwnd
// did limit allowed; after that it stays put however long the transfer runs.
#[test]
fn cwnd_does_not_grow_while_the_receiver_window_limits() {
    let small = TcpConfig {
        rmem: [4096, 65536, 65536],
        moderate_rcvbuf: false,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(TcpConfig::default(), small, SimDuration::from_millis(10));
    let (c, s) = connected(&mut p);
    let mut written = 0u64;
    let mut run = |p: &mut Pair, rounds: usize| {
        for _ in 0..rounds {
            written += p.hosts[0].send(c, &pattern(written, 200_000)) as u64;
            p.hosts[1].read_all(s);
            p.run_until(p.now + SimDuration::from_millis(20));
        }
    };
    run(&mut p, 20);
    let early = p.hosts[0].tcp.info(c).unwrap();
    run(&mut p, 230);
    let info = p.hosts[0].tcp.info(c).unwrap();
    assert!(info.bytes_acked > 5_000_000, "{info:?}");
    assert!(info.snd_wnd <= 65536);
    assert_eq!(
        info.cwnd, early.cwnd,
        "cwnd grew while the receiver limited the sender"
    );
    assert!(
        info.cwnd <= 3 * 65536,
        "cwnd {} with a 64 KiB window",
        info.cwnd
    );
}

// Regression: receive-buffer auto-tuning measured "per RTT" with the receiver's own
// handshake RTT, which misses queueing delay on the data path, so the window stopped
// growing below the path's real BDP. The receiver now estimates the RTT from the
// timestamps its data echoes (Linux rcv_rtt_est).
#[test]
fn receiver_estimates_the_data_path_rtt_for_autotuning() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    // Data segments take 30 ms longer than the handshake did (a queue builds up).
    p.impair = Some(Box::new(|i, x, _| {
        let extra = if i == 0 && x.len() > 0 { 30 } else { 0 };
        (SimDuration::from_millis(extra), false)
    }));
    // The application keeps the send buffer full, so data leaves as soon as ACKs allow.
    let mut written = 0u64;
    for _ in 0..2000 {
        written += p.hosts[0].send(c, &pattern(written, 1_000_000)) as u64;
        p.hosts[1].read_all(s);
        p.run_until(p.now + SimDuration::from_millis(1));
    }
    let info = p.hosts[1].tcp.info(s).unwrap();
    // One-way 10 ms each way plus the 30 ms: 50 ms, at the timestamps' 1 ms resolution.
    let rtt = info.rcv_rtt.expect("a receiver RTT estimate");
    assert!(
        (SimDuration::from_millis(49)..=SimDuration::from_millis(51)).contains(&rtt),
        "{rtt:?}"
    );
    // The window has grown well past what the first round trips needed.
    assert!(info.rcv_wnd > 2_000_000, "{info:?}");
}

// Regression (RB-TCP-33): a window update (same ACK, larger window, no data) is not a
// duplicate ACK (Linux FLAG_WIN_UPDATE); three of them must not trigger fast retransmit,
// three true duplicates must.
#[test]
fn window_updates_are_not_duplicate_acks() {
    let (mut h, s, iss) = established_client(TcpOptions::default());
    let port = h.tcp.info(s).unwrap().local.port();
    h.send(s, &pattern(0, 10 * 536));
    assert_eq!(h.take_sent().len(), 10);
    let mut t = 1;
    for win in [20000, 30000, 40000] {
        h.advance_to(at_ms(t));
        t += 1;
        h.inject(
            PEER,
            seg(80, port, ACK, 5001, iss + 1, win),
            Payload::empty(),
        );
    }
    let info = h.tcp.info(s).unwrap();
    assert_eq!(info.dup_acks_in, 0);
    assert_eq!(info.fast_retransmits, 0);
    assert!(h.take_sent().is_empty());
    for _ in 0..3 {
        h.advance_to(at_ms(t));
        t += 1;
        h.inject(
            PEER,
            seg(80, port, ACK, 5001, iss + 1, 40000),
            Payload::empty(),
        );
    }
    let info = h.tcp.info(s).unwrap();
    assert_eq!(info.dup_acks_in, 3);
    assert_eq!(info.fast_retransmits, 1);
    let out = h.take_sent();
    assert_eq!(out[0].seg.seq.0, iss + 1, "the first segment is resent");
}

/// A client connected at 0 ms with a 100 ms handshake RTT (so SRTT = 100 ms), options as
/// `timestamps` says; sends one segment at 1 s and lets the RTO retransmit it. Returns the
/// host, socket, ISS, and the retransmission.
fn retransmitted_segment(timestamps: bool) -> (Host, super::TcpSocketId, u32, Sent) {
    let mut h = host();
    let s = h.connect(std::net::SocketAddrV4::new(PEER, 80));
    let syn = h.take_sent().remove(0);
    let iss = syn.seg.seq.0;
    h.advance_to(at_ms(100));
    let mut sa = seg(80, syn.seg.src_port, SYN | ACK, 5000, iss + 1, 65535);
    if timestamps {
        sa.options = linux_syn_options(1460, 7000, syn.seg.options.timestamps.unwrap().0);
    }
    h.inject(PEER, sa, Payload::empty());
    h.take_sent();
    assert_eq!(
        h.tcp.info(s).unwrap().srtt,
        Some(SimDuration::from_millis(100))
    );
    h.advance_to(at_ms(1000));
    h.send(s, &pattern(0, 100));
    assert_eq!(h.take_sent().len(), 1);
    // RTO = SRTT + max(4 RTTVAR, 200 ms) = 100 + 200 ms.
    h.advance_to(at_ms(1300));
    let mut out = h.take_sent();
    assert_eq!(out.len(), 1, "retransmitted at 1.3 s");
    (h, s, iss, out.remove(0))
}

// RB-TCP-32: Karn's rule. Without timestamps an ACK for a retransmitted segment gives no
// RTT sample (it could be for either transmission).
#[test]
fn ack_of_a_retransmission_gives_no_rtt_sample_without_timestamps() {
    let (mut h, s, iss, rtx) = retransmitted_segment(false);
    h.advance_to(at_ms(1320));
    let ack = seg(80, rtx.seg.src_port, ACK, 5001, iss + 101, 65535);
    h.inject(PEER, ack, Payload::empty());
    let info = h.tcp.info(s).unwrap();
    assert_eq!(info.bytes_acked, 100);
    assert_eq!(
        info.srtt,
        Some(SimDuration::from_millis(100)),
        "no sample taken"
    );
}

// RB-TCP-38: with timestamps the echoed value dates the transmission that was ACKed, so
// even a retransmission gives a sample (RFC 7323 4.1).
#[test]
fn timestamps_give_an_rtt_sample_even_for_a_retransmission() {
    let (mut h, s, iss, rtx) = retransmitted_segment(true);
    let (tsval, _) = rtx.seg.options.timestamps.expect("timestamps on");
    h.advance_to(at_ms(1320));
    let mut ack = seg(80, rtx.seg.src_port, ACK, 5001, iss + 101, 65535);
    ack.options.timestamps = Some((7100, tsval));
    h.inject(PEER, ack, Payload::empty());
    let info = h.tcp.info(s).unwrap();
    assert_eq!(info.bytes_acked, 100);
    // The 20 ms sample: SRTT = 7/8 * 100 + 1/8 * 20 = 90 ms.
    assert_eq!(info.srtt, Some(SimDuration::from_millis(90)));
}

// RB-TCP-38: PAWS. A segment whose timestamp is older than the last one accepted is an
// old duplicate: it is dropped (its data is not delivered) and answered with an ACK.
#[test]
fn paws_drops_a_segment_with_an_old_timestamp() {
    let (mut h, s, iss, _) = retransmitted_segment(true);
    let port = h.tcp.info(s).unwrap().local.port();
    let ts = |val| TcpOptions {
        timestamps: Some((val, 0)),
        ..TcpOptions::default()
    };
    h.advance_to(at_ms(1400));
    let mut fresh = seg(80, port, ACK, 5001, iss + 1, 65535);
    fresh.options = ts(8000);
    h.inject(PEER, fresh, pattern(0, 500));
    assert_eq!(h.tcp.info(s).unwrap().bytes_received, 500);
    h.take_sent();
    // In-window data, but stamped before 8000: an old duplicate from a previous life.
    let mut old = seg(80, port, ACK, 5501, iss + 1, 65535);
    old.options = ts(7999);
    h.inject(PEER, old, pattern(500, 500));
    assert_eq!(h.tcp.info(s).unwrap().bytes_received, 500, "dropped");
    let out = h.take_sent();
    assert_eq!(out.len(), 1);
    assert!(out[0].is(ACK));
    assert_eq!(out[0].seg.ack.0, 5501, "ACKs what it has");
    // The same data with a current timestamp is accepted.
    let mut again = seg(80, port, ACK, 5501, iss + 1, 65535);
    again.options = ts(8001);
    h.inject(PEER, again, pattern(500, 500));
    assert_eq!(h.tcp.info(s).unwrap().bytes_received, 1000);
}

// Pacing (Linux's EDT model, per connection): with `tcp_pacing` on, Linux's default rate
// is twice cwnd per SRTT in slow start. Each data segment advances the next departure
// time by its payload length at that rate (`tcp_update_skb_after_send` divides the
// headerless skb->len), less up to half of it as credit for leaving late; a connection's
// first 10 data segments are not paced (as the original fq did not pace a flow's first
// 10 MSS).
/// The send times (ns) of the data segments a paced sender (`tcp_pacing` on, `gso` as
/// given) sends of 20 written: its SYN-ACK comes 100 ms after the SYN, so the first 10
/// leave then; the ACK of those comes at 200 ms (cwnd 20, SRTT 100 ms: 2 x 20 x 1460 B /
/// 100 ms = 584 000 B/s) and the other 10 leave by 300 ms.
fn paced_send_times(gso: bool) -> (Vec<u64>, Vec<u64>) {
    let cfg = TcpConfig {
        pacing: true,
        gso,
        ..TcpConfig::default()
    };
    let mut h = Host::new(Ipv4Addr::new(10, 0, 0, 1), cfg);
    let s = h.connect(std::net::SocketAddrV4::new(PEER, 80));
    let syn = h.take_sent().remove(0);
    let iss = syn.seg.seq.0;
    h.advance_to(at_ms(100));
    let mut sa = seg(80, syn.seg.src_port, SYN | ACK, 5000, iss + 1, 65535);
    sa.options.mss = Some(1460);
    h.inject(PEER, sa, Payload::empty());
    h.take_sent();
    assert_eq!(h.send(s, &pattern(0, 20 * 1460)), 20 * 1460);
    let times = |h: &mut Host| -> Vec<u64> {
        h.take_sent()
            .iter()
            .filter(|x| x.len() > 0)
            .map(|x| x.at.as_nanos())
            .collect()
    };
    let first = times(&mut h);
    h.advance_to(at_ms(200));
    h.inject(
        PEER,
        seg(80, syn.seg.src_port, ACK, 5001, iss + 1 + 10 * 1460, 65535),
        Payload::empty(),
    );
    h.advance_to(at_ms(300));
    assert_eq!(h.tcp.info(s).unwrap().cwnd, 20 * 1460);
    (first, times(&mut h))
}

// Without GSO (`tcp_gso: false`), every segment is a burst of its own.
#[test]
fn pacing_spaces_segments_by_payload_after_the_first_ten() {
    let (first, sent) = paced_send_times(false);
    // The initial window goes out at once, unpaced.
    assert_eq!(first, vec![100_000_000; 10]);
    // One 1460-byte segment per 2.5 ms at 584 000 B/s (the headers would make it 2.568
    // ms). The first of them leaves late (the 10th segment's slot ended at 105 ms), so
    // half its time is forgiven.
    assert_eq!(sent.len(), 10);
    let gap = 1460u64 * 1_000_000_000 / 584_000;
    assert_eq!(gap, 2_500_000);
    assert_eq!(sent[0], 200_000_000);
    for (i, t) in sent.iter().enumerate().skip(1) {
        assert_eq!(
            *t,
            200_000_000 + gap / 2 + (i as u64 - 1) * gap,
            "segment {i}"
        );
    }
}

// With GSO (Linux's default), the pacing clock lets a burst of `tcp_tso_autosize` segments
// go back to back and charges the burst as one skb. At 584 000 B/s a millisecond is 570
// bytes, less than a segment, so bursts are `tcp_min_tso_segs` = 2 segments; the RTT (100
// ms) is too long for `tcp_tso_rtt_log` to add anything.
#[test]
fn pacing_sends_gso_bursts_and_charges_each_as_one() {
    let (first, sent) = paced_send_times(true);
    // The initial window leaves at once in five bursts of two. The fifth holds the 10th
    // segment, so it is the first charged: 2 x 1460 B at 2 x 10 x 1460 B / 100 ms = 10 ms.
    assert_eq!(first, vec![100_000_000; 10]);
    // At 584 000 B/s a burst of two takes 5 ms. The first starts 90 ms after the clock
    // (110 ms), so half of its 5 ms is forgiven.
    let ms = |x: f64| (x * 1e6) as u64;
    assert_eq!(
        sent,
        [200.0, 200.0, 202.5, 202.5, 207.5, 207.5, 212.5, 212.5, 217.5, 217.5].map(ms)
    );
}

#[test]
fn gso_bursts_follow_linux_tcp_tso_autosize() {
    use super::conn::tso_autosize;
    let ms = SimDuration::from_millis;
    // 100 Mb/s: 12 207 bytes a millisecond, 8 segments of 1448.
    assert_eq!(tso_autosize(12_500_000, 1448, Some(ms(20)), Some(9), 2), 8);
    // A 1 ms RTT (1000 µs >> 9 = 1) adds 65 215 >> 1 = 32 607 bytes: 30 segments.
    assert_eq!(tso_autosize(12_500_000, 1448, Some(ms(1)), Some(9), 2), 30);
    assert_eq!(tso_autosize(12_500_000, 1448, Some(ms(1)), None, 2), 8);
    // At most 64 KB less MAX_TCP_HEADER + 1: 45 segments.
    assert_eq!(
        tso_autosize(10_000_000_000, 1448, Some(ms(20)), Some(9), 2),
        45
    );
    // Slow flows send their floor: BBR's 1 below 1.2 Mb/s, tcp_min_tso_segs otherwise.
    assert_eq!(tso_autosize(100_000, 1448, Some(ms(20)), Some(9), 1), 1);
    assert_eq!(tso_autosize(100_000, 1448, None, Some(9), 2), 2);
}

/// Two losses in one window without SACK: NewReno (RFC 6582) retransmits the second hole
/// on the partial ACK and stays in one recovery; Reno (RFC 5681) leaves recovery on the
/// partial ACK and needs a second fast retransmit for the second hole.
fn two_holes_without_sack(cc: &str) -> super::TcpInfo {
    let cfg = TcpConfig {
        sack: false,
        congestion_control: cc.into(),
        ..TcpConfig::default()
    };
    let mut p = Pair::new(cfg.clone(), cfg, SimDuration::from_millis(10));
    let (c, s) = connected(&mut p);
    let mut lost = [false; 2];
    p.drop = Some(Box::new(move |i, x, _| {
        let Payload::Pattern { offset, .. } = x.payload else {
            return false;
        };
        for (k, at) in [2u64, 9].into_iter().enumerate() {
            if i == 0 && offset == at * 1448 && !lost[k] {
                lost[k] = true;
                return true;
            }
        }
        false
    }));
    let total = 30 * 1448u64;
    let mut written = 0u64;
    for _ in 0..200 {
        if written < total {
            written += p.hosts[0].send(c, &pattern(written, (total - written) as u32)) as u64;
        }
        p.run_until(p.now + SimDuration::from_millis(10));
    }
    let (got, _) = p.hosts[1].read_all(s);
    let delivered: u64 = got.iter().map(|g| g.len() as u64).sum();
    let info = p.hosts[0].tcp.info(c).unwrap();
    assert_eq!(delivered, 30 * 1448, "{cc}: {info:?}");
    info
}

#[test]
fn newreno_repairs_two_holes_in_one_recovery_and_reno_needs_two() {
    let newreno = two_holes_without_sack("newreno");
    assert_eq!(newreno.fast_retransmits, 1);
    assert_eq!(newreno.rto_timeouts, 0);
    let reno = two_holes_without_sack("reno");
    assert_eq!(reno.fast_retransmits, 2);
    assert_eq!(reno.rto_timeouts, 0);
}

/// When the segment at stream `offset` went onto the wire from the client, in order.
fn sends_of(p: &Pair, offset: u64) -> Vec<SimTime> {
    p.log
        .iter()
        .filter(|(i, x, _)| {
            *i == 0 && matches!(x.payload, Payload::Pattern { offset: o, .. } if o == offset)
        })
        .map(|(_, x, _)| x.at)
        .collect()
}

// RFC 8985 TLP: the last three segments of a flight are lost. Two round trips (+2 ms)
// after the last ACK, the sender probes with its last segment; the probe's SACK lets RACK
// find the other two lost, and fast recovery repairs them, with no RTO.
#[test]
fn tail_loss_probe_turns_a_tail_loss_into_fast_recovery() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    let mut dropped = [false; 3];
    p.drop = Some(Box::new(move |i, x, _| {
        let Payload::Pattern { offset, .. } = x.payload else {
            return false;
        };
        let k = (offset / 1448) as usize;
        if i == 0 && (7..10).contains(&k) && !dropped[k - 7] {
            dropped[k - 7] = true;
            return true;
        }
        false
    }));
    let t0 = p.now;
    p.hosts[0].send(c, &pattern(0, 10 * 1448));
    p.run_until(t0 + SimDuration::from_secs(1));
    let ms = SimDuration::from_millis;
    // ACKs for the first seven at 20 ms; PTO = 2 x SRTT (20 ms) + 2 ms later.
    assert_eq!(sends_of(&p, 9 * 1448), vec![t0, t0 + ms(62)]);
    // Its SACK is back at 82 ms: 7 and 8, sent before it, are more than an RTT old.
    assert_eq!(sends_of(&p, 7 * 1448), vec![t0, t0 + ms(82)]);
    assert_eq!(sends_of(&p, 8 * 1448), vec![t0, t0 + ms(82)]);
    let info = p.hosts[0].tcp.info(c).unwrap();
    assert_eq!(info.rto_timeouts, 0);
    assert_eq!(info.fast_retransmits, 1);
    assert_eq!(p.hosts[0].tcp.counters().loss_probes, 1);
    let (got, _) = p.hosts[1].read_all(s);
    assert_eq!(got.iter().map(|g| g.len()).sum::<usize>(), 10 * 1448);
}

/// Loses the client's segment at stream offset 3 x 1448 and its first retransmission.
fn lose_fourth_segment_twice() -> DropRule {
    let mut drops = 0;
    Box::new(move |i, x, _| {
        let fourth = matches!(x.payload, Payload::Pattern { offset, .. } if offset == 3 * 1448);
        if i == 0 && fourth && drops < 2 {
            drops += 1;
            return true;
        }
        false
    })
}

// RFC 8985 RACK: a lost retransmission is found lost when a segment sent after it is
// delivered, one RTT later, instead of at the RTO.
#[test]
fn rack_detects_a_lost_retransmission_without_an_rto() {
    let mut p = pair();
    let (c, s) = connected(&mut p);
    p.drop = Some(lose_fourth_segment_twice());
    let t0 = p.now;
    let written = p.hosts[0].send(c, &pattern(0, 30 * 1448));
    p.run_until(t0 + SimDuration::from_secs(1));
    let ms = SimDuration::from_millis;
    // Lost at the third SACK (20 ms); the retransmission is lost too, and new data sent
    // with it is SACKed at 40 ms: zero reordering window in recovery, so it is resent then.
    assert_eq!(sends_of(&p, 3 * 1448), vec![t0, t0 + ms(20), t0 + ms(40)]);
    let info = p.hosts[0].tcp.info(c).unwrap();
    assert_eq!(info.rto_timeouts, 0);
    assert_eq!(p.hosts[0].tcp.counters().lost_retransmits, 1);
    let (got, _) = p.hosts[1].read_all(s);
    assert_eq!(got.iter().map(|g| g.len()).sum::<usize>(), written);
}

// Linux tcp_xmit_retransmit_queue: retransmitting the oldest outstanding segment restarts
// the RTO. Here the first segment and its first 14 retransmissions are lost; RACK finds
// each retransmission lost one RTT (20 ms) later, when data sent after it is SACKed, so
// the repair runs for 300 ms, past the RTO of about 220 ms counted from the first
// transmission, without a timeout. (Buffers of 4 MB keep new data flowing behind the
// hole, which RACK needs.)
#[test]
fn retransmitting_the_head_restarts_the_rto() {
    let cfg = TcpConfig {
        rmem: [4096, 1 << 22, 1 << 22],
        wmem: [4096, 1 << 22, 1 << 22],
        ..TcpConfig::default()
    };
    let mut p = Pair::new(cfg.clone(), cfg, SimDuration::from_millis(10));
    let (c, s) = connected(&mut p);
    let mut drops = 0;
    p.drop = Some(Box::new(move |i, x, _| {
        let head = matches!(x.payload, Payload::Pattern { offset: 0, .. });
        if i == 0 && head && drops < 15 {
            drops += 1;
            return true;
        }
        false
    }));
    let t0 = p.now;
    let total = 400 * 1448u64;
    let mut written = 0u64;
    while p.now < t0 + SimDuration::from_secs(1) {
        if written < total {
            written += p.hosts[0].send(c, &pattern(written, (total - written) as u32)) as u64;
        }
        p.run_until(p.now + SimDuration::from_millis(1));
    }
    let info = p.hosts[0].tcp.info(c).unwrap();
    assert!(info.rto > SimDuration::from_millis(200), "{info:?}");
    let want: Vec<SimTime> = (0..16)
        .map(|k| t0 + SimDuration::from_millis(20 * k))
        .collect();
    assert_eq!(sends_of(&p, 0), want);
    assert_eq!(info.rto_timeouts, 0);
    assert_eq!(p.hosts[0].tcp.counters().lost_retransmits, 14);
    let (got, _) = p.hosts[1].read_all(s);
    assert_eq!(got.iter().map(|g| g.len() as u64).sum::<u64>(), written);
}

thread_local! {
    /// Rate samples seen by the `rate-recorder` controller on this test's thread.
    static RATE_SAMPLES: std::cell::RefCell<Vec<super::cc::RateSample>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// A fixed window of ten segments that records every delivery-rate sample.
#[derive(Debug)]
struct RateRecorder;

impl super::cc::CongestionControl for RateRecorder {
    fn name(&self) -> &'static str {
        "rate-recorder"
    }
    fn on_ack(&mut self, _w: &mut super::cc::Window, ack: &super::cc::AckSample) {
        if let Some(r) = ack.rate {
            RATE_SAMPLES.with(|v| v.borrow_mut().push(r));
        }
    }
    fn ssthresh(&mut self, w: &super::cc::Window, _in_flight: u64) -> u64 {
        w.cwnd
    }
}

// Linux tcp_rate_skb_sent: the first segment sent with nothing outstanding starts a new
// flight, so the delivery-rate samples of a flight sent after an idle period (or the
// first flight) measure from its first transmission, not from the last delivery before
// the idle period: one RTT (20 ms) here, not the idle time.
#[test]
fn a_flight_after_idle_is_sampled_from_its_first_send() {
    super::cc::register("rate-recorder", || Box::new(RateRecorder));
    let cfg = TcpConfig {
        congestion_control: "rate-recorder".into(),
        ..TcpConfig::default()
    };
    let mut p = Pair::new(
        cfg.clone(),
        TcpConfig::default(),
        SimDuration::from_millis(10),
    );
    let (c, _s) = connected(&mut p);
    for idle in [0, 1000] {
        p.run_until(p.now + SimDuration::from_millis(idle));
        RATE_SAMPLES.with(|v| v.borrow_mut().clear());
        p.hosts[0].send(c, &pattern(0, 4 * 1448));
        p.run_until(p.now + SimDuration::from_millis(100));
        let samples = RATE_SAMPLES.with(|v| v.borrow().clone());
        assert!(!samples.is_empty(), "idle {idle} ms");
        let first = samples[0];
        assert_eq!(
            first.interval,
            SimDuration::from_millis(20),
            "idle {idle} ms"
        );
        assert!(
            [1448, 2 * 1448].contains(&first.delivered),
            "idle {idle} ms: {first:?}"
        );
    }
}

thread_local! {
    /// Bytes in flight before each ACK the `ack-counter-<host>` controllers heard.
    static ACKS_HEARD: std::cell::RefCell<[Vec<u64>; 2]> =
        const { std::cell::RefCell::new([Vec::new(), Vec::new()]) };
}

/// A controller that sets the window itself (as BBR does) and records each ACK it hears.
#[derive(Debug)]
struct AckCounter(usize);

impl super::cc::CongestionControl for AckCounter {
    fn name(&self) -> &'static str {
        ["ack-counter-0", "ack-counter-1"][self.0]
    }
    fn on_ack(&mut self, _w: &mut super::cc::Window, ack: &super::cc::AckSample) {
        ACKS_HEARD.with(|v| v.borrow_mut()[self.0].push(ack.prior_in_flight));
    }
    fn ssthresh(&mut self, w: &super::cc::Window, _in_flight: u64) -> u64 {
        w.cwnd
    }
    fn controls_window(&self) -> bool {
        true
    }
}

// Linux tcp_ack: with nothing outstanding before an ACK (`!prior_packets`, a receiver's
// case) it skips loss detection and tcp_cong_control, so even a controller that sets the
// window on every ACK (BBR's bbr_main) does not hear the ACK field of the data it
// receives; it hears every ACK of its own data.
#[test]
fn a_controller_hears_only_acks_that_find_data_outstanding() {
    super::cc::register("ack-counter-0", || Box::new(AckCounter(0)));
    super::cc::register("ack-counter-1", || Box::new(AckCounter(1)));
    let cfg = |host: usize| TcpConfig {
        congestion_control: format!("ack-counter-{host}"),
        ..TcpConfig::default()
    };
    let mut p = Pair::new(cfg(0), cfg(1), SimDuration::from_millis(10));
    let (c, s) = connected(&mut p);
    ACKS_HEARD.with(|v| v.borrow_mut().iter_mut().for_each(Vec::clear));
    p.hosts[0].send(c, &pattern(0, 20 * 1448));
    p.run_until(p.now + SimDuration::from_millis(200));
    let heard = ACKS_HEARD.with(|v| v.borrow().clone());
    assert!(heard[0].len() >= 10, "{heard:?}");
    assert!(heard[0].iter().all(|&f| f > 0), "{heard:?}");
    assert!(
        heard[1].is_empty(),
        "the receiver's controller heard {heard:?}"
    );
    // The other way: now host 1 has data outstanding, and its controller hears the ACKs.
    p.hosts[1].send(s, &pattern(0, 4 * 1448));
    p.run_until(p.now + SimDuration::from_millis(200));
    let heard = ACKS_HEARD.with(|v| v.borrow().clone());
    assert!(!heard[1].is_empty(), "{heard:?}");
    assert!(heard[1].iter().all(|&f| f > 0), "{heard:?}");
}

// Linux tcp_enter_loss: after an RTO the window is what is still presumed in flight plus
// one segment. With RACK, segments sent within the last RACK RTT are not presumed lost:
// here two lost segments time out while three sent 10 ms before the RTO are still on
// their way, so the window is 4 segments (the head's retransmission fills it), not 1.
#[test]
fn after_an_rto_the_window_is_what_is_in_flight_plus_one() {
    let cfg = TcpConfig {
        early_retrans: 0,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(cfg.clone(), cfg, SimDuration::from_millis(10));
    let (c, _s) = connected(&mut p);
    p.drop = Some(Box::new(|i, x, _| {
        let Payload::Pattern { offset, .. } = x.payload else {
            return false;
        };
        i == 0 && x.at < at_s(1) && (offset == 1448 || offset == 2 * 1448)
    }));
    // One segment delivered first gives RACK its RTT.
    p.hosts[0].send(c, &pattern(0, 1448));
    p.run_until(p.now + SimDuration::from_millis(100));
    let t0 = p.now;
    p.hosts[0].send(c, &pattern(1448, 2 * 1448));
    p.run_until(t0 + SimDuration::from_millis(1));
    let rto = p.hosts[0].tcp.info(c).unwrap().rto;
    p.run_until(t0 + (rto - SimDuration::from_millis(10)));
    p.hosts[0].send(c, &pattern(3 * 1448, 3 * 1448));
    p.run_until(t0 + rto + SimDuration::from_micros(1));
    let info = p.hosts[0].tcp.info(c).unwrap();
    assert_eq!(info.rto_timeouts, 1);
    assert_eq!(info.ca_state, "loss");
    assert_eq!(info.cwnd, 4 * 1448);
    assert_eq!(info.bytes_in_flight, 4 * 1448);
    assert_eq!(sends_of(&p, 1448), vec![t0, t0 + rto]);
}

// Without RACK (tcp_recovery = 0) the same lost retransmission waits for the RTO.
#[test]
fn without_rack_a_lost_retransmission_waits_for_the_rto() {
    let cfg = TcpConfig {
        recovery: 0,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(cfg.clone(), cfg, SimDuration::from_millis(10));
    let (c, _s) = connected(&mut p);
    p.drop = Some(lose_fourth_segment_twice());
    let t0 = p.now;
    p.hosts[0].send(c, &pattern(0, 30 * 1448));
    p.run_until(t0 + SimDuration::from_secs(1));
    let sends = sends_of(&p, 3 * 1448);
    assert_eq!(sends.len(), 3);
    assert!(
        sends[2] - sends[1] >= SimDuration::from_millis(200),
        "{sends:?}"
    );
    assert_eq!(p.hosts[0].tcp.info(c).unwrap().rto_timeouts, 1);
}

// Regression: with SACK, out-of-order segments grow the receiver's offered window as
// Linux's tcp_data_queue_ofo does; before, a sender behind a long-lived hole (a lost
// retransmission) was held at the window it had when the hole opened.
#[test]
fn out_of_order_data_grows_the_offered_window_with_sack() {
    let mut p = pair();
    let (c, _s) = connected(&mut p);
    p.drop = Some(Box::new(|i, x, _| {
        i == 0 && matches!(x.payload, Payload::Pattern { offset: 0, .. })
    }));
    p.log.clear();
    p.hosts[0].send(c, &pattern(0, 10 * 1448));
    p.run_until(p.now + SimDuration::from_millis(15));
    let windows: Vec<u16> = p
        .log
        .iter()
        .filter(|(i, x, _)| *i == 1 && !x.seg.options.sack.is_empty())
        .map(|(_, x, _)| x.seg.window)
        .collect();
    assert_eq!(windows.len(), 9, "{windows:?}");
    assert!(
        windows.windows(2).all(|w| w[1] > w[0]),
        "each out-of-order segment grows the window: {windows:?}"
    );
}

// ---------------------------------------------------------------------------- ECN

fn ecn_cfg(tcp_ecn: u8) -> TcpConfig {
    TcpConfig {
        ecn: tcp_ecn,
        ..TcpConfig::default()
    }
}

/// The segments host `i` put on the wire since `from` in the pair's log.
fn sent_by(p: &Pair, i: usize) -> Vec<&super::harness::Sent> {
    p.log
        .iter()
        .filter(|(h, _, _)| *h == i)
        .map(|(_, x, _)| x)
        .collect()
}

// RFC 3168 6.1.1 with Linux's tcp_ecn: 1 requests ECN (SYN with ECE and CWR) and accepts
// it, 2 (the default) only accepts it, 0 does neither. Handshake segments are never
// ECN-capable; once ECN is on, new data carries ECT(0) and pure ACKs do not.
#[test]
fn ecn_negotiation_follows_tcp_ecn_on_both_sides() {
    for client in 0..=2u8 {
        for server in 0..=2u8 {
            let mut p = Pair::new(
                ecn_cfg(client),
                ecn_cfg(server),
                SimDuration::from_millis(10),
            );
            let (c, s) = connected(&mut p);
            let want = client == 1 && server != 0;
            let case = format!("client {client}, server {server}");
            let syn = sent_by(&p, 0)[0].clone();
            let synack = sent_by(&p, 1)[0].clone();
            let asks = if client == 1 { ECE | CWR } else { 0 };
            assert_eq!(syn.flags(), SYN | asks, "{case}");
            let agrees = if want { ECE } else { 0 };
            assert_eq!(synack.flags(), SYN | ACK | agrees, "{case}");
            assert_eq!(syn.ecn, Ecn::NotEct, "{case}");
            assert_eq!(synack.ecn, Ecn::NotEct, "{case}");
            assert_eq!(p.hosts[0].tcp.info(c).unwrap().ecn, want, "{case}");
            assert_eq!(p.hosts[1].tcp.info(s).unwrap().ecn, want, "{case}");

            p.log.clear();
            p.hosts[0].send(c, &pattern(0, 6 * 1448));
            p.run_until(p.now + SimDuration::from_millis(100));
            let data: Vec<_> = sent_by(&p, 0).into_iter().filter(|x| x.len() > 0).collect();
            assert_eq!(data.len(), 6, "{case}");
            let ect = if want { Ecn::Ect0 } else { Ecn::NotEct };
            assert!(data.iter().all(|x| x.ecn == ect), "{case}");
            let acks = sent_by(&p, 1);
            assert!(!acks.is_empty());
            assert!(acks.iter().all(|x| x.len() == 0 && x.ecn == Ecn::NotEct));
            assert!(acks.iter().all(|x| x.flags() & (ECE | CWR) == 0), "{case}");
        }
    }
}

// Linux tcp_ecn_fallback: a retransmitted SYN no longer asks for ECN (a middlebox may be
// dropping ECN-setup SYNs), so the connection comes up without it; with the knob off it
// keeps asking.
#[test]
fn a_retransmitted_syn_drops_the_ecn_request_unless_fallback_is_off() {
    for fallback in [true, false] {
        let cfg = TcpConfig {
            ecn_fallback: fallback,
            ..ecn_cfg(1)
        };
        let mut p = Pair::new(cfg, TcpConfig::default(), SimDuration::from_millis(10));
        let mut first = true;
        p.drop = Some(Box::new(move |i, x, _| {
            let lose = i == 0 && x.flags() & SYN != 0 && first;
            first &= !lose;
            lose
        }));
        let l = p.hosts[1].listen(80, 16);
        let to = p.hosts[1].addr(80);
        let c = p.hosts[0].connect(to);
        p.run_until(p.now + SimDuration::from_millis(1100));
        p.hosts[1].tcp.accept(&mut p.hosts[1].env, l).unwrap();
        let syns: Vec<u8> = sent_by(&p, 0)
            .iter()
            .filter(|x| x.flags() & SYN != 0)
            .map(|x| x.flags())
            .collect();
        let again = if fallback { SYN } else { SYN | ECE | CWR };
        assert_eq!(syns, vec![SYN | ECE | CWR, again]);
        assert_eq!(p.hosts[0].tcp.info(c).unwrap().ecn, !fallback);
    }
}

/// A server (tcp_ecn 2) with a connection from PEER:40000 that asked for ECN; no options,
/// peer ISN 1000. Returns the host, the accepted socket and our ISS.
fn ecn_server() -> (Host, super::TcpSocketId, u32) {
    let mut h = host();
    let l = h.listen(80, 8);
    h.inject(
        PEER,
        seg(40000, 80, SYN | ECE | CWR, 1000, 0, 65535),
        Payload::empty(),
    );
    let synack = h.take_sent().remove(0);
    assert_eq!(synack.flags(), SYN | ACK | ECE);
    assert_eq!(synack.ecn, Ecn::NotEct);
    let iss = synack.seg.seq.0;
    h.inject(
        PEER,
        seg(40000, 80, ACK, 1001, iss + 1, 65535),
        Payload::empty(),
    );
    let (s, _) = h.tcp.accept(&mut h.env, l).unwrap();
    assert!(h.tcp.info(s).unwrap().ecn);
    (h, s, iss)
}

// RFC 3168 6.1.3 as Linux: from the first CE-marked segment the receiver sets ECE on every
// ACK (TCP_ECN_DEMAND_CWR) until a segment with CWR arrives. The first mark is ACKed at
// once (quick-ACK mode), not after the delayed-ACK timer; the CWR segment is too.
#[test]
fn the_receiver_echoes_ece_from_a_ce_mark_until_cwr() {
    let (mut h, s, iss) = ecn_server();
    let data = |h: &mut Host, k: u32, fl: u8, ecn: Ecn| {
        h.inject_ecn(
            PEER,
            seg(40000, 80, ACK | fl, 1001 + k * 1000, iss + 1, 65535),
            pattern(k as u64 * 1000, 1000),
            ecn,
        );
    };
    // Leave quick-ACK mode: 40 segments in pairs, each pair ACKed at once.
    let mut k = 0;
    for _ in 0..20 {
        data(&mut h, k, 0, Ecn::Ect0);
        data(&mut h, k + 1, 0, Ecn::Ect0);
        k += 2;
        h.advance_to(h.env.now + SimDuration::from_millis(1));
    }
    h.read_all(s);
    // Gaps shorter than the RTO (200 ms here), so that no gap restarts quick-ACKs.
    let gap = SimDuration::from_millis(100);
    h.advance_to(h.env.now + gap);
    let before = h.take_sent();
    assert!(before
        .iter()
        .all(|x| x.flags() == ACK && x.ecn == Ecn::NotEct));
    // One unmarked segment alone: its ACK waits for the delayed-ACK timer.
    data(&mut h, k, 0, Ecn::Ect0);
    k += 1;
    assert!(h.take_sent().is_empty());
    h.advance_to(h.env.now + gap);
    assert_eq!(h.take_sent().len(), 1);
    // A marked one alone: ACKed at once, with ECE.
    data(&mut h, k, 0, Ecn::Ce);
    k += 1;
    let out = h.take_sent();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags(), ACK | ECE);
    assert_eq!(out[0].seg.ack.0, 1001 + k * 1000);
    // Every ACK keeps ECE, marked data or not, delayed or not, until CWR.
    let mut echoed = Vec::new();
    for _ in 0..6 {
        data(&mut h, k, 0, Ecn::Ect0);
        k += 1;
        h.advance_to(h.env.now + SimDuration::from_millis(300));
        echoed.extend(h.take_sent());
    }
    assert!(echoed.len() >= 3, "{}", echoed.len());
    assert!(echoed.iter().all(|x| x.flags() == ACK | ECE));
    // A pure ACK without CWR changes nothing.
    h.inject(
        PEER,
        seg(40000, 80, ACK, 1001 + k * 1000, iss + 1, 65535),
        Payload::empty(),
    );
    assert!(h.take_sent().is_empty());
    // CWR on data: ACKed at once, without ECE, and no ECE after.
    data(&mut h, k, CWR, Ecn::Ect0);
    k += 1;
    let out = h.take_sent();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags(), ACK);
    data(&mut h, k, 0, Ecn::Ect0);
    h.advance_to(h.env.now + SimDuration::from_millis(300));
    assert!(h.take_sent().iter().all(|x| x.flags() == ACK));
}

/// A client (tcp_ecn 1, controller `cc`) connected to PEER:80 with ECN and SACK; MSS 1448.
/// Returns the host, the socket and our ISS.
fn ecn_client(cc: &str) -> (Host, super::TcpSocketId, u32) {
    let cfg = TcpConfig {
        congestion_control: cc.into(),
        ..ecn_cfg(1)
    };
    let mut h = Host::new(Ipv4Addr::new(10, 0, 0, 1), cfg);
    let s = h.connect(std::net::SocketAddrV4::new(PEER, 80));
    let syn = h.take_sent().remove(0);
    assert_eq!(syn.flags(), SYN | ECE | CWR);
    let iss = syn.seg.seq.0;
    let mut sa = seg(80, syn.seg.src_port, SYN | ACK | ECE, 5000, iss + 1, 65535);
    sa.options = TcpOptions {
        mss: Some(1448),
        sack_permitted: true,
        ..TcpOptions::default()
    };
    h.env.now = at_ms(10);
    h.inject(PEER, sa, Payload::empty());
    h.take_sent();
    h.take_events();
    assert!(h.tcp.info(s).unwrap().ecn);
    (h, s, iss)
}

// Linux tcp_ack: an ACK that finds nothing outstanding goes to no_queue before
// tcp_fastretrans_alert, so an ECN-Echo on it (here on the peer's data, our side having
// sent nothing) starts no window reduction; the same echo once data is out does.
#[test]
fn an_ecn_echo_with_nothing_outstanding_reduces_nothing() {
    let (mut h, s, iss) = ecn_client("newreno");
    let port = h.tcp.info(s).unwrap().local.port();
    let before = h.tcp.info(s).unwrap();
    h.env.now = at_ms(20);
    h.inject(
        PEER,
        seg(80, port, ACK | PSH | ECE, 5001, iss + 1, 65535),
        pattern(0, 100),
    );
    let info = h.tcp.info(s).unwrap();
    assert_eq!(info.ca_state, "open");
    assert_eq!((info.cwnd, info.ssthresh), (before.cwnd, before.ssthresh));
    // With data outstanding the echo does start one.
    h.send(s, &pattern(0, 4 * 1448));
    h.take_sent();
    h.env.now = at_ms(30);
    h.inject(
        PEER,
        seg(80, port, ACK | ECE, 5101, iss + 1 + 1448, 65535),
        Payload::empty(),
    );
    assert_eq!(h.tcp.info(s).unwrap().ca_state, "cwr");
}

// RFC 3168 6.1.2 with Linux's CWR state: an ECN-Echo takes ssthresh from the controller
// once per window of data and PRR brings cwnd down to it; the first new data segment
// after the reduction carries CWR; further ECEs before the window is acknowledged do
// nothing; past it, the window is ssthresh and the next ECE reduces again.
// Retransmissions and pure ACKs are never ECN-capable.
#[test]
fn the_sender_reduces_once_per_window_of_data_and_sends_cwr() {
    // NewReno: the expected ssthresh values are its halving (CUBIC's beta is 0.7).
    let (mut h, s, iss) = ecn_client("newreno");
    let port = h.tcp.info(s).unwrap().local.port();
    const MSS: u32 = 1448;
    h.send(s, &pattern(0, 40 * MSS));
    let out = h.take_sent();
    assert_eq!(out.len(), 10);
    assert!(out
        .iter()
        .all(|x| x.ecn == Ecn::Ect0 && x.flags() & (ECE | CWR) == 0));
    let ack = |h: &mut Host, segs: u32, fl: u8| {
        h.env.now += SimDuration::from_millis(1);
        h.inject(
            PEER,
            seg(80, port, ACK | fl, 5001, iss + 1 + segs * MSS, 65535),
            Payload::empty(),
        );
        h.take_sent()
    };
    // The first ECE: CWR state, ssthresh = half of 10 segments; PRR lets one segment
    // out for the two delivered, and it carries CWR.
    let out = ack(&mut h, 2, ECE);
    let info = h.tcp.info(s).unwrap();
    assert_eq!(info.ca_state, "cwr");
    assert_eq!(info.ssthresh, 5 * MSS as u64);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags(), ACK | CWR);
    assert_eq!(out[0].ecn, Ecn::Ect0);
    assert_eq!(out[0].seg.seq.0, iss + 1 + 10 * MSS);
    // More ECEs within the window: no second reduction, no second CWR.
    let mut sent = Vec::new();
    for segs in 3..=10 {
        sent.extend(ack(&mut h, segs, ECE));
        let info = h.tcp.info(s).unwrap();
        assert_eq!((info.ca_state, info.ssthresh), ("cwr", 5 * MSS as u64));
    }
    assert!(sent.iter().all(|x| x.flags() == ACK && x.ecn == Ecn::Ect0));
    // PRR: by the end of the window, in flight is down to ssthresh.
    assert_eq!(h.tcp.info(s).unwrap().bytes_in_flight, 5 * MSS as u64);
    // The ACK of the CWR segment (the first sent after the reduction) ends the episode.
    let out = ack(&mut h, 11, 0);
    let info = h.tcp.info(s).unwrap();
    assert_eq!(info.ca_state, "open");
    assert!(
        info.cwnd >= 5 * MSS as u64 && info.cwnd < 6 * MSS as u64,
        "{info:?}"
    );
    assert!(out.iter().all(|x| x.flags() & CWR == 0));
    // A later ECE: a second reduction, and a second CWR.
    let out = ack(&mut h, 12, ECE);
    let info = h.tcp.info(s).unwrap();
    assert_eq!(info.ca_state, "cwr");
    assert!(info.ssthresh < 5 * MSS as u64 && info.ssthresh >= 2 * MSS as u64);
    assert_eq!(out.iter().filter(|x| x.flags() & CWR != 0).count(), 1);
    // No more ACKs: the tail loss probe sends new data (ECT(0)); the RTO's
    // retransmissions are neither ECN-capable nor CWR.
    let sent_end = out
        .iter()
        .map(|x| x.seg.seq.0 + x.len() as u32)
        .max()
        .unwrap();
    h.advance_to(h.env.now + SimDuration::from_secs(3));
    let later = h.take_sent();
    let (rtx, new): (Vec<_>, Vec<_>) = later
        .iter()
        .partition(|x| x.seg.seq.0.wrapping_sub(sent_end) > 1 << 31);
    assert!(!rtx.is_empty() && !new.is_empty());
    assert!(rtx
        .iter()
        .all(|x| x.ecn == Ecn::NotEct && x.flags() & CWR == 0));
    assert!(new.iter().all(|x| x.ecn == Ecn::Ect0));
    assert_eq!(rtx[0].seg.seq.0, iss + 1 + 12 * MSS);
}

// Window probes are not ECN-capable either.
#[test]
fn zero_window_probes_are_not_ecn_capable() {
    let (mut h, s, iss) = ecn_client(&TcpConfig::default().congestion_control);
    let port = h.tcp.info(s).unwrap().local.port();
    h.send(s, &pattern(0, 3000));
    h.take_sent();
    h.env.now = at_ms(20);
    h.inject(
        PEER,
        seg(80, port, ACK, 5001, iss + 1 + 3000, 0),
        Payload::empty(),
    );
    h.send(s, &pattern(3000, 1000));
    h.advance_to(at_s(2));
    let probes = h.take_sent();
    assert!(!probes.is_empty());
    assert!(probes.iter().all(|x| x.len() == 1 && x.ecn == Ecn::NotEct));
}

// End to end over a wire that marks instead of dropping: every mark comes back as ECE,
// the sender reduces and sends CWR, and nothing is retransmitted.
#[test]
fn marks_on_the_wire_reduce_the_window_without_retransmissions() {
    let mut p = Pair::new(ecn_cfg(1), ecn_cfg(2), SimDuration::from_millis(10));
    let (c, s) = connected(&mut p);
    p.log.clear();
    p.mark = Some(Box::new(|i, x, n| i == 0 && x.len() > 0 && n % 25 == 0));
    let total = 400 * 1448u64;
    let mut written = 0u64;
    for _ in 0..300 {
        if written < total {
            written += p.hosts[0].send(c, &pattern(written, (total - written) as u32)) as u64;
        }
        p.run_until(p.now + SimDuration::from_millis(10));
        p.hosts[1].read_all(s);
    }
    let info = p.hosts[0].tcp.info(c).unwrap();
    assert_eq!(info.bytes_acked, total);
    assert_eq!(info.retransmits, 0);
    let cwr = sent_by(&p, 0)
        .iter()
        .filter(|x| x.flags() & CWR != 0)
        .count();
    let ece = sent_by(&p, 1)
        .iter()
        .filter(|x| x.flags() & ECE != 0)
        .count();
    assert!(cwr >= 5, "{cwr} CWR segments");
    assert!(ece >= cwr, "{ece} ECE ACKs");
    assert!(info.ssthresh < 100 * 1448, "{info:?}");
}

// ---------------------------------------------------------------------------- DCTCP

fn dctcp_cfg(tcp_ecn: u8) -> TcpConfig {
    TcpConfig {
        congestion_control: "dctcp".into(),
        ..ecn_cfg(tcp_ecn)
    }
}

// RFC 8257 / Linux TCP_CONG_NEEDS_ECN: DCTCP asks for ECN even with tcp_ecn = 0 and puts
// ECT(0) on every segment, handshake and pure ACKs included. A plain host refuses an
// ECN-capable SYN (RFC 3168 6.1.1), and DCTCP then runs as Reno without ECT.
#[test]
fn dctcp_forces_ecn_and_marks_every_segment_ect() {
    let mut p = Pair::new(dctcp_cfg(0), dctcp_cfg(0), SimDuration::from_millis(10));
    let (c, s) = connected(&mut p);
    assert!(p.hosts[0].tcp.info(c).unwrap().ecn);
    assert!(p.hosts[1].tcp.info(s).unwrap().ecn);
    assert_eq!(sent_by(&p, 0)[0].flags(), SYN | ECE | CWR);
    assert_eq!(sent_by(&p, 1)[0].flags(), SYN | ACK | ECE);
    p.hosts[0].send(c, &pattern(0, 20 * 1448));
    p.run_until(p.now + SimDuration::from_millis(200));
    assert!(p.log.len() > 20);
    assert!(p.log.iter().all(|(_, x, _)| x.ecn == Ecn::Ect0));

    let mut p = Pair::new(dctcp_cfg(0), ecn_cfg(2), SimDuration::from_millis(10));
    let (c, s) = connected(&mut p);
    assert!(!p.hosts[0].tcp.info(c).unwrap().ecn);
    assert!(!p.hosts[1].tcp.info(s).unwrap().ecn);
    assert_eq!(
        sent_by(&p, 0)[0].ecn,
        Ecn::Ect0,
        "DCTCP's SYN is ECN-capable"
    );
    assert_eq!(sent_by(&p, 1)[0].flags(), SYN | ACK);
    p.log.clear();
    p.hosts[0].send(c, &pattern(0, 5 * 1448));
    p.run_until(p.now + SimDuration::from_millis(200));
    assert!(p.log.iter().all(|(_, x, _)| x.ecn == Ecn::NotEct));
}

// RFC 8257 3.2, Linux dctcp_ece_ack_update: the DCTCP receiver's ECE follows the CE state
// of the latest data segment. When the state changes, a delayed ACK for the data before
// is sent first with the old state, and the new segment is ACKed at once.
#[test]
fn dctcp_receiver_acks_every_ce_state_change_at_once() {
    let mut h = Host::new(Ipv4Addr::new(10, 0, 0, 1), dctcp_cfg(2));
    let l = h.listen(80, 8);
    h.inject_ecn(
        PEER,
        seg(40000, 80, SYN | ECE | CWR, 1000, 0, 65535),
        Payload::empty(),
        Ecn::Ect0,
    );
    let synack = h.take_sent().remove(0);
    assert_eq!((synack.flags(), synack.ecn), (SYN | ACK | ECE, Ecn::Ect0));
    let iss = synack.seg.seq.0;
    h.inject(
        PEER,
        seg(40000, 80, ACK, 1001, iss + 1, 65535),
        Payload::empty(),
    );
    let (s, _) = h.tcp.accept(&mut h.env, l).unwrap();
    let data = |h: &mut Host, k: u32, ecn: Ecn| {
        h.inject_ecn(
            PEER,
            seg(40000, 80, ACK, 1001 + k * 1000, iss + 1, 65535),
            pattern(k as u64 * 1000, 1000),
            ecn,
        );
        h.take_sent()
            .iter()
            .map(|x| (x.seg.ack.0 - 1001, x.flags() & ECE != 0, x.ecn))
            .collect::<Vec<_>>()
    };
    // Out of quick-ACK mode: pairs of unmarked segments, each pair ACKed at once.
    let mut k = 0;
    for _ in 0..20 {
        data(&mut h, k, Ecn::Ect0);
        data(&mut h, k + 1, Ecn::Ect0);
        k += 2;
        h.advance_to(h.env.now + SimDuration::from_millis(1));
    }
    h.read_all(s);
    h.advance_to(h.env.now + SimDuration::from_millis(100));
    h.take_sent();
    let ect = Ecn::Ect0;
    // One segment: its ACK is delayed.
    assert_eq!(data(&mut h, k, ect), vec![]);
    // CE: the pending ACK first, without ECE, then this one at once with ECE.
    let at = |n: u32| n * 1000;
    assert_eq!(
        data(&mut h, k + 1, Ecn::Ce),
        vec![(at(k + 1), false, ect), (at(k + 2), true, ect)]
    );
    // CE again: no change, the usual every-second-segment ACK.
    assert_eq!(data(&mut h, k + 2, Ecn::Ce), vec![]);
    assert_eq!(data(&mut h, k + 3, Ecn::Ce), vec![(at(k + 4), true, ect)]);
    // CE with a delayed ACK pending, then unmarked: the pending ACK with ECE, then this
    // one without.
    assert_eq!(data(&mut h, k + 4, Ecn::Ce), vec![]);
    assert_eq!(
        data(&mut h, k + 5, ect),
        vec![(at(k + 5), true, ect), (at(k + 6), false, ect)]
    );
    // A change with nothing pending: just this ACK, at once.
    assert_eq!(data(&mut h, k + 6, Ecn::Ce), vec![(at(k + 7), true, ect)]);
}

// Linux dctcp_ssthresh: the ECN reduction is cwnd (1 - alpha/2) in whole segments, with
// alpha updated once per window of data (g = 1/16) before the reduction uses it.
#[test]
fn dctcp_sender_cuts_by_alpha_over_two() {
    let mut h = Host::new(Ipv4Addr::new(10, 0, 0, 1), dctcp_cfg(0));
    let s = h.connect(std::net::SocketAddrV4::new(PEER, 80));
    let syn = h.take_sent().remove(0);
    assert_eq!((syn.flags(), syn.ecn), (SYN | ECE | CWR, Ecn::Ect0));
    let iss = syn.seg.seq.0;
    let mut sa = seg(80, syn.seg.src_port, SYN | ACK | ECE, 5000, iss + 1, 65535);
    sa.options = TcpOptions {
        mss: Some(1448),
        sack_permitted: true,
        ..TcpOptions::default()
    };
    h.env.now = at_ms(10);
    h.inject(PEER, sa, Payload::empty());
    assert!(h.tcp.info(s).unwrap().ecn);
    let port = syn.seg.src_port;
    const MSS: u32 = 1448;
    h.send(s, &pattern(0, 40 * MSS));
    h.take_sent();
    let ack = |h: &mut Host, segs: u32, fl: u8| {
        h.env.now += SimDuration::from_millis(1);
        h.inject(
            PEER,
            seg(80, port, ACK | fl, 5001, iss + 1 + segs * MSS, 65535),
            Payload::empty(),
        );
        h.take_sent()
    };
    // The first ACK closes DCTCP's first window: no marks, alpha = 1 - 1/16. Slow start
    // takes cwnd to 12 segments.
    ack(&mut h, 2, 0);
    assert_eq!(h.tcp.info(s).unwrap().cwnd, 12 * MSS as u64);
    // ECE within the next window: ssthresh = 12 - floor(12 x 960 / 2048) = 7 segments
    // (Reno would take 6).
    ack(&mut h, 4, ECE);
    let info = h.tcp.info(s).unwrap();
    assert_eq!(info.ca_state, "cwr");
    assert_eq!(info.ssthresh, 7 * MSS as u64);
}

//! Gossip end to end: members on host groups exchanging real UDP datagrams through
//! switches and routers, with loss, churn, partitions and garbage on the port
//! (RB-GOS-01..03). The statistics over many seeds and large clusters are in
//! `validation_gossip.rs`.

mod common;

use protocols::gossip::{decode, Kind, Packet, Status, SwimKind};
use reports::{GossipRumor, GossipSummary};
use scenarios::{load_str, run, Loaded, Outcome, RunOptions};
use sim_core::packet::{FrameBody, IpBody};

fn load(src: &str) -> Loaded {
    load_str("gossip.ron", src, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn run_default(l: &Loaded) -> Outcome {
    run(l, &RunOptions::default()).expect("runs")
}

fn gossip(o: &Outcome) -> &GossipSummary {
    &o.summary.gossip[0]
}

fn rumor(o: &Outcome, id: usize) -> &GossipRumor {
    &gossip(o).rumors[id]
}

/// `n` hosts on `lans` LANs, plain push gossip (one target a round, never losing
/// interest), one rumor from the first host at 1 s.
fn push_cluster(n: u32, lans: u32, extra: &str) -> String {
    format!(
        r#"Scenario(
    name: "push",
    duration: "30s",
    groups: [ HostGroup(name: "c", count: {n}, lans: {lans}, link: (delay: "20us")) ],
    apps: [
        Gossip(name: "g", on: ["c"], mode: Push, feedback: false, lose_interest: Never,
               rumors: [ Rumor(from: "c-0", at: "1s") ]),
    ],
    {extra}
)"#
    )
}

// RB-GOS-01 (one run; the mean over seeds is in validation_gossip.rs)
#[test]
fn push_gossip_over_udp_doubles_first_then_informs_everyone() {
    let n = 200u32;
    let l = load(&push_cluster(n, 4, ""));
    let o = run_default(&l);
    let g = gossip(&o);
    let r = rumor(&o, 0);
    assert_eq!(g.members, u64::from(n));
    assert_eq!((r.born_s, r.first_round), (Some(1.0), Some(1)));
    assert_eq!(&r.informed_per_round[..2], [1, 2], "one push from one node");
    assert!(r
        .informed_per_round
        .windows(2)
        .all(|w| w[0] <= w[1] && w[1] <= 2 * w[0]));
    assert_eq!(r.informed, u64::from(n));
    assert_eq!(r.residue, 0.0);
    // Pittel: log2 n + ln n + O(1) rounds (13.0 for n = 200).
    let k = r.rounds_to_full.expect("everyone informed");
    let pittel = f64::from(n).log2() + f64::from(n).ln();
    assert!(
        (k as f64 - pittel).abs() <= 4.0,
        "{k} rounds vs {pittel:.1}"
    );
    // Every informed member pushes exactly once a round: a round's messages are the
    // informed count at its start. Nothing is lost and nothing is answered.
    for (j, informed) in r.informed_per_round.iter().enumerate() {
        assert_eq!(g.rounds[1 + j].messages, *informed, "round {}", 1 + j);
    }
    // Only the pushes of the tick at the very end of the run are still in flight.
    let last = g.rounds.last().unwrap();
    assert_eq!(last.t_s, 30.0);
    assert_eq!(g.messages.sent - g.messages.received, last.messages);
    assert_eq!(g.messages.malformed, 0);
    // Header 8, rumor 6 + 16 value bytes, id count 2.
    assert_eq!(g.messages.bytes_sent, 32 * g.messages.sent);
    // The last member learns the rumor just after the tick that started its last round:
    // network delays are microseconds against a 1 s period.
    let full = r.full_s.unwrap();
    let last_tick = 1.0 + (k - 1) as f64;
    assert!(full > last_tick && full < last_tick + 0.001, "{full}");
}

#[test]
fn gossip_datagrams_are_real_bytes_in_the_capture() {
    let src = push_cluster(
        20,
        1,
        r#"nodes: { "watcher": Host(capture: true) },
    links: [ Link(a: "watcher", b: "c-sw") ],"#,
    )
    .replace(r#"on: ["c"]"#, r#"on: ["c", "watcher"]"#)
    .replace("feedback: false", "feedback: true");
    let l = load(&src);
    let (o, files) = common::run_and_read_bytes(&l, "gossip-pcap", &["node-watcher.pcap"]);
    assert_eq!(gossip(&o).members, 21);
    let mut seen = 0;
    for (_, frame) in common::pcap_frames(&files[0]) {
        let f = sim_core::wire::decode_frame(&frame).expect("decodes");
        let FrameBody::Ipv4(ip) = f.body else {
            continue;
        };
        let IpBody::Transport(t) = ip.body else {
            continue;
        };
        if t.ports().1 != 7946 && t.ports().0 != 7946 {
            continue;
        }
        let mut bytes = Vec::new();
        t.payload.write_to(&mut bytes);
        let Packet::Gossip(m) = decode(&bytes).expect("a valid gossip message") else {
            panic!("no membership without `membership`");
        };
        match m.kind {
            Kind::Push => {
                assert!(m.feedback);
                assert_eq!(m.rumors.len(), 1);
                assert_eq!(m.rumors[0].value.len(), 16);
                seen += 1;
            }
            Kind::Feedback => assert_eq!(m.ids, [0]),
            other => panic!("{other:?}"),
        }
    }
    assert!(seen > 5, "{seen} gossip datagrams captured");
    common::tshark_no_malformed(&files[0]);
}

/// RB-GOS-01 under loss: a lossy LAN slows the epidemic but does not stop it.
#[test]
fn lost_messages_are_lost_and_the_epidemic_still_completes() {
    let src = push_cluster(100, 1, "").replace(
        r#"link: (delay: "20us")"#,
        r#"link: (delay: "20us", loss: Bernoulli(0.1))"#,
    );
    let o = run_default(&load(&src));
    let g = gossip(&o);
    assert!(g.messages.received < g.messages.sent);
    // Each message crosses two lossy links: about 19% are lost.
    let lost = 1.0 - g.messages.received as f64 / g.messages.sent as f64;
    assert!((0.13..0.25).contains(&lost), "{lost}");
    assert_eq!(rumor(&o, 0).informed, 100);
}

const CHURN: &str = r#"Scenario(
    name: "churn",
    duration: "30s",
    groups: [ HostGroup(name: "c", count: 30, link: (delay: "20us")) ],
    apps: [
        Gossip(name: "g", on: ["c"], mode: PushPull, lose_interest: Counter(k: 1),
               anti_entropy: "2s", rumors: [ Rumor(from: "c-0", at: "1s") ]),
    ],
    faults: [ NodeCrash(node: "c-7", at: "10s", for: "3s") ],
    record: (trace: [App, Fault]),
)"#;

// RB-GOS-03, RB-LINK-04
#[test]
fn a_restarted_member_comes_back_empty_and_relearns_by_anti_entropy() {
    let l = load(CHURN);
    let (o, files) = common::run_and_read(&l, "gossip-churn", &["trace.jsonl"]);
    let g = gossip(&o);
    let live: Vec<u64> = g.rounds.iter().map(|r| r.live).collect();
    assert_eq!(live[10], 29, "c-7 is down at 10 s");
    assert_eq!(live[13], 30, "and back at 13 s");
    let r = rumor(&o, 0);
    // Everyone knew it before the crash; the restarted member forgot it.
    assert_eq!(r.live_informed_per_round[9 - 1], 30);
    assert_eq!(r.live_informed_per_round[13 - 1], 29);
    assert_eq!((r.final_live, r.final_informed), (30, 30));
    // Rumor mongering was over long before (k = 1): the relearning is anti-entropy's.
    let relearned: Vec<&str> = files[0]
        .lines()
        .filter(|l| l.contains("\"node\":\"c-7\"") && l.contains("gossip_informed"))
        .collect();
    assert_eq!(relearned.len(), 2, "{relearned:?}");
    assert!(relearned[1].contains("\"via\":\"sync"), "{}", relearned[1]);
    let t: u64 = relearned[1]["{\"t_ns\":".len()..]
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(t > 13_000_000_000 && t < 16_000_000_000, "{t}");
}

const PARTITION: &str = r#"Scenario(
    name: "partition",
    duration: "30s",
    groups: [ HostGroup(name: "c", count: 40, lans: 4, link: (delay: "20us")) ],
    apps: [
        Gossip(name: "g", on: ["c"], mode: Push, lose_interest: Counter(k: 2),
               anti_entropy: "3s",
               rumors: [ Rumor(from: "c-0", at: "3s"), Rumor(from: "c-35", at: "4s") ]),
    ],
    faults: [ LinkDown(link: "c-uplink3", at: "2s", for: "8s") ],
)"#;

// RB-GOS-03
#[test]
fn a_partition_holds_rumors_apart_until_it_heals() {
    let o = run_default(&load(PARTITION));
    // Rumor 0 starts outside LAN 3 (c-30 .. c-39); rumor 1 inside it.
    let outside = rumor(&o, 0);
    let inside = rumor(&o, 1);
    // Until the uplink is back at 10 s (rounds 3..=10 and 4..=10), neither crosses.
    for (j, &k) in outside.informed_per_round.iter().enumerate() {
        if 3 + j <= 10 {
            assert!(k <= 30, "round {}: {k}", 3 + j);
        }
    }
    for (j, &k) in inside.informed_per_round.iter().enumerate() {
        if 4 + j <= 10 {
            assert!(k <= 10, "round {}: {k}", 4 + j);
        }
    }
    // Both reach everyone after the heal.
    for r in [outside, inside] {
        assert_eq!(r.informed, 40);
        let full = r.full_s.expect("full");
        assert!(full > 10.0, "{full}");
    }
}

#[test]
fn garbage_on_the_gossip_port_is_counted_and_dropped() {
    // A CBR sender aims 50 datagrams at a member's gossip port: none is a gossip message.
    let src = push_cluster(
        10,
        1,
        r#"nodes: { "noise": Host() },
    links: [ Link(a: "noise", b: "c-sw") ],"#,
    )
    .replace(
        "    ],\n    nodes",
        r#"        UdpCbr(from: "noise", to: "c-3:7946", rate: "100kbps", size: 100, count: 50),
    ],
    nodes"#,
    );
    let l = load(&src);
    let (o, files) = common::run_and_read(&l, "gossip-garbage", &["summary.json"]);
    let g = gossip(&o);
    assert_eq!(g.messages.malformed, 50);
    assert_eq!(rumor(&o, 0).informed, 10, "the member still gossips");
    assert!(files[0].contains("\"malformed\": 50"));
}

#[test]
fn gossip_runs_are_deterministic_and_seeds_matter() {
    let l = load(PARTITION);
    let a = run_default(&l);
    let b = run_default(&l);
    assert_eq!(a.summary.trace_digest, b.summary.trace_digest);
    assert_eq!(a.summary.gossip, b.summary.gossip);
    let c = run(
        &l,
        &RunOptions {
            seed: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(a.summary.trace_digest, c.summary.trace_digest);
}

#[test]
fn gossip_rounds_csv_has_a_row_per_rumor_and_round() {
    let l = load(PARTITION);
    let (o, files) = common::run_and_read(&l, "gossip-csv", &["gossip-rounds.csv"]);
    let rows: Vec<&str> = files[0].lines().collect();
    assert_eq!(
        rows[0],
        "app,rumor,round,t_s,live,messages,informed,live_informed"
    );
    let g = gossip(&o);
    let expected: usize = g.rumors.iter().map(|r| r.informed_per_round.len()).sum();
    assert_eq!(rows.len(), 1 + expected);
    // Rumor 1 is first spread at the tick of 4 s (round 4), by its origin alone.
    assert!(rows.contains(&format!("g,1,4,4,40,{},1,1", g.rounds[4].messages).as_str()));
}

const SWIM: &str = r#"Scenario(
    name: "swim",
    duration: "30s",
    nodes: { "x": Host() },
    groups: [ HostGroup(name: "c", count: 29, lans: 3, link: (delay: "20us")) ],
    links: [ Link(name: "x-link", a: "x", b: "c-sw0", capture: true) ],
    apps: [
        Gossip(name: "g", on: ["c", "x"], mode: Push, anti_entropy: "5s",
               membership: Swim(probe_period: "1s", probe_timeout: "200ms", suspicion: "3s"),
               rumors: [ Rumor(from: "c-0", at: "1s") ]),
    ],
    faults: [ NodeCrash(node: "x", at: "5s"), NodeCrash(node: "c-20", at: "8s", for: "12s") ],
)"#;

#[test]
fn swim_detects_failures_takes_restarted_members_back_and_stops_talking_to_the_dead() {
    let l = load(SWIM);
    let (o, files) = common::run_and_read_bytes(&l, "gossip-swim", &["link-x-link.pcap"]);
    let m = gossip(&o).membership.as_ref().expect("membership figures");
    assert_eq!(
        (m.false_suspicions, m.false_deaths),
        (0, 0),
        "no loss, no false alarm"
    );
    assert_eq!(m.wrongly_dead_at_end, 0);
    assert_eq!(m.failures.len(), 2);
    for f in &m.failures {
        let suspect = f.first_suspect_s.expect("suspected");
        let dead = f.first_dead_s.expect("declared dead");
        let all = f.all_dead_s.expect("everyone up believes it dead");
        assert!(suspect > f.down_s && suspect < f.down_s + 5.0, "{f:?}");
        // Nobody declares it dead before a suspicion (3 s) runs out.
        assert!(
            dead >= suspect + 3.0 - 1e-9 && dead < suspect + 5.0,
            "{f:?}"
        );
        assert!(all >= dead && all < dead + 5.0, "{f:?}");
    }
    let back = &m.failures[1];
    assert_eq!((back.member.as_str(), back.up_s), ("c-20", Some(20.0)));
    let rejoined = back.rejoined_s.expect("taken back");
    assert!(rejoined > 20.0 && rejoined < 26.0, "{back:?}");
    assert_eq!(m.failures[0].rejoined_s, None);
    // Once every member believes x dead, nothing is sent to it but ARP broadcasts and,
    // every 5 periods of some member, a reconnect probe telling it it is believed dead;
    // until c-20 comes back at 20 s knowing nothing (it will have to find out itself).
    let quiet_from = m.failures[0].all_dead_s.unwrap() + 0.01;
    let x_addr = o.summary.nodes[0].addresses[0].split('/').next().unwrap();
    let (mut before, mut reconnects) = (0, 0);
    for (t, frame) in common::pcap_frames(&files[0]) {
        let f = sim_core::wire::decode_frame(&frame).expect("decodes");
        let FrameBody::Ipv4(ip) = f.body else {
            continue;
        };
        if ip.dst.to_string() != x_addr {
            continue;
        }
        let t = t as f64 / 1e9;
        if !(quiet_from..20.0).contains(&t) {
            before += u32::from(t < quiet_from);
            continue;
        }
        let IpBody::Transport(udp) = ip.body else {
            panic!("not a datagram to x at {t} s");
        };
        let mut bytes = Vec::new();
        udp.payload.write_to(&mut bytes);
        match decode(&bytes) {
            Ok(Packet::Swim(p))
                if p.kind == SwimKind::Ping
                    && p.updates
                        .iter()
                        .any(|u| u.member == 29 && u.status == Status::Dead) =>
            {
                reconnects += 1
            }
            other => panic!("{other:?} sent to dead x at {t} s"),
        }
    }
    assert!(before > 0, "x was talked to before");
    // 29 members, one reconnect probe every 5 s each, to x or (from 17 s) c-20.
    assert!(
        (10..=60).contains(&reconnects),
        "{reconnects} reconnect probes"
    );
}

//! The gossip state machine driven by hand: messages and rounds in, messages out.

use super::node::*;
use super::rounds::Rounds;
use super::wire::{Kind, Message, Rumor};
use sim_core::rng::{RngFactory, SimRng};

fn rng(name: &str) -> SimRng {
    RngFactory::new(7).stream(name)
}

fn cfg(mode: Mode, feedback: bool, lose_interest: LoseInterest) -> GossipConfig {
    GossipConfig {
        mode,
        fanout: 1,
        feedback,
        lose_interest,
    }
}

fn node(me: u32, members: u32, c: GossipConfig) -> GossipNode {
    GossipNode::new(c, me, Peers::All { members })
}

fn val(id: u32) -> Vec<u8> {
    vec![id as u8; 3]
}

fn rumor(id: u32) -> Rumor {
    Rumor { id, value: val(id) }
}

fn msg(kind: Kind, rumors: &[u32], ids: &[u32]) -> Message {
    Message {
        kind,
        feedback: false,
        rumors: rumors.iter().map(|&i| rumor(i)).collect(),
        ids: ids.to_vec(),
    }
}

const NEVER: LoseInterest = LoseInterest::Never;

#[test]
fn push_sends_the_hot_rumors_to_fanout_distinct_peers_other_than_itself() {
    let mut c = cfg(Mode::Push, true, NEVER);
    c.fanout = 3;
    let mut n = node(2, 5, c);
    let mut r = rng("a");
    let mut fx = Effects::default();
    n.tick(&mut r, &mut fx);
    assert!(fx.sends.is_empty(), "nothing hot, nothing pushed");
    n.originate(9, vec![1, 2]);
    n.originate(4, vec![]);
    for _ in 0..50 {
        fx.clear();
        n.tick(&mut r, &mut fx);
        assert_eq!(fx.sends.len(), 3);
        let mut peers: Vec<u32> = fx
            .sends
            .iter()
            .map(|(d, _)| match d {
                Dest::Peer(p) => *p,
                Dest::Sender => panic!("a tick answers nobody"),
            })
            .collect();
        peers.sort();
        peers.dedup();
        assert_eq!(peers.len(), 3);
        assert!(!peers.contains(&2) && peers.iter().all(|&p| p < 5));
        for (_, m) in &fx.sends {
            assert_eq!(m.kind, Kind::Push);
            assert!(m.feedback);
            assert_eq!(m.ids, Vec::<u32>::new());
            assert_eq!(
                m.rumors,
                [
                    Rumor {
                        id: 4,
                        value: vec![]
                    },
                    Rumor {
                        id: 9,
                        value: vec![1, 2]
                    }
                ]
            );
        }
    }
    // A fanout beyond the other members contacts each of them once.
    c.fanout = 10;
    let mut n = node(0, 3, c);
    n.originate(1, vec![]);
    fx.clear();
    n.tick(&mut r, &mut fx);
    let mut peers: Vec<Dest> = fx.sends.iter().map(|(d, _)| *d).collect();
    peers.sort_by_key(|d| format!("{d:?}"));
    assert_eq!(peers, [Dest::Peer(1), Dest::Peer(2)]);
}

#[test]
fn a_pushed_rumor_is_learned_once_and_known_ones_are_reported_back_with_feedback() {
    let mut n = node(1, 4, cfg(Mode::Push, true, NEVER));
    let mut r = rng("b");
    let mut fx = Effects::default();
    let mut push = msg(Kind::Push, &[5], &[]);
    push.feedback = true;
    n.receive(push.clone(), &mut r, &mut fx);
    assert_eq!(fx.learned, [(5, Kind::Push)]);
    assert!(fx.sends.is_empty(), "a new rumor needs no answer");
    assert!(n.is_hot(5));
    assert_eq!(n.value(5), Some(&[5u8, 5, 5][..]));
    fx.clear();
    push.rumors.push(rumor(6));
    n.receive(push.clone(), &mut r, &mut fx);
    assert_eq!(fx.learned, [(6, Kind::Push)]);
    assert_eq!(fx.sends, [(Dest::Sender, msg(Kind::Feedback, &[], &[5]))]);
    // Without the feedback flag nothing is answered.
    fx.clear();
    push.feedback = false;
    n.receive(push, &mut r, &mut fx);
    assert!(fx.sends.is_empty() && fx.learned.is_empty());
}

#[test]
fn counter_loses_interest_at_the_kth_counting_contact() {
    // Feedback: only contacts that already knew count.
    let c = cfg(Mode::Push, true, LoseInterest::Counter { k: 2 });
    let mut n = node(0, 3, c);
    let mut r = rng("c");
    let mut fx = Effects::default();
    n.originate(1, vec![]);
    for _ in 0..5 {
        n.tick(&mut r, &mut fx);
    }
    assert!(
        n.is_hot(1),
        "pushing to peers that did not answer costs nothing"
    );
    let known = msg(Kind::Feedback, &[], &[1]);
    n.receive(known.clone(), &mut r, &mut fx);
    assert!(n.is_hot(1));
    n.receive(known.clone(), &mut r, &mut fx);
    assert!(!n.is_hot(1) && n.knows(1));
    fx.clear();
    n.tick(&mut r, &mut fx);
    assert!(fx.sends.is_empty(), "a removed rumor is not pushed");

    // Blind: every push counts.
    let mut n = node(0, 3, cfg(Mode::Push, false, LoseInterest::Counter { k: 2 }));
    n.originate(1, vec![]);
    n.receive(known, &mut r, &mut fx);
    assert!(n.is_hot(1), "blind nodes ignore feedback");
    n.tick(&mut r, &mut fx);
    assert!(n.is_hot(1));
    fx.clear();
    n.tick(&mut r, &mut fx);
    assert_eq!(fx.sends.len(), 1, "the second push still goes out");
    assert!(!n.is_hot(1));
}

#[test]
fn coin_loses_interest_with_probability_one_over_k() {
    let mut r = rng("d");
    let mut fx = Effects::default();
    let known = msg(Kind::Feedback, &[], &[1]);
    for k in [1u32, 4] {
        let trials = 20_000;
        let mut lost = 0;
        for _ in 0..trials {
            let mut n = node(0, 3, cfg(Mode::Push, true, LoseInterest::Coin { k }));
            n.originate(1, vec![]);
            n.receive(known.clone(), &mut r, &mut fx);
            lost += u32::from(!n.is_hot(1));
        }
        let p = f64::from(lost) / f64::from(trials);
        assert!((p - 1.0 / f64::from(k)).abs() < 0.01, "k {k}: {p}");
    }
}

#[test]
fn pull_asks_with_its_ids_and_gets_only_the_hot_rumors_it_lacks() {
    let c = cfg(Mode::Pull, true, LoseInterest::Counter { k: 1 });
    let mut asker = node(0, 2, c);
    let mut holder = node(1, 2, c);
    let mut r = rng("e");
    let mut fx = Effects::default();
    asker.originate(3, vec![]);
    holder.originate(3, vec![]);
    holder.originate(8, vec![]);
    holder.originate(9, vec![]);
    asker.tick(&mut r, &mut fx);
    assert_eq!(fx.sends, [(Dest::Peer(1), msg(Kind::Pull, &[], &[3]))]);
    let (_, req) = fx.sends.pop().unwrap();
    holder.receive(req, &mut r, &mut fx);
    let (_, reply) = fx.sends.pop().unwrap();
    assert_eq!(reply.kind, Kind::Reply);
    assert_eq!(
        reply.rumors.iter().map(|r| r.id).collect::<Vec<_>>(),
        [8, 9]
    );
    // Rumor 3 was known to the asker: with k = 1 the holder lost interest in it.
    assert!(!holder.is_hot(3) && holder.is_hot(8));
    asker.receive(reply, &mut r, &mut fx);
    assert_eq!(fx.learned, [(8, Kind::Reply), (9, Kind::Reply)]);
    // Nothing the asker lacks: no answer.
    fx.clear();
    asker.tick(&mut r, &mut fx);
    let (_, req) = fx.sends.pop().unwrap();
    assert_eq!(req.ids, [3, 8, 9]);
    holder.receive(req, &mut r, &mut fx);
    assert!(fx.sends.is_empty());
    assert!(!holder.is_hot(8) && !holder.is_hot(9));
}

#[test]
fn push_pull_exchanges_both_ways_with_feedback_for_each_side() {
    let c = cfg(Mode::PushPull, true, LoseInterest::Counter { k: 1 });
    let mut a = node(0, 2, c);
    let mut b = node(1, 2, c);
    let mut r = rng("f");
    let mut fx = Effects::default();
    a.originate(1, val(1));
    a.originate(2, val(2));
    b.originate(2, val(2));
    b.originate(3, val(3));
    a.tick(&mut r, &mut fx);
    let (_, m) = fx.sends.pop().unwrap();
    assert_eq!(m.kind, Kind::PushPull);
    assert_eq!(m.rumors.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(m.ids, [1, 2]);
    b.receive(m, &mut r, &mut fx);
    assert_eq!(fx.learned, [(1, Kind::PushPull)]);
    let (to, reply) = fx.sends.pop().unwrap();
    assert_eq!(to, Dest::Sender);
    assert_eq!(reply, msg(Kind::Reply, &[3], &[2]));
    // b's rumor 2 was known to a: b lost interest; the rumor b just learned is hot.
    assert!(!b.is_hot(2) && b.is_hot(3) && b.is_hot(1));
    fx.clear();
    a.receive(reply, &mut r, &mut fx);
    assert_eq!(fx.learned, [(3, Kind::Reply)]);
    assert!(!a.is_hot(2) && a.is_hot(1) && a.is_hot(3));
    assert!(fx.sends.is_empty());
}

#[test]
fn anti_entropy_makes_two_nodes_agree_in_three_messages() {
    let c = cfg(Mode::Off, false, NEVER);
    let mut a = node(0, 2, c);
    let mut b = node(1, 2, c);
    let mut r = rng("g");
    let mut fx = Effects::default();
    a.originate(1, val(1));
    a.originate(2, val(2));
    b.originate(2, val(2));
    b.originate(7, val(7));
    a.tick(&mut r, &mut fx);
    assert!(fx.sends.is_empty(), "mongering is off");
    a.anti_entropy(&mut r, &mut fx);
    let (to, sync) = fx.sends.pop().unwrap();
    assert_eq!((to, &sync), (Dest::Peer(1), &msg(Kind::Sync, &[], &[1, 2])));
    b.receive(sync.clone(), &mut r, &mut fx);
    let (_, reply) = fx.sends.pop().unwrap();
    assert_eq!(reply, msg(Kind::SyncReply, &[7], &[1]));
    a.receive(reply, &mut r, &mut fx);
    assert_eq!(fx.learned, [(7, Kind::SyncReply)]);
    let (_, data) = fx.sends.pop().unwrap();
    assert_eq!(data, msg(Kind::SyncData, &[1], &[]));
    fx.clear();
    b.receive(data, &mut r, &mut fx);
    assert_eq!(fx.learned, [(1, Kind::SyncData)]);
    assert_eq!(a.known_ids().collect::<Vec<_>>(), [1, 2, 7]);
    assert_eq!(b.known_ids().collect::<Vec<_>>(), [1, 2, 7]);
    assert!(
        !a.is_hot(7) && !b.is_hot(1),
        "anti-entropy alone starts no mongering"
    );
    // In sync: a SYNC gets no answer.
    fx.clear();
    a.anti_entropy(&mut r, &mut fx);
    let (_, sync) = fx.sends.pop().unwrap();
    b.receive(sync, &mut r, &mut fx);
    assert!(fx.sends.is_empty());
    // With mongering on, a rumor learned by anti-entropy becomes hot.
    let mut c2 = node(1, 2, cfg(Mode::Push, true, NEVER));
    c2.receive(msg(Kind::SyncData, &[4], &[]), &mut r, &mut fx);
    assert!(c2.is_hot(4));
}

#[test]
fn a_peer_list_excludes_the_node_and_duplicates() {
    let list: std::rc::Rc<[u32]> = vec![3, 0, 3, 3].into();
    let mut c = cfg(Mode::Push, false, NEVER);
    c.fanout = 5;
    let mut n = GossipNode::new(c, 0, Peers::List(list));
    n.originate(1, val(1));
    let mut fx = Effects::default();
    n.tick(&mut rng("h"), &mut fx);
    assert_eq!(fx.sends.len(), 1);
    assert_eq!(fx.sends[0].0, Dest::Peer(3));
}

#[test]
fn rounds_push_forever_informs_everyone_and_doubles_at_first() {
    let mut w = Rounds::new(1000, cfg(Mode::Push, false, NEVER), 3);
    w.originate(0, 0);
    w.round();
    assert_eq!(w.informed(0), 2, "one push from one node");
    let mut rounds = 1;
    while w.informed(0) < 1000 {
        w.round();
        rounds += 1;
        assert!(rounds < 40, "stuck at {}", w.informed(0));
    }
    // log2 1000 + ln 1000 = 16.9: Pittel's O(1) band.
    assert!((13..=22).contains(&rounds), "{rounds}");
    assert_eq!(w.live(), 1000);
}

#[test]
fn rounds_lose_messages_to_dead_nodes_and_revive_them_empty() {
    let mut w = Rounds::new(3, cfg(Mode::Push, false, NEVER), 1);
    w.originate(0, 0);
    w.set_alive(1, false);
    w.set_alive(2, false);
    w.round();
    assert_eq!(w.informed(0), 1);
    assert_eq!(w.messages, 1);
    w.set_alive(1, true);
    w.set_alive(0, false);
    w.set_alive(0, true);
    assert_eq!(w.informed(0), 0, "a restarted node has lost its rumors");
}

// RB-GOS-02 (small and quick; the full check is tests/tests/validation_gossip.rs)
#[test]
fn feedback_coin_leaves_about_the_residue_demers_predicts() {
    let n = 2000u32;
    let seeds = 8;
    let mut total = 0.0;
    for seed in 0..seeds {
        let c = cfg(Mode::Push, true, LoseInterest::Coin { k: 1 });
        let mut w = Rounds::new(n, c, seed);
        w.originate(0, 0);
        while w.infective(0) > 0 {
            w.round();
        }
        total += 1.0 - w.informed(0) as f64 / f64::from(n);
    }
    // s = exp(-2 (1 - s)) gives s = 0.2032.
    let s = total / seeds as f64;
    assert!((s - 0.2032).abs() < 0.2 * 0.2032, "{s}");
}

#[test]
fn peers_believed_dead_are_not_contacted() {
    let mut c = cfg(Mode::Push, false, NEVER);
    c.fanout = 2;
    let mut n = node(0, 4, c);
    n.originate(1, vec![]);
    n.set_reachable(2, false);
    let mut r = rng("i");
    let mut fx = Effects::default();
    for _ in 0..50 {
        fx.clear();
        n.tick(&mut r, &mut fx);
        let mut to: Vec<Dest> = fx.sends.iter().map(|(d, _)| *d).collect();
        to.sort_by_key(|d| format!("{d:?}"));
        assert_eq!(to, [Dest::Peer(1), Dest::Peer(3)]);
    }
    n.set_reachable(1, false);
    n.set_reachable(3, false);
    fx.clear();
    n.tick(&mut r, &mut fx);
    assert!(fx.sends.is_empty(), "nobody left to contact");
    n.set_reachable(2, true);
    fx.clear();
    n.tick(&mut r, &mut fx);
    assert_eq!(fx.sends.len(), 1);
    assert_eq!(fx.sends[0].0, Dest::Peer(2));
}

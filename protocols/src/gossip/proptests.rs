//! Property test (RB-GOS-03): with no loss and a connected membership graph among the
//! live nodes, anti-entropy alone makes every live node know every rumor any live node
//! started, and nothing else; knowledge only grows.

use super::node::{GossipConfig, LoseInterest, Mode, Peers};
use super::rounds::Rounds;
use proptest::prelude::*;
use std::collections::BTreeSet;

/// A connected graph on `live` (a random tree plus `extra` random edges), with each dead
/// node attached to random nodes; adjacency lists per node.
fn graph(n: usize, dead: &BTreeSet<usize>, seed: u64, extra: usize) -> Vec<Vec<u32>> {
    let mut k = seed | 1;
    let mut next = move |m: usize| {
        k ^= k << 13;
        k ^= k >> 7;
        k ^= k << 17;
        (k % m as u64) as usize
    };
    let live: Vec<usize> = (0..n).filter(|i| !dead.contains(i)).collect();
    let mut adj = vec![Vec::new(); n];
    let add = |a: usize, b: usize, adj: &mut Vec<Vec<u32>>| {
        if a != b {
            adj[a].push(b as u32);
            adj[b].push(a as u32);
        }
    };
    for i in 1..live.len() {
        let j = next(i);
        add(live[i], live[j], &mut adj);
    }
    for _ in 0..extra {
        let (a, b) = (next(n), next(n));
        add(a, b, &mut adj);
    }
    for &d in dead {
        let j = next(n);
        add(d, j, &mut adj);
    }
    adj
}

proptest! {
    // PROPTEST_CASES raises the count for a deeper search (the default run keeps 64).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        .. ProptestConfig::default()
    })]

    #[test]
    fn anti_entropy_converges_on_every_connected_live_graph(
        n in 2usize..40,
        dead_mask in any::<u64>(),
        rumor_seeds in proptest::collection::vec((any::<u32>(), 0u32..1000), 1..6),
        seed in any::<u64>(),
        extra in 0usize..30,
    ) {
        // At most half the nodes are dead; node 0 always lives.
        let dead: BTreeSet<usize> = (1..n).filter(|i| dead_mask >> (i % 64) & 1 == 1).take(n / 2).collect();
        let adj = graph(n, &dead, seed, extra);
        let peers = adj.into_iter().map(|l| Peers::List(l.into())).collect();
        let cfg = GossipConfig { mode: Mode::Off, fanout: 1, feedback: false, lose_interest: LoseInterest::Never };
        let mut w = Rounds::with_peers(peers, cfg, seed);
        for d in &dead {
            w.set_alive(*d as u32, false);
        }
        let live: Vec<u32> = (0..n as u32).filter(|i| w.is_alive(*i)).collect();
        let mut started = BTreeSet::new();
        for (pick, id) in &rumor_seeds {
            let origin = live[*pick as usize % live.len()];
            w.originate(origin, *id);
            started.insert(*id);
        }
        let everyone_knows = |w: &Rounds| live.iter().all(|&i| started.iter().all(|&id| w.nodes[i as usize].knows(id)));
        let mut known_before: Vec<BTreeSet<u32>> = w.nodes.iter().map(|x| x.known_ids().collect()).collect();
        // Each round an edge on a shortest path carries the state with probability at
        // least 1/degree; 100 n rounds is far beyond what any case needs.
        let mut rounds = 0;
        while !everyone_knows(&w) {
            w.anti_entropy_round();
            rounds += 1;
            prop_assert!(rounds <= 100 * n, "no convergence after {} rounds", rounds);
            for &i in &live {
                let now: BTreeSet<u32> = w.nodes[i as usize].known_ids().collect();
                prop_assert!(now.is_superset(&known_before[i as usize]), "node {} forgot a rumor", i);
                prop_assert!(now.is_subset(&started), "node {} knows a rumor nobody started", i);
                known_before[i as usize] = now;
            }
        }
        // Dead nodes learned nothing.
        for d in &dead {
            prop_assert_eq!(w.nodes[*d].known_ids().count(), 0);
        }
    }
}

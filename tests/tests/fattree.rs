//! Fat-trees end to end (`FatTree` groups): the routes installed in the built world are
//! those shortest-path routing gives, traffic between pods is spread by ECMP over every
//! core router with each flow on one path, and a traceroute crosses the tiers in order.

use scenarios::{load_file, load_str, run, Loaded, Outcome, RunOptions};
use sim_core::fattree::FatTree;
use sim_core::route::{NextHop, Prefix, Route, RouteOrigin, RouteTable};
use sim_core::topology::{auto_routes, TopoNode};
use sim_core::world::NodeId;
use std::path::Path;
use std::sync::Arc;

fn fabric(k: u32, apps: &str) -> Loaded {
    let src = format!(
        r#"Scenario(
    name: "ft",
    duration: "2s",
    groups: [ FatTree(name: "dc", k: {k}) ],
    apps: [ {apps} ],
)"#
    );
    load_str("ft.ron", &src, &[]).unwrap_or_else(|e| panic!("{e}"))
}

/// For k = 4 and 6: every node's table in the built world (connected routes plus the
/// fabric's closed-form routes) chooses among the same next hops as shortest-path routing
/// over every segment of the same address plan, for every host address.
#[test]
fn installed_routes_equal_shortest_path_routing_for_every_host_address() {
    for k in [4, 6] {
        let l = fabric(k, "");
        let b = scenarios::build::build(&l, 1).unwrap_or_else(|e| panic!("{e}"));
        let nodes: Vec<TopoNode> = l
            .scenario
            .nodes
            .0
            .iter()
            .zip(&b.kinds)
            .map(|((name, _), kind)| TopoNode {
                name: name.clone(),
                kind: *kind,
                dynamic_address: false,
            })
            .collect();
        let generic = auto_routes(
            &nodes,
            &b.plan,
            &vec![true; b.plan.link_ports.len()],
            &vec![true; nodes.len()],
        );
        let t = FatTree::new(k).unwrap();
        let host_addrs: Vec<std::net::Ipv4Addr> = (0..t.host_count())
            .map(|h| b.plan.ifaces[h][0].unwrap().0)
            .collect();
        for (n, routes) in generic.iter().enumerate() {
            let mut expected = RouteTable::default();
            for (port, a) in b.plan.ifaces[n].iter().enumerate() {
                let (_, prefix) = a.unwrap();
                expected.insert(connected(prefix, port as u16));
            }
            for r in routes.as_ref().unwrap() {
                expected.insert(r.clone());
            }
            let installed = &b.world.ip_node(NodeId(n as u32)).unwrap().routes;
            for &a in &host_addrs {
                assert_eq!(
                    installed.lookup(a).map(|r| &r.next_hops),
                    expected.lookup(a).map(|r| &r.next_hops),
                    "k={k}: {} to {a}",
                    nodes[n].name
                );
            }
        }
    }
}

fn connected(prefix: Prefix, iface: u16) -> Route {
    Route {
        prefix,
        next_hops: Arc::new([NextHop {
            iface,
            gateway: None,
        }]),
        origin: RouteOrigin::Connected,
    }
}

fn rx_frames(o: &Outcome, node: &str) -> u64 {
    let n = o.summary.nodes.iter().find(|n| n.name == node).unwrap();
    n.counters.get("rx_frames").copied().unwrap_or(0)
}

/// RB-IP-05 at scale: 64 UDP flows between pods of a k = 4 fabric (every host sends 4
/// flows to a host two pods away) cross all 4 core routers, each core carrying whole flows
/// and a fair share of them, and no datagram is lost.
#[test]
fn ecmp_spreads_flows_between_pods_over_every_core_router() {
    let t = FatTree::new(4).unwrap();
    let host = |h: usize| {
        let sim_core::fattree::FatNode::Host { pod, edge, host } = t.node(h) else {
            unreachable!()
        };
        format!("dc-pod{pod}-edge{edge}-h{host}")
    };
    let mut apps = Vec::new();
    for h in 0..16 {
        let peer = (h + 8) % 16; // two pods away
        apps.push(format!(r#"UdpSink(on: "{}", port: 9000)"#, host(h)));
        for f in 0..4 {
            apps.push(format!(
                r#"UdpCbr(name: "f{h}-{f}", from: "{}", to: "{}:9000", rate: "1Mbps", count: 50, size: 100)"#,
                host(h),
                host(peer)
            ));
        }
    }
    let o = run(&fabric(4, &apps.join(",\n")), &RunOptions::default()).unwrap();
    for f in &o.summary.flows {
        assert_eq!((f.rx_packets, f.lost_packets), (50, 0), "{}", f.id);
    }
    // Each flow crosses one core router once; ARP between a core and its neighbours
    // adds a few frames.
    let cores: Vec<u64> = (0..4)
        .map(|c| rx_frames(&o, &format!("dc-core{c}")))
        .collect();
    let flows_on: Vec<u64> = cores.iter().map(|&f| (f + 25) / 50).collect();
    assert_eq!(flows_on.iter().sum::<u64>(), 64, "{cores:?}");
    for (c, &n) in flows_on.iter().enumerate() {
        // 16 expected, binomial standard deviation 3.5 (22, 12, 14 and 16 at seed 1).
        assert!(
            (6..=26).contains(&n),
            "core {c} carries {n} of 64 flows: {cores:?}"
        );
        assert!(
            cores[c].abs_diff(n * 50) <= 8,
            "whole flows only: {cores:?}"
        );
    }
}

fn example(name: &str) -> Outcome {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/examples/{name}.ron"));
    let l = load_file(&p, &[]).unwrap_or_else(|e| panic!("{e}"));
    run(&l, &RunOptions::default()).unwrap()
}

/// The example: a traceroute across pods lists edge, aggregation, core, aggregation and
/// edge router before the host, pings take 2, 4 or 6 links, and the 8 flows use every
/// core.
#[test]
fn the_fat_tree_example_crosses_the_tiers_in_order() {
    let o = example("fat-tree");
    let lines: Vec<String> = o
        .summary
        .apps
        .iter()
        .filter(|a| a.app == "path")
        .flat_map(|a| a.lines.clone())
        .collect();
    let hops: Vec<&String> = lines
        .iter()
        .filter(|l| l.trim_start().starts_with(char::is_numeric))
        .collect();
    assert_eq!(hops.len(), 6, "{lines:#?}");
    // Each router answers from the address of the link the probe came in on: the edge
    // router of pod 0 from its host link, pod 0's aggregation router from its link to
    // that edge router (10.128.0.x), a core from its link to pod 0 (10.128.6x.x), pod 3's
    // aggregation router from its link to a core (10.131.6x.x) and its edge router from
    // its link to that aggregation router (10.131.1.x). Each probe is a flow of its own,
    // so probes of one hop may take different equal-cost paths.
    for (hop, addr) in hops.iter().zip([
        "10.0.0.0 ",
        "10.128.0.",
        "10.128.6",
        "10.131.6",
        "10.131.1.",
        "10.3.1.3 ",
    ]) {
        assert!(hop.contains(addr), "{hop} should show {addr}: {lines:#?}");
    }
    let rtt = |id: &str| {
        let f = o.summary.flows.iter().find(|f| f.id == id).unwrap();
        assert_eq!(f.rx_packets, 3, "{id}");
        f.rtt_ms.as_ref().unwrap().min
    };
    let (edge, pod, far) = (rtt("same-edge"), rtt("same-pod"), rtt("cross-pod"));
    assert!(edge < pod && pod < far, "{edge} {pod} {far}");
    for f in o.summary.flows.iter().filter(|f| f.id.starts_with('f')) {
        assert_eq!(f.lost_packets, 0, "{}", f.id);
        assert!(f.rx_packets > 600, "{}", f.id);
    }
    for c in 0..4 {
        assert!(rx_frames(&o, &format!("dc-core{c}")) > 600, "core {c}");
    }
}

/// The 101,306-host example that the `scale` bench runs stays valid: at k = 8 (128 hosts)
/// its rumor reaches most hosts and no gossip message is lost.
#[test]
fn the_large_example_runs_at_a_small_k() {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples/large/fat-tree-k74.ron");
    let l = load_file(&p, &["groups[0].k=8".to_string()]).unwrap_or_else(|e| panic!("{e}"));
    let o = run(&l, &RunOptions::default()).unwrap();
    let g = &o.summary.gossip[0];
    assert_eq!(g.members, 128);
    assert_eq!(g.messages.received, g.messages.sent);
    assert!(g.rumors[0].informed >= 110, "{:?}", g.rumors[0]);
}

/// `record: (idle_links: false)` leaves the link directions that sent no frame out of
/// summary.json and changes nothing else: the same run, the same busy directions.
#[test]
fn idle_links_can_be_left_out_of_the_summary() {
    let apps = r#"Ping(from: "dc-pod0-edge0-h0", to: "dc-pod3-edge1-h1", count: 2)"#;
    let all = run(&fabric(4, apps), &RunOptions::default()).unwrap();
    let src = fabric(4, apps).source.replace(
        "    apps: [",
        "    record: (idle_links: false),\n    apps: [",
    );
    let l = load_str("ft.ron", &src, &[]).unwrap_or_else(|e| panic!("{e}"));
    let busy = run(&l, &RunOptions::default()).unwrap();
    assert_eq!(all.summary.trace_digest, busy.summary.trace_digest);
    let used: Vec<&str> = all
        .summary
        .links
        .iter()
        .filter(|d| d.tx_packets > 0)
        .map(|d| d.id.as_str())
        .collect();
    let listed: Vec<&str> = busy.summary.links.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(listed, used);
    // 48 links, two directions each; ARP's broadcasts and the pings' path use some.
    assert_eq!(all.summary.links.len(), 96);
    assert!(!listed.is_empty() && listed.len() < 96, "{}", listed.len());
}

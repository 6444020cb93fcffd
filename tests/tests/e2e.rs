//! End-to-end tests: every example scenario, determinism, exact timing and the
//! RB-LINK / RB-IP / RB-ARP behaviours observed through whole runs. The TCP examples have
//! their own file, `tcp_e2e.rs`; the tshark check here covers their captures too.

mod common;

use scenarios::{load_file, load_str, run, Outcome, RunOptions};
use std::path::{Path, PathBuf};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/examples")
}

fn run_example(name: &str, sets: &[&str]) -> Outcome {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let l = load_file(&examples_dir().join(format!("{name}.ron")), &sets).expect("example loads");
    run(&l, &RunOptions::default()).expect("example runs")
}

use common::flow;

fn app_lines(o: &Outcome, app: &str) -> Vec<String> {
    o.summary
        .apps
        .iter()
        .filter(|a| a.app == app)
        .flat_map(|a| a.lines.clone())
        .collect()
}

#[test]
fn every_example_runs_to_completion() {
    let mut n = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "ron") {
            let l = load_file(&p, &[]).unwrap_or_else(|e| panic!("{e}"));
            let o = run(&l, &RunOptions::default()).unwrap();
            assert!(o.summary.complete, "{}", p.display());
            assert!(o.summary.events > 0);
            n += 1;
        }
    }
    assert!(n >= 6, "expected at least six examples, found {n}");
}

#[test]
fn same_seed_same_digest_and_different_seed_changes_lossy_runs() {
    let a = run_example("lossy-udp-cbr", &[]);
    let b = run_example("lossy-udp-cbr", &[]);
    assert_eq!(a.summary.trace_digest, b.summary.trace_digest);
    assert_eq!(a.summary.trace_digest.len(), 32);
    let c = run_example("lossy-udp-cbr", &["seed=43"]);
    assert_ne!(a.summary.trace_digest, c.summary.trace_digest);
    let drops = |o: &Outcome| {
        o.summary
            .links
            .iter()
            .map(|l| l.loss_drops)
            .collect::<Vec<_>>()
    };
    assert_ne!(drops(&a), drops(&c), "another seed draws other losses");
}

#[test]
fn adding_an_unrelated_host_leaves_a_lossy_flows_losses_unchanged() {
    let src = std::fs::read_to_string(examples_dir().join("lossy-udp-cbr.ron")).unwrap();
    let base = load_str("base.ron", &src, &[]).unwrap();
    let more = src
        .replace(
            "\"server\": Host() }",
            "\"server\": Host(), \"bystander\": Host() }",
        )
        .replace(
            "apps: [",
            "apps: [\n        Ping(from: \"bystander\", to: \"r\", interval: \"10ms\"),",
        )
        .replace(
            "links: [",
            "links: [\n        Link(a: \"bystander\", b: \"r\", loss: Bernoulli(0.3)),",
        );
    let more = load_str("more.ron", &more, &[]).unwrap();
    let a = run(&base, &RunOptions::default()).unwrap();
    let b = run(&more, &RunOptions::default()).unwrap();
    assert_ne!(a.summary.trace_digest, b.summary.trace_digest);
    for id in ["video", "probe"] {
        assert_eq!(flow(&a, id).lost_packets, flow(&b, id).lost_packets, "{id}");
        assert_eq!(flow(&a, id).rx_packets, flow(&b, id).rx_packets, "{id}");
    }
    let drops = |o: &Outcome| {
        o.summary
            .links
            .iter()
            .filter(|l| l.link != "bystander-r")
            .map(|l| l.loss_drops)
            .collect::<Vec<_>>()
    };
    assert_eq!(drops(&a), drops(&b));
}

// RB-LINK-01
#[test]
fn ping_rtt_equals_the_analytic_sum_to_the_nanosecond() {
    let o = run_example("ping-two-routers", &[]);
    // 56-byte payload: 84-byte IP packet, 98-byte Ethernet frame on every hop.
    let ser = |rate: u64| (98 * 8 * 1_000_000_000u64).div_ceil(rate);
    let one_way =
        ser(100_000_000) + 1_000_000 + ser(10_000_000) + 10_000_000 + ser(100_000_000) + 1_000_000;
    let w = &o.built.world;
    let f = w
        .net
        .flows
        .get(w.net.flows.find("ping-0").unwrap())
        .unwrap();
    // The first ping also waits for ARP on three hops; every later one is exact.
    assert_eq!(f.rtt.min_ns, 2 * one_way);
    assert_eq!(f.rtt.count, 5);
    assert!(f.rtt.max_ns > f.rtt.min_ns);
}

// RB-IP-02: traceroute relies on ICMP time exceeded from each router.
#[test]
fn traceroute_lists_each_hop_and_ttl_expiry_returns_icmp() {
    let o = run_example("ping-two-routers", &[]);
    let lines = app_lines(&o, "traceroute-1");
    assert!(lines[1].starts_with(" 1  10.0.0.1 "), "{lines:?}");
    assert!(lines[2].starts_with(" 2  10.0.1.2 "), "{lines:?}");
    assert!(lines[3].starts_with(" 3  10.0.2.2 "), "{lines:?}");
    assert_eq!(lines.len(), 4);
    let o = run_example("ping-two-routers", &["apps[0].ttl=2"]);
    let lines = app_lines(&o, "ping-0");
    assert!(
        lines
            .iter()
            .any(|l| l == "From 10.0.1.2 icmp_seq=1 Time to live exceeded"),
        "{lines:?}"
    );
    let r2 = o.summary.nodes.iter().find(|n| n.name == "r2").unwrap();
    // Five pings plus the traceroute's three probes with TTL 2.
    assert_eq!(r2.counters.get("ttl_expired"), Some(&8));
}

// RB-IP-05
#[test]
fn ecmp_spreads_flows_and_keeps_each_flow_on_one_path() {
    let per_flow = run_example("ecmp-diamond", &[]);
    let tx = |o: &Outcome, id: &str| {
        o.summary
            .links
            .iter()
            .find(|l| l.id == id)
            .unwrap()
            .tx_packets
    };
    let (p1, p2) = (tx(&per_flow, "r0-r1:r0->r1"), tx(&per_flow, "r0-r2:r0->r2"));
    let per = 7501u64; // datagrams per flow in 3 s at 20 Mb/s of 1000-byte payloads
                       // Each path carries a whole number of flows (plus at most a few ARP frames).
    let flows_on = |p: u64| (p + per / 2) / per;
    assert!(flows_on(p1) >= 1 && flows_on(p2) >= 1, "{p1} {p2}");
    assert_eq!(flows_on(p1) + flows_on(p2), 8);
    // Datagrams still queued at the end of the run make up the small difference.
    assert!(
        p1.abs_diff(flows_on(p1) * per) <= 16 && p2.abs_diff(flows_on(p2) * per) <= 16,
        "{p1} {p2}"
    );
    for f in &per_flow.summary.flows {
        assert_eq!(f.lost_packets, 0, "{}", f.id);
    }
    let sprayed = run_example("ecmp-diamond", &["routing=Auto(ecmp: PerPacket)"]);
    let (s1, s2) = (tx(&sprayed, "r0-r1:r0->r1"), tx(&sprayed, "r0-r2:r0->r2"));
    assert!(
        s1.abs_diff(s2) < (s1 + s2) / 20,
        "spraying splits packets evenly: {s1} {s2}"
    );
}

// RB-ARP-01, RB-ARP-02 (ICMP side), RB-L2-01
#[test]
fn arp_failure_gives_host_unreachable_and_lan_pings_resolve() {
    let o = run_example("switched-lan-arp", &[]);
    assert_eq!(flow(&o, "ping-0").rx_packets, 3);
    assert_eq!(flow(&o, "ping-1").rx_packets, 3);
    let nobody = app_lines(&o, "nobody");
    assert!(
        nobody
            .iter()
            .any(|l| l.contains("Destination Host Unreachable")),
        "{nobody:?}"
    );
    assert_eq!(flow(&o, "nobody").rx_packets, 0);
    let a = o.summary.nodes.iter().find(|n| n.name == "a").unwrap();
    assert_eq!(a.counters.get("arp_failures"), Some(&1));
    // Three requests a second apart, then failure at 3 s after the first (Linux defaults).
    let host_a = o.built.world.node_id("a").unwrap();
    assert!(o
        .built
        .world
        .ip_node(host_a)
        .unwrap()
        .arp_entry(o.built.world.now(), 0, "10.0.0.99".parse().unwrap())
        .is_none());
}

// RB-IP-03
#[test]
fn fragmentation_round_trips_through_a_smaller_mtu() {
    let o = run_example("fragmentation-pmtu", &[]);
    let big = flow(&o, "big");
    assert_eq!(
        (big.tx_packets, big.rx_packets, big.rx_bytes),
        (10, 10, 30_000)
    );
    let node = |n: &str| {
        o.summary
            .nodes
            .iter()
            .find(|x| x.name == n)
            .unwrap()
            .counters
            .clone()
    };
    assert!(node("h1").get("fragments_created").copied().unwrap_or(0) >= 30);
    assert!(node("r1").get("fragments_created").copied().unwrap_or(0) > 0);
    assert_eq!(node("h2").get("reassembled"), Some(&12)); // 10 datagrams + 2 big pings
    assert_eq!(flow(&o, "ping-2").rx_packets, 2);
    // With DF set on the path and no fragmentation, the router answers "fragmentation needed".
}

// RB-LINK-04
#[test]
fn link_failure_drops_traffic_until_routes_reconverge() {
    let o = run_example("link-failure", &[]);
    let f = flow(&o, "ping-0");
    // 200 ms without a route at the failure, and again at recovery only if the backup is
    // withdrawn: a few pings are lost, then the backup path (longer RTT) carries them.
    assert!((1..=6).contains(&f.lost_packets), "lost {}", f.lost_packets);
    let rtt = f.rtt_ms.unwrap();
    assert!((rtt.min - 24.0).abs() < 0.5, "short path {rtt:?}");
    // The backup path: 64 ms, plus 60 ms of ARP on its three new hops for the first ping.
    assert!(rtt.max > 64.0 && rtt.max < 125.0, "backup path {rtt:?}");
    assert!(rtt.mean > 30.0, "many pings took the backup path {rtt:?}");
    let without = run_example("link-failure", &["routing=Auto(ecmp: PerFlow)"]);
    assert!(
        flow(&without, "ping-0").lost_packets >= 29,
        "no rerouting: the outage loses 3 s of pings"
    );
}

#[test]
fn run_bounds_write_partial_results() {
    let l = load_file(&examples_dir().join("ecmp-diamond.ron"), &[]).unwrap();
    let o = run(
        &l,
        &RunOptions {
            max_events: Some(10_000),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!o.summary.complete);
    assert_eq!(o.summary.stop_reason, "max_events");
    assert_eq!(o.summary.events, 10_000);
}

/// tshark reads every capture of every example without a malformed packet.
#[test]
fn tshark_finds_no_malformed_packets_in_example_captures() {
    if std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").is_err(),
            "tshark must be installed in CI (.ci/run installs it)"
        );
        eprintln!("tshark not installed: skipping (CI installs it)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("netdes-tshark-{}", std::process::id()));
    let mut checked = 0;
    let mut tcp_captures = 0;
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|e| e != "ron") {
            continue;
        }
        let out = dir.join(p.file_stem().unwrap());
        let l = load_file(&p, &[]).unwrap();
        run(
            &l,
            &RunOptions {
                out_dir: Some(out.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        for pcap in std::fs::read_dir(&out).unwrap() {
            let pcap = pcap.unwrap().path();
            if pcap.extension().is_none_or(|e| e != "pcap") {
                continue;
            }
            let res = std::process::Command::new("tshark")
                .args(["-r"])
                .arg(&pcap)
                .args([
                    "-Y",
                    "_ws.malformed || _ws.expert.severity == error",
                    "-T",
                    "fields",
                    "-e",
                    "frame.number",
                ])
                .output()
                .unwrap();
            assert!(
                res.status.success(),
                "{}: {}",
                pcap.display(),
                String::from_utf8_lossy(&res.stderr)
            );
            assert!(
                res.stdout.is_empty(),
                "malformed frames in {}: {}",
                pcap.display(),
                String::from_utf8_lossy(&res.stdout)
            );
            let count = std::process::Command::new("tshark")
                .arg("-r")
                .arg(&pcap)
                .output()
                .unwrap();
            assert!(!count.stdout.is_empty(), "{} is empty", pcap.display());
            checked += 1;
            if p.file_stem()
                .is_some_and(|s| s.to_string_lossy().starts_with("tcp-"))
            {
                tcp_captures += 1;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked >= 5, "checked {checked} captures");
    // The TCP examples' captures (segments with options, resets, zero windows ...) too.
    assert!(tcp_captures >= 8, "checked {tcp_captures} TCP captures");
}

//! netdes as a property-testing library (`scenarios::testing`, feature `proptest`): the
//! strategies give valid scenarios that survive the RON round trip, and a failing property
//! is shrunk to a minimal scenario, saved as RON and replayed.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use scenarios::schema::{AppDecl, LossDecl, Scenario};
use scenarios::testing::{impairment, network, run, topology, Check, Shape};
use scenarios::units::Duration;
use scenarios::{load_file, load_str, parse_ron, Loaded};

const S: u64 = 1_000_000_000;

fn app(text: &str) -> AppDecl {
    parse_ron("app", text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn generated_networks_are_valid_scenarios_that_round_trip_through_ron() {
    let pinged = network(Duration::from_nanos(3 * S)).prop_map(|mut s| {
        s.apps.push(app(
            r#"Ping(from: "client", to: "server", count: 5, interval: "200ms")"#,
        ));
        s
    });
    let mut shapes = std::collections::BTreeSet::new();
    let result = Check::new("valid").cases(48).run(pinged, |s| {
        let text = s.to_ron();
        let back = load_str("back.ron", &text, &[]).map_err(|e| format!("{e}\n{text}"))?;
        if &back.scenario != s {
            return Err(format!("round trip changed the scenario:\n{text}"));
        }
        scenarios::check(&back).map_err(|e| e.to_string())?;
        let o = run(s)?;
        if o.flow("ping-0").is_none() {
            return Err("no ping flow".into());
        }
        Ok(())
    });
    if let Err(f) = result {
        panic!("{f}");
    }
    // The strategy covers every shape (checked on its own, with the same deterministic runner).
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for _ in 0..64 {
        let s = topology(Duration::from_nanos(S))
            .new_tree(&mut runner)
            .unwrap()
            .current();
        shapes.insert((s.nodes.0.len(), s.links.len()));
    }
    // Direct, chains of 1 to 3 routers, the diamond, the LAN (a switch: 3 nodes, 2 links,
    // as a 1-router chain).
    for expected in [(2, 1), (3, 2), (4, 3), (5, 4), (6, 6)] {
        assert!(shapes.contains(&expected), "{shapes:?}");
    }
    let imp = impairment().new_tree(&mut runner).unwrap().current();
    let mut link =
        scenarios::testing::scenario_of(Shape::Direct, Duration::from_nanos(S)).links[0].clone();
    imp.apply(&mut link);
    assert_eq!(link.rate, imp.rate);
}

/// 300 KB over random networks must arrive at 2 Mb/s or more: false on slow or lossy paths.
/// proptest shrinks the counterexample; the saved file replays the same failure.
#[test]
fn a_failing_property_shrinks_to_a_minimal_scenario_that_replays() {
    let transfer = network(Duration::from_nanos(10 * S)).prop_map(|mut s| {
        s.apps.push(app(r#"TcpSink(on: "server", port: 80)"#));
        s.apps.push(app(
            r#"TcpBulk(name: "t", from: "client", to: "server:80", bytes: "300KB")"#,
        ));
        s
    });
    let property = |s: &Scenario| -> Result<(), String> {
        let o = run(s)?;
        let t = o.flow("t").ok_or("no flow t")?;
        if t.rx_bytes == 300_000 && t.goodput_bps >= 2e6 {
            Ok(())
        } else {
            Err(format!(
                "{} bytes at {:.0} bit/s",
                t.rx_bytes, t.goodput_bps
            ))
        }
    };
    let dir = std::env::temp_dir().join(format!("netdes-proptest-{}", std::process::id()));
    // The first counterexample found, before shrinking.
    let first: std::cell::RefCell<Option<Scenario>> = Default::default();
    let f = Check::new("fast-transfer")
        .cases(64)
        .save_to(&dir)
        .run(transfer, |s| {
            let r = property(s);
            if r.is_err() && first.borrow().is_none() {
                *first.borrow_mut() = Some(s.clone());
            }
            r
        })
        .expect_err("slow and lossy networks exist");
    println!("{f}");
    let minimal = *f.scenario.clone().expect("a counterexample");
    let saved = f.saved.clone().expect("saved");
    let text = std::fs::read_to_string(&saved).unwrap();
    println!("{text}");
    assert!(text.starts_with("// Minimal failing scenario for property fast-transfer: "));
    // Replay: the file loads, is the minimal scenario, and fails the same way.
    let replayed = load_file(&saved, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(replayed.scenario, minimal);
    assert_eq!(property(&replayed.scenario), Err(f.reason.clone()));
    let again = scenarios::run(&replayed, &Default::default()).unwrap();
    let direct = scenarios::run(
        &Loaded::from_scenario("m.ron", &minimal).unwrap(),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(again.summary.trace_digest, direct.summary.trace_digest);
    // Shrinking made it simpler than the first counterexample ...
    let first = first.into_inner().expect("a first counterexample");
    println!(
        "complexity: first counterexample {}, minimal {}",
        complexity(&first),
        complexity(&minimal)
    );
    assert!(complexity(&minimal) < complexity(&first), "{text}");
    // ... and every fault and every optional impairment left is needed: without any one of
    // them the property holds.
    for i in 0..minimal.faults.len() {
        let mut s = minimal.clone();
        s.faults.remove(i);
        assert_eq!(property(&s), Ok(()), "fault {i} is not needed:\n{text}");
    }
    for i in 0..minimal.links.len() {
        for strip in [strip_loss, strip_duplicate, strip_reorder, strip_corrupt] {
            let mut s = minimal.clone();
            if strip(&mut s.links[i]) {
                assert_eq!(
                    property(&s),
                    Ok(()),
                    "an impairment of link {i} is not needed:\n{text}"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// How much is going on in a scenario: nodes, faults, and impairments set on links.
fn complexity(s: &Scenario) -> usize {
    let clean = scenarios::testing::scenario_of(Shape::Direct, s.duration).links[0].clone();
    let links: usize = s
        .links
        .iter()
        .map(|l| {
            [
                l.rate != clean.rate,
                l.delay != clean.delay,
                l.jitter != clean.jitter,
                l.queue != clean.queue,
                l.loss != LossDecl::None,
                l.duplicate.is_some(),
                l.reorder.is_some(),
                l.corrupt.is_some(),
            ]
            .iter()
            .filter(|&&b| b)
            .count()
        })
        .sum();
    s.nodes.0.len() + s.faults.len() + links
}

/// Removes one kind of impairment from a link; false if it had none.
fn strip_loss(l: &mut scenarios::schema::LinkDecl) -> bool {
    std::mem::replace(&mut l.loss, LossDecl::None) != LossDecl::None
}
fn strip_duplicate(l: &mut scenarios::schema::LinkDecl) -> bool {
    l.duplicate.take().is_some()
}
fn strip_reorder(l: &mut scenarios::schema::LinkDecl) -> bool {
    l.reorder.take().is_some()
}
fn strip_corrupt(l: &mut scenarios::schema::LinkDecl) -> bool {
    l.corrupt.take().is_some()
}

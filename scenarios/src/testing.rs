//! Property testing with netdes (cargo feature `proptest`): [proptest] strategies for
//! random network conditions, and [`Check`], which runs a property over them and saves the
//! minimal failing scenario as a RON file that `netdes run` replays.
//!
//! The strategies generate [`Scenario`] values without apps: small topologies between a
//! host named `"client"` and a host named `"server"` ([`topology`]), arbitrary link
//! impairments ([`impairment`]) and fault schedules ([`faults`]), combined by
//! [`network`]. Add the apps you want to test with `prop_map`, and write the property
//! as a function of the scenario. Every strategy shrinks towards a clean network: a direct
//! link, no loss, no delay, no faults; so the scenario a failing property is reduced to
//! keeps only what makes it fail.
//!
//! ```no_run
//! use proptest::prelude::*;
//! use scenarios::testing::{network, run, Check};
//!
//! let with_transfer = network(scenarios::units::Duration::from_nanos(10_000_000_000)).prop_map(|mut s| {
//!     s.apps.push(scenarios::parse_ron("app", r#"TcpSink(on: "server", port: 80)"#).unwrap());
//!     s.apps.push(scenarios::parse_ron("app", r#"TcpBulk(name: "t", from: "client", to: "server:80", bytes: "200KB")"#).unwrap());
//!     s
//! });
//! let result = Check::new("transfer-completes").cases(64).run(with_transfer, |s| {
//!     let o = run(s)?;
//!     let t = o.flow("t").ok_or("no flow")?;
//!     if t.rx_bytes == 200_000 { Ok(()) } else { Err(format!("only {} bytes arrived", t.rx_bytes)) }
//! });
//! if let Err(f) = result {
//!     panic!("{f}"); // names the saved file: netdes run target/netdes-failures/transfer-completes.ron
//! }
//! ```

use crate::load::Loaded;
use crate::run::{Outcome, RunOptions};
use crate::schema::*;
use crate::units::{Duration, Probability, QueueLimit, Rate};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::path::{Path, PathBuf};

const MS: u64 = 1_000_000;

fn probability(max: f64) -> impl Strategy<Value = Probability> {
    (0.0..=max).prop_map(|p| Probability::new(p).unwrap_or(Probability::ZERO))
}

fn duration_ms(max_ms: u64) -> impl Strategy<Value = Duration> {
    (0..=max_ms).prop_map(|ms| Duration::from_nanos(ms * MS))
}

fn rate() -> impl Strategy<Value = Rate> {
    // Shrinks towards the fastest.
    prop::sample::select(vec![1_000_000_000u64, 100_000_000, 10_000_000, 1_000_000])
        .prop_map(|bps| Rate::from_bits_per_sec(bps).unwrap_or_else(|| unreachable!()))
}

/// A link's impairments: every setting of a `Link` that degrades it.
#[derive(Clone, Debug, PartialEq)]
pub struct Impairment {
    pub rate: Rate,
    pub delay: Duration,
    pub jitter: Duration,
    pub queue: QueueDecl,
    pub loss: LossDecl,
    pub duplicate: Option<Probability>,
    pub reorder: Option<ReorderDecl>,
    pub corrupt: Option<Probability>,
}

impl Impairment {
    /// Sets these impairments on both directions of `link`.
    pub fn apply(&self, link: &mut LinkDecl) {
        link.rate = self.rate;
        link.delay = self.delay;
        link.jitter = self.jitter;
        link.queue = self.queue.clone();
        link.loss = self.loss.clone();
        link.duplicate = self.duplicate;
        link.reorder = self.reorder.clone();
        link.corrupt = self.corrupt;
    }
}

/// Arbitrary impairments: rates from 1 Mb/s to 1 Gb/s, delays up to 50 ms, jitter up to
/// 5 ms, drop-tail queues of 5 to 1000 packets or RED or CoDel, Bernoulli loss up to 10%
/// or Gilbert-Elliott bursts, and up to 2% duplication, reordering and corruption. Each
/// part shrinks to none (or to the fastest rate and no delay).
pub fn impairment() -> impl Strategy<Value = Impairment> {
    let queue = prop_oneof![
        Just(QueueDecl::DropTail { limit: None }),
        (5u32..=1000).prop_map(|n| QueueDecl::DropTail {
            limit: Some(QueueLimit::Packets(n))
        }),
        any::<bool>().prop_map(|ecn| QueueDecl::CoDel {
            limit: None,
            target: None,
            interval: None,
            ecn
        }),
        (30u32..=1000).prop_map(|n| QueueDecl::Red {
            limit: Some(QueueLimit::Packets(n)),
            min_th: None,
            max_th: None,
            max_p: None,
            weight: None,
            gentle: None,
            ecn: false,
            avpkt: None,
        }),
    ];
    let loss = prop_oneof![
        Just(LossDecl::None),
        probability(0.1).prop_map(LossDecl::Bernoulli),
        (probability(0.05), 0.1f64..=1.0).prop_map(|(p, r)| LossDecl::GilbertElliott {
            p,
            r: Probability::new(r).unwrap_or(Probability::ONE),
            loss_good: None,
            loss_bad: None,
        }),
    ];
    let reorder = prop::option::of(
        (probability(0.02), duration_ms(10))
            .prop_map(|(probability, delay)| ReorderDecl { probability, delay }),
    );
    (
        rate(),
        duration_ms(50),
        duration_ms(5),
        queue,
        loss,
        prop::option::of(probability(0.02)),
        reorder,
        prop::option::of(probability(0.02)),
    )
        .prop_map(
            |(rate, delay, jitter, queue, loss, duplicate, reorder, corrupt)| Impairment {
                rate,
                delay,
                jitter,
                queue,
                loss,
                duplicate,
                reorder,
                corrupt,
            },
        )
}

/// How `"client"` reaches `"server"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One link.
    Direct,
    /// Through 1 to 3 routers in a row.
    Chain(usize),
    /// Through a diamond of four routers: two equal-cost paths (ECMP).
    Diamond,
    /// Both on one switch (one broadcast domain, ARP).
    Lan,
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Direct),
        (1usize..=3).prop_map(Shape::Chain),
        Just(Shape::Diamond),
        Just(Shape::Lan),
    ]
}

fn clean_link(a: &str, b: &str) -> LinkDecl {
    // The file format's defaults, by construction.
    crate::parse_ron("link", &format!("Link(a: {a:?}, b: {b:?})"))
        .unwrap_or_else(|_| unreachable!())
}

/// A scenario of `shape` with clean 1 Gb/s links and no apps, lasting `duration`. Routes
/// are automatic and reconverge 200 ms after a fault.
pub fn scenario_of(shape: Shape, duration: Duration) -> Scenario {
    let mut nodes: Vec<(String, NodeDecl)> =
        vec![("client".into(), NodeDecl::Host(L3Decl::default()))];
    let mut links = Vec::new();
    let mut chain = |names: &[String]| {
        for w in names.windows(2) {
            links.push(clean_link(&w[0], &w[1]));
        }
    };
    match shape {
        Shape::Direct => chain(&["client".into(), "server".into()]),
        Shape::Chain(n) => {
            let mut names = vec!["client".to_string()];
            for i in 1..=n {
                names.push(format!("r{i}"));
                nodes.push((format!("r{i}"), NodeDecl::Router(L3Decl::default())));
            }
            names.push("server".into());
            chain(&names);
        }
        Shape::Diamond => {
            for i in 1..=4 {
                nodes.push((format!("r{i}"), NodeDecl::Router(L3Decl::default())));
            }
            for (a, b) in [
                ("client", "r1"),
                ("r1", "r2"),
                ("r1", "r3"),
                ("r2", "r4"),
                ("r3", "r4"),
                ("r4", "server"),
            ] {
                links.push(clean_link(a, b));
            }
        }
        Shape::Lan => {
            nodes.push(("sw".into(), NodeDecl::Switch(SwitchDecl::default())));
            chain(&["client".into(), "sw".into(), "server".into()]);
        }
    }
    nodes.push(("server".into(), NodeDecl::Host(L3Decl::default())));
    Scenario {
        name: "generated".into(),
        duration,
        seed: 1,
        sysctl: NamedMap::default(),
        nodes: NamedMap(nodes),
        groups: Vec::new(),
        links,
        routing: Routing::Auto {
            ecmp: Ecmp::PerFlow,
            reconverge: Some(Duration::from_nanos(200 * MS)),
        },
        apps: Vec::new(),
        faults: Vec::new(),
        record: Record::default(),
        zones: NamedMap::default(),
        generated: Default::default(),
    }
}

/// Small topologies between `"client"` and `"server"` ([`Shape`]), clean links, no apps.
/// Shrinks towards a direct link.
pub fn topology(duration: Duration) -> impl Strategy<Value = Scenario> {
    shape().prop_map(move |s| scenario_of(s, duration))
}

/// Up to three faults within `duration`: a link of `links` going down (for up to 2 s), or
/// a node of `nodes` crashing (and restarting after up to 2 s). Shrinks towards no fault.
pub fn faults(
    links: Vec<String>,
    nodes: Vec<String>,
    duration: Duration,
) -> impl Strategy<Value = Vec<FaultDecl>> {
    let end_ms = (duration.as_nanos() / MS).max(1);
    let mut kinds: Vec<BoxedStrategy<FaultDecl>> = Vec::new();
    if !links.is_empty() {
        kinds.push(
            (prop::sample::select(links), 0..end_ms, 1u64..=2000)
                .prop_map(|(link, at, for_)| FaultDecl::LinkDown {
                    link,
                    at: Duration::from_nanos(at * MS),
                    for_: Some(Duration::from_nanos(for_ * MS)),
                })
                .boxed(),
        );
    }
    if !nodes.is_empty() {
        kinds.push(
            (prop::sample::select(nodes), 0..end_ms, 1u64..=2000)
                .prop_map(|(node, at, for_)| FaultDecl::NodeCrash {
                    node,
                    at: Duration::from_nanos(at * MS),
                    for_: Some(Duration::from_nanos(for_ * MS)),
                })
                .boxed(),
        );
    }
    if kinds.is_empty() {
        return Just(Vec::new()).boxed();
    }
    prop::collection::vec(prop::strategy::Union::new(kinds), 0..=3).boxed()
}

/// A random network for `duration`: a [`topology`], an [`impairment`] on every link and
/// [`faults`] on its links and routers or switch. No apps: add yours.
pub fn network(duration: Duration) -> impl Strategy<Value = Scenario> {
    shape().prop_flat_map(move |shape| {
        let base = scenario_of(shape, duration);
        let links: Vec<String> = (0..base.links.len())
            .map(|i| crate::load::link_name(&base, i))
            .collect();
        let middle: Vec<String> = base
            .nodes
            .0
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| n != "client" && n != "server")
            .collect();
        let n = base.links.len();
        (
            Just(base),
            prop::collection::vec(impairment(), n..=n),
            faults(links, middle, duration),
        )
            .prop_map(|(mut s, imps, faults)| {
                for (link, imp) in s.links.iter_mut().zip(&imps) {
                    imp.apply(link);
                }
                s.faults = faults;
                s
            })
    })
}

/// Loads and runs a scenario (its own seed, no output files), for use in properties.
/// Errors are messages: a generated scenario that does not load is a bug in the strategy
/// or in the property's changes.
pub fn run(s: &Scenario) -> Result<Outcome, String> {
    let l = Loaded::from_scenario("generated.ron", s).map_err(|e| e.to_string())?;
    crate::run(&l, &RunOptions::default()).map_err(|e| e.to_string())
}

/// A property that failed, reduced to a minimal scenario.
#[derive(Debug)]
pub struct Failure {
    pub property: String,
    /// Why the minimal scenario fails the property.
    pub reason: String,
    /// The minimal failing scenario (none if the run was aborted, e.g. because too many
    /// generated cases were rejected).
    pub scenario: Option<Box<Scenario>>,
    /// Where it was saved, if it could be.
    pub saved: Option<PathBuf>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "property {} failed: {}", self.property, self.reason)?;
        match (&self.saved, &self.scenario) {
            (Some(p), _) => write!(
                f,
                "\nminimal failing scenario saved; replay it with: netdes run {}",
                p.display()
            ),
            (None, Some(s)) => write!(f, "\nminimal failing scenario:\n{}", s.to_ron()),
            (None, None) => Ok(()),
        }
    }
}

/// Runs a property over generated scenarios and saves the minimal counterexample.
///
/// Deterministic: the same strategy and property always try the same scenarios, so a
/// failure reproduces. On failure, proptest shrinks the scenario and [`Check::run`] writes
/// the smallest one that still fails to `<dir>/<name>.ron` (default
/// `target/netdes-failures`), with the reason in a comment at the top.
#[derive(Clone, Debug)]
pub struct Check {
    name: String,
    cases: u32,
    dir: PathBuf,
    seed: u64,
    shrink_iters: u32,
}

impl Check {
    pub fn new(name: &str) -> Check {
        Check {
            name: name.to_string(),
            cases: 64,
            dir: PathBuf::from("target/netdes-failures"),
            seed: 0,
            shrink_iters: 4096,
        }
    }
    /// Most simplification steps tried while shrinking (default 4096; each runs the
    /// property once).
    pub fn shrink_iters(mut self, n: u32) -> Check {
        self.shrink_iters = n;
        self
    }
    /// Scenarios to try (default 64).
    pub fn cases(mut self, n: u32) -> Check {
        self.cases = n;
        self
    }
    /// Where a minimal failing scenario is saved.
    pub fn save_to(mut self, dir: &Path) -> Check {
        self.dir = dir.to_path_buf();
        self
    }
    /// Another deterministic sequence of scenarios.
    pub fn seed(mut self, seed: u64) -> Check {
        self.seed = seed;
        self
    }

    pub fn run<S>(
        &self,
        strategy: S,
        property: impl Fn(&Scenario) -> Result<(), String>,
    ) -> Result<(), Failure>
    where
        S: Strategy<Value = Scenario>,
    {
        let config = Config {
            cases: self.cases,
            max_shrink_iters: self.shrink_iters,
            failure_persistence: None,
            ..Config::default()
        };
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&self.seed.to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let (reason, scenario) =
            match runner.run(&strategy, |s| property(&s).map_err(TestCaseError::fail)) {
                Ok(()) => return Ok(()),
                Err(TestError::Fail(reason, s)) => (reason.message().to_string(), s),
                Err(TestError::Abort(reason)) => {
                    return Err(Failure {
                        property: self.name.clone(),
                        reason: format!("aborted: {}", reason.message()),
                        scenario: None,
                        saved: None,
                    })
                }
            };
        let mut scenario = scenario;
        scenario.name = self.name.clone();
        let mut text = String::new();
        for line in format!(
            "Minimal failing scenario for property {}: {reason}",
            self.name
        )
        .lines()
        {
            text.push_str("// ");
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&scenario.to_ron());
        let path = self.dir.join(format!("{}.ron", self.name));
        let saved = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&path, text))
            .ok()
            .map(|()| path);
        Err(Failure {
            property: self.name.clone(),
            reason,
            scenario: Some(Box::new(scenario)),
            saved,
        })
    }
}

//! Scenario files: the RON schema, loading with located errors, building the simulated
//! network, and running it. This crate is also netdes's library API: load or build a
//! scenario, run it and read its results from your own programs and tests.
//!
//! # Using netdes from Rust
//!
//! Load a scenario from a file ([`load_file`]) or from text ([`load_str`]), with the same
//! `--set` overrides and the same located errors as the command line; [`run`] it with
//! [`RunOptions`] (a seed, bounds, an output directory or none); read the
//! [`reports::Summary`] of the [`Outcome`]: flows, links, nodes, the trace digest.
//!
//! ```
//! use scenarios::{load_str, run, Loaded, RunOptions};
//!
//! let loaded = load_str(
//!     "two-hosts.ron",
//!     r#"Scenario(
//!         name: "demo",
//!         duration: "5s",
//!         nodes: { "a": Host(), "b": Host() },
//!         links: [Link(a: "a", b: "b", rate: "10Mbps", delay: "5ms")],
//!         apps: [Ping(from: "a", to: "b", count: 3)],
//!     )"#,
//!     &["links[0].delay=20ms".to_string()], // like --set
//! )?;
//! let outcome = run(&loaded, &RunOptions { seed: Some(7), ..Default::default() })?;
//! let ping = outcome.flow("ping-0").expect("one flow per ping app");
//! assert_eq!(ping.rx_packets, 3);
//! // 20 ms each way plus two 98-byte frames at 10 Mb/s: 40.1568 ms.
//! assert_eq!(ping.rtt_ms.map(|r| r.min), Some(40.1568));
//!
//! // A scenario is plain Rust values: change it in code, load it again, run it.
//! let mut faster = loaded.scenario.clone();
//! faster.links[0].delay = scenarios::units::Duration::from_nanos(1_000_000);
//! let faster = Loaded::from_scenario("faster.ron", &faster)?;
//! let outcome = run(&faster, &RunOptions::default())?;
//! assert!(outcome.flow("ping-0").unwrap().rtt_ms.unwrap().min < 3.0);
//! // Any scenario writes back to a RON file that `netdes run` takes.
//! assert!(faster.scenario.to_ron().contains(r#"delay: "1ms""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Parts of a scenario can be written in RON where that is shorter than Rust:
//! [`parse_ron`]`::<schema::AppDecl>("TcpBulk(from: ...)")`. Runs are deterministic: the
//! same scenario and seed give the same [`reports::Summary::trace_digest`].
//!
//! With the cargo feature `proptest`, [`testing`] has proptest strategies for random
//! networks (topologies, link impairments, fault schedules) and [`testing::Check`], which
//! shrinks a failing property to a minimal scenario saved as a RON file.
//!
//! # Modules
//!
//! - [`units`]: values written with units ("100Mbps", "20ms", "10.0.1.0/24").
//! - [`locate`]: maps a value path (`links[2].delay`) to a file position, and edits values
//!   for `--set`.
//! - [`schema`]: the file format as Rust types (reference: `docs/scenario-reference.md`).
//! - [`load`]: parse, apply overrides, validate; every error has file:line:col.
//! - [`build`]: scenario -> `sim_core::world::World` with `protocols` stacks; [`check`]
//!   makes the same checks without running (`netdes check`).
//! - [`run`]: run with bounds and write `summary.json`, `trace.jsonl` and pcaps.
//! - [`api`]: scenarios to and from RON text, results by flow and link.
//! - [`catalog`]: the apps, congestion controllers, queues and loss models (`netdes list`).
//! - [`sweep`]: parameter sweeps (axes, seeds, parallel runs, resume, shards, merge).
//! - `testing` (feature `proptest`): strategies and minimal failing scenarios.
//! - [`dumbbell`]: generates the classic N-flow dumbbell experiment as a scenario.
//! - [`groups`]: host groups (many hosts on switched LANs from one declaration), expanded
//!   into nodes and links at load time.
//! - [`fabric`]: k-ary fat-trees (`FatTree` groups), expanded into nodes and links at load
//!   time and routed in closed form.
//! - [`gossip`]: the `Gossip` app's members, validation, shared group and summary.
//!
//! Architecture invariant: all knowledge of the file format stops here; sim-core and
//! protocols are configured through plain Rust values.

pub mod api;
pub mod build;
pub mod catalog;
pub mod dumbbell;
pub mod fabric;
pub mod gossip;
pub mod groups;
pub mod load;
pub mod locate;
pub mod run;
pub mod schema;
pub mod sweep;
#[cfg(feature = "proptest")]
pub mod testing;
pub mod units;

pub use api::parse_ron;
pub use build::check;
pub use load::{load_file, load_str, Loaded, ScenarioError};
pub use run::{run, Outcome, RunError, RunOptions};

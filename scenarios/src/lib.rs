//! Scenario files: the RON schema, loading with located errors, building the simulated
//! network, and running it.
//!
//! - [`units`]: values written with units ("100Mbps", "20ms", "10.0.1.0/24").
//! - [`locate`]: maps a value path (`links[2].delay`) to a file position, and edits values
//!   for `--set`.
//! - [`schema`]: the file format as Rust types (reference: `docs/scenario-reference.md`).
//! - [`load`]: parse, apply overrides, validate; every error has file:line:col.
//! - [`build`]: scenario -> `sim_core::world::World` with `protocols` stacks; [`check`]
//!   makes the same checks without running (`netdes check`).
//! - [`run`]: run with bounds and write `summary.json`, `trace.jsonl` and pcaps.
//! - [`sweep`]: parameter sweeps (axes, seeds, parallel runs, resume, shards, merge).
//! - [`dumbbell`]: generates the classic N-flow dumbbell experiment as a scenario.
//!
//! Architecture invariant: all knowledge of the file format stops here; sim-core and
//! protocols are configured through plain Rust values.

pub mod build;
pub mod dumbbell;
pub mod load;
pub mod locate;
pub mod run;
pub mod schema;
pub mod sweep;
pub mod units;

pub use build::check;
pub use load::{load_file, load_str, Loaded, ScenarioError};
pub use run::{run, Outcome, RunError, RunOptions};

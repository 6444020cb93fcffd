//! Prints the headline speed figures in one quick run (a few seconds), as plain numbers:
//! scheduler events per second (hold model, plain and cancellable timers, N = 1k and 100k
//! pending events) and packet-hops per second through a whole world (host - 8 routers -
//! host). The workloads are the ones the criterion benches measure (`benches/common`).
//!
//! Run: `cargo run --release -p sim-core --example throughput [SECONDS] [scheduler|forwarding]`
//! (SECONDS per figure, default 1; the second argument picks one group, for profiling).

#[path = "../benches/common/mod.rs"]
mod common;

use common::{ForwardingModel, HoldModel, TimerModel};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Calls `step` (which does some units of work and returns how many) until `secs` have
/// passed; returns units per second.
fn rate(secs: f64, mut step: impl FnMut() -> u64) -> f64 {
    let start = Instant::now();
    let limit = Duration::from_secs_f64(secs);
    let mut units = 0u64;
    while start.elapsed() < limit {
        units += step();
    }
    units as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let only = std::env::args().nth(2);
    let want = |group: &str| only.as_deref().is_none_or(|o| o == group);
    const STEPS: u64 = 10_000;
    for n in [1_000usize, 100_000] {
        if !want("scheduler") {
            break;
        }
        let mut m = HoldModel::new(n);
        m.run(n as u64 * 4);
        let r = rate(secs, || {
            black_box(m.run(STEPS));
            STEPS
        });
        println!(
            "scheduler hold         N={n:<7} {:>8.2} M events/s",
            r / 1e6
        );
        let mut m = TimerModel::new(n);
        m.run(n as u64 * 4);
        let r = rate(secs, || {
            black_box(m.run(STEPS));
            STEPS
        });
        println!(
            "scheduler timer_cancel N={n:<7} {:>8.2} M events/s",
            r / 1e6
        );
    }
    if !want("forwarding") {
        return;
    }
    let mut m = ForwardingModel::new();
    let events_before = m.world.events();
    let start = Instant::now();
    let hops = rate(secs, || m.run_events(100_000));
    let events = (m.world.events() - events_before) as f64 / start.elapsed().as_secs_f64();
    println!(
        "forwarding chain of {} routers: {:>8.2} M packet-hops/s ({:.2} M world events/s)",
        common::ROUTERS,
        hops / 1e6,
        events / 1e6
    );
}

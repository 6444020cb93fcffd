//! Scheduler throughput in a steady-state hold model: a queue of N pending events; each
//! step pops the earliest and schedules one more at now + a pseudo-random delay.
//! `hold/*` uses plain events, `timer_cancel/*` cancellable timers (two set, one cancelled
//! per step). Throughput is in events (steps) per second.
//!
//! Run: `cargo bench -p sim-core --bench scheduler`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

mod common;
use common::{HoldModel, TimerModel};

const STEPS: u64 = 10_000;

fn scheduler(c: &mut Criterion) {
    let mut g = c.benchmark_group("scheduler");
    g.throughput(Throughput::Elements(STEPS));
    for n in [1_000usize, 100_000] {
        let mut m = HoldModel::new(n);
        m.run(n as u64 * 4); // reach the steady-state distribution of pending times
        g.bench_with_input(BenchmarkId::new("hold", n), &n, |b, _| {
            b.iter(|| black_box(m.run(STEPS)))
        });
        let mut m = TimerModel::new(n);
        m.run(n as u64 * 4);
        g.bench_with_input(BenchmarkId::new("timer_cancel", n), &n, |b, _| {
            b.iter(|| black_box(m.run(STEPS)))
        });
    }
    g.finish();
}

criterion_group!(benches, scheduler);
criterion_main!(benches);

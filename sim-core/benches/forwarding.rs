//! Packet forwarding through a whole `World`: host - 8 routers - host over 10 Gb/s links,
//! a source sending 1000-byte UDP datagrams at line rate. Throughput is in packet-hops
//! (frames started on a link) per second; each iteration runs `EVENTS` scheduler events,
//! which make about `EVENTS / 2.1` packet-hops (a hop is a TxDone and an Arrive, plus one
//! source timer per datagram of 9 hops). The frames queued while each hop resolved ARP
//! stay as a standing queue of about a dozen frames per link (frames arrive exactly as fast
//! as they leave), so every frame waits and every hop needs its TxDone.
//!
//! Run: `cargo bench -p sim-core --bench forwarding`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

mod common;
use common::ForwardingModel;

const EVENTS: u64 = 100_000;

fn forwarding(c: &mut Criterion) {
    let mut m = ForwardingModel::new();
    // Packet-hops per EVENTS events are constant in steady state; measure them once.
    let hops = m.run_events(EVENTS);
    let mut g = c.benchmark_group("forwarding");
    g.throughput(Throughput::Elements(hops));
    g.bench_function("chain8_packet_hops", |b| {
        b.iter(|| black_box(m.run_events(EVENTS)))
    });
    g.finish();
}

criterion_group!(benches, forwarding);
criterion_main!(benches);

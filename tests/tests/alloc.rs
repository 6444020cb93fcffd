//! The event loop does no heap allocation per event in steady state (ARCHITECTURE.md, "No
//! allocation per event").
//!
//! This test binary installs a counting global allocator. It builds example scenarios
//! through the library (trace recording and captures off, as `scenarios::run` does without
//! an output directory), runs a warm-up that boots the nodes, resolves ARP and lets every
//! queue, slab and bucket reach its working size, and then counts the allocations made by
//! the next 100 000 events. That count must be zero. The warm-up count must not be, which
//! shows the counter works.
//!
//! Only allocations made by the test's own thread are counted, so the test harness and
//! other tests cannot disturb the figure. Set `NETDES_ALLOC_BACKTRACE=1` to print a
//! backtrace for each allocation made in the measured window.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

struct Counting;

thread_local! {
    /// Allocations (alloc, alloc_zeroed, realloc) made by this thread while counting.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Print a backtrace for each counted allocation (debug aid).
    static TRACE: Cell<bool> = const { Cell::new(false) };
}

fn note_alloc() {
    // `try_with`: the allocator may run while thread-locals are being torn down.
    let counting = COUNTING.try_with(|c| c.get()).unwrap_or(false);
    if !counting {
        return;
    }
    let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
    if TRACE.try_with(|t| t.get()).unwrap_or(false) {
        // Capturing a backtrace allocates: stop counting while doing it.
        COUNTING.with(|c| c.set(false));
        eprintln!(
            "allocation in the measured window:\n{}",
            std::backtrace::Backtrace::force_capture()
        );
        COUNTING.with(|c| c.set(true));
    }
}

// SAFETY: every call is forwarded to `System` unchanged; the wrapper only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn count_allocs<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = ALLOCS.with(|n| n.get());
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (ALLOCS.with(|n| n.get()) - before, r)
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/examples/{name}.ron"))
}

/// Events in the measured window.
const WINDOW: u64 = 100_000;

/// Builds example `name`, runs `warmup` events, then counts the allocations of the next
/// [`WINDOW`] events. Returns (warm-up allocations, window allocations).
fn allocations(name: &str, warmup: u64) -> (u64, u64) {
    let loaded = scenarios::load_file(&example(name), &[]).expect("example loads");
    allocations_of(name, &loaded, warmup)
}

fn allocations_of(name: &str, loaded: &scenarios::Loaded, warmup: u64) -> (u64, u64) {
    let mut built = scenarios::build::build(loaded, loaded.scenario.seed).expect("builds");
    let w = &mut built.world;
    // Run past the scenario's own end so that the window can be as long as we like; the
    // apps keep sending until then. (`end` is a `SimTime`: set through its public field.)
    let mut end = w.now();
    end.0 = u64::MAX;
    let (warm, _) = count_allocs(|| {
        w.start();
        w.run(end, Some(warmup), || false)
    });
    assert_eq!(w.events(), warmup, "{name}: the warm-up ran dry");
    TRACE.with(|t| t.set(std::env::var_os("NETDES_ALLOC_BACKTRACE").is_some()));
    let (window, _) = count_allocs(|| w.run(end, Some(warmup + WINDOW), || false));
    TRACE.with(|t| t.set(false));
    assert_eq!(w.events(), warmup + WINDOW, "{name}: the window ran dry");
    eprintln!(
        "{name}: {warm} allocations in {warmup} warm-up events, {window} in the next {WINDOW}"
    );
    (warm, window)
}

#[test]
fn the_counter_counts() {
    let (n, v) = count_allocs(|| vec![1u8; 10]);
    assert_eq!(n, 1);
    drop(v);
    let (n, _) = count_allocs(|| ());
    assert_eq!(n, 0);
}

/// Lossy links (Bernoulli and Gilbert-Elliott), two CBR flows, a UDP sink and an echo
/// server: loss draws, jitter-free delivery, sink bookkeeping and echo replies.
#[test]
fn lossy_udp_cbr_steady_state_does_not_allocate() {
    let (warm, window) = allocations("lossy-udp-cbr", 30_000);
    assert!(
        warm > 0,
        "the warm-up (boot, ARP) must allocate: is the counter on?"
    );
    assert_eq!(window, 0, "allocations in {WINDOW} steady-state events");
}

/// Four routers with ECMP and eight CBR flows into one sink: forwarding, route lookups and
/// the per-flow hash on every hop.
#[test]
fn ecmp_diamond_steady_state_does_not_allocate() {
    let (warm, window) = allocations("ecmp-diamond", 100_000);
    assert!(
        warm > 0,
        "the warm-up (boot, ARP) must allocate: is the counter on?"
    );
    assert_eq!(window, 0, "allocations in {WINDOW} steady-state events");
}

/// Overloaded CoDel and RED bottlenecks with ECN: ECT(0) and Not-ECT CBR flows, so both
/// disciplines mark, drop early (RED at enqueue, CoDel at dequeue) and hit their hard
/// limits.
#[test]
fn aqm_steady_state_does_not_allocate() {
    let source = r#"Scenario(
        name: "aqm-steady",
        duration: "10s",
        nodes: { "a": Host(), "r": Router(), "b": Host(), "c": Host() },
        links: [
            Link(a: "a", b: "r", rate: "1Gbps", delay: "1ms"),
            Link(a: "r", b: "b", rate: "10Mbps", delay: "5ms",
                 queue: CoDel(limit: "100 packets", ecn: true)),
            Link(a: "r", b: "c", rate: "10Mbps", delay: "5ms",
                 queue: Red(limit: "100 packets", min_th: "10p", max_th: "30p", ecn: true)),
        ],
        apps: [
            UdpSink(on: "b", port: 9000),
            UdpSink(on: "c", port: 9000),
            UdpCbr(name: "b-ect", from: "a", to: "b:9000", rate: "8Mbps", size: 1000, tos: 2),
            UdpCbr(name: "b-plain", from: "a", to: "b:9000", rate: "6Mbps", size: 1000),
            UdpCbr(name: "c-ect", from: "a", to: "c:9000", rate: "8Mbps", size: 1000, tos: 2),
            UdpCbr(name: "c-plain", from: "a", to: "c:9000", rate: "6Mbps", size: 1000),
        ],
    )"#;
    let loaded = scenarios::load_str("aqm-steady.ron", source, &[]).expect("loads");
    let (warm, window) = allocations_of("aqm-steady", &loaded, 100_000);
    assert!(
        warm > 0,
        "the warm-up (boot, ARP) must allocate: is the counter on?"
    );
    assert_eq!(window, 0, "allocations in {WINDOW} steady-state events");
}

/// A long fat pipe: some 6 000 datagrams in flight at once, waiting in the scheduler's
/// link lanes.
#[test]
fn long_fat_pipe_steady_state_does_not_allocate() {
    let source = r#"Scenario(
        name: "long-fat-pipe",
        duration: "10s",
        nodes: { "a": Host(), "r": Router(), "b": Host() },
        links: [
            Link(a: "a", b: "r", rate: "10Gbps", delay: "25ms"),
            Link(a: "r", b: "b", rate: "10Gbps", delay: "25ms"),
        ],
        apps: [
            UdpSink(on: "b", port: 9000),
            UdpCbr(name: "bulk", from: "a", to: "b:9000", rate: "1Gbps", size: 1000),
        ],
    )"#;
    let loaded = scenarios::load_str("long-fat-pipe.ron", source, &[]).expect("loads");
    let (warm, window) = allocations_of("long-fat-pipe", &loaded, 200_000);
    assert!(
        warm > 0,
        "the warm-up (boot, ARP) must allocate: is the counter on?"
    );
    assert_eq!(window, 0, "allocations in {WINDOW} steady-state events");
}

/// The scheduler as a radix heap: 20 000 pending timers, more entries than its binary
/// heap takes. Each step pops one, sets two and cancels one, so the queue also carries
/// cancelled entries until they surface.
#[test]
fn radix_heap_scheduler_steady_state_does_not_allocate() {
    use sim_core::sched::Scheduler;
    use sim_core::time::SimTime;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % 1_000_000
    };
    let mut s: Scheduler<u64> = Scheduler::new();
    for i in 0..20_000 {
        s.schedule_timer(SimTime(rnd()), i);
    }
    let mut last = None;
    let mut steps = |s: &mut Scheduler<u64>, n: u64| {
        for _ in 0..n {
            let (t, e) = s.pop().expect("timers pending");
            s.schedule_timer(SimTime(t.0 + 1 + rnd()), e);
            let h = s.schedule_timer(SimTime(t.0 + 1 + rnd()), e);
            if let Some(old) = last.replace(h) {
                s.cancel(old);
            }
        }
    };
    let (warm, _) = count_allocs(|| steps(&mut s, 200_000));
    assert!(warm > 0, "the warm-up must allocate: is the counter on?");
    let (window, _) = count_allocs(|| steps(&mut s, WINDOW));
    eprintln!("radix heap: {warm} allocations in the warm-up, {window} in the next {WINDOW}");
    assert_eq!(window, 0, "allocations in {WINDOW} steady-state steps");
    assert!(s.live_timers() >= 20_000);
}

/// A TCP bulk transfer over a lossy bottleneck: segments, ACKs, SACK scoreboard,
/// recovery, retransmission timers and the sink's pattern check.
#[test]
fn tcp_bulk_steady_state_does_not_allocate() {
    let source = r#"Scenario(
        name: "tcp-steady",
        duration: "60s",
        nodes: { "a": Host(), "r": Router(), "b": Host() },
        links: [
            Link(a: "a", b: "r", rate: "1Gbps", delay: "1ms"),
            Link(a: "r", b: "b", rate: "100Mbps", delay: "10ms", loss: Bernoulli("0.1%"),
                 queue: DropTail(limit: "200 packets")),
        ],
        apps: [
            TcpSink(on: "b", port: 5001),
            TcpBulk(name: "bulk", from: "a", to: "b:5001", bytes: "10GB"),
        ],
    )"#;
    let loaded = scenarios::load_str("tcp-steady.ron", source, &[]).expect("loads");
    // 400 000 events take the flow about 60 s in, so the window holds the ARP entries'
    // turn to stale and their unicast re-confirmation 5 s later.
    let (warm, window) = allocations_of("tcp-steady", &loaded, 400_000);
    assert!(warm > 0, "the warm-up must allocate: is the counter on?");
    assert_eq!(window, 0, "allocations in {WINDOW} steady-state events");
}

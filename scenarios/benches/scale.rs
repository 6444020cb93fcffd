//! Scale: a k-ary fat-tree of k^3/4 hosts (`scenarios/examples/large/fat-tree-k74.ron`,
//! with `groups[0].k` set) loaded, built with its routes, and run with one gossip rumor
//! spreading over every host.
//!
//! `cargo bench -p scenarios --bench scale [-- K...]` (default K: 16 32 48 74) runs each
//! k in a process of its own, so that each peak memory figure is that k's alone, and
//! prints one row per k:
//!
//! - `load`: parse, expand the fabric into nodes and links, validate;
//! - `build`: address plan, routes, the world (nodes, stacks' configurations, links);
//! - `routes`: of which computing every node's routes (timed again on its own);
//! - `run`: the simulated run (boot, ARP, gossip) and its events;
//! - `heap`: the most heap in use at once (a counting allocator), and `VmHWM`, the peak
//!   resident set the kernel reports in /proc/self/status;
//! - the gossip results (informed hosts, residue, messages) and how the messages'
//!   frames spread over the core routers (ECMP).
//!
//! With `--generic` it also times shortest-path routing over every segment
//! (`sim_core::topology::auto_routes`, what any other topology gets) for k <= 24, to show
//! why the fabric's routes are computed in closed form. See BENCHMARKS.md, "Scale".

use scenarios::{load_str, Loaded};
use sim_core::fattree::{FatNode, FatTree};
use sim_core::time::SimTime;
use sim_core::world::NodeId;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts the bytes in use and the most in use at once since the last [`reset_peak`].
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = IN_USE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; the wrapper only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        IN_USE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new >= l.size() {
            grew(new - l.size());
        } else {
            IN_USE.fetch_sub(l.size() - new, Ordering::Relaxed);
        }
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The peak resident set of this process in MiB (VmHWM), if the kernel reports it.
fn vm_hwm_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

const SCENARIO: &str = include_str!("../examples/large/fat-tree-k74.ron");

fn fail(m: impl std::fmt::Display) -> ! {
    eprintln!("{m}");
    std::process::exit(1);
}

/// CPU time this (single-threaded) process has run, in seconds, from /proc/self/schedstat:
/// on a machine shared with other jobs it is a fairer figure than wall time.
fn cpu_s() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(f64::NAN, |ns| ns as f64 / 1e9)
}

/// `f`'s result, wall seconds and CPU seconds.
fn timed<R>(f: impl FnOnce() -> R) -> (R, f64, f64) {
    let (wall, cpu) = (Instant::now(), cpu_s());
    let r = f();
    (r, wall.elapsed().as_secs_f64(), cpu_s() - cpu)
}

/// Runs one k and prints its figures as `key=value` words on one line.
fn one(k: u32, generic: bool) {
    let set = [format!("groups[0].k={k}")];
    let (loaded, load_s, load_cpu) =
        timed(|| load_str("fat-tree-k74.ron", SCENARIO, &set).unwrap_or_else(|e| fail(e)));
    let loaded: Loaded = loaded;
    let load_peak = PEAK.load(Ordering::Relaxed);

    // The routes alone, as build computes them (then dropped).
    let fabric = FatTree::new(k).unwrap_or_else(|e| fail(e));
    let (entries, routes_s, routes_cpu) = timed(|| {
        let routes = fabric.auto_routes();
        routes.iter().flatten().map(|r| r.len()).sum::<usize>()
    });
    let generic_s = (generic && k <= 24).then(|| generic_routes(&fabric));

    let (built, build_s, build_cpu) = timed(|| {
        scenarios::build::build(&loaded, loaded.scenario.seed).unwrap_or_else(|e| fail(e))
    });
    let mut built = built;
    let build_peak = PEAK.load(Ordering::Relaxed);

    let end = SimTime::from_nanos(loaded.scenario.duration.as_nanos());
    let ((), run_s, run_cpu) = timed(|| {
        let w = &mut built.world;
        w.start();
        w.run(end, None, || false);
        for g in &built.gossip {
            g.group.log.borrow_mut().end_run();
        }
        w.finish();
    });
    let peak = PEAK.load(Ordering::Relaxed);
    let w = &built.world;

    let g = scenarios::gossip::summary(&built.gossip[0], end);
    let rumor = &g.rumors[0];
    // Frames the core routers received: how evenly ECMP spread the messages.
    let h = k / 2;
    let core_frames: Vec<u64> = (0..fabric.core_count() as u32)
        .map(|c| {
            let core = FatNode::Core {
                column: c / h,
                core: c % h,
            };
            w.counters(NodeId(fabric.index(core) as u32)).rx_frames
        })
        .collect();
    let used = core_frames.iter().filter(|&&f| f > 0).count();
    let min = core_frames.iter().min().copied().unwrap_or(0);
    let max = core_frames.iter().max().copied().unwrap_or(0);
    let mean = core_frames.iter().sum::<u64>() as f64 / core_frames.len().max(1) as f64;
    println!(
        "k={k} hosts={} routers={} links={} load_s={load_s:.2} load_cpu={load_cpu:.2} \
         build_s={build_s:.2} build_cpu={build_cpu:.2} routes_s={routes_s:.3} \
         routes_cpu={routes_cpu:.3} route_entries={entries} generic_s={} run_s={run_s:.2} \
         run_cpu={run_cpu:.2} events={events} load_heap_mib={:.0} build_heap_mib={:.0} \
         heap_mib={:.0} vmhwm_mib={:.0} members={} informed={} residue={:.4} messages={} \
         cores_used={used} core_frames_min={min} core_frames_mean={mean:.0} \
         core_frames_max={max} digest={}",
        fabric.host_count(),
        fabric.router_count(),
        fabric.link_count(),
        generic_s.map_or("-".to_string(), |s| format!("{s:.3}")),
        mib(load_peak),
        mib(build_peak),
        mib(peak),
        vm_hwm_mib().unwrap_or(f64::NAN),
        g.members,
        rumor.informed,
        rumor.residue,
        g.messages.sent,
        w.trace_digest(),
        events = w.events(),
    );
}

/// Shortest-path routing over every segment of the same fabric, timed.
fn generic_routes(t: &FatTree) -> f64 {
    use sim_core::topology::{auto_routes, plan_addresses, TopoLink, TopoNode};
    let nodes: Vec<TopoNode> = (0..t.node_count())
        .map(|i| TopoNode {
            name: i.to_string(),
            kind: t.node(i).kind(),
            dynamic_address: false,
        })
        .collect();
    let links: Vec<TopoLink> = t
        .links()
        .map(|l| TopoLink {
            a: t.index(l.a),
            b: t.index(l.b),
            subnet: Some(l.subnet),
            a_addr: Some((l.a_addr(), 31)),
            b_addr: Some((l.b_addr(), 31)),
        })
        .collect();
    let plan = plan_addresses(&nodes, &links).unwrap_or_else(|e| fail(e));
    let start = Instant::now();
    let r = auto_routes(
        &nodes,
        &plan,
        &vec![true; links.len()],
        &vec![true; nodes.len()],
    );
    let s = start.elapsed().as_secs_f64();
    drop(r);
    s
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let generic = args.iter().any(|a| a == "--generic");
    if let Some(i) = args.iter().position(|a| a == "--one") {
        let k = args
            .get(i + 1)
            .and_then(|k| k.parse().ok())
            .unwrap_or_else(|| fail("--one K"));
        one(k, generic);
        return;
    }
    // `cargo bench` passes `--bench`; the other arguments are the k to run.
    let mut ks: Vec<u32> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if ks.is_empty() {
        ks = vec![16, 32, 48, 74];
    }
    let me = std::env::current_exe().unwrap_or_else(|e| fail(e));
    println!(
        "wall (CPU) seconds; heap: most in use at once; VmHWM: peak resident set; \
         informed: hosts the rumor reached; cores: core routers that carried messages"
    );
    println!(
        "{:>3} {:>7} {:>7} {:>7} | {:>12} {:>12} {:>13} {:>14} {:>9} | {:>5} {:>5} | {:>7} {:>5}",
        "k",
        "hosts",
        "routers",
        "links",
        "load",
        "build",
        "of it routes",
        "run",
        "events",
        "heap",
        "VmHWM",
        "informed",
        "cores"
    );
    for k in ks {
        let mut cmd = std::process::Command::new(&me);
        cmd.args(["--one", &k.to_string()]);
        if generic {
            cmd.arg("--generic");
        }
        let out = cmd.output().unwrap_or_else(|e| fail(e));
        if !out.status.success() {
            fail(format!("k={k}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or("?")
                .to_string()
        };
        let both = |t: &str| {
            format!(
                "{} ({})",
                field(&format!("{t}_s")),
                field(&format!("{t}_cpu"))
            )
        };
        println!(
            "{:>3} {:>7} {:>7} {:>7} | {:>12} {:>12} {:>13} {:>14} {:>9} | {:>5} {:>5} | {:>7} {:>5}",
            k,
            field("hosts"),
            field("routers"),
            field("links"),
            both("load"),
            both("build"),
            both("routes"),
            both("run"),
            field("events"),
            field("heap_mib"),
            field("vmhwm_mib"),
            field("informed"),
            field("cores_used"),
        );
        eprintln!("{line}");
    }
}

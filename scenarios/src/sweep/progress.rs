//! Progress of a running sweep: a bar with rate and ETA on a terminal (indicatif), plain
//! lines for logs (a batch job's output file), or nothing (`--quiet`). Called from the
//! worker threads, so every reporter is `Sync`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reports::sweep::ResultRow;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a sweep tells about its progress.
pub trait Progress: Sync {
    /// `total` runs in this shard, `done` of them already in the results (--resume).
    fn start(&self, _name: &str, _total: u64, _done: u64) {}
    /// A run finished and its row was written.
    fn finished(&self, _row: &ResultRow) {}
    fn end(&self) {}
}

/// Reports nothing.
pub struct Silent;
impl Progress for Silent {}

/// An indicatif bar on stderr: position, rate, ETA and the last point finished.
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new() -> Bar {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} runs  {per_sec}  ETA {eta}  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Bar(bar)
    }
}

impl Default for Bar {
    fn default() -> Self {
        Bar::new()
    }
}

impl Progress for Bar {
    fn start(&self, name: &str, total: u64, done: u64) {
        self.0.set_prefix(name.to_string());
        self.0.set_length(total);
        self.0.set_position(done);
        self.0.reset_eta();
    }
    fn finished(&self, row: &ResultRow) {
        self.0
            .set_message(format!("point {} seed {}", row.point, row.seed));
        self.0.inc(1);
    }
    fn end(&self) {
        self.0.finish_and_clear();
    }
}

/// Lines on stderr, at most one every `every` (and always the last): for logs, where a
/// redrawn bar would be noise.
pub struct Lines {
    every: Duration,
    state: Mutex<LineState>,
}

struct LineState {
    name: String,
    total: u64,
    done: u64,
    ran: u64,
    started: Instant,
    last: Option<Instant>,
}

impl Lines {
    pub fn new(every: Duration) -> Lines {
        Lines {
            every,
            state: Mutex::new(LineState {
                name: String::new(),
                total: 0,
                done: 0,
                ran: 0,
                started: Instant::now(),
                last: None,
            }),
        }
    }
}

/// "1h02m03s", "4m05s", "12s".
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

impl Progress for Lines {
    fn start(&self, name: &str, total: u64, done: u64) {
        let Ok(mut s) = self.state.lock() else { return };
        s.name = name.to_string();
        s.total = total;
        s.done = done;
        s.started = Instant::now();
        let _ = writeln!(
            std::io::stderr().lock(),
            "sweep {name}: {total} runs, {done} already done, {} to run",
            total - done.min(total)
        );
    }
    fn finished(&self, _row: &ResultRow) {
        let Ok(mut s) = self.state.lock() else { return };
        s.done += 1;
        s.ran += 1;
        let now = Instant::now();
        let last_one = s.done >= s.total;
        if !last_one && s.last.is_some_and(|t| now - t < self.every) {
            return;
        }
        s.last = Some(now);
        let elapsed = now - s.started;
        let rate = s.ran as f64 / elapsed.as_secs_f64().max(1e-9);
        let left = s.total.saturating_sub(s.done);
        let eta = Duration::from_secs_f64(left as f64 / rate.max(1e-9));
        let _ = writeln!(
            std::io::stderr().lock(),
            "sweep {}: {}/{} runs done ({:.2} runs/s, elapsed {}, ETA {})",
            s.name,
            s.done,
            s.total,
            rate,
            human(elapsed),
            human(eta)
        );
    }
}

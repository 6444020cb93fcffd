//! Parameter sweeps: many runs of one base scenario, varied along axes and replicated over
//! seeds, run in parallel, written as they finish, resumable, shardable across machines
//! and mergeable.
//!
//! - [`spec`]: the sweep file and its expansion into points.
//! - [`expr`]: constraints over axis values.
//! - [`metric`]: numbers picked from each run's summary.
//! - [`progress`]: the progress bar or lines.
//!
//! Files in the output directory (formats in `reports::sweep`, documented in
//! `docs/output.md`): `sweep.json` (the manifest, written first), `results.jsonl` and
//! `results.csv` (a row appended as each run finishes; rewritten in canonical order, by
//! point and then seed, when the sweep ends), `aggregate.csv` and `report.html`.
//!
//! A finished run is never lost: its row is appended with one write to both files before
//! the next run of that worker starts. `--resume` reads `results.jsonl`, drops a line cut
//! off by a kill, and runs only what is missing. Runs are deterministic and rows carry no
//! wall time, so the final files are the same whatever `--jobs`, the finishing order, or
//! the shards and merge that produced them.

pub mod expr;
pub mod metric;
pub mod progress;
pub mod spec;

pub use progress::Progress;
pub use spec::Sweep;

use crate::load::ScenarioError;
use crate::run::{run, RunError, RunOptions};
use rayon::prelude::*;
use reports::sweep::{Manifest, ResultRow, SweepOutcome};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

/// Which slice of the runs this process does: `--shard K/N` takes the runs whose index in
/// canonical order is K-1 modulo N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn contains(&self, item: usize) -> bool {
        item % self.count as usize == (self.index - 1) as usize
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("invalid shard \"{s}\": expected K/N with 1 <= K <= N, like 2/8");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// How to run a sweep.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    pub out_dir: PathBuf,
    /// Worker threads (default: the machine's available parallelism).
    pub jobs: Option<usize>,
    /// Keep the results already in `out_dir` and run only the missing ones.
    pub resume: bool,
    pub shard: Option<Shard>,
    /// Bounds for every run, as `netdes run` takes them; rows of runs cut short have
    /// `complete: false`.
    pub max_events: Option<u64>,
    pub max_wall_s: Option<f64>,
    /// Write `report.html` at the end.
    pub report: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The sweep file or the base scenario is wrong (exit code 2).
    #[error(transparent)]
    Input(#[from] ScenarioError),
    /// One point's scenario is invalid (exit code 2).
    #[error("{source} (sweep point {point}: {params})")]
    Point {
        point: usize,
        params: String,
        source: ScenarioError,
    },
    /// The command cannot proceed as asked (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Writing results failed, or a run failed (exit code 1).
    #[error("cannot write results to {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
    #[error("run of point {point} seed {seed} failed: {source}")]
    Run {
        point: usize,
        seed: u64,
        source: RunError,
    },
}

impl SweepError {
    /// 2 for input and usage errors, 1 for failures while running or writing.
    pub fn exit_code(&self) -> u8 {
        match self {
            SweepError::Input(_) | SweepError::Point { .. } | SweepError::Usage(_) => 2,
            SweepError::Output { .. } | SweepError::Run { .. } => 1,
        }
    }
}

fn out_err(path: &Path) -> impl FnOnce(std::io::Error) -> SweepError + '_ {
    move |source| SweepError::Output {
        path: path.display().to_string(),
        source,
    }
}

/// Appends rows to `results.jsonl` and `results.csv` as runs finish.
struct Appender {
    jsonl: std::fs::File,
    csv: std::fs::File,
    jsonl_path: PathBuf,
    csv_path: PathBuf,
    rows: Vec<ResultRow>,
}

impl Appender {
    fn append(&mut self, row: ResultRow) -> Result<(), SweepError> {
        // One write per file: a kill leaves at most one cut line, which --resume drops.
        let mut line = row.to_json_line();
        line.push('\n');
        self.jsonl
            .write_all(line.as_bytes())
            .map_err(out_err(&self.jsonl_path))?;
        let mut line = row.to_csv_line();
        line.push('\n');
        self.csv
            .write_all(line.as_bytes())
            .map_err(out_err(&self.csv_path))?;
        self.rows.push(row);
        Ok(())
    }
}

/// Canonical order: by point, then by the seed's position in the sweep's seed list.
fn canonical(rows: &mut Vec<ResultRow>, seeds: &[u64]) {
    let pos = |s: u64| seeds.iter().position(|&x| x == s).unwrap_or(usize::MAX);
    rows.sort_by_key(|r| (r.point, pos(r.seed)));
    rows.dedup_by_key(|r| (r.point, r.seed));
}

/// Runs one (point, seed) and turns its summary into a row.
fn run_one(
    sweep: &Sweep,
    loaded: &crate::Loaded,
    point: usize,
    seed: u64,
    opts: &SweepOptions,
) -> Result<ResultRow, SweepError> {
    let o = run(
        loaded,
        &RunOptions {
            seed: Some(seed),
            out_dir: None,
            trace: false,
            max_events: opts.max_events,
            max_wall_s: opts.max_wall_s,
            ..Default::default()
        },
    )
    .map_err(|source| SweepError::Run {
        point,
        seed,
        source,
    })?;
    let json = serde_json::to_value(&o.summary).unwrap_or_default();
    Ok(ResultRow {
        point: point as u64,
        seed,
        params: sweep.params(point),
        metrics: reports::sweep::Ordered(
            sweep
                .metrics
                .iter()
                .map(|(name, _, m)| (name.clone(), m.eval(&json).filter(|x| x.is_finite())))
                .collect(),
        ),
        complete: o.summary.complete,
        stop_reason: o.summary.stop_reason.clone(),
        trace_digest: o.summary.trace_digest.clone(),
    })
}

/// Reads the rows in `dir/results.jsonl` (none if it does not exist).
fn read_rows(dir: &Path) -> Result<(Vec<ResultRow>, bool), SweepError> {
    let path = dir.join("results.jsonl");
    match std::fs::read_to_string(&path) {
        Ok(text) => reports::sweep::read_results(&text)
            .map_err(|e| SweepError::Usage(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Vec::new(), false)),
        Err(e) => Err(out_err(&path)(e)),
    }
}

/// Writes the final, canonical files (and the report if asked).
fn finish_files(
    dir: &Path,
    manifest: &Manifest,
    rows: &[ResultRow],
    report: bool,
) -> Result<(), SweepError> {
    reports::sweep::write_final(dir, &manifest.param_names(), &manifest.metric_names(), rows)
        .map_err(out_err(dir))?;
    if report {
        let path = dir.join("report.html");
        let html = reports::html::sweep_report(manifest, rows);
        reports::sweep::write_atomically(&path, &html).map_err(out_err(&path))?;
    }
    Ok(())
}

/// Runs `sweep` (or its shard) into `opts.out_dir`.
pub fn run_sweep(
    sweep: &Sweep,
    opts: &SweepOptions,
    progress: &dyn Progress,
) -> Result<SweepOutcome, SweepError> {
    let dir = &opts.out_dir;
    std::fs::create_dir_all(dir).map_err(out_err(dir))?;
    let manifest = sweep.manifest();
    let manifest_text = manifest.to_json();
    let manifest_path = dir.join("sweep.json");
    let mut rows = Vec::new();
    let (existing, _) = read_rows(dir)?;
    if opts.resume {
        match std::fs::read_to_string(&manifest_path) {
            Ok(t) if t == manifest_text => rows = existing,
            Ok(_) => {
                return Err(SweepError::Usage(format!(
                    "{} holds results of a different sweep (the sweep file, its base scenario or the netdes version changed); use another --out",
                    dir.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && existing.is_empty() => {}
            Err(e) => return Err(out_err(&manifest_path)(e)),
        }
    } else if !existing.is_empty() {
        return Err(SweepError::Usage(format!(
            "{} already holds results; add --resume to continue that sweep, or choose another --out",
            dir.display()
        )));
    }
    // Rows that belong to this sweep, deduplicated, in canonical order.
    rows.retain(|r| (r.point as usize) < sweep.points.len() && sweep.seeds.contains(&r.seed));
    canonical(&mut rows, &sweep.seeds);
    reports::sweep::write_atomically(&manifest_path, &manifest_text)
        .map_err(out_err(&manifest_path))?;
    // Start the append-only files afresh from what is kept (this drops a cut last line).
    let (jsonl, csv) =
        reports::sweep::results_texts(&manifest.param_names(), &manifest.metric_names(), &rows);
    let jsonl_path = dir.join("results.jsonl");
    let csv_path = dir.join("results.csv");
    reports::sweep::write_atomically(&jsonl_path, &jsonl).map_err(out_err(&jsonl_path))?;
    reports::sweep::write_atomically(&csv_path, &csv).map_err(out_err(&csv_path))?;

    let shard = opts.shard.unwrap_or(Shard { index: 1, count: 1 });
    let done: std::collections::BTreeSet<(u64, u64)> =
        rows.iter().map(|r| (r.point, r.seed)).collect();
    let mine: Vec<(usize, u64)> = sweep
        .items()
        .enumerate()
        .filter(|(i, _)| shard.contains(*i))
        .map(|(_, it)| it)
        .collect();
    let todo: Vec<(usize, u64)> = mine
        .iter()
        .copied()
        .filter(|&(p, s)| !done.contains(&(p as u64, s)))
        .collect();
    let reused = (mine.len() - todo.len()) as u64;

    let jobs = opts
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| SweepError::Usage(format!("cannot start {jobs} worker threads: {e}")))?;

    // Load and check every point that will run before running any, so a bad point fails
    // the sweep at once instead of hours in.
    let mut points: Vec<usize> = todo.iter().map(|&(p, _)| p).collect();
    points.dedup();
    let loaded: BTreeMap<usize, crate::Loaded> = pool
        .install(|| {
            points
                .par_iter()
                .map(|&p| {
                    let point_err = |source| SweepError::Point {
                        point: p,
                        params: sweep
                            .params(p)
                            .0
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        source,
                    };
                    let l = sweep.load_point(p).map_err(point_err)?;
                    crate::build::check(&l).map_err(point_err)?;
                    Ok((p, l))
                })
                .collect::<Vec<Result<_, SweepError>>>()
        })
        // The first bad point in point order, whichever thread found it first.
        .into_iter()
        .collect::<Result<BTreeMap<_, _>, SweepError>>()?;

    let open = |p: &Path| {
        std::fs::OpenOptions::new()
            .append(true)
            .open(p)
            .map_err(out_err(p))
    };
    let appender = Mutex::new(Appender {
        jsonl: open(&jsonl_path)?,
        csv: open(&csv_path)?,
        jsonl_path: jsonl_path.clone(),
        csv_path: csv_path.clone(),
        rows: Vec::new(),
    });
    progress.start(&sweep.name, mine.len() as u64, reused);
    let result: Result<(), SweepError> = pool.install(|| {
        todo.par_iter().with_max_len(1).try_for_each(|&(p, seed)| {
            let row = run_one(sweep, &loaded[&p], p, seed, opts)?;
            let mut a = appender
                .lock()
                .map_err(|_| SweepError::Usage("a worker thread panicked".into()))?;
            a.append(row.clone())?;
            drop(a);
            progress.finished(&row);
            Ok(())
        })
    });
    progress.end();
    let new_rows = appender
        .into_inner()
        .map_err(|_| SweepError::Usage("a worker thread panicked".into()))?
        .rows;
    result?;
    let ran = new_rows.len() as u64;
    rows.extend(new_rows);
    canonical(&mut rows, &sweep.seeds);
    finish_files(dir, &manifest, &rows, opts.report)?;
    let total = (sweep.points.len() * sweep.seeds.len()) as u64;
    Ok(SweepOutcome {
        name: sweep.name.clone(),
        out_dir: dir.display().to_string(),
        total,
        in_shard: mine.len() as u64,
        reused,
        ran,
        rows: rows.len() as u64,
        missing: total - rows.len() as u64,
        partial: rows.iter().filter(|r| !r.complete).count() as u64,
    })
}

/// Combines the output directories of shards (or of any runs of the same sweep) into
/// `out`: the same files a single machine would have written, byte for byte, when every
/// run is present. Refuses directories of different sweeps and conflicting rows.
pub fn merge(out: &Path, inputs: &[PathBuf], report: bool) -> Result<SweepOutcome, SweepError> {
    let Some(first) = inputs.first() else {
        return Err(SweepError::Usage(
            "merge needs at least one sweep output directory".into(),
        ));
    };
    let read_manifest = |dir: &Path| -> Result<(String, Manifest), SweepError> {
        let path = dir.join("sweep.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            SweepError::Usage(format!(
                "{}: not a sweep output directory ({e})",
                dir.display()
            ))
        })?;
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| SweepError::Usage(format!("{}: {e}", path.display())))?;
        Ok((text, m))
    };
    let (text, manifest) = read_manifest(first)?;
    let mut rows: Vec<ResultRow> = Vec::new();
    // (point, seed) -> (input directory, index in rows)
    let mut from: BTreeMap<(u64, u64), (usize, usize)> = BTreeMap::new();
    for (i, dir) in inputs.iter().enumerate() {
        let (t, _) = read_manifest(dir)?;
        if t != text {
            return Err(SweepError::Usage(format!(
                "{} and {} hold different sweeps (their sweep.json differ)",
                first.display(),
                dir.display()
            )));
        }
        let (found, _) = read_rows(dir)?;
        for r in found {
            if r.point >= manifest.points || !manifest.seeds.contains(&r.seed) {
                return Err(SweepError::Usage(format!(
                    "{}: point {} seed {} is not part of the sweep",
                    dir.display(),
                    r.point,
                    r.seed
                )));
            }
            match from.get(&(r.point, r.seed)) {
                None => {
                    from.insert((r.point, r.seed), (i, rows.len()));
                    rows.push(r);
                }
                Some(&(j, at)) => {
                    if rows[at] != r {
                        return Err(SweepError::Usage(format!(
                            "point {} seed {} has different results in {} and {}",
                            r.point,
                            r.seed,
                            inputs[j].display(),
                            dir.display()
                        )));
                    }
                }
            }
        }
    }
    canonical(&mut rows, &manifest.seeds);
    std::fs::create_dir_all(out).map_err(out_err(out))?;
    let path = out.join("sweep.json");
    reports::sweep::write_atomically(&path, &text).map_err(out_err(&path))?;
    finish_files(out, &manifest, &rows, report)?;
    let total = manifest.points * manifest.seeds.len() as u64;
    Ok(SweepOutcome {
        name: manifest.name.clone(),
        out_dir: out.display().to_string(),
        total,
        in_shard: total,
        reused: rows.len() as u64,
        ran: 0,
        rows: rows.len() as u64,
        missing: total - rows.len() as u64,
        partial: rows.iter().filter(|r| !r.complete).count() as u64,
    })
}

//! Running a built scenario and writing its outputs (summary.json, trace.jsonl, pcaps).

use crate::build::{build, Built};
use crate::load::{Loaded, ScenarioError};
use reports::{
    AppOutput, CaptureSummary, FlowSummary, LinkSummary, NodeSummary, RttSummary, Summary,
};
use sim_core::capture::PcapSink;
use sim_core::time::SimTime;
use sim_core::topology::NodeKind;
use sim_core::trace::Category;
use sim_core::world::{LinkId, NodeId, StopReason};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// Output directory (created). None: write nothing (library use and tests).
    pub out_dir: Option<PathBuf>,
    /// Write trace.jsonl.
    pub trace: bool,
    pub max_events: Option<u64>,
    /// Wall-clock bound in seconds (only checked, never used in simulation logic).
    pub max_wall_s: Option<f64>,
    /// Write `report.html` into `out_dir`, with the time series it plots
    /// (`tcp-series.csv`, `flow-series.csv`, `link-series.csv`, sampled every
    /// `record.series_interval` or, if unset, every 1/500 of the duration).
    pub report: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("cannot write results to {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
}

/// The result of a run.
pub struct Outcome {
    pub summary: Summary,
    pub built: Built,
}

fn categories(l: &Loaded) -> Vec<Category> {
    use crate::schema::TraceCategory as T;
    if l.scenario.record.trace.is_empty() {
        return Category::ALL.to_vec();
    }
    l.scenario
        .record
        .trace
        .iter()
        .map(|c| match c {
            T::Link => Category::Link,
            T::L2 => Category::L2,
            T::Arp => Category::Arp,
            T::Ip => Category::Ip,
            T::Icmp => Category::Icmp,
            T::Udp => Category::Udp,
            T::Tcp => Category::Tcp,
            T::TcpProbe => Category::TcpProbe,
            T::App => Category::App,
            T::Fault => Category::Fault,
            T::Dns => Category::Dns,
            T::Dhcp => Category::Dhcp,
        })
        .collect()
}

/// Builds and runs `l`, writing outputs if `opts.out_dir` is set.
pub fn run(l: &Loaded, opts: &RunOptions) -> Result<Outcome, RunError> {
    let seed = opts.seed.unwrap_or(l.scenario.seed);
    let mut built = build(l, seed)?;
    let out_err = |p: &Path, e: std::io::Error| RunError::Output {
        path: p.display().to_string(),
        source: e,
    };
    if let Some(dir) = &opts.out_dir {
        std::fs::create_dir_all(dir).map_err(|e| out_err(dir, e))?;
        let w = &mut built.world;
        for (i, k) in l.scenario.links.iter().enumerate() {
            if k.capture {
                let file = format!("link-{}.pcap", built.link_names[i]);
                let path = dir.join(&file);
                let sink = PcapSink::create(&path)
                    .map_err(|e| out_err(&path, std::io::Error::other(e.to_string())))?;
                w.capture_link(LinkId(i as u32), &file, sink);
            }
        }
        for (i, (name, d)) in l.scenario.nodes.0.iter().enumerate() {
            if let crate::schema::NodeDecl::Host(d) | crate::schema::NodeDecl::Router(d) = d {
                if d.capture {
                    let file = format!("node-{name}.pcap");
                    let path = dir.join(&file);
                    let sink = PcapSink::create(&path)
                        .map_err(|e| out_err(&path, std::io::Error::other(e.to_string())))?;
                    w.capture_node(NodeId(i as u32), &file, sink);
                }
            }
        }
        let record = &l.scenario.record;
        let mut files = reports::TraceFiles {
            jsonl: None,
            jsonl_probes: false,
            tcp_series: None,
        };
        let mut wanted = Vec::new();
        if opts.trace || !record.trace.is_empty() {
            let path = dir.join("trace.jsonl");
            files.jsonl = Some(reports::JsonlTrace::create(&path).map_err(|e| out_err(&path, e))?);
            wanted = categories(l);
            files.jsonl_probes = wanted.contains(&Category::TcpProbe);
        }
        if record.tcp_series || opts.report {
            let path = dir.join("tcp-series.csv");
            files.tcp_series =
                Some(reports::TcpSeriesCsv::create(&path).map_err(|e| out_err(&path, e))?);
            if !wanted.contains(&Category::TcpProbe) {
                wanted.push(Category::TcpProbe);
            }
        }
        if !wanted.is_empty() {
            w.net.tracer.attach(Box::new(files), &wanted);
        }
    }
    let duration_ns = l.scenario.duration.as_nanos();
    let step = match (&opts.out_dir, l.scenario.record.series_interval) {
        (None, _) => None,
        (Some(_), Some(d)) => Some(d.as_nanos().max(1)),
        (Some(_), None) if opts.report => Some((duration_ns / 500).max(1)),
        _ => None,
    };
    let mut sampler = match (&opts.out_dir, step) {
        (Some(dir), Some(step)) => {
            Some(Sampler::create(dir, step).map_err(|(p, e)| out_err(&p, e))?)
        }
        _ => None,
    };
    let wall = Instant::now();
    let w = &mut built.world;
    w.start();
    let end = SimTime::from_nanos(duration_ns);
    let max_wall = opts.max_wall_s;
    let mut stop = || max_wall.is_some_and(|m| wall.elapsed().as_secs_f64() > m);
    let reason = match sampler.as_mut() {
        None => w.run(end, opts.max_events, stop),
        Some(s) => s.run(w, end, opts.max_events, &mut stop),
    };
    // Apps stopping now are not members going down.
    for g in &built.gossip {
        g.group.log.borrow_mut().end_run();
    }
    let w = &mut built.world;
    let (captures, mut errors) = w.finish();
    if let Some(s) = sampler.as_mut() {
        errors.extend(s.finish());
    }
    let wall_s = wall.elapsed().as_secs_f64();
    let sim_end = match reason {
        StopReason::EndTime | StopReason::Idle => end,
        _ => w.now(),
    };
    let summary = summarize(l, &built, seed, sim_end, wall_s, reason, captures);
    if let Some(dir) = &opts.out_dir {
        let path = dir.join("summary.json");
        reports::write_summary(&path, &summary).map_err(|e| out_err(&path, e))?;
        if !summary.gossip.is_empty() {
            let path = dir.join("gossip-rounds.csv");
            reports::write_gossip_rounds(&path, &summary.gossip).map_err(|e| out_err(&path, e))?;
        }
        if opts.report {
            let path = dir.join("report.html");
            let html = reports::html::run_report(&summary, &l.file, &l.source, dir)
                .map_err(|e| out_err(&path, e))?;
            std::fs::write(&path, html).map_err(|e| out_err(&path, e))?;
        }
    }
    if let Some(e) = errors.first() {
        return Err(RunError::Output {
            path: "capture/trace".into(),
            source: std::io::Error::other(e.clone()),
        });
    }
    Ok(Outcome { summary, built })
}

/// Samples flows and link directions every `step` ns of simulated time into
/// `flow-series.csv` and `link-series.csv`. It runs the world in slices that end at the
/// sample times, so it adds no event and changes nothing the run does (nor its digest).
struct Sampler {
    step: u64,
    flows: reports::series::SeriesCsv,
    links: reports::series::SeriesCsv,
    flow_rx: Vec<u64>,
    /// Each flow's RTT sample count and sum at the last sample.
    flow_rtt: Vec<(u64, u128)>,
    link_tx: Vec<u64>,
}

impl Sampler {
    fn create(dir: &Path, step: u64) -> Result<Sampler, (PathBuf, std::io::Error)> {
        let fp = dir.join("flow-series.csv");
        let lp = dir.join("link-series.csv");
        Ok(Sampler {
            step,
            flows: reports::series::SeriesCsv::create_flows(&fp).map_err(|e| (fp, e))?,
            links: reports::series::SeriesCsv::create_links(&lp).map_err(|e| (lp, e))?,
            flow_rx: Vec::new(),
            flow_rtt: Vec::new(),
            link_tx: Vec::new(),
        })
    }

    /// `World::run` to `end`, stopping at every sample time to sample.
    fn run(
        &mut self,
        w: &mut sim_core::world::World,
        end: SimTime,
        max_events: Option<u64>,
        stop: &mut impl FnMut() -> bool,
    ) -> StopReason {
        let mut t = self.step;
        while t <= end.as_nanos() {
            match w.run(SimTime::from_nanos(t), max_events, &mut *stop) {
                StopReason::EndTime | StopReason::Idle => self.sample(w, t),
                r => return r,
            }
            t += self.step;
        }
        w.run(end, max_events, stop)
    }

    fn sample(&mut self, w: &sim_core::world::World, t: u64) {
        use reports::series::bits_per_second;
        for (i, f) in w.net.flows.iter().enumerate() {
            if self.flow_rx.len() <= i {
                self.flow_rx.push(0);
                self.flow_rtt.push((0, 0));
            }
            let delta = f.rx_bytes.saturating_sub(self.flow_rx[i]);
            self.flow_rx[i] = f.rx_bytes;
            let (count, sum) = self.flow_rtt[i];
            let samples = f.rtt.count.saturating_sub(count);
            let rtt =
                (samples > 0).then(|| (f.rtt.sum_ns.saturating_sub(sum) / samples as u128) as u64);
            self.flow_rtt[i] = (f.rtt.count, f.rtt.sum_ns);
            self.flows.row(
                t,
                &f.id,
                &[
                    Some(f.rx_bytes),
                    Some(f.tx_bytes),
                    Some(bits_per_second(delta, self.step)),
                    rtt,
                ],
            );
        }
        let mut i = 0;
        for l in w.links() {
            for (d, ch) in l.dirs.iter().enumerate() {
                if self.link_tx.len() <= i {
                    self.link_tx.push(0);
                }
                let tx = ch.stats.tx_bytes;
                let delta = tx.saturating_sub(self.link_tx[i]);
                self.link_tx[i] = tx;
                let id = format!(
                    "{}:{}->{}",
                    l.name,
                    w.node_name(l.ends[d].0),
                    w.node_name(l.ends[1 - d].0)
                );
                self.links.row(
                    t,
                    &id,
                    &[
                        Some(ch.queue_len() as u64),
                        Some(ch.queued_bytes()),
                        Some(tx),
                        Some(bits_per_second(delta, self.step)),
                    ],
                );
                i += 1;
            }
        }
    }

    fn finish(&mut self) -> Vec<String> {
        [self.flows.finish(), self.links.finish()]
            .into_iter()
            .filter_map(|r| r.err())
            .map(|e| format!("series: {e}"))
            .collect()
    }
}

fn summarize(
    l: &Loaded,
    b: &Built,
    seed: u64,
    end: SimTime,
    wall_s: f64,
    reason: StopReason,
    captures: Vec<(String, u64)>,
) -> Summary {
    let w = &b.world;
    let t = end.as_secs_f64().max(1e-12);
    let flows = w
        .net
        .flows
        .iter()
        .map(|f| {
            let mut extra: std::collections::BTreeMap<String, f64> =
                f.extra.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            // TCP flows report retransmissions as a key of their own.
            let retransmits =
                (f.proto == "tcp").then(|| extra.remove("retransmits").unwrap_or(0.0) as u64);
            FlowSummary {
                id: f.id.clone(),
                src: f.src.clone(),
                dst: f.dst.clone(),
                proto: f.proto.to_string(),
                tx_packets: f.tx_packets,
                tx_bytes: f.tx_bytes,
                rx_packets: f.rx_packets,
                rx_bytes: f.rx_bytes,
                goodput_bps: f.goodput_bps(),
                lost_packets: f.lost_packets,
                rtt_ms: f.rtt.mean_ns().map(|m| RttSummary {
                    min: f.rtt.min_ns as f64 / 1e6,
                    mean: m / 1e6,
                    max: f.rtt.max_ns as f64 / 1e6,
                    samples: f.rtt.count,
                }),
                retransmits,
                state: f.state.map(str::to_string),
                error: f.error.map(str::to_string),
                extra,
            }
        })
        .collect();
    let idle_links = l.scenario.record.idle_links;
    let mut links = Vec::new();
    for l in w.links() {
        for (d, ch) in l.dirs.iter().enumerate() {
            let from = w.node_name(l.ends[d].0).to_string();
            let to = w.node_name(l.ends[1 - d].0).to_string();
            let s = ch.stats;
            if !idle_links && s.tx_packets == 0 {
                continue;
            }
            links.push(LinkSummary {
                id: format!("{}:{}->{}", l.name, from, to),
                link: l.name.clone(),
                from,
                to,
                tx_packets: s.tx_packets,
                tx_bytes: s.tx_bytes,
                queue_drops: s.queue_drops,
                aqm_drops: s.aqm_drops,
                ecn_marks: s.ecn_marks,
                loss_drops: s.loss_drops,
                down_drops: s.down_drops,
                duplicated: s.duplicated,
                reordered: s.reordered,
                corrupted: s.corrupted,
                max_queue_packets: s.max_queue_packets,
                utilization: (s.busy_ns as f64 / 1e9 / t).min(1.0),
            });
        }
    }
    // Hosts report their TCP counters as a report block of "<Name> <value>" lines.
    let (tcp_reports, app_reports): (Vec<_>, Vec<_>) = w
        .reports()
        .into_iter()
        .partition(|(_, r)| r.app == protocols::host::TCP_COUNTERS_REPORT);
    // ... and their DNS counters the same way.
    let (dns_reports, app_reports): (Vec<_>, Vec<_>) = app_reports
        .into_iter()
        .partition(|(_, r)| r.app == protocols::dns::DNS_COUNTERS_REPORT);
    let counters_of = |reports: &[(String, sim_core::world::StackReport)], node: &str| {
        reports
            .iter()
            .filter(|(n, _)| n == node)
            .flat_map(|(_, r)| r.lines.iter())
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect::<std::collections::BTreeMap<String, u64>>()
    };
    let tcp_counters = |node: &str| -> std::collections::BTreeMap<String, u64> {
        tcp_reports
            .iter()
            .filter(|(n, _)| n == node)
            .flat_map(|(_, r)| r.lines.iter())
            .filter_map(|l| {
                let (k, v) = l.split_once(' ')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect()
    };
    let nodes = (0..w.node_count())
        .map(|i| {
            let id = NodeId(i as u32);
            let kind = match b.kinds[i] {
                NodeKind::Host => "host",
                NodeKind::Router => "router",
                NodeKind::Switch => "switch",
            };
            // What the interfaces have at the end (a DHCP host's lease, if it holds one).
            let addresses = match w.ip_node(id) {
                Some(ip) => ip
                    .ifaces()
                    .iter()
                    .filter(|f| f.is_configured())
                    .map(|f| format!("{}/{}", f.addr, f.prefix.len))
                    .collect(),
                None => Vec::new(),
            };
            let metrics = w
                .net
                .metrics
                .of_node(i as u32)
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            let counters = w
                .counters(id)
                .fields()
                .iter()
                .filter(|(_, v)| *v > 0)
                .map(|(k, v)| (k.to_string(), *v))
                .collect();
            NodeSummary {
                name: w.node_name(id).to_string(),
                kind: kind.into(),
                addresses,
                counters,
                tcp: tcp_counters(w.node_name(id)),
                dns: counters_of(&dns_reports, w.node_name(id)),
                metrics,
            }
        })
        .collect();
    let apps = app_reports
        .into_iter()
        .map(|(node, r)| AppOutput {
            node,
            app: r.app,
            lines: r.lines,
        })
        .collect();
    Summary {
        scenario: l.scenario.name.clone(),
        seed,
        sim_time_s: end.as_secs_f64(),
        events: w.events(),
        wall_s,
        trace_digest: w.trace_digest(),
        complete: matches!(reason, StopReason::EndTime | StopReason::Idle),
        stop_reason: match reason {
            StopReason::EndTime => "end_time",
            StopReason::Idle => "idle",
            StopReason::MaxEvents => "max_events",
            StopReason::Interrupted => "max_wall",
        }
        .into(),
        flows,
        links,
        nodes,
        captures: captures
            .into_iter()
            .map(|(file, packets)| CaptureSummary { file, packets })
            .collect(),
        apps,
        gossip: b
            .gossip
            .iter()
            .map(|g| crate::gossip::summary(g, end))
            .collect(),
    }
}

//! Turning a run's results into files people and programs read.
//!
//! Owns the public output formats: `summary.json` ([`Summary`]), `trace.jsonl`
//! ([`JsonlTrace`]) and the short human summary printed on stdout ([`human_summary`]).
//! The formats are documented in `docs/output.md`; changing them is a deliberate,
//! CHANGELOG-noted act. This crate knows nothing of scenario files or of how runs execute.

pub mod html;
pub mod series;
pub mod sweep;

use serde::Serialize;
use sim_core::trace::{TraceRecord, TraceSink, TraceValue};
use std::io::{BufWriter, Write};
use std::path::Path;

/// `summary.json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub sim_time_s: f64,
    pub events: u64,
    pub wall_s: f64,
    pub trace_digest: String,
    /// false when the run was cut short by --max-events or --max-wall.
    pub complete: bool,
    pub stop_reason: String,
    pub flows: Vec<FlowSummary>,
    pub links: Vec<LinkSummary>,
    pub nodes: Vec<NodeSummary>,
    pub captures: Vec<CaptureSummary>,
    pub apps: Vec<AppOutput>,
    /// One entry per `Gossip` app; omitted when there is none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gossip: Vec<GossipSummary>,
}

/// How one gossip app's rumors spread (`gossip[]` in summary.json).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GossipSummary {
    pub app: String,
    pub members: u64,
    /// "push", "pull", "push-pull" or "off".
    pub mode: String,
    pub fanout: u32,
    pub period_s: f64,
    pub feedback: bool,
    /// "never", "coin" or "counter".
    pub lose_interest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anti_entropy_s: Option<f64>,
    pub messages: GossipMessages,
    /// SWIM membership, when the app runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership: Option<GossipMembership>,
    pub rounds: Vec<GossipRound>,
    pub rumors: Vec<GossipRumor>,
}

/// How SWIM tracked the members of a gossip app.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GossipMembership {
    pub probe_period_s: f64,
    pub probe_timeout_s: f64,
    pub indirect: u32,
    pub suspicion_s: f64,
    pub reconnect_every: u32,
    /// Membership datagrams sent (also in `messages.sent`).
    pub messages: u64,
    pub suspicions: u64,
    pub false_suspicions: u64,
    pub deaths: u64,
    pub false_deaths: u64,
    /// At the end of the run: pairs of members up where the first believes the second dead.
    pub wrongly_dead_at_end: u64,
    pub failures: Vec<GossipFailure>,
}

/// How one member going down was detected.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GossipFailure {
    pub member: String,
    pub down_s: f64,
    pub up_s: Option<f64>,
    pub first_suspect_s: Option<f64>,
    pub first_dead_s: Option<f64>,
    pub all_dead_s: Option<f64>,
    /// After it came back: the first time no member up doubted it.
    pub rejoined_s: Option<f64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GossipMessages {
    pub sent: u64,
    pub received: u64,
    pub malformed: u64,
    pub bytes_sent: u64,
    pub per_member_mean: f64,
    pub per_member_max: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GossipRound {
    pub round: u64,
    pub t_s: f64,
    pub live: u64,
    pub messages: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GossipRumor {
    pub id: u32,
    pub origin: String,
    pub born_s: Option<f64>,
    pub first_round: Option<u64>,
    pub informed: u64,
    pub residue: f64,
    pub final_live: u64,
    pub final_informed: u64,
    pub full_s: Option<f64>,
    pub rounds_to_full: Option<u64>,
    pub messages_to_full: Option<u64>,
    pub informed_per_round: Vec<u64>,
    pub live_informed_per_round: Vec<u64>,
}

/// The columns of `gossip-rounds.csv`.
pub const GOSSIP_ROUNDS_COLUMNS: [&str; 8] = [
    "app",
    "rumor",
    "round",
    "t_s",
    "live",
    "messages",
    "informed",
    "live_informed",
];

/// Writes `gossip-rounds.csv`: one row per gossip app, rumor and round from the rumor's
/// first round (`round` counts from the app's start, like `gossip[].rounds`).
pub fn write_gossip_rounds(path: &Path, gossip: &[GossipSummary]) -> std::io::Result<()> {
    let mut f = BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "{}", GOSSIP_ROUNDS_COLUMNS.join(","))?;
    for g in gossip {
        for r in &g.rumors {
            let Some(r0) = r.first_round else { continue };
            for (j, (informed, live_informed)) in r
                .informed_per_round
                .iter()
                .zip(&r.live_informed_per_round)
                .enumerate()
            {
                let Some(round) = g.rounds.get(r0 as usize + j) else {
                    break;
                };
                writeln!(
                    f,
                    "{},{},{},{},{},{},{},{}",
                    g.app,
                    r.id,
                    round.round,
                    round.t_s,
                    round.live,
                    round.messages,
                    informed,
                    live_informed
                )?;
            }
        }
    }
    f.flush()
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FlowSummary {
    pub id: String,
    pub src: String,
    pub dst: String,
    pub proto: String,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub goodput_bps: f64,
    pub lost_packets: u64,
    pub rtt_ms: Option<RttSummary>,
    /// TCP flows: segments retransmitted by the flow's connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retransmits: Option<u64>,
    /// TCP flows: the state the (last) connection ended in, e.g. "TIME_WAIT".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// TCP flows whose connection failed: the errno name, e.g. "ETIMEDOUT".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub extra: std::collections::BTreeMap<String, f64>,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct RttSummary {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    pub samples: u64,
}

/// One direction of a link.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LinkSummary {
    /// "<link>:<from>-><to>"
    pub id: String,
    pub link: String,
    pub from: String,
    pub to: String,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub queue_drops: u64,
    /// Frames the queue discipline (RED, CoDel) dropped early.
    pub aqm_drops: u64,
    /// Frames the queue discipline marked CE instead of dropping them.
    pub ecn_marks: u64,
    pub loss_drops: u64,
    pub down_drops: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    pub max_queue_packets: u64,
    /// Fraction of the run the direction spent serializing frames.
    pub utilization: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NodeSummary {
    pub name: String,
    pub kind: String,
    pub addresses: Vec<String>,
    pub counters: std::collections::BTreeMap<String, u64>,
    /// The host's TCP counters (nstat names without the Tcp/TcpExt prefix), non-zero only;
    /// omitted when all are zero.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tcp: std::collections::BTreeMap<String, u64>,
    /// The node's DNS counters (stub resolver, resolver and authoritative server apps),
    /// non-zero only; omitted when all are zero.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub dns: std::collections::BTreeMap<String, u64>,
    /// Named measurements of the node's protocols (e.g. `dhcp.client.leases`); omitted
    /// when there are none.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metrics: std::collections::BTreeMap<String, f64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CaptureSummary {
    pub file: String,
    pub packets: u64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AppOutput {
    pub node: String,
    pub app: String,
    pub lines: Vec<String>,
}

/// Writes `summary.json` (pretty-printed, stable key order).
pub fn write_summary(path: &Path, s: &Summary) -> std::io::Result<()> {
    let mut f = BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(&mut f, s)?;
    f.write_all(b"\n")?;
    f.flush()
}

/// The short report printed on stdout after a run.
pub fn human_summary(s: &Summary, out_dir: &str) -> String {
    let mut o = String::new();
    let status = if s.complete {
        ""
    } else {
        " (PARTIAL: stopped early)"
    };
    o.push_str(&format!(
        "{}: simulated {:.3} s in {:.3} s wall, {} events, seed {}{}\n",
        s.scenario, s.sim_time_s, s.wall_s, s.events, s.seed, status
    ));
    o.push_str(&format!("trace digest {}\n", s.trace_digest));
    for a in &s.apps {
        o.push_str(&format!("\n[{} on {}]\n", a.app, a.node));
        let n = a.lines.len();
        for (i, l) in a.lines.iter().enumerate() {
            if n > 24 && i == 10 {
                o.push_str(&format!(
                    "  ... {} more lines in summary.json ...\n",
                    n - 20
                ));
            }
            if n <= 24 || i < 10 || i >= n - 10 {
                o.push_str(&format!("  {l}\n"));
            }
        }
    }
    for g in &s.gossip {
        o.push_str(&format!(
            "\n[gossip {}: {} members, {}, fanout {}, period {} s, {} messages ({:.1} per member), {} malformed]\n",
            g.app,
            g.members,
            g.mode,
            g.fanout,
            g.period_s,
            g.messages.sent,
            g.messages.per_member_mean,
            g.messages.malformed
        ));
        if let Some(m) = &g.membership {
            let detected: Vec<f64> = m
                .failures
                .iter()
                .filter_map(|f| f.all_dead_s.map(|t| t - f.down_s))
                .collect();
            o.push_str(&format!(
                "  membership: {} failures, {} detected by everyone up{}; {} false suspicions, {} false deaths\n",
                m.failures.len(),
                detected.len(),
                if detected.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (after {:.3} s on average)",
                        detected.iter().sum::<f64>() / detected.len() as f64
                    )
                },
                m.false_suspicions,
                m.false_deaths
            ));
        }
        for r in &g.rumors {
            let full = match (r.full_s, r.rounds_to_full) {
                (Some(t), Some(k)) => format!("everyone up informed at {t:.3} s ({k} rounds)"),
                (Some(t), None) => format!("everyone up informed at {t:.3} s"),
                _ => "never reached everyone up".into(),
            };
            let born = r
                .born_s
                .map_or("never born".to_string(), |b| format!("born {b:.3} s"));
            o.push_str(&format!(
                "  rumor {} from {}: {born}, {full}; residue {:.4}, {}/{} up know it at the end\n",
                r.id, r.origin, r.residue, r.final_informed, r.final_live
            ));
        }
    }
    if !s.flows.is_empty() {
        o.push_str("\nflows:\n");
        for f in &s.flows {
            let rtt = f
                .rtt_ms
                .map(|r| format!(" rtt {:.3}/{:.3}/{:.3} ms", r.min, r.mean, r.max))
                .unwrap_or_default();
            let mut tcp = String::new();
            if let Some(r) = f.retransmits {
                tcp.push_str(&format!(", retrans {r}"));
            }
            if let Some(st) = &f.state {
                tcp.push_str(&format!(", {st}"));
            }
            if let Some(e) = &f.error {
                tcp.push_str(&format!(", error {e}"));
            }
            o.push_str(&format!(
                "  {:<16} {} -> {} {}: tx {} B, rx {} B, goodput {:.3} Mb/s, lost {}{}{}\n",
                f.id,
                f.src,
                f.dst,
                f.proto,
                f.tx_bytes,
                f.rx_bytes,
                f.goodput_bps / 1e6,
                f.lost_packets,
                rtt,
                tcp
            ));
        }
    }
    let busy: Vec<&LinkSummary> = s.links.iter().filter(|l| l.tx_packets > 0).collect();
    if !busy.is_empty() {
        o.push_str("\nlinks (directions that carried traffic):\n");
        // Big networks (host groups) have thousands: the 20 busiest are shown.
        const SHOWN: usize = 20;
        let hidden = busy.len().saturating_sub(SHOWN);
        let mut busy = busy;
        if hidden > 0 {
            busy.sort_by(|a, b| b.tx_packets.cmp(&a.tx_packets).then(a.id.cmp(&b.id)));
            busy.truncate(SHOWN);
            o.push_str(&format!(
                "  (the {SHOWN} busiest; {hidden} more in summary.json)\n"
            ));
        }
        for l in busy {
            o.push_str(&format!(
                "  {:<24} tx {} pkts, util {:.1}%, queue drops {}, loss drops {}",
                l.id,
                l.tx_packets,
                l.utilization * 100.0,
                l.queue_drops,
                l.loss_drops
            ));
            if l.aqm_drops > 0 || l.ecn_marks > 0 {
                o.push_str(&format!(
                    ", aqm drops {}, ecn marks {}",
                    l.aqm_drops, l.ecn_marks
                ));
            }
            o.push('\n');
        }
    }
    for c in &s.captures {
        o.push_str(&format!("capture {} ({} packets)\n", c.file, c.packets));
    }
    o.push_str(&format!("results in {out_dir}\n"));
    o
}

/// A buffered file written one line at a time, which remembers the first write error
/// (trace sinks cannot return errors per record) and reports it at the end.
struct LineFile {
    out: BufWriter<std::fs::File>,
    line: String,
    error: Option<String>,
}

impl LineFile {
    fn create(path: &Path, header: Option<&str>) -> std::io::Result<Self> {
        let mut out = BufWriter::new(std::fs::File::create(path)?);
        if let Some(h) = header {
            writeln!(out, "{h}")?;
        }
        Ok(LineFile {
            out,
            line: String::with_capacity(256),
            error: None,
        })
    }
    /// Builds a line with `fill` (into a cleared buffer) and writes it, unless an earlier
    /// write failed.
    fn write_line(&mut self, fill: impl FnOnce(&mut String)) {
        if self.error.is_some() {
            return;
        }
        self.line.clear();
        fill(&mut self.line);
        self.line.push('\n');
        if let Err(e) = self.out.write_all(self.line.as_bytes()) {
            self.error = Some(e.to_string());
        }
    }
    fn finish(&mut self) -> Result<(), String> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush().map_err(|e| e.to_string())
    }
}

/// Writes trace records as JSON lines: `{"t_ns":..,"node":..,"event":..,<fields>}`.
pub struct JsonlTrace {
    file: LineFile,
}

impl JsonlTrace {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(JsonlTrace {
            file: LineFile::create(path, None)?,
        })
    }
}

/// Appends a trace value as JSON.
fn push_json_value(l: &mut String, v: &TraceValue) {
    match v {
        TraceValue::U64(x) => l.push_str(&x.to_string()),
        TraceValue::I64(x) => l.push_str(&x.to_string()),
        TraceValue::F64(x) if x.is_finite() => l.push_str(&x.to_string()),
        TraceValue::F64(_) => l.push_str("null"),
        TraceValue::Bool(x) => l.push_str(if *x { "true" } else { "false" }),
        TraceValue::Str(s) => push_json_str(l, s),
        TraceValue::String(s) => push_json_str(l, s),
        TraceValue::Ip(a) => push_json_str(l, &a.to_string()),
        TraceValue::Mac(m) => push_json_str(l, &m.to_string()),
    }
}

fn push_json_str(line: &mut String, s: &str) {
    // serde_json escapes correctly; a String never fails to serialize.
    line.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

impl TraceSink for JsonlTrace {
    fn record(&mut self, r: &TraceRecord<'_>) {
        self.file.write_line(|l| {
            l.push_str(&format!("{{\"t_ns\":{},\"node\":", r.t.as_nanos()));
            push_json_str(l, r.node);
            l.push_str(",\"event\":");
            push_json_str(l, r.event);
            for (k, v) in r.fields {
                l.push(',');
                push_json_str(l, k);
                l.push(':');
                push_json_value(l, v);
            }
            l.push('}');
        });
    }
    fn finish(&mut self) -> Result<(), String> {
        self.file.finish()
    }
}

/// The columns of `tcp-series.csv`: the time, the node, then the fields of a `tcp_probe`
/// record in the order the TCP stack emits them.
pub const TCP_SERIES_COLUMNS: [&str; 12] = [
    "t_ns",
    "node",
    "conn",
    "ca_state",
    "cwnd",
    "ssthresh",
    "srtt_us",
    "rttvar_us",
    "rto_us",
    "in_flight",
    "delivered",
    "snd_wnd",
];

/// Writes `tcp_probe` records as CSV rows (`tcp-series.csv`), one per ACK processed by a
/// TCP sender, for pandas, gnuplot and the HTML report.
pub struct TcpSeriesCsv {
    file: LineFile,
}

impl TcpSeriesCsv {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(TcpSeriesCsv {
            file: LineFile::create(path, Some(&TCP_SERIES_COLUMNS.join(",")))?,
        })
    }
}

impl TraceSink for TcpSeriesCsv {
    fn record(&mut self, r: &TraceRecord<'_>) {
        if r.event != "tcp_probe" {
            return;
        }
        self.file.write_line(|l| {
            l.push_str(&r.t.as_nanos().to_string());
            l.push(',');
            l.push_str(r.node);
            for (_, v) in r.fields {
                l.push(',');
                match v {
                    // Connection labels and state names hold no commas or quotes.
                    TraceValue::Str(s) => l.push_str(s),
                    TraceValue::String(s) => l.push_str(s),
                    other => push_json_value(l, other),
                }
            }
        });
    }
    fn finish(&mut self) -> Result<(), String> {
        self.file.finish()
    }
}

/// Routes one run's trace to its files: `trace.jsonl` gets the categories the scenario
/// asked for, `tcp-series.csv` gets the `tcp_probe` records.
pub struct TraceFiles {
    pub jsonl: Option<JsonlTrace>,
    /// Whether `tcp_probe` records also go to `jsonl`.
    pub jsonl_probes: bool,
    pub tcp_series: Option<TcpSeriesCsv>,
}

impl TraceSink for TraceFiles {
    fn record(&mut self, r: &TraceRecord<'_>) {
        let probe = r.event == "tcp_probe";
        if probe {
            if let Some(s) = self.tcp_series.as_mut() {
                s.record(r);
            }
        }
        if let Some(j) = self.jsonl.as_mut().filter(|_| !probe || self.jsonl_probes) {
            j.record(r);
        }
    }
    fn finish(&mut self) -> Result<(), String> {
        let a = self.jsonl.as_mut().map_or(Ok(()), |j| j.finish());
        let b = self.tcp_series.as_mut().map_or(Ok(()), |s| s.finish());
        a.and(b)
    }
}

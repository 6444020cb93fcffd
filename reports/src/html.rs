//! Self-contained HTML reports: one page, inline CSS and inline SVG plots (drawn with
//! plotters' SVG backend), no script and nothing loaded from anywhere, so it opens from
//! disk and can be mailed around.
//!
//! - [`run_report`]: one run: cwnd, RTT and throughput per flow, queue occupancy and
//!   throughput per link direction over time, tables of flows and links, the scenario text
//!   and seed that produced it. Reads the time series its run wrote beside it.
//! - [`sweep_report`]: a sweep: every metric against every axis, mean and 95% confidence
//!   interval across seeds, one line per value of a second axis.

use crate::series::Table;
use crate::sweep::{aggregate, Manifest, PointAggregate, ResultRow};
use crate::Summary;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

/// Most lines drawn in one plot; a note says how many were left out.
const MAX_LINES: usize = 24;
/// Link directions per plot of the run report: the busiest ones.
const TOP_LINKS: usize = 6;
/// Most points per line: longer series keep each bucket's minimum and maximum.
const MAX_POINTS: usize = 1500;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A number for axis ticks and tables: 12.5M, 3.2k, 0.0125.
pub fn si(v: f64) -> String {
    let a = v.abs();
    let (x, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if x == x.trunc() && x.abs() < 1e4 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else if x.abs() >= 0.001 {
        let t = format!("{x:.4}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{x:.2e}")
    };
    format!("{s}{suffix}")
}

/// Keeps at most about `max` points: each bucket contributes its lowest and highest point,
/// in time order, so sawtooths and spikes survive.
fn decimate(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    let buckets = (max / 2).max(1);
    let size = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(buckets * 2);
    for chunk in points.chunks(size) {
        let lo = chunk
            .iter()
            .enumerate()
            .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .map_or(0, |(i, _)| i);
        let hi = chunk
            .iter()
            .enumerate()
            .max_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .map_or(0, |(i, _)| i);
        let (a, b) = (lo.min(hi), lo.max(hi));
        out.push(chunk[a]);
        if b != a {
            out.push(chunk[b]);
        }
    }
    out
}

/// One line of a time plot.
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo > hi {
        return None;
    }
    if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return Some((lo - pad, hi + pad));
    }
    Some((lo, hi))
}

fn color(i: usize) -> RGBColor {
    // Tableau 10: distinguishable, and readable on white.
    const C: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// An SVG line plot of `lines` (y from 0 unless values are negative).
pub fn line_plot(title: &str, x_desc: &str, y_desc: &str, lines: &[Line]) -> String {
    let lines: Vec<Line> = lines
        .iter()
        .take(MAX_LINES)
        .map(|l| Line {
            name: l.name.clone(),
            points: decimate(&l.points, MAX_POINTS),
        })
        .collect();
    let mut svg = String::new();
    let drawn = draw_lines(&mut svg, title, x_desc, y_desc, &lines);
    finish_svg(svg, drawn)
}

fn finish_svg(svg: String, drawn: PlotResult) -> String {
    match drawn {
        Ok(()) => svg,
        Err(e) => format!(
            "<p class=\"note\">This plot could not be drawn: {}</p>",
            esc(&e.to_string())
        ),
    }
}

fn draw_lines(
    svg: &mut String,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    lines: &[Line],
) -> PlotResult {
    let xs = bounds(lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)));
    let ys = bounds(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)));
    let (Some((x0, x1)), Some((y0, y1))) = (xs, ys) else {
        return Err("no data".into());
    };
    let y0 = y0.min(0.0);
    let y1 = y1 + (y1 - y0) * 0.05;
    let root = SVGBackend::with_string(svg, (880, 340)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|v| si(*v))
        .y_label_formatter(&|v| si(*v))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, l) in lines.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(l.points.iter().copied(), c.stroke_width(2)))?
            .label(l.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    if lines.len() > 1 || lines.first().is_some_and(|l| !l.name.is_empty()) {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// A point of a CI plot: x, mean, and the interval's low and high ends.
pub struct CiPoint {
    pub x: f64,
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

/// An SVG plot of means with 95% confidence interval bars, one line per group. `ticks`
/// names categorical x positions (0, 1, 2, ...); `log_x` means x holds log10 values.
pub fn ci_plot(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    groups: &[(String, Vec<CiPoint>)],
    ticks: Option<&[String]>,
    log_x: bool,
) -> String {
    let mut svg = String::new();
    let drawn = draw_ci(&mut svg, title, x_desc, y_desc, groups, ticks, log_x);
    finish_svg(svg, drawn)
}

fn draw_ci(
    svg: &mut String,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    groups: &[(String, Vec<CiPoint>)],
    ticks: Option<&[String]>,
    log_x: bool,
) -> PlotResult {
    let xs = bounds(groups.iter().flat_map(|g| g.1.iter().map(|p| p.x)));
    let ys = bounds(
        groups
            .iter()
            .flat_map(|g| g.1.iter().flat_map(|p| [p.lo, p.hi, p.mean])),
    );
    let (Some((x0, x1)), Some((y0, y1))) = (xs, ys) else {
        return Err("no data".into());
    };
    let pad = (x1 - x0).max(1e-9) * 0.06;
    let (x0, x1) = (x0 - pad, x1 + pad);
    let span = (y1 - y0).max(1e-12);
    let (y0, y1) = (
        if y0 >= 0.0 {
            0.0_f64.max(y0 - span * 0.1)
        } else {
            y0 - span * 0.1
        },
        y1 + span * 0.1,
    );
    let root = SVGBackend::with_string(svg, (880, 360)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let tick_label = |v: &f64| -> String {
        match ticks {
            Some(t) => {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < t.len() {
                    t[i as usize].clone()
                } else {
                    String::new()
                }
            }
            None if log_x => si(10f64.powf(*v)),
            None => si(*v),
        }
    };
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&tick_label)
        .y_label_formatter(&|v| si(*v))
        .light_line_style(WHITE.mix(0.0));
    if let Some(t) = ticks {
        mesh.x_labels(t.len() * 2 + 1);
    }
    mesh.draw()?;
    for (i, (name, points)) in groups.iter().take(MAX_LINES).enumerate() {
        let c = color(i);
        let mut sorted: Vec<&CiPoint> = points.iter().collect();
        sorted.sort_by(|a, b| a.x.total_cmp(&b.x));
        chart
            .draw_series(LineSeries::new(
                sorted.iter().map(|p| (p.x, p.mean)),
                c.stroke_width(2),
            ))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart.draw_series(
            sorted
                .iter()
                .map(|p| ErrorBar::new_vertical(p.x, p.lo, p.mean, p.hi, c.stroke_width(1), 8)),
        )?;
        chart.draw_series(
            sorted
                .iter()
                .map(|p| Circle::new((p.x, p.mean), 3, c.filled())),
        )?;
    }
    if groups.len() > 1 || groups.first().is_some_and(|g| !g.0.is_empty()) {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:960px;color:#222;padding:0 12px}\
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}\
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}th,td{border:1px solid #ddd;padding:3px 7px;text-align:right}\
th{background:#f4f4f4}td.l,th.l{text-align:left}pre{background:#f7f7f7;padding:10px;overflow-x:auto;font-size:.8em}\
.meta{color:#555}.note{color:#666;font-style:italic}.partial{color:#b00;font-weight:bold}figure{margin:1em 0}svg{max-width:100%;height:auto}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        esc(title)
    )
}

fn table(head: &[&str], left: usize, rows: &[Vec<String>]) -> String {
    let mut t = String::from("<table><thead><tr>");
    for (i, h) in head.iter().enumerate() {
        let cls = if i < left { " class=\"l\"" } else { "" };
        let _ = write!(t, "<th{cls}>{}</th>", esc(h));
    }
    t.push_str("</tr></thead><tbody>\n");
    for r in rows {
        t.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let cls = if i < left { " class=\"l\"" } else { "" };
            let _ = write!(t, "<td{cls}>{}</td>", esc(c));
        }
        t.push_str("</tr>\n");
    }
    t.push_str("</tbody></table>\n");
    t
}

fn figure(svg: String, note: Option<String>) -> String {
    let note = note
        .map(|n| format!("<figcaption class=\"note\">{}</figcaption>", esc(&n)))
        .unwrap_or_default();
    format!("<figure>{svg}{note}</figure>\n")
}

fn too_many(n: usize) -> Option<String> {
    (n > MAX_LINES).then(|| {
        format!(
            "{} of {n} series shown; all are in the CSV files.",
            MAX_LINES
        )
    })
}

/// The report of one run. `dir` is the run's output directory: the time series it wrote
/// there (`tcp-series.csv`, `flow-series.csv`, `link-series.csv`) are plotted when present.
pub fn run_report(
    s: &Summary,
    scenario_file: &str,
    scenario_source: &str,
    dir: &Path,
) -> std::io::Result<String> {
    let tcp = Table::read(&dir.join("tcp-series.csv"))?;
    let flows = Table::read(&dir.join("flow-series.csv"))?;
    let links = Table::read(&dir.join("link-series.csv"))?;
    let mut b = String::new();
    let _ = writeln!(b, "<h1>{}</h1>", esc(&s.scenario));
    let status = if s.complete {
        format!("complete ({})", s.stop_reason)
    } else {
        format!(
            "<span class=\"partial\">PARTIAL: stopped early ({})</span>",
            esc(&s.stop_reason)
        )
    };
    let _ = writeln!(
        b,
        "<p class=\"meta\">Scenario <code>{}</code>, seed <b>{}</b>. Simulated {:.6} s, {} events, {}. Trace digest <code>{}</code>.<br>Reproduce: <code>netdes run {} --seed {}</code> (the scenario text below includes any <code>--set</code> overrides).</p>",
        esc(scenario_file),
        s.seed,
        s.sim_time_s,
        s.events,
        status,
        esc(&s.trace_digest),
        esc(scenario_file),
        s.seed
    );
    b.push_str("<p class=\"meta\">Data: <code>summary.json</code>");
    for f in ["tcp-series.csv", "flow-series.csv", "link-series.csv"] {
        if dir.join(f).exists() {
            let _ = write!(b, ", <a href=\"{f}\"><code>{f}</code></a>");
        }
    }
    b.push_str(".</p>\n");

    b.push_str("<h2>Flows</h2>\n");
    let flow_series = flows.series(
        &["flow"],
        ("t_ns", 1e-9),
        ("throughput_bps", 1.0),
        |_, _| true,
    );
    if !flow_series.is_empty() {
        let lines: Vec<Line> = flow_series
            .into_iter()
            .map(|(name, points)| Line { name, points })
            .collect();
        let n = lines.len();
        b.push_str(&figure(
            line_plot(
                "Throughput per flow (received)",
                "time (s)",
                "bit/s",
                &lines,
            ),
            too_many(n),
        ));
    }
    let rtt: Vec<Line> = flows
        .series(&["flow"], ("t_ns", 1e-9), ("rtt_ns", 1e-6), |_, _| true)
        .into_iter()
        .map(|(name, points)| Line { name, points })
        .collect();
    if !rtt.is_empty() {
        b.push_str(&figure(
            line_plot(
                "RTT per flow (mean of each interval's samples)",
                "time (s)",
                "rtt (ms)",
                &rtt,
            ),
            too_many(rtt.len()),
        ));
    }
    let cwnd = tcp.series(&["node", "conn"], ("t_ns", 1e-9), ("cwnd", 1.0), |_, _| {
        true
    });
    let senders: Vec<(String, Vec<(f64, f64)>)> =
        cwnd.into_iter().filter(|(_, p)| p.len() >= 2).collect();
    if !senders.is_empty() {
        let lines: Vec<Line> = senders
            .iter()
            .map(|(n, p)| Line {
                name: n.clone(),
                points: p.clone(),
            })
            .collect();
        b.push_str(&figure(
            line_plot(
                "Congestion window per TCP connection",
                "time (s)",
                "cwnd (bytes)",
                &lines,
            ),
            too_many(lines.len()),
        ));
        let names: Vec<&String> = senders.iter().map(|(n, _)| n).collect();
        let rtt: Vec<Line> = tcp
            .series(
                &["node", "conn"],
                ("t_ns", 1e-9),
                ("srtt_us", 1e-3),
                |_, y| y > 0.0,
            )
            .into_iter()
            .filter(|(n, _)| names.contains(&n))
            .map(|(name, points)| Line { name, points })
            .collect();
        if !rtt.is_empty() {
            b.push_str(&figure(
                line_plot(
                    "Smoothed RTT per TCP connection",
                    "time (s)",
                    "srtt (ms)",
                    &rtt,
                ),
                too_many(rtt.len()),
            ));
        }
    }
    let flow_rows: Vec<Vec<String>> = s
        .flows
        .iter()
        .map(|f| {
            vec![
                f.id.clone(),
                format!("{} → {}", f.src, f.dst),
                f.proto.clone(),
                f.tx_bytes.to_string(),
                f.rx_bytes.to_string(),
                si(f.goodput_bps),
                f.lost_packets.to_string(),
                f.rtt_ms
                    .map(|r| format!("{:.3} / {:.3} / {:.3}", r.min, r.mean, r.max))
                    .unwrap_or_else(|| "–".into()),
                f.retransmits
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "–".into()),
                f.state.clone().or(f.error.clone()).unwrap_or_default(),
            ]
        })
        .collect();
    if flow_rows.is_empty() {
        b.push_str("<p class=\"note\">This scenario has no flows.</p>\n");
    } else {
        b.push_str(&table(
            &[
                "flow",
                "path",
                "proto",
                "tx bytes",
                "rx bytes",
                "goodput bit/s",
                "lost",
                "rtt min/mean/max ms",
                "retrans",
                "state",
            ],
            3,
            &flow_rows,
        ));
    }

    b.push_str("<h2>Links</h2>\n");
    // The busiest directions: by bytes sent, and by the deepest queue.
    let top = |key: &dyn Fn(&crate::LinkSummary) -> u64| -> Vec<&str> {
        let mut v: Vec<&crate::LinkSummary> = s.links.iter().filter(|l| key(l) > 0).collect();
        v.sort_by_key(|l| std::cmp::Reverse(key(l)));
        v.iter().take(TOP_LINKS).map(|l| l.id.as_str()).collect()
    };
    let busy = top(&|l| l.tx_bytes);
    let queued = top(&|l| l.max_queue_packets);
    let queue: Vec<Line> = links
        .series(&["link"], ("t_ns", 1e-9), ("queue_packets", 1.0), |_, _| {
            true
        })
        .into_iter()
        .filter(|(n, _)| queued.contains(&n.as_str()))
        .map(|(name, points)| Line { name, points })
        .collect();
    if !queue.is_empty() {
        let note = (s.links.iter().filter(|l| l.max_queue_packets > 0).count() > TOP_LINKS)
            .then(|| format!("The {TOP_LINKS} directions with the deepest queues; all are in link-series.csv."));
        b.push_str(&figure(
            line_plot(
                "Queue occupancy per link direction",
                "time (s)",
                "packets waiting",
                &queue,
            ),
            note,
        ));
    }
    let through: Vec<Line> = links
        .series(
            &["link"],
            ("t_ns", 1e-9),
            ("throughput_bps", 1.0),
            |_, _| true,
        )
        .into_iter()
        .filter(|(n, _)| busy.contains(&n.as_str()))
        .map(|(name, points)| Line { name, points })
        .collect();
    if !through.is_empty() {
        let note = (s.links.iter().filter(|l| l.tx_bytes > 0).count() > TOP_LINKS).then(|| {
            format!("The {TOP_LINKS} directions that sent the most; all are in link-series.csv.")
        });
        b.push_str(&figure(
            line_plot(
                "Throughput per link direction (sent, wire bytes)",
                "time (s)",
                "bit/s",
                &through,
            ),
            note,
        ));
    }
    if links.rows.is_empty() && flows.rows.is_empty() {
        b.push_str("<p class=\"note\">No time series were recorded (set <code>record: (series_interval: \"10ms\")</code> or run with <code>--report</code>).</p>\n");
    }
    let link_rows: Vec<Vec<String>> = s
        .links
        .iter()
        .filter(|l| l.tx_packets > 0)
        .map(|l| {
            vec![
                l.id.clone(),
                l.tx_packets.to_string(),
                l.tx_bytes.to_string(),
                format!("{:.1}%", l.utilization * 100.0),
                l.max_queue_packets.to_string(),
                l.queue_drops.to_string(),
                l.aqm_drops.to_string(),
                l.ecn_marks.to_string(),
                l.loss_drops.to_string(),
                l.down_drops.to_string(),
            ]
        })
        .collect();
    b.push_str(&table(
        &[
            "direction",
            "tx packets",
            "tx bytes",
            "utilization",
            "max queue",
            "queue drops",
            "aqm drops",
            "ecn marks",
            "loss drops",
            "down drops",
        ],
        1,
        &link_rows,
    ));
    let idle = s.links.len() - link_rows.len();
    if idle > 0 {
        let _ = writeln!(
            b,
            "<p class=\"note\">{idle} link directions carried nothing and are not listed.</p>"
        );
    }

    if !s.apps.is_empty() {
        b.push_str("<h2>Apps</h2>\n");
        for a in &s.apps {
            let _ = writeln!(
                b,
                "<h3>{} on {}</h3>\n<pre>{}</pre>",
                esc(&a.app),
                esc(&a.node),
                esc(&a.lines.join("\n"))
            );
        }
    }
    let _ = writeln!(
        b,
        "<h2>Scenario</h2>\n<p class=\"meta\"><code>{}</code>, seed {}</p>\n<pre>{}</pre>",
        esc(scenario_file),
        s.seed,
        esc(scenario_source)
    );
    Ok(page(&format!("netdes: {}", s.scenario), &b))
}

/// The report of a sweep, from its manifest and rows (canonical order).
pub fn sweep_report(m: &Manifest, rows: &[ResultRow]) -> String {
    let metrics = m.metric_names();
    let agg = aggregate(rows, &metrics);
    let mut b = String::new();
    let total = m.points * m.seeds.len() as u64;
    let _ = writeln!(b, "<h1>Sweep {}</h1>", esc(&m.name));
    let _ = writeln!(
        b,
        "<p class=\"meta\">Base scenario <code>{}</code>, {} points × {} seeds = {} runs; {} in these results{}. netdes {}, fingerprint <code>{}</code>.</p>",
        esc(&m.base),
        m.points,
        m.seeds.len(),
        total,
        rows.len(),
        if rows.iter().any(|r| !r.complete) {
            format!(", <span class=\"partial\">{} cut short by a bound</span>", rows.iter().filter(|r| !r.complete).count())
        } else {
            String::new()
        },
        esc(&m.netdes_version),
        esc(&m.fingerprint)
    );
    b.push_str("<p class=\"meta\">Each point is the mean across seeds; bars are 95% confidence intervals of the mean (Student t). Data: <a href=\"results.csv\"><code>results.csv</code></a>, <a href=\"aggregate.csv\"><code>aggregate.csv</code></a>.</p>\n");
    let axis_rows: Vec<Vec<String>> = m
        .axes
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.path.clone(),
                a.scale.clone(),
                a.values
                    .iter()
                    .map(|v| v.value.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    if !axis_rows.is_empty() {
        b.push_str(&table(&["axis", "path", "scale", "values"], 4, &axis_rows));
    }
    let _ = writeln!(
        b,
        "<p class=\"meta\">Seeds: {}. Metrics: {}.{}</p>",
        m.seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        m.metrics
            .0
            .iter()
            .map(|(n, e)| format!("<code>{}</code> = <code>{}</code>", esc(n), esc(e)))
            .collect::<Vec<_>>()
            .join("; "),
        if m.constraints.is_empty() {
            String::new()
        } else {
            format!(
                " Constraints: {}.",
                m.constraints
                    .iter()
                    .map(|c| format!("<code>{}</code>", esc(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );

    for metric in &metrics {
        let _ = writeln!(b, "<h2>{}</h2>", esc(metric));
        let plots = metric_plots(m, &agg, metric);
        if plots.is_empty() {
            b.push_str(if m.axes.is_empty() {
                "<p class=\"note\">The sweep has no axes, so nothing to plot against: its one point is in the table below.</p>\n"
            } else {
                "<p class=\"note\">No values to plot.</p>\n"
            });
        }
        for (svg, note) in plots {
            b.push_str(&figure(svg, note));
        }
    }

    if agg.len() <= 500 {
        b.push_str("<h2>All points</h2>\n");
        let mut head: Vec<String> = vec!["point".into()];
        head.extend(m.axes.iter().map(|a| a.name.clone()));
        head.push("runs".into());
        for metric in &metrics {
            head.push(format!("{metric} (mean ± ci95)"));
        }
        let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
        let rows: Vec<Vec<String>> = agg
            .iter()
            .map(|a| {
                let mut r = vec![a.point.to_string()];
                r.extend(a.params.0.iter().map(|(_, v)| v.clone()));
                r.push(a.runs.to_string());
                for metric in &metrics {
                    r.push(match a.metrics.get(metric) {
                        Some(st) => match (st.mean, st.ci95) {
                            (Some(mu), Some(ci)) => format!("{} ± {}", si(mu), si(ci)),
                            (Some(mu), None) => si(mu),
                            _ => "–".into(),
                        },
                        None => "–".into(),
                    });
                }
                r
            })
            .collect();
        b.push_str(&table(&head_refs, 1 + m.axes.len(), &rows));
    }
    page(&format!("netdes sweep: {}", m.name), &b)
}

/// The plots of one metric: against each axis, one line per value of each other group.
fn metric_plots(
    m: &Manifest,
    agg: &[PointAggregate],
    metric: &str,
) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    if m.axes.is_empty() {
        return out;
    }
    let groups: Vec<usize> = {
        let mut g: Vec<usize> = m.axes.iter().map(|a| a.group).collect();
        g.dedup();
        g
    };
    for (xi, xa) in m.axes.iter().enumerate() {
        let numeric = xa.values.iter().all(|v| v.x.is_some());
        let log_x =
            numeric && xa.scale == "log" && xa.values.iter().all(|v| v.x.is_some_and(|x| x > 0.0));
        let ticks: Option<Vec<String>> =
            (!numeric).then(|| xa.values.iter().map(|v| v.value.clone()).collect());
        let x_of = |value: &str| -> Option<f64> {
            let i = xa.values.iter().position(|v| v.value == value)?;
            match xa.values[i].x {
                Some(x) if numeric && log_x => Some(x.log10()),
                Some(x) if numeric => Some(x),
                _ => Some(i as f64),
            }
        };
        let others: Vec<Option<usize>> = {
            let g: Vec<Option<usize>> = groups
                .iter()
                .filter(|&&g| g != xa.group)
                .map(|&g| Some(g))
                .collect();
            if g.is_empty() {
                vec![None]
            } else {
                g
            }
        };
        for line_group in others {
            // Axes neither on x nor naming the lines are held at their first value.
            let fixed: Vec<(usize, &str)> = m
                .axes
                .iter()
                .enumerate()
                .filter(|(_, a)| a.group != xa.group && Some(a.group) != line_group)
                .map(|(i, a)| (i, a.values[0].value.as_str()))
                .collect();
            let mut lines: Vec<(String, Vec<CiPoint>)> = Vec::new();
            for a in agg {
                if fixed
                    .iter()
                    .any(|&(i, v)| a.params.0.get(i).map(|p| p.1.as_str()) != Some(v))
                {
                    continue;
                }
                let Some(x) = a.params.0.get(xi).and_then(|p| x_of(&p.1)) else {
                    continue;
                };
                let Some(st) = a.metrics.get(metric) else {
                    continue;
                };
                let Some(mean) = st.mean else { continue };
                let ci = st.ci95.unwrap_or(0.0);
                let label = match line_group {
                    None => String::new(),
                    Some(g) => m
                        .axes
                        .iter()
                        .enumerate()
                        .filter(|(_, ax)| ax.group == g)
                        .map(|(i, ax)| {
                            format!(
                                "{}={}",
                                ax.name,
                                a.params.0.get(i).map_or("", |p| p.1.as_str())
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(" "),
                };
                let point = CiPoint {
                    x,
                    mean,
                    lo: mean - ci,
                    hi: mean + ci,
                };
                match lines.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, pts)) => pts.push(point),
                    None => lines.push((label, vec![point])),
                }
            }
            if lines.is_empty() {
                continue;
            }
            let by = line_group
                .map(|g| {
                    m.axes
                        .iter()
                        .filter(|a| a.group == g)
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .map(|n| format!(", one line per {n}"))
                .unwrap_or_default();
            let title = format!("{metric} vs {}{by}", xa.name);
            let x_desc = if log_x {
                format!("{} (log scale)", xa.name)
            } else {
                xa.name.clone()
            };
            let svg = ci_plot(&title, &x_desc, metric, &lines, ticks.as_deref(), log_x);
            let note = (!fixed.is_empty()).then(|| {
                format!(
                    "Other axes held at: {}.",
                    fixed
                        .iter()
                        .map(|&(i, v)| format!("{}={v}", m.axes[i].name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
            let note = match (note, too_many(lines.len())) {
                (Some(a), Some(b)) => Some(format!("{a} {b}")),
                (a, b) => a.or(b),
            };
            out.push((svg, note));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimation_keeps_extremes_and_order() {
        let pts: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (i as f64, ((i * 7919) % 1000) as f64))
            .collect();
        let d = decimate(&pts, 100);
        assert!(d.len() <= 100);
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(d.iter().map(|p| p.1).fold(f64::MIN, f64::max), 999.0);
        assert_eq!(d.iter().map(|p| p.1).fold(f64::MAX, f64::min), 0.0);
    }

    #[test]
    fn plots_are_svg_drawn_by_plotters_and_text_is_escaped() {
        let svg = line_plot(
            "a <b> & c",
            "time (s)",
            "bit/s",
            &[Line {
                name: "f<1>".into(),
                points: vec![(0.0, 1.0), (1.0, 3.0)],
            }],
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<polyline") || svg.contains("<path"), "{svg}");
        assert!(svg.contains("a &lt;b&gt; &amp; c"), "{svg}");
        assert!(!svg.contains("f<1>"));
        let empty = line_plot("t", "x", "y", &[]);
        assert!(empty.contains("could not be drawn: no data"));
        assert_eq!(si(12_500_000.0), "12.50M");
        assert_eq!(si(3.0), "3");
        assert_eq!(
            esc("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }

    fn manifest(axes: Vec<crate::sweep::ManifestAxis>, points: u64) -> Manifest {
        Manifest {
            name: "t".into(),
            netdes_version: "0".into(),
            fingerprint: "f".into(),
            base: "b.ron".into(),
            set: vec![],
            axes,
            constraints: vec![],
            seeds: vec![1, 2],
            metrics: crate::sweep::Ordered(vec![("m".into(), "events".into())]),
            points,
        }
    }

    fn axis(
        name: &str,
        group: usize,
        scale: &str,
        values: &[(&str, Option<f64>)],
    ) -> crate::sweep::ManifestAxis {
        crate::sweep::ManifestAxis {
            name: name.into(),
            path: name.into(),
            group,
            scale: scale.into(),
            values: values
                .iter()
                .map(|(v, x)| crate::sweep::AxisValue {
                    value: v.to_string(),
                    x: *x,
                })
                .collect(),
        }
    }

    fn row(point: u64, seed: u64, params: &[(&str, &str)], m: f64) -> ResultRow {
        ResultRow {
            point,
            seed,
            params: crate::sweep::Ordered(
                params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            metrics: crate::sweep::Ordered(vec![("m".into(), Some(m))]),
            complete: true,
            stop_reason: "end_time".into(),
            trace_digest: "d".into(),
        }
    }

    #[test]
    fn sweep_reports_plot_each_axis_with_one_line_per_other_group() {
        // A log axis and a categorical axis zipped with a numeric one; point (1e-3, b) is
        // missing (a constraint).
        let m = manifest(
            vec![
                axis(
                    "loss",
                    0,
                    "log",
                    &[("0.001", Some(1e-3)), ("0.1", Some(0.1))],
                ),
                axis("cc", 1, "list", &[("a", None), ("b", None)]),
                axis("rate", 1, "list", &[("10", Some(10.0)), ("20", Some(20.0))]),
            ],
            3,
        );
        let mut rows = Vec::new();
        for (p, (loss, cc, rate)) in [("0.001", "a", "10"), ("0.1", "a", "10"), ("0.1", "b", "20")]
            .iter()
            .enumerate()
        {
            for seed in [1, 2] {
                rows.push(row(
                    p as u64,
                    seed,
                    &[("loss", loss), ("cc", cc), ("rate", rate)],
                    (p * 10 + seed as usize) as f64,
                ));
            }
        }
        let html = sweep_report(&m, &rows);
        for title in [
            "m vs loss, one line per cc, rate",
            "m vs cc, one line per loss",
            "m vs rate, one line per loss",
        ] {
            assert!(html.contains(title), "{title}");
        }
        assert_eq!(html.matches("<svg").count(), 3);
        assert!(html.contains("cc=b rate=20"));
        assert!(!html.contains("could not be drawn"));
        let empty = sweep_report(&manifest(vec![], 1), &[row(0, 1, &[], 1.0)]);
        assert!(empty.contains("nothing to plot"));
    }
}

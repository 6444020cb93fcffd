//! Sampled time series of a run: `flow-series.csv` (each flow's received bytes and
//! throughput) and `link-series.csv` (each link direction's queue and throughput), one row
//! per entity and sample time; and a reader for them and for `tcp-series.csv`, for the
//! HTML report.
//!
//! The values are sampled by the runner at fixed steps of simulated time, after every
//! event up to and including that time. Throughputs are over the step that ends at the
//! row's time, in whole bits per second; a flow's `rtt_ns` is the mean of the RTT samples
//! taken during the step (empty without samples).

use super::sweep::csv_field;
use super::LineFile;
use std::path::Path;

/// The columns of `flow-series.csv`.
pub const FLOW_SERIES_COLUMNS: [&str; 6] = [
    "t_ns",
    "flow",
    "rx_bytes",
    "tx_bytes",
    "throughput_bps",
    "rtt_ns",
];

/// The columns of `link-series.csv`.
pub const LINK_SERIES_COLUMNS: [&str; 6] = [
    "t_ns",
    "link",
    "queue_packets",
    "queue_bytes",
    "tx_bytes",
    "throughput_bps",
];

/// Bits per second over `step_ns` for `bytes` (rounded down).
pub fn bits_per_second(bytes: u64, step_ns: u64) -> u64 {
    (bytes as u128 * 8 * 1_000_000_000 / step_ns.max(1) as u128) as u64
}

/// Writes `flow-series.csv` or `link-series.csv`.
pub struct SeriesCsv {
    file: LineFile,
}

impl SeriesCsv {
    pub fn create_flows(path: &Path) -> std::io::Result<Self> {
        Ok(SeriesCsv {
            file: LineFile::create(path, Some(&FLOW_SERIES_COLUMNS.join(",")))?,
        })
    }
    pub fn create_links(path: &Path) -> std::io::Result<Self> {
        Ok(SeriesCsv {
            file: LineFile::create(path, Some(&LINK_SERIES_COLUMNS.join(",")))?,
        })
    }
    /// A row: the time, the entity's name, then the numbers (empty where `None`).
    pub fn row(&mut self, t_ns: u64, name: &str, values: &[Option<u64>]) {
        self.file.write_line(|l| {
            l.push_str(&t_ns.to_string());
            l.push(',');
            l.push_str(&csv_field(name));
            for v in values {
                l.push(',');
                if let Some(v) = v {
                    l.push_str(&v.to_string());
                }
            }
        });
    }
    pub fn finish(&mut self) -> Result<(), String> {
        self.file.finish()
    }
}

/// A CSV file read back: the header and the records, fields unquoted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Parses CSV text (RFC 4180 quoting; no line breaks inside fields).
    pub fn parse(text: &str) -> Table {
        let mut lines = text.lines().filter(|l| !l.is_empty()).map(split_record);
        Table {
            columns: lines.next().unwrap_or_default(),
            rows: lines.collect(),
        }
    }

    /// Reads `path`; an absent file is an empty table.
    pub fn read(path: &Path) -> std::io::Result<Table> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(Table::parse(&t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Table::default()),
            Err(e) => Err(e),
        }
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Series keyed by the concatenated `key` columns, in order of first appearance, of
    /// (x, y) points: x from column `x` scaled by `x_scale`, y from column `y` scaled by
    /// `y_scale`. Rows whose numbers don't parse are skipped; `keep` filters the points.
    pub fn series(
        &self,
        key: &[&str],
        x: (&str, f64),
        y: (&str, f64),
        keep: impl Fn(f64, f64) -> bool,
    ) -> Vec<(String, Vec<(f64, f64)>)> {
        let (Some(xi), Some(yi)) = (self.column(x.0), self.column(y.0)) else {
            return Vec::new();
        };
        let ki: Vec<usize> = key.iter().filter_map(|k| self.column(k)).collect();
        let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
        let mut index: std::collections::BTreeMap<String, usize> = Default::default();
        for r in &self.rows {
            let (Some(xv), Some(yv)) = (
                r.get(xi).and_then(|v| v.parse::<f64>().ok()),
                r.get(yi).and_then(|v| v.parse::<f64>().ok()),
            ) else {
                continue;
            };
            let (xv, yv) = (xv * x.1, yv * y.1);
            if !keep(xv, yv) {
                continue;
            }
            let name = ki
                .iter()
                .filter_map(|&i| r.get(i).map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ");
            let at = *index.entry(name.clone()).or_insert_with(|| {
                out.push((name, Vec::new()));
                out.len() - 1
            });
            out[at].1.push((xv, yv));
        }
        out
    }
}

fn split_record(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_unquote_fields_and_group_series_by_key() {
        let t = Table::parse(
            "t_ns,link,q\n1000000,\"a,b\",3\n2000000,\"a,b\",5\n2000000,c,x\n3000000,c,1\n",
        );
        assert_eq!(t.rows[0], ["1000000", "a,b", "3"]);
        let s = t.series(&["link"], ("t_ns", 1e-9), ("q", 1.0), |_, _| true);
        assert_eq!(
            s,
            vec![
                ("a,b".to_string(), vec![(0.001, 3.0), (0.002, 5.0)]),
                ("c".to_string(), vec![(0.003, 1.0)]),
            ]
        );
        assert_eq!(bits_per_second(1250, 1_000_000), 10_000_000);
    }
}

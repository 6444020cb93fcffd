//! Sweep metrics: numbers picked from a run's `summary.json`, by a path and optionally a
//! function over several values.
//!
//! ```text
//! events                                   a top-level number
//! flows[flow0].goodput_bps                 the flow whose id is flow0
//! links["left-right:left->right"].utilization
//! flows[0].rtt_ms.mean                     by position
//! sum(flows[*].goodput_bps)                every flow; also mean, min, max, count, jain
//! ```
//!
//! `[name]` selects the element of a list whose `id` (flows, links) or `name` (nodes) is
//! `name`. A path that selects several values (`[*]`) needs a function. Values that are
//! absent or `null` (a flow without RTT samples) are left out; a metric with nothing left
//! is `null` (except `count`, which is 0).

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    Sum,
    Mean,
    Min,
    Max,
    Count,
    /// Jain's fairness index, (Σx)² / (n Σx²): 1 when all values are equal, 1/n when one
    /// value has everything.
    Jain,
}

#[derive(Clone, Debug, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
    Named(String),
    All,
}

/// A parsed metric expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    func: Option<Func>,
    path: Vec<Seg>,
}

/// Top-level keys of `summary.json` a metric may start from.
const ROOTS: [&str; 6] = [
    "sim_time_s",
    "events",
    "flows",
    "links",
    "nodes",
    "captures",
];

/// The metrics a sweep records when its file names none.
pub const DEFAULT_METRICS: [(&str, &str); 5] = [
    ("goodput_bps", "sum(flows[*].goodput_bps)"),
    ("rtt_ms", "mean(flows[*].rtt_ms.mean)"),
    ("lost_packets", "sum(flows[*].lost_packets)"),
    ("retransmits", "sum(flows[*].retransmits)"),
    ("fairness", "jain(flows[*].goodput_bps)"),
];

impl Metric {
    pub fn parse(text: &str) -> Result<Metric, String> {
        let t = text.trim();
        let (func, inner) = match t.split_once('(') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix(')')
                    .ok_or_else(|| format!("expected `)` at the end of `{t}`"))?;
                let f = match name.trim() {
                    "sum" => Func::Sum,
                    "mean" => Func::Mean,
                    "min" => Func::Min,
                    "max" => Func::Max,
                    "count" => Func::Count,
                    "jain" => Func::Jain,
                    other => {
                        return Err(format!(
                        "unknown function `{other}`; expected one of: sum, mean, min, max, count, jain"
                    ))
                    }
                };
                (Some(f), inner.trim())
            }
            None => (None, t),
        };
        let path = parse_path(inner)?;
        match path.first() {
            Some(Seg::Key(k)) if ROOTS.contains(&k.as_str()) => {}
            _ => {
                return Err(format!(
                    "`{inner}` does not start with a summary.json key; expected one of: {}",
                    ROOTS.join(", ")
                ))
            }
        }
        if func.is_none() && path.contains(&Seg::All) {
            return Err(format!(
                "`{inner}` selects several values: wrap it in sum, mean, min, max, count or jain"
            ));
        }
        Ok(Metric { func, path })
    }

    /// The metric's value in a run's summary (as JSON).
    pub fn eval(&self, summary: &Value) -> Option<f64> {
        let mut values = Vec::new();
        select(summary, &self.path, &mut values);
        let n = values.len() as f64;
        match self.func {
            None => values.first().copied(),
            Some(Func::Count) => Some(n),
            Some(_) if values.is_empty() => None,
            Some(Func::Sum) => Some(values.iter().sum()),
            Some(Func::Mean) => Some(values.iter().sum::<f64>() / n),
            Some(Func::Min) => values.iter().copied().reduce(f64::min),
            Some(Func::Max) => values.iter().copied().reduce(f64::max),
            Some(Func::Jain) => {
                let sum: f64 = values.iter().sum();
                let squares: f64 = values.iter().map(|x| x * x).sum();
                (squares > 0.0).then(|| sum * sum / (n * squares))
            }
        }
    }
}

fn parse_path(s: &str) -> Result<Vec<Seg>, String> {
    let mut out = Vec::new();
    let mut rest = s;
    let bad = |why: &str| format!("invalid metric path `{s}`: {why}");
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = if let Some(quoted) = r.strip_prefix('"') {
                quoted
                    .find('"')
                    .map(|i| i + 2)
                    .ok_or_else(|| bad("unterminated quote"))?
            } else {
                r.find(']').ok_or_else(|| bad("expected `]`"))?
            };
            let inner = &r[..end];
            let r = r[end..]
                .strip_prefix(']')
                .ok_or_else(|| bad("expected `]`"))?;
            out.push(if inner == "*" {
                Seg::All
            } else if let Ok(i) = inner.parse::<usize>() {
                Seg::Index(i)
            } else {
                let name = inner.trim_matches('"');
                if name.is_empty() {
                    return Err(bad("empty `[]`"));
                }
                Seg::Named(name.to_string())
            });
            rest = r;
        } else {
            let r = if out.is_empty() {
                rest
            } else {
                rest.strip_prefix('.')
                    .ok_or_else(|| bad("expected `.` or `[`"))?
            };
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(bad("expected a key of letters, digits and `_`"));
            }
            out.push(Seg::Key(key.to_string()));
            rest = &r[end..];
        }
    }
    if out.is_empty() {
        return Err(bad("empty"));
    }
    Ok(out)
}

fn select(v: &Value, path: &[Seg], out: &mut Vec<f64>) {
    let Some((seg, rest)) = path.split_first() else {
        match v {
            Value::Number(n) => out.extend(n.as_f64()),
            Value::Bool(b) => out.push(f64::from(u8::from(*b))),
            _ => {}
        }
        return;
    };
    match (seg, v) {
        (Seg::Key(k), Value::Object(m)) => {
            if let Some(x) = m.get(k) {
                select(x, rest, out)
            }
        }
        (Seg::Index(i), Value::Array(a)) => {
            if let Some(x) = a.get(*i) {
                select(x, rest, out)
            }
        }
        (Seg::All, Value::Array(a)) => a.iter().for_each(|x| select(x, rest, out)),
        (Seg::All, Value::Object(m)) => m.values().for_each(|x| select(x, rest, out)),
        (Seg::Named(name), Value::Array(a)) => {
            let named = |x: &&Value| {
                ["id", "name"]
                    .iter()
                    .any(|k| x.get(k).and_then(Value::as_str) == Some(name.as_str()))
            };
            if let Some(x) = a.iter().find(named) {
                select(x, rest, out)
            }
        }
        (Seg::Named(name), Value::Object(m)) => {
            if let Some(x) = m.get(name) {
                select(x, rest, out)
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Value {
        serde_json::json!({
            "events": 1234,
            "flows": [
                {"id": "a", "goodput_bps": 3.0, "rtt_ms": {"mean": 10.0}, "extra": {"rto_timeouts": 2.0}},
                {"id": "b", "goodput_bps": 1.0, "rtt_ms": null},
            ],
            "links": [{"id": "l:x->y", "utilization": 0.5}],
            "nodes": [{"name": "h1", "counters": {"rx_frames": 7}}],
        })
    }

    fn eval(m: &str) -> Option<f64> {
        Metric::parse(m)
            .unwrap_or_else(|e| panic!("{e}"))
            .eval(&summary())
    }

    #[test]
    fn metrics_select_by_key_name_index_and_wildcard() {
        assert_eq!(eval("events"), Some(1234.0));
        assert_eq!(eval("flows[b].goodput_bps"), Some(1.0));
        assert_eq!(eval("flows[0].extra.rto_timeouts"), Some(2.0));
        assert_eq!(eval(r#"links["l:x->y"].utilization"#), Some(0.5));
        assert_eq!(eval("nodes[h1].counters.rx_frames"), Some(7.0));
        assert_eq!(eval("sum(flows[*].goodput_bps)"), Some(4.0));
        assert_eq!(eval("mean(flows[*].rtt_ms.mean)"), Some(10.0));
        assert_eq!(eval("max(flows[*].goodput_bps)"), Some(3.0));
        assert_eq!(eval("count(flows[*].rtt_ms.mean)"), Some(1.0));
        // (3+1)^2 / (2 * (9+1)) = 0.8
        assert_eq!(eval("jain(flows[*].goodput_bps)"), Some(0.8));
        assert_eq!(eval("flows[c].goodput_bps"), None);
        assert_eq!(eval("sum(flows[*].retransmits)"), None);
    }

    #[test]
    fn bad_metrics_are_explained() {
        let e = |m: &str| Metric::parse(m).unwrap_err();
        assert!(e("flows[*].goodput_bps").contains("wrap it in sum"));
        assert!(e("median(flows[*].x)").contains("unknown function `median`"));
        assert!(e("goodput").contains("does not start with a summary.json key"));
        assert!(e("flows[0").contains("expected `]`"));
        assert!(e("sum(flows[*].x").contains("expected `)`"));
    }
}

//! The sweep file (RON) and its expansion into points.
//!
//! ```ron
//! Sweep(
//!     name: "queue-study",                  // default: the file name without .ron
//!     base: "../examples/dumbbell.ron",     // relative to this file
//!     set: ["duration=5s"],                 // fixed overrides, as --set takes them
//!     axes: [
//!         Axis(name: "cc", path: "sysctl[\"tcp_congestion_control\"]", values: ["reno", "cubic"]),
//!         Axis(name: "queue", path: "links[0].queue.limit",
//!              range: Linear(from: 20, to: 100, steps: 5), format: "{} packets"),
//!         Zip([
//!             Axis(name: "rate", path: "links[0].rate", values: [10, 100], format: "{}Mbps"),
//!             Axis(name: "delay", path: "links[0].delay", values: [40, 4], format: "{}ms"),
//!         ]),
//!     ],
//!     constraints: ["queue >= 40 || cc == \"reno\""],
//!     replications: 5,                      // seeds 1..=5 (or seeds: [1, 7, 42])
//!     metrics: { "goodput": "sum(flows[*].goodput_bps)" },
//! )
//! ```
//!
//! An axis item is an `Axis` or a `Zip` of axes that advance together; items combine as a
//! cartesian product, the first item varying slowest. Points that fail a constraint are
//! dropped before numbering, so point indices are dense.

use super::expr::{Expr, Value};
use super::metric::{Metric, DEFAULT_METRICS};
use crate::load::{error_at, load_str, ScenarioError};
use crate::schema::NamedMap;
use reports::sweep::{AxisValue, Manifest, ManifestAxis, Ordered};
use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Sweep")]
struct SweepDecl {
    #[serde(default)]
    name: Option<String>,
    base: String,
    #[serde(default)]
    set: Vec<String>,
    #[serde(default)]
    axes: Vec<AxisItem>,
    #[serde(default)]
    constraints: Vec<String>,
    #[serde(default)]
    seeds: Option<Vec<u64>>,
    #[serde(default)]
    replications: Option<u64>,
    #[serde(default)]
    metrics: NamedMap<String>,
}

#[derive(Debug, Deserialize)]
enum AxisItem {
    Axis(AxisDecl),
    Zip(Vec<AxisDecl>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Axis")]
struct AxisDecl {
    path: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    values: Option<Vec<ValueDecl>>,
    #[serde(default)]
    range: Option<RangeDecl>,
    /// A template for each value's text: `{}` is replaced by the value.
    #[serde(default)]
    format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
enum RangeDecl {
    /// `steps` evenly spaced values from `from` to `to`, both included.
    Linear { from: f64, to: f64, steps: u32 },
    /// `steps` values from `from` to `to` (both > 0), evenly spaced on a log scale.
    Log { from: f64, to: f64, steps: u32 },
}

/// A value in an axis' `values` list: a number, a string or a boolean.
#[derive(Debug, Clone)]
enum ValueDecl {
    Int(i128),
    Float(f64),
    Text(String),
    Bool(bool),
}

impl<'de> Deserialize<'de> for ValueDecl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ValueDecl;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, a string (the text --set would take) or a boolean")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ValueDecl, E> {
                Ok(ValueDecl::Int(v.into()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ValueDecl, E> {
                Ok(ValueDecl::Int(v.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ValueDecl, E> {
                Ok(ValueDecl::Float(v))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ValueDecl, E> {
                Ok(ValueDecl::Bool(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ValueDecl, E> {
                Ok(ValueDecl::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Column names of the results files that axes and metrics may not take.
const RESERVED: [&str; 7] = [
    "point",
    "seed",
    "complete",
    "stop_reason",
    "trace_digest",
    "runs",
    "partial",
];

/// A number as an axis value's text: integers without a fraction, others in their
/// shortest exact form.
pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// `x` rounded to 6 significant digits: range values read `0.00368403`, not
/// `0.0036840314986403863`.
fn round_significant(x: f64) -> f64 {
    format!("{x:.5e}").parse().unwrap_or(x)
}

/// One parameter of the study.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub name: String,
    /// The scenario value it sets, as `--set` takes paths.
    pub path: String,
    /// Index of the axis item (an `Axis` or a `Zip`) it belongs to.
    pub group: usize,
    pub scale: Scale,
    pub values: Vec<AxisValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log,
    List,
}

impl Scale {
    fn name(self) -> &'static str {
        match self {
            Scale::Linear => "linear",
            Scale::Log => "log",
            Scale::List => "list",
        }
    }
}

/// A loaded sweep: the base scenario, the axes, the points that pass the constraints, the
/// seeds and the metrics.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub name: String,
    /// The sweep file, as named on the command line.
    pub file: String,
    /// The base scenario file (resolved against the sweep file's directory).
    pub base_path: PathBuf,
    /// The base scenario's text, as read.
    pub base_source: String,
    /// The base as the sweep file names it.
    pub base_decl: String,
    /// Fixed overrides applied to every point before its axis values.
    pub set: Vec<String>,
    pub axes: Vec<Axis>,
    pub constraints: Vec<String>,
    /// Each point's value index on every axis, in canonical point order.
    pub points: Vec<Vec<usize>>,
    pub seeds: Vec<u64>,
    pub metrics: Vec<(String, String, Metric)>,
}

impl Sweep {
    /// Reads and checks a sweep file and its base scenario. Errors are located in the
    /// sweep file (or in the base scenario, for the base's own errors).
    pub fn load(path: &Path) -> Result<Sweep, ScenarioError> {
        let file = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: file.clone(),
            line: 1,
            col: 1,
            message: format!("cannot read the sweep file: {e}"),
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Sweep::from_str(&file, &source, dir)
    }

    /// Parses sweep file text named `file`; `dir` is where a relative `base` is found.
    pub fn from_str(file: &str, source: &str, dir: &Path) -> Result<Sweep, ScenarioError> {
        let decl: SweepDecl = ron::Options::default()
            .with_default_extension(
                ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES
                    | ron::extensions::Extensions::IMPLICIT_SOME,
            )
            .from_str(source)
            .map_err(|e| ScenarioError {
                file: file.to_string(),
                line: e.span.start.line.max(1),
                col: e.span.start.col.max(1),
                message: crate::load::explain_ron(&e.code),
            })?;
        let err = |path: &str, m: String| error_at(file, source, path, m);
        let base_path = dir.join(&decl.base);
        let base_source = std::fs::read_to_string(&base_path).map_err(|e| {
            err(
                "base",
                format!("cannot read the base scenario {}: {e}", base_path.display()),
            )
        })?;
        let base_file = base_path.display().to_string();
        // The base with the fixed overrides must load on its own.
        for (i, o) in decl.set.iter().enumerate() {
            if let Err(e) = load_str(&base_file, &base_source, std::slice::from_ref(o)) {
                if e.file == "--set" {
                    let why = e
                        .message
                        .split_once(": ")
                        .map_or(e.message.as_str(), |(_, w)| w);
                    return Err(err(&format!("set[{i}]"), why.to_string()));
                }
            }
        }
        let base = load_str(&base_file, &base_source, &decl.set)?;
        let name = match &decl.name {
            Some(n) if n.trim().is_empty() || n.contains('/') => {
                return Err(err(
                    "name",
                    "the sweep name must be non-empty and contain no '/'".into(),
                ))
            }
            Some(n) => n.clone(),
            None => Path::new(file)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "sweep".into()),
        };

        let mut axes: Vec<Axis> = Vec::new();
        for (g, item) in decl.axes.iter().enumerate() {
            let members: Vec<(String, &AxisDecl)> = match item {
                AxisItem::Axis(a) => vec![(format!("axes[{g}]"), a)],
                AxisItem::Zip(list) => {
                    if list.is_empty() {
                        return Err(err(
                            &format!("axes[{g}]"),
                            "a Zip needs at least one Axis".into(),
                        ));
                    }
                    list.iter()
                        .enumerate()
                        .map(|(i, a)| (format!("axes[{g}][0][{i}]"), a))
                        .collect()
                }
            };
            let first_len = axes.len();
            for (at, a) in members {
                let axis =
                    expand_axis(a, g).map_err(|(field, m)| err(&format!("{at}.{field}"), m))?;
                if axes.iter().any(|b| b.name == axis.name) {
                    return Err(err(
                        &format!("{at}.name"),
                        format!(
                            "two axes are named \"{}\"; give one a different `name`",
                            axis.name
                        ),
                    ));
                }
                // The path must lead somewhere in the base scenario.
                let probe = format!("{}={}", axis.path, axis.values[0].value);
                if let Err(e) = load_str(
                    &base_file,
                    &base_source,
                    &[decl.set.clone(), vec![probe]].concat(),
                ) {
                    if e.file == "--set" {
                        let why = e
                            .message
                            .split_once(": ")
                            .map_or(e.message.as_str(), |(_, w)| w);
                        return Err(err(&format!("{at}.path"), why.to_string()));
                    }
                }
                if let Some(prev) = axes[first_len..].first() {
                    if prev.values.len() != axis.values.len() {
                        return Err(err(
                            &at,
                            format!(
                                "zipped axes need the same number of values: \"{}\" has {}, \"{}\" has {}",
                                prev.name,
                                prev.values.len(),
                                axis.name,
                                axis.values.len()
                            ),
                        ));
                    }
                }
                axes.push(axis);
            }
        }

        let mut constraints = Vec::new();
        for (i, c) in decl.constraints.iter().enumerate() {
            let at = format!("constraints[{i}]");
            let e = Expr::parse(c).map_err(|m| err(&at, format!("invalid constraint: {m}")))?;
            for v in e.vars() {
                if !axes.iter().any(|a| a.name == v) {
                    return Err(err(
                        &at,
                        format!(
                            "the constraint names `{v}`, which is not an axis; axes: {} (give an axis a `name` to use it here)",
                            axes.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
            constraints.push((at, e));
        }

        let mut points = Vec::new();
        let groups = decl.axes.len();
        let group_len: Vec<usize> = (0..groups)
            .map(|g| {
                axes.iter()
                    .find(|a| a.group == g)
                    .map_or(1, |a| a.values.len())
            })
            .collect();
        let total: usize = group_len.iter().product();
        if total > 10_000_000 {
            return Err(err(
                "axes",
                format!("the axes make {total} points; at most 10000000"),
            ));
        }
        for n in 0..total {
            // Mixed radix, first group slowest.
            let mut rem = n;
            let mut pick = vec![0; groups];
            for g in (0..groups).rev() {
                pick[g] = rem % group_len[g];
                rem /= group_len[g];
            }
            let point: Vec<usize> = axes.iter().map(|a| pick[a.group]).collect();
            let var = |name: &str| -> Option<Value> {
                let i = axes.iter().position(|a| a.name == name)?;
                let v = &axes[i].values[point[i]];
                Some(match v.x {
                    Some(x) => Value::Num(x),
                    None => Value::Str(v.value.clone()),
                })
            };
            let mut keep = true;
            for (at, c) in &constraints {
                match c.eval(&var) {
                    Ok(Value::Bool(b)) => keep &= b,
                    Ok(v) => {
                        return Err(err(
                            at,
                            format!("the constraint gives {v}, not true or false"),
                        ))
                    }
                    Err(m) => {
                        return Err(err(
                            at,
                            format!("{m} (at a point with {})", describe(&axes, &point)),
                        ))
                    }
                }
            }
            if keep {
                points.push(point);
            }
        }
        if points.is_empty() {
            return Err(err(
                "constraints",
                "no point satisfies the constraints".into(),
            ));
        }

        let seeds = match (&decl.seeds, decl.replications) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "replications",
                    "give `seeds` or `replications`, not both".into(),
                ))
            }
            (Some(s), None) => {
                if s.is_empty() {
                    return Err(err("seeds", "at least one seed is needed".into()));
                }
                let mut seen = s.clone();
                seen.sort_unstable();
                if seen.windows(2).any(|w| w[0] == w[1]) {
                    return Err(err("seeds", "a seed is listed twice".into()));
                }
                s.clone()
            }
            (None, Some(0)) => {
                return Err(err(
                    "replications",
                    "replications must be at least 1".into(),
                ))
            }
            (None, Some(n)) => (1..=n).collect(),
            (None, None) => vec![base.scenario.seed],
        };

        let mut metrics = Vec::new();
        if decl.metrics.0.is_empty() {
            for (name, expr) in DEFAULT_METRICS {
                let m = Metric::parse(expr).map_err(|m| err("metrics", m))?;
                metrics.push((name.to_string(), expr.to_string(), m));
            }
        }
        for (name, expr) in &decl.metrics.0 {
            let m = Metric::parse(expr).map_err(|m| err(&format!("metrics[\"{name}\"]"), m))?;
            if RESERVED.contains(&name.as_str()) {
                return Err(err(
                    &format!("metrics[\"{name}\"]"),
                    format!(
                        "\"{name}\" names a column of its own in the results; choose another name"
                    ),
                ));
            }
            if axes.iter().any(|a| &a.name == name) {
                return Err(err(
                    &format!("metrics[\"{name}\"]"),
                    format!("\"{name}\" is already an axis name; metric and axis names share the result columns"),
                ));
            }
            metrics.push((name.clone(), expr.clone(), m));
        }

        Ok(Sweep {
            name,
            file: file.to_string(),
            base_path,
            base_source,
            base_decl: decl.base.clone(),
            set: decl.set,
            axes,
            constraints: decl.constraints,
            points,
            seeds,
            metrics,
        })
    }

    /// The `--set` overrides of point `p`: the fixed ones, then one per axis.
    pub fn overrides(&self, p: usize) -> Vec<String> {
        let mut o = self.set.clone();
        for (a, &v) in self.axes.iter().zip(&self.points[p]) {
            o.push(format!("{}={}", a.path, a.values[v].value));
        }
        o
    }

    /// Point `p`'s parameters: axis name -> value text.
    pub fn params(&self, p: usize) -> Ordered<String> {
        Ordered(
            self.axes
                .iter()
                .zip(&self.points[p])
                .map(|(a, &v)| (a.name.clone(), a.values[v].value.clone()))
                .collect(),
        )
    }

    /// Loads point `p` as a scenario (the base with its overrides).
    pub fn load_point(&self, p: usize) -> Result<crate::Loaded, ScenarioError> {
        load_str(
            &self.base_path.display().to_string(),
            &self.base_source,
            &self.overrides(p),
        )
    }

    /// Every run in canonical order: (point, seed), point-major.
    pub fn items(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        (0..self.points.len()).flat_map(move |p| self.seeds.iter().map(move |&s| (p, s)))
    }

    pub fn metric_names(&self) -> Vec<String> {
        self.metrics.iter().map(|(n, _, _)| n.clone()).collect()
    }

    /// `sweep.json`: everything that determines the results, and its fingerprint.
    pub fn manifest(&self) -> Manifest {
        let mut h = blake3::Hasher::new();
        let mut feed = |s: &str| {
            h.update(&(s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        };
        feed(env!("CARGO_PKG_VERSION"));
        feed(&self.base_source);
        for s in &self.set {
            feed(s);
        }
        for p in 0..self.points.len() {
            for o in self.overrides(p) {
                feed(&o);
            }
            feed("\n");
        }
        for s in &self.seeds {
            feed(&s.to_string());
        }
        for (n, e, _) in &self.metrics {
            feed(n);
            feed(e);
        }
        let fingerprint = h.finalize().to_hex()[..32].to_string();
        Manifest {
            name: self.name.clone(),
            netdes_version: env!("CARGO_PKG_VERSION").to_string(),
            fingerprint,
            base: self.base_decl.clone(),
            set: self.set.clone(),
            axes: self
                .axes
                .iter()
                .map(|a| ManifestAxis {
                    name: a.name.clone(),
                    path: a.path.clone(),
                    group: a.group,
                    scale: a.scale.name().to_string(),
                    values: a.values.clone(),
                })
                .collect(),
            constraints: self.constraints.clone(),
            seeds: self.seeds.clone(),
            metrics: Ordered(
                self.metrics
                    .iter()
                    .map(|(n, e, _)| (n.clone(), e.clone()))
                    .collect(),
            ),
            points: self.points.len() as u64,
        }
    }
}

/// "a=1, b=x" for messages.
fn describe(axes: &[Axis], point: &[usize]) -> String {
    axes.iter()
        .zip(point)
        .map(|(a, &v)| format!("{}={}", a.name, a.values[v].value))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An axis' values; errors name the offending field.
fn expand_axis(a: &AxisDecl, group: usize) -> Result<Axis, (&'static str, String)> {
    let fmt = |text: String| match &a.format {
        Some(f) => f.replace("{}", &text),
        None => text,
    };
    if let Some(f) = &a.format {
        if !f.contains("{}") {
            return Err((
                "format",
                format!("the format \"{f}\" has no `{{}}` for the value"),
            ));
        }
    }
    let (scale, values) = match (&a.values, &a.range) {
        (Some(_), Some(_)) => return Err(("range", "give `values` or `range`, not both".into())),
        (None, None) => {
            return Err((
                "path",
                "the axis needs `values: [...]` or `range: Linear(...)`/`Log(...)`".into(),
            ))
        }
        (Some(list), None) => {
            if list.is_empty() {
                return Err(("values", "the list of values is empty".into()));
            }
            let values = list
                .iter()
                .map(|v| match v {
                    ValueDecl::Int(i) => AxisValue {
                        value: fmt(i.to_string()),
                        x: Some(*i as f64),
                    },
                    ValueDecl::Float(x) => AxisValue {
                        value: fmt(format_number(*x)),
                        x: Some(*x),
                    },
                    ValueDecl::Bool(b) => AxisValue {
                        value: fmt(b.to_string()),
                        x: None,
                    },
                    ValueDecl::Text(t) => AxisValue {
                        value: fmt(t.clone()),
                        x: None,
                    },
                })
                .collect::<Vec<_>>();
            (Scale::List, values)
        }
        (None, Some(r)) => {
            let (from, to, steps, log) = match *r {
                RangeDecl::Linear { from, to, steps } => (from, to, steps, false),
                RangeDecl::Log { from, to, steps } => (from, to, steps, true),
            };
            if steps == 0 || steps > 1_000_000 {
                return Err((
                    "range",
                    format!("steps must be 1 to 1000000, found {steps}"),
                ));
            }
            if !from.is_finite() || !to.is_finite() {
                return Err(("range", "from and to must be finite numbers".into()));
            }
            if log && (from <= 0.0 || to <= 0.0) {
                return Err(("range", "a Log range needs from > 0 and to > 0".into()));
            }
            let values = (0..steps)
                .map(|i| {
                    let f = if steps == 1 {
                        0.0
                    } else {
                        i as f64 / (steps - 1) as f64
                    };
                    let x = if log {
                        (from.ln() + f * (to.ln() - from.ln())).exp()
                    } else {
                        from + f * (to - from)
                    };
                    let x = round_significant(x);
                    AxisValue {
                        value: fmt(format_number(x)),
                        x: Some(x),
                    }
                })
                .collect();
            (if log { Scale::Log } else { Scale::Linear }, values)
        }
    };
    let mut seen: Vec<&str> = Vec::new();
    for v in &values {
        if seen.contains(&v.value.as_str()) {
            return Err(("values", format!("the value \"{}\" appears twice", v.value)));
        }
        seen.push(&v.value);
    }
    if crate::locate::Path::parse(&a.path).is_err() || a.path.contains('=') {
        return Err((
            "path",
            format!(
                "invalid value path \"{}\" (use the paths --set takes, like links[0].delay)",
                a.path
            ),
        ));
    }
    let name = a.name.clone().unwrap_or_else(|| a.path.clone());
    if RESERVED.contains(&name.as_str()) {
        return Err((
            "name",
            format!(
                "\"{name}\" names a column of its own in the results; give the axis another `name`"
            ),
        ));
    }
    if name.is_empty() || name.contains([',', '"', '\n']) {
        return Err((
            "name",
            "an axis name must be non-empty, without commas, quotes or line breaks".into(),
        ));
    }
    Ok(Axis {
        name,
        path: a.path.clone(),
        group,
        scale,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(text: &str) -> Result<Sweep, ScenarioError> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        Sweep::from_str("s.ron", text, &dir)
    }

    #[test]
    fn axes_expand_as_a_product_of_zipped_groups_filtered_by_constraints() {
        let s = sweep(
            r#"Sweep(
    base: "ping-two-routers.ron",
    axes: [
        Axis(name: "mtu", path: "links[0].mtu", values: [1500, 9000]),
        Zip([
            Axis(name: "delay", path: "links[1].delay", range: Linear(from: 1, to: 3, steps: 3), format: "{}ms"),
            Axis(name: "loss", path: "links[1].loss", range: Log(from: 0.001, to: 0.1, steps: 3), format: "Bernoulli({})"),
        ]),
    ],
    constraints: ["!(mtu == 9000 && delay > 2)"],
    seeds: [7, 3],
)"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name, "s");
        assert_eq!(s.axes[1].group, 1);
        assert_eq!(s.axes[2].group, 1);
        let loss: Vec<&str> = s.axes[2].values.iter().map(|v| v.value.as_str()).collect();
        assert_eq!(
            loss,
            ["Bernoulli(0.001)", "Bernoulli(0.01)", "Bernoulli(0.1)"]
        );
        // 2 x 3 points, minus mtu 9000 with delay 3ms.
        let params: Vec<String> = (0..s.points.len())
            .map(|p| {
                s.params(p)
                    .0
                    .iter()
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        assert_eq!(
            params,
            [
                "1500 1ms Bernoulli(0.001)",
                "1500 2ms Bernoulli(0.01)",
                "1500 3ms Bernoulli(0.1)",
                "9000 1ms Bernoulli(0.001)",
                "9000 2ms Bernoulli(0.01)",
            ]
        );
        assert_eq!(
            s.overrides(4),
            [
                "links[0].mtu=9000",
                "links[1].delay=2ms",
                "links[1].loss=Bernoulli(0.01)"
            ]
        );
        assert_eq!(s.seeds, [7, 3]);
        let items: Vec<(usize, u64)> = s.items().take(3).collect();
        assert_eq!(items, [(0, 7), (0, 3), (1, 7)]);
        let l = s.load_point(4).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.scenario.links[0].mtu, 9000);
        assert_eq!(l.scenario.links[1].delay.as_nanos(), 2_000_000);
        // Default metrics, and a fingerprint that follows the content.
        assert_eq!(s.metrics.len(), DEFAULT_METRICS.len());
        let m = s.manifest();
        assert_eq!(m.points, 5);
        let mut other = s.clone();
        other.seeds = vec![7];
        assert_ne!(other.manifest().fingerprint, m.fingerprint);
    }

    #[test]
    fn sweep_file_errors_are_located_in_the_sweep_file() {
        let cases = [
            (
                r#"Sweep(base: "ping-two-routers.ron", axes: [Axis(path: "links[7].delay", values: ["1ms"])])"#,
                "1:55",
                "index 7 is out of range",
            ),
            (
                r#"Sweep(base: "ping-two-routers.ron", axes: [Zip([Axis(path: "duration", values: ["1s", "2s"]), Axis(path: "links[0].mtu", values: [1500])])])"#,
                "1:95",
                "zipped axes need the same number of values",
            ),
            (
                r#"Sweep(base: "ping-two-routers.ron", axes: [Axis(name: "d", path: "links[0].delay", values: ["1ms"])], constraints: ["x > 1"])"#,
                "1:117",
                "names `x`, which is not an axis",
            ),
            (
                r#"Sweep(base: "ping-two-routers.ron", replications: 0)"#,
                "1:51",
                "at least 1",
            ),
            (
                r#"Sweep(base: "ping-two-routers.ron", metrics: { "g": "goodput" })"#,
                "1:53",
                "does not start with a summary.json key",
            ),
            (
                r#"Sweep(base: "nope.ron")"#,
                "1:13",
                "cannot read the base scenario",
            ),
            (
                r#"Sweep(base: "ping-two-routers.ron", axes: [Axis(path: "seed", values: [1], range: Linear(from: 1, to: 2, steps: 2))])"#,
                "1:83",
                "not both",
            ),
            (r#"Sweep(bas: "x")"#, "1:7", "unknown field `bas`"),
            (
                r#"Sweep(base: "ping-two-routers.ron", set: ["seed=1", "links[9].mtu=1400"])"#,
                "1:53",
                "index 9 is out of range",
            ),
            (
                r#"Sweep(base: "ping-two-routers.ron", axes: [Axis(name: "seed", path: "seed", values: [1])])"#,
                "1:55",
                "names a column of its own",
            ),
        ];
        for (text, pos, words) in cases {
            let e = sweep(text).map(|_| ()).unwrap_err();
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("s.ron:{pos}: error:")),
                "{shown}"
            );
            assert!(shown.contains(words), "{shown}");
        }
    }
}

#[cfg(test)]
mod shipped {
    use super::*;

    /// Every sweep in scenarios/sweeps/ loads, and every one of its points is a valid
    /// scenario that builds.
    #[test]
    fn every_shipped_sweep_loads_and_all_its_points_build() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let s = Sweep::load(&path).unwrap_or_else(|e| panic!("{e}"));
            for p in 0..s.points.len() {
                let l = s
                    .load_point(p)
                    .unwrap_or_else(|e| panic!("{}: point {p}: {e}", path.display()));
                crate::build::check(&l)
                    .unwrap_or_else(|e| panic!("{}: point {p}: {e}", path.display()));
            }
            n += 1;
        }
        assert!(n >= 2);
    }

    #[test]
    fn the_docs_example_has_the_points_it_announces() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/dumbbell-queue.ron");
        let s = Sweep::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.points.len(), s.seeds.len()), (18, 5));
        let l = s.load_point(0).unwrap();
        assert_eq!(l.scenario.duration.as_nanos(), 5_000_000_000);
        assert_eq!(s.params(0).0[1].1, "DropTail(limit: \"20 packets\")");
    }
}

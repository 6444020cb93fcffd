//! Loading a scenario file: RON parsing, `--set` overrides and validation, with every error
//! located (file, line, column) and saying what was expected.

use crate::locate::{self, Path};
use crate::schema::*;
use std::fmt;

/// A problem in a scenario file, located.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

/// A parsed, validated scenario with its source text (after `--set` overrides).
#[derive(Clone, Debug)]
pub struct Loaded {
    pub file: String,
    pub source: String,
    pub scenario: Scenario,
}

impl Loaded {
    /// An error at the value `path` points to (or at the start of the file if absent).
    pub fn error_at(&self, path: &str, message: impl Into<String>) -> ScenarioError {
        error_at(&self.file, &self.source, path, message)
    }
}

pub(crate) fn error_at(
    file: &str,
    source: &str,
    path: &str,
    message: impl Into<String>,
) -> ScenarioError {
    let pos = Path::parse(path)
        .ok()
        .and_then(|p| {
            locate::locate(source, &p).or_else(|| {
                // An absent field: point at the struct that lacks it.
                p.parent().and_then(|q| locate::locate(source, &q))
            })
        })
        .map(|s| s.start)
        .unwrap_or(locate::Pos { line: 1, col: 1 });
    ScenarioError {
        file: file.to_string(),
        line: pos.line,
        col: pos.col,
        message: format!("{} (at {path})", message.into()),
    }
}

/// Parses `source` (named `file` in messages), applies `--set PATH=VALUE` overrides and
/// validates names and references.
pub fn load_str(file: &str, source: &str, overrides: &[String]) -> Result<Loaded, ScenarioError> {
    let mut text = source.to_string();
    for o in overrides {
        let bad = |m: String| ScenarioError {
            file: "--set".into(),
            line: 1,
            col: 1,
            message: format!("{o}: {m}"),
        };
        let (path, value) = locate::parse_assignment(o).map_err(|e| bad(e.to_string()))?;
        let value = quote_bare_value(value);
        text = locate::set_value(&text, &path, &value).map_err(|e| bad(e.to_string()))?;
    }
    let scenario: Scenario = ron::Options::default()
        .with_default_extension(
            ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES
                | ron::extensions::Extensions::IMPLICIT_SOME,
        )
        .from_str(&text)
        .map_err(|e| {
            let pos = e.span.start;
            // Unit-type errors from inside strings: ron points inside the string; fine for humans.
            ScenarioError {
                file: file.to_string(),
                line: pos.line.max(1),
                col: pos.col.max(1),
                message: explain_ron(&e.code),
            }
        })?;
    let loaded = Loaded {
        file: file.to_string(),
        source: text,
        scenario,
    };
    validate(&loaded)?;
    Ok(loaded)
}

/// Reads and loads a scenario file.
pub fn load_file(path: &std::path::Path, overrides: &[String]) -> Result<Loaded, ScenarioError> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: file.clone(),
        line: 1,
        col: 1,
        message: format!("cannot read the scenario file: {e}"),
    })?;
    load_str(&file, &source, overrides)
}

/// `--set links[0].delay=5ms`: the shell ate the quotes; a bare value that is not a RON
/// number, boolean, or structured value is taken as a string.
fn quote_bare_value(v: &str) -> String {
    let t = v.trim();
    let structured =
        t.starts_with('"') || t.starts_with('(') || t.starts_with('[') || t.starts_with('{');
    let number = t.parse::<f64>().is_ok();
    let keyword = matches!(t, "true" | "false" | "None") || t.starts_with("Some(");
    let variant = t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && t.chars()
            .all(|c| c.is_alphanumeric() || "()_:., \"%".contains(c));
    if structured || number || keyword || variant {
        t.to_string()
    } else {
        format!("{t:?}")
    }
}

fn explain_ron(code: &ron::Error) -> String {
    use ron::Error as E;
    match code {
        E::NoSuchStructField {
            expected,
            found,
            outer,
        } => format!(
            "unknown field `{found}`{}; expected one of: {}",
            outer
                .as_ref()
                .map(|o| format!(" in {o}"))
                .unwrap_or_default(),
            expected.join(", ")
        ),
        E::NoSuchEnumVariant {
            expected,
            found,
            outer,
        } => format!(
            "unknown {} `{found}`; expected one of: {}",
            outer
                .as_ref()
                .map(|o| o.to_string())
                .unwrap_or_else(|| "variant".into()),
            expected.join(", ")
        ),
        E::MissingStructField { field, outer } => format!(
            "missing required field `{field}`{}",
            outer
                .as_ref()
                .map(|o| format!(" in {o}"))
                .unwrap_or_default()
        ),
        E::DuplicateStructField { field, .. } => format!("field `{field}` is given twice"),
        other => other.to_string(),
    }
}

fn validate(l: &Loaded) -> Result<(), ScenarioError> {
    let s = &l.scenario;
    let node_names: Vec<&str> = s.nodes.0.iter().map(|(n, _)| n.as_str()).collect();
    let kind_of = |n: &str| s.nodes.0.iter().find(|(k, _)| k == n).map(|(_, d)| d);
    let known = |n: &str, path: String| -> Result<(), ScenarioError> {
        if node_names.contains(&n) {
            Ok(())
        } else {
            Err(l.error_at(
                &path,
                format!(
                    "unknown node \"{n}\"; expected one of the nodes: {}",
                    node_names.join(", ")
                ),
            ))
        }
    };
    if s.name.trim().is_empty() || s.name.contains('/') {
        return Err(l.error_at("name", "the scenario name must be non-empty and contain no '/' (it names the output directory)"));
    }
    if s.duration.as_nanos() == 0 {
        return Err(l.error_at("duration", "duration must be greater than zero"));
    }
    let mut link_names: Vec<String> = Vec::new();
    for (i, k) in s.links.iter().enumerate() {
        known(&k.a, format!("links[{i}].a"))?;
        known(&k.b, format!("links[{i}].b"))?;
        if k.a == k.b {
            return Err(l.error_at(
                &format!("links[{i}].b"),
                "a link must join two different nodes",
            ));
        }
        if k.mtu < 68 || k.mtu > 65535 {
            return Err(l.error_at(
                &format!("links[{i}].mtu"),
                format!(
                    "MTU {} is out of range: expected 68 to 65535 (RFC 791 minimum is 68)",
                    k.mtu
                ),
            ));
        }
        let name = link_name(s, i);
        if link_names.contains(&name) {
            return Err(l.error_at(
                &format!("links[{i}]"),
                format!("duplicate link name \"{name}\"; give one of the parallel links a `name`"),
            ));
        }
        link_names.push(name);
        for (end, addr) in [("a", &k.a_addr), ("b", &k.b_addr)] {
            let node = if end == "a" { &k.a } else { &k.b };
            if addr.is_some() && matches!(kind_of(node), Some(NodeDecl::Switch(_))) {
                return Err(l.error_at(
                    &format!("links[{i}].{end}_addr"),
                    "switch ports have no IP address; remove this field",
                ));
            }
        }
    }
    for (name, decl) in &s.nodes.0 {
        let has_link = s.links.iter().any(|k| &k.a == name || &k.b == name);
        if !has_link {
            return Err(l.error_at(
                &format!("nodes[\"{name}\"]"),
                format!("node \"{name}\" has no links: connect it or remove it"),
            ));
        }
        if let NodeDecl::Host(d) | NodeDecl::Router(d) = decl {
            for (k, _) in &d.sysctl.0 {
                if !crate::build::SYSCTLS.contains(&k.as_str()) {
                    return Err(l.error_at(
                        &format!("nodes[\"{name}\"].sysctl"),
                        format!(
                            "unknown sysctl \"{k}\"; expected one of: {}",
                            crate::build::SYSCTLS.join(", ")
                        ),
                    ));
                }
            }
        }
    }
    let l3 = |n: &str| matches!(kind_of(n), Some(NodeDecl::Host(_) | NodeDecl::Router(_)));
    let mut app_names: Vec<String> = Vec::new();
    for (i, a) in s.apps.iter().enumerate() {
        let (node, field) = app_node(a);
        known(node, format!("apps[{i}].{field}"))?;
        if !l3(node) {
            return Err(l.error_at(
                &format!("apps[{i}].{field}"),
                format!("\"{node}\" is a switch; apps run on hosts and routers"),
            ));
        }
        if let AppDecl::UdpCbr { to, .. } = a {
            let Some((host, port)) = to.rsplit_once(':') else {
                return Err(l.error_at(
                    &format!("apps[{i}].to"),
                    format!("expected \"node:port\" or \"a.b.c.d:port\", found \"{to}\""),
                ));
            };
            if port.parse::<u16>().is_err() {
                return Err(l.error_at(
                    &format!("apps[{i}].to"),
                    format!("invalid port \"{port}\": expected a number from 0 to 65535"),
                ));
            }
            if host.parse::<std::net::Ipv4Addr>().is_err() {
                known(host, format!("apps[{i}].to"))?;
            }
        }
        if let AppDecl::Ping { to, .. } | AppDecl::Traceroute { to, .. } = a {
            if to.parse::<std::net::Ipv4Addr>().is_err() {
                known(to, format!("apps[{i}].to"))?;
            }
        }
        let name = app_name(a, i);
        if app_names.contains(&name) {
            return Err(l.error_at(
                &format!("apps[{i}].name"),
                format!("duplicate app name \"{name}\""),
            ));
        }
        app_names.push(name);
    }
    for (i, f) in s.faults.iter().enumerate() {
        match f {
            FaultDecl::LinkDown { link, .. } | FaultDecl::LinkUp { link, .. } => {
                if !link_names.contains(link) {
                    return Err(l.error_at(
                        &format!("faults[{i}].link"),
                        format!(
                            "unknown link \"{link}\"; expected one of: {}",
                            link_names.join(", ")
                        ),
                    ));
                }
            }
            FaultDecl::NodeCrash { node, .. } | FaultDecl::NodeRestart { node, .. } => {
                known(node, format!("faults[{i}].node"))?
            }
        }
    }
    Ok(())
}

/// The node an app runs on, and the field naming it.
pub fn app_node(a: &AppDecl) -> (&str, &'static str) {
    match a {
        AppDecl::Ping { from, .. }
        | AppDecl::Traceroute { from, .. }
        | AppDecl::UdpCbr { from, .. } => (from, "from"),
        AppDecl::UdpSink { on, .. } | AppDecl::UdpEcho { on, .. } => (on, "on"),
    }
}

/// An app's name: its `name`, or "<kind>-<index>".
pub fn app_name(a: &AppDecl, i: usize) -> String {
    let (name, kind) = match a {
        AppDecl::Ping { name, .. } => (name, "ping"),
        AppDecl::Traceroute { name, .. } => (name, "traceroute"),
        AppDecl::UdpCbr { name, .. } => (name, "udp-cbr"),
        AppDecl::UdpSink { name, .. } => (name, "udp-sink"),
        AppDecl::UdpEcho { name, .. } => (name, "udp-echo"),
    };
    name.clone().unwrap_or_else(|| format!("{kind}-{i}"))
}

/// A link's name: its `name`, or "<a>-<b>".
pub fn link_name(s: &Scenario, i: usize) -> String {
    let k = &s.links[i];
    k.name.clone().unwrap_or_else(|| format!("{}-{}", k.a, k.b))
}

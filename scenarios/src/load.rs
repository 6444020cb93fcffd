//! Loading a scenario file: RON parsing, `--set` overrides and validation, with every error
//! located (file, line, column) and saying what was expected.

use crate::locate::{self, Path};
use crate::schema::*;
use std::fmt;
use std::net::Ipv4Addr;

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
    /// A path into a node or link that a host group generated points at the group.
    pub fn error_at(&self, path: &str, message: impl Into<String>) -> ScenarioError {
        let path = self.scenario.generated.origin_of(path);
        error_at(&self.file, &self.source, &path, message)
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
    let mut scenario: Scenario = ron::Options::default()
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
    crate::groups::expand(file, &text, &mut scenario)?;
    let mut loaded = Loaded {
        file: file.to_string(),
        source: text,
        scenario,
    };
    validate_global_sysctl(&loaded)?;
    apply_global_sysctl(&mut loaded.scenario);
    validate(&loaded)?;
    Ok(loaded)
}

/// Checks the scenario-wide `sysctl` map where it is written.
fn validate_global_sysctl(l: &Loaded) -> Result<(), ScenarioError> {
    let global = &l.scenario.sysctl;
    for (k, _) in &global.0 {
        if !crate::build::is_sysctl(k) {
            return Err(l.error_at(
                "sysctl",
                format!(
                    "unknown sysctl \"{k}\"; expected one of: {}",
                    crate::build::sysctl_names().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let probe = crate::schema::L3Decl {
        sysctl: global.clone(),
        ..Default::default()
    };
    let bad_value = |(k, m): (String, String)| l.error_at(&format!("sysctl[\"{k}\"]"), m);
    crate::build::ip_config(&probe).map_err(bad_value)?;
    crate::build::tcp_config(&probe).map_err(bad_value)?;
    Ok(())
}

/// Gives every host and router the scenario-wide knobs it does not set itself.
fn apply_global_sysctl(s: &mut crate::schema::Scenario) {
    if s.sysctl.0.is_empty() {
        return;
    }
    for (_, node) in s.nodes.0.iter_mut() {
        if let NodeDecl::Host(d) | NodeDecl::Router(d) = node {
            let own: Vec<String> = d.sysctl.0.iter().map(|(k, _)| k.clone()).collect();
            let inherited = s
                .sysctl
                .0
                .iter()
                .filter(|(k, _)| !own.contains(k))
                .cloned()
                .collect::<Vec<_>>();
            let mut merged = inherited;
            merged.append(&mut d.sysctl.0);
            d.sysctl.0 = merged;
        }
    }
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

/// `--set links[0].delay=5ms`: the shell ate the quotes. A value that is RON text is used
/// verbatim; a bare word is taken as a string. RON text is:
///
/// - anything starting with `"`, `'`, `(`, `[` or `{` (strings, chars, tuples, anonymous
///   structs, lists, maps), or a raw string (`r"..."`, `r#"..."#`);
/// - `Name(...)`: a named struct or an enum variant with data (`Host(routes: [...])`,
///   `Record(trace: [Arp])`, `Bernoulli(0.05)`, `Some(...)`), whatever it contains;
/// - a bare identifier starting with an uppercase letter: a unit variant (`Static`, `None`);
/// - `true` and `false`;
/// - a number as RON writes it, starting with a digit, a sign or a dot (`7`, `-1`, `0.05`,
///   `1_000`, `0x10`, `1e3`).
///
/// Everything else becomes a string: `h2`, `r1-r2`, `10Mbps`, `1.5ms`, `1%`, `10.0.1.0/24`,
/// `server:5001`, `inf`. Only the start of a structured value is looked at: if the rest is not
/// valid RON, the parser reports it like any other error in the file.
fn quote_bare_value(v: &str) -> String {
    let t = v.trim();
    let Some(first) = t.chars().next() else {
        return "\"\"".into();
    };
    let opens_structure = matches!(first, '"' | '\'' | '(' | '[' | '{')
        || t.strip_prefix('r')
            .is_some_and(|r| r.trim_start_matches('#').starts_with('"'));
    let ident_len = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    let is_ident = first.is_ascii_alphabetic() || first == '_';
    let named_structure = is_ident && t[ident_len..].trim_start().starts_with('(');
    let unit_variant = is_ident && ident_len == t.len() && first.is_ascii_uppercase();
    let boolean = matches!(t, "true" | "false");
    let number = (first.is_ascii_digit() || matches!(first, '+' | '-' | '.'))
        && matches!(ron::from_str::<ron::Value>(t), Ok(ron::Value::Number(_)));
    if opens_structure || named_structure || unit_variant || boolean || number {
        t.to_string()
    } else {
        format!("{t:?}")
    }
}

pub(crate) fn explain_ron(code: &ron::Error) -> String {
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
    // Lookups by name are maps: files with groups have thousands of nodes.
    let nodes_by_name: std::collections::BTreeMap<&str, &NodeDecl> =
        s.nodes.0.iter().map(|(n, d)| (n.as_str(), d)).collect();
    let kind_of = |n: &str| nodes_by_name.get(n).copied();
    let known = |n: &str, path: String| -> Result<(), ScenarioError> {
        if nodes_by_name.contains_key(n) {
            Ok(())
        } else {
            Err(l.error_at(
                &path,
                format!(
                    "unknown node \"{n}\"; expected one of the nodes: {}",
                    listing(&node_names)
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
    if s.nodes.0.is_empty() {
        return Err(l.error_at(
            "nodes",
            "no nodes: declare them in `nodes` or with `groups`",
        ));
    }
    let mut link_names: Vec<String> = Vec::new();
    let mut link_name_set = std::collections::BTreeSet::new();
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
        if !link_name_set.insert(name.clone()) {
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
    let linked: std::collections::BTreeSet<&str> = s
        .links
        .iter()
        .flat_map(|k| [k.a.as_str(), k.b.as_str()])
        .collect();
    for (name, decl) in &s.nodes.0 {
        if !linked.contains(name.as_str()) {
            return Err(l.error_at(
                &format!("nodes[\"{name}\"]"),
                format!("node \"{name}\" has no links: connect it or remove it"),
            ));
        }
        if let NodeDecl::Host(d) | NodeDecl::Router(d) = decl {
            for (k, _) in &d.sysctl.0 {
                if !crate::build::is_sysctl(k) {
                    return Err(l.error_at(
                        &format!("nodes[\"{name}\"].sysctl"),
                        format!(
                            "unknown sysctl \"{k}\"; expected one of: {}",
                            crate::build::sysctl_names().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
            let bad_value = |(k, m): (String, String)| {
                l.error_at(&format!("nodes[\"{name}\"].sysctl[\"{k}\"]"), m)
            };
            crate::build::ip_config(d).map_err(bad_value)?;
            crate::build::tcp_config(d).map_err(bad_value)?;
        }
    }
    let l3 = |n: &str| matches!(kind_of(n), Some(NodeDecl::Host(_) | NodeDecl::Router(_)));
    let mut app_names: Vec<String> = Vec::new();
    for (i, a) in s.apps.iter().enumerate() {
        match (app_node(a), a) {
            (Some((node, field)), _) => {
                known(node, format!("apps[{i}].{field}"))?;
                if !l3(node) {
                    return Err(l.error_at(
                        &format!("apps[{i}].{field}"),
                        format!("\"{node}\" is a switch; apps run on hosts and routers"),
                    ));
                }
            }
            (None, AppDecl::Gossip(g)) => crate::gossip::validate(l, i, g, &nodes_by_name)?,
            (None, _) => {}
        }
        let target = match a {
            AppDecl::UdpCbr { to, .. } | AppDecl::SynFlood { to, .. } => Some(to),
            AppDecl::TcpBulk(d) => Some(&d.to),
            AppDecl::TcpRequestResponse(d) => Some(&d.to),
            _ => None,
        };
        if let Some(to) = target {
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
            let by_dns = matches!(a, AppDecl::TcpBulk(_) | AppDecl::TcpRequestResponse(_));
            if host.parse::<std::net::Ipv4Addr>().is_err()
                && !(by_dns && !node_names.contains(&host) && is_dns_name(host))
            {
                known(host, format!("apps[{i}].to"))?;
            }
        }
        if let Some(cc) = a.tcp_sockopts().and_then(|o| o.cc) {
            if protocols::tcp::cc::by_name(&cc).is_none() {
                return Err(l.error_at(
                    &format!("apps[{i}].cc"),
                    format!(
                        "unknown congestion control \"{cc}\"; expected one of: {}",
                        protocols::tcp::cc::names().join(", ")
                    ),
                ));
            }
        }
        if let AppDecl::SynFlood { rate: 0, .. } = a {
            return Err(l.error_at(
                &format!("apps[{i}].rate"),
                "rate must be at least 1 (SYNs per second)",
            ));
        }
        if let AppDecl::Ping { to, .. } | AppDecl::Traceroute { to, .. } = a {
            let by_dns = matches!(a, AppDecl::Ping { .. })
                && !node_names.contains(&to.as_str())
                && is_dns_name(to);
            if to.parse::<std::net::Ipv4Addr>().is_err() && !by_dns {
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
    validate_dhcp(l)?;
    for (i, f) in s.faults.iter().enumerate() {
        match f {
            FaultDecl::KillApp { app, .. } => {
                if !app_names.contains(app) {
                    return Err(l.error_at(
                        &format!("faults[{i}].app"),
                        format!(
                            "unknown app \"{app}\"; expected one of the apps: {}",
                            app_names.join(", ")
                        ),
                    ));
                }
            }
            FaultDecl::LinkDown { link, .. } | FaultDecl::LinkUp { link, .. } => {
                if !link_name_set.contains(link) {
                    return Err(l.error_at(
                        &format!("faults[{i}].link"),
                        format!(
                            "unknown link \"{link}\"; expected one of: {}",
                            listing(&link_names)
                        ),
                    ));
                }
            }
            FaultDecl::NodeCrash { node, .. } | FaultDecl::NodeRestart { node, .. } => {
                known(node, format!("faults[{i}].node"))?
            }
        }
    }
    validate_dns(l, &|n: &str| l3(n))
}

/// Can `s` be looked up in the DNS at run time: a domain name with a dot and a letter
/// (so that addresses and node names are never mistaken for one)?
pub fn is_dns_name(s: &str) -> bool {
    s.contains('.')
        && s.chars().any(|c| c.is_ascii_alphabetic())
        && protocols::dns::wire::fqdn(s).is_ok()
}

/// A zone origin as the scenario's zones are keyed: lower case, no final dot ("." for
/// the root).
pub fn zone_key(origin: &str) -> String {
    if origin == "." {
        return ".".into();
    }
    origin.trim_end_matches('.').to_ascii_lowercase()
}

/// Whole seconds of a TTL (RFC 2181 8: at most 2^31 - 1).
pub fn ttl_secs(d: crate::units::Duration) -> Result<u32, String> {
    let ns = d.as_nanos();
    if !ns.is_multiple_of(1_000_000_000) || ns / 1_000_000_000 > i32::MAX as u64 {
        return Err(format!(
            "a TTL is a whole number of seconds from 0 to 2147483647, found {d}"
        ));
    }
    Ok((ns / 1_000_000_000) as u32)
}

/// DNS: zones, the servers that serve them, resolvers' root hints, hosts' servers and
/// host entries. What needs addresses (zone contents) is checked when building.
fn validate_dns(l: &Loaded, l3: &dyn Fn(&str) -> bool) -> Result<(), ScenarioError> {
    let s = &l.scenario;
    let node_or_addr = |v: &str, path: String| -> Result<(), ScenarioError> {
        let dhcp_host = s
            .nodes
            .0
            .iter()
            .any(|(n, d)| n == v && matches!(d, NodeDecl::Host(h) if h.dhcp));
        if dhcp_host {
            return Err(l.error_at(
                &path,
                format!(
                    "\"{v}\" gets its address from DHCP at run time; expected a node with a static address or an IPv4 address"
                ),
            ));
        }
        if v.parse::<std::net::Ipv4Addr>().is_ok() || l3(v) {
            return Ok(());
        }
        let nodes: Vec<&str> = s
            .nodes
            .0
            .iter()
            .filter(|(n, _)| l3(n))
            .map(|(n, _)| n.as_str())
            .collect();
        Err(l.error_at(
            &path,
            format!(
                "expected a host or router name or an IPv4 address, found \"{v}\" (hosts and routers: {})",
                nodes.join(", ")
            ),
        ))
    };
    let mut keys: Vec<String> = Vec::new();
    for (origin, z) in &s.zones.0 {
        let at = |f: &str| format!("zones[\"{origin}\"]{f}");
        if protocols::dns::wire::fqdn(origin).is_err() {
            return Err(l.error_at(
                &at(""),
                format!("invalid zone name \"{origin}\": expected a domain name like \"example.org\" or \".\""),
            ));
        }
        let key = zone_key(origin);
        if keys.contains(&key) {
            return Err(l.error_at(&at(""), format!("zone \"{origin}\" is declared twice")));
        }
        keys.push(key);
        for (f, d) in [("ttl", z.ttl), ("negative_ttl", z.negative_ttl)] {
            if let Some(d) = d {
                ttl_secs(d).map_err(|m| l.error_at(&at(&format!(".{f}")), m))?;
            }
        }
        for (i, r) in z.records.iter().enumerate() {
            let ttl = match r {
                RecordDecl::A { ttl, .. }
                | RecordDecl::Ns { ttl, .. }
                | RecordDecl::Cname { ttl, .. } => ttl,
            };
            if let Some(d) = ttl {
                ttl_secs(*d).map_err(|m| l.error_at(&at(&format!(".records[{i}].ttl")), m))?;
            }
            if let RecordDecl::A { addr, .. } = r {
                node_or_addr(addr, at(&format!(".records[{i}].addr")))?;
            }
        }
    }
    for (name, decl) in &s.nodes.0 {
        let (NodeDecl::Host(d) | NodeDecl::Router(d)) = decl else {
            continue;
        };
        for (i, server) in d.dns.iter().enumerate() {
            node_or_addr(server, format!("nodes[\"{name}\"].dns[{i}]"))?;
        }
        for (host, addr) in &d.hosts.0 {
            let path = format!("nodes[\"{name}\"].hosts[\"{host}\"]");
            if protocols::dns::wire::fqdn(host).is_err() {
                return Err(l.error_at(
                    &format!("nodes[\"{name}\"].hosts"),
                    format!("invalid host name \"{host}\": expected a domain name"),
                ));
            }
            node_or_addr(addr, path)?;
        }
        if let Some(o) = &d.dns_options {
            let path = |f: &str| format!("nodes[\"{name}\"].dns_options.{f}");
            if o.timeout.is_some_and(|t| !(1..=30).contains(&t)) {
                return Err(l.error_at(
                    &path("timeout"),
                    "expected 1 to 30 (seconds, as glibc allows)",
                ));
            }
            if o.attempts.is_some_and(|a| !(1..=5).contains(&a)) {
                return Err(l.error_at(&path("attempts"), "expected 1 to 5 (as glibc allows)"));
            }
        }
    }
    for (i, a) in s.apps.iter().enumerate() {
        match a {
            AppDecl::DnsServer {
                zones, edns_size, ..
            } => {
                check_edns_size(l, i, *edns_size)?;
                if zones.is_empty() {
                    return Err(l.error_at(
                        &format!("apps[{i}].zones"),
                        "a DNS server needs at least one zone",
                    ));
                }
                for (k, z) in zones.iter().enumerate() {
                    if !keys.contains(&zone_key(z)) {
                        return Err(l.error_at(
                            &format!("apps[{i}].zones[{k}]"),
                            format!(
                                "unknown zone \"{z}\"; expected one of the scenario's zones: {}",
                                s.zones
                                    .0
                                    .iter()
                                    .map(|(o, _)| o.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    }
                }
            }
            AppDecl::DnsResolver {
                root_hints,
                timeout,
                attempts,
                edns_size,
                ..
            } => {
                check_edns_size(l, i, *edns_size)?;
                if root_hints.is_empty() {
                    return Err(l.error_at(
                        &format!("apps[{i}].root_hints"),
                        "a resolver needs at least one root server (node or address)",
                    ));
                }
                for (k, h) in root_hints.iter().enumerate() {
                    node_or_addr(h, format!("apps[{i}].root_hints[{k}]"))?;
                }
                if timeout.is_some_and(|t| t.as_nanos() == 0) {
                    return Err(l.error_at(
                        &format!("apps[{i}].timeout"),
                        "timeout must be greater than zero",
                    ));
                }
                if *attempts == Some(0) {
                    return Err(l.error_at(
                        &format!("apps[{i}].attempts"),
                        "attempts must be at least 1",
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The EDNS UDP payload size of app `i` (a DNS server or resolver): 512 to 65535 bytes.
fn check_edns_size(l: &Loaded, i: usize, size: Option<u32>) -> Result<(), ScenarioError> {
    match size {
        Some(n) if !(512..=65535).contains(&n) => Err(l.error_at(
            &format!("apps[{i}].edns_size"),
            format!("EDNS payload size {n} out of range: expected 512 to 65535 (bytes)"),
        )),
        _ => Ok(()),
    }
}

/// The name every DHCP host's client app has.
pub const DHCP_CLIENT_APP: &str = "dhcp-client";

/// `"first-last"`: a DHCP pool's address range.
pub(crate) fn parse_range(r: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let bad = || {
        format!("expected an address range \"first-last\" like \"10.0.1.100-10.0.1.199\", found \"{r}\"")
    };
    let (a, b) = r.split_once('-').ok_or_else(bad)?;
    let a: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
    let b: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return Err(format!("range \"{r}\" ends before it starts"));
    }
    Ok((a, b))
}

/// DHCP hosts, servers and relays: what can be checked without the address plan.
fn validate_dhcp(l: &Loaded) -> Result<(), ScenarioError> {
    let s = &l.scenario;
    let decl = |n: &str| s.nodes.0.iter().find(|(k, _)| k == n).map(|(_, d)| d);
    let is_dhcp_host = |n: &str| matches!(decl(n), Some(NodeDecl::Host(d)) if d.dhcp);
    let node_or_addr = |v: &str, path: String| -> Result<(), ScenarioError> {
        let static_l3 = matches!(decl(v), Some(NodeDecl::Host(d) | NodeDecl::Router(d)) if !d.dhcp);
        if v.parse::<Ipv4Addr>().is_ok() || static_l3 {
            return Ok(());
        }
        Err(l.error_at(
            &path,
            format!(
                "expected an address or the name of a node with a static address, found \"{v}\""
            ),
        ))
    };
    for (name, d) in &s.nodes.0 {
        match d {
            NodeDecl::Router(r) if r.dhcp => {
                return Err(l.error_at(
                    &format!("nodes[\"{name}\"].dhcp"),
                    "routers have static addresses; `dhcp` is for hosts",
                ))
            }
            NodeDecl::Host(h) if h.dhcp => {
                let links: Vec<usize> = (0..s.links.len())
                    .filter(|&i| s.links[i].a == *name || s.links[i].b == *name)
                    .collect();
                if links.len() != 1 {
                    return Err(l.error_at(
                        &format!("nodes[\"{name}\"].dhcp"),
                        format!(
                            "a DHCP host has exactly one link; \"{name}\" has {}",
                            links.len()
                        ),
                    ));
                }
                let k = &s.links[links[0]];
                let (end, addr) = if k.a == *name {
                    ("a", &k.a_addr)
                } else {
                    ("b", &k.b_addr)
                };
                if addr.is_some() {
                    return Err(l.error_at(
                        &format!("links[{}].{end}_addr", links[0]),
                        format!(
                            "\"{name}\" gets its address from DHCP; remove this field or `dhcp`"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    let mut port_67: Vec<&str> = Vec::new();
    let mut ranges: Vec<(Ipv4Addr, Ipv4Addr, usize)> = Vec::new();
    for (i, a) in s.apps.iter().enumerate() {
        let on = match a {
            AppDecl::DhcpServer(d) => {
                if is_dhcp_host(&d.on) {
                    return Err(l.error_at(
                        &format!("apps[{i}].on"),
                        format!(
                            "a DHCP server needs a static address; \"{}\" is a DHCP host",
                            d.on
                        ),
                    ));
                }
                for (pi, p) in d.pools.iter().enumerate() {
                    let at = |f: &str| format!("apps[{i}].pools[{pi}].{f}");
                    if p.subnet.is_none() && p.range.is_none() {
                        return Err(l.error_at(
                            &format!("apps[{i}].pools[{pi}]"),
                            "a pool needs a `subnet`, a `range`, or both",
                        ));
                    }
                    if let Some(r) = &p.range {
                        let (first, last) =
                            parse_range(r).map_err(|m| l.error_at(&at("range"), m))?;
                        if let Some(n) = p.subnet {
                            let net = sim_core::route::Prefix::new(n.addr(), n.prefix_len());
                            if !net.contains(first) || !net.contains(last) {
                                return Err(l.error_at(
                                    &at("range"),
                                    format!("range \"{r}\" is not inside the pool's subnet {net}"),
                                ));
                            }
                        }
                        if let Some(&(_, _, j)) =
                            ranges.iter().find(|(a, b, _)| first <= *b && *a <= last)
                        {
                            return Err(l.error_at(
                                &at("range"),
                                format!(
                                    "range \"{r}\" overlaps a pool of {}: two servers would lease the same addresses",
                                    app_name(&s.apps[j], j)
                                ),
                            ));
                        }
                        ranges.push((first, last, i));
                    }
                    if let Some(r) = &p.router {
                        node_or_addr(r, at("router"))?;
                    }
                    for (k, v) in p.dns.iter().enumerate() {
                        node_or_addr(v, format!("apps[{i}].pools[{pi}].dns[{k}]"))?;
                    }
                }
                for (host, _) in &d.reservations.0 {
                    if !is_dhcp_host(host) {
                        return Err(l.error_at(
                            &format!("apps[{i}].reservations"),
                            format!("reservations are for DHCP hosts; \"{host}\" is not one"),
                        ));
                    }
                }
                &d.on
            }
            AppDecl::DhcpRelay { on, servers, .. } => {
                if !matches!(decl(on), Some(NodeDecl::Router(_))) {
                    return Err(l.error_at(
                        &format!("apps[{i}].on"),
                        format!("a DHCP relay agent runs on a router; \"{on}\" is not one"),
                    ));
                }
                if servers.is_empty() {
                    return Err(
                        l.error_at(&format!("apps[{i}].servers"), "name at least one server")
                    );
                }
                for (k, v) in servers.iter().enumerate() {
                    node_or_addr(v, format!("apps[{i}].servers[{k}]"))?;
                }
                on
            }
            _ => continue,
        };
        if port_67.contains(&on.as_str()) {
            return Err(l.error_at(
                &format!("apps[{i}].on"),
                format!(
                    "\"{on}\" already runs a DHCP server or relay agent (both use UDP port 67)"
                ),
            ));
        }
        port_67.push(on);
    }
    Ok(())
}

/// Names for an error message: all of them, or the first 30 and how many more (a group
/// may have added thousands).
pub(crate) fn listing<S: AsRef<str>>(names: &[S]) -> String {
    const SHOWN: usize = 30;
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(|n| n.as_ref())
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(", ... ({} more)", names.len() - SHOWN));
    }
    out
}

/// The node an app runs on, and the field naming it; None for apps that run on many
/// nodes (`Gossip`, see `gossip::members`).
pub fn app_node(a: &AppDecl) -> Option<(&str, &'static str)> {
    Some(match a {
        AppDecl::Ping { from, .. }
        | AppDecl::Traceroute { from, .. }
        | AppDecl::UdpCbr { from, .. }
        | AppDecl::SynFlood { from, .. } => (from, "from"),
        AppDecl::TcpBulk(d) => (&d.from, "from"),
        AppDecl::TcpRequestResponse(d) => (&d.from, "from"),
        AppDecl::UdpSink { on, .. } | AppDecl::UdpEcho { on, .. } => (on, "on"),
        AppDecl::TcpSink(d) => (&d.on, "on"),
        AppDecl::TcpServer(d) => (&d.on, "on"),
        AppDecl::TcpEcho(d) => (&d.on, "on"),
        AppDecl::DnsServer { on, .. } | AppDecl::DnsResolver { on, .. } => (on, "on"),
        AppDecl::DhcpServer(d) => (&d.on, "on"),
        AppDecl::DhcpRelay { on, .. } => (on, "on"),
        AppDecl::Gossip(_) => return None,
    })
}

/// An app's name: its `name`, or "<kind>-<index>".
pub fn app_name(a: &AppDecl, i: usize) -> String {
    let (name, kind) = match a {
        AppDecl::Ping { name, .. } => (name, "ping"),
        AppDecl::Traceroute { name, .. } => (name, "traceroute"),
        AppDecl::UdpCbr { name, .. } => (name, "udp-cbr"),
        AppDecl::UdpSink { name, .. } => (name, "udp-sink"),
        AppDecl::UdpEcho { name, .. } => (name, "udp-echo"),
        AppDecl::TcpBulk(d) => (&d.name, "tcp-bulk"),
        AppDecl::TcpSink(d) => (&d.name, "tcp-sink"),
        AppDecl::TcpRequestResponse(d) => (&d.name, "tcp-rr"),
        AppDecl::TcpServer(d) => (&d.name, "tcp-server"),
        AppDecl::TcpEcho(d) => (&d.name, "tcp-echo"),
        AppDecl::SynFlood { name, .. } => (name, "syn-flood"),
        AppDecl::DnsServer { name, .. } => (name, "dns-server"),
        AppDecl::DnsResolver { name, .. } => (name, "dns-resolver"),
        AppDecl::DhcpServer(d) => (&d.name, "dhcp-server"),
        AppDecl::DhcpRelay { name, .. } => (name, "dhcp-relay"),
        AppDecl::Gossip(d) => (&d.name, "gossip"),
    };
    name.clone().unwrap_or_else(|| format!("{kind}-{i}"))
}

/// A link's name: its `name`, or "<a>-<b>".
pub fn link_name(s: &Scenario, i: usize) -> String {
    let k = &s.links[i];
    k.name.clone().unwrap_or_else(|| format!("{}-{}", k.a, k.b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = r#"Scenario(
    name: "x",
    nodes: { "h1": Host(), "r": Router(), "h2": Host() },
    links: [ Link(a: "h1", b: "r"), Link(a: "r", b: "h2") ],
    apps: [ Ping(from: "h1", to: "h2") ],
)"#;

    fn load(sets: &[&str]) -> Result<Loaded, ScenarioError> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        load_str("t.ron", SRC, &sets)
    }

    fn l3<'a>(l: &'a Loaded, node: &str) -> &'a L3Decl {
        match l.scenario.nodes.0.iter().find(|(n, _)| n == node) {
            Some((_, NodeDecl::Host(d) | NodeDecl::Router(d))) => d,
            _ => panic!("no host or router {node}"),
        }
    }

    #[test]
    fn set_passes_ron_values_through_and_quotes_only_bare_words() {
        // Structured values, whatever characters they contain, are RON text.
        let l = load(&[
            r#"nodes.h1=Host(capture: true, routes: [Route(to: "10.9.0.0/16", via: "10.0.0.2")], sysctl: {"ip_default_ttl": 3})"#,
            "record=Record(trace: [Arp, Icmp])",
            r#"links[0]=Link(a: "h1", b: "r", name: "h1-r", rate: "10Mbps", delay: "250µs")"#,
            r#"links[1].queue=DropTail(limit: "10 packets")"#,
            r#"links[1].reorder=Reorder(probability: "1%", delay: "1ms")"#,
            "apps[0].count=Some(3)",
            "links[1].loss=Bernoulli(0.05)",
            r#"faults=[LinkDown(link: "r-h2", at: "1s", for: "2s")]"#,
            "routing=Auto(ecmp: PerPacket, reconverge: \"1ms\")",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let h1 = l3(&l, "h1");
        assert!(h1.capture);
        assert_eq!(h1.routes.len(), 1);
        assert_eq!(
            h1.sysctl.0,
            vec![("ip_default_ttl".to_string(), SysctlValue::Int(3))]
        );
        assert_eq!(
            l.scenario.record.trace,
            vec![TraceCategory::Arp, TraceCategory::Icmp]
        );
        assert_eq!(l.scenario.links[0].rate.bits_per_sec(), 10_000_000);
        assert_eq!(l.scenario.links[0].delay.as_nanos(), 250_000);
        assert_eq!(l.scenario.faults.len(), 1);
        // A structured value of the wrong type reaches the type check unquoted.
        let e = load(&["record=Record(trace: true)"]).unwrap_err();
        assert!(!e.message.contains("string"), "{e}");
        assert!(e.message.contains("`[`"), "{e}");

        // Numbers (in any RON notation), booleans, variants and quoted strings too.
        let l = load(&[
            "seed=1_000",
            "links[0].mtu=0x5dc",
            "links[1].duplicate=0.5",
            "nodes.r.capture=true",
            "routing=Static",
            "links[0].loss=None",
            r#"apps[0].to="r""#,
            "record=(trace: [Fault])",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.scenario.seed, 1000);
        assert_eq!(l.scenario.links[0].mtu, 1500);
        assert!(l3(&l, "r").capture);
        assert_eq!(l.scenario.routing, Routing::Static);
        assert_eq!(l.scenario.record.trace, vec![TraceCategory::Fault]);
        assert!(matches!(&l.scenario.apps[0], AppDecl::Ping { to, .. } if to == "r"));

        // Bare words, units, addresses and anything else become strings.
        let l = load(&[
            "links[0].rate=10Mbps",
            "links[1].delay=1.5ms",
            "links[1].subnet=10.7.0.0/24",
            "links[1].duplicate=1%",
            "apps[0].to=10.7.0.1",
            "name=inf",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.scenario.links[0].rate.bits_per_sec(), 10_000_000);
        assert_eq!(l.scenario.links[1].delay.as_nanos(), 1_500_000);
        assert_eq!(l.scenario.name, "inf");
        assert!(matches!(&l.scenario.apps[0], AppDecl::Ping { to, .. } if to == "10.7.0.1"));
        let l = load(&["apps[0].to=h2", "links[0].name=h1-r"]).unwrap();
        assert!(matches!(&l.scenario.apps[0], AppDecl::Ping { to, .. } if to == "h2"));
        assert_eq!(l.scenario.links[0].name.as_deref(), Some("h1-r"));
    }

    const DHCP: &str = r#"Scenario(
    name: "d",
    nodes: { "sw": Switch(), "r": Router(), "srv": Host(), "c": Host(dhcp: true) },
    links: [ Link(a: "r", b: "sw"), Link(a: "srv", b: "sw"), Link(a: "c", b: "sw") ],
    apps: [
        DhcpServer(on: "srv", pools: [Pool(range: "10.0.0.100-10.0.0.199", dns: ["srv"])],
                   reservations: { "c": "10.0.0.50" }),
        DhcpRelay(on: "r", servers: ["srv"]),
    ],
)"#;

    #[test]
    fn dhcp_mistakes_are_located_errors() {
        assert!(load_str("d.ron", DHCP, &[]).is_ok());
        let cases = [
            ("links[2].a_addr=10.0.0.9/24", "gets its address from DHCP"),
            (
                r#"links=[Link(a: "r", b: "sw"), Link(a: "srv", b: "sw"), Link(a: "c", b: "sw"), Link(a: "c", b: "r")]"#,
                "exactly one link",
            ),
            ("apps[0].on=c", "needs a static address"),
            ("apps[1].on=srv", "runs on a router"),
            ("apps[1].servers=[]", "at least one server"),
            (r#"apps[1].servers=["c"]"#, "static address"),
            (r#"apps[1].servers=["sw"]"#, "static address"),
            (r#"apps[0].pools[0].dns=["nowhere"]"#, "static address"),
            (r#"apps[0].pools[0].router="10.0.0""#, "static address"),
            (
                r#"apps[0].reservations={"srv": "10.0.0.50"}"#,
                "reservations are for DHCP hosts",
            ),
            (
                "apps[0].pools[0].range=10.0.0.199-10.0.0.100",
                "ends before it starts",
            ),
            (
                r#"apps[0].pools[0]=Pool(subnet: "10.0.0.0/24", range: "10.0.1.1-10.0.1.9")"#,
                "not inside the pool's subnet",
            ),
            (
                "apps[0].pools[0]=Pool()",
                "needs a `subnet`, a `range`, or both",
            ),
            (
                r#"apps[1]=DhcpServer(on: "srv")"#,
                "already runs a DHCP server",
            ),
            (
                r#"apps[1]=DnsResolver(on: "r", root_hints: ["c"])"#,
                "gets its address from DHCP",
            ),
            (
                r#"apps[1]=DnsResolver(on: "srv", root_hints: ["r"], edns_size: 70000)"#,
                "EDNS payload size 70000 out of range",
            ),
        ];
        for (set, want) in cases {
            let e = load_str("d.ron", DHCP, &[set.to_string()]).unwrap_err();
            assert!(e.message.contains(want), "{set}: {e}");
            assert!(e.line > 1, "{set}: located: {e}");
        }
    }
}

//! Host groups: many hosts declared at once (`groups: [HostGroup(...)]`), expanded into
//! ordinary nodes and links right after parsing, so that everything downstream
//! (validation, faults naming a generated node, building, outputs) treats them like
//! nodes written out by hand.
//!
//! Owns the expansion (names, LAN layout, subnets) and [`Generated`], the record of what
//! came from which group: errors about a generated node or link are reported at the
//! group that declared it (see [`Generated::origin_of`]).
//!
//! A group `HostGroup(name: "c", count: N, lans: L)` adds, in this order:
//!
//! - hosts `c-0` .. `c-(N-1)` (or the `hosts` pattern with `{}` replaced by the index),
//!   spread over the LANs in consecutive blocks of ceil(N / L);
//! - with L = 1: the switch `c-sw`, and a `link` from every host to it;
//! - with L > 1: per LAN j, the switch `c-sw<j>` and the gateway router `c-gw<j>`, a
//!   `link` from the gateway and from each of the LAN's hosts to the switch; then the core
//!   router `c-core` and an `uplink` named `c-uplink<j>` from every gateway to it.
//!
//! Each LAN is one subnet cut from the group's `subnet` (default 172.(16+g).0.0/16 for
//! the g-th group): the block is split into the smallest power of two of equal parts that
//! gives every LAN its own; the gateway gets the first address. Uplinks get automatic
//! /24s like any link.

use crate::load::{error_at, ScenarioError};
use crate::schema::{GroupDecl, HostGroupDecl, L3Decl, NodeDecl, Scenario, SwitchDecl};
use crate::units::Ipv4Net;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

pub use crate::schema::Generated;

/// The most hosts one group may declare.
pub const MAX_GROUP_HOSTS: u32 = 100_000;

impl Generated {
    /// `path` with a generated link or node replaced by the declaration it came from:
    /// `links[1200].mtu` becomes `groups[0].link.mtu`, `nodes["c-7"].sysctl` becomes
    /// `groups[0].sysctl`. Other paths are returned unchanged.
    pub fn origin_of(&self, path: &str) -> String {
        if let Some(rest) = path.strip_prefix("links[") {
            if let Some((idx, tail)) = rest.split_once(']') {
                if let Ok(i) = idx.parse::<usize>() {
                    if let Some(o) = i
                        .checked_sub(self.first_link)
                        .and_then(|k| self.link_origin.get(k))
                    {
                        return format!("{o}{tail}");
                    }
                }
            }
        }
        let node = path
            .strip_prefix("nodes[\"")
            .and_then(|r| r.split_once("\"]"))
            .or_else(|| {
                path.strip_prefix("nodes.").map(|r| {
                    let end = r.find(['.', '[']).unwrap_or(r.len());
                    r.split_at(end)
                })
            });
        if let Some((name, tail)) = node {
            if let Some(o) = self.node_origin.get(name) {
                return format!("{o}{tail}");
            }
        }
        path.to_string()
    }
}

impl Scenario {
    /// The scenario as its file declares it: without the nodes and links its groups
    /// added when it was loaded (loading it again adds them again). What was added to a
    /// loaded scenario in code is kept.
    pub fn as_declared(&self) -> std::borrow::Cow<'_, Scenario> {
        let g = &self.generated;
        if g.node_origin.is_empty() && g.link_origin.is_empty() {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut s = self.clone();
        s.nodes.0.retain(|(n, _)| !g.node_origin.contains_key(n));
        let start = g.first_link.min(s.links.len());
        let end = (g.first_link + g.link_origin.len()).min(s.links.len());
        s.links.drain(start..end);
        s.generated = Generated::default();
        std::borrow::Cow::Owned(s)
    }
}

/// The names of a group's hosts, in index order.
pub fn host_names(g: &HostGroupDecl) -> impl Iterator<Item = String> + '_ {
    let pattern = g
        .hosts
        .clone()
        .unwrap_or_else(|| format!("{}-{{}}", g.name));
    (0..g.count).map(move |i| pattern.replacen("{}", &i.to_string(), 1))
}

/// The names of any group's hosts, in index order.
pub fn group_hosts(g: &GroupDecl) -> Vec<String> {
    match g {
        GroupDecl::HostGroup(d) => host_names(d).collect(),
        GroupDecl::FatTree(d) => crate::fabric::host_names(d),
    }
}

/// Adds every group's nodes and links to `s` (`file` and `source` locate errors).
pub(crate) fn expand(file: &str, source: &str, s: &mut Scenario) -> Result<(), ScenarioError> {
    // Without groups nothing is generated, and the record stays equal to a scenario's
    // built in code (`Generated::default()`).
    s.generated = Generated::default();
    if s.groups.is_empty() {
        return Ok(());
    }
    s.generated.first_link = s.links.len();
    let err = |path: String, m: String| error_at(file, source, &path, m);
    let mut taken: BTreeSet<String> = s.nodes.0.iter().map(|(n, _)| n.clone()).collect();
    let mut group_names: BTreeSet<String> = BTreeSet::new();
    let groups = s.groups.clone();
    for (g, group) in groups.iter().enumerate() {
        let at = format!("groups[{g}]");
        let name = group.name();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(err(
                format!("{at}.name"),
                format!("invalid group name \"{name}\": expected a non-empty name without spaces"),
            ));
        }
        if taken.contains(name) || !group_names.insert(name.to_string()) {
            return Err(err(
                format!("{at}.name"),
                format!("the name \"{name}\" is already used by a node or another group"),
            ));
        }
        let decl = match group {
            GroupDecl::HostGroup(d) => d,
            GroupDecl::FatTree(d) => {
                crate::fabric::expand(file, source, s, g, d, &mut taken)?;
                continue;
            }
        };
        if decl.count == 0 || decl.count > MAX_GROUP_HOSTS {
            return Err(err(
                format!("{at}.count"),
                format!(
                    "count must be from 1 to {MAX_GROUP_HOSTS}, found {}",
                    decl.count
                ),
            ));
        }
        if let Some(p) = &decl.hosts {
            if p.matches("{}").count() != 1 || p.contains(char::is_whitespace) {
                return Err(err(
                    format!("{at}.hosts"),
                    format!(
                        "invalid host name pattern \"{p}\": expected a name without spaces \
                         containing {{}} once (replaced by the host's index), like \"node-{{}}\""
                    ),
                ));
            }
        }
        let lans = decl.lans.unwrap_or(1);
        if lans == 0 || lans > decl.count {
            return Err(err(
                format!("{at}.lans"),
                format!(
                    "lans must be from 1 to count ({}), found {lans}",
                    decl.count
                ),
            ));
        }
        let per_lan = decl.count.div_ceil(lans);
        let block = match decl.subnet {
            Some(b) => b,
            None if g < 16 => Ipv4Net::new(Ipv4Addr::new(172, 16 + g as u8, 0, 0), 16)
                .unwrap_or_else(|_| unreachable!("/16 is a valid prefix")),
            None => {
                return Err(err(
                    at.clone(),
                    "only the first 16 groups get a default subnet: give this one a `subnet`"
                        .into(),
                ))
            }
        };
        let subnets = split(block, lans, per_lan + u32::from(lans > 1)).ok_or_else(|| {
            err(
                if decl.subnet.is_some() {
                    format!("{at}.subnet")
                } else {
                    at.clone()
                },
                format!(
                    "subnet {block} cannot hold {lans} LAN(s) of up to {per_lan} hosts{}: \
                     give a larger `subnet` or change `lans`",
                    if lans > 1 { " and a gateway" } else { "" }
                ),
            )
        })?;

        let hosts: Vec<String> = host_names(decl).collect();
        for h in &hosts {
            if !taken.insert(h.clone()) {
                return Err(err(
                    decl.hosts
                        .as_ref()
                        .map_or(format!("{at}.name"), |_| format!("{at}.hosts")),
                    format!(
                        "host name \"{h}\" of group \"{name}\" is already used by another node"
                    ),
                ));
            }
        }
        let mut infra = Vec::new();
        if lans == 1 {
            infra.push((format!("{name}-sw"), true));
        } else {
            for j in 0..lans {
                infra.push((format!("{name}-sw{j}"), true));
                infra.push((format!("{name}-gw{j}"), false));
            }
            infra.push((format!("{name}-core"), false));
        }
        for (n, _) in &infra {
            if !taken.insert(n.clone()) {
                return Err(err(
                    format!("{at}.name"),
                    format!("group \"{name}\" needs the node name \"{n}\", which is already used"),
                ));
            }
        }
        let origin = at.clone();
        for h in &hosts {
            s.nodes.0.push((
                h.clone(),
                NodeDecl::Host(L3Decl {
                    sysctl: decl.sysctl.clone(),
                    ..L3Decl::default()
                }),
            ));
            s.generated.node_origin.insert(h.clone(), origin.clone());
        }
        for (n, is_switch) in &infra {
            let d = if *is_switch {
                NodeDecl::Switch(SwitchDecl::default())
            } else {
                NodeDecl::Router(L3Decl::default())
            };
            s.nodes.0.push((n.clone(), d));
            s.generated.node_origin.insert(n.clone(), origin.clone());
        }
        let link_at = format!("{at}.link");
        for (j, subnet) in subnets.iter().enumerate() {
            let block_hosts = &hosts[(j * per_lan as usize).min(hosts.len())
                ..((j + 1) * per_lan as usize).min(hosts.len())];
            let sw = if lans == 1 {
                format!("{name}-sw")
            } else {
                format!("{name}-sw{j}")
            };
            if lans > 1 {
                let gw = format!("{name}-gw{j}");
                s.links.push(decl.link.link(&gw, &sw, None, Some(*subnet)));
                s.generated.link_origin.push(link_at.clone());
            }
            for h in block_hosts {
                s.links.push(decl.link.link(h, &sw, None, Some(*subnet)));
                s.generated.link_origin.push(link_at.clone());
            }
        }
        if lans > 1 {
            let core = format!("{name}-core");
            for j in 0..lans {
                let gw = format!("{name}-gw{j}");
                s.links.push(
                    decl.uplink
                        .link(&gw, &core, Some(format!("{name}-uplink{j}")), None),
                );
                s.generated.link_origin.push(format!("{at}.uplink"));
            }
        }
    }
    Ok(())
}

/// `parts` subnets of equal size cut from `block`, each with room for `hosts` addresses
/// (network and broadcast excluded); None if they do not fit.
fn split(block: Ipv4Net, parts: u32, hosts: u32) -> Option<Vec<Ipv4Net>> {
    let bits = parts.next_power_of_two().trailing_zeros();
    let len = u32::from(block.prefix_len()) + bits;
    if len > 30 {
        return None;
    }
    let size = 1u64 << (32 - len);
    if size - 2 < u64::from(hosts) {
        return None;
    }
    let base = u64::from(u32::from(block.network()));
    (0..u64::from(parts))
        .map(|j| {
            let addr = u32::try_from(base + j * size).ok()?;
            Ipv4Net::new(Ipv4Addr::from(addr), len as u8).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_cuts_equal_power_of_two_blocks() {
        let b: Ipv4Net = "10.8.0.0/16".parse().unwrap();
        let s = split(b, 3, 1000).unwrap();
        assert_eq!(
            s.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            ["10.8.0.0/18", "10.8.64.0/18", "10.8.128.0/18"]
        );
        assert_eq!(split(b, 1, 65534).unwrap()[0].to_string(), "10.8.0.0/16");
        assert!(split(b, 1, 65535).is_none());
        assert!(split(b, 20_000, 2).is_none(), "a /31 per LAN is too small");
    }

    #[test]
    fn origins_map_generated_paths_to_their_group() {
        let mut g = Generated {
            first_link: 2,
            link_origin: vec!["groups[0].link".into(), "groups[0].uplink".into()],
            ..Generated::default()
        };
        g.node_origin.insert("c-1".into(), "groups[0]".into());
        assert_eq!(g.origin_of("links[1].mtu"), "links[1].mtu");
        assert_eq!(g.origin_of("links[3].mtu"), "groups[0].uplink.mtu");
        assert_eq!(g.origin_of("links[2]"), "groups[0].link");
        assert_eq!(g.origin_of("links[9]"), "links[9]");
        assert_eq!(
            g.origin_of("nodes[\"c-1\"].sysctl[\"x\"]"),
            "groups[0].sysctl[\"x\"]"
        );
        assert_eq!(g.origin_of("nodes.c-1.sysctl"), "groups[0].sysctl");
        assert_eq!(g.origin_of("nodes[\"h\"]"), "nodes[\"h\"]");
    }
}

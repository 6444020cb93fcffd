//! The `FatTree` group: a k-ary fat-tree data center network from one declaration,
//! expanded into ordinary nodes and links right after parsing (like host groups, see
//! `groups`), and routed in closed form when built.
//!
//! Owns the names of a fabric's nodes, the checks of its declaration and the expansion.
//! The layout itself (which links, which addresses, which routes) is
//! `sim_core::fattree`'s; the expansion writes its addresses into the links, so the
//! generic address planner finds them there, and [`fat_tree`] lets the builder take the
//! fabric's routes instead of computing shortest paths over 300,000 segments.
//!
//! `FatTree(name: "dc", k: K)` adds, in this order (p: pod, e: edge router, a:
//! aggregation router, h: host, c: core router, all from 0):
//!
//! - hosts `dc-pod<p>-edge<e>-h<h>`, by pod, edge router and host;
//! - edge routers `dc-pod<p>-edge<e>`, then aggregation routers `dc-pod<p>-agg<a>`;
//! - core routers `dc-core<c>`: core c is linked to aggregation router c / (K/2) of
//!   every pod;
//! - the links, named `<a>-<b>` as usual: every host's (edge router to host, from
//!   `host_link`), then every edge router's to the aggregation routers of its pod (from
//!   `agg_link`), then every aggregation router's to its cores (from `core_link`).
//!
//! A fat-tree is the whole network of its scenario: it cannot be joined to other nodes
//! yet, since its routes are computed for the fabric alone, and for the intact fabric
//! (no `reconverge`).

use crate::load::{error_at, ScenarioError};
use crate::schema::{FatTreeDecl, GroupDecl, L3Decl, NodeDecl, Routing, Scenario};
use crate::units::Ipv4Net;
use sim_core::fattree::{FatNode, FatTree, Tier};
use std::collections::BTreeSet;

/// The name of node `n` of the fabric `name` with k/2 = `half`.
fn node_name(name: &str, half: u32, n: FatNode) -> String {
    match n {
        FatNode::Host { pod, edge, host } => format!("{name}-pod{pod}-edge{edge}-h{host}"),
        FatNode::Edge { pod, edge } => format!("{name}-pod{pod}-edge{edge}"),
        FatNode::Agg { pod, agg } => format!("{name}-pod{pod}-agg{agg}"),
        FatNode::Core { column, core } => format!("{name}-core{}", column * half + core),
    }
}

/// The fabric's layout, if `d` declares a valid one.
fn layout(d: &FatTreeDecl) -> Option<FatTree> {
    FatTree::new(d.k).ok()
}

/// The names of a fabric's hosts, in index order (none if its `k` is invalid).
pub fn host_names(d: &FatTreeDecl) -> Vec<String> {
    let Some(t) = layout(d) else {
        return Vec::new();
    };
    (0..t.host_count())
        .map(|i| node_name(&d.name, d.k / 2, t.node(i)))
        .collect()
}

/// The fat-tree that makes up the whole of `s`, if `s` is one: its nodes are the
/// fabric's in [`FatTree`]'s order.
pub fn fat_tree(s: &Scenario) -> Option<FatTree> {
    match s.groups.as_slice() {
        [GroupDecl::FatTree(d)] => layout(d),
        _ => None,
    }
}

/// Adds the nodes and links of fabric `d` (group `g` of `s`) to `s`; `taken` holds the
/// node names in use.
pub(crate) fn expand(
    file: &str,
    source: &str,
    s: &mut Scenario,
    g: usize,
    d: &FatTreeDecl,
    taken: &mut BTreeSet<String>,
) -> Result<(), ScenarioError> {
    let at = format!("groups[{g}]");
    let err = |path: String, m: String| error_at(file, source, &path, m);
    let t = FatTree::new(d.k).map_err(|e| err(format!("{at}.k"), e.to_string()))?;
    if s.groups.len() > 1 || !s.nodes.0.is_empty() || !s.links.is_empty() {
        return Err(err(
            at,
            "a FatTree is the whole network of its scenario: declare no other nodes, links \
             or groups (a fabric cannot be joined to other networks yet)"
                .into(),
        ));
    }
    if let Routing::Auto {
        reconverge: Some(_),
        ..
    } = s.routing
    {
        return Err(err(
            "routing".into(),
            "a FatTree's routes are those of the intact fabric: `reconverge` is not \
             supported with one (its routes never change after a fault)"
                .into(),
        ));
    }
    let half = d.k / 2;
    let names: Vec<String> = (0..t.node_count())
        .map(|i| node_name(&d.name, half, t.node(i)))
        .collect();
    if let Some(n) = names.iter().find(|n| taken.contains(n.as_str())) {
        return Err(err(
            format!("{at}.name"),
            format!(
                "fabric \"{}\" needs the node name \"{n}\", which is already used",
                d.name
            ),
        ));
    }
    s.nodes.0.reserve(t.node_count());
    for (i, n) in names.iter().enumerate() {
        let decl = match t.node(i) {
            FatNode::Host { .. } => NodeDecl::Host(L3Decl {
                sysctl: d.sysctl.clone(),
                ..L3Decl::default()
            }),
            _ => NodeDecl::Router(L3Decl::default()),
        };
        s.nodes.0.push((n.clone(), decl));
        s.generated.node_origin.insert(n.clone(), at.clone());
        taken.insert(n.clone());
    }
    let net = |a: std::net::Ipv4Addr| {
        Ipv4Net::new(a, 31).unwrap_or_else(|_| unreachable!("/31 is a valid prefix"))
    };
    s.links.reserve(t.link_count());
    s.generated.link_origin.reserve(t.link_count());
    for l in t.links() {
        let (template, field) = match l.tier {
            Tier::Host => (&d.host_link, "host_link"),
            Tier::Aggregation => (&d.agg_link, "agg_link"),
            Tier::Core => (&d.core_link, "core_link"),
        };
        let mut link = template.link(
            &names[t.index(l.a)],
            &names[t.index(l.b)],
            None,
            Some(net(l.subnet.addr())),
        );
        link.a_addr = Some(net(l.a_addr()));
        link.b_addr = Some(net(l.b_addr()));
        s.links.push(link);
        s.generated.link_origin.push(format!("{at}.{field}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::load::load_str;

    const SRC: &str = r#"Scenario(
    name: "ft",
    groups: [
        FatTree(name: "dc", k: 4, host_link: (rate: "10Gbps"), core_link: (delay: "2us")),
    ],
)"#;

    #[test]
    fn a_fat_tree_expands_into_named_nodes_and_addressed_links() {
        let l = load_str("ft.ron", SRC, &[]).unwrap_or_else(|e| panic!("{e}"));
        let s = &l.scenario;
        assert_eq!(s.nodes.0.len(), 16 + 8 + 8 + 4);
        assert_eq!(s.links.len(), 48);
        let names: Vec<&str> = s.nodes.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names[..3],
            ["dc-pod0-edge0-h0", "dc-pod0-edge0-h1", "dc-pod0-edge1-h0"]
        );
        assert_eq!(names[16..18], ["dc-pod0-edge0", "dc-pod0-edge1"]);
        assert_eq!(names[24..26], ["dc-pod0-agg0", "dc-pod0-agg1"]);
        assert_eq!(
            names[32..],
            ["dc-core0", "dc-core1", "dc-core2", "dc-core3"]
        );
        let link = |i: usize| crate::load::link_name(s, i);
        assert_eq!(link(0), "dc-pod0-edge0-dc-pod0-edge0-h0");
        assert_eq!(link(16), "dc-pod0-edge0-dc-pod0-agg0");
        assert_eq!(link(47), "dc-pod3-agg1-dc-core3");
        assert_eq!(s.links[5].rate.bits_per_sec(), 10_000_000_000);
        assert_eq!(s.links[40].delay.as_nanos(), 2_000);
        assert_eq!(s.links[20].delay.as_nanos(), 0);
        let b = crate::build::build(&l, 1).unwrap_or_else(|e| panic!("{e}"));
        let addr = |n: &str| {
            let i = names.iter().position(|x| *x == n).unwrap();
            b.plan.ifaces[i][0].unwrap().0.to_string()
        };
        assert_eq!(addr("dc-pod2-edge1-h1"), "10.2.1.3");
        assert_eq!(addr("dc-pod2-edge1"), "10.2.1.0");
        assert_eq!(addr("dc-core3"), "10.128.65.3");
        // Routes come from the closed form: two levels of prefixes, ECMP going up.
        let edge = b.world.ip_node(sim_core::world::NodeId(16)).unwrap();
        let up = edge.routes.lookup("10.3.0.1".parse().unwrap()).unwrap();
        assert_eq!(up.prefix.to_string(), "10.3.0.0/16");
        assert_eq!(up.next_hops.len(), 2);
        // Written back as RON, the fabric is one declaration that loads to the same.
        let text = s.to_ron();
        assert!(
            text.contains("FatTree(") && !text.contains("dc-core0"),
            "{text}"
        );
        let back = crate::Loaded::from_scenario("back.ron", s).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&back.scenario, s);
    }

    #[test]
    fn bad_fat_trees_are_located_errors() {
        let cases: &[(&[&str], (usize, usize), &str)] = &[
            (
                &["groups[0].k=5"],
                (4, 32),
                "k must be an even number from 2 to 128, found 5",
            ),
            (&["groups[0].k=0"], (4, 32), "found 0"),
            (&["groups[0].k=130"], (4, 32), "found 130"),
            (
                &[r#"nodes={"x": Host()}"#],
                (4, 9),
                "a FatTree is the whole network",
            ),
            (
                &[r#"routing=Auto(reconverge: "1s")"#],
                (6, 14),
                "`reconverge` is not supported",
            ),
            (
                &["groups[0].host_link.mtu=20"],
                (4, 68),
                "MTU 20 is out of range",
            ),
            (
                &["apps=[Gossip(on: [\"dc\", \"dc-pod0-edge0-h0\"])]"],
                (6, 30),
                "is a member twice",
            ),
        ];
        for (sets, (line, col), want) in cases {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            let e = load_str("ft.ron", SRC, &sets).unwrap_err();
            assert!(e.message.contains(want), "{sets:?}: {e}");
            assert_eq!((e.line, e.col), (*line, *col), "{sets:?}: {e}");
        }
    }
}

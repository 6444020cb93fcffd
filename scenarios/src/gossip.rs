//! The `Gossip` app in scenario files: who its members are, what a valid declaration is,
//! the group every member shares (addresses, parameters, rumors, the log), and its
//! `gossip` section of the summary.

use crate::groups::group_hosts;
use crate::load::{Loaded, ScenarioError};
use crate::schema::{GossipDecl, GossipModeDecl, LoseInterestDecl, NodeDecl, Scenario};
use protocols::apps::gossip::{GossipApp, GossipGroup, Membership};
use protocols::gossip::wire::{HEADER_LEN, RUMOR_OVERHEAD};
use protocols::gossip::{GossipConfig, GossipLog, LoseInterest, Mode, RumorPlan, SwimConfig};
use protocols::host::AppSlot;
use protocols::App;
use sim_core::time::{SimDuration, SimTime};
use sim_core::topology::AddressPlan;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// The port gossip apps use unless told (memberlist's and Serf's default).
pub const DEFAULT_PORT: u16 = 7946;
/// Value bytes of a rumor unless told.
pub const DEFAULT_RUMOR_SIZE: u32 = 16;
/// The largest rumor value a scenario may give.
pub const MAX_RUMOR_SIZE: u32 = 1024;
/// The most members asked for an indirect probe.
pub const MAX_INDIRECT: u32 = 64;
/// The most rounds a run may have: the summary holds figures per round and rumor.
pub const MAX_ROUNDS: u64 = 100_000;
/// The most a UDP datagram carries: every rumor of an app must fit in one, since an
/// anti-entropy answer may carry them all.
const MAX_DATAGRAM: u64 = 65_507;

/// A gossip app as built: its name, its members' node names (a member's index is its
/// position) and what they share.
pub struct GossipRun {
    pub app: String,
    pub members: Vec<String>,
    pub group: Rc<GossipGroup>,
}

/// The member names of `g`, in order: a group's hosts in index order, a node as itself.
pub fn members(s: &Scenario, g: &GossipDecl) -> Vec<String> {
    g.on.iter()
        .flat_map(|name| match s.groups.iter().find(|x| x.name() == name) {
            Some(group) => group_hosts(group),
            None => vec![name.clone()],
        })
        .collect()
}

fn dur(d: crate::units::Duration) -> SimDuration {
    SimDuration::from_nanos(d.as_nanos())
}

/// SWIM's settings with their defaults.
fn membership(g: &GossipDecl) -> Option<Membership> {
    let m = g.membership.as_ref()?;
    let d = SwimConfig::default();
    Some(Membership {
        swim: SwimConfig {
            indirect: m.indirect.unwrap_or(d.indirect),
            suspicion: m.suspicion.map_or(d.suspicion, dur),
            reconnect_every: m.reconnect_every.unwrap_or(d.reconnect_every),
            ..d
        },
        probe_period: m.probe_period.map_or(SimDuration::from_secs(1), dur),
        probe_timeout: m.probe_timeout.map_or(SimDuration::from_millis(500), dur),
    })
}

fn period(g: &GossipDecl) -> SimDuration {
    g.period.map_or(SimDuration::from_secs(1), |d| {
        SimDuration::from_nanos(d.as_nanos())
    })
}

/// Checks app `i`, a `Gossip`, with every error located.
pub(crate) fn validate(
    l: &Loaded,
    i: usize,
    g: &GossipDecl,
    nodes: &BTreeMap<&str, &NodeDecl>,
) -> Result<(), ScenarioError> {
    let s = &l.scenario;
    let at = |f: &str| format!("apps[{i}].{f}");
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (k, name) in g.on.iter().enumerate() {
        let names: Vec<String> = match s.groups.iter().find(|x| x.name() == name) {
            Some(group) => group_hosts(group),
            None => match nodes.get(name.as_str()) {
                None => {
                    let groups: Vec<&str> = s.groups.iter().map(|x| x.name()).collect();
                    return Err(l.error_at(
                        &at(&format!("on[{k}]")),
                        format!(
                            "unknown node or group \"{name}\"; expected a host group ({}) or a host or router",
                            if groups.is_empty() { "none declared".into() } else { groups.join(", ") }
                        ),
                    ));
                }
                Some(NodeDecl::Switch(_)) => {
                    return Err(l.error_at(
                        &at(&format!("on[{k}]")),
                        format!("\"{name}\" is a switch; apps run on hosts and routers"),
                    ))
                }
                Some(NodeDecl::Host(h)) if h.dhcp => {
                    return Err(l.error_at(
                        &at(&format!("on[{k}]")),
                        format!("\"{name}\" gets its address from DHCP at run time; expected a gossip member with a static address"),
                    ))
                }
                Some(_) => vec![name.clone()],
            },
        };
        for n in names {
            if !seen.insert(n.clone()) {
                return Err(l.error_at(
                    &at(&format!("on[{k}]")),
                    format!("\"{n}\" is a member twice"),
                ));
            }
        }
    }
    if seen.len() < 2 {
        return Err(l.error_at(
            &at("on"),
            format!(
                "a gossip app needs at least two members, found {}",
                seen.len()
            ),
        ));
    }
    if g.port == Some(0) {
        return Err(l.error_at(&at("port"), "port must be from 1 to 65535"));
    }
    if g.fanout == Some(0) {
        return Err(l.error_at(&at("fanout"), "fanout must be at least 1"));
    }
    if g.period.is_some_and(|p| p.as_nanos() == 0) {
        return Err(l.error_at(&at("period"), "period must be greater than zero"));
    }
    let span = s.duration.as_nanos().saturating_sub(g.start.as_nanos());
    let rounds = span / period(g).as_nanos().max(1) + 1;
    if rounds > MAX_ROUNDS {
        return Err(l.error_at(
            &at("period"),
            format!(
                "period {} gives {rounds} rounds in the run, more than {MAX_ROUNDS} (the \
                 summary has figures per round): use a longer period or a shorter duration",
                crate::units::Duration::from_nanos(period(g).as_nanos())
            ),
        ));
    }
    if g.anti_entropy.is_some_and(|p| p.as_nanos() == 0) {
        return Err(l.error_at(
            &at("anti_entropy"),
            "anti_entropy must be greater than zero",
        ));
    }
    if g.mode == GossipModeDecl::Off && g.anti_entropy.is_none() {
        return Err(l.error_at(
            &at("mode"),
            "with mode Off rumors spread by anti-entropy only: give `anti_entropy`",
        ));
    }
    if let LoseInterestDecl::Coin { k: 0 } | LoseInterestDecl::Counter { k: 0 } = g.lose_interest {
        return Err(l.error_at(&at("lose_interest"), "k must be at least 1"));
    }
    if let (Some(decl), Some(m)) = (&g.membership, membership(g)) {
        if m.probe_period == SimDuration::ZERO {
            return Err(l.error_at(
                &at("membership.probe_period"),
                "probe_period must be greater than zero",
            ));
        }
        if m.probe_timeout == SimDuration::ZERO || m.probe_timeout >= m.probe_period {
            return Err(l.error_at(
                &at(if decl.probe_timeout.is_some() {
                    "membership.probe_timeout"
                } else {
                    "membership"
                }),
                format!(
                    "probe_timeout ({}) must be greater than zero and shorter than \
                     probe_period ({})",
                    crate::units::Duration::from_nanos(m.probe_timeout.as_nanos()),
                    crate::units::Duration::from_nanos(m.probe_period.as_nanos())
                ),
            ));
        }
        if m.swim.suspicion == SimDuration::ZERO {
            return Err(l.error_at(
                &at("membership.suspicion"),
                "suspicion must be greater than zero",
            ));
        }
        if m.swim.indirect > MAX_INDIRECT {
            return Err(l.error_at(
                &at("membership.indirect"),
                format!("indirect must be at most {MAX_INDIRECT}"),
            ));
        }
    }
    let mut bytes = (HEADER_LEN + 2) as u64;
    for (r, rumor) in g.rumors.iter().enumerate() {
        if !seen.contains(&rumor.from) {
            return Err(l.error_at(
                &at(&format!("rumors[{r}].from")),
                format!("\"{}\" is not a member of this gossip app", rumor.from),
            ));
        }
        if rumor.at < g.start {
            return Err(l.error_at(
                &at(&format!("rumors[{r}].at")),
                format!(
                    "a rumor is born once the app runs: at ({}) must not be before start ({})",
                    rumor.at, g.start
                ),
            ));
        }
        let size = rumor.size.unwrap_or(DEFAULT_RUMOR_SIZE);
        if size > MAX_RUMOR_SIZE {
            return Err(l.error_at(
                &at(&format!("rumors[{r}].size")),
                format!("size must be at most {MAX_RUMOR_SIZE} bytes, found {size}"),
            ));
        }
        bytes += (RUMOR_OVERHEAD + 4) as u64 + u64::from(size);
    }
    if bytes > MAX_DATAGRAM {
        return Err(l.error_at(
            &at("rumors"),
            format!(
                "the rumors take {bytes} bytes in one message, more than a UDP datagram \
                 holds ({MAX_DATAGRAM}): use fewer or smaller rumors"
            ),
        ));
    }
    Ok(())
}

/// The group of app `i` and its members' node indices. Validation guaranteed that every
/// member and rumor origin exists.
pub(crate) fn prepare(
    s: &Scenario,
    app: String,
    g: &GossipDecl,
    plan: &AddressPlan,
    index: &BTreeMap<&str, usize>,
) -> (GossipRun, Vec<usize>) {
    let names = members(s, g);
    let nodes: Vec<usize> = names
        .iter()
        .map(|n| index.get(n.as_str()).copied().unwrap_or(0))
        .collect();
    let addresses = nodes
        .iter()
        .map(|&ni| {
            plan.ifaces[ni]
                .iter()
                .flatten()
                .next()
                .map_or(std::net::Ipv4Addr::UNSPECIFIED, |(a, _)| *a)
        })
        .collect();
    let member_index: BTreeMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(k, n)| (n.as_str(), k as u32))
        .collect();
    let rumors: Vec<RumorPlan> = g
        .rumors
        .iter()
        .map(|r| RumorPlan {
            origin: member_index.get(r.from.as_str()).copied().unwrap_or(0),
            at: SimTime::from_nanos(r.at.as_nanos()),
            size: r.size.unwrap_or(DEFAULT_RUMOR_SIZE),
        })
        .collect();
    let start = SimTime::from_nanos(g.start.as_nanos());
    let period = period(g);
    let protocol = GossipConfig {
        mode: match g.mode {
            GossipModeDecl::Push => Mode::Push,
            GossipModeDecl::Pull => Mode::Pull,
            GossipModeDecl::PushPull => Mode::PushPull,
            GossipModeDecl::Off => Mode::Off,
        },
        fanout: g.fanout.unwrap_or(1),
        feedback: g.feedback,
        lose_interest: match g.lose_interest {
            LoseInterestDecl::Never => LoseInterest::Never,
            LoseInterestDecl::Coin { k } => LoseInterest::Coin { k },
            LoseInterestDecl::Counter { k } => LoseInterest::Counter { k },
        },
    };
    let log = GossipLog::new(names.len() as u32, rumors.len(), start, period).shared();
    let group = Rc::new(GossipGroup {
        name: app.clone(),
        port: g.port.unwrap_or(DEFAULT_PORT),
        members: addresses,
        protocol,
        start,
        period,
        anti_entropy: g
            .anti_entropy
            .map(|d| SimDuration::from_nanos(d.as_nanos())),
        rumors,
        membership: membership(g),
        log,
    });
    (
        GossipRun {
            app,
            members: names,
            group,
        },
        nodes,
    )
}

/// The app slot of member `me`.
pub(crate) fn slot(run: &GossipRun, me: u32) -> AppSlot {
    let group = run.group.clone();
    AppSlot {
        start: group.start,
        factory: Box::new(move || Box::new(GossipApp::new(group.clone(), me)) as Box<dyn App>),
        wait_for_address: false,
    }
}

/// The summary of a run that ended at `end`.
pub fn summary(run: &GossipRun, end: SimTime) -> reports::GossipSummary {
    let g = &run.group;
    let st = g.log.borrow().stats(end, &g.rumors);
    let secs = |t: SimTime| t.as_secs_f64();
    reports::GossipSummary {
        app: run.app.clone(),
        members: u64::from(st.members),
        mode: g.protocol.mode.name().into(),
        fanout: g.protocol.fanout,
        period_s: g.period.as_secs_f64(),
        feedback: g.protocol.feedback,
        lose_interest: g.protocol.lose_interest.name().into(),
        k: g.protocol.lose_interest.k(),
        anti_entropy_s: g.anti_entropy.map(|d| d.as_secs_f64()),
        messages: reports::GossipMessages {
            sent: st.sent,
            received: st.received,
            malformed: st.malformed,
            bytes_sent: st.bytes_sent,
            per_member_mean: st.sent_per_member_mean,
            per_member_max: st.sent_per_member_max,
        },
        membership: g.membership.map(|m| {
            let ms = g.log.borrow().membership_stats(end);
            let name = |i: u32| run.members.get(i as usize).cloned().unwrap_or_default();
            reports::GossipMembership {
                probe_period_s: m.probe_period.as_secs_f64(),
                probe_timeout_s: m.probe_timeout.as_secs_f64(),
                indirect: m.swim.indirect,
                suspicion_s: m.swim.suspicion.as_secs_f64(),
                reconnect_every: m.swim.reconnect_every,
                messages: ms.sent,
                suspicions: ms.suspicions,
                false_suspicions: ms.false_suspicions,
                deaths: ms.deaths,
                false_deaths: ms.false_deaths,
                wrongly_dead_at_end: ms.wrongly_dead_at_end,
                failures: ms
                    .failures
                    .iter()
                    .map(|f| reports::GossipFailure {
                        member: name(f.member),
                        down_s: secs(f.down),
                        up_s: f.up.map(secs),
                        first_suspect_s: f.first_suspect.map(secs),
                        first_dead_s: f.first_dead.map(secs),
                        all_dead_s: f.all_dead.map(secs),
                        rejoined_s: f.rejoined.map(secs),
                    })
                    .collect(),
            }
        }),
        rounds: st
            .rounds
            .iter()
            .map(|r| reports::GossipRound {
                round: r.round,
                t_s: secs(r.t),
                live: r.live,
                messages: r.messages,
            })
            .collect(),
        rumors: st
            .rumors
            .into_iter()
            .map(|r| reports::GossipRumor {
                id: r.id,
                origin: run
                    .members
                    .get(r.origin as usize)
                    .cloned()
                    .unwrap_or_default(),
                born_s: r.born.map(secs),
                first_round: r.first_round,
                informed: r.informed,
                residue: r.residue,
                final_live: r.final_live,
                final_informed: r.final_informed,
                full_s: r.full_at.map(secs),
                rounds_to_full: r.rounds_to_full,
                messages_to_full: r.messages_to_full,
                informed_per_round: r.informed_per_round,
                live_informed_per_round: r.live_informed_per_round,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use crate::load::load_str;
    use crate::schema::{AppDecl, NodeDecl};

    const SRC: &str = r#"Scenario(
    name: "g",
    nodes: { "solo": Host(), "r": Router(), "sw": Switch() },
    groups: [
        HostGroup(name: "a", count: 4),
        HostGroup(name: "b", count: 6, lans: 3, hosts: "b{}", link: (delay: "1ms"),
                  uplink: (rate: "10Gbps")),
    ],
    links: [ Link(a: "solo", b: "r"), Link(a: "r", b: "b-core"), Link(a: "sw", b: "r") ],
    apps: [
        Gossip(name: "g", on: ["a", "solo", "b"], mode: PushPull, fanout: 2,
               lose_interest: Coin(k: 3), anti_entropy: "2s",
               rumors: [ Rumor(from: "b5", at: "1s", size: 8) ]),
    ],
    faults: [ NodeCrash(node: "b3", at: "2s"), LinkDown(link: "b-uplink2", at: "1s") ],
)"#;

    #[test]
    fn groups_expand_into_lans_behind_gateways_and_gossip_members_follow_them() {
        let l = load_str("g.ron", SRC, &[]).unwrap_or_else(|e| panic!("{e}"));
        let s = &l.scenario;
        let names: Vec<&str> = s.nodes.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "solo", "r", "sw", "a-0", "a-1", "a-2", "a-3", "a-sw", "b0", "b1", "b2", "b3",
                "b4", "b5", "b-sw0", "b-gw0", "b-sw1", "b-gw1", "b-sw2", "b-gw2", "b-core"
            ]
        );
        assert!(matches!(s.nodes.0[15].1, NodeDecl::Router(_)));
        let links: Vec<String> = (0..s.links.len())
            .map(|i| crate::load::link_name(s, i))
            .collect();
        assert_eq!(
            links[3..],
            [
                "a-0-a-sw",
                "a-1-a-sw",
                "a-2-a-sw",
                "a-3-a-sw",
                "b-gw0-b-sw0",
                "b0-b-sw0",
                "b1-b-sw0",
                "b-gw1-b-sw1",
                "b2-b-sw1",
                "b3-b-sw1",
                "b-gw2-b-sw2",
                "b4-b-sw2",
                "b5-b-sw2",
                "b-uplink0",
                "b-uplink1",
                "b-uplink2"
            ]
        );
        assert_eq!(s.links[8].delay.as_nanos(), 1_000_000);
        assert_eq!(s.links[16].rate.bits_per_sec(), 10_000_000_000);
        let AppDecl::Gossip(g) = &s.apps[0] else {
            panic!()
        };
        assert_eq!(
            super::members(s, g),
            ["a-0", "a-1", "a-2", "a-3", "solo", "b0", "b1", "b2", "b3", "b4", "b5"]
        );
        // Addresses: group a on 172.16.0.0/16, group b's LANs in /18s of 172.17.0.0/16
        // with the gateway first; routes lead from any LAN to any other.
        let b = crate::build::build(&l, 1).unwrap_or_else(|e| panic!("{e}"));
        let addr = |n: &str| {
            let i = names.iter().position(|x| *x == n).unwrap();
            b.plan.ifaces[i][0].unwrap().0.to_string()
        };
        assert_eq!(addr("a-0"), "172.16.0.1");
        assert_eq!(addr("b-gw1"), "172.17.64.1");
        assert_eq!(addr("b3"), "172.17.64.3");
        assert_eq!(b.gossip.len(), 1);
        assert_eq!(b.gossip[0].group.members.len(), 11);
        assert_eq!(b.gossip[0].group.rumors[0].origin, 10);
        assert_eq!(b.gossip[0].group.members[4].to_string(), addr("solo"));
    }

    fn err(sets: &[&str]) -> crate::ScenarioError {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        load_str("g.ron", SRC, &sets)
            .and_then(|l| crate::build::build(&l, 1).map(|_| l))
            .err()
            .unwrap_or_else(|| panic!("{sets:?} should fail"))
    }

    #[test]
    fn bad_groups_and_gossip_apps_are_located_errors() {
        let cases: &[(&[&str], (usize, usize), &str)] = &[
            (&["groups[0].count=0"], (5, 37), "count must be from 1"),
            (
                &["groups[1].lans=7"],
                (6, 46),
                "lans must be from 1 to count (6)",
            ),
            (
                &["groups[1].hosts=bad"],
                (6, 56),
                "invalid host name pattern \"bad\"",
            ),
            (&["groups[0].name=solo"], (5, 25), "already used by a node"),
            (
                &["groups[1].hosts=a-{}"],
                (6, 56),
                "host name \"a-0\" of group \"b\" is already used",
            ),
            (
                &[r#"groups[0].subnet="10.1.1.0/30""#],
                (5, 48),
                "cannot hold 1 LAN(s) of up to 4 hosts",
            ),
            (
                &["groups[1].link.mtu=20"],
                (6, 89),
                "MTU 20 is out of range",
            ),
            (
                &[r#"groups[0].sysctl={"tcp_syn_retries": "x"}"#],
                (5, 68),
                "expected an integer",
            ),
            (
                &["apps[0].on[1]=nobody"],
                (11, 37),
                "unknown node or group \"nobody\"; expected a host group (a, b)",
            ),
            (&["apps[0].on[1]=sw"], (11, 37), "\"sw\" is a switch"),
            (
                &["apps[0].on[1]=a-2"],
                (11, 37),
                "\"a-2\" is a member twice",
            ),
            (
                &["apps[0].on=[\"solo\"]"],
                (11, 31),
                "at least two members, found 1",
            ),
            (&["apps[0].port=0"], (13, 72), "port must be from 1"),
            (&["apps[0].fanout=0"], (11, 75), "fanout must be at least 1"),
            (
                &["apps[0].period=0s"],
                (13, 74),
                "period must be greater than zero",
            ),
            (
                &["apps[0].period=10us"],
                (13, 74),
                "period 10us gives 1000001 rounds in the run, more than 100000",
            ),
            (
                &["apps[0].mode=Off", "apps[0].anti_entropy=None"],
                (11, 57),
                "give `anti_entropy`",
            ),
            (
                &["apps[0].lose_interest=Counter(k: 0)"],
                (12, 31),
                "k must be at least 1",
            ),
            (
                &["apps[0].rumors[0].from=r"],
                (13, 38),
                "\"r\" is not a member",
            ),
            (&["apps[0].start=2s"], (13, 48), "must not be before start"),
            (
                &["apps[0].rumors[0].size=2000"],
                (13, 60),
                "size must be at most 1024",
            ),
            (&["faults[0].node=b9"], (15, 31), "unknown node \"b9\""),
        ];
        for (sets, (line, col), want) in cases {
            let e = err(sets);
            assert!(e.message.contains(want), "{sets:?}: {e}");
            assert_eq!((e.line, e.col), (*line, *col), "{sets:?}: {e}");
        }
        // SWIM's parameters.
        let swim: &[(&str, &str)] = &[
            (
                r#"Swim(probe_timeout: "2s")"#,
                "probe_timeout (2s) must be greater than zero and shorter than probe_period (1s)",
            ),
            (
                r#"Swim(probe_period: "400ms")"#,
                "probe_timeout (500ms) must be greater than zero and shorter than probe_period (400ms)",
            ),
            (r#"Swim(probe_period: "0s")"#, "probe_period must be greater than zero"),
            (r#"Swim(suspicion: "0s")"#, "suspicion must be greater than zero"),
            ("Swim(indirect: 65)", "indirect must be at most 64"),
        ];
        for (decl, want) in swim {
            let e = err(&[&format!("apps[0].membership={decl}")]);
            assert!(e.message.contains(want), "{decl}: {e}");
            assert!(e.message.contains("apps[0].membership"), "{decl}: {e}");
            assert_eq!(e.line, 13, "{decl}: {e}");
        }
        // Too many rumors for one datagram.
        let many = format!(
            "apps[0].rumors=[{}]",
            vec![r#"Rumor(from: "b5", at: "1s", size: 1024)"#; 70].join(",")
        );
        let e = err(&[&many]);
        assert!(e.message.contains("more than a UDP datagram holds"), "{e}");
        // Unknown fields list the valid ones.
        let e = err(&["groups[0]=HostGroup(name: \"a\", count: 2, lan: 3)"]);
        assert!(e.message.contains("unknown field `lan`"), "{e}");
        assert!(e.message.contains("lans"), "{e}");
    }
}

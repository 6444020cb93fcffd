//! What a scenario can use, for `netdes list`: the apps, congestion controllers, queue
//! disciplines and loss models, each with its parameters (type, default, meaning). The
//! full reference is `docs/scenario-reference.md`; a test checks that every kind and
//! parameter here is exactly what the schema accepts.

use serde::Serialize;

/// A parameter of an app, queue discipline or loss model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Param {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// "required" when it has none.
    pub default: &'static str,
    pub meaning: &'static str,
}

/// An app, queue discipline, loss model or congestion controller.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Kind {
    pub name: String,
    pub summary: &'static str,
    pub params: Vec<Param>,
}

/// Everything `netdes list` shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Catalog {
    pub apps: Vec<Kind>,
    /// Fields every TCP app (not `SynFlood`) accepts.
    pub tcp_socket_options: Vec<Param>,
    pub congestion_controllers: Vec<Kind>,
    pub queue_disciplines: Vec<Kind>,
    pub loss_models: Vec<Kind>,
}

const fn p(
    name: &'static str,
    ty: &'static str,
    default: &'static str,
    meaning: &'static str,
) -> Param {
    Param {
        name,
        ty,
        default,
        meaning,
    }
}

const REQ: &str = "required";

fn kind(name: &str, summary: &'static str, params: &[Param]) -> Kind {
    Kind {
        name: name.to_string(),
        summary,
        params: params.to_vec(),
    }
}

/// What the controllers registered now (built-in ones and any a program registered) do.
fn controller_summary(name: &str) -> &'static str {
    match name {
        "reno" => "Reno (RFC 5681): slow start, AIMD congestion avoidance, fast recovery.",
        "newreno" => "NewReno (RFC 6582): Reno with partial-ACK recovery.",
        "cubic" => "CUBIC (RFC 9438) with HyStart, as Linux's tcp_cubic (the default).",
        "bbr" => "BBR v1, as Linux's tcp_bbr: model-based, paced.",
        "bbr3" => "BBRv3 (draft-ietf-ccwg-bbr): model-based, paced, loss- and ECN-aware.",
        "dctcp" => {
            "DCTCP (RFC 8257): cuts in proportion to ECN marks; needs ECN and a marking queue."
        }
        "vegas" => "Vegas, as Linux's tcp_vegas: keeps 2 to 4 segments queued by delay.",
        _ => "Registered by the program (protocols::tcp::cc::register).",
    }
}

pub fn catalog() -> Catalog {
    let start = p("start", "Duration", "0s", "when it starts");
    let apps = vec![
        kind("Ping", "ICMP echo requests at an interval, like ping; a flow (icmp).", &[
            p("from", "node", REQ, "host or router that pings"),
            p("to", "node or IPv4 address", REQ, "target"),
            p("name", "string", "ping-<index>", "app and flow name"),
            p("count", "integer", "until the end", "echo requests to send"),
            p("interval", "Duration", "1s", "time between requests"),
            p("size", "integer", "56", "ICMP data bytes"),
            p("ttl", "integer", "ip_default_ttl", "TTL of the requests"),
            start.clone(),
        ]),
        kind("Traceroute", "UDP probes with rising TTL, like traceroute.", &[
            p("from", "node", REQ, "host or router that traces"),
            p("to", "node or IPv4 address", REQ, "target"),
            p("name", "string", "traceroute-<index>", "app name"),
            p("max_hops", "integer", "30", "highest TTL tried"),
            p("probes", "integer", "3", "probes per hop"),
            p("wait", "Duration", "5s", "wait for each probe's reply"),
            start.clone(),
        ]),
        kind("UdpCbr", "Constant-bit-rate UDP sender; a flow (udp).", &[
            p("from", "node", REQ, "sending host or router"),
            p("to", "\"node:port\"", REQ, "a UdpSink or UdpEcho"),
            p("rate", "Rate", REQ, "sending rate in UDP payload bits"),
            p("name", "string", "udp-cbr-<index>", "app and flow name"),
            p("size", "integer", "1000", "UDP payload bytes per datagram (at least 24)"),
            start.clone(),
            p("duration", "Duration", "until the end", "stop this long after start"),
            p("count", "integer", "unlimited", "stop after this many datagrams"),
            p("tos", "integer", "0", "IPv4 TOS byte (2 = ECT(0))"),
        ]),
        kind("UdpSink", "Counts CBR datagrams: loss, duplicates, one-way delay.", &[
            p("on", "node", REQ, "host or router"),
            p("port", "integer", REQ, "UDP port to bind"),
            p("name", "string", "udp-sink-<index>", "app name"),
        ]),
        kind("UdpEcho", "UDP echo server (RFC 862).", &[
            p("on", "node", REQ, "host or router"),
            p("port", "integer", REQ, "UDP port to bind"),
            p("name", "string", "udp-echo-<index>", "app name"),
        ]),
        kind("TcpBulk", "iperf-like bulk TCP sender; a flow (tcp). Takes the TCP socket options.", &[
            p("from", "node", REQ, "sending host or router"),
            p("to", "\"node:port\"", REQ, "a TcpSink or TcpEcho"),
            p("name", "string", "tcp-bulk-<index>", "app and flow name"),
            p("bytes", "Byte size", "unlimited", "bytes to write"),
            p("duration", "Duration", "until the end", "stop writing this long after start"),
            start.clone(),
            p("close", "bool", "true", "FIN, read to end of stream and close when done"),
            p("write_size", "Byte size", "64KiB", "bytes per send() call"),
            p("local_port", "integer", "ephemeral", "bind() this port before connecting"),
        ]),
        kind("TcpSink", "Accepts TCP connections, reads and verifies every byte. Takes the TCP socket options.", &[
            p("on", "node", REQ, "host or router"),
            p("port", "integer", REQ, "port to listen on"),
            p("name", "string", "tcp-sink-<index>", "app name"),
            p("backlog", "integer", "128", "listen() backlog"),
            p("read_rate", "Rate", "as fast as data arrives", "read at most this fast per connection"),
            p("accept_delay", "Duration", "none", "call accept() only this long after the start"),
        ]),
        kind("TcpRequestResponse", "Requests answered by a TcpServer, with per-request latency; a flow (tcp). Takes the TCP socket options.", &[
            p("from", "node", REQ, "client host or router"),
            p("to", "\"node:port\"", REQ, "a TcpServer"),
            p("name", "string", "tcp-rr-<index>", "app and flow name"),
            p("count", "integer", "1", "requests to make"),
            p("request", "integer", "100", "request bytes (at least 16)"),
            p("response", "integer", "1000", "response bytes asked for"),
            p("per_connection", "bool", "false", "a new connection for every request"),
            p("interval", "Duration", "none", "start requests at least this far apart"),
            start.clone(),
            p("local_port", "integer", "ephemeral", "bind() this port before each connect()"),
        ]),
        kind("TcpServer", "Answers TcpRequestResponse requests. Takes the TCP socket options.", &[
            p("on", "node", REQ, "host or router"),
            p("port", "integer", REQ, "port to listen on"),
            p("name", "string", "tcp-server-<index>", "app name"),
            p("backlog", "integer", "128", "listen() backlog"),
            p("response", "integer", "what the request asks", "answer every request with this many bytes"),
        ]),
        kind("TcpEcho", "TCP echo server (RFC 862). Takes the TCP socket options.", &[
            p("on", "node", REQ, "host or router"),
            p("port", "integer", REQ, "port to listen on"),
            p("name", "string", "tcp-echo-<index>", "app name"),
            p("backlog", "integer", "128", "listen() backlog"),
        ]),
        kind("Gossip", "Gossip among many hosts: rumor mongering, anti-entropy and optional SWIM membership over UDP (docs/gossip.md).", &[
            p("on", "list of host groups and nodes", REQ, "the members (at least two)"),
            p("name", "string", "gossip-<index>", "app name"),
            p("port", "integer", "7946", "UDP port every member listens on"),
            p("mode", "Push, Pull, PushPull or Off", "Push", "rumor mongering exchange (Off: anti-entropy only)"),
            p("fanout", "integer", "1", "peers contacted per round"),
            p("period", "Duration", "1s", "round length"),
            p("start", "Duration", "0s", "the first round"),
            p("feedback", "bool", "true", "loss of interest counts only contacts that already knew the rumor"),
            p("lose_interest", "Never, Coin(k) or Counter(k)", "Counter(k: 2)", "when a member stops spreading a rumor"),
            p("anti_entropy", "Duration", "none", "push-pull of the full state with one random peer this often"),
            p("rumors", "list of Rumor(from, at, size)", "[]", "rumors born on members"),
            p("membership", "Swim(probe_period, probe_timeout, indirect, suspicion, reconnect_every)", "none", "SWIM failure detection"),
        ]),
        kind("DnsServer", "Authoritative DNS server on UDP and TCP port 53 (docs/dns.md).", &[
            p("on", "node", REQ, "host or router"),
            p("zones", "list of zone names", REQ, "zones (keys of the scenario's `zones`) it serves"),
            p("name", "string", "dns-server-<index>", "app name"),
            p("edns", "bool", "true", "EDNS (RFC 6891); false: FORMERR to queries with an OPT record"),
            p("edns_size", "integer", "1232", "largest UDP answer with EDNS, in bytes"),
        ]),
        kind("DnsResolver", "Recursive DNS resolver with a TTL and negative cache (docs/dns.md).", &[
            p("on", "node", REQ, "host or router"),
            p("root_hints", "list of nodes or addresses", REQ, "the root servers"),
            p("name", "string", "dns-resolver-<index>", "app name"),
            p("timeout", "Duration", "2s", "wait for an upstream answer"),
            p("attempts", "integer", "2", "rounds over a zone's servers before SERVFAIL"),
            p("cache_size", "integer", "10000", "cache entries kept at most"),
            p("edns", "bool", "true", "EDNS (RFC 6891) upstream and to clients; false: none"),
            p("edns_size", "integer", "1232", "EDNS UDP payload size advertised upstream and allowed to clients"),
        ]),
        kind("DhcpServer", "DHCP server (RFC 2131) with address pools (docs/dhcp.md).", &[
            p("on", "node", REQ, "host or router"),
            p("name", "string", "dhcp-server-<index>", "app name"),
            p("pools", "list of Pool(subnet, range, router, dns, lease)", "one per subnet it is on", "addresses it leases"),
            p("lease", "Duration", "1h", "lease time of pools that set none"),
            p("offer_hold", "Duration", "30s", "how long an offered address is held"),
            p("reservations", "map node → address", "{}", "fixed addresses for DHCP hosts"),
        ]),
        kind("DhcpRelay", "DHCP relay agent on a router (docs/dhcp.md).", &[
            p("on", "node", REQ, "router"),
            p("servers", "list of nodes or addresses", REQ, "DHCP servers to forward to"),
            p("name", "string", "dhcp-relay-<index>", "app name"),
        ]),
        kind("SynFlood", "SYNs from spoofed random sources through a raw socket.", &[
            p("from", "node", REQ, "host or router that floods"),
            p("to", "\"node:port\"", REQ, "target"),
            p("rate", "integer", REQ, "SYNs per second"),
            p("name", "string", "syn-flood-<index>", "app name"),
            start,
            p("duration", "Duration", "until the end", "stop this long after start"),
            p("count", "integer", "unlimited", "stop after this many SYNs"),
            p("source", "IPv4 network", "198.18.0.0/15", "where spoofed sources come from"),
        ]),
    ];
    let tcp_socket_options = vec![
        p("reuse_addr", "bool", "false", "SO_REUSEADDR"),
        p("keepalive", "bool", "false", "SO_KEEPALIVE"),
        p(
            "keep_idle",
            "Duration",
            "tcp_keepalive_time",
            "TCP_KEEPIDLE",
        ),
        p(
            "keep_intvl",
            "Duration",
            "tcp_keepalive_intvl",
            "TCP_KEEPINTVL",
        ),
        p("keep_cnt", "integer", "tcp_keepalive_probes", "TCP_KEEPCNT"),
        p("nodelay", "bool", "false", "TCP_NODELAY"),
        p(
            "linger",
            "Duration",
            "none",
            "SO_LINGER (\"0s\" aborts with RST)",
        ),
        p("sndbuf", "Byte size", "tcp_wmem default", "SO_SNDBUF"),
        p("rcvbuf", "Byte size", "tcp_rmem default", "SO_RCVBUF"),
        p("max_seg", "integer", "none", "TCP_MAXSEG"),
        p(
            "cc",
            "string",
            "tcp_congestion_control",
            "TCP_CONGESTION: a congestion controller below",
        ),
    ];
    let congestion_controllers = protocols::tcp::cc::names()
        .into_iter()
        .map(|n| Kind {
            summary: controller_summary(&n),
            name: n,
            params: Vec::new(),
        })
        .collect();
    let limit = p(
        "limit",
        "Queue limit",
        "1000 packets",
        "hard limit: packets (\"100 packets\") or bytes (\"64KiB\")",
    );
    let queue_disciplines = vec![
        kind(
            "DropTail",
            "FIFO, drops arrivals at the limit.",
            std::slice::from_ref(&limit),
        ),
        kind(
            "Red",
            "Random Early Detection (Floyd & Jacobson, Linux sch_red).",
            &[
                limit.clone(),
                p(
                    "min_th",
                    "Queue limit",
                    "max_th/3",
                    "no early drop below this average",
                ),
                p(
                    "max_th",
                    "Queue limit",
                    "limit/4",
                    "the probability reaches max_p here",
                ),
                p("max_p", "Probability", "0.02", "drop probability at max_th"),
                p(
                    "weight",
                    "Probability",
                    "0.002",
                    "EWMA weight of the average",
                ),
                p(
                    "gentle",
                    "bool",
                    "true",
                    "ramp to 1 between max_th and 2 max_th",
                ),
                p(
                    "ecn",
                    "bool",
                    "false",
                    "mark ECN-capable packets instead of dropping",
                ),
                p(
                    "avpkt",
                    "Byte size",
                    "1000B",
                    "typical packet size (idle-time correction)",
                ),
            ],
        ),
        kind(
            "CoDel",
            "Controlled Delay (RFC 8289, Linux sch_codel).",
            &[
                limit,
                p(
                    "target",
                    "Duration",
                    "5ms",
                    "acceptable standing queue delay",
                ),
                p(
                    "interval",
                    "Duration",
                    "100ms",
                    "how long the delay may stay above target",
                ),
                p(
                    "ecn",
                    "bool",
                    "false",
                    "mark ECN-capable packets instead of dropping",
                ),
            ],
        ),
    ];
    let loss_models = vec![
        kind("None", "No random loss.", &[]),
        kind(
            "Bernoulli",
            "Each frame lost independently: Bernoulli(P).",
            &[p(
                "(positional)",
                "Probability",
                REQ,
                "loss probability: Bernoulli(0.01) or Bernoulli(\"1%\")",
            )],
        ),
        kind(
            "GilbertElliott",
            "Two-state Markov chain: bursts of loss.",
            &[
                p("p", "Probability", REQ, "good -> bad after each frame"),
                p("r", "Probability", REQ, "bad -> good after each frame"),
                p("loss_good", "Probability", "0", "loss in the good state"),
                p("loss_bad", "Probability", "1", "loss in the bad state"),
            ],
        ),
    ];
    Catalog {
        apps,
        tcp_socket_options,
        congestion_controllers,
        queue_disciplines,
        loss_models,
    }
}

impl Catalog {
    /// The text `netdes list` prints: `what` is "apps", "cc", "queues", "loss" or "all".
    pub fn human(&self, what: &str) -> String {
        let mut o = String::new();
        let params = |o: &mut String, ps: &[Param]| {
            let w = ps.iter().map(|p| p.name.len()).max().unwrap_or(0);
            for p in ps {
                o.push_str(&format!(
                    "    {:<w$}  {} ({}) {}\n",
                    p.name,
                    p.ty,
                    if p.default == REQ {
                        "required".to_string()
                    } else {
                        format!("default {}", p.default)
                    },
                    p.meaning,
                ));
            }
        };
        let kinds = |o: &mut String, title: &str, ks: &[Kind]| {
            o.push_str(title);
            o.push('\n');
            for k in ks {
                o.push_str(&format!("  {}: {}\n", k.name, k.summary));
                params(o, &k.params);
            }
            o.push('\n');
        };
        if matches!(what, "apps" | "all") {
            kinds(&mut o, "Apps (scenario `apps: [...]`):", &self.apps);
            o.push_str("  TCP socket options (TcpBulk, TcpSink, TcpRequestResponse, TcpServer, TcpEcho):\n");
            params(&mut o, &self.tcp_socket_options);
            o.push('\n');
        }
        if matches!(what, "cc" | "all") {
            kinds(
                &mut o,
                "Congestion controllers (a TCP app's `cc`, or the `tcp_congestion_control` sysctl):",
                &self.congestion_controllers,
            );
        }
        if matches!(what, "queues" | "all") {
            kinds(
                &mut o,
                "Queue disciplines (a link's `queue`):",
                &self.queue_disciplines,
            );
        }
        if matches!(what, "loss" | "all") {
            kinds(&mut o, "Loss models (a link's `loss`):", &self.loss_models);
        }
        o.push_str("Full reference: docs/scenario-reference.md\n");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{AppDecl, LossDecl, QueueDecl};

    /// The variants and fields the schema accepts, read from the parser's own "expected
    /// one of" messages.
    fn expected<T: serde::de::DeserializeOwned + std::fmt::Debug>(text: &str) -> Vec<String> {
        let e = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES)
            .from_str::<T>(text)
            .unwrap_err();
        match e.code {
            ron::Error::NoSuchEnumVariant { expected, .. }
            | ron::Error::NoSuchStructField { expected, .. } => {
                expected.iter().map(|s| s.to_string()).collect()
            }
            other => panic!("{text}: {other}"),
        }
    }

    fn names(ps: &[Param]) -> Vec<String> {
        let mut v: Vec<String> = ps.iter().map(|p| p.name.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn the_catalog_lists_exactly_what_the_schema_accepts() {
        let c = catalog();
        let sockopts = names(&c.tcp_socket_options);
        let kinds: Vec<String> = c.apps.iter().map(|k| k.name.clone()).collect();
        assert_eq!(kinds, expected::<AppDecl>("NoSuchApp()"));
        for k in &c.apps {
            let mut schema = expected::<AppDecl>(&format!("{}(no_such_field: 1)", k.name));
            schema.sort();
            let mut listed = names(&k.params);
            if k.summary.contains("TCP socket options") {
                listed.extend(sockopts.iter().cloned());
                listed.sort();
            }
            assert_eq!(listed, schema, "{}", k.name);
        }
        let queues: Vec<String> = c.queue_disciplines.iter().map(|k| k.name.clone()).collect();
        assert_eq!(queues, expected::<QueueDecl>("NoSuchQueue()"));
        for k in &c.queue_disciplines {
            let mut schema = expected::<QueueDecl>(&format!("{}(no_such_field: 1)", k.name));
            schema.sort();
            assert_eq!(names(&k.params), schema, "{}", k.name);
        }
        let losses: Vec<String> = c.loss_models.iter().map(|k| k.name.clone()).collect();
        assert_eq!(losses, expected::<LossDecl>("NoSuchLoss"));
        let mut ge = expected::<LossDecl>("GilbertElliott(no_such_field: 1)");
        ge.sort();
        assert_eq!(names(&c.loss_models[2].params), ge);
        let cc: Vec<String> = c
            .congestion_controllers
            .iter()
            .map(|k| k.name.clone())
            .collect();
        assert_eq!(cc, protocols::tcp::cc::names());
        for name in ["reno", "newreno", "cubic", "bbr"] {
            assert!(cc.iter().any(|c| c == name), "{name}");
        }
        // Every built-in controller has a summary of its own; only a program's get the
        // generic line (this test registers none).
        for k in &c.congestion_controllers {
            assert!(!k.summary.starts_with("Registered by"), "{}", k.name);
        }
        // The summary that says "(the default)" is the default's.
        let default = protocols::tcp::TcpConfig::default().congestion_control;
        for k in &c.congestion_controllers {
            assert_eq!(
                k.summary.contains("(the default)"),
                k.name == default,
                "{}",
                k.name
            );
        }
        let text = c.human("all");
        assert!(text.contains("  CoDel: Controlled Delay"), "{text}");
        assert!(
            text.contains("    rate      Rate (required) sending rate"),
            "{text}"
        );
    }
}

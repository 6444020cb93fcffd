//! The stub resolver reads the host's DNS servers at each lookup (`Os::dns_servers`), so a
//! program that replaces them (a DHCP client, with `Os::set_dns_servers`) changes where
//! the next lookup goes. A user's app drives the host's stub through the public App/Os API
//! on a world built by hand: client -- server, the server authoritative for "example".

use protocols::dns::server::{DnsAuthConfig, DnsAuthServer};
use protocols::dns::zone::{Zone, ZoneData, ZoneRecord, ZoneSpec};
use protocols::dns::{LookupError, LookupResult};
use protocols::host::{AppSlot, HostConfig, HostStack};
use protocols::{App, Os};
use sim_core::ip::{Iface, IpConfig, IpNode};
use sim_core::link::ChannelConfig;
use sim_core::packet::MacAddr;
use sim_core::route::EcmpMode;
use sim_core::time::{SimDuration, SimTime};
use sim_core::topology::{self, NodeKind, TopoLink, TopoNode};
use sim_core::world::{NodeId, NodeSpec, StackFactory, World};
use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::rc::Rc;

type Log = Rc<RefCell<Vec<(u64, SimTime, LookupResult)>>>;

/// Looks www.example up with the host's servers as they are (none), then sets `server`
/// as the host's only server and looks it up again.
struct Client {
    server: Ipv4Addr,
    log: Log,
}

impl App for Client {
    fn name(&self) -> &str {
        "client"
    }
    fn start(&mut self, os: &mut Os<'_, '_>) {
        assert!(os.dns_servers().is_empty());
        os.lookup("www.example", 1);
    }
    fn on_resolved(&mut self, os: &mut Os<'_, '_>, token: u64, result: &LookupResult) {
        self.log
            .borrow_mut()
            .push((token, os.now(), result.clone()));
        if token == 1 {
            os.set_dns_servers(&[self.server]);
            os.lookup("www.example", 2);
        }
    }
}

#[test]
fn lookups_use_the_servers_the_host_has_when_they_start() {
    let nodes = vec![
        TopoNode {
            name: "client".into(),
            kind: NodeKind::Host,
            dynamic_address: false,
        },
        TopoNode {
            name: "server".into(),
            kind: NodeKind::Host,
            dynamic_address: false,
        },
    ];
    let links = vec![TopoLink {
        a: 0,
        b: 1,
        subnet: None,
        a_addr: None,
        b_addr: None,
    }];
    let plan = topology::plan_addresses(&nodes, &links).unwrap();
    let addr = |i: usize| plan.ifaces[i][0].unwrap().0;
    let (server, www) = (addr(1), Ipv4Addr::new(10, 7, 7, 7));
    let zone = Zone::new(&ZoneSpec {
        origin: "example".into(),
        serial: 1,
        soa_ttl: 60,
        negative_ttl: 60,
        records: vec![ZoneRecord {
            name: "www".into(),
            ttl: 60,
            data: ZoneData::A(www),
        }],
    })
    .unwrap();
    let log: Log = Rc::default();
    let mut world = World::new(1);
    for (ni, node) in nodes.iter().enumerate() {
        let ifaces = vec![Iface {
            mac: MacAddr([0x02, 0, 0, ni as u8, 0, 1]),
            addr: addr(ni),
            prefix: plan.ifaces[ni][0].unwrap().1,
            mtu: 1500,
        }];
        let ip = IpNode::new(
            NodeId(ni as u32),
            false,
            ifaces,
            IpConfig::default(),
            EcmpMode::PerFlow,
            0,
            world.net.rng.stream(&node.name),
        );
        let app: protocols::AppFactory = if ni == 0 {
            let log = log.clone();
            Box::new(move || {
                Box::new(Client {
                    server,
                    log: log.clone(),
                }) as Box<dyn App>
            })
        } else {
            let cfg = DnsAuthConfig {
                name: "auth".into(),
                zones: vec![zone.clone()],
                edns: Some(protocols::dns::edns::DEFAULT_PAYLOAD),
            };
            Box::new(move || Box::new(DnsAuthServer::new(cfg.clone())) as Box<dyn App>)
        };
        let config = Rc::new(HostConfig {
            apps: vec![AppSlot {
                start: SimTime::from_secs(1),
                factory: app,
                wait_for_address: false,
            }],
            tcp: Default::default(),
            kills: Vec::new(),
            dns_servers: Vec::new(),
            hosts: Vec::new(),
            resolver: Default::default(),
        });
        let factory: StackFactory = Box::new(move || Box::new(HostStack::new(config.clone())));
        world.add_node(
            &node.name,
            NodeSpec::Ip {
                ip: Box::new(ip),
                factory: Some(factory),
            },
        );
    }
    let cfg = ChannelConfig {
        delay: SimDuration::from_millis(1),
        ..ChannelConfig::default()
    };
    world.add_link("l", NodeId(0), NodeId(1), 1500, cfg.clone(), cfg);
    world.start();
    world.run(SimTime::from_secs(5), None, || false);
    let log = log.borrow();
    assert_eq!(log.len(), 2, "{log:?}");
    // No servers at the first lookup: it fails at once, without a packet.
    assert_eq!(log[0].0, 1);
    assert_eq!(log[0].1, SimTime::from_secs(1));
    assert_eq!(log[0].2, Err(LookupError::NoServers));
    // The server set in between answers the second.
    assert_eq!(log[1].0, 2);
    assert!(log[1].1 > SimTime::from_secs(1));
    assert_eq!(log[1].2, Ok(vec![www]));
}

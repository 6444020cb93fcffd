//! Property: a server never lets two clients use one address at the same time, whatever
//! the loss, the timing and the clients joining and leaving.
//!
//! A small discrete-event harness (no scheduler, no IP layer): one server and several
//! clients on one LAN; every message is delivered after 1 to 2 ms or lost; clients start,
//! crash (keeping their lease file, as a disk would) and restart at random times. After
//! every event, the addresses configured on clients are distinct, and each is leased to
//! that client by the server.

use super::client::{Action, Client, ClientConfig, Dest, Lease};
use super::server::{Arrival, PoolConfig, ReplyDest, Server, ServerConfig};
use super::*;
use proptest::prelude::*;
use sim_core::rng::{RngFactory, SimRng};
use sim_core::route::Prefix;
use sim_core::time::SimTime;
use std::collections::BTreeMap;

const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const MS: u64 = 1_000_000;

#[derive(Clone, Debug)]
enum Ev {
    Start(usize),
    Crash(usize),
    Timer(usize, SimTime),
    ToServer(Message),
    /// A server reply: to every client (broadcast) or to the one with the MAC.
    ToClients(Message, Option<MacAddr>),
}

struct Harness {
    now: SimTime,
    queue: BTreeMap<(SimTime, u64), Ev>,
    seq: u64,
    wire: SimRng,
    loss: f64,
    server: Server,
    clients: Vec<Option<Client>>,
    /// The lease file and the configured address of each client.
    files: Vec<Option<Lease>>,
    configured: Vec<Option<Ipv4Addr>>,
    rngs: RngFactory,
    starts: Vec<u32>,
}

fn mac(i: usize) -> MacAddr {
    MacAddr([2, 0, 0, 0, 1, i as u8])
}

impl Harness {
    fn at(&mut self, t: SimTime, ev: Ev) {
        self.seq += 1;
        self.queue.insert((t, self.seq), ev);
    }

    /// Puts a message on the wire: lost, or delivered 1 to 2 ms later.
    fn transmit(&mut self, ev: Ev) {
        if self.wire.chance(self.loss) {
            return;
        }
        let delay = MS + self.wire.below(MS);
        self.at(self.now + SimDuration::from_nanos(delay), ev);
    }

    fn apply(&mut self, i: usize, out: Vec<Action>) {
        for a in out {
            match a {
                Action::Send { msg, to } => {
                    // Broadcasts and unicasts to the server both reach it.
                    debug_assert!(matches!(to, Dest::Broadcast | Dest::Unicast(SERVER_ADDR)));
                    self.transmit(Ev::ToServer(msg));
                }
                Action::Configure(l) => self.configured[i] = Some(l.addr),
                Action::Deconfigure => self.configured[i] = None,
                Action::Save(l) => self.files[i] = l,
                _ => {}
            }
        }
        if let Some(d) = self.clients[i].as_ref().and_then(|c| c.deadline()) {
            self.at(d, Ev::Timer(i, d));
        }
    }

    fn step(&mut self) -> bool {
        let Some(((t, _), ev)) = self.queue.pop_first() else {
            return false;
        };
        self.now = t;
        let now = t;
        match ev {
            Ev::Start(i) => {
                if self.clients[i].is_none() {
                    self.starts[i] += 1;
                    let cfg = ClientConfig::new(mac(i), "c");
                    let rng = self.rngs.stream(&format!("client{i}:{}", self.starts[i]));
                    let mut c = Client::new(cfg, rng);
                    let mut out = Vec::new();
                    c.start(now, self.files[i].clone(), &mut out);
                    self.clients[i] = Some(c);
                    self.apply(i, out);
                }
            }
            Ev::Crash(i) => {
                self.clients[i] = None;
                self.configured[i] = None;
            }
            Ev::Timer(i, d) => {
                let mut out = Vec::new();
                if let Some(c) = self.clients[i].as_mut().filter(|c| c.deadline() == Some(d)) {
                    c.on_timer(now, &mut out);
                    self.apply(i, out);
                }
            }
            Ev::ToServer(m) => {
                let at = Arrival {
                    server_id: SERVER_ADDR,
                    subnet: Prefix::new(SERVER_ADDR, 24),
                };
                let (_, reply) = self.server.handle(now, &m, at);
                if let Some(r) = reply {
                    let to = match r.to {
                        ReplyDest::Link { mac, .. } => Some(mac),
                        _ => chaddr_mac(&r.msg).filter(|_| r.to != ReplyDest::Broadcast),
                    };
                    self.transmit(Ev::ToClients(r.msg, to));
                }
            }
            Ev::ToClients(m, to) => {
                for i in 0..self.clients.len() {
                    if to.is_some_and(|mc| mc != mac(i)) {
                        continue;
                    }
                    let mut out = Vec::new();
                    if let Some(c) = self.clients[i].as_mut() {
                        c.on_message(now, &m, &mut out);
                        self.apply(i, out);
                    }
                }
            }
        }
        true
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let mut seen: BTreeMap<Ipv4Addr, usize> = BTreeMap::new();
        for (i, a) in self.configured.iter().enumerate() {
            let Some(a) = *a else { continue };
            if let Some(j) = seen.insert(a, i) {
                return Err(TestCaseError::fail(format!(
                    "{}: clients {j} and {i} both use {a}",
                    self.now
                )));
            }
            // The server still leases it to this client (its lease outlasts the client's).
            let key = client_identifier(mac(i));
            let before = SimTime::from_nanos(self.now.as_nanos().saturating_sub(1));
            prop_assert_eq!(
                self.server.lease_holder(before, a),
                Some(&key[..]),
                "{}: client {} uses {} but the server does not lease it to it",
                self.now,
                i,
                a
            );
        }
        Ok(())
    }
}

fn schedule() -> impl Strategy<Value = Vec<(u64, bool)>> {
    // (time in ms, start or crash), per client.
    prop::collection::vec((0u64..400_000, any::<bool>()), 1..6)
}

/// Runs the harness; returns how many clients ever had an address.
fn run(
    seed: u64,
    loss: f64,
    pool_size: u8,
    lease_s: u64,
    plans: &[Vec<(u64, bool)>],
) -> Result<usize, TestCaseError> {
    let rngs = RngFactory::new(seed);
    let n = plans.len();
    let pool = PoolConfig {
        subnet: Prefix::new(SERVER_ADDR, 24),
        first: Ipv4Addr::new(10, 0, 0, 100),
        last: Ipv4Addr::new(10, 0, 0, 99 + pool_size),
        exclude: Vec::new(),
        router: None,
        dns: Vec::new(),
        lease: SimDuration::from_secs(lease_s),
    };
    let mut h = Harness {
        now: SimTime::ZERO,
        queue: BTreeMap::new(),
        seq: 0,
        wire: rngs.stream("wire"),
        loss,
        server: Server::new(ServerConfig {
            pools: vec![pool],
            reservations: Vec::new(),
            offer_hold: SimDuration::from_secs(30),
        }),
        clients: (0..n).map(|_| None).collect(),
        files: vec![None; n],
        configured: vec![None; n],
        rngs,
        starts: vec![0; n],
    };
    for (i, plan) in plans.iter().enumerate() {
        h.at(SimTime::ZERO, Ev::Start(i));
        for &(ms, start) in plan {
            let t = SimTime::from_nanos(ms * MS);
            h.at(t, if start { Ev::Start(i) } else { Ev::Crash(i) });
        }
    }
    let end = SimTime::from_secs(600);
    let mut ever = vec![false; n];
    while h
        .queue
        .first_key_value()
        .is_some_and(|((t, _), _)| *t <= end)
    {
        h.step();
        h.check()?;
        for (e, c) in ever.iter_mut().zip(&h.configured) {
            *e |= c.is_some();
        }
    }
    Ok(ever.iter().filter(|e| **e).count())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_address_is_leased_to_two_clients_at_once(
        seed in any::<u64>(),
        loss in 0.0f64..0.3,
        pool_size in 2u8..6,
        lease_s in 20u64..120,
        plans in prop::collection::vec(schedule(), 2..8),
    ) {
        run(seed, loss, pool_size, lease_s, &plans)?;
    }
}

/// The harness is not vacuous: with more clients than addresses, some lose and retry,
/// addresses pass between clients as leases expire, and every client gets one at some
/// point.
#[test]
fn the_harness_binds_clients_that_take_turns_with_few_addresses() {
    // Six clients, three addresses; each client leaves after 100 s and comes back at
    // 300 s, when the first ones' leases have long expired.
    let plans: Vec<Vec<(u64, bool)>> = (0..6)
        .map(|i| vec![(100_000 + i * 1000, false), (300_000, true)])
        .collect();
    let bound = run(7, 0.1, 3, 30, &plans).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bound, 6);
}

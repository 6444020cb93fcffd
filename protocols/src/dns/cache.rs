//! The recursive resolver's cache: RRsets by (name, type) for their TTL (RFC 1035 7.4,
//! RFC 2181 5 and 8), and negative answers (NXDOMAIN for a name, NODATA for a name and type)
//! for the TTL of the SOA that came with them (RFC 2308 5).
//!
//! Times are virtual; an entry stored at `t` with TTL `s` seconds is usable while
//! `now < t + s` and never after. TTLs handed out count down (whole seconds, rounded down).
//! Owns nothing else: no messages, no sockets.

use hickory_proto::rr::{Name, Record, RecordType};
use sim_core::time::{SimDuration, SimTime};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
struct RrSet {
    records: Vec<Record>,
    expires: SimTime,
}

#[derive(Clone, Debug)]
struct Negative {
    soa: Option<Record>,
    expires: SimTime,
}

/// What the cache knows about (name, type).
#[derive(Clone, Debug, PartialEq)]
pub enum Cached {
    /// The RRset, TTLs counted down to now.
    Records(Vec<Record>),
    /// The name does not exist (NXDOMAIN), with the SOA to return.
    NxDomain(Option<Record>),
    /// The name exists without records of this type (NODATA).
    NoData(Option<Record>),
}

#[derive(Clone, Debug)]
pub struct Cache {
    rrsets: BTreeMap<(Name, RecordType), RrSet>,
    nxdomain: BTreeMap<Name, Negative>,
    nodata: BTreeMap<(Name, RecordType), Negative>,
    /// Entries kept at most (expired ones are purged first, then the soonest to expire).
    capacity: usize,
}

fn secs(s: u32) -> SimDuration {
    SimDuration::from_secs(s as u64)
}

/// Whole seconds left until `expires`.
fn remaining(expires: SimTime, now: SimTime) -> u32 {
    ((expires.as_nanos() - now.as_nanos()) / 1_000_000_000).min(u32::MAX as u64) as u32
}

fn with_ttl(r: &Record, ttl: u32) -> Record {
    let mut r = r.clone();
    r.ttl = ttl;
    r
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache {
            rrsets: BTreeMap::new(),
            nxdomain: BTreeMap::new(),
            nodata: BTreeMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.rrsets.len() + self.nxdomain.len() + self.nodata.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stores an RRset (all of `records` share a name and type); its TTL is the smallest
    /// of theirs (RFC 2181 5.2). TTL 0 is not stored (RFC 1035 3.2.1).
    pub fn put_rrset(&mut self, now: SimTime, records: Vec<Record>) {
        let Some(first) = records.first() else { return };
        let ttl = records.iter().map(|r| r.ttl).min().unwrap_or(0);
        if ttl == 0 {
            return;
        }
        let key = (first.name.clone(), first.record_type());
        // Fresh data for a name replaces what we knew negatively about it.
        self.nxdomain.remove(&key.0);
        self.nodata.remove(&key);
        self.rrsets.insert(
            key,
            RrSet {
                records,
                expires: now + secs(ttl),
            },
        );
        self.bound(now);
    }

    /// Stores a negative answer for `name` (`qtype` None: NXDOMAIN, the whole name) for
    /// the SOA's TTL, already min(SOA TTL, MINIMUM) as the authority sends it (RFC 2308 5).
    /// Without an SOA nothing is stored (RFC 2308 5: no SOA, no negative caching).
    pub fn put_negative(
        &mut self,
        now: SimTime,
        name: &Name,
        qtype: Option<RecordType>,
        soa: Option<Record>,
    ) {
        let Some(ttl) = soa.as_ref().map(|s| s.ttl) else {
            return;
        };
        if ttl == 0 {
            return;
        }
        let n = Negative {
            soa,
            expires: now + secs(ttl),
        };
        // A negative answer replaces what was known positively (the name or the type is
        // gone): older records must not come back when the negative entry expires.
        match qtype {
            None => {
                self.rrsets.retain(|(n, _), _| n != name);
                self.nodata.retain(|(n, _), _| n != name);
                self.nxdomain.insert(name.clone(), n);
            }
            Some(t) => {
                self.rrsets.remove(&(name.clone(), t));
                self.nodata.insert((name.clone(), t), n);
            }
        }
        self.bound(now);
    }

    /// What is known about (name, type) at `now`; expired entries are never returned.
    pub fn get(&self, now: SimTime, name: &Name, qtype: RecordType) -> Option<Cached> {
        let negative_soa = |n: &Negative| {
            n.soa
                .as_ref()
                .map(|s| with_ttl(s, remaining(n.expires, now)))
        };
        if let Some(n) = self.nxdomain.get(name).filter(|n| now < n.expires) {
            return Some(Cached::NxDomain(negative_soa(n)));
        }
        let key = (name.clone(), qtype);
        if let Some(s) = self.rrsets.get(&key).filter(|s| now < s.expires) {
            let ttl = remaining(s.expires, now);
            return Some(Cached::Records(
                s.records.iter().map(|r| with_ttl(r, ttl)).collect(),
            ));
        }
        if let Some(n) = self.nodata.get(&key).filter(|n| now < n.expires) {
            return Some(Cached::NoData(negative_soa(n)));
        }
        None
    }

    /// The cached records of (name, type), if any.
    pub fn records(&self, now: SimTime, name: &Name, qtype: RecordType) -> Option<Vec<Record>> {
        match self.get(now, name, qtype) {
            Some(Cached::Records(r)) => Some(r),
            _ => None,
        }
    }

    /// Drops expired entries, then the soonest to expire while over capacity.
    fn bound(&mut self, now: SimTime) {
        if self.len() <= self.capacity {
            return;
        }
        self.rrsets.retain(|_, s| now < s.expires);
        self.nxdomain.retain(|_, n| now < n.expires);
        self.nodata.retain(|_, n| now < n.expires);
        while self.len() > self.capacity {
            let soonest = self
                .rrsets
                .iter()
                .map(|(k, s)| (s.expires, k.clone()))
                .min();
            match soonest {
                Some((_, k)) => {
                    self.rrsets.remove(&k);
                }
                None => {
                    let k = self.nxdomain.keys().next().cloned();
                    match k {
                        Some(k) => {
                            self.nxdomain.remove(&k);
                        }
                        None => {
                            let k = self.nodata.keys().next().cloned();
                            if let Some(k) = k {
                                self.nodata.remove(&k);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::fqdn;
    use hickory_proto::rr::rdata::{A, SOA};
    use hickory_proto::rr::RData;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn a(name: &str, ttl: u32) -> Record {
        Record::from_rdata(fqdn(name).unwrap(), ttl, RData::A(A(Ipv4Addr::LOCALHOST)))
    }

    fn soa(ttl: u32) -> Record {
        Record::from_rdata(
            fqdn("example.").unwrap(),
            ttl,
            RData::SOA(SOA::new(
                fqdn("ns.example.").unwrap(),
                fqdn("h.example.").unwrap(),
                1,
                1,
                1,
                1,
                ttl,
            )),
        )
    }

    fn t(s: f64) -> SimTime {
        SimTime::from_nanos((s * 1e9) as u64)
    }

    #[test]
    fn records_live_exactly_their_ttl_and_count_down() {
        let mut c = Cache::new(100);
        let n = fqdn("www.example.").unwrap();
        c.put_rrset(t(1.0), vec![a("www.example.", 300)]);
        let got = c.records(t(1.0), &n, RecordType::A).unwrap();
        assert_eq!(got[0].ttl, 300);
        assert_eq!(c.records(t(101.5), &n, RecordType::A).unwrap()[0].ttl, 199);
        assert!(c.records(t(300.999_999_999), &n, RecordType::A).is_some());
        assert_eq!(
            c.get(t(301.0), &n, RecordType::A),
            None,
            "gone at 1 s + 300 s"
        );
        // Case does not matter; TTL 0 is not cached.
        c.put_rrset(t(0.0), vec![a("zero.example.", 0)]);
        assert_eq!(
            c.get(t(0.0), &fqdn("zero.example.").unwrap(), RecordType::A),
            None
        );
        assert!(c
            .get(t(2.0), &fqdn("WWW.Example.").unwrap(), RecordType::A)
            .is_some());
    }

    #[test]
    fn negative_answers_are_cached_for_the_soa_ttl() {
        let mut c = Cache::new(100);
        let n = fqdn("nope.example.").unwrap();
        c.put_negative(t(0.0), &n, None, Some(soa(60)));
        // NXDOMAIN covers every type.
        assert!(
            matches!(c.get(t(59.9), &n, RecordType::A), Some(Cached::NxDomain(Some(s))) if s.ttl == 0)
        );
        assert!(matches!(
            c.get(t(10.0), &n, RecordType::NS),
            Some(Cached::NxDomain(_))
        ));
        assert_eq!(c.get(t(60.0), &n, RecordType::A), None);
        let w = fqdn("www.example.").unwrap();
        c.put_negative(t(0.0), &w, Some(RecordType::NS), Some(soa(30)));
        assert!(matches!(
            c.get(t(1.0), &w, RecordType::NS),
            Some(Cached::NoData(_))
        ));
        assert_eq!(c.get(t(1.0), &w, RecordType::A), None);
        // No SOA: not cached (RFC 2308 5).
        c.put_negative(t(0.0), &fqdn("x.").unwrap(), None, None);
        assert_eq!(c.get(t(0.0), &fqdn("x.").unwrap(), RecordType::A), None);
    }

    #[test]
    fn capacity_evicts_the_soonest_to_expire() {
        let mut c = Cache::new(2);
        c.put_rrset(t(0.0), vec![a("a.", 10)]);
        c.put_rrset(t(0.0), vec![a("b.", 5)]);
        c.put_rrset(t(0.0), vec![a("c.", 20)]);
        assert_eq!(c.len(), 2);
        assert!(c.get(t(0.0), &fqdn("b.").unwrap(), RecordType::A).is_none());
    }

    proptest! {
        /// A resolver never answers from an expired record: whatever is stored and
        /// whenever it is asked, a hit is younger than its TTL and shows the time left.
        #[test]
        fn never_answers_from_an_expired_record(
            ops in proptest::collection::vec((0u8..4, 0u32..4, 0u32..120, 0u64..200_000), 1..60),
        ) {
            let mut c = Cache::new(8);
            let mut now = SimTime::ZERO;
            // (name, stored at, ttl) of the latest store per name.
            let mut stored: BTreeMap<u8, (SimTime, u32, bool)> = BTreeMap::new();
            for (name, kind, ttl, advance_ms) in ops {
                now += SimDuration::from_millis(advance_ms);
                let owner = format!("n{name}.example.");
                let n = fqdn(&owner).unwrap();
                match kind {
                    0 => {
                        c.put_rrset(now, vec![a(&owner, ttl)]);
                        if ttl > 0 { stored.insert(name, (now, ttl, true)); }
                    }
                    1 => {
                        c.put_negative(now, &n, None, Some(soa(ttl)));
                        if ttl > 0 { stored.insert(name, (now, ttl, false)); }
                    }
                    _ => {}
                }
                for probe in 0u8..4 {
                    let pn = fqdn(&format!("n{probe}.example.")).unwrap();
                    if let Some(hit) = c.get(now, &pn, RecordType::A) {
                        let (at, ttl, _) = stored.get(&probe).copied()
                            .expect("a hit for a name never stored");
                        let expires = at + SimDuration::from_secs(ttl as u64);
                        prop_assert!(now < expires, "hit at {now:?} after expiry {expires:?}");
                        let left = match hit {
                            Cached::Records(r) => r[0].ttl,
                            Cached::NxDomain(s) | Cached::NoData(s) => s.map_or(0, |s| s.ttl),
                        };
                        prop_assert!(left as u64 * 1_000_000_000 <= (expires - now).as_nanos());
                    }
                }
            }
        }
    }
}

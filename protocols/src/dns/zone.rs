//! Authoritative zone data and the authoritative answer algorithm (RFC 1034 4.3.2):
//! answers with AA, CNAME chasing inside the server's zones, referrals at zone cuts with
//! glue, NXDOMAIN and NODATA with the zone's SOA for negative caching (RFC 2308 3).
//!
//! Owns zone contents and lookups only; [`super::server`] puts it on the network.

use super::wire::{fqdn, response_to};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::net::Ipv4Addr;

/// What a zone record holds (the types netdes zones declare).
#[derive(Clone, Debug, PartialEq)]
pub enum ZoneData {
    A(Ipv4Addr),
    Ns(String),
    Cname(String),
}

/// One record of a zone declaration, as plain values.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneRecord {
    /// Owner name: relative to the origin unless it ends with '.', `@` is the origin.
    pub name: String,
    pub ttl: u32,
    pub data: ZoneData,
}

/// A zone declaration as plain values.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneSpec {
    pub origin: String,
    pub serial: u32,
    /// TTL of the SOA record.
    pub soa_ttl: u32,
    /// The SOA MINIMUM: TTL of negative answers (RFC 2308 4).
    pub negative_ttl: u32,
    pub records: Vec<ZoneRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("invalid domain name \"{0}\"")]
    BadName(String),
    #[error("\"{name}\" is not inside the zone \"{origin}\"")]
    OutOfZone { name: String, origin: String },
    #[error("\"{0}\" has a CNAME and other records (RFC 1034 3.6.2 allows only the CNAME)")]
    CnameAndOther(String),
}

/// A loaded zone.
#[derive(Clone, Debug)]
pub struct Zone {
    pub origin: Name,
    soa: Record,
    records: Vec<Record>,
}

/// `name` relative to `origin`.
fn absolute(name: &str, origin: &Name) -> Result<Name, ZoneError> {
    let bad = || ZoneError::BadName(name.to_string());
    if name == "@" {
        return Ok(origin.clone());
    }
    if name.ends_with('.') {
        return fqdn(name).map_err(|_| bad());
    }
    let rel = Name::from_ascii(name).map_err(|_| bad())?;
    rel.append_domain(origin).map_err(|_| bad())
}

impl Zone {
    pub fn new(spec: &ZoneSpec) -> Result<Zone, ZoneError> {
        let origin = fqdn(&spec.origin).map_err(|_| ZoneError::BadName(spec.origin.clone()))?;
        let mut records = Vec::new();
        for r in &spec.records {
            let name = absolute(&r.name, &origin)?;
            let data = match &r.data {
                ZoneData::A(a) => RData::A(A(*a)),
                ZoneData::Ns(h) => RData::NS(NS(absolute(h, &origin)?)),
                ZoneData::Cname(t) => RData::CNAME(CNAME(absolute(t, &origin)?)),
            };
            // Glue (A records of name servers) may lie outside the zone; other data not.
            if !origin.zone_of(&name) && !matches!(data, RData::A(_)) {
                return Err(ZoneError::OutOfZone {
                    name: r.name.clone(),
                    origin: spec.origin.clone(),
                });
            }
            records.push(Record::from_rdata(name, r.ttl, data));
        }
        for r in &records {
            let conflict = r.record_type() == RecordType::CNAME
                && records
                    .iter()
                    .any(|o| o.name == r.name && o.record_type() != RecordType::CNAME);
            if conflict {
                return Err(ZoneError::CnameAndOther(r.name.to_ascii()));
            }
        }
        let mname = records
            .iter()
            .find_map(|r| match &r.data {
                RData::NS(NS(h)) if r.name == origin => Some(h.clone()),
                _ => None,
            })
            .unwrap_or_else(|| absolute("ns", &origin).unwrap_or_else(|_| origin.clone()));
        let rname = absolute("hostmaster", &origin).unwrap_or_else(|_| origin.clone());
        let soa = Record::from_rdata(
            origin.clone(),
            spec.soa_ttl,
            RData::SOA(SOA::new(
                mname,
                rname,
                spec.serial,
                3600,
                600,
                604_800,
                spec.negative_ttl,
            )),
        );
        Ok(Zone {
            origin,
            soa,
            records,
        })
    }

    /// The SOA for a negative answer: its TTL is min(SOA TTL, MINIMUM) (RFC 2308 3).
    fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        if let RData::SOA(s) = &soa.data {
            soa.ttl = soa.ttl.min(s.minimum);
        }
        soa
    }

    fn at(&self, name: &Name) -> impl Iterator<Item = &Record> {
        let name = name.clone();
        self.records.iter().filter(move |r| r.name == name)
    }

    /// The delegation (NS records below the apex) on the way from the apex to `name`,
    /// highest first.
    fn cut_above(&self, name: &Name) -> Option<Vec<Record>> {
        let labels = name.num_labels();
        for n in (self.origin.num_labels() + 1)..=labels {
            let ancestor = name.trim_to(n as usize);
            let ns: Vec<Record> = self
                .at(&ancestor)
                .filter(|r| r.record_type() == RecordType::NS)
                .cloned()
                .collect();
            if !ns.is_empty() {
                return Some(ns);
            }
        }
        None
    }

    fn glue(&self, ns: &[Record]) -> Vec<Record> {
        ns.iter()
            .filter_map(|r| match &r.data {
                RData::NS(NS(h)) => Some(h.clone()),
                _ => None,
            })
            .flat_map(|h| {
                self.at(&h)
                    .filter(|r| r.record_type() == RecordType::A)
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Does the name own records, or have descendants that do (an empty non-terminal)?
    fn exists(&self, name: &Name) -> bool {
        self.records.iter().any(|r| name.zone_of(&r.name))
    }
}

/// What an authoritative server made of a query (for counters and traces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    Answer,
    Referral,
    NxDomain,
    NoData,
    Refused,
}

impl AuthOutcome {
    pub fn name(self) -> &'static str {
        match self {
            AuthOutcome::Answer => "answer",
            AuthOutcome::Referral => "referral",
            AuthOutcome::NxDomain => "nxdomain",
            AuthOutcome::NoData => "nodata",
            AuthOutcome::Refused => "refused",
        }
    }
}

/// The longest chain of CNAMEs an authoritative server follows inside its zones.
const MAX_CNAME_CHAIN: usize = 8;

/// Answers `q` from `zones` (RFC 1034 4.3.2, without recursion).
pub fn answer(zones: &[Zone], q: &Message) -> (Message, AuthOutcome) {
    let (qname, qtype) = super::wire::question(q);
    let mut resp = response_to(q, ResponseCode::NoError);
    let mut name = qname.clone();
    let mut outcome = AuthOutcome::Refused;
    for _ in 0..MAX_CNAME_CHAIN {
        // The closest zone this server is authoritative for.
        let Some(zone) = zones
            .iter()
            .filter(|z| z.origin.zone_of(&name))
            .max_by_key(|z| z.origin.num_labels())
        else {
            if outcome == AuthOutcome::Refused {
                resp.metadata.response_code = ResponseCode::Refused;
            }
            return (resp, outcome);
        };
        if let Some(ns) = zone.cut_above(&name) {
            if outcome == AuthOutcome::Refused {
                resp.additionals = zone.glue(&ns);
                resp.authorities = ns;
                outcome = AuthOutcome::Referral;
            }
            return (resp, outcome);
        }
        resp.metadata.authoritative = true;
        let here: Vec<&Record> = zone.at(&name).collect();
        let wanted: Vec<Record> = here
            .iter()
            .filter(|r| r.record_type() == qtype)
            .map(|r| (*r).clone())
            .collect();
        if !wanted.is_empty() {
            resp.answers.extend(wanted);
            return (resp, AuthOutcome::Answer);
        }
        if let Some(c) = here.iter().find(|r| r.record_type() == RecordType::CNAME) {
            resp.answers.push((*c).clone());
            outcome = AuthOutcome::Answer;
            if let RData::CNAME(CNAME(target)) = &c.data {
                name = target.clone();
                continue;
            }
        }
        if outcome == AuthOutcome::Answer {
            // A CNAME chain that ends in nothing: the answer is the chain (RFC 1034 4.3.2).
            return (resp, outcome);
        }
        resp.authorities.push(zone.negative_soa());
        if zone.exists(&name) {
            return (resp, AuthOutcome::NoData);
        }
        resp.metadata.response_code = ResponseCode::NXDomain;
        return (resp, AuthOutcome::NxDomain);
    }
    (resp, outcome)
}

#[cfg(test)]
mod tests {
    use super::super::wire::{fqdn, query};
    use super::*;

    fn rec(name: &str, data: ZoneData) -> ZoneRecord {
        ZoneRecord {
            name: name.into(),
            ttl: 300,
            data,
        }
    }

    fn zones() -> Vec<Zone> {
        let root = ZoneSpec {
            origin: ".".into(),
            serial: 1,
            soa_ttl: 86400,
            negative_ttl: 3600,
            records: vec![
                rec("example.", ZoneData::Ns("ns.example.".into())),
                rec("ns.example.", ZoneData::A(Ipv4Addr::new(10, 0, 2, 2))),
            ],
        };
        let example = ZoneSpec {
            origin: "example".into(),
            serial: 7,
            soa_ttl: 3600,
            negative_ttl: 60,
            records: vec![
                rec("@", ZoneData::Ns("ns".into())),
                rec("ns", ZoneData::A(Ipv4Addr::new(10, 0, 2, 2))),
                rec("www", ZoneData::A(Ipv4Addr::new(10, 0, 3, 2))),
                rec("web", ZoneData::Cname("www".into())),
                rec("x.deep", ZoneData::A(Ipv4Addr::new(10, 0, 3, 3))),
                rec("sub", ZoneData::Ns("ns.sub".into())),
                rec("ns.sub", ZoneData::A(Ipv4Addr::new(10, 0, 4, 2))),
            ],
        };
        vec![Zone::new(&root).unwrap(), Zone::new(&example).unwrap()]
    }

    fn ask(name: &str, t: RecordType) -> (Message, AuthOutcome) {
        answer(&zones(), &query(9, &fqdn(name).unwrap(), t, false))
    }

    #[test]
    fn answers_are_authoritative_and_carry_the_records() {
        let (m, o) = ask("www.example.", RecordType::A);
        assert_eq!(o, AuthOutcome::Answer);
        assert!(m.metadata.authoritative);
        assert_eq!(m.metadata.id, 9);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].data, RData::A(A(Ipv4Addr::new(10, 0, 3, 2))));
        assert_eq!(m.answers[0].ttl, 300);
    }

    #[test]
    fn cnames_are_followed_inside_the_zones() {
        let (m, o) = ask("web.example.", RecordType::A);
        assert_eq!(o, AuthOutcome::Answer);
        let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
        assert_eq!(types, vec![RecordType::CNAME, RecordType::A]);
        // Asking for the CNAME itself returns just it.
        let (m, _) = ask("web.example.", RecordType::CNAME);
        assert_eq!(m.answers.len(), 1);
    }

    #[test]
    fn root_refers_to_the_child_zone_with_glue_but_the_child_zone_answers() {
        let root = vec![zones().remove(0)];
        let (m, o) = answer(
            &root,
            &query(1, &fqdn("www.example.").unwrap(), RecordType::A, false),
        );
        assert_eq!(o, AuthOutcome::Referral);
        assert!(!m.metadata.authoritative);
        assert!(m.answers.is_empty());
        assert_eq!(m.authorities[0].record_type(), RecordType::NS);
        assert_eq!(
            m.additionals[0].data,
            RData::A(A(Ipv4Addr::new(10, 0, 2, 2)))
        );
        // A delegation inside a zone.
        let (m, o) = ask("a.sub.example.", RecordType::A);
        assert_eq!(o, AuthOutcome::Referral);
        assert_eq!(m.additionals.len(), 1);
    }

    #[test]
    fn negative_answers_carry_the_soa_with_the_negative_ttl() {
        let (m, o) = ask("nope.example.", RecordType::A);
        assert_eq!(o, AuthOutcome::NxDomain);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(m.metadata.authoritative);
        assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(m.authorities[0].ttl, 60, "min(SOA TTL 3600, MINIMUM 60)");
        // The name exists without an A record: NODATA.
        let (m, o) = ask("www.example.", RecordType::NS);
        assert_eq!(o, AuthOutcome::NoData);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        // An empty non-terminal exists too.
        let (_, o) = ask("deep.example.", RecordType::A);
        assert_eq!(o, AuthOutcome::NoData);
    }

    #[test]
    fn names_outside_every_zone_are_refused() {
        let z = vec![zones().remove(1)];
        let (m, o) = answer(
            &z,
            &query(1, &fqdn("www.other.").unwrap(), RecordType::A, false),
        );
        assert_eq!(o, AuthOutcome::Refused);
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    }

    #[test]
    fn bad_zone_data_is_an_error() {
        let mut s = ZoneSpec {
            origin: "example".into(),
            serial: 1,
            soa_ttl: 60,
            negative_ttl: 60,
            records: vec![rec("www.other.", ZoneData::Cname("x.example.".into()))],
        };
        assert!(matches!(Zone::new(&s), Err(ZoneError::OutOfZone { .. })));
        s.records = vec![
            rec("w", ZoneData::Cname("x".into())),
            rec("w", ZoneData::A(Ipv4Addr::LOCALHOST)),
        ];
        assert!(matches!(Zone::new(&s), Err(ZoneError::CnameAndOther(_))));
        s.records = vec![rec("a..b", ZoneData::A(Ipv4Addr::LOCALHOST))];
        assert!(matches!(Zone::new(&s), Err(ZoneError::BadName(_))));
    }
}

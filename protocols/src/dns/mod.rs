//! DNS (RFC 1034/1035): authoritative servers, recursive resolvers and each host's stub
//! resolver, with real messages encoded and decoded by hickory-proto.
//!
//! - [`wire`]: encoding and decoding, the 512-byte UDP limit and TC, TCP framing.
//! - [`edns`]: EDNS(0) (RFC 6891): OPT records, the UDP size a responder may use, FORMERR
//!   and BADVERS, the memory of servers without EDNS.
//! - [`zone`]: zone data and the authoritative answer (answers, referrals with glue,
//!   NXDOMAIN/NODATA with the SOA).
//! - [`cache`]: the resolver's TTL cache with negative entries (RFC 2308).
//! - [`resolver`]: the recursive resolver state machine (iterative resolution).
//! - [`stub`]: the host's stub resolver state machine (glibc's timeouts and order).
//! - [`server`]: the apps that put the authoritative server and the resolver on UDP and
//!   TCP port 53 ([`server::DnsAuthServer`], [`server::DnsResolverApp`]).
//! - [`host`]: the stub resolver inside a host's stack, behind [`crate::Os::lookup`].
//!
//! `zone`, `cache`, `resolver` and `stub` never see sockets, timers or the scheduler:
//! their tests inject messages and times and check what comes out.

pub mod cache;
pub mod edns;
pub mod host;
pub mod resolver;
pub mod server;
pub mod stub;
pub mod tcp_channel;
pub mod wire;
pub mod zone;

pub use stub::{LookupError, LookupResult, StubConfig};

/// The name of the `StackReport` in which a host reports its DNS counters at the end of
/// the run: one `"<name> <value>"` line per non-zero counter (see docs/output.md).
pub const DNS_COUNTERS_REPORT: &str = "kernel:dns";

impl stub::StubCounters {
    /// The counters with their report names.
    pub fn fields(&self) -> [(&'static str, u64); 12] {
        [
            ("stub_lookups", self.lookups),
            ("stub_answers", self.answers),
            ("stub_nxdomain", self.nxdomain),
            ("stub_nodata", self.nodata),
            ("stub_failures", self.failures),
            ("stub_udp_queries", self.udp_queries),
            ("stub_tcp_queries", self.tcp_queries),
            ("stub_timeouts", self.timeouts),
            ("stub_truncated", self.truncated),
            ("stub_malformed", self.malformed),
            ("stub_latency_ns_sum", self.latency_ns_sum),
            ("stub_latency_ns_max", self.latency_ns_max),
        ]
    }
}

impl resolver::ResolverCounters {
    /// The counters with their report names.
    pub fn fields(&self) -> [(&'static str, u64); 16] {
        [
            ("resolver_queries", self.queries),
            ("resolver_tcp_queries", self.tcp_queries),
            ("resolver_cache_hits", self.cache_hits),
            ("resolver_negative_hits", self.negative_hits),
            ("resolver_upstream_queries", self.upstream_queries),
            ("resolver_upstream_timeouts", self.upstream_timeouts),
            ("resolver_referrals", self.referrals),
            ("resolver_nxdomain", self.nxdomain),
            ("resolver_servfail", self.servfail),
            ("resolver_truncated_in", self.truncated_in),
            ("resolver_truncated_out", self.truncated_out),
            ("resolver_tcp_retries", self.tcp_retries),
            ("resolver_malformed", self.malformed),
            ("resolver_edns_queries", self.edns_queries),
            ("resolver_edns_rejected", self.edns_rejected),
            ("resolver_edns_fallbacks", self.edns_fallbacks),
        ]
    }
}

/// An authoritative server's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthCounters {
    pub queries: u64,
    pub tcp_queries: u64,
    pub answers: u64,
    pub referrals: u64,
    pub nxdomain: u64,
    pub nodata: u64,
    pub refused: u64,
    pub truncated: u64,
    pub malformed: u64,
    /// Queries with an OPT record.
    pub edns_queries: u64,
    /// Queries answered FORMERR or BADVERS because of their OPT record.
    pub edns_rejected: u64,
}

impl AuthCounters {
    pub fn fields(&self) -> [(&'static str, u64); 11] {
        [
            ("auth_queries", self.queries),
            ("auth_tcp_queries", self.tcp_queries),
            ("auth_answers", self.answers),
            ("auth_referrals", self.referrals),
            ("auth_nxdomain", self.nxdomain),
            ("auth_nodata", self.nodata),
            ("auth_refused", self.refused),
            ("auth_truncated", self.truncated),
            ("auth_malformed", self.malformed),
            ("auth_edns_queries", self.edns_queries),
            ("auth_edns_rejected", self.edns_rejected),
        ]
    }
}

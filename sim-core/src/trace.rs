//! Protocol event tracing and the run's trace digest.
//!
//! Owns two things: the optional stream of human-readable protocol events (`trace.jsonl`
//! when a sink is attached), and the digest of every processed scheduler event, which
//! identifies a run's behaviour bit for bit. The digest never depends on whether tracing is
//! on. This module knows no file format: a [`TraceSink`] decides how records are written.

use crate::packet::MacAddr;
use crate::time::SimTime;
use std::net::Ipv4Addr;

/// Families of trace events, so a scenario can ask for some and not others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    Link,
    L2,
    Arp,
    Ip,
    Icmp,
    Udp,
    Tcp,
    /// One `tcp_probe` record per ACK a TCP sender processes (cwnd, RTT, in flight): the
    /// per-connection time series, kept apart from `Tcp` because it is voluminous.
    TcpProbe,
    App,
    Fault,
    /// DNS: stub lookups, resolver and authoritative server events.
    Dns,
    /// DHCP clients, servers and relay agents (RFC 2131).
    Dhcp,
}

impl Category {
    pub const ALL: [Category; 12] = [
        Category::Link,
        Category::L2,
        Category::Arp,
        Category::Ip,
        Category::Icmp,
        Category::Udp,
        Category::Tcp,
        Category::TcpProbe,
        Category::App,
        Category::Fault,
        Category::Dns,
        Category::Dhcp,
    ];
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
    pub fn name(self) -> &'static str {
        match self {
            Category::Link => "link",
            Category::L2 => "l2",
            Category::Arp => "arp",
            Category::Ip => "ip",
            Category::Icmp => "icmp",
            Category::Udp => "udp",
            Category::Tcp => "tcp",
            Category::TcpProbe => "tcp_probe",
            Category::App => "app",
            Category::Fault => "fault",
            Category::Dns => "dns",
            Category::Dhcp => "dhcp",
        }
    }
}

/// A field value in a trace record.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceValue {
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    Str(&'static str),
    String(String),
    Ip(Ipv4Addr),
    Mac(MacAddr),
}

macro_rules! trace_value_from {
    ($($t:ty => $v:ident as $c:ty),* $(,)?) => {
        $(impl From<$t> for TraceValue {
            fn from(x: $t) -> Self { TraceValue::$v(x as $c) }
        })*
    };
}
trace_value_from!(u8 => U64 as u64, u16 => U64 as u64, u32 => U64 as u64, u64 => U64 as u64,
    usize => U64 as u64, i32 => I64 as i64, i64 => I64 as i64, f64 => F64 as f64);

impl From<bool> for TraceValue {
    fn from(x: bool) -> Self {
        TraceValue::Bool(x)
    }
}
impl From<&'static str> for TraceValue {
    fn from(x: &'static str) -> Self {
        TraceValue::Str(x)
    }
}
impl From<String> for TraceValue {
    fn from(x: String) -> Self {
        TraceValue::String(x)
    }
}
impl From<Ipv4Addr> for TraceValue {
    fn from(x: Ipv4Addr) -> Self {
        TraceValue::Ip(x)
    }
}
impl From<MacAddr> for TraceValue {
    fn from(x: MacAddr) -> Self {
        TraceValue::Mac(x)
    }
}

/// One protocol event: when, where, what, and event-specific fields.
#[derive(Debug)]
pub struct TraceRecord<'a> {
    pub t: SimTime,
    pub node: &'a str,
    pub event: &'static str,
    pub fields: &'a [(&'static str, TraceValue)],
}

/// Where trace records go (a JSONL file, a test's buffer).
pub trait TraceSink {
    fn record(&mut self, record: &TraceRecord<'_>);
    /// Called once at the end of the run; returns the first error the sink met, if any.
    fn finish(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// A sink that keeps records in memory, for tests.
#[derive(Default, Debug, Clone)]
pub struct TraceBuffer {
    pub records: Vec<OwnedRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OwnedRecord {
    pub t: SimTime,
    pub node: String,
    pub event: &'static str,
    pub fields: Vec<(&'static str, TraceValue)>,
}

impl OwnedRecord {
    pub fn field(&self, key: &str) -> Option<&TraceValue> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl TraceSink for TraceBuffer {
    fn record(&mut self, r: &TraceRecord<'_>) {
        self.records.push(OwnedRecord {
            t: r.t,
            node: r.node.to_string(),
            event: r.event,
            fields: r.fields.to_vec(),
        });
    }
}

/// A [`TraceSink`] shared with the code that set it up, so a test can read it after the run.
pub struct SharedTraceBuffer(pub std::rc::Rc<std::cell::RefCell<TraceBuffer>>);

impl TraceSink for SharedTraceBuffer {
    fn record(&mut self, r: &TraceRecord<'_>) {
        self.0.borrow_mut().record(r);
    }
}

/// Bytes of digest input collected before they are hashed: 16 BLAKE3 chunks, so the hasher
/// can compress them side by side with SIMD instead of one 64-byte block at a time. The
/// digest is the same however its input is split into updates.
const DIGEST_BATCH: usize = 16 * 1024;

/// Trace routing plus the running digest.
pub struct Tracer {
    enabled: u32,
    sink: Option<Box<dyn TraceSink>>,
    digest: blake3::Hasher,
    /// Digest input not yet given to `digest`; `pending_len` bytes are valid.
    pending: Box<[u8]>,
    pending_len: usize,
    records: u64,
}

impl Default for Tracer {
    fn default() -> Self {
        Tracer {
            enabled: 0,
            sink: None,
            digest: blake3::Hasher::new(),
            pending: vec![0; DIGEST_BATCH].into_boxed_slice(),
            pending_len: 0,
            records: 0,
        }
    }
}

impl Tracer {
    /// Sends the given categories of events to `sink`.
    pub fn attach(&mut self, sink: Box<dyn TraceSink>, categories: &[Category]) {
        self.sink = Some(sink);
        self.enabled = categories.iter().fold(0, |m, c| m | c.bit());
    }

    #[inline]
    pub fn enabled(&self, c: Category) -> bool {
        self.enabled & c.bit() != 0
    }

    pub fn emit(
        &mut self,
        t: SimTime,
        node: &str,
        event: &'static str,
        fields: &[(&'static str, TraceValue)],
    ) {
        if let Some(sink) = self.sink.as_mut() {
            self.records += 1;
            sink.record(&TraceRecord {
                t,
                node,
                event,
                fields,
            });
        }
    }

    /// Records written to the sink so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Folds one processed event into the digest: the four words, little-endian.
    #[inline]
    pub fn digest_event(&mut self, words: [u64; 4]) {
        if self.pending_len + 32 > self.pending.len() {
            self.flush_digest();
        }
        let b = &mut self.pending[self.pending_len..self.pending_len + 32];
        for (i, w) in words.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        self.pending_len += 32;
    }

    #[cold]
    fn flush_digest(&mut self) {
        self.digest.update(&self.pending[..self.pending_len]);
        self.pending_len = 0;
    }

    /// Hex digest of every event processed so far.
    pub fn digest_hex(&self) -> String {
        let mut h = self.digest.clone();
        h.update(&self.pending[..self.pending_len]);
        h.finalize().to_hex()[..32].to_string()
    }

    /// Ends the trace, returning the sink's error if it had one.
    pub fn finish(&mut self) -> Result<(), String> {
        match self.sink.as_mut() {
            Some(s) => s.finish(),
            None => Ok(()),
        }
    }
}

/// Emits a trace record if its category is enabled; the fields are only built when it is.
#[macro_export]
macro_rules! trace_event {
    ($tracer:expr, $cat:expr, $t:expr, $node:expr, $event:expr $(, $k:expr => $v:expr)* $(,)?) => {
        if $tracer.enabled($cat) {
            let fields: &[(&'static str, $crate::trace::TraceValue)] =
                &[$(($k, $crate::trace::TraceValue::from($v))),*];
            $tracer.emit($t, $node, $event, fields);
        }
    };
}

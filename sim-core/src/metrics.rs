//! Measurements a run reports: per-flow statistics and per-node counters.
//!
//! Owns the counters; knows nothing about how they are written out. Flows are registered
//! by the code that builds a run (one per app that moves data) and updated by the
//! applications; link statistics live with the links (`link.rs`). [`NodeMetrics`] holds
//! the named numbers protocols report per node (e.g. `dhcp.client.leases`); like flows it
//! lives outside the nodes, so a crash does not erase what was measured.

use crate::time::SimTime;
use std::collections::BTreeMap;

/// Index of a registered flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId(pub u32);

/// Round-trip time statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RttStats {
    pub count: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub sum_ns: u128,
}

impl RttStats {
    pub fn add(&mut self, rtt_ns: u64) {
        if self.count == 0 || rtt_ns < self.min_ns {
            self.min_ns = rtt_ns;
        }
        self.max_ns = self.max_ns.max(rtt_ns);
        self.sum_ns += rtt_ns as u128;
        self.count += 1;
    }
    pub fn mean_ns(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ns as f64 / self.count as f64)
    }
}

/// What one flow did. Bytes are application bytes (payload), not headers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FlowStats {
    pub id: String,
    pub src: String,
    pub dst: String,
    pub proto: &'static str,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub lost_packets: u64,
    pub first_tx: Option<SimTime>,
    pub last_rx: Option<SimTime>,
    pub rtt: RttStats,
    /// Protocol-specific extras (e.g. `retransmits`), reported under their names.
    pub extra: BTreeMap<&'static str, f64>,
    /// Connection-oriented flows: the state the connection ended in (e.g. `"TIME_WAIT"`).
    pub state: Option<&'static str>,
    /// Connection-oriented flows: the error the connection failed with (e.g. `"ETIMEDOUT"`).
    pub error: Option<&'static str>,
}

impl FlowStats {
    pub fn on_tx(&mut self, now: SimTime, bytes: u64) {
        self.tx_packets += 1;
        self.tx_bytes += bytes;
        self.first_tx.get_or_insert(now);
    }
    pub fn on_rx(&mut self, now: SimTime, bytes: u64) {
        self.rx_packets += 1;
        self.rx_bytes += bytes;
        self.last_rx = Some(now);
    }
    /// Received application bits per second between the first transmission and the last
    /// reception.
    pub fn goodput_bps(&self) -> f64 {
        match (self.first_tx, self.last_rx) {
            (Some(a), Some(b)) if b > a => self.rx_bytes as f64 * 8.0 / (b - a).as_secs_f64(),
            _ => 0.0,
        }
    }
}

/// All flows of a run, in registration order.
#[derive(Default, Debug)]
pub struct FlowTable {
    flows: Vec<FlowStats>,
}

impl FlowTable {
    pub fn register(&mut self, id: &str, src: &str, dst: &str, proto: &'static str) -> FlowId {
        self.flows.push(FlowStats {
            id: id.to_string(),
            src: src.to_string(),
            dst: dst.to_string(),
            proto,
            ..Default::default()
        });
        FlowId((self.flows.len() - 1) as u32)
    }
    pub fn get_mut(&mut self, id: FlowId) -> Option<&mut FlowStats> {
        self.flows.get_mut(id.0 as usize)
    }
    pub fn get(&self, id: FlowId) -> Option<&FlowStats> {
        self.flows.get(id.0 as usize)
    }
    pub fn iter(&self) -> impl Iterator<Item = &FlowStats> {
        self.flows.iter()
    }
    pub fn find(&self, id: &str) -> Option<FlowId> {
        self.flows
            .iter()
            .position(|f| f.id == id)
            .map(|i| FlowId(i as u32))
    }
}

/// Named per-node measurements reported by protocols: counters and gauges, keyed by node
/// and a dotted name such as `dhcp.server.offers`. A name's first use inserts it; later
/// updates do not allocate.
#[derive(Default, Debug)]
pub struct NodeMetrics {
    values: BTreeMap<(u32, &'static str), f64>,
}

impl NodeMetrics {
    /// Adds `v` to a counter (created at zero).
    pub fn add(&mut self, node: u32, name: &'static str, v: f64) {
        *self.values.entry((node, name)).or_insert(0.0) += v;
    }
    /// Sets a gauge.
    pub fn set(&mut self, node: u32, name: &'static str, v: f64) {
        self.values.insert((node, name), v);
    }
    /// Raises a high-water mark to `v` if it is higher (created at `v`).
    pub fn max(&mut self, node: u32, name: &'static str, v: f64) {
        let e = self.values.entry((node, name)).or_insert(v);
        *e = e.max(v);
    }
    pub fn get(&self, node: u32, name: &str) -> Option<f64> {
        self.values
            .range((node, "")..)
            .take_while(|((n, _), _)| *n == node)
            .find(|((_, k), _)| *k == name)
            .map(|(_, v)| *v)
    }
    /// A node's metrics, sorted by name.
    pub fn of_node(&self, node: u32) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        self.values
            .range((node, "")..)
            .take_while(move |((n, _), _)| *n == node)
            .map(|((_, k), v)| (*k, *v))
    }
}

/// Per-node counters of what the network layer did with packets. Names match the JSON keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeCounters {
    pub rx_frames: u64,
    pub tx_frames: u64,
    pub forwarded: u64,
    pub delivered: u64,
    pub ttl_expired: u64,
    pub no_route: u64,
    pub arp_failures: u64,
    pub checksum_errors: u64,
    pub malformed: u64,
    pub fragments_created: u64,
    pub reassembled: u64,
    pub reassembly_timeouts: u64,
    pub frag_needed: u64,
    pub icmp_sent: u64,
    pub icmp_received: u64,
    pub dropped_node_down: u64,
}

impl NodeCounters {
    /// (name, value) pairs in a fixed order, for reports.
    pub fn fields(&self) -> [(&'static str, u64); 16] {
        [
            ("rx_frames", self.rx_frames),
            ("tx_frames", self.tx_frames),
            ("forwarded", self.forwarded),
            ("delivered", self.delivered),
            ("ttl_expired", self.ttl_expired),
            ("no_route", self.no_route),
            ("arp_failures", self.arp_failures),
            ("checksum_errors", self.checksum_errors),
            ("malformed", self.malformed),
            ("fragments_created", self.fragments_created),
            ("reassembled", self.reassembled),
            ("reassembly_timeouts", self.reassembly_timeouts),
            ("frag_needed", self.frag_needed),
            ("icmp_sent", self.icmp_sent),
            ("icmp_received", self.icmp_received),
            ("dropped_node_down", self.dropped_node_down),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_metrics_count_gauge_and_keep_nodes_apart() {
        let mut m = NodeMetrics::default();
        m.add(1, "x.count", 1.0);
        m.add(1, "x.count", 2.0);
        m.set(1, "x.gauge", 5.0);
        m.set(1, "x.gauge", 4.0);
        m.max(1, "x.peak", 3.0);
        m.max(1, "x.peak", 2.0);
        m.add(2, "x.count", 7.0);
        assert_eq!(m.get(1, "x.count"), Some(3.0));
        assert_eq!(m.get(1, "x.gauge"), Some(4.0));
        assert_eq!(m.get(1, "x.peak"), Some(3.0));
        assert_eq!(m.get(0, "x.count"), None);
        assert_eq!(
            m.of_node(1).collect::<Vec<_>>(),
            [("x.count", 3.0), ("x.gauge", 4.0), ("x.peak", 3.0)]
        );
        assert_eq!(m.of_node(2).collect::<Vec<_>>(), [("x.count", 7.0)]);
    }
}

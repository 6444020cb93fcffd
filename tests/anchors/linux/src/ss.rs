//! Reading `ss -tinHO` (one line per TCP socket with its `tcp_info` and congestion-control
//! info) and finding, in a flow's samples, the periods BBR v1 spends in its long-term
//! ("policer") mode.
//!
//! `ss` prints BBR's state as `bbr:(bw:..,mrtt:..,pacing_gain:..,cwnd_gain:..)` from
//! `bbr_get_info`: `bw` is `bbr_bw()`, which is `lt_bw` while `lt_use_bw` is set and the
//! windowed maximum otherwise, and ProbeBW's pacing gain is 1 while `lt_use_bw` is set
//! (`bbr_update_gains`). The kernel does not export `lt_use_bw`, so it is inferred: a run
//! of samples with pacing gain 1, cwnd gain 2 and the very same `bw`, lasting at least
//! ten min RTTs. Outside long-term mode ProbeBW's cycle puts a 5/4 phase of at least one
//! min RTT at most seven phases (about seven min RTTs) after the previous one, so samples
//! taken more often than once per min RTT (`run.sh` takes one every 20 ms) see it; a
//! long-term period lasts 48 rounds (`bbr_lt_bw_max_rtts`). Sampling every 100 ms or so
//! would not do: with a min RTT near 25 ms the eight-phase cycle lasts about 200 ms and
//! the samples alias onto two phases.

/// BBR's fields of one `ss` sample.
#[derive(Clone, Debug, PartialEq)]
pub struct BbrInfo {
    pub bw_bps: f64,
    pub mrtt_ms: f64,
    pub pacing_gain: f64,
    pub cwnd_gain: f64,
}

/// One socket in one `ss` sample.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SocketSample {
    pub local_port: u16,
    pub peer_port: u16,
    pub cwnd: u64,
    pub rtt_ms: f64,
    pub minrtt_ms: f64,
    /// Total retransmitted segments (the second number of `retrans:a/b`).
    pub retrans_total: u64,
    pub bytes_retrans: u64,
    pub bytes_acked: u64,
    pub data_segs_out: u64,
    pub pacing_rate_bps: f64,
    pub delivery_rate_bps: f64,
    pub bbr: Option<BbrInfo>,
}

/// `95.1Mbps` -> 95.1e6.
pub fn parse_rate(s: &str) -> Option<f64> {
    let s = s.strip_suffix("bps")?;
    let (num, mult) = match s.chars().last()? {
        'K' => (&s[..s.len() - 1], 1e3),
        'M' => (&s[..s.len() - 1], 1e6),
        'G' => (&s[..s.len() - 1], 1e9),
        _ => (s, 1.0),
    };
    num.parse::<f64>().ok().map(|v| v * mult)
}

fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':')?.1.parse().ok()
}

fn parse_bbr(inner: &str) -> Option<BbrInfo> {
    let mut info = BbrInfo {
        bw_bps: 0.0,
        mrtt_ms: 0.0,
        pacing_gain: 0.0,
        cwnd_gain: 0.0,
    };
    for kv in inner.split(',') {
        let (k, v) = kv.split_once(':')?;
        match k {
            "bw" => info.bw_bps = parse_rate(v)?,
            "mrtt" => info.mrtt_ms = v.parse().ok()?,
            "pacing_gain" => info.pacing_gain = v.parse().ok()?,
            "cwnd_gain" => info.cwnd_gain = v.parse().ok()?,
            _ => {}
        }
    }
    Some(info)
}

/// Parses one line of `ss -tinHO state established` (Recv-Q, Send-Q, local and peer
/// address, then the info tokens). `None` for lines that are not such a socket.
pub fn parse_line(line: &str) -> Option<SocketSample> {
    let mut tokens = line.split_whitespace();
    let _recv_q = tokens.next()?;
    let _send_q = tokens.next()?;
    let local_port = port_of(tokens.next()?)?;
    let peer_port = port_of(tokens.next()?)?;
    let mut s = SocketSample {
        local_port,
        peer_port,
        ..SocketSample::default()
    };
    let mut pending: Option<&str> = None;
    for tok in tokens {
        if let Some(key) = pending.take() {
            let rate = parse_rate(tok).unwrap_or(0.0);
            match key {
                "pacing_rate" => s.pacing_rate_bps = rate,
                "delivery_rate" => s.delivery_rate_bps = rate,
                _ => {}
            }
            continue;
        }
        if matches!(tok, "pacing_rate" | "delivery_rate" | "send") {
            pending = Some(tok);
            continue;
        }
        if let Some(inner) = tok.strip_prefix("bbr:(").and_then(|t| t.strip_suffix(')')) {
            s.bbr = parse_bbr(inner);
            continue;
        }
        let Some((k, v)) = tok.split_once(':') else {
            continue;
        };
        match k {
            "cwnd" => s.cwnd = v.parse().unwrap_or(0),
            "rtt" => s.rtt_ms = v.split('/').next()?.parse().unwrap_or(0.0),
            "minrtt" => s.minrtt_ms = v.parse().unwrap_or(0.0),
            "retrans" => s.retrans_total = v.split('/').nth(1)?.parse().unwrap_or(0),
            "bytes_retrans" => s.bytes_retrans = v.parse().unwrap_or(0),
            "bytes_acked" => s.bytes_acked = v.parse().unwrap_or(0),
            "data_segs_out" => s.data_segs_out = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    Some(s)
}

/// How a flow's BBR samples divide between modes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LtTime {
    /// Samples from the first one in ProbeBW (pacing gain below 2) on.
    pub after_startup: usize,
    /// Of those, samples inside inferred long-term periods.
    pub in_lt: usize,
    /// Number of inferred long-term periods.
    pub periods: usize,
}

impl LtTime {
    pub fn fraction(&self) -> f64 {
        self.in_lt as f64 / self.after_startup.max(1) as f64
    }
}

/// Long-term mode inferred from one flow's samples `(time s, BBR info)`, in time order:
/// maximal runs of pacing gain 1, cwnd gain 2 and an unchanged `bw` spanning at least
/// `10 x mrtt` (and at least two samples).
pub fn lt_time(samples: &[(f64, BbrInfo)]) -> LtTime {
    let Some(first) = samples.iter().position(|(_, b)| b.pacing_gain < 2.0) else {
        return LtTime::default();
    };
    let samples = &samples[first..];
    let mut out = LtTime {
        after_startup: samples.len(),
        ..LtTime::default()
    };
    let holds = |b: &BbrInfo| b.pacing_gain == 1.0 && b.cwnd_gain == 2.0;
    let mut i = 0;
    while i < samples.len() {
        if !holds(&samples[i].1) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < samples.len()
            && holds(&samples[j].1)
            && samples[j].1.bw_bps == samples[i].1.bw_bps
        {
            j += 1;
        }
        let span = samples[j - 1].0 - samples[i].0;
        let min_rtt_s = samples[i].1.mrtt_ms / 1e3;
        if j - i >= 2 && span >= 10.0 * min_rtt_s {
            out.in_lt += j - i;
            out.periods += 1;
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "0      2896   10.1.0.1:40212 10.2.0.1:5000 bbr wscale:7,7 rto:228 \
        rtt:27.412/1.5 ato:40 mss:1448 pmtu:1500 rcvmss:536 advmss:1448 cwnd:96 \
        bytes_sent:1234 bytes_retrans:2896 bytes_acked:1000 segs_out:10 segs_in:5 \
        data_segs_out:9 bbr:(bw:23.4Mbps,mrtt:24.12,pacing_gain:1.25,cwnd_gain:2) \
        send 40.6Mbps lastsnd:1 lastrcv:100 lastack:1 pacing_rate 28.9Mbps \
        delivery_rate 22.1Mbps delivered:8 busy:100ms unacked:50 retrans:1/17 lost:1 \
        sacked:3 rcv_space:14480 rcv_ssthresh:64088 notsent:1000 minrtt:24.05";

    #[test]
    fn a_bbr_socket_line_is_read_field_by_field() {
        let s = parse_line(LINE).expect("parses");
        assert_eq!(s.local_port, 40212);
        assert_eq!(s.peer_port, 5000);
        assert_eq!(s.cwnd, 96);
        assert_eq!(s.rtt_ms, 27.412);
        assert_eq!(s.minrtt_ms, 24.05);
        assert_eq!(s.retrans_total, 17);
        assert_eq!(s.bytes_retrans, 2896);
        assert_eq!(s.data_segs_out, 9);
        assert_eq!(s.pacing_rate_bps, 28.9e6);
        assert_eq!(s.delivery_rate_bps, 22.1e6);
        let b = s.bbr.expect("bbr info");
        assert_eq!(b.bw_bps, 23.4e6);
        assert_eq!(b.mrtt_ms, 24.12);
        assert_eq!(b.pacing_gain, 1.25);
        assert_eq!(b.cwnd_gain, 2.0);
    }

    #[test]
    fn rates_take_their_unit() {
        assert_eq!(parse_rate("512bps"), Some(512.0));
        assert_eq!(parse_rate("1.5Kbps"), Some(1500.0));
        assert_eq!(parse_rate("2Gbps"), Some(2e9));
        assert_eq!(parse_rate("fast"), None);
        assert!(parse_line("State Recv-Q").is_none());
    }

    fn bbr(bw: f64, pacing_gain: f64, cwnd_gain: f64) -> BbrInfo {
        BbrInfo {
            bw_bps: bw,
            mrtt_ms: 24.0,
            pacing_gain,
            cwnd_gain,
        }
    }

    #[test]
    fn long_holds_of_one_rate_at_gain_one_count_as_long_term_mode() {
        // Startup, then ordinary ProbeBW (gain 1 for a few samples, bw moving), then 0.6 s
        // at gain 1 with one bw (long term), then ProbeRTT (cwnd gain 1) at the same bw.
        let mut s = vec![
            (0.0, bbr(1e6, 2.88672, 2.88672)),
            (0.1, bbr(5e6, 1.25, 2.0)),
            (0.2, bbr(5e6, 1.0, 2.0)),
            (0.3, bbr(5e6, 1.0, 2.0)),
            (0.4, bbr(6e6, 1.0, 2.0)),
        ];
        for k in 0..7 {
            s.push((0.5 + 0.1 * k as f64, bbr(7e6, 1.0, 2.0)));
        }
        s.push((1.2, bbr(7e6, 1.0, 1.0)));
        let lt = lt_time(&s);
        assert_eq!(lt.after_startup, 12);
        // 0.2-0.3 is 0.1 s < 10 x 24 ms; 0.5-1.1 is 0.6 s.
        assert_eq!(lt.in_lt, 7);
        assert_eq!(lt.periods, 1);
        assert!((lt.fraction() - 7.0 / 12.0).abs() < 1e-12);
        assert_eq!(lt_time(&s[..1]), LtTime::default());
    }
}

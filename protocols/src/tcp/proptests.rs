//! Property tests: whatever the wire does (loss, reordering, duplication; corruption is
//! loss, since a corrupted segment fails its checksum), with random write and read sizes,
//! the receiver reads exactly the sender's bytes in order (RB-TCP-30), and the sender
//! never has more unacknowledged data than the receiver offered (RB-TCP-35). State
//! transitions are checked against the RFC diagram on every change (debug builds).

use super::buffer::StreamVerifier;
use super::harness::*;
use super::{TcpConfig, TcpState};
use proptest::prelude::*;
use sim_core::packet::Payload;
use sim_core::time::SimDuration;

fn lcg(k: &mut u64) -> u64 {
    *k = k
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *k >> 33
}

proptest! {
    // PROPTEST_CASES raises the count for a deeper search (the default run keeps 64).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64),
        .. ProptestConfig::default()
    })]

    #[test]
    fn stream_arrives_intact_under_impairments(
        seed in any::<u64>(),
        loss_pct in 0u64..15,
        reorder_pct in 0u64..15,
        dup_pct in 0u64..10,
        sack in any::<bool>(),
        timestamps in any::<bool>(),
        total in 1u64..200_000,
        write_max in 1u32..40_000,
        read_max in 1usize..40_000,
    ) {
        let cfg = TcpConfig { sack, timestamps, ..TcpConfig::default() };
        let mut p = Pair::new(cfg.clone(), cfg, SimDuration::from_millis(5));
        let l = p.hosts[1].listen(80, 16);
        let to = p.hosts[1].addr(80);
        let c = p.hosts[0].connect(to);
        let mut k = seed;
        let mut k2 = seed ^ 0x5555;
        p.drop = Some(Box::new(move |_, _, _| lcg(&mut k) % 100 < loss_pct));
        p.impair = Some(Box::new(move |_, _, _| {
            let r = lcg(&mut k2);
            let extra = if r % 100 < reorder_pct { SimDuration::from_millis(r % 13) } else { SimDuration::ZERO };
            (extra, (r >> 8) % 100 < dup_pct)
        }));
        let mut server = None;
        let mut written = 0u64;
        let mut closed = false;
        let mut v = StreamVerifier::default();
        let mut eof = false;
        let mut rng = seed.rotate_left(17);
        // One write and one read per 10 ms step: tiny writes or reads of a long stream need
        // many steps (twice the minimum), and heavy loss can back the RTO off to its
        // 120 s maximum: allow at least 1000 simulated seconds.
        let steps = 100_000 + 2 * total / u64::from(write_max).min(read_max as u64);
        for _ in 0..steps {
            p.run_until(p.now + SimDuration::from_millis(10));
            if server.is_none() {
                server = p.hosts[1].tcp.accept(&mut p.hosts[1].env, l).ok().map(|x| x.0);
            }
            if p.hosts[0].tcp.state(c) == Ok(TcpState::Established) && written < total {
                let n = (lcg(&mut rng) as u32 % write_max + 1).min((total - written) as u32);
                written += p.hosts[0].send(c, &Payload::Pattern { stream: 9, offset: written, len: n }) as u64;
            }
            if written == total && !closed {
                // shutdown(SHUT_WR), not close(): an orphaned socket gives up after
                // tcp_orphan_retries, which heavy loss on the ACKs can exhaust; "both ends
                // stay up" means the sender keeps its socket until the transfer is done.
                p.hosts[0].tcp.shutdown(&mut p.hosts[0].env, c, super::Shutdown::Write).unwrap();
                closed = true;
            }
            if let Some(s) = server {
                let mut out = Vec::new();
                let want = lcg(&mut rng) as usize % read_max + 1;
                if let Ok(0) = p.hosts[1].tcp.recv(&mut p.hosts[1].env, s, want, &mut out) {
                    eof = true;
                }
                for piece in &out {
                    prop_assert!(v.check(piece), "stream mismatch after {} bytes", v.verified);
                }
            }
            if eof {
                break;
            }
        }
        prop_assert!(
            eof,
            "transfer did not finish: {} of {} verified\nsender {:?}\nreceiver {:?}\nlast: {:?}",
            v.verified,
            total,
            p.hosts[0].tcp.info(c),
            server.map(|s| p.hosts[1].tcp.info(s)),
            p.log.iter().rev().take(6).map(|(i, s, d)| (*i, s.at, flag_str(s.flags()), s.seg.seq.0, s.seg.ack.0, s.len(), s.seg.window, *d)).collect::<Vec<_>>()
        );
        prop_assert_eq!(v.verified, total);
        prop_assert_eq!(v.mismatches, 0);

        // Flow control: no data segment ends beyond the right edge the receiver offered.
        let mut right_edge: Option<u32> = None;
        for (i, s, _) in &p.log {
            if *i == 1 && s.seg.flags & super::wire::flags::ACK != 0 && s.seg.flags & super::wire::flags::SYN == 0 {
                let edge = s.seg.ack.0.wrapping_add((s.seg.window as u32) << 7);
                right_edge = Some(match right_edge {
                    Some(e) if (edge.wrapping_sub(e) as i32) < 0 => e,
                    _ => edge,
                });
            }
            if *i == 0 && s.len() > 1 {
                if let Some(e) = right_edge {
                    let end = s.seg.seq.0.wrapping_add(s.len() as u32);
                    prop_assert!((e.wrapping_sub(end) as i32) >= 0, "segment beyond the window");
                }
            }
        }
    }
}

#!/usr/bin/env bash
# Linux anchor: real kernel TCP through an emulated dumbbell (see docs/validation.md,
# "Linux anchor"). Needs root (network namespaces, TUN) and runs in real time.
#
# Usage: tests/anchors/linux/run.sh --flows=16 --cc=bbr --bw=100 --rtt=24 --duration=60 \
#          [--queue=200] [--loss=0] [--seed=1] [--buffer-max=BYTES] [--ss-interval=20] \
#          [--drop-pattern=FILE] [--arp-wait=MS] [--sender-gso] [--pcap] [--keep=DIR]
#
#   --bw        bottleneck rate, Mb/s (tbf, charging the 14-byte Ethernet header as netdes does)
#   --rtt       base round-trip time, ms; the delay line adds half of it in each direction
#               (netdes's dumbbell with delay_ms = d has a base RTT of 2 x (d + 2) ms)
#   --duration  as netdes's --duration: the flows run duration - 0.1 s and goodput is
#               bytes received / (duration - 0.1 s)
#   --queue     bottleneck queue, packets of 1500 bytes (tbf limit = queue x 1500 bytes)
#   --loss      random loss on the data direction, after the queue (seeded by --seed)
#   --buffer-max  largest tcp_rmem/tcp_wmem; default Linux's 6 MB / 4 MB as in netdes
#   --drop-pattern  replay these loss decisions first (linux-anchor netdes --drop-pattern-out)
#   --arp-wait  the first packet (the SYN) waits MS ms more, as in netdes's dumbbell, where it
#               waits for the routers' ARP across the bottleneck (2 x its delay + 4 ms: 100 ms
#               for RTT 100 ms, 24 ms for RTT 24 ms); default 0, no ARP on this path
#   --sender-gso  leave GSO on at the senders (TSO autosizing: 1 ms of data per skb; the
#               bottleneck still sees MTU-sized packets, tbf segments them); default off,
#               one segment per skb and per pacing step, as netdes sends
#   --pcap      capture the senders' packets (headers) into DIR/sender.pcap (dumpcap; with --keep)
#   --keep      directory for the raw outputs (ss samples, per-second byte counts, ...)
#
# Prints one JSON line (see tests/anchors/linux/src/report.rs).
#
# Topology:  S (senders) --veth-- R (router) --veth-- D (receivers)
# In R, traffic from S is routed into TUN device tunD, whose egress qdisc (tbf) is the
# bottleneck; the delay line reads tunD, drops at random, waits rtt/2 and writes the
# packet back into tunD, from where R forwards it to D. ACKs take tunA (no shaping).
set -euo pipefail

flows=1 cc=cubic bw=100 rtt=24 duration=60 queue=100 loss=0 seed=1 buffer_max= ss_interval=20 keep= drop_pattern= sender_gso=0 pcap=0 arp_wait=0
for a in "$@"; do
  case "$a" in
    --flows=*) flows=${a#*=} ;;
    --cc=*) cc=${a#*=} ;;
    --bw=*) bw=${a#*=} ;;
    --rtt=*) rtt=${a#*=} ;;
    --duration=*) duration=${a#*=} ;;
    --queue=*) queue=${a#*=} ;;
    --loss=*) loss=${a#*=} ;;
    --seed=*) seed=${a#*=} ;;
    --buffer-max=*) buffer_max=${a#*=} ;;
    --ss-interval=*) ss_interval=${a#*=} ;;
    --keep=*) keep=${a#*=} ;;
    --sender-gso) sender_gso=1 ;;
    --pcap) pcap=1 ;;
    --arp-wait=*) arp_wait=${a#*=} ;;
    --drop-pattern=*) drop_pattern=$(realpath "${a#*=}") ;;
    *) echo "run.sh: unknown argument $a" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then echo "run.sh: needs root (network namespaces, TUN)" >&2; exit 2; fi

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
bin=${LINUX_ANCHOR_BIN:-}
if [ -z "$bin" ]; then
  (cd "$repo" && cargo build --release -q -p linux-anchor) >&2
  bin=${CARGO_TARGET_DIR:-$repo/target}/release/linux-anchor
fi

id=lxa$$
S=${id}s R=${id}r D=${id}d
out=${keep:-$(mktemp -d)}
mkdir -p "$out"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for n in "$S" "$R" "$D"; do ip netns del "$n" 2>/dev/null || true; done
  if [ -z "$keep" ]; then rm -rf "$out"; fi
}
trap cleanup EXIT INT TERM

ip netns add "$S"; ip netns add "$R"; ip netns add "$D"
ip link add vS netns "$S" type veth peer name vRs netns "$R"
ip link add vD netns "$D" type veth peer name vRd netns "$R"
for n in "$S" "$R" "$D"; do
  ip -n "$n" link set lo up
  # IPv4 only: no IPv6 neighbour discovery on the veths and TUN devices.
  ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done

# One segment per skb on the senders (no TSO/GSO): the bottleneck sees MTU-sized packets,
# as in netdes. GRO is off on veths unless XDP is attached.
if [ "$sender_gso" = 0 ]; then
  ip -n "$S" link set vS gso_max_segs 1
  ip -n "$D" link set vD gso_max_segs 1
fi
ip -n "$S" addr add 10.1.0.1/24 dev vS
ip -n "$S" link set vS up
ip -n "$S" route add default via 10.1.0.2
ip -n "$D" addr add 10.2.0.1/24 dev vD
ip -n "$D" link set vD up
ip -n "$D" route add default via 10.2.0.2
ip -n "$R" addr add 10.1.0.2/24 dev vRs
ip -n "$R" addr add 10.2.0.2/24 dev vRd
ip -n "$R" link set vRs up
ip -n "$R" link set vRd up
ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
  net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.vRs.rp_filter=0 net.ipv4.conf.vRd.rp_filter=0

rmem="4096 131072 6291456" wmem="4096 16384 4194304"
if [ -n "$buffer_max" ]; then rmem="4096 131072 $buffer_max" wmem="4096 16384 $buffer_max"; fi
for n in "$S" "$D"; do
  ip netns exec "$n" sysctl -qw "net.ipv4.tcp_rmem=$rmem" "net.ipv4.tcp_wmem=$wmem" \
    net.ipv4.tcp_no_metrics_save=1
done

seconds=$(awk -v d="$duration" 'BEGIN { printf "%.3f", d - 0.1 }')
one_way=$(awk -v r="$rtt" 'BEGIN { printf "%.6f", r / 2 }')
now_ns() { date +%s%N; }
# The delay line lives until the flows have ended (start in 3 s, then `seconds`, + 2 s).
start_ns=$(( $(now_ns) + 3000000000 ))
stop_ns=$(awk -v s="$start_ns" -v d="$seconds" 'BEGIN { printf "%.0f", s + (d + 2) * 1e9 }')
end_ns=$(awk -v s="$start_ns" -v d="$seconds" 'BEGIN { printf "%.0f", s + d * 1e9 }')

ip netns exec "$R" chrt -f 50 "$bin" delay-line --data-tun tunD --ack-tun tunA \
  --one-way-ms "$one_way" --loss "$loss" --seed "$seed" --stop-at-ns "$stop_ns" \
  ${drop_pattern:+--drop-pattern "$drop_pattern"} --first-packet-extra-ms "$arp_wait" \
  --stats "$out/delay.json" &
delay_pid=$!
pids+=("$delay_pid")
for _ in $(seq 100); do
  ip -n "$R" link show tunA >/dev/null 2>&1 && break
  sleep 0.05
done
ip netns exec "$R" sysctl -qw net.ipv4.conf.tunD.rp_filter=0 net.ipv4.conf.tunA.rp_filter=0 \
  net.ipv4.conf.tunD.forwarding=1 net.ipv4.conf.tunA.forwarding=1
ip -n "$R" route add default dev tunD table 100
ip -n "$R" route add default dev tunA table 101
ip -n "$R" rule add iif vRs table 100 pref 100
ip -n "$R" rule add iif vRd table 101 pref 101
# The bottleneck: tbf at bw, a burst of two packets, a drop-tail limit of `queue` packets.
ip netns exec "$R" tc qdisc replace dev tunD root tbf rate "${bw}mbit" burst 3028 \
  limit $((queue * 1500)) overhead 14

if [ "$pcap" = 1 ]; then
  ip netns exec "$S" dumpcap -q -i vS -s 128 -w "$out/sender.pcap" 2>/dev/null &
  pids+=("$!")
  sleep 0.5
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
ip netns exec "$D" "$bin" sink --listen 10.2.0.1:5000 --flows "$flows" \
  --start-at-ns "$start_ns" --seconds "$seconds" --out "$out/sink.json" &
sink_pid=$!
pids+=("$sink_pid")
sleep 0.3
ip netns exec "$S" "$bin" source --connect 10.2.0.1:5000 --flows "$flows" --cc "$cc" \
  --start-at-ns "$start_ns" --seconds "$seconds" --ss-interval-ms "$ss_interval" \
  --samples "$out/ss.txt" --out "$out/source.json" &
source_pid=$!
pids+=("$source_pid")
wait "$source_pid"
wait "$sink_pid"
ip netns exec "$R" tc -s qdisc show dev tunD >"$out/tc.txt"
wait "$delay_pid"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

params=$(printf '{"flows":%s,"cc":"%s","bw_mbps":%s,"rtt_ms":%s,"duration_s":%s,"queue_packets":%s,"loss":%s,"seed":%s,"buffer_max":"%s","drop_pattern":"%s","sender_gso":%s,"arp_wait_ms":%s,"kernel":"%s","load_before":"%s","load_after":"%s"}' \
  "$flows" "$cc" "$bw" "$rtt" "$duration" "$queue" "$loss" "$seed" "$buffer_max" "$drop_pattern" "$sender_gso" "$arp_wait" "$(uname -r)" "$load_before" "$load_after")
"$bin" report --sink "$out/sink.json" --source "$out/source.json" --samples "$out/ss.txt" \
  --tc "$out/tc.txt" --delay-stats "$out/delay.json" --params "$params" --seconds "$seconds"

#!/usr/bin/env bash
# syscalls.sh TARGET [MODE] [ALG] — the system calls and context switches per request of a
# target started with start.sh, under the same closed-loop load as cpureq.sh (32 connections,
# 8 streams for h2), counted with `perf stat` on the target's serving process (nginx: its
# worker, not the master). Needs perf (Debian: linux-perf) and the right to trace the process.
#   ./start.sh nginx && ./start.sh edgectl
#   ./syscalls.sh nginx h2; ./syscalls.sh edgectl h2
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/common.sh"
T="${1:?usage: syscalls.sh TARGET [MODE] [ALG]}"; MODE="${2:-keepalive}"; ALG="${3:-ecdsa}"
command -v perf > /dev/null || die "perf is not installed (Debian: apt-get install linux-perf)"
M="$RUN_BASE/manual"
[[ -f "$M/$T-$ALG.pid" ]] || die "$T ($ALG) is not running: ./start.sh $T $ALG"
read -r PID _ < "$M/$T-$ALG.pid"
# A server that forks workers (nginx) serves in its first child.
if child="$(pgrep -P "$PID" | head -1)" && [[ -n $child ]]; then PID=$child; fi
PORT="$(port_for "$T")"
ca="$(client_alg "$ALG")"
LG=(-url "https://edge.test:$PORT/" -connect "127.0.0.1:$PORT" -cert "$PKI_DIR/client-$ca-chain.pem"
  -key "$PKI_DIR/client-$ca.key" -cacert "$PKI_DIR/ca-root.pem" -c 32 -streams 8 -mode "$MODE" -expect-header ssl-client-s-dn)
EVENTS=task-clock,context-switches
for s in read write writev recvfrom sendto epoll_wait epoll_pwait futex; do
  EVENTS+=",syscalls:sys_enter_$s"
done
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
run_loadgen "${LG[@]}" -d 1s > /dev/null # warm up
# The load runs 6 s; perf counts the 5 s after its first half second.
run_loadgen "${LG[@]}" -d 6s -warmup 0 -json > "$tmp/lg.json" &
lg=$!
sleep 0.5
perf stat -x, -e "$EVENTS" -p "$PID" -- sleep 5 2> "$tmp/perf.csv"
wait "$lg"
ok="$(grep -o '"ok":[0-9]*' "$tmp/lg.json" | cut -d: -f2)"
awk -F, -v t="$T" -v m="$MODE" -v ok="$ok" '
  $3 != "" && $1 ~ /^[0-9.]+$/ { v[$3] = $1 }
  END {
    req = ok / 6 * 5 # the requests of the 5 s counted
    printf "%s %s: %.0f requests per second\n", t, m, ok / 6
    printf "  %-32s %8.1f µs per request\n", "task-clock", v["task-clock"] * 1000 / req
    for (e in v) if (e != "task-clock") printf "  %-32s %8.3f per request\n", e, v[e] / req
  }' "$tmp/perf.csv"

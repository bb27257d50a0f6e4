#!/usr/bin/env bash
# cpureq.sh TARGET [MODE] [ALG] — the user and system CPU per request of a target started with
# start.sh, under one closed-loop load like the harness's (32 connections, 8 streams for h2, the
# load generator on the client CPUs): utime and stime of the target's processes from /proc, read
# before and after, over the requests served. Alternate two targets (or two builds of one, with
# stop.sh and start.sh between) to compare them under the same load minutes apart.
#   ./start.sh nginx && ./start.sh edgectl
#   for i in 1 2 3; do ./cpureq.sh nginx keepalive; ./cpureq.sh edgectl keepalive; done
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/common.sh"
T="${1:?usage: cpureq.sh TARGET [MODE] [ALG]}"; MODE="${2:-keepalive}"; ALG="${3:-ecdsa}"
M="$RUN_BASE/manual"
[[ -f "$M/$T-$ALG.pid" ]] || die "$T ($ALG) is not running: ./start.sh $T $ALG"
read -r PID _ < "$M/$T-$ALG.pid"
PGID="$(ps -o pgid= "$PID" | tr -d ' ')"
PORT="$(port_for "$T")"
ticks() { # ticks -> "utime stime" summed over the target's process group
  local u=0 s=0 a b p
  for p in $(pgrep -g "$PGID"); do
    read -r a b < <(awk '{print $14, $15}' "/proc/$p/stat" 2>/dev/null || echo "0 0")
    u=$((u + a)); s=$((s + b))
  done
  echo "$u $s"
}
ca="$(client_alg "$ALG")"
LG=(-url "https://edge.test:$PORT/" -connect "127.0.0.1:$PORT" -cert "$PKI_DIR/client-$ca-chain.pem"
  -key "$PKI_DIR/client-$ca.key" -cacert "$PKI_DIR/ca-root.pem" -c 32 -streams 8 -mode "$MODE" -expect-header ssl-client-s-dn)
run_loadgen "${LG[@]}" -d 1s > /dev/null # warm up
read -r u0 s0 < <(ticks)
ok="$(run_loadgen "${LG[@]}" -d "${DUR:-5s}" -warmup 0 -json | grep -o '"ok":[0-9]*' | cut -d: -f2)"
read -r u1 s1 < <(ticks)
hz="$(getconf CLK_TCK)"
awk -v t="$T" -v m="$MODE" -v ok="$ok" -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v hz="$hz" 'BEGIN {
  us = 1e6 / hz / ok
  printf "%-10s %-9s requests %d  user %.1f µs  system %.1f µs  total %.1f µs per request  (%.0f per CPU-second)\n",
    t, m, ok, u * us, s * us, (u + s) * us, ok / ((u + s) / hz) }'

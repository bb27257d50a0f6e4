#!/usr/bin/env bash
# run.sh - run the mTLS proxy benchmark matrix on loopback and print a table.
#
#   ./run.sh                               # default matrix, see below
#   ./run.sh -t "nginx gobase" -m keepalive -a ecdsa -r 3 -d 10s
#   ./run.sh -t "nginx haproxy gobase" -m "keepalive h2" -a ecdsa    # HTTP/1.1 vs HTTP/2
#   CUSTOM_CMD='exec ./edgectl ... 127.0.0.1:$BENCH_PORT ...' ./run.sh -t custom
#
# Options (defaults in brackets):
#   -t TARGETS   space-separated names of targets/*.sh  [nginx haproxy caddy gobase]
#   -m MODES     handshake, keepalive, h2, idle and/or idle-h2  [handshake keepalive]
#                (h2: -c HTTP/2 connections with -s streams each; a target whose h2
#                sanity probe fails is skipped for h2 only, see failures.jsonl;
#                idle, idle-h2: -i connections, one request each over HTTP/1.1 or
#                HTTP/2, held idle for -d; reports the server's resident set growth
#                per connection. Each idle mode runs on a freshly started target.)
#   -s N         h2 mode: concurrent streams per connection (1..100)  [8]
#   -a ALGS      ecdsa, rsa (RSA server+client), rsasrv (RSA server, ECDSA client) [ecdsa rsa]
#   -r N         repetitions; the whole matrix is repeated N times, so the runs of
#                one point are minutes apart rather than back to back    [2]
#   -d DUR       measured duration per run                [5s]
#   -w DUR       warm-up per run (not counted)            [1s]
#   -c N         concurrency (connections/workers)        [32]
#   -i N         idle modes: connections held              [2000]
#   -o DIR       output directory                          [results/<timestamp>]
#   -x "FLAGS"   extra loadgen flags, e.g. "-insecure" or "-tls 1.2"
#   -T SECONDS   hard cap for the whole run; points not started by then are skipped [3600]
# Environment: PIN=0|1, SERVER_CPUS, CLIENT_CPUS, ORIGIN_CPUS, WORKERS, ORIGIN_PORT,
#   PORT_<target> (dashes as underscores), CUSTOM_CMD (for -t custom),
#   VERIFY_SERVER=1 (make the load generator verify the server chain on every
#   handshake; default 0 = -insecure, which keeps the client cheaper - the sanity
#   probe before each target always verifies), ORIGIN_ECHO_MAX [64] (bytes of each
#   echoed header the origin puts in the body).
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/common.sh"

TARGETS="nginx haproxy caddy gobase"; MODES="handshake keepalive"; ALGS="ecdsa rsa"
REPS=2; DUR=5s; WARM=1s; CONC=32; STREAMS=8; IDLE=2000; OUT=""; XFLAGS=""; MAXT=3600
while getopts "t:m:a:r:d:w:c:s:i:o:x:T:h" o; do
  case $o in
    t) TARGETS=$OPTARG ;; m) MODES=$OPTARG ;; a) ALGS=$OPTARG ;; r) REPS=$OPTARG ;;
    d) DUR=$OPTARG ;; w) WARM=$OPTARG ;; c) CONC=$OPTARG ;; s) STREAMS=$OPTARG ;; i) IDLE=$OPTARG ;;
    o) OUT=$OPTARG ;; x) XFLAGS=$OPTARG ;; T) MAXT=$OPTARG ;;
    *) sed -n '2,34p' "$0"; exit 2 ;;
  esac
done
for m in $MODES; do [[ $m =~ ^(handshake|keepalive|h2|idle|idle-h2)$ ]] || die "unknown mode $m (handshake, keepalive, h2, idle, idle-h2)"; done
OUT="${OUT:-$BENCH_HOME/results/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$OUT"; OUT="$(cd "$OUT" && pwd)"
RD="$RUN_BASE/run-$$"; rm -rf "$RD"; mkdir -p "$RD"

ensure_built; ensure_pki
export ORIGIN_ECHO_MAX="${ORIGIN_ECHO_MAX:-64}"
LGVERIFY="-insecure"; [[ "${VERIFY_SERVER:-0}" == 1 ]] && LGVERIFY=""
for t in $TARGETS; do [[ -x "$BENCH_HOME/targets/$t.sh" ]] || die "unknown target $t"; done
command -v taskset >/dev/null || PIN=0

ORIGIN_PID=""; TARGET_PID=""
cleanup() {
  [[ -n "$TARGET_PID" ]] && stop_group "$TARGET_PID"
  [[ -n "$ORIGIN_PID" ]] && stop_group "$ORIGIN_PID"
  TARGET_PID=""; ORIGIN_PID=""
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

{
  echo "date: $(date -Is)"; echo "host: $(uname -srm), $NCPU CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "pinning: PIN=$PIN server=$SERVER_CPUS loadgen=$CLIENT_CPUS origin=$ORIGIN_CPUS workers=$WORKERS"
  echo "matrix: targets=[$TARGETS] modes=[$MODES] algs=[$ALGS] reps=$REPS d=$DUR warmup=$WARM c=$CONC h2-streams=$STREAMS extra=[$XFLAGS] client-verifies-server=${VERIFY_SERVER:-0}"
  echo "openssl: $(openssl version 2>&1)"
  command -v nginx >/dev/null && echo "nginx: $(nginx -v 2>&1)"
  command -v haproxy >/dev/null && echo "haproxy: $(haproxy -v 2>&1 | head -1)"
  command -v caddy >/dev/null && echo "caddy: $(caddy version 2>&1)"
  echo "go (loadgen/origin/gobase): $(go version 2>/dev/null || echo '?')"
} > "$OUT/env.txt"
cat "$OUT/env.txt" >&2

# sanity MODE: one request with the valid client cert (verifying the server chain) must reach
# the origin with the identity header; in h2 mode it must also be HTTP/2. Uses $t $alg $url.
sanity() {
  local out
  out="$("$BIN/loadgen" -probe -mode "$1" -url "$url" -connect "127.0.0.1:$TARGET_PORT" -cacert "$PKI_DIR/ca-root.pem" \
    "${CLIENT_ARGS[@]}" -expect-header ssl-client-s-dn 2>&1 || true)"
  grep -q '^RESULT outcome=ok' <<<"$out" && return 0
  log "$t/$alg: $1 sanity probe failed, skipping $([[ $1 == h2 ]] && echo "h2" || echo "target"): $(head -3 <<<"$out" | tr '\n' ' ')"
  return 1
}

start_origin "$RD"
log "origin pid $ORIGIN_PID on 127.0.0.1:$ORIGIN_PORT"
JSONL="$OUT/results.jsonl"; : > "$JSONL"
T0=$SECONDS
for rep in $(seq 1 "$REPS"); do
  for t in $TARGETS; do
    for alg in $ALGS; do
      if (( SECONDS - T0 > MAXT )); then log "time cap ${MAXT}s reached, skipping the rest"; break 3; fi
      trd="$RD/$t-$alg-$rep"
      if ! start_target "$t" "$alg" "$trd"; then
        echo "{\"meta\":{\"target\":\"$t\",\"alg\":\"$alg\",\"rep\":\"$rep\"},\"mode\":\"start-failed\"}" >> "$OUT/failures.jsonl"
        continue
      fi
      url="https://edge.test:$TARGET_PORT/"
      client_args "$alg" valid
      if ! sanity keepalive; then
        stop_group "$TARGET_PID"; TARGET_PID=""; continue
      fi
      skip_h2=0
      if [[ " $MODES " == *" h2 "* || " $MODES " == *" idle-h2 "* ]] && ! sanity h2; then
        echo "{\"meta\":{\"target\":\"$t\",\"alg\":\"$alg\",\"rep\":\"$rep\"},\"mode\":\"h2-probe-failed\"}" >> "$OUT/failures.jsonl"
        skip_h2=1
      fi
      for mode in $MODES; do
        [[ ( $mode == h2 || $mode == idle-h2 ) && $skip_h2 == 1 ]] && continue
        mflags=(-c "$CONC"); [[ $mode == h2 ]] && mflags+=(-streams "$STREAMS")
        if [[ $mode == idle* ]]; then
          # A fresh process: memory freed by the modes before would hide the connections' own.
          stop_group "$TARGET_PID"; TARGET_PID=""
          start_target "$t" "$alg" "$trd" && sanity keepalive || continue
          mflags=(-c "$IDLE")
        fi
        log "rep $rep: $t $alg $mode (pid $TARGET_PID, port $TARGET_PORT)"
        # shellcheck disable=SC2086
        line="$(run_loadgen -json -mode "$mode" "${mflags[@]}" -d "$DUR" -warmup "$WARM" \
          -url "$url" -connect "127.0.0.1:$TARGET_PORT" -cacert "$PKI_DIR/ca-root.pem" "${CLIENT_ARGS[@]}" \
          -expect-header ssl-client-s-dn -watch "server=$TARGET_PID" -watch "origin=$ORIGIN_PID" \
          -origin-stats "http://127.0.0.1:$ORIGIN_PORT/__stats" \
          -meta "target=$t" -meta "alg=$alg" -meta "rep=$rep" -meta "pin=$PIN" -meta "workers=$WORKERS" \
          -meta "server_verified_by_client=${VERIFY_SERVER:-0}" -label "$t/$alg/$mode/$rep" $LGVERIFY $XFLAGS)" || { log "loadgen failed"; continue; }
        echo "$line" >> "$JSONL"
        printf '    %s\n' "$(grep -o '"rps":[0-9.]*\|"p99":[0-9.]*\|"err_[a-z]*":[0-9]*\|"cpu_pct":{[^}]*}\|"rss_per_conn_b":{[^}]*}' <<<"$line" | tr '\n' ' ')" >&2
      done
      stop_group "$TARGET_PID"; TARGET_PID=""
      if ! kill -0 "$ORIGIN_PID" 2>/dev/null; then die "origin died"; fi
    done
  done
done
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"
cleanup
"$BIN/report" -json-out "$OUT/results.json" -md-out "$OUT/table.md" "$JSONL" | tee "$OUT/table.txt"
log "results: $OUT/{table.txt,table.md,results.json,results.jsonl,env.txt}"
rm -rf "$RD"

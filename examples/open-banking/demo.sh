#!/usr/bin/env bash
# The open-banking demo, run by "make demo" after "make build certs":
# validate, plan and apply the example to a fresh state in .demo/, start the
# echo origin and "edgectl serve", show what partners see with curl and
# openssl, then stop everything it started, also when a step fails.
#
# Everything it writes goes to .demo/ (or DEMO_DIR, a new or empty
# directory). Ports, each movable: the edge on 127.0.0.1:8443
# (DEMO_EDGE_PORT), the admin listener on 127.0.0.1:9901 (DEMO_ADMIN_PORT),
# the origin on 127.0.0.1:9000
# (DEMO_ORIGIN_PORT; another port plans a copy of the example in .demo/ whose
# origin URL names it). Before every step that talks to them, the demo checks
# that the edge and the origin answering are the processes it started: alive,
# their startup line seen, and the edge serving the lineage it applied.
set -euo pipefail
set -m # every background process gets its own process group, stopped as a whole

cd "$(dirname "$0")/../.."
EDGECTL="${EDGECTL:-bin/edgectl}"
EXAMPLE=examples/open-banking
CERTS="$EXAMPLE/certs"
DEMO="${DEMO_DIR:-.demo}"
EDGE_PORT="${DEMO_EDGE_PORT:-8443}"
ADMIN="127.0.0.1:${DEMO_ADMIN_PORT:-9901}"
ORIGIN_PORT="${DEMO_ORIGIN_PORT:-9000}"
ORIGIN="127.0.0.1:$ORIGIN_PORT"
MANIFESTS="$EXAMPLE"
API=api.bank.example
PORTAL=portal.bank.example

if [ -t 1 ]; then bold=$'\e[1m' dim=$'\e[2m' reset=$'\e[0m'; else bold="" dim="" reset=""; fi
step() {
	ensure_ours
	printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"
}
# show prints a command line, quoting the arguments that need it; say
# prints one already written out.
show() {
	local line="" a
	for a in "$@"; do
		if [[ $a =~ [^A-Za-z0-9_./:=@%+,-] ]]; then line+=" '$a'"; else line+=" $a"; fi
	done
	say "${line# }"
}
say() { printf '%s$ %s%s\n' "$dim" "$*" "$reset"; }
run() { show "$@"; "$@"; }
fail() { printf '\n%sdemo failed: %s%s\n' "$bold" "$*" "$reset" >&2; exit 1; }

pids=()
serve_pid="" origin_pid="" lineage=""

# ensure_ours stops the demo unless the origin and the edge it started are
# still alive and the edge answering on the admin port serves the lineage
# this demo applied (another process on a port would answer otherwise).
ensure_ours() {
	if [ -n "$origin_pid" ] && ! kill -0 "$origin_pid" 2>/dev/null; then
		cat "$DEMO/origin.log" >&2
		fail "the echo origin the demo started (pid $origin_pid) has exited"
	fi
	[ -n "$serve_pid" ] || return 0
	if ! kill -0 "$serve_pid" 2>/dev/null; then
		cat "$DEMO/serve.log" >&2
		fail "edgectl serve (pid $serve_pid) has exited"
	fi
	local served
	served=$(curl -sf "http://$ADMIN/state" | grep -oE '"lineage": *"[^"]*"' | grep -oE '[0-9a-f-]{36}' || true)
	[ "$served" = "$lineage" ] || fail "the edge answering on $ADMIN serves lineage '${served:-none}', not the demo's $lineage: another process holds the port"
}

# wait_for_line waits up to 10 s for the startup line matching pattern in
# log, while pid is alive.
wait_for_line() {
	local pid=$1 log=$2 pattern=$3 what=$4
	for _ in $(seq 100); do
		grep -qE "$pattern" "$log" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "$what exited before it was ready (is its port taken?)"; }
		sleep 0.1
	done
	cat "$log" >&2
	fail "$what did not print its startup line within 10 s"
}

stop_all() {
	local status=$?
	serve_pid="" origin_pid="" # stopping them: no more checks
	trap - EXIT INT TERM HUP
	trap '' PIPE # the output may be gone (| head): stop the processes anyway
	if [ "${#pids[@]}" -gt 0 ]; then
		for pid in "${pids[@]}"; do
			kill -TERM -- "-$pid" 2>/dev/null || true
		done
		for pid in "${pids[@]}"; do
			wait "$pid" 2>/dev/null || true
		done
		{
			step "Stopped what the demo started: the origin and edgectl serve"
			[ "$status" -ne 0 ] || tail -n 2 "$DEMO/serve.log"
		} 2>/dev/null || true
	fi
	exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT TERM HUP PIPE

for tool in curl openssl; do
	command -v "$tool" >/dev/null || fail "$tool is not installed; run: make tools"
done
[ -x "$EDGECTL" ] || fail "$EDGECTL is missing; run: make build"

busy() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for addr in "127.0.0.1:$EDGE_PORT" "$ADMIN" "$ORIGIN"; do
	if busy "$addr"; then
		fail "port ${addr##*:} on 127.0.0.1 is busy (a previous demo still running?). Find it with: ss -ltnp 'sport = :${addr##*:}'
  Every port can be changed: DEMO_EDGE_PORT=18443 DEMO_ADMIN_PORT=19901 DEMO_ORIGIN_PORT=19000 make demo"
	fi
done

if [ -n "${DEMO_DIR:-}" ]; then
	[ ! -e "$DEMO" ] || [ -z "$(ls -A "$DEMO")" ] || fail "DEMO_DIR=$DEMO must be a new or empty directory"
else
	rm -rf "$DEMO"
fi
mkdir -p "$DEMO"
STATE="$DEMO/state.json"
if [ "$ORIGIN_PORT" != 9000 ]; then
	# The origin URL is part of the manifests: plan a copy that names the port.
	MANIFESTS="$DEMO/open-banking"
	mkdir -p "$MANIFESTS"
	cp -R "$EXAMPLE/." "$MANIFESTS"
	rm -rf "$MANIFESTS/origin" "$MANIFESTS/certs/gen.go"
	sed -i.orig "s#http://127.0.0.1:9000#http://$ORIGIN#" "$MANIFESTS/application.yaml"
	rm -f "$MANIFESTS/application.yaml.orig"
	grep -q "$ORIGIN" "$MANIFESTS/application.yaml" || fail "could not set the origin URL to http://$ORIGIN in $MANIFESTS/application.yaml"
	echo "${dim}(DEMO_ORIGIN_PORT=$ORIGIN_PORT: using a copy of the example, $MANIFESTS, whose origin URL is http://$ORIGIN)${reset}"
fi

step "1. Validate the manifests"
run "$EDGECTL" validate -f "$MANIFESTS"

step "2. Plan against an empty state ($STATE)"
show "$EDGECTL" plan -f "$MANIFESTS" --state "$STATE" --no-color
"$EDGECTL" plan -f "$MANIFESTS" --state "$STATE" --no-color >"$DEMO/plan.txt"
grep -E '^[-+~] |^Plan:' "$DEMO/plan.txt"
echo "${dim}(resources only; the field-by-field plan is in $DEMO/plan.txt)${reset}"

step "3. Apply"
run "$EDGECTL" apply -f "$MANIFESTS" --state "$STATE" --no-color | tail -n 1
lineage=$(grep -m1 -oE '"lineage": *"[^"]*"' "$STATE" | grep -oE '[0-9a-f-]{36}') || fail "no lineage in $STATE"

step "4. Start the echo origin ($ORIGIN) and edgectl serve (127.0.0.1:$EDGE_PORT, admin $ADMIN)"
run go build -o "$DEMO/echo-origin" "./$EXAMPLE/origin"
say "$DEMO/echo-origin -listen $ORIGIN &"
"$DEMO/echo-origin" -listen "$ORIGIN" >"$DEMO/origin.log" 2>&1 &
pid=$!
pids+=("$pid")
wait_for_line "$pid" "$DEMO/origin.log" "listening on http://$ORIGIN\$" "the echo origin"
origin_pid=$pid
curl -sf "http://$ORIGIN/demo-check" | grep -q '^origin received GET /demo-check' || fail "the process answering on $ORIGIN is not the demo's echo origin"
say "$EDGECTL serve --state $STATE --key-dir $MANIFESTS --listen 127.0.0.1:$EDGE_PORT --admin $ADMIN --access-log $DEMO/access.log &"
"$EDGECTL" serve --state "$STATE" --key-dir "$MANIFESTS" --listen "127.0.0.1:$EDGE_PORT" --admin "$ADMIN" --access-log "$DEMO/access.log" >"$DEMO/serve.log" 2>&1 &
pid=$!
pids+=("$pid")
wait_for_line "$pid" "$DEMO/serve.log" "^edgectl serve: listening on https://127\.0\.0\.1:$EDGE_PORT .*admin on http://$ADMIN\$" "edgectl serve"
serve_pid=$pid
curl -sf "http://$ADMIN/readyz" >/dev/null || { cat "$DEMO/serve.log" >&2; fail "edgectl serve is not ready"; }
ensure_ours
grep -m1 '^edgectl serve: listening' "$DEMO/serve.log"
run curl -s "http://$ADMIN/readyz"

# curl resolves the example's hostnames to the local edge and trusts the demo root CA.
edge_curl() {
	local host=$1
	shift
	run curl -sS --cacert "$CERTS/root.pem" --resolve "$host:$EDGE_PORT:127.0.0.1" "$@" "https://$host:$EDGE_PORT/accounts"
}

step "5. A partner with a valid certificate reaches the API; the edge forwards its identity"
edge_curl "$API" --cert "$CERTS/partner.pem" --key "$CERTS/partner-key.pem" -H "Client-Cert-Subject: forged-by-client"
echo "${dim}(the forged Client-Cert-Subject header never reached the origin: the edge removed it)${reset}"

step "6. The same call without a certificate is refused in the TLS handshake"
echo "${dim}(curl over TLS 1.2 names the alert; over TLS 1.3 the alert, certificate_required, arrives just after the handshake, as openssl shows)${reset}"
edge_curl "$API" --tls-max 1.2 || echo "${bold}-> refused: curl exit status $?, the origin was not reached${reset}"
say "openssl s_client -connect 127.0.0.1:$EDGE_PORT -servername $API -CAfile $CERTS/root.pem | grep alert"
printf 'GET /accounts HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$API" |
	openssl s_client -ign_eof -connect "127.0.0.1:$EDGE_PORT" -servername "$API" -CAfile "$CERTS/root.pem" 2>&1 |
	grep -o 'SSL routines:[^:]*:[^:]*alert[^:]*' || true

step "7. A certificate from a CA the edge does not trust is refused"
edge_curl "$API" --tls-max 1.2 --cert "$CERTS/untrusted.pem" --key "$CERTS/untrusted-key.pem" || echo "${bold}-> refused: curl exit status $?${reset}"

step "8. The Permissive portal accepts the handshake without a certificate; its firewall answers 403"
edge_curl "$PORTAL" -i || true
step "   ... and lets a partner with a valid certificate through"
edge_curl "$PORTAL" --cert "$CERTS/partner.pem" --key "$CERTS/partner-key.pem" -o /dev/null -w 'HTTP %{http_code}\n'

step "9. What the edge recorded"
sleep 1.2 # the access log is flushed every second
run tail -n 5 "$DEMO/access.log"
say "curl -s http://$ADMIN/metrics | grep -E '^edgectl_(requests|client_verifications|tls_handshake_errors|firewall_decisions)_total'"
curl -s "http://$ADMIN/metrics" | grep -E '^edgectl_(requests|client_verifications|tls_handshake_errors|firewall_decisions)_total' || true

step "10. Prove it with the example's test suite, against this running edge"
# The origin-side cases need the in-process recording origin (make test runs
# them); against a running edge only the handshake and response cases apply.
run "$EDGECTL" test -f "$EXAMPLE/tests" --target "127.0.0.1:$EDGE_PORT" --run '^open-banking/'

step "Done"
echo "State: $STATE. Logs: $DEMO/serve.log, $DEMO/access.log, $DEMO/origin.log."

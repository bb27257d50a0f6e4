#!/usr/bin/env bash
# edgectl: writes manifests in the edgectl.dev/v1 format (docs/reference/) for the bench PKI,
# applies them to a state file in the run dir, then runs `edgectl serve` in the foreground.
# EDGECTL: the edgectl binary (default: the repository's bin/edgectl, built by `make build`).
# VERIFICATION: enforce (default) | permissive.
set -euo pipefail
: "${BENCH_PORT:?}" "${BENCH_CERT:?}" "${BENCH_KEY:?}" "${BENCH_CLIENT_CA:?}" "${BENCH_ORIGIN:?}" "${BENCH_RUNDIR:?}" "${BENCH_HOME:?}"
EDGECTL="${EDGECTL_PREV:?}"
if ! command -v "$EDGECTL" >/dev/null 2>&1; then
  echo "edgectl target: no edgectl binary at $EDGECTL; run make build in the repository (or set EDGECTL)" >&2
  exit 1
fi
export GOMAXPROCS="${BENCH_WORKERS:-2}"
m="$BENCH_RUNDIR/manifests"; mkdir -p "$m"
cat > "$m/edge.yaml" <<YAML
apiVersion: edgectl.dev/v1
kind: Certificate
metadata: {name: edge-cert}
spec:
  certificateFile: $BENCH_CERT
  privateKeyFile: $BENCH_KEY
---
apiVersion: edgectl.dev/v1
kind: TrustedCA
metadata: {name: bench-ca}
spec:
  certificateFile: $BENCH_CLIENT_CA
---
apiVersion: edgectl.dev/v1
kind: Application
metadata: {name: bench-app}
spec:
  origin: {url: "http://$BENCH_ORIGIN"}
  rules:
    - name: forward client identity
      phase: request
      criteria:
        - - {variable: "\${ssl_client_escaped_cert}", operator: exists}
      behaviors:
        - addRequestHeader: "ssl-client-cert: \${ssl_client_escaped_cert}"
        - addRequestHeader: "ssl-client-s-dn: \${ssl_client_s_dn}"
        - addRequestHeader: "ssl-client-verify: \${ssl_client_verify}"
---
apiVersion: edgectl.dev/v1
kind: Firewall
metadata: {name: bench-fw}
spec:
  rules:
    - name: deny unverified clients
      criteria:
        - - {variable: client_certificate_validation, operator: is_not_equal, argument: "true"}
      behaviors:
        - deny: true
---
apiVersion: edgectl.dev/v1
kind: Domain
metadata: {name: edge}
spec:
  hostnames: [edge.test, other.test]
  certificate: edge-cert
  application: bench-app
  firewall: bench-fw
  mtls: {enabled: true, verification: ${VERIFICATION:-enforce}, trustedCA: bench-ca}
YAML
"$EDGECTL" apply -f "$m" --state "$BENCH_RUNDIR/state.json" >"$BENCH_RUNDIR/apply.log" 2>&1
exec "$EDGECTL" serve --state "$BENCH_RUNDIR/state.json" --listen "127.0.0.1:$BENCH_PORT" --admin ""

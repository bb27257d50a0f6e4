#!/usr/bin/env bash
# nginx, with the forwarding headers edgectl sets (X-Forwarded-For, -Host, -Proto): the
# same request bytes for the origin behind both (see nginx.sh).
BENCH_FORWARDED=1 exec "$(dirname "${BASH_SOURCE[0]}")/nginx.sh"

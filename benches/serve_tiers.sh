#!/usr/bin/env bash
# `serve` on an empty database (issue 20): seconds until every track of DIR has its fast
# features, then until every track is full, read from /api/v1/status every half second.
# Loopback only, no mDNS. Compare the first figure with `playlista -a --fast_mode` alone.
#   benches/serve_tiers.sh target/corpus/real [WORKERS (2)] [PORT (8461)]
set -euo pipefail
dir=$(realpath "$1")
workers=${2:-2}
port=${3:-8461}
bin=$(dirname "$0")/../target/release/playlista
state=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$state"' EXIT
t0=$(date +%s.%N)
"$bin" serve --library "$dir" --cache_dir "$state" --output_dir "$state/out" \
  --workers "$workers" --bind "127.0.0.1:$port" --no-mdns >"$state/serve.log" 2>&1 &
pid=$!
fast=""
while sleep 0.5; do
  status=$(curl -sf "http://127.0.0.1:$port/api/v1/status") || continue
  read -r tracks fast_left full_left < <(python3 -c '
import json, sys
lib = json.loads(sys.argv[1])["library"]
print(lib["tracks"], lib["fast"]["left"], (lib.get("full") or {"left": -1})["left"])' "$status")
  elapsed=$(echo "$(date +%s.%N) - $t0" | bc)
  if [ -z "$fast" ] && [ "$tracks" -gt 0 ] && [ "$fast_left" = 0 ]; then
    fast=$elapsed
    echo "every track fast after $fast s ($tracks tracks)"
  fi
  if [ -n "$fast" ] && [ "$full_left" = 0 ]; then
    echo "every track full after $elapsed s"
    break
  fi
done

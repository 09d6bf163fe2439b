#!/usr/bin/env bash
# The E2B JS SDK against real daemons: rollout-pool + rolloutd + rollout-gateway on
# loopback with a config of their own (random ports, own cgroup and socket), then
# node --test sdk.test.mjs and promtool on the gateway's /metrics.
# Usage: sdk.sh BUILD_DIR SOURCE_DIR.  Exit 77 (skip) without root, node, or npm registry.
set -u
bin=$1
src=$2
E2B_VERSION=2.51.0 # the SDK version this gateway is tested against
[ "$(id -u)" -eq 0 ] || { echo "gateway_sdk: needs root (rollout-pool); skipping"; exit 77; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "gateway_sdk: no node/npm; skipping"; exit 77; }
npmdir=$bin/gateway-npm
sdk=$npmdir/node_modules/e2b
if [ "$(node -p "require('$sdk/package.json').version" 2>/dev/null)" != "$E2B_VERSION" ]; then
  # Installed once per build dir (never globally); reruns reuse it.
  if ! npm install --prefix "$npmdir" --no-audit --no-fund --loglevel=error "e2b@$E2B_VERSION" >"$bin/gateway-npm.log" 2>&1; then
    echo "gateway_sdk: npm cannot install e2b@$E2B_VERSION (registry unreachable?); skipping"
    tail -5 "$bin/gateway-npm.log"
    exit 77
  fi
fi
me=$$
port=$((21000 + (me * 7) % 20000))
dir=$(mktemp -d)
cfg=$dir/cfg.yaml
cat > "$cfg" <<EOC
rolloutd:
  socket: $dir/rolloutd.sock
  metrics: 127.0.0.1:$((port + 1))
  heartbeat_ms: 200
  pool_timeout_ms: 800
  pools: [{endpoint: tcp://127.0.0.1:$port}]
pool:
  listen: tcp://127.0.0.1:$port
  cgroup: rollout-gwsdk-$me
  profiles:
    - {name: default, warm: 16, max: 256, memory_mb: 256, pids: 64}
    - {name: noop, type: noop, max: 10000}
gateway:
  listen: 127.0.0.1:$((port + 2))
  api_keys: [sdk-test-key-$me]
  templates: {base: default, noop: noop}
  max_body_bytes: 524288
EOC
"$bin/pool/rollout-pool" --config "$cfg" --log-level warn 2>"$dir/pool.log" & pool=$!
"$bin/coordinator/rolloutd" --config "$cfg" --log-level warn 2>"$dir/rolloutd.log" & rd=$!
"$bin/gateway/rollout-gateway" --config "$cfg" --log-level warn 2>"$dir/gateway.log" & gw=$!
cleanup() {
  kill -TERM $gw 2>/dev/null; wait $gw 2>/dev/null
  kill -TERM $rd $pool 2>/dev/null; wait $rd $pool 2>/dev/null
  # A test kills the pool with SIGKILL: its (empty) sandbox cgroups stay behind, and only a
  # pool started again under the same name would remove them.
  for g in /sys/fs/cgroup/*/rollout-gwsdk-$me; do
    [ -d "$g" ] && find "$g" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  rm -rf "$dir"
}
trap cleanup EXIT
api=http://127.0.0.1:$((port + 2))
key=sdk-test-key-$me
# Ready when a sandbox can be created (the pool link is up).
ready=0
for _ in $(seq 1 100); do
  id=$(curl -s -m 2 -X POST -H "X-API-Key: $key" -d '{"templateID":"noop"}' $api/v2/sandboxes | sed -n 's/.*"sandboxID":"\([a-z0-9]*\)".*/\1/p')
  if [ -n "$id" ]; then curl -s -X DELETE -H "X-API-Key: $key" $api/sandboxes/$id; ready=1; break; fi
  sleep 0.1
done
[ $ready -eq 1 ] || { echo "gateway_sdk: daemons not ready"; cat "$dir"/*.log; exit 1; }
fails=0
E2B_SDK_PATH=$sdk E2B_API_URL=$api E2B_SANDBOX_URL=$api E2B_API_KEY=$key GW_POOL_PID=$pool \
  node --test --test-reporter=spec "$src/tests/gateway/sdk.test.mjs" || fails=$((fails + 1))
# /metrics in the project's style: promtool-clean.
if command -v promtool >/dev/null; then
  if curl -s $api/metrics | promtool check metrics; then echo "ok   promtool check metrics"
  else echo "FAIL promtool check metrics"; fails=$((fails + 1)); fi
fi
if [ $fails -ne 0 ]; then echo "--- gateway.log"; tail -30 "$dir/gateway.log"; echo "--- rolloutd.log"; tail -10 "$dir/rolloutd.log"; fi
[ $fails -eq 0 ]

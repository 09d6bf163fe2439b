#!/usr/bin/env bash
# CURVE between rolloutd and a pool: with the coordinator's key on the pool's allowlist a
# command runs; a rolloutd with a key not on the list never gets the pool (its opens fail as
# UNAVAILABLE); a rolloutd configured for plain TCP cannot talk to the CURVE pool either.
set -u
bin=$1
me=$$
port=$((21000 + me % 20000))
dir=$(mktemp -d)
pool_kp=$("$bin/client/rolloutctl" keygen); pool_pub=$(echo "$pool_kp" | sed -n 's/^public_key: "\(.*\)"$/\1/p'); pool_sec=$(echo "$pool_kp" | sed -n 's/^secret_key: "\(.*\)"$/\1/p')
rd_kp=$("$bin/client/rolloutctl" keygen); rd_pub=$(echo "$rd_kp" | sed -n 's/^public_key: "\(.*\)"$/\1/p'); rd_sec=$(echo "$rd_kp" | sed -n 's/^secret_key: "\(.*\)"$/\1/p')
bad_kp=$("$bin/client/rolloutctl" keygen); bad_pub=$(echo "$bad_kp" | sed -n 's/^public_key: "\(.*\)"$/\1/p'); bad_sec=$(echo "$bad_kp" | sed -n 's/^secret_key: "\(.*\)"$/\1/p')
cat > "$dir/pool.yaml" <<EOC
pool:
  listen: tcp://127.0.0.1:$port
  cgroup: rollout-curve-$me
  curve_secret_key: "$pool_sec"
  curve_allowed: ["$rd_pub"]
  profiles: [{name: default, warm: 2, max: 16}]
EOC
rdconf() { # name pub sec server_key
  if [ -n "$2" ]; then
    printf 'rolloutd:\n  socket: %s/%s.sock\n  pool_timeout_ms: 1000\n  heartbeat_ms: 200\n  curve_public_key: "%s"\n  curve_secret_key: "%s"\n  pools: [{endpoint: "tcp://127.0.0.1:%s", server_key: "%s"}]\n' "$dir" "$1" "$2" "$3" "$port" "$4" > "$dir/$1.yaml"
  else
    printf 'rolloutd:\n  socket: %s/%s.sock\n  pool_timeout_ms: 1000\n  heartbeat_ms: 200\n  pools: [{endpoint: "tcp://127.0.0.1:%s"}]\n' "$dir" "$1" "$port" > "$dir/$1.yaml"
  fi
}
rdconf good "$rd_pub" "$rd_sec" "$pool_pub"
rdconf bad "$bad_pub" "$bad_sec" "$pool_pub"
rdconf plain "" "" ""
"$bin/pool/rollout-pool" --config "$dir/pool.yaml" --log-level error & pool=$!
pids=($pool)
for n in good bad plain; do "$bin/coordinator/rolloutd" --config "$dir/$n.yaml" --log-level error & pids+=($!); done
cleanup() { kill -TERM "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
fails=0
run() { "$bin/client/rolloutctl" run --socket "$dir/$1.sock" -- echo via-curve 2>&1; }
for _ in $(seq 1 50); do out=$(run good); [ "$out" = via-curve ] && break; sleep 0.2; done
[ "$out" = via-curve ] && echo "ok   listed key: command ran" || { echo "FAIL listed key: $out"; fails=$((fails + 1)); }
sleep 1
for n in bad plain; do
  out=$(run $n); rc=$?
  case "$out" in *UNAVAILABLE*|*"no pool is up"*) [ $rc -eq 125 ] && echo "ok   $n: refused ($out)" && continue ;; esac
  echo "FAIL $n: rc=$rc out=$out"; fails=$((fails + 1))
done
echo "$fails failed"
[ $fails -eq 0 ]

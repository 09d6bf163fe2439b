#!/bin/sh
# rolloutd --check-config on broken files: each fails (exit 1) naming the file and the
# problem (line and key where the YAML layer knows them); the shipped configs pass.
set -u
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
check() { # name expected-substring yaml
	printf '%s' "$3" > "$dir/$1.yaml"
	out=$("$bin" --check-config "$dir/$1.yaml" 2>&1); rc=$?
	case "$out" in
	*"$dir/$1.yaml"*"$2"*) [ $rc -eq 1 ] && { echo "ok   $1: $out"; return; } ;;
	esac
	echo "FAIL $1 (rc=$rc): $out"; fails=$((fails + 1))
}
check unknown-key "Unexpected key: sockett" 'rolloutd:
  sockett: /tmp/x
  pools: [{endpoint: tcp://127.0.0.1:1}]
'
check line "Unexpected key: weight;Load: Backtrace:;  in mapping (line: 3" 'rolloutd:
  pools:
    - endpoint: tcp://127.0.0.1:1
      weight: 3
'
check wrong-type "Invalid" 'rolloutd:
  ring_bytes: big
  pools: [{endpoint: tcp://127.0.0.1:1}]
'
check negative "Invalid" 'rolloutd:
  heartbeat_ms: -5
  pools: [{endpoint: tcp://127.0.0.1:1}]
'
check ring-size "power of two" 'rolloutd:
  ring_bytes: 100000
  pools: [{endpoint: tcp://127.0.0.1:1}]
'
check overflow "Invalid" 'rolloutd:
  lease_ms: 99999999999999999999
  pools: [{endpoint: tcp://127.0.0.1:1}]
'
check no-pools "pools" 'rolloutd:
  socket: /tmp/x
'
check bad-endpoint "must be tcp://" 'rolloutd:
  pools: [{endpoint: "http://pool:80"}]
'
check both "exactly one of endpoint and dns" 'rolloutd:
  pools: [{endpoint: tcp://127.0.0.1:1, dns: "pool:1"}]
'
check timeouts "pool_timeout_ms must be above" 'rolloutd:
  heartbeat_ms: 1000
  pool_timeout_ms: 500
  pools: [{endpoint: tcp://127.0.0.1:1}]
'
check curve-half "go together" 'rolloutd:
  curve_public_key: "0000000000000000000000000000000000000000"
  pools: [{endpoint: tcp://127.0.0.1:1}]
'
check alias-bomb "aliases are not accepted" 'a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
rolloutd:
  pools: [{endpoint: tcp://127.0.0.1:1}]
'
check duplicate-key "Mapping field already seen: socket" 'rolloutd:
  socket: /tmp/a
  socket: /tmp/b
  pools: [{endpoint: tcp://127.0.0.1:1}]
'
check empty "empty file" ''
check deep "nested deeper than 32 levels" "rolloutd:
  pools: $(printf '[%.0s' $(seq 40))
"
check pool-key-range "lease_ms: 5 is outside the accepted range" 'rolloutd:
  lease_ms: 5
  pools: [{endpoint: tcp://127.0.0.1:1}]
'
# A directory and a FIFO as the config path: exit 1 and a message naming the path. A wrong
# exit code is a failure like a wrong message; a FIFO must not make it wait for a writer.
not_regular() { # name path
	out=$(timeout 5 "$bin" --check-config "$2" 2>&1); rc=$?
	if [ $rc -eq 1 ] && case "$out" in *"$2"*"not a regular file"*) true ;; *) false ;; esac; then
		echo "ok   $1: $out"
	else
		echo "FAIL $1 (rc=$rc): $out"; fails=$((fails + 1))
	fi
}
not_regular directory "$dir"
mkfifo "$dir/fifo"
not_regular fifo "$dir/fifo"
for f in "${ROLLOUT_SOURCE_DIR:-.}"/configs/*.yaml "${ROLLOUT_SOURCE_DIR:-.}"/deploy/kubernetes/*.yaml; do
	grep -q '^rolloutd:' "$f" || continue
	out=$("$bin" --check-config "$f" 2>&1) || { echo "FAIL shipped $f: $out"; fails=$((fails + 1)); }
done
echo "$fails failed"
[ $fails -eq 0 ]

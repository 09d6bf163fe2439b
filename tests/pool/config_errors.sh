#!/bin/sh
# rollout-pool --check-config on broken files: each must fail (exit 1) with a message that
# names the file and what is wrong; the shipped config must pass.
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
check unknown-key "Unexpected key: bogus" 'pool:
  bogus: 1
  profiles: [{name: a}]
'
check wrong-type "Invalid" 'pool:
  profiles: [{name: a, warm: lots}]
'
check negative "Invalid UINT value" 'pool:
  profiles: [{name: a, warm: -3}]
'
check line-number "line: 3" 'pool:
  profiles:
    - name: a
      memory: 5
'
check warm-over-max "warm 9 is above max 2" 'pool:
  profiles: [{name: a, warm: 9, max: 2}]
'
check bad-root "is not a directory" 'pool:
  profiles: [{name: a, root: /nonexistent}]
'
check duplicate "duplicate profile name" 'pool:
  profiles: [{name: a}, {name: a}]
'
check bad-listen "must be tcp://" 'pool:
  listen: http://x
  profiles: [{name: a}]
'
check bad-env "is not NAME=value" 'pool:
  profiles: [{name: a, env: [NOEQUALS]}]
'
check no-profiles "profiles" 'pool:
  identity: x
'
check empty "empty file" ''
check privileged-uid ":2: pool.profiles[0].uid_base: 500 is outside the accepted range 1000" 'pool:
  profiles: [{name: a, uid_base: 500}]
'
check over-range ":3: pool.lease_ms: 5 is outside the accepted range" 'pool:
  profiles: [{name: a}]
  lease_ms: 5
'
check bad-type-name "Invalid" 'pool:
  profiles: [{name: a, type: docker}]
'
check alias "aliases are not accepted" 'pool:
  profiles: [&p {name: a}, *p]
'
# network: egress allowlists and the address range: each bad entry is named by key and index.
check egress-bad-cidr ":3: pool.profiles.egress: profiles[0] (a): egress[1]: bad CIDR prefix '/33'" 'pool:
  profiles:
    - {name: a, network: egress, egress: ["10.1.0.0/16", "10.0.0.0/33"]}
'
check egress-host-bits "egress[0]: bad CIDR '10.0.0.1/8': host bits set" 'pool:
  profiles: [{name: a, network: egress, egress: ["10.0.0.1/8"]}]
'
check egress-bad-port "egress[0]: bad port in '1.2.3.4:70000'" 'pool:
  profiles: [{name: a, network: egress, egress: ["1.2.3.4:70000"]}]
'
check egress-port-zero "egress[0]: bad port in 'pypi.org:0/tcp'" 'pool:
  profiles: [{name: a, network: egress, egress: ["pypi.org:0/tcp"]}]
'
check egress-bad-range "egress[0]: bad port range" 'pool:
  profiles: [{name: a, network: egress, egress: ["1.2.3.4:90-80"]}]
'
check egress-host-no-port "egress[0]: 'pypi.org': a host name needs a port" 'pool:
  profiles: [{name: a, network: egress, egress: ["pypi.org"]}]
'
check egress-ipv6 "IPv6 destinations are not supported" 'pool:
  profiles: [{name: a, network: egress, egress: ["[2001:db8::1]:443"]}]
'
check egress-bad-address "is not an IPv4 address" 'pool:
  profiles: [{name: a, network: egress, egress: ["300.1.2.3:80"]}]
'
check egress-without-network "egress needs network: egress" 'pool:
  profiles: [{name: a, egress: ["10.0.0.0/8"]}]
'
check bad-network-mode "Invalid" 'pool:
  profiles: [{name: a, network: bridge}]
'
check egress-range-public "pool.egress_range: '8.8.0.0/16' is not inside a private range" 'pool:
  egress_range: 8.8.0.0/16
  profiles: [{name: a}]
'
check egress-range-small "pool.egress_range: '10.1.2.0/30': the prefix must be /8 .. /28" 'pool:
  egress_range: 10.1.2.0/30
  profiles: [{name: a}]
'
# A secret key in a file other users can read (0644 in a directory they can enter):
# refused, whatever else is right; the same file at 0600 is fine.
chmod 755 "$dir"
key=0123456789012345678901234567890123456789
check readable-secret "other users can read it" "pool:
  curve_secret_key: \"$key\"
  curve_allowed: [\"$key\"]
  profiles: [{name: a}]
"
chmod 600 "$dir/readable-secret.yaml"
out=$("$bin" --check-config "$dir/readable-secret.yaml" 2>&1) && echo "ok   private secret: $out" || { echo "FAIL private secret: $out"; fails=$((fails + 1)); }
# --config-reference lists every key of both tables.
ref=$("$bin" --config-reference)
for k in pool.identity pool.listen pool.metrics pool.cgroup pool.lease_ms pool.max_inflight pool.result_cache_s \
	pool.max_message_mb pool.create_timeout_ms pool.curve_secret_key pool.curve_allowed pool.profiles \
	"pool.profiles[].name" "pool.profiles[].warm" "pool.profiles[].uid_count" "pool.profiles[].env" \
	pool.egress_range "pool.profiles[].network" "pool.profiles[].egress"; do
	case "$ref" in *"\`$k\`"*) ;; *) echo "FAIL reference lacks $k"; fails=$((fails + 1)) ;; esac
done
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
for f in "$ROLLOUT_SOURCE_DIR/configs/local.yaml" "$ROLLOUT_SOURCE_DIR/deploy/kubernetes/pool.yaml"; do
	out=$("$bin" --check-config "$f" 2>&1) || { echo "FAIL shipped config $f: $out"; fails=$((fails + 1)); }
done
echo "$fails failed"
[ $fails -eq 0 ]

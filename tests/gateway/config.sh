#!/usr/bin/env bash
# rollout-gateway --check-config: shipped configs pass; broken ones fail naming file, line
# and key, with a non-zero exit; a directory or a FIFO is refused, not waited on.
set -u
bin=$1
src=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
check() { # name, expected text, file content
  printf '%s' "$3" > "$dir/$1.yaml"
  out=$(timeout 5 "$bin" --check-config "$dir/$1.yaml" 2>&1); rc=$?
  case "$out" in *"$2"*) [ $rc -ne 0 ] && { echo "ok   $1: $out"; return; } ;; esac
  echo "FAIL $1 (rc=$rc): $out"; fails=$((fails + 1))
}
check no-section "gateway: section missing" $'rolloutd: {}\n'
check unknown-key "$dir/unknown-key.yaml:4: bogus: unknown key" $'gateway:\n  listen: 127.0.0.1:1\n  api_keys: [abcdefgh]\n  bogus: 1\n'
check bad-listen "listen: expected HOST:PORT" $'gateway:\n  listen: nowhere\n  api_keys: [abcdefgh]\n'
check no-keys "api_keys: required" $'gateway:\n  listen: 127.0.0.1:1\n'
check bad-template "templates: expected a map" $'gateway:\n  listen: 127.0.0.1:1\n  api_keys: [abcdefgh]\n  templates: [base]\n'
check negative "default_timeout_s: expected an unsigned integer" $'gateway:\n  listen: 127.0.0.1:1\n  api_keys: [abcdefgh]\n  default_timeout_s: -1\n'
check syntax "$dir/syntax.yaml:" $'gateway: {listen: [\n'
check empty "empty file" ''
out=$("$bin" --check-config "$dir" 2>&1) && { echo "FAIL directory accepted"; fails=$((fails + 1)); } || echo "ok   directory: $out"
mkfifo "$dir/fifo"
out=$(timeout 5 "$bin" --check-config "$dir/fifo" 2>&1); rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "ok   fifo: $out" || { echo "FAIL fifo (rc=$rc): $out"; fails=$((fails + 1)); }
for f in "$src"/configs/*.yaml "$src"/deploy/*/*.yaml; do
  grep -q '^gateway:' "$f" || continue
  out=$("$bin" --check-config "$f" 2>&1) && echo "ok   shipped $f" || { echo "FAIL shipped $f: $out"; fails=$((fails + 1)); }
done
echo "$fails failed"
[ $fails -eq 0 ]

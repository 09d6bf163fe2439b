#!/usr/bin/env bash
# Every deploy/prometheus/*.rules.yml passes `promtool check rules` and its unit tests next
# to it (NAME.rules.test.yml) pass `promtool test rules`.
set -euo pipefail
dir=${1:-$(dirname "$0")/../../deploy/prometheus}
command -v promtool >/dev/null || { echo "promtool not installed (Debian: prometheus); skipping"; exit 77; }
n=0
for r in "$dir"/*.rules.yml; do
  t=${r%.yml}.test.yml
  [ -f "$t" ] || { echo "FAIL $r has no unit tests ($t)"; exit 1; }
  promtool check rules "$r"
  promtool test rules "$t"
  n=$((n + 1))
done
[ $n -gt 0 ] || { echo "FAIL no rules in $dir"; exit 1; }
echo "$n rule file(s) checked and tested"

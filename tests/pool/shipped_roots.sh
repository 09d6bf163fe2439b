#!/bin/sh
# No shipped configuration gives sandboxes the host's root: every isolated profile of
# configs/ and deploy/ leaves `root` at its default (system) or names system.
set -u
src=${ROLLOUT_SOURCE_DIR:?}
fails=0
for f in "$src"/configs/*.yaml "$src"/deploy/kubernetes/pool.yaml; do
	bad=$(grep -nE '^[[:space:]-]*root:[[:space:]]*[^[:space:]#]' "$f" | grep -vE 'root:[[:space:]]*"?system"?([[:space:]]|$)')
	if [ -n "$bad" ]; then
		echo "FAIL $f: a profile root other than system: $bad"
		fails=$((fails + 1))
	else
		echo "ok   $f"
	fi
done
grep -q 'root: system' "$src/configs/local.yaml" || { echo "FAIL configs/local.yaml does not show root: system"; fails=$((fails + 1)); }
[ $fails -eq 0 ]

#!/bin/sh
# The configuration reference cannot drift: docs/config.md is what the daemons' key tables
# print, and configs/local.yaml names every key (set or commented out).
set -u
build=$1
src=${ROLLOUT_SOURCE_DIR:?}
fails=0
gen=$(mktemp)
trap 'rm -f "$gen"' EXIT
"$src/scripts/config-reference" "$build" > "$gen"
if diff -u "$src/docs/config.md" "$gen"; then
	echo "ok   docs/config.md matches the key tables"
else
	echo "FAIL docs/config.md is stale: run scripts/config-reference $build > docs/config.md"
	fails=$((fails + 1))
fi
keys=0
for leaf in $(grep -o '^| `[^`]*`' "$gen" | sed 's/^| `//; s/`$//; s/.*\.//'); do
	keys=$((keys + 1))
	if ! grep -Eq "(^|[[:space:]#{,-])$leaf:" "$src/configs/local.yaml"; then
		echo "FAIL configs/local.yaml does not mention '$leaf'"
		fails=$((fails + 1))
	fi
done
echo "$keys keys checked against configs/local.yaml"
[ "$keys" -gt 20 ] || { echo "FAIL too few keys in the reference ($keys)"; fails=$((fails + 1)); }
echo "$((1 + keys - fails)) passed, $fails failed"
[ $fails -eq 0 ]

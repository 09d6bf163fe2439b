#!/usr/bin/env bash
# scripts/mkimage's busybox and demo images, read without running them: layouts and tags,
# layer counts, whole gzip tars with the promised whiteouts, the image config, the EROFS and
# squashfs copies, a second run that reuses everything, and the demo's bug and fix (run on
# the host's sh). Usage: check_mkimage.sh MKIMAGE OUTDIR. Exit 77 when mkimage skips.
set -euo pipefail
mk=$1
mkdir -p "$2"
out=$(cd "$2" && pwd) # mkimage prints absolute paths
fail() {
	echo "check_mkimage: FAIL: $*" >&2
	exit 1
}

rc=0
"$mk" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "no arguments: exit $rc, want 2"
rc=0
"$mk" nosuchkind "$out" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 2 ] || fail "unknown kind: exit $rc, want 2"

rc=0
"$mk" demo "$out" >/dev/null || rc=$?
[ "$rc" -ne 77 ] || exit 77
[ "$rc" -eq 0 ] || fail "mkimage demo: exit $rc"
before=$(stat -c %Y.%y "$out/.busybox.done" "$out/.demo.done")
printed=$("$mk" busybox "$out")
[ "$(stat -c %Y.%y "$out/.busybox.done" "$out/.demo.done")" = "$before" ] || fail "a second run rebuilt"
echo "$printed" | grep -qx "$out/busybox" || fail "mkimage busybox printed: $printed"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# layers IMAGE: the layer digests, lowest first (manifest of tag latest).
layers() {
	python3 - "$1" <<-'EOF'
		import json, sys
		lay = sys.argv[1]
		blob = lambda d: json.load(open(lay + "/blobs/sha256/" + d.split(":")[1]))
		idx = json.load(open(lay + "/index.json"))
		m = [x for x in idx["manifests"] if x.get("annotations", {}).get("org.opencontainers.image.ref.name") == "latest"]
		assert len(m) == 1, "one manifest tagged latest"
		man = blob(m[0]["digest"])
		for l in man["layers"]:
		    assert l["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip", l["mediaType"]
		    print(l["digest"].split(":")[1])
	EOF
}
for img in busybox demo; do
	umoci ls --layout "$out/$img" | grep -qx latest || fail "$img: no tag latest"
	for d in $(layers "$out/$img"); do
		tar tzf "$out/$img/blobs/sha256/$d" >/dev/null 2>"$tmp/tar.err" ||
			fail "$img: layer $d is not a whole gzip tar: $(cat "$tmp/tar.err")"
	done
done
mapfile -t bl < <(layers "$out/busybox")
mapfile -t dl < <(layers "$out/demo")
[ ${#bl[@]} -eq 2 ] || fail "busybox: ${#bl[@]} layers, want 2"
[ ${#dl[@]} -eq 3 ] || fail "demo: ${#dl[@]} layers, want 3"
[ "${dl[0]} ${dl[1]}" = "${bl[0]} ${bl[1]}" ] || fail "demo does not stack on busybox's layers"
tar tzf "$out/busybox/blobs/sha256/${bl[0]}" >"$tmp/l1"
tar tzf "$out/busybox/blobs/sha256/${bl[1]}" >"$tmp/l2"
for p in bin/busybox bin/sh bin/awk bin/sha256sum usr/bin/env etc/passwd etc/motd opt/layer1/a home/agent/; do
	grep -qx "$p" "$tmp/l1" || fail "busybox layer 1 lacks $p"
done
for p in etc/.wh.motd opt/.wh.layer1 etc/rollout-image usr/local/bin/hello; do
	grep -qx "$p" "$tmp/l2" || fail "busybox layer 2 lacks $p"
done

if command -v skopeo >/dev/null 2>&1; then
	skopeo inspect --config "oci:$out/busybox:latest" >"$tmp/bcfg"
	skopeo inspect --config "oci:$out/demo:latest" >"$tmp/dcfg"
	python3 - "$tmp/bcfg" "$tmp/dcfg" <<-'EOF'
		import json, sys
		b, d = (json.load(open(p))["config"] for p in sys.argv[1:])
		assert b["Env"] == ["PATH=/usr/local/bin:/usr/bin:/bin"], b
		assert b["WorkingDir"] == "/" and not b.get("User"), b
		assert d["WorkingDir"] == "/testbed" and d["Env"] == b["Env"], d
	EOF
fi

if command -v mksquashfs >/dev/null 2>&1; then
	unsquashfs -l "$out/busybox.squashfs" >"$tmp/sq"
	grep -qx squashfs-root/etc/rollout-image "$tmp/sq" || fail "busybox.squashfs lacks /etc/rollout-image"
	! grep -q -e '^squashfs-root/etc/motd$' -e '^squashfs-root/opt/layer1' "$tmp/sq" ||
		fail "busybox.squashfs holds what layer 2 deleted"
fi
if command -v mkfs.erofs >/dev/null 2>&1; then
	[ -s "$out/busybox.erofs" ] || fail "no busybox.erofs"
	if command -v fsck.erofs >/dev/null 2>&1; then
		fsck.erofs "$out/busybox.erofs" >/dev/null || fail "fsck.erofs busybox.erofs"
	fi
fi

# The demo's repository: its tests fail as shipped and pass after the documented fix, applied
# as the pool's sandboxes would (a uid that owns nothing there) when we may switch to one.
mkdir -m 0755 "$tmp/demo"
tar xzpf "$out/demo/blobs/sha256/${dl[2]}" -C "$tmp/demo" testbed
as=()
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
	chmod 0755 "$tmp"
	as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
fi
if "${as[@]}" sh "$tmp/demo/testbed/run_tests.sh" >"$tmp/run1"; then
	fail "the demo's tests pass before the fix"
fi
grep -q "FAIL fact_5: calc.sh fact 5: expected 120, got 24" "$tmp/run1" || fail "unexpected failure: $(cat "$tmp/run1")"
fix=$(grep -o "sed -i '[^']*' /testbed/calc.sh" "$mk")
[ -n "$fix" ] || fail "mkimage documents no fix"
read -ra fixv <<<"${fix//\'/}"
"${as[@]}" "${fixv[@]/\/testbed/$tmp/demo/testbed}" || fail "$fix failed${as:+ as uid 65534}"
"${as[@]}" sh "$tmp/demo/testbed/run_tests.sh" >"$tmp/run2" || fail "the demo's tests fail after the fix: $(cat "$tmp/run2")"
[ ${#as[@]} -eq 0 ] || ! "${as[@]}" test -w "$tmp/demo/testbed/run_tests.sh" || fail "the policy could edit run_tests.sh"
echo "check_mkimage: busybox and demo images as documented"

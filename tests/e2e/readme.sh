#!/usr/bin/env bash
# The first hour as the README tells it: its C snippet compiles (and checks its errors), its
# `rolloutd --plan` example runs as written, every default socket is one path, and the tools
# that cannot reach rolloutd name what they tried and how to choose another. No daemons.
# Usage: readme.sh BUILD_DIR SOURCE_DIR
set -u
build=$1
src=$(cd "$2" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }

# 1. The C snippet, extracted as it stands, builds warning-free against the headers.
awk '/^```c$/{on=1; next} on && /^```$/{exit} on' "$src/README.md" > "$dir/snippet.c"
grep -q rollout_next "$dir/snippet.c" || bad "README: no C snippet with rollout_next found"
if cc -std=c11 -Wall -Wextra -Werror -I"$src/include" -o "$dir/snippet" "$dir/snippet.c" \
	-L"$build/client" -lrollout 2> "$dir/cc.log"; then
	ok "README's C snippet compiles and links"
else
	bad "README's C snippet: $(cat "$dir/cc.log")"
fi
# It checks what rollout_next returns, not only the value 0.
grep -q 'rc = rollout_next' "$dir/snippet.c" && grep -q 'rc < 0' "$dir/snippet.c" &&
	ok "README's C snippet checks rollout_next's errors" || bad "README's C snippet ignores rollout_next errors"
# Run without rolloutd: it must say why and fail, not hang or crash.
# (An ASan build's library needs its runtime first: CMake names it in ROLLOUT_TEST_PRELOAD.)
out=$(env ${ROLLOUT_TEST_PRELOAD:+LD_PRELOAD=$ROLLOUT_TEST_PRELOAD ASAN_OPTIONS=detect_leaks=0} \
	ROLLOUTD_SOCKET=$dir/none.sock LD_LIBRARY_PATH=$build/client timeout 10 "$dir/snippet" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q rolloutd && ok "the snippet without rolloutd: exit 1, '$out'" ||
	bad "the snippet without rolloutd: rc=$rc out=$out"

# 2. Every `rolloutd --plan` line of the README runs as written, from the checkout.
n=0
while IFS= read -r line; do
	n=$((n + 1))
	cmd=${line%%#*}
	if (cd "$src" && eval "\"$build/coordinator/rolloutd\" ${cmd#rolloutd }") > "$dir/plan.out" 2>&1; then
		ok "README: $cmd"
	else
		bad "README: $cmd: $(tail -3 "$dir/plan.out")"
	fi
done < <(grep -E '^rolloutd --plan' "$src/README.md")
[ $n -gt 0 ] || bad "README: no rolloutd --plan example"

# 3. One default socket: the header, rolloutd's key table (docs/config.md), configs/local.yaml.
hdr=$(sed -n 's/^#define ROLLOUT_DEFAULT_SOCKET "\(.*\)"/\1/p' "$src/include/rollout/rollout.h")
tbl=$("$build/coordinator/rolloutd" --config-reference | sed -n 's/^| `rolloutd.socket` | string | `\([^`]*\)`.*/\1/p')
loc=$(sed -n 's/^  socket: *\([^ ]*\).*/\1/p' "$src/configs/local.yaml" | head -1)
[ -n "$hdr" ] && [ "$hdr" = "$tbl" ] && [ "$hdr" = "$loc" ] && ok "one default socket: $hdr" ||
	bad "default sockets differ: header '$hdr', rolloutd '$tbl', configs/local.yaml '$loc'"

# 4. The tools name the socket or address they tried, and how to choose another.
ctl=$build/client/rolloutctl
err=$(env -u ROLLOUTD_SOCKET "$ctl" run --socket "$dir/absent.sock" -- true 2>&1); rc=$?
[ $rc -eq 125 ] && echo "$err" | grep -q "$dir/absent.sock" && echo "$err" | grep -q -- --socket &&
	ok "rolloutctl run names the socket it tried" || bad "rolloutctl run --socket: rc=$rc $err"
cat > "$dir/cfg.yaml" <<EOC
rolloutd:
  socket: "$dir/from-config.sock"   # a comment
  metrics: 0.0.0.0:1
pool:
  socket: /not/this/one
EOC
err=$(env -u ROLLOUTD_SOCKET "$ctl" run --config "$dir/cfg.yaml" --profile default -- true 2>&1); rc=$?
[ $rc -eq 125 ] && echo "$err" | grep -q "$dir/from-config.sock" &&
	ok "rolloutctl run --config reads rolloutd.socket" || bad "rolloutctl run --config: rc=$rc $err"
err=$(env -u ROLLOUTD_SOCKET "$ctl" run -- true 2>&1)
echo "$err" | grep -q "$hdr" && ok "rolloutctl run with no options tries $hdr" || bad "rolloutctl run: $err"
err=$("$ctl" status --config "$dir/cfg.yaml" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$err" | grep -q "127.0.0.1:1/metrics" && echo "$err" | grep -q -- --metrics &&
	ok "rolloutctl status --config reads rolloutd.metrics" || bad "rolloutctl status --config: $err"
"$ctl" run --help | grep -q -- "--profile" && ok "rolloutctl run --profile" || bad "rolloutctl run --help lacks --profile"
# The Python binding without its library says how to get one.
err=$(cd "$dir" && PYTHONPATH=$src/client/python ROLLOUT_LIBRARY=$dir/none.so /usr/bin/python3 -c \
	'import rollout; rollout.Client()' 2>&1)
echo "$err" | grep -q "make install" && echo "$err" | grep -q ROLLOUT_LIBRARY &&
	ok "python: a missing librollout is explained" || bad "python without librollout: $err"

echo "$fails failed"
[ $fails -eq 0 ]

#!/usr/bin/env bash
# librollout as a user gets it: install the build into a prefix, then build a trainer
# program out of tree twice, with pkg-config (librollout.pc) and with CMake
# (find_package(rollout)), and check both binaries link and report the library version.
# Then the rest of the install: programs that run without LD_LIBRARY_PATH, the Python
# package that finds the installed library, configs and units, the units' users (as root),
# and the offline pip install of client/python into a venv.
set -eu
build=$1
src=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cmake --install "$build" --prefix "$dir/prefix" > "$dir/install.log"
libdir=$(dirname "$(find "$dir/prefix" -name librollout.pc | head -1)")/..
export PKG_CONFIG_PATH=$libdir/pkgconfig
cat > "$dir/hello.c" <<'EOC'
#include <rollout/rollout.h>
#include <stdio.h>
int main(void)
{
	printf("librollout %u %s\n", rollout_version(), rollout_strerror(ROLLOUT_E_PEER_DEAD));
	return rollout_version() == ROLLOUT_VERSION_HEX ? 0 : 1;
}
EOC
cc -o "$dir/hello-pc" "$dir/hello.c" $(pkg-config --cflags --libs librollout)
LD_LIBRARY_PATH=$libdir "$dir/hello-pc"
cc -o "$dir/demo-pc" "$src/examples/c/rollout_demo.c" $(pkg-config --cflags --libs librollout)
mkdir "$dir/cm"
cat > "$dir/cm/CMakeLists.txt" <<EOC
cmake_minimum_required(VERSION 3.22)
project(consumer C)
find_package(rollout REQUIRED)
add_executable(hello $dir/hello.c)
target_link_libraries(hello PRIVATE rollout::rollout)
EOC
cmake -S "$dir/cm" -B "$dir/cm/build" -DCMAKE_PREFIX_PATH="$dir/prefix" > "$dir/cm.log"
cmake --build "$dir/cm/build" > "$dir/cmb.log"
LD_LIBRARY_PATH=$libdir "$dir/cm/build/hello"
echo "ok: pkg-config and CMake consumers build against the installed librollout"

prefix=$dir/prefix
fail() { echo "FAIL: $*"; exit 1; }
readelf -d "$prefix/bin/rolloutctl" | grep -E 'RUNPATH.*\$ORIGIN/\.\./lib' > /dev/null ||
	fail "rolloutctl has no relative RUNPATH: $(readelf -d "$prefix/bin/rolloutctl" | grep -E 'RPATH|RUNPATH')"
env -u LD_LIBRARY_PATH "$prefix/bin/rolloutctl" --help > /dev/null || fail "installed rolloutctl does not run"
echo "ok: installed programs find librollout through RUNPATH \$ORIGIN/../lib"
init=$(find "$prefix" -path '*/rollout/_install.py' | head -1)
[ -n "$init" ] || fail "no Python package under $prefix"
lib=$(cd "$dir" && env -u ROLLOUT_LIBRARY PYTHONPATH="$(dirname "$(dirname "$init")")" /usr/bin/python3 -c \
	'import rollout; print(rollout.lib()._name)')
case $lib in "$prefix"/*/librollout.so.*) echo "ok: the installed Python package loads $lib" ;;
*) fail "the installed Python package loads '$lib', not the installed librollout" ;; esac
for f in etc/rolloutd/rolloutd.yaml etc/rolloutd/pool.yaml lib/sysusers.d/rolloutd.conf \
	share/rolloutd/configs/local.yaml lib/systemd/system/rolloutd.service \
	lib/systemd/system/rollout-pool.service lib/systemd/system/rollout-gateway.service; do
	[ -f "$prefix/$f" ] || fail "make install did not install $f"
done
grep -q "ExecStart=$prefix/bin/rolloutd --config $prefix/etc/rolloutd/rolloutd.yaml" \
	"$prefix/lib/systemd/system/rolloutd.service" || fail "rolloutd.service does not name the installed files"
"$prefix/bin/rolloutd" --check-config "$prefix/etc/rolloutd/rolloutd.yaml" > /dev/null || fail "installed rolloutd.yaml"
"$prefix/bin/rollout-pool" --check-config "$prefix/etc/rolloutd/pool.yaml" > /dev/null || fail "installed pool.yaml"
echo "ok: configs, units (naming $prefix) and sysusers.d installed"
if [ "$(id -u)" -eq 0 ]; then
	getent passwd rolloutd > /dev/null && getent group rollout > /dev/null ||
		fail "the units' user rolloutd and group rollout do not exist after make install"
	echo "ok: user rolloutd and group rollout exist"
fi
# pip, offline, in a venv that sees Debian's setuptools (from a copy: the build writes).
if /usr/bin/python3 -c 'import setuptools, venv, ensurepip' 2> /dev/null; then
	cp -r "$src/client/python" "$dir/py"
	/usr/bin/python3 -m venv --system-site-packages "$dir/venv"
	"$dir/venv/bin/pip" install -q --no-build-isolation --no-index "$dir/py" > "$dir/pip.log" 2>&1 ||
		fail "pip install --no-build-isolation --no-index client/python: $(tail -5 "$dir/pip.log")"
	v=$(cd "$dir" && "$dir/venv/bin/python" -c 'import rollout; print(rollout.__version__)')
	echo "ok: pip installs client/python offline into a venv (rollout $v)"
else
	echo "note: no setuptools/venv for /usr/bin/python3: pip check not run"
fi

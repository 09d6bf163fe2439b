#!/usr/bin/env bash
# librollout as a user gets it: install the build into a prefix, then build a trainer
# program out of tree twice, with pkg-config (librollout.pc) and with CMake
# (find_package(rollout)), and check both binaries link and report the library version.
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

#!/bin/sh
# Run by ctest after the tests (CTestCustom.cmake, written by tests/cluster/CMakeLists.txt):
# the per-fault results of the cluster tests that ran, whether they passed or failed.
dir=$1
ls "$dir"/cluster_*.txt >/dev/null 2>&1 || exit 0
echo
echo "cluster faults: requests completed / lost / duplicated"
for f in "$dir"/cluster_*.txt; do sed 's/^RESULT /  /; s/^\(PASS\|FAIL\) /  \1 /' "$f"; done
exit 0

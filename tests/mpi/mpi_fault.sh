#!/bin/sh
# Runs tests/mpi/test_mpi_fault.c under `mpirun --enable-recovery -n N` in one
# mode and checks what mpirun cannot: every rank that waited printed PASS, the
# whole job ended in bounded time, and no process of the job is left.
# Usage: mpi_fault.sh MPIEXEC PROGRAM MODE N
set -u
mpiexec=$1
prog=$2
mode=$3
n=$4
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s)
timeout 60 "$mpiexec" --enable-recovery --oversubscribe -n "$n" "$prog" "$mode" >"$out" 2>&1
status=$?
elapsed=$(( $(date +%s) - start ))
grep -v 'PMIX ERROR' "$out"
fail=0
if [ "$status" -eq 124 ]; then echo "FAIL: the job hung (killed after 60 s)"; fail=1; fi
# Waiting ranks: the survivors of a lost last rank, or rank 0 alone for recv.
case $mode in
    recv) want=1 ;;
    *) want=$((n - 1)) ;;
esac
passed=$(grep -c ': PASS' "$out")
if [ "$passed" -ne "$want" ]; then echo "FAIL: $passed of $want waiting ranks passed"; fail=1; fi
if grep -q ': FAIL' "$out"; then fail=1; fi
if [ "$elapsed" -gt 20 ]; then echo "FAIL: the job took $elapsed s"; fail=1; fi
# Nothing of the job may outlive mpirun.
sleep 0.5
if pgrep -f "^$prog $mode" >/dev/null; then
    echo "FAIL: processes left:"; pgrep -af "^$prog $mode"; fail=1
fi
if [ "$fail" -eq 0 ]; then echo "1 passed, 0 failed ($mode, $n ranks, ${elapsed} s)"; fi
exit "$fail"

#!/bin/sh
# Installs the library into a scratch prefix with `cmake --install`, then
# compiles and runs the README's example (examples/hello.c) against the
# installed headers through pkg-config, statically and shared.
set -eu
bin=$1
build=$(dirname "$bin")
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig:$tmp/prefix/lib/x86_64-linux-gnu/pkgconfig"
pkg-config --exists partita || { echo "FAIL: partita.pc not installed"; exit 1; }
# A sanitizer build's library needs the same runtime in the program.
san=$(sed -n 's/^PARTITA_SANITIZE:STRING=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
extra=""
[ -n "$san" ] && extra="-fsanitize=$san"
cc -std=c11 -Wall -Werror $extra -o "$tmp/hello" "$src/examples/hello.c" $(pkg-config --cflags --libs partita)
cc -std=c11 -Wall -Werror $extra -o "$tmp/hello_static" "$src/examples/hello.c" \
    $(pkg-config --cflags partita) "$(pkg-config --variable=libdir partita)/libpartita.a" \
    $(pkg-config --libs-only-l --static partita | sed 's/-lpartita//')
printf 'a,b\n1,x\n2,y\n' > "$tmp/t.csv"
libdir=$(pkg-config --variable=libdir partita)
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/hello" "$tmp/t.csv")
echo "$out" | grep -q "2 rows, 2 columns" || { echo "FAIL: shared example printed: $out"; exit 1; }
out=$("$tmp/hello_static" "$tmp/t.csv")
echo "$out" | grep -q "2 rows, 2 columns" || { echo "FAIL: static example printed: $out"; exit 1; }
echo "$out" | grep -q "x" || { echo "FAIL: rows not printed: $out"; exit 1; }
# The public symbols are exported and internals hidden.
nm -D --defined-only "$libdir/libpartita.so" | awk '{print $3}' > "$tmp/syms"
grep -qx pt_csv_read "$tmp/syms" || { echo "FAIL: pt_csv_read not exported"; exit 1; }
if grep -v '^pt_' "$tmp/syms" | grep -v '^_' | grep -q .; then
    echo "FAIL: non-pt_ symbols exported:"; grep -v '^pt_' "$tmp/syms" | head; exit 1
fi
if grep -q '^pt__' "$tmp/syms"; then
    echo "FAIL: internal pt__ symbols exported:"; grep '^pt__' "$tmp/syms" | head; exit 1
fi
echo "1 passed, 0 failed"

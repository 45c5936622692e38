#!/bin/sh
# cli_basic.sh - the partita command end to end: help texts, usage errors,
# and a gen -> head -> stats pipeline checked against values computed here
# with awk, independently of partita. $1 = path of the partita binary.
set -u
BIN=${1:?usage: cli_basic.sh PATH_TO_PARTITA}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/partita-cli.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# expect_exit CODE CMD... : runs CMD, stdout/stderr to $TMP/out, $TMP/err
expect_exit() {
    want=$1
    shift
    "$@" >"$TMP/out" 2>"$TMP/err"
    got=$?
    [ "$got" -eq "$want" ] || fail "'$*' exited $got, expected $want; stderr: $(cat "$TMP/err")"
}

contains() { # FILE TEXT
    grep -q -e "$2" "$1" || fail "$1 does not mention '$2': $(cat "$1")"
}

# --- help ------------------------------------------------------------------
expect_exit 0 "$BIN" --help
for c in info gen head stats demo; do contains "$TMP/out" "$c"; done
expect_exit 0 "$BIN" info --help
contains "$TMP/out" "--threads"
expect_exit 0 "$BIN" gen --help
for o in --rows --groups --nas --seed --output; do contains "$TMP/out" "$o"; done
expect_exit 0 "$BIN" head --help
for o in --rows --columns --delimiter --no-header; do contains "$TMP/out" "$o"; done
expect_exit 0 "$BIN" stats --help
for o in --columns --threads --memory-limit; do contains "$TMP/out" "$o"; done
expect_exit 0 "$BIN" demo --help
for o in --rows --dir; do contains "$TMP/out" "$o"; done

# --- usage errors ----------------------------------------------------------
expect_exit 2 "$BIN" frobnicate
contains "$TMP/err" "unknown command 'frobnicate'"
expect_exit 2 "$BIN" stats --bogus x.csv
contains "$TMP/err" "unknown option '--bogus'"
expect_exit 2 "$BIN" gen classic --rows lots -o "$TMP/x.csv"
contains "$TMP/err" "invalid number 'lots'"
expect_exit 2 "$BIN" gen classic
contains "$TMP/err" "missing -o FILE"
expect_exit 2 "$BIN" --memory-limit 12Q info
contains "$TMP/err" "12Q"

# --- info ------------------------------------------------------------------
expect_exit 0 "$BIN" info --threads 2 --memory-limit 64M
contains "$TMP/out" "threads *2"
contains "$TMP/out" "64"
contains "$TMP/out" "MPI"

# --- gen -> head -> stats --------------------------------------------------
CSV=$TMP/g1.csv
expect_exit 0 "$BIN" gen g1 --rows 2000 --groups 10 --nas 10 --seed 3 -o "$CSV"
contains "$TMP/err" "2000 rows"
[ "$(wc -l <"$CSV")" -eq 2001 ] || fail "g1.csv has $(wc -l <"$CSV") lines, expected 2001"
[ "$(head -n 1 "$CSV")" = "id1,id2,id3,id4,id5,id6,v1,v2,v3" ] || fail "header: $(head -n 1 "$CSV")"
# the same seed gives the same file with one thread; 1e3 rows in 1e3 notation
expect_exit 0 "$BIN" gen g1 --rows 2e3 --groups 10 --nas 10 --seed 3 --threads 1 -q -o "$TMP/g1b.csv"
cmp -s "$CSV" "$TMP/g1b.csv" || fail "gen is not deterministic across thread counts"
[ ! -s "$TMP/err" ] || fail "--quiet gen printed: $(cat "$TMP/err")"

expect_exit 0 "$BIN" head "$CSV" -n 3
first_id3=$(sed -n 2p "$CSV" | cut -d, -f3)
third_id3=$(sed -n 4p "$CSV" | cut -d, -f3)
fourth_id3=$(sed -n 5p "$CSV" | cut -d, -f3)
contains "$TMP/out" "id1"
contains "$TMP/out" "$first_id3"
contains "$TMP/out" "$third_id3"
if grep -q "$fourth_id3" "$TMP/out"; then fail "head -n 3 shows a 4th row"; fi
expect_exit 0 "$BIN" head "$CSV" -n 2 --columns v3,id1
contains "$TMP/out" "v3"
if grep -q "id3" "$TMP/out"; then fail "head --columns v3,id1 shows id3"; fi

expect_exit 0 "$BIN" stats "$CSV"
cp "$TMP/out" "$TMP/stats.txt"
contains "$TMP/stats.txt" "^2000 rows"

# reference values with awk: count (non-empty), mean, min, max of a column
ref() { # COLUMN_NUMBER
    awk -F, -v c="$1" 'NR > 1 && $c != "" {
        v = $c + 0; n++; s += v
        if (n == 1 || v < mn) mn = v
        if (n == 1 || v > mx) mx = v
    } END { printf "%d %.10g %.10g %.10g\n", n, s / n, mn, mx }' "$CSV"
}
# partita's line for a column: name type count nulls mean std min max
got() { # NAME
    awk -v name="$1" '$1 == name { print $3, $5, $7, $8 }' "$TMP/stats.txt"
}
for col in "v1 7" "v2 8" "v3 9" "id4 4"; do
    set -- $col
    r=$(ref "$2")
    g=$(got "$1")
    [ -n "$g" ] || fail "stats has no line for $1"
    echo "$r $g" | awk -v name="$1" '{
        # count exact; mean, min and max to the 6 digits partita prints
        if ($1 != $5) { print name ": count " $5 " vs " $1; exit 1 }
        for (i = 2; i <= 4; i++) {
            a = $i; b = $(i + 4); d = a - b; if (d < 0) d = -d
            m = a < 0 ? -a : a; if (m < 1) m = 1
            if (d > 1e-5 * m) { print name ": field " i ": " b " vs " a; exit 1 }
        }
    }' || fail "stats of $1 disagree with awk ($r vs $g)"
done
# text column: distinct count of id1 with K = 10
d=$(awk -F, 'NR > 1 { s[$1] = 1 } END { n = 0; for (k in s) n++; print n }' "$CSV")
awk -v d="$d" '$1 == "id1" { if ($5 != d) exit 1; found = 1 } END { exit !found }' "$TMP/stats.txt" ||
    fail "id1 distinct is not $d: $(grep '^id1' "$TMP/stats.txt")"

# --- errors and memory limit -----------------------------------------------
expect_exit 1 "$BIN" stats "$TMP/nope.csv"
contains "$TMP/err" "^partita: "
contains "$TMP/err" "nope.csv"

BIG=$TMP/big.csv
expect_exit 0 "$BIN" gen classic --rows 60000 -q -o "$BIG"
size=$(wc -c <"$BIG")
limit=$((size / 3))
expect_exit 0 "$BIN" stats "$BIG" --memory-limit "$limit"
contains "$TMP/out" "^60000 rows"
contains "$TMP/out" "peak budget memory"

echo "cli_basic: ok"

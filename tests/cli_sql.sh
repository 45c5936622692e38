#!/bin/sh
# Tests of `partita sql`: results checked against awk computations on the
# same file, output formats, EXPLAIN, error messages with a caret, and a
# group-by and a sort over a file three times larger than --memory-limit.
set -eu
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail() { echo "FAIL: $*"; echo "$pass passed, 1 failed"; exit 1; }
ok() { pass=$((pass + 1)); }

"$bin" gen classic --rows 60000 --seed 5 -o "$tmp/c.csv" --quiet

# Group-by against awk: count and sum of score per category (score > 50).
"$bin" sql "SELECT category, count(*) AS n, sum(score) AS s FROM '$tmp/c.csv' WHERE score > 50 GROUP BY category ORDER BY category" \
    --format csv --quiet > "$tmp/got.csv"
awk -F, 'NR > 1 && $5 > 50 { n[$4]++; s[$4] += $5 } END { print "category,n,s"; for (k in n) print k "," n[k] "," s[k] }' "$tmp/c.csv" |
    (read -r h; echo "$h"; sort) > "$tmp/want.csv"
cmp -s "$tmp/got.csv" "$tmp/want.csv" || { diff "$tmp/got.csv" "$tmp/want.csv"; fail "group-by differs from awk"; }
ok

# ORDER BY ... LIMIT against sort(1).
"$bin" sql "SELECT id, score FROM '$tmp/c.csv' ORDER BY score DESC, id LIMIT 7" --format csv --quiet > "$tmp/got.csv"
(echo "id,score"; awk -F, 'NR > 1 { print $1 "," $5 }' "$tmp/c.csv" | sort -t, -k2,2nr -k1,1n | head -7) > "$tmp/want.csv"
cmp -s "$tmp/got.csv" "$tmp/want.csv" || { diff "$tmp/got.csv" "$tmp/want.csv"; fail "top-n differs from sort"; }
ok

# Aligned table output and --output streaming.
"$bin" sql "SELECT category, count(*) AS n FROM '$tmp/c.csv' GROUP BY category ORDER BY category" --quiet > "$tmp/table.txt"
grep -q "\[4 rows x 2 columns\]" "$tmp/table.txt" || fail "table output: $(cat "$tmp/table.txt")"
"$bin" sql "SELECT * FROM '$tmp/c.csv' WHERE category = 'B'" -o "$tmp/b.csv" --quiet
[ "$(tail -n +2 "$tmp/b.csv" | wc -l)" -eq "$(awk -F, '$4 == "B"' "$tmp/c.csv" | wc -l)" ] || fail "--output row count"
ok

# EXPLAIN shows the optimised plan with push-downs.
"$bin" sql "EXPLAIN SELECT category, avg(score) FROM '$tmp/c.csv' WHERE value2 > 0 GROUP BY category" > "$tmp/plan.txt"
grep -q "== optimised plan ==" "$tmp/plan.txt" || fail "explain: $(cat "$tmp/plan.txt")"
grep -q "columns=\[value2, category, score\] filter=value2 > 0" "$tmp/plan.txt" || fail "explain push-down: $(cat "$tmp/plan.txt")"
ok

# Errors: position with a caret, unknown column lists the available ones.
if "$bin" sql "SELECT a FORM t" 2> "$tmp/err.txt"; then fail "bad query succeeded"; fi
grep -q "expected FROM, found 'FORM'" "$tmp/err.txt" || fail "syntax error message: $(cat "$tmp/err.txt")"
grep -q "^         ^" "$tmp/err.txt" || fail "caret: $(cat "$tmp/err.txt")"
if "$bin" sql "SELECT scor FROM '$tmp/c.csv'" 2> "$tmp/err.txt"; then fail "unknown column succeeded"; fi
grep -q "unknown column 'scor'; available columns: id, value1, value2, category, score" "$tmp/err.txt" ||
    fail "unknown column message: $(cat "$tmp/err.txt")"
if "$bin" sql "SELECT * FROM '$tmp/missing.csv'" 2> "$tmp/err.txt"; then fail "missing file succeeded"; fi
grep -q "missing.csv" "$tmp/err.txt" || fail "missing file message: $(cat "$tmp/err.txt")"
if "$bin" sql --format xml "SELECT 1" 2> /dev/null; then fail "bad --format accepted"; fi
ok

# Out of core: a file 3x the memory limit; results equal to the unlimited run.
size=$(stat -c %s "$tmp/c.csv")
limit=$((size / 3))
"$bin" sql "SELECT score % 50 AS g, count(*) AS n, sum(value1) AS s FROM '$tmp/c.csv' GROUP BY g ORDER BY g" --format csv --quiet > "$tmp/a.csv"
"$bin" sql "SELECT score % 50 AS g, count(*) AS n, sum(value1) AS s FROM '$tmp/c.csv' GROUP BY g ORDER BY g" --format csv --quiet \
    --memory-limit "$limit" > "$tmp/b.csv"
# Counts exact; sums within rounding of summation order (compare to 6 digits).
awk -F, 'NR == FNR { a[FNR] = $0; next } { split(a[FNR], x, ","); if (x[1] != $1 || x[2] != $2 || (x[3] - $3) > 1e-6 * (x[3] < 0 ? -x[3] : x[3]) + 1e-9 || ($3 - x[3]) > 1e-6 * (x[3] < 0 ? -x[3] : x[3]) + 1e-9) bad = 1 } END { exit bad }' \
    "$tmp/a.csv" "$tmp/b.csv" || fail "group-by under --memory-limit differs"
"$bin" sql "SELECT id, value2 FROM '$tmp/c.csv' ORDER BY value2, id" -o "$tmp/s1.csv" --quiet
"$bin" sql "SELECT id, value2 FROM '$tmp/c.csv' ORDER BY value2, id" -o "$tmp/s2.csv" --memory-limit "$limit" 2> "$tmp/st.txt"
grep -q "spilled 0 B" "$tmp/st.txt" && fail "the sort under --memory-limit did not spill: $(cat "$tmp/st.txt")"
cmp -s "$tmp/s1.csv" "$tmp/s2.csv" || fail "sort under --memory-limit differs"
ok

echo "$pass passed, 0 failed"

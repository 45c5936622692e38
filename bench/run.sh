#!/bin/sh
# Runs partita's benchmarks and the peers that are installed, on the same
# data and core count, in the same run, and prints ratios.
#   sh bench/run.sh [BUILD_DIR]
# Environment: PARTITA_BENCH_ROWS (default 1e7), PARTITA_BENCH_THREADS
# (default: all cores), PARTITA_BENCH_REPEAT (default 2; pandas runs once).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$here/../$build" ;; esac
bin="$build/partita"
rows=${PARTITA_BENCH_ROWS:-1e7}
threads=${PARTITA_BENCH_THREADS:-$(nproc)}
repeat=${PARTITA_BENCH_REPEAT:-2}
data="$here/data"
results="$here/results"
mkdir -p "$data" "$results"
out="$results/latest.txt"
: > "$out"
say() { echo "$@" | tee -a "$out"; }
sysfield() { sed -n "s/.*$2=\([^ ]*\).*/\1/p" "$1"; }

say "# partita benchmarks ($(date -u +%Y-%m-%d), $(nproc) cores, threads=$threads)"

say ""
say "## task runtime (no-op tasks through the pool)"
PARTITA_THREADS=$threads "$build/bench/bench_tasks" | tee -a "$out"

g1="$data/G1_${rows}_1e2.csv"
if [ ! -s "$g1" ]; then
    "$bin" gen g1 --rows "$rows" --groups 100 --seed 1 -o "$g1" --quiet
fi
size=$(stat -c %s "$g1")
say ""
say "## CSV load into memory: G1 $rows rows, $(echo "$size" | awk '{printf "%.0f MB", $1/1e6}'), $threads threads, best of $repeat"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/bench/bench_csv" "$g1" "$threads" "$repeat" | tee "$tmp/partita" | tee -a "$out"
pt=$(sysfield "$tmp/partita" seconds)

if [ -d "$here/node_modules/@duckdb/node-api" ] && command -v node >/dev/null; then
    node "$here/peers/csv_duckdb.mjs" "$g1" "$threads" "$repeat" | tee "$tmp/duckdb" | tee -a "$out"
else
    say "peer=duckdb skipped (npm package @duckdb/node-api not installed: PARTITA_BENCH_DEPS=1 sh scripts/install-deps.sh)"
fi
if command -v Rscript >/dev/null && Rscript -e 'library(data.table)' >/dev/null 2>&1; then
    Rscript "$here/peers/csv_datatable.R" "$g1" "$threads" "$repeat" | tee "$tmp/datatable" | tee -a "$out"
else
    say "peer=data.table skipped (r-cran-data.table not installed)"
fi
if /usr/bin/python3 -c 'import pandas' >/dev/null 2>&1; then
    /usr/bin/python3 "$here/peers/csv_pandas.py" "$g1" 1 | tee "$tmp/pandas" | tee -a "$out"
else
    say "peer=pandas skipped (python3-pandas not installed)"
fi
say ""
for p in duckdb datatable pandas; do
    if [ -s "$tmp/$p" ]; then
        s=$(sysfield "$tmp/$p" seconds)
        say "$(awk -v a="$s" -v b="$pt" -v n="$p" 'BEGIN{printf "ratio %s/partita = %.2f (partita %.3f s, %s %.3f s)", n, a/b, b, n, a}')"
    fi
done

say ""
say "## db-benchmark group-by q1-q10 + full sort by v3: G1 $rows rows, data loaded once, $threads threads, best of $repeat"
q="$here/../tests/data/dbbench/groupby.sql"
"$build/bench/bench_dbgroupby" "$g1" "$q" "$threads" "$repeat" > "$tmp/gb_partita" 2> "$tmp/gb_partita.err" || { cat "$tmp/gb_partita.err"; exit 1; }
cat "$tmp/gb_partita" "$tmp/gb_partita.err" | tee -a "$out"
if [ -d "$here/node_modules/@duckdb/node-api" ] && command -v node >/dev/null; then
    node "$here/peers/groupby_duckdb.mjs" "$g1" "$threads" "$repeat" "$q" | tee "$tmp/gb_duckdb" | tee -a "$out"
else
    say "peer=duckdb skipped (not installed)"
fi
if /usr/bin/python3 -c 'import pandas' >/dev/null 2>&1; then
    /usr/bin/python3 "$here/peers/groupby_pandas.py" "$g1" 1 | tee "$tmp/gb_pandas" | tee -a "$out"
else
    say "peer=pandas skipped (python3-pandas not installed)"
fi
if /usr/bin/python3 -c 'import dask.dataframe' >/dev/null 2>&1; then
    /usr/bin/python3 "$here/peers/groupby_dask.py" "$g1" "$threads" 1 2>/dev/null | tee "$tmp/gb_dask" | tee -a "$out"
else
    say "peer=dask skipped (python3-dask not installed)"
fi
# Table: one row per question, seconds per engine and ratios to partita.
say ""
awk '
  { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    t[f["question"], f["peer"]] = f["seconds"]; q[f["question"]] = 1; p[f["peer"]] = 1 }
  END {
    n = split("q1 q2 q3 q4 q5 q6 q7 q8 q9 q10 sort", order, " ")
    printf "%-6s %10s %10s %10s %10s %12s %12s %12s\n", "query", "partita", "duckdb", "pandas", "dask", "duckdb/pt", "pandas/pt", "dask/pt"
    for (k = 1; k <= n; k++) {
      qq = order[k]; pt = t[qq, "partita"]
      printf "%-6s %10s %10s %10s %10s", qq, pt, t[qq, "duckdb"], t[qq, "pandas"], t[qq, "dask"]
      split("duckdb pandas dask", peers, " ")
      for (j = 1; j <= 3; j++) { v = t[qq, peers[j]]; if (v != "" && pt > 0) printf " %12.2f", v / pt; else printf " %12s", "-" }
      printf "\n"
      if (qq != "sort") for (j = 1; j <= 3; j++) if (t[qq, peers[j]] != "") tot[peers[j]] += t[qq, peers[j]]
      if (qq != "sort") tot["partita"] += pt
    }
    printf "%-6s %10.4f %10s %10s %10s", "total", tot["partita"], tot["duckdb"], tot["pandas"], tot["dask"]
    for (j = 1; j <= 3; j++) { v = tot[peers[j]]; if (v != "") printf " %12.2f", v / tot["partita"]; else printf " %12s", "-" }
    printf "\n"
  }' "$tmp"/gb_* 2>/dev/null | grep -v "^$" | tee -a "$out"

say ""
limit=$((size / 3))
say "## streaming statistics with --memory-limit $limit bytes (file / 3)"
/usr/bin/time -v "$bin" stats "$g1" --memory-limit "$limit" --threads "$threads" --quiet \
    > "$tmp/stats.out" 2> "$tmp/stats.err" || { cat "$tmp/stats.err"; exit 1; }
tail -8 "$tmp/stats.out" | tee -a "$out"
rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tmp/stats.err")
say "peak RSS (time -v): $((rss / 1024)) MiB; memory limit: $((limit / 1048576)) MiB"
say ""
say "results written to $out"

#!/bin/sh
# Installs the Debian 12 packages Partita needs to build and test.
# Uses sudo only when not root; installs only what is missing.
# PARTITA_BENCH_DEPS=1 also installs the benchmark peers (pandas, Dask,
# scikit-learn, liblinear, data.table, Fashion-MNIST, DuckDB via npm).
set -eu

PKGS="build-essential cmake pkg-config libopenmpi-dev openmpi-bin libopenblas-dev libzstd-dev zstd"
BENCH_PKGS="python3-pandas python3-dask python3-sklearn liblinear-tools r-cran-data.table dataset-fashion-mnist"

if [ "${PARTITA_BENCH_DEPS:-0}" = "1" ]; then
    PKGS="$PKGS $BENCH_PKGS"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done

install_duckdb() {
    # DuckDB is a benchmark peer only; it comes from the npm registry.
    [ "${PARTITA_BENCH_DEPS:-0}" = "1" ] || return 0
    here=$(cd "$(dirname "$0")/.." && pwd)
    if [ -d "$here/bench/node_modules/@duckdb/node-api" ]; then return 0; fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "install-deps: npm not found, DuckDB benchmarks will be skipped"
        return 0
    fi
    (cd "$here/bench" && npm install --no-audit --no-fund --silent @duckdb/node-api) ||
        echo "install-deps: npm install @duckdb/node-api failed, DuckDB benchmarks will be skipped"
}

if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    install_duckdb
    exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo"
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
install_duckdb

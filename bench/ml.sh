#!/bin/sh
# Training benchmarks: partita (1, 2 and 4 ranks) against liblinear and
# scikit-learn on the same files, in the same run, printing one table per
# problem with end-to-end time (read the training file + train), training
# time alone, test accuracy and log-loss, and ratios to the peers.
#   sh bench/ml.sh [BUILD_DIR]        (a Release build; default build)
# Environment:
#   PARTITA_ML_THREADS  threads of one process (default: all cores); with
#                       N ranks each gets max(1, THREADS / N)
#   PARTITA_ML_RANKS    rank counts for partita (default "1 2 4")
#   PARTITA_ML_ROWS     rows of the synthetic set (default 1e6; 70% train)
#   PARTITA_ML_ONLY     space-separated subset of: tops synthetic fmnist10
#                       mlp kmeans (default: all)
#   PARTITA_ML_MLP_EPOCHS  MLP epochs for both tools (default 10)
# Data go to bench/data/ml/ (made when missing): Fashion-MNIST from the
# Debian package dataset-fashion-mnist (bench/ml/fmnist_to_libsvm.py) and
# `partita gen classify`. The logistic problems are set up to be the same
# optimisation problem for every tool: liblinear -s 0 -c 1 minimises
# 0.5|w|^2 + C sum(log-loss) with no intercept; scikit-learn
# LogisticRegression(C=1, fit_intercept=False) too; partita gets
# regParam = 1 / (C n), standardization and intercept off.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$here/../$build" ;; esac
bin="$build/partita"
[ -x "$bin" ] || { echo "bench/ml.sh: no partita binary at $bin" >&2; exit 1; }
threads=${PARTITA_ML_THREADS:-$(nproc)}
ranks=${PARTITA_ML_RANKS:-1 2 4}
rows=${PARTITA_ML_ROWS:-1e6}
only=${PARTITA_ML_ONLY:-tops synthetic fmnist10 mlp kmeans}
epochs=${PARTITA_ML_MLP_EPOCHS:-10}
data="$here/data/ml"
results="$here/results"
mkdir -p "$data" "$results"
out="$results/ml_latest.txt"
: >"$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say() { echo "$@" | tee -a "$out"; }
want() { case " $only " in *" $1 "*) return 0 ;; esac; return 1; }
py=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

have_sklearn=0
$py -c 'import sklearn' >/dev/null 2>&1 && have_sklearn=1
have_liblinear=0
command -v liblinear-train >/dev/null 2>&1 && command -v liblinear-predict >/dev/null 2>&1 &&
    have_liblinear=1
have_mpi=0
command -v mpirun >/dev/null 2>&1 && "$bin" info 2>/dev/null | grep -q "MPI available *yes" &&
    have_mpi=1

say "# partita training benchmarks ($(date -u +%Y-%m-%d), $(nproc) cores, $threads threads per process)"
[ $have_liblinear = 1 ] || say "peer=liblinear skipped (liblinear-tools not installed)"
[ $have_sklearn = 1 ] || say "peer=sklearn skipped (python3-sklearn not installed)"
[ $have_mpi = 1 ] || say "partita multi-rank runs skipped (no mpirun, or partita built without MPI)"

# partita_runs TAG ARGS... : partita train at every rank count; result lines
# go to $tmp/TAG with tool=partita.
partita_runs() {
    tag=$1
    shift
    for n in $ranks; do
        if [ "$n" = 1 ]; then
            "$bin" train "$@" --threads "$threads" -q >"$tmp/run" 2>"$tmp/err" ||
                { cat "$tmp/err" >&2; exit 1; }
        elif [ $have_mpi = 1 ]; then
            t=$((threads / n))
            [ $t -ge 1 ] || t=1
            mpirun --oversubscribe -n "$n" "$bin" train "$@" --threads "$t" -q \
                >"$tmp/run" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
        else
            continue
        fi
        line=$(grep '^result' "$tmp/run")
        echo "tool=partita $line" >>"$tmp/$tag"
        say "partita ranks=$n: $line"
    done
}

# table TAG : one row per run, ratios against the best peer figures
table() {
    awk '
    { delete f; for (i = 1; i <= NF; i++) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
      n++; tool[n] = f["tool"] f["peer"]; rk[n] = f["ranks"] == "" ? "-" : f["ranks"]
      tot[n] = f["total_s"]; tr[n] = f["train_s"]; acc[n] = f["accuracy"]; ll[n] = f["logloss"]; cost[n] = f["cost"]
      if (tool[n] == "liblinear") lib = f["total_s"]
      if (tool[n] == "sklearn") { skt = f["train_s"]; sktot = f["total_s"] } }
    END {
      printf "%-10s %5s %10s %10s %9s %9s %13s %12s %12s\n", "tool", "ranks", "end2end_s", "train_s", "accuracy", "logloss", "cost", "liblinear/pt", "sklearn/pt"
      for (i = 1; i <= n; i++) {
        r1 = "-"; r2 = "-"
        if (tool[i] == "partita" && lib != "" && tot[i] > 0) r1 = sprintf("%.2f", lib / tot[i])
        if (tool[i] == "partita" && skt != "" && tr[i] > 0) r2 = sprintf("%.2f", skt / tr[i])
        printf "%-10s %5s %10s %10s %9s %9s %13s %12s %12s\n", tool[i], rk[i], tot[i], tr[i] == "" ? "-" : tr[i], acc[i] == "" ? "-" : acc[i], ll[i] == "" ? "-" : ll[i], cost[i] == "" ? "-" : cost[i], r1, r2
      }
      print "(end2end = read the training file + train; train_s = training alone; liblinear/pt = liblinear end2end / partita end2end; sklearn/pt = sklearn train_s / partita train_s)"
    }' "$tmp/$1" | tee -a "$out"
}

fmnist_ready() {
    [ -s "$data/tops_train.svm" ] && [ -s "$data/fmnist10_train.svm" ] && return 0
    if [ -s /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] &&
        $py -c 'import numpy' >/dev/null 2>&1; then
        $py "$here/ml/fmnist_to_libsvm.py" "$data" >&2
        return 0
    fi
    say "Fashion-MNIST skipped (Debian package dataset-fashion-mnist or python3-numpy missing)"
    return 1
}

# logreg_bench TAG TRAIN TEST NTRAIN [partita options...]
logreg_bench() {
    tag=$1 train=$2 test=$3 ntrain=$4
    shift 4
    reg=$(awk -v n="$ntrain" 'BEGIN { printf "%.17g", 1 / n }')
    say "partita: train logreg --reg $reg (1/(C n), C = 1) --no-intercept --no-standardize $*"
    partita_runs "$tag" logreg --data "$train" --test "$test" --reg "$reg" --no-intercept \
        --no-standardize "$@"
    if [ $have_liblinear = 1 ]; then
        $py "$here/peers/ml_liblinear.py" "$train" "$test" --C 1 | tee -a "$tmp/$tag" | tee -a "$out"
    fi
    if [ $have_sklearn = 1 ]; then
        OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
            $py "$here/peers/ml_sklearn.py" logreg "$train" "$test" --C 1 | tee -a "$tmp/$tag" | tee -a "$out"
    fi
    say ""
    table "$tag"
}

if want tops && fmnist_ready; then
    say ""
    say "## binary logistic regression, Fashion-MNIST tops (T-shirt, pullover, coat, shirt) vs rest: 49,000 train / 21,000 test rows, 784 features in [0, 1]"
    logreg_bench tops "$data/tops_train.svm" "$data/tops_test.svm" 49000
fi

if want synthetic; then
    syn="$data/classify_${rows}x100.svm"
    if [ ! -s "$syn.train" ]; then
        "$bin" gen classify --rows "$rows" --features 100 --seed 42 -o "$syn" -q
        n=$(wc -l <"$syn")
        ntr=$((n * 7 / 10))
        head -n "$ntr" "$syn" >"$syn.train"
        tail -n +$((ntr + 1)) "$syn" >"$syn.test"
        rm -f "$syn"
    fi
    ntr=$(wc -l <"$syn.train")
    say ""
    say "## binary logistic regression, synthetic dense: partita gen classify --rows $rows --features 100 --seed 42 (Bayes accuracy 0.836); first $ntr rows train, the rest test"
    logreg_bench synthetic "$syn.train" "$syn.test" "$ntr" --dense
fi

if want fmnist10 && fmnist_ready; then
    say ""
    say "## multinomial logistic regression, Fashion-MNIST 10 classes: 60,000 train / 10,000 test (C = 1 as above)"
    reg=$(awk 'BEGIN { printf "%.17g", 1 / 60000 }')
    partita_runs fmnist10 logreg --data "$data/fmnist10_train.svm" --test "$data/fmnist10_test.svm" \
        --reg "$reg" --no-intercept --no-standardize --family multinomial
    if [ $have_sklearn = 1 ]; then
        OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
            $py "$here/peers/ml_sklearn.py" logreg "$data/fmnist10_train.svm" \
            "$data/fmnist10_test.svm" --C 1 | tee -a "$tmp/fmnist10" | tee -a "$out"
    fi
    say ""
    table fmnist10
fi

if want mlp && fmnist_ready; then
    say ""
    say "## MLP 784-100-10 (ReLU, softmax, Adam lr 0.001, batch 256, $epochs epochs), Fashion-MNIST 60,000 / 10,000"
    partita_runs mlp mlp --data "$data/fmnist10_train.svm" --test "$data/fmnist10_test.svm" \
        --hidden 100 --max-iter "$epochs" --solver adam --lr 0.001 --batch-size 256 --seed 42
    if [ $have_sklearn = 1 ]; then
        OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
            $py "$here/peers/ml_sklearn.py" mlp "$data/fmnist10_train.svm" \
            "$data/fmnist10_test.svm" --hidden 100 --max-iter "$epochs" --batch-size 256 \
            --lr 0.001 --seed 42 | tee -a "$tmp/mlp" | tee -a "$out"
    fi
    say ""
    table mlp
fi

if want kmeans && fmnist_ready; then
    say ""
    say "## k-means, k = 10, k-means++ then 20 Lloyd iterations at most, Fashion-MNIST 60,000 x 784 (cost = WSSSE on the training rows)"
    partita_runs kmeans kmeans --data "$data/fmnist10_train.svm" --k 10 --init kmeans++ \
        --max-iter 20 --tol 1e-4 --seed 42
    if [ $have_sklearn = 1 ]; then
        OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
            $py "$here/peers/ml_sklearn.py" kmeans "$data/fmnist10_train.svm" --k 10 \
            --max-iter 20 --seed 42 | tee -a "$tmp/kmeans" | tee -a "$out"
    fi
    say ""
    table kmeans
fi
say ""
say "results written to $out"

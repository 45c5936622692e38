#!/bin/sh
# cli_train.sh - partita gen (training sets), train, predict and eval end to
# end: metrics checked against awk computations over the prediction files
# and against what the generator's model implies (Bayes accuracy 0.836 of
# `gen classify`, noise of `gen regress`, spread of `gen blobs`), a saved and
# reloaded model predicting exactly what the trained one did, malformed
# libsvm reported with file:line:column, and, when mpirun is there, the
# same model from 2 ranks as from 1 process. $1 = path of the partita binary.
set -u
BIN=${1:?usage: cli_train.sh PATH_TO_PARTITA}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/partita-train.XXXXXX") || exit 1
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

# field KEY: value of KEY=... on the result line of $TMP/out
field() { sed -n "s/^result .*[ ]$1=\([^ ]*\).*/\1/p" "$TMP/out"; }

# between X LO HI: LO <= X <= HI
between() {
    awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x != "" && x + 0 >= lo && x + 0 <= hi) }' ||
        fail "$4: $1 not in [$2, $3]"
}

# --- help and usage --------------------------------------------------------
expect_exit 0 "$BIN" --help
for c in train predict eval; do contains "$TMP/out" "$c"; done
expect_exit 0 "$BIN" train --help
for o in --data --test --split --seed --max-iter --reg --elastic-net --tol --no-intercept \
    --no-standardize --solver --hidden --k --init --save --checkpoint-dir --checkpoint-every \
    --resume; do contains "$TMP/out" "$o"; done
expect_exit 0 "$BIN" predict --help
for o in --model --data --output; do contains "$TMP/out" "$o"; done
expect_exit 0 "$BIN" eval --help
contains "$TMP/out" "--model"
expect_exit 0 "$BIN" gen classify --help
for o in --rows --features --classes --format --output; do contains "$TMP/out" "$o"; done
expect_exit 2 "$BIN" train logreg
contains "$TMP/err" "missing --data FILE"
expect_exit 2 "$BIN" train forest --data x.svm
contains "$TMP/err" "unknown model 'forest'"
expect_exit 2 "$BIN" train logreg --data x.svm --split 1.5
contains "$TMP/err" "--split: 1.5"
expect_exit 2 "$BIN" predict --model m --data x.svm
contains "$TMP/err" "missing --output"

# --- malformed libsvm: file:line:column ------------------------------------
printf '1 1:0.5 2:1\n-1 1:0.25\n1 2:abc\n' >"$TMP/bad.svm"
expect_exit 1 "$BIN" train logreg --data "$TMP/bad.svm"
contains "$TMP/err" "bad.svm:3:5"
contains "$TMP/err" "abc"
printf '1 1:0.5 2:1\n-1 3:0.25 2:1\n' >"$TMP/bad2.svm"
expect_exit 1 "$BIN" train logreg --data "$TMP/bad2.svm"
contains "$TMP/err" "bad2.svm:2:"
expect_exit 1 "$BIN" train logreg --data "$TMP/missing.svm"
contains "$TMP/err" "missing.svm"

# --- logistic regression: split, metrics, save, reload ---------------------
expect_exit 0 "$BIN" gen classify --rows 6000 --features 10 --seed 7 -o "$TMP/c.svm" -q
expect_exit 0 "$BIN" gen classify --rows 2000 --features 10 --seed 7 -o "$TMP/c.svm.tmp" -q
# the first 2000 rows of a seed are the same whatever --rows
head -n 2000 "$TMP/c.svm" | cmp -s - "$TMP/c.svm.tmp" || fail "gen rows depend on --rows"
# train on rows 1-4000, test on 4001-6000
head -n 4000 "$TMP/c.svm" >"$TMP/train.svm"
tail -n 2000 "$TMP/c.svm" >"$TMP/test.svm"
expect_exit 0 "$BIN" train logreg --data "$TMP/train.svm" --test "$TMP/test.svm" \
    --save "$TMP/m.bin" --output "$TMP/p_train.csv"
contains "$TMP/out" "iter *1 *loss"
contains "$TMP/out" "accuracy"
contains "$TMP/out" "confusion matrix"
contains "$TMP/out" "read .* s, train .* s"
acc=$(field accuracy)
ll=$(field logloss)
# The true model's accuracy is 0.836 (Bayes); 2000 test rows give a
# standard error near 0.008, and a fitted model is a little below the truth.
between "$acc" 0.79 0.87 "logreg test accuracy"
# Reloaded model: the same predictions, bit for bit.
expect_exit 0 "$BIN" predict --model "$TMP/m.bin" --data "$TMP/test.svm" -o "$TMP/p.csv"
cmp -s "$TMP/p.csv" "$TMP/p_train.csv" || fail "reloaded model predicts differently"
head -n 1 "$TMP/p.csv" | grep -q '^prediction,probability$' || fail "predict header: $(head -n 1 "$TMP/p.csv")"
[ "$(wc -l <"$TMP/p.csv")" -eq 2001 ] || fail "predict wrote $(wc -l <"$TMP/p.csv") lines"
# Accuracy and log-loss recomputed with awk from the labels and probabilities.
tail -n +2 "$TMP/p.csv" | tr ',' ' ' >"$TMP/p.body"
awk 'NR == FNR { y[FNR] = ($1 > 0) ? 1 : 0; next }
     { n++; if ($1 == y[FNR]) ok++;
       p = (y[FNR] == 1) ? $2 : 1 - $2; if (p < 1e-15) p = 1e-15; ll -= log(p);
       if (($2 > 0.5) != ($1 == 1)) bad++ }
     END { printf "%.6f %.6f %d\n", ok / n, ll / n, bad }' "$TMP/test.svm" "$TMP/p.body" >"$TMP/ref"
read ref_acc ref_ll bad <"$TMP/ref"
[ "$bad" -eq 0 ] || fail "$bad predictions disagree with their probability and threshold 0.5"
[ "$ref_acc" = "$acc" ] || fail "accuracy $acc, awk over the predictions: $ref_acc"
awk -v a="$ll" -v b="$ref_ll" 'BEGIN { d = a - b; exit !(d < 2e-6 && d > -2e-6) }' ||
    fail "log-loss $ll, awk over the predictions: $ref_ll"
expect_exit 0 "$BIN" eval --model "$TMP/m.bin" --data "$TMP/test.svm"
[ "$(field accuracy)" = "$acc" ] || fail "eval accuracy $(field accuracy), train said $acc"
contains "$TMP/out" "AUC-ROC"

# --split: the two parts add up to the file, same result for the same seed
expect_exit 0 "$BIN" train logreg --data "$TMP/c.svm" --split 0.7 --seed 3 -q
rows=$(field rows)
between "$rows" 3950 4450 "training rows of a 0.7 split of 6000"
first=$(grep '^result' "$TMP/out")
expect_exit 0 "$BIN" train logreg --data "$TMP/c.svm" --split 0.7 --seed 3 -q --threads 1
[ "$(grep '^result' "$TMP/out" | sed 's/threads=[0-9]*//; s/[a-z_]*_s=[0-9.]*//g')" = \
  "$(echo "$first" | sed 's/threads=[0-9]*//; s/[a-z_]*_s=[0-9.]*//g')" ] ||
    fail "split + train differ between 1 thread and the default"

# CSV input with named features
# an option value that names a training set does not pick the generator
expect_exit 0 "$BIN" gen g1 --rows 10 -o "$TMP/blobs" -q
head -n 1 "$TMP/blobs" | grep -q '^id1,' || fail "gen g1 -o blobs wrote: $(head -n 1 "$TMP/blobs")"
expect_exit 0 "$BIN" gen classify --rows 1500 --features 4 --format csv -o "$TMP/c.csv" -q
head -n 1 "$TMP/c.csv" | grep -q '^label,x1,x2,x3,x4$' || fail "csv header"
expect_exit 0 "$BIN" train logreg --data "$TMP/c.csv" --label label --features x1,x2,x3,x4 -q
[ "$(field features)" -eq 4 ] || fail "csv features $(field features)"
between "$(field accuracy)" 0.78 0.88 "logreg accuracy on CSV (training rows)"
# a CSV test file whose text column has other categories would put its
# one-hot columns under the wrong features: refused, naming the column
printf 'label,c,x\n1,red,1.0\n0,blue,2.0\n1,red,0.5\n0,blue,2.5\n' >"$TMP/tr.csv"
printf 'label,c,x\n1,red,1.0\n0,yellow,2.0\n' >"$TMP/te.csv"
expect_exit 1 "$BIN" train logreg --data "$TMP/tr.csv" --test "$TMP/te.csv" -q
contains "$TMP/err" "te.csv: feature 1 is 'c=red' where the training data has 'c=blue'"
expect_exit 0 "$BIN" train logreg --data "$TMP/tr.csv" --test "$TMP/tr.csv" -q

# --- linear regression: RMSE near the noise -------------------------------
expect_exit 0 "$BIN" gen regress --rows 3000 --features 6 --noise 0.1 -o "$TMP/r.svm" -q
expect_exit 0 "$BIN" train linreg --data "$TMP/r.svm" --split 0.7 -q
contains "$TMP/out" "RMSE"
between "$(field rmse)" 0.09 0.11 "linreg RMSE (noise sd 0.1)"
between "$(field r2)" 0.99 1 "linreg R2"

# --- k-means: the cost of well-separated blobs is n * d * sd^2 -------------
expect_exit 0 "$BIN" gen blobs --rows 3000 --features 5 --classes 4 --noise 1 -o "$TMP/b.svm" -q
expect_exit 0 "$BIN" train kmeans --data "$TMP/b.svm" --k 4 --init kmeans++ --max-iter 30 \
    --save "$TMP/k.bin" -q
contains "$TMP/out" "WSSSE"
cost=$(field cost)
between "$cost" 13500 16500 "k-means WSSSE (expected about 3000 * 5 * 1)"
expect_exit 0 "$BIN" predict --model "$TMP/k.bin" --data "$TMP/b.svm" -o "$TMP/kp.csv" -q
# every cluster is used and each true blob maps to one cluster
tail -n +2 "$TMP/kp.csv" | cut -d, -f1 >"$TMP/kc"
cut -d ' ' -f1 "$TMP/b.svm" | paste -d ' ' - "$TMP/kc" | sort -u >"$TMP/pairs"
[ "$(wc -l <"$TMP/pairs")" -eq 4 ] || fail "blobs split across clusters: $(cat "$TMP/pairs")"

# --- MLP: a small network on the logistic data ------------------------------
expect_exit 0 "$BIN" train mlp --data "$TMP/train.svm" --test "$TMP/test.svm" --hidden 16 \
    --max-iter 50 --save "$TMP/mlp.bin" --output "$TMP/mp_train.csv" -q
between "$(field accuracy)" 0.77 0.87 "mlp test accuracy (Bayes 0.836)"
expect_exit 0 "$BIN" predict --model "$TMP/mlp.bin" --data "$TMP/test.svm" -o "$TMP/mp.csv" -q
cmp -s "$TMP/mp.csv" "$TMP/mp_train.csv" || fail "reloaded MLP predicts differently"

# --- 2 ranks give the model of 1 process ------------------------------------
if command -v mpirun >/dev/null 2>&1 && "$BIN" info 2>/dev/null | grep -q "MPI available *yes"; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    # Open MPI does not free its own allocations at exit.
    ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0
    export ASAN_OPTIONS
    expect_exit 0 mpirun --oversubscribe -n 2 "$BIN" train logreg --data "$TMP/train.svm" \
        --test "$TMP/test.svm" --threads 1 --save "$TMP/m2.bin" --output "$TMP/p2_train.csv" -q
    contains "$TMP/out" "ranks=2"
    [ "$(grep -c '^result' "$TMP/out")" -eq 1 ] || fail "more than one rank printed"
    [ "$(field rows)" -eq 4000 ] || fail "2 ranks trained on $(field rows) rows"
    expect_exit 0 "$BIN" predict --model "$TMP/m2.bin" --data "$TMP/test.svm" -o "$TMP/p2.csv" -q
    cmp -s "$TMP/p2.csv" "$TMP/p2_train.csv" || fail "2-rank predictions differ from its saved model's"
    # probabilities within 1e-9 (relative) of the 1-process model's
    paste -d , "$TMP/p.csv" "$TMP/p2.csv" | awk -F, 'NR > 1 {
        d = $2 - $4; if (d < 0) d = -d; m = $2 > 1e-300 ? $2 : 1e-300
        if ($1 != $3 || d / m > 1e-9) { print "row " NR ": " $0; bad = 1; exit } }
        END { exit bad }' || fail "2 ranks and 1 process give different models"
    [ "$(wc -l <"$TMP/p2_train.csv")" -eq 2001 ] || fail "2 ranks wrote $(wc -l <"$TMP/p2_train.csv") lines"
else
    echo "cli_train.sh: MPI part skipped (no mpirun or partita built without MPI)"
fi
echo "cli_train.sh: ok"

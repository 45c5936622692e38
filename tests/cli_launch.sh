#!/bin/sh
# cli_launch.sh - `partita launch`: the mpirun command line it builds
# (--dry-run, and a stand-in mpirun that records its arguments and
# environment), usage errors, exit statuses and signals, then real runs
# under Open MPI when the build has MPI: `launch -n 2 -- info` must say
# "rank 0 of 2" and match `mpirun -n 2 partita info` run directly.
# $1 = path of the partita binary.
set -u
BIN=${1:?usage: cli_launch.sh PATH_TO_PARTITA}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/partita-launch.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
# The variables the tests set themselves are cleared so that the command
# lines below do not depend on the caller's environment.
for v in $(env | sed -n 's/^\(PARTITA_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

PASS=0
FAILED=0
ok() { PASS=$((PASS + 1)); }
bad() {
    FAILED=$((FAILED + 1))
    echo "FAIL: $*" >&2
}

# run CMD... : stdout to $TMP/out, stderr to $TMP/err, status in $RC
run() {
    "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
}
expect_rc() { # WANT DESCRIPTION
    if [ "$RC" -eq "$1" ]; then ok; else bad "$2: exit $RC, expected $1; stderr: $(cat "$TMP/err")"; fi
}
# has FILE FIXED-TEXT : FILE contains the text literally
has() {
    if grep -qF -e "$2" "$1"; then ok; else bad "$(basename "$1") lacks '$2': $(cat "$1")"; fi
}
hasnt() {
    if grep -qF -e "$2" "$1"; then bad "$(basename "$1") has '$2': $(cat "$1")"; else ok; fi
}

# The ranks run the binary itself, by its resolved path (/proc/self/exe).
SELF=$(readlink -f "$BIN")
ROOT=no
[ "$(id -u)" -eq 0 ] && ROOT=yes
CORES=$(nproc 2>/dev/null || echo 1)

# --- help --------------------------------------------------------------------
run "$BIN" --help
has "$TMP/out" "launch"
run "$BIN" launch --help
expect_rc 0 "launch --help"
for o in --np --hosts --hostfile --oversubscribe --dry-run --mpirun --env \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 PARTITA_THREADS PARTITA_COMM_TIMEOUT; do
    has "$TMP/out" "$o"
done

# --- usage errors --------------------------------------------------------------
run "$BIN" launch -- info
expect_rc 2 "no -n"
has "$TMP/err" "partita launch: missing -n N"
run "$BIN" launch -n 2 info
expect_rc 2 "command before --"
has "$TMP/err" "unexpected argument 'info' before '--'"
run "$BIN" launch -n 2
expect_rc 2 "no --"
has "$TMP/err" "missing '--' before the partita command"
run "$BIN" launch -n 2 --
expect_rc 2 "nothing after --"
has "$TMP/err" "missing the partita command after '--'"
run "$BIN" launch -n 0 -- info
expect_rc 2 "-n 0"
has "$TMP/err" "must be at least 1, got 0"
run "$BIN" launch --np=-3 -- info
expect_rc 2 "-n -3"
has "$TMP/err" "must be at least 1, got -3"
run "$BIN" launch -n two -- info
expect_rc 2 "-n two"
has "$TMP/err" "-n: 'two' is not a number of processes"
run "$BIN" launch -n 2 --frob -- info
expect_rc 2 "unknown option"
has "$TMP/err" "unknown option '--frob'"
run "$BIN" launch -n 2 --env 1X=y -- info
expect_rc 2 "bad --env name"
has "$TMP/err" "--env: '1X=y' is not NAME=VALUE"
run "$BIN" launch -n 2 --env NOVALUE -- info
expect_rc 2 "--env without ="
has "$TMP/err" "--env: 'NOVALUE' is not NAME=VALUE"
run "$BIN" launch -n 2 --hosts a,b:0 -- info
expect_rc 2 "slots 0"
has "$TMP/err" "--hosts: 'b:0' has no valid slot count"
run "$BIN" launch -n 2 --hosts a,,b -- info
expect_rc 2 "empty host"
has "$TMP/err" "--hosts: empty host name in 'a,,b'"
run "$BIN" launch -n 2 -- launch -n 2 -- info
expect_rc 2 "nested launch"
has "$TMP/err" "cannot be 'launch' itself"

# --- --dry-run -----------------------------------------------------------------
if [ $ROOT = yes ]; then PFX="OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "; else PFX=""; fi
run "$BIN" launch -n 2 --dry-run -- info
expect_rc 0 "dry-run"
# The whole line is known: mpirun, -n 2, this binary, the inner command.
if [ "$(cat "$TMP/out")" = "${PFX}mpirun -n 2 $SELF info" ]; then ok; else
    bad "dry-run line: '$(cat "$TMP/out")', expected '${PFX}mpirun -n 2 $SELF info'"
fi
[ "$(wc -l <"$TMP/out")" -eq 1 ] && ok || bad "dry-run printed more than one line"
if [ $ROOT = yes ]; then has "$TMP/out" "OMPI_ALLOW_RUN_AS_ROOT=1"; else hasnt "$TMP/out" "OMPI_ALLOW"; fi

# quoting, --env, PARTITA_* pass-through, --threads/--memory-limit before --
run env PARTITA_COMM_TIMEOUT=5 PARTITA_LOG=debug "$BIN" launch -n 3 --threads 1 --memory-limit 64M \
    --env "GREETING=it's here" --dry-run -- sql "SELECT * FROM 'a b.csv'" --threads 2
expect_rc 0 "dry-run with env"
want="GREETING='it'\\''s here' PARTITA_THREADS=1 PARTITA_MEMORY_LIMIT=67108864 ${PFX}mpirun -n 3"
has "$TMP/out" "$want"
has "$TMP/out" "-x GREETING -x PARTITA_COMM_TIMEOUT -x PARTITA_LOG -x PARTITA_MEMORY_LIMIT -x PARTITA_THREADS $SELF sql 'SELECT * FROM '\\''a b.csv'\\''' --threads 2"
# the printed line, run by a shell, gives back the same words
printf 'for w in "$@"; do printf "[%%s]\\n" "$w"; done\n' >"$TMP/words.sh"
line=$(sed "s|^.* mpirun |sh $TMP/words.sh |" "$TMP/out")
sh -c "$line" >"$TMP/words" 2>&1
has "$TMP/words" "[SELECT * FROM 'a b.csv']"
has "$TMP/words" "[--threads]"

# oversubscription: automatic past the cores, not with --hosts
run "$BIN" launch -n $((CORES + 1)) --dry-run -- info
has "$TMP/out" "--oversubscribe"
has "$TMP/err" "adding --oversubscribe"
run "$BIN" -q launch -n $((CORES + 1)) --dry-run -- info
has "$TMP/out" "--oversubscribe"
[ -s "$TMP/err" ] && bad "--quiet launch printed: $(cat "$TMP/err")" || ok
run "$BIN" launch -n 1 --dry-run -- info
hasnt "$TMP/out" "--oversubscribe"
run "$BIN" launch -n 64 --hosts node1:32,node2:32 --dry-run -- gen g1 -o x.csv
has "$TMP/out" "mpirun -n 64 --host node1:32,node2:32 $SELF gen g1 -o x.csv"
run "$BIN" launch -n 2 --hostfile hosts.txt --oversubscribe --mpirun /opt/mpi/bin/mpirun --dry-run -- info
has "$TMP/out" "/opt/mpi/bin/mpirun -n 2 --hostfile hosts.txt --oversubscribe $SELF info"

# --- a stand-in mpirun: exact argv, environment, exit status, signals ---------
cat >"$TMP/fake-mpirun" <<EOF
#!/bin/sh
for a in "\$@"; do printf '<%s>\n' "\$a"; done >"$TMP/argv"
env >"$TMP/env"
[ -n "\${FAKE_SLEEP:-}" ] && { echo \$\$ >"$TMP/pid"; exec sleep "\$FAKE_SLEEP"; }
exit \${FAKE_EXIT:-0}
EOF
chmod +x "$TMP/fake-mpirun"
run "$BIN" launch -n 2 --mpirun "$TMP/fake-mpirun" --env 'FAKE_EXIT=7' --env 'MSG=a  b' -- sql "SELECT 1 AS x" -q
expect_rc 7 "mpirun's exit status is returned"
printf '<-n>\n<2>\n<-x>\n<FAKE_EXIT>\n<-x>\n<MSG>\n<%s>\n<sql>\n<SELECT 1 AS x>\n<-q>\n' "$SELF" >"$TMP/want"
cmp -s "$TMP/argv" "$TMP/want" && ok || bad "argv of mpirun: $(cat "$TMP/argv")"
has "$TMP/env" "MSG=a  b"
if [ $ROOT = yes ]; then
    has "$TMP/env" "OMPI_ALLOW_RUN_AS_ROOT=1"
    has "$TMP/env" "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
fi
# SIGTERM to launch reaches mpirun, which is not left behind
FAKE_SLEEP=30 "$BIN" launch -n 2 --mpirun "$TMP/fake-mpirun" -- info >/dev/null 2>"$TMP/err" &
LPID=$!
i=0
while [ ! -s "$TMP/pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
kill -TERM $LPID
wait $LPID
RC=$?
expect_rc 143 "launch after SIGTERM (mpirun killed by signal 15)"
has "$TMP/err" "killed by signal 15"
kill -0 "$(cat "$TMP/pid")" 2>/dev/null && bad "mpirun stand-in still runs after SIGTERM" || ok
# mpirun missing
run env PATH=/nonexistent "$BIN" launch -n 2 -- info
expect_rc 1 "no mpirun on PATH"
has "$TMP/err" "partita launch: mpirun not found (apt-get install openmpi-bin)"
run "$BIN" launch -n 2 --mpirun "$TMP/no/such/mpirun" -- info
expect_rc 1 "--mpirun missing"
has "$TMP/err" "mpirun not found: '$TMP/no/such/mpirun'"

# --- real runs under Open MPI ----------------------------------------------------
run "$BIN" info
if ! grep -q '^ *mpi  *yes' "$TMP/out" || ! command -v mpirun >/dev/null 2>&1; then
    echo "cli_launch: runs under mpirun not applicable (no MPI in this build or no mpirun); --dry-run checked"
    echo "cli_launch: $PASS passed, $FAILED failed"
    [ $FAILED -eq 0 ]
    exit
fi
# Open MPI's own allocations are not freed at exit: no leak reports from ranks
ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0
export ASAN_OPTIONS

run "$BIN" launch -n 2 -- info
expect_rc 0 "launch -n 2 -- info"
has "$TMP/out" "rank 0 of 2"
# rank 0 speaks for the job: one report, not two
[ "$(grep -c '^partita ' "$TMP/out")" -eq 1 ] && ok || bad "info printed $(grep -c '^partita ' "$TMP/out") times"
cp "$TMP/out" "$TMP/via-launch"
# the same as mpirun run by hand
if [ $ROOT = yes ]; then
    run env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -n 2 "$BIN" info
else
    run mpirun -n 2 "$BIN" info
fi
expect_rc 0 "mpirun -n 2 partita info"
cmp -s "$TMP/out" "$TMP/via-launch" && ok || bad "launch and mpirun differ: $(diff "$TMP/via-launch" "$TMP/out")"

run "$BIN" launch -n 4 -- info
expect_rc 0 "launch -n 4 -- info (oversubscribed)"
has "$TMP/out" "rank 0 of 4"
[ "$CORES" -lt 4 ] && has "$TMP/err" "4 processes on"

# settings reach every rank
run "$BIN" launch -n 2 --threads 1 --memory-limit 64M -- info
has "$TMP/out" "rank 0 of 2"
grep -q '^ *threads  *1$' "$TMP/out" && ok || bad "--threads 1 did not reach the ranks: $(cat "$TMP/out")"
has "$TMP/out" "64.0 MiB"
run "$BIN" launch -n 2 --env PARTITA_THREADS=1 -- info
grep -q '^ *threads  *1$' "$TMP/out" && ok || bad "--env PARTITA_THREADS=1 did not reach the ranks"

# any command: the ranks' failure is the exit status, arguments arrive whole
run "$BIN" launch -n 2 -- stats "$TMP/missing.csv"
[ "$RC" -ne 0 ] && ok || bad "a failing rank gave exit status 0"
has "$TMP/err" "missing.csv"
run "$BIN" launch -n 2 -- frobnicate
expect_rc 2 "unknown inner command"
has "$TMP/err" "unknown command 'frobnicate'"
run "$BIN" launch -n 2 -- gen classic --rows 500 --seed 5 -q -o "$TMP/c.csv"
expect_rc 0 "launch gen"
[ "$(wc -l <"$TMP/c.csv")" -eq 501 ] && ok || bad "gen under launch wrote $(wc -l <"$TMP/c.csv") lines"
nA=$(($(awk -F, 'NR > 1 && $4 == "A"' "$TMP/c.csv" | wc -l)))
run "$BIN" launch -n 2 -- sql "SELECT count(*) AS n FROM '$TMP/c.csv' WHERE category = 'A'"
expect_rc 0 "launch sql"
grep -q "^0  *$nA\$" "$TMP/out" && ok || bad "sql under launch: expected count $nA: $(cat "$TMP/out")"

# same_answer A B : the same CSV answer, fields equal as text or, for
# numbers, within a relative 1e-12 (sums of floats may be added in another
# order on several ranks)
same_answer() {
    awk -F, 'NR == FNR { a[FNR] = $0; n = FNR; next }
        {
            if (!(FNR in a)) { bad = 1; exit }
            k = split(a[FNR], x, ","); if (k != NF) { bad = 1; exit }
            for (i = 1; i <= NF; i++) {
                if (x[i] == $i) continue
                if (x[i] !~ /^-?[0-9.eE+-]+$/ || $i !~ /^-?[0-9.eE+-]+$/) { bad = 1; exit }
                d = x[i] - $i; if (d < 0) d = -d
                m = x[i] < 0 ? -x[i] : x[i]; if (($i < 0 ? -$i : $i) > m) m = ($i < 0 ? -$i : $i)
                if (d > 1e-12 * m) { bad = 1; exit }
            }
            seen = FNR
        }
        END { exit bad || seen != n }' "$1" "$2"
}

# distributed SQL: every rank scans its share of the file; the answers must
# be those of one process (queries with ORDER BY, so the order is defined)
run "$BIN" gen g1 --rows 30000 --seed 7 -q -o "$TMP/g1.csv"
expect_rc 0 "gen g1"
for q in \
    "SELECT id1, sum(v1) AS s, count(*) AS n, min(v3) AS lo, max(v3) AS hi FROM '$TMP/g1.csv' GROUP BY id1 ORDER BY id1" \
    "SELECT id4, median(v3) AS med, stddev(v3) AS sd FROM '$TMP/g1.csv' GROUP BY id4 ORDER BY id4" \
    "SELECT id6, v3 FROM '$TMP/g1.csv' WHERE v1 = 3 ORDER BY v3 DESC, id6 LIMIT 25" \
    "SELECT count(DISTINCT id3) AS d, sum(v2) AS s FROM '$TMP/g1.csv'" \
    "SELECT * FROM (SELECT id2, id4, v3, ROW_NUMBER() OVER (PARTITION BY id2 ORDER BY v3 DESC) AS rn FROM '$TMP/g1.csv') WHERE rn <= 2 ORDER BY id2, rn"; do
    run "$BIN" sql --format csv --max-rows 100000 -q "$q"
    expect_rc 0 "sql in one process: $q"
    cp "$TMP/out" "$TMP/one.csv"
    for np in 2 4; do
        run "$BIN" launch -n $np -- sql --format csv --max-rows 100000 -q "$q"
        expect_rc 0 "sql on $np ranks: $q"
        same_answer "$TMP/one.csv" "$TMP/out" && ok ||
            bad "sql on $np ranks differs from one process for: $q: $(diff "$TMP/one.csv" "$TMP/out" | head -5)"
    done
done
# --output: rank 0 writes the whole result once
run "$BIN" launch -n 2 -- sql -q --output "$TMP/dist.csv" "SELECT id1, count(*) AS n FROM '$TMP/g1.csv' GROUP BY id1 ORDER BY id1"
expect_rc 0 "sql --output on 2 ranks"
run "$BIN" sql -q --output "$TMP/single.csv" "SELECT id1, count(*) AS n FROM '$TMP/g1.csv' GROUP BY id1 ORDER BY id1"
cmp -s "$TMP/dist.csv" "$TMP/single.csv" && ok || bad "--output on 2 ranks differs: $(diff "$TMP/single.csv" "$TMP/dist.csv" | head -5)"
# quoted fields with newlines across the split points, and a ragged row at
# the end of the file: the last rank finds it at the same line and column
{
    echo "k,txt,v"
    i=0
    while [ $i -lt 12000 ]; do
        printf '%d,"a\nb ""%d""",%d\n' $((i % 7)) $i $i
        i=$((i + 1))
    done
} >"$TMP/q.csv"
qq="SELECT k, count(*) AS n, sum(v) AS s, max(txt) AS t FROM '$TMP/q.csv' GROUP BY k ORDER BY k"
run "$BIN" sql --format csv -q "$qq"
cp "$TMP/out" "$TMP/one.csv"
run "$BIN" launch -n 3 -- sql --format csv -q "$qq"
expect_rc 0 "quoted newlines on 3 ranks"
same_answer "$TMP/one.csv" "$TMP/out" && ok || bad "quoted newlines on 3 ranks: $(diff "$TMP/one.csv" "$TMP/out" | head -5)"
printf '1,"x"\n' >>"$TMP/q.csv" # past the reader's 10,000-row type sample
run "$BIN" sql -q "$qq"
[ "$RC" -ne 0 ] && ok || bad "bad row accepted in one process"
grep -o 'q.csv:[0-9]*:[0-9]*' "$TMP/err" | head -1 >"$TMP/where1"
run "$BIN" launch -n 3 -- sql -q "$qq"
[ "$RC" -ne 0 ] && ok || bad "bad row accepted on 3 ranks"
grep -o 'q.csv:[0-9]*:[0-9]*' "$TMP/err" | head -1 >"$TMP/where3"
[ -s "$TMP/where1" ] && cmp -s "$TMP/where1" "$TMP/where3" && ok ||
    bad "error position on 3 ranks '$(cat "$TMP/where3")' differs from one process '$(cat "$TMP/where1")'"
has "$TMP/err" "rank 2"
echo "cli_launch: $PASS passed, $FAILED failed"
[ $FAILED -eq 0 ]

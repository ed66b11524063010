#!/bin/sh
# tests/run.sh BUILD_DIR - the test runner of `make test`.
#
# Runs, in this order: tests/check-includes.sh, the unit binaries
# BUILD/tests/test_*, the fuzz corpus replays BUILD/tests/fuzz_NAME
# (tests/fuzz/corpus/NAME, --reject tests/fuzz/reject/NAME), and the CLI
# scripts tests/cli/t*.sh (with bash).  Each program prints TAP; its stdout
# and stderr go to BUILD/test-logs/NAME.log, and one line per program here:
#
#   PASS name (N ok)
#   FAIL name (N ok, M not ok, exit X)   + its "not ok" lines and log tail
#   SKIP name (reason)                   the plan was "1..0 # SKIP reason"
#
# A program also fails, counting one failure per problem, when it exits
# non-zero without a "not ok" line, prints no TAP at all, has no plan or a
# plan that disagrees with its count, bails out, or outlives its timeout.
# The last line is "N passed, M failed"; the exit status is 1 if M > 0.
#
# Programs run TEST_JOBS at a time (default: the number of processors), so
# the lines come in the order programs finish; every program has its own
# scratch directories and picks its own ports, so they do not interfere.
#
# Environment:
#   TESTS=pattern    run only the programs whose name contains pattern
#   TEST_TIMEOUT=S   seconds allowed per program (default 600)
#   TEST_JOBS=N      programs run at once (default: nproc; 1 = one by one)
#   TZ_LONG=1        the deep campaigns (`make test-long`): 1,000 simulation
#                    seeds, hundreds of kills per crash test, every fault
#                    sweep in full, 5,000 fuzz mutants per corpus input
# Every program gets TZ_BUILD and TZ_SRC: absolute build dir and repo root.
# BUILD/test-logs/times.txt records each program's run time in seconds.
# Programs of the proof harness print "# tally: key=N ..." lines (seeds,
# kills, sweep_steps, fuzz_execs, divergences, losses); the runner adds
# them up into one "harness:" line before its last line.
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: sh tests/run.sh BUILD_DIR (an existing directory)" >&2
	exit 2
fi
TZ_BUILD=$(cd "$1" && pwd) || exit 2
TZ_SRC=$(cd "$(dirname "$0")/.." && pwd) || exit 2
export TZ_BUILD TZ_SRC
cd "$TZ_SRC" || exit 2

filter=${TESTS:-}
limit=${TEST_TIMEOUT:-600}
logs=$TZ_BUILD/test-logs
mkdir -p "$logs" || exit 2
rm -f "$logs"/*.log "$logs"/*.res "$logs"/*.pid "$logs/times.txt"
jobs=${TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
case $jobs in '' | *[!0-9]* | 0) jobs=1 ;; esac
: "${UBSAN_OPTIONS:=print_stacktrace=1}"
export UBSAN_OPTIONS

passed=0 failed=0 programs=0 running=
long=${TZ_LONG:-0}
export TZ_LONG=$long
: "${TZ_FUZZ_MUTATE:=$([ "$long" = 1 ] && echo 5000 || echo 200)}"
export TZ_FUZZ_MUTATE
tally_seeds=0 tally_kills=0 tally_sweep_steps=0 tally_fuzz_execs=0 tally_divergences=0 tally_losses=0

# `timeout` puts each program in a process group of its own, so that a
# timeout also kills whatever the program started; a terminal's Ctrl-C then
# no longer reaches it, so pass interruptions on ourselves (each running
# program's `timeout` pid is in test-logs/NAME.pid).
trap 'for f in "$logs"/*.pid; do [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null; done
	echo "tests/run.sh: interrupted" >&2; exit 130' INT TERM HUP

# TAP counts of a log: ok, not ok, skipped, plan (-1: none), any TAP line
# (0/1), bail out (0/1).
tap_counts() {
	awk '
	/^ok( |$)/      { ok++; tap = 1; if (tolower($0) ~ /# *skip/) skip++ }
	/^not ok( |$)/  { nok++; tap = 1 }
	/^1\.\.[0-9]+/  { plan = substr($1, 4) + 0; hasplan = 1; tap = 1 }
	/^Bail out!/    { bail = 1; tap = 1 }
	END { printf "%d %d %d %d %d %d\n", ok, nok, skip,
	      hasplan ? plan : -1, tap, bail }' "$1"
}

# Add a log's "# tally: key=N ..." lines to the totals.
add_tallies() {
	eval "$(awk '/^# tally:/ { for (i = 3; i <= NF; i++) if ($i ~ /^[a-z_]+=[0-9]+$/) {
		split($i, kv, "="); sum[kv[1]] += kv[2] } }
		END { for (k in sum) printf "tally_%s=$((tally_%s + %d))\n", k, k, sum[k] }' "$1")"
}

# How a program ended, from the status `timeout` returns.
describe_exit() {
	case $1 in
	124) echo "timed out after ${limit}s" ;;
	137) echo "killed by SIGKILL (timed out after ${limit}s, or out of memory)" ;;
	126 | 127) echo "could not be run (exit $1)" ;;
	*) if [ "$1" -gt 128 ]; then
		echo "killed by signal $(($1 - 128)) ($(kill -l $(($1 - 128)) 2>/dev/null))"
	   else
		echo "exit status $1 without a 'not ok' line"
	   fi ;;
	esac
}

# run_one NAME COMMAND...: run one program (in a background subshell); its
# report lines go to test-logs/NAME.out, then "passed failed" to NAME.res,
# written last and renamed into place, so NAME.res means "finished".
run_one() {
	name=$1
	shift
	log=$logs/$name.log
	start=$(date +%s)
	timeout -k 10 "$limit" "$@" >"$log" 2>&1 </dev/null &
	echo $! >"$logs/$name.pid"
	# 2>/dev/null: the crash is reported below, not by the shell's notice.
	wait $! 2>/dev/null
	rc=$?
	rm -f "$logs/$name.pid"
	echo "$name $(($(date +%s) - start))" >>"$logs/times.txt"
	report "$name" "$log" "$rc" >"$logs/$name.out"
	echo "$r_ok $r_bad" >"$logs/$name.res.tmp"
	mv "$logs/$name.res.tmp" "$logs/$name.res"
}

# report NAME LOG RC: the program's line (and, on failure, its details);
# sets r_ok and r_bad, the assertions that passed and the failures.
report() {
	name=$1 log=$2 rc=$3

	read -r ok nok skip plan tap bail <<EOF
$(tap_counts "$log")
EOF
	extra=0 problems=
	if [ "$tap" -eq 0 ]; then
		extra=1 problems="no TAP output"
	else
		if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then
			extra=1
		fi
		if [ "$bail" -eq 1 ]; then
			extra=$((extra + 1)) problems="bailed out"
		elif [ "$plan" -lt 0 ]; then
			extra=$((extra + 1)) problems="no plan line (1..N)"
		elif [ "$plan" -ne $((ok + nok)) ]; then
			extra=$((extra + 1))
			problems="plan 1..$plan but $((ok + nok)) tests ran"
		fi
	fi
	if [ "$rc" -ge 124 ] || { [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; }; then
		problems="${problems:+$problems; }$(describe_exit "$rc")"
	fi
	r_ok=$ok r_bad=$((nok + extra))

	if [ $((nok + extra)) -eq 0 ]; then
		why=$(sed -n 's/^1\.\.0 *# *[Ss][Kk][Ii][Pp]:* *//p' "$log")
		if [ -n "$why" ]; then
			echo "SKIP $name ($why)"
		elif [ "$skip" -gt 0 ]; then
			echo "PASS $name ($ok ok, $skip skipped)"
		else
			echo "PASS $name ($ok ok)"
		fi
		return 0
	fi
	echo "FAIL $name ($ok ok, $nok not ok, exit $rc)"
	[ -n "$problems" ] && echo "    $problems"
	grep '^not ok' "$log" | sed -n '1,30s/^/    /p'
	[ "$nok" -gt 30 ] && echo "    ... $((nok - 30)) more 'not ok' lines"
	echo "    --- last 20 lines of $log:"
	tail -n 20 "$log" | sed 's/^/    | /'
	return 0
}

# collect NAME: print a finished program's report and add up its counts.
collect() {
	cat "$logs/$1.out"
	read -r c_ok c_bad <"$logs/$1.res"
	add_tallies "$logs/$1.log"
	passed=$((passed + c_ok))
	failed=$((failed + c_bad))
	rm -f "$logs/$1.out" "$logs/$1.res"
}

# reap: collect every finished program; sets `running` to the others.
reap() {
	still=
	for n in $running; do
		if [ -f "$logs/$n.res" ]; then
			collect "$n"
		else
			still="$still $n"
		fi
	done
	running=$still
}

# run NAME COMMAND...: start one program once fewer than `jobs` run.
run() {
	case $1 in *"$filter"*) ;; *) return 0 ;; esac
	programs=$((programs + 1))
	while :; do
		reap
		n=0
		for _ in $running; do n=$((n + 1)); done
		[ "$n" -lt "$jobs" ] && break
		sleep 0.2
	done
	run_one "$@" &
	running="$running $1"
}

run check-includes sh tests/check-includes.sh

for f in "$TZ_BUILD"/tests/test_*; do
	if [ ! -f "$f" ] || [ ! -x "$f" ]; then continue; fi
	name=${f##*/}
	# A binary left over from a removed or renamed test is not a test.
	[ -f "tests/unit/$name.c" ] || continue
	run "$name" "$f"
done

for f in "$TZ_BUILD"/tests/fuzz_*; do
	if [ ! -f "$f" ] || [ ! -x "$f" ]; then continue; fi
	name=${f##*/}
	[ -f "tests/fuzz/$name.c" ] || continue
	target=${name#fuzz_}
	if [ -d "tests/fuzz/reject/$target" ]; then
		run "$name" "$f" "tests/fuzz/corpus/$target" \
			--reject "tests/fuzz/reject/$target"
	else
		run "$name" "$f" "tests/fuzz/corpus/$target"
	fi
done

# The multi-branch simulation with SIGKILLs (tests/sim/sim.c).
if [ -x "$TZ_BUILD/tests/tz-sim" ]; then
	if [ "$long" = 1 ]; then
		run sim "$TZ_BUILD/tests/tz-sim" --seeds "${TZ_SIM_SEEDS:-1000}" --first 1000 --steps 40
	else
		# under the sanitizers (build-san/) every syncctl run costs ~4x:
		# fewer seeds there; the plain run keeps the 50
		case ${TZ_BUILD##*/} in *san*) n=12 ;; *) n=50 ;; esac
		run sim "$TZ_BUILD/tests/tz-sim" --seeds "${TZ_SIM_SEEDS:-$n}" --steps 30
	fi
fi

for f in tests/cli/t*.sh; do
	[ -f "$f" ] || continue
	name=${f##*/}
	run "${name%.sh}" bash "$f"
done

while [ -n "$running" ]; do
	reap
	[ -n "$running" ] && sleep 0.2
done
wait

if [ "$programs" -eq 0 ]; then
	echo "tests/run.sh: no test program to run${filter:+ (TESTS=$filter)}" >&2
	failed=$((failed + 1))
fi
echo "harness: seeds run $tally_seeds, kills $tally_kills, sweep steps $tally_sweep_steps," \
	"fuzz executions $tally_fuzz_execs, divergences $tally_divergences, losses $tally_losses"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# bench/run.sh BUILD [--quick] - run every benchmark built into BUILD/bench/
# (`make bench`, `make bench-quick`; see bench/README.md) and print the one
# table of bench/table.c.  Each program prints its own report and appends
# its figures to BUILD/bench/summary.txt.  This script never fails a build:
# a benchmark that breaks is reported (in the table too) and the script
# still exits 0.
set -u

if [ $# -lt 1 ]; then
	echo "usage: sh bench/run.sh BUILD [--quick]" >&2
	exit 2
fi
build=$1
shift
case $build in
/*) ;;
*) build=$(pwd)/$build ;;
esac
# bench/agency_day.sql and bench/results/ are found from the repository root
cd "$(dirname "$0")/.." || exit 0
summary=$build/bench/summary.txt
rm -f "$summary"
# the machine's load: on a shared machine it explains a disturbed figure
echo "load.start $(cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null)" >"$summary"

tz=
if [ -x "$build/syncctl" ]; then
	tz="--syncctl $build/syncctl"
else
	echo "bench: no $build/syncctl: the Tazamun contender is skipped" >&2
fi

# run NAME ARGS...: one program, its failure reported, never fatal
run() {
	name=$1
	shift
	if [ ! -x "$build/bench/$name" ]; then
		echo "bench: no $build/bench/$name (build it with make bench)" >&2
		return
	fi
	echo "== $name" >&2
	"$build/bench/$name" "$@" --summary "$summary" ||
		echo "bench: $name exited with status $?" >&2
}

# shellcheck disable=SC2086 # $tz is two words or none
run write_cost $tz "$@"
# shellcheck disable=SC2086
run bundle_size $tz "$@"
# shellcheck disable=SC2086
run merge $tz "$@"
run git_peer "$@"
if ext=$(sh bench/fetch-sqlite-sync.sh "$build/bench-cache"); then
	run sqlite_sync --ext "$ext" "$@"
else
	echo "bench: sqlite-sync not available: $ext" >&2
	run sqlite_sync --unavailable "$ext" "$@"
fi
echo "== the table" >&2
run table "$@"
exit 0

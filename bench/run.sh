#!/bin/sh
# bench/run.sh BUILD [--quick] - run the benchmarks built into BUILD/bench/
# (`make bench`, `make bench-quick`; see bench/README.md).  They print
# tables; this script never fails a build: a benchmark that breaks is
# reported on stderr and the script still exits 0.
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

if [ -x "$build/syncctl" ]; then
	set -- --syncctl "$build/syncctl" "$@"
else
	echo "bench: no $build/syncctl: the Tazamun contender is skipped" >&2
fi

if [ -x "$build/bench/write_cost" ]; then
	"$build/bench/write_cost" "$@" ||
		echo "bench: write_cost exited with status $?" >&2
else
	echo "bench: no $build/bench/write_cost (build it with make bench)" >&2
fi

if [ -x "$build/bench/bundle_size" ]; then
	"$build/bench/bundle_size" "$@" ||
		echo "bench: bundle_size exited with status $?" >&2
else
	echo "bench: no $build/bench/bundle_size (build it with make bench)" >&2
fi

if [ -x "$build/bench/merge" ]; then
	"$build/bench/merge" "$@" ||
		echo "bench: merge exited with status $?" >&2
else
	echo "bench: no $build/bench/merge (build it with make bench)" >&2
fi
exit 0

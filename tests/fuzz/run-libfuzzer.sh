#!/bin/sh
# tests/fuzz/run-libfuzzer.sh SECONDS [NAME...] - fuzz every parser with libFuzzer.
#
# Builds each tests/fuzz/fuzz_NAME.c (or only the NAMEs given) with
# clang -fsanitize=fuzzer,address,undefined into build-fuzz/, compiling the
# library sources directly with the Makefile's warning flags (read from the
# Makefile itself) plus pkg-config, then runs each target for SECONDS with
#   build-fuzz/corpus/NAME   the working corpus (new inputs land here)
#   tests/fuzz/corpus/NAME   the committed seeds (read only)
#   tests/fuzz/reject/NAME   the must-fail inputs, as seeds too
# and prints its executions and coverage.  A crash leaves its input in
# build-fuzz/artifacts/ and the log's tail on the terminal; replay it with
# the plain driver: build/tests/fuzz_NAME build-fuzz/artifacts/fuzz_NAME-crash-...
# Worth committing: a crash input (fixed) into tests/fuzz/corpus/NAME.
#
# Environment: CLANG (default /usr/bin/clang, clang 14 on Debian 12),
# FUZZ_LIB_SRC (library sources, default "store/*.c conflict/*.c syncd/*.c").
# Exit status: 0 when every target ran its time without a crash.
set -u

usage() {
	echo "usage: sh tests/fuzz/run-libfuzzer.sh SECONDS [NAME...]" >&2
	exit 2
}
[ $# -ge 1 ] || usage
secs=$1
shift
case $secs in '' | *[!0-9]*) usage ;; esac
cd "$(dirname "$0")/../.." || exit 2

CLANG=${CLANG:-/usr/bin/clang}
if [ ! -x "$CLANG" ]; then
	echo "run-libfuzzer.sh: $CLANG not found; install clang (apt-get install clang)" >&2
	exit 2
fi
# The libraries and warning flags are the Makefile's own (read from its
# database), so the two builds cannot drift apart.
makevar() {
	make -pnq -f Makefile check-pkgs 2>/dev/null | sed -n "s/^$1 := //p" | head -n 1
}
PKGS=$(makevar PKGS)
WARN=$(makevar WARN)
if [ -z "$PKGS" ] || [ -z "$WARN" ]; then
	echo "run-libfuzzer.sh: cannot read PKGS and WARN from the Makefile" >&2
	exit 2
fi
# shellcheck disable=SC2086  # a list of package names
if ! pkg-config --exists $PKGS; then
	echo "run-libfuzzer.sh: missing libraries; run: sh tools/deps.sh" >&2
	exit 2
fi
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
CFLAGS="-std=c11 -D_DEFAULT_SOURCE -I. $WARN -O1 -g $SAN $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lpthread"
out=build-fuzz
mkdir -p "$out/obj" "$out/artifacts" || exit 2

# The library, instrumented for coverage but without libFuzzer's main().
objs=
for src in ${FUZZ_LIB_SRC:-store/*.c conflict/*.c syncd/*.c}; do
	[ -f "$src" ] || continue
	obj=$out/obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')
	# shellcheck disable=SC2086  # flag lists are meant to split
	$CLANG $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$obj" || exit 1
	objs="$objs $obj"
done
echo "built the library ($(echo $objs | wc -w) files) with $($CLANG --version | head -n 1)"

if [ $# -eq 0 ]; then
	for t in tests/fuzz/fuzz_*.c; do
		[ -f "$t" ] || continue
		t=${t##*/fuzz_}
		set -- "$@" "${t%.c}"
	done
fi

status=0
for target; do
	name=fuzz_$target
	src=tests/fuzz/$name.c
	[ -f "$src" ] || { echo "run-libfuzzer.sh: no $src" >&2; status=1; continue; }
	# shellcheck disable=SC2086
	$CLANG $CFLAGS -fsanitize=fuzzer "$src" $objs $LIBS -o "$out/$name" || exit 1
	work=$out/corpus/$target
	mkdir -p "$work" || exit 2
	seeds=
	for d in "tests/fuzz/corpus/$target" "tests/fuzz/reject/$target"; do
		[ -d "$d" ] && seeds="$seeds $d"
	done
	log=$out/$name.log
	echo "== $name: fuzzing for $secs s (log: $log)"
	# -timeout: an input that takes 10 s is a hang worth reporting.
	# shellcheck disable=SC2086
	"$out/$name" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$out/artifacts/$name-" "$work" $seeds >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
	echo "$name: ${execs:-?} executions, ${cov:-cov: ?}, working corpus $(ls "$work" | wc -l) files, exit $rc"
	if [ "$rc" -ne 0 ]; then
		status=1
		tail -n 40 "$log" | sed 's/^/    | /'
	fi
done
exit $status

# lib.sh - TAP helpers for the CLI tests (bash).  Source it, then call
# ok/check/... and finish with `done_testing`.
#   TZ_BUILD  the build directory (syncctl lives there)
#   TZ_SRC    the repository root
set -u
: "${TZ_BUILD:?set TZ_BUILD to the build directory}"
: "${TZ_SRC:?set TZ_SRC to the repository root}"
SYNCCTL="$TZ_BUILD/syncctl"
T_N=0
T_FAIL=0
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tz-cli.XXXXXX")
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT

# ok COND_EXIT_CODE DESCRIPTION
ok() {
	T_N=$((T_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $T_N - $2"
	else
		T_FAIL=$((T_FAIL + 1))
		echo "not ok $T_N - $2"
	fi
}

# check DESCRIPTION COMMAND... : the command must succeed
check() {
	local d="$1"; shift
	"$@" >"$WORK/.out" 2>"$WORK/.err"
	local rc=$?
	ok $rc "$d"
	[ $rc -eq 0 ] || { sed 's/^/# out: /' "$WORK/.out" | head -20; sed 's/^/# err: /' "$WORK/.err" | head -20; }
	return $rc
}

# fails DESCRIPTION EXPECTED_RC COMMAND... : must exit with EXPECTED_RC
fails() {
	local d="$1" want="$2"; shift 2
	"$@" >"$WORK/.out" 2>"$WORK/.err"
	local rc=$?
	[ $rc -eq "$want" ]
	ok $? "$d (exit $rc, want $want)"
	[ $rc -eq "$want" ] || { sed 's/^/# out: /' "$WORK/.out" | head -20; sed 's/^/# err: /' "$WORK/.err" | head -20; }
}

# like FILE REGEX DESCRIPTION : FILE must contain a line matching REGEX
like() {
	if grep -Eq -- "$2" "$1"; then ok 0 "$3"; else ok 1 "$3"; sed 's/^/# got: /' "$1" | head -20; fi
}

# json_valid FILE DESCRIPTION : the file holds one JSON document
json_valid() {
	local v
	v=$(sqlite3 :memory: "SELECT json_valid(CAST(readfile('$1') AS TEXT))")
	[ "$v" = 1 ]
	ok $? "$2"
}

done_testing() {
	echo "1..$T_N"
	[ "$T_FAIL" -eq 0 ]
	exit $?
}

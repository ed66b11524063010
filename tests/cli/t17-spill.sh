#!/usr/bin/env bash
# t17-spill.sh - the staging's spill (store_int.h TZ_STAGING_SPILL_BYTES):
# a commit, a rebuild or a merge holding more than the threshold writes its
# blobs and trees as a pack and drops their bytes, then reads them back from
# the object database.  Real imports spill only past 16 MiB, which no other
# test reaches; here TZ_SPILL_BYTES=2048 makes every commit and import of
# the merge test (C3, C12, resolution, P15, update/delete, insert/insert,
# bulk) and of the sync cycle spill many times, and their checks must all
# hold as without it.
export TZ_SPILL_BYTES=2048
for t in t10-merge t05-cycle; do
	echo "# $t with TZ_SPILL_BYTES=$TZ_SPILL_BYTES"
	bash "$TZ_SRC/tests/cli/$t.sh" >"${TMPDIR:-/tmp}/t12.$$.$t" 2>&1
	echo "exit $?" >>"${TMPDIR:-/tmp}/t12.$$.$t"
done
# one TAP stream: renumbered, each sub-test's own plan dropped
n=0 fail=0
for t in t10-merge t05-cycle; do
	f="${TMPDIR:-/tmp}/t12.$$.$t"
	while IFS= read -r line; do
		case "$line" in
		"ok "*|"not ok "*)
			n=$((n + 1))
			case "$line" in
			"not ok "*) fail=$((fail + 1)); echo "not ok $n - [$t]${line#*-}";;
			*) echo "ok $n - [$t]${line#*-}";;
			esac;;
		"exit "*)
			n=$((n + 1))
			if [ "$line" = "exit 0" ]; then echo "ok $n - [$t] ends cleanly"; else fail=$((fail + 1)); echo "not ok $n - [$t] $line"; fi;;
		1..*) ;;
		*) echo "$line";;
		esac
	done <"$f"
	rm -f "$f"
done
# the spill did happen: one commit of 300 rows (~25 KB of blobs) writes
# several packs, and the store verifies
W=$(mktemp -d "${TMPDIR:-/tmp}/tz-t12.XXXXXX")
trap 'rm -rf "$W"' EXIT
S="$TZ_BUILD/syncctl"
printf 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO tz_track VALUES (%s);\n' "'t', 'shared', NULL" >"$W/s.sql"
"$S" init-hq "$W/hq" >/dev/null && "$S" -C "$W/hq" schema apply "$W/s.sql" >/dev/null &&
	sqlite3 "$W/hq/store.db" "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300)
	  INSERT INTO t SELECT i, hex(randomblob(40)) FROM c" &&
	cp -a "$W/hq" "$W/plain" &&
	before=$(ls "$W/hq/history/objects/pack/"*.pack | wc -l) && "$S" -C "$W/hq" --json commit >"$W/spilled.json" &&
	after=$(ls "$W/hq/history/objects/pack/"*.pack | wc -l) && "$S" -C "$W/hq" verify >/dev/null &&
	[ $((after - before)) -ge 4 ]
rc=$?
n=$((n + 1))
if [ $rc -eq 0 ]; then echo "ok $n - a 300-row commit spilled into $((after - before)) packs and verifies"; else
	fail=$((fail + 1)); echo "not ok $n - a 300-row commit spilled (packs: ${before:-?} -> ${after:-?}) and verifies"; fi
# a spill forgets the objects it wrote: the count of objects written must
# still be the whole commit's, as without a spill
spilled=$(grep -o '"objects": [0-9]*' "$W/spilled.json")
plain=$(env -u TZ_SPILL_BYTES "$S" -C "$W/plain" --json commit | grep -o '"objects": [0-9]*')
n=$((n + 1))
if [ -n "$plain" ] && [ "$spilled" = "$plain" ]; then echo "ok $n - the spilled commit reports its objects as a plain one does ($spilled)"; else
	fail=$((fail + 1)); echo "not ok $n - objects written: spilled '$spilled', plain '$plain'"; fi
echo "1..$n"
[ "$fail" -eq 0 ]

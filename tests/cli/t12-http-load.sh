#!/bin/bash
# t12-http-load.sh - many branches syncing with one `syncd --hq` at once
# (issue 6): N branch processes (10; 50 with TZ_LONG=1, `make test-long`;
# TZ_HTTP_BRANCHES overrides) each write rows of their own and one shared
# row, then all run `syncctl sync` at the same moment, twice.  0 failures;
# after the two rounds every branch holds every branch's shared row and
# HQ every branch's own rows, once; HQ verifies.  Prints the p50 and p99
# of the sync times (not an assertion: the machine is shared).
. "$TZ_SRC/tests/cli/lib.sh"
. "$TZ_SRC/tests/cli/lib_http.sh"
S=$SYNCCTL
if [ "${TZ_LONG:-0}" = 1 ]; then N=${TZ_HTTP_BRANCHES:-50}; else N=${TZ_HTTP_BRANCHES:-10}; fi
ROWS=20
cd "$WORK" || exit 1

codes=()
for i in $(seq 1 "$N"); do codes+=("$(printf 'B%02d' "$i")"); done
check "HQ store with a schema" http_setup
check "enrol $N branches" http_enrol "${codes[@]}"
check "syncd --hq starts" hq_start

for c in "${codes[@]}"; do
	sqlite3 "${c,,}/store.db" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $ROWS)
INSERT INTO job_seeker SELECT '$c-' || i, 'name', hex(randomblob(30)), '$c' FROM n;
INSERT INTO workshop VALUES ('w-$c', 'workshop of $c', 10);"
done

# round R: every branch syncs at once; one JSON report per branch
round() {
	local c pids=()
	for c in "${codes[@]}"; do
		"$S" -C "${c,,}" sync --json "$URL" >"r$1-$c.json" 2>"r$1-$c.err" &
		pids+=($!)
	done
	fails=0
	for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
	[ "$fails" -eq 0 ]
	ok $? "round $1: $N branches synced at once, $fails failures"
	[ "$fails" -eq 0 ] || for c in "${codes[@]}"; do sed "s/^/# $c: /" "r$1-$c.err"; done | head -20
}
round 1
[ "$(sqlite3 hq/store.db "SELECT count(*) FROM job_seeker")" -eq $((N * ROWS)) ]
ok $? "after one cycle each, HQ holds every branch's rows once"
round 2
missing=0
for c in "${codes[@]}"; do
	[ "$(sqlite3 "${c,,}/store.db" "SELECT count(*) FROM workshop")" -eq "$N" ] || missing=$((missing + 1))
	[ "$(sqlite3 "${c,,}/store.db" "SELECT count(*) FROM job_seeker")" -eq "$ROWS" ] || missing=$((missing + 1))
done
[ "$missing" -eq 0 ]; ok $? "after one more cycle, every branch holds all $N shared rows and its own ($missing wrong)"
a=$(sqlite3 hq/store.db "SELECT group_concat(id || title, ',') FROM (SELECT * FROM workshop ORDER BY id)")
same=0
for c in "${codes[@]}"; do
	[ "$(sqlite3 "${c,,}/store.db" "SELECT group_concat(id || title, ',') FROM (SELECT * FROM workshop ORDER BY id)")" = "$a" ] ||
		same=$((same + 1))
done
[ "$same" -eq 0 ]; ok $? "every branch's shared table equals HQ's ($same differ)"
[ "$(metric 'tazamun_bundles_in_total{result="refused"}')" = 0 ]; ok $? "metrics: no bundle refused"
check "HQ verifies" "$S" -C hq verify
times=$(for f in r*-*.json; do jget "$f" '$.seconds'; done | sort -n)
cnt=$(echo "$times" | wc -l)
p50=$(echo "$times" | sed -n "$(((cnt + 1) / 2))p")
p99=$(echo "$times" | sed -n "$(((cnt * 99 + 99) / 100))p")
echo "# $N branches, $cnt syncs: p50 ${p50} s, p99 ${p99} s"
hq_stop TERM
ok $? "syncd --hq stops cleanly"
done_testing

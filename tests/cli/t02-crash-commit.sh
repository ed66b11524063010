#!/usr/bin/env bash
# Crash test: kill `syncctl commit` with SIGKILL at random moments (at
# least 50 times).  After each kill: the store opens, verify passes (store.db
# == head + change log, every object sound), so every change is either in a
# commit or still in the change log.  At the end a clean commit seals all of
# it and the head holds exactly the rows of store.db.
# TZ_CRASH_KILLS (default 50) and TZ_CRASH_SEED (default: random) tune it.
. "$TZ_SRC/tests/cli/lib.sh"

S="$SYNCCTL"
KILLS=${TZ_CRASH_KILLS:-$([ "${TZ_LONG:-0}" = 1 ] && echo 300 || echo 50)}
SEED=${TZ_CRASH_SEED:-$RANDOM}
RANDOM=$SEED
echo "# seed $SEED (replay: TZ_CRASH_SEED=$SEED TZ_BUILD=$TZ_BUILD TZ_SRC=$TZ_SRC bash $0)"
HQ="$WORK/hq"
"$S" init-hq "$HQ" >/dev/null
cat >"$WORK/schema.sql" <<'SQL'
CREATE TABLE person(id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT, n INTEGER, note TEXT);
INSERT INTO tz_track VALUES ('person', 'owned', 'owner');
SQL
"$S" -C "$HQ" schema apply "$WORK/schema.sql" >/dev/null
# 3,000 rows over three partitions
sqlite3 "$HQ/store.db" "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
  INSERT INTO person SELECT printf('P%05d', i), 'B' || (i % 3), 'name ' || i, i, hex(randomblob(40)) FROM c"
# Calibrate: how long does a commit of this size take?
t0=$(date +%s%N)
"$S" -C "$HQ" commit >/dev/null
t1=$(date +%s%N)
span_ms=$(( (t1 - t0) / 1000000 + 5 ))
echo "# a 3,000-row commit takes ~${span_ms} ms; kills land in [0, ${span_ms}] ms"

kills=0 verify_fail=0 landed=0 round=0
# until KILLS kills landed (a commit that finishes first is not a kill)
while [ "$kills" -lt "$KILLS" ] && [ "$round" -lt $((KILLS * 3)) ]; do
	round=$((round + 1))
	# a burst of changes: updates, inserts, deletes, an owner move
	sqlite3 "$HQ/store.db" "BEGIN;
	  UPDATE person SET n = n + 1, note = hex(randomblob(40)) WHERE abs(random()) % 3 = 0;
	  INSERT OR REPLACE INTO person VALUES (printf('N%05d', $round), 'B1', 'new', $round, 'x');
	  DELETE FROM person WHERE id = printf('P%05d', 1 + abs(random()) % 3000);
	  UPDATE person SET owner = 'B' || (abs(random()) % 3) WHERE id = printf('P%05d', 1 + abs(random()) % 3000);
	  COMMIT;"
	"$S" -C "$HQ" commit >/dev/null 2>&1 &
	pid=$!
	delay=$((RANDOM % span_ms))
	sleep "$(printf '0.%03d' "$delay")"
	if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
	wait "$pid" 2>/dev/null
	[ $? -eq 0 ] && landed=$((landed + 1))
	if ! "$S" -C "$HQ" verify >"$WORK/v.out" 2>&1; then
		verify_fail=$((verify_fail + 1))
		echo "# round $round (kill after ${delay} ms): verify failed:"
		sed 's/^/#   /' "$WORK/v.out" | head -10
	fi
done
echo "# $kills kills delivered, $landed commits finished before their kill"
echo "# tally: kills=$kills"
[ "$kills" -ge "$KILLS" ]; ok $? "$KILLS commits were killed at random moments ($kills in $round rounds)"
[ "$verify_fail" -eq 0 ]; ok $? "verify passed after every kill ($verify_fail failures)"
check "a clean commit after the campaign" "$S" -C "$HQ" commit
[ "$(sqlite3 "$HQ/store.db" "SELECT count(*) FROM tz_changes")" = 0 ]; ok $? "the change log is empty"
rows_db=$(sqlite3 "$HQ/store.db" "SELECT count(*) FROM person")
rows_head=$(git -C "$HQ/history" ls-tree -r --name-only HEAD person | wc -l)
[ "$rows_db" = "$rows_head" ]; ok $? "the head holds every row of store.db ($rows_db / $rows_head)"
check "verify passes at the end" "$S" -C "$HQ" verify
done_testing

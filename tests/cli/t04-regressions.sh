#!/usr/bin/env bash
# Regressions: each case failed before its fix.
. "$TZ_SRC/tests/cli/lib.sh"

S="$SYNCCTL"
HQ="$WORK/hq"
"$S" init-hq "$HQ" >/dev/null
cat >"$WORK/schema.sql" <<'SQL'
CREATE TABLE person(id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT);
CREATE TABLE "odd WHERE name"(" WHERE " TEXT PRIMARY KEY, "x""y" INTEGER);
CREATE TABLE counter(id INTEGER PRIMARY KEY, owner TEXT NOT NULL, n INTEGER);
INSERT INTO tz_track VALUES ('person', 'owned', 'owner'), ('odd WHERE name', 'shared', NULL),
  ('counter', 'owned', 'owner');
SQL
check "schema apply with names holding ' WHERE ' and quotes" "$S" -C "$HQ" schema apply "$WORK/schema.sql"
sqlite3 "$HQ/store.db" "INSERT INTO person VALUES ('P1', 'CAS01', 'Amal'), ('P2', 'CAS01', 'Badr');
  INSERT INTO \"odd WHERE name\" VALUES ('k', 1); INSERT INTO counter(owner, n) VALUES ('CAS01', 1);"
check "commit rows of a table whose name holds ' WHERE '" "$S" -C "$HQ" commit
check "verify a table whose name holds ' WHERE '" "$S" -C "$HQ" verify

# INSERT OR REPLACE that moves a row to another owner deletes the old row
# without a delete trigger: the commit must still remove the old path.
sqlite3 "$HQ/store.db" "INSERT OR REPLACE INTO person VALUES ('P1', 'RAB02', 'Amal');"
check "commit after INSERT OR REPLACE moved a row" "$S" -C "$HQ" commit
n=$(git -C "$HQ/history" ls-tree -r --name-only HEAD person | grep -c '/P1$')
[ "$n" = 1 ]; ok $? "the moved row is in the head once ($n)"
git -C "$HQ/history" ls-tree -r --name-only HEAD person | grep -q '^person/RAB02/.*/P1$'
ok $? "the moved row is under its new owner"
check "verify after the move" "$S" -C "$HQ" verify
# an auto-assigned INTEGER PRIMARY KEY is captured with its real value
sqlite3 "$HQ/store.db" "INSERT INTO counter(owner, n) VALUES ('CAS01', 2);"
check "commit an auto-assigned integer key" "$S" -C "$HQ" commit
git -C "$HQ/history" ls-tree -r --name-only HEAD counter | grep -q '/~i2$'
ok $? "the auto-assigned key is in the head"

# UPDATE OR REPLACE that gives a row the key of a row under another owner
# deletes that row without a delete trigger: the head must not keep both.
sqlite3 "$HQ/store.db" "INSERT INTO person VALUES ('P3', 'TNG03', 'Chaima');"
"$S" -C "$HQ" commit >/dev/null
sqlite3 "$HQ/store.db" "UPDATE OR REPLACE person SET id = 'P3' WHERE id = 'P2';"
check "commit after UPDATE OR REPLACE collided two keys" "$S" -C "$HQ" commit
n=$(git -C "$HQ/history" ls-tree -r --name-only HEAD person | grep -c '/P3$')
[ "$n" = 1 ]; ok $? "the surviving key is in the head once ($n)"
git -C "$HQ/history" ls-tree -r --name-only HEAD person | grep -q '^person/CAS01/.*/P3$'
ok $? "the surviving row is under the updated row's owner"
check "verify after the collision" "$S" -C "$HQ" verify

# ALTER TABLE outside schema apply: the next commit re-encodes the table.
sqlite3 "$HQ/store.db" "ALTER TABLE person ADD COLUMN phone TEXT DEFAULT '0600000000'"
check "verify with a schema change pending" "$S" -C "$HQ" verify
check "status with a schema change pending" "$S" -C "$HQ" status
like "$WORK/.out" "person .*schema changed" "status says the table will be re-encoded"
check "commit after ALTER TABLE" "$S" -C "$HQ" commit
like "$WORK/.out" "2 changed" "every row of the altered table was re-encoded"
git -C "$HQ/history" log -1 --format=%B | grep -q '^Tazamun-Schema: 2$'
ok $? "the schema version went up with the DDL"
check "verify after the rebuild" "$S" -C "$HQ" verify

# Writers never interleave: concurrent commits while the application writes.
for i in 1 2 3 4; do
	sqlite3 -cmd '.timeout 20000' "$HQ/store.db" "UPDATE person SET name = name || '$i'" &
	"$S" -C "$HQ" commit >/dev/null 2>"$WORK/c$i.err" &
done
fail=0
for job in $(jobs -p); do wait "$job" || fail=$((fail + 1)); done
[ $fail -eq 0 ]; ok $? "concurrent commits and writes all succeeded ($fail failed)"
"$S" -C "$HQ" commit >/dev/null
check "verify after concurrent commits" "$S" -C "$HQ" verify

# checkout keeps the old head in the reflog (the history is bare).
old=$(git -C "$HQ/history" rev-parse HEAD)
check "checkout HEAD~1" "$S" -C "$HQ" checkout HEAD~1
git -C "$HQ/history" reflog show main | grep -q "^${old:0:7}"
ok $? "the old head is in the reflog"

# JSON keeps a REAL 1.0 apart from the INTEGER 1; every command takes --json.
sqlite3 "$HQ/store.db" "CREATE TABLE m(id INTEGER PRIMARY KEY, r REAL, i INTEGER);"
printf "INSERT INTO tz_track VALUES ('m', 'shared', NULL);\n" >"$WORK/m.sql"
"$S" -C "$HQ" schema apply --json "$WORK/m.sql" >"$WORK/apply.json"
json_valid "$WORK/apply.json" "schema apply --json is one JSON document"
sqlite3 "$HQ/store.db" "INSERT INTO m VALUES (1, 1.0, 1)"
"$S" -C "$HQ" diff --json >"$WORK/m.json"
like "$WORK/m.json" '"name": "r", "new": 1\.0\}' "a real 1.0 is 1.0 in JSON"
like "$WORK/m.json" '"name": "i", "new": 1\}' "an integer 1 is 1 in JSON"
"$S" -C "$HQ" commit --json >"$WORK/c.json"
json_valid "$WORK/c.json" "commit --json is one JSON document"
"$S" -C "$HQ" keys show --json >"$WORK/k.json"
json_valid "$WORK/k.json" "keys show --json is one JSON document"
"$S" -C "$HQ" keys allowed-signers --json >"$WORK/a.json"
json_valid "$WORK/a.json" "keys allowed-signers --json is one JSON document"
"$S" -C "$HQ" checkout --json HEAD >"$WORK/co.json"
json_valid "$WORK/co.json" "checkout --json is one JSON document"
"$S" init-hq --json "$WORK/j" >"$WORK/i.json"
json_valid "$WORK/i.json" "init-hq --json is one JSON document"

# A writer killed inside the ref update leaves libgit2's ref lock file: it
# is stale (writers hold store.lock) and must not block the store (found by
# the crash campaign of t02).
sqlite3 "$HQ/store.db" "UPDATE person SET name = 'lock test' WHERE id = 'P1'"
"$S" -C "$HQ" commit >/dev/null
git -C "$HQ/history" rev-parse HEAD~1 >"$HQ/history/refs/heads/main.lock"
git -C "$HQ/history" update-ref refs/heads/main HEAD~1 2>/dev/null ||
	printf '%s\n' "$(git -C "$HQ/history" rev-parse HEAD~1)" >"$HQ/history/refs/heads/main"
check "a store opens despite a stale ref lock" "$S" -C "$HQ" verify
[ ! -e "$HQ/history/refs/heads/main.lock" ]; ok $? "the stale ref lock is gone"
[ "$(git -C "$HQ/history" rev-parse HEAD)" = "$(sqlite3 "$HQ/store.db" "SELECT v FROM tz_meta WHERE k = 'head'")" ]
ok $? "the ref points at the head store.db recorded"

# The first commit of a store with nothing tracked is nothing to commit.
"$S" init-hq "$WORK/empty" >/dev/null
check "commit on an empty store" "$S" -C "$WORK/empty" commit
like "$WORK/.out" "nothing to commit" "an empty store has nothing to commit"
done_testing

#!/bin/bash
# t09-integration.sh - what HQ integrates from a branch, row by row: the
# row's own key and owner must be its path's, a key another branch holds is
# not taken, a row written into another branch's partition is not taken
# while its owner's transfer is,
# HQ's pending changes are sealed as HQ's side of the merge, and the base of
# the three-way merge is what HQ last integrated from the branch (no false
# conflict, no lost update).  Rule ids: docs/protocol.md.
. "$TZ_SRC/tests/cli/lib.sh"
S=$SYNCCTL
cd "$WORK" || exit 1
export TZ_PASSPHRASE="t09 passphrase"

cat >schema.sql <<'SQL'
CREATE TABLE job_seeker(id TEXT PRIMARY KEY, name TEXT, owner_branch TEXT NOT NULL);
CREATE TABLE employer(ice TEXT PRIMARY KEY, name TEXT);
INSERT INTO tz_track VALUES ('job_seeker', 'owned', 'owner_branch'), ('employer', 'shared', NULL);
SQL
"$S" init-hq hq >/dev/null && "$S" -C hq schema apply schema.sql >/dev/null
sqlite3 hq/store.db "INSERT INTO job_seeker VALUES ('C1', 'Ali', 'CAS01'), ('R1', 'Sara', 'RAB01');
  INSERT INTO employer VALUES ('E1', 'Atlas');"
"$S" -C hq commit -m base >/dev/null
"$S" -C hq branch add CAS01 --out cas.tze >/dev/null && "$S" init-branch cas --enroll cas.tze >/dev/null
"$S" -C hq branch add RAB01 --out rab.tze >/dev/null && "$S" init-branch rab --enroll rab.tze >/dev/null
q() { sqlite3 "$1/store.db" "$2"; }
# cycle BRANCH DIR: export, HQ import (JSON kept in imp-DIR.json), reply, branch import
cycle() {
	"$S" -C "$2" export --out "$2.tzb" >/dev/null &&
	"$S" -C hq import --json "$2.tzb" >"imp-$2.json" 2>"imp-$2.err" &&
	"$S" -C hq export --for "$1" --out "hq-$2.tzb" >/dev/null &&
	"$S" -C "$2" import "hq-$2.tzb" >/dev/null
}
cycle CAS01 cas; ok $? "CAS01's first cycle"
cycle RAB01 rab; ok $? "RAB01's first cycle"

# ---- the same key created at two branches ----
q rab "INSERT INTO job_seeker VALUES ('7', 'Rabat person', 'RAB01')"
cycle RAB01 rab; ok $? "RAB01 creates key 7"
q cas "INSERT INTO job_seeker VALUES ('7', 'Casa person', 'CAS01')"
cycle CAS01 cas; ok $? "CAS01 creates key 7 too: the import succeeds"
like imp-cas.json '"key": "7", "why": "the key is another branch.s row at HQ"' "P9: CAS01's key 7 is listed, not applied"
[ "$(q hq "SELECT name || ':' || owner_branch FROM job_seeker WHERE id = '7'")" = "Rabat person:RAB01" ]
ok $? "HQ keeps RAB01's row 7"
[ "$(q cas "SELECT count(*) FROM job_seeker WHERE id = '7'")" = 0 ]; ok $? "CAS01's view drops its row 7"
check "HQ verifies" "$S" -C hq verify

# ---- a row written into another branch's partition; a transfer ----
q cas "INSERT INTO job_seeker VALUES ('C9', 'Nadia', 'RAB01')"
cycle CAS01 cas; ok $? "CAS01 creates a row in RAB01's partition: the import succeeds"
like imp-cas.json '"partition": "RAB01", "key": "C9", "why": "another branch.s partition"' "P9: the addition is listed"
[ "$(q hq "SELECT count(*) FROM job_seeker WHERE id = 'C9'")" = 0 ]; ok $? "HQ does not take it"
[ "$(q cas "SELECT count(*) FROM job_seeker WHERE id = 'C9'")" = 0 ]; ok $? "CAS01's view drops it"
# the owner gives its row to another branch (docs/integrity.md)
q cas "INSERT INTO job_seeker VALUES ('C8', 'Karim', 'CAS01')"
cycle CAS01 cas; ok $? "CAS01 creates C8"
q cas "UPDATE job_seeker SET owner_branch = 'RAB01' WHERE id = 'C8'"
cycle CAS01 cas; ok $? "CAS01 moves C8 to RAB01: the import succeeds"
like imp-cas.json '"refused": \[\]' "the owner's transfer is not refused"
[ "$(q hq "SELECT name || ':' || owner_branch FROM job_seeker WHERE id = 'C8'")" = "Karim:RAB01" ]
ok $? "HQ moves C8 to RAB01"
[ "$(q cas "SELECT count(*) FROM job_seeker WHERE id = 'C8'")" = 0 ]; ok $? "C8 leaves CAS01's view"
cycle RAB01 rab; ok $? "RAB01's cycle"
[ "$(q rab "SELECT name FROM job_seeker WHERE id = 'C8'")" = Karim ]; ok $? "and joins RAB01's"
check "HQ verifies after the move" "$S" -C hq verify
check "CAS01 verifies after the move" "$S" -C cas verify

# ---- HQ's pending change is HQ's side of the merge ----
q hq "UPDATE employer SET name = 'Atlas HQ' WHERE ice = 'E1'"
q cas "UPDATE employer SET name = 'Atlas CAS' WHERE ice = 'E1'"
"$S" -C cas export --out c-conf.tzb >/dev/null
head0=$(q hq "SELECT v FROM tz_meta WHERE k = 'head'")
check "P13: an edit of a row HQ changed (uncommitted) merges" "$S" -C hq import --json c-conf.tzb
like "$WORK/.out" '"conflicts": {"data": 1, ' "the two edits of one column are one queued conflict (manual by default)"
[ "$(q hq "SELECT count(*) FROM tz_changes") $(q hq "SELECT name FROM employer WHERE ice = 'E1'")" = "0 Atlas HQ" ]
ok $? "P10: HQ's pending change was sealed by the import and stays provisionally"
[ "$(q hq "SELECT v FROM tz_meta WHERE k = 'head'")" != "$head0" ]; ok $? "the import moved main"
[ "$(git -C hq/history log -1 --format=%s HEAD^1)" = "HQ: 0 added, 1 changed, 0 deleted" ]
ok $? "the merge's first parent is HQ's own commit of its pending change"
"$S" -C hq conflicts resolve --branch CAS01 --ours >/dev/null; ok $? "HQ keeps its value"
q cas "UPDATE employer SET name = 'Atlas HQ' WHERE ice = 'E1'"

# ---- what HQ integrated last is the base: no false conflict ----
sqlite3 cas/store.db "UPDATE job_seeker SET name = 'Ali 2' WHERE id = 'C1'"
"$S" -C cas export --out c-a.tzb >/dev/null
check "HQ imports CAS01's edit of C1" "$S" -C hq import c-a.tzb
q hq "UPDATE job_seeker SET name = 'Ali HQ' WHERE id = 'C1'"
"$S" -C hq commit >/dev/null
q cas "INSERT INTO job_seeker VALUES ('C2', 'Omar', 'CAS01')"
"$S" -C cas export --out c-b.tzb >/dev/null
check "P13: a later bundle that carries C1's edit again is no conflict" "$S" -C hq import c-b.tzb
[ "$(q hq "SELECT group_concat(name, ',') FROM (SELECT name FROM job_seeker WHERE id IN ('C1', 'C2') ORDER BY id)")" = "Ali HQ,Omar" ]
ok $? "HQ keeps its later edit of C1 and takes C2"
"$S" -C hq export --for CAS01 --out hq-c.tzb >/dev/null && "$S" -C cas import hq-c.tzb >/dev/null
ok $? "CAS01 takes the answer"

# ---- ... and no lost update ----
q hq "UPDATE job_seeker SET name = 'Ali 2' WHERE id = 'C1'"
"$S" -C hq commit >/dev/null
q cas "UPDATE job_seeker SET name = 'Ali 3' WHERE id = 'C1'"
"$S" -C cas export --out c-c.tzb >/dev/null
check "P13: HQ's edit after the branch's base meets the branch's" "$S" -C hq import --json c-c.tzb
like "$WORK/.out" '"conflicts": {"data": 1, ' "one conflict is queued"
[ "$(q hq "SELECT name FROM job_seeker WHERE id = 'C1'")" = "Ali 2" ]; ok $? "HQ's value stays provisionally"
[ "$(q hq "SELECT count(*) FROM tz_conflicts WHERE status = 'open' AND tbl = 'job_seeker' AND key = 'C1'")" = 1 ]
ok $? "the entry names C1"
check "HQ verifies at the end" "$S" -C hq verify
done_testing

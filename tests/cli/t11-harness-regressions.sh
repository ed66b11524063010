#!/bin/bash
# t11-harness-regressions.sh - bugs the proof harness (tests/sim, docs/testing.md)
# found, each as a fixed scenario and as the simulation seed that found it.
#
# 1. A bundle whose first new commit is the branch's merge of an answer
#    (its first parent already integrated, the merge HQ's base's ancestor
#    only through another view) was integrated from the merge backwards to
#    its first parent: HQ's change that the answer had brought was undone
#    (a shared row reverted, sim seed 105), or a phantom "branch updated a
#    row HQ deleted" entry queued (seed 102).  store/sync.c integrate_bundle.
. "$TZ_SRC/tests/cli/lib.sh"
S=$SYNCCTL
cd "$WORK" || exit 1
export TZ_PASSPHRASE="t11 passphrase"
q() { sqlite3 "$1/store.db" "$2"; }

cat >schema.sql <<'SQL'
CREATE TABLE person(id TEXT PRIMARY KEY, owner TEXT NOT NULL, a TEXT);
CREATE TABLE place(id TEXT PRIMARY KEY, z TEXT);
INSERT INTO tz_track VALUES ('person', 'owned', 'owner'), ('place', 'shared', NULL);
SQL
"$S" init-hq hq >/dev/null && "$S" -C hq schema apply schema.sql >/dev/null
q hq "INSERT INTO person VALUES ('P1', 'B1', 'a0'); INSERT INTO place VALUES ('S', 'old')"
"$S" -C hq commit >/dev/null
"$S" -C hq branch add B1 --out b1.tze >/dev/null && "$S" init-branch b1 --enroll b1.tze >/dev/null
"$S" -C b1 export --out k.tzb >/dev/null && "$S" -C hq import k.tzb >/dev/null
check "enrolled, key bound" "$S" -C hq export --for B1 --out r0.tzb

q b1 "UPDATE person SET a = 'a1' WHERE id = 'P1'"
check "the branch exports X1 (HQ does not import it yet)" "$S" -C b1 export --out x1.tzb
q hq "UPDATE place SET z = 'new' WHERE id = 'S'"
check "HQ's answer R1 brings z = new" "$S" -C hq export --for B1 --out r1.tzb
check "the branch imports R1 over its unacknowledged X1: merge M1" "$S" -C b1 import r1.tzb
check "HQ imports X1: its view V2 joins X1's head and R1" "$S" -C hq import x1.tzb
check "HQ's answer R2" "$S" -C hq export --for B1 --out r2.tzb
q b1 "UPDATE person SET a = 'a2' WHERE id = 'P1'"
check "the branch imports R2 over M1: merge M2" "$S" -C b1 import r2.tzb
check "the branch exports X3 = M1, M2 (M1 first)" "$S" -C b1 export --out x3.tzb
check "HQ imports X3" "$S" -C hq import x3.tzb
[ "$(q hq "SELECT z FROM place WHERE id = 'S'")" = new ]
ok $? "HQ's z = new survives (integrated backwards from M1 it was reverted to old)"
[ "$(q hq "SELECT a FROM person WHERE id = 'P1'")" = a2 ]
ok $? "the branch's last edit arrives"
[ "$(q hq "SELECT count(*) FROM tz_conflicts")" = 0 ]
ok $? "no entry queued: nothing conflicted"
check "HQ verifies" "$S" -C hq verify

SIM="$TZ_BUILD/tests/tz-sim"
for seed in 102 105; do
	check "sim seed $seed (steps 60) converges to the model" "$SIM" --seed "$seed" --steps 60
done
done_testing

#!/bin/bash
# t10-merge.sh - HQ's three-way merge under the declared policies and the
# conflict queue (docs/merge.md): domain.md's C3 (HQ corrects identity
# columns while the branch edits contact columns) and C12 (two edits of one
# manual column), resolution as a signed commit that stock git verifies,
# the resolved value at the branch after its next import, the branch's own
# merge of newer local commits (local wins locally, HQ decides at the next
# push), update against delete, insert against insert, bulk resolution.
. "$TZ_SRC/tests/cli/lib.sh"
S=$SYNCCTL
cd "$WORK" || exit 1
export TZ_PASSPHRASE="t10 passphrase"

cat >schema.sql <<'SQL'
CREATE TABLE job_seeker(id TEXT PRIMARY KEY, id_number TEXT, name_lat TEXT, birth_date TEXT, phone TEXT,
  email TEXT, address TEXT, city TEXT, status TEXT, owner_branch TEXT NOT NULL);
CREATE TABLE employer(ice TEXT PRIMARY KEY, name TEXT, sector TEXT);
INSERT INTO tz_track VALUES ('job_seeker', 'owned', 'owner_branch'), ('employer', 'shared', NULL);
-- HQ decides identity, the owning branch its contact columns; the rest is manual
INSERT INTO tz_policy VALUES ('job_seeker', '*', 'manual'), ('job_seeker', 'id_number', 'hq'),
  ('job_seeker', 'name_lat', 'hq'), ('job_seeker', 'birth_date', 'hq'), ('job_seeker', 'phone', 'owner'),
  ('job_seeker', 'email', 'owner'), ('job_seeker', 'where', 'owner'), ('employer', '@delete', 'manual');
INSERT INTO tz_group VALUES ('job_seeker', 'where', 'address'), ('job_seeker', 'where', 'city');
SQL
"$S" init-hq hq >/dev/null && check "schema apply with policies and a group" "$S" -C hq schema apply schema.sql
like <(git -C hq/history ls-tree -r --name-only HEAD) '^_schema/tz_policy/job_seeker$' "policies are versioned in _schema/"
like <(git -C hq/history ls-tree -r --name-only HEAD) '^_schema/tz_group/job_seeker$' "groups too"
echo "INSERT INTO tz_policy VALUES ('job_seeker', 'city', 'hq');" >bad1.sql
fails "a policy on a grouped column is refused" 1 "$S" -C hq schema apply bad1.sql
like "$WORK/.err" "in group 'where': declare the policy of the group" "the refusal says why"
echo "INSERT INTO tz_policy VALUES ('employer', 'name', 'owner');" >bad2.sql
fails "owner on a shared table is refused" 1 "$S" -C hq schema apply bad2.sql
echo "INSERT INTO tz_policy VALUES ('employer', 'name', 'newest');" >bad3.sql
fails "an unknown policy is refused" 1 "$S" -C hq schema apply bad3.sql

q() { sqlite3 "$1/store.db" "$2"; }
q hq "INSERT INTO job_seeker VALUES
  ('C1', 'BE1', 'Ali', '1990-01-01', '0600', 'a@x', '1 rue', 'Casa', 'active', 'CAS01'),
  ('C2', 'BE2', 'Sara', '1991-02-02', '0611', 's@x', '2 rue', 'Casa', 'active', 'CAS01'),
  ('C3', 'BE3', 'Omar', '1992-03-03', '0622', 'o@x', '3 rue', 'Casa', 'active', 'CAS01');
  INSERT INTO employer VALUES ('E1', 'Atlas', 'textile'), ('E2', 'Sebou', 'food');"
"$S" -C hq commit -m base >/dev/null
"$S" -C hq branch add CAS01 --out cas.tze >/dev/null && "$S" init-branch cas --enroll cas.tze >/dev/null
check "the branch enrols with the declarations" test "$(q cas "SELECT count(*) FROM tz_policy")" = 8
[ "$(q cas "SELECT grp FROM tz_group WHERE col = 'city'")" = where ]; ok $? "and the group"
cycle() {
	"$S" -C cas export --out "$1.tzb" >/dev/null &&
	"$S" -C hq import --json "$1.tzb" >"imp-$1.json" 2>"imp-$1.err" &&
	"$S" -C hq export --for CAS01 --out "hq-$1.tzb" >/dev/null &&
	"$S" -C cas import "hq-$1.tzb" >/dev/null
}
cycle c0; ok $? "first cycle"

# ---- C3 and C12 in one offline period ----
q hq "UPDATE job_seeker SET name_lat = 'Aly', id_number = 'BE1X' WHERE id = 'C1'"     # identity (C3)
q cas "UPDATE job_seeker SET phone = '0699', address = '9 av', city = 'Rabat' WHERE id = 'C1'"
q hq "UPDATE job_seeker SET status = 'placed' WHERE id = 'C2'"                        # one manual column (C12)
q cas "UPDATE job_seeker SET status = 'training' WHERE id = 'C2'"
"$S" -C hq commit >/dev/null
"$S" -C cas export --out c1.tzb >/dev/null
check "HQ imports: nothing blocks, exit 0" "$S" -C hq import --json c1.tzb
like "$WORK/.out" '"rows_both": 2, "conflicts": {"data": 1, "delete": 0, "insert": 0, "unauthorized": 0, "orphan": 0, "invariant": 0}, "duplicates": 0, "repointed": 0, "conflict_ids": \[1\]' \
	"two rows changed on both sides, one conflict queued"
[ "$(q hq "SELECT id_number || name_lat || phone || address || city FROM job_seeker WHERE id = 'C1'")" = "BE1XAly06999 avRabat" ]
ok $? "C3: HQ's identity and the branch's contact columns merged cleanly"
[ "$(q hq "SELECT status FROM job_seeker WHERE id = 'C2'")" = placed ]; ok $? "C12: HQ's value stays provisionally"
check "conflicts list --json" "$S" -C hq conflicts list --json
like "$WORK/.out" '"id": 1, "kind": "data", "status": "open", "table": "job_seeker", "key": \["C2"\]' "C12: one entry, its key"
like "$WORK/.out" '"column": "status", "group": null, "base": "active", "ours": "placed", "theirs": "training", "provisional": "placed"' \
	"C12: base, ours and theirs of the column"
like "$WORK/.out" '"branch": "CAS01", "policy": "manual"' "with branch and policy"
[ "$(jq length "$WORK/.out" 2>/dev/null || grep -o '"id":' "$WORK/.out" | wc -l)" = 1 ]; ok $? "exactly one entry"
check "conflicts show 1" "$S" -C hq conflicts show 1
like "$WORK/.out" "theirs \(CAS01\): t training" "show prints the branch's value"
check "status counts it" "$S" -C hq status
like "$WORK/.out" "^conflicts 1 open" "status: 1 open conflict"

# resolution with --theirs, signed by an administrator
"$S" -C hq keys add-admin amina >/dev/null
fails "resolve without saying how is a usage error" 2 "$S" -C hq conflicts resolve 1
fails "resolve of an unknown id fails" 1 "$S" -C hq conflicts resolve 99 --theirs
fails "an unknown administrator is refused" 1 "$S" -C hq conflicts resolve 1 --theirs --as nobody
check "C12: resolve 1 --theirs --as amina" "$S" -C hq conflicts resolve 1 --theirs --as amina
[ "$(q hq "SELECT status FROM job_seeker WHERE id = 'C2'")" = training ]; ok $? "HQ now holds the branch's value"
[ "$(git -C hq/history log -1 --format='%an|%s')" = "amina|resolve conflict 1: theirs" ]
ok $? "the resolution is one commit by amina naming the conflict"
"$S" -C hq keys allowed-signers >signers
git -C hq/history -c gpg.format=ssh -c gpg.ssh.allowedSignersFile="$WORK/signers" verify-commit HEAD >/dev/null 2>git.err
ok $? "stock git verifies the resolution commit"
like git.err 'Good "git" signature for amina' "signed by amina's key"
fails "a resolved conflict is not resolved again" 1 "$S" -C hq conflicts resolve 1 --ours
like "$WORK/.err" "conflict 1 is resolved already" "it says so"
check "list --all shows it resolved" "$S" -C hq conflicts list --all --json
like "$WORK/.out" '"status": "resolved".*"resolved_by": "amina", "resolution": "theirs"' "with who and how"
"$S" -C hq export --for CAS01 --out h1.tzb >/dev/null && "$S" -C cas import h1.tzb >/dev/null
ok $? "CAS01 imports HQ's answer"
[ "$(q cas "SELECT status || ',' || name_lat || ',' || city FROM job_seeker WHERE id IN ('C1', 'C2') ORDER BY id")" = "$(printf 'active,Aly,Rabat\ntraining,Sara,Casa')" ]
ok $? "the branch has the resolved value and HQ's correction"
check "HQ verifies" "$S" -C hq verify
check "CAS01 verifies" "$S" -C cas verify

# ---- P15: local commits after an export: local wins locally, HQ decides at the next push ----
q cas "UPDATE job_seeker SET status = 'training' WHERE id = 'C3'"
"$S" -C cas export --out c2.tzb >/dev/null                   # sent, not answered yet
q cas "UPDATE job_seeker SET status = 'interview', email = 'o2@x' WHERE id = 'C3'"
"$S" -C cas commit >/dev/null                                # after the export
q hq "UPDATE job_seeker SET status = 'placed', name_lat = 'Omar B.' WHERE id = 'C3'"
"$S" -C hq commit >/dev/null
check "HQ imports the first export" "$S" -C hq import --json c2.tzb
like "$WORK/.out" '"conflicts": {"data": 1,' "C3's status conflicts (manual)"
"$S" -C hq export --for CAS01 --out h2.tzb >/dev/null
check "CAS01 imports the answer over its newer commit" "$S" -C cas import --json h2.tzb
like "$WORK/.out" '"merged_local": true' "a local merge"
[ "$(q cas "SELECT status || ',' || email || ',' || name_lat FROM job_seeker WHERE id = 'C3'")" = "interview,o2@x,Omar B." ]
ok $? "locally: the branch's newer values win their columns, HQ's correction of another column arrives"
"$S" -C cas export --out c3.tzb >/dev/null
check "HQ imports the local merge" "$S" -C hq import --json c3.tzb
like "$WORK/.out" '"conflicts": {"data": 1,' "HQ re-decides the status under its policy: queued again"
[ "$(q hq "SELECT status || ',' || email || ',' || name_lat FROM job_seeker WHERE id = 'C3'")" = "placed,o2@x,Omar B." ]
ok $? "HQ: its status stays provisionally, the owner's e-mail is taken, its correction is kept"
check "HQ verifies after the local merge" "$S" -C hq verify
[ "$(q hq "SELECT count(*) FROM tz_conflicts WHERE key = 'C3' AND merge_commit = (SELECT max(merge_commit) FROM tz_conflicts WHERE key = 'C3' AND id = (SELECT max(id) FROM tz_conflicts))")" = 1 ]
ok $? "one entry per row per merge (the status conflicted in both stretches)"
c3=$(q hq "SELECT id FROM tz_conflicts WHERE status = 'open' AND key = 'C3'")
fails "an id named twice is refused" 1 "$S" -C hq conflicts resolve $c3 $c3 --ours
check "HQ keeps its status for C3" "$S" -C hq conflicts resolve --branch CAS01 --ours
# the branch has not imported HQ's answer: its next bundle carries the local
# merge and its stretch again, which HQ integrated already
q cas "UPDATE job_seeker SET email = 'o3@x' WHERE id = 'C3'"
"$S" -C cas export --out c3b.tzb >/dev/null
check "HQ imports a bundle that re-sends what it integrated" "$S" -C hq import --json c3b.tzb
like "$WORK/.out" '"conflicts": {"data": 0, "delete": 0, "insert": 0, "unauthorized": 0, "orphan": 0, "invariant": 0}' "the stretch HQ had is not merged again: no new entry"
[ "$(q hq "SELECT status || ',' || email FROM job_seeker WHERE id = 'C3'")" = "placed,o3@x" ]
ok $? "the administrator's decision stands; the new e-mail is taken"
"$S" -C hq export --for CAS01 --out h3b.tzb >/dev/null && "$S" -C cas import h3b.tzb >/dev/null
ok $? "CAS01 takes the answer"

# ---- P14: a row the branch is editing (uncommitted) when HQ's correction arrives ----
q hq "UPDATE job_seeker SET birth_date = '1990-01-02' WHERE id = 'C1'"
"$S" -C hq commit >/dev/null
"$S" -C hq export --for CAS01 --out h3.tzb >/dev/null
q cas "UPDATE job_seeker SET phone = '0655' WHERE id = 'C1'"
check "CAS01 imports HQ's correction while C1 has an uncommitted edit" "$S" -C cas import h3.tzb
[ "$(q cas "SELECT phone || ',' || birth_date FROM job_seeker WHERE id = 'C1'")" = "0655,1990-01-02" ]
ok $? "the local edit stays and HQ's corrected column is brought forward"
"$S" -C cas export --out c5.tzb >/dev/null && "$S" -C hq import c5.tzb >/dev/null; ok $? "the next push"
[ "$(q hq "SELECT phone || ',' || birth_date FROM job_seeker WHERE id = 'C1'")" = "0655,1990-01-02" ]
ok $? "HQ takes the phone and keeps its correction (no stale copy came back)"

# ---- P14 + P15: an uncommitted edit of a manual column HQ's answer changes too ----
# The import seals the branch's pending change into a commit first, so that
# HQ's answer is merged under it (P15) and HQ re-decides the column under
# its policy at the next push; before, the branch's next commit named the
# answer as its base and HQ took the branch's value as a plain change
q hq "UPDATE job_seeker SET status = 'closed' WHERE id = 'C2'"
"$S" -C hq commit >/dev/null
"$S" -C hq export --for CAS01 --out h6.tzb >/dev/null
q cas "UPDATE job_seeker SET status = 'on leave' WHERE id = 'C2'"          # not committed
check "CAS01 imports HQ's change of a manual column it is editing" "$S" -C cas import --json h6.tzb
like "$WORK/.out" '"sealed": 1,' "the import committed the pending change first"
like "$WORK/.out" '"merged_local": true' "and merged HQ's answer under it"
[ "$(q cas "SELECT status FROM job_seeker WHERE id = 'C2'")/$(q cas "SELECT count(*) FROM tz_changes")" = "on leave/0" ]
ok $? "locally the branch's value stays (P14), now committed: no change left pending"
check "CAS01 verifies after the sealed import" "$S" -C cas verify
"$S" -C cas export --out c6.tzb >/dev/null; ok $? "CAS01 pushes"
check "HQ imports the branch's value of the manual column" "$S" -C hq import --json c6.tzb
like "$WORK/.out" '"conflicts": {"data": 1,' "HQ asks the column's policy: one data conflict queued"
[ "$(q hq "SELECT status FROM job_seeker WHERE id = 'C2'")" = closed ]; ok $? "HQ's value stays provisionally"
check "conflicts list --json" "$S" -C hq conflicts list --json
like "$WORK/.out" '"key": \["C2"\].*"column": "status", "group": null, "base": "training", "ours": "closed", "theirs": "on leave", "provisional": "closed"' \
	"the entry names HQ's and the branch's values"
check "HQ verifies after the re-decision" "$S" -C hq verify
check "HQ keeps its value" "$S" -C hq conflicts resolve --branch CAS01 --ours

# ---- update against delete, insert against insert ----
q hq "DELETE FROM employer WHERE ice = 'E1'"
q cas "UPDATE employer SET sector = 'garments' WHERE ice = 'E1'"
q hq "INSERT INTO employer VALUES ('E9', 'Nour', 'retail')"
q cas "INSERT INTO employer VALUES ('E9', 'Nour SARL', 'retail')"
"$S" -C hq commit >/dev/null
"$S" -C cas export --out c4.tzb >/dev/null
check "HQ imports a delete/update and an insert/insert" "$S" -C hq import --json c4.tzb
like "$WORK/.out" '"delete": 1, "insert": 1' "one delete and one insert conflict"
[ "$(q hq "SELECT sector FROM employer WHERE ice = 'E1'")" = garments ]; ok $? "@delete manual: the updated row is kept"
[ "$(q hq "SELECT name FROM employer WHERE ice = 'E9'")" = Nour ]; ok $? "insert/insert: HQ's value provisional"
e1=$(q hq "SELECT id FROM tz_conflicts WHERE status = 'open' AND tbl = 'employer' AND kind = 'delete'")
check "resolve the delete conflict --ours (HQ deleted E1)" "$S" -C hq conflicts resolve "$e1" --ours
check "bulk: every open employer conflict --set name" "$S" -C hq conflicts resolve --table employer --set "name=Nour SA"
[ "$(q hq "SELECT count(*) FROM employer WHERE ice = 'E1'")/$(q hq "SELECT name FROM employer WHERE ice = 'E9'")" = "0/Nour SA" ]
ok $? "--ours deleted E1 again (HQ's side) and --set named E9"
[ "$(q hq "SELECT count(*) FROM tz_conflicts WHERE status = 'open' AND tbl = 'employer'")" = 0 ]; ok $? "none left open"
fails "--set of an unknown column is refused" 1 "$S" -C hq conflicts resolve --branch CAS01 --set nope=1
[ "$(q hq "SELECT count(*) FROM tz_changes")" = 0 ]; ok $? "the refused resolution wrote nothing"
check "HQ verifies at the end" "$S" -C hq verify
done_testing

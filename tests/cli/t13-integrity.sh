#!/bin/bash
# t13-integrity.sh - HQ's checks after each merge (docs/integrity.md):
# domain.md's C1 (one person registered at two branches offline: one
# duplicate, merged by an administrator, children re-pointed, both branches
# converge and the dropped row never comes back), C4 (an offer filled past
# its positions at two branches: one invariant entry), a bundle validly
# signed by a branch that writes another branch's partition and an hq table
# (nothing applied, unauthorized entries, the branch's view corrected at its
# next reply), dangling references (orphan), the declarations' checks.
. "$TZ_SRC/tests/cli/lib.sh"
S=$SYNCCTL
cd "$WORK" || exit 1
export TZ_PASSPHRASE="t13 passphrase"

cat >schema.sql <<'SQL'
CREATE TABLE territory(code TEXT PRIMARY KEY, label TEXT NOT NULL);
CREATE TABLE job_seeker(id TEXT PRIMARY KEY, id_doc_type TEXT NOT NULL, id_doc_number TEXT, name TEXT,
  phone TEXT, territory_code TEXT REFERENCES territory(code), owner_branch TEXT NOT NULL);
CREATE TABLE job_offer(id TEXT PRIMARY KEY, title TEXT, positions_total INTEGER NOT NULL);
CREATE TABLE application(id TEXT PRIMARY KEY, job_seeker_id TEXT NOT NULL REFERENCES job_seeker(id),
  job_offer_id TEXT REFERENCES job_offer(id), owner_branch TEXT NOT NULL);
CREATE INDEX application_seeker ON application(job_seeker_id);
CREATE TABLE interview(id TEXT PRIMARY KEY, job_seeker_id TEXT REFERENCES job_seeker(id), at TEXT,
  owner_branch TEXT NOT NULL);
CREATE TABLE placement(id TEXT PRIMARY KEY, job_seeker_id TEXT REFERENCES job_seeker(id),
  job_offer_id TEXT NOT NULL REFERENCES job_offer(id), status TEXT NOT NULL, owner_branch TEXT NOT NULL);
INSERT INTO tz_track VALUES ('territory', 'hq', NULL), ('job_seeker', 'owned', 'owner_branch'),
  ('job_offer', 'shared', NULL), ('application', 'owned', 'owner_branch'),
  ('interview', 'owned', 'owner_branch'), ('placement', 'owned', 'owner_branch');
INSERT INTO tz_unique VALUES ('person_doc', 'job_seeker', 'id_doc_type,id_doc_number', NULL);
INSERT INTO tz_access VALUES ('job_seeker', 'id_doc_number', 'hq');
INSERT INTO tz_invariant VALUES ('offer_capacity',
  'SELECT o.id, o.positions_total, count(*) AS placed FROM job_offer o JOIN placement p ON p.job_offer_id = o.id
   WHERE p.status <> ''cancelled'' AND o.id IN (SELECT x.job_offer_id FROM placement x
     JOIN tz_touched t ON t.tbl = ''placement'' AND t.pk = x.id)
   GROUP BY o.id HAVING count(*) > o.positions_total');
SQL
q() { sqlite3 "$1/store.db" "$2"; }
"$S" init-hq hq >/dev/null

# ---- the declarations ----
echo "CREATE TABLE t(id TEXT PRIMARY KEY, doc TEXT UNIQUE); INSERT INTO tz_track VALUES ('t', 'shared', NULL);" >u1.sql
fails "a UNIQUE constraint on a tracked table is refused" 1 "$S" -C hq schema apply u1.sql
like "$WORK/.err" "declare it in tz_unique" "the refusal points to tz_unique"
printf '%s\n' "CREATE TABLE t(id TEXT PRIMARY KEY, doc TEXT); CREATE UNIQUE INDEX t_doc ON t(doc);" \
	"INSERT INTO tz_track VALUES ('t', 'shared', NULL);" >u2.sql
fails "a unique index too" 1 "$S" -C hq schema apply u2.sql
printf '%s\n' "CREATE TABLE t(id TEXT PRIMARY KEY, doc TEXT); INSERT INTO tz_track VALUES ('t', 'shared', NULL);" \
	"INSERT INTO tz_unique VALUES ('d', 't', 'doc,nope', NULL);" >u3.sql
fails "tz_unique naming an unknown column is refused" 1 "$S" -C hq schema apply u3.sql
like "$WORK/.err" "'nope' is not a column of table 't'" "it names the column"
sed -i 's/doc,nope., NULL/doc'"'"', '"'"'fuzzy'"'"'/' u3.sql
fails "an unknown normalisation is refused" 1 "$S" -C hq schema apply u3.sql
printf '%s\n' "CREATE TABLE t(id TEXT PRIMARY KEY, doc TEXT); INSERT INTO tz_track VALUES ('t', 'shared', NULL);" \
	"INSERT INTO tz_invariant VALUES ('w', 'DELETE FROM t');" >u4.sql
fails "an invariant that writes is refused" 1 "$S" -C hq schema apply u4.sql
[ "$(q hq "SELECT count(*) FROM sqlite_master WHERE name = 't'")" = 0 ]; ok $? "the refusals left the store as it was"
check "the schema with tz_unique and tz_invariant applies" "$S" -C hq schema apply schema.sql
like <(git -C hq/history ls-tree -r --name-only HEAD) '^_schema/tz_unique/job_seeker$' "unique keys are versioned in _schema/"
like <(git -C hq/history ls-tree -r --name-only HEAD) '^_schema/tz_invariant$' "and invariants"

q hq "INSERT INTO territory VALUES ('CASA', 'Casablanca'), ('RBT', 'Rabat');
  INSERT INTO job_offer VALUES ('O1', 'Picking', 3), ('O2', 'Packing', 10);
  INSERT INTO job_seeker VALUES ('R9', 'CNIE', 'AB1', 'Rabia', '0600', 'RBT', 'RAB01');"
"$S" -C hq commit -m base >/dev/null
"$S" -C hq branch add CAS01 --out cas.tze >/dev/null && "$S" init-branch cas --enroll cas.tze >/dev/null
"$S" -C hq branch add RAB01 --out rab.tze >/dev/null && "$S" init-branch rab --enroll rab.tze >/dev/null
[ "$(q cas "SELECT count(*) FROM tz_unique")/$(q cas "SELECT count(*) FROM tz_invariant")" = 1/1 ]
ok $? "the branches enrol with the declarations"
# push BRANCH DIR: the branch's bundle into HQ (JSON in imp-DIR.json); reply BRANCH DIR: HQ's answer back
push() { "$S" -C "$2" export --out "$2.tzb" >/dev/null && "$S" -C hq import --json "$2.tzb" >"imp-$2.json" 2>"imp-$2.err"; }
reply() { "$S" -C hq export --for "$1" --out "hq-$2.tzb" >/dev/null && "$S" -C "$2" import "hq-$2.tzb" >/dev/null; }
push CAS01 cas && reply CAS01 cas; ok $? "CAS01's first cycle"
push RAB01 rab && reply RAB01 rab; ok $? "RAB01's first cycle"

# ---- C1: the same person registered at two branches offline ----
q cas "INSERT INTO job_seeker VALUES ('J1', 'CNIE', 'be 123456', 'Youssef', '0611', 'CASA', 'CAS01');
  INSERT INTO application VALUES ('A1', 'J1', 'O2', 'CAS01'); INSERT INTO interview VALUES ('I1', 'J1', 'mon', 'CAS01');"
q rab "INSERT INTO job_seeker VALUES ('J2', 'CNIE', 'BE١٢٣٤٥٦', 'Youssef', '0622', 'RBT', 'RAB01');
  INSERT INTO application VALUES ('A2', 'J2', 'O2', 'RAB01'); INSERT INTO interview VALUES ('I2', 'J2', 'tue', 'RAB01');"
push CAS01 cas; ok $? "CAS01 pushes J1"
check "RAB01 pushes J2: nothing blocks" "$S" -C rab export --out rab.tzb
check "HQ imports it" "$S" -C hq import --json rab.tzb
like "$WORK/.out" '"duplicates": 1' "one duplicate queued (Arabic-Indic digits, case and spaces normalised)"
check "duplicates list --json" "$S" -C hq duplicates list --json
like "$WORK/.out" '"id": 1, "status": "open", "unique": "person_doc", "table": "job_seeker", "rows": \[\{"key": \["J1"\], "partition": "CAS01"\}, \{"key": \["J2"\], "partition": "RAB01"\}\], "branch": "RAB01"' \
	"the entry names both rows, their partitions and the branch"
[ "$(q hq "SELECT count(*) FROM job_seeker WHERE id IN ('J1', 'J2')")" = 2 ]; ok $? "both rows are kept until a person decides"
check "status counts it" "$S" -C hq status
like "$WORK/.out" "^duplicates 1 open" "status: 1 open duplicate"
check "duplicates list (text)" "$S" -C hq duplicates list
like "$WORK/.out" "J1 \[CAS01\]  and  t J2 \[RAB01\]" "one line per duplicate"
"$S" -C hq keys add-admin amina >/dev/null
fails "merge with one key is a usage error" 2 "$S" -C hq duplicates merge J1
fails "merge of an unknown key fails" 1 "$S" -C hq duplicates merge J1 J404
fails "a row merged into itself is refused" 1 "$S" -C hq duplicates merge J1 J1
check "duplicates merge J1 J2 --set phone=0622 --as amina" "$S" -C hq duplicates merge --json J1 J2 --set phone=0622 --as amina
like "$WORK/.out" '"table": "job_seeker", "kept": "J1", "dropped": "J2", "repointed": 2, "duplicates_resolved": 1' \
	"J2's application and interview are re-pointed"
[ "$(q hq "SELECT phone FROM job_seeker WHERE id = 'J1'")/$(q hq "SELECT count(*) FROM job_seeker WHERE id = 'J2'")" = 0622/0 ]
ok $? "the survivor takes the chosen phone; J2 is gone"
[ "$(q hq "SELECT group_concat(job_seeker_id) FROM (SELECT job_seeker_id FROM application UNION ALL SELECT job_seeker_id FROM interview)")" = "J1,J1,J1,J1" ]
ok $? "every application and interview points to J1"
[ "$(git -C hq/history log -1 --format='%an|%s')" = "amina|duplicates merge job_seeker: J2 into J1" ]
ok $? "one commit signed by amina"
like <(git -C hq/history ls-tree -r --name-only HEAD) '^_redirect/job_seeker$' "the redirect is in the history"
check "HQ verifies after the merge" "$S" -C hq verify
# RAB01 keeps working offline on J2 before it learns of the merge
q rab "INSERT INTO interview VALUES ('I3', 'J2', 'wed', 'RAB01')"
q rab "UPDATE job_seeker SET phone = '0633' WHERE id = 'J2'"
check "RAB01 pushes changes to the dropped row" "$S" -C rab export --out rab2.tzb
check "HQ imports them" "$S" -C hq import --json rab2.tzb
like "$WORK/.out" '"unauthorized": 1' "the change to J2 is queued, not applied"
like "$WORK/.out" '"repointed": 1' "the new interview is re-pointed to J1"
[ "$(q hq "SELECT count(*) FROM job_seeker WHERE id = 'J2'")/$(q hq "SELECT job_seeker_id FROM interview WHERE id = 'I3'")" = 0/J1 ]
ok $? "HQ does not re-create J2; I3 points to J1"
check "conflicts list names the redirect" "$S" -C hq conflicts list --json
like "$WORK/.out" '"kind": "unauthorized", "status": "open", "table": "job_seeker", "key": \["J2"\], "partition": "RAB01", "branch": "RAB01", "policy": "redirect", "note": "merged into J1' \
	"an unauthorized entry for J2"
reply RAB01 rab; ok $? "RAB01 imports HQ's answer"
reply CAS01 cas; ok $? "CAS01 imports HQ's answer"
[ "$(q rab "SELECT count(*) FROM job_seeker WHERE id = 'J2'")" = 0 ]; ok $? "RAB01 no longer has J2"
[ "$(q rab "SELECT group_concat(job_seeker_id || ':' || id) FROM (SELECT id, job_seeker_id FROM application UNION ALL SELECT id, job_seeker_id FROM interview ORDER BY id)")" = "J1:A2,J1:I2,J1:I3" ]
ok $? "RAB01's application and interviews point to J1"
[ "$(q cas "SELECT phone FROM job_seeker WHERE id = 'J1'")" = 0622 ]; ok $? "CAS01 has the survivor's values"
check "RAB01 verifies" "$S" -C rab verify
check "CAS01 verifies" "$S" -C cas verify
push RAB01 rab && push CAS01 cas; ok $? "both push again"
[ "$(q hq "SELECT count(*) FROM job_seeker WHERE id = 'J2'")/$(q hq "SELECT count(*) FROM tz_duplicates WHERE status = 'open'")" = 0/0 ]
ok $? "neither re-creates J2; no duplicate comes back"
[ "$(q hq "SELECT count(*) FROM tz_changes")" = 0 ]; ok $? "HQ has nothing pending"

# ---- C4: an offer filled past its positions at two branches ----
q cas "INSERT INTO placement VALUES ('P1', 'J1', 'O1', 'signed', 'CAS01'), ('P2', 'J1', 'O1', 'signed', 'CAS01')"
q rab "INSERT INTO placement VALUES ('P3', 'R9', 'O1', 'signed', 'RAB01'), ('P4', 'R9', 'O1', 'signed', 'RAB01')"
push CAS01 cas; ok $? "CAS01 pushes two placements on O1 (3 positions)"
like imp-cas.json '"invariant": 0' "two of three: no entry"
push RAB01 rab; ok $? "RAB01 pushes two more"
like imp-rab.json '"invariant": 1' "C4: one invariant entry"
[ "$(q hq "SELECT count(*) FROM placement WHERE job_offer_id = 'O1'")" = 4 ]; ok $? "no placement is dropped"
check "conflicts list --json" "$S" -C hq conflicts list --json
like "$WORK/.out" '"kind": "invariant", "status": "open", "table": "offer_capacity", "key": \["O1"\], "partition": "", "branch": "RAB01", "policy": "invariant", "note": "invariant offer_capacity: id=\\"O1\\", positions_total=3, placed=4"' \
	"the entry names the invariant, the offer and the query's row"
inv=$(q hq "SELECT id FROM tz_conflicts WHERE kind = 'invariant'")
q rab "UPDATE placement SET status = 'waiting' WHERE id = 'P4'"
push RAB01 rab; ok $? "RAB01 touches a placement of O1 again"
[ "$(q hq "SELECT count(*) FROM tz_conflicts WHERE kind = 'invariant'")" = 1 ]; ok $? "still one entry while it is open"
fails "an invariant entry is not resolved with --theirs" 1 "$S" -C hq conflicts resolve "$inv" --theirs
like "$WORK/.err" "acknowledge it with --ours" "it says how"
check "the administrator acknowledges it (--ours)" "$S" -C hq conflicts resolve "$inv" --ours --as amina

# ---- a branch writes another branch's partition and an hq table ----
# (the branch's own store writes them, so the bundle is validly signed by
# CAS01, as t09 does)
q cas "INSERT INTO job_seeker VALUES ('X1', 'CNIE', 'ZZ9', 'Intrus', NULL, 'RBT', 'RAB01');
  UPDATE territory SET label = 'Casa (CAS01)' WHERE code = 'CASA'"
push CAS01 cas; ok $? "HQ imports CAS01's bundle: nothing blocks"
like imp-cas.json '"unauthorized": 2' "two unauthorized entries"
[ "$(q hq "SELECT count(*) FROM job_seeker WHERE id = 'X1'")/$(q hq "SELECT label FROM territory WHERE code = 'CASA'")" = 0/Casablanca ]
ok $? "nothing applied at HQ"
check "conflicts list --branch CAS01 --json" "$S" -C hq conflicts list --branch CAS01 --json
like "$WORK/.out" '"kind": "unauthorized", "status": "open", "table": "territory", "key": \["CASA"\], "partition": "_hq", "branch": "CAS01", "policy": "rights", "note": "not applied: an hq table: only HQ writes it"' \
	"the hq table's change, with the branch"
like "$WORK/.out" '"column": "label", "group": null, "base": null, "ours": "Casablanca", "theirs": "Casa \(CAS01\)"' \
	"HQ's and the branch's values"
like "$WORK/.out" '"table": "job_seeker", "key": \["X1"\], "partition": "RAB01", "branch": "CAS01", "policy": "rights", "note": "not applied: another branch.s partition"' \
	"the row in RAB01's partition"
[ "$(q hq "SELECT count(*) FROM tz_conflicts WHERE kind = 'unauthorized' AND branch = 'CAS01' AND theirs_commit <> ''")" = 2 ]
ok $? "entries carry the branch's commit"
reply CAS01 cas; ok $? "CAS01 imports HQ's answer"
[ "$(q cas "SELECT count(*) FROM job_seeker WHERE id = 'X1'")/$(q cas "SELECT label FROM territory WHERE code = 'CASA'")" = 0/Casablanca ]
ok $? "CAS01's view is corrected"
check "CAS01 verifies" "$S" -C cas verify
tid=$(q hq "SELECT id FROM tz_conflicts WHERE kind = 'unauthorized' AND tbl = 'territory'")
check "the administrator authorises the label (--theirs)" "$S" -C hq conflicts resolve "$tid" --theirs
[ "$(q hq "SELECT label FROM territory WHERE code = 'CASA'")" = "Casa (CAS01)" ]; ok $? "HQ now holds it"

# ---- a dangling reference ----
q cas "INSERT INTO application VALUES ('A9', 'GHOST', 'O2', 'CAS01')"
push CAS01 cas; ok $? "CAS01 pushes an application of an unknown job seeker"
like imp-cas.json '"orphan": 1' "one orphan entry"
check "conflicts list --table application --json" "$S" -C hq conflicts list --table application --json
like "$WORK/.out" '"kind": "orphan", "status": "open", "table": "application", "key": \["A9"\], "partition": "CAS01", "branch": "CAS01", "policy": "reference", "note": "job_seeker_id references job_seeker\(id\) = \\"GHOST\\": no such row"' \
	"the entry names the reference"
oid=$(q hq "SELECT id FROM tz_conflicts WHERE kind = 'orphan'")
fails "an orphan has no --theirs" 1 "$S" -C hq conflicts resolve "$oid" --theirs
check "resolve it with --set job_seeker_id=J1" "$S" -C hq conflicts resolve "$oid" --set job_seeker_id=J1
[ "$(q hq "SELECT job_seeker_id FROM application WHERE id = 'A9'")" = J1 ]; ok $? "the reference is set"
# ---- tz_access: an identity column only HQ changes ----
q cas "UPDATE job_seeker SET id_doc_number = 'BE999', phone = '0644' WHERE id = 'J1'"
push CAS01 cas; ok $? "CAS01 pushes a change of J1's document number"
like imp-cas.json '"why": "a column only HQ changes \(tz_access\)"' "refused: only HQ changes it"
[ "$(q hq "SELECT id_doc_number || ',' || phone FROM job_seeker WHERE id = 'J1'")" = "be 123456,0622" ]
ok $? "not applied (the row's change is queued whole)"
acc=$(q hq "SELECT id FROM tz_conflicts WHERE kind = 'unauthorized' AND note LIKE '%tz_access%'")
[ -n "$acc" ]; ok $? "queued as unauthorized"
reply CAS01 cas; ok $? "CAS01 imports HQ's answer"
[ "$(q cas "SELECT id_doc_number FROM job_seeker WHERE id = 'J1'")" = "be 123456" ]; ok $? "CAS01's view is corrected"
check "HQ keeps its values (--ours)" "$S" -C hq conflicts resolve "$acc" --ours

# ---- C2: HQ transfers J1 to RAB01 while CAS01 edits it offline ----
q hq "UPDATE job_seeker SET owner_branch = 'RAB01', territory_code = 'RBT' WHERE id = 'J1'"
"$S" -C hq commit -m "J1 moves to Rabat" >/dev/null
q cas "UPDATE job_seeker SET phone = '0699' WHERE id = 'J1'"
push CAS01 cas; ok $? "CAS01 pushes its offline edit of J1"
like imp-cas.json '"unauthorized": 1' "the edit is queued"
like imp-cas.json '"why": "the row moved to another branch: this change is queued"' "and says why"
[ "$(q hq "SELECT owner_branch || ',' || phone || ',' || (SELECT count(*) FROM job_seeker WHERE id = 'J1') FROM job_seeker WHERE id = 'J1'")" = "RAB01,0622,1" ]
ok $? "HQ: the transfer stands, one row, the edit not applied"
reply CAS01 cas; ok $? "CAS01 imports HQ's answer"
[ "$(q cas "SELECT count(*) FROM job_seeker WHERE id = 'J1'")" = 0 ]; ok $? "J1 left CAS01's view"
reply RAB01 rab; ok $? "RAB01 imports HQ's answer"
[ "$(q rab "SELECT owner_branch || ',' || territory_code FROM job_seeker WHERE id = 'J1'")" = "RAB01,RBT" ]
ok $? "J1 joined RAB01's view"
mv=$(q hq "SELECT id FROM tz_conflicts WHERE kind = 'unauthorized' AND note LIKE '%moved to another branch%'")
check "conflicts show names the branch's value" "$S" -C hq conflicts show "$mv" --json
like "$WORK/.out" '"column": "phone", "group": null, "base": null, "ours": "0622", "theirs": "0699"' "the edit is kept in the entry"
check "the administrator takes CAS01's phone (--theirs)" "$S" -C hq conflicts resolve "$mv" --theirs
reply RAB01 rab; ok $? "RAB01 imports the decision"
[ "$(q rab "SELECT phone FROM job_seeker WHERE id = 'J1'")" = 0699 ]; ok $? "the offline edit reached J1's new branch"
check "CAS01 verifies after the transfer" "$S" -C cas verify
check "RAB01 verifies after the transfer" "$S" -C rab verify

check "HQ verifies at the end" "$S" -C hq verify
check "status shows the open entries by kind" "$S" -C hq status --json
like "$WORK/.out" '"open_by_kind": \{"data": 0, "delete": 1, "insert": 0, "unauthorized": 2, "orphan": 0, "invariant": 0\}, "open_duplicates": 0' \
	"status --json"

# ---- a blank ID is nobody's key (like NULL): no duplicate among blanks ----
q cas "INSERT INTO job_seeker VALUES ('B1', 'CNIE', '  ', 'Blank', '0601', 'CASA', 'CAS01'), ('B3', 'CNIE', '', 'Blank', '0603', 'CASA', 'CAS01')"
q rab "INSERT INTO job_seeker VALUES ('B2', 'CNIE', '', 'Blank', '0602', 'RBT', 'RAB01')"
push CAS01 cas && push RAB01 rab; ok $? "two branches push job seekers with blank ID numbers"
[ "$(q hq "SELECT count(*) FROM tz_duplicates WHERE status = 'open'")" = 0 ]; ok $? "no duplicate among blank keys"

# ---- a row merged away comes back, and is kept over its survivor: no loop ----
q hq "INSERT INTO job_seeker VALUES ('J2', 'CNIE', 'be 123456', 'Youssef', '0644', 'RBT', 'RAB01')"
"$S" -C hq commit -m "J2 registered again" >/dev/null
check "duplicates merge J2 J1 (J1 kept J2 before)" "$S" -C hq duplicates merge J2 J1
[ "$(q hq "SELECT count(*) FROM tz_redirect a JOIN tz_redirect b ON a.tbl = b.tbl AND a.to_key = b.from_key AND b.to_key = a.from_key")" = 0 ]
ok $? "no redirect loop (J2's old redirect to J1 is gone)"
q rab "INSERT INTO interview VALUES ('I4', 'J1', 'thu', 'RAB01')"
push RAB01 rab; ok $? "an import referencing J1 is not stuck on the redirects"
[ "$(q hq "SELECT job_seeker_id FROM interview WHERE id = 'I4'")" = J2 ]; ok $? "I4 is re-pointed to J2"
check "HQ verifies after both merges" "$S" -C hq verify

done_testing

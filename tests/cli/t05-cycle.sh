#!/bin/bash
# t05-cycle.sh - the sync cycle by file (issue 3): HQ plus two branches
# enrolled from files; each branch edits its own job seekers offline, one
# edits a shared table; export/import cycles; then HQ's main holds every
# change, each branch's store.db equals its view of HQ row for row, and
# stock `git verify-commit` passes for every commit at HQ.  Rule ids are
# those of docs/protocol.md.
. "$TZ_SRC/tests/cli/lib.sh"
S=$SYNCCTL
cd "$WORK" || exit 1

cat >schema.sql <<'SQL'
CREATE TABLE region(code TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE job_seeker(id TEXT PRIMARY KEY, cin TEXT, name_lat TEXT, name_ar TEXT,
    region TEXT, status TEXT, owner_branch TEXT NOT NULL);
CREATE TABLE workshop(id INTEGER PRIMARY KEY, title TEXT, seats INTEGER, fee REAL, logo BLOB);
INSERT INTO tz_track VALUES ('region', 'hq', NULL), ('job_seeker', 'owned', 'owner_branch'),
    ('workshop', 'shared', NULL);
SQL

check "init-hq" "$S" init-hq hq
check "schema apply" "$S" -C hq schema apply schema.sql
sqlite3 hq/store.db "
INSERT INTO region VALUES ('CS', 'Casablanca-Settat'), ('RSK', 'Rabat-Salé-Kénitra');
INSERT INTO job_seeker VALUES
 ('CAS01-000001', 'BE123456', 'Mohamed Benali', 'محمد بن علي', 'CS', 'registered', 'CAS01'),
 ('CAS01-000002', 'BE223344', 'Fatima Zahra', 'فاطمة الزهراء', 'CS', 'registered', 'CAS01'),
 ('RAB01-000001', 'A998877', 'Youssef Alami', 'يوسف العلمي', 'RSK', 'registered', 'RAB01'),
 ('RAB01-000002', 'A112233', 'Khadija Idrissi', 'خديجة الإدريسي', 'RSK', 'placed', 'RAB01');
INSERT INTO workshop VALUES (1, 'CV writing', 12, 0.0, NULL);"
check "HQ commits the base" "$S" -C hq commit -m base

# ---- enrolment ----
printf 'cas01 passphrase, long enough\n' >cas.pass
check "branch add CAS01 (passphrase file)" "$S" -C hq branch add CAS01 --out cas01.tze --passphrase-file cas.pass
fails "branch add refuses an existing file" 1 "$S" -C hq branch add XXX --out cas01.tze --passphrase-file cas.pass
fails "branch add without a passphrase is a usage error" 2 env -u TZ_PASSPHRASE "$S" -C hq branch add RAB01 --out r.tze
check "branch add RAB01 (TZ_PASSPHRASE)" env TZ_PASSPHRASE=rab01-secret "$S" -C hq branch add RAB01 --out rab01.tze
fails "init-branch with a wrong passphrase fails" 1 env TZ_PASSPHRASE=wrong "$S" init-branch bad --enroll rab01.tze
[ ! -e bad ]; ok $? "a failed init-branch leaves no directory"
check "init-branch CAS01" "$S" init-branch cas --enroll cas01.tze --passphrase-file cas.pass
check "init-branch RAB01" env TZ_PASSPHRASE=rab01-secret "$S" init-branch rab --enroll rab01.tze
[ "$(sqlite3 cas/store.db 'SELECT id FROM job_seeker ORDER BY id' | tr '\n' ' ')" = "CAS01-000001 CAS01-000002 " ]
ok $? "CAS01's snapshot holds its own job seekers only"
[ "$(sqlite3 cas/store.db 'SELECT count(*) FROM region') $(sqlite3 cas/store.db 'SELECT count(*) FROM workshop')" = "2 1" ]
ok $? "CAS01's snapshot holds the hq and shared tables"
cmp -s hq/keys/replica.pub cas/keys/replica.pub
[ $? -ne 0 ] && [ -f cas/keys/replica ]; ok $? "the branch made its own key pair"
"$S" -C hq keys show >keys.txt
like keys.txt '^CAS01 +branch +pending' "keys show: CAS01 enrolled, key not bound yet"

# ---- offline work ----
sqlite3 cas/store.db "
INSERT INTO job_seeker VALUES ('CAS01-000003', 'BE555666', 'Omar Tazi', 'عمر التازي', 'CS', 'registered', 'CAS01');
UPDATE job_seeker SET status = 'interviewed' WHERE id = 'CAS01-000001';"
check "CAS01 commits" "$S" -C cas commit -m "morning"
sqlite3 cas/store.db "UPDATE job_seeker SET name_lat = 'Fatima-Zahra' WHERE id = 'CAS01-000002';"
sqlite3 rab/store.db "
INSERT INTO job_seeker VALUES ('RAB01-000003', 'A445566', 'Salma Bennani', 'سلمى بناني', 'RSK', 'registered', 'RAB01');
DELETE FROM job_seeker WHERE id = 'RAB01-000002';
INSERT INTO workshop VALUES (2, 'Interview skills', 20, 15.5, x'89504e47');
UPDATE workshop SET seats = 10 WHERE id = 1;"

"$S" -C cas status >st.txt
like st.txt '^unsent +1 commit HQ has not acknowledged' "status: the branch's unsent commit"
like st.txt '^synced +never imported a bundle' "status: never synced yet"

# ---- round 1 ----
check "CAS01 export (seals pending changes first)" "$S" -C cas --json export --out c1.tzb
[ "$(sqlite3 cas/store.db 'SELECT count(*) FROM tz_changes')" = 0 ]; ok $? "P10: export committed the pending change"
check "RAB01 export" "$S" -C rab export --out r1.tzb
check "HQ imports CAS01" "$S" -C hq import --json c1.tzb
cp "$WORK/.out" imp1.json
json_valid imp1.json "import --json is one JSON document"
like imp1.json '"rows_merged": 3' "three CAS01 rows merged into main"
check "P1: the same bundle again is a no-op" "$S" -C hq import c1.tzb
like "$WORK/.out" 'nothing new' "the no-op says so"
check "HQ imports RAB01" "$S" -C hq import r1.tzb
"$S" -C hq keys show >keys.txt
like keys.txt '^CAS01 +branch +valid +ssh-ed25519 ' "P3: CAS01's key is bound by its first bundle"
fails "branch add refuses a code whose key is bound" 1 "$S" -C hq branch add CAS01 --out again.tze --passphrase-file cas.pass
like "$WORK/.err" "already enrolled and has bound its key" "the refusal says why"
# a pending enrolment is renewed: the first file's secret no longer binds
check "branch add TMP01" "$S" -C hq branch add TMP01 --out tmp-a.tze --passphrase-file cas.pass
check "branch add TMP01 again renews the enrolment" "$S" -C hq branch add TMP01 --out tmp-b.tze --passphrase-file cas.pass
check "init-branch from the first TMP01 file" "$S" init-branch tmp --enroll tmp-a.tze --passphrase-file cas.pass
check "TMP01 exports" "$S" -C tmp export --out t1.tzb
fails "P3: HQ refuses the binding of a renewed enrolment's old secret" 1 "$S" -C hq import t1.tzb
like "$WORK/.err" "does not match its enrolment secret" "the refusal names the binding"
check "HQ reply for CAS01" "$S" -C hq export --for CAS01 --out hc1.tzb
check "HQ reply for RAB01" "$S" -C hq export --for RAB01 --out hr1.tzb
fails "a branch cannot export --for" 1 "$S" -C cas export --for RAB01 --out x.tzb
fails "HQ must say --for" 1 "$S" -C hq export --out x.tzb

# uncommitted local work at CAS01 while the reply arrives
sqlite3 cas/store.db "UPDATE job_seeker SET region = 'RSK' WHERE id = 'CAS01-000003';"
check "CAS01 imports HQ's reply" "$S" -C cas import hc1.tzb
[ "$(sqlite3 cas/store.db "SELECT region FROM job_seeker WHERE id = 'CAS01-000003'")" = RSK ]
ok $? "P14: an uncommitted local change survives the import"
[ "$(sqlite3 cas/store.db "SELECT seats FROM workshop WHERE id = 1")" = 10 ]
ok $? "CAS01 received RAB01's change to the shared table"
check "RAB01 imports HQ's reply" "$S" -C rab import hr1.tzb
"$S" -C rab status --json >st.json
json_valid st.json "status --json is one JSON document"
like st.json '"unsent_commits": 0' "status: nothing unsent after the answer"
like st.json '"last_import": \{"at": [0-9]+, "from": "HQ"\}' "status: the last import, from HQ"

# ---- round 2: CAS01 commits after exporting, before the reply ----
sqlite3 cas/store.db "INSERT INTO job_seeker VALUES ('RAB01-000099', 'X1', 'Intruder', 'دخيل', 'RSK', 'x', 'RAB01');
UPDATE region SET name = 'Casa' WHERE code = 'CS';"
check "CAS01 export 2" "$S" -C cas export --out c2.tzb
sqlite3 cas/store.db "INSERT INTO job_seeker VALUES ('CAS01-000004', 'BE777888', 'Hicham Amrani', 'هشام العمراني', 'CS', 'registered', 'CAS01');"
check "CAS01 commits after its export" "$S" -C cas commit -m "afternoon"
check "HQ imports CAS01's second bundle" "$S" -C hq import --json c2.tzb
cp "$WORK/.out" imp2.json
like imp2.json '"partition": "RAB01", "key": "RAB01-000099", "why": "another branch' "P9: a row in another branch's partition is listed, not applied"
like imp2.json '"table": "region".*"why": "an hq table' "P9: a change to an hq table is listed, not applied"
[ "$(sqlite3 hq/store.db "SELECT count(*) FROM job_seeker WHERE id = 'RAB01-000099'") $(sqlite3 hq/store.db "SELECT name FROM region WHERE code = 'CS'")" = "0 Casablanca-Settat" ]
ok $? "P9: neither unauthorized change reached HQ"
check "HQ reply 2 for CAS01" "$S" -C hq export --for CAS01 --out hc2.tzb
check "CAS01 imports reply 2 over its newer commit" "$S" -C cas import --json hc2.tzb
like "$WORK/.out" '"merged_local": true' "P15: the newer local commit is merged on top"
[ "$(git -C cas/history rev-list --parents -n 1 HEAD | wc -w)" = 3 ]; ok $? "the branch head is a merge commit"
[ "$(sqlite3 cas/store.db "SELECT count(*) FROM job_seeker WHERE id IN ('RAB01-000099', 'CAS01-000004')") $(sqlite3 cas/store.db "SELECT name FROM region WHERE code = 'CS'")" = "1 Casablanca-Settat" ]
ok $? "the view corrects the refused rows; the local commit stays"
check "CAS01 export 3 (the merge and the local commit)" "$S" -C cas export --out c3.tzb
check "HQ imports it" "$S" -C hq import c3.tzb
check "HQ reply 3" "$S" -C hq export --for CAS01 --out hc3.tzb
check "CAS01 imports reply 3" "$S" -C cas import hc3.tzb
check "CAS01 commits its kept change" "$S" -C cas commit
check "CAS01 export 4" "$S" -C cas export --out c4.tzb
check "HQ imports 4" "$S" -C hq import c4.tzb
for b in CAS01 RAB01; do
	check "HQ final reply for $b" "$S" -C hq export --for $b --out final-$b.tzb
done
check "CAS01 final import" "$S" -C cas import final-CAS01.tzb
check "RAB01 final import" "$S" -C rab import final-RAB01.tzb

# ---- HQ's main holds every change ----
q() { sqlite3 "$1/store.db" "$2"; }
[ "$(q hq "SELECT id || ':' || status || ':' || region FROM job_seeker WHERE id LIKE 'CAS01%' ORDER BY id" | tr '\n' ' ')" = \
  "CAS01-000001:interviewed:CS CAS01-000002:registered:CS CAS01-000003:registered:RSK CAS01-000004:registered:CS " ]
ok $? "main holds CAS01's inserts, updates and its kept local change"
[ "$(q hq "SELECT name_lat FROM job_seeker WHERE id = 'CAS01-000002'")" = Fatima-Zahra ]; ok $? "main holds CAS01's pending-at-export update"
[ "$(q hq "SELECT id FROM job_seeker WHERE id LIKE 'RAB01%' ORDER BY id" | tr '\n' ' ')" = "RAB01-000001 RAB01-000003 " ]
ok $? "main holds RAB01's insert and delete"
[ "$(q hq "SELECT id || ':' || seats || ':' || fee || ':' || hex(coalesce(logo, '')) FROM workshop ORDER BY id" | tr '\n' ' ')" = "1:10:0.0: 2:20:15.5:89504E47 " ]
ok $? "main holds RAB01's shared-table changes"

# ---- each branch equals its view of HQ, by query ----
view_eq() {
	local br=$1 code=$2 t
	for t in "job_seeker WHERE owner_branch = '$code'" region workshop; do
		local tbl=${t%% *}
		if [ "$(q hq "SELECT quote(id), quote(cin), quote(name_lat), quote(name_ar), quote(region), quote(status), quote(owner_branch) FROM $t ORDER BY 1" 2>/dev/null ||
			q hq "SELECT * FROM $t ORDER BY 1")" != "$(q "$br" "SELECT quote(id), quote(cin), quote(name_lat), quote(name_ar), quote(region), quote(status), quote(owner_branch) FROM $tbl ORDER BY 1" 2>/dev/null ||
			q "$br" "SELECT * FROM $tbl ORDER BY 1")" ]; then
			echo "# $code: $tbl differs"; return 1
		fi
	done
	[ "$(q hq "SELECT quote(id), quote(title), quote(seats), quote(fee), quote(logo) FROM workshop ORDER BY id")" = \
	  "$(q "$br" "SELECT quote(id), quote(title), quote(seats), quote(fee), quote(logo) FROM workshop ORDER BY id")" ] &&
	[ "$(q hq "SELECT quote(code), quote(name) FROM region ORDER BY code")" = "$(q "$br" "SELECT quote(code), quote(name) FROM region ORDER BY code")" ]
}
view_eq cas CAS01; ok $? "CAS01's store.db equals its view of HQ, row for row"
view_eq rab RAB01; ok $? "RAB01's store.db equals its view of HQ, row for row"
[ "$(git -C cas/history rev-parse HEAD^{tree})" = "$(git -C hq/history rev-parse branches/CAS01^{tree})" ]
ok $? "CAS01's head tree is HQ's branches/CAS01 tree (equal ids)"

# ---- verification ----
for st in hq cas rab; do
	check "verify $st" "$S" -C $st verify
done
"$S" -C hq keys allowed-signers >signers
bad=0; n=0
for c in $(git -C hq/history rev-list --all); do
	n=$((n + 1))
	git -C hq/history -c gpg.ssh.allowedSignersFile="$WORK/signers" verify-commit "$c" >/dev/null 2>&1 || { bad=$((bad + 1)); echo "# bad signature: $c"; }
done
[ $bad -eq 0 ] && [ $n -gt 10 ]; ok $? "git verify-commit passes for all $n commits at HQ"

# ---- revocation ----
check "keys revoke CAS01" "$S" -C hq keys revoke CAS01
sqlite3 cas/store.db "UPDATE job_seeker SET status = 'placed' WHERE id = 'CAS01-000001';"
check "CAS01 exports after its revocation" "$S" -C cas export --out c5.tzb
fails "P6: HQ refuses a revoked key" 1 "$S" -C hq import c5.tzb
like "$WORK/.err" "revoked" "the refusal says the key is revoked"
fails "HQ sends nothing to a revoked branch" 1 "$S" -C hq export --for CAS01 --out x.tzb
check "keys add-admin amina" "$S" -C hq keys add-admin amina
[ "$(stat -c %a hq/keys/admin-amina)" = 600 ]; ok $? "the administrator's secret key is 0600"
"$S" -C hq keys allowed-signers >signers2
like signers2 '^amina namespaces="git" ssh-ed25519 ' "allowed-signers lists the administrator"
like signers2 '^CAS01 namespaces="git" ssh-ed25519 ' "allowed-signers still lists the revoked key (its history stays valid)"
fails "keys revoke of an unknown code" 1 "$S" -C hq keys revoke NOPE
fails "a branch has no registry to revoke in" 1 "$S" -C cas keys revoke RAB01
done_testing

#!/usr/bin/env bash
# The store end to end: init-hq, schema apply, capture from the sqlite3
# shell, commit, stock git reading and verifying the history, diff, a row
# restored before a commit, verify catching tampering and corruption,
# refused schemas leaving the store as it was, checkout.
. "$TZ_SRC/tests/cli/lib.sh"

S="$SYNCCTL"
HQ="$WORK/hq"
check "init-hq creates a store" "$S" init-hq "$HQ"
for f in store.db history/HEAD keys/replica keys/replica.pub config; do
	[ -e "$HQ/$f" ]; ok $? "init-hq made $f"
done
[ "$(stat -c %a "$HQ/keys/replica")" = 600 ]; ok $? "the secret key file is mode 0600"
[ "$(stat -c %a "$HQ/keys/replica.pub")" = 600 ]; ok $? "the public key file is mode 0600"
[ "$(stat -c %a "$HQ/keys")" = 700 ]; ok $? "keys/ is mode 0700"
fails "init-hq refuses a non-empty directory" 1 "$S" init-hq "$HQ"
like "$WORK/.err" "not empty" "init-hq says why"

cat >"$WORK/schema.sql" <<'SQL'
CREATE TABLE job_seeker(id TEXT PRIMARY KEY, owner_branch TEXT NOT NULL, last_name_lat TEXT,
  last_name_ar TEXT, birth_date TEXT);
CREATE TABLE attendance(workshop_id TEXT, job_seeker_id TEXT, owner_branch TEXT NOT NULL,
  present INTEGER, PRIMARY KEY (workshop_id, job_seeker_id));
CREATE TABLE measure(id INTEGER PRIMARY KEY, score REAL, photo BLOB, note TEXT);
INSERT INTO tz_track(tbl, scope, owner_column) VALUES
  ('job_seeker', 'owned', 'owner_branch'), ('attendance', 'owned', 'owner_branch'), ('measure', 'hq', NULL);
SQL
check "schema apply of three tracked tables" "$S" -C "$HQ" schema apply "$WORK/schema.sql"

# Refused declarations leave everything as it was.
before=$(sqlite3 "$HQ/store.db" "SELECT group_concat(name) FROM sqlite_master")
head_before=$(git -C "$HQ/history" rev-parse HEAD)
i=0
for bad in \
	"CREATE TABLE nokey(a, b); INSERT INTO tz_track VALUES ('nokey', 'shared', NULL);|no primary key" \
	"INSERT INTO tz_track VALUES ('ghost', 'shared', NULL);|does not exist" \
	"CREATE TABLE t2(id PRIMARY KEY, o); INSERT INTO tz_track VALUES ('t2', 'owned', 'missing');|no column 'missing'" \
	"CREATE TABLE t3(id PRIMARY KEY); INSERT INTO tz_track VALUES ('t3', 'everyone', NULL);|unknown scope" \
	"CREATE TABLE t4(id PRIMARY KEY, o); INSERT INTO tz_track VALUES ('t4', 'owned', NULL);|needs an owner_column" \
	"CREATE TABLE t5(id PRIMARY KEY; |syntax error" \
	"CREATE TABLE t6(id PRIMARY KEY); COMMIT; INSERT INTO tz_track VALUES ('t6', 'nope', NULL);|must not control transactions" \
	"/* c */ -- c
 commit; |must not control transactions"; do
	i=$((i + 1))
	printf '%s\n' "${bad%%|*}" >"$WORK/bad$i.sql"
	fails "schema apply refuses bad declaration $i" 1 "$S" -C "$HQ" schema apply "$WORK/bad$i.sql"
	like "$WORK/.err" "${bad##*|}" "the refusal names the problem ($i)"
done
[ "$(sqlite3 "$HQ/store.db" "SELECT group_concat(name) FROM sqlite_master")" = "$before" ]
ok $? "refused schemas left store.db's schema unchanged"
[ "$(git -C "$HQ/history" rev-parse HEAD)" = "$head_before" ]
ok $? "refused schemas made no commit"

# Writes through the sqlite3 shell, Arabic text, REAL and BLOB values.
sqlite3 "$HQ/store.db" <<'SQL'
INSERT INTO job_seeker VALUES ('CAS01-000001', 'CAS01', 'Alaoui', 'العلوي', '1990-04-12');
INSERT INTO job_seeker VALUES ('RAB02-000007', 'RAB02', 'Bennani', 'بناني', '1985-11-30');
INSERT INTO attendance VALUES ('W-2026-11', 'CAS01-000001', 'CAS01', 1);
INSERT INTO measure VALUES (1, 0.1, x'00ff0010', 'multi
line'), (2, -1.5e-300, NULL, NULL);
SQL
"$S" -C "$HQ" status --json >"$WORK/status.json"
json_valid "$WORK/status.json" "status --json is one JSON document"
like "$WORK/status.json" '"changes": 5' "status counts the five captured writes"
check "commit" "$S" -C "$HQ" commit -m "first registrations"
like "$WORK/.out" "4 added|5 added" "commit reports the rows it added"
check "git log reads the history" git -C "$HQ/history" log --format=%s
like "$WORK/.out" "first registrations" "git log shows the commit"
"$S" -C "$HQ" keys allowed-signers >"$WORK/signers"
check "stock git verify-commit accepts the signature" \
	git -C "$HQ/history" -c gpg.ssh.allowedSignersFile="$WORK/signers" verify-commit HEAD
path=$(git -C "$HQ/history" ls-tree -r --name-only HEAD | grep '^job_seeker/CAS01/')
check "git show prints a row" git -C "$HQ/history" show "HEAD:$path"
like "$WORK/.out" "^last_name_ar t العلوي$" "the row is readable, Arabic included"
path=$(git -C "$HQ/history" ls-tree -r --name-only HEAD | grep '^attendance/')
like <(echo "$path") '^attendance/CAS01/[0-9a-f]/[0-9a-f]/W-2026-11\+CAS01-000001$' "a composite key is one readable name"
path=$(git -C "$HQ/history" ls-tree -r --name-only HEAD | grep '^measure/_hq/.*/~i1$')
git -C "$HQ/history" show "HEAD:$path" >"$WORK/m1"
like "$WORK/m1" '^photo b AP8AEA==$' "a blob is base64"
like "$WORK/m1" '^note t multi\\nline$' "a newline in text is escaped"
like "$WORK/m1" '^score r 0.1$' "a real is written in its shortest exact form"

# diff shows changed columns; JSON too.
sqlite3 "$HQ/store.db" "UPDATE job_seeker SET birth_date = '1990-04-13' WHERE id = 'CAS01-000001'"
check "diff of the working state" "$S" -C "$HQ" diff
like "$WORK/.out" "^M job_seeker CAS01 CAS01-000001" "diff names the changed row"
like "$WORK/.out" "^  - birth_date t 1990-04-12" "diff shows the old value"
like "$WORK/.out" "^  \+ birth_date t 1990-04-13" "diff shows the new value"
grep -c last_name "$WORK/.out" | grep -qx 0; ok $? "diff leaves unchanged columns out"
"$S" -C "$HQ" diff --json >"$WORK/diff.json"
json_valid "$WORK/diff.json" "diff --json is one JSON document"
check "commit the change" "$S" -C "$HQ" commit
check "diff between two commits" "$S" -C "$HQ" diff HEAD~1 HEAD
like "$WORK/.out" "^  \+ birth_date t 1990-04-13" "diff A B shows the committed change"

# A row updated and restored before a commit adds no blob.
objs() { git -C "$HQ/history" count-objects -v | awk '/^(count|in-pack):/ { n += $2 } END { print n }'; }
n0=$(objs)
sqlite3 "$HQ/store.db" "UPDATE job_seeker SET birth_date = '2001-01-01' WHERE id = 'RAB02-000007';
  UPDATE job_seeker SET birth_date = '1985-11-30' WHERE id = 'RAB02-000007';"
check "commit of a restored row" "$S" -C "$HQ" commit
like "$WORK/.out" "nothing to commit" "a restored row is nothing to commit"
[ "$(objs)" = "$n0" ]; ok $? "a restored row adds no object"

# log, show, JSON.
"$S" -C "$HQ" log --json >"$WORK/log.json"
json_valid "$WORK/log.json" "log --json is one JSON document"
like "$WORK/log.json" '"valid": true' "log checks the signatures"
check "show HEAD" "$S" -C "$HQ" show HEAD
like "$WORK/.out" "^Signature: good \(HQ\)" "show reports the signature"

# verify: passes, then catches tampering (by table and key) and corruption (by object).
check "verify passes" "$S" -C "$HQ" verify
"$S" -C "$HQ" verify --json >"$WORK/verify.json"
json_valid "$WORK/verify.json" "verify --json is one JSON document"
cp -a "$HQ" "$WORK/tampered"
sqlite3 "$WORK/tampered/store.db" "DROP TRIGGER tz_u_2; UPDATE job_seeker SET last_name_lat = 'X' WHERE id = 'RAB02-000007';"
fails "verify fails after a write behind the triggers' back" 3 "$S" -C "$WORK/tampered" verify
like "$WORK/.err" "table 'job_seeker' key 'RAB02-000007'" "verify names the table and key"
cp -a "$HQ" "$WORK/corrupt"
pack=$(ls -S "$WORK"/corrupt/history/objects/pack/*.pack | head -1)
chmod u+w "$pack"
size=$(stat -c %s "$pack")
printf '\377\377\377\377' | dd of="$pack" bs=1 seek=$((size / 2)) conv=notrunc status=none
fails "verify fails after an object file is corrupted" 3 "$S" -C "$WORK/corrupt" verify
like "$WORK/.err" "object [0-9a-f]{40}" "verify names the object"
# an object file that inflates cleanly but holds another object's bytes:
# only a hash of what was read catches it (libgit2's own check is off)
cp -a "$HQ" "$WORK/swapped"
loose=$(find "$WORK/swapped/history/objects" -type f ! -path '*/pack/*' | sort | head -2)
one=$(echo "$loose" | sed -n 1p)
two=$(echo "$loose" | sed -n 2p)
chmod u+w "$one"
cp "$two" "$one"
id=$(basename "$(dirname "$one")")$(basename "$one")
fails "verify fails when an object file holds another object's bytes" 3 "$S" -C "$WORK/swapped" verify
like "$WORK/.err" "object $id is corrupt: its bytes hash to another id" "verify names the object whose bytes do not match"

# checkout moves store.db to another commit, with no change-log entries.
check "checkout HEAD~1" "$S" -C "$HQ" checkout HEAD~1
[ "$(sqlite3 "$HQ/store.db" "SELECT birth_date FROM job_seeker WHERE id = 'CAS01-000001'")" = 1990-04-12 ]
ok $? "checkout rewrote the row"
[ "$(sqlite3 "$HQ/store.db" "SELECT count(*) FROM tz_changes")" = 0 ]; ok $? "checkout left no change-log entry"
check "verify passes after checkout" "$S" -C "$HQ" verify
sqlite3 "$HQ/store.db" "UPDATE measure SET note = 'dirty' WHERE id = 2"
fails "checkout refuses with uncommitted changes" 1 "$S" -C "$HQ" checkout HEAD
like "$WORK/.err" "uncommitted" "checkout says why"

# Objects over 1 MiB go into the pack as a zlib stream written a chunk at a
# time (pack.c): one incompressible, one compressible.  git reads them back,
# the index's CRCs match, and checkout brings the same bytes back.
sqlite3 "$HQ/store.db" "INSERT INTO measure VALUES (3, 1, randomblob(3000000), NULL),
  (4, 2, NULL, printf('%.3000000c', 'x'))"
# (each field on its own: `x || NULL` would make the whole line NULL)
big_rows() {
	sqlite3 "$HQ/store.db" "SELECT id, length(photo), hex(substr(photo, 2999980)), length(note), hex(substr(note, 2999990))
	  FROM measure WHERE id IN (3, 4) ORDER BY id"
}
want=$(big_rows)
[ "$(echo "$want" | wc -l)" = 2 ] && echo "$want" | grep -q '^3|3000000|[0-9A-F]\{42\}||$' &&
	echo "$want" | grep -q '^4|||3000000|7878787878787878787878$'
ok $? "the two 3 MB rows are as written ($(echo "$want" | tr '\n' ' ' | cut -c1-80))"
check "commit of two rows of 3 MB" "$S" -C "$HQ" commit
big=$(git -C "$HQ/history" rev-parse HEAD)
for idx in "$HQ"/history/objects/pack/*.idx; do
	check "git verify-pack accepts $(basename "$idx")" git verify-pack "$idx"
done
check "git fsck --full accepts the history" git -C "$HQ/history" fsck --full
check "checkout before the big rows" "$S" -C "$HQ" checkout HEAD~1
check "checkout of the big rows" "$S" -C "$HQ" checkout "$big"
[ "$(big_rows)" = "$want" ]
ok $? "checkout brought back the same 3 MB values"

# usage errors
fails "an unknown command is a usage error" 2 "$S" frobnicate
fails "a bad flag is a usage error" 2 "$S" -C "$HQ" commit --bogus
check "syncctl --help" "$S" --help
check "syncctl commit --help" "$S" commit --help
like "$WORK/.out" "Example" "command help has an example"
fails "a missing store is a clear failure" 1 "$S" -C "$WORK/nowhere" status
like "$WORK/.err" "not a Tazamun store" "the failure says what is wrong"
done_testing

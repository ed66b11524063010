#!/bin/sh
# make demo: a short scripted scenario of what Tazamun does today, on a
# scratch directory: an HQ store, a schema with three tracked tables, rows
# written by the sqlite3 shell (as any application would), signed commits,
# the history read and verified by stock git, a diff, a check that catches a
# write behind the triggers' back; then a branch enrolled from a file, a day
# offline, and the cycle by USB key.  Usage: tools/demo.sh BUILD_DIR
set -eu
BUILD=${1:-build}
S="$(cd "$BUILD" && pwd)/syncctl"
SRC=$(cd "$(dirname "$0")/.." && pwd)
DEMO=${TZ_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/tazamun-demo.XXXXXX")}
HQ="$DEMO/hq"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. Create a headquarters store"
run "$S" init-hq "$HQ"

step "2. Declare the tracked tables (owned job seekers, shared employers, HQ occupations)"
cat >"$DEMO/schema.sql" <<'SQL'
CREATE TABLE job_seeker(id TEXT PRIMARY KEY, owner_branch TEXT NOT NULL, id_doc_number TEXT,
  last_name_lat TEXT NOT NULL, last_name_ar TEXT, first_name_lat TEXT, birth_date TEXT, phone TEXT);
CREATE TABLE employer(ice TEXT PRIMARY KEY, name TEXT NOT NULL, city TEXT, employees INTEGER);
CREATE TABLE occupation(code TEXT, scheme TEXT, label_fr TEXT, label_ar TEXT, PRIMARY KEY (scheme, code));
INSERT INTO tz_track(tbl, scope, owner_column) VALUES
  ('job_seeker', 'owned', 'owner_branch'), ('employer', 'shared', NULL), ('occupation', 'hq', NULL);
SQL
run "$S" -C "$HQ" schema apply "$DEMO/schema.sql"

step "3. The application writes (here: the sqlite3 shell); triggers capture every change"
sqlite3 "$HQ/store.db" <<'SQL'
INSERT INTO occupation VALUES ('K2111', 'ROME', 'Formation professionnelle', 'التكوين المهني'),
  ('N4101', 'ROME', 'Conduite de poids lourd', 'سياقة الشاحنات');
INSERT INTO employer VALUES ('001525478000088', 'Atlas Logistique', 'Casablanca', 120);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000)
INSERT INTO job_seeker SELECT printf('%s-%06d', b, i), b, printf('BE%06d', 100000 + i),
  'Alaoui', 'العلوي', 'Amine', printf('19%02d-%02d-%02d', 70 + i % 30, 1 + i % 12, 1 + i % 28),
  printf('06%08d', i * 7919 % 100000000)
FROM c, (SELECT 'CAS01' AS b UNION ALL SELECT 'RAB02');
SQL
run "$S" -C "$HQ" status

step "4. Seal the change log into a signed commit (one pack, SSH signature)"
run "$S" -C "$HQ" commit -m "registrations of the day"

step "5. An update; the diff shows the changed columns"
sqlite3 "$HQ/store.db" "UPDATE job_seeker SET phone = '0661234567' WHERE id = 'CAS01-000042';
  UPDATE employer SET employees = 135 WHERE ice = '001525478000088';"
run "$S" -C "$HQ" diff
run "$S" -C "$HQ" commit -m "phone and headcount"

step "6. Stock git reads and verifies the history"
echo "\$ $S -C $HQ keys allowed-signers > $DEMO/allowed_signers"
"$S" -C "$HQ" keys allowed-signers >"$DEMO/allowed_signers"
run git -C "$HQ/history" -c gpg.ssh.allowedSignersFile="$DEMO/allowed_signers" verify-commit HEAD
path=$(git -C "$HQ/history" ls-tree -r --name-only HEAD job_seeker/CAS01 | grep 'CAS01-000042$')
run git -C "$HQ/history" show "HEAD:$path"
run git -C "$HQ/history" log --oneline

step "7. verify: signatures, objects, and store.db == head + change log"
run "$S" -C "$HQ" verify
cp -a "$HQ" "$DEMO/tampered"
sqlite3 "$DEMO/tampered/store.db" "DROP TRIGGER tz_u_2; UPDATE job_seeker SET phone = '0000000000' WHERE id = 'RAB02-000007';"
printf '$ (a write behind the triggers'"'"' back, in a copy) syncctl verify\n'
if "$S" -C "$DEMO/tampered" verify; then
	echo "demo: verify should have failed on the tampered copy" >&2
	exit 1
fi

step "8. Enrol branch CAS01 from a file (a USB key); the passphrase travels apart"
export TZ_PASSPHRASE="demo: a passphrase told over the phone"
mkdir -p "$DEMO/usb"
run "$S" -C "$HQ" branch add CAS01 --out "$DEMO/usb/CAS01.tze"
run "$S" init-branch "$DEMO/cas01" --enroll "$DEMO/usb/CAS01.tze"
echo "(CAS01 holds its own $(sqlite3 "$DEMO/cas01/store.db" "SELECT count(*) FROM job_seeker") job seekers, the shared employers, HQ's occupations)"

step "9. A day offline at CAS01, then the USB key goes to HQ"
sqlite3 "$DEMO/cas01/store.db" <<'SQL'
INSERT INTO job_seeker VALUES ('CAS01-002001', 'CAS01', 'BE998877', 'Bennani', 'بناني', 'Salma', '1998-03-14', '0612345678');
UPDATE job_seeker SET phone = '0699887766' WHERE id = 'CAS01-000042';
INSERT INTO employer VALUES ('002233445000011', 'Souss Agro', 'Agadir', 45);
UPDATE occupation SET label_fr = 'changed at a branch' WHERE code = 'K2111';
SQL
run "$S" -C "$DEMO/cas01" export --out "$DEMO/usb/cas01.tzb"
run "$S" -C "$HQ" import "$DEMO/usb/cas01.tzb"
printf '$ grep -c "Bennani" %s   # the bundle is encrypted\n' "$DEMO/usb/cas01.tzb"
grep -c "Bennani" "$DEMO/usb/cas01.tzb" || true

step "10. HQ answers; CAS01 takes the answer (its change to an HQ table is undone)"
run "$S" -C "$HQ" export --for CAS01 --out "$DEMO/usb/hq-cas01.tzb"
run "$S" -C "$DEMO/cas01" import "$DEMO/usb/hq-cas01.tzb"
run sqlite3 "$DEMO/cas01/store.db" "SELECT label_fr FROM occupation WHERE code = 'K2111'"
run "$S" -C "$DEMO/cas01" status
"$S" -C "$HQ" keys allowed-signers >"$DEMO/allowed_signers"
printf '$ git verify-commit every commit at HQ\n'
n=0
for c in $(git -C "$HQ/history" rev-list --all); do
	git -C "$HQ/history" -c gpg.ssh.allowedSignersFile="$DEMO/allowed_signers" verify-commit "$c" 2>/dev/null ||
		{ echo "demo: commit $c does not verify" >&2; exit 1; }
	n=$((n + 1))
done
echo "$n commits, all signed by keys HQ knows"

step "Summary (counted from the store)"
rows=$(sqlite3 "$HQ/store.db" "SELECT (SELECT count(*) FROM job_seeker) + (SELECT count(*) FROM employer) + (SELECT count(*) FROM occupation)")
in_head=$(git -C "$HQ/history" ls-tree -r --name-only HEAD | grep -cv '^_')
commits=$(git -C "$HQ/history" rev-list --count HEAD)
echo "store:   $HQ"
echo "rows in store.db: $rows; rows in the head commit: $in_head; commits: $commits"
[ "$rows" = "$in_head" ] || { echo "demo: store.db and the head disagree" >&2; exit 1; }
echo
echo "Explore:  $S -C $HQ log"
echo "          $S -C $HQ show HEAD"
echo "          git -C $HQ/history log --stat"
echo "          $S -C $DEMO/cas01 log"
echo "Docs:     $SRC/docs/architecture.md, $SRC/docs/store-layout.md, $SRC/docs/protocol.md"

#!/bin/bash
# t18-demo.sh - `make demo`'s scenario on a smaller scale (tools/demo.sh
# with 300 job seekers per branch): it must exit 0 with every claim of its
# summary matching the stores, and fail when a store no longer matches.
# Then the generator itself: deterministic from its seed, the formats of
# what it writes (CNIE, ICE, Arabic names), and bad input refused with the
# store unchanged.
. "$TZ_SRC/tests/cli/lib.sh"
S=$SYNCCTL
cd "$WORK" || exit 1
export TZ_PASSPHRASE="t13 passphrase"
q() { sqlite3 -batch -noheader "$1/store.db" "$2"; }

# --- the demo, small
TZ_DEMO_DIR="$WORK/demo" TZ_DEMO_SEEKERS=300 TZ_DEMO_QUIET=1 sh "$TZ_SRC/tools/demo.sh" "$TZ_BUILD" >demo.out 2>demo.err
ok $? "the demo runs to the end and exits 0"
[ "$(grep -c '^  ok ' demo.out)" -ge 30 ]
ok $? "its summary makes at least 30 claims, all ok ($(grep -c '^  ok ' demo.out))"
! grep -q 'FAIL' demo.out
ok $? "no claim fails"
like demo.out 'C1 persons registered at two branches .* 2$' "C1: two persons registered twice"
like demo.out 'C12 statuses changed on both sides: conflicts queued .* 6$' "C12: six conflicts queued"
like demo.out 'C4 offers with more placements than positions .* 1$' "C4: one over-filled offer"
H="$WORK/demo/hq"
[ "$(q "$H" "SELECT count(*) FROM tz_conflicts WHERE kind = 'data' AND status = 'open'")" = 3 ]
ok $? "three conflicts left open at HQ (read here, not from the summary)"
for st in hq cas01 rab01 aga01; do
	check "$st verifies" "$S" -C "$WORK/demo/$st" verify
done

# tools/agency/integrity.sql against DESIGN §11's tables, on a copy of HQ's rows: its
# invariant names exactly the over-filled offer (the engine's use of it is the integrity issue's)
cp "$H/store.db" integ.db
sqlite3 integ.db "CREATE TABLE IF NOT EXISTS tz_unique(name TEXT PRIMARY KEY, tbl TEXT NOT NULL, cols TEXT NOT NULL, normalize TEXT);
	CREATE TABLE IF NOT EXISTS tz_access(tbl TEXT NOT NULL, col TEXT NOT NULL, writer TEXT NOT NULL, PRIMARY KEY (tbl, col));
	CREATE TABLE IF NOT EXISTS tz_invariant(name TEXT PRIMARY KEY, sql TEXT NOT NULL);
	DELETE FROM tz_unique; DELETE FROM tz_access; DELETE FROM tz_invariant;" 2>/dev/null
sqlite3 integ.db <"$TZ_SRC/tools/agency/integrity.sql" 2>integ.err
ok $? "integrity.sql inserts its declarations"
inv=$(sqlite3 integ.db "SELECT sql FROM tz_invariant WHERE name = 'job_offer_not_overfilled'")
[ "$(sqlite3 integ.db "$inv")" = "$(sqlite3 integ.db "SELECT id FROM job_offer WHERE offer_no LIKE '%-OFF-9%'")" ]
ok $? "its invariant returns the C4 offer and nothing else"
[ "$(q "$H" "SELECT count(*) FROM sqlite_master WHERE name = 'tz_unique'")" = 0 ] ||
	[ "$(q "$H" "SELECT count(*) FROM tz_conflicts WHERE kind = 'invariant' AND tbl = 'job_offer_not_overfilled'")" = 1 ]
ok $? "with the integrity tables in the engine, HQ queued the over-filled offer once as an invariant entry"

# the checks catch a store that no longer matches
sqlite3 "$WORK/demo/rab01/store.db" "DELETE FROM interview WHERE rowid = (SELECT min(rowid) FROM interview)"
TZ_DEMO_DIR="$WORK/demo" TZ_DEMO_CHECK_ONLY=1 TZ_DEMO_QUIET=1 sh "$TZ_SRC/tools/demo.sh" "$TZ_BUILD" >check.out 2>check.err
[ $? -eq 1 ]
ok $? "the summary fails (exit 1) when RAB01 lost an interview"
like check.out 'FAIL +tables identical to HQ.s view of RAB01 \(differ: interview\)' "and names the table that differs"
like check.err 'claim\(s\) of the summary do not match' "with one message on stderr"

# --- the generator
"$S" init-hq g1 >/dev/null && "$S" -C g1 schema apply "$TZ_SRC/tools/agency/schema.sql" >/dev/null
"$S" init-hq g2 >/dev/null && "$S" -C g2 schema apply "$TZ_SRC/tools/agency/schema.sql" >/dev/null
"$S" init-hq g3 >/dev/null && "$S" -C g3 schema apply "$TZ_SRC/tools/agency/schema.sql" >/dev/null
check "generate base (4 branches x 100)" "$S" -C g1 generate base --branches 4 --seekers 100 --seed 7
check "the same again in another store" "$S" -C g2 generate base --branches 4 --seekers 100 --seed 7
check "another seed" "$S" -C g3 generate base --branches 4 --seekers 100 --seed 8
dump() { for t in employer job_offer job_seeker interview application placement workshop workshop_attendance; do
	sqlite3 "$1/store.db" "SELECT * FROM $t ORDER BY id"; done | cksum; }
[ "$(dump g1)" = "$(dump g2)" ]
ok $? "same seed and options: the same rows, byte for byte"
[ "$(dump g1)" != "$(dump g3)" ]
ok $? "another seed: other rows"
[ "$(q g1 "SELECT count(*) FROM job_seeker WHERE id_doc_number NOT GLOB '[A-Z][0-9][0-9][0-9][0-9][0-9][0-9]'
	AND id_doc_number NOT GLOB '[A-Z][A-Z][0-9][0-9][0-9][0-9][0-9][0-9]'")" = 0 ]
ok $? "every CNIE number is one or two letters and six digits"
[ "$(q g1 "SELECT count(DISTINCT id_doc_number) = count(*) FROM job_seeker")" = 1 ]
ok $? "and unique"
[ "$(q g1 "SELECT count(*) FROM employer WHERE ice IS NOT NULL AND (length(ice) <> 15 OR ice GLOB '*[^0-9]*')")" = 0 ]
ok $? "every ICE has 15 digits"
[ "$(q g1 "SELECT count(*) FROM job_seeker WHERE first_name_ar IS NULL OR unicode(first_name_ar) NOT BETWEEN 1536 AND 1791")" = 0 ]
ok $? "every job seeker has an Arabic first name in Arabic script"
[ "$(q g1 "SELECT count(DISTINCT owner_branch) FROM job_seeker")" = 4 ]
ok $? "four branches own job seekers"
[ "$(q g1 "SELECT count(*) FROM job_offer o WHERE positions_total < (SELECT count(*) FROM placement p WHERE p.job_offer_id = o.id)
	AND o.offer_no NOT LIKE '%-OFF-9%'")" = 0 ]
ok $? "no base offer has more placements than positions (only C4's do, later)"
[ "$(q g1 "SELECT (SELECT count(*) FROM application WHERE job_offer_id NOT IN (SELECT id FROM job_offer))
	+ (SELECT count(*) FROM placement WHERE job_offer_id NOT IN (SELECT id FROM job_offer))
	+ (SELECT count(*) FROM job_offer WHERE employer_id NOT IN (SELECT id FROM employer))
	+ (SELECT count(*) FROM interview WHERE job_seeker_id NOT IN (SELECT id FROM job_seeker))")" = 0 ]
ok $? "every reference points to a row (applications and placements to offers, offers to employers)"

before=$(q g1 "SELECT count(*) FROM job_seeker")
fails "a second base in the same store is refused" 1 "$S" -C g1 generate base --branches 4 --seekers 100 --seed 7
like "$WORK/.err" '^syncctl: generate: cannot write territory: .*\(nothing written\)$' "one message, saying nothing was written"
[ "$(q g1 "SELECT count(*) FROM job_seeker")" = "$before" ]
ok $? "the store is as it was"
fails "day without --branch or --hq" 2 "$S" -C g1 generate day
fails "an unknown branch" 2 "$S" -C g1 generate day --branch NOPE01 --branches 4 --seekers 100
like "$WORK/.err" "'NOPE01' is none of the 4 branches" "the message names it"
fails "a bad number" 2 "$S" -C g1 generate base --seekers 12x
fails "an unknown option" 2 "$S" -C g1 generate base --frobnicate
"$S" init-hq g4 >/dev/null && "$S" -C g4 schema apply "$TZ_SRC/tools/agency/schema.sql" >/dev/null
fails "a day at a store without the branch's job seekers" 1 timeout 20 "$S" -C g4 generate day --branch CAS01 \
	--c1 0 --c2 0 --c3 0 --c4 0 --c12 0
like "$WORK/.err" "branch CAS01 has 0 job seekers of its own" "the message says why"
fails "not a store" 1 "$S" -C "$WORK/nowhere" generate base
check "--help" "$S" generate --help
like "$WORK/.out" 'C12' "the help names the scenarios"
check "an HQ day" "$S" -C g1 generate day --hq --branches 4 --seekers 100 --seed 7 --json
json_valid "$WORK/.out" "its --json is one JSON document"
[ "$(sqlite3 :memory: "SELECT json_extract(CAST(readfile('$WORK/.out') AS TEXT), '$.scenarios.c2_transferred')")" = 8 ]
ok $? "it transferred 2 job seekers of each of the 4 branches"
[ "$(q g1 "SELECT count(*) FROM job_seeker WHERE owner_branch <> origin_branch AND origin_branch <> 'WEB'")" = 8 ]
ok $? "and the store says so"
done_testing

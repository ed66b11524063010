#!/bin/sh
# make demo: a public employment agency's day, on a scratch directory.
# HQ and three branches (CAS01 Casablanca, RAB01 Rabat, AGA01 Agadir) on the
# agency schema (tools/agency/schema.sql) with generated data (syncctl
# generate), an offline day at every branch and at HQ with the conflict
# scenarios of domain.md §3 (C1 same person at two branches, C2 transfer, C3
# HQ fixes a name while the branch edits the contact, C4 over-filled offer,
# C12 a status changed on both sides), the sync (CAS01 by USB-style files,
# RAB01 and AGA01 over HTTP through `syncd --hq` on loopback), the conflict
# queue, resolutions, the second sync, and checks of every store.
# The summary's numbers come from queries of the stores and are compared
# with what the generator says it did: any difference exits 1.
#
# Usage: tools/demo.sh BUILD_DIR
#   TZ_DEMO_DIR      scratch directory (default: a new one under $TMPDIR)
#   TZ_DEMO_SEEKERS  job seekers per branch (default 2000; the test uses fewer)
#   TZ_DEMO_QUIET=1  no command echo (the test)
#   TZ_DEMO_CHECK_ONLY=1  only the summary's checks, on the stores of an
#                    earlier run in TZ_DEMO_DIR (the test tampers with them)
set -eu
BUILD=${1:-build}
S="$(cd "$BUILD" && pwd)/syncctl"
SYNCD="$(cd "$BUILD" && pwd)/syncd"
SRC=$(cd "$(dirname "$0")/.." && pwd)
DEMO=${TZ_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/tazamun-demo.XXXXXX")}
N=${TZ_DEMO_SEEKERS:-2000}
QUIET=${TZ_DEMO_QUIET:-0}
BRANCHES="CAS01 RAB01 AGA01"
HQ="$DEMO/hq"
USB="$DEMO/usb"
# the scenarios of one branch's day (the generator's defaults, named here
# because the checks below count on them)
C1=2 C2=2 C3=3 C4=1 C12=2
GEN="--seed 42 --branches 3 --seekers $N"
export TZ_PASSPHRASE="demo: a passphrase told over the phone"
mkdir -p "$DEMO" "$USB"
START=$(date +%s)
OVERFILL_SQL="SELECT o.offer_no, o.positions_total, count(*) FROM job_offer o JOIN placement p ON p.job_offer_id = o.id
	AND p.status IN ('signed', 'started', 'ended') GROUP BY o.id HAVING count(*) > o.positions_total"

# syncd --hq on a free loopback port for the branches with a link
SYNCD_PID=
stop_syncd() {
	if [ -n "$SYNCD_PID" ]; then
		kill -TERM "$SYNCD_PID" 2>/dev/null || :
		wait "$SYNCD_PID" 2>/dev/null || :
		SYNCD_PID=
	fi
}
trap stop_syncd EXIT
start_syncd() {
	rm -f "$DEMO/hq.port"
	"$SYNCD" --hq "$HQ" --listen 127.0.0.1:0 --port-file "$DEMO/hq.port" 2>"$DEMO/syncd-hq.log" &
	SYNCD_PID=$!
	i=0
	while [ ! -s "$DEMO/hq.port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	[ -s "$DEMO/hq.port" ] || { echo "demo: syncd --hq did not start:" >&2; cat "$DEMO/syncd-hq.log" >&2; exit 1; }
	URL="http://127.0.0.1:$(cat "$DEMO/hq.port")"
}
# to_hq B DIR / from_hq B DIR: CAS01 carries a USB key (export, import at
# HQ; later HQ's answer the other way), the others sync over HTTP (one
# cycle: push, HQ imports, pull, the branch imports HQ's answer)
to_hq() {
	if [ "$1" = CAS01 ]; then
		run "$S" -C "$2" export --out "$USB/$1-to-hq.tzb"
		run "$S" -C "$HQ" import "$USB/$1-to-hq.tzb"
	else
		run "$S" -C "$2" sync "$URL"
	fi
}
from_hq() {
	if [ "$1" = CAS01 ]; then
		run "$S" -C "$HQ" export --for "$1" --out "$USB/hq-to-$1.tzb"
		run "$S" -C "$2" import "$USB/hq-to-$1.tzb"
	else
		run "$S" -C "$2" sync "$URL"
	fi
}

step() { printf '\n\033[1m== %s\033[0m  (%ss)\n' "$*" $(($(date +%s) - START)); }
run() { [ "$QUIET" = 1 ] || printf '$ %s\n' "$*"; "$@"; }
# runj FILE COMMAND...: run, keeping its JSON in FILE
runj() { f=$1; shift; [ "$QUIET" = 1 ] || printf '$ %s > %s\n' "$*" "$f"; "$@" >"$f"; }
q() { sqlite3 -batch -noheader "$1/store.db" "$2"; }
FAILED=0
# claim WHAT GOT WANT: one line of the summary; a difference fails the demo
claim() {
	if [ "$2" = "$3" ]; then
		printf '  ok    %-64s %s\n' "$1" "$2"
	else
		printf '  FAIL  %-64s %s (expected %s)\n' "$1" "$2" "$3"
		FAILED=$((FAILED + 1))
	fi
}
# jget FILE PATH: a number from the JSON the generator printed
jget() { sqlite3 :memory: "SELECT json_extract(CAST(readfile('$1') AS TEXT), '$2')"; }

if [ "${TZ_DEMO_CHECK_ONLY:-0}" != 1 ]; then
step "1. Headquarters: a store, the agency schema and its sync declarations"
run "$S" init-hq "$HQ"
run "$S" -C "$HQ" schema apply "$SRC/tools/agency/schema.sql"
if [ "$(q "$HQ" "SELECT count(*) FROM sqlite_master WHERE name IN ('tz_unique', 'tz_invariant', 'tz_access')")" = 3 ]; then
	run "$S" -C "$HQ" schema apply "$SRC/tools/agency/integrity.sql"
else
	echo "(this engine has no tz_unique/tz_invariant/tz_access yet: tools/agency/integrity.sql not applied)"
fi

step "2. The national data: reference tables, employers, offers, 3 x $N job seekers and their history"
runj "$DEMO/base.json" "$S" -C "$HQ" generate base $GEN --progress --json
echo "  $(jget "$DEMO/base.json" '$.rows') rows in $(jget "$DEMO/base.json" '$.seconds') s" \
	"($(jget "$DEMO/base.json" '$.rows_per_second') rows/s): $(jget "$DEMO/base.json" '$.inserted.job_seeker') job seekers," \
	"$(jget "$DEMO/base.json" '$.inserted.employer') employers, $(jget "$DEMO/base.json" '$.inserted.job_offer') offers"
run "$S" -C "$HQ" commit -m "national data as of 2025-11-02"
"$S" -C "$HQ" keys add-admin amina >/dev/null

step "3. Enrol three branches from files (a USB key each; the passphrase travels apart)"
for b in $BRANCHES; do
	lower=$(echo "$b" | tr 'A-Z' 'a-z')
	run "$S" -C "$HQ" branch add "$b" --out "$USB/$b.tze"
	run "$S" init-branch "$DEMO/$lower" --enroll "$USB/$b.tze"
done

step "4. An offline day: every branch works without a connection, and so does HQ"
for b in $BRANCHES; do
	lower=$(echo "$b" | tr 'A-Z' 'a-z')
	runj "$DEMO/day-$b.json" "$S" -C "$DEMO/$lower" generate day --branch "$b" $GEN --json
	echo "  $b: $(jget "$DEMO/day-$b.json" '$.inserted.job_seeker') registrations," \
		"$(jget "$DEMO/day-$b.json" '$.inserted.interview') interviews," \
		"$(jget "$DEMO/day-$b.json" '$.inserted.application') applications," \
		"$(jget "$DEMO/day-$b.json" '$.inserted.placement') placements," \
		"$(jget "$DEMO/day-$b.json" '$.rows') rows written in all"
done
runj "$DEMO/day-HQ.json" "$S" -C "$HQ" generate day --hq $GEN --json
echo "  HQ: $(jget "$DEMO/day-HQ.json" '$.scenarios.c3_name_fixes') names fixed," \
	"$(jget "$DEMO/day-HQ.json" '$.scenarios.c12_status_both') statuses set (automatic deregistration)," \
	"$(jget "$DEMO/day-HQ.json" '$.scenarios.c2_transferred') job seekers transferred," \
	"$(jget "$DEMO/day-HQ.json" '$.inserted.job_seeker') registrations from the web portal"
run "$S" -C "$HQ" commit -m "HQ: identity fixes, transfers, portal registrations"

step "5. The link comes back: CAS01's USB key goes to HQ; RAB01 and AGA01 sync over HTTP with syncd --hq"
start_syncd
echo "  syncd --hq listening on $URL (log: $DEMO/syncd-hq.log)"
for b in $BRANCHES; do
	to_hq "$b" "$DEMO/$(echo "$b" | tr 'A-Z' 'a-z')"
done

step "6. The administrators' queues at HQ"
run "$S" -C "$HQ" conflicts list
run "$S" -C "$HQ" conflicts show 1
echo "C3, merged column by column without asking (HQ's name, the branch's phone):"
run sqlite3 "$HQ/store.db" "SELECT owner_branch, last_name_lat, first_name_lat, phone FROM job_seeker
	WHERE last_name_lat = upper(last_name_lat) AND phone LIKE '+2127%' ORDER BY owner_branch LIMIT 4"
if "$S" duplicates --help >/dev/null 2>&1; then
	run "$S" -C "$HQ" duplicates list
else
	echo "duplicate job seekers by national ID (a query; the duplicates queue comes with the integrity issue):"
	run sqlite3 "$HQ/store.db" "SELECT id_doc_number, group_concat(owner_branch || ' ' || first_name_lat || ' ' || last_name_lat || ' ' || phone, ' | ')
		FROM job_seeker GROUP BY id_doc_type, id_doc_number HAVING count(*) > 1"
fi
echo "over-filled offers (C4):"
run sqlite3 "$HQ/store.db" "$OVERFILL_SQL"

step "7. Resolve: CAS01's statuses as the branch set them (signed by administrator amina), one of RAB01's as HQ set it"
# by id, the data entries only (other kinds come with the integrity issue)
cas_ids=$(q "$HQ" "SELECT group_concat(id, ' ') FROM tz_conflicts WHERE branch = 'CAS01' AND kind = 'data' AND status = 'open'")
first_rab=$(q "$HQ" "SELECT min(id) FROM tz_conflicts WHERE branch = 'RAB01' AND kind = 'data' AND status = 'open'")
run "$S" -C "$HQ" conflicts resolve $cas_ids --theirs --as amina
run "$S" -C "$HQ" conflicts resolve "$first_rab" --ours --as amina

step "8. HQ answers every branch (a file for CAS01, the next sync for the others); the branches take the answers"
for b in $BRANCHES; do
	from_hq "$b" "$DEMO/$(echo "$b" | tr 'A-Z' 'a-z')"
done
stop_syncd
echo "  syncd --hq stopped after $(grep -c ' s)$' "$DEMO/syncd-hq.log" || :) imports over HTTP"


step "9. Verify every store: syncctl verify, and stock git verify-commit on every commit"
"$S" -C "$HQ" keys allowed-signers >"$DEMO/allowed_signers"
for st in hq cas01 rab01 aga01; do
	run "$S" -C "$DEMO/$st" verify
	n=0
	for c in $(git -C "$DEMO/$st/history" rev-list --all); do
		git -C "$DEMO/$st/history" -c gpg.ssh.allowedSignersFile="$DEMO/allowed_signers" verify-commit "$c" 2>/dev/null ||
			{ echo "demo: commit $c of $st does not verify with git" >&2; exit 1; }
		n=$((n + 1))
	done
	echo "  $st: $n commits, every one verified by git verify-commit"
done
fi

step "10. Summary: what the stores hold, against what the generator did"
TABLES="territory occupation programme employer job_offer job_seeker interview application placement workshop workshop_attendance"
OWNED="job_seeker interview application placement workshop workshop_attendance"
# sum PATH: the sum of a number over the base and the four days
sum() {
	t=0
	for f in "$DEMO/base.json" "$DEMO"/day-*.json; do
		v=$(jget "$f" "$1")
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
echo "HQ ($HQ):"
for t in $TABLES; do
	claim "rows of $t" "$(q "$HQ" "SELECT count(*) FROM $t")" "$(sum "\$.inserted.$t")"
done
total=0
for t in $TABLES; do total=$((total + $(q "$HQ" "SELECT count(*) FROM $t"))); done
claim "rows in the head commit = rows in store.db" "$(git -C "$HQ/history" ls-tree -r --name-only HEAD | grep -cv '^_')" "$total"
claim "applications and placements whose offer is missing" \
	"$(q "$HQ" "SELECT (SELECT count(*) FROM application WHERE job_offer_id NOT IN (SELECT id FROM job_offer))
		+ (SELECT count(*) FROM placement WHERE job_offer_id NOT IN (SELECT id FROM job_offer))")" 0
claim "C1 persons registered at two branches (same national ID)" \
	"$(q "$HQ" "SELECT count(*) FROM (SELECT 1 FROM job_seeker GROUP BY id_doc_type, id_doc_number HAVING count(*) > 1)")" \
	"$(($(sum '$.scenarios.c1_persons') / 2))"
claim "C2 job seekers transferred by HQ, now at the next branch" \
	"$(q "$HQ" "SELECT count(*) FROM job_seeker WHERE owner_branch <> origin_branch AND origin_branch <> 'WEB'")" \
	"$(jget "$DEMO/day-HQ.json" '$.scenarios.c2_transferred')"
claim "C3 rows with HQ's name fix and the branch's new phone" \
	"$(q "$HQ" "SELECT count(*) FROM job_seeker WHERE last_name_lat = upper(last_name_lat) AND phone LIKE '+2127%'")" \
	"$(jget "$DEMO/day-HQ.json" '$.scenarios.c3_name_fixes')"
claim "C4 offers with more placements than positions" \
	"$(q "$HQ" "SELECT count(*) FROM ($OVERFILL_SQL)")" "$(jget "$DEMO/day-CAS01.json" '$.scenarios.c4_offers')"
claim "C12 statuses changed on both sides: conflicts queued" \
	"$(q "$HQ" "SELECT count(*) FROM tz_conflicts WHERE kind = 'data' AND tbl = 'job_seeker'")" \
	"$(jget "$DEMO/day-HQ.json" '$.scenarios.c12_status_both')"
claim "conflicts resolved (CAS01's as the branch set them, one of RAB01's)" \
	"$(q "$HQ" "SELECT count(*) FROM tz_conflicts WHERE status = 'resolved'")" "$((C12 + 1))"
claim "data conflicts still open" "$(q "$HQ" "SELECT count(*) FROM tz_conflicts WHERE kind = 'data' AND status = 'open'")" \
	"$(($(jget "$DEMO/day-HQ.json" '$.scenarios.c12_status_both') - C12 - 1))"
for b in $BRANCHES; do
	lower=$(echo "$b" | tr 'A-Z' 'a-z')
	echo "$b ($DEMO/$lower):"
	same=0 differ=""
	for t in $TABLES; do
		w=""
		case " $OWNED " in *" $t "*) w="WHERE owner_branch = '$b'" ;; esac
		a=$(q "$HQ" "SELECT * FROM $t $w ORDER BY 1" | cksum)
		c=$(q "$DEMO/$lower" "SELECT * FROM $t ORDER BY 1" | cksum)
		if [ "$a" = "$c" ]; then same=$((same + 1)); else differ="$differ $t"; fi
	done
	claim "tables identical to HQ's view of $b${differ:+ (differ:$differ)}" "$same" 11
	claim "rows of other branches it still holds" "$(q "$DEMO/$lower" "SELECT count(*) FROM job_seeker WHERE owner_branch <> '$b'")" 0
	claim "C2 job seekers received from the previous branch" \
		"$(q "$DEMO/$lower" "SELECT count(*) FROM job_seeker WHERE origin_branch NOT IN ('$b', 'WEB')")" "$C2"
	claim "C3 rows with HQ's name and the branch's phone" \
		"$(q "$DEMO/$lower" "SELECT count(*) FROM job_seeker WHERE last_name_lat = upper(last_name_lat) AND phone LIKE '+2127%'")" "$C3"
done
claim "CAS01 holds the statuses it set (resolved --theirs)" \
	"$(q "$DEMO/cas01" "SELECT count(*) FROM job_seeker WHERE status_reason IN ('placé en CDI (contrat signé)', 'inscrit à la formation Taehil')")" "$C12"
claim "RAB01 holds HQ's status on its conflicting rows (one --ours, one provisional)" \
	"$(q "$DEMO/rab01" "SELECT count(*) FROM job_seeker WHERE status_reason LIKE 'radiation automatique%'")" "$C12"
[ "$(q "$HQ" "SELECT count(*) FROM sqlite_master WHERE name = 'tz_unique'")" = 1 ] &&
	echo "(integrity declarations applied: tools/agency/integrity.sql)"

echo
echo "Took $(($(date +%s) - START)) s. Stores in $DEMO. Explore:"
echo "  $S -C $HQ status                  # head, open conflicts"
echo "  $S -C $HQ conflicts list --all    # the queue, resolved entries too"
echo "  $S -C $HQ log -n 5                # who committed what, signatures checked"
echo "  $S -C $DEMO/cas01 diff HEAD~1 HEAD  # what CAS01's last sync changed"
echo "  git -C $HQ/history log --graph --oneline --all"
echo "  sqlite3 $HQ/store.db 'SELECT owner_branch, count(*) FROM job_seeker GROUP BY 1'"
echo "Docs: $SRC/README.md, $SRC/docs/architecture.md, $SRC/docs/merge.md, $SRC/docs/protocol.md"
if [ "$FAILED" -gt 0 ]; then
	echo "demo: $FAILED claim(s) of the summary do not match the stores" >&2
	exit 1
fi

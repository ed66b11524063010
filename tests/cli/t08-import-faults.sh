#!/usr/bin/env bash
# t08-import-faults.sh - fault sweeps of import (DESIGN §9: "fail the k-th
# allocation / write / fsync"; docs/protocol.md "The cycle": every import is
# all or nothing, a refused bundle changes neither store.db nor any ref).
#
# For HQ importing a branch's bundle, then the branch importing HQ's answer
# over uncommitted local changes (P14: the import commits them first, then
# merges the answer under them, P15), and for each fault site (alloc,
# write, fsync, rename): TZ_FAULTSIM=site:k on a fresh copy of the store,
# k = 1, 2, ... until TZ_FAULTSIM_REPORT says the fault no longer fired,
# which must then be a clean import.  alloc: every k up to 200, then k grows
# by 1.3x, then every k of the last TZ_SWEEP_TAIL (100) calls, found by
# bisection: the last calls of an import are its SQLite transaction
# (materialising rows, skipping those the change log names).
# After an import that failed: exit 1, exactly one line on stderr, store.db
# unchanged (its .dump, whether or not the WAL was checkpointed), the refs
# unchanged - or, at the branch, a fault after the import sealed the pending
# changes leaves that commit and nothing else of the import: the state of a
# 'syncctl commit' of them (same rows, trees and base, an empty change log)
# - verify passes, then a clean import on that same store ends in
# the state of an uninterrupted import.  An import that exits 0 despite the
# fault (a ref move, redone by the next open; the store lock's path at open,
# which skips the reconcile) must leave that same state, verify, and refs
# that agree with store.db once a command opened the store; its rows are
# checked on their own line per sweep (at the branch: P14, the local rows).
# Last, HQ with pending changes of its own: a failed import loses none.
# Under SAN=1 this also proves the error paths free what they allocate.
. "$TZ_SRC/tests/cli/lib.sh"
S=$SYNCCTL
cd "$WORK" || exit 1

q() { sqlite3 "$1/store.db" "$2"; }
meta() { q "$1" "SELECT v FROM tz_meta WHERE k = '$2'"; }
rev() { git -C "$1/history" rev-parse -q --verify "$2" 2>/dev/null; }
# everything SQLite holds, whether or not the WAL was checkpointed
dump_sum() { sqlite3 "$1/store.db" .dump | sha256sum | cut -c1-64; }
refs_of() { git -C "$1/history" for-each-ref --format='%(refname) %(objectname)'; }
rows() {
	sqlite3 -separator '|' "$1/store.db" "
	  SELECT 'person', quote(id), quote(owner), quote(name), quote(n), quote(photo) FROM person ORDER BY id;
	  SELECT 'item', quote(id), quote(title), quote(qty), quote(price) FROM item ORDER BY id;"
}
# state STORE: one line, from one sqlite3 and one git run: hashes of the
# tracked rows and of the change log, the number of bundles recorded, then
# at HQ the trees of main's head and of CAS01's line (commit ids carry a
# time), at the branch the tree of the head (a local merge's id carries a
# time too) and the base; last "refs-ok" when the refs are what store.db
# records, else "refs-differ"
state() {
	local rh lh nb hd ln bs t
	read -r rh lh nb hd ln bs < <(sqlite3 -separator ' ' "$1/store.db" "SELECT
	  hex(sha3_query('SELECT * FROM person ORDER BY id; SELECT * FROM item ORDER BY id')),
	  hex(sha3_query('SELECT * FROM tz_changes ORDER BY seq')), (SELECT count(*) FROM tz_bundles),
	  (SELECT v FROM tz_meta WHERE k = 'head'), coalesce((SELECT line FROM tz_lines WHERE code = 'CAS01'), '-'),
	  (SELECT v FROM tz_meta WHERE k = 'base')")
	if [ "$ln" != - ]; then
		t=$(git -C "$1/history" rev-parse "$hd^{tree}" "$ln^{tree}" main branches/CAS01 2>/dev/null | tr '\n' ' ')
		echo "$rh $lh $nb ${t% * * } $([ "${t#* * }" = "$hd $ln " ] && echo refs-ok || echo refs-differ)"
	else
		t=$(git -C "$1/history" rev-parse "$hd^{tree}" main 2>/dev/null | tr '\n' ' ')
		echo "$rh $lh $nb ${t%% *} $bs $([ "${t#* }" = "$hd " ] && echo refs-ok || echo refs-differ)"
	fi
}

cat >schema.sql <<'SQL'
CREATE TABLE person(id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT, n INTEGER, photo BLOB);
CREATE TABLE item(id INTEGER PRIMARY KEY, title TEXT, qty INTEGER, price REAL);
INSERT INTO tz_track VALUES ('person', 'owned', 'owner'), ('item', 'shared', NULL);
-- the integrity checks run inside the import's transaction too: the
-- branch's two 'new' persons make a duplicate, its qty updates are checked
INSERT INTO tz_unique VALUES ('person_name', 'person', 'name', NULL);
INSERT INTO tz_invariant VALUES ('item_qty', 'SELECT id FROM item WHERE qty > 1000');
SQL
# ---- set-up: HQ, one branch, a bundle each way ----
"$S" init-hq hq >/dev/null && "$S" -C hq schema apply schema.sql >/dev/null
sqlite3 hq/store.db "
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 40)
  INSERT INTO person SELECT printf('CAS01-%03d', i), 'CAS01', 'name ' || i, i, randomblob(i) FROM c;
  INSERT INTO person VALUES ('HQ-1', 'HQ', 'hq', 1, NULL);
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 30)
  INSERT INTO item SELECT i, 'item ' || i, i, i * 1.5 FROM c;"
check "set-up: HQ commits" "$S" -C hq commit
printf 'cas01 passphrase, long enough\n' >pass
check "set-up: branch add CAS01" "$S" -C hq branch add CAS01 --out cas.tze --passphrase-file pass
check "set-up: init-branch CAS01" "$S" init-branch cas --enroll cas.tze --passphrase-file pass
sqlite3 cas/store.db "
  UPDATE person SET name = name || '!' WHERE CAST(substr(id, 7) AS INTEGER) % 4 = 0;
  INSERT INTO person VALUES ('CAS01-N1', 'CAS01', 'new', 1, x'00'), ('CAS01-N2', 'CAS01', 'new', 2, NULL);
  DELETE FROM person WHERE id IN ('CAS01-001', 'CAS01-002');
  UPDATE item SET qty = qty + 1 WHERE id % 6 = 0;"
check "set-up: CAS01 exports" "$S" -C cas export --out b.tzb
cp -a hq hq0 && cp -a cas cas0
cp -a hq0 hqref
check "reference: HQ imports the bundle" "$S" -C hqref import b.tzb
H_STATE=$(state hqref)
rows hqref >ref-hq.rows
[ "${H_STATE%% *}" != "$(state hq0 | cut -d' ' -f1)" ] && [ "${H_STATE##* }" = refs-ok ]
ok $? "reference: the import changed HQ's rows"
sqlite3 hqref/store.db "
  UPDATE item SET title = title || ' v2' WHERE id % 3 = 0;
  INSERT INTO item VALUES (100, 'hq new', 1, 0.5), (101, 'hq new', 2, NULL);
  DELETE FROM item WHERE id IN (29, 30);
  UPDATE person SET n = -n WHERE id IN ('CAS01-010', 'CAS01-011', 'CAS01-012');"
check "set-up: HQ's answer for CAS01" "$S" -C hqref export --for CAS01 --out r.tzb
# uncommitted local work at the branch, on rows the answer changes too
cp -a cas0 cas1
sqlite3 cas1/store.db "UPDATE item SET title = 'local' WHERE id IN (3, 6, 7, 30);
  UPDATE person SET name = 'local' WHERE id = 'CAS01-011';
  INSERT INTO person VALUES ('CAS01-L1', 'CAS01', 'local', 1, NULL);"
cp -a cas1 casref && cp -a cas1 cas1s
check "reference: CAS01 imports the answer" "$S" -C casref import r.tzb
like "$WORK/.out" '^committed 6 pending changes first$' "reference: P14: the pending changes were committed first"
B_STATE=$(state casref)
rows casref >ref-br.rows
[ "$(rev casref HEAD^2)" = "$(rev hqref branches/CAS01)" ] && [ "$(rev casref HEAD^^)" = "$(meta cas1 head)" ] &&
	[ "$(q casref "SELECT count(*) FROM tz_changes")" = 0 ] &&
	[ "$(q casref "SELECT group_concat(title) FROM item WHERE id IN (3, 6, 7, 100)")" = "local,local,local,hq new" ] &&
	[ "$(q casref "SELECT group_concat(name) FROM person WHERE id IN ('CAS01-011', 'CAS01-L1')")" = local,local ]
ok $? "reference: CAS01 merged HQ's line under its sealed changes (P15): its edits stay, HQ's arrive"
# what a fault after the seal may leave at the branch: the pending changes committed
check "reference: CAS01's pending changes committed" "$S" -C cas1s commit
S_STATE=$(state cas1s)
# sealed STORE: the branch's pending changes committed, nothing else of the import
sealed() { [ "$SIDE" = br ] && [ "$(state "$1")" = "$S_STATE" ] && [ "$(rev "$1" HEAD^)" = "$(meta cas1 head)" ]; }

# imported STORE: the state of an uninterrupted import, refs included
imported() {
	local want=$H_STATE
	[ "$SIDE" = br ] && want=$B_STATE
	[ "$(state "$1")" = "$want" ]
}

# run K: one import with SITE's K-th call failing, on a fresh copy of SRC,
# checked; FIRED: whether the fault fired
run() {
	local k=$1 rc
	RUNS=$((RUNS + 1))
	rm -rf w f && cp -a "$SRC" w
	# under SAN=1, libgit2's own leaks on its failed allocations are not
	# ours (t03 says more)
	local asan=${ASAN_OPTIONS:-}
	[ "$SITE" = gitalloc ] && asan="${asan:+$asan:}detect_leaks=0"
	ASAN_OPTIONS=$asan TZ_FAULTSIM="$SITE:$k" TZ_FAULTSIM_REPORT="$WORK/f" "$S" -C w import "$BUNDLE" >out 2>err
	rc=$?
	FIRED=$(cat f 2>/dev/null)
	if [ "$FIRED" = "not fired" ]; then
		# past the last call: an import without a fault
		[ $rc -eq 0 ] && imported w && "$S" -C w verify >/dev/null 2>&1 ||
			{ BAD=$((BAD + 1)); echo "# $SIDE $SITE:$k: no fault, but exit $rc or not the reference state"; }
		return
	fi
	# a crash: a signal, or under SAN=1 AddressSanitizer's SEGV report (exit 1)
	if [ -z "$FIRED" ] && [ "$SITE" = gitalloc ] && { [ $rc -gt 128 ] || grep -q 'AddressSanitizer: SEGV' err; }; then
		# libgit2 1.5.1 crashes on some failed allocations of its own
		# (docs/testing.md): like a kill, that must leave the store as it
		# was or, past the import's commit point (the refs move after
		# SQLite's transaction; the next open moves them), as an
		# uninterrupted import leaves it; verify passes either way
		CRASHED="$CRASHED $k" FIRED=fired
		if ! "$S" -C w verify >/dev/null 2>&1; then
			BAD=$((BAD + 1)); echo "# $SIDE $SITE:$k: libgit2 crashed (exit $rc) and verify fails"
		elif { [ "$(dump_sum w)" != "$D0" ] || [ "$(refs_of w)" != "$R0" ]; } && ! imported w && ! sealed w; then
			BAD=$((BAD + 1)); echo "# $SIDE $SITE:$k: libgit2 crashed (exit $rc): the store is neither as before nor imported"
		fi
	elif [ "$FIRED" != fired ]; then
		BAD=$((BAD + 1)); echo "# $SIDE $SITE:$k: exit $rc and no fault report (a crash?)"
		sed 's/^/#   /' err | head -5
	elif [ $rc -eq 0 ]; then
		SURVIVED=$((SURVIVED + 1)) SURVIVORS="$SURVIVORS $k"
		# a step allowed to fail: the next open (verify's) redoes it
		"$S" -C w verify >/dev/null 2>&1 || { BAD=$((BAD + 1)); echo "# $SIDE $SITE:$k: exit 0, but verify fails"; }
		if ! imported w; then
			rows w >w.rows
			if cmp -s w.rows "ref-$SIDE.rows"; then
				BAD=$((BAD + 1)); echo "# $SIDE $SITE:$k: exit 0, but then: $(state w) (want: $([ "$SIDE" = hq ] && echo "$H_STATE" || echo "$B_STATE"))"
			else
				# rows other than an uninterrupted import's: P14 at a branch
				LOST="$LOST $k"
				echo "# $SIDE $SITE:$k: exit 0 ($(head -1 out)), but store.db's rows differ from an uninterrupted import's:"
				diff "ref-$SIDE.rows" w.rows | grep '^[<>]' | sed 's/^/#   /' | head -4
			fi
		fi
	elif [ $rc -eq 1 ]; then
		FAILED=$((FAILED + 1))
		[ $k -gt $LAST ] && LAST=$k
		if [ "$(wc -l <err)" -ne 1 ] || ! grep -q '^syncctl: import: ' err; then
			BAD=$((BAD + 1)); echo "# $SIDE $SITE:$k: exit 1 but not one error line:"; sed 's/^/#   /' err | head -5
		fi
		if [ "$(dump_sum w)" = "$D0" ] && [ "$(refs_of w)" = "$R0" ]; then
			:
		elif sealed w; then
			SEALS=$((SEALS + 1))
			grep -q "pending changes were committed first and stay committed" err ||
				{ BAD=$((BAD + 1)); echo "# $SIDE $SITE:$k: the pending changes were committed, but the message does not say so: $(cat err)"; }
		else
			BAD=$((BAD + 1)); echo "# $SIDE $SITE:$k: the import failed, but store.db or a ref changed: $(cat err)"
		fi
		"$S" -C w verify >/dev/null 2>&1 || { BAD=$((BAD + 1)); echo "# $SIDE $SITE:$k: verify fails after the failed import"; }
		"$S" -C w import "$BUNDLE" >out 2>err && imported w ||
			{ BAD=$((BAD + 1)); echo "# $SIDE $SITE:$k: a clean import after the failure does not end in the reference state"; sed 's/^/#   /' err | head -3; }
	else
		BAD=$((BAD + 1)); echo "# $SIDE $SITE:$k: exit $rc"; sed 's/^/#   /' err | head -5
	fi
}

# sweep SIDE SITE
TAIL=${TZ_SWEEP_TAIL:-100}
sweep() {
	local k=0 lo hi m
	local -A seen=()
	SIDE=$1 SITE=$2 BAD=0 FAILED=0 SURVIVED=0 RUNS=0 LAST=0 SURVIVORS= LOST= CRASHED= SEALS=0
	# allocations: every k under TZ_LONG=1; else every k up to 200, then
	# k grows by 30% and the end is bisected and its last TAIL k run
	local geo=0
	case $SITE in alloc | gitalloc) [ "${TZ_LONG:-0}" = 1 ] || geo=1 ;; esac
	if [ "$SIDE" = hq ]; then SRC=hq0 BUNDLE=b.tzb; else SRC=cas1 BUNDLE=r.tzb; fi
	D0=$(dump_sum "$SRC") R0=$(refs_of "$SRC")
	while :; do
		if [ $geo = 1 ] && [ $k -ge 200 ]; then k=$((k * 13 / 10)); else k=$((k + 1)); fi
		run $k
		seen[$k]=1
		[ "$FIRED" = fired ] || break
		[ $k -lt 1000000 ] || { BAD=$((BAD + 1)); echo "# $SIDE $SITE: still firing at k = $k"; break; }
	done
	if [ $geo = 1 ] && [ $k -gt 200 ]; then
		# the last call N lies in (k / 1.3, k): bisect, then every k of N - TAIL .. N
		lo=$((k * 10 / 13)) hi=$k
		while [ $((hi - lo)) -gt 1 ]; do
			m=$(((lo + hi) / 2))
			run $m
			seen[$m]=1
			if [ "$FIRED" = fired ]; then lo=$m; else hi=$m; fi
		done
		for ((m = lo - TAIL + 1; m <= lo; m++)); do
			[ -n "${seen[$m]:-}" ] || run $m
		done
		k=$hi
	fi
	echo "# tally: sweep_steps=$RUNS"
	ok $BAD "$SIDE import, $SITE sweep: $RUNS runs, the fault fires for k up to $((k - 1)) ($FAILED clean failures up to k = $LAST, the store unchanged$([ "$SIDE" = br ] && echo " or, $SEALS of them, only the pending changes committed"); $SURVIVED survived by design)"
	[ -z "$SURVIVORS" ] || echo "# $SIDE $SITE: exit 0 despite the fault at k =$SURVIVORS"
	[ -z "$CRASHED" ] || echo "# $SIDE $SITE: libgit2 crashed (store unchanged) at k =$CRASHED"
	[ -z "$LOST" ]
	ok $? "$SIDE import, $SITE sweep: P14: no import that exits 0 despite the fault leaves other rows in store.db than an uninterrupted import${LOST:+ (k =$LOST did)}"
}

for side in hq br; do
	# below the libraries (sql: ~100 calls per import; gitalloc: ~1,200
	# libgit2 allocations, libgit2's own crashes among them) only in make
	# test-long, to keep make test's budget, except HQ's sql sweep (below);
	# t03 sweeps both for commit
	# sql at HQ stays in make test: a failed read inside the import's
	# transaction once passed for "no more rows" after SQLite had rolled the
	# transaction back, and later statements ran outside it
	for site in alloc write fsync rename $([ $side = hq ] && echo sql) $([ "${TZ_LONG:-0}" = 1 ] && echo gitalloc $([ $side = br ] && echo sql)); do
		sweep $side $site
	done
done

# HQ with pending changes of its own (on rows the branch did not change):
# a fault fails the import, which must lose none of them (whether the import
# had sealed them in a commit first, as P10 said, or leaves them pending);
# a clean import then succeeds, and after a commit main holds both.
pending=0 sealed=0
for f in write:2 fsync:2 write:3; do
	rm -rf w && cp -a hq0 w
	sqlite3 w/store.db "UPDATE person SET name = 'hq pending' WHERE id = 'HQ-1'; UPDATE item SET price = -1 WHERE id = 1;"
	h=$(meta w head)
	TZ_FAULTSIM=$f "$S" -C w import b.tzb >out 2>err
	rc=$?
	[ $rc -eq 1 ] && [ "$(wc -l <err)" = 1 ] && "$S" -C w verify >/dev/null 2>&1 &&
		[ "$(q w "SELECT name FROM person WHERE id = 'HQ-1'")|$(q w "SELECT price FROM item WHERE id = 1")" = "hq pending|-1.0" ]
	ok $? "hq, pending changes, $f: the import fails (exit $rc), verify passes, HQ's pending values are in store.db"
	if [ "$(meta w head)" = "$h" ]; then pending=$((pending + 1)); else sealed=$((sealed + 1)); fi
	"$S" -C w import b.tzb >out 2>err && "$S" -C w verify >/dev/null 2>&1 && "$S" -C w commit >/dev/null 2>>err &&
		[ "$(q w "SELECT count(*) FROM tz_changes")" = 0 ] && "$S" -C w verify >/dev/null 2>&1 &&
		git -C w/history ls-tree -r main person/HQ | grep -q '/HQ-1$' &&
		git -C w/history cat-file -p "$(git -C w/history ls-tree -r main person/HQ | awk '/\/HQ-1$/ { print $3 }')" | grep -qx 'name t hq pending' &&
		diff <(rows w) ref-hq.rows | sed -n 's/^[<>] //p' | cut -d'|' -f1-2 | sort -u | tr '\n' ' ' | grep -qx "item|1 person|'HQ-1' "
	ok $? "hq, pending changes, $f: a clean import then succeeds; after a commit main holds HQ's values and the branch's rows"
	sed 's/^/# /' err | head -3
done
echo "# of the failed imports, $sealed had sealed HQ's pending changes in a commit first (head moved, change log emptied), $pending had not"
done_testing

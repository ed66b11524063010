#!/usr/bin/env bash
# t16-resolve-faults.sh - fault sweep of `conflicts resolve` (docs/merge.md
# "Resolving"): the resolution is all or nothing.  Its commit's objects are
# written first, then one SQLite transaction holds the resolved rows, the
# new head and the queue entries marked, then the ref moves.  For each fault
# site (alloc, write, fsync, rename, sql): TZ_FAULTSIM=site:k on a fresh copy
# of a store with two open conflicts, k = 1, 2, ... until the fault no longer
# fires.  A resolution that fails: exit 1, one line on stderr, store.db
# unchanged (its .dump) and the refs unchanged, verify passes, the entries
# still open, and a clean resolution then succeeds.  One that exits 0 despite
# the fault (the ref move, redone by the next open) must verify and hold the
# resolved state.  Before this, a failed commit left the rows written and put
# them back in a second transaction, and the queue was marked in a third.
. "$TZ_SRC/tests/cli/lib.sh"
S=$SYNCCTL
cd "$WORK" || exit 1
export TZ_PASSPHRASE="t11 passphrase"

q() { sqlite3 "$1/store.db" "$2"; }
dump_sum() { sqlite3 "$1/store.db" .dump | sha256sum | cut -c1-64; }
refs_of() { git -C "$1/history" for-each-ref --format='%(refname) %(objectname)'; }
# the resolved state: values, queue, head == main, change log empty
state() {
	echo "$(q "$1" "SELECT group_concat(id || '=' || status, ',') FROM (SELECT id, status FROM job_seeker ORDER BY id)")" \
	     "$(q "$1" "SELECT group_concat(id || ':' || status || ':' || coalesce(resolved_by, '-'), ',') FROM tz_conflicts")" \
	     "$(q "$1" "SELECT count(*) FROM tz_changes")" \
	     "$([ "$(q "$1" "SELECT v FROM tz_meta WHERE k = 'head'")" = "$(git -C "$1/history" rev-parse main)" ] && echo refs-ok || echo refs-differ)"
}

cat >schema.sql <<'SQL'
CREATE TABLE job_seeker(id TEXT PRIMARY KEY, status TEXT, note TEXT, owner_branch TEXT NOT NULL);
INSERT INTO tz_track VALUES ('job_seeker', 'owned', 'owner_branch');
INSERT INTO tz_policy VALUES ('job_seeker', '*', 'manual');
SQL
"$S" init-hq hq >/dev/null && "$S" -C hq schema apply schema.sql >/dev/null
q hq "INSERT INTO job_seeker VALUES ('C1', 'active', 'a', 'CAS01'), ('C2', 'active', 'b', 'CAS01'),
  ('C3', 'active', 'c', 'CAS01')"
"$S" -C hq commit -m base >/dev/null
"$S" -C hq keys add-admin amina >/dev/null
"$S" -C hq branch add CAS01 --out cas.tze >/dev/null && "$S" init-branch cas --enroll cas.tze >/dev/null
q hq "UPDATE job_seeker SET status = 'placed' WHERE id IN ('C1', 'C2')"
q cas "UPDATE job_seeker SET status = 'training' WHERE id IN ('C1', 'C2')"
"$S" -C hq commit >/dev/null && "$S" -C cas export --out c1.tzb >/dev/null
check "set-up: HQ imports two conflicting edits" "$S" -C hq import c1.tzb
[ "$(q hq "SELECT count(*) FROM tz_conflicts WHERE status = 'open'")" = 2 ]; ok $? "two open conflicts"
cp -a hq hq0 && cp -a hq ref
check "reference: resolve 1 2 --theirs --as amina" "$S" -C ref conflicts resolve 1 2 --theirs --as amina
REF=$(state ref)
[ "$REF" = "C1=training,C2=training,C3=active 1:resolved:amina,2:resolved:amina 0 refs-ok" ]
ok $? "reference: the branch's values, both entries resolved by amina ($REF)"
D0=$(dump_sum hq0) R0=$(refs_of hq0)

run() {
	local k=$1 rc
	RUNS=$((RUNS + 1))
	rm -rf w f && cp -a hq0 w
	TZ_FAULTSIM="$SITE:$k" TZ_FAULTSIM_REPORT="$WORK/f" "$S" -C w conflicts resolve 1 2 --theirs --as amina >out 2>err
	rc=$?
	FIRED=$(cat f 2>/dev/null)
	if [ "$FIRED" = "not fired" ]; then
		[ $rc -eq 0 ] && [ "$(state w)" = "$REF" ] && "$S" -C w verify >/dev/null 2>&1 ||
			{ BAD=$((BAD + 1)); echo "# $SITE:$k: no fault, but exit $rc or not the reference state: $(state w)"; }
	elif [ "$FIRED" != fired ]; then
		BAD=$((BAD + 1)); echo "# $SITE:$k: exit $rc and no fault report (a crash?)"; sed 's/^/#   /' err | head -3
	elif [ $rc -eq 0 ]; then
		SURVIVED=$((SURVIVED + 1))
		"$S" -C w verify >/dev/null 2>&1 && [ "$(state w)" = "$REF" ] ||
			{ BAD=$((BAD + 1)); echo "# $SITE:$k: exit 0 despite the fault, but then: $(state w)"; }
	elif [ $rc -eq 1 ]; then
		FAILED=$((FAILED + 1))
		[ "$(wc -l <err)" -eq 1 ] || { BAD=$((BAD + 1)); echo "# $SITE:$k: not one error line:"; sed 's/^/#   /' err | head -3; }
		[ "$(dump_sum w)" = "$D0" ] && [ "$(refs_of w)" = "$R0" ] ||
			{ BAD=$((BAD + 1)); echo "# $SITE:$k: the resolution failed, but store.db or a ref changed: $(cat err)"; }
		"$S" -C w verify >/dev/null 2>&1 || { BAD=$((BAD + 1)); echo "# $SITE:$k: verify fails after the failure"; }
		"$S" -C w conflicts resolve 1 2 --theirs --as amina >/dev/null 2>err && [ "$(state w)" = "$REF" ] ||
			{ BAD=$((BAD + 1)); echo "# $SITE:$k: a clean resolution after the failure does not end resolved: $(state w)"; }
	else
		BAD=$((BAD + 1)); echo "# $SITE:$k: exit $rc"; sed 's/^/#   /' err | head -3
	fi
}

# every k while the fault fires (alloc: every k to 100, then 1.2x steps and
# the last TAIL calls found by bisection, where the transaction is)
TAIL=${TZ_SWEEP_TAIL:-60}
sweep() {
	local k=0 lo hi m
	local -A seen=()
	SITE=$1 BAD=0 FAILED=0 SURVIVED=0 RUNS=0
	while :; do
		if [ "$SITE" = alloc ] && [ $k -ge 100 ]; then k=$((k * 12 / 10)); else k=$((k + 1)); fi
		run $k
		seen[$k]=1
		[ "$FIRED" = fired ] || break
		[ $k -lt 1000000 ] || { BAD=$((BAD + 1)); echo "# $SITE: still firing at k = $k"; break; }
	done
	if [ "$SITE" = alloc ] && [ $k -gt 100 ]; then
		lo=$((k * 10 / 12)) hi=$k
		while [ $((hi - lo)) -gt 1 ]; do
			m=$(((lo + hi) / 2)); run $m; seen[$m]=1
			if [ "$FIRED" = fired ]; then lo=$m; else hi=$m; fi
		done
		for ((m = lo - TAIL + 1; m <= lo; m++)); do [ -n "${seen[$m]:-}" ] || run $m; done
		k=$hi
	fi
	ok $BAD "resolve, $SITE sweep: $RUNS runs, the fault fires for k up to $((k - 1)) ($FAILED clean failures, store.db and refs unchanged; $SURVIVED survived by design)"
}
for site in alloc write fsync rename sql; do
	sweep $site
done
done_testing

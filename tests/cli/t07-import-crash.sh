#!/usr/bin/env bash
# t07-import-crash.sh - import is crash-safe and safe against an application
# that keeps writing (DESIGN §9; docs/protocol.md "The cycle", P1, P14).
#
# 1. HQ imports a bundle of ~4,300 changed rows; the import is killed with
#    SIGKILL after a random delay, TZ_CRASH_KILLS times (default 30), each
#    time on a fresh copy of HQ: in odd rounds anywhere within the time an
#    uninterrupted import takes (calibrated, like t02), in even rounds aimed
#    at its end (after its first pack appears: the view, the SQLite
#    transaction and the refs follow).  After each kill: verify passes; the import
#    took effect fully or not at all (main's head in store.db, the branch's
#    line in tz_lines, tz_bundles and the tracked rows are all the old state
#    or all the new one); the refs agree with store.db once a command has
#    opened the store; importing the same bundle again exits 0 and ends in
#    exactly the state of an uninterrupted import.
# 2. The same at the branch: HQ's answer (~3,600 rows to materialise) is
#    imported over uncommitted local changes and killed at random.  The
#    import commits them first (P14), then merges the answer under them
#    (P15): a kill leaves the old state (the change log untouched), the
#    sealed one (the changes committed as 'syncctl commit' would, nothing
#    else) or the new one; the local values win throughout.
# 3. A shell loop writes store.db through the sqlite3 CLI (short
#    transactions, .timeout 10000) while HQ, then the branch, imports: new
#    rows in the replica's own partition and updates of existing rows.  Every
#    row the application wrote is in store.db with its value (P14), the rows
#    it did not touch are those of an uninterrupted import, verify passes,
#    and the next commit's head holds its rows.  At the branch the updates
#    hit rows the import changes too (their local value must win).  At HQ
#    twice: updates of rows the branch did not change (the import must
#    succeed), then of rows it changed too, which makes them concurrent
#    edits: the import may then be refused whole (P13), and must be all or
#    nothing either way.
# TZ_CRASH_KILLS (default 30, per side) and TZ_CRASH_SEED (default: random).
. "$TZ_SRC/tests/cli/lib.sh"
S=$SYNCCTL
KILLS=${TZ_CRASH_KILLS:-$([ "${TZ_LONG:-0}" = 1 ] && echo 200 || echo 30)}
SEED=${TZ_CRASH_SEED:-$RANDOM}
RANDOM=$SEED
echo "# seed $SEED (replay: TZ_CRASH_SEED=$SEED TZ_CRASH_KILLS=$KILLS TZ_BUILD=$TZ_BUILD TZ_SRC=$TZ_SRC bash $0)"
cd "$WORK" || exit 1

now_ms() { echo $(($(date +%s%N) / 1000000)); }
q() { sqlite3 "$1/store.db" "$2"; }
meta() { q "$1" "SELECT v FROM tz_meta WHERE k = '$2'"; }
# the tracked tables, row for row, every value quoted
rows() {
	sqlite3 -separator '|' "$1/store.db" "
	  SELECT 'person', quote(id), quote(owner), quote(name), quote(n), quote(note) FROM person ORDER BY id;
	  SELECT 'item', quote(id), quote(title), quote(qty), quote(note) FROM item ORDER BY id;"
}
rows_sum() { rows "$1" | sha256sum | cut -c1-64; }
log_sum() { q "$1" "SELECT seq, tid, op, ts, po, k0, k1 FROM tz_changes ORDER BY seq" | sha256sum | cut -c1-64; }
rev() { git -C "$1/history" rev-parse -q --verify "$2" 2>/dev/null; }
# sleep for D milliseconds
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
npacks() { local p=("$1"/history/objects/pack/*.pack); echo ${#p[@]}; }
# wait_pack STORE N PID: until STORE has more than N packs (the import wrote
# its first) or PID is gone
wait_pack() {
	local p
	while kill -0 "$3" 2>/dev/null; do
		p=("$1"/history/objects/pack/*.pack)
		[ ${#p[@]} -gt "$2" ] && return 0
	done
	return 1
}
# timed_import STORE BUNDLE: import, setting SPAN (ms, the whole run) and
# TAIL (ms from the first pack the import writes to its end); output in
# imp.out
timed_import() {
	local n t0 tp rc
	n=$(npacks "$1")
	t0=$(now_ms)
	"$S" -C "$1" import "$2" >imp.out 2>imp.err &
	wait_pack "$1" "$n" $!
	tp=$(now_ms)
	wait $!
	rc=$?
	SPAN=$(($(now_ms) - t0 + 5)) TAIL=$(($(now_ms) - tp + 5))
	[ $rc -eq 0 ] || sed 's/^/# /' imp.err
	return $rc
}
# calibrate SRC BUNDLE: SPAN and TAIL, the least of three more imports
calibrate() {
	local span=$SPAN tail=$TAIL i
	for i in 1 2 3; do
		rm -rf w && cp -a "$1" w && timed_import w "$2" || return 1
		[ "$SPAN" -lt "$span" ] && span=$SPAN
		[ "$TAIL" -lt "$tail" ] && tail=$TAIL
	done
	SPAN=$span TAIL=$tail
}

cat >schema.sql <<'SQL'
CREATE TABLE person(id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT, n INTEGER, note TEXT);
CREATE TABLE item(id INTEGER PRIMARY KEY, title TEXT, qty INTEGER, note TEXT);
INSERT INTO tz_track VALUES ('person', 'owned', 'owner'), ('item', 'shared', NULL);
SQL

# ---- set-up, once: HQ, one branch (Argon2 twice), the bundles ----
"$S" init-hq hq >/dev/null && "$S" -C hq schema apply schema.sql >/dev/null
sqlite3 hq/store.db "
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
  INSERT INTO person SELECT printf('CAS01-%05d', i), 'CAS01', 'name ' || i, i, hex(randomblob(20)) FROM c;
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 500)
  INSERT INTO person SELECT printf('HQ-%05d', i), 'HQ', 'name ' || i, i, hex(randomblob(20)) FROM c;
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
  INSERT INTO item SELECT i, 'item ' || i, i, hex(randomblob(20)) FROM c;"
check "set-up: HQ commits 6,500 rows" "$S" -C hq commit -m base
printf 'cas01 passphrase, long enough\n' >pass
check "set-up: branch add CAS01" "$S" -C hq branch add CAS01 --out cas.tze --passphrase-file pass
check "set-up: init-branch CAS01" "$S" init-branch cas --enroll cas.tze --passphrase-file pass
# the branch's day: updates, inserts, deletes in its partition, a shared table
sqlite3 cas/store.db "
  UPDATE person SET n = n + 1000, note = hex(randomblob(20)) WHERE owner = 'CAS01';
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000)
  INSERT INTO person SELECT printf('CAS01-N%05d', i), 'CAS01', 'new ' || i, i, hex(randomblob(20)) FROM c;
  DELETE FROM person WHERE id BETWEEN 'CAS01-00001' AND 'CAS01-00100';
  UPDATE item SET qty = qty + 1 WHERE id % 10 = 0;"
check "set-up: CAS01 exports ~4,300 changed rows" "$S" -C cas export --out b1.tzb
cp -a hq hq0 && cp -a cas cas0

# reference: an uninterrupted HQ import, timed
cp -a hq0 hqref
timed_import hqref b1.tzb
ok $? "reference: HQ imports the bundle"
calibrate hq0 b1.tzb
span_hq=$SPAN tail_hq=$TAIL
H0=$(meta hq0 head) L0=$(q hq0 "SELECT line FROM tz_lines WHERE code = 'CAS01'")
D0=$(rows_sum hq0) N0=$(q hq0 "SELECT count(*) FROM person WHERE owner = 'CAS01'")
HT1=$(rev hqref 'main^{tree}') LT1=$(rev hqref 'branches/CAS01^{tree}')
rows hqref >ref-hq.txt
rows hq0 >old-hq.txt
D1=$(rows_sum hqref) N1=$(q hqref "SELECT count(*) FROM person WHERE owner = 'CAS01'")
[ "$D0" != "$D1" ] && [ "$HT1" != "$(rev hq0 'main^{tree}')" ]; ok $? "reference: the import changed main ($N0 -> $N1 CAS01 rows)"
echo "# an uninterrupted HQ import takes ~${span_hq} ms, ~${tail_hq} ms of it after its first pack"

# HQ's answer: many rows for the branch to materialise
sqlite3 hqref/store.db "
  UPDATE item SET title = title || ' v2', note = hex(randomblob(20)) WHERE id % 3 <> 0;
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 1000)
  INSERT INTO item SELECT 10000 + i, 'hq item ' || i, i, hex(randomblob(20)) FROM c;
  DELETE FROM item WHERE id BETWEEN 2900 AND 3000;
  UPDATE person SET name = 'hq: ' || name WHERE owner = 'CAS01' AND n % 7 = 0;"
check "set-up: HQ exports its answer for CAS01" "$S" -C hqref export --for CAS01 --out r1.tzb
# uncommitted local work at the branch, on rows the answer changes too
cp -a cas0 cas1
sqlite3 cas1/store.db "
  UPDATE item SET title = 'local ' || id WHERE id BETWEEN 1 AND 60;
  UPDATE item SET qty = -1 WHERE id BETWEEN 2990 AND 2995;
  UPDATE person SET name = 'local ' || id WHERE id BETWEEN 'CAS01-00200' AND 'CAS01-00260';
  INSERT INTO person VALUES ('CAS01-L00001', 'CAS01', 'local', 1, NULL), ('CAS01-L00002', 'CAS01', 'local', 2, x'00ff');"
cp -a cas1 casref
timed_import casref r1.tzb
ok $? "reference: CAS01 imports the answer over its local changes"
like imp.out '^committed [0-9]* pending changes first$' "reference: P14: the pending changes were committed first"
calibrate cas1 r1.tzb
span_br=$SPAN tail_br=$TAIL
C0=$(meta cas1 head) B0=$(meta cas1 base) E0=$(rows_sum cas1) X0=$(log_sum cas1)
# commit ids carry a time: the merge and the seal are known by their trees
TIP=$(rev hqref branches/CAS01) CT1=$(rev casref 'HEAD^{tree}') E1=$(rows_sum casref) XE=$(log_sum casref)
cp -a cas1 cas1s && "$S" -C cas1s commit >/dev/null
ST=$(rev cas1s 'HEAD^{tree}')
rows casref >ref-br.txt
[ "$(rev casref HEAD^2)" = "$TIP" ] && [ "$(rev casref HEAD^^)" = "$C0" ] && [ "$(rev casref 'HEAD^^{tree}')" = "$ST" ] &&
	[ "$(meta casref base)" = "$TIP" ] && [ "$E0" != "$E1" ]
ok $? "reference: CAS01 merged HQ's line under its pending changes, committed first (P15)"
[ "$(q casref "SELECT count(*) FROM tz_changes")" = 0 ] &&
	[ "$(q casref "SELECT title FROM item WHERE id = 7") $(q casref "SELECT qty FROM item WHERE id = 2990")" = "local 7 -1" ]
ok $? "reference: P14: the local values survived the import (even of a row HQ deleted), the change log committed"
echo "# an uninterrupted branch import takes ~${span_br} ms, ~${tail_br} ms of it after its first pack"

# ---- 1. SIGKILL campaign: HQ import ----
# state STORE: "old", "new" or a description of the mix
hq_state() {
	local h l b d ht lt
	h=$(meta "$1" head) l=$(q "$1" "SELECT line FROM tz_lines WHERE code = 'CAS01'")
	b=$(q "$1" "SELECT count(*) FROM tz_bundles WHERE sender = 'CAS01'") d=$(rows_sum "$1")
	if [ "$h" = "$H0" ] && [ "$l" = "$L0" ] && [ "$b" = 0 ] && [ "$d" = "$D0" ]; then echo old; return; fi
	ht=$(rev "$1" "$h^{tree}") lt=$(rev "$1" "$l^{tree}")
	if [ "$h" != "$H0" ] && [ "$ht" = "$HT1" ] && [ "$lt" = "$LT1" ] && [ "$b" = 1 ] && [ "$d" = "$D1" ]; then
		echo new; return
	fi
	echo "mixed: head $([ "$h" = "$H0" ] && echo old || echo "$ht"), line tree $lt, bundles $b," \
		"$(q "$1" "SELECT count(*) FROM person WHERE owner = 'CAS01'") CAS01 rows (old $N0, new $N1)"
}
# refs == store.db (after a command opened the store)
hq_refs() {
	[ "$(rev "$1" main)" = "$(meta "$1" head)" ] &&
	[ "$(rev "$1" branches/CAS01)" = "$(q "$1" "SELECT line FROM tz_lines WHERE code = 'CAS01'")" ]
}

campaign() { # SIDE: hq | br
	local side=$1 kills=0 round=0 bad_verify=0 bad_state=0 bad_refs=0 bad_again=0 bad_final=0 n_old=0 n_new=0 done_first=0
	local n_sealed=0
	local span tail st src bundle delay pid rc np
	if [ "$side" = hq ]; then span=$span_hq tail=$tail_hq src=hq0 bundle=b1.tzb
	else span=$span_br tail=$tail_br src=cas1 bundle=r1.tzb; fi
	while [ "$kills" -lt "$KILLS" ] && [ "$round" -lt $((KILLS * 3)) ]; do
		round=$((round + 1))
		rm -rf w && cp -a "$src" w
		np=$(npacks w)
		"$S" -C w import "$bundle" >/dev/null 2>&1 &
		pid=$!
		if [ $((round % 2)) -eq 1 ]; then
			# anywhere in the import
			delay=$((RANDOM % span))
			sleep_ms "$delay"
		else
			# aimed at its end: once its first pack is written (the view,
			# the SQLite transaction, the refs follow)
			wait_pack w "$np" "$pid"
			delay=$((RANDOM % tail))
			sleep_ms "$delay"
			delay="pack + $delay"
		fi
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		rc=$?
		if [ $rc -eq 137 ]; then
			kills=$((kills + 1))
		elif [ $rc -eq 0 ]; then
			done_first=$((done_first + 1))
		else
			bad_state=$((bad_state + 1))
			echo "# $side round $round: the import exited $rc by itself before its kill"
		fi
		# any command that opens the store reconciles the refs
		if ! "$S" -C w verify >v.out 2>&1; then
			bad_verify=$((bad_verify + 1))
			echo "# $side round $round (kill after $delay ms): verify failed:"
			sed 's/^/#   /' v.out | head -5
		fi
		if [ "$side" = hq ]; then
			st=$(hq_state w)
			hq_refs w || { bad_refs=$((bad_refs + 1)); echo "# hq round $round (kill after $delay ms): refs differ from store.db"; }
		else
			st=$(br_state w)
			[ "$(rev w main)" = "$(meta w head)" ] || { bad_refs=$((bad_refs + 1)); echo "# br round $round (kill after $delay ms): main differs from store.db's head"; }
		fi
		case $st in
		old) n_old=$((n_old + 1)) ;;
		sealed) n_sealed=$((n_sealed + 1)) ;;
		new) n_new=$((n_new + 1)) ;;
		*) bad_state=$((bad_state + 1)); echo "# $side round $round (kill after $delay ms): $st" ;;
		esac
		"$S" -C w import "$bundle" >again.out 2>&1
		rc=$?
		if [ $rc -ne 0 ]; then
			bad_again=$((bad_again + 1))
			echo "# $side round $round (state $st): importing again: exit $rc"
			sed 's/^/#   /' again.out | head -3
		elif [ "$st" = new ] && ! grep -q 'nothing new' again.out; then
			bad_again=$((bad_again + 1))
			echo "# $side round $round: the import had taken effect, but importing again did not say so (P1)"
		fi
		if [ "$side" = hq ]; then st=$(hq_state w); else st=$(br_state w); fi
		if [ "$st" != new ] || ! "$S" -C w verify >/dev/null 2>&1 ||
			{ [ "$side" = hq ] && ! hq_refs w; } || { [ "$side" = br ] && [ "$(rev w main)" != "$(meta w head)" ]; }; then
			bad_final=$((bad_final + 1))
			echo "# $side round $round: after importing again: $st"
		fi
	done
	echo "# tally: kills=$kills"
	echo "# $side: $kills kills in $round rounds; $done_first imports finished before their kill;" \
		"the kills left $n_old stores in the old state, $n_sealed with only the pending changes committed (branch)," \
		"$((n_new - done_first)) in the new (killed after the SQLite commit)"
	[ "$kills" -ge "$KILLS" ]; ok $? "$side: $KILLS imports killed at random moments ($kills in $round rounds)"
	[ $bad_verify -eq 0 ]; ok $? "$side: verify passed after every kill ($bad_verify failures)"
	[ $bad_state -eq 0 ]; ok $? "$side: every kill left the old state, the sealed one or the new one, never a mix ($n_old old, $n_sealed sealed, $n_new new, $bad_state other)"
	[ $bad_refs -eq 0 ]; ok $? "$side: the refs agree with store.db once the store was opened ($bad_refs failures)"
	[ $bad_again -eq 0 ]; ok $? "$side: importing the same bundle again exits 0 (P1 when it had taken effect) ($bad_again failures)"
	[ $bad_final -eq 0 ]; ok $? "$side: then the store equals an uninterrupted import's and verifies ($bad_final failures)"
}

# ---- 2. SIGKILL campaign: the branch imports HQ's answer ----
# old: as before, the change log untouched; sealed: the pending changes
# committed on the old head (the seal's tree) and nothing else; new: the
# merge of HQ's answer (its tree, the answer its second parent) on the seal
br_state() {
	local h b d x t
	h=$(meta "$1" head) b=$(meta "$1" base) d=$(rows_sum "$1") x=$(log_sum "$1") t=$(rev "$1" "$(meta "$1" head)^{tree}")
	if [ "$x" = "$X0" ] && [ "$h" = "$C0" ] && [ "$b" = "$B0" ] && [ "$d" = "$E0" ]; then echo old; return; fi
	if [ "$x" = "$XE" ] && [ "$t" = "$ST" ] && [ "$(rev "$1" "$h^")" = "$C0" ] && [ "$b" = "$B0" ] && [ "$d" = "$E0" ]; then
		echo sealed; return
	fi
	if [ "$x" = "$XE" ] && [ "$t" = "$CT1" ] && [ "$(rev "$1" "$h^2")" = "$TIP" ] && [ "$(rev "$1" "$h^^")" = "$C0" ] &&
		[ "$b" = "$TIP" ] && [ "$d" = "$E1" ]; then
		echo new; return
	fi
	echo "mixed: head $([ "$h" = "$C0" ] && echo old || echo "$h (tree $t)"), change log $([ "$x" = "$X0" ] && echo old || echo "$x")," \
		"base $([ "$b" = "$B0" ] && echo old || echo "$b"), rows $([ "$d" = "$E0" ] && echo old || { [ "$d" = "$E1" ] && echo new; } || echo other)"
}

campaign hq
campaign br

# ---- 3. the application keeps writing during the import (P14) ----
# gen OWNER MODE: the application's statements, fed to one sqlite3 CLI until
# the file "stop" appears, each its own short transaction: an insert in the
# replica's own partition, an update of an item and of a person.  MODE
# "overlap": items and CAS01 people the import changes too; "disjoint" (HQ):
# items and people the branch did not change.  Each statement is followed by
# a marker "kind|table|key|value|changes()|ms" on stdout, and by a pause of
# TZ_WRITER_PAUSE_MS (default 1; 0: back to back).
PAUSE_MS=${TZ_WRITER_PAUSE_MS:-1}
MS="CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
gen() {
	local own=$1 mode=$2 i=0 k id p fd pause
	# a pause without a process: read from a pipe nobody writes to
	exec {fd}<> <(:)
	pause=$(printf '%d.%03d' $((PAUSE_MS / 1000)) $((PAUSE_MS % 1000)))
	while [ ! -e stop ]; do
		i=$((i + 1))
		printf -v k '%05d' "$i"
		echo "INSERT INTO person VALUES ('$own-W$k', '$own', 'W$i', $i, 'w');"
		echo "SELECT 'i|person|''$own-W$k''|W$i|' || changes() || '|' || $MS;"
		[ "$PAUSE_MS" -gt 0 ] && read -r -t "$pause" -u "$fd"
		id=$(((i * 7919) % 3000 + 1))
		[ "$mode" = disjoint ] && [ $((id % 10)) -eq 0 ] && id=$((id - 1))
		echo "UPDATE item SET title = 'W$i' WHERE id = $id;"
		echo "SELECT 'u|item|$id|W$i|' || changes() || '|' || $MS;"
		[ "$PAUSE_MS" -gt 0 ] && read -r -t "$pause" -u "$fd"
		if [ "$mode" = disjoint ]; then
			printf -v p 'HQ-%05d' $(((i * 104729) % 500 + 1))
		else
			printf -v p 'CAS01-%05d' $(((i * 104729) % 3000 + 1))
		fi
		echo "UPDATE person SET name = 'W$i' WHERE id = '$p';"
		echo "SELECT 'u|person|''$p''|W$i|' || changes() || '|' || $MS;"
		[ "$PAUSE_MS" -gt 0 ] && read -r -t "$pause" -u "$fd"
	done
}
start_writer() { # STORE OWNER MODE
	rm -f stop w.out w.err
	( gen "$2" "$3" | sqlite3 -bail -cmd ".timeout 10000" "$1/store.db" >w.out 2>w.err ) &
	WPID=$!
	# the application is at work before the import starts
	local t=0
	while [ "$(q "$1" "SELECT count(*) FROM person WHERE id LIKE '$2-W%'")" -lt 20 ] && [ $t -lt 200 ]; do
		sleep 0.01; t=$((t + 1))
	done
}
stop_writer() { touch stop; wait "$WPID"; }

# expected.txt: table|quoted key|value of the writer's last successful write
# of each row; rows_except: the tracked rows on stdin minus those keys
expected() { awk -F'|' '$5 == 1 { v[$2 "|" $3] = $4 } END { for (x in v) print x "|" v[x] }' w.out | sort >expected.txt; }
rows_except() { awk -F'|' 'NR == FNR { w[$1 "|" $2] = 1; next } !(($1 "|" $2) in w)' expected.txt -; }
# rows of expected.txt whose value in store.db is not the writer's
lost_in_db() {
	sqlite3 -separator '|' "$1/store.db" "CREATE TEMP TABLE e(t, k, v);" ".import expected.txt e" "
	  SELECT t, k, v FROM e WHERE t = 'person' AND v IS NOT (SELECT name FROM person WHERE id = substr(e.k, 2, length(e.k) - 2))
	  UNION ALL
	  SELECT t, k, v FROM e WHERE t = 'item' AND v IS NOT (SELECT title FROM item WHERE id = CAST(e.k AS INTEGER));"
}
# rows of expected.txt whose blob in the head does not hold the writer's value
lost_in_head() {
	git -C "$1/history" ls-tree -r main -- person item |
		awk -F'\t' '{ split($1, a, " "); n = split($2, p, "/"); print p[1] "|" p[n] "|" a[3] }' >paths.txt
	awk -F'|' 'NR == FNR { k = $2; gsub("'"'"'", "", k); if ($1 == "item") k = "~i" k; want[$1 "|" k] = $3; next }
		(($1 "|" $2) in want) { print $3, $1, $2, want[$1 "|" $2]; seen[$1 "|" $2] = 1 }
		END { for (x in want) if (!(x in seen)) print "missing", x }' expected.txt paths.txt >want.txt
	grep '^missing' want.txt
	grep -v '^missing' want.txt | cut -d' ' -f1 | git -C "$1/history" cat-file --batch |
		awk 'NR == FNR { want[$1] = $4; name[$1] = $2 " " $3; next }
		     $2 == "blob" && length($1) == 40 { cur = $1; next }
		     ($1 == "name" || $1 == "title") && $2 == "t" { got[cur] = substr($0, length($1) + 4) }
		     END { for (o in want) if (got[o] != want[o]) print name[o] ": head has " got[o] ", the writer wrote " want[o] }' \
		want.txt -
}
# concurrent SIDE MODE SRC BUNDLE OWNER REFROWS OLDROWS: import BUNDLE into a
# copy of SRC while the application writes.  At HQ, a row the application
# changed before the import compared it with the branch's change is a
# concurrent edit (P13): in "overlap" mode the import may be refused whole,
# and then the other rows must be those of SRC (OLDROWS).
concurrent() {
	local side=$1 mode=$2 st=w$1 t0 t1 rc during kept outcome=
	rm -rf "$st" && cp -a "$3" "$st"
	start_writer "$st" "$5" "$mode"
	t0=$(now_ms)
	"$S" -C "$st" import "$4" >imp.out 2>imp.err
	rc=$?
	t1=$(now_ms)
	sleep 0.1
	stop_writer
	if [ $rc -eq 0 ]; then
		outcome=imported
	elif [ $rc -eq 1 ] && [ "$side $mode" = "hq overlap" ] && grep -q 'changed both at HQ and at CAS01' imp.err; then
		outcome=refused
	fi
	if [ "$side $mode" = "hq overlap" ]; then
		[ -n "$outcome" ]; ok $? "$side ($mode): the import is applied or refused whole as a concurrent edit (P13) (exit $rc: $outcome)"
	else
		[ "$outcome" = imported ]; ok $? "$side ($mode): the import succeeds while the application writes (exit $rc)"
	fi
	[ -n "$outcome" ] || sed 's/^/# /' imp.err
	[ ! -s w.err ]; ok $? "$side ($mode): every write of the application went through (.timeout waits for the import)"
	sed 's/^/# writer: /' w.err | head -3
	expected
	during=$(awk -F'|' -v a="$t0" -v b="$t1" '$5 == 1 && $6 >= a && $6 <= b' w.out | wc -l)
	kept=$(sed -n 's/^\([0-9]*\) rows with uncommitted local changes.*/\1/p' imp.out)
	echo "# $side ($mode): $(grep -c '|1|' w.out) writes, $during while the import ran (${t0}..${t1} ms); import: $(head -1 imp.out) $(head -1 imp.err)"
	if [ "$side" = br ]; then
		[ "$during" -gt 0 ] && [ "${kept:-0}" -gt 0 ]
		ok $? "$side ($mode): the application wrote during the import ($during writes); the import left ${kept:-0} rows it changes as the application wrote them (P14)"
	else
		[ "$during" -gt 0 ]; ok $? "$side ($mode): the application wrote during the import ($during writes; rows left as written: ${kept:-0})"
	fi
	lost_in_db "$st" >lost.txt
	[ ! -s lost.txt ]; ok $? "$side ($mode): P14: every row the application wrote is in store.db with its value ($(wc -l <expected.txt) rows)"
	sed 's/^/# lost: /' lost.txt | head -5
	if [ "$outcome" = refused ]; then
		rows_except <"$7" | sort >ref.txt
	else
		rows_except <"$6" | sort >ref.txt
	fi
	rows "$st" | rows_except | sort >got.txt
	cmp -s ref.txt got.txt
	ok $? "$side ($mode): every other row is as $([ "$outcome" = refused ] && echo "before the refused import" || echo "an uninterrupted import leaves it")"
	diff ref.txt got.txt | grep '^[<>]' | head -4 | sed 's/^/#   /'
	check "$side ($mode): verify passes after the import and the writes" "$S" -C "$st" verify
	check "$side ($mode): commit after the import" "$S" -C "$st" commit
	[ "$(q "$st" "SELECT count(*) FROM tz_changes")" = 0 ]; ok $? "$side ($mode): the commit sealed the change log"
	lost_in_head "$st" >lost.txt
	[ ! -s lost.txt ]; ok $? "$side ($mode): P14: the new head holds every row the application wrote, with its value"
	sed 's/^/# /' lost.txt | head -5
	check "$side ($mode): verify passes after the commit" "$S" -C "$st" verify
}
concurrent hq disjoint hq0 b1.tzb HQ ref-hq.txt old-hq.txt
concurrent hq overlap hq0 b1.tzb HQ ref-hq.txt old-hq.txt
# the branch: casref was imported over cas1's local changes
concurrent br overlap cas1 r1.tzb CAS01 ref-br.txt ""
done_testing

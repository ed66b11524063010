#!/usr/bin/env bash
# t19-gc.sh - `syncctl gc` (store/gc.c, DESIGN §11 "Long life"): every
# object of the history in one pack, nothing lost, whatever happens.
#  - a store with packs from commits and imports and loose commits: after
#    gc one pack, no loose object, the very same objects (git's own list),
#    verify and `git fsck` pass; gc again does nothing;
#  - a pack without its index (a writer killed between its renames) is not
#    touched, and a writer's temporaries are removed;
#  - SIGKILL at random points of gc (20 kills, TZ_GC_KILLS): the store
#    verifies and holds every object, and the next gc finishes the job;
#  - fault sweeps (alloc, write, fsync, rename): a gc that fails exits 1
#    with one line, every object still there, verify passes;
#  - syncd --hq runs gc by itself once an import leaves 32 packs or more.
. "${TZ_SRC:?}/tests/cli/lib.sh" || exit 1
. "$TZ_SRC/tests/cli/lib_http.sh" || exit 1
S=$SYNCCTL
cd "$WORK" || exit 1
KILLS=${TZ_GC_KILLS:-20}

objects() { git -C "$1/history" cat-file --batch-all-objects --batch-check | sort; }
npacks() { find "$1/history/objects/pack" -name 'pack-*.idx' | wc -l; }
nloose() { find "$1/history/objects" -path '*/pack' -prune -o -type f -print | grep -c '/[0-9a-f][0-9a-f]/'; }

http_setup && http_enrol CAS01
ok $? "set-up: HQ and CAS01 enrolled"
# a few cycles: each commit and import adds packs and a loose commit
for i in 1 2 3 4; do
	sqlite3 cas01/store.db "INSERT INTO job_seeker VALUES ('C$i-a', 'n$i', 'x', 'CAS01'), ('C$i-b', 'm$i', 'y', 'CAS01');
	  UPDATE job_seeker SET notes = 'round $i' WHERE id LIKE 'C%-a';"
	sqlite3 hq/store.db "INSERT INTO workshop VALUES ('W$i', 'CV $i', $i)"
	"$S" -C hq commit >/dev/null && "$S" -C cas01 export --out up$i.tzb >/dev/null &&
		"$S" -C hq import up$i.tzb >/dev/null && "$S" -C hq export --for CAS01 --out down$i.tzb >/dev/null &&
		"$S" -C cas01 import down$i.tzb >/dev/null || { ok 1 "set-up: cycle $i"; }
done
P0=$(npacks hq) L0=$(nloose hq)
[ "$P0" -gt 8 ] && [ "$L0" -gt 4 ]; ok $? "set-up: HQ has $P0 packs and $L0 loose objects"
objects hq >before.txt
cp -a hq hq0

check "gc" "$S" -C hq gc
like "$WORK/.out" "^gc: [0-9]+ objects in one pack, from $P0 packs and $L0 loose objects" "gc says what it did"
[ "$(npacks hq)" = 1 ] && [ "$(nloose hq)" = 0 ]; ok $? "one pack, no loose object"
objects hq >after.txt
cmp -s before.txt after.txt; ok $? "the very same objects ($(wc -l <after.txt), git cat-file --batch-all-objects)"
check "verify passes after gc" "$S" -C hq verify
check "git fsck --full passes after gc" git -C hq/history fsck --full --no-dangling
check "gc again" "$S" -C hq gc
like "$WORK/.out" "^gc: nothing to do" "a second gc has nothing to do"
echo partial >hq/history/objects/pack/tmp_idx_XyZ789
check "gc of one pack and a temporary" "$S" -C hq gc
like "$WORK/.out" "^gc: one pack already .*; 1 temporaries of a killed writer removed" "it only removes the temporary"
[ ! -e hq/history/objects/pack/tmp_idx_XyZ789 ] && [ "$(npacks hq)" = 1 ]; ok $? "the temporary is gone, the pack stays"
rm -rf j && cp -a hq0 j
"$S" -C j gc --json >gc.json
json_valid gc.json "gc --json is one JSON document"
grep -q "\"done\": true, \"objects\": $(wc -l <before.txt), \"packs_before\": $P0, \"loose_before\": $L0" gc.json
ok $? "gc --json counts the objects, packs and loose objects"
fails "gc takes no argument" 2 "$S" -C hq gc extra

# a pack whose index never came (its objects unknown to libgit2) stays;
# temporaries of a killed writer go
rm -rf o && cp -a hq0 o
orphan=o/history/objects/pack/pack-0123456789abcdef0123456789abcdef01234567.pack
cp "$(ls o/history/objects/pack/*.pack | head -1)" "$orphan"
echo partial >o/history/objects/pack/tmp_pack_AbC123
check "gc with an index-less pack and a temporary" "$S" -C o gc
[ -f "$orphan" ] && [ ! -e o/history/objects/pack/tmp_pack_AbC123 ]
ok $? "the index-less pack stays, the temporary is removed"
check "verify passes" "$S" -C o verify

# SIGKILL during gc: a bigger store, so that gc takes a while
rm -rf big && cp -a hq0 big
sqlite3 big/store.db "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
  INSERT INTO workshop SELECT 'B' || i, 'bulk ' || i, i FROM n"
"$S" -C big commit -m bulk >/dev/null && "$S" -C big branch add RAB01 --out rab.tze >/dev/null
objects big >big-before.txt
# the kills land at random points of a gc's duration, measured first
rm -rf w && cp -a big w
t0=$(date +%s%N) && "$S" -C w gc >/dev/null && MS=$((($(date +%s%N) - t0) / 1000000 + 1))
BAD=0 KILLED=0 k=0
# until KILLS kills landed (a gc that finished first does not count)
while [ $KILLED -lt "$KILLS" ] && [ $k -lt $((3 * KILLS)) ]; do
	k=$((k + 1))
	rm -rf w && cp -a big w
	"$S" -C w gc >/dev/null 2>&1 &
	pid=$!
	d=$((RANDOM % MS))
	sleep "$((d / 1000)).$(printf '%03d' $((d % 1000)))"
	kill -9 $pid 2>/dev/null && KILLED=$((KILLED + 1))
	wait $pid 2>/dev/null
	if ! "$S" -C w verify >/dev/null 2>&1; then
		BAD=$((BAD + 1)); echo "# kill $k: verify fails"
	elif ! objects w | cmp -s - big-before.txt; then
		BAD=$((BAD + 1)); echo "# kill $k: the objects differ"
	elif ! "$S" -C w gc >/dev/null 2>&1 || [ "$(npacks w)" != 1 ] || ! objects w | cmp -s - big-before.txt; then
		BAD=$((BAD + 1)); echo "# kill $k: the next gc does not end in one pack of the same objects"
	fi
done
echo "# tally: kills=$KILLED"
[ $KILLED -ge "$KILLS" ] || { BAD=$((BAD + 1)); echo "# only $KILLED kills in $k runs"; }
ok $BAD "gc (${MS} ms) killed $KILLED times in $k runs: the store verifies with every object, the next gc finishes"

# faults: every k while the fault fires (alloc: 1.3x steps past 50)
sweep() {
	local site=$1 k=0 runs=0 failed=0 fired rc
	BAD=0
	while :; do
		if [ "$site" = alloc ] && [ $k -ge 50 ]; then k=$((k * 13 / 10)); else k=$((k + 1)); fi
		rm -rf w f && cp -a hq0 w
		TZ_FAULTSIM="$site:$k" TZ_FAULTSIM_REPORT="$WORK/f" "$S" -C w gc >out 2>err
		rc=$? fired=$(cat f 2>/dev/null) runs=$((runs + 1))
		if ! objects w | cmp -s - before.txt || ! "$S" -C w verify >/dev/null 2>&1; then
			BAD=$((BAD + 1)); echo "# $site:$k: exit $rc, and the store lost objects or fails verify"
		fi
		if [ "$fired" = fired ] && [ $rc -ne 0 ]; then
			failed=$((failed + 1))
			[ $rc -eq 1 ] && [ "$(wc -l <err)" -eq 1 ] ||
				{ BAD=$((BAD + 1)); echo "# $site:$k: exit $rc, not one error line:"; sed 's/^/#   /' err | head -3; }
		elif [ "$fired" != fired ] && [ "$fired" != "not fired" ]; then
			BAD=$((BAD + 1)); echo "# $site:$k: exit $rc and no fault report (a crash?)"
		fi
		[ "$fired" = fired ] || break
		[ $k -lt 100000 ] || { BAD=$((BAD + 1)); echo "# $site: still firing at k = $k"; break; }
	done
	echo "# tally: sweep_steps=$runs"
	ok $BAD "gc, $site sweep: $runs runs, $failed clean failures, every object kept"
}
for site in alloc write fsync rename; do
	sweep $site
done

# syncd --hq runs gc once an import leaves 32 packs or more
rm -rf hq && cp -a hq0 hq
while [ "$(npacks hq)" -lt 32 ]; do
	sqlite3 hq/store.db "INSERT INTO workshop VALUES ('X$RANDOM$RANDOM', 'pile', 1)"
	"$S" -C hq commit >/dev/null || break
done
hq_start
ok $? "syncd --hq started on a store of $(npacks hq) packs"
sqlite3 cas01/store.db "UPDATE job_seeker SET notes = 'over http' WHERE id = 'C1-a'"
check "sync pushes a change" "$S" -C cas01 sync "$URL"
for i in $(seq 1 100); do grep -q "gc: " hq.log && break; sleep 0.1; done
like hq.log "gc: [0-9]+ objects in one pack" "syncd logs its gc"
kill "$HQ_PID" && wait "$HQ_PID" 2>/dev/null
HQ_PID=
[ "$(npacks hq)" -le 2 ]; ok $? "HQ's packs after syncd's gc: $(npacks hq)"
check "verify passes" "$S" -C hq verify
done_testing

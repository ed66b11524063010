#!/usr/bin/env bash
# The benchmark chain's structure (never its times): bench/table.c's one
# table from a summary with missing, failed and unavailable figures; the
# sqlite-sync program without its extension; git_peer's quick run reports
# every figure and whether the replicas converged.
. "$TZ_SRC/tests/cli/lib.sh"

B="$TZ_BUILD/bench"
S="$WORK/summary.txt"

# ---- the table from a hand-written summary ----
cat >"$S" <<'EOF'
write.plain 1.0000
write.triglog 1.1000
write.session 1.2000
write.tazamun 1.1000
bytes.changeset.z3 50.00
bytes.changeset.z19 40.00
bytes.patchset.z3 35.00
bytes.patchset.z19 30.00
bytes.sqltext.z19 33.00
bytes.tazamun ! export failed: disk full
merge.session 0.2000
merge.tazamun 1.0000
merge.tazamun.big 1.1000
commit1k.tazamun 0.2000
rss.tazamun 100.00
rss.changes 100000
converged.tazamun yes
merge.git 0.5000
bytes.git 400.00
commit1k.git 1.5000
rss.git 20.00
converged.git no
contested.git 3 row files left in conflict by merge-tree (a person merges them)
version.sqlitesync not available
write.sqlitesync ! not available: npm is not installed
bytes.sqlitesync ! not available: npm is not installed
merge.sqlitesync ! not available: npm is not installed
rss.sqlitesync ! not available: npm is not installed
converged.sqlitesync ! not available: npm is not installed
EOF
check "table prints the summary" "$B/table" --summary "$S" --results "$WORK"
T="$WORK/.out"
like "$T" '^sqlite-sync +not available: npm is not installed$' \
	"an unavailable contender is one line saying why"
like "$T" '^Tazamun +1\.10× +failed +5\.00× +1\.000 +1\.10× +0\.200 +100\.0 +yes$' \
	"Tazamun's row: ratios to plain and to the session apply, a failed cell"
like "$T" '^plain SQLite +1\.00×( +-){7}$' "figures a contender has not are '-'"
like "$T" '^git \(.*\) +- +400\.0 +2\.50× +0\.500 +- +1\.500 +20\.0 +no$' "git's row"
like "$T" '^  bytes.tazamun: export failed: disk full$' "a failed cell says why under the table"
like "$T" 'write cost.* 1\.1× against ≤ 1\.15×: met, 0\.05× \(4%\) to spare' \
	"a met target says by how much"
like "$T" 'HQ merge.* 5× against ≤ 2×: NOT met, 3× \(150%\) over' \
	"an unmet target says by how much"
like "$T" 'bytes on the wire.*not measured \(export failed: disk full\)' \
	"a target without its figure says why"
like "$T" '^  git +3 row files left in conflict' "who won the contested cells"
ls "$WORK"/bench-*.txt >/dev/null 2>&1
ok $? "the table is written under --results"
fails "table without --summary is a usage error" 2 "$B/table"
fails "table with an unreadable summary" 1 "$B/table" --summary "$WORK/none"

# ---- sqlite-sync without its extension ----
rm -f "$S"
check "sqlite_sync without an extension exits 0" "$B/sqlite_sync" \
	--unavailable "npm pack failed: offline" --summary "$S" --results "$WORK"
like "$S" '^merge.sqlitesync ! not available: npm pack failed: offline$' \
	"its figures say why they are missing"
rm -f "$S"
check "sqlite_sync with an extension that does not load exits 0" \
	"$B/sqlite_sync" --ext "$WORK/no-such.so" --summary "$S" --results "$WORK"
like "$S" '^write.sqlitesync ! not available: cannot load' \
	"an extension that does not load is 'not available'"
fails "a bad option is a usage error" 2 "$B/sqlite_sync" --reps 0

# ---- git_peer, quick: every figure, and convergence ----
rm -f "$S"
check "git_peer --quick" "$B/git_peer" --quick --summary "$S" --results "$WORK"
for k in bytes.git merge.git commit1k.git rss.git; do
	like "$S" "^$k [0-9]+\.[0-9]+$" "git_peer measured $k"
done
like "$S" '^converged.git (yes|no)$' "git_peer says whether the replicas converged"
like "$S" '^contested.git [0-9]+ row files' "git_peer counts the rows merge-tree left in conflict"

done_testing

#!/bin/bash
# t20-pack-thread.sh - HQ's import writes the rebuilt commit's pack, then
# the merge's, on a thread of its own while it merges and materialises
# (store/pack.c tz_pack__start).  The fault sweeps arm fault injection,
# which writes every pack on the calling thread, so this test makes the
# thread's own writes fail: a file size limit (RLIMIT_FSIZE, SIGXFSZ
# ignored) that the bundle's pack passes and nothing written before it
# does.  The import must fail with one message, leave no file behind and
# the store as it was; without the limit the same bundle imports, and
# libgit2 reads the rebuilt commits while their pack is being written.
. "$TZ_SRC/tests/cli/lib.sh"
S=$SYNCCTL
cd "$WORK" || exit 1
export TZ_PASSPHRASE="t20 passphrase"
q() { sqlite3 "$1/store.db" "$2"; }

printf '%s\n' "CREATE TABLE t(id TEXT PRIMARY KEY, v TEXT, owner TEXT NOT NULL);" \
	"INSERT INTO tz_track VALUES ('t', 'owned', 'owner');" >schema.sql
"$S" init-hq hq >/dev/null && "$S" -C hq schema apply schema.sql >/dev/null &&
	"$S" -C hq branch add CAS01 --out cas.tze >/dev/null && "$S" init-branch cas --enroll cas.tze >/dev/null
ok $? "HQ and a branch"
q cas "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
  INSERT INTO t SELECT printf('CAS01-%06d', i), hex(randomblob(100)), 'CAS01' FROM c"
check "the branch exports 3,000 rows" "$S" -C cas export --out cas.tzb

# what the import must leave as it was
snapshot() {
	{ q "$1" .dump; git -C "$1/history" for-each-ref; ls "$1/history/objects/pack"; } >"$2"
}
snapshot hq before.txt
(
	trap '' XFSZ
	ulimit -f 600   # 300 KiB: the rebuilt commit's pack is ~900 KB
	"$S" -C hq import cas.tzb
) >out.txt 2>err.txt
rc=$?
[ $rc -ne 0 ]; ok $? "an import whose pack cannot be written fails (exit $rc)"
[ "$(wc -l <err.txt)" -eq 1 ]; ok $? "with one message"
like err.txt "cannot (write|sync).*tmp_pack.*(File too large|too large)" "which names the pack and the cause"
snapshot hq after.txt
cmp -s before.txt after.txt; ok $? "store.db, the refs and the packs are as they were"
[ -z "$(find hq/history/objects/pack -name 'tmp_*')" ]; ok $? "no temporary file is left"
check "the store verifies" "$S" -C hq verify

check "without the limit the bundle imports" "$S" -C hq import cas.tzb
[ "$(q hq "SELECT count(*) FROM t")" = 3000 ]; ok $? "HQ has the 3,000 rows"
check "the store verifies after it" "$S" -C hq verify
git -C hq/history fsck --no-dangling >fsck.txt 2>&1; ok $? "stock git finds the history whole"
check "HQ answers the branch" "$S" -C hq export --for CAS01 --out hq.tzb
check "the branch imports the answer" "$S" -C cas import hq.tzb
[ "$(q cas "SELECT count(*) FROM tz_changes")" = 0 ]; ok $? "and has nothing left to send"

done_testing

#!/usr/bin/env bash
# Bad bundles: a corpus of damaged, forged and misdirected bundles, each
# refused by `syncctl import` (exit 1) with its own one-line error, HQ's
# store.db and refs byte-identical before and after; the positive rules
# (re-import is a no-op, the untouched bundles import); and no plaintext
# row content in a bundle or an enrolment file.
#
# Rule ids in the descriptions: P1 re-import no-op, P2 missing
# prerequisite, P4 wrong recipient, P5 unknown sender, P6 revoked key,
# P7 replayed sequence, P8 second store instance, P11 container checks
# (signature before decryption, caps, trailing bytes), P12 rebuilt ids.
#
# The damaged bundles come from tests/tools/bundle_forge.c (BUILD/tests/
# bundle_forge): `flip` flips one bit of a named part (optionally signing
# again with the sender's key file), `forge` opens a bundle with the
# recipient's key and writes a new one, encrypted and validly signed by the
# sender's key, with one bad field (version, sizes, zstd bombs, sequence,
# instance, prerequisites, payload bytes...).
. "$TZ_SRC/tests/cli/lib.sh"

S="$SYNCCTL"
F="$TZ_BUILD/tests/bundle_forge"
if [ ! -x "$F" ]; then
	echo "Bail out! $F is missing (make tests-build builds it)"
	exit 1
fi
export TZ_PASSPHRASE="t06: a passphrase for the enrolment files"
cd "$WORK" || exit 1
t_start=$(date +%s.%N)

# Row content the bundles must hide: Arabic names (UTF-8) and ID numbers.
AR_HQ='العلوي'      # written at HQ before the enrolment: in the enrolment file
ID_HQ='BE7391046'
AR_CAS='بناني'      # written at the branch: in its first bundle
ID_CAS='AB1234567'

# ---- helpers ----

# snap DIR: what a refused import must leave byte-identical: store.db (and
# a WAL if one is left), HEAD, every ref file, packed-refs, the refs git sees.
snap() {
	(
		cd "$1" || exit 1
		sha256sum store.db
		[ ! -e store.db-wal ] || sha256sum store.db-wal
		cd history || exit 1
		sha256sum HEAD
		find refs -type f | LC_ALL=C sort | xargs -r sha256sum
		[ ! -e packed-refs ] || sha256sum packed-refs
	) 2>&1
	git -C "$1/history" for-each-ref 2>&1
}

# refused DESC DIR FILE ERE: `syncctl -C DIR import FILE` exits 1 with exactly
# one line on stderr matching ERE (one assertion), and DIR's store.db and
# refs are as before (a second one).  A bundle wrongly accepted is reported,
# and DIR is put back as it was so that the next cases still test one thing.
refused() {
	local d=$1 dir=$2 file=$3 want=$4 rc lines
	snap "$dir" >"$WORK/.before"
	rm -rf "$WORK/.backup"
	cp -a "$dir" "$WORK/.backup"
	"$S" -C "$dir" import "$file" >"$WORK/.out" 2>"$WORK/.err"
	rc=$?
	lines=$(wc -l <"$WORK/.err")
	[ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] && grep -Eq -- "$want" "$WORK/.err"
	ok $? "$d: refused (exit $rc, stderr $lines line) /$want/"
	if [ "$rc" -ne 1 ] || [ "$lines" -ne 1 ] || ! grep -Eq -- "$want" "$WORK/.err"; then
		sed 's/^/# out: /' "$WORK/.out" | head -5
		sed 's/^/# err: /' "$WORK/.err" | head -5
	fi
	snap "$dir" >"$WORK/.after"
	cmp -s "$WORK/.before" "$WORK/.after"
	ok $? "$d: $dir/store.db and refs unchanged"
	cmp -s "$WORK/.before" "$WORK/.after" || diff "$WORK/.before" "$WORK/.after" | sed 's/^/# /' | head -10
	if [ "$rc" -eq 0 ]; then
		rm -rf "$dir"
		mv "$WORK/.backup" "$dir"
	fi
}

# noop DESC DIR FILE: importing FILE again exits 0, says so, changes nothing.
noop() {
	local d=$1 dir=$2 file=$3 rc
	snap "$dir" >"$WORK/.before"
	"$S" -C "$dir" import "$file" >"$WORK/.out" 2>"$WORK/.err"
	rc=$?
	[ "$rc" -eq 0 ] && grep -q "nothing new" "$WORK/.out" && [ ! -s "$WORK/.err" ]
	ok $? "$d: exit $rc, 'nothing new'"
	[ "$rc" -eq 0 ] || sed 's/^/# err: /' "$WORK/.err" | head -5
	snap "$dir" >"$WORK/.after"
	cmp -s "$WORK/.before" "$WORK/.after"
	ok $? "$d: $dir/store.db and refs unchanged"
}

# absent DESC FILE TEXT: FILE's bytes do not hold TEXT (UTF-8 as written).
absent() {
	local n
	n=$(LC_ALL=C grep -a -F -c -- "$3" "$2")
	[ "$n" = 0 ]
	ok $? "$1 ($n matching lines)"
}

# the offset and the length of a field of a bundle (bundle_forge show)
field() { "$F" show "$1" | awk -v f="$2" -v c="$3" '$1 == f { print $c }'; }
off() { field "$1" "$2" 2; }
len() { field "$1" "$2" 3; }

# ---- stores: HQ with two branches, CAS01 and RAB01 ----

cat >schema.sql <<'SQL'
CREATE TABLE job_seeker(id TEXT PRIMARY KEY, owner_branch TEXT NOT NULL, last_name_lat TEXT,
  last_name_ar TEXT, national_id TEXT);
CREATE TABLE region(code TEXT PRIMARY KEY, name TEXT);
INSERT INTO tz_track(tbl, scope, owner_column) VALUES
  ('job_seeker', 'owned', 'owner_branch'), ('region', 'hq', NULL);
SQL
check "init-hq" "$S" init-hq hq
check "schema apply: an owned table with Arabic names and ID numbers, an hq table" \
	"$S" -C hq schema apply schema.sql
sqlite3 hq/store.db "INSERT INTO region VALUES ('CAS', 'Casablanca'), ('RAB', 'Rabat');
  INSERT INTO job_seeker VALUES ('CAS01-000001', 'CAS01', 'Alaoui', '$AR_HQ', '$ID_HQ');"
check "HQ commits a CAS01 row before the enrolment" "$S" -C hq commit -m base
check "branch add CAS01" "$S" -C hq branch add CAS01 --out cas01.tze
check "branch add RAB01" "$S" -C hq branch add RAB01 --out rab01.tze
check "init-branch CAS01" "$S" init-branch cas --enroll cas01.tze
check "init-branch RAB01" "$S" init-branch rab --enroll rab01.tze
[ "$(sqlite3 cas/store.db "SELECT last_name_ar || ' ' || national_id FROM job_seeker")" = "$AR_HQ $ID_HQ" ]
ok $? "the enrolment carried HQ's CAS01 row (Arabic name and ID number) to the branch"

sqlite3 cas/store.db "INSERT INTO job_seeker VALUES ('CAS01-000002', 'CAS01', 'Bennani', '$AR_CAS', '$ID_CAS')"
check "CAS01 exports its first bundle" "$S" -C cas export --out c1.tzb
sqlite3 rab/store.db "INSERT INTO job_seeker VALUES ('RAB01-000001', 'RAB01', 'Idrissi', 'الإدريسي', 'RB1111111')"
check "RAB01 exports its first bundle" "$S" -C rab export --out r1.tzb

# ---- no plaintext in a bundle or an enrolment file ----
LC_ALL=C grep -a -F -q -- "$AR_HQ" hq/store.db && LC_ALL=C grep -a -F -q -- "$ID_HQ" hq/store.db
ok $? "control: the search finds the Arabic name and the ID number in HQ's store.db"
absent "no plaintext: the enrolment file holds no Arabic name" cas01.tze "$AR_HQ"
absent "no plaintext: the enrolment file holds no ID number" cas01.tze "$ID_HQ"
absent "no plaintext: the branch's bundle holds no Arabic name" c1.tzb "$AR_CAS"
absent "no plaintext: the branch's bundle holds no ID number" c1.tzb "$ID_CAS"
absent "no plaintext: the branch's bundle holds no Latin name" c1.tzb "Bennani"

check "HQ imports CAS01's first bundle" "$S" -C hq import c1.tzb
[ "$(sqlite3 hq/store.db "SELECT national_id FROM job_seeker WHERE id = 'CAS01-000002'")" = "$ID_CAS" ]
ok $? "the branch's row reached HQ (the bundle really carried it)"
check "HQ imports RAB01's first bundle" "$S" -C hq import r1.tzb

# P1: the very same bundle again
noop "P1 re-importing CAS01's bundle at HQ is a no-op" hq c1.tzb

check "HQ answers CAS01" "$S" -C hq export --for CAS01 --out h1.tzb
absent "no plaintext: HQ's answer holds no Arabic name" h1.tzb "$AR_HQ"
absent "no plaintext: HQ's answer holds no ID number" h1.tzb "$ID_CAS"
check "HQ answers RAB01" "$S" -C hq export --for RAB01 --out hr1.tzb
check "CAS01 imports HQ's answer" "$S" -C cas import h1.tzb
noop "P1 re-importing HQ's answer at CAS01 is a no-op" cas h1.tzb

# The bundle every damaged one comes from: CAS01's second (sequence 2).  A
# copy of the branch made just before it exports a different bundle with
# the same sequence (and the same instance id).
cp -a cas cas-twin
sqlite3 cas/store.db "INSERT INTO job_seeker VALUES ('CAS01-000003', 'CAS01', 'Tazi', 'التازي', 'CD7654321')"
check "CAS01 exports its second bundle" "$S" -C cas export --out c2.tzb
sqlite3 cas-twin/store.db "INSERT INTO job_seeker VALUES ('CAS01-000004', 'CAS01', 'Fassi', 'الفاسي', 'EF2468013')"
check "a copy of CAS01 exports a different bundle with the same sequence" "$S" -C cas-twin export --out t2.tzb
# two later bundles, to import out of order
sqlite3 cas/store.db "INSERT INTO job_seeker VALUES ('CAS01-000005', 'CAS01', 'Berrada', 'برادة', 'GH1357924')"
check "CAS01 exports its third bundle" "$S" -C cas export --out c3.tzb
check "CAS01 exports its fourth bundle" "$S" -C cas export --out c4.tzb
# RAB01's next bundle, for after its key is revoked
sqlite3 rab/store.db "INSERT INTO job_seeker VALUES ('RAB01-000002', 'RAB01', 'Kettani', 'الكتاني', 'RB2222222')"
check "RAB01 exports its second bundle" "$S" -C rab export --out r2.tzb

# A store enrolled at another HQ, and a second store enrolled from CAS01's file.
other_hq() {
	"$S" init-hq hq2 && "$S" -C hq2 schema apply schema.sql && "$S" -C hq2 branch add TUN01 --out tun01.tze &&
		"$S" init-branch tun --enroll tun01.tze &&
		sqlite3 tun/store.db "INSERT INTO job_seeker VALUES ('TUN01-000001', 'TUN01', 'Trabelsi', 'الطرابلسي', 'TN0000001')" &&
		"$S" -C tun export --out tun1.tzb
}
check "a second HQ enrols TUN01, which exports" other_hq
check "a second store enrolled from CAS01's enrolment file" "$S" init-branch cas-b --enroll cas01.tze
check "the second CAS01 store exports" "$S" -C cas-b export --out b1.tzb
t_setup=$(date +%s.%N)

# ---- P11: one bit flipped in each part, the signature left as it was ----
"$F" show c2.tzb | sed 's/^/# c2.tzb: /'
flip() { "$F" flip c2.tzb "$@"; }
flip f-magic.tzb magic 0 0
refused "P11 bit flip in the magic" hq f-magic.tzb "header: bad magic, not a tazamun bundle"
flip f-version.tzb version 0 0
refused "P11 bit flip in the version (1 -> 0)" hq f-version.tzb \
	"header: bundle version 0 is not supported \(this build reads 1\)"
flip f-flags.tzb flags 0 1
refused "P11 bit flip in the flags (a reserved bit)" hq f-flags.tzb "header: reserved flag bits 0x0002 are set"
flip f-senderlen.tzb sender_len 0 0
refused "P11 bit flip in the sender code's length" hq f-senderlen.tzb "header: recipient code is not valid"
flip f-sender.tzb sender 0 5
refused "P11 bit flip in the sender code (CAS01 -> cAS01)" hq f-sender.tzb "header: sender code is not valid"
flip f-recipient.tzb recipient 1 0
refused "P4 bit flip in the recipient code (HQ -> HP)" hq f-recipient.tzb "bundle is for 'HP', not 'HQ'"
for part in instance sequence schema dict_id prereq sealed_key ss_header ciphertext signature; do
	flip "f-$part.tzb" "$part"
	refused "P11 bit flip in the $part (signature checked before decryption)" hq "f-$part.tzb" \
		"signature does not verify"
done
flip f-nprereq.tzb nprereq 1 4
refused "P11 bit flip in the prerequisite count (over 4096)" hq f-nprereq.tzb \
	"header: 4097 prerequisites \(limit 4096\)"
flip f-plain.tzb plain_size 7 7
refused "P11 bit flip in plain_size (2^63 + n)" hq f-plain.tzb \
	"header: plain_size 9223372036854[0-9]+ exceeds the limit of 1073741824"
flip f-cipher.tzb cipher_size 7 7
refused "P11 bit flip in cipher_size (2^63 + n)" hq f-cipher.tzb \
	"header: cipher_size 9223372036854[0-9]+ exceeds the limit of 1073741824"

# ---- P11: flipped, then signed again with the sender's real key ----
flip r-schema.tzb schema --resign cas
refused "P11 header changed and re-signed: the header is the first chunk's AD" hq r-schema.tzb \
	"body: encrypted chunk 0 does not authenticate"
flip r-sealed.tzb sealed_key --resign cas
refused "P11 sealed key changed and re-signed" hq r-sealed.tzb "sealed key does not open with this replica's key"
flip r-cipher.tzb ciphertext --resign cas
refused "P11 ciphertext changed and re-signed" hq r-cipher.tzb "body: encrypted chunk 0 does not authenticate"

# ---- P11: truncated at several lengths, trailing bytes, too large ----
size=$(stat -c %s c2.tzb)
hdr=$(len c2.tzb header)
cutto() { head -c "$1" c2.tzb >"$2"; }
cutto 0 t-0.tzb
refused "P11 truncated to 0 bytes" hq t-0.tzb "header: truncated in magic"
cutto 4 t-4.tzb
refused "P11 truncated to 4 bytes (in the magic)" hq t-4.tzb "header: truncated in magic"
for part in recipient instance dict_id prereq sealed_key ss_header; do
	at=$(($(off c2.tzb "$part") + $(len c2.tzb "$part") / 2))
	cutto "$at" "t-$part.tzb"
	refused "P11 truncated to $at bytes (in the $part)" hq "t-$part.tzb" "header: truncated in ${part/prereq/prerequisites}"
done
at=$(($(off c2.tzb cipher_size) + 3))
cutto "$at" t-sizes.tzb
refused "P11 truncated to $at bytes (in cipher_size)" hq t-sizes.tzb "header: truncated in sizes"
cutto "$hdr" t-header.tzb
refused "P11 truncated after the header ($hdr bytes)" hq t-header.tzb \
	"body: truncated: cipher_size is [0-9]+, 0 bytes remain"
at=$((hdr + 100))
cutto "$at" t-body.tzb
refused "P11 truncated in the ciphertext ($at bytes)" hq t-body.tzb "body: truncated: cipher_size is [0-9]+, 100 bytes remain"
cutto $((size - 1)) t-sig.tzb
refused "P11 truncated by one byte (in the signature)" hq t-sig.tzb \
	"body: truncated: cipher_size is [0-9]+, $((size - 1 - hdr)) bytes remain"
{ cat c2.tzb; printf 'x'; } >x-1.tzb
refused "P11 one trailing byte" hq x-1.tzb "bundle: 1 trailing bytes after the signature"
cat c2.tzb c2.tzb >x-2.tzb
refused "P11 a whole second bundle after the first" hq x-2.tzb "bundle: $size trailing bytes after the signature"
truncate -s $(((1 << 30) + 1)) x-big.tzb
refused "P11 a file of 1 GiB + 1 byte is refused before it is read" hq x-big.tzb \
	"is 1073741825 bytes, over the limit of 1073741824"
rm -f x-big.tzb

# ---- forged: validly signed by CAS01's key, encrypted to HQ, one bad field ----
forge() { "$F" forge c2.tzb "$1" --from cas --to hq "${@:2}"; }
forge g-control.tzb
cp -a hq hq-control
check "control: the forging tool's unchanged copy of the bundle imports (into a copy of HQ)" \
	"$S" -C hq-control import g-control.tzb
plain=$(field c2.tzb plain_size 4)
forge g-version.tzb --version 2
refused "P11 future format version, signed" hq g-version.tzb \
	"header: bundle version 2 is not supported \(this build reads 1\)"
forge g-bomb.tzb --bomb-rle 1024
refused "P11 decompression bomb: a frame declaring 1 TiB, 1 GiB of RLE blocks, signed" hq g-bomb.tzb \
	"body: zstd frame decompresses to more than $plain bytes"
forge g-window.tzb --bomb-window 31
refused "P11 a zstd frame asking for a 2 GiB window, signed" hq g-window.tzb \
	"body: zstd cannot decompress: Frame requires too much memory"
forge g-plainmax.tzb --plain-size 18446744073709551615
refused "P11 plain_size 2^64-1, signed" hq g-plainmax.tzb \
	"header: plain_size 18446744073709551615 exceeds the limit of 1073741824"
forge g-plaincap.tzb --plain-size $(((1 << 30) + 1))
refused "P11 plain_size 1 GiB + 1, signed" hq g-plaincap.tzb "header: plain_size 1073741825 exceeds the limit"
forge g-ciphermax.tzb --cipher-size 18446744073709551615
refused "P11 cipher_size 2^64-1, signed" hq g-ciphermax.tzb \
	"header: cipher_size 18446744073709551615 exceeds the limit of 1073741824"
forge g-plainmore.tzb --plain-size $((plain + 1))
refused "P11 plain_size one more than the payload, signed" hq g-plainmore.tzb \
	"body: payload of $plain bytes, the header says $((plain + 1))"
forge g-count.tzb --payload-count-max
refused "P11 payload commit count varint 2^64-1, signed" hq g-count.tzb "payload: bad commit count"
forge g-tree.tzb --payload-replace CD7654321 CD7654322
refused "P12 an ID number changed in the payload, signed: the rebuilt tree differs" hq g-tree.tzb \
	"payload: commit [0-9a-f]{40}: the rebuilt tree [0-9a-f]{40} is not the tree the commit names"
forge g-commit.tzb --payload-replace "Tazamun-Replica: CAS01" "Tazamun-Replica: CAS02"
refused "P12 a commit's bytes changed in the payload, signed: its id differs" hq g-commit.tzb \
	"payload: commit [0-9a-f]{40}: its bytes hash to another id"
missing=0123456789abcdef0123456789abcdef01234567
forge g-prereq.tzb --prereq "$missing"
refused "P2 missing prerequisite, signed" hq g-prereq.tzb \
	"missing prerequisite: commit $missing is not in this store"
rabline=$(git -C hq/history rev-parse refs/heads/branches/RAB01)
forge g-otherline.tzb --prereq "$rabline"
refused "P2 a prerequisite on another branch's line, signed" hq g-otherline.tzb \
	"the bundle builds on commit $rabline, which is not on CAS01's line"
forge g-seq1.tzb --sequence 1
refused "P7 a different bundle with an accepted sequence number (1), signed" hq g-seq1.tzb \
	"replay: 'CAS01' already sent a different bundle with sequence 1"
forge g-instance.tzb --instance random
refused "P8 another store instance posing as CAS01, signed with its key" hq g-instance.tzb \
	"a copied or restored store posing as the branch is refused"
forge g-recipient.tzb --recipient RAB01
refused "P4 re-addressed to RAB01, signed" hq g-recipient.tzb "bundle is for 'RAB01', not 'HQ'"
forge g-unknown.tzb --sender TUN01 --sign-new-key
refused "P5 unknown sender code, forged key" hq g-unknown.tzb "sender: unknown sender 'TUN01'"
forge g-newkey.tzb --sign-new-key
refused "P5 known sender code signed by an unknown key" hq g-newkey.tzb "signature does not verify"
forge g-schema.tzb --schema 99
refused "P17: a schema version from the future (99, HQ is at 1), signed" hq g-schema.tzb "schema version 99.*HQ is at 1"

# ---- real stores ----
refused "P5 a bundle from a store enrolled at another HQ" hq tun1.tzb "sender: unknown sender 'TUN01'"
refused "P5 HQ's own bundle given back to HQ" hq h1.tzb "the bundle claims to come from this store itself \('HQ'\)"
refused "P8 a second store enrolled from CAS01's enrolment file" hq b1.tzb \
	"'CAS01' bound another key at its enrolment"
refused "P4 HQ's bundle for RAB01 imported at CAS01" cas hr1.tzb "bundle is for 'RAB01', not 'CAS01'"

# the untouched bundle imports, once
check "the untouched second bundle imports" "$S" -C hq import c2.tzb
like "$WORK/.out" "imported c2.tzb from CAS01 \(sequence 2\)" "it was new to HQ"
noop "P1 re-importing it is a no-op" hq c2.tzb
refused "P7 a copy of CAS01 replays sequence 2 with a different bundle" hq t2.tzb \
	"replay: 'CAS01' already sent a different bundle with sequence 2"
check "CAS01's fourth bundle imports before its third" "$S" -C hq import c4.tzb
refused "P7 an older sequence after a newer one" hq c3.tzb \
	"replay: sequence 3 of 'CAS01' is not newer than the last one accepted \(4\)"

# P6 last: revoking changes HQ
check "HQ revokes RAB01" "$S" -C hq keys revoke RAB01
refused "P6 a bundle signed by a revoked key" hq r2.tzb "sender: the key of 'RAB01' is revoked"
check "HQ's store verifies after every refusal" "$S" -C hq verify
t_end=$(date +%s.%N)
awk -v a="$t_start" -v b="$t_setup" -v c="$t_end" \
	'BEGIN { printf "# timing: setup %.1f s (7 Argon2 enrolment steps), bad bundles %.1f s\n", b - a, c - b }'
done_testing

/*
 * test_bundle.c - unit tests for the bundle container (syncd/bundle.c,
 * docs/bundle-format.md) and the cryptography it uses from store/keys.c.
 *
 * Round trips (empty, 1 byte, 1 MiB of noise, 5 MiB of text, with and
 * without a dictionary), no known plaintext in a bundle, and every kind of
 * refusal with its code and message.  The inner checks (decryption, the
 * stream's chunking, decompression) sit behind the signature, so the test
 * uses the sender's key to forge properly signed but malformed bundles:
 * re-signing a mutated bundle, or building one from scratch with libsodium
 * directly (forge(), an independent implementation of the format, checked
 * against the reader by a control case that must succeed).
 *
 * The refusal cases are the authoritative check; `test_bundle
 * --write-corpus DIR` writes the same cases as DIR/reject/bundle/NAME with
 * NAME.err, and a few valid bundles as DIR/corpus/bundle/NAME, for
 * tests/fuzz/fuzz_bundle.c, which reads them with the same fixture (keys
 * from fixed seeds, reader "HQ", dictionary FIX_DICT, the key callback).
 */
#include "syncd/tz_bundle.h"
#include "tests/fuzz/bundle_fixture.h"
#include "store/tz_zstd.h"
#include "tests/unit/tz_test.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define MIB ((size_t)1 << 20)
#define WRONG_DICT "another dictionary: region=Sousse;region=Gabes;"
#define CONTEXT "tazamun bundle v1"
/* Offsets in the base bundle: sender "B01", recipient "HQ", 2 prerequisites. */
#define OFF_SENDER 13
#define OFF_RECIPIENT 17
#define OFF_SCHEMA (19 + 16 + 8)
#define OFF_NPREREQ (OFF_SCHEMA + 8 + 32)
#define OFF_SEALED (OFF_NPREREQ + 2 + 2 * 20)
#define OFF_PLAIN (OFF_SEALED + 80 + 24)
#define OFF_CIPHER (OFF_PLAIN + 8)
#define HDR_LEN (OFF_CIPHER + 8)

static tz_keypair k_b02, k_old, k_zz9;   /* k_b01, k_hq: bundle_fixture.h */
static tz_buf base = TZ_BUF_INIT;
static const tz_bundle_opts fix_opts = { 3, FIX_DICT, sizeof(FIX_DICT) - 1 };

static void put_u16(tz_buf *b, uint16_t v)
{
	tz_buf_putc(b, (uint8_t)v);
	tz_buf_putc(b, (uint8_t)(v >> 8));
}

static void set_u64(tz_buf *b, size_t off, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b->data[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

/* A bundle from `sender` (signed with kp) to `to` (sealed to to_pk). */
static int make(tz_buf *out, const char *sender, const tz_keypair *kp, const char *to,
		const uint8_t *to_pk, const void *payload, size_t n, const tz_bundle_opts *o)
{
	tz_oid pre[2];
	tz_bundle_header h;

	memset(&h, 0, sizeof(h));
	memset(pre, 0xab, sizeof(pre));
	snprintf(h.sender, sizeof(h.sender), "%s", sender);
	snprintf(h.recipient, sizeof(h.recipient), "%s", to);
	memset(h.instance, 0x11, sizeof(h.instance));
	h.sequence = 7;
	h.schema = 3;
	h.nprereq = 2;
	h.prereq = pre;
	return tz_bundle_write(out, &h, kp, to_pk, payload, n, o);
}

static int read_fix(tz_bundle_header *h, tz_buf *payload, const tz_buf *b)
{
	return tz_bundle_read(h, payload, b->data, b->len, "HQ", &k_hq, &fix_opts,
			      fixture_cb, NULL);
}

/* Replace the signature with a valid one by B01 over the bytes as they are. */
static void resign(tz_buf *b, size_t hdr_len)
{
	tz_piece pieces[2] = { { b->data, hdr_len }, { b->data + hdr_len, b->len - 64 - hdr_len } };

	if (tz_sign_ph(b->data + b->len - 64, &k_b01, CONTEXT, pieces, 2) != TZ_OK)
		abort();
}

/* ---- forging from scratch with libsodium (one chunk, header B01 -> HQ) ---- */

enum { F_OK, F_NO_FINAL, F_AFTER_FINAL };

static void push(tz_buf *out, crypto_secretstream_xchacha20poly1305_state *st,
		 const void *m, size_t n, const tz_buf *ad, uint8_t tag)
{
	unsigned long long clen;

	tz_buf_u32le(out, (uint32_t)(n + 17));
	if (tz_buf_reserve(out, n + 17) != TZ_OK)
		abort();
	crypto_secretstream_xchacha20poly1305_push(st, out->data + out->len, &clen, m, n,
						   ad ? ad->data : NULL, ad ? ad->len : 0, tag);
	out->len += (size_t)clen;
}

static void forge(tz_buf *out, const void *frame, size_t flen, uint64_t plain, int mode)
{
	uint8_t key[32], xpk[32], sealed[80], ssh[24], sig[64];
	crypto_secretstream_xchacha20poly1305_state st;
	crypto_sign_state ss;
	tz_buf hdr = TZ_BUF_INIT;

	crypto_secretstream_xchacha20poly1305_keygen(key);
	crypto_secretstream_xchacha20poly1305_init_push(&st, ssh, key);
	if (crypto_sign_ed25519_pk_to_curve25519(xpk, k_hq.pk) != 0 ||
	    crypto_box_seal(sealed, key, sizeof(key), xpk) != 0)
		abort();
	tz_buf_put(&hdr, "TZBUNDL1", 8);
	put_u16(&hdr, 1);
	put_u16(&hdr, 0);
	tz_buf_put(&hdr, "\003B01\002HQ", 7);
	tz_buf_put(&hdr, "0123456789abcdef", 16);
	tz_buf_u64le(&hdr, 1);
	tz_buf_u64le(&hdr, 1);
	for (int i = 0; i < 34; i++)   /* dict_id none, nprereq 0 */
		tz_buf_putc(&hdr, 0);
	tz_buf_put(&hdr, sealed, sizeof(sealed));
	tz_buf_put(&hdr, ssh, sizeof(ssh));
	tz_buf_u64le(&hdr, plain);
	tz_buf_u64le(&hdr, 21 + flen + (mode == F_AFTER_FINAL ? 22 : 0));
	tz_buf_clear(out);
	tz_buf_put(out, hdr.data, hdr.len);
	push(out, &st, frame, flen, &hdr, mode == F_NO_FINAL ? 0 : 3);
	if (mode == F_AFTER_FINAL)
		push(out, &st, "x", 1, NULL, 0);
	crypto_sign_init(&ss);
	crypto_sign_update(&ss, (const uint8_t *)CONTEXT, sizeof(CONTEXT));
	crypto_sign_update(&ss, out->data, out->len);
	crypto_sign_final_create(&ss, sig, NULL, k_b01.sk);
	tz_buf_put(out, sig, sizeof(sig));
	tz_buf_release(&hdr);
}

static void forge_zstd(tz_buf *out, const void *payload, size_t n, uint64_t plain, int twice)
{
	tz_buf z = TZ_BUF_INIT;
	size_t one;

	if (tz_zstd_compress(&z, payload, n, 3, NULL, 0) != TZ_OK)
		abort();
	one = z.len;
	if (twice)
		tz_buf_put(&z, z.data, one);
	forge(out, z.data, z.len, plain, F_OK);
	tz_buf_release(&z);
}

/* ---- the refusal cases ---- */

typedef struct {
	const char *name;
	void (*build)(tz_buf *out);
	int code;
	const char *msg;
} bad_case;

static void copy_base(tz_buf *out)
{
	tz_buf_clear(out);
	tz_buf_put(out, base.data, base.len);
}

static void b_magic(tz_buf *o) { copy_base(o); o->data[3] ^= 0x01; }
static void b_version(tz_buf *o) { copy_base(o); o->data[8] = 2; }
static void b_flags(tz_buf *o) { copy_base(o); o->data[10] = 2; }
static void b_sender(tz_buf *o) { copy_base(o); o->data[OFF_SENDER] = 'b'; }
static void b_recipient(tz_buf *o) { copy_base(o); o->data[OFF_RECIPIENT] = '_'; }
static void b_trunc_hdr(tz_buf *o) { copy_base(o); o->len = OFF_SEALED + 10; }
static void b_trunc_body(tz_buf *o) { copy_base(o); o->len -= 10; }
static void b_trailing(tz_buf *o) { copy_base(o); tz_buf_putc(o, 0); }
static void b_nprereq(tz_buf *o) { copy_base(o); o->data[OFF_NPREREQ] = 0x01; o->data[OFF_NPREREQ + 1] = 0x10; }
static void b_cipher_size(tz_buf *o) { copy_base(o); set_u64(o, OFF_CIPHER, UINT64_MAX - 5); }
static void b_plain_size(tz_buf *o) { copy_base(o); set_u64(o, OFF_PLAIN, TZ_BUNDLE_MAX_PLAIN + 1); }
static void b_sig(tz_buf *o) { copy_base(o); o->data[o->len - 1] ^= 0x80; }
static void b_both(tz_buf *o) { copy_base(o); o->data[HDR_LEN + 10] ^= 1; o->data[o->len - 1] ^= 0x80; }
static void b_cipher(tz_buf *o) { copy_base(o); o->data[HDR_LEN + 10] ^= 1; resign(o, HDR_LEN); }
static void b_schema(tz_buf *o) { copy_base(o); o->data[OFF_SCHEMA] ^= 1; resign(o, HDR_LEN); }
static void b_len(tz_buf *o) { copy_base(o); o->data[HDR_LEN + 2] = 2; resign(o, HDR_LEN); }

static void b_sealed(tz_buf *o)
{
	uint8_t key[32];

	copy_base(o);
	tz_random_bytes(key, sizeof(key));
	if (tz_seal_key(o->data + OFF_SEALED, key, k_b02.pk) != TZ_OK)
		abort();
	resign(o, HDR_LEN);
}

static void b_recipient_other(tz_buf *o) { make(o, "B01", &k_b01, "B02", k_b02.pk, "x", 1, &fix_opts); }
static void b_unknown(tz_buf *o) { make(o, "ZZ9", &k_zz9, "HQ", k_hq.pk, "x", 1, &fix_opts); }
static void b_revoked(tz_buf *o) { make(o, "OLD", &k_old, "HQ", k_hq.pk, "x", 1, &fix_opts); }

static void b_wrong_dict(tz_buf *o)
{
	tz_bundle_opts w = { 3, WRONG_DICT, sizeof(WRONG_DICT) - 1 };

	make(o, "B01", &k_b01, "HQ", k_hq.pk, "x", 1, &w);
}

static void b_no_final(tz_buf *o) { forge(o, "abc", 3, 3, F_NO_FINAL); }
static void b_after_final(tz_buf *o) { forge(o, "abc", 3, 3, F_AFTER_FINAL); }
static void b_not_zstd(tz_buf *o) { forge(o, "not a zstd frame", 16, 16, F_OK); }
static void b_short(tz_buf *o) { forge_zstd(o, "hello, world", 12, 13, 0); }
static void b_two_frames(tz_buf *o) { forge_zstd(o, "hello, world", 12, 24, 1); }

static void b_bomb(tz_buf *o)
{
	uint8_t *zeros = calloc(1, MIB);

	forge_zstd(o, zeros, MIB, 1000, 0);
	free(zeros);
}

static const bad_case cases[] = {
	{ "magic", b_magic, TZ_ECORRUPT, "header: bad magic" },
	{ "version-2", b_version, TZ_EPROTO, "bundle version 2 is not supported (this build reads 1)" },
	{ "flags", b_flags, TZ_EPROTO, "header: reserved flag bits 0x0002" },
	{ "sender-code", b_sender, TZ_ECORRUPT, "header: sender code is not valid" },
	{ "recipient-code", b_recipient, TZ_ECORRUPT, "header: recipient code is not valid" },
	{ "truncated-header", b_trunc_hdr, TZ_ECORRUPT, "header: truncated in sealed_key" },
	{ "truncated-body", b_trunc_body, TZ_ECORRUPT, "body: truncated" },
	{ "trailing", b_trailing, TZ_ECORRUPT, "1 trailing bytes after the signature" },
	{ "nprereq-limit", b_nprereq, TZ_ELIMIT, "header: 4097 prerequisites (limit 4096)" },
	{ "cipher-size-huge", b_cipher_size, TZ_ELIMIT, "header: cipher_size 18446744073709551610" },
	{ "plain-size-limit", b_plain_size, TZ_ELIMIT, "header: plain_size 1073741825 exceeds" },
	{ "wrong-recipient", b_recipient_other, TZ_EPERM, "bundle is for 'B02', not 'HQ'" },
	{ "unknown-sender", b_unknown, TZ_EPERM, "unknown sender 'ZZ9'" },
	{ "revoked-sender", b_revoked, TZ_EPERM, "key of 'OLD' is revoked" },
	{ "signature-flip", b_sig, TZ_EVERIFY, "signature does not verify" },
	{ "cipher-and-signature-flip", b_both, TZ_EVERIFY, "signature does not verify" },
	{ "cipher-flip-resigned", b_cipher, TZ_EVERIFY, "body: encrypted chunk 0 does not authenticate" },
	{ "header-flip-resigned", b_schema, TZ_EVERIFY, "body: encrypted chunk 0 does not authenticate" },
	{ "chunk-length-resigned", b_len, TZ_EVERIFY, "body: encrypted chunk 0 declares" },
	{ "sealed-for-other", b_sealed, TZ_EVERIFY, "sealed key does not open" },
	{ "missing-final", b_no_final, TZ_EVERIFY, "body: encrypted stream ends without its final chunk" },
	{ "data-after-final", b_after_final, TZ_EVERIFY, "body: 22 bytes after the final encrypted chunk" },
	{ "not-zstd", b_not_zstd, TZ_ECORRUPT, "body: zstd cannot decompress: Unknown frame descriptor" },
	{ "bomb", b_bomb, TZ_ELIMIT, "body: zstd frame decompresses to more than 1000 bytes" },
	{ "short-output", b_short, TZ_ECORRUPT, "body: payload of 12 bytes, the header says 13" },
	{ "two-frames", b_two_frames, TZ_ECORRUPT, "body: zstd: 25 trailing bytes after the frame" },
	{ "wrong-dictionary", b_wrong_dict, TZ_ENOTFOUND, "which was not given" },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void test_refusals(void)
{
	tz_buf b = TZ_BUF_INIT, payload = TZ_BUF_INIT;
	tz_bundle_header h;

	for (size_t i = 0; i < NCASES; i++) {
		int rc;

		cases[i].build(&b);
		tz_buf_put(&payload, "stale", 5);   /* must be emptied */
		rc = read_fix(&h, &payload, &b);
		CHECK(rc == cases[i].code && strstr(tz_error_last(), cases[i].msg) != NULL,
		      "refused: %s: want %s '%s', got %s '%s'", cases[i].name,
		      tz_error_name(cases[i].code), cases[i].msg,
		      rc ? tz_error_name(rc) : "OK", rc ? tz_error_last() : "");
		CHECK(all_zero(&h, sizeof(h)) && payload.len == 0, "refused: %s: outputs empty",
		      cases[i].name);
		tz_buf_release(&payload);
	}
	tz_buf_release(&b);
}

/* ---- round trips ---- */

static int round_trip(const void *payload, size_t n, const tz_bundle_opts *o, const char *what)
{
	tz_buf b = TZ_BUF_INIT, back = TZ_BUF_INIT;
	tz_bundle_header h, p;
	int ok, rc;

	rc = make(&b, "B01", &k_b01, "HQ", k_hq.pk, payload, n, o);
	ok = rc == TZ_OK && read_fix(&h, &back, &b) == TZ_OK;
	ok = ok && back.len == n && (n == 0 || memcmp(back.data, payload, n) == 0);
	ok = ok && h.sequence == 7 && h.schema == 3 && h.plain_size == n && h.nprereq == 2 &&
	     strcmp(h.sender, "B01") == 0 && strcmp(h.recipient, "HQ") == 0 &&
	     all_zero(h.dict_id, 32) == (o == NULL || o->dict == NULL);
	ok = ok && tz_bundle_peek(&p, b.data, b.len) == TZ_OK && p.nprereq == 2 &&
	     memcmp(p.prereq, h.prereq, 2 * sizeof(tz_oid)) == 0 && p.sequence == 7;
	CHECK(ok, "round trip: %s (%zu bytes in a bundle of %zu)%s%s", what, n, b.len,
	      ok ? "" : ": ", ok ? "" : tz_error_last());
	tz_bundle_header_release(&h);
	tz_bundle_header_release(&p);
	tz_buf_release(&b);
	tz_buf_release(&back);
	return ok;
}

static void test_round_trips(void)
{
	static const char row[] = "name=Fatima;region=Tunis;national_id=BE";
	size_t big = 5 * MIB;
	uint8_t *noise = malloc(MIB), *text = malloc(big);
	tz_bundle_opts fast = { 1, NULL, 0 };

	tz_random_bytes(noise, MIB);
	for (size_t i = 0; i < big; i++)
		text[i] = (uint8_t)row[i % (sizeof(row) - 1)];
	round_trip("", 0, NULL, "empty payload");
	round_trip("x", 1, NULL, "1 byte");
	round_trip(noise, MIB, &fast, "1 MiB of noise");
	round_trip(text, big, NULL, "5 MiB of text, level 19");
	round_trip(row, sizeof(row) - 1, &fix_opts, "with a dictionary");
	round_trip(text, big, &fix_opts, "5 MiB with a dictionary");
	free(noise);
	free(text);
}

static int contains(const tz_buf *b, const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i + n <= b->len; i++)
		if (memcmp(b->data + i, s, n) == 0)
			return 1;
	return 0;
}

static void test_no_plaintext(void)
{
	static const char secret[] = "name=فاطمة الزهراء;national_id=BE123456;"
				     "name=فاطمة الزهراء;national_id=BE123456;";
	static const char *needles[] = { "فاطمة الزهراء", "BE123456", "national_id" };
	tz_buf b = TZ_BUF_INIT;
	int found = 0;

	CHECK(make(&b, "B01", &k_b01, "HQ", k_hq.pk, secret, sizeof(secret) - 1, NULL) == TZ_OK,
	      "a bundle of a known plaintext");
	for (size_t i = 0; i < 3; i++)
		found |= contains(&b, needles[i]);
	CHECK(!found, "the bundle contains neither the name nor the id");
	tz_buf_release(&b);
}

/* A forged bundle that follows the format must read: the forge is right,
 * so each forged refusal is refused for its one defect. */
static void test_forge_control(void)
{
	tz_buf b = TZ_BUF_INIT, payload = TZ_BUF_INIT;
	tz_bundle_header h;

	forge_zstd(&b, "hello, world", 12, 12, 0);
	CHECK(read_fix(&h, &payload, &b) == TZ_OK && payload.len == 12 &&
	      memcmp(payload.data, "hello, world", 12) == 0, "a forged, well-formed bundle reads");
	tz_bundle_header_release(&h);
	tz_buf_release(&payload);
	tz_buf_release(&b);
}

/* ---- the crypto helpers of store/keys.c ---- */

static void test_stream(void)
{
	static const size_t sizes[] = { 0, 1, 65535, 65536, 65537, 3 * 65536 };
	uint8_t key[32], ssh[24], *plain = malloc(3 * 65536);
	tz_buf c = TZ_BUF_INIT, back = TZ_BUF_INIT;

	tz_random_bytes(key, sizeof(key));
	tz_random_bytes(plain, 3 * 65536);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t want;
		tz_stream st;
		int ok;

		tz_buf_clear(&c);
		tz_buf_clear(&back);
		ok = tz_stream_size(&want, sizes[i]) == TZ_OK &&
		     tz_stream_init_push(&st, ssh, key) == TZ_OK &&
		     tz_stream_push_all(&c, &st, "ad", 2, plain, sizes[i]) == TZ_OK &&
		     c.len == want &&
		     tz_stream_decrypt(&back, key, ssh, "ad", 2, c.data, c.len) == TZ_OK &&
		     back.len == sizes[i] && memcmp(back.data, plain, sizes[i]) == 0;
		CHECK(ok, "stream of %zu bytes: %zu bytes framed, round trip", sizes[i], c.len);
		CHECK(tz_stream_decrypt(&back, key, ssh, "aD", 2, c.data, c.len) == TZ_EVERIFY &&
		      back.len == sizes[i], "stream of %zu bytes: other ad refused", sizes[i]);
	}
	tz_buf_clear(&back);
	CHECK(tz_stream_decrypt(&back, key, ssh, "ad", 2, c.data, c.len - 1) == TZ_EVERIFY &&
	      back.len == 0, "a truncated stream is refused: %s", tz_error_last());
	free(plain);
	tz_buf_release(&c);
	tz_buf_release(&back);
}

static void test_seal_and_sign(void)
{
	uint8_t key[32], back[32], sealed[80], sig[64];
	tz_piece p[2] = { { "header", 6 }, { "body", 4 } };

	tz_random_bytes(key, sizeof(key));
	CHECK(tz_seal_key(sealed, key, k_hq.pk) == TZ_OK &&
	      tz_unseal_key(back, sealed, &k_hq) == TZ_OK && memcmp(back, key, 32) == 0,
	      "seal and unseal a key");
	CHECK(tz_unseal_key(back, sealed, &k_b02) == TZ_EVERIFY && all_zero(back, 32),
	      "another key pair cannot unseal, key zeroed");
	CHECK(tz_sign_ph(sig, &k_b01, CONTEXT, p, 2) == TZ_OK &&
	      tz_verify_ph(sig, k_b01.pk, CONTEXT, p, 2) == TZ_OK, "ed25519ph sign and verify");
	CHECK(tz_verify_ph(sig, k_b01.pk, "tazamun bundle v2", p, 2) == TZ_EVERIFY,
	      "another context does not verify");
	p[0].n = 5;
	CHECK(tz_verify_ph(sig, k_b01.pk, CONTEXT, p, 2) == TZ_EVERIFY,
	      "other data does not verify");
	CHECK(tz_verify_ph(sig, k_b02.pk, CONTEXT, p, 2) == TZ_EVERIFY,
	      "another key does not verify");
}

static void test_write_args(void)
{
	tz_buf b = TZ_BUF_INIT;

	CHECK(make(&b, "b01", &k_b01, "HQ", k_hq.pk, "x", 1, NULL) == TZ_EINVAL && b.len == 0,
	      "write refuses an invalid sender code");
	CHECK(make(&b, "B01", &k_b01, "HQ", k_hq.pk, "x", 1,
		   &(tz_bundle_opts){ 30, NULL, 0 }) == TZ_EINVAL && b.len == 0,
	      "write refuses zstd level 30");
	tz_buf_release(&b);
}

/* ---- the corpus for tests/fuzz/fuzz_bundle.c ---- */

static int write_corpus(const char *dir)
{
	char sub[1024], err[512];
	tz_buf b = TZ_BUF_INIT;
	int bad = 0;

	snprintf(sub, sizeof(sub), "%s/reject/bundle", dir);
	for (size_t i = 0; i < NCASES; i++) {
		cases[i].build(&b);
		snprintf(err, sizeof(err), "%s\n%s\n", tz_error_name(cases[i].code), cases[i].msg);
		bad |= tz_test_write_file(sub, cases[i].name, "", b.data, b.len);
		bad |= tz_test_write_file(sub, cases[i].name, ".err", err, strlen(err));
	}
	snprintf(sub, sizeof(sub), "%s/corpus/bundle", dir);
	bad |= tz_test_write_file(sub, "base", "", base.data, base.len);
	make(&b, "B01", &k_b01, "HQ", k_hq.pk, "", 0, NULL);
	bad |= tz_test_write_file(sub, "empty", "", b.data, b.len);
	make(&b, "B01", &k_b01, "HQ", k_hq.pk, "region=Tunis;", 13, &fix_opts);
	bad |= tz_test_write_file(sub, "dictionary", "", b.data, b.len);
	forge_zstd(&b, "hello, world", 12, 12, 0);
	bad |= tz_test_write_file(sub, "forged", "", b.data, b.len);
	tz_buf_release(&b);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	int rc;

	if (tz_crypto_init() != TZ_OK)
		return 1;
	if (fixture_setup() != 0)
		return 1;
	fixture_key(&k_b02, 3);
	fixture_key(&k_old, 4);
	fixture_key(&k_zz9, 5);
	/* the base bundle has no dictionary, so b_wrong_dict is the only one */
	rc = make(&base, "B01", &k_b01, "HQ", k_hq.pk, "row delta", 9,
		  &(tz_bundle_opts){ 3, NULL, 0 });
	if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
		return rc != TZ_OK ? 1 : write_corpus(argv[2]);
	CHECK(rc == TZ_OK && base.len > HDR_LEN + 64, "the base bundle (%zu bytes)", base.len);
	test_round_trips();
	test_no_plaintext();
	test_forge_control();
	test_refusals();
	test_stream();
	test_seal_and_sign();
	test_write_args();
	tz_buf_release(&base);
	return tz_test_done();
}

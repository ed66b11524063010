/*
 * test_enrol.c - unit tests for the enrolment file container
 * (syncd/enrol.c, docs/bundle-format.md "The enrolment file").
 *
 * Round trips (empty, small, 1.25 MiB of noise in 21 chunks, the default
 * Argon2 parameters once), a wrong passphrase, every truncation, a
 * trailing byte, every bit of the header flipped, the limits (refused
 * before Argon2 runs), allocation faults, and every kind of refusal with
 * its code and message.  The inner checks (the stream's chunking,
 * decompression, the size) sit behind the passphrase, so the test forges
 * files from scratch with libsodium and the passphrase (forge(), an
 * independent implementation of the format, checked by a control case
 * that must read).  Most files use the cheapest Argon2 parameters
 * (1 pass, 8 KiB) through tz_enrol_write_params.
 *
 * The refusal cases are the authoritative check; `test_enrol
 * --write-corpus DIR` writes the same cases as DIR/reject/enrol/NAME with
 * NAME.err, and a few valid files as DIR/corpus/enrol/NAME, for
 * tests/fuzz/fuzz_enrol.c, which opens them with the same passphrase
 * (FIX_PASS, also defined there).
 */
#include "syncd/tz_enrol.h"
#include "store/tz_keys.h"
#include "store/tz_zstd.h"
#include "tests/unit/tz_test.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

/* The fixture passphrase: tests/fuzz/fuzz_enrol.c must use the same. */
#define FIX_PASS "tazamun fixture passphrase: sousse-gabes-2026"
#define PASS_LEN (sizeof(FIX_PASS) - 1)
#define OPS TZ_PWHASH_OPS_MIN
#define MEM TZ_PWHASH_MEM_MIN
#define MIB ((size_t)1 << 20)

/* Offsets in the header (docs/bundle-format.md). */
#define OFF_VERSION 8
#define OFF_FLAGS 10
#define OFF_SALT 12
#define OFF_OPS 28
#define OFF_MEM 36
#define OFF_SSH 44
#define OFF_PLAIN 68
#define OFF_CIPHER 76
#define HDR_LEN 84

static tz_buf base = TZ_BUF_INIT;   /* "enrolment payload", cheap parameters */
static const char base_payload[] = "code=B01;hq=https://hq.example/;secret=0123456789abcdef";

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void set_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int fast(tz_buf *out, const char *pass, const void *payload, size_t n)
{
	return tz_enrol_write_params(out, pass, strlen(pass), payload, n, OPS, MEM);
}

static int read_fix(tz_buf *payload, const tz_buf *b)
{
	return tz_enrol_read(payload, b->data, b->len, FIX_PASS, PASS_LEN);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- forging from scratch with libsodium (one chunk, cheap parameters) ---- */

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
	uint8_t key[32], salt[16], ssh[24];
	crypto_secretstream_xchacha20poly1305_state st;
	tz_buf hdr = TZ_BUF_INIT;

	randombytes_buf(salt, sizeof(salt));
	if (crypto_pwhash(key, sizeof(key), FIX_PASS, PASS_LEN, salt, OPS, MEM,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		abort();
	crypto_secretstream_xchacha20poly1305_init_push(&st, ssh, key);
	tz_buf_put(&hdr, "TZENROL1\001\000\000\000", 12);
	tz_buf_put(&hdr, salt, sizeof(salt));
	tz_buf_u64le(&hdr, OPS);
	tz_buf_u64le(&hdr, MEM);
	tz_buf_put(&hdr, ssh, sizeof(ssh));
	tz_buf_u64le(&hdr, plain);
	tz_buf_u64le(&hdr, 21 + flen + (mode == F_AFTER_FINAL ? 22 : 0));
	tz_buf_clear(out);
	tz_buf_put(out, hdr.data, hdr.len);
	push(out, &st, frame, flen, &hdr, mode == F_NO_FINAL ? 0 : 3);
	if (mode == F_AFTER_FINAL)
		push(out, &st, "x", 1, NULL, 0);
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
	int kdf;   /* 1: refused after Argon2 ran; 0: before anything is allocated */
} bad_case;

static void copy_base(tz_buf *out)
{
	tz_buf_clear(out);
	tz_buf_put(out, base.data, base.len);
}

static void b_empty(tz_buf *o) { tz_buf_clear(o); }
static void b_magic(tz_buf *o) { copy_base(o); o->data[3] ^= 0x01; }
static void b_bundle(tz_buf *o) { copy_base(o); memcpy(o->data, "TZBUNDL1", 8); }
static void b_version(tz_buf *o) { copy_base(o); o->data[OFF_VERSION] = 2; }
static void b_flags(tz_buf *o) { copy_base(o); o->data[OFF_FLAGS] = 1; }
static void b_trunc_hdr(tz_buf *o) { copy_base(o); o->len = OFF_SSH + 10; }
static void b_trunc_body(tz_buf *o) { copy_base(o); o->len -= 10; }
static void b_trailing(tz_buf *o) { copy_base(o); tz_buf_putc(o, 0); }
static void b_ops_zero(tz_buf *o) { copy_base(o); set_u64(o->data + OFF_OPS, 0); }
static void b_ops_limit(tz_buf *o) { copy_base(o); set_u64(o->data + OFF_OPS, 17); }
static void b_mem_small(tz_buf *o) { copy_base(o); set_u64(o->data + OFF_MEM, 8191); }
static void b_mem_limit(tz_buf *o) { copy_base(o); set_u64(o->data + OFF_MEM, ((uint64_t)1 << 30) + 1024); }
static void b_plain_size(tz_buf *o) { copy_base(o); set_u64(o->data + OFF_PLAIN, TZ_ENROL_MAX_PLAIN + 1); }
static void b_cipher_size(tz_buf *o) { copy_base(o); set_u64(o->data + OFF_CIPHER, UINT64_MAX - 5); }
static void b_cipher_short(tz_buf *o) { copy_base(o); set_u64(o->data + OFF_CIPHER, 10); o->len = HDR_LEN + 10; }
static void b_salt(tz_buf *o) { copy_base(o); o->data[OFF_SALT + 5] ^= 0x20; }
static void b_plain_flip(tz_buf *o) { copy_base(o); o->data[OFF_PLAIN] ^= 0x01; }
static void b_cipher(tz_buf *o) { copy_base(o); o->data[HDR_LEN + 10] ^= 0x01; }
static void b_len(tz_buf *o) { copy_base(o); o->data[HDR_LEN] = 2; }
static void b_wrong_pass(tz_buf *o) { fast(o, "tazamun fixture passphrase: sousse-gabes-2025", "x", 1); }
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

#define WRONG "body: wrong passphrase, or the enrolment file is damaged"

static const bad_case cases[] = {
	{ "empty", b_empty, TZ_ECORRUPT, "header: truncated in magic", 0 },
	{ "magic", b_magic, TZ_ECORRUPT, "header: bad magic, not a tazamun enrolment file", 0 },
	{ "bundle", b_bundle, TZ_ECORRUPT, "header: bad magic, not a tazamun enrolment file", 0 },
	{ "version-2", b_version, TZ_EPROTO, "header: enrolment file version 2 is not supported (this build reads 1)", 0 },
	{ "flags", b_flags, TZ_EPROTO, "header: reserved flag bits 0x0001 are set", 0 },
	{ "truncated-header", b_trunc_hdr, TZ_ECORRUPT, "header: truncated in ss_header", 0 },
	{ "truncated-body", b_trunc_body, TZ_ECORRUPT, "body: truncated: cipher_size is", 0 },
	{ "trailing", b_trailing, TZ_ECORRUPT, "enrolment file: 1 trailing bytes after the ciphertext", 0 },
	{ "opslimit-zero", b_ops_zero, TZ_ELIMIT, "header: opslimit 0 is outside", 0 },
	{ "opslimit-limit", b_ops_limit, TZ_ELIMIT, "header: opslimit 17 is outside", 0 },
	{ "memlimit-small", b_mem_small, TZ_ELIMIT, "header: memlimit 8191 is outside", 0 },
	{ "memlimit-limit", b_mem_limit, TZ_ELIMIT, "header: memlimit 1073742848 is outside", 0 },
	{ "plain-size-limit", b_plain_size, TZ_ELIMIT, "header: plain_size 1073741825 exceeds", 0 },
	{ "cipher-size-huge", b_cipher_size, TZ_ELIMIT, "header: cipher_size 18446744073709551610 exceeds", 0 },
	{ "cipher-size-short", b_cipher_short, TZ_ECORRUPT, "body: cipher_size 10 is shorter than one encrypted chunk", 0 },
	{ "wrong-passphrase", b_wrong_pass, TZ_EVERIFY, WRONG ": encrypted chunk 0 does not authenticate", 1 },
	{ "salt-flip", b_salt, TZ_EVERIFY, WRONG ": encrypted chunk 0 does not authenticate", 1 },
	{ "plain-size-flip", b_plain_flip, TZ_EVERIFY, WRONG ": encrypted chunk 0 does not authenticate", 1 },
	{ "cipher-flip", b_cipher, TZ_EVERIFY, WRONG ": encrypted chunk 0 does not authenticate", 1 },
	{ "chunk-length", b_len, TZ_EVERIFY, WRONG ": encrypted chunk 0 declares", 1 },
	{ "missing-final", b_no_final, TZ_EVERIFY, WRONG ": encrypted stream ends without its final chunk", 1 },
	{ "data-after-final", b_after_final, TZ_EVERIFY, WRONG ": 22 bytes after the final encrypted chunk", 1 },
	{ "not-zstd", b_not_zstd, TZ_ECORRUPT, "body: zstd cannot decompress: Unknown frame descriptor", 1 },
	{ "bomb", b_bomb, TZ_ELIMIT, "body: zstd frame decompresses to more than 1000 bytes", 1 },
	{ "short-output", b_short, TZ_ECORRUPT, "body: payload of 12 bytes, the header says 13", 1 },
	{ "two-frames", b_two_frames, TZ_ECORRUPT, "body: zstd: 25 trailing bytes after the frame", 1 },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void test_refusals(void)
{
	tz_buf b = TZ_BUF_INIT, payload = TZ_BUF_INIT;

	for (size_t i = 0; i < NCASES; i++) {
		uint64_t calls;
		int rc;

		cases[i].build(&b);
		tz_buf_put(&payload, "stale", 5);   /* must be emptied */
		/* counts allocations (Argon2's included) without failing any */
		tz_faultsim_arm(TZ_FAULT_ALLOC, UINT64_MAX);
		rc = read_fix(&payload, &b);
		calls = tz_faultsim_calls(TZ_FAULT_ALLOC);
		tz_faultsim_arm(TZ_FAULT_ALLOC, 0);
		CHECK(rc == cases[i].code && strstr(tz_error_last(), cases[i].msg) != NULL,
		      "refused: %s: want %s '%s', got %s '%s'", cases[i].name,
		      tz_error_name(cases[i].code), cases[i].msg,
		      rc ? tz_error_name(rc) : "OK", rc ? tz_error_last() : "");
		CHECK(payload.len == 0 && (cases[i].kdf ? calls > 0 : calls == 0),
		      "refused: %s: payload empty, %s", cases[i].name,
		      cases[i].kdf ? "after Argon2" : "before Argon2 or any allocation");
	}
	tz_buf_release(&payload);
	tz_buf_release(&b);
}

/* A forged file that follows the format must read: the forge is right,
 * so each forged refusal is refused for its one defect. */
static void test_forge_control(void)
{
	tz_buf b = TZ_BUF_INIT, payload = TZ_BUF_INIT;

	forge_zstd(&b, "hello, world", 12, 12, 0);
	CHECK(read_fix(&payload, &b) == TZ_OK && payload.len == 12 &&
	      memcmp(payload.data, "hello, world", 12) == 0, "a forged, well-formed file reads");
	tz_buf_release(&payload);
	tz_buf_release(&b);
}

/* ---- round trips ---- */

static int round_trip(const void *payload, size_t n, const char *what)
{
	tz_buf b = TZ_BUF_INIT, back = TZ_BUF_INIT;
	int ok;

	ok = fast(&b, FIX_PASS, payload, n) == TZ_OK && read_fix(&back, &b) == TZ_OK;
	ok = ok && back.len == n && (n == 0 || memcmp(back.data, payload, n) == 0);
	ok = ok && b.len > HDR_LEN && memcmp(b.data, "TZENROL1\001\000\000\000", 12) == 0 &&
	     get_u64(b.data + OFF_OPS) == OPS && get_u64(b.data + OFF_MEM) == MEM &&
	     get_u64(b.data + OFF_PLAIN) == n && get_u64(b.data + OFF_CIPHER) == b.len - HDR_LEN;
	CHECK(ok, "round trip: %s (%zu bytes in a file of %zu)%s%s", what, n, b.len,
	      ok ? "" : ": ", ok ? "" : tz_error_last());
	tz_buf_release(&b);
	tz_buf_release(&back);
	return ok;
}

static void test_round_trips(void)
{
	size_t big = MIB + MIB / 4;
	uint8_t *noise = malloc(big);
	tz_buf b = TZ_BUF_INIT, back = TZ_BUF_INIT;
	uint64_t cipher;

	tz_random_bytes(noise, big);
	round_trip("", 0, "empty payload");
	round_trip("x", 1, "1 byte");
	round_trip(base_payload, sizeof(base_payload) - 1, "a small payload");
	round_trip(noise, big, "1.25 MiB of noise");
	/* noise does not compress: 20 full chunks and a short one */
	if (fast(&b, FIX_PASS, noise, big) != TZ_OK)
		abort();
	cipher = get_u64(b.data + OFF_CIPHER);
	CHECK(cipher > 20 * ((uint64_t)65536 + 21) && cipher < 21 * ((uint64_t)65536 + 21),
	      "1.25 MiB of noise spans 21 chunks (cipher_size %llu)", (unsigned long long)cipher);
	b.data[b.len - 1] ^= 0x01;
	CHECK(read_fix(&back, &b) == TZ_EVERIFY && back.len == 0 &&
	      strstr(tz_error_last(), "encrypted chunk 20 does not authenticate") != NULL,
	      "a flip in the last chunk is refused: %s", tz_error_last());
	b.data[b.len - 1] ^= 0x01;
	b.data[HDR_LEN + 4 + 10 * (65536 + 21) + 100] ^= 0x01;
	CHECK(read_fix(&back, &b) == TZ_EVERIFY && back.len == 0 &&
	      strstr(tz_error_last(), "encrypted chunk 10 does not authenticate") != NULL,
	      "a flip in a middle chunk is refused: %s", tz_error_last());
	tz_buf_release(&b);
	tz_buf_release(&back);
	free(noise);
}

/* The real parameters, once: what `syncctl init-branch --enroll` costs. */
static void test_defaults(void)
{
	tz_buf b = TZ_BUF_INIT, back = TZ_BUF_INIT;
	double t0, t1, t2;
	int rc;

	t0 = now();
	rc = tz_enrol_write(&b, FIX_PASS, PASS_LEN, base_payload, sizeof(base_payload) - 1);
	t1 = now();
	CHECK(rc == TZ_OK && get_u64(b.data + OFF_OPS) == TZ_PWHASH_OPS_DEFAULT &&
	      get_u64(b.data + OFF_MEM) == TZ_PWHASH_MEM_DEFAULT,
	      "tz_enrol_write uses the default parameters (3 passes, 256 MiB)");
	rc = read_fix(&back, &b);
	t2 = now();
	CHECK(rc == TZ_OK && back.len == sizeof(base_payload) - 1 &&
	      memcmp(back.data, base_payload, back.len) == 0,
	      "a file with the default parameters reads back");
	printf("# default parameters: tz_enrol_write %.3f s, tz_enrol_read %.3f s\n",
	       t1 - t0, t2 - t1);
	CHECK(tz_enrol_read(&back, b.data, b.len, "wrong", 5) == TZ_EVERIFY && back.len == 0 &&
	      strstr(tz_error_last(), WRONG) != NULL, "a wrong passphrase is refused: %s",
	      tz_error_last());
	tz_buf_release(&b);
	tz_buf_release(&back);
}

static int contains(const tz_buf *b, const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i + n <= b->len; i++)
		if (memcmp(b->data + i, s, n) == 0)
			return 1;
	return 0;
}

static void test_passphrases(void)
{
	static const char secret[] = "national_id=BE123456;national_id=BE123456;";
	tz_buf b = TZ_BUF_INIT, c = TZ_BUF_INIT, back = TZ_BUF_INIT;

	CHECK(fast(&b, FIX_PASS, secret, sizeof(secret) - 1) == TZ_OK &&
	      fast(&c, FIX_PASS, secret, sizeof(secret) - 1) == TZ_OK &&
	      memcmp(b.data + OFF_SALT, c.data + OFF_SALT, 16) != 0 &&
	      memcmp(b.data + OFF_SSH, c.data + OFF_SSH, 24) != 0,
	      "two files of the same payload have their own salt and stream header");
	CHECK(!contains(&b, "BE123456") && !contains(&b, "national_id") && !contains(&b, "sousse"),
	      "the file contains neither the payload nor the passphrase");
	tz_buf_put(&back, "stale", 5);
	CHECK(tz_enrol_read(&back, b.data, b.len, FIX_PASS, PASS_LEN - 1) == TZ_EVERIFY &&
	      back.len == 0, "a prefix of the passphrase is refused");
	CHECK(tz_enrol_read(&back, b.data, b.len, FIX_PASS "6", PASS_LEN + 1) == TZ_EVERIFY &&
	      back.len == 0, "a longer passphrase is refused");
	CHECK(tz_enrol_read(&back, b.data, b.len, "", 0) == TZ_EINVAL &&
	      tz_enrol_read(&back, b.data, b.len, NULL, 0) == TZ_EINVAL && back.len == 0 &&
	      strstr(tz_error_last(), "passphrase is empty") != NULL,
	      "read refuses an empty passphrase");
	tz_buf_put(&c, "x", 1);
	CHECK(tz_enrol_write(&c, "", 0, "x", 1) == TZ_EINVAL && c.len == 0 &&
	      tz_enrol_write(&c, NULL, 0, "x", 1) == TZ_EINVAL,
	      "write refuses an empty passphrase: %s", tz_error_last());
	CHECK(tz_enrol_write_params(&c, "p", 1, "x", 1, 0, MEM) == TZ_ELIMIT && c.len == 0 &&
	      tz_enrol_write_params(&c, "p", 1, "x", 1, 1, TZ_PWHASH_MEM_MAX + 1) == TZ_ELIMIT,
	      "write refuses Argon2 parameters out of bounds: %s", tz_error_last());
	CHECK(tz_enrol_write(&c, "p", 1, NULL, 1) == TZ_EINVAL &&
	      tz_enrol_read(&back, NULL, 1, "p", 1) == TZ_EINVAL, "NULL bytes are refused");
	CHECK(tz_enrol_write_params(&c, "a\0b", 3, "x", 1, OPS, MEM) == TZ_OK &&
	      tz_enrol_read(&back, c.data, c.len, "a\0b", 3) == TZ_OK &&
	      tz_enrol_read(&back, c.data, c.len, "a\0c", 3) == TZ_EVERIFY,
	      "the passphrase is bytes: what follows a NUL counts");
	tz_buf_release(&b);
	tz_buf_release(&c);
	tz_buf_release(&back);
}

/* Every prefix of a small file is refused, before Argon2. */
static void test_truncations(void)
{
	tz_buf back = TZ_BUF_INIT;
	size_t refused = 0, clean = 0;

	if (tz_buf_reserve(&back, 64) != TZ_OK)   /* "stale" below allocates nothing */
		abort();
	tz_faultsim_arm(TZ_FAULT_ALLOC, UINT64_MAX);
	for (size_t len = 0; len < base.len; len++) {
		tz_buf_put(&back, "stale", 5);
		refused += tz_enrol_read(&back, base.data, len, FIX_PASS, PASS_LEN) == TZ_ECORRUPT;
		clean += back.len == 0;
	}
	CHECK(refused == base.len && clean == base.len && tz_faultsim_calls(TZ_FAULT_ALLOC) == 0,
	      "every truncation (0..%zu bytes) refused with ECORRUPT before Argon2", base.len - 1);
	tz_faultsim_arm(TZ_FAULT_ALLOC, 0);
	tz_buf_release(&back);
}

/* The code a flipped header bit must give (reader capped at 16 passes and
 * 1 MiB, so no flip costs more than a millisecond of Argon2). */
#define FLIP_MAX_MEM ((uint64_t)1 << 20)

static int flip_want(const tz_buf *b, size_t byte)
{
	uint64_t v;

	if (byte < OFF_VERSION)
		return TZ_ECORRUPT;
	if (byte < OFF_SALT)
		return TZ_EPROTO;
	if (byte >= OFF_OPS && byte < OFF_MEM) {
		v = get_u64(b->data + OFF_OPS);
		return v >= TZ_PWHASH_OPS_MIN && v <= TZ_PWHASH_OPS_MAX ? TZ_EVERIFY : TZ_ELIMIT;
	}
	if (byte >= OFF_MEM && byte < OFF_SSH) {
		v = get_u64(b->data + OFF_MEM);
		return v >= TZ_PWHASH_MEM_MIN && v <= FLIP_MAX_MEM ? TZ_EVERIFY : TZ_ELIMIT;
	}
	if (byte >= OFF_PLAIN && byte < OFF_CIPHER)
		return get_u64(b->data + OFF_PLAIN) > TZ_ENROL_MAX_PLAIN ? TZ_ELIMIT : TZ_EVERIFY;
	if (byte >= OFF_CIPHER)   /* any other value disagrees with the length */
		return get_u64(b->data + OFF_CIPHER) > TZ_ENROL_MAX_BYTES ? TZ_ELIMIT : TZ_ECORRUPT;
	return TZ_EVERIFY;        /* salt, stream header */
}

static void test_header_flips(void)
{
	tz_buf b = TZ_BUF_INIT, back = TZ_BUF_INIT;
	size_t flips = 0, right = 0, n[4] = { 0, 0, 0, 0 };
	char first_bad[256] = "";

	copy_base(&b);
	for (size_t i = 0; i < 8 * HDR_LEN; i++, flips++) {
		int want, rc;

		b.data[i / 8] ^= (uint8_t)(1 << (i % 8));
		want = flip_want(&b, i / 8);
		tz_buf_put(&back, "stale", 5);
		rc = tz_enrol_read_capped(&back, b.data, b.len, FIX_PASS, PASS_LEN,
					  TZ_PWHASH_OPS_MAX, FLIP_MAX_MEM);
		if (rc == want && back.len == 0) {
			right++;
			n[want == TZ_ECORRUPT ? 0 : want == TZ_EPROTO ? 1 : want == TZ_ELIMIT ? 2 : 3]++;
		} else if (first_bad[0] == '\0') {
			snprintf(first_bad, sizeof(first_bad), ": bit %zu wants %s, got %s '%s'", i,
				 tz_error_name(want), tz_error_name(rc), tz_error_last());
		}
		b.data[i / 8] ^= (uint8_t)(1 << (i % 8));
	}
	CHECK(right == flips, "every header bit flip refused with its code (%zu of %zu: "
	      "%zu ECORRUPT, %zu EPROTO, %zu ELIMIT, %zu EVERIFY)%s", right, flips,
	      n[0], n[1], n[2], n[3], first_bad);
	CHECK(read_fix(&back, &b) == TZ_OK, "the file reads again once unflipped");
	tz_buf_release(&b);
	tz_buf_release(&back);
}

static void test_limits(void)
{
	static const uint8_t small[HDR_LEN] = "TZENROL1";
	tz_buf b = TZ_BUF_INIT, back = TZ_BUF_INIT;

	/* the size is checked before a byte is read (ASan would see one) */
	CHECK(tz_enrol_read(&back, small, (size_t)TZ_ENROL_MAX_BYTES + 1, "p", 1) == TZ_ELIMIT &&
	      strstr(tz_error_last(), "enrolment file of 1073741825 bytes exceeds the limit") != NULL,
	      "a file over 1 GiB is refused: %s", tz_error_last());
	CHECK(tz_enrol_write_params(&b, FIX_PASS, PASS_LEN, "x", 1, TZ_PWHASH_OPS_MAX,
				    TZ_PWHASH_MEM_MIN) == TZ_OK && read_fix(&back, &b) == TZ_OK,
	      "opslimit %d reads", TZ_PWHASH_OPS_MAX);
	CHECK(tz_enrol_write_params(&b, FIX_PASS, PASS_LEN, "x", 1, 1, 2 * MIB) == TZ_OK &&
	      read_fix(&back, &b) == TZ_OK &&
	      tz_enrol_read_capped(&back, b.data, b.len, FIX_PASS, PASS_LEN, 16, MIB) ==
	      TZ_ELIMIT && back.len == 0 &&
	      strstr(tz_error_last(), "header: memlimit 2097152 is outside 8192..1048576") != NULL,
	      "memlimit 2 MiB reads, and a reader capped at 1 MiB refuses it");
	CHECK(tz_enrol_read_capped(&back, b.data, b.len, FIX_PASS, PASS_LEN, UINT64_MAX,
				   UINT64_MAX) == TZ_OK,
	      "caps over the hard limits are lowered to them, not raised");
	set_u64(b.data + OFF_OPS, 17);
	CHECK(tz_enrol_read_capped(&back, b.data, b.len, FIX_PASS, PASS_LEN, UINT64_MAX,
				   UINT64_MAX) == TZ_ELIMIT, "so opslimit 17 stays refused");
	tz_buf_release(&b);
	tz_buf_release(&back);
}

/* Allocation faults, one call at a time: a clean ENOMEM each, then success. */
static void test_faults(void)
{
	tz_buf b = TZ_BUF_INIT, back = TZ_BUF_INIT;
	int k, rc = TZ_ENOMEM, faults = 0, clean = 1;

	for (k = 1; k < 200; k++) {
		tz_buf_put(&back, "stale", 5);
		tz_faultsim_arm(TZ_FAULT_ALLOC, (uint64_t)k);
		rc = read_fix(&back, &base);
		tz_faultsim_arm(TZ_FAULT_ALLOC, 0);
		if (rc == TZ_OK)
			break;
		faults++;
		clean &= rc == TZ_ENOMEM && back.len == 0;
	}
	CHECK(rc == TZ_OK && faults > 0 && clean && back.len == sizeof(base_payload) - 1,
	      "read: alloc faults 1..%d each failed cleanly with ENOMEM, then it read", faults);
	faults = 0;
	for (k = 1; k < 200; k++) {
		tz_faultsim_arm(TZ_FAULT_ALLOC, (uint64_t)k);
		rc = fast(&b, FIX_PASS, base_payload, sizeof(base_payload) - 1);
		tz_faultsim_arm(TZ_FAULT_ALLOC, 0);
		if (rc == TZ_OK)
			break;
		faults++;
		clean &= rc == TZ_ENOMEM && b.len == 0;
	}
	CHECK(rc == TZ_OK && faults > 0 && clean && read_fix(&back, &b) == TZ_OK,
	      "write: alloc faults 1..%d each failed cleanly with ENOMEM, then it wrote", faults);
	tz_buf_release(&b);
	tz_buf_release(&back);
}

/* ---- the corpus for tests/fuzz/fuzz_enrol.c ---- */

static int write_corpus(const char *dir)
{
	char sub[1024], err[512];
	tz_buf b = TZ_BUF_INIT;
	int bad = 0;

	snprintf(sub, sizeof(sub), "%s/reject/enrol", dir);
	for (size_t i = 0; i < NCASES; i++) {
		cases[i].build(&b);
		snprintf(err, sizeof(err), "%s\n%s\n", tz_error_name(cases[i].code), cases[i].msg);
		bad |= tz_test_write_file(sub, cases[i].name, "", b.data, b.len);
		bad |= tz_test_write_file(sub, cases[i].name, ".err", err, strlen(err));
	}
	snprintf(sub, sizeof(sub), "%s/corpus/enrol", dir);
	bad |= tz_test_write_file(sub, "base", "", base.data, base.len);
	bad |= fast(&b, FIX_PASS, "", 0) != TZ_OK;
	bad |= tz_test_write_file(sub, "empty", "", b.data, b.len);
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
	rc = fast(&base, FIX_PASS, base_payload, sizeof(base_payload) - 1);
	if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
		return rc != TZ_OK ? 1 : write_corpus(argv[2]);
	CHECK(rc == TZ_OK && base.len > HDR_LEN + 21, "the base file (%zu bytes)", base.len);
	test_round_trips();
	test_defaults();
	test_passphrases();
	test_forge_control();
	test_refusals();
	test_truncations();
	test_header_flips();
	test_limits();
	test_faults();
	tz_buf_release(&base);
	return tz_test_done();
}

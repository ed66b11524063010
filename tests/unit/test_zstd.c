/*
 * test_zstd.c - unit tests for store/zstd.c: round trips with and without
 * a dictionary, the output cap (a bomb is refused without allocating what
 * it declares), the window cap, one frame only, truncated and foreign
 * frames, zstd's error names in messages, and an allocation fault sweep.
 *
 * Some frames are made with libzstd directly (a window over the cap, two
 * frames), as test_keys.c makes hostile signatures with libsodium.
 */
#include "store/tz_zstd.h"
#include "tests/unit/tz_test.h"

#include <stdlib.h>
#include <string.h>

#include <zstd.h>

/* sizes of the test inputs: a megabyte is many blocks and chunks */
#define MIB ((size_t)1 << 20)

static int failed_with(int rc, int code, const char *msg)
{
	return rc == code && strstr(tz_error_last(), msg) != NULL;
}

/* Deterministic bytes that zstd cannot compress (xorshift). */
static void noise(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		p[i] = (uint8_t)seed;
	}
}

static int round_trip(const void *src, size_t n, int level, const void *dict, size_t dlen)
{
	tz_buf z = TZ_BUF_INIT, back = TZ_BUF_INIT;
	int ok;

	ok = tz_zstd_compress(&z, src, n, level, dict, dlen) == TZ_OK &&
	     tz_zstd_decompress(&back, z.data, z.len, n, dict, dlen) == TZ_OK &&
	     back.len == n && (n == 0 || memcmp(back.data, src, n) == 0);
	tz_buf_release(&z);
	tz_buf_release(&back);
	return ok;
}

static void test_round_trips(void)
{
	static const char text[] = "name=Fatima;region=Tunis;id=BE123456;";
	static const char dict[] = "name=;region=Tunis;region=Sfax;id=BE;";
	uint8_t *big = malloc(MIB), *rep = malloc(MIB);

	for (size_t i = 0; i < MIB; i++)
		rep[i] = (uint8_t)text[i % (sizeof(text) - 1)];
	noise(big, MIB, 42);
	CHECK(round_trip("", 0, 0, NULL, 0), "round trip: empty");
	CHECK(round_trip("x", 1, 3, NULL, 0), "round trip: 1 byte");
	CHECK(round_trip(big, MIB, 1, NULL, 0), "round trip: 1 MiB of noise");
	CHECK(round_trip(rep, MIB, 19, NULL, 0), "round trip: 1 MiB of text at level 19");
	CHECK(round_trip(text, sizeof(text) - 1, 3, dict, sizeof(dict) - 1),
	      "round trip: with a dictionary");
	free(big);
	free(rep);
}

static void test_levels(void)
{
	tz_buf z = TZ_BUF_INIT;

	CHECK(failed_with(tz_zstd_compress(&z, "x", 1, 23, NULL, 0), TZ_EINVAL, "level 23"),
	      "level 23 is refused");
	tz_buf_release(&z);
	CHECK(failed_with(tz_zstd_compress(&z, "x", 1, -1, NULL, 0), TZ_EINVAL, "level -1"),
	      "a negative level is refused");
	tz_buf_release(&z);
}

static void test_caps(void)
{
	tz_buf z = TZ_BUF_INIT, out = TZ_BUF_INIT;
	size_t n = 64 * MIB;
	uint8_t *zeros = calloc(1, n);
	int rc;

	rc = tz_zstd_compress(&z, zeros, n, 3, NULL, 0);
	CHECK(rc == TZ_OK && z.len < 64 * 1024, "64 MiB of zeros compress to %zu bytes", z.len);
	rc = tz_zstd_decompress(&out, z.data, z.len, MIB, NULL, 0);
	CHECK(failed_with(rc, TZ_ELIMIT, "more than 1048576 bytes"), "a bomb is refused: %s",
	      tz_error_last());
	CHECK(out.len == 0 && out.cap <= 4 * MIB,
	      "the bomb was refused with %zu bytes allocated, not 64 MiB", out.cap);
	tz_buf_release(&out);
	CHECK(tz_zstd_decompress(&out, z.data, z.len, n, NULL, 0) == TZ_OK && out.len == n,
	      "the same frame decodes with max_out = its size");
	tz_buf_clear(&out);
	CHECK(failed_with(tz_zstd_decompress(&out, z.data, z.len, n - 1, NULL, 0),
			  TZ_ELIMIT, "more than"), "one byte over max_out is refused");
	tz_buf_release(&out);
	tz_buf_release(&z);
	free(zeros);
}

/* A frame that declares a 256 MiB window: streamed without a known size,
 * with windowLog 28 forced. */
static void test_window(void)
{
	ZSTD_CCtx *c = ZSTD_createCCtx();
	uint8_t src[4096], frame[8192];
	ZSTD_inBuffer in = { src, sizeof(src), 0 };
	ZSTD_outBuffer o = { frame, sizeof(frame), 0 };
	ZSTD_inBuffer none = { NULL, 0, 0 };
	tz_buf out = TZ_BUF_INIT;

	noise(src, sizeof(src), 7);
	ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, TZ_ZSTD_WINDOW_LOG_MAX + 1);
	ZSTD_compressStream2(c, &o, &in, ZSTD_e_continue);
	while (ZSTD_compressStream2(c, &o, &none, ZSTD_e_end) != 0)
		;
	ZSTD_freeCCtx(c);
	CHECK(failed_with(tz_zstd_decompress(&out, frame, o.pos, 1 << 20, NULL, 0),
			  TZ_ELIMIT, "Frame requires too much memory"),
	      "a window over 2^27 is refused: %s", tz_error_last());
	tz_buf_release(&out);
}

static void test_frames(void)
{
	tz_buf z = TZ_BUF_INIT, two = TZ_BUF_INIT, out = TZ_BUF_INIT;

	CHECK(tz_zstd_compress(&z, "hello hello hello", 17, 3, NULL, 0) == TZ_OK, "a frame");
	tz_buf_put(&two, z.data, z.len);
	tz_buf_put(&two, z.data, z.len);
	CHECK(failed_with(tz_zstd_decompress(&out, two.data, two.len, 100, NULL, 0),
			  TZ_ECORRUPT, "trailing bytes after the frame") && out.len == 0,
	      "two frames are refused");
	tz_buf_put(&z, "x", 1);
	CHECK(failed_with(tz_zstd_decompress(&out, z.data, z.len, 100, NULL, 0),
			  TZ_ECORRUPT, "1 trailing bytes"), "a byte after the frame is refused");
	CHECK(failed_with(tz_zstd_decompress(&out, z.data, z.len - 3, 100, NULL, 0),
			  TZ_ECORRUPT, "truncated") && out.len == 0,
	      "a truncated frame is refused: %s", tz_error_last());
	CHECK(failed_with(tz_zstd_decompress(&out, "not zstd", 8, 100, NULL, 0),
			  TZ_ECORRUPT, "Unknown frame descriptor"),
	      "foreign bytes are refused with zstd's reason: %s", tz_error_last());
	CHECK(failed_with(tz_zstd_decompress(&out, "", 0, 100, NULL, 0),
			  TZ_ECORRUPT, "no frame"), "no bytes at all are refused");
	tz_buf_release(&z);
	tz_buf_release(&two);
	tz_buf_release(&out);
}

static void test_wrong_dict(void)
{
	static const char text[] = "region=Tunis;region=Sfax;region=Sousse;";
	static const char a[] = "region=Tunis;region=Sfax;", b[] = "something else entirely";
	tz_buf z = TZ_BUF_INIT, out = TZ_BUF_INIT;

	CHECK(tz_zstd_compress(&z, text, sizeof(text) - 1, 3, a, sizeof(a) - 1) == TZ_OK,
	      "a frame with a dictionary");
	CHECK(tz_zstd_decompress(&out, z.data, z.len, 100, b, sizeof(b) - 1) == TZ_ECORRUPT &&
	      out.len == 0, "the wrong dictionary is refused: %s", tz_error_last());
	CHECK(tz_zstd_decompress(&out, z.data, z.len, 100, NULL, 0) == TZ_ECORRUPT,
	      "no dictionary is refused: %s", tz_error_last());
	tz_buf_release(&z);
	tz_buf_release(&out);
}

/* Fail the k-th allocation for k = 1, 2, ... until none fires: each run
 * ends OK or with TZ_ENOMEM and an output back as it was. */
static void test_alloc_faults(void)
{
	static const char text[] = "a line of text, a line of text, a line of text";
	tz_buf z = TZ_BUF_INIT, out = TZ_BUF_INIT;
	int clean = 1, k;

	if (tz_zstd_compress(&z, text, sizeof(text) - 1, 3, NULL, 0) != TZ_OK)
		clean = 0;
	for (k = 1; clean && k < 100; k++) {
		int rc, fired;

		tz_buf_init(&out, 0);
		tz_faultsim_arm(TZ_FAULT_ALLOC, (uint64_t)k);
		rc = tz_zstd_decompress(&out, z.data, z.len, 100, NULL, 0);
		/* tz_faultsim_fired() is sticky for the process: count instead */
		fired = tz_faultsim_calls(TZ_FAULT_ALLOC) >= (uint64_t)k;
		tz_faultsim_arm(TZ_FAULT_ALLOC, 0);
		if (!fired) {
			clean = rc == TZ_OK && out.len == sizeof(text) - 1;
			tz_buf_release(&out);
			break;
		}
		clean = rc == TZ_ENOMEM && out.len == 0;
		tz_buf_release(&out);
	}
	CHECK(clean && k < 100, "allocation faults end in TZ_ENOMEM (%d sites)", k - 1);
	tz_buf_release(&z);
}

int main(void)
{
	test_round_trips();
	test_levels();
	test_caps();
	test_window();
	test_frames();
	test_wrong_dict();
	test_alloc_faults();
	return tz_test_done();
}

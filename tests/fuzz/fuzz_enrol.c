/*
 * fuzz_enrol.c - fuzz target for the enrolment file reader (syncd/enrol.c,
 * docs/bundle-format.md "The enrolment file").
 *
 * Every input is opened with the fixture passphrase FIX_PASS, the same as
 * tests/unit/test_enrol.c, which writes this target's corpus and reject
 * files (`test_enrol --write-corpus tests/fuzz`) with the cheapest Argon2
 * parameters.  The reader is tz_enrol_read_capped with at most 4 passes
 * over 256 KiB: a file asking for more is refused before Argon2 runs, so
 * no input costs more than a millisecond of Argon2 (the full reader would
 * let a mutated header ask for 16 passes over 1 GiB, seconds per input).
 * Everything else is the code path of tz_enrol_read.
 *
 * Invariants: no crash; on failure the payload is empty; on success the
 * payload has the size the header declares, the file is exactly header
 * plus cipher_size, another passphrase does not open it, and writing the
 * payload again gives a file that reads back to the same bytes.  Linked
 * with libFuzzer by tests/fuzz/run-libfuzzer.sh, or with
 * tests/fuzz/driver.c for `make test`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syncd/tz_enrol.h"
#include "store/tz_keys.h"

/* The contract between a fuzz target and tests/fuzz/driver.c. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int tz_fuzz_reject(const uint8_t *data, size_t size);

/* The fixture passphrase: tests/unit/test_enrol.c must use the same. */
#define FIX_PASS "tazamun fixture passphrase: sousse-gabes-2026"
#define PASS_LEN (sizeof(FIX_PASS) - 1)
/* Argon2 bounds for fuzzing: about a millisecond at most per input. */
#define FUZZ_MAX_OPS 4
#define FUZZ_MAX_MEM ((uint64_t)256 << 10)
/* Offsets of plain_size and cipher_size in the header. */
#define OFF_PLAIN 68
#define OFF_CIPHER 76

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_enrol: %s\n", what);
	abort();
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int open_enrol(tz_buf *payload, const uint8_t *data, size_t size, const char *pass,
		      size_t pass_len)
{
	if (tz_crypto_init() != TZ_OK)
		fail("cannot start libsodium");
	return tz_enrol_read_capped(payload, data, size, pass, pass_len, FUZZ_MAX_OPS,
				    FUZZ_MAX_MEM);
}

static void check_opened(const tz_buf *payload, const uint8_t *data, size_t size)
{
	tz_buf again = TZ_BUF_INIT, back = TZ_BUF_INIT;

	if (size < TZ_ENROL_HEADER_BYTES ||
	    get_u64(data + OFF_CIPHER) != size - TZ_ENROL_HEADER_BYTES)
		fail("a file that opens is not exactly its header and cipher_size");
	if (payload->len != get_u64(data + OFF_PLAIN))
		fail("a file opens to a payload of another size than declared");
	if (open_enrol(&back, data, size, FIX_PASS "x", PASS_LEN + 1) != TZ_EVERIFY ||
	    back.len != 0)
		fail("a file opens with another passphrase");
	if (tz_enrol_write_params(&again, FIX_PASS, PASS_LEN, payload->data, payload->len,
				  TZ_PWHASH_OPS_MIN, TZ_PWHASH_MEM_MIN) != TZ_OK ||
	    open_enrol(&back, again.data, again.len, FIX_PASS, PASS_LEN) != TZ_OK ||
	    back.len != payload->len ||
	    (back.len > 0 && memcmp(back.data, payload->data, back.len) != 0))
		fail("the payload does not survive writing and reading again");
	tz_buf_release(&again);
	tz_buf_release(&back);
}

/* libFuzzer's entry point: never fails, aborts on a broken invariant. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tz_buf payload = TZ_BUF_INIT;

	if (open_enrol(&payload, data, size, FIX_PASS, PASS_LEN) == TZ_OK)
		check_opened(&payload, data, size);
	else if (payload.len != 0)
		fail("a refused file leaves payload bytes behind");
	tz_buf_release(&payload);
	tz_error_clear();
	return 0;
}

/* For the driver's --reject: the code of opening the input (TZ_OK when it
 * opens); the message stays in tz_error_last(). */
int tz_fuzz_reject(const uint8_t *data, size_t size)
{
	tz_buf payload = TZ_BUF_INIT;
	int rc;

	tz_error_clear();
	rc = open_enrol(&payload, data, size, FIX_PASS, PASS_LEN);
	tz_buf_release(&payload);
	return rc;
}

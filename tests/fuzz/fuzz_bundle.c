/*
 * fuzz_bundle.c - fuzz target for the bundle reader (syncd/bundle.c,
 * docs/bundle-format.md).
 *
 * Every input is opened as replica "HQ" with fixed test keys (from fixed
 * seeds), the fixture dictionary and a key callback that knows "B01",
 * calls "OLD" revoked and knows no one else: the same fixture as
 * tests/unit/test_bundle.c, which writes this target's corpus and reject
 * files (`test_bundle --write-corpus tests/fuzz`).  Bundles cannot be
 * re-encoded byte for byte (fresh keys and nonces), so the invariants are:
 * no crash; on failure the header is all zero and the payload empty; on
 * success the payload has the declared size and tz_bundle_peek sees the
 * same header.  Linked with libFuzzer by tests/fuzz/run-libfuzzer.sh, or
 * with tests/fuzz/driver.c for `make test`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "syncd/tz_bundle.h"
#include "tests/fuzz/bundle_fixture.h"

/* The contract between a fuzz target and tests/fuzz/driver.c. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int tz_fuzz_reject(const uint8_t *data, size_t size);

static const tz_bundle_opts fix_opts = { 0, FIX_DICT, sizeof(FIX_DICT) - 1 };

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_bundle: %s\n", what);
	abort();
}

static void setup(void)
{
	static int done;

	if (done)
		return;
	if (fixture_setup() != 0)
		fail("cannot make the fixture keys");
	done = 1;
}

static int open_bundle(tz_bundle_header *h, tz_buf *payload, const uint8_t *data, size_t size)
{
	setup();
	return tz_bundle_read(h, payload, data, size, "HQ", &k_hq, &fix_opts, fixture_cb, NULL);
}

static void check_opened(const tz_bundle_header *h, const tz_buf *payload,
			 const uint8_t *data, size_t size)
{
	tz_bundle_header p;

	if (payload->len != h->plain_size)
		fail("a bundle opens to a payload of another size than declared");
	if (tz_bundle_peek(&p, data, size) != TZ_OK)
		fail("a bundle that opens does not peek");
	if (strcmp(p.sender, h->sender) != 0 || p.sequence != h->sequence ||
	    p.nprereq != h->nprereq ||
	    (h->nprereq > 0 && memcmp(p.prereq, h->prereq, h->nprereq * sizeof(tz_oid)) != 0))
		fail("peek and read disagree on the header");
	tz_bundle_header_release(&p);
}

/* libFuzzer's entry point: never fails, aborts on a broken invariant. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tz_buf payload = TZ_BUF_INIT;
	tz_bundle_header h;

	if (open_bundle(&h, &payload, data, size) == TZ_OK) {
		check_opened(&h, &payload, data, size);
	} else {
		if (!all_zero(&h, sizeof(h)))
			fail("a refused bundle leaves a header behind");
		if (payload.len != 0)
			fail("a refused bundle leaves payload bytes behind");
	}
	tz_bundle_header_release(&h);
	tz_buf_release(&payload);
	tz_error_clear();
	return 0;
}

/* For the driver's --reject: the code of opening the input (TZ_OK when it
 * opens); the message stays in tz_error_last(). */
int tz_fuzz_reject(const uint8_t *data, size_t size)
{
	tz_buf payload = TZ_BUF_INIT;
	tz_bundle_header h;
	int rc;

	tz_error_clear();
	rc = open_bundle(&h, &payload, data, size);
	tz_bundle_header_release(&h);
	tz_buf_release(&payload);
	return rc;
}

/*
 * fuzz_payload.c - fuzz target for the delta payload reader (store/transfer.c,
 * docs/bundle-format.md "The payload, version 2"), through
 * tz_store_payload_check.
 *
 * Every input is checked against one empty store, made once on the first
 * call in a fresh directory under $TMPDIR (or /tmp) and removed at exit.  An
 * empty store holds no commit, so only payloads that start with a root
 * commit can succeed: tests/unit/test_payload.c, which writes this target's
 * corpus and reject files (`test_payload --write-corpus tests/fuzz`),
 * checks its cases against an empty store too.
 *
 * Invariants: no crash and no leak; on success at most one commit per 70
 * bytes (the reader's own bound); on failure no commit counted, a code the
 * API documents (ECORRUPT, ELIMIT, ENOTFOUND, EVERIFY; an input of a few
 * KiB cannot honestly run out of memory) and a message; a second check of
 * the same input gives the same answer, so the first left nothing behind.
 * Linked with libFuzzer by tests/fuzz/run-libfuzzer.sh, or with
 * tests/fuzz/driver.c for `make test`.
 */
#define _XOPEN_SOURCE 700   /* nftw */

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/tz_store.h"

/* The contract between a fuzz target and tests/fuzz/driver.c. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int tz_fuzz_reject(const uint8_t *data, size_t size);

#define DIR_MAX 512

static tz_store *store;
static char dir[DIR_MAX];

static void cleanup(void);

/* Report, remove the store (abort skips atexit) and abort. */
static void fail(const char *what, int rc)
{
	fprintf(stderr, "fuzz_payload: %s (%s: %s)\n", what, rc == TZ_OK ? "OK" : tz_error_name(rc),
		tz_error_last());
	cleanup();
	abort();
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static void cleanup(void)
{
	tz_store_close(store);
	store = NULL;
	if (dir[0] && nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "fuzz_payload: cannot remove %s\n", dir);
	dir[0] = '\0';
}

/* The empty store, once. */
static void setup(void)
{
	const char *t = getenv("TMPDIR");
	int rc;

	if (store != NULL)
		return;
	if (t == NULL || t[0] == '\0' || strlen(t) > DIR_MAX - 32)
		t = "/tmp";
	snprintf(dir, sizeof(dir), "%s/tz-fuzz-payload-XXXXXX", t);
	if (mkdtemp(dir) == NULL) {
		dir[0] = '\0';
		fail("cannot create a temporary directory", TZ_EIO);
	}
	if (atexit(cleanup) != 0)
		fail("atexit", TZ_ENOMEM);
	if ((rc = tz_store_init(dir, "HQ")) < 0 || (rc = tz_store_open(&store, dir)) < 0)
		fail("cannot make the empty store", rc);
}

static int check(const uint8_t *data, size_t size, size_t *n)
{
	setup();
	tz_error_clear();
	return tz_store_payload_check(store, data, size, n);
}

/* libFuzzer's entry point: never fails, aborts on a broken invariant. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char msg[16384];
	size_t n = 12345, n2 = 12345;
	int rc, rc2;

	rc = check(data, size, &n);
	if (rc == TZ_OK) {
		if (n > size / 70)
			fail("more commits than the payload can hold", rc);
	} else {
		if (n != 0)
			fail("a refused payload counts commits", rc);
		if (rc != TZ_ECORRUPT && rc != TZ_ELIMIT && rc != TZ_ENOTFOUND && rc != TZ_EVERIFY)
			fail("a payload refused with a code tz_store_payload_check does not document", rc);
		if (tz_error_last()[0] == '\0')
			fail("a payload refused without a message", rc);
	}
	snprintf(msg, sizeof(msg), "%s", tz_error_last());
	rc2 = check(data, size, &n2);
	if (rc2 != rc || n2 != n || strncmp(msg, tz_error_last(), sizeof(msg) - 1) != 0)
		fail("a second check of the same payload answers otherwise", rc2);
	tz_error_clear();
	return 0;
}

/* For the driver's --reject: the code of checking the input (TZ_OK when it
 * is accepted); the message stays in tz_error_last(). */
int tz_fuzz_reject(const uint8_t *data, size_t size)
{
	size_t n;

	return check(data, size, &n);
}

/*
 * fuzz_row.c - fuzz target for the row decoder and the key decoder
 * (store/row.c, docs/row-format.md).
 *
 * Every input is decoded twice: as a row blob and as a key file name.
 * Whatever a decoder accepts must be exactly canonical: encoding what it
 * decoded gives back the input byte for byte, or the target aborts (which
 * libFuzzer and the sanitizers report as a crash).  A decoded key must also
 * be a safe file name.  Linked with libFuzzer by tests/fuzz/run-libfuzzer.sh,
 * or with tests/fuzz/driver.c (`make`), which replays
 * tests/fuzz/corpus/row and checks tests/fuzz/reject/row through
 * tz_fuzz_reject.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/tz_row.h"

/* The contract between a fuzz target and tests/fuzz/driver.c. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int tz_fuzz_reject(const uint8_t *data, size_t size);

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_row: %s\n", what);
	abort();
}

static void check_row(const uint8_t *data, size_t size)
{
	tz_buf again = TZ_BUF_INIT, shown = TZ_BUF_INIT;
	tz_row *row = NULL;

	if (tz_row_decode(&row, data, size) != TZ_OK)
		return;
	if (tz_row_encode(&again, row->cols, row->ncols) != TZ_OK)
		fail("a decoded row does not encode");
	if (again.len != size || (size > 0 && memcmp(again.data, data, size) != 0))
		fail("a decoded row re-encodes to other bytes");
	for (size_t i = 0; i < row->ncols; i++) {
		const tz_column *c = &row->cols[i];

		if (tz_row_find(row, c->name, c->name_len) != c)
			fail("tz_row_find misses a decoded column");
		tz_value_format(&shown, &c->v);
	}
	if (tz_buf_error(&shown) != TZ_OK)
		fail("tz_value_format fails on a decoded value");
	tz_buf_release(&shown);
	tz_buf_release(&again);
	tz_row_free(row);
}

static void check_key(const uint8_t *data, size_t size)
{
	tz_value vals[TZ_KEY_MAX_COLUMNS];
	tz_buf again = TZ_BUF_INIT;
	uint8_t *arena = NULL;
	size_t n = 0;

	if (tz_key_decode(vals, TZ_KEY_MAX_COLUMNS, &n, &arena, (const char *)data, size) != TZ_OK)
		return;
	if (n == 0 || n > TZ_KEY_MAX_COLUMNS)
		fail("a decoded key has a bad component count");
	if (tz_key_encode(&again, vals, n) != TZ_OK)
		fail("a decoded key does not encode");
	if (again.len != size || memcmp(again.data, data, size) != 0)
		fail("a decoded key re-encodes to other bytes");
	if (data[0] == '.' || memchr(data, '/', size) != NULL || memchr(data, '\0', size) != NULL)
		fail("a decoded key is not a safe file name");
	tz_buf_release(&again);
	tz_free(arena);
}

/* libFuzzer's entry point: never fails, aborts on a broken invariant. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_row(data, size);
	check_key(data, size);
	tz_error_clear();
	return 0;
}

/* For the driver's --reject: the code of decoding the input as a row
 * (TZ_OK when it decodes); the message stays in tz_error_last(). */
int tz_fuzz_reject(const uint8_t *data, size_t size)
{
	tz_row *row = NULL;
	int rc;

	tz_error_clear();
	rc = tz_row_decode(&row, data, size);
	tz_row_free(row);
	return rc;
}

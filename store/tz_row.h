/*
 * tz_row.h - typed values, the canonical row encoding and the key encoding.
 *
 * A row is stored in the history as one git blob whose bytes are a
 * canonical, human-readable encoding of its columns (docs/row-format.md):
 * one column per line, columns sorted by name (bytewise), every SQLite
 * storage class exact.  Equal rows give equal bytes on every replica, so
 * equal object ids.  The decoder is strict: it refuses anything the
 * encoder would not have produced byte for byte.
 *
 * A primary key becomes a file name in the history (the last component of
 * <table>/<partition>/<fanout>/<key>): reversible, filename-safe, readable
 * for the usual text and integer keys (docs/store-layout.md).
 */
#ifndef TZ_ROW_H
#define TZ_ROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/tz_base.h"
#include "store/tz_buf.h"

/* The five SQLite storage classes. Values chosen to match SQLITE_INTEGER
 * (1), SQLITE_FLOAT (2), SQLITE_TEXT (3), SQLITE_BLOB (4), SQLITE_NULL (5). */
typedef enum {
	TZ_VINT = 1,
	TZ_VREAL = 2,
	TZ_VTEXT = 3,
	TZ_VBLOB = 4,
	TZ_VNULL = 5
} tz_vtype;

/* A value; text and blob point at bytes owned by someone else (`p`, `n`).
 * Text is any byte string (SQLite does not enforce UTF-8); it may hold NUL. */
typedef struct {
	tz_vtype type;
	int64_t i;
	double r;
	const uint8_t *p;
	size_t n;
} tz_value;

/* A named column: the name is a byte string (not NUL-terminated). */
typedef struct {
	const char *name;
	size_t name_len;
	tz_value v;
} tz_column;

/* Bounds.  A row blob of at most 1 GiB: SQLite's own default
 * SQLITE_MAX_LENGTH is 1e9 bytes per value, and no agency row comes near;
 * a row of at most 2000 columns: SQLite's default SQLITE_MAX_COLUMN. */
#define TZ_ROW_MAX_BYTES   ((size_t)1 << 30)
#define TZ_ROW_MAX_COLUMNS 2000
/* A column name of at most 1024 bytes: far past any real schema, small
 * enough that a hostile name cannot make a line unbounded. */
#define TZ_ROW_MAX_NAME    1024
/* A key of at most 8 columns (the change log has eight key slots) and an
 * encoded key of at most 4096 bytes (PATH_MAX on Linux). */
#define TZ_KEY_MAX_COLUMNS 8
#define TZ_KEY_MAX_BYTES   4096

/*
 * Append the canonical encoding of `ncols` columns to `out`.  The columns
 * may come in any order; they are written sorted by name.  TZ_EINVAL for a
 * duplicate or empty name, a NaN real (SQLite never stores one) or an
 * unknown type; TZ_ELIMIT past the bounds above.  `out` carries the error
 * (sticky) and the function returns it.
 */
int tz_row_encode(tz_buf *out, const tz_column *cols, size_t ncols);

/* A decoded row: `cols` sorted by name; every pointer points into `arena`,
 * which the row owns.  Free with tz_row_free (accepts NULL). */
typedef struct {
	size_t ncols;
	tz_column *cols;
	uint8_t *arena;
} tz_row;

/*
 * Decode a row blob.  On success *out is a new row; on failure *out is NULL
 * and the code is TZ_ECORRUPT (with a message naming the line and what is
 * wrong: unknown type tag, non-canonical number, bad escape, columns out of
 * order, missing final newline, ...) or TZ_ELIMIT or TZ_ENOMEM.
 */
int tz_row_decode(tz_row **out, const uint8_t *data, size_t len) TZ_MUST_CHECK;

/* Append to out the row blob `old` (n bytes, canonical: as the history
 * holds it) with the columns named in rem removed and those of set put,
 * each list sorted by name.  The lines it keeps are copied as they are:
 * the encoding being canonical, they are what decoding and encoding their
 * values again would give.  Returns 1, with nothing appended, for what it
 * leaves to tz_row_decode and tz_row_encode: a name that needs escapes, a
 * column to remove that old lacks, lists out of order, a value
 * tz_row_encode refuses, bytes that are no row, a row past the limits. */
int tz_row_patch(tz_buf *out, const uint8_t *old, size_t n, const tz_column *set, size_t nset,
		 const tz_column *rem, size_t nrem) TZ_MUST_CHECK;
void tz_row_free(tz_row *row);

/* The column named `name` in a decoded row, or NULL. */
const tz_column *tz_row_find(const tz_row *row, const char *name, size_t name_len);

/*
 * Append the canonical text of one value, as it appears after the type tag
 * in a row line (text escaped, real in shortest round-trip form, blob in
 * base64).  Used by diff and show to print values as the history stores
 * them.
 */
void tz_value_format(tz_buf *out, const tz_value *v);

/* Shortest decimal form of `d` that strtod reads back to the same bits
 * ("0.1", "1e+100", "-0", "inf", "-inf").  `out` holds at least 32 bytes.
 * Returns the length written (without the NUL). */
size_t tz_real_format(char out[32], double d);

/* Is p[0..n) well-formed UTF-8 (no overlong forms, no surrogates, nothing
 * past U+10FFFF)? */
bool tz_utf8_valid(const uint8_t *p, size_t n);

/* Compare two values: 0 when equal in type and bytes (reals by bits). */
int tz_value_cmp(const tz_value *a, const tz_value *b);

/*
 * Three-way merge of one row, column by column (docs/merge.md).  `ours`
 * and `theirs` hold the same columns; `base` may be NULL (both sides
 * inserted the key: every column counts as changed on both sides) or lack
 * columns (added since: changed on both sides).  Columns merge in units:
 * unit[c] (indexed like ours->cols) is -1 for a column on its own, or a
 * group number shared by the columns that merge as one.  For each unit:
 * equal on both sides, or changed only on ours -> ours; changed only on
 * theirs -> theirs; changed on both, differently -> decide(), which gets
 * the unit's column indexes and sets *take_theirs.  The merged row is
 * appended to `out` in the canonical encoding.
 */
typedef int (*tz_merge3_cb)(void *payload, const size_t *cols, size_t ncols, bool *take_theirs);
int tz_row_merge3(const tz_row *base, const tz_row *ours, const tz_row *theirs, const int *unit,
		  tz_merge3_cb decide, void *payload, tz_buf *out);

/*
 * Key encoding (a file name): the components joined with '+'; a text
 * component is written as is when it is made of [A-Za-z0-9_.-] and does not
 * start with '.' or '_', each other byte as %XX (upper-case hex); the other
 * types are tagged: "~i<decimal>", "~r<real>", "~b<hex>", "~n" (NULL), and
 * the empty text is "~e".  Never empty, never contains '/' or NUL.
 * Append to `out`; TZ_EINVAL for n == 0 or n > TZ_KEY_MAX_COLUMNS,
 * TZ_ELIMIT past TZ_KEY_MAX_BYTES.
 */
int tz_key_encode(tz_buf *out, const tz_value *vals, size_t n);

/*
 * Decode a key file name into at most `max` values.  Text and blob values
 * point into `*arena_out` (owned by the caller, free with tz_free).  *n_out
 * is the number of components.  TZ_ECORRUPT for anything tz_key_encode would
 * not have produced.
 */
int tz_key_decode(tz_value *vals, size_t max, size_t *n_out, uint8_t **arena_out,
		  const char *name, size_t len) TZ_MUST_CHECK;

#endif

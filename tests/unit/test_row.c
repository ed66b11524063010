/*
 * test_row.c - unit tests of store/row.c: the canonical row encoding, the
 * key encoding and the shortest real format (docs/row-format.md).
 *
 * Example tests pin the exact bytes of every storage class and every
 * canonical rule; property tests then run many random rows and keys
 * (deterministic PRNG; the seed is printed, TZ_TEST_SEED=N replays one)
 * through encode -> decode -> encode and check values and bytes, and check
 * that any mutated encoding is either refused or exactly canonical.
 */
#include "store/tz_row.h"

#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/unit/tz_test.h"

/* Property test sizes: enough random cases to hit every escape, tag and
 * length class many times, small enough to stay near a second plain and a
 * few seconds under ASan + UBSan. */
#define PROP_ROWS     100000
#define PROP_KEYS     100000
#define PROP_REALS    30000     /* random bit patterns through the naive search */
#define PROP_DECIMALS 100000    /* short decimals, where the bisection works */
/* A random row has at most this many columns, and text, blob and names at
 * most this many bytes: long enough for every escape and base64 padding. */
#define GEN_COLS  10
#define GEN_BYTES 24

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- value helpers ---- */

static tz_value vi(int64_t i)
{
	tz_value v = { TZ_VINT, i, 0, NULL, 0 };
	return v;
}

static tz_value vr(double r)
{
	tz_value v = { TZ_VREAL, 0, r, NULL, 0 };
	return v;
}

static tz_value vt(const char *s, size_t n)
{
	tz_value v = { TZ_VTEXT, 0, 0, (const uint8_t *)s, n };
	return v;
}

static tz_value vb(const void *p, size_t n)
{
	tz_value v = { TZ_VBLOB, 0, 0, p, n };
	return v;
}

static tz_value vn(void)
{
	tz_value v = { TZ_VNULL, 0, 0, NULL, 0 };
	return v;
}

static tz_column col(const char *name, tz_value v)
{
	tz_column c = { name, strlen(name), v };
	return c;
}

/* An escaped copy of s[0..n) for a TAP line (no raw newlines or NULs). */
static const char *shown(const void *s, size_t n)
{
	static tz_buf b = TZ_BUF_INIT;
	tz_value v = { TZ_VTEXT, 0, 0, s, n };

	tz_buf_clear(&b);
	tz_value_format(&b, &v);
	return b.err == TZ_OK ? (const char *)b.data : "?";
}

static int same_bytes(const void *a, size_t an, const void *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* ---- example tests: exact bytes of every storage class ---- */

/* Encode one column, compare with `want`, decode it back and compare the
 * value; one CHECK. */
static void one_column(const char *what, tz_column c, const char *want, size_t want_len)
{
	tz_buf b = TZ_BUF_INIT;
	tz_row *row = NULL;
	int rc, ok;

	rc = tz_row_encode(&b, &c, 1);
	ok = rc == TZ_OK && same_bytes(b.data, b.len, want, want_len);
	if (ok && tz_row_decode(&row, b.data, b.len) == TZ_OK)
		ok = row->ncols == 1 && row->cols[0].v.type == c.v.type &&
		     tz_value_cmp(&row->cols[0].v, &c.v) == 0 &&
		     same_bytes(row->cols[0].name, row->cols[0].name_len, c.name, c.name_len);
	else
		ok = 0;
	CHECK(ok, "%s encodes as expected and decodes to the same value", what);
	if (!ok)
		printf("# got rc %d '%.*s' (%s)\n", rc, (int)b.len, b.data ? (char *)b.data : "",
		       tz_error_last());
	tz_row_free(row);
	tz_buf_release(&b);
}

#define ONE(what, c, want) one_column(what, c, want, sizeof(want) - 1)

static void test_integers(void)
{
	ONE("INT64_MIN", col("x", vi(INT64_MIN)), "x i -9223372036854775808\n");
	ONE("INT64_MAX", col("x", vi(INT64_MAX)), "x i 9223372036854775807\n");
	ONE("zero", col("x", vi(0)), "x i 0\n");
	ONE("negative", col("x", vi(-42)), "x i -42\n");
	ONE("one", col("x", vi(1)), "x i 1\n");
}

static void test_reals(void)
{
	tz_buf b = TZ_BUF_INIT;
	tz_row *row = NULL;
	tz_column c = col("x", vr(1.0));

	ONE("0.1", col("x", vr(0.1)), "x r 0.1\n");
	ONE("1e300", col("x", vr(1e300)), "x r 1e+300\n");
	ONE("5e-324 (smallest subnormal)", col("x", vr(5e-324)), "x r 5e-324\n");
	ONE("-0.0", col("x", vr(-0.0)), "x r -0\n");
	ONE("+0.0", col("x", vr(0.0)), "x r 0\n");
	ONE("inf", col("x", vr(INFINITY)), "x r inf\n");
	ONE("-inf", col("x", vr(-INFINITY)), "x r -inf\n");
	ONE("1.0", col("x", vr(1.0)), "x r 1\n");
	ONE("DBL_MAX", col("x", vr(DBL_MAX)), "x r 1.7976931348623157e+308\n");
	ONE("DBL_MIN", col("x", vr(DBL_MIN)), "x r 2.2250738585072014e-308\n");
	ONE("1/3", col("x", vr(1.0 / 3)), "x r 0.3333333333333333\n");
	ONE("-1.5e-7", col("x", vr(-1.5e-7)), "x r -1.5e-07\n");
	ONE("123456.789", col("x", vr(123456.789)), "x r 123456.789\n");

	/* 1.0 formats as "1" but the tag keeps it a real, never an integer */
	(void)tz_row_encode(&b, &c, 1);
	CHECK(tz_row_decode(&row, b.data, b.len) == TZ_OK && row->cols[0].v.type == TZ_VREAL &&
	      row->cols[0].v.r == 1.0, "1.0 decodes as REAL, not INTEGER");
	tz_row_free(row);
	row = NULL;
	CHECK(tz_row_decode(&row, (const uint8_t *)"x r -0\n", 7) == TZ_OK &&
	      signbit(row->cols[0].v.r) && row->cols[0].v.r == 0, "-0 keeps its sign bit");
	tz_row_free(row);
	tz_buf_release(&b);
}

static void test_text(void)
{
	ONE("Arabic text", col("name", vt("محمد", strlen("محمد"))), "name t محمد\n");
	ONE("embedded NUL", col("x", vt("a\0b", 3)), "x t a\\x00b\n");
	ONE("newline, tab, CR", col("x", vt("a\nb\tc\rd", 7)), "x t a\\nb\\tc\\rd\n");
	ONE("backslash", col("x", vt("a\\b", 3)), "x t a\\\\b\n");
	ONE("space stays literal in text", col("x", vt("a b ", 4)), "x t a b \n");
	ONE("empty text", col("x", vt("", 0)), "x t \n");
	ONE("DEL and ESC", col("x", vt("\x7f\x1b", 2)), "x t \\x7f\\x1b\n");
	ONE("invalid UTF-8 bytes", col("x", vt("\xff\xc3z", 3)), "x t \\xff\\xc3z\n");
	ONE("overlong NUL", col("x", vt("\xc0\x80", 2)), "x t \\xc0\\x80\n");
	ONE("overlong 3-byte", col("x", vt("\xe0\x80\xaf", 3)), "x t \\xe0\\x80\\xaf\n");
	ONE("surrogate U+D800", col("x", vt("\xed\xa0\x80", 3)), "x t \\xed\\xa0\\x80\n");
	ONE("past U+10FFFF", col("x", vt("\xf4\x90\x80\x80", 4)),
	    "x t \\xf4\\x90\\x80\\x80\n");
	ONE("truncated euro sign", col("x", vt("\xe2\x82", 2)), "x t \\xe2\\x82\n");
	ONE("euro sign and emoji", col("x", vt("€😀", 7)), "x t €😀\n");
	ONE("U+10FFFF", col("x", vt("\xf4\x8f\xbf\xbf", 4)), "x t \xf4\x8f\xbf\xbf\n");
	ONE("C1 control U+0085 is escaped", col("x", vt("\xc2\x85", 2)), "x t \\xc2\\x85\n");
	ONE("C1 control U+009B (CSI) is escaped", col("x", vt("\xc2\x9b", 2)), "x t \\xc2\\x9b\n");
	ONE("U+00A0 just past C1 is literal", col("x", vt("\xc2\xa0", 2)), "x t \xc2\xa0\n");
	ONE("valid then invalid", col("x", vt("\xd9\x85\xd9", 3)), "x t \xd9\x85\\xd9\n");
}

/* The decoder's fast path takes a text whose characters are all written
 * as themselves without unescaping it: a byte that needs an escape must
 * stop it wherever it is.  For each such byte (and the name-only space)
 * at positions 0..19 of a 20-byte ASCII text: encode -> decode gives the
 * value back, the encoding holds an escape, and the byte written raw is
 * refused. */
static void test_escapes_at_every_position(void)
{
	static const uint8_t bad[] = { 0x00, 0x09, 0x1F, ' ', '\\', 0x7F, 0x80, 0xC2, 0xFF };
	int fails = 0, runs = 0;

	for (size_t b = 0; b < sizeof(bad); b++)
		for (size_t pos = 0; pos < 20; pos++)
			for (int as_name = 0; as_name < 2; as_name++) {
				uint8_t text[20];
				char raw[64], name[24];
				tz_buf enc = TZ_BUF_INIT;
				tz_row *row = NULL;
				tz_column c;
				int ok;
				if (bad[b] == ' ' && !as_name)
					continue;   /* a space is literal in text */
				memset(text, 'a', sizeof(text));
				text[pos] = bad[b];
				runs++;
				if (as_name) {
					if (bad[b] == 0x00)
						continue;   /* names are C strings */
					memcpy(name, text, 20);
					name[20] = '\0';
					c = col(name, vi(1));
					c.name_len = 20;
				} else {
					c = col("t", vt((const char *)text, sizeof(text)));
				}
				ok = tz_row_encode(&enc, &c, 1) == TZ_OK && memchr(enc.data, '\\', enc.len) != NULL &&
				     tz_row_decode(&row, enc.data, enc.len) == TZ_OK && row->ncols == 1 &&
				     (as_name ? same_bytes(row->cols[0].name, row->cols[0].name_len, text, 20)
					      : same_bytes(row->cols[0].v.p, row->cols[0].v.n, text, 20));
				tz_row_free(row);
				row = NULL;
				/* the same byte unescaped is not the canonical form */
				if (as_name) {
					memcpy(raw, text, 20);
					memcpy(raw + 20, " i 1\n", 5);
					ok = ok && tz_row_decode(&row, (const uint8_t *)raw, 25) != TZ_OK;
				} else {
					memcpy(raw, "t t ", 4);
					memcpy(raw + 4, text, 20);
					raw[24] = '\n';
					ok = ok && (bad[b] == '\n' || tz_row_decode(&row, (const uint8_t *)raw, 25) != TZ_OK);
				}
				tz_row_free(row);
				tz_buf_release(&enc);
				if (!ok && fails++ < 5)
					printf("# byte 0x%02x at %zu (%s) not handled\n", bad[b], pos, as_name ? "name" : "text");
			}
	CHECK(fails == 0, "a byte that needs an escape is escaped and required at every position (%d cases)", runs);
}

static void test_blob_null_names(void)
{
	static const uint8_t bytes[] = { 0, 0, 1, 0xff };

	ONE("blob with NUL bytes", col("x", vb(bytes, 4)), "x b AAAB/w==\n");
	ONE("blob of 1 byte", col("x", vb(bytes + 3, 1)), "x b /w==\n");
	ONE("blob of 3 bytes", col("x", vb(bytes, 3)), "x b AAAB\n");
	ONE("empty blob", col("x", vb(NULL, 0)), "x b \n");
	ONE("NULL", col("x", vn()), "x n\n");
	ONE("name with a space", col("first name", vi(1)), "first\\x20name i 1\n");
	ONE("Arabic name", col("الاسم", vn()), "الاسم n\n");
	ONE("name with backslash, newline",
	    col("a\\b\nc", vn()), "a\\\\b\\nc n\n");
}

/* Columns are written sorted bytewise, shorter first on a common prefix. */
static void test_sort_order(void)
{
	tz_column cols[7];
	tz_buf b = TZ_BUF_INIT;
	const char want[] = "B n\na n\na\\x00 n\na\\x20 n\nab n\nb n\n\xd9\x85 n\n";

	cols[0] = col("b", vn());
	cols[1] = col("\xd9\x85", vn());
	cols[2] = col("ab", vn());
	cols[3] = col("a", vn());
	cols[4] = col("B", vn());
	cols[5] = col("a ", vn());
	cols[6] = col("a", vn());
	cols[6].name = "a\0";
	cols[6].name_len = 2;
	CHECK(tz_row_encode(&b, cols, 7) == TZ_OK && same_bytes(b.data, b.len, want, sizeof(want) - 1),
	      "columns sorted by name bytewise (B < a < a\\0 < a' ' < ab < b < Arabic)");
	tz_buf_release(&b);
}

/* A full row: the history example of docs/row-format.md. */
static void test_agency_row(void)
{
	static const char want[] =
		"birth_date t 1990-04-12\n"
		"id i 1001\n"
		"name_ar t محمد بن علي\n"
		"name_lat t Mohamed Benali\n"
		"notes n\n"
		"photo b iVBORw==\n"
		"score r 14.75\n";
	static const uint8_t png[] = { 0x89, 'P', 'N', 'G' };
	tz_column cols[7];
	tz_buf b = TZ_BUF_INIT;
	tz_row *row = NULL;
	const tz_column *c;

	cols[0] = col("name_lat", vt("Mohamed Benali", 14));
	cols[1] = col("id", vi(1001));
	cols[2] = col("score", vr(14.75));
	cols[3] = col("name_ar", vt("محمد بن علي", strlen("محمد بن علي")));
	cols[4] = col("photo", vb(png, 4));
	cols[5] = col("notes", vn());
	cols[6] = col("birth_date", vt("1990-04-12", 10));
	CHECK(tz_row_encode(&b, cols, 7) == TZ_OK && same_bytes(b.data, b.len, want, sizeof(want) - 1),
	      "agency row encodes as in docs/row-format.md");
	CHECK(tz_row_decode(&row, b.data, b.len) == TZ_OK && row->ncols == 7, "agency row decodes");
	c = tz_row_find(row, "score", 5);
	CHECK(c != NULL && c->v.type == TZ_VREAL && c->v.r == 14.75, "tz_row_find finds 'score'");
	CHECK(tz_row_find(row, "scor", 4) == NULL && tz_row_find(row, "zzz", 3) == NULL &&
	      tz_row_find(row, "a", 1) == NULL && tz_row_find(NULL, "a", 1) == NULL,
	      "tz_row_find returns NULL for absent names and a NULL row");
	c = tz_row_find(row, "birth_date", 10);
	CHECK(c == &row->cols[0], "tz_row_find finds the first column");
	tz_row_free(row);
	tz_buf_release(&b);
}

/* ---- encoder errors ---- */

static void encode_error(const char *what, const tz_column *cols, size_t n, int want)
{
	tz_buf b = TZ_BUF_INIT;
	int rc;

	tz_buf_put(&b, "keep", 4);
	rc = tz_row_encode(&b, cols, n);
	CHECK(rc == want && b.err == want && b.len == 4, "encode refuses %s with %s (%s)", what,
	      tz_error_name(want), tz_error_last());
	tz_buf_release(&b);
}

static void test_encode_errors(void)
{
	static tz_column many[TZ_ROW_MAX_COLUMNS + 1];
	static char names[TZ_ROW_MAX_COLUMNS + 1][8];
	static char longname[TZ_ROW_MAX_NAME + 2];
	tz_column c[2];
	tz_buf b = TZ_BUF_INIT;

	c[0] = col("a", vi(1));
	c[1] = col("a", vi(2));
	encode_error("a duplicate name", c, 2, TZ_EINVAL);
	c[1] = col("", vi(2));
	encode_error("an empty name", c, 2, TZ_EINVAL);
	c[1] = col("b", vr(NAN));
	encode_error("a NaN", c, 2, TZ_EINVAL);
	c[1] = col("b", vi(0));
	c[1].v.type = (tz_vtype)9;
	encode_error("an unknown type", c, 2, TZ_EINVAL);
	memset(longname, 'n', TZ_ROW_MAX_NAME + 1);
	c[1] = col(longname, vi(0));
	encode_error("a name past TZ_ROW_MAX_NAME", c, 2, TZ_ELIMIT);
	longname[TZ_ROW_MAX_NAME] = '\0';
	c[1] = col(longname, vi(0));
	CHECK(tz_row_encode(&b, c, 2) == TZ_OK, "a name of exactly TZ_ROW_MAX_NAME bytes is fine");
	for (size_t i = 0; i <= TZ_ROW_MAX_COLUMNS; i++) {
		snprintf(names[i], sizeof(names[i]), "c%zu", i);
		many[i] = col(names[i], vn());
	}
	encode_error("more than TZ_ROW_MAX_COLUMNS columns", many, TZ_ROW_MAX_COLUMNS + 1,
		     TZ_ELIMIT);
	tz_buf_clear(&b);
	CHECK(tz_row_encode(&b, many, TZ_ROW_MAX_COLUMNS) == TZ_OK,
	      "exactly TZ_ROW_MAX_COLUMNS columns encode");
	b.err = TZ_EIO;
	CHECK(tz_row_encode(&b, c, 1) == TZ_EIO, "encode into a failed buffer returns its error");
	tz_buf_clear(&b);
	CHECK(tz_row_encode(&b, NULL, 0) == TZ_OK && b.len == 0, "a row of no columns is empty");
	tz_buf_release(&b);
}

/* ---- decoder: what it must refuse ---- */

static void reject(const char *input, size_t len, int code, const char *msg)
{
	tz_row *row = (tz_row *)&row;   /* must come back NULL */
	int rc = tz_row_decode(&row, (const uint8_t *)input, len);

	CHECK(rc == code && row == NULL && strstr(tz_error_last(), msg) != NULL,
	      "decode refuses '%s': %s %s", shown(input, len < 60 ? len : 60),
	      tz_error_name(code), msg);
	if (rc != code || strstr(tz_error_last(), msg) == NULL)
		printf("# got %s '%s'\n", tz_error_name(rc), tz_error_last());
	if (rc == TZ_OK)
		tz_row_free(row);
}

#define REJECT(s, code, msg) reject(s, sizeof(s) - 1, code, msg)
#define NONCANON "non-canonical row encoding at line"

static void test_reject_structure(void)
{
	REJECT("b i 1\na i 2\n", TZ_ECORRUPT, "row line 2: column 'a' out of order");
	REJECT("a i 1\nb n\nb i 2\n", TZ_ECORRUPT, "row line 3: duplicate column 'b'");
	REJECT("ab n\na n\n", TZ_ECORRUPT, "out of order");
	REJECT("a i 1", TZ_ECORRUPT, "row line 1: missing final newline");
	REJECT("a i 1\nb i 2", TZ_ECORRUPT, "row line 2: missing final newline");
	REJECT("a x 1\n", TZ_ECORRUPT, "row line 1: unknown type tag 'x'");
	REJECT("a int 1\n", TZ_ECORRUPT, "unknown type tag 'int'");
	REJECT("a I 1\n", TZ_ECORRUPT, "unknown type tag 'I'");
	REJECT("a n x\n", TZ_ECORRUPT, "null takes no value");
	REJECT("a n \n", TZ_ECORRUPT, "null takes no value");
	REJECT("a i\n", TZ_ECORRUPT, "missing value");
	REJECT("a\n", TZ_ECORRUPT, "missing type tag");
	REJECT("a \n", TZ_ECORRUPT, "missing type tag");
	REJECT("\n", TZ_ECORRUPT, "empty column name");
	REJECT("a n\n\n", TZ_ECORRUPT, "row line 2: empty column name");
	REJECT(" i 1\n", TZ_ECORRUPT, "empty column name");
	REJECT("a  i 1\n", TZ_ECORRUPT, "missing type tag");
	REJECT("a i 1 2\n", TZ_ECORRUPT, "non-canonical integer '1 2'");
	REJECT("a i 1\r\n", TZ_ECORRUPT, "non-canonical integer");
	REJECT("a b QQ== \n", TZ_ECORRUPT, "bad base64");
}

static void test_reject_numbers(void)
{
	REJECT("a i +1\n", TZ_ECORRUPT, "non-canonical integer '+1'");
	REJECT("a i 01\n", TZ_ECORRUPT, "non-canonical integer '01'");
	REJECT("a i -0\n", TZ_ECORRUPT, "non-canonical integer '-0'");
	REJECT("a i 00\n", TZ_ECORRUPT, "non-canonical integer");
	REJECT("a i \n", TZ_ECORRUPT, "non-canonical integer ''");
	REJECT("a i -\n", TZ_ECORRUPT, "non-canonical integer");
	REJECT("a i 1.0\n", TZ_ECORRUPT, "non-canonical integer");
	REJECT("a i 0x10\n", TZ_ECORRUPT, "non-canonical integer");
	REJECT("a i 9223372036854775808\n", TZ_ECORRUPT, "out of range");
	REJECT("a i -9223372036854775809\n", TZ_ECORRUPT, "out of range");
	REJECT("a i 99999999999999999999999\n", TZ_ECORRUPT, "out of range");
	REJECT("a r 0.10\n", TZ_ECORRUPT, "non-canonical real '0.10'");
	REJECT("a r 1e300\n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r 1e+300 \n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r 1.0\n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r 1E+300\n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r .1\n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r +0.1\n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r 0.1000000000000000055511151231257827\n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r 0.29999999999999999\n", TZ_ECORRUPT, "non-canonical real");  /* is 0.3 */
	REJECT("a r 4.9406564584124654e-324\n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r Inf\n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r infinity\n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r 1e999\n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r 0x1p-3\n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r \n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r 0,5\n", TZ_ECORRUPT, "non-canonical real");
	REJECT("a r nan\n", TZ_ECORRUPT, "nan is not a value");
	REJECT("a r -nan\n", TZ_ECORRUPT, "nan is not a value");
	REJECT("a r 1\0\n", TZ_ECORRUPT, "non-canonical real");
}

static void test_reject_text(void)
{
	REJECT("a t \\xFF\n", TZ_ECORRUPT, NONCANON " 1");
	REJECT("a t \\x41\n", TZ_ECORRUPT, NONCANON);            /* printable 'A' */
	REJECT("a t \\x20\n", TZ_ECORRUPT, NONCANON);            /* space in text */
	REJECT("a t \\x0a\n", TZ_ECORRUPT, NONCANON);            /* must be \n */
	REJECT("a t \\x5c\n", TZ_ECORRUPT, NONCANON);            /* must be \\ */
	REJECT("a t \\xc3\\xa9\n", TZ_ECORRUPT, NONCANON);       /* valid é escaped */
	REJECT("a t \xc3\\xa9\n", TZ_ECORRUPT, NONCANON);        /* half escaped */
	REJECT("a t \xff\n", TZ_ECORRUPT, NONCANON);             /* invalid byte literal */
	REJECT("a t \xc0\x80\n", TZ_ECORRUPT, NONCANON);         /* overlong literal */
	REJECT("a t \xed\xa0\x80\n", TZ_ECORRUPT, NONCANON);     /* surrogate literal */
	REJECT("a t \x7f\n", TZ_ECORRUPT, NONCANON);             /* DEL literal */
	REJECT("a t a\tb\n", TZ_ECORRUPT, NONCANON);             /* tab literal */
	REJECT("a t a\rb\n", TZ_ECORRUPT, NONCANON);             /* CR literal */
	REJECT("a t \0\n", TZ_ECORRUPT, NONCANON);               /* NUL literal */
	REJECT("a t \\q\n", TZ_ECORRUPT, "row line 1: bad escape in text");
	REJECT("a t \\x4\n", TZ_ECORRUPT, "bad escape in text");
	REJECT("a t \\x4g\n", TZ_ECORRUPT, "bad escape in text");
	REJECT("a t ab\\\n", TZ_ECORRUPT, "bad escape in text");
	REJECT("a t \\N\n", TZ_ECORRUPT, "bad escape in text");
	REJECT("a\\x61 n\n", TZ_ECORRUPT, NONCANON);             /* name: 'a' escaped */
	REJECT("\\x2e n\n", TZ_ECORRUPT, NONCANON);
	REJECT("a\\q n\n", TZ_ECORRUPT, "bad escape in column name");
	REJECT("a\\x20 n\na\\x20 n\n", TZ_ECORRUPT, "row line 2: duplicate column 'a '");
	REJECT("b\\x00 n\nb n\n", TZ_ECORRUPT, "row line 2: column 'b' out of order");
}

static void test_reject_blob_limits(void)
{
	static char big[(TZ_ROW_MAX_COLUMNS + 1) * 8 + 1];   /* + snprintf's NUL */
	static char longname[TZ_ROW_MAX_NAME + 8];
	size_t n = 0;

	REJECT("a b !!!!\n", TZ_ECORRUPT, "row line 1: bad base64");
	REJECT("a b QQ=\n", TZ_ECORRUPT, "bad base64");
	REJECT("a b QQ\n", TZ_ECORRUPT, "bad base64");
	REJECT("a b QR==\n", TZ_ECORRUPT, "bad base64");     /* non-zero padding bits */
	REJECT("a b QUI=x\n", TZ_ECORRUPT, "bad base64");
	REJECT("a b QQ==QQ==\n", TZ_ECORRUPT, "bad base64");
	REJECT("a b Q Q=\n", TZ_ECORRUPT, "bad base64");
	REJECT("a b QUJD\nb b QUJ\n", TZ_ECORRUPT, "row line 2: bad base64");
	REJECT("a b -_8=\n", TZ_ECORRUPT, "bad base64");     /* URL-safe alphabet */
	for (size_t i = 0; i <= TZ_ROW_MAX_COLUMNS; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "c%04zu n\n", i);
	reject(big, n, TZ_ELIMIT, "more than 2000 columns");
	memset(longname, 'n', TZ_ROW_MAX_NAME + 1);
	memcpy(longname + TZ_ROW_MAX_NAME + 1, " n\n", 3);
	reject(longname, TZ_ROW_MAX_NAME + 4, TZ_ELIMIT, "column name longer than 1024 bytes");
}

static void test_decode_edges(void)
{
	tz_row *row = (tz_row *)&row;

	CHECK(tz_row_decode(&row, NULL, 0) == TZ_OK && row != NULL && row->ncols == 0,
	      "the empty blob is the row of no columns");
	tz_row_free(row);
	tz_row_free(NULL);
	CHECK(tz_row_decode(&row, (const uint8_t *)"a b \nb t \n", 10) == TZ_OK &&
	      row->cols[0].v.type == TZ_VBLOB && row->cols[0].v.n == 0 &&
	      row->cols[1].v.type == TZ_VTEXT && row->cols[1].v.n == 0,
	      "empty blob and empty text decode");
	tz_row_free(row);
	CHECK(tz_row_decode(&row, (const uint8_t *)"a t  a  b \n", 11) == TZ_OK &&
	      same_bytes(row->cols[0].v.p, row->cols[0].v.n, " a  b ", 6),
	      "text keeps its spaces, leading and trailing");
	tz_row_free(row);
}

/* ---- formatting helpers ---- */

static void test_format(void)
{
	char s[32];
	tz_buf b = TZ_BUF_INIT;
	tz_value v = vt("a\nb\\", 4), w = vn();

	CHECK(tz_real_format(s, 0.1) == 3 && strcmp(s, "0.1") == 0, "real format 0.1");
	CHECK(tz_real_format(s, 1e100) == 6 && strcmp(s, "1e+100") == 0, "real format 1e+100");
	CHECK(tz_real_format(s, -0.0) == 2 && strcmp(s, "-0") == 0, "real format -0");
	CHECK(tz_real_format(s, NAN) == 3 && strcmp(s, "nan") == 0, "real format nan (for display)");
	CHECK(tz_real_format(s, -DBL_MIN) == 24 && strcmp(s, "-2.2250738585072014e-308") == 0,
	      "real format of the longest kind is 24 bytes");
	tz_value_format(&b, &v);
	tz_value_format(&b, &w);
	CHECK(b.err == TZ_OK && strcmp((char *)b.data, "a\\nb\\\\") == 0,
	      "tz_value_format writes escaped text, nothing for NULL");
	w.type = (tz_vtype)0;
	tz_value_format(&b, &w);
	CHECK(b.err == TZ_EINVAL, "tz_value_format of an unknown type sets TZ_EINVAL");
	tz_buf_release(&b);
}

static void test_value_cmp(void)
{
	tz_value a = vr(0.0), b = vr(-0.0), c = vi(1), d = vr(1.0), e = vt("ab", 2),
		 f = vt("a", 1), g = vb("ab", 2);

	CHECK(tz_value_cmp(&a, &b) > 0 && tz_value_cmp(&b, &a) < 0, "value cmp: -0 < +0");
	CHECK(tz_value_cmp(&c, &d) != 0, "value cmp: integer 1 != real 1.0");
	CHECK(tz_value_cmp(&e, &f) > 0 && tz_value_cmp(&f, &e) < 0, "value cmp: 'a' < 'ab'");
	CHECK(tz_value_cmp(&e, &g) != 0, "value cmp: text 'ab' != blob 'ab'");
	CHECK(tz_value_cmp(&e, &e) == 0 && tz_value_cmp(&a, &a) == 0, "value cmp: equal values");
}

/* A locale with a decimal comma must not leak into the history. */
static void test_locale(void)
{
	static const char *const names[] = { "de_DE.UTF-8", "fr_FR.UTF-8", "fr_DZ.UTF-8",
					     "ru_RU.UTF-8", "de_DE.utf8", "fr_FR.utf8" };
	const char *got = NULL;
	tz_row *row = NULL;
	char s[32];
	int ok;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && got == NULL; i++)
		got = setlocale(LC_NUMERIC, names[i]);
	if (got == NULL) {
		printf("ok %d - # SKIP no decimal-comma locale installed\n", ++tz_test_count);
		return;
	}
	snprintf(s, sizeof(s), "%g", 0.5);
	ok = strcmp(s, "0,5") == 0;
	CHECK(tz_real_format(s, 0.5) == 3 && strcmp(s, "0.5") == 0 &&
	      tz_row_decode(&row, (const uint8_t *)"a r 0.5\n", 8) == TZ_OK &&
	      row->cols[0].v.r == 0.5, "real format and parse ignore the locale %s (%s)", got,
	      ok ? "which has a decimal comma" : "no decimal comma?");
	tz_row_free(row);
	setlocale(LC_NUMERIC, "C");
}

/* ---- keys ---- */

static void key_one(const char *what, const tz_value *vals, size_t n, const char *want)
{
	tz_buf b = TZ_BUF_INIT;
	tz_value back[TZ_KEY_MAX_COLUMNS];
	uint8_t *arena = NULL;
	size_t got = 0;
	int ok;

	ok = tz_key_encode(&b, vals, n) == TZ_OK && strcmp((char *)b.data, want) == 0 &&
	     tz_key_decode(back, TZ_KEY_MAX_COLUMNS, &got, &arena, (char *)b.data, b.len) == TZ_OK &&
	     got == n;
	for (size_t i = 0; ok && i < n; i++)
		ok = tz_value_cmp(&back[i], &vals[i]) == 0;
	CHECK(ok, "key %s is '%s' and decodes back", what, want);
	if (!ok)
		printf("# got '%s' (%s)\n", b.data ? (char *)b.data : "", tz_error_last());
	tz_free(arena);
	tz_buf_release(&b);
}

static void test_key_examples(void)
{
	static const uint8_t bytes[] = { 0x00, 0xab, 0xff };
	tz_value v[TZ_KEY_MAX_COLUMNS];

#define KEY1(what, val, want) do { v[0] = val; key_one(what, v, 1, want); } while (0)
	KEY1("plain text", vt("CAS01-000001", 12), "CAS01-000001");
	KEY1("text with _ and . inside", vt("a_b.c", 5), "a_b.c");
	KEY1("text starting with .", vt(".git", 4), "%2Egit");
	KEY1("text '..'", vt("..", 2), "%2E.");
	KEY1("text starting with _", vt("_schema", 7), "%5Fschema");
	KEY1("text with / and +", vt("a/b+c", 5), "a%2Fb%2Bc");
	KEY1("text with ~ % space", vt("~x% y", 5), "%7Ex%25%20y");
	KEY1("Arabic text", vt("محمد", 8), "%D9%85%D8%AD%D9%85%D8%AF");
	KEY1("text with NUL", vt("a\0", 2), "a%00");
	KEY1("empty text", vt("", 0), "~e");
	KEY1("integer", vi(42), "~i42");
	KEY1("negative integer", vi(-5), "~i-5");
	KEY1("INT64_MIN", vi(INT64_MIN), "~i-9223372036854775808");
	KEY1("real 0.5", vr(0.5), "~r0.5");
	KEY1("real 1e100", vr(1e100), "~r1e%2B100");
	KEY1("real -inf", vr(-INFINITY), "~r-inf");
	KEY1("real -0", vr(-0.0), "~r-0");
	KEY1("real 1.0", vr(1.0), "~r1");
	KEY1("blob", vb(bytes, 3), "~b00abff");
	KEY1("empty blob", vb(NULL, 0), "~b");
	KEY1("NULL", vn(), "~n");
#undef KEY1
	v[0] = vt("CAS01", 5);
	v[1] = vi(7);
	key_one("composite (text, integer)", v, 2, "CAS01+~i7");
	v[0] = vt("a+b", 3);
	v[1] = vt("", 0);
	v[2] = vn();
	v[3] = vr(2.5);
	key_one("composite with '+' in text", v, 4, "a%2Bb+~e+~n+~r2.5");
	for (size_t i = 0; i < TZ_KEY_MAX_COLUMNS; i++)
		v[i] = vi((int64_t)i);
	key_one("of 8 components", v, 8, "~i0+~i1+~i2+~i3+~i4+~i5+~i6+~i7");
}

static void key_encode_error(const char *what, const tz_value *v, size_t n, int want)
{
	tz_buf b = TZ_BUF_INIT;
	int rc;

	tz_buf_put(&b, "k", 1);
	rc = tz_key_encode(&b, v, n);
	CHECK(rc == want && b.err == want && b.len == 1, "key encode refuses %s: %s (%s)", what,
	      tz_error_name(want), tz_error_last());
	tz_buf_release(&b);
}

static void test_key_encode_errors(void)
{
	static char slashes[TZ_KEY_MAX_BYTES];
	tz_value v[TZ_KEY_MAX_COLUMNS + 1];
	tz_buf b = TZ_BUF_INIT;

	for (size_t i = 0; i <= TZ_KEY_MAX_COLUMNS; i++)
		v[i] = vn();
	key_encode_error("no component", v, 0, TZ_EINVAL);
	key_encode_error("9 components", v, TZ_KEY_MAX_COLUMNS + 1, TZ_EINVAL);
	v[0] = vr(NAN);
	key_encode_error("a NaN", v, 1, TZ_EINVAL);
	memset(slashes, '/', sizeof(slashes));
	v[0] = vt(slashes, TZ_KEY_MAX_BYTES / 3 + 1);
	key_encode_error("a key past TZ_KEY_MAX_BYTES", v, 1, TZ_ELIMIT);
	v[0] = vt(slashes, TZ_KEY_MAX_BYTES / 3);
	v[1] = vt(slashes, 1);
	key_encode_error("a composite key past TZ_KEY_MAX_BYTES", v, 2, TZ_ELIMIT);
	memset(slashes, 'k', sizeof(slashes));
	v[0] = vt(slashes, TZ_KEY_MAX_BYTES);
	CHECK(tz_key_encode(&b, v, 1) == TZ_OK && b.len == TZ_KEY_MAX_BYTES,
	      "a key of exactly TZ_KEY_MAX_BYTES encodes");
	tz_buf_release(&b);
}

static void key_reject(const char *name, size_t len, size_t max, int want)
{
	tz_value v[TZ_KEY_MAX_COLUMNS + 1];
	uint8_t *arena = (uint8_t *)&arena;
	size_t n = 99;
	int rc = tz_key_decode(v, max, &n, &arena, name, len);

	CHECK(rc == want && n == 0 && arena == NULL, "key decode refuses '%s': %s (%s)",
	      shown(name, len < 60 ? len : 60), tz_error_name(want), tz_error_last());
	if (rc == TZ_OK)
		tz_free(arena);
}

static void test_key_reject(void)
{
	static const char *const bad[] = {
		"%2f", "%41", "%2e", ".x", "_x", "a+", "+a", "a++b", "a/b", "a b", "a~b", "%",
		"%4", "%4G", "%zz", "~", "~x", "~i", "~i01", "~i+1", "~i-0", "~i1.0",
		"~i9223372036854775808", "~r1e+100", "~r1e%2b100", "~r1E%2B100", "~r0.10",
		"~rnan", "~r", "~r%2B1", "~r0x1p3", "~bAB", "~b0", "~bxx", "~n0", "~e0",
		"~e+", "~ia", "a\xd9\x85", "%D9%85%d8%ad", "~b00+", "~n~n", "a\n"
	};
	static char big[TZ_KEY_MAX_BYTES + 2];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		key_reject(bad[i], strlen(bad[i]), TZ_KEY_MAX_COLUMNS, TZ_ECORRUPT);
	key_reject("a\0b", 3, TZ_KEY_MAX_COLUMNS, TZ_ECORRUPT);
	key_reject("", 0, TZ_KEY_MAX_COLUMNS, TZ_ECORRUPT);
	key_reject("~n+~n+~n+~n+~n+~n+~n+~n+~n", 26, TZ_KEY_MAX_COLUMNS + 1, TZ_ECORRUPT);
	key_reject("~n+~n+~n", 8, 2, TZ_ELIMIT);
	memset(big, 'k', sizeof(big));
	key_reject(big, TZ_KEY_MAX_BYTES + 1, TZ_KEY_MAX_COLUMNS, TZ_ECORRUPT);
}

static void test_key_no_arena(void)
{
	tz_value v[2];
	uint8_t *arena = (uint8_t *)&arena;
	size_t n = 0;

	CHECK(tz_key_decode(v, 2, &n, &arena, "~i5+~b", 6) == TZ_OK && n == 2 && arena == NULL &&
	      v[1].type == TZ_VBLOB && v[1].n == 0 && v[1].p != NULL,
	      "an integer-only key needs no arena; an empty blob points at no NULL");
	CHECK(tz_key_decode(v, 1, &n, &arena, "~e", 2) == TZ_OK && n == 1 &&
	      v[0].type == TZ_VTEXT && v[0].n == 0 && v[0].p != NULL, "'~e' is the empty text");
	tz_free(arena);
}

/* ---- allocation failures ---- */

/* Fail allocation k = 1, 2, ... of a decode, an encode and a key decode
 * until no allocation is left to fail: each time exactly one of them must
 * fail with TZ_ENOMEM and clean outputs, the others succeed (ASan checks
 * that nothing leaks). */
static void test_alloc_faults(void)
{
	static const char text[] = "a t x\nb b AAAB\nc i 1\n";
	tz_column cols[3];
	size_t sites = 0, bad = 0;

	cols[0] = col("c", vi(1));
	cols[1] = col("a", vt("x", 1));
	cols[2] = col("b", vb("\0\0\1", 3));
	for (uint64_t k = 1; k < 100; k++) {
		tz_row *row = NULL;
		tz_buf b = TZ_BUF_INIT;
		tz_value v[2];
		uint8_t *arena = NULL;
		size_t n = 0;
		int r1, r2, r3, fired;

		tz_faultsim_arm(TZ_FAULT_ALLOC, k);
		r1 = tz_row_decode(&row, (const uint8_t *)text, sizeof(text) - 1);
		r2 = tz_row_encode(&b, cols, 3);
		r3 = tz_key_decode(v, 2, &n, &arena, "a+~b00", 6);
		fired = tz_faultsim_calls(TZ_FAULT_ALLOC) >= k;
		tz_faultsim_arm(TZ_FAULT_ALLOC, 0);
		if (fired && ((r1 == TZ_ENOMEM) + (r2 == TZ_ENOMEM) + (r3 == TZ_ENOMEM) != 1 ||
			      (r1 != TZ_OK && (r1 != TZ_ENOMEM || row != NULL)) ||
			      (r2 != TZ_OK && (r2 != TZ_ENOMEM || b.err != TZ_ENOMEM)) ||
			      (r3 != TZ_OK && (r3 != TZ_ENOMEM || n != 0 || arena != NULL))))
			bad++;
		tz_row_free(row);
		tz_buf_release(&b);
		tz_free(arena);
		if (!fired)
			break;
		sites++;
	}
	CHECK(sites >= 6 && bad == 0, "allocation failure at each of %zu sites is a clean "
	      "TZ_ENOMEM (%zu not)", sites, bad);
}

/* ---- random generation ---- */

static uint64_t rng_state;

/* Powers of ten for short decimals (the Makefile links no libm). */
static const double p10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
			      1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21,
			      1e22, 1e23, 1e24 };

static uint64_t rnd(void)
{
	/* splitmix64: tiny, fast, and good enough to drive test generation */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static size_t rnd_below(size_t n)
{
	return (size_t)(rnd() % n);
}

/* Random bytes that favour what the escaper must handle: plain ASCII,
 * controls, backslash, space, valid UTF-8 of 2 to 4 bytes, lone and cut
 * sequences, and anything at all. */
static size_t rnd_bytes(uint8_t *out, size_t max)
{
	static const char *const pieces[] = {
		"a", "Z", "0", " ", "\\", "\n", "\t", "\r", "\x7f", "\x1b", "+", "/", "%",
		"~", ".", "_", "محمد", "€", "😀", "\xc2\x85", "\xc3", "\xe2\x82", "\xed\xa0\x80",
		"\xc0\x80", "\xf4\x90\x80\x80", "\xf0\x9f\x98", "\xff", "x", "=="
	};
	size_t want = rnd_below(max + 1), n = 0;

	while (n < want) {
		if (rnd_below(4) == 0) {
			out[n++] = (uint8_t)rnd();
		} else {
			const char *p = pieces[rnd_below(sizeof(pieces) / sizeof(pieces[0]))];
			size_t k = strlen(p);

			if (n + k > max)
				break;
			memcpy(out + n, p, k);
			n += k;
		}
	}
	return n;
}

static double rnd_real(void)
{
	static const double special[] = { 0.0, -0.0, 1.0, -1.0, 0.1, 1e300, 5e-324, DBL_MIN,
					  DBL_MAX, -DBL_MAX, INFINITY, -INFINITY, 0.5, 1e-7,
					  123456789012345678.0 };
	uint64_t bits;
	double d;

	switch (rnd_below(4)) {
	case 0:
		return special[rnd_below(sizeof(special) / sizeof(special[0]))];
	case 1:   /* a short decimal */
		return (double)(int64_t)(rnd() % 2000001 - 1000000) / p10[rnd_below(12)];
	default:  /* any bit pattern but NaN */
		do {
			bits = rnd();
			memcpy(&d, &bits, sizeof(d));
		} while (isnan(d));
		return d;
	}
}

static int64_t rnd_int(void)
{
	switch (rnd_below(4)) {
	case 0: return INT64_MIN + (int64_t)rnd_below(3);
	case 1: return INT64_MAX - (int64_t)rnd_below(3);
	case 2: return (int64_t)rnd_below(2001) - 1000;
	default: return (int64_t)rnd();
	}
}

/* A random value of type t; text and blob bytes go to pool. */
static tz_value rnd_value(tz_vtype t, uint8_t *pool)
{
	switch (t) {
	case TZ_VINT: return vi(rnd_int());
	case TZ_VREAL: return vr(rnd_real());
	case TZ_VTEXT: return vt((const char *)pool, rnd_bytes(pool, GEN_BYTES));
	case TZ_VBLOB: return vb(pool, rnd_below(4) ? rnd_bytes(pool, GEN_BYTES) : 0);
	default: return vn();
	}
}

static int col_cmp(const void *a, const void *b)
{
	const tz_column *x = a, *y = b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);

	return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* A random row of distinct names into cols (pool holds its bytes). */
static size_t rnd_row(tz_column *cols, uint8_t pool[GEN_COLS][2][GEN_BYTES])
{
	size_t want = rnd_below(GEN_COLS + 1), n = 0;

	for (size_t i = 0; i < want; i++) {
		tz_column *c = &cols[n];
		int dup = 0;

		c->name = (const char *)pool[i][0];
		c->name_len = rnd_below(3) ? 1 + rnd_below(3) : rnd_bytes(pool[i][0], GEN_BYTES);
		if (c->name_len <= 3)   /* short names from a small alphabet collide often */
			for (size_t k = 0; k < c->name_len; k++)
				pool[i][0][k] = (uint8_t)"ab \\\n"[rnd_below(5)];
		for (size_t k = 0; k < n && !dup; k++)
			dup = col_cmp(&cols[k], c) == 0;
		if (c->name_len == 0 || dup)
			continue;
		c->v = rnd_value((tz_vtype)(1 + rnd_below(5)), pool[i][1]);
		n++;
	}
	return n;
}

/* ---- property tests ---- */

typedef struct {
	size_t rows, cols, bytes, enc_fail, dec_fail, val_fail, reenc_fail, find_fail;
	size_t mutated, mut_accepted, mut_noncanon;
	size_t types[6];
} row_stats;

/* Decode enc and check that it holds the columns of want (sorted). */
static void check_decoded(row_stats *st, const tz_buf *enc, tz_column *want, size_t n)
{
	tz_buf again = TZ_BUF_INIT;
	tz_row *row = NULL;
	int ok;

	if (tz_row_decode(&row, enc->data, enc->len) != TZ_OK) {
		if (st->dec_fail++ == 0)
			printf("# first decode failure: %s\n", tz_error_last());
		return;
	}
	ok = row->ncols == n;
	for (size_t i = 0; ok && i < n; i++)
		ok = same_bytes(row->cols[i].name, row->cols[i].name_len, want[i].name,
				want[i].name_len) && tz_value_cmp(&row->cols[i].v, &want[i].v) == 0;
	st->val_fail += !ok;
	for (size_t i = 0; ok && i < n; i++)
		st->find_fail += tz_row_find(row, want[i].name, want[i].name_len) != &row->cols[i];
	if (tz_row_encode(&again, row->cols, row->ncols) != TZ_OK ||
	    !same_bytes(again.data, again.len, enc->data, enc->len))
		st->reenc_fail++;
	tz_buf_release(&again);
	tz_row_free(row);
}

/* Change one byte of a valid encoding (flip, insert or delete); if the
 * decoder accepts the result it must be exactly canonical. */
static void mutate_row(row_stats *st, const tz_buf *enc)
{
	static const uint8_t interesting[] = { ' ', '\n', '\\', 'x', '0', '1', '=', 'A', 'a',
					       '+', '-', 'e', '.', 0xff, 0xc3, 'n', 'i' };
	uint8_t m[4096];
	size_t n = enc->len, at;
	tz_buf again = TZ_BUF_INIT;
	tz_row *row = NULL;
	uint8_t c;

	if (n == 0 || n >= sizeof(m))
		return;
	memcpy(m, enc->data, n);
	at = rnd_below(n);
	c = rnd_below(2) ? interesting[rnd_below(sizeof(interesting))] : (uint8_t)rnd();
	switch (rnd_below(3)) {
	case 0: m[at] = c; break;
	case 1: memmove(m + at + 1, m + at, n - at); m[at] = c; n++; break;
	default: memmove(m + at, m + at + 1, n - at - 1); n--; break;
	}
	st->mutated++;
	if (tz_row_decode(&row, m, n) != TZ_OK)
		return;
	st->mut_accepted++;
	if (tz_row_encode(&again, row->cols, row->ncols) != TZ_OK ||
	    !same_bytes(again.data, again.len, m, n))
		st->mut_noncanon++;
	tz_buf_release(&again);
	tz_row_free(row);
}

static void prop_rows(void)
{
	static uint8_t pool[GEN_COLS][2][GEN_BYTES];
	tz_column cols[GEN_COLS];
	row_stats st;
	tz_buf enc = TZ_BUF_INIT;
	double t0 = now();

	memset(&st, 0, sizeof(st));
	for (size_t r = 0; r < PROP_ROWS; r++) {
		size_t n = rnd_row(cols, pool);

		tz_buf_clear(&enc);
		if (tz_row_encode(&enc, cols, n) != TZ_OK) {
			if (st.enc_fail++ == 0)
				printf("# first encode failure: %s\n", tz_error_last());
			continue;
		}
		st.rows++;
		st.cols += n;
		st.bytes += enc.len;
		for (size_t i = 0; i < n; i++)
			st.types[cols[i].v.type]++;
		qsort(cols, n, sizeof(cols[0]), col_cmp);
		check_decoded(&st, &enc, cols, n);
		mutate_row(&st, &enc);
	}
	tz_buf_release(&enc);
	printf("# %zu rows, %zu columns (int %zu, real %zu, text %zu, blob %zu, null %zu), "
	       "%zu bytes, %.2f s\n", st.rows, st.cols, st.types[TZ_VINT], st.types[TZ_VREAL],
	       st.types[TZ_VTEXT], st.types[TZ_VBLOB], st.types[TZ_VNULL], st.bytes, now() - t0);
	printf("# %zu mutated encodings, %zu accepted by the decoder\n", st.mutated,
	       st.mut_accepted);
	CHECK(st.enc_fail == 0 && st.rows == PROP_ROWS, "property: %d random rows encode",
	      PROP_ROWS);
	CHECK(st.dec_fail == 0, "property: every encoding decodes (%zu failed)", st.dec_fail);
	CHECK(st.val_fail == 0, "property: decoded values equal the originals (%zu differ)",
	      st.val_fail);
	CHECK(st.reenc_fail == 0, "property: re-encoding is byte-identical (%zu differ)",
	      st.reenc_fail);
	CHECK(st.find_fail == 0, "property: tz_row_find finds every column (%zu missed)",
	      st.find_fail);
	CHECK(st.mut_noncanon == 0, "property: a mutated encoding is refused or canonical "
	      "(%zu accepted but not canonical)", st.mut_noncanon);
}

/* The key of vals must be a safe file name and decode back exactly. */
static int key_round_trip(const tz_value *vals, size_t n, size_t *bytes)
{
	tz_buf b = TZ_BUF_INIT, again = TZ_BUF_INIT;
	tz_value back[TZ_KEY_MAX_COLUMNS];
	uint8_t *arena = NULL;
	size_t got = 0;
	int ok;

	ok = tz_key_encode(&b, vals, n) == TZ_OK && b.len > 0 && b.data[0] != '.' &&
	     memchr(b.data, '/', b.len) == NULL && memchr(b.data, '\0', b.len) == NULL &&
	     tz_key_decode(back, TZ_KEY_MAX_COLUMNS, &got, &arena, (char *)b.data, b.len) == TZ_OK &&
	     got == n && tz_key_encode(&again, back, got) == TZ_OK &&
	     same_bytes(again.data, again.len, b.data, b.len);
	for (size_t i = 0; ok && i < n; i++)
		ok = tz_value_cmp(&back[i], &vals[i]) == 0;
	*bytes += b.len;
	tz_free(arena);
	tz_buf_release(&b);
	tz_buf_release(&again);
	return ok;
}

/* Mutate a valid key by one byte; if accepted it must be canonical. */
static int key_mutant(const tz_value *vals, size_t n, size_t *accepted)
{
	static const char interesting[] = "+~%/.-_0aAF9ienrb";
	tz_buf b = TZ_BUF_INIT, again = TZ_BUF_INIT;
	tz_value back[TZ_KEY_MAX_COLUMNS];
	uint8_t *arena = NULL;
	size_t got = 0;
	int ok = 1;

	if (tz_key_encode(&b, vals, n) == TZ_OK && b.len > 0) {
		b.data[rnd_below(b.len)] = rnd_below(2) ? (uint8_t)interesting[rnd_below(17)]
							: (uint8_t)rnd();
		if (tz_key_decode(back, TZ_KEY_MAX_COLUMNS, &got, &arena, (char *)b.data,
				  b.len) == TZ_OK) {
			++*accepted;
			ok = tz_key_encode(&again, back, got) == TZ_OK &&
			     same_bytes(again.data, again.len, b.data, b.len);
		}
	}
	tz_free(arena);
	tz_buf_release(&b);
	tz_buf_release(&again);
	return ok;
}

static void prop_keys(void)
{
	static uint8_t pool[TZ_KEY_MAX_COLUMNS][GEN_BYTES];
	tz_value v[TZ_KEY_MAX_COLUMNS];
	size_t bad = 0, bad_mut = 0, accepted = 0, bytes = 0;
	double t0 = now();

	for (size_t k = 0; k < PROP_KEYS; k++) {
		size_t n = 1 + rnd_below(rnd_below(2) ? 2 : TZ_KEY_MAX_COLUMNS);

		for (size_t i = 0; i < n; i++)
			v[i] = rnd_value((tz_vtype)(1 + rnd_below(5)), pool[i]);
		if (!key_round_trip(v, n, &bytes) && bad++ == 0)
			printf("# first key failure: %s\n", tz_error_last());
		bad_mut += !key_mutant(v, n, &accepted);
	}
	printf("# %d random keys, %zu bytes, %zu of %d mutants accepted, %.2f s\n", PROP_KEYS,
	       bytes, accepted, PROP_KEYS, now() - t0);
	CHECK(bad == 0, "property: random keys are safe names and round-trip (%zu failed)", bad);
	CHECK(bad_mut == 0, "property: a mutated key is refused or canonical (%zu not)", bad_mut);
}

/* The naive definition: the first p in 1..17 that reads back. */
static size_t naive_real(char out[32], double d)
{
	for (int p = 1; p <= 17; p++) {
		int n = snprintf(out, 32, "%.*g", p, d);

		if (strtod(out, NULL) == d && signbit(strtod(out, NULL)) == signbit(d))
			return (size_t)n;
	}
	return 0;
}

static void prop_reals(void)
{
	char a[32], b[32];
	size_t bad = 0, total = PROP_REALS + PROP_DECIMALS;
	double t0 = now();

	for (size_t i = 0; i < total; i++) {
		uint64_t bits = rnd();
		double d;

		if (i < PROP_REALS) {
			if (i % 8 == 0)   /* subnormals too */
				bits &= 0x800fffffffffffffULL;
			memcpy(&d, &bits, sizeof(d));
		} else {
			d = (double)(int64_t)(bits % 20000001 - 10000000) /
			    p10[rnd_below(25)] * (rnd_below(8) ? 1 : 1e-300);
		}
		if (!isfinite(d))
			continue;
		if (tz_real_format(a, d) != naive_real(b, d) || strcmp(a, b) != 0) {
			if (bad++ == 0)
				printf("# first difference: fast '%s', naive '%s'\n", a, b);
		}
	}
	printf("# %zu reals compared with the naive search, %.2f s\n", total, now() - t0);
	CHECK(bad == 0, "property: the shortest real format equals the naive p = 1..17 search "
	      "(%zu differ)", bad);
}

/* Half the time, names of plain letters (no escapes: the text path),
 * duplicates dropped.  The names live in the pool rnd_row filled. */
static size_t plain_names(tz_column *cols, size_t n)
{
	size_t keep = 0;

	if (rnd_below(2))
		return n;
	for (size_t i = 0; i < n; i++) {
		bool dup = false;
		for (size_t k = 0; k < cols[i].name_len; k++)
			((uint8_t *)(uintptr_t)cols[i].name)[k] = (uint8_t)"abc"[((const uint8_t *)cols[i].name)[k] % 3];
		for (size_t k = 0; k < keep; k++)
			dup |= col_cmp(&cols[k], &cols[i]) == 0;
		if (!dup)
			cols[keep++] = cols[i];
	}
	return keep;
}

/* tz_row_patch against decoding, changing and encoding again: random
 * rows and patches whose names collide with the row's often (the small
 * alphabet of rnd_row), some of which need escapes (tz_row_patch leaves
 * those to the decoder), and columns to remove that the row lacks. */
#define PROP_PATCHES 30000
static void prop_patch(void)
{
	static uint8_t pool[GEN_COLS][2][GEN_BYTES], pool2[GEN_COLS][2][GEN_BYTES];
	tz_column old[GEN_COLS], cand[GEN_COLS], set[GEN_COLS], rem[GEN_COLS], ref[2 * GEN_COLS];
	tz_buf enc = TZ_BUF_INIT, got = TZ_BUF_INIT, want = TZ_BUF_INIT;
	size_t fast = 0, other = 0, wrong = 0, appended = 0, lacking = 0, lacking_fast = 0;

	for (size_t r = 0; r < PROP_PATCHES; r++) {
		size_t n = plain_names(old, rnd_row(old, pool)), m = plain_names(cand, rnd_row(cand, pool2));
		size_t ns = 0, nr = 0, nref = 0;
		bool bogus = false;
		int rc;

		tz_buf_clear(&enc);
		if (tz_row_encode(&enc, old, n) != TZ_OK)
			continue;
		qsort(old, n, sizeof(old[0]), col_cmp);
		qsort(cand, m, sizeof(cand[0]), col_cmp);
		for (size_t i = 0; i < m; i++)
			if (rnd_below(2))
				set[ns++] = cand[i];
		for (size_t i = 0; i < n; i++) {
			bool in_set = false;
			for (size_t k = 0; k < ns; k++)
				in_set |= col_cmp(&set[k], &old[i]) == 0;
			if (!in_set && rnd_below(3) == 0)
				rem[nr++] = old[i];
		}
		/* now and then a column to remove that the row lacks */
		if (rnd_below(8) == 0 && m > 0) {
			bool has = false;
			for (size_t i = 0; i < n; i++)
				has |= col_cmp(&old[i], &cand[0]) == 0;
			for (size_t k = 0; k < ns; k++)
				has |= col_cmp(&set[k], &cand[0]) == 0;
			if (!has) {
				rem[nr++] = cand[0];
				qsort(rem, nr, sizeof(rem[0]), col_cmp);
				bogus = true;
				lacking++;
			}
		}
		/* the reference: the row's columns less rem, then set on top */
		for (size_t i = 0; i < n; i++) {
			bool gone = false;
			for (size_t k = 0; k < nr; k++)
				gone |= col_cmp(&rem[k], &old[i]) == 0;
			for (size_t k = 0; k < ns; k++)
				gone |= col_cmp(&set[k], &old[i]) == 0;
			if (!gone)
				ref[nref++] = old[i];
		}
		for (size_t k = 0; k < ns; k++)
			ref[nref++] = set[k];
		tz_buf_clear(&want);
		tz_buf_clear(&got);
		tz_buf_puts(&got, "x");   /* appended after what is there */
		rc = tz_row_patch(&got, enc.data, enc.len, set, ns, rem, nr);
		if (rc == 1) {
			other++;
			appended += got.len != 1;
			continue;
		}
		fast++;
		lacking_fast += bogus;
		if (rc != TZ_OK || tz_row_encode(&want, ref, nref) != TZ_OK ||
		    !same_bytes(got.data + 1, got.len - 1, (const char *)want.data, want.len))
			wrong++;
	}
	tz_buf_release(&enc);
	tz_buf_release(&got);
	tz_buf_release(&want);
	printf("# %d patches: %zu as text, %zu left to decode and encode (%zu removing a column the row lacks)\n",
	       PROP_PATCHES, fast, other, lacking);
	CHECK(wrong == 0, "property: a patch as text gives the bytes decoding, changing and encoding give (%zu differ)",
	      wrong);
	CHECK(appended == 0, "property: a patch left to the decoder appends nothing (%zu did)", appended);
	CHECK(lacking_fast == 0 && lacking > 0, "property: removing a column the row lacks is left to the decoder "
	      "(%zu of %zu were not)", lacking_fast, lacking);
	CHECK(fast > PROP_PATCHES / 10, "property: many patches are done as text (%zu)", fast);
}

static void test_patch_examples(void)
{
	static const char old[] = "a t x\nb i 1\nd n\n";
	tz_column set[2] = { { "b", 1, { TZ_VINT, 2, 0, NULL, 0 } }, { "c", 1, { TZ_VTEXT, 0, 0, (const uint8_t *)"y z", 3 } } };
	tz_column rem[1] = { { "d", 1, { TZ_VNULL, 0, 0, NULL, 0 } } };
	tz_column esc[1] = { { "b c", 3, { TZ_VINT, 1, 0, NULL, 0 } } };
	tz_buf b = TZ_BUF_INIT;
	static const char want[] = "a t x\nb i 2\nc t y z\n";

	CHECK(tz_row_patch(&b, (const uint8_t *)old, sizeof(old) - 1, set, 2, rem, 1) == TZ_OK &&
	      same_bytes(b.data, b.len, want, sizeof(want) - 1), "a patch as text: a line kept, one replaced, one added, one removed");
	tz_buf_clear(&b);
	CHECK(tz_row_patch(&b, (const uint8_t *)old, sizeof(old) - 1, set + 1, 1, set, 1) == TZ_OK &&
	      same_bytes(b.data, b.len, "a t x\nc t y z\nd n\n", 18), "removing b and adding c");
	tz_buf_clear(&b);
	CHECK(tz_row_patch(&b, (const uint8_t *)old, sizeof(old) - 1, esc, 1, NULL, 0) == 1 && b.len == 0,
	      "a name that needs an escape is left to the decoder");
	CHECK(tz_row_patch(&b, (const uint8_t *)old, sizeof(old) - 1, NULL, 0, set + 1, 1) == 1 && b.len == 0,
	      "removing a column the row lacks is left to the decoder");
	CHECK(tz_row_patch(&b, (const uint8_t *)"a t x", 5, set, 1, NULL, 0) == 1 && b.len == 0,
	      "bytes that are no row (no newline) are left to the decoder");
	CHECK(tz_row_patch(&b, (const uint8_t *)old, sizeof(old) - 1, (tz_column[]){ set[1], set[0] }, 2, NULL, 0) == 1 &&
	      b.len == 0, "columns out of order are left to the encoder");
	tz_buf_release(&b);
}

int main(void)
{
	const char *env = getenv("TZ_TEST_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x7a7a6d756eULL;

	rng_state = seed;
	printf("# seed %llu (TZ_TEST_SEED=%llu replays it)\n", (unsigned long long)seed,
	       (unsigned long long)seed);
	test_integers();
	test_reals();
	test_text();
	test_escapes_at_every_position();
	test_blob_null_names();
	test_sort_order();
	test_agency_row();
	test_encode_errors();
	test_reject_structure();
	test_reject_numbers();
	test_reject_text();
	test_reject_blob_limits();
	test_decode_edges();
	test_format();
	test_value_cmp();
	test_locale();
	test_key_examples();
	test_key_encode_errors();
	test_key_reject();
	test_key_no_arena();
	test_alloc_faults();
	test_patch_examples();
	prop_rows();
	prop_patch();
	prop_keys();
	prop_reals();
	return tz_test_done();
}

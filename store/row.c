/*
 * row.c - typed values and the canonical row encoding (tz_row.h; the
 * format is specified in docs/row-format.md; key names are in key.c).
 *
 * A row blob is one line per column, sorted by name bytewise:
 *
 *     <name> n\n                 NULL
 *     <name> i <decimal>\n       integer
 *     <name> r <shortest real>\n real
 *     <name> t <escaped text>\n  text
 *     <name> b <base64>\n        blob
 *
 * Invariant: the encoding is a function of the values, and the decoder
 * accepts exactly the image of the encoder.  The decoder gets there the
 * simple way: every piece it decodes (name, number, text, base64) is
 * encoded again and compared byte for byte with what it read, so there is
 * one definition of "canonical" (the encoder) and no second grammar to
 * drift from it.
 *
 * Text escaping: a byte is written as is when it is part of a valid UTF-8
 * sequence (no overlong forms, no surrogates, nothing past U+10FFFF) of a
 * code point that is not a control (U+0000-U+001F, U+007F-U+009F) and is
 * not a backslash; in names the space is escaped too, because the space
 * ends the name.  Everything else is \\, \n, \t, \r or \xHH (lower case).
 *
 * Reals are formatted with "%.{p}g" for the smallest p in 1..17 that reads
 * back to the same bits, always in the C locale (a decimal comma must never
 * reach the history, whatever locale the embedding program set).
 */
#include "store/tz_row.h"
#include "store/store_int.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/tz_keys.h"

/* An encoded name is at most 4 bytes per name byte ("\xHH"), so a longer
 * name field cannot be the encoding of a name within TZ_ROW_MAX_NAME. */
#define NAME_FIELD_MAX (4 * TZ_ROW_MAX_NAME)

static const char hex_lower[] = "0123456789abcdef";

/* ---- C locale for number formatting ---- */

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_init(void)
{
	/* glibc returns its static C locale object here, without allocating. */
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* Switch this thread to the C locale; returns the locale to restore, or
 * (locale_t)0 when none could be made (the thread's locale is then used). */
static locale_t c_locale_enter(void)
{
	pthread_once(&c_locale_once, c_locale_init);
	return c_locale ? uselocale(c_locale) : (locale_t)0;
}

static void c_locale_leave(locale_t old)
{
	if (old)
		uselocale(old);
}

/* ---- reals ---- */

/* Format d with p significant digits; the length when it reads back to the
 * same bits, else 0. */
static size_t try_digits(char out[32], double d, int p)
{
	int n = snprintf(out, 32, "%.*g", p, d);
	double back;

	if (n <= 0 || n >= 32)
		return 0;
	back = strtod(out, NULL);
	return memcmp(&back, &d, sizeof(d)) == 0 ? (size_t)n : 0;
}

/*
 * Shortest round-trip form of a finite d.  Naively p = 1, 2, ..., 17; this
 * finds the same p with fewer tries.  For p <= 15 the round trip is
 * monotone in p: if p digits read back to d, the p-digit decimal D is
 * within half an ulp of d, and (for a normal d) 15-digit decimals are
 * spaced wider than an ulp, so D is the nearest q-digit decimal for every
 * q in p..15 and "%.{q}g" prints D again; for a subnormal d the nearest
 * q-digit decimal is no farther than D and the rounding interval is
 * symmetric, so it reads back too.  Hence: if 15 digits fail, every p < 15
 * fails (try 16, then 17, which always works); otherwise bisect 1..15.
 * tests/unit/test_row.c checks this against the naive search.
 */
static size_t shortest_finite(char out[32], double d)
{
	int lo = 1, hi = 15;
	size_t n;

	if (try_digits(out, d, 15) == 0) {
		if ((n = try_digits(out, d, 16)) > 0)
			return n;
		n = try_digits(out, d, 17);
		return n > 0 ? n : (size_t)snprintf(out, 32, "%.17g", d);
	}
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (try_digits(out, d, mid) > 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	n = try_digits(out, d, lo);
	return n > 0 ? n : try_digits(out, d, 15);
}

/* See tz_row.h.  NaN, which no encoding accepts, is written "nan" so that
 * a diagnostic can still show it. */
size_t tz_real_format(char out[32], double d)
{
	locale_t old;
	size_t n;

	if (isnan(d)) {
		memcpy(out, "nan", 4);
		return 3;
	}
	if (isinf(d)) {
		memcpy(out, d < 0 ? "-inf" : "inf", d < 0 ? 5 : 4);
		return d < 0 ? 4 : 3;
	}
	old = c_locale_enter();
	n = shortest_finite(out, d);
	c_locale_leave(old);
	return n;
}

/* Parse the canonical text of a real (s[0..n), not NUL-terminated).
 * 0 and *out set when s is exactly tz_real_format's output; -1 when it is
 * not; -2 when it spells a NaN. */
int tz_row__parse_real(double *out, const uint8_t *s, size_t n)
{
	char in[32], again[32];
	char *end;
	locale_t old;
	double d;

	*out = 0;
	if (n == 0 || n > TZ_ROW__REAL_TEXT_MAX || memchr(s, '\0', n) != NULL)
		return -1;
	memcpy(in, s, n);
	in[n] = '\0';
	old = c_locale_enter();
	d = strtod(in, &end);
	c_locale_leave(old);
	if (end != in + n)
		return -1;
	if (isnan(d))
		return -2;
	if (tz_real_format(again, d) != n || memcmp(again, in, n) != 0)
		return -1;
	*out = d;
	return 0;
}

/* ---- integers ---- */

/* Decimal form of v into out (no NUL); returns the length (at most 20). */
size_t tz_row__format_i64(char out[21], int64_t v)
{
	char tmp[20];
	uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	size_t n = 0, k = 0;

	do {
		tmp[n++] = (char)('0' + m % 10);
		m /= 10;
	} while (m != 0);
	if (v < 0)
		out[k++] = '-';
	while (n > 0)
		out[k++] = tmp[--n];
	return k;
}

/* Parse "0" or -?[1-9][0-9]* within int64.  0 on success; -1 when the
 * text is not canonical; -2 when it is out of range. */
int tz_row__parse_i64(int64_t *out, const uint8_t *s, size_t n)
{
	bool neg = n > 0 && s[0] == '-';
	uint64_t m = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	size_t i = neg ? 1 : 0;

	*out = 0;
	if (i == n || s[i] < '0' || s[i] > '9' || (s[i] == '0' && (neg || n > 1)))
		return -1;
	for (; i < n; i++) {
		unsigned dgt;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		dgt = (unsigned)(s[i] - '0');
		if (m > (limit - dgt) / 10)
			return -2;
		m = m * 10 + dgt;
	}
	/* -(2^63) has no positive counterpart; go through unsigned arithmetic */
	*out = neg ? (int64_t)(0 - m) : (int64_t)m;
	return 0;
}

/* ---- text escaping ---- */

/* Length of the valid UTF-8 sequence of a non-ASCII code point at p, or 0
 * (Unicode 15, table 3-7: no overlong forms, no surrogates, <= U+10FFFF). */
static size_t utf8_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0], lo = 0x80, hi = 0xBF;
	size_t len;

	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		lo = c == 0xE0 ? 0xA0 : 0x80;
		hi = c == 0xED ? 0x9F : 0xBF;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		lo = c == 0xF0 ? 0x90 : 0x80;
		hi = c == 0xF4 ? 0x8F : 0xBF;
	} else {
		return 0;
	}
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

/* How many bytes at p are written as is, as one unit (0: escape p[0]). */
static size_t literal_len(const uint8_t *p, size_t n, bool name)
{
	uint8_t c = p[0];

	if (c < 0x80)
		return c >= 0x20 && c != 0x7F && c != '\\' && !(name && c == ' ') ? 1 : 0;
	/* C1 controls (U+0080-U+009F, C2 80-C2 9F) are escaped like C0 ones:
	 * U+009B alone can drive a terminal that `git show` prints to. */
	if (c == 0xC2 && n >= 2 && p[1] < 0xA0)
		return 0;
	return utf8_len(p, n);
}

/* How many bytes of s[0..n) are characters written as themselves, from
 * the start: all of them for most texts, which then need no unescaping
 * and are canonical as they are. */
/* Does any byte of x equal a byte of `c` (a byte repeated eight times)?
 * Exact for bytes below 0x80, the only ones asked about. */
static inline bool swar_has(uint64_t x, uint64_t c)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	uint64_t v = x ^ c;

	return ((v - ones) & ~v & highs) != 0;
}

/* Is any of the eight bytes at p not a character written as itself in
 * ASCII (>= 0x80, a control, DEL, a backslash, a name's space)? */
static inline bool swar_stops(const uint8_t *p, bool name)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	uint64_t x;

	memcpy(&x, p, sizeof(x));
	if ((x & highs) != 0 || ((x - 0x20 * ones) & ~x & highs) != 0)
		return true;   /* a byte >= 0x80, or one below 0x20 */
	return swar_has(x, 0x7F * ones) || swar_has(x, '\\' * ones) || (name && swar_has(x, ' ' * ones));
}

static size_t literal_prefix(const uint8_t *s, size_t n, bool name)
{
	size_t i = 0, k;

	while (i < n) {
		uint8_t c = s[i];
		if (c >= 0x20 && c < 0x7F && c != '\\' && !(name && c == ' ')) {
			i++;
			/* a run of ASCII goes eight bytes a test: long texts
			 * (notes) gain; the agency day's short values, little
			 * (-0.6% of its import, callgrind) */
			while (n - i >= 8 && !swar_stops(s + i, name))
				i += 8;
			continue;
		}
		if (c < 0x80 || (k = literal_len(s + i, n - i, name)) == 0)
			break;
		i += k;
	}
	return i;
}

/* The escape of byte c into e; returns its length (2 or 4). */
static size_t escape_byte(char e[4], uint8_t c)
{
	e[0] = '\\';
	switch (c) {
	case '\\': e[1] = '\\'; return 2;
	case '\n': e[1] = 'n'; return 2;
	case '\t': e[1] = 't'; return 2;
	case '\r': e[1] = 'r'; return 2;
	default:
		e[1] = 'x';
		e[2] = hex_lower[c >> 4];
		e[3] = hex_lower[c & 15];
		return 4;
	}
}

/* Append the escaped form of p[0..n) (names also escape the space). */
static void put_escaped(tz_buf *out, const uint8_t *p, size_t n, bool name)
{
	size_t i = 0, run;
	char e[4];

	while (i < n) {
		run = i + literal_prefix(p + i, n - i, name);
		if (run > i) {
			tz_buf_put(out, p + i, run - i);
			i = run;
			continue;
		}
		tz_buf_put(out, e, escape_byte(e, p[i]));
		i++;
	}
}

/* Length of the escaped form of p[0..n). */
static size_t escaped_len(const uint8_t *p, size_t n, bool name)
{
	size_t i = 0, len = 0, k;
	char e[4];

	while (i < n) {
		if ((k = literal_len(p + i, n - i, name)) > 0) {
			len += k;
			i += k;
		} else {
			len += escape_byte(e, p[i]);
			i++;
		}
	}
	return len;
}

/* True when enc[0..elen) is exactly the escaped form of raw[0..n). */
static bool escaped_equals(const uint8_t *enc, size_t elen, const uint8_t *raw, size_t n,
			   bool name)
{
	size_t i = 0, at = 0, k;
	char e[4];

	while (i < n) {
		const void *want = raw + i;

		if ((k = literal_len(raw + i, n - i, name)) == 0) {
			k = escape_byte(e, raw[i]);
			want = e;
		}
		if (elen - at < k || memcmp(enc + at, want, k) != 0)
			return false;
		at += k;
		i += want == e ? 1 : k;
	}
	return at == elen;
}

int tz_row__hex_digit(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Undo the escapes of s[0..n) into dst (which holds n bytes); 0 and
 * *dlen, or -1 on a malformed escape.  Any escape is accepted here; the
 * caller compares with escaped_equals to refuse the ones the encoder
 * would not have written. */
static int unescape(uint8_t *dst, size_t *dlen, const uint8_t *s, size_t n)
{
	size_t i = 0, k = 0;
	int h, l;

	*dlen = 0;
	while (i < n) {
		if (s[i] != '\\') {
			dst[k++] = s[i++];
			continue;
		}
		if (i + 1 == n)
			return -1;
		switch (s[i + 1]) {
		case '\\': dst[k++] = '\\'; break;
		case 'n': dst[k++] = '\n'; break;
		case 't': dst[k++] = '\t'; break;
		case 'r': dst[k++] = '\r'; break;
		case 'x':
			if (n - i < 4 || (h = tz_row__hex_digit(s[i + 2])) < 0 || (l = tz_row__hex_digit(s[i + 3])) < 0)
				return -1;
			dst[k++] = (uint8_t)(h << 4 | l);
			i += 2;
			break;
		default:
			return -1;
		}
		i += 2;
	}
	*dlen = k;
	return 0;
}

/* A printable, escaped and shortened copy of p[0..n) for a message. */
const char *tz_row__quote(char out[4 * TZ_ROW__QUOTE_MAX + 4], const uint8_t *p, size_t n)
{
	size_t i = 0, k = 0, lit;
	char e[4];

	while (i < n && i < TZ_ROW__QUOTE_MAX) {
		if ((lit = literal_len(p + i, n - i, false)) > 0) {
			memcpy(out + k, p + i, lit);
			k += lit;
			i += lit;
		} else {
			lit = escape_byte(e, p[i]);
			memcpy(out + k, e, lit);
			k += lit;
			i++;
		}
	}
	if (i < n) {
		memcpy(out + k, "...", 3);
		k += 3;
	}
	out[k] = '\0';
	return out;
}

/* ---- values ---- */

/* See tz_row.h.  NULL appends nothing; an unknown type sets TZ_EINVAL on
 * `out`. */
void tz_value_format(tz_buf *out, const tz_value *v)
{
	char num[32];

	switch (v->type) {
	case TZ_VINT:
		tz_buf_put(out, num, tz_row__format_i64(num, v->i));
		break;
	case TZ_VREAL:
		tz_buf_put(out, num, tz_real_format(num, v->r));
		break;
	case TZ_VTEXT:
		put_escaped(out, v->p, v->n, false);
		break;
	case TZ_VBLOB:
		tz_base64_put(out, v->p, v->n);
		break;
	case TZ_VNULL:
		break;
	default:
		if (out->err == TZ_OK)
			out->err = tz_error_set(TZ_EINVAL, "unknown value type %d", (int)v->type);
	}
}

static int cmp_bytes(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	size_t n = an < bn ? an : bn;
	int c = n ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c < 0 ? -1 : 1;
	return an < bn ? -1 : an > bn;
}

/* See tz_row.h.  A total order: by type, then integers numerically, reals
 * numerically (-0 before +0, ties and NaNs by bit pattern), text and blobs
 * bytewise with the shorter first on a common prefix.  Returns -1, 0, 1. */
int tz_value_cmp(const tz_value *a, const tz_value *b)
{
	uint64_t x, y;

	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	switch (a->type) {
	case TZ_VINT:
		return a->i < b->i ? -1 : a->i > b->i;
	case TZ_VREAL:
		if (a->r < b->r)
			return -1;
		if (a->r > b->r)
			return 1;
		memcpy(&x, &a->r, sizeof(x));
		memcpy(&y, &b->r, sizeof(y));
		/* equal values differ only as -0/+0 (or are NaNs): the sign first */
		if ((x >> 63) != (y >> 63))
			return x >> 63 ? -1 : 1;
		return x < y ? -1 : x > y;
	case TZ_VTEXT:
	case TZ_VBLOB:
		return cmp_bytes(a->p, a->n, b->p, b->n);
	default:
		return 0;
	}
}

/* ---- row encoding ---- */

static int name_cmp(const tz_column *a, const tz_column *b)
{
	return cmp_bytes((const uint8_t *)a->name, a->name_len,
			 (const uint8_t *)b->name, b->name_len);
}

static int name_cmp_qsort(const void *a, const void *b)
{
	return name_cmp(*(const tz_column *const *)a, *(const tz_column *const *)b);
}

char tz_row__type_tag(tz_vtype t)
{
	static const char tags[] = "?irtbn";   /* indexed by tz_vtype */

	return t >= TZ_VINT && t <= TZ_VNULL ? tags[t] : '?';
}

/* Refuse what no row may hold, before anything is written. */
static int check_column(const tz_column *c)
{
	char q[4 * TZ_ROW__QUOTE_MAX + 4];
	const char *why;

	if (c->name_len == 0 || c->name == NULL)
		return tz_error_set(TZ_EINVAL, "cannot encode row: empty column name");
	if (c->name_len > TZ_ROW_MAX_NAME)
		return tz_error_set(TZ_ELIMIT, "cannot encode row: column name of %zu bytes exceeds "
				    "the limit of %d", c->name_len, TZ_ROW_MAX_NAME);
	if (tz_row__type_tag(c->v.type) == '?')
		why = "has an unknown type";
	else if (c->v.type == TZ_VREAL && isnan(c->v.r))
		why = "is nan";
	else if ((c->v.type == TZ_VTEXT || c->v.type == TZ_VBLOB) && c->v.p == NULL && c->v.n > 0)
		why = "has no bytes";
	else
		return TZ_OK;
	return tz_error_set(TZ_EINVAL, "cannot encode row: column '%s' %s",
			    tz_row__quote(q, (const uint8_t *)c->name, c->name_len), why);
}

/* Bytes the line of c takes: exact, or a cheap upper bound when !exact.
 * Saturates at SIZE_MAX. */
static size_t line_len(const tz_column *c, bool exact)
{
	const tz_value *v = &c->v;
	size_t len = 0, val = 0;
	char num[32];

	/* past the limit anyway; keeps 4 * n below from overflowing */
	if ((v->type == TZ_VTEXT || v->type == TZ_VBLOB) && v->n > TZ_ROW_MAX_BYTES)
		return SIZE_MAX;
	switch (v->type) {
	case TZ_VINT: val = tz_row__format_i64(num, v->i); break;
	case TZ_VREAL: val = exact ? tz_real_format(num, v->r) : 24; break;
	case TZ_VTEXT: val = exact ? escaped_len(v->p, v->n, false) : 4 * v->n; break;
	case TZ_VBLOB: val = (v->n + 2) / 3 * 4; break;   /* padded base64 */
	default: break;
	}
	len = exact ? escaped_len((const uint8_t *)c->name, c->name_len, true) : 4 * c->name_len;
	/* " x" after the name, " value" unless NULL, and the newline */
	return len + 2 + (v->type == TZ_VNULL ? 0 : 1 + val) + 1;
}

/* Lengths are summed in size_t: 4 bytes per byte of a value of at most
 * TZ_ROW_MAX_BYTES must fit. */
_Static_assert(SIZE_MAX / 8 > TZ_ROW_MAX_BYTES, "row length arithmetic needs a 64-bit size_t");

/* Check the total size of the sorted columns against TZ_ROW_MAX_BYTES. */
static int check_row_size(const tz_column *const *sorted, size_t ncols)
{
	size_t total = 0, sum;
	bool exact = false;

again:
	for (size_t i = 0; i < ncols; i++) {
		if (tz_size_add(&sum, total, line_len(sorted[i], exact)) < 0 ||
		    sum > TZ_ROW_MAX_BYTES) {
			if (exact)
				return tz_error_set(TZ_ELIMIT, "cannot encode row: more than %zu bytes",
						    TZ_ROW_MAX_BYTES);
			/* the bound is too coarse to decide: measure exactly */
			exact = true;
			total = 0;
			goto again;
		}
		total = sum;
	}
	return TZ_OK;
}

static void put_line(tz_buf *out, const tz_column *c)
{
	put_escaped(out, (const uint8_t *)c->name, c->name_len, true);
	tz_buf_putc(out, ' ');
	tz_buf_putc(out, (uint8_t)tz_row__type_tag(c->v.type));
	if (c->v.type != TZ_VNULL) {
		tz_buf_putc(out, ' ');
		tz_value_format(out, &c->v);
	}
	tz_buf_putc(out, '\n');
}

/* Point sorted[] at the columns in name order; TZ_EINVAL on a duplicate. */
static int sort_columns(const tz_column **sorted, const tz_column *cols, size_t ncols)
{
	char q[4 * TZ_ROW__QUOTE_MAX + 4];
	bool in_order = true;

	for (size_t i = 0; i < ncols; i++) {
		sorted[i] = &cols[i];
		if (i > 0 && name_cmp(&cols[i - 1], &cols[i]) >= 0)
			in_order = false;
	}
	if (in_order)
		return TZ_OK;
	qsort(sorted, ncols, sizeof(*sorted), name_cmp_qsort);
	for (size_t i = 1; i < ncols; i++)
		if (name_cmp(sorted[i - 1], sorted[i]) == 0)
			return tz_error_set(TZ_EINVAL, "cannot encode row: duplicate column '%s'",
					    tz_row__quote(q, (const uint8_t *)sorted[i]->name,
						  sorted[i]->name_len));
	return TZ_OK;
}

/* See tz_row.h.  Nothing is appended on failure, except what tz_buf itself
 * wrote before running out of memory or past its own bound. */
int tz_row_encode(tz_buf *out, const tz_column *cols, size_t ncols)
{
	const tz_column **sorted = NULL;
	int rc = TZ_OK;

	if (out->err != TZ_OK)
		return out->err;
	if (ncols > TZ_ROW_MAX_COLUMNS) {
		rc = tz_error_set(TZ_ELIMIT, "cannot encode row: %zu columns exceed the limit of %d",
				  ncols, TZ_ROW_MAX_COLUMNS);
		goto done;
	}
	if (ncols == 0)
		goto done;
	if (cols == NULL) {
		rc = tz_error_set(TZ_EINVAL, "cannot encode row: no columns given");
		goto done;
	}
	for (size_t i = 0; i < ncols; i++)
		if ((rc = check_column(&cols[i])) < 0)
			goto done;
	if ((sorted = tz_calloc(ncols, sizeof(*sorted))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	if ((rc = sort_columns(sorted, cols, ncols)) < 0 ||
	    (rc = check_row_size(sorted, ncols)) < 0)
		goto done;
	for (size_t i = 0; i < ncols; i++)
		put_line(out, sorted[i]);
	rc = tz_buf_error(out);
done:
	tz_free(sorted);
	if (rc < 0 && out->err == TZ_OK)
		out->err = rc;
	return rc;
}

/* Does `name` need no escape (its line holds it as it is)? */
static bool plain_name(const char *name, size_t n)
{
	return n > 0 && literal_prefix((const uint8_t *)name, n, true) == n;
}

int tz_row_patch(tz_buf *out, const uint8_t *old, size_t n, const tz_column *set, size_t nset,
		 const tz_column *rem, size_t nrem)
{
	const uint8_t *p = old, *end = old + n;
	size_t start = out->len, si = 0, ri = 0, ncols = 0;

	for (size_t i = 0; i < nset; i++)
		if (!plain_name(set[i].name, set[i].name_len) || check_column(&set[i]) < 0 ||
		    (i > 0 && name_cmp(&set[i - 1], &set[i]) >= 0))
			goto other;
	for (size_t i = 0; i < nrem; i++)
		if (!plain_name(rem[i].name, rem[i].name_len) || (i > 0 && name_cmp(&rem[i - 1], &rem[i]) >= 0))
			goto other;
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p)), *sp;
		tz_column line = { NULL, 0, { TZ_VNULL, 0, 0, NULL, 0 } };
		bool removed;
		int c = 1;

		if (nl == NULL || (sp = memchr(p, ' ', (size_t)(nl - p))) == NULL || memchr(p, '\\', (size_t)(sp - p)))
			goto other;   /* a name with escapes: compared unescaped, by the decoder */
		line.name = (const char *)p;
		line.name_len = (size_t)(sp - p);
		/* the columns set before this line's: new columns */
		while (si < nset && (c = name_cmp(&set[si], &line)) < 0) {
			put_line(out, &set[si++]);
			ncols++;
		}
		if (si == nset)
			c = 1;
		if (ri < nrem && name_cmp(&rem[ri], &line) < 0)
			goto other;   /* a column to remove that the row lacks */
		if ((removed = ri < nrem && name_cmp(&rem[ri], &line) == 0))
			ri++;
		if (c == 0) {
			put_line(out, &set[si++]);   /* its new value */
			ncols++;
		} else if (!removed) {
			tz_buf_put(out, p, (size_t)(nl - p) + 1);   /* as it was */
			ncols++;
		}
		p = nl + 1;
	}
	if (ri < nrem)
		goto other;
	for (; si < nset; si++, ncols++)
		put_line(out, &set[si]);
	if (ncols > TZ_ROW_MAX_COLUMNS || out->len - start > TZ_ROW_MAX_BYTES)
		goto other;
	return tz_buf_error(out);
other:
	if (out->err == TZ_OK)
		out->len = start;
	return out->err != TZ_OK ? out->err : 1;
}

/* ---- row decoding ---- */

/* State of one decode: the arena is filled front to back; every decoded
 * piece is no longer than its encoding, so `len` arena bytes suffice. */
typedef struct {
	uint8_t *at;      /* next free arena byte */
	size_t line;      /* 1-based, for messages */
} decoder;

static int bad_line(const decoder *d, const char *what)
{
	return tz_error_set(TZ_ECORRUPT, "row line %zu: %s", d->line, what);
}

static int non_canonical(const decoder *d)
{
	return tz_error_set(TZ_ECORRUPT, "non-canonical row encoding at line %zu", d->line);
}

/* Decode escaped text into the arena; it must be in canonical form. */
static int decode_text(decoder *d, const uint8_t **p_out, size_t *n_out,
		       const uint8_t *s, size_t n, bool name)
{
	size_t k;

	*p_out = d->at;
	*n_out = 0;
	if (literal_prefix(s, n, name) == n) {
		/* nothing escaped (the decoding of 7,821 rows at HQ spent 17%
		 * of an import unescaping and re-escaping to compare) */
		if (name && n > TZ_ROW_MAX_NAME)
			return tz_error_set(TZ_ELIMIT, "row line %zu: column name longer than %d bytes",
					    d->line, TZ_ROW_MAX_NAME);
		memcpy(d->at, s, n);
		d->at += n;
		*n_out = n;
		return TZ_OK;
	}
	if (unescape(d->at, &k, s, n) < 0)
		return bad_line(d, name ? "bad escape in column name" : "bad escape in text");
	if (name && k > TZ_ROW_MAX_NAME)
		return tz_error_set(TZ_ELIMIT, "row line %zu: column name longer than %d bytes",
				    d->line, TZ_ROW_MAX_NAME);
	if (!escaped_equals(s, n, d->at, k, name))
		return non_canonical(d);
	d->at += k;
	*n_out = k;
	return TZ_OK;
}

static int decode_blob(decoder *d, tz_value *v, const uint8_t *s, size_t n)
{
	size_t k = 0;

	v->p = d->at;
	if (tz_base64_decode(d->at, n, &k, s, n) < 0)
		return bad_line(d, "bad base64");
	if (!tz_base64_is(s, n, d->at, k))
		return non_canonical(d);
	d->at += k;
	v->n = k;
	return TZ_OK;
}

static int decode_number(decoder *d, tz_value *v, const uint8_t *s, size_t n)
{
	char q[4 * TZ_ROW__QUOTE_MAX + 4];
	int r;

	if (v->type == TZ_VINT) {
		if ((r = tz_row__parse_i64(&v->i, s, n)) == -2)
			return tz_error_set(TZ_ECORRUPT, "row line %zu: integer '%s' out of range",
					    d->line, tz_row__quote(q, s, n));
		if (r < 0)
			return tz_error_set(TZ_ECORRUPT, "row line %zu: non-canonical integer '%s'",
					    d->line, tz_row__quote(q, s, n));
		return TZ_OK;
	}
	if ((r = tz_row__parse_real(&v->r, s, n)) == -2)
		return bad_line(d, "nan is not a value");
	if (r < 0)
		return tz_error_set(TZ_ECORRUPT, "row line %zu: non-canonical real '%s'",
				    d->line, tz_row__quote(q, s, n));
	return TZ_OK;
}

/* The part of a line after "<name> ": the tag and the value. */
static int decode_value(decoder *d, tz_value *v, const uint8_t *s, size_t n)
{
	char q[4 * TZ_ROW__QUOTE_MAX + 4];
	const uint8_t *sp = memchr(s, ' ', n);
	size_t tag_len = sp ? (size_t)(sp - s) : n;
	const char *tags = "irtbn", *t;

	memset(v, 0, sizeof(*v));
	if (tag_len == 0)
		return bad_line(d, "missing type tag");
	if (tag_len != 1 || (t = memchr(tags, s[0], 5)) == NULL)
		return tz_error_set(TZ_ECORRUPT, "row line %zu: unknown type tag '%s'", d->line,
				    tz_row__quote(q, s, tag_len));
	v->type = (tz_vtype)(TZ_VINT + (t - tags));
	if (v->type == TZ_VNULL)
		return n == 1 ? TZ_OK : bad_line(d, "null takes no value");
	if (n == 1)
		return bad_line(d, "missing value");
	s += 2;
	n -= 2;
	switch (v->type) {
	case TZ_VTEXT:
		return decode_text(d, &v->p, &v->n, s, n, false);
	case TZ_VBLOB:
		return decode_blob(d, v, s, n);
	default:
		return decode_number(d, v, s, n);
	}
}

static int decode_line(decoder *d, tz_column *c, const uint8_t *s, size_t n)
{
	const uint8_t *sp = memchr(s, ' ', n), *name;
	size_t name_len;
	int rc;

	if (sp == s || n == 0)
		return bad_line(d, "empty column name");
	if (sp == NULL)
		return bad_line(d, "missing type tag");
	if ((size_t)(sp - s) > NAME_FIELD_MAX)
		return tz_error_set(TZ_ELIMIT, "row line %zu: column name longer than %d bytes",
				    d->line, TZ_ROW_MAX_NAME);
	if ((rc = decode_text(d, &name, &name_len, s, (size_t)(sp - s), true)) < 0)
		return rc;
	c->name = (const char *)name;
	c->name_len = name_len;
	return decode_value(d, &c->v, sp + 1, n - (size_t)(sp - s) - 1);
}

/* Size, final newline and column count, before anything is allocated. */
static int check_shape(size_t *nlines, const uint8_t *data, size_t len)
{
	const uint8_t *p = data, *end, *nl;

	*nlines = 0;
	if (len > TZ_ROW_MAX_BYTES)
		return tz_error_set(TZ_ELIMIT, "row of %zu bytes exceeds the limit of %zu",
				    len, TZ_ROW_MAX_BYTES);
	if (len == 0)   /* the row of no columns; data may be NULL */
		return TZ_OK;
	end = data + len;
	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (++*nlines > TZ_ROW_MAX_COLUMNS)
			return tz_error_set(TZ_ELIMIT, "row has more than %d columns",
					    TZ_ROW_MAX_COLUMNS);
		p = nl + 1;
	}
	if (p != end)
		return tz_error_set(TZ_ECORRUPT, "row line %zu: missing final newline",
				    *nlines + 1);
	return TZ_OK;
}

static int check_order(const decoder *d, const tz_column *prev, const tz_column *c)
{
	char q[4 * TZ_ROW__QUOTE_MAX + 4];
	int cmp = name_cmp(prev, c);

	if (cmp < 0)
		return TZ_OK;
	tz_row__quote(q, (const uint8_t *)c->name, c->name_len);
	if (cmp == 0)
		return tz_error_set(TZ_ECORRUPT, "row line %zu: duplicate column '%s'", d->line, q);
	return tz_error_set(TZ_ECORRUPT, "row line %zu: column '%s' out of order", d->line, q);
}

/* See tz_row.h. */
int tz_row_decode(tz_row **out, const uint8_t *data, size_t len)
{
	tz_row *row = NULL;
	decoder d = { NULL, 0 };
	tz_reader r;
	size_t nlines;
	int rc;

	*out = NULL;
	if ((rc = check_shape(&nlines, data, len)) < 0)
		goto done;
	if ((row = tz_calloc(1, sizeof(*row))) == NULL ||
	    (nlines > 0 && (row->cols = tz_calloc(nlines, sizeof(*row->cols))) == NULL) ||
	    (nlines > 0 && (row->arena = tz_malloc(len)) == NULL)) {
		rc = TZ_ENOMEM;
		goto done;
	}
	d.at = row->arena;
	tz_reader_init(&r, data, len);
	for (size_t i = 0; i < nlines; i++) {
		const uint8_t *line;
		size_t n;

		d.line = i + 1;
		/* cannot fail: check_shape saw nlines newlines */
		if ((rc = tz_reader_line(&r, &line, &n, len)) < 0 ||
		    (rc = decode_line(&d, &row->cols[i], line, n)) < 0 ||
		    (i > 0 && (rc = check_order(&d, &row->cols[i - 1], &row->cols[i])) < 0))
			goto done;
	}
	row->ncols = nlines;
	*out = row;
	row = NULL;
	rc = TZ_OK;
done:
	tz_row_free(row);
	return rc;
}

/* See tz_row.h. */
void tz_row_free(tz_row *row)
{
	if (row == NULL)
		return;
	tz_free(row->arena);
	tz_free(row->cols);
	tz_free(row);
}

/* See tz_row.h.  Binary search: the columns are sorted by name. */
const tz_column *tz_row_find(const tz_row *row, const char *name, size_t name_len)
{
	tz_column key;
	size_t lo = 0, hi;

	if (row == NULL)
		return NULL;
	key.name = name;
	key.name_len = name_len;
	hi = row->ncols;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = name_cmp(&row->cols[mid], &key);

		if (c == 0)
			return &row->cols[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool tz_utf8_valid(const uint8_t *p, size_t n)
{
	for (size_t i = 0, l; i < n; i += l) {
		l = p[i] < 0x80 ? 1 : utf8_len(p + i, n - i);
		if (l == 0)
			return false;
	}
	return true;
}

/* Is column `c` of `side` changed against the base value `b` (NULL: the
 * base has no such column, or there is no base row)? */
static bool changed_from(const tz_value *b, const tz_value *v)
{
	return b == NULL || tz_value_cmp(b, v) != 0;
}

int tz_row_merge3(const tz_row *base, const tz_row *ours, const tz_row *theirs, const int *unit,
		  tz_merge3_cb decide, void *payload, tz_buf *out)
{
	size_t n = ours->ncols, *members = NULL;
	const tz_value **tv = NULL, **bv = NULL;
	bool *done = NULL, *pick = NULL;
	tz_column *cols = NULL;
	int rc = TZ_OK;

	if (theirs->ncols != n)
		return tz_error_set(TZ_EINVAL, "the rows to merge have %zu and %zu columns", n, theirs->ncols);
	tv = tz_calloc(n ? n : 1, sizeof(*tv));
	bv = tz_calloc(n ? n : 1, sizeof(*bv));
	done = tz_calloc(n ? n : 1, sizeof(*done));
	pick = tz_calloc(n ? n : 1, sizeof(*pick));
	members = tz_calloc(n ? n : 1, sizeof(*members));
	cols = tz_calloc(n ? n : 1, sizeof(*cols));
	if (!tv || !bv || !done || !pick || !members || !cols) {
		rc = TZ_ENOMEM;
		goto done;
	}
	for (size_t c = 0; c < n; c++) {
		const tz_column *t = tz_row_find(theirs, ours->cols[c].name, ours->cols[c].name_len);
		const tz_column *b = tz_row_find(base, ours->cols[c].name, ours->cols[c].name_len);
		if (t == NULL) {
			rc = tz_error_set(TZ_EINVAL, "the rows to merge have different columns");
			goto done;
		}
		tv[c] = &t->v;
		bv[c] = b ? &b->v : NULL;
	}
	for (size_t c = 0; c < n; c++) {
		size_t nm = 0;
		bool ch_o = false, ch_t = false, same = true, take = false;
		if (done[c])
			continue;
		for (size_t k = c; k < n; k++)
			if (k == c || (unit[c] >= 0 && unit[k] == unit[c]))
				members[nm++] = k;
		for (size_t m = 0; m < nm; m++) {
			size_t k = members[m];
			done[k] = true;
			ch_o |= changed_from(bv[k], &ours->cols[k].v);
			ch_t |= changed_from(bv[k], tv[k]);
			same &= tz_value_cmp(&ours->cols[k].v, tv[k]) == 0;
		}
		if (same || !ch_t)
			take = false;            /* equal, or only ours changed */
		else if (!ch_o)
			take = true;             /* only theirs changed */
		else if ((rc = decide(payload, members, nm, &take)) < 0)
			goto done;               /* both, differently: the caller's rule */
		for (size_t m = 0; m < nm; m++)
			pick[members[m]] = take;
	}
	for (size_t c = 0; c < n; c++) {
		cols[c] = ours->cols[c];
		if (pick[c])
			cols[c].v = *tv[c];
	}
	rc = tz_row_encode(out, cols, n);
done:
	tz_free(tv);
	tz_free(bv);
	tz_free(done);
	tz_free(pick);
	tz_free(members);
	tz_free(cols);
	return rc;
}

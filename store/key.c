/*
 * key.c - a primary key as a file name in the history (tz_key_encode,
 * tz_key_decode; docs/row-format.md, "Keys"): components joined with '+',
 * text as is where it is [A-Za-z0-9_.-] (a leading '.' or '_' escaped),
 * other bytes %XX, other types tagged ~i ~r ~b ~n ~e.  The decoder is
 * strict: it re-encodes what it decoded and compares.
 */
#include "store/tz_row.h"
#include "store/store_int.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower[] = "0123456789abcdef";

/* ---- key encoding ---- */

static bool key_literal(uint8_t c, bool first)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
		return true;
	return (c == '_' || c == '.') && !first;
}

/* Append "%XX" or the byte to dst[*at..cap); false when it does not fit. */
static bool key_put(char *dst, size_t *at, size_t cap, uint8_t c, bool literal)
{
	if (literal) {
		if (cap - *at < 1)
			return false;
		dst[(*at)++] = (char)c;
		return true;
	}
	if (cap - *at < 3)
		return false;
	dst[(*at)++] = '%';
	dst[(*at)++] = hex_upper[c >> 4];
	dst[(*at)++] = hex_upper[c & 15];
	return true;
}

/* Write the "~x" tag and the payload bytes of a tagged component. */
static bool key_put_tagged(char *dst, size_t *at, size_t cap, char tag, const char *s,
			   size_t n)
{
	if (!key_put(dst, at, cap, '~', true) || !key_put(dst, at, cap, (uint8_t)tag, true))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!key_put(dst, at, cap, (uint8_t)s[i], key_literal((uint8_t)s[i], false)))
			return false;
	return true;
}

/* Write the encoding of one component at dst[*at..cap); false when it does
 * not fit.  The value was checked by check_key_value. */
static bool key_put_value(char *dst, size_t *at, size_t cap, const tz_value *v)
{
	char num[32];

	switch (v->type) {
	case TZ_VINT:
		return key_put_tagged(dst, at, cap, 'i', num, tz_row__format_i64(num, v->i));
	case TZ_VREAL:
		return key_put_tagged(dst, at, cap, 'r', num, tz_real_format(num, v->r));
	case TZ_VNULL:
		return key_put_tagged(dst, at, cap, 'n', NULL, 0);
	case TZ_VBLOB:
		if (!key_put_tagged(dst, at, cap, 'b', NULL, 0) || (cap - *at) / 2 < v->n)
			return false;
		for (size_t i = 0; i < v->n; i++) {
			dst[(*at)++] = hex_lower[v->p[i] >> 4];
			dst[(*at)++] = hex_lower[v->p[i] & 15];
		}
		return true;
	default:
		if (v->n == 0)
			return key_put_tagged(dst, at, cap, 'e', NULL, 0);
		for (size_t i = 0; i < v->n; i++)
			if (!key_put(dst, at, cap, v->p[i], key_literal(v->p[i], i == 0)))
				return false;
		return true;
	}
}

static int check_key_value(const tz_value *v, size_t i)
{
	if (tz_row__type_tag(v->type) == '?')
		return tz_error_set(TZ_EINVAL, "cannot encode key: component %zu has unknown type %d",
				    i + 1, (int)v->type);
	if (v->type == TZ_VREAL && isnan(v->r))
		return tz_error_set(TZ_EINVAL, "cannot encode key: component %zu is nan", i + 1);
	if ((v->type == TZ_VTEXT || v->type == TZ_VBLOB) && v->p == NULL && v->n > 0)
		return tz_error_set(TZ_EINVAL, "cannot encode key: component %zu has no bytes",
				    i + 1);
	return TZ_OK;
}

/* Encode the whole key into dst (TZ_KEY_MAX_BYTES); its length in *len. */
static int key_write(char *dst, size_t *len, const tz_value *vals, size_t n)
{
	size_t at = 0;
	int rc;

	*len = 0;
	if (n == 0 || n > TZ_KEY_MAX_COLUMNS)
		return tz_error_set(TZ_EINVAL, "cannot encode key: %zu components (1 to %d allowed)",
				    n, TZ_KEY_MAX_COLUMNS);
	for (size_t i = 0; i < n; i++) {
		if ((rc = check_key_value(&vals[i], i)) < 0)
			return rc;
		if ((i > 0 && !key_put(dst, &at, TZ_KEY_MAX_BYTES, '+', true)) ||
		    !key_put_value(dst, &at, TZ_KEY_MAX_BYTES, &vals[i]))
			return tz_error_set(TZ_ELIMIT, "cannot encode key: longer than %d bytes",
					    TZ_KEY_MAX_BYTES);
	}
	*len = at;
	return TZ_OK;
}

/* See tz_row.h.  Nothing is appended on failure. */
int tz_key_encode(tz_buf *out, const tz_value *vals, size_t n)
{
	char key[TZ_KEY_MAX_BYTES];
	size_t len;
	int rc;

	if (out->err != TZ_OK)
		return out->err;
	if ((rc = key_write(key, &len, vals, n)) < 0) {
		out->err = rc;
		return rc;
	}
	tz_buf_put(out, key, len);
	return tz_buf_error(out);
}

/* ---- key decoding ---- */

/* Undo %XX escapes of s[0..n) into dst (n bytes); -1 when malformed. */
static int key_unescape(uint8_t *dst, size_t *dlen, const uint8_t *s, size_t n)
{
	size_t i = 0, k = 0;
	int h, l;

	while (i < n) {
		if (s[i] != '%') {
			dst[k++] = s[i++];
			continue;
		}
		if (n - i < 3 || (h = tz_row__hex_digit(s[i + 1])) < 0 || (l = tz_row__hex_digit(s[i + 2])) < 0)
			return -1;
		dst[k++] = (uint8_t)(h << 4 | l);
		i += 3;
	}
	*dlen = k;
	return 0;
}

/* Empty text and blob values point here, never at NULL. */
static const uint8_t empty[1];

/* Decode a tagged component ("~x..."); -1 when malformed.  Blob bytes go
 * to *at (the arena, which has room for s's length). */
static int key_decode_tagged(tz_value *v, uint8_t **at, const uint8_t *s, size_t n)
{
	uint8_t tmp[3 * TZ_ROW__REAL_TEXT_MAX];
	size_t k;

	if (n < 2)
		return -1;
	switch (s[1]) {
	case 'n': v->type = TZ_VNULL; return 0;
	case 'e': v->type = TZ_VTEXT; v->p = empty; return 0;
	case 'i': v->type = TZ_VINT; return tz_row__parse_i64(&v->i, s + 2, n - 2) < 0 ? -1 : 0;
	case 'r':
		v->type = TZ_VREAL;
		/* the escaped text is at most 3 bytes per real byte */
		if (n - 2 > 3 * TZ_ROW__REAL_TEXT_MAX || key_unescape(tmp, &k, s + 2, n - 2) < 0 ||
		    k > TZ_ROW__REAL_TEXT_MAX)
			return -1;
		return tz_row__parse_real(&v->r, tmp, k) < 0 ? -1 : 0;
	case 'b':
		v->type = TZ_VBLOB;
		v->p = n == 2 ? empty : *at;
		if ((n - 2) % 2 != 0)
			return -1;
		for (size_t i = 2; i < n; i += 2) {
			int h = tz_row__hex_digit(s[i]), l = tz_row__hex_digit(s[i + 1]);

			if (h < 0 || l < 0)
				return -1;
			*(*at)++ = (uint8_t)(h << 4 | l);
		}
		v->n = (n - 2) / 2;
		return 0;
	default:
		return -1;
	}
}

/* Decode one component s[0..n) into v and check that it is canonical. */
static int key_decode_one(tz_value *v, uint8_t **at, const uint8_t *s, size_t n)
{
	char again[TZ_KEY_MAX_BYTES];
	size_t len = 0;

	memset(v, 0, sizeof(*v));
	if (n == 0)
		return -1;
	if (s[0] == '~') {
		if (key_decode_tagged(v, at, s, n) < 0)
			return -1;
	} else {
		v->type = TZ_VTEXT;
		v->p = *at;
		if (key_unescape(*at, &v->n, s, n) < 0)
			return -1;
		*at += v->n;
	}
	if (!key_put_value(again, &len, sizeof(again), v))
		return -1;
	return len == n && memcmp(again, s, n) == 0 ? 0 : -1;
}

/* Whether any component of s[0..n) decodes to bytes (text, or a blob of
 * at least one byte): integer-only keys then need no allocation. */
static bool key_needs_arena(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && s[i - 1] != '+')
			continue;
		if (s[i] != '~' || (n - i > 2 && s[i + 1] == 'b' && s[i + 2] != '+'))
			return true;
	}
	return false;
}

/* See tz_row.h.  More components than `max` (but within the format's
 * TZ_KEY_MAX_COLUMNS) is TZ_ELIMIT.  Integer, real and NULL components
 * need no arena: *arena_out is then NULL.  On failure *n_out is 0,
 * *arena_out NULL and vals[] unspecified. */
int tz_key_decode(tz_value *vals, size_t max, size_t *n_out, uint8_t **arena_out,
		  const char *name, size_t len)
{
	const uint8_t *s = (const uint8_t *)name, *end, *plus;
	char q[4 * TZ_ROW__QUOTE_MAX + 4];
	uint8_t *arena = NULL, *at = NULL;
	size_t n = 0;
	int rc = TZ_ECORRUPT;

	*n_out = 0;
	*arena_out = NULL;
	if (len == 0 || len > TZ_KEY_MAX_BYTES) {
		rc = tz_error_set(TZ_ECORRUPT, "bad key: %zu bytes (1 to %d allowed)", len,
				  TZ_KEY_MAX_BYTES);
		goto done;
	}
	end = s + len;
	if (key_needs_arena(s, len) && (arena = at = tz_malloc(len)) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	for (;;) {
		plus = memchr(s, '+', (size_t)(end - s));
		if (n == TZ_KEY_MAX_COLUMNS || n == max) {
			rc = n == max && n < TZ_KEY_MAX_COLUMNS ? TZ_ELIMIT : TZ_ECORRUPT;
			rc = tz_error_set(rc, "bad key '%s': more than %zu components",
					  tz_row__quote(q, (const uint8_t *)name, len), n);
			goto done;
		}
		if (key_decode_one(&vals[n], &at, s, plus ? (size_t)(plus - s) : (size_t)(end - s)) < 0) {
			rc = tz_error_set(TZ_ECORRUPT, "bad key '%s': non-canonical component %zu",
					  tz_row__quote(q, (const uint8_t *)name, len), n + 1);
			goto done;
		}
		n++;
		if (plus == NULL)
			break;
		s = plus + 1;
	}
	*n_out = n;
	*arena_out = arena;
	arena = NULL;
	rc = TZ_OK;
done:
	tz_free(arena);
	return rc;
}

/*
 * buf.c - the bounded reader and the sticky-error writer (tz_buf.h).
 */
#include "store/tz_buf.h"

#include <stdio.h>
#include <string.h>

void tz_reader_init(tz_reader *r, const void *data, size_t len)
{
	r->p = data;
	r->len = len;
	r->err = TZ_OK;
}

static int short_read(tz_reader *r, size_t want)
{
	if (r->err == TZ_OK)
		r->err = tz_error_set(TZ_ECORRUPT, "truncated input: %zu bytes needed, %zu remain",
				      want, r->len);
	return r->err;
}

int tz_reader_bytes(tz_reader *r, const uint8_t **out, size_t n)
{
	*out = NULL;
	if (r->err != TZ_OK)
		return r->err;
	if (n > r->len)
		return short_read(r, n);
	*out = r->p;
	r->p += n;
	r->len -= n;
	return TZ_OK;
}

int tz_reader_u8(tz_reader *r, uint8_t *out)
{
	const uint8_t *p;

	*out = 0;
	if (tz_reader_bytes(r, &p, 1) < 0)
		return r->err;
	*out = p[0];
	return TZ_OK;
}

int tz_reader_u32be(tz_reader *r, uint32_t *out)
{
	const uint8_t *p;

	*out = 0;
	if (tz_reader_bytes(r, &p, 4) < 0)
		return r->err;
	*out = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return TZ_OK;
}

int tz_reader_u32le(tz_reader *r, uint32_t *out)
{
	const uint8_t *p;

	*out = 0;
	if (tz_reader_bytes(r, &p, 4) < 0)
		return r->err;
	*out = (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
	return TZ_OK;
}

int tz_reader_u64le(tz_reader *r, uint64_t *out)
{
	const uint8_t *p;
	uint64_t v = 0;

	*out = 0;
	if (tz_reader_bytes(r, &p, 8) < 0)
		return r->err;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	*out = v;
	return TZ_OK;
}

int tz_reader_sshstr(tz_reader *r, const uint8_t **out, size_t *len_out, size_t max)
{
	uint32_t n;

	*out = NULL;
	*len_out = 0;
	if (tz_reader_u32be(r, &n) < 0)
		return r->err;
	if (n > max) {
		r->err = tz_error_set(TZ_ELIMIT, "string of %u bytes exceeds the limit of %zu", n, max);
		return r->err;
	}
	if (tz_reader_bytes(r, out, n) < 0)
		return r->err;
	*len_out = n;
	return TZ_OK;
}

int tz_reader_line(tz_reader *r, const uint8_t **out, size_t *len_out, size_t max)
{
	const uint8_t *nl;
	size_t scan;

	*out = NULL;
	*len_out = 0;
	if (r->err != TZ_OK)
		return r->err;
	/* Look one byte past max so that a line of exactly max bytes passes. */
	scan = r->len < max + 1 ? r->len : max + 1;
	nl = memchr(r->p, '\n', scan);
	if (nl == NULL) {
		if (scan == max + 1)
			r->err = tz_error_set(TZ_ELIMIT, "line longer than %zu bytes", max);
		else
			r->err = tz_error_set(TZ_ECORRUPT, "missing newline at end of input");
		return r->err;
	}
	*out = r->p;
	*len_out = (size_t)(nl - r->p);
	r->len -= *len_out + 1;
	r->p = nl + 1;
	return TZ_OK;
}

/* ---- writer ---- */

void tz_buf_init(tz_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->err = TZ_OK;
}

void tz_buf_release(tz_buf *b)
{
	if (b == NULL)
		return;
	tz_free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->err = TZ_OK;
}

void tz_buf_clear(tz_buf *b)
{
	b->len = 0;
	b->err = TZ_OK;
	if (b->data)
		b->data[0] = '\0';
}

static int reserve(tz_buf *b, size_t extra, bool exact)
{
	size_t need, cap;
	uint8_t *p;

	if (b->err != TZ_OK)
		return b->err;
	/* +1 keeps room for the NUL that always follows the data */
	if (tz_size_add(&need, b->len, extra) < 0 || tz_size_add(&need, need, 1) < 0)
		return b->err = tz_error_set(TZ_ELIMIT, "buffer size overflow");
	if (b->max != 0 && need - 1 > b->max)
		return b->err = tz_error_set(TZ_ELIMIT, "output exceeds the limit of %zu bytes", b->max);
	if (need <= b->cap)
		return TZ_OK;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 || exact ? need : cap * 2;
	if ((p = tz_realloc(b->data, cap)) == NULL)
		return b->err = TZ_ENOMEM;
	b->data = p;
	b->cap = cap;
	return TZ_OK;
}

int tz_buf_reserve(tz_buf *b, size_t extra)
{
	return reserve(b, extra, false);
}

int tz_buf_reserve_exact(tz_buf *b, size_t extra)
{
	return reserve(b, extra, true);
}

void tz_buf_put(tz_buf *b, const void *data, size_t n)
{
	if (tz_buf_reserve(b, n) < 0)
		return;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void tz_buf_putc(tz_buf *b, uint8_t c)
{
	if (b->err == TZ_OK && b->len + 1 < b->cap) {
		b->data[b->len++] = c;
		b->data[b->len] = '\0';
		return;
	}
	tz_buf_put(b, &c, 1);
}

void tz_buf_puts(tz_buf *b, const char *s)
{
	tz_buf_put(b, s, strlen(s));
}

void tz_buf_vprintf(tz_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	if (b->err != TZ_OK)
		return;
	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0) {
		b->err = tz_error_set(TZ_EINVAL, "bad format string");
		return;
	}
	if (tz_buf_reserve(b, (size_t)n) < 0)
		return;
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void tz_buf_printf(tz_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tz_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void tz_buf_u32be(tz_buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	tz_buf_put(b, x, 4);
}

void tz_buf_u32le(tz_buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };

	tz_buf_put(b, x, 4);
}

void tz_buf_u64le(tz_buf *b, uint64_t v)
{
	uint8_t x[8];

	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	tz_buf_put(b, x, 8);
}

void tz_buf_sshstr(tz_buf *b, const void *data, size_t n)
{
	if (n > UINT32_MAX) {
		if (b->err == TZ_OK)
			b->err = tz_error_set(TZ_ELIMIT, "string of %zu bytes too long", n);
		return;
	}
	tz_buf_u32be(b, (uint32_t)n);
	tz_buf_put(b, data, n);
}

uint8_t *tz_buf_detach(tz_buf *b, size_t *len_out)
{
	uint8_t *p;

	*len_out = 0;
	if (b->err != TZ_OK)
		return NULL;
	if (b->data == NULL && tz_buf_reserve(b, 0) < 0)
		return NULL;
	p = b->data;
	*len_out = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

int tz_reader_varint(tz_reader *r, uint64_t *out, uint64_t max)
{
	uint64_t v = 0;

	*out = 0;
	for (int i = 0; i < 10; i++) {
		uint8_t c;
		if (tz_reader_u8(r, &c) < 0)
			return TZ_ECORRUPT;
		if (i == 9 && c > 1)
			return TZ_ECORRUPT;          /* past 64 bits */
		v |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			if (c == 0 && i > 0)
				return TZ_ECORRUPT;  /* not the shortest form */
			if (v > max)
				return TZ_ECORRUPT;
			*out = v;
			return TZ_OK;
		}
	}
	return TZ_ECORRUPT;
}

void tz_buf_varint(tz_buf *b, uint64_t v)
{
	while (v >= 0x80) {
		tz_buf_putc(b, (uint8_t)(v | 0x80));
		v >>= 7;
	}
	tz_buf_putc(b, (uint8_t)v);
}

int tz_reader_u16le(tz_reader *r, uint16_t *out)
{
	const uint8_t *b;

	*out = 0;
	if (tz_reader_bytes(r, &b, 2) < 0)
		return TZ_ECORRUPT;
	*out = (uint16_t)(b[0] | b[1] << 8);
	return TZ_OK;
}

void tz_buf_u16le(tz_buf *b, uint16_t v)
{
	tz_buf_putc(b, (uint8_t)v);
	tz_buf_putc(b, (uint8_t)(v >> 8));
}

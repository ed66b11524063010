/*
 * tz_buf.h - the bounded reader and the sticky-error writer.
 *
 * tz_reader walks untrusted bytes: a pointer and the length that remains.
 * Every read checks what remains first; the first failure sets r->err and
 * every later read fails too, so a parser can read a run of fields and
 * check once.  Nothing is ever cast onto the bytes; integers are read
 * little-endian explicitly.
 *
 * tz_buf is a growable byte buffer with a sticky error: a run of appends
 * needs one check at the end (tz_buf_error).  Its data is always followed by
 * a NUL byte that is not counted in len, so text can be used as a C string.
 */
#ifndef TZ_BUF_H
#define TZ_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/tz_base.h"

typedef struct {
	const uint8_t *p;   /* next unread byte */
	size_t len;         /* bytes that remain */
	int err;            /* TZ_OK, or the first failure */
} tz_reader;

void tz_reader_init(tz_reader *r, const void *data, size_t len);
/* Each returns TZ_OK or TZ_ECORRUPT (too short) and leaves *out zeroed on
 * failure.  tz_reader_bytes points into the reader's memory (no copy). */
int tz_reader_u8(tz_reader *r, uint8_t *out);
int tz_reader_u16le(tz_reader *r, uint16_t *out);
int tz_reader_u32be(tz_reader *r, uint32_t *out);
int tz_reader_u32le(tz_reader *r, uint32_t *out);
int tz_reader_u64le(tz_reader *r, uint64_t *out);
int tz_reader_bytes(tz_reader *r, const uint8_t **out, size_t n);
/* An unsigned LEB128 varint of at most 10 bytes, in its shortest form
 * (a redundant trailing zero group is TZ_ECORRUPT), at most `max`. */
int tz_reader_varint(tz_reader *r, uint64_t *out, uint64_t max);
/* An SSH-style string: u32 big-endian length, then that many bytes; the
 * length is checked against `max` before against what remains. */
int tz_reader_sshstr(tz_reader *r, const uint8_t **out, size_t *len_out, size_t max);
/* The bytes up to the next '\n' (not included; the '\n' is consumed);
 * TZ_ECORRUPT when no '\n' remains or the line is longer than `max`. */
int tz_reader_line(tz_reader *r, const uint8_t **out, size_t *len_out, size_t max);
static inline bool tz_reader_done(const tz_reader *r) { return r->len == 0; }

typedef struct {
	uint8_t *data;      /* owned; NUL-terminated past len */
	size_t len;
	size_t cap;
	size_t max;         /* 0: no bound, else appends past it fail TZ_ELIMIT */
	int err;            /* sticky: TZ_OK or the first failure */
} tz_buf;

#define TZ_BUF_INIT { NULL, 0, 0, 0, TZ_OK }

void tz_buf_init(tz_buf *b, size_t max);
void tz_buf_release(tz_buf *b);   /* frees data; accepts a zeroed buf */
void tz_buf_clear(tz_buf *b);     /* len = 0, err = TZ_OK, keeps memory */
int tz_buf_reserve(tz_buf *b, size_t extra);
/* Room for `extra` more bytes, grown to exactly that (not to a power of
 * two): for a size known in advance. */
int tz_buf_reserve_exact(tz_buf *b, size_t extra);
void tz_buf_put(tz_buf *b, const void *data, size_t n);
void tz_buf_putc(tz_buf *b, uint8_t c);
void tz_buf_puts(tz_buf *b, const char *s);
void tz_buf_printf(tz_buf *b, const char *fmt, ...) TZ_PRINTF(2, 3);
void tz_buf_vprintf(tz_buf *b, const char *fmt, va_list ap) TZ_PRINTF(2, 0);
void tz_buf_u16le(tz_buf *b, uint16_t v);
void tz_buf_u32be(tz_buf *b, uint32_t v);
void tz_buf_u32le(tz_buf *b, uint32_t v);
void tz_buf_u64le(tz_buf *b, uint64_t v);
void tz_buf_varint(tz_buf *b, uint64_t v);
void tz_buf_sshstr(tz_buf *b, const void *data, size_t n);
/* The sticky error; when set, tz_error_last() holds its message. */
static inline int tz_buf_error(const tz_buf *b) { return b->err; }
/* Hand the bytes to the caller (who frees them with tz_free); the buffer is
 * left empty.  NULL with TZ_ENOMEM/... when the buffer carries an error. */
uint8_t *tz_buf_detach(tz_buf *b, size_t *len_out);

#endif

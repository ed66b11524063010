/*
 * tz_zstd.h - zstd compression of whole buffers, with a bounded decoder.
 *
 * store/zstd.c is the only file that calls libzstd (STYLE.md: one wrapper
 * per library); zstd's error codes are translated there into TZ_E* codes,
 * with ZSTD_getErrorName() in the message.
 *
 * The decoder is written for hostile input (a bundle body once its
 * signature has verified, docs/bundle-format.md):
 *   - the window is capped (TZ_ZSTD_WINDOW_LOG_MAX), so a frame cannot make
 *     the decoder allocate a huge history buffer;
 *   - the output grows as data is produced, never to the size the frame
 *     declares, and the call fails with TZ_ELIMIT as soon as it would pass
 *     the caller's max_out;
 *   - exactly one frame: trailing bytes, a second frame or a truncated
 *     frame are refused.
 */
#ifndef TZ_ZSTD_H
#define TZ_ZSTD_H

#include <stddef.h>

#include "store/tz_base.h"
#include "store/tz_buf.h"

/* 2^27 = 128 MiB: the largest window of zstd's standard levels (level 22
 * uses 27), so any frame our writers make decodes, while a hostile frame
 * cannot ask for zstd's maximum of 2 GiB (windowLog 31) of history. */
#define TZ_ZSTD_WINDOW_LOG_MAX 27

/* The level a caller gets by passing 0: zstd's own default (3). */
#define TZ_ZSTD_LEVEL_DEFAULT 0

/*
 * Compress src[0..n) into one zstd frame appended to `out` (sticky-error
 * buffer; on failure its error is set and whatever was appended is cut
 * off again).  `level` is 1..ZSTD_maxCLevel() (22) or TZ_ZSTD_LEVEL_DEFAULT;
 * `dict`/`dict_len` a dictionary (raw content or zstd's trained format), or
 * NULL/0 for none.  The frame records the content size and a checksum.
 * Returns TZ_OK; TZ_EINVAL for a level out of range; TZ_ENOMEM; TZ_ELIMIT
 * when out's bound is reached; TZ_EIO when zstd itself fails.
 */
int tz_zstd_compress(tz_buf *out, const void *src, size_t n, int level,
		     const void *dict, size_t dict_len);

/*
 * Decompress the single zstd frame src[0..n) and append its content to
 * `out`.  At most max_out bytes are produced: TZ_ELIMIT as soon as the
 * frame would produce more.  `dict`/`dict_len` as for tz_zstd_compress
 * (it must be the compressor's dictionary).  Returns TZ_OK; TZ_ECORRUPT
 * when src is empty, is not a valid frame (zstd's reason in the message),
 * is truncated, or has bytes after the frame; TZ_ELIMIT (output past
 * max_out, or a window over TZ_ZSTD_WINDOW_LOG_MAX); TZ_ENOMEM.  On
 * failure out is back to its length on entry.
 */
int tz_zstd_decompress(tz_buf *out, const void *src, size_t n, size_t max_out,
		       const void *dict, size_t dict_len) TZ_MUST_CHECK;

#endif

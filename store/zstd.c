/*
 * zstd.c - the one file that calls libzstd (tz_zstd.h has the contract).
 *
 * Compression is one ZSTD_compress2() call into a buffer reserved at
 * ZSTD_compressBound(): the input is already in memory, so the bound is of
 * the same size.  Decompression streams with ZSTD_decompressStream() into
 * an output that grows by at most DECODE_STEP bytes per call and never
 * past max_out + 1 (the one extra byte is how "more than max_out" is seen
 * without decoding it all), with the window capped at
 * TZ_ZSTD_WINDOW_LOG_MAX.  Every zstd error becomes a TZ_E* code here.
 */
#include "store/tz_zstd.h"

#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

/* Output added per ZSTD_decompressStream() call: zstd's recommended
 * output size (one block, 128 KiB) keeps the decoder from buffering
 * internally, and growth stays proportional to what was really decoded. */
#define DECODE_STEP ((size_t)128 << 10)

/* zstd's error for a call, as a TZ_E* code with `what` and zstd's reason. */
static int zstd_error(size_t ret, const char *what)
{
	int code = TZ_ECORRUPT;

	if (ZSTD_getErrorCode(ret) == ZSTD_error_frameParameter_windowTooLarge)
		code = TZ_ELIMIT;
	else if (ZSTD_getErrorCode(ret) == ZSTD_error_memory_allocation)
		code = TZ_ENOMEM;
	return tz_error_set(code, "zstd %s: %s", what, ZSTD_getErrorName(ret));
}

static int load_cdict(ZSTD_CCtx *cctx, int level, const void *dict, size_t dict_len)
{
	size_t ret;

	ret = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(ret))
		ret = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	if (!ZSTD_isError(ret) && dict_len > 0)
		ret = ZSTD_CCtx_loadDictionary(cctx, dict, dict_len);
	if (ZSTD_isError(ret))
		return tz_error_set(TZ_EIO, "zstd cannot set up compression: %s",
				    ZSTD_getErrorName(ret));
	return TZ_OK;
}

int tz_zstd_compress(tz_buf *out, const void *src, size_t n, int level,
		     const void *dict, size_t dict_len)
{
	ZSTD_CCtx *cctx = NULL;
	size_t bound, ret, start = out->len;
	int rc;

	if (out->err != TZ_OK)
		return out->err;
	if (level != TZ_ZSTD_LEVEL_DEFAULT && (level < 1 || level > ZSTD_maxCLevel()))
		return out->err = tz_error_set(TZ_EINVAL, "zstd level %d is not in 1..%d",
					       level, ZSTD_maxCLevel());
	bound = ZSTD_compressBound(n);
	if (ZSTD_isError(bound))
		return out->err = tz_error_set(TZ_ELIMIT, "zstd cannot compress %zu bytes", n);
	if ((rc = tz_buf_reserve(out, bound)) < 0)
		return rc;
	if ((cctx = ZSTD_createCCtx()) == NULL) {
		rc = out->err = tz_error_set(TZ_ENOMEM, "zstd: out of memory");
		goto done;
	}
	if ((rc = load_cdict(cctx, level, dict, dict_len)) < 0) {
		out->err = rc;
		goto done;
	}
	ret = ZSTD_compress2(cctx, out->data + start, bound, n ? src : "", n);
	if (ZSTD_isError(ret)) {
		rc = out->err = tz_error_set(TZ_EIO, "zstd cannot compress: %s",
					     ZSTD_getErrorName(ret));
		goto done;
	}
	out->len = start + ret;
	out->data[out->len] = '\0';
	rc = TZ_OK;
done:
	ZSTD_freeCCtx(cctx);
	return rc;
}

static int dctx_new(ZSTD_DCtx **out, const void *dict, size_t dict_len)
{
	ZSTD_DCtx *dctx;
	size_t ret;

	if ((*out = dctx = ZSTD_createDCtx()) == NULL)
		return tz_error_set(TZ_ENOMEM, "zstd: out of memory");
	ret = ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, TZ_ZSTD_WINDOW_LOG_MAX);
	if (!ZSTD_isError(ret) && dict_len > 0)
		ret = ZSTD_DCtx_loadDictionary(dctx, dict, dict_len);
	if (ZSTD_isError(ret))
		return zstd_error(ret, "cannot set up decompression");
	return TZ_OK;
}

/* Decode src into out until the frame ends; out->len grows with it. */
static int decode_frame(ZSTD_DCtx *dctx, tz_buf *out, ZSTD_inBuffer *in,
			size_t start, size_t max_out)
{
	for (;;) {
		size_t made = out->len - start, left = max_out - made;
		size_t room = left < DECODE_STEP ? left + 1 : DECODE_STEP;
		/* what was reserved first is used before growing */
		if (out->cap > out->len + 1 && out->cap - out->len - 1 < room)
			room = out->cap - out->len - 1;
		ZSTD_outBuffer o;
		size_t ret;
		int rc;

		if ((rc = tz_buf_reserve(out, room)) < 0)
			return rc;
		o.dst = out->data + out->len;
		o.size = room;
		o.pos = 0;
		ret = ZSTD_decompressStream(dctx, &o, in);
		out->len += o.pos;
		if (ZSTD_isError(ret))
			return zstd_error(ret, "cannot decompress");
		if (out->len - start > max_out)
			return tz_error_set(TZ_ELIMIT, "zstd frame decompresses to more than "
					    "%zu bytes", max_out);
		if (ret == 0) {   /* the frame is decoded and flushed */
			out->data[out->len] = '\0';
			return TZ_OK;
		}
		/* all input used and room left over: zstd is waiting for more */
		if (in->pos == in->size && o.pos < room)
			return tz_error_set(TZ_ECORRUPT, "zstd frame is truncated");
	}
}

int tz_zstd_decompress(tz_buf *out, const void *src, size_t n, size_t max_out,
		       const void *dict, size_t dict_len)
{
	ZSTD_DCtx *dctx = NULL;
	ZSTD_inBuffer in = { src, n, 0 };
	size_t start = out->len;
	int rc;

	if (out->err != TZ_OK)
		return out->err;
	if (n == 0)
		return tz_error_set(TZ_ECORRUPT, "zstd: no frame (0 bytes)");
	/* The frame's header says what it decodes to (ZSTD_compress2 writes
	 * it): reserved at once, where doubling could take up to twice that
	 * (8 MiB for the 7.75 MB payload of 100,000 changed rows).  Only a
	 * hint: a frame that lies is caught by zstd, and max_out still bounds
	 * what is reserved (the frame is authenticated before it is opened). */
	unsigned long long size = ZSTD_getFrameContentSize(src, n);
	if (size != ZSTD_CONTENTSIZE_UNKNOWN && size != ZSTD_CONTENTSIZE_ERROR && size <= max_out &&
	    (rc = tz_buf_reserve_exact(out, (size_t)size)) < 0)
		goto done;
	if ((rc = dctx_new(&dctx, dict, dict_len)) < 0 ||
	    (rc = decode_frame(dctx, out, &in, start, max_out)) < 0)
		goto done;
	/* one frame only: a second frame or any other byte is refused */
	if (in.pos != in.size) {
		rc = tz_error_set(TZ_ECORRUPT, "zstd: %zu trailing bytes after the frame",
				  in.size - in.pos);
		goto done;
	}
	rc = TZ_OK;
done:
	ZSTD_freeDCtx(dctx);
	if (rc < 0 && out->data != NULL) {
		out->len = start;
		out->data[start] = '\0';
	}
	return rc;
}

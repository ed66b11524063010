/*
 * pack.c - write a commit's new objects as one git pack.
 *
 * A commit stages its new blobs and trees in memory (history.c) and hands
 * them here: one pack file (version 2, no deltas: row blobs do not delta
 * against each other, DESIGN §3 measured it), streamed into libgit2's
 * git_odb_write_pack, which indexes it and, with GIT_OPT_ENABLE_FSYNC_GITDIR
 * on, fsyncs pack and index before they become visible.  One pack a commit
 * keeps a large first commit from writing 100,000 loose files, and a small
 * one to one fsync.  Pack format: git's Documentation/gitformat-pack.txt.
 */
#include "store/store_int.h"

#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

typedef struct {
	git_odb_writepack *wp;
	git_indexer_progress stats;
	EVP_MD_CTX *sha;
	tz_buf out;          /* bytes not yet handed to the writer */
} pack_writer;

/* Stream out what is buffered once it passes 1 MiB (bounded memory for a
 * 100,000-row first commit). */
#define PACK_FLUSH_BYTES (1u << 20)

static int flush(pack_writer *pw, bool force)
{
	if (pw->out.err != TZ_OK)
		return pw->out.err;
	if (pw->out.len == 0 || (!force && pw->out.len < PACK_FLUSH_BYTES))
		return TZ_OK;
	if (tz_faultsim(TZ_FAULT_WRITE))
		return tz_error_set(TZ_EIO, "cannot write pack: injected fault");
	if (EVP_DigestUpdate(pw->sha, pw->out.data, pw->out.len) != 1)
		return tz_error_set(TZ_EIO, "cannot hash pack");
	if (pw->wp->append(pw->wp, pw->out.data, pw->out.len, &pw->stats) < 0)
		return tz_git__error("cannot write pack");
	tz_buf_clear(&pw->out);
	return TZ_OK;
}

/* The object header: type and size in git's little-endian varint. */
static void put_header(tz_buf *b, git_object_t type, size_t size)
{
	uint8_t c = (uint8_t)(((unsigned)type & 7) << 4 | (size & 15));

	size >>= 4;
	while (size) {
		tz_buf_putc(b, c | 0x80);
		c = size & 0x7f;
		size >>= 7;
	}
	tz_buf_putc(b, c);
}

static int put_object(pack_writer *pw, const struct tz_obj *o)
{
	uLongf zlen = compressBound((uLong)o->len);
	int rc;

	put_header(&pw->out, o->type, o->len);
	if ((rc = tz_buf_reserve(&pw->out, zlen)) < 0)
		return rc;
	/* Level 1: rows are short and mostly unique; speed wins. */
	if (compress2(pw->out.data + pw->out.len, &zlen, o->data, (uLong)o->len, 1) != Z_OK)
		return tz_error_set(TZ_ENOMEM, "cannot compress object");
	pw->out.len += zlen;
	return flush(pw, false);
}

int tz_pack__write(tz_store *s, tz_staging *st)
{
	pack_writer pw;
	uint8_t digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	int rc;

	if (st->n == 0)
		return TZ_OK;
	if (st->n > UINT32_MAX)
		return tz_error_set(TZ_ELIMIT, "too many objects for one pack");
	memset(&pw, 0, sizeof(pw));
	tz_buf_init(&pw.out, 0);
	if ((pw.sha = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(pw.sha, EVP_sha1(), NULL) != 1) {
		rc = tz_error_set(TZ_ENOMEM, "cannot start SHA-1");
		goto done;
	}
	if (git_odb_write_pack(&pw.wp, s->odb, NULL, NULL) < 0) {
		rc = tz_git__error("cannot start a pack");
		goto done;
	}
	tz_buf_put(&pw.out, "PACK", 4);
	tz_buf_u32be(&pw.out, 2);
	tz_buf_u32be(&pw.out, (uint32_t)st->n);
	for (size_t i = 0; i < st->n; i++) {
		if ((rc = put_object(&pw, &st->objs[i])) < 0)
			goto done;
		tz_progress__report(s, "writing objects", i + 1, st->n);
	}
	if ((rc = flush(&pw, true)) < 0)
		goto done;
	if (EVP_DigestFinal_ex(pw.sha, digest, &dlen) != 1 || dlen != 20) {
		rc = tz_error_set(TZ_EIO, "cannot finish SHA-1");
		goto done;
	}
	if (tz_faultsim(TZ_FAULT_FSYNC)) {
		rc = tz_error_set(TZ_EIO, "cannot sync pack: injected fault");
		goto done;
	}
	if (pw.wp->append(pw.wp, digest, 20, &pw.stats) < 0 || pw.wp->commit(pw.wp, &pw.stats) < 0) {
		rc = tz_git__error("cannot write pack");
		goto done;
	}
	if (git_odb_refresh(s->odb) < 0)
		rc = tz_git__error("cannot refresh the object database");
	else
		rc = TZ_OK;
done:
	if (pw.wp)
		pw.wp->free(pw.wp);
	EVP_MD_CTX_free(pw.sha);
	tz_buf_release(&pw.out);
	return rc;
}

/*
 * pack.c - write a commit's new objects as one git pack and its index.
 *
 * A commit stages its new blobs and trees in memory (history.c) and hands
 * them here: one pack file (version 2, no deltas: row blobs do not delta
 * against each other, DESIGN §3 measured it) and its version-2 index,
 * written here rather than by libgit2's indexer.  The indexer inflated
 * and SHA-1'd every object again to learn what the staging already knows
 * (each object's id, hashed when staged, and where it lies in the pack):
 * 12% of HQ's agency-day import (bench/merge, perf).  Both files are
 * written under temporary names, fsynced, then renamed pack first and
 * index last (a pack without its index is invisible to git and libgit2),
 * and the directory fsynced.  Formats: git's
 * Documentation/gitformat-pack.txt.  A crash leaves at most an
 * unreferenced temporary or pack, never a half-written visible one.
 */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libdeflate.h>
#include <openssl/evp.h>
#include <zlib.h>

/* Where each object landed: the index lists them sorted by id. */
typedef struct {
	tz_oid oid;
	uint64_t offset;
	uint32_t crc;
} pack_entry;

/* The objects a pack takes, one at a time: *o is the k-th (its bytes
 * valid until the next call). */
typedef int (*pack_source)(void *ctx, size_t k, const struct tz_obj **o);

typedef struct {
	int fd;
	const char *path;
	EVP_MD_CTX *sha;
	tz_buf out;          /* bytes not yet written */
	uint64_t written;    /* bytes of the file so far, buffered included */
	/* One compressor for every object of the pack, at PACK_LEVEL. */
	struct libdeflate_compressor *z;
} hashed_file;

/* Objects are stored, not compressed: zlib streams of stored blocks, which
 * git and libgit2 read as any others.  A row (~600 bytes) compressed to
 * 63% at level 1 and a tree, mostly object ids, to 65%; the price was
 * paid per object, twice: deflating 7,600 rows took 43 ms (the compressor
 * clears its hash table for every object) and zlib inflating them, as
 * libgit2 does for every read, 27 ms; stored, 1 and 2 ms.  HQ's
 * agency-day import (bench/merge) went from 0.36 s to 0.29 s; its new
 * packs from 8.3 MB to 13 MB, and a 100,000-row store's history from
 * 46 MB to 66 MB (docs/merge.md, "Cost").  libdeflate and zlib still
 * write the streams: level 0. */
#define PACK_LEVEL 0

/* Stream out what is buffered once it passes 1 MiB (bounded memory for a
 * 100,000-row first commit). */
#define PACK_FLUSH_BYTES (1u << 20)

static int hf_flush(hashed_file *f, bool force)
{
	int rc;

	if (f->out.err != TZ_OK)
		return f->out.err;
	if (f->out.len == 0 || (!force && f->out.len < PACK_FLUSH_BYTES))
		return TZ_OK;
	if (EVP_DigestUpdate(f->sha, f->out.data, f->out.len) != 1)
		return tz_error_set(TZ_EIO, "cannot hash '%s'", f->path);
	if ((rc = tz_fs__write_all(f->fd, f->out.data, f->out.len, f->path)) < 0)
		return rc;
	tz_buf_clear(&f->out);
	return TZ_OK;
}

static void hf_put(hashed_file *f, const void *p, size_t n)
{
	tz_buf_put(&f->out, p, n);
	f->written += n;
}

/* The trailer: the SHA-1 of everything before it, written and kept. */
static int hf_finish(hashed_file *f, uint8_t digest[20])
{
	unsigned dlen = 0;
	int rc;

	if ((rc = hf_flush(f, true)) < 0)
		return rc;
	if (EVP_DigestFinal_ex(f->sha, digest, &dlen) != 1 || dlen != 20)
		return tz_error_set(TZ_EIO, "cannot finish SHA-1 of '%s'", f->path);
	if ((rc = tz_fs__write_all(f->fd, digest, 20, f->path)) < 0)
		return rc;
	return tz_fs__fsync(f->fd, f->path);
}

/* The object header: type and size in git's little-endian varint. */
static void put_header(hashed_file *f, git_object_t type, size_t size)
{
	uint8_t c = (uint8_t)(((unsigned)type & 7) << 4 | (size & 15));

	size >>= 4;
	while (size) {
		uint8_t b = c | 0x80;
		hf_put(f, &b, 1);
		c = size & 0x7f;
		size >>= 7;
	}
	hf_put(f, &c, 1);
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	return tz_calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
	(void)opaque;
	tz_free(p);
}

/* The compressed bytes of an object too big for the buffer go out a chunk
 * at a time. */
#define PACK_CHUNK_BYTES (256u << 10)

/* An object larger than PACK_FLUSH_BYTES (the _log of a 100,000-row
 * commit: 4.4 MB), written by zlib as a stream.  libdeflate takes whole
 * buffers only: its output bound would have doubled the buffer to 8 MiB,
 * at the peak of a large import. */
static int put_large(hashed_file *f, const struct tz_obj *o, uint32_t *crc)
{
	z_stream z;
	size_t left = o->len;
	int zr = Z_OK, rc = TZ_OK;

	memset(&z, 0, sizeof(z));
	z.zalloc = z_alloc;
	z.zfree = z_free;
	if (deflateInit(&z, PACK_LEVEL) != Z_OK)
		return tz_error_set(TZ_ENOMEM, "cannot start compressing");
	z.next_in = o->data;
	while (zr == Z_OK) {
		size_t n;
		if (z.avail_in == 0 && left > 0) {
			z.avail_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
			left -= z.avail_in;
		}
		if ((rc = tz_buf_reserve(&f->out, PACK_CHUNK_BYTES)) < 0)
			break;
		z.next_out = f->out.data + f->out.len;
		z.avail_out = PACK_CHUNK_BYTES;
		zr = deflate(&z, left > 0 ? Z_NO_FLUSH : Z_FINISH);
		n = PACK_CHUNK_BYTES - z.avail_out;
		*crc = libdeflate_crc32(*crc, f->out.data + f->out.len, n);
		f->out.len += n;
		f->written += n;
		if ((rc = hf_flush(f, false)) < 0)
			break;
	}
	if (rc == TZ_OK && zr != Z_STREAM_END)
		rc = tz_error_set(TZ_EINVAL, "cannot compress object: %s", z.msg ? z.msg : "zlib error");
	deflateEnd(&z);
	return rc;
}

static int put_object(hashed_file *f, const struct tz_obj *o, pack_entry *e)
{
	size_t start = f->out.len, bound, n;
	int rc;

	e->oid = o->oid;
	e->offset = f->written;
	put_header(f, o->type, o->len);
	if (o->len > PACK_FLUSH_BYTES) {
		e->crc = libdeflate_crc32(0, f->out.data + start, f->out.len - start);
		return put_large(f, o, &e->crc);
	}
	if (f->z == NULL && (f->z = libdeflate_alloc_compressor(PACK_LEVEL)) == NULL)
		return tz_error_set(TZ_ENOMEM, "cannot start compressing");
	bound = libdeflate_zlib_compress_bound(f->z, o->len);
	if ((rc = tz_buf_reserve(&f->out, bound)) < 0)
		return rc;
	/* the bound always suffices: 0 would be a broken library */
	if ((n = libdeflate_zlib_compress(f->z, o->data, o->len, f->out.data + f->out.len, bound)) == 0)
		return tz_error_set(TZ_EINVAL, "cannot compress object");
	f->out.len += n;
	f->written += n;
	e->crc = libdeflate_crc32(0, f->out.data + start, f->out.len - start);
	return hf_flush(f, false);
}

static int entry_cmp(const void *a, const void *b)
{
	return memcmp(((const pack_entry *)a)->oid.id, ((const pack_entry *)b)->oid.id, 20);
}

static void put_u32(hashed_file *f, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	hf_put(f, b, 4);
}

/* The version-2 index of n entries (sorted here) of the pack `sum`. */
static int write_index(hashed_file *f, pack_entry *e, size_t n, const uint8_t sum[20], uint8_t digest[20])
{
	static const uint8_t magic[8] = { 0xff, 't', 'O', 'c', 0, 0, 0, 2 };
	uint32_t big = 0;
	size_t k = 0;

	qsort(e, n, sizeof(*e), entry_cmp);
	hf_put(f, magic, sizeof(magic));
	for (unsigned fan = 0; fan < 256; fan++) {
		while (k < n && e[k].oid.id[0] <= fan)
			k++;
		put_u32(f, (uint32_t)k);
	}
	for (size_t i = 0; i < n; i++)
		hf_put(f, e[i].oid.id, 20);
	for (size_t i = 0; i < n; i++)
		put_u32(f, e[i].crc);
	/* offsets past 2 GiB go to the 64-bit table, named by position */
	for (size_t i = 0; i < n; i++)
		put_u32(f, e[i].offset < 0x80000000u ? (uint32_t)e[i].offset : 0x80000000u | big++);
	for (size_t i = 0; i < n; i++)
		if (e[i].offset >= 0x80000000u) {
			put_u32(f, (uint32_t)(e[i].offset >> 32));
			put_u32(f, (uint32_t)e[i].offset);
		}
	hf_put(f, sum, 20);
	return hf_finish(f, digest);
}

/* Open "<dir>/tmp_<what>_XXXXXX" into f (path: its name, kept in b). */
static int hf_open(hashed_file *f, tz_buf *b, const char *dir, const char *what)
{
	tz_buf_clear(b);
	tz_buf_printf(b, "%s/tmp_%s_XXXXXX", dir, what);
	if (tz_buf_error(b) < 0)
		return tz_buf_error(b);
	f->path = (const char *)b->data;
	if ((f->fd = mkstemp((char *)b->data)) < 0)
		return tz_error_set(TZ_EIO, "cannot create '%s': %s", f->path, strerror(errno));
	tz_buf_init(&f->out, 0);
	if ((f->sha = EVP_MD_CTX_new()) == NULL || EVP_DigestInit_ex(f->sha, EVP_sha1(), NULL) != 1)
		return tz_error_set(TZ_ENOMEM, "cannot start SHA-1");
	return TZ_OK;
}

static void hf_close(hashed_file *f, const tz_buf *path, bool remove)
{
	if (f->fd >= 0) {
		close(f->fd);
		if (remove)
			unlink((const char *)path->data);
	}
	f->fd = -1;
	EVP_MD_CTX_free(f->sha);
	f->sha = NULL;
	tz_buf_release(&f->out);
	libdeflate_free_compressor(f->z);
	f->z = NULL;
}

/* "<dir>/pack-<hex of sum><ext>" into b. */
static int final_name(tz_buf *b, const char *dir, const uint8_t sum[20], const char *ext)
{
	char hex[41];

	tz_oid_fmt(hex, (const tz_oid *)sum);
	tz_buf_clear(b);
	tz_buf_printf(b, "%s/pack-%s%s", dir, hex, ext);
	return tz_buf_error(b);
}

/* Both files written and synced: pack, then index, then the directory. */
static int place(const char *dir, const tz_buf *tpack, const tz_buf *tidx, const uint8_t sum[20])
{
	tz_buf to = TZ_BUF_INIT;
	int rc;

	if (tz_faultsim(TZ_FAULT_RENAME))
		return tz_error_set(TZ_EIO, "cannot rename '%s': injected fault", (const char *)tpack->data);
	if ((rc = final_name(&to, dir, sum, ".pack")) == TZ_OK && rename((const char *)tpack->data, (char *)to.data) != 0)
		rc = tz_error_set(TZ_EIO, "cannot rename '%s': %s", (const char *)to.data, strerror(errno));
	if (rc == TZ_OK && (rc = final_name(&to, dir, sum, ".idx")) == TZ_OK &&
	    rename((const char *)tidx->data, (char *)to.data) != 0)
		rc = tz_error_set(TZ_EIO, "cannot rename '%s': %s", (const char *)to.data, strerror(errno));
	if (rc == TZ_OK)
		rc = tz_fs__fsync_dir(dir);
	tz_buf_release(&to);
	return rc;
}

/* Is staged object o one this pack takes? */
static bool takes(const struct tz_obj *o, bool spill)
{
	return !o->in_pack && !(spill && o->type == GIT_OBJECT_COMMIT);
}

static int write_pack(hashed_file *pf, size_t n, pack_source src, void *ctx, pack_entry *e, tz_store *s,
		      uint8_t sum[20])
{
	uint8_t head[12] = { 'P', 'A', 'C', 'K', 0, 0, 0, 2 };
	const struct tz_obj *o;
	int rc;

	head[8] = (uint8_t)(n >> 24);
	head[9] = (uint8_t)(n >> 16);
	head[10] = (uint8_t)(n >> 8);
	head[11] = (uint8_t)n;
	hf_put(pf, head, sizeof(head));
	for (size_t k = 0; k < n; k++) {
		if ((rc = src(ctx, k, &o)) < 0 || (rc = put_object(pf, o, &e[k])) < 0)
			return rc;
		if (s)
			tz_progress__report(s, "writing objects", k + 1, n);
	}
	return hf_finish(pf, sum);
}

/* One pack of n objects from src, and its index, fsynced and renamed into
 * dir; its name in sum.  Files and memory only, no libgit2: tz_pack__start
 * runs it on a thread of its own.  progress: whom to tell, or NULL. */
static int write_files(tz_store *progress, const char *dir, size_t n, pack_source src, void *ctx, uint8_t sum[20])
{
	hashed_file pf, xf;
	tz_buf tpack = TZ_BUF_INIT, tidx = TZ_BUF_INIT;
	pack_entry *e = NULL;
	uint8_t isum[20];
	bool placed = false;
	int rc;

	if (n > UINT32_MAX)
		return tz_error_set(TZ_ELIMIT, "too many objects for one pack");
	memset(&pf, 0, sizeof(pf));
	memset(&xf, 0, sizeof(xf));
	pf.fd = xf.fd = -1;
	if ((e = tz_calloc(n, sizeof(*e))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	if ((rc = hf_open(&pf, &tpack, dir, "pack")) < 0 || (rc = write_pack(&pf, n, src, ctx, e, progress, sum)) < 0 ||
	    (rc = hf_open(&xf, &tidx, dir, "idx")) < 0 || (rc = write_index(&xf, e, n, sum, isum)) < 0 ||
	    (rc = place(dir, &tpack, &tidx, sum)) < 0)
		goto done;
	placed = true;
done:
	hf_close(&pf, &tpack, !placed);
	hf_close(&xf, &tidx, !placed);
	tz_buf_release(&tpack);
	tz_buf_release(&tidx);
	tz_free(e);
	return rc;
}

/* "<history>/objects/pack" into dir. */
static int pack_dir(tz_store *s, tz_buf *dir)
{
	tz_buf_printf(dir, "%sobjects/pack", git_repository_path(s->repo));
	return tz_buf_error(dir);
}

/* One pack of n objects from src, and its index, placed in the object
 * database (fsynced, renamed, refreshed); its name in sum. */
static int write_objects(tz_store *s, size_t n, pack_source src, void *ctx, uint8_t sum[20])
{
	tz_buf dir = TZ_BUF_INIT;
	int rc;

	if ((rc = pack_dir(s, &dir)) == TZ_OK && (rc = write_files(s, (const char *)dir.data, n, src, ctx, sum)) == TZ_OK &&
	    git_odb_refresh(s->odb) < 0)
		rc = tz_git__error("cannot refresh the object database");
	tz_buf_release(&dir);
	return rc;
}

/* The staged objects a pack takes, in staging order. */
typedef struct {
	const tz_staging *st;
	bool spill;
	size_t next;      /* the staging position to look from */
} staged_source;

static int next_staged(void *ctx, size_t k, const struct tz_obj **o)
{
	staged_source *x = ctx;

	(void)k;
	while (!takes(&x->st->objs[x->next], x->spill))
		x->next++;
	*o = &x->st->objs[x->next++];
	return TZ_OK;
}

static size_t count_taken(const tz_staging *st, bool spill)
{
	size_t n = 0;

	for (size_t i = 0; i < st->n; i++)
		n += takes(&st->objs[i], spill);
	return n;
}

/* Never written twice; the bytes stay until a spill drops them. */
static void mark_packed(tz_staging *st, bool spill)
{
	for (size_t i = 0; i < st->n; i++)
		if (takes(&st->objs[i], spill))
			st->objs[i].in_pack = true;
}

static int write_staged(tz_store *s, tz_staging *st, bool spill)
{
	staged_source x = { st, spill, 0 };
	uint8_t sum[20];
	size_t n = count_taken(st, spill);
	int rc;

	if (n == 0)
		return TZ_OK;
	if ((rc = write_objects(s, n, next_staged, &x, sum)) < 0)
		return rc;
	mark_packed(st, spill);
	return TZ_OK;
}

/* The objects of the object database by id, read one at a time. */
typedef struct {
	tz_store *s;
	const tz_oid *ids;
	git_odb_object *cur;
	struct tz_obj o;
} odb_source;

static int next_stored(void *ctx, size_t k, const struct tz_obj **o)
{
	odb_source *x = ctx;
	char hex[41];

	git_odb_object_free(x->cur);
	x->cur = NULL;
	if (git_odb_read(&x->cur, x->s->odb, (const git_oid *)x->ids[k].id) < 0) {
		tz_oid_fmt(hex, &x->ids[k]);
		return tz_error_set(TZ_EVERIFY, "object %s is unreadable: %s", hex,
				    git_error_last() ? git_error_last()->message : "unknown error");
	}
	x->o.oid = x->ids[k];
	x->o.type = git_odb_object_type(x->cur);
	x->o.data = (uint8_t *)(uintptr_t)git_odb_object_data(x->cur);
	x->o.len = git_odb_object_size(x->cur);
	*o = &x->o;
	return TZ_OK;
}

int tz_pack__consolidate(tz_store *s, const tz_oid *ids, size_t n, uint8_t sum[20])
{
	odb_source x = { s, ids, NULL, { { { 0 } }, GIT_OBJECT_INVALID, NULL, 0, false } };
	int rc = write_objects(s, n, next_stored, &x, sum);

	git_odb_object_free(x.cur);
	return rc;
}

/* A staging small enough never to spill keeps its bytes for the reads
 * that follow (the merge after an import: dropping them cost the
 * agency-day import +21% instructions).  One that spilled is big, and
 * most of what it made is read back from packs already: it keeps nothing
 * (100,000 changed rows: 16 MiB less for the merge). */
static void after_write(tz_staging *st)
{
	if (st->spills > 0)
		tz_staging__drop_packed(st);
}

int tz_pack__write(tz_store *s, tz_staging *st)
{
	int rc = write_staged(s, st, false);

	if (rc == TZ_OK)
		after_write(st);
	return rc;
}

/* ---- a pack written on a thread of its own ---- */

static void *job_run(void *arg)
{
	tz_pack_job *job = arg;
	staged_source x = { job->st, false, 0 };

	if ((job->rc = write_files(NULL, (const char *)job->dir.data, job->n, next_staged, &x, job->sum)) < 0)
		snprintf(job->err, sizeof(job->err), "%s", tz_error_last());
	return NULL;
}

int tz_pack__start(tz_store *s, tz_staging *st, tz_pack_job *job)
{
	int rc;

	memset(job, 0, sizeof(*job));
	job->st = st;
	tz_buf_init(&job->dir, 0);
	/* under fault injection, every site is met in one order: no thread */
	if ((job->n = count_taken(st, false)) == 0 || tz_faultsim_armed)
		return tz_pack__write(s, st);
	if ((rc = pack_dir(s, &job->dir)) < 0)
		return rc;
	if (pthread_create(&job->thread, NULL, job_run, job) != 0) {
		tz_buf_release(&job->dir);
		return tz_pack__write(s, st);
	}
	job->running = true;
	s->pending = st;
	return TZ_OK;
}

/* Wait for the thread; forget the job.  Its error, if any, in job->rc and
 * job->err. */
static void job_join(tz_store *s, tz_pack_job *job)
{
	if (job->running) {
		pthread_join(job->thread, NULL);
		job->running = false;
	}
	tz_buf_release(&job->dir);
	if (s->pending == job->st)
		s->pending = NULL;
}

int tz_pack__finish(tz_store *s, tz_pack_job *job)
{
	bool ran = job->running;

	job_join(s, job);
	if (!ran)
		return TZ_OK;
	if (job->rc < 0)
		return tz_error_set(job->rc, "%s", job->err);
	if (git_odb_refresh(s->odb) < 0)
		return tz_git__error("cannot refresh the object database");
	mark_packed(job->st, false);
	after_write(job->st);
	return TZ_OK;
}

void tz_pack__abandon(tz_store *s, tz_pack_job *job)
{
	job_join(s, job);
}

int tz_pack__spill(tz_store *s, tz_staging *st)
{
	int rc = write_staged(s, st, true);

	if (rc < 0)
		return rc;
	/* every blob and tree is in a pack now: the object database has
	 * them (ids included: 48 bytes each, 6 MiB of table for 100,000 rows) */
	tz_staging__drop_packed(st);
	st->spills++;
	return TZ_OK;
}

/*
 * client.c - one sync cycle of a branch over HTTP (tz_client.h): push the
 * pending bundle in chunks, wait for HQ's import, pull the reply by
 * ranges, import it.  docs/protocol.md ("HTTP transport") is the spec.
 *
 * The branch's spool, <store>/syncd/ (docs/operations.md):
 *   out.tzb              the bundle being pushed; kept until HQ has
 *                        decided on it, so a new cycle (after a cut link,
 *                        a kill, a reboot) resumes it rather than export
 *                        another
 *   in-<digest>.part     a reply being downloaded (its length is what
 *                        this side has)
 */
#include "syncd/syncd_int.h"
#include "syncd/tz_client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "syncd/tz_bundle.h"
#include "syncd/tz_exchange.h"

typedef struct {
	tz_store *s;
	tz_session *h;
	const tz_client_opts *o;
	tz_sync_report *rep;
	tz_buf spool;           /* <store>/syncd */
	tz_buf answer;
} cycle;

static void clog_(cycle *c, const char *fmt, ...) TZ_PRINTF(2, 3);

static void clog_(cycle *c, const char *fmt, ...)
{
	char line[600];
	va_list ap;

	if (c->o->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	tz_spool__safe(line);
	c->o->log(c->o->log_payload, line);
}

static void nap(unsigned attempt)
{
	/* between attempts inside one cycle: 0.2, 0.4, 0.8 s ... */
	struct timespec ts = { 0, 0 };
	uint64_t ms = 200ull << (attempt < 4 ? attempt : 4);

	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	nanosleep(&ts, NULL);
}

/* HQ's error answer as a message: "HTTP 403: <its error line>". */
static int http_error(cycle *c, long status, const char *what)
{
	char msg[400];
	int code = status == 401 || status == 403 ? TZ_EPERM : status == 503 ? TZ_EBUSY : TZ_EPROTO;

	if (tz_http_kv_get(msg, sizeof(msg), c->answer.data, c->answer.len, "error") < 0)
		snprintf(msg, sizeof(msg), "(no message)");
	return tz_error_set(code, "%s: HQ answered HTTP %ld: %s", what, status, msg);
}

static int spool_path(tz_buf *out, cycle *c, const char *name)
{
	tz_buf_clear(out);
	tz_buf_printf(out, "%s/%s", (const char *)c->spool.data, name);
	return tz_buf_error(out);
}

/* ---- push ---- */

/* The bundle to push: the pending one, or a new export. */
static int push_bundle(cycle *c, tz_buf *file, char digest[2 * TZ_HTTP_DIGEST_BYTES + 1], bool *fresh)
{
	tz_buf p = TZ_BUF_INIT;
	tz_export_info info;
	tz_bundle_header bh;
	struct stat st;
	int rc;

	*fresh = false;
	if ((rc = spool_path(&p, c, "out.tzb")) < 0)
		goto done;
	if (stat((const char *)p.data, &st) != 0) {
		if ((rc = tz_sync_export_file(c->s, NULL, (const char *)p.data, &info)) < 0)
			goto done;
		clog_(c, "push: exported sequence %llu, %zu commits, %llu bytes", (unsigned long long)info.sequence,
		      info.ncommits, (unsigned long long)info.file_bytes);
		*fresh = true;
	} else {
		clog_(c, "push: resuming the pending bundle (%lld bytes)", (long long)st.st_size);
	}
	if ((rc = tz_spool__read(file, digest, (const char *)p.data)) < 0)
		goto done;
	if ((rc = tz_bundle_peek(&bh, file->data, file->len)) < 0)
		goto done;
	c->rep->push_sequence = bh.sequence;
	if (bh.bind)
		tz_session_bind(c->h, bh.bind_pk, bh.bind_mac, bh.instance);
	tz_bundle_header_release(&bh);
done:
	tz_buf_release(&p);
	return rc;
}

/* Ask for the upload's state; *offset, and state into `state`. */
static int upload_state(cycle *c, const char *base, char *state, size_t cap, uint64_t *offset)
{
	long status;
	int rc;

	if ((rc = tz_session_request(c->h, "GET", base, NULL, 0, false, &status, &c->answer)) < 0)
		return rc;
	if (status != 200)
		return http_error(c, status, "upload state");
	if (tz_http_kv_get(state, cap, c->answer.data, c->answer.len, "state") < 0 ||
	    tz_http_kv_u64(offset, c->answer.data, c->answer.len, "offset") < 0)
		return tz_error_set(TZ_EPROTO, "upload state: HQ's answer is malformed: %s", tz_error_last());
	if ((strcmp(state, "imported") == 0 || strcmp(state, "noop") == 0 || strcmp(state, "refused") == 0) &&
	    tz_http_kv_get(c->rep->push_message, sizeof(c->rep->push_message), c->answer.data, c->answer.len,
			   "message") < 0)
		snprintf(c->rep->push_message, sizeof(c->rep->push_message), "(no message)");
	return TZ_OK;
}

/* Send chunks from *offset until HQ holds the whole bundle. */
static int send_chunks(cycle *c, const char *base, const tz_buf *file, uint64_t *offset)
{
	uint64_t chunk = c->o->chunk ? c->o->chunk : TZ_HTTP_CHUNK_DEFAULT;
	tz_buf path = TZ_BUF_INIT;
	long status;
	int rc = TZ_OK;

	if (chunk > TZ_HTTP_CHUNK_MAX)
		chunk = TZ_HTTP_CHUNK_MAX;
	/* HQ holds every byte but the upload is not queued (HQ stopped between
	 * its last fsync and the rename): the last chunk again completes it,
	 * HQ writing nothing (H6) */
	if (*offset == file->len && file->len > 0)
		*offset = file->len - (file->len < chunk ? file->len : chunk);
	while (*offset < file->len) {
		uint64_t n = file->len - *offset < chunk ? file->len - *offset : chunk;
		tz_buf_clear(&path);
		tz_buf_printf(&path, "%s/%llu", base, (unsigned long long)*offset);
		if ((rc = tz_buf_error(&path)) < 0)
			break;
		rc = tz_session_request(c->h, "PUT", (const char *)path.data, file->data + *offset, (size_t)n, false,
					&status, &c->answer);
		c->rep->push_sent += tz_session__sent(c->h);
		if (rc < 0)
			break;
		if (status != 200 && status != 409) {
			rc = http_error(c, status, "upload");
			break;
		}
		/* 200: HQ's new offset; 409: where HQ wants this upload to go on */
		if ((rc = tz_http_kv_u64(offset, c->answer.data, c->answer.len, "offset")) < 0)
			break;
		if (*offset > file->len) {
			rc = tz_error_set(TZ_EPROTO, "upload: HQ claims %llu bytes of %zu", (unsigned long long)*offset,
					  file->len);
			break;
		}
		if (c->o->progress)
			c->o->progress("upload", *offset, file->len, c->o->progress_payload);
	}
	tz_buf_release(&path);
	return rc;
}

static bool decided(const char *state)
{
	return strcmp(state, "imported") == 0 || strcmp(state, "noop") == 0 || strcmp(state, "refused") == 0;
}

/* One attempt at the upload: state, chunks, wait for the import. */
static int push_attempt(cycle *c, const char *base, const tz_buf *file, char *state, size_t cap, bool *resumed)
{
	uint64_t offset = 0;
	int rc;

	if ((rc = upload_state(c, base, state, cap, &offset)) < 0)
		return rc;
	if (!*resumed) {
		c->rep->push_resumed_at = offset;
		*resumed = true;
		if (offset && !decided(state))
			clog_(c, "push: HQ holds %llu of %zu bytes; resuming there", (unsigned long long)offset, file->len);
	}
	if (strcmp(state, "none") == 0 || strcmp(state, "partial") == 0) {
		if ((rc = send_chunks(c, base, file, &offset)) < 0)
			return rc;
		if ((rc = upload_state(c, base, state, cap, &offset)) < 0)
			return rc;
	}
	/* queued: HQ holds the request up to 10 s while its import waits */
	for (int i = 0; i < 360 && strcmp(state, "queued") == 0; i++)
		if ((rc = upload_state(c, base, state, cap, &offset)) < 0)
			return rc;
	if (!decided(state))
		return tz_error_set(TZ_EIO, "upload: HQ lost the upload (state '%s'); sending it again", state);
	return TZ_OK;
}

/* Push one bundle, the pending one or a new export (*fresh), until HQ
 * has decided on it. */
static int push_one(cycle *c, bool *fresh)
{
	tz_buf file = TZ_BUF_INIT, base = TZ_BUF_INIT, p = TZ_BUF_INIT;
	char hex[2 * TZ_HTTP_DIGEST_BYTES + 1], state[16] = "";
	unsigned max = c->o->attempts ? c->o->attempts : 5;
	bool resumed = false;
	int rc;

	if ((rc = push_bundle(c, &file, hex, fresh)) < 0)
		goto done;
	c->rep->push_bytes = file.len;
	tz_buf_printf(&base, "/v1/upload/%s/%zu", hex, file.len);
	if ((rc = tz_buf_error(&base)) < 0)
		goto done;
	for (unsigned a = 0; a < max; a++) {
		c->rep->push_attempts++;
		rc = push_attempt(c, (const char *)base.data, &file, state, sizeof(state), &resumed);
		if (rc == TZ_OK || rc == TZ_EPERM || rc == TZ_EPROTO || tz_session__unreachable(c->h))
			break;
		clog_(c, "push: attempt %u failed: %s", a + 1, tz_error_last());
		if (a + 1 < max)
			nap(a);
	}
	if (rc < 0)
		goto done;
	snprintf(c->rep->push_state, sizeof(c->rep->push_state), "%s", state);
	clog_(c, "push: %s by HQ: %s", state, c->rep->push_message);
	/* decided: this bundle is done with (a refused one's commits go again
	 * in the next export) */
	if ((rc = spool_path(&p, c, "out.tzb")) == TZ_OK && unlink((const char *)p.data) != 0)
		rc = tz_error_set(TZ_EIO, "cannot remove '%s': %s", (const char *)p.data, strerror(errno));
done:
	tz_buf_release(&file);
	tz_buf_release(&base);
	tz_buf_release(&p);
	return rc;
}

/* A pending bundle was made before the changes of this cycle: once it is
 * decided, a fresh export carries them, so that a cycle always delivers
 * what the branch holds now. */
static int push(cycle *c)
{
	bool fresh = false;
	int rc = push_one(c, &fresh);

	if (rc == TZ_OK && !fresh)
		rc = push_one(c, &fresh);
	return rc;
}

/* ---- pull ---- */

static bool reply_part(const char *name)
{
	return strncmp(name, "in-", 3) == 0;
}

/* One download attempt of the reply into `part`, from what it holds. */
static int download_attempt(cycle *c, const char *digest, const char *part, uint64_t size, bool first)
{
	tz_buf path = TZ_BUF_INIT;
	struct stat st;
	uint64_t got = 0;
	long status = 0;
	int fd, rc;

	if ((fd = open(part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
		return tz_error_set(TZ_EIO, "cannot open '%s': %s", part, strerror(errno));
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > size) {
		close(fd);
		unlink(part);
		return tz_error_set(TZ_EIO, "'%s' is longer than the reply; starting again", part);
	}
	if (first) {
		c->rep->pull_resumed_at = (uint64_t)st.st_size;
		if (st.st_size)
			clog_(c, "pull: %lld of %llu bytes already here; resuming there", (long long)st.st_size,
			      (unsigned long long)size);
	}
	tz_buf_printf(&path, "/v1/reply/%s", digest);
	if ((rc = tz_buf_error(&path)) == TZ_OK && (uint64_t)st.st_size < size)
		rc = tz_session__download(c->h, (const char *)path.data, (uint64_t)st.st_size, size, fd, &status, &got,
					  &c->answer);
	c->rep->pull_received += got;
	if (rc == TZ_OK && (uint64_t)st.st_size < size && status != 200 && status != 206)
		rc = http_error(c, status, "download");
	if (rc == TZ_OK && (tz_faultsim(TZ_FAULT_FSYNC) || fsync(fd) != 0))
		rc = tz_error_set(TZ_EIO, "cannot write '%s': fsync", part);
	close(fd);
	tz_buf_release(&path);
	return rc;
}

/* Ask HQ for its reply: digest and size. */
static int reply_make(cycle *c, char *digest, size_t cap, uint64_t *size)
{
	long status;
	int rc;

	if ((rc = tz_session_request(c->h, "POST", "/v1/reply", NULL, 0, false, &status, &c->answer)) < 0)
		return rc;
	if (status != 200)
		return http_error(c, status, "reply");
	uint8_t raw[32];
	/* the digest names a file and a URL: lower-case hex only */
	if (tz_http_kv_get(digest, cap, c->answer.data, c->answer.len, "digest") < 0 || strlen(digest) != 64 ||
	    tz_unhex(raw, sizeof(raw), digest, 64) < 0 ||
	    tz_http_kv_u64(size, c->answer.data, c->answer.len, "size") < 0 || *size > TZ_BUNDLE_MAX_BYTES)
		return tz_error_set(TZ_EPROTO, "reply: HQ's answer is malformed");
	return TZ_OK;
}

static int pull_import(cycle *c, const char *part, const char *digest)
{
	tz_buf file = TZ_BUF_INIT;
	tz_bundle_header bh;
	tz_import_result r;
	char hex[2 * TZ_HTTP_DIGEST_BYTES + 1];
	int rc = tz_spool__read(&file, hex, part);

	tz_buf_release(&file);
	if (rc < 0)
		return rc;
	if (strcmp(hex, digest) != 0) {
		unlink(part);
		return tz_error_set(TZ_EIO, "the reply downloaded does not hash to its name; it is fetched again");
	}
	if ((rc = tz_sync_import_file(c->s, part, &bh, &r, NULL)) < 0)
		return rc;
	c->rep->pull_noop = r.noop;
	c->rep->pull_commits = r.commits;
	c->rep->pull_commits_new = r.commits_new;
	c->rep->pull_rows_written = r.rows_written;
	clog_(c, "pull: imported sequence %llu: %s%zu commits (%zu new), %llu rows written",
	      (unsigned long long)bh.sequence, r.noop ? "nothing new, " : "", r.commits, r.commits_new,
	      (unsigned long long)r.rows_written);
	tz_bundle_header_release(&bh);
	tz_import_result_release(&r);
	unlink(part);
	return TZ_OK;
}

static int pull(cycle *c)
{
	tz_buf part = TZ_BUF_INIT, name = TZ_BUF_INIT;
	char digest[80];
	uint64_t size = 0;
	unsigned max = c->o->attempts ? c->o->attempts : 5;
	bool have = false;
	int rc = TZ_OK;

	for (unsigned a = 0; a < max; a++) {
		c->rep->pull_attempts++;
		if (!have) {
			if ((rc = reply_make(c, digest, sizeof(digest), &size)) < 0)
				goto retry;
			have = true;
			c->rep->pull_bytes = size;
			tz_buf_clear(&name);
			tz_buf_printf(&name, "in-%s.part", digest);
			if ((rc = tz_buf_error(&name)) < 0 || (rc = spool_path(&part, c, (const char *)name.data)) < 0)
				break;
			tz_spool__prune((const char *)c->spool.data, (const char *)name.data, reply_part);
		}
		/* the same reply, by ranges, while HQ keeps it */
		if ((rc = download_attempt(c, digest, (const char *)part.data, size, a == 0)) == TZ_OK &&
		    (rc = pull_import(c, (const char *)part.data, digest)) == TZ_OK)
			break;
		if (rc == TZ_EPROTO)   /* HQ no longer has it (404): ask again */
			have = false;
retry:
		if ((rc != TZ_EIO && rc != TZ_EBUSY && rc != TZ_EPROTO) || tz_session__unreachable(c->h))
			break;
		clog_(c, "pull: attempt %u failed: %s", a + 1, tz_error_last());
		if (a + 1 < max)
			nap(a);
	}
	tz_buf_release(&part);
	tz_buf_release(&name);
	return rc;
}

int tz_client_sync(tz_store *s, const char *url, const tz_client_opts *o, tz_sync_report *rep)
{
	cycle c;
	int64_t t0 = tz_monotonic_ms();
	int rc;

	memset(rep, 0, sizeof(*rep));
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.o = o;
	c.rep = rep;
	tz_buf_printf(&c.spool, "%s/syncd", tz_store_dir(s));
	if ((rc = tz_buf_error(&c.spool)) < 0)
		goto done;
	if (mkdir((const char *)c.spool.data, 0700) != 0 && errno != EEXIST) {
		rc = tz_error_set(TZ_EIO, "cannot create '%s': %s", (const char *)c.spool.data, strerror(errno));
		goto done;
	}
	if ((rc = tz_session_open(&c.h, s, url, o)) < 0 || (rc = push(&c)) < 0 || (rc = pull(&c)) < 0)
		goto done;
done:
	rep->elapsed_ms = tz_monotonic_ms() - t0;
	tz_session_close(c.h);
	tz_buf_release(&c.answer);
	tz_buf_release(&c.spool);
	if (rc < 0)
		tz_error_wrap(rc, "sync with %s", url);
	return rc;
}

int tz_client_url(tz_store *s, const char *given, char *out, size_t cap)
{
	tz_buf path = TZ_BUF_INIT, conf = TZ_BUF_INIT;
	int rc = TZ_OK;

	if (given) {
		if (strlen(given) >= cap)
			return tz_error_set(TZ_ELIMIT, "HQ's URL is too long");
		memcpy(out, given, strlen(given) + 1);
		return TZ_OK;
	}
	out[0] = '\0';
	tz_buf_printf(&path, "%s/config", tz_store_dir(s));
	/* the config is a handful of short lines (store.c reads 64 KiB) */
	if ((rc = tz_buf_error(&path)) < 0 || (rc = tz_file_read(&conf, (const char *)path.data, 65536)) < 0)
		goto done;
	rc = tz_error_set(TZ_ENOTFOUND, "no HQ URL: give one, or add 'hq_url = http://HOST:PORT' to '%s'",
			  (const char *)path.data);
	for (size_t i = 0; i < conf.len;) {
		const char *line = (const char *)conf.data + i, *nl = memchr(line, '\n', conf.len - i);
		size_t n = nl ? (size_t)(nl - line) : conf.len - i, k = 6;
		i += n + 1;
		if (n < 6 || memcmp(line, "hq_url", 6) != 0)
			continue;
		while (k < n && (line[k] == ' ' || line[k] == '='))
			k++;
		if (n - k == 0 || n - k >= cap) {
			rc = tz_error_set(TZ_ELIMIT, "'%s': bad 'hq_url' line", (const char *)path.data);
			break;
		}
		memcpy(out, line + k, n - k);
		out[n - k] = '\0';
		rc = TZ_OK;
	}
done:
	tz_buf_release(&path);
	tz_buf_release(&conf);
	return rc;
}

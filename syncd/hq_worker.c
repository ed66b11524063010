/*
 * hq_worker.c - HQ's one worker thread: it owns the store handle that
 * imports and exports, so two branches' merges never interleave and a
 * reply is made after every import queued before it (FIFO).  Also the
 * spool's paths (<dir>/syncd/, docs/operations.md):
 *
 *   up/<CODE>/<digest>.<total>.part   an upload in progress; its length is
 *                                     what HQ holds (every acknowledged
 *                                     chunk was fsynced first)
 *   up/<CODE>/<digest>.tzb            complete, waiting for its import
 *   up/<CODE>/<digest>.state          the import's outcome (first line
 *                                     "imported", "noop" or "refused",
 *                                     second line the message)
 *   reply/<CODE>/<digest>.tzb         the newest reply made for CODE
 *
 * Crash safety: an upload is queued by renaming its .part (after the last
 * fsync); the import is all-or-nothing in the store; the .state is written
 * after it, then the .tzb removed.  A kill in between leaves the .tzb,
 * which the next start imports again: the store sees the same bundle
 * (P1) and records a no-op, so nothing is applied twice.
 */
#include "syncd/syncd_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conflict/tz_conflict.h"
#include "syncd/tz_exchange.h"

void tz_hq__log(tz_hq *h, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (h->o.log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	tz_spool__safe(line);
	h->o.log(h->o.log_payload, line);
}

int tz_hq__path(tz_buf *out, const tz_hq *h, const char *area, const char *code, const char *name, const char *suffix)
{
	tz_buf_clear(out);
	tz_buf_printf(out, "%s/%s/%s/%s%s", h->spool, area, code, name, suffix);
	return tz_buf_error(out);
}

static int mkdir_one(const char *p)
{
	if (mkdir(p, 0700) != 0 && errno != EEXIST)
		return tz_error_set(TZ_EIO, "cannot create '%s': %s", p, strerror(errno));
	return TZ_OK;
}

int tz_hq__mkdirs(const tz_hq *h, const char *area, const char *code)
{
	tz_buf p = TZ_BUF_INIT;
	int rc;

	tz_buf_printf(&p, "%s", h->spool);
	if ((rc = tz_buf_error(&p)) < 0 || (rc = mkdir_one((const char *)p.data)) < 0)
		goto done;
	tz_buf_printf(&p, "/%s", area);
	if ((rc = tz_buf_error(&p)) < 0 || (rc = mkdir_one((const char *)p.data)) < 0 || code == NULL)
		goto done;
	tz_buf_printf(&p, "/%s", code);
	if ((rc = tz_buf_error(&p)) == TZ_OK)
		rc = mkdir_one((const char *)p.data);
done:
	tz_buf_release(&p);
	return rc;
}

static void job_push(tz_hq *h, hq_job *j)
{
	j->next = NULL;
	if (h->tail)
		h->tail->next = j;
	else
		h->head = j;
	h->tail = j;
	pthread_cond_signal(&h->cv_job);
}

int tz_hq__queue_import(tz_hq *h, const char *code, const char *digest)
{
	hq_job *j = tz_calloc(1, sizeof(*j));

	if (j == NULL)
		return TZ_ENOMEM;
	j->kind = HQ_JOB_IMPORT;
	snprintf(j->code, sizeof(j->code), "%s", code);
	snprintf(j->digest, sizeof(j->digest), "%s", digest);
	pthread_mutex_lock(&h->mu);
	if (h->stopping)
		tz_free(j);   /* the .tzb stays: the next start imports it */
	else
		job_push(h, j);
	pthread_mutex_unlock(&h->mu);
	return TZ_OK;
}

int tz_hq__reply(tz_hq *h, hq_job *j)
{
	j->kind = HQ_JOB_REPLY;
	j->done = false;
	pthread_mutex_lock(&h->mu);
	if (h->stopping) {
		pthread_mutex_unlock(&h->mu);
		snprintf(j->msg, sizeof(j->msg), "HQ is shutting down");
		return TZ_EBUSY;
	}
	job_push(h, j);
	while (!j->done)
		pthread_cond_wait(&h->cv_done, &h->mu);
	pthread_mutex_unlock(&h->mu);
	return j->rc;
}

uint64_t tz_hq__generation(tz_hq *h)
{
	pthread_mutex_lock(&h->mu);
	uint64_t g = h->generation;
	pthread_mutex_unlock(&h->mu);
	return g;
}

bool tz_hq__wait_generation(tz_hq *h, uint64_t seen, int64_t ms)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&h->mu);
	while (!h->stopping && h->generation == seen)
		if (pthread_cond_timedwait(&h->cv_done, &h->mu, &until) != 0)
			break;
	ok = !h->stopping;
	pthread_mutex_unlock(&h->mu);
	return ok;
}

/* ---- the jobs ---- */

static int count_conflict(const tz_conflict *c, void *payload)
{
	uint64_t *open = payload;

	for (int k = 0; k < TZ_KIND_COUNT; k++)
		if (strcmp(c->kind, tz_conflict_kind_name((tz_conflict_kind)k)) == 0)
			open[k]++;
	return 0;
}

static void refresh_conflicts(tz_hq *h)
{
	tz_conflict_filter f = { NULL, NULL, false, 0 };
	uint64_t open[TZ_KIND_COUNT] = { 0 };

	if (tz_conflicts_list(h->ws, &f, count_conflict, open) == TZ_OK)
		tz_hq__conflicts(h, open);
	else
		tz_hq__log(h, "cannot count the open conflicts: %s", tz_error_last());
}

/* Write the outcome of an import next to its upload. */
static void write_state(tz_hq *h, const char *code, const char *digest, const char *word, const char *msg)
{
	tz_buf p = TZ_BUF_INIT, body = TZ_BUF_INIT;
	char clean[512];

	/* the message may quote what a branch sent: one printable line */
	snprintf(clean, sizeof(clean), "%s", msg);
	tz_spool__safe(clean);
	tz_buf_printf(&body, "%s\n%s\n", word, clean);
	if (tz_hq__path(&p, h, "up", code, digest, ".state") < 0 || tz_buf_error(&body) < 0 ||
	    tz_file_write_durable((const char *)p.data, body.data, body.len) < 0)
		tz_hq__log(h, "import %s %.12s: cannot record its outcome: %s", code, digest, tz_error_last());
	tz_buf_release(&p);
	tz_buf_release(&body);
}

/* Check what a complete upload holds before the store sees it: its digest
 * (the upload's name) and its sender (the authenticated branch). */
static int upload_check(const char *path, const char *code, const char *digest)
{
	tz_buf file = TZ_BUF_INIT;
	tz_bundle_header bh;
	char hex[2 * TZ_HTTP_DIGEST_BYTES + 1];
	int rc;

	if ((rc = tz_spool__read(&file, hex, path)) < 0)
		return rc;
	if (strcmp(hex, digest) != 0)
		rc = tz_error_set(TZ_EVERIFY, "the uploaded bytes do not hash to the upload's name (upload it again)");
	else if ((rc = tz_bundle_peek(&bh, file.data, file.len)) == TZ_OK) {
		if (strcmp(bh.sender, code) != 0)
			rc = tz_error_set(TZ_EPERM, "'%s' uploaded a bundle from '%s'", code, bh.sender);
		tz_bundle_header_release(&bh);
	}
	tz_buf_release(&file);
	return rc;
}

/* Every import adds packs: once they pile up, one (DESIGN §11, gc.c).
 * A failure is logged; the store is intact and the next import retries. */
static void run_gc(tz_hq *h)
{
	char msg[256];

	if (tz_sync_gc_if_due(h->ws, msg, sizeof(msg)) != 0)
		tz_hq__log(h, "%s", msg);
}

static void job_import(tz_hq *h, hq_job *j)
{
	tz_buf p = TZ_BUF_INIT;
	tz_bundle_header bh;
	tz_import_result r;
	tz_merge_summary ms;
	char msg[400];
	int64_t t0 = tz_monotonic_ms();
	int rc, outcome;

	if ((rc = tz_hq__path(&p, h, "up", j->code, j->digest, ".tzb")) < 0)
		goto fail;
	tz_hq__log(h, "import %s %.12s: started", j->code, j->digest);
	if ((rc = upload_check((const char *)p.data, j->code, j->digest)) == TZ_EVERIFY) {
		tz_hq__log(h, "import %s %.12s: %s", j->code, j->digest, tz_error_last());
		unlink((const char *)p.data);
		goto done;
	}
	if (rc == TZ_OK)
		rc = tz_sync_import_file(h->ws, (const char *)p.data, &bh, &r, &ms);
	if (rc < 0)
		goto fail;
	outcome = r.noop ? 1 : 0;
	uint64_t queued = 0;
	for (int k = 0; k < TZ_KIND_COUNT; k++)
		queued += ms.queued[k];   /* every kind, the integrity ones too */
	if (r.noop)
		snprintf(msg, sizeof(msg), "nothing new (%s)", r.noop_why);
	else
		snprintf(msg, sizeof(msg), "sequence %llu: %zu commits (%zu new), %llu rows merged, %zu not applied, "
			 "%llu conflicts queued", (unsigned long long)bh.sequence, r.commits, r.commits_new,
			 (unsigned long long)r.rows_merged, r.nrefused, (unsigned long long)queued);
	tz_bundle_header_release(&bh);
	tz_import_result_release(&r);
	tz_hq__merge_time(h, (double)(tz_monotonic_ms() - t0) / 1000.0, outcome);
	tz_hq__branch_time(h, j->code, false, (int64_t)time(NULL));
	write_state(h, j->code, j->digest, outcome ? "noop" : "imported", msg);
	tz_hq__log(h, "import %s %.12s: %s (%.3f s)", j->code, j->digest, msg, (double)(tz_monotonic_ms() - t0) / 1000.0);
	refresh_conflicts(h);
	unlink((const char *)p.data);
	run_gc(h);
	goto done;
fail:
	snprintf(msg, sizeof(msg), "%s", tz_error_last());
	tz_hq__merge_time(h, (double)(tz_monotonic_ms() - t0) / 1000.0, 2);
	write_state(h, j->code, j->digest, "refused", msg);
	tz_hq__log(h, "import %s %.12s: refused: %s", j->code, j->digest, msg);
	unlink((const char *)p.data);
done:
	tz_buf_release(&p);
}

static bool any_file(const char *name)
{
	(void)name;
	return true;
}

static int job_reply(tz_hq *h, hq_job *j)
{
	tz_buf tmp = TZ_BUF_INIT, final = TZ_BUF_INIT, file = TZ_BUF_INIT;
	tz_export_info info;
	char keep[2 * TZ_HTTP_DIGEST_BYTES + 8];
	int rc;

	if ((rc = tz_hq__mkdirs(h, "reply", j->code)) < 0 || (rc = tz_hq__path(&tmp, h, "reply", j->code, ".new", "")) < 0 ||
	    (rc = tz_sync_export_file(h->ws, j->code, (const char *)tmp.data, &info)) < 0 ||
	    (rc = tz_spool__read(&file, j->reply_digest, (const char *)tmp.data)) < 0)
		goto done;
	j->reply_size = file.len;
	if ((rc = tz_hq__path(&final, h, "reply", j->code, j->reply_digest, ".tzb")) < 0)
		goto done;
	if (rename((const char *)tmp.data, (const char *)final.data) != 0) {
		rc = tz_error_set(TZ_EIO, "cannot place the reply: %s", strerror(errno));
		goto done;
	}
	/* only the newest reply is kept (H8) */
	snprintf(keep, sizeof(keep), "%s.tzb", j->reply_digest);
	if (tz_hq__path(&tmp, h, "reply", j->code, "", "") == TZ_OK)
		tz_spool__prune((const char *)tmp.data, keep, any_file);
	tz_buf_clear(&tmp);
	tz_hq__log(h, "reply %s %.12s: sequence %llu, %zu commits, %llu bytes", j->code, j->reply_digest,
		   (unsigned long long)info.sequence, info.ncommits, (unsigned long long)file.len);
done:
	if (rc < 0) {
		snprintf(j->msg, sizeof(j->msg), "%s", tz_error_last());
		tz_hq__log(h, "reply %s: %s", j->code, j->msg);
		if (tmp.len)
			unlink((const char *)tmp.data);
	}
	tz_buf_release(&tmp);
	tz_buf_release(&final);
	tz_buf_release(&file);
	return rc;
}

static void *worker_main(void *arg)
{
	tz_hq *h = arg;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->stopping && h->head == NULL)
			pthread_cond_wait(&h->cv_job, &h->mu);
		if (h->stopping)
			break;
		hq_job *j = h->head;
		h->head = j->next;
		if (h->head == NULL)
			h->tail = NULL;
		pthread_mutex_unlock(&h->mu);
		if (j->kind == HQ_JOB_IMPORT) {
			job_import(h, j);
			tz_free(j);
			j = NULL;
		} else {
			int rc = job_reply(h, j);
			if (rc == TZ_OK)
				tz_hq__count(h, &h->m.bundles_out, 1);
			j->rc = rc;
		}
		pthread_mutex_lock(&h->mu);
		if (j)
			j->done = true;   /* the waiting connection owns it */
		h->generation++;
		pthread_cond_broadcast(&h->cv_done);
	}
	/* stopping: the waiting replies get an answer; queued imports stay on
	 * disk (.tzb) for the next start */
	while (h->head) {
		hq_job *j = h->head;
		h->head = j->next;
		if (j->kind == HQ_JOB_IMPORT) {
			tz_free(j);
			continue;
		}
		j->rc = TZ_EBUSY;
		snprintf(j->msg, sizeof(j->msg), "HQ is shutting down");
		j->done = true;
	}
	h->tail = NULL;
	pthread_cond_broadcast(&h->cv_done);
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/* Queue the uploads a previous run completed but did not import. */
static int scan_queued(tz_hq *h)
{
	tz_buf p = TZ_BUF_INIT;
	DIR *top, *d;
	struct dirent *e, *f;
	int rc = TZ_OK;

	tz_buf_printf(&p, "%s/up", h->spool);
	if (tz_buf_error(&p) < 0 || (top = opendir((const char *)p.data)) == NULL) {
		tz_buf_release(&p);
		return TZ_OK;
	}
	while (rc == TZ_OK && (e = readdir(top)) != NULL) {
		if (!tz_code_valid(e->d_name))
			continue;
		tz_buf_clear(&p);
		tz_buf_printf(&p, "%s/up/%s", h->spool, e->d_name);
		if (tz_buf_error(&p) < 0 || (d = opendir((const char *)p.data)) == NULL)
			continue;
		while (rc == TZ_OK && (f = readdir(d)) != NULL) {
			size_t n = strlen(f->d_name);
			if (n == 2 * TZ_HTTP_DIGEST_BYTES + 4 && strcmp(f->d_name + n - 4, ".tzb") == 0) {
				char digest[2 * TZ_HTTP_DIGEST_BYTES + 1];
				memcpy(digest, f->d_name, n - 4);
				digest[n - 4] = '\0';
				tz_hq__log(h, "import %s %.12s: queued by an earlier run", e->d_name, digest);
				rc = tz_hq__queue_import(h, e->d_name, digest);
			}
		}
		closedir(d);
	}
	closedir(top);
	tz_buf_release(&p);
	return rc;
}

int tz_hq__worker_start(tz_hq *h)
{
	int rc;

	refresh_conflicts(h);
	if ((rc = scan_queued(h)) < 0)
		return rc;
	if (pthread_create(&h->worker, NULL, worker_main, h) != 0)
		return tz_error_set(TZ_EIO, "cannot start the worker thread");
	h->worker_started = true;
	return TZ_OK;
}

void tz_hq__worker_stop(tz_hq *h)
{
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	pthread_cond_broadcast(&h->cv_job);
	pthread_cond_broadcast(&h->cv_done);
	pthread_mutex_unlock(&h->mu);
	if (h->worker_started)
		pthread_join(h->worker, NULL);
	h->worker_started = false;
	/* jobs queued after the worker left (none can be: stopping is set
	 * before) would leak; free what is left */
	while (h->head) {
		hq_job *j = h->head;
		h->head = j->next;
		if (j->kind == HQ_JOB_IMPORT)
			tz_free(j);
	}
	h->tail = NULL;
}

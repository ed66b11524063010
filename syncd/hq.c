/*
 * hq.c - HQ's HTTP server (tz_hq.h) on libmicrohttpd: routes, request
 * authentication, resumable chunk uploads, ranged reply downloads and
 * GET /metrics.  docs/protocol.md ("HTTP transport") is the spec.
 *
 * Before a request is authenticated HQ reads only its request line and
 * headers (libmicrohttpd's per-connection memory limit bounds them) and
 * never its body: a refused request is answered, and the connection
 * closed, before any body byte is taken.  After: a chunk of at most
 * TZ_HTTP_CHUNK_MAX bytes, its declared length checked first.
 */
#include "syncd/syncd_int.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "syncd/tz_bundle.h"
#include "syncd/tz_exchange.h"

/* Headers and the request line of one connection: a signed request's
 * headers are under 1 KiB; 16 KiB refuses anything much bigger. */
#define HQ_CONN_MEMORY (16 * 1024)
/* Open challenges: several per branch syncing at once; 4096 serves
 * hundreds of branches and is 400 KiB of table. */
#define HQ_CHALLENGES 4096
/* A challenge is good for one sync cycle: 10 minutes covers the upload of
 * a large bundle over a slow link between two challenges. */
#define HQ_CHALLENGE_MS (10 * 60 * 1000)
/* How long a state request waits for an import still queued. */
#define HQ_STATE_WAIT_MS 10000

/* One request in progress (libmicrohttpd's con_cls). */
typedef struct {
	tz_http_route route;
	tz_http_auth auth;
	bool authed;
	tz_buf body;              /* the chunk, at most its Content-Length */
	uint64_t expect;          /* Content-Length */
	/* a reply download */
	int fd;
	uint64_t from, size, sent;
	tz_hq *h;
} request;

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *fmt, ...) TZ_PRINTF(3, 4);

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
	char body[1024];
	va_list ap;
	struct MHD_Response *r;
	enum MHD_Result ret;

	va_start(ap, fmt);
	int n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(body))
		n = sizeof(body) - 1;
	r = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* An error as "error <message>" with the status its code maps to. */
static enum MHD_Result answer_error(struct MHD_Connection *c, int code, const char *msg)
{
	unsigned status;
	char clean[512];
	size_t i = 0;

	switch (code) {
	case TZ_ENOTFOUND: status = MHD_HTTP_NOT_FOUND; break;
	case TZ_EINVAL: status = MHD_HTTP_METHOD_NOT_ALLOWED; break;
	case TZ_ECORRUPT: status = MHD_HTTP_BAD_REQUEST; break;
	case TZ_ELIMIT: status = MHD_HTTP_CONTENT_TOO_LARGE; break;
	case TZ_EVERIFY: status = MHD_HTTP_UNAUTHORIZED; break;
	case TZ_EPERM: status = MHD_HTTP_FORBIDDEN; break;
	case TZ_EPROTO: case TZ_EEXISTS: status = MHD_HTTP_CONFLICT; break;
	case TZ_EBUSY: status = MHD_HTTP_SERVICE_UNAVAILABLE; break;
	default: status = MHD_HTTP_INTERNAL_SERVER_ERROR; break;
	}
	for (; msg[i] && i + 1 < sizeof(clean); i++)
		clean[i] = (msg[i] < 0x20 || msg[i] == 0x7f) ? ' ' : msg[i];
	clean[i] = '\0';
	return answer(c, status, "error %s\n", clean);
}

/* ---- authentication ---- */

static int key_of(tz_hq *h, const tz_http_auth *a, uint8_t pk[TZ_PK_BYTES])
{
	int rc;

	if (strcmp(a->code, "HQ") == 0)
		return tz_error_set(TZ_EPERM, "HQ does not sync with itself");
	pthread_mutex_lock(&h->rs_mu);
	rc = tz_store_sender_key(h->rs, a->code, a->bind, a->pk, a->mac, a->instance, pk);
	pthread_mutex_unlock(&h->rs_mu);
	if (rc == TZ_ENOTFOUND)
		rc = tz_error_set(TZ_EPERM, "unknown branch '%s'", a->code);
	return rc;
}

/* Authenticate the request's headers: TZ_OK, or the code to answer with
 * (message set), counting the failure. */
static int authenticate(tz_hq *h, struct MHD_Connection *c, request *rq, const char *method, const char *url)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	uint8_t pk[TZ_PK_BYTES];
	int rc;

	if (v == NULL) {
		tz_hq__count(h, &h->m.auth_fail[0], 1);
		return tz_error_set(TZ_EVERIFY, "this request must be signed (Authorization: Tazamun ...)");
	}
	if ((rc = tz_http_auth_parse(&rq->auth, v, strlen(v))) < 0) {
		tz_hq__count(h, &h->m.auth_fail[0], 1);
		return rc == TZ_ELIMIT ? rc : TZ_ECORRUPT;
	}
	if ((rc = key_of(h, &rq->auth, pk)) < 0) {
		tz_hq__count(h, &h->m.auth_fail[3], 1);
		return rc;
	}
	if ((rc = tz_http_auth_verify(&rq->auth, pk, method, url)) < 0) {
		tz_hq__count(h, &h->m.auth_fail[1], 1);
		return rc;
	}
	if ((rc = tz_challenges_use(h->ch, rq->auth.nonce, rq->auth.code, rq->auth.n, tz_monotonic_ms())) < 0) {
		char why[256];
		tz_hq__count(h, &h->m.auth_fail[2], 1);
		/* an unknown challenge and a replay both mean "sign anew" (401) */
		snprintf(why, sizeof(why), "%s", tz_error_last());
		return tz_error_set(TZ_EVERIFY, "%s", why);
	}
	return TZ_OK;
}

/* ---- uploads ---- */

static int part_path(tz_buf *p, tz_hq *h, const request *rq)
{
	char suffix[32];

	snprintf(suffix, sizeof(suffix), ".%llu.part", (unsigned long long)rq->route.total);
	return tz_hq__path(p, h, "up", rq->auth.code, rq->route.digest_hex, suffix);
}

static bool exists(tz_buf *p)
{
	struct stat st;

	return stat((const char *)p->data, &st) == 0;
}

/* The state of upload `rq` as an answer body: from its .state, .tzb or
 * .part file. */
static enum MHD_Result upload_state(tz_hq *h, struct MHD_Connection *c, const request *rq)
{
	tz_buf p = TZ_BUF_INIT, st = TZ_BUF_INIT;
	struct stat sb;
	enum MHD_Result ret;

	if (tz_hq__path(&p, h, "up", rq->auth.code, rq->route.digest_hex, ".state") == TZ_OK &&
	    tz_file_read(&st, (const char *)p.data, 4096) == TZ_OK) {
		/* the NUL first: it may move the buffer, and the pointers below
		 * point into it */
		tz_buf_putc(&st, '\0');
		char *nl = tz_buf_error(&st) == TZ_OK ? memchr(st.data, '\n', st.len) : NULL;
		const char *word = tz_buf_error(&st) == TZ_OK ? (const char *)st.data : "unknown";
		const char *msg = nl ? nl + 1 : "";
		if (nl)
			*nl = '\0';
		char *end = strchr(msg, '\n');
		if (end)
			*end = '\0';
		ret = answer(c, MHD_HTTP_OK, "state %s\noffset %llu\nmessage %s\n", word,
			     (unsigned long long)rq->route.total, msg);
	} else if (tz_hq__path(&p, h, "up", rq->auth.code, rq->route.digest_hex, ".tzb") == TZ_OK && exists(&p)) {
		ret = answer(c, MHD_HTTP_OK, "state queued\noffset %llu\n", (unsigned long long)rq->route.total);
	} else if (part_path(&p, h, rq) == TZ_OK && stat((const char *)p.data, &sb) == 0) {
		ret = answer(c, MHD_HTTP_OK, "state partial\noffset %llu\n", (unsigned long long)sb.st_size);
	} else {
		ret = answer(c, MHD_HTTP_OK, "state none\noffset 0\n");
	}
	tz_buf_release(&p);
	tz_buf_release(&st);
	return ret;
}

static enum MHD_Result upload_state_wait(tz_hq *h, struct MHD_Connection *c, const request *rq)
{
	tz_buf p = TZ_BUF_INIT;
	int64_t until = tz_monotonic_ms() + HQ_STATE_WAIT_MS;

	/* a long poll: while the upload is queued, wait for imports to finish */
	while (tz_hq__path(&p, h, "up", rq->auth.code, rq->route.digest_hex, ".tzb") == TZ_OK && exists(&p)) {
		uint64_t g = tz_hq__generation(h);
		int64_t left = until - tz_monotonic_ms();
		if (!exists(&p) || left <= 0 || !tz_hq__wait_generation(h, g, left))
			break;
	}
	tz_buf_release(&p);
	return upload_state(h, c, rq);
}

/* A branch starts a new upload: remove its other partial uploads (one at
 * a time per branch bounds what a branch can leave on HQ's disk) and the
 * outcomes of its earlier ones (a branch starts a new upload only once it
 * has read the outcome of the one before, H7). */
static bool older_upload(const char *name)
{
	size_t n = strlen(name);

	return (n > 5 && strcmp(name + n - 5, ".part") == 0) || (n > 6 && strcmp(name + n - 6, ".state") == 0);
}

static void drop_older(tz_hq *h, const char *code, const char *keep)
{
	tz_buf dir = TZ_BUF_INIT;

	tz_buf_printf(&dir, "%s/up/%s", h->spool, code);
	if (tz_buf_error(&dir) == TZ_OK)
		tz_spool__prune((const char *)dir.data, keep, older_upload);
	tz_buf_release(&dir);
}

/* Append what the plan says to the locked .part file fd, fsync it.  On a
 * failure the file goes back to the `at` bytes it held: a part written, or
 * written and not synced, would otherwise count as held at the next
 * request (its length is what HQ tells the branch it has). */
static int chunk_write(int fd, const tz_chunk_plan *plan, const uint8_t *data, uint64_t at)
{
	int rc = TZ_OK;

	for (uint64_t off = 0; off < plan->append && rc == TZ_OK;) {
		if (tz_faultsim(TZ_FAULT_WRITE)) {
			rc = tz_error_set(TZ_EIO, "cannot write the chunk: injected fault");
			break;
		}
		ssize_t w = pwrite(fd, data + plan->skip + off, (size_t)(plan->append - off), (off_t)(at + off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			rc = tz_error_set(TZ_EIO, "cannot write the chunk: %s", strerror(w < 0 ? errno : ENOSPC));
		else
			off += (uint64_t)w;
	}
	/* acknowledged only once durable */
	if (rc == TZ_OK && tz_faultsim(TZ_FAULT_FSYNC))
		rc = tz_error_set(TZ_EIO, "cannot write the chunk: fsync: injected fault");
	else if (rc == TZ_OK && fsync(fd) != 0)
		rc = tz_error_set(TZ_EIO, "cannot write the chunk: fsync: %s", strerror(errno));
	if (rc < 0 && ftruncate(fd, (off_t)at) != 0) {
		int e = errno;
		char why[256];
		snprintf(why, sizeof(why), "%s", tz_error_last());
		rc = tz_error_set(rc, "%s; and cannot cut the upload back to its %llu bytes: %s", why,
				  (unsigned long long)at, strerror(e));
	}
	return rc;
}

/* Complete: the .part becomes the .tzb the worker imports. */
static int chunk_complete(tz_hq *h, const request *rq, tz_buf *part)
{
	tz_buf tzb = TZ_BUF_INIT;
	int rc;

	if ((rc = tz_hq__path(&tzb, h, "up", rq->auth.code, rq->route.digest_hex, ".tzb")) == TZ_OK) {
		if (rename((const char *)part->data, (const char *)tzb.data) != 0) {
			rc = tz_error_set(TZ_EIO, "cannot queue the upload: %s", strerror(errno));
		} else {
			*strrchr((char *)tzb.data, '/') = '\0';
			(void)tz_spool__sync_dir((const char *)tzb.data);   /* else the .part is back after a crash: H6 */
			rc = tz_hq__queue_import(h, rq->auth.code, rq->route.digest_hex);
		}
	}
	tz_buf_release(&tzb);
	if (rc == TZ_OK)
		tz_hq__log(h, "upload %s %.12s: complete, %llu bytes, queued for import", rq->auth.code,
			   rq->route.digest_hex, (unsigned long long)rq->route.total);
	return rc;
}

/* Is the upload queued or decided already? */
static bool upload_complete(tz_hq *h, const request *rq)
{
	tz_buf p = TZ_BUF_INIT;
	bool yes = (tz_hq__path(&p, h, "up", rq->auth.code, rq->route.digest_hex, ".tzb") == TZ_OK && exists(&p)) ||
		   (tz_hq__path(&p, h, "up", rq->auth.code, rq->route.digest_hex, ".state") == TZ_OK && exists(&p));

	tz_buf_release(&p);
	return yes;
}

/* Open and lock the upload's .part file: TZ_OK with *fd and *held (its
 * length), or TZ_EEXISTS when the upload is complete already (checked
 * again under the lock: a concurrent request may just have completed it;
 * the empty file this open made is removed). */
static int part_open(tz_hq *h, const request *rq, tz_buf *part, int *fd, uint64_t *held)
{
	struct stat sb;
	int rc;

	*fd = -1;
	if ((rc = tz_hq__mkdirs(h, "up", rq->auth.code)) < 0 || (rc = part_path(part, h, rq)) < 0)
		return rc;
	if ((*fd = open((const char *)part->data, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return tz_error_set(TZ_EIO, "cannot open the upload: %s", strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0)
		return tz_error_set(TZ_EBUSY, "another request is writing this upload");
	if (fstat(*fd, &sb) != 0)
		return tz_error_set(TZ_EIO, "cannot read the upload: %s", strerror(errno));
	*held = (uint64_t)sb.st_size;
	if (upload_complete(h, rq)) {
		if (*held == 0)
			unlink((const char *)part->data);
		return TZ_EEXISTS;
	}
	return TZ_OK;
}

static enum MHD_Result chunk_store(tz_hq *h, struct MHD_Connection *c, request *rq)
{
	tz_buf part = TZ_BUF_INIT;
	tz_chunk_plan plan;
	uint64_t held = 0;
	int fd = -1, rc;
	enum MHD_Result ret;

	if ((rc = tz_http_body_check(&rq->auth, rq->body.data, rq->body.len)) < 0)
		goto fail;
	/* already complete: the chunk is a duplicate of what HQ holds */
	if (upload_complete(h, rq) || (rc = part_open(h, rq, &part, &fd, &held)) == TZ_EEXISTS) {
		tz_hq__count(h, &h->m.chunks[1], 1);
		tz_hq__count(h, &h->m.bytes_in_skipped, rq->body.len);
		ret = upload_state(h, c, rq);
		goto done;
	}
	if (rc < 0)
		goto fail;
	if (held == 0) {
		tz_buf dir = TZ_BUF_INIT;
		drop_older(h, rq->auth.code, strrchr((const char *)part.data, '/') + 1);
		/* the new file's name is durable before a chunk of it is acknowledged */
		if ((rc = tz_hq__path(&dir, h, "up", rq->auth.code, "", "")) == TZ_OK)
			rc = tz_spool__sync_dir((const char *)dir.data);
		tz_buf_release(&dir);
		if (rc < 0)
			goto fail;
	}
	if ((rc = tz_chunk_plan_make(&plan, held, rq->route.total, rq->route.offset, rq->body.len)) < 0) {
		if (rc == TZ_EPROTO) {
			tz_hq__count(h, &h->m.chunks[2], 1);
			ret = answer(c, MHD_HTTP_CONFLICT, "error %s\nstate partial\noffset %llu\n", tz_error_last(),
				     (unsigned long long)held);
			goto done;
		}
		goto fail;
	}
	if ((rc = chunk_write(fd, &plan, rq->body.data, held)) < 0)
		goto fail;
	tz_hq__count(h, &h->m.chunks[plan.append ? 0 : 1], 1);
	tz_hq__count(h, &h->m.bytes_in, plan.append);
	tz_hq__count(h, &h->m.bytes_in_skipped, plan.skip);
	uint64_t now = held + plan.append;
	tz_hq__log(h, "upload %s %.12s: chunk at %llu, %llu new bytes, %llu already held (%llu/%llu)", rq->auth.code,
		   rq->route.digest_hex, (unsigned long long)rq->route.offset, (unsigned long long)plan.append,
		   (unsigned long long)plan.skip, (unsigned long long)now, (unsigned long long)rq->route.total);
	if (now == rq->route.total) {
		if ((rc = chunk_complete(h, rq, &part)) < 0)
			goto fail;
		ret = answer(c, MHD_HTTP_OK, "state queued\noffset %llu\n", (unsigned long long)now);
	} else {
		ret = answer(c, MHD_HTTP_OK, "state partial\noffset %llu\n", (unsigned long long)now);
	}
	goto done;
fail:
	tz_hq__log(h, "upload %s %.12s: %s", rq->auth.code, rq->route.digest_hex, tz_error_last());
	ret = answer_error(c, rc, tz_error_last());
done:
	if (fd >= 0)
		close(fd);   /* releases the lock */
	tz_buf_release(&part);
	return ret;
}

/* ---- replies ---- */

static enum MHD_Result reply_make(tz_hq *h, struct MHD_Connection *c, const request *rq)
{
	hq_job *j = tz_calloc(1, sizeof(*j));
	enum MHD_Result ret;
	int rc;

	if (j == NULL)
		return answer_error(c, TZ_ENOMEM, "out of memory");
	snprintf(j->code, sizeof(j->code), "%s", rq->auth.code);
	if ((rc = tz_hq__reply(h, j)) < 0)
		ret = answer_error(c, rc == TZ_EINVAL || rc == TZ_ENOTFOUND ? TZ_EPROTO : rc, j->msg);
	else
		ret = answer(c, MHD_HTTP_OK, "digest %s\nsize %llu\n", j->reply_digest, (unsigned long long)j->reply_size);
	tz_free(j);
	return ret;
}

static ssize_t reply_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	request *rq = cls;
	uint64_t left = rq->size - rq->from - pos;

	if (left == 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (max > left)
		max = (size_t)left;
	ssize_t n = pread(rq->fd, buf, max, (off_t)(rq->from + pos));
	if (n <= 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	rq->sent += (uint64_t)n;
	tz_hq__count(rq->h, &rq->h->m.bytes_out, (uint64_t)n);
	return n;
}

/* "bytes=N-" (the only form a client resumes with); false otherwise. */
static bool parse_range(const char *v, uint64_t size, uint64_t *from)
{
	size_t n;

	if (v == NULL || strncmp(v, "bytes=", 6) != 0)
		return false;
	v += 6;
	n = strlen(v);
	if (n < 2 || v[n - 1] != '-')
		return false;
	return tz_parse_u64(from, v, n - 1, size) == TZ_OK;
}

static enum MHD_Result reply_get(tz_hq *h, struct MHD_Connection *c, request *rq)
{
	tz_buf p = TZ_BUF_INIT;
	struct stat sb;
	struct MHD_Response *r;
	enum MHD_Result ret;
	const char *range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);

	/* only this branch's own directory: another branch's reply cannot even
	 * be named */
	if (tz_hq__path(&p, h, "reply", rq->auth.code, rq->route.digest_hex, ".tzb") < 0 ||
	    (rq->fd = open((const char *)p.data, O_RDONLY | O_CLOEXEC)) < 0 || fstat(rq->fd, &sb) != 0) {
		tz_buf_release(&p);
		return answer(c, MHD_HTTP_NOT_FOUND, "error no such reply for %s (ask for a new one)\n", rq->auth.code);
	}
	tz_buf_release(&p);
	rq->size = (uint64_t)sb.st_size;
	rq->from = 0;
	if (range && (!parse_range(range, rq->size, &rq->from) || rq->from >= rq->size))
		return answer(c, MHD_HTTP_RANGE_NOT_SATISFIABLE, "error bad range (size %llu)\n",
			      (unsigned long long)rq->size);
	rq->h = h;
	r = MHD_create_response_from_callback(rq->size - rq->from, 64 * 1024, reply_read, rq, NULL);
	if (r == NULL)
		return MHD_NO;
	if (range) {
		char cr[96];
		snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)rq->from,
			 (unsigned long long)rq->size - 1, (unsigned long long)rq->size);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	}
	MHD_add_response_header(r, "Content-Type", "application/octet-stream");
	tz_hq__log(h, "download %s %.12s: from %llu of %llu", rq->auth.code, rq->route.digest_hex,
		   (unsigned long long)rq->from, (unsigned long long)rq->size);
	ret = MHD_queue_response(c, range ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- dispatch ---- */

static enum MHD_Result unauthenticated(tz_hq *h, struct MHD_Connection *c, const request *rq)
{
	tz_buf b = TZ_BUF_INIT;
	enum MHD_Result ret;

	if (rq->route.kind == TZ_ROUTE_CHALLENGE) {
		uint8_t nonce[TZ_HTTP_NONCE_BYTES];
		char hex[2 * TZ_HTTP_NONCE_BYTES + 1];
		tz_challenges_issue(h->ch, nonce, tz_monotonic_ms());
		tz_hex(hex, nonce, sizeof(nonce));
		return answer(c, MHD_HTTP_OK, "nonce %s\nexpires_in %d\n", hex, HQ_CHALLENGE_MS / 1000);
	}
	if (tz_hq__metrics_render(h, &b) < 0)
		ret = answer_error(c, TZ_ENOMEM, "out of memory");
	else {
		struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
		if (r == NULL) {
			tz_buf_release(&b);
			return MHD_NO;
		}
		MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4");
		ret = MHD_queue_response(c, MHD_HTTP_OK, r);
		MHD_destroy_response(r);
	}
	tz_buf_release(&b);
	return ret;
}

/* The first call for a request: route, limits, authentication. */
static enum MHD_Result begin(tz_hq *h, struct MHD_Connection *c, const char *url, const char *method,
			     void **con_cls)
{
	request *rq = tz_calloc(1, sizeof(*rq));
	const char *cl;
	int rc;

	if (rq == NULL)
		return MHD_NO;
	rq->fd = -1;
	*con_cls = rq;
	if ((rc = tz_http_route_parse(&rq->route, method, url, h->max_upload)) < 0)
		return answer_error(c, rc, tz_error_last());
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl && tz_parse_u64(&rq->expect, cl, strlen(cl), TZ_HTTP_CHUNK_MAX) < 0)
		return answer_error(c, TZ_ELIMIT, "the request body is over the chunk limit");
	if (rq->route.kind == TZ_ROUTE_CHALLENGE || rq->route.kind == TZ_ROUTE_METRICS) {
		if (rq->expect)
			return answer_error(c, TZ_ECORRUPT, "this request has no body");
		return MHD_YES;
	}
	if ((rc = authenticate(h, c, rq, method, url)) < 0) {
		tz_hq__log(h, "refused %s %s: %s", method, url, tz_error_last());
		return answer_error(c, rc, tz_error_last());
	}
	rq->authed = true;
	if (rq->route.kind != TZ_ROUTE_UPLOAD && rq->expect)
		return answer_error(c, TZ_ECORRUPT, "this request has no body");
	if (rq->route.kind == TZ_ROUTE_UPLOAD) {
		tz_buf_init(&rq->body, (size_t)TZ_HTTP_CHUNK_MAX);
		if (rq->expect == 0)
			return answer_error(c, TZ_ECORRUPT, "a chunk needs a Content-Length");
	}
	return MHD_YES;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
			       const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	tz_hq *h = cls;
	request *rq = *con_cls;

	(void)version;
	if (rq == NULL)
		return begin(h, c, url, method, con_cls);
	if (*upload_size) {
		if (rq->body.len + *upload_size > rq->expect)
			return answer_error(c, TZ_ELIMIT, "more body than its Content-Length");
		tz_buf_put(&rq->body, upload_data, *upload_size);
		*upload_size = 0;
		return tz_buf_error(&rq->body) < 0 ? MHD_NO : MHD_YES;
	}
	if (!rq->authed)
		return unauthenticated(h, c, rq);
	if (rq->body.len != rq->expect)
		return answer_error(c, TZ_ECORRUPT, "the body is shorter than its Content-Length");
	if (rq->route.kind != TZ_ROUTE_UPLOAD && tz_http_body_check(&rq->auth, "", 0) < 0)
		return answer_error(c, TZ_EVERIFY, tz_error_last());
	switch (rq->route.kind) {
	case TZ_ROUTE_UPLOAD: return chunk_store(h, c, rq);
	case TZ_ROUTE_UPLOAD_STATE: return upload_state_wait(h, c, rq);
	case TZ_ROUTE_REPLY_MAKE: return reply_make(h, c, rq);
	case TZ_ROUTE_REPLY_GET: return reply_get(h, c, rq);
	default: return answer_error(c, TZ_ENOTFOUND, "no such path");
	}
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	tz_hq *h = cls;
	request *rq = *con_cls;

	(void)c;
	if (rq == NULL)
		return;
	if (rq->fd >= 0) {
		bool whole = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && rq->from + rq->sent == rq->size;
		if (whole) {
			tz_hq__branch_time(h, rq->auth.code, true, (int64_t)time(NULL));
			tz_hq__log(h, "download %s %.12s: complete (%llu bytes sent by this request)", rq->auth.code,
				   rq->route.digest_hex, (unsigned long long)rq->sent);
		} else if (rq->sent) {
			tz_hq__log(h, "download %s %.12s: interrupted after %llu bytes", rq->auth.code,
				   rq->route.digest_hex, (unsigned long long)rq->sent);
		}
		close(rq->fd);
	}
	tz_buf_release(&rq->body);
	tz_free(rq);
	*con_cls = NULL;
}

/* ---- start and stop ---- */

static int parse_listen(struct sockaddr_in *sa, const char *listen)
{
	const char *colon = listen ? strrchr(listen, ':') : NULL;
	char host[64];
	uint64_t port;

	memset(sa, 0, sizeof(*sa));
	if (colon == NULL || (size_t)(colon - listen) >= sizeof(host) ||
	    tz_parse_u64(&port, colon + 1, strlen(colon + 1), 65535) < 0)
		return tz_error_set(TZ_EINVAL, "listen address '%s' is not ADDR:PORT", listen ? listen : "");
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return tz_error_set(TZ_EINVAL, "listen address '%s': '%s' is not an IPv4 address", listen, host);
	return TZ_OK;
}

static int open_stores(tz_hq *h, const char *dir)
{
	int rc;

	if ((rc = tz_store_open(&h->ws, dir)) < 0 || (rc = tz_store_open(&h->rs, dir)) < 0)
		return rc;
	if (strcmp(tz_store_code(h->ws), "HQ") != 0)
		return tz_error_set(TZ_EINVAL, "'%s' is the store of branch %s, not HQ's", dir, tz_store_code(h->ws));
	if ((h->dir = tz_strdup(dir)) == NULL || (h->spool = tz_malloc(strlen(dir) + 8)) == NULL)
		return TZ_ENOMEM;
	snprintf(h->spool, strlen(dir) + 8, "%s/syncd", dir);
	return tz_hq__mkdirs(h, "up", NULL);
}

static int listen_start(tz_hq *h)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;
	int rc;

	if ((rc = parse_listen(&sa, h->o.listen)) < 0)
		return rc;
	h->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC, 0,
				NULL, NULL, handler, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HQ_CONN_MEMORY,
				MHD_OPTION_CONNECTION_LIMIT, h->o.max_connections ? h->o.max_connections : 256u,
				MHD_OPTION_CONNECTION_TIMEOUT, h->o.idle_timeout_s ? h->o.idle_timeout_s : 60u,
				MHD_OPTION_NOTIFY_COMPLETED, completed, h, MHD_OPTION_END);
	if (h->d == NULL)
		return tz_error_set(TZ_EIO, "cannot listen on '%s' (address in use, or not this machine's?)", h->o.listen);
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : ntohs(sa.sin_port);
	return TZ_OK;
}

int tz_hq_start(tz_hq **out, const char *dir, const tz_hq_opts *o)
{
	tz_hq *h;
	int rc;

	*out = NULL;
	if ((h = tz_calloc(1, sizeof(*h))) == NULL)
		return TZ_ENOMEM;
	h->o = *o;
	h->max_upload = o->max_upload && o->max_upload < TZ_BUNDLE_MAX_BYTES ? o->max_upload : TZ_BUNDLE_MAX_BYTES;
	pthread_mutex_init(&h->rs_mu, NULL);
	pthread_mutex_init(&h->mu, NULL);
	pthread_mutex_init(&h->mmu, NULL);
	pthread_cond_init(&h->cv_job, NULL);
	pthread_cond_init(&h->cv_done, NULL);
	if ((rc = open_stores(h, dir)) < 0 || (rc = tz_challenges_new(&h->ch, HQ_CHALLENGES, HQ_CHALLENGE_MS)) < 0 ||
	    (rc = tz_hq__worker_start(h)) < 0 || (rc = listen_start(h)) < 0) {
		tz_error_wrap(rc, "syncd --hq '%s'", dir);
		tz_hq_stop(h);
		return rc;
	}
	tz_hq__log(h, "listening on %s (port %u), store %s", h->o.listen, (unsigned)h->port, dir);
	*out = h;
	return TZ_OK;
}

uint16_t tz_hq_port(const tz_hq *h)
{
	return h->port;
}

void tz_hq_stop(tz_hq *h)
{
	if (h == NULL)
		return;
	if (h->d) {
		/* the listening socket is handed back to us to close */
		MHD_socket ls = MHD_quiesce_daemon(h->d);
		if (ls != MHD_INVALID_SOCKET)
			close(ls);
	}
	/* the worker finishes its job first: no import is cut short */
	tz_hq__worker_stop(h);
	if (h->d)
		MHD_stop_daemon(h->d);
	tz_challenges_free(h->ch);
	tz_store_close(h->ws);
	tz_store_close(h->rs);
	tz_hq__metrics_release(&h->m);
	pthread_cond_destroy(&h->cv_job);
	pthread_cond_destroy(&h->cv_done);
	pthread_mutex_destroy(&h->mu);
	pthread_mutex_destroy(&h->mmu);
	pthread_mutex_destroy(&h->rs_mu);
	tz_free(h->spool);
	tz_free(h->dir);
	tz_free(h);
}

/*
 * session.c - the branch's signed-request session on libcurl
 * (tz_client.h): one easy handle (connections kept alive), a challenge
 * from HQ, a request counter, and the transfer callbacks that feed a
 * chunk and write a download to disk.  The `net` fault site is hit once
 * per piece of an upload body or of a download body, so that a test can
 * cut the link in the middle of either (TZ_FAULTSIM=net:K).
 */
#include "syncd/syncd_int.h"
#include "syncd/tz_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Pieces handed to libcurl per read callback: small enough that a fault
 * injected in the k-th piece lands inside a chunk. */
#define SESSION_SLICE 4096

struct tz_session {
	tz_store *s;
	CURL *curl;
	char *url;
	tz_client_opts o;
	bool have_nonce;
	uint8_t nonce[TZ_HTTP_NONCE_BYTES];
	uint64_t n;
	bool bind;
	uint8_t pk[TZ_PK_BYTES], mac[32], inst[16];
	tz_buf last_auth;             /* the previous token (replay tests) */
	/* the transfer in progress */
	const uint8_t *up;
	size_t up_len, up_pos;
	int down_fd;
	uint64_t down_bytes;
	uint64_t down_from, down_total;   /* progress: where it started, the whole size */
	tz_buf *answer;
	bool faulted, too_big;
	bool unreachable;             /* the last failure: no connection at all */
	char err[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int tz_session_open(tz_session **out, tz_store *s, const char *url, const tz_client_opts *o)
{
	tz_session *h;
	size_t ul;

	*out = NULL;
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return tz_error_set(TZ_EINVAL, "HQ's URL '%s' is not http:// or https://", url);
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return tz_error_set(TZ_EIO, "cannot start libcurl");
	if ((h = tz_calloc(1, sizeof(*h))) == NULL)
		return TZ_ENOMEM;
	ul = strlen(url);
	while (ul > 0 && url[ul - 1] == '/')
		ul--;
	if ((h->url = tz_malloc(ul + 1)) == NULL || (h->curl = curl_easy_init()) == NULL) {
		tz_session_close(h);
		return tz_error_set(TZ_ENOMEM, "cannot start a libcurl handle");
	}
	memcpy(h->url, url, ul);
	h->url[ul] = '\0';
	h->s = s;
	h->o = *o;
	h->down_fd = -1;
	*out = h;
	return TZ_OK;
}

void tz_session_bind(tz_session *h, const uint8_t pk[TZ_PK_BYTES], const uint8_t mac[32], const uint8_t instance[16])
{
	h->bind = true;
	memcpy(h->pk, pk, sizeof(h->pk));
	memcpy(h->mac, mac, sizeof(h->mac));
	memcpy(h->inst, instance, sizeof(h->inst));
}

void tz_session_close(tz_session *h)
{
	if (h == NULL)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	tz_buf_release(&h->last_auth);
	tz_free(h->url);
	tz_free(h);
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *payload)
{
	tz_session *h = payload;
	size_t n = size * nitems, left = h->up_len - h->up_pos;

	if (left == 0)
		return 0;
	if (tz_faultsim(TZ_FAULT_NET)) {
		h->faulted = true;
		return CURL_READFUNC_ABORT;
	}
	if (n > left)
		n = left;
	if (n > SESSION_SLICE)
		n = SESSION_SLICE;
	memcpy(buf, h->up + h->up_pos, n);
	h->up_pos += n;
	return n;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *payload)
{
	tz_session *h = payload;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	if (h->down_fd >= 0 && (status == 200 || status == 206)) {
		if (tz_faultsim(TZ_FAULT_NET)) {
			h->faulted = true;
			return 0;
		}
		/* never more than the reply HQ announced: a body that runs on
		 * (a broken proxy, a hostile peer on plain HTTP) is cut here,
		 * before it fills the disk */
		if (h->down_total > 0 && h->down_from + h->down_bytes + n > h->down_total)
			return 0;
		for (size_t off = 0; off < n;) {
			ssize_t w = write(h->down_fd, p + off, n - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return 0;
			off += (size_t)w;
		}
		h->down_bytes += n;
		if (h->o.progress)
			h->o.progress("download", h->down_from + h->down_bytes, h->down_total, h->o.progress_payload);
		return n;
	}
	if (h->answer->len + n > TZ_HTTP_ANSWER_MAX) {
		h->too_big = true;
		return 0;
	}
	tz_buf_put(h->answer, p, n);
	return tz_buf_error(h->answer) < 0 ? 0 : n;
}

/* Set the method and body of the next transfer. */
static void set_method(tz_session *h, const char *method, size_t n)
{
	if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(h->curl, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)n);
		curl_easy_setopt(h->curl, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h->curl, CURLOPT_READDATA, h);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE, 0L);
	} else {
		curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	}
}

/*
 * One HTTP exchange.  `auth` (may be NULL) is the Authorization value,
 * `range` a Range value or NULL, down_fd >= 0 the file a 200/206 body goes
 * to.  TZ_OK and *status, or TZ_EIO when no complete answer came.
 */
static int perform(tz_session *h, const char *method, const char *path, const char *auth, const void *body,
		   size_t n, const char *range, int down_fd, long *status, tz_buf *answer)
{
	struct curl_slist *hdrs = NULL, *t;
	tz_buf line = TZ_BUF_INIT, url = TZ_BUF_INIT;
	CURLcode cc;
	int rc = TZ_OK;

	*status = 0;
	tz_buf_clear(answer);
	tz_buf_printf(&url, "%s%s", h->url, path);
	if (auth)
		tz_buf_printf(&line, "Authorization: %s", auth);
	if ((rc = tz_buf_error(&url)) < 0 || (rc = tz_buf_error(&line)) < 0)
		goto done;
	if (auth && (t = curl_slist_append(hdrs, (const char *)line.data)) != NULL)
		hdrs = t;
	if (range) {
		tz_buf_clear(&line);
		tz_buf_printf(&line, "Range: %s", range);
		if (tz_buf_error(&line) == TZ_OK && (t = curl_slist_append(hdrs, (const char *)line.data)) != NULL)
			hdrs = t;
	}
	curl_easy_reset(h->curl);   /* keeps the live connection */
	curl_easy_setopt(h->curl, CURLOPT_URL, (const char *)url.data);
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->err);
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_TIME, (long)(h->o.stall_s ? h->o.stall_s : 30));
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h);
	set_method(h, method, n);
	h->up = body;
	h->up_len = n;
	h->up_pos = 0;
	h->down_fd = down_fd;
	h->down_bytes = 0;
	h->answer = answer;
	h->faulted = h->too_big = false;
	h->err[0] = '\0';
	h->unreachable = false;
	if ((cc = curl_easy_perform(h->curl)) != CURLE_OK) {
		h->unreachable = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
				 cc == CURLE_COULDNT_RESOLVE_PROXY;
		rc = tz_error_set(TZ_EIO, "cannot reach HQ at %s: %s", h->url,
				  h->faulted ? "injected network fault" : h->too_big ? "answer too long"
				  : h->err[0] ? h->err : curl_easy_strerror(cc));
		goto done;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, status);
done:
	h->down_fd = -1;
	curl_slist_free_all(hdrs);
	tz_buf_release(&line);
	tz_buf_release(&url);
	return rc;
}

static int challenge(tz_session *h)
{
	tz_buf a = TZ_BUF_INIT;
	char hex[2 * TZ_HTTP_NONCE_BYTES + 1];
	long status;
	int rc;

	h->have_nonce = false;
	if ((rc = perform(h, "POST", "/v1/challenge", NULL, NULL, 0, NULL, -1, &status, &a)) < 0)
		goto done;
	if (status != 200 || tz_http_kv_get(hex, sizeof(hex), a.data, a.len, "nonce") < 0 ||
	    tz_unhex(h->nonce, sizeof(h->nonce), hex, strlen(hex)) < 0) {
		rc = tz_error_set(TZ_EPROTO, "HQ at %s answered the challenge request with status %ld", h->url, status);
		goto done;
	}
	h->have_nonce = true;
	h->n = 0;
done:
	tz_buf_release(&a);
	return rc;
}

static int sign(tz_session *h, const char *method, const char *path, const void *body, size_t n)
{
	tz_http_auth a;
	int rc;

	memset(&a, 0, sizeof(a));
	snprintf(a.code, sizeof(a.code), "%s", tz_store_code(h->s));
	memcpy(a.nonce, h->nonce, sizeof(a.nonce));
	a.n = ++h->n;
	if (h->bind) {
		a.bind = true;
		memcpy(a.pk, h->pk, sizeof(a.pk));
		memcpy(a.mac, h->mac, sizeof(a.mac));
		memcpy(a.instance, h->inst, sizeof(a.instance));
	}
	if ((rc = tz_http_auth_sign(&a, tz_store_keypair(h->s), method, path, body, n)) < 0)
		return rc;
	tz_buf_clear(&h->last_auth);
	tz_http_auth_format(&h->last_auth, &a);
	tz_buf_putc(&h->last_auth, '\0');
	return tz_buf_error(&h->last_auth);
}

/* A signed exchange; a new challenge first when there is none, and once
 * more when HQ no longer knows the one held (it expired or was evicted). */
static int signed_request(tz_session *h, const char *method, const char *path, const void *body, size_t n,
			  const char *range, int down_fd, bool replay, long *status, tz_buf *answer)
{
	int rc;

	for (int round = 0; round < 2; round++) {
		if (!replay) {
			if (!h->have_nonce && (rc = challenge(h)) < 0)
				return rc;
			if ((rc = sign(h, method, path, body, n)) < 0)
				return rc;
		} else if (h->last_auth.len == 0) {
			return tz_error_set(TZ_EINVAL, "no request to replay");
		}
		if ((rc = perform(h, method, path, (const char *)h->last_auth.data, body, n, range, down_fd, status,
				  answer)) < 0)
			return rc;
		char why[256];
		if (*status != 401 || replay || tz_http_kv_get(why, sizeof(why), answer->data, answer->len, "error") < 0 ||
		    strstr(why, "challenge") == NULL)
			return TZ_OK;
		/* a 401's body went to the answer, not the file: the download
		 * resumes from the same Range with a fresh challenge */
		h->have_nonce = false;
	}
	return TZ_OK;
}

int tz_session_request(tz_session *h, const char *method, const char *path, const void *body, size_t n,
		       bool replay, long *status, tz_buf *answer)
{
	return signed_request(h, method, path, body, n, NULL, -1, replay, status, answer);
}

int tz_session__download(tz_session *h, const char *path, uint64_t from, uint64_t total, int fd, long *status,
			 uint64_t *got, tz_buf *answer)
{
	char range[48];
	int rc;

	snprintf(range, sizeof(range), "bytes=%llu-", (unsigned long long)from);
	h->down_from = from;
	h->down_total = total;
	rc = signed_request(h, "GET", path, NULL, 0, from ? range : NULL, fd, false, status, answer);
	*got = h->down_bytes;
	return rc;
}

uint64_t tz_session__sent(const tz_session *h)
{
	return h->up_pos;
}

bool tz_session__unreachable(const tz_session *h)
{
	return h->unreachable;
}

/*
 * tz_client.h - a branch's side of the HTTP transport (docs/protocol.md,
 * "HTTP transport") on libcurl: one sync cycle (push, then pull) with
 * `syncd --hq`, resumable, and the signed-request session it runs on.
 *
 * The bundles are the very files `syncctl export` and `import` use: the
 * cycle exports into <store>/syncd/out.tzb, uploads it in chunks, and
 * imports HQ's reply through tz_sync_import_file (the one import path).
 * An upload interrupted by a cut link, a killed process or a reboot
 * continues from what HQ made durable; a download continues by Range from
 * what this side has on disk.
 */
#ifndef TZ_CLIENT_H
#define TZ_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "store/tz_store.h"
#include "syncd/tz_hq.h"
#include "syncd/tz_http.h"

typedef struct {
	uint64_t chunk;              /* upload chunk bytes; 0 = TZ_HTTP_CHUNK_DEFAULT */
	unsigned attempts;           /* transfer attempts per cycle step; 0 = 5 */
	unsigned stall_s;            /* a transfer with no byte for this long is cut; 0 = 30 */
	tz_progress_cb progress;     /* "upload" / "download" bytes; may be NULL */
	void *progress_payload;
	tz_log_cb log;               /* one line per event; may be NULL */
	void *log_payload;
} tz_client_opts;

typedef struct {
	/* push */
	uint64_t push_bytes;         /* the bundle's size */
	uint64_t push_sent;          /* chunk bytes sent by this cycle (re-sent ones included) */
	uint64_t push_resumed_at;    /* what HQ held when this cycle started the upload */
	unsigned push_attempts;
	uint64_t push_sequence;
	char push_state[16];         /* "imported", "noop" or "refused" */
	char push_message[400];
	/* pull */
	uint64_t pull_bytes;         /* the reply's size */
	uint64_t pull_received;      /* reply bytes received by this cycle */
	uint64_t pull_resumed_at;    /* what this side held when the download started */
	unsigned pull_attempts;
	bool pull_noop;
	size_t pull_commits, pull_commits_new;
	uint64_t pull_rows_written;
	int64_t elapsed_ms;
} tz_sync_report;

/*
 * One cycle with HQ at `url` ("http://host:port"): export (which commits
 * the change log first) or resume the pending upload, upload, wait for
 * HQ's import, then ask for, download and import HQ's reply.  TZ_OK when
 * the cycle completed (HQ may have refused the bundle: push_state says
 * so, and its commits go again in the next one); TZ_EIO when HQ could not
 * be reached or the link failed more than `attempts` times (what was
 * transferred is kept for the next cycle); TZ_EPERM when HQ refused this
 * branch's requests; the import's errors.  *rep is filled as far as the
 * cycle went.
 */
int tz_client_sync(tz_store *s, const char *url, const tz_client_opts *o, tz_sync_report *rep);

/*
 * HQ's URL for store s: `given` when not NULL, else the value of the
 * "hq_url = URL" line of the store's config file (docs/operations.md).
 * TZ_OK, TZ_ENOTFOUND (none recorded), TZ_ELIMIT (longer than cap - 1).
 */
int tz_client_url(tz_store *s, const char *given, char *out, size_t cap);

/*
 * The session underneath, for tests and probes: a libcurl handle with a
 * challenge from HQ and the request counter.
 */
typedef struct tz_session tz_session;

/* Open a session of store s (its code and key sign) with HQ at url
 * (http:// or https://; TZ_EINVAL otherwise).  No request is sent yet. */
int tz_session_open(tz_session **out, tz_store *s, const char *url, const tz_client_opts *o);
/* Send the key binding with every request from now on (a branch whose key
 * HQ has not bound yet: the fields of its bundle header, P3). */
void tz_session_bind(tz_session *h, const uint8_t pk[TZ_PK_BYTES], const uint8_t mac[32], const uint8_t instance[16]);
/* Close the connection and free h.  Accepts NULL. */
void tz_session_close(tz_session *h);

/*
 * Send one signed request (a new challenge first when the session has
 * none) and collect the answer (at most TZ_HTTP_ANSWER_MAX bytes) into
 * `answer`.  `replay`: send the previous request's token again, unchanged
 * (tests of the replay refusal).  TZ_OK with *status the HTTP status (any),
 * TZ_EIO when no answer came.
 */
int tz_session_request(tz_session *h, const char *method, const char *path, const void *body, size_t n,
		       bool replay, long *status, tz_buf *answer);

#endif

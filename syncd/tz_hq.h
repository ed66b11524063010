/*
 * tz_hq.h - HQ's sync server (`syncd --hq`): the HTTP transport of
 * docs/protocol.md ("HTTP transport") on libmicrohttpd, around the same
 * bundle import and export as `syncctl import` / `export --for`
 * (tz_exchange.h), so that a bundle that came over HTTP is verified,
 * merged and queued by the one import path.
 *
 * Threads: libmicrohttpd runs one thread per connection (uploads proceed
 * concurrently; a chunk is acknowledged once it is fsynced); one worker
 * thread owns the store handle that imports and exports, so imports and
 * replies run one at a time, in arrival order (the store's writers' lock,
 * store.lock, also keeps `syncctl` run by hand out meanwhile).  A second,
 * read-only handle answers the key lookups of request authentication.
 * Spool: <DIR>/syncd/ (docs/operations.md).
 */
#ifndef TZ_HQ_H
#define TZ_HQ_H

#include <stdint.h>

#include "store/tz_base.h"

typedef struct tz_hq tz_hq;

/* One event, already formatted as one line without its newline. */
typedef void (*tz_log_cb)(void *payload, const char *line);

typedef struct {
	const char *listen;          /* "ADDR:PORT" (IPv4), port 0 = any free port */
	uint64_t max_upload;         /* largest bundle accepted; 0 = TZ_BUNDLE_MAX_BYTES */
	unsigned max_connections;    /* 0 = 256 */
	unsigned idle_timeout_s;     /* a connection silent this long is closed; 0 = 60 */
	tz_log_cb log;               /* may be NULL */
	void *log_payload;
} tz_hq_opts;

/*
 * Open the HQ store in `dir` (twice: worker and reader), queue the uploads
 * a previous run completed but did not import, and start listening.
 * TZ_OK and *out; TZ_EINVAL for a store that is not HQ's or a bad listen
 * address; TZ_EIO when the address cannot be bound; the store's errors.
 */
int tz_hq_start(tz_hq **out, const char *dir, const tz_hq_opts *o);

/* The port it listens on (the one chosen when the options said 0). */
uint16_t tz_hq_port(const tz_hq *h);

/*
 * Stop: accept no new connection, let the running import or reply finish
 * (never stopped half-way; imports are all-or-nothing in any case), answer
 * waiting requests with 503, close the stores, free h.  Accepts NULL.
 */
void tz_hq_stop(tz_hq *h);

#endif

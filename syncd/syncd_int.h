/*
 * syncd_int.h - shared inside syncd/ only: the HQ server's state, split
 * between hq.c (HTTP), hq_worker.c (the import/export worker, the spool)
 * and hq_metrics.c (counters, GET /metrics).
 */
#ifndef TZ_SYNCD_INT_H
#define TZ_SYNCD_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/tz_store.h"
#include "syncd/tz_client.h"
#include "syncd/tz_hq.h"
#include "syncd/tz_http.h"

/* Merge-duration histogram bounds in seconds (Prometheus `le`). */
#define HQ_BUCKETS 9

typedef struct {
	char code[17];
	int64_t last_import;     /* unix seconds of the last successful import, 0 never */
	int64_t last_sync;       /* ... of the last reply HQ sent whole */
} hq_branch_stat;

typedef struct {
	uint64_t bundles_in[3];          /* imported, nothing new, refused */
	uint64_t bundles_out;            /* replies made */
	uint64_t bytes_in;               /* chunk bytes made durable */
	uint64_t bytes_in_skipped;       /* chunk bytes HQ held already (re-sent) */
	uint64_t bytes_out;              /* reply bytes handed to connections */
	uint64_t chunks[3];              /* stored, duplicate (nothing new), gap (refused) */
	uint64_t auth_fail[4];           /* malformed, signature, replay/unknown challenge, forbidden */
	uint64_t merge_buckets[HQ_BUCKETS + 1];
	double merge_sum;
	uint64_t merge_count;
	uint64_t conflicts_open[3];      /* by tz_conflict_kind */
	size_t nbranches;
	hq_branch_stat *branches;
} hq_metrics;

typedef enum { HQ_JOB_IMPORT, HQ_JOB_REPLY } hq_job_kind;

typedef struct hq_job {
	hq_job_kind kind;
	char code[17];
	char digest[2 * TZ_HTTP_DIGEST_BYTES + 1];   /* import: the upload */
	/* reply: filled by the worker */
	bool done;
	int rc;
	char msg[512];
	char reply_digest[2 * TZ_HTTP_DIGEST_BYTES + 1];
	uint64_t reply_size;
	struct hq_job *next;
} hq_job;

struct tz_hq {
	char *dir;
	char *spool;                /* <dir>/syncd */
	tz_hq_opts o;
	uint64_t max_upload;
	tz_store *rs;               /* reader: key lookups */
	pthread_mutex_t rs_mu;
	tz_store *ws;               /* worker: imports, replies */
	tz_challenges *ch;
	struct MHD_Daemon *d;
	uint16_t port;
	pthread_t worker;
	bool worker_started;
	pthread_mutex_t mu;         /* the queue, stopping, generation */
	pthread_cond_t cv_job;      /* a job was queued, or stop */
	pthread_cond_t cv_done;     /* a job finished */
	hq_job *head, *tail;
	bool stopping;
	uint64_t generation;        /* jobs finished */
	pthread_mutex_t mmu;
	hq_metrics m;
};

void tz_hq__log(tz_hq *h, const char *fmt, ...) TZ_PRINTF(2, 3);

/* Paths in the spool: <spool>/up/<code>/<digest><suffix>, <spool>/reply/<code>/... */
int tz_hq__path(tz_buf *out, const tz_hq *h, const char *area, const char *code, const char *name, const char *suffix);
/* mkdir -p of <spool>/<area>/<code> (mode 0700). */
int tz_hq__mkdirs(const tz_hq *h, const char *area, const char *code);

int tz_hq__worker_start(tz_hq *h);
/* Wake the worker to stop after its current job; fail the queued reply
 * jobs; join it. */
void tz_hq__worker_stop(tz_hq *h);
/* Queue the import of a complete upload (<spool>/up/<code>/<digest>.tzb). */
int tz_hq__queue_import(tz_hq *h, const char *code, const char *digest);
/* Make the reply for `code` on the worker and wait for it: TZ_OK and
 * job->reply_*, or the error (message in job->msg). */
int tz_hq__reply(tz_hq *h, hq_job *job);
/* Wait (at most ms) for the worker to finish some job; false when stopping. */
bool tz_hq__wait_generation(tz_hq *h, uint64_t seen, int64_t ms);
uint64_t tz_hq__generation(tz_hq *h);

/* Metrics (hq_metrics.c); all take h->mmu. */
void tz_hq__count(tz_hq *h, uint64_t *counter, uint64_t by);
void tz_hq__merge_time(tz_hq *h, double seconds, int outcome);
int tz_hq__branch_time(tz_hq *h, const char *code, bool sync, int64_t when);
void tz_hq__conflicts(tz_hq *h, const uint64_t open[3]);
int tz_hq__metrics_render(tz_hq *h, tz_buf *out);
void tz_hq__metrics_release(hq_metrics *m);

/* Spools (spool.c).  Read the file at path (at most a bundle's limit)
 * into `file` and its BLAKE2b-256 into hex. */
int tz_spool__read(tz_buf *file, char hex[2 * TZ_HTTP_DIGEST_BYTES + 1], const char *path);
/* Remove the files of dir for which drop(name) holds, but `keep` (may be
 * NULL) and names starting with '.'; errors are ignored (a file left is
 * pruned next time). */
void tz_spool__prune(const char *dir, const char *keep, bool (*drop)(const char *name));
/* fsync the directory dir (a new or renamed entry made durable). */
int tz_spool__sync_dir(const char *dir);
/* Replace control bytes of a log line by '?'. */
void tz_spool__safe(char *line);

/* The branch's session (session.c) for client.c: download `path` from
 * byte `from` (of `total`, for the progress line) into fd (opened for appending): TZ_OK with *status and *got
 * (bytes written), or TZ_EIO when the link failed. */
int tz_session__download(tz_session *h, const char *path, uint64_t from, uint64_t total, int fd, long *status,
			 uint64_t *got, tz_buf *answer);
/* Bytes of the last upload body libcurl took (the report counts them). */
uint64_t tz_session__sent(const tz_session *h);
/* Did the last request fail without reaching HQ at all (no connection)?
 * Then retrying within the cycle is pointless: the caller's backoff waits. */
bool tz_session__unreachable(const tz_session *h);

#endif

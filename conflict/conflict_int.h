/*
 * conflict_int.h - shared inside conflict/ only: the queue entries a merge
 * keeps until the import records them (queue.c).
 */
#ifndef TZ_CONFLICT_INT_H
#define TZ_CONFLICT_INT_H

#include "conflict/tz_conflict.h"

/* One entry of the queue, as the merge of a row made it. */
typedef struct {
	tz_conflict_kind kind;
	char *table, *partition, *key;
	char *policy;
	char *note;
	tz_buf cols;                 /* row encoding: conflicting column -> group or NULL */
	tz_buf base, ours, theirs, provisional;
	bool has_base, has_ours, has_theirs, has_provisional;
} tz_pending;

int tz_queue__keep(tz_pending **p, size_t *n, size_t *cap, const tz_merge_request *rq, const tz_row_outcome *o);
void tz_queue__pending_free(tz_pending *p, size_t n);
int tz_queue__record(tz_store *s, const char *code, const tz_pending *p, size_t n, const tz_oid *ours_commit,
		     const tz_oid *theirs_commit, const tz_oid *merge_commit, int64_t *first_id, int64_t *last_id);

/* Inside an HQ import's transaction (integrity.c): unauthorized changes,
 * re-pointed references, orphans, invariants, duplicates; what was queued
 * is added to sum. */
int tz_integrity__check(tz_store *s, const tz_merge_done *d, tz_merge_summary *sum);
/* The primary key columns of a table, in key order (at most 8; each
 * tz_free'd by the caller). */
struct sqlite3;
int tz_integrity__pk_names(struct sqlite3 *db, const char *table, char **out, size_t *n);
/* TZ_ESQL with SQLite's message for db: "<what>: <message>" (queue.c). */
int tz_conflict__sql_error(struct sqlite3 *db, const char *what);
/* The unique-key index brought to d->to_root; duplicates queued (duplicates.c). */
int tz_duplicates__check(tz_store *s, const tz_merge_done *d, uint64_t *queued);

#endif

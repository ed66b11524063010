/*
 * tz_conflict.h - HQ's three-way merge of a branch's rows and the
 * administrators' conflict queue (docs/merge.md).
 *
 * The store (store/sync.c) walks the trees of an import and finds the rows
 * both HQ and the branch changed since the branch's base; for each it asks
 * the merger made here, which decides column by column under the
 * declarations of the schema (tz_policy, tz_group) and keeps the entries
 * the queue must get.  The store writes the merged rows as one merge commit
 * and calls the merger back inside the import's SQLite transaction, so the
 * queue and the merge are recorded together or not at all.
 */
#ifndef TZ_CONFLICT_H
#define TZ_CONFLICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/tz_base.h"
#include "store/tz_buf.h"
#include "store/tz_row.h"
#include "store/tz_store.h"

/* ---- declarations ---- */

typedef enum { TZ_POL_MANUAL, TZ_POL_OWNER, TZ_POL_HQ, TZ_POL_LWW } tz_policy_kind;
typedef enum { TZ_DEL_MANUAL, TZ_DEL_KEEP, TZ_DEL_DELETE } tz_delete_policy;

/* How one table merges: a policy per column (its group's when it is in
 * one), the group of each column, the update-versus-delete rule.  Columns
 * are named as in the rows being merged. */
typedef struct {
	char *table;
	size_t ncols;
	char **cols;                 /* sorted by name, bytewise */
	tz_policy_kind *policy;      /* per column */
	int *group;                  /* per column: index into groups, or -1 */
	size_t ngroups;
	char **groups;
	tz_delete_policy del;
} tz_table_policy;

/* A table's declarations from store.db (tz_policy, tz_group);
 * a column with no policy and no table default '*' is manual. */
int tz_table_policy_load(tz_store *s, const char *table, tz_table_policy *out);
void tz_table_policy_release(tz_table_policy *p);

/* ---- one row ---- */

typedef enum {
	TZ_KIND_DATA, TZ_KIND_DELETE, TZ_KIND_INSERT,
	TZ_KIND_UNAUTHORIZED,        /* a change outside the branch's rights, not applied */
	TZ_KIND_ORPHAN,              /* a declared reference left dangling */
	TZ_KIND_INVARIANT,           /* a tz_invariant query returned the row */
	TZ_KIND_COUNT
} tz_conflict_kind;
const char *tz_conflict_kind_name(tz_conflict_kind k);

/* What the merge of one row decided. */
typedef struct {
	bool queued;                 /* an entry for the queue */
	tz_conflict_kind kind;
	const char *policy;          /* the rule that made it ("manual", "lww", ...) */
	char note[160];              /* e.g. the clocks' disagreement */
	size_t nunits;               /* units (columns or groups) both sides changed */
	size_t ncols;                /* the conflicting columns (entry's columns) */
	char **cols;                 /* owned: column names */
	char **unit;                 /* owned: the group of each, or NULL */
	bool absent;                 /* the merged row is absent (deleted) */
	tz_buf merged;               /* the merged row's encoding, unless absent */
} tz_row_outcome;

void tz_row_outcome_release(tz_row_outcome *o);

typedef int (*tz_stamps_fn)(void *ctx, tz_merge_stamps *out);

/* LWW decisions are flagged (queued with the winner as provisional value)
 * when the branch's clock and HQ's disagree by more than this. */
#define TZ_LWW_SKEW_MS (5 * 60 * 1000)

/*
 * Merge one row that HQ (ours) and branch `branch` (theirs) both changed
 * since `base` (DESIGN §6): NULL for a side where the row is absent.
 * `owner` is the branch owning the row (owned tables) or NULL.  `stamps`
 * is asked only when an lww column needs it.
 */
int tz_merge_row(const tz_table_policy *p, const char *branch, const char *owner, const tz_row *base,
		 const tz_row *ours, const tz_row *theirs, tz_stamps_fn stamps, void *stamps_ctx, tz_row_outcome *out);

/* ---- the merger an HQ import uses ---- */

/* A merger for imports into `s` (HQ).  Free with tz_merger_free. */
int tz_merger_new(tz_store *s, tz_merger **out);
void tz_merger_free(tz_merger *m);

/* What the last import queued: entries by kind, and their ids. */
typedef struct {
	uint64_t queued[TZ_KIND_COUNT];   /* by tz_conflict_kind */
	uint64_t duplicates;         /* duplicate entries queued */
	uint64_t repointed;          /* references to merged rows re-pointed */
	uint64_t rows_both;          /* rows both sides changed */
	int64_t first_id, last_id;   /* ids of the entries recorded (0: none) */
} tz_merge_summary;

void tz_merger_summary(const tz_merger *m, tz_merge_summary *out);

/* ---- integrity (integrity.c, duplicates.c; docs/integrity.md) ---- */

/* The normalised form of one value of a unique key (tz_unique): with
 * `exact` its text as stored; else trimmed, inner spaces removed,
 * upper-cased (ASCII), Arabic-Indic (U+0660-0669) and Extended
 * Arabic-Indic (U+06F0-06F9) digits made ASCII.  Appended to out. */
void tz_unique_normalize(const tz_value *v, bool exact, tz_buf *out);

/* ---- the queue ---- */

typedef struct {
	int64_t id;
	const char *kind, *table, *partition, *key, *branch, *policy, *note, *status;
	const char *ours_commit, *theirs_commit, *merge_commit;
	int64_t created, resolved_at;
	const char *resolved_by, *resolution, *resolution_commit;
	size_t ncols;
	const tz_column *cols;       /* the conflicting columns: name, value = group (text) or NULL */
	const tz_row *base, *ours, *theirs, *provisional;   /* NULL where absent */
	const tz_value *key_values;  /* the decoded primary key */
	size_t nkey;
} tz_conflict;

typedef struct {
	const char *table;           /* NULL: any */
	const char *branch;
	bool all;                    /* resolved entries too */
	int64_t id;                  /* 0: any */
} tz_conflict_filter;

typedef int (*tz_conflict_cb)(const tz_conflict *c, void *payload);

int tz_conflicts_list(tz_store *s, const tz_conflict_filter *f, tz_conflict_cb cb, void *payload);

typedef enum { TZ_RESOLVE_OURS, TZ_RESOLVE_THEIRS, TZ_RESOLVE_BASE, TZ_RESOLVE_SET } tz_resolve_how;

/* A column value an administrator sets (--set COL=VALUE, --null COL). */
typedef struct {
	const char *col;
	const char *text;            /* NULL: SQL NULL */
} tz_resolve_value;

typedef struct {
	tz_resolve_how how;
	const tz_resolve_value *set;  /* TZ_RESOLVE_SET (and with the others: overrides) */
	size_t nset;
	const char *as;              /* administrator's name, or NULL: HQ's key */
} tz_resolve_opts;

typedef struct {
	size_t resolved;
	tz_oid commit;               /* the resolution commit */
	bool committed;              /* true: a decision that changes no row is still a commit */
} tz_resolve_result;

/*
 * Resolve the open entries `ids` (all of one store): write the chosen
 * values into store.db and seal them as one HQ commit signed by `as`
 * (an administrator) or HQ, whose message names the entries; mark them
 * resolved.  HQ's pending changes are committed first, on their own.
 */
int tz_conflicts_resolve(tz_store *s, const int64_t *ids, size_t nids, const tz_resolve_opts *o,
			 tz_resolve_result *res);

/* The ids of the open entries of a table and/or branch (bulk resolution). */
int tz_conflicts_ids(tz_store *s, const tz_conflict_filter *f, int64_t **ids, size_t *n);

/* How many entries are open (status). */
int tz_conflicts_open(tz_store *s, uint64_t *total);

/* ---- duplicates (duplicates.c, dupmerge.c; docs/integrity.md) ---- */

/* Open entries of the queues: conflicts by kind, duplicates (status). */
int tz_integrity_open(tz_store *s, uint64_t by_kind[TZ_KIND_COUNT], uint64_t *duplicates);

typedef struct {
	int64_t id;
	const char *name, *table, *status, *branch, *merge_commit;
	const char *key_a, *part_a, *key_b, *part_b;   /* encoded keys; partitions by name */
	const tz_value *a, *b;       /* decoded keys */
	size_t na, nb;
	int64_t created, resolved_at;
	const char *resolved_by, *kept, *resolution_commit;
} tz_duplicate;

typedef int (*tz_duplicate_cb)(const tz_duplicate *d, void *payload);
/* The duplicate queue, oldest first; resolved entries too with `all`. */
int tz_duplicates_list(tz_store *s, bool all, tz_duplicate_cb cb, void *payload);

typedef struct {
	const char *table;           /* NULL: the one table holding both keys */
	const char *keep, *drop;     /* a key's value, or a JSON array of them */
	const tz_resolve_value *set; /* the survivor's chosen values */
	size_t nset;
	const char *as;              /* administrator, or NULL: HQ */
} tz_dup_merge_opts;

typedef struct {
	char table[256];
	uint64_t repointed;          /* references re-pointed, all tables */
	uint64_t resolved;           /* duplicate entries closed */
	tz_oid commit;
} tz_dup_merge_result;

/*
 * Merge row DROP into row KEEP of one table (HQ): KEEP takes the chosen
 * values, every declared reference to DROP in every tracked table is
 * re-pointed to KEEP, DROP is deleted and redirected to KEEP (tz_redirect,
 * _redirect/ in the history), the open duplicates of the pair are closed;
 * one commit signed by `as` or HQ.
 */
int tz_duplicates_merge(tz_store *s, const tz_dup_merge_opts *o, tz_dup_merge_result *res);

#endif

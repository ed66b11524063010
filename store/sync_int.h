/*
 * sync_int.h - what the parts of the sync cycle share (sync.c: views,
 * export, the checks and the rebuild common to both sides; sync_hq.c: HQ's
 * import; sync_branch.c: a branch's import; sync_enrol.c: enrolment).
 * Private to store/sync*.c.
 */
#ifndef TZ_SYNC_INT_H
#define TZ_SYNC_INT_H

#include "store/store_int.h"

#define EMPTY_LOG "tazamun-log 1\n"
#define ENROL_MAGIC "TZE1"

/* [P12] The bundle's commits, rebuilt into st; each signed by one of keys[]. */
typedef struct {
	tz_staging st;
	tz_oid *commits;
	size_t n;
	size_t nnew;
} tz_rebuilt;

/* The state recorded with an import, in its SQLite transaction. */
typedef struct {
	bool set_head;
	tz_oid head;
	const tz_oid *from_root, *to_root;   /* materialise from -> to */
	const tz_staging *st;                /* the import's objects still held */
} tz_apply_state;

/* Path changes whose components the list owns (copied from a tree walk,
 * whose strings die with it). */
typedef struct {
	tz_path_change *ch;
	size_t n, cap;
	char **owned;
	size_t nowned, capowned;
} tz_change_list;

bool tz_sync__is_hq(const tz_store *s);

int tz_sync__instance_of(tz_store *s, uint8_t out[16]);

void tz_sync__hex_of(char *out, const uint8_t *p, size_t n);

int tz_sync__oid_meta(tz_store *s, const char *key, tz_oid *out, bool *has);

/* is `anc` an ancestor of (or equal to) `desc`?  Both in the ODB. */
int tz_sync__is_ancestor(tz_store *s, const tz_oid *anc, const tz_oid *desc, bool *out);

/* The partition name of a branch: its code in the key encoding. */
int tz_sync__code_partition(tz_buf *out, const char *code);

/* A branch's view of `root`: _schema, an empty _log, every shared and hq
 * table, and of each owned table the branch's own partition. */
int tz_sync__view_tree(tz_store *s, tz_staging *st, const tz_oid *root, const char *code, tz_oid *out);

/* A root with its _log replaced by the empty log (merge and view commits
 * seal no change-log entries of their own). */
int tz_sync__with_empty_log(tz_store *s, tz_staging *st, const tz_oid *root, tz_oid *out);

int tz_sync__schema_version(tz_store *s, int64_t *v);

int tz_sync__line_of(tz_store *s, const char *code, tz_oid *line, tz_oid *received, bool *has_received,
		     tz_oid *enrolled, bool *found);

int tz_sync__record_bundle(tz_store *s, const tz_incoming *in, size_t ncommits);

void tz_sync__rebuilt_release(tz_rebuilt *b);

int tz_sync__rebuild(tz_store *s, const tz_incoming *in, const void *payload, size_t n,
		     const uint8_t (*keys)[TZ_PK_BYTES], size_t nkeys, tz_rebuilt *b);

/* Once rebuilt, a bundle's rows are in the staging: their wire form goes
 * (tz_store_import), wiped as the caller would. */
void tz_sync__release_payload(tz_buf *payload);

/* Is the bundle's tip already part of `mine` (HQ: the branch head it
 * integrated last; a branch: its head)?  An empty bundle is.  The tip's
 * objects may be in the store without that (an import killed between
 * writing its pack and recording it), so ancestry decides, not presence. */
int tz_sync__integrated(tz_store *s, const tz_rebuilt *b, const tz_oid *mine, bool *yes);

/* [P14] rows the change log names stay as the application wrote them */
int tz_sync__materialise_and_head(tz_store *s, const tz_apply_state *a, tz_import_result *res);

int tz_sync__change_list_add(tz_change_list *l, const char *const *comp, const size_t *len, size_t depth,
			     const tz_oid *oid);

void tz_sync__change_list_release(tz_change_list *l);

int tz_sync__import_hq(tz_store *s, const tz_incoming *in, tz_buf *payload, tz_merger *m, tz_import_result *res);

int tz_sync__import_branch(tz_store *s, const tz_incoming *in, tz_buf *payload, tz_import_result *res);

#endif

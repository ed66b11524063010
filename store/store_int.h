/*
 * store_int.h - what store/ files share among themselves (never included
 * outside store/).  See docs/architecture.md for the picture.
 */
#ifndef TZ_STORE_INT_H
#define TZ_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <git2.h>

#include "store/tz_keys.h"
#include "store/tz_store.h"

/* ---- row.c helpers that key.c shares ---- */

/* Quoted names and values in error messages are cut at this many bytes:
 * enough to recognise them, short enough for one terminal line. */
#define TZ_ROW__QUOTE_MAX 48
/* tz_real_format never writes more than 24 bytes ("-2.2250738585072014e-308");
 * 31 is the most a 32-byte buffer holds with its NUL. */
#define TZ_ROW__REAL_TEXT_MAX 31
/* Decimal of v into out (no NUL needed by callers); returns the length. */
size_t tz_row__format_i64(char out[21], int64_t v);
/* Strict parses: the canonical form only (TZ_ECORRUPT otherwise). */
int tz_row__parse_i64(int64_t *out, const uint8_t *s, size_t n);
int tz_row__parse_real(double *out, const uint8_t *s, size_t n);
/* 0-15 for a lower-case hex digit, -1 otherwise. */
int tz_row__hex_digit(uint8_t c);
/* p[0..n) printable and cut for an error message; returns out. */
const char *tz_row__quote(char out[4 * TZ_ROW__QUOTE_MAX + 4], const uint8_t *p, size_t n);
/* The row line tag of a type: 'i', 'r', 't', 'b', 'n'. */
char tz_row__type_tag(tz_vtype t);

/* ---- small hash map: byte-string keys to a uint64 value ---- */

typedef struct {
	uint8_t *key;      /* owned copy */
	size_t klen;
	uint64_t hash;
	uint64_t value;
	bool used;
} tz_hmap_slot;

typedef struct {
	tz_hmap_slot *slots;
	size_t cap;        /* power of two */
	size_t count;
} tz_hmap;

void tz_hmap__init(tz_hmap *m);
void tz_hmap__release(tz_hmap *m);
/* Insert or find: *slot_out points to the key's slot; *added says whether
 * it was new (its value is then 0).  The slot pointer is valid until the
 * next insertion. */
int tz_hmap__upsert(tz_hmap *m, const void *key, size_t klen, tz_hmap_slot **slot_out, bool *added);
tz_hmap_slot *tz_hmap__get(const tz_hmap *m, const void *key, size_t klen);

/* ---- history (history.c, pack.c) ---- */

/* Objects made in memory and not yet in the object database.  With
 * `spill` set (a threshold in bytes), once the blobs and trees held pass
 * it they are written as a pack and their bytes dropped (ids and types
 * stay, reads go to the object database): an import of 100,000 rows holds
 * one chunk, not the whole rebuilt bundle.  Imports: 16 MiB less the
 * bundle's payload, at least 8 MiB (sync.c rebuild; the agency-day import
 * of 7,821 rows stages ~10 MiB; spilling at 8 MiB read it all back from
 * the pack: +22% instructions, callgrind).  Commits: 64
 * MiB, because every pack is one more place libgit2 looks for an id the
 * store lacks (100 extra packs: +12% CPU for the agency-day import), and a
 * commit's staging is not the import's memory target.  Commits are never
 * spilled: until the caller writes them, nothing references what was
 * spilled. */
#define TZ_STAGING_SPILL_BYTES ((size_t)16 << 20)
#define TZ_COMMIT_SPILL_BYTES ((size_t)64 << 20)
typedef struct tz_staging {
	/* the ids: open addressing over a power of two of slots, each 0
	 * (empty) or 1 + a position in objs; 4 bytes a slot, where a tz_hmap
	 * took 40 and a copy of the key (12 MB for 100,000 rows) */
	uint32_t *slot;
	size_t nslot;
	const struct tz_staging *also;   /* read next when an id is not here */
	size_t bytes;        /* the objects' sizes, summed (spilled included) */
	size_t held;         /* bytes of blobs and trees not yet written */
	size_t spill;        /* 0: never */
	unsigned spills;     /* how many times it spilled */
	size_t ndropped;     /* objects written, then forgotten (not in objs) */
	size_t n, cap;
	struct tz_obj {
		tz_oid oid;
		git_object_t type;
		uint8_t *data;       /* NULL once written (in_pack) */
		size_t len;
		bool in_pack;
	} *objs;
} tz_staging;

void tz_staging__init(tz_staging *st);
void tz_staging__release(tz_staging *st);
/* Forget the objects written to a pack (reads find them in the object
 * database), their bytes and their entries: what stays is only what no
 * pack has yet, in smaller tables. */
void tz_staging__drop_packed(tz_staging *st);
/* The object `oid` staged in st itself (not in st->also), or NULL. */
const struct tz_obj *tz_staging__find(const tz_staging *st, const tz_oid *oid);
/* Hash `data` as a git object of `type`, remember it unless the object
 * database or the staging already holds it.  Takes a copy. */
int tz_staging__add(tz_store *s, tz_staging *st, tz_oid *oid_out, git_object_t type,
		    const void *data, size_t len);
/* The same with a buffer of tz_malloc's, which the staging keeps, or
 * frees (on failure too). */
int tz_staging__take(tz_store *s, tz_staging *st, tz_oid *oid_out, git_object_t type, uint8_t *data, size_t len);

/* Read an object (staging first, then st->also, then the object database,
 * hash checked).
 * *data_out is owned by the caller (tz_free). */
int tz_obj__read(tz_store *s, const tz_staging *st, const tz_oid *oid, git_object_t *type_out,
		 uint8_t **data_out, size_t *len_out);
/* The same, not copied: *data_out is the staging's bytes (valid while
 * nothing is added to it) or those of *obj, which the caller frees with
 * git_odb_object_free (NULL when the bytes are the staging's). */
int tz_obj__peek(tz_store *s, const tz_staging *st, const tz_oid *oid, git_object_t *type_out, const uint8_t **data_out,
		 size_t *len_out, git_odb_object **obj);
/* Read and decode the row blob `oid` (staging first); a zero oid (no
 * row) gives *out NULL and TZ_OK. */
int tz_obj__read_row(tz_store *s, const tz_staging *st, const tz_oid *oid, tz_row **out);

/* A parsed tree entry; `name` points into the tree's bytes. */
typedef struct {
	const char *name;
	size_t name_len;
	uint32_t mode;       /* 0100644 blob, 040000 tree */
	tz_oid oid;
} tz_tree_entry;

typedef struct {
	uint8_t *data;       /* owned raw bytes */
	size_t n;
	tz_tree_entry *e;    /* owned */
} tz_tree;

/* Parse a tree object strictly (sorted, no duplicates, known modes). */
int tz_tree__read(tz_store *s, const tz_staging *st, const tz_oid *oid, tz_tree *out);
void tz_tree__release(tz_tree *t);
/* Binary search by name; NULL when absent. */
const tz_tree_entry *tz_tree__find(const tz_tree *t, const char *name, size_t len);
/* Serialise entries (sorted in git order by this function) and stage it. */
int tz_tree__write(tz_store *s, tz_staging *st, tz_oid *out, tz_tree_entry *e, size_t n);
/* git's entry order: names compared as if trees had a trailing '/'. */
int tz_tree__cmp(const tz_tree_entry *a, const tz_tree_entry *b);
void tz_tree__sort(tz_tree_entry *e, size_t n);

/* Verify a commit's SSH signature against the keys the store knows;
 * TZ_OK and the signer's principal in *signer (static storage of the
 * store), or TZ_EVERIFY / TZ_ECORRUPT with a message naming the commit. */
int tz_commit__verify_sig(tz_store *s, const tz_oid *commit, const char **signer);

/* The tree of the working state (head + change log), staged in `st`
 * without writing anything; the head's tree when nothing is dirty. */
int tz_commit__working_tree(tz_store *s, tz_staging *st, tz_oid *root);

/* A row's path: table, partition, two 16-way fanout levels, key. */
#define TZ_PATH_DEPTH 5
#define TZ_PATH_LEAF (TZ_PATH_DEPTH - 1)

/* One change to apply to a tree: the row's path and its new blob, or a
 * deletion.  The strings are owned by whoever built the change list.
 * 72 bytes, not 112: an import of 100,000 rows holds two lists of them
 * (the rebuilt commit's and the merge's).  A component is at most
 * TZ_PATH_COMP_MAX bytes (a key: TZ_KEY_MAX_BYTES). */
#define TZ_PATH_COMP_MAX UINT16_MAX
typedef struct {
	const char *comp[TZ_PATH_DEPTH];
	uint16_t comp_len[TZ_PATH_DEPTH];
	tz_oid oid;
	bool del;
	uint8_t depth;       /* components used; 0 means TZ_PATH_DEPTH (a row) */
} tz_path_change;

static inline size_t tz_path_change__depth(const tz_path_change *c)
{
	return c->depth ? c->depth : TZ_PATH_DEPTH;
}

/* c's component lengths as the tree functions take them. */
static inline void tz_path_change__lens(const tz_path_change *c, size_t len[TZ_PATH_DEPTH])
{
	for (size_t i = 0; i < TZ_PATH_DEPTH; i++)
		len[i] = c->comp_len[i];
}

/*
 * Apply `n` changes, all sharing comp[0..level-1] and sorted with
 * tz_path_change__cmp, to the tree `base` whose entries are named by
 * comp[level] (zero oid = empty tree), staging every new tree.  *out is the
 * new tree; *empty_out is true when nothing remains (no tree is written).
 */
int tz_tree__apply(tz_store *s, tz_staging *st, tz_oid *out, bool *empty_out, const tz_oid *base,
		   int level, const tz_path_change *ch, size_t n);
int tz_path_change__cmp(const void *a, const void *b);
void tz_tree__lookup_release(tz_store *s);
/* The id at path comp[0..depth) under `root` (a blob at the end, trees on
 * the way), or zero when there is none. */
/* Keeps the trees it parsed last at each level (s->lookup), freed by
 * tz_tree__lookup_release (tz_store_close). */
int tz_tree__lookup(tz_store *s, const tz_staging *st, tz_oid *out, const tz_oid *root,
		    const char *const *comp, const size_t *len, size_t depth);

/* The two fanout directory names of an encoded key: the two hex digits of
 * the first byte of its BLAKE2b hash ("a", "3"). */
void tz_fanout__of(char out[2], const char *key, size_t len);

/* Tree walk of two trees that skips equal ids; `cb` gets each differing
 * blob path (components) with its old and new id (zero = absent). */
typedef int (*tz_walk_cb)(const char *const *comp, const size_t *comp_len, size_t depth,
			  const tz_oid *old_oid, const tz_oid *new_oid, void *payload);
int tz_tree__diff(tz_store *s, const tz_staging *st, const tz_oid *a, const tz_oid *b,
		  tz_walk_cb cb, void *payload);

/* Write every staged object not yet written into one pack and its index
 * (both fsynced, then renamed into place), and refresh the ODB; with
 * `spill`, only the blobs and trees, whose bytes are then dropped. */
int tz_pack__write(tz_store *s, tz_staging *st);
/* tz_pack__write on a thread of its own, for a staging nothing adds to
 * meanwhile: until tz_pack__finish its objects are s->pending, which
 * libgit2 reads through a backend of the store (store.c) and
 * tz_staging__add finds.  Without threads (fault injection armed, or
 * pthread_create failed) the pack is written at once.  tz_pack__abandon
 * waits for the thread and keeps the error at hand (a pack it placed is
 * garbage nothing references). */
typedef struct tz_pack_job {
	tz_staging *st;
	size_t n;
	tz_buf dir;
	pthread_t thread;
	bool running;
	int rc;
	uint8_t sum[20];
	char err[1024];
} tz_pack_job;
int tz_pack__start(tz_store *s, tz_staging *st, tz_pack_job *job);
int tz_pack__finish(tz_store *s, tz_pack_job *job);
void tz_pack__abandon(tz_store *s, tz_pack_job *job);
int tz_pack__spill(tz_store *s, tz_staging *st);
/* Write the objects ids[0..n) of the object database into one new pack
 * (gc.c), placed as above; its name (the pack's SHA-1) in sum. */
int tz_pack__consolidate(tz_store *s, const tz_oid *ids, size_t n, uint8_t sum[20]);

/* Files (keys.c): write all of p to fd; fsync a file or a directory.
 * Each passes through its fault site (write, fsync). */
int tz_fs__write_all(int fd, const uint8_t *p, size_t n, const char *path);
int tz_fs__fsync(int fd, const char *path);
int tz_fs__fsync_dir(const char *dir);

/* Create a signed commit object; returns its id. */
int tz_commit__create(tz_store *s, tz_oid *out, const tz_oid *tree, const tz_oid *parent,
		      const char *message);
/* Stage a commit object signed by kp (sshsig, namespace git) with
 * `signer` as author and committer name: parents in order, time now. */
/* HQ's pending changes sealed as a commit whose objects are written but
 * which nothing references yet (an import records it in its own
 * transaction with tz_commit__record_pending).  Without pending changes
 * `made` is false and root is the head's tree.  Caller holds store.lock. */
typedef struct {
	bool made;
	tz_oid commit, parent, root;
	int64_t max_seq;
	uint64_t hlc;
	int64_t version;
} tz_pending_commit;
int tz_commit__pending(tz_store *s, tz_pending_commit *pc);
/* Inside the caller's transaction: consume the entries the commit sealed,
 * record its clock and schema version (the caller sets the head). */
int tz_commit__record_pending(tz_store *s, const tz_pending_commit *pc);
/* The same, signed by `kp` with `author` as the commit's author. */
int tz_commit__create_as(tz_store *s, tz_oid *out, const tz_oid *tree_id, const tz_oid *parent_id,
			 const char *author, const tz_keypair *kp, const char *message);
int tz_commit__build(tz_store *s, tz_staging *st, tz_oid *out, const tz_oid *tree, const tz_oid *parents,
		     size_t nparents, const char *signer, const tz_keypair *kp, const char *message);
/* Move `ref` (a full name) to oid, as tz_ref__set does for main. */
int tz_ref__set_name(tz_store *s, const char *ref, const tz_oid *oid, const char *why);
/* Move refs/heads/main to `oid` (reflog message `why`).  Called with
 * store.lock held: a ref lock file left by a killed writer is removed. */
int tz_ref__set(tz_store *s, const tz_oid *oid, const char *why);
/* Read a commit's tree id and first parent. */
int tz_commit__tree(tz_store *s, const tz_oid *commit, tz_oid *tree_out);

/* ---- commits as row deltas (transfer.c) ---- */

#define TZ_COMMIT_MAX_PARENTS 8
/* Parse a commit's tree and parents (staging first, then the ODB). */
int tz_commit__parse(tz_store *s, const tz_staging *st, const tz_oid *commit, tz_oid *tree, tz_oid *parents,
		     size_t max_parents, size_t *nparents);
/* Append the delta payload of commits[0..n) (parents before children;
 * each one against its first parent) to out. */
int tz_transfer__pack(tz_store *s, tz_buf *out, const tz_oid *commits, size_t n);
/* Rebuild a payload's commits into st, checking every tree and commit id;
 * *commits (tz_free) lists them in payload order.  A parent neither in st
 * nor in the ODB is TZ_ENOTFOUND naming it. */
int tz_transfer__unpack(tz_store *s, tz_staging *st, const void *p, size_t n, tz_oid **commits,
			size_t *ncommits);

/* The raw bytes of a commit object (staging first). */
int tz_commit__read_raw(tz_store *s, const tz_staging *st, const tz_oid *commit, uint8_t **raw, size_t *n);
/* Verify the sshsig of a raw commit; the signer's key in pk. */
int tz_commit__raw_signer(const uint8_t *raw, size_t n, uint8_t pk[TZ_PK_BYTES]);
/* The id of trailer "<name>: <hex>" of a raw commit (the last one). */
int tz_commit__raw_trailer(const uint8_t *raw, size_t n, const char *name, tz_oid *out, bool *found);

/* Translate the last libgit2 error into ours, with `what` as context. */
int tz_git__error(const char *what);

/* ---- tracked tables (schema.c) ---- */

typedef enum { TZ_SCOPE_OWNED, TZ_SCOPE_SHARED, TZ_SCOPE_HQ } tz_scope;

typedef struct {
	char *name;          /* column name */
	int pk;              /* 0, or 1-based position in the primary key */
} tz_col;

typedef struct {
	int64_t tid;         /* id in tz_tid, used by the change log */
	char *name;
	char *enc;           /* file-name form of the table name */
	tz_scope scope;
	char *owner_column;  /* owned tables only */
	int owner_idx;       /* index of owner_column in cols (sorted), or -1 */
	size_t ncols;
	tz_col *cols;        /* sorted by name, bytewise */
	size_t npk;
	int pk_idx[TZ_KEY_MAX_COLUMNS];   /* indexes into cols, in key order */
	sqlite3_stmt *select_row;         /* SELECT cols FROM t WHERE pk = ? */
} tz_table;

typedef struct {
	size_t n;
	tz_table *t;
} tz_tables;

/* The change log's triggers (tz_[iudmrk]_N, in the order they were made):
 * a DROP TRIGGER for each appended to drop, their CREATE statements (sql
 * and ';') to saved unless NULL. */
int tz_schema__capture_triggers(tz_store *s, tz_buf *drop, tz_buf *saved);
/* Load tz_track and each table's columns; the statements are prepared on
 * demand.  Releases what it built on failure. */
int tz_schema__load(tz_store *s, tz_tables *out);
void tz_schema__release(tz_tables *ts);
tz_table *tz_schema__by_tid(tz_tables *ts, int64_t tid);
tz_table *tz_schema__by_name(tz_tables *ts, const char *name);
/* Partition name of a row of `t`: "_shared", "_hq", or the encoded owner. */
int tz_schema__partition(tz_buf *out, const tz_table *t, const tz_value *owner);
/* Append the row blob, partition and key of the current row of `q`
 * (columns in t->cols order, as tz_schema__select_row selects them) to
 * whichever of blob, part, key is not NULL. */
int tz_schema__encode_row(const tz_table *t, sqlite3_stmt *q, tz_buf *blob, tz_buf *part, tz_buf *key);
/* The DDL of a tracked table as _schema/tables/<table>.sql holds it: its
 * CREATE TABLE, then its indexes and triggers (not the capture triggers). */
int tz_schema__ddl(tz_store *s, const tz_table *t, tz_buf *out);
/* The _schema/tables tree of a root tree (an empty tree when absent). */
int tz_schema__head_tables(tz_store *s, const tz_oid *root, tz_tree *out);
/* Does t's DDL differ from what head_tables records (or is it absent)?
 * Such a table is rebuilt whole by the next commit. */
int tz_schema__ddl_changed(tz_store *s, const tz_table *t, const tz_tree *head_tables, bool *changed);
/* The key condition of t: for each key column c, `lead` (first) or `join`,
 * then lhs c op rhs c, or lhs c op ?N when rhs is NULL (N = 1, 2, ...):
 * (" WHERE ", " AND ", "", " = ", NULL) gives " WHERE "a" = ?1 AND "b" = ?2". */
void tz_schema__put_key_cond(tz_buf *b, const tz_table *t, const char *lead, const char *join,
			     const char *lhs, const char *op, const char *rhs);
/* SELECT of every row of t, columns as tz_schema__select_row has them. */
int tz_schema__select_all(tz_store *s, const tz_table *t, sqlite3_stmt **out);
/* The SELECT of one row by key, prepared once per table. */
int tz_schema__select_row(tz_store *s, tz_table *t, sqlite3_stmt **out);

/* Inside a transaction: create the tables of root's _schema/tables, declare
 * _schema/tz_track and install the capture triggers (a new branch store). */
int tz_schema__install_from_tree(tz_store *s, const tz_staging *st, const tz_oid *root);
/* _schema/<dir>/<table> back into its declaration table: each column of the
 * row one (tbl ?1, name ?2, value ?3) of insert_sql. */
int tz_schema__install_pairs(tz_store *s, const tz_staging *st, const tz_oid *root, tz_tables *ts, const char *dir,
			     const char *insert_sql);

/* ---- rights beyond partitions (rights.c, docs/integrity.md) ---- */

typedef struct tz_rights tz_rights;
/* The columns only HQ updates (tz_access), read once per import. */
int tz_rights__load(tz_store *s, tz_rights **out);
void tz_rights__free(tz_rights *r);
/* An update (base and theirs rows) of t changing a column only HQ
 * changes: *why says so (else NULL). */
int tz_rights__columns(tz_store *s, const tz_staging *st, const tz_rights *r, const tz_table *t, const tz_oid *base,
		       const tz_oid *theirs, const char **why);
/* The partition HQ's store.db holds key `enc` of owned table t in
 * (*found false: none). */
int tz_rights__partition_at_hq(tz_store *s, tz_table *t, const char *enc, size_t len, tz_buf *part, bool *found);
/* A row added in another branch's partition (path comp) that the sending
 * branch owns at HQ (partition `own`) and no longer holds there in
 * theirs_root: an ownership transfer the owner may make. */
int tz_rights__given(tz_store *s, const tz_staging *st, tz_table *t, const char *const *comp, const size_t *len,
		     const tz_oid *base, const tz_oid *theirs, const tz_oid *theirs_root, const tz_buf *own, bool *given);
/* A row the branch changed (base, theirs) that HQ holds no longer at this
 * path (ours zero) but in another partition: moved away (a transfer). */
int tz_rights__moved_away(tz_store *s, tz_table *t, const char *const *comp, const size_t *len, const tz_oid *base,
			  const tz_oid *ours, const tz_oid *theirs, bool *moved);

/* ---- integrity declarations (declare.c, docs/integrity.md) ---- */

/* Inside schema apply's transaction: tz_unique, tz_access, tz_invariant,
 * and no UNIQUE index other than the primary key on a tracked table. */
int tz_declare__validate(tz_store *s, tz_tables *ts);
/* A new branch: the declarations of root's _schema into store.db. */
int tz_declare__install(tz_store *s, const tz_staging *st, const tz_oid *root, tz_tables *ts);

/* ---- the store itself (store.c) ---- */

struct tz_store {
	char *dir;
	char code[17];
	sqlite3 *db;
	git_repository *repo;
	git_odb *odb;
	git_odb_backend *packs;   /* odb's pack backend (owned by odb) */
	tz_keypair kp;
	tz_progress_cb progress;
	void *progress_payload;
	char signer[TZ_PRINCIPAL_SIZE];   /* last signer tz_commit__verify_sig found */
	int lock_fd;          /* store.lock while writing, else -1 */
	int lock_depth;       /* nested writers (schema apply -> commit) */
	/* tz_obj__read hashes what it reads from the object database and
	 * compares with the id (verify; see store.c on libgit2's own check) */
	bool check_hashes;
	/* the running import's objects still in memory, for what the checks
	 * after a merge read through tz_store_touched and the row readers
	 * (integrity.c): they would inflate them again from its packs */
	const struct tz_staging *held;
	/* a staging a thread is writing as a pack (tz_pack__start) */
	const struct tz_staging *pending;
	/* tz_tree__lookup's last parsed tree at each level: a merge or a
	 * rebuild looks rows up in key order, so consecutive lookups share
	 * their path (history.c) */
	struct tz_lookup_level {
		tz_oid oid;
		tz_tree t;
	} lookup[TZ_PATH_DEPTH];
};

/* tz_store_init, saying whether it made `dir` (false: it was empty), and
 * its undoing (removes what init made). */
int tz_store__init(const char *dir, const char *code, bool *made);
void tz_store__undo_init(const char *dir, bool made_dir);

/* Writers (commit, checkout, schema apply) hold store.lock (flock) so
 * that they never interleave; another process waits up to a minute,
 * then gets TZ_EBUSY.  Nests; the lock dies with the process. */
int tz_store__lock(tz_store *s);
void tz_store__unlock(tz_store *s);

/* ---- materialise.c ---- */

/* Inside a write transaction: bring store.db's tracked rows from tree
 * `from` to tree `to` (roots), leaving alone the rows the change log names
 * (the application's uncommitted writes: *kept counts them) and leaving
 * no change-log entries of its own.  Tables must be those store.db has. */
int tz_materialise__trees(tz_store *s, const tz_staging *st, const tz_oid *from, const tz_oid *to, uint64_t *touched,
			  uint64_t *kept);

/* Do two read root trees declare the same tables (_schema/tables and
 * _schema/tz_track; the version may differ)? */
int tz_schema__same_declarations(tz_store *s, const tz_tree *a, const tz_tree *b, bool *same);

/* The keys the change log names, as "<tid> <encoded key>" in out (an
 * initialised map), and the lookup of one row of t. */
int tz_changes__keys(tz_store *s, tz_tables *ts, tz_hmap *out);
bool tz_changes__has(const tz_hmap *keys, const tz_table *t, const char *key, size_t len);

/* ---- the key registry (registry.c) ---- */

int tz_registry__add(tz_store *s, const char *principal, const char *role, const uint8_t *pk,
		     const uint8_t *secret);
/* One principal's row (secret: its one-time enrolment secret, zero when
 * none; may be NULL). */
int tz_registry__get(tz_store *s, const char *principal, tz_key_info *out, uint8_t secret[TZ_ENROL_SECRET_BYTES],
		     bool *found);
int tz_registry__principal_of(tz_store *s, const uint8_t pk[TZ_PK_BYTES], char out[TZ_PRINCIPAL_SIZE],
			      bool *found);

/* SQLite helpers that translate errors (message names the statement). */
int tz_sql__exec(tz_store *s, const char *sql);
int tz_sql__prepare(tz_store *s, sqlite3_stmt **out, const char *sql);
int tz_sql__error(tz_store *s, int rc, const char *what);
/* Append a quoted SQL identifier ("a""b"). */
void tz_sql__put_ident(tz_buf *b, const char *name);
/* Bind / read a tz_value. */
int tz_sql__bind_value(sqlite3_stmt *st, int idx, const tz_value *v);
void tz_sql__column_value(sqlite3_stmt *st, int idx, tz_value *v);

/* tz_meta key/value access. */
int tz_meta__get_text(tz_store *s, const char *key, char *out, size_t cap);
int tz_meta__set_text(tz_store *s, const char *key, const char *value);
int tz_meta__get_int(tz_store *s, const char *key, int64_t *out);
int tz_meta__set_int(tz_store *s, const char *key, int64_t value);

/* The head recorded in store.db (false when no commit yet). */
int tz_head__get(tz_store *s, bool *has, tz_oid *out);

int tz_oid__parse(tz_oid *out, const char *hex);

void tz_progress__report(tz_store *s, const char *what, uint64_t done, uint64_t total);

#endif

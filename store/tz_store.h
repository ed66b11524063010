/*
 * tz_store.h - a Tazamun store: the SQLite working copy, the change log, the
 * git history and the replica's key, behind one handle.
 *
 * A store is a directory (docs/store-layout.md):
 *   store.db   the SQLite file the application writes; Tazamun's own tables
 *              (tz_*) live beside the application's
 *   history/   a bare git repository (libgit2), readable by stock git
 *   keys/      the replica's Ed25519 key pair (mode 0700 / 0600)
 *   config     the replica code and role, one "key = value" per line
 *
 * The invariant every function keeps (and tz_store_verify checks):
 * store.db's tracked rows == the head commit's rows + the change log.
 * Crash-safe order of every write: objects first, then the new head and the
 * consumed change-log entries in one SQLite transaction, then the git ref;
 * opening a store moves the ref to the head SQLite recorded.
 */
#ifndef TZ_STORE_H
#define TZ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/tz_base.h"
#include "store/tz_buf.h"
#include "store/tz_keys.h"
#include "store/tz_row.h"

typedef struct tz_store tz_store;
struct sqlite3;
struct sqlite3_stmt;

/* A git object id (SHA-1). */
typedef struct {
	uint8_t id[20];
} tz_oid;

/* Hex form of an oid: 40 characters and a NUL. */
void tz_oid_fmt(char out[41], const tz_oid *oid);
bool tz_oid_is_zero(const tz_oid *oid);

/* Branch codes: [A-Z0-9][A-Z0-9_-]{0,15}; "HQ" is headquarters. */
bool tz_code_valid(const char *code);

/*
 * Create a new store in `dir` (which must not exist, or be an empty
 * directory) for replica `code` ("HQ" for headquarters).  Makes the key
 * pair, the empty history and store.db with Tazamun's tables.  On failure
 * nothing is left behind that was not there before.
 */
int tz_store_init(const char *dir, const char *code);

/* Open an existing store; reconciles the git ref with store.db's head. */
int tz_store_open(tz_store **out, const char *dir);
void tz_store_close(tz_store *s);

const char *tz_store_code(const tz_store *s);
/* The replica's key pair (signing bundles, opening those sent to it). */
const tz_keypair *tz_store_keypair(const tz_store *s);
const char *tz_store_dir(const tz_store *s);
/* The store's SQLite connection (the layers above read and write
 * Tazamun's tables through it, inside the store's transactions). */
struct sqlite3 *tz_store_db(tz_store *s);
/* SQL text and values as the store writes them, for those callers: an
 * identifier in double quotes; a value bound (text and blobs not copied:
 * they must live until the statement is reset); a column read into a value
 * (pointing into the statement until its next step). */
void tz_store_sql_ident(tz_buf *b, const char *name);
int tz_store_sql_bind(struct sqlite3_stmt *st, int idx, const tz_value *v);
void tz_store_sql_column(struct sqlite3_stmt *st, int idx, tz_value *v);

/* Progress callback for long work: `done` of `total` units of `what`. */
typedef void (*tz_progress_cb)(const char *what, uint64_t done, uint64_t total, void *payload);
void tz_store_set_progress(tz_store *s, tz_progress_cb cb, void *payload);

/* ---- committing ---- */

typedef struct {
	bool committed;       /* false: nothing to commit */
	tz_oid commit;        /* the new head when committed */
	uint64_t entries;     /* change-log entries sealed */
	uint64_t rows_added;  /* rows new in the commit's tree */
	uint64_t rows_changed;   /* rows whose content differs from the parent */
	uint64_t rows_deleted;
	uint64_t objects_written;
} tz_commit_result;

/*
 * Seal the change log into one signed commit.  `message` may be NULL
 * (a default names the counts).  Entries that cancel out (a row changed and
 * restored) are consumed without a commit when nothing else changed:
 * result->committed is then false and the return TZ_OK.
 */
int tz_store_commit(tz_store *s, const char *message, tz_commit_result *result);
/* The same, signed by HQ's administrator `admin` (keys/admin-NAME, in the
 * registry and not revoked; NULL: the replica's own key); with
 * `allow_empty`, a commit is made even when no row changed (a decision
 * recorded as such: the head's rows, an empty _log). */
int tz_store_commit_as(tz_store *s, const char *message, const char *admin, bool allow_empty,
		       tz_commit_result *result);
/*
 * A commit of rows the caller writes, all or nothing: under store.lock,
 * HQ's pending changes are sealed first (their own commit); then in one
 * write transaction h->write(ctx, s) writes rows into store.db, the commit
 * is built from them (objects written and synced while the transaction is
 * still open), recorded (head, clock, log) and h->record(ctx, s, commit)
 * (may be NULL) adds the caller's own rows; then COMMIT, then the ref.  Any
 * failure rolls the whole transaction back: store.db is as it was (objects
 * already written stay unreferenced).  admin and allow_empty as for
 * tz_store_commit_as.
 */
typedef struct {
	int (*write)(void *ctx, tz_store *s);
	int (*record)(void *ctx, tz_store *s, const tz_oid *commit);
	void *ctx;
} tz_commit_hook;
int tz_store_commit_with(tz_store *s, const char *message, const char *admin, bool allow_empty,
			 const tz_commit_hook *h, tz_commit_result *result);
/* Can administrator `admin` sign here (registered, not revoked, its key
 * file matching the registry)?  TZ_OK, or the error commit_as would give. */
int tz_store_admin_check(tz_store *s, const char *admin);

/*
 * Run the SQL text `sql` (DDL and inserts into tz_track) and the store's
 * validation of the declarations in one transaction; on success commit the
 * result (schema under _schema/, the rows of newly tracked tables).  On any
 * failure nothing is applied and the message names what was refused.
 */
int tz_store_schema_apply(tz_store *s, const char *sql, const char *origin,
			  tz_commit_result *result);

/*
 * Bring store.db's tracked tables to the tree of `rev` and make it the head,
 * touching only rows that differ and leaving no change-log entries; the old
 * head stays in the reflog.  *rows_touched counts the row paths rewritten
 * (a row that moved partitions counts twice).  Refuses (TZ_EBUSY) while
 * there is uncommitted work (change-log entries, or a table whose DDL
 * differs from the head's), and (TZ_EINVAL) when `rev` tracks other tables
 * or declarations than the head.
 */
int tz_store_checkout(tz_store *s, const char *rev, uint64_t *rows_touched);

/* ---- reading ---- */

typedef struct {
	char table[256];
	uint64_t changes;        /* change-log entries */
	uint64_t rows;           /* distinct keys among them */
	bool rebuild;            /* DDL differs from the head's (new, or altered):
				    the next commit re-encodes every row */
} tz_status_table;

typedef struct {
	char code[17];
	bool has_head;
	tz_oid head;
	int64_t schema_version;
	uint64_t log_entries;
	uint64_t log_rows;
	size_t nrebuild;           /* tables with rebuild set */
	size_t ntables;
	tz_status_table *tables;   /* owned; free with tz_status_release */
	/* the sync cycle (docs/protocol.md) */
	bool branch;               /* a branch store (else HQ) */
	uint64_t unsent;           /* branch: commits HQ has not acknowledged */
	uint64_t seq_out;          /* the sequence number of the last export (0: none) */
	int64_t last_import;       /* when the last bundle was imported (0: never) */
	char last_sender[17];      /* and from whom */
	uint64_t branches;         /* HQ: branches enrolled */
} tz_status;

int tz_store_status(tz_store *s, tz_status *out);
void tz_status_release(tz_status *st);

/* One commit as log and show print it. Strings point into storage valid
 * during the callback only. */
typedef struct {
	tz_oid oid;
	size_t nparents;
	tz_oid parents[2];
	const char *author;       /* replica code or administrator */
	int64_t time;             /* seconds since the epoch, UTC */
	const char *message;      /* whole message, trailers included */
	bool signature_ok;        /* verified against a key the store knows */
	const char *signer;       /* the principal that signed, or "" */
} tz_commit_info;

typedef int (*tz_commit_cb)(const tz_commit_info *info, void *payload);

/* Walk first-parent history from `rev` (NULL = head), newest first, at
 * most `max` commits (0 = all). */
int tz_store_log(tz_store *s, const char *rev, size_t max, tz_commit_cb cb, void *payload);

/* Resolve a revision (hex prefix, "HEAD", "HEAD~N", a ref name) to a
 * commit id.  TZ_ENOTFOUND with a message naming `rev`. */
int tz_store_resolve(tz_store *s, tz_oid *out, const char *rev);

typedef enum { TZ_DIFF_ADDED = 'A', TZ_DIFF_DELETED = 'D', TZ_DIFF_MODIFIED = 'M' } tz_diff_status;

/* One changed row: decoded key, and each column that differs (old and/or
 * new NULL-pointer when the row is absent on that side). */
typedef struct {
	const char *name;
	size_t name_len;
	const tz_value *old_v;   /* NULL when absent on the old side */
	const tz_value *new_v;
} tz_diff_column;

typedef struct {
	tz_diff_status status;
	const char *table;
	const char *partition;
	const char *key;          /* encoded key (the file name) */
	const tz_value *key_values;
	size_t nkey;
	const tz_diff_column *cols;
	size_t ncols;
} tz_diff_row;

typedef int (*tz_diff_cb)(const tz_diff_row *row, void *payload);

/*
 * Row-level diff between two revisions.  `a` NULL means the head; `b`
 * NULL means the working state (store.db: the head plus the change log).
 * Both trees are walked together and equal subtrees are skipped by id, so
 * the cost follows what changed.  Rows are reported in path order.
 */
int tz_store_diff(tz_store *s, const char *a, const char *b, tz_diff_cb cb, void *payload);

/* Diff a commit against its first parent (the root commit against empty). */
int tz_store_diff_commit(tz_store *s, const tz_oid *commit, tz_diff_cb cb, void *payload);

/* One finding of verify. */
typedef struct {
	const char *kind;     /* "signature", "object", "row", "layout" */
	const char *message;  /* what is wrong, naming commit, object or table and key */
} tz_verify_issue;

typedef int (*tz_verify_cb)(const tz_verify_issue *issue, void *payload);

typedef struct {
	uint64_t commits;
	uint64_t objects;
	uint64_t rows;
	uint64_t issues;
} tz_verify_result;

/*
 * Check the store: every commit's signature, every reachable object's hash
 * and encoding, the tree layout, and that store.db equals the head plus the
 * change log (a row changed behind the triggers' back is reported by table
 * and key).  Each problem goes to `cb`; the return is TZ_OK when the checks
 * ran (result->issues says whether they passed) or an error when they could
 * not run.
 */
int tz_store_verify(tz_store *s, tz_verify_result *result, tz_verify_cb cb, void *payload);

/* What gc did (gc.c). */
typedef struct {
	bool noop;               /* one pack already, nothing loose: nothing copied */
	uint64_t objects;        /* in the new pack */
	uint64_t packs_before;   /* packs replaced (with their index) */
	uint64_t loose_before;   /* loose objects replaced */
	uint64_t tmp_removed;    /* temporaries a killed writer left */
	uint64_t bytes_before;   /* of the packs, indexes and loose objects */
	uint64_t bytes_after;    /* of the new pack and its index */
} tz_gc_result;

/*
 * Copy every object of the history (reachable or not) into one new pack,
 * then remove the packs and loose objects copied; takes store.lock.  A
 * failure or a crash leaves every object readable (at worst twice).
 */
int tz_store_gc(tz_store *s, tz_gc_result *res);
/* Whether packs or loose objects have piled up enough for the daemons to
 * run gc (32 packs, or 256 loose objects). */
int tz_store_gc_due(tz_store *s, bool *due);

/* ---- the key registry (registry.c) ---- */

/* A principal: a replica code, or an administrator's name. */
#define TZ_PRINCIPAL_SIZE 33
#define TZ_ENROL_SECRET_BYTES 32

/* Administrator names: [a-z][a-z0-9._-]{0,31} (lower case, so never a
 * replica code). */
bool tz_admin_name_valid(const char *name);

typedef struct {
	const char *principal;
	const char *role;          /* "hq", "branch" or "admin" */
	bool has_pk;
	uint8_t pk[TZ_PK_BYTES];
	int64_t added;             /* registered, seconds since the epoch */
	int64_t revoked;           /* 0 while valid */
	bool pending;              /* a branch enrolled whose key is not bound yet */
	const char *instance;      /* the branch store's instance id (hex), or "" */
	char role_buf[8];
	char instance_buf[33];
} tz_key_info;

typedef int (*tz_key_cb)(const tz_key_info *k, void *payload);
/* Every key the store knows: HQ first, then branches, then administrators. */
int tz_store_keys(tz_store *s, tz_key_cb cb, void *payload);
/* HQ: revoke a branch's or an administrator's key: no bundle signed by it
 * is accepted from now on (the history it signed before stays valid). */
int tz_store_key_revoke(tz_store *s, const char *principal);
/* HQ: make a key pair for administrator `name` (keys/admin-NAME, 0600). */
int tz_store_key_add_admin(tz_store *s, const char *name);

/* ---- what the integrity checks read (integrity.c; docs/integrity.md) ---- */

/* One row two roots differ by. Strings valid during the callback only. */
typedef struct {
	const char *table;          /* the table's name */
	const char *partition;      /* decoded: "_shared", "_hq" or a branch code */
	const char *partition_enc;  /* as the path has it */
	const char *key;            /* encoded key (the file name) */
	bool present;               /* in the `to` root (else deleted there) */
	const tz_oid *blob;         /* the row in `to`, when present */
} tz_touched_row;

typedef int (*tz_touched_cb)(const tz_touched_row *r, void *payload);

/* The rows that differ between two root trees (from NULL: every row of
 * `to`), equal subtrees skipped; a row that moved counts at both paths. */
int tz_store_touched(tz_store *s, const tz_oid *from_root, const tz_oid *to_root, tz_touched_cb cb, void *payload);
/* Decode a row blob of the history. */
int tz_store_read_row(tz_store *s, const tz_oid *blob, tz_row **out);
/* The row at <table>/<partition>/<fanout>/<key> of root (encoded names),
 * or *out NULL when there is none. */
int tz_store_row_at(tz_store *s, const tz_oid *root, const char *table_enc, const char *part_enc, const char *key,
		    tz_row **out);
/* The root tree of a commit. */
int tz_store_root_of(tz_store *s, const tz_oid *commit, tz_oid *root);
/* Where a merged row's key leads (tz_redirect, chains followed: A merged
 * into B, B into C gives C); *target NULL when `key` is not redirected. */
int tz_store_redirect_target(tz_store *s, const char *table, const char *key, char **target);

/* ---- the sync cycle (sync.c; docs/protocol.md) ---- */

/* What goes into a bundle, made by tz_store_export; the container
 * (syncd/bundle.c) signs, encrypts and writes it. */
typedef struct {
	char sender[17];
	char recipient[17];
	uint8_t recipient_pk[TZ_PK_BYTES];
	uint8_t instance[16];       /* the sender store's instance id */
	uint64_t sequence;          /* new for every export of this sender */
	uint64_t schema;
	size_t nprereq;
	tz_oid *prereq;             /* owned */
	bool bind;                  /* a branch not yet acknowledged binds its key */
	uint8_t bind_pk[TZ_PK_BYTES];
	uint8_t bind_mac[32];
	size_t ncommits;
	tz_oid tip;                 /* the newest commit, when ncommits > 0 */
	tz_buf payload;             /* the row deltas */
	const void *dict;           /* zstd dictionary to compress with, or NULL */
	size_t dict_len;
	uint8_t *dict_owned;
} tz_outgoing;

void tz_outgoing_release(tz_outgoing *o);

/*
 * Make the next bundle of this store: at a branch (for_code NULL) the
 * commits HQ has not acknowledged, after committing pending changes; at
 * HQ (for_code a branch code) the commits of branches/<code> that branch
 * has not been seen to hold.  Takes a new sequence number (recorded
 * before returning, so that no two bundles ever share one).
 */
int tz_store_export(tz_store *s, const char *for_code, tz_outgoing *out);

/* The authenticated header of a bundle, as the container read it. */
typedef struct {
	const char *sender;
	const uint8_t *instance;    /* 16 bytes */
	uint64_t sequence;
	uint64_t schema;
	const tz_oid *prereq;
	size_t nprereq;
	bool bind;
	const uint8_t *bind_pk;     /* 32 bytes when bind */
	const uint8_t *bind_mac;    /* 32 bytes when bind */
	const uint8_t *signer_pk;   /* the key the bundle's signature verified with */
	const uint8_t *digest;      /* 32 bytes: BLAKE2b of the whole bundle file */
} tz_incoming;

/*
 * The key that must have signed a bundle from `sender` (for the container's
 * key callback): TZ_OK and pk_out; TZ_ENOTFOUND for an unknown sender;
 * TZ_EPERM, with a message saying why, for a revoked key, a binding whose
 * one-time secret does not match, or a branch whose key is not bound yet
 * and that sends no binding.
 */
int tz_store_sender_key(tz_store *s, const char *sender, bool bind, const uint8_t bind_pk[TZ_PK_BYTES],
			const uint8_t bind_mac[32], const uint8_t instance[16], uint8_t pk_out[TZ_PK_BYTES]);

/* A change a branch made that HQ did not apply. */
typedef struct tz_refused_ {
	char *table;
	char *partition;
	char *key;
	const char *why;            /* static text */
	bool has_base;              /* an update refused: the row it started from */
	tz_oid base;
} tz_refused;

typedef struct {
	bool noop;                  /* nothing new: already imported or known */
	const char *noop_why;
	size_t commits;             /* commits in the bundle */
	size_t commits_new;         /* of which this store did not have */
	uint64_t rows_merged;       /* HQ: rows integrated into main */
	uint64_t rows_written;      /* rows written into store.db */
	uint64_t rows_kept;         /* rows left as the application wrote them */
	uint64_t sealed;            /* branch: pending change-log entries committed
				       before the answer was applied (P14) */
	bool merged;                /* branch: local commits merged on top */
	tz_oid head;                /* the head afterwards */
	tz_oid line;                /* HQ: the branch line's new tip */
	size_t nrefused;
	tz_refused *refused;        /* owned */
} tz_import_result;

void tz_import_result_release(tz_import_result *r);

/*
 * HQ's merge of the rows both HQ and a branch changed since the branch's
 * base (DESIGN §6).  The store finds them and asks a merger for each; the
 * merger (conflict/, tz_merger_new) decides column by column and keeps
 * what the conflict queue must get, which it records through `record`
 * inside the import's SQLite transaction.
 */
typedef struct {
	uint64_t ours, theirs;      /* HLC of the row's last change on each side; 0 unknown */
	int64_t skew_ms;            /* the branch's clock ahead of HQ's (negative: behind) */
} tz_merge_stamps;

typedef struct {
	const char *code;           /* the branch */
	const char *table;
	const char *partition;
	const char *key;            /* encoded key (the file name) */
	size_t key_len;
	const char *owner;          /* owned tables: the branch owning the row; else NULL */
	const tz_row *base, *ours, *theirs;   /* NULL where the row is absent */
	int (*stamps)(void *ctx, tz_merge_stamps *out);   /* asked only when needed */
	void *stamps_ctx;
} tz_merge_request;

/* What an HQ import hands the integrity checks (docs/integrity.md),
 * inside its transaction, store.db materialised. */
typedef struct {
	const char *code;           /* the branch */
	const tz_oid *ours_commit, *theirs_commit, *merge_commit;   /* merge zero: none */
	const tz_oid *from_root, *to_root;   /* main before and after the merge */
	const tz_refused *refused;   /* the changes not applied [P9] */
	size_t nrefused;
} tz_merge_done;

typedef struct tz_merger tz_merger;
typedef struct {
	/* the merged row: its encoding appended to `out`, or *absent */
	int (*row)(tz_merger *m, const tz_merge_request *rq, tz_buf *out, bool *absent);
	/* inside the import's transaction, once the merge commit is made
	 * (merge zero: no merge commit, the rows were main's already) */
	int (*record)(tz_merger *m, tz_store *s, const char *code, const tz_oid *ours_commit,
		      const tz_oid *theirs_commit, const tz_oid *merge_commit);
	/* after record: duplicates, rights, references, invariants (may be NULL) */
	int (*check)(tz_merger *m, tz_store *s, const tz_merge_done *d);
} tz_merger_ops;

struct tz_merger {
	const tz_merger_ops *ops;
};

/*
 * Apply a bundle's payload (already authenticated and opened): replay and
 * instance checks, rebuild every commit and check its ids and signature,
 * then at HQ integrate the branch's changes into main (rows both sides
 * changed through `m`, required at HQ) and build the
 * branch's new view on branches/<code>; at a branch fast-forward (or merge
 * its own newer commits on top) and materialise into store.db.  All or
 * nothing: on failure the store is as it was.  `payload` is wiped and
 * released as soon as its commits are rebuilt (the rest of an import
 * does not need it: 8 MB of 100,000 changed rows); it may be released
 * already when this returns, whatever it returns.
 */
int tz_store_import(tz_store *s, const tz_incoming *in, tz_buf *payload, tz_merger *m, tz_import_result *res);

/* Rebuild the commits of a delta payload (bundle-format.md, "The
 * payload") in memory as an import would, checking every id, and write
 * nothing: TZ_OK and *ncommits, or the error an import would give
 * (TZ_ECORRUPT, TZ_ELIMIT, TZ_ENOTFOUND for a missing parent, TZ_EVERIFY
 * for an id that differs).  Commit signatures are not checked here. */
int tz_store_payload_check(tz_store *s, const void *payload, size_t n, size_t *ncommits);

/* HQ: register branch `code` and make its enrolment payload (the caller
 * protects it with a passphrase): HQ's key, a one-time secret, the
 * snapshot of the branch's view. */
int tz_store_branch_add(tz_store *s, const char *code, tz_buf *payload_out);

/* Create a branch store in `dir` from an enrolment payload; its own key
 * pair is made here.  On failure nothing is left behind. */
int tz_store_init_branch(const char *dir, const void *payload, size_t n, tz_progress_cb cb, void *cb_payload);

/* Append an allowed-signers file (one line per key the store knows:
 * `<principal> namespaces="git" ssh-ed25519 <base64>`) to `out`. */
int tz_store_allowed_signers(tz_store *s, tz_buf *out);

/* Append the replica's public key in OpenSSH form with its code. */
int tz_store_public_key(tz_store *s, tz_buf *out);

#endif

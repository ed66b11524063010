/*
 * store.c - creating and opening a store; SQLite and tz_meta helpers.
 *
 * Layout and invariants: docs/store-layout.md.  Tazamun's own tables in
 * store.db (created here, in one transaction):
 *   tz_meta(k, v)               head, hlc, schema_version, instance, format
 *   tz_track(tbl, scope, owner_column)   the tracked tables (a contract)
 *   tz_tid(tid, tbl)            small integer ids the change log uses
 *   tz_changes(seq, tid, op, ts, po, k0..k7)   the change log
 *   tz_keys, tz_lines, tz_bundles   the sync cycle (docs/protocol.md)
 *   tz_policy, tz_group         merge declarations (docs/merge.md)
 *   tz_conflicts                HQ's conflict queue (conflict/)
 *   tz_unique, tz_access, tz_invariant   integrity declarations (docs/integrity.md)
 *   tz_redirect                 rows merged into others (duplicates merge)
 *   tz_ukeys, tz_duplicates     HQ's normalised-key index and duplicate queue
 */
#define _XOPEN_SOURCE 700   /* nftw */
#include "store/store_int.h"

#include <git2/sys/odb_backend.h>
#include <git2/sys/repository.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libdeflate.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


/* The on-disk format of store.db's tz_* tables; a store of a newer format
 * is refused rather than misread. */
#define TZ_STORE_FORMAT 1
/* libgit2's object cache: 8 MiB keeps HQ's merge well under its 64 MiB
 * RSS budget (DESIGN §10) while holding every tree a commit touches. */
#define TZ_GIT_CACHE_BYTES (8 * 1024 * 1024)
/* libgit2 caches trees only up to 4 KiB by default; a merge or a rebuild
 * looks thousands of rows up through the same root, table, partition and
 * fanout trees (leaves are ~17 KB at 100k rows), each otherwise inflated and
 * hashed again: cached up to 64 KiB (bench/merge: the agency-day import
 * 2.1 s -> 1.1 s, 100k changes 26 s -> 10 s, same RSS). */
#define TZ_GIT_CACHE_TREE_BYTES (64 * 1024)
/* A config file is a handful of short lines; 64 KiB is plenty. */
#define TZ_CONFIG_MAX 65536

static const char *const tz_schema_sql =
	"CREATE TABLE tz_meta(k TEXT PRIMARY KEY, v) WITHOUT ROWID;\n"
	"CREATE TABLE tz_track(tbl TEXT PRIMARY KEY, scope TEXT NOT NULL, owner_column TEXT);\n"
	"CREATE TABLE tz_tid(tid INTEGER PRIMARY KEY, tbl TEXT NOT NULL UNIQUE);\n"
	"CREATE TABLE tz_changes(seq INTEGER PRIMARY KEY, tid INTEGER NOT NULL,"
	" op INTEGER NOT NULL, ts REAL NOT NULL, po, k0, k1, k2, k3, k4, k5, k6, k7);\n"
	"CREATE TABLE tz_keys(principal TEXT PRIMARY KEY, role TEXT NOT NULL, pk BLOB UNIQUE,"
	" added INTEGER NOT NULL, revoked INTEGER, secret BLOB, instance TEXT);\n"
	"CREATE TABLE tz_lines(code TEXT PRIMARY KEY, line TEXT NOT NULL, received TEXT NOT NULL DEFAULT '',"
	" enrolled TEXT NOT NULL);\n"
	"CREATE TABLE tz_bundles(sender TEXT NOT NULL, seq INTEGER NOT NULL, digest BLOB NOT NULL,"
	" at INTEGER NOT NULL, commits INTEGER NOT NULL, PRIMARY KEY (sender, seq));\n"
	/* the merge declarations (docs/merge.md), versioned in _schema/ */
	"CREATE TABLE tz_policy(tbl TEXT NOT NULL, col TEXT NOT NULL, policy TEXT NOT NULL, PRIMARY KEY (tbl, col));\n"
	"CREATE TABLE tz_group(tbl TEXT NOT NULL, grp TEXT NOT NULL, col TEXT NOT NULL, PRIMARY KEY (tbl, col));\n"
	/* HQ's conflict queue (conflict/queue.c); rows as the row encoding */
	"CREATE TABLE tz_conflicts(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, tbl TEXT NOT NULL,"
	" part TEXT NOT NULL, key TEXT NOT NULL, branch TEXT NOT NULL, cols BLOB NOT NULL,"
	" base BLOB, ours BLOB, theirs BLOB, provisional BLOB, policy TEXT NOT NULL, note TEXT,"
	" ours_commit TEXT NOT NULL, theirs_commit TEXT NOT NULL, merge_commit TEXT NOT NULL,"
	" created INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'open', resolved_at INTEGER,"
	" resolved_by TEXT, resolution TEXT, resolution_commit TEXT);\n"
	"CREATE INDEX tz_conflicts_status ON tz_conflicts(status, tbl, branch);\n"
	/* integrity declarations (docs/integrity.md), versioned in _schema/ */
	"CREATE TABLE tz_unique(name TEXT PRIMARY KEY, tbl TEXT NOT NULL, cols TEXT NOT NULL, normalize TEXT);\n"
	"CREATE TABLE tz_access(tbl TEXT NOT NULL, col TEXT NOT NULL, writer TEXT NOT NULL, PRIMARY KEY (tbl, col));\n"
	"CREATE TABLE tz_invariant(name TEXT PRIMARY KEY, sql TEXT NOT NULL);\n"
	/* rows merged into others: key encodings; in the history as _redirect/ */
	"CREATE TABLE tz_redirect(tbl TEXT NOT NULL, from_key TEXT NOT NULL, to_key TEXT NOT NULL,"
	" PRIMARY KEY (tbl, from_key)) WITHOUT ROWID;\n"
	/* HQ: the normalised unique keys of the rows (an index kept by the
	 * checks after each merge) and the duplicate queue */
	"CREATE TABLE tz_ukeys(name TEXT NOT NULL, nkey BLOB NOT NULL, key TEXT NOT NULL, part TEXT NOT NULL,"
	" PRIMARY KEY (name, nkey, key)) WITHOUT ROWID;\n"
	"CREATE INDEX tz_ukeys_key ON tz_ukeys(name, key);\n"
	"CREATE TABLE tz_duplicates(id INTEGER PRIMARY KEY, name TEXT NOT NULL, tbl TEXT NOT NULL, nkey BLOB NOT NULL,"
	" key_a TEXT NOT NULL, part_a TEXT NOT NULL, key_b TEXT NOT NULL, part_b TEXT NOT NULL, branch TEXT NOT NULL,"
	" merge_commit TEXT NOT NULL, created INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'open',"
	" resolved_at INTEGER, resolved_by TEXT, kept TEXT, resolution_commit TEXT);\n";

static pthread_once_t git_once = PTHREAD_ONCE_INIT;
static int git_init_rc;

/* libgit2's strict hash verification is off: it SHA-1'd (with collision
 * detection) every object read from a pack, 11% of HQ's agency-day import
 * (callgrind), while git itself trusts a pack's zlib streams (their
 * Adler-32 catches a damaged byte) and leaves re-hashing to fsck.  So does
 * Tazamun: `verify` hashes every object it reads (s->check_hashes,
 * history.c), and every object a commit or an import writes is hashed as
 * it is staged. */
static void git_init_once(void)
{
	if (git_libgit2_init() < 0 ||
	    git_libgit2_opts(GIT_OPT_SET_CACHE_MAX_SIZE, (ssize_t)TZ_GIT_CACHE_BYTES) < 0 ||
	    git_libgit2_opts(GIT_OPT_SET_CACHE_OBJECT_LIMIT, GIT_OBJECT_TREE, (size_t)TZ_GIT_CACHE_TREE_BYTES) < 0 ||
	    git_libgit2_opts(GIT_OPT_SET_MWINDOW_MAPPED_LIMIT, (size_t)(4 * 1024 * 1024)) < 0 ||
	    git_libgit2_opts(GIT_OPT_SET_MWINDOW_SIZE, (size_t)(1024 * 1024)) < 0 ||
	    git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1) < 0 ||
	    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0) < 0)
		git_init_rc = TZ_EGIT;
	/* pack.c's compressor allocates through Tazamun's allocator, a
	 * fault site like the rest (before any compressor exists) */
	libdeflate_set_memory_allocator(tz_malloc, tz_free);
}

static int git_setup(void)
{
	pthread_once(&git_once, git_init_once);
	if (git_init_rc < 0)
		return tz_error_set(TZ_EGIT, "cannot initialise libgit2");
	return tz_crypto_init();
}

int tz_git__error(const char *what)
{
	const git_error *e = git_error_last();

	return tz_error_set(TZ_EGIT, "%s: %s", what, e && e->message ? e->message : "libgit2 error");
}

bool tz_code_valid(const char *code)
{
	size_t n = strlen(code);

	if (n == 0 || n > 16)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = code[i];
		bool alnum = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '_' && c != '-')))
			return false;
	}
	return true;
}

void tz_oid_fmt(char out[41], const tz_oid *oid)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 20; i++) {
		out[2 * i] = hex[oid->id[i] >> 4];
		out[2 * i + 1] = hex[oid->id[i] & 15];
	}
	out[40] = '\0';
}

bool tz_oid_is_zero(const tz_oid *oid)
{
	static const tz_oid zero;

	return memcmp(oid, &zero, sizeof(zero)) == 0;
}

int tz_oid__parse(tz_oid *out, const char *hex)
{
	memset(out, 0, sizeof(*out));
	if (strlen(hex) != 40)
		return tz_error_set(TZ_ECORRUPT, "'%s' is not an object id", hex);
	for (int i = 0; i < 40; i++) {
		int c = hex[i], v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return tz_error_set(TZ_ECORRUPT, "'%s' is not an object id", hex);
		out->id[i / 2] = (uint8_t)(out->id[i / 2] << 4 | v);
	}
	return TZ_OK;
}

/* ---- SQLite helpers ---- */

int tz_sql__error(tz_store *s, int rc, const char *what)
{
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return tz_error_set(TZ_EBUSY, "%s: store.db is busy (another writer holds it)", what);
	return tz_error_set(TZ_ESQL, "%s: %s", what, sqlite3_errmsg(s->db));
}

int tz_sql__exec(tz_store *s, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);

	if (rc != SQLITE_OK) {
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			tz_error_set(TZ_EBUSY, "store.db is busy (another writer holds it)");
		else
			tz_error_set(TZ_ESQL, "%s", err ? err : sqlite3_errstr(rc));
		sqlite3_free(err);
		return tz_error_code();
	}
	return TZ_OK;
}

int tz_sql__prepare(tz_store *s, sqlite3_stmt **out, const char *sql)
{
	int rc = sqlite3_prepare_v2(s->db, sql, -1, out, NULL);

	if (rc != SQLITE_OK) {
		*out = NULL;
		return tz_sql__error(s, rc, "cannot prepare statement");
	}
	return TZ_OK;
}

int tz_sql__bind_value(sqlite3_stmt *st, int idx, const tz_value *v)
{
	switch (v->type) {
	case TZ_VINT:  return sqlite3_bind_int64(st, idx, v->i);
	case TZ_VREAL: return sqlite3_bind_double(st, idx, v->r);
	case TZ_VTEXT: return sqlite3_bind_text64(st, idx, (const char *)v->p, v->n, SQLITE_STATIC, SQLITE_UTF8);
	case TZ_VBLOB: return sqlite3_bind_blob64(st, idx, v->p, v->n, SQLITE_STATIC);
	case TZ_VNULL: return sqlite3_bind_null(st, idx);
	}
	return SQLITE_MISUSE;
}

void tz_store_sql_ident(tz_buf *b, const char *name) { tz_sql__put_ident(b, name); }
int tz_store_sql_bind(sqlite3_stmt *st, int idx, const tz_value *v) { return tz_sql__bind_value(st, idx, v); }
void tz_store_sql_column(sqlite3_stmt *st, int idx, tz_value *v) { tz_sql__column_value(st, idx, v); }

void tz_sql__column_value(sqlite3_stmt *st, int idx, tz_value *v)
{
	memset(v, 0, sizeof(*v));
	v->type = (tz_vtype)sqlite3_column_type(st, idx);
	switch (v->type) {
	case TZ_VINT:
		v->i = sqlite3_column_int64(st, idx);
		break;
	case TZ_VREAL:
		v->r = sqlite3_column_double(st, idx);
		break;
	case TZ_VTEXT:
		v->p = sqlite3_column_text(st, idx);
		v->n = (size_t)sqlite3_column_bytes(st, idx);
		break;
	case TZ_VBLOB:
		v->p = sqlite3_column_blob(st, idx);
		v->n = (size_t)sqlite3_column_bytes(st, idx);
		break;
	case TZ_VNULL:
		break;
	}
}

int tz_meta__get_text(tz_store *s, const char *key, char *out, size_t cap)
{
	sqlite3_stmt *st = NULL;
	int rc;

	out[0] = '\0';
	if ((rc = tz_sql__prepare(s, &st, "SELECT v FROM tz_meta WHERE k = ?1")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(out, cap, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
		rc = TZ_OK;
	} else if (rc == SQLITE_DONE) {
		rc = tz_error_set(TZ_ENOTFOUND, "store.db has no '%s' in tz_meta", key);
	} else {
		rc = tz_sql__error(s, rc, "cannot read tz_meta");
	}
	sqlite3_finalize(st);
	return rc;
}

int tz_meta__get_int(tz_store *s, const char *key, int64_t *out)
{
	char buf[32];
	char *end;
	int rc;

	*out = 0;
	if ((rc = tz_meta__get_text(s, key, buf, sizeof(buf))) < 0)
		return rc;
	errno = 0;
	*out = strtoll(buf, &end, 10);
	if (errno != 0 || *end != '\0' || end == buf)
		return tz_error_set(TZ_ECORRUPT, "store.db: tz_meta '%s' is not an integer", key);
	return TZ_OK;
}

int tz_meta__set_text(tz_store *s, const char *key, const char *value)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = tz_sql__prepare(s, &st, "INSERT OR REPLACE INTO tz_meta(k, v) VALUES (?1, ?2)")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_DONE ? TZ_OK : tz_sql__error(s, rc, "cannot write tz_meta");
	sqlite3_finalize(st);
	return rc;
}

int tz_meta__set_int(tz_store *s, const char *key, int64_t value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", (long long)value);
	return tz_meta__set_text(s, key, buf);
}

int tz_head__get(tz_store *s, bool *has, tz_oid *out)
{
	char hex[64];
	int rc;

	*has = false;
	memset(out, 0, sizeof(*out));
	if ((rc = tz_meta__get_text(s, "head", hex, sizeof(hex))) < 0)
		return rc;
	if (hex[0] == '\0')
		return TZ_OK;
	if ((rc = tz_oid__parse(out, hex)) < 0)
		return tz_error_wrap(rc, "store.db head");
	*has = true;
	return TZ_OK;
}

void tz_progress__report(tz_store *s, const char *what, uint64_t done, uint64_t total)
{
	if (s->progress)
		s->progress(what, done, total, s->progress_payload);
}

void tz_store_set_progress(tz_store *s, tz_progress_cb cb, void *payload)
{
	s->progress = cb;
	s->progress_payload = payload;
}

const char *tz_store_code(const tz_store *s) { return s->code; }
const char *tz_store_dir(const tz_store *s) { return s->dir; }
const tz_keypair *tz_store_keypair(const tz_store *s) { return &s->kp; }
struct sqlite3 *tz_store_db(tz_store *s) { return s->db; }

/* ---- paths and files ---- */

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = tz_malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static int write_file_durable(const char *path, const char *text, mode_t mode)
{
	size_t len = strlen(text);
	int fd;

	if (tz_faultsim(TZ_FAULT_WRITE))
		return tz_error_set(TZ_EIO, "cannot write '%s': injected fault", path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return tz_error_set(TZ_EIO, "cannot create '%s': %s", path, strerror(errno));
	if (write(fd, text, len) != (ssize_t)len || tz_faultsim(TZ_FAULT_FSYNC) || fsync(fd) != 0) {
		int e = errno;
		close(fd);
		return tz_error_set(TZ_EIO, "cannot write '%s': %s", path, strerror(e ? e : EIO));
	}
	close(fd);
	return TZ_OK;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove what init created: the whole directory if init made it, else
 * its contents (the directory was empty before). */
void tz_store__undo_init(const char *dir, bool made_dir)
{
	const char *names[] = { "store.db", "store.db-wal", "store.db-shm", "config", "keys", "history", "store.lock" };

	if (made_dir) {
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		return;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *p = path_join(dir, names[i]);
		if (p)
			nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		tz_free(p);
	}
}

static bool dir_is_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool empty = true;

	if (d == NULL)
		return false;
	while (empty && (de = readdir(d)) != NULL)
		empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
	closedir(d);
	return empty;
}

static int dir_prepare(const char *dir, bool *made)
{
	struct stat sb;

	*made = false;
	if (mkdir(dir, 0755) == 0) {
		*made = true;
		return TZ_OK;
	}
	if (errno != EEXIST)
		return tz_error_set(TZ_EIO, "cannot create '%s': %s", dir, strerror(errno));
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return tz_error_set(TZ_EEXISTS, "'%s' exists and is not a directory", dir);
	if (!dir_is_empty(dir))
		return tz_error_set(TZ_EEXISTS, "'%s' exists and is not empty", dir);
	return TZ_OK;
}

static int db_open(sqlite3 **out, const char *path, int flags)
{
	int rc = sqlite3_open_v2(path, out, flags | SQLITE_OPEN_NOMUTEX, NULL);

	if (rc != SQLITE_OK) {
		tz_error_set(TZ_ESQL, "cannot open '%s': %s", path,
			     *out ? sqlite3_errmsg(*out) : sqlite3_errstr(rc));
		sqlite3_close(*out);
		*out = NULL;
		return TZ_ESQL;
	}
	/* The application writes concurrently: wait for its short
	 * transactions rather than fail (10 s covers a 10x peak batch). */
	sqlite3_busy_timeout(*out, 10000);
	sqlite3_extended_result_codes(*out, 0);
	return TZ_OK;
}

/* Create store.db with the tz_* tables and the first tz_meta rows. */
static int init_db(tz_store *s, const char *path)
{
	tz_oid inst;
	char inst_hex[41];
	char sql[1024];
	int rc;

	if ((rc = db_open(&s->db, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) < 0)
		return rc;
	/* 16 random bytes, printed with the oid formatter (hex) */
	memset(&inst, 0, sizeof(inst));
	tz_random_bytes(inst.id, 16);
	tz_oid_fmt(inst_hex, &inst);
	inst_hex[32] = '\0';
	snprintf(sql, sizeof(sql),
		 "INSERT INTO tz_meta(k, v) VALUES ('format', %d), ('code', '%s'),"
		 " ('instance', '%s'), ('head', ''), ('hlc', 0), ('schema_version', 0),"
		 " ('role', '%s'), ('seq_out', 0), ('base', ''), ('bound', 0);",
		 TZ_STORE_FORMAT, s->code, inst_hex, strcmp(s->code, "HQ") == 0 ? "hq" : "branch");
	if ((rc = tz_sql__exec(s, "PRAGMA journal_mode=WAL")) < 0 ||
	    (rc = tz_sql__exec(s, "BEGIN IMMEDIATE")) < 0)
		return tz_error_wrap(rc, "cannot initialise '%s'", path);
	if ((rc = tz_sql__exec(s, tz_schema_sql)) < 0 || (rc = tz_sql__exec(s, sql)) < 0 ||
	    (rc = tz_registry__add(s, s->code, strcmp(s->code, "HQ") == 0 ? "hq" : "branch", s->kp.pk, NULL)) < 0 ||
	    (rc = tz_sql__exec(s, "COMMIT")) < 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return tz_error_wrap(rc, "cannot initialise '%s'", path);
	}
	return TZ_OK;
}

/* The objects of a staging a thread is writing as a pack (s->pending,
 * tz_pack__start), served to libgit2 meanwhile: an import asks libgit2
 * about the ancestry of the commits it has just rebuilt.  Last in the
 * object database's order, so it costs nothing to any other read. */
typedef struct {
	git_odb_backend parent;
	const tz_store *s;
} pending_backend;

static const struct tz_obj *pending_find(git_odb_backend *b, const git_oid *oid)
{
	const tz_store *s = ((pending_backend *)b)->s;
	const struct tz_obj *o = s->pending ? tz_staging__find(s->pending, (const tz_oid *)oid->id) : NULL;

	return o && o->data ? o : NULL;
}

static int pending_read(void **data, size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *oid)
{
	const struct tz_obj *o = pending_find(b, oid);

	if (o == NULL)
		return GIT_ENOTFOUND;
	if ((*data = git_odb_backend_data_alloc(b, o->len ? o->len : 1)) == NULL)
		return -1;
	memcpy(*data, o->data, o->len);
	*len = o->len;
	*type = o->type;
	return 0;
}

static int pending_read_header(size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *oid)
{
	const struct tz_obj *o = pending_find(b, oid);

	if (o == NULL)
		return GIT_ENOTFOUND;
	*len = o->len;
	*type = o->type;
	return 0;
}

static int pending_exists(git_odb_backend *b, const git_oid *oid)
{
	return pending_find(b, oid) != NULL;
}

/* gc lists every object (git_odb_foreach calls each backend's foreach) */
static int pending_foreach(git_odb_backend *b, git_odb_foreach_cb cb, void *payload)
{
	const tz_staging *st = ((pending_backend *)b)->s->pending;
	int rc;

	for (size_t i = 0; st != NULL && i < st->n; i++)
		if (st->objs[i].data != NULL && (rc = cb((const git_oid *)st->objs[i].oid.id, payload)) != 0)
			return rc;
	return 0;
}

/* Short ids are what people type, never an import's objects. */
static int pending_read_prefix(git_oid *out, void **data, size_t *len, git_object_t *type, git_odb_backend *b,
			       const git_oid *prefix, size_t n)
{
	(void)out, (void)data, (void)len, (void)type, (void)b, (void)prefix, (void)n;
	return GIT_ENOTFOUND;
}

static int pending_exists_prefix(git_oid *out, git_odb_backend *b, const git_oid *prefix, size_t n)
{
	(void)out, (void)b, (void)prefix, (void)n;
	return GIT_ENOTFOUND;
}

static void pending_free(git_odb_backend *b)
{
	tz_free(b);
}

/* The history's object database, as libgit2's default one (packs, then
 * loose objects; a store has no alternates), then the pending objects.
 * Its pack backend is kept: an object a commit or an import makes is
 * looked for in the packs only (tz_staging__add), which saves a failed
 * access(2) on a loose path per new object, 8,000 in HQ's agency-day
 * import (~3%).  A loose object (a resolution's commit) found there again
 * is written to a pack too: git allows an object in both. */
static int open_odb(tz_store *s)
{
	pending_backend *pb;
	char dir[PATH_MAX];
	git_odb_backend *b = NULL;

	if (snprintf(dir, sizeof(dir), "%sobjects", git_repository_path(s->repo)) >= (int)sizeof(dir)) {
		git_error_set_str(GIT_ERROR_OS, "path too long");
		return -1;
	}
	if (git_odb_new(&s->odb) < 0 || git_odb_backend_pack(&b, dir) < 0)
		return -1;
	if (git_odb_add_backend(s->odb, b, 2) < 0) {
		b->free(b);
		return -1;
	}
	s->packs = b;
	if (git_odb_backend_loose(&b, dir, -1, 1, 0, 0) < 0)
		return -1;
	if (git_odb_add_backend(s->odb, b, 1) < 0) {
		b->free(b);
		return -1;
	}
	if ((pb = tz_calloc(1, sizeof(*pb))) == NULL) {
		git_error_set_oom();
		return -1;
	}
	git_odb_init_backend(&pb->parent, GIT_ODB_BACKEND_VERSION);
	pb->s = s;
	pb->parent.read = pending_read;
	pb->parent.read_header = pending_read_header;
	pb->parent.exists = pending_exists;
	pb->parent.read_prefix = pending_read_prefix;
	pb->parent.exists_prefix = pending_exists_prefix;
	pb->parent.foreach = pending_foreach;
	pb->parent.free = pending_free;
	if (git_odb_add_backend(s->odb, &pb->parent, 0) < 0) {
		tz_free(pb);
		return -1;
	}
	return git_repository_set_odb(s->repo, s->odb);
}

static int init_history(const char *path)
{
	git_repository *repo = NULL;
	git_repository_init_options opts;

	git_repository_init_options_init(&opts, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
	opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
		     GIT_REPOSITORY_INIT_NO_REINIT;
	opts.initial_head = "main";
	opts.description = "Tazamun history: one commit per sealed change log\n";
	git_config *cfg = NULL;
	int rc = TZ_OK;

	if (git_repository_init_ext(&repo, path, &opts) < 0)
		return tz_git__error("cannot create the history");
	/* A bare repository keeps no reflog by default; ours does, so that a
	 * checkout that moves the head back leaves the old head findable. */
	if (git_repository_config(&cfg, repo) < 0 ||
	    git_config_set_string(cfg, "core.logAllRefUpdates", "always") < 0)
		rc = tz_git__error("cannot configure the history");
	git_config_free(cfg);
	git_repository_free(repo);
	return rc;
}

int tz_store_init(const char *dir, const char *code)
{
	bool made;

	return tz_store__init(dir, code, &made);
}

int tz_store__init(const char *dir, const char *code, bool *made_out)
{
	tz_store s;
	char *p_db = NULL, *p_keys = NULL, *p_hist = NULL, *p_conf = NULL;
	char conf[256];
	bool made = false;
	int rc;

	memset(&s, 0, sizeof(s));
	if (!tz_code_valid(code))
		return tz_error_set(TZ_EINVAL, "'%s' is not a replica code ([A-Z0-9][A-Z0-9_-]{0,15})", code);
	if ((rc = git_setup()) < 0 || (rc = dir_prepare(dir, &made)) < 0)
		return rc;
	snprintf(s.code, sizeof(s.code), "%s", code);
	if ((p_db = path_join(dir, "store.db")) == NULL || (p_keys = path_join(dir, "keys")) == NULL ||
	    (p_hist = path_join(dir, "history")) == NULL || (p_conf = path_join(dir, "config")) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	if (mkdir(p_keys, 0700) != 0) {
		rc = tz_error_set(TZ_EIO, "cannot create '%s': %s", p_keys, strerror(errno));
		goto done;
	}
	snprintf(conf, sizeof(conf), "# Tazamun store\ncode = %s\nrole = %s\n", code,
		 strcmp(code, "HQ") == 0 ? "hq" : "branch");
	if ((rc = tz_keypair_generate(&s.kp)) < 0 ||
	    (rc = tz_keypair_save(&s.kp, p_keys, "replica", code)) < 0 ||
	    (rc = init_history(p_hist)) < 0 || (rc = init_db(&s, p_db)) < 0 ||
	    (rc = write_file_durable(p_conf, conf, 0644)) < 0)
		goto done;
	rc = TZ_OK;
done:
	tz_keypair_wipe(&s.kp);
	sqlite3_close(s.db);
	if (rc < 0)
		tz_store__undo_init(dir, made);
	*made_out = made;
	tz_free(p_db);
	tz_free(p_keys);
	tz_free(p_hist);
	tz_free(p_conf);
	return rc;
}

/* Read "code = X" from the config file. */
static int read_config(tz_store *s, const char *path)
{
	char buf[TZ_CONFIG_MAX];
	char *line, *save = NULL;
	size_t n;
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return tz_error_set(errno == ENOENT ? TZ_ENOTFOUND : TZ_EIO,
				    "not a Tazamun store ('%s': %s)", path, strerror(errno));
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char key[32], val[64];
		if (line[0] == '#' || sscanf(line, " %31[a-z_] = %63s", key, val) != 2)
			continue;
		if (strcmp(key, "code") == 0 && tz_code_valid(val))
			memcpy(s->code, val, strlen(val) + 1);   /* valid: at most 16 bytes */
	}
	if (!tz_code_valid(s->code))
		return tz_error_set(TZ_ECORRUPT, "'%s': config has no valid 'code' line", path);
	return TZ_OK;
}

static bool lock_try(tz_store *s);

/* HQ: move each refs/heads/branches/<code> to the line store.db recorded. */
static int reconcile_lines(tz_store *s)
{
	sqlite3_stmt *q = NULL;
	int rc, step;

	if ((rc = tz_sql__prepare(s, &q, "SELECT code, line FROM tz_lines")) < 0)
		return rc;
	while (rc == TZ_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
		char ref[64];
		git_reference *r = NULL;
		tz_oid line;
		snprintf(ref, sizeof(ref), "refs/heads/branches/%s", (const char *)sqlite3_column_text(q, 0));
		if (tz_oid__parse(&line, (const char *)sqlite3_column_text(q, 1)) < 0)
			continue;
		if (git_reference_lookup(&r, s->repo, ref) == 0 && git_reference_target(r) &&
		    memcmp(git_reference_target(r)->id, line.id, 20) == 0) {
			git_reference_free(r);
			continue;
		}
		git_reference_free(r);
		if (git_odb_exists(s->odb, (const git_oid *)line.id))
			rc = tz_ref__set_name(s, ref, &line, "reconcile: store.db line");
	}
	sqlite3_finalize(q);
	return rc;
}

/* Move refs/heads/main to the head store.db recorded (a crash between the
 * SQLite commit and the ref update leaves the ref behind).  Only when no
 * writer is at work: a writer moves the ref itself, and the head must be
 * read under the lock so that a finishing writer is not undone. */
static int reconcile(tz_store *s)
{
	git_reference *ref = NULL;
	bool has;
	tz_oid head;
	int rc;

	if (!lock_try(s))
		return TZ_OK;
	if ((rc = tz_head__get(s, &has, &head)) < 0 || !has)
		goto done;
	if (git_reference_lookup(&ref, s->repo, "refs/heads/main") == 0 && git_reference_target(ref) &&
	    memcmp(git_reference_target(ref)->id, head.id, 20) == 0)
		goto done;
	if (!git_odb_exists(s->odb, (const git_oid *)head.id)) {
		char hex[41];
		tz_oid_fmt(hex, &head);
		rc = tz_error_set(TZ_ECORRUPT, "store.db's head %s is missing from the history", hex);
		goto done;
	}
	rc = tz_ref__set(s, &head, "reconcile: store.db head");
done:
	if (rc == TZ_OK)
		rc = reconcile_lines(s);
	git_reference_free(ref);
	tz_store__unlock(s);
	return rc;
}

int tz_store_open(tz_store **out, const char *dir)
{
	tz_store *s = NULL;
	char *p = NULL;
	int64_t format;
	int rc;

	*out = NULL;
	if ((rc = git_setup()) < 0)
		return rc;
	if ((s = tz_calloc(1, sizeof(*s))) == NULL || (s->dir = tz_strdup(dir)) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	s->lock_fd = -1;
	if ((p = path_join(dir, "config")) == NULL || (rc = read_config(s, p)) < 0)
		goto fail;
	tz_free(p);
	if ((p = path_join(dir, "store.db")) == NULL || (rc = db_open(&s->db, p, SQLITE_OPEN_READWRITE)) < 0)
		goto fail;
	/* Materialisation writes rows in any order; references are checked by
	 * the engine, never by SQLite on this connection (DESIGN §11). */
	/* secure_delete=FAST: a spent enrolment secret does not linger in
	 * free space, at no extra I/O */
	if ((rc = tz_sql__exec(s, "PRAGMA foreign_keys=OFF")) < 0 ||
	    (rc = tz_sql__exec(s, "PRAGMA secure_delete=FAST")) < 0 ||
	    (rc = tz_meta__get_int(s, "format", &format)) < 0)
		goto fail;
	if (format != TZ_STORE_FORMAT) {
		rc = tz_error_set(TZ_EINVAL, "store format %lld is not supported (this syncctl reads format %d)",
				  (long long)format, TZ_STORE_FORMAT);
		goto fail;
	}
	tz_free(p);
	if ((p = path_join(dir, "history")) == NULL)
		goto fail;
	if (git_repository_open_bare(&s->repo, p) < 0 || open_odb(s) < 0) {
		rc = tz_git__error("cannot open the history");
		goto fail;
	}
	tz_free(p);
	if ((p = path_join(dir, "keys")) == NULL || (rc = tz_keypair_load(&s->kp, p, "replica")) < 0 ||
	    (rc = reconcile(s)) < 0)
		goto fail;
	*out = s;
	s = NULL;
	rc = TZ_OK;
	goto done;
fail:
	if (rc == TZ_OK)
		rc = TZ_ENOMEM;
	tz_error_wrap(rc, "cannot open store '%s'", dir);
done:
	tz_free(p);
	tz_store_close(s);
	return rc;
}

/* How long a writer waits for another to finish: a large first commit
 * takes seconds; a minute covers it on a slow rural PC. */
#define TZ_LOCK_WAIT_MS 60000

/* Take store.lock without waiting; false when another process has it. */
static bool lock_try(tz_store *s)
{
	char *p = path_join(s->dir, "store.lock");

	if (p == NULL)
		return false;
	s->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	tz_free(p);
	if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		if (s->lock_fd >= 0)
			close(s->lock_fd);
		s->lock_fd = -1;
		return false;
	}
	s->lock_depth = 1;
	return true;
}

int tz_store__lock(tz_store *s)
{
	char *p;
	int waited = 0;

	if (s->lock_depth++ > 0)
		return TZ_OK;
	if ((p = path_join(s->dir, "store.lock")) == NULL) {
		s->lock_depth--;
		return TZ_ENOMEM;
	}
	s->lock_fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	tz_free(p);
	if (s->lock_fd < 0) {
		s->lock_depth--;
		return tz_error_set(TZ_EIO, "cannot open '%s/store.lock': %s", s->dir, strerror(errno));
	}
	while (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		struct timespec ts = { 0, 50 * 1000000L };
		if (errno != EWOULDBLOCK || waited >= TZ_LOCK_WAIT_MS) {
			close(s->lock_fd);
			s->lock_fd = -1;
			s->lock_depth--;
			return tz_error_set(TZ_EBUSY, "another process is writing to the store '%s' (store.lock)", s->dir);
		}
		nanosleep(&ts, NULL);
		waited += 50;
	}
	return TZ_OK;
}

void tz_store__unlock(tz_store *s)
{
	if (s->lock_depth == 0 || --s->lock_depth > 0)
		return;
	close(s->lock_fd);   /* releases the flock */
	s->lock_fd = -1;
}

void tz_store_close(tz_store *s)
{
	if (s == NULL)
		return;
	if (s->lock_depth > 0) {
		s->lock_depth = 1;
		tz_store__unlock(s);
	}
	tz_tree__lookup_release(s);
	git_odb_free(s->odb);
	git_repository_free(s->repo);
	sqlite3_close(s->db);
	tz_keypair_wipe(&s->kp);
	tz_free(s->dir);
	tz_free(s);
}

int tz_store_public_key(tz_store *s, tz_buf *out)
{
	tz_pubkey_openssh(out, s->kp.pk);
	tz_buf_printf(out, " %s", s->code);
	return tz_buf_error(out);
}

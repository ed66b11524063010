/*
 * sqlite_sync.c - sqlite-sync (the `cloudsync` SQLite extension of
 * sqlite.ai, a CRDT per column) on the "agency day" workload (DESIGN.md
 * §10, bench/agency_day.h), the peer DESIGN §10 quotes at 7.1× write cost,
 * 109 B per changed row and 17× the session apply.
 *
 * The extension is a shared library that bench/fetch-sqlite-sync.sh takes
 * from the npm package at bench time (never committed); --ext names it.
 * Without one (--unavailable WHY: why the fetch failed) every figure is
 * reported "not available: WHY" and the program exits 0.
 *
 *  write    the offline period timed on a table where cloudsync_init ran,
 *           against plain SQLite, interleaved repetition by repetition;
 *  bytes    the branch's changes since the base, cloudsync_payload_encode
 *           over cloudsync_changes, per changed row;
 *  merge    HQ applies that payload (cloudsync_payload_apply), timed in
 *           this process like the session extension's apply in merge.c;
 *           HQ's concurrent updates are in its replica first;
 *  converged  HQ's changes since provisioning applied at the branch, the
 *           two tables compared (rows and a hash of every value);
 *  contested  the cells both sides changed to different values, and whose
 *           value won (its rule: per column, the higher edit count, then
 *           the greater value);
 *  memory   a child process applies a payload of --changes distinct
 *           changed rows (default: every base row); its peak RSS.
 *
 * Facts of sqlite-sync the setup follows: cloudsync_init on a table that
 * has rows records them all as local changes of that site, and a copied
 * database file duplicates the site id, so HQ's replica is provisioned by
 * the branch's full payload; NOT NULL columns need a DEFAULT (the table is
 * AD_CREATE_SQL with DEFAULT '' added); every connection that writes loads
 * the extension and calls cloudsync_terminate() before closing.
 */
#include "bench/agency_day.h"
#include "bench/bench.h"

#define MAX_REPS 9
#define ERR_CAP 512

typedef struct bench {
	ad_options opt;
	ad_workload *w;             /* the period and HQ's updates */
	ad_workload *w0;            /* base rows only: the memory case */
	int quick, reps;
	uint32_t mem_changes;
	const char *ext;            /* --ext: cloudsync.so */
	const char *why;            /* --unavailable: why there is none */
	const char *results_dir, *summary;
	char dir[PATH_MAX];
	int own_dir;
	char ddl[2048];             /* AD_CREATE_SQL with DEFAULTs */
	char err[ERR_CAP];          /* the first failure */
	char version[64];
	double plain[MAX_REPS], sync[MAX_REPS];
	int nw;
	double apply[MAX_REPS];
	int na;
	double init_secs;           /* cloudsync_init on the base rows */
	long long changed;          /* rows the period changed */
	size_t payload, payload_z19, full_payload;
	int converged;              /* -1 not checked */
	long long contested, won_branch, won_hq;
	long long upd_del, upd_del_kept;  /* deleted at the branch, updated at HQ */
	double mem_secs;
	long mem_rss;
	uint32_t mem_changed;
	size_t mem_payload;
} bench;

/* ---- connections ---- */

/* Open path (WAL, synchronous=NORMAL); with the extension loaded when
 * `ext` is set (extension loading enabled on this connection only, for
 * the C API only).  NULL and b->err set on failure. */
static sqlite3 *db_open(bench *b, const char *path, const char *ext)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    ad_configure(db) != SQLITE_OK) {
		snprintf(b->err, ERR_CAP, "cannot open '%.300s': %s", path,
		    db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	if (ext == NULL)
		return db;
	if (sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1,
	    NULL) != SQLITE_OK ||
	    sqlite3_load_extension(db, ext, NULL, &msg) != SQLITE_OK) {
		snprintf(b->err, ERR_CAP, "cannot load '%.200s': %.250s", ext,
		    msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

/* Close; cloudsync_terminate() first when the extension is loaded. */
static void db_close(sqlite3 *db, int loaded)
{
	if (db != NULL && loaded)
		sqlite3_exec(db, "SELECT cloudsync_terminate()", NULL, NULL,
		    NULL);
	sqlite3_close(db);
}

static int exec(bench *b, sqlite3 *db, const char *sql)
{
	return b->err[0] ? -1 : bench_db_exec(b->err, ERR_CAP, db, sql);
}

/* A fresh database at path with the base rows; with sync, the table
 * sqlite-sync accepts and cloudsync_init (timed into *init_secs). */
static sqlite3 *make_db(bench *b, const char *path, int sync,
    double *init_secs)
{
	sqlite3 *db;
	double t0;

	bench_rm_db(path);
	if ((db = db_open(b, path, sync ? b->ext : NULL)) == NULL)
		return NULL;
	if (exec(b, db, sync ? b->ddl : AD_CREATE_SQL) < 0)
		goto fail;
	if (ad_load_base(db, b->w) != SQLITE_OK) {
		snprintf(b->err, ERR_CAP, "sqlite: base rows: %s",
		    sqlite3_errmsg(db));
		goto fail;
	}
	t0 = bench_now();
	if (sync && exec(b, db, "SELECT cloudsync_init('" AD_TABLE "')") < 0)
		goto fail;
	if (init_secs != NULL)
		*init_secs = bench_now() - t0;
	return db;
fail:
	db_close(db, sync);
	return NULL;
}

/* The changes of db since version `since` as one payload blob (malloc'd
 * into *out, *n bytes); -1 on failure. */
static int encode(bench *b, sqlite3 *db, long long since, void **out,
    size_t *n)
{
	sqlite3_stmt *st = NULL;
	int rc = -1;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db, "SELECT cloudsync_payload_encode(tbl, pk, "
	    "col_name, col_value, col_version, db_version, site_id, cl, seq) "
	    "FROM cloudsync_changes WHERE db_version > ?", -1, &st, NULL) !=
	    SQLITE_OK || sqlite3_bind_int64(st, 1, since) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		snprintf(b->err, ERR_CAP, "cloudsync_payload_encode: %s",
		    sqlite3_errmsg(db));
		goto out;
	}
	*n = (size_t)sqlite3_column_bytes(st, 0);
	if ((*out = malloc(*n ? *n : 1)) == NULL) {
		snprintf(b->err, ERR_CAP, "out of memory");
		goto out;
	}
	if (*n)
		memcpy(*out, sqlite3_column_blob(st, 0), *n);
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* cloudsync_payload_apply of a payload; -1 on failure. */
static int apply(bench *b, sqlite3 *db, const void *p, size_t n)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_prepare_v2(db, "SELECT cloudsync_payload_apply(?)", -1,
	    &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 1, p, (int)n, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		snprintf(b->err, ERR_CAP, "cloudsync_payload_apply: %s",
		    sqlite3_errmsg(db));
		rc = -1;
	}
	sqlite3_finalize(st);
	return rc;
}

static long long db_version(bench *b, sqlite3 *db)
{
	return b->err[0] ? -1 : bench_db_int(b->err, ERR_CAP, db,
	    "SELECT cloudsync_db_version()");
}

/* ---- write cost ---- */

/* One repetition of one contender: the base rows (with cloudsync_init for
 * sqlite-sync), not timed; then the period on a new connection, timed. */
static void write_rep(bench *b, int sync)
{
	char path[PATH_MAX];
	sqlite3 *db;
	double t0, t, init;

	if (bench_pathf(path, sizeof(path), "%s/write-%d.db", b->dir, sync) < 0 ||
	    (db = make_db(b, path, sync, &init)) == NULL)
		return;
	if (sync)
		b->init_secs = init;
	db_close(db, sync);
	if ((db = db_open(b, path, sync ? b->ext : NULL)) == NULL)
		return;
	sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	t0 = bench_now();
	if (ad_run_period(db, b->w) != SQLITE_OK)
		snprintf(b->err, ERR_CAP, "sqlite: the period: %s",
		    sqlite3_errmsg(db));
	t = bench_now() - t0;
	db_close(db, sync);
	bench_rm_db(path);
	if (b->err[0] == '\0')
		(sync ? b->sync : b->plain)[b->nw] = t;
}

static void run_write(bench *b)
{
	int rep;

	for (rep = 0; rep < b->reps && b->err[0] == '\0'; rep++) {
		fprintf(stderr, "sqlite-sync: write rep %d/%d\n", rep + 1, b->reps);
		write_rep(b, rep % 2);      /* alternate which runs first */
		write_rep(b, !(rep % 2));
		if (b->err[0] == '\0')
			b->nw++;
	}
}

/* ---- merge ---- */

typedef struct paths {
	char base[PATH_MAX], br[PATH_MAX], br0[PATH_MAX], br_final[PATH_MAX];
	char hq0[PATH_MAX], hq_pre[PATH_MAX], run[PATH_MAX];
	char many_br[PATH_MAX], many_hq[PATH_MAX], many_payload[PATH_MAX];
} paths;

static int make_paths(bench *b, paths *p)
{
	return bench_pathf(p->base, PATH_MAX, "%s/base.db", b->dir) < 0 ||
	    bench_pathf(p->br, PATH_MAX, "%s/branch.db", b->dir) < 0 ||
	    bench_pathf(p->br0, PATH_MAX, "%s/branch0.db", b->dir) < 0 ||
	    bench_pathf(p->br_final, PATH_MAX, "%s/branch-final.db", b->dir) < 0 ||
	    bench_pathf(p->hq0, PATH_MAX, "%s/hq0.db", b->dir) < 0 ||
	    bench_pathf(p->hq_pre, PATH_MAX, "%s/hq-pre.db", b->dir) < 0 ||
	    bench_pathf(p->run, PATH_MAX, "%s/hq-run.db", b->dir) < 0 ||
	    bench_pathf(p->many_br, PATH_MAX, "%s/many-br.db", b->dir) < 0 ||
	    bench_pathf(p->many_hq, PATH_MAX, "%s/many-hq.db", b->dir) < 0 ||
	    bench_pathf(p->many_payload, PATH_MAX, "%s/many.payload",
	    b->dir) < 0 ? -1 : 0;
}

/* Copy a database file through VACUUM INTO (a copy of the same replica:
 * used only where the original is not used again alongside it). */
static int copy_db(bench *b, const char *src, const char *dst)
{
	sqlite3 *db = db_open(b, src, NULL);
	int rc;

	if (db == NULL)
		return -1;
	rc = b->err[0] ? -1 : bench_db_snapshot(b->err, ERR_CAP, db, dst);
	sqlite3_close(db);
	return rc;
}

/* The branch with the base rows (cloudsync_init: they are its changes),
 * HQ provisioned by its full payload; then the branch's period (its
 * payload since the base: *pl) and HQ's concurrent updates.  Snapshots:
 * base, branch0 and hq0 (before the period), branch-final, hq-pre. */
static int merge_setup(bench *b, paths *p, long long *v_base,
    long long *v_hq0, void **pl, size_t *npl)
{
	sqlite3 *br = NULL, *hq = NULL;
	void *full = NULL;
	int rc = -1;

	fprintf(stderr, "sqlite-sync: branch, HQ provisioned by a full payload\n");
	if ((br = make_db(b, p->br, 1, NULL)) == NULL ||
	    (*v_base = db_version(b, br)) < 0 ||
	    bench_db_snapshot(b->err, ERR_CAP, br, p->br0) < 0 ||
	    encode(b, br, -1, &full, &b->full_payload) < 0)
		goto out;
	bench_rm_db(p->hq0);
	if ((hq = db_open(b, p->hq0, b->ext)) == NULL ||
	    exec(b, hq, b->ddl) < 0 ||
	    exec(b, hq, "SELECT cloudsync_init('" AD_TABLE "')") < 0 ||
	    apply(b, hq, full, b->full_payload) < 0 ||
	    (*v_hq0 = db_version(b, hq)) < 0)
		goto out;
	db_close(hq, 1);
	hq = NULL;
	fprintf(stderr, "sqlite-sync: the period at the branch, HQ's updates\n");
	if (ad_run_period(br, b->w) != SQLITE_OK ||
	    encode(b, br, *v_base, pl, npl) < 0 ||
	    bench_db_snapshot(b->err, ERR_CAP, br, p->br_final) < 0)
		goto out;
	if (copy_db(b, p->br0, p->base) < 0 ||
	    (b->changed = bench_changed_rows(b->err, ERR_CAP, br, p->base,
	    AD_TABLE, "id")) < 0)
		goto out;
	if (copy_db(b, p->hq0, p->hq_pre) < 0 ||
	    (hq = db_open(b, p->hq_pre, b->ext)) == NULL)
		goto out;
	if (ad_run_hq(hq, b->w) != SQLITE_OK)
		snprintf(b->err, ERR_CAP, "sqlite: HQ's updates: %s",
		    sqlite3_errmsg(hq));
	else
		rc = 0;
out:
	if (rc < 0 && b->err[0] == '\0')
		snprintf(b->err, ERR_CAP, "sqlite: %s", br ? sqlite3_errmsg(br) :
		    "setup failed");
	free(full);
	db_close(hq, 1);
	db_close(br, 1);
	return rc;
}

/* One timed apply of the period's payload on a fresh copy of HQ. */
static void merge_rep(bench *b, paths *p, const void *pl, size_t npl)
{
	sqlite3 *db;
	double t0, t;

	if (copy_db(b, p->hq_pre, p->run) < 0 ||
	    (db = db_open(b, p->run, b->ext)) == NULL)
		return;
	/* warm the connection as merge.c does for the session's apply */
	sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
	t0 = bench_now();
	if (apply(b, db, pl, npl) == 0) {
		t = bench_now() - t0;
		b->apply[b->na++] = t;
	}
	db_close(db, 1);
}

/* Rows and a hash of every value of the table (FNV-1a, key order). */
static int digest(bench *b, const char *path, uint64_t *rows, uint64_t *hash)
{
	sqlite3 *db = db_open(b, path, NULL);
	sqlite3_stmt *st = NULL;
	int c, rc;

	*rows = 0;
	*hash = 0xcbf29ce484222325ULL;
	if (db == NULL)
		return -1;
	if (sqlite3_prepare_v2(db, "SELECT * FROM " AD_TABLE " ORDER BY id",
	    -1, &st, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		++*rows;
		for (c = 0; c < AD_NCOLS; c++) {
			const unsigned char *v = sqlite3_column_text(st, c);
			int n = sqlite3_column_bytes(st, c), i;

			*hash = (*hash ^ (v ? 0x1u : 0xffu)) * 0x100000001b3ULL;
			for (i = 0; v != NULL && i < n; i++)
				*hash = (*hash ^ v[i]) * 0x100000001b3ULL;
		}
	}
	if (rc != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 0;
fail:
	snprintf(b->err, ERR_CAP, "reading '%.300s': %s", path, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return -1;
}

/* HQ's changes since provisioning applied at the branch; both tables
 * compared. */
static void converge(bench *b, paths *p, long long v_hq0)
{
	sqlite3 *db;
	void *q = NULL;
	size_t nq = 0;
	uint64_t r1, h1, r2, h2;

	if ((db = db_open(b, p->run, b->ext)) == NULL)
		return;
	encode(b, db, v_hq0, &q, &nq);
	db_close(db, 1);
	if (b->err[0] || (db = db_open(b, p->br, b->ext)) == NULL) {
		free(q);
		return;
	}
	apply(b, db, q, nq);
	db_close(db, 1);
	free(q);
	if (b->err[0] == '\0' && digest(b, p->run, &r1, &h1) == 0 &&
	    digest(b, p->br, &r2, &h2) == 0)
		b->converged = r1 == r2 && h1 == h2;
}

/* Rows of the base the branch deleted and HQ updated; `more` narrows. */
#define UPD_DEL_SQL(more) "SELECT count(*) FROM (SELECT * FROM hq." AD_TABLE \
	" EXCEPT SELECT * FROM z." AD_TABLE ") WHERE id IN (SELECT id FROM z." \
	AD_TABLE ") AND id NOT IN (SELECT id FROM br." AD_TABLE ")" more

/* The cells both sides changed to different values, and whose value HQ's
 * merged table holds; the rows one side deleted and the other updated. */
static void contested(bench *b, paths *p)
{
	sqlite3 *db = db_open(b, p->run, NULL);
	char *sql;
	int c;

	if (db == NULL)
		return;
	sql = sqlite3_mprintf("ATTACH %Q AS z; ATTACH %Q AS br; ATTACH %Q AS hq",
	    p->base, p->br_final, p->hq_pre);
	if (sql == NULL || exec(b, db, sql) < 0)
		goto out;
	for (c = 1; c < AD_NCOLS; c++) {
		sqlite3_stmt *st = NULL;
		char *q = sqlite3_mprintf("SELECT count(*), total(m.%s IS b.%s), "
		    "total(m.%s IS h.%s) FROM z." AD_TABLE " x JOIN br." AD_TABLE
		    " b USING (id) JOIN hq." AD_TABLE " h USING (id) JOIN main."
		    AD_TABLE " m USING (id) WHERE b.%s IS NOT x.%s AND h.%s IS "
		    "NOT x.%s AND b.%s IS NOT h.%s", ad_column[c], ad_column[c],
		    ad_column[c], ad_column[c], ad_column[c], ad_column[c],
		    ad_column[c], ad_column[c], ad_column[c], ad_column[c]);

		if (q == NULL || sqlite3_prepare_v2(db, q, -1, &st, NULL) !=
		    SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
			snprintf(b->err, ERR_CAP, "contested cells: %s",
			    sqlite3_errmsg(db));
			sqlite3_free(q);
			sqlite3_finalize(st);
			break;
		}
		b->contested += sqlite3_column_int64(st, 0);
		b->won_branch += (long long)sqlite3_column_double(st, 1);
		b->won_hq += (long long)sqlite3_column_double(st, 2);
		sqlite3_free(q);
		sqlite3_finalize(st);
	}
	/* rows the branch deleted that HQ updated: kept or deleted? */
	if (b->err[0] == '\0') {
		b->upd_del = bench_db_int(b->err, ERR_CAP, db, UPD_DEL_SQL(""));
		b->upd_del_kept = bench_db_int(b->err, ERR_CAP, db, UPD_DEL_SQL(
		    " AND id IN (SELECT id FROM main." AD_TABLE ")"));
	}
out:
	sqlite3_free(sql);
	sqlite3_close(db);
}

/* ---- memory: a child process applies many changes ---- */

static int write_file(bench *b, const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		snprintf(b->err, ERR_CAP, "cannot write '%.300s': %s", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* The branch (a copy of its state at the base) updates mem_changes
 * distinct rows; a child applies their payload to a copy of HQ's replica
 * at the base: its wall time and peak RSS. */
static void run_memory(bench *b, paths *p, long long v_base)
{
	char self[PATH_MAX], log[PATH_MAX], out[PATH_MAX];
	char *argv[] = { self, (char *)"--apply-child", (char *)(uintptr_t)b->ext,
	    p->many_hq, p->many_payload, NULL };
	sqlite3 *db;
	void *pl = NULL;
	ssize_t n;

	fprintf(stderr, "sqlite-sync: %u distinct rows changed, applied by a "
	    "child process\n", b->mem_changes);
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) < 0) {
		snprintf(b->err, ERR_CAP, "readlink /proc/self/exe: %s",
		    strerror(errno));
		return;
	}
	self[n] = '\0';
	if (bench_pathf(log, sizeof(log), "%s/child.log", b->dir) < 0 ||
	    bench_pathf(out, sizeof(out), "%s/child.out", b->dir) < 0 ||
	    copy_db(b, p->br0, p->many_br) < 0 || copy_db(b, p->hq0,
	    p->many_hq) < 0 || (db = db_open(b, p->many_br, b->ext)) == NULL)
		return;
	if (ad_update_distinct(db, b->w0, b->mem_changes, 1, &b->mem_changed) !=
	    SQLITE_OK)
		snprintf(b->err, ERR_CAP, "sqlite: updating rows: %s",
		    sqlite3_errmsg(db));
	else if (encode(b, db, v_base, &pl, &b->mem_payload) == 0)
		write_file(b, p->many_payload, pl, b->mem_payload);
	db_close(db, 1);
	free(pl);
	if (b->err[0] == '\0' && bench_run(&b->mem_secs, &b->mem_rss, b->err,
	    ERR_CAP, NULL, out, log, argv) != 0 && b->err[0] == '\0')
		snprintf(b->err, ERR_CAP, "the child reported a failure");
}

/* --apply-child EXT DB PAYLOAD: apply the payload in a process of its own
 * (its peak RSS is the figure); 0 on success. */
static int apply_child(const char *ext, const char *path, const char *file)
{
	static bench b;
	sqlite3 *db;
	FILE *f = fopen(file, "rb");
	void *p = NULL;
	long n = -1;
	int rc = 1;

	if (f != NULL && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n + 1)) != NULL &&
	    fread(p, 1, (size_t)n, f) == (size_t)n &&
	    (db = db_open(&b, path, ext)) != NULL) {
		rc = apply(&b, db, p, (size_t)n) < 0;
		db_close(db, 1);
	}
	if (f != NULL)
		fclose(f);
	free(p);
	if (rc != 0)
		fprintf(stderr, "sqlite_sync: %s\n", b.err[0] ? b.err :
		    "cannot read the payload");
	return rc;
}

/* ---- report ---- */

static double median(const double *v, int n)
{
	return bench_median(v, n);
}

static void report(const bench *b, FILE *f)
{
	const ad_options *o = &b->opt;
	double pl = median(b->plain, b->nw), sy = median(b->sync, b->nw);

	fprintf(f, "agency day: %u base rows, %u ins / %u upd / %u del, HQ's %u "
	    "updates (%u on rows the branch touched), seed %llu, median of %d\n",
	    o->base_rows, o->inserts, o->updates, o->deletes, o->hq_updates,
	    o->hq_overlap, (unsigned long long)o->seed, b->reps);
	if (b->ext == NULL) {
		fprintf(f, "sqlite-sync: not available: %s\n", b->why);
		return;
	}
	fprintf(f, "sqlite-sync %s (%s)\n", b->version, b->ext);
	if (b->nw > 0)
		fprintf(f, "write: plain %.3f s, sqlite-sync %.3f s: %.2f× "
		    "(cloudsync_init on the base rows: %.2f s, not timed)\n",
		    pl, sy, sy / pl, b->init_secs);
	if (b->changed > 0)
		fprintf(f, "bytes: payload of the period %zu bytes for %lld "
		    "changed rows: %.1f B/row (zstd -19 of it: %.1f B/row); the "
		    "provisioning payload of the base rows: %zu bytes\n",
		    b->payload, b->changed, (double)b->payload / b->changed,
		    (double)b->payload_z19 / b->changed, b->full_payload);
	if (b->na > 0) {
		fprintf(f, "merge: cloudsync_payload_apply at HQ %.3f s (runs",
		    median(b->apply, b->na));
		bench_print_runs(f, b->apply, b->na);
		fprintf(f, ")\n");
	}
	if (b->converged >= 0)
		fprintf(f, "converged: %s; contested cells (changed on both "
		    "sides to different values): %lld, the branch's value won "
		    "%lld, HQ's %lld; rows deleted by the branch and updated by "
		    "HQ: %lld, kept %lld\n", b->converged ? "yes" : "no",
		    b->contested, b->won_branch, b->won_hq, b->upd_del,
		    b->upd_del_kept);
	if (b->mem_rss > 0)
		fprintf(f, "memory: applying %u changed rows (payload %zu bytes) "
		    "in a child: %.3f s, peak RSS %.1f MiB\n", b->mem_changed,
		    b->mem_payload, b->mem_secs, (double)b->mem_rss / 1024.0);
	if (b->err[0] != '\0')
		fprintf(f, "failed: %s\n", b->err);
}

/* One figure for bench/table.c, or why it is missing. */
static void summary_fig(const bench *b, const char *key, int have, double v)
{
	if (have)
		bench_summary(b->summary, key, "%.4f", v);
	else if (b->ext == NULL)
		bench_summary(b->summary, key, "! not available: %s", b->why);
	else
		bench_summary(b->summary, key, "! failed: %s", b->err[0] ?
		    b->err : "not run");
}

/* The figures bench/table.c gathers (--summary; keys in table.c). */
static void write_summary(const bench *b)
{
	bench_summary(b->summary, "version.sqlitesync", "%s", b->ext ?
	    b->version : "not available");
	summary_fig(b, "write.sqlitesync", b->nw > 0, b->nw > 0 ?
	    median(b->sync, b->nw) / median(b->plain, b->nw) : 0);
	summary_fig(b, "bytes.sqlitesync", b->changed > 0, b->changed > 0 ?
	    (double)b->payload / b->changed : 0);
	summary_fig(b, "merge.sqlitesync", b->na > 0, median(b->apply, b->na));
	summary_fig(b, "rss.sqlitesync", b->mem_rss > 0,
	    (double)b->mem_rss / 1024.0);
	if (b->converged < 0) {
		summary_fig(b, "converged.sqlitesync", 0, 0);
		return;
	}
	bench_summary(b->summary, "converged.sqlitesync", "%s",
	    b->converged ? "yes" : "no");
	bench_summary(b->summary, "contested.sqlitesync", "%lld cells "
	    "changed on both sides: the branch's value won %lld, HQ's %lld "
	    "(per column: more edits, then the greater value); %lld rows "
	    "deleted by the branch and updated by HQ: %lld kept, %lld deleted",
	    b->contested, b->won_branch, b->won_hq, b->upd_del,
	    b->upd_del_kept, b->upd_del - b->upd_del_kept);
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: sqlite_sync [--ext cloudsync.so | --unavailable WHY] "
	    "[--seed N] [--quick]\n"
	    "                   [--reps N] [--changes N] [--dir DIR] "
	    "[--results DIR] [--summary FILE]\n"
	    "sqlite-sync's write cost, bytes per changed row, merge at HQ, "
	    "convergence\nand memory on the agency day.  See bench/README.md.\n");
}

static int own_arg(void *ctx, const char *opt, const char *val)
{
	bench *b = ctx;

	if (strcmp(opt, "--ext") == 0)
		b->ext = val;
	else if (strcmp(opt, "--unavailable") == 0)
		b->why = val;
	else
		return -1;
	return 0;
}

/* AD_CREATE_SQL with DEFAULT '' on its NOT NULL columns but the key. */
static void make_ddl(bench *b)
{
	const char *s = AD_CREATE_SQL, *q;
	size_t len = 0;

	while ((q = strstr(s, "NOT NULL")) != NULL && len < sizeof(b->ddl)) {
		q += strlen("NOT NULL");
		len += (size_t)snprintf(b->ddl + len, sizeof(b->ddl) - len,
		    "%.*s%s", (int)(q - s), s, strncmp(q, " PRIMARY", 8) ?
		    " DEFAULT ''" : "");
		s = q;
	}
	if (len < sizeof(b->ddl))
		snprintf(b->ddl + len, sizeof(b->ddl) - len, "%s", s);
}

static int setup(bench *b, int argc, char **argv)
{
	bench_args a = {
		.seed = &b->opt.seed, .reps = &b->reps, .reps_max = MAX_REPS,
		.quick = &b->quick, .results_dir = &b->results_dir,
		.summary = &b->summary, .dir = b->dir, .changes = &b->mem_changes,
	};
	int rc;

	ad_options_default(&b->opt, 42);
	b->results_dir = "bench/results";
	b->why = "no --ext given";
	b->converged = -1;
	if ((rc = bench_parse_args(&a, argc, argv, own_arg, b, usage)) != 0)
		return rc;
	ad_options_size(&b->opt, b->quick, 0);
	if (b->reps == 0)
		b->reps = b->quick ? 1 : 3;
	if (b->mem_changes == 0 || b->mem_changes > b->opt.base_rows)
		b->mem_changes = b->opt.base_rows;
	make_ddl(b);
	return 0;
}

/* The version the extension reports; b->ext cleared when it does not
 * load (the reason goes to b->why). */
static void probe(bench *b)
{
	static char why[ERR_CAP];
	sqlite3 *db;
	sqlite3_stmt *st = NULL;

	if (b->ext == NULL)
		return;
	if ((db = db_open(b, ":memory:", b->ext)) == NULL) {
		snprintf(why, sizeof(why), "%s", b->err);
		b->why = why;
		b->ext = NULL;
		b->err[0] = '\0';
		return;
	}
	if (sqlite3_prepare_v2(db, "SELECT cloudsync_version()", -1, &st,
	    NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		snprintf(b->version, sizeof(b->version), "%s",
		    (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void run_all(bench *b)
{
	paths p;
	long long v_base = -1, v_hq0 = -1;
	void *pl = NULL;
	int rep;

	if (make_paths(b, &p) < 0) {
		snprintf(b->err, ERR_CAP, "path too long under '%.300s'", b->dir);
		return;
	}
	run_write(b);
	if (b->err[0] == '\0' &&
	    merge_setup(b, &p, &v_base, &v_hq0, &pl, &b->payload) == 0) {
		size_t cap = ZSTD_compressBound(b->payload);
		void *z = malloc(cap);

		if (z != NULL && !ZSTD_isError(cap = ZSTD_compress(z, cap, pl,
		    b->payload, 19)))
			b->payload_z19 = cap;
		free(z);
		for (rep = 0; rep < b->reps && b->err[0] == '\0'; rep++) {
			fprintf(stderr, "sqlite-sync: merge rep %d/%d\n", rep + 1,
			    b->reps);
			merge_rep(b, &p, pl, b->payload);
		}
		if (b->err[0] == '\0')
			converge(b, &p, v_hq0);
		if (b->err[0] == '\0')
			contested(b, &p);
	}
	free(pl);
	if (b->err[0] == '\0')
		run_memory(b, &p, v_base);
}

int main(int argc, char **argv)
{
	static bench b;
	char *text = NULL;
	size_t len = 0;
	FILE *mem;
	ad_options o0;
	int rc;

	if (argc == 5 && strcmp(argv[1], "--apply-child") == 0)
		return apply_child(argv[2], argv[3], argv[4]);
	if ((rc = setup(&b, argc, argv)) != 0) {
		if (rc < 0)
			usage(stderr);
		return rc < 0 ? 2 : 0;
	}
	probe(&b);
	o0 = b.opt;
	o0.inserts = o0.updates = o0.hot_rows = o0.hot_updates = o0.deletes = 0;
	o0.hq_updates = o0.hq_overlap = 0;
	if (b.ext != NULL && ((b.w = ad_workload_new(&b.opt)) == NULL ||
	    (b.w0 = ad_workload_new(&o0)) == NULL)) {
		fprintf(stderr, "sqlite_sync: cannot generate the workload\n");
		return 1;
	}
	if (b.ext != NULL && bench_scratch(b.dir, "tz-sqlite-sync",
	    &b.own_dir) < 0) {
		fprintf(stderr, "sqlite_sync: cannot create scratch directory "
		    "'%s': %s\n", b.dir, strerror(errno));
		return 1;
	}
	if (b.ext != NULL)
		run_all(&b);
	if ((mem = open_memstream(&text, &len)) == NULL)
		return 1;
	report(&b, mem);
	fclose(mem);
	write_summary(&b);
	bench_publish(text, b.results_dir, "sqlite-sync", b.quick ? "-quick" :
	    "", b.dir, NULL, b.own_dir, 0);
	free(text);
	ad_workload_free(b.w);
	ad_workload_free(b.w0);
	return 0;
}

/*
 * merge.c - the cost of HQ's merge of a branch's changes, on the "agency
 * day" workload (DESIGN.md §10, bench/agency_day.h), against the SQLite
 * session extension applying a changeset of the same changes.
 *
 * Three cases, in one run, driving only the syncctl command line (init-hq,
 * schema apply, branch add, init-branch, commit, export, import, verify)
 * and SQLite for the rows, so that the program keeps working whatever HQ's
 * merge does inside:
 *
 *  1 merge    HQ (the base rows committed, CAS01 enrolled); the branch runs
 *             the offline period and exports it; HQ runs its concurrent
 *             updates (--hq-edits, 10% on rows the branch touched) and
 *             commits; timed: the process `syncctl -C HQ import BUNDLE`
 *             (wall time, peak RSS via wait4).  Peer, timed: the same
 *             period captured by a session on a copy of the base, applied
 *             with sqlite3changeset_apply to a copy of the base that holds
 *             HQ's updates (DATA conflicts: REPLACE, others: OMIT).
 *  2 size     the same, on an HQ whose store also holds --big-rows minus
 *             the base rows in other branches' partitions (RAB01, FES01,
 *             ...), committed before enrolment: the branch's view, its
 *             period and its bundle are the same; the ratio big / small.
 *  3 memory   an HQ and a branch holding the base rows only (copies of
 *             case 1's stores taken right after enrolment); the branch
 *             updates --changes distinct rows (every row changes) and
 *             exports; timed: HQ's import, its peak RSS.
 *
 * After each Tazamun import: `syncctl -C HQ verify`, then HQ's reply
 * (`export --for CAS01`) imported at the branch, and the CAS01 partition of
 * job_seekers compared on both sides (row count and a hash of every value):
 * "converged".
 *
 * Timed imports run on fresh copies of the prepared HQ store (--reps,
 * interleaved: peer, small, big, peer, ...); the median is reported.  The
 * table goes to stdout and, with the machine's description, to
 * bench/results/; progress to stderr.  A failed step or import is reported
 * in the table; exit 0 even then (a benchmark never fails a build); 2 means
 * a usage error, 1 a setup error of the program itself.  See
 * bench/README.md.
 */
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include "bench/agency_day.h"
#include "bench/bench.h"

#include <sys/resource.h>

/* DESIGN.md §10 */
#define TARGET_MERGE_RATIO 2.0
#define TARGET_SIZE_RATIO 1.3
#define TARGET_RSS_MIB 64.0
#define PASSPHRASE "bench-passphrase"
#define MAX_REPS 9

/* Other branches' codes for the big store's partitions. */
static const char *const other_branch[] = {
	"RAB01", "FES01", "TNG01", "MRK01", "AGA01", "OUJ01", "MEK01",
	"KEN01", "TET01", "SAF01", "ELJ01", "BMK01", "NAD01", "LAA01",
};
#define NOTHER ((uint32_t)(sizeof(other_branch) / sizeof(other_branch[0])))

enum { R_PEER, R_SMALL, R_BIG, R_MEM, NROWS };

static const char *const row_name[NROWS] = {
	"session ext. changeset apply", "Tazamun HQ import",
	"Tazamun HQ import, big store", "Tazamun HQ import, many changes",
};

typedef struct result {
	double secs[MAX_REPS];
	long rss_kib[MAX_REPS];     /* peak RSS of the import process */
	int nrep;
	uint64_t store_rows;        /* rows of job_seekers at HQ */
	uint64_t changes;           /* rows the branch changed */
	int verify;                 /* -1 not run, 1 ok, 0 failed */
	int converged;              /* -1 not checked, 0 no, 1 yes */
	char said[512];             /* the import's summary line */
	char error[512];            /* setup failed: the row is skipped */
	char import_error[512];     /* the import itself failed */
	char check_error[512];      /* verify or the convergence check */
} result;

/* One HQ and its branch: a pair of stores. */
typedef struct pair {
	char hq[PATH_MAX];          /* prepared HQ (the imports run on copies) */
	char br[PATH_MAX];
	char bundle[PATH_MAX];      /* the branch's export */
	char run[PATH_MAX];         /* the copy of hq of the current rep */
} pair;

typedef struct bench {
	ad_options opt;
	ad_workload *w;             /* the period and HQ's updates */
	ad_workload *w0;            /* no period: base rows only (case 3) */
	int quick;
	int reps;
	int custom;                 /* sizes or HQ's updates not the default */
	int cases;                  /* bit 1 << (case - 1) */
	uint32_t big_rows;          /* rows of the big store */
	uint32_t mem_changes;       /* rows changed in case 3 */
	const char *syncctl;
	const char *schema;
	const char *results_dir;
	const char *summary;        /* --summary FILE: figures for table.c */
	char dir[PATH_MAX];
	int own_dir;
	char note[8192];
	uint32_t cs_rows;           /* rows in the session changeset */
	int cs_bytes;
	int conflicts[6];           /* peer: conflicts by type (last rep) */
	double big_commit_secs;     /* HQ's commit of the big store's rows */
	long big_commit_rss;
	double small_commit_secs;
	long small_commit_rss;
	double mem_commit_secs;     /* the branch's export of case 3 */
	uint32_t mem_changed;
	double verify_secs[NROWS];
	double status_secs;         /* syncctl status on HQ: start + open */
	pair p[NROWS];
	result res[NROWS];
} bench;

BENCH_PRINTF(2, 3)
static void fail(char *dst, const char *fmt, ...)
{
	va_list ap;

	if (dst[0] != '\0')
		return;     /* keep the first cause */
	va_start(ap, fmt);
	vsnprintf(dst, 512, fmt, ap);
	va_end(ap);
}

BENCH_PRINTF(2, 3)
static void note(bench *b, const char *fmt, ...)
{
	size_t len = strlen(b->note);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b->note + len, sizeof(b->note) - len, fmt, ap);
	va_end(ap);
}

static int want(const bench *b, int c)
{
	return (b->cases >> (c - 1)) & 1;
}

/* ---- running a tool ---- */

/* The first non-empty line of a file, cut (the last one: bench_log_tail). */
static void first_line(char *out, size_t cap, const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	out[0] = '\0';
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		if (line[0] != '\n') {
			snprintf(out, cap, "%.*s", (int)strcspn(line, "\n"), line);
			break;
		}
	fclose(f);
}

/* Append a file to the log. */
static void append_file(const char *log, const char *path)
{
	char buf[8192];
	FILE *in = fopen(path, "r"), *out = fopen(log, "a");
	size_t n;

	while (in != NULL && out != NULL &&
	    (n = fread(buf, 1, sizeof(buf), in)) > 0)
		fwrite(buf, 1, n, out);
	if (in != NULL)
		fclose(in);
	if (out != NULL)
		fclose(out);
}

/*
 * Run argv (argv[0] a path, or a name found in PATH) with stdin from
 * /dev/null, stdout into DIR/out.txt and stderr into DIR/err.txt (both
 * then appended to DIR/run.log).  *secs: wall time from spawning to
 * reaping; *rss_kib: the child's peak RSS (ru_maxrss).  `said` gets the
 * last line of stdout, or when the tool fails the first line of stderr.  0 when it exits with status 0; otherwise -1 and in
 * err (512 bytes) how it ended and the first line of its stderr.
 */
static int run_tool(bench *b, double *secs, long *rss_kib, char *said,
    size_t said_cap, char *err, char *const argv[])
{
	posix_spawn_file_actions_t fa;
	char out[PATH_MAX], errf[PATH_MAX], log[PATH_MAX], first[300];
	struct rusage ru;
	int rc, st = 0;
	double t0;
	pid_t pid, w = -1;

	if (bench_pathf(out, sizeof(out), "%s/out.txt", b->dir) < 0 ||
	    bench_pathf(errf, sizeof(errf), "%s/err.txt", b->dir) < 0 ||
	    bench_pathf(log, sizeof(log), "%s/run.log", b->dir) < 0) {
		fail(err, "path too long under '%s'", b->dir);
		return -1;
	}
	memset(&ru, 0, sizeof(ru));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out,
	    O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_addopen(&fa, 2, errf,
	    O_WRONLY | O_CREAT | O_TRUNC, 0644);
	t0 = bench_now();
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	if (rc == 0)
		while ((w = wait4(pid, &st, 0, &ru)) < 0 && errno == EINTR)
			;
	*secs = bench_now() - t0;
	posix_spawn_file_actions_destroy(&fa);
	if (rss_kib != NULL)
		*rss_kib = ru.ru_maxrss;
	if (rc != 0) {
		fail(err, "cannot run '%.300s': %s", argv[0], strerror(rc));
		return -1;
	}
	append_file(log, out);
	append_file(log, errf);
	if (said != NULL)
		bench_log_tail(said, said_cap, out, 0);
	if (w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	first_line(first, sizeof(first), errf);
	if (first[0] == '\0')
		bench_log_tail(first, sizeof(first), out, 0);
	if (said != NULL)
		snprintf(said, said_cap, "%s", first[0] ? first :
		    "(nothing on stderr)");
	fail(err, "%s %d: %s", WIFEXITED(st) ? "exit" : "signal",
	    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
	    first[0] ? first : "(nothing on stderr)");
	return -1;
}

/*
 * syncctl with the arguments that follow (NULL ends them; up to 8).
 * Progress on stderr names scratch paths by their last component.  The
 * optional out-parameters come first; NULL to ignore them.
 */
static int syncctl(bench *b, char *err, double *secs, long *rss,
    char *said, size_t said_cap, ...)
{
	char *argv[10] = { NULL }, cmd[256];
	const char *a;
	size_t len = 0;
	double s;
	long r;
	va_list ap;
	int n = 0, rc;

	cmd[0] = '\0';
	argv[n++] = (char *)(uintptr_t)b->syncctl;
	va_start(ap, said_cap);
	while ((a = va_arg(ap, const char *)) != NULL && n < 9) {
		argv[n++] = (char *)(uintptr_t)a;
		if (strncmp(a, b->dir, strlen(b->dir)) == 0 && strrchr(a, '/'))
			a = strrchr(a, '/') + 1;
		if (len < sizeof(cmd))
			len += (size_t)snprintf(cmd + len, sizeof(cmd) - len,
			    " %s", a);
	}
	va_end(ap);
	fprintf(stderr, "merge: syncctl%s\n", cmd);
	rc = run_tool(b, &s, &r, said, said_cap, err, argv);
	if (secs != NULL)
		*secs = s;
	if (rss != NULL)
		*rss = r;
	if (rc < 0 && strncmp(err, "'syncctl", 8) != 0) {
		char tmp[512];

		snprintf(tmp, sizeof(tmp), "'syncctl%s' %s", cmd, err);
		memcpy(err, tmp, sizeof(tmp));
	}
	return rc;
}

#define SYNCCTL(b, err, ...) syncctl((b), (err), NULL, NULL, NULL, 0, \
	__VA_ARGS__, (const char *)NULL)

/* cp -a SRC DST (DST removed first). */
static int copy_tree(bench *b, char *err, const char *src, const char *dst)
{
	char *argv[] = { (char *)"cp", (char *)"-a", (char *)(uintptr_t)src,
	    (char *)(uintptr_t)dst, NULL };
	double s;

	bench_rm_rf(dst);
	return run_tool(b, &s, NULL, NULL, 0, err, argv);
}

/* ---- SQLite ---- */

static sqlite3 *db_open(char *err, const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    ad_configure(db) != SQLITE_OK) {
		fail(err, "cannot open '%s': %s", path,
		    db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

static int db_exec(char *err, sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	fail(err, "sqlite: %s: %s", sql, sqlite3_errmsg(db));
	return -1;
}

/* VACUUM INTO: a clean copy of a database. */
static int db_copy(char *err, const char *src, const char *dst)
{
	sqlite3 *db;
	char *sql;
	int rc = -1;

	bench_rm_db(dst);
	if ((db = db_open(err, src)) == NULL)
		return -1;
	if ((sql = sqlite3_mprintf("VACUUM INTO %Q", dst)) == NULL)
		fail(err, "out of memory");
	else
		rc = db_exec(err, db, sql);
	sqlite3_free(sql);
	sqlite3_close(db);
	return rc;
}

/* Rows of other branches' partitions: n-th row of code `k`, a row of the
 * generator with another seed, its key and owner rewritten. */
static int load_others(char *err, sqlite3 *db, const bench *b, uint32_t rows)
{
	sqlite3_stmt *st = NULL;
	ad_row *row = malloc(sizeof(*row));
	uint32_t per = (rows + NOTHER - 1) / NOTHER, k, n, done = 0;
	char key[32];
	int c, rc = -1;

	if (row == NULL) {
		fail(err, "out of memory");
		return -1;
	}
	if (db_exec(err, db, "BEGIN") < 0)
		goto out;
	if (sqlite3_prepare_v2(db, AD_INSERT_SQL, -1, &st, NULL) != SQLITE_OK)
		goto sqlerr;
	for (k = 0; k < NOTHER && done < rows; k++)
		for (n = 1; n <= per && done < rows; n++, done++) {
			ad_row_make(row, b->opt.seed ^ (0x9e37ULL * (k + 1)), n, 0);
			snprintf(key, sizeof(key), "%s-%06u", other_branch[k], n);
			row->v[AD_ID] = key;
			row->v[AD_OWNER] = other_branch[k];
			for (c = 0; c < AD_NCOLS; c++)
				sqlite3_bind_text(st, c + 1, row->v[c], -1,
				    SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_DONE)
				goto sqlerr;
			sqlite3_reset(st);
		}
	sqlite3_finalize(st);
	st = NULL;
	rc = db_exec(err, db, "COMMIT");
	goto out;
sqlerr:
	fail(err, "sqlite: loading other partitions: %s", sqlite3_errmsg(db));
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
out:
	sqlite3_finalize(st);
	free(row);
	return rc;
}

/* What a store's job_seekers holds in CAS01's partition: rows and a hash
 * of every value (FNV-1a 64, rows in key order), and all its rows. */
typedef struct digest {
	uint64_t rows, hash, all;
} digest;

static int partition_digest(char *err, const char *path, digest *d)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int c, rc;

	memset(d, 0, sizeof(*d));
	d->hash = 0xcbf29ce484222325ULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT * FROM " AD_TABLE " WHERE "
	    "owner_branch = '" AD_BRANCH "' ORDER BY id", -1, &st, NULL) !=
	    SQLITE_OK)
		goto sqlerr;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		d->rows++;
		for (c = 0; c < sqlite3_column_count(st); c++) {
			const unsigned char *v = sqlite3_column_text(st, c);
			int n = sqlite3_column_bytes(st, c), i;

			if (v == NULL)
				d->hash = (d->hash ^ 0xffu) * 0x100000001b3ULL;
			for (i = 0; v != NULL && i <= n; i++)  /* with the NUL */
				d->hash = (d->hash ^ v[i]) * 0x100000001b3ULL;
		}
	}
	if (rc != SQLITE_DONE)
		goto sqlerr;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM " AD_TABLE, -1, &st,
	    NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
		goto sqlerr;
	d->all = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 0;
sqlerr:
	fail(err, "reading '%s': %s", path, db ? sqlite3_errmsg(db) :
	    "out of memory");
	sqlite3_finalize(st);
	sqlite3_close(db);
	return -1;
}

/* Open DIR/store.db and run fn on it. */
typedef int (*store_fn)(bench *b, sqlite3 *db, char *err, void *arg);

static int on_store(bench *b, char *err, const char *dir, const char *what,
    store_fn fn, void *arg)
{
	char path[PATH_MAX];
	sqlite3 *db;
	int rc;

	if (bench_pathf(path, sizeof(path), "%s/store.db", dir) < 0) {
		fail(err, "path too long under '%s'", dir);
		return -1;
	}
	fprintf(stderr, "merge: %s on %s/store.db\n", what,
	    strrchr(dir, '/') + 1);
	if ((db = db_open(err, path)) == NULL)
		return -1;
	rc = fn(b, db, err, arg);
	sqlite3_close(db);
	return rc;
}

static int fn_base(bench *b, sqlite3 *db, char *err, void *arg)
{
	(void)arg;
	if (ad_load_base(db, b->w) == SQLITE_OK)
		return 0;
	fail(err, "sqlite: loading the base rows: %s", sqlite3_errmsg(db));
	return -1;
}

static int fn_others(bench *b, sqlite3 *db, char *err, void *arg)
{
	return load_others(err, db, b, *(uint32_t *)arg);
}

static int fn_period(bench *b, sqlite3 *db, char *err, void *arg)
{
	(void)arg;
	if (ad_run_period(db, b->w) == SQLITE_OK)
		return 0;
	fail(err, "sqlite: the period: %s", sqlite3_errmsg(db));
	return -1;
}

static int fn_hq(bench *b, sqlite3 *db, char *err, void *arg)
{
	(void)arg;
	if (ad_run_hq(db, b->w) == SQLITE_OK)
		return 0;
	fail(err, "sqlite: HQ's updates: %s", sqlite3_errmsg(db));
	return -1;
}

static int fn_distinct(bench *b, sqlite3 *db, char *err, void *arg)
{
	uint32_t *changed = arg;

	if (ad_update_distinct(db, b->w0, b->mem_changes, 1, changed) ==
	    SQLITE_OK)
		return 0;
	fail(err, "sqlite: updating distinct rows: %s", sqlite3_errmsg(db));
	return -1;
}

/* ---- the peer: session changeset, applied ---- */

static int conflict_handler(void *ctx, int type, sqlite3_changeset_iter *it)
{
	int *counts = ctx;

	(void)it;
	if (type >= 1 && type <= 5)
		counts[type]++;
	return type == SQLITE_CHANGESET_DATA ? SQLITE_CHANGESET_REPLACE :
	    SQLITE_CHANGESET_OMIT;
}

typedef struct peer_t {
	char hq0[PATH_MAX];         /* base + HQ's updates */
	char run[PATH_MAX];         /* the copy a rep applies to */
	void *cs;
	int ncs;
} peer_t;

static uint32_t changeset_rows(void *cs, int n)
{
	sqlite3_changeset_iter *it = NULL;
	uint32_t rows = 0;

	if (sqlite3changeset_start(&it, n, cs) != SQLITE_OK)
		return 0;
	while (sqlite3changeset_next(it) == SQLITE_ROW)
		rows++;
	sqlite3changeset_finalize(it);
	return rows;
}

/* base.db with the base rows; the period captured by a session on a copy
 * (the changeset); a copy with HQ's updates, the template of the reps. */
static int peer_setup(bench *b, peer_t *p)
{
	result *r = &b->res[R_PEER];
	char base[PATH_MAX], br[PATH_MAX];
	sqlite3 *db = NULL;
	sqlite3_session *s = NULL;

	if (bench_pathf(base, sizeof(base), "%s/peer-base.db", b->dir) < 0 ||
	    bench_pathf(br, sizeof(br), "%s/peer-branch.db", b->dir) < 0 ||
	    bench_pathf(p->hq0, sizeof(p->hq0), "%s/peer-hq0.db", b->dir) < 0 ||
	    bench_pathf(p->run, sizeof(p->run), "%s/peer-hq.db", b->dir) < 0) {
		fail(r->error, "path too long under '%s'", b->dir);
		return -1;
	}
	fprintf(stderr, "merge: peer: %u base rows, the period in a session, "
	    "HQ's updates\n", b->opt.base_rows);
	bench_rm_db(base);
	if ((db = db_open(r->error, base)) == NULL ||
	    db_exec(r->error, db, AD_CREATE_SQL) < 0)
		goto fail;
	if (ad_load_base(db, b->w) != SQLITE_OK) {
		fail(r->error, "sqlite: %s", sqlite3_errmsg(db));
		goto fail;
	}
	sqlite3_close(db);
	db = NULL;
	if (db_copy(r->error, base, br) < 0 || db_copy(r->error, base, p->hq0) < 0)
		goto fail;
	/* the branch: a new connection, a session, the period */
	if ((db = db_open(r->error, br)) == NULL)
		goto fail;
	if (sqlite3session_create(db, "main", &s) != SQLITE_OK ||
	    sqlite3session_attach(s, AD_TABLE) != SQLITE_OK ||
	    ad_run_period(db, b->w) != SQLITE_OK ||
	    sqlite3session_changeset(s, &p->ncs, &p->cs) != SQLITE_OK) {
		fail(r->error, "sqlite: session: %s", sqlite3_errmsg(db));
		goto fail;
	}
	sqlite3session_delete(s);
	s = NULL;
	sqlite3_close(db);
	b->cs_rows = r->changes = changeset_rows(p->cs, p->ncs);
	b->cs_bytes = p->ncs;
	/* HQ: its concurrent updates */
	if ((db = db_open(r->error, p->hq0)) == NULL)
		goto fail;
	if (ad_run_hq(db, b->w) != SQLITE_OK) {
		fail(r->error, "sqlite: HQ's updates: %s", sqlite3_errmsg(db));
		goto fail;
	}
	sqlite3_close(db);
	r->store_rows = b->opt.base_rows;
	bench_rm_db(base);
	bench_rm_db(br);
	return 0;
fail:
	sqlite3session_delete(s);
	sqlite3_close(db);
	return -1;
}

/* One rep: a fresh copy of HQ's database, a new connection, then timed:
 * sqlite3changeset_apply (one transaction, committed). */
static void peer_rep(bench *b, peer_t *p)
{
	result *r = &b->res[R_PEER];
	sqlite3 *db;
	double t0, t;
	int rc;

	if (r->error[0] != '\0' || db_copy(r->error, p->hq0, p->run) < 0 ||
	    (db = db_open(r->error, p->run)) == NULL)
		return;
	sync();   /* as the imports' copies (tz_rep) */
	memset(b->conflicts, 0, sizeof(b->conflicts));
	/* warm the connection as syncctl opens its store: the schema */
	sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL);
	t0 = bench_now();
	rc = sqlite3changeset_apply(db, p->ncs, p->cs, NULL, conflict_handler,
	    b->conflicts);
	t = bench_now() - t0;
	if (rc != SQLITE_OK)
		fail(r->error, "sqlite3changeset_apply: %s", sqlite3_errmsg(db));
	else if (r->nrep < MAX_REPS)
		r->secs[r->nrep++] = t;
	/* the table's rows after the apply, as for Tazamun's rows */
	if (rc == SQLITE_OK) {
		sqlite3_stmt *st = NULL;

		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM " AD_TABLE, -1,
		    &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
			r->store_rows = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
}

/* ---- Tazamun ---- */

static int pair_paths(bench *b, pair *p, const char *name)
{
	return bench_pathf(p->hq, sizeof(p->hq), "%s/%s-hq", b->dir, name) < 0 ||
	    bench_pathf(p->br, sizeof(p->br), "%s/%s-br", b->dir, name) < 0 ||
	    bench_pathf(p->bundle, sizeof(p->bundle), "%s/%s.tzb", b->dir,
	    name) < 0 ||
	    bench_pathf(p->run, sizeof(p->run), "%s/%s-hq-run", b->dir,
	    name) < 0 ? -1 : 0;
}

/* HQ with the base rows (and `others` rows of other partitions),
 * committed; CAS01 enrolled; its branch store.  *commit_secs and
 * *commit_rss: HQ's commit of the rows. */
static int tz_enrol(bench *b, pair *p, char *err, uint32_t others,
    double *commit_secs, long *commit_rss)
{
	char enrol[PATH_MAX];

	if (bench_pathf(enrol, sizeof(enrol), "%s.tze", p->hq) < 0) {
		fail(err, "path too long under '%s'", b->dir);
		return -1;
	}
	bench_rm_rf(p->hq);
	bench_rm_rf(p->br);
	unlink(enrol);
	if (SYNCCTL(b, err, "init-hq", p->hq) < 0 ||
	    SYNCCTL(b, err, "-C", p->hq, "schema", "apply", b->schema) < 0 ||
	    on_store(b, err, p->hq, "loading the base rows", fn_base, NULL) < 0)
		return -1;
	if (others > 0) {
		char what[96];

		snprintf(what, sizeof(what), "loading %u rows of other "
		    "branches' partitions", others);
		if (on_store(b, err, p->hq, what, fn_others, &others) < 0)
			return -1;
	}
	if (syncctl(b, err, commit_secs, commit_rss, NULL, 0, "-C", p->hq,
	    "commit", "-m", "base", (const char *)NULL) < 0 ||
	    SYNCCTL(b, err, "-C", p->hq, "branch", "add", AD_BRANCH, "--out",
	    enrol) < 0 ||
	    SYNCCTL(b, err, "init-branch", p->br, "--enroll", enrol) < 0)
		return -1;
	unlink(enrol);
	return 0;
}

/* The branch's period, exported; HQ's updates, committed. */
static int tz_period(bench *b, pair *p, char *err)
{
	if (on_store(b, err, p->br, "the period", fn_period, NULL) < 0 ||
	    SYNCCTL(b, err, "-C", p->br, "export", "--out", p->bundle) < 0)
		return -1;
	if (b->w->hq.nop == 0)
		return 0;
	return on_store(b, err, p->hq, "HQ's updates", fn_hq, NULL) < 0 ||
	    SYNCCTL(b, err, "-C", p->hq, "commit", "-m", "hq-edits") < 0 ?
	    -1 : 0;
}

/* One timed import on a fresh copy of the prepared HQ. */
static void tz_rep(bench *b, int row)
{
	result *r = &b->res[row];
	pair *p = &b->p[row];
	char err[512] = "";
	double secs;
	long rss;

	if (r->error[0] != '\0' || r->import_error[0] != '\0' ||
	    r->nrep >= MAX_REPS)
		return;
	fprintf(stderr, "merge: %s, rep %d\n", row_name[row], r->nrep + 1);
	if (copy_tree(b, r->error, p->hq, p->run) < 0)
		return;
	/* the copy written back before the clock starts: the import must not
	 * pay for the writeback of the bench's own copy (~1 GB for the big
	 * store, against ~100 MB for the small one: it made the big-store
	 * ratio 1.41 where the imports alone measure ~1.1) */
	sync();
	if (syncctl(b, err, &secs, &rss, r->said, sizeof(r->said),
	    "-C", p->run, "import", p->bundle, (const char *)NULL) < 0) {
		/* the table says "import failed: <its stderr's first line>" */
		fail(r->import_error, "%s", r->said);
		r->said[0] = '\0';
		/* the command and how it ended; the table has its message */
		{
			char *q = strstr(err, "' ");

			if (q != NULL && (q = strstr(q, ": ")) != NULL)
				*q = '\0';
		}
		note(b, "%s: %s\n", row_name[row], err);
		return;
	}
	r->secs[r->nrep] = secs;
	r->rss_kib[r->nrep++] = rss;
}

/* After the last rep: verify HQ; HQ's reply imported at the branch; the
 * partition compared on both sides. */
static void tz_check(bench *b, int row)
{
	result *r = &b->res[row];
	pair *p = &b->p[row];
	char reply[PATH_MAX], hq_db[PATH_MAX], br_db[PATH_MAX];
	digest dh, db;
	double secs;

	if (r->error[0] != '\0' || (r->nrep == 0 && r->import_error[0] == '\0'))
		return;
	if (bench_pathf(reply, sizeof(reply), "%s-reply.tzb", p->run) < 0 ||
	    bench_pathf(hq_db, sizeof(hq_db), "%s/store.db", p->run) < 0 ||
	    bench_pathf(br_db, sizeof(br_db), "%s/store.db", p->br) < 0)
		return;
	r->verify = syncctl(b, r->check_error, &secs, NULL, NULL, 0, "-C",
	    p->run, "verify", (const char *)NULL) == 0;
	b->verify_secs[row] = secs;
	if (r->nrep == 0) {
		/* the import was refused: HQ must still verify */
		fail(r->check_error, "after the failed import, HQ's store %s",
		    r->verify ? "verifies" : "does NOT verify");
		return;
	}
	r->converged = 0;
	if (SYNCCTL(b, r->check_error, "-C", p->run, "export", "--for",
	    AD_BRANCH, "--out", reply) < 0 ||
	    SYNCCTL(b, r->check_error, "-C", p->br, "import", reply) < 0 ||
	    partition_digest(r->check_error, hq_db, &dh) < 0 ||
	    partition_digest(r->check_error, br_db, &db) < 0)
		return;
	r->store_rows = dh.all;
	r->converged = dh.rows == db.rows && dh.hash == db.hash;
	if (!r->converged)
		fail(r->check_error, "%s: HQ has %llu rows of " AD_BRANCH
		    " (hash %016llx), the branch %llu (%016llx)", row_name[row],
		    (unsigned long long)dh.rows, (unsigned long long)dh.hash,
		    (unsigned long long)db.rows, (unsigned long long)db.hash);
}

/* Case 3's stores: copies of case 1's right after enrolment; the branch
 * updates mem_changes distinct rows and exports (commit included). */
static int tz_mem_setup(bench *b, pair *small)
{
	result *r = &b->res[R_MEM];
	pair *p = &b->p[R_MEM];

	if (copy_tree(b, r->error, small->hq, p->hq) < 0 ||
	    copy_tree(b, r->error, small->br, p->br) < 0 ||
	    on_store(b, r->error, p->br, "updating distinct rows", fn_distinct,
	    &b->mem_changed) < 0 ||
	    syncctl(b, r->error, &b->mem_commit_secs, NULL, NULL, 0, "-C",
	    p->br, "export", "--out", p->bundle, (const char *)NULL) < 0)
		return -1;
	r->changes = b->mem_changed;
	r->store_rows = b->opt.base_rows;
	return 0;
}

/* ---- the report ---- */

static double median_secs(const result *r)
{
	return bench_median(r->secs, r->nrep);
}

static double max_rss_mib(const result *r)
{
	long m = 0;
	int i;

	for (i = 0; i < r->nrep; i++)
		if (r->rss_kib[i] > m)
			m = r->rss_kib[i];
	return (double)m / 1024.0;
}

static const char *yes_no(int v, const char *yes, const char *no)
{
	return v < 0 ? "-" : v ? yes : no;
}

static void report_row(const bench *b, FILE *f, int row, double ref)
{
	const result *r = &b->res[row];
	char ratio[32] = "-", rss[32] = "-";

	if ((row == R_PEER && !want(b, 1)) || (row == R_SMALL && !want(b, 1) &&
	    !want(b, 2)) || (row == R_BIG && !want(b, 2)) ||
	    (row == R_MEM && !want(b, 3)))
		return;
	if (row != R_PEER && b->syncctl == NULL) {
		fprintf(f, "%-34s skipped (no --syncctl)\n", row_name[row]);
		return;
	}
	if (r->error[0] != '\0') {
		fprintf(f, "%-34s skipped (%s)\n", row_name[row], r->error);
		return;
	}
	if (r->import_error[0] != '\0') {
		fprintf(f, "%-34s %10llu %8llu   import failed: %s\n",
		    row_name[row], (unsigned long long)r->store_rows,
		    (unsigned long long)r->changes, r->import_error);
		return;
	}
	if (r->nrep == 0) {
		fprintf(f, "%-34s not run\n", row_name[row]);
		return;
	}
	if (ref > 0)
		snprintf(ratio, sizeof(ratio), "%.2f×", median_secs(r) / ref);
	if (row != R_PEER)
		snprintf(rss, sizeof(rss), "%.1f", max_rss_mib(r));
	fprintf(f, "%-34s %10llu %8llu %9.3f %*s %9s %7s %10s\n",
	    row_name[row], (unsigned long long)r->store_rows,
	    (unsigned long long)r->changes, median_secs(r),
	    ref > 0 ? 9 : 8, ratio, rss,
	    yes_no(r->verify, "ok", "FAILED"),
	    yes_no(r->converged, "yes", "no"));
}

static int usable(const result *r)
{
	return r->error[0] == '\0' && r->import_error[0] == '\0' && r->nrep > 0;
}

static void report(const bench *b, FILE *f)
{
	const ad_options *o = &b->opt;
	const result *peer = &b->res[R_PEER], *small = &b->res[R_SMALL];
	const result *big = &b->res[R_BIG], *mem = &b->res[R_MEM];
	double peer_s = usable(peer) ? median_secs(peer) : 0;
	double small_s = usable(small) ? median_secs(small) : 0;
	int row;

	fprintf(f, "agency day: %u base rows, %u ins / %u upd / %u del (%u "
	    "distinct rows touched, %u changed), seed %llu\n", o->base_rows,
	    o->inserts, o->updates, o->deletes, b->w->distinct, b->cs_rows,
	    (unsigned long long)o->seed);
	fprintf(f, "HQ's concurrent updates: %zu (%u on rows the branch "
	    "touched); big store: %u rows (%u in %u other partitions); many "
	    "changes: %u rows; median of %d\n", b->w->hq.nop, b->w->opt.hq_overlap,
	    b->big_rows, b->big_rows - o->base_rows, NOTHER, b->mem_changes,
	    b->reps);
	fprintf(f, "%-34s %10s %8s %9s %8s %9s %7s %10s\n", "merge",
	    "HQ rows", "changed", "seconds", "ratio", "RSS MiB", "verify",
	    "converged");
	report_row(b, f, R_PEER, peer_s);
	report_row(b, f, R_SMALL, peer_s);
	report_row(b, f, R_BIG, small_s);
	report_row(b, f, R_MEM, 0);
	fprintf(f, "targets:");
	if (want(b, 1)) {
		if (peer_s > 0 && small_s > 0)
			fprintf(f, " merge %.2f× the session apply (≤ %.0f×: "
			    "%s);", small_s / peer_s, TARGET_MERGE_RATIO,
			    small_s / peer_s <= TARGET_MERGE_RATIO ? "met" :
			    "NOT met");
		else
			fprintf(f, " merge ≤ %.0f× the session apply: not "
			    "measured;", TARGET_MERGE_RATIO);
	}
	if (want(b, 2)) {
		if (usable(big) && small_s > 0)
			fprintf(f, " big store %.2f× the small (≤ %.1f×: %s);",
			    median_secs(big) / small_s, TARGET_SIZE_RATIO,
			    median_secs(big) / small_s <= TARGET_SIZE_RATIO ?
			    "met" : "NOT met");
		else
			fprintf(f, " big / small store ≤ %.1f×: not measured;",
			    TARGET_SIZE_RATIO);
	}
	if (want(b, 3)) {
		if (usable(mem))
			fprintf(f, " RSS merging %llu changes %.1f MiB (≤ %.0f "
			    "MiB: %s)", (unsigned long long)mem->changes,
			    max_rss_mib(mem), TARGET_RSS_MIB,
			    max_rss_mib(mem) <= TARGET_RSS_MIB ? "met" :
			    "NOT met");
		else
			fprintf(f, " RSS ≤ %.0f MiB: not measured",
			    TARGET_RSS_MIB);
	}
	fprintf(f, "\n");
	if (usable(peer))
		fprintf(f, "peer: changeset of %u rows (%d bytes) applied in one "
		    "transaction; conflicts data %d, not found %d, conflict %d, "
		    "constraint %d, foreign key %d\n", b->cs_rows,
		    b->cs_bytes, b->conflicts[1],
		    b->conflicts[2], b->conflicts[3], b->conflicts[4],
		    b->conflicts[5]);
	for (row = R_PEER; row < NROWS; row++) {
		const result *r = &b->res[row];

		if (r->nrep > 1) {
			fprintf(f, "runs (s) %s:", row_name[row]);
			bench_print_runs(f, r->secs, r->nrep);
			fprintf(f, "\n");
		}
		if (r->said[0] != '\0')
			fprintf(f, "%s said: %s\n", row_name[row], r->said);
		if (r->check_error[0] != '\0')
			fprintf(f, "%s check: %s\n", row_name[row],
			    r->check_error);
		if (b->verify_secs[row] > 0)
			fprintf(f, "%s: verify took %.3f s\n", row_name[row],
			    b->verify_secs[row]);
	}
	if (b->small_commit_secs > 0)
		fprintf(f, "setup: HQ's commit of %u base rows %.3f s, %.1f MiB",
		    o->base_rows, b->small_commit_secs,
		    (double)b->small_commit_rss / 1024.0);
	if (b->big_commit_secs > 0)
		fprintf(f, "; of %u rows (big store) %.3f s, %.1f MiB",
		    b->big_rows, b->big_commit_secs,
		    (double)b->big_commit_rss / 1024.0);
	if (b->mem_commit_secs > 0)
		fprintf(f, "; branch export of %u changed rows %.3f s",
		    b->mem_changed, b->mem_commit_secs);
	if (b->small_commit_secs > 0)
		fprintf(f, "\n");
	if (b->status_secs > 0)
		fprintf(f, "syncctl -C HQ status (start, open the store): "
		    "%.3f s\n", b->status_secs);
	fputs(b->note, f);
}

/* One figure of a row for bench/table.c: "! why" when it is missing. */
static void summary_row(const bench *b, const char *key, int row, double v)
{
	const result *r = &b->res[row];

	if (usable(r))
		bench_summary(b->summary, key, "%.4f", v);
	else
		bench_summary(b->summary, key, "! %s", r->error[0] ? r->error :
		    r->import_error[0] ? r->import_error : b->syncctl == NULL ?
		    "no --syncctl" : "not run");
}

/* The figures bench/table.c gathers (--summary; keys in table.c). */
static void write_summary(const bench *b)
{
	const result *small = &b->res[R_SMALL], *mem = &b->res[R_MEM];

	if (want(b, 1)) {
		summary_row(b, "merge.session", R_PEER,
		    median_secs(&b->res[R_PEER]));
		bench_summary(b->summary, "contested.session", "the bench's "
		    "handler: REPLACE (the branch's row) on %d DATA conflicts",
		    b->conflicts[SQLITE_CHANGESET_DATA]);
	}
	if (want(b, 1) || want(b, 2))
		summary_row(b, "merge.tazamun", R_SMALL, median_secs(small));
	if (want(b, 2))
		summary_row(b, "merge.tazamun.big", R_BIG,
		    median_secs(&b->res[R_BIG]));
	if (want(b, 3)) {
		summary_row(b, "rss.tazamun", R_MEM, max_rss_mib(mem));
		bench_summary(b->summary, "rss.changes", "%llu",
		    (unsigned long long)mem->changes);
	}
	if (small->converged >= 0)
		bench_summary(b->summary, "converged.tazamun", "%s",
		    small->converged ? "yes" : "no");
	if (usable(small) && small->said[0] != '\0')
		bench_summary(b->summary, "contested.tazamun", "%s", small->said);
	bench_summary(b->summary, "workload.merge", "%u base rows, HQ %zu "
	    "concurrent updates (%u on rows the branch touched), big store %u "
	    "rows, median of %d", b->opt.base_rows, b->w->hq.nop,
	    b->w->opt.hq_overlap, b->big_rows, b->reps);
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: merge [--seed N] [--quick] [--reps N] [--hq-edits N] "
	    "[--hq-overlap N]\n"
	    "             [--big-rows N] [--changes N] [--cases LIST] "
	    "[--syncctl PATH]\n"
	    "             [--schema FILE] [--dir DIR] [--results DIR] "
	    "[--summary FILE]\n"
	    "HQ's merge of the agency-day period (syncctl import) against the "
	    "session\n"
	    "extension's changeset apply; the same on a big store; the RSS of "
	    "merging\n"
	    "many changes.  --cases 1,2,3 picks them.  See bench/README.md.\n");
}

/* merge's own options; what they set is applied by parse_args. */
typedef struct merge_args {
	bench *b;
	unsigned long long edits, overlap, big;
} merge_args;

static int own_arg(void *ctx, const char *a, const char *val)
{
	merge_args *m = ctx;
	unsigned long long v;
	const char *c;

	if (strcmp(a, "--cases") == 0) {
		m->b->cases = 0;
		for (c = val; *c; c++)
			if (*c >= '1' && *c <= '3')
				m->b->cases |= 1 << (*c - '1');
			else if (*c != ',')
				return -1;
		return 0;
	}
	if (strcmp(a, "--hq-edits") == 0 && bench_num_arg(&v, val, 0, 50000) == 0)
		m->edits = v;
	else if (strcmp(a, "--hq-overlap") == 0 &&
	    bench_num_arg(&v, val, 0, 50000) == 0)
		m->overlap = v;
	else if (strcmp(a, "--big-rows") == 0 &&
	    bench_num_arg(&v, val, 1, 14000000) == 0)
		m->big = v;
	else
		return -1;
	return 0;
}

static int parse_args(bench *b, int argc, char **argv)
{
	merge_args m = { b, ~0ULL, ~0ULL, 0 };
	uint32_t chg = 0;
	bench_args a = {
		.seed = &b->opt.seed, .reps = &b->reps, .reps_max = MAX_REPS,
		.quick = &b->quick, .syncctl = &b->syncctl, .schema = &b->schema,
		.results_dir = &b->results_dir, .summary = &b->summary,
		.dir = b->dir, .changes = &chg,
	};
	int rc = bench_parse_args(&a, argc, argv, own_arg, &m, usage);

	if (rc != 0)
		return rc;
	b->custom = m.edits != ~0ULL || m.overlap != ~0ULL || m.big || chg ||
	    b->cases != 7;
	ad_options_size(&b->opt, b->quick, 0);
	if (b->reps == 0)
		b->reps = b->quick ? 1 : 3;
	b->big_rows = m.big ? (uint32_t)m.big : b->opt.base_rows * 15;
	b->mem_changes = chg ? chg : b->opt.base_rows;
	if (b->mem_changes > b->opt.base_rows)
		b->mem_changes = b->opt.base_rows;
	if (b->big_rows <= b->opt.base_rows || b->cases == 0)
		return -1;
	if (m.edits != ~0ULL) {
		b->opt.hq_updates = (uint32_t)m.edits;
		/* 10% on rows the branch touched, as the workload's */
		b->opt.hq_overlap = (uint32_t)(m.edits / 10);
	}
	if (m.overlap != ~0ULL)
		b->opt.hq_overlap = (uint32_t)m.overlap;
	if (b->opt.hq_overlap > b->opt.hq_updates)
		b->opt.hq_overlap = b->opt.hq_updates;
	return 0;
}

int main(int argc, char **argv)
{
	static bench b;
	static peer_t pe;
	ad_options o0;
	char *text = NULL, err[512] = "";
	size_t len = 0;
	FILE *mem;
	int rep, row, tz, rc;

	ad_options_default(&b.opt, 42);
	b.schema = "bench/agency_day.sql";
	b.results_dir = "bench/results";
	b.cases = 7;
	if ((rc = parse_args(&b, argc, argv)) != 0) {
		if (rc < 0)
			usage(stderr);
		return rc < 0 ? 2 : 0;
	}
	for (row = 0; row < NROWS; row++)
		b.res[row].verify = b.res[row].converged = -1;
	if ((b.w = ad_workload_new(&b.opt)) == NULL) {
		fprintf(stderr, "merge: cannot generate the workload\n");
		return 1;
	}
	/* the base rows without a period: case 3 changes every row */
	o0 = b.opt;
	o0.inserts = o0.updates = o0.hot_rows = o0.hot_updates = o0.deletes = 0;
	o0.hq_updates = o0.hq_overlap = 0;
	if ((b.w0 = ad_workload_new(&o0)) == NULL) {
		fprintf(stderr, "merge: cannot generate the workload\n");
		return 1;
	}
	if (bench_scratch(b.dir, "tz-merge", &b.own_dir) < 0) {
		fprintf(stderr, "merge: cannot create scratch directory '%s': "
		    "%s\n", b.dir, strerror(errno));
		return 1;
	}
	if (b.syncctl != NULL && access(b.syncctl, X_OK) < 0) {
		note(&b, "note: no executable '%s': Tazamun skipped\n", b.syncctl);
		b.syncctl = NULL;
	}
	if (b.syncctl != NULL && access(b.schema, R_OK) < 0) {
		note(&b, "note: cannot read schema '%s' (run from the repository "
		    "root or pass --schema): Tazamun skipped\n", b.schema);
		b.syncctl = NULL;
	}
	tz = b.syncctl != NULL;
	setenv("TZ_PASSPHRASE", PASSPHRASE, 1);
	for (row = 0; row < NROWS; row++)
		if (pair_paths(&b, &b.p[row], row == R_PEER ? "peer" :
		    row == R_SMALL ? "small" : row == R_BIG ? "big" : "many") < 0) {
			fprintf(stderr, "merge: path too long under '%s'\n", b.dir);
			return 1;
		}

	/* ---- setup, not timed ---- */
	if (want(&b, 1))
		peer_setup(&b, &pe);
	if (tz && (want(&b, 1) || want(&b, 2) || want(&b, 3))) {
		result *r = &b.res[R_SMALL];
		pair *p = &b.p[R_SMALL];

		r->store_rows = b.opt.base_rows;
		if (tz_enrol(&b, p, r->error, 0, &b.small_commit_secs,
		    &b.small_commit_rss) == 0) {
			double s;

			if (syncctl(&b, err, &s, NULL, NULL, 0, "-C", p->hq,
			    "status", (const char *)NULL) == 0)
				b.status_secs = s;
			if (want(&b, 3))
				tz_mem_setup(&b, p);
			tz_period(&b, p, r->error);
		}
		if (r->error[0] != '\0')
			fail(b.res[R_MEM].error, "%s", r->error);
	}
	if (tz && want(&b, 2)) {
		result *r = &b.res[R_BIG];
		pair *p = &b.p[R_BIG];

		r->store_rows = b.big_rows;
		if (tz_enrol(&b, p, r->error, b.big_rows - b.opt.base_rows,
		    &b.big_commit_secs, &b.big_commit_rss) == 0)
			tz_period(&b, p, r->error);
	}

	/* ---- timed, interleaved ---- */
	for (rep = 0; rep < b.reps; rep++) {
		if (want(&b, 1))
			peer_rep(&b, &pe);
		if (tz && (want(&b, 1) || want(&b, 2)))
			tz_rep(&b, R_SMALL);
		if (tz && want(&b, 2))
			tz_rep(&b, R_BIG);
	}
	if (tz && want(&b, 3))
		tz_rep(&b, R_MEM);
	b.res[R_SMALL].changes = b.res[R_BIG].changes = b.cs_rows;
	if (!want(&b, 1))
		b.res[R_SMALL].changes = b.res[R_BIG].changes = b.w->distinct;
	for (row = R_SMALL; tz && row < NROWS; row++)
		tz_check(&b, row);
	unsetenv("TZ_PASSPHRASE");
	sqlite3_free(pe.cs);

	if ((mem = open_memstream(&text, &len)) == NULL)
		return 1;
	report(&b, mem);
	fclose(mem);
	write_summary(&b);
	bench_publish(text, b.results_dir, "merge", b.custom ? "-custom" :
	    b.quick ? "-quick" : "", b.dir, b.syncctl, b.own_dir, 0);
	free(text);
	ad_workload_free(b.w);
	ad_workload_free(b.w0);
	return 0;
}

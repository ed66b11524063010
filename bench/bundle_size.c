/*
 * bundle_size.c - bytes on the wire per changed row for the branch's
 * offline period of the "agency day" workload (DESIGN.md §10,
 * bench/agency_day.h), Tazamun's bundle against its peers.
 *
 * One run (sizes are deterministic: the same seed gives the same bytes):
 *
 *  peers    the base rows in a fresh database, copied (VACUUM INTO) as the
 *           reference of the base; then, on a new connection, a session
 *           attached to the table and a statement trace record the period
 *           (ad_run_period): the session's changeset (old and new values)
 *           and patchset (new values only), and the SQL text of every
 *           statement the period ran (bound values expanded), each raw and
 *           compressed with zstd -19;
 *  tazamun  syncctl init-hq, schema apply bench/agency_day.sql, the same
 *           base rows loaded into HQ's store.db and committed, branch add
 *           CAS01 (an enrolment bundle), init-branch from it, the same
 *           period on the branch's store.db, then `syncctl -C BR export
 *           --out FILE`: the signed, encrypted bundle's size is the wire.
 *           When a step fails (the commands may not exist yet) the row
 *           says "skipped" with the cause.
 *
 * "Per changed row" is per distinct row whose content differs between
 * the base and the final state: counted with SQL, the symmetric difference
 * of the two tables by key, each key once.
 *
 * The table goes to stdout and, with the machine's description, to
 * bench/results/; progress goes to stderr.  Exit 0 even when a contender
 * fails (a benchmark never fails a build); 2 means a usage error, 1 a
 * setup error.  See bench/README.md.
 */
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include "bench/agency_day.h"
#include "bench/bench.h"

/* DESIGN.md §10: bytes on the wire per changed row, signed and encrypted. */
#define TARGET_BYTES_PER_ROW 25.0
#define ZSTD_LEVEL 19
#define PASSPHRASE "bench-passphrase"

enum { C_PATCHSET, C_SQLTEXT, C_CHANGESET, C_TAZAMUN, NCONTENDERS };

static const char *const contender_name[NCONTENDERS] = {
	"session ext. patchset", "SQL text of the period",
	"session ext. changeset", "Tazamun bundle",
};

typedef struct result {
	size_t raw;                 /* uncompressed bytes (0: not applicable) */
	size_t wire;                /* zstd -19, or the bundle file's size */
	int done;
	char error[512];            /* set when the contender failed */
} result;

typedef struct bench {
	ad_options opt;
	ad_workload *w;
	int quick;
	const char *syncctl;        /* NULL: no Tazamun contender */
	const char *schema;         /* bench/agency_day.sql */
	const char *results_dir;
	const char *summary;        /* --summary FILE: figures for table.c */
	char dir[PATH_MAX];         /* scratch directory */
	int own_dir;                /* dir made by us: removed at the end */
	char note[2048];            /* remarks for the report */
	double row_bytes;           /* mean value bytes of a base row */
	uint32_t changed;           /* rows differing between base and final */
	uint32_t cs_rows;           /* rows in the session changeset */
	uint32_t sql_stmts;         /* statements in the SQL text */
	long long tz_changed;       /* same count on the branch store, -1 */
	long long tz_vs_peer;       /* branch final vs peers' final, -1 */
	result res[NCONTENDERS];
} bench;

BENCH_PRINTF(2, 3)
static void fail(result *r, const char *fmt, ...)
{
	va_list ap;

	if (r->error[0] != '\0')
		return;     /* keep the first cause */
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
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

/* Open a database for the benchmark (WAL, synchronous=NORMAL). */
static sqlite3 *db_open(result *r, const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    ad_configure(db) != SQLITE_OK) {
		fail(r, "cannot open '%s': %s", path,
		    db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

/* Bytes of p[0..n) compressed with zstd at ZSTD_LEVEL; 0 on failure. */
static size_t zstd_size(const void *p, size_t n)
{
	size_t cap = ZSTD_compressBound(n), z;
	void *dst = malloc(cap ? cap : 1);

	z = dst ? ZSTD_compress(dst, cap, p, n, ZSTD_LEVEL) : 0;
	free(dst);
	return dst && !ZSTD_isError(z) ? z : 0;
}

static void sizes(result *r, const void *p, size_t n)
{
	r->raw = n;
	if ((r->wire = zstd_size(p, n)) == 0)
		fail(r, "zstd failed on %zu bytes", n);
	else
		r->done = 1;
}

/* ---- "per changed row": the rows differing between two tables ---- */

/* Distinct keys of job_seekers whose row is in one database and not
 * identical in the other (inserted, deleted or changed), counted once. */
static int diff_rows(result *r, const char *a, const char *b_path,
    long long *out)
{
	static const char count_sql[] =
	    "SELECT count(*) FROM ("
	    " SELECT id FROM (SELECT * FROM main." AD_TABLE
	    "  EXCEPT SELECT * FROM ref." AD_TABLE ")"
	    " UNION"
	    " SELECT id FROM (SELECT * FROM ref." AD_TABLE
	    "  EXCEPT SELECT * FROM main." AD_TABLE "))";
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *attach = sqlite3_mprintf("ATTACH %Q AS ref", b_path);
	int rc;

	*out = -1;
	if (attach == NULL) {
		fail(r, "out of memory");
		return -1;
	}
	if ((rc = sqlite3_open(a, &db)) != SQLITE_OK ||
	    (rc = sqlite3_exec(db, attach, NULL, NULL, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(db, count_sql, -1, &st, NULL)) != SQLITE_OK)
		goto done;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
done:
	if (rc != SQLITE_OK)
		fail(r, "comparing '%s' with '%s': %s", a, b_path,
		    db ? sqlite3_errmsg(db) : "out of memory");
	sqlite3_finalize(st);
	sqlite3_close(db);
	sqlite3_free(attach);
	return rc == SQLITE_OK ? 0 : -1;
}

/* ---- the peers: one period, recorded by a session and a trace ---- */

/* The SQL text of the statements run while the trace is on. */
typedef struct sqltext {
	char *p;
	size_t n, cap;
	uint32_t stmts;
	int oom;
} sqltext;

static int trace_stmt(unsigned type, void *ctx, void *p, void *x)
{
	sqltext *t = ctx;
	char *sql;
	size_t len;

	(void)x;
	if (type != SQLITE_TRACE_STMT || t->oom)
		return 0;
	if ((sql = sqlite3_expanded_sql((sqlite3_stmt *)p)) == NULL) {
		t->oom = 1;
		return 0;
	}
	len = strlen(sql);
	if (t->n + len + 3 > t->cap) {
		size_t cap = t->cap ? t->cap : 1u << 20;
		char *q;

		while (cap < t->n + len + 3)
			cap *= 2;
		if ((q = realloc(t->p, cap)) == NULL) {
			t->oom = 1;
			sqlite3_free(sql);
			return 0;
		}
		t->p = q;
		t->cap = cap;
	}
	memcpy(t->p + t->n, sql, len);
	memcpy(t->p + t->n + len, ";\n", 2);
	t->n += len + 2;
	t->stmts++;
	sqlite3_free(sql);
	return 0;
}

/* Rows in a changeset (one change per row whose content differs). */
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

/* Base rows into DIR/peer.db, copied to DIR/base.db (the reference of the
 * base for the count of changed rows); then the period on a new
 * connection with the session attached and the trace on.  0 or -1. */
static int run_peers(bench *b, char base[PATH_MAX])
{
	result *cs_r = &b->res[C_CHANGESET], *ps_r = &b->res[C_PATCHSET];
	result *sq_r = &b->res[C_SQLTEXT];
	char path[PATH_MAX], *copy = NULL;
	sqlite3 *db = NULL;
	sqlite3_session *s = NULL;
	sqltext text = { NULL, 0, 0, 0, 0 };
	void *cs = NULL, *ps = NULL;
	int ncs = 0, nps = 0, rc;
	long long changed;
	double t0;

	if (bench_pathf(path, sizeof(path), "%s/peer.db", b->dir) < 0 ||
	    bench_pathf(base, PATH_MAX, "%s/base.db", b->dir) < 0) {
		fail(cs_r, "path too long under '%s'", b->dir);
		goto out;
	}
	/* a --dir of an earlier run: start afresh */
	bench_rm_db(path);
	bench_rm_db(base);
	fprintf(stderr, "peers: loading %u base rows\n", b->opt.base_rows);
	if ((db = db_open(cs_r, path)) == NULL)
		goto out;
	if ((copy = sqlite3_mprintf("VACUUM INTO %Q", base)) == NULL) {
		fail(cs_r, "out of memory");
		goto out;
	}
	if ((rc = sqlite3_exec(db, AD_CREATE_SQL, NULL, NULL, NULL)) ||
	    (rc = ad_load_base(db, b->w)) ||
	    (rc = sqlite3_exec(db, copy, NULL, NULL, NULL)) != SQLITE_OK)
		goto sqlerr;
	sqlite3_close(db);
	/* a new connection, as the branch's application would have */
	if ((db = db_open(cs_r, path)) == NULL)
		goto out;
	if ((rc = sqlite3session_create(db, "main", &s)) != SQLITE_OK ||
	    (rc = sqlite3session_attach(s, AD_TABLE)) != SQLITE_OK ||
	    (rc = sqlite3_trace_v2(db, SQLITE_TRACE_STMT, trace_stmt,
	    &text)) != SQLITE_OK)
		goto sqlerr;
	fprintf(stderr, "peers: the period (%zu statements) with a session "
	    "and a statement trace\n", b->w->period.nop);
	t0 = bench_now();
	rc = ad_run_period(db, b->w);
	sqlite3_trace_v2(db, 0, NULL, NULL);
	if (rc != SQLITE_OK)
		goto sqlerr;
	fprintf(stderr, "peers: period %.3f s; changeset, patchset, zstd -%d\n",
	    bench_now() - t0, ZSTD_LEVEL);
	if ((rc = sqlite3session_changeset(s, &ncs, &cs)) != SQLITE_OK ||
	    (rc = sqlite3session_patchset(s, &nps, &ps)) != SQLITE_OK)
		goto sqlerr;
	b->cs_rows = changeset_rows(cs, ncs);
	sizes(cs_r, cs, (size_t)ncs);
	sizes(ps_r, ps, (size_t)nps);
	if (text.oom)
		fail(sq_r, "out of memory tracing the statements");
	else
		sizes(sq_r, text.p, text.n);
	b->sql_stmts = text.stmts;
	goto out;
sqlerr:
	fail(cs_r, "sqlite: %s", sqlite3_errmsg(db));
out:
	sqlite3session_delete(s);
	sqlite3_close(db);
	sqlite3_free(copy);
	sqlite3_free(cs);
	sqlite3_free(ps);
	free(text.p);
	if (cs_r->error[0] != '\0') {
		/* one cause for the three peers */
		fail(ps_r, "%s", cs_r->error);
		fail(sq_r, "%s", cs_r->error);
		ps_r->done = sq_r->done = cs_r->done = 0;
		return -1;
	}
	fprintf(stderr, "peers: counting the rows that differ from the base\n");
	if (diff_rows(cs_r, path, base, &changed) < 0)
		return -1;
	b->changed = (uint32_t)changed;
	if (b->cs_rows != b->changed)
		note(b, "note: the changeset holds %u rows, the tables differ in "
		    "%u\n", b->cs_rows, b->changed);
	return 0;
}

/* ---- the Tazamun contender ---- */

/* Run syncctl with the arguments that follow (NULL ends the list; up to
 * 8), its output appended to DIR/syncctl.log.  0, or -1 with the cause in
 * r->error. */
static int syncctl(bench *b, result *r, ...)
{
	char *argv[10] = { NULL }, log[PATH_MAX], err[512], cmd[256];
	const char *a;
	size_t len = 0;
	double secs;
	va_list ap;
	int n = 0, oom = 0, rc = -1;

	if (bench_pathf(log, sizeof(log), "%s/syncctl.log", b->dir) < 0) {
		fail(r, "path too long under '%s'", b->dir);
		return -1;
	}
	cmd[0] = '\0';
	oom |= (argv[n++] = strdup(b->syncctl)) == NULL;
	va_start(ap, r);
	while ((a = va_arg(ap, const char *)) != NULL && n < 9) {
		oom |= (argv[n++] = strdup(a)) == NULL;
		/* the command for messages, scratch paths by their last name */
		if (strncmp(a, b->dir, strlen(b->dir)) == 0 && strrchr(a, '/'))
			a = strrchr(a, '/') + 1;
		if (len < sizeof(cmd))
			len += (size_t)snprintf(cmd + len, sizeof(cmd) - len,
			    " %s", a);
	}
	va_end(ap);
	if (oom) {
		fail(r, "out of memory");
		goto done;
	}
	fprintf(stderr, "tazamun: syncctl%s\n", cmd);
	if ((rc = bench_spawn(&secs, err, sizeof(err), log, argv)) < 0)
		fail(r, "'syncctl%s' %s", cmd, err);
done:
	while (n-- > 0)
		free(argv[n]);
	return rc;
}

/* Open DIR/store.db; load the base rows, or run the period; close. */
static int tz_db(bench *b, result *r, const char *dir, int period)
{
	char path[PATH_MAX];
	sqlite3 *db;
	int rc;

	if (bench_pathf(path, sizeof(path), "%s/store.db", dir) < 0) {
		fail(r, "path too long under '%s'", dir);
		return -1;
	}
	fprintf(stderr, "tazamun: %s %s/store.db\n", period ? "the period on" :
	    "loading the base rows into", strrchr(dir, '/') + 1);
	if ((db = db_open(r, path)) == NULL)
		return -1;
	rc = period ? ad_run_period(db, b->w) : ad_load_base(db, b->w);
	if (rc != SQLITE_OK)
		fail(r, "sqlite on '%s': %s", path, sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* The flow of DESIGN §8: HQ, enrolment, branch, period, export. */
static void run_tazamun(bench *b, const char *base)
{
	result *r = &b->res[C_TAZAMUN];
	char hq[PATH_MAX], br[PATH_MAX], enrol[PATH_MAX], bundle[PATH_MAX];
	char peer[PATH_MAX], store[PATH_MAX];
	struct stat st;

	if (bench_pathf(hq, sizeof(hq), "%s/hq", b->dir) < 0 ||
	    bench_pathf(br, sizeof(br), "%s/br", b->dir) < 0 ||
	    bench_pathf(enrol, sizeof(enrol), "%s/enrol.tze", b->dir) < 0 ||
	    bench_pathf(bundle, sizeof(bundle), "%s/period.tzb", b->dir) < 0 ||
	    bench_pathf(peer, sizeof(peer), "%s/peer.db", b->dir) < 0 ||
	    bench_pathf(store, sizeof(store), "%s/store.db", br) < 0) {
		fail(r, "path too long under '%s'", b->dir);
		return;
	}
	bench_rm_rf(hq);
	bench_rm_rf(br);
	unlink(enrol);
	unlink(bundle);
	/* the passphrase of the enrolment bundle (branch add, init-branch) */
	setenv("TZ_PASSPHRASE", PASSPHRASE, 1);
	if (syncctl(b, r, "init-hq", hq, NULL) < 0 ||
	    syncctl(b, r, "-C", hq, "schema", "apply", b->schema, NULL) < 0 ||
	    tz_db(b, r, hq, 0) < 0 ||
	    syncctl(b, r, "-C", hq, "commit", "-m", "base", NULL) < 0 ||
	    syncctl(b, r, "-C", hq, "branch", "add", AD_BRANCH, "--out", enrol,
	    NULL) < 0 ||
	    syncctl(b, r, "init-branch", br, "--enroll", enrol, NULL) < 0 ||
	    tz_db(b, r, br, 1) < 0 ||
	    syncctl(b, r, "-C", br, "export", "--out", bundle, NULL) < 0)
		goto done;
	if (stat(bundle, &st) < 0) {
		fail(r, "export wrote no '%s': %s", bundle, strerror(errno));
		goto done;
	}
	r->wire = (size_t)st.st_size;
	r->done = 1;
	/* the branch ran the same period on the same base: check it */
	if (base[0] != '\0' && b->res[C_CHANGESET].done) {
		diff_rows(r, store, base, &b->tz_changed);
		diff_rows(r, store, peer, &b->tz_vs_peer);
		if (b->tz_vs_peer < 0 || b->tz_changed < 0)
			note(b, "note: the branch's store could not be compared "
			    "with the base: %s\n", r->error);
		else if (b->tz_vs_peer != 0)
			note(b, "note: the branch's final " AD_TABLE " differs "
			    "from the peers' in %lld rows (%lld changed from the "
			    "base)\n", b->tz_vs_peer, b->tz_changed);
		r->error[0] = '\0';     /* a check, not the measure */
	}
done:
	unsetenv("TZ_PASSPHRASE");
}

/* ---- the report ---- */

static void report(const bench *b, FILE *f)
{
	const ad_options *o = &b->opt;
	const result *tz = &b->res[C_TAZAMUN];
	double rows = b->changed, tzb = tz->done && rows > 0 ?
	    (double)tz->wire / rows : 0;
	char target[32];
	int c;

	fprintf(f, "agency day: %u base rows, %u ins / %u upd / %u del (%u "
	    "distinct rows touched, %u changed), seed %llu, one run (sizes "
	    "are deterministic)\n", o->base_rows, o->inserts, o->updates,
	    o->deletes, b->w->distinct, b->changed,
	    (unsigned long long)o->seed);
	fprintf(f, "(%.0f bytes of values per row; WAL, synchronous=NORMAL; "
	    "%u statements per transaction; compressed: zstd -%d)\n",
	    b->row_bytes, o->txn, ZSTD_LEVEL);
	/* "÷", "×" and "≤" are 2 or 3 bytes of UTF-8 and one column */
	fprintf(f, "%-28s %10s %10s %9s %12s\n", "bytes on the wire",
	    "raw bytes", "wire bytes", "B/row", "÷ Tazamun");
	for (c = 0; c < NCONTENDERS; c++) {
		const result *r = &b->res[c];
		double per = rows > 0 ? (double)r->wire / rows : 0;
		char raw[32], ratio[32];

		if (c == C_TAZAMUN && b->syncctl == NULL) {
			fprintf(f, "%-28s   skipped (no --syncctl)\n",
			    contender_name[c]);
			continue;
		}
		if (!r->done) {
			fprintf(f, "%-28s   %s (%s)\n", contender_name[c],
			    c == C_TAZAMUN ? "skipped" : "failed",
			    r->error[0] ? r->error : "not run");
			continue;
		}
		if (r->raw != 0)
			snprintf(raw, sizeof(raw), "%zu", r->raw);
		else
			snprintf(raw, sizeof(raw), "-");
		if (tzb > 0)
			snprintf(ratio, sizeof(ratio), "%.2f×", per / tzb);
		else
			snprintf(ratio, sizeof(ratio), "-");
		fprintf(f, "%-28s %10s %10zu %9.1f %*s\n", contender_name[c],
		    raw, r->wire, per, tzb > 0 ? 12 : 11, ratio);
	}
	snprintf(target, sizeof(target), "≤ %.1f", TARGET_BYTES_PER_ROW);
	fprintf(f, "%-29s %10s %10s %11s\n", "Tazamun target (DESIGN §10)",
	    "", "", target);
	if (tz->done)
		fprintf(f, "target: Tazamun %.1f B per changed row (target ≤ "
		    "%.0f B: %s)\n", tzb, TARGET_BYTES_PER_ROW,
		    tzb <= TARGET_BYTES_PER_ROW ? "met" : "NOT met");
	else
		fprintf(f, "target: ≤ %.0f B per changed row: not measured "
		    "(Tazamun %s)\n", TARGET_BYTES_PER_ROW,
		    b->syncctl == NULL ? "not run: no --syncctl" : "skipped");
	if (tz->done)
		fprintf(f, "Tazamun: period.tzb %zu bytes (a branch's first "
		    "export also carries its 64-byte key binding: %.1f B/row "
		    "without it); branch store: %lld rows changed from the "
		    "base, %lld differ from the peers' final state\n",
		    tz->wire, tz->wire > 64 && rows > 0 ?
		    (double)(tz->wire - 64) / rows : 0, b->tz_changed,
		    b->tz_vs_peer);
	if (b->res[C_CHANGESET].done)
		fprintf(f, "peers: one session on the same connection as the "
		    "trace; the changeset holds %u rows; the SQL text is %u "
		    "statements (BEGIN and COMMIT included), %.1f raw B/row\n",
		    b->cs_rows, b->sql_stmts, rows > 0 ?
		    (double)b->res[C_SQLTEXT].raw / rows : 0);
	fputs(b->note, f);
}

/* The figures bench/table.c gathers (--summary; keys in table.c). */
static void write_summary(const bench *b)
{
	const result *tz = &b->res[C_TAZAMUN], *sql = &b->res[C_SQLTEXT];
	double rows = b->changed;

	if (rows <= 0)
		return;
	if (sql->done)
		bench_summary(b->summary, "bytes.sqltext.z19", "%.2f",
		    (double)sql->wire / rows);
	if (tz->done)
		bench_summary(b->summary, "bytes.tazamun", "%.2f",
		    (double)tz->wire / rows);
	else if (b->syncctl != NULL)
		bench_summary(b->summary, "bytes.tazamun", "! %s", tz->error);
	bench_summary(b->summary, "workload.bytes", "%u changed rows",
	    b->changed);
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: bundle_size [--seed N] [--rows N] [--quick] "
	    "[--syncctl PATH]\n"
	    "                   [--schema FILE] [--dir DIR] [--results DIR] "
	    "[--summary FILE]\n"
	    "Bytes on the wire per changed row of the agency-day offline "
	    "period:\n"
	    "session changeset, patchset and SQL text (zstd -19) against "
	    "Tazamun's\n"
	    "bundle (syncctl export).  --quick: 10,000 rows and the period "
	    "scaled to\n"
	    "the rows (1/10).  See bench/README.md.\n");
}

static int parse_args(bench *b, int argc, char **argv)
{
	uint32_t rows = 0;
	bench_args a = {
		.seed = &b->opt.seed, .quick = &b->quick, .syncctl = &b->syncctl,
		.schema = &b->schema, .results_dir = &b->results_dir,
		.summary = &b->summary, .dir = b->dir, .rows = &rows,
	};
	int rc = bench_parse_args(&a, argc, argv, NULL, NULL, usage);

	if (rc != 0)
		return rc;
	ad_options_size(&b->opt, b->quick, rows);
	return 0;
}

/* Mean value bytes of the first 1,000 base rows. */
static double mean_row_bytes(const bench *b)
{
	ad_row row;
	uint32_t n, k = b->opt.base_rows < 1000 ? b->opt.base_rows : 1000;
	size_t sum = 0;

	for (n = 1; n <= k; n++) {
		ad_row_make(&row, b->opt.seed, n, 0);
		sum += ad_row_bytes(&row);
	}
	return (double)sum / k;
}

/* Check the Tazamun inputs up front: one clear cause. */
static void check_syncctl(bench *b)
{
	result *r = &b->res[C_TAZAMUN];

	if (b->syncctl == NULL)
		return;
	if (access(b->syncctl, X_OK) < 0)
		fail(r, "no executable '%s'", b->syncctl);
	else if (access(b->schema, R_OK) < 0)
		fail(r, "cannot read schema '%s' (run from the repository "
		    "root or pass --schema)", b->schema);
}

int main(int argc, char **argv)
{
	static bench b;
	char base[PATH_MAX] = "", *text = NULL;
	size_t len = 0;
	FILE *mem;
	int rc;

	ad_options_default(&b.opt, 42);
	b.schema = "bench/agency_day.sql";
	b.results_dir = "bench/results";
	b.tz_changed = b.tz_vs_peer = -1;
	if ((rc = parse_args(&b, argc, argv)) != 0) {
		if (rc < 0)
			usage(stderr);
		return rc < 0 ? 2 : 0;
	}
	check_syncctl(&b);
	if ((b.w = ad_workload_new(&b.opt)) == NULL) {
		fprintf(stderr, "bundle_size: cannot generate the workload\n");
		return 1;
	}
	b.row_bytes = mean_row_bytes(&b);
	if (bench_scratch(b.dir, "tz-bundle-size", &b.own_dir) < 0) {
		fprintf(stderr, "bundle_size: cannot create scratch directory "
		    "'%s': %s\n", b.dir, strerror(errno));
		ad_workload_free(b.w);
		return 1;
	}
	if (run_peers(&b, base) < 0)
		base[0] = '\0';
	if (b.syncctl != NULL && b.res[C_TAZAMUN].error[0] == '\0')
		run_tazamun(&b, base);
	if (b.syncctl != NULL && !b.res[C_TAZAMUN].done)
		fprintf(stderr, "tazamun: skipped (%s)\n", b.res[C_TAZAMUN].error);
	if ((mem = open_memstream(&text, &len)) == NULL)
		return 1;
	report(&b, mem);
	fclose(mem);
	write_summary(&b);
	bench_publish(text, b.results_dir, "bundle-size", b.quick ? "-quick" :
	    b.opt.base_rows != 100000 ? "-custom" : "", b.dir, b.syncctl,
	    b.own_dir, 0);
	free(text);
	ad_workload_free(b.w);
	return 0;
}

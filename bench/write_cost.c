/*
 * write_cost.c - the branch write cost of change capture and the cost of a
 * commit, on the "agency day" workload (DESIGN.md §10, bench/agency_day.h).
 *
 * For every contender and every repetition: a fresh database holding the
 * base rows (loading them is not timed), then the offline period is timed
 * on a new connection.  Contenders, in one run, interleaved repetition by
 * repetition so that drift of the machine hits all of them alike:
 *
 *  plain    plain SQLite, no capture: the reference (ratio 1.00);
 *  session  the SQLite session extension recording the table; the timed
 *           section ends after sqlite3session_changeset(), whose size is
 *           reported raw and compressed with zstd -3 and -19;
 *  triglog  a minimal peer: a log(seq, tbl, pk, op) table and 3 triggers;
 *  tazamun  a real store (syncctl init-hq + schema apply bench/agency_day.sql)
 *           with the store's own capture triggers; the base rows are loaded
 *           and committed first, so the change log starts empty.
 *
 * Then, on the Tazamun store only, the wall-clock time of the process
 * `syncctl -C DIR commit` after the period, and after updating exactly
 * 1,000 and 10,000 distinct rows in one transaction each.
 *
 * The median of the repetitions is printed as a table on stdout, and
 * written with the machine's description to bench/results/.  A contender
 * that fails is reported in the table; the program still exits 0 (a
 * benchmark never fails a build); 2 means a usage error, 1 a setup error.
 * See bench/README.md.
 */
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include "bench/agency_day.h"
#include "bench/bench.h"

/* Repetitions kept per contender; the median needs no more. */
#define MAX_REPS 15

enum { C_PLAIN, C_SESSION, C_TRIGLOG, C_TAZAMUN, NCONTENDERS };

static const char *const contender_name[NCONTENDERS] = {
	"plain SQLite", "session ext. (changeset)", "trigger log of keys",
	"Tazamun capture",
};

/* The Tazamun commits timed per repetition. */
enum { K_BASE, K_PERIOD, K_1K, K_10K, NCOMMITS };

typedef struct result {
	double write[MAX_REPS];     /* the timed period, seconds */
	double cpu[MAX_REPS];       /* the same, CPU seconds of this process */
	double extra[MAX_REPS];     /* session: of which the changeset */
	double commit[NCOMMITS][MAX_REPS];
	uint32_t commit_rows[NCOMMITS];
	int nrep;
	size_t bytes[2][3];         /* [changeset, patchset][raw, zstd-3, -19] */
	uint32_t changed;           /* session: rows in the changeset */
	char error[512];            /* set when the contender failed */
} result;

typedef struct bench {
	ad_options opt;
	ad_workload *w;
	int reps;
	int quick;
	const char *syncctl;        /* NULL: no Tazamun contender */
	const char *schema;         /* bench/agency_day.sql */
	const char *results_dir;
	const char *summary;        /* --summary FILE: figures for table.c */
	char dir[PATH_MAX];         /* scratch directory */
	int own_dir;                /* dir made by us: removed at the end */
	char note[1024];            /* warnings for the report */
	double row_bytes;           /* mean value bytes of a base row */
	double load[2];             /* 1-minute load average, start and end */
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

/* ---- the SQLite contenders ---- */

static const char triglog_sql[] =
	"CREATE TABLE log(seq INTEGER PRIMARY KEY, tbl TEXT NOT NULL,"
	"  pk TEXT NOT NULL, op TEXT NOT NULL);"
	"CREATE TRIGGER job_seekers_log_i AFTER INSERT ON job_seekers BEGIN"
	"  INSERT INTO log(tbl, pk, op) VALUES ('job_seekers', NEW.id, 'I');"
	" END;"
	"CREATE TRIGGER job_seekers_log_u AFTER UPDATE ON job_seekers BEGIN"
	"  INSERT INTO log(tbl, pk, op) VALUES ('job_seekers', NEW.id, 'U');"
	" END;"
	"CREATE TRIGGER job_seekers_log_d AFTER DELETE ON job_seekers BEGIN"
	"  INSERT INTO log(tbl, pk, op) VALUES ('job_seekers', OLD.id, 'D');"
	" END;";

/* Sizes of a change set: raw, zstd -3, zstd -19 (0 when zstd fails). */
static void zsizes(size_t out[3], const void *p, size_t n)
{
	size_t cap = ZSTD_compressBound(n), z;
	void *dst = malloc(cap ? cap : 1);
	int i, level[2] = { 3, 19 };

	out[0] = n;
	for (i = 0; i < 2; i++) {
		z = dst ? ZSTD_compress(dst, cap, p, n, level[i]) : 0;
		out[1 + i] = dst && !ZSTD_isError(z) ? z : 0;
	}
	free(dst);
}

/* Rows in a changeset: the rows whose content differs between the base
 * and the final state (an update that rewrote the same values is not
 * there; a row inserted then updated is one insert). */
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

/* The timed section of the session contender: record, then serialise. */
static int session_period(bench *b, result *r, sqlite3 *db, int rep)
{
	sqlite3_session *s = NULL;
	void *cs = NULL, *ps = NULL;
	int ncs = 0, nps = 0, rc;
	double t0, t1, t2, c0;

	if ((rc = sqlite3session_create(db, "main", &s)) != SQLITE_OK ||
	    (rc = sqlite3session_attach(s, AD_TABLE)) != SQLITE_OK)
		goto done;
	c0 = bench_cpu_now();
	t0 = bench_now();
	if ((rc = ad_run_period(db, b->w)) != SQLITE_OK)
		goto done;
	t1 = bench_now();
	if ((rc = sqlite3session_changeset(s, &ncs, &cs)) != SQLITE_OK)
		goto done;
	t2 = bench_now();
	r->cpu[rep] = bench_cpu_now() - c0;
	r->write[rep] = t2 - t0;
	r->extra[rep] = t2 - t1;
	/* sizes are deterministic: measure them once, untimed */
	if (rep == 0) {
		r->changed = changeset_rows(cs, ncs);
		zsizes(r->bytes[0], cs, (size_t)ncs);
		if ((rc = sqlite3session_patchset(s, &nps, &ps)) != SQLITE_OK)
			goto done;
		zsizes(r->bytes[1], ps, (size_t)nps);
	}
done:
	sqlite3_free(cs);
	sqlite3_free(ps);
	sqlite3session_delete(s);
	return rc;
}

/* One repetition of plain, session or triglog. */
static void run_sqlite(bench *b, int c, int rep)
{
	result *r = &b->res[c];
	char path[PATH_MAX];
	sqlite3 *db = NULL;
	double t0, c0;
	int rc;

	if (bench_pathf(path, sizeof(path), "%s/c%d-r%d.db", b->dir, c, rep) < 0) {
		fail(r, "path too long under '%s'", b->dir);
		return;
	}
	bench_rm_db(path);
	if ((db = db_open(r, path)) == NULL)
		return;
	if ((rc = sqlite3_exec(db, AD_CREATE_SQL, NULL, NULL, NULL)) ||
	    (rc = ad_load_base(db, b->w)) != SQLITE_OK)
		goto sqlerr;
	sqlite3_close(db);
	/* a new connection with a cold page cache, as for every contender */
	if ((db = db_open(r, path)) == NULL)
		goto done;
	if ((rc = sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL,
	    NULL, NULL)) != SQLITE_OK)
		goto sqlerr;
	if (c == C_TRIGLOG &&
	    (rc = sqlite3_exec(db, triglog_sql, NULL, NULL, NULL)) != SQLITE_OK)
		goto sqlerr;
	if (c == C_SESSION) {
		rc = session_period(b, r, db, rep);
	} else {
		c0 = bench_cpu_now();
		t0 = bench_now();
		rc = ad_run_period(db, b->w);
		r->write[rep] = bench_now() - t0;
		r->cpu[rep] = bench_cpu_now() - c0;
	}
	if (rc != SQLITE_OK)
		goto sqlerr;
	r->nrep = rep + 1;
	goto done;
sqlerr:
	fail(r, "sqlite: %s", sqlite3_errmsg(db));
done:
	sqlite3_close(db);
	bench_rm_db(path);
}

/* ---- the Tazamun contender ---- */

/* Run syncctl with the given arguments (up to 5; NULL ends the list), its
 * output appended to DIR/syncctl.log; *secs is the process's wall-clock
 * time.  Returns 0, or -1 with the cause in r->error. */
static int syncctl(bench *b, result *r, double *secs, const char *a1,
    const char *a2, const char *a3, const char *a4, const char *a5)
{
	const char *in[6] = { b->syncctl, a1, a2, a3, a4, a5 };
	char *argv[7] = { NULL }, log[PATH_MAX], err[512];
	int i, n = 0, rc = -1;

	if (bench_pathf(log, sizeof(log), "%s/syncctl.log", b->dir) < 0) {
		fail(r, "path too long under '%s'", b->dir);
		return -1;
	}
	for (i = 0; i < 6 && in[i] != NULL; i++)
		if ((argv[n++] = strdup(in[i])) == NULL) {
			fail(r, "out of memory");
			goto done;
		}
	if ((rc = bench_spawn(secs, err, sizeof(err), log, argv)) < 0)
		fail(r, "'syncctl %s %s %s' %s", a1, a2 ? a2 : "",
		    a3 ? a3 : "", err);
done:
	for (i = 0; i < n; i++)
		free(argv[i]);
	return rc;
}

/* Warn once when the store's table is not the one the others ran on. */
static void check_ddl(bench *b, sqlite3 *db)
{
	sqlite3_stmt *st = NULL;

	if (strstr(b->note, "DDL") != NULL)
		return;
	if (sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE "
	    "type = 'table' AND name = '" AD_TABLE "'", -1, &st, NULL) ==
	    SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
	    strcmp((const char *)sqlite3_column_text(st, 0), AD_CREATE_SQL))
		snprintf(b->note + strlen(b->note), sizeof(b->note) -
		    strlen(b->note), "note: the store's DDL of " AD_TABLE
		    " differs from AD_CREATE_SQL\n");
	sqlite3_finalize(st);
}

/* What tz_db does on the store's database. */
enum { DB_LOAD, DB_PERIOD, DB_UPDATE };

/* Open DIR/store.db, then load the base rows, or run the period (timed
 * into r->write[rep] and r->cpu[rep]), or update k distinct rows; close.
 * 0 or -1 (the cause in r->error). */
static int tz_db(bench *b, result *r, const char *dir, int what,
    uint32_t k, int rep)
{
	char path[PATH_MAX];
	sqlite3 *db;
	uint32_t changed = 0;
	double t0, c0;
	int rc;

	if (bench_pathf(path, sizeof(path), "%s/store.db", dir) < 0) {
		fail(r, "path too long under '%s'", dir);
		return -1;
	}
	if ((db = db_open(r, path)) == NULL)
		return -1;
	if (what == DB_LOAD) {
		check_ddl(b, db);
		rc = ad_load_base(db, b->w);
	} else if (what == DB_PERIOD) {
		rc = sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL,
		    NULL, NULL);
		c0 = bench_cpu_now();
		t0 = bench_now();
		if (rc == SQLITE_OK)
			rc = ad_run_period(db, b->w);
		r->write[rep] = bench_now() - t0;
		r->cpu[rep] = bench_cpu_now() - c0;
	} else {
		rc = ad_update_distinct(db, b->w, k, (uint64_t)k, &changed);
		if (rc == SQLITE_OK && changed != k)
			fail(r, "updated %u rows, not %u", changed, k);
	}
	if (rc != SQLITE_OK)
		fail(r, "sqlite on '%s': %s", path, sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc == SQLITE_OK && r->error[0] == '\0' ? 0 : -1;
}

/* One repetition of the Tazamun contender and its commits. */
static void run_tazamun(bench *b, int rep)
{
	result *r = &b->res[C_TAZAMUN];
	char dir[PATH_MAX];
	double t, *c = NULL;
	int i;

	if (bench_pathf(dir, sizeof(dir), "%s/tazamun-r%d", b->dir, rep) < 0) {
		fail(r, "path too long under '%s'", b->dir);
		return;
	}
	bench_rm_rf(dir);
	if (syncctl(b, r, &t, "init-hq", dir, NULL, NULL, NULL) < 0 ||
	    syncctl(b, r, &t, "-C", dir, "schema", "apply", b->schema) < 0 ||
	    tz_db(b, r, dir, DB_LOAD, 0, rep) < 0 ||
	    syncctl(b, r, &r->commit[K_BASE][rep], "-C", dir, "commit", "-m",
	    "base rows") < 0 ||
	    tz_db(b, r, dir, DB_PERIOD, 0, rep) < 0 ||
	    syncctl(b, r, &r->commit[K_PERIOD][rep], "-C", dir, "commit",
	    "-m", "offline period") < 0)
		goto done;
	r->commit_rows[K_BASE] = b->opt.base_rows;
	r->commit_rows[K_PERIOD] = b->w->distinct;
	for (i = 0; i < 2; i++) {
		uint32_t k = i == 0 ? 1000 : 10000;

		/* fewer rows exist with a tiny --rows */
		for (; k > b->w->nrows - b->opt.deletes; k /= 2)
			;
		c = &r->commit[i == 0 ? K_1K : K_10K][rep];
		if (tz_db(b, r, dir, DB_UPDATE, k, rep) < 0 ||
		    syncctl(b, r, c, "-C", dir, "commit", "-m", "updates") < 0)
			goto done;
		r->commit_rows[i == 0 ? K_1K : K_10K] = k;
	}
	r->nrep = rep + 1;
done:
	if (r->error[0] == '\0')
		bench_rm_rf(dir);     /* a failed store is kept for inspection */
}

/* ---- the report ---- */

static void fmt_bytes(char *out, size_t cap, size_t n)
{
	if (n == 0)
		snprintf(out, cap, "-");
	else
		snprintf(out, cap, "%zu", n);
}

static void report_writes(const bench *b, FILE *f)
{
	double ref = bench_median(b->res[C_PLAIN].write, b->res[C_PLAIN].nrep);
	int c;

	fprintf(f, "%-28s %8s %8s %15s %10s %9s\n", "contender", "write s",
	    "ratio", "changes bytes", "zstd-3", "zstd-19");
	for (c = 0; c < NCONTENDERS; c++) {
		const result *r = &b->res[c];
		double m = bench_median(r->write, r->nrep);
		char raw[32], z3[32], z19[32];

		if (c == C_TAZAMUN && b->syncctl == NULL)
			continue;
		if (r->nrep == 0) {
			fprintf(f, "%-28s   failed: %s\n", contender_name[c],
			    r->error[0] ? r->error : "not run");
			continue;
		}
		fmt_bytes(raw, sizeof(raw), r->bytes[0][0]);
		fmt_bytes(z3, sizeof(z3), r->bytes[0][1]);
		fmt_bytes(z19, sizeof(z19), r->bytes[0][2]);
		/* "×" is 2 bytes of UTF-8 and one column */
		fprintf(f, "%-28s %8.3f %7.2f× %15s %10s %9s\n",
		    contender_name[c], m, ref > 0 ? m / ref : 0, raw, z3, z19);
	}
}

static void report_details(const bench *b, FILE *f)
{
	static const char *const short_name[NCONTENDERS] = {
		"plain", "session", "triglog", "tazamun"
	};
	const result *s = &b->res[C_SESSION];
	double cpu_ref = bench_median(b->res[C_PLAIN].cpu, b->res[C_PLAIN].nrep);
	double best_ref = bench_least(b->res[C_PLAIN].write, b->res[C_PLAIN].nrep);
	int c, i;

	if (s->nrep > 0 && s->changed > 0) {
		fprintf(f, "session ext.: changeset generation %.3f s of the "
		    "write time; %u changed rows; per changed row zstd-19: "
		    "changeset %.1f B, patchset %.1f B (patchset %zu bytes, "
		    "zstd-3 %zu, zstd-19 %zu)\n", bench_median(s->extra, s->nrep),
		    s->changed, (double)s->bytes[0][2] / s->changed,
		    (double)s->bytes[1][2] / s->changed, s->bytes[1][0],
		    s->bytes[1][1], s->bytes[1][2]);
	}
	fprintf(f, "cpu s (median, this process):");
	for (c = 0; c < NCONTENDERS; c++) {
		if (b->res[c].nrep == 0)
			continue;
		fprintf(f, " %s %.3f (%.2f×)", short_name[c],
		    bench_median(b->res[c].cpu, b->res[c].nrep),
		    bench_median(b->res[c].cpu, b->res[c].nrep) / cpu_ref);
	}
	fprintf(f, "\nbest of %d runs (s):", b->reps);
	for (c = 0; c < NCONTENDERS; c++) {
		if (b->res[c].nrep == 0)
			continue;
		fprintf(f, " %s %.3f (%.2f×)", short_name[c],
		    bench_least(b->res[c].write, b->res[c].nrep),
		    bench_least(b->res[c].write, b->res[c].nrep) / best_ref);
	}
	fprintf(f, "\nload average: %.2f at the start, %.2f at the end\n",
	    b->load[0], b->load[1]);
	fprintf(f, "runs (s):");
	for (c = 0, i = 0; c < NCONTENDERS; c++) {
		if (b->res[c].nrep == 0)
			continue;
		fprintf(f, "%s %s", i++ ? ";" : "", short_name[c]);
		bench_print_runs(f, b->res[c].write, b->res[c].nrep);
	}
	fprintf(f, "\n");
}

static void report_commits(const bench *b, FILE *f)
{
	static const char *const what[NCOMMITS] = {
		"Tazamun commit (base rows)", "Tazamun commit (period)",
		"Tazamun commit", "Tazamun commit",
	};
	static const int order[NCOMMITS] = { K_1K, K_10K, K_PERIOD, K_BASE };
	const result *r = &b->res[C_TAZAMUN];
	int i, k;

	if (b->syncctl == NULL) {
		fprintf(f, "commit: not measured: no --syncctl given (contender "
		    "Tazamun and the commit timings need a built syncctl)\n");
		return;
	}
	fprintf(f, "%-28s %8s %8s\n", "commit", "rows", "seconds");
	if (r->nrep == 0) {
		fprintf(f, "%-28s   failed: %s\n", "Tazamun commit", r->error);
		return;
	}
	for (i = 0; i < NCOMMITS; i++) {
		k = order[i];
		fprintf(f, "%-28s %8u %8.3f%s\n", what[k], r->commit_rows[k],
		    bench_median(r->commit[k], r->nrep),
		    k == K_BASE ? "   (first commit of a tracked table: bulk; "
		    "untimed in the write figures)" : "");
	}
	fprintf(f, "commit runs (s):");
	for (i = 0; i < NCOMMITS; i++) {
		k = order[i];
		fprintf(f, "%s %u rows", i ? ";" : "", r->commit_rows[k]);
		bench_print_runs(f, r->commit[k], r->nrep);
	}
	fprintf(f, "\n");
}

static void report_targets(const bench *b, FILE *f)
{
	const result *t = &b->res[C_TAZAMUN], *p = &b->res[C_PLAIN];
	double ratio, c1k;

	if (t->nrep == 0 || p->nrep == 0)
		return;
	ratio = bench_median(t->write, t->nrep) / bench_median(p->write, p->nrep);
	c1k = bench_median(t->commit[K_1K], t->nrep);
	fprintf(f, "targets: write %.2f× plain SQLite (target ≤ 1.15×: %s); "
	    "commit of %u rows %.3f s (target ≤ 0.3 s: %s)\n", ratio,
	    ratio <= 1.15 ? "met" : "NOT met", t->commit_rows[K_1K], c1k,
	    c1k <= 0.3 ? "met" : "NOT met");
}

/* The whole report, as printed and as written to results/. */
static void report(const bench *b, FILE *f)
{
	const ad_options *o = &b->opt;

	fprintf(f, "agency day: %u base rows, %u ins / %u upd / %u del (%u "
	    "distinct rows), seed %llu, median of %d\n", o->base_rows,
	    o->inserts, o->updates, o->deletes, b->w->distinct,
	    (unsigned long long)o->seed, b->reps);
	fprintf(f, "(%.0f bytes of values per row; WAL, synchronous=NORMAL; "
	    "%u statements per transaction)\n", b->row_bytes, o->txn);
	report_writes(b, f);
	report_commits(b, f);
	report_targets(b, f);
	report_details(b, f);
	fputs(b->note, f);
}

/* The figures bench/table.c gathers (--summary; keys in table.c). */
static void write_summary(const bench *b)
{
	static const char *const key[NCONTENDERS] = {
		"plain", "session", "triglog", "tazamun"
	};
	static const char *const form[2] = { "changeset", "patchset" };
	static const char *const level[3] = { "raw", "z3", "z19" };
	const result *p = &b->res[C_PLAIN], *s = &b->res[C_SESSION];
	const result *t = &b->res[C_TAZAMUN];
	double ref = bench_median(p->write, p->nrep);
	char k[64];
	int c, i, j;

	for (c = 0; c < NCONTENDERS; c++) {
		const result *r = &b->res[c];
		double m = bench_median(r->write, r->nrep);

		if (c == C_TAZAMUN && b->syncctl == NULL)
			continue;
		snprintf(k, sizeof(k), "write.%s", key[c]);
		if (r->nrep == 0 || ref <= 0) {
			bench_summary(b->summary, k, "! %s", r->error[0] ?
			    r->error : "plain SQLite failed");
			continue;
		}
		bench_summary(b->summary, k, "%.4f", m / ref);
	}
	for (i = 0; s->nrep > 0 && s->changed > 0 && i < 2; i++)
		for (j = 0; j < 3; j++) {
			snprintf(k, sizeof(k), "bytes.%s.%s", form[i], level[j]);
			bench_summary(b->summary, k, "%.2f",
			    (double)s->bytes[i][j] / s->changed);
		}
	if (b->syncctl != NULL && t->nrep > 0)
		bench_summary(b->summary, "commit1k.tazamun", "%.4f",
		    bench_median(t->commit[K_1K], t->nrep));
	else if (b->syncctl != NULL)
		bench_summary(b->summary, "commit1k.tazamun", "! %s", t->error);
	bench_summary(b->summary, "workload.write", "%u base rows, %u ins / %u "
	    "upd / %u del, median of %d", b->opt.base_rows, b->opt.inserts,
	    b->opt.updates, b->opt.deletes, b->reps);
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: write_cost [--seed N] [--rows N] [--reps N] "
	    "[--quick] [--syncctl PATH]\n"
	    "                  [--schema FILE] [--dir DIR] [--results DIR] "
	    "[--summary FILE]\n");
}

static int parse_args(bench *b, int argc, char **argv)
{
	uint32_t rows = 0;
	bench_args a = {
		.seed = &b->opt.seed, .reps = &b->reps, .reps_max = MAX_REPS,
		.quick = &b->quick, .syncctl = &b->syncctl, .schema = &b->schema,
		.results_dir = &b->results_dir, .summary = &b->summary,
		.dir = b->dir, .rows = &rows,
	};
	int rc = bench_parse_args(&a, argc, argv, NULL, NULL, usage);

	if (rc != 0)
		return rc;
	ad_options_size(&b->opt, b->quick, rows);
	if (b->reps == 0)
		b->reps = b->quick ? 1 : 3;
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

/* Check the Tazamun inputs up front: a clear note instead of 3 failures. */
static void check_syncctl(bench *b)
{
	if (b->syncctl == NULL) {
		snprintf(b->note, sizeof(b->note), "note: no --syncctl: contender "
		    "Tazamun and the commit timings skipped\n");
	} else if (access(b->syncctl, X_OK) < 0) {
		snprintf(b->note, sizeof(b->note), "note: '%s' is not an "
		    "executable: contender Tazamun skipped\n", b->syncctl);
		fail(&b->res[C_TAZAMUN], "no executable '%s'", b->syncctl);
	} else if (access(b->schema, R_OK) < 0) {
		fail(&b->res[C_TAZAMUN], "cannot read schema '%s' (run from the "
		    "repository root or pass --schema)", b->schema);
	}
}

/* Repetition by repetition, each starting with the next contender, so
 * that no contender always runs first or right after another. */
static void run_all(bench *b)
{
	int rep, i, c;

	for (rep = 0; rep < b->reps; rep++) {
		for (i = 0; i < NCONTENDERS; i++) {
			result *r = &b->res[c = (rep + i) % NCONTENDERS];

			/* a failed contender is not retried: its error stands */
			if (r->error[0] != '\0' || r->nrep != rep ||
			    (c == C_TAZAMUN && b->syncctl == NULL))
				continue;
			fprintf(stderr, "rep %d/%d: %-26s ", rep + 1, b->reps,
			    contender_name[c]);
			if (c == C_TAZAMUN)
				run_tazamun(b, rep);
			else
				run_sqlite(b, c, rep);
			if (r->nrep == rep + 1)
				fprintf(stderr, "%.3f s\n", r->write[rep]);
			else
				fprintf(stderr, "failed: %s\n", r->error);
		}
	}
}

int main(int argc, char **argv)
{
	static bench b;
	char *text = NULL;
	size_t len = 0;
	FILE *mem;
	int rc;

	ad_options_default(&b.opt, 42);
	b.schema = "bench/agency_day.sql";
	b.results_dir = "bench/results";
	if ((rc = parse_args(&b, argc, argv)) != 0) {
		if (rc < 0)
			usage(stderr);
		return rc < 0 ? 2 : 0;
	}
	check_syncctl(&b);
	if ((b.w = ad_workload_new(&b.opt)) == NULL) {
		fprintf(stderr, "write_cost: cannot generate the workload\n");
		return 1;
	}
	b.row_bytes = mean_row_bytes(&b);
	if (bench_scratch(b.dir, "tz-write-cost", &b.own_dir) < 0) {
		fprintf(stderr, "write_cost: cannot create scratch directory "
		    "'%s': %s\n", b.dir, strerror(errno));
		ad_workload_free(b.w);
		return 1;
	}
	if (getloadavg(&b.load[0], 1) < 1)
		b.load[0] = -1;
	run_all(&b);
	if (getloadavg(&b.load[1], 1) < 1)
		b.load[1] = -1;
	if ((mem = open_memstream(&text, &len)) == NULL)
		return 1;
	report(&b, mem);
	fclose(mem);
	write_summary(&b);
	/* a failed Tazamun step keeps its store and syncctl.log */
	bench_publish(text, b.results_dir, "write-cost", b.quick ? "-quick" :
	    b.opt.base_rows != 100000 ? "-custom" : "", b.dir, b.syncctl,
	    b.own_dir, b.res[C_TAZAMUN].error[0] != '\0');
	free(text);
	ad_workload_free(b.w);
	return 0;
}

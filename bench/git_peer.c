/*
 * git_peer.c - git as a sync engine for the "agency day" (DESIGN.md §10,
 * bench/agency_day.h): every row a file (one `column=value` line per
 * non-NULL column, at job_seekers/<2 hex of FNV-1a(key)>/<key>), written
 * with `git fast-import`, shipped with `git bundle`, merged at HQ with
 * `git fetch` + `git merge-tree --write-tree` (git's line-based three-way
 * merge of each row file).  The peer DESIGN §10 quotes at 378 B per
 * changed row, ≈ 5× the session apply, and 2.1 s for a commit of 8,000
 * rows.
 *
 *  bytes    `git bundle create` of the period's commit (main ^base), per
 *           changed row (rows differing between the base and the period's
 *           final state, counted with SQL);
 *  merge    HQ's repository holds the base and a commit of its concurrent
 *           updates; timed, on a fresh copy per repetition: `git fetch` of
 *           the bundle + `git merge-tree`, wall time of both processes;
 *           conflicts: the row files merge-tree could not merge;
 *  commit   `git fast-import` of a commit of 1,000 dirty rows on top of the
 *           period (the stream is written before the clock starts);
 *  memory   the same merge with --changes distinct changed rows (default
 *           every base row): the larger peak RSS of fetch and merge-tree.
 *
 * The rows come from SQLite databases the workload builds (base, base +
 * period, base + HQ's updates), so every contender sees the same values.
 * The report goes to stdout and bench/results/; --summary appends the
 * figures bench/table.c gathers; exit 0 even when a step fails (the report
 * says which), 2 on a usage error, 1 when the program cannot start.
 */
#include "bench/agency_day.h"
#include "bench/bench.h"

#define MAX_REPS 9
#define ERR_CAP 512
/* a fixed committer: the same stream gives the same commit everywhere */
#define COMMITTER "committer bench <bench@tazamun.invalid> 1700000000 +0000\n"

typedef struct bench {
	ad_options opt;
	ad_workload *w, *w0;        /* the period; base rows only */
	int quick, reps;
	uint32_t mem_changes;
	const char *results_dir, *summary;
	char dir[PATH_MAX];
	int own_dir;
	char err[ERR_CAP];
	char version[128];
	char log[PATH_MAX];         /* every git command's stderr */
	long long changed;          /* rows the period changed */
	long bundle_bytes;
	double merge[MAX_REPS];
	long merge_rss;
	int nm;
	long conflicts;             /* row files merge-tree left in conflict */
	double commit1k[MAX_REPS];
	int nc;
	double period_commit;       /* fast-import of the period, for the record */
	double mem_secs;
	long mem_rss, mem_conflicts;
	uint32_t mem_changed;
} bench;

/* ---- running git ---- */

/* git with up to 9 arguments (NULL-terminated); stdin from `in`, stdout
 * into `out` (NULL: the log).  Returns bench_run's status (1: git's "yes,
 * but", merge-tree's conflicts); *secs and *rss (may be NULL) set. */
static int git(bench *b, double *secs, long *rss, const char *in,
    const char *out, ...)
{
	char *argv[12] = { (char *)"git" };
	const char *a;
	double s;
	va_list ap;
	int n = 1, rc;

	va_start(ap, out);
	while ((a = va_arg(ap, const char *)) != NULL && n < 11)
		argv[n++] = (char *)(uintptr_t)a;
	va_end(ap);
	if (b->err[0] != '\0')
		return -1;
	rc = bench_run(&s, rss, b->err, ERR_CAP, in, out, b->log, argv);
	if (secs != NULL)
		*secs = s;
	return rc;
}

#define GIT(b, ...) git((b), NULL, NULL, NULL, NULL, __VA_ARGS__, \
	(const char *)NULL)

/* ---- databases ---- */

static sqlite3 *db_open(bench *b, const char *path)
{
	sqlite3 *db = NULL;

	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    ad_configure(db) != SQLITE_OK) {
		snprintf(b->err, ERR_CAP, "cannot open '%.300s': %s", path,
		    db ? sqlite3_errmsg(db) : "out of memory");
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

/* A copy of src at dst, optionally changed by fn (the period, HQ's
 * updates, distinct rows). */
typedef int (*db_fn)(bench *b, sqlite3 *db, void *arg);

static int derive(bench *b, const char *src, const char *dst, db_fn fn,
    void *arg)
{
	sqlite3 *db;
	int rc;

	if (b->err[0] || (db = db_open(b, src)) == NULL)
		return -1;
	rc = bench_db_snapshot(b->err, ERR_CAP, db, dst);
	sqlite3_close(db);
	if (rc < 0 || fn == NULL || (db = db_open(b, dst)) == NULL)
		return rc < 0 ? -1 : fn == NULL ? 0 : -1;
	if ((rc = fn(b, db, arg)) < 0 && b->err[0] == '\0')
		snprintf(b->err, ERR_CAP, "sqlite: %s", sqlite3_errmsg(db));
	sqlite3_close(db);
	return rc;
}

static int fn_period(bench *b, sqlite3 *db, void *arg)
{
	(void)arg;
	return ad_run_period(db, b->w) == SQLITE_OK ? 0 : -1;
}

static int fn_hq(bench *b, sqlite3 *db, void *arg)
{
	(void)arg;
	return ad_run_hq(db, b->w) == SQLITE_OK ? 0 : -1;
}

/* arg: { workload, rows, salt }; the rows really changed go to b. */
typedef struct distinct_arg {
	const ad_workload *w;
	uint32_t rows, salt, changed;
} distinct_arg;

static int fn_distinct(bench *b, sqlite3 *db, void *arg)
{
	distinct_arg *d = arg;

	(void)b;
	return ad_update_distinct(db, d->w, d->rows, d->salt, &d->changed) ==
	    SQLITE_OK ? 0 : -1;
}

static int make_base(bench *b, const char *path)
{
	sqlite3 *db;
	int rc = -1;

	bench_rm_db(path);
	if ((db = db_open(b, path)) == NULL)
		return -1;
	if (bench_db_exec(b->err, ERR_CAP, db, AD_CREATE_SQL) == 0) {
		if (ad_load_base(db, b->w) == SQLITE_OK)
			rc = 0;
		else
			snprintf(b->err, ERR_CAP, "sqlite: base rows: %s",
			    sqlite3_errmsg(db));
	}
	sqlite3_close(db);
	return rc;
}

/* ---- fast-import streams ---- */

static void row_path(char *out, size_t cap, const unsigned char *key, int n)
{
	uint32_t h = 2166136261u;
	int i;

	for (i = 0; i < n; i++)
		h = (h ^ key[i]) * 16777619u;
	snprintf(out, cap, AD_TABLE "/%02x/%.*s", h & 0xffu, n,
	    (const char *)key);
}

/* One row as a file: `column=value` lines, NULL columns left out. */
static void row_file(FILE *f, sqlite3_stmt *st, char *buf, size_t cap)
{
	size_t len = 0;
	int c;

	for (c = 1; c < AD_NCOLS && len < cap; c++)
		if (sqlite3_column_type(st, c) != SQLITE_NULL)
			len += (size_t)snprintf(buf + len, cap - len, "%s=%s\n",
			    ad_column[c], (const char *)sqlite3_column_text(st, c));
	if (len > cap)
		len = cap;
	fprintf(f, "data %zu\n", len);
	fwrite(buf, 1, len, f);
	fputc('\n', f);
}

/*
 * A fast-import stream at `path`: one commit on refs/heads/REF (parent
 * FROM, or none) holding the rows of the database `db_path` that differ
 * from those of `old` (NULL: all rows), and deleting the keys `old` has
 * and db_path has not.  With tag_base, refs/heads/base is set to it.
 */
static int write_stream(bench *b, const char *path, const char *db_path,
    const char *old, const char *ref, const char *from, int tag_base)
{
	char sql[512], p[128], buf[AD_ROW_MAX * 2];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	FILE *f = fopen(path, "w");
	int rc, pass;

	if (f == NULL || (db = db_open(b, db_path)) == NULL)
		goto fail;
	fprintf(f, "commit refs/heads/%s\n" COMMITTER "data 5\nrows\n", ref);
	if (from != NULL)
		fprintf(f, "from %s\n", from);
	if (old != NULL) {
		char *a = sqlite3_mprintf("ATTACH %Q AS old", old);

		rc = a ? bench_db_exec(b->err, ERR_CAP, db, a) : -1;
		sqlite3_free(a);
		if (rc < 0)
			goto fail;
	}
	for (pass = 0; pass < (old ? 2 : 1); pass++) {
		snprintf(sql, sizeof(sql), pass == 0 ? (old ? "SELECT * FROM "
		    "main.%s EXCEPT SELECT * FROM old.%s" : "SELECT * FROM %s") :
		    "SELECT id FROM old.%s EXCEPT SELECT id FROM main.%s",
		    AD_TABLE, AD_TABLE);
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
			goto sqlerr;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			row_path(p, sizeof(p), sqlite3_column_text(st, 0),
			    sqlite3_column_bytes(st, 0));
			fprintf(f, "%s %s\n", pass == 0 ? "M 100644 inline" : "D", p);
			if (pass == 0)
				row_file(f, st, buf, sizeof(buf));
		}
		if (rc != SQLITE_DONE)
			goto sqlerr;
		sqlite3_finalize(st);
		st = NULL;
	}
	fprintf(f, "\n");
	if (tag_base)
		fprintf(f, "reset refs/heads/base\nfrom refs/heads/%s\n\n", ref);
	sqlite3_close(db);
	if (fclose(f) != 0) {
		f = NULL;
		goto fail;
	}
	return 0;
sqlerr:
	snprintf(b->err, ERR_CAP, "sqlite: %s", sqlite3_errmsg(db));
fail:
	if (b->err[0] == '\0')
		snprintf(b->err, ERR_CAP, "cannot write '%.300s': %s", path,
		    strerror(errno));
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (f != NULL)
		fclose(f);
	return -1;
}

/* fast-import of a stream into a repository; *secs its wall time. */
static int import(bench *b, const char *repo, const char *stream, double *secs)
{
	return git(b, secs, NULL, stream, NULL, "-C", repo, "fast-import",
	    "--quiet", (const char *)NULL) == 0 ? 0 : -1;
}

/* ---- the runs ---- */

typedef struct paths {
	char base[PATH_MAX], branch[PATH_MAX], hq[PATH_MAX];
	char br_git[PATH_MAX], hq_git[PATH_MAX], run_git[PATH_MAX];
	char stream[PATH_MAX], bundle[PATH_MAX], many_bundle[PATH_MAX];
	char scratch_db[PATH_MAX], out[PATH_MAX];
} paths;

static int make_paths(bench *b, paths *p)
{
	const char *d = b->dir;

	return bench_pathf(p->base, PATH_MAX, "%s/base.db", d) < 0 ||
	    bench_pathf(p->branch, PATH_MAX, "%s/branch.db", d) < 0 ||
	    bench_pathf(p->hq, PATH_MAX, "%s/hq.db", d) < 0 ||
	    bench_pathf(p->br_git, PATH_MAX, "%s/br.git", d) < 0 ||
	    bench_pathf(p->hq_git, PATH_MAX, "%s/hq.git", d) < 0 ||
	    bench_pathf(p->run_git, PATH_MAX, "%s/hq-run.git", d) < 0 ||
	    bench_pathf(p->stream, PATH_MAX, "%s/stream.fi", d) < 0 ||
	    bench_pathf(p->bundle, PATH_MAX, "%s/period.bundle", d) < 0 ||
	    bench_pathf(p->many_bundle, PATH_MAX, "%s/many.bundle", d) < 0 ||
	    bench_pathf(p->scratch_db, PATH_MAX, "%s/scratch.db", d) < 0 ||
	    bench_pathf(p->out, PATH_MAX, "%s/merge-tree.out", d) < 0 ||
	    bench_pathf(b->log, PATH_MAX, "%s/git.log", d) < 0 ? -1 : 0;
}

/* The databases; both repositories with the base (the same commit: the
 * same stream), the branch's period and HQ's updates committed; the
 * period's bundle. */
static int setup(bench *b, paths *p)
{
	struct stat st;
	long long n;
	sqlite3 *db;

	fprintf(stderr, "git: databases, repositories, the period's bundle\n");
	if (make_base(b, p->base) < 0 ||
	    derive(b, p->base, p->branch, fn_period, NULL) < 0 ||
	    derive(b, p->base, p->hq, fn_hq, NULL) < 0 ||
	    (db = db_open(b, p->branch)) == NULL)
		return -1;
	n = bench_changed_rows(b->err, ERR_CAP, db, p->base, AD_TABLE, "id");
	sqlite3_close(db);
	if ((b->changed = n) <= 0)
		return -1;
	bench_rm_rf(p->br_git);
	bench_rm_rf(p->hq_git);
	if (GIT(b, "init", "-q", "--bare", p->br_git) != 0 ||
	    GIT(b, "init", "-q", "--bare", p->hq_git) != 0 ||
	    write_stream(b, p->stream, p->base, NULL, "main", NULL, 1) < 0 ||
	    import(b, p->br_git, p->stream, NULL) < 0 ||
	    import(b, p->hq_git, p->stream, NULL) < 0 ||
	    write_stream(b, p->stream, p->branch, p->base, "main",
	    "refs/heads/main^0", 0) < 0 ||
	    import(b, p->br_git, p->stream, &b->period_commit) < 0 ||
	    write_stream(b, p->stream, p->hq, p->base, "main",
	    "refs/heads/main^0", 0) < 0 ||
	    import(b, p->hq_git, p->stream, NULL) < 0 ||
	    GIT(b, "-C", p->br_git, "bundle", "create", "-q", p->bundle, "main",
	    "^base") != 0)
		return -1;
	if (stat(p->bundle, &st) < 0) {
		snprintf(b->err, ERR_CAP, "no bundle: %s", strerror(errno));
		return -1;
	}
	b->bundle_bytes = (long)st.st_size;
	return 0;
}

/* Lines of a file after the first (merge-tree --name-only: the tree, then
 * one conflicted path per line). */
static long lines_after_first(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");
	long n = -1;

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (line[0] != '\n')
			n++;
	if (f != NULL)
		fclose(f);
	return n < 0 ? 0 : n;
}

/* On a fresh copy of HQ's repository: fetch the bundle's `ref` and
 * merge-tree it with `ours`.  *secs: both processes; *rss: the larger peak;
 * *conflicts: the row files left in conflict. */
static int merge_once(bench *b, paths *p, const char *bundle,
    const char *ours, const char *ref, double *secs, long *rss,
    long *conflicts)
{
	char *cp[] = { (char *)"cp", (char *)"-a", p->hq_git, p->run_git, NULL };
	char spec[64];
	double s1, s2, s0;
	long r1 = 0, r2 = 0;
	int rc;

	bench_rm_rf(p->run_git);
	snprintf(spec, sizeof(spec), "%s:refs/heads/theirs", ref);
	if (bench_run(&s0, NULL, b->err, ERR_CAP, NULL, NULL, b->log, cp) != 0 ||
	    git(b, &s1, &r1, NULL, NULL, "-C", p->run_git, "fetch", "-q",
	    bundle, spec, (const char *)NULL) != 0)
		return -1;
	rc = git(b, &s2, &r2, NULL, p->out, "-C", p->run_git, "merge-tree",
	    "--write-tree", "--name-only", "--no-messages", ours, "theirs",
	    (const char *)NULL);
	if (rc < 0)
		return -1;
	*secs = s1 + s2;
	*rss = r1 > r2 ? r1 : r2;
	*conflicts = rc == 1 ? lines_after_first(p->out) : 0;
	return 0;
}

static void run_merge(bench *b, paths *p)
{
	double s;
	long rss;
	int rep;

	for (rep = 0; rep < b->reps && b->err[0] == '\0'; rep++) {
		fprintf(stderr, "git: fetch + merge-tree, rep %d/%d\n", rep + 1,
		    b->reps);
		if (merge_once(b, p, p->bundle, "main", "main", &s, &rss,
		    &b->conflicts) == 0) {
			b->merge[b->nm++] = s;
			if (rss > b->merge_rss)
				b->merge_rss = rss;
		}
	}
}

/* fast-import of 1,000 dirty rows on top of the period (other values in
 * each repetition); the stream is written before the clock starts. */
static void run_commit(bench *b, paths *p)
{
	distinct_arg d = { b->w, 1000, 0, 0 };
	char ref[32];
	int rep;

	if (d.rows > b->opt.base_rows / 2)
		d.rows = b->opt.base_rows / 2;
	for (rep = 0; rep < b->reps && b->err[0] == '\0'; rep++) {
		fprintf(stderr, "git: commit of %u dirty rows, rep %d/%d\n",
		    d.rows, rep + 1, b->reps);
		d.salt = 3 + (uint32_t)rep;
		snprintf(ref, sizeof(ref), "dirty%d", rep);
		if (derive(b, p->branch, p->scratch_db, fn_distinct, &d) < 0 ||
		    write_stream(b, p->stream, p->scratch_db, p->branch, ref,
		    "refs/heads/main^0", 0) < 0 ||
		    import(b, p->br_git, p->stream, &b->commit1k[b->nc]) < 0)
			return;
		b->nc++;
	}
}

/* mem_changes distinct rows changed from the base, committed, bundled,
 * merged at HQ: time and peak RSS. */
static void run_memory(bench *b, paths *p)
{
	distinct_arg d = { b->w0, b->mem_changes, 1, 0 };

	fprintf(stderr, "git: %u distinct rows changed, bundled, merged\n",
	    b->mem_changes);
	if (derive(b, p->base, p->scratch_db, fn_distinct, &d) < 0 ||
	    write_stream(b, p->stream, p->scratch_db, p->base, "many",
	    "refs/heads/base^0", 0) < 0 ||
	    import(b, p->br_git, p->stream, NULL) < 0 ||
	    GIT(b, "-C", p->br_git, "bundle", "create", "-q", p->many_bundle,
	    "many", "^base") != 0)
		return;
	b->mem_changed = d.changed;
	/* at HQ's base, as merge.c's case 3: no concurrent updates */
	merge_once(b, p, p->many_bundle, "base", "many", &b->mem_secs, &b->mem_rss,
	    &b->mem_conflicts);
}

/* ---- report ---- */

static void report(const bench *b, FILE *f)
{
	const ad_options *o = &b->opt;

	fprintf(f, "agency day: %u base rows, %u ins / %u upd / %u del (%lld "
	    "changed rows), HQ's %u updates (%u on rows the branch touched), "
	    "seed %llu, median of %d\n", o->base_rows, o->inserts, o->updates,
	    o->deletes, b->changed, o->hq_updates, o->hq_overlap,
	    (unsigned long long)o->seed, b->reps);
	fprintf(f, "%s; a row is a file of column=value lines\n", b->version);
	if (b->bundle_bytes > 0 && b->changed > 0)
		fprintf(f, "bytes: git bundle of the period %ld bytes: %.1f B per "
		    "changed row\n", b->bundle_bytes,
		    (double)b->bundle_bytes / b->changed);
	if (b->period_commit > 0)
		fprintf(f, "commit: fast-import of the period %.3f s\n",
		    b->period_commit);
	if (b->nc > 0) {
		fprintf(f, "commit: fast-import of 1,000 dirty rows %.3f s (runs",
		    bench_median(b->commit1k, b->nc));
		bench_print_runs(f, b->commit1k, b->nc);
		fprintf(f, ")\n");
	}
	if (b->nm > 0) {
		fprintf(f, "merge: fetch + merge-tree at HQ %.3f s (runs",
		    bench_median(b->merge, b->nm));
		bench_print_runs(f, b->merge, b->nm);
		fprintf(f, "), peak RSS %.1f MiB; %ld row files in conflict "
		    "(git's line merge: edits on neighbouring lines conflict)\n",
		    (double)b->merge_rss / 1024.0, b->conflicts);
	}
	if (b->mem_rss > 0)
		fprintf(f, "memory: %u changed rows fetched and merged at HQ's "
		    "base: %.3f s, peak RSS %.1f MiB, %ld conflicts\n",
		    b->mem_changed, b->mem_secs, (double)b->mem_rss / 1024.0,
		    b->mem_conflicts);
	if (b->err[0] != '\0')
		fprintf(f, "failed: %s (log: %s)\n", b->err, b->log);
}

static void summary_fig(const bench *b, const char *key, int have, double v)
{
	if (have)
		bench_summary(b->summary, key, "%.4f", v);
	else
		bench_summary(b->summary, key, "! failed: %s", b->err[0] ?
		    b->err : "not run");
}

/* The figures bench/table.c gathers (--summary; keys in table.c). */
static void write_summary(const bench *b)
{
	bench_summary(b->summary, "version.git", "%s", b->version);
	summary_fig(b, "bytes.git", b->bundle_bytes > 0 && b->changed > 0,
	    b->changed > 0 ? (double)b->bundle_bytes / b->changed : 0);
	summary_fig(b, "merge.git", b->nm > 0, bench_median(b->merge, b->nm));
	summary_fig(b, "commit1k.git", b->nc > 0,
	    bench_median(b->commit1k, b->nc));
	summary_fig(b, "rss.git", b->mem_rss > 0, (double)b->mem_rss / 1024.0);
	if (b->nm > 0) {
		bench_summary(b->summary, "converged.git", "%s", b->conflicts ?
		    "no" : "yes");
		bench_summary(b->summary, "contested.git", "%ld row files left "
		    "in conflict by merge-tree (a person merges them)",
		    b->conflicts);
	}
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: git_peer [--seed N] [--quick] [--reps N] [--changes N]"
	    " [--dir DIR]\n"
	    "                [--results DIR] [--summary FILE]\n"
	    "git (fast-import, bundle, fetch + merge-tree) as a sync engine on "
	    "the agency\nday.  See bench/README.md.\n");
}

static int parse(bench *b, int argc, char **argv)
{
	bench_args a = {
		.seed = &b->opt.seed, .reps = &b->reps, .reps_max = MAX_REPS,
		.quick = &b->quick, .results_dir = &b->results_dir,
		.summary = &b->summary, .dir = b->dir, .changes = &b->mem_changes,
	};
	int rc;

	ad_options_default(&b->opt, 42);
	b->results_dir = "bench/results";
	if ((rc = bench_parse_args(&a, argc, argv, NULL, NULL, usage)) != 0)
		return rc;
	ad_options_size(&b->opt, b->quick, 0);
	if (b->reps == 0)
		b->reps = b->quick ? 1 : 3;
	if (b->mem_changes == 0 || b->mem_changes > b->opt.base_rows)
		b->mem_changes = b->opt.base_rows;
	return 0;
}

int main(int argc, char **argv)
{
	static bench b;
	static paths p;
	ad_options o0;
	char *text = NULL;
	size_t len = 0;
	FILE *mem;
	int rc;

	if ((rc = parse(&b, argc, argv)) != 0) {
		if (rc < 0)
			usage(stderr);
		return rc < 0 ? 2 : 0;
	}
	bench_command_out(b.version, sizeof(b.version), "git --version 2>&1");
	o0 = b.opt;
	o0.inserts = o0.updates = o0.hot_rows = o0.hot_updates = o0.deletes = 0;
	o0.hq_updates = o0.hq_overlap = 0;
	if ((b.w = ad_workload_new(&b.opt)) == NULL ||
	    (b.w0 = ad_workload_new(&o0)) == NULL ||
	    bench_scratch(b.dir, "tz-git", &b.own_dir) < 0 ||
	    make_paths(&b, &p) < 0) {
		fprintf(stderr, "git_peer: cannot set up: %s\n", strerror(errno));
		return 1;
	}
	if (setup(&b, &p) == 0) {
		run_merge(&b, &p);
		run_commit(&b, &p);
		if (b.err[0] == '\0')
			run_memory(&b, &p);
	}
	if ((mem = open_memstream(&text, &len)) == NULL)
		return 1;
	report(&b, mem);
	fclose(mem);
	write_summary(&b);
	/* a failed step keeps the repositories and git.log */
	bench_publish(text, b.results_dir, "git", b.quick ? "-quick" : "",
	    b.dir, NULL, b.own_dir, b.err[0] != '\0');
	free(text);
	ad_workload_free(b.w);
	ad_workload_free(b.w0);
	return 0;
}

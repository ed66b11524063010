/*
 * cmd_generate.c - `syncctl generate base | day`: deterministic agency data
 * written into a store's store.db as an application would (the triggers
 * capture it; `commit` or `export` seals it).  The generator is gen_base.c
 * and gen_day.c; this file parses the options and reports.
 */
#include "tools/cli.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tools/gen.h"

static bool progress_on;

static void gen_progress(const char *what, uint64_t done, uint64_t total)
{
	if (progress_on)
		cli_progress(what, done, total, NULL);
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* "--name N" into *v (1 .. max); 1 when consumed, 0 when not this name, -1 bad. */
static int take_u32(int argc, char **argv, int *i, const char *name, uint32_t *v, uint32_t min, uint32_t max)
{
	char *end;
	unsigned long x;

	if (strcmp(argv[*i], name) != 0)
		return 0;
	if (*i + 1 >= argc)
		return -1;
	errno = 0;
	x = strtoul(argv[*i + 1], &end, 10);
	if (errno || *end || end == argv[*i + 1] || argv[*i + 1][0] == '-' || x < min || x > max)
		return -1;
	*v = (uint32_t)x;
	*i += 1;
	return 1;
}

typedef struct gen_args {
	const char *what, *branch;
	bool hq;
	uint32_t seed_lo;
	uint64_t seed;
} gen_args;

static int parse(gen_ctx *g, gen_args *a, int argc, char **argv)
{
	static const struct { const char *name; size_t off; uint32_t min, max; } opts[] = {
		{"--branches", offsetof(gen_ctx, nbranches), 1, GEN_MAX_BRANCHES},
		{"--seekers", offsetof(gen_ctx, seekers), 20, 450000},
		{"--day", offsetof(gen_ctx, day), 1, 90},
		{"--scale", offsetof(gen_ctx, scale), 1, 100},
		{"--c1", offsetof(gen_ctx, sc.c1), 0, 900}, {"--c2", offsetof(gen_ctx, sc.c2), 0, 900},
		{"--c3", offsetof(gen_ctx, sc.c3), 0, 900}, {"--c4", offsetof(gen_ctx, sc.c4), 0, 900},
		{"--c12", offsetof(gen_ctx, sc.c12), 0, 900},
	};

	if (argc < 2 || (strcmp(argv[1], "base") != 0 && strcmp(argv[1], "day") != 0))
		return cli_usage("generate", "say 'base' or 'day'");
	a->what = argv[1];
	for (int i = 2; i < argc; i++) {
		int r = 0;
		if (strcmp(argv[i], "--branch") == 0 && i + 1 < argc) {
			a->branch = argv[++i];
			continue;
		} else if (strcmp(argv[i], "--hq") == 0) {
			a->hq = true;
			continue;
		} else if (strcmp(argv[i], "--progress") == 0) {
			progress_on = true;
			continue;
		} else if ((r = take_u32(argc, argv, &i, "--seed", &a->seed_lo, 0, UINT32_MAX)) != 0) {
			if (r < 0)
				return cli_usage("generate", "--seed takes a number");
			a->seed = a->seed_lo;
			continue;
		}
		for (size_t k = 0; k < sizeof(opts) / sizeof(opts[0]) && r == 0; k++) {
			r = take_u32(argc, argv, &i, opts[k].name, (uint32_t *)(void *)((char *)g + opts[k].off),
				     opts[k].min, opts[k].max);
			if (r < 0)
				return cli_usage("generate", "%s takes a number from %u to %u", opts[k].name,
						 opts[k].min, opts[k].max);
		}
		if (r == 0)
			return cli_usage("generate", "unknown option '%s'", argv[i]);
	}
	if (strcmp(a->what, "day") == 0 && (a->hq == (a->branch != NULL)))
		return cli_usage("generate", "'day' takes --branch CODE or --hq");
	if (strcmp(a->what, "base") == 0 && (a->hq || a->branch))
		return cli_usage("generate", "'base' takes no --branch or --hq");
	/* unique CNIE numbers: the branches sharing a province's letters take
	 * disjoint ranges of 10^6 numbers (gen_cin) */
	if (((uint64_t)(g->nbranches - 1) / gen_nprovinces + 1) * (g->seekers + 100000ull) > 1000000)
		return cli_usage("generate", "too many job seekers per branch for unique CNIE numbers");
	return CLI_EXIT_OK;
}

/* Text or JSON; CLI_EXIT_FAIL when stdout cannot take it. */
static int report(const cli_opts *o, const gen_ctx *g, const gen_args *a, double secs)
{
	uint64_t rows = 0, changed = 0;
	tz_buf b = TZ_BUF_INIT;

	for (int t = 0; t < GEN_NTABLES; t++) {
		rows += g->inserted[t];
		changed += g->updated[t];
	}
	double rate = secs > 0 ? (double)(rows + changed) / secs : 0;
	if (o->json) {
		tz_buf_printf(&b, "{\"what\": \"%s\", \"store\": ", a->what);
		json_cstr(&b, o->dir);
		tz_buf_puts(&b, ", \"branch\": ");
		if (a->branch)
			json_cstr(&b, a->branch);
		else
			tz_buf_puts(&b, a->hq ? "\"HQ\"" : "null");
		tz_buf_printf(&b, ", \"seed\": %llu, \"branches\": %u, \"seekers\": %u, \"day\": %u, "
			      "\"inserted\": {", (unsigned long long)g->seed, g->nbranches, g->seekers, g->day);
		for (int t = 0; t < GEN_NTABLES; t++)
			tz_buf_printf(&b, "%s\"%s\": %llu", t ? ", " : "", gen_table_name[t],
				      (unsigned long long)g->inserted[t]);
		tz_buf_puts(&b, "}, \"updated\": {");
		for (int t = 0; t < GEN_NTABLES; t++)
			tz_buf_printf(&b, "%s\"%s\": %llu", t ? ", " : "", gen_table_name[t],
				      (unsigned long long)g->updated[t]);
		tz_buf_printf(&b, "}, \"scenarios\": {\"c1_persons\": %u, \"c2_transferred\": %u, "
			      "\"c3_name_fixes\": %u, \"c4_offers\": %u, \"c12_status_both\": %u}, "
			      "\"rows\": %llu, \"seconds\": %.3f, \"rows_per_second\": %.0f}",
			      g->dup_persons, g->transferred, g->name_fixes, g->overfill_offers, g->status_both,
			      (unsigned long long)(rows + changed), secs, rate);
		int rc = cli_emit(&b);
		tz_buf_release(&b);
		return rc;
	}
	printf("generated %s%s%s in '%s' (seed %llu): %llu rows inserted, %llu updated in %.2f s "
	       "(%.0f rows/s)\n", a->what, a->branch ? " at " : a->hq ? " at " : "",
	       a->branch ? a->branch : a->hq ? "HQ" : "", o->dir, (unsigned long long)g->seed,
	       (unsigned long long)rows, (unsigned long long)changed, secs, rate);
	for (int t = 0; t < GEN_NTABLES; t++)
		if (g->inserted[t] || g->updated[t])
			printf("  %-20s +%llu ~%llu\n", gen_table_name[t], (unsigned long long)g->inserted[t],
			       (unsigned long long)g->updated[t]);
	if (strcmp(a->what, "day") == 0)
		printf("  scenarios: C1 %u persons registered twice, C2 %u transferred, C3 %u names fixed,"
		       " C4 %u offers over-filled, C12 %u statuses set on both sides\n", g->dup_persons,
		       g->transferred, g->name_fixes, g->overfill_offers, g->status_both);
	return fflush(stdout) == 0 && !ferror(stdout) ? CLI_EXIT_OK : cli_fail("generate: the rows are written, but the report cannot be (stdout)");
}

int cmd_generate(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	gen_ctx *g = calloc(1, sizeof(*g));
	gen_args a = { 0 };
	char *path = NULL;
	struct stat sb;
	int rc = CLI_EXIT_FAIL, b = 0;
	double t0;

	cli_take_json(&o, &argc, argv);
	if (g == NULL)
		return cli_fail("generate: out of memory");
	*g = (gen_ctx){ .seed = 42, .nbranches = 3, .seekers = 2000, .day = 1, .scale = 1,
			.sc = { .c1 = 2, .c2 = 2, .c3 = 3, .c4 = 1, .c12 = 2 } };
	a.seed = 42;
	progress_on = o.progress;
	if ((rc = parse(g, &a, argc, argv)) != CLI_EXIT_OK)
		goto done;
	rc = CLI_EXIT_FAIL;
	g->seed = a.seed;
	g->progress = gen_progress;
	gen_branch_codes(g);
	if (a.branch && (b = gen_branch_index(g, a.branch)) < 0) {
		rc = cli_usage("generate", "'%s' is none of the %u branches (%s, ...)", a.branch, g->nbranches,
			       g->codes[0]);
		goto done;
	}
	size_t n = strlen(o.dir) + sizeof("/store.db");
	if ((path = malloc(n)) == NULL)
		goto done;
	snprintf(path, n, "%s/store.db", o.dir);
	if (stat(path, &sb) != 0 || sqlite3_open_v2(path, &g->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		fprintf(stderr, "syncctl: generate: '%s' is not a Tazamun store (no store.db)\n", o.dir);
		goto done;
	}
	sqlite3_busy_timeout(g->db, 60000);
	/* one transaction of up to millions of rows: a page cache of 256 MiB
	 * keeps the indexes' pages in memory instead of re-reading them from
	 * the WAL (SQLite's default is 2 MiB) */
	sqlite3_exec(g->db, "PRAGMA cache_size = -262144", NULL, NULL, NULL);
	t0 = now_s();
	if ((strcmp(a.what, "base") == 0 ? gen_base(g) :
	     a.hq ? gen_day_hq(g) : gen_day_branch(g, (uint32_t)b)) < 0) {
		fprintf(stderr, "syncctl: generate: %s (nothing written)\n", g->err);
		goto done;
	}
	rc = report(&o, g, &a, now_s() - t0);
done:
	if (g->db)
		sqlite3_close(g->db);
	free(path);
	free(g);
	return rc;
}

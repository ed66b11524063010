/*
 * table.c - the one table of `make bench`: reads the figures the other
 * benchmark programs appended to a summary file (--summary FILE) in the
 * same run, prints every contender side by side with DESIGN.md §10's
 * targets and whether Tazamun meets each, and writes the table with the
 * machine and the versions to bench/results/bench-<date>.txt.
 *
 * The summary: one "KEY VALUE" per line, the last line of a key wins; a
 * value "! WHY" says the figure is missing and why.  Keys (figure, unit,
 * program):
 *   write.{plain,session,triglog,tazamun,sqlitesync}  write cost ÷ plain
 *       SQLite in the same program (write_cost; sqlite_sync its own plain)
 *   bytes.{changeset,patchset}.{z3,z19}, bytes.sqltext.z19, bytes.tazamun,
 *       bytes.git, bytes.sqlitesync    bytes per changed row on the wire
 *   merge.{session,tazamun,tazamun.big,git,sqlitesync}  seconds of the
 *       period's merge at HQ (merge.c; git_peer; sqlite_sync)
 *   commit1k.{tazamun,git}  seconds to commit 1,000 dirty rows
 *   rss.{tazamun,git,sqlitesync}, rss.changes  peak RSS (MiB) merging
 *       rss.changes changed rows
 *   converged.{tazamun,git,sqlitesync}  yes / no
 *   contested.{session,tazamun,git,sqlitesync}  who won the contested cells
 *   version.{git,sqlitesync}, workload.{write,bytes,merge}  text
 *   load.start  /proc/loadavg when run.sh started
 *
 * Exit 0 even when figures are missing (the table says so), 2 on a usage
 * error, 1 when the summary cannot be read.
 */
#include "bench/bench.h"

#define MAX_KEYS 128

/* DESIGN.md §10 */
#define T_WRITE 1.15
#define T_BYTES 25.0
#define T_MERGE 2.0
#define T_SIZE 1.3
#define T_COMMIT 0.3
#define T_RSS 64.0

typedef struct entry {
	char key[48];
	char val[1024];
} entry;

static entry kv[MAX_KEYS];
static int nkv;

static int load(const char *path)
{
	char line[1100];
	FILE *f = fopen(path, "r");
	int i;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *sp = strchr(line, ' ');

		line[strcspn(line, "\n")] = '\0';
		if (sp == NULL || sp - line >= (long)sizeof(kv[0].key))
			continue;
		*sp = '\0';
		for (i = 0; i < nkv && strcmp(kv[i].key, line) != 0; i++)
			;
		if (i == nkv && nkv == MAX_KEYS)
			continue;
		if (i == nkv)
			nkv++;
		snprintf(kv[i].key, sizeof(kv[i].key), "%.47s", line);
		snprintf(kv[i].val, sizeof(kv[i].val), "%s", sp + 1);
	}
	fclose(f);
	return 0;
}

/* The value of a key, or NULL. */
static const char *get(const char *key)
{
	int i;

	for (i = 0; i < nkv; i++)
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].val;
	return NULL;
}

/* A figure: 1 and *v when measured, 0 when missing or "! why". */
static int num(const char *key, double *v)
{
	const char *s = get(key);
	char *end;

	if (s == NULL || s[0] == '!')
		return 0;
	*v = strtod(s, &end);
	return end != s;
}

/* ---- cells ---- */

/* Failures met while printing cells, listed under the table. */
static char why[4096];

static void why_add(const char *key)
{
	const char *s = get(key);
	size_t len = strlen(why);

	if (s != NULL && s[0] == '!' && !strstr(why, key))
		snprintf(why + len, sizeof(why) - len, "  %s: %s\n", key, s + 2);
}

/* A cell: the figure formatted, "failed" when the program said why, "-"
 * when the contender has no such figure (not applicable, not measured). */
static void cell(char *out, size_t cap, const char *key, int prec,
    const char *unit)
{
	double v;

	if (key == NULL || get(key) == NULL)
		snprintf(out, cap, "-");
	else if (!num(key, &v)) {
		snprintf(out, cap, "failed");
		why_add(key);
	} else
		snprintf(out, cap, "%.*f%s", prec, v, unit);
}

/* Print s right-aligned in `width` columns (UTF-8: continuation bytes
 * take no column), after one space. */
static void col(FILE *f, const char *s, int width)
{
	int n = 0;
	const char *p;

	for (p = s; *p; p++)
		n += ((unsigned char)*p & 0xc0) != 0x80;
	fprintf(f, " %*s%s", width > n ? width - n : 0, "", s);
}

/* The widths of the table's columns after the contender's name. */
static const int width[8] = { 7, 7, 8, 8, 9, 9, 8, 9 };

static void print_cols(FILE *f, const char *name, const char *const c[8])
{
	int i;

	fprintf(f, "%-36s", name);
	for (i = 0; i < 8; i++)
		col(f, c[i], width[i]);
	fprintf(f, "\n");
}

typedef struct row {
	const char *name;
	const char *write, *bytes, *merge, *commit, *rss, *conv;
	int big;                    /* Tazamun: the 1.5M-row column */
} row;

static const row rows[] = {
	{ "plain SQLite", "write.plain", NULL, NULL, NULL, NULL, NULL, 0 },
	{ "trigger change log (keys)", "write.triglog", NULL, NULL, NULL, NULL,
	    NULL, 0 },
	{ "session changeset, zstd -3", "write.session", "bytes.changeset.z3",
	    "merge.session", NULL, NULL, NULL, 0 },
	{ "session changeset, zstd -19", "write.session", "bytes.changeset.z19",
	    "merge.session", NULL, NULL, NULL, 0 },
	{ "session patchset, zstd -3", "write.session", "bytes.patchset.z3",
	    NULL, NULL, NULL, NULL, 0 },
	{ "session patchset, zstd -19", "write.session", "bytes.patchset.z19",
	    NULL, NULL, NULL, NULL, 0 },
	{ "SQL text of the period, zstd -19", NULL, "bytes.sqltext.z19", NULL,
	    NULL, NULL, NULL, 0 },
	{ "git (fast-import/bundle/merge-tree)", NULL, "bytes.git", "merge.git",
	    "commit1k.git", "rss.git", "converged.git", 0 },
	{ "sqlite-sync", "write.sqlitesync", "bytes.sqlitesync",
	    "merge.sqlitesync", NULL, "rss.sqlitesync", "converged.sqlitesync",
	    0 },
	{ "Tazamun", "write.tazamun", "bytes.tazamun", "merge.tazamun",
	    "commit1k.tazamun", "rss.tazamun", "converged.tazamun", 1 },
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* A whole row "not available: why" when every figure of it is. */
static int unavailable(FILE *f, const row *r)
{
	const char *s = r->merge ? get(r->merge) : NULL;

	if (s == NULL || strncmp(s, "! not available", 15) != 0)
		return 0;
	fprintf(f, "%-36s %s\n", r->name, s + 2);
	return 1;
}

static void print_row(FILE *f, const row *r, double session)
{
	char w[32], by[32], mx[32] = "-", ms[32], big[32] = "-", c1[32], rs[32];
	char cv[32];
	double m, s;

	if (unavailable(f, r))
		return;
	cell(w, sizeof(w), r->write, 2, "×");
	cell(by, sizeof(by), r->bytes, 1, "");
	cell(ms, sizeof(ms), r->merge, 3, "");
	if (r->merge && num(r->merge, &m) && session > 0)
		snprintf(mx, sizeof(mx), "%.2f×", m / session);
	if (r->big && num("merge.tazamun", &m) &&
	    num("merge.tazamun.big", &s) && m > 0)
		snprintf(big, sizeof(big), "%.2f×", s / m);
	else if (r->big)
		cell(big, sizeof(big), "merge.tazamun.big", 3, "");
	cell(c1, sizeof(c1), r->commit, 3, "");
	cell(rs, sizeof(rs), r->rss, 1, "");
	snprintf(cv, sizeof(cv), "%s", r->conv && get(r->conv) ?
	    get(r->conv) : "-");
	if (cv[0] == '!') {
		why_add(r->conv);
		snprintf(cv, sizeof(cv), "failed");
	}
	{
		const char *const c[8] = { w, by, mx, ms, big, c1, rs, cv };

		print_cols(f, r->name, c);
	}
}

/* ---- targets ---- */

/* One target of DESIGN §10: the figure, met or not, by how much. */
static void target(FILE *f, const char *what, int have, double v,
    double limit, const char *unit, const char *missing)
{
	if (!have) {
		fprintf(f, "  %-44s not measured (%s)\n", what, missing);
		return;
	}
	fprintf(f, "  %-44s %.3g%s against ≤ %g%s: %s, %.3g%s (%.0f%%) %s\n",
	    what, v, unit, limit, unit, v <= limit ? "met" : "NOT met",
	    v <= limit ? limit - v : v - limit, unit,
	    100.0 * (v <= limit ? limit - v : v - limit) / limit,
	    v <= limit ? "to spare" : "over");
}

static const char *missing(const char *key)
{
	const char *s = get(key);

	return s == NULL ? "no figure in this run" : s[0] == '!' ? s + 2 : "?";
}

/* A ratio of two figures: 1 and *v when both are measured. */
static int ratio(const char *a, const char *b, double *v)
{
	double x = 0, y = 0;

	if (!num(a, &x) || !num(b, &y) || y <= 0)
		return 0;
	*v = x / y;
	return 1;
}

static void targets(FILE *f)
{
	double v = 0, other;
	int have;

	fprintf(f, "DESIGN §10 targets for Tazamun (measured in this run):\n");
	have = num("write.tazamun", &v);
	target(f, "branch write cost, ratio to plain SQLite", have, v, T_WRITE,
	    "×", missing("write.tazamun"));
	have = num("bytes.tazamun", &v);
	target(f, "bytes on the wire per changed row", have, v, T_BYTES, " B",
	    missing("bytes.tazamun"));
	have = ratio("merge.tazamun", "merge.session", &v);
	target(f, "HQ merge, ratio to the session apply", have, v, T_MERGE, "×",
	    missing(num("merge.session", &other) ? "merge.tazamun" :
	    "merge.session"));
	have = ratio("merge.tazamun.big", "merge.tazamun", &v);
	target(f, "merge at 1.5M rows ÷ at 100k rows", have, v, T_SIZE, "×",
	    missing(num("merge.tazamun", &other) ? "merge.tazamun.big" :
	    "merge.tazamun"));
	have = num("commit1k.tazamun", &v);
	target(f, "commit of 1,000 dirty rows", have, v, T_COMMIT, " s",
	    missing("commit1k.tazamun"));
	have = num("rss.tazamun", &v);
	target(f, "peak RSS merging the many-changes bundle", have, v, T_RSS,
	    " MiB", missing("rss.tazamun"));
}

static void contested(FILE *f)
{
	static const char *const who[][2] = {
		{ "contested.session", "session ext." },
		{ "contested.sqlitesync", "sqlite-sync" },
		{ "contested.git", "git" },
		{ "contested.tazamun", "Tazamun" },
	};
	size_t i;

	fprintf(f, "contested cells (changed on both sides), who won:\n");
	for (i = 0; i < sizeof(who) / sizeof(who[0]); i++)
		if (get(who[i][0]) != NULL)
			fprintf(f, "  %-13s %s\n", who[i][1], get(who[i][0]));
	fprintf(f, "  %-13s policies of bench/agency_day.sql: none declared, "
	    "so every column is `manual`: HQ's value stands provisionally and "
	    "the row is queued for a person (docs/merge.md)\n", "");
}

static void report(FILE *f, int quick_mode)
{
	const char *quick = get("workload.merge");
	char load[64];
	double session = 0;
	size_t i;

	if (!num("merge.session", &session))
		session = 0;
	fprintf(f, "agency day (DESIGN §10), seed 42: write: %s; bytes: %s; "
	    "merge: %s\n", get("workload.write") ? get("workload.write") : "-",
	    get("workload.bytes") ? get("workload.bytes") : "-",
	    quick ? quick : "-");
	{
		static const char *const head[8] = { "write", "B/row", "merge",
		    "merge s", "1.5M/100k", "commit 1k", "RSS MiB", "converged" };
		static const char *const goal[8] = { "≤ 1.15×", "≤ 25", "≤ 2×",
		    "", "≤ 1.3×", "≤ 0.3", "≤ 64", "yes" };

		print_cols(f, "contender", head);
		for (i = 0; i < NROWS; i++)
			print_row(f, &rows[i], session);
		print_cols(f, "target for Tazamun (DESIGN §10)", goal);
	}
	fprintf(f, "columns: write = time of the offline period ÷ plain SQLite's "
	    "in the same program; B/row = bytes on the wire per changed row; "
	    "merge = HQ's merge of the period ÷ the session changeset apply "
	    "(merge s: its seconds; Tazamun and git: whole processes, the "
	    "others in-process); 1.5M/100k = the same merge on a 1.5M-row "
	    "store ÷ on 100k; commit 1k = seconds to commit 1,000 dirty rows; "
	    "RSS = peak RSS merging %s changed rows; converged = both replicas "
	    "hold the same rows after exchanging changes.  \"-\": the contender "
	    "has no such step, or it is not measured for it (the 1.5M-row "
	    "store is built for Tazamun only; the session apply's RSS is not "
	    "isolated in a process).\n", get("rss.changes") ?
	    get("rss.changes") : "many");
	if (why[0] != '\0')
		fprintf(f, "failed cells:\n%s", why);
	if (quick_mode)
		fprintf(f, "QUICK MODE: 10,000 rows, the period scaled to them; "
		    "the targets are for the full workload (make bench): read "
		    "the met / not met below as a smoke check only.\n");
	targets(f);
	contested(f);
	bench_command_out(load, sizeof(load),
	    "cut -d ' ' -f 1-3 /proc/loadavg 2>/dev/null");
	{
		const char *start = get("load.start") ? get("load.start") : "unknown";
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		/* the 1-minute figures: above the cores, other work competed */
		int busy = strtod(start, NULL) > (double)cores ||
		    strtod(load, NULL) > (double)cores;

		fprintf(f, "load average (1, 5, 15 min) at the start: %s, at the "
		    "end: %s, on %ld cores%s\n", start, load, cores, busy ?
		    ": above the cores, other work shared the machine and the "
		    "times (not the bytes) are inflated" : "");
	}
	fprintf(f, "versions: %s; sqlite-sync %s\n", get("version.git") ?
	    get("version.git") : "git: -", get("version.sqlitesync") ?
	    get("version.sqlitesync") : "-");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: table --summary FILE [--quick] [--results DIR]\n"
	    "The one table of make bench, from the figures the benchmark "
	    "programs wrote\nto FILE.  See bench/README.md.\n");
}

int main(int argc, char **argv)
{
	const char *summary = NULL, *results = "bench/results";
	int quick = 0, rc;
	bench_args a = {
		.quick = &quick, .results_dir = &results, .summary = &summary,
	};
	char *text = NULL;
	size_t len = 0;
	FILE *mem;

	if ((rc = bench_parse_args(&a, argc, argv, NULL, NULL, usage)) != 0 ||
	    summary == NULL) {
		if (rc <= 0)
			usage(stderr);
		return rc > 0 ? 0 : 2;
	}
	if (load(summary) < 0) {
		fprintf(stderr, "table: cannot read '%s': %s\n", summary,
		    strerror(errno));
		return 1;
	}
	if ((mem = open_memstream(&text, &len)) == NULL)
		return 1;
	report(mem, quick);
	fclose(mem);
	fputs(text, stdout);
	fflush(stdout);
	bench_write_results(results, "bench", quick ? "-quick" : "", text,
	    "/tmp", NULL);
	free(text);
	return 0;
}

/*
 * bench.h - helpers shared by the benchmark programs of bench/ (header-
 * only, like agency_day.h: the Makefile makes each .c file of bench/ a
 * program):
 * clocks, medians, scratch files, running a tool and timing it, and the
 * description of the machine that every results file ends with.
 *
 * Nothing here exits; functions that can fail return 0 or -1 (with errno,
 * or a message where they take a buffer for one).
 */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <sqlite3.h>
#include <zstd.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/vfs.h>
#endif

#if defined(__GNUC__)
#define BENCH_FN static __attribute__((unused))
#define BENCH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BENCH_FN static
#define BENCH_PRINTF(f, a)
#endif

extern char **environ;

/* Runs a median is taken over: far more than a benchmark repeats. */
#define BENCH_MAX_RUNS 64

/* ---- clocks and statistics ---- */

/* Wall-clock seconds (monotonic). */
static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of this process (SQLite runs in it, single-threaded):
 * less sensitive than wall time to other processes on a shared machine,
 * blind to waiting for the disk. */
static inline double bench_cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of v[0..n) (the first BENCH_MAX_RUNS); 0 when n <= 0. */
BENCH_FN double bench_median(const double *v, int n)
{
	double s[BENCH_MAX_RUNS];

	if (n <= 0)
		return 0;
	if (n > BENCH_MAX_RUNS)
		n = BENCH_MAX_RUNS;
	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), bench_cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* The smallest of v[0..n): on a busy machine, the run least disturbed. */
BENCH_FN double bench_least(const double *v, int n)
{
	double m = n > 0 ? v[0] : 0;
	int i;

	for (i = 1; i < n; i++)
		if (v[i] < m)
			m = v[i];
	return m;
}

/* " a/b/c": every run, for the reader to judge the spread. */
BENCH_FN void bench_print_runs(FILE *f, const double *v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		fprintf(f, "%s%.3f", i ? "/" : " ", v[i]);
}

/* ---- files ---- */

/* Format a path into out[cap]; -1 when it does not fit (out is cut). */
BENCH_PRINTF(3, 4)
BENCH_FN int bench_pathf(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, cap, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Remove a file or a directory tree; a missing path is not an error. */
BENCH_FN int bench_rm_rf(const char *path)
{
	char child[PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *d;
	int rc = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (bench_pathf(child, sizeof(child), "%s/%s", path,
		    e->d_name) < 0 || bench_rm_rf(child) < 0)
			rc = -1;
	}
	closedir(d);
	return rmdir(path) < 0 ? -1 : rc;
}

/* Remove a database file and its WAL and shared-memory files. */
BENCH_FN void bench_rm_db(const char *path)
{
	char p[PATH_MAX];

	unlink(path);
	if (bench_pathf(p, sizeof(p), "%s-wal", path) == 0)
		unlink(p);
	if (bench_pathf(p, sizeof(p), "%s-shm", path) == 0)
		unlink(p);
}

/* The scratch directory: dir[] as given (created if missing, kept
 * afterwards), or when dir[0] is NUL a fresh /tmp/<prefix>-XXXXXX
 * (*own_out = 1: the caller removes it).  -1 with errno on failure. */
BENCH_FN int bench_scratch(char dir[PATH_MAX], const char *prefix,
    int *own_out)
{
	*own_out = 0;
	if (dir[0] != '\0')
		return mkdir(dir, 0755) < 0 && errno != EEXIST ? -1 : 0;
	if (bench_pathf(dir, PATH_MAX, "/tmp/%s-XXXXXX", prefix) < 0 ||
	    mkdtemp(dir) == NULL)
		return -1;
	*own_out = 1;
	return 0;
}

/* ---- running a tool ---- */

/* The last non-empty line written to `log` from byte `from` on ("" when
 * none), cut to cap - 1 bytes. */
BENCH_FN void bench_log_tail(char *out, size_t cap, const char *log, long from)
{
	char line[512];
	FILE *f = fopen(log, "r");

	out[0] = '\0';
	if (f == NULL)
		return;
	if (fseek(f, from, SEEK_SET) == 0)
		while (fgets(line, sizeof(line), f) != NULL)
			if (line[0] != '\n')
				snprintf(out, cap, "%.*s", (int)strcspn(line, "\n"),
				    line);
	fclose(f);
}

/* Run argv[0] (a path) with stdin from /dev/null and stdout and stderr
 * appended to `log`; *secs is the wall-clock time from spawning to reaping
 * the process.  Returns 0 when it exits with status 0; otherwise -1 and a
 * message in err[cap]: how it ended, and the last line it logged. */
BENCH_FN int bench_spawn(double *secs, char *err, size_t cap,
    const char *log, char *const argv[])
{
	posix_spawn_file_actions_t fa;
	char said[256];
	struct stat ls;
	int rc, st = 0;
	double t0;
	pid_t pid;

	err[0] = '\0';
	if (stat(log, &ls) < 0)
		ls.st_size = 0;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log,
	    O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	t0 = bench_now();
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	if (rc == 0)
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	*secs = bench_now() - t0;
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		snprintf(err, cap, "cannot run '%.300s': %s", argv[0], strerror(rc));
		return -1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	bench_log_tail(said, sizeof(said), log, (long)ls.st_size);
	snprintf(err, cap, "%s %d: %.300s", WIFEXITED(st) ? "exited with" :
	    "killed by signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
	    said[0] ? said : log);
	return -1;
}

/*
 * Run argv (argv[0] a path, or a name found in PATH) with stdin from `in`
 * (NULL: /dev/null), stdout into `out` (NULL: the log) and stderr appended
 * to `log`.  *secs: wall time from spawning to reaping; *rss_kib (may be
 * NULL): the child's peak RSS (wait4's ru_maxrss).  0 when it exits with
 * status 0, 1 when it exits with status 1 (a tool's "yes, but", such as
 * git merge-tree's conflicts), otherwise -1 and in err[cap] how it ended
 * and the last line it logged.
 */
BENCH_FN int bench_run(double *secs, long *rss_kib, char *err, size_t cap,
    const char *in, const char *out, const char *log, char *const argv[])
{
	posix_spawn_file_actions_t fa;
	char said[256];
	struct rusage ru;
	struct stat ls;
	int rc, st = 0;
	pid_t pid, w = -1;
	double t0;

	err[0] = '\0';
	if (stat(log, &ls) < 0)
		ls.st_size = 0;
	memset(&ru, 0, sizeof(ru));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in ? in : "/dev/null",
	    O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, log,
	    O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (out != NULL)
		posix_spawn_file_actions_addopen(&fa, 1, out,
		    O_WRONLY | O_CREAT | O_TRUNC, 0644);
	else
		posix_spawn_file_actions_adddup2(&fa, 2, 1);
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
		snprintf(err, cap, "cannot run '%.300s': %s", argv[0], strerror(rc));
		return -1;
	}
	if (w == pid && WIFEXITED(st) && WEXITSTATUS(st) <= 1)
		return WEXITSTATUS(st);
	bench_log_tail(said, sizeof(said), log, (long)ls.st_size);
	snprintf(err, cap, "'%.100s' %s %d: %.300s", argv[0], WIFEXITED(st) ?
	    "exited with" : "killed by signal", WIFEXITED(st) ?
	    WEXITSTATUS(st) : WTERMSIG(st), said[0] ? said : log);
	return -1;
}

/* ---- SQLite ---- */

/* Run SQL; -1 and a message in err[cap] on failure. */
BENCH_FN int bench_db_exec(char *err, size_t cap, sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	snprintf(err, cap, "sqlite: %.200s: %s", sql, sqlite3_errmsg(db));
	return -1;
}

/* One integer from a query (-1 on failure, with err[cap] set). */
BENCH_FN long long bench_db_int(char *err, size_t cap, sqlite3 *db,
    const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long v = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		snprintf(err, cap, "sqlite: %.200s: %s", sql, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return v;
}

/* VACUUM INTO: a clean copy of the database `db` has open as main. */
BENCH_FN int bench_db_snapshot(char *err, size_t cap, sqlite3 *db,
    const char *dst)
{
	char *sql;
	int rc;

	bench_rm_db(dst);
	if ((sql = sqlite3_mprintf("VACUUM INTO %Q", dst)) == NULL) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	rc = bench_db_exec(err, cap, db, sql);
	sqlite3_free(sql);
	return rc;
}

/* Rows of `table` whose content differs between the database `db` has
 * open as main and the one at `base_path` (inserted, deleted or changed:
 * EXCEPT both ways, keys counted once): "per changed row" of DESIGN §10.
 * -1 on failure. */
BENCH_FN long long bench_changed_rows(char *err, size_t cap, sqlite3 *db,
    const char *base_path, const char *table, const char *key)
{
	char *sql = sqlite3_mprintf("ATTACH %Q AS bench_base", base_path);
	long long n = -1;

	if (sql == NULL || bench_db_exec(err, cap, db, sql) < 0)
		goto out;
	sqlite3_free(sql);
	sql = sqlite3_mprintf("SELECT count(*) FROM (SELECT %s FROM (SELECT * "
	    "FROM main.%s EXCEPT SELECT * FROM bench_base.%s) UNION SELECT %s "
	    "FROM (SELECT * FROM bench_base.%s EXCEPT SELECT * FROM main.%s))",
	    key, table, table, key, table, table);
	if (sql != NULL)
		n = bench_db_int(err, cap, db, sql);
	sqlite3_exec(db, "DETACH bench_base", NULL, NULL, NULL);
out:
	sqlite3_free(sql);
	return n;
}

/* ---- the machine ---- */

/* First line of a shell command's output, or "unknown". */
BENCH_FN void bench_command_out(char *out, size_t cap, const char *cmd)
{
	FILE *p = popen(cmd, "r");

	snprintf(out, cap, "unknown");
	if (p != NULL) {
		if (fgets(out, (int)cap, p) == NULL)
			snprintf(out, cap, "unknown");
		out[strcspn(out, "\n")] = '\0';
		pclose(p);
	}
}

#if defined(__linux__)
/* The usual file systems by statfs magic: fsync costs differ. */
static inline const char *bench_fs_name(long type)
{
	switch ((unsigned long)type) {
	case 0xEF53: return "ext4";
	case 0x58465342: return "xfs";
	case 0x9123683E: return "btrfs";
	case 0x01021994: return "tmpfs: fsync is free";
	case 0x794C7630: return "overlayfs";
	default: return "another file system";
	}
}
#endif

/* The machine, for a results file: date, uname -a, CPU and nproc, the
 * SQLite, libgit2 (pkg-config) and zstd versions, the file system of the
 * scratch directory and the git description of the working tree. */
BENCH_FN void bench_machine_info(FILE *f, const char *scratch)
{
	char line[512], cpu[256] = "unknown", date[64];
	time_t t = time(NULL);
	FILE *ci = fopen("/proc/cpuinfo", "r");

	while (ci != NULL && fgets(line, sizeof(line), ci) != NULL)
		if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
			snprintf(cpu, sizeof(cpu), "%s", strchr(line, ':') + 2);
			cpu[strcspn(cpu, "\n")] = '\0';
			break;
		}
	if (ci != NULL)
		fclose(ci);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S %z", localtime(&t));
	fprintf(f, "date:     %s\n", date);
	bench_command_out(line, sizeof(line), "uname -a");
	fprintf(f, "uname:    %s\n", line);
	fprintf(f, "cpu:      %s, nproc %ld\n", cpu,
	    sysconf(_SC_NPROCESSORS_ONLN));
	bench_command_out(line, sizeof(line),
	    "grep MemTotal /proc/meminfo 2>/dev/null");
	fprintf(f, "memory:   %s\n", line);
	bench_command_out(line, sizeof(line),
	    "pkg-config --modversion libgit2 2>/dev/null");
	fprintf(f, "sqlite:   %s; libgit2 %s; zstd %s\n", sqlite3_libversion(),
	    line, ZSTD_versionString());
#if defined(__linux__)
	{
		struct statfs sf;

		if (statfs(scratch, &sf) == 0)
			fprintf(f, "scratch:  %s (%s)\n", scratch,
			    bench_fs_name((long)sf.f_type));
	}
#endif
	bench_command_out(line, sizeof(line),
	    "git describe --always --dirty 2>/dev/null");
	fprintf(f, "tree:     %s (git describe of the working tree)\n", line);
}

/* ---- options ---- */

/* A decimal option value in [lo, hi]; -1 on a bad value. */
BENCH_FN int bench_num_arg(unsigned long long *out, const char *s,
    unsigned long long lo, unsigned long long hi)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || end == s || *end || *s == '-' || *out < lo ||
	    *out > hi ? -1 : 0;
}

/*
 * The options every benchmark program takes, parsed by one loop:
 * --seed N, --reps N (1..reps_max), --quick, --syncctl PATH, --schema FILE,
 * --dir DIR (scratch, kept), --results DIR, --summary FILE (append the
 * figures bench/table.c gathers into one table), --rows N, --changes N,
 * -h/--help.  A NULL target
 * means the program does not take that option.  *reps, *rows and
 * *changes are left alone when not given, so the caller can tell.
 */
typedef struct bench_args {
	uint64_t *seed;
	int *reps;
	int reps_max;
	int *quick;
	const char **syncctl, **schema, **results_dir, **summary;
	char *dir;                  /* PATH_MAX bytes */
	uint32_t *rows;             /* --rows N: base rows, 4,000..990,000 */
	uint32_t *changes;          /* --changes N: 1..999,999 */
} bench_args;

/* A program's own option: 0 when taken, -1 when unknown or bad. */
typedef int (*bench_own_arg)(void *ctx, const char *opt, const char *val);

/* Parse argv[1..argc): common options into a's targets, the others through
 * own (NULL: none).  Returns 0, 1 after printing usage on stdout for
 * -h/--help (the caller exits 0), -1 on a usage error (exit 2). */
BENCH_FN int bench_parse_args(const bench_args *a, int argc, char **argv,
    bench_own_arg own, void *ctx, void (*usage)(FILE *))
{
	unsigned long long v;
	int i;

	for (i = 1; i < argc; i++) {
		const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--quick") == 0 && a->quick != NULL) {
			*a->quick = 1;
			continue;
		}
		if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
			usage(stdout);
			return 1;
		}
		if (val == NULL)
			return -1;
		i++;
		if (strcmp(o, "--seed") == 0 && a->seed != NULL) {
			if (bench_num_arg(&v, val, 0, ~0ULL) < 0)
				return -1;
			*a->seed = v;
		} else if (strcmp(o, "--reps") == 0 && a->reps != NULL) {
			if (bench_num_arg(&v, val, 1, (unsigned)a->reps_max) < 0)
				return -1;
			*a->reps = (int)v;
		} else if (strcmp(o, "--rows") == 0 && a->rows != NULL) {
			if (bench_num_arg(&v, val, 4000, 990000) < 0)
				return -1;
			*a->rows = (uint32_t)v;
		} else if (strcmp(o, "--changes") == 0 && a->changes != NULL) {
			if (bench_num_arg(&v, val, 1, 999999) < 0)
				return -1;
			*a->changes = (uint32_t)v;
		} else if (strcmp(o, "--syncctl") == 0 && a->syncctl != NULL)
			*a->syncctl = val;
		else if (strcmp(o, "--schema") == 0 && a->schema != NULL)
			*a->schema = val;
		else if (strcmp(o, "--results") == 0 && a->results_dir != NULL)
			*a->results_dir = val;
		else if (strcmp(o, "--summary") == 0 && a->summary != NULL)
			*a->summary = val;
		else if (strcmp(o, "--dir") == 0 && a->dir != NULL) {
			/* room for the names made under it */
			if (strlen(val) == 0 || strlen(val) >= PATH_MAX - 256)
				return -1;
			snprintf(a->dir, PATH_MAX, "%s", val);
		} else if (own == NULL || own(ctx, o, val) < 0)
			return -1;
	}
	return 0;
}

/* Append "KEY VALUE" to the summary file (no-op when path is NULL): the
 * figures bench/table.c reads back.  Keys are documented there. */
BENCH_PRINTF(3, 4)
BENCH_FN void bench_summary(const char *path, const char *key,
    const char *fmt, ...)
{
	char val[1024];
	FILE *f;
	va_list ap;

	if (path == NULL || (f = fopen(path, "a")) == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	/* one line per key: the reader splits on lines */
	val[strcspn(val, "\n")] = '\0';
	fprintf(f, "%s %s\n", key, val);
	fclose(f);
}

/* Write a report to RESULTS_DIR/NAME-<date>SUFFIX.txt with the machine's
 * description and the syncctl used; says on stdout where it went, or why
 * it did not. */
BENCH_FN void bench_write_results(const char *results_dir, const char *name, const char *suffix,
    const char *text, const char *scratch, const char *syncctl)
{
	char path[PATH_MAX], day[16];
	time_t t = time(NULL);
	struct stat st;
	FILE *f;

	strftime(day, sizeof(day), "%Y-%m-%d", localtime(&t));
	if (stat(results_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		printf("results not written: no directory '%s' (run from the "
		    "repository root)\n", results_dir);
		return;
	}
	if (bench_pathf(path, sizeof(path), "%s/%s-%s%s.txt", results_dir, name,
	    day, suffix) < 0 || (f = fopen(path, "w")) == NULL) {
		printf("results not written: cannot open '%s': %s\n", path,
		    strerror(errno));
		return;
	}
	fputs(text, f);
	fprintf(f, "\n");
	bench_machine_info(f, scratch);
	fprintf(f, "syncctl:  %s\n", syncctl ? syncctl : "(none)");
	if (fclose(f) != 0)
		printf("results not written: '%s': %s\n", path, strerror(errno));
	else
		printf("results written to %s\n", path);
}

/* The end of a program's run: its report on stdout and in
 * RESULTS_DIR/NAME-<date>SUFFIX.txt; the scratch directory removed when
 * the program made it (own) and nothing asks to keep it (keep). */
BENCH_FN void bench_publish(const char *text, const char *results_dir,
    const char *name, const char *suffix, const char *scratch,
    const char *syncctl, int own, int keep)
{
	fputs(text, stdout);
	fflush(stdout);
	bench_write_results(results_dir, name, suffix, text, scratch, syncctl);
	if (own && !keep)
		bench_rm_rf(scratch);
	else if (scratch[0] != '\0')
		printf("scratch directory kept: %s\n", scratch);
}

#endif /* BENCH_BENCH_H */

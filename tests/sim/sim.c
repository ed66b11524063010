/*
 * tests/sim: the multi-branch simulation (DESIGN §9, docs/testing.md).
 *
 *   tz-sim [--seed S | --seeds N [--first S]] [--branches N] [--steps K]
 *       [--kill-rate PCT] [--late-kills] [--syncctl PATH] [--keep]
 *
 * For each seed: a copy of one enrolled template (HQ + N branches), then K
 * random steps: application writes at HQ and the branches (inserts,
 * updates, deletes, edits of the same rows and columns, duplicate
 * registrations of one key in the shared table), commits, exports and
 * imports in random order, bundles lost, delivered twice, out of order and
 * late.  Commits, exports and imports are SIGKILLed at random points
 * (--kill-rate); after each kill `verify` must pass and the step is run
 * again.  --late-kills sends every kill after the process has finished:
 * each such step runs to its end and then again (a kill that came too
 * late, or past the commit point, seen every time).  Then every bundle still held is delivered, one last round trip
 * is made, and the stores are checked against tests/sim/model.c: each
 * replica's rows, HQ's conflict queue (`conflicts list --json`), that no
 * branch's edit is lost, and `verify` everywhere.  TAP, one test per seed;
 * a failure prints the command that replays it.  Last line:
 * "# tally: seeds=N kills=K divergences=D losses=L".
 *
 * Application writes go straight into store.db with SQLite (as the
 * application does); everything else runs the syncctl binary.  A branch
 * imports over its uncommitted edits as they are: the import commits them
 * first (P14), so the model takes them as a local commit made just before
 * the import, merged under HQ's answer (P15) and re-decided at HQ.
 */
#include "tests/sim/model.h"

#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_BUNDLES 512

static const char SCHEMA[] =
	"CREATE TABLE person(id TEXT PRIMARY KEY, owner TEXT NOT NULL, a TEXT, b TEXT, c TEXT, d TEXT, e TEXT);\n"
	"CREATE TABLE place(id TEXT PRIMARY KEY, x TEXT, y TEXT, z TEXT);\n"
	"INSERT INTO tz_track VALUES ('person', 'owned', 'owner'), ('place', 'shared', NULL);\n"
	"INSERT INTO tz_group VALUES ('person', 'g', 'c'), ('person', 'g', 'd');\n"
	"INSERT INTO tz_policy VALUES ('person', '*', 'manual'), ('person', 'a', 'hq'),\n"
	"  ('person', 'b', 'owner'), ('person', 'g', 'owner'), ('person', '@delete', 'manual'),\n"
	"  ('place', '*', 'manual'), ('place', 'x', 'hq'), ('place', '@delete', 'keep');\n";

typedef struct {
	int from, to, seq;
	int nstretch;           /* the sender's stretches before it (branch) */
	char path[512];
	m_state *st;
	bool imported;
} bundle;

typedef struct {
	const char *syncctl;
	char root[256], tmpl[280], dir[280];
	int nbranches, steps, kill_rate;
	bool late_kills;         /* every kill after the process finished */
	uint64_t rng, krng;      /* the scenario's stream; the kills' own */
	model *m;
	bundle b[MAX_BUNDLES];
	int nb, pending[MAX_BUNDLES], npending;
	int seq_next, last_in[M_MAX_REPLICAS][M_MAX_REPLICAS];
	int counter;
	/* a branch's state before each import of an answer: where its history
	 * may hold a merge, which HQ integrates in stretches (P15) */
	m_state *stretch[M_MAX_REPLICAS][MAX_BUNDLES];
	int nstretch[M_MAX_REPLICAS], hq_done[M_MAX_REPLICAS];
	double avg_us[4];
	long kills, divergences, losses, entries, imports;
	char why[1024];
} sim;

static char *slurp(const char *path, size_t *len);

/* splitmix64: deterministic from the seed */
static uint64_t mix(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rnd(sim *s)
{
	return mix(&s->rng);
}

/* Whether and when to kill: a stream of its own, so that --kill-rate 0
 * replays a seed's steps without its kills. */
static long kill_delay(sim *s, int kind)
{
	if ((int)(mix(&s->krng) % 100) >= s->kill_rate)
		return -1;
	return (long)(mix(&s->krng) % (uint64_t)(s->avg_us[kind] * 1.2 + 1));
}

static int pick(sim *s, int n)
{
	return n > 0 ? (int)(rnd(s) % (uint64_t)n) : 0;
}

static int fail(sim *s, const char *fmt, ...)
{
	va_list ap;

	if (s->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(s->why, sizeof(s->why), fmt, ap);
		va_end(ap);
	}
	return -1;
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void rep_dir(sim *s, int r, char *out, size_t cap)
{
	if (r == 0)
		snprintf(out, cap, "%s/hq", s->dir);
	else
		snprintf(out, cap, "%s/b%d", s->dir, r);
}

/*
 * Run syncctl -C replica ARGS; stdout to DIR/out, stderr to DIR/err.
 * kill_us >= 0: SIGKILL it after that many microseconds; returns -9 when
 * the kill landed, else the exit status (-1 for any other death).
 */
static int run(sim *s, int r, long kill_us, const char *const *args)
{
	char dir[320], out[320], err[320];
	char *argv[16];
	int n = 0, st;
	pid_t pid;

	rep_dir(s, r, dir, sizeof(dir));
	snprintf(out, sizeof(out), "%s/out", s->dir);
	snprintf(err, sizeof(err), "%s/err", s->dir);
	/* execv takes char *const []: copies, so that no const is cast away */
	argv[n++] = strdup(s->syncctl), argv[n++] = strdup("-C"), argv[n++] = strdup(dir);
	for (; *args && n < 15; args++)
		argv[n++] = strdup(*args);
	argv[n] = NULL;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (!freopen(out, "w", stdout) || !freopen(err, "w", stderr))
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	if (kill_us >= 0) {
		usleep((useconds_t)kill_us);
		kill(pid, SIGKILL);
	}
	double t0 = now_us();
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (getenv("TZ_SIM_TRACE"))
	{
		size_t olen = 0;
		char *o = slurp(out, &olen);
		fprintf(stderr, "# replica %d %s: %.0f ms: %.*s\n", r, argv[3], (now_us() - t0) / 1e3,
			o ? (int)strcspn(o, "\n") : 0, o ? o : "");
		free(o);
	}
	for (int i = 0; i < n; i++)
		free(argv[i]);
	if (WIFSIGNALED(st))
		return WTERMSIG(st) == SIGKILL && kill_us >= 0 ? -9 : -1;
	return WEXITSTATUS(st);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL) {
		*len = fread(buf, 1, (size_t)n, f);
		buf[*len] = '\0';
	}
	fclose(f);
	return buf;
}

static const char *last_err(sim *s)
{
	static char line[300];
	char path[320];
	size_t len = 0;
	char *t;

	snprintf(path, sizeof(path), "%s/err", s->dir);
	t = slurp(path, &len);
	snprintf(line, sizeof(line), "%s", t ? t : "");
	line[strcspn(line, "\n")] = '\0';
	free(t);
	return line;
}

/* One sync step, SIGKILLed first at a random point with --kill-rate
 * percent, then run to its end; kind indexes the duration averages. */
static int step(sim *s, int r, int kind, const char *const *args)
{
	int rc;
	double t0;

	long us = kill_delay(s, kind);

	if (us >= 0) {
		rc = run(s, r, s->late_kills ? -1 : us, args);
		if (rc == -9) {
			const char *v[] = { "verify", NULL };
			s->kills++;
			if (run(s, r, -1, v) != 0)
				return fail(s, "after a SIGKILL of '%s' at %ld us, verify of replica %d fails: %s",
					    args[0], us, r, last_err(s));
		}
	}
	t0 = now_us();
	rc = run(s, r, -1, args);
	s->avg_us[kind] = s->avg_us[kind] * 0.8 + (now_us() - t0) * 0.2;
	return rc;
}

static int sql_exec(sim *s, int r, const char *sql, const char *const *vals, int nvals)
{
	char path[340];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	rep_dir(s, r, path, sizeof(path));
	strcat(path, "/store.db");
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		sqlite3_busy_timeout(db, 10000);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	for (int i = 0; rc == SQLITE_OK && i < nvals; i++)
		rc = sqlite3_bind_text(st, i + 1, vals[i], -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	if (rc != SQLITE_OK) {
		fail(s, "application write at replica %d: %s: %s", r, sql, sqlite3_errmsg(db));
	} else if (sqlite3_changes(db) != 1) {
		/* the model holds the row live here, the store does not (or
		 * the reverse): the replicas' states parted before the end */
		s->divergences++;
		rc = SQLITE_ERROR;
		fail(s, "replica %d: '%s' (%s) changed %d rows: the model has the row live there",
		     r, sql, nvals > 0 ? vals[nvals - 1] : "", sqlite3_changes(db));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* ---- the application's writes ---- */

#define TRACE(...) (getenv("TZ_SIM_TRACE") ? (void)fprintf(stderr, __VA_ARGS__) : (void)0)

static const char *val(sim *s, int e)
{
	return s->m->edits[e].value;
}

static int app_insert(sim *s, int r)
{
	model *m = s->m;
	char key[24];
	const char *dupv[3];
	int row;

	if (pick(s, 3) > 0) {
		int owner = r ? r : 1 + pick(s, m->nbranches);
		snprintf(key, sizeof(key), "P%d-%d", owner, ++s->counter);
		row = m_insert(m, r, T_PERSON, owner, key, false, NULL);
		const m_cell *c = &m->rep[r].row[row];
		char own[16];
		snprintf(own, sizeof(own), "B%d", owner);
		const char *v[] = { key, own, val(s, c->col[0]), val(s, c->col[1]), val(s, c->col[2]),
				    val(s, c->col[3]), val(s, c->col[4]) };
		return sql_exec(s, r, "INSERT INTO person VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", v, 7);
	}
	if (pick(s, 2) == 0) {
		/* a duplicate registration: the same key and x, y at several
		 * replicas (z differs), each inserting it while it holds no row
		 * of that key */
		snprintf(key, sizeof(key), "D%d", pick(s, 3));
		for (row = 0; row < m->nrows; row++)
			if (m->rows[row].table == T_PLACE && strcmp(m->rows[row].key, key) == 0)
				break;
		if (row < m->nrows && m->rep[r].row[row].present)
			return 0;
		char x[32], y[32];
		snprintf(x, sizeof(x), "dup-%s-x.", key);
		snprintf(y, sizeof(y), "dup-%s-y.", key);
		dupv[0] = x, dupv[1] = y, dupv[2] = NULL;
		row = m_insert(m, r, T_PLACE, 0, key, true, dupv);
	} else {
		snprintf(key, sizeof(key), "S%d", ++s->counter);
		row = m_insert(m, r, T_PLACE, 0, key, false, NULL);
	}
	const m_cell *c = &m->rep[r].row[row];
	TRACE("@%d insert %s\n", r, key);
	const char *v[] = { key, val(s, c->col[0]), val(s, c->col[1]), val(s, c->col[2]) };
	return sql_exec(s, r, "INSERT INTO place VALUES (?1, ?2, ?3, ?4)", v, 4);
}

/* A random live row of replica r's view (dup rows only when allow_dup). */
static int live_row(sim *s, int r, bool allow_dup)
{
	int cand[M_MAX_ROWS], n = 0;

	for (int row = 0; row < s->m->nrows; row++) {
		const m_cell *c = &s->m->rep[r].row[row];
		if (c->present && c->alive && m_in_view(s->m, r, row) && (allow_dup || !s->m->rows[row].dup))
			cand[n++] = row;
	}
	return n ? cand[pick(s, n)] : -1;
}

static int app_update(sim *s, int r)
{
	model *m = s->m;
	int row = live_row(s, r, true), tb, n;
	char sql[128];

	if (row < 0)
		return 0;
	tb = m->rows[row].table;
	n = 1 + pick(s, 2);
	for (int i = 0; i < n; i++) {
		int col = pick(s, m_ncols[tb]);
		m_update(m, r, row, col, NULL);
		TRACE("@%d update %s.%s = %s\n", r, m->rows[row].key, m_colnames[tb][col], val(s, m->rep[r].row[row].col[col]));
		const char *v[] = { val(s, m->rep[r].row[row].col[col]), m->rows[row].key };
		snprintf(sql, sizeof(sql), "UPDATE %s SET %s = ?1 WHERE id = ?2",
			 tb == T_PERSON ? "person" : "place", m_colnames[tb][col]);
		if (sql_exec(s, r, sql, v, 2) < 0)
			return -1;
	}
	return 0;
}

static int app_delete(sim *s, int r)
{
	int row = live_row(s, r, false);
	const char *v[1];

	if (row < 0)
		return 0;
	m_delete(s->m, r, row);
	TRACE("@%d delete %s\n", r, s->m->rows[row].key);
	v[0] = s->m->rows[row].key;
	return sql_exec(s, r, s->m->rows[row].table == T_PERSON ? "DELETE FROM person WHERE id = ?1"
								: "DELETE FROM place WHERE id = ?1", v, 1);
}

/* ---- the sync steps ---- */

enum { K_COMMIT, K_EXPORT, K_IMPORT_HQ, K_IMPORT_BR };

static int do_commit(sim *s, int r)
{
	const char *a[] = { "commit", NULL };
	int rc = step(s, r, K_COMMIT, a);

	return rc == 0 ? 0 : fail(s, "commit at replica %d: exit %d: %s", r, rc, last_err(s));
}

/* Export from `from` to `to`: the model's bundle is the sender's state now. */
static int do_export(sim *s, int from, int to)
{
	bundle *b;
	char code[16];
	int rc;

	if (s->nb >= MAX_BUNDLES)
		return 0;
	b = &s->b[s->nb];
	snprintf(b->path, sizeof(b->path), "%s/x%d.tzb", s->dir, s->nb);
	snprintf(code, sizeof(code), "B%d", to);
	const char *a1[] = { "export", "--out", b->path, NULL };
	const char *a2[] = { "export", "--for", code, "--out", b->path, NULL };
	long us = kill_delay(s, K_EXPORT);
	if (us >= 0) {
		/* a killed export leaves no file, or a whole one never sent */
		if (run(s, from, s->late_kills ? -1 : us, from ? a1 : a2) == -9) {
			const char *v[] = { "verify", NULL };
			s->kills++;
			if (run(s, from, -1, v) != 0)
				return fail(s, "after a SIGKILL of export, verify of replica %d fails: %s", from, last_err(s));
		}
		unlink(b->path);
	}
	double t0 = now_us();
	rc = run(s, from, -1, from ? a1 : a2);
	s->avg_us[K_EXPORT] = s->avg_us[K_EXPORT] * 0.8 + (now_us() - t0) * 0.2;
	if (rc != 0)
		return fail(s, "export at replica %d: exit %d: %s", from, rc, last_err(s));
	b->from = from, b->to = to, b->seq = ++s->seq_next, b->imported = false;
	b->nstretch = from ? s->nstretch[from] : 0;
	TRACE("@%d export bundle %d for %d\n", from, s->nb, to);
	b->st = malloc(sizeof(*b->st));
	m_snapshot(s->m, from, to, b->st);
	s->pending[s->npending++] = s->nb++;
	return 0;
}

/* Replica r's head as its store.db records it (tz_meta; the refs follow
 * it at the next open when a kill came between the two); "" if unread. */
static void store_head(sim *s, int r, char *out, size_t cap)
{
	char path[340];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	out[0] = '\0';
	rep_dir(s, r, path, sizeof(path));
	strcat(path, "/store.db");
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT v FROM tz_meta WHERE k = 'head'", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/*
 * Did the import that moved branch r's head from `before` merge its newer
 * local commits on top of HQ's answer, making a merge commit? Asked of the
 * store, not of the last run's --json: a SIGKILL that came too late (the
 * run had finished) or past the import's commit point leaves the merge
 * made and the run again a no-op ("merged_local": false), and the stretch
 * must be cut all the same (seed 1436 on 86b58c8).
 */
static bool branch_merged(sim *s, int r, const char *before)
{
	char head[64], path[320], author[32];
	const char *a[] = { "log", "--json", "-n", "1", NULL };
	size_t len = 0;
	char *out, *par;
	bool merged = false;

	store_head(s, r, head, sizeof(head));
	if (head[0] == '\0' || strcmp(head, before) == 0 || run(s, r, -1, a) != 0)
		return false;
	snprintf(path, sizeof(path), "%s/out", s->dir);
	snprintf(author, sizeof(author), "\"author\": \"B%d\"", r);
	out = slurp(path, &len);
	/* the branch's own commit with two parents: a fast-forward lands on
	 * one of HQ's views, a seal (P14) has one parent */
	if (out && (par = strstr(out, "\"parents\": [")) != NULL && strstr(out, author) != NULL) {
		size_t span = strcspn(par, "]");
		merged = memchr(par, ',', span) != NULL;
	}
	free(out);
	return merged;
}

/* Deliver bundle i: the model says whether the receiver must take it. */
static int do_import(sim *s, int i)
{
	bundle *b = &s->b[i];
	const char *a[] = { "import", "--json", b->path, NULL };
	int rc, want;
	char before[64] = "";

	if (b->to != 0)
		store_head(s, b->to, before, sizeof(before));
	want = b->imported || b->seq > s->last_in[b->to][b->from] ? 0 : 1;
	rc = step(s, b->to, b->to ? K_IMPORT_BR : K_IMPORT_HQ, a);
	if (rc != want)
		return fail(s, "import of bundle %d (from %d to %d, %s) at replica %d: exit %d, expected %d: %s",
			    i, b->from, b->to, b->imported ? "again" : "new", b->to, rc, want, last_err(s));
	TRACE("@%d import bundle %d from %d: exit %d\n", b->to, i, b->from, rc);
	if (want == 1 || b->imported)
		return 0;
	b->imported = true;
	s->last_in[b->to][b->from] = b->seq;
	s->imports++;
	if (b->to == 0) {
		m_hq_begin(s->m);
		for (int k = s->hq_done[b->from]; k < b->nstretch; k++)
			m_hq_import(s->m, b->from, s->stretch[b->from][k]);
		if (b->nstretch > s->hq_done[b->from])
			s->hq_done[b->from] = b->nstretch;
		m_hq_import(s->m, b->from, b->st);
	} else {
		int n = s->nstretch[b->to];
		/* HQ integrates a branch's history in stretches cut at the
		 * branch's merges of an answer (docs/merge.md, "At the
		 * branch"); an import that made no merge commit (the answer
		 * was nothing new, or a fast-forward) cuts none, so the
		 * branch's commits before and after it are one stretch (seed
		 * 1665: a row edited, then deleted across such an import). */
		if (branch_merged(s, b->to, before) &&
		    n < MAX_BUNDLES && (s->stretch[b->to][n] = malloc(sizeof(m_state))) != NULL) {
			m_snapshot(s->m, b->to, 0, s->stretch[b->to][n]);
			s->nstretch[b->to]++;
		}
		m_branch_import(s->m, b->to, b->st);
	}
	return 0;
}

/* Take a pending bundle: delivered (maybe kept to come again), or lost. */
static int deliver(sim *s, bool drain)
{
	int k = pick(s, s->npending), i = s->pending[k];
	bool keep = !drain && pick(s, 100) < 15;

	if (!keep)
		s->pending[k] = s->pending[--s->npending];
	if (!drain && pick(s, 100) < 15)
		return 0;   /* lost */
	return do_import(s, i);
}

static int random_step(sim *s)
{
	int r = pick(s, s->nbranches + 1), what = pick(s, 100);

	if (what < 20)
		return app_update(s, r);
	if (what < 30)
		return app_insert(s, r);
	if (what < 35)
		return app_delete(s, r);
	if (what < 45)
		return do_commit(s, r);
	if (what < 65)
		return r ? do_export(s, r, 0) : do_export(s, 0, 1 + pick(s, s->nbranches));
	return s->npending ? deliver(s, false) : 0;
}

/* ---- checks ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Rows of replica r's store.db, as m_render writes them; the rows a
 * branch should hold when `only` > 0 (HQ's rows in branch only's view). */
static char *actual_rows(sim *s, int r, int only)
{
	char path[340], sql[600];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char **lines = NULL, *out, *p;
	size_t n = 0, cap = 0, total = 1;

	rep_dir(s, r, path, sizeof(path));
	strcat(path, "/store.db");
	snprintf(sql, sizeof(sql),
		 "SELECT 'person|' || id || '|' || owner || '|' || ifnull(a, '~') || '|' || ifnull(b, '~') || '|' ||"
		 " ifnull(c, '~') || '|' || ifnull(d, '~') || '|' || ifnull(e, '~') FROM person %s"
		 " UNION ALL SELECT 'place|' || id || '|' || ifnull(x, '~') || '|' || ifnull(y, '~') || '|' ||"
		 " ifnull(z, '~') FROM place", only > 0 ? "WHERE owner = ?1" : "");
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fail(s, "cannot read %s: %s", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return NULL;
	}
	char code[16];
	snprintf(code, sizeof(code), "B%d", only);
	if (only > 0)
		sqlite3_bind_text(st, 1, code, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap)
			lines = realloc(lines, (cap = cap ? cap * 2 : 64) * sizeof(*lines));
		lines[n] = strdup((const char *)sqlite3_column_text(st, 0));
		total += strlen(lines[n++]) + 1;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	qsort(lines, n, sizeof(*lines), cmp_str);
	p = out = malloc(total);
	for (size_t i = 0; i < n; i++) {
		p += sprintf(p, "%s\n", lines[i]);
		free(lines[i]);
	}
	*p = '\0';
	free(lines);
	return out;
}

/* First differing line of two renderings, for the failure message. */
static void first_diff(const char *a, const char *b, char *out, size_t cap)
{
	size_t i = 0, la, lb;

	while (a[i] && a[i] == b[i])
		i++;
	while (i > 0 && a[i - 1] != '\n')
		i--;
	la = strcspn(a + i, "\n"), lb = strcspn(b + i, "\n");
	snprintf(out, cap, "model '%.*s' vs store '%.*s'", (int)la, a + i, (int)lb, b + i);
}

/* HQ's queue from `conflicts list --json`, rendered like m_render_queue. */
static char *actual_queue(sim *s, char **json)
{
	const char *a[] = { "conflicts", "list", "--json", NULL };
	char path[320];
	size_t len = 0;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *out = NULL;

	if (run(s, 0, -1, a) != 0) {
		fail(s, "conflicts list --json at HQ: %s", last_err(s));
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/out", s->dir);
	*json = slurp(path, &len);
	sqlite3_open(":memory:", &db);
	if (*json == NULL || sqlite3_prepare_v2(db,
		"SELECT group_concat(line, char(10)) || char(10) FROM (SELECT json_extract(j.value, '$.kind') || '|' ||"
		" json_extract(j.value, '$.table') || '|' || json_extract(j.value, '$.key[0]') || '|' ||"
		" json_extract(j.value, '$.branch') || '|' || (SELECT ifnull(group_concat(c, ','), '') FROM (SELECT"
		" json_extract(x.value, '$.column') AS c FROM json_each(j.value, '$.columns') x ORDER BY 1)) AS line"
		" FROM json_each(?1) j ORDER BY 1)", -1, &st, NULL) != SQLITE_OK) {
		fail(s, "cannot read the queue's JSON: %s", sqlite3_errmsg(db));
	} else {
		sqlite3_bind_text(st, 1, *json, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			out = strdup(sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
		else
			fail(s, "the queue's JSON does not parse: %s", sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

/* Nothing acknowledged is lost: every column value a branch typed is in
 * HQ's rows, or was overwritten by someone who had seen it, or lost to a
 * declared policy, or (manual) waits in the queue. */
static void count_losses(sim *s, const char *hq_rows, const char *json)
{
	char needle[48];

	for (int e = 1; e < s->m->nedits; e++) {
		const m_edit *ed = &s->m->edits[e];
		/* a duplicate registration's x and y are one value written by
		 * several replicas: whichever copy survives keeps it */
		if (ed->author == 0 || ed->col < 0 || ed->fate == 1 || ed->fate == 2 ||
		    strncmp(ed->value, "dup-", 4) == 0)
			continue;
		if (ed->fate == 0)
			snprintf(needle, sizeof(needle), "|%s", ed->value);
		else
			snprintf(needle, sizeof(needle), "\"%s\"", ed->value);
		if (strstr(ed->fate == 0 ? hq_rows : json, needle) == NULL) {
			s->losses++;
			fail(s, "lost: value '%s' typed at branch %d (%s) is %s", ed->value, ed->author,
			     s->m->rows[ed->row].key, ed->fate == 0 ? "not in HQ's rows" : "not in the queue");
		}
	}
}

static int compare(sim *s, int r, int state, const char *what)
{
	char *want = NULL, *got;
	size_t len;
	int rc = 0;

	m_render(s->m, state, r, &want, &len);
	got = actual_rows(s, state == 0 && r > 0 ? 0 : r, state == 0 ? r : 0);
	if (got == NULL || strcmp(want, got) != 0) {
		char d[400] = "";
		if (got)
			first_diff(want, got, d, sizeof(d));
		s->divergences++;
		rc = fail(s, "%s: %s", what, d);
	}
	free(want);
	free(got);
	return rc;
}

static int final_checks(sim *s)
{
	const char *v[] = { "verify", NULL };
	char *want = NULL, *got, *json = NULL, *hq;
	size_t len;
	int rc = 0;

	for (int r = 0; r <= s->nbranches; r++)
		if (run(s, r, -1, v) != 0)
			return fail(s, "verify of replica %d fails: %s", r, last_err(s));
	if (compare(s, 0, 0, "HQ's rows differ from the model") < 0)
		rc = -1;
	for (int r = 1; r <= s->nbranches; r++) {
		char what[64];
		snprintf(what, sizeof(what), "branch %d's rows differ from the model", r);
		if (compare(s, r, r, what) < 0)
			rc = -1;
		snprintf(what, sizeof(what), "branch %d did not converge to HQ", r);
		if (compare(s, r, 0, what) < 0)
			rc = -1;
	}
	m_render_queue(s->m, &want, &len);
	got = actual_queue(s, &json);
	if (got == NULL || strcmp(want, got) != 0) {
		char d[400] = "";
		if (got)
			first_diff(want, got, d, sizeof(d));
		s->divergences++;
		rc = fail(s, "the conflict queue differs from the model: %s", d);
	}
	hq = actual_rows(s, 0, 0);
	if (hq && json)
		count_losses(s, hq, json);
	free(hq);
	free(json);
	free(want);
	free(got);
	return rc < 0 || s->why[0] ? -1 : 0;
}

/* ---- one seed ---- */

static int drain(sim *s)
{
	while (s->npending)
		if (deliver(s, true) < 0)
			return -1;
	/* one last round trip: every branch's news to HQ, HQ's answer back */
	for (int r = 1; r <= s->nbranches; r++)
		if (do_export(s, r, 0) < 0 || do_import(s, s->nb - 1) < 0)
			return -1;
	for (int r = 1; r <= s->nbranches; r++)
		if (do_export(s, 0, r) < 0 || do_import(s, s->nb - 1) < 0)
			return -1;
	return 0;
}

static int sh(const char *fmt, ...)
{
	char cmd[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int run_seed(sim *s, const model *m0, uint64_t seed)
{
	int rc = 0;

	s->rng = seed * 0x2545f4914f6cdd1dULL + 1;
	s->krng = seed * 0x9e3779b97f4a7c15ULL + 7;
	snprintf(s->dir, sizeof(s->dir), "%.200s/seed", s->root);
	if (sh("rm -rf '%s' && cp -a '%s' '%s'", s->dir, s->tmpl, s->dir) != 0)
		return fail(s, "cannot copy the template");
	memcpy(s->m, m0, sizeof(*s->m));
	for (int i = 0; i < s->nb; i++)
		free(s->b[i].st);
	s->nb = s->npending = 0, s->seq_next = 0, s->counter = 0;
	memset(s->last_in, 0, sizeof(s->last_in));
	for (int r = 0; r < M_MAX_REPLICAS; r++) {
		for (int k = 0; k < s->nstretch[r]; k++)
			free(s->stretch[r][k]);
		s->nstretch[r] = s->hq_done[r] = 0;
	}
	s->why[0] = '\0';
	for (int i = 0; i < s->steps && rc == 0; i++)
		rc = random_step(s);
	if (rc == 0)
		rc = drain(s);
	if (rc == 0)
		rc = final_checks(s);
	s->entries += s->m->nentries;
	return rc;
}

static int setup(sim *s, model *m0)
{
	char hq[320], path[360];
	const char *const names[] = { "P1-a", "P1-b", "P2-a", "P2-b", "P3-a", "P4-a" };
	FILE *f;

	snprintf(s->dir, sizeof(s->dir), "%.200s", s->tmpl);
	snprintf(hq, sizeof(hq), "%s/hq", s->tmpl);
	if (sh("rm -rf '%s' && mkdir -p '%s' && '%s' init-hq '%s' >/dev/null", s->tmpl, s->tmpl, s->syncctl, hq) != 0)
		return fail(s, "init-hq failed");
	snprintf(path, sizeof(path), "%s/schema.sql", s->root);
	if ((f = fopen(path, "w")) == NULL || fputs(SCHEMA, f) < 0 || fclose(f) != 0)
		return fail(s, "cannot write %s", path);
	if (sh("'%s' -C '%s' schema apply '%s' >/dev/null", s->syncctl, hq, path) != 0)
		return fail(s, "schema apply failed");
	m_init(m0, s->nbranches);
	s->m = m0;
	for (int i = 0; i < 6; i++) {
		int owner = names[i][1] - '0';
		if (owner > s->nbranches)
			continue;
		int row = m_insert(m0, -1, T_PERSON, owner, names[i], false, NULL);
		const m_cell *c = &m0->rep[0].row[row];
		char own[16];
		snprintf(own, sizeof(own), "B%d", owner);
		const char *v[] = { names[i], own, val(s, c->col[0]), val(s, c->col[1]), val(s, c->col[2]),
				    val(s, c->col[3]), val(s, c->col[4]) };
		if (sql_exec(s, 0, "INSERT INTO person VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", v, 7) < 0)
			return -1;
	}
	for (int i = 0; i < 3; i++) {
		char key[8];
		snprintf(key, sizeof(key), "S-%c", 'a' + i);
		int row = m_insert(m0, -1, T_PLACE, 0, key, false, NULL);
		const m_cell *c = &m0->rep[0].row[row];
		const char *v[] = { key, val(s, c->col[0]), val(s, c->col[1]), val(s, c->col[2]) };
		if (sql_exec(s, 0, "INSERT INTO place VALUES (?1, ?2, ?3, ?4)", v, 4) < 0)
			return -1;
	}
	if (sh("'%s' -C '%s' commit >/dev/null", s->syncctl, hq) != 0)
		return fail(s, "the first commit failed");
	for (int r = 1; r <= s->nbranches; r++)
		if (sh("TZ_PASSPHRASE=sim '%s' -C '%s' branch add B%d --out '%s/e%d' >/dev/null && "
		       "TZ_PASSPHRASE=sim '%s' init-branch '%s/b%d' --enroll '%s/e%d' >/dev/null",
		       s->syncctl, hq, r, s->tmpl, r, s->syncctl, s->tmpl, r, s->tmpl, r) != 0 ||
		    /* HQ encrypts to a branch once its first bundle bound its key */
		    sh("'%s' -C '%s/b%d' export --out '%s/k%d' >/dev/null && '%s' -C '%s' import '%s/k%d' >/dev/null",
		       s->syncctl, s->tmpl, r, s->tmpl, r, s->syncctl, hq, s->tmpl, r) != 0)
			return fail(s, "enrolling branch %d failed", r);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: tz-sim [--seed S | --seeds N [--first S]] [--branches N] [--steps K]"
			" [--kill-rate PCT] [--late-kills] [--syncctl PATH] [--keep]\n");
	exit(2);
}

static long num(const char *v)
{
	char *end;
	long n;

	errno = 0;
	n = v ? strtol(v, &end, 10) : -1;
	if (v == NULL || errno || *end || n < 0)
		usage();
	return n;
}

typedef struct {
	long seeds, first;
	bool keep;
} sim_opts;

static void parse_args(sim *s, sim_opts *o, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--seed") == 0)
			o->first = num(v), o->seeds = 1, i++;
		else if (strcmp(a, "--seeds") == 0)
			o->seeds = num(v), i++;
		else if (strcmp(a, "--first") == 0)
			o->first = num(v), i++;
		else if (strcmp(a, "--branches") == 0 && (s->nbranches = (int)num(v)) >= 1 && s->nbranches < M_MAX_REPLICAS)
			i++;
		else if (strcmp(a, "--steps") == 0)
			s->steps = (int)num(v), i++;
		else if (strcmp(a, "--kill-rate") == 0)
			s->kill_rate = (int)num(v), i++;
		else if (strcmp(a, "--syncctl") == 0 && v)
			s->syncctl = v, i++;
		else if (strcmp(a, "--keep") == 0)
			o->keep = true;
		else if (strcmp(a, "--late-kills") == 0)
			s->late_kills = true;
		else
			usage();
	}
}

/* The run's directory: on tmpfs when there is one (a SIGKILL does not lose
 * the page cache, so the fsyncs a disk would make only cost time here; the
 * fault sweeps are what test them). */
static int make_root(sim *s)
{
	const char *tmp = getenv("TZ_SIM_TMPDIR");

	if (tmp == NULL)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	if (strlen(tmp) > 180)
		return fprintf(stderr, "sim: TMPDIR too long\n"), -1;
	snprintf(s->root, sizeof(s->root), "%s/tz-sim.XXXXXX", tmp);
	if (mkdtemp(s->root) == NULL)
		return perror("sim"), -1;
	snprintf(s->tmpl, sizeof(s->tmpl), "%.200s/template", s->root);
	return 0;
}

int main(int argc, char **argv)
{
	static sim S;
	sim *s = &S;
	sim_opts o = { 1, 1, false };
	model *m0 = calloc(1, sizeof(*m0));
	long failed = 0;
	const char *build = getenv("TZ_BUILD");
	char defctl[300];
	double t0 = now_us();

	snprintf(defctl, sizeof(defctl), "%s/syncctl", build ? build : "build");
	s->syncctl = defctl, s->nbranches = 2, s->steps = 40, s->kill_rate = 8;
	parse_args(s, &o, argc, argv);
	if (m0 == NULL || make_root(s) < 0)
		return 2;
	for (int k = 0; k < 4; k++)
		s->avg_us[k] = 30000;
	/* setup writes the enrolled rows into m0 (through s->m); each seed
	 * then works on a copy of it */
	s->m = m0;
	if (setup(s, m0) < 0) {
		printf("Bail out! setting up the template: %s\n", s->why);
		return 1;
	}
	if ((s->m = calloc(1, sizeof(*s->m))) == NULL)
		return 2;
	for (long i = 0; i < o.seeds; i++) {
		uint64_t seed = (uint64_t)(o.first + i);
		if (run_seed(s, m0, seed) == 0) {
			printf("ok %ld - seed %llu\n", i + 1, (unsigned long long)seed);
		} else {
			failed++;
			printf("not ok %ld - seed %llu: %s\n", i + 1, (unsigned long long)seed, s->why);
			printf("# replay: %s/tests/tz-sim --seed %llu --branches %d --steps %d --kill-rate %d%s --keep\n",
			       build ? build : "build", (unsigned long long)seed, s->nbranches, s->steps, s->kill_rate,
			       s->late_kills ? " --late-kills" : "");
		}
		fflush(stdout);
	}
	printf("1..%ld\n", o.seeds);
	printf("# %ld imports applied, %ld conflict entries queued and matched\n", s->imports, s->entries);
	printf("# tally: seeds=%ld kills=%ld divergences=%ld losses=%ld (%.1f s)\n", o.seeds, s->kills,
	       s->divergences, s->losses, (now_us() - t0) / 1e6);
	if (!o.keep)
		sh("rm -rf '%s'", s->root);
	else
		printf("# kept %s\n", s->root);
	for (int i = 0; i < s->nb; i++)
		free(s->b[i].st);
	for (int r = 0; r < M_MAX_REPLICAS; r++)
		for (int k = 0; k < s->nstretch[r]; k++)
			free(s->stretch[r][k]);
	free(s->m);
	free(m0);
	return failed ? 1 : 0;
}

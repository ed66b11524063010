/*
 * commit.c - seal the change log into one signed commit.
 *
 * Order (crash-safe, DESIGN §3):
 *   1. in a read transaction: read the log, the dirty rows and the schema;
 *      build the new blobs and trees in memory (only the touched paths);
 *   2. write them as one pack (fsynced), then the signed commit object;
 *   3. in one write transaction: delete the consumed log entries and record
 *      the new head and clock in tz_meta;
 *   4. move refs/heads/main (tz_store_open redoes it after a crash).
 * A kill before 3 leaves unreferenced objects (garbage, never
 * inconsistency) and the log intact; after 3 the commit is durable.
 * The application keeps writing during 1-2 (WAL): entries past the last
 * one read stay in the log for the next commit.
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

/* A row that the commit rewrites: its key and where it sits. */
typedef struct {
	tz_table *t;
	char *key;            /* encoded key (owned) */
	size_t key_len;
	char *old_part;       /* partition in the head tree, NULL if absent */
	size_t old_part_len;
	char *new_part;       /* partition now, NULL if the row is gone */
	size_t new_part_len;
	tz_oid oid;           /* the row's blob when new_part != NULL */
	char fan[2];
} dirty_row;

typedef struct {
	tz_store *s;
	tz_tables ts;
	tz_staging st;
	tz_hmap keys;             /* tid(8 bytes) + key -> 1 + index in rows */
	dirty_row *rows;
	size_t nrows, caprows;
	bool *resync;             /* per table index: rebuild whole */
	tz_buf log;               /* the _log blob */
	int64_t max_seq;
	uint64_t entries;
	uint64_t hlc;
	int64_t version;          /* the schema version of the new commit */
	tz_tree head_schema;      /* the head's _schema tree */
	const char *author;       /* an administrator signing, or NULL: the replica */
	const tz_keypair *kp;
	tz_buf scratch;
} commit_ctx;

static void ctx_release(commit_ctx *c)
{
	for (size_t i = 0; i < c->nrows; i++) {
		tz_free(c->rows[i].key);
		tz_free(c->rows[i].old_part);
		tz_free(c->rows[i].new_part);
	}
	tz_free(c->rows);
	tz_free(c->resync);
	tz_hmap__release(&c->keys);
	tz_staging__release(&c->st);
	tz_schema__release(&c->ts);
	tz_buf_release(&c->log);
	tz_buf_release(&c->scratch);
	tz_tree__release(&c->head_schema);
}

/* The hybrid logical clock: 48 bits of milliseconds, 16 of counter. */
static uint64_t hlc_tick(uint64_t prev, int64_t wall_ms)
{
	uint64_t pt = wall_ms > 0 ? (uint64_t)wall_ms << 16 : 0;

	return pt > prev ? pt : prev + 1;
}

/* A Julian day (what the triggers record) in ms since the epoch. */
static int64_t julian_ms(double jd)
{
	double ms = (jd - 2440587.5) * 86400000.0;

	return ms > 0 && ms < 9e15 ? (int64_t)llround(ms) : 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_buf(const tz_buf *b, size_t *len)
{
	char *p = tz_malloc(b->len + 1);

	if (p) {
		memcpy(p, b->data ? (const char *)b->data : "", b->len);
		p[b->len] = '\0';
		*len = b->len;
	}
	return p;
}

/* Find or add the dirty row (t, key); *row_out NULL-free on success. */
static int dirty_get(commit_ctx *c, tz_table *t, const tz_buf *key, dirty_row **row_out, bool *added)
{
	tz_hmap_slot *sl;
	int rc;

	tz_buf_clear(&c->scratch);
	tz_buf_put(&c->scratch, &t->tid, sizeof(t->tid));
	tz_buf_put(&c->scratch, key->data, key->len);
	if ((rc = tz_buf_error(&c->scratch)) < 0 ||
	    (rc = tz_hmap__upsert(&c->keys, c->scratch.data, c->scratch.len, &sl, added)) < 0)
		return rc;
	if (!*added) {
		*row_out = &c->rows[sl->value - 1];
		return TZ_OK;
	}
	if (tz_array_grow(&c->rows, &c->caprows, c->nrows, sizeof(*c->rows)) < 0)
		return TZ_ENOMEM;
	*row_out = memset(&c->rows[c->nrows], 0, sizeof(dirty_row));
	(*row_out)->t = t;
	if (((*row_out)->key = dup_buf(key, &(*row_out)->key_len)) == NULL)
		return TZ_ENOMEM;
	tz_fanout__of((*row_out)->fan, (*row_out)->key, (*row_out)->key_len);
	sl->value = ++c->nrows;
	return TZ_OK;
}

/* One log entry: stamp it, record it in _log, note its key. */
static int take_entry(commit_ctx *c, sqlite3_stmt *q, tz_buf *key)
{
	static const char ops[] = "?iudr";
	tz_table *t = tz_schema__by_tid(&c->ts, sqlite3_column_int64(q, 1));
	int op = sqlite3_column_int(q, 2);
	tz_value kv[TZ_KEY_MAX_COLUMNS], po;
	dirty_row *row;
	bool added;
	int rc;

	c->max_seq = sqlite3_column_int64(q, 0);
	c->entries++;
	if (t == NULL)
		return TZ_OK;   /* a table no longer tracked: consumed */
	for (size_t k = 0; k < t->npk; k++)
		tz_sql__column_value(q, 5 + (int)k, &kv[k]);
	tz_buf_clear(key);
	if ((rc = tz_key_encode(key, kv, t->npk)) < 0)
		return tz_error_wrap(rc, "change log entry %lld of '%s'", (long long)c->max_seq, t->name);
	c->hlc = hlc_tick(c->hlc, julian_ms(sqlite3_column_double(q, 3)));
	tz_buf_printf(&c->log, "%016llx %c %s %s\n", (unsigned long long)c->hlc,
		      ops[op >= 1 && op <= 4 ? op : 0], t->enc, (const char *)key->data);
	if (c->resync[t - c->ts.t])
		return TZ_OK;
	if ((rc = dirty_get(c, t, key, &row, &added)) < 0)
		return rc;
	/* The first entry of a key tells where the head has it: an insert
	 * means nowhere; otherwise `po` is the owner it had. */
	if (added && op != 1) {
		tz_buf part = TZ_BUF_INIT;
		tz_sql__column_value(q, 4, &po);
		rc = tz_schema__partition(&part, t, &po);
		if (rc == TZ_OK && (row->old_part = dup_buf(&part, &row->old_part_len)) == NULL)
			rc = TZ_ENOMEM;
		tz_buf_release(&part);
	}
	return rc;
}

static int read_log(commit_ctx *c)
{
	sqlite3_stmt *q = NULL;
	tz_buf key = TZ_BUF_INIT;
	int rc, step;

	if ((rc = tz_sql__prepare(c->s, &q, "SELECT seq, tid, op, ts, po, k0, k1, k2, k3, k4, k5, k6, k7"
					    " FROM tz_changes ORDER BY seq")) < 0)
		return rc;
	tz_buf_puts(&c->log, "tazamun-log 1\n");
	while ((step = sqlite3_step(q)) == SQLITE_ROW)
		if ((rc = take_entry(c, q, &key)) < 0)
			goto done;
	rc = step == SQLITE_DONE ? tz_buf_error(&c->log) : tz_sql__error(c->s, step, "cannot read the change log");
done:
	tz_buf_release(&key);
	sqlite3_finalize(q);
	return rc;
}

/* Encode the current row of `q` (columns in t->cols order), stage its
 * blob and note its partition in `row`. */
static int stage_row(commit_ctx *c, sqlite3_stmt *q, dirty_row *row)
{
	tz_buf part = TZ_BUF_INIT;
	int rc;

	tz_buf_clear(&c->scratch);
	if ((rc = tz_schema__encode_row(row->t, q, &c->scratch, &part, NULL)) < 0 ||
	    (rc = tz_staging__add(c->s, &c->st, &row->oid, GIT_OBJECT_BLOB, c->scratch.data, c->scratch.len)) < 0) {
		tz_error_wrap(rc, "table '%s' key '%s'", row->t->name, row->key);
		goto done;
	}
	if ((row->new_part = dup_buf(&part, &row->new_part_len)) == NULL)
		rc = TZ_ENOMEM;
done:
	tz_buf_release(&part);
	return rc;
}

/* Read the current content of every dirty key. */
static int read_dirty(commit_ctx *c)
{
	for (size_t i = 0; i < c->nrows; i++) {
		dirty_row *row = &c->rows[i];
		tz_value kv[TZ_KEY_MAX_COLUMNS];
		uint8_t *arena = NULL;
		sqlite3_stmt *q;
		size_t nk;
		int rc, step;

		if ((rc = tz_key_decode(kv, TZ_KEY_MAX_COLUMNS, &nk, &arena, row->key, row->key_len)) < 0 ||
		    (rc = tz_schema__select_row(c->s, row->t, &q)) < 0) {
			tz_free(arena);
			return rc;
		}
		for (size_t k = 0; k < nk; k++)
			tz_sql__bind_value(q, (int)k + 1, &kv[k]);
		step = sqlite3_step(q);
		if (step == SQLITE_ROW)
			rc = stage_row(c, q, row);
		else if (step != SQLITE_DONE)
			rc = tz_sql__error(c->s, step, "cannot read a changed row");
		sqlite3_reset(q);
		tz_free(arena);
		if (rc < 0)
			return rc;
		if ((i & 1023) == 1023 || i + 1 == c->nrows)
			tz_progress__report(c->s, "reading changed rows", i + 1, c->nrows);
	}
	return TZ_OK;
}

/* Every row of a table rebuilt whole (newly tracked, or its DDL changed). */
static int read_whole(commit_ctx *c, tz_table *t)
{
	tz_buf key = TZ_BUF_INIT;
	sqlite3_stmt *q = NULL;
	uint64_t n = 0;
	int rc, step;

	if ((rc = tz_schema__select_all(c->s, t, &q)) < 0)
		goto done;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		dirty_row *row;
		bool added;
		tz_buf_clear(&key);
		if ((rc = tz_schema__encode_row(t, q, NULL, NULL, &key)) < 0 ||
		    (rc = dirty_get(c, t, &key, &row, &added)) < 0 ||
		    (rc = stage_row(c, q, row)) < 0)
			goto done;
		if ((++n & 4095) == 0)
			tz_progress__report(c->s, "reading rows", n, 0);
	}
	rc = step == SQLITE_DONE ? TZ_OK : tz_sql__error(c->s, step, "cannot read table rows");
done:
	if (rc < 0)
		tz_error_wrap(rc, "table '%s'", t->name);
	sqlite3_finalize(q);
	tz_buf_release(&key);
	return rc;
}

/* Which tables are rebuilt whole: those whose DDL differs from the
 * head's _schema/tables (newly tracked tables have none). */
static int load_resync(commit_ctx *c, const tz_oid *head_root)
{
	tz_tree ht;
	int rc;

	if ((c->resync = tz_calloc(c->ts.n ? c->ts.n : 1, sizeof(bool))) == NULL)
		return TZ_ENOMEM;
	if ((rc = tz_schema__head_tables(c->s, head_root, &ht)) < 0)
		return rc;
	for (size_t i = 0; i < c->ts.n && rc == TZ_OK; i++)
		rc = tz_schema__ddl_changed(c->s, &c->ts.t[i], &ht, &c->resync[i]);
	tz_tree__release(&ht);
	return rc;
}

/* Turn dirty rows into sorted path changes (a moved row is a deletion at
 * its old path and an addition at the new one). */
static int make_changes(commit_ctx *c, tz_path_change **out, size_t *nout)
{
	tz_path_change *ch = tz_calloc(c->nrows * 2 + 1, sizeof(*ch));
	size_t n = 0;

	*out = NULL;
	*nout = 0;
	if (ch == NULL)
		return TZ_ENOMEM;
	for (size_t i = 0; i < c->nrows; i++) {
		const dirty_row *r = &c->rows[i];
		for (int side = 0; side < 2; side++) {
			const char *part = side ? r->new_part : r->old_part;
			size_t plen = side ? r->new_part_len : r->old_part_len;
			if (part == NULL || (side == 0 && r->new_part && plen == r->new_part_len &&
					     memcmp(part, r->new_part, plen) == 0))
				continue;   /* absent on that side, or not moved */
			ch[n] = (tz_path_change){ { r->t->enc, part, &r->fan[0], &r->fan[1], r->key },
						  { strlen(r->t->enc), plen, 1, 1, r->key_len },
						  r->oid, side == 0, TZ_PATH_DEPTH };
			n++;
		}
	}
	qsort(ch, n, sizeof(*ch), tz_path_change__cmp);
	*out = ch;
	*nout = n;
	return TZ_OK;
}

/* Stage a blob from text. */
static int stage_text(commit_ctx *c, tz_tree_entry *e, const char *name, const tz_buf *b)
{
	e->name = name;
	e->name_len = strlen(name);
	e->mode = 0100644;
	if (b->err != TZ_OK)
		return b->err;
	return tz_staging__add(c->s, &c->st, &e->oid, GIT_OBJECT_BLOB, b->data ? b->data : (uint8_t *)"", b->len);
}

/* _schema/tz_track/<table>: each declaration as a canonical row. */
static int stage_declarations(commit_ctx *c, tz_tree_entry *out)
{
	static const char *const names[3] = { "owner_column", "scope", "tbl" };
	tz_tree_entry *e = tz_calloc(c->ts.n ? c->ts.n : 1, sizeof(*e));
	sqlite3_stmt *q = NULL;
	size_t n = 0;
	int rc, step = SQLITE_DONE;

	if (e == NULL)
		return TZ_ENOMEM;
	if ((rc = tz_sql__prepare(c->s, &q, "SELECT owner_column, scope, tbl FROM tz_track ORDER BY tbl")) < 0)
		goto done;
	while (n < c->ts.n && (step = sqlite3_step(q)) == SQLITE_ROW) {
		tz_column cols[3];
		for (int i = 0; i < 3; i++) {
			cols[i].name = names[i];
			cols[i].name_len = strlen(names[i]);
			tz_sql__column_value(q, i, &cols[i].v);
		}
		tz_buf_clear(&c->scratch);
		if ((rc = tz_row_encode(&c->scratch, cols, 3)) < 0 ||
		    (rc = tz_staging__add(c->s, &c->st, &e[n].oid, GIT_OBJECT_BLOB, c->scratch.data, c->scratch.len)) < 0)
			goto done;
		e[n].name = c->ts.t[n].enc;   /* same ORDER BY tbl as tz_schema__load */
		e[n].name_len = strlen(c->ts.t[n].enc);
		e[n].mode = 0100644;
		n++;
	}
	if (step != SQLITE_DONE && step != SQLITE_ROW) {
		rc = tz_sql__error(c->s, step, "cannot read tz_track");
		goto done;
	}
	*out = (tz_tree_entry){ "tz_track", 8, 040000, { { 0 } } };
	rc = tz_tree__write(c->s, &c->st, &out->oid, e, n);
done:
	sqlite3_finalize(q);
	tz_free(e);
	return rc;
}

/* _schema/tables/<table>.sql: each tracked table's DDL. */
static int stage_ddl(commit_ctx *c, tz_tree_entry *out)
{
	tz_tree_entry *e = tz_calloc(c->ts.n ? c->ts.n : 1, sizeof(*e));
	char **names = tz_calloc(c->ts.n ? c->ts.n : 1, sizeof(*names));
	tz_buf ddl = TZ_BUF_INIT;
	int rc = e && names ? TZ_OK : TZ_ENOMEM;

	for (size_t i = 0; i < c->ts.n && rc == TZ_OK; i++) {
		size_t len = strlen(c->ts.t[i].enc) + 5;
		tz_buf_clear(&ddl);
		if ((names[i] = tz_malloc(len)) == NULL) {
			rc = TZ_ENOMEM;
			break;
		}
		snprintf(names[i], len, "%s.sql", c->ts.t[i].enc);
		e[i] = (tz_tree_entry){ names[i], len - 1, 0100644, { { 0 } } };
		if ((rc = tz_schema__ddl(c->s, &c->ts.t[i], &ddl)) == TZ_OK)
			rc = tz_staging__add(c->s, &c->st, &e[i].oid, GIT_OBJECT_BLOB, ddl.data ? ddl.data : (uint8_t *)"",
					     ddl.len);
	}
	*out = (tz_tree_entry){ "tables", 6, 040000, { { 0 } } };
	if (rc == TZ_OK)
		rc = tz_tree__write(c->s, &c->st, &out->oid, e, c->ts.n);
	for (size_t i = 0; names && i < c->ts.n; i++)
		tz_free(names[i]);
	tz_free(names);
	tz_free(e);
	tz_buf_release(&ddl);
	return rc;
}

/* _schema/<decl>/<table>: the merge declarations of each table (tz_policy,
 * tz_group) as one canonical row per table whose columns are the declared
 * names (a column, a group, '*' or '@delete') and whose values are the
 * policy or the group.  Tables without declarations have no entry; *present
 * is false when no table has one (the subtree is then left out). */
typedef struct {
	char *name, *value;
} decl_pair;

static void pairs_clear(decl_pair *p, size_t *n)
{
	for (size_t i = 0; i < *n; i++) {
		tz_free(p[i].name);
		tz_free(p[i].value);
	}
	*n = 0;
}

/* One table's declarations as a row blob, entry `e` named by its table. */
static int stage_table_pairs(commit_ctx *c, tz_tree_entry *e, const char *dir, const char *tbl, const decl_pair *p,
			     size_t n)
{
	tz_table *t = tz_schema__by_name(&c->ts, tbl);
	tz_column *cols;
	int rc;

	if (t == NULL)
		return tz_error_set(TZ_EINVAL, "%s: table '%s' is not tracked", dir, tbl);
	if ((cols = tz_calloc(n, sizeof(*cols))) == NULL)
		return TZ_ENOMEM;
	for (size_t i = 0; i < n; i++)
		cols[i] = (tz_column){ p[i].name, strlen(p[i].name),
				       { TZ_VTEXT, 0, 0, (const uint8_t *)p[i].value, strlen(p[i].value) } };
	tz_buf_clear(&c->scratch);
	if ((rc = tz_row_encode(&c->scratch, cols, n)) == TZ_OK &&
	    (rc = tz_staging__add(c->s, &c->st, &e->oid, GIT_OBJECT_BLOB, c->scratch.data, c->scratch.len)) == TZ_OK)
		*e = (tz_tree_entry){ t->enc, strlen(t->enc), 0100644, e->oid };
	tz_free(cols);
	return rc;
}

/* _schema/<dir>/<table>: the merge declarations of each table (tz_policy,
 * tz_group) as one canonical row per table whose columns are the declared
 * names (a column, a group, '*' or '@delete') and whose values are the
 * policy or the group.  Tables without declarations have no entry; *present
 * is false when no table has one (the subtree is then left out). */
static int stage_pairs(commit_ctx *c, tz_tree_entry *out, const char *dir, const char *sql, bool *present)
{
	tz_tree_entry *e = tz_calloc(c->ts.n ? c->ts.n : 1, sizeof(*e));
	decl_pair *p = NULL;
	size_t n = 0, np = 0, cap = 0;
	sqlite3_stmt *q = NULL;
	char *tbl = NULL;
	int rc, step;

	*present = false;
	if (e == NULL)
		return TZ_ENOMEM;
	if ((rc = tz_sql__prepare(c->s, &q, sql)) < 0)
		goto done;
	do {
		const char *t, *name, *value;
		step = sqlite3_step(q);
		if (step != SQLITE_ROW && step != SQLITE_DONE) {
			rc = tz_sql__error(c->s, step, "cannot read the merge declarations");
			goto done;
		}
		t = step == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : NULL;
		if (tbl && (t == NULL || strcmp(t, tbl) != 0)) {
			/* the previous table is complete */
			if (n >= c->ts.n) {
				rc = tz_error_set(TZ_EINVAL, "%s: table '%s' is not tracked", dir, tbl);
				goto done;
			}
			if ((rc = stage_table_pairs(c, &e[n++], dir, tbl, p, np)) < 0)
				goto done;
			pairs_clear(p, &np);
			tz_free(tbl);
			tbl = NULL;
		}
		if (step == SQLITE_DONE)
			break;
		name = (const char *)sqlite3_column_text(q, 1);
		value = (const char *)sqlite3_column_text(q, 2);
		if (t == NULL || name == NULL || value == NULL) {
			rc = tz_error_set(TZ_EINVAL, "%s: a declaration holds NULL", dir);
			goto done;
		}
		if ((tbl == NULL && (tbl = tz_strdup(t)) == NULL) || tz_array_grow(&p, &cap, np, sizeof(*p)) < 0) {
			rc = TZ_ENOMEM;
			goto done;
		}
		p[np].name = tz_strdup(name);
		p[np].value = tz_strdup(value);
		np++;
		if (p[np - 1].name == NULL || p[np - 1].value == NULL) {
			rc = TZ_ENOMEM;
			goto done;
		}
	} while (step == SQLITE_ROW);
	*out = (tz_tree_entry){ dir, strlen(dir), 040000, { { 0 } } };
	if (n > 0) {
		*present = true;
		rc = tz_tree__write(c->s, &c->st, &out->oid, e, n);
	}
done:
	pairs_clear(p, &np);
	tz_free(p);
	tz_free(tbl);
	sqlite3_finalize(q);
	tz_free(e);
	return rc;
}

/* A set of (name, text) pairs as one row blob (names sorted and unique:
 * the SELECT orders them by a primary key). */
static int stage_named_rows(commit_ctx *c, tz_tree_entry *e, const char *name, const char *sql, bool *present,
			    tz_oid *oid)
{
	sqlite3_stmt *q = NULL;
	decl_pair *p = NULL;
	tz_column *cols = NULL;
	size_t n = 0, cap = 0;
	int rc, step;

	*present = false;
	if ((rc = tz_sql__prepare(c->s, &q, sql)) < 0)
		return rc;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(q, 0), *v = (const char *)sqlite3_column_text(q, 1);
		if (k == NULL || v == NULL) {
			rc = tz_error_set(TZ_EINVAL, "%s: a declaration holds NULL", name);
			break;
		}
		if (tz_array_grow(&p, &cap, n, sizeof(*p)) < 0) {
			rc = TZ_ENOMEM;
			break;
		}
		p[n].name = tz_strdup(k);
		p[n].value = tz_strdup(v);
		if (p[n++].name == NULL || p[n - 1].value == NULL) {
			rc = TZ_ENOMEM;
			break;
		}
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_sql__error(c->s, step, "cannot read the integrity declarations");
	if (rc == TZ_OK && n > 0 && (cols = tz_calloc(n, sizeof(*cols))) == NULL)
		rc = TZ_ENOMEM;
	if (rc == TZ_OK && n > 0) {
		for (size_t i = 0; i < n; i++)
			cols[i] = (tz_column){ p[i].name, strlen(p[i].name),
					       { TZ_VTEXT, 0, 0, (const uint8_t *)p[i].value, strlen(p[i].value) } };
		tz_buf_clear(&c->scratch);
		if ((rc = tz_row_encode(&c->scratch, cols, n)) == TZ_OK &&
		    (rc = tz_staging__add(c->s, &c->st, oid, GIT_OBJECT_BLOB, c->scratch.data, c->scratch.len)) == TZ_OK) {
			*e = (tz_tree_entry){ name, strlen(name), 0100644, *oid };
			*present = true;
		}
	}
	pairs_clear(p, &n);
	tz_free(p);
	tz_free(cols);
	sqlite3_finalize(q);
	return rc;
}

/* _schema/tz_unique/<table> and tz_access/<table> (one canonical row per
 * table, like the policies: unique name -> "cols|normalize", column ->
 * writer) and _schema/tz_invariant (name -> query); docs/integrity.md. */
static int stage_integrity(commit_ctx *c, tz_tree_entry *e, size_t *n)
{
	bool has;
	tz_oid inv;
	int rc;

	if ((rc = stage_pairs(c, e, "tz_unique",
			      "SELECT tbl, name, cols || '|' || coalesce(normalize, '') FROM tz_unique ORDER BY tbl, name",
			      &has)) < 0)
		return rc;
	e += has;
	*n += has;
	if ((rc = stage_pairs(c, e, "tz_access", "SELECT tbl, col, writer FROM tz_access ORDER BY tbl, col", &has)) < 0)
		return rc;
	e += has;
	*n += has;
	if ((rc = stage_named_rows(c, e, "tz_invariant", "SELECT name, sql FROM tz_invariant ORDER BY name", &has,
				   &inv)) < 0)
		return rc;
	*n += has;
	return TZ_OK;
}

/* The head's schema version: its _schema/version blob (0 when none), and
 * its _schema tree (kept in c->head_schema). */
static int head_version(commit_ctx *c, const tz_tree *head, int64_t *out)
{
	const tz_tree_entry *e = head ? tz_tree__find(head, "_schema", 7) : NULL, *v;
	git_object_t type;
	uint8_t *data = NULL;
	size_t len;
	int rc = TZ_OK;

	*out = 0;
	if (e == NULL)
		return TZ_OK;
	if ((rc = tz_tree__read(c->s, NULL, &e->oid, &c->head_schema)) < 0)
		return rc;
	if ((v = tz_tree__find(&c->head_schema, "version", 7)) != NULL &&
	    (rc = tz_obj__read(c->s, NULL, &v->oid, &type, &data, &len)) == TZ_OK) {
		char num[24];
		snprintf(num, sizeof(num), "%.*s", (int)(len < 23 ? len : 23), (const char *)data);
		*out = strtoll(num, NULL, 10);
	}
	tz_free(data);
	return rc;
}

/* The _schema tree: tables/, tz_track/, tz_policy/ and tz_group/ when
 * declared, and the version, which goes up by one whenever any of the
 * others differs from the head's. */
static int stage_schema(commit_ctx *c, const tz_tree *head, tz_oid *out)
{
	tz_buf ver = TZ_BUF_INIT;
	tz_tree_entry e[8];
	bool has_policy, has_group, same = true;
	size_t n = 0;
	int64_t hv;
	int rc;

	if ((rc = stage_ddl(c, &e[n++])) < 0 || (rc = stage_declarations(c, &e[n++])) < 0 ||
	    (rc = stage_pairs(c, &e[n], "tz_policy", "SELECT tbl, col, policy FROM tz_policy ORDER BY tbl, col",
			      &has_policy)) < 0)
		return rc;
	n += has_policy;
	if ((rc = stage_pairs(c, &e[n], "tz_group", "SELECT tbl, col, grp FROM tz_group ORDER BY tbl, col",
			      &has_group)) < 0)
		return rc;
	n += has_group;
	if ((rc = stage_integrity(c, &e[n], &n)) < 0 || (rc = head_version(c, head, &hv)) < 0)
		return rc;
	/* the version goes up when anything but the version differs */
	if (c->head_schema.n != n + (tz_tree__find(&c->head_schema, "version", 7) != NULL))
		same = false;
	for (size_t i = 0; i < n && same; i++) {
		const tz_tree_entry *old = tz_tree__find(&c->head_schema, e[i].name, e[i].name_len);
		same = old && memcmp(&old->oid, &e[i].oid, sizeof(tz_oid)) == 0;
	}
	c->version = same ? hv : hv + 1;
	tz_buf_printf(&ver, "%lld\n", (long long)c->version);
	if ((rc = stage_text(c, &e[n], "version", &ver)) == TZ_OK)
		rc = tz_tree__write(c->s, &c->st, out, e, n + 1);
	tz_buf_release(&ver);
	return rc;
}

static size_t lower_bound(const tz_path_change *ch, size_t n, const char *enc, size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2, m = ch[mid].comp_len[0];
		int c = memcmp(ch[mid].comp[0], enc, m < len ? m : len);
		if (c < 0 || (c == 0 && m < len))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* _redirect/<table>: the rows merged into others (duplicates merge;
 * docs/integrity.md), one row blob per table: the dropped row's key ->
 * the key it was merged into.  HQ writes it from tz_redirect; a branch
 * keeps what HQ's views brought (it never changes it). */
static int stage_redirects(commit_ctx *c, const tz_tree *head, tz_tree_entry *e, size_t *n)
{
	const tz_tree_entry *old = head ? tz_tree__find(head, "_redirect", 9) : NULL;
	bool present = false;
	int rc;

	if (strcmp(c->s->code, "HQ") != 0) {
		if (old)
			e[(*n)++] = *old;
		return TZ_OK;
	}
	if ((rc = stage_pairs(c, &e[*n], "_redirect",
			      "SELECT tbl, from_key, to_key FROM tz_redirect ORDER BY tbl, from_key", &present)) < 0)
		return rc;
	*n += present;
	return TZ_OK;
}

/* Build the new root tree's entries (without _log) into e[0..*n). */
static int build_root(commit_ctx *c, const tz_tree *head, tz_tree_entry *e, size_t *n)
{
	tz_path_change *ch = NULL;
	size_t nch = 0, placed = 0;
	tz_oid schema;
	int rc;

	*n = 0;
	if ((rc = make_changes(c, &ch, &nch)) < 0)
		goto done;
	for (size_t ti = 0; ti < c->ts.n; ti++) {
		tz_table *t = &c->ts.t[ti];
		size_t len = strlen(t->enc), i = lower_bound(ch, nch, t->enc, len), j = i;
		const tz_tree_entry *old = head ? tz_tree__find(head, t->enc, len) : NULL;
		tz_oid base = { { 0 } }, sub;
		bool empty = false;

		if (old && old->mode == 040000 && !c->resync[ti])
			base = old->oid;
		while (j < nch && ch[j].comp_len[0] == len && memcmp(ch[j].comp[0], t->enc, len) == 0)
			j++;
		placed += j - i;
		if (j == i && !c->resync[ti]) {
			sub = base;
			empty = tz_oid_is_zero(&base);
		} else if ((rc = tz_tree__apply(c->s, &c->st, &sub, &empty, &base, 1, ch + i, j - i)) < 0) {
			goto done;
		}
		if (!empty)
			e[(*n)++] = (tz_tree_entry){ t->enc, len, 040000, sub };
	}
	if (placed != nch) {
		rc = tz_error_set(TZ_EINVAL, "internal: %zu changes left unplaced", nch - placed);
		goto done;
	}
	if ((rc = stage_schema(c, head, &schema)) == TZ_OK)
		e[(*n)++] = (tz_tree_entry){ "_schema", 7, 040000, schema };
	if (rc == TZ_OK)
		rc = stage_redirects(c, head, e, n);
done:
	tz_free(ch);
	return rc;
}

/* Does the head's root (less its _log) hold exactly entries e? */
static bool same_root(const tz_tree *head, tz_tree_entry *e, size_t n)
{
	size_t j = 0;

	tz_tree__sort(e, n);
	for (size_t i = 0; head && i < head->n; i++) {
		const tz_tree_entry *h = &head->e[i];
		if (h->name_len == 4 && memcmp(h->name, "_log", 4) == 0)
			continue;
		if (j == n || tz_tree__cmp(h, &e[j]) != 0 || h->mode != e[j].mode ||
		    memcmp(h->oid.id, e[j].oid.id, 20) != 0)
			return false;
		j++;
	}
	return j == n && (head != NULL || n == 0);
}

static int count_row(const char *const *comp, const size_t *len, size_t depth, const tz_oid *a,
		     const tz_oid *b, void *payload)
{
	tz_commit_result *r = payload;

	if (depth != TZ_PATH_DEPTH || comp[0][0] == '_' || len[0] == 0)
		return TZ_OK;   /* _log, _schema/... */
	if (tz_oid_is_zero(a))
		r->rows_added++;
	else if (tz_oid_is_zero(b))
		r->rows_deleted++;
	else
		r->rows_changed++;
	return TZ_OK;
}

/* Inside the caller's write transaction: consume log entries up to
 * max_seq and record the new head, clock and schema version (new_head
 * NULL: no commit, the entries cancelled out). */
static int record_txn(commit_ctx *c, const tz_oid *expect_head, bool had_head, const tz_oid *new_head)
{
	tz_store *s = c->s;
	char sql[128], hex[41];
	tz_oid cur;
	bool has;
	int rc;

	if ((rc = tz_head__get(s, &has, &cur)) < 0)
		return rc;
	if (has != had_head || (has && memcmp(&cur, expect_head, sizeof(cur)) != 0))
		return tz_error_set(TZ_EBUSY, "the head moved while committing (another commit ran); try again");
	snprintf(sql, sizeof(sql), "DELETE FROM tz_changes WHERE seq <= %lld", (long long)c->max_seq);
	if ((rc = tz_sql__exec(s, sql)) < 0 || new_head == NULL)
		return rc;
	tz_oid_fmt(hex, new_head);
	if ((rc = tz_meta__set_text(s, "head", hex)) < 0 || (rc = tz_meta__set_int(s, "hlc", (int64_t)c->hlc)) < 0)
		return rc;
	return tz_meta__set_int(s, "schema_version", c->version);
}

static int record(commit_ctx *c, const tz_oid *expect_head, bool had_head, const tz_oid *new_head)
{
	int rc;

	if ((rc = tz_sql__exec(c->s, "BEGIN IMMEDIATE")) < 0)
		return rc;
	if ((rc = record_txn(c, expect_head, had_head, new_head)) < 0 || (rc = tz_sql__exec(c->s, "COMMIT")) < 0) {
		sqlite3_exec(c->s->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	return TZ_OK;
}

static void make_message(tz_buf *m, const tz_store *s, const char *message, const commit_ctx *c,
			 const tz_commit_result *r, const char *base)
{
	if (message && *message)
		tz_buf_puts(m, message);
	else
		tz_buf_printf(m, "%s: %llu added, %llu changed, %llu deleted", s->code,
			      (unsigned long long)r->rows_added, (unsigned long long)r->rows_changed,
			      (unsigned long long)r->rows_deleted);
	while (m->len && m->data[m->len - 1] == '\n')
		m->len--;
	tz_buf_printf(m, "\n\nTazamun-Replica: %s\nTazamun-Schema: %lld\nTazamun-HLC: %016llx\n", s->code,
		      (long long)c->version, (unsigned long long)c->hlc);
	/* a branch names the HQ commit it last integrated: the merge base HQ
	 * uses for this commit's changes (docs/protocol.md) */
	if (base && *base)
		tz_buf_printf(m, "Tazamun-Base: %s\n", base);
}

/* Step 2 once the trees are staged: the pack, then the commit object. */
static int make_commit(commit_ctx *c, const tz_oid *root, bool has_head, const tz_oid *head, const char *message,
		       tz_commit_result *r)
{
	tz_buf msg = TZ_BUF_INIT;
	char base[64] = "";
	int rc;

	if (strcmp(c->s->code, "HQ") != 0 && (rc = tz_meta__get_text(c->s, "base", base, sizeof(base))) < 0)
		return rc;
	r->objects_written = c->st.n + c->st.ndropped;
	if ((rc = tz_pack__write(c->s, &c->st)) < 0)
		goto done;
	/* the clock of the commit itself: after every change it seals */
	c->hlc = hlc_tick(c->hlc, now_ms());
	make_message(&msg, c->s, message, c, r, base);
	if ((rc = tz_buf_error(&msg)) < 0 ||
	    (rc = tz_commit__create_as(c->s, &r->commit, root, has_head ? head : NULL, c->author ? c->author : c->s->code,
				       c->kp ? c->kp : &c->s->kp, (const char *)msg.data)) < 0)
		goto done;
done:
	tz_buf_release(&msg);
	return rc;
}

/* Steps 2-4 once the trees are staged: pack, commit object, record, ref. */
static int seal(commit_ctx *c, const tz_oid *root, bool has_head, const tz_oid *head,
		const char *message, tz_commit_result *r)
{
	int rc;

	if ((rc = make_commit(c, root, has_head, head, message, r)) < 0 || (rc = record(c, head, has_head, &r->commit)) < 0)
		return rc;
	r->committed = true;
	/* The commit is durable in store.db; a failed ref update is redone
	 * by the next open, so it is not an error of this commit. */
	if (tz_ref__set(c->s, &r->commit, "commit") < 0)
		tz_error_clear();
	return TZ_OK;
}

/* Step 1, inside the read transaction: everything up to the staged root.
 * *root is zero when there is nothing to commit. */
static int prepare(commit_ctx *c, bool *has_head, tz_oid *head, tz_oid *root, tz_commit_result *r)
{
	tz_tree htree = { NULL, 0, NULL };
	tz_tree_entry *e = NULL;
	tz_oid head_root = { { 0 } };
	int64_t hlc;
	size_t n;
	int rc;

	memset(root, 0, sizeof(*root));
	if ((rc = tz_schema__load(c->s, &c->ts)) < 0 || (rc = tz_head__get(c->s, has_head, head)) < 0 ||
	    (rc = tz_meta__get_int(c->s, "hlc", &hlc)) < 0)
		goto done;
	c->hlc = (uint64_t)hlc;
	if (*has_head && ((rc = tz_commit__tree(c->s, head, &head_root)) < 0 ||
			  (rc = tz_tree__read(c->s, NULL, &head_root, &htree)) < 0))
		goto done;
	if (!*has_head && c->ts.n == 0)
		goto done;   /* nothing tracked, nothing committed yet: nothing to commit */
	if ((rc = load_resync(c, &head_root)) < 0 || (rc = read_log(c)) < 0 || (rc = read_dirty(c)) < 0)
		goto done;
	for (size_t i = 0; i < c->ts.n; i++)
		if (c->resync[i] && (rc = read_whole(c, &c->ts.t[i])) < 0)
			goto done;
	if ((e = tz_calloc(c->ts.n + 3, sizeof(*e))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	if ((rc = build_root(c, *has_head ? &htree : NULL, e, &n)) < 0 || same_root(*has_head ? &htree : NULL, e, n))
		goto done;
	if ((rc = stage_text(c, &e[n], "_log", &c->log)) < 0 ||
	    (rc = tz_tree__write(c->s, &c->st, root, e, n + 1)) < 0 ||
	    (rc = tz_tree__diff(c->s, &c->st, &head_root, root, count_row, r)) < 0)
		goto done;
done:
	tz_free(e);
	tz_tree__release(&htree);
	return rc;
}

/* A commit of the head's rows with an empty _log: a decision that
 * changed no row is still recorded, signed (conflicts resolved as they
 * stood). */
static int stage_empty(commit_ctx *c, const tz_oid *head, tz_oid *root)
{
	tz_tree t = { NULL, 0, NULL };
	tz_oid hroot;
	tz_buf log = TZ_BUF_INIT;
	int rc;

	tz_buf_puts(&log, "tazamun-log 1\n");
	if ((rc = tz_commit__tree(c->s, head, &hroot)) == TZ_OK && (rc = tz_tree__read(c->s, NULL, &hroot, &t)) == TZ_OK) {
		tz_tree_entry *e = tz_calloc(t.n + 1, sizeof(*e));
		size_t n = 0;
		if (e == NULL) {
			rc = TZ_ENOMEM;
		} else {
			for (size_t i = 0; i < t.n; i++)
				if (!(t.e[i].name_len == 4 && memcmp(t.e[i].name, "_log", 4) == 0))
					e[n++] = t.e[i];
			if ((rc = stage_text(c, &e[n], "_log", &log)) == TZ_OK)
				rc = tz_tree__write(c->s, &c->st, root, e, n + 1);
			tz_free(e);
		}
	}
	tz_tree__release(&t);
	tz_buf_release(&log);
	return rc;
}

/* Step 1 in one read snapshot of the log, the rows and the schema (the
 * application goes on writing meanwhile: WAL).  `c` is initialised here;
 * the caller releases it with ctx_release. */
static int prepare_snapshot(tz_store *s, commit_ctx *c, bool spill, bool *has_head, tz_oid *head, tz_oid *root,
			    tz_commit_result *r)
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->s = s;
	tz_staging__init(&c->st);
	c->st.spill = spill ? TZ_COMMIT_SPILL_BYTES : 0;   /* a commit that writes: big ones in chunks */
	tz_hmap__init(&c->keys);
	if ((rc = tz_sql__exec(s, "BEGIN")) < 0)
		return rc;
	rc = prepare(c, has_head, head, root, r);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);   /* ends the read snapshot */
	return rc;
}

static int commit_signed(tz_store *s, const char *message, const char *author, const tz_keypair *kp,
			 bool allow_empty, tz_commit_result *result)
{
	commit_ctx c;
	tz_oid head, root;
	bool has_head = false;
	int rc;

	memset(result, 0, sizeof(*result));
	memset(&c, 0, sizeof(c));
	tz_staging__init(&c.st);
	tz_hmap__init(&c.keys);
	if ((rc = tz_store__lock(s)) < 0 || (rc = prepare_snapshot(s, &c, true, &has_head, &head, &root, result)) < 0)
		goto done;
	c.author = author;
	c.kp = kp;
	result->entries = c.entries;
	if (tz_oid_is_zero(&root) && allow_empty && has_head && (rc = stage_empty(&c, &head, &root)) < 0)
		goto done;
	if (tz_oid_is_zero(&root)) {
		/* nothing changed: consume entries that cancelled out */
		if (c.entries > 0 || c.nrows > 0)
			rc = record(&c, &head, has_head, NULL);
		goto done;
	}
	rc = seal(&c, &root, has_head, &head, message, result);
done:
	tz_store__unlock(s);
	if (rc < 0)
		tz_error_wrap(rc, "cannot commit");
	ctx_release(&c);
	return rc;
}

int tz_store_commit(tz_store *s, const char *message, tz_commit_result *result)
{
	return commit_signed(s, message, NULL, NULL, false, result);
}

/* Administrator `admin`'s key pair, checked against the registry. */
static int admin_key(tz_store *s, const char *admin, tz_keypair *kp)
{
	tz_key_info k;
	bool found;
	char dir[4096], file[64];
	int rc;

	if (strcmp(s->code, "HQ") != 0)
		return tz_error_set(TZ_EINVAL, "only HQ's administrators sign with --as");
	if ((rc = tz_registry__get(s, admin, &k, NULL, &found)) < 0)
		return rc;
	if (!found || strcmp(k.role, "admin") != 0)
		return tz_error_set(TZ_ENOTFOUND, "no administrator '%s' (syncctl keys add-admin %s makes one)", admin,
				    admin);
	if (k.revoked)
		return tz_error_set(TZ_EPERM, "administrator '%s' has a revoked key", admin);
	snprintf(dir, sizeof(dir), "%s/keys", s->dir);
	snprintf(file, sizeof(file), "admin-%s", admin);
	if ((rc = tz_keypair_load(kp, dir, file)) < 0)
		return tz_error_wrap(rc, "administrator '%s'", admin);
	if (!tz_ct_equal(kp->pk, k.pk, TZ_PK_BYTES)) {
		tz_keypair_wipe(kp);
		return tz_error_set(TZ_EVERIFY, "keys/%s is not the key the registry holds for '%s'", file, admin);
	}
	return TZ_OK;
}

int tz_store_admin_check(tz_store *s, const char *admin)
{
	tz_keypair kp;
	int rc = admin_key(s, admin, &kp);

	if (rc == TZ_OK)
		tz_keypair_wipe(&kp);
	return rc;
}

int tz_store_commit_as(tz_store *s, const char *message, const char *admin, bool allow_empty,
		       tz_commit_result *result)
{
	tz_keypair kp;
	int rc;

	memset(result, 0, sizeof(*result));
	if (admin == NULL)
		return commit_signed(s, message, NULL, NULL, allow_empty, result);
	if ((rc = admin_key(s, admin, &kp)) < 0)
		return rc;
	rc = commit_signed(s, message, admin, &kp, allow_empty, result);
	tz_keypair_wipe(&kp);
	return rc;
}

/* Steps 1-3 of tz_store_commit_with inside its write transaction: the
 * hook's rows, the trees and objects, the record.  No ref yet. */
static int commit_in_txn(commit_ctx *c, const char *message, bool allow_empty, const tz_commit_hook *h,
			 tz_commit_result *r)
{
	sqlite3_stmt *q = NULL;
	tz_oid head, root;
	bool has_head = false, pending = true;
	int rc;

	/* HQ's own pending changes are not the hook's: sealed before (and
	 * nothing else writes while this transaction holds the lock) */
	if ((rc = tz_sql__prepare(c->s, &q, "SELECT EXISTS (SELECT 1 FROM tz_changes)")) < 0)
		return rc;
	if (sqlite3_step(q) == SQLITE_ROW)
		pending = sqlite3_column_int(q, 0) != 0;
	sqlite3_finalize(q);
	if (pending)
		return tz_error_set(TZ_EBUSY, "the application wrote while committing; try again");
	if ((rc = h->write(h->ctx, c->s)) < 0 || (rc = prepare(c, &has_head, &head, &root, r)) < 0)
		return rc;
	r->entries = c->entries;
	if (!has_head)
		return tz_error_set(TZ_EINVAL, "nothing committed yet to build on");
	if (tz_oid_is_zero(&root) && allow_empty && (rc = stage_empty(c, &head, &root)) < 0)
		return rc;
	if (tz_oid_is_zero(&root))
		return record_txn(c, &head, has_head, NULL);
	if ((rc = make_commit(c, &root, has_head, &head, message, r)) < 0 ||
	    (rc = record_txn(c, &head, has_head, &r->commit)) < 0)
		return rc;
	r->committed = true;
	return h->record ? h->record(h->ctx, c->s, &r->commit) : TZ_OK;
}

int tz_store_commit_with(tz_store *s, const char *message, const char *admin, bool allow_empty,
			 const tz_commit_hook *h, tz_commit_result *result)
{
	commit_ctx c;
	tz_keypair kp;
	tz_commit_result first;
	bool has_kp = false;
	int rc;

	memset(result, 0, sizeof(*result));
	memset(&c, 0, sizeof(c));
	c.s = s;
	tz_staging__init(&c.st);
	c.st.spill = TZ_COMMIT_SPILL_BYTES;
	tz_hmap__init(&c.keys);
	if (admin && (rc = admin_key(s, admin, &kp)) < 0)
		return rc;
	has_kp = admin != NULL;
	c.author = admin;
	c.kp = has_kp ? &kp : NULL;
	if ((rc = tz_store__lock(s)) < 0)
		goto wipe;
	if ((rc = commit_signed(s, NULL, NULL, NULL, false, &first)) < 0 || (rc = tz_sql__exec(s, "BEGIN IMMEDIATE")) < 0)
		goto done;
	if ((rc = commit_in_txn(&c, message, allow_empty, h, result)) < 0 || (rc = tz_sql__exec(s, "COMMIT")) < 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		memset(result, 0, sizeof(*result));
		goto done;
	}
	/* durable in store.db; a failed ref update is redone by the next open */
	if (result->committed && tz_ref__set(s, &result->commit, "commit") < 0)
		tz_error_clear();
done:
	tz_store__unlock(s);
	ctx_release(&c);
wipe:
	if (has_kp)
		tz_keypair_wipe(&kp);
	return rc;
}

int tz_commit__pending(tz_store *s, tz_pending_commit *pc)
{
	commit_ctx c;
	tz_commit_result r;
	bool has_head = false;
	int rc;

	memset(pc, 0, sizeof(*pc));
	memset(&r, 0, sizeof(r));
	rc = prepare_snapshot(s, &c, true, &has_head, &pc->parent, &pc->root, &r);
	pc->max_seq = c.max_seq;
	if (rc < 0 || tz_oid_is_zero(&pc->root)) {
		/* nothing to seal: entries that cancelled out stay for the next commit */
		if (rc == TZ_OK && has_head)
			rc = tz_commit__tree(s, &pc->parent, &pc->root);
		pc->max_seq = 0;
		goto done;
	}
	if ((rc = make_commit(&c, &pc->root, has_head, &pc->parent, NULL, &r)) < 0)
		goto done;
	pc->made = true;
	pc->commit = r.commit;
	pc->hlc = c.hlc;
	pc->version = c.version;
done:
	ctx_release(&c);
	return rc;
}

int tz_commit__record_pending(tz_store *s, const tz_pending_commit *pc)
{
	char sql[128];
	int rc;

	if (!pc->made)
		return TZ_OK;
	snprintf(sql, sizeof(sql), "DELETE FROM tz_changes WHERE seq <= %lld", (long long)pc->max_seq);
	if ((rc = tz_sql__exec(s, sql)) < 0 || (rc = tz_meta__set_int(s, "hlc", (int64_t)pc->hlc)) < 0)
		return rc;
	return tz_meta__set_int(s, "schema_version", pc->version);
}

int tz_commit__working_tree(tz_store *s, tz_staging *st, tz_oid *root)
{
	commit_ctx c;
	tz_commit_result r = { 0 };
	tz_oid head;
	bool has_head = false;
	int rc;

	rc = prepare_snapshot(s, &c, false, &has_head, &head, root, &r);
	if (rc == TZ_OK && tz_oid_is_zero(root) && has_head)
		rc = tz_commit__tree(s, &head, root);
	if (rc == TZ_OK) {
		*st = c.st;                 /* transferred */
		tz_staging__init(&c.st);
	}
	ctx_release(&c);
	return rc;
}

/*
 * materialise.c - bring store.db's tracked tables to a commit's tree.
 *
 * The two trees (head, target) are walked together, skipping equal
 * subtrees, so the cost follows what differs.  A row changed in place is
 * updated where it is; rows deleted or added are deleted first, then
 * written, so a row that moved between partitions (a deletion at one
 * path, an addition at another) ends up written.  The change log's own
 * triggers are off meanwhile (capture_off); the application's fire as for
 * any writer, and whatever they log of these rows is removed in the same
 * transaction, which also records the new head: materialising produces no
 * change-log entries.  Foreign keys are off on the store's connection
 * (store.c).
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	tz_table *t;
	char *key;
	uint32_t key_len;    /* the path's last component */
	bool updated;        /* written in place by pass 0 */
	tz_oid oid;          /* zero: delete */
	tz_oid old;          /* the row before (zero: none) */
} mat_change;           /* 64 bytes: one per changed row, 100,000 in bench/merge's case 3 */

typedef struct {
	tz_store *s;
	const tz_staging *st;   /* objects the import has not dropped, or NULL */
	tz_tables ts;
	mat_change *ch;
	size_t n, cap;
	sqlite3_stmt **del;  /* per table */
	sqlite3_stmt **ins;
	sqlite3_stmt **upd;
	tz_hmap dirty;       /* "<tid> <encoded key>" of rows with log entries */
	bool skip_dirty;
	uint64_t kept;       /* rows left as the application wrote them */
} mat_ctx;

/* The rows the change log names: the application wrote them after the
 * head was sealed, so they stay as they are (the next commit records
 * them on top of what is materialised). */
int tz_changes__keys(tz_store *s, tz_tables *ts, tz_hmap *out)
{
	sqlite3_stmt *q = NULL;
	tz_buf k = TZ_BUF_INIT;
	int rc, step;

	if ((rc = tz_sql__prepare(s, &q, "SELECT DISTINCT tid, k0, k1, k2, k3, k4, k5, k6, k7 FROM tz_changes")) < 0)
		return rc;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		tz_table *t = tz_schema__by_tid(ts, sqlite3_column_int64(q, 0));
		tz_value kv[TZ_KEY_MAX_COLUMNS];
		tz_hmap_slot *slot;
		bool added;
		if (t == NULL)
			continue;
		for (size_t i = 0; i < t->npk; i++)
			tz_sql__column_value(q, (int)i + 1, &kv[i]);
		tz_buf_clear(&k);
		tz_buf_printf(&k, "%lld ", (long long)t->tid);
		if ((rc = tz_key_encode(&k, kv, t->npk)) < 0 ||
		    (rc = tz_hmap__upsert(out, k.data, k.len, &slot, &added)) < 0)
			break;
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_sql__error(s, step, "cannot read the change log");
	sqlite3_finalize(q);
	tz_buf_release(&k);
	return rc;
}

bool tz_changes__has(const tz_hmap *keys, const tz_table *t, const char *key, size_t len)
{
	/* no allocation: a failed one must never read as "not edited here" */
	char k[32 + TZ_KEY_MAX_BYTES];
	int pre;

	if (keys->count == 0)
		return false;
	pre = snprintf(k, 32, "%lld ", (long long)t->tid);
	if (len > TZ_KEY_MAX_BYTES)
		return true;   /* no such key was logged; treated as edited: left alone */
	memcpy(k + pre, key, len);
	return tz_hmap__get(keys, k, (size_t)pre + len) != NULL;
}

static int load_dirty(mat_ctx *m)
{
	return tz_changes__keys(m->s, &m->ts, &m->dirty);
}

static bool is_dirty(mat_ctx *m, const mat_change *c)
{
	return tz_changes__has(&m->dirty, c->t, c->key, c->key_len);
}

static int collect(const char *const *comp, const size_t *len, size_t depth, const tz_oid *a,
		   const tz_oid *b, void *payload)
{
	mat_ctx *m = payload;
	tz_table *t = NULL;

	if (depth != TZ_PATH_DEPTH || comp[0][0] == '_')
		return TZ_OK;
	for (size_t i = 0; i < m->ts.n && t == NULL; i++)
		if (strlen(m->ts.t[i].enc) == len[0] && memcmp(m->ts.t[i].enc, comp[0], len[0]) == 0)
			t = &m->ts.t[i];
	if (t == NULL)
		return tz_error_set(TZ_EINVAL, "the target has rows of '%.*s', which is not tracked here",
				    (int)len[0], comp[0]);
	if (len[4] > UINT32_MAX)
		return tz_error_set(TZ_ECORRUPT, "a row's path names a key of %zu bytes", len[4]);
	if (tz_array_grow(&m->ch, &m->cap, m->n, sizeof(*m->ch)) < 0)
		return TZ_ENOMEM;
	m->ch[m->n] = (mat_change){ t, tz_strndup(comp[4], len[4]), (uint32_t)len[4], false, *b, *a };
	return m->ch[m->n++].key ? TZ_OK : TZ_ENOMEM;
}

/* Is column c of t part of its key? */
static bool is_key(const tz_table *t, size_t c)
{
	for (size_t k = 0; k < t->npk; k++)
		if ((size_t)t->pk_idx[k] == c)
			return true;
	return false;
}

/* "DELETE FROM t WHERE k1 = ?1 ...", "INSERT INTO t(cols) VALUES
 * (?1, ...)" and "UPDATE t SET c = ?<npk + 1 + c>, ... WHERE k1 = ?1 ..."
 * (every column but the key's, NULL when there is none) for table i,
 * prepared once. */
static int statements(mat_ctx *m, size_t i, sqlite3_stmt **del, sqlite3_stmt **ins, sqlite3_stmt **upd)
{
	const tz_table *t = &m->ts.t[i];
	tz_buf d = TZ_BUF_INIT, in = TZ_BUF_INIT, up = TZ_BUF_INIT;
	bool set = false;
	int rc = TZ_OK;

	if (m->del[i] == NULL) {
		tz_buf_puts(&d, "DELETE FROM ");
		tz_sql__put_ident(&d, t->name);
		tz_schema__put_key_cond(&d, t, " WHERE ", " AND ", "", " = ", NULL);
		tz_buf_puts(&in, "INSERT INTO ");
		tz_sql__put_ident(&in, t->name);
		for (size_t c = 0; c < t->ncols; c++) {
			tz_buf_puts(&in, c ? ", " : "(");
			tz_sql__put_ident(&in, t->cols[c].name);
		}
		tz_buf_puts(&in, ") VALUES (");
		for (size_t c = 0; c < t->ncols; c++)
			tz_buf_printf(&in, "%s?%zu", c ? ", " : "", c + 1);
		tz_buf_puts(&in, ")");
		tz_buf_puts(&up, "UPDATE ");
		tz_sql__put_ident(&up, t->name);
		for (size_t c = 0; c < t->ncols; c++) {
			if (is_key(t, c))
				continue;
			tz_buf_puts(&up, set ? ", " : " SET ");
			tz_sql__put_ident(&up, t->cols[c].name);
			tz_buf_printf(&up, " = ?%zu", t->npk + 1 + c);
			set = true;
		}
		tz_schema__put_key_cond(&up, t, " WHERE ", " AND ", "", " = ", NULL);
		if ((rc = tz_buf_error(&d)) == TZ_OK && (rc = tz_buf_error(&in)) == TZ_OK &&
		    (rc = tz_buf_error(&up)) == TZ_OK &&
		    (rc = tz_sql__prepare(m->s, &m->del[i], (const char *)d.data)) == TZ_OK &&
		    (rc = tz_sql__prepare(m->s, &m->ins[i], (const char *)in.data)) == TZ_OK && set)
			rc = tz_sql__prepare(m->s, &m->upd[i], (const char *)up.data);
	}
	tz_buf_release(&d);
	tz_buf_release(&in);
	tz_buf_release(&up);
	*del = m->del[i];
	*ins = m->ins[i];
	*upd = m->upd[i];
	return rc;
}

/* Table, then key bytes.  The tree's order is the fanout's (a hash of the
 * key): rows taken in it land on store.db's pages at random, and SQLite's
 * cache (2 MiB) reads, writes back and reads again most of the ~5,000
 * pages HQ's agency-day import changes.  In key order the key index is
 * walked once, and so is the table where rowids follow the keys (rows
 * registered one after the other). */
static int by_key(const void *pa, const void *pb)
{
	const mat_change *a = pa, *b = pb;
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
	int c;

	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	if ((c = memcmp(a->key, b->key, n)) != 0)
		return c;
	return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

/* Room for each table's statements, prepared when first used. */
static int statement_slots(mat_ctx *m)
{
	if ((m->del = tz_calloc(m->ts.n + 1, sizeof(*m->del))) == NULL ||
	    (m->ins = tz_calloc(m->ts.n + 1, sizeof(*m->ins))) == NULL ||
	    (m->upd = tz_calloc(m->ts.n + 1, sizeof(*m->upd))) == NULL)
		return TZ_ENOMEM;
	return TZ_OK;
}

/* Bind the row blob's columns to st, column c at parameter first + c (the
 * key's columns too unless skip_key); they must be the table's. */
static int bind_row(mat_ctx *m, const tz_table *t, sqlite3_stmt *st, const tz_oid *oid, int first, bool skip_key,
		    tz_row **row)
{
	int rc;

	if ((rc = tz_obj__read_row(m->s, m->st, oid, row)) < 0)
		return rc;
	if ((*row)->ncols != t->ncols)
		return tz_error_set(TZ_EINVAL, "table '%s': the target's rows have %zu columns, the table %zu",
				    t->name, (*row)->ncols, t->ncols);
	for (size_t c = 0; c < t->ncols; c++) {
		const tz_column *col = &(*row)->cols[c];
		if (col->name_len != strlen(t->cols[c].name) || memcmp(col->name, t->cols[c].name, col->name_len) != 0)
			return tz_error_set(TZ_EINVAL, "table '%s' has no column '%.*s'", t->name, (int)col->name_len,
					    col->name);
		if (!skip_key || !is_key(t, c))
			tz_sql__bind_value(st, first + (int)c, &col->v);
	}
	return TZ_OK;
}

/* [P14] A row the application is editing that the import changes too:
 * the columns the import changed and the application left as they were
 * are brought forward; the application's own edits stay.  Its next commit
 * then carries only its edits, not stale copies of the imported columns. */
static int rebase_dirty(mat_ctx *m, const mat_change *c)
{
	tz_row *from = NULL, *to = NULL;
	tz_value kv[TZ_KEY_MAX_COLUMNS];
	uint8_t *arena = NULL;
	size_t nk, *take = NULL, ntake = 0;
	sqlite3_stmt *q = NULL, *up = NULL;
	tz_buf sql = TZ_BUF_INIT;
	tz_table *t = c->t;
	int rc;

	if (tz_oid_is_zero(&c->old) || tz_oid_is_zero(&c->oid))
		return TZ_OK;   /* added or deleted by one side: the application's row stands */
	if ((rc = tz_obj__read_row(m->s, m->st, &c->old, &from)) < 0 || (rc = tz_obj__read_row(m->s, m->st, &c->oid, &to)) < 0 ||
	    (rc = tz_key_decode(kv, TZ_KEY_MAX_COLUMNS, &nk, &arena, c->key, c->key_len)) < 0 ||
	    (rc = tz_schema__select_row(m->s, t, &q)) < 0)
		goto done;
	if (from->ncols != t->ncols || to->ncols != t->ncols || (take = tz_calloc(t->ncols, sizeof(*take))) == NULL) {
		rc = from->ncols != t->ncols || to->ncols != t->ncols ? TZ_OK : TZ_ENOMEM;
		goto done;
	}
	sqlite3_reset(q);
	for (size_t k = 0; k < nk; k++)
		tz_sql__bind_value(q, (int)k + 1, &kv[k]);
	if (sqlite3_step(q) == SQLITE_ROW)
		for (size_t i = 0; i < t->ncols; i++) {
			tz_value cur;
			tz_sql__column_value(q, (int)i, &cur);
			if (tz_value_cmp(&from->cols[i].v, &to->cols[i].v) != 0 && tz_value_cmp(&cur, &from->cols[i].v) == 0)
				take[ntake++] = i;
		}
	sqlite3_reset(q);
	if (ntake == 0)
		goto done;
	tz_buf_puts(&sql, "UPDATE ");
	tz_sql__put_ident(&sql, t->name);
	for (size_t i = 0; i < ntake; i++) {
		tz_buf_puts(&sql, i ? ", " : " SET ");
		tz_sql__put_ident(&sql, t->cols[take[i]].name);
		tz_buf_printf(&sql, " = ?%zu", nk + i + 1);
	}
	tz_schema__put_key_cond(&sql, t, " WHERE ", " AND ", "", " = ", NULL);
	if ((rc = tz_buf_error(&sql)) < 0 || (rc = tz_sql__prepare(m->s, &up, (const char *)sql.data)) < 0)
		goto done;
	/* the key is ?1..?nk (put_key_cond), the values after it */
	for (size_t k = 0; k < nk; k++)
		tz_sql__bind_value(up, (int)k + 1, &kv[k]);
	for (size_t i = 0; i < ntake; i++)
		tz_sql__bind_value(up, (int)(nk + i) + 1, &to->cols[take[i]].v);
	if (sqlite3_step(up) != SQLITE_DONE)
		rc = tz_sql__error(m->s, sqlite3_errcode(m->s->db), "cannot bring an edited row forward");
done:
	sqlite3_finalize(up);
	tz_buf_release(&sql);
	tz_free(take);
	tz_free(arena);
	tz_row_free(from);
	tz_row_free(to);
	return rc;
}

/* A row changed in place, written where it is (its rowid, its pages): c
 * is marked updated, or left for pass 1 when the store has no such row
 * or the UPDATE breaks a constraint (NOT NULL, CHECK: pass 1's INSERT
 * then says which row). */
static int update_row(mat_ctx *m, mat_change *c, sqlite3_stmt *upd, const tz_value *kv, size_t nk, tz_row **row)
{
	int rc, step;

	sqlite3_reset(upd);
	for (size_t k = 0; k < nk; k++)
		tz_sql__bind_value(upd, (int)k + 1, &kv[k]);
	if ((rc = bind_row(m, c->t, upd, &c->oid, (int)c->t->npk + 1, true, row)) < 0)
		return rc;
	step = sqlite3_step(upd);
	if (step == SQLITE_DONE)
		c->updated = sqlite3_changes(m->s->db) == 1;
	else if ((step & 0xff) != SQLITE_CONSTRAINT)
		rc = tz_sql__error(m->s, sqlite3_errcode(m->s->db), "cannot write a row");
	sqlite3_reset(upd);
	return rc;
}

/* Apply one change.  Pass 0: a row changed in place is updated, any other
 * deleted by key.  Pass 1: the rows pass 0 did not update are inserted. */
static int apply_one(mat_ctx *m, mat_change *c, int pass)
{
	size_t i = (size_t)(c->t - m->ts.t);
	tz_value kv[TZ_KEY_MAX_COLUMNS];
	uint8_t *arena = NULL;
	tz_row *row = NULL;
	sqlite3_stmt *del, *ins, *upd;
	size_t nk;
	int rc;

	if ((rc = statements(m, i, &del, &ins, &upd)) < 0)
		return rc;
	if (m->skip_dirty && is_dirty(m, c)) {
		m->kept += pass == 0;
		return pass == 1 ? rebase_dirty(m, c) : TZ_OK;
	}
	if (pass == 0) {
		if ((rc = tz_key_decode(kv, TZ_KEY_MAX_COLUMNS, &nk, &arena, c->key, c->key_len)) == TZ_OK && upd &&
		    !tz_oid_is_zero(&c->old) && !tz_oid_is_zero(&c->oid))
			rc = update_row(m, c, upd, kv, nk, &row);
		if (rc == TZ_OK && !c->updated) {
			sqlite3_reset(del);
			for (size_t k = 0; k < nk; k++)
				tz_sql__bind_value(del, (int)k + 1, &kv[k]);
			if (sqlite3_step(del) != SQLITE_DONE)
				rc = tz_sql__error(m->s, sqlite3_errcode(m->s->db), "cannot delete a row");
		}
	} else if (!tz_oid_is_zero(&c->oid) && !c->updated) {
		sqlite3_reset(ins);
		if ((rc = bind_row(m, c->t, ins, &c->oid, 1, false, &row)) == TZ_OK && sqlite3_step(ins) != SQLITE_DONE)
			rc = tz_sql__error(m->s, sqlite3_errcode(m->s->db), "cannot write a row");
	}
	if (rc < 0)
		tz_error_wrap(rc, "table '%s' key '%s'", c->t->name, c->key);
	sqlite3_reset(ins);
	tz_row_free(row);
	tz_free(arena);
	return rc;
}

/* The change log's triggers (schema.c), dropped while the rows are
 * written and put back from their own `sql` in the same transaction (a
 * failure rolls the whole of it back): what they logged of these writes
 * was deleted at the end anyway, and logging it cost HQ's agency-day
 * import ~15 ms, an INSERT into tz_changes for each of 7,821 rows.  The
 * application's own triggers still fire. */
static int capture_off(tz_store *s, tz_buf *saved)
{
	tz_buf drop = TZ_BUF_INIT;
	int rc;

	if ((rc = tz_schema__capture_triggers(s, &drop, saved)) == TZ_OK && (rc = tz_buf_error(&drop)) == TZ_OK &&
	    drop.len)
		rc = tz_sql__exec(s, (const char *)drop.data);
	tz_buf_release(&drop);
	return rc;
}

/* In key order, with the change log's triggers off: pass 0 then pass 1. */
static int apply_all(mat_ctx *m)
{
	tz_buf saved = TZ_BUF_INIT;
	int rc, on;

	if (m->n > 1)
		qsort(m->ch, m->n, sizeof(*m->ch), by_key);
	if ((rc = capture_off(m->s, &saved)) < 0) {
		tz_buf_release(&saved);
		return rc;
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < m->n && rc == TZ_OK; i++) {
			rc = apply_one(m, &m->ch[i], pass);
			if ((i & 1023) == 1023 || i + 1 == m->n)
				tz_progress__report(m->s, "writing rows", i + 1 + (pass ? m->n : 0), 2 * m->n);
		}
	/* back on whatever happened (the caller rolls back a failure) */
	on = saved.len ? tz_sql__exec(m->s, (const char *)saved.data) : TZ_OK;
	tz_buf_release(&saved);
	return rc < 0 ? rc : on;
}

/* Uncommitted work: change-log entries, or a tracked table whose DDL
 * differs from the head's (the next commit would rebuild it). */
static int uncommitted(mat_ctx *m, const tz_oid *head_root, bool *dirty)
{
	sqlite3_stmt *q = NULL;
	tz_tree ht;
	int rc;

	*dirty = false;
	if ((rc = tz_sql__prepare(m->s, &q, "SELECT EXISTS (SELECT 1 FROM tz_changes)")) < 0)
		return rc;
	if (sqlite3_step(q) == SQLITE_ROW)
		*dirty = sqlite3_column_int(q, 0) != 0;
	sqlite3_finalize(q);
	if (*dirty || (rc = tz_schema__head_tables(m->s, head_root, &ht)) < 0)
		return rc;
	for (size_t i = 0; i < m->ts.n && !*dirty && rc == TZ_OK; i++)
		rc = tz_schema__ddl_changed(m->s, &m->ts.t[i], &ht, dirty);
	tz_tree__release(&ht);
	return rc;
}

/* Same tracked tables and declarations in both roots?  (The version may
 * differ: a change undone later still counted up.) */
int tz_schema__same_declarations(tz_store *s, const tz_tree *a, const tz_tree *b, bool *same)
{
	const tz_tree_entry *sa = tz_tree__find(a, "_schema", 7), *sb = tz_tree__find(b, "_schema", 7);
	tz_tree ta = { NULL, 0, NULL }, tb = { NULL, 0, NULL };
	int rc = TZ_OK;

	*same = sa && sb;
	if (!*same || memcmp(&sa->oid, &sb->oid, sizeof(tz_oid)) == 0)
		return TZ_OK;
	/* every entry but the version: tables/, tz_track/, tz_policy/, tz_group/ */
	if ((rc = tz_tree__read(s, NULL, &sa->oid, &ta)) == TZ_OK && (rc = tz_tree__read(s, NULL, &sb->oid, &tb)) == TZ_OK)
		for (int side = 0; side < 2 && *same; side++) {
			const tz_tree *x = side ? &tb : &ta, *y = side ? &ta : &tb;
			for (size_t i = 0; i < x->n && *same; i++) {
				const tz_tree_entry *o = tz_tree__find(y, x->e[i].name, x->e[i].name_len);
				if (x->e[i].name_len == 7 && memcmp(x->e[i].name, "version", 7) == 0)
					continue;
				*same = o && memcmp(&o->oid, &x->e[i].oid, sizeof(tz_oid)) == 0;
			}
		}
	tz_tree__release(&ta);
	tz_tree__release(&tb);
	return rc;
}

static int same_schema(tz_store *s, const tz_tree *a, const tz_tree *b)
{
	bool same;
	int rc = tz_schema__same_declarations(s, a, b, &same);

	if (rc == TZ_OK && !same)
		rc = tz_error_set(TZ_EINVAL, "the target has another schema than the head; checkout across a schema "
				  "change is not supported");
	return rc;
}

static void ctx_release(mat_ctx *m)
{
	for (size_t i = 0; i < m->ts.n; i++) {
		sqlite3_finalize(m->del ? m->del[i] : NULL);
		sqlite3_finalize(m->ins ? m->ins[i] : NULL);
		sqlite3_finalize(m->upd ? m->upd[i] : NULL);
	}
	for (size_t i = 0; i < m->n; i++)
		tz_free(m->ch[i].key);
	tz_free(m->ch);
	tz_free(m->del);
	tz_free(m->ins);
	tz_free(m->upd);
	tz_hmap__release(&m->dirty);
	tz_schema__release(&m->ts);
}

int tz_materialise__trees(tz_store *s, const tz_staging *st, const tz_oid *from, const tz_oid *to, uint64_t *touched,
			  uint64_t *kept)
{
	mat_ctx m;
	sqlite3_stmt *q = NULL;
	int64_t mark = 0;
	char sql[96];
	int rc;

	memset(&m, 0, sizeof(m));
	m.s = s;
	m.st = st;
	m.skip_dirty = true;
	tz_hmap__init(&m.dirty);
	*touched = *kept = 0;
	if ((rc = tz_schema__load(s, &m.ts)) < 0 || (rc = load_dirty(&m)) < 0 ||
	    (rc = tz_sql__prepare(s, &q, "SELECT coalesce(max(seq), 0) FROM tz_changes")) < 0)
		goto done;
	if (sqlite3_step(q) == SQLITE_ROW)
		mark = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	if ((rc = statement_slots(&m)) < 0 || (rc = tz_tree__diff(s, st, from, to, collect, &m)) < 0)
		goto done;
	rc = apply_all(&m);
	/* what the application's triggers may have logged of our writes:
	 * drop those entries, keep the application's own */
	snprintf(sql, sizeof(sql), "DELETE FROM tz_changes WHERE seq > %lld", (long long)mark);
	if (rc == TZ_OK)
		rc = tz_sql__exec(s, sql);
	*touched = m.n - m.kept;
	*kept = m.kept;
done:
	ctx_release(&m);
	return rc;
}

/* Inside the write transaction: check, walk, apply, record. */
static int checkout_txn(mat_ctx *m, const tz_oid *target, uint64_t *touched)
{
	tz_oid head, htree = { { 0 } }, ttree;
	tz_tree a = { NULL, 0, NULL }, b = { NULL, 0, NULL };
	char hex[41];
	bool has, dirty;
	int rc;

	if ((rc = tz_schema__load(m->s, &m->ts)) < 0 || (rc = tz_head__get(m->s, &has, &head)) < 0 ||
	    (has && (rc = tz_commit__tree(m->s, &head, &htree)) < 0) || (rc = uncommitted(m, &htree, &dirty)) < 0)
		goto done;
	if (dirty) {
		rc = tz_error_set(TZ_EBUSY, "store.db holds uncommitted changes; commit them first");
		goto done;
	}
	if ((rc = tz_commit__tree(m->s, target, &ttree)) < 0 || (rc = tz_tree__read(m->s, NULL, &ttree, &b)) < 0 ||
	    (has && (rc = tz_tree__read(m->s, NULL, &htree, &a)) < 0))
		goto done;
	if ((rc = same_schema(m->s, &a, &b)) < 0)
		goto done;
	if ((rc = statement_slots(m)) < 0 || (rc = tz_tree__diff(m->s, NULL, &htree, &ttree, collect, m)) < 0)
		goto done;
	rc = apply_all(m);
	tz_oid_fmt(hex, target);
	if (rc == TZ_OK && (rc = tz_sql__exec(m->s, "DELETE FROM tz_changes")) == TZ_OK)
		rc = tz_meta__set_text(m->s, "head", hex);
	*touched = m->n;
done:
	tz_tree__release(&a);
	tz_tree__release(&b);
	return rc;
}

int tz_store_checkout(tz_store *s, const char *rev, uint64_t *rows_touched)
{
	mat_ctx m;
	tz_oid target;
	char why[128];
	int rc;

	*rows_touched = 0;
	memset(&m, 0, sizeof(m));
	m.s = s;
	tz_hmap__init(&m.dirty);
	if ((rc = tz_store_resolve(s, &target, rev)) < 0 || (rc = tz_store__lock(s)) < 0)
		return rc;
	if ((rc = tz_sql__exec(s, "BEGIN IMMEDIATE")) < 0)
		goto done;
	rc = checkout_txn(&m, &target, rows_touched);
	if (rc == TZ_OK)
		rc = tz_sql__exec(s, "COMMIT");
	if (rc < 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		goto done;
	}
	snprintf(why, sizeof(why), "checkout: moving to %s", rev);
	if (tz_ref__set(s, &target, why) < 0)
		tz_error_clear();   /* redone by the next open */
done:
	tz_store__unlock(s);
	if (rc < 0)
		tz_error_wrap(rc, "cannot check out '%s'", rev);
	ctx_release(&m);
	return rc;
}

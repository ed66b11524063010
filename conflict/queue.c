/*
 * queue.c - HQ's conflict queue (tz_conflicts in store.db): the entries a
 * merge keeps, recorded in the import's transaction; listing; resolution
 * as one signed HQ commit (docs/merge.md, "The queue").
 */
#include "conflict/conflict_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- entries kept by a merge ---- */

static void pending_release(tz_pending *p)
{
	tz_free(p->table);
	tz_free(p->partition);
	tz_free(p->key);
	tz_free(p->policy);
	tz_free(p->note);
	tz_buf_release(&p->cols);
	tz_buf_release(&p->base);
	tz_buf_release(&p->ours);
	tz_buf_release(&p->theirs);
	tz_buf_release(&p->provisional);
}

void tz_queue__pending_free(tz_pending *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pending_release(&p[i]);
	tz_free(p);
}

static void put_row(tz_buf *out, bool *has, const tz_row *r)
{
	*has = r != NULL;
	if (r)
		tz_row_encode(out, r->cols, r->ncols);
}

/* The earlier entry of the same row in this merge (a row integrated in
 * two stretches of one bundle, docs/merge.md "At the branch"), taken out
 * of the list into *out; false when there is none. */
static bool take_earlier(tz_pending *pp, size_t *n, const tz_merge_request *rq, tz_pending *out)
{
	for (size_t i = 0; i < *n; i++) {
		tz_pending *p = &pp[i];
		if (strcmp(p->table, rq->table) == 0 && strcmp(p->partition, rq->partition) == 0 &&
		    strlen(p->key) == rq->key_len && memcmp(p->key, rq->key, rq->key_len) == 0) {
			*out = *p;
			memmove(p, p + 1, (*n - i - 1) * sizeof(*p));
			(*n)--;
			return true;
		}
	}
	return false;
}

/* Re-encode *row with the values of the columns `add` names taken from
 * `earlier` (a row of the same table, both encoded by tz_row_encode). */
static int patch_row(tz_buf *row, const tz_buf *earlier, const tz_row *add)
{
	tz_row *now = NULL, *old = NULL;
	tz_buf out = TZ_BUF_INIT;
	int rc;

	if ((rc = tz_row_decode(&now, row->data, row->len)) < 0 ||
	    (rc = tz_row_decode(&old, earlier->data, earlier->len)) < 0)
		goto done;
	for (size_t i = 0; i < add->ncols; i++) {
		const tz_column *was = tz_row_find(old, add->cols[i].name, add->cols[i].name_len);
		const tz_column *c = tz_row_find(now, add->cols[i].name, add->cols[i].name_len);
		/* the value points into old's arena, alive until encoded below */
		if (was && c)
			now->cols[c - now->cols].v = was->v;
	}
	if ((rc = tz_row_encode(&out, now->cols, now->ncols)) == TZ_OK) {
		tz_buf_release(row);
		*row = out;
		out = (tz_buf)TZ_BUF_INIT;
	}
done:
	tz_buf_release(&out);
	tz_row_free(now);
	tz_row_free(old);
	return rc;
}

/*
 * One entry per row per merge, listing every conflicting column (DESIGN
 * §11): when a later stretch of the bundle queues the row again, the
 * columns only the earlier stretch found conflicting stay on the entry,
 * each with the base, ours and theirs values that stretch compared (the
 * later stretch's base is the branch's merge of an answer, which already
 * holds the branch's value: tests/sim seeds 1580, 1664).  Data entries
 * only: a delete or an insert entry is a decision about the whole row,
 * and the later one stands alone.
 */
static int fold_earlier(tz_pending *p, tz_pending *earlier)
{
	tz_row *now = NULL, *old = NULL, add = { 0 };
	tz_column *all = NULL;
	int rc;

	if ((rc = tz_row_decode(&now, p->cols.data, p->cols.len)) < 0 ||
	    (rc = tz_row_decode(&old, earlier->cols.data, earlier->cols.len)) < 0)
		goto done;
	if ((all = tz_calloc(now->ncols + old->ncols, sizeof(*all))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	memcpy(all, now->cols, now->ncols * sizeof(*all));
	add.cols = all + now->ncols;
	for (size_t i = 0; i < old->ncols; i++)
		if (tz_row_find(now, old->cols[i].name, old->cols[i].name_len) == NULL)
			add.cols[add.ncols++] = old->cols[i];
	if (add.ncols == 0)
		goto done;
	tz_buf_clear(&p->cols);
	if ((rc = tz_row_encode(&p->cols, all, now->ncols + add.ncols)) < 0 ||
	    (p->has_base && earlier->has_base && (rc = patch_row(&p->base, &earlier->base, &add)) < 0) ||
	    (p->has_ours && earlier->has_ours && (rc = patch_row(&p->ours, &earlier->ours, &add)) < 0) ||
	    (p->has_theirs && earlier->has_theirs && (rc = patch_row(&p->theirs, &earlier->theirs, &add)) < 0))
		goto done;
	if (p->note == NULL) {
		/* a flagged lww decision's note stays with its column */
		p->note = earlier->note;
		earlier->note = NULL;
	}
done:
	tz_free(all);
	tz_row_free(now);
	tz_row_free(old);
	return rc;
}

static int fill_pending(tz_pending *p, const tz_merge_request *rq, const tz_row_outcome *o)
{
	tz_column *cols;
	int rc;

	memset(p, 0, sizeof(*p));
	p->kind = o->kind;
	p->table = tz_strdup(rq->table);
	p->partition = tz_strdup(rq->partition);
	p->key = tz_strndup(rq->key, rq->key_len);
	p->policy = tz_strdup(o->policy ? o->policy : "manual");
	p->note = o->note[0] ? tz_strdup(o->note) : NULL;
	if (!p->table || !p->partition || !p->key || !p->policy || (o->note[0] && !p->note))
		return TZ_ENOMEM;
	/* the conflicting columns, each with its group: a delete names none */
	if ((cols = tz_calloc(o->ncols ? o->ncols : 1, sizeof(*cols))) == NULL)
		return TZ_ENOMEM;
	for (size_t i = 0; i < o->ncols; i++) {
		cols[i].name = o->cols[i];
		cols[i].name_len = strlen(o->cols[i]);
		cols[i].v.type = o->unit[i] ? TZ_VTEXT : TZ_VNULL;
		if (o->unit[i]) {
			cols[i].v.p = (const uint8_t *)o->unit[i];
			cols[i].v.n = strlen(o->unit[i]);
		}
	}
	tz_row_encode(&p->cols, cols, o->ncols);
	tz_free(cols);
	put_row(&p->base, &p->has_base, rq->base);
	put_row(&p->ours, &p->has_ours, rq->ours);
	put_row(&p->theirs, &p->has_theirs, rq->theirs);
	p->has_provisional = !o->absent;
	if (!o->absent)
		tz_buf_put(&p->provisional, o->merged.data, o->merged.len);
	if ((rc = tz_buf_error(&p->cols)) < 0 || (rc = tz_buf_error(&p->base)) < 0 || (rc = tz_buf_error(&p->ours)) < 0 ||
	    (rc = tz_buf_error(&p->theirs)) < 0 || (rc = tz_buf_error(&p->provisional)) < 0)
		return rc;
	return TZ_OK;
}

int tz_queue__keep(tz_pending **pp, size_t *n, size_t *cap, const tz_merge_request *rq, const tz_row_outcome *o)
{
	tz_pending earlier = { 0 };
	bool has_earlier;
	int rc;

	/* one entry per row per merge: a row merged again (a later stretch of
	 * the same bundle) replaces its earlier entry, keeping its columns */
	has_earlier = take_earlier(*pp, n, rq, &earlier);
	if (tz_array_grow(pp, cap, *n, sizeof(**pp)) < 0) {
		rc = TZ_ENOMEM;
		goto done;
	}
	rc = fill_pending(&(*pp)[(*n)++], rq, o);
	if (rc == TZ_OK && has_earlier && earlier.kind == TZ_KIND_DATA && o->kind == TZ_KIND_DATA)
		rc = fold_earlier(&(*pp)[*n - 1], &earlier);
done:
	if (has_earlier)
		pending_release(&earlier);
	return rc;
}

static void bind_buf(sqlite3_stmt *q, int i, const tz_buf *b, bool has)
{
	if (has)
		sqlite3_bind_blob(q, i, b->data ? (const void *)b->data : "", (int)b->len, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, i);
}

int tz_conflict__sql_error(sqlite3 *db, const char *what)
{
	return tz_error_set(TZ_ESQL, "%s: %s", what, sqlite3_errmsg(db));
}

int tz_queue__record(tz_store *s, const char *code, const tz_pending *p, size_t n, const tz_oid *ours_commit,
		     const tz_oid *theirs_commit, const tz_oid *merge_commit, int64_t *first_id, int64_t *last_id)
{
	sqlite3 *db = tz_store_db(s);
	sqlite3_stmt *q = NULL;
	char oc[41], tc[41], mc[41];
	int rc = TZ_OK;

	*first_id = *last_id = 0;
	if (n == 0)
		return TZ_OK;
	tz_oid_fmt(oc, ours_commit);
	tz_oid_fmt(tc, theirs_commit);
	tz_oid_fmt(mc, merge_commit);
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO tz_conflicts(kind, tbl, part, key, branch, cols, base, ours, theirs, provisional,"
			       " policy, note, ours_commit, theirs_commit, merge_commit, created)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
			       -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot queue a conflict");
	for (size_t i = 0; i < n && rc == TZ_OK; i++) {
		sqlite3_reset(q);
		sqlite3_bind_text(q, 1, tz_conflict_kind_name(p[i].kind), -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, p[i].table, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 3, p[i].partition, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 4, p[i].key, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 5, code, -1, SQLITE_STATIC);
		bind_buf(q, 6, &p[i].cols, true);
		bind_buf(q, 7, &p[i].base, p[i].has_base);
		bind_buf(q, 8, &p[i].ours, p[i].has_ours);
		bind_buf(q, 9, &p[i].theirs, p[i].has_theirs);
		bind_buf(q, 10, &p[i].provisional, p[i].has_provisional);
		sqlite3_bind_text(q, 11, p[i].policy, -1, SQLITE_STATIC);
		if (p[i].note)
			sqlite3_bind_text(q, 12, p[i].note, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 13, oc, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 14, tc, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 15, mc, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 16, (sqlite3_int64)time(NULL));
		if (sqlite3_step(q) != SQLITE_DONE)
			rc = tz_conflict__sql_error(db, "cannot queue a conflict");
		else if (*first_id == 0)
			*first_id = sqlite3_last_insert_rowid(db);
		*last_id = sqlite3_last_insert_rowid(db);
	}
	sqlite3_finalize(q);
	return rc;
}

/* ---- listing ---- */

static const char select_sql[] =
	"SELECT id, kind, tbl, part, key, branch, policy, note, status, ours_commit, theirs_commit, merge_commit,"
	" created, resolved_at, resolved_by, resolution, resolution_commit, cols, base, ours, theirs, provisional"
	" FROM tz_conflicts WHERE (?1 IS NULL OR tbl = ?1) AND (?2 IS NULL OR branch = ?2)"
	" AND (?3 OR status = 'open') AND (?4 = 0 OR id = ?4) ORDER BY id";

static const char *text_or_empty(sqlite3_stmt *q, int i)
{
	const char *t = (const char *)sqlite3_column_text(q, i);

	return t ? t : "";
}

/* Decode the row held in column i (NULL stays NULL). */
static int row_at(sqlite3_stmt *q, int i, tz_row **out)
{
	*out = NULL;
	if (sqlite3_column_type(q, i) == SQLITE_NULL)
		return TZ_OK;
	return tz_row_decode(out, sqlite3_column_blob(q, i), (size_t)sqlite3_column_bytes(q, i));
}

static int bind_filter(sqlite3_stmt *q, const tz_conflict_filter *f)
{
	if (f && f->table)
		sqlite3_bind_text(q, 1, f->table, -1, SQLITE_STATIC);
	if (f && f->branch)
		sqlite3_bind_text(q, 2, f->branch, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 3, f && (f->all || f->id));
	sqlite3_bind_int64(q, 4, f ? f->id : 0);
	return TZ_OK;
}

int tz_conflicts_list(tz_store *s, const tz_conflict_filter *f, tz_conflict_cb cb, void *payload)
{
	sqlite3 *db = tz_store_db(s);
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK, step;

	if (sqlite3_prepare_v2(db, select_sql, -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot read the conflict queue");
	bind_filter(q, f);
	while (rc == TZ_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
		tz_conflict c;
		tz_row *cols = NULL, *rows[4] = { NULL, NULL, NULL, NULL };
		tz_value kv[TZ_KEY_MAX_COLUMNS];
		uint8_t *arena = NULL;
		memset(&c, 0, sizeof(c));
		c.id = sqlite3_column_int64(q, 0);
		c.kind = text_or_empty(q, 1);
		c.table = text_or_empty(q, 2);
		c.partition = text_or_empty(q, 3);
		c.key = text_or_empty(q, 4);
		c.branch = text_or_empty(q, 5);
		c.policy = text_or_empty(q, 6);
		c.note = (const char *)sqlite3_column_text(q, 7);
		c.status = text_or_empty(q, 8);
		c.ours_commit = text_or_empty(q, 9);
		c.theirs_commit = text_or_empty(q, 10);
		c.merge_commit = text_or_empty(q, 11);
		c.created = sqlite3_column_int64(q, 12);
		c.resolved_at = sqlite3_column_int64(q, 13);
		c.resolved_by = (const char *)sqlite3_column_text(q, 14);
		c.resolution = (const char *)sqlite3_column_text(q, 15);
		c.resolution_commit = (const char *)sqlite3_column_text(q, 16);
		if ((rc = row_at(q, 17, &cols)) == TZ_OK && cols == NULL)
			rc = tz_error_set(TZ_ECORRUPT, "conflict %lld has no columns", (long long)c.id);
		for (int i = 0; i < 4 && rc == TZ_OK; i++)
			rc = row_at(q, 18 + i, &rows[i]);
		if (rc == TZ_OK)
			rc = tz_key_decode(kv, TZ_KEY_MAX_COLUMNS, &c.nkey, &arena, c.key, strlen(c.key));
		if (rc == TZ_OK) {
			c.ncols = cols->ncols;
			c.cols = cols->cols;
			c.base = rows[0];
			c.ours = rows[1];
			c.theirs = rows[2];
			c.provisional = rows[3];
			c.key_values = kv;
			rc = cb(&c, payload);
		} else {
			tz_error_wrap(rc, "conflict %lld", (long long)c.id);
		}
		tz_free(arena);
		tz_row_free(cols);
		for (int i = 0; i < 4; i++)
			tz_row_free(rows[i]);
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_conflict__sql_error(db, "cannot read the conflict queue");
	sqlite3_finalize(q);
	return rc;
}

int tz_conflicts_ids(tz_store *s, const tz_conflict_filter *f, int64_t **ids, size_t *n)
{
	sqlite3 *db = tz_store_db(s);
	sqlite3_stmt *q = NULL;
	size_t cap = 0;
	int rc = TZ_OK, step;

	*ids = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db, "SELECT id FROM tz_conflicts WHERE status = 'open' AND (?1 IS NULL OR tbl = ?1)"
				   " AND (?2 IS NULL OR branch = ?2) ORDER BY id", -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot read the conflict queue");
	if (f->table)
		sqlite3_bind_text(q, 1, f->table, -1, SQLITE_STATIC);
	if (f->branch)
		sqlite3_bind_text(q, 2, f->branch, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		if (tz_array_grow(ids, &cap, *n, sizeof(**ids)) < 0) {
			rc = TZ_ENOMEM;
			break;
		}
		(*ids)[(*n)++] = sqlite3_column_int64(q, 0);
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_conflict__sql_error(db, "cannot read the conflict queue");
	sqlite3_finalize(q);
	if (rc < 0) {
		tz_free(*ids);
		*ids = NULL;
		*n = 0;
	}
	return rc;
}

int tz_conflicts_open(tz_store *s, uint64_t *total)
{
	sqlite3 *db = tz_store_db(s);
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK;

	*total = 0;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM tz_conflicts WHERE status = 'open'", -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot read the conflict queue");
	if (sqlite3_step(q) == SQLITE_ROW)
		*total = (uint64_t)sqlite3_column_int64(q, 0);
	else
		rc = tz_conflict__sql_error(db, "cannot read the conflict queue");
	sqlite3_finalize(q);
	return rc;
}

/* ---- resolution ---- */

/* The primary key columns of `table`, in key order. */
typedef struct {
	size_t n;
	char *name[TZ_KEY_MAX_COLUMNS];
} pk_cols;

static void pk_release(pk_cols *k)
{
	for (size_t i = 0; i < k->n; i++)
		tz_free(k->name[i]);
	k->n = 0;
}

static int pk_of(sqlite3 *db, const char *table, pk_cols *k)
{
	int rc;

	memset(k, 0, sizeof(*k));
	if ((rc = tz_integrity__pk_names(db, table, k->name, &k->n)) == TZ_OK && k->n == 0)
		rc = tz_error_set(TZ_ENOTFOUND, "table '%s' has no primary key here", table);
	return rc;
}

static void put_where(tz_buf *b, const pk_cols *k, int first)
{
	tz_buf_puts(b, " WHERE ");
	for (size_t i = 0; i < k->n; i++) {
		if (i)
			tz_buf_puts(b, " AND ");
		tz_store_sql_ident(b, k->name[i]);
		tz_buf_printf(b, " IS ?%d", first + (int)i);
	}
}

/* The row of `table` with key kv as store.db holds it now (NULL: none). */
static int current_row(sqlite3 *db, const char *table, const pk_cols *k, const tz_value *kv, tz_row **out)
{
	tz_buf sql = TZ_BUF_INIT, enc = TZ_BUF_INIT;
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK, step;

	*out = NULL;
	tz_buf_puts(&sql, "SELECT * FROM ");
	tz_store_sql_ident(&sql, table);
	put_where(&sql, k, 1);
	if ((rc = tz_buf_error(&sql)) < 0)
		goto done;
	if (sqlite3_prepare_v2(db, (const char *)sql.data, -1, &q, NULL) != SQLITE_OK) {
		rc = tz_conflict__sql_error(db, "cannot read the row");
		goto done;
	}
	for (size_t i = 0; i < k->n; i++)
		tz_store_sql_bind(q, (int)i + 1, &kv[i]);
	if ((step = sqlite3_step(q)) == SQLITE_ROW) {
		int n = sqlite3_column_count(q);
		tz_column *cols = tz_calloc((size_t)n, sizeof(*cols));
		if (cols == NULL) {
			rc = TZ_ENOMEM;
			goto done;
		}
		for (int i = 0; i < n; i++) {
			cols[i].name = sqlite3_column_name(q, i);
			cols[i].name_len = strlen(cols[i].name);
			tz_store_sql_column(q, i, &cols[i].v);
		}
		if ((rc = tz_row_encode(&enc, cols, (size_t)n)) == TZ_OK)
			rc = tz_row_decode(out, enc.data, enc.len);
		tz_free(cols);
	} else if (step != SQLITE_DONE) {
		rc = tz_conflict__sql_error(db, "cannot read the row");
	}
done:
	sqlite3_finalize(q);
	tz_buf_release(&sql);
	tz_buf_release(&enc);
	return rc;
}

/* Make store.db's row with key kv look like `target` (NULL: absent),
 * `cur` being what it holds now. */
static int write_row(sqlite3 *db, const char *table, const pk_cols *k, const tz_value *kv, const tz_row *cur,
		     const tz_row *target)
{
	tz_buf sql = TZ_BUF_INIT;
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK, nb = 0;
	const tz_value **vals = NULL;

	if (cur == NULL && target == NULL)
		return TZ_OK;
	if (target && (vals = tz_calloc(target->ncols ? target->ncols : 1, sizeof(*vals))) == NULL)
		return TZ_ENOMEM;
	if (target == NULL) {
		tz_buf_puts(&sql, "DELETE FROM ");
		tz_store_sql_ident(&sql, table);
		put_where(&sql, k, 1);
	} else if (cur == NULL) {
		tz_buf_puts(&sql, "INSERT INTO ");
		tz_store_sql_ident(&sql, table);
		tz_buf_puts(&sql, " (");
		for (size_t c = 0; c < target->ncols; c++) {
			char *name = tz_strndup(target->cols[c].name, target->cols[c].name_len);
			if (name == NULL) {
				rc = TZ_ENOMEM;
				goto done;
			}
			tz_buf_puts(&sql, c ? ", " : "");
			tz_store_sql_ident(&sql, name);
			tz_free(name);
			vals[nb++] = &target->cols[c].v;
		}
		tz_buf_puts(&sql, ") VALUES (");
		for (int i = 0; i < nb; i++)
			tz_buf_printf(&sql, "%s?%d", i ? ", " : "", i + 1);
		tz_buf_puts(&sql, ")");
	} else {
		tz_buf_puts(&sql, "UPDATE ");
		tz_store_sql_ident(&sql, table);
		tz_buf_puts(&sql, " SET ");
		for (size_t c = 0; c < target->ncols; c++) {
			const tz_column *o = tz_row_find(cur, target->cols[c].name, target->cols[c].name_len);
			char *name;
			if (o && tz_value_cmp(&o->v, &target->cols[c].v) == 0)
				continue;
			if ((name = tz_strndup(target->cols[c].name, target->cols[c].name_len)) == NULL) {
				rc = TZ_ENOMEM;
				goto done;
			}
			tz_buf_puts(&sql, nb ? ", " : "");
			tz_store_sql_ident(&sql, name);
			tz_free(name);
			vals[nb] = &target->cols[c].v;
			tz_buf_printf(&sql, " = ?%d", ++nb);
		}
		if (nb == 0)
			goto done;   /* already so */
		put_where(&sql, k, nb + 1);
	}
	if ((rc = tz_buf_error(&sql)) < 0)
		goto done;
	if (sqlite3_prepare_v2(db, (const char *)sql.data, -1, &q, NULL) != SQLITE_OK) {
		rc = tz_conflict__sql_error(db, "cannot write the resolved row");
		goto done;
	}
	for (int i = 0; i < nb; i++)
		tz_store_sql_bind(q, i + 1, vals[i]);
	if (target == NULL || cur != NULL)
		for (size_t i = 0; i < k->n; i++)
			tz_store_sql_bind(q, nb + (int)i + 1, &kv[i]);
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = tz_conflict__sql_error(db, "cannot write the resolved row");
done:
	sqlite3_finalize(q);
	tz_buf_release(&sql);
	tz_free(vals);
	return rc;
}

/* One resolved entry: the row store.db held before and its key. */
typedef struct {
	char *table;
	pk_cols k;
	tz_value kv[TZ_KEY_MAX_COLUMNS];
	uint8_t *arena;
	tz_row *before, *after;
} resolved_rec;

typedef struct {
	tz_store *s;
	const tz_resolve_opts *o;
	const int64_t *ids;
	size_t nids;
	resolved_rec *u;
	size_t nu, cap;
	bool seen;
} resolve_ctx;

static const char *how_name(tz_resolve_how h)
{
	return h == TZ_RESOLVE_OURS ? "ours" : h == TZ_RESOLVE_THEIRS ? "theirs" : h == TZ_RESOLVE_BASE ? "base" : "set";
}

/* target = from `start`, the conflicting columns taken from `side`, then
 * the administrator's values; encoded into `out`. */
static int build_target(const tz_conflict *c, const tz_row *start, const tz_row *side, bool whole,
			const tz_resolve_opts *o, tz_buf *out)
{
	const tz_row *from = whole ? side : start;
	tz_column *cols;
	size_t n;
	int rc;

	if (from == NULL)
		return tz_error_set(TZ_EINVAL, "conflict %lld: the row is absent on that side; --set needs a row",
				    (long long)c->id);
	n = from->ncols;
	if ((cols = tz_calloc(n ? n : 1, sizeof(*cols))) == NULL)
		return TZ_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		cols[i] = from->cols[i];
		if (!whole && side) {
			bool conflicting = false;
			for (size_t k = 0; k < c->ncols && !conflicting; k++)
				conflicting = c->cols[k].name_len == cols[i].name_len &&
					      memcmp(c->cols[k].name, cols[i].name, cols[i].name_len) == 0;
			const tz_column *sv = conflicting ? tz_row_find(side, cols[i].name, cols[i].name_len) : NULL;
			if (sv)
				cols[i].v = sv->v;
		}
	}
	rc = TZ_OK;
	for (size_t k = 0; k < o->nset && rc == TZ_OK; k++) {
		size_t i = 0;
		while (i < n && !(cols[i].name_len == strlen(o->set[k].col) &&
				  memcmp(cols[i].name, o->set[k].col, cols[i].name_len) == 0))
			i++;
		if (i == n) {
			rc = tz_error_set(TZ_EINVAL, "conflict %lld: table '%s' has no column '%s'", (long long)c->id,
					  c->table, o->set[k].col);
			break;
		}
		/* text: SQLite converts it with the column's affinity */
		if (o->set[k].text)
			cols[i].v = (tz_value){ TZ_VTEXT, 0, 0, (const uint8_t *)o->set[k].text, strlen(o->set[k].text) };
		else
			cols[i].v = (tz_value){ TZ_VNULL, 0, 0, NULL, 0 };
	}
	if (rc == TZ_OK)
		rc = tz_row_encode(out, cols, n);
	tz_free(cols);
	return rc;
}

/* The integrity kinds (docs/integrity.md): --ours keeps HQ's rows as they
 * stand (*nothing); an invariant entry takes nothing else (its rows are
 * changed by their own entries or by hand); an orphan has no other side,
 * so --set/--null its reference; an unauthorized change takes --theirs
 * (the administrator authorises it) on HQ's row. */
static int integrity_how(const tz_conflict *c, const tz_resolve_opts *o, bool *nothing)
{
	bool inv = strcmp(c->kind, "invariant") == 0, orphan = strcmp(c->kind, "orphan") == 0;

	*nothing = false;
	if (!inv && !orphan && strcmp(c->kind, "unauthorized") != 0)
		return TZ_OK;
	if (o->how == TZ_RESOLVE_OURS && o->nset == 0) {
		*nothing = true;
		return TZ_OK;
	}
	if (inv)
		return tz_error_set(TZ_EINVAL, "conflict %lld is an invariant: acknowledge it with --ours once its rows "
				    "are put right", (long long)c->id);
	if (o->how == TZ_RESOLVE_BASE || (orphan && o->how == TZ_RESOLVE_THEIRS))
		return tz_error_set(TZ_EINVAL, "conflict %lld is an %s entry: --ours%s or --set/--null", (long long)c->id,
				    c->kind, orphan ? "" : ", --theirs");
	return TZ_OK;
}

static int resolve_one(const tz_conflict *c, void *payload)
{
	resolve_ctx *x = payload;
	const tz_resolve_opts *o = x->o;
	sqlite3 *db = tz_store_db(x->s);
	const tz_row *side;
	tz_row *target = NULL;
	tz_buf enc = TZ_BUF_INIT;
	resolved_rec *u;
	bool whole = strcmp(c->kind, "delete") == 0, absent = false, nothing;
	int rc;

	x->seen = true;
	if (strcmp(c->status, "open") != 0)
		return tz_error_set(TZ_EINVAL, "conflict %lld is %s already", (long long)c->id, c->status);
	if ((rc = integrity_how(c, o, &nothing)) < 0 || nothing)
		return rc;   /* decided as HQ's rows stand: nothing to write */
	if (tz_array_grow(&x->u, &x->cap, x->nu, sizeof(*x->u)) < 0)
		return TZ_ENOMEM;
	u = &x->u[x->nu++];
	memset(u, 0, sizeof(*u));
	if ((u->table = tz_strdup(c->table)) == NULL)
		return TZ_ENOMEM;
	if ((rc = pk_of(db, c->table, &u->k)) < 0)
		return rc;
	if (c->nkey != u->k.n)
		return tz_error_set(TZ_ECORRUPT, "conflict %lld: its key does not fit table '%s'", (long long)c->id,
				    c->table);
	/* the key values outlive the listing's callback */
	{
		size_t nk;
		if ((rc = tz_key_decode(u->kv, TZ_KEY_MAX_COLUMNS, &nk, &u->arena, c->key, strlen(c->key))) < 0)
			return rc;
	}
	if ((rc = current_row(db, c->table, &u->k, u->kv, &u->before)) < 0)
		return rc;
	side = o->how == TZ_RESOLVE_OURS ? c->ours : o->how == TZ_RESOLVE_THEIRS ? c->theirs
			: o->how == TZ_RESOLVE_BASE ? c->base : NULL;
	if (o->how == TZ_RESOLVE_BASE && c->base == NULL && !whole)
		return tz_error_set(TZ_EINVAL, "conflict %lld is an insert on both sides: it has no base", (long long)c->id);
	if (whole && o->how != TZ_RESOLVE_SET && side == NULL) {
		absent = o->nset == 0;   /* that side deleted the row */
		if (!absent)
			return tz_error_set(TZ_EINVAL, "conflict %lld: the row is absent on that side; --set needs a "
					    "row", (long long)c->id);
	}
	if (!absent && !whole && u->before == NULL)
		return tz_error_set(TZ_EINVAL, "conflict %lld: HQ no longer holds the row (deleted since); there is "
				    "nothing to resolve the columns of", (long long)c->id);
	if (!absent) {
		const tz_row *start = u->before ? u->before : c->provisional;
		if (whole && o->how == TZ_RESOLVE_SET)
			side = start;   /* a delete entry, --set alone: on the row as it stands */
		if ((rc = build_target(c, start, side, whole, o, &enc)) < 0 || (rc = tz_row_decode(&target, enc.data, enc.len)) < 0)
			goto done;
	}
	rc = write_row(db, c->table, &u->k, u->kv, u->before, target);
	u->after = target;
	target = NULL;
done:
	tz_row_free(target);
	tz_buf_release(&enc);
	return rc;
}

static void resolved_release(resolved_rec *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		tz_free(u[i].table);
		pk_release(&u[i].k);
		tz_free(u[i].arena);
		tz_row_free(u[i].before);
		tz_row_free(u[i].after);
	}
	tz_free(u);
}

/* The resolution's rows, inside the commit's transaction. */
static int write_resolved(void *ctx, tz_store *s)
{
	resolve_ctx *x = ctx;
	int rc = TZ_OK;

	(void)s;
	for (size_t i = 0; i < x->nids && rc == TZ_OK; i++) {
		tz_conflict_filter f = { NULL, NULL, true, x->ids[i] };
		x->seen = false;
		rc = tz_conflicts_list(x->s, &f, resolve_one, x);
		if (rc == TZ_OK && !x->seen)
			rc = tz_error_set(TZ_ENOTFOUND, "no conflict %lld", (long long)x->ids[i]);
	}
	return rc;
}

/* The entries resolved by `commit`, in the same transaction. */
static int mark_resolved(void *ctx, tz_store *s, const tz_oid *commit)
{
	resolve_ctx *x = ctx;
	sqlite3 *db = tz_store_db(s);
	sqlite3_stmt *q = NULL;
	char hex[41];
	int rc = TZ_OK;

	tz_oid_fmt(hex, commit);
	if (sqlite3_prepare_v2(db, "UPDATE tz_conflicts SET status = 'resolved', resolved_at = ?1, resolved_by = ?2,"
				   " resolution = ?3, resolution_commit = ?4 WHERE id = ?5", -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot update the conflict queue");
	for (size_t i = 0; i < x->nids && rc == TZ_OK; i++) {
		sqlite3_reset(q);
		sqlite3_bind_int64(q, 1, (sqlite3_int64)time(NULL));
		sqlite3_bind_text(q, 2, x->o->as ? x->o->as : "HQ", -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 3, how_name(x->o->how), -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 4, hex, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 5, x->ids[i]);
		if (tz_faultsim(TZ_FAULT_SQL) || sqlite3_step(q) != SQLITE_DONE)
			rc = tz_conflict__sql_error(db, "cannot update the conflict queue");
	}
	sqlite3_finalize(q);
	return rc;
}

int tz_conflicts_resolve(tz_store *s, const int64_t *ids, size_t nids, const tz_resolve_opts *o,
			 tz_resolve_result *res)
{
	resolve_ctx x;
	tz_commit_hook hook;
	tz_commit_result cr;
	tz_buf msg = TZ_BUF_INIT;
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&x, 0, sizeof(x));
	x.s = s;
	x.o = o;
	if (strcmp(tz_store_code(s), "HQ") != 0)
		return tz_error_set(TZ_EINVAL, "conflicts are resolved at HQ");
	if (nids == 0)
		return tz_error_set(TZ_EINVAL, "no open conflict to resolve");
	if (o->how == TZ_RESOLVE_SET && o->nset == 0)
		return tz_error_set(TZ_EINVAL, "say how: --ours, --theirs, --base or --set COL=VALUE");
	for (size_t i = 0; i < nids; i++)
		for (size_t k = 0; k < i; k++)
			if (ids[k] == ids[i])
				return tz_error_set(TZ_EINVAL, "conflict %lld is named twice", (long long)ids[i]);
	x.ids = ids;
	x.nids = nids;
	tz_buf_printf(&msg, "resolve conflict%s", nids > 1 ? "s" : "");
	for (size_t i = 0; i < nids; i++)
		tz_buf_printf(&msg, " %lld", (long long)ids[i]);
	tz_buf_printf(&msg, ": %s%s", how_name(o->how), o->how != TZ_RESOLVE_SET && o->nset ? " and set values" : "");
	if ((rc = tz_buf_error(&msg)) < 0)
		goto done;
	/* rows, head and queue in one transaction, after the commit's objects
	 * (HQ's own pending changes are sealed first: not the administrator's
	 * decision) */
	hook.write = write_resolved;
	hook.record = mark_resolved;
	hook.ctx = &x;
	if ((rc = tz_store_commit_with(s, (const char *)msg.data, o->as, true, &hook, &cr)) < 0)
		goto done;
	res->committed = cr.committed;
	res->commit = cr.commit;
	res->resolved = nids;
done:
	tz_buf_release(&msg);
	resolved_release(x.u, x.nu);
	return rc;
}

/*
 * duplicates.c - duplicate rows under the declared unique keys
 * (tz_unique; docs/integrity.md): HQ's index of normalised keys kept
 * after each merge, the duplicate queue, and `duplicates merge KEEP DROP`.
 */
#include "conflict/conflict_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
	char *name, *table;
	size_t ncols;
	char *cols[TZ_KEY_MAX_COLUMNS];
	bool exact;
} udecl;

typedef struct {
	char *table, *key, *part;
	tz_row *row;
} pending_row;

typedef struct {
	tz_store *s;
	sqlite3 *db;
	const tz_merge_done *d;
	pending_row *rows;
	size_t nrows, caprows;
	bool rebuild;                /* the index is built from the whole tree */
	udecl *u;
	size_t nu;
	uint64_t queued;
	sqlite3_stmt *del, *ins, *find, *open_q, *add;
} dup_ctx;

static void decls_free(udecl *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		tz_free(u[i].name);
		tz_free(u[i].table);
		for (size_t k = 0; k < u[i].ncols; k++)
			tz_free(u[i].cols[k]);
	}
	tz_free(u);
}

/* The declarations, and a text that changes whenever they do. */
static int decls_load(sqlite3 *db, udecl **out, size_t *n, tz_buf *print)
{
	sqlite3_stmt *q = NULL;
	size_t cap = 0;
	int rc = TZ_OK, step = SQLITE_DONE;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db, "SELECT name, tbl, cols, coalesce(normalize, '') FROM tz_unique ORDER BY name", -1, &q,
			       NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot read tz_unique");
	while (rc == TZ_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *cols = (const char *)sqlite3_column_text(q, 2);
		udecl *u;
		if (tz_array_grow(out, &cap, *n, sizeof(**out)) < 0) {
			rc = TZ_ENOMEM;
			break;
		}
		u = &(*out)[(*n)++];
		memset(u, 0, sizeof(*u));
		u->name = tz_strdup((const char *)sqlite3_column_text(q, 0));
		u->table = tz_strdup((const char *)sqlite3_column_text(q, 1));
		u->exact = strcmp((const char *)sqlite3_column_text(q, 3), "exact") == 0;
		tz_buf_printf(print, "%s|%s|%s|%s\n", u->name, u->table, cols, u->exact ? "exact" : "");
		for (const char *p = cols; p && *p && u->ncols < TZ_KEY_MAX_COLUMNS;) {
			const char *e = strchr(p, ',');
			size_t len = e ? (size_t)(e - p) : strlen(p);
			if ((u->cols[u->ncols++] = tz_strndup(p, len)) == NULL)
				rc = TZ_ENOMEM;
			p = e ? e + 1 : NULL;
		}
		if (!u->name || !u->table)
			rc = TZ_ENOMEM;
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_conflict__sql_error(db, "cannot read tz_unique");
	sqlite3_finalize(q);
	return rc == TZ_OK ? tz_buf_error(print) : rc;
}

/* The normalised key of a row under u; *complete false when a column is
 * NULL or missing (a NULL is nobody's key). */
static void nkey_of(const udecl *u, const tz_row *row, tz_buf *out, bool *complete)
{
	*complete = true;
	for (size_t k = 0; k < u->ncols; k++) {
		const tz_column *c = tz_row_find(row, u->cols[k], strlen(u->cols[k]));
		if (c == NULL || c->v.type == TZ_VNULL) {
			*complete = false;
			return;
		}
		if (k)
			tz_buf_putc(out, 0x1f);   /* unit separator: no normalised text holds it */
		size_t before = out->len;
		tz_unique_normalize(&c->v, u->exact, out);
		/* a blank value is nobody's key, like NULL: else every row with
		 * an empty ID would pair with every other (k rows, k(k-1)/2 pairs) */
		if (out->len == before) {
			*complete = false;
			return;
		}
	}
}

static int queue_pair(dup_ctx *x, const udecl *u, const tz_buf *nk, const char *key_a, const char *part_a,
		      const char *key_b, const char *part_b)
{
	char mc[41];
	int step;

	sqlite3_reset(x->open_q);
	sqlite3_bind_text(x->open_q, 1, u->table, -1, SQLITE_STATIC);
	sqlite3_bind_text(x->open_q, 2, key_a, -1, SQLITE_STATIC);
	sqlite3_bind_text(x->open_q, 3, key_b, -1, SQLITE_STATIC);
	if ((step = sqlite3_step(x->open_q)) == SQLITE_ROW)
		return TZ_OK;   /* already queued, not resolved yet */
	if (step != SQLITE_DONE)
		return tz_conflict__sql_error(x->db, "cannot read the duplicate queue");
	tz_oid_fmt(mc, tz_oid_is_zero(x->d->merge_commit) ? x->d->ours_commit : x->d->merge_commit);
	sqlite3_reset(x->add);
	sqlite3_bind_text(x->add, 1, u->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(x->add, 2, u->table, -1, SQLITE_STATIC);
	sqlite3_bind_blob(x->add, 3, nk->data ? (const void *)nk->data : "", (int)nk->len, SQLITE_STATIC);
	sqlite3_bind_text(x->add, 4, key_a, -1, SQLITE_STATIC);
	sqlite3_bind_text(x->add, 5, part_a, -1, SQLITE_STATIC);
	sqlite3_bind_text(x->add, 6, key_b, -1, SQLITE_STATIC);
	sqlite3_bind_text(x->add, 7, part_b, -1, SQLITE_STATIC);
	sqlite3_bind_text(x->add, 8, x->d->code, -1, SQLITE_STATIC);
	sqlite3_bind_text(x->add, 9, mc, -1, SQLITE_STATIC);
	sqlite3_bind_int64(x->add, 10, (sqlite3_int64)time(NULL));
	if (sqlite3_step(x->add) != SQLITE_DONE)
		return tz_conflict__sql_error(x->db, "cannot queue a duplicate");
	x->queued++;
	return TZ_OK;
}

/* Pass 2, one row under one declaration: back into the index with its
 * new key, a duplicate queued for every other row holding that key. */
static int index_row(dup_ctx *x, const udecl *u, const char *key, const char *part, const tz_row *row)
{
	tz_buf nk = TZ_BUF_INIT;
	bool complete = false;
	int rc = TZ_OK, step;

	nkey_of(u, row, &nk, &complete);
	if (!complete || (rc = tz_buf_error(&nk)) < 0)
		goto done;
	sqlite3_reset(x->find);
	sqlite3_bind_text(x->find, 1, u->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(x->find, 2, nk.data ? (const void *)nk.data : "", (int)nk.len, SQLITE_STATIC);
	while (rc == TZ_OK && (step = sqlite3_step(x->find)) == SQLITE_ROW) {
		char *ka = tz_strdup((const char *)sqlite3_column_text(x->find, 0));
		char *pa = tz_strdup((const char *)sqlite3_column_text(x->find, 1));
		rc = ka && pa ? (strcmp(ka, key) == 0 ? TZ_OK : queue_pair(x, u, &nk, ka, pa, key, part)) : TZ_ENOMEM;
		tz_free(ka);
		tz_free(pa);
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_conflict__sql_error(x->db, "cannot read the unique-key index");
	if (rc < 0)
		goto done;
	sqlite3_reset(x->ins);
	sqlite3_bind_text(x->ins, 1, u->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(x->ins, 2, nk.data ? (const void *)nk.data : "", (int)nk.len, SQLITE_STATIC);
	sqlite3_bind_text(x->ins, 3, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(x->ins, 4, part, -1, SQLITE_STATIC);
	if (sqlite3_step(x->ins) != SQLITE_DONE)
		rc = tz_conflict__sql_error(x->db, "cannot update the unique-key index");
done:
	tz_buf_release(&nk);
	return rc;
}

/* Pass 1, each touched row of a declared table: out of the index (every
 * touched row leaves it before any goes back, so that no stale key of a
 * row deleted or changed by the same merge is taken for a duplicate);
 * kept for pass 2 when present (a merged row that a branch's change
 * brought back is removed again in this transaction, integrity.c: not
 * indexed). */
static int unindex_touched(const tz_touched_row *r, void *payload)
{
	dup_ctx *x = payload;
	char *target = NULL;
	bool any = false;
	int rc = TZ_OK;

	for (size_t i = 0; i < x->nu; i++) {
		if (strcmp(x->u[i].table, r->table) != 0)
			continue;
		any = true;
		sqlite3_reset(x->del);
		sqlite3_bind_text(x->del, 1, x->u[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(x->del, 2, r->key, -1, SQLITE_STATIC);
		if (sqlite3_step(x->del) != SQLITE_DONE)
			return tz_conflict__sql_error(x->db, "cannot update the unique-key index");
	}
	if (!any || !r->present || (rc = tz_store_redirect_target(x->s, r->table, r->key, &target)) < 0 || target) {
		tz_free(target);
		return rc;
	}
	if (x->rebuild) {
		/* the index was emptied: no stale key to leave first, so each
		 * row goes in as the walk meets it (no row held in memory) */
		tz_row *row = NULL;
		if ((rc = tz_store_read_row(x->s, r->blob, &row)) == TZ_OK)
			for (size_t i = 0; i < x->nu && rc == TZ_OK; i++)
				if (strcmp(x->u[i].table, r->table) == 0)
					rc = index_row(x, &x->u[i], r->key, r->partition, row);
		tz_row_free(row);
		return rc;
	}
	if (tz_array_grow(&x->rows, &x->caprows, x->nrows, sizeof(*x->rows)) < 0)
		return TZ_ENOMEM;
	pending_row *p = &x->rows[x->nrows++];
	memset(p, 0, sizeof(*p));
	p->table = tz_strdup(r->table);
	p->key = tz_strdup(r->key);
	p->part = tz_strdup(r->partition);
	if (!p->table || !p->key || !p->part)
		return TZ_ENOMEM;
	return tz_store_read_row(x->s, r->blob, &p->row);
}

static int index_all(dup_ctx *x)
{
	int rc = TZ_OK;

	for (size_t k = 0; k < x->nrows && rc == TZ_OK; k++)
		for (size_t i = 0; i < x->nu && rc == TZ_OK; i++)
			if (strcmp(x->u[i].table, x->rows[k].table) == 0)
				rc = index_row(x, &x->u[i], x->rows[k].key, x->rows[k].part, x->rows[k].row);
	return rc;
}

static void rows_free(dup_ctx *x)
{
	for (size_t k = 0; k < x->nrows; k++) {
		tz_free(x->rows[k].table);
		tz_free(x->rows[k].key);
		tz_free(x->rows[k].part);
		tz_row_free(x->rows[k].row);
	}
	tz_free(x->rows);
}

static int prepare_all(dup_ctx *x)
{
	if (sqlite3_prepare_v2(x->db, "DELETE FROM tz_ukeys WHERE name = ?1 AND key = ?2", -1, &x->del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "INSERT OR REPLACE INTO tz_ukeys(name, nkey, key, part) VALUES (?1, ?2, ?3, ?4)", -1,
			       &x->ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "SELECT key, part FROM tz_ukeys WHERE name = ?1 AND nkey = ?2", -1, &x->find, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "SELECT 1 FROM tz_duplicates WHERE status = 'open' AND tbl = ?1 AND"
				      " ((key_a = ?2 AND key_b = ?3) OR (key_a = ?3 AND key_b = ?2))", -1, &x->open_q, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "INSERT INTO tz_duplicates(name, tbl, nkey, key_a, part_a, key_b, part_b, branch,"
				      " merge_commit, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)", -1, &x->add,
			       NULL) != SQLITE_OK)
		return tz_conflict__sql_error(x->db, "cannot prepare the duplicate checks");
	return TZ_OK;
}

/* tz_meta 'ukeys': "<root hex> <declarations' text>", the root the index
 * was last brought to.  *has false when there is none or the declarations
 * changed since (the index is then rebuilt). */
static int marker_get(sqlite3 *db, const char *print, tz_oid *root, bool *has)
{
	sqlite3_stmt *q = NULL;
	int step;

	*has = false;
	if (sqlite3_prepare_v2(db, "SELECT v FROM tz_meta WHERE k = 'ukeys'", -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot read tz_meta");
	if ((step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(q, 0);
		if (v && strlen(v) > 41 && v[40] == ' ' && strcmp(v + 41, print) == 0) {
			*has = true;
			for (int i = 0; i < 20 && *has; i++) {
				unsigned b;
				*has = sscanf(v + 2 * i, "%2x", &b) == 1;
				root->id[i] = (uint8_t)b;
			}
		}
	}
	sqlite3_finalize(q);
	return step == SQLITE_ROW || step == SQLITE_DONE ? TZ_OK : tz_conflict__sql_error(db, "cannot read tz_meta");
}

static int marker_set(sqlite3 *db, const tz_oid *root, const char *print)
{
	sqlite3_stmt *q = NULL;
	tz_buf mark = TZ_BUF_INIT;
	char hex[41];
	int rc;

	tz_oid_fmt(hex, root);
	tz_buf_printf(&mark, "%s %s", hex, print);
	tz_buf_putc(&mark, '\0');
	if ((rc = tz_buf_error(&mark)) == TZ_OK &&
	    sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO tz_meta(k, v) VALUES ('ukeys', ?1)", -1, &q, NULL) != SQLITE_OK)
		rc = tz_conflict__sql_error(db, "cannot record the unique-key index");
	if (rc == TZ_OK) {
		sqlite3_bind_text(q, 1, (const char *)mark.data, -1, SQLITE_STATIC);
		if (sqlite3_step(q) != SQLITE_DONE)
			rc = tz_conflict__sql_error(db, "cannot record the unique-key index");
	}
	sqlite3_finalize(q);
	tz_buf_release(&mark);
	return rc;
}

/* The index follows main's root: it is brought from the root it was
 * last brought to to the merge's, so HQ's own commits since count too;
 * new declarations rebuild it from the whole tree. */
int tz_duplicates__check(tz_store *s, const tz_merge_done *d, uint64_t *queued)
{
	dup_ctx x;
	tz_buf print = TZ_BUF_INIT;
	tz_oid from;
	bool has_from = false;
	int rc;

	memset(&x, 0, sizeof(x));
	x.s = s;
	x.db = tz_store_db(s);
	x.d = d;
	if ((rc = decls_load(x.db, &x.u, &x.nu, &print)) < 0 || x.nu == 0)
		goto done;
	tz_buf_putc(&print, '\0');
	if ((rc = tz_buf_error(&print)) < 0 || (rc = prepare_all(&x)) < 0 ||
	    (rc = marker_get(x.db, (const char *)print.data, &from, &has_from)) < 0)
		goto done;
	x.rebuild = !has_from;
	if (!has_from && sqlite3_exec(x.db, "DELETE FROM tz_ukeys", NULL, NULL, NULL) != SQLITE_OK) {
		rc = tz_conflict__sql_error(x.db, "cannot rebuild the unique-key index");
		goto done;
	}
	if ((rc = tz_store_touched(s, has_from ? &from : NULL, d->to_root, unindex_touched, &x)) < 0 ||
	    (rc = index_all(&x)) < 0 || (rc = marker_set(x.db, d->to_root, (const char *)print.data)) < 0)
		goto done;
	*queued += x.queued;
done:
	sqlite3_finalize(x.del);
	sqlite3_finalize(x.ins);
	sqlite3_finalize(x.find);
	sqlite3_finalize(x.open_q);
	sqlite3_finalize(x.add);
	decls_free(x.u, x.nu);
	rows_free(&x);
	tz_buf_release(&print);
	return rc;
}

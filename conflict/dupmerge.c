/*
 * dupmerge.c - the duplicate queue as administrators see it: listing, the
 * open counts `status` shows, and `duplicates merge KEEP DROP`
 * (docs/integrity.md).
 */
#include "conflict/conflict_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tz_integrity_open(tz_store *s, uint64_t by_kind[TZ_KIND_COUNT], uint64_t *duplicates)
{
	sqlite3 *db = tz_store_db(s);
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK, step;

	memset(by_kind, 0, sizeof(uint64_t) * TZ_KIND_COUNT);
	*duplicates = 0;
	if (sqlite3_prepare_v2(db, "SELECT kind, count(*) FROM tz_conflicts WHERE status = 'open' GROUP BY kind"
				   " UNION ALL SELECT '#dup', count(*) FROM tz_duplicates WHERE status = 'open'",
			       -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot read the queues");
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(q, 0);
		uint64_t n = (uint64_t)sqlite3_column_int64(q, 1);
		if (k && strcmp(k, "#dup") == 0)
			*duplicates = n;
		for (int i = 0; k && i < TZ_KIND_COUNT; i++)
			if (strcmp(k, tz_conflict_kind_name((tz_conflict_kind)i)) == 0)
				by_kind[i] = n;
	}
	if (step != SQLITE_DONE)
		rc = tz_conflict__sql_error(db, "cannot read the queues");
	sqlite3_finalize(q);
	return rc;
}

static const char *col_text(sqlite3_stmt *q, int i)
{
	const char *t = (const char *)sqlite3_column_text(q, i);

	return t ? t : "";
}

int tz_duplicates_list(tz_store *s, bool all, tz_duplicate_cb cb, void *payload)
{
	sqlite3 *db = tz_store_db(s);
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK, step;

	if (sqlite3_prepare_v2(db, "SELECT id, name, tbl, status, branch, merge_commit, key_a, part_a, key_b, part_b,"
				   " created, resolved_at, resolved_by, kept, resolution_commit FROM tz_duplicates"
				   " WHERE ?1 OR status = 'open' ORDER BY id", -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot read the duplicate queue");
	sqlite3_bind_int(q, 1, all);
	while (rc == TZ_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
		tz_duplicate d;
		tz_value a[TZ_KEY_MAX_COLUMNS], b[TZ_KEY_MAX_COLUMNS];
		uint8_t *aa = NULL, *ab = NULL;
		memset(&d, 0, sizeof(d));
		d.id = sqlite3_column_int64(q, 0);
		d.name = col_text(q, 1);
		d.table = col_text(q, 2);
		d.status = col_text(q, 3);
		d.branch = col_text(q, 4);
		d.merge_commit = col_text(q, 5);
		d.key_a = col_text(q, 6);
		d.part_a = col_text(q, 7);
		d.key_b = col_text(q, 8);
		d.part_b = col_text(q, 9);
		d.created = sqlite3_column_int64(q, 10);
		d.resolved_at = sqlite3_column_int64(q, 11);
		d.resolved_by = (const char *)sqlite3_column_text(q, 12);
		d.kept = (const char *)sqlite3_column_text(q, 13);
		d.resolution_commit = (const char *)sqlite3_column_text(q, 14);
		if ((rc = tz_key_decode(a, TZ_KEY_MAX_COLUMNS, &d.na, &aa, d.key_a, strlen(d.key_a))) == TZ_OK &&
		    (rc = tz_key_decode(b, TZ_KEY_MAX_COLUMNS, &d.nb, &ab, d.key_b, strlen(d.key_b))) == TZ_OK) {
			d.a = a;
			d.b = b;
			rc = cb(&d, payload);
		} else {
			tz_error_wrap(rc, "duplicate %lld", (long long)d.id);
		}
		tz_free(aa);
		tz_free(ab);
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_conflict__sql_error(db, "cannot read the duplicate queue");
	sqlite3_finalize(q);
	return rc;
}

/* ---- merge ---- */

/* A table's primary key columns, and one row's key in it. */
typedef struct {
	size_t n;
	char *col[TZ_KEY_MAX_COLUMNS];
	sqlite3_value *v[TZ_KEY_MAX_COLUMNS];   /* as stored */
	tz_buf enc;                              /* encoded (the history's file name), NUL-ended */
} row_key;

static void key_release(row_key *k)
{
	for (size_t i = 0; i < k->n; i++) {
		tz_free(k->col[i]);
		sqlite3_value_free(k->v[i]);
	}
	tz_buf_release(&k->enc);
	memset(k, 0, sizeof(*k));
}

/* " WHERE "c1" = ?base AND ..." over the key's columns. */
static void put_key_cond(tz_buf *b, const row_key *k, const char *lead, int base)
{
	for (size_t i = 0; i < k->n; i++) {
		tz_buf_puts(b, i ? " AND " : lead);
		tz_store_sql_ident(b, k->col[i]);
		tz_buf_printf(b, " = ?%d", base + (int)i);
	}
}

/* Find the row whose key the administrator typed (`arg`: one value, or a
 * JSON array for a composite key) in `table`; *found false when none. */
static int find_row(sqlite3 *db, const char *table, const char *arg, row_key *k, bool *found)
{
	sqlite3_stmt *j = NULL, *q = NULL;
	tz_buf sql = TZ_BUF_INIT;
	size_t nv = 0;
	int rc, step;

	*found = false;
	if ((rc = tz_integrity__pk_names(db, table, k->col, &k->n)) < 0)
		return rc;
	if (sqlite3_prepare_v2(db, arg[0] == '[' ? "SELECT value FROM json_each(?1)" : "SELECT ?1", -1, &j, NULL) !=
	    SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot read a key");
	sqlite3_bind_text(j, 1, arg, -1, SQLITE_STATIC);
	tz_buf_puts(&sql, "SELECT ");
	for (size_t i = 0; i < k->n; i++) {
		tz_buf_puts(&sql, i ? ", " : "");
		tz_store_sql_ident(&sql, k->col[i]);
	}
	tz_buf_puts(&sql, " FROM ");
	tz_store_sql_ident(&sql, table);
	put_key_cond(&sql, k, " WHERE ", 1);
	tz_buf_putc(&sql, '\0');
	if ((rc = tz_buf_error(&sql)) < 0 || sqlite3_prepare_v2(db, (const char *)sql.data, -1, &q, NULL) != SQLITE_OK) {
		rc = rc < 0 ? rc : tz_conflict__sql_error(db, "cannot read a row");
		goto done;
	}
	while ((step = sqlite3_step(j)) == SQLITE_ROW)
		if (++nv <= k->n)
			sqlite3_bind_value(q, (int)nv, sqlite3_column_value(j, 0));
	if (step != SQLITE_DONE) {
		rc = tz_conflict__sql_error(db, "cannot read a key");
		goto done;
	}
	if (nv != k->n)
		goto done;   /* not a key of this table */
	if ((step = sqlite3_step(q)) != SQLITE_ROW && step != SQLITE_DONE) {
		rc = tz_conflict__sql_error(db, "cannot read a row");
		goto done;
	}
	if (step == SQLITE_ROW) {
		tz_value kv[TZ_KEY_MAX_COLUMNS];
		for (size_t i = 0; i < k->n; i++) {
			if ((k->v[i] = sqlite3_value_dup(sqlite3_column_value(q, (int)i))) == NULL) {
				rc = TZ_ENOMEM;
				goto done;
			}
			tz_store_sql_column(q, (int)i, &kv[i]);
		}
		if ((rc = tz_key_encode(&k->enc, kv, k->n)) == TZ_OK) {
			tz_buf_putc(&k->enc, '\0');
			rc = tz_buf_error(&k->enc);
			*found = rc == TZ_OK;
		}
	}
done:
	sqlite3_finalize(j);
	sqlite3_finalize(q);
	tz_buf_release(&sql);
	return rc;
}

/* The table holding both keys: o->table, or the only tracked one that does. */
static int find_pair(sqlite3 *db, const tz_dup_merge_opts *o, char *table, size_t cap, row_key *keep, row_key *drop)
{
	sqlite3_stmt *q = NULL;
	size_t hits = 0;
	int rc = TZ_OK, step;

	if (sqlite3_prepare_v2(db, "SELECT tbl FROM tz_track WHERE ?1 IS NULL OR tbl = ?1 ORDER BY tbl", -1, &q, NULL) !=
	    SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot read tz_track");
	if (o->table)
		sqlite3_bind_text(q, 1, o->table, -1, SQLITE_STATIC);
	while (rc == TZ_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(q, 0);
		row_key a, b;
		bool fa = false, fb = false;
		memset(&a, 0, sizeof(a));
		memset(&b, 0, sizeof(b));
		if ((rc = find_row(db, t, o->keep, &a, &fa)) == TZ_OK && (rc = find_row(db, t, o->drop, &b, &fb)) == TZ_OK &&
		    fa && fb) {
			if (hits++ == 0) {
				snprintf(table, cap, "%s", t);
				*keep = a;
				*drop = b;
				continue;
			}
			rc = tz_error_set(TZ_EINVAL, "both keys are rows of '%s' and of '%s': say which with --table T",
					  table, t);
		}
		key_release(&a);
		key_release(&b);
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_conflict__sql_error(db, "cannot read tz_track");
	sqlite3_finalize(q);
	if (rc == TZ_OK && hits == 0)
		rc = o->table ? tz_error_set(TZ_ENOTFOUND, "table '%s' is not tracked or does not hold both %s and %s",
					     o->table, o->keep, o->drop)
			      : tz_error_set(TZ_ENOTFOUND, "no tracked table holds both %s and %s", o->keep, o->drop);
	return rc;
}

static int exec_bound(sqlite3 *db, const tz_buf *sql, const row_key *a, int abase, const row_key *b, int bbase,
		      const char *what, uint64_t *changes)
{
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK;

	if (sqlite3_prepare_v2(db, (const char *)sql->data, -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, what);
	for (size_t i = 0; a && i < a->n; i++)
		sqlite3_bind_value(q, abase + (int)i, a->v[i]);
	for (size_t i = 0; b && i < b->n; i++)
		sqlite3_bind_value(q, bbase + (int)i, b->v[i]);
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = tz_conflict__sql_error(db, what);
	else if (changes)
		*changes += (uint64_t)sqlite3_changes(db);
	sqlite3_finalize(q);
	return rc;
}

/* The survivor's chosen values (converted by the column's affinity). */
static int set_values(sqlite3 *db, const char *table, const row_key *keep, const tz_dup_merge_opts *o)
{
	int rc = TZ_OK;

	for (size_t i = 0; i < o->nset && rc == TZ_OK; i++) {
		tz_buf sql = TZ_BUF_INIT;
		sqlite3_stmt *q = NULL;
		int has = -1;
		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2", -1, &q, NULL) ==
		    SQLITE_OK) {
			sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
			sqlite3_bind_text(q, 2, o->set[i].col, -1, SQLITE_STATIC);
			if (sqlite3_step(q) == SQLITE_ROW)
				has = sqlite3_column_int(q, 0) > 0;
		}
		if (has < 0) {
			rc = tz_conflict__sql_error(db, "cannot read the table's columns");
			sqlite3_finalize(q);
			return rc;
		}
		sqlite3_finalize(q);
		if (!has)
			return tz_error_set(TZ_EINVAL, "table '%s' has no column '%s'", table, o->set[i].col);
		tz_buf_puts(&sql, "UPDATE ");
		tz_store_sql_ident(&sql, table);
		tz_buf_puts(&sql, " SET ");
		tz_store_sql_ident(&sql, o->set[i].col);
		tz_buf_puts(&sql, o->set[i].text ? " = ?1" : " = NULL");
		put_key_cond(&sql, keep, " WHERE ", 2);
		tz_buf_putc(&sql, '\0');
		if ((rc = tz_buf_error(&sql)) == TZ_OK && sqlite3_prepare_v2(db, (const char *)sql.data, -1, &q, NULL) != SQLITE_OK)
			rc = tz_conflict__sql_error(db, "cannot set the survivor's values");
		if (rc == TZ_OK) {
			if (o->set[i].text)
				sqlite3_bind_text(q, 1, o->set[i].text, -1, SQLITE_STATIC);
			for (size_t k = 0; k < keep->n; k++)
				sqlite3_bind_value(q, 2 + (int)k, keep->v[k]);
			if (sqlite3_step(q) != SQLITE_DONE)
				rc = tz_conflict__sql_error(db, "cannot set the survivor's values");
		}
		sqlite3_finalize(q);
		tz_buf_release(&sql);
	}
	return rc;
}

/* Every declared reference to `table` whose columns are its key, in every
 * tracked table: DROP's key becomes KEEP's. */
static int repoint_all(sqlite3 *db, const char *table, const row_key *keep, const row_key *drop, uint64_t *n)
{
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK, step = SQLITE_DONE;

	if (sqlite3_prepare_v2(db, "SELECT t.tbl, f.id, group_concat(f.\"from\", char(31)) FROM tz_track t,"
				   " pragma_foreign_key_list(t.tbl) f WHERE f.\"table\" = ?1 GROUP BY t.tbl, f.id"
				   " HAVING count(*) = ?2 ORDER BY t.tbl, f.id", -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot read the references");
	sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, (int)keep->n);
	while (rc == TZ_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *child = (const char *)sqlite3_column_text(q, 0);
		const char *from = (const char *)sqlite3_column_text(q, 2);
		row_key fk;
		tz_buf sql = TZ_BUF_INIT;
		memset(&fk, 0, sizeof(fk));
		/* the reference's columns, in key order (SQLite lists them so) */
		for (const char *p = from; p && fk.n < TZ_KEY_MAX_COLUMNS;) {
			const char *e = strchr(p, 31);
			fk.col[fk.n++] = tz_strndup(p, e ? (size_t)(e - p) : strlen(p));
			p = e ? e + 1 : NULL;
		}
		tz_buf_puts(&sql, "UPDATE ");
		tz_store_sql_ident(&sql, child);
		for (size_t i = 0; i < fk.n; i++) {
			tz_buf_puts(&sql, i ? ", " : " SET ");
			tz_store_sql_ident(&sql, fk.col[i] ? fk.col[i] : "");
			tz_buf_printf(&sql, " = ?%zu", i + 1);
		}
		put_key_cond(&sql, &fk, " WHERE ", 1 + (int)fk.n);
		tz_buf_putc(&sql, '\0');
		if ((rc = tz_buf_error(&sql)) == TZ_OK)
			rc = exec_bound(db, &sql, keep, 1, drop, 1 + (int)keep->n, "cannot re-point the references", n);
		tz_buf_release(&sql);
		for (size_t i = 0; i < fk.n; i++)
			tz_free(fk.col[i]);
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_conflict__sql_error(db, "cannot read the references");
	sqlite3_finalize(q);
	return rc;
}

/* Inside one transaction: values, references, the dropped row, its redirect. */
static int merge_rows(sqlite3 *db, const char *table, const row_key *keep, const row_key *drop,
		      const tz_dup_merge_opts *o, tz_dup_merge_result *res)
{
	tz_buf sql = TZ_BUF_INIT;
	sqlite3_stmt *q = NULL;
	int rc;

	if ((rc = set_values(db, table, keep, o)) < 0 || (rc = repoint_all(db, table, keep, drop, &res->repointed)) < 0)
		return rc;
	tz_buf_puts(&sql, "DELETE FROM ");
	tz_store_sql_ident(&sql, table);
	put_key_cond(&sql, drop, " WHERE ", 1);
	tz_buf_putc(&sql, '\0');
	if ((rc = tz_buf_error(&sql)) == TZ_OK)
		rc = exec_bound(db, &sql, drop, 1, NULL, 0, "cannot remove the dropped row", NULL);
	tz_buf_release(&sql);
	if (rc < 0)
		return rc;
	/* KEEP is a live row: a redirect of it left from an earlier merge (the
	 * row came back since) is stale, and with DROP -> KEEP it would loop */
	if (sqlite3_prepare_v2(db, "DELETE FROM tz_redirect WHERE tbl = ?1 AND from_key = ?2", -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot record the redirect");
	sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, (const char *)keep->enc.data, -1, SQLITE_STATIC);
	rc = sqlite3_step(q) == SQLITE_DONE ? TZ_OK : tz_conflict__sql_error(db, "cannot record the redirect");
	sqlite3_finalize(q);
	q = NULL;
	if (rc < 0)
		return rc;
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO tz_redirect(tbl, from_key, to_key) VALUES (?1, ?2, ?3)", -1, &q,
			       NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot record the redirect");
	sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, (const char *)drop->enc.data, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, (const char *)keep->enc.data, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = tz_conflict__sql_error(db, "cannot record the redirect");
	sqlite3_finalize(q);
	return rc;
}

static int close_entries(sqlite3 *db, const char *table, const row_key *keep, const row_key *drop, const char *by,
			 const tz_oid *commit, uint64_t *n)
{
	sqlite3_stmt *q = NULL;
	char hex[41];
	int rc = TZ_OK;

	tz_oid_fmt(hex, commit);
	if (sqlite3_prepare_v2(db, "UPDATE tz_duplicates SET status = 'resolved', resolved_at = ?1, resolved_by = ?2,"
				   " kept = ?3, resolution_commit = ?4 WHERE status = 'open' AND tbl = ?5"
				   " AND (key_a = ?6 OR key_b = ?6)", -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot update the duplicate queue");
	sqlite3_bind_int64(q, 1, (sqlite3_int64)time(NULL));
	sqlite3_bind_text(q, 2, by, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, (const char *)keep->enc.data, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, (const char *)drop->enc.data, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = tz_conflict__sql_error(db, "cannot update the duplicate queue");
	else
		*n = (uint64_t)sqlite3_changes(db);
	sqlite3_finalize(q);
	return rc;
}

/* What the one transaction of a merge needs (tz_store_commit_with). */
typedef struct {
	const tz_dup_merge_opts *o;
	tz_dup_merge_result *res;
	row_key keep, drop;
} merge_ctx;

static int merge_write(void *ctx, tz_store *s)
{
	merge_ctx *m = ctx;
	sqlite3 *db = tz_store_db(s);
	tz_dup_merge_opts o = *m->o;
	int rc;

	/* found again under the store lock, in the commit's transaction */
	key_release(&m->keep);
	key_release(&m->drop);
	o.table = m->res->table;
	m->res->repointed = 0;
	if ((rc = find_pair(db, &o, m->res->table, sizeof(m->res->table), &m->keep, &m->drop)) < 0 ||
	    (rc = merge_rows(db, m->res->table, &m->keep, &m->drop, m->o, m->res)) < 0)
		return rc;
	/* an error SQLite answered by rolling the transaction back must not
	 * leave the statements after it committed on their own */
	if (sqlite3_get_autocommit(db))
		return tz_error_set(TZ_EIO, "the merge's transaction was rolled back");
	return TZ_OK;
}

static int merge_record(void *ctx, tz_store *s, const tz_oid *commit)
{
	merge_ctx *m = ctx;

	m->res->commit = *commit;
	return close_entries(tz_store_db(s), m->res->table, &m->keep, &m->drop, m->o->as ? m->o->as : "HQ", commit,
			     &m->res->resolved);
}

int tz_duplicates_merge(tz_store *s, const tz_dup_merge_opts *o, tz_dup_merge_result *res)
{
	sqlite3 *db = tz_store_db(s);
	merge_ctx m = { o, res, { 0 }, { 0 } };
	tz_commit_hook hook = { merge_write, merge_record, &m };
	tz_commit_result cr;
	char msg[1024];
	int rc;

	memset(res, 0, sizeof(*res));
	if (strcmp(tz_store_code(s), "HQ") != 0)
		return tz_error_set(TZ_EINVAL, "duplicates are merged at HQ");
	if (o->as && (rc = tz_store_admin_check(s, o->as)) < 0)
		return rc;
	/* which table, and the rows' checks, before anything is written */
	if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot read the rows");
	if ((rc = find_pair(db, o, res->table, sizeof(res->table), &m.keep, &m.drop)) == TZ_OK &&
	    strcmp((const char *)m.keep.enc.data, (const char *)m.drop.enc.data) == 0)
		rc = tz_error_set(TZ_EINVAL, "KEEP and DROP are the same row");
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	if (rc < 0)
		goto done;
	/* rows, redirect, commit and the queue's marks: one transaction
	 * (HQ's own pending changes are sealed first, on their own) */
	snprintf(msg, sizeof(msg), "duplicates merge %s: %s into %s", res->table, o->drop, o->keep);
	rc = tz_store_commit_with(s, msg, o->as, true, &hook, &cr);
done:
	key_release(&m.keep);
	key_release(&m.drop);
	return rc;
}

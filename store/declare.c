/*
 * declare.c - the integrity declarations (docs/integrity.md): tz_unique,
 * tz_access and tz_invariant checked by `schema apply`, the refusal of a
 * SQLite UNIQUE constraint on a tracked table, and their installation at
 * a new branch from _schema/.
 */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

static bool has_column(const tz_table *t, const char *col, size_t len)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (strlen(t->cols[i].name) == len && memcmp(t->cols[i].name, col, len) == 0)
			return true;
	return false;
}

/* cols: a comma-separated list of distinct columns of t, at most 8. */
static int check_unique_cols(const tz_table *t, const char *name, const char *cols)
{
	const char *p = cols;
	size_t n = 0;

	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 || !has_column(t, p, len))
			return tz_error_set(TZ_EINVAL, "tz_unique '%s': '%.*s' is not a column of table '%s'", name,
					    (int)len, p, t->name);
		for (const char *q = cols; q < p;) {
			const char *qe = strchr(q, ',');
			if ((size_t)(qe - q) == len && memcmp(q, p, len) == 0)
				return tz_error_set(TZ_EINVAL, "tz_unique '%s': column '%.*s' is named twice", name,
						    (int)len, p);
			q = qe + 1;
		}
		if (++n > TZ_KEY_MAX_COLUMNS)
			return tz_error_set(TZ_EINVAL, "tz_unique '%s': more than %d columns", name, TZ_KEY_MAX_COLUMNS);
		if (end == NULL)
			return TZ_OK;
		p = end + 1;
	}
}

static int validate_unique(tz_store *s, tz_tables *ts)
{
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK, step;

	if ((rc = tz_sql__prepare(s, &q, "SELECT name, tbl, cols, normalize FROM tz_unique ORDER BY name")) < 0)
		return rc;
	while (rc == TZ_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(q, 0), *tbl = (const char *)sqlite3_column_text(q, 1);
		const char *cols = (const char *)sqlite3_column_text(q, 2), *norm = (const char *)sqlite3_column_text(q, 3);
		const tz_table *t = tbl ? tz_schema__by_name(ts, tbl) : NULL;
		if (name == NULL || name[0] == '\0' || strchr(name, '|'))
			rc = tz_error_set(TZ_EINVAL, "tz_unique: a declaration needs a name (without '|')");
		else if (t == NULL)
			rc = tz_error_set(TZ_EINVAL, "tz_unique '%s': table '%s' is not tracked", name, tbl ? tbl : "(null)");
		else if (cols == NULL || strchr(cols, '|'))
			rc = tz_error_set(TZ_EINVAL, "tz_unique '%s': cols is a comma-separated list of columns", name);
		else if (norm != NULL && strcmp(norm, "exact") != 0)
			rc = tz_error_set(TZ_EINVAL, "tz_unique '%s': normalize is NULL (the default) or 'exact', not '%s'",
					  name, norm);
		else
			rc = check_unique_cols(t, name, cols);
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_sql__error(s, step, "cannot read tz_unique");
	sqlite3_finalize(q);
	return rc;
}

static int validate_access(tz_store *s, tz_tables *ts)
{
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK, step;

	if ((rc = tz_sql__prepare(s, &q, "SELECT tbl, col, writer FROM tz_access ORDER BY tbl, col")) < 0)
		return rc;
	while (rc == TZ_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *tbl = (const char *)sqlite3_column_text(q, 0), *col = (const char *)sqlite3_column_text(q, 1);
		const char *w = (const char *)sqlite3_column_text(q, 2);
		const tz_table *t = tbl ? tz_schema__by_name(ts, tbl) : NULL;
		if (t == NULL)
			rc = tz_error_set(TZ_EINVAL, "tz_access: table '%s' is not tracked", tbl ? tbl : "(null)");
		else if (col == NULL || !has_column(t, col, strlen(col)))
			rc = tz_error_set(TZ_EINVAL, "tz_access: table '%s' has no column '%s'", tbl, col ? col : "(null)");
		else if (w == NULL || strcmp(w, "hq") != 0)
			rc = tz_error_set(TZ_EINVAL, "tz_access: the writer of '%s.%s' is 'hq' (the only narrowing), not "
					  "'%s'", tbl, col, w ? w : "(null)");
		else if (t->scope == TZ_SCOPE_HQ)
			rc = tz_error_set(TZ_EINVAL, "tz_access: '%s' is an hq table: only HQ writes it already", tbl);
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_sql__error(s, step, "cannot read tz_access");
	sqlite3_finalize(q);
	return rc;
}

/* An invariant is one read-only query with at least one column; it may
 * name the temporary table tz_touched(tbl, pk) the checks fill. */
static int validate_invariants(tz_store *s)
{
	sqlite3_stmt *q = NULL, *inv = NULL;
	int rc = TZ_OK, step;

	if ((rc = tz_sql__exec(s, "CREATE TEMP TABLE IF NOT EXISTS tz_touched(tbl TEXT NOT NULL, pk,"
				  " PRIMARY KEY (tbl, pk))")) < 0 ||
	    (rc = tz_sql__prepare(s, &q, "SELECT name, sql FROM tz_invariant ORDER BY name")) < 0)
		return rc;
	while (rc == TZ_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(q, 0), *sql = (const char *)sqlite3_column_text(q, 1);
		const char *tail = NULL;
		if (name == NULL || name[0] == '\0' || sql == NULL) {
			rc = tz_error_set(TZ_EINVAL, "tz_invariant: a declaration needs a name and a query");
			break;
		}
		if (sqlite3_prepare_v2(s->db, sql, -1, &inv, &tail) != SQLITE_OK || inv == NULL) {
			rc = tz_error_set(TZ_EINVAL, "tz_invariant '%s': %s", name,
					  inv == NULL && tail ? "not a query" : sqlite3_errmsg(s->db));
		} else if (!sqlite3_stmt_readonly(inv) || sqlite3_column_count(inv) < 1 || tail[strspn(tail, " \t\r\n;")]) {
			rc = tz_error_set(TZ_EINVAL, "tz_invariant '%s': one read-only query returning the violating rows "
					  "(first column a key of the offending row)", name);
		}
		sqlite3_finalize(inv);
		inv = NULL;
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_sql__error(s, step, "cannot read tz_invariant");
	sqlite3_finalize(q);
	return rc;
}

/* DESIGN §11: two branches offline can create the same person, so HQ's
 * merge and a branch's materialisation must never fail on a UNIQUE index:
 * `schema apply` refuses one (other than the primary key) on a tracked
 * table and points to tz_unique, which detects duplicates instead. */
static int refuse_unique_indexes(tz_store *s, tz_tables *ts)
{
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK, step;

	if ((rc = tz_sql__prepare(s, &q, "SELECT name, origin FROM pragma_index_list(?1) WHERE \"unique\" AND origin <> 'pk'")) < 0)
		return rc;
	for (size_t i = 0; i < ts->n && rc == TZ_OK; i++) {
		sqlite3_reset(q);
		sqlite3_bind_text(q, 1, ts->t[i].name, -1, SQLITE_STATIC);
		if ((step = sqlite3_step(q)) == SQLITE_ROW) {
			const char *ix = (const char *)sqlite3_column_text(q, 0), *origin = (const char *)sqlite3_column_text(q, 1);
			rc = tz_error_set(TZ_EINVAL, "table '%s': %s '%s' would make a merge fail when two branches create "
					  "the same key offline; declare it in tz_unique(name, tbl, cols, normalize) instead "
					  "(duplicates are then queued, docs/integrity.md)", ts->t[i].name,
					  origin && strcmp(origin, "u") == 0 ? "the UNIQUE constraint" : "the unique index",
					  ix ? ix : "?");
		} else if (step != SQLITE_DONE) {
			rc = tz_sql__error(s, step, "cannot read the indexes");
		}
	}
	sqlite3_finalize(q);
	return rc;
}

int tz_declare__validate(tz_store *s, tz_tables *ts)
{
	int rc;

	if ((rc = refuse_unique_indexes(s, ts)) < 0 || (rc = validate_unique(s, ts)) < 0 ||
	    (rc = validate_access(s, ts)) < 0)
		return rc;
	return validate_invariants(s);
}

/* _schema/tz_invariant (name -> query) back into tz_invariant. */
static int install_invariants(tz_store *s, const tz_staging *st, const tz_oid *root)
{
	static const char *const path[2] = { "_schema", "tz_invariant" };
	static const size_t plen[2] = { 7, 12 };
	sqlite3_stmt *ins = NULL;
	tz_row *row = NULL;
	tz_oid oid;
	int rc;

	if ((rc = tz_tree__lookup(s, st, &oid, root, path, plen, 2)) < 0 || tz_oid_is_zero(&oid))
		return rc;
	if ((rc = tz_obj__read_row(s, st, &oid, &row)) < 0 ||
	    (rc = tz_sql__prepare(s, &ins, "INSERT INTO tz_invariant(name, sql) VALUES (?1, ?2)")) < 0)
		goto done;
	for (size_t c = 0; c < row->ncols && rc == TZ_OK; c++) {
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, row->cols[c].name, (int)row->cols[c].name_len, SQLITE_STATIC);
		tz_sql__bind_value(ins, 2, &row->cols[c].v);
		if (sqlite3_step(ins) != SQLITE_DONE)
			rc = tz_sql__error(s, sqlite3_errcode(s->db), "cannot install an invariant");
	}
done:
	sqlite3_finalize(ins);
	tz_row_free(row);
	return rc;
}

int tz_declare__install(tz_store *s, const tz_staging *st, const tz_oid *root, tz_tables *ts)
{
	int rc;

	/* value "cols|normalize" (empty: the default) */
	if ((rc = tz_schema__install_pairs(s, st, root, ts, "tz_unique",
					   "INSERT INTO tz_unique(tbl, name, cols, normalize) VALUES (?1, ?2,"
					   " substr(?3, 1, instr(?3, '|') - 1), nullif(substr(?3, instr(?3, '|') + 1), ''))")) < 0 ||
	    (rc = tz_schema__install_pairs(s, st, root, ts, "tz_access",
					   "INSERT INTO tz_access(tbl, col, writer) VALUES (?1, ?2, ?3)")) < 0)
		return rc;
	return install_invariants(s, st, root);
}

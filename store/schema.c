/*
 * schema.c - tracked tables: loading their declarations, validating a
 * schema file, the change-capture triggers, and `schema apply`.
 *
 * Capture (DESIGN §4): AFTER INSERT, UPDATE and DELETE triggers on every
 * tracked table append (seq, tid, op, ts, po, k0..k7) to tz_changes in
 * the writer's own transaction, whoever the writer is (the application,
 * the sqlite3 shell).  `ts` is the wall clock (a Julian day); the commit
 * turns the entries, in seq order, into the replica's hybrid logical
 * clock.  `po` is the owner column's value before the change (owned
 * tables), so a commit finds where the row sat in the head tree without
 * searching partitions.  These never read a table: one B-tree append.
 *
 * Owned tables have two more, for the rows a REPLACE removes without any
 * delete trigger: BEFORE INSERT, and BEFORE UPDATE OF the key columns,
 * log the row that already holds the incoming key (op 4, "replaced", with
 * its owner), at the cost of one index probe per insert and none for
 * updates that leave the key alone.  Ops: 1 insert, 2 update, 3 delete,
 * 4 replaced-or-probed (the row may also survive, for INSERT OR IGNORE).
 */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* SQLite's own clock as a Julian day ('now' is fixed for one statement).
 * Stored raw: the arithmetic to milliseconds is done once per entry by the
 * commit rather than by every write (a double keeps ~50 us here). */
#define TS_EXPR "julianday('now')"

static int col_cmp(const void *a, const void *b)
{
	const tz_col *x = a, *y = b;
	size_t lx = strlen(x->name), ly = strlen(y->name);
	int c = memcmp(x->name, y->name, lx < ly ? lx : ly);

	return c ? c : (lx > ly) - (lx < ly);
}

static void table_release(tz_table *t)
{
	for (size_t i = 0; i < t->ncols; i++)
		tz_free(t->cols[i].name);
	tz_free(t->cols);
	tz_free(t->name);
	tz_free(t->enc);
	tz_free(t->owner_column);
	sqlite3_finalize(t->select_row);
	memset(t, 0, sizeof(*t));
}

void tz_schema__release(tz_tables *ts)
{
	if (ts == NULL)
		return;
	for (size_t i = 0; i < ts->n; i++)
		table_release(&ts->t[i]);
	tz_free(ts->t);
	ts->t = NULL;
	ts->n = 0;
}

static int parse_scope(tz_scope *out, const char *scope, const char *tbl)
{
	if (scope && strcmp(scope, "owned") == 0)
		*out = TZ_SCOPE_OWNED;
	else if (scope && strcmp(scope, "shared") == 0)
		*out = TZ_SCOPE_SHARED;
	else if (scope && strcmp(scope, "hq") == 0)
		*out = TZ_SCOPE_HQ;
	else
		return tz_error_set(TZ_EINVAL, "tz_track: table '%s' has unknown scope '%s' (owned, shared or hq)",
				    tbl, scope ? scope : "NULL");
	return TZ_OK;
}

/* Fill t->cols (sorted) and the key positions from PRAGMA table_info. */
static int load_columns(tz_store *s, tz_table *t)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int pkpos[TZ_KEY_MAX_COLUMNS];
	int rc, step;

	if ((rc = tz_sql__prepare(s, &st, "SELECT name, pk FROM pragma_table_info(?1)")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rc = tz_array_grow(&t->cols, &cap, t->ncols, sizeof(*t->cols))) < 0)
			goto done;
		t->cols[t->ncols].pk = sqlite3_column_int(st, 1);
		t->cols[t->ncols].name = tz_strdup((const char *)sqlite3_column_text(st, 0));
		if (t->cols[t->ncols++].name == NULL) {
			rc = TZ_ENOMEM;
			goto done;
		}
	}
	if (step != SQLITE_DONE) {
		rc = tz_sql__error(s, step, "cannot read the columns");
		goto done;
	}
	if (t->ncols == 0) {
		rc = tz_error_set(TZ_EINVAL, "tz_track: table '%s' does not exist", t->name);
		goto done;
	}
	qsort(t->cols, t->ncols, sizeof(*t->cols), col_cmp);
	t->owner_idx = -1;
	for (size_t i = 0; i < t->ncols; i++) {
		int pk = t->cols[i].pk;
		if (pk > TZ_KEY_MAX_COLUMNS) {
			rc = tz_error_set(TZ_ELIMIT, "tz_track: table '%s' has a primary key of more than %d columns",
					  t->name, TZ_KEY_MAX_COLUMNS);
			goto done;
		}
		if (pk > 0) {
			pkpos[pk - 1] = (int)i;
			t->npk = t->npk > (size_t)pk ? t->npk : (size_t)pk;
		}
		if (t->owner_column && strcmp(t->cols[i].name, t->owner_column) == 0)
			t->owner_idx = (int)i;
	}
	if (t->npk == 0) {
		rc = tz_error_set(TZ_EINVAL, "tz_track: table '%s' has no primary key", t->name);
		goto done;
	}
	memcpy(t->pk_idx, pkpos, t->npk * sizeof(int));
	rc = TZ_OK;
done:
	sqlite3_finalize(st);
	return rc;
}

static int check_table(tz_table *t)
{
	if (t->scope == TZ_SCOPE_OWNED && t->owner_column == NULL)
		return tz_error_set(TZ_EINVAL, "tz_track: owned table '%s' needs an owner_column", t->name);
	if (t->scope != TZ_SCOPE_OWNED && t->owner_column != NULL)
		return tz_error_set(TZ_EINVAL, "tz_track: owner_column is only for owned tables ('%s' is not)",
				    t->name);
	if (t->owner_column && t->owner_idx < 0)
		return tz_error_set(TZ_EINVAL, "tz_track: table '%s' has no column '%s'", t->name,
				    t->owner_column);
	return TZ_OK;
}

/* Read one tz_track row into t (name, scope, owner, tid) and its columns. */
static int load_table(tz_store *s, sqlite3_stmt *st, tz_table *t)
{
	const char *name = (const char *)sqlite3_column_text(st, 0);
	const char *scope = (const char *)sqlite3_column_text(st, 1);
	const char *owner = (const char *)sqlite3_column_text(st, 2);
	tz_value v = { .type = TZ_VTEXT };
	tz_buf enc = TZ_BUF_INIT;
	int rc;

	if (name == NULL || sqlite3_column_type(st, 0) != SQLITE_TEXT)
		return tz_error_set(TZ_EINVAL, "tz_track: tbl must be a table name");
	if ((t->name = tz_strdup(name)) == NULL ||
	    (owner && (t->owner_column = tz_strdup(owner)) == NULL))
		return TZ_ENOMEM;
	t->tid = sqlite3_column_int64(st, 3);
	if (strncmp(name, "tz_", 3) == 0 || strncmp(name, "sqlite_", 7) == 0)
		return tz_error_set(TZ_EINVAL, "tz_track: table '%s' is internal and cannot be tracked", name);
	if (sqlite3_column_int(st, 4) == 0)
		return tz_error_set(TZ_EINVAL, "tz_track: table '%s' does not exist (or is a view or virtual table)",
				    name);
	v.p = (const uint8_t *)name;
	v.n = strlen(name);
	if ((rc = parse_scope(&t->scope, scope, name)) < 0 || (rc = load_columns(s, t)) < 0 ||
	    (rc = check_table(t)) < 0 || (rc = tz_key_encode(&enc, &v, 1)) < 0)
		goto done;
	t->enc = (char *)tz_buf_detach(&enc, &v.n);
	rc = t->enc ? TZ_OK : TZ_ENOMEM;
done:
	tz_buf_release(&enc);
	return rc;
}

int tz_schema__load(tz_store *s, tz_tables *out)
{
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc, step;

	out->n = 0;
	out->t = NULL;
	rc = tz_sql__prepare(s, &st,
		"SELECT t.tbl, t.scope, t.owner_column, coalesce(d.tid, 0),"
		" EXISTS (SELECT 1 FROM sqlite_master m WHERE m.type = 'table' AND m.name = t.tbl"
		"         AND m.sql NOT LIKE 'CREATE VIRTUAL%')"
		" FROM tz_track t LEFT JOIN tz_tid d ON d.tbl = t.tbl ORDER BY t.tbl");
	if (rc < 0)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rc = tz_array_grow(&out->t, &cap, out->n, sizeof(*out->t))) < 0)
			goto done;
		memset(&out->t[out->n], 0, sizeof(tz_table));
		rc = load_table(s, st, &out->t[out->n++]);
		if (rc < 0)
			goto done;
	}
	rc = step == SQLITE_DONE ? TZ_OK : tz_sql__error(s, step, "cannot read tz_track");
done:
	sqlite3_finalize(st);
	if (rc < 0)
		tz_schema__release(out);
	return rc;
}

tz_table *tz_schema__by_tid(tz_tables *ts, int64_t tid)
{
	for (size_t i = 0; i < ts->n; i++)
		if (ts->t[i].tid == tid)
			return &ts->t[i];
	return NULL;
}

tz_table *tz_schema__by_name(tz_tables *ts, const char *name)
{
	for (size_t i = 0; i < ts->n; i++)
		if (strcmp(ts->t[i].name, name) == 0)
			return &ts->t[i];
	return NULL;
}

int tz_schema__partition(tz_buf *out, const tz_table *t, const tz_value *owner)
{
	switch (t->scope) {
	case TZ_SCOPE_SHARED:
		tz_buf_puts(out, "_shared");
		return tz_buf_error(out);
	case TZ_SCOPE_HQ:
		tz_buf_puts(out, "_hq");
		return tz_buf_error(out);
	case TZ_SCOPE_OWNED:
		break;
	}
	return tz_key_encode(out, owner, 1);
}

/* Append a quoted SQL identifier ("a""b"). */
void tz_sql__put_ident(tz_buf *b, const char *name)
{
	tz_buf_putc(b, '"');
	for (const char *p = name; *p; p++) {
		if (*p == '"')
			tz_buf_putc(b, '"');
		tz_buf_putc(b, (uint8_t)*p);
	}
	tz_buf_putc(b, '"');
}

void tz_schema__put_key_cond(tz_buf *b, const tz_table *t, const char *lead, const char *join,
			     const char *lhs, const char *op, const char *rhs)
{
	for (size_t k = 0; k < t->npk; k++) {
		const char *c = t->cols[t->pk_idx[k]].name;
		tz_buf_puts(b, k ? join : lead);
		tz_buf_puts(b, lhs);
		tz_sql__put_ident(b, c);
		tz_buf_puts(b, op);
		if (rhs) {
			tz_buf_puts(b, rhs);
			tz_sql__put_ident(b, c);
		} else {
			tz_buf_printf(b, "?%zu", k + 1);
		}
	}
}

/* "SELECT <columns sorted by name> FROM t", and the key condition. */
static void select_sql(tz_buf *sql, const tz_table *t, bool by_key)
{
	tz_buf_puts(sql, "SELECT ");
	for (size_t i = 0; i < t->ncols; i++) {
		if (i)
			tz_buf_puts(sql, ", ");
		tz_sql__put_ident(sql, t->cols[i].name);
	}
	tz_buf_puts(sql, " FROM ");
	tz_sql__put_ident(sql, t->name);
	if (by_key)
		tz_schema__put_key_cond(sql, t, " WHERE ", " AND ", "", " = ", NULL);
}

int tz_schema__select_row(tz_store *s, tz_table *t, sqlite3_stmt **out)
{
	tz_buf sql = TZ_BUF_INIT;
	int rc;

	*out = t->select_row;
	if (t->select_row) {
		sqlite3_reset(t->select_row);
		sqlite3_clear_bindings(t->select_row);
		return TZ_OK;
	}
	select_sql(&sql, t, true);
	if ((rc = tz_buf_error(&sql)) == TZ_OK && (rc = tz_sql__prepare(s, &t->select_row, (char *)sql.data)) == TZ_OK)
		*out = t->select_row;
	tz_buf_release(&sql);
	return rc;
}

int tz_schema__select_all(tz_store *s, const tz_table *t, sqlite3_stmt **out)
{
	tz_buf sql = TZ_BUF_INIT;
	int rc;

	*out = NULL;
	select_sql(&sql, t, false);
	if ((rc = tz_buf_error(&sql)) == TZ_OK)
		rc = tz_sql__prepare(s, out, (char *)sql.data);
	tz_buf_release(&sql);
	return rc;
}

/* "NEW."a", NEW."b"" for the key columns, with prefix `pre`. */
static void put_key_refs(tz_buf *b, const tz_table *t, const char *pre)
{
	for (size_t k = 0; k < t->npk; k++) {
		tz_buf_printf(b, ", %s.", pre);
		tz_sql__put_ident(b, t->cols[t->pk_idx[k]].name);
	}
}

static void put_key_slots(tz_buf *b, const tz_table *t)
{
	for (size_t k = 0; k < t->npk; k++)
		tz_buf_printf(b, ", k%zu", k);
}

/* The owner before the change, or NULL for unowned tables. */
static void put_owner(tz_buf *b, const tz_table *t)
{
	if (t->owner_column) {
		tz_buf_puts(b, ", OLD.");
		tz_sql__put_ident(b, t->owner_column);
	} else {
		tz_buf_puts(b, ", NULL");
	}
}

/* "WHEN NEW.k1 IS NOT OLD.k1 OR ...": the update changes the key. */
static void put_key_changed(tz_buf *b, const tz_table *t)
{
	tz_schema__put_key_cond(b, t, " WHEN ", " OR ", "NEW.", " IS NOT ", "OLD.");
}

/* "UPDATE OF k1, k2": such a trigger is not even invoked by an UPDATE
 * whose SET list leaves the key alone, so ordinary updates pay nothing. */
static void put_update_of_key(tz_buf *b, const tz_table *t)
{
	tz_buf_puts(b, "UPDATE OF ");
	for (size_t k = 0; k < t->npk; k++) {
		tz_buf_puts(b, k ? ", " : "");
		tz_sql__put_ident(b, t->cols[t->pk_idx[k]].name);
	}
	tz_buf_puts(b, " ON ");
	tz_sql__put_ident(b, t->name);
}

/* The body of the "replaced" triggers: log the row that holds NEW's key. */
static void replaced_row_sql(tz_buf *b, const tz_table *t)
{
	tz_buf_puts(b, " BEGIN INSERT INTO tz_changes(tid, op, ts, po");
	put_key_slots(b, t);
	tz_buf_printf(b, ") SELECT %lld, 4, " TS_EXPR ", o.", (long long)t->tid);
	tz_sql__put_ident(b, t->owner_column);
	put_key_refs(b, t, "o");
	tz_buf_puts(b, " FROM ");
	tz_sql__put_ident(b, t->name);
	tz_buf_puts(b, " AS o");
	tz_schema__put_key_cond(b, t, " WHERE ", " AND ", "o.", " = ", "NEW.");
	tz_buf_puts(b, "; END;\n");
}

/* Owned tables: INSERT OR REPLACE and UPDATE OR REPLACE delete the row
 * they collide with without firing delete triggers, so log that row, with
 * its owner (where the head has it), before the write.  tz_r_N probes on
 * every insert; tz_k_N fires only when an update changes the key. */
static void replace_trigger_sql(tz_buf *b, const tz_table *t)
{
	tz_buf_printf(b, "CREATE TRIGGER \"tz_r_%lld\" BEFORE INSERT ON ", (long long)t->tid);
	tz_sql__put_ident(b, t->name);
	replaced_row_sql(b, t);
	tz_buf_printf(b, "CREATE TRIGGER \"tz_k_%lld\" BEFORE ", (long long)t->tid);
	put_update_of_key(b, t);
	put_key_changed(b, t);
	replaced_row_sql(b, t);
}

/* CREATE TRIGGER statements for one table: tz_i, tz_u, tz_d log the key
 * (op 1 insert, 2 update, 3 delete) with one INSERT each; tz_m logs the
 * old key as deleted when an update changes the key. */
static void trigger_sql(tz_buf *b, const tz_table *t)
{
	static const char *const kind[3] = { "INSERT", "UPDATE", "DELETE" };

	for (int op = 1; op <= 3; op++) {
		tz_buf_printf(b, "CREATE TRIGGER \"tz_%c_%lld\" AFTER %s ON ", "iud"[op - 1],
			      (long long)t->tid, kind[op - 1]);
		tz_sql__put_ident(b, t->name);
		tz_buf_puts(b, " BEGIN INSERT INTO tz_changes(tid, op, ts, po");
		put_key_slots(b, t);
		tz_buf_printf(b, ") VALUES (%lld, %d, " TS_EXPR, (long long)t->tid, op);
		if (op == 1)
			tz_buf_puts(b, ", NULL");
		else
			put_owner(b, t);
		put_key_refs(b, t, op == 3 ? "OLD" : "NEW");
		tz_buf_puts(b, "); END;\n");
	}
	tz_buf_printf(b, "CREATE TRIGGER \"tz_m_%lld\" AFTER ", (long long)t->tid);
	put_update_of_key(b, t);
	put_key_changed(b, t);
	tz_buf_puts(b, " BEGIN INSERT INTO tz_changes(tid, op, ts, po");
	put_key_slots(b, t);
	tz_buf_printf(b, ") VALUES (%lld, 3, " TS_EXPR, (long long)t->tid);
	put_owner(b, t);
	put_key_refs(b, t, "OLD");
	tz_buf_puts(b, "); END;\n");
	if (t->owner_column)
		replace_trigger_sql(b, t);
}

/* Log entries of tables no longer tracked are consumed by nobody: drop them. */
static const char *const drop_untracked_sql =
	"DELETE FROM tz_changes WHERE tid NOT IN"
	" (SELECT d.tid FROM tz_tid d JOIN tz_track t ON t.tbl = d.tbl);";

int tz_schema__capture_triggers(tz_store *s, tz_buf *drop, tz_buf *saved)
{
	sqlite3_stmt *st = NULL;
	int rc, step;

	if ((rc = tz_sql__prepare(s, &st, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
					  " AND name GLOB 'tz_[iudmrk]_[0-9]*' ORDER BY rowid")) < 0)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		tz_buf_puts(drop, "DROP TRIGGER ");
		tz_sql__put_ident(drop, (const char *)sqlite3_column_text(st, 0));
		tz_buf_puts(drop, ";\n");
		if (saved) {
			tz_buf_puts(saved, (const char *)sqlite3_column_text(st, 1));
			tz_buf_puts(saved, ";\n");
		}
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE)
		return tz_sql__error(s, step, "cannot list the change log's triggers");
	return saved ? tz_buf_error(saved) : TZ_OK;
}

/* Drop every capture trigger, then create them for the tracked tables. */
static int install_triggers(tz_store *s, const tz_tables *ts)
{
	tz_buf sql = TZ_BUF_INIT;
	int rc = tz_schema__capture_triggers(s, &sql, NULL);

	for (size_t i = 0; i < ts->n; i++)
		trigger_sql(&sql, &ts->t[i]);
	if (rc == TZ_OK && (rc = tz_buf_error(&sql)) == TZ_OK && sql.len)
		rc = tz_sql__exec(s, (const char *)sql.data);
	tz_buf_release(&sql);
	return rc;
}

/* The first keyword of a statement, past white space and comments. */
static size_t first_word(const char *sql, const char **word)
{
	const char *p = sql;
	size_t n = 0;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f')
			p++;
		if (p[0] == '-' && p[1] == '-') {
			p += strcspn(p, "\n");
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			p = e ? e + 2 : p + strlen(p);
		} else {
			break;
		}
	}
	while ((p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= 'a' && p[n] <= 'z'))
		n++;
	*word = p;
	return n;
}

/* Run the schema file statement by statement.  A statement that ends or
 * starts a transaction would commit part of the file behind our back, so
 * that a later refusal could no longer undo it: refused. */
static int run_file_ex(tz_store *s, const char *sql, const char *origin, bool create_only)
{
	static const char *const banned[] = { "BEGIN", "COMMIT", "END", "ROLLBACK" };
	const char *tail = sql, *word;
	sqlite3_stmt *st = NULL;
	int n = 0, rc = TZ_OK;

	while (rc == TZ_OK && *tail) {
		int step = SQLITE_DONE;
		if (sqlite3_prepare_v2(s->db, tail, -1, &st, &tail) != SQLITE_OK)
			return tz_error_set(TZ_ESQL, "'%s', statement %d: %s", origin, n + 1, sqlite3_errmsg(s->db));
		if (st == NULL)
			break;   /* only white space or comments were left */
		n++;
		size_t len = first_word(sqlite3_sql(st), &word);
		for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]) && rc == TZ_OK; i++)
			if (len == strlen(banned[i]) && strncasecmp(word, banned[i], len) == 0)
				rc = tz_error_set(TZ_EINVAL, "'%s', statement %d: %s: a schema file must not control"
						  " transactions (schema apply runs it in one)", origin, n, banned[i]);
		if (rc == TZ_OK && create_only && !(len == 6 && strncasecmp(word, "CREATE", 6) == 0))
			rc = tz_error_set(TZ_ECORRUPT, "'%s', statement %d: only CREATE statements belong here", origin, n);
		while (rc == TZ_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
			;
		if (rc == TZ_OK && step != SQLITE_DONE)
			rc = tz_error_set(TZ_ESQL, "'%s', statement %d: %s", origin, n, sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		st = NULL;
	}
	return rc;
}

static int run_file(tz_store *s, const char *sql, const char *origin)
{
	return run_file_ex(s, sql, origin, false);
}

static bool is_column(const tz_table *t, const char *name)
{
	for (size_t c = 0; c < t->ncols; c++)
		if (strcmp(t->cols[c].name, name) == 0)
			return true;
	return false;
}

/* tz_group: groups of columns of tracked tables; a column in one group at
 * most (the primary key says so), a group name that is no column's. */
static int validate_groups(tz_store *s, tz_tables *ts)
{
	sqlite3_stmt *q = NULL;
	int rc, step;

	if ((rc = tz_sql__prepare(s, &q, "SELECT tbl, grp, col FROM tz_group ORDER BY tbl, grp, col")) < 0)
		return rc;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *tbl = (const char *)sqlite3_column_text(q, 0), *grp = (const char *)sqlite3_column_text(q, 1),
			   *col = (const char *)sqlite3_column_text(q, 2);
		const tz_table *t = tbl ? tz_schema__by_name(ts, tbl) : NULL;
		if (t == NULL || grp == NULL || col == NULL)
			rc = tz_error_set(TZ_EINVAL, "tz_group: table '%s' is not tracked", tbl ? tbl : "(null)");
		else if (!is_column(t, col))
			rc = tz_error_set(TZ_EINVAL, "tz_group: table '%s' has no column '%s'", tbl, col);
		else if (*grp == '\0' || *grp == '*' || *grp == '@' || is_column(t, grp))
			rc = tz_error_set(TZ_EINVAL, "tz_group: '%s' cannot name a group of table '%s' (empty, '*', "
					  "'@...' or a column's name)", grp, tbl);
		if (rc < 0)
			break;
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_sql__error(s, step, "cannot read tz_group");
	sqlite3_finalize(q);
	return rc;
}

/* tz_policy(tbl, col, policy): col a column, a group, '*' (the table's
 * default) or '@delete'; docs/merge.md. */
static int validate_policies(tz_store *s, tz_tables *ts)
{
	sqlite3_stmt *q = NULL, *g = NULL;
	int rc, step;

	if ((rc = tz_sql__prepare(s, &q, "SELECT tbl, col, policy FROM tz_policy ORDER BY tbl, col")) < 0 ||
	    (rc = tz_sql__prepare(s, &g, "SELECT (SELECT grp FROM tz_group WHERE tbl = ?1 AND col = ?2),"
					 " EXISTS (SELECT 1 FROM tz_group WHERE tbl = ?1 AND grp = ?2)")) < 0)
		goto done;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *tbl = (const char *)sqlite3_column_text(q, 0), *col = (const char *)sqlite3_column_text(q, 1),
			   *pol = (const char *)sqlite3_column_text(q, 2);
		const tz_table *t = tbl ? tz_schema__by_name(ts, tbl) : NULL;
		bool del = col && strcmp(col, "@delete") == 0, group = false;
		if (t == NULL || col == NULL || pol == NULL) {
			rc = tz_error_set(TZ_EINVAL, "tz_policy: table '%s' is not tracked", tbl ? tbl : "(null)");
			break;
		}
		sqlite3_reset(g);
		sqlite3_bind_text(g, 1, tbl, -1, SQLITE_STATIC);
		sqlite3_bind_text(g, 2, col, -1, SQLITE_STATIC);
		if ((step = sqlite3_step(g)) != SQLITE_ROW) {
			rc = tz_sql__error(s, step, "cannot read tz_group");
			break;
		}
		group = sqlite3_column_int(g, 1) != 0;
		if (sqlite3_column_type(g, 0) != SQLITE_NULL)
			rc = tz_error_set(TZ_EINVAL, "tz_policy: column '%s' of table '%s' is in group '%s': declare the "
					  "policy of the group", col, tbl, (const char *)sqlite3_column_text(g, 0));
		else if (!del && strcmp(col, "*") != 0 && !group && !is_column(t, col))
			rc = tz_error_set(TZ_EINVAL, "tz_policy: table '%s' has no column or group '%s' ('*' is the "
					  "table's default, '@delete' its update-versus-delete rule)", tbl, col);
		else if (del && strcmp(pol, "keep") != 0 && strcmp(pol, "delete") != 0 && strcmp(pol, "manual") != 0)
			rc = tz_error_set(TZ_EINVAL, "tz_policy: '@delete' of table '%s' is '%s' (keep, delete or "
					  "manual)", tbl, pol);
		else if (!del && strcmp(pol, "owner") != 0 && strcmp(pol, "hq") != 0 && strcmp(pol, "lww") != 0 &&
			 strcmp(pol, "manual") != 0)
			rc = tz_error_set(TZ_EINVAL, "tz_policy: '%s' of table '%s' is '%s' (owner, hq, lww or manual)",
					  col, tbl, pol);
		else if (!del && strcmp(pol, "owner") == 0 && t->scope != TZ_SCOPE_OWNED)
			rc = tz_error_set(TZ_EINVAL, "tz_policy: '%s' of table '%s' is 'owner', but a %s table's rows "
					  "have no owning branch", col, tbl, t->scope == TZ_SCOPE_HQ ? "hq" : "shared");
		if (rc < 0)
			break;
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_sql__error(s, step, "cannot read tz_policy");
done:
	sqlite3_finalize(q);
	sqlite3_finalize(g);
	return rc;
}

/* Everything of `schema apply` that happens inside the transaction.  The
 * commit that follows sees which tables' DDL differs from the head's and
 * rebuilds those whole (newly tracked tables included). */
static int apply_in_txn(tz_store *s, const char *sql, const char *origin)
{
	tz_tables ts = { 0, NULL };
	int rc;

	if ((rc = run_file(s, sql, origin)) < 0)
		goto done;
	if ((rc = tz_sql__exec(s, "INSERT OR IGNORE INTO tz_tid(tbl) SELECT tbl FROM tz_track")) < 0 ||
	    (rc = tz_schema__load(s, &ts)) < 0 || (rc = tz_sql__exec(s, drop_untracked_sql)) < 0 ||
	    (rc = validate_groups(s, &ts)) < 0 || (rc = validate_policies(s, &ts)) < 0 ||
	    (rc = tz_declare__validate(s, &ts)) < 0)
		goto done;
	rc = install_triggers(s, &ts);
done:
	tz_schema__release(&ts);
	return rc;
}

int tz_store_schema_apply(tz_store *s, const char *sql, const char *origin, tz_commit_result *result)
{
	int rc;

	memset(result, 0, sizeof(*result));
	if ((rc = tz_store__lock(s)) < 0)
		return rc;
	if ((rc = tz_sql__exec(s, "BEGIN IMMEDIATE")) < 0) {
		tz_store__unlock(s);
		return tz_error_wrap(rc, "cannot apply '%s'", origin);
	}
	rc = apply_in_txn(s, sql, origin);
	if (rc == TZ_OK)
		rc = tz_sql__exec(s, "COMMIT");
	if (rc < 0) {
		int keep = tz_error_code();
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", tz_error_last());
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		tz_store__unlock(s);
		tz_error_set(keep, "%s", msg);
		return tz_error_wrap(rc, "schema not applied (nothing changed)");
	}
	/* The declarations are in store.db; the commit records them (and the
	 * rows of newly tracked tables).  Were it to fail here, the next
	 * commit records the same state. */
	if ((rc = tz_store_commit(s, "schema apply", result)) < 0)
		tz_error_wrap(rc, "schema applied to store.db, but not yet committed (run 'syncctl commit')");
	tz_store__unlock(s);
	return rc;
}

int tz_schema__encode_row(const tz_table *t, sqlite3_stmt *q, tz_buf *blob, tz_buf *part, tz_buf *key)
{
	tz_column cols_stack[64];
	tz_column *cols = t->ncols <= 64 ? cols_stack : tz_calloc(t->ncols, sizeof(*cols));
	tz_value kv[TZ_KEY_MAX_COLUMNS];
	int rc = TZ_OK;

	if (cols == NULL)
		return TZ_ENOMEM;
	for (size_t i = 0; i < t->ncols; i++) {
		cols[i].name = t->cols[i].name;
		cols[i].name_len = strlen(t->cols[i].name);
		tz_sql__column_value(q, (int)i, &cols[i].v);
	}
	for (size_t k = 0; k < t->npk; k++)
		kv[k] = cols[t->pk_idx[k]].v;
	if (blob && (rc = tz_row_encode(blob, cols, t->ncols)) < 0)
		goto done;
	if (part && (rc = tz_schema__partition(part, t, t->owner_idx >= 0 ? &cols[t->owner_idx].v : NULL)) < 0)
		goto done;
	if (key)
		rc = tz_key_encode(key, kv, t->npk);
done:
	if (cols != cols_stack)
		tz_free(cols);
	return rc;
}

int tz_schema__ddl(tz_store *s, const tz_table *t, tz_buf *out)
{
	sqlite3_stmt *q = NULL;
	int rc, step;

	/* the table first, then its indexes and triggers (ours excluded) */
	if ((rc = tz_sql__prepare(s, &q, "SELECT sql FROM sqlite_master WHERE tbl_name = ?1 AND sql IS NOT NULL"
					 " AND NOT (type = 'trigger' AND name GLOB 'tz_[iudmrk]_[0-9]*')"
					 " ORDER BY type <> 'table', rowid")) < 0)
		return rc;
	sqlite3_bind_text(q, 1, t->name, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(q)) == SQLITE_ROW)
		tz_buf_printf(out, "%s;\n", (const char *)sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	if (step != SQLITE_DONE)
		return tz_sql__error(s, step, "cannot read the schema");
	return tz_buf_error(out);
}

int tz_schema__head_tables(tz_store *s, const tz_oid *root, tz_tree *out)
{
	tz_tree r = { NULL, 0, NULL }, sch = { NULL, 0, NULL };
	const tz_tree_entry *e;
	int rc = TZ_OK;

	memset(out, 0, sizeof(*out));
	if (tz_oid_is_zero(root))
		return TZ_OK;
	if ((rc = tz_tree__read(s, NULL, root, &r)) < 0)
		return rc;
	if ((e = tz_tree__find(&r, "_schema", 7)) != NULL && e->mode == 040000 &&
	    (rc = tz_tree__read(s, NULL, &e->oid, &sch)) == TZ_OK &&
	    (e = tz_tree__find(&sch, "tables", 6)) != NULL && e->mode == 040000)
		rc = tz_tree__read(s, NULL, &e->oid, out);
	tz_tree__release(&sch);
	tz_tree__release(&r);
	return rc;
}

int tz_schema__ddl_changed(tz_store *s, const tz_table *t, const tz_tree *head_tables, bool *changed)
{
	tz_buf ddl = TZ_BUF_INIT, name = TZ_BUF_INIT;
	const tz_tree_entry *e;
	git_oid oid;
	int rc;

	*changed = true;
	tz_buf_printf(&name, "%s.sql", t->enc);
	if ((rc = tz_schema__ddl(s, t, &ddl)) == TZ_OK && (rc = tz_buf_error(&name)) == TZ_OK) {
		if (git_odb_hash(&oid, ddl.data, ddl.len, GIT_OBJECT_BLOB) < 0)
			rc = tz_git__error("cannot hash the schema");
		else if ((e = tz_tree__find(head_tables, (const char *)name.data, name.len)) != NULL)
			*changed = memcmp(e->oid.id, oid.id, 20) != 0;
	}
	tz_buf_release(&ddl);
	tz_buf_release(&name);
	return rc;
}

/* The subtree `name` of `_schema` in root (empty when absent). */
static int schema_subtree(tz_store *s, const tz_staging *st, const tz_oid *root, const char *name, tz_tree *out)
{
	tz_tree r = { NULL, 0, NULL }, sch = { NULL, 0, NULL };
	const tz_tree_entry *e;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = tz_tree__read(s, st, root, &r)) < 0)
		return rc;
	if ((e = tz_tree__find(&r, "_schema", 7)) != NULL && e->mode == 040000 &&
	    (rc = tz_tree__read(s, st, &e->oid, &sch)) == TZ_OK &&
	    (e = tz_tree__find(&sch, name, strlen(name))) != NULL && e->mode == 040000)
		rc = tz_tree__read(s, st, &e->oid, out);
	tz_tree__release(&sch);
	tz_tree__release(&r);
	return rc;
}

/* _schema/<dir>/<table> back into its declaration table: each column of
 * the row is one (tbl, name, value) of `insert_sql`. */
int tz_schema__install_pairs(tz_store *s, const tz_staging *st, const tz_oid *root, tz_tables *ts, const char *dir,
			     const char *insert_sql)
{
	tz_tree tr = { NULL, 0, NULL };
	sqlite3_stmt *ins = NULL;
	int rc;

	if ((rc = schema_subtree(s, st, root, dir, &tr)) < 0 || tr.n == 0 ||
	    (rc = tz_sql__prepare(s, &ins, insert_sql)) < 0)
		goto done;
	for (size_t i = 0; i < tr.n && rc == TZ_OK; i++) {
		const tz_table *t = NULL;
		tz_row *row = NULL;
		for (size_t k = 0; k < ts->n && t == NULL; k++)
			if (strlen(ts->t[k].enc) == tr.e[i].name_len && memcmp(ts->t[k].enc, tr.e[i].name, tr.e[i].name_len) == 0)
				t = &ts->t[k];
		if (t == NULL || tr.e[i].mode != 0100644) {
			rc = tz_error_set(TZ_ECORRUPT, "_schema/%s/%.*s is not a tracked table's", dir, (int)tr.e[i].name_len,
					  tr.e[i].name);
			break;
		}
		if ((rc = tz_obj__read_row(s, st, &tr.e[i].oid, &row)) == TZ_OK)
			for (size_t c = 0; c < row->ncols && rc == TZ_OK; c++) {
				sqlite3_reset(ins);
				sqlite3_bind_text(ins, 1, t->name, -1, SQLITE_STATIC);
				sqlite3_bind_text(ins, 2, row->cols[c].name, (int)row->cols[c].name_len, SQLITE_STATIC);
				tz_sql__bind_value(ins, 3, &row->cols[c].v);
				if (sqlite3_step(ins) != SQLITE_DONE)
					rc = tz_sql__error(s, sqlite3_errcode(s->db), "cannot install a merge declaration");
			}
		tz_row_free(row);
	}
done:
	sqlite3_finalize(ins);
	tz_tree__release(&tr);
	return rc;
}

int tz_schema__install_from_tree(tz_store *s, const tz_staging *st, const tz_oid *root)
{
	tz_tree tables = { NULL, 0, NULL }, track = { NULL, 0, NULL };
	tz_tables ts = { 0, NULL };
	sqlite3_stmt *ins = NULL;
	int rc;

	if ((rc = schema_subtree(s, st, root, "tables", &tables)) < 0 ||
	    (rc = schema_subtree(s, st, root, "tz_track", &track)) < 0)
		goto done;
	for (size_t i = 0; i < tables.n && rc == TZ_OK; i++) {
		git_object_t type;
		uint8_t *ddl = NULL;
		size_t len;
		if (tables.e[i].mode != 0100644) {
			rc = tz_error_set(TZ_ECORRUPT, "_schema/tables holds something that is not a file");
			break;
		}
		if ((rc = tz_obj__read(s, st, &tables.e[i].oid, &type, &ddl, &len)) < 0)
			break;
		char *text = tz_strndup((const char *)ddl, len);
		tz_free(ddl);
		if (text == NULL) {
			rc = TZ_ENOMEM;
			break;
		}
		/* the snapshot's DDL: CREATE TABLE, INDEX, TRIGGER, nothing else */
		if ((rc = run_file_ex(s, text, "the enrolment schema", true)) < 0)
			tz_error_wrap(rc, "table '%.*s'", (int)tables.e[i].name_len, tables.e[i].name);
		tz_free(text);
	}
	if (rc < 0 || (rc = tz_sql__prepare(s, &ins, "INSERT INTO tz_track(tbl, scope, owner_column) VALUES (?1, ?2, ?3)")) < 0)
		goto done;
	for (size_t i = 0; i < track.n && rc == TZ_OK; i++) {
		static const char *const names[3] = { "tbl", "scope", "owner_column" };
		git_object_t type;
		uint8_t *blob = NULL;
		size_t len;
		tz_row *row = NULL;
		if ((rc = tz_obj__read(s, st, &track.e[i].oid, &type, &blob, &len)) == TZ_OK &&
		    (rc = tz_row_decode(&row, blob, len)) == TZ_OK) {
			sqlite3_reset(ins);
			for (int c = 0; c < 3; c++) {
				const tz_column *col = tz_row_find(row, names[c], strlen(names[c]));
				if (col == NULL) {
					rc = tz_error_set(TZ_ECORRUPT, "_schema/tz_track/%.*s has no '%s'",
							  (int)track.e[i].name_len, track.e[i].name, names[c]);
					break;
				}
				tz_sql__bind_value(ins, c + 1, &col->v);
			}
			if (rc == TZ_OK && sqlite3_step(ins) != SQLITE_DONE)
				rc = tz_sql__error(s, sqlite3_errcode(s->db), "cannot declare a tracked table");
		}
		tz_row_free(row);
		tz_free(blob);
	}
	if (rc < 0)
		goto done;
	if ((rc = tz_sql__exec(s, "INSERT OR IGNORE INTO tz_tid(tbl) SELECT tbl FROM tz_track")) < 0 ||
	    (rc = tz_schema__load(s, &ts)) < 0 ||
	    (rc = tz_schema__install_pairs(s, st, root, &ts, "tz_group", "INSERT INTO tz_group(tbl, col, grp) VALUES (?1, ?2, ?3)")) < 0 ||
	    (rc = tz_schema__install_pairs(s, st, root, &ts, "tz_policy",
				"INSERT INTO tz_policy(tbl, col, policy) VALUES (?1, ?2, ?3)")) < 0 ||
	    (rc = tz_declare__install(s, st, root, &ts)) < 0)
		goto done;
	rc = install_triggers(s, &ts);
done:
	sqlite3_finalize(ins);
	tz_schema__release(&ts);
	tz_tree__release(&tables);
	tz_tree__release(&track);
	return rc;
}

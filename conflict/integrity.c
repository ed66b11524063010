/*
 * integrity.c - what HQ checks after each merge, inside the import's
 * transaction (docs/integrity.md): changes outside the branch's rights
 * queued as `unauthorized`, references to merged rows re-pointed,
 * dangling references queued as `orphan`, tz_invariant queries queued as
 * `invariant`, and duplicate unique keys queued in tz_duplicates.  Every
 * check costs what the merge touched: the rows main's root differs by,
 * each looked up by an index.
 */
#include "conflict/conflict_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One row the merge touched. */
typedef struct {
	char *table, *part, *key;    /* part: the partition as the path has it */
	bool present;                /* false: deleted by the merge */
	size_t tab;                  /* its table in check_ctx.tabs */
	tz_row *row;                 /* read when a check needs it */
} touched;

/* A declared reference (REFERENCES clause) of a table. */
typedef struct {
	char *parent;
	size_t n;
	char *from[TZ_KEY_MAX_COLUMNS], *to[TZ_KEY_MAX_COLUMNS];
} fk;

/* A table the merge touched, with its references (read once). */
typedef struct {
	char *name;
	fk *f;
	size_t nf;
} tab_refs;

typedef struct {
	tz_store *s;
	sqlite3 *db;
	const tz_merge_done *d;
	tz_merge_summary *sum;
	touched *t;
	size_t nt, capt;
	tab_refs *tabs;
	size_t ntabs, captabs;
	bool any_redirect;           /* tz_redirect holds rows: the keys are looked up */
	tz_pending *p;
	size_t np, capp;
} check_ctx;

static int fks_of(sqlite3 *db, const char *table, fk **out, size_t *n);

/* ---- normalisation ---- */

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

void tz_unique_normalize(const tz_value *v, bool exact, tz_buf *out)
{
	char num[32];
	const uint8_t *p;
	size_t n;

	if (v->type == TZ_VINT) {
		snprintf(num, sizeof(num), "%lld", (long long)v->i);
		p = (const uint8_t *)num;
		n = strlen(num);
	} else if (v->type == TZ_VREAL) {
		snprintf(num, sizeof(num), "%.17g", v->r);
		p = (const uint8_t *)num;
		n = strlen(num);
	} else {
		p = v->p;
		n = v->n;
	}
	if (exact) {
		tz_buf_put(out, p, n);
		return;
	}
	/* spaces anywhere go (trim and inner spaces alike) */
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (is_space(c))
			continue;
		if (c >= 'a' && c <= 'z') {
			tz_buf_putc(out, (char)(c - 'a' + 'A'));
		} else if (i + 1 < n && c == 0xD9 && p[i + 1] >= 0xA0 && p[i + 1] <= 0xA9) {
			tz_buf_putc(out, (char)('0' + p[i + 1] - 0xA0));   /* U+0660-0669 */
			i++;
		} else if (i + 1 < n && c == 0xDB && p[i + 1] >= 0xB0 && p[i + 1] <= 0xB9) {
			tz_buf_putc(out, (char)('0' + p[i + 1] - 0xB0));   /* U+06F0-06F9 */
			i++;
		} else {
			tz_buf_putc(out, (char)c);
		}
	}
}

/* ---- the rows the merge touched ---- */

static int decode_name(const char *enc, tz_buf *out)
{
	tz_value v[1];
	uint8_t *arena = NULL;
	size_t n;
	int rc;

	if ((rc = tz_key_decode(v, 1, &n, &arena, enc, strlen(enc))) < 0)
		return rc;
	if (n == 1 && v[0].type == TZ_VTEXT)
		tz_buf_put(out, v[0].p, v[0].n);
	else
		tz_buf_puts(out, enc);
	tz_free(arena);
	return tz_buf_error(out);
}

static int encode_name(const char *name, tz_buf *out)
{
	tz_value v = { TZ_VTEXT, 0, 0, (const uint8_t *)name, strlen(name) };

	return tz_key_encode(out, &v, 1);
}

static int collect(const tz_touched_row *r, void *payload)
{
	check_ctx *x = payload;
	touched *t;
	int rc;

	if (tz_array_grow(&x->t, &x->capt, x->nt, sizeof(*x->t)) < 0)
		return TZ_ENOMEM;
	t = &x->t[x->nt++];
	memset(t, 0, sizeof(*t));
	t->table = tz_strdup(r->table);
	t->part = tz_strdup(r->partition_enc);
	t->key = tz_strdup(r->key);
	t->present = r->present;
	if (!t->table || !t->part || !t->key)
		return TZ_ENOMEM;
	for (t->tab = 0; t->tab < x->ntabs && strcmp(x->tabs[t->tab].name, r->table) != 0; t->tab++)
		;
	if (t->tab == x->ntabs) {
		tab_refs *tr;
		if (tz_array_grow(&x->tabs, &x->captabs, x->ntabs, sizeof(*x->tabs)) < 0)
			return TZ_ENOMEM;
		tr = &x->tabs[x->ntabs++];
		memset(tr, 0, sizeof(*tr));
		if ((tr->name = tz_strdup(r->table)) == NULL)
			return TZ_ENOMEM;
		if ((rc = fks_of(x->db, r->table, &tr->f, &tr->nf)) < 0)
			return rc;
	}
	/* the row itself only when a check reads it: references, redirects */
	if (r->present && (x->tabs[t->tab].nf > 0 || x->any_redirect) &&
	    (rc = tz_store_read_row(x->s, r->blob, &t->row)) < 0)
		return rc;
	return TZ_OK;
}

static void put_json_value(tz_buf *b, const tz_value *v)
{
	if (v->type == TZ_VINT) {
		tz_buf_printf(b, "%lld", (long long)v->i);
	} else if (v->type == TZ_VREAL) {
		tz_buf_printf(b, "%.17g", v->r);
	} else if (v->type == TZ_VNULL) {
		tz_buf_puts(b, "null");
	} else {
		tz_buf_putc(b, '"');
		for (size_t i = 0; i < v->n; i++) {
			uint8_t c = v->p[i];
			if (c == '"' || c == '\\')
				tz_buf_printf(b, "\\%c", c);
			else if (c < 0x20 || c == 0x7f)
				tz_buf_printf(b, "\\u%04x", c);
			else
				tz_buf_putc(b, (char)c);
		}
		tz_buf_putc(b, '"');
	}
}

/* tz_touched(tbl, pk): pk the key's value, or a JSON array of its values
 * for a composite key (docs/integrity.md). */
static int fill_touched(check_ctx *x)
{
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK;

	if (sqlite3_exec(x->db, "CREATE TEMP TABLE IF NOT EXISTS tz_touched(tbl TEXT NOT NULL, pk, PRIMARY KEY (tbl, pk));"
			 "DELETE FROM temp.tz_touched", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(x->db, "INSERT OR IGNORE INTO temp.tz_touched(tbl, pk) VALUES (?1, ?2)", -1, &q, NULL) !=
		    SQLITE_OK)
		return tz_conflict__sql_error(x->db, "cannot fill tz_touched");
	for (size_t i = 0; i < x->nt && rc == TZ_OK; i++) {
		tz_value kv[TZ_KEY_MAX_COLUMNS];
		uint8_t *arena = NULL;
		size_t nk;
		tz_buf json = TZ_BUF_INIT;
		if (!x->t[i].present)
			continue;
		if ((rc = tz_key_decode(kv, TZ_KEY_MAX_COLUMNS, &nk, &arena, x->t[i].key, strlen(x->t[i].key))) < 0)
			break;
		sqlite3_reset(q);
		sqlite3_bind_text(q, 1, x->t[i].table, -1, SQLITE_STATIC);
		if (nk == 1) {
			tz_store_sql_bind(q, 2, &kv[0]);
		} else {
			tz_buf_putc(&json, '[');
			for (size_t k = 0; k < nk; k++) {
				if (k)
					tz_buf_putc(&json, ',');
				put_json_value(&json, &kv[k]);
			}
			tz_buf_putc(&json, ']');
			sqlite3_bind_text(q, 2, (const char *)json.data, (int)json.len, SQLITE_STATIC);
		}
		if ((rc = tz_buf_error(&json)) == TZ_OK && sqlite3_step(q) != SQLITE_DONE)
			rc = tz_conflict__sql_error(x->db, "cannot fill tz_touched");
		tz_buf_release(&json);
		tz_free(arena);
	}
	sqlite3_finalize(q);
	return rc;
}

/* ---- queue entries ---- */

static int is_open(check_ctx *x, const char *kind, const char *table, const char *key, bool *open)
{
	sqlite3_stmt *q = NULL;
	int step;

	*open = false;
	for (size_t i = 0; i < x->np; i++)
		if (strcmp(tz_conflict_kind_name(x->p[i].kind), kind) == 0 && strcmp(x->p[i].table, table) == 0 &&
		    strcmp(x->p[i].key, key) == 0)
			*open = true;
	if (*open)
		return TZ_OK;
	if (sqlite3_prepare_v2(x->db, "SELECT 1 FROM tz_conflicts WHERE status = 'open' AND kind = ?1 AND tbl = ?2"
				      " AND key = ?3", -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(x->db, "cannot read the conflict queue");
	sqlite3_bind_text(q, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, key, -1, SQLITE_STATIC);
	step = sqlite3_step(q);
	sqlite3_finalize(q);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return tz_conflict__sql_error(x->db, "cannot read the conflict queue");
	*open = step == SQLITE_ROW;
	return TZ_OK;
}

/* Queue one entry (unless the same kind of entry for the row is open):
 * `cols` the column names it concerns, `ours`/`theirs` rows or NULL. */
static int keep(check_ctx *x, tz_conflict_kind kind, const char *table, const char *part, const char *key,
		const char *const *cols, size_t ncols, const tz_row *ours, const tz_row *theirs, const char *policy,
		const char *note)
{
	tz_pending *p;
	tz_column c[TZ_ROW_MAX_COLUMNS > 64 ? 64 : TZ_ROW_MAX_COLUMNS];
	bool open;
	int rc;

	if ((rc = is_open(x, tz_conflict_kind_name(kind), table, key, &open)) < 0 || open)
		return rc;
	if (tz_array_grow(&x->p, &x->capp, x->np, sizeof(*x->p)) < 0)
		return TZ_ENOMEM;
	p = &x->p[x->np++];
	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->table = tz_strdup(table);
	p->partition = tz_strdup(part);
	p->key = tz_strdup(key);
	p->policy = tz_strdup(policy);
	p->note = note ? tz_strdup(note) : NULL;
	if (!p->table || !p->partition || !p->key || !p->policy || (note && !p->note))
		return TZ_ENOMEM;
	if (ncols > 64)
		ncols = 64;
	for (size_t i = 0; i < ncols; i++)
		c[i] = (tz_column){ cols[i], strlen(cols[i]), { TZ_VNULL, 0, 0, NULL, 0 } };
	tz_row_encode(&p->cols, c, ncols);
	if ((p->has_ours = ours != NULL))
		tz_row_encode(&p->ours, ours->cols, ours->ncols);
	if ((p->has_theirs = theirs != NULL))
		tz_row_encode(&p->theirs, theirs->cols, theirs->ncols);
	if ((p->has_provisional = ours != NULL))
		tz_row_encode(&p->provisional, ours->cols, ours->ncols);
	if ((rc = tz_buf_error(&p->cols)) < 0 || (rc = tz_buf_error(&p->ours)) < 0 || (rc = tz_buf_error(&p->theirs)) < 0 ||
	    (rc = tz_buf_error(&p->provisional)) < 0)
		return rc;
	x->sum->queued[kind]++;
	return TZ_OK;
}

/* ---- unauthorized: the refusals of the import [P9] ---- */

static int row_by_key(check_ctx *x, const char *table, const char *key, tz_row **out);

/* The columns two rows differ in (all of the present one when one is
 * absent), copied into out. */
static size_t differing(const tz_row *a, const tz_row *b, char **out, size_t max)
{
	const tz_row *r = a ? a : b;
	size_t n = 0;

	for (size_t i = 0; r && i < r->ncols && n < max; i++) {
		const tz_column *o = a && b ? tz_row_find(a == r ? b : a, r->cols[i].name, r->cols[i].name_len) : NULL;
		tz_buf x1 = TZ_BUF_INIT, x2 = TZ_BUF_INIT;
		bool same = false;
		if (o) {
			tz_row_encode(&x1, &r->cols[i], 1);
			tz_row_encode(&x2, o, 1);
			same = x1.len == x2.len && (x1.len == 0 || memcmp(x1.data, x2.data, x1.len) == 0);
		}
		tz_buf_release(&x1);
		tz_buf_release(&x2);
		if (!same && (out[n] = tz_strndup(r->cols[i].name, r->cols[i].name_len)) != NULL)
			n++;
	}
	return n;
}

/* Does `key` decode as a key (what the queue's listing needs)? */
static bool key_ok(const char *key)
{
	tz_value kv[TZ_KEY_MAX_COLUMNS];
	uint8_t *arena = NULL;
	size_t n;
	bool ok = key[0] && tz_key_decode(kv, TZ_KEY_MAX_COLUMNS, &n, &arena, key, strlen(key)) == TZ_OK;

	if (!ok)
		tz_error_clear();
	tz_free(arena);
	return ok;
}

static int unauthorized_one(check_ctx *x, const tz_refused *f, const tz_oid *theirs_root)
{
	tz_buf table = TZ_BUF_INIT, key = TZ_BUF_INIT;
	tz_row *ours = NULL, *theirs = NULL, *base = NULL;
	char *names[64];
	char note[256];
	size_t nc = 0;
	int rc;

	if (f->table[0] == '_') {
		/* a _schema path: not a row; named whole */
		tz_buf_puts(&table, f->table);
		rc = encode_name(f->key, &key);
	} else if (!key_ok(f->key)) {
		/* not a row's path (a forged bundle): named whole */
		if ((rc = decode_name(f->table, &table)) == TZ_OK)
			rc = encode_name(f->key, &key);
	} else if ((rc = decode_name(f->table, &table)) == TZ_OK && (rc = tz_buf_error(&table)) == TZ_OK) {
		tz_buf_puts(&key, f->key);
		tz_buf_putc(&table, '\0');
		/* HQ's row: at the path, or where it moved to */
		if ((rc = tz_store_row_at(x->s, x->d->to_root, f->table, f->partition, f->key, &ours)) == TZ_OK &&
		    ours == NULL && (rc = tz_buf_error(&table)) == TZ_OK)
			rc = row_by_key(x, (const char *)table.data, f->key, &ours);
		table.len--;
		if (rc == TZ_OK && (rc = tz_store_row_at(x->s, theirs_root, f->table, f->partition, f->key, &theirs)) == TZ_OK &&
		    f->has_base && (rc = tz_store_read_row(x->s, &f->base, &base)) == TZ_OK)
			nc = differing(base, theirs, names, 64);   /* what the branch changed */
		else if (rc == TZ_OK)
			nc = differing(ours, theirs, names, 64);
	}
	tz_buf_putc(&table, '\0');
	tz_buf_putc(&key, '\0');
	if (rc == TZ_OK && (rc = tz_buf_error(&table)) == TZ_OK && (rc = tz_buf_error(&key)) == TZ_OK) {
		snprintf(note, sizeof(note), "not applied: %s", f->why);
		rc = keep(x, TZ_KIND_UNAUTHORIZED, (const char *)table.data, f->partition, (const char *)key.data,
			  (const char *const *)names, nc, ours, theirs, "rights", note);
	}
	for (size_t i = 0; i < nc; i++)
		tz_free(names[i]);
	tz_row_free(base);
	tz_row_free(ours);
	tz_row_free(theirs);
	tz_buf_release(&table);
	tz_buf_release(&key);
	return rc;
}

static int check_unauthorized(check_ctx *x)
{
	tz_oid theirs_root;
	int rc;

	if (x->d->nrefused == 0)
		return TZ_OK;
	if ((rc = tz_store_root_of(x->s, x->d->theirs_commit, &theirs_root)) < 0)
		return rc;
	for (size_t i = 0; i < x->d->nrefused && rc == TZ_OK; i++)
		rc = unauthorized_one(x, &x->d->refused[i], &theirs_root);
	return rc;
}

/* ---- references ---- */

static void fks_free(fk *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		tz_free(f[i].parent);
		for (size_t k = 0; k < f[i].n; k++) {
			tz_free(f[i].from[k]);
			tz_free(f[i].to[k]);
		}
	}
	tz_free(f);
}

int tz_integrity__pk_names(sqlite3 *db, const char *table, char **out, size_t *n)
{
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK, step = SQLITE_DONE;

	*n = 0;
	if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk", -1, &q, NULL) !=
	    SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot read a table's key");
	sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
	while (rc == TZ_OK && (step = sqlite3_step(q)) == SQLITE_ROW && *n < TZ_KEY_MAX_COLUMNS)
		if ((out[(*n)++] = tz_strdup((const char *)sqlite3_column_text(q, 0))) == NULL)
			rc = TZ_ENOMEM;
	if (rc == TZ_OK && step != SQLITE_ROW && step != SQLITE_DONE)
		rc = tz_conflict__sql_error(db, "cannot read a table's key");
	sqlite3_finalize(q);
	return rc;
}

static int fks_of(sqlite3 *db, const char *table, fk **out, size_t *n)
{
	sqlite3_stmt *q = NULL;
	size_t cap = 0;
	int64_t id = -1;
	int rc = TZ_OK, step = SQLITE_DONE;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(db, "SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
			       -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(db, "cannot read the references");
	sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
	while (rc == TZ_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
		fk *f;
		const char *to = (const char *)sqlite3_column_text(q, 3);
		if (sqlite3_column_int64(q, 0) != id) {
			if (tz_array_grow(out, &cap, *n, sizeof(**out)) < 0) {
				rc = TZ_ENOMEM;
				break;
			}
			f = &(*out)[(*n)++];
			memset(f, 0, sizeof(*f));
			id = sqlite3_column_int64(q, 0);
			if ((f->parent = tz_strdup((const char *)sqlite3_column_text(q, 1))) == NULL)
				rc = TZ_ENOMEM;
		}
		f = &(*out)[*n - 1];
		if (rc < 0 || f->n == TZ_KEY_MAX_COLUMNS)
			continue;
		f->from[f->n] = tz_strdup((const char *)sqlite3_column_text(q, 2));
		f->to[f->n] = to ? tz_strdup(to) : NULL;
		f->n++;
		if (f->from[f->n - 1] == NULL)
			rc = TZ_ENOMEM;
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_conflict__sql_error(db, "cannot read the references");
	sqlite3_finalize(q);
	/* "to" left out: the parent's primary key */
	for (size_t i = 0; rc == TZ_OK && i < *n; i++)
		if ((*out)[i].to[0] == NULL) {
			char *pk[TZ_KEY_MAX_COLUMNS];
			size_t npk;
			if ((rc = tz_integrity__pk_names(db, (*out)[i].parent, pk, &npk)) < 0)
				break;
			for (size_t k = 0; k < npk; k++) {
				if (k < (*out)[i].n && (*out)[i].to[k] == NULL)
					(*out)[i].to[k] = pk[k];
				else
					tz_free(pk[k]);
			}
		}
	return rc;
}

/* WHERE "c1" = ?base AND ... over names. */
static void put_cond(tz_buf *b, char *const *names, size_t n, int base)
{
	for (size_t k = 0; k < n; k++) {
		tz_buf_puts(b, k ? " AND " : " WHERE ");
		tz_store_sql_ident(b, names[k]);
		tz_buf_printf(b, " = ?%d", base + (int)k);
	}
}

/* Bind a value, copying text and blobs (they die before the statement). */
static void bind_copy(sqlite3_stmt *q, int i, const tz_value *v)
{
	if (v->type == TZ_VTEXT)
		sqlite3_bind_text(q, i, v->n ? (const char *)v->p : "", (int)v->n, SQLITE_TRANSIENT);
	else if (v->type == TZ_VBLOB)
		sqlite3_bind_blob(q, i, v->n ? (const void *)v->p : "", (int)v->n, SQLITE_TRANSIENT);
	else
		tz_store_sql_bind(q, i, v);
}

/* Prepare `head` (the SQL up to its WHERE) with the key condition of
 * `table` for encoded key `key`: `lead`, when given, bound as ?1 and the
 * key's values after it.  A key that does not fit the table: *q NULL. */
static int prepare_by_key(check_ctx *x, const tz_buf *head, const char *table, const char *key, const tz_value *lead,
			  sqlite3_stmt **q)
{
	char *pk[TZ_KEY_MAX_COLUMNS];
	size_t npk = 0, nk;
	tz_value kv[TZ_KEY_MAX_COLUMNS];
	uint8_t *arena = NULL;
	tz_buf sql = TZ_BUF_INIT;
	int rc, base = lead ? 2 : 1;

	*q = NULL;
	if ((rc = tz_integrity__pk_names(x->db, table, pk, &npk)) < 0 ||
	    (rc = tz_key_decode(kv, TZ_KEY_MAX_COLUMNS, &nk, &arena, key, strlen(key))) < 0)
		goto done;
	tz_buf_put(&sql, head->data, head->len);
	put_cond(&sql, pk, npk, base);
	tz_buf_putc(&sql, '\0');
	if ((rc = tz_buf_error(&sql)) < 0 || nk != npk || npk == 0)
		goto done;
	if (sqlite3_prepare_v2(x->db, (const char *)sql.data, -1, q, NULL) != SQLITE_OK) {
		rc = tz_conflict__sql_error(x->db, "cannot prepare a statement by key");
		goto done;
	}
	if (lead)
		bind_copy(*q, 1, lead);
	for (size_t k = 0; k < nk; k++)
		bind_copy(*q, base + (int)k, &kv[k]);
done:
	for (size_t k = 0; k < npk; k++)
		tz_free(pk[k]);
	tz_free(arena);
	tz_buf_release(&sql);
	return rc;
}

/* Run `head` by key once (DELETE or UPDATE); *changed when a row was hit. */
static int exec_by_key(check_ctx *x, const tz_buf *head, const char *table, const char *key, const tz_value *lead,
		       const char *what, bool *changed)
{
	sqlite3_stmt *q = NULL;
	int rc;

	*changed = false;
	if ((rc = prepare_by_key(x, head, table, key, lead, &q)) < 0 || q == NULL)
		return rc;
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = tz_conflict__sql_error(x->db, what);
	else
		*changed = sqlite3_changes(x->db) > 0;
	sqlite3_finalize(q);
	return rc;
}

/* A touched row whose own key was merged into another (a branch's change
 * to a dropped duplicate): it is not brought back, and its change is
 * queued (docs/integrity.md). */
static int drop_recreated(check_ctx *x, touched *t, const char *target)
{
	tz_buf head = TZ_BUF_INIT;
	char note[300];
	bool gone;
	int rc;

	tz_buf_puts(&head, "DELETE FROM ");
	tz_store_sql_ident(&head, t->table);
	if ((rc = tz_buf_error(&head)) < 0 ||
	    (rc = exec_by_key(x, &head, t->table, t->key, NULL, "cannot remove a merged row", &gone)) < 0)
		goto done;
	snprintf(note, sizeof(note), "merged into %.200s: the branch's change to it is kept here, not applied", target);
	rc = keep(x, TZ_KIND_UNAUTHORIZED, t->table, t->part, t->key, NULL, 0, NULL, t->row, "redirect", note);
	t->present = false;   /* no longer there: no reference or invariant check */
done:
	tz_buf_release(&head);
	return rc;
}

/* A one-column reference to a merged row: re-pointed to the row it was
 * merged into (chains followed), as an HQ change of this transaction. */
static int repoint(check_ctx *x, touched *t, const fk *f, const tz_value *v, bool *done)
{
	char *target = NULL;
	size_t ntk;
	tz_value tv[1];
	uint8_t *tarena = NULL;
	tz_buf enc = TZ_BUF_INIT, head = TZ_BUF_INIT;
	int rc;

	*done = false;
	if ((rc = tz_key_encode(&enc, v, 1)) < 0)
		goto out;
	tz_buf_putc(&enc, '\0');
	if ((rc = tz_buf_error(&enc)) < 0 ||
	    (rc = tz_store_redirect_target(x->s, f->parent, (const char *)enc.data, &target)) < 0 || target == NULL ||
	    (rc = tz_key_decode(tv, 1, &ntk, &tarena, target, strlen(target))) < 0)
		goto out;
	tz_buf_puts(&head, "UPDATE ");
	tz_store_sql_ident(&head, t->table);
	tz_buf_puts(&head, " SET ");
	tz_store_sql_ident(&head, f->from[0]);
	tz_buf_puts(&head, " = ?1");
	if ((rc = tz_buf_error(&head)) == TZ_OK &&
	    (rc = exec_by_key(x, &head, t->table, t->key, &tv[0], "cannot re-point a reference", done)) == TZ_OK)
		x->sum->repointed += *done;
out:
	tz_free(target);
	tz_free(tarena);
	tz_buf_release(&enc);
	tz_buf_release(&head);
	return rc;
}

/* HQ's row of `table` with encoded key `key`, from store.db (NULL: none). */
static int row_by_key(check_ctx *x, const char *table, const char *key, tz_row **out)
{
	tz_buf head = TZ_BUF_INIT, enc = TZ_BUF_INIT;
	sqlite3_stmt *q = NULL;
	int rc;

	*out = NULL;
	tz_buf_puts(&head, "SELECT * FROM ");
	tz_store_sql_ident(&head, table);
	if ((rc = tz_buf_error(&head)) < 0 || (rc = prepare_by_key(x, &head, table, key, NULL, &q)) < 0 || q == NULL)
		goto done;
	if ((rc = sqlite3_step(q)) != SQLITE_ROW && rc != SQLITE_DONE) {
		rc = tz_conflict__sql_error(x->db, "cannot read a row");
		goto done;
	}
	if (rc == SQLITE_DONE) {
		rc = TZ_OK;
	} else {
		int n = sqlite3_column_count(q);
		tz_column *c = tz_calloc((size_t)n, sizeof(*c));
		rc = TZ_OK;
		if (c == NULL) {
			rc = TZ_ENOMEM;
			goto done;
		}
		for (int i = 0; i < n; i++) {
			c[i].name = sqlite3_column_name(q, i);
			c[i].name_len = strlen(c[i].name);
			tz_store_sql_column(q, i, &c[i].v);
		}
		if ((rc = tz_row_encode(&enc, c, (size_t)n)) == TZ_OK)
			rc = tz_row_decode(out, enc.data, enc.len);
		tz_free(c);
	}
done:
	sqlite3_finalize(q);
	tz_buf_release(&head);
	tz_buf_release(&enc);
	return rc;
}

/* Does the parent row the reference names exist (one indexed lookup: a
 * REFERENCES target is a primary key or a unique index)? */
static int parent_exists(check_ctx *x, const fk *f, const tz_value *v, bool *yes)
{
	tz_buf sql = TZ_BUF_INIT;
	sqlite3_stmt *q = NULL;
	int rc = TZ_OK, step;

	tz_buf_puts(&sql, "SELECT 1 FROM ");
	tz_store_sql_ident(&sql, f->parent);
	put_cond(&sql, f->to, f->n, 1);
	tz_buf_puts(&sql, " LIMIT 1");
	tz_buf_putc(&sql, '\0');
	if ((rc = tz_buf_error(&sql)) < 0)
		return rc;
	if (sqlite3_prepare_v2(x->db, (const char *)sql.data, -1, &q, NULL) != SQLITE_OK) {
		/* a reference to a table that does not exist is dangling too;
		 * any other failure (I/O) fails the import */
		rc = sqlite3_errcode(x->db) == SQLITE_ERROR ? TZ_OK : tz_conflict__sql_error(x->db, "cannot check a reference");
		*yes = false;
		tz_buf_release(&sql);
		return rc;
	}
	for (size_t k = 0; k < f->n; k++)
		tz_store_sql_bind(q, (int)k + 1, &v[k]);
	if ((step = sqlite3_step(q)) != SQLITE_ROW && step != SQLITE_DONE)
		rc = tz_conflict__sql_error(x->db, "cannot check a reference");
	*yes = step == SQLITE_ROW;
	sqlite3_finalize(q);
	tz_buf_release(&sql);
	return rc;
}

static int orphan(check_ctx *x, touched *t, const fk *f, const tz_value *v)
{
	tz_buf note = TZ_BUF_INIT;
	int rc;

	tz_buf_printf(&note, "%s references %s(", f->from[0], f->parent);
	for (size_t k = 0; k < f->n; k++)
		tz_buf_printf(&note, "%s%s", k ? ", " : "", f->to[k]);
	tz_buf_puts(&note, ") = ");
	for (size_t k = 0; k < f->n; k++) {
		if (k)
			tz_buf_puts(&note, ", ");
		put_json_value(&note, &v[k]);
	}
	tz_buf_puts(&note, ": no such row");
	tz_buf_putc(&note, '\0');
	if ((rc = tz_buf_error(&note)) == TZ_OK)
		rc = keep(x, TZ_KIND_ORPHAN, t->table, t->part, t->key, (const char *const *)f->from, f->n, t->row, NULL,
			  "reference", (const char *)note.data);
	tz_buf_release(&note);
	return rc;
}

/* One touched row: merged away, its references re-pointed or dangling. */
static int references_of(check_ctx *x, touched *t)
{
	const fk *f = x->tabs[t->tab].f;
	size_t nf = x->tabs[t->tab].nf;
	char *target = NULL;
	int rc = TZ_OK;

	if (x->any_redirect && (rc = tz_store_redirect_target(x->s, t->table, t->key, &target)) < 0)
		return rc;
	if (target) {
		rc = drop_recreated(x, t, target);
		tz_free(target);
		return rc;
	}
	for (size_t i = 0; i < nf && rc == TZ_OK; i++) {
		tz_value v[TZ_KEY_MAX_COLUMNS];
		bool null = false, ok = true, moved = false;
		for (size_t k = 0; k < f[i].n; k++) {
			const tz_column *c = tz_row_find(t->row, f[i].from[k], strlen(f[i].from[k]));
			null |= c == NULL || c->v.type == TZ_VNULL;
			if (c)
				v[k] = c->v;
		}
		if (null || f[i].to[0] == NULL)
			continue;   /* a NULL reference references nothing */
		if (f[i].n == 1 && (rc = repoint(x, t, &f[i], &v[0], &moved)) < 0)
			break;
		if (!moved && (rc = parent_exists(x, &f[i], v, &ok)) == TZ_OK && !ok)
			rc = orphan(x, t, &f[i], v);
	}
	return rc;
}

static int check_references(check_ctx *x)
{
	int rc = TZ_OK;

	for (size_t i = 0; i < x->nt && rc == TZ_OK; i++)
		if (x->t[i].present && x->t[i].row)
			rc = references_of(x, &x->t[i]);
	return rc;
}

/* ---- invariants ---- */

static int invariant_row(check_ctx *x, const char *name, sqlite3_stmt *q)
{
	int n = sqlite3_column_count(q);
	tz_column *cols = tz_calloc((size_t)n, sizeof(*cols));
	tz_buf enc = TZ_BUF_INIT, key = TZ_BUF_INIT, note = TZ_BUF_INIT;
	tz_row *row = NULL;
	size_t nc = 0;
	tz_value first;
	int rc;

	if (cols == NULL)
		return TZ_ENOMEM;
	tz_buf_printf(&note, "invariant %s:", name);
	for (int i = 0; i < n; i++) {
		const char *cn = sqlite3_column_name(q, i);
		bool dup = false;
		tz_value v;
		tz_store_sql_column(q, i, &v);
		for (size_t k = 0; k < nc && !dup; k++)
			dup = strcmp(cols[k].name, cn) == 0;
		if (i == 0)
			first = v;
		tz_buf_printf(&note, "%s %s=", i ? "," : "", cn);
		put_json_value(&note, &v);
		if (!dup && cn[0])
			cols[nc++] = (tz_column){ cn, strlen(cn), v };
	}
	tz_buf_putc(&note, '\0');
	if ((rc = tz_key_encode(&key, &first, 1)) == TZ_OK && (rc = tz_row_encode(&enc, cols, nc)) == TZ_OK &&
	    (rc = tz_buf_error(&note)) == TZ_OK && (rc = tz_row_decode(&row, enc.data, enc.len)) == TZ_OK) {
		tz_buf_putc(&key, '\0');
		if ((rc = tz_buf_error(&key)) == TZ_OK)
			rc = keep(x, TZ_KIND_INVARIANT, name, "", (const char *)key.data, NULL, 0, NULL, row, "invariant",
				  (const char *)note.data);
	}
	tz_row_free(row);
	tz_free(cols);
	tz_buf_release(&enc);
	tz_buf_release(&key);
	tz_buf_release(&note);
	return rc;
}

static int check_invariants(check_ctx *x)
{
	sqlite3_stmt *q = NULL, *inv = NULL;
	int rc = TZ_OK, step;

	if (x->nt == 0)
		return TZ_OK;
	if (sqlite3_prepare_v2(x->db, "SELECT name, sql FROM tz_invariant ORDER BY name", -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(x->db, "cannot read tz_invariant");
	if ((step = sqlite3_step(q)) != SQLITE_ROW) {
		rc = step == SQLITE_DONE ? TZ_OK : tz_conflict__sql_error(x->db, "cannot read tz_invariant");
		sqlite3_finalize(q);
		return rc;   /* none declared: no tz_touched either */
	}
	sqlite3_reset(q);
	if ((rc = fill_touched(x)) < 0) {
		sqlite3_finalize(q);
		return rc;
	}
	while (rc == TZ_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(q, 0), *sql = (const char *)sqlite3_column_text(q, 1);
		if (sqlite3_prepare_v2(x->db, sql, -1, &inv, NULL) != SQLITE_OK) {
			rc = tz_error_set(TZ_ESQL, "invariant '%s': %s", name, sqlite3_errmsg(x->db));
			break;
		}
		while (rc == TZ_OK && (step = sqlite3_step(inv)) == SQLITE_ROW)
			rc = invariant_row(x, name, inv);
		if (rc == TZ_OK && step != SQLITE_DONE)
			rc = tz_error_set(TZ_ESQL, "invariant '%s': %s", name, sqlite3_errmsg(x->db));
		sqlite3_finalize(inv);
		inv = NULL;
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_conflict__sql_error(x->db, "cannot read tz_invariant");
	sqlite3_finalize(q);
	return rc;
}

/* ---- the whole check ---- */

static int any_redirect(check_ctx *x)
{
	sqlite3_stmt *q = NULL;
	int step;

	if (sqlite3_prepare_v2(x->db, "SELECT 1 FROM tz_redirect LIMIT 1", -1, &q, NULL) != SQLITE_OK)
		return tz_conflict__sql_error(x->db, "cannot read tz_redirect");
	step = sqlite3_step(q);
	sqlite3_finalize(q);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return tz_conflict__sql_error(x->db, "cannot read tz_redirect");
	x->any_redirect = step == SQLITE_ROW;
	return TZ_OK;
}

static void check_release(check_ctx *x)
{
	for (size_t i = 0; i < x->nt; i++) {
		tz_free(x->t[i].table);
		tz_free(x->t[i].part);
		tz_free(x->t[i].key);
		tz_row_free(x->t[i].row);
	}
	tz_free(x->t);
	for (size_t i = 0; i < x->ntabs; i++) {
		tz_free(x->tabs[i].name);
		fks_free(x->tabs[i].f, x->tabs[i].nf);
	}
	tz_free(x->tabs);
	tz_queue__pending_free(x->p, x->np);
}

int tz_integrity__check(tz_store *s, const tz_merge_done *d, tz_merge_summary *sum)
{
	check_ctx x;
	int64_t first = 0, last = 0;
	int rc;

	memset(&x, 0, sizeof(x));
	x.s = s;
	x.db = tz_store_db(s);
	x.d = d;
	x.sum = sum;
	if ((rc = any_redirect(&x)) < 0 || (rc = check_unauthorized(&x)) < 0 || (rc = tz_store_touched(s, d->from_root, d->to_root, collect, &x)) < 0 ||
	    (rc = check_references(&x)) < 0 || (rc = check_invariants(&x)) < 0 ||
	    (rc = tz_duplicates__check(s, d, &sum->duplicates)) < 0)
		goto done;
	if ((rc = tz_queue__record(s, d->code, x.p, x.np, d->ours_commit, d->theirs_commit, d->merge_commit, &first,
				   &last)) < 0)
		goto done;
	/* a failure SQLite answered by rolling the transaction back must not
	 * let the import go on in autocommit */
	if (sqlite3_get_autocommit(x.db)) {
		rc = tz_error_set(TZ_EIO, "the import's transaction was rolled back during the integrity checks");
		goto done;
	}
	if (first && !sum->first_id)
		sum->first_id = first;
	if (last)
		sum->last_id = last;
done:
	check_release(&x);
	return rc;
}

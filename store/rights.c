/*
 * rights.c - what a branch may write beyond its partitions and shared
 * tables (docs/integrity.md, protocol.md P9): columns only HQ changes
 * (tz_access), the transfer of a row the branch owns to another branch,
 * and a row that HQ (or its owner) moved away while the branch edited it.
 * Called by the HQ import (sync.c) for each row a branch changed.
 */
#include "store/store_int.h"

#include <string.h>

struct tz_rights {
	size_t n;
	char **tbl, **col;           /* tz_access: (table, column) only HQ updates */
};

void tz_rights__free(tz_rights *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		tz_free(r->tbl[i]);
		tz_free(r->col[i]);
	}
	tz_free(r->tbl);
	tz_free(r->col);
	tz_free(r);
}

int tz_rights__load(tz_store *s, tz_rights **out)
{
	tz_rights *r = tz_calloc(1, sizeof(*r));
	sqlite3_stmt *q = NULL;
	size_t cap = 0, cap2 = 0;
	int rc = TZ_OK, step;

	*out = NULL;
	if (r == NULL)
		return TZ_ENOMEM;
	if ((rc = tz_sql__prepare(s, &q, "SELECT tbl, col FROM tz_access WHERE writer = 'hq' ORDER BY tbl, col")) < 0)
		goto done;
	while (rc == TZ_OK && (step = sqlite3_step(q)) == SQLITE_ROW) {
		if (tz_array_grow(&r->tbl, &cap, r->n, sizeof(*r->tbl)) < 0 ||
		    tz_array_grow(&r->col, &cap2, r->n, sizeof(*r->col)) < 0) {
			rc = TZ_ENOMEM;
			break;
		}
		r->tbl[r->n] = tz_strdup((const char *)sqlite3_column_text(q, 0));
		r->col[r->n] = tz_strdup((const char *)sqlite3_column_text(q, 1));
		if (r->tbl[r->n++] == NULL || r->col[r->n - 1] == NULL)
			rc = TZ_ENOMEM;
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_sql__error(s, step, "cannot read tz_access");
done:
	sqlite3_finalize(q);
	if (rc < 0)
		tz_rights__free(r);
	else
		*out = r;
	return rc;
}

static bool same_value(const tz_column *a, const tz_column *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	if (a->v.type != b->v.type)
		return false;
	if (a->v.type == TZ_VINT)
		return a->v.i == b->v.i;
	if (a->v.type == TZ_VREAL)
		return memcmp(&a->v.r, &b->v.r, sizeof(double)) == 0;
	return a->v.n == b->v.n && (a->v.n == 0 || memcmp(a->v.p, b->v.p, a->v.n) == 0);
}

int tz_rights__columns(tz_store *s, const tz_staging *st, const tz_rights *r, const tz_table *t, const tz_oid *base,
		       const tz_oid *theirs, const char **why)
{
	tz_row *rb = NULL, *rt = NULL;
	bool any = false;
	int rc = TZ_OK;

	*why = NULL;
	for (size_t i = 0; r && i < r->n && !any; i++)
		any = strcmp(r->tbl[i], t->name) == 0;
	if (!any || tz_oid_is_zero(base) || tz_oid_is_zero(theirs))
		return TZ_OK;   /* inserts and deletes are whole rows: the partition decides */
	if ((rc = tz_obj__read_row(s, st, base, &rb)) < 0 || (rc = tz_obj__read_row(s, st, theirs, &rt)) < 0)
		goto done;
	for (size_t i = 0; i < r->n && *why == NULL; i++)
		if (strcmp(r->tbl[i], t->name) == 0 &&
		    !same_value(tz_row_find(rb, r->col[i], strlen(r->col[i])), tz_row_find(rt, r->col[i], strlen(r->col[i]))))
			*why = "a column only HQ changes (tz_access)";
done:
	tz_row_free(rb);
	tz_row_free(rt);
	return rc;
}

int tz_rights__partition_at_hq(tz_store *s, tz_table *t, const char *enc, size_t len, tz_buf *part, bool *found)
{
	sqlite3_stmt *q = NULL;
	tz_value kv[TZ_KEY_MAX_COLUMNS];
	uint8_t *arena = NULL;
	size_t nk;
	int rc;

	*found = false;
	if ((rc = tz_key_decode(kv, TZ_KEY_MAX_COLUMNS, &nk, &arena, enc, len)) < 0)
		return rc;
	if (nk == t->npk && t->owner_idx >= 0 && (rc = tz_schema__select_row(s, t, &q)) == TZ_OK) {
		sqlite3_reset(q);
		for (size_t k = 0; k < nk; k++)
			tz_sql__bind_value(q, (int)k + 1, &kv[k]);
		int step = sqlite3_step(q);
		if (step == SQLITE_ROW) {
			tz_value owner;
			tz_sql__column_value(q, t->owner_idx, &owner);
			*found = (rc = tz_schema__partition(part, t, &owner)) == TZ_OK;
		} else if (step != SQLITE_DONE) {
			rc = tz_sql__error(s, step, "cannot read a row at HQ");
		}
		sqlite3_reset(q);
	}
	tz_free(arena);
	return rc;
}

int tz_rights__given(tz_store *s, const tz_staging *st, tz_table *t, const char *const *comp, const size_t *len,
		     const tz_oid *base, const tz_oid *theirs, const tz_oid *theirs_root, const tz_buf *own, bool *given)
{
	tz_buf part = TZ_BUF_INIT;
	const char *path[TZ_PATH_DEPTH];
	size_t plen[TZ_PATH_DEPTH];
	tz_oid there;
	bool found;
	int rc;

	*given = false;
	if (!tz_oid_is_zero(base) || tz_oid_is_zero(theirs) || t->scope != TZ_SCOPE_OWNED)
		return TZ_OK;
	/* the row is the branch's at HQ ... */
	if ((rc = tz_rights__partition_at_hq(s, t, comp[4], len[4], &part, &found)) < 0 || !found || part.len != own->len ||
	    memcmp(part.data, own->data, own->len) != 0)
		goto done;
	/* ... and the branch no longer holds it in its own partition */
	memcpy(path, comp, sizeof(path));
	memcpy(plen, len, sizeof(plen));
	path[1] = (const char *)own->data;
	plen[1] = own->len;
	if ((rc = tz_tree__lookup(s, st, &there, theirs_root, path, plen, TZ_PATH_DEPTH)) == TZ_OK)
		*given = tz_oid_is_zero(&there);
done:
	tz_buf_release(&part);
	return rc;
}

int tz_rights__moved_away(tz_store *s, tz_table *t, const char *const *comp, const size_t *len, const tz_oid *base,
			  const tz_oid *ours, const tz_oid *theirs, bool *moved)
{
	tz_buf part = TZ_BUF_INIT;
	bool found;
	int rc;

	*moved = false;
	if (t->scope != TZ_SCOPE_OWNED || tz_oid_is_zero(base) || tz_oid_is_zero(theirs) || !tz_oid_is_zero(ours))
		return TZ_OK;
	/* HQ deleted it here: did it move to another partition? */
	if ((rc = tz_rights__partition_at_hq(s, t, comp[4], len[4], &part, &found)) == TZ_OK && found)
		*moved = part.len != len[1] || memcmp(part.data, comp[1], len[1]) != 0;
	tz_buf_release(&part);
	return rc;
}

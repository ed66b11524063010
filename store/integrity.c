/*
 * integrity.c - what the integrity checks (conflict/integrity.c,
 * docs/integrity.md) read of the history: the rows two roots differ by,
 * one row by path, and the redirect records of merged duplicates.
 */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

typedef struct {
	tz_store *s;
	tz_touched_cb cb;
	void *payload;
} touched_ctx;

/* The text a one-value key encoding holds (a table or partition name). */
static int decode_name(const char *enc, size_t len, char *out, size_t cap)
{
	tz_value v[1];
	uint8_t *arena = NULL;
	size_t n;
	int rc;

	if (len > 0 && enc[0] == '_') {
		/* "_shared", "_hq": never a code (DESIGN §11), stored as is */
		snprintf(out, cap, "%.*s", (int)len, enc);
		return TZ_OK;
	}
	if ((rc = tz_key_decode(v, 1, &n, &arena, enc, len)) < 0)
		return rc;
	if (n != 1 || v[0].type != TZ_VTEXT || v[0].n >= cap)
		rc = tz_error_set(TZ_ECORRUPT, "history: '%.*s' is not a name", (int)len, enc);
	else
		snprintf(out, cap, "%.*s", (int)v[0].n, (const char *)v[0].p);
	tz_free(arena);
	return rc;
}

static int touched_row(const char *const *comp, const size_t *len, size_t depth, const tz_oid *a, const tz_oid *b,
		       void *payload)
{
	touched_ctx *x = payload;
	tz_touched_row r;
	char table[256], part[256];
	char *key, *pe = NULL;
	int rc;

	(void)a;
	if (depth != TZ_PATH_DEPTH || comp[0][0] == '_')
		return TZ_OK;   /* _schema, _log, _redirect */
	if ((rc = decode_name(comp[0], len[0], table, sizeof(table))) < 0 ||
	    (rc = decode_name(comp[1], len[1], part, sizeof(part))) < 0)
		return rc;
	if ((key = tz_strndup(comp[4], len[4])) == NULL || (pe = tz_strndup(comp[1], len[1])) == NULL) {
		tz_free(key);
		return TZ_ENOMEM;
	}
	memset(&r, 0, sizeof(r));
	r.table = table;
	r.partition = part;
	r.partition_enc = pe;
	r.key = key;
	r.blob = b;
	r.present = !tz_oid_is_zero(b);
	rc = x->cb(&r, x->payload);
	tz_free(key);
	tz_free(pe);
	return rc;
}

int tz_store_touched(tz_store *s, const tz_oid *from_root, const tz_oid *to_root, tz_touched_cb cb, void *payload)
{
	static const tz_oid zero;
	touched_ctx x = { s, cb, payload };

	return tz_tree__diff(s, s->held, from_root ? from_root : &zero, to_root, touched_row, &x);
}

int tz_store_read_row(tz_store *s, const tz_oid *blob, tz_row **out)
{
	return tz_obj__read_row(s, s->held, blob, out);
}

int tz_store_row_at(tz_store *s, const tz_oid *root, const char *table_enc, const char *part_enc, const char *key,
		    tz_row **out)
{
	char fan[2];
	const char *comp[TZ_PATH_DEPTH] = { table_enc, part_enc, fan, fan + 1, key };
	size_t len[TZ_PATH_DEPTH] = { strlen(table_enc), strlen(part_enc), 1, 1, strlen(key) };
	tz_oid blob;
	int rc;

	*out = NULL;
	tz_fanout__of(fan, key, len[4]);
	if ((rc = tz_tree__lookup(s, s->held, &blob, root, comp, len, TZ_PATH_DEPTH)) < 0 || tz_oid_is_zero(&blob))
		return rc;
	return tz_obj__read_row(s, s->held, &blob, out);
}

int tz_store_root_of(tz_store *s, const tz_oid *commit, tz_oid *root)
{
	return tz_commit__tree(s, commit, root);
}

/* Chains are short (a record merged into one merged later); a loop can
 * only come from a hand-edited table, and is refused. */
#define TZ_REDIRECT_MAX_HOPS 64

int tz_store_redirect_target(tz_store *s, const char *table, const char *key, char **target)
{
	sqlite3_stmt *q = NULL;
	char *cur = NULL;
	int rc = TZ_OK, step;

	*target = NULL;
	if ((rc = tz_sql__prepare(s, &q, "SELECT to_key FROM tz_redirect WHERE tbl = ?1 AND from_key = ?2")) < 0)
		return rc;
	for (int hop = 0;; hop++) {
		sqlite3_reset(q);
		sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, cur ? cur : key, -1, SQLITE_TRANSIENT);
		if ((step = sqlite3_step(q)) == SQLITE_DONE)
			break;
		if (step != SQLITE_ROW) {
			rc = tz_sql__error(s, step, "cannot read tz_redirect");
			break;
		}
		if (hop == TZ_REDIRECT_MAX_HOPS) {
			rc = tz_error_set(TZ_ECORRUPT, "tz_redirect: '%s' of table '%s' redirects in a loop", key, table);
			break;
		}
		tz_free(cur);
		if ((cur = tz_strdup((const char *)sqlite3_column_text(q, 0))) == NULL) {
			rc = TZ_ENOMEM;
			break;
		}
	}
	sqlite3_finalize(q);
	if (rc < 0)
		tz_free(cur);
	else
		*target = cur;
	return rc;
}

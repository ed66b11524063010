/*
 * inspect.c - the read commands: resolve a revision, status, log, and the
 * row- and column-level diff between two trees (or a tree and the working
 * state: the head plus the change log, built in memory, never written).
 */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>

int tz_store_resolve(tz_store *s, tz_oid *out, const char *rev)
{
	git_object *obj = NULL, *peeled = NULL;
	bool has;
	int rc;

	memset(out, 0, sizeof(*out));
	if (rev == NULL || strcmp(rev, "HEAD") == 0) {
		if ((rc = tz_head__get(s, &has, out)) < 0)
			return rc;
		return has ? TZ_OK : tz_error_set(TZ_ENOTFOUND, "no commit yet (run 'syncctl commit')");
	}
	if (git_revparse_single(&obj, s->repo, rev) < 0 || git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0) {
		git_object_free(obj);
		return tz_error_set(TZ_ENOTFOUND, "unknown revision '%s'", rev);
	}
	memcpy(out->id, git_object_id(peeled)->id, 20);
	git_object_free(peeled);
	git_object_free(obj);
	return TZ_OK;
}

/* ---- status ---- */

void tz_status_release(tz_status *st)
{
	if (st == NULL)
		return;
	tz_free(st->tables);
	st->tables = NULL;
	st->ntables = 0;
}

/* Mark the tables whose DDL differs from the head's. */
static int status_rebuilds(tz_store *s, tz_status *out)
{
	tz_tables ts = { 0, NULL };
	tz_tree ht = { NULL, 0, NULL };
	tz_oid root = { { 0 } };
	int rc;

	if ((rc = tz_schema__load(s, &ts)) < 0 ||
	    (out->has_head && (rc = tz_commit__tree(s, &out->head, &root)) < 0) ||
	    (rc = tz_schema__head_tables(s, &root, &ht)) < 0)
		goto done;
	for (size_t i = 0; i < out->ntables && rc == TZ_OK; i++) {
		tz_table *t = tz_schema__by_name(&ts, out->tables[i].table);
		if (t && (rc = tz_schema__ddl_changed(s, t, &ht, &out->tables[i].rebuild)) == TZ_OK)
			out->nrebuild += out->tables[i].rebuild;
	}
done:
	tz_tree__release(&ht);
	tz_schema__release(&ts);
	return rc;
}

/* The sync side of status: sequence numbers, the last import, what a
 * branch has not had acknowledged. */
static int status_sync(tz_store *s, tz_status *out)
{
	sqlite3_stmt *q = NULL;
	char base[64];
	int64_t seq;
	int rc;

	out->branch = strcmp(s->code, "HQ") != 0;
	if ((rc = tz_meta__get_int(s, "seq_out", &seq)) < 0)
		return rc;
	out->seq_out = (uint64_t)seq;
	if ((rc = tz_sql__prepare(s, &q, "SELECT at, sender FROM tz_bundles ORDER BY at DESC, rowid DESC LIMIT 1")) < 0)
		return rc;
	if (sqlite3_step(q) == SQLITE_ROW) {
		out->last_import = sqlite3_column_int64(q, 0);
		snprintf(out->last_sender, sizeof(out->last_sender), "%s", (const char *)sqlite3_column_text(q, 1));
	}
	sqlite3_finalize(q);
	if (!out->branch) {
		if ((rc = tz_sql__prepare(s, &q, "SELECT count(*) FROM tz_lines")) < 0)
			return rc;
		if (sqlite3_step(q) == SQLITE_ROW)
			out->branches = (uint64_t)sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
		return TZ_OK;
	}
	if ((rc = tz_meta__get_text(s, "base", base, sizeof(base))) < 0 || !out->has_head || base[0] == '\0')
		return rc;
	{
		git_revwalk *w = NULL;
		git_oid id, b;
		if (git_oid_fromstr(&b, base) < 0 || git_revwalk_new(&w, s->repo) < 0 ||
		    git_revwalk_push(w, (const git_oid *)out->head.id) < 0 || git_revwalk_hide(w, &b) < 0) {
			git_revwalk_free(w);
			return tz_git__error("cannot count the unsent commits");
		}
		while (git_revwalk_next(&id, w) == 0)
			out->unsent++;
		git_revwalk_free(w);
	}
	return TZ_OK;
}

int tz_store_status(tz_store *s, tz_status *out)
{
	sqlite3_stmt *q = NULL;
	size_t cap = 0;
	int rc, step;

	memset(out, 0, sizeof(*out));
	memcpy(out->code, s->code, sizeof(out->code));
	if ((rc = tz_head__get(s, &out->has_head, &out->head)) < 0 ||
	    (rc = tz_meta__get_int(s, "schema_version", &out->schema_version)) < 0)
		return rc;
	/* distinct keys: the key slots compared as values, per table */
	if ((rc = tz_sql__prepare(s, &q,
		"SELECT t.tbl, count(c.seq), (SELECT count(*) FROM (SELECT DISTINCT k0, k1, k2, k3, k4, k5, k6, k7"
		"  FROM tz_changes x WHERE x.tid = d.tid))"
		" FROM tz_track t JOIN tz_tid d ON d.tbl = t.tbl LEFT JOIN tz_changes c ON c.tid = d.tid"
		" GROUP BY t.tbl ORDER BY t.tbl")) < 0)
		return rc;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		tz_status_table *t;
		if ((rc = tz_array_grow(&out->tables, &cap, out->ntables, sizeof(*out->tables))) < 0)
			goto done;
		t = &out->tables[out->ntables++];
		memset(t, 0, sizeof(*t));
		snprintf(t->table, sizeof(t->table), "%s", (const char *)sqlite3_column_text(q, 0));
		t->changes = (uint64_t)sqlite3_column_int64(q, 1);
		t->rows = (uint64_t)sqlite3_column_int64(q, 2);
		out->log_entries += t->changes;
		out->log_rows += t->rows;
	}
	rc = step == SQLITE_DONE ? TZ_OK : tz_sql__error(s, step, "cannot read the change log");
	if (rc == TZ_OK)
		rc = status_rebuilds(s, out);
	if (rc == TZ_OK)
		rc = status_sync(s, out);
done:
	sqlite3_finalize(q);
	if (rc < 0)
		tz_status_release(out);
	return rc;
}

/* ---- log ---- */

static int commit_info(tz_store *s, git_commit *c, tz_commit_cb cb, void *payload)
{
	tz_commit_info info;
	const git_signature *a = git_commit_author(c);

	memset(&info, 0, sizeof(info));
	memcpy(info.oid.id, git_commit_id(c)->id, 20);
	info.nparents = git_commit_parentcount(c) > 2 ? 2 : git_commit_parentcount(c);
	for (size_t i = 0; i < info.nparents; i++)
		memcpy(info.parents[i].id, git_commit_parent_id(c, (unsigned)i)->id, 20);
	info.author = a && a->name ? a->name : "";
	info.time = a ? (int64_t)a->when.time : 0;
	info.message = git_commit_message(c) ? git_commit_message(c) : "";
	info.signature_ok = tz_commit__verify_sig(s, &info.oid, &info.signer) == TZ_OK;
	tz_error_clear();
	return cb(&info, payload);
}

int tz_store_log(tz_store *s, const char *rev, size_t max, tz_commit_cb cb, void *payload)
{
	git_revwalk *walk = NULL;
	git_oid id;
	tz_oid start;
	size_t n = 0;
	int rc;

	if ((rc = tz_store_resolve(s, &start, rev)) < 0)
		return rc;
	if (git_revwalk_new(&walk, s->repo) < 0 || git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL) < 0 ||
	    git_revwalk_push(walk, (const git_oid *)start.id) < 0 || git_revwalk_simplify_first_parent(walk) < 0) {
		rc = tz_git__error("cannot walk the history");
		goto done;
	}
	while (rc == TZ_OK && (max == 0 || n < max) && git_revwalk_next(&id, walk) == 0) {
		git_commit *c = NULL;
		if (git_commit_lookup(&c, s->repo, &id) < 0) {
			rc = tz_git__error("cannot read a commit");
			break;
		}
		rc = commit_info(s, c, cb, payload);
		git_commit_free(c);
		n++;
	}
done:
	git_revwalk_free(walk);
	return rc;
}

/* ---- diff ---- */

typedef struct {
	tz_store *s;
	const tz_staging *st;
	tz_diff_cb cb;
	void *payload;
} diff_ctx;

static int read_row(diff_ctx *d, const tz_oid *oid, tz_row **out)
{
	git_object_t type;
	uint8_t *data = NULL;
	size_t len;
	int rc;

	*out = NULL;
	if (tz_oid_is_zero(oid))
		return TZ_OK;
	if ((rc = tz_obj__read(d->s, d->st, oid, &type, &data, &len)) == TZ_OK)
		rc = tz_row_decode(out, data, len);
	tz_free(data);
	return rc;
}

/* Columns that differ between two decoded rows (either may be NULL). */
static int column_diff(const tz_row *a, const tz_row *b, tz_diff_column **out, size_t *n)
{
	size_t na = a ? a->ncols : 0, nb = b ? b->ncols : 0, i = 0, j = 0;
	tz_diff_column *c = tz_calloc(na + nb + 1, sizeof(*c));

	*out = c;
	*n = 0;
	if (c == NULL)
		return TZ_ENOMEM;
	while (i < na || j < nb) {
		const tz_column *x = i < na ? &a->cols[i] : NULL, *y = j < nb ? &b->cols[j] : NULL;
		int cmp = !x ? 1 : !y ? -1 : 0;
		if (x && y) {
			size_t m = x->name_len < y->name_len ? x->name_len : y->name_len;
			cmp = memcmp(x->name, y->name, m);
			if (cmp == 0)
				cmp = (x->name_len > y->name_len) - (x->name_len < y->name_len);
		}
		if (cmp == 0 && tz_value_cmp(&x->v, &y->v) == 0) {
			i++, j++;
			continue;
		}
		c[*n].name = cmp <= 0 ? x->name : y->name;
		c[*n].name_len = cmp <= 0 ? x->name_len : y->name_len;
		c[*n].old_v = cmp <= 0 ? &x->v : NULL;
		c[*n].new_v = cmp >= 0 ? &y->v : NULL;
		(*n)++;
		i += cmp <= 0;
		j += cmp >= 0;
	}
	return TZ_OK;
}

static int diff_row_cb(const char *const *comp, const size_t *len, size_t depth, const tz_oid *a,
		       const tz_oid *b, void *payload)
{
	diff_ctx *d = payload;
	tz_row *ra = NULL, *rb = NULL;
	tz_diff_column *cols = NULL;
	tz_value kv[TZ_KEY_MAX_COLUMNS], tv;
	uint8_t *karena = NULL, *tarena = NULL;
	char *table = NULL, *part = NULL, *key = NULL;
	size_t nk, nt, ncols;
	tz_diff_row row;
	int rc;

	if (depth != TZ_PATH_DEPTH || comp[0][0] == '_')
		return TZ_OK;   /* _schema/..., _log */
	if ((rc = tz_key_decode(&tv, 1, &nt, &tarena, comp[0], len[0])) < 0 ||
	    (rc = tz_key_decode(kv, TZ_KEY_MAX_COLUMNS, &nk, &karena, comp[4], len[4])) < 0 ||
	    (rc = read_row(d, a, &ra)) < 0 || (rc = read_row(d, b, &rb)) < 0 ||
	    (rc = column_diff(ra, rb, &cols, &ncols)) < 0)
		goto done;
	if ((table = tz_strndup((const char *)tv.p, tv.n)) == NULL || (part = tz_strndup(comp[1], len[1])) == NULL ||
	    (key = tz_strndup(comp[4], len[4])) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	row = (tz_diff_row){ ra == NULL ? TZ_DIFF_ADDED : rb == NULL ? TZ_DIFF_DELETED : TZ_DIFF_MODIFIED,
			     table, part, key, kv, nk, cols, ncols };
	rc = ncols || row.status != TZ_DIFF_MODIFIED ? d->cb(&row, d->payload) : TZ_OK;
done:
	tz_free(table);
	tz_free(part);
	tz_free(key);
	tz_free(cols);
	tz_row_free(ra);
	tz_row_free(rb);
	tz_free(karena);
	tz_free(tarena);
	return rc;
}

/* The tree of `rev`: NULL is the head, "" the working state (staged). */
static int side_tree(tz_store *s, tz_staging *st, const char *rev, bool working, tz_oid *out)
{
	tz_oid c;
	int rc;

	memset(out, 0, sizeof(*out));
	if (working)
		return tz_commit__working_tree(s, st, out);
	if (rev == NULL) {
		bool has;
		if ((rc = tz_head__get(s, &has, &c)) < 0 || !has)
			return rc;   /* no head yet: the empty tree */
	} else if ((rc = tz_store_resolve(s, &c, rev)) < 0) {
		return rc;
	}
	return tz_commit__tree(s, &c, out);
}

int tz_store_diff(tz_store *s, const char *a, const char *b, tz_diff_cb cb, void *payload)
{
	tz_staging st;
	tz_oid ta, tb;
	diff_ctx d = { s, NULL, cb, payload };
	int rc;

	tz_staging__init(&st);
	if ((rc = side_tree(s, &st, a, false, &ta)) == TZ_OK &&
	    (rc = side_tree(s, &st, b, b == NULL, &tb)) == TZ_OK) {
		d.st = &st;
		rc = tz_tree__diff(s, &st, &ta, &tb, diff_row_cb, &d);
	}
	tz_staging__release(&st);
	return rc;
}

int tz_store_diff_commit(tz_store *s, const tz_oid *commit, tz_diff_cb cb, void *payload)
{
	git_commit *c = NULL;
	tz_oid ta = { { 0 } }, tb;
	diff_ctx d = { s, NULL, cb, payload };
	int rc;

	if ((rc = tz_commit__tree(s, commit, &tb)) < 0)
		return rc;
	if (git_commit_lookup(&c, s->repo, (const git_oid *)commit->id) < 0)
		return tz_git__error("cannot read commit");
	if (git_commit_parentcount(c) > 0)
		rc = tz_commit__tree(s, (const tz_oid *)git_commit_parent_id(c, 0)->id, &ta);
	git_commit_free(c);
	if (rc == TZ_OK)
		rc = tz_tree__diff(s, NULL, &ta, &tb, diff_row_cb, &d);
	return rc;
}

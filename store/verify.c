/*
 * verify.c - `syncctl verify`: signatures, object hashes and encodings,
 * the tree layout, and store.db == head + change log.
 *
 * Every problem is reported (not just the first) through the callback,
 * each naming what it concerns: a commit, an object (with its path), or a
 * table and key.  Cost: every distinct object of the history once, and
 * one scan of each tracked table.
 */
#include "store/store_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct {
	tz_store *s;
	tz_verify_result *r;
	tz_verify_cb cb;
	void *payload;
	tz_hmap seen;        /* object ids already checked */
	char path[4096];
} verify_ctx;

static int issue(verify_ctx *v, const char *kind, const char *fmt, ...) TZ_PRINTF(3, 4);
static int issue(verify_ctx *v, const char *kind, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	tz_verify_issue is = { kind, msg };

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	v->r->issues++;
	return v->cb ? v->cb(&is, v->payload) : TZ_OK;
}

/* Check a row blob: canonical encoding, and its name is a key whose
 * fanout directories match. */
static int check_blob(verify_ctx *v, const tz_oid *oid, const char *const *comp, const size_t *len,
		      size_t depth)
{
	git_object_t type;
	uint8_t *data = NULL, *arena = NULL;
	tz_row *row = NULL;
	tz_value kv[TZ_KEY_MAX_COLUMNS];
	size_t n, nk;
	char hex[41], fan[2];
	int rc;

	tz_oid_fmt(hex, oid);
	if ((rc = tz_obj__read(v->s, NULL, oid, &type, &data, &n)) < 0) {
		rc = issue(v, "object", "%s (%s)", tz_error_last(), v->path);
		goto done;
	}
	v->r->objects++;
	if (depth == TZ_PATH_DEPTH && comp[0][0] != '_') {
		if (tz_row_decode(&row, data, n) < 0)
			rc = issue(v, "object", "row %s at '%s': %s", hex, v->path, tz_error_last());
		else if (tz_key_decode(kv, TZ_KEY_MAX_COLUMNS, &nk, &arena, comp[4], len[4]) < 0)
			rc = issue(v, "layout", "'%s': the name is not a key: %s", v->path, tz_error_last());
		else if (tz_fanout__of(fan, comp[4], len[4]), fan[0] != comp[2][0] || fan[1] != comp[3][0] ||
			 len[2] != 1 || len[3] != 1)
			rc = issue(v, "layout", "'%s': row filed under the wrong fanout directory", v->path);
	} else if (depth > 1 && depth != TZ_PATH_DEPTH && comp[0][0] != '_') {
		rc = issue(v, "layout", "'%s': a file where the layout has a directory", v->path);
	}
done:
	tz_free(arena);
	tz_row_free(row);
	tz_free(data);
	return rc;
}

static int walk_tree(verify_ctx *v, const tz_oid *oid, const char **comp, size_t *len, size_t depth);

static int walk_entry(verify_ctx *v, const tz_tree_entry *e, const char **comp, size_t *len, size_t depth)
{
	size_t plen = strlen(v->path);
	tz_hmap_slot *sl;
	bool added;
	int rc;

	if ((rc = tz_hmap__upsert(&v->seen, e->oid.id, 20, &sl, &added)) < 0 || !added)
		return rc;
	comp[depth] = e->name;
	len[depth] = e->name_len;
	snprintf(v->path + plen, sizeof(v->path) - plen, "%s%.*s", plen ? "/" : "", (int)e->name_len, e->name);
	if (e->mode == 040000)
		rc = depth + 1 >= TZ_PATH_DEPTH + 1 ? issue(v, "layout", "'%s': nested too deep", v->path)
						     : walk_tree(v, &e->oid, comp, len, depth + 1);
	else
		rc = check_blob(v, &e->oid, comp, len, depth + 1);
	v->path[plen] = '\0';
	return rc;
}

static int walk_tree(verify_ctx *v, const tz_oid *oid, const char **comp, size_t *len, size_t depth)
{
	tz_tree t;
	int rc = TZ_OK;

	if (tz_tree__read(v->s, NULL, oid, &t) < 0)
		return issue(v, "object", "%s (%s)", tz_error_last(), v->path[0] ? v->path : "root tree");
	v->r->objects++;
	for (size_t i = 0; i < t.n && rc == TZ_OK; i++)
		rc = walk_entry(v, &t.e[i], comp, len, depth);
	tz_tree__release(&t);
	return rc;
}

/* Every commit reachable from the head: object, signature, tree. */
static int check_history(verify_ctx *v, const tz_oid *head)
{
	git_revwalk *walk = NULL;
	git_oid id;
	char hex[41];
	int rc = TZ_OK, step = 0;

	tz_oid_fmt(hex, head);
	if (git_revwalk_new(&walk, v->s->repo) < 0 || git_revwalk_push(walk, (const git_oid *)head->id) < 0) {
		rc = issue(v, "object", "head commit %s cannot be read: %s", hex,
			   git_error_last() ? git_error_last()->message : "unreadable");
		goto done;
	}
	while (rc == TZ_OK && (step = git_revwalk_next(&id, walk)) == 0) {
		tz_oid c, tree;
		const char *signer;
		const char *comp[TZ_PATH_DEPTH + 2];
		size_t len[TZ_PATH_DEPTH + 2];
		git_object_t type;
		uint8_t *data = NULL;
		size_t n;

		memcpy(c.id, id.id, 20);
		v->r->commits++;
		if (tz_obj__read(v->s, NULL, &c, &type, &data, &n) < 0) {
			rc = issue(v, "object", "%s (a commit)", tz_error_last());
			continue;
		}
		tz_free(data);
		if (tz_commit__verify_sig(v->s, &c, &signer) < 0 && (rc = issue(v, "signature", "%s", tz_error_last())) < 0)
			break;
		if (tz_commit__tree(v->s, &c, &tree) < 0) {
			rc = issue(v, "object", "%s", tz_error_last());
			continue;
		}
		v->path[0] = '\0';
		{
			tz_hmap_slot *sl;
			bool added;
			if ((rc = tz_hmap__upsert(&v->seen, tree.id, 20, &sl, &added)) == TZ_OK && added)
				rc = walk_tree(v, &tree, comp, len, 0);
		}
	}
	if (rc == TZ_OK && step != GIT_ITEROVER && step != 0)
		rc = issue(v, "object", "the history cannot be walked: %s",
			   git_error_last() ? git_error_last()->message : "unreadable");
done:
	git_revwalk_free(walk);
	return rc;
}

/* ---- store.db against the head and the log ---- */

typedef struct {
	verify_ctx *v;
	const char *table;
	tz_hmap rows;        /* encoded key -> 1 + index in oids */
	tz_oid *oids;
	char **parts;
	size_t n, cap;
} head_rows;

static void head_rows_release(head_rows *h)
{
	for (size_t i = 0; i < h->n; i++)
		tz_free(h->parts[i]);
	tz_free(h->parts);
	tz_free(h->oids);
	tz_hmap__release(&h->rows);
}

static int collect_row(const char *const *comp, const size_t *len, size_t depth, const tz_oid *a,
		       const tz_oid *b, void *payload)
{
	head_rows *h = payload;
	tz_hmap_slot *sl;
	bool added;
	int rc;

	(void)a;
	if (depth != TZ_PATH_DEPTH - 1)   /* walked from the table tree: partition/f/f/key */
		return TZ_OK;
	if (h->n == h->cap) {
		/* two arrays of one capacity: grow a copy of cap for each */
		size_t c1 = h->cap, c2 = h->cap;
		if (tz_array_grow(&h->oids, &c1, h->n, sizeof(*h->oids)) < 0 ||
		    tz_array_grow(&h->parts, &c2, h->n, sizeof(*h->parts)) < 0)
			return TZ_ENOMEM;
		h->cap = c1;
	}
	if ((rc = tz_hmap__upsert(&h->rows, comp[3], len[3], &sl, &added)) < 0)
		return rc;
	if (!added)
		return issue(h->v, "layout", "table '%s' key '%.*s' is in two partitions ('%s' and '%.*s')", h->table,
			     (int)len[3], comp[3], h->parts[sl->value - 1], (int)len[0], comp[0]);
	if ((h->parts[h->n] = tz_strndup(comp[0], len[0])) == NULL)
		return TZ_ENOMEM;
	h->oids[h->n] = *b;
	sl->value = ++h->n;
	return TZ_OK;
}

/* Keys of `t` in the change log (encoded), into `out`. */
static int dirty_keys(tz_store *s, const tz_table *t, tz_hmap *out)
{
	sqlite3_stmt *q = NULL;
	tz_buf key = TZ_BUF_INIT;
	int rc, step;

	if ((rc = tz_sql__prepare(s, &q, "SELECT k0, k1, k2, k3, k4, k5, k6, k7 FROM tz_changes WHERE tid = ?1")) < 0)
		return rc;
	sqlite3_bind_int64(q, 1, t->tid);
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		tz_value kv[TZ_KEY_MAX_COLUMNS];
		tz_hmap_slot *sl;
		bool added;
		for (size_t k = 0; k < t->npk; k++)
			tz_sql__column_value(q, (int)k, &kv[k]);
		tz_buf_clear(&key);
		if ((rc = tz_key_encode(&key, kv, t->npk)) < 0 ||
		    (rc = tz_hmap__upsert(out, key.data, key.len, &sl, &added)) < 0)
			goto done;
	}
	rc = step == SQLITE_DONE ? TZ_OK : tz_sql__error(s, step, "cannot read the change log");
done:
	tz_buf_release(&key);
	sqlite3_finalize(q);
	return rc;
}

/* Compare one scanned row with the head; mark it seen. */
static int check_row(verify_ctx *v, const tz_table *t, head_rows *h, const tz_hmap *dirty, tz_buf *blob,
		     tz_buf *part, tz_buf *key)
{
	tz_hmap_slot *sl;
	tz_oid oid;

	if (tz_hmap__get(dirty, key->data, key->len))
		return TZ_OK;   /* changed since the head: the log says so */
	if (git_odb_hash((git_oid *)oid.id, blob->data, blob->len, GIT_OBJECT_BLOB) < 0)
		return tz_git__error("cannot hash a row");
	sl = tz_hmap__get(&h->rows, key->data, key->len);
	if (sl == NULL)
		return issue(v, "row", "table '%s' key '%s': in store.db but not in the head, and not in the change log"
			     " (written behind the triggers' back?)", t->name, (const char *)key->data);
	sl->value |= UINT64_C(1) << 63;   /* seen */
	if (memcmp(&h->oids[(sl->value & ~(UINT64_C(1) << 63)) - 1], &oid, sizeof(oid)) != 0 ||
	    strcmp(h->parts[(sl->value & ~(UINT64_C(1) << 63)) - 1], (const char *)part->data) != 0)
		return issue(v, "row", "table '%s' key '%s': store.db differs from the head, and the change log"
			     " has no entry for it (changed behind the triggers' back?)", t->name, (const char *)key->data);
	return TZ_OK;
}

static int scan_table(verify_ctx *v, tz_table *t, head_rows *h, const tz_hmap *dirty)
{
	tz_buf blob = TZ_BUF_INIT, part = TZ_BUF_INIT, key = TZ_BUF_INIT;
	sqlite3_stmt *q = NULL;
	int rc, step;

	if ((rc = tz_schema__select_all(v->s, t, &q)) < 0)
		goto done;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		tz_buf_clear(&blob);
		tz_buf_clear(&part);
		tz_buf_clear(&key);
		v->r->rows++;
		if ((rc = tz_schema__encode_row(t, q, &blob, &part, &key)) < 0) {
			rc = issue(v, "row", "table '%s': a row cannot be encoded: %s", t->name, tz_error_last());
		} else {
			rc = check_row(v, t, h, dirty, &blob, &part, &key);
		}
		if (rc < 0)
			goto done;
	}
	rc = step == SQLITE_DONE ? TZ_OK : tz_sql__error(v->s, step, "cannot scan a table");
	for (size_t i = 0; rc == TZ_OK && i < h->rows.cap; i++) {
		const tz_hmap_slot *sl = &h->rows.slots[i];
		if (sl->used && !(sl->value >> 63) && !tz_hmap__get(dirty, sl->key, sl->klen))
			rc = issue(v, "row", "table '%s' key '%.*s': in the head but missing from store.db, and not in"
				   " the change log (deleted behind the triggers' back?)", t->name, (int)sl->klen,
				   (const char *)sl->key);
	}
done:
	sqlite3_finalize(q);
	tz_buf_release(&blob);
	tz_buf_release(&part);
	tz_buf_release(&key);
	return rc;
}

/* One table: its head rows against store.db and the log. */
static int check_table(verify_ctx *v, tz_table *t, const tz_tree *root)
{
	static const tz_oid zero;
	const tz_tree_entry *e = tz_tree__find(root, t->enc, strlen(t->enc));
	head_rows h;
	tz_hmap dirty;
	int rc;

	memset(&h, 0, sizeof(h));
	tz_hmap__init(&h.rows);
	tz_hmap__init(&dirty);
	h.v = v;
	h.table = t->name;
	if ((rc = dirty_keys(v->s, t, &dirty)) == TZ_OK && e &&
	    (rc = tz_tree__diff(v->s, NULL, &zero, &e->oid, collect_row, &h)) < 0 && rc != TZ_ENOMEM) {
		/* an unreadable tree: the object walk reported it */
		rc = issue(v, "row", "table '%s': rows not compared, its tree cannot be read: %s", t->name,
			   tz_error_last());
	} else if (rc == TZ_OK) {
		rc = scan_table(v, t, &h, &dirty);
	}
	head_rows_release(&h);
	tz_hmap__release(&dirty);
	return rc;
}

/* store.db == head + change log, table by table.  A table whose DDL
 * differs from the head's is rebuilt whole by the next commit: its rows
 * are not compared (they cannot match the old encoding). */
static int check_rows(verify_ctx *v, const tz_oid *head_tree)
{
	tz_tables ts = { 0, NULL };
	tz_tree root = { NULL, 0, NULL }, ht = { NULL, 0, NULL };
	int rc;

	if ((rc = tz_schema__load(v->s, &ts)) < 0)
		return rc;
	if (!tz_oid_is_zero(head_tree) &&
	    (tz_tree__read(v->s, NULL, head_tree, &root) < 0 || tz_schema__head_tables(v->s, head_tree, &ht) < 0)) {
		rc = TZ_OK;   /* already reported by the object walk */
		goto done;
	}
	for (size_t i = 0; i < ts.n && rc == TZ_OK; i++) {
		bool pending;
		if ((rc = tz_schema__ddl_changed(v->s, &ts.t[i], &ht, &pending)) == TZ_OK && !pending)
			rc = check_table(v, &ts.t[i], &root);
	}
done:
	tz_tree__release(&ht);
	tz_tree__release(&root);
	tz_schema__release(&ts);
	return rc;
}

int tz_store_verify(tz_store *s, tz_verify_result *result, tz_verify_cb cb, void *payload)
{
	verify_ctx v;
	tz_oid head, tree = { { 0 } };
	bool has;
	int rc;

	memset(result, 0, sizeof(*result));
	memset(&v, 0, sizeof(v));
	v.s = s;
	v.r = result;
	v.cb = cb;
	v.payload = payload;
	tz_hmap__init(&v.seen);
	/* every object read is hashed again (imports and commits trust the
	 * packs' zlib checksums, as git does) */
	s->check_hashes = true;
	/* one snapshot of store.db for the whole check */
	if ((rc = tz_sql__exec(s, "BEGIN")) < 0)
		goto done;
	if ((rc = tz_head__get(s, &has, &head)) == TZ_OK && has) {
		if ((rc = check_history(&v, &head)) == TZ_OK && tz_commit__tree(s, &head, &tree) < 0)
			tz_error_clear();   /* reported by check_history */
	}
	if (rc == TZ_OK)
		rc = check_rows(&v, &tree);
	sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
done:
	s->check_hashes = false;
	tz_hmap__release(&v.seen);
	return rc;
}

/*
 * sync_hq.c - HQ's import of a branch's bundle: rebuild, check,
 * integrate the branch's change into main (conflict/ decides the rows both
 * sides changed), commit the branch's new view (docs/protocol.md, merge.md).
 */
#include "store/sync_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- HQ import ---- */

/* The last-change stamps of rows on each side, for lww (built on the
 * first request: the _log of every commit on each side since the base). */
typedef struct {
	tz_store *s;
	tz_oid ours, ours_hide, theirs, theirs_hide;
	bool has_ours_hide;
	bool built;
	tz_hmap ours_map, theirs_map;   /* "<table>/<key>" -> HLC */
	int64_t skew_ms;
} stamp_ctx;

typedef struct {
	stamp_ctx *sc;
	const char *table, *key;
	size_t table_len, key_len;
} stamp_req;

typedef struct {
	tz_store *s;
	tz_staging *st;             /* the bundle's objects */
	tz_staging *mst;            /* merged rows */
	const char *code;
	tz_oid ours_root;           /* HQ's side: main with HQ's pending changes, then each segment */
	tz_tables ts;               /* HQ's tracked tables (main's schema) */
	tz_buf part;                /* the branch's partition name */
	size_t refused_cap;
	tz_change_list cl;             /* the rows to apply to main */
	tz_import_result *res;
	tz_merger *m;
	stamp_ctx *sc;
	uint64_t both;              /* rows both sides changed (asked of the merger) */
	tz_rights *rights;          /* columns only HQ changes (rights.c) */
	tz_oid theirs_root;         /* the stretch's tip tree */
} integrate_ctx;

static int refuse(integrate_ctx *x, const char *const *comp, const size_t *len, size_t depth, const char *why)
{
	tz_import_result *r = x->res;
	tz_refused *f;

	if (tz_array_grow(&r->refused, &x->refused_cap, r->nrefused, sizeof(*r->refused)) < 0)
		return TZ_ENOMEM;
	f = &r->refused[r->nrefused++];
	memset(f, 0, sizeof(*f));
	f->why = why;
	f->table = tz_strndup(comp[0], len[0]);
	f->partition = tz_strndup(depth > 1 ? comp[1] : "", depth > 1 ? len[1] : 0);
	f->key = tz_strndup(depth == TZ_PATH_DEPTH ? comp[4] : "", depth == TZ_PATH_DEPTH ? len[4] : 0);
	if (depth != TZ_PATH_DEPTH && depth > 1) {
		/* a _schema path: name it whole */
		tz_buf p = TZ_BUF_INIT;
		for (size_t i = 1; i < depth; i++) {
			if (i > 1)
				tz_buf_putc(&p, '/');
			tz_buf_put(&p, comp[i], len[i]);
		}
		tz_free(f->key);
		f->key = (char *)tz_buf_detach(&p, &(size_t){ 0 });
	}
	return f->table && f->partition && f->key ? TZ_OK : TZ_ENOMEM;
}

/* Is the row blob `oid` a row of t whose key and owner give exactly this
 * path?  *why says what is wrong when not.  The path alone proves
 * nothing: store.db is written by the row's own key and columns. */
static int row_matches_path(integrate_ctx *x, const tz_table *t, const tz_oid *oid, const char *const *comp,
			    const size_t *len, const char **why)
{
	git_object_t type;
	git_odb_object *obj;
	const uint8_t *data;
	size_t n;
	tz_row *row = NULL;
	tz_value kv[TZ_KEY_MAX_COLUMNS];
	tz_buf key = TZ_BUF_INIT, part = TZ_BUF_INIT;
	int rc;

	*why = NULL;
	if ((rc = tz_obj__peek(x->s, x->st, oid, &type, &data, &n, &obj)) < 0)
		return rc;
	if (type != GIT_OBJECT_BLOB || (rc = tz_row_decode(&row, data, n)) < 0) {
		/* out of memory fails the import; only bytes that are no row
		 * make a refusal (t08's allocation sweep: a failed allocation
		 * here dropped the row as "not a row" and the import exited 0) */
		if (rc == TZ_ENOMEM)
			goto done;
		rc = TZ_OK;
		tz_error_clear();
		*why = "not a row";
		goto done;
	}
	if (row->ncols != t->ncols) {
		*why = "not the table's columns";
		goto done;
	}
	for (size_t c = 0; c < t->ncols; c++)
		if (row->cols[c].name_len != strlen(t->cols[c].name) ||
		    memcmp(row->cols[c].name, t->cols[c].name, row->cols[c].name_len) != 0) {
			*why = "not the table's columns";
			goto done;
		}
	for (size_t k = 0; k < t->npk; k++)
		kv[k] = row->cols[t->pk_idx[k]].v;
	if ((rc = tz_key_encode(&key, kv, t->npk)) < 0 ||
	    (rc = tz_schema__partition(&part, t, t->owner_idx >= 0 ? &row->cols[t->owner_idx].v : NULL)) < 0)
		goto done;
	if (key.len != len[4] || memcmp(key.data, comp[4], len[4]) != 0)
		*why = "the row's key is not its path's";
	else if (part.len != len[1] || memcmp(part.data, comp[1], len[1]) != 0)
		*why = "the row's owner is not its path's partition";
done:
	tz_buf_release(&key);
	tz_buf_release(&part);
	tz_row_free(row);
	git_odb_object_free(obj);
	return rc;
}

/* Owned tables: does HQ hold this key in another partition?  (Two branches
 * that created the same key: the integrity issue's duplicates.) */
static int key_elsewhere(integrate_ctx *x, tz_table *t, const char *const *comp, const size_t *len, bool *other)
{
	tz_buf part = TZ_BUF_INIT;
	bool found;
	int rc = tz_rights__partition_at_hq(x->s, t, comp[4], len[4], &part, &found);

	*other = rc == TZ_OK && found && (part.len != len[1] || memcmp(part.data, comp[1], len[1]) != 0);
	tz_buf_release(&part);
	return rc;
}

/* The HLC of each _log line of `commit`, into map (the latest per row). */
static int stamps_of_commit(tz_store *s, const tz_oid *commit, tz_hmap *map)
{
	static const char *const logc[1] = { "_log" };
	static const size_t logl[1] = { 4 };
	tz_oid root, log;
	git_object_t type;
	uint8_t *data = NULL;
	size_t n;
	int rc;

	if ((rc = tz_commit__tree(s, commit, &root)) < 0 || (rc = tz_tree__lookup(s, NULL, &log, &root, logc, logl, 1)) < 0)
		return rc;
	if (tz_oid_is_zero(&log) || (rc = tz_obj__read(s, NULL, &log, &type, &data, &n)) < 0)
		return rc;
	for (size_t i = 0; i < n;) {
		const char *line = (const char *)data + i, *end = memchr(line, '\n', n - i), *sp;
		size_t ll = end ? (size_t)(end - line) : n - i;
		i += ll + 1;
		/* <hlc: 16 hex> <op> <table> <key> */
		if (ll < 21 || line[16] != ' ' || line[18] != ' ')
			continue;
		char hex[17];
		memcpy(hex, line, 16);
		hex[16] = '\0';
		uint64_t hlc = strtoull(hex, NULL, 16);
		const char *path = line + 19;
		size_t pl = ll - 19;
		if ((sp = memchr(path, ' ', pl)) == NULL)
			continue;
		char *k = tz_malloc(pl);
		if (k == NULL) {
			rc = TZ_ENOMEM;
			break;
		}
		memcpy(k, path, pl);
		k[sp - path] = '/';
		tz_hmap_slot *slot;
		bool added;
		rc = tz_hmap__upsert(map, k, pl, &slot, &added);
		tz_free(k);
		if (rc < 0)
			break;
		if (added || slot->value < hlc)
			slot->value = hlc;
	}
	tz_free(data);
	return rc;
}

static int stamps_walk(tz_store *s, const tz_oid *push, const tz_oid *hide, tz_hmap *map)
{
	git_revwalk *w = NULL;
	git_oid id;
	int rc = TZ_OK, r;

	if (git_revwalk_new(&w, s->repo) < 0 || git_revwalk_push(w, (const git_oid *)push->id) < 0 ||
	    (hide && git_revwalk_hide(w, (const git_oid *)hide->id) < 0)) {
		git_revwalk_free(w);
		return tz_git__error("cannot walk the history for lww stamps");
	}
	while (rc == TZ_OK && (r = git_revwalk_next(&id, w)) == 0) {
		tz_oid c;
		memcpy(c.id, id.id, 20);
		rc = stamps_of_commit(s, &c, map);
	}
	if (rc == TZ_OK && r != GIT_ITEROVER)
		rc = tz_git__error("cannot walk the history for lww stamps");
	git_revwalk_free(w);
	return rc;
}

static int row_stamps(void *ctx, tz_merge_stamps *out)
{
	stamp_req *q = ctx;
	stamp_ctx *sc = q->sc;
	tz_hmap_slot *slot;
	char *k;
	int rc;

	if (!sc->built) {
		if ((rc = stamps_walk(sc->s, &sc->theirs, &sc->theirs_hide, &sc->theirs_map)) < 0 ||
		    (rc = stamps_walk(sc->s, &sc->ours, sc->has_ours_hide ? &sc->ours_hide : NULL, &sc->ours_map)) < 0)
			return rc;
		sc->built = true;
	}
	if ((k = tz_malloc(q->table_len + q->key_len + 1)) == NULL)
		return TZ_ENOMEM;
	memcpy(k, q->table, q->table_len);
	k[q->table_len] = '/';
	memcpy(k + q->table_len + 1, q->key, q->key_len);
	slot = tz_hmap__get(&sc->ours_map, k, q->table_len + q->key_len + 1);
	out->ours = slot ? slot->value : 0;
	slot = tz_hmap__get(&sc->theirs_map, k, q->table_len + q->key_len + 1);
	out->theirs = slot ? slot->value : 0;
	out->skew_ms = sc->skew_ms;
	tz_free(k);
	return TZ_OK;
}

/* A row both HQ and the branch changed since the base: the merger decides
 * (conflict/); the merged row goes to main unless it is main's already. */
static int merge_row(integrate_ctx *x, const tz_table *t, const char *const *comp, const size_t *len, size_t depth,
		     const tz_oid *base, const tz_oid *ours, const tz_oid *theirs)
{
	tz_row *rb = NULL, *ro = NULL, *rt = NULL;
	tz_buf out = TZ_BUF_INIT;
	char *part = NULL;
	tz_merge_request rq;
	stamp_req sq = { x->sc, comp[0], comp[4], len[0], len[4] };
	tz_oid merged = { { 0 } };
	bool absent = false;
	int rc;

	x->both++;
	if ((part = tz_strndup(comp[1], len[1])) == NULL)
		return TZ_ENOMEM;
	if ((rc = tz_obj__read_row(x->s, x->st, base, &rb)) < 0 || (rc = tz_obj__read_row(x->s, x->st, ours, &ro)) < 0 ||
	    (rc = tz_obj__read_row(x->s, x->st, theirs, &rt)) < 0)
		goto done;
	memset(&rq, 0, sizeof(rq));
	rq.code = x->code;
	rq.table = t->name;
	rq.partition = part;
	rq.key = comp[4];
	rq.key_len = len[4];
	rq.owner = t->scope == TZ_SCOPE_OWNED ? part : NULL;
	rq.base = rb;
	rq.ours = ro;
	rq.theirs = rt;
	rq.stamps = row_stamps;
	rq.stamps_ctx = &sq;
	if ((rc = x->m->ops->row(x->m, &rq, &out, &absent)) < 0)
		goto done;
	if (!absent && (rc = tz_staging__add(x->s, x->mst, &merged, GIT_OBJECT_BLOB, out.data ? out.data : (uint8_t *)"",
					      out.len)) < 0)
		goto done;
	if (memcmp(&merged, ours, sizeof(merged)) != 0)
		rc = tz_sync__change_list_add(&x->cl, comp, len, depth, &merged);
done:
	tz_buf_release(&out);
	tz_row_free(rb);
	tz_row_free(ro);
	tz_row_free(rt);
	tz_free(part);
	return rc;
}

/* One row the branch changed since what HQ last integrated from it. */
static int integrate_row(const char *const *comp, const size_t *len, size_t depth, const tz_oid *base,
			 const tz_oid *theirs, void *payload)
{
	integrate_ctx *x = payload;
	tz_table *t = NULL;
	tz_oid ours;
	const char *why;
	int rc;

	if (depth == 1 && len[0] == 4 && memcmp(comp[0], "_log", 4) == 0)
		return TZ_OK;   /* the branch's record of its own changes */
	if (comp[0][0] == '_')
		return refuse(x, comp, len, depth, "only HQ changes the schema");
	if (depth != TZ_PATH_DEPTH)
		return refuse(x, comp, len, depth, "not a row");
	for (size_t i = 0; i < x->ts.n && t == NULL; i++)
		if (strlen(x->ts.t[i].enc) == len[0] && memcmp(x->ts.t[i].enc, comp[0], len[0]) == 0)
			t = &x->ts.t[i];
	/* [P9] what a branch may write: its own partitions, shared tables */
	if (t == NULL)
		return refuse(x, comp, len, depth, "table not tracked at HQ");
	if (t->scope == TZ_SCOPE_HQ)
		return refuse(x, comp, len, depth, "an hq table: only HQ writes it");
	bool given = false, moved;
	if (t->scope == TZ_SCOPE_OWNED && (len[1] != x->part.len || memcmp(comp[1], x->part.data, len[1]) != 0)) {
		/* the owner may give its row to another branch (rights.c) */
		if ((rc = tz_rights__given(x->s, x->st, t, comp, len, base, theirs, &x->theirs_root, &x->part, &given)) < 0)
			return rc;
		if (!given)
			return refuse(x, comp, len, depth, "another branch's partition");
	}
	if ((rc = tz_rights__columns(x->s, x->st, x->rights, t, base, theirs, &why)) < 0)
		return rc;
	if (why && (rc = refuse(x, comp, len, depth, why)) == TZ_OK) {
		x->res->refused[x->res->nrefused - 1].has_base = true;   /* the entry lists what the branch changed */
		x->res->refused[x->res->nrefused - 1].base = *base;
	}
	if (why)
		return rc;
	if (!tz_oid_is_zero(theirs)) {
		bool other;
		if ((rc = row_matches_path(x, t, theirs, comp, len, &why)) < 0)
			return rc;
		if (why)
			return refuse(x, comp, len, depth, why);
		if (t->scope == TZ_SCOPE_OWNED && tz_oid_is_zero(base) && !given) {
			if ((rc = key_elsewhere(x, t, comp, len, &other)) < 0)
				return rc;
			if (other)
				return refuse(x, comp, len, depth, "the key is another branch's row at HQ");
		}
	} else if (tz_oid_is_zero(base)) {
		return TZ_OK;
	}
	if ((rc = tz_tree__lookup(x->s, x->st, &ours, &x->ours_root, comp, len, depth)) < 0)
		return rc;
	if (memcmp(&ours, theirs, sizeof(ours)) == 0)
		return TZ_OK;   /* main has it already */
	if ((rc = tz_rights__moved_away(x->s, t, comp, len, base, &ours, theirs, &moved)) < 0)
		return rc;
	if (moved && (rc = refuse(x, comp, len, depth, "the row moved to another branch: this change is queued")) == TZ_OK) {
		x->res->refused[x->res->nrefused - 1].has_base = true;
		x->res->refused[x->res->nrefused - 1].base = *base;
	}
	if (moved)
		return rc;
	if (memcmp(&ours, base, sizeof(ours)) == 0)
		return tz_sync__change_list_add(&x->cl, comp, len, depth, theirs);
	/* changed on both sides since the base: the three-way merge */
	return merge_row(x, t, comp, len, depth, base, &ours, theirs);
}

/* A row the branch moved to a partition it may not write is a deletion
 * here and a refused addition there: the deletion is refused too, so the
 * row stays where HQ has it. */
static int keep_moved_rows(integrate_ctx *x)
{
	size_t keep = 0;
	int rc = TZ_OK;

	for (size_t i = 0; i < x->cl.n; i++) {
		tz_path_change *c = &x->cl.ch[i];
		bool moved = false;
		for (size_t r = 0; c->del && r < x->res->nrefused && !moved; r++) {
			const tz_refused *f = &x->res->refused[r];
			moved = strlen(f->table) == c->comp_len[0] && memcmp(f->table, c->comp[0], c->comp_len[0]) == 0 &&
				strlen(f->key) == c->comp_len[4] && memcmp(f->key, c->comp[4], c->comp_len[4]) == 0;
		}
		if (moved) {
			size_t len[TZ_PATH_DEPTH];
			tz_path_change__lens(c, len);
			if ((rc = refuse(x, c->comp, len, c->depth,
					 "moved to a partition the branch may not write: kept where it was")) < 0)
				return rc;
		}
		if (!moved)
			x->cl.ch[keep++] = *c;
	}
	x->cl.n = keep;
	return rc;
}

static void integrate_release(integrate_ctx *x)
{
	tz_schema__release(&x->ts);
	tz_rights__free(x->rights);
	tz_sync__change_list_release(&x->cl);
	tz_buf_release(&x->part);
}

/* What an HQ import records in its transaction besides the rows. */
typedef struct {
	const tz_pending_commit *pc;   /* HQ's pending changes sealed, or NULL */
	tz_merger *m;                  /* the queue's entries, or NULL */
	tz_oid ours_commit, merge;     /* HQ's side; the merge commit (zero: none) */
	tz_oid tip;
} hq_record;

static int record_hq(tz_store *s, const tz_incoming *in, const tz_rebuilt *b, const tz_apply_state *a,
		     const tz_oid *line, const tz_oid *received, bool bind, const hq_record *hr, tz_pack_job *job,
		     tz_import_result *res)
{
	sqlite3_stmt *q = NULL;
	char l[41], r[41], hex[33];
	int rc, step;

	if ((rc = tz_sql__exec(s, "BEGIN IMMEDIATE")) < 0)
		return rc;
	/* HQ's sealed pending entries go first, so that materialising leaves
	 * alone only what the application wrote since */
	if ((hr && hr->pc && (rc = tz_commit__record_pending(s, hr->pc)) < 0) ||
	    (rc = tz_sync__materialise_and_head(s, a, res)) < 0 || (rc = tz_sync__record_bundle(s, in, b->n)) < 0)
		goto fail;
	if (hr && hr->m &&
	    (rc = hr->m->ops->record(hr->m, s, in->sender, &hr->ours_commit, &hr->tip, &hr->merge)) < 0)
		goto fail;
	if (hr && hr->m && hr->m->ops->check) {
		tz_merge_done d = { in->sender, &hr->ours_commit, &hr->tip, &hr->merge, a->from_root, a->to_root,
				    res->refused, res->nrefused };
		s->held = a->st;
		rc = hr->m->ops->check(hr->m, s, &d);
		s->held = NULL;
		if (rc < 0)
			goto fail;
	}
	tz_oid_fmt(l, line);
	if (received)
		tz_oid_fmt(r, received);
	if ((rc = tz_sql__prepare(s, &q, "UPDATE tz_lines SET line = ?1, received = coalesce(?2, received)"
					 " WHERE code = ?3")) < 0)
		goto fail;
	sqlite3_bind_text(q, 1, l, -1, SQLITE_STATIC);
	if (received)
		sqlite3_bind_text(q, 2, r, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, in->sender, -1, SQLITE_STATIC);
	step = sqlite3_step(q);
	sqlite3_finalize(q);
	if (step != SQLITE_DONE) {
		rc = tz_sql__error(s, step, "cannot record the branch line");
		goto fail;
	}
	if (bind) {
		/* [P3] the key is bound to the code and the store instance; the
		 * secret is spent */
		tz_sync__hex_of(hex, in->instance, 16);
		if ((rc = tz_sql__prepare(s, &q, "UPDATE tz_keys SET pk = ?1, instance = ?2, secret = NULL"
						 " WHERE principal = ?3 AND pk IS NULL")) < 0)
			goto fail;
		sqlite3_bind_blob(q, 1, in->bind_pk, TZ_PK_BYTES, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, hex, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 3, in->sender, -1, SQLITE_STATIC);
		step = sqlite3_step(q);
		sqlite3_finalize(q);
		if (step != SQLITE_DONE) {
			rc = tz_sql__error(s, step, "cannot bind the branch's key");
			goto fail;
		}
	}
	/* the merge's objects, written meanwhile, are in a pack before the
	 * import is recorded */
	if ((job && (rc = tz_pack__finish(s, job)) < 0) || (rc = tz_sql__exec(s, "COMMIT")) < 0)
		goto fail;
	return TZ_OK;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* The tree HQ diffs the branch's head against: the branch's base (the
 * HQ view it last integrated), or the branch head HQ integrated last when
 * that is newer and the new head descends from it (rows HQ has already
 * taken from the branch are then not counted again). */
static int diff_from(tz_store *s, const tz_oid *base, const tz_oid *received, bool has_received, const tz_oid *tip,
		     tz_oid *from)
{
	bool newer = false, descends = false;
	int rc;

	*from = *base;
	if (!has_received)
		return TZ_OK;
	if ((rc = tz_sync__is_ancestor(s, base, received, &newer)) < 0 ||
	    (rc = tz_sync__is_ancestor(s, received, tip, &descends)) < 0)
		return rc;
	if (newer && descends)
		*from = *received;
	return TZ_OK;
}

/* [P2] the base a branch commit names: a view HQ signed, on its line. */
static int check_base(tz_store *s, const tz_oid *base, const tz_oid *line, const char *code)
{
	uint8_t *raw = NULL, pk[TZ_PK_BYTES];
	size_t n;
	bool on_line = false;
	char hex[41];
	int rc = TZ_OK;

	tz_oid_fmt(hex, base);
	if (!git_odb_exists(s->odb, (const git_oid *)base->id) || (rc = tz_sync__is_ancestor(s, base, line, &on_line)) < 0 ||
	    !on_line || (rc = tz_commit__read_raw(s, NULL, base, &raw, &n)) < 0 ||
	    (rc = tz_commit__raw_signer(raw, n, pk)) < 0 || !tz_ct_equal(pk, s->kp.pk, TZ_PK_BYTES)) {
		tz_error_clear();
		rc = tz_error_set(TZ_EPROTO, "the bundle's base %s is not a view HQ sent to %s", hex, code);
	}
	tz_free(raw);
	return rc;
}

/* The HLC trailer of a raw commit (0 when it has none). */
static uint64_t raw_hlc(const uint8_t *raw, size_t n)
{
	static const char key[] = "\nTazamun-HLC: ";
	const size_t kl = sizeof(key) - 1;

	for (size_t i = 0; i + kl + 16 <= n; i++)
		if (memcmp(raw + i, key, kl) == 0) {
			char hex[17];
			memcpy(hex, raw + i + kl, 16);
			hex[16] = '\0';
			return strtoull(hex, NULL, 16);
		}
	return 0;
}

/* Integrate one stretch of the branch's history, `from` (exclusive) to
 * `tip`, into x->ours_root: the rows the branch changed, merged with HQ's
 * where both changed.  Unless it is the last (its objects go with the
 * merge commit's, tz_sync__import_hq), the stretch's objects are written
 * as a pack, so the next stretch (and libgit2) can read them. */
static int integrate_segment(integrate_ctx *x, const tz_oid *from, const tz_oid *tip, bool last, uint64_t *rows)
{
	tz_oid from_tree, tip_tree, merged_root;
	bool empty;
	int rc;

	tz_sync__change_list_release(&x->cl);
	memset(&x->cl, 0, sizeof(x->cl));
	if ((rc = tz_commit__tree(x->s, from, &from_tree)) < 0 || (rc = tz_commit__tree(x->s, tip, &tip_tree)) < 0)
		return rc;
	x->theirs_root = tip_tree;
	if ((rc = tz_tree__diff(x->s, x->st, &from_tree, &tip_tree, integrate_row, x)) < 0 || (rc = keep_moved_rows(x)) < 0)
		return rc;
	if (x->cl.n > 0) {
		if (x->cl.n > 1)
			qsort(x->cl.ch, x->cl.n, sizeof(*x->cl.ch), tz_path_change__cmp);
		if ((rc = tz_tree__apply(x->s, x->mst, &merged_root, &empty, &x->ours_root, 0, x->cl.ch, x->cl.n)) < 0 ||
		    (!last && (rc = tz_pack__write(x->s, x->mst)) < 0))
			return rc;
		x->ours_root = merged_root;
		*rows += x->cl.n;
	}
	return TZ_OK;
}

/* [P15 at HQ] The stretches of the bundle to integrate.  A branch's merge
 * of an answer (two parents) adds nothing the branch typed: its tree is
 * HQ's answer with the branch's newer rows on top, which the stretch
 * before it brings.  So the stretch before a merge is diffed from what HQ
 * last integrated, and the one after from the merge itself: a local edit
 * that won locally over HQ's value is decided here by the policies, never
 * taken as a change made after HQ's answer. */
static int integrate_bundle(integrate_ctx *x, const tz_rebuilt *b, size_t start, const tz_oid *from, uint64_t *rows)
{
	tz_oid seg_from = *from;
	int rc = TZ_OK;

	for (size_t i = start; i < b->n && rc == TZ_OK; i++) {
		tz_oid tree, par[TZ_COMMIT_MAX_PARENTS];
		size_t np;
		if ((rc = tz_commit__parse(x->s, &b->st, &b->commits[i], &tree, par, TZ_COMMIT_MAX_PARENTS, &np)) < 0)
			break;
		if (np < 2)
			continue;
		/* the stretch up to the merge's first parent, then from the merge;
		 * none before it when the stretch starts at the merge itself
		 * (first_from: the bundle's first new commit is a merge), else
		 * the diff would run backwards, from the merge to its parent,
		 * and undo HQ's answer (tests/sim seed 105) */
		if (memcmp(&par[0], &seg_from, sizeof(tz_oid)) != 0 &&
		    memcmp(&b->commits[i], &seg_from, sizeof(tz_oid)) != 0)
			rc = integrate_segment(x, &seg_from, &par[0], false, rows);
		seg_from = b->commits[i];
	}
	if (rc == TZ_OK && memcmp(&b->commits[b->n - 1], &seg_from, sizeof(tz_oid)) != 0)
		rc = integrate_segment(x, &seg_from, &b->commits[b->n - 1], true, rows);
	return rc;
}

/* How many of the bundle's first commits HQ has integrated already (a
 * branch that exported again before HQ's answer reached it sends them
 * again): they are ancestors of the branch head HQ received last. */
static int integrated_prefix(tz_store *s, const tz_rebuilt *b, const tz_oid *received, bool has_received, size_t *start)
{
	int rc = TZ_OK;
	bool anc = true;

	*start = 0;
	while (has_received && anc && *start < b->n) {
		if ((rc = tz_sync__is_ancestor(s, &b->commits[*start], received, &anc)) < 0)
			return rc;
		*start += anc;
	}
	return rc;
}

/* Where the first stretch of the bundle to integrate starts (from commit
 * `start` on): the branch head HQ received last when the commits before
 * `start` were integrated already; else what HQ last integrated from the
 * branch, for the commits before the branch's first merge of an answer
 * (their own Tazamun-Base, checked like the tip's); the merge itself when
 * the stretch starts with one.  *base: the HQ view that stretch builds on
 * (HQ's lww stamps count from the main commit it was made from). */
static int first_from(tz_store *s, const tz_rebuilt *b, size_t start, const tz_oid *line, const char *code,
		      const tz_oid *received, bool has_received, tz_oid *from, tz_oid *base)
{
	uint8_t *raw = NULL;
	size_t k = start, len;
	bool found;
	int rc = TZ_OK;

	for (; k < b->n; k++) {
		tz_oid tree, par[TZ_COMMIT_MAX_PARENTS];
		size_t np;
		if ((rc = tz_commit__parse(s, &b->st, &b->commits[k], &tree, par, TZ_COMMIT_MAX_PARENTS, &np)) < 0)
			return rc;
		if (np >= 2)
			break;
	}
	/* the view the first stretch (or, when there is none, the tip) builds on */
	if ((rc = tz_commit__read_raw(s, &b->st, &b->commits[k > start ? k - 1 : b->n - 1], &raw, &len)) < 0 ||
	    (rc = tz_commit__raw_trailer(raw, len, "Tazamun-Base", base, &found)) < 0)
		goto done;
	if (!found) {
		rc = tz_error_set(TZ_EPROTO, "a commit of the bundle names no Tazamun-Base");
		goto done;
	}
	if (start > 0)
		*from = *received;
	else if (k == start)
		*from = b->commits[k];
	else if ((rc = check_base(s, base, line, code)) == TZ_OK)
		rc = diff_from(s, base, received, has_received, &b->commits[k - 1], from);
done:
	tz_free(raw);
	return rc;
}

int tz_sync__import_hq(tz_store *s, const tz_incoming *in, tz_buf *payload, tz_merger *m, tz_import_result *res)
{
	tz_rebuilt b;
	tz_pack_job job = { 0 }, mjob = { 0 };
	integrate_ctx x;
	stamp_ctx sc;
	tz_key_info k;
	tz_pending_commit pc;
	hq_record hr;
	tz_oid line, received, enrolled, tip, base, base1, from, new_root;
	tz_oid merge = { { 0 } }, view_root, view, head, parents[TZ_COMMIT_MAX_PARENTS];
	tz_staging mst, vst;
	uint8_t keys[1][TZ_PK_BYTES];
	uint8_t *raw = NULL;
	size_t rawlen, np, start = 0;
	bool found, has_received, has_head, on_line, anc, bind;
	char hex[41], msg[512];
	tz_apply_state a;
	uint64_t rows = 0;
	int64_t ver;
	int rc;

	memset(&b, 0, sizeof(b));
	memset(&x, 0, sizeof(x));
	memset(&a, 0, sizeof(a));
	memset(&sc, 0, sizeof(sc));
	memset(&pc, 0, sizeof(pc));
	memset(&hr, 0, sizeof(hr));
	tz_staging__init(&mst);
	tz_staging__init(&vst);
	tz_staging__init(&b.st);
	/* the merge's objects, written stretch by stretch (and in chunks when
	 * big); what stays held is read again by materialising */
	mst.spill = TZ_STAGING_SPILL_BYTES;
	mst.also = &b.st;
	tz_hmap__init(&sc.ours_map);
	tz_hmap__init(&sc.theirs_map);
	if (m == NULL) {
		rc = tz_error_set(TZ_EINVAL, "an import at HQ needs a merger (conflict/)");
		goto done;
	}
	if ((rc = tz_registry__get(s, in->sender, &k, NULL, &found)) < 0)
		goto done;
	if (!found || strcmp(k.role, "branch") != 0) {
		rc = tz_error_set(TZ_ENOTFOUND, "unknown sender '%s'", in->sender);
		goto done;
	}
	bind = !k.has_pk;
	memcpy(keys[0], in->signer_pk, TZ_PK_BYTES);
	if ((rc = tz_sync__line_of(s, in->sender, &line, &received, &has_received, &enrolled, &found)) < 0)
		goto done;
	if (!found) {
		rc = tz_error_set(TZ_ECORRUPT, "branch '%s' has no line in tz_lines", in->sender);
		goto done;
	}
	/* [P2] the bundle builds on commits of the branch's line */
	for (size_t i = 0; i < in->nprereq; i++) {
		if (!git_odb_exists(s->odb, (const git_oid *)in->prereq[i].id))
			continue;   /* rebuild names it */
		if ((rc = tz_sync__is_ancestor(s, &in->prereq[i], &line, &on_line)) < 0)
			goto done;
		if (!on_line && has_received && (rc = tz_sync__is_ancestor(s, &in->prereq[i], &received, &on_line)) < 0)
			goto done;
		if (!on_line) {
			tz_oid_fmt(hex, &in->prereq[i]);
			rc = tz_error_set(TZ_EPROTO, "the bundle builds on commit %s, which is not on %s's line", hex,
					  in->sender);
			goto done;
		}
	}
	rc = tz_sync__rebuild(s, in, payload->data, payload->len, (const uint8_t(*)[TZ_PK_BYTES])keys, 1, &b);
	tz_sync__release_payload(payload);
	if (rc < 0)
		goto done;
	res->commits = b.n;
	res->commits_new = b.nnew;
	if ((rc = tz_sync__integrated(s, &b, has_received ? &received : NULL, &anc)) < 0)
		goto done;
	if (anc) {
		/* [P1] nothing HQ has not integrated: the sequence is still spent */
		res->noop = true;
		res->noop_why = "HQ already has every commit of the bundle";
		/* a binding on such a bundle is proven all the same */
		rc = record_hq(s, in, &b, &a, &line, NULL, bind, NULL, NULL, res);
		goto done;
	}
	tip = b.commits[b.n - 1];
	/* the branch's base: the HQ view it last integrated */
	if ((rc = tz_commit__read_raw(s, &b.st, &tip, &raw, &rawlen)) < 0 ||
	    (rc = tz_commit__raw_trailer(raw, rawlen, "Tazamun-Base", &base, &found)) < 0)
		goto done;
	if (!found) {
		tz_oid_fmt(hex, &tip);
		rc = tz_error_set(TZ_EPROTO, "commit %s names no Tazamun-Base", hex);
		goto done;
	}
	/* lww: how far the branch's clock runs ahead of HQ's (its newest
	 * commit stamp; a local merge carries none) */
	{
		uint64_t hlc = 0;
		int64_t now = (int64_t)time(NULL) * 1000, branch_ms;
		for (size_t i = 0; i < b.n && rc == TZ_OK; i++) {
			uint8_t *r = NULL;
			size_t rl;
			if ((rc = tz_commit__read_raw(s, &b.st, &b.commits[i], &r, &rl)) == TZ_OK && raw_hlc(r, rl) > hlc)
				hlc = raw_hlc(r, rl);
			tz_free(r);
		}
		if (rc < 0)
			goto done;
		branch_ms = (int64_t)(hlc >> 16);
		sc.skew_ms = branch_ms > now ? branch_ms - now : 0;
	}
	/* the rebuilt commits are checked and signed: their objects go in now
	 * (unreferenced until the import is recorded), a thread writing them
	 * while the merge goes on; libgit2 reads them from memory meanwhile,
	 * so that ancestry can be asked of it (tz_pack__start) */
	if ((rc = check_base(s, &base, &line, in->sender)) < 0 || (rc = tz_pack__start(s, &b.st, &job)) < 0 ||
	    (rc = integrated_prefix(s, &b, &received, has_received, &start)) < 0 ||
	    (rc = first_from(s, &b, start, &line, in->sender, &received, has_received, &from, &base1)) < 0)
		goto done;
	/* [P10] HQ's pending changes are HQ's side of the merge: sealed as
	 * HQ's own commit, recorded in the import's transaction */
	if ((rc = tz_head__get(s, &has_head, &head)) < 0 || (rc = tz_commit__pending(s, &pc)) < 0)
		goto done;
	hr.pc = &pc;
	hr.m = m;
	hr.ours_commit = pc.made ? pc.commit : head;
	hr.tip = tip;
	/* lww stamps: the branch's since `from`, HQ's since the main commit
	 * the base view was made from */
	sc.s = s;
	sc.ours = hr.ours_commit;
	sc.theirs = tip;
	sc.theirs_hide = from;
	tz_free(raw);
	raw = NULL;
	if ((rc = tz_commit__read_raw(s, NULL, &base1, &raw, &rawlen)) < 0 ||
	    (rc = tz_commit__raw_trailer(raw, rawlen, "Tazamun-From", &sc.ours_hide, &sc.has_ours_hide)) < 0)
		goto done;
	x.s = s;
	x.st = &b.st;
	x.mst = &mst;
	x.code = in->sender;
	x.ours_root = pc.root;
	x.res = res;
	x.m = m;
	x.sc = &sc;
	if ((rc = tz_schema__load(s, &x.ts)) < 0 || (rc = tz_sync__code_partition(&x.part, in->sender)) < 0 ||
	    (rc = tz_rights__load(s, &x.rights)) < 0 || (rc = integrate_bundle(&x, &b, start, &from, &rows)) < 0)
		goto done;
	new_root = pc.root;
	if (rows > 0 || x.both > 0) {
		/* the merge commit: rows taken or merged, or entries queued
		 * against it */
		if ((rc = tz_sync__with_empty_log(s, &mst, &x.ours_root, &new_root)) < 0 ||
		    (rc = tz_sync__schema_version(s, &ver)) < 0)
			goto done;
		tz_oid_fmt(hex, &tip);
		snprintf(msg, sizeof(msg), "merge %s: %llu rows, %llu changed on both sides\n\nTazamun-Replica: HQ\n"
			 "Tazamun-Schema: %lld\nTazamun-Merged: %s\n", in->sender, (unsigned long long)rows,
			 (unsigned long long)x.both, (long long)ver, hex);
		parents[0] = hr.ours_commit;
		parents[1] = tip;
		if ((rc = tz_commit__build(s, &mst, &merge, &new_root, parents, 2, s->code, &s->kp, msg)) < 0)
			goto done;
		res->rows_merged = rows;
	}
	/* the rebuilt commit's pack is written; the merge's is written while
	 * store.db is brought to it */
	if ((rc = tz_sync__view_tree(s, &mst, &new_root, in->sender, &view_root)) < 0 ||
	    (rc = tz_pack__finish(s, &job)) < 0 || (rc = tz_pack__start(s, &mst, &mjob)) < 0)
		goto done;
	hr.merge = merge;
	a.set_head = !tz_oid_is_zero(&merge) || pc.made;
	a.head = !tz_oid_is_zero(&merge) ? merge : pc.made ? pc.commit : head;
	/* the view: the acknowledgement on the branch's line */
	parents[0] = tip;
	np = 1;
	if ((rc = tz_sync__is_ancestor(s, &line, &tip, &anc)) < 0)
		goto done;
	if (!anc)
		parents[np++] = line;   /* keep the views the branch has not seen */
	if ((rc = tz_sync__schema_version(s, &ver)) < 0)
		goto done;
	tz_oid_fmt(hex, &tip);
	{
		char from_hex[41];
		tz_oid_fmt(from_hex, &a.head);
		snprintf(msg, sizeof(msg), "view for %s\n\nTazamun-Replica: HQ\nTazamun-Schema: %lld\nTazamun-Ack: %s\n"
			 "Tazamun-From: %s\n", in->sender, (long long)ver, hex, from_hex);
	}
	if ((rc = tz_commit__build(s, &vst, &view, &view_root, parents, np, s->code, &s->kp, msg)) < 0 ||
	    (rc = tz_pack__write(s, &vst)) < 0)
		goto done;
	a.from_root = &pc.root;
	a.to_root = &new_root;
	a.st = &mst;
	if ((rc = record_hq(s, in, &b, &a, &view, &tip, bind, &hr, &mjob, res)) < 0)
		goto done;
	res->line = view;
	res->head = a.head;
	snprintf(msg, sizeof(msg), "refs/heads/branches/%s", in->sender);
	/* durable in store.db; a failed ref update is redone by the next open */
	if ((a.set_head && tz_ref__set(s, &a.head, "import: merge branch") < 0) ||
	    tz_ref__set_name(s, msg, &view, "import: view") < 0)
		tz_error_clear();
done:
	tz_pack__abandon(s, &job);
	tz_pack__abandon(s, &mjob);
	tz_free(raw);
	integrate_release(&x);
	tz_hmap__release(&sc.ours_map);
	tz_hmap__release(&sc.theirs_map);
	tz_staging__release(&mst);
	tz_staging__release(&vst);
	tz_sync__rebuilt_release(&b);
	return rc;
}

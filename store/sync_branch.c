/*
 * sync_branch.c - a branch's import of HQ's reply: rebuild, fast-forward or
 * merge its newer local commits on top (docs/merge.md "At the branch").
 */
#include "store/sync_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- branch import ---- */

/* Do two roots declare the same tables?  A reply that changes the schema
 * needs a migration at the branch, which is not built yet. */
static int same_declarations(tz_store *s, const tz_oid *a, const tz_oid *b)
{
	tz_tree ta = { NULL, 0, NULL }, tb = { NULL, 0, NULL };
	bool same = false;
	int rc;

	if ((rc = tz_tree__read(s, NULL, a, &ta)) == TZ_OK && (rc = tz_tree__read(s, NULL, b, &tb)) == TZ_OK)
		rc = tz_schema__same_declarations(s, &ta, &tb, &same);
	tz_tree__release(&ta);
	tz_tree__release(&tb);
	if (rc == TZ_OK && !same)
		rc = tz_error_set(TZ_EINVAL, "the bundle changes the schema; migrating a branch's schema is not "
				  "supported yet: nothing applied");
	return rc;
}

/* The merge units of a row of `table` (tz_group): tz_row_merge3's unit[]. */
static int units_for(tz_store *s, const char *table, const tz_row *r, int **out)
{
	sqlite3_stmt *q = NULL;
	char **names = NULL;
	size_t nnames = 0;
	int *u = tz_calloc(r->ncols ? r->ncols : 1, sizeof(*u));
	int rc = u ? tz_sql__prepare(s, &q, "SELECT grp FROM tz_group WHERE tbl = ?1 AND col = ?2") : TZ_ENOMEM;

	if ((names = tz_calloc(r->ncols ? r->ncols : 1, sizeof(*names))) == NULL && rc == TZ_OK)
		rc = TZ_ENOMEM;
	for (size_t c = 0; c < r->ncols && rc == TZ_OK; c++) {
		u[c] = -1;
		sqlite3_reset(q);
		sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, r->cols[c].name, (int)r->cols[c].name_len, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW) {
			const char *g = (const char *)sqlite3_column_text(q, 0);
			size_t k = 0;
			while (k < nnames && strcmp(names[k], g) != 0)
				k++;
			if (k == nnames && (names[nnames++] = tz_strdup(g)) == NULL)
				rc = TZ_ENOMEM;
			u[c] = (int)k;
		}
	}
	sqlite3_finalize(q);
	for (size_t k = 0; k < nnames; k++)
		tz_free(names[k]);
	tz_free(names);
	if (rc < 0) {
		tz_free(u);
		u = NULL;
	}
	*out = u;
	return rc;
}

/* Local edits win locally: a unit both sides changed keeps the branch's
 * value (HQ decides it under its policies at the next push). */
static int local_wins(void *payload, const size_t *cols, size_t n, bool *take_theirs)
{
	(void)payload;
	(void)cols;
	(void)n;
	*take_theirs = false;
	return TZ_OK;
}

typedef struct {
	tz_store *s;
	tz_staging *st;             /* rows merged here (read through it too) */
	const tz_oid *answer;       /* the answer's root */
	const uint8_t *hq_pk;       /* who signs HQ's views */
	tz_tables ts;
	tz_change_list l;
} local_ctx;

/* [P15] A row the branch changed since the merge base: on top of HQ's
 * answer, column by column where the answer changed it too. */
static int collect_local(const char *const *comp, const size_t *len, size_t depth, const tz_oid *a, const tz_oid *b,
			 void *payload)
{
	local_ctx *lc = payload;
	tz_oid theirs, merged;
	tz_row *rb = NULL, *ro = NULL, *rt = NULL;
	tz_buf out = TZ_BUF_INIT;
	const tz_table *t = NULL;
	int *units = NULL;
	int rc;

	if (depth != TZ_PATH_DEPTH || comp[0][0] == '_')
		return TZ_OK;
	if ((rc = tz_tree__lookup(lc->s, lc->st, &theirs, lc->answer, comp, len, depth)) < 0)
		return rc;
	for (size_t i = 0; i < lc->ts.n && t == NULL; i++)
		if (strlen(lc->ts.t[i].enc) == len[0] && memcmp(lc->ts.t[i].enc, comp[0], len[0]) == 0)
			t = &lc->ts.t[i];
	/* the answer left it alone, or one side deleted it: the local row */
	if (t == NULL || memcmp(&theirs, a, sizeof(theirs)) == 0 || memcmp(&theirs, b, sizeof(theirs)) == 0 ||
	    tz_oid_is_zero(b) || tz_oid_is_zero(&theirs))
		return tz_sync__change_list_add(&lc->l, comp, len, depth, b);
	if ((rc = tz_obj__read_row(lc->s, lc->st, a, &rb)) == TZ_OK && (rc = tz_obj__read_row(lc->s, lc->st, b, &ro)) == TZ_OK &&
	    (rc = tz_obj__read_row(lc->s, lc->st, &theirs, &rt)) == TZ_OK && (rc = units_for(lc->s, t->name, ro, &units)) == TZ_OK &&
	    (rc = tz_row_merge3(rb, ro, rt, units, local_wins, NULL, &out)) == TZ_OK &&
	    (rc = tz_staging__add(lc->s, lc->st, &merged, GIT_OBJECT_BLOB, out.data, out.len)) == TZ_OK)
		rc = tz_sync__change_list_add(&lc->l, comp, len, depth, &merged);
	tz_free(units);
	tz_buf_release(&out);
	tz_row_free(rb);
	tz_row_free(ro);
	tz_row_free(rt);
	return rc;
}

/* The tree `ours_root` changed since `base_root`, merged on top of
 * `answer_root` (local units winning), into lc->st; *out its root. */
static int merge_local(local_ctx *lc, const tz_oid *base_root, const tz_oid *ours_root, const tz_oid *answer_root,
		       tz_oid *out)
{
	bool empty;
	int rc;

	tz_sync__change_list_release(&lc->l);
	memset(&lc->l, 0, sizeof(lc->l));
	lc->answer = answer_root;
	if ((rc = tz_tree__diff(lc->s, lc->st, base_root, ours_root, collect_local, lc)) < 0)
		return rc;
	if (lc->l.n > 1)
		qsort(lc->l.ch, lc->l.n, sizeof(*lc->l.ch), tz_path_change__cmp);
	return tz_tree__apply(lc->s, lc->st, out, &empty, answer_root, 0, lc->l.ch, lc->l.n);
}

static int record_branch(tz_store *s, const tz_incoming *in, const tz_rebuilt *b, const tz_apply_state *a,
			 const tz_oid *tip, tz_import_result *res)
{
	char hex[41];
	int rc;

	if ((rc = tz_sql__exec(s, "BEGIN IMMEDIATE")) < 0)
		return rc;
	if ((rc = tz_sync__materialise_and_head(s, a, res)) < 0 || (rc = tz_sync__record_bundle(s, in, b->n)) < 0)
		goto fail;
	if (tip) {
		tz_oid_fmt(hex, tip);
		if ((rc = tz_meta__set_text(s, "base", hex)) < 0)
			goto fail;
	}
	/* [P3] HQ answered: it holds our key; the secret is spent (and its
	 * bytes overwritten in the file: secure_delete) */
	if ((rc = tz_meta__set_int(s, "bound", 1)) < 0 ||
	    (rc = tz_sql__exec(s, "UPDATE tz_meta SET v = zeroblob(64) WHERE k = 'enrol_secret'")) < 0 ||
	    (rc = tz_sql__exec(s, "DELETE FROM tz_meta WHERE k = 'enrol_secret'")) < 0 ||
	    (rc = tz_sql__exec(s, "COMMIT")) < 0)
		goto fail;
	return TZ_OK;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* [P15] The base of the branch's merge of an answer: git's merge base,
 * unless that is not a descendant of the view the branch last imported
 * (tz_meta.base).  That happens in a criss-cross: the branch merged answer
 * A, then HQ's answer B joins the branch's older head and A; git may name
 * the older head, and rows A brought would count as the branch's own and
 * win over HQ's newer values in B (tests/sim seed 428; t15-harness-regressions).  The view is
 * then the base: what the branch knows of HQ for certain.  (local_base_root
 * merges the two candidates instead when they are one of each side.) */
static int local_merge_base(tz_store *s, const tz_oid *head, const tz_oid *tip, tz_oid *out)
{
	git_oid mb;
	tz_oid view;
	bool has_view, newer;
	int rc;

	if (git_merge_base(&mb, s->repo, (const git_oid *)head->id, (const git_oid *)tip->id) < 0)
		return tz_git__error("cannot find the merge base with HQ's answer");
	memcpy(out->id, mb.id, sizeof(out->id));
	if ((rc = tz_sync__oid_meta(s, "base", &view, &has_view)) < 0 || !has_view ||
	    (rc = tz_sync__is_ancestor(s, &view, out, &newer)) < 0 || newer)
		return rc;
	if ((rc = tz_sync__is_ancestor(s, &view, head, &newer)) < 0 || !newer ||
	    (rc = tz_sync__is_ancestor(s, &view, tip, &newer)) < 0 || !newer)
		return rc;
	*out = view;
	return TZ_OK;
}

/* Which of two commits the branch signed and which HQ did: *ok false
 * unless it is one of each. */
static int sides_of(local_ctx *lc, const git_oid *two, tz_oid *branch_side, tz_oid *hq_side, bool *ok)
{
	uint8_t pk[2][TZ_PK_BYTES];
	int rc = TZ_OK;

	*ok = false;
	for (int i = 0; i < 2 && rc == TZ_OK; i++) {
		uint8_t *raw = NULL;
		size_t n;
		tz_oid c;
		memcpy(c.id, two[i].id, sizeof(c.id));
		if ((rc = tz_commit__read_raw(lc->s, NULL, &c, &raw, &n)) == TZ_OK)
			rc = tz_commit__raw_signer(raw, n, pk[i]);
		tz_free(raw);
	}
	if (rc < 0)
		return rc;
	for (int i = 0; i < 2 && !*ok; i++)
		if (tz_ct_equal(pk[i], lc->s->kp.pk, TZ_PK_BYTES) && tz_ct_equal(pk[1 - i], lc->hq_pk, TZ_PK_BYTES)) {
			memcpy(branch_side->id, two[i].id, sizeof(branch_side->id));
			memcpy(hq_side->id, two[1 - i].id, sizeof(hq_side->id));
			*ok = true;
		}
	return TZ_OK;
}

#define TZ_VBASE_DEPTH 8        /* criss-crosses nested deeper take one base */

/* [P15] The root the branch's merge of an answer diffs its head from.  In
 * a criss-cross (the branch merged an answer A over a commit X it had
 * sent; HQ integrated X and answers B) head and B have two merge bases, X
 * and A, and neither is right: from A, the rows X changed count as local
 * again and keep the branch's values over HQ's decision on them (a row the
 * branch deleted and HQ kept stays deleted: sim seed 1735); from X, rows A
 * brought count as local (seed 428).  The base is then virtual, as in
 * git's recursive strategy: X merged on top of A the way the branch merged
 * them (its units winning), which is what the branch held after that
 * merge; later local commits are the only difference from it.  Anything
 * else (one base, or candidates that are not one of each side) takes
 * local_merge_base. */
static int local_base_root(local_ctx *lc, const tz_oid *head, const tz_oid *tip, int depth, tz_oid *root)
{
	git_oidarray bases = { NULL, 0 };
	tz_oid x, a, inner, x_root, a_root, mb;
	bool split = false;
	int rc = TZ_OK;

	if (git_merge_bases(&bases, lc->s->repo, (const git_oid *)head->id, (const git_oid *)tip->id) < 0)
		return tz_git__error("cannot find the merge bases with HQ's answer");
	if (bases.count == 2 && depth < TZ_VBASE_DEPTH)
		rc = sides_of(lc, bases.ids, &x, &a, &split);
	git_oidarray_dispose(&bases);
	if (rc < 0)
		return rc;
	if (!split) {
		if ((rc = local_merge_base(lc->s, head, tip, &mb)) < 0)
			return rc;
		return tz_commit__tree(lc->s, &mb, root);
	}
	if ((rc = local_base_root(lc, &x, &a, depth + 1, &inner)) < 0 || (rc = tz_commit__tree(lc->s, &x, &x_root)) < 0 ||
	    (rc = tz_commit__tree(lc->s, &a, &a_root)) < 0)
		return rc;
	return merge_local(lc, &inner, &x_root, &a_root, root);
}

/* [P14] The branch's pending change-log entries become a commit of its own
 * before HQ's answer is applied, as export seals them [P10]: the answer is
 * then merged under them [P15], they win locally, and HQ re-decides them
 * under the columns' policies at the next push (a column HQ's answer also
 * changed meets HQ's value there).  *head becomes the sealed commit. */
static int seal_pending(tz_store *s, tz_oid *head, tz_import_result *res)
{
	tz_commit_result cr;
	int rc;

	if ((rc = tz_store_commit(s, "import: the pending changes first", &cr)) < 0)
		return tz_error_wrap(rc, "cannot commit the pending changes before the import");
	if (cr.committed) {
		res->sealed = cr.entries;
		*head = res->head = cr.commit;
	}
	return TZ_OK;
}

int tz_sync__import_branch(tz_store *s, const tz_incoming *in, tz_buf *payload, tz_import_result *res)
{
	tz_rebuilt b;
	local_ctx lc;
	tz_key_info hq;
	tz_staging mst, vst;
	tz_oid head, head_root, tip, tip_root, mbase_root, new_root, merge, parents[2];
	uint8_t keys[2][TZ_PK_BYTES];
	bool found, has_head, anc;
	char hex[41], msg[512];
	tz_apply_state a;
	int64_t ver;
	int rc;

	memset(&b, 0, sizeof(b));
	memset(&lc, 0, sizeof(lc));
	memset(&a, 0, sizeof(a));
	tz_staging__init(&b.st);
	tz_staging__init(&mst);
	tz_staging__init(&vst);
	if ((rc = tz_registry__get(s, "HQ", &hq, NULL, &found)) < 0)
		goto done;
	if (!found || !hq.has_pk || strcmp(in->sender, "HQ") != 0) {
		rc = tz_error_set(TZ_EPERM, "a branch takes bundles from HQ only, not from '%s'", in->sender);
		goto done;
	}
	memcpy(keys[0], hq.pk, TZ_PK_BYTES);
	memcpy(keys[1], s->kp.pk, TZ_PK_BYTES);
	rc = tz_sync__rebuild(s, in, payload->data, payload->len, (const uint8_t(*)[TZ_PK_BYTES])keys, 2, &b);
	tz_sync__release_payload(payload);
	if (rc < 0 ||
	    (rc = tz_head__get(s, &has_head, &head)) < 0)
		goto done;
	res->commits = b.n;
	res->commits_new = b.nnew;
	if (!has_head) {
		rc = tz_error_set(TZ_EINVAL, "this store has no head: it was not enrolled");
		goto done;
	}
	res->head = head;
	if ((rc = tz_sync__integrated(s, &b, &head, &anc)) < 0)
		goto done;
	if (anc) {
		res->noop = true;
		res->noop_why = "this store already has every commit of the bundle";
		rc = record_branch(s, in, &b, &a, NULL, res);
		goto done;
	}
	/* only now, the bundle verified and new: a bad one leaves the store as it was */
	if ((rc = seal_pending(s, &head, res)) < 0)
		goto done;
	tip = b.commits[b.n - 1];
	if ((rc = tz_pack__write(s, &b.st)) < 0 || (rc = tz_commit__tree(s, &head, &head_root)) < 0 ||
	    (rc = tz_commit__tree(s, &tip, &tip_root)) < 0 ||
	    (rc = same_declarations(s, &head_root, &tip_root)) < 0 || (rc = tz_sync__is_ancestor(s, &head, &tip, &anc)) < 0)
		goto done;
	if (anc) {
		/* fast-forward */
		a.set_head = true;
		a.head = tip;
		a.from_root = &head_root;
		a.to_root = &tip_root;
		res->head = tip;
	} else {
		/* [P15] the branch committed meanwhile: its newer commits go on top of
		 * HQ's answer, local edits winning locally (HQ re-decides them at
		 * the next push) */
		tz_oid merged;
		/* a virtual base's objects stay in vst (never written): the
		 * merge reads through mst to them */
		lc.s = s;
		lc.st = &vst;
		lc.hq_pk = hq.pk;
		mst.also = &vst;
		if ((rc = tz_schema__load(s, &lc.ts)) < 0 || (rc = local_base_root(&lc, &head, &tip, 0, &mbase_root)) < 0)
			goto done;
		lc.st = &mst;
		if ((rc = merge_local(&lc, &mbase_root, &head_root, &tip_root, &merged)) < 0 ||
		    (rc = tz_sync__with_empty_log(s, &mst, &merged, &new_root)) < 0 || (rc = tz_sync__schema_version(s, &ver)) < 0)
			goto done;
		tz_oid_fmt(hex, &tip);
		snprintf(msg, sizeof(msg), "%s: merge HQ's answer under %zu local rows\n\nTazamun-Replica: %s\n"
			 "Tazamun-Schema: %lld\nTazamun-Base: %s\n", s->code, lc.l.n, s->code, (long long)ver, hex);
		parents[0] = head;
		parents[1] = tip;
		if ((rc = tz_commit__build(s, &mst, &merge, &new_root, parents, 2, s->code, &s->kp, msg)) < 0 ||
		    (rc = tz_pack__write(s, &mst)) < 0)
			goto done;
		a.set_head = true;
		a.head = merge;
		a.from_root = &head_root;
		a.to_root = &new_root;
		res->merged = true;
		res->head = merge;
	}
	if ((rc = record_branch(s, in, &b, &a, &tip, res)) < 0)
		goto done;
	if (tz_ref__set(s, &a.head, "import") < 0)
		tz_error_clear();
done:
	tz_sync__change_list_release(&lc.l);
	tz_schema__release(&lc.ts);
	tz_staging__release(&mst);
	tz_staging__release(&vst);
	tz_sync__rebuilt_release(&b);
	return rc;
}

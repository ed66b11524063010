/*
 * sync.c - the sync cycle between HQ and its branches (docs/protocol.md,
 * whose rule ids [P1]... the comments cite).  This file: views, export, the
 * checks and the rebuild both sides share, and the import's entry point;
 * HQ's import is sync_hq.c, a branch's sync_branch.c, enrolment
 * sync_enrol.c (sync_int.h: what they share).
 *
 * HQ keeps `main` and one line per branch, refs/heads/branches/<code>: the
 * commits HQ and that branch share.  A branch's history is its own line.
 *
 *   branch export   the commits HQ has not acknowledged (after sealing
 *                   pending changes), as row deltas
 *   HQ import       rebuild and check them, integrate the branch's change
 *                   since its base (the HQ view it last integrated, named
 *                   by the Tazamun-Base trailer) into main, then commit
 *                   the branch's new view on its line: the acknowledgement
 *   HQ export       the line's commits the branch has not been seen to hold
 *   branch import   rebuild, fast-forward or merge its newer local commits
 *                   on top, materialise into store.db
 *
 * Every import stages all objects in memory, writes them as one pack,
 * records the new state in one SQLite transaction (rows, heads, the
 * bundle's sequence, the key binding), then moves the refs: a failure
 * before the transaction leaves the store as it was (objects at most,
 * unreferenced), and open() reconciles the refs with SQLite.
 */
#include "store/sync_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static const char bind_context[] = "tazamun bind v1";

void tz_outgoing_release(tz_outgoing *o)
{
	if (o == NULL)
		return;
	tz_free(o->prereq);
	tz_buf_release(&o->payload);
	tz_free(o->dict_owned);
	memset(o, 0, sizeof(*o));
}

void tz_import_result_release(tz_import_result *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nrefused; i++) {
		tz_free(r->refused[i].table);
		tz_free(r->refused[i].partition);
		tz_free(r->refused[i].key);
	}
	tz_free(r->refused);
	memset(r, 0, sizeof(*r));
}

bool tz_sync__is_hq(const tz_store *s)
{
	return strcmp(s->code, "HQ") == 0;
}

int tz_sync__instance_of(tz_store *s, uint8_t out[16])
{
	char hex[64];
	int rc;

	memset(out, 0, 16);
	if ((rc = tz_meta__get_text(s, "instance", hex, sizeof(hex))) < 0)
		return rc;
	for (int i = 0; i < 16; i++) {
		int hi = tz_row__hex_digit((uint8_t)hex[2 * i]), lo = hi < 0 ? -1 : tz_row__hex_digit((uint8_t)hex[2 * i + 1]);
		if (lo < 0)
			return tz_error_set(TZ_ECORRUPT, "tz_meta: bad instance id");
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return TZ_OK;
}

void tz_sync__hex_of(char *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* The binding MAC: the one-time secret authenticates (code, key, instance). */
static void bind_mac(uint8_t out[32], const uint8_t secret[TZ_ENROL_SECRET_BYTES], const char *code,
		     const uint8_t pk[TZ_PK_BYTES], const uint8_t instance[16])
{
	tz_mac(out, secret, (const tz_piece[]){ { bind_context, sizeof(bind_context) },
						{ code, strlen(code) + 1 },
						{ pk, TZ_PK_BYTES },
						{ instance, 16 } }, 4);
}

int tz_sync__oid_meta(tz_store *s, const char *key, tz_oid *out, bool *has)
{
	char hex[64];
	int rc;

	*has = false;
	memset(out, 0, sizeof(*out));
	if ((rc = tz_meta__get_text(s, key, hex, sizeof(hex))) < 0 || hex[0] == '\0')
		return rc;
	if (tz_oid__parse(out, hex) < 0)
		return tz_error_set(TZ_ECORRUPT, "tz_meta: bad '%s'", key);
	*has = true;
	return TZ_OK;
}

/* is `anc` an ancestor of (or equal to) `desc`?  Both in the ODB. */
int tz_sync__is_ancestor(tz_store *s, const tz_oid *anc, const tz_oid *desc, bool *out)
{
	int r;

	*out = memcmp(anc, desc, sizeof(*anc)) == 0;
	if (*out)
		return TZ_OK;
	r = git_graph_descendant_of(s->repo, (const git_oid *)desc->id, (const git_oid *)anc->id);
	if (r < 0)
		return tz_git__error("cannot walk the history");
	*out = r == 1;
	return TZ_OK;
}

/* ---- views ---- */

/* The scope of table `enc` in root's _schema/tz_track. */
static int scope_of(tz_store *s, const tz_staging *st, const tz_oid *root, const char *enc, size_t len,
		    tz_scope *out, bool *found)
{
	char name[TZ_KEY_MAX_BYTES + 1];
	const char *comp[3] = { "_schema", "tz_track", name };
	size_t clen[3] = { 7, 8, len };
	tz_oid oid;
	uint8_t *data = NULL;
	size_t n;
	git_object_t type;
	tz_row *row = NULL;
	const tz_column *c;
	int rc;

	*found = false;
	if (len > TZ_KEY_MAX_BYTES)
		return TZ_OK;
	memcpy(name, enc, len);
	name[len] = '\0';
	if ((rc = tz_tree__lookup(s, st, &oid, root, comp, clen, 3)) < 0 || tz_oid_is_zero(&oid))
		return rc;
	if ((rc = tz_obj__read(s, st, &oid, &type, &data, &n)) == TZ_OK && (rc = tz_row_decode(&row, data, n)) == TZ_OK &&
	    (c = tz_row_find(row, "scope", 5)) != NULL && c->v.type == TZ_VTEXT) {
		*found = true;
		if (c->v.n == 5 && memcmp(c->v.p, "owned", 5) == 0)
			*out = TZ_SCOPE_OWNED;
		else if (c->v.n == 6 && memcmp(c->v.p, "shared", 6) == 0)
			*out = TZ_SCOPE_SHARED;
		else if (c->v.n == 2 && memcmp(c->v.p, "hq", 2) == 0)
			*out = TZ_SCOPE_HQ;
		else
			*found = false;
	}
	tz_row_free(row);
	tz_free(data);
	return rc;
}

/* The partition name of a branch: its code in the key encoding. */
int tz_sync__code_partition(tz_buf *out, const char *code)
{
	tz_value v;

	memset(&v, 0, sizeof(v));
	v.type = TZ_VTEXT;
	v.p = (const uint8_t *)code;
	v.n = strlen(code);
	return tz_key_encode(out, &v, 1);
}

static int stage_blob(tz_store *s, tz_staging *st, tz_oid *out, const char *text)
{
	return tz_staging__add(s, st, out, GIT_OBJECT_BLOB, text, strlen(text));
}

/* A branch's view of `root`: _schema, an empty _log, every shared and hq
 * table, and of each owned table the branch's own partition. */
int tz_sync__view_tree(tz_store *s, tz_staging *st, const tz_oid *root, const char *code, tz_oid *out)
{
	tz_tree r = { NULL, 0, NULL };
	tz_tree_entry *e = NULL;
	tz_buf part = TZ_BUF_INIT;
	tz_oid log;
	size_t n = 0;
	int rc;

	if ((rc = tz_tree__read(s, st, root, &r)) < 0 || (rc = tz_sync__code_partition(&part, code)) < 0 ||
	    (rc = stage_blob(s, st, &log, EMPTY_LOG)) < 0)
		goto done;
	if ((e = tz_calloc(r.n + 2, sizeof(*e))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < r.n && rc == TZ_OK; i++) {
		const tz_tree_entry *x = &r.e[i];
		tz_scope scope;
		bool found;
		if (x->name_len == 4 && memcmp(x->name, "_log", 4) == 0)
			continue;
		if (x->name[0] == '_' || x->mode != 040000) {
			e[n++] = *x;
			continue;
		}
		if ((rc = scope_of(s, st, root, x->name, x->name_len, &scope, &found)) < 0)
			break;
		if (!found)
			continue;   /* rows of a table no longer declared: not sent */
		if (scope != TZ_SCOPE_OWNED) {
			e[n++] = *x;
			continue;
		}
		tz_tree t;
		if ((rc = tz_tree__read(s, st, &x->oid, &t)) < 0)
			break;
		const tz_tree_entry *own = tz_tree__find(&t, (const char *)part.data, part.len);
		if (own != NULL) {
			tz_tree_entry one = *own;
			tz_oid sub;
			one.name = (const char *)part.data;
			if ((rc = tz_tree__write(s, st, &sub, &one, 1)) == TZ_OK) {
				e[n] = *x;
				e[n++].oid = sub;
			}
		}
		tz_tree__release(&t);
	}
	if (rc == TZ_OK) {
		e[n++] = (tz_tree_entry){ "_log", 4, 0100644, log };
		rc = tz_tree__write(s, st, out, e, n);
	}
done:
	tz_free(e);
	tz_buf_release(&part);
	tz_tree__release(&r);
	return rc;
}

/* A root with its _log replaced by the empty log (merge and view commits
 * seal no change-log entries of their own). */
int tz_sync__with_empty_log(tz_store *s, tz_staging *st, const tz_oid *root, tz_oid *out)
{
	tz_path_change c;
	tz_oid log;
	bool empty;
	int rc;

	memset(&c, 0, sizeof(c));
	if ((rc = stage_blob(s, st, &log, EMPTY_LOG)) < 0)
		return rc;
	c.comp[0] = "_log";
	c.comp_len[0] = 4;
	c.oid = log;
	c.depth = 1;
	return tz_tree__apply(s, st, out, &empty, root, 0, &c, 1);
}

int tz_sync__schema_version(tz_store *s, int64_t *v)
{
	return tz_meta__get_int(s, "schema_version", v);
}

/* ---- export ---- */

/* commits reachable from tip and not from any of hide[], oldest first */
static int walk_new(tz_store *s, const tz_oid *tip, const tz_oid *hide, size_t nhide, tz_oid **out, size_t *n)
{
	git_revwalk *w = NULL;
	git_oid id;
	size_t cap = 0;
	int rc = TZ_OK, r;

	*out = NULL;
	*n = 0;
	if (git_revwalk_new(&w, s->repo) < 0 ||
	    git_revwalk_sorting(w, GIT_SORT_TOPOLOGICAL | GIT_SORT_REVERSE) < 0 ||
	    git_revwalk_push(w, (const git_oid *)tip->id) < 0) {
		rc = tz_git__error("cannot walk the history");
		goto done;
	}
	for (size_t i = 0; i < nhide; i++)
		if (git_revwalk_hide(w, (const git_oid *)hide[i].id) < 0) {
			rc = tz_git__error("cannot walk the history");
			goto done;
		}
	while ((r = git_revwalk_next(&id, w)) == 0) {
		if (tz_array_grow(out, &cap, *n, sizeof(**out)) < 0) {
			rc = TZ_ENOMEM;
			goto done;
		}
		memcpy((*out)[(*n)++].id, id.id, 20);
	}
	if (r != GIT_ITEROVER)
		rc = tz_git__error("cannot walk the history");
done:
	git_revwalk_free(w);
	if (rc < 0) {
		tz_free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

/* The parents of commits[] that are not in commits[]: what the receiver
 * must already hold. */
static int prerequisites(tz_store *s, const tz_oid *c, size_t n, tz_oid **out, size_t *nout)
{
	size_t cap = 0;

	*out = NULL;
	*nout = 0;
	for (size_t i = 0; i < n; i++) {
		tz_oid tree, par[TZ_COMMIT_MAX_PARENTS];
		size_t np;
		int rc;
		if ((rc = tz_commit__parse(s, NULL, &c[i], &tree, par, TZ_COMMIT_MAX_PARENTS, &np)) < 0)
			return rc;
		for (size_t p = 0; p < np; p++) {
			bool in = false;
			for (size_t k = 0; k < n && !in; k++)
				in = memcmp(&c[k], &par[p], sizeof(tz_oid)) == 0;
			for (size_t k = 0; k < *nout && !in; k++)
				in = memcmp(&(*out)[k], &par[p], sizeof(tz_oid)) == 0;
			if (in)
				continue;
			if (tz_array_grow(out, &cap, *nout, sizeof(**out)) < 0)
				return TZ_ENOMEM;
			(*out)[(*nout)++] = par[p];
		}
	}
	return TZ_OK;
}

/* A new sequence number, recorded before the bundle exists. */
static int next_sequence(tz_store *s, uint64_t *seq)
{
	int64_t v;
	int rc;

	if ((rc = tz_sql__exec(s, "BEGIN IMMEDIATE")) < 0)
		return rc;
	if ((rc = tz_meta__get_int(s, "seq_out", &v)) < 0 || (rc = tz_meta__set_int(s, "seq_out", v + 1)) < 0 ||
	    (rc = tz_sql__exec(s, "COMMIT")) < 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	*seq = (uint64_t)v + 1;
	return TZ_OK;
}

static int export_branch(tz_store *s, tz_outgoing *o)
{
	tz_commit_result cr;
	tz_oid head, base, *commits = NULL;
	tz_key_info hq;
	bool has_head, has_base, found;
	int64_t bound;
	int rc;

	/* [P10] export seals the pending changes first */
	if ((rc = tz_store_commit(s, "export", &cr)) < 0)
		return rc;
	if ((rc = tz_head__get(s, &has_head, &head)) < 0 || (rc = tz_sync__oid_meta(s, "base", &base, &has_base)) < 0)
		return rc;
	if (!has_head || !has_base)
		return tz_error_set(TZ_EINVAL, "this store was not enrolled from HQ (no base commit): nothing to export");
	if ((rc = tz_registry__get(s, "HQ", &hq, NULL, &found)) < 0)
		return rc;
	if (!found || !hq.has_pk)
		return tz_error_set(TZ_ENOTFOUND, "this store does not know HQ's key");
	memcpy(o->recipient_pk, hq.pk, TZ_PK_BYTES);
	snprintf(o->recipient, sizeof(o->recipient), "HQ");
	if ((rc = walk_new(s, &head, &base, 1, &commits, &o->ncommits)) < 0)
		goto done;
	if ((rc = prerequisites(s, commits, o->ncommits, &o->prereq, &o->nprereq)) < 0)
		goto done;
	if (o->ncommits == 0) {
		/* nothing new: the bundle still asks HQ for its news, and names
		 * the base so that HQ can check the branch is where it thinks */
		if ((o->prereq = tz_calloc(1, sizeof(*o->prereq))) == NULL) {
			rc = TZ_ENOMEM;
			goto done;
		}
		o->prereq[0] = base;
		o->nprereq = 1;
	} else {
		o->tip = commits[o->ncommits - 1];
	}
	if ((rc = tz_transfer__pack(s, &o->payload, commits, o->ncommits)) < 0)
		goto done;
	/* [P3] until HQ has answered, every bundle carries the binding */
	if ((rc = tz_meta__get_int(s, "bound", &bound)) < 0)
		goto done;
	if (!bound) {
		char hex[2 * TZ_ENROL_SECRET_BYTES + 8];
		uint8_t secret[TZ_ENROL_SECRET_BYTES];
		if ((rc = tz_meta__get_text(s, "enrol_secret", hex, sizeof(hex))) < 0)
			goto done;
		for (size_t i = 0; i < TZ_ENROL_SECRET_BYTES; i++) {
			int hi = tz_row__hex_digit((uint8_t)hex[2 * i]);
			int lo = hi < 0 ? -1 : tz_row__hex_digit((uint8_t)hex[2 * i + 1]);
			if (lo < 0) {
				rc = tz_error_set(TZ_ECORRUPT, "tz_meta: bad enrolment secret");
				goto done;
			}
			secret[i] = (uint8_t)(hi << 4 | lo);
		}
		o->bind = true;
		memcpy(o->bind_pk, s->kp.pk, TZ_PK_BYTES);
		bind_mac(o->bind_mac, secret, s->code, s->kp.pk, o->instance);
		tz_wipe(secret, sizeof(secret));
	}
done:
	tz_free(commits);
	return rc;
}

int tz_sync__line_of(tz_store *s, const char *code, tz_oid *line, tz_oid *received, bool *has_received,
		     tz_oid *enrolled, bool *found)
{
	sqlite3_stmt *q = NULL;
	int rc, step;

	*found = *has_received = false;
	if ((rc = tz_sql__prepare(s, &q, "SELECT line, received, enrolled FROM tz_lines WHERE code = ?1")) < 0)
		return rc;
	sqlite3_bind_text(q, 1, code, -1, SQLITE_STATIC);
	if ((step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(q, 1);
		*found = true;
		if (tz_oid__parse(line, (const char *)sqlite3_column_text(q, 0)) < 0 ||
		    tz_oid__parse(enrolled, (const char *)sqlite3_column_text(q, 2)) < 0 ||
		    (r[0] && tz_oid__parse(received, r) < 0))
			rc = tz_error_set(TZ_ECORRUPT, "tz_lines: bad commit id for '%s'", code);
		*has_received = r[0] != '\0';
	} else if (step != SQLITE_DONE) {
		rc = tz_sql__error(s, step, "cannot read tz_lines");
	}
	sqlite3_finalize(q);
	return rc;
}

/* [P16] Commit the branch's view of main on its line when main moved since
 * the last view (other branches' and HQ's changes), after sealing HQ's
 * pending changes [P10]; *line becomes the new tip. */
static int refresh_view(tz_store *s, const char *code, tz_oid *line)
{
	tz_commit_result cr;
	tz_staging st;
	tz_oid head, root, view_root, line_root, view;
	sqlite3_stmt *q = NULL;
	bool has;
	char hex[41], msg[256], ref[64];
	int64_t ver;
	int rc, step;

	tz_staging__init(&st);
	if ((rc = tz_store_commit(s, NULL, &cr)) < 0 || (rc = tz_head__get(s, &has, &head)) < 0 ||
	    (rc = tz_commit__tree(s, &head, &root)) < 0 || (rc = tz_commit__tree(s, line, &line_root)) < 0 ||
	    (rc = tz_sync__view_tree(s, &st, &root, code, &view_root)) < 0)
		goto done;
	if (memcmp(&view_root, &line_root, sizeof(view_root)) == 0)
		goto done;
	if ((rc = tz_sync__schema_version(s, &ver)) < 0)
		goto done;
	tz_oid_fmt(hex, &head);
	snprintf(msg, sizeof(msg), "view for %s\n\nTazamun-Replica: HQ\nTazamun-Schema: %lld\nTazamun-From: %s\n", code,
		 (long long)ver, hex);
	if ((rc = tz_commit__build(s, &st, &view, &view_root, line, 1, s->code, &s->kp, msg)) < 0 ||
	    (rc = tz_pack__write(s, &st)) < 0)
		goto done;
	tz_oid_fmt(hex, &view);
	if ((rc = tz_sql__prepare(s, &q, "UPDATE tz_lines SET line = ?1 WHERE code = ?2")) < 0)
		goto done;
	sqlite3_bind_text(q, 1, hex, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, code, -1, SQLITE_STATIC);
	step = sqlite3_step(q);
	sqlite3_finalize(q);
	if (step != SQLITE_DONE) {
		rc = tz_sql__error(s, step, "cannot record the branch line");
		goto done;
	}
	*line = view;
	snprintf(ref, sizeof(ref), "refs/heads/branches/%s", code);
	if (tz_ref__set_name(s, ref, &view, "export: view") < 0)
		tz_error_clear();
done:
	tz_staging__release(&st);
	return rc;
}

static int export_hq(tz_store *s, const char *code, tz_outgoing *o)
{
	tz_key_info k;
	tz_oid line, received, enrolled, hide[2], *commits = NULL;
	bool found, has_received;
	int rc;

	if (!tz_code_valid(code) || strcmp(code, "HQ") == 0)
		return tz_error_set(TZ_EINVAL, "'%s' is not a branch code", code);
	if ((rc = tz_registry__get(s, code, &k, NULL, &found)) < 0)
		return rc;
	if (!found || strcmp(k.role, "branch") != 0)
		return tz_error_set(TZ_ENOTFOUND, "no branch '%s' is enrolled here (see 'syncctl keys show')", code);
	if (k.revoked)
		return tz_error_set(TZ_EPERM, "the key of '%s' is revoked: nothing is sent to it", code);
	if (!k.has_pk)
		return tz_error_set(TZ_EINVAL, "branch '%s' has not sent its first bundle yet: its key is not known, "
				    "so nothing can be encrypted to it", code);
	memcpy(o->recipient_pk, k.pk, TZ_PK_BYTES);
	snprintf(o->recipient, sizeof(o->recipient), "%s", code);
	if ((rc = tz_sync__line_of(s, code, &line, &received, &has_received, &enrolled, &found)) < 0)
		return rc;
	if (!found)
		return tz_error_set(TZ_ECORRUPT, "branch '%s' has no line in tz_lines", code);
	if ((rc = refresh_view(s, code, &line)) < 0)
		return rc;
	/* the branch holds its enrolment snapshot and what it sent */
	hide[0] = enrolled;
	hide[1] = received;
	if ((rc = walk_new(s, &line, hide, has_received ? 2 : 1, &commits, &o->ncommits)) < 0)
		goto done;
	if ((rc = prerequisites(s, commits, o->ncommits, &o->prereq, &o->nprereq)) < 0)
		goto done;
	if (o->ncommits)
		o->tip = commits[o->ncommits - 1];
	rc = tz_transfer__pack(s, &o->payload, commits, o->ncommits);
done:
	tz_free(commits);
	return rc;
}

int tz_store_export(tz_store *s, const char *for_code, tz_outgoing *o)
{
	int64_t v;
	int rc;

	memset(o, 0, sizeof(*o));
	if (tz_sync__is_hq(s) != (for_code != NULL))
		return tz_error_set(TZ_EINVAL, tz_sync__is_hq(s) ? "HQ exports for one branch: --for CODE"
								   : "a branch exports to HQ only (no --for)");
	if ((rc = tz_store__lock(s)) < 0)
		return rc;
	snprintf(o->sender, sizeof(o->sender), "%s", s->code);
	if ((rc = tz_sync__instance_of(s, o->instance)) < 0)
		goto done;
	rc = for_code ? export_hq(s, for_code, o) : export_branch(s, o);
	if (rc == TZ_OK && (rc = tz_sync__schema_version(s, &v)) == TZ_OK) {
		o->schema = (uint64_t)v;
		rc = next_sequence(s, &o->sequence);
	}
done:
	tz_store__unlock(s);
	if (rc < 0) {
		tz_outgoing_release(o);
		tz_error_wrap(rc, "cannot export");
	}
	return rc;
}

/* ---- import: checks common to both sides ---- */

int tz_store_sender_key(tz_store *s, const char *sender, bool bind, const uint8_t bind_pk[TZ_PK_BYTES],
			const uint8_t bind_mac_in[32], const uint8_t instance[16], uint8_t pk_out[TZ_PK_BYTES])
{
	tz_key_info k;
	uint8_t secret[TZ_ENROL_SECRET_BYTES], want[32];
	bool found;
	int rc;

	memset(pk_out, 0, TZ_PK_BYTES);
	if (strcmp(sender, s->code) == 0)
		return tz_error_set(TZ_EPERM, "the bundle claims to come from this store itself ('%s')", sender);
	if ((rc = tz_registry__get(s, sender, &k, secret, &found)) < 0)
		return rc;
	if (!found || strcmp(k.role, "admin") == 0 || (!tz_sync__is_hq(s) && strcmp(k.role, "hq") != 0))
		rc = tz_error_set(TZ_ENOTFOUND, "unknown sender '%s'", sender);
	else if (k.revoked)
		rc = tz_error_set(TZ_EPERM, "the key of '%s' is revoked", sender);
	else if (k.has_pk && bind && !tz_ct_equal(k.pk, bind_pk, TZ_PK_BYTES))
		/* [P3] the secret binds once: a second key is someone else */
		rc = tz_error_set(TZ_EPERM, "'%s' bound another key at its enrolment; this bundle's key is refused "
				  "(a second store enrolled from the same file?)", sender);
	else if (k.has_pk)
		memcpy(pk_out, k.pk, TZ_PK_BYTES);
	else if (!bind)
		rc = tz_error_set(TZ_EPERM, "'%s' is enrolled but has not bound its key, and this bundle carries no "
				  "binding", sender);
	else {
		bind_mac(want, secret, sender, bind_pk, instance);
		if (!tz_ct_equal(want, bind_mac_in, 32))
			rc = tz_error_set(TZ_EPERM, "the key binding of '%s' does not match its enrolment secret", sender);
		else
			memcpy(pk_out, bind_pk, TZ_PK_BYTES);
	}
	tz_wipe(secret, sizeof(secret));
	return rc;
}

/* [P7] [P8]: replays, restored or cloned stores.  *noop [P1] when this
 * very bundle was imported before. */
static int check_sequence(tz_store *s, const tz_incoming *in, bool *noop)
{
	sqlite3_stmt *q = NULL;
	tz_key_info k;
	bool found;
	int64_t last = 0;
	int rc, step;

	*noop = false;
	if (in->sequence > (uint64_t)INT64_MAX)
		return tz_error_set(TZ_EPROTO, "sequence %llu is out of range", (unsigned long long)in->sequence);
	if ((rc = tz_registry__get(s, in->sender, &k, NULL, &found)) < 0)
		return rc;
	if (found && k.instance[0]) {
		char hex[33];
		tz_sync__hex_of(hex, in->instance, 16);
		if (strcmp(hex, k.instance) != 0)
			return tz_error_set(TZ_EPERM, "the bundle comes from store instance %s, but '%s' is store instance %s: "
					    "a copied or restored store posing as the branch is refused", hex, in->sender,
					    k.instance);
	}
	if ((rc = tz_sql__prepare(s, &q, "SELECT digest FROM tz_bundles WHERE sender = ?1 AND seq = ?2")) < 0)
		return rc;
	sqlite3_bind_text(q, 1, in->sender, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)in->sequence);
	if ((step = sqlite3_step(q)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(q, 0) == 32 && memcmp(sqlite3_column_blob(q, 0), in->digest, 32) == 0)
			*noop = true;
		else
			rc = tz_error_set(TZ_EPROTO, "replay: '%s' already sent a different bundle with sequence %llu",
					  in->sender, (unsigned long long)in->sequence);
	} else if (step != SQLITE_DONE) {
		rc = tz_sql__error(s, step, "cannot read tz_bundles");
	}
	sqlite3_finalize(q);
	if (rc < 0 || *noop)
		return rc;
	if ((rc = tz_sql__prepare(s, &q, "SELECT coalesce(max(seq), 0) FROM tz_bundles WHERE sender = ?1")) < 0)
		return rc;
	sqlite3_bind_text(q, 1, in->sender, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW)
		last = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	if (in->sequence == 0 || in->sequence <= (uint64_t)last)
		return tz_error_set(TZ_EPROTO, "replay: sequence %llu of '%s' is not newer than the last one accepted "
				    "(%lld): an old bundle, or a restored store", (unsigned long long)in->sequence,
				    in->sender, (long long)last);
	return TZ_OK;
}

int tz_sync__record_bundle(tz_store *s, const tz_incoming *in, size_t ncommits)
{
	sqlite3_stmt *q = NULL;
	int rc, step;

	if ((rc = tz_sql__prepare(s, &q, "INSERT INTO tz_bundles(sender, seq, digest, at, commits)"
					 " VALUES (?1, ?2, ?3, ?4, ?5)")) < 0)
		return rc;
	sqlite3_bind_text(q, 1, in->sender, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)in->sequence);
	sqlite3_bind_blob(q, 3, in->digest, 32, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)time(NULL));
	sqlite3_bind_int64(q, 5, (sqlite3_int64)ncommits);
	step = sqlite3_step(q);
	sqlite3_finalize(q);
	return step == SQLITE_DONE ? TZ_OK : tz_sql__error(s, step, "cannot record the bundle");
}

void tz_sync__rebuilt_release(tz_rebuilt *b)
{
	tz_staging__release(&b->st);
	tz_free(b->commits);
}

int tz_sync__rebuild(tz_store *s, const tz_incoming *in, const void *payload, size_t n,
		     const uint8_t (*keys)[TZ_PK_BYTES], size_t nkeys, tz_rebuilt *b)
{
	char hex[41];
	int rc;

	tz_staging__init(&b->st);
	/* a big bundle is written in chunks as rebuilt: the payload and the
	 * objects held share TZ_STAGING_SPILL_BYTES, the objects getting at
	 * least half (100,000 changed rows: a 7.75 MB payload leaves 8.6 MiB
	 * for objects; the agency day's 1.3 MB leaves 14.7 MiB, well above
	 * the ~10 MiB it stages: it never spills) */
	b->st.spill = n < TZ_STAGING_SPILL_BYTES / 2 ? TZ_STAGING_SPILL_BYTES - n : TZ_STAGING_SPILL_BYTES / 2;
	/* [P2] every prerequisite must be here, named when missing */
	for (size_t i = 0; i < in->nprereq; i++)
		if (!git_odb_exists(s->odb, (const git_oid *)in->prereq[i].id)) {
			tz_oid_fmt(hex, &in->prereq[i]);
			return tz_error_set(TZ_ENOTFOUND, "missing prerequisite: commit %s is not in this store "
					    "(import the bundles before this one first)", hex);
		}
	if ((rc = tz_transfer__unpack(s, &b->st, payload, n, &b->commits, &b->n)) < 0)
		return rc;
	/* [P2] what the commits build on is what the header declares */
	for (size_t i = 0; i < b->n; i++) {
		tz_oid tree, par[TZ_COMMIT_MAX_PARENTS];
		size_t np;
		if ((rc = tz_commit__parse(s, &b->st, &b->commits[i], &tree, par, TZ_COMMIT_MAX_PARENTS, &np)) < 0)
			return rc;
		for (size_t p = 0; p < np; p++) {
			bool ok = false;
			for (size_t k = 0; k < i && !ok; k++)
				ok = memcmp(&b->commits[k], &par[p], sizeof(tz_oid)) == 0;
			for (size_t k = 0; k < in->nprereq && !ok; k++)
				ok = memcmp(&in->prereq[k], &par[p], sizeof(tz_oid)) == 0;
			if (!ok) {
				tz_oid_fmt(hex, &par[p]);
				return tz_error_set(TZ_EPROTO, "a commit of the bundle builds on %s, which the bundle does "
						    "not declare as a prerequisite", hex);
			}
		}
	}
	for (size_t i = 0; i < b->n; i++) {
		uint8_t *raw = NULL, pk[TZ_PK_BYTES];
		size_t len;
		bool ok = false;
		/* counted, not skipped: objects an interrupted import wrote
		 * prove nothing */
		b->nnew += !git_odb_exists(s->odb, (const git_oid *)b->commits[i].id);
		tz_oid_fmt(hex, &b->commits[i]);
		if ((rc = tz_commit__read_raw(s, &b->st, &b->commits[i], &raw, &len)) == TZ_OK &&
		    (rc = tz_commit__raw_signer(raw, len, pk)) < 0)
			tz_error_wrap(rc, "commit %s", hex);
		tz_free(raw);
		if (rc < 0)
			return rc;
		for (size_t k = 0; k < nkeys && !ok; k++)
			ok = tz_ct_equal(pk, keys[k], TZ_PK_BYTES);
		if (!ok)
			return tz_error_set(TZ_EVERIFY, "commit %s is not signed by '%s'", hex, in->sender);
	}
	return TZ_OK;
}

/* Once rebuilt, a bundle's rows are in the staging: their wire form goes
 * (tz_store_import), wiped as the caller would. */
void tz_sync__release_payload(tz_buf *payload)
{
	tz_wipe(payload->data, payload->len);
	tz_buf_release(payload);
}

/* Is the bundle's tip already part of `mine` (HQ: the branch head it
 * integrated last; a branch: its head)?  An empty bundle is.  The tip's
 * objects may be in the store without that (an import killed between
 * writing its pack and recording it), so ancestry decides, not presence. */
int tz_sync__integrated(tz_store *s, const tz_rebuilt *b, const tz_oid *mine, bool *yes)
{
	const tz_oid *tip = b->n ? &b->commits[b->n - 1] : NULL;

	*yes = tip == NULL;
	if (tip == NULL || mine == NULL || !git_odb_exists(s->odb, (const git_oid *)tip->id))
		return TZ_OK;
	return tz_sync__is_ancestor(s, tip, mine, yes);
}

/* [P14] rows the change log names stay as the application wrote them */
int tz_sync__materialise_and_head(tz_store *s, const tz_apply_state *a, tz_import_result *res)
{
	char hex[41];
	int rc;

	if (a->from_root && memcmp(a->from_root, a->to_root, sizeof(tz_oid)) != 0 &&
	    (rc = tz_materialise__trees(s, a->st, a->from_root, a->to_root, &res->rows_written, &res->rows_kept)) < 0)
		return rc;
	if (!a->set_head)
		return TZ_OK;
	tz_oid_fmt(hex, &a->head);
	return tz_meta__set_text(s, "head", hex);
}

int tz_sync__change_list_add(tz_change_list *l, const char *const *comp, const size_t *len, size_t depth,
			     const tz_oid *oid)
{
	tz_path_change *c;

	if (tz_array_grow(&l->ch, &l->cap, l->n, sizeof(*l->ch)) < 0)
		return TZ_ENOMEM;
	c = &l->ch[l->n];
	memset(c, 0, sizeof(*c));
	if (depth > TZ_PATH_DEPTH)
		return tz_error_set(TZ_ECORRUPT, "a path deeper than a row's");
	for (size_t i = 0; i < depth; i++) {
		const tz_path_change *prev = l->n ? &l->ch[l->n - 1] : NULL;
		char *p;
		if (len[i] > TZ_PATH_COMP_MAX)
			return tz_error_set(TZ_ECORRUPT, "a path component of %zu bytes", len[i]);
		/* a walk gives rows in path order: the table, partition and
		 * fanout of the previous change are shared, not copied again
		 * (100,000 changes: 400,000 fewer allocations) */
		if (prev && i + 1 < depth && i < tz_path_change__depth(prev) && prev->comp_len[i] == len[i] &&
		    memcmp(prev->comp[i], comp[i], len[i]) == 0) {
			c->comp[i] = prev->comp[i];
			c->comp_len[i] = len[i];
			continue;
		}
		p = tz_strndup(comp[i], len[i]);
		if (p == NULL || tz_array_grow(&l->owned, &l->capowned, l->nowned, sizeof(*l->owned)) < 0) {
			tz_free(p);
			return TZ_ENOMEM;
		}
		l->owned[l->nowned++] = p;
		c->comp[i] = p;
		c->comp_len[i] = len[i];
	}
	c->depth = depth;
	c->oid = *oid;
	c->del = tz_oid_is_zero(oid);
	l->n++;
	return TZ_OK;
}

void tz_sync__change_list_release(tz_change_list *l)
{
	for (size_t i = 0; i < l->nowned; i++)
		tz_free(l->owned[i]);
	tz_free(l->owned);
	tz_free(l->ch);
}

/* [P17] the schema version the bundle declares: a branch is never ahead
 * of HQ, and a branch takes no other version than its own (a migration at
 * the branch is not built yet). */
static int check_schema(tz_store *s, const tz_incoming *in)
{
	int64_t mine;
	int rc;

	if ((rc = tz_sync__schema_version(s, &mine)) < 0)
		return rc;
	if (tz_sync__is_hq(s) && in->schema > (uint64_t)mine)
		return tz_error_set(TZ_EPROTO, "the bundle declares schema version %llu, but HQ is at %lld: a branch "
				    "cannot be ahead of HQ", (unsigned long long)in->schema, (long long)mine);
	if (!tz_sync__is_hq(s) && in->schema != (uint64_t)mine)
		return tz_error_set(TZ_EPROTO, "the bundle declares schema version %llu and this store is at %lld; "
				    "migrating a branch's schema is not supported yet: nothing applied",
				    (unsigned long long)in->schema, (long long)mine);
	return TZ_OK;
}

/* The sender's key again, under the lock: a revocation or a renewed
 * enrolment since the container was read wins. */
static int check_sender(tz_store *s, const tz_incoming *in)
{
	uint8_t pk[TZ_PK_BYTES];
	int rc;

	if (in->signer_pk == NULL || (in->bind && (in->bind_pk == NULL || in->bind_mac == NULL)))
		return tz_error_set(TZ_EINVAL, "import: the bundle's signer or binding is missing");
	if ((rc = tz_store_sender_key(s, in->sender, in->bind, in->bind_pk, in->bind_mac, in->instance, pk)) < 0)
		return rc;
	if (!tz_ct_equal(pk, in->signer_pk, TZ_PK_BYTES))
		return tz_error_set(TZ_EPERM, "the key of '%s' changed while the bundle was read", in->sender);
	return TZ_OK;
}

int tz_store_import(tz_store *s, const tz_incoming *in, tz_buf *payload, tz_merger *m, tz_import_result *res)
{
	bool noop;
	int rc;

	memset(res, 0, sizeof(*res));
	if ((rc = tz_store__lock(s)) < 0)
		return rc;
	if ((rc = check_sequence(s, in, &noop)) < 0)
		goto done;
	if (noop) {
		/* [P1] the very same bundle again */
		res->noop = true;
		res->noop_why = "this bundle was imported before";
		goto done;
	}
	if ((rc = check_schema(s, in)) < 0 || (rc = check_sender(s, in)) < 0)
		goto done;
	rc = tz_sync__is_hq(s) ? tz_sync__import_hq(s, in, payload, m, res) : tz_sync__import_branch(s, in, payload, res);
done:
	tz_store__unlock(s);
	if (rc < 0) {
		/* [P14] the seal stays: say so, nothing of the user's is lost */
		uint64_t sealed = res->sealed;
		tz_import_result_release(res);
		if (sealed)
			tz_error_wrap(rc, "bundle from '%s' (sequence %llu) not imported (this store's %llu pending changes were "
				      "committed first and stay committed)", in->sender,
				      (unsigned long long)in->sequence, (unsigned long long)sealed);
		else
			tz_error_wrap(rc, "bundle from '%s' (sequence %llu) not imported", in->sender,
				      (unsigned long long)in->sequence);
	}
	return rc;
}

/*
 * sync.c - the sync cycle between HQ and its branches (docs/protocol.md,
 * whose rule ids [P1]... the comments cite).
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
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EMPTY_LOG "tazamun-log 1\n"
#define ENROL_MAGIC "TZE1"

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

static bool is_hq(const tz_store *s)
{
	return strcmp(s->code, "HQ") == 0;
}

static int instance_of(tz_store *s, uint8_t out[16])
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

static void hex_of(char *out, const uint8_t *p, size_t n)
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

static int oid_meta(tz_store *s, const char *key, tz_oid *out, bool *has)
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
static int is_ancestor(tz_store *s, const tz_oid *anc, const tz_oid *desc, bool *out)
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
static int code_partition(tz_buf *out, const char *code)
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
static int view_tree(tz_store *s, tz_staging *st, const tz_oid *root, const char *code, tz_oid *out)
{
	tz_tree r = { NULL, 0, NULL };
	tz_tree_entry *e = NULL;
	tz_buf part = TZ_BUF_INIT;
	tz_oid log;
	size_t n = 0;
	int rc;

	if ((rc = tz_tree__read(s, st, root, &r)) < 0 || (rc = code_partition(&part, code)) < 0 ||
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
static int with_empty_log(tz_store *s, tz_staging *st, const tz_oid *root, tz_oid *out)
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

static int schema_version(tz_store *s, int64_t *v)
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
	if ((rc = tz_head__get(s, &has_head, &head)) < 0 || (rc = oid_meta(s, "base", &base, &has_base)) < 0)
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

static int line_of(tz_store *s, const char *code, tz_oid *line, tz_oid *received, bool *has_received,
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
	    (rc = view_tree(s, &st, &root, code, &view_root)) < 0)
		goto done;
	if (memcmp(&view_root, &line_root, sizeof(view_root)) == 0)
		goto done;
	if ((rc = schema_version(s, &ver)) < 0)
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
	if ((rc = line_of(s, code, &line, &received, &has_received, &enrolled, &found)) < 0)
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
	if (is_hq(s) != (for_code != NULL))
		return tz_error_set(TZ_EINVAL, is_hq(s) ? "HQ exports for one branch: --for CODE"
							: "a branch exports to HQ only (no --for)");
	if ((rc = tz_store__lock(s)) < 0)
		return rc;
	snprintf(o->sender, sizeof(o->sender), "%s", s->code);
	if ((rc = instance_of(s, o->instance)) < 0)
		goto done;
	rc = for_code ? export_hq(s, for_code, o) : export_branch(s, o);
	if (rc == TZ_OK && (rc = schema_version(s, &v)) == TZ_OK) {
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
	if (!found || strcmp(k.role, "admin") == 0 || (!is_hq(s) && strcmp(k.role, "hq") != 0))
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
		hex_of(hex, in->instance, 16);
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

static int record_bundle(tz_store *s, const tz_incoming *in, size_t ncommits)
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

/* [P12] The bundle's commits, rebuilt into st; each signed by one of keys[]. */
typedef struct {
	tz_staging st;
	tz_oid *commits;
	size_t n;
	size_t nnew;
} rebuilt;

static void rebuilt_release(rebuilt *b)
{
	tz_staging__release(&b->st);
	tz_free(b->commits);
}

static int rebuild(tz_store *s, const tz_incoming *in, const void *payload, size_t n, const uint8_t (*keys)[TZ_PK_BYTES],
		   size_t nkeys, rebuilt *b)
{
	char hex[41];
	int rc;

	tz_staging__init(&b->st);
	/* a big bundle is written in chunks as rebuilt: the payload and the
	 * objects held share TZ_STAGING_SPILL_BYTES, the objects getting at
	 * least half (100,000 changed rows: a 7.75 MB payload, 8.25 MiB of
	 * objects; the agency-day import, 1.3 MB and 14.7 MiB, never spills) */
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
static void release_payload(tz_buf *payload)
{
	tz_wipe(payload->data, payload->len);
	tz_buf_release(payload);
}

/* Is the bundle's tip already part of `mine` (HQ: the branch head it
 * integrated last; a branch: its head)?  An empty bundle is.  The tip's
 * objects may be in the store without that (an import killed between
 * writing its pack and recording it), so ancestry decides, not presence. */
static int integrated(tz_store *s, const rebuilt *b, const tz_oid *mine, bool *yes)
{
	const tz_oid *tip = b->n ? &b->commits[b->n - 1] : NULL;

	*yes = tip == NULL;
	if (tip == NULL || mine == NULL || !git_odb_exists(s->odb, (const git_oid *)tip->id))
		return TZ_OK;
	return is_ancestor(s, tip, mine, yes);
}

/* The state recorded with an import, in its SQLite transaction. */
typedef struct {
	bool set_head;
	tz_oid head;
	const tz_oid *from_root, *to_root;   /* materialise from -> to */
	const tz_staging *st;                /* the import's objects still held */
} apply_state;

/* [P14] rows the change log names stay as the application wrote them */
static int materialise_and_head(tz_store *s, const apply_state *a, tz_import_result *res)
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

/* Path changes whose components the list owns (copied from a tree walk,
 * whose strings die with it). */
typedef struct {
	tz_path_change *ch;
	size_t n, cap;
	char **owned;
	size_t nowned, capowned;
} change_list;

static int change_list_add(change_list *l, const char *const *comp, const size_t *len, size_t depth, const tz_oid *oid)
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

static void change_list_release(change_list *l)
{
	for (size_t i = 0; i < l->nowned; i++)
		tz_free(l->owned[i]);
	tz_free(l->owned);
	tz_free(l->ch);
}

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
	change_list cl;             /* the rows to apply to main */
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
	uint8_t *data = NULL;
	size_t n;
	tz_row *row = NULL;
	tz_value kv[TZ_KEY_MAX_COLUMNS];
	tz_buf key = TZ_BUF_INIT, part = TZ_BUF_INIT;
	int rc;

	*why = NULL;
	if ((rc = tz_obj__read(x->s, x->st, oid, &type, &data, &n)) < 0)
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
	tz_free(data);
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
		rc = change_list_add(&x->cl, comp, len, depth, &merged);
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
		return change_list_add(&x->cl, comp, len, depth, theirs);
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
	change_list_release(&x->cl);
	tz_buf_release(&x->part);
}

/* What an HQ import records in its transaction besides the rows. */
typedef struct {
	const tz_pending_commit *pc;   /* HQ's pending changes sealed, or NULL */
	tz_merger *m;                  /* the queue's entries, or NULL */
	tz_oid ours_commit, merge;     /* HQ's side; the merge commit (zero: none) */
	tz_oid tip;
} hq_record;

static int record_hq(tz_store *s, const tz_incoming *in, const rebuilt *b, const apply_state *a, const tz_oid *line,
		     const tz_oid *received, bool bind, const hq_record *hr, tz_import_result *res)
{
	sqlite3_stmt *q = NULL;
	char l[41], r[41], hex[33];
	int rc, step;

	if ((rc = tz_sql__exec(s, "BEGIN IMMEDIATE")) < 0)
		return rc;
	/* HQ's sealed pending entries go first, so that materialising leaves
	 * alone only what the application wrote since */
	if ((hr && hr->pc && (rc = tz_commit__record_pending(s, hr->pc)) < 0) || (rc = materialise_and_head(s, a, res)) < 0 ||
	    (rc = record_bundle(s, in, b->n)) < 0)
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
		hex_of(hex, in->instance, 16);
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
	if ((rc = tz_sql__exec(s, "COMMIT")) < 0)
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
	if ((rc = is_ancestor(s, base, received, &newer)) < 0 || (rc = is_ancestor(s, received, tip, &descends)) < 0)
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
	if (!git_odb_exists(s->odb, (const git_oid *)base->id) || (rc = is_ancestor(s, base, line, &on_line)) < 0 ||
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
 * where both changed.  The stretch's objects are written as a pack, so the
 * next stretch (and libgit2) can read them. */
static int integrate_segment(integrate_ctx *x, const tz_oid *from, const tz_oid *tip, uint64_t *rows)
{
	tz_oid from_tree, tip_tree, merged_root;
	bool empty;
	int rc;

	change_list_release(&x->cl);
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
		    (rc = tz_pack__write(x->s, x->mst)) < 0)
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
static int integrate_bundle(integrate_ctx *x, const rebuilt *b, size_t start, const tz_oid *from, uint64_t *rows)
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
			rc = integrate_segment(x, &seg_from, &par[0], rows);
		seg_from = b->commits[i];
	}
	if (rc == TZ_OK && memcmp(&b->commits[b->n - 1], &seg_from, sizeof(tz_oid)) != 0)
		rc = integrate_segment(x, &seg_from, &b->commits[b->n - 1], rows);
	return rc;
}

/* How many of the bundle's first commits HQ has integrated already (a
 * branch that exported again before HQ's answer reached it sends them
 * again): they are ancestors of the branch head HQ received last. */
static int integrated_prefix(tz_store *s, const rebuilt *b, const tz_oid *received, bool has_received, size_t *start)
{
	int rc = TZ_OK;
	bool anc = true;

	*start = 0;
	while (has_received && anc && *start < b->n) {
		if ((rc = is_ancestor(s, &b->commits[*start], received, &anc)) < 0)
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
static int first_from(tz_store *s, const rebuilt *b, size_t start, const tz_oid *line, const char *code,
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

static int import_hq(tz_store *s, const tz_incoming *in, tz_buf *payload, tz_merger *m,
		     tz_import_result *res)
{
	rebuilt b;
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
	apply_state a;
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
	if ((rc = line_of(s, in->sender, &line, &received, &has_received, &enrolled, &found)) < 0)
		goto done;
	if (!found) {
		rc = tz_error_set(TZ_ECORRUPT, "branch '%s' has no line in tz_lines", in->sender);
		goto done;
	}
	/* [P2] the bundle builds on commits of the branch's line */
	for (size_t i = 0; i < in->nprereq; i++) {
		if (!git_odb_exists(s->odb, (const git_oid *)in->prereq[i].id))
			continue;   /* rebuild names it */
		if ((rc = is_ancestor(s, &in->prereq[i], &line, &on_line)) < 0)
			goto done;
		if (!on_line && has_received && (rc = is_ancestor(s, &in->prereq[i], &received, &on_line)) < 0)
			goto done;
		if (!on_line) {
			tz_oid_fmt(hex, &in->prereq[i]);
			rc = tz_error_set(TZ_EPROTO, "the bundle builds on commit %s, which is not on %s's line", hex,
					  in->sender);
			goto done;
		}
	}
	rc = rebuild(s, in, payload->data, payload->len, (const uint8_t(*)[TZ_PK_BYTES])keys, 1, &b);
	release_payload(payload);
	if (rc < 0)
		goto done;
	res->commits = b.n;
	res->commits_new = b.nnew;
	if ((rc = integrated(s, &b, has_received ? &received : NULL, &anc)) < 0)
		goto done;
	if (anc) {
		/* [P1] nothing HQ has not integrated: the sequence is still spent */
		res->noop = true;
		res->noop_why = "HQ already has every commit of the bundle";
		/* a binding on such a bundle is proven all the same */
		rc = record_hq(s, in, &b, &a, &line, NULL, bind, NULL, res);
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
	 * (unreferenced until the import is recorded), so that ancestry can be
	 * asked of libgit2 */
	if ((rc = check_base(s, &base, &line, in->sender)) < 0 || (rc = tz_pack__write(s, &b.st)) < 0 ||
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
	if ((rc = tz_schema__load(s, &x.ts)) < 0 || (rc = code_partition(&x.part, in->sender)) < 0 ||
	    (rc = tz_rights__load(s, &x.rights)) < 0 || (rc = integrate_bundle(&x, &b, start, &from, &rows)) < 0)
		goto done;
	new_root = pc.root;
	if (rows > 0 || x.both > 0) {
		/* the merge commit: rows taken or merged, or entries queued
		 * against it */
		if ((rc = with_empty_log(s, &mst, &x.ours_root, &new_root)) < 0 || (rc = schema_version(s, &ver)) < 0)
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
	if ((rc = view_tree(s, &mst, &new_root, in->sender, &view_root)) < 0 || (rc = tz_pack__write(s, &mst)) < 0)
		goto done;
	hr.merge = merge;
	a.set_head = !tz_oid_is_zero(&merge) || pc.made;
	a.head = !tz_oid_is_zero(&merge) ? merge : pc.made ? pc.commit : head;
	/* the view: the acknowledgement on the branch's line */
	parents[0] = tip;
	np = 1;
	if ((rc = is_ancestor(s, &line, &tip, &anc)) < 0)
		goto done;
	if (!anc)
		parents[np++] = line;   /* keep the views the branch has not seen */
	if ((rc = schema_version(s, &ver)) < 0)
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
	if ((rc = record_hq(s, in, &b, &a, &view, &tip, bind, &hr, res)) < 0)
		goto done;
	res->line = view;
	res->head = a.head;
	snprintf(msg, sizeof(msg), "refs/heads/branches/%s", in->sender);
	/* durable in store.db; a failed ref update is redone by the next open */
	if ((a.set_head && tz_ref__set(s, &a.head, "import: merge branch") < 0) ||
	    tz_ref__set_name(s, msg, &view, "import: view") < 0)
		tz_error_clear();
done:
	tz_free(raw);
	integrate_release(&x);
	tz_hmap__release(&sc.ours_map);
	tz_hmap__release(&sc.theirs_map);
	tz_staging__release(&mst);
	tz_staging__release(&vst);
	rebuilt_release(&b);
	return rc;
}

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
	change_list l;
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
		return change_list_add(&lc->l, comp, len, depth, b);
	if ((rc = tz_obj__read_row(lc->s, lc->st, a, &rb)) == TZ_OK && (rc = tz_obj__read_row(lc->s, lc->st, b, &ro)) == TZ_OK &&
	    (rc = tz_obj__read_row(lc->s, lc->st, &theirs, &rt)) == TZ_OK && (rc = units_for(lc->s, t->name, ro, &units)) == TZ_OK &&
	    (rc = tz_row_merge3(rb, ro, rt, units, local_wins, NULL, &out)) == TZ_OK &&
	    (rc = tz_staging__add(lc->s, lc->st, &merged, GIT_OBJECT_BLOB, out.data, out.len)) == TZ_OK)
		rc = change_list_add(&lc->l, comp, len, depth, &merged);
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

	change_list_release(&lc->l);
	memset(&lc->l, 0, sizeof(lc->l));
	lc->answer = answer_root;
	if ((rc = tz_tree__diff(lc->s, lc->st, base_root, ours_root, collect_local, lc)) < 0)
		return rc;
	if (lc->l.n > 1)
		qsort(lc->l.ch, lc->l.n, sizeof(*lc->l.ch), tz_path_change__cmp);
	return tz_tree__apply(lc->s, lc->st, out, &empty, answer_root, 0, lc->l.ch, lc->l.n);
}

static int record_branch(tz_store *s, const tz_incoming *in, const rebuilt *b, const apply_state *a,
			 const tz_oid *tip, tz_import_result *res)
{
	char hex[41];
	int rc;

	if ((rc = tz_sql__exec(s, "BEGIN IMMEDIATE")) < 0)
		return rc;
	if ((rc = materialise_and_head(s, a, res)) < 0 || (rc = record_bundle(s, in, b->n)) < 0)
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
	if ((rc = oid_meta(s, "base", &view, &has_view)) < 0 || !has_view ||
	    (rc = is_ancestor(s, &view, out, &newer)) < 0 || newer)
		return rc;
	if ((rc = is_ancestor(s, &view, head, &newer)) < 0 || !newer ||
	    (rc = is_ancestor(s, &view, tip, &newer)) < 0 || !newer)
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

static int import_branch(tz_store *s, const tz_incoming *in, tz_buf *payload, tz_import_result *res)
{
	rebuilt b;
	local_ctx lc;
	tz_key_info hq;
	tz_staging mst, vst;
	tz_oid head, head_root, tip, tip_root, mbase_root, new_root, merge, parents[2];
	uint8_t keys[2][TZ_PK_BYTES];
	bool found, has_head, anc;
	char hex[41], msg[512];
	apply_state a;
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
	rc = rebuild(s, in, payload->data, payload->len, (const uint8_t(*)[TZ_PK_BYTES])keys, 2, &b);
	release_payload(payload);
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
	if ((rc = integrated(s, &b, &head, &anc)) < 0)
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
	    (rc = same_declarations(s, &head_root, &tip_root)) < 0 || (rc = is_ancestor(s, &head, &tip, &anc)) < 0)
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
		    (rc = with_empty_log(s, &mst, &merged, &new_root)) < 0 || (rc = schema_version(s, &ver)) < 0)
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
	change_list_release(&lc.l);
	tz_schema__release(&lc.ts);
	tz_staging__release(&mst);
	tz_staging__release(&vst);
	rebuilt_release(&b);
	return rc;
}

/* [P17] the schema version the bundle declares: a branch is never ahead
 * of HQ, and a branch takes no other version than its own (a migration at
 * the branch is not built yet). */
static int check_schema(tz_store *s, const tz_incoming *in)
{
	int64_t mine;
	int rc;

	if ((rc = schema_version(s, &mine)) < 0)
		return rc;
	if (is_hq(s) && in->schema > (uint64_t)mine)
		return tz_error_set(TZ_EPROTO, "the bundle declares schema version %llu, but HQ is at %lld: a branch "
				    "cannot be ahead of HQ", (unsigned long long)in->schema, (long long)mine);
	if (!is_hq(s) && in->schema != (uint64_t)mine)
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
	rc = is_hq(s) ? import_hq(s, in, payload, m, res) : import_branch(s, in, payload, res);
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

/* ---- enrolment ---- */

int tz_store_branch_add(tz_store *s, const char *code, tz_buf *out)
{
	tz_commit_result cr;
	tz_staging st;
	tz_oid head, root, view_root, v0;
	uint8_t secret[TZ_ENROL_SECRET_BYTES], inst[16];
	bool has_head, again = false;
	char msg[256], hex[41], ref[64];
	sqlite3_stmt *q = NULL;
	int64_t ver;
	int rc, step;

	tz_staging__init(&st);
	if (!is_hq(s))
		return tz_error_set(TZ_EINVAL, "only HQ enrols branches (this store is %s)", s->code);
	if (!tz_code_valid(code) || strcmp(code, "HQ") == 0)
		return tz_error_set(TZ_EINVAL, "'%s' is not a branch code ([A-Z0-9][A-Z0-9_-]{0,15}, not HQ)", code);
	if ((rc = tz_store__lock(s)) < 0)
		return rc;
	tz_random_bytes(secret, sizeof(secret));
	if ((rc = instance_of(s, inst)) < 0)
		goto done;
	{
		tz_key_info k;
		if ((rc = tz_registry__get(s, code, &k, NULL, &again)) < 0)
			goto done;
		/* a branch whose first bundle never came (a lost file, a forgotten
		 * passphrase) is enrolled again: a new secret and snapshot, the
		 * old file useless */
		if (again && (k.has_pk || k.revoked || strcmp(k.role, "branch") != 0)) {
			rc = tz_error_set(TZ_EEXISTS, "'%s' is already enrolled%s", code,
					  k.revoked ? " and revoked" : k.has_pk ? " and has bound its key" : "");
			goto done;
		}
	}
	/* the snapshot is of main with HQ's pending changes sealed */
	if ((rc = tz_store_commit(s, NULL, &cr)) < 0 || (rc = tz_head__get(s, &has_head, &head)) < 0)
		goto done;
	if (!has_head) {
		rc = tz_error_set(TZ_EINVAL, "HQ has no commit yet: apply a schema first (syncctl schema apply)");
		goto done;
	}
	if ((rc = tz_commit__tree(s, &head, &root)) < 0 || (rc = view_tree(s, &st, &root, code, &view_root)) < 0 ||
	    (rc = schema_version(s, &ver)) < 0)
		goto done;
	tz_oid_fmt(hex, &head);
	snprintf(msg, sizeof(msg), "enrol %s\n\nTazamun-Replica: HQ\nTazamun-Schema: %lld\nTazamun-From: %s\n", code,
		 (long long)ver, hex);
	if ((rc = tz_commit__build(s, &st, &v0, &view_root, NULL, 0, s->code, &s->kp, msg)) < 0 ||
	    (rc = tz_pack__write(s, &st)) < 0)
		goto done;
	if ((rc = tz_sql__exec(s, "BEGIN IMMEDIATE")) < 0)
		goto done;
	tz_oid_fmt(hex, &v0);
	if (again) {
		if ((rc = tz_sql__prepare(s, &q, "UPDATE tz_keys SET secret = ?2, added = strftime('%s', 'now')"
						 " WHERE principal = ?1")) < 0)
			goto fail;
		sqlite3_bind_text(q, 1, code, -1, SQLITE_STATIC);
		sqlite3_bind_blob(q, 2, secret, sizeof(secret), SQLITE_STATIC);
		step = sqlite3_step(q);
		sqlite3_finalize(q);
		if (step != SQLITE_DONE) {
			rc = tz_sql__error(s, step, "cannot renew the enrolment secret");
			goto fail;
		}
	} else if ((rc = tz_registry__add(s, code, "branch", NULL, secret)) < 0) {
		goto fail;
	}
	if ((rc = tz_sql__prepare(s, &q, again ? "UPDATE tz_lines SET line = ?2, enrolled = ?2, received = ''"
						 " WHERE code = ?1"
					       : "INSERT INTO tz_lines(code, line, enrolled) VALUES (?1, ?2, ?2)")) < 0)
		goto fail;
	sqlite3_bind_text(q, 1, code, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, hex, -1, SQLITE_STATIC);
	step = sqlite3_step(q);
	sqlite3_finalize(q);
	if (step != SQLITE_DONE) {
		rc = tz_sql__error(s, step, "cannot record the branch line");
		goto fail;
	}
	if ((rc = tz_sql__exec(s, "COMMIT")) < 0)
		goto fail;
	snprintf(ref, sizeof(ref), "refs/heads/branches/%s", code);
	if (tz_ref__set_name(s, ref, &v0, "enrol") < 0)
		tz_error_clear();
	/* the enrolment payload */
	tz_buf_put(out, ENROL_MAGIC, 4);
	tz_buf_putc(out, 2);
	tz_buf_puts(out, "HQ");
	tz_buf_put(out, s->kp.pk, TZ_PK_BYTES);
	tz_buf_put(out, inst, 16);
	tz_buf_putc(out, (uint8_t)strlen(code));
	tz_buf_puts(out, code);
	tz_buf_put(out, secret, sizeof(secret));
	tz_buf_varint(out, 0);   /* no dictionary */
	rc = tz_transfer__pack(s, out, &v0, 1);
	goto done;
fail:
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
done:
	tz_wipe(secret, sizeof(secret));
	tz_staging__release(&st);
	tz_store__unlock(s);
	if (rc < 0)
		tz_error_wrap(rc, "cannot enrol '%s'", code);
	return rc;
}

typedef struct {
	char hq[17];
	uint8_t hq_pk[TZ_PK_BYTES];
	uint8_t hq_instance[16];
	char code[17];
	uint8_t secret[TZ_ENROL_SECRET_BYTES];
	const uint8_t *dict;
	size_t dict_len;
	const uint8_t *deltas;
	size_t deltas_len;
} enrol_payload;

static int read_code(tz_reader *r, char out[17])
{
	uint8_t n;
	const uint8_t *p;

	if (tz_reader_u8(r, &n) < 0 || n == 0 || n > 16 || tz_reader_bytes(r, &p, n) < 0)
		return tz_error_set(TZ_ECORRUPT, "enrolment: bad replica code");
	memcpy(out, p, n);
	out[n] = '\0';
	if (memchr(p, 0, n) || !tz_code_valid(out))
		return tz_error_set(TZ_ECORRUPT, "enrolment: bad replica code");
	return TZ_OK;
}

static int parse_enrol(enrol_payload *e, const uint8_t *p, size_t n)
{
	tz_reader r;
	const uint8_t *b;
	uint64_t dl;
	int rc;

	memset(e, 0, sizeof(*e));
	tz_reader_init(&r, p, n);
	if (tz_reader_bytes(&r, &b, 4) < 0 || memcmp(b, ENROL_MAGIC, 4) != 0)
		return tz_error_set(TZ_ECORRUPT, "enrolment: not an enrolment payload");
	if ((rc = read_code(&r, e->hq)) < 0)
		return rc;
	if (strcmp(e->hq, "HQ") != 0)
		return tz_error_set(TZ_ECORRUPT, "enrolment: made by '%s', not HQ", e->hq);
	if (tz_reader_bytes(&r, &b, TZ_PK_BYTES) < 0)
		return tz_error_set(TZ_ECORRUPT, "enrolment: truncated");
	memcpy(e->hq_pk, b, TZ_PK_BYTES);
	if (tz_reader_bytes(&r, &b, 16) < 0)
		return tz_error_set(TZ_ECORRUPT, "enrolment: truncated");
	memcpy(e->hq_instance, b, 16);
	if ((rc = read_code(&r, e->code)) < 0)
		return rc;
	if (strcmp(e->code, "HQ") == 0)
		return tz_error_set(TZ_ECORRUPT, "enrolment: for HQ itself");
	if (tz_reader_bytes(&r, &b, TZ_ENROL_SECRET_BYTES) < 0 || tz_reader_varint(&r, &dl, r.len) < 0 ||
	    tz_reader_bytes(&r, &e->dict, dl) < 0)
		return tz_error_set(TZ_ECORRUPT, "enrolment: truncated");
	memcpy(e->secret, b, TZ_ENROL_SECRET_BYTES);
	if (dl != 0)
		return tz_error_set(TZ_EPROTO, "enrolment: a dictionary of %llu bytes, which this build does not use",
				    (unsigned long long)dl);
	e->dict_len = dl;
	e->deltas = r.p;
	e->deltas_len = r.len;
	return TZ_OK;
}

static int init_branch_txn(tz_store *s, const enrol_payload *e, const tz_oid *v0, const tz_oid *root,
			   uint64_t *rows)
{
	char hex[2 * TZ_ENROL_SECRET_BYTES + 1];
	tz_oid empty;
	uint64_t kept;
	int64_t ver = 0;
	sqlite3_stmt *q = NULL;
	int rc;

	memset(&empty, 0, sizeof(empty));
	if ((rc = tz_sql__exec(s, "BEGIN IMMEDIATE")) < 0)
		return rc;
	if ((rc = tz_schema__install_from_tree(s, NULL, root)) < 0 ||
	    (rc = tz_materialise__trees(s, NULL, &empty, root, rows, &kept)) < 0 ||
	    (rc = tz_registry__add(s, "HQ", "hq", e->hq_pk, NULL)) < 0)
		goto fail;
	hex_of(hex, e->hq_instance, 16);
	if ((rc = tz_sql__prepare(s, &q, "UPDATE tz_keys SET instance = ?1 WHERE principal = 'HQ'")) < 0)
		goto fail;
	sqlite3_bind_text(q, 1, hex, -1, SQLITE_STATIC);
	rc = sqlite3_step(q) == SQLITE_DONE ? TZ_OK : tz_sql__error(s, sqlite3_errcode(s->db), "cannot record HQ");
	sqlite3_finalize(q);
	if (rc < 0)
		goto fail;
	{
		/* the schema version is the snapshot's */
		const char *comp[2] = { "_schema", "version" };
		size_t len[2] = { 7, 7 };
		tz_oid vo;
		git_object_t type;
		uint8_t *d = NULL;
		size_t dn;
		if ((rc = tz_tree__lookup(s, NULL, &vo, root, comp, len, 2)) < 0)
			goto fail;
		if (!tz_oid_is_zero(&vo) && (rc = tz_obj__read(s, NULL, &vo, &type, &d, &dn)) == TZ_OK) {
			char buf[32];
			snprintf(buf, sizeof(buf), "%.*s", (int)(dn < 31 ? dn : 31), (const char *)d);
			ver = strtoll(buf, NULL, 10);
		}
		tz_free(d);
		if (rc < 0)
			goto fail;
	}
	tz_oid_fmt(hex, v0);
	if ((rc = tz_meta__set_text(s, "head", hex)) < 0 || (rc = tz_meta__set_text(s, "base", hex)) < 0 ||
	    (rc = tz_meta__set_int(s, "schema_version", ver)) < 0)
		goto fail;
	hex_of(hex, e->secret, TZ_ENROL_SECRET_BYTES);
	if ((rc = tz_meta__set_text(s, "enrol_secret", hex)) < 0 || (rc = tz_sql__exec(s, "COMMIT")) < 0)
		goto fail;
	tz_wipe(hex, sizeof(hex));
	return TZ_OK;
fail:
	tz_wipe(hex, sizeof(hex));
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int tz_store_init_branch(const char *dir, const void *payload, size_t n, tz_progress_cb cb, void *cb_payload)
{
	enrol_payload e;
	rebuilt b;
	tz_store *s = NULL;
	tz_incoming in;
	tz_oid root, par[1];
	size_t np;
	uint64_t rows = 0;
	bool made = false, inited = false;
	int rc;

	memset(&b, 0, sizeof(b));
	memset(&in, 0, sizeof(in));
	tz_staging__init(&b.st);
	if ((rc = parse_enrol(&e, payload, n)) < 0)
		goto done;
	if ((rc = tz_store__init(dir, e.code, &made)) < 0)
		goto done;
	inited = true;
	if ((rc = tz_store_open(&s, dir)) < 0)
		goto done;
	tz_store_set_progress(s, cb, cb_payload);
	if ((rc = tz_store__lock(s)) < 0)
		goto done;
	in.sender = "HQ";
	if ((rc = rebuild(s, &in, e.deltas, e.deltas_len, (const uint8_t(*)[TZ_PK_BYTES])&e.hq_pk, 1, &b)) < 0)
		goto unlock;
	if (b.n != 1 || (rc = tz_commit__parse(s, &b.st, &b.commits[0], &root, par, 1, &np)) < 0 || np != 0) {
		rc = rc < 0 ? rc : tz_error_set(TZ_ECORRUPT, "enrolment: the snapshot is not one root commit");
		goto unlock;
	}
	/* objects in bulk: one pack */
	if ((rc = tz_pack__write(s, &b.st)) < 0 || (rc = init_branch_txn(s, &e, &b.commits[0], &root, &rows)) < 0)
		goto unlock;
	if (tz_ref__set(s, &b.commits[0], "enrol") < 0)
		tz_error_clear();
unlock:
	tz_store__unlock(s);
done:
	tz_wipe(&e, sizeof(e));
	rebuilt_release(&b);
	tz_store_close(s);
	if (rc < 0) {
		if (inited)
			tz_store__undo_init(dir, made);
		tz_error_wrap(rc, "cannot create the branch store '%s'", dir);
	}
	return rc;
}

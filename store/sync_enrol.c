/*
 * sync_enrol.c - enrolment: HQ adds a branch (its first view and secret),
 * and a branch store is made from the enrolment file (docs/protocol.md).
 */
#include "store/sync_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	if (!tz_sync__is_hq(s))
		return tz_error_set(TZ_EINVAL, "only HQ enrols branches (this store is %s)", s->code);
	if (!tz_code_valid(code) || strcmp(code, "HQ") == 0)
		return tz_error_set(TZ_EINVAL, "'%s' is not a branch code ([A-Z0-9][A-Z0-9_-]{0,15}, not HQ)", code);
	if ((rc = tz_store__lock(s)) < 0)
		return rc;
	tz_random_bytes(secret, sizeof(secret));
	if ((rc = tz_sync__instance_of(s, inst)) < 0)
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
	if ((rc = tz_commit__tree(s, &head, &root)) < 0 || (rc = tz_sync__view_tree(s, &st, &root, code, &view_root)) < 0 ||
	    (rc = tz_sync__schema_version(s, &ver)) < 0)
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
	tz_sync__hex_of(hex, e->hq_instance, 16);
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
	tz_sync__hex_of(hex, e->secret, TZ_ENROL_SECRET_BYTES);
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
	tz_rebuilt b;
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
	if ((rc = tz_sync__rebuild(s, &in, e.deltas, e.deltas_len, (const uint8_t(*)[TZ_PK_BYTES])&e.hq_pk, 1, &b)) < 0)
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
	tz_sync__rebuilt_release(&b);
	tz_store_close(s);
	if (rc < 0) {
		if (inited)
			tz_store__undo_init(dir, made);
		tz_error_wrap(rc, "cannot create the branch store '%s'", dir);
	}
	return rc;
}

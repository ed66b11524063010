/*
 * registry.c - the keys a store knows (tz_keys): its own, HQ's (at a
 * branch), the branches' (at HQ, bound at their first bundle) and the
 * administrators' (at HQ).  Signatures in the history are checked against
 * this table, and `keys allowed-signers` prints it for stock git.
 */
#include "store/store_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

bool tz_admin_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 32 || !(name[0] >= 'a' && name[0] <= 'z'))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

int tz_registry__add(tz_store *s, const char *principal, const char *role, const uint8_t *pk,
		     const uint8_t *secret)
{
	sqlite3_stmt *st = NULL;
	int rc, step;

	if ((rc = tz_sql__prepare(s, &st, "INSERT INTO tz_keys(principal, role, pk, added, secret)"
					  " VALUES (?1, ?2, ?3, ?4, ?5)")) < 0)
		return rc;
	sqlite3_bind_text(st, 1, principal, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, role, -1, SQLITE_STATIC);
	if (pk)
		sqlite3_bind_blob(st, 3, pk, TZ_PK_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	if (secret)
		sqlite3_bind_blob(st, 5, secret, TZ_ENROL_SECRET_BYTES, SQLITE_STATIC);
	step = sqlite3_step(st);
	sqlite3_finalize(st);
	if (step == SQLITE_CONSTRAINT)
		return tz_error_set(TZ_EEXISTS, "'%s' is already registered", principal);
	if (step != SQLITE_DONE)
		return tz_sql__error(s, step, "cannot register a key");
	return TZ_OK;
}

/* Fill k from the current row of a SELECT principal, role, pk, added,
 * revoked, secret IS NOT NULL, instance. */
static void row_info(sqlite3_stmt *q, tz_key_info *k)
{
	const void *pk = sqlite3_column_blob(q, 2);

	memset(k, 0, sizeof(*k));
	k->principal = (const char *)sqlite3_column_text(q, 0);
	k->role = (const char *)sqlite3_column_text(q, 1);
	if (pk && sqlite3_column_bytes(q, 2) == TZ_PK_BYTES) {
		k->has_pk = true;
		memcpy(k->pk, pk, TZ_PK_BYTES);
	}
	k->added = sqlite3_column_int64(q, 3);
	k->revoked = sqlite3_column_int64(q, 4);
	k->pending = !k->has_pk && sqlite3_column_int(q, 5) != 0;
	k->instance = (const char *)sqlite3_column_text(q, 6);
}

#define KEY_COLUMNS "principal, role, pk, added, coalesce(revoked, 0), secret IS NOT NULL, coalesce(instance, '')"

int tz_store_keys(tz_store *s, tz_key_cb cb, void *payload)
{
	sqlite3_stmt *q = NULL;
	int rc, step;

	if ((rc = tz_sql__prepare(s, &q, "SELECT " KEY_COLUMNS " FROM tz_keys ORDER BY"
					 " CASE role WHEN 'hq' THEN 0 WHEN 'branch' THEN 1 ELSE 2 END, principal")) < 0)
		return rc;
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		tz_key_info k;
		row_info(q, &k);
		if ((rc = cb(&k, payload)) != 0)
			break;
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_sql__error(s, step, "cannot list keys");
	sqlite3_finalize(q);
	return rc;
}

int tz_registry__get(tz_store *s, const char *principal, tz_key_info *out, uint8_t secret[TZ_ENROL_SECRET_BYTES],
		     bool *found)
{
	sqlite3_stmt *q = NULL;
	int rc, step;

	*found = false;
	if ((rc = tz_sql__prepare(s, &q, "SELECT " KEY_COLUMNS ", secret FROM tz_keys WHERE principal = ?1")) < 0)
		return rc;
	sqlite3_bind_text(q, 1, principal, -1, SQLITE_STATIC);
	if ((step = sqlite3_step(q)) == SQLITE_ROW) {
		row_info(q, out);
		out->principal = NULL;   /* the statement's memory goes with it */
		out->role = NULL;
		out->instance = NULL;
		snprintf(out->role_buf, sizeof(out->role_buf), "%s", (const char *)sqlite3_column_text(q, 1));
		snprintf(out->instance_buf, sizeof(out->instance_buf), "%s", (const char *)sqlite3_column_text(q, 6));
		out->role = out->role_buf;
		out->instance = out->instance_buf;
		if (secret) {
			memset(secret, 0, TZ_ENROL_SECRET_BYTES);
			if (sqlite3_column_bytes(q, 7) == TZ_ENROL_SECRET_BYTES)
				memcpy(secret, sqlite3_column_blob(q, 7), TZ_ENROL_SECRET_BYTES);
		}
		*found = true;
	} else if (step != SQLITE_DONE) {
		rc = tz_sql__error(s, step, "cannot read the key registry");
	}
	sqlite3_finalize(q);
	return rc;
}

int tz_registry__principal_of(tz_store *s, const uint8_t pk[TZ_PK_BYTES], char out[TZ_PRINCIPAL_SIZE],
			      bool *found)
{
	sqlite3_stmt *q = NULL;
	int rc, step;

	*found = false;
	out[0] = '\0';
	if ((rc = tz_sql__prepare(s, &q, "SELECT principal FROM tz_keys WHERE pk = ?1")) < 0)
		return rc;
	sqlite3_bind_blob(q, 1, pk, TZ_PK_BYTES, SQLITE_STATIC);
	if ((step = sqlite3_step(q)) == SQLITE_ROW) {
		snprintf(out, TZ_PRINCIPAL_SIZE, "%s", (const char *)sqlite3_column_text(q, 0));
		*found = true;
	} else if (step != SQLITE_DONE) {
		rc = tz_sql__error(s, step, "cannot read the key registry");
	}
	sqlite3_finalize(q);
	return rc;
}

static int is_hq(tz_store *s, const char *what)
{
	if (strcmp(s->code, "HQ") != 0)
		return tz_error_set(TZ_EINVAL, "%s: only HQ keeps the key registry (this store is %s)", what, s->code);
	return TZ_OK;
}

int tz_store_key_revoke(tz_store *s, const char *principal)
{
	tz_key_info k;
	bool found;
	char sql[128];
	int rc;

	if ((rc = is_hq(s, "keys revoke")) < 0)
		return rc;
	if (strcmp(principal, s->code) == 0)
		return tz_error_set(TZ_EINVAL, "HQ cannot revoke its own key");
	if ((rc = tz_store__lock(s)) < 0)
		return rc;
	if ((rc = tz_registry__get(s, principal, &k, NULL, &found)) < 0)
		goto done;
	if (!found) {
		rc = tz_error_set(TZ_ENOTFOUND, "no key '%s' in the registry (see 'syncctl keys show')", principal);
		goto done;
	}
	if (k.revoked) {
		rc = tz_error_set(TZ_EEXISTS, "the key of '%s' is already revoked", principal);
		goto done;
	}
	snprintf(sql, sizeof(sql), "UPDATE tz_keys SET revoked = %lld, secret = NULL WHERE principal = ?1",
		 (long long)time(NULL));
	{
		sqlite3_stmt *st = NULL;
		int step;
		if ((rc = tz_sql__prepare(s, &st, sql)) < 0)
			goto done;
		sqlite3_bind_text(st, 1, principal, -1, SQLITE_STATIC);
		step = sqlite3_step(st);
		sqlite3_finalize(st);
		if (step != SQLITE_DONE)
			rc = tz_sql__error(s, step, "cannot revoke");
	}
done:
	tz_store__unlock(s);
	return rc;
}

int tz_store_key_add_admin(tz_store *s, const char *name)
{
	tz_keypair kp;
	char *dir = NULL, file[64];
	bool found;
	tz_key_info k;
	int rc;

	if ((rc = is_hq(s, "keys add-admin")) < 0)
		return rc;
	if (!tz_admin_name_valid(name))
		return tz_error_set(TZ_EINVAL, "'%s' is not an administrator name ([a-z][a-z0-9._-]{0,31})", name);
	if ((rc = tz_store__lock(s)) < 0)
		return rc;
	memset(&kp, 0, sizeof(kp));
	if ((rc = tz_registry__get(s, name, &k, NULL, &found)) < 0)
		goto done;
	if (found) {
		rc = tz_error_set(TZ_EEXISTS, "administrator '%s' already has a key", name);
		goto done;
	}
	snprintf(file, sizeof(file), "admin-%s", name);
	if ((dir = tz_malloc(strlen(s->dir) + 6)) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	sprintf(dir, "%s/keys", s->dir);
	/* the key files first: a registry row without them would name a key
	 * nobody can use; files without a row are refused by the next try */
	if ((rc = tz_keypair_generate(&kp)) < 0 || (rc = tz_keypair_save(&kp, dir, file, name)) < 0)
		goto done;
	rc = tz_registry__add(s, name, "admin", kp.pk, NULL);
done:
	tz_keypair_wipe(&kp);
	tz_free(dir);
	tz_store__unlock(s);
	return rc;
}

static void put_time(tz_buf *out, int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	tz_buf_puts(out, buf);
}

static int signer_line(const tz_key_info *k, void *payload)
{
	tz_buf *out = payload;

	if (!k->has_pk) {
		tz_buf_printf(out, "# %s (%s): enrolled, key not bound yet\n", k->principal, k->role);
		return TZ_OK;
	}
	tz_buf_printf(out, "# %s (%s), registered ", k->principal, k->role);
	put_time(out, k->added);
	if (k->revoked) {
		tz_buf_puts(out, ", revoked ");
		put_time(out, k->revoked);
		tz_buf_puts(out, " (still listed: it signed history before then)");
	}
	tz_buf_printf(out, "\n%s namespaces=\"git\" ", k->principal);
	tz_pubkey_openssh(out, k->pk);
	tz_buf_putc(out, '\n');
	return tz_buf_error(out);
}

int tz_store_allowed_signers(tz_store *s, tz_buf *out)
{
	int rc = tz_store_keys(s, signer_line, out);

	return rc < 0 ? rc : tz_buf_error(out);
}

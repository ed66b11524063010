/*
 * cmd_write.c - syncctl commands that change a store: init-hq, schema
 * apply, commit, checkout; and keys (read-only, beside them for brevity).
 */
#include "tools/cli.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* A schema file of at most 64 MiB: DDL and declarations are kilobytes;
 * a file that size is a mistake (a database dump passed by error). */
#define SCHEMA_FILE_MAX (64u << 20)

int cmd_init_hq(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	tz_buf b = TZ_BUF_INIT;
	int rc = CLI_EXIT_OK;

	if (cli_take_json(&o, &argc, argv) != 2)
		return cli_usage("init-hq", "expected exactly one directory");
	if (tz_store_init(argv[1], "HQ") < 0)
		return cli_fail("init-hq");
	if (o.json) {
		tz_buf_puts(&b, "{\"store\": ");
		json_cstr(&b, argv[1]);
		tz_buf_puts(&b, ", \"replica\": \"HQ\"}");
		rc = cli_emit(&b);
	} else {
		printf("initialised HQ store in '%s'\n", argv[1]);
	}
	tz_buf_release(&b);
	return rc;
}

static int read_text_file(const char *path, char **out)
{
	tz_buf b;
	char chunk[65536];
	size_t n;
	FILE *f = fopen(path, "re");

	*out = NULL;
	if (f == NULL)
		return tz_error_set(TZ_EIO, "cannot open '%s': %s", path, strerror(errno));
	tz_buf_init(&b, SCHEMA_FILE_MAX);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		tz_buf_put(&b, chunk, n);
	if (ferror(f))
		tz_error_set(b.err = TZ_EIO, "cannot read '%s'", path);
	fclose(f);
	if (b.err == TZ_OK && memchr(b.data ? b.data : (uint8_t *)"", 0, b.len))
		b.err = tz_error_set(TZ_EINVAL, "'%s' contains a NUL byte; not an SQL text file", path);
	if (b.err == TZ_OK)
		tz_buf_putc(&b, 0);
	if (b.err != TZ_OK) {
		int rc = b.err;
		tz_buf_release(&b);
		return rc;
	}
	*out = (char *)tz_buf_detach(&b, &n);
	return *out ? TZ_OK : TZ_ENOMEM;
}

static void print_commit(const cli_opts *o, const tz_commit_result *r, const char *what)
{
	char hex[41];
	tz_buf b = TZ_BUF_INIT;

	tz_oid_fmt(hex, &r->commit);
	if (o->json) {
		tz_buf_printf(&b, "{\"committed\": %s, \"commit\": ", r->committed ? "true" : "false");
		if (r->committed)
			json_cstr(&b, hex);
		else
			tz_buf_puts(&b, "null");
		tz_buf_printf(&b, ", \"entries\": %llu, \"added\": %llu, \"changed\": %llu, \"deleted\": %llu,"
			      " \"objects\": %llu}", (unsigned long long)r->entries, (unsigned long long)r->rows_added,
			      (unsigned long long)r->rows_changed, (unsigned long long)r->rows_deleted,
			      (unsigned long long)r->objects_written);
		cli_emit(&b);
	} else if (r->committed) {
		printf("%s %.12s: %llu added, %llu changed, %llu deleted (%llu objects written)\n", what, hex,
		       (unsigned long long)r->rows_added, (unsigned long long)r->rows_changed,
		       (unsigned long long)r->rows_deleted, (unsigned long long)r->objects_written);
	} else if (r->entries) {
		printf("nothing to commit (%llu change-log entries cancel out; consumed)\n",
		       (unsigned long long)r->entries);
	} else {
		printf("nothing to commit\n");
	}
	tz_buf_release(&b);
}

int cmd_schema(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	tz_store *s = NULL;
	tz_commit_result r;
	char *sql = NULL;
	int rc = CLI_EXIT_OK;

	if (cli_take_json(&o, &argc, argv) != 3 || strcmp(argv[1], "apply") != 0)
		return cli_usage("schema", "expected 'apply FILE.sql'");
	if (read_text_file(argv[2], &sql) < 0)
		return cli_fail("schema apply");
	if (cli_open(&o, &s) < 0)
		rc = cli_fail("schema apply");
	else if (tz_store_schema_apply(s, sql, argv[2], &r) < 0)
		rc = cli_fail("schema apply");
	else
		print_commit(&o, &r, "schema applied, commit");
	tz_store_close(s);
	tz_free(sql);
	return rc;
}

int cmd_commit(const cli_opts *o, int argc, char **argv)
{
	cli_opts opts = *o;
	tz_store *s = NULL;
	tz_commit_result r;
	const char *msg = NULL;
	int rc = CLI_EXIT_OK;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-m") == 0 && i + 1 < argc)
			msg = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			opts.json = true;
		else
			return cli_usage("commit", "unexpected argument '%s'", argv[i]);
	}
	if (cli_open(&opts, &s) < 0 || tz_store_commit(s, msg, &r) < 0)
		rc = cli_fail("commit");
	else
		print_commit(&opts, &r, "commit");
	tz_store_close(s);
	return rc;
}

static double mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

int cmd_gc(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	tz_store *s = NULL;
	tz_buf b = TZ_BUF_INIT;
	tz_gc_result r;
	int rc = CLI_EXIT_OK;

	if (cli_take_json(&o, &argc, argv) != 1)
		return cli_usage("gc", "unexpected argument '%s'", argv[1]);
	if (cli_open(&o, &s) < 0 || tz_store_gc(s, &r) < 0) {
		rc = cli_fail("gc");
	} else if (o.json) {
		tz_buf_printf(&b, "{\"done\": %s, \"objects\": %llu, \"packs_before\": %llu, \"loose_before\": %llu, "
			      "\"temporaries_removed\": %llu, \"bytes_before\": %llu, \"bytes_after\": %llu}",
			      r.noop ? "false" : "true", (unsigned long long)r.objects, (unsigned long long)r.packs_before,
			      (unsigned long long)r.loose_before, (unsigned long long)r.tmp_removed,
			      (unsigned long long)r.bytes_before, (unsigned long long)r.bytes_after);
		rc = cli_emit(&b);
	} else if (r.noop && r.tmp_removed) {
		printf("gc: one pack already (%.1f MiB, no loose object); %llu temporaries of a killed writer removed\n",
		       mib(r.bytes_before), (unsigned long long)r.tmp_removed);
	} else if (r.noop) {
		printf("gc: nothing to do (one pack, %.1f MiB, no loose object)\n", mib(r.bytes_before));
	} else {
		printf("gc: %llu objects in one pack, from %llu packs and %llu loose objects (%.1f MiB -> %.1f MiB)\n",
		       (unsigned long long)r.objects, (unsigned long long)r.packs_before,
		       (unsigned long long)r.loose_before, mib(r.bytes_before), mib(r.bytes_after));
	}
	tz_buf_release(&b);
	tz_store_close(s);
	return rc;
}

int cmd_checkout(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	tz_store *s = NULL;
	tz_buf b = TZ_BUF_INIT;
	uint64_t n;
	tz_oid head;
	char hex[41];
	int rc = CLI_EXIT_OK;

	if (cli_take_json(&o, &argc, argv) != 2)
		return cli_usage("checkout", "expected one revision");
	if (cli_open(&o, &s) < 0 || tz_store_checkout(s, argv[1], &n) < 0 || tz_store_resolve(s, &head, NULL) < 0) {
		rc = cli_fail("checkout");
	} else if (tz_oid_fmt(hex, &head), o.json) {
		tz_buf_puts(&b, "{\"head\": ");
		json_cstr(&b, hex);
		tz_buf_printf(&b, ", \"paths_rewritten\": %llu}", (unsigned long long)n);
		rc = cli_emit(&b);
	} else {
		printf("head is now %.12s (%llu row paths rewritten)\n", hex, (unsigned long long)n);
	}
	tz_buf_release(&b);
	tz_store_close(s);
	return rc;
}

typedef struct {
	tz_buf *out;
	bool json;
	size_t n;
} keys_ctx;

static const char *key_status(const tz_key_info *k)
{
	return k->revoked ? "revoked" : k->pending ? "enrolled, key not bound yet" : "valid";
}

static int key_line(const tz_key_info *k, void *payload)
{
	keys_ctx *c = payload;
	tz_buf *b = c->out;

	if (c->json) {
		tz_buf_puts(b, c->n++ ? ", {\"principal\": " : "{\"principal\": ");
		json_cstr(b, k->principal);
		tz_buf_printf(b, ", \"role\": \"%s\", \"status\": \"%s\", \"public_key\": ", k->role,
			      k->revoked ? "revoked" : k->pending ? "pending" : "valid");
		if (k->has_pk) {
			tz_buf key = TZ_BUF_INIT;
			tz_pubkey_openssh(&key, k->pk);
			json_str(b, key.data, key.len);
			tz_buf_release(&key);
		} else {
			tz_buf_puts(b, "null");
		}
		tz_buf_printf(b, ", \"added\": %lld, \"revoked\": ", (long long)k->added);
		if (k->revoked)
			tz_buf_printf(b, "%lld}", (long long)k->revoked);
		else
			tz_buf_puts(b, "null}");
		return tz_buf_error(b);
	}
	tz_buf_printf(b, "%-16s %-7s %-8s ", k->principal, k->role, k->revoked ? "revoked" : k->pending ? "pending" : "valid");
	if (k->has_pk)
		tz_pubkey_openssh(b, k->pk);
	else
		tz_buf_printf(b, "(%s)", key_status(k));
	tz_buf_putc(b, '\n');
	c->n++;
	return tz_buf_error(b);
}

int cmd_keys(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	tz_store *s = NULL;
	tz_buf b = TZ_BUF_INIT, j = TZ_BUF_INIT;
	int rc = CLI_EXIT_OK;

	cli_take_json(&o, &argc, argv);
	if (argc < 2)
		return cli_usage("keys", "expected show, allowed-signers, revoke CODE or add-admin NAME");
	if ((strcmp(argv[1], "revoke") == 0 || strcmp(argv[1], "add-admin") == 0)) {
		bool revoke = strcmp(argv[1], "revoke") == 0;
		if (argc != 3 || argv[2][0] == '-')
			return cli_usage("keys", revoke ? "revoke takes one code" : "add-admin takes one name");
		if (cli_open(&o, &s) < 0 ||
		    (revoke ? tz_store_key_revoke(s, argv[2]) : tz_store_key_add_admin(s, argv[2])) < 0) {
			rc = cli_fail(revoke ? "keys revoke" : "keys add-admin");
		} else if (o.json) {
			tz_buf_printf(&j, "{\"%s\": ", revoke ? "revoked" : "admin");
			json_cstr(&j, argv[2]);
			tz_buf_puts(&j, "}");
			rc = cli_emit(&j);
		} else if (revoke) {
			printf("revoked the key of %s: no bundle it signs is accepted from now on\n", argv[2]);
		} else {
			printf("made a key for administrator %s in %s/keys/admin-%s\n", argv[2], o.dir, argv[2]);
		}
		goto done;
	}
	if (argc != 2 || (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "allowed-signers") != 0))
		return cli_usage("keys", "expected show, allowed-signers, revoke CODE or add-admin NAME");
	if (strcmp(argv[1], "show") == 0) {
		keys_ctx c = { o.json ? &j : &b, o.json, 0 };
		if (o.json)
			tz_buf_puts(&j, "[");
		if (cli_open(&o, &s) < 0 || tz_store_keys(s, key_line, &c) < 0) {
			rc = cli_fail("keys show");
			goto done;
		}
		if (o.json) {
			tz_buf_puts(&j, "]");
			rc = cli_emit(&j);
		} else if (fwrite(b.data, 1, b.len, stdout) != b.len) {
			rc = cli_fail("keys show");
		}
		goto done;
	}
	if (cli_open(&o, &s) < 0 || tz_store_allowed_signers(s, &b) < 0) {
		rc = cli_fail("keys allowed-signers");
	} else if (o.json) {
		tz_buf_printf(&j, "{\"replica\": \"%s\", \"allowed_signers\": ", tz_store_code(s));
		json_str(&j, b.data, b.len);
		tz_buf_puts(&j, "}");
		rc = cli_emit(&j);
	} else if (fwrite(b.data, 1, b.len, stdout) != b.len) {
		rc = cli_fail("keys allowed-signers");
	}
done:
	tz_buf_release(&b);
	tz_buf_release(&j);
	tz_store_close(s);
	return rc;
}

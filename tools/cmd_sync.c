/*
 * cmd_sync.c - enrolment and the sync cycle by file: branch add,
 * init-branch, export, import; and the key registry's keys verbs.
 */
#include "tools/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "syncd/tz_exchange.h"

/* A passphrase from --passphrase-file F (its first line) or TZ_PASSPHRASE.
 * Returns 0, or CLI_EXIT_USAGE/CLI_EXIT_FAIL after printing why. */
static int passphrase(const char *cmd, const char *file, tz_buf *out)
{
	const char *env = getenv("TZ_PASSPHRASE");

	if (file) {
		if (tz_file_read(out, file, 4096) < 0)
			return cli_fail(cmd);
		size_t n = 0;
		while (n < out->len && out->data[n] != '\n' && out->data[n] != '\r')
			n++;
		tz_wipe(out->data + n, out->len - n);
		out->len = n;
	} else if (env) {
		tz_buf_puts(out, env);
	} else {
		return cli_usage(cmd, "no passphrase: give --passphrase-file F or set TZ_PASSPHRASE");
	}
	if (out->len == 0)
		return cli_usage(cmd, "the passphrase is empty");
	return tz_buf_error(out) < 0 ? cli_fail(cmd) : 0;
}

static void release_secret(tz_buf *b)
{
	tz_wipe(b->data, b->len);
	tz_buf_release(b);
}

/* "--name VALUE" at argv[*i]: *i advanced, *out set; false when absent. */
static bool take_opt(const char *name, int argc, char **argv, int *i, const char **out)
{
	if (strcmp(argv[*i], name) != 0 || *i + 1 >= argc)
		return false;
	*out = argv[++*i];
	return true;
}

int cmd_branch(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	const char *code = NULL, *out = NULL, *pfile = NULL;
	tz_buf pass = TZ_BUF_INIT, j = TZ_BUF_INIT;
	tz_store *s = NULL;
	int rc;

	cli_take_json(&o, &argc, argv);
	if (argc < 2 || strcmp(argv[1], "add") != 0)
		return cli_usage("branch", "expected 'add'");
	for (int i = 2; i < argc; i++) {
		if (take_opt("--out", argc, argv, &i, &out) || take_opt("--passphrase-file", argc, argv, &i, &pfile))
			continue;
		if (argv[i][0] == '-' || code)
			return cli_usage("branch", "unexpected '%s'", argv[i]);
		code = argv[i];
	}
	if (code == NULL || out == NULL)
		return cli_usage("branch", "a branch code and --out FILE are required");
	if ((rc = passphrase("branch add", pfile, &pass)) != 0)
		goto done;
	if (cli_open(&o, &s) < 0 || tz_sync_branch_add_file(s, code, out, (const char *)pass.data, pass.len) < 0) {
		rc = cli_fail("branch add");
		goto done;
	}
	if (o.json) {
		tz_buf_puts(&j, "{\"branch\": ");
		json_cstr(&j, code);
		tz_buf_puts(&j, ", \"enrolment_file\": ");
		json_cstr(&j, out);
		tz_buf_puts(&j, "}");
		rc = cli_emit(&j);
	} else {
		printf("enrolled %s; enrolment file %s (carry it to the branch with its passphrase, apart)\n", code, out);
	}
done:
	release_secret(&pass);
	tz_buf_release(&j);
	tz_store_close(s);
	return rc;
}

int cmd_init_branch(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	const char *dir = NULL, *file = NULL, *pfile = NULL;
	tz_buf pass = TZ_BUF_INIT, j = TZ_BUF_INIT;
	tz_store *s = NULL;
	int rc;

	cli_take_json(&o, &argc, argv);
	for (int i = 1; i < argc; i++) {
		if (take_opt("--enroll", argc, argv, &i, &file) || take_opt("--passphrase-file", argc, argv, &i, &pfile))
			continue;
		if (argv[i][0] == '-' || dir)
			return cli_usage("init-branch", "unexpected '%s'", argv[i]);
		dir = argv[i];
	}
	if (dir == NULL || file == NULL)
		return cli_usage("init-branch", "a directory and --enroll FILE are required");
	if ((rc = passphrase("init-branch", pfile, &pass)) != 0)
		goto done;
	if (tz_sync_init_branch_file(dir, file, (const char *)pass.data, pass.len, o.progress ? cli_progress : NULL,
				     NULL) < 0 ||
	    tz_store_open(&s, dir) < 0) {
		rc = cli_fail("init-branch");
		goto done;
	}
	if (o.json) {
		tz_buf_puts(&j, "{\"replica\": ");
		json_cstr(&j, tz_store_code(s));
		tz_buf_puts(&j, ", \"dir\": ");
		json_cstr(&j, dir);
		tz_buf_puts(&j, "}");
		rc = cli_emit(&j);
	} else {
		printf("created branch store %s in %s; its first 'syncctl export' binds its key at HQ\n",
		       tz_store_code(s), dir);
	}
done:
	release_secret(&pass);
	tz_buf_release(&j);
	tz_store_close(s);
	return rc;
}

int cmd_export(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	const char *out = NULL, *for_code = NULL;
	tz_buf j = TZ_BUF_INIT;
	tz_export_info info;
	tz_store *s = NULL;
	int rc = CLI_EXIT_OK;

	cli_take_json(&o, &argc, argv);
	for (int i = 1; i < argc; i++) {
		if (take_opt("--out", argc, argv, &i, &out) || take_opt("--for", argc, argv, &i, &for_code))
			continue;
		return cli_usage("export", "unexpected '%s'", argv[i]);
	}
	if (out == NULL)
		return cli_usage("export", "--out FILE is required");
	if (cli_open(&o, &s) < 0 || tz_sync_export_file(s, for_code, out, &info) < 0) {
		rc = cli_fail("export");
	} else if (o.json) {
		tz_buf_puts(&j, "{\"file\": ");
		json_cstr(&j, out);
		tz_buf_printf(&j, ", \"sender\": \"%s\", \"recipient\": \"%s\", \"sequence\": %llu, \"commits\": %zu,"
			      " \"prerequisites\": %zu, \"payload_bytes\": %llu, \"bytes\": %llu, \"binds_key\": %s}",
			      tz_store_code(s), info.recipient, (unsigned long long)info.sequence, info.ncommits,
			      info.nprereq, (unsigned long long)info.payload_bytes, (unsigned long long)info.file_bytes,
			      info.bind ? "true" : "false");
		rc = cli_emit(&j);
	} else {
		printf("wrote %s for %s: sequence %llu, %zu commit%s, %llu bytes%s\n", out, info.recipient,
		       (unsigned long long)info.sequence, info.ncommits, info.ncommits == 1 ? "" : "s",
		       (unsigned long long)info.file_bytes, info.bind ? " (binds this branch's key)" : "");
	}
	tz_buf_release(&j);
	tz_store_close(s);
	return rc;
}

static void refused_json(tz_buf *j, const tz_import_result *r)
{
	tz_buf_puts(j, "[");
	for (size_t i = 0; i < r->nrefused; i++) {
		const tz_refused *f = &r->refused[i];
		tz_buf_puts(j, i ? ", {\"table\": " : "{\"table\": ");
		json_cstr(j, f->table);
		tz_buf_puts(j, ", \"partition\": ");
		json_cstr(j, f->partition);
		tz_buf_puts(j, ", \"key\": ");
		json_cstr(j, f->key);
		tz_buf_puts(j, ", \"why\": ");
		json_cstr(j, f->why);
		tz_buf_puts(j, "}");
	}
	tz_buf_puts(j, "]");
}

/* A name as text, control bytes (and DEL) written as \xNN. */
static void put_safe(const char *p)
{
	for (; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

/* A commit id as a JSON string, or null when there is none. */
static void json_oid(tz_buf *j, const tz_oid *oid)
{
	char hex[41];

	if (tz_oid_is_zero(oid)) {
		tz_buf_puts(j, "null");
		return;
	}
	tz_oid_fmt(hex, oid);
	tz_buf_printf(j, "\"%s\"", hex);
}

int cmd_import(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	tz_buf j = TZ_BUF_INIT;
	tz_bundle_header h;
	tz_import_result r;
	tz_merge_summary ms;
	tz_store *s = NULL;
	int rc = CLI_EXIT_OK;

	cli_take_json(&o, &argc, argv);
	if (argc != 2 || argv[1][0] == '-')
		return cli_usage("import", "expected one bundle file");
	if (cli_open(&o, &s) < 0 || tz_sync_import_file(s, argv[1], &h, &r, &ms) < 0) {
		rc = cli_fail("import");
		goto done;
	}
	if (o.json) {
		tz_buf_printf(&j, "{\"file\": ");
		json_cstr(&j, argv[1]);
		tz_buf_printf(&j, ", \"sender\": \"%s\", \"sequence\": %llu, \"noop\": %s, \"commits\": %zu,"
			      " \"commits_new\": %zu, \"rows_merged\": %llu, \"rows_written\": %llu, \"rows_kept\": %llu,"
			      " \"sealed\": %llu, \"merged_local\": %s, \"head\": ",
			      h.sender, (unsigned long long)h.sequence, r.noop ? "true" : "false", r.commits,
			      r.commits_new, (unsigned long long)r.rows_merged, (unsigned long long)r.rows_written,
			      (unsigned long long)r.rows_kept, (unsigned long long)r.sealed, r.merged ? "true" : "false");
		json_oid(&j, &r.head);
		tz_buf_puts(&j, ", \"line\": ");
		json_oid(&j, &r.line);
		tz_buf_puts(&j, ", \"refused\": ");
		refused_json(&j, &r);
		tz_buf_printf(&j, ", \"rows_both\": %llu, \"conflicts\": {", (unsigned long long)ms.rows_both);
		for (int k = 0; k < TZ_KIND_COUNT; k++)
			tz_buf_printf(&j, "%s\"%s\": %llu", k ? ", " : "", tz_conflict_kind_name((tz_conflict_kind)k),
				      (unsigned long long)ms.queued[k]);
		tz_buf_printf(&j, "}, \"duplicates\": %llu, \"repointed\": %llu, \"conflict_ids\": [",
			      (unsigned long long)ms.duplicates, (unsigned long long)ms.repointed);
		for (int64_t id = ms.first_id; id && id <= ms.last_id; id++)
			tz_buf_printf(&j, "%s%lld", id > ms.first_id ? ", " : "", (long long)id);
		tz_buf_puts(&j, "]}");
		rc = cli_emit(&j);
	} else if (r.noop) {
		printf("%s: nothing new (%s)\n", argv[1], r.noop_why);
	} else {
		if (r.sealed)
			printf("committed %llu pending change%s first\n", (unsigned long long)r.sealed,
			       r.sealed == 1 ? "" : "s");
		printf("imported %s from %s (sequence %llu): %zu commit%s (%zu new)", argv[1], h.sender,
		       (unsigned long long)h.sequence, r.commits, r.commits == 1 ? "" : "s", r.commits_new);
		if (strcmp(tz_store_code(s), "HQ") == 0)
			printf(", %llu rows merged into main, %llu written to store.db\n",
			       (unsigned long long)r.rows_merged, (unsigned long long)r.rows_written);
		else
			printf(", %llu rows written to store.db%s\n", (unsigned long long)r.rows_written,
			       r.merged ? ", local commits merged on top" : "");
		if (r.rows_kept)
			printf("%llu rows with uncommitted local changes were left as they are\n",
			       (unsigned long long)r.rows_kept);
		uint64_t q = 0;
		for (int k = 0; k < TZ_KIND_COUNT; k++)
			q += ms.queued[k];
		if (ms.rows_both)
			printf("%llu rows changed on both sides merged by the policies\n", (unsigned long long)ms.rows_both);
		if (q) {
			printf("%llu conflict%s queued (ids %lld-%lld):", (unsigned long long)q, q == 1 ? "" : "s",
			       (long long)ms.first_id, (long long)ms.last_id);
			for (int k = 0; k < TZ_KIND_COUNT; k++)
				if (ms.queued[k])
					printf(" %llu %s", (unsigned long long)ms.queued[k],
					       tz_conflict_kind_name((tz_conflict_kind)k));
			printf(" (syncctl conflicts list)\n");
		}
		if (ms.repointed)
			printf("%llu references to merged rows re-pointed\n", (unsigned long long)ms.repointed);
		if (ms.duplicates)
			printf("%llu duplicate%s queued (syncctl duplicates list)\n", (unsigned long long)ms.duplicates,
			       ms.duplicates == 1 ? "" : "s");
		for (size_t i = 0; i < r.nrefused; i++) {
			/* names come from the branch: no byte of theirs drives the terminal */
			fputs("not applied: table ", stdout);
			put_safe(r.refused[i].table);
			fputs(" partition ", stdout);
			put_safe(r.refused[i].partition);
			fputs(" key ", stdout);
			put_safe(r.refused[i].key);
			printf(": %s\n", r.refused[i].why);
		}
	}
	tz_bundle_header_release(&h);
	tz_import_result_release(&r);
done:
	tz_buf_release(&j);
	tz_store_close(s);
	return rc;
}

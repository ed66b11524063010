/*
 * cmd_duplicates.c - syncctl duplicates list | merge KEEP DROP: the rows
 * sharing a declared unique key (tz_unique), and their merge by an
 * administrator (docs/integrity.md, docs/cli.md).
 */
#include "tools/cli.h"

#include <stdlib.h>
#include <string.h>

#include "conflict/tz_conflict.h"

typedef struct {
	tz_buf *out;
	bool json;
	size_t n;
} dup_list;

static void json_key(tz_buf *j, const tz_value *v, size_t n)
{
	tz_buf_puts(j, "[");
	for (size_t i = 0; i < n; i++) {
		json_value(j, &v[i]);
		tz_buf_puts(j, i + 1 < n ? ", " : "");
	}
	tz_buf_puts(j, "]");
}

static int dup_json(const tz_duplicate *d, void *payload)
{
	dup_list *l = payload;
	tz_buf *j = l->out;

	tz_buf_printf(j, "%s{\"id\": %lld, \"status\": ", l->n++ ? ", " : "", (long long)d->id);
	json_cstr(j, d->status);
	tz_buf_puts(j, ", \"unique\": ");
	json_cstr(j, d->name);
	tz_buf_puts(j, ", \"table\": ");
	json_cstr(j, d->table);
	tz_buf_puts(j, ", \"rows\": [{\"key\": ");
	json_key(j, d->a, d->na);
	tz_buf_puts(j, ", \"partition\": ");
	json_cstr(j, d->part_a);
	tz_buf_puts(j, "}, {\"key\": ");
	json_key(j, d->b, d->nb);
	tz_buf_puts(j, ", \"partition\": ");
	json_cstr(j, d->part_b);
	tz_buf_puts(j, "}], \"branch\": ");
	json_cstr(j, d->branch);
	tz_buf_puts(j, ", \"merge_commit\": ");
	json_cstr(j, d->merge_commit);
	tz_buf_printf(j, ", \"created\": %lld", (long long)d->created);
	if (d->resolved_at) {
		tz_buf_printf(j, ", \"resolved_at\": %lld, \"resolved_by\": ", (long long)d->resolved_at);
		json_cstr(j, d->resolved_by ? d->resolved_by : "");
		tz_buf_puts(j, ", \"resolution_commit\": ");
		json_cstr(j, d->resolution_commit ? d->resolution_commit : "");
	}
	tz_buf_puts(j, "}");
	return tz_buf_error(j);
}

static void text_key(tz_buf *b, const tz_value *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		tz_buf_puts(b, i ? ", " : "");
		text_value(b, &v[i]);
	}
}

static int dup_text(const tz_duplicate *d, void *payload)
{
	dup_list *l = payload;
	tz_buf *b = l->out;

	l->n++;
	tz_buf_printf(b, "%lld  %s  %s (%s): ", (long long)d->id, d->status, d->table, d->name);
	text_key(b, d->a, d->na);
	tz_buf_printf(b, " [%s]  and  ", d->part_a);
	text_key(b, d->b, d->nb);
	tz_buf_printf(b, " [%s]  found at a merge from %s\n", d->part_b, d->branch);
	return tz_buf_error(b);
}

static int list(const cli_opts *o, int argc, char **argv)
{
	tz_buf out = TZ_BUF_INIT;
	tz_store *s = NULL;
	dup_list l = { &out, o->json, 0 };
	bool all = false;
	int rc = CLI_EXIT_OK;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--all") != 0)
			return cli_usage("duplicates", "unexpected '%s' (list [--json] [--all])", argv[i]);
		all = true;
	}
	if (o->json)
		tz_buf_puts(&out, "[");
	if (cli_open(o, &s) < 0 || tz_duplicates_list(s, all, o->json ? dup_json : dup_text, &l) < 0) {
		rc = cli_fail("duplicates list");
		goto done;
	}
	if (o->json) {
		tz_buf_puts(&out, "]");
		rc = cli_emit(&out);
	} else if (l.n == 0) {
		printf("no open duplicates\n");
	} else if (fwrite(out.data, 1, out.len, stdout) != out.len) {
		rc = cli_fail("duplicates list");
	}
done:
	tz_buf_release(&out);
	tz_store_close(s);
	return rc;
}

/* merge's arguments into mo (set: room for argc values); CLI_EXIT_OK or
 * the usage error. */
static int merge_args(int argc, char **argv, tz_dup_merge_opts *mo, tz_resolve_value *set)
{
	const char *keys[2];
	size_t nkeys = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if ((strcmp(a, "--set") == 0 || strcmp(a, "--null") == 0 || strcmp(a, "--as") == 0 ||
		     strcmp(a, "--table") == 0) && i + 1 < argc) {
			char *v = argv[++i], *eq;
			if (a[2] == 'a')
				mo->as = v;
			else if (a[2] == 't')
				mo->table = v;
			else if (a[2] == 'n')
				set[mo->nset++] = (tz_resolve_value){ v, NULL };
			else if ((eq = strchr(v, '=')) == NULL || eq == v)
				return cli_usage("duplicates", "--set takes COL=VALUE, not '%s'", v);
			else {
				*eq = '\0';
				set[mo->nset++] = (tz_resolve_value){ v, eq + 1 };
			}
		} else if ((a[0] == '-' && a[1] != '\0' && !(a[1] >= '0' && a[1] <= '9')) || nkeys == 2) {
			return cli_usage("duplicates", "unexpected '%s' (merge KEEP DROP [--table T] [--set COL=VALUE]... "
					 "[--null COL]... [--as NAME])", a);
		} else {
			keys[nkeys++] = a;
		}
	}
	if (nkeys != 2)
		return cli_usage("duplicates", "merge takes KEEP and DROP (primary keys; a composite key as a JSON array)");
	mo->keep = keys[0];
	mo->drop = keys[1];
	mo->set = set;
	return CLI_EXIT_OK;
}

static int merge(const cli_opts *o, int argc, char **argv)
{
	tz_dup_merge_opts mo;
	tz_dup_merge_result res;
	tz_resolve_value *set = calloc((size_t)argc, sizeof(*set));
	tz_store *s = NULL;
	tz_buf j = TZ_BUF_INIT;
	char hex[41];
	int rc;

	memset(&mo, 0, sizeof(mo));
	if (set == NULL) {
		tz_error_set(TZ_ENOMEM, "out of memory");
		return cli_fail("duplicates merge");
	}
	if ((rc = merge_args(argc, argv, &mo, set)) != CLI_EXIT_OK)
		goto done;
	if (cli_open(o, &s) < 0 || tz_duplicates_merge(s, &mo, &res) < 0) {
		rc = cli_fail("duplicates merge");
		goto done;
	}
	tz_oid_fmt(hex, &res.commit);
	if (o->json) {
		tz_buf_puts(&j, "{\"table\": ");
		json_cstr(&j, res.table);
		tz_buf_puts(&j, ", \"kept\": ");
		json_cstr(&j, mo.keep);
		tz_buf_puts(&j, ", \"dropped\": ");
		json_cstr(&j, mo.drop);
		tz_buf_printf(&j, ", \"repointed\": %llu, \"duplicates_resolved\": %llu, \"commit\": \"%s\", \"signed_by\": ",
			      (unsigned long long)res.repointed, (unsigned long long)res.resolved, hex);
		json_cstr(&j, mo.as ? mo.as : "HQ");
		tz_buf_puts(&j, "}");
		rc = cli_emit(&j);
	} else {
		printf("merged %s into %s in %s: %llu references re-pointed, %llu duplicate%s resolved; commit %.12s, "
		       "signed by %s\n", mo.drop, mo.keep, res.table, (unsigned long long)res.repointed,
		       (unsigned long long)res.resolved, res.resolved == 1 ? "" : "s", hex, mo.as ? mo.as : "HQ");
	}
done:
	tz_buf_release(&j);
	tz_store_close(s);
	free(set);
	return rc;
}

int cmd_duplicates(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;

	cli_take_json(&o, &argc, argv);
	if (argc < 2)
		return cli_usage("duplicates", "expected list or merge KEEP DROP");
	if (strcmp(argv[1], "list") == 0)
		return list(&o, argc - 1, argv + 1);
	if (strcmp(argv[1], "merge") == 0)
		return merge(&o, argc - 1, argv + 1);
	return cli_usage("duplicates", "expected list or merge KEEP DROP, not '%s'", argv[1]);
}

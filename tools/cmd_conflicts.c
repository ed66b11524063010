/*
 * cmd_conflicts.c - syncctl conflicts list | show | resolve: HQ's queue
 * of what the merge could not decide alone (docs/merge.md, docs/cli.md).
 */
#include "tools/cli.h"

#include <stdlib.h>
#include <string.h>

#include "conflict/tz_conflict.h"

/* The value of column `name` in row r as JSON (null when the row is absent). */
static void json_col(tz_buf *j, const tz_row *r, const char *name, size_t len)
{
	const tz_column *c = r ? tz_row_find(r, name, len) : NULL;

	if (c)
		json_value(j, &c->v);
	else
		tz_buf_puts(j, "null");
}

static void json_row(tz_buf *j, const tz_row *r)
{
	if (r == NULL) {
		tz_buf_puts(j, "null");
		return;
	}
	tz_buf_puts(j, "{");
	for (size_t i = 0; i < r->ncols; i++) {
		json_str(j, r->cols[i].name, r->cols[i].name_len);
		tz_buf_puts(j, ": ");
		json_value(j, &r->cols[i].v);
		tz_buf_puts(j, i + 1 < r->ncols ? ", " : "");
	}
	tz_buf_puts(j, "}");
}

static void json_opt(tz_buf *j, const char *s)
{
	if (s)
		json_cstr(j, s);
	else
		tz_buf_puts(j, "null");
}

typedef struct {
	tz_buf *out;
	bool json, detail;
	size_t n;
} list_ctx;

static int conflict_json(const tz_conflict *c, void *payload)
{
	list_ctx *l = payload;
	tz_buf *j = l->out;

	tz_buf_puts(j, l->n++ ? ", " : "");
	tz_buf_printf(j, "{\"id\": %lld, \"kind\": ", (long long)c->id);
	json_cstr(j, c->kind);
	tz_buf_puts(j, ", \"status\": ");
	json_cstr(j, c->status);
	tz_buf_puts(j, ", \"table\": ");
	json_cstr(j, c->table);
	tz_buf_puts(j, ", \"key\": [");
	for (size_t i = 0; i < c->nkey; i++) {
		json_value(j, &c->key_values[i]);
		tz_buf_puts(j, i + 1 < c->nkey ? ", " : "");
	}
	tz_buf_puts(j, "], \"partition\": ");
	json_cstr(j, c->partition);
	tz_buf_puts(j, ", \"branch\": ");
	json_cstr(j, c->branch);
	tz_buf_puts(j, ", \"policy\": ");
	json_cstr(j, c->policy);
	tz_buf_puts(j, ", \"note\": ");
	json_opt(j, c->note);
	/* per conflicting column: its group, base / ours / theirs / provisional */
	tz_buf_puts(j, ", \"columns\": [");
	for (size_t i = 0; i < c->ncols; i++) {
		const tz_column *k = &c->cols[i];
		tz_buf_puts(j, "{\"column\": ");
		json_str(j, k->name, k->name_len);
		tz_buf_puts(j, ", \"group\": ");
		json_value(j, &k->v);
		tz_buf_puts(j, ", \"base\": ");
		json_col(j, c->base, k->name, k->name_len);
		tz_buf_puts(j, ", \"ours\": ");
		json_col(j, c->ours, k->name, k->name_len);
		tz_buf_puts(j, ", \"theirs\": ");
		json_col(j, c->theirs, k->name, k->name_len);
		tz_buf_puts(j, ", \"provisional\": ");
		json_col(j, c->provisional, k->name, k->name_len);
		tz_buf_puts(j, i + 1 < c->ncols ? "}, " : "}");
	}
	tz_buf_puts(j, "], \"commits\": {\"ours\": ");
	json_cstr(j, c->ours_commit);
	tz_buf_puts(j, ", \"theirs\": ");
	json_cstr(j, c->theirs_commit);
	tz_buf_puts(j, ", \"merge\": ");
	json_cstr(j, c->merge_commit);
	tz_buf_printf(j, "}, \"created\": %lld, \"resolved_at\": ", (long long)c->created);
	if (c->resolved_at)
		tz_buf_printf(j, "%lld", (long long)c->resolved_at);
	else
		tz_buf_puts(j, "null");
	tz_buf_puts(j, ", \"resolved_by\": ");
	json_opt(j, c->resolved_by);
	tz_buf_puts(j, ", \"resolution\": ");
	json_opt(j, c->resolution);
	tz_buf_puts(j, ", \"resolution_commit\": ");
	json_opt(j, c->resolution_commit);
	if (l->detail) {
		/* the whole rows, for show */
		tz_buf_puts(j, ", \"rows\": {\"base\": ");
		json_row(j, c->base);
		tz_buf_puts(j, ", \"ours\": ");
		json_row(j, c->ours);
		tz_buf_puts(j, ", \"theirs\": ");
		json_row(j, c->theirs);
		tz_buf_puts(j, ", \"provisional\": ");
		json_row(j, c->provisional);
		tz_buf_puts(j, "}");
	}
	tz_buf_puts(j, "}");
	return tz_buf_error(j);
}

/* Text: one line per entry, or (show) the entry and its columns. */
static void text_cell(tz_buf *b, const tz_row *r, const char *name, size_t len)
{
	const tz_column *c = r ? tz_row_find(r, name, len) : NULL;

	if (c)
		text_value(b, &c->v);
	else
		tz_buf_puts(b, "(absent)");
}

static int conflict_text(const tz_conflict *c, void *payload)
{
	list_ctx *l = payload;
	tz_buf *b = l->out;

	l->n++;
	tz_buf_printf(b, "%-5lld %-7s %-8s %s %s/%s from %s, policy %s:", (long long)c->id, c->kind, c->status, c->table,
		      c->partition, c->key, c->branch, c->policy);
	/* the integrity kinds say what they are in their note (docs/integrity.md) */
	bool integrity = strcmp(c->kind, "data") != 0 && strcmp(c->kind, "delete") != 0 && strcmp(c->kind, "insert") != 0;
	if (c->ncols == 0 && !integrity)
		tz_buf_puts(b, c->theirs ? " HQ deleted the row the branch updated" : " the branch deleted the row HQ updated");
	for (size_t i = 0; i < c->ncols; i++)
		tz_buf_printf(b, "%s %.*s", i ? "," : "", (int)c->cols[i].name_len, c->cols[i].name);
	if (integrity && c->note)
		tz_buf_printf(b, "%s%s", c->ncols ? "; " : " ", c->note);
	tz_buf_puts(b, "\n");
	if (!l->detail)
		return tz_buf_error(b);
	if (c->note)
		tz_buf_printf(b, "  note: %s\n", c->note);
	tz_buf_printf(b, "  commits: ours %.12s, theirs %.12s, merge %.12s\n", c->ours_commit, c->theirs_commit,
		      c->merge_commit);
	if (c->resolution)
		tz_buf_printf(b, "  resolved: %s by %s in %.12s\n", c->resolution, c->resolved_by ? c->resolved_by : "?",
			      c->resolution_commit ? c->resolution_commit : "");
	for (size_t i = 0; i < c->ncols; i++) {
		const tz_column *k = &c->cols[i];
		tz_buf_printf(b, "  %.*s", (int)k->name_len, k->name);
		if (k->v.type == TZ_VTEXT)
			tz_buf_printf(b, " (group %.*s)", (int)k->v.n, (const char *)k->v.p);
		tz_buf_puts(b, "\n    base:        ");
		text_cell(b, c->base, k->name, k->name_len);
		tz_buf_puts(b, "\n    ours (HQ):   ");
		text_cell(b, c->ours, k->name, k->name_len);
		tz_buf_printf(b, "\n    theirs (%s): ", c->branch);
		text_cell(b, c->theirs, k->name, k->name_len);
		tz_buf_puts(b, "\n    provisional: ");
		text_cell(b, c->provisional, k->name, k->name_len);
		tz_buf_puts(b, "\n");
	}
	return tz_buf_error(b);
}

/* --table T, --branch B, --all: taken out of argv. */
static int take_filter(const char *cmd, int *argc, char **argv, tz_conflict_filter *f, bool allow_all)
{
	int k = 1;

	for (int i = 1; i < *argc; i++) {
		if ((strcmp(argv[i], "--table") == 0 || strcmp(argv[i], "--branch") == 0) && i + 1 < *argc) {
			if (argv[i][2] == 't')
				f->table = argv[++i];
			else
				f->branch = argv[++i];
		} else if (strcmp(argv[i], "--table") == 0 || strcmp(argv[i], "--branch") == 0) {
			return cli_usage(cmd, "%s needs a value", argv[i]);
		} else if (allow_all && strcmp(argv[i], "--all") == 0) {
			f->all = true;
		} else {
			argv[k++] = argv[i];
		}
	}
	*argc = k;
	return CLI_EXIT_OK;
}

static int parse_id(const char *s, int64_t *out)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v <= 0)
		return -1;
	*out = v;
	return 0;
}

static int list_or_show(const cli_opts *o, int argc, char **argv, bool show)
{
	const char *cmd = show ? "conflicts show" : "conflicts list";
	tz_conflict_filter f = { NULL, NULL, false, 0 };
	tz_buf out = TZ_BUF_INIT;
	tz_store *s = NULL;
	list_ctx l = { &out, o->json, show, 0 };
	int rc;

	if ((rc = take_filter(cmd, &argc, argv, &f, !show)) != CLI_EXIT_OK)
		return rc;
	if (show && (argc != 2 || parse_id(argv[1], &f.id) < 0))
		return cli_usage("conflicts", "show takes one conflict id");
	if (!show && argc != 1)
		return cli_usage("conflicts", "unexpected '%s'", argv[1]);
	if (o->json && !show)
		tz_buf_puts(&out, "[");
	if (cli_open(o, &s) < 0 || tz_conflicts_list(s, &f, o->json ? conflict_json : conflict_text, &l) < 0) {
		rc = cli_fail(cmd);
		goto done;
	}
	if (show && l.n == 0) {
		tz_error_set(TZ_ENOTFOUND, "no conflict %lld", (long long)f.id);
		rc = cli_fail(cmd);
		goto done;
	}
	if (o->json) {
		if (!show)
			tz_buf_puts(&out, "]");
		rc = cli_emit(&out);
	} else if (!show && l.n == 0) {
		printf("no open conflicts%s\n", f.table || f.branch ? " here" : "");
	} else if (fwrite(out.data, 1, out.len, stdout) != out.len) {
		rc = cli_fail(cmd);
	}
done:
	tz_buf_release(&out);
	tz_store_close(s);
	return rc;
}

static int resolve(const cli_opts *o, int argc, char **argv)
{
	tz_conflict_filter f = { NULL, NULL, false, 0 };
	tz_resolve_opts ro;
	tz_resolve_result res;
	tz_resolve_value *set = NULL;
	int64_t *ids = NULL;
	size_t nids = 0;
	bool how = false;
	tz_store *s = NULL;
	tz_buf j = TZ_BUF_INIT;
	int rc = CLI_EXIT_OK;

	memset(&ro, 0, sizeof(ro));
	ro.how = TZ_RESOLVE_SET;
	if ((rc = take_filter("conflicts resolve", &argc, argv, &f, false)) != CLI_EXIT_OK)
		return rc;
	if ((set = calloc((size_t)argc, sizeof(*set))) == NULL || (ids = calloc((size_t)argc, sizeof(*ids))) == NULL) {
		free(set);
		tz_error_set(TZ_ENOMEM, "out of memory");
		return cli_fail("conflicts resolve");
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		tz_resolve_how h = TZ_RESOLVE_SET;
		if (strcmp(a, "--ours") == 0 || strcmp(a, "--theirs") == 0 || strcmp(a, "--base") == 0) {
			h = a[2] == 'o' ? TZ_RESOLVE_OURS : a[2] == 't' ? TZ_RESOLVE_THEIRS : TZ_RESOLVE_BASE;
			if (how) {
				rc = cli_usage("conflicts", "say one of --ours, --theirs, --base");
				goto done;
			}
			how = true;
			ro.how = h;
		} else if ((strcmp(a, "--set") == 0 || strcmp(a, "--null") == 0 || strcmp(a, "--as") == 0) && i + 1 < argc) {
			const char *v = argv[++i];
			if (a[2] == 'a') {
				ro.as = v;
			} else if (a[2] == 'n') {
				set[ro.nset++] = (tz_resolve_value){ v, NULL };
			} else {
				char *eq = strchr(v, '=');
				if (eq == NULL || eq == v) {
					rc = cli_usage("conflicts", "--set takes COL=VALUE, not '%s'", v);
					goto done;
				}
				*eq = '\0';
				set[ro.nset++] = (tz_resolve_value){ v, eq + 1 };
			}
		} else if (a[0] == '-' || parse_id(a, &ids[nids]) < 0) {
			rc = cli_usage("conflicts", "unexpected '%s' (resolve ID... --ours|--theirs|--base|--set COL=VALUE)",
				       a);
			goto done;
		} else {
			nids++;
		}
	}
	ro.set = set;
	if (!how && ro.nset == 0) {
		rc = cli_usage("conflicts", "say how: --ours, --theirs, --base or --set COL=VALUE");
		goto done;
	}
	if (nids == 0 && f.table == NULL && f.branch == NULL) {
		rc = cli_usage("conflicts", "name the conflicts: their ids, or --table T and/or --branch B");
		goto done;
	}
	if (nids > 0 && (f.table || f.branch)) {
		rc = cli_usage("conflicts", "give ids or --table/--branch, not both");
		goto done;
	}
	if (cli_open(o, &s) < 0) {
		rc = cli_fail("conflicts resolve");
		goto done;
	}
	if (nids == 0) {
		free(ids);
		ids = NULL;
		if (tz_conflicts_ids(s, &f, &ids, &nids) < 0) {
			rc = cli_fail("conflicts resolve");
			goto done;
		}
		if (nids == 0) {
			tz_error_set(TZ_ENOTFOUND, "no open conflict%s%s%s%s", f.table ? " of table " : "",
				     f.table ? f.table : "", f.branch ? " from " : "", f.branch ? f.branch : "");
			rc = cli_fail("conflicts resolve");
			goto done;
		}
	}
	if (tz_conflicts_resolve(s, ids, nids, &ro, &res) < 0) {
		rc = cli_fail("conflicts resolve");
		goto done;
	}
	{
		char hex[41];
		tz_oid_fmt(hex, &res.commit);
		if (o->json) {
			tz_buf_printf(&j, "{\"resolved\": [");
			for (size_t i = 0; i < nids; i++)
				tz_buf_printf(&j, "%s%lld", i ? ", " : "", (long long)ids[i]);
			tz_buf_printf(&j, "], \"commit\": \"%s\", \"signed_by\": ", hex);
			json_cstr(&j, ro.as ? ro.as : "HQ");
			tz_buf_puts(&j, "}");
			rc = cli_emit(&j);
		} else {
			printf("resolved %zu conflict%s in commit %.12s, signed by %s\n", nids, nids == 1 ? "" : "s", hex,
			       ro.as ? ro.as : "HQ");
		}
	}
done:
	tz_buf_release(&j);
	tz_store_close(s);
	free(set);
	free(ids);
	return rc;
}

int cmd_conflicts(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;

	cli_take_json(&o, &argc, argv);
	if (argc < 2)
		return cli_usage("conflicts", "expected list, show ID or resolve ID...");
	if (strcmp(argv[1], "list") == 0)
		return list_or_show(&o, argc - 1, argv + 1, false);
	if (strcmp(argv[1], "show") == 0)
		return list_or_show(&o, argc - 1, argv + 1, true);
	if (strcmp(argv[1], "resolve") == 0)
		return resolve(&o, argc - 1, argv + 1);
	return cli_usage("conflicts", "expected list, show ID or resolve ID..., not '%s'", argv[1]);
}

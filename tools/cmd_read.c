/*
 * cmd_read.c - syncctl commands that read a store: status, log, diff,
 * show, verify.  Text for people, one JSON document with --json.
 */
#include "tools/cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conflict/tz_conflict.h"

int cmd_status(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	tz_store *s = NULL;
	tz_status st;
	tz_buf b = TZ_BUF_INIT;
	char hex[41] = "";
	uint64_t open = 0, kinds[TZ_KIND_COUNT] = { 0 }, dups = 0;
	int rc = CLI_EXIT_OK;

	memset(&st, 0, sizeof(st));

	if (cli_take_json(&o, &argc, argv) != 1)
		return cli_usage("status", "unexpected argument '%s'", argv[1]);
	if (cli_open(&o, &s) < 0 || tz_store_status(s, &st) < 0 || (!st.branch && tz_conflicts_open(s, &open) < 0) ||
	    (!st.branch && tz_integrity_open(s, kinds, &dups) < 0)) {
		tz_status_release(&st);
		tz_store_close(s);
		return cli_fail("status");
	}
	if (st.has_head)
		tz_oid_fmt(hex, &st.head);
	if (o.json) {
		tz_buf_puts(&b, "{\"replica\": ");
		json_cstr(&b, st.code);
		tz_buf_puts(&b, ", \"head\": ");
		if (st.has_head)
			json_cstr(&b, hex);
		else
			tz_buf_puts(&b, "null");
		tz_buf_printf(&b, ", \"schema_version\": %lld, \"uncommitted\": {\"changes\": %llu, \"rows\": %llu,"
			      " \"tables\": [", (long long)st.schema_version, (unsigned long long)st.log_entries,
			      (unsigned long long)st.log_rows);
		for (size_t i = 0; i < st.ntables; i++) {
			tz_buf_puts(&b, i ? ", {\"table\": " : "{\"table\": ");
			json_cstr(&b, st.tables[i].table);
			tz_buf_printf(&b, ", \"changes\": %llu, \"rows\": %llu, \"rebuild\": %s}",
				      (unsigned long long)st.tables[i].changes, (unsigned long long)st.tables[i].rows,
				      st.tables[i].rebuild ? "true" : "false");
		}
		tz_buf_printf(&b, "]}, \"role\": \"%s\", \"last_export_sequence\": %llu, \"last_import\": ",
			      st.branch ? "branch" : "hq", (unsigned long long)st.seq_out);
		if (st.last_import) {
			tz_buf_printf(&b, "{\"at\": %lld, \"from\": ", (long long)st.last_import);
			json_cstr(&b, st.last_sender);
			tz_buf_puts(&b, "}");
		} else {
			tz_buf_puts(&b, "null");
		}
		if (st.branch)
			tz_buf_printf(&b, ", \"unsent_commits\": %llu}", (unsigned long long)st.unsent);
		else
		{
			tz_buf_printf(&b, ", \"branches\": %llu, \"open_conflicts\": %llu, \"open_by_kind\": {",
				      (unsigned long long)st.branches, (unsigned long long)open);
			for (int k = 0; k < TZ_KIND_COUNT; k++)
				tz_buf_printf(&b, "%s\"%s\": %llu", k ? ", " : "", tz_conflict_kind_name((tz_conflict_kind)k),
					      (unsigned long long)kinds[k]);
			tz_buf_printf(&b, "}, \"open_duplicates\": %llu}", (unsigned long long)dups);
		}
		rc = cli_emit(&b);
	} else {
		printf("replica  %s\nhead     %s\nschema   version %lld\n", st.code, st.has_head ? hex : "(no commit yet)",
		       (long long)st.schema_version);
		if (st.log_entries == 0 && st.nrebuild == 0)
			printf("nothing to commit\n");
		else
			printf("uncommitted: %llu changes to %llu rows\n", (unsigned long long)st.log_entries,
			       (unsigned long long)st.log_rows);
		for (size_t i = 0; i < st.ntables; i++) {
			const tz_status_table *t = &st.tables[i];
			if (t->changes)
				printf("  %-24s %llu changes, %llu rows\n", t->table, (unsigned long long)t->changes,
				       (unsigned long long)t->rows);
			if (t->rebuild)
				printf("  %-24s schema changed: the next commit re-encodes every row\n", t->table);
		}
		if (st.branch)
			printf("unsent   %llu commit%s HQ has not acknowledged\n", (unsigned long long)st.unsent,
			       st.unsent == 1 ? "" : "s");
		else
		{
			printf("branches %llu enrolled\nconflicts %llu open", (unsigned long long)st.branches,
			       (unsigned long long)open);
			const char *sep = " (";
			for (int k = 0; k < TZ_KIND_COUNT; k++)
				if (kinds[k]) {
					printf("%s%llu %s", sep, (unsigned long long)kinds[k],
					       tz_conflict_kind_name((tz_conflict_kind)k));
					sep = ", ";
				}
			printf("%s\nduplicates %llu open%s\n", open ? "; syncctl conflicts list)" : "",
			       (unsigned long long)dups, dups ? " (syncctl duplicates list)" : "");
		}
		if (st.last_import) {
			char when[32];
			time_t t = (time_t)st.last_import;
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
			printf("synced   last import %s, from %s\n", when, st.last_sender);
		} else {
			printf("synced   never imported a bundle\n");
		}
		if (st.seq_out)
			printf("exports  %llu so far\n", (unsigned long long)st.seq_out);
	}
	tz_status_release(&st);
	tz_buf_release(&b);
	tz_store_close(s);
	return rc;
}

/* ---- log and show ---- */

/* Where a listing goes: the options, the JSON buffer, items so far. */
typedef struct {
	const cli_opts *o;
	tz_buf *b;
	size_t n;
} out_ctx;

static void fmt_time(char out[32], int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void commit_json(tz_buf *b, const tz_commit_info *c)
{
	char hex[41];

	tz_oid_fmt(hex, &c->oid);
	tz_buf_puts(b, "{\"id\": ");
	json_cstr(b, hex);
	tz_buf_puts(b, ", \"parents\": [");
	for (size_t i = 0; i < c->nparents; i++) {
		tz_oid_fmt(hex, &c->parents[i]);
		tz_buf_puts(b, i ? ", " : "");
		json_cstr(b, hex);
	}
	tz_buf_puts(b, "], \"author\": ");
	json_cstr(b, c->author);
	tz_buf_printf(b, ", \"time\": %lld, \"signature\": {\"valid\": %s, \"signer\": ", (long long)c->time,
		      c->signature_ok ? "true" : "false");
	json_cstr(b, c->signer);
	tz_buf_puts(b, "}, \"message\": ");
	json_cstr(b, c->message);
	tz_buf_puts(b, "}");
}

static void commit_text(const tz_commit_info *c)
{
	char hex[41], when[32];
	const char *p = c->message;

	tz_oid_fmt(hex, &c->oid);
	fmt_time(when, c->time);
	printf("commit %s\nAuthor:    %s\nDate:      %s\nSignature: %s%s%s\n\n", hex, c->author, when,
	       c->signature_ok ? "good (" : "NOT VERIFIED", c->signer, c->signature_ok ? ")" : "");
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		printf("    %.*s\n", (int)n, p);
		p += n + (nl != NULL);
	}
}

static int log_cb(const tz_commit_info *c, void *payload)
{
	out_ctx *l = payload;

	if (l->o->json) {
		tz_buf_puts(l->b, l->n ? ", " : "");
		commit_json(l->b, c);
	} else {
		printf("%s", l->n ? "\n" : "");
		commit_text(c);
	}
	l->n++;
	return tz_buf_error(l->b);
}

int cmd_log(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	tz_store *s = NULL;
	tz_buf b = TZ_BUF_INIT;
	out_ctx l = { &o, &b, 0 };
	const char *rev = NULL;
	long max = 0;
	int rc = CLI_EXIT_OK;

	cli_take_json(&o, &argc, argv);
	for (int i = 1; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			max = strtol(argv[++i], &end, 10);
			if (*end || max <= 0)
				return cli_usage("log", "-n takes a positive number, not '%s'", argv[i]);
		} else if (rev == NULL && argv[i][0] != '-') {
			rev = argv[i];
		} else {
			return cli_usage("log", "unexpected argument '%s'", argv[i]);
		}
	}
	tz_buf_puts(&b, "[");
	if (cli_open(&o, &s) < 0 || tz_store_log(s, rev, (size_t)max, log_cb, &l) < 0)
		rc = cli_fail("log");
	else if (o.json) {
		tz_buf_puts(&b, "]");
		rc = cli_emit(&b);
	}
	tz_buf_release(&b);
	tz_store_close(s);
	return rc;
}

/* ---- diff, show ---- */

static const char *status_word(tz_diff_status s)
{
	return s == TZ_DIFF_ADDED ? "added" : s == TZ_DIFF_DELETED ? "deleted" : "modified";
}

static void diff_row_json(tz_buf *b, const tz_diff_row *r)
{
	tz_buf_printf(b, "{\"status\": \"%s\", \"table\": ", status_word(r->status));
	json_cstr(b, r->table);
	tz_buf_puts(b, ", \"partition\": ");
	json_cstr(b, r->partition);
	tz_buf_puts(b, ", \"key\": [");
	for (size_t k = 0; k < r->nkey; k++) {
		tz_buf_puts(b, k ? ", " : "");
		json_value(b, &r->key_values[k]);
	}
	tz_buf_puts(b, "], \"path\": ");
	json_cstr(b, r->key);
	tz_buf_puts(b, ", \"columns\": [");
	for (size_t i = 0; i < r->ncols; i++) {
		const tz_diff_column *c = &r->cols[i];
		tz_buf_puts(b, i ? ", {\"name\": " : "{\"name\": ");
		json_str(b, c->name, c->name_len);
		if (c->old_v) {
			tz_buf_puts(b, ", \"old\": ");
			json_value(b, c->old_v);
		}
		if (c->new_v) {
			tz_buf_puts(b, ", \"new\": ");
			json_value(b, c->new_v);
		}
		tz_buf_puts(b, "}");
	}
	tz_buf_puts(b, "]}");
}

static void diff_row_text(tz_buf *b, const tz_diff_row *r)
{
	tz_buf_printf(b, "%c %s %s %s\n", (char)r->status, r->table, r->partition, r->key);
	for (size_t i = 0; i < r->ncols; i++) {
		const tz_diff_column *c = &r->cols[i];
		for (int side = 0; side < 2; side++) {
			const tz_value *v = side ? c->new_v : c->old_v;
			if (v == NULL)
				continue;
			tz_buf_printf(b, "  %c %.*s ", side ? '+' : '-', (int)c->name_len, c->name);
			text_value(b, v);
			tz_buf_putc(b, '\n');
		}
	}
}


static int diff_cb(const tz_diff_row *r, void *payload)
{
	out_ctx *d = payload;

	if (d->o->json) {
		tz_buf_puts(d->b, d->n ? ", " : "");
		diff_row_json(d->b, r);
	} else {
		diff_row_text(d->b, r);
		/* stream text so a large diff does not sit in memory */
		if (d->b->len > 65536 && tz_buf_error(d->b) == TZ_OK) {
			fwrite(d->b->data, 1, d->b->len, stdout);
			tz_buf_clear(d->b);
		}
	}
	d->n++;
	return tz_buf_error(d->b);
}

int cmd_diff(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	tz_store *s = NULL;
	tz_buf b = TZ_BUF_INIT;
	out_ctx d = { &o, &b, 0 };
	int rc = CLI_EXIT_OK;

	if (cli_take_json(&o, &argc, argv) > 3)
		return cli_usage("diff", "at most two revisions");
	tz_buf_puts(&b, o.json ? "[" : "");
	if (cli_open(&o, &s) < 0 || tz_store_diff(s, argc > 1 ? argv[1] : NULL, argc > 2 ? argv[2] : NULL,
						   diff_cb, &d) < 0) {
		rc = cli_fail("diff");
	} else if (o.json) {
		tz_buf_puts(&b, "]");
		rc = cli_emit(&b);
	} else if (b.len && fwrite(b.data, 1, b.len, stdout) != b.len) {
		rc = CLI_EXIT_FAIL;
	}
	tz_buf_release(&b);
	tz_store_close(s);
	return rc;
}

typedef struct {
	tz_store *s;
	const cli_opts *o;
	tz_buf *b;
	int rc;
} show_ctx;

static int show_cb(const tz_commit_info *c, void *payload)
{
	show_ctx *sh = payload;
	out_ctx d = { sh->o, sh->b, 0 };

	if (sh->o->json) {
		tz_buf_puts(sh->b, "{\"commit\": ");
		commit_json(sh->b, c);
		tz_buf_puts(sh->b, ", \"rows\": [");
	} else {
		commit_text(c);
		printf("\n");
	}
	if ((sh->rc = tz_store_diff_commit(sh->s, &c->oid, diff_cb, &d)) < 0)
		return sh->rc;
	tz_buf_puts(sh->b, sh->o->json ? "]}" : "");
	return tz_buf_error(sh->b);
}

int cmd_show(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	tz_store *s = NULL;
	tz_buf b = TZ_BUF_INIT;
	show_ctx sh = { NULL, &o, &b, 0 };
	int rc = CLI_EXIT_OK;

	if (cli_take_json(&o, &argc, argv) > 2)
		return cli_usage("show", "expected at most one revision");
	if (cli_open(&o, &s) < 0) {
		rc = cli_fail("show");
	} else {
		sh.s = s;
		if (tz_store_log(s, argc > 1 ? argv[1] : NULL, 1, show_cb, &sh) < 0)
			rc = cli_fail("show");
		else if (o.json)
			rc = cli_emit(&b);
		else if (b.len && fwrite(b.data, 1, b.len, stdout) != b.len)
			rc = CLI_EXIT_FAIL;
	}
	tz_buf_release(&b);
	tz_store_close(s);
	return rc;
}

/* ---- verify ---- */


static int verify_cb(const tz_verify_issue *is, void *payload)
{
	out_ctx *v = payload;

	if (v->o->json) {
		tz_buf_printf(v->b, "%s{\"kind\": \"%s\", \"message\": ", v->n ? ", " : "", is->kind);
		json_cstr(v->b, is->message);
		tz_buf_puts(v->b, "}");
	} else {
		fprintf(stderr, "error: %s: %s\n", is->kind, is->message);
	}
	v->n++;
	return tz_buf_error(v->b);
}

int cmd_verify(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	tz_store *s = NULL;
	tz_buf b = TZ_BUF_INIT;
	out_ctx v = { &o, &b, 0 };
	tz_verify_result r;
	int rc = CLI_EXIT_OK;

	if (cli_take_json(&o, &argc, argv) != 1)
		return cli_usage("verify", "unexpected argument '%s'", argv[1]);
	tz_buf_puts(&b, "{\"issues\": [");
	if (cli_open(&o, &s) < 0 || tz_store_verify(s, &r, verify_cb, &v) < 0) {
		rc = cli_fail("verify");
	} else if (o.json) {
		tz_buf_printf(&b, "], \"ok\": %s, \"commits\": %llu, \"objects\": %llu, \"rows\": %llu}",
			      r.issues ? "false" : "true", (unsigned long long)r.commits, (unsigned long long)r.objects,
			      (unsigned long long)r.rows);
		rc = cli_emit(&b);
		if (rc == CLI_EXIT_OK && r.issues)
			rc = CLI_EXIT_PROBLEMS;
	} else if (r.issues) {
		fprintf(stderr, "syncctl: verify: %llu problem%s found\n", (unsigned long long)r.issues,
			r.issues == 1 ? "" : "s");
		rc = CLI_EXIT_PROBLEMS;
	} else {
		printf("verify: ok (%llu commits, %llu objects, %llu rows checked)\n", (unsigned long long)r.commits,
		       (unsigned long long)r.objects, (unsigned long long)r.rows);
	}
	tz_buf_release(&b);
	tz_store_close(s);
	return rc;
}

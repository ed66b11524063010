/*
 * cmd_netsync.c - `syncctl -C BR sync [URL]`: one sync cycle with
 * `syncd --hq` over HTTP, now (syncd/client.c does the work; this file
 * prints).
 */
#include "tools/cli.h"

#include <stdlib.h>
#include <string.h>

#include "syncd/tz_client.h"

static void log_stderr(void *payload, const char *line)
{
	(void)payload;
	fprintf(stderr, "sync: %s\n", line);
}

static void report_json(tz_buf *j, const char *url, const tz_sync_report *r)
{
	tz_buf_puts(j, "{\"url\": ");
	json_cstr(j, url);
	tz_buf_printf(j, ", \"seconds\": %.3f, \"push\": {\"sequence\": %llu, \"bytes\": %llu, \"sent\": %llu,"
		      " \"resumed_at\": %llu, \"attempts\": %u, \"state\": ",
		      (double)r->elapsed_ms / 1000.0, (unsigned long long)r->push_sequence,
		      (unsigned long long)r->push_bytes, (unsigned long long)r->push_sent,
		      (unsigned long long)r->push_resumed_at, r->push_attempts);
	json_cstr(j, r->push_state);
	tz_buf_puts(j, ", \"message\": ");
	json_cstr(j, r->push_message);
	tz_buf_printf(j, "}, \"pull\": {\"bytes\": %llu, \"received\": %llu, \"resumed_at\": %llu, \"attempts\": %u,"
		      " \"noop\": %s, \"commits\": %zu, \"commits_new\": %zu, \"rows_written\": %llu}}",
		      (unsigned long long)r->pull_bytes, (unsigned long long)r->pull_received,
		      (unsigned long long)r->pull_resumed_at, r->pull_attempts, r->pull_noop ? "true" : "false",
		      r->pull_commits, r->pull_commits_new, (unsigned long long)r->pull_rows_written);
}

int cmd_netsync(const cli_opts *o0, int argc, char **argv)
{
	cli_opts o = *o0;
	tz_client_opts co;
	tz_sync_report rep;
	tz_store *s = NULL;
	tz_buf j = TZ_BUF_INIT;
	const char *given = NULL;
	char url[1024];
	bool verbose = false;
	int rc = CLI_EXIT_OK;

	memset(&co, 0, sizeof(co));
	cli_take_json(&o, &argc, argv);
	for (int i = 1; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
			verbose = true;
		} else if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc) {
			co.chunk = strtoull(argv[++i], &end, 10);
			if (*end || co.chunk == 0 || co.chunk > TZ_HTTP_CHUNK_MAX || argv[i][0] == '-')
				return cli_usage("sync", "--chunk takes 1 to %llu bytes", (unsigned long long)TZ_HTTP_CHUNK_MAX);
		} else if (argv[i][0] == '-' || given) {
			return cli_usage("sync", "unexpected '%s'", argv[i]);
		} else {
			given = argv[i];
		}
	}
	if (o.progress && !o.json) {
		co.progress = cli_progress;
	}
	if (verbose) {
		co.log = log_stderr;
	}
	if (cli_open(&o, &s) < 0 || tz_client_url(s, given, url, sizeof(url)) < 0 ||
	    tz_client_sync(s, url, &co, &rep) < 0) {
		rc = cli_fail("sync");
		goto done;
	}
	if (o.json) {
		report_json(&j, url, &rep);
		rc = cli_emit(&j);
	} else {
		printf("synced %s with %s in %.2f s: pushed sequence %llu (%llu bytes, %s), pulled %llu bytes: "
		       "%zu commit%s (%zu new), %llu rows written\n",
		       tz_store_code(s), url, (double)rep.elapsed_ms / 1000.0, (unsigned long long)rep.push_sequence,
		       (unsigned long long)rep.push_bytes, rep.push_state, (unsigned long long)rep.pull_bytes,
		       rep.pull_commits, rep.pull_commits == 1 ? "" : "s", rep.pull_commits_new,
		       (unsigned long long)rep.pull_rows_written);
	}
	if (strcmp(rep.push_state, "refused") == 0) {
		fprintf(stderr, "syncctl: sync: HQ refused the bundle: %s (its commits go again next time)\n",
			rep.push_message);
		rc = CLI_EXIT_FAIL;
	}
done:
	tz_buf_release(&j);
	tz_store_close(s);
	return rc;
}

/*
 * syncd - the Tazamun sync daemon (docs/operations.md):
 *
 *   syncd --hq DIR --listen ADDR:PORT      HQ's HTTP server (syncd/hq.c)
 *   syncd --branch DIR [--hq URL]          a branch's loop (syncd/client.c)
 *
 * One line per event on stderr ("<UTC time> syncd[<pid>]: <event>").
 * Exit codes: 0 stopped by SIGTERM or SIGINT (or --once: the cycle
 * completed); 1 cannot start (store, address), or --once: the cycle
 * failed; 2 usage error.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "syncd/tz_client.h"
#include "syncd/tz_exchange.h"
#include "syncd/tz_hq.h"

#define EXIT_USAGE 2

static const char usage_text[] =
	"usage: syncd --hq DIR --listen ADDR:PORT [--port-file FILE] [--max-upload BYTES]\n"
	"                 [--max-connections N]\n"
	"       syncd --branch DIR [--hq URL] [--interval S] [--commit-interval S]\n"
	"                 [--backoff-max S] [--chunk BYTES] [--once]\n"
	"\n"
	"  --hq DIR --listen ADDR:PORT   serve HQ's store DIR over HTTP (IPv4; port 0 = any\n"
	"                                free port, written to --port-file)\n"
	"  --branch DIR                  sync branch store DIR with HQ: commit its change log\n"
	"                                every --commit-interval (60 s), sync every --interval\n"
	"                                (300 s; SIGUSR1: now); while HQ is unreachable, retry\n"
	"                                after 1, 2, 4 ... s up to --backoff-max (300 s), with\n"
	"                                jitter.  URL: --hq, else 'hq_url' in DIR/config\n"
	"  --once                        one cycle, then exit (0 synced, 1 failed)\n"
	"\n"
	"Logs one line per event on stderr.  Stops cleanly on SIGTERM or SIGINT (an import\n"
	"in progress is finished first).  Exit: 0 stopped, 1 cannot start, 2 usage.\n";

static void log_line(void *payload, const char *line)
{
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;

	(void)payload;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s syncd[%ld]: %s\n", ts, (long)getpid(), line);
}

static void logf_(const char *fmt, ...) TZ_PRINTF(1, 2);
static void logf_(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_line(NULL, line);
}

static int usage(const char *what, const char *arg)
{
	fprintf(stderr, "syncd: %s%s%s%s\n\n%s", what, arg ? " '" : "", arg ? arg : "", arg ? "'" : "", usage_text);
	return EXIT_USAGE;
}

typedef struct {
	const char *hq_dir, *branch_dir, *url, *listen, *port_file;
	uint64_t max_upload, chunk;
	unsigned max_conn, interval, commit_interval, backoff_max;
	bool once;
} opts;

static bool num(const char *s, uint64_t max, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return false;
	*out = v;
	return true;
}

static int parse(opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof(*o));
	o->interval = 300;
	o->commit_interval = 60;
	o->backoff_max = 300;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;
		if (strcmp(a, "--once") == 0) {
			o->once = true;
			continue;
		}
		if (v == NULL)
			return usage("needs a value (or is unknown):", a);
		i++;
		if (strcmp(a, "--hq") == 0)
			o->hq_dir = v;   /* a directory, or the URL in --branch mode */
		else if (strcmp(a, "--branch") == 0)
			o->branch_dir = v;
		else if (strcmp(a, "--listen") == 0)
			o->listen = v;
		else if (strcmp(a, "--port-file") == 0)
			o->port_file = v;
		else if (strcmp(a, "--max-upload") == 0 && num(v, UINT64_MAX, &n))
			o->max_upload = n;
		else if (strcmp(a, "--chunk") == 0 && num(v, TZ_HTTP_CHUNK_MAX, &n) && n > 0)
			o->chunk = n;
		else if (strcmp(a, "--max-connections") == 0 && num(v, 65535, &n) && n > 0)
			o->max_conn = (unsigned)n;
		else if (strcmp(a, "--interval") == 0 && num(v, 86400, &n) && n > 0)
			o->interval = (unsigned)n;
		else if (strcmp(a, "--commit-interval") == 0 && num(v, 86400, &n) && n > 0)
			o->commit_interval = (unsigned)n;
		else if (strcmp(a, "--backoff-max") == 0 && num(v, 86400, &n) && n > 0)
			o->backoff_max = (unsigned)n;
		else
			return usage("bad option or value:", a);
	}
	if (o->branch_dir) {
		o->url = o->hq_dir;
		o->hq_dir = NULL;
		if (o->listen)
			return usage("--listen is for --hq DIR, not --branch", NULL);
		return 0;
	}
	if (o->hq_dir == NULL || o->listen == NULL)
		return usage("give --hq DIR --listen ADDR:PORT, or --branch DIR", NULL);
	if (o->once)
		return usage("--once is for --branch", NULL);
	return 0;
}

/* Block the stop signals in every thread; the main thread waits for them. */
static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int write_port(const char *path, unsigned port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "we")) == NULL || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		logf_("cannot write the port file '%s': %s", path, strerror(errno));
		return 1;
	}
	return 0;
}

static int run_hq(const opts *o)
{
	tz_hq_opts ho = { o->listen, o->max_upload, o->max_conn, 0, log_line, NULL };
	tz_hq *h = NULL;
	sigset_t set;
	int sig = 0;

	block_signals(&set);
	if (tz_hq_start(&h, o->hq_dir, &ho) < 0) {
		logf_("cannot start: %s", tz_error_last());
		return 1;
	}
	if (o->port_file && write_port(o->port_file, tz_hq_port(h)) != 0) {
		tz_hq_stop(h);
		return 1;
	}
	while (sigwait(&set, &sig) == 0 && sig == SIGUSR1)
		;
	logf_("stopping (signal %d): finishing the import in progress", sig);
	tz_hq_stop(h);
	logf_("stopped");
	return 0;
}

static void report(const tz_sync_report *r)
{
	logf_("sync done in %.2f s: pushed %llu bytes (%s; %llu sent, resumed at %llu), pulled %llu bytes "
	      "(%zu commits, %zu new, %llu rows written; %llu received, resumed at %llu)",
	      (double)r->elapsed_ms / 1000.0, (unsigned long long)r->push_bytes, r->push_state,
	      (unsigned long long)r->push_sent, (unsigned long long)r->push_resumed_at, (unsigned long long)r->pull_bytes,
	      r->pull_commits, r->pull_commits_new, (unsigned long long)r->pull_rows_written,
	      (unsigned long long)r->pull_received, (unsigned long long)r->pull_resumed_at);
}

/* Seconds before the next try after `failures` failed cycles in a row:
 * 1, 2, 4 ... up to max, then a random point in its upper half (jitter, so
 * that branches cut off together do not come back together). */
static unsigned backoff(unsigned failures, unsigned max)
{
	uint64_t d = 1;
	uint32_t r;

	for (unsigned i = 1; i < failures && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	tz_random_bytes(&r, sizeof(r));
	return (unsigned)(d - d / 2 * (r % 1001) / 1000);
}

/* Wait up to `s` seconds for a signal: 0 timeout, SIGUSR1, or a stop. */
static int wait_signal(const sigset_t *set, unsigned s)
{
	struct timespec ts = { (time_t)s, 0 };
	int sig = sigtimedwait(set, NULL, &ts);

	return sig < 0 ? 0 : sig;
}

/* Commits and imports add packs: once they pile up, one (gc.c). */
static void run_gc(tz_store *s)
{
	char msg[256];

	if (tz_sync_gc_if_due(s, msg, sizeof(msg)) != 0)
		logf_("%s", msg);
}

static int run_branch(const opts *o)
{
	tz_client_opts co = { o->chunk, 0, 0, NULL, NULL, log_line, NULL };
	tz_sync_report rep;
	tz_commit_result cr;
	tz_store *s = NULL;
	char url[1024];
	sigset_t set;
	unsigned failures = 0;
	time_t next_commit = 0, next_sync = 0;
	int rc = 0;

	block_signals(&set);
	if (tz_store_open(&s, o->branch_dir) < 0 || tz_client_url(s, o->url, url, sizeof(url)) < 0) {
		logf_("cannot start: %s", tz_error_last());
		tz_store_close(s);
		return 1;
	}
	logf_("branch %s, store %s, HQ %s", tz_store_code(s), o->branch_dir, url);
	for (;;) {
		time_t now = time(NULL);
		if (!o->once && now >= next_commit) {
			if (tz_store_commit(s, NULL, &cr) < 0)
				logf_("commit failed: %s", tz_error_last());
			else if (cr.committed)
				logf_("committed %llu change-log entries", (unsigned long long)cr.entries);
			next_commit = now + o->commit_interval;
		}
		if (now >= next_sync) {
			if (tz_client_sync(s, url, &co, &rep) == TZ_OK) {
				report(&rep);
				run_gc(s);
				failures = 0;
				next_sync = time(NULL) + o->interval;
			} else {
				unsigned d = backoff(++failures, o->backoff_max);
				logf_("sync failed (%u in a row): %s; next try in %u s", failures, tz_error_last(), d);
				next_sync = time(NULL) + d;
				rc = 1;
			}
			if (o->once)
				break;
			rc = 0;
		}
		now = time(NULL);
		time_t until = next_sync < next_commit ? next_sync : next_commit;
		int sig = wait_signal(&set, until > now ? (unsigned)(until - now) : 0);
		if (sig == SIGUSR1)
			next_sync = 0;
		else if (sig) {
			logf_("stopping (signal %d)", sig);
			break;
		}
	}
	tz_store_close(s);
	return rc;
}

int main(int argc, char **argv)
{
	opts o;
	int rc;

	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage_text, stdout);
		return 0;
	}
	if ((rc = parse(&o, argc, argv)) != 0)
		return rc;
	if (tz_faultsim_from_env() < 0)
		return usage("TZ_FAULTSIM is malformed", NULL);
	return o.hq_dir ? run_hq(&o) : run_branch(&o);
}

/*
 * hq_metrics.c - HQ's counters and GET /metrics in the Prometheus text
 * exposition format (version 0.0.4).  docs/operations.md lists every
 * series.  Counters start at zero with the process (Prometheus handles
 * resets); the per-branch times are since the start too.
 */
#include "syncd/syncd_int.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Upper bounds of the merge-duration buckets, in seconds: an agency day's
 * bundle merges in ~2.5 s (bench/README.md), a 30-day backlog in tens. */
static const double buckets[HQ_BUCKETS] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };

void tz_hq__count(tz_hq *h, uint64_t *counter, uint64_t by)
{
	pthread_mutex_lock(&h->mmu);
	*counter += by;
	pthread_mutex_unlock(&h->mmu);
}

void tz_hq__merge_time(tz_hq *h, double seconds, int outcome)
{
	size_t b = 0;

	while (b < HQ_BUCKETS && seconds > buckets[b])
		b++;
	pthread_mutex_lock(&h->mmu);
	h->m.bundles_in[outcome]++;
	h->m.merge_buckets[b]++;
	h->m.merge_sum += seconds;
	h->m.merge_count++;
	pthread_mutex_unlock(&h->mmu);
}

int tz_hq__branch_time(tz_hq *h, const char *code, bool sync, int64_t when)
{
	hq_branch_stat *b = NULL;
	int rc = TZ_OK;

	pthread_mutex_lock(&h->mmu);
	for (size_t i = 0; i < h->m.nbranches; i++)
		if (strcmp(h->m.branches[i].code, code) == 0)
			b = &h->m.branches[i];
	if (b == NULL) {
		hq_branch_stat *nb = tz_realloc(h->m.branches, (h->m.nbranches + 1) * sizeof(*nb));
		if (nb == NULL) {
			rc = TZ_ENOMEM;
			goto done;
		}
		h->m.branches = nb;
		b = &nb[h->m.nbranches++];
		memset(b, 0, sizeof(*b));
		snprintf(b->code, sizeof(b->code), "%s", code);
	}
	if (sync)
		b->last_sync = when;
	else
		b->last_import = when;
done:
	pthread_mutex_unlock(&h->mmu);
	return rc;
}

void tz_hq__conflicts(tz_hq *h, const uint64_t open[3])
{
	pthread_mutex_lock(&h->mmu);
	memcpy(h->m.conflicts_open, open, sizeof(h->m.conflicts_open));
	pthread_mutex_unlock(&h->mmu);
}

static void series(tz_buf *o, const char *name, const char *type, const char *help)
{
	tz_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_branches(tz_buf *o, const hq_metrics *m)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} g[2] = {
		{ "tazamun_last_import_timestamp_seconds", "When HQ last imported a bundle from the branch (unix time).",
		  offsetof(hq_branch_stat, last_import) },
		{ "tazamun_last_sync_timestamp_seconds",
		  "When the branch last completed a sync: HQ sent its reply whole (unix time).",
		  offsetof(hq_branch_stat, last_sync) },
	};

	for (int k = 0; k < 2; k++) {
		series(o, g[k].name, "gauge", g[k].help);
		for (size_t i = 0; i < m->nbranches; i++) {
			int64_t t;
			memcpy(&t, (const char *)&m->branches[i] + g[k].off, sizeof(t));
			if (t)
				tz_buf_printf(o, "%s{branch=\"%s\"} %lld\n", g[k].name, m->branches[i].code, (long long)t);
		}
	}
}

static void render_merge(tz_buf *o, const hq_metrics *m)
{
	uint64_t cum = 0;

	series(o, "tazamun_merge_duration_seconds", "histogram", "Time of each import (verify, merge, record).");
	for (size_t b = 0; b < HQ_BUCKETS; b++) {
		cum += m->merge_buckets[b];
		tz_buf_printf(o, "tazamun_merge_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[b],
			      (unsigned long long)cum);
	}
	cum += m->merge_buckets[HQ_BUCKETS];
	tz_buf_printf(o, "tazamun_merge_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	tz_buf_printf(o, "tazamun_merge_duration_seconds_sum %.6f\ntazamun_merge_duration_seconds_count %llu\n",
		      m->merge_sum, (unsigned long long)m->merge_count);
}

int tz_hq__metrics_render(tz_hq *h, tz_buf *o)
{
	static const char *in_names[3] = { "imported", "noop", "refused" };
	static const char *chunk_names[3] = { "stored", "duplicate", "gap" };
	static const char *auth_names[4] = { "malformed", "signature", "replay", "forbidden" };
	static const char *kinds[3] = { "data", "delete", "insert" };
	hq_metrics *m = &h->m;

	pthread_mutex_lock(&h->mmu);
	series(o, "tazamun_bundles_in_total", "counter", "Bundles uploaded and imported, by outcome.");
	for (int i = 0; i < 3; i++)
		tz_buf_printf(o, "tazamun_bundles_in_total{result=\"%s\"} %llu\n", in_names[i],
			      (unsigned long long)m->bundles_in[i]);
	series(o, "tazamun_bundles_out_total", "counter", "Reply bundles made for branches.");
	tz_buf_printf(o, "tazamun_bundles_out_total %llu\n", (unsigned long long)m->bundles_out);
	series(o, "tazamun_upload_bytes_total", "counter", "Upload bytes HQ made durable.");
	tz_buf_printf(o, "tazamun_upload_bytes_total %llu\n", (unsigned long long)m->bytes_in);
	series(o, "tazamun_upload_bytes_skipped_total", "counter",
	       "Upload bytes received again that HQ already held (not written twice).");
	tz_buf_printf(o, "tazamun_upload_bytes_skipped_total %llu\n", (unsigned long long)m->bytes_in_skipped);
	series(o, "tazamun_download_bytes_total", "counter", "Reply bytes sent.");
	tz_buf_printf(o, "tazamun_download_bytes_total %llu\n", (unsigned long long)m->bytes_out);
	series(o, "tazamun_chunks_total", "counter", "Upload chunks, by outcome.");
	for (int i = 0; i < 3; i++)
		tz_buf_printf(o, "tazamun_chunks_total{result=\"%s\"} %llu\n", chunk_names[i],
			      (unsigned long long)m->chunks[i]);
	series(o, "tazamun_auth_failures_total", "counter", "Requests refused by authentication, by reason.");
	for (int i = 0; i < 4; i++)
		tz_buf_printf(o, "tazamun_auth_failures_total{reason=\"%s\"} %llu\n", auth_names[i],
			      (unsigned long long)m->auth_fail[i]);
	render_merge(o, m);
	series(o, "tazamun_conflicts_open", "gauge", "Open entries of the conflict queue, by kind.");
	for (int i = 0; i < 3; i++)
		tz_buf_printf(o, "tazamun_conflicts_open{kind=\"%s\"} %llu\n", kinds[i],
			      (unsigned long long)m->conflicts_open[i]);
	render_branches(o, m);
	pthread_mutex_unlock(&h->mmu);
	return tz_buf_error(o);
}

void tz_hq__metrics_release(hq_metrics *m)
{
	tz_free(m->branches);
	m->branches = NULL;
	m->nbranches = 0;
}

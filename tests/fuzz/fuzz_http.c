/*
 * fuzz_http.c - fuzz target for what HQ and a branch parse of HTTP bytes
 * nobody has authenticated yet (syncd/http_proto.c, docs/protocol.md
 * "HTTP transport").  The first byte of an input picks the parser, the
 * rest is its input:
 *
 *   'A'  an Authorization header value: whatever parses must format back
 *        to exactly the same bytes (one spelling per token)
 *   'R'  "METHOD PATH": a route; an accepted upload route must carry the
 *        digest it names and an offset within its total
 *   'K'  an answer body: every key found must be a whole line's key
 *   'C'  32 bytes, four little-endian u64 (durable, total, offset, len):
 *        the chunk plan never appends past total nor skips more than len
 *
 * Linked with libFuzzer by tests/fuzz/run-libfuzzer.sh, or with
 * tests/fuzz/driver.c, which replays tests/fuzz/corpus/http and checks
 * tests/fuzz/reject/http through tz_fuzz_reject.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "syncd/tz_http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int tz_fuzz_reject(const uint8_t *data, size_t size);

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_http: %s\n", what);
	abort();
}

static int auth(const uint8_t *p, size_t n)
{
	tz_http_auth a;
	tz_buf again = TZ_BUF_INIT;
	int rc = tz_http_auth_parse(&a, (const char *)p, n);

	if (rc == TZ_OK) {
		tz_http_auth_format(&again, &a);
		if (tz_buf_error(&again) != TZ_OK || again.len != n || memcmp(again.data, p, n) != 0)
			fail("an accepted token formats to other bytes");
	}
	tz_buf_release(&again);
	return rc;
}

static int route(const uint8_t *p, size_t n)
{
	char method[8], path[TZ_HTTP_PATH_MAX + 2];
	const uint8_t *sp = memchr(p, ' ', n);
	tz_http_route r;
	size_t ml, pl;
	int rc;

	if (sp == NULL || (ml = (size_t)(sp - p)) >= sizeof(method) || (pl = n - ml - 1) >= sizeof(path) ||
	    memchr(p, '\0', n) != NULL)
		return tz_error_set(TZ_EINVAL, "not a fuzz route input");
	memcpy(method, p, ml);
	method[ml] = '\0';
	memcpy(path, sp + 1, pl);
	path[pl] = '\0';
	/* a small limit, so that the limit check is reached too */
	rc = tz_http_route_parse(&r, method, path, 1u << 20);
	if (rc == TZ_OK && (r.kind == TZ_ROUTE_UPLOAD || r.kind == TZ_ROUTE_UPLOAD_STATE)) {
		char hex[65];
		tz_hex(hex, r.digest, sizeof(r.digest));
		if (strcmp(hex, r.digest_hex) != 0 || strstr(path, hex) == NULL)
			fail("an upload route's digest differs from its path");
		if (r.offset > r.total || r.total > (1u << 20))
			fail("an accepted offset or total is out of bounds");
	}
	return rc;
}

static int kv(const uint8_t *p, size_t n)
{
	static const char *keys[] = { "state", "offset", "error", "message", "nonce", "digest", "size" };
	char v[TZ_HTTP_ANSWER_MAX + 1];
	int last = TZ_OK;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int rc = tz_http_kv_get(v, sizeof(v), p, n, keys[i]);
		if (rc == TZ_OK && strlen(v) >= n)
			fail("a value longer than its answer");
		if (rc != TZ_ENOTFOUND)
			last = rc;
	}
	return last;
}

static int chunk(const uint8_t *p, size_t n)
{
	uint64_t v[4] = { 0, 0, 0, 0 };
	tz_chunk_plan plan;
	int rc;

	if (n != 32)
		return tz_error_set(TZ_EINVAL, "a chunk input is 32 bytes");
	for (int i = 0; i < 4; i++)
		for (int b = 7; b >= 0; b--)
			v[i] = v[i] << 8 | p[8 * i + b];
	rc = tz_chunk_plan_make(&plan, v[0], v[1], v[2], v[3]);
	if (rc == TZ_OK && (plan.skip + plan.append != v[3] || v[0] + plan.append > v[1] || plan.skip > v[3] ||
			    (plan.append && v[2] + plan.skip != v[0])))
		fail("a chunk plan out of bounds");
	return rc;
}

static int dispatch(const uint8_t *data, size_t size)
{
	if (size == 0)
		return tz_error_set(TZ_EINVAL, "empty input");
	switch (data[0]) {
	case 'A': return auth(data + 1, size - 1);
	case 'R': return route(data + 1, size - 1);
	case 'K': return kv(data + 1, size - 1);
	case 'C': return chunk(data + 1, size - 1);
	default: return tz_error_set(TZ_EINVAL, "unknown parser '%c'", data[0]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)dispatch(data, size);
	return 0;
}

int tz_fuzz_reject(const uint8_t *data, size_t size)
{
	return dispatch(data, size);
}

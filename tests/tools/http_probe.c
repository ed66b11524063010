/*
 * http_probe - signed requests to `syncd --hq` as a branch, for the CLI
 * tests of the HTTP transport (tests/cli/t11-http.sh):
 *
 *   http_probe STORE URL state           GET the state of upload 00...0 of
 *                                        100 bytes
 *   http_probe STORE URL replay          GET an upload's state, then send
 *                                        the very same signed request again
 *   http_probe STORE URL reply DIGEST    GET /v1/reply/DIGEST (another
 *                                        branch's reply, say)
 *   http_probe STORE URL dup-chunk       PUT the first chunk of a 2-chunk
 *                                        upload twice (each freshly signed)
 *
 * Prints one line "<status> <status>..." of the HTTP statuses, then the
 * last answer's body; exits 0 when the requests got answers, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "store/tz_store.h"
#include "syncd/tz_client.h"

static int probe(tz_session *h, const char *what, const char *arg, long st[2], tz_buf *ans)
{
	char path[200], hex[65];
	uint8_t body[2048], d[32];
	int rc;

	if (strcmp(what, "replay") == 0 || strcmp(what, "state") == 0) {
		memset(hex, '0', 64);
		hex[64] = '\0';
		snprintf(path, sizeof(path), "/v1/upload/%s/100", hex);
		if (what[0] == 's')
			return tz_session_request(h, "GET", path, NULL, 0, false, &st[0], ans);
		if ((rc = tz_session_request(h, "GET", path, NULL, 0, false, &st[0], ans)) < 0)
			return rc;
		return tz_session_request(h, "GET", path, NULL, 0, true, &st[1], ans);
	}
	if (strcmp(what, "reply") == 0) {
		snprintf(path, sizeof(path), "/v1/reply/%s", arg ? arg : "");
		return tz_session_request(h, "GET", path, NULL, 0, false, &st[0], ans);
	}
	tz_random_bytes(body, sizeof(body));
	tz_hash_short(d, sizeof(d), body, sizeof(body));
	tz_hex(hex, d, sizeof(d));
	snprintf(path, sizeof(path), "/v1/upload/%s/%zu/0", hex, sizeof(body));
	if (strcmp(what, "dup-chunk") == 0) {
		if ((rc = tz_session_request(h, "PUT", path, body, sizeof(body) / 2, false, &st[0], ans)) < 0)
			return rc;
		return tz_session_request(h, "PUT", path, body, sizeof(body) / 2, false, &st[1], ans);
	}
	return tz_error_set(TZ_EINVAL, "unknown probe '%s'", what);
}

int main(int argc, char **argv)
{
	tz_client_opts o;
	tz_session *h = NULL;
	tz_store *s = NULL;
	tz_buf ans = TZ_BUF_INIT;
	long st[2] = { 0, 0 };
	int rc;

	if (argc < 4) {
		fprintf(stderr, "usage: http_probe STORE URL state|replay|reply DIGEST|dup-chunk\n");
		return 2;
	}
	memset(&o, 0, sizeof(o));
	if ((rc = tz_store_open(&s, argv[1])) == TZ_OK && (rc = tz_session_open(&h, s, argv[2], &o)) == TZ_OK)
		rc = probe(h, argv[3], argc > 4 ? argv[4] : NULL, st, &ans);
	if (rc < 0)
		fprintf(stderr, "http_probe: %s\n", tz_error_last());
	else
		printf("%ld%s%.0ld\n%.*s", st[0], st[1] ? " " : "", st[1], (int)ans.len, (const char *)ans.data);
	tz_buf_release(&ans);
	tz_session_close(h);
	tz_store_close(s);
	return rc < 0;
}

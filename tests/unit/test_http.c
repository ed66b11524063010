/*
 * test_http.c - unit tests of syncd/http_proto.c: the request token
 * (parse, format, sign, verify), the challenge table (one branch per
 * challenge, strictly increasing n, expiry, eviction), the chunk
 * bookkeeping of an upload, routes and answer bodies.
 */
#include <string.h>

#include "syncd/tz_http.h"
#include "tests/unit/tz_test.h"

static void token(tz_http_auth *a, const char *code, uint64_t n)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->code, sizeof(a->code), "%s", code);
	memset(a->nonce, 0x5a, sizeof(a->nonce));
	a->n = n;
}

static void test_sign_verify(void)
{
	tz_keypair kp, other;
	tz_http_auth a, b;
	tz_buf s = TZ_BUF_INIT;

	CHECK(tz_keypair_generate(&kp) == TZ_OK && tz_keypair_generate(&other) == TZ_OK, "two key pairs");
	token(&a, "CAS01", 7);
	CHECK(tz_http_auth_sign(&a, &kp, "PUT", "/v1/upload/x/10/0", "body", 4) == TZ_OK, "sign a request");
	tz_http_auth_format(&s, &a);
	CHECK(tz_http_auth_parse(&b, (const char *)s.data, s.len) == TZ_OK, "its header parses");
	CHECK(memcmp(&a, &b, sizeof(a)) == 0, "into the same token");
	CHECK(tz_http_auth_verify(&b, kp.pk, "PUT", "/v1/upload/x/10/0") == TZ_OK, "it verifies with the key");
	CHECK(tz_http_auth_verify(&b, other.pk, "PUT", "/v1/upload/x/10/0") == TZ_EVERIFY, "not with another key");
	CHECK(tz_http_auth_verify(&b, kp.pk, "GET", "/v1/upload/x/10/0") == TZ_EVERIFY, "not for another method");
	CHECK(tz_http_auth_verify(&b, kp.pk, "PUT", "/v1/upload/x/10/5") == TZ_EVERIFY, "not for another path");
	b.n = 8;
	CHECK(tz_http_auth_verify(&b, kp.pk, "PUT", "/v1/upload/x/10/0") == TZ_EVERIFY, "not with another n");
	b = a;
	memcpy(b.code, "RAB01", 6);
	CHECK(tz_http_auth_verify(&b, kp.pk, "PUT", "/v1/upload/x/10/0") == TZ_EVERIFY, "not for another code");
	CHECK(tz_http_body_check(&a, "body", 4) == TZ_OK, "the body matches its hash");
	CHECK(tz_http_body_check(&a, "bodz", 4) == TZ_EVERIFY, "another body does not");
	b = a;
	b.bind = true;
	CHECK(tz_http_auth_verify(&b, kp.pk, "PUT", "/v1/upload/x/10/0") == TZ_EVERIFY,
	      "binding fields added after signing break the signature");
	tz_buf_clear(&s);
	tz_http_auth_format(&s, &b);
	CHECK(tz_http_auth_parse(&a, (const char *)s.data, s.len) == TZ_OK && a.bind, "a token with binding parses");
	CHECK(tz_http_auth_parse(&a, (const char *)s.data, s.len - 1) == TZ_ECORRUPT, "a truncated one does not");
	tz_keypair_wipe(&kp);
	tz_keypair_wipe(&other);
	tz_buf_release(&s);
}

static void test_challenges(void)
{
	tz_challenges *c = NULL;
	uint8_t n1[TZ_HTTP_NONCE_BYTES], n2[TZ_HTTP_NONCE_BYTES], n3[TZ_HTTP_NONCE_BYTES], bogus[TZ_HTTP_NONCE_BYTES];

	CHECK(tz_challenges_new(&c, 2, 1000) == TZ_OK, "a table of two challenges");
	tz_challenges_issue(c, n1, 0);
	CHECK(tz_challenges_use(c, n1, "CAS01", 1, 10) == TZ_OK, "n 1 is accepted");
	CHECK(tz_challenges_use(c, n1, "CAS01", 1, 10) == TZ_EPERM, "n 1 again is a replay");
	CHECK(tz_challenges_use(c, n1, "CAS01", 5, 10) == TZ_OK, "n 5 is accepted (gaps are fine)");
	CHECK(tz_challenges_use(c, n1, "CAS01", 3, 10) == TZ_EPERM, "n 3 after 5 is refused");
	CHECK(tz_challenges_use(c, n1, "RAB01", 6, 10) == TZ_EPERM, "another branch cannot use it");
	CHECK(tz_challenges_use(c, n1, "CAS01", 6, 1000) == TZ_ENOTFOUND, "it expires");
	memset(bogus, 1, sizeof(bogus));
	CHECK(tz_challenges_use(c, bogus, "CAS01", 1, 10) == TZ_ENOTFOUND, "an unknown nonce is refused");
	tz_challenges_issue(c, n1, 2000);
	tz_challenges_issue(c, n2, 2001);
	tz_challenges_issue(c, n3, 2002);
	CHECK(tz_challenges_use(c, n1, "CAS01", 1, 2003) == TZ_ENOTFOUND, "a full table drops the oldest");
	CHECK(tz_challenges_use(c, n2, "CAS01", 1, 2003) == TZ_OK && tz_challenges_use(c, n3, "RAB01", 1, 2003) == TZ_OK,
	      "the newer ones stay");
	tz_challenges_free(c);
}

static void test_chunks(void)
{
	tz_chunk_plan p;

	CHECK(tz_chunk_plan_make(&p, 0, 100, 0, 40) == TZ_OK && p.skip == 0 && p.append == 40, "first chunk appends");
	CHECK(tz_chunk_plan_make(&p, 40, 100, 40, 60) == TZ_OK && p.append == 60, "the next one at the offset");
	CHECK(tz_chunk_plan_make(&p, 40, 100, 0, 40) == TZ_OK && p.skip == 40 && p.append == 0,
	      "a duplicate is skipped whole");
	CHECK(tz_chunk_plan_make(&p, 40, 100, 20, 40) == TZ_OK && p.skip == 20 && p.append == 20,
	      "an overlap appends only the new tail");
	CHECK(tz_chunk_plan_make(&p, 40, 100, 50, 10) == TZ_EPROTO, "a gap is refused");
	CHECK(tz_chunk_plan_make(&p, 40, 100, 90, 20) == TZ_ELIMIT, "past the total is refused");
	CHECK(tz_chunk_plan_make(&p, 0, UINT64_MAX, 0, TZ_HTTP_CHUNK_MAX + 1) == TZ_ELIMIT, "an oversized chunk");
	CHECK(tz_chunk_plan_make(&p, 0, 100, 0, 0) == TZ_EINVAL, "an empty chunk");
	CHECK(tz_chunk_plan_make(&p, 101, 100, 0, 1) == TZ_EINVAL, "more held than the total");
}

static void test_routes_and_answers(void)
{
	tz_http_route r;
	char path[200], v[32];
	uint64_t u;
	static const char body[] = "state partial\noffset 4096\n";

	snprintf(path, sizeof(path), "/v1/upload/%064d/100/40", 0);
	CHECK(tz_http_route_parse(&r, "PUT", path, 1000) == TZ_OK && r.kind == TZ_ROUTE_UPLOAD && r.total == 100 &&
	      r.offset == 40, "an upload route");
	CHECK(tz_http_route_parse(&r, "GET", path, 1000) == TZ_EINVAL, "with the wrong method");
	CHECK(tz_http_route_parse(&r, "PUT", path, 99) == TZ_ELIMIT, "over the size limit");
	snprintf(path, sizeof(path), "/v1/upload/%064d/100", 0);
	CHECK(tz_http_route_parse(&r, "GET", path, 1000) == TZ_OK && r.kind == TZ_ROUTE_UPLOAD_STATE, "a state route");
	CHECK(tz_http_route_parse(&r, "GET", "/v1/reply/xyz", 1000) == TZ_ECORRUPT, "a bad digest");
	CHECK(tz_http_route_parse(&r, "GET", "/metrics", 1000) == TZ_OK && r.kind == TZ_ROUTE_METRICS, "metrics");
	CHECK(tz_http_kv_get(v, sizeof(v), body, strlen(body), "state") == TZ_OK && strcmp(v, "partial") == 0,
	      "an answer's value");
	CHECK(tz_http_kv_u64(&u, body, strlen(body), "offset") == TZ_OK && u == 4096, "a number in an answer");
	CHECK(tz_http_kv_get(v, sizeof(v), body, strlen(body), "size") == TZ_ENOTFOUND, "a missing key");
	CHECK(tz_http_kv_get(v, 4, body, strlen(body), "state") == TZ_ELIMIT, "a value over the caller's room");
}

int main(void)
{
	if (tz_crypto_init() != TZ_OK)
		return 1;
	test_sign_verify();
	test_challenges();
	test_chunks();
	test_routes_and_answers();
	return tz_test_done();
}

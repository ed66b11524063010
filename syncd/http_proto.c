/*
 * http_proto.c - the shared pieces of the HTTP sync protocol (tz_http.h):
 * the authentication token, routes, chunk bookkeeping, challenges and
 * answer bodies.  docs/protocol.md ("HTTP transport") is the spec; every
 * parser here reads bytes nobody has authenticated yet.
 */
#include "syncd/tz_http.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/tz_store.h"

int64_t tz_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tz_hex(char *out, const void *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;   /* upper case too: one spelling per value */
}

int tz_unhex(uint8_t *out, size_t n, const char *s, size_t slen)
{
	if (slen != 2 * n)
		return tz_error_set(TZ_ECORRUPT, "expected %zu hex digits, got %zu characters", 2 * n, slen);
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			memset(out, 0, n);
			return tz_error_set(TZ_ECORRUPT, "not lower case hex");
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return TZ_OK;
}

int tz_parse_u64(uint64_t *out, const char *s, size_t len, uint64_t max)
{
	uint64_t v = 0;

	*out = 0;
	/* 20 digits hold any uint64_t; a leading zero would give one number
	 * two spellings (and two signed paths) */
	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return tz_error_set(TZ_ECORRUPT, "not a decimal number");
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return tz_error_set(TZ_ECORRUPT, "not a decimal number");
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return tz_error_set(TZ_ELIMIT, "number too large");
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > max)
		return tz_error_set(TZ_ELIMIT, "%llu is over the limit of %llu", (unsigned long long)v,
				    (unsigned long long)max);
	*out = v;
	return TZ_OK;
}

/* ---- the token ---- */

/* Take "name=" at *p and return the value's span up to the next space or
 * the end; false when the field is not next. */
static bool field(const char **p, const char *end, const char *name, const char **v, size_t *vlen)
{
	size_t nl = strlen(name);

	if ((size_t)(end - *p) < nl + 1 || memcmp(*p, name, nl) != 0 || (*p)[nl] != '=')
		return false;
	*v = *p + nl + 1;
	const char *q = *v;
	while (q < end && *q != ' ')
		q++;
	*vlen = (size_t)(q - *v);
	*p = q < end ? q + 1 : q;   /* past the single separating space */
	return !(q < end && q + 1 == end);   /* a trailing space is not a separator */
}

static int auth_fields(tz_http_auth *a, const char *p, const char *end)
{
	const char *v;
	size_t vl;

	if (!field(&p, end, "code", &v, &vl) || vl == 0 || vl > 16)
		return tz_error_set(TZ_ECORRUPT, "authorization: bad or missing 'code'");
	memcpy(a->code, v, vl);
	/* a NUL inside the value would make "CAS0\0" read as "CAS0": one code,
	 * two spellings (found by the fuzz driver's mutants) */
	if (strlen(a->code) != vl || !tz_code_valid(a->code))
		return tz_error_set(TZ_ECORRUPT, "authorization: 'code' is not a replica code");
	if (!field(&p, end, "nonce", &v, &vl) || tz_unhex(a->nonce, sizeof(a->nonce), v, vl) < 0)
		return tz_error_set(TZ_ECORRUPT, "authorization: bad or missing 'nonce'");
	if (!field(&p, end, "n", &v, &vl) || tz_parse_u64(&a->n, v, vl, UINT64_MAX) < 0 || a->n == 0)
		return tz_error_set(TZ_ECORRUPT, "authorization: bad or missing 'n'");
	if (!field(&p, end, "body", &v, &vl) || tz_unhex(a->body, sizeof(a->body), v, vl) < 0)
		return tz_error_set(TZ_ECORRUPT, "authorization: bad or missing 'body'");
	if (!field(&p, end, "sig", &v, &vl) || tz_unhex(a->sig, sizeof(a->sig), v, vl) < 0)
		return tz_error_set(TZ_ECORRUPT, "authorization: bad or missing 'sig'");
	if (p == end)
		return TZ_OK;
	a->bind = true;
	if (!field(&p, end, "pk", &v, &vl) || tz_unhex(a->pk, sizeof(a->pk), v, vl) < 0)
		return tz_error_set(TZ_ECORRUPT, "authorization: bad or missing 'pk'");
	if (!field(&p, end, "mac", &v, &vl) || tz_unhex(a->mac, sizeof(a->mac), v, vl) < 0)
		return tz_error_set(TZ_ECORRUPT, "authorization: bad or missing 'mac'");
	if (!field(&p, end, "inst", &v, &vl) || tz_unhex(a->instance, sizeof(a->instance), v, vl) < 0)
		return tz_error_set(TZ_ECORRUPT, "authorization: bad or missing 'inst'");
	if (p != end)
		return tz_error_set(TZ_ECORRUPT, "authorization: unexpected bytes after 'inst'");
	return TZ_OK;
}

int tz_http_auth_parse(tz_http_auth *out, const char *s, size_t len)
{
	static const char scheme[] = "Tazamun ";
	int rc;

	memset(out, 0, sizeof(*out));
	if (len > TZ_HTTP_AUTH_MAX)
		return tz_error_set(TZ_ELIMIT, "authorization: %zu bytes, over the limit of %d", len, TZ_HTTP_AUTH_MAX);
	if (len < sizeof(scheme) - 1 || memcmp(s, scheme, sizeof(scheme) - 1) != 0)
		return tz_error_set(TZ_ECORRUPT, "authorization: not the 'Tazamun' scheme");
	if ((rc = auth_fields(out, s + sizeof(scheme) - 1, s + len)) < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

void tz_http_auth_format(tz_buf *out, const tz_http_auth *a)
{
	char nonce[65], body[65], sig[129];

	tz_hex(nonce, a->nonce, sizeof(a->nonce));
	tz_hex(body, a->body, sizeof(a->body));
	tz_hex(sig, a->sig, sizeof(a->sig));
	tz_buf_printf(out, "Tazamun code=%s nonce=%s n=%llu body=%s sig=%s", a->code, nonce, (unsigned long long)a->n,
		      body, sig);
	if (a->bind) {
		char pk[65], mac[65], inst[33];
		tz_hex(pk, a->pk, sizeof(a->pk));
		tz_hex(mac, a->mac, sizeof(a->mac));
		tz_hex(inst, a->instance, sizeof(a->instance));
		tz_buf_printf(out, " pk=%s mac=%s inst=%s", pk, mac, inst);
	}
}

/* What a request signature covers, each variable-length part followed by
 * a NUL so that no two requests share one signed string. */
static size_t signed_pieces(tz_piece *pc, uint8_t nbuf[8], const tz_http_auth *a, const char *method,
			    const char *path)
{
	size_t k = 0;

	for (int i = 0; i < 8; i++)
		nbuf[i] = (uint8_t)(a->n >> (8 * i));
	pc[k++] = (tz_piece){ method, strlen(method) + 1 };
	pc[k++] = (tz_piece){ path, strlen(path) + 1 };
	pc[k++] = (tz_piece){ a->code, strlen(a->code) + 1 };
	pc[k++] = (tz_piece){ a->nonce, sizeof(a->nonce) };
	pc[k++] = (tz_piece){ nbuf, 8 };
	pc[k++] = (tz_piece){ a->body, sizeof(a->body) };
	pc[k++] = (tz_piece){ a->bind ? "\1" : "\0", 1 };
	if (a->bind) {
		pc[k++] = (tz_piece){ a->pk, sizeof(a->pk) };
		pc[k++] = (tz_piece){ a->mac, sizeof(a->mac) };
		pc[k++] = (tz_piece){ a->instance, sizeof(a->instance) };
	}
	return k;
}

int tz_http_auth_sign(tz_http_auth *a, const tz_keypair *kp, const char *method, const char *path,
		      const void *body, size_t n)
{
	tz_piece pc[10];
	uint8_t nbuf[8];

	tz_hash_short(a->body, sizeof(a->body), body, n);
	return tz_sign_ph(a->sig, kp, TZ_HTTP_SIG_CONTEXT, pc, signed_pieces(pc, nbuf, a, method, path));
}

int tz_http_auth_verify(const tz_http_auth *a, const uint8_t pk[TZ_PK_BYTES], const char *method, const char *path)
{
	tz_piece pc[10];
	uint8_t nbuf[8];

	if (tz_verify_ph(a->sig, pk, TZ_HTTP_SIG_CONTEXT, pc, signed_pieces(pc, nbuf, a, method, path)) < 0)
		return tz_error_set(TZ_EVERIFY, "the request's signature does not verify with the key of '%s'", a->code);
	return TZ_OK;
}

int tz_http_body_check(const tz_http_auth *a, const void *body, size_t n)
{
	uint8_t h[TZ_HTTP_DIGEST_BYTES];

	tz_hash_short(h, sizeof(h), body, n);
	if (!tz_ct_equal(h, a->body, sizeof(h)))
		return tz_error_set(TZ_EVERIFY, "the request's body does not match the hash it was signed with");
	return TZ_OK;
}

/* ---- routes ---- */

/* The next '/'-separated segment of *p (which points past a '/'). */
static size_t segment(const char **p, const char *end, const char **seg)
{
	const char *q = *p;

	*seg = q;
	while (q < end && *q != '/')
		q++;
	size_t n = (size_t)(q - *seg);
	*p = q < end ? q + 1 : q;
	return n;
}

static int route_digest(tz_http_route *r, const char *s, size_t n)
{
	if (tz_unhex(r->digest, sizeof(r->digest), s, n) < 0)
		return tz_error_set(TZ_ECORRUPT, "bad digest in the path");
	memcpy(r->digest_hex, s, n);
	r->digest_hex[n] = '\0';
	return TZ_OK;
}

static int route_upload(tz_http_route *r, const char *method, const char *p, const char *end, uint64_t max_total)
{
	const char *s;
	size_t n = segment(&p, end, &s);
	int rc;

	if ((rc = route_digest(r, s, n)) < 0)
		return rc;
	n = segment(&p, end, &s);
	if ((rc = tz_parse_u64(&r->total, s, n, max_total)) < 0)
		return tz_error_wrap(rc, "bundle size in the path");
	if (p == end && s + n == end) {   /* /v1/upload/<digest>/<total> */
		r->kind = TZ_ROUTE_UPLOAD_STATE;
		return strcmp(method, "GET") == 0 ? TZ_OK : tz_error_set(TZ_EINVAL, "use GET for an upload's state");
	}
	n = segment(&p, end, &s);
	if (p != end || s + n != end)
		return tz_error_set(TZ_ENOTFOUND, "no such path");
	if ((rc = tz_parse_u64(&r->offset, s, n, r->total)) < 0)
		return tz_error_wrap(rc == TZ_ELIMIT ? TZ_ECORRUPT : rc, "chunk offset in the path");
	r->kind = TZ_ROUTE_UPLOAD;
	return strcmp(method, "PUT") == 0 ? TZ_OK : tz_error_set(TZ_EINVAL, "use PUT for a chunk");
}

static int route_kind(tz_http_route *r, const char *method, const char *path, size_t len, uint64_t max_total)
{
	const char *end = path + len;

	if (strcmp(path, "/metrics") == 0) {
		r->kind = TZ_ROUTE_METRICS;
		return strcmp(method, "GET") == 0 ? TZ_OK : tz_error_set(TZ_EINVAL, "use GET for /metrics");
	}
	if (strcmp(path, "/v1/challenge") == 0) {
		r->kind = TZ_ROUTE_CHALLENGE;
		return strcmp(method, "POST") == 0 ? TZ_OK : tz_error_set(TZ_EINVAL, "use POST for a challenge");
	}
	if (strcmp(path, "/v1/reply") == 0) {
		r->kind = TZ_ROUTE_REPLY_MAKE;
		return strcmp(method, "POST") == 0 ? TZ_OK : tz_error_set(TZ_EINVAL, "use POST to make a reply");
	}
	if (len > 10 && memcmp(path, "/v1/reply/", 10) == 0) {
		int rc = route_digest(r, path + 10, len - 10);
		r->kind = TZ_ROUTE_REPLY_GET;
		if (rc < 0)
			return rc;
		return strcmp(method, "GET") == 0 ? TZ_OK : tz_error_set(TZ_EINVAL, "use GET for a reply");
	}
	if (len > 11 && memcmp(path, "/v1/upload/", 11) == 0)
		return route_upload(r, method, path + 11, end, max_total);
	return tz_error_set(TZ_ENOTFOUND, "no such path");
}

int tz_http_route_parse(tz_http_route *out, const char *method, const char *path, uint64_t max_total)
{
	size_t len = strnlen(path, TZ_HTTP_PATH_MAX + 1);
	int rc;

	memset(out, 0, sizeof(*out));
	if (len > TZ_HTTP_PATH_MAX)
		return tz_error_set(TZ_ELIMIT, "the path is over %d bytes", TZ_HTTP_PATH_MAX);
	if ((rc = route_kind(out, method, path, len, max_total)) < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

/* ---- chunks ---- */

int tz_chunk_plan_make(tz_chunk_plan *out, uint64_t durable, uint64_t total, uint64_t offset, uint64_t len)
{
	out->skip = out->append = 0;
	if (durable > total)
		return tz_error_set(TZ_EINVAL, "HQ holds %llu bytes of a %llu-byte bundle", (unsigned long long)durable,
				    (unsigned long long)total);
	if (len == 0)
		return tz_error_set(TZ_EINVAL, "empty chunk");
	if (len > TZ_HTTP_CHUNK_MAX)
		return tz_error_set(TZ_ELIMIT, "a chunk of %llu bytes is over the limit of %llu", (unsigned long long)len,
				    (unsigned long long)TZ_HTTP_CHUNK_MAX);
	if (offset > total || len > total - offset)
		return tz_error_set(TZ_ELIMIT, "the chunk ends past the bundle's %llu bytes", (unsigned long long)total);
	if (offset > durable)
		return tz_error_set(TZ_EPROTO, "the chunk starts at %llu, but HQ holds %llu bytes", (unsigned long long)offset,
				    (unsigned long long)durable);
	out->skip = durable - offset < len ? durable - offset : len;
	out->append = len - out->skip;
	return TZ_OK;
}

/* ---- challenges ---- */

typedef struct {
	uint8_t nonce[TZ_HTTP_NONCE_BYTES];
	char code[17];          /* "" until first used */
	uint64_t last_n;
	int64_t expires;
	int64_t issued;         /* ordering for eviction */
	bool used;              /* slot in use */
} challenge;

struct tz_challenges {
	pthread_mutex_t mu;
	challenge *slots;
	size_t cap;
	int64_t lifetime;
	int64_t clock;          /* issue counter */
};

int tz_challenges_new(tz_challenges **out, size_t cap, int64_t lifetime_ms)
{
	tz_challenges *c;

	*out = NULL;
	if (cap == 0)
		return tz_error_set(TZ_EINVAL, "a challenge table needs room");
	if ((c = tz_calloc(1, sizeof(*c))) == NULL || (c->slots = tz_calloc(cap, sizeof(*c->slots))) == NULL) {
		tz_free(c);
		return TZ_ENOMEM;
	}
	pthread_mutex_init(&c->mu, NULL);
	c->cap = cap;
	c->lifetime = lifetime_ms;
	*out = c;
	return TZ_OK;
}

void tz_challenges_free(tz_challenges *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->mu);
	tz_free(c->slots);
	tz_free(c);
}

void tz_challenges_issue(tz_challenges *c, uint8_t nonce[TZ_HTTP_NONCE_BYTES], int64_t now_ms)
{
	size_t pick = 0;

	tz_random_bytes(nonce, TZ_HTTP_NONCE_BYTES);
	pthread_mutex_lock(&c->mu);
	/* a free or expired slot, else the oldest */
	for (size_t i = 0; i < c->cap; i++) {
		challenge *s = &c->slots[i];
		if (!s->used || s->expires <= now_ms) {
			pick = i;
			break;
		}
		if (s->issued < c->slots[pick].issued)
			pick = i;
	}
	challenge *s = &c->slots[pick];
	memset(s, 0, sizeof(*s));
	memcpy(s->nonce, nonce, TZ_HTTP_NONCE_BYTES);
	s->expires = now_ms + c->lifetime;
	s->issued = ++c->clock;
	s->used = true;
	pthread_mutex_unlock(&c->mu);
}

int tz_challenges_use(tz_challenges *c, const uint8_t nonce[TZ_HTTP_NONCE_BYTES], const char *code, uint64_t n,
		      int64_t now_ms)
{
	int rc = tz_error_set(TZ_ENOTFOUND, "unknown or expired challenge (ask for a new one)");

	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->cap; i++) {
		challenge *s = &c->slots[i];
		if (!s->used || !tz_ct_equal(s->nonce, nonce, TZ_HTTP_NONCE_BYTES))
			continue;
		if (s->expires <= now_ms)
			break;
		if (s->code[0] && strcmp(s->code, code) != 0) {
			rc = tz_error_set(TZ_EPERM, "the challenge belongs to another branch");
		} else if (n <= s->last_n) {
			rc = tz_error_set(TZ_EPERM, "replayed request (n %llu, last used %llu)", (unsigned long long)n,
					  (unsigned long long)s->last_n);
		} else {
			snprintf(s->code, sizeof(s->code), "%s", code);
			s->last_n = n;
			rc = TZ_OK;
		}
		break;
	}
	pthread_mutex_unlock(&c->mu);
	if (rc == TZ_OK)
		tz_error_clear();
	return rc;
}

/* ---- answer bodies ---- */

int tz_http_kv_get(char *out, size_t cap, const void *s0, size_t n, const char *key)
{
	const char *s = s0, *end = s + n;
	size_t kl = strlen(key);

	if (cap)
		out[0] = '\0';
	if (n > TZ_HTTP_ANSWER_MAX)
		return tz_error_set(TZ_ECORRUPT, "answer of %zu bytes, over the limit of %d", n, TZ_HTTP_ANSWER_MAX);
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s)), *sp;
		if (nl == NULL)
			return tz_error_set(TZ_ECORRUPT, "answer: unterminated line");
		for (sp = s; sp < nl && *sp >= 'a' && *sp <= 'z'; sp++)
			;
		for (; sp < nl && (*sp == '_' || (*sp >= 'a' && *sp <= 'z')); sp++)
			;
		if (sp == s || sp == nl || *sp != ' ')
			return tz_error_set(TZ_ECORRUPT, "answer: a line is not 'key value'");
		for (const char *q = sp + 1; q < nl; q++)
			if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
				return tz_error_set(TZ_ECORRUPT, "answer: a value holds a control byte");
		if ((size_t)(sp - s) == kl && memcmp(s, key, kl) == 0) {
			size_t vl = (size_t)(nl - sp - 1);
			if (vl >= cap)
				return tz_error_set(TZ_ELIMIT, "answer: '%s' is too long", key);
			memcpy(out, sp + 1, vl);
			out[vl] = '\0';
			return TZ_OK;
		}
		s = nl + 1;
	}
	return tz_error_set(TZ_ENOTFOUND, "answer: no '%s'", key);
}

int tz_http_kv_u64(uint64_t *out, const void *s, size_t n, const char *key)
{
	char v[24];
	int rc;

	*out = 0;
	if ((rc = tz_http_kv_get(v, sizeof(v), s, n, key)) < 0)
		return rc;
	return tz_parse_u64(out, v, strlen(v), UINT64_MAX);
}

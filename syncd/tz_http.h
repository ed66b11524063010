/*
 * tz_http.h - the pieces of the HTTP sync protocol both sides share
 * (docs/protocol.md, "HTTP transport"): the request-authentication token,
 * the routes, the chunk bookkeeping of a resumable upload, the challenge
 * table HQ keeps, and the small "key value" bodies of the answers.
 *
 * Everything here parses bytes a peer sent before anything else checks
 * them, so every parser is bounded and strict: fixed-size fields in lower
 * case hex, decimal numbers without sign, leading zeros or overflow,
 * nothing unknown, nothing twice, no trailing bytes.  None of it does I/O.
 */
#ifndef TZ_HTTP_H
#define TZ_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/tz_base.h"
#include "store/tz_buf.h"
#include "store/tz_keys.h"

/* The Authorization header of a signed request is about 400 bytes (with a
 * key binding); 1 KiB refuses anything else before it is parsed. */
#define TZ_HTTP_AUTH_MAX 1024
/* A request path is at most "/v1/upload/<64 hex>/<20 digits>/<20 digits>". */
#define TZ_HTTP_PATH_MAX 160
/* One chunk of an upload: HQ holds a chunk in memory until it has checked
 * its hash and made it durable, so 1 MiB per connection bounds that
 * memory; 256 KiB (the default) keeps a lost chunk cheap on a slow link. */
#define TZ_HTTP_CHUNK_MAX ((uint64_t)1 << 20)
#define TZ_HTTP_CHUNK_DEFAULT ((uint64_t)256 << 10)
/* An answer body other than a reply bundle: a few short lines. */
#define TZ_HTTP_ANSWER_MAX 4096
#define TZ_HTTP_NONCE_BYTES 32
#define TZ_HTTP_DIGEST_BYTES 32     /* BLAKE2b-256 */

/* The signature context: a request signature is never valid as anything
 * else (a bundle, a commit). */
#define TZ_HTTP_SIG_CONTEXT "tazamun http request v1"

/*
 * The token of one request, sent as
 *   Authorization: Tazamun code=CAS01 nonce=<64 hex> n=<decimal>
 *       body=<64 hex> sig=<128 hex> [pk=<64 hex> mac=<64 hex> inst=<32 hex>]
 * (one line, fields separated by single spaces, in this order).
 * The signature (Ed25519ph, context TZ_HTTP_SIG_CONTEXT) covers the
 * method, the path, the code, the nonce, n, the body's BLAKE2b-256 and the
 * binding fields.  pk/mac/inst: a branch whose key HQ has not bound yet
 * proves its enrolment as its bundles do (docs/protocol.md P3).
 */
typedef struct {
	char code[17];
	uint8_t nonce[TZ_HTTP_NONCE_BYTES];
	uint64_t n;                  /* 1, 2, ...: strictly increasing per nonce */
	uint8_t body[TZ_HTTP_DIGEST_BYTES];
	uint8_t sig[TZ_SIG_BYTES];
	bool bind;
	uint8_t pk[TZ_PK_BYTES];
	uint8_t mac[32];
	uint8_t instance[16];
} tz_http_auth;

/*
 * Parse an Authorization header value s[0..len) into *out.  TZ_OK, or
 * TZ_ELIMIT (longer than TZ_HTTP_AUTH_MAX), TZ_ECORRUPT (anything that is
 * not exactly the form above; the message names the field).  *out is
 * zeroed on failure.  Nothing is verified here.
 */
int tz_http_auth_parse(tz_http_auth *out, const char *s, size_t len) TZ_MUST_CHECK;

/* Append the header value of a (signed) token to out (sticky error). */
void tz_http_auth_format(tz_buf *out, const tz_http_auth *a);

/*
 * Fill a->body with the hash of body[0..n) and sign the request
 * (method, path) with kp; the caller set code, nonce, n and the binding.
 * TZ_OK or TZ_EIO.
 */
int tz_http_auth_sign(tz_http_auth *a, const tz_keypair *kp, const char *method, const char *path,
		      const void *body, size_t n) TZ_MUST_CHECK;

/*
 * Check the signature of a parsed token for (method, path) with the
 * sender's key pk.  TZ_OK or TZ_EVERIFY.  The body hash is checked by the
 * caller once the body has arrived (tz_http_body_check).
 */
int tz_http_auth_verify(const tz_http_auth *a, const uint8_t pk[TZ_PK_BYTES], const char *method,
			const char *path) TZ_MUST_CHECK;

/* Does body[0..n) hash to a->body?  TZ_OK or TZ_EVERIFY. */
int tz_http_body_check(const tz_http_auth *a, const void *body, size_t n) TZ_MUST_CHECK;

/* The routes (docs/protocol.md has each one's answers). */
typedef enum {
	TZ_ROUTE_CHALLENGE,     /* POST /v1/challenge                       unauthenticated */
	TZ_ROUTE_METRICS,       /* GET  /metrics                            unauthenticated */
	TZ_ROUTE_UPLOAD,        /* PUT  /v1/upload/<digest>/<total>/<offset> a chunk */
	TZ_ROUTE_UPLOAD_STATE,  /* GET  /v1/upload/<digest>/<total>         offset and import state */
	TZ_ROUTE_REPLY_MAKE,    /* POST /v1/reply                           make the reply bundle */
	TZ_ROUTE_REPLY_GET      /* GET  /v1/reply/<digest>                  download it (Range) */
} tz_http_route_kind;

typedef struct {
	tz_http_route_kind kind;
	uint8_t digest[TZ_HTTP_DIGEST_BYTES];   /* upload, reply */
	char digest_hex[2 * TZ_HTTP_DIGEST_BYTES + 1];
	uint64_t total;                         /* upload: the bundle's size */
	uint64_t offset;                        /* upload: where this chunk starts */
} tz_http_route;

/*
 * Parse method + path into *out.  TZ_ENOTFOUND for a path no route has
 * (HTTP 404), TZ_EINVAL for a route asked with the wrong method (405),
 * TZ_ECORRUPT for a malformed digest or number (400), TZ_ELIMIT for a path
 * over TZ_HTTP_PATH_MAX or a total over max_total (413).  *out zeroed on
 * failure.
 */
int tz_http_route_parse(tz_http_route *out, const char *method, const char *path, uint64_t max_total) TZ_MUST_CHECK;

/*
 * Chunk bookkeeping of an upload.  HQ has made durable[0..) bytes of a
 * bundle of `total` bytes; a chunk of len bytes claims to start at offset.
 * The plan: skip the first `skip` bytes of the chunk (HQ has them already:
 * a duplicated or re-sent chunk is never written twice) and append the
 * next `append` bytes at `durable`.  TZ_OK; TZ_EPROTO when the chunk starts
 * past durable (a gap: the answer tells the sender where to resume);
 * TZ_ELIMIT when it ends past total or is longer than TZ_HTTP_CHUNK_MAX;
 * TZ_EINVAL for an empty chunk or durable > total.
 */
typedef struct {
	uint64_t skip;
	uint64_t append;
} tz_chunk_plan;

int tz_chunk_plan_make(tz_chunk_plan *out, uint64_t durable, uint64_t total, uint64_t offset, uint64_t len) TZ_MUST_CHECK;

/*
 * HQ's challenges: random nonces handed out by POST /v1/challenge, each
 * usable for a sequence of requests (n = 1, 2, ... strictly increasing)
 * by the one branch that used it first, until it expires.  A table of at
 * most `cap` entries; when full, the oldest entry is dropped (its holder
 * gets "unknown challenge" and asks for another).  Thread-safe.
 */
typedef struct tz_challenges tz_challenges;

int tz_challenges_new(tz_challenges **out, size_t cap, int64_t lifetime_ms);
void tz_challenges_free(tz_challenges *c);
/* A fresh nonce, valid until now_ms + lifetime. */
void tz_challenges_issue(tz_challenges *c, uint8_t nonce[TZ_HTTP_NONCE_BYTES], int64_t now_ms);
/*
 * Use (nonce, n) for `code` (after the signature verified): TZ_OK and the
 * pair is spent; TZ_ENOTFOUND for an unknown or expired nonce; TZ_EPERM
 * when the nonce belongs to another branch or n is not above the last n
 * used with it (a replay).
 */
int tz_challenges_use(tz_challenges *c, const uint8_t nonce[TZ_HTTP_NONCE_BYTES], const char *code, uint64_t n,
		      int64_t now_ms) TZ_MUST_CHECK;

/*
 * The answers' bodies: lines "key value\n", keys [a-z_]+, values printable
 * ASCII.  Find `key` in s[0..n) and copy its value (NUL-terminated) into
 * out[0..cap).  TZ_OK, TZ_ENOTFOUND, TZ_ECORRUPT (a line that is not of
 * that form, a body over TZ_HTTP_ANSWER_MAX), TZ_ELIMIT (value too long).
 */
int tz_http_kv_get(char *out, size_t cap, const void *s, size_t n, const char *key) TZ_MUST_CHECK;
/* The same for a decimal value. */
int tz_http_kv_u64(uint64_t *out, const void *s, size_t n, const char *key) TZ_MUST_CHECK;

/* Lower case hex of p[0..n) into out (2n + 1 bytes). */
void tz_hex(char *out, const void *p, size_t n);
/* Strict lower case hex s[0..2n) into out[0..n): TZ_OK or TZ_ECORRUPT. */
int tz_unhex(uint8_t *out, size_t n, const char *s, size_t slen) TZ_MUST_CHECK;
/* Strict decimal: digits only, no leading zero (but "0"), at most max. */
int tz_parse_u64(uint64_t *out, const char *s, size_t len, uint64_t max) TZ_MUST_CHECK;

/* Milliseconds of CLOCK_MONOTONIC (challenge lifetimes, durations). */
int64_t tz_monotonic_ms(void);

#endif

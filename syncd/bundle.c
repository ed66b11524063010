/*
 * bundle.c - the bundle container, format v1 (tz_bundle.h; the byte-by-byte
 * spec with limits, order of checks and errors is docs/bundle-format.md).
 *
 *   header     magic "TZBUNDL1", u16 version, u16 flags, sender and
 *              recipient codes (u8 length + bytes), instance (16), u64
 *              sequence, u64 schema, dict_id (32), u16 nprereq + 20-byte
 *              ids, sealed key (80), secretstream header (24), u64
 *              plain_size, u64 cipher_size; all integers little-endian
 *   ciphertext the zstd frame of the payload in secretstream chunks, the
 *              header bytes authenticated with the first chunk
 *   signature  Ed25519ph over "tazamun bundle v1\0", header, ciphertext
 *
 * Reading follows STYLE.md "untrusted bytes": the header is parsed with
 * the bounded reader, each length checked against its limit and then
 * against what remains, the layout must account for every byte; then the
 * sender's key is looked up, the recipient checked, the signature verified
 * before anything is decrypted, the body decrypted before it is
 * decompressed, and decompressed with a cap of the declared size, which
 * must then be met exactly.  Cryptography is in store/keys.c and zstd in
 * store/zstd.c; this file only arranges them.
 */
#include "syncd/tz_bundle.h"

#include <stdio.h>
#include <string.h>

#include "store/tz_zstd.h"

#define MAGIC "TZBUNDL1"
#define MAGIC_LEN 8
/* the signature context, signed with its terminating NUL */
#define CONTEXT "tazamun bundle v1"
#define OID_LEN 20
#define INSTANCE_LEN 16
#define DICT_ID_LEN 32

/* Where the parts of a parsed bundle are (pointers into its bytes). */
typedef struct {
	size_t hdr_len;
	const uint8_t *sealed;      /* TZ_SEALED_KEY_BYTES */
	const uint8_t *ss_header;   /* TZ_STREAM_HEADER_BYTES */
	const uint8_t *cipher;
	size_t cipher_len;
	const uint8_t *sig;         /* TZ_SIG_BYTES */
} layout;

/* What the writer puts in the header besides tz_bundle_header. */
typedef struct {
	uint8_t dict_id[DICT_ID_LEN];
	uint8_t sealed[TZ_SEALED_KEY_BYTES];
	uint8_t ss_header[TZ_STREAM_HEADER_BYTES];
	uint64_t plain_size;
	uint64_t cipher_size;
} crypto_parts;

void tz_bundle_header_release(tz_bundle_header *h)
{
	if (h == NULL)
		return;
	tz_free(h->prereq);
	memset(h, 0, sizeof(*h));
}

/* ---- parsing the header ---- */

static int truncated(const char *field)
{
	return tz_error_set(TZ_ECORRUPT, "header: truncated in %s", field);
}

#define FLAG_BIND 0x0001u

static int parse_fixed(tz_reader *r, uint16_t *flags_out)
{
	const uint8_t *magic;
	uint16_t version, flags;

	if (tz_reader_bytes(r, &magic, MAGIC_LEN) < 0)
		return truncated("magic");
	if (memcmp(magic, MAGIC, MAGIC_LEN) != 0)
		return tz_error_set(TZ_ECORRUPT, "header: bad magic, not a tazamun bundle");
	if (tz_reader_u16le(r, &version) < 0)
		return truncated("version");
	if (version != TZ_BUNDLE_VERSION)
		return tz_error_set(TZ_EPROTO, "header: bundle version %u is not supported "
				    "(this build reads %d)", version, TZ_BUNDLE_VERSION);
	if (tz_reader_u16le(r, &flags) < 0)
		return truncated("flags");
	/* v1 defines one flag: any other bit means a format this build does not know */
	if (flags & ~FLAG_BIND)
		return tz_error_set(TZ_EPROTO, "header: reserved flag bits 0x%04x are set", flags & ~FLAG_BIND);
	*flags_out = flags;
	return TZ_OK;
}

/* A replica code: u8 length (1..16), then [A-Z0-9][A-Z0-9_-]*. */
static int parse_code(char out[TZ_BUNDLE_CODE_SIZE], tz_reader *r, const char *what)
{
	const uint8_t *b;
	uint8_t len;

	if (tz_reader_u8(r, &len) < 0)
		return truncated(what);
	if (len == 0 || len >= TZ_BUNDLE_CODE_SIZE)
		return tz_error_set(TZ_ECORRUPT, "header: %s code is not valid "
				    "(%u bytes)", what, len);
	if (tz_reader_bytes(r, &b, len) < 0)
		return truncated(what);
	memcpy(out, b, len);
	out[len] = '\0';
	if (memchr(b, '\0', len) != NULL || !tz_code_valid(out)) {
		memset(out, 0, TZ_BUNDLE_CODE_SIZE);
		return tz_error_set(TZ_ECORRUPT, "header: %s code is not valid", what);
	}
	return TZ_OK;
}

static int parse_prereq(tz_bundle_header *h, tz_reader *r)
{
	const uint8_t *b;
	uint16_t n;

	if (tz_reader_u16le(r, &n) < 0)
		return truncated("nprereq");
	if (n > TZ_BUNDLE_MAX_PREREQ)
		return tz_error_set(TZ_ELIMIT, "header: %u prerequisites (limit %d)",
				    n, TZ_BUNDLE_MAX_PREREQ);
	/* the ids must be there before anything is allocated for them */
	if (tz_reader_bytes(r, &b, (size_t)n * OID_LEN) < 0)
		return truncated("prerequisites");
	if (n == 0)
		return TZ_OK;
	if ((h->prereq = tz_calloc(n, sizeof(*h->prereq))) == NULL)
		return TZ_ENOMEM;
	for (size_t i = 0; i < n; i++)
		memcpy(h->prereq[i].id, b + i * OID_LEN, OID_LEN);
	h->nprereq = n;
	return TZ_OK;
}

/* plain_size, cipher_size, and the layout of what follows the header. */
static int parse_sizes(tz_bundle_header *h, layout *L, tz_reader *r, size_t n)
{
	uint64_t cipher_size;
	size_t rest;

	if (tz_reader_u64le(r, &h->plain_size) < 0 || tz_reader_u64le(r, &cipher_size) < 0)
		return truncated("sizes");
	if (h->plain_size > TZ_BUNDLE_MAX_PLAIN)
		return tz_error_set(TZ_ELIMIT, "header: plain_size %llu exceeds the limit of "
				    "%llu", (unsigned long long)h->plain_size,
				    (unsigned long long)TZ_BUNDLE_MAX_PLAIN);
	if (cipher_size > TZ_BUNDLE_MAX_BYTES)
		return tz_error_set(TZ_ELIMIT, "header: cipher_size %llu exceeds the limit of "
				    "%llu", (unsigned long long)cipher_size,
				    (unsigned long long)TZ_BUNDLE_MAX_BYTES);
	L->hdr_len = n - r->len;
	rest = r->len;
	if (rest < TZ_SIG_BYTES || cipher_size > rest - TZ_SIG_BYTES)
		return tz_error_set(TZ_ECORRUPT, "body: truncated: cipher_size is %llu, %zu "
				    "bytes remain with the signature",
				    (unsigned long long)cipher_size, rest);
	if (cipher_size < rest - TZ_SIG_BYTES)
		return tz_error_set(TZ_ECORRUPT, "bundle: %llu trailing bytes after the signature",
				    (unsigned long long)(rest - TZ_SIG_BYTES - cipher_size));
	L->cipher = r->p;
	L->cipher_len = (size_t)cipher_size;
	L->sig = r->p + cipher_size;
	return TZ_OK;
}

/* Every structural check: fills h (prereq allocated) and L. */
static int parse(tz_bundle_header *h, layout *L, const uint8_t *p, size_t n)
{
	tz_reader r;
	const uint8_t *b;
	uint16_t flags = 0;
	int rc;

	if (n > TZ_BUNDLE_MAX_BYTES)
		return tz_error_set(TZ_ELIMIT, "bundle of %zu bytes exceeds the limit of %llu",
				    n, (unsigned long long)TZ_BUNDLE_MAX_BYTES);
	tz_reader_init(&r, p, n);
	if ((rc = parse_fixed(&r, &flags)) < 0 || (rc = parse_code(h->sender, &r, "sender")) < 0 ||
	    (rc = parse_code(h->recipient, &r, "recipient")) < 0)
		return rc;
	if (tz_reader_bytes(&r, &b, INSTANCE_LEN) < 0)
		return truncated("instance");
	memcpy(h->instance, b, INSTANCE_LEN);
	if (tz_reader_u64le(&r, &h->sequence) < 0 || tz_reader_u64le(&r, &h->schema) < 0)
		return truncated("sequence and schema");
	if (tz_reader_bytes(&r, &b, DICT_ID_LEN) < 0)
		return truncated("dict_id");
	memcpy(h->dict_id, b, DICT_ID_LEN);
	if (flags & FLAG_BIND) {
		if (tz_reader_bytes(&r, &b, TZ_PK_BYTES + 32) < 0)
			return truncated("binding");
		h->bind = true;
		memcpy(h->bind_pk, b, TZ_PK_BYTES);
		memcpy(h->bind_mac, b + TZ_PK_BYTES, 32);
	}
	if ((rc = parse_prereq(h, &r)) < 0)
		return rc;
	if (tz_reader_bytes(&r, &L->sealed, TZ_SEALED_KEY_BYTES) < 0)
		return truncated("sealed_key");
	if (tz_reader_bytes(&r, &L->ss_header, TZ_STREAM_HEADER_BYTES) < 0)
		return truncated("ss_header");
	return parse_sizes(h, L, &r, n);
}

int tz_bundle_peek(tz_bundle_header *h_out, const void *bytes, size_t n)
{
	layout L;
	int rc;

	memset(h_out, 0, sizeof(*h_out));
	if ((rc = parse(h_out, &L, bytes, n)) < 0)
		tz_bundle_header_release(h_out);
	return rc;
}

/* ---- reading ---- */

/* The sender's key through the caller's callback, with our messages. */
static int sender_key(uint8_t pk[TZ_PK_BYTES], const tz_bundle_header *h, tz_bundle_key_cb cb,
		      void *cb_payload)
{
	const char *sender = h->sender;
	int rc;

	tz_error_clear();
	rc = cb(pk, h, cb_payload);

	if (rc == TZ_OK)
		return TZ_OK;
	memset(pk, 0, TZ_PK_BYTES);
	/* the callback's message says why, when it has one */
	if (rc == TZ_ENOTFOUND)
		return tz_error_code() == TZ_ENOTFOUND ? tz_error_wrap(TZ_EPERM, "sender")
						       : tz_error_set(TZ_EPERM, "sender: unknown sender '%s'", sender);
	if (rc == TZ_EPERM)
		return tz_error_code() == TZ_EPERM ? tz_error_wrap(TZ_EPERM, "sender")
						   : tz_error_set(TZ_EPERM, "sender: key of '%s' is revoked", sender);
	return tz_error_wrap(rc < 0 ? rc : TZ_EINVAL, "sender: cannot look up '%s'", sender);
}

/* The dictionary the body needs: none, or the one opts gives if its hash
 * is the bundle's dict_id. */
static int pick_dict(const void **dict, size_t *dict_len, const tz_bundle_header *h,
		     const tz_bundle_opts *opts)
{
	static const uint8_t none[DICT_ID_LEN];
	uint8_t id[DICT_ID_LEN];
	char hex[2 * 8 + 1];

	*dict = NULL;
	*dict_len = 0;
	if (memcmp(h->dict_id, none, DICT_ID_LEN) == 0)
		return TZ_OK;
	if (opts != NULL && opts->dict != NULL) {
		tz_hash_short(id, DICT_ID_LEN, opts->dict, opts->dict_len);
		if (memcmp(id, h->dict_id, DICT_ID_LEN) == 0) {
			*dict = opts->dict;
			*dict_len = opts->dict_len;
			return TZ_OK;
		}
	}
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", h->dict_id[i]);
	return tz_error_set(TZ_ENOTFOUND, "body: compressed with dictionary %s..., "
			    "which was not given", hex);
}

/* Signature verified: unseal, decrypt, decompress into payload_out. */
static int open_body(tz_buf *payload_out, const tz_bundle_header *h, const layout *L,
		     const uint8_t *bytes, const tz_keypair *my_kp, const tz_bundle_opts *opts)
{
	uint8_t key[TZ_STREAM_KEY_BYTES];
	tz_buf frame = TZ_BUF_INIT;
	const void *dict;
	size_t dict_len;
	int rc;

	if ((rc = pick_dict(&dict, &dict_len, h, opts)) < 0 ||
	    (rc = tz_unseal_key(key, L->sealed, my_kp)) < 0)
		goto done;
	if ((rc = tz_stream_decrypt(&frame, key, L->ss_header, bytes, L->hdr_len,
				    L->cipher, L->cipher_len)) < 0) {
		rc = tz_error_wrap(rc, "body");
		goto done;
	}
	if ((rc = tz_zstd_decompress(payload_out, frame.data, frame.len,
				     (size_t)h->plain_size, dict, dict_len)) < 0) {
		rc = tz_error_wrap(rc, "body");
		goto done;
	}
	if (payload_out->len != h->plain_size)
		rc = tz_error_set(TZ_ECORRUPT, "body: payload of %zu bytes, the header says %llu",
				  payload_out->len, (unsigned long long)h->plain_size);
done:
	tz_wipe(key, sizeof(key));
	tz_wipe(frame.data, frame.len);
	tz_buf_release(&frame);
	return rc;
}

static int check_read_args(const char *me, const tz_keypair *my_kp, tz_bundle_key_cb cb,
			   const void *bytes, size_t n)
{
	if (me == NULL || !tz_code_valid(me))
		return tz_error_set(TZ_EINVAL, "'%s' is not a replica code", me ? me : "(null)");
	if (my_kp == NULL || cb == NULL || (bytes == NULL && n > 0))
		return tz_error_set(TZ_EINVAL, "bundle read: missing argument");
	return TZ_OK;
}

int tz_bundle_read(tz_bundle_header *h_out, tz_buf *payload_out, const void *bytes, size_t n,
		   const char *me, const tz_keypair *my_kp, const tz_bundle_opts *opts,
		   tz_bundle_key_cb cb, void *cb_payload)
{
	uint8_t pk[TZ_PK_BYTES];
	layout L;
	int rc;

	memset(h_out, 0, sizeof(*h_out));
	tz_buf_clear(payload_out);
	if ((rc = check_read_args(me, my_kp, cb, bytes, n)) < 0 ||
	    (rc = parse(h_out, &L, bytes, n)) < 0 ||
	    (rc = sender_key(pk, h_out, cb, cb_payload)) < 0)
		goto done;
	if (strcmp(h_out->recipient, me) != 0) {
		rc = tz_error_set(TZ_EPERM, "bundle is for '%s', not '%s'", h_out->recipient, me);
		goto done;
	}
	/* authenticate before interpreting: nothing is decrypted before this */
	if ((rc = tz_verify_ph(L.sig, pk, CONTEXT, (const tz_piece[]){
				{ bytes, L.hdr_len }, { L.cipher, L.cipher_len } }, 2)) < 0)
		goto done;
	rc = open_body(payload_out, h_out, &L, bytes, my_kp, opts);
done:
	if (rc < 0) {
		tz_bundle_header_release(h_out);
		tz_wipe(payload_out->data, payload_out->len);
		tz_buf_clear(payload_out);
	}
	return rc;
}

/* ---- writing ---- */

static void put_code(tz_buf *b, const char *code)
{
	tz_buf_putc(b, (uint8_t)strlen(code));
	tz_buf_puts(b, code);
}

static int put_header(tz_buf *b, const tz_bundle_header *h, const crypto_parts *c)
{
	tz_buf_put(b, MAGIC, MAGIC_LEN);
	tz_buf_u16le(b, TZ_BUNDLE_VERSION);
	tz_buf_u16le(b, h->bind ? FLAG_BIND : 0);
	put_code(b, h->sender);
	put_code(b, h->recipient);
	tz_buf_put(b, h->instance, INSTANCE_LEN);
	tz_buf_u64le(b, h->sequence);
	tz_buf_u64le(b, h->schema);
	tz_buf_put(b, c->dict_id, DICT_ID_LEN);
	if (h->bind) {
		tz_buf_put(b, h->bind_pk, TZ_PK_BYTES);
		tz_buf_put(b, h->bind_mac, 32);
	}
	tz_buf_u16le(b, (uint16_t)h->nprereq);
	for (size_t i = 0; i < h->nprereq; i++)
		tz_buf_put(b, h->prereq[i].id, OID_LEN);
	tz_buf_put(b, c->sealed, TZ_SEALED_KEY_BYTES);
	tz_buf_put(b, c->ss_header, TZ_STREAM_HEADER_BYTES);
	tz_buf_u64le(b, c->plain_size);
	tz_buf_u64le(b, c->cipher_size);
	return tz_buf_error(b);
}

static int check_write_args(const tz_bundle_header *h, const tz_keypair *kp,
			    const uint8_t *recipient_pk, const void *payload, size_t n)
{
	if (h == NULL || kp == NULL || recipient_pk == NULL || (payload == NULL && n > 0))
		return tz_error_set(TZ_EINVAL, "bundle write: missing argument");
	if (!tz_code_valid(h->sender))
		return tz_error_set(TZ_EINVAL, "bundle write: sender '%s' is not a replica code",
				    h->sender);
	if (!tz_code_valid(h->recipient))
		return tz_error_set(TZ_EINVAL, "bundle write: recipient '%s' is not a replica "
				    "code", h->recipient);
	if (h->nprereq > TZ_BUNDLE_MAX_PREREQ || (h->nprereq > 0 && h->prereq == NULL))
		return tz_error_set(TZ_EINVAL, "bundle write: %zu prerequisites (limit %d)",
				    h->nprereq, TZ_BUNDLE_MAX_PREREQ);
	if (n > TZ_BUNDLE_MAX_PLAIN)
		return tz_error_set(TZ_ELIMIT, "bundle write: payload of %zu bytes exceeds the "
				    "limit of %llu", n, (unsigned long long)TZ_BUNDLE_MAX_PLAIN);
	return TZ_OK;
}

/* Header, ciphertext and signature into out, from the zstd frame. */
static int seal_and_sign(tz_buf *out, const tz_bundle_header *h, crypto_parts *c,
			 const tz_keypair *kp, const uint8_t *recipient_pk, const tz_buf *frame)
{
	uint8_t key[TZ_STREAM_KEY_BYTES], sig[TZ_SIG_BYTES];
	tz_buf hdr = TZ_BUF_INIT;
	tz_stream st;
	int rc;

	memset(&st, 0, sizeof(st));
	tz_random_bytes(key, sizeof(key));
	if ((rc = tz_stream_size(&c->cipher_size, frame->len)) < 0 ||
	    (rc = tz_seal_key(c->sealed, key, recipient_pk)) < 0 ||
	    (rc = tz_stream_init_push(&st, c->ss_header, key)) < 0)
		goto done;
	if ((rc = put_header(&hdr, h, c)) < 0)
		goto done;
	if (c->cipher_size > TZ_BUNDLE_MAX_BYTES - hdr.len - TZ_SIG_BYTES) {
		rc = tz_error_set(TZ_ELIMIT, "bundle write: bundle would exceed the limit of %llu "
				  "bytes", (unsigned long long)TZ_BUNDLE_MAX_BYTES);
		goto done;
	}
	tz_buf_put(out, hdr.data, hdr.len);
	if ((rc = tz_stream_push_all(out, &st, hdr.data, hdr.len, frame->data, frame->len)) < 0 ||
	    (rc = tz_sign_ph(sig, kp, CONTEXT, (const tz_piece[]){
				{ hdr.data, hdr.len }, { out->data + hdr.len, out->len - hdr.len } },
			     2)) < 0)
		goto done;
	tz_buf_put(out, sig, sizeof(sig));
	rc = tz_buf_error(out);
done:
	tz_wipe(key, sizeof(key));
	tz_wipe(&st, sizeof(st));   /* already wiped unless push_all was not reached */
	tz_buf_release(&hdr);
	return rc;
}

int tz_bundle_write(tz_buf *out, const tz_bundle_header *h, const tz_keypair *sender_kp,
		    const uint8_t recipient_pk[TZ_PK_BYTES], const void *payload, size_t n,
		    const tz_bundle_opts *opts)
{
	tz_bundle_opts o = { 0, NULL, 0 };
	tz_buf frame = TZ_BUF_INIT;
	crypto_parts c;
	int rc;

	tz_buf_clear(out);
	memset(&c, 0, sizeof(c));
	if (opts != NULL)
		o = *opts;
	if ((rc = check_write_args(h, sender_kp, recipient_pk, payload, n)) < 0)
		goto done;
	if (o.dict != NULL)
		tz_hash_short(c.dict_id, DICT_ID_LEN, o.dict, o.dict_len);
	c.plain_size = n;
	if ((rc = tz_zstd_compress(&frame, payload, n, o.level ? o.level : TZ_BUNDLE_LEVEL_DEFAULT,
				   o.dict, o.dict != NULL ? o.dict_len : 0)) < 0)
		goto done;
	rc = seal_and_sign(out, h, &c, sender_kp, recipient_pk, &frame);
done:
	tz_wipe(frame.data, frame.len);
	tz_buf_release(&frame);
	if (rc < 0)
		tz_buf_clear(out);
	return rc;
}

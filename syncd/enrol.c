/*
 * enrol.c - the enrolment file container, format v1 (tz_enrol.h; the
 * byte-by-byte spec with limits, order of checks and errors is
 * docs/bundle-format.md, "The enrolment file").
 *
 *   header     magic "TZENROL1", u16 version, u16 flags, salt (16),
 *              u64 opslimit, u64 memlimit, secretstream header (24),
 *              u64 plain_size, u64 cipher_size; all integers
 *              little-endian, 84 bytes in all
 *   ciphertext the zstd frame of the payload in secretstream chunks under
 *              the Argon2id key of the passphrase, the header bytes
 *              authenticated with the first chunk; nothing after it
 *
 * Reading follows STYLE.md "untrusted bytes": the header is parsed with
 * the bounded reader, each size checked against its limit and then against
 * what remains, and the layout must account for every byte, all before
 * Argon2 runs (it is the expensive step, and its parameters come from the
 * file, so they are bounded first).  Then the body is decrypted (which
 * authenticates the header too), and only then decompressed, with a cap of
 * the declared size, which must be met exactly.  Cryptography is in
 * store/crypto.c and zstd in store/zstd.c; this file only arranges them.
 */
#include "syncd/tz_enrol.h"

#include <string.h>

#include "store/tz_keys.h"
#include "store/tz_zstd.h"

#define MAGIC "TZENROL1"
#define MAGIC_LEN 8

/* Where the parts of a parsed file are (pointers into its bytes). */
typedef struct {
	const uint8_t *salt;        /* TZ_PWHASH_SALT_BYTES */
	uint64_t opslimit;
	uint64_t memlimit;
	const uint8_t *ss_header;   /* TZ_STREAM_HEADER_BYTES */
	uint64_t plain_size;
	const uint8_t *cipher;
	size_t cipher_len;
} layout;

_Static_assert(TZ_ENROL_HEADER_BYTES == MAGIC_LEN + 2 + 2 + TZ_PWHASH_SALT_BYTES + 8 + 8 +
	       TZ_STREAM_HEADER_BYTES + 8 + 8, "TZ_ENROL_HEADER_BYTES");
_Static_assert(TZ_PWHASH_KEY_BYTES == TZ_STREAM_KEY_BYTES, "the passphrase key is the stream key");

/* ---- parsing the header ---- */

static int truncated(const char *field)
{
	return tz_error_set(TZ_ECORRUPT, "header: truncated in %s", field);
}

static int parse_fixed(tz_reader *r)
{
	size_t have = r->len < MAGIC_LEN ? r->len : MAGIC_LEN;
	const uint8_t *magic;
	uint16_t version, flags;

	/* a file that starts like the magic but stops is cut short; any
	 * other start is not ours at all */
	if (have > 0 && memcmp(r->p, MAGIC, have) != 0)
		return tz_error_set(TZ_ECORRUPT, "header: bad magic, not a tazamun enrolment file");
	if (tz_reader_bytes(r, &magic, MAGIC_LEN) < 0)
		return truncated("magic");
	if (tz_reader_u16le(r, &version) < 0)
		return truncated("version");
	if (version != TZ_ENROL_VERSION)
		return tz_error_set(TZ_EPROTO, "header: enrolment file version %u is not "
				    "supported (this build reads %d)", version, TZ_ENROL_VERSION);
	if (tz_reader_u16le(r, &flags) < 0)
		return truncated("flags");
	/* v1 defines no flag: any bit set means a format this build does not know */
	if (flags != 0)
		return tz_error_set(TZ_EPROTO, "header: reserved flag bits 0x%04x are set", flags);
	return TZ_OK;
}

/* Salt and the Argon2 parameters, bounded before Argon2 ever sees them. */
static int parse_kdf(layout *L, tz_reader *r, uint64_t max_ops, uint64_t max_mem)
{
	if (tz_reader_bytes(r, &L->salt, TZ_PWHASH_SALT_BYTES) < 0)
		return truncated("salt");
	if (tz_reader_u64le(r, &L->opslimit) < 0 || tz_reader_u64le(r, &L->memlimit) < 0)
		return truncated("argon2 parameters");
	if (L->opslimit < TZ_PWHASH_OPS_MIN || L->opslimit > max_ops)
		return tz_error_set(TZ_ELIMIT, "header: opslimit %llu is outside %d..%llu",
				    (unsigned long long)L->opslimit, TZ_PWHASH_OPS_MIN,
				    (unsigned long long)max_ops);
	if (L->memlimit < TZ_PWHASH_MEM_MIN || L->memlimit > max_mem)
		return tz_error_set(TZ_ELIMIT, "header: memlimit %llu is outside %d..%llu",
				    (unsigned long long)L->memlimit, TZ_PWHASH_MEM_MIN,
				    (unsigned long long)max_mem);
	return TZ_OK;
}

/* plain_size, cipher_size, and the layout of what follows the header. */
static int parse_sizes(layout *L, tz_reader *r)
{
	uint64_t cipher_size;

	if (tz_reader_u64le(r, &L->plain_size) < 0 || tz_reader_u64le(r, &cipher_size) < 0)
		return truncated("sizes");
	if (L->plain_size > TZ_ENROL_MAX_PLAIN)
		return tz_error_set(TZ_ELIMIT, "header: plain_size %llu exceeds the limit of %llu",
				    (unsigned long long)L->plain_size,
				    (unsigned long long)TZ_ENROL_MAX_PLAIN);
	if (cipher_size > TZ_ENROL_MAX_BYTES)
		return tz_error_set(TZ_ELIMIT, "header: cipher_size %llu exceeds the limit of %llu",
				    (unsigned long long)cipher_size,
				    (unsigned long long)TZ_ENROL_MAX_BYTES);
	if (cipher_size > r->len)
		return tz_error_set(TZ_ECORRUPT, "body: truncated: cipher_size is %llu, %zu bytes "
				    "remain", (unsigned long long)cipher_size, r->len);
	if (cipher_size < r->len)
		return tz_error_set(TZ_ECORRUPT, "enrolment file: %llu trailing bytes after the "
				    "ciphertext", (unsigned long long)(r->len - cipher_size));
	/* the shortest stream is one empty FINAL chunk: refuse a shorter one
	 * before paying for Argon2 */
	if (cipher_size < 4 + TZ_STREAM_ABYTES)
		return tz_error_set(TZ_ECORRUPT, "body: cipher_size %llu is shorter than one "
				    "encrypted chunk (%d bytes)", (unsigned long long)cipher_size,
				    4 + TZ_STREAM_ABYTES);
	L->cipher = r->p;
	L->cipher_len = (size_t)cipher_size;
	return TZ_OK;
}

/* Every structural check, in the order of docs/bundle-format.md. */
static int parse(layout *L, const uint8_t *p, size_t n, uint64_t max_ops, uint64_t max_mem)
{
	tz_reader r;
	int rc;

	if (n > TZ_ENROL_MAX_BYTES)
		return tz_error_set(TZ_ELIMIT, "enrolment file of %zu bytes exceeds the limit of "
				    "%llu", n, (unsigned long long)TZ_ENROL_MAX_BYTES);
	tz_reader_init(&r, p, n);
	if ((rc = parse_fixed(&r)) < 0 || (rc = parse_kdf(L, &r, max_ops, max_mem)) < 0)
		return rc;
	if (tz_reader_bytes(&r, &L->ss_header, TZ_STREAM_HEADER_BYTES) < 0)
		return truncated("ss_header");
	return parse_sizes(L, &r);
}

/* ---- reading ---- */

/* Header checked: derive the key, decrypt, decompress into payload_out. */
static int open_body(tz_buf *payload_out, const layout *L, const uint8_t *bytes,
		     const void *pass, size_t pass_len)
{
	uint8_t key[TZ_PWHASH_KEY_BYTES];
	tz_buf frame = TZ_BUF_INIT;
	int rc;

	if ((rc = tz_pwhash_key(key, pass, pass_len, L->salt, L->opslimit, L->memlimit)) < 0)
		goto done;
	/* the header is the first chunk's additional data: a changed salt,
	 * parameter or size fails here like a wrong passphrase */
	if ((rc = tz_stream_decrypt(&frame, key, L->ss_header, bytes, TZ_ENROL_HEADER_BYTES,
				    L->cipher, L->cipher_len)) < 0) {
		if (rc == TZ_EVERIFY)
			rc = tz_error_wrap(rc, "body: wrong passphrase, or the enrolment file is "
					   "damaged");
		else
			rc = tz_error_wrap(rc, "body");
		goto done;
	}
	if ((rc = tz_zstd_decompress(payload_out, frame.data, frame.len,
				     (size_t)L->plain_size, NULL, 0)) < 0) {
		rc = tz_error_wrap(rc, "body");
		goto done;
	}
	if (payload_out->len != L->plain_size)
		rc = tz_error_set(TZ_ECORRUPT, "body: payload of %zu bytes, the header says %llu",
				  payload_out->len, (unsigned long long)L->plain_size);
done:
	tz_wipe(key, sizeof(key));
	tz_wipe(frame.data, frame.len);
	tz_buf_release(&frame);
	return rc;
}

int tz_enrol_read_capped(tz_buf *payload_out, const void *bytes, size_t n,
			 const void *pass, size_t pass_len, uint64_t max_ops, uint64_t max_mem)
{
	layout L;
	int rc;

	tz_buf_clear(payload_out);
	memset(&L, 0, sizeof(L));
	if (max_ops > TZ_PWHASH_OPS_MAX)
		max_ops = TZ_PWHASH_OPS_MAX;
	if (max_mem > TZ_PWHASH_MEM_MAX)
		max_mem = TZ_PWHASH_MEM_MAX;
	if (pass == NULL || pass_len == 0)
		rc = tz_error_set(TZ_EINVAL, "enrolment file: the passphrase is empty");
	else if (bytes == NULL && n > 0)
		rc = tz_error_set(TZ_EINVAL, "enrolment file: missing bytes");
	else if ((rc = parse(&L, bytes, n, max_ops, max_mem)) == TZ_OK)
		rc = open_body(payload_out, &L, bytes, pass, pass_len);
	if (rc < 0) {
		tz_wipe(payload_out->data, payload_out->len);
		tz_buf_clear(payload_out);
	}
	return rc;
}

int tz_enrol_read(tz_buf *payload_out, const void *bytes, size_t n,
		  const void *pass, size_t pass_len)
{
	return tz_enrol_read_capped(payload_out, bytes, n, pass, pass_len,
				    TZ_PWHASH_OPS_MAX, TZ_PWHASH_MEM_MAX);
}

/* ---- writing ---- */

/* What the header holds besides its constants. */
typedef struct {
	uint8_t salt[TZ_PWHASH_SALT_BYTES];
	uint64_t opslimit;
	uint64_t memlimit;
	uint8_t ss_header[TZ_STREAM_HEADER_BYTES];
	uint64_t plain_size;
	uint64_t cipher_size;
} header_parts;

static int put_header(tz_buf *b, const header_parts *h)
{
	tz_buf_put(b, MAGIC, MAGIC_LEN);
	tz_buf_u16le(b, TZ_ENROL_VERSION);
	tz_buf_u16le(b, 0);
	tz_buf_put(b, h->salt, TZ_PWHASH_SALT_BYTES);
	tz_buf_u64le(b, h->opslimit);
	tz_buf_u64le(b, h->memlimit);
	tz_buf_put(b, h->ss_header, TZ_STREAM_HEADER_BYTES);
	tz_buf_u64le(b, h->plain_size);
	tz_buf_u64le(b, h->cipher_size);
	return tz_buf_error(b);
}

/* Header and ciphertext of the zstd frame into out. */
static int seal(tz_buf *out, header_parts *h, const tz_buf *frame, const void *pass,
		size_t pass_len)
{
	uint8_t key[TZ_PWHASH_KEY_BYTES];
	tz_buf hdr = TZ_BUF_INIT;
	tz_stream st;
	int rc;

	memset(&st, 0, sizeof(st));
	if ((rc = tz_stream_size(&h->cipher_size, frame->len)) < 0)
		goto done;
	if (h->cipher_size > TZ_ENROL_MAX_BYTES - TZ_ENROL_HEADER_BYTES) {
		rc = tz_error_set(TZ_ELIMIT, "enrolment write: the file would exceed the limit "
				  "of %llu bytes", (unsigned long long)TZ_ENROL_MAX_BYTES);
		goto done;
	}
	if ((rc = tz_crypto_init()) < 0)
		goto done;
	tz_random_bytes(h->salt, sizeof(h->salt));
	if ((rc = tz_pwhash_key(key, pass, pass_len, h->salt, h->opslimit, h->memlimit)) < 0 ||
	    (rc = tz_stream_init_push(&st, h->ss_header, key)) < 0 ||
	    (rc = put_header(&hdr, h)) < 0 ||
	    (rc = tz_buf_reserve(out, hdr.len + (size_t)h->cipher_size)) < 0)
		goto done;
	tz_buf_put(out, hdr.data, hdr.len);
	if ((rc = tz_stream_push_all(out, &st, hdr.data, hdr.len, frame->data, frame->len)) < 0)
		goto done;
	rc = tz_buf_error(out);
done:
	tz_wipe(key, sizeof(key));
	tz_wipe(&st, sizeof(st));   /* already wiped unless push_all was not reached */
	tz_buf_release(&hdr);
	return rc;
}

int tz_enrol_write_params(tz_buf *out, const void *pass, size_t pass_len,
			  const void *payload, size_t n, uint64_t opslimit, uint64_t memlimit)
{
	tz_buf frame = TZ_BUF_INIT;
	header_parts h;
	int rc;

	tz_buf_clear(out);
	memset(&h, 0, sizeof(h));
	if (pass == NULL || pass_len == 0) {
		rc = tz_error_set(TZ_EINVAL, "enrolment write: the passphrase is empty");
		goto done;
	}
	if (payload == NULL && n > 0) {
		rc = tz_error_set(TZ_EINVAL, "enrolment write: missing payload");
		goto done;
	}
	if (n > TZ_ENROL_MAX_PLAIN) {
		rc = tz_error_set(TZ_ELIMIT, "enrolment write: payload of %zu bytes exceeds the "
				  "limit of %llu", n, (unsigned long long)TZ_ENROL_MAX_PLAIN);
		goto done;
	}
	h.opslimit = opslimit;
	h.memlimit = memlimit;
	h.plain_size = n;
	if ((rc = tz_zstd_compress(&frame, payload, n, TZ_ENROL_LEVEL, NULL, 0)) < 0)
		goto done;
	rc = seal(out, &h, &frame, pass, pass_len);
done:
	tz_wipe(frame.data, frame.len);
	tz_buf_release(&frame);
	if (rc < 0)
		tz_buf_clear(out);
	return rc;
}

int tz_enrol_write(tz_buf *out, const void *pass, size_t pass_len,
		   const void *payload, size_t n)
{
	return tz_enrol_write_params(out, pass, pass_len, payload, n,
				     TZ_PWHASH_OPS_DEFAULT, TZ_PWHASH_MEM_DEFAULT);
}

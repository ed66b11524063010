/*
 * crypto.c - libsodium's services other than key files and SSH signatures
 * (keys.c): base64, a short hash, random bytes, constant-time comparison,
 * and the bundle's cryptography: the stream key sealed to the recipient,
 * secretstream encryption in chunks, Ed25519ph signatures over a context
 * and pieces (docs/bundle-format.md); the enrolment file's passphrase key
 * (Argon2id) and HMAC-SHA-512-256 over pieces.  keys.c and this file are
 * the only ones that call libsodium; declarations are in tz_keys.h.
 */
#include "store/tz_keys.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

/* ---- libsodium's other services ---- */

void tz_base64_put(tz_buf *out, const void *p, size_t n)
{
	size_t cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);

	/* sodium writes a NUL after the text; tz_buf keeps room for one */
	if (tz_buf_reserve(out, cap) < 0)
		return;
	sodium_bin2base64((char *)out->data + out->len, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
	out->len += cap - 1;
}

/* Check in slices of 3 KiB of input: a multiple of 3, so the slices need
 * no padding and their encodings concatenate to the whole; 4 KiB of text
 * fits on the stack and the check needs no allocation. */
#define B64_SLICE 3072

bool tz_base64_is(const void *enc, size_t elen, const void *raw, size_t n)
{
	char slice[B64_SLICE / 3 * 4 + 1];
	const uint8_t *e = enc, *r = raw;

	if (elen != (n + 2) / 3 * 4)
		return false;
	while (n > 0) {
		size_t k = n < B64_SLICE ? n : B64_SLICE, m = (k + 2) / 3 * 4;
		sodium_bin2base64(slice, sizeof(slice), r, k, sodium_base64_VARIANT_ORIGINAL);
		if (memcmp(e, slice, m) != 0)
			return false;
		e += m;
		r += k;
		n -= k;
	}
	return true;
}

int tz_base64_decode(uint8_t *out, size_t cap, size_t *len_out, const void *s, size_t n)
{
	const char *end = NULL;

	*len_out = 0;
	if (n == 0)
		return TZ_OK;
	if (n / 4 * 3 > cap)
		return tz_error_set(TZ_ELIMIT, "base64 text decodes past %zu bytes", cap);
	if (sodium_base642bin(out, cap, s, n, NULL, len_out, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != (const char *)s + n) {
		*len_out = 0;
		return tz_error_set(TZ_ECORRUPT, "bad base64");
	}
	return TZ_OK;
}

void tz_hash_short(uint8_t *out, size_t outlen, const void *p, size_t n)
{
	crypto_generichash(out, outlen, p, n, NULL, 0);
}

void tz_random_bytes(void *p, size_t n)
{
	randombytes_buf(p, n);
}

bool tz_ct_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

/* ---- bundle cryptography (tz_keys.h, docs/bundle-format.md) ---- */

typedef crypto_secretstream_xchacha20poly1305_state ss_state;

_Static_assert(sizeof(ss_state) <= sizeof(((tz_stream *)0)->opaque),
	       "tz_stream is too small for libsodium's secretstream state");
_Static_assert(TZ_SEALED_KEY_BYTES == crypto_box_SEALBYTES + TZ_STREAM_KEY_BYTES &&
	       TZ_STREAM_HEADER_BYTES == crypto_secretstream_xchacha20poly1305_HEADERBYTES &&
	       TZ_STREAM_ABYTES == crypto_secretstream_xchacha20poly1305_ABYTES &&
	       TZ_STREAM_KEY_BYTES == crypto_secretstream_xchacha20poly1305_KEYBYTES &&
	       TZ_SIG_BYTES == crypto_sign_BYTES,
	       "tz_keys.h sizes disagree with libsodium");
/* the u32 chunk length field must hold the longest chunk */
_Static_assert(TZ_STREAM_CHUNK + TZ_STREAM_ABYTES <= UINT32_MAX, "chunk length");

void tz_wipe(void *p, size_t n)
{
	if (n > 0)
		sodium_memzero(p, n);
}

int tz_seal_key(uint8_t out[TZ_SEALED_KEY_BYTES], const uint8_t key[TZ_STREAM_KEY_BYTES],
		const uint8_t recipient_pk[TZ_PK_BYTES])
{
	uint8_t xpk[crypto_box_PUBLICKEYBYTES];
	int rc;

	memset(out, 0, TZ_SEALED_KEY_BYTES);
	if ((rc = tz_crypto_init()) < 0)
		return rc;
	if (crypto_sign_ed25519_pk_to_curve25519(xpk, recipient_pk) != 0)
		return tz_error_set(TZ_EINVAL, "recipient key is not a valid ed25519 public key");
	if (crypto_box_seal(out, key, TZ_STREAM_KEY_BYTES, xpk) != 0) {
		memset(out, 0, TZ_SEALED_KEY_BYTES);
		return tz_error_set(TZ_EIO, "cannot seal the bundle key");
	}
	return TZ_OK;
}

int tz_unseal_key(uint8_t key[TZ_STREAM_KEY_BYTES], const uint8_t sealed[TZ_SEALED_KEY_BYTES],
		  const tz_keypair *kp)
{
	uint8_t xpk[crypto_box_PUBLICKEYBYTES], xsk[crypto_box_SECRETKEYBYTES];
	int rc = TZ_OK;

	sodium_memzero(key, TZ_STREAM_KEY_BYTES);
	if ((rc = tz_crypto_init()) < 0)
		return rc;
	if (crypto_sign_ed25519_pk_to_curve25519(xpk, kp->pk) != 0 ||
	    crypto_sign_ed25519_sk_to_curve25519(xsk, kp->sk) != 0)
		rc = tz_error_set(TZ_EINVAL, "own key pair cannot be used for decryption");
	else if (crypto_box_seal_open(key, sealed, TZ_SEALED_KEY_BYTES, xpk, xsk) != 0)
		rc = tz_error_set(TZ_EVERIFY, "sealed key does not open with this replica's key");
	sodium_memzero(xsk, sizeof(xsk));
	if (rc < 0)
		sodium_memzero(key, TZ_STREAM_KEY_BYTES);
	return rc;
}

int tz_stream_init_push(tz_stream *st, uint8_t header[TZ_STREAM_HEADER_BYTES],
			const uint8_t key[TZ_STREAM_KEY_BYTES])
{
	ss_state s;
	int rc;

	sodium_memzero(st, sizeof(*st));
	if ((rc = tz_crypto_init()) < 0)
		return rc;
	if (crypto_secretstream_xchacha20poly1305_init_push(&s, header, key) != 0) {
		sodium_memzero(&s, sizeof(s));
		return tz_error_set(TZ_EIO, "cannot start an encrypted stream");
	}
	/* copied, not cast: the opaque bytes carry no alignment promise */
	memcpy(st->opaque, &s, sizeof(s));
	sodium_memzero(&s, sizeof(s));
	return TZ_OK;
}

int tz_stream_size(uint64_t *out, uint64_t n)
{
	uint64_t chunks = n == 0 ? 1 : n / TZ_STREAM_CHUNK + (n % TZ_STREAM_CHUNK != 0);
	uint64_t per = 4 + TZ_STREAM_ABYTES;

	*out = 0;
	if (chunks > (UINT64_MAX - n) / per)
		return tz_error_set(TZ_ELIMIT, "encrypted size of %llu bytes overflows",
				    (unsigned long long)n);
	*out = n + chunks * per;
	return TZ_OK;
}

int tz_stream_push_all(tz_buf *out, tz_stream *st, const void *ad, size_t ad_len,
		       const void *plain, size_t n)
{
	const uint8_t *p = plain;
	size_t start = out->len, off = 0;
	ss_state s;
	int rc = TZ_OK;

	memcpy(&s, st->opaque, sizeof(s));
	sodium_memzero(st, sizeof(*st));
	do {
		size_t m = n - off < TZ_STREAM_CHUNK ? n - off : TZ_STREAM_CHUNK;
		uint8_t tag = off + m == n ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
					   : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
		unsigned long long clen;

		tz_buf_u32le(out, (uint32_t)(m + TZ_STREAM_ABYTES));
		if ((rc = tz_buf_reserve(out, m + TZ_STREAM_ABYTES)) < 0)
			break;
		crypto_secretstream_xchacha20poly1305_push(&s, out->data + out->len, &clen,
							   m ? p + off : NULL, m,
							   off == 0 ? ad : NULL,
							   off == 0 ? ad_len : 0, tag);
		out->len += (size_t)clen;
		off += m;
	} while (off < n);
	sodium_memzero(&s, sizeof(s));
	if (rc < 0 && out->data != NULL)
		out->len = start;
	if (out->data != NULL)
		out->data[out->len] = '\0';
	return rc;
}

/* Decrypt one chunk at the front of *r into out; *final set on FINAL. */
static int pull_chunk(tz_buf *out, ss_state *s, tz_reader *r, size_t i,
		      const void *ad, size_t ad_len, int *final)
{
	const uint8_t *c;
	uint32_t clen;
	unsigned long long mlen;
	uint8_t tag;
	int rc;

	if (tz_reader_u32le(r, &clen) < 0)
		return tz_error_set(TZ_EVERIFY, "encrypted chunk %zu is truncated", i);
	if (clen < TZ_STREAM_ABYTES || clen > TZ_STREAM_CHUNK + TZ_STREAM_ABYTES)
		return tz_error_set(TZ_EVERIFY, "encrypted chunk %zu declares %lu bytes "
				    "(%d to %d)", i, (unsigned long)clen, TZ_STREAM_ABYTES,
				    TZ_STREAM_CHUNK + TZ_STREAM_ABYTES);
	if (tz_reader_bytes(r, &c, clen) < 0)
		return tz_error_set(TZ_EVERIFY, "encrypted chunk %zu is truncated", i);
	if ((rc = tz_buf_reserve(out, clen - TZ_STREAM_ABYTES)) < 0)
		return rc;
	if (crypto_secretstream_xchacha20poly1305_pull(s, out->data + out->len, &mlen, &tag,
						       c, clen, i == 0 ? ad : NULL,
						       i == 0 ? ad_len : 0) != 0)
		return tz_error_set(TZ_EVERIFY, "encrypted chunk %zu does not authenticate", i);
	out->len += (size_t)mlen;
	*final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
	if (!*final && tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
		return tz_error_set(TZ_EVERIFY, "encrypted chunk %zu has tag %u", i, tag);
	/* canonical chunking: full chunks, then a FINAL one that is empty
	 * only when it is the whole stream (a short last chunk without FINAL
	 * is reported by the caller as a missing FINAL chunk) */
	if ((!*final && mlen != TZ_STREAM_CHUNK && !tz_reader_done(r)) ||
	    (*final && mlen == 0 && i > 0))
		return tz_error_set(TZ_EVERIFY, "encrypted chunk %zu of %llu bytes breaks "
				    "the chunking", i, mlen);
	return TZ_OK;
}

int tz_stream_decrypt(tz_buf *out, const uint8_t key[TZ_STREAM_KEY_BYTES],
		      const uint8_t header[TZ_STREAM_HEADER_BYTES],
		      const void *ad, size_t ad_len, const void *cipher, size_t n)
{
	size_t start = out->len, i = 0;
	int final = 0, rc;
	tz_reader r;
	ss_state s;

	if ((rc = tz_crypto_init()) < 0)
		return rc;
	if (crypto_secretstream_xchacha20poly1305_init_pull(&s, header, key) != 0) {
		rc = tz_error_set(TZ_EVERIFY, "encrypted stream header is not valid");
		goto done;
	}
	tz_reader_init(&r, cipher, n);
	while (!final) {
		if (tz_reader_done(&r)) {
			rc = tz_error_set(TZ_EVERIFY, "encrypted stream ends without its "
					  "final chunk");
			goto done;
		}
		if ((rc = pull_chunk(out, &s, &r, i++, ad, ad_len, &final)) < 0)
			goto done;
	}
	if (!tz_reader_done(&r))
		rc = tz_error_set(TZ_EVERIFY, "%zu bytes after the final encrypted chunk", r.len);
done:
	sodium_memzero(&s, sizeof(s));
	if (rc < 0 && out->data != NULL) {
		sodium_memzero(out->data + start, out->len - start);
		out->len = start;
	}
	if (out->data != NULL)
		out->data[out->len] = '\0';
	return rc;
}

/* Start an Ed25519ph state over context (with its NUL) and the pieces. */
static void ph_start(crypto_sign_state *st, const char *context,
		     const tz_piece *pieces, size_t npieces)
{
	crypto_sign_init(st);
	crypto_sign_update(st, (const unsigned char *)context, strlen(context) + 1);
	for (size_t i = 0; i < npieces; i++)
		if (pieces[i].n > 0)
			crypto_sign_update(st, pieces[i].p, pieces[i].n);
}

int tz_sign_ph(uint8_t sig[TZ_SIG_BYTES], const tz_keypair *kp, const char *context,
	       const tz_piece *pieces, size_t npieces)
{
	crypto_sign_state st;
	int rc;

	memset(sig, 0, TZ_SIG_BYTES);
	if ((rc = tz_crypto_init()) < 0)
		return rc;
	ph_start(&st, context, pieces, npieces);
	if (crypto_sign_final_create(&st, sig, NULL, kp->sk) != 0) {
		memset(sig, 0, TZ_SIG_BYTES);
		rc = tz_error_set(TZ_EIO, "cannot sign");
	}
	sodium_memzero(&st, sizeof(st));
	return rc;
}

int tz_verify_ph(const uint8_t sig[TZ_SIG_BYTES], const uint8_t pk[TZ_PK_BYTES],
		 const char *context, const tz_piece *pieces, size_t npieces)
{
	crypto_sign_state st;
	int rc;

	if ((rc = tz_crypto_init()) < 0)
		return rc;
	ph_start(&st, context, pieces, npieces);
	if (crypto_sign_final_verify(&st, sig, pk) != 0)
		rc = tz_error_set(TZ_EVERIFY, "signature does not verify");
	sodium_memzero(&st, sizeof(st));
	return rc;
}

/* ---- passphrase keys and MACs (tz_keys.h, the enrolment file) ---- */

_Static_assert(TZ_PWHASH_SALT_BYTES == crypto_pwhash_argon2id_SALTBYTES &&
	       TZ_PWHASH_KEY_BYTES == TZ_STREAM_KEY_BYTES &&
	       TZ_PWHASH_OPS_DEFAULT == crypto_pwhash_argon2id_OPSLIMIT_MODERATE &&
	       TZ_PWHASH_MEM_DEFAULT == crypto_pwhash_argon2id_MEMLIMIT_MODERATE &&
	       TZ_PWHASH_OPS_MIN == crypto_pwhash_argon2id_OPSLIMIT_MIN &&
	       TZ_PWHASH_MEM_MIN == crypto_pwhash_argon2id_MEMLIMIT_MIN &&
	       TZ_PWHASH_OPS_MAX <= crypto_pwhash_argon2id_OPSLIMIT_MAX &&
	       TZ_PWHASH_MEM_MAX <= crypto_pwhash_argon2id_MEMLIMIT_MAX &&
	       TZ_PWHASH_KEY_BYTES >= crypto_pwhash_argon2id_BYTES_MIN &&
	       TZ_MAC_BYTES == crypto_auth_hmacsha512256_BYTES &&
	       TZ_MAC_KEY_BYTES == crypto_auth_hmacsha512256_KEYBYTES,
	       "tz_keys.h passphrase and MAC sizes disagree with libsodium");

/* Refuse parameters outside tz_keys.h's bounds, before any work. */
static int pwhash_check(const void *pass, size_t pass_len, uint64_t opslimit, uint64_t memlimit)
{
	if (pass == NULL && pass_len > 0)
		return tz_error_set(TZ_EINVAL, "passphrase hash: missing passphrase");
	if (opslimit < TZ_PWHASH_OPS_MIN || opslimit > TZ_PWHASH_OPS_MAX)
		return tz_error_set(TZ_ELIMIT, "passphrase hash: opslimit %llu is outside %d..%d",
				    (unsigned long long)opslimit, TZ_PWHASH_OPS_MIN,
				    TZ_PWHASH_OPS_MAX);
	if (memlimit < TZ_PWHASH_MEM_MIN || memlimit > TZ_PWHASH_MEM_MAX)
		return tz_error_set(TZ_ELIMIT, "passphrase hash: memlimit %llu is outside "
				    "%d..%llu", (unsigned long long)memlimit, TZ_PWHASH_MEM_MIN,
				    (unsigned long long)TZ_PWHASH_MEM_MAX);
	if ((uint64_t)pass_len > crypto_pwhash_argon2id_PASSWD_MAX)
		return tz_error_set(TZ_ELIMIT, "passphrase hash: passphrase of %zu bytes is "
				    "too long", pass_len);
	return TZ_OK;
}

int tz_pwhash_key(uint8_t key[TZ_PWHASH_KEY_BYTES], const void *pass, size_t pass_len,
		  const uint8_t salt[TZ_PWHASH_SALT_BYTES], uint64_t opslimit, uint64_t memlimit)
{
	int rc, err;

	sodium_memzero(key, TZ_PWHASH_KEY_BYTES);
	if ((rc = pwhash_check(pass, pass_len, opslimit, memlimit)) < 0 ||
	    (rc = tz_crypto_init()) < 0)
		return rc;
	/* Argon2's memory is the largest allocation a reader makes */
	if (tz_faultsim(TZ_FAULT_ALLOC))
		return tz_error_set(TZ_ENOMEM, "passphrase hash: cannot allocate %llu KiB",
				    (unsigned long long)(memlimit >> 10));
	errno = 0;
	if (crypto_pwhash(key, TZ_PWHASH_KEY_BYTES, pass_len > 0 ? (const char *)pass : "",
			  pass_len, salt, opslimit, (size_t)memlimit,
			  crypto_pwhash_ALG_ARGON2ID13) == 0)
		return TZ_OK;
	/* the parameters were checked above: what is left is Argon2 failing to
	 * map its memory (mmap sets ENOMEM; libsodium's own checks set EINVAL
	 * or EFBIG) */
	err = errno;
	sodium_memzero(key, TZ_PWHASH_KEY_BYTES);
	if (err == ENOMEM)
		return tz_error_set(TZ_ENOMEM, "passphrase hash: cannot allocate %llu KiB",
				    (unsigned long long)(memlimit >> 10));
	return tz_error_set(TZ_EIO, "passphrase hash: libsodium refused (errno %d)", err);
}

void tz_mac(uint8_t out[TZ_MAC_BYTES], const uint8_t key[TZ_MAC_KEY_BYTES],
	    const tz_piece *pieces, size_t n)
{
	crypto_auth_hmacsha512256_state st;

	crypto_auth_hmacsha512256_init(&st, key, TZ_MAC_KEY_BYTES);
	for (size_t i = 0; i < n; i++)
		if (pieces[i].n > 0)
			crypto_auth_hmacsha512256_update(&st, pieces[i].p, pieces[i].n);
	crypto_auth_hmacsha512256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

bool tz_mac_verify(const uint8_t mac[TZ_MAC_BYTES], const uint8_t key[TZ_MAC_KEY_BYTES],
		   const tz_piece *pieces, size_t n)
{
	uint8_t want[TZ_MAC_BYTES];
	bool ok;

	tz_mac(want, key, pieces, n);
	ok = crypto_verify_32(want, mac) == 0;
	sodium_memzero(want, sizeof(want));
	return ok;
}

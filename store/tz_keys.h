/*
 * tz_keys.h - Ed25519 key pairs (libsodium) and SSH signatures (sshsig).
 *
 * Every replica signs its commits with its Ed25519 key in the SSH signature
 * format (OpenSSH PROTOCOL.sshsig, namespace "git"), so that stock
 * `git verify-commit` with an allowed-signers file checks the history.
 * keys.c and crypto.c, declared here, are the only callers of libsodium.
 */
#ifndef TZ_KEYS_H
#define TZ_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/tz_base.h"
#include "store/tz_buf.h"

#define TZ_PK_BYTES 32
#define TZ_SK_BYTES 64

typedef struct {
	uint8_t pk[TZ_PK_BYTES];
	uint8_t sk[TZ_SK_BYTES];   /* libsodium form: seed || pk */
} tz_keypair;

/* Initialise libsodium once; TZ_EIO if it cannot start. Thread-safe. */
int tz_crypto_init(void);

/* Make a fresh key pair. */
int tz_keypair_generate(tz_keypair *kp);
/* Wipe the secret half (sodium_memzero). Accepts NULL. */
void tz_keypair_wipe(tz_keypair *kp);

/*
 * Key files in a store's keys/ directory:
 *   <dir>/<name>      the secret key, mode 0600: "tazamun-ed25519-secret\n"
 *                     then the 64-byte secret key in hex and "\n";
 *   <dir>/<name>.pub  the public key in OpenSSH form, mode 0600:
 *                     "ssh-ed25519 <base64> <comment>\n".
 * tz_keypair_save refuses to overwrite (TZ_EEXISTS); files are written to a
 * temporary name, fsynced and renamed.  tz_keypair_load checks that the
 * public half matches the secret half (TZ_ECORRUPT otherwise).
 */
int tz_keypair_save(const tz_keypair *kp, const char *dir, const char *name,
		    const char *comment);
int tz_keypair_load(tz_keypair *kp, const char *dir, const char *name);

/* Append "ssh-ed25519 <base64 of the SSH public key blob>" (no newline). */
void tz_pubkey_openssh(tz_buf *out, const uint8_t pk[TZ_PK_BYTES]);

/*
 * Parse "ssh-ed25519 <base64> [comment]" into pk.  TZ_ECORRUPT for any
 * other key type or a blob that is not exactly an Ed25519 key.
 */
int tz_pubkey_parse(uint8_t pk[TZ_PK_BYTES], const char *line, size_t len) TZ_MUST_CHECK;

/*
 * Sign `msg` in the SSH signature format with namespace `ns` (hash
 * sha512) and append the armored signature ("-----BEGIN SSH
 * SIGNATURE-----\n", base64 in lines of 70, "-----END SSH SIGNATURE-----")
 * to `out`, without a final newline.
 */
int tz_sshsig_sign(tz_buf *out, const tz_keypair *kp, const char *ns,
		   const void *msg, size_t len);

/*
 * Verify an armored SSH signature over `msg` for namespace `ns`.  On
 * success TZ_OK and the signer's public key in signer_pk; on any failure
 * (bad armor, bad base64, wrong magic or version, other algorithm, other
 * namespace, bad signature, trailing bytes) TZ_EVERIFY or TZ_ECORRUPT with
 * a message, and signer_pk zeroed.  Fail-closed.
 */
int tz_sshsig_verify(uint8_t signer_pk[TZ_PK_BYTES], const char *armored, size_t armored_len,
		     const char *ns, const void *msg, size_t len) TZ_MUST_CHECK;

/*
 * libsodium's other services (crypto.c), so that store/'s two wrapper files
 * stay the only callers of libsodium (STYLE.md).
 */

/* Append the standard, padded base64 of p[0..n) to out (sticky error). */
void tz_base64_put(tz_buf *out, const void *p, size_t n);

/* Is enc[0..elen) exactly the standard, padded base64 of raw[0..n)? */
bool tz_base64_is(const void *enc, size_t elen, const void *raw, size_t n);

/*
 * Decode standard padded base64 s[0..n) into out (at most cap bytes); no
 * whitespace or other character is skipped.  TZ_ECORRUPT when s is not
 * base64 or has trailing characters; TZ_ELIMIT past cap.  The caller checks
 * canonical form with tz_base64_is where it matters.
 */
int tz_base64_decode(uint8_t *out, size_t cap, size_t *len_out, const void *s, size_t n) TZ_MUST_CHECK;

/* BLAKE2b of p[0..n) truncated to outlen (16 to 64) bytes: not for
 * secrets, for spreading names (the tree fanout). */
void tz_hash_short(uint8_t *out, size_t outlen, const void *p, size_t n);

/* Fill p with n random bytes (the OS generator, via libsodium). */
void tz_random_bytes(void *p, size_t n);

/* Constant-time comparison of n bytes: true when equal. */
bool tz_ct_equal(const void *a, const void *b, size_t n);

/*
 * ---- Bundle cryptography (docs/bundle-format.md) ----
 *
 * A bundle's body is encrypted with a fresh 32-byte key, sealed to the
 * recipient (crypto_box_seal to the X25519 form of its Ed25519 key), with
 * crypto_secretstream_xchacha20poly1305 in chunks, and signed with
 * Ed25519ph over a context string and the bytes.
 */

#define TZ_STREAM_KEY_BYTES 32      /* secretstream key */
#define TZ_SEALED_KEY_BYTES 80      /* crypto_box_SEALBYTES (48) + the key */
#define TZ_STREAM_HEADER_BYTES 24   /* secretstream header */
#define TZ_STREAM_ABYTES 17         /* per chunk: tag (1) + MAC (16) */
/* Plaintext per chunk: 64 KiB keeps the working memory of one chunk small
 * and the 21 bytes of framing + tag per chunk under 0.04 %. */
#define TZ_STREAM_CHUNK 65536
#define TZ_SIG_BYTES 64             /* an Ed25519 signature */

/*
 * Seal the stream key `key` to the owner of the Ed25519 public key
 * recipient_pk (crypto_box_seal to its X25519 form).  Returns TZ_OK;
 * TZ_EINVAL when recipient_pk is not a usable Ed25519 key; TZ_EIO when
 * libsodium fails.  `out` is zeroed on failure.
 */
int tz_seal_key(uint8_t out[TZ_SEALED_KEY_BYTES], const uint8_t key[TZ_STREAM_KEY_BYTES],
		const uint8_t recipient_pk[TZ_PK_BYTES]) TZ_MUST_CHECK;

/*
 * Open a sealed stream key with our key pair.  TZ_OK; TZ_EVERIFY when it
 * was not sealed to kp or was altered; TZ_EINVAL when kp cannot be turned
 * into X25519 keys.  `key` is zeroed on failure; the X25519 secret is wiped.
 */
int tz_unseal_key(uint8_t key[TZ_STREAM_KEY_BYTES], const uint8_t sealed[TZ_SEALED_KEY_BYTES],
		  const tz_keypair *kp) TZ_MUST_CHECK;

/* An encryption stream in progress: libsodium's state, kept opaque so that
 * only keys.c sees libsodium's types (checked there to fit). */
typedef struct {
	uint8_t opaque[64];
} tz_stream;

/*
 * Start a stream under `key`: fills the 24-byte header the receiver needs.
 * TZ_OK or TZ_EIO; st is wiped on failure.
 */
int tz_stream_init_push(tz_stream *st, uint8_t header[TZ_STREAM_HEADER_BYTES],
			const uint8_t key[TZ_STREAM_KEY_BYTES]) TZ_MUST_CHECK;

/*
 * The framed size of n plaintext bytes: one chunk per TZ_STREAM_CHUNK
 * bytes (at least one), each u32 length + TZ_STREAM_ABYTES + its bytes.
 * TZ_OK, or TZ_ELIMIT on overflow (*out is then 0).
 */
int tz_stream_size(uint64_t *out, uint64_t n) TZ_MUST_CHECK;

/*
 * Encrypt plain[0..n) as the whole stream and append it to `out`:
 * chunks of exactly TZ_STREAM_CHUNK bytes tagged MESSAGE, the last chunk
 * (1..TZ_STREAM_CHUNK bytes, or 0 when n is 0) tagged FINAL; each chunk
 * as u32 little-endian length of the encrypted chunk, then the encrypted
 * chunk.  ad[0..ad_len) is authenticated with the first chunk.  st is
 * wiped afterwards, whatever happens.  Returns TZ_OK or out's error
 * (TZ_ENOMEM, TZ_ELIMIT); on failure out is back to its length on entry.
 */
int tz_stream_push_all(tz_buf *out, tz_stream *st, const void *ad, size_t ad_len,
		       const void *plain, size_t n) TZ_MUST_CHECK;

/*
 * Decrypt a whole stream made by tz_stream_push_all and append the
 * plaintext to `out` (it is never longer than the ciphertext, and grows
 * chunk by chunk).  Fail-closed: TZ_EVERIFY for a chunk that does not
 * authenticate (under this key, header and ad), a chunk length outside
 * TZ_STREAM_ABYTES..TZ_STREAM_CHUNK + TZ_STREAM_ABYTES, a truncated chunk,
 * a missing FINAL chunk, bytes after it, a tag other than MESSAGE/FINAL,
 * or non-canonical chunking; TZ_ENOMEM.  On failure the bytes appended are
 * wiped and out is back to its length on entry.
 */
int tz_stream_decrypt(tz_buf *out, const uint8_t key[TZ_STREAM_KEY_BYTES],
		      const uint8_t header[TZ_STREAM_HEADER_BYTES],
		      const void *ad, size_t ad_len, const void *cipher, size_t n) TZ_MUST_CHECK;

/* One piece of signed data. */
typedef struct {
	const void *p;
	size_t n;
} tz_piece;

/*
 * Ed25519ph (SHA-512 prehash) signature with kp over `context` including
 * its terminating NUL, then each piece in order.  The context keeps a
 * signature made for one purpose from being valid for another.  TZ_OK or
 * TZ_EIO; sig is zeroed on failure.
 */
int tz_sign_ph(uint8_t sig[TZ_SIG_BYTES], const tz_keypair *kp, const char *context,
	       const tz_piece *pieces, size_t npieces) TZ_MUST_CHECK;

/*
 * Verify an Ed25519ph signature by pk over `context` (with its NUL) and
 * the pieces.  TZ_OK, or TZ_EVERIFY "signature does not verify".
 */
int tz_verify_ph(const uint8_t sig[TZ_SIG_BYTES], const uint8_t pk[TZ_PK_BYTES],
		 const char *context, const tz_piece *pieces, size_t npieces) TZ_MUST_CHECK;

/* Zero n bytes in a way the compiler cannot remove (sodium_memzero);
 * for keys and plaintext.  Accepts NULL when n is 0. */
void tz_wipe(void *p, size_t n);

/*
 * ---- Passphrase keys and MACs (the enrolment file, docs/bundle-format.md) ----
 *
 * An enrolment file is encrypted under a key derived from a passphrase
 * with Argon2id (crypto_pwhash, algorithm ARGON2ID13, one lane); a branch
 * binds its new public key to a one-time enrolment secret with
 * HMAC-SHA-512-256 (crypto_auth_hmacsha512256).
 */

#define TZ_PWHASH_KEY_BYTES 32      /* the derived key (a secretstream key) */
#define TZ_PWHASH_SALT_BYTES 16     /* crypto_pwhash_argon2id_SALTBYTES */
/* What writers use: libsodium's MODERATE Argon2id parameters (3 passes
 * over 256 MiB, about a second on a branch laptop), because an enrolment
 * file is opened once and a stolen one can be attacked offline. */
#define TZ_PWHASH_OPS_DEFAULT 3
#define TZ_PWHASH_MEM_DEFAULT ((uint64_t)256 << 20)
/* What tz_pwhash_key accepts, hence what a reader runs on a file's word.
 * Below: libsodium's minimums (1 pass, 8 KiB; tests and fuzzing use them
 * to stay fast).  Above: 16 passes over 1 GiB, 16x the defaults' work and
 * room for libsodium's SENSITIVE (4, 1 GiB): the most time and memory a
 * hostile file can make a reader spend before it is refused. */
#define TZ_PWHASH_OPS_MIN 1
#define TZ_PWHASH_OPS_MAX 16
#define TZ_PWHASH_MEM_MIN 8192
#define TZ_PWHASH_MEM_MAX ((uint64_t)1 << 30)

/*
 * Derive key from pass[0..pass_len) and salt with Argon2id13, opslimit
 * passes over memlimit bytes (one lane).  pass may hold any bytes (NULL
 * when pass_len is 0); an empty passphrase is the caller's to refuse.
 * Returns TZ_OK; TZ_ELIMIT when opslimit is outside
 * TZ_PWHASH_OPS_MIN..TZ_PWHASH_OPS_MAX, memlimit outside
 * TZ_PWHASH_MEM_MIN..TZ_PWHASH_MEM_MAX or pass_len past libsodium's
 * maximum (checked before any work); TZ_ENOMEM when Argon2 cannot get its
 * memory (also the `alloc` fault site); TZ_EINVAL for a NULL pass with a
 * length; TZ_EIO when libsodium fails otherwise.  key is zeroed on failure.
 * Takes about memlimit bytes and time proportional to opslimit x memlimit.
 */
int tz_pwhash_key(uint8_t key[TZ_PWHASH_KEY_BYTES], const void *pass, size_t pass_len,
		  const uint8_t salt[TZ_PWHASH_SALT_BYTES], uint64_t opslimit,
		  uint64_t memlimit) TZ_MUST_CHECK;

#define TZ_MAC_BYTES 32             /* crypto_auth_hmacsha512256_BYTES */
#define TZ_MAC_KEY_BYTES 32         /* crypto_auth_hmacsha512256_KEYBYTES */

/*
 * HMAC-SHA-512-256 under key of the concatenation of the pieces, in order
 * (pieces with n = 0 may have p = NULL).  The concatenation is all that is
 * authenticated: the caller makes its encoding unambiguous (fixed sizes or
 * length prefixes, a purpose string first).  Cannot fail.
 */
void tz_mac(uint8_t out[TZ_MAC_BYTES], const uint8_t key[TZ_MAC_KEY_BYTES],
	    const tz_piece *pieces, size_t n);

/*
 * Recompute the MAC of the pieces under key and compare it with mac in
 * constant time: true only when they are equal.  Fail-closed.
 */
bool tz_mac_verify(const uint8_t mac[TZ_MAC_BYTES], const uint8_t key[TZ_MAC_KEY_BYTES],
		   const tz_piece *pieces, size_t n) TZ_MUST_CHECK;

#endif

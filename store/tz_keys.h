/*
 * tz_keys.h - Ed25519 key pairs (libsodium) and SSH signatures (sshsig).
 *
 * Every replica signs its commits with its Ed25519 key in the SSH signature
 * format (OpenSSH PROTOCOL.sshsig, namespace "git"), so that stock
 * `git verify-commit` with an allowed-signers file checks the history.
 * This file is the only place that calls libsodium's signing functions.
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
 * libsodium's other services, so that this file stays the one place that
 * calls libsodium (STYLE.md).
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

#endif

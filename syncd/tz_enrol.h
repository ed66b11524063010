/*
 * tz_enrol.h - the enrolment file container: opaque payload bytes
 * protected by a passphrase, carried by hand from HQ to a new branch
 * (`syncctl -C HQ branch add CODE --out FILE`, then `syncctl init-branch
 * DIR --enroll FILE`).  The caller decides what the payload holds.
 * docs/bundle-format.md, "The enrolment file", is the byte-by-byte spec
 * (format v1) with every limit, the order of checks and the error of each
 * refusal.
 *
 * The file is the zstd frame of the payload, encrypted with secretstream
 * (as a bundle's body) under a key derived from the passphrase with
 * Argon2id; the header, which carries the salt and the Argon2 parameters,
 * is authenticated with the first encrypted chunk.
 *
 * What the container guarantees once tz_enrol_read returns TZ_OK: the
 * payload is exactly what was written by someone who knew the passphrase,
 * with the header they wrote.  Its authenticity is only as good as the
 * passphrase: anyone who knows it can write a file that reads.  Nothing is
 * signed, and nothing stops a file from being read again (a one-time
 * secret inside the payload is the caller's business).
 */
#ifndef TZ_ENROL_H
#define TZ_ENROL_H

#include <stddef.h>
#include <stdint.h>

#include "store/tz_base.h"
#include "store/tz_buf.h"

#define TZ_ENROL_VERSION 1

/* A whole enrolment file.  It carries keys, codes and addresses (a few
 * KiB), perhaps a first snapshot for the branch; the same bound as a
 * bundle (TZ_BUNDLE_MAX_BYTES): far above any real file, and still in
 * memory on the smallest branch laptop. */
#define TZ_ENROL_MAX_BYTES ((uint64_t)1 << 30)
/* The decompressed payload, for the same reason; it caps what an
 * authenticated zstd frame can make the reader allocate. */
#define TZ_ENROL_MAX_PLAIN ((uint64_t)1 << 30)
/* zstd level of the payload: written once, small, carried by hand, so a
 * slow and strong level costs nothing that matters. */
#define TZ_ENROL_LEVEL 19
/* The header: magic 8, version 2, flags 2, salt 16, opslimit 8,
 * memlimit 8, secretstream header 24, plain_size 8, cipher_size 8. */
#define TZ_ENROL_HEADER_BYTES 84

/*
 * Write an enrolment file holding payload[0..n), protected by the
 * passphrase pass[0..pass_len) (any bytes, not empty), into `out`, whose
 * contents are replaced.  A fresh random salt; Argon2id with
 * TZ_PWHASH_OPS_DEFAULT and TZ_PWHASH_MEM_DEFAULT (256 MiB, about a
 * second).  Returns TZ_OK; TZ_EINVAL for an empty passphrase or a NULL
 * argument; TZ_ELIMIT for a payload over TZ_ENROL_MAX_PLAIN or a file
 * over TZ_ENROL_MAX_BYTES; TZ_ENOMEM; TZ_EIO when compression or
 * libsodium fails.  On failure out is empty.  The key and the compressed
 * plaintext are wiped before returning.
 */
int tz_enrol_write(tz_buf *out, const void *pass, size_t pass_len,
		   const void *payload, size_t n);

/*
 * Check and open the enrolment file bytes[0..n) with the passphrase
 * pass[0..pass_len) (not empty).  On TZ_OK, payload_out (contents
 * replaced) holds the payload.  Codes, in the order the checks run
 * (docs/bundle-format.md): TZ_EINVAL (empty passphrase, NULL argument),
 * TZ_ELIMIT (file, plain_size or cipher_size over its limit; Argon2
 * parameters outside TZ_PWHASH_OPS_MIN..MAX or TZ_PWHASH_MEM_MIN..MAX,
 * refused before Argon2 runs), TZ_ECORRUPT (not an enrolment file,
 * truncated, trailing bytes, a bad zstd frame or a payload of the wrong
 * size), TZ_EPROTO (version, flags), TZ_ENOMEM (Argon2's memory, or
 * ours), TZ_EVERIFY ("wrong passphrase, or the enrolment file is
 * damaged": the two cannot be told apart).  The message names the part
 * ("header: ...", "body: ...").  On failure payload_out is empty, its
 * bytes wiped; the key and decrypted intermediates are wiped in every
 * case.  Costs one Argon2 run with the file's parameters.
 */
int tz_enrol_read(tz_buf *payload_out, const void *bytes, size_t n,
		  const void *pass, size_t pass_len) TZ_MUST_CHECK;

/*
 * For tests and fuzzing only: tz_enrol_write with the Argon2 parameters
 * opslimit and memlimit (within TZ_PWHASH_*_MIN..MAX, else TZ_ELIMIT), so
 * that a test can make files that open in microseconds
 * (TZ_PWHASH_OPS_MIN, TZ_PWHASH_MEM_MIN).  Real files are written with
 * tz_enrol_write.
 */
int tz_enrol_write_params(tz_buf *out, const void *pass, size_t pass_len,
			  const void *payload, size_t n, uint64_t opslimit, uint64_t memlimit);

/*
 * For tests and fuzzing only: tz_enrol_read that also refuses (TZ_ELIMIT,
 * before Argon2 runs) a file whose opslimit is over max_ops or whose
 * memlimit is over max_mem, so that a fuzzer cannot make each input cost
 * a second of Argon2.  Caps above TZ_PWHASH_OPS_MAX / TZ_PWHASH_MEM_MAX
 * are lowered to them: this can only tighten tz_enrol_read.
 */
int tz_enrol_read_capped(tz_buf *payload_out, const void *bytes, size_t n,
			 const void *pass, size_t pass_len, uint64_t max_ops,
			 uint64_t max_mem) TZ_MUST_CHECK;

#endif

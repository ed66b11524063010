/*
 * tz_bundle.h - the bundle container: opaque payload bytes carried from
 * one replica to another, signed by the sender, encrypted to the
 * recipient, compressed.  docs/bundle-format.md is the byte-by-byte spec
 * (format v1), with every limit, the order of checks and the error of
 * each refusal; DESIGN.md section 7 says why.
 *
 * What the container guarantees once tz_bundle_read returns TZ_OK:
 *   - the header and the ciphertext are exactly what the sender's key
 *     signed (Ed25519ph, context "tazamun bundle v1\0");
 *   - the bundle was addressed to this replica, and only its key could
 *     open the body key;
 *   - the payload is the plaintext the sender put in, of the declared size.
 * What it leaves to the caller: whether the sequence number is new for
 * this sender (replays), whether the instance id is the one expected, the
 * meaning of the payload, the schema version and the prerequisites.
 */
#ifndef TZ_BUNDLE_H
#define TZ_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "store/tz_base.h"
#include "store/tz_buf.h"
#include "store/tz_keys.h"
#include "store/tz_store.h"

#define TZ_BUNDLE_VERSION 1

/* A whole bundle: a branch 90 days offline at ten times the peak rate of
 * an agency day sends tens of MiB of compressed deltas; 1 GiB is far above
 * any real bundle and still fits in memory on the smallest branch laptop. */
#define TZ_BUNDLE_MAX_BYTES ((uint64_t)1 << 30)
/* The decompressed payload, for the same reason: row deltas compress
 * 5-10x, so a real payload is well under 1 GiB, and this caps what a
 * (signed) zstd frame can make the receiver allocate. */
#define TZ_BUNDLE_MAX_PLAIN ((uint64_t)1 << 30)
/* Prerequisite commits: one per branch line a bundle builds on; 4096 is
 * more than the number of branches of the largest deployment we plan for
 * and bounds the header to 82 KiB. */
#define TZ_BUNDLE_MAX_PREREQ 4096
/* zstd level when the options say 0: bundles are written once and often
 * carried over slow links, so a slow, strong level pays off. */
#define TZ_BUNDLE_LEVEL_DEFAULT 19

/* Replica codes are at most 16 characters (tz_code_valid) and a NUL. */
#define TZ_BUNDLE_CODE_SIZE 17

typedef struct {
	char sender[TZ_BUNDLE_CODE_SIZE];
	char recipient[TZ_BUNDLE_CODE_SIZE];
	uint8_t instance[16];   /* the sender store's instance id */
	uint64_t sequence;      /* per sender; the caller refuses replays */
	uint64_t schema;        /* schema version of the payload */
	uint8_t dict_id[32];    /* BLAKE2b-256 of the zstd dictionary, zero = none;
				 * tz_bundle_write ignores it (computed from opts) */
	uint64_t plain_size;    /* payload size; tz_bundle_write ignores it */
	bool bind;              /* flag 0x0001: a branch binds its key (docs/protocol.md) */
	uint8_t bind_pk[TZ_PK_BYTES];
	uint8_t bind_mac[32];   /* HMAC-SHA512-256 with the one-time enrolment secret */
	size_t nprereq;         /* at most TZ_BUNDLE_MAX_PREREQ */
	tz_oid *prereq;         /* read/peek: owned, freed by tz_bundle_header_release;
				 * write: the caller's, read only */
} tz_bundle_header;

typedef struct {
	int level;              /* write: zstd level 1..22, 0 = TZ_BUNDLE_LEVEL_DEFAULT */
	const void *dict;       /* write and read: the zstd dictionary, NULL = none */
	size_t dict_len;
} tz_bundle_opts;

/*
 * Find a sender's public key from the (not yet authenticated) header h:
 * its sender, and its binding if any.  Return TZ_OK with pk_out filled,
 * TZ_ENOTFOUND for a sender this replica does not know, TZ_EPERM for a
 * sender whose key is revoked, or another TZ_E* code (with its message)
 * when the lookup itself failed.  `payload` is the caller's.
 */
typedef int (*tz_bundle_key_cb)(uint8_t pk_out[TZ_PK_BYTES], const tz_bundle_header *h, void *payload);

/*
 * Write a bundle of payload[0..n) from h->sender (signing with sender_kp)
 * to h->recipient (sealing to recipient_pk) into `out`, whose contents are
 * replaced.  Returns TZ_OK; TZ_EINVAL for an invalid code, a prerequisite
 * count over the limit or a NULL prerequisite array; TZ_ELIMIT for a
 * payload over TZ_BUNDLE_MAX_PLAIN or a bundle over TZ_BUNDLE_MAX_BYTES;
 * TZ_ENOMEM; TZ_EIO when compression or sealing fails.  On failure out is
 * empty.
 */
int tz_bundle_write(tz_buf *out, const tz_bundle_header *h, const tz_keypair *sender_kp,
		    const uint8_t recipient_pk[TZ_PK_BYTES], const void *payload, size_t n,
		    const tz_bundle_opts *opts);

/*
 * Check and open the bundle bytes[0..n) as replica `me` with key pair
 * my_kp, looking up the sender's key with cb(…, cb_payload).  On TZ_OK,
 * *h_out holds the header (release it with tz_bundle_header_release) and
 * payload_out (contents replaced) the payload, exactly h_out->plain_size
 * bytes.  Codes, in the order the checks run (docs/bundle-format.md):
 * TZ_ELIMIT (a bound), TZ_ECORRUPT (bytes that do not parse, truncation,
 * trailing bytes, a bad zstd frame or a payload of the wrong size),
 * TZ_EPROTO (version, flags), TZ_EPERM (unknown or revoked sender, not
 * addressed to me), TZ_EVERIFY (signature, sealed key, encrypted body),
 * TZ_ENOTFOUND (compressed with a dictionary opts does not give),
 * TZ_EINVAL (bad arguments), TZ_ENOMEM, or the callback's own code.  The
 * message names the part ("header: ...", "body: ...").  On failure *h_out
 * is zeroed and payload_out is empty, its bytes wiped.
 */
int tz_bundle_read(tz_bundle_header *h_out, tz_buf *payload_out, const void *bytes, size_t n,
		   const char *me, const tz_keypair *my_kp, const tz_bundle_opts *opts,
		   tz_bundle_key_cb cb, void *cb_payload) TZ_MUST_CHECK;

/*
 * Parse the header only, with every structural check of tz_bundle_read
 * (limits, sizes, trailing bytes) but no cryptography: the result is NOT
 * authenticated, for messages and routing only.  Same codes and
 * messages as those checks; *h_out zeroed on failure.
 */
int tz_bundle_peek(tz_bundle_header *h_out, const void *bytes, size_t n) TZ_MUST_CHECK;

/* Free the prerequisites of a header filled by read or peek and zero it.
 * Accepts NULL. */
void tz_bundle_header_release(tz_bundle_header *h);

#endif

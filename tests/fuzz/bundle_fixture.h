/*
 * bundle_fixture.h - the fixture that tests/unit/test_bundle.c (which
 * writes the bundle corpus and reject files) and tests/fuzz/fuzz_bundle.c
 * (which replays them) must share exactly: keys from fixed seeds, the
 * dictionary, and the key callback (knows "B01", calls "OLD" revoked,
 * knows no one else).  One copy, so the two cannot drift apart.
 */
#ifndef TZ_BUNDLE_FIXTURE_H
#define TZ_BUNDLE_FIXTURE_H

#include <string.h>

#include <sodium.h>

#include "syncd/tz_bundle.h"

#define FIX_DICT "tazamun fixture dictionary: name=;region=Tunis;region=Sfax;national_id=BE;"

/* B01 from seed byte 1, HQ from seed byte 2 (fixture_setup). */
static tz_keypair k_b01, k_hq;

/* A key pair from a seed of 32 copies of seed_byte; 0 on success. */
static int fixture_key(tz_keypair *kp, uint8_t seed_byte)
{
	uint8_t seed[crypto_sign_SEEDBYTES];

	memset(seed, seed_byte, sizeof(seed));
	return crypto_sign_seed_keypair(kp->pk, kp->sk, seed);
}

/* Start libsodium and make B01 and HQ; 0 on success. */
static int fixture_setup(void)
{
	if (tz_crypto_init() != TZ_OK)
		return -1;
	return fixture_key(&k_b01, 1) | fixture_key(&k_hq, 2);
}

/* The readers' key callback (tz_bundle_key_cb). */
static int fixture_cb(uint8_t pk[TZ_PK_BYTES], const tz_bundle_header *h, void *payload)
{
	const char *sender = h->sender;

	(void)payload;
	if (strcmp(sender, "B01") == 0) {
		memcpy(pk, k_b01.pk, TZ_PK_BYTES);
		return TZ_OK;
	}
	return strcmp(sender, "OLD") == 0 ? TZ_EPERM : TZ_ENOTFOUND;
}

/* 1 when p[0..n) is all zero bytes (what a failed read leaves). */
static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

#endif

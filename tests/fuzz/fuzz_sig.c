/*
 * fuzz_sig.c - fuzz target for the SSH signature reader and the public key
 * line parser (store/keys.c: tz_sshsig_verify, tz_pubkey_parse), the two
 * parsers a commit received in a bundle reaches before it is trusted
 * (its gpgsig header; keys in allowed-signers and enrolment files).
 *
 * Every input is read twice: as an armored signature over the fixed
 * message "tazamun fuzz\n" in namespace "git", and as a key line.
 * Invariants: no crash and no leak; a signature that verifies names a
 * signer (a non-zero key) and verifies again the same way; one that does
 * not leaves the key zeroed with TZ_ECORRUPT or TZ_EVERIFY and a message;
 * a key line that parses is of type ssh-ed25519 and its canonical line
 * ("ssh-ed25519 <base64>") parses back to the same key (the parser takes
 * tabs, several blanks and a final newline, as OpenSSH writes and users
 * edit them).  tests/fuzz/corpus/sig holds a signature made
 * by ssh-keygen -Y sign (the interoperability the history relies on: git
 * verify-commit checks the same bytes) and a key line; reject/sig the
 * inputs that must fail with their errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/tz_base.h"
#include "store/tz_buf.h"
#include "store/tz_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int tz_fuzz_reject(const uint8_t *data, size_t size);

static const char MSG[] = "tazamun fuzz\n";

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_sig: %s\n", what);
	abort();
}

static const uint8_t zero[TZ_PK_BYTES];

static int check_sig(const uint8_t *data, size_t size)
{
	uint8_t pk[TZ_PK_BYTES], pk2[TZ_PK_BYTES];
	int rc = tz_sshsig_verify(pk, (const char *)data, size, "git", MSG, sizeof(MSG) - 1);
	int rc2 = tz_sshsig_verify(pk2, (const char *)data, size, "git", MSG, sizeof(MSG) - 1);

	if (rc != rc2 || memcmp(pk, pk2, sizeof(pk)) != 0)
		fail("two reads of one signature disagree");
	if (rc == TZ_OK && memcmp(pk, zero, sizeof(pk)) == 0)
		fail("a signature verified without a signer");
	if (rc != TZ_OK) {
		if (rc != TZ_ECORRUPT && rc != TZ_EVERIFY)
			fail("a bad signature failed with an undocumented code");
		if (memcmp(pk, zero, sizeof(pk)) != 0)
			fail("a bad signature left a signer's key behind");
		if (tz_error_last()[0] == '\0')
			fail("a bad signature failed without a message");
	}
	return rc;
}

static int check_key(const uint8_t *data, size_t size)
{
	uint8_t pk[TZ_PK_BYTES];
	tz_buf again = TZ_BUF_INIT;
	int rc = tz_pubkey_parse(pk, (const char *)data, size);

	if (rc == TZ_OK) {
		uint8_t pk2[TZ_PK_BYTES];
		tz_pubkey_openssh(&again, pk);
		if (tz_buf_error(&again) != TZ_OK)
			fail("a parsed key does not encode");
		if (size < 12 || memcmp(data, "ssh-ed25519", 11) != 0 || (data[11] != ' ' && data[11] != '\t'))
			fail("a key line of another type parsed");
		if (tz_pubkey_parse(pk2, (const char *)again.data, again.len) != TZ_OK ||
		    memcmp(pk, pk2, sizeof(pk)) != 0)
			fail("a parsed key, encoded, does not parse back to itself");
	} else if (rc != TZ_ECORRUPT) {
		fail("a bad key line failed with an undocumented code");
	}
	tz_buf_release(&again);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_sig(data, size);
	check_key(data, size);
	return 0;
}

/* Must-fail inputs: the signature reader's answer (the key parser's when
 * the input starts with "ssh-"). */
int tz_fuzz_reject(const uint8_t *data, size_t size)
{
	if (size >= 4 && memcmp(data, "ssh-", 4) == 0)
		return check_key(data, size);
	return check_sig(data, size);
}

/*
 * test_keys.c - unit tests for store/keys.c: key pairs and key files,
 * OpenSSH public key lines, SSH signatures (sshsig), fault injection on
 * the key-file writes, and interoperability with stock OpenSSH
 * (ssh-keygen -Y sign / -Y verify) in both directions; and from
 * store/crypto.c the passphrase key (Argon2id, against vectors of the
 * reference implementation) and the MAC (HMAC-SHA-512-256, against a
 * vector of Python's hmac module).
 *
 * The hostile-signature cases build their blobs by hand with libsodium and
 * sign them properly, so that each one is refused for the one defect it
 * carries and not merely because the signature is wrong.
 */
#include "store/tz_keys.h"
#include "tests/unit/tz_test.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

/* the scratch directory's path; a longer TMPDIR falls back to /tmp */
#define TEST_DIR_MAX 256
/* a file in the scratch directory: the directory and a short name */
#define TEST_PATH_MAX (TEST_DIR_MAX + 64)
/* a shell command naming the scratch directory once or twice */
#define TEST_CMD_MAX (3 * TEST_PATH_MAX)
/* any file a test reads back: key files, signatures */
#define TEST_FILE_MAX 4096

static char tmpdir[TEST_DIR_MAX];

static const char *in_tmp(char *out, const char *name)
{
	snprintf(out, TEST_PATH_MAX, "%s/%s", tmpdir, name);
	return out;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (f == NULL)
		return -1;
	ok = fwrite(data, 1, len, f) == len;
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* Read a file into buf (NUL-terminated); returns its length or -1. */
static long read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (long)n;
}

/* Files in dir, not counting "." and "..". */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void remove_key(const char *name)
{
	char p[TEST_PATH_MAX], q[TEST_PATH_MAX + 8];

	unlink(in_tmp(p, name));
	snprintf(q, sizeof(q), "%s.pub", p);
	unlink(q);
}

/* system() with the exit status decoded: the code, or -1. */
static int run(const char *cmd)
{
	int st = system(cmd);

	return (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
}

static int verify_str(uint8_t pk[TZ_PK_BYTES], const tz_buf *sig, const char *ns,
		      const char *msg)
{
	return tz_sshsig_verify(pk, (const char *)sig->data, sig->len, ns, msg, strlen(msg));
}

/* rc == TZ_OK; otherwise the message goes out as a TAP comment. */
static int ok_or_say(int rc)
{
	if (rc != TZ_OK)
		printf("# %s: %s\n", tz_error_name(rc), tz_error_last());
	return rc == TZ_OK;
}

static int is_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* ---- armor helpers (the test's own, independent of keys.c) ---- */

/* Decode an armored signature's body into blob; returns its length or 0. */
static size_t dearmor(uint8_t *blob, size_t cap, const tz_buf *armored)
{
	const char *s = (const char *)armored->data;
	const char *b = strchr(s, '\n') + 1;
	const char *e = strstr(s, "\n-----END");
	size_t len = 0;

	if (sodium_base642bin(blob, cap, b, (size_t)(e - b), "\n", &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0)
		return 0;
	return len;
}

static void armor(tz_buf *out, const uint8_t *blob, size_t len)
{
	char b64[4096];
	size_t n;

	tz_buf_clear(out);
	sodium_bin2base64(b64, sizeof(b64), blob, len, sodium_base64_VARIANT_ORIGINAL);
	n = strlen(b64);
	tz_buf_puts(out, "-----BEGIN SSH SIGNATURE-----\n");
	for (size_t off = 0; off < n; off += 70) {
		tz_buf_put(out, b64 + off, n - off < 70 ? n - off : 70);
		tz_buf_putc(out, '\n');
	}
	tz_buf_puts(out, "-----END SSH SIGNATURE-----");
}

/* A hand-made sshsig, properly signed, with one field of choice changed. */
typedef struct {
	uint32_t version;
	const char *reserved;
	const char *hash;       /* name in the blob; digest is sha256 if "sha256" */
	const char *keytype;    /* in the public key blob */
	size_t trailing;        /* zero bytes appended to the blob */
} sig_spec;

static void make_sig(tz_buf *out, const tz_keypair *kp, const char *ns, const sig_spec *s,
		     const char *msg)
{
	tz_buf data = TZ_BUF_INIT, blob = TZ_BUF_INIT, pkb = TZ_BUF_INIT, sigb = TZ_BUF_INIT;
	uint8_t digest[64], sig[64];
	size_t dlen = 64;

	if (strcmp(s->hash, "sha256") == 0) {
		crypto_hash_sha256(digest, (const uint8_t *)msg, strlen(msg));
		dlen = 32;
	} else {
		crypto_hash_sha512(digest, (const uint8_t *)msg, strlen(msg));
	}
	tz_buf_put(&data, "SSHSIG", 6);
	tz_buf_sshstr(&data, ns, strlen(ns));
	tz_buf_sshstr(&data, s->reserved, strlen(s->reserved));
	tz_buf_sshstr(&data, s->hash, strlen(s->hash));
	tz_buf_sshstr(&data, digest, dlen);
	crypto_sign_detached(sig, NULL, data.data, data.len, kp->sk);
	tz_buf_sshstr(&pkb, s->keytype, strlen(s->keytype));
	tz_buf_sshstr(&pkb, kp->pk, TZ_PK_BYTES);
	tz_buf_sshstr(&sigb, "ssh-ed25519", 11);
	tz_buf_sshstr(&sigb, sig, 64);
	tz_buf_put(&blob, "SSHSIG", 6);
	tz_buf_u32be(&blob, s->version);
	tz_buf_sshstr(&blob, pkb.data, pkb.len);
	tz_buf_sshstr(&blob, ns, strlen(ns));
	tz_buf_sshstr(&blob, s->reserved, strlen(s->reserved));
	tz_buf_sshstr(&blob, s->hash, strlen(s->hash));
	tz_buf_sshstr(&blob, sigb.data, sigb.len);
	for (size_t i = 0; i < s->trailing; i++)
		tz_buf_putc(&blob, 0);
	armor(out, blob.data, blob.len);
	tz_buf_release(&data);
	tz_buf_release(&blob);
	tz_buf_release(&pkb);
	tz_buf_release(&sigb);
}

/* ---- key pairs and files ---- */

static void test_save_load(const tz_keypair *kp)
{
	char p[TEST_PATH_MAX], text[TEST_FILE_MAX];
	tz_keypair back;
	tz_buf line = TZ_BUF_INIT;
	struct stat st;

	CHECK(ok_or_say(tz_keypair_save(kp, tmpdir, "branch-01", "branch-01@tazamun")),
	      "save a key pair");
	CHECK(stat(in_tmp(p, "branch-01"), &st) == 0 && (st.st_mode & 07777) == 0600,
	      "secret key file has mode 0600");
	CHECK(stat(in_tmp(p, "branch-01.pub"), &st) == 0 && (st.st_mode & 07777) == 0600,
	      "public key file has mode 0600");
	CHECK(count_entries(tmpdir) == 2, "no temporary files left behind");
	tz_pubkey_openssh(&line, kp->pk);
	tz_buf_puts(&line, " branch-01@tazamun\n");
	CHECK(read_file(in_tmp(p, "branch-01.pub"), text, sizeof(text)) > 0 &&
	      strcmp(text, (const char *)line.data) == 0, "public key file is one OpenSSH line");
	CHECK(read_file(in_tmp(p, "branch-01"), text, sizeof(text)) == 152 &&
	      strncmp(text, "tazamun-ed25519-secret\n", 23) == 0 && text[151] == '\n',
	      "secret key file has the documented form");
	memset(&back, 0xaa, sizeof(back));
	CHECK(tz_keypair_load(&back, tmpdir, "branch-01") == TZ_OK &&
	      memcmp(&back, kp, sizeof(back)) == 0, "load gives back the same key pair");
	tz_keypair_wipe(&back);
	CHECK(is_zero(back.sk, sizeof(back.sk)), "wipe zeroes the secret half");
	CHECK(tz_keypair_save(kp, tmpdir, "branch-01", NULL) == TZ_EEXISTS,
	      "save refuses to overwrite: %s", tz_error_last());
	CHECK(read_file(in_tmp(p, "branch-01.pub"), text, sizeof(text)) > 0 &&
	      strcmp(text, (const char *)line.data) == 0 && count_entries(tmpdir) == 2,
	      "refused save left the files as they were");
	CHECK(tz_keypair_save(kp, tmpdir, "../x", NULL) == TZ_EINVAL &&
	      tz_keypair_save(kp, tmpdir, ".hidden", NULL) == TZ_EINVAL &&
	      tz_keypair_save(kp, tmpdir, "n", "two\nlines") == TZ_EINVAL,
	      "bad key names and comments are refused");
	CHECK(tz_keypair_load(&back, tmpdir, "nobody") == TZ_ENOTFOUND &&
	      is_zero((const uint8_t *)&back, sizeof(back)), "missing key: ENOTFOUND, output zeroed");
	tz_buf_release(&line);
}

/* Overwrite one file of the pair, check load refuses, restore it. */
static void corrupt_and_load(const char *file, const char *text, size_t len, int want,
			     const char *what)
{
	char p[TEST_PATH_MAX], saved[TEST_FILE_MAX];
	long n = read_file(in_tmp(p, file), saved, sizeof(saved));
	tz_keypair back;
	int rc;

	write_file(p, text, len);
	memset(&back, 0xaa, sizeof(back));
	rc = tz_keypair_load(&back, tmpdir, "branch-01");
	CHECK(rc == want && is_zero((const uint8_t *)&back, sizeof(back)),
	      "%s refused (%s): %s", what, tz_error_name(rc), tz_error_last());
	write_file(p, saved, n < 0 ? 0 : (size_t)n);
}

static void test_corrupt_files(void)
{
	char p[TEST_PATH_MAX], sec[256];
	tz_keypair other;
	tz_buf line = TZ_BUF_INIT;
	long n = read_file(in_tmp(p, "branch-01"), sec, sizeof(sec));

	sec[30] = sec[30] == '0' ? '1' : '0';   /* a seed digit: halves disagree */
	corrupt_and_load("branch-01", sec, (size_t)n, TZ_ECORRUPT, "secret with a changed seed");
	sec[30] = 'g';
	corrupt_and_load("branch-01", sec, (size_t)n, TZ_ECORRUPT, "secret with a non-hex digit");
	corrupt_and_load("branch-01", sec, (size_t)n - 10, TZ_ECORRUPT, "truncated secret");
	corrupt_and_load("branch-01", "", 0, TZ_ECORRUPT, "empty secret");
	CHECK(tz_keypair_generate(&other) == TZ_OK, "generate a second key pair");
	tz_pubkey_openssh(&line, other.pk);
	tz_buf_putc(&line, '\n');
	corrupt_and_load("branch-01.pub", (const char *)line.data, line.len, TZ_ECORRUPT,
			 "public key file of another key");
	corrupt_and_load("branch-01.pub", "ssh-rsa AAAAB3NzaC1yc2E=\n", 25, TZ_ECORRUPT,
			 "public key file of another type");
	tz_keypair_wipe(&other);
	tz_buf_release(&line);
}

/* "ssh-ed25519 <base64 of string(type) string(key)>" into out. */
static void pubkey_line(char *out, size_t cap, const char *type, const uint8_t *key, size_t n)
{
	tz_buf blob = TZ_BUF_INIT;
	char b64[128];

	tz_buf_sshstr(&blob, type, strlen(type));
	tz_buf_sshstr(&blob, key, n);
	sodium_bin2base64(b64, sizeof(b64), blob.data, blob.len, sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, cap, "ssh-ed25519 %s", b64);
	tz_buf_release(&blob);
}

static void test_pubkey(const tz_keypair *kp)
{
	tz_buf line = TZ_BUF_INIT;
	uint8_t pk[TZ_PK_BYTES];
	char bad[256];

	tz_pubkey_openssh(&line, kp->pk);
	CHECK(line.len == 80 && strncmp((const char *)line.data, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI",
					37) == 0, "public key line has the OpenSSH form");
	CHECK(tz_pubkey_parse(pk, (const char *)line.data, line.len) == TZ_OK &&
	      memcmp(pk, kp->pk, TZ_PK_BYTES) == 0, "format/parse round trip");
	tz_buf_puts(&line, " a comment with spaces\n");
	CHECK(tz_pubkey_parse(pk, (const char *)line.data, line.len) == TZ_OK &&
	      memcmp(pk, kp->pk, TZ_PK_BYTES) == 0, "parse with a comment and newline");
	memset(pk, 0xaa, sizeof(pk));
	CHECK(tz_pubkey_parse(pk, "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7", 39) == TZ_ECORRUPT &&
	      is_zero(pk, sizeof(pk)), "ssh-rsa refused: %s", tz_error_last());
	pubkey_line(bad, sizeof(bad), "ssh-rsa", kp->pk, TZ_PK_BYTES);
	CHECK(tz_pubkey_parse(pk, bad, strlen(bad)) == TZ_ECORRUPT,
	      "ssh-ed25519 label over an ssh-rsa blob refused: %s", tz_error_last());
	pubkey_line(bad, sizeof(bad), "ssh-ed25519", kp->sk, 33);
	CHECK(tz_pubkey_parse(pk, bad, strlen(bad)) == TZ_ECORRUPT,
	      "33-byte ed25519 key refused: %s", tz_error_last());
	pubkey_line(bad, sizeof(bad), "ssh-ed25519", kp->pk, TZ_PK_BYTES);
	CHECK(tz_pubkey_parse(pk, bad, strlen(bad)) == TZ_OK && memcmp(pk, kp->pk, 32) == 0,
	      "the test's own line builder agrees");
	snprintf(bad, sizeof(bad), "%.*s", 60, (const char *)line.data);
	CHECK(tz_pubkey_parse(pk, bad, strlen(bad)) == TZ_ECORRUPT, "truncated key data refused");
	CHECK(tz_pubkey_parse(pk, "ssh-ed25519", 11) == TZ_ECORRUPT &&
	      tz_pubkey_parse(pk, "", 0) == TZ_ECORRUPT, "missing key data refused");
	tz_buf_release(&line);
}

/* ---- signatures ---- */

static void test_sign_verify(const tz_keypair *kp)
{
	const char *msg = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n";
	tz_buf sig = TZ_BUF_INIT;
	uint8_t pk[TZ_PK_BYTES];
	size_t i, line_ok = 1;

	CHECK(ok_or_say(tz_sshsig_sign(&sig, kp, "git", msg, strlen(msg))), "sign");
	CHECK(strncmp((const char *)sig.data, "-----BEGIN SSH SIGNATURE-----\n", 30) == 0 &&
	      sig.len > 28 && strcmp((const char *)sig.data + sig.len - 28,
				     "\n-----END SSH SIGNATURE-----") == 0, "armor lines");
	for (i = 30; i + 71 < sig.len; i += 71)
		line_ok &= sig.data[i + 70] == '\n';
	CHECK(line_ok, "base64 wrapped at 70 columns");
	CHECK(ok_or_say(verify_str(pk, &sig, "git", msg)) && memcmp(pk, kp->pk, TZ_PK_BYTES) == 0,
	      "verify gives the signer");
	tz_buf_putc(&sig, '\n');
	CHECK(verify_str(pk, &sig, "git", msg) == TZ_OK, "one final newline is accepted");
	tz_buf_clear(&sig);
	CHECK(tz_sshsig_sign(&sig, kp, "git", "", 0) == TZ_OK && verify_str(pk, &sig, "git", "") == TZ_OK,
	      "empty message round trip");
	memset(pk, 0xaa, sizeof(pk));
	CHECK(verify_str(pk, &sig, "file", "") == TZ_EVERIFY && is_zero(pk, sizeof(pk)) &&
	      strcmp(tz_error_last(), "ssh signature: namespace 'git' is not 'file'") == 0,
	      "wrong namespace refused: %s", tz_error_last());
	CHECK(tz_sshsig_sign(&sig, kp, "", "", 0) == TZ_EINVAL, "empty namespace refused");
	tz_buf_release(&sig);
}

static void test_flips(const tz_keypair *kp)
{
	char msg[] = "tazamun row 42: name=Amina, city=Kano";
	tz_buf sig = TZ_BUF_INIT, bad = TZ_BUF_INIT;
	uint8_t blob[1024], pk[TZ_PK_BYTES];
	size_t len, i, fails = 0, tries = 0;
	int b;

	CHECK(tz_sshsig_sign(&sig, kp, "git", msg, strlen(msg)) == TZ_OK, "sign for the flips");
	for (i = 0; i < strlen(msg); i++)
		for (b = 0; b < 8; b++) {
			msg[i] ^= (char)(1 << b);
			tries++;
			fails += verify_str(pk, &sig, "git", msg) == TZ_EVERIFY && is_zero(pk, 32);
			msg[i] ^= (char)(1 << b);
		}
	CHECK(fails == tries, "every flipped message bit refused (%zu of %zu)", fails, tries);
	len = dearmor(blob, sizeof(blob), &sig);
	CHECK(len > 100, "test dearmor works (%zu bytes)", len);
	fails = tries = 0;
	for (i = 0; i < len * 8; i++) {
		blob[i / 8] ^= (uint8_t)(1 << (i % 8));
		armor(&bad, blob, len);
		memset(pk, 0xaa, sizeof(pk));
		tries++;
		fails += verify_str(pk, &bad, "git", msg) < 0 && is_zero(pk, 32);
		blob[i / 8] ^= (uint8_t)(1 << (i % 8));
	}
	CHECK(fails == tries, "every flipped blob bit refused (%zu of %zu)", fails, tries);
	fails = tries = 0;
	for (i = 0; i < sig.len; i++) {
		sig.data[i] ^= 1;
		tries++;
		fails += verify_str(pk, &sig, "git", msg) < 0;
		sig.data[i] ^= 1;
	}
	CHECK(fails == tries, "every low-bit flip in the armor refused (%zu of %zu)", fails, tries);
	fails = tries = 0;
	for (i = 0; i < sig.len; i++, tries++)
		fails += tz_sshsig_verify(pk, (const char *)sig.data, i, "git", msg, strlen(msg)) < 0;
	CHECK(fails == tries, "every truncation of the armor refused (%zu of %zu)", fails, tries);
	tz_buf_release(&sig);
	tz_buf_release(&bad);
}

static void expect_refused(const tz_keypair *kp, const sig_spec *s, int want, const char *what)
{
	const char *msg = "hello";
	tz_buf sig = TZ_BUF_INIT;
	uint8_t pk[TZ_PK_BYTES];
	int rc;

	make_sig(&sig, kp, "git", s, msg);
	memset(pk, 0xaa, sizeof(pk));
	rc = verify_str(pk, &sig, "git", msg);
	if (want == TZ_OK)
		CHECK(ok_or_say(rc) && memcmp(pk, kp->pk, 32) == 0, "%s accepted", what);
	else
		CHECK(rc == want && is_zero(pk, sizeof(pk)), "%s refused (%s): %s", what,
		      tz_error_name(rc), tz_error_last());
	tz_buf_release(&sig);
}

static void test_hostile(const tz_keypair *kp)
{
	const sig_spec good = { 1, "", "sha512", "ssh-ed25519", 0 };
	sig_spec s;
	tz_buf sig = TZ_BUF_INIT;
	uint8_t pk[TZ_PK_BYTES];

	expect_refused(kp, &good, TZ_OK, "hand-made sha512 signature");
	s = good; s.hash = "sha256";
	expect_refused(kp, &s, TZ_OK, "hand-made sha256 signature");
	s = good; s.version = 2;
	expect_refused(kp, &s, TZ_ECORRUPT, "version 2");
	s = good; s.trailing = 1;
	expect_refused(kp, &s, TZ_ECORRUPT, "one trailing byte in the blob");
	s = good; s.reserved = "x";
	expect_refused(kp, &s, TZ_ECORRUPT, "non-empty reserved field");
	s = good; s.hash = "md5";
	expect_refused(kp, &s, TZ_ECORRUPT, "hash algorithm md5");
	s = good; s.keytype = "ssh-rsa";
	expect_refused(kp, &s, TZ_ECORRUPT, "key type ssh-rsa");
	make_sig(&sig, kp, "git", &good, "hello");
	tz_buf_puts(&sig, "\nX");
	CHECK(verify_str(pk, &sig, "git", "hello") == TZ_ECORRUPT,
	      "bytes after the END line refused: %s", tz_error_last());
	make_sig(&sig, kp, "git", &good, "hello");
	sig.data[40] = '\0';
	CHECK(tz_sshsig_verify(pk, (const char *)sig.data, sig.len, "git", "hello", 5) == TZ_ECORRUPT,
	      "NUL byte in the armor refused");
	CHECK(tz_sshsig_verify(pk, NULL, 0, "git", "hello", 5) == TZ_ECORRUPT, "empty input refused");
	tz_buf_release(&sig);
}

/* ---- fault injection ---- */

static void sweep(const tz_keypair *kp, tz_fault_site site, int want, const char *name)
{
	char p[TEST_PATH_MAX];
	tz_keypair back;
	int k, rc = TZ_EIO, clean = 1, faults = 0;

	for (k = 1; k < 100; k++) {
		tz_faultsim_arm(site, (uint64_t)k);
		rc = tz_keypair_save(kp, tmpdir, "fault", "c");
		tz_faultsim_arm(site, 0);
		if (rc == TZ_OK)
			break;
		faults++;
		clean &= rc == want && count_entries(tmpdir) == 2 &&
			 access(in_tmp(p, "fault"), F_OK) != 0;
	}
	CHECK(rc == TZ_OK && faults > 0 && clean,
	      "%s faults 1..%d each failed cleanly, then the save succeeded", name, faults);
	CHECK(tz_keypair_load(&back, tmpdir, "fault") == TZ_OK &&
	      memcmp(back.sk, kp->sk, TZ_SK_BYTES) == 0, "key saved after %s faults loads", name);
	tz_keypair_wipe(&back);
	remove_key("fault");
}

/* ---- interoperability with OpenSSH ---- */

static void test_ours_to_openssh(const tz_keypair *kp)
{
	const char *msg = "commit signed by tazamun\n";
	char p[TEST_PATH_MAX], cmd[TEST_CMD_MAX];
	tz_buf sig = TZ_BUF_INIT, signers = TZ_BUF_INIT;

	tz_buf_puts(&signers, "principal namespaces=\"git\" ");
	tz_pubkey_openssh(&signers, kp->pk);
	tz_buf_putc(&signers, '\n');
	write_file(in_tmp(p, "allowed_signers"), signers.data, signers.len);
	write_file(in_tmp(p, "msg"), msg, strlen(msg));
	CHECK(tz_sshsig_sign(&sig, kp, "git", msg, strlen(msg)) == TZ_OK, "sign for ssh-keygen");
	tz_buf_putc(&sig, '\n');
	write_file(in_tmp(p, "msg.sig"), sig.data, sig.len);
	snprintf(cmd, sizeof(cmd), "cd '%s' && ssh-keygen -Y verify -f allowed_signers "
		 "-I principal -n git -s msg.sig < msg >/dev/null 2>&1", tmpdir);
	CHECK(run(cmd) == 0, "ssh-keygen -Y verify accepts our signature");
	snprintf(cmd, sizeof(cmd), "cd '%s' && echo x >> msg && ssh-keygen -Y verify -f "
		 "allowed_signers -I principal -n git -s msg.sig < msg >/dev/null 2>&1", tmpdir);
	CHECK(run(cmd) == 255, "ssh-keygen -Y verify refuses it for another message");
	snprintf(cmd, sizeof(cmd), "ssh-keygen -l -f '%s/branch-01.pub' >/dev/null 2>&1", tmpdir);
	CHECK(run(cmd) == 0, "ssh-keygen reads our .pub file");
	tz_buf_release(&sig);
	tz_buf_release(&signers);
}

/* ssh-keygen signs `msg` with K (hash `alg`); we verify. */
static void openssh_sign_case(const char *alg, const uint8_t pk[TZ_PK_BYTES], const char *msg)
{
	char p[TEST_PATH_MAX], cmd[TEST_CMD_MAX], text[TEST_FILE_MAX];
	uint8_t signer[TZ_PK_BYTES];
	long n;

	unlink(in_tmp(p, "m.sig"));
	snprintf(cmd, sizeof(cmd), "cd '%s' && env -u SSH_AUTH_SOCK ssh-keygen -Y sign -f K "
		 "-n git -O hashalg=%s m >/dev/null 2>&1", tmpdir, alg);
	CHECK(run(cmd) == 0, "ssh-keygen -Y sign (%s)", alg);
	n = read_file(in_tmp(p, "m.sig"), text, sizeof(text));
	CHECK(n > 0 && ok_or_say(tz_sshsig_verify(signer, text, (size_t)n, "git", msg, strlen(msg))) &&
	      memcmp(signer, pk, TZ_PK_BYTES) == 0,
	      "we verify ssh-keygen's %s signature and name K.pub as signer", alg);
	CHECK(n > 0 && tz_sshsig_verify(signer, text, (size_t)n, "file", msg, strlen(msg)) ==
	      TZ_EVERIFY, "ssh-keygen's signature refused under another namespace");
	CHECK(n > 0 && tz_sshsig_verify(signer, text, (size_t)n, "git", "other", 5) == TZ_EVERIFY,
	      "ssh-keygen's signature refused for another message");
}

static void test_openssh_to_ours(void)
{
	const char *msg = "commit signed by ssh-keygen\n";
	char p[TEST_PATH_MAX], cmd[TEST_CMD_MAX], text[TEST_FILE_MAX];
	uint8_t pk[TZ_PK_BYTES];
	long n;

	snprintf(cmd, sizeof(cmd), "cd '%s' && ssh-keygen -q -t ed25519 -N '' -C who@where -f K "
		 ">/dev/null 2>&1", tmpdir);
	CHECK(run(cmd) == 0, "ssh-keygen -t ed25519 makes a key");
	n = read_file(in_tmp(p, "K.pub"), text, sizeof(text));
	CHECK(n > 0 && ok_or_say(tz_pubkey_parse(pk, text, (size_t)n)), "we parse ssh-keygen's K.pub");
	write_file(in_tmp(p, "m"), msg, strlen(msg));
	openssh_sign_case("sha512", pk, msg);
	openssh_sign_case("sha256", pk, msg);
}

static void test_interop(const tz_keypair *kp)
{
	if (run("command -v ssh-keygen >/dev/null 2>&1") != 0) {
		printf("ok %d # SKIP ssh-keygen not installed\n", ++tz_test_count);
		return;
	}
	test_ours_to_openssh(kp);
	test_openssh_to_ours();
}

/* ---- passphrase keys (tz_pwhash_key) ---- */

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

#define PW "correct horse"
#define PW_SALT "tazamun-salt-16b"

static int hex_is(const uint8_t *p, size_t n, const char *hex)
{
	char buf[2 * 64 + 1];

	for (size_t i = 0; i < n && i < 64; i++)
		snprintf(buf + 2 * i, 3, "%02x", p[i]);
	return strlen(hex) == 2 * n && memcmp(buf, hex, 2 * n) == 0;
}

static int pw(uint8_t key[TZ_PWHASH_KEY_BYTES], const char *pass, const char *salt,
	      uint64_t ops, uint64_t mem)
{
	return tz_pwhash_key(key, pass, strlen(pass), (const uint8_t *)salt, ops, mem);
}

static void test_pwhash_vectors(void)
{
	uint8_t key[TZ_PWHASH_KEY_BYTES], again[TZ_PWHASH_KEY_BYTES];

	/* printf 'correct horse' | argon2 tazamun-salt-16b -id -t 1 -k 8 -p 1 -l 32 -r
	 * (the reference implementation, Debian's argon2 package, version 0x13) */
	CHECK(pw(key, PW, PW_SALT, 1, 8192) == TZ_OK &&
	      hex_is(key, sizeof(key), "e9d883c6cc9826ab5c05c33725c16046"
				       "e9ba9293d38d39b86a9d8b4b606dfbf1"),
	      "argon2id13, 1 pass, 8 KiB: the reference implementation's key");
	/* ... -t 3 -k 64 ... */
	CHECK(pw(key, PW, PW_SALT, 3, 65536) == TZ_OK &&
	      hex_is(key, sizeof(key), "48b11ba16118873c875aecd4f09e1bee"
				       "6a4a6a603056402068ee9b14d6cf0970"),
	      "argon2id13, 3 passes, 64 KiB: the reference implementation's key");
	CHECK(pw(again, PW, PW_SALT, 3, 65536) == TZ_OK && memcmp(key, again, 32) == 0,
	      "passphrase key is deterministic");
	CHECK(pw(again, PW, "tazamun-salt-16c", 3, 65536) == TZ_OK && memcmp(key, again, 32) != 0,
	      "another salt gives another key");
	CHECK(pw(again, "correct horsf", PW_SALT, 3, 65536) == TZ_OK && memcmp(key, again, 32) != 0,
	      "another passphrase gives another key");
	CHECK(pw(again, PW, PW_SALT, 2, 65536) == TZ_OK && memcmp(key, again, 32) != 0 &&
	      pw(again, PW, PW_SALT, 3, 65536 + 1024) == TZ_OK && memcmp(key, again, 32) != 0,
	      "other parameters give another key");
	CHECK(tz_pwhash_key(key, "a\0b", 3, (const uint8_t *)PW_SALT, 1, 8192) == TZ_OK &&
	      tz_pwhash_key(again, "a\0c", 3, (const uint8_t *)PW_SALT, 1, 8192) == TZ_OK &&
	      memcmp(key, again, 32) != 0, "the passphrase is bytes: a NUL does not end it");
	CHECK(tz_pwhash_key(key, NULL, 0, (const uint8_t *)PW_SALT, 1, 8192) == TZ_OK &&
	      tz_pwhash_key(again, "", 0, (const uint8_t *)PW_SALT, 1, 8192) == TZ_OK &&
	      memcmp(key, again, 32) == 0, "an empty passphrase is NULL or \"\" alike");
}

static void expect_pw_refused(uint64_t ops, uint64_t mem, const char *msg)
{
	uint8_t key[TZ_PWHASH_KEY_BYTES];
	int rc;

	memset(key, 0xaa, sizeof(key));
	rc = pw(key, PW, PW_SALT, ops, mem);
	CHECK(rc == TZ_ELIMIT && is_zero(key, sizeof(key)) && strstr(tz_error_last(), msg) != NULL,
	      "passphrase key with opslimit %llu, memlimit %llu refused, key zeroed: %s",
	      (unsigned long long)ops, (unsigned long long)mem, tz_error_last());
}

static void test_pwhash_limits(void)
{
	uint8_t key[TZ_PWHASH_KEY_BYTES];

	expect_pw_refused(0, 8192, "opslimit 0 is outside 1..16");
	expect_pw_refused(17, 8192, "opslimit 17 is outside 1..16");
	expect_pw_refused(UINT64_MAX, 8192, "opslimit 18446744073709551615");
	expect_pw_refused(1, 8191, "memlimit 8191 is outside 8192..1073741824");
	expect_pw_refused(1, TZ_PWHASH_MEM_MAX + 1, "memlimit 1073741825 is outside");
	expect_pw_refused(1, UINT64_MAX, "memlimit 18446744073709551615");
	CHECK(pw(key, PW, PW_SALT, TZ_PWHASH_OPS_MAX, TZ_PWHASH_MEM_MIN) == TZ_OK,
	      "opslimit %d is accepted", TZ_PWHASH_OPS_MAX);
	CHECK(tz_pwhash_key(key, NULL, 3, (const uint8_t *)PW_SALT, 1, 8192) == TZ_EINVAL &&
	      is_zero(key, sizeof(key)), "a NULL passphrase with a length is refused");
	CHECK(TZ_PWHASH_OPS_DEFAULT == 3 && TZ_PWHASH_MEM_DEFAULT == 268435456,
	      "the defaults are libsodium's MODERATE (3 passes, 256 MiB)");
	tz_faultsim_arm(TZ_FAULT_ALLOC, 1);
	memset(key, 0xaa, sizeof(key));
	CHECK(pw(key, PW, PW_SALT, 1, 8192) == TZ_ENOMEM && is_zero(key, sizeof(key)) &&
	      strstr(tz_error_last(), "passphrase hash: cannot allocate 8 KiB") != NULL,
	      "an alloc fault gives ENOMEM, key zeroed: %s", tz_error_last());
	tz_faultsim_arm(TZ_FAULT_ALLOC, 0);
}

/* Argon2 really out of memory: a child capped at its current size plus
 * 64 MiB asks for 256 MiB.  Not under AddressSanitizer, whose shadow
 * memory does not fit under such a cap. */
static void test_pwhash_enomem(void)
{
	long pages = 0;
	FILE *f;
	pid_t pid;
	int st = 0;

#ifdef UNDER_ASAN
	printf("ok %d # SKIP RLIMIT_AS under AddressSanitizer\n", ++tz_test_count);
	return;
#endif
	if ((f = fopen("/proc/self/statm", "r")) == NULL || fscanf(f, "%ld", &pages) != 1) {
		if (f != NULL)
			fclose(f);
		printf("ok %d # SKIP no /proc/self/statm\n", ++tz_test_count);
		return;
	}
	fclose(f);
	fflush(stdout);
	if ((pid = fork()) == 0) {
		struct rlimit rl;
		uint8_t key[TZ_PWHASH_KEY_BYTES];
		int rc;

		rl.rlim_cur = rl.rlim_max = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) +
					    ((rlim_t)64 << 20);
		if (setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(2);
		rc = pw(key, PW, PW_SALT, 1, TZ_PWHASH_MEM_DEFAULT);
		_exit(rc == TZ_ENOMEM && is_zero(key, sizeof(key)) &&
		      strstr(tz_error_last(), "cannot allocate 262144 KiB") != NULL ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "argon2 out of memory (RLIMIT_AS) gives ENOMEM with a message");
}

/* ---- MACs (tz_mac, tz_mac_verify) ---- */

static void test_mac(void)
{
	/* python3: hmac.new(bytes(range(32)), MSG, hashlib.sha512).hexdigest()[:64] */
	static const char ctx[] = "tazamun enrol v1";   /* with its NUL: 17 bytes */
	uint8_t key[TZ_MAC_KEY_BYTES], pk[32], mac[TZ_MAC_BYTES], other[TZ_MAC_BYTES];
	uint8_t whole[17 + 32 + 3];
	tz_piece p[3] = { { ctx, sizeof(ctx) }, { pk, sizeof(pk) }, { "B01", 3 } };
	size_t flips = 0, refused = 0;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)i;
	memset(pk, 0xab, sizeof(pk));
	tz_mac(mac, key, p, 3);
	CHECK(hex_is(mac, sizeof(mac), "f750cf3cc7fe39a350c30f54784192d6"
				       "7f7ff95d07bfb1f893aa2ae66b7198e3"),
	      "hmac-sha-512-256 of three pieces: python's hmac agrees");
	tz_mac(other, key, NULL, 0);
	CHECK(hex_is(other, sizeof(other), "b04a70f45e9529968060f0026344d5f4"
					   "da59f1c3ce228245f6bb088d7b8aa9fc"),
	      "hmac-sha-512-256 of nothing: python's hmac agrees");
	memcpy(whole, ctx, 17);
	memcpy(whole + 17, pk, 32);
	memcpy(whole + 49, "B01", 3);
	crypto_auth_hmacsha512256(other, whole, sizeof(whole), key);
	CHECK(memcmp(mac, other, sizeof(mac)) == 0,
	      "the MAC of pieces is libsodium's one-shot MAC of their concatenation");
	tz_mac(other, key, (const tz_piece[]){ { whole, 20 }, { NULL, 0 }, { whole + 20, 32 } }, 3);
	CHECK(memcmp(mac, other, sizeof(mac)) == 0, "other cuts of the same bytes, same MAC");
	CHECK(tz_mac_verify(mac, key, p, 3), "verify accepts the MAC");
	for (size_t i = 0; i < 8 * sizeof(mac); i++, flips++) {
		mac[i / 8] ^= (uint8_t)(1 << (i % 8));
		refused += !tz_mac_verify(mac, key, p, 3);
		mac[i / 8] ^= (uint8_t)(1 << (i % 8));
	}
	CHECK(refused == flips, "every flipped MAC bit refused (%zu of %zu)", refused, flips);
	flips = refused = 0;
	for (size_t i = 0; i < 8 * sizeof(key); i++, flips++) {
		key[i / 8] ^= (uint8_t)(1 << (i % 8));
		refused += !tz_mac_verify(mac, key, p, 3);
		key[i / 8] ^= (uint8_t)(1 << (i % 8));
	}
	CHECK(refused == flips, "every flipped key bit refused (%zu of %zu)", refused, flips);
	flips = refused = 0;
	for (size_t i = 0; i < 8 * sizeof(pk); i++, flips++) {
		pk[i / 8] ^= (uint8_t)(1 << (i % 8));
		refused += !tz_mac_verify(mac, key, p, 3);
		pk[i / 8] ^= (uint8_t)(1 << (i % 8));
	}
	CHECK(refused == flips, "every flipped data bit refused (%zu of %zu)", refused, flips);
	CHECK(!tz_mac_verify(mac, key, p, 2) && !tz_mac_verify(mac, key,
	      (const tz_piece[]){ { ctx, sizeof(ctx) }, { pk, sizeof(pk) }, { "B01\0", 4 } }, 3),
	      "a missing piece or a longer one refused");
}

int main(void)
{
	tz_keypair kp;
	const char *t = getenv("TMPDIR");

	if (t == NULL || t[0] == '\0' || strlen(t) > TEST_DIR_MAX - 16)
		t = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%.*s/tz-keys-XXXXXX", TEST_DIR_MAX - 16, t);
	if (mkdtemp(tmpdir) == NULL) {
		printf("Bail out! cannot create a temporary directory\n");
		return 1;
	}
	CHECK(tz_crypto_init() == TZ_OK && tz_crypto_init() == TZ_OK, "crypto init, twice");
	CHECK(tz_keypair_generate(&kp) == TZ_OK, "generate a key pair");
	test_save_load(&kp);
	test_corrupt_files();
	test_pubkey(&kp);
	test_sign_verify(&kp);
	test_flips(&kp);
	test_hostile(&kp);
	sweep(&kp, TZ_FAULT_WRITE, TZ_EIO, "write");
	sweep(&kp, TZ_FAULT_FSYNC, TZ_EIO, "fsync");
	sweep(&kp, TZ_FAULT_RENAME, TZ_EIO, "rename");
	sweep(&kp, TZ_FAULT_ALLOC, TZ_ENOMEM, "alloc");
	test_interop(&kp);
	test_pwhash_vectors();
	test_pwhash_limits();
	test_pwhash_enomem();
	test_mac();
	tz_keypair_wipe(&kp);
	{
		char cmd[TEST_CMD_MAX];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		run(cmd);
	}
	return tz_test_done();
}

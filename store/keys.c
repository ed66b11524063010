/*
 * keys.c - Ed25519 key pairs and key files (libsodium), OpenSSH public key
 * lines, and SSH signatures in the sshsig format (tz_keys.h).
 *
 * keys.c and crypto.c are the only files that call libsodium.
 *
 * Key files (tz_keys.h has the contract):
 *   <dir>/<name>      "tazamun-ed25519-secret\n" <128 hex digits> "\n", 0600
 *   <dir>/<name>.pub  "ssh-ed25519 <base64> [comment]\n", 0600 (keys/ holds
 *                     nothing for others to read: the store's contract)
 * Each is written to a temporary ".<name>[.pub].tmp-XXXXXX" in the same
 * directory, fsynced, then hard-linked to its final name (link() fails with
 * EEXIST, which makes "never overwrite" atomic where rename() would replace
 * silently), the temporary unlinked, and the directory fsynced.  Either
 * both files end up in place or, on a reported failure, neither.
 *
 * SSH signatures (OpenSSH PROTOCOL.sshsig):
 *   signed data = "SSHSIG" string(namespace) string(reserved) string(hash)
 *                 string(H(message))
 *   blob        = "SSHSIG" uint32(1) string(public key blob) string(namespace)
 *                 string(reserved) string(hash) string(signature blob)
 *   public key blob = string("ssh-ed25519") string(32-byte key)
 *   signature blob  = string("ssh-ed25519") string(64-byte signature)
 * armored as "-----BEGIN SSH SIGNATURE-----\n", base64 in lines of 70,
 * "\n-----END SSH SIGNATURE-----".  We sign with sha512 only and accept
 * sha512 or sha256 (ssh-keygen's two choices); reserved must be empty.
 *
 * Verification is fail-closed: everything is read through tz_reader with a
 * bound per field, anything unexpected (version, key type, hash, reserved
 * contents, trailing bytes) is refused, and the signer key is only written
 * once the Ed25519 signature has verified.
 */
#include "store/tz_keys.h"
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define SECRET_HEADER "tazamun-ed25519-secret\n"
#define SECRET_HEADER_LEN (sizeof(SECRET_HEADER) - 1)
/* header, 64 bytes in hex, final newline: the whole secret file, exactly */
#define SECRET_FILE_LEN (SECRET_HEADER_LEN + 2 * TZ_SK_BYTES + 1)

#define KEY_TYPE "ssh-ed25519"
#define KEY_TYPE_LEN (sizeof(KEY_TYPE) - 1)
/* string(type) string(key): the SSH wire form of an Ed25519 public key */
#define PK_BLOB_LEN (4 + KEY_TYPE_LEN + 4 + TZ_PK_BYTES)

/* a key name becomes a file name; 128 leaves room for ".pub.tmp-XXXXXX"
 * and a leading "." under NAME_MAX (255) */
#define KEY_NAME_MAX 128
/* a .pub comment is one human label (user@host, a branch name) */
#define KEY_COMMENT_MAX 1024
/* PATH_MAX on Linux: longer paths would fail in open() anyway */
#define KEY_PATH_MAX 4096
/* "ssh-ed25519 " + 68 base64 + " " + a comment of KEY_COMMENT_MAX bytes
 * and a newline fit easily; anything longer is not one of our .pub lines */
#define PUBKEY_LINE_MAX 2048

#define SIG_MAGIC "SSHSIG"
#define SIG_MAGIC_LEN (sizeof(SIG_MAGIC) - 1)
#define SIG_VERSION 1
#define SIG_BEGIN "-----BEGIN SSH SIGNATURE-----\n"
#define SIG_BEGIN_LEN (sizeof(SIG_BEGIN) - 1)
#define SIG_END "\n-----END SSH SIGNATURE-----"
#define SIG_END_LEN (sizeof(SIG_END) - 1)
/* ssh-keygen and PROTOCOL.sshsig wrap the base64 at 70 columns */
#define SIG_LINE 70
/* namespaces are short identifiers ("git", "file"); 256 bounds the blob */
#define SIG_NS_MAX 256
/* an Ed25519 sshsig with a SIG_NS_MAX namespace is ~430 bytes, ~600
 * armored; 4096 leaves room for foreign key types to be named in the
 * error message while bounding every buffer below */
#define SIG_ARMOR_MAX 4096
/* base64 yields 3 bytes per 4 characters, so no blob exceeds this */
#define SIG_BLOB_MAX (SIG_ARMOR_MAX / 4 * 3)
/* algorithm names are a few bytes; 64 quotes any foreign one in a message */
#define SIG_NAME_MAX 64

/* ---- libsodium start-up ---- */

static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static int crypto_status = -1;

static void crypto_start(void)
{
	crypto_status = sodium_init();   /* 0 started, 1 already, -1 failed */
}

int tz_crypto_init(void)
{
	if (pthread_once(&crypto_once, crypto_start) != 0 || crypto_status < 0)
		return tz_error_set(TZ_EIO, "cannot initialise libsodium");
	return TZ_OK;
}

int tz_keypair_generate(tz_keypair *kp)
{
	int rc;

	sodium_memzero(kp, sizeof(*kp));
	if ((rc = tz_crypto_init()) < 0)
		return rc;
	if (crypto_sign_keypair(kp->pk, kp->sk) != 0) {
		sodium_memzero(kp, sizeof(*kp));
		return tz_error_set(TZ_EIO, "cannot generate an ed25519 key pair");
	}
	return TZ_OK;
}

void tz_keypair_wipe(tz_keypair *kp)
{
	if (kp != NULL)
		sodium_memzero(kp->sk, sizeof(kp->sk));
}

/* ---- small helpers ---- */

/* Copy untrusted bytes into `out` for an error message: printable ASCII
 * kept, anything else shown as '?', cut with "..." when too long. */
static const char *printable(char *out, size_t cap, const uint8_t *p, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 4 < cap; i++)
		out[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
	if (i < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static int bytes_eq(const uint8_t *p, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* A reader failure (ECORRUPT or ELIMIT from a bound) reported as corrupt
 * input under `what`, so that callers see the codes their contract names. */
static int corrupt(const char *what)
{
	return tz_error_wrap(TZ_ECORRUPT, "%s", what);
}

/* Parse an SSH public key blob: string("ssh-ed25519") string(32 bytes),
 * nothing after.  pk is zeroed on failure. */
static int parse_pk_blob(uint8_t pk[TZ_PK_BYTES], const uint8_t *blob, size_t len)
{
	tz_reader r;
	const uint8_t *type, *key;
	size_t type_len, key_len;
	char q[SIG_NAME_MAX];

	memset(pk, 0, TZ_PK_BYTES);
	tz_reader_init(&r, blob, len);
	if (tz_reader_sshstr(&r, &type, &type_len, SIG_NAME_MAX) < 0)
		return TZ_ECORRUPT;
	if (!bytes_eq(type, type_len, KEY_TYPE))
		return tz_error_set(TZ_ECORRUPT, "key type '%s' is not " KEY_TYPE,
				    printable(q, sizeof(q), type, type_len));
	/* read with a generous bound so a wrong length gets its own message */
	if (tz_reader_sshstr(&r, &key, &key_len, SIG_BLOB_MAX) < 0)
		return TZ_ECORRUPT;
	if (key_len != TZ_PK_BYTES)
		return tz_error_set(TZ_ECORRUPT, "ed25519 key of %zu bytes, not %d",
				    key_len, TZ_PK_BYTES);
	if (!tz_reader_done(&r))
		return tz_error_set(TZ_ECORRUPT, "%zu trailing bytes after the key", r.len);
	memcpy(pk, key, TZ_PK_BYTES);
	return TZ_OK;
}

/* libsodium's secret key ends with the public key; a pair whose halves
 * disagree would sign with one key and name another. */
static int check_halves(const tz_keypair *kp)
{
	if (sodium_memcmp(kp->sk + TZ_SK_BYTES - TZ_PK_BYTES, kp->pk, TZ_PK_BYTES) != 0)
		return tz_error_set(TZ_EINVAL, "key pair halves do not match");
	return TZ_OK;
}

/* ---- OpenSSH public key lines ---- */

/* The SSH wire form of an Ed25519 public key: string(type) string(pk). */
static void pk_blob(uint8_t out[PK_BLOB_LEN], const uint8_t pk[TZ_PK_BYTES])
{
	out[0] = out[1] = out[2] = 0;
	out[3] = (uint8_t)KEY_TYPE_LEN;
	memcpy(out + 4, KEY_TYPE, KEY_TYPE_LEN);
	out[4 + KEY_TYPE_LEN] = out[5 + KEY_TYPE_LEN] = out[6 + KEY_TYPE_LEN] = 0;
	out[7 + KEY_TYPE_LEN] = TZ_PK_BYTES;
	memcpy(out + 8 + KEY_TYPE_LEN, pk, TZ_PK_BYTES);
}

void tz_pubkey_openssh(tz_buf *out, const uint8_t pk[TZ_PK_BYTES])
{
	uint8_t blob[PK_BLOB_LEN];
	char b64[sodium_base64_ENCODED_LEN(PK_BLOB_LEN, sodium_base64_VARIANT_ORIGINAL)];

	pk_blob(blob, pk);
	sodium_bin2base64(b64, sizeof(b64), blob, sizeof(blob), sodium_base64_VARIANT_ORIGINAL);
	tz_buf_puts(out, KEY_TYPE " ");
	tz_buf_puts(out, b64);
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

int tz_pubkey_parse(uint8_t pk[TZ_PK_BYTES], const char *line, size_t len)
{
	/* room for one byte more than an Ed25519 blob, to notice a longer one */
	uint8_t blob[PK_BLOB_LEN + 1];
	const char *tok, *end;
	size_t i, tok_len, blob_len;
	char q[SIG_NAME_MAX];

	memset(pk, 0, TZ_PK_BYTES);
	if (len > PUBKEY_LINE_MAX)
		return tz_error_set(TZ_ECORRUPT, "public key: line of %zu bytes is too long", len);
	/* a line as read from a .pub file: one final newline is fine */
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (memchr(line, '\n', len) != NULL || memchr(line, '\0', len) != NULL)
		return tz_error_set(TZ_ECORRUPT, "public key: not a single line of text");
	for (i = 0; i < len && !is_blank(line[i]); i++)
		;
	if (!bytes_eq((const uint8_t *)line, i, KEY_TYPE))
		return tz_error_set(TZ_ECORRUPT, "public key: key type '%s' is not " KEY_TYPE,
				    printable(q, sizeof(q), (const uint8_t *)line, i));
	while (i < len && is_blank(line[i]))
		i++;
	tok = line + i;
	while (i < len && !is_blank(line[i]))
		i++;
	tok_len = (size_t)(line + i - tok);
	if (tok_len == 0 ||
	    sodium_base642bin(blob, sizeof(blob), tok, tok_len, NULL, &blob_len, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != tok + tok_len)
		return tz_error_set(TZ_ECORRUPT, "public key: bad base64 key data");
	if (parse_pk_blob(pk, blob, blob_len) < 0)
		return corrupt("public key");
	return TZ_OK;
}

/* ---- key files ---- */

static int check_name(const char *dir, const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (dir == NULL || dir[0] == '\0')
		return tz_error_set(TZ_EINVAL, "key directory not given");
	if (n == 0 || n > KEY_NAME_MAX)
		return tz_error_set(TZ_EINVAL, "key name must be 1 to %d bytes", KEY_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		if (name[i] == '/' || (unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return tz_error_set(TZ_EINVAL, "key name contains '/' or a control character");
	/* a leading '.' is kept for temporaries (and rules out "." and "..") */
	if (name[0] == '.')
		return tz_error_set(TZ_EINVAL, "key name '%s' starts with '.'", name);
	return TZ_OK;
}

static int check_comment(const char *comment)
{
	size_t n = comment ? strlen(comment) : 0;

	if (n > KEY_COMMENT_MAX)
		return tz_error_set(TZ_EINVAL, "key comment longer than %d bytes", KEY_COMMENT_MAX);
	if (n != 0 && strpbrk(comment, "\r\n") != NULL)
		return tz_error_set(TZ_EINVAL, "key comment contains a newline");
	return TZ_OK;
}

/* "<dir>/<prefix><name><suffix>" into b (cleared first). */
static int key_path(tz_buf *b, const char *dir, const char *prefix, const char *name,
		    const char *suffix)
{
	tz_buf_clear(b);
	tz_buf_printf(b, "%s/%s%s%s", dir, prefix, name, suffix);
	return tz_buf_error(b);
}

int tz_fs__write_all(int fd, const uint8_t *p, size_t n, const char *path)
{
	while (n > 0) {
		ssize_t w;

		if (tz_faultsim(TZ_FAULT_WRITE)) {
			errno = EIO;
			w = -1;
		} else {
			w = write(fd, p, n);
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return tz_error_set(TZ_EIO, "cannot write '%s': %s", path,
					    w < 0 ? strerror(errno) : "no progress");
		p += w;
		n -= (size_t)w;
	}
	return TZ_OK;
}

int tz_fs__fsync(int fd, const char *path)
{
	if (tz_faultsim(TZ_FAULT_FSYNC)) {
		errno = EIO;
		return tz_error_set(TZ_EIO, "cannot fsync '%s': %s", path, strerror(errno));
	}
	if (fsync(fd) != 0)
		return tz_error_set(TZ_EIO, "cannot fsync '%s': %s", path, strerror(errno));
	return TZ_OK;
}

int tz_fs__fsync_dir(const char *dir)
{
	int fd, rc;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return tz_error_set(TZ_EIO, "cannot open directory '%s': %s", dir, strerror(errno));
	rc = tz_fs__fsync(fd, dir);
	close(fd);
	return rc;
}

/*
 * One file being saved: `tmp` is the temporary's path once created,
 * `path` the final name, `placed` set once the final name exists.
 */
typedef struct {
	tz_buf path;
	tz_buf tmp;
	int tmp_made;
	int placed;
} keyfile;

/* Create kf->tmp next to kf->path with `mode`, write data, fsync, close. */
static int keyfile_write(keyfile *kf, const char *dir, const char *name,
			 const char *suffix, const uint8_t *data, size_t len, mode_t mode)
{
	int fd, rc;

	if ((rc = key_path(&kf->tmp, dir, ".", name, suffix)) < 0)
		return rc;
	tz_buf_puts(&kf->tmp, ".tmp-XXXXXX");
	if ((rc = tz_buf_error(&kf->tmp)) < 0)
		return rc;
	if ((fd = mkstemp((char *)kf->tmp.data)) < 0)
		return tz_error_set(TZ_EIO, "cannot create '%s': %s",
				    (char *)kf->tmp.data, strerror(errno));
	kf->tmp_made = 1;
	if (fchmod(fd, mode) != 0)
		rc = tz_error_set(TZ_EIO, "cannot chmod '%s': %s",
				  (char *)kf->tmp.data, strerror(errno));
	else if ((rc = tz_fs__write_all(fd, data, len, (char *)kf->tmp.data)) == TZ_OK)
		rc = tz_fs__fsync(fd, (char *)kf->tmp.data);
	if (close(fd) != 0 && rc == TZ_OK)
		rc = tz_error_set(TZ_EIO, "cannot close '%s': %s",
				  (char *)kf->tmp.data, strerror(errno));
	return rc;
}

/* Give the temporary its final name without ever replacing a file. */
static int keyfile_place(keyfile *kf)
{
	const char *path = (const char *)kf->path.data;

	if (tz_faultsim(TZ_FAULT_RENAME)) {
		errno = EIO;
		return tz_error_set(TZ_EIO, "cannot rename to '%s': %s", path, strerror(errno));
	}
	if (link((const char *)kf->tmp.data, path) != 0) {
		if (errno == EEXIST)
			return tz_error_set(TZ_EEXISTS, "key file '%s' already exists", path);
		return tz_error_set(TZ_EIO, "cannot rename to '%s': %s", path, strerror(errno));
	}
	kf->placed = 1;
	/* the key is in place; a temporary left behind has the same mode and
	 * contents in the same directory, so it is untidy, not a leak */
	if (unlink((const char *)kf->tmp.data) == 0)
		kf->tmp_made = 0;
	return TZ_OK;
}

/* Undo what a failed save left: temporaries and, unless ok, final names. */
static void keyfile_release(keyfile *kf, int ok)
{
	if (kf->tmp_made)
		unlink((const char *)kf->tmp.data);
	if (kf->placed && !ok)
		unlink((const char *)kf->path.data);
	tz_buf_release(&kf->tmp);
	tz_buf_release(&kf->path);
}

static int refuse_existing(const keyfile *kf)
{
	struct stat st;

	if (lstat((const char *)kf->path.data, &st) == 0)
		return tz_error_set(TZ_EEXISTS, "key file '%s' already exists",
				    (const char *)kf->path.data);
	if (errno != ENOENT)
		return tz_error_set(TZ_EIO, "cannot stat '%s': %s",
				    (const char *)kf->path.data, strerror(errno));
	return TZ_OK;
}

/* The two files' contents; `secret` (SECRET_FILE_LEN + 1 bytes) holds the
 * secret key in hex and must be wiped by the caller. */
static int keyfile_texts(char *secret, tz_buf *pub, const tz_keypair *kp, const char *comment)
{
	memcpy(secret, SECRET_HEADER, SECRET_HEADER_LEN);
	sodium_bin2hex(secret + SECRET_HEADER_LEN, 2 * TZ_SK_BYTES + 1, kp->sk, TZ_SK_BYTES);
	secret[SECRET_FILE_LEN - 1] = '\n';
	secret[SECRET_FILE_LEN] = '\0';
	tz_pubkey_openssh(pub, kp->pk);
	if (comment != NULL && comment[0] != '\0')
		tz_buf_printf(pub, " %s", comment);
	tz_buf_putc(pub, '\n');
	return tz_buf_error(pub);
}

int tz_keypair_save(const tz_keypair *kp, const char *dir, const char *name,
		    const char *comment)
{
	keyfile sec = { TZ_BUF_INIT, TZ_BUF_INIT, 0, 0 };
	keyfile pub = { TZ_BUF_INIT, TZ_BUF_INIT, 0, 0 };
	tz_buf pubtext = TZ_BUF_INIT;
	char sectext[SECRET_FILE_LEN + 1];
	int rc;

	sec.path.max = sec.tmp.max = pub.path.max = pub.tmp.max = KEY_PATH_MAX;
	memset(sectext, 0, sizeof(sectext));
	if ((rc = check_name(dir, name)) < 0 || (rc = check_comment(comment)) < 0)
		goto done;
	if ((rc = check_halves(kp)) < 0 ||
	    (rc = key_path(&sec.path, dir, "", name, "")) < 0 ||
	    (rc = key_path(&pub.path, dir, "", name, ".pub")) < 0 ||
	    (rc = refuse_existing(&sec)) < 0 || (rc = refuse_existing(&pub)) < 0 ||
	    (rc = keyfile_texts(sectext, &pubtext, kp, comment)) < 0)
		goto done;
	if ((rc = keyfile_write(&sec, dir, name, "", (const uint8_t *)sectext,
				SECRET_FILE_LEN, 0600)) < 0 ||
	    (rc = keyfile_write(&pub, dir, name, ".pub", pubtext.data, pubtext.len, 0600)) < 0 ||
	    (rc = keyfile_place(&sec)) < 0 || (rc = keyfile_place(&pub)) < 0 ||
	    (rc = tz_fs__fsync_dir(dir)) < 0)
		goto done;
	rc = TZ_OK;
done:
	sodium_memzero(sectext, sizeof(sectext));
	keyfile_release(&pub, rc == TZ_OK);
	keyfile_release(&sec, rc == TZ_OK);
	tz_buf_release(&pubtext);
	return rc;
}

/* Read a whole small file into buf (cap bytes); TZ_ENOTFOUND when missing,
 * TZ_ECORRUPT when not a regular file or larger than cap. */
static int read_small(uint8_t *buf, size_t cap, size_t *len_out, const char *path)
{
	struct stat st;
	size_t len = 0;
	uint8_t extra;
	ssize_t n;
	int fd, rc = TZ_OK;

	*len_out = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return tz_error_set(errno == ENOENT ? TZ_ENOTFOUND : TZ_EIO,
				    "cannot open key file '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = tz_error_set(TZ_ECORRUPT, "key file '%s' is not a regular file", path);
		goto done;
	}
	for (;;) {
		/* once buf is full, one more byte tells a larger file apart */
		n = len < cap ? read(fd, buf + len, cap - len) : read(fd, &extra, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = tz_error_set(TZ_EIO, "cannot read '%s': %s", path, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		if (len == cap) {
			rc = tz_error_set(TZ_ECORRUPT, "key file '%s' is too large", path);
			goto done;
		}
		len += (size_t)n;
	}
	*len_out = len;
done:
	close(fd);
	return rc;
}

/* Decode and check the secret file's bytes into kp->sk and kp->pk. */
static int parse_secret(tz_keypair *kp, const uint8_t *text, size_t len, const char *path)
{
	uint8_t pk2[TZ_PK_BYTES], sk2[TZ_SK_BYTES];
	const char *hex = (const char *)text + SECRET_HEADER_LEN;
	const char *end;
	size_t bin_len;
	int rc = TZ_OK;

	if (len != SECRET_FILE_LEN || memcmp(text, SECRET_HEADER, SECRET_HEADER_LEN) != 0 ||
	    text[len - 1] != '\n' ||
	    sodium_hex2bin(kp->sk, TZ_SK_BYTES, hex, 2 * TZ_SK_BYTES, NULL, &bin_len, &end) != 0 ||
	    bin_len != TZ_SK_BYTES || end != hex + 2 * TZ_SK_BYTES)
		return tz_error_set(TZ_ECORRUPT, "key file '%s' is not a tazamun ed25519 secret key",
				    path);
	/* the stored public half must be the one the seed derives */
	if (crypto_sign_seed_keypair(pk2, sk2, kp->sk) != 0 ||
	    sodium_memcmp(sk2, kp->sk, TZ_SK_BYTES) != 0)
		rc = tz_error_set(TZ_ECORRUPT, "key file '%s': the public half does not match "
				  "the secret half", path);
	else
		memcpy(kp->pk, pk2, TZ_PK_BYTES);
	sodium_memzero(sk2, sizeof(sk2));
	return rc;
}

int tz_keypair_load(tz_keypair *kp, const char *dir, const char *name)
{
	tz_buf path = TZ_BUF_INIT;
	uint8_t text[SECRET_FILE_LEN];
	uint8_t line[PUBKEY_LINE_MAX];
	uint8_t pk[TZ_PK_BYTES];
	size_t len;
	int rc;

	sodium_memzero(kp, sizeof(*kp));
	path.max = KEY_PATH_MAX;
	if ((rc = check_name(dir, name)) < 0 || (rc = tz_crypto_init()) < 0 ||
	    (rc = key_path(&path, dir, "", name, "")) < 0 ||
	    (rc = read_small(text, sizeof(text), &len, (char *)path.data)) < 0 ||
	    (rc = parse_secret(kp, text, len, (char *)path.data)) < 0)
		goto done;
	if ((rc = key_path(&path, dir, "", name, ".pub")) < 0 ||
	    (rc = read_small(line, sizeof(line), &len, (char *)path.data)) < 0)
		goto done;
	if ((rc = tz_pubkey_parse(pk, (const char *)line, len)) < 0) {
		rc = tz_error_wrap(rc, "key file '%s'", (char *)path.data);
		goto done;
	}
	if (sodium_memcmp(pk, kp->pk, TZ_PK_BYTES) != 0) {
		rc = tz_error_set(TZ_ECORRUPT, "key file '%s' does not match its secret key",
				  (char *)path.data);
		goto done;
	}
	rc = TZ_OK;
done:
	sodium_memzero(text, sizeof(text));
	if (rc != TZ_OK)
		sodium_memzero(kp, sizeof(*kp));
	tz_buf_release(&path);
	return rc;
}

/* ---- SSH signatures ---- */

/* The bytes Ed25519 signs: "SSHSIG" string(ns) string("") string(hash)
 * string(digest). */
static void sig_signed_data(tz_buf *b, const char *ns, size_t ns_len, const char *hash,
			    const uint8_t *digest, size_t digest_len)
{
	tz_buf_put(b, SIG_MAGIC, SIG_MAGIC_LEN);
	tz_buf_sshstr(b, ns, ns_len);
	tz_buf_sshstr(b, "", 0);
	tz_buf_sshstr(b, hash, strlen(hash));
	tz_buf_sshstr(b, digest, digest_len);
}

static int check_ns(const char *ns, size_t *len_out)
{
	size_t n = ns ? strlen(ns) : 0;

	*len_out = n;
	if (n == 0 || n > SIG_NS_MAX)
		return tz_error_set(TZ_EINVAL, "ssh signature: namespace must be 1 to %d bytes",
				    SIG_NS_MAX);
	return TZ_OK;
}

/* Append the armored form of blob to out. */
static int sig_armor(tz_buf *out, const uint8_t *blob, size_t len)
{
	char b64[sodium_base64_ENCODED_LEN(SIG_BLOB_MAX, sodium_base64_VARIANT_ORIGINAL)];
	size_t n, off;

	if (len > SIG_BLOB_MAX)
		return tz_error_set(TZ_ELIMIT, "ssh signature: blob of %zu bytes too long", len);
	sodium_bin2base64(b64, sizeof(b64), blob, len, sodium_base64_VARIANT_ORIGINAL);
	n = strlen(b64);
	tz_buf_puts(out, SIG_BEGIN);
	for (off = 0; off < n; off += SIG_LINE) {
		if (off > 0)
			tz_buf_putc(out, '\n');
		tz_buf_put(out, b64 + off, n - off < SIG_LINE ? n - off : SIG_LINE);
	}
	tz_buf_puts(out, SIG_END);
	return tz_buf_error(out);
}

int tz_sshsig_sign(tz_buf *out, const tz_keypair *kp, const char *ns,
		   const void *msg, size_t len)
{
	tz_buf data = TZ_BUF_INIT, blob = TZ_BUF_INIT, sigblob = TZ_BUF_INIT;
	uint8_t digest[crypto_hash_sha512_BYTES];
	uint8_t sig[crypto_sign_BYTES];
	uint8_t pkblob[PK_BLOB_LEN];
	size_t ns_len;
	int rc;

	if ((rc = check_ns(ns, &ns_len)) < 0 || (rc = check_halves(kp)) < 0 ||
	    (rc = tz_crypto_init()) < 0)
		goto done;
	crypto_hash_sha512(digest, len ? msg : (const void *)"", len);
	sig_signed_data(&data, ns, ns_len, "sha512", digest, sizeof(digest));
	if ((rc = tz_buf_error(&data)) < 0)
		goto done;
	if (crypto_sign_detached(sig, NULL, data.data, data.len, kp->sk) != 0) {
		rc = tz_error_set(TZ_EIO, "ssh signature: ed25519 signing failed");
		goto done;
	}
	pk_blob(pkblob, kp->pk);
	tz_buf_sshstr(&sigblob, KEY_TYPE, KEY_TYPE_LEN);
	tz_buf_sshstr(&sigblob, sig, sizeof(sig));
	tz_buf_put(&blob, SIG_MAGIC, SIG_MAGIC_LEN);
	tz_buf_u32be(&blob, SIG_VERSION);
	tz_buf_sshstr(&blob, pkblob, sizeof(pkblob));
	tz_buf_sshstr(&blob, ns, ns_len);
	tz_buf_sshstr(&blob, "", 0);
	tz_buf_sshstr(&blob, "sha512", 6);
	tz_buf_sshstr(&blob, sigblob.data, sigblob.len);
	if ((rc = tz_buf_error(&sigblob)) < 0 || (rc = tz_buf_error(&blob)) < 0)
		goto done;
	rc = sig_armor(out, blob.data, blob.len);
done:
	tz_buf_release(&data);
	tz_buf_release(&blob);
	tz_buf_release(&sigblob);
	return rc;
}

/* Strip the armor and decode the base64 body into blob (SIG_BLOB_MAX). */
static int sig_dearmor(uint8_t *blob, size_t *blob_len, const char *a, size_t n)
{
	const char *body, *end;
	size_t body_len;

	*blob_len = 0;
	if (n > SIG_ARMOR_MAX)
		return tz_error_set(TZ_ECORRUPT, "ssh signature: %zu bytes is too long", n);
	if (n < SIG_BEGIN_LEN || memcmp(a, SIG_BEGIN, SIG_BEGIN_LEN) != 0)
		return tz_error_set(TZ_ECORRUPT, "ssh signature: missing BEGIN SSH SIGNATURE line");
	/* libsodium's "ignore" set would also skip NUL bytes: refuse them here */
	if (memchr(a, '\0', n) != NULL)
		return tz_error_set(TZ_ECORRUPT, "ssh signature: contains a NUL byte");
	/* one final newline after the END line, as in a .sig file */
	if (a[n - 1] == '\n')
		n--;
	if (n < SIG_BEGIN_LEN + SIG_END_LEN || memcmp(a + n - SIG_END_LEN, SIG_END, SIG_END_LEN) != 0)
		return tz_error_set(TZ_ECORRUPT, "ssh signature: missing END SSH SIGNATURE line "
				    "or bytes after it");
	body = a + SIG_BEGIN_LEN;
	body_len = n - SIG_BEGIN_LEN - SIG_END_LEN;
	if (body_len == 0 ||
	    sodium_base642bin(blob, SIG_BLOB_MAX, body, body_len, "\n", blob_len, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != body + body_len) {
		*blob_len = 0;
		return tz_error_set(TZ_ECORRUPT, "ssh signature: bad base64");
	}
	return TZ_OK;
}

/* What sig_parse found; pointers into the blob. */
typedef struct {
	uint8_t pk[TZ_PK_BYTES];
	int sha256;                 /* hash: 1 sha256, 0 sha512 */
	const uint8_t *sig;         /* crypto_sign_BYTES */
} sig_parts;

/* string("ssh-ed25519") string(64 bytes), nothing after. */
static int parse_sig_blob(sig_parts *sp, const uint8_t *blob, size_t len)
{
	tz_reader r;
	const uint8_t *type, *sig;
	size_t type_len, sig_len;
	char q[SIG_NAME_MAX];

	tz_reader_init(&r, blob, len);
	if (tz_reader_sshstr(&r, &type, &type_len, SIG_NAME_MAX) < 0)
		return corrupt("ssh signature: signature");
	if (!bytes_eq(type, type_len, KEY_TYPE))
		return tz_error_set(TZ_ECORRUPT, "ssh signature: signature type '%s' is not "
				    KEY_TYPE, printable(q, sizeof(q), type, type_len));
	if (tz_reader_sshstr(&r, &sig, &sig_len, SIG_BLOB_MAX) < 0)
		return corrupt("ssh signature: signature");
	if (sig_len != crypto_sign_BYTES)
		return tz_error_set(TZ_ECORRUPT, "ssh signature: ed25519 signature of %zu bytes",
				    sig_len);
	if (!tz_reader_done(&r))
		return tz_error_set(TZ_ECORRUPT, "ssh signature: trailing bytes after the signature");
	sp->sig = sig;
	return TZ_OK;
}

/* Parse the decoded blob: magic, version, key, namespace (must be ns),
 * reserved (must be empty), hash (allowlist), signature, no trailing bytes. */
static int sig_parse(sig_parts *sp, const uint8_t *blob, size_t len, const char *ns, size_t ns_len)
{
	tz_reader r;
	const uint8_t *magic, *pkb, *sns, *res, *hash, *sigb;
	size_t pkb_len, sns_len, res_len, hash_len, sigb_len;
	uint32_t version;
	char q[SIG_NAME_MAX];

	tz_reader_init(&r, blob, len);
	if (tz_reader_bytes(&r, &magic, SIG_MAGIC_LEN) < 0 || tz_reader_u32be(&r, &version) < 0)
		return corrupt("ssh signature");
	if (memcmp(magic, SIG_MAGIC, SIG_MAGIC_LEN) != 0)
		return tz_error_set(TZ_ECORRUPT, "ssh signature: bad magic");
	if (version != SIG_VERSION)
		return tz_error_set(TZ_ECORRUPT, "ssh signature: unsupported version %u", version);
	if (tz_reader_sshstr(&r, &pkb, &pkb_len, SIG_BLOB_MAX) < 0)
		return corrupt("ssh signature");
	if (parse_pk_blob(sp->pk, pkb, pkb_len) < 0)
		return corrupt("ssh signature");
	if (tz_reader_sshstr(&r, &sns, &sns_len, SIG_BLOB_MAX) < 0)
		return corrupt("ssh signature");
	if (!(sns_len == ns_len && memcmp(sns, ns, ns_len) == 0))
		return tz_error_set(TZ_EVERIFY, "ssh signature: namespace '%s' is not '%s'",
				    printable(q, sizeof(q), sns, sns_len), ns);
	if (tz_reader_sshstr(&r, &res, &res_len, SIG_BLOB_MAX) < 0 ||
	    tz_reader_sshstr(&r, &hash, &hash_len, SIG_NAME_MAX) < 0 ||
	    tz_reader_sshstr(&r, &sigb, &sigb_len, SIG_BLOB_MAX) < 0)
		return corrupt("ssh signature");
	if (res_len != 0)
		return tz_error_set(TZ_ECORRUPT, "ssh signature: reserved field is not empty");
	if (bytes_eq(hash, hash_len, "sha256"))
		sp->sha256 = 1;
	else if (!bytes_eq(hash, hash_len, "sha512"))
		return tz_error_set(TZ_ECORRUPT, "ssh signature: hash algorithm '%s' is not allowed",
				    printable(q, sizeof(q), hash, hash_len));
	if (!tz_reader_done(&r))
		return tz_error_set(TZ_ECORRUPT, "ssh signature: %zu bytes after the signature", r.len);
	return parse_sig_blob(sp, sigb, sigb_len);
}

int tz_sshsig_verify(uint8_t signer_pk[TZ_PK_BYTES], const char *armored, size_t armored_len,
		     const char *ns, const void *msg, size_t len)
{
	uint8_t blob[SIG_BLOB_MAX];
	uint8_t digest[crypto_hash_sha512_BYTES];
	tz_buf data = TZ_BUF_INIT;
	sig_parts sp;
	size_t blob_len, ns_len;
	const void *m = len ? msg : (const void *)"";
	int rc;

	memset(signer_pk, 0, TZ_PK_BYTES);
	memset(&sp, 0, sizeof(sp));
	if ((rc = check_ns(ns, &ns_len)) < 0 || (rc = tz_crypto_init()) < 0 ||
	    (rc = sig_dearmor(blob, &blob_len, armored, armored_len)) < 0 ||
	    (rc = sig_parse(&sp, blob, blob_len, ns, ns_len)) < 0)
		goto done;
	if (sp.sha256)
		crypto_hash_sha256(digest, m, len);
	else
		crypto_hash_sha512(digest, m, len);
	sig_signed_data(&data, ns, ns_len, sp.sha256 ? "sha256" : "sha512", digest,
			sp.sha256 ? crypto_hash_sha256_BYTES : crypto_hash_sha512_BYTES);
	if ((rc = tz_buf_error(&data)) < 0)
		goto done;
	if (crypto_sign_verify_detached(sp.sig, data.data, data.len, sp.pk) != 0) {
		rc = tz_error_set(TZ_EVERIFY, "ssh signature: signature does not verify");
		goto done;
	}
	memcpy(signer_pk, sp.pk, TZ_PK_BYTES);
	rc = TZ_OK;
done:
	tz_buf_release(&data);
	return rc;
}

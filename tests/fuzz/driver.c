/*
 * driver.c - replays fuzz corpora without libFuzzer, for `make test`.
 *
 * Linked with one fuzz target (tests/fuzz/fuzz_NAME.c), which defines
 *
 *     int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
 *     int tz_fuzz_reject(const uint8_t *data, size_t size);
 *
 * the first as for libFuzzer (it aborts when an invariant breaks), the
 * second returning the TZ_E* code of parsing the input (TZ_OK when it
 * parses), with the message in tz_error_last().
 *
 * Usage:  fuzz_NAME [PATH...] [--reject DIR]...
 *
 *   PATH          a corpus directory (every file in it, sorted by name) or
 *                 one file (to replay a crash); each is run through
 *                 LLVMFuzzerTestOneInput: "ok N - replay PATH";
 *   --reject DIR  inputs that must fail: each file X (not ending in .err)
 *                 has a sidecar X.err whose first line is the expected
 *                 error name (ECORRUPT, ELIMIT, ...) and whose optional
 *                 second line is a substring of the expected message;
 *                 X is replayed, then tz_fuzz_reject(X) must return that
 *                 code with that message: "ok N - reject X: ECORRUPT".
 *
 * With no argument at all, the directories are tests/fuzz/corpus/NAME and
 * tests/fuzz/reject/NAME (under $TZ_SRC when set), NAME being the program
 * name without "fuzz_".  Files whose names start with '.' are skipped.
 * Prints TAP; exits 1 if any test failed, 2 on a usage error.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/tz_base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int tz_fuzz_reject(const uint8_t *data, size_t size);

/* Corpus inputs are small (libFuzzer's default -max_len is 4096); a file
 * past 64 MiB is a mistake, not an input. */
#define INPUT_MAX ((size_t)64 << 20)
/* A path or a sidecar line longer than this is a mistake too. */
#define PATH_LEN 4096

static int tests, failures;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void tap(int ok, const char *fmt, ...)
{
	va_list ap;

	tests++;
	failures += !ok;
	printf("%s %d - ", ok ? "ok" : "not ok", tests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* Read a whole file into a new buffer of exactly its size, as libFuzzer
 * does, so that AddressSanitizer sees any read past the end (free with
 * free); 0 or -1 with errno. */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	struct stat st;
	size_t n;

	*out = NULL;
	*len = 0;
	if (f == NULL)
		return -1;
	if (fstat(fileno(f), &st) < 0) {
		fclose(f);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > INPUT_MAX) {
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		fclose(f);
		return -1;
	}
	n = (size_t)st.st_size;
	if ((buf = malloc(n ? n : 1)) == NULL || fread(buf, 1, n, f) != n || fgetc(f) != EOF) {
		errno = buf ? EIO : ENOMEM;
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir, sorted, without hidden files; NULL on error (errno).
 * *n_out is their count.  Free with free_names. */
static char **list_dir(const char *dir, size_t *n_out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL, **grown;
	size_t n = 0, cap = 0;

	*n_out = 0;
	if (d == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((grown = realloc(names, cap * sizeof(*names))) == NULL)
				break;
			names = grown;
		}
		if ((names[n] = strdup(e->d_name)) == NULL)
			break;
		n++;
	}
	closedir(d);
	if (e != NULL) {   /* out of memory above */
		while (n > 0)
			free(names[--n]);
		free(names);
		errno = ENOMEM;
		return NULL;
	}
	if (names == NULL && (names = malloc(sizeof(*names))) == NULL)
		return NULL;
	qsort(names, n, sizeof(*names), by_name);
	*n_out = n;
	return names;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static unsigned long execs;

static void exec_one(const uint8_t *data, size_t len)
{
	execs++;
	LLVMFuzzerTestOneInput(data, len);
}

/*
 * TZ_FUZZ_MUTATE=N (default 0): after each corpus input, N mutants of it
 * (a truncation, a flipped bit, a byte set to 0x00/0xff/a random value, a
 * byte deleted or inserted), deterministic from the input's length and
 * the mutant's number, so that `make test` exercises the targets a little
 * beyond their seeds without libFuzzer (`make fuzz` is the real search).
 */
static void mutate(const uint8_t *data, size_t len)
{
	const char *v = getenv("TZ_FUZZ_MUTATE");
	long n = v ? strtol(v, NULL, 10) : 0;
	uint8_t *m = malloc(len + 1);
	uint64_t x = len * 0x9e3779b97f4a7c15ULL + 1;

	for (long i = 0; m != NULL && len > 0 && i < n; i++) {
		size_t at, mlen = len;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		at = (size_t)(x >> 8) % len;
		memcpy(m, data, len);
		switch (x % 6) {
		case 0: mlen = at; break;
		case 1: m[at] ^= (uint8_t)(1u << ((x >> 3) % 8)); break;
		case 2: m[at] = (x >> 5) & 1 ? 0xff : 0x00; break;
		case 3: m[at] = (uint8_t)(x >> 40); break;
		case 4: memmove(m + at, m + at + 1, len - at - 1), mlen = len - 1; break;
		default: memmove(m + at + 1, m + at, len - at), m[at] = (uint8_t)(x >> 32), mlen = len + 1; break;
		}
		exec_one(m, mlen);
	}
	free(m);
}

/* Run one file (and its mutants) through the target; an abort ends the program. */
static void replay(const char *path)
{
	uint8_t *data;
	size_t len;

	if (read_file(path, &data, &len) < 0) {
		tap(0, "replay %s: cannot read: %s", path, strerror(errno));
		return;
	}
	exec_one(data, len);
	mutate(data, len);
	free(data);
	tap(1, "replay %s", path);
}

static int is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void replay_path(const char *path)
{
	char file[PATH_LEN];
	char **names;
	size_t n;

	if (!is_dir(path)) {
		replay(path);
		return;
	}
	if ((names = list_dir(path, &n)) == NULL) {
		tap(0, "cannot read directory %s: %s", path, strerror(errno));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if ((size_t)snprintf(file, sizeof(file), "%s/%s", path, names[i]) >= sizeof(file))
			tap(0, "path too long: %s/%s", path, names[i]);
		else
			replay(file);
	}
	free_names(names, n);
}

/* Parse a sidecar: line 1 into code (the error name), line 2 into msg
 * ("" when absent); trailing CR, LF and blanks removed.  0 or -1. */
static int read_sidecar(const char *path, char code[64], char msg[PATH_LEN])
{
	uint8_t *data;
	size_t len, i = 0, k;
	char *dst[2] = { code, msg };
	size_t cap[2] = { 64, PATH_LEN };

	code[0] = msg[0] = '\0';
	if (read_file(path, &data, &len) < 0)
		return -1;
	for (int line = 0; line < 2 && i < len; line++) {
		for (k = 0; i < len && data[i] != '\n'; i++)
			if (k + 1 < cap[line])
				dst[line][k++] = (char)data[i];
		i++;
		while (k > 0 && (dst[line][k - 1] == '\r' || dst[line][k - 1] == ' ' ||
				 dst[line][k - 1] == '\t'))
			k--;
		dst[line][k] = '\0';
	}
	free(data);
	return code[0] ? 0 : -1;
}

static void reject_one(const char *path)
{
	char sidecar[PATH_LEN], code[64], msg[PATH_LEN];
	uint8_t *data;
	size_t len;
	int rc;

	if ((size_t)snprintf(sidecar, sizeof(sidecar), "%s.err", path) >= sizeof(sidecar) ||
	    read_sidecar(sidecar, code, msg) < 0) {
		tap(0, "reject %s: no readable %s.err naming the expected error", path, path);
		return;
	}
	if (read_file(path, &data, &len) < 0) {
		tap(0, "reject %s: cannot read: %s", path, strerror(errno));
		return;
	}
	exec_one(data, len);
	rc = tz_fuzz_reject(data, len);
	free(data);
	if (rc != TZ_OK && strcmp(tz_error_name(rc), code) == 0 &&
	    strstr(tz_error_last(), msg) != NULL) {
		tap(1, "reject %s: %s", path, code);
		return;
	}
	tap(0, "reject %s: want %s '%s', got %s '%s'", path, code, msg,
	    rc == TZ_OK ? "OK" : tz_error_name(rc), rc == TZ_OK ? "" : tz_error_last());
}

static void reject_dir(const char *dir)
{
	char file[PATH_LEN], base[PATH_LEN];
	char **names;
	size_t n;
	FILE *f;

	if ((names = list_dir(dir, &n)) == NULL) {
		tap(0, "cannot read directory %s: %s", dir, strerror(errno));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if ((size_t)snprintf(file, sizeof(file), "%s/%s", dir, names[i]) >= sizeof(file)) {
			tap(0, "path too long: %s/%s", dir, names[i]);
			continue;
		}
		if (!has_suffix(names[i], ".err")) {
			reject_one(file);
			continue;
		}
		/* a sidecar without its input is a test that silently went away */
		snprintf(base, sizeof(base), "%.*s", (int)(strlen(file) - 4), file);
		if ((f = fopen(base, "rb")) == NULL)
			tap(0, "reject %s: sidecar without input %s", file, base);
		else
			fclose(f);
	}
	free_names(names, n);
}

/* No arguments: tests/fuzz/{corpus,reject}/NAME for fuzz_NAME. */
static void default_dirs(const char *argv0)
{
	const char *base = strrchr(argv0, '/'), *src = getenv("TZ_SRC");
	char dir[PATH_LEN];

	base = base ? base + 1 : argv0;
	if (strncmp(base, "fuzz_", 5) == 0)
		base += 5;
	if (src == NULL || src[0] == '\0')
		src = ".";
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/%s", src, base);
	replay_path(dir);
	snprintf(dir, sizeof(dir), "%s/tests/fuzz/reject/%s", src, base);
	if (is_dir(dir))
		reject_dir(dir);
}

int main(int argc, char **argv)
{
	if (argc == 1)
		default_dirs(argv[0]);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reject") == 0 && i + 1 < argc) {
			reject_dir(argv[++i]);
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "usage: %s [PATH...] [--reject DIR]...\n", argv[0]);
			return 2;
		} else {
			replay_path(argv[i]);
		}
	}
	printf("1..%d\n", tests);
	printf("# tally: fuzz_execs=%lu\n", execs);
	return failures ? 1 : 0;
}

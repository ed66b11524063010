/*
 * tz_test.h - the unit tests' TAP helpers: each CHECK prints one TAP line
 * ("ok N - what" or "not ok N - what at file:line"); tz_test_done() prints
 * the plan and returns the exit code.  tests/run.sh adds up every binary's
 * lines into the final "N passed, N failed".
 */
#ifndef TZ_TEST_H
#define TZ_TEST_H

#include <stdio.h>
#include <stdarg.h>

static int tz_test_count;
static int tz_test_failed;

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5), unused))
#endif
static int tz_test_check(int ok, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tz_test_count++;
	printf("%s %d - ", ok ? "ok" : "not ok", tz_test_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (!ok) {
		tz_test_failed++;
		printf(" (at %s:%d)", file, line);
	}
	printf("\n");
	fflush(stdout);
	return ok;
}

/* CHECK(cond, "printf-style description", ...) */
#define CHECK(cond, ...) tz_test_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#if defined(__GNUC__)
__attribute__((unused))
#endif
static int tz_test_done(void)
{
	printf("1..%d\n", tz_test_count);
	return tz_test_failed ? 1 : 0;
}

/* Write DIR/NAME SUFFIX (the fuzz corpora the unit tests generate);
 * 0 on success. */
static inline int tz_test_write_file(const char *dir, const char *name, const char *suffix,
				     const void *p, size_t n)
{
	char path[4096];
	FILE *f;
	int ok;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s%s", dir, name, suffix) >= sizeof(path) ||
	    (f = fopen(path, "wb")) == NULL)
		return -1;
	ok = fwrite(p, 1, n, f) == n;
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

#endif

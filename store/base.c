/*
 * base.c - per-thread error messages, checked allocation, fault injection.
 *
 * The message buffer is thread-local and fixed-size: recording an error
 * must never itself allocate (it is called on the ENOMEM path).
 */
#include "store/tz_base.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 KiB holds any message we write (paths are quoted once or twice). */
#define TZ_ERRMSG_MAX 1024

static _Thread_local char errmsg[TZ_ERRMSG_MAX];
static _Thread_local int errcode;

int tz_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	errcode = code;
	return code;
}

int tz_error_wrap(int code, const char *fmt, ...)
{
	char prefix[TZ_ERRMSG_MAX];
	char old[TZ_ERRMSG_MAX];
	va_list ap;

	memcpy(old, errmsg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	/* Truncation is wanted here: the message is cut, never overflowed. */
	{
		size_t n = strlen(prefix), m = strlen(old);

		if (m != 0 && n + 2 < sizeof(errmsg)) {
			memcpy(prefix + n, ": ", 3);
			n += 2;
		}
		if (m != 0 && n + m >= sizeof(errmsg))
			m = sizeof(errmsg) - n - 1;
		memcpy(errmsg, prefix, n);
		memcpy(errmsg + n, old, m);
		errmsg[n + m] = '\0';
	}
	errcode = code;
	return code;
}

const char *tz_error_last(void) { return errmsg; }
int tz_error_code(void) { return errcode; }

void tz_error_clear(void)
{
	errmsg[0] = '\0';
	errcode = TZ_OK;
}

const char *tz_error_name(int code)
{
	static const char *const names[] = {
		"OK", "ENOMEM", "EIO", "ECORRUPT", "EVERIFY", "ELIMIT", "EPROTO",
		"ENOTFOUND", "EEXISTS", "EBUSY", "EINVAL", "EPERM", "ESQL", "EGIT"
	};
	if (code > 0 || -code >= (int)(sizeof(names) / sizeof(names[0])))
		return "EUNKNOWN";
	return names[-code];
}

/* ---- fault injection ---- */

int tz_faultsim_armed;
static uint64_t fault_target[TZ_FAULT__COUNT];
static uint64_t fault_calls[TZ_FAULT__COUNT];
static int fault_fired;
static const char *const fault_names[TZ_FAULT__COUNT] = {
	"alloc", "write", "fsync", "rename", "sql", "net", "gitalloc"
};

static void fault_recount(void)
{
	int any = 0;

	for (int i = 0; i < TZ_FAULT__COUNT; i++)
		any |= fault_target[i] != 0;
	tz_faultsim_armed = any;
}

int tz_faultsim__hit(tz_fault_site site)
{
	if (fault_target[site] == 0)
		return 0;
	if (++fault_calls[site] != fault_target[site])
		return 0;
	fault_fired = 1;
	return 1;
}

int tz_faultsim_fired(void)
{
	return fault_fired;
}

void tz_faultsim_arm(tz_fault_site site, uint64_t k)
{
	fault_target[site] = k;
	fault_calls[site] = 0;
	fault_recount();
}

uint64_t tz_faultsim_calls(tz_fault_site site)
{
	return fault_calls[site];
}

int tz_faultsim_from_env(void)
{
	const char *v = getenv("TZ_FAULTSIM");
	const char *colon;
	char *end;
	unsigned long long k;

	if (v == NULL || *v == '\0')
		return TZ_OK;
	colon = strchr(v, ':');
	if (colon == NULL)
		return tz_error_set(TZ_EINVAL, "TZ_FAULTSIM '%s': expected SITE:K", v);
	for (int i = 0; i < TZ_FAULT__COUNT; i++) {
		if (strlen(fault_names[i]) != (size_t)(colon - v) ||
		    memcmp(fault_names[i], v, (size_t)(colon - v)) != 0)
			continue;
		errno = 0;
		k = strtoull(colon + 1, &end, 10);
		if (errno != 0 || *end != '\0' || k == 0)
			return tz_error_set(TZ_EINVAL, "TZ_FAULTSIM '%s': K must be a positive integer", v);
		tz_faultsim_arm((tz_fault_site)i, k);
		/* reach below SQLite and libgit2 too (store/faultsim.c) */
		return tz_faultsim__install();
	}
	return tz_error_set(TZ_EINVAL, "TZ_FAULTSIM '%s': unknown site (alloc, write, fsync, rename, sql, net, gitalloc)", v);
}

/* ---- allocation ---- */

static void *nomem(size_t size)
{
	tz_error_set(TZ_ENOMEM, "out of memory (%zu bytes)", size);
	return NULL;
}

void *tz_malloc(size_t size)
{
	void *p;

	if (tz_faultsim(TZ_FAULT_ALLOC))
		return nomem(size);
	p = malloc(size ? size : 1);
	return p ? p : nomem(size);
}

void *tz_calloc(size_t n, size_t size)
{
	void *p;
	size_t total;

	if (tz_size_mul(&total, n, size) < 0)
		return nomem(SIZE_MAX);
	if (tz_faultsim(TZ_FAULT_ALLOC))
		return nomem(total);
	p = calloc(n ? n : 1, size ? size : 1);
	return p ? p : nomem(total);
}

void *tz_realloc(void *p, size_t size)
{
	void *q;

	if (tz_faultsim(TZ_FAULT_ALLOC))
		return nomem(size);
	q = realloc(p, size ? size : 1);
	return q ? q : nomem(size);
}

void *tz_reallocarray(void *p, size_t n, size_t size)
{
	size_t total;

	if (tz_size_mul(&total, n, size) < 0)
		return nomem(SIZE_MAX);
	return tz_realloc(p, total);
}

char *tz_strndup(const char *s, size_t n)
{
	char *d = tz_malloc(n + 1);

	if (d == NULL)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *tz_strdup(const char *s)
{
	return tz_strndup(s, strlen(s));
}

void tz_free(void *p)
{
	free(p);
}

int tz_array_grow(void *arrp, size_t *cap, size_t n, size_t elem)
{
	void *arr, *p;
	size_t want;

	if (n < *cap)
		return TZ_OK;
	if (*cap > SIZE_MAX / 2)
		return tz_error_set(TZ_ELIMIT, "array too large");
	want = *cap ? *cap * 2 : 16;
	/* the pointer is copied, not cast: arrp may point to any T * */
	memcpy(&arr, arrp, sizeof(arr));
	if ((p = tz_reallocarray(arr, want, elem)) == NULL)
		return TZ_ENOMEM;
	memcpy(arrp, &p, sizeof(p));
	*cap = want;
	return TZ_OK;
}

int tz_size_add(size_t *out, size_t a, size_t b)
{
	if (a > SIZE_MAX - b)
		return TZ_ELIMIT;
	*out = a + b;
	return TZ_OK;
}

int tz_size_mul(size_t *out, size_t a, size_t b)
{
	if (b != 0 && a > SIZE_MAX / b)
		return TZ_ELIMIT;
	*out = a * b;
	return TZ_OK;
}

/*
 * tz_base.h - error codes, per-thread error messages, allocation with
 * fault-injection sites.  Every other Tazamun file builds on this one.
 *
 * Conventions (see docs/architecture.md and STYLE.md):
 *  - a function that can fail returns int: TZ_OK (0) or a negative TZ_E*;
 *  - the human message of the last failure is kept per thread and read with
 *    tz_error_last(); callers decide on the code, never on the message;
 *  - messages follow git: lowercase, no full stop, subjects in quotes.
 */
#ifndef TZ_BASE_H
#define TZ_BASE_H

#include <stddef.h>
#include <stdint.h>

#define TZ_OK          0
#define TZ_ENOMEM     -1   /* allocation failed */
#define TZ_EIO        -2   /* read, write, fsync, rename failed */
#define TZ_ECORRUPT   -3   /* bytes that do not parse */
#define TZ_EVERIFY    -4   /* signature or hash mismatch */
#define TZ_ELIMIT     -5   /* a bound exceeded */
#define TZ_EPROTO     -6   /* protocol violation */
#define TZ_ENOTFOUND  -7   /* no such thing */
#define TZ_EEXISTS    -8   /* already there */
#define TZ_EBUSY      -9   /* someone else holds it */
#define TZ_EINVAL    -10   /* bad argument or declaration */
#define TZ_EPERM     -11   /* unauthorized change */
#define TZ_ESQL      -12   /* SQLite refused (message says why) */
#define TZ_EGIT      -13   /* libgit2 refused (message says why) */

#if defined(__GNUC__)
#define TZ_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define TZ_MUST_CHECK __attribute__((warn_unused_result))
#else
#define TZ_PRINTF(f, a)
#define TZ_MUST_CHECK
#endif

/* Record `code` and a printf-style message as this thread's last error.
 * Returns `code`, so that `return tz_error_set(TZ_EIO, "...")` reads well. */
int tz_error_set(int code, const char *fmt, ...) TZ_PRINTF(2, 3);

/* Prefix the current message with "<prefix>: " (context added on the way
 * up, like git's "cannot open 'x': ..."). Returns `code`. */
int tz_error_wrap(int code, const char *fmt, ...) TZ_PRINTF(2, 3);

/* This thread's last message ("" when none); valid until the next set. */
const char *tz_error_last(void);

/* The code recorded with the last message (TZ_OK when none). */
int tz_error_code(void);

/* Forget the last error. */
void tz_error_clear(void);

/* A short name for a code ("ENOMEM", "ECORRUPT", ...). */
const char *tz_error_name(int code);

/*
 * Fault injection.  Every call site that can fail in the real world passes
 * through tz_faultsim(site) first; when the test harness armed that site
 * for its k-th call, tz_faultsim returns non-zero and the caller fails as
 * it would for real.  Disarmed cost: one load and a predictable branch.
 * Arming: tz_faultsim_arm(site, k), or the environment variable
 * TZ_FAULTSIM="alloc:17" (site name, colon, 1-based call index) read on
 * the first call.
 */
typedef enum {
	TZ_FAULT_ALLOC = 0,
	TZ_FAULT_WRITE,
	TZ_FAULT_FSYNC,
	TZ_FAULT_RENAME,
	TZ_FAULT_SQL,
	TZ_FAULT_NET,
	TZ_FAULT_GITALLOC,      /* libgit2's own allocations (store/faultsim.c) */
	TZ_FAULT__COUNT
} tz_fault_site;

extern int tz_faultsim_armed;   /* non-zero while any site is armed */
int tz_faultsim__hit(tz_fault_site site);
static inline int tz_faultsim(tz_fault_site site)
{
	return tz_faultsim_armed ? tz_faultsim__hit(site) : 0;
}
/* Fail the k-th call (1-based) of `site` from now on; k = 0 disarms. */
void tz_faultsim_arm(tz_fault_site site, uint64_t k);
/* How many calls `site` has seen since it was armed. */
uint64_t tz_faultsim_calls(tz_fault_site site);
/* Did an armed fault fire (some site reached its k-th call)?  A sweep
 * stops when it no longer does: k is then past the last call. */
int tz_faultsim_fired(void);
/* Read TZ_FAULTSIM from the environment; TZ_EINVAL on a malformed value.
 * When a site is armed this also installs the shims that reach below
 * SQLite (a VFS) and libgit2 (its allocator): store/faultsim.c. */
int tz_faultsim_from_env(void);
/* Install those shims (once; before the first store is opened). */
int tz_faultsim__install(void);

/* Allocation.  These set TZ_ENOMEM's message themselves on failure.
 * tz_free accepts NULL.  tz_reallocarray and tz_calloc check n * size. */
void *tz_malloc(size_t size);
void *tz_calloc(size_t n, size_t size);
void *tz_realloc(void *p, size_t size);
void *tz_reallocarray(void *p, size_t n, size_t size);
char *tz_strdup(const char *s);
char *tz_strndup(const char *s, size_t n);
void tz_free(void *p);

/* Make room for element n of a growable array: `arrp` points to the array
 * pointer (of any element type), *cap is its capacity in elements.  When
 * n < *cap nothing happens; otherwise the capacity doubles (16 at first).
 * TZ_ENOMEM leaves the array and *cap as they were. */
int tz_array_grow(void *arrp, size_t *cap, size_t n, size_t elem);

/* Overflow-checked size arithmetic: 0 on success, TZ_ELIMIT on overflow. */
int tz_size_add(size_t *out, size_t a, size_t b) TZ_MUST_CHECK;
int tz_size_mul(size_t *out, size_t a, size_t b) TZ_MUST_CHECK;

#endif

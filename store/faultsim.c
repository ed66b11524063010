/*
 * Fault injection below the libraries (DESIGN §11, docs/testing.md).
 *
 * The store's own call sites pass through tz_faultsim(); what SQLite and
 * libgit2 do inside themselves does not.  When a test arms a site (only
 * then: a release run never installs these), tz_faultsim__install() puts
 * two shims in place so that the same sites reach into the libraries:
 *
 * - SQLite: a VFS ("tz-faultsim") wrapping the default one and made the
 *   default, so every database the store opens goes through it.  A write
 *   fails at the `write` site (SQLITE_IOERR_WRITE), a sync at `fsync`
 *   (SQLITE_IOERR_FSYNC), and every call SQLite makes into its file layer
 *   (open, read, write, truncate, sync, size, lock, unlock, access, delete)
 *   counts at the `sql` site and fails with SQLITE_IOERR when it is the k-th.
 * - libgit2: its allocator (git_libgit2_opts GIT_OPT_SET_ALLOCATOR,
 *   libgit2 >= 1.5): each of its allocations counts at the `gitalloc` site.
 *   A site of its own, not `alloc`: a commit makes ~1,500 libgit2
 *   allocations against ~300 of the store's, and libgit2 1.5.1 itself
 *   crashes on some of them (its config parser, reached from
 *   git_repository_odb), so the store's `alloc` sweep stays exact and the
 *   libgit2 sweep reports those crashes apart (docs/testing.md).
 *
 * libgit2's own writes, fsyncs and renames (loose objects, lock files) are
 * not reached: the store writes its packs and moves its refs through its
 * own sites (store/pack.c, store/history.c), which the sweeps cover.
 */
#include "store/tz_base.h"

#include <git2/common.h>

#include <git2/sys/alloc.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* ---- SQLite: a VFS shim ---- */

typedef struct {
	sqlite3_file base;      /* our methods */
	sqlite3_file *real;     /* the wrapped VFS's file, allocated after us */
} fs_file;

static sqlite3_vfs *real_vfs;
static sqlite3_vfs fs_vfs;

#define REAL(f) (((fs_file *)(f))->real)

/* The `sql` site counts every call into the file layer. */
static int sql_fault(void)
{
	return tz_faultsim(TZ_FAULT_SQL);
}

static int fs_close(sqlite3_file *f)
{
	int rc = REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;

	f->pMethods = NULL;
	return rc;
}

static int fs_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	if (sql_fault())
		return SQLITE_IOERR_READ;
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int fs_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	if (sql_fault() || tz_faultsim(TZ_FAULT_WRITE))
		return SQLITE_IOERR_WRITE;
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int fs_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	if (sql_fault())
		return SQLITE_IOERR_TRUNCATE;
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int fs_sync(sqlite3_file *f, int flags)
{
	if (sql_fault() || tz_faultsim(TZ_FAULT_FSYNC))
		return SQLITE_IOERR_FSYNC;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int fs_size(sqlite3_file *f, sqlite3_int64 *size)
{
	if (sql_fault())
		return SQLITE_IOERR_FSTAT;
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int fs_lock(sqlite3_file *f, int level)
{
	if (sql_fault())
		return SQLITE_IOERR_LOCK;
	return REAL(f)->pMethods->xLock(REAL(f), level);
}

/* Unlocking is not failed: SQLite treats a failed unlock as fatal for the
 * connection, which is not a condition the real world produces. */
static int fs_unlock(sqlite3_file *f, int level)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), level);
}

static int fs_check_lock(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int fs_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int fs_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int fs_chars(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int fs_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int fs_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), offset, n, flags);
}

static void fs_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int fs_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int fs_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}

static int fs_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods fs_methods = {
	3, fs_close, fs_read, fs_write, fs_truncate, fs_sync, fs_size, fs_lock,
	fs_unlock, fs_check_lock, fs_control, fs_sector, fs_chars, fs_shm_map,
	fs_shm_lock, fs_shm_barrier, fs_shm_unmap, fs_fetch, fs_unfetch
};

static int fs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	fs_file *ff = (fs_file *)f;
	int rc;

	(void)vfs;
	ff->real = (sqlite3_file *)(ff + 1);
	f->pMethods = NULL;
	if (sql_fault())
		return SQLITE_CANTOPEN;
	rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out_flags);
	/* SQLite calls xClose only when pMethods is set, even on failure. */
	if (ff->real->pMethods != NULL)
		f->pMethods = &fs_methods;
	return rc;
}

static int fs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	if (sql_fault())
		return SQLITE_IOERR_DELETE;
	return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int fs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	if (sql_fault())
		return SQLITE_IOERR_ACCESS;
	return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int fs_full_path(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *fs_dl_open(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return real_vfs->xDlOpen(real_vfs, name);
}

static void fs_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
	(void)vfs;
	real_vfs->xDlError(real_vfs, n, msg);
}

static void (*fs_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	(void)vfs;
	return real_vfs->xDlSym(real_vfs, h, sym);
}

static void fs_dl_close(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	real_vfs->xDlClose(real_vfs, h);
}

static int fs_random(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int fs_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return real_vfs->xSleep(real_vfs, us);
}

static int fs_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return real_vfs->xCurrentTime(real_vfs, out);
}

static int fs_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, out) : 0;
}

static int fs_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static int vfs_install(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	if (real_vfs == NULL || real_vfs->iVersion < 2)
		return tz_error_set(TZ_ESQL, "fault injection: no default SQLite VFS to wrap");
	fs_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(fs_file) + real_vfs->szOsFile,
		.mxPathname = real_vfs->mxPathname,
		.zName = "tz-faultsim",
		.xOpen = fs_open, .xDelete = fs_delete, .xAccess = fs_access,
		.xFullPathname = fs_full_path, .xDlOpen = fs_dl_open,
		.xDlError = fs_dl_error, .xDlSym = fs_dl_sym, .xDlClose = fs_dl_close,
		.xRandomness = fs_random, .xSleep = fs_sleep, .xCurrentTime = fs_time,
		.xGetLastError = fs_last_error, .xCurrentTimeInt64 = fs_time64,
	};
	if (sqlite3_vfs_register(&fs_vfs, 1) != SQLITE_OK)
		return tz_error_set(TZ_ESQL, "fault injection: cannot register the SQLite VFS shim");
	return TZ_OK;
}

/* ---- libgit2: its allocator ---- */

static void *ga_malloc(size_t n, const char *file, int line)
{
	(void)file, (void)line;
	return tz_faultsim(TZ_FAULT_GITALLOC) ? NULL : malloc(n);
}

static void *ga_calloc(size_t n, size_t size, const char *file, int line)
{
	(void)file, (void)line;
	return tz_faultsim(TZ_FAULT_GITALLOC) ? NULL : calloc(n, size);
}

static char *ga_strndup(const char *s, size_t n, const char *file, int line)
{
	size_t len = strnlen(s, n);
	char *d = ga_malloc(len + 1, file, line);

	if (d != NULL) {
		memcpy(d, s, len);
		d[len] = '\0';
	}
	return d;
}

static char *ga_strdup(const char *s, const char *file, int line)
{
	return ga_strndup(s, strlen(s), file, line);
}

static char *ga_substrdup(const char *s, size_t n, const char *file, int line)
{
	char *d = n < SIZE_MAX ? ga_malloc(n + 1, file, line) : NULL;

	if (d != NULL) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static void *ga_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file, (void)line;
	return tz_faultsim(TZ_FAULT_GITALLOC) ? NULL : realloc(p, n);
}

static void *ga_reallocarray(void *p, size_t n, size_t size, const char *file, int line)
{
	size_t total;

	if (tz_size_mul(&total, n, size) < 0)
		return NULL;
	return ga_realloc(p, total, file, line);
}

static void *ga_mallocarray(size_t n, size_t size, const char *file, int line)
{
	return ga_reallocarray(NULL, n, size, file, line);
}

static git_allocator git_alloc = {
	ga_malloc, ga_calloc, ga_strdup, ga_strndup, ga_substrdup,
	ga_realloc, ga_reallocarray, ga_mallocarray, free
};

int tz_faultsim__install(void)
{
	static int installed;
	int rc;

	if (installed)
		return TZ_OK;
	/* libgit2 keeps an allocator set before git_libgit2_init; memory it
	 * allocated with the default one is freed with free() either way. */
	if (git_libgit2_opts(GIT_OPT_SET_ALLOCATOR, &git_alloc) < 0)
		return tz_error_set(TZ_EGIT, "fault injection: cannot set libgit2's allocator");
	rc = vfs_install();
	if (rc == TZ_OK)
		installed = 1;
	return rc;
}

/*
 * gc.c - `syncctl gc`: every object of the history in one pack.
 *
 * Every commit adds a pack, every import three or more (the rebuilt
 * bundle, the merge, the view; more when it spills), and each pack is one
 * more index libgit2 searches for an id it does not hold: HQ's thousands
 * a year would slow every lookup (DESIGN §11, "Long life").  gc writes
 * every object the object database holds into one new pack, then removes
 * the packs and loose objects it copied.  Reachable or not: gc never
 * decides that an object is garbage (an import killed after writing its
 * packs leaves objects nothing references; they are kept, and copied).
 *
 * Crash safety: the new pack is fsynced and renamed into place, index
 * last (pack.c), before anything is removed, so a crash leaves at worst
 * every object twice, which the next gc folds.  Writers are kept out by
 * store.lock.  A reader that opened an old pack keeps reading it (an
 * unlinked file lives on for its holders), and libgit2 looks for new
 * packs when an id is not where it was.
 */
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* When a daemon runs gc (tz_store_gc_due): a day of a branch's commits,
 * or about ten imports at HQ, by packs; one loose object per commit. */
#define TZ_GC_PACKS 32
#define TZ_GC_LOOSE 256

typedef struct {
	tz_oid *ids;
	size_t n, cap;
	int err;
} id_list;

/* The files of objects/ gc replaces: packs by name (pack-<hex>, no
 * extension) and loose objects (xx/<38 hex>), with their sizes. */
typedef struct {
	char **name;
	size_t n, cap;
	uint64_t bytes;
} file_list;

static void files_release(file_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		tz_free(l->name[i]);
	tz_free(l->name);
	memset(l, 0, sizeof(*l));
}

static int files_add(file_list *l, const char *name, size_t len)
{
	char *c;

	if (tz_array_grow(&l->name, &l->cap, l->n, sizeof(*l->name)) < 0 || (c = tz_strndup(name, len)) == NULL)
		return TZ_ENOMEM;
	l->name[l->n++] = c;
	return TZ_OK;
}

static uint64_t size_of(const char *dir, const char *name, const char *ext)
{
	char path[PATH_MAX];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/%s%s", dir, name, ext) >= (int)sizeof(path) || stat(path, &st) != 0)
		return 0;
	return (uint64_t)st.st_size;
}

static bool is_hex(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return false;
	return true;
}

/* objects/pack: the packs (a .pack with its .idx) and the temporaries a
 * killed writer left (tmp_pack_*, tmp_idx_*: no writer runs while gc
 * holds store.lock). */
static int list_packs(const char *dir, file_list *packs, file_list *tmps)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = TZ_OK;

	if (d == NULL)
		return tz_error_set(TZ_EIO, "cannot read '%s': %s", dir, strerror(errno));
	while (rc == TZ_OK && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		/* a pack without its index (a writer killed between the two
		 * renames) is invisible to libgit2: its objects are not copied,
		 * so it stays */
		if (len == 50 && memcmp(e->d_name, "pack-", 5) == 0 && strcmp(e->d_name + 45, ".pack") == 0 &&
		    is_hex(e->d_name + 5, 40) && (rc = files_add(packs, e->d_name, 45)) == TZ_OK) {
			uint64_t idx = size_of(dir, packs->name[packs->n - 1], ".idx");
			if (idx == 0)
				tz_free(packs->name[--packs->n]);
			else
				packs->bytes += idx + size_of(dir, e->d_name, "");
		} else if (strncmp(e->d_name, "tmp_pack_", 9) == 0 || strncmp(e->d_name, "tmp_idx_", 8) == 0) {
			rc = files_add(tmps, e->d_name, len);
		}
	}
	closedir(d);
	return rc;
}

/* objects/xx/<38 hex>: the loose objects (commits are written loose). */
static int list_loose(const char *dir, file_list *loose)
{
	char sub[PATH_MAX], name[64];
	int rc = TZ_OK;

	for (unsigned i = 0; i < 256 && rc == TZ_OK; i++) {
		DIR *d;
		struct dirent *e;
		snprintf(sub, sizeof(sub), "%s/%02x", dir, i);
		if ((d = opendir(sub)) == NULL)
			continue;   /* git makes these directories as it needs them */
		while (rc == TZ_OK && (e = readdir(d)) != NULL) {
			if (strlen(e->d_name) != 38 || !is_hex(e->d_name, 38))
				continue;
			snprintf(name, sizeof(name), "%02x/%.38s", i, e->d_name);
			loose->bytes += size_of(dir, name, "");
			rc = files_add(loose, name, strlen(name));
		}
		closedir(d);
	}
	return rc;
}

static int collect_id(const git_oid *id, void *payload)
{
	id_list *l = payload;

	if (tz_array_grow(&l->ids, &l->cap, l->n, sizeof(*l->ids)) < 0) {
		l->err = TZ_ENOMEM;
		return -1;
	}
	memcpy(l->ids[l->n++].id, id->id, 20);
	return 0;
}

static int oid_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 20);
}

/* Every id of the object database once, sorted (a pack copied twice by a
 * killed gc, or an object both loose and packed, gives it twice). */
static int all_ids(tz_store *s, id_list *l)
{
	size_t k = 0;

	if (git_odb_foreach(s->odb, collect_id, l) < 0)
		return l->err < 0 ? l->err : tz_git__error("cannot list the objects");
	if (l->n > 0)
		qsort(l->ids, l->n, sizeof(*l->ids), oid_cmp);
	for (size_t i = 0; i < l->n; i++)
		if (k == 0 || memcmp(&l->ids[k - 1], &l->ids[i], 20) != 0)
			l->ids[k++] = l->ids[i];
	l->n = k;
	return TZ_OK;
}

/* Remove dir/name+ext; a file already gone is fine. */
static int remove_file(const char *dir, const char *name, const char *ext)
{
	char path[PATH_MAX];

	if (snprintf(path, sizeof(path), "%s/%s%s", dir, name, ext) >= (int)sizeof(path))
		return tz_error_set(TZ_ELIMIT, "path too long under '%s'", dir);
	if (unlink(path) != 0 && errno != ENOENT)
		return tz_error_set(TZ_EIO, "cannot remove '%s': %s", path, strerror(errno));
	return TZ_OK;
}

/* The copied files go: each old pack's index first (without it the pack
 * is invisible), then the pack; the loose objects; the temporaries. */
static int remove_copied(const char *objdir, const char *packdir, const file_list *packs, const char *keep,
			 const file_list *loose, const file_list *tmps)
{
	char sub[PATH_MAX];
	int rc = TZ_OK;

	for (size_t i = 0; i < packs->n && rc == TZ_OK; i++)
		if (strcmp(packs->name[i], keep) != 0 && (rc = remove_file(packdir, packs->name[i], ".idx")) == TZ_OK)
			rc = remove_file(packdir, packs->name[i], ".pack");
	for (size_t i = 0; i < loose->n && rc == TZ_OK; i++) {
		rc = remove_file(objdir, loose->name[i], "");
		snprintf(sub, sizeof(sub), "%s/%.2s", objdir, loose->name[i]);
		(void)rmdir(sub);   /* once empty; git makes it again */
	}
	for (size_t i = 0; i < tmps->n && rc == TZ_OK; i++)
		rc = remove_file(packdir, tmps->name[i], "");
	if (rc == TZ_OK && (rc = tz_fs__fsync_dir(packdir)) == TZ_OK)
		rc = tz_fs__fsync_dir(objdir);
	return rc;
}

static int gc_locked(tz_store *s, const char *objdir, const char *packdir, tz_gc_result *res)
{
	file_list packs = { 0 }, loose = { 0 }, tmps = { 0 };
	id_list ids = { 0 };
	uint8_t sum[20];
	char keep[64];
	int rc;

	if ((rc = list_packs(packdir, &packs, &tmps)) < 0 || (rc = list_loose(objdir, &loose)) < 0)
		goto done;
	res->packs_before = packs.n;
	res->loose_before = loose.n;
	res->bytes_before = packs.bytes + loose.bytes;
	res->bytes_after = res->bytes_before;
	if (packs.n <= 1 && loose.n == 0) {
		/* one pack already: only a killed writer's temporaries go */
		res->noop = true;
		keep[0] = '\0';
		if (packs.n == 1)
			snprintf(keep, sizeof(keep), "%.45s", packs.name[0]);
		if (tmps.n > 0 && (rc = remove_copied(objdir, packdir, &packs, keep, &loose, &tmps)) == TZ_OK)
			res->tmp_removed = tmps.n;
		goto done;
	}
	tz_progress__report(s, "listing objects", 0, 0);
	/* libgit2 must know every pack listed, or their objects go uncopied */
	if (git_odb_refresh(s->odb) < 0) {
		rc = tz_git__error("cannot refresh the object database");
		goto done;
	}
	if ((rc = all_ids(s, &ids)) < 0)
		goto done;
	res->objects = ids.n;
	keep[0] = '\0';
	if (ids.n > 0) {
		if ((rc = tz_pack__consolidate(s, ids.ids, ids.n, sum)) < 0)
			goto done;
		memcpy(keep, "pack-", 5);
		tz_oid_fmt(keep + 5, (const tz_oid *)sum);
	}
	if ((rc = remove_copied(objdir, packdir, &packs, keep, &loose, &tmps)) < 0)
		goto done;
	res->tmp_removed = tmps.n;
	res->bytes_after = keep[0] ? size_of(packdir, keep, ".pack") + size_of(packdir, keep, ".idx") : 0;
	if (git_odb_refresh(s->odb) < 0)
		rc = tz_git__error("cannot refresh the object database");
done:
	tz_free(ids.ids);
	files_release(&packs);
	files_release(&loose);
	files_release(&tmps);
	return rc;
}

int tz_store_gc_due(tz_store *s, bool *due)
{
	file_list packs = { 0 }, loose = { 0 }, tmps = { 0 };
	tz_buf objdir = TZ_BUF_INIT, packdir = TZ_BUF_INIT;
	int rc;

	*due = false;
	tz_buf_printf(&objdir, "%sobjects", git_repository_path(s->repo));
	tz_buf_printf(&packdir, "%sobjects/pack", git_repository_path(s->repo));
	if ((rc = tz_buf_error(&objdir)) == TZ_OK && (rc = tz_buf_error(&packdir)) == TZ_OK &&
	    (rc = list_packs((const char *)packdir.data, &packs, &tmps)) == TZ_OK &&
	    (rc = list_loose((const char *)objdir.data, &loose)) == TZ_OK)
		*due = packs.n >= TZ_GC_PACKS || loose.n >= TZ_GC_LOOSE;
	files_release(&packs);
	files_release(&loose);
	files_release(&tmps);
	tz_buf_release(&objdir);
	tz_buf_release(&packdir);
	return rc;
}

int tz_store_gc(tz_store *s, tz_gc_result *res)
{
	tz_buf objdir = TZ_BUF_INIT, packdir = TZ_BUF_INIT;
	int rc;

	memset(res, 0, sizeof(*res));
	tz_buf_printf(&objdir, "%sobjects", git_repository_path(s->repo));
	tz_buf_printf(&packdir, "%sobjects/pack", git_repository_path(s->repo));
	if ((rc = tz_buf_error(&objdir)) < 0 || (rc = tz_buf_error(&packdir)) < 0)
		goto done;
	if ((rc = tz_store__lock(s)) < 0)
		goto done;
	rc = gc_locked(s, (const char *)objdir.data, (const char *)packdir.data, res);
	tz_store__unlock(s);
done:
	tz_buf_release(&objdir);
	tz_buf_release(&packdir);
	if (rc < 0)
		tz_error_wrap(rc, "gc");
	return rc;
}

/*
 * spool.c - what HQ's server and the branch's client both do with their
 * spool directories (<store>/syncd/, docs/operations.md): read a bundle
 * file with its digest, prune a directory, make a log line safe.
 */
#include "syncd/syncd_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "syncd/tz_bundle.h"
#include "syncd/tz_exchange.h"

int tz_spool__read(tz_buf *file, char hex[2 * TZ_HTTP_DIGEST_BYTES + 1], const char *path)
{
	uint8_t d[TZ_HTTP_DIGEST_BYTES];
	int rc;

	hex[0] = '\0';
	if ((rc = tz_file_read(file, path, TZ_BUNDLE_MAX_BYTES)) < 0)
		return rc;
	tz_hash_short(d, sizeof(d), file->data, file->len);
	tz_hex(hex, d, sizeof(d));
	return TZ_OK;
}

void tz_spool__prune(const char *dir, const char *keep, bool (*drop)(const char *name))
{
	tz_buf p = TZ_BUF_INIT;
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || (keep && strcmp(e->d_name, keep) == 0) || !drop(e->d_name))
			continue;
		tz_buf_clear(&p);
		tz_buf_printf(&p, "%s/%s", dir, e->d_name);
		if (tz_buf_error(&p) == TZ_OK)
			unlink((const char *)p.data);
	}
	closedir(d);
	tz_buf_release(&p);
}

void tz_spool__safe(char *line)
{
	/* nothing a peer sent may drive the operator's terminal */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
			*p = '?';
}

int tz_spool__sync_dir(const char *dir)
{
	int fd, rc = TZ_OK;

	if (tz_faultsim(TZ_FAULT_FSYNC))
		return tz_error_set(TZ_EIO, "cannot sync '%s': injected fault", dir);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return tz_error_set(TZ_EIO, "cannot open '%s'", dir);
	if (fsync(fd) != 0)
		rc = tz_error_set(TZ_EIO, "cannot sync '%s'", dir);
	close(fd);
	return rc;
}

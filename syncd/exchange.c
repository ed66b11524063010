/*
 * exchange.c - bundles and enrolment files on disk (tz_exchange.h).
 */
#include "syncd/tz_exchange.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conflict/tz_conflict.h"
#include "syncd/tz_enrol.h"
#include "syncd/tz_http.h"

int tz_file_read(tz_buf *out, const char *path, uint64_t max)
{
	struct stat st;
	FILE *f = fopen(path, "rbe");
	int rc = TZ_OK;

	tz_buf_clear(out);
	if (f == NULL)
		return tz_error_set(errno == ENOENT ? TZ_ENOTFOUND : TZ_EIO, "cannot open '%s': %s", path, strerror(errno));
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		fclose(f);
		return tz_error_set(TZ_EIO, "'%s' is not a regular file", path);
	}
	if ((uint64_t)st.st_size > max) {
		fclose(f);
		return tz_error_set(TZ_ELIMIT, "'%s' is %lld bytes, over the limit of %llu", path, (long long)st.st_size,
				    (unsigned long long)max);
	}
	if ((rc = tz_buf_reserve(out, (size_t)st.st_size)) == TZ_OK) {
		size_t got = fread(out->data, 1, (size_t)st.st_size, f);
		if (got != (size_t)st.st_size || ferror(f))
			rc = tz_error_set(TZ_EIO, "cannot read '%s'", path);
		else
			out->len = got;
	}
	fclose(f);
	return rc;
}

int tz_file_write_durable(const char *path, const void *p, size_t n)
{
	tz_buf tmp = TZ_BUF_INIT;
	char *dircopy = NULL;
	int fd = -1, rc = TZ_OK;

	tz_buf_printf(&tmp, "%s.tmp-%ld", path, (long)getpid());
	if ((rc = tz_buf_error(&tmp)) < 0)
		return rc;
	if (tz_faultsim(TZ_FAULT_WRITE)) {
		rc = tz_error_set(TZ_EIO, "cannot write '%s': injected fault", path);
		goto done;
	}
	if ((fd = open((const char *)tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		rc = tz_error_set(TZ_EIO, "cannot create '%s': %s", (const char *)tmp.data, strerror(errno));
		goto done;
	}
	for (size_t off = 0; off < n;) {
		ssize_t w = write(fd, (const uint8_t *)p + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = tz_error_set(TZ_EIO, "cannot write '%s': %s", path, strerror(w < 0 ? errno : ENOSPC));
			goto done;
		}
		off += (size_t)w;
	}
	if (tz_faultsim(TZ_FAULT_FSYNC) || fsync(fd) != 0) {
		rc = tz_error_set(TZ_EIO, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
		goto done;
	}
	close(fd);
	fd = -1;
	if (tz_faultsim(TZ_FAULT_RENAME) || rename((const char *)tmp.data, path) != 0) {
		rc = tz_error_set(TZ_EIO, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
		goto done;
	}
	if ((dircopy = tz_strdup(path)) != NULL) {
		int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
done:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink((const char *)tmp.data);
	tz_free(dircopy);
	tz_buf_release(&tmp);
	return rc;
}

int tz_sync_export_file(tz_store *s, const char *for_code, const char *path, tz_export_info *info)
{
	tz_outgoing o;
	tz_bundle_header h;
	tz_bundle_opts opts = { 0, NULL, 0 };
	tz_buf file = TZ_BUF_INIT;
	int rc;

	memset(info, 0, sizeof(*info));
	memset(&h, 0, sizeof(h));
	if ((rc = tz_store_export(s, for_code, &o)) < 0)
		return rc;
	snprintf(h.sender, sizeof(h.sender), "%s", o.sender);
	snprintf(h.recipient, sizeof(h.recipient), "%s", o.recipient);
	memcpy(h.instance, o.instance, sizeof(h.instance));
	h.sequence = o.sequence;
	h.schema = o.schema;
	h.nprereq = o.nprereq;
	h.prereq = o.prereq;
	h.bind = o.bind;
	memcpy(h.bind_pk, o.bind_pk, sizeof(h.bind_pk));
	memcpy(h.bind_mac, o.bind_mac, sizeof(h.bind_mac));
	opts.dict = o.dict;
	opts.dict_len = o.dict_len;
	if ((rc = tz_bundle_write(&file, &h, tz_store_keypair(s), o.recipient_pk, o.payload.data, o.payload.len,
				  &opts)) < 0 ||
	    (rc = tz_file_write_durable(path, file.data, file.len)) < 0)
		goto done;
	snprintf(info->recipient, sizeof(info->recipient), "%s", o.recipient);
	info->sequence = o.sequence;
	info->ncommits = o.ncommits;
	info->nprereq = o.nprereq;
	info->payload_bytes = o.payload.len;
	info->file_bytes = file.len;
	info->bind = o.bind;
done:
	tz_buf_release(&file);
	tz_outgoing_release(&o);
	if (rc < 0)
		tz_error_wrap(rc, "cannot export to '%s'", path);
	return rc;
}

typedef struct {
	tz_store *s;
	uint8_t pk[TZ_PK_BYTES];   /* the key the signature is checked with */
} key_ctx;

static int key_cb(uint8_t pk[TZ_PK_BYTES], const tz_bundle_header *h, void *payload)
{
	key_ctx *k = payload;
	int rc = tz_store_sender_key(k->s, h->sender, h->bind, h->bind_pk, h->bind_mac, h->instance, pk);

	if (rc == TZ_OK)
		memcpy(k->pk, pk, TZ_PK_BYTES);
	return rc;
}

int tz_sync_import_file(tz_store *s, const char *path, tz_bundle_header *h, tz_import_result *res,
			tz_merge_summary *ms)
{
	tz_buf file = TZ_BUF_INIT, payload = TZ_BUF_INIT;
	tz_merger *m = NULL;
	tz_incoming in;
	key_ctx kc;
	uint8_t digest[32];
	int rc;

	memset(res, 0, sizeof(*res));
	memset(h, 0, sizeof(*h));
	memset(&kc, 0, sizeof(kc));
	if (ms)
		memset(ms, 0, sizeof(*ms));
	if ((rc = tz_file_read(&file, path, TZ_BUNDLE_MAX_BYTES)) < 0)
		goto done;
	tz_hash_short(digest, sizeof(digest), file.data, file.len);
	kc.s = s;
	if ((rc = tz_bundle_read(h, &payload, file.data, file.len, tz_store_code(s), tz_store_keypair(s), NULL, key_cb,
				 &kc)) < 0)
		goto done;
	memset(&in, 0, sizeof(in));
	in.sender = h->sender;
	in.instance = h->instance;
	in.sequence = h->sequence;
	in.schema = h->schema;
	in.prereq = h->prereq;
	in.nprereq = h->nprereq;
	in.bind = h->bind;
	in.bind_pk = h->bind_pk;
	in.bind_mac = h->bind_mac;
	in.signer_pk = kc.pk;
	in.digest = digest;
	/* HQ merges what both sides changed (conflict/) */
	if (strcmp(tz_store_code(s), "HQ") == 0 && (rc = tz_merger_new(s, &m)) < 0)
		goto done;
	rc = tz_store_import(s, &in, &payload, m, res);
	if (rc == TZ_OK && m && ms)
		tz_merger_summary(m, ms);
done:
	tz_merger_free(m);
	tz_wipe(payload.data, payload.len);
	tz_buf_release(&payload);
	tz_buf_release(&file);
	if (rc < 0) {
		tz_bundle_header_release(h);
		tz_error_wrap(rc, "'%s'", path);
	}
	return rc;
}

int tz_sync_branch_add_file(tz_store *s, const char *code, const char *path, const char *pass, size_t pass_len)
{
	tz_buf payload = TZ_BUF_INIT, file = TZ_BUF_INIT;
	struct stat st;
	int rc;

	if (pass_len == 0)
		return tz_error_set(TZ_EINVAL, "the enrolment passphrase is empty");
	if (stat(path, &st) == 0)
		return tz_error_set(TZ_EEXISTS, "'%s' exists; the enrolment file is never overwritten", path);
	if ((rc = tz_store_branch_add(s, code, &payload)) < 0)
		goto done;
	if ((rc = tz_enrol_write(&file, pass, pass_len, payload.data, payload.len)) < 0 ||
	    (rc = tz_file_write_durable(path, file.data, file.len)) < 0)
		tz_error_wrap(rc, "branch '%s' is enrolled, but its enrolment file was not written (run 'branch add "
			      "%s' again: it renews the enrolment)", code, code);
done:
	tz_wipe(payload.data, payload.len);
	tz_buf_release(&payload);
	tz_buf_release(&file);
	return rc;
}

int tz_sync_init_branch_file(const char *dir, const char *path, const char *pass, size_t pass_len,
			     tz_progress_cb cb, void *cb_payload)
{
	tz_buf file = TZ_BUF_INIT, payload = TZ_BUF_INIT;
	int rc;

	if ((rc = tz_file_read(&file, path, TZ_ENROL_MAX_BYTES)) == TZ_OK &&
	    (rc = tz_enrol_read(&payload, file.data, file.len, pass, pass_len)) == TZ_OK)
		rc = tz_store_init_branch(dir, payload.data, payload.len, cb, cb_payload);
	else
		tz_error_wrap(rc, "'%s'", path);
	tz_wipe(payload.data, payload.len);
	tz_buf_release(&payload);
	tz_buf_release(&file);
	return rc;
}

int tz_sync_gc_if_due(tz_store *s, char *msg, size_t len)
{
	tz_gc_result g;
	bool due;
	int64_t t0 = tz_monotonic_ms();
	int rc;

	msg[0] = '\0';
	if ((rc = tz_store_gc_due(s, &due)) < 0 || (due && (rc = tz_store_gc(s, &g)) < 0)) {
		snprintf(msg, len, "gc failed: %s", tz_error_last());
		return rc;
	}
	if (!due)
		return 0;
	snprintf(msg, len, "gc: %llu objects in one pack, from %llu packs and %llu loose objects (%.3f s)",
		 (unsigned long long)g.objects, (unsigned long long)g.packs_before,
		 (unsigned long long)g.loose_before, (double)(tz_monotonic_ms() - t0) / 1000.0);
	return 1;
}

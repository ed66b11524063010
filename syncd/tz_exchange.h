/*
 * tz_exchange.h - the sync cycle by file (a USB key, an e-mail): bundles
 * and enrolment files written and read, around the store's export and
 * import (store/tz_store.h) and the containers (tz_bundle.h, tz_enrol.h).
 * docs/protocol.md says what each step checks.
 */
#ifndef TZ_EXCHANGE_H
#define TZ_EXCHANGE_H

#include "conflict/tz_conflict.h"
#include "store/tz_store.h"
#include "syncd/tz_bundle.h"

/* What an export wrote. */
typedef struct {
	char recipient[17];
	uint64_t sequence;
	size_t ncommits;
	size_t nprereq;
	uint64_t payload_bytes;     /* row deltas, before compression */
	uint64_t file_bytes;
	bool bind;
} tz_export_info;

/* Export this store's next bundle (for_code: HQ's reply to one branch,
 * NULL at a branch) into `path`, written durably (a temporary, fsync,
 * rename): a crash leaves the old file or the new one. */
int tz_sync_export_file(tz_store *s, const char *for_code, const char *path, tz_export_info *info);

/* Import the bundle in `path`: open it (signature before decryption,
 * decryption before decompression), then tz_store_import, at HQ with a
 * merger whose summary goes to *ms (may be NULL).  *h_out gets the
 * authenticated header (release with tz_bundle_header_release). */
int tz_sync_import_file(tz_store *s, const char *path, tz_bundle_header *h_out, tz_import_result *res,
			tz_merge_summary *ms);

/* HQ: enrol branch `code` and write its passphrase-protected enrolment
 * file to `path`. */
int tz_sync_branch_add_file(tz_store *s, const char *code, const char *path, const char *pass, size_t pass_len);

/* Create a branch store in `dir` from the enrolment file `path`. */
int tz_sync_init_branch_file(const char *dir, const char *path, const char *pass, size_t pass_len,
			     tz_progress_cb cb, void *cb_payload);

/* A daemon's gc after an import or a cycle: consolidate the store's packs
 * when tz_store_gc_due says so.  0 when nothing was due (msg empty), 1
 * when gc ran, a TZ_E* code when it failed; a line for the log in msg. */
int tz_sync_gc_if_due(tz_store *s, char *msg, size_t len);

/* Read a whole file of at most `max` bytes. */
int tz_file_read(tz_buf *out, const char *path, uint64_t max);
/* Write a file durably, replacing it atomically (mode 0600). */
int tz_file_write_durable(const char *path, const void *p, size_t n);

#endif

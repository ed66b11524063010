/*
 * test_payload.c - unit tests for the delta payload reader (store/transfer.c,
 * docs/bundle-format.md "The payload, version 2"), through the public
 * tz_store_payload_check.
 *
 * The reader is hostile-input code: it runs after a bundle's signature has
 * verified, but a compromised branch key can sign anything.  The test makes
 * real payloads with the public API: an HQ store with a small schema (every
 * value type, an Arabic text, an owned and a shared table), the enrolment
 * payload of branch CAS01 (whose tail is a delta payload of one root
 * commit), then a branch store enrolled from it whose export is a payload
 * of two child commits (patches, a delete, a transcoded _log with path
 * references).  A parser and an encoder of the format, written here from
 * the spec independently of transfer.c (checked by a byte-exact round trip
 * of the real payloads), turn those into malformed payloads, each with one
 * defect, and every refusal is checked with its code and message.
 *
 * `test_payload --write-corpus DIR` writes the valid payloads to
 * DIR/corpus/payload and the refusal cases to DIR/reject/payload (NAME and
 * NAME.err) for tests/fuzz/fuzz_payload.c, which checks them against an
 * empty store, as the cases here are checked.
 */
#define _XOPEN_SOURCE 700   /* nftw */

#include "store/tz_store.h"
#include "tests/unit/tz_test.h"

#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#define TEST_DIR_MAX 256
#define TEST_PATH_MAX (TEST_DIR_MAX + 64)

/* Bounds of the test's own payload model (the real payloads are far smaller). */
#define MAXCH 64
#define MAXCOL 16
#define MAXNAME 32
#define MAXCOMMIT 8

/* Varints for the count cases: 2^64 - 1 in ten bytes, and a tenth byte past
 * 64 bits. */
#define HUGE10 "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"
#define OVER10 "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02"
/* The parent id of the missing-parent case. */
#define RANDOM_PARENT "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"

static const char SCHEMA[] =
	"CREATE TABLE person(id TEXT PRIMARY KEY, branch TEXT NOT NULL, name TEXT, age INTEGER,\n"
	"  score REAL, photo BLOB, notes TEXT);\n"
	"CREATE TABLE region(code TEXT PRIMARY KEY, name TEXT);\n"
	"INSERT INTO tz_track VALUES ('person', 'owned', 'branch'), ('region', 'shared', NULL);\n";

static const char ROWS[] =
	"INSERT INTO person VALUES\n"
	"  ('CAS01-1', 'CAS01', '\xd9\x85\xd8\xad\xd9\x85\xd8\xaf \xd8\xa8\xd9\x86 \xd8\xb9\xd9\x84\xd9\x8a', 34, 14.75,"
	"   x'89504e47', NULL),\n"
	"  ('CAS01-2', 'CAS01', 'Casablanca', -7, -0.5, x'', 'note'),\n"
	"  ('RAB02-1', 'RAB02', 'Rabat', 1, 1.0, NULL, NULL);\n"
	"INSERT INTO region VALUES ('CS', 'Casablanca-Settat'), ('RS', 'Rabat-Sale');\n";

/* The branch's two commits: patches and an insert, then a delete and a
 * patch of the shared table. */
static const char BRANCH1[] =
	"UPDATE person SET age = 35, notes = 'moved' WHERE id = 'CAS01-1';\n"
	"INSERT INTO person VALUES ('CAS01-3', 'CAS01', 'F\xc3\xa8s', 0, 2.5, x'00ff', 'new');\n";
static const char BRANCH2[] =
	"DELETE FROM person WHERE id = 'CAS01-2';\n"
	"UPDATE region SET name = 'Casablanca' WHERE code = 'CS';\n";

static char tmpdir[TEST_DIR_MAX];
static tz_store *hq, *fresh;
/* d_root: the enrolment snapshot as a delta payload (one root commit);
 * d_branch: the branch's export (two commits whose first parent is the
 * root); d_chain: both in one payload; d_child: the root and a crafted child
 * without changes. */
static tz_buf d_root = TZ_BUF_INIT, d_branch = TZ_BUF_INIT, d_chain = TZ_BUF_INIT, d_child = TZ_BUF_INIT;
static size_t branch_commits;

/* ---- helpers ---- */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static int sql_exec(const char *dir, const char *sql)
{
	char path[TEST_PATH_MAX];
	sqlite3 *db = NULL;
	char *err = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/store.db", dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		printf("# cannot open %s: %s\n", path, db ? sqlite3_errmsg(db) : "no memory");
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 10000);
	rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		printf("# sqlite: %s\n", err ? err : "?");
	sqlite3_free(err);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* The git object id of `type` with these bytes (SHA-1 of "type len\0" and
 * the bytes), computed independently of the store. */
static void git_hash(uint8_t out[20], const char *type, const void *p, size_t n)
{
	char hdr[64];
	int hl = snprintf(hdr, sizeof(hdr), "%s %zu", type, n) + 1;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int len = 0;

	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha1(), NULL) != 1 || EVP_DigestUpdate(c, hdr, (size_t)hl) != 1 ||
	    EVP_DigestUpdate(c, p, n) != 1 || EVP_DigestFinal_ex(c, out, &len) != 1 || len != 20)
		abort();
	EVP_MD_CTX_free(c);
}

static void hex_of(char out[41], const uint8_t id[20])
{
	for (int i = 0; i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static void buf_set(tz_buf *b, const void *p, size_t n)
{
	tz_buf_clear(b);
	tz_buf_put(b, p, n);
}

/* ---- the payload, modelled (an independent reading of the spec) ---- */

typedef struct {
	tz_buf path;
	uint8_t op;
	size_t nset, nrem;
	size_t set[MAXCOL], rem[MAXCOL];   /* name indexes, ascending */
	tz_buf val[MAXCOL];                 /* per set column: type byte and data */
	tz_buf blob;                        /* op 1 and 4 */
} pchange;

typedef struct {
	uint8_t id[20];
	tz_buf raw;
	size_t nch;
	pchange ch[MAXCH];
	size_t nnames;
	tz_buf name[MAXNAME];
} pcommit;

typedef struct {
	size_t n;
	pcommit c[MAXCOMMIT];
} pmodel;

/* Where the encoder put each section (byte offsets). */
typedef struct {
	size_t ncommits;
	size_t id[MAXCOMMIT], rawlen[MAXCOMMIT], raw[MAXCOMMIT], nch[MAXCOMMIT], ops[MAXCOMMIT];
	size_t nnames[MAXCOMMIT], names[MAXCOMMIT], shapes[MAXCOMMIT], values[MAXCOMMIT], blobs[MAXCOMMIT];
} playout;

static void change_release(pchange *c)
{
	tz_buf_release(&c->path);
	tz_buf_release(&c->blob);
	for (size_t j = 0; j < MAXCOL; j++)
		tz_buf_release(&c->val[j]);
	memset(c, 0, sizeof(*c));
}

static void model_free(pmodel *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < MAXCOMMIT; i++) {
		pcommit *c = &m->c[i];
		tz_buf_release(&c->raw);
		for (size_t k = 0; k < MAXCH; k++)
			change_release(&c->ch[k]);
		for (size_t k = 0; k < MAXNAME; k++)
			tz_buf_release(&c->name[k]);
	}
	free(m);
}

static int rd_value(tz_reader *r, tz_buf *out)
{
	const uint8_t *start = r->p, *b;
	uint8_t t;
	uint64_t v;

	if (tz_reader_u8(r, &t) < 0)
		return -1;
	switch (t) {
	case 1: if (tz_reader_varint(r, &v, UINT64_MAX) < 0) return -1; break;
	case 2: if (tz_reader_bytes(r, &b, 8) < 0) return -1; break;
	case 3:
	case 4: if (tz_reader_varint(r, &v, UINT64_MAX) < 0 || v > r->len || tz_reader_bytes(r, &b, v) < 0) return -1; break;
	case 5: break;
	default: return -1;
	}
	buf_set(out, start, (size_t)(r->p - start));
	return 0;
}

static int rd_indexes(tz_reader *r, size_t *ix, size_t *n)
{
	uint64_t cnt, d;

	if (tz_reader_varint(r, &cnt, MAXCOL) < 0)
		return -1;
	for (uint64_t i = 0; i < cnt; i++) {
		if (tz_reader_varint(r, &d, MAXNAME) < 0)
			return -1;
		ix[i] = i == 0 ? d : ix[i - 1] + d + 1;
	}
	*n = cnt;
	return 0;
}

/* NULL when the bytes are not a payload this model holds. */
static pmodel *parse(const uint8_t *p, size_t n)
{
	pmodel *m = calloc(1, sizeof(*m));
	tz_reader r;
	const uint8_t *b;
	uint64_t nc, v, k, sl;

	tz_reader_init(&r, p, n);
	if (m == NULL || tz_reader_bytes(&r, &b, 4) < 0 || memcmp(b, "TZD2", 4) != 0 ||
	    tz_reader_varint(&r, &nc, MAXCOMMIT) < 0)
		goto bad;
	m->n = nc;
	for (size_t ci = 0; ci < nc; ci++) {
		pcommit *c = &m->c[ci];
		if (tz_reader_bytes(&r, &b, 20) < 0)
			goto bad;
		memcpy(c->id, b, 20);
		if (tz_reader_varint(&r, &v, r.len) < 0 || tz_reader_bytes(&r, &b, v) < 0)
			goto bad;
		buf_set(&c->raw, b, v);
		if (tz_reader_varint(&r, &v, MAXCH) < 0)
			goto bad;
		c->nch = v;
		for (size_t i = 0; i < c->nch; i++) {
			const tz_buf *prev = i ? &c->ch[i - 1].path : NULL;
			if (tz_reader_varint(&r, &k, prev ? prev->len : 0) < 0 || tz_reader_varint(&r, &sl, r.len) < 0 ||
			    tz_reader_bytes(&r, &b, sl) < 0)
				goto bad;
			if (k)
				tz_buf_put(&c->ch[i].path, prev->data, k);
			tz_buf_put(&c->ch[i].path, b, sl);
		}
		for (size_t i = 0; i < c->nch; i++)
			if (tz_reader_u8(&r, &c->ch[i].op) < 0 || c->ch[i].op > 4)
				goto bad;
		if (tz_reader_varint(&r, &v, MAXNAME) < 0)
			goto bad;
		c->nnames = v;
		for (size_t i = 0; i < c->nnames; i++) {
			if (tz_reader_varint(&r, &v, r.len) < 0 || tz_reader_bytes(&r, &b, v) < 0)
				goto bad;
			buf_set(&c->name[i], b, v);
		}
		for (size_t i = 0; i < c->nch; i++) {
			pchange *ch = &c->ch[i];
			if (ch->op != 2 && ch->op != 3)
				continue;
			if (rd_indexes(&r, ch->set, &ch->nset) < 0 || (ch->op == 3 && rd_indexes(&r, ch->rem, &ch->nrem) < 0))
				goto bad;
		}
		for (size_t x = 0; x < c->nnames; x++)
			for (size_t i = 0; i < c->nch; i++)
				for (size_t j = 0; j < c->ch[i].nset; j++)
					if (c->ch[i].set[j] == x && rd_value(&r, &c->ch[i].val[j]) < 0)
						goto bad;
		for (size_t i = 0; i < c->nch; i++) {
			pchange *ch = &c->ch[i];
			if (ch->op != 1 && ch->op != 4)
				continue;
			if (tz_reader_varint(&r, &v, r.len) < 0 || tz_reader_bytes(&r, &b, v) < 0)
				goto bad;
			buf_set(&ch->blob, b, v);
		}
	}
	if (!tz_reader_done(&r))
		goto bad;
	return m;
bad:
	model_free(m);
	return NULL;
}

static void put_indexes(tz_buf *out, const size_t *ix, size_t n)
{
	tz_buf_varint(out, n);
	for (size_t i = 0; i < n; i++)
		tz_buf_varint(out, i == 0 ? ix[0] : ix[i] - ix[i - 1] - 1);
}

static void encode(const pmodel *m, tz_buf *out, playout *lay)
{
	playout dummy;

	if (lay == NULL)
		lay = &dummy;
	memset(lay, 0, sizeof(*lay));
	tz_buf_clear(out);
	tz_buf_put(out, "TZD2", 4);
	lay->ncommits = out->len;
	tz_buf_varint(out, m->n);
	for (size_t ci = 0; ci < m->n; ci++) {
		const pcommit *c = &m->c[ci];
		lay->id[ci] = out->len;
		tz_buf_put(out, c->id, 20);
		lay->rawlen[ci] = out->len;
		tz_buf_varint(out, c->raw.len);
		lay->raw[ci] = out->len;
		tz_buf_put(out, c->raw.data, c->raw.len);
		lay->nch[ci] = out->len;
		tz_buf_varint(out, c->nch);
		for (size_t i = 0; i < c->nch; i++) {
			const tz_buf *p = &c->ch[i].path, *prev = i ? &c->ch[i - 1].path : NULL;
			size_t k = 0;
			while (prev && k < p->len && k < prev->len && p->data[k] == prev->data[k])
				k++;
			tz_buf_varint(out, k);
			tz_buf_varint(out, p->len - k);
			tz_buf_put(out, p->data + k, p->len - k);
		}
		lay->ops[ci] = out->len;
		for (size_t i = 0; i < c->nch; i++)
			tz_buf_putc(out, c->ch[i].op);
		lay->nnames[ci] = out->len;
		tz_buf_varint(out, c->nnames);
		lay->names[ci] = out->len;
		for (size_t i = 0; i < c->nnames; i++) {
			tz_buf_varint(out, c->name[i].len);
			tz_buf_put(out, c->name[i].data, c->name[i].len);
		}
		lay->shapes[ci] = out->len;
		for (size_t i = 0; i < c->nch; i++) {
			const pchange *ch = &c->ch[i];
			if (ch->op != 2 && ch->op != 3)
				continue;
			put_indexes(out, ch->set, ch->nset);
			if (ch->op == 3)
				put_indexes(out, ch->rem, ch->nrem);
		}
		lay->values[ci] = out->len;
		for (size_t x = 0; x < c->nnames; x++)
			for (size_t i = 0; i < c->nch; i++)
				for (size_t j = 0; j < c->ch[i].nset; j++)
					if (c->ch[i].set[j] == x)
						tz_buf_put(out, c->ch[i].val[j].data, c->ch[i].val[j].len);
		lay->blobs[ci] = out->len;
		for (size_t i = 0; i < c->nch; i++) {
			const pchange *ch = &c->ch[i];
			if (ch->op != 1 && ch->op != 4)
				continue;
			tz_buf_varint(out, ch->blob.len);
			tz_buf_put(out, ch->blob.data, ch->blob.len);
		}
	}
	if (tz_buf_error(out) != TZ_OK)
		abort();
}

static pmodel *load(const tz_buf *b)
{
	pmodel *m = parse(b->data, b->len);

	if (m == NULL) {
		printf("Bail out! the test's own parser refuses a payload it made\n");
		exit(1);
	}
	return m;
}

static void emit(pmodel *m, tz_buf *out)
{
	encode(m, out, NULL);
	model_free(m);
}

static size_t find_path(const pcommit *c, const char *path)
{
	for (size_t i = 0; i < c->nch; i++)
		if (c->ch[i].path.len == strlen(path) && memcmp(c->ch[i].path.data, path, c->ch[i].path.len) == 0)
			return i;
	printf("Bail out! no change to '%s' in the payload\n", path);
	exit(1);
}

static size_t find_op(const pcommit *c, uint8_t op)
{
	for (size_t i = 0; i < c->nch; i++)
		if (c->ch[i].op == op)
			return i;
	printf("Bail out! no change with op %u in the payload\n", op);
	exit(1);
}

static size_t find_name(const pcommit *c, const char *name)
{
	for (size_t i = 0; i < c->nnames; i++)
		if (c->name[i].len == strlen(name) && memcmp(c->name[i].data, name, c->name[i].len) == 0)
			return i;
	printf("Bail out! no column '%s' in the payload\n", name);
	exit(1);
}

/* The change that sets column `name` of a row, and the slot of it. */
static pchange *find_value(pcommit *c, const char *name, uint8_t type, size_t *slot)
{
	size_t x = find_name(c, name);

	for (size_t i = 0; i < c->nch; i++)
		for (size_t j = 0; j < c->ch[i].nset; j++)
			if (c->ch[i].set[j] == x && c->ch[i].val[j].data[0] == type) {
				*slot = j;
				return &c->ch[i];
			}
	printf("Bail out! no value of column '%s'\n", name);
	exit(1);
}

static void set_path(pchange *ch, const char *p, size_t n)
{
	buf_set(&ch->path, p, n);
}

/* A copy of change i inserted at i + 1. */
static void dup_change(pcommit *c, size_t i)
{
	pchange *src = &c->ch[i], *dst;

	memmove(&c->ch[i + 2], &c->ch[i + 1], (c->nch - i - 1) * sizeof(*c->ch));
	dst = &c->ch[i + 1];
	memset(dst, 0, sizeof(*dst));
	c->nch++;
	tz_buf_put(&dst->path, src->path.data, src->path.len);
	dst->op = src->op;
	dst->nset = src->nset;
	dst->nrem = src->nrem;
	memcpy(dst->set, src->set, sizeof(dst->set));
	memcpy(dst->rem, src->rem, sizeof(dst->rem));
	for (size_t j = 0; j < src->nset; j++)
		tz_buf_put(&dst->val[j], src->val[j].data, src->val[j].len);
	tz_buf_put(&dst->blob, src->blob.data, src->blob.len);
}

/* A new change at i (op 1, a blob). */
static void insert_blob(pcommit *c, size_t i, const char *path, const char *blob)
{
	pchange *ch;

	memmove(&c->ch[i + 1], &c->ch[i], (c->nch - i) * sizeof(*c->ch));
	ch = &c->ch[i];
	memset(ch, 0, sizeof(*ch));
	c->nch++;
	tz_buf_puts(&ch->path, path);
	ch->op = 1;
	tz_buf_puts(&ch->blob, blob);
}

static void swap_changes(pcommit *c, size_t a, size_t b)
{
	pchange t = c->ch[a];

	c->ch[a] = c->ch[b];
	c->ch[b] = t;
}

/* A commit's raw bytes replaced, and its id made to match them. */
static void set_raw(pcommit *c, const void *raw, size_t n)
{
	buf_set(&c->raw, raw, n);
	git_hash(c->id, "commit", c->raw.data, c->raw.len);
}

/* The raw commit with `line` inserted after the tree line. */
static void insert_header(pcommit *c, const char *line)
{
	tz_buf b = TZ_BUF_INIT;

	tz_buf_put(&b, c->raw.data, 46);
	tz_buf_puts(&b, line);
	tz_buf_put(&b, c->raw.data + 46, c->raw.len - 46);
	set_raw(c, b.data, b.len);
	tz_buf_release(&b);
}

/* src with the varint at off replaced by n bytes. */
static void replace_varint(tz_buf *out, const tz_buf *src, size_t off, const char *bytes, size_t n)
{
	size_t old = 1;

	while (src->data[off + old - 1] & 0x80)
		old++;
	tz_buf_clear(out);
	tz_buf_put(out, src->data, off);
	tz_buf_put(out, bytes, n);
	tz_buf_put(out, src->data + off + old, src->len - off - old);
}

/* The one-byte varint at off in its two-byte, non-shortest form. */
static void nonshortest(tz_buf *out, const tz_buf *src, size_t off)
{
	char two[2];

	if (src->data[off] & 0x80)
		abort();
	two[0] = (char)(src->data[off] | 0x80);
	two[1] = 0;
	replace_varint(out, src, off, two, 2);
}

static void splice_byte(tz_buf *out, const tz_buf *src, size_t off, uint8_t byte)
{
	buf_set(out, src->data, src->len);
	out->data[off] = byte;
}

/* ---- checking ---- */

static int check_payload(tz_store *s, const tz_buf *p, int code, const char *msg, size_t want, const char *what)
{
	size_t n = 12345;
	int rc;

	tz_error_clear();
	rc = tz_store_payload_check(s, p->data ? p->data : (const uint8_t *)"", p->len, &n);
	if (code == TZ_OK)
		return CHECK(rc == TZ_OK && n == want, "%s: accepted, %zu commits (got %s %zu%s%s)", what, want,
			     rc == TZ_OK ? "OK" : tz_error_name(rc), n, rc == TZ_OK ? "" : ": ",
			     rc == TZ_OK ? "" : tz_error_last());
	return CHECK(rc == code && n == 0 && strstr(tz_error_last(), msg) != NULL,
		     "%s: %s '%s' (got %s: %s)", what, tz_error_name(code), msg,
		     rc == TZ_OK ? "OK" : tz_error_name(rc), tz_error_last());
}

/* ---- the stores and the real payloads ---- */

static int strip_enrolment(tz_buf *out, const tz_buf *e)
{
	size_t off = 4;

	if (e->len < 4 || memcmp(e->data, "TZE1", 4) != 0)
		return -1;
	off += 1 + e->data[off];         /* u8(2) "HQ" */
	off += 32 + 16;                  /* pk, instance */
	if (off >= e->len)
		return -1;
	off += 1 + e->data[off];         /* u8(len) code */
	off += 32;                       /* secret */
	if (off >= e->len || e->data[off] != 0)   /* varint(dict_len) = 0 */
		return -1;
	off++;
	if (off + 4 > e->len || memcmp(e->data + off, "TZD2", 4) != 0)
		return -1;
	buf_set(out, e->data + off, e->len - off);
	return 0;
}

static int make_stores(void)
{
	char dir[TEST_PATH_MAX], bdir[TEST_PATH_MAX];
	tz_buf enrol = TZ_BUF_INIT;
	tz_commit_result cr;
	tz_outgoing out;
	tz_store *br = NULL;
	pmodel *a, *b;
	int ok = 0;

	snprintf(dir, sizeof(dir), "%s/hq", tmpdir);
	ok = tz_store_init(dir, "HQ") == TZ_OK && tz_store_open(&hq, dir) == TZ_OK &&
	     tz_store_schema_apply(hq, SCHEMA, "schema.sql", &cr) == TZ_OK && sql_exec(dir, ROWS) == 0 &&
	     tz_store_commit(hq, "rows", &cr) == TZ_OK && cr.committed;
	if (!CHECK(ok, "an HQ store with a schema and rows (%s)", tz_error_last()))
		return -1;
	ok = tz_store_branch_add(hq, "CAS01", &enrol) == TZ_OK && strip_enrolment(&d_root, &enrol) == 0;
	if (!CHECK(ok, "branch add CAS01: an enrolment payload of %zu bytes, its delta payload %zu (%s)", enrol.len,
		   d_root.len, tz_error_last()))
		goto done;
	snprintf(dir, sizeof(dir), "%s/fresh", tmpdir);
	ok = tz_store_init(dir, "HQ") == TZ_OK && tz_store_open(&fresh, dir) == TZ_OK;
	if (!CHECK(ok, "a fresh, empty store (%s)", tz_error_last()))
		goto done;
	snprintf(bdir, sizeof(bdir), "%s/cas01", tmpdir);
	memset(&out, 0, sizeof(out));
	ok = tz_store_init_branch(bdir, enrol.data, enrol.len, NULL, NULL) == TZ_OK && tz_store_open(&br, bdir) == TZ_OK &&
	     sql_exec(bdir, BRANCH1) == 0 && tz_store_commit(br, "one", &cr) == TZ_OK && cr.committed &&
	     sql_exec(bdir, BRANCH2) == 0 && tz_store_commit(br, "two", &cr) == TZ_OK && cr.committed &&
	     tz_store_export(br, NULL, &out) == TZ_OK;
	if (ok) {
		buf_set(&d_branch, out.payload.data, out.payload.len);
		branch_commits = out.ncommits;
	}
	tz_outgoing_release(&out);
	tz_store_close(br);
	if (!CHECK(ok && branch_commits == 2, "a branch enrolled from it exports %zu commits in %zu bytes (%s)",
		   branch_commits, d_branch.len, tz_error_last()))
		goto done;
	/* the chain: the root commit, then the branch's */
	a = load(&d_root);
	b = load(&d_branch);
	for (size_t i = 0; i < b->n; i++) {
		a->c[a->n++] = b->c[i];
		memset(&b->c[i], 0, sizeof(b->c[i]));
	}
	model_free(b);
	emit(a, &d_chain);
	/* the child: the root and a commit of the same tree without changes */
	{
		char tree[41], parent[41], raw[512];
		a = load(&d_root);
		memcpy(tree, a->c[0].raw.data + 5, 40);
		tree[40] = '\0';
		hex_of(parent, a->c[0].id);
		snprintf(raw, sizeof(raw),
			 "tree %s\nparent %s\nauthor CAS01 <CAS01@tazamun> 1795424730 +0000\n"
			 "committer CAS01 <CAS01@tazamun> 1795424730 +0000\n\nnothing changed\n", tree, parent);
		a->n = 2;
		set_raw(&a->c[1], raw, strlen(raw));
		emit(a, &d_child);
	}
	ok = 1;
done:
	tz_buf_release(&enrol);
	return ok ? 0 : -1;
}

/* ---- valid payloads ---- */

static void test_valid(void)
{
	static const uint8_t empty[] = { 'T', 'Z', 'D', '2', 0 };
	tz_buf e = TZ_BUF_INIT, again = TZ_BUF_INIT;
	pmodel *m;
	int ops[5] = { 0 }, refs = 0;

	tz_buf_put(&e, empty, sizeof(empty));
	check_payload(hq, &d_root, TZ_OK, NULL, 1, "the enrolment snapshot at HQ");
	check_payload(fresh, &d_root, TZ_OK, NULL, 1, "the enrolment snapshot on an empty store (a root needs nothing)");
	check_payload(hq, &d_branch, TZ_OK, NULL, 2, "the branch's export at HQ (which holds its parent)");
	check_payload(fresh, &d_branch, TZ_ENOTFOUND, "missing prerequisite: commit ",
		      0, "the branch's export on an empty store");
	check_payload(fresh, &d_chain, TZ_OK, NULL, 3, "the snapshot and the branch's commits in one payload");
	check_payload(fresh, &d_child, TZ_OK, NULL, 2, "the snapshot and a child without changes");
	check_payload(fresh, &e, TZ_OK, NULL, 0, "a payload of no commit");
	/* nothing of a check stays behind */
	check_payload(fresh, &d_branch, TZ_ENOTFOUND, "missing prerequisite: commit ", 0,
		      "the export again on the empty store after checking the chain there (nothing written)");

	/* the test's own model reads and writes the real payloads byte for byte */
	m = load(&d_chain);
	for (size_t c = 0; c < m->n; c++)
		for (size_t i = 0; i < m->c[c].nch; i++) {
			const pchange *ch = &m->c[c].ch[i];
			ops[ch->op]++;
			/* a transcoded log's key references: non-zero bytes after the tables */
			if (ch->op == 4 && ch->blob.len > 2 && ch->blob.data[0] > 0)
				refs++;
		}
	encode(m, &again, NULL);
	model_free(m);
	CHECK(again.len == d_chain.len && memcmp(again.data, d_chain.data, again.len) == 0,
	      "the test's model re-encodes the chain byte for byte (%zu bytes)", d_chain.len);
	CHECK(ops[0] && ops[1] && ops[2] && ops[3] && ops[4] && refs,
	      "the chain has every op: delete %d, blob %d, row %d, patch %d, log %d (%d with lines)", ops[0], ops[1],
	      ops[2], ops[3], ops[4], refs);
	tz_buf_release(&e);
	tz_buf_release(&again);
}

/* ---- sweeps ---- */

static void sweep_truncations(const tz_buf *p, const char *what)
{
	tz_buf t = TZ_BUF_INIT;
	size_t bad = 0, n;
	double t0 = now();
	int rc;

	for (size_t len = 0; len < p->len; len++) {
		buf_set(&t, p->data, len);
		tz_error_clear();
		rc = tz_store_payload_check(fresh, t.data, t.len, &n);
		if (rc != TZ_ECORRUPT || n != 0 || strncmp(tz_error_last(), "payload: ", 9) != 0) {
			if (bad++ < 10)
				printf("# %s cut to %zu of %zu bytes: %s '%s'\n", what, len, p->len,
				       rc == TZ_OK ? "OK" : tz_error_name(rc), tz_error_last());
		}
	}
	CHECK(bad == 0, "%s: each of its %zu truncations refused with ECORRUPT 'payload: ...' (%zu not; %.2f s)",
	      what, p->len, bad, now() - t0);
	tz_buf_release(&t);
}

/* Every byte of commit `ci`'s id and object flipped (xor 1), each refused
 * with the code its position predicts. */
static void sweep_commit_bytes(const tz_buf *p, size_t ci, const char *what)
{
	tz_buf t = TZ_BUF_INIT;
	playout lay;
	pmodel *m = load(p);
	size_t bad = 0, total = 0, n, rawlen, np = 0;
	double t0 = now();

	encode(m, &t, &lay);
	rawlen = m->c[ci].raw.len;
	while (46 + 48 * (np + 1) <= rawlen && memcmp(m->c[ci].raw.data + 46 + 48 * np, "parent ", 7) == 0)
		np++;
	model_free(m);
	for (size_t off = lay.id[ci]; off < lay.raw[ci] + rawlen; off++) {
		int code = TZ_EVERIFY, rc;
		const char *msg = "its bytes hash to another id";
		size_t r = off - lay.raw[ci];
		uint8_t c = (uint8_t)(p->data[off] ^ 1);
		bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');

		if (off < lay.rawlen[ci]) {
			/* the declared id */
		} else if (off < lay.raw[ci]) {
			continue;   /* the length */
		} else if (r < 5 || r == 45) {
			code = TZ_ECORRUPT, msg = "commit object does not start with its tree";
		} else if (r < 45) {
			code = hex ? TZ_EVERIFY : TZ_ECORRUPT;
			msg = hex ? "is not the tree the commit names" : "commit object: bad tree id";
		} else if (r < 46 + 48 * np) {
			size_t q = (r - 46) % 48;
			if (q < 7 || q == 47)
				code = TZ_ECORRUPT, msg = "commit object: no author after the parents";
			else if (hex)
				code = TZ_ENOTFOUND, msg = "missing prerequisite: commit ";
			else
				code = TZ_ECORRUPT, msg = "commit object: bad parent id";
		} else if (r < 46 + 48 * np + 7) {
			code = TZ_ECORRUPT, msg = "commit object: no author after the parents";
		}
		splice_byte(&t, p, off, c);
		tz_error_clear();
		rc = tz_store_payload_check(fresh, t.data, t.len, &n);
		total++;
		if (rc != code || strstr(tz_error_last(), msg) == NULL) {
			if (bad++ < 10)
				printf("# %s: byte %zu flipped: want %s '%s', got %s '%s'\n", what, off,
				       tz_error_name(code), msg, rc == TZ_OK ? "OK" : tz_error_name(rc), tz_error_last());
		}
	}
	CHECK(bad == 0, "%s: each of %zu bytes of the commit's id and object flipped, refused as predicted "
	      "(%zu not; %.2f s)", what, total, bad, now() - t0);
	tz_buf_release(&t);
}

/* ---- the refusal cases (also the fuzz target's reject corpus) ---- */

static playout lay_root, lay_chain;

static void c_empty(tz_buf *o) { tz_buf_clear(o); }
static void c_magic(tz_buf *o) { splice_byte(o, &d_root, 3, '1'); }
static void c_trailing(tz_buf *o) { buf_set(o, d_root.data, d_root.len); tz_buf_putc(o, 0); }
/* long enough for the commit count (a commit takes at least 70 bytes) */
static void c_cut_commit(tz_buf *o) { buf_set(o, d_root.data, lay_root.raw[0] + 100); }
/* in the last path (earlier, the change count is past what remains) */
static void c_cut_paths(tz_buf *o) { buf_set(o, d_root.data, lay_root.ops[0] - 1); }
static void c_cut_values(tz_buf *o) { buf_set(o, d_root.data, lay_root.values[0]); }
static void c_cut_blob(tz_buf *o) { buf_set(o, d_root.data, d_root.len - 1); }
static void c_ncommits_nonshortest(tz_buf *o) { nonshortest(o, &d_root, lay_root.ncommits); }
static void c_ncommits_huge(tz_buf *o) { replace_varint(o, &d_root, lay_root.ncommits, HUGE10, 10); }
static void c_ncommits_over(tz_buf *o) { replace_varint(o, &d_root, lay_root.ncommits, OVER10, 10); }
static void c_ncommits_two(tz_buf *o) { replace_varint(o, &d_root, lay_root.ncommits, "\x02", 1); }
static void c_rawlen_huge(tz_buf *o) { replace_varint(o, &d_root, lay_root.rawlen[0], HUGE10, 10); }
/* 1 MiB + 1: past the commit object's limit */
static void c_rawlen_limit(tz_buf *o) { replace_varint(o, &d_root, lay_root.rawlen[0], "\x81\x80\x40", 3); }
static void c_nch_huge(tz_buf *o) { replace_varint(o, &d_root, lay_root.nch[0], HUGE10, 10); }
static void c_nch_nonshortest(tz_buf *o) { nonshortest(o, &d_root, lay_root.nch[0]); }
static void c_nnames_huge(tz_buf *o) { replace_varint(o, &d_root, lay_root.nnames[0], HUGE10, 10); }
static void c_nnames_nonshortest(tz_buf *o) { nonshortest(o, &d_root, lay_root.nnames[0]); }
static void c_name_empty(tz_buf *o) { replace_varint(o, &d_root, lay_root.names[0], "\x00", 1); }
static void c_name_long(tz_buf *o) { replace_varint(o, &d_root, lay_root.names[0], "\x81\x08", 2); }
static void c_ncols_huge(tz_buf *o) { replace_varint(o, &d_root, lay_root.shapes[0], HUGE10, 10); }
static void c_vtype_zero(tz_buf *o) { splice_byte(o, &d_root, lay_root.values[0], 0); }
static void c_vtype_six(tz_buf *o) { splice_byte(o, &d_root, lay_root.values[0], 6); }
static void c_bloblen_huge(tz_buf *o) { replace_varint(o, &d_root, lay_root.blobs[0], HUGE10, 10); }

/* change 0 (_log) renamed */
static void path0(tz_buf *o, const char *p, size_t n)
{
	pmodel *m = load(&d_root);

	set_path(&m->c[0].ch[0], p, n);
	emit(m, o);
}
static void c_path_dotdot(tz_buf *o) { path0(o, "_log/..", 7); }
static void c_path_dot(tz_buf *o) { path0(o, "_log/.", 6); }
static void c_path_dotgit(tz_buf *o) { path0(o, "_log/.GiT", 9); }
static void c_path_empty_comp(tz_buf *o) { path0(o, "_log//x", 7); }
static void c_path_trailing_slash(tz_buf *o) { path0(o, "_log/", 5); }
static void c_path_leading_slash(tz_buf *o) { path0(o, "/_log", 5); }
static void c_path_empty(tz_buf *o) { path0(o, "", 0); }
static void c_path_nul(tz_buf *o) { path0(o, "_l\0g", 4); }
static void c_path_deep(tz_buf *o) { path0(o, "_a/b/c/d/e/f", 12); }
static void c_row_path_one(tz_buf *o) { path0(o, "person", 6); }
static void c_row_path_two(tz_buf *o) { path0(o, "person/CAS01", 12); }
static void c_row_path_four(tz_buf *o) { path0(o, "person/CAS01/a/b", 16); }
static void c_row_key_dotdot(tz_buf *o) { path0(o, "person/CAS01/..", 15); }

static void c_path_long_comp(tz_buf *o)
{
	char p[5 + 4097];

	memcpy(p, "_log/", 5);
	memset(p + 5, 'x', 4097);
	path0(o, p, sizeof(p));
}

static void c_path_too_long(tz_buf *o)
{
	static char p[3 * 4096 + 3];

	memset(p, 'x', sizeof(p));
	p[0] = '_';
	p[4000] = p[8000] = '/';
	path0(o, p, sizeof(p));
}

static void c_order_shorter(tz_buf *o)
{
	pmodel *m = load(&d_root);

	swap_changes(&m->c[0], find_path(&m->c[0], "_log"), find_path(&m->c[0], "_schema/tables/person.sql"));
	emit(m, o);
}

/* "_schema/version" before the longer and smaller "_schema/tz_track/region" */
static void c_order_longer(tz_buf *o)
{
	pmodel *m = load(&d_root);

	swap_changes(&m->c[0], find_path(&m->c[0], "_schema/tz_track/region"), find_path(&m->c[0], "_schema/version"));
	emit(m, o);
}

static void c_path_twice(tz_buf *o)
{
	pmodel *m = load(&d_root);

	dup_change(&m->c[0], find_path(&m->c[0], "_schema/version"));
	emit(m, o);
}

static void set_op(tz_buf *o, const char *path, uint8_t op)
{
	pmodel *m = load(&d_root);

	m->c[0].ch[find_path(&m->c[0], path)].op = op;
	emit(m, o);
}
static void c_op_five(tz_buf *o) { set_op(o, "_schema/version", 5); }
static void c_op_ff(tz_buf *o) { set_op(o, "_schema/version", 0xff); }
static void c_op_row_on_file(tz_buf *o) { set_op(o, "_schema/version", 2); }
static void c_op_log_on_file(tz_buf *o) { set_op(o, "_schema/version", 4); }
static void c_op_log_on_row(tz_buf *o) { set_op(o, "region/_shared/CS", 4); }
static void c_delete_in_root(tz_buf *o) { set_op(o, "_schema/version", 0); }

static void c_col_past_names(tz_buf *o)
{
	pmodel *m = load(&d_root);
	pchange *ch = &m->c[0].ch[find_op(&m->c[0], 2)];

	ch->set[ch->nset - 1] = m->c[0].nnames;
	emit(m, o);
}

static void c_patch_in_root(tz_buf *o)
{
	pmodel *m = load(&d_root);

	m->c[0].ch[find_path(&m->c[0], "region/_shared/CS")].op = 3;
	emit(m, o);
}

/* in the chain, the branch's first patch also removes a column "zzz" */
static void c_patch_removes_absent(tz_buf *o)
{
	pmodel *m = load(&d_chain);
	pcommit *c = &m->c[1];
	pchange *ch = &c->ch[find_op(c, 3)];

	tz_buf_puts(&c->name[c->nnames], "zzz");
	ch->rem[ch->nrem++] = c->nnames++;
	emit(m, o);
}

static void c_file_and_dir(tz_buf *o)
{
	pmodel *m = load(&d_root);

	insert_blob(&m->c[0], find_path(&m->c[0], "_log") + 1, "_log/x", "x");
	emit(m, o);
}

/* the name "age" twice in the dictionary, a row setting both to its value
 * (a column set twice, which no row can be) */
static void c_dup_names(tz_buf *o)
{
	pmodel *m = load(&d_root);
	pcommit *c = &m->c[0];
	size_t a = find_name(c, "age"), slot;
	pchange *ch = find_value(c, "age", 1, &slot);

	memmove(&c->name[a + 2], &c->name[a + 1], (c->nnames - a - 1) * sizeof(*c->name));
	memset(&c->name[a + 1], 0, sizeof(c->name[a + 1]));
	tz_buf_puts(&c->name[a + 1], "age");
	c->nnames++;
	for (size_t i = 0; i < c->nch; i++) {
		for (size_t j = 0; j < c->ch[i].nset; j++)
			c->ch[i].set[j] += c->ch[i].set[j] > a;
		for (size_t j = 0; j < c->ch[i].nrem; j++)
			c->ch[i].rem[j] += c->ch[i].rem[j] > a;
	}
	/* the second "age" right after the first in the row's set */
	memmove(&ch->set[slot + 2], &ch->set[slot + 1], (ch->nset - slot - 1) * sizeof(*ch->set));
	memmove(&ch->val[slot + 2], &ch->val[slot + 1], (ch->nset - slot - 1) * sizeof(*ch->val));
	memset(&ch->val[slot + 1], 0, sizeof(ch->val[slot + 1]));
	ch->set[slot + 1] = a + 1;
	tz_buf_put(&ch->val[slot + 1], ch->val[slot].data, ch->val[slot].len);
	ch->nset++;
	emit(m, o);
}

static void c_nan(tz_buf *o)
{
	static const uint8_t nan[9] = { 2, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f };
	pmodel *m = load(&d_root);
	size_t slot;
	pchange *ch = find_value(&m->c[0], "score", 2, &slot);

	buf_set(&ch->val[slot], nan, sizeof(nan));
	emit(m, o);
}

static void c_text_len_huge(tz_buf *o)
{
	pmodel *m = load(&d_root);
	size_t slot;
	pchange *ch = find_value(&m->c[0], "name", 3, &slot);

	buf_set(&ch->val[slot], "\x03" HUGE10, 11);
	emit(m, o);
}

static void c_text_changed(tz_buf *o)
{
	pmodel *m = load(&d_root);
	size_t slot;
	pchange *ch = find_value(&m->c[0], "notes", 3, &slot);

	ch->val[slot].data[2] ^= 1;   /* 'n' of "note" */
	emit(m, o);
}

static void c_int_changed(tz_buf *o)
{
	pmodel *m = load(&d_root);
	size_t slot;
	pchange *ch = find_value(&m->c[0], "age", 1, &slot);

	ch->val[slot].data[1] ^= 2;
	emit(m, o);
}

static void set_log(tz_buf *o, const void *p, size_t n)
{
	pmodel *m = load(&d_root);

	buf_set(&m->c[0].ch[find_path(&m->c[0], "_log")].blob, p, n);
	emit(m, o);
}
#define LOG(s) set_log(o, s, sizeof(s) - 1)
static void c_log_counts(tz_buf *o) { LOG(HUGE10 "\x00"); }
static void c_log_table(tz_buf *o) { LOG("\x01\x01\x02.."); }
static void c_log_clock(tz_buf *o) { LOG("\x02\x01\x03sss\x00"); }
static void c_log_ops(tz_buf *o) { LOG("\x01\x01\x01s\x00"); }
static void c_log_op(tz_buf *o) { LOG("\x01\x01\x01s\x05x\x00\x00\x01k"); }
static void c_log_ref(tz_buf *o) { LOG("\x01\x01\x01s\x05i\x00\x01"); }
static void c_log_key(tz_buf *o) { LOG("\x01\x01\x01s\x05i\x00\x00\x02k "); }
static void c_log_trailing(tz_buf *o) { LOG("\x00\x00\x00"); }
static void c_log_no_tables(tz_buf *o) { LOG("\x01\x00\x05i\x00\x00\x01k"); }
static void c_log_other(tz_buf *o) { LOG("\x01\x01\x01s\x05i\x00\x00\x01k"); }

static void commit_edit(tz_buf *o, size_t off, uint8_t xor, bool fix_id)
{
	pmodel *m = load(&d_root);
	pcommit *c = &m->c[0];

	c->raw.data[off] ^= xor;
	if (fix_id)
		git_hash(c->id, "commit", c->raw.data, c->raw.len);
	emit(m, o);
}
static void c_commit_prefix(tz_buf *o) { commit_edit(o, 0, 0x20, true); }
static void c_commit_no_author(tz_buf *o) { commit_edit(o, 46, 0x20, true); }

static void c_commit_tree_nonhex(tz_buf *o)
{
	pmodel *m = load(&d_root);
	pcommit *c = &m->c[0];

	c->raw.data[5] = 'g';
	git_hash(c->id, "commit", c->raw.data, c->raw.len);
	emit(m, o);
}

static void c_commit_tree_other(tz_buf *o)
{
	pmodel *m = load(&d_root);
	pcommit *c = &m->c[0];

	c->raw.data[44] = c->raw.data[44] == '0' ? '1' : '0';
	git_hash(c->id, "commit", c->raw.data, c->raw.len);
	emit(m, o);
}

static void c_commit_message(tz_buf *o)
{
	pmodel *m = load(&d_root);

	m->c[0].raw.data[m->c[0].raw.len - 2] ^= 1;
	emit(m, o);
}

static void c_commit_id(tz_buf *o)
{
	pmodel *m = load(&d_root);

	m->c[0].id[0] ^= 1;
	emit(m, o);
}

static void c_commit_short(tz_buf *o)
{
	pmodel *m = load(&d_root);

	set_raw(&m->c[0], m->c[0].raw.data, 10);
	emit(m, o);
}

static void c_too_many_parents(tz_buf *o)
{
	pmodel *m = load(&d_root);

	for (int i = 0; i < 9; i++)
		insert_header(&m->c[0], "parent " RANDOM_PARENT "\n");
	emit(m, o);
}

static void c_parent_nonhex(tz_buf *o)
{
	pmodel *m = load(&d_root);

	insert_header(&m->c[0], "parent 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5A5A\n");
	emit(m, o);
}

static void c_missing_parent(tz_buf *o)
{
	pmodel *m = load(&d_root);

	insert_header(&m->c[0], "parent " RANDOM_PARENT "\n");
	emit(m, o);
}

static void c_missing_parent_real(tz_buf *o) { buf_set(o, d_branch.data, d_branch.len); }

static void c_child_first(tz_buf *o)
{
	pmodel *m = load(&d_chain);
	pcommit *t = malloc(sizeof(*t));

	if (t == NULL)
		abort();
	*t = m->c[0];
	m->c[0] = m->c[1];
	m->c[1] = *t;
	free(t);
	emit(m, o);
}

/* the child's parent is the id of a blob staged by the root commit */
static void c_parent_is_blob(tz_buf *o)
{
	pmodel *m = load(&d_child);
	const pchange *v = &m->c[0].ch[find_path(&m->c[0], "_schema/version")];
	uint8_t id[20];
	char hex[41];

	git_hash(id, "blob", v->blob.data, v->blob.len);
	hex_of(hex, id);
	memcpy(m->c[1].raw.data + 46 + 7, hex, 40);
	git_hash(m->c[1].id, "commit", m->c[1].raw.data, m->c[1].raw.len);
	emit(m, o);
}

/* the names dictionary out of order: "age" and "branch" swapped, the
 * indexes with them (the rows are the same) */
static void c_names_unsorted(tz_buf *o)
{
	pmodel *m = load(&d_root);
	pcommit *c = &m->c[0];
	size_t a = find_name(c, "age"), b = find_name(c, "branch");
	tz_buf t = c->name[a];

	c->name[a] = c->name[b];
	c->name[b] = t;
	for (size_t i = 0; i < c->nch; i++) {
		pchange *ch = &c->ch[i];
		for (size_t j = 0; j < ch->nset; j++)
			ch->set[j] = ch->set[j] == a ? b : ch->set[j] == b ? a : ch->set[j];
		/* keep the set ascending, each value with its column */
		for (size_t j = 1; j < ch->nset; j++)
			for (size_t k = j; k > 0 && ch->set[k - 1] > ch->set[k]; k--) {
				size_t x = ch->set[k];
				tz_buf v = ch->val[k];
				ch->set[k] = ch->set[k - 1];
				ch->set[k - 1] = x;
				ch->val[k] = ch->val[k - 1];
				ch->val[k - 1] = v;
			}
	}
	emit(m, o);
}

typedef struct {
	const char *name;
	void (*build)(tz_buf *out);
	int code;
	const char *msg;
} pcase;

static const pcase cases[] = {
	/* framing and counts */
	{ "empty", c_empty, TZ_ECORRUPT, "payload: not a Tazamun delta payload" },
	{ "magic", c_magic, TZ_ECORRUPT, "payload: not a Tazamun delta payload" },
	{ "trailing-byte", c_trailing, TZ_ECORRUPT, "payload: trailing bytes" },
	{ "cut-in-commit", c_cut_commit, TZ_ECORRUPT, "payload: truncated commit" },
	{ "cut-in-paths", c_cut_paths, TZ_ECORRUPT, "payload: bad change path" },
	{ "cut-before-values", c_cut_values, TZ_ECORRUPT, "payload: bad value type" },
	{ "cut-in-blob", c_cut_blob, TZ_ECORRUPT, "payload: truncated blob" },
	{ "commit-count-nonshortest", c_ncommits_nonshortest, TZ_ECORRUPT, "payload: bad commit count" },
	{ "commit-count-huge", c_ncommits_huge, TZ_ECORRUPT, "payload: bad commit count" },
	{ "commit-count-past-64-bits", c_ncommits_over, TZ_ECORRUPT, "payload: bad commit count" },
	{ "commit-count-two-of-one", c_ncommits_two, TZ_ECORRUPT, "payload: truncated commit" },
	{ "commit-length-huge", c_rawlen_huge, TZ_ECORRUPT, "payload: truncated commit" },
	{ "commit-length-past-limit", c_rawlen_limit, TZ_ECORRUPT, "payload: truncated commit" },
	{ "change-count-huge", c_nch_huge, TZ_ECORRUPT, "payload: bad change count" },
	{ "change-count-nonshortest", c_nch_nonshortest, TZ_ECORRUPT, "payload: bad change count" },
	{ "name-count-huge", c_nnames_huge, TZ_ECORRUPT, "payload: bad name count" },
	{ "name-count-nonshortest", c_nnames_nonshortest, TZ_ECORRUPT, "payload: bad name count" },
	{ "name-empty", c_name_empty, TZ_ECORRUPT, "payload: bad column name" },
	{ "name-past-limit", c_name_long, TZ_ECORRUPT, "payload: bad column name" },
	{ "column-count-huge", c_ncols_huge, TZ_ECORRUPT, "payload: bad column count" },
	{ "column-past-names", c_col_past_names, TZ_ECORRUPT, "payload: column index past the names" },
	{ "value-type-zero", c_vtype_zero, TZ_ECORRUPT, "payload: bad value type" },
	{ "value-type-six", c_vtype_six, TZ_ECORRUPT, "payload: bad value type" },
	{ "text-length-huge", c_text_len_huge, TZ_ECORRUPT, "payload: truncated text or blob" },
	{ "blob-length-huge", c_bloblen_huge, TZ_ECORRUPT, "payload: truncated blob" },
	/* paths */
	{ "path-dotdot", c_path_dotdot, TZ_ECORRUPT, "payload: a path that is not a tree path" },
	{ "path-dot", c_path_dot, TZ_ECORRUPT, "payload: a path that is not a tree path" },
	{ "path-dotgit", c_path_dotgit, TZ_ECORRUPT, "payload: a path that is not a tree path" },
	{ "path-empty-component", c_path_empty_comp, TZ_ECORRUPT, "payload: a path that is not a tree path" },
	{ "path-trailing-slash", c_path_trailing_slash, TZ_ECORRUPT, "payload: a path that is not a tree path" },
	{ "path-leading-slash", c_path_leading_slash, TZ_ECORRUPT, "payload: a path that is not a tree path" },
	{ "path-empty", c_path_empty, TZ_ECORRUPT, "payload: a path that is not a tree path" },
	{ "path-nul", c_path_nul, TZ_ECORRUPT, "payload: a path that is not a tree path" },
	{ "path-too-deep", c_path_deep, TZ_ECORRUPT, "payload: a path that is not a tree path" },
	{ "path-component-past-limit", c_path_long_comp, TZ_ECORRUPT, "payload: a path that is not a tree path" },
	{ "path-past-limit", c_path_too_long, TZ_ECORRUPT, "payload: bad change path" },
	{ "row-key-dotdot", c_row_key_dotdot, TZ_ECORRUPT, "payload: a path that is not a tree path" },
	{ "row-path-one", c_row_path_one, TZ_ECORRUPT, "payload: a row path without table, partition and key" },
	{ "row-path-two", c_row_path_two, TZ_ECORRUPT, "payload: a row path without table, partition and key" },
	{ "row-path-four", c_row_path_four, TZ_ECORRUPT, "payload: a row path without table, partition and key" },
	{ "order-shorter-after-longer", c_order_shorter, TZ_ECORRUPT, "payload: changes out of order" },
	{ "order-longer-after-greater", c_order_longer, TZ_ECORRUPT, "payload: changes out of order" },
	{ "path-twice", c_path_twice, TZ_ECORRUPT, "payload: changes out of order" },
	/* ops */
	{ "op-five", c_op_five, TZ_ECORRUPT, "payload: bad op" },
	{ "op-ff", c_op_ff, TZ_ECORRUPT, "payload: bad op" },
	{ "op-row-on-file", c_op_row_on_file, TZ_ECORRUPT, "payload: row columns for a file that is not a row" },
	{ "op-log-on-file", c_op_log_on_file, TZ_ECORRUPT, "payload: a transcoded log that is not _log" },
	{ "op-log-on-row", c_op_log_on_row, TZ_ECORRUPT, "payload: a transcoded log that is not _log" },
	/* rebuilding */
	{ "patch-in-root", c_patch_in_root, TZ_ECORRUPT, "a column patch to a row the parent does not have" },
	{ "patch-removes-absent", c_patch_removes_absent, TZ_ECORRUPT,
	  "a patch removes a column the row does not have" },
	{ "file-and-directory", c_file_and_dir, TZ_ECORRUPT, "is both a file and a directory" },
	{ "duplicate-name", c_dup_names, TZ_ECORRUPT, "payload: " },
	{ "real-nan", c_nan, TZ_ECORRUPT, "payload: " },
	{ "names-out-of-order", c_names_unsorted, TZ_ECORRUPT, "payload: " },
	{ "log-counts", c_log_counts, TZ_ECORRUPT, "log: bad counts" },
	{ "log-table-name", c_log_table, TZ_ECORRUPT, "log: bad table name" },
	{ "log-cut-clock", c_log_clock, TZ_ECORRUPT, "log: truncated clock" },
	{ "log-cut-ops", c_log_ops, TZ_ECORRUPT, "log: truncated ops" },
	{ "log-op-letter", c_log_op, TZ_ECORRUPT, "log: bad entry" },
	{ "log-ref-not-row", c_log_ref, TZ_ECORRUPT, "log: a reference to a path that is not a row" },
	{ "log-key-space", c_log_key, TZ_ECORRUPT, "log: bad key" },
	{ "log-trailing", c_log_trailing, TZ_ECORRUPT, "log: trailing bytes" },
	{ "log-no-tables", c_log_no_tables, TZ_ECORRUPT, "log: truncated" },
	{ "log-other-line", c_log_other, TZ_EVERIFY, "is not the tree the commit names" },
	{ "text-changed", c_text_changed, TZ_EVERIFY, "is not the tree the commit names" },
	{ "integer-changed", c_int_changed, TZ_EVERIFY, "is not the tree the commit names" },
	{ "delete-in-root", c_delete_in_root, TZ_EVERIFY, "is not the tree the commit names" },
	/* the commit object */
	{ "commit-id-changed", c_commit_id, TZ_EVERIFY, "its bytes hash to another id" },
	{ "commit-message-changed", c_commit_message, TZ_EVERIFY, "its bytes hash to another id" },
	{ "commit-tree-other", c_commit_tree_other, TZ_EVERIFY, "is not the tree the commit names" },
	{ "commit-tree-prefix", c_commit_prefix, TZ_ECORRUPT, "commit object does not start with its tree" },
	{ "commit-tree-nonhex", c_commit_tree_nonhex, TZ_ECORRUPT, "commit object: bad tree id" },
	{ "commit-no-author", c_commit_no_author, TZ_ECORRUPT, "commit object: no author after the parents" },
	{ "commit-short", c_commit_short, TZ_ECORRUPT, "commit object does not start with its tree" },
	{ "commit-nine-parents", c_too_many_parents, TZ_ELIMIT, "commit object has more than 8 parents" },
	{ "commit-parent-nonhex", c_parent_nonhex, TZ_ECORRUPT, "commit object: bad parent id" },
	{ "missing-parent", c_missing_parent, TZ_ENOTFOUND,
	  "missing prerequisite: commit " RANDOM_PARENT " (parent of " },
	{ "missing-parent-real", c_missing_parent_real, TZ_ENOTFOUND, "missing prerequisite: commit " },
	{ "child-before-parent", c_child_first, TZ_ENOTFOUND, "missing prerequisite: commit " },
	{ "parent-is-a-blob", c_parent_is_blob, TZ_ECORRUPT, "is not a commit" },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void test_cases(void)
{
	tz_buf b = TZ_BUF_INIT;
	char what[128];
	double t0 = now();
	size_t differ = 0;

	for (size_t i = 0; i < NCASES; i++) {
		cases[i].build(&b);
		snprintf(what, sizeof(what), "%s (%zu bytes)", cases[i].name, b.len);
		check_payload(fresh, &b, cases[i].code, cases[i].msg, 0, what);
	}
	printf("# %zu cases in %.2f s\n", NCASES, now() - t0);
	/* the same answers at HQ, which holds the root commit and its objects */
	for (size_t i = 0; i < NCASES; i++) {
		char msg[1024];
		size_t n;
		int rc;
		if (strcmp(cases[i].name, "missing-parent-real") == 0 || strcmp(cases[i].name, "child-before-parent") == 0)
			continue;   /* HQ holds their parent */
		cases[i].build(&b);
		tz_error_clear();
		rc = tz_store_payload_check(fresh, b.data ? b.data : (const uint8_t *)"", b.len, &n);
		snprintf(msg, sizeof(msg), "%s", tz_error_last());
		tz_error_clear();
		if (tz_store_payload_check(hq, b.data ? b.data : (const uint8_t *)"", b.len, &n) != rc ||
		    strcmp(msg, tz_error_last()) != 0) {
			if (differ++ < 5)
				printf("# %s: %s on the empty store, %s at HQ\n", cases[i].name, msg, tz_error_last());
		}
	}
	CHECK(differ == 0, "each case gets the same answer at HQ as on the empty store (%zu differ)", differ);
	tz_buf_release(&b);
}

/* What the reader does with one commit twice: printed, not checked (the
 * format does not forbid it). */
static void notes(void)
{
	tz_buf b = TZ_BUF_INIT;
	pmodel *m;
	size_t n = 0;
	int rc;

	/* the same root commit twice */
	m = load(&d_root);
	{
		pmodel *m2 = load(&d_root);
		m->c[1] = m2->c[0];
		memset(&m2->c[0], 0, sizeof(m2->c[0]));
		m->n = 2;
		model_free(m2);
	}
	emit(m, &b);
	rc = tz_store_payload_check(fresh, b.data, b.len, &n);
	printf("# note: one commit twice in a payload: %s (%zu commits)\n", rc == TZ_OK ? "accepted" : tz_error_name(rc), n);
	tz_buf_release(&b);
}

/* A transcoded _log expands each line (about 4 payload bytes) to the
 * referenced row path's key and the table name (up to 4096 bytes each):
 * how much memory does the reader take for a small payload? */
static void test_log_amplification(void)
{
	enum { LINES = 10000, LONG = 4000 };
	tz_buf b = TZ_BUF_INIT, log = TZ_BUF_INIT, key = TZ_BUF_INIT;
	struct rusage ru0, ru1;
	pmodel *m = calloc(1, sizeof(*m));
	const char *raw = "tree 0000000000000000000000000000000000000000\nauthor X <X@tazamun> 0 +0000\n\nlog\n";
	double t0;
	size_t n;
	long grew;
	int rc;

	if (m == NULL)
		abort();
	m->n = 1;
	set_raw(&m->c[0], raw, strlen(raw));
	tz_buf_varint(&log, LINES);
	tz_buf_varint(&log, 1);
	tz_buf_varint(&log, LONG);
	for (int i = 0; i < LONG; i++)
		tz_buf_putc(&log, 't');
	for (int i = 0; i < LINES; i++)
		tz_buf_putc(&log, 0);           /* clock steps */
	for (int i = 0; i < LINES; i++)
		tz_buf_put(&log, "i\x00", 2);   /* op, table */
	for (int i = 0; i < LINES; i++)
		tz_buf_putc(&log, 2);           /* the row path, change 2 */
	m->c[0].nch = 2;
	tz_buf_puts(&m->c[0].ch[0].path, "_log");
	m->c[0].ch[0].op = 4;
	buf_set(&m->c[0].ch[0].blob, log.data, log.len);
	tz_buf_puts(&key, "t/_shared/");
	for (int i = 0; i < LONG; i++)
		tz_buf_putc(&key, 'k');
	buf_set(&m->c[0].ch[1].path, key.data, key.len);
	m->c[0].ch[1].op = 1;
	tz_buf_puts(&m->c[0].ch[1].blob, "x");
	emit(m, &b);
	getrusage(RUSAGE_SELF, &ru0);
	t0 = now();
	rc = tz_store_payload_check(fresh, b.data, b.len, &n);
	getrusage(RUSAGE_SELF, &ru1);
	grew = ru1.ru_maxrss - ru0.ru_maxrss;
	CHECK(rc == TZ_ELIMIT && strstr(tz_error_last(), "log: decodes to more than") != NULL,
	      "a %zu-byte payload whose _log would decode to %d lines of %d bytes is refused at the log's cap: %s (%s)",
	      b.len, LINES, 2 * LONG + 21, rc == TZ_OK ? "OK" : tz_error_name(rc), tz_error_last());
	CHECK(grew < 32 * 1024, "... and the reader's peak memory grows by less than 32 MiB for it: %ld KiB "
	      "(%.2f s)", grew, now() - t0);
	tz_buf_release(&b);
	tz_buf_release(&log);
	tz_buf_release(&key);
}

/* ---- the corpus for tests/fuzz/fuzz_payload.c ---- */

static int mkdir_p(const char *dir, const char *a, const char *b)
{
	char p[TEST_PATH_MAX * 2];

	snprintf(p, sizeof(p), "%s/%s", dir, a);
	if (mkdir(p, 0777) < 0 && errno != EEXIST)
		return -1;
	snprintf(p, sizeof(p), "%s/%s/%s", dir, a, b);
	if (mkdir(p, 0777) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int write_corpus(const char *dir)
{
	char sub[TEST_PATH_MAX * 2], err[512];
	tz_buf b = TZ_BUF_INIT;
	static const uint8_t empty[] = { 'T', 'Z', 'D', '2', 0 };
	int bad = 0;

	if (mkdir_p(dir, "corpus", "payload") < 0 || mkdir_p(dir, "reject", "payload") < 0)
		return 1;
	snprintf(sub, sizeof(sub), "%s/reject/payload", dir);
	for (size_t i = 0; i < NCASES; i++) {
		cases[i].build(&b);
		snprintf(err, sizeof(err), "%s\n%s\n", tz_error_name(cases[i].code), cases[i].msg);
		bad |= tz_test_write_file(sub, cases[i].name, "", b.data ? b.data : (const uint8_t *)"", b.len);
		bad |= tz_test_write_file(sub, cases[i].name, ".err", err, strlen(err));
	}
	snprintf(sub, sizeof(sub), "%s/corpus/payload", dir);
	bad |= tz_test_write_file(sub, "root", "", d_root.data, d_root.len);
	bad |= tz_test_write_file(sub, "chain", "", d_chain.data, d_chain.len);
	bad |= tz_test_write_file(sub, "child", "", d_child.data, d_child.len);
	bad |= tz_test_write_file(sub, "empty", "", empty, sizeof(empty));
	tz_buf_release(&b);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *t = getenv("TMPDIR");
	int rc = 0, corpus = argc == 3 && strcmp(argv[1], "--write-corpus") == 0;
	double t0 = now();

	if (argc != 1 && !corpus) {
		fprintf(stderr, "usage: %s [--write-corpus DIR]\n", argv[0]);
		return 2;
	}
	if (t == NULL || t[0] == '\0' || strlen(t) > TEST_DIR_MAX - 32)
		t = "/tmp";
	snprintf(tmpdir, sizeof(tmpdir), "%s/tz-payload-XXXXXX", t);
	if (mkdtemp(tmpdir) == NULL) {
		printf("Bail out! cannot create a temporary directory\n");
		return 1;
	}
	if (make_stores() < 0) {
		printf("Bail out! cannot make the stores and payloads\n");
		rc = 1;
		goto done;
	}
	{
		pmodel *m = load(&d_root);
		tz_buf again = TZ_BUF_INIT;
		encode(m, &again, &lay_root);
		model_free(m);
		if (again.len != d_root.len || memcmp(again.data, d_root.data, again.len) != 0) {
			printf("Bail out! the test's model does not re-encode the root payload\n");
			tz_buf_release(&again);
			rc = 1;
			goto done;
		}
		m = load(&d_chain);
		encode(m, &again, &lay_chain);
		model_free(m);
		tz_buf_release(&again);
	}
	printf("# payloads: root %zu bytes, branch %zu, chain %zu, child %zu; stores made in %.2f s\n", d_root.len,
	       d_branch.len, d_chain.len, d_child.len, now() - t0);
	if (corpus) {
		rc = write_corpus(argv[2]);
		goto done;
	}
	test_valid();
	sweep_truncations(&d_root, "the root payload");
	sweep_truncations(&d_chain, "the chain payload");
	sweep_commit_bytes(&d_root, 0, "the root commit");
	sweep_commit_bytes(&d_chain, 1, "the chain's first branch commit");
	test_cases();
	notes();
	test_log_amplification();
done:
	tz_store_close(hq);
	tz_store_close(fresh);
	tz_buf_release(&d_root);
	tz_buf_release(&d_branch);
	tz_buf_release(&d_chain);
	tz_buf_release(&d_child);
	if (nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		printf("# cannot remove %s\n", tmpdir);
	if (corpus || rc)
		return rc;
	printf("# total %.2f s\n", now() - t0);
	return tz_test_done();
}

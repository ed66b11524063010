/*
 * transfer.c - commits as row deltas (the payload a bundle carries), and
 * the bit-identical rebuild of those commits on the receiving side.
 *
 * A git pack of a one-row change ships whole trees (kilobytes a row,
 * DESIGN §5); what travels instead is, per commit, the commit object and
 * the blobs that differ from its first parent, each one a deletion, a
 * whole blob, or (rows only) the columns that changed.  The receiver
 * applies them to the parent's tree, and the tree id it gets must be the
 * one the commit names, and the commit's bytes must hash to the id the
 * sender declared: equal ids prove equal history.  docs/bundle-format.md
 * ("the payload") is the byte-by-byte spec; the reader follows STYLE.md
 * "untrusted bytes" (every count and length bounded before use).
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD_MAGIC "TZD1"
#define OP_DELETE 0
#define OP_BLOB 1
#define OP_COLUMNS 2

/* Bounds of the reader: a commit object of at most 1 MiB (ours are under
 * 1 KiB: a signature and a message), a path of at most three key-sized
 * components, counts bounded by the payload's own size. */
#define COMMIT_MAX ((uint64_t)1 << 20)
#define PATH_MAX_BYTES (3 * TZ_KEY_MAX_BYTES + 2)

/* ---- writing ---- */

typedef struct {
	char *path;            /* table/partition/key for rows, else the tree path */
	size_t len;
	uint8_t op;
	tz_buf data;           /* blob, or the encoded column patch */
} out_change;

typedef struct {
	tz_store *s;
	out_change *ch;
	size_t n, cap;
	int rc;
} pack_ctx;

static bool is_row_path(const char *const *comp, const size_t *len, size_t depth)
{
	(void)len;
	return depth == TZ_PATH_DEPTH && comp[0][0] != '_';
}

static int read_blob(tz_store *s, const tz_staging *st, const tz_oid *oid, uint8_t **data, size_t *len)
{
	git_object_t type;
	int rc = tz_obj__read(s, st, oid, &type, data, len);

	if (rc == TZ_OK && type != GIT_OBJECT_BLOB) {
		char hex[41];
		tz_free(*data);
		*data = NULL;
		tz_oid_fmt(hex, oid);
		rc = tz_error_set(TZ_ECORRUPT, "object %s is not a blob", hex);
	}
	return rc;
}

/* The columns of `nw` that differ from `old`: names removed, then the
 * changed and added columns as a row blob. */
static int column_patch(tz_buf *out, const tz_row *old, const tz_row *nw)
{
	tz_column *set = tz_calloc(nw->ncols + 1, sizeof(*set));
	size_t nset = 0, nrem = 0;
	tz_buf rows = TZ_BUF_INIT;
	int rc;

	if (set == NULL)
		return TZ_ENOMEM;
	for (size_t i = 0; i < old->ncols; i++)
		nrem += tz_row_find(nw, old->cols[i].name, old->cols[i].name_len) == NULL;
	tz_buf_varint(out, nrem);
	for (size_t i = 0; i < old->ncols; i++)
		if (tz_row_find(nw, old->cols[i].name, old->cols[i].name_len) == NULL) {
			tz_buf_varint(out, old->cols[i].name_len);
			tz_buf_put(out, old->cols[i].name, old->cols[i].name_len);
		}
	for (size_t i = 0; i < nw->ncols; i++) {
		const tz_column *o = tz_row_find(old, nw->cols[i].name, nw->cols[i].name_len);
		if (o == NULL || o->v.type != nw->cols[i].v.type || tz_value_cmp(&o->v, &nw->cols[i].v) != 0)
			set[nset++] = nw->cols[i];
	}
	rc = tz_row_encode(&rows, set, nset);
	tz_buf_varint(out, rows.len);
	tz_buf_put(out, rows.data, rows.len);
	tz_buf_release(&rows);
	tz_free(set);
	return rc < 0 ? rc : tz_buf_error(out);
}

static int collect(const char *const *comp, const size_t *len, size_t depth, const tz_oid *a,
		   const tz_oid *b, void *payload)
{
	pack_ctx *p = payload;
	out_change *c;
	tz_buf path = TZ_BUF_INIT;
	uint8_t *nd = NULL, *od = NULL;
	size_t nl = 0, ol = 0;
	bool row = is_row_path(comp, len, depth);
	int rc;

	for (size_t i = 0; i < depth; i++) {
		if (row && (i == 2 || i == 3))
			continue;   /* the fanout: the receiver computes it */
		if (path.len)
			tz_buf_putc(&path, '/');
		tz_buf_put(&path, comp[i], len[i]);
	}
	if ((rc = tz_buf_error(&path)) < 0 || (rc = tz_array_grow(&p->ch, &p->cap, p->n, sizeof(*p->ch))) < 0) {
		tz_buf_release(&path);
		return rc < 0 ? rc : TZ_ENOMEM;
	}
	c = &p->ch[p->n++];
	memset(c, 0, sizeof(*c));
	c->len = path.len;
	c->path = (char *)tz_buf_detach(&path, &c->len);
	if (c->path == NULL)
		return TZ_ENOMEM;
	if (tz_oid_is_zero(b)) {
		c->op = OP_DELETE;
		return TZ_OK;
	}
	if ((rc = read_blob(p->s, NULL, b, &nd, &nl)) < 0)
		return rc;
	c->op = OP_BLOB;
	if (row && !tz_oid_is_zero(a) && (rc = read_blob(p->s, NULL, a, &od, &ol)) == TZ_OK) {
		tz_row *orow = NULL, *nrow = NULL;
		if ((rc = tz_row_decode(&orow, od, ol)) == TZ_OK && (rc = tz_row_decode(&nrow, nd, nl)) == TZ_OK &&
		    (rc = column_patch(&c->data, orow, nrow)) == TZ_OK && c->data.len < nl)
			c->op = OP_COLUMNS;
		tz_row_free(orow);
		tz_row_free(nrow);
	}
	if (rc == TZ_OK && c->op == OP_BLOB) {
		tz_buf_clear(&c->data);
		tz_buf_put(&c->data, nd, nl);
		rc = tz_buf_error(&c->data);
	}
	tz_free(nd);
	tz_free(od);
	return rc;
}

static int change_cmp(const void *x, const void *y)
{
	const out_change *a = x, *b = y;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->path, b->path, n);

	return c ? c : a->len < b->len ? -1 : a->len > b->len;
}

/* The commit's tree and parents, parsed from its raw bytes (strictly:
 * "tree <hex>\n", then "parent <hex>\n" lines). */
static int parse_commit_head(const uint8_t *p, size_t n, tz_oid *tree, tz_oid *parents, size_t max_parents,
			     size_t *nparents)
{
	char hex[41];
	size_t off = 0;

	*nparents = 0;
	if (n < 46 || memcmp(p, "tree ", 5) != 0 || p[45] != '\n')
		return tz_error_set(TZ_ECORRUPT, "commit object does not start with its tree");
	memcpy(hex, p + 5, 40);
	hex[40] = '\0';
	if (tz_oid__parse(tree, hex) < 0)
		return tz_error_set(TZ_ECORRUPT, "commit object: bad tree id");
	off = 46;
	while (n - off >= 48 && memcmp(p + off, "parent ", 7) == 0 && p[off + 47] == '\n') {
		tz_oid parent;
		if (*nparents == max_parents)
			return tz_error_set(TZ_ELIMIT, "commit object has more than %zu parents", max_parents);
		memcpy(hex, p + off + 7, 40);
		if (tz_oid__parse(&parent, hex) < 0)
			return tz_error_set(TZ_ECORRUPT, "commit object: bad parent id");
		parents[(*nparents)++] = parent;
		off += 48;
	}
	if (n - off < 7 || memcmp(p + off, "author ", 7) != 0)
		return tz_error_set(TZ_ECORRUPT, "commit object: no author after the parents");
	return TZ_OK;
}

int tz_commit__parse(tz_store *s, const tz_staging *st, const tz_oid *commit, tz_oid *tree, tz_oid *parents,
		     size_t max_parents, size_t *nparents)
{
	git_object_t type;
	uint8_t *data = NULL;
	size_t len;
	char hex[41];
	int rc;

	if ((rc = tz_obj__read(s, st, commit, &type, &data, &len)) < 0)
		return rc;
	tz_oid_fmt(hex, commit);
	if (type != GIT_OBJECT_COMMIT)
		rc = tz_error_set(TZ_ECORRUPT, "object %s is not a commit", hex);
	else if ((rc = parse_commit_head(data, len, tree, parents, max_parents, nparents)) < 0)
		tz_error_wrap(rc, "commit %s", hex);
	tz_free(data);
	return rc;
}

static int pack_one(tz_store *s, tz_buf *out, const tz_oid *commit)
{
	pack_ctx p;
	tz_oid tree, parents[TZ_COMMIT_MAX_PARENTS], base = { { 0 } };
	git_object_t type;
	uint8_t *raw = NULL;
	size_t rawlen, np, prev_len = 0;
	const char *prev = "";
	int rc;

	memset(&p, 0, sizeof(p));
	p.s = s;
	if ((rc = tz_obj__read(s, NULL, commit, &type, &raw, &rawlen)) < 0 ||
	    (rc = parse_commit_head(raw, rawlen, &tree, parents, TZ_COMMIT_MAX_PARENTS, &np)) < 0)
		goto done;
	if (np > 0 && (rc = tz_commit__tree(s, &parents[0], &base)) < 0)
		goto done;
	if ((rc = tz_tree__diff(s, NULL, &base, &tree, collect, &p)) < 0)
		goto done;
	qsort(p.ch, p.n, sizeof(*p.ch), change_cmp);
	tz_buf_put(out, commit->id, 20);
	tz_buf_varint(out, rawlen);
	tz_buf_put(out, raw, rawlen);
	tz_buf_varint(out, p.n);
	for (size_t i = 0; i < p.n; i++) {
		const out_change *c = &p.ch[i];
		size_t k = 0;
		while (k < c->len && k < prev_len && c->path[k] == prev[k])
			k++;
		tz_buf_varint(out, k);
		tz_buf_varint(out, c->len - k);
		tz_buf_put(out, c->path + k, c->len - k);
		tz_buf_putc(out, c->op);
		if (c->op != OP_DELETE) {
			tz_buf_varint(out, c->data.len);
			tz_buf_put(out, c->data.data, c->data.len);
		}
		prev = c->path;
		prev_len = c->len;
	}
	rc = tz_buf_error(out);
done:
	for (size_t i = 0; i < p.n; i++) {
		tz_free(p.ch[i].path);
		tz_buf_release(&p.ch[i].data);
	}
	tz_free(p.ch);
	tz_free(raw);
	return rc;
}

int tz_transfer__pack(tz_store *s, tz_buf *out, const tz_oid *commits, size_t n)
{
	int rc = TZ_OK;

	tz_buf_put(out, PAYLOAD_MAGIC, 4);
	tz_buf_varint(out, n);
	for (size_t i = 0; i < n && rc == TZ_OK; i++) {
		rc = pack_one(s, out, &commits[i]);
		tz_progress__report(s, "packing commits", i + 1, n);
	}
	return rc < 0 ? rc : tz_buf_error(out);
}

/* ---- reading ---- */

typedef struct {
	tz_store *s;
	tz_staging *st;
	tz_reader r;
	/* per change: the path split in components, and the blob's id */
	tz_path_change *ch;
	size_t nch, capch;
	char (*fan)[2];
	char **paths;          /* the path strings of one commit */
	size_t npaths;
} unpack_ctx;

static void release_paths(unpack_ctx *u)
{
	for (size_t i = 0; u->paths && i < u->npaths; i++)
		tz_free(u->paths[i]);
	tz_free(u->paths);
	tz_free(u->fan);
	u->paths = NULL;
	u->fan = NULL;
	u->npaths = 0;
	u->nch = 0;
}

static int corrupt(const char *what)
{
	return tz_error_set(TZ_ECORRUPT, "payload: %s", what);
}

/* A tree entry name the receiver accepts: what git fsck accepts. */
static bool name_ok(const char *p, size_t n)
{
	if (n == 0 || n > TZ_KEY_MAX_BYTES || memchr(p, '/', n) || memchr(p, '\0', n))
		return false;
	return !((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.') ||
		 (n == 4 && strncasecmp(p, ".git", 4) == 0));
}

/* Split a payload path into tree components (rows get their fanout). */
static int split_path(unpack_ctx *u, tz_path_change *c, char fan[2], const char *path, size_t len)
{
	size_t n = 0, start = 0;
	const char *comp[TZ_PATH_DEPTH];
	size_t clen[TZ_PATH_DEPTH];

	for (size_t i = 0; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		if (n == TZ_PATH_DEPTH || !name_ok(path + start, i - start))
			return corrupt("a path that is not a tree path");
		comp[n] = path + start;
		clen[n++] = i - start;
		start = i + 1;
	}
	memset(c, 0, sizeof(*c));
	if (comp[0][0] != '_') {
		/* a row: table/partition/key, the fanout computed here */
		if (n != 3)
			return corrupt("a row path without table, partition and key");
		tz_fanout__of(fan, comp[2], clen[2]);
		c->comp[0] = comp[0];
		c->comp_len[0] = clen[0];
		c->comp[1] = comp[1];
		c->comp_len[1] = clen[1];
		c->comp[2] = &fan[0];
		c->comp[3] = &fan[1];
		c->comp_len[2] = c->comp_len[3] = 1;
		c->comp[4] = comp[2];
		c->comp_len[4] = clen[2];
		c->depth = TZ_PATH_DEPTH;
	} else {
		for (size_t i = 0; i < n; i++) {
			c->comp[i] = comp[i];
			c->comp_len[i] = clen[i];
		}
		c->depth = n;
	}
	(void)u;
	return TZ_OK;
}

/* Rows: the parent's row with the patch applied, re-encoded. */
static int apply_patch(unpack_ctx *u, tz_buf *out, const tz_oid *base_tree, const tz_path_change *c,
		       const uint8_t *patch, size_t plen)
{
	tz_reader r;
	tz_oid old_oid;
	uint8_t *od = NULL;
	size_t ol, ncols = 0;
	uint64_t nrem, setlen;
	const uint8_t *setp;
	tz_row *old = NULL, *set = NULL;
	tz_column *cols = NULL;
	int rc;

	if ((rc = tz_tree__lookup(u->s, u->st, &old_oid, base_tree, c->comp, c->comp_len, TZ_PATH_DEPTH)) < 0)
		return rc;
	if (tz_oid_is_zero(&old_oid))
		return corrupt("a column patch to a row the parent does not have");
	if ((rc = read_blob(u->s, u->st, &old_oid, &od, &ol)) < 0 || (rc = tz_row_decode(&old, od, ol)) < 0)
		goto done;
	tz_reader_init(&r, patch, plen);
	if (tz_reader_varint(&r, &nrem, old->ncols) < 0) {
		rc = corrupt("column patch: bad count of removed columns");
		goto done;
	}
	if ((cols = tz_calloc(old->ncols + TZ_ROW_MAX_COLUMNS + 1, sizeof(*cols))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	/* start from the old columns; removed ones are marked by a NULL name */
	memcpy(cols, old->cols, old->ncols * sizeof(*cols));
	ncols = old->ncols;
	for (uint64_t i = 0; i < nrem; i++) {
		uint64_t nl;
		const uint8_t *name;
		bool found = false;
		if (tz_reader_varint(&r, &nl, TZ_ROW_MAX_NAME) < 0 || tz_reader_bytes(&r, &name, nl) < 0) {
			rc = corrupt("column patch: truncated name");
			goto done;
		}
		for (size_t k = 0; k < ncols; k++)
			if (cols[k].name && cols[k].name_len == nl && memcmp(cols[k].name, name, nl) == 0) {
				cols[k].name = NULL;
				found = true;
			}
		if (!found) {
			rc = corrupt("column patch removes a column the row does not have");
			goto done;
		}
	}
	if (tz_reader_varint(&r, &setlen, TZ_ROW_MAX_BYTES) < 0 || tz_reader_bytes(&r, &setp, setlen) < 0 ||
	    !tz_reader_done(&r)) {
		rc = corrupt("column patch: bad length");
		goto done;
	}
	if ((rc = tz_row_decode(&set, setp, setlen)) < 0)
		goto done;
	if (set->ncols > TZ_ROW_MAX_COLUMNS) {
		rc = corrupt("column patch: too many columns");
		goto done;
	}
	for (size_t i = 0; i < set->ncols; i++) {
		size_t k;
		for (k = 0; k < ncols; k++)
			if (cols[k].name && cols[k].name_len == set->cols[i].name_len &&
			    memcmp(cols[k].name, set->cols[i].name, cols[k].name_len) == 0)
				break;
		cols[k] = set->cols[i];
		if (k == ncols)
			ncols++;
	}
	{
		size_t keep = 0;
		for (size_t k = 0; k < ncols; k++)
			if (cols[k].name)
				cols[keep++] = cols[k];
		ncols = keep;
	}
	rc = tz_row_encode(out, cols, ncols);
done:
	tz_free(cols);
	tz_row_free(old);
	tz_row_free(set);
	tz_free(od);
	return rc;
}

/* One commit of the payload: its changes applied to its first parent. */
static int unpack_one(unpack_ctx *u, tz_oid *out)
{
	tz_reader *r = &u->r;
	const uint8_t *declared, *raw;
	uint64_t rawlen, nch;
	tz_oid tree, parents[TZ_COMMIT_MAX_PARENTS], base = { { 0 } }, root, got;
	size_t np, prev_len = 0;
	const char *prev = "";
	char hex[41], hex2[41];
	bool empty;
	int rc;

	if (tz_reader_bytes(r, &declared, 20) < 0 || tz_reader_varint(r, &rawlen, COMMIT_MAX) < 0 ||
	    tz_reader_bytes(r, &raw, rawlen) < 0)
		return corrupt("truncated commit");
	memcpy(out->id, declared, 20);
	tz_oid_fmt(hex, out);
	if ((rc = parse_commit_head(raw, rawlen, &tree, parents, TZ_COMMIT_MAX_PARENTS, &np)) < 0)
		return tz_error_wrap(rc, "payload: commit %s", hex);
	for (size_t i = 0; i < np; i++) {
		git_object_t type;
		uint8_t *d = NULL;
		size_t l;
		if (tz_obj__read(u->s, u->st, &parents[i], &type, &d, &l) < 0) {
			tz_error_clear();
			tz_oid_fmt(hex2, &parents[i]);
			return tz_error_set(TZ_ENOTFOUND, "missing prerequisite: commit %s (parent of %s) is not here",
					    hex2, hex);
		}
		tz_free(d);
	}
	if (np > 0) {
		tz_oid pp[TZ_COMMIT_MAX_PARENTS];
		size_t npp;
		if ((rc = tz_commit__parse(u->s, u->st, &parents[0], &base, pp, TZ_COMMIT_MAX_PARENTS, &npp)) < 0)
			return rc;
	}
	/* the count is bounded by what remains: each change takes 3 bytes or more */
	if (tz_reader_varint(r, &nch, r->len / 3) < 0)
		return corrupt("bad change count");
	release_paths(u);
	if ((u->fan = tz_calloc(nch + 1, sizeof(*u->fan))) == NULL ||
	    (u->paths = tz_calloc(nch + 1, sizeof(*u->paths))) == NULL)
		return TZ_ENOMEM;
	u->npaths = nch;
	for (uint64_t i = 0; i < nch; i++) {
		uint64_t k, sl, dl;
		const uint8_t *suffix, *data = NULL;
		uint8_t op;
		tz_path_change *c;
		tz_buf blob = TZ_BUF_INIT;
		char *path;

		if (tz_reader_varint(r, &k, prev_len) < 0 || tz_reader_varint(r, &sl, PATH_MAX_BYTES - k) < 0 ||
		    tz_reader_bytes(r, &suffix, sl) < 0 || tz_reader_u8(r, &op) < 0 || op > OP_COLUMNS)
			return corrupt("bad change path");
		if (op != OP_DELETE && (tz_reader_varint(r, &dl, TZ_ROW_MAX_BYTES) < 0 ||
					tz_reader_bytes(r, &data, dl) < 0))
			return corrupt("truncated change");
		if ((path = u->paths[i] = tz_malloc(k + sl + 1)) == NULL)
			return TZ_ENOMEM;
		memcpy(path, prev, k);
		memcpy(path + k, suffix, sl);
		path[k + sl] = '\0';
		if (i > 0 && (k + sl < prev_len ? memcmp(prev, path, k + sl) >= 0
						: memcmp(prev, path, prev_len) >= 0 && k + sl == prev_len))
			return corrupt("changes out of order");
		if (tz_array_grow(&u->ch, &u->capch, u->nch, sizeof(*u->ch)) < 0)
			return TZ_ENOMEM;
		c = &u->ch[u->nch];
		if ((rc = split_path(u, c, u->fan[u->nch], path, k + sl)) < 0)
			return rc;
		u->nch++;
		prev = path;
		prev_len = k + sl;
		if (op == OP_DELETE) {
			c->del = true;
			continue;
		}
		if (op == OP_COLUMNS) {
			if (c->depth != TZ_PATH_DEPTH)
				return corrupt("a column patch to a file that is not a row");
			if ((rc = apply_patch(u, &blob, &base, c, data, dl)) < 0) {
				tz_buf_release(&blob);
				return tz_error_wrap(rc, "payload: commit %s, row %s", hex, path);
			}
			data = blob.data;
			dl = blob.len;
		}
		rc = tz_staging__add(u->s, u->st, &c->oid, GIT_OBJECT_BLOB, data ? data : (const uint8_t *)"", dl);
		tz_buf_release(&blob);
		if (rc < 0)
			return rc;
	}
	qsort(u->ch, u->nch, sizeof(*u->ch), tz_path_change__cmp);
	for (size_t i = 1; i < u->nch; i++)
		if (tz_path_change__cmp(&u->ch[i - 1], &u->ch[i]) == 0)
			return corrupt("two changes to one path");
	if ((rc = tz_tree__apply(u->s, u->st, &root, &empty, &base, 0, u->ch, u->nch)) < 0)
		return tz_error_wrap(rc, "payload: commit %s", hex);
	if (empty && (rc = tz_tree__write(u->s, u->st, &root, NULL, 0)) < 0)
		return rc;
	if (memcmp(&root, &tree, sizeof(root)) != 0) {
		tz_oid_fmt(hex2, &root);
		return tz_error_set(TZ_EVERIFY, "payload: commit %s: the rebuilt tree %s is not the tree the commit names",
				    hex, hex2);
	}
	if ((rc = tz_staging__add(u->s, u->st, &got, GIT_OBJECT_COMMIT, raw, rawlen)) < 0)
		return rc;
	if (memcmp(&got, out, sizeof(got)) != 0)
		return tz_error_set(TZ_EVERIFY, "payload: commit %s: its bytes hash to another id", hex);
	return TZ_OK;
}

int tz_transfer__unpack(tz_store *s, tz_staging *st, const void *p, size_t n, tz_oid **commits,
			size_t *ncommits)
{
	unpack_ctx u;
	const uint8_t *magic;
	uint64_t nc;
	int rc = TZ_OK;

	*commits = NULL;
	*ncommits = 0;
	memset(&u, 0, sizeof(u));
	u.s = s;
	u.st = st;
	tz_reader_init(&u.r, p, n);
	if (tz_reader_bytes(&u.r, &magic, 4) < 0 || memcmp(magic, PAYLOAD_MAGIC, 4) != 0)
		return corrupt("not a Tazamun delta payload");
	/* a commit takes at least 70 bytes */
	if (tz_reader_varint(&u.r, &nc, u.r.len / 70) < 0)
		return corrupt("bad commit count");
	if ((*commits = tz_calloc(nc + 1, sizeof(**commits))) == NULL)
		return TZ_ENOMEM;
	for (uint64_t i = 0; i < nc && rc == TZ_OK; i++) {
		rc = unpack_one(&u, &(*commits)[i]);
		tz_progress__report(s, "rebuilding commits", i + 1, nc);
	}
	if (rc == TZ_OK && !tz_reader_done(&u.r))
		rc = corrupt("trailing bytes");
	if (rc == TZ_OK)
		*ncommits = nc;
	else {
		tz_free(*commits);
		*commits = NULL;
	}
	release_paths(&u);
	tz_free(u.ch);
	return rc;
}

/* ---- reading a raw commit: its signature and its trailers ---- */

int tz_commit__raw_signer(const uint8_t *raw, size_t n, uint8_t pk[TZ_PK_BYTES])
{
	tz_buf sig = TZ_BUF_INIT, data = TZ_BUF_INIT;
	size_t off = 0;
	bool in_sig = false, found = false;
	int rc;

	/* header lines up to the blank line; "gpgsig" and its continuation
	 * lines (a leading space) are the signature, the rest is signed */
	while (off < n) {
		const uint8_t *nl = memchr(raw + off, '\n', n - off);
		size_t len = nl ? (size_t)(nl - (raw + off)) : n - off;
		const uint8_t *line = raw + off;
		if (len == 0) {
			tz_buf_put(&data, raw + off, n - off);
			break;
		}
		if (in_sig && line[0] == ' ') {
			tz_buf_putc(&sig, '\n');
			tz_buf_put(&sig, line + 1, len - 1);
		} else if (len > 7 && memcmp(line, "gpgsig ", 7) == 0 && !found) {
			in_sig = found = true;
			tz_buf_put(&sig, line + 7, len - 7);
		} else {
			in_sig = false;
			tz_buf_put(&data, line, len + (nl != NULL));
		}
		off += len + (nl != NULL);
	}
	if (!found)
		rc = tz_error_set(TZ_EVERIFY, "the commit is not signed");
	else if ((rc = tz_buf_error(&sig)) == TZ_OK && (rc = tz_buf_error(&data)) == TZ_OK)
		rc = tz_sshsig_verify(pk, (const char *)sig.data, sig.len, "git", data.data, data.len);
	tz_buf_release(&sig);
	tz_buf_release(&data);
	return rc;
}

int tz_commit__raw_trailer(const uint8_t *raw, size_t n, const char *name, tz_oid *out, bool *found)
{
	size_t nl = strlen(name);
	const uint8_t *p = raw, *end = raw + n;

	*found = false;
	memset(out, 0, sizeof(*out));
	/* the last occurrence at the start of a line */
	while (p < end) {
		const uint8_t *e = memchr(p, '\n', (size_t)(end - p));
		size_t len = e ? (size_t)(e - p) : (size_t)(end - p);
		if (len == nl + 2 + 40 && memcmp(p, name, nl) == 0 && p[nl] == ':' && p[nl + 1] == ' ') {
			char hex[41];
			memcpy(hex, p + nl + 2, 40);
			hex[40] = '\0';
			if (tz_oid__parse(out, hex) < 0)
				return tz_error_set(TZ_ECORRUPT, "commit: bad %s trailer", name);
			*found = true;
		}
		p += len + 1;
	}
	return TZ_OK;
}

int tz_commit__read_raw(tz_store *s, const tz_staging *st, const tz_oid *commit, uint8_t **raw, size_t *n)
{
	git_object_t type;
	int rc = tz_obj__read(s, st, commit, &type, raw, n);

	if (rc == TZ_OK && type != GIT_OBJECT_COMMIT) {
		char hex[41];
		tz_free(*raw);
		*raw = NULL;
		tz_oid_fmt(hex, commit);
		rc = tz_error_set(TZ_ECORRUPT, "object %s is not a commit", hex);
	}
	return rc;
}

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

#define PAYLOAD_MAGIC "TZD2"

/* Bounds of the reader: a commit object of at most 1 MiB (ours are under
 * 1 KiB: a signature and a message), a path of at most three key-sized
 * components, counts bounded by the payload's own size. */
#define COMMIT_MAX ((uint64_t)1 << 20)
/* A decoded _log: 90 days offline at ten times the peak writes about
 * 135,000 entries (6 MB); 256 MiB is far above that. */
#define LOG_MAX_BYTES ((size_t)256 << 20)
#define LOG_MAX_RATIO 64
/* What rebuilding a payload may stage in memory: 64 times the payload
 * plus 256 MiB (an enrolment snapshot of 100,000 agency rows stages about
 * 40 MB), at most 1 GiB. */
#define STAGE_BASE ((size_t)256 << 20)
#define STAGE_MAX ((size_t)1 << 30)
#define PATH_MAX_BYTES (3 * TZ_KEY_MAX_BYTES + 2)

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

/*
 * The payload, version 2 (docs/bundle-format.md, "The payload"): per
 * commit, its changes in sections so that like sits next to like for the
 * compressor: the paths (sorted, each sharing a prefix with the one
 * before), one op byte each, the column names the rows use, each row's
 * shape (which columns it sets or removes), then the values column by
 * column, then whole blobs, then the change log transcoded.  Rows are
 * canonical (row-format.md), so the receiver re-encodes decoded values
 * into exactly the sender's bytes.
 */
#define OP_DELETE 0
#define OP_BLOB 1     /* a whole blob (not a row, or a row the codec leaves alone) */
#define OP_ROW 2      /* a whole row, as columns */
#define OP_PATCH 3    /* the columns that differ from the parent's row */
#define OP_LOG 4      /* the _log blob, transcoded */

/* ---- writing ---- */

typedef struct {
	char *path;            /* table/partition/key for rows, else the tree path */
	size_t len;
	uint8_t op;
	tz_buf data;           /* OP_BLOB: the bytes; OP_LOG: the transcoded log */
	tz_row *row;           /* OP_ROW, OP_PATCH: the new row */
	tz_row *old;           /* OP_PATCH: the parent's row */
	size_t nset;           /* OP_ROW, OP_PATCH: columns sent */
	const tz_column **set;
	size_t nrem;           /* OP_PATCH: columns removed */
	const tz_column **rem;
} out_change;

typedef struct {
	tz_store *s;
	out_change *ch;
	size_t n, cap;
} pack_ctx;

static bool is_row_path(const char *const *comp, size_t depth)
{
	return depth == TZ_PATH_DEPTH && comp[0][0] != '_';
}

/* An object that must be of `want` (staging first, then the ODB). */
static int read_typed(tz_store *s, const tz_staging *st, const tz_oid *oid, git_object_t want, uint8_t **data,
		      size_t *len)
{
	git_object_t type;
	int rc = tz_obj__read(s, st, oid, &type, data, len);

	if (rc == TZ_OK && type != want) {
		char hex[41];
		tz_free(*data);
		*data = NULL;
		tz_oid_fmt(hex, oid);
		rc = tz_error_set(TZ_ECORRUPT, "object %s is not a %s", hex, git_object_type2string(want));
	}
	return rc;
}

static int read_blob(tz_store *s, const tz_staging *st, const tz_oid *oid, uint8_t **data, size_t *len)
{
	return read_typed(s, st, oid, GIT_OBJECT_BLOB, data, len);
}

static bool same_value(const tz_value *a, const tz_value *b)
{
	return a->type == b->type && tz_value_cmp(a, b) == 0;
}

/* The columns of c->row to send: all of them, or (patch) those that
 * differ from c->old, and the names c->old has and c->row lacks. */
static int row_shape(out_change *c)
{
	const tz_row *nw = c->row, *old = c->op == OP_PATCH ? c->old : NULL;

	if ((c->set = tz_calloc(nw->ncols + 1, sizeof(*c->set))) == NULL ||
	    (c->rem = tz_calloc((old ? old->ncols : 0) + 1, sizeof(*c->rem))) == NULL)
		return TZ_ENOMEM;
	for (size_t i = 0; i < nw->ncols; i++) {
		const tz_column *o = old ? tz_row_find(old, nw->cols[i].name, nw->cols[i].name_len) : NULL;
		if (o == NULL || !same_value(&o->v, &nw->cols[i].v))
			c->set[c->nset++] = &nw->cols[i];
	}
	for (size_t i = 0; old && i < old->ncols; i++)
		if (tz_row_find(nw, old->cols[i].name, old->cols[i].name_len) == NULL)
			c->rem[c->nrem++] = &old->cols[i];
	return TZ_OK;
}

static int collect(const char *const *comp, const size_t *len, size_t depth, const tz_oid *a,
		   const tz_oid *b, void *payload)
{
	pack_ctx *p = payload;
	out_change *c;
	tz_buf path = TZ_BUF_INIT;
	uint8_t *nd = NULL, *od = NULL;
	size_t nl = 0, ol = 0;
	bool row = is_row_path(comp, depth);
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
	if (row && tz_row_decode(&c->row, nd, nl) == TZ_OK) {
		c->op = OP_ROW;
		if (!tz_oid_is_zero(a) && read_blob(p->s, NULL, a, &od, &ol) == TZ_OK &&
		    tz_row_decode(&c->old, od, ol) == TZ_OK)
			c->op = OP_PATCH;
		tz_error_clear();   /* a parent row that does not decode is sent whole */
		rc = row_shape(c);
		/* a patch is sent only where it is smaller than the whole row */
		if (rc == TZ_OK && c->op == OP_PATCH && c->nrem == 0 && c->nset == c->row->ncols)
			c->op = OP_ROW;
	} else if (depth == 1 && len[0] == 4 && memcmp(comp[0], "_log", 4) == 0) {
		c->op = OP_LOG;   /* transcoded once all paths are known */
	}
	if (rc == TZ_OK && (c->op == OP_BLOB || c->op == OP_LOG)) {
		tz_error_clear();
		tz_buf_put(&c->data, nd, nl);
		rc = tz_buf_error(&c->data);
	}
	tz_free(nd);   /* decoded rows own copies of their bytes */
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

static int name_cmp(const void *x, const void *y)
{
	const tz_column *a = *(const tz_column *const *)x, *b = *(const tz_column *const *)y;
	size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = memcmp(a->name, b->name, n);

	return c ? c : a->name_len < b->name_len ? -1 : a->name_len > b->name_len;
}

/* Index of a name in the sorted, unique dictionary. */
static size_t name_index(const tz_column *const *names, size_t n, const tz_column *col)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = name_cmp(&names[mid], &col);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return n;   /* not reached: every name is in the dictionary */
}

static void put_value(tz_buf *b, const tz_value *v)
{
	uint64_t bits;

	tz_buf_putc(b, (uint8_t)v->type);
	switch (v->type) {
	case TZ_VINT:
		tz_buf_varint(b, ((uint64_t)v->i << 1) ^ (uint64_t)(v->i >> 63));
		break;
	case TZ_VREAL:
		memcpy(&bits, &v->r, 8);
		tz_buf_u64le(b, bits);
		break;
	case TZ_VTEXT:
	case TZ_VBLOB:
		tz_buf_varint(b, v->n);
		tz_buf_put(b, v->p, v->n);
		break;
	default:
		break;
	}
}

/* Indexes ascending: the first as is, then each gap less one. */
static void put_indexes(tz_buf *b, const size_t *ix, size_t n)
{
	tz_buf_varint(b, n);
	for (size_t i = 0; i < n; i++)
		tz_buf_varint(b, i == 0 ? ix[0] : ix[i] - ix[i - 1] - 1);
}

/* The _log blob, transcoded: line count, table names, then per line the
 * clock's step from the line before, the op letter, the table and a
 * reference to the changed path with that key (1 + index), or 0 and the
 * key itself.  *ok is false when the blob is not in the form this codec
 * reproduces exactly (it is then sent whole). */
static int encode_log(tz_buf *out, const uint8_t *p, size_t n, const out_change *ch, size_t nch, bool *ok)
{
	static const char head[] = "tazamun-log 1\n";
	tz_buf hl = TZ_BUF_INIT, ops = TZ_BUF_INIT, tb = TZ_BUF_INIT, keys = TZ_BUF_INIT;
	tz_hmap paths, tables;
	size_t off = sizeof(head) - 1, lines = 0, ntables = 0;
	uint64_t prev = 0;
	int rc = TZ_OK;

	*ok = false;
	tz_hmap__init(&paths);
	tz_hmap__init(&tables);
	if (n < off || memcmp(p, head, off) != 0)
		return TZ_OK;
	/* "table/key" of each row path -> 1 + its index */
	for (size_t i = 0; i < nch && rc == TZ_OK; i++) {
		const char *s1 = memchr(ch[i].path, '/', ch[i].len), *s2;
		tz_buf k = TZ_BUF_INIT;
		tz_hmap_slot *slot;
		bool added;
		if (ch[i].path[0] == '_' || s1 == NULL ||
		    (s2 = memchr(s1 + 1, '/', ch[i].len - (size_t)(s1 + 1 - ch[i].path))) == NULL)
			continue;
		tz_buf_put(&k, ch[i].path, (size_t)(s1 - ch[i].path) + 1);
		tz_buf_put(&k, s2 + 1, ch[i].len - (size_t)(s2 + 1 - ch[i].path));
		if ((rc = tz_buf_error(&k)) == TZ_OK && (rc = tz_hmap__upsert(&paths, k.data, k.len, &slot, &added)) == TZ_OK &&
		    added)
			slot->value = i + 1;
		tz_buf_release(&k);
	}
	while (rc == TZ_OK && off < n) {
		const uint8_t *e = memchr(p + off, '\n', n - off);
		const uint8_t *l = p + off, *t, *k;
		size_t len, tl, kl;
		uint64_t hlc = 0;
		tz_hmap_slot *slot;
		bool added;
		tz_buf tk = TZ_BUF_INIT;
		if (e == NULL)
			goto notours;
		len = (size_t)(e - l);
		if (len < 16 + 3 + 1 + 2 || l[16] != ' ' || l[18] != ' ' || !memchr("iudr", l[17], 4))
			goto notours;
		for (int i = 0; i < 16; i++) {
			int d = tz_row__hex_digit(l[i]);
			if (d < 0)
				goto notours;
			hlc = hlc << 4 | (uint64_t)d;
		}
		t = l + 19;
		k = memchr(t, ' ', len - 19);
		if (k == NULL || k == t || memchr(k + 1, ' ', (size_t)(e - k - 1)) || k + 1 == e)
			goto notours;
		tl = (size_t)(k - t);
		k++;
		kl = (size_t)(e - k);
		if (hlc < prev && lines > 0)
			goto notours;
		tz_buf_varint(&hl, lines ? hlc - prev : hlc);
		prev = hlc;
		tz_buf_putc(&ops, l[17]);
		if ((rc = tz_hmap__upsert(&tables, t, tl, &slot, &added)) < 0)
			break;
		if (added) {
			slot->value = ntables++;
			tz_buf_varint(&tb, tl);
			tz_buf_put(&tb, t, tl);
		}
		tz_buf_varint(&ops, slot->value);
		tz_buf_put(&tk, t, tl);
		tz_buf_putc(&tk, '/');
		tz_buf_put(&tk, k, kl);
		if ((rc = tz_buf_error(&tk)) == TZ_OK && (slot = tz_hmap__get(&paths, tk.data, tk.len)) != NULL) {
			tz_buf_varint(&keys, slot->value);
		} else {
			tz_buf_varint(&keys, 0);
			tz_buf_varint(&keys, kl);
			tz_buf_put(&keys, k, kl);
		}
		tz_buf_release(&tk);
		lines++;
		off += len + 1;
	}
	if (rc == TZ_OK) {
		tz_buf_varint(out, lines);
		tz_buf_varint(out, ntables);
		tz_buf_put(out, tb.data, tb.len);
		tz_buf_put(out, hl.data, hl.len);
		tz_buf_put(out, ops.data, ops.len);
		tz_buf_put(out, keys.data, keys.len);
		rc = tz_buf_error(out);
		*ok = rc == TZ_OK;
	}
notours:
	tz_hmap__release(&paths);
	tz_hmap__release(&tables);
	tz_buf_release(&hl);
	tz_buf_release(&ops);
	tz_buf_release(&tb);
	tz_buf_release(&keys);
	return rc;
}

static void release_changes(pack_ctx *p)
{
	for (size_t i = 0; i < p->n; i++) {
		out_change *c = &p->ch[i];
		tz_free(c->path);
		tz_buf_release(&c->data);
		tz_row_free(c->row);
		tz_row_free(c->old);
		tz_free(c->set);
		tz_free(c->rem);
	}
	tz_free(p->ch);
}

/* The sections of one commit's changes (sorted) into out. */
static int put_changes(tz_buf *out, out_change *ch, size_t n)
{
	const tz_column **names = NULL;
	size_t nnames = 0, total = 0, prev_len = 0, *ix = NULL, maxcols = 0;
	size_t *count = NULL, *start = NULL;
	struct slotref { size_t change; const tz_column *col; } *slots = NULL;
	const char *prev = "";
	int rc = TZ_OK;

	tz_buf_varint(out, n);
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		while (k < ch[i].len && k < prev_len && ch[i].path[k] == prev[k])
			k++;
		tz_buf_varint(out, k);
		tz_buf_varint(out, ch[i].len - k);
		tz_buf_put(out, ch[i].path + k, ch[i].len - k);
		prev = ch[i].path;
		prev_len = ch[i].len;
	}
	for (size_t i = 0; i < n; i++)
		tz_buf_putc(out, ch[i].op);
	/* the names dictionary */
	for (size_t i = 0; i < n; i++) {
		total += ch[i].nset + ch[i].nrem;
		if (ch[i].nset + ch[i].nrem > maxcols)
			maxcols = ch[i].nset + ch[i].nrem;
	}
	if ((names = tz_calloc(total + 1, sizeof(*names))) == NULL || (ix = tz_calloc(maxcols + 1, sizeof(*ix))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < ch[i].nset; j++)
			names[nnames++] = ch[i].set[j];
		for (size_t j = 0; j < ch[i].nrem; j++)
			names[nnames++] = ch[i].rem[j];
	}
	qsort(names, nnames, sizeof(*names), name_cmp);
	{
		size_t u = 0;
		for (size_t i = 0; i < nnames; i++)
			if (u == 0 || name_cmp(&names[u - 1], &names[i]) != 0)
				names[u++] = names[i];
		nnames = u;
	}
	tz_buf_varint(out, nnames);
	for (size_t i = 0; i < nnames; i++) {
		tz_buf_varint(out, names[i]->name_len);
		tz_buf_put(out, names[i]->name, names[i]->name_len);
	}
	/* shapes, and the value slots bucketed by name */
	if ((count = tz_calloc(nnames + 1, sizeof(*count))) == NULL ||
	    (start = tz_calloc(nnames + 1, sizeof(*start))) == NULL ||
	    (slots = tz_calloc(total + 1, sizeof(*slots))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		if (ch[i].op != OP_ROW && ch[i].op != OP_PATCH)
			continue;
		for (size_t j = 0; j < ch[i].nset; j++)
			count[ix[j] = name_index(names, nnames, ch[i].set[j])]++;
		put_indexes(out, ix, ch[i].nset);
		if (ch[i].op == OP_PATCH) {
			for (size_t j = 0; j < ch[i].nrem; j++)
				ix[j] = name_index(names, nnames, ch[i].rem[j]);
			put_indexes(out, ix, ch[i].nrem);
		}
	}
	for (size_t j = 1; j <= nnames; j++)
		start[j] = start[j - 1] + count[j - 1];
	memset(count, 0, (nnames + 1) * sizeof(*count));
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < ch[i].nset; j++) {
			size_t x = name_index(names, nnames, ch[i].set[j]);
			slots[start[x] + count[x]++] = (struct slotref){ i, ch[i].set[j] };
		}
	/* the values, column by column */
	for (size_t x = 0; x < nnames; x++)
		for (size_t k = 0; k < count[x]; k++)
			put_value(out, &slots[start[x] + k].col->v);
	/* whole blobs, then the log */
	for (size_t i = 0; i < n; i++)
		if (ch[i].op == OP_BLOB || ch[i].op == OP_LOG) {
			tz_buf_varint(out, ch[i].data.len);
			tz_buf_put(out, ch[i].data.data, ch[i].data.len);
		}
	rc = tz_buf_error(out);
done:
	tz_free(names);
	tz_free(ix);
	tz_free(count);
	tz_free(start);
	tz_free(slots);
	return rc;
}

static int pack_one(tz_store *s, tz_buf *out, const tz_oid *commit)
{
	pack_ctx p;
	tz_oid tree, parents[TZ_COMMIT_MAX_PARENTS], base = { { 0 } };
	git_object_t type;
	uint8_t *raw = NULL;
	size_t rawlen, np;
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
	if (p.n > 1)
		qsort(p.ch, p.n, sizeof(*p.ch), change_cmp);
	for (size_t i = 0; i < p.n && rc == TZ_OK; i++) {
		tz_buf enc = TZ_BUF_INIT;
		bool ok;
		if (p.ch[i].op != OP_LOG)
			continue;
		if ((rc = encode_log(&enc, p.ch[i].data.data, p.ch[i].data.len, p.ch, p.n, &ok)) == TZ_OK) {
			if (ok) {
				tz_buf_release(&p.ch[i].data);
				p.ch[i].data = enc;
				tz_buf_init(&enc, 0);
			} else {
				p.ch[i].op = OP_BLOB;
			}
		}
		tz_buf_release(&enc);
	}
	if (rc < 0)
		goto done;
	tz_buf_put(out, commit->id, 20);
	tz_buf_varint(out, rawlen);
	tz_buf_put(out, raw, rawlen);
	rc = put_changes(out, p.ch, p.n);
done:
	release_changes(&p);
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
	tz_path_change *ch;     /* per change: the tree path and the new blob */
	size_t nch;
	char (*fan)[2];
	char **paths;           /* the path strings of one commit */
	uint8_t *ops;
	size_t npaths;
	size_t path_bytes, path_cap;    /* what the paths take in memory, and its cap */
	size_t stage_cap;       /* what the rebuilt objects may take */
} unpack_ctx;

static void release_paths(unpack_ctx *u)
{
	for (size_t i = 0; u->paths && i < u->npaths; i++)
		tz_free(u->paths[i]);
	tz_free(u->paths);
	tz_free(u->fan);
	tz_free(u->ops);
	u->paths = NULL;
	u->fan = NULL;
	u->ops = NULL;
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
static int split_path(tz_path_change *c, char fan[2], const char *path, size_t len)
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
	return TZ_OK;
}

/* qsort of pointers to changes, in tree order */
static int change_ptr_cmp(const void *a, const void *b)
{
	return tz_path_change__cmp(*(tz_path_change *const *)a, *(tz_path_change *const *)b);
}

/* One row's columns while a commit is decoded. */
typedef struct {
	size_t nset, nrem;
	size_t *set, *rem;      /* name indexes */
	tz_value *vals;         /* per set column */
} in_shape;

/* A shape's column indexes into out (room for nnames): strictly
 * increasing, so never more than nnames of them. */
static int get_indexes(tz_reader *r, size_t *out, size_t *n, size_t nnames)
{
	uint64_t cnt, prev = 0;

	*n = 0;
	if (tz_reader_varint(r, &cnt, nnames) < 0)
		return corrupt("bad column count");
	for (uint64_t i = 0; i < cnt; i++) {
		uint64_t d;
		if (tz_reader_varint(r, &d, nnames) < 0)
			return corrupt("bad column index");
		prev = i == 0 ? d : prev + d + 1;
		if (prev >= nnames)
			return corrupt("column index past the names");
		out[i] = prev;
	}
	*n = cnt;
	return TZ_OK;
}

static int get_value(tz_reader *r, tz_value *v)
{
	uint8_t t;
	uint64_t x;
	const uint8_t *b;

	memset(v, 0, sizeof(*v));
	if (tz_reader_u8(r, &t) < 0 || t < TZ_VINT || t > TZ_VNULL)
		return corrupt("bad value type");
	v->type = (tz_vtype)t;
	switch (v->type) {
	case TZ_VINT:
		if (tz_reader_varint(r, &x, UINT64_MAX) < 0)
			return corrupt("bad integer");
		v->i = (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
		return TZ_OK;
	case TZ_VREAL:
		if (tz_reader_u64le(r, &x) < 0)
			return corrupt("truncated real");
		memcpy(&v->r, &x, 8);
		if (v->r != v->r)
			return corrupt("a real that is not a number (SQLite stores none)");
		return TZ_OK;
	case TZ_VTEXT:
	case TZ_VBLOB:
		if (tz_reader_varint(r, &x, TZ_ROW_MAX_BYTES) < 0 || tz_reader_bytes(r, &b, x) < 0)
			return corrupt("truncated text or blob");
		v->p = b;
		v->n = x;
		return TZ_OK;
	default:
		return TZ_OK;
	}
}

/* A row from its shape: the parent's row old_oid (a patch) with columns
 * removed and set, or (NULL: whole) just the columns; re-encoded
 * canonically. */
/* A patch as text (tz_row_patch): the parent's lines the patch leaves
 * are copied, not decoded and encoded again.  1: not handled there. */
static int patch_row(unpack_ctx *u, tz_buf *out, const tz_oid *old_oid, const in_shape *sh, const tz_column *names)
{
	tz_column set[64], rem[64];
	git_odb_object *obj;
	git_object_t type;
	const uint8_t *od;
	size_t ol;
	int rc;

	if (sh->nset > 64 || sh->nrem > 64)
		return 1;
	for (size_t i = 0; i < sh->nset; i++) {
		set[i] = names[sh->set[i]];
		set[i].v = sh->vals[i];
	}
	for (size_t i = 0; i < sh->nrem; i++)
		rem[i] = names[sh->rem[i]];
	if ((rc = tz_obj__peek(u->s, u->st, old_oid, &type, &od, &ol, &obj)) < 0)
		return rc;
	rc = type == GIT_OBJECT_BLOB ? tz_row_patch(out, od, ol, set, sh->nset, rem, sh->nrem) : 1;
	git_odb_object_free(obj);
	return rc;
}

static int build_row(unpack_ctx *u, tz_buf *out, const tz_oid *old_oid, const in_shape *sh, const tz_column *names)
{
	uint8_t *od = NULL;
	size_t ol, ncols = 0;
	tz_row *old = NULL;
	tz_column *cols = NULL;
	int rc = TZ_OK;

	if (old_oid != NULL && (rc = patch_row(u, out, old_oid, sh, names)) <= 0)
		return rc;
	rc = TZ_OK;
	if (old_oid != NULL &&
	    ((rc = read_blob(u->s, u->st, old_oid, &od, &ol)) < 0 || (rc = tz_row_decode(&old, od, ol)) < 0))
		goto done;
	if ((cols = tz_calloc((old ? old->ncols : 0) + sh->nset + 1, sizeof(*cols))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	for (size_t i = 0; old && i < old->ncols; i++)
		cols[ncols++] = old->cols[i];
	for (size_t i = 0; i < sh->nrem; i++) {
		const tz_column *nm = &names[sh->rem[i]];
		bool found = false;
		for (size_t k = 0; k < ncols; k++)
			if (cols[k].name && cols[k].name_len == nm->name_len && memcmp(cols[k].name, nm->name, nm->name_len) == 0) {
				cols[k].name = NULL;
				found = true;
			}
		if (!found) {
			rc = corrupt("a patch removes a column the row does not have");
			goto done;
		}
	}
	for (size_t i = 0; i < sh->nset; i++) {
		const tz_column *nm = &names[sh->set[i]];
		size_t k;
		for (k = 0; k < ncols; k++)
			if (cols[k].name && cols[k].name_len == nm->name_len && memcmp(cols[k].name, nm->name, nm->name_len) == 0)
				break;
		cols[k].name = nm->name;
		cols[k].name_len = nm->name_len;
		cols[k].v = sh->vals[i];
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
	/* the values were read as the payload gave them: a row they cannot
	 * make is the payload's fault */
	if ((rc = tz_row_encode(out, cols, ncols)) == TZ_EINVAL)
		rc = tz_error_wrap(TZ_ECORRUPT, "payload");
done:
	tz_free(cols);
	tz_row_free(old);
	tz_free(od);
	return rc;
}

/* The _log blob from its transcoding (encode_log). */
static int decode_log(tz_buf *out, const uint8_t *p, size_t n, const unpack_ctx *u)
{
	tz_reader r, h, o, k;
	uint64_t lines, ntables, prev = 0;
	const uint8_t **tname = NULL;
	size_t *tlen = NULL;
	/* a line's references make it longer than its transcoding: about 15x
	 * for agency keys, 30x for long ones; 64x and the absolute cap keep a
	 * hostile log from multiplying a payload into gigabytes */
	size_t cap = n > (LOG_MAX_BYTES - 65536) / LOG_MAX_RATIO ? LOG_MAX_BYTES : n * LOG_MAX_RATIO + 65536;
	int rc = TZ_OK;

	tz_reader_init(&r, p, n);
	/* a line takes at least 3 bytes of the transcoding */
	if (tz_reader_varint(&r, &lines, n / 3) < 0 || tz_reader_varint(&r, &ntables, n) < 0)
		return corrupt("log: bad counts");
	if ((tname = tz_calloc(ntables + 1, sizeof(*tname))) == NULL || (tlen = tz_calloc(ntables + 1, sizeof(*tlen))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	for (uint64_t i = 0; i < ntables; i++) {
		uint64_t l;
		if (tz_reader_varint(&r, &l, TZ_KEY_MAX_BYTES) < 0 || tz_reader_bytes(&r, &tname[i], l) < 0 ||
		    !name_ok((const char *)tname[i], l)) {
			rc = corrupt("log: bad table name");
			goto done;
		}
		tlen[i] = l;
	}
	/* three streams follow: clock steps, op and table, key references */
	h = r;
	{
		/* find where the streams split: walk the clock steps first */
		for (uint64_t i = 0; i < lines; i++) {
			uint64_t d;
			if (tz_reader_varint(&r, &d, UINT64_MAX) < 0) {
				rc = corrupt("log: truncated clock");
				goto done;
			}
		}
		h.len = (size_t)(r.p - h.p);
		o = r;
		for (uint64_t i = 0; i < lines; i++) {
			uint8_t c;
			uint64_t t;
			if (tz_reader_u8(&r, &c) < 0 || tz_reader_varint(&r, &t, ntables ? ntables - 1 : 0) < 0) {
				rc = corrupt("log: truncated ops");
				goto done;
			}
		}
		o.len = (size_t)(r.p - o.p);
		k = r;
	}
	tz_buf_puts(out, "tazamun-log 1\n");
	for (uint64_t i = 0; i < lines; i++) {
		uint64_t d, t, ref;
		uint8_t op;
		const uint8_t *key;
		size_t kl;
		if (tz_reader_varint(&h, &d, UINT64_MAX) < 0 || tz_reader_u8(&o, &op) < 0 ||
		    tz_reader_varint(&o, &t, ntables ? ntables - 1 : 0) < 0 || tz_reader_varint(&k, &ref, u->nch) < 0 ||
		    ntables == 0) {
			rc = corrupt("log: truncated");
			goto done;
		}
		if (!memchr("iudr", op, 4) || (i > 0 && d > UINT64_MAX - prev)) {
			rc = corrupt("log: bad entry");
			goto done;
		}
		prev = i ? prev + d : d;
		if (ref == 0) {
			uint64_t l;
			if (tz_reader_varint(&k, &l, TZ_KEY_MAX_BYTES) < 0 || tz_reader_bytes(&k, &key, l) < 0 || l == 0 ||
			    memchr(key, ' ', l) || memchr(key, '\n', l)) {
				rc = corrupt("log: bad key");
				goto done;
			}
			kl = l;
		} else {
			/* the key of the referenced row path: its last component */
			const char *path = u->paths[ref - 1];
			const char *slash = strrchr(path, '/');
			if (path[0] == '_' || slash == NULL) {
				rc = corrupt("log: a reference to a path that is not a row");
				goto done;
			}
			key = (const uint8_t *)slash + 1;
			kl = strlen(slash + 1);
		}
		tz_buf_printf(out, "%016llx %c ", (unsigned long long)prev, op);
		tz_buf_put(out, tname[t], tlen[t]);
		tz_buf_putc(out, ' ');
		tz_buf_put(out, key, kl);
		tz_buf_putc(out, '\n');
		if (out->len > cap) {
			rc = tz_error_set(TZ_ELIMIT, "payload: log: decodes to more than %zu bytes (%zu transcoded)", cap, n);
			goto done;
		}
	}
	if (!tz_reader_done(&k))
		rc = corrupt("log: trailing bytes");
	else
		rc = tz_buf_error(out);
done:
	tz_free(tname);
	tz_free(tlen);
	return rc;
}

/* One commit of the payload: its changes applied to its first parent. */
static int unpack_one(unpack_ctx *u, tz_oid *out)
{
	tz_reader *r = &u->r;
	const uint8_t *declared, *raw;
	uint64_t rawlen, nch, nnames;
	tz_oid tree, parents[TZ_COMMIT_MAX_PARENTS], base = { { 0 } }, root, got;
	size_t np, prev_len = 0;
	const char *prev = "";
	char hex[41], hex2[41];
	tz_column *names = NULL;
	tz_reader shapes, *cur = NULL;
	size_t *count = NULL, *set = NULL, *rem = NULL;
	tz_value *vals = NULL;
	tz_path_change **order = NULL;
	tz_oid *old = NULL;
	bool empty;
	int rc = TZ_OK;

	if (tz_reader_bytes(r, &declared, 20) < 0 || tz_reader_varint(r, &rawlen, COMMIT_MAX) < 0 ||
	    tz_reader_bytes(r, &raw, rawlen) < 0)
		return corrupt("truncated commit");
	memcpy(out->id, declared, 20);
	tz_oid_fmt(hex, out);
	if ((rc = parse_commit_head(raw, rawlen, &tree, parents, TZ_COMMIT_MAX_PARENTS, &np)) < 0)
		return tz_error_wrap(rc, "payload: commit %s", hex);
	for (size_t i = 0; i < np; i++) {
		/* the type only: a parent's size is none of the payload's business */
		const struct tz_obj *o = tz_staging__find(u->st, &parents[i]);
		git_object_t type = GIT_OBJECT_INVALID;
		size_t l;
		if (o != NULL)
			type = o->type;
		else if (git_odb_read_header(&l, &type, u->s->odb, (const git_oid *)parents[i].id) < 0)
			type = GIT_OBJECT_INVALID;
		tz_oid_fmt(hex2, &parents[i]);
		if (type == GIT_OBJECT_INVALID)
			return tz_error_set(TZ_ENOTFOUND, "missing prerequisite: commit %s (parent of %s) is not here",
					    hex2, hex);
		if (type != GIT_OBJECT_COMMIT)
			return corrupt("a parent that is not a commit");
	}
	if (np > 0) {
		tz_oid pp[TZ_COMMIT_MAX_PARENTS];
		size_t npp;
		if ((rc = tz_commit__parse(u->s, u->st, &parents[0], &base, pp, TZ_COMMIT_MAX_PARENTS, &npp)) < 0)
			return rc;
	}
	/* a change takes at least 3 bytes (path and op) */
	if (tz_reader_varint(r, &nch, r->len / 3) < 0)
		return corrupt("bad change count");
	release_paths(u);
	if ((u->fan = tz_calloc(nch + 1, sizeof(*u->fan))) == NULL ||
	    (u->paths = tz_calloc(nch + 1, sizeof(*u->paths))) == NULL || (u->ops = tz_calloc(nch + 1, 1)) == NULL)
		return TZ_ENOMEM;
	u->npaths = nch;
	tz_free(u->ch);
	if ((u->ch = tz_calloc(nch + 1, sizeof(*u->ch))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	for (uint64_t i = 0; i < nch; i++) {
		uint64_t k, sl;
		const uint8_t *suffix;
		char *path;
		if (tz_reader_varint(r, &k, prev_len) < 0 || tz_reader_varint(r, &sl, PATH_MAX_BYTES - k) < 0 ||
		    tz_reader_bytes(r, &suffix, sl) < 0) {
			rc = corrupt("bad change path");
			goto done;
		}
		/* a path shares its prefix in the payload, not in memory: what
		 * the paths may take is bounded by the payload's size */
		u->path_bytes += k + sl + 1;
		if (u->path_bytes > u->path_cap) {
			rc = tz_error_set(TZ_ELIMIT, "payload: its paths take more than %zu bytes", u->path_cap);
			goto done;
		}
		if ((path = u->paths[i] = tz_malloc(k + sl + 1)) == NULL) {
			rc = TZ_ENOMEM;
			goto done;
		}
		memcpy(path, prev, k);
		memcpy(path + k, suffix, sl);
		path[k + sl] = '\0';
		if (i > 0) {
			/* strictly increasing, bytewise: a prefix sorts first */
			size_t len = k + sl;
			int c = memcmp(prev, path, len < prev_len ? len : prev_len);
			if (c > 0 || (c == 0 && len <= prev_len)) {
				rc = corrupt("changes out of order");
				goto done;
			}
		}
		if ((rc = split_path(&u->ch[i], u->fan[i], path, k + sl)) < 0)
			goto done;
		u->nch++;
		prev = path;
		prev_len = k + sl;
	}
	for (uint64_t i = 0; i < nch; i++) {
		if (tz_reader_u8(r, &u->ops[i]) < 0 || u->ops[i] > OP_LOG) {
			rc = corrupt("bad op");
			goto done;
		}
		if ((u->ops[i] == OP_ROW || u->ops[i] == OP_PATCH) && u->ch[i].depth != TZ_PATH_DEPTH) {
			rc = corrupt("row columns for a file that is not a row");
			goto done;
		}
		if (u->ops[i] == OP_LOG && (u->ch[i].depth != 1 || strcmp(u->paths[i], "_log") != 0)) {
			rc = corrupt("a transcoded log that is not _log");
			goto done;
		}
	}
	/* names */
	/* a name takes at least 2 bytes */
	if (tz_reader_varint(r, &nnames, r->len / 2) < 0) {
		rc = corrupt("bad name count");
		goto done;
	}
	if ((names = tz_calloc(nnames + 1, sizeof(*names))) == NULL ||
	    (count = tz_calloc(nnames + 1, sizeof(*count))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	for (uint64_t i = 0; i < nnames; i++) {
		uint64_t l;
		const uint8_t *b;
		if (tz_reader_varint(r, &l, TZ_ROW_MAX_NAME) < 0 || l == 0 || tz_reader_bytes(r, &b, l) < 0) {
			rc = corrupt("bad column name");
			goto done;
		}
		names[i].name = (const char *)b;
		names[i].name_len = l;
		/* sorted and unique, as the writer makes them: a row can then
		 * never set one column twice */
		if (i > 0) {
			const tz_column *a = &names[i - 1];
			size_t m = a->name_len < l ? a->name_len : l;
			int c = memcmp(a->name, b, m);
			if (c > 0 || (c == 0 && a->name_len >= l)) {
				rc = corrupt("column names not sorted, or repeated");
				goto done;
			}
		}
	}
	/* Shapes and values are checked here in full, then read a second
	 * time, change by change, as the rows are built: a commit's values
	 * never sit decoded in memory all at once (they took ~20 MB of an
	 * import of 100,000 changed rows).  Shapes come in change order;
	 * values column by column, each column's in change order, so each
	 * column gets a cursor at the start of its run. */
	if ((set = tz_calloc(nnames + 1, sizeof(*set))) == NULL || (rem = tz_calloc(nnames + 1, sizeof(*rem))) == NULL ||
	    (vals = tz_calloc(nnames + 1, sizeof(*vals))) == NULL || (cur = tz_calloc(nnames + 1, sizeof(*cur))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	shapes = *r;
	for (uint64_t i = 0; i < nch; i++) {
		size_t nset, nrem;
		if (u->ops[i] != OP_ROW && u->ops[i] != OP_PATCH)
			continue;
		if ((rc = get_indexes(r, set, &nset, nnames)) < 0 ||
		    (u->ops[i] == OP_PATCH && (rc = get_indexes(r, rem, &nrem, nnames)) < 0))
			goto done;
		for (size_t j = 0; j < nset; j++)
			count[set[j]]++;
	}
	for (uint64_t x = 0; x < nnames; x++) {
		cur[x] = *r;
		for (size_t k = 0; k < count[x]; k++)
			if ((rc = get_value(r, &vals[0])) < 0)
				goto done;
	}
	/* The rows patched need their parent's row.  Looked up in tree
	 * order (the payload's is by key, which scatters over the fanout),
	 * so that consecutive lookups read the same leaf. */
	if ((order = tz_calloc(nch + 1, sizeof(*order))) == NULL || (old = tz_calloc(nch + 1, sizeof(*old))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	for (uint64_t i = 0; i < nch; i++)
		order[i] = &u->ch[i];
	qsort(order, nch, sizeof(*order), change_ptr_cmp);
	for (uint64_t k = 0; k < nch; k++) {
		size_t i = (size_t)(order[k] - u->ch);
		size_t len[TZ_PATH_DEPTH];
		if (u->ops[i] != OP_PATCH)
			continue;
		tz_path_change__lens(&u->ch[i], len);
		if ((rc = tz_tree__lookup(u->s, u->st, &old[i], &base, u->ch[i].comp, len, TZ_PATH_DEPTH)) < 0)
			goto done;
		if (tz_oid_is_zero(&old[i])) {
			rc = corrupt("a column patch to a row the parent does not have");
			goto done;
		}
	}
	tz_free(order);
	order = NULL;
	/* blobs: stage every new blob, in change order */
	for (uint64_t i = 0; i < nch; i++) {
		tz_path_change *c = &u->ch[i];
		tz_buf blob = TZ_BUF_INIT;
		if (u->ops[i] == OP_DELETE) {
			c->del = true;
			continue;
		}
		if (u->ops[i] == OP_BLOB || u->ops[i] == OP_LOG) {
			uint64_t dl;
			const uint8_t *d;
			if (tz_reader_varint(r, &dl, TZ_ROW_MAX_BYTES) < 0 || tz_reader_bytes(r, &d, dl) < 0) {
				rc = corrupt("truncated blob");
				goto done;
			}
			if (u->ops[i] == OP_LOG)
				rc = decode_log(&blob, d, dl, u);
			else
				tz_buf_put(&blob, d, dl);
		} else {
			in_shape sh = { 0, 0, set, rem, vals };
			/* read before: these cannot fail now */
			if ((rc = get_indexes(&shapes, set, &sh.nset, nnames)) == TZ_OK && u->ops[i] == OP_PATCH)
				rc = get_indexes(&shapes, rem, &sh.nrem, nnames);
			for (size_t j = 0; j < sh.nset && rc == TZ_OK; j++)
				rc = get_value(&cur[set[j]], &vals[j]);
			if (rc == TZ_OK)
				rc = build_row(u, &blob, u->ops[i] == OP_PATCH ? &old[i] : NULL, &sh, names);
		}
		if (rc == TZ_OK)
			rc = tz_staging__add(u->s, u->st, &c->oid, GIT_OBJECT_BLOB, blob.data ? blob.data : (const uint8_t *)"",
					     blob.len);
		tz_buf_release(&blob);
		if (rc < 0) {
			tz_error_wrap(rc, "payload: commit %s, %s", hex, u->paths[i]);
			goto done;
		}
	}
	qsort(u->ch, u->nch, sizeof(*u->ch), tz_path_change__cmp);
	for (size_t i = 1; i < u->nch; i++)
		if (tz_path_change__cmp(&u->ch[i - 1], &u->ch[i]) == 0) {
			rc = corrupt("two changes to one path");
			goto done;
		}
	if ((rc = tz_tree__apply(u->s, u->st, &root, &empty, &base, 0, u->ch, u->nch)) < 0) {
		tz_error_wrap(rc, "payload: commit %s", hex);
		goto done;
	}
	if (empty && (rc = tz_tree__write(u->s, u->st, &root, NULL, 0)) < 0)
		goto done;
	if (memcmp(&root, &tree, sizeof(root)) != 0) {
		tz_oid_fmt(hex2, &root);
		rc = tz_error_set(TZ_EVERIFY, "payload: commit %s: the rebuilt tree %s is not the tree the commit names",
				  hex, hex2);
		goto done;
	}
	if ((rc = tz_staging__add(u->s, u->st, &got, GIT_OBJECT_COMMIT, raw, rawlen)) < 0)
		goto done;
	if (memcmp(&got, out, sizeof(got)) != 0)
		rc = tz_error_set(TZ_EVERIFY, "payload: commit %s: its bytes hash to another id", hex);
done:
	tz_free(set);
	tz_free(rem);
	tz_free(vals);
	tz_free(cur);
	tz_free(order);
	tz_free(old);
	tz_free(names);
	tz_free(count);
	return rc;
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
	u.path_cap = n > (STAGE_MAX - ((size_t)1 << 20)) / 64 ? STAGE_MAX : 64 * n + ((size_t)1 << 20);
	u.stage_cap = n > (STAGE_MAX - STAGE_BASE) / 64 ? STAGE_MAX : 64 * n + STAGE_BASE;
	for (uint64_t i = 0; i < nc && rc == TZ_OK; i++) {
		rc = unpack_one(&u, &(*commits)[i]);
		tz_progress__report(s, "rebuilding commits", i + 1, nc);
		/* each patch stages its whole row again: a long chain of small
		 * patches to a large row must not grow without bound */
		if (rc == TZ_OK && st->bytes > u.stage_cap)
			rc = tz_error_set(TZ_ELIMIT, "payload: rebuilding its commits takes more than %zu bytes", u.stage_cap);
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

int tz_store_payload_check(tz_store *s, const void *payload, size_t n, size_t *ncommits)
{
	tz_staging st;
	tz_oid *commits = NULL;
	int rc;

	*ncommits = 0;
	tz_staging__init(&st);
	rc = tz_transfer__unpack(s, &st, payload, n, &commits, ncommits);
	tz_free(commits);
	tz_staging__release(&st);
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
	return read_typed(s, st, commit, GIT_OBJECT_COMMIT, raw, n);
}

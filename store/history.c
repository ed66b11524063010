/*
 * history.c - rows as git objects: staging of new objects, trees (parse,
 * write, apply changes, walk two trees), signed commits and the ref.
 *
 * Trees are written by this file, not by libgit2's treebuilder: the
 * treebuilder writes each tree as a loose object at once, while a commit
 * here stages every new object in memory and writes them all in one pack
 * (pack.c).  The tree format is git's: entries "<mode> <name>\0<20-byte
 * id>", sorted by name as if trees had a trailing '/'.  Layout:
 * docs/store-layout.md.  Every walk compares ids first and never descends
 * into equal subtrees, so its cost follows what changed.
 */
#include "store/store_int.h"

#include <git2/sys/odb_backend.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


/* A tree holds at most 1M entries: a leaf holds tens to hundreds of rows,
 * the root one entry per table; anything bigger is not ours. */
#define TZ_TREE_MAX_ENTRIES (1u << 20)
/* Our trees are four levels below the root; stop hostile nesting early. */
#define TZ_TREE_MAX_DEPTH 8

void tz_staging__init(tz_staging *st)
{
	memset(st, 0, sizeof(*st));
}

/* Where oid's slot is, or the empty slot it would take.  Ids are SHA-1
 * digests: their first bytes are already uniform. */
static uint32_t *id_slot(const tz_staging *st, const tz_oid *oid)
{
	uint64_t h;
	size_t i;

	memcpy(&h, oid->id, sizeof(h));
	for (i = (size_t)h & (st->nslot - 1);; i = (i + 1) & (st->nslot - 1)) {
		uint32_t v = st->slot[i];
		if (v == 0 || memcmp(st->objs[v - 1].oid.id, oid->id, 20) == 0)
			return &st->slot[i];
	}
}

const struct tz_obj *tz_staging__find(const tz_staging *st, const tz_oid *oid)
{
	uint32_t v;

	if (st->nslot == 0)
		return NULL;
	v = *id_slot(st, oid);
	return v ? &st->objs[v - 1] : NULL;
}

/* Room for one more id, at most half the slots used. */
static int id_room(tz_staging *st)
{
	uint32_t *old = st->slot, *slot;
	size_t nslot = st->nslot ? st->nslot * 2 : 1024;

	if ((st->n + 1) * 2 <= st->nslot)
		return TZ_OK;
	if (st->n >= UINT32_MAX / 2)
		return tz_error_set(TZ_ELIMIT, "too many new objects in one commit");
	if ((slot = tz_calloc(nslot, sizeof(*slot))) == NULL)
		return TZ_ENOMEM;
	st->slot = slot;
	st->nslot = nslot;
	for (size_t i = 0; i < st->n; i++)
		*id_slot(st, &st->objs[i].oid) = (uint32_t)(i + 1);
	tz_free(old);
	return TZ_OK;
}

void tz_staging__drop_packed(tz_staging *st)
{
	size_t keep = 0, nslot = 1024;
	uint32_t *slot;
	struct tz_obj *objs;

	for (size_t i = 0; i < st->n; i++) {
		if (st->objs[i].in_pack) {
			tz_free(st->objs[i].data);
			st->ndropped++;
			continue;
		}
		st->objs[keep++] = st->objs[i];
	}
	st->n = keep;
	st->held = 0;
	for (size_t i = 0; i < keep; i++)
		if (st->objs[i].type != GIT_OBJECT_COMMIT)
			st->held += st->objs[i].len;
	/* smaller tables when they can be had; else the old ones, emptied */
	while (nslot < keep * 2)
		nslot *= 2;
	if (nslot < st->nslot && (slot = tz_calloc(nslot, sizeof(*slot))) != NULL) {
		tz_free(st->slot);
		st->slot = slot;
		st->nslot = nslot;
	} else if (st->nslot > 0) {
		memset(st->slot, 0, st->nslot * sizeof(*st->slot));
	}
	for (size_t i = 0; i < keep; i++)
		*id_slot(st, &st->objs[i].oid) = (uint32_t)(i + 1);
	if (keep < st->cap / 4 && (objs = tz_realloc(st->objs, (keep + 64) * sizeof(*objs))) != NULL) {
		st->objs = objs;
		st->cap = keep + 64;
	}
}

void tz_staging__release(tz_staging *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->n; i++)
		tz_free(st->objs[i].data);
	tz_free(st->objs);
	tz_free(st->slot);
	memset(st, 0, sizeof(*st));
}

/* The spill threshold of st; TZ_SPILL_BYTES=N (tests) lowers it so that
 * small stores go through the spill too (tests/cli/t17-spill.sh). */
static size_t spill_bytes(const tz_staging *st)
{
	static size_t v;   /* every thread computes the same value */

	if (v == 0) {
		const char *e = getenv("TZ_SPILL_BYTES");
		unsigned long long x = e ? strtoull(e, NULL, 10) : 0;
		v = x > 0 && x < TZ_STAGING_SPILL_BYTES ? (size_t)x : SIZE_MAX;
	}
	return v < st->spill ? v : st->spill;
}

/* tz_staging__add and tz_staging__take: `own`, the buffer to keep (and to
 * free when the object is not staged), or NULL to copy `data`. */
static int stage(tz_store *s, tz_staging *st, tz_oid *oid_out, git_object_t type, const void *data, size_t len,
		 uint8_t *own)
{
	int rc;

	if (st == s->pending) {   /* a thread is reading it (tz_pack__start) */
		tz_free(own);
		return tz_error_set(TZ_EINVAL, "internal error: an object added to a staging being written");
	}
	if (git_odb_hash((git_oid *)oid_out->id, data, len, type) < 0) {
		tz_free(own);
		return tz_git__error("cannot hash object");
	}
	if (tz_staging__find(st, oid_out) || (s->pending && tz_staging__find(s->pending, oid_out)) ||
	    s->packs->exists(s->packs, (const git_oid *)oid_out->id)) {
		tz_free(own);
		return TZ_OK;
	}
	if ((rc = tz_array_grow(&st->objs, &st->cap, st->n, sizeof(*st->objs))) < 0 || (rc = id_room(st)) < 0) {
		tz_free(own);
		return rc;
	}
	if (own == NULL) {
		if ((own = tz_malloc(len ? len : 1)) == NULL)
			return TZ_ENOMEM;
		memcpy(own, data, len);
	}
	st->objs[st->n].data = own;
	st->bytes += len;
	st->objs[st->n].len = len;
	st->objs[st->n].type = type;
	st->objs[st->n].oid = *oid_out;
	st->objs[st->n].in_pack = false;
	*id_slot(st, oid_out) = (uint32_t)++st->n;
	if (type != GIT_OBJECT_COMMIT)
		st->held += len;
	return st->spill && st->held > spill_bytes(st) ? tz_pack__spill(s, st) : TZ_OK;
}

int tz_staging__add(tz_store *s, tz_staging *st, tz_oid *oid_out, git_object_t type, const void *data, size_t len)
{
	return stage(s, st, oid_out, type, data, len, NULL);
}

int tz_staging__take(tz_store *s, tz_staging *st, tz_oid *oid_out, git_object_t type, uint8_t *data, size_t len)
{
	return stage(s, st, oid_out, type, data, len, data);
}

int tz_obj__peek(tz_store *s, const tz_staging *st, const tz_oid *oid, git_object_t *type_out, const uint8_t **data_out,
		 size_t *len_out, git_odb_object **obj)
{
	const struct tz_obj *o = NULL;
	char hex[41];

	*obj = NULL;
	*data_out = NULL;
	*len_out = 0;
	/* a spilled object (no bytes) is in the object database now */
	for (; st != NULL && o == NULL; st = st->also)
		if ((o = tz_staging__find(st, oid)) != NULL && o->data == NULL)
			o = NULL;
	if (o != NULL) {
		*type_out = o->type;
		*data_out = o->data;
		*len_out = o->len;
		return TZ_OK;
	}
	if (git_odb_read(obj, s->odb, (const git_oid *)oid->id) < 0) {
		tz_oid_fmt(hex, oid);
		return git_error_last() && git_error_last()->klass == GIT_ERROR_ODB &&
				       strstr(git_error_last()->message, "not found")
			       ? tz_error_set(TZ_ENOTFOUND, "object %s is missing", hex)
			       : tz_error_set(TZ_EVERIFY, "object %s is corrupt: %s", hex,
					      git_error_last() ? git_error_last()->message : "unreadable");
	}
	*type_out = git_odb_object_type(*obj);
	*data_out = git_odb_object_data(*obj);
	*len_out = git_odb_object_size(*obj);
	if (s->check_hashes) {
		git_oid got;
		if (git_odb_hash(&got, *data_out, *len_out, *type_out) < 0 || memcmp(got.id, oid->id, 20) != 0) {
			git_odb_object_free(*obj);
			*obj = NULL;
			tz_oid_fmt(hex, oid);
			return tz_error_set(TZ_EVERIFY, "object %s is corrupt: its bytes hash to another id", hex);
		}
	}
	return TZ_OK;
}

int tz_obj__read(tz_store *s, const tz_staging *st, const tz_oid *oid, git_object_t *type_out,
		 uint8_t **data_out, size_t *len_out)
{
	git_odb_object *obj;
	const uint8_t *src;
	int rc;

	*data_out = NULL;
	if ((rc = tz_obj__peek(s, st, oid, type_out, &src, len_out, &obj)) < 0)
		return rc;
	if ((*data_out = tz_malloc(*len_out)) != NULL)
		memcpy(*data_out, src, *len_out);
	git_odb_object_free(obj);
	return *data_out ? TZ_OK : TZ_ENOMEM;
}

int tz_obj__read_row(tz_store *s, const tz_staging *st, const tz_oid *oid, tz_row **out)
{
	git_odb_object *obj;
	git_object_t type;
	const uint8_t *data;
	size_t n;
	int rc;

	*out = NULL;
	if (tz_oid_is_zero(oid))
		return TZ_OK;
	if ((rc = tz_obj__peek(s, st, oid, &type, &data, &n, &obj)) == TZ_OK)
		rc = type == GIT_OBJECT_BLOB ? tz_row_decode(out, data, n)
					     : tz_error_set(TZ_ECORRUPT, "a row path holds no blob");
	git_odb_object_free(obj);
	return rc;
}

/* ---- trees ---- */

int tz_tree__cmp(const tz_tree_entry *a, const tz_tree_entry *b)
{
	size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = memcmp(a->name, b->name, n);
	int ca, cb;

	if (c)
		return c;
	ca = a->name_len > n ? (uint8_t)a->name[n] : (a->mode == 040000 ? '/' : 0);
	cb = b->name_len > n ? (uint8_t)b->name[n] : (b->mode == 040000 ? '/' : 0);
	return ca - cb;
}

static int entry_qsort_cmp(const void *a, const void *b)
{
	return tz_tree__cmp(a, b);
}

void tz_tree__sort(tz_tree_entry *e, size_t n)
{
	size_t i = 1;

	/* a merge of sorted trees mostly hands its entries in order */
	while (i < n && tz_tree__cmp(&e[i - 1], &e[i]) < 0)
		i++;
	if (i < n)
		qsort(e, n, sizeof(*e), entry_qsort_cmp);
}

void tz_tree__release(tz_tree *t)
{
	if (t == NULL)
		return;
	tz_free(t->data);
	tz_free(t->e);
	memset(t, 0, sizeof(*t));
}

/* Parse one entry "<mode> <name>\0<id>" at the reader. */
static int parse_entry(tz_reader *r, tz_tree_entry *e)
{
	const uint8_t *p = r->p, *end = r->p + r->len;
	const uint8_t *sp = memchr(p, ' ', r->len), *nul;
	const uint8_t *id;

	if (sp == NULL || sp - p > 6)
		return tz_error_set(TZ_ECORRUPT, "bad tree entry mode");
	if (sp - p == 6 && memcmp(p, "100644", 6) == 0)
		e->mode = 0100644;
	else if (sp - p == 5 && memcmp(p, "40000", 5) == 0)
		e->mode = 040000;
	else
		return tz_error_set(TZ_ECORRUPT, "tree entry mode '%.*s' is not one Tazamun writes",
				    (int)(sp - p), (const char *)p);
	nul = memchr(sp + 1, 0, (size_t)(end - sp - 1));
	if (nul == NULL || nul == sp + 1)
		return tz_error_set(TZ_ECORRUPT, "bad tree entry name");
	e->name = (const char *)sp + 1;
	e->name_len = (size_t)(nul - sp - 1);
	if (memchr(e->name, '/', e->name_len))
		return tz_error_set(TZ_ECORRUPT, "tree entry name contains '/'");
	r->len -= (size_t)(nul + 1 - p);
	r->p = nul + 1;
	if (tz_reader_bytes(r, &id, 20) < 0)
		return tz_error_set(TZ_ECORRUPT, "truncated tree entry");
	memcpy(e->oid.id, id, 20);
	return TZ_OK;
}

int tz_tree__read(tz_store *s, const tz_staging *st, const tz_oid *oid, tz_tree *out)
{
	git_object_t type;
	tz_reader r;
	size_t cap = 0;
	char hex[41];
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = tz_obj__read(s, st, oid, &type, &out->data, &cap)) < 0)
		return rc;
	tz_oid_fmt(hex, oid);
	if (type != GIT_OBJECT_TREE) {
		rc = tz_error_set(TZ_ECORRUPT, "object %s is not a tree", hex);
		goto fail;
	}
	tz_reader_init(&r, out->data, cap);
	/* an entry takes at least 28 bytes (parse_entry: "40000", space, a
	 * 1-byte name, NUL, id), so the tree's size bounds their count: room
	 * for all at once, where growing by doubling reallocated a 17 KB
	 * leaf's entries five times */
	cap = cap / 28 + 1 < TZ_TREE_MAX_ENTRIES ? cap / 28 + 1 : TZ_TREE_MAX_ENTRIES;
	if ((out->e = tz_malloc(cap * sizeof(*out->e))) == NULL) {
		rc = TZ_ENOMEM;
		goto fail;
	}
	while (!tz_reader_done(&r)) {
		if (out->n >= cap) {
			rc = tz_error_set(TZ_ELIMIT, "tree %s has too many entries", hex);
			goto fail;
		}
		if ((rc = parse_entry(&r, &out->e[out->n])) < 0 ||
		    (out->n > 0 && tz_tree__cmp(&out->e[out->n - 1], &out->e[out->n]) >= 0 &&
		     (rc = tz_error_set(TZ_ECORRUPT, "tree entries out of order")) < 0)) {
			tz_error_wrap(rc, "tree %s", hex);
			goto fail;
		}
		out->n++;
	}
	return TZ_OK;
fail:
	tz_tree__release(out);
	return rc;
}

const tz_tree_entry *tz_tree__find(const tz_tree *t, const char *name, size_t len)
{
	/* Tazamun levels hold one kind each, so try the order of both kinds. */
	for (int k = 0; k < 2; k++) {
		tz_tree_entry key = { name, len, k ? 040000 : 0100644, { { 0 } } };
		size_t lo = 0, hi = t->n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = tz_tree__cmp(&t->e[mid], &key);
			if (c == 0 && t->e[mid].mode == key.mode)
				return &t->e[mid];
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	return NULL;
}

/* An entry's mode as a tree writes it, with its space. */
static const char *tree_mode(const tz_tree_entry *e)
{
	return e->mode == 040000 ? "40000 " : "100644 ";
}

/* Serialised at once into a buffer of its exact size, which the staging
 * keeps (a 17 KB leaf grew by doubling, then was copied). */
int tz_tree__write(tz_store *s, tz_staging *st, tz_oid *out, tz_tree_entry *e, size_t n)
{
	size_t len = 0;
	uint8_t *b, *p;

	tz_tree__sort(e, n);
	for (size_t i = 0; i < n; i++)
		len += strlen(tree_mode(&e[i])) + e[i].name_len + 1 + 20;
	if ((p = b = tz_malloc(len ? len : 1)) == NULL)
		return TZ_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *mode = tree_mode(&e[i]);
		memcpy(p, mode, strlen(mode));
		p += strlen(mode);
		memcpy(p, e[i].name, e[i].name_len);
		p += e[i].name_len;
		*p++ = 0;
		memcpy(p, e[i].oid.id, 20);
		p += 20;
	}
	return tz_staging__take(s, st, out, GIT_OBJECT_TREE, b, len);
}

void tz_fanout__of(char out[2], const char *key, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t h[16];

	/* Two 16-way levels: 256 leaves keep a 20,000-row partition at ~80
	 * rows a leaf; DESIGN §3 measured 16-way levels writing half the tree
	 * bytes of 256-way ones (16/16/16/16 against 256/256) for 1,000
	 * scattered updates. */
	tz_hash_short(h, sizeof(h), key, len);
	out[0] = hex[h[0] >> 4];
	out[1] = hex[h[0] & 15];
}

int tz_path_change__cmp(const void *a, const void *b)
{
	const tz_path_change *x = a, *y = b;
	size_t dx = tz_path_change__depth(x), dy = tz_path_change__depth(y);

	for (size_t i = 0; i < dx && i < dy; i++) {
		size_t n = x->comp_len[i] < y->comp_len[i] ? x->comp_len[i] : y->comp_len[i];
		int c = memcmp(x->comp[i], y->comp[i], n);
		if (c)
			return c;
		if (x->comp_len[i] != y->comp_len[i])
			return x->comp_len[i] < y->comp_len[i] ? -1 : 1;
	}
	return dx == dy ? 0 : dx < dy ? -1 : 1;
}

/* Put the result of one group (a new id, or removal) into res. */
static int place(tz_tree_entry *res, size_t *nres, const tz_tree *t, const tz_tree_entry *old,
		 const char *name, size_t len, uint32_t mode, const tz_oid *oid, bool remove)
{
	if (old != NULL) {
		tz_tree_entry *e = &res[old - t->e];
		if (remove) {
			e->mode = 0;   /* dropped when the list is compacted */
		} else {
			e->mode = mode;
			e->oid = *oid;
		}
		return TZ_OK;
	}
	if (!remove) {
		tz_tree_entry *e = &res[(*nres)++];
		e->name = name;
		e->name_len = len;
		e->mode = mode;
		e->oid = *oid;
	}
	return TZ_OK;
}

int tz_tree__apply(tz_store *s, tz_staging *st, tz_oid *out, bool *empty_out, const tz_oid *base,
		   int level, const tz_path_change *ch, size_t n)
{
	tz_tree t = { NULL, 0, NULL };
	tz_tree_entry *res = NULL;
	size_t nres = 0, keep = 0, groups = 0;
	int rc = TZ_OK;

	*empty_out = false;
	if (level >= TZ_PATH_DEPTH)
		return tz_error_set(TZ_EINVAL, "tree path deeper than the layout");
	for (size_t i = 0; i < n; i++)
		if (tz_path_change__depth(&ch[i]) <= (size_t)level)
			return tz_error_set(TZ_EINVAL, "tree path shorter than its place");
	if (!tz_oid_is_zero(base) && (rc = tz_tree__read(s, st, base, &t)) < 0)
		return rc;
	/* room for the tree's entries and one per name the changes bring at
	 * this level (sorted, so a name's changes are adjacent): a root of
	 * 100,000 changes takes a few entries, not 100,000 at every level */
	for (size_t i = 0; i < n; i++)
		groups += i == 0 || ch[i].comp_len[level] != ch[i - 1].comp_len[level] ||
			  memcmp(ch[i].comp[level], ch[i - 1].comp[level], ch[i].comp_len[level]) != 0;
	if ((res = tz_calloc(t.n + groups + 1, sizeof(*res))) == NULL) {
		rc = TZ_ENOMEM;
		goto done;
	}
	if (t.n)
		memcpy(res, t.e, t.n * sizeof(*res));
	nres = t.n;
	for (size_t i = 0, j; i < n && rc == TZ_OK; i = j) {
		const char *name = ch[i].comp[level];
		size_t len = ch[i].comp_len[level];
		const tz_tree_entry *old = tz_tree__find(&t, name, len);
		for (j = i + 1; j < n && ch[j].comp_len[level] == len && memcmp(ch[j].comp[level], name, len) == 0; j++)
			;
		/* a blob here, or a tree: a path cannot be both */
		bool leaf = tz_path_change__depth(&ch[i]) == (size_t)level + 1;
		for (size_t k = i + 1; k < j && rc == TZ_OK; k++)
			if ((tz_path_change__depth(&ch[k]) == (size_t)level + 1) != leaf)
				rc = tz_error_set(TZ_ECORRUPT, "history: '%.*s' is both a file and a directory",
						  (int)len, name);
		if (rc < 0)
			break;
		if (leaf) {
			const tz_path_change *c = &ch[j - 1];   /* the last word on this path */
			if (old && old->mode != 0100644)
				rc = tz_error_set(TZ_ECORRUPT, "history: '%.*s' is not a file", (int)len, name);
			else
				rc = place(res, &nres, &t, old, name, len, 0100644, &c->oid, c->del);
		} else {
			tz_oid sub, sub_base = { { 0 } };
			bool empty;
			if (old && old->mode == 040000)
				sub_base = old->oid;
			rc = tz_tree__apply(s, st, &sub, &empty, &sub_base, level + 1, ch + i, j - i);
			if (rc == TZ_OK)
				rc = place(res, &nres, &t, old, name, len, 040000, &sub, empty);
		}
	}
	if (rc < 0)
		goto done;
	for (size_t i = 0; i < nres; i++)
		if (res[i].mode != 0)
			res[keep++] = res[i];
	if (keep == 0)
		*empty_out = true;
	else
		rc = tz_tree__write(s, st, out, res, keep);
done:
	tz_free(res);
	tz_tree__release(&t);
	return rc;
}

typedef struct {
	tz_store *s;
	const tz_staging *st;
	tz_walk_cb cb;
	void *payload;
	const char *comp[TZ_TREE_MAX_DEPTH + 1];
	size_t comp_len[TZ_TREE_MAX_DEPTH + 1];
} walk_ctx;

static int walk_rec(walk_ctx *w, const tz_oid *a, const tz_oid *b, size_t depth);

/* An entry present on one side (or both, same name and kind). */
static int walk_entry(walk_ctx *w, const tz_tree_entry *ea, const tz_tree_entry *eb, size_t depth)
{
	static const tz_oid zero;
	const tz_tree_entry *e = ea ? ea : eb;

	if (ea && eb && memcmp(ea->oid.id, eb->oid.id, 20) == 0)
		return TZ_OK;
	w->comp[depth] = e->name;
	w->comp_len[depth] = e->name_len;
	if (e->mode == 040000)
		return walk_rec(w, ea ? &ea->oid : &zero, eb ? &eb->oid : &zero, depth + 1);
	return w->cb(w->comp, w->comp_len, depth + 1, ea ? &ea->oid : &zero, eb ? &eb->oid : &zero,
		     w->payload);
}

static int walk_rec(walk_ctx *w, const tz_oid *a, const tz_oid *b, size_t depth)
{
	tz_tree ta = { NULL, 0, NULL }, tb = { NULL, 0, NULL };
	size_t i = 0, j = 0;
	int rc = TZ_OK;

	if (memcmp(a->id, b->id, 20) == 0)
		return TZ_OK;
	if (depth > TZ_TREE_MAX_DEPTH)
		return tz_error_set(TZ_ECORRUPT, "history: trees nested deeper than %d", TZ_TREE_MAX_DEPTH);
	if ((!tz_oid_is_zero(a) && (rc = tz_tree__read(w->s, w->st, a, &ta)) < 0) ||
	    (!tz_oid_is_zero(b) && (rc = tz_tree__read(w->s, w->st, b, &tb)) < 0))
		goto done;
	while (rc == TZ_OK && (i < ta.n || j < tb.n)) {
		int c = i == ta.n ? 1 : j == tb.n ? -1 : tz_tree__cmp(&ta.e[i], &tb.e[j]);
		if (c < 0)
			rc = walk_entry(w, &ta.e[i++], NULL, depth);
		else if (c > 0)
			rc = walk_entry(w, NULL, &tb.e[j++], depth);
		else
			rc = walk_entry(w, &ta.e[i++], &tb.e[j++], depth);
	}
done:
	tz_tree__release(&ta);
	tz_tree__release(&tb);
	return rc;
}

int tz_tree__diff(tz_store *s, const tz_staging *st, const tz_oid *a, const tz_oid *b,
		  tz_walk_cb cb, void *payload)
{
	walk_ctx w;

	memset(&w, 0, sizeof(w));
	w.s = s;
	w.st = st;
	w.cb = cb;
	w.payload = payload;
	return walk_rec(&w, a, b, 0);
}

/* The parsed tree `oid` at level i of a lookup: the one the previous
 * lookup parsed when the id is the same (trees are content-addressed, so
 * a cached tree never goes stale), else read and kept in its place. */
static int lookup_level(tz_store *s, const tz_staging *st, size_t i, const tz_oid *oid, const tz_tree **out)
{
	struct tz_lookup_level *l = &s->lookup[i];
	int rc;

	if (l->t.data == NULL || memcmp(&l->oid, oid, sizeof(*oid)) != 0) {
		tz_tree__release(&l->t);
		if ((rc = tz_tree__read(s, st, oid, &l->t)) < 0)
			return rc;
		l->oid = *oid;
	}
	*out = &l->t;
	return TZ_OK;
}

void tz_tree__lookup_release(tz_store *s)
{
	for (size_t i = 0; i < TZ_PATH_DEPTH; i++)
		tz_tree__release(&s->lookup[i].t);
}

int tz_tree__lookup(tz_store *s, const tz_staging *st, tz_oid *out, const tz_oid *root,
		    const char *const *comp, const size_t *len, size_t depth)
{
	tz_oid cur = *root;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < depth; i++) {
		tz_tree deeper = { NULL, 0, NULL };
		const tz_tree *t = &deeper;
		const tz_tree_entry *e;
		bool want_tree = i + 1 < depth;
		int rc;

		if (tz_oid_is_zero(&cur))
			return TZ_OK;
		/* paths deeper than the layout (not rows: refused by the
		 * callers) are read uncached */
		if ((rc = i < TZ_PATH_DEPTH ? lookup_level(s, st, i, &cur, &t) : tz_tree__read(s, st, &cur, &deeper)) < 0)
			return rc;
		e = tz_tree__find(t, comp[i], len[i]);
		if (e == NULL || (e->mode == 040000) != want_tree)
			memset(&cur, 0, sizeof(cur));
		else
			cur = e->oid;
		tz_tree__release(&deeper);
	}
	*out = cur;
	return TZ_OK;
}

/* ---- commits and the ref ---- */

int tz_commit__tree(tz_store *s, const tz_oid *commit, tz_oid *tree_out)
{
	git_commit *c = NULL;
	char hex[41];

	memset(tree_out, 0, sizeof(*tree_out));
	if (git_commit_lookup(&c, s->repo, (const git_oid *)commit->id) < 0) {
		tz_oid_fmt(hex, commit);
		return tz_error_set(TZ_ENOTFOUND, "commit %s: %s", hex,
				    git_error_last() ? git_error_last()->message : "not found");
	}
	memcpy(tree_out->id, git_commit_tree_id(c)->id, 20);
	git_commit_free(c);
	return TZ_OK;
}

/* libgit2's format_header_field: a multi-line header value continues on
 * lines that start with a space. */
static void put_header_field(tz_buf *b, const char *field, const char *v, size_t n)
{
	tz_buf_printf(b, "%s ", field);
	for (size_t i = 0; i < n; i++) {
		tz_buf_putc(b, (uint8_t)v[i]);
		if (v[i] == '\n')
			tz_buf_putc(b, ' ');
	}
	tz_buf_putc(b, '\n');
}

int tz_commit__build(tz_store *s, tz_staging *st, tz_oid *out, const tz_oid *tree, const tz_oid *parents,
		     size_t nparents, const char *signer, const tz_keypair *kp, const char *message)
{
	tz_buf content = TZ_BUF_INIT, armored = TZ_BUF_INIT, signed_ = TZ_BUF_INIT;
	char hex[41];
	long long now = (long long)time(NULL);
	size_t hdr_end;
	int rc;

	tz_oid_fmt(hex, tree);
	tz_buf_printf(&content, "tree %s\n", hex);
	for (size_t i = 0; i < nparents; i++) {
		tz_oid_fmt(hex, &parents[i]);
		tz_buf_printf(&content, "parent %s\n", hex);
	}
	tz_buf_printf(&content, "author %s <%s@tazamun> %lld +0000\n", signer, signer, now);
	tz_buf_printf(&content, "committer %s <%s@tazamun> %lld +0000\n", signer, signer, now);
	hdr_end = content.len;
	tz_buf_printf(&content, "\n%s", message);
	if ((rc = tz_buf_error(&content)) < 0 ||
	    (rc = tz_sshsig_sign(&armored, kp, "git", content.data, content.len)) < 0)
		goto done;
	tz_buf_put(&signed_, content.data, hdr_end);
	put_header_field(&signed_, "gpgsig", (const char *)armored.data, armored.len);
	tz_buf_put(&signed_, content.data + hdr_end, content.len - hdr_end);
	if ((rc = tz_buf_error(&signed_)) == TZ_OK)
		rc = tz_staging__add(s, st, out, GIT_OBJECT_COMMIT, signed_.data, signed_.len);
done:
	tz_buf_release(&content);
	tz_buf_release(&armored);
	tz_buf_release(&signed_);
	return rc;
}

int tz_commit__create(tz_store *s, tz_oid *out, const tz_oid *tree_id, const tz_oid *parent_id,
		      const char *message)
{
	return tz_commit__create_as(s, out, tree_id, parent_id, s->code, &s->kp, message);
}

int tz_commit__create_as(tz_store *s, tz_oid *out, const tz_oid *tree_id, const tz_oid *parent_id,
			 const char *author, const tz_keypair *kp, const char *message)
{
	tz_staging st;
	git_oid id;
	int rc;

	tz_staging__init(&st);
	if ((rc = tz_commit__build(s, &st, out, tree_id, parent_id, parent_id ? 1 : 0, author, kp,
				   message)) == TZ_OK && st.n == 1 &&
	    git_odb_write(&id, s->odb, st.objs[0].data, st.objs[0].len, GIT_OBJECT_COMMIT) < 0)
		rc = tz_git__error("cannot write commit");
	tz_staging__release(&st);
	return rc;
}

/* Remove the lock files a process killed in the middle of a ref update
 * leaves (libgit2 writes <ref>.lock, then renames it).  Callers hold
 * store.lock, so no other Tazamun writer can own them: they are stale.
 * Returns true when one was removed. */
static bool remove_stale_ref_locks(tz_store *s, const char *ref)
{
	const char *gitdir = git_repository_path(s->repo);
	bool removed = false;

	for (int i = 0; i < 2; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s%s%s.lock", gitdir, i ? "logs/" : "", ref);
		removed |= unlink(path) == 0;
	}
	return removed;
}

int tz_ref__set_name(tz_store *s, const char *ref, const tz_oid *oid, const char *why)
{
	git_reference *r = NULL;
	int rc;

	if (tz_faultsim(TZ_FAULT_RENAME))
		return tz_error_set(TZ_EIO, "cannot update %s: injected fault", ref);
	rc = git_reference_create(&r, s->repo, ref, (const git_oid *)oid->id, 1, why);
	if (rc < 0 && remove_stale_ref_locks(s, ref))
		rc = git_reference_create(&r, s->repo, ref, (const git_oid *)oid->id, 1, why);
	if (rc < 0)
		return tz_git__error(ref);
	git_reference_free(r);
	return TZ_OK;
}

int tz_ref__set(tz_store *s, const tz_oid *oid, const char *why)
{
	return tz_ref__set_name(s, "refs/heads/main", oid, why);
}

int tz_commit__verify_sig(tz_store *s, const tz_oid *commit, const char **signer)
{
	git_buf sig = { NULL, 0, 0 }, data = { NULL, 0, 0 };
	uint8_t pk[TZ_PK_BYTES];
	git_oid id;
	char hex[41];
	int rc;

	*signer = "";
	tz_oid_fmt(hex, commit);
	memcpy(id.id, commit->id, 20);
	if (git_commit_extract_signature(&sig, &data, s->repo, &id, "gpgsig") < 0) {
		rc = tz_error_set(TZ_EVERIFY, "commit %s is not signed", hex);
		goto done;
	}
	if ((rc = tz_sshsig_verify(pk, sig.ptr, sig.size, "git", data.ptr, data.size)) < 0) {
		tz_error_wrap(rc, "commit %s", hex);
		goto done;
	}
	/* The keys a store knows: its registry (tz_keys) */
	{
		bool known;
		if ((rc = tz_registry__principal_of(s, pk, s->signer, &known)) < 0)
			goto done;
		if (!known) {
			rc = tz_error_set(TZ_EVERIFY, "commit %s is signed by a key this store does not know", hex);
			goto done;
		}
	}
	*signer = s->signer;
	rc = TZ_OK;
done:
	git_buf_dispose(&sig);
	git_buf_dispose(&data);
	return rc;
}

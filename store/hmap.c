/*
 * hmap.c - a small open-addressing hash map from byte strings to uint64,
 * for the sets a commit, a diff or a verify builds (dirty keys, visited
 * objects, rows of a table).  Linear probing, grows at 50% load.
 */
#include "store/store_int.h"

#include <string.h>

/* FNV-1a 64: keys here are row keys and object ids, not chosen by an
 * attacker who could gain anything from collisions but slower lookups. */
static uint64_t hash_bytes(const void *key, size_t len)
{
	const uint8_t *p = key;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h;
}

void tz_hmap__init(tz_hmap *m)
{
	m->slots = NULL;
	m->cap = 0;
	m->count = 0;
}

void tz_hmap__release(tz_hmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->cap; i++)
		tz_free(m->slots[i].key);
	tz_free(m->slots);
	tz_hmap__init(m);
}

static tz_hmap_slot *probe(tz_hmap_slot *slots, size_t cap, const void *key, size_t klen, uint64_t h)
{
	size_t i = (size_t)h & (cap - 1);

	for (;;) {
		tz_hmap_slot *sl = &slots[i];
		if (!sl->used || (sl->hash == h && sl->klen == klen && memcmp(sl->key, key, klen) == 0))
			return sl;
		i = (i + 1) & (cap - 1);
	}
}

static int grow(tz_hmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	tz_hmap_slot *slots = tz_calloc(cap, sizeof(*slots));

	if (slots == NULL)
		return TZ_ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].used)
			*probe(slots, cap, m->slots[i].key, m->slots[i].klen, m->slots[i].hash) = m->slots[i];
	}
	tz_free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return TZ_OK;
}

int tz_hmap__upsert(tz_hmap *m, const void *key, size_t klen, tz_hmap_slot **slot_out, bool *added)
{
	uint64_t h = hash_bytes(key, klen);
	tz_hmap_slot *sl;

	*slot_out = NULL;
	*added = false;
	if ((m->count + 1) * 2 > m->cap && grow(m) < 0)
		return TZ_ENOMEM;
	sl = probe(m->slots, m->cap, key, klen, h);
	if (!sl->used) {
		if ((sl->key = tz_malloc(klen ? klen : 1)) == NULL)
			return TZ_ENOMEM;
		memcpy(sl->key, key, klen);
		sl->klen = klen;
		sl->hash = h;
		sl->value = 0;
		sl->used = true;
		m->count++;
		*added = true;
	}
	*slot_out = sl;
	return TZ_OK;
}

tz_hmap_slot *tz_hmap__get(const tz_hmap *m, const void *key, size_t klen)
{
	tz_hmap_slot *sl;

	if (m->cap == 0)
		return NULL;
	sl = probe(m->slots, m->cap, key, klen, hash_bytes(key, klen));
	return sl->used ? sl : NULL;
}

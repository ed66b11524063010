/*
 * The merge rules as a causal model (model.h says how); the policies are
 * the simulation's schema (sim.c SCHEMA): person: a hq, b owner, group g
 * (c, d) owner, e manual ('*'), @delete manual; place: x hq, y z manual
 * ('*'), @delete keep.
 */
#include "tests/sim/model.h"

#include <stdlib.h>
#include <string.h>

const char *const m_colnames[2][M_NCOLS] = {
	{ "a", "b", "c", "d", "e" }, { "x", "y", "z", NULL, NULL }
};
const int m_ncols[2] = { 5, 3 };

/* Units: the columns that merge as one (group g = c, d). */
static const int units_person[][2] = { { 0, -1 }, { 1, -1 }, { 2, 3 }, { 4, -1 } };
static const int units_place[][2] = { { 0, -1 }, { 1, -1 }, { 2, -1 } };
enum { P_HQ, P_OWNER, P_MANUAL };
static const int pol_person[] = { P_HQ, P_OWNER, P_OWNER, P_MANUAL };
static const int pol_place[] = { P_HQ, P_MANUAL, P_MANUAL };

static int nunits(int t) { return t == T_PERSON ? 4 : 3; }
static const int *unit_cols(int t, int u) { return t == T_PERSON ? units_person[u] : units_place[u]; }
static int unit_policy(int t, int u) { return t == T_PERSON ? pol_person[u] : pol_place[u]; }

static bool kn_has(const uint64_t *k, int e) { return (k[e / 64] >> (e % 64)) & 1; }
static void kn_add(uint64_t *k, int e) { k[e / 64] |= (uint64_t)1 << (e % 64); }
static void kn_del(uint64_t *k, int e) { k[e / 64] &= ~((uint64_t)1 << (e % 64)); }
static void kn_union(uint64_t *d, const uint64_t *s)
{
	for (int i = 0; i < M_WORDS; i++)
		d[i] |= s[i];
}

static int new_edit(model *m, int r, int row, int col, const char *value)
{
	int e = m->nedits++;
	m_edit *ed = &m->edits[e];

	if (e >= M_MAX_EDITS) {
		fprintf(stderr, "sim: model: too many edits\n");
		exit(2);
	}
	ed->row = row, ed->col = col, ed->author = r, ed->fate = 0;
	if (value)
		snprintf(ed->value, sizeof(ed->value), "%s", value);
	else
		snprintf(ed->value, sizeof(ed->value), "v%d.", e);
	return e;
}

void m_init(model *m, int nbranches)
{
	memset(m, 0, sizeof(*m));
	m->nbranches = nbranches;
	m->nedits = 1;   /* edit 0: none */
}

bool m_in_view(const model *m, int r, int row)
{
	return r == 0 || m->rows[row].table == T_PLACE || m->rows[row].owner == r;
}

int m_insert(model *m, int r, int table, int owner, const char *key, bool dup, const char *const *values)
{
	int row = 0;
	m_rowdef *d;
	m_cell c = { .present = true, .alive = true };
	int lo = r < 0 ? 0 : r, hi = r < 0 ? m->nbranches : r;

	/* a duplicate registration: the same key as another replica's row */
	while (row < m->nrows && (m->rows[row].table != table || strcmp(m->rows[row].key, key) != 0))
		row++;
	if (row == m->nrows && m->nrows++ >= M_MAX_ROWS - 1) {
		fprintf(stderr, "sim: model: too many rows\n");
		exit(2);
	}
	d = &m->rows[row];
	snprintf(d->key, sizeof(d->key), "%s", key);
	d->table = table, d->owner = owner, d->dup = dup;
	c.exist = new_edit(m, r < 0 ? 0 : r, row, -1, "+");
	for (int i = 0; i < m_ncols[table]; i++)
		c.col[i] = new_edit(m, r < 0 ? 0 : r, row, i, values ? values[i] : NULL);
	for (int x = lo; x <= hi; x++) {
		if (!m_in_view(m, x, row))
			continue;
		m->rep[x].row[row] = c;
		kn_add(m->rep[x].known[row], c.exist);
		for (int i = 0; i < m_ncols[table]; i++)
			kn_add(m->rep[x].known[row], c.col[i]);
	}
	return row;
}

/* A dup key inserted at another replica: the same row slot. */
static void supersede(model *m, int e)
{
	if (e > 0 && m->edits[e].fate == 0)
		m->edits[e].fate = 1;
}

void m_update(model *m, int r, int row, int col, const char *value)
{
	m_cell *c = &m->rep[r].row[row];
	int e = new_edit(m, r, row, col, value);

	supersede(m, c->col[col]);
	c->col[col] = e;
	kn_add(m->rep[r].known[row], e);
}

void m_delete(model *m, int r, int row)
{
	m_cell *c = &m->rep[r].row[row];
	int e = new_edit(m, r, row, -1, "-");

	for (int i = 0; i < m_ncols[m->rows[row].table]; i++)
		supersede(m, c->col[i]);
	c->alive = false;
	c->exist = e;
	kn_add(m->rep[r].known[row], e);
}

void m_snapshot(const model *m, int from, int to, m_state *out)
{
	memset(out, 0, sizeof(*out));
	for (int row = 0; row < m->nrows; row++) {
		if (!m_in_view(m, to, row) || !m->rep[from].row[row].present)
			continue;
		out->row[row] = m->rep[from].row[row];
		memcpy(out->known[row], m->rep[from].known[row], sizeof(out->known[row]));
	}
}

/* Has the other side (knowing k) seen the value edit e wrote, as far as a
 * three-way merge can tell?  It compares values with a base, the last
 * state both sides share: so e counts as seen when the other side knows e,
 * or when e's value is the value of the newest edit of that cell that both
 * sides know (`both`: the side's own knowledge).  That covers a value two
 * replicas wrote alike (a duplicate registration's x and y) and a row a
 * keep decision put back to an older value (restamp_reverts). */
static bool known(const model *m, const uint64_t *k, const uint64_t *both, int e)
{
	const m_edit *ed = &m->edits[e];
	int newest = 0;

	if (kn_has(k, e))
		return true;
	for (int i = 1; i < m->nedits; i++)
		if (m->edits[i].row == ed->row && m->edits[i].col == ed->col && kn_has(k, i) && kn_has(both, i))
			newest = i;
	return newest > 0 && strcmp(m->edits[newest].value, ed->value) == 0;
}

/* Did side c change the row in a way the other side (knowing k) has not seen? */
static bool row_changed(const model *m, int row, const m_cell *c, const uint64_t *k, const uint64_t *own)
{
	if (!kn_has(k, c->exist))
		return true;
	if (!c->alive)
		return false;
	for (int i = 0; i < m_ncols[m->rows[row].table]; i++)
		if (!known(m, k, own, c->col[i]))
			return true;
	return false;
}

static bool unit_changed(const model *m, const m_cell *c, const int *cols, const uint64_t *k, const uint64_t *own)
{
	return !known(m, k, own, c->col[cols[0]]) || (cols[1] >= 0 && !known(m, k, own, c->col[cols[1]]));
}

static bool unit_equal(const model *m, const m_cell *a, const m_cell *b, const int *cols)
{
	for (int i = 0; i < 2 && cols[i] >= 0; i++)
		if (strcmp(m->edits[a->col[cols[i]]].value, m->edits[b->col[cols[i]]].value) != 0)
			return false;
	return true;
}

static void set_fate(model *m, int e, int fate)
{
	if (e > 0 && m->edits[e].fate == 0)
		m->edits[e].fate = fate;
}

static void entry_add_col(char *cols, size_t cap, const char *name)
{
	size_t n = strlen(cols);

	snprintf(cols + n, cap - n, "%s%s", n ? "," : "", name);
}

/* Both sides alive and changed: unit by unit, under the policies. */
static void merge_cols_hq(model *m, int row, m_cell *o, const m_cell *t, const uint64_t *kh,
			  const uint64_t *kb, bool insert, m_entry *en)
{
	int tb = m->rows[row].table;

	for (int u = 0; u < nunits(tb); u++) {
		const int *cols = unit_cols(tb, u);
		bool oc = insert || unit_changed(m, o, cols, kb, kh);
		bool tc = insert || unit_changed(m, t, cols, kh, kb);
		bool take_t;

		if (!tc || unit_equal(m, o, t, cols))
			continue;
		take_t = !oc;
		if (oc) {
			int p = unit_policy(tb, u);
			take_t = p == P_OWNER && tb == T_PERSON;
			for (int i = 0; i < 2 && cols[i] >= 0; i++) {
				int loser = take_t ? o->col[cols[i]] : t->col[cols[i]];
				if (strcmp(m->edits[o->col[cols[i]]].value, m->edits[t->col[cols[i]]].value) == 0)
					continue;
				set_fate(m, loser, p == P_MANUAL ? 3 : 2);
				if (p == P_MANUAL)
					entry_add_col(en->cols, sizeof(en->cols), m_colnames[tb][cols[i]]);
			}
		}
		if (take_t)
			for (int i = 0; i < 2 && cols[i] >= 0; i++)
				o->col[cols[i]] = t->col[cols[i]];
	}
}

void m_hq_begin(model *m)
{
	m->import_mark = m->nentries;
}

/* One entry per row per bundle (docs/merge.md): a later stretch's entry
 * for the row takes the earlier one's place; two data entries name the
 * columns of both (each column's conflict stays on record).  A delete that
 * replaces a data entry is the branch's own delete after its edits: those
 * edits are superseded, not waiting in the queue. */
/* HQ keeps the branch's updated row over its own delete: where HQ had a
 * newer value before the delete (one replacing the branch's), the row goes
 * back to an older value.  The merge compares values with a base, not
 * histories, so for every replica that saw the newer value this is a new
 * change: a new edit with the old value (docs/testing.md, "The model"). */
static void restamp_reverts(model *m, int row, const m_cell *o, m_cell *t, uint64_t *kh)
{
	for (int i = 0; i < m_ncols[m->rows[row].table]; i++) {
		if (o->col[i] == t->col[i] || !kn_has(kh, t->col[i]) ||
		    strcmp(m->edits[o->col[i]].value, m->edits[t->col[i]].value) == 0)
			continue;
		int e = new_edit(m, 0, row, i, m->edits[t->col[i]].value);
		m->edits[e].fate = 1;   /* a copy: the original edit is the one to account for */
		t->col[i] = e;
		kn_add(kh, e);
	}
}

static void queue(model *m, const m_entry *en)
{
	for (int i = m->import_mark; i < m->nentries; i++) {
		m_entry *e = &m->entries[i];
		if (e->row != en->row)
			continue;
		if (strcmp(e->kind, "data") != 0 || strcmp(en->kind, "data") != 0) {
			if (strcmp(en->kind, "delete") == 0)
				for (int k = 1; k < m->nedits; k++)
					if (m->edits[k].row == en->row && m->edits[k].fate == 3 &&
					    m->edits[k].author == en->branch)
						m->edits[k].fate = 1;
			*e = *en;
			return;
		}
		char cols[64], *tok, *save;
		snprintf(cols, sizeof(cols), "%s", en->cols);
		for (tok = strtok_r(cols, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			char pat[16], have[70];
			snprintf(pat, sizeof(pat), ",%s,", tok);
			snprintf(have, sizeof(have), ",%s,", e->cols);
			if (strstr(have, pat) == NULL)
				entry_add_col(e->cols, sizeof(e->cols), tok);
		}
		return;
	}
	if (m->nentries < (int)(sizeof(m->entries) / sizeof(m->entries[0])))
		m->entries[m->nentries++] = *en;
}

static void hq_merge_row(model *m, int b, int row, const m_cell *t0, const uint64_t *kb)
{
	m_cell tc_copy = *t0, *t = &tc_copy;
	m_cell *o = &m->rep[0].row[row];
	uint64_t *kh = m->rep[0].known[row];
	int tb = m->rows[row].table;
	m_entry en = { .row = row, .branch = b };
	bool oc = row_changed(m, row, o, kb, kh), tc = row_changed(m, row, t, kh, kb);

	if (!tc)
		return;
	if (!oc || (!o->alive && !t->alive)) {
		if (oc)
			return;  /* both deleted */
		*o = *t;
		return;
	}
	if (o->alive != t->alive) {
		/* update against delete: the table's @delete rule */
		const m_cell *alive = o->alive ? o : t;
		const m_cell *dead = o->alive ? t : o;
		set_fate(m, dead->exist, 2);
		if (tb == T_PERSON) {
			strcpy(en.kind, "delete");
			queue(m, &en);
		}
		if (!o->alive)
			restamp_reverts(m, row, o, t, kh);
		*o = *alive;
		return;
	}
	bool insert = o->exist != t->exist && !kn_has(kb, o->exist) && !kn_has(kh, t->exist);
	merge_cols_hq(m, row, o, t, kh, kb, insert, &en);
	if (en.cols[0]) {
		strcpy(en.kind, insert ? "insert" : "data");
		queue(m, &en);
	}
}

void m_hq_import(model *m, int b, const m_state *s)
{
	for (int row = 0; row < m->nrows; row++) {
		if (!s->row[row].present)
			continue;
		if (!m->rep[0].row[row].present)
			m->rep[0].row[row] = s->row[row];
		else
			hq_merge_row(m, b, row, &s->row[row], s->known[row]);
		kn_union(m->rep[0].known[row], s->known[row]);
	}
}

/* Branch side, both changed: local values win locally, and the answer's
 * edits they beat stay unknown, so that HQ decides them at the next push. */
static void branch_merge_row(model *m, int b, int row, const m_cell *v, const uint64_t *kv)
{
	m_cell *c = &m->rep[b].row[row];
	uint64_t *kb = m->rep[b].known[row];
	uint64_t learn[M_WORDS];
	int tb = m->rows[row].table;

	memcpy(learn, kv, sizeof(learn));
	if (!c->alive || !v->alive || c->exist != v->exist) {
		/* a delete or another insert on either side: keep the branch's row.
		 * The answer's column values stay unknown too when its row is a
		 * delete: the merge's tree holds the branch's row, which is the
		 * base HQ integrates the branch's next changes from, so the values
		 * HQ wrote before deleting were never in a base both share
		 * (tests/sim seed 1938) */
		if (!kn_has(kb, v->exist))
			kn_del(learn, v->exist);
		for (int i = 0; i < m_ncols[tb]; i++)
			if (!kn_has(kb, v->col[i]))
				kn_del(learn, v->col[i]);
	} else {
		for (int u = 0; u < nunits(tb); u++) {
			const int *cols = unit_cols(tb, u);
			bool vc = unit_changed(m, v, cols, kb, kv), bc = unit_changed(m, c, cols, kv, kb);
			for (int i = 0; i < 2 && cols[i] >= 0; i++) {
				if (vc && !bc)
					c->col[cols[i]] = v->col[cols[i]];
				else if (vc && bc && !kn_has(kb, v->col[cols[i]]))
					kn_del(learn, v->col[cols[i]]);
			}
		}
	}
	kn_union(kb, learn);
}

void m_branch_import(model *m, int b, const m_state *s)
{
	for (int row = 0; row < m->nrows; row++) {
		const m_cell *v = &s->row[row];
		m_cell *c = &m->rep[b].row[row];

		if (!v->present)
			continue;
		if (!c->present || !row_changed(m, row, c, s->known[row], m->rep[b].known[row])) {
			*c = *v;
			kn_union(m->rep[b].known[row], s->known[row]);
		} else if (!row_changed(m, row, v, m->rep[b].known[row], s->known[row])) {
			kn_union(m->rep[b].known[row], s->known[row]);
		} else {
			branch_merge_row(m, b, row, v, s->known[row]);
		}
	}
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Join lines sorted, each ending in '\n'. */
static void join_sorted(char **lines, int n, char **out, size_t *len)
{
	size_t total = 1;
	char *p;

	qsort(lines, (size_t)n, sizeof(*lines), cmp_line);
	for (int i = 0; i < n; i++)
		total += strlen(lines[i]) + 1;
	p = *out = malloc(total);
	for (int i = 0; i < n; i++) {
		p += sprintf(p, "%s\n", lines[i]);
		free(lines[i]);
	}
	*p = '\0';
	*len = (size_t)(p - *out);
	free(lines);
}

void m_render(const model *m, int r, int view, char **out, size_t *len)
{
	char **lines = calloc((size_t)m->nrows + 1, sizeof(*lines));
	int n = 0;

	for (int row = 0; row < m->nrows; row++) {
		const m_cell *c = &m->rep[r].row[row];
		const m_rowdef *d = &m->rows[row];
		char buf[512];
		int k;

		if (!c->present || !c->alive || !m_in_view(m, view, row))
			continue;
		if (d->table == T_PERSON)
			k = snprintf(buf, sizeof(buf), "person|%s|B%d", d->key, d->owner);
		else
			k = snprintf(buf, sizeof(buf), "place|%s", d->key);
		for (int i = 0; i < m_ncols[d->table]; i++)
			k += snprintf(buf + k, sizeof(buf) - (size_t)k, "|%s", m->edits[c->col[i]].value);
		lines[n++] = strdup(buf);
	}
	join_sorted(lines, n, out, len);
}

void m_render_queue(const model *m, char **out, size_t *len)
{
	char **lines = calloc((size_t)m->nentries + 1, sizeof(*lines));

	for (int i = 0; i < m->nentries; i++) {
		const m_entry *e = &m->entries[i];
		char cols[64], *tok, *save, *names[8];
		int nn = 0;
		char buf[256];
		int k;

		snprintf(cols, sizeof(cols), "%s", e->cols);
		for (tok = strtok_r(cols, ",", &save); tok && nn < 8; tok = strtok_r(NULL, ",", &save))
			names[nn++] = tok;
		qsort(names, (size_t)nn, sizeof(*names), cmp_line);
		k = snprintf(buf, sizeof(buf), "%s|%s|%s|B%d|", e->kind,
			     m->rows[e->row].table == T_PERSON ? "person" : "place",
			     m->rows[e->row].key, e->branch);
		for (int j = 0; j < nn; j++)
			k += snprintf(buf + k, sizeof(buf) - (size_t)k, "%s%s", j ? "," : "", names[j]);
		lines[i] = strdup(buf);
	}
	join_sorted(lines, m->nentries, out, len);
}

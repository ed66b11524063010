/*
 * merge.c - the merge declarations of a table, the merge of one row under
 * them (DESIGN §6, docs/merge.md), and the merger an HQ import asks.
 */
#include "conflict/conflict_int.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tz_conflict_kind_name(tz_conflict_kind k)
{
	static const char *const names[TZ_KIND_COUNT] = { "data", "delete", "insert", "unauthorized", "orphan",
							   "invariant" };

	return k >= 0 && k < TZ_KIND_COUNT ? names[k] : "data";
}

/* ---- declarations ---- */

void tz_table_policy_release(tz_table_policy *p)
{
	for (size_t i = 0; i < p->ncols; i++)
		tz_free(p->cols[i]);
	for (size_t i = 0; i < p->ngroups; i++)
		tz_free(p->groups[i]);
	tz_free(p->cols);
	tz_free(p->policy);
	tz_free(p->group);
	tz_free(p->groups);
	tz_free(p->table);
	memset(p, 0, sizeof(*p));
}

static int policy_of(const char *name, tz_policy_kind *out)
{
	static const struct {
		const char *name;
		tz_policy_kind k;
	} kinds[] = { { "manual", TZ_POL_MANUAL }, { "owner", TZ_POL_OWNER }, { "hq", TZ_POL_HQ }, { "lww", TZ_POL_LWW } };

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(name, kinds[i].name) == 0) {
			*out = kinds[i].k;
			return TZ_OK;
		}
	return tz_error_set(TZ_ECORRUPT, "unknown merge policy '%s'", name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int col_index(const tz_table_policy *p, const char *name)
{
	char *const *hit = bsearch(&name, p->cols, p->ncols, sizeof(*p->cols), cmp_str);

	return hit ? (int)(hit - p->cols) : -1;
}

static int group_index(tz_table_policy *p, const char *name, bool add)
{
	for (size_t g = 0; g < p->ngroups; g++)
		if (strcmp(p->groups[g], name) == 0)
			return (int)g;
	if (!add)
		return -1;
	char **ng = tz_realloc(p->groups, (p->ngroups + 1) * sizeof(*ng));
	if (ng == NULL)
		return TZ_ENOMEM;
	p->groups = ng;
	if ((p->groups[p->ngroups] = tz_strdup(name)) == NULL)
		return TZ_ENOMEM;
	return (int)p->ngroups++;
}

/* Columns of `table` (PRAGMA table_xinfo), sorted by name bytewise as rows
 * are, with the default policy; the table's scope. */
static int load_columns(sqlite3 *db, const char *table, tz_table_policy *p)
{
	sqlite3_stmt *q = NULL;
	size_t cap = 0;
	int rc = TZ_OK, step;

	if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1)", -1, &q, NULL) != SQLITE_OK)
		return tz_error_set(TZ_ESQL, "cannot read the columns of '%s': %s", table, sqlite3_errmsg(db));
	sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(q, 0);
		if (tz_array_grow(&p->cols, &cap, p->ncols, sizeof(*p->cols)) < 0 ||
		    (p->cols[p->ncols] = tz_strdup(name ? name : "")) == NULL) {
			rc = TZ_ENOMEM;
			break;
		}
		p->ncols++;
	}
	if (rc == TZ_OK && step != SQLITE_DONE)
		rc = tz_error_set(TZ_ESQL, "cannot read the columns of '%s': %s", table, sqlite3_errmsg(db));
	sqlite3_finalize(q);
	if (rc < 0)
		return rc;
	if (p->ncols == 0)
		return tz_error_set(TZ_ENOTFOUND, "table '%s' does not exist", table);
	qsort(p->cols, p->ncols, sizeof(*p->cols), cmp_str);
	p->policy = tz_calloc(p->ncols, sizeof(*p->policy));
	p->group = tz_calloc(p->ncols, sizeof(*p->group));
	if (p->policy == NULL || p->group == NULL)
		return TZ_ENOMEM;
	for (size_t c = 0; c < p->ncols; c++)
		p->group[c] = -1;
	return TZ_OK;
}

int tz_table_policy_load(tz_store *s, const char *table, tz_table_policy *p)
{
	sqlite3 *db = tz_store_db(s);
	sqlite3_stmt *q = NULL;
	tz_policy_kind def = TZ_POL_MANUAL, *gpol = NULL;
	bool *gset = NULL;
	int rc, step;

	memset(p, 0, sizeof(*p));
	if ((p->table = tz_strdup(table)) == NULL)
		return TZ_ENOMEM;
	if ((rc = load_columns(db, table, p)) < 0)
		goto fail;
	/* groups first: a policy may name one */
	if (sqlite3_prepare_v2(db, "SELECT grp, col FROM tz_group WHERE tbl = ?1 ORDER BY grp, col", -1, &q, NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *g = (const char *)sqlite3_column_text(q, 0), *c = (const char *)sqlite3_column_text(q, 1);
		int ci = c ? col_index(p, c) : -1, gi;
		if (ci < 0 || g == NULL) {
			rc = tz_error_set(TZ_ECORRUPT, "tz_group names a column '%s' table '%s' does not have", c ? c : "",
					  table);
			goto fail;
		}
		if ((gi = group_index(p, g, true)) < 0) {
			rc = gi;
			goto fail;
		}
		p->group[ci] = gi;
	}
	if (step != SQLITE_DONE)
		goto sqlfail;
	sqlite3_finalize(q);
	q = NULL;
	gpol = tz_calloc(p->ngroups + 1, sizeof(*gpol));
	gset = tz_calloc(p->ngroups + 1, sizeof(*gset));
	if (gpol == NULL || gset == NULL) {
		rc = TZ_ENOMEM;
		goto fail;
	}
	if (sqlite3_prepare_v2(db, "SELECT col, policy FROM tz_policy WHERE tbl = ?1", -1, &q, NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
	/* columns with a policy of their own; the others take the default */
	bool *cset = tz_calloc(p->ncols, sizeof(*cset));
	if (cset == NULL) {
		rc = TZ_ENOMEM;
		goto fail;
	}
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(q, 0), *pol = (const char *)sqlite3_column_text(q, 1);
		tz_policy_kind k = TZ_POL_MANUAL;
		int ci, gi;
		if (c == NULL || pol == NULL)
			continue;
		if (strcmp(c, "@delete") == 0) {
			p->del = strcmp(pol, "keep") == 0 ? TZ_DEL_KEEP : strcmp(pol, "delete") == 0 ? TZ_DEL_DELETE : TZ_DEL_MANUAL;
			continue;
		}
		if ((rc = policy_of(pol, &k)) < 0) {
			tz_free(cset);
			goto fail;
		}
		if (strcmp(c, "*") == 0)
			def = k;
		else if ((ci = col_index(p, c)) >= 0) {
			p->policy[ci] = k;
			cset[ci] = true;
		} else if ((gi = group_index(p, c, false)) >= 0) {
			gpol[gi] = k;
			gset[gi] = true;
		}
	}
	if (step != SQLITE_DONE) {
		tz_free(cset);
		goto sqlfail;
	}
	for (size_t c = 0; c < p->ncols; c++) {
		int g = p->group[c];
		if (g >= 0)
			p->policy[c] = gset[g] ? gpol[g] : def;
		else if (!cset[c])
			p->policy[c] = def;
	}
	tz_free(cset);
	sqlite3_finalize(q);
	tz_free(gpol);
	tz_free(gset);
	return TZ_OK;
sqlfail:
	rc = tz_error_set(TZ_ESQL, "cannot read the merge declarations of '%s': %s", table, sqlite3_errmsg(db));
fail:
	sqlite3_finalize(q);
	tz_free(gpol);
	tz_free(gset);
	tz_table_policy_release(p);
	return rc;
}

/* ---- one row ---- */

void tz_row_outcome_release(tz_row_outcome *o)
{
	for (size_t i = 0; i < o->ncols; i++) {
		tz_free(o->cols[i]);
		tz_free(o->unit[i]);
	}
	tz_free(o->cols);
	tz_free(o->unit);
	tz_buf_release(&o->merged);
	memset(o, 0, sizeof(*o));
}

typedef struct {
	const tz_table_policy *p;
	const tz_row *ours;
	const char *branch, *owner;
	tz_stamps_fn stamps;
	void *stamps_ctx;
	bool have_stamps;
	tz_merge_stamps st;
	tz_row_outcome *out;
	bool manual, flagged;
} decide_ctx;

static int add_conflict_cols(decide_ctx *d, const size_t *cols, size_t n)
{
	tz_row_outcome *o = d->out;
	char **nc = tz_realloc(o->cols, (o->ncols + n) * sizeof(*nc));
	if (nc == NULL)
		return TZ_ENOMEM;
	o->cols = nc;
	char **nu = tz_realloc(o->unit, (o->ncols + n) * sizeof(*nu));
	if (nu == NULL)
		return TZ_ENOMEM;
	o->unit = nu;
	for (size_t i = 0; i < n; i++) {
		const tz_column *c = &d->ours->cols[cols[i]];
		char name[TZ_ROW_MAX_NAME + 1];
		int ci, g;
		snprintf(name, sizeof(name), "%.*s", (int)c->name_len, c->name);
		ci = col_index(d->p, name);
		g = ci >= 0 ? d->p->group[ci] : -1;
		o->cols[o->ncols] = tz_strndup(c->name, c->name_len);
		o->unit[o->ncols] = g >= 0 ? tz_strdup(d->p->groups[g]) : NULL;
		o->ncols++;
		if (o->cols[o->ncols - 1] == NULL || (g >= 0 && o->unit[o->ncols - 1] == NULL))
			return TZ_ENOMEM;
	}
	return TZ_OK;
}

/* The policy of a unit: its first column's (a group's columns share it). */
static tz_policy_kind unit_policy(const decide_ctx *d, size_t col)
{
	const tz_column *c = &d->ours->cols[col];
	char name[TZ_ROW_MAX_NAME + 1];
	int ci;

	snprintf(name, sizeof(name), "%.*s", (int)c->name_len, c->name);
	ci = col_index(d->p, name);
	return ci >= 0 ? d->p->policy[ci] : TZ_POL_MANUAL;
}

/* Both sides changed a unit differently: the unit's policy decides. */
static int decide(void *payload, const size_t *cols, size_t n, bool *take_theirs)
{
	decide_ctx *d = payload;
	int rc;

	d->out->nunits++;
	switch (unit_policy(d, cols[0])) {
	case TZ_POL_HQ:
		*take_theirs = false;
		return TZ_OK;
	case TZ_POL_OWNER:
		/* the owning branch wins; a row no branch owns stays HQ's */
		*take_theirs = d->owner && strcmp(d->owner, d->branch) == 0;
		return TZ_OK;
	case TZ_POL_LWW:
		if (!d->have_stamps) {
			memset(&d->st, 0, sizeof(d->st));
			if (d->stamps && (rc = d->stamps(d->stamps_ctx, &d->st)) < 0)
				return rc;
			d->have_stamps = true;
		}
		/* HQ's stamp unknown: HQ's value stays, flagged */
		*take_theirs = d->st.ours != 0 && d->st.theirs > d->st.ours;
		if (d->st.ours == 0 || d->st.theirs == 0 || d->st.skew_ms > TZ_LWW_SKEW_MS ||
		    d->st.skew_ms < -TZ_LWW_SKEW_MS) {
			/* a stamp unknown, or clocks that disagree: the
			 * decision stands, flagged for a person */
			d->flagged = true;
			return add_conflict_cols(d, cols, n);
		}
		return TZ_OK;
	case TZ_POL_MANUAL:
	default:
		*take_theirs = false;   /* HQ's value stays provisionally */
		d->manual = true;
		return add_conflict_cols(d, cols, n);
	}
}

static int units_of(const tz_table_policy *p, const tz_row *r, int **out)
{
	int *u = tz_calloc(r->ncols ? r->ncols : 1, sizeof(*u));

	if (u == NULL)
		return TZ_ENOMEM;
	for (size_t c = 0; c < r->ncols; c++) {
		char name[TZ_ROW_MAX_NAME + 1];
		int ci;
		snprintf(name, sizeof(name), "%.*s", (int)r->cols[c].name_len, r->cols[c].name);
		ci = col_index(p, name);
		u[c] = ci >= 0 ? p->group[ci] : -1;
	}
	*out = u;
	return TZ_OK;
}

/* Update against delete: the table's '@delete' rule.  `kept` is the side
 * that updated the row. */
static int update_delete(const tz_table_policy *p, const tz_row *kept, tz_row_outcome *o)
{
	int rc = TZ_OK;

	switch (p->del) {
	case TZ_DEL_DELETE:
		o->absent = true;
		break;
	case TZ_DEL_MANUAL:
		/* the updated row is kept provisionally, and queued */
		o->queued = true;
		o->kind = TZ_KIND_DELETE;
		o->policy = "manual";
		rc = tz_row_encode(&o->merged, kept->cols, kept->ncols);
		break;
	case TZ_DEL_KEEP:
		o->policy = "keep";
		rc = tz_row_encode(&o->merged, kept->cols, kept->ncols);
		break;
	}
	if (p->del == TZ_DEL_DELETE)
		o->policy = "delete";
	return rc;
}

int tz_merge_row(const tz_table_policy *p, const char *branch, const char *owner, const tz_row *base,
		 const tz_row *ours, const tz_row *theirs, tz_stamps_fn stamps, void *stamps_ctx, tz_row_outcome *o)
{
	decide_ctx d;
	int *units = NULL;
	int rc;

	memset(o, 0, sizeof(*o));
	if (ours == NULL && theirs == NULL) {
		o->absent = true;    /* both deleted it */
		return TZ_OK;
	}
	if (ours == NULL || theirs == NULL) {
		if (base == NULL) {
			/* inserted on one side only: nothing to merge */
			const tz_row *r = ours ? ours : theirs;
			rc = tz_row_encode(&o->merged, r->cols, r->ncols);
		} else {
			o->nunits = 1;
			rc = update_delete(p, ours ? ours : theirs, o);
		}
		if (rc < 0)
			tz_row_outcome_release(o);
		return rc;
	}
	memset(&d, 0, sizeof(d));
	d.p = p;
	d.ours = ours;
	d.branch = branch;
	d.owner = owner;
	d.stamps = stamps;
	d.stamps_ctx = stamps_ctx;
	d.out = o;
	if ((rc = units_of(p, ours, &units)) < 0)
		return rc;
	rc = tz_row_merge3(base, ours, theirs, units, decide, &d, &o->merged);
	tz_free(units);
	if (rc < 0) {
		tz_row_outcome_release(o);
		return rc;
	}
	if (d.manual || d.flagged) {
		o->queued = true;
		o->kind = base == NULL ? TZ_KIND_INSERT : TZ_KIND_DATA;
		o->policy = d.manual ? "manual" : "lww";
		if (d.flagged)
			snprintf(o->note, sizeof(o->note), "lww decided with %s (branch clock %+lld ms from HQ's)",
				 d.st.ours == 0 || d.st.theirs == 0 ? "a stamp unknown" : "clocks that disagree",
				 (long long)d.st.skew_ms);
	}
	return TZ_OK;
}

/* ---- the merger ---- */

struct merger {
	tz_merger base;             /* first: tz_merger * <-> merger * */
	tz_store *s;
	tz_table_policy *tables;
	size_t ntables;
	tz_pending *pending;
	size_t npending, cap;
	tz_merge_summary sum;
};

static int merger_row(tz_merger *mm, const tz_merge_request *rq, tz_buf *out, bool *absent)
{
	struct merger *m = (struct merger *)mm;
	tz_table_policy *p = NULL;
	tz_row_outcome o;
	int rc;

	for (size_t i = 0; i < m->ntables && p == NULL; i++)
		if (strcmp(m->tables[i].table, rq->table) == 0)
			p = &m->tables[i];
	if (p == NULL) {
		tz_table_policy *nt = tz_realloc(m->tables, (m->ntables + 1) * sizeof(*nt));
		if (nt == NULL)
			return TZ_ENOMEM;
		m->tables = nt;
		if ((rc = tz_table_policy_load(m->s, rq->table, &m->tables[m->ntables])) < 0)
			return rc;
		p = &m->tables[m->ntables++];
	}
	m->sum.rows_both++;
	if ((rc = tz_merge_row(p, rq->code, rq->owner, rq->base, rq->ours, rq->theirs, rq->stamps, rq->stamps_ctx,
			       &o)) < 0)
		return rc;
	*absent = o.absent;
	if (!o.absent)
		tz_buf_put(out, o.merged.data, o.merged.len);
	if ((rc = tz_buf_error(out)) == TZ_OK && o.queued)
		rc = tz_queue__keep(&m->pending, &m->npending, &m->cap, rq, &o);
	tz_row_outcome_release(&o);
	return rc;
}

static int merger_record(tz_merger *mm, tz_store *s, const char *code, const tz_oid *ours_commit,
			 const tz_oid *theirs_commit, const tz_oid *merge_commit)
{
	struct merger *m = (struct merger *)mm;

	return tz_queue__record(s, code, m->pending, m->npending, ours_commit, theirs_commit, merge_commit,
				&m->sum.first_id, &m->sum.last_id);
}

static int merger_check(tz_merger *mm, tz_store *s, const tz_merge_done *d)
{
	struct merger *m = (struct merger *)mm;

	return tz_integrity__check(s, d, &m->sum);
}

static const tz_merger_ops merger_ops = { merger_row, merger_record, merger_check };

int tz_merger_new(tz_store *s, tz_merger **out)
{
	struct merger *m = tz_calloc(1, sizeof(*m));

	*out = NULL;
	if (m == NULL)
		return TZ_ENOMEM;
	m->base.ops = &merger_ops;
	m->s = s;
	*out = &m->base;
	return TZ_OK;
}

void tz_merger_free(tz_merger *mm)
{
	struct merger *m = (struct merger *)mm;

	if (m == NULL)
		return;
	for (size_t i = 0; i < m->ntables; i++)
		tz_table_policy_release(&m->tables[i]);
	tz_free(m->tables);
	tz_queue__pending_free(m->pending, m->npending);
	tz_free(m);
}

void tz_merger_summary(const tz_merger *mm, tz_merge_summary *out)
{
	const struct merger *m = (const struct merger *)mm;

	*out = m->sum;
	for (size_t i = 0; i < m->npending; i++)
		out->queued[m->pending[i].kind]++;
}

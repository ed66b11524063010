/*
 * test_merge.c - the merge of one row (conflict/merge.c, tz_row_merge3),
 * row by row of the decision table of DESIGN §6, every policy, column
 * groups, update against delete under each '@delete' rule, insert against
 * insert.  The rows of the table that belong to the integrity issue
 * (unauthorized, duplicate, orphan, invariant) are not here: unauthorized
 * changes are refused by the store (tests/cli/t09-integration.sh).
 */
#include "tests/unit/tz_test.h"

#include <stdlib.h>
#include <string.h>

#include "conflict/tz_conflict.h"

/* A row of table "p" (columns a, b, c, d, owner) from five texts; "-" is NULL. */
static tz_row *row(const char *a, const char *b, const char *c, const char *d)
{
	const char *v[5] = { a, b, c, d, "CAS01" };
	static const char *const names[5] = { "a", "b", "c", "d", "owner" };
	tz_column cols[5];
	tz_buf enc = TZ_BUF_INIT;
	tz_row *r = NULL;

	for (int i = 0; i < 5; i++) {
		cols[i].name = names[i];
		cols[i].name_len = 1 + 4 * (i == 4);
		if (strcmp(v[i], "-") == 0)
			cols[i].v = (tz_value){ TZ_VNULL, 0, 0, NULL, 0 };
		else
			cols[i].v = (tz_value){ TZ_VTEXT, 0, 0, (const uint8_t *)v[i], strlen(v[i]) };
	}
	if (tz_row_encode(&enc, cols, 5) != TZ_OK || tz_row_decode(&r, enc.data, enc.len) != TZ_OK)
		abort();
	tz_buf_release(&enc);
	return r;
}

/* Declarations: every column `pol`, optionally c+d as group "cd", a
 * delete rule. */
static void decl(tz_table_policy *p, tz_policy_kind pol, bool group, tz_delete_policy del)
{
	static const char *const names[5] = { "a", "b", "c", "d", "owner" };

	memset(p, 0, sizeof(*p));
	p->table = strdup("p");
	p->ncols = 5;
	p->cols = calloc(5, sizeof(char *));
	p->policy = calloc(5, sizeof(*p->policy));
	p->group = calloc(5, sizeof(int));
	for (int i = 0; i < 5; i++) {
		p->cols[i] = strdup(names[i]);
		p->policy[i] = pol;
		p->group[i] = -1;
	}
	if (group) {
		p->ngroups = 1;
		p->groups = calloc(1, sizeof(char *));
		p->groups[0] = strdup("cd");
		p->group[2] = p->group[3] = 0;
	}
	p->del = del;
}

static tz_merge_stamps stamps_val;
static int stamps_asked;

static int stamps(void *ctx, tz_merge_stamps *out)
{
	(void)ctx;
	stamps_asked++;
	*out = stamps_val;
	return TZ_OK;
}

/* Merge and compare the result's columns a..d with `want` ("-" NULL,
 * NULL: the row is absent). */
static int merge(const tz_table_policy *p, const char *owner, const tz_row *b, const tz_row *o, const tz_row *t,
		 tz_row_outcome *out)
{
	return tz_merge_row(p, "CAS01", owner, b, o, t, stamps, NULL, out);
}

static bool result_is(const tz_row_outcome *o, const char *a, const char *b, const char *c, const char *d)
{
	tz_row *r = NULL, *w;
	bool same;

	if (a == NULL)
		return o->absent;
	if (o->absent || tz_row_decode(&r, o->merged.data, o->merged.len) != TZ_OK)
		return false;
	w = row(a, b, c, d);
	same = r->ncols == w->ncols;
	for (size_t i = 0; same && i < r->ncols; i++)
		same = tz_value_cmp(&r->cols[i].v, &w->cols[i].v) == 0;
	tz_row_free(r);
	tz_row_free(w);
	return same;
}

static bool cols_are(const tz_row_outcome *o, const char *list)
{
	char buf[64] = "";

	for (size_t i = 0; i < o->ncols; i++) {
		strcat(buf, i ? "," : "");
		strcat(buf, o->cols[i]);
	}
	return strcmp(buf, list) == 0;
}

int main(void)
{
	tz_table_policy man, hq, own, lww, grp;
	tz_row_outcome o;
	tz_row *base = row("a0", "b0", "c0", "d0");

	printf("# decision table of DESIGN §6, row by row\n");
	decl(&man, TZ_POL_MANUAL, false, TZ_DEL_MANUAL);
	decl(&hq, TZ_POL_HQ, false, TZ_DEL_KEEP);
	decl(&own, TZ_POL_OWNER, false, TZ_DEL_DELETE);
	decl(&lww, TZ_POL_LWW, false, TZ_DEL_MANUAL);
	decl(&grp, TZ_POL_MANUAL, true, TZ_DEL_MANUAL);

	/* row 1: only one side changed a column: that side */
	{
		tz_row *ours = row("a0", "b0", "c0", "d0"), *theirs = row("A1", "b0", "c0", "d0");
		CHECK(merge(&man, "CAS01", base, ours, theirs, &o) == TZ_OK && result_is(&o, "A1", "b0", "c0", "d0") &&
			      !o.queued, "only the branch changed a: the branch's value, nothing queued");
		tz_row_outcome_release(&o);
		CHECK(merge(&man, "CAS01", base, theirs, ours, &o) == TZ_OK && result_is(&o, "A1", "b0", "c0", "d0") &&
			      !o.queued, "only HQ changed a: HQ's value, nothing queued");
		tz_row_outcome_release(&o);
		tz_row_free(ours);
		tz_row_free(theirs);
	}
	/* row 2: both changed a column to the same value */
	{
		tz_row *ours = row("A1", "b0", "c0", "d0"), *theirs = row("A1", "b0", "c0", "d0");
		CHECK(merge(&man, "CAS01", base, ours, theirs, &o) == TZ_OK && result_is(&o, "A1", "b0", "c0", "d0") &&
			      !o.queued && o.nunits == 0, "both set a to the same value: taken, no conflict");
		tz_row_outcome_release(&o);
		tz_row_free(ours);
		tz_row_free(theirs);
	}
	/* row 3: both changed different columns: both taken */
	{
		tz_row *ours = row("A1", "b0", "c0", "d0"), *theirs = row("a0", "B2", "c0", "d0");
		CHECK(merge(&man, "CAS01", base, ours, theirs, &o) == TZ_OK && result_is(&o, "A1", "B2", "c0", "d0") &&
			      !o.queued, "HQ changed a, the branch b: both kept (column-level merge)");
		tz_row_outcome_release(&o);
		tz_row_free(ours);
		tz_row_free(theirs);
	}
	/* row 4: both changed one column differently: the policy */
	{
		tz_row *ours = row("A1", "b0", "c0", "d0"), *theirs = row("A2", "B2", "c0", "d0");
		CHECK(merge(&man, "CAS01", base, ours, theirs, &o) == TZ_OK && result_is(&o, "A1", "B2", "c0", "d0") &&
			      o.queued && o.kind == TZ_KIND_DATA && cols_are(&o, "a") && strcmp(o.policy, "manual") == 0,
		      "manual: HQ's value stays provisionally, b merges, one entry names a");
		tz_row_outcome_release(&o);
		CHECK(merge(&hq, "CAS01", base, ours, theirs, &o) == TZ_OK && result_is(&o, "A1", "B2", "c0", "d0") &&
			      !o.queued, "hq: HQ wins, nothing queued");
		tz_row_outcome_release(&o);
		CHECK(merge(&own, "CAS01", base, ours, theirs, &o) == TZ_OK && result_is(&o, "A2", "B2", "c0", "d0") &&
			      !o.queued, "owner: the owning branch wins");
		tz_row_outcome_release(&o);
		CHECK(merge(&own, "RAB01", base, ours, theirs, &o) == TZ_OK && result_is(&o, "A1", "B2", "c0", "d0") &&
			      !o.queued, "owner: a branch that does not own the row does not win");
		tz_row_outcome_release(&o);
		CHECK(merge(&own, NULL, base, ours, theirs, &o) == TZ_OK && result_is(&o, "A1", "B2", "c0", "d0"),
		      "owner: a row no branch owns stays HQ's");
		tz_row_outcome_release(&o);

		stamps_asked = 0;
		stamps_val = (tz_merge_stamps){ 100, 200, 0 };
		CHECK(merge(&lww, "CAS01", base, ours, theirs, &o) == TZ_OK && result_is(&o, "A2", "B2", "c0", "d0") &&
			      !o.queued && stamps_asked == 1, "lww: the branch's later stamp wins, unflagged");
		tz_row_outcome_release(&o);
		stamps_val = (tz_merge_stamps){ 300, 200, 0 };
		CHECK(merge(&lww, "CAS01", base, ours, theirs, &o) == TZ_OK && result_is(&o, "A1", "B2", "c0", "d0") &&
			      !o.queued, "lww: HQ's later stamp wins");
		tz_row_outcome_release(&o);
		stamps_val = (tz_merge_stamps){ 100, 200, TZ_LWW_SKEW_MS + 1 };
		CHECK(merge(&lww, "CAS01", base, ours, theirs, &o) == TZ_OK && result_is(&o, "A2", "B2", "c0", "d0") &&
			      o.queued && strcmp(o.policy, "lww") == 0 && strstr(o.note, "disagree") != NULL &&
			      cols_are(&o, "a"),
		      "lww: clocks that disagree beyond the bound: decided, and flagged in the queue");
		tz_row_outcome_release(&o);
		stamps_val = (tz_merge_stamps){ 0, 200, 0 };
		CHECK(merge(&lww, "CAS01", base, ours, theirs, &o) == TZ_OK && o.queued && strstr(o.note, "unknown"),
		      "lww: an unknown stamp is flagged");
		tz_row_outcome_release(&o);
		tz_row_free(ours);
		tz_row_free(theirs);
	}
	/* a column group merges as one unit */
	{
		tz_row *ours = row("a0", "b0", "C1", "d0"), *theirs = row("a0", "b0", "c0", "D2");
		CHECK(merge(&grp, "CAS01", base, ours, theirs, &o) == TZ_OK && result_is(&o, "a0", "b0", "C1", "d0") &&
			      o.queued && cols_are(&o, "c,d") && o.unit[0] && strcmp(o.unit[0], "cd") == 0,
		      "group: HQ changed c, the branch d: one unit changed on both sides, queued whole");
		tz_row_outcome_release(&o);
		CHECK(merge(&man, "CAS01", base, ours, theirs, &o) == TZ_OK && result_is(&o, "a0", "b0", "C1", "D2") &&
			      !o.queued, "without the group the same edits merge column by column");
		tz_row_outcome_release(&o);
		tz_row *t2 = row("a0", "b0", "C1", "D2");
		CHECK(merge(&grp, "CAS01", base, ours, t2, &o) == TZ_OK && result_is(&o, "a0", "b0", "C1", "d0") && o.queued,
		      "group: same c on both sides but d only on the branch's: still a conflict of the unit");
		tz_row_outcome_release(&o);
		tz_row *t3 = row("a0", "b0", "C1", "d0");
		CHECK(merge(&grp, "CAS01", base, ours, t3, &o) == TZ_OK && !o.queued, "group: equal units merge");
		tz_row_outcome_release(&o);
		tz_row_free(t2);
		tz_row_free(t3);
		tz_row_free(ours);
		tz_row_free(theirs);
	}
	/* row 5: update against delete, each '@delete' rule, both directions */
	{
		tz_row *upd = row("A1", "b0", "c0", "d0");
		CHECK(merge(&man, "CAS01", base, NULL, upd, &o) == TZ_OK && result_is(&o, "A1", "b0", "c0", "d0") &&
			      o.queued && o.kind == TZ_KIND_DELETE && strcmp(o.policy, "manual") == 0,
		      "@delete manual (default), HQ deleted, branch updated: the row is kept and queued");
		tz_row_outcome_release(&o);
		CHECK(merge(&man, "CAS01", base, upd, NULL, &o) == TZ_OK && result_is(&o, "A1", "b0", "c0", "d0") &&
			      o.queued && o.kind == TZ_KIND_DELETE, "@delete manual, branch deleted, HQ updated: kept, queued");
		tz_row_outcome_release(&o);
		CHECK(merge(&hq, "CAS01", base, NULL, upd, &o) == TZ_OK && result_is(&o, "A1", "b0", "c0", "d0") && !o.queued,
		      "@delete keep: the updated row is kept, nothing queued");
		tz_row_outcome_release(&o);
		CHECK(merge(&hq, "CAS01", base, upd, NULL, &o) == TZ_OK && result_is(&o, "A1", "b0", "c0", "d0") && !o.queued,
		      "@delete keep, the other direction");
		tz_row_outcome_release(&o);
		CHECK(merge(&own, "CAS01", base, NULL, upd, &o) == TZ_OK && result_is(&o, NULL, NULL, NULL, NULL) && !o.queued,
		      "@delete delete: the deletion wins");
		tz_row_outcome_release(&o);
		CHECK(merge(&own, "CAS01", base, upd, NULL, &o) == TZ_OK && o.absent && !o.queued,
		      "@delete delete, the other direction");
		tz_row_outcome_release(&o);
		CHECK(merge(&man, "CAS01", base, NULL, NULL, &o) == TZ_OK && o.absent && !o.queued,
		      "both deleted: deleted");
		tz_row_outcome_release(&o);
		tz_row_free(upd);
	}
	/* row 6: insert against insert, same key: columns against an empty base */
	{
		tz_row *ours = row("a", "b", "c", "d"), *same = row("a", "b", "c", "d"), *other = row("a", "B", "c", "-");
		CHECK(merge(&man, "CAS01", NULL, ours, same, &o) == TZ_OK && result_is(&o, "a", "b", "c", "d") && !o.queued,
		      "insert/insert of equal rows: one row, no conflict");
		tz_row_outcome_release(&o);
		CHECK(merge(&man, "CAS01", NULL, ours, other, &o) == TZ_OK && result_is(&o, "a", "b", "c", "d") &&
			      o.queued && o.kind == TZ_KIND_INSERT && cols_are(&o, "b,d"),
		      "insert/insert: the differing columns b and d conflict; HQ's values provisional");
		tz_row_outcome_release(&o);
		CHECK(merge(&own, "CAS01", NULL, ours, other, &o) == TZ_OK && result_is(&o, "a", "B", "c", "-") && !o.queued,
		      "insert/insert under owner: the owning branch's columns");
		tz_row_outcome_release(&o);
		CHECK(merge(&man, "CAS01", NULL, NULL, other, &o) == TZ_OK && result_is(&o, "a", "B", "c", "-") && !o.queued,
		      "an insert on one side only is taken");
		tz_row_outcome_release(&o);
		tz_row_free(ours);
		tz_row_free(same);
		tz_row_free(other);
	}
	/* a column the base lacks (added since) counts as changed on both sides */
	{
		static const char *const names[4] = { "a", "b", "c", "owner" };
		tz_column cols[4];
		tz_buf enc = TZ_BUF_INIT;
		tz_row *old = NULL, *ours = row("a0", "b0", "c0", "x"), *theirs = row("a0", "b0", "c0", "y");
		for (int i = 0; i < 4; i++)
			cols[i] = (tz_column){ names[i], strlen(names[i]), { TZ_VTEXT, 0, 0, (const uint8_t *)"a0", 2 } };
		cols[1].v.p = (const uint8_t *)"b0";
		cols[2].v.p = (const uint8_t *)"c0";
		cols[3].v = (tz_value){ TZ_VTEXT, 0, 0, (const uint8_t *)"CAS01", 5 };
		if (tz_row_encode(&enc, cols, 4) != TZ_OK || tz_row_decode(&old, enc.data, enc.len) != TZ_OK)
			abort();
		CHECK(merge(&man, "CAS01", old, ours, theirs, &o) == TZ_OK && o.queued && cols_are(&o, "d"),
		      "a column new since the base, set differently on both sides: a conflict");
		tz_row_outcome_release(&o);
		tz_buf_release(&enc);
		tz_row_free(old);
		tz_row_free(ours);
		tz_row_free(theirs);
	}
	tz_row_free(base);
	tz_table_policy_release(&man);
	tz_table_policy_release(&hq);
	tz_table_policy_release(&own);
	tz_table_policy_release(&lww);
	tz_table_policy_release(&grp);
	return tz_test_done();
}

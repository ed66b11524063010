/*
 * gen_day.c - `syncctl generate day`: one offline day of a branch (its
 * counter's work, domain.md §2.3, times --scale) or of HQ, with the
 * conflict scenarios of domain.md §3 that the two sides set up without
 * talking to each other:
 *   C1  the first two branches register the same persons (same CNIE);
 *   C2  HQ moves job seekers to the next branch (the old branch does not
 *       touch them that day);
 *   C3  HQ fixes the Latin family name, the branch the contact (and, on the
 *       first of them, the first name: the group name_lat, HQ decides);
 *   C4  every branch places two job seekers on each national offer of two
 *       positions;
 *   C12 HQ and the branch both set the status (policy manual: queued).
 * Both sides pick the same rows: the branch's own job seekers it registered
 * itself (owner = origin = the branch), in key order, drawn from the seed.
 */
#include "tools/gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct idlist {
	char (*id)[37];
	int *n2;           /* a second integer column (an offer's positions left) */
	uint32_t n;
} idlist;

static void idlist_free(idlist *l)
{
	free(l->id);
	free(l->n2);
	memset(l, 0, sizeof(*l));
}

/* The ids a query returns for ?1 = code (a second column, if any, in n2). */
static int load_ids(gen_ctx *g, idlist *l, const char *sql, const char *code)
{
	sqlite3_stmt *st = NULL;
	uint32_t cap = 0;
	int rc;

	memset(l, 0, sizeof(*l));
	if (gen_prepare(g, &st, sql) < 0)
		return -1;
	gen_text(st, 1, code);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (l->n == cap) {
			cap = cap ? cap * 2 : 1024;
			void *a = realloc(l->id, (size_t)cap * 37), *b = realloc(l->n2, (size_t)cap * sizeof(int));
			if (a)
				l->id = a;
			if (b)
				l->n2 = b;
			if (a == NULL || b == NULL) {
				snprintf(g->err, sizeof(g->err), "out of memory");
				break;
			}
		}
		snprintf(l->id[l->n], 37, "%s", (const char *)sqlite3_column_text(st, 0));
		l->n2[l->n++] = sqlite3_column_count(st) > 1 ? sqlite3_column_int(st, 1) : 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		if (g->err[0] == '\0')
			snprintf(g->err, sizeof(g->err), "%s", sqlite3_errmsg(g->db));
		idlist_free(l);
		return -1;
	}
	return 0;
}

#define OWN_SEEKERS "SELECT id FROM job_seeker WHERE owner_branch = ?1 AND origin_branch = ?1 ORDER BY id"

/* The scenario rows of branch b among its n own job seekers: indexes
 * [0,c3) for C3, then c12 for C12, then c2 for C2; both sides draw them.
 * marks[i] != 0 for each. */
static int targets(gen_ctx *g, uint32_t b, uint32_t n, uint32_t *out, uint8_t *marks)
{
	uint32_t k = g->sc.c3 + g->sc.c12 + (g->nbranches > 1 ? g->sc.c2 : 0);
	ad_rng r;

	if (n == 0 || k * 2 > n) {
		snprintf(g->err, sizeof(g->err), "branch %s has %u job seekers of its own: too few for the "
			 "scenarios (%u rows)", g->codes[b], n, k);
		return -1;
	}
	ad_rng_seed(&r, g->seed, GS_TARGETS, ((uint64_t)b << 16) | g->day);
	for (uint32_t i = 0; i < k;) {
		uint32_t x = ad_below(&r, n);
		if (marks[x])
			continue;
		marks[x] = 1;
		out[i++] = x;
	}
	return 0;
}

/* A random own job seeker that is no scenario's row. */
static const char *free_seeker(ad_rng *r, const idlist *s, const uint8_t *marks)
{
	for (;;) {
		uint32_t x = ad_below(r, s->n);
		if (!marks[x])
			return s->id[x];
	}
}

typedef struct day_ctx {
	gen_ctx *g;
	uint32_t b, today;
	char stamp[21], date[11];
	ad_rng r;
	idlist seekers, interviews, applications, offers;
	uint8_t *marks;
	uint32_t *tg;
	sqlite3_stmt *ins_seeker, *ins_interview, *ins_app, *ins_place, *ins_offer, *ins_emp,
		     *ins_ws, *ins_att, *upd;
} day_ctx;

static int update(day_ctx *d, enum gen_table t, const char *sql, const char *id, const char *v1,
		  const char *v2)
{
	sqlite3_finalize(d->upd);
	d->upd = NULL;
	if (gen_prepare(d->g, &d->upd, sql) < 0)
		return -1;
	gen_text(d->upd, 1, id);
	gen_text(d->upd, 2, d->stamp);
	gen_text(d->upd, 3, d->b == UINT32_MAX ? "HQ" : d->g->codes[d->b]);
	gen_text(d->upd, 4, v1);
	gen_text(d->upd, 5, v2);
	return gen_step(d->g, d->upd, t, false);
}

#define STAMPS "updated_at = ?2, updated_by = ?3, row_version = row_version + 1"

/* New registrations at the counter, each with its reception interview; at
 * the first two branches also the C1 persons (the second branch types
 * another phone number). */
static int day_registrations(day_ctx *d)
{
	gen_ctx *g = d->g;
	uint32_t n = 5 * g->scale, c1 = d->b < 2 && g->nbranches > 1 ? g->sc.c1 : 0;
	char id[37], phone[20];

	for (uint32_t i = 0; i < n + c1; i++) {
		bool dup = i >= n;
		uint32_t j = dup ? g->seekers + 99000 + (i - n) : g->seekers + (g->day - 1) * 1000 + i;
		gen_uuid(g, id, dup ? GS_DUP : GS_DAY, d->b, j, d->today, 30000 + 60 * i);
		snprintf(phone, sizeof(phone), "+2126%08u", ad_below(&d->r, 100000000));
		if (gen_seeker_row(g, d->ins_seeker, dup ? 0 : d->b, j, d->b, id, d->today, g->codes[d->b],
				   dup && d->b == 1 ? phone : NULL) < 0 ||
		    gen_interview_row(g, d->ins_interview, d->b, ((uint64_t)g->day << 32) | (1u << 31) | i, id,
				      d->today, true) < 0)
			return -1;
	}
	if (c1)
		g->dup_persons += c1;
	return 0;
}

/* The branch's side of C3 and C12, and its everyday updates of the others. */
static int day_seeker_updates(day_ctx *d)
{
	gen_ctx *g = d->g;
	char phone[20];

	for (uint32_t i = 0; i < 20 * g->scale; i++)
		if (update(d, GT_SEEKER, "UPDATE job_seeker SET last_contact_date = ?4, experience_months ="
			   " experience_months + 1, " STAMPS " WHERE id = ?1",
			   free_seeker(&d->r, &d->seekers, d->marks), d->date, NULL) < 0)
			return -1;
	for (uint32_t i = 0; i < g->sc.c3; i++) {
		const char *id = d->seekers.id[d->tg[i]];
		snprintf(phone, sizeof(phone), "+2127%08u", ad_below(&d->r, 100000000));
		if (update(d, GT_SEEKER, "UPDATE job_seeker SET phone = ?4, " STAMPS " WHERE id = ?1", id,
			   phone, NULL) < 0 ||
		    (i == 0 && update(d, GT_SEEKER, "UPDATE job_seeker SET first_name_lat = first_name_lat"
				      " || 'e', " STAMPS " WHERE id = ?1", id, NULL, NULL) < 0))
			return -1;
	}
	for (uint32_t i = 0; i < g->sc.c12; i++)
		if (update(d, GT_SEEKER, "UPDATE job_seeker SET status = ?4, status_reason = ?5, " STAMPS
			   " WHERE id = ?1", d->seekers.id[d->tg[g->sc.c3 + i]], i % 2 ? "in_training" : "placed",
			   i % 2 ? "inscrit à la formation Taehil" : "placé en CDI (contrat signé)") < 0)
			return -1;
	return 0;
}

static int day_interviews_applications(day_ctx *d)
{
	static const char *const next[] = {"sent_to_employer", "interview_scheduled", "accepted", "rejected"};
	gen_ctx *g = d->g;
	char id[37];

	for (uint32_t i = 0; i < 10 * g->scale; i++)
		if (gen_interview_row(g, d->ins_interview, d->b, ((uint64_t)g->day << 32) | i,
				      free_seeker(&d->r, &d->seekers, d->marks), d->today, false) < 0)
			return -1;
	for (uint32_t i = 0; i < 10 * g->scale && d->interviews.n; i++)
		if (update(d, GT_INTERVIEW, "UPDATE interview SET outcome = 'held', next_step = ?4, " STAMPS
			   " WHERE id = ?1", d->interviews.id[ad_below(&d->r, d->interviews.n)],
			   "تتبع بعد شهر: ورشة السيرة الذاتية", NULL) < 0)
			return -1;
	for (uint32_t i = 0; i < 12 * g->scale && d->offers.n; i++) {
		gen_uuid(g, id, GS_APPLICATION, d->b, ((uint64_t)g->day << 32) | (1u << 31) | i, d->today, 40000);
		if (gen_application_row(g, d->ins_app, id, free_seeker(&d->r, &d->seekers, d->marks),
					d->offers.id[ad_below(&d->r, d->offers.n)], d->b, "proposed", d->stamp) < 0)
			return -1;
	}
	for (uint32_t i = 0; i < 24 * g->scale && d->applications.n; i++)
		if (update(d, GT_APPLICATION, "UPDATE application SET status = ?4, status_at = ?2, " STAMPS
			   " WHERE id = ?1", d->applications.id[ad_below(&d->r, d->applications.n)],
			   AD_PICK(&d->r, next), NULL) < 0)
			return -1;
	return 0;
}

/* Placements on the branch's own local offers that have a position left
 * (no other branch places on them), then C4 on the national offers. */
static int day_placements(day_ctx *d)
{
	gen_ctx *g = d->g;
	char id[37], offer[37], emp[37];
	sqlite3_stmt *q = NULL;
	int rc = -1;

	if (gen_prepare(g, &q, "SELECT employer_id FROM job_offer WHERE id = ?1") < 0)
		return -1;
	for (uint32_t i = 0, k = 0; i < 3 * g->scale && d->offers.n; i++) {
		uint32_t start = ad_below(&d->r, d->offers.n);
		for (k = 0; k < d->offers.n && d->offers.n2[(start + k) % d->offers.n] <= 0; k++)
			;
		if (k == d->offers.n)
			break;
		uint32_t o = (start + k) % d->offers.n;
		d->offers.n2[o]--;
		gen_text(q, 1, d->offers.id[o]);
		if (sqlite3_step(q) != SQLITE_ROW)
			goto done;
		snprintf(emp, sizeof(emp), "%s", (const char *)sqlite3_column_text(q, 0));
		sqlite3_reset(q);
		gen_uuid(g, id, GS_PLACEMENT, d->b, ((uint64_t)g->day << 32) | i, d->today, 50000);
		if (gen_placement_row(g, d->ins_place, id, free_seeker(&d->r, &d->seekers, d->marks),
				      d->offers.id[o], emp, NULL, "CDD", d->b, d->stamp) < 0)
			goto done;
	}
	gen_uuid(g, emp, GS_EMPLOYER, 0, 0, GEN_DAY_REG0, 36000);
	for (uint32_t k = 0; k < g->sc.c4; k++) {
		gen_uuid(g, offer, GS_OFFER, 0xC4, k, GEN_DAY_OFFLINE - 2, 39600);
		for (uint32_t i = 0; i < 2; i++) {
			gen_uuid(g, id, GS_PLACEMENT, d->b, ((uint64_t)g->day << 32) | (1u << 30) | (k * 2 + i),
				 d->today, 50000);
			if (gen_placement_row(g, d->ins_place, id, free_seeker(&d->r, &d->seekers, d->marks),
					      offer, emp, NULL, "SAISONNIER_INTL", d->b, d->stamp) < 0)
				goto done;
		}
	}
	g->overfill_offers = g->sc.c4;
	rc = 0;
done:
	sqlite3_finalize(q);
	return rc;
}

/* Offers and employers the branch collects and updates (its own: no other
 * side edits them), and a workshop with its attendance. */
static int day_offers_employers(day_ctx *d)
{
	gen_ctx *g = d->g;
	uint32_t nb = g->nbranches, nemp = gen_employers(g), mine = (nemp - d->b + nb - 1) / nb;
	uint32_t base = 2 * nemp + 100 + (g->day * nb + d->b) * 1000;
	char id[37], phone[20];
	const char *att[12];

	for (uint32_t i = 0; i < 2 * g->scale; i++)
		if (gen_offer_row(g, d->ins_offer, base + i, d->b + nb * ad_below(&d->r, mine), d->b, d->today, 0) < 0)
			return -1;
	for (uint32_t i = 0; i < 3 * g->scale && d->offers.n; i++)
		if (update(d, GT_OFFER, "UPDATE job_offer SET closes_at = date(closes_at, '+15 days'), " STAMPS
			   " WHERE id = ?1", d->offers.id[ad_below(&d->r, d->offers.n)], NULL, NULL) < 0)
			return -1;
	for (uint32_t i = 0; i < g->scale; i++) {
		if (gen_employer_row(g, d->ins_emp, nemp + 100 + (g->day * nb + d->b) * 100 + i, d->b, d->today) < 0)
			return -1;
		gen_uuid(g, id, GS_EMPLOYER, 0, d->b + nb * ad_below(&d->r, mine), GEN_DAY_REG0, 36000);
		snprintf(phone, sizeof(phone), "+2125%08u", ad_below(&d->r, 100000000));
		if (update(d, GT_EMPLOYER, "UPDATE employer SET contact_phone = ?4, " STAMPS " WHERE id = ?1",
			   id, phone, NULL) < 0)
			return -1;
	}
	for (uint32_t a = 0; a < 12; a++)
		att[a] = free_seeker(&d->r, &d->seekers, d->marks);
	return gen_workshop(g, d->ins_ws, d->ins_att, d->b, 1000000 + g->day, d->today, att, 12, false);
}


static void day_free(day_ctx *d)
{
	idlist_free(&d->seekers);
	idlist_free(&d->interviews);
	idlist_free(&d->applications);
	idlist_free(&d->offers);
	free(d->marks);
	free(d->tg);
	sqlite3_finalize(d->ins_seeker);
	sqlite3_finalize(d->ins_interview);
	sqlite3_finalize(d->ins_app);
	sqlite3_finalize(d->ins_place);
	sqlite3_finalize(d->ins_offer);
	sqlite3_finalize(d->ins_emp);
	sqlite3_finalize(d->ins_ws);
	sqlite3_finalize(d->ins_att);
	sqlite3_finalize(d->upd);
}

/* Branch b's own job seekers and its scenario rows (b = the partition; at
 * HQ too). */
static int day_targets(day_ctx *d, uint32_t b)
{
	gen_ctx *g = d->g;

	idlist_free(&d->seekers);
	free(d->marks);
	free(d->tg);
	d->tg = NULL;
	if (load_ids(g, &d->seekers, OWN_SEEKERS, g->codes[b]) < 0)
		return -1;
	d->marks = calloc(d->seekers.n + 1, 1);
	d->tg = calloc(g->sc.c2 + g->sc.c3 + g->sc.c12 + 1, sizeof(uint32_t));
	if (d->marks == NULL || d->tg == NULL) {
		snprintf(g->err, sizeof(g->err), "out of memory");
		return -1;
	}
	return targets(g, b, d->seekers.n, d->tg, d->marks);
}

static int day_begin(day_ctx *d, gen_ctx *g, uint32_t b)
{
	memset(d, 0, sizeof(*d));
	d->g = g;
	d->b = b;
	d->today = GEN_DAY_OFFLINE + g->day - 1;
	gen_stamp(d->stamp, d->today, 15 * 3600);
	ad_date(d->date, d->today);
	ad_rng_seed(&d->r, g->seed, GS_DAY, ((uint64_t)(b + 1) << 16) | g->day);
	return gen_prepare(g, &d->ins_seeker, GEN_SEEKER_SQL) < 0 ||
	       gen_prepare(g, &d->ins_interview, GEN_INTERVIEW_SQL) < 0 ? -1 : 0;
}

int gen_day_branch(gen_ctx *g, uint32_t b)
{
	const char *code = g->codes[b];
	day_ctx d;
	int rc = -1;

	if (day_begin(&d, g, b) < 0 || day_targets(&d, b) < 0 ||
	    load_ids(g, &d.interviews, "SELECT id FROM interview WHERE owner_branch = ?1 ORDER BY id", code) < 0 ||
	    load_ids(g, &d.applications, "SELECT id FROM application WHERE owner_branch = ?1 ORDER BY id", code) < 0 ||
	    load_ids(g, &d.offers, "SELECT o.id, o.positions_total - (SELECT count(*) FROM placement p"
		     " WHERE p.job_offer_id = o.id AND p.status IN ('signed', 'started', 'ended'))"
		     " FROM job_offer o WHERE o.owner_branch = ?1 AND o.diffusion = 'local' ORDER BY o.id", code) < 0 ||
	    gen_prepare(g, &d.ins_app, GEN_APPLICATION_SQL) < 0 ||
	    gen_prepare(g, &d.ins_place, GEN_PLACEMENT_SQL) < 0 ||
	    gen_prepare(g, &d.ins_offer, GEN_OFFER_SQL) < 0 ||
	    gen_prepare(g, &d.ins_emp, GEN_EMPLOYER_SQL) < 0 ||
	    gen_prepare(g, &d.ins_ws, GEN_WORKSHOP_SQL) < 0 ||
	    gen_prepare(g, &d.ins_att, GEN_ATTEND_SQL) < 0 ||
	    gen_exec(g, "BEGIN") < 0)
		goto done;
	if (day_registrations(&d) < 0 || day_seeker_updates(&d) < 0 || day_interviews_applications(&d) < 0 ||
	    day_placements(&d) < 0 || day_offers_employers(&d) < 0 || gen_exec(g, "COMMIT") < 0) {
		sqlite3_exec(g->db, "ROLLBACK", NULL, NULL, NULL);
		goto done;
	}
	g->name_fixes = g->sc.c3;
	g->status_both = g->sc.c12;
	rc = 0;
done:
	day_free(&d);
	return rc;
}

/* HQ's side for branch b: C3 name fixes, C12 statuses, C2 transfers to the
 * next branch, and registrations from the web portal for the branch. */
static int hq_for_branch(day_ctx *d, uint32_t b)
{
	gen_ctx *g = d->g;
	uint32_t to = (b + 1) % g->nbranches;
	char id[37];

	if (day_targets(d, b) < 0)
		return -1;
	for (uint32_t i = 0; i < g->sc.c3; i++)
		if (update(d, GT_SEEKER, "UPDATE job_seeker SET last_name_lat = upper(last_name_lat), " STAMPS
			   " WHERE id = ?1", d->seekers.id[d->tg[i]], NULL, NULL) < 0)
			return -1;
	for (uint32_t i = 0; i < g->sc.c12; i++)
		if (update(d, GT_SEEKER, "UPDATE job_seeker SET status = 'inactive', status_reason = ?4, " STAMPS
			   " WHERE id = ?1", d->seekers.id[d->tg[g->sc.c3 + i]],
			   "radiation automatique: sans contact depuis 6 mois", NULL) < 0)
			return -1;
	for (uint32_t i = 0; g->nbranches > 1 && i < g->sc.c2; i++) {
		if (update(d, GT_SEEKER, "UPDATE job_seeker SET owner_branch = ?4, territory_code = ?5, " STAMPS
			   " WHERE id = ?1", d->seekers.id[d->tg[g->sc.c3 + g->sc.c12 + i]], g->codes[to],
			   gen_province_of(to)->code) < 0)
			return -1;
		g->transferred++;
	}
	for (uint32_t i = 0; i < 5 * g->scale; i++) {
		uint32_t j = g->seekers + 50000 + (g->day - 1) * 1000 + i;
		gen_uuid(g, id, GS_HQ, b, j, d->today, 20000 + 60 * i);
		if (gen_seeker_row(g, d->ins_seeker, b, j, b, id, d->today, "WEB", NULL) < 0)
			return -1;
	}
	g->name_fixes += g->sc.c3;
	g->status_both += g->sc.c12;
	return 0;
}

int gen_day_hq(gen_ctx *g)
{
	day_ctx d;
	int rc = -1;

	if (day_begin(&d, g, UINT32_MAX) < 0 || gen_exec(g, "BEGIN") < 0)
		goto done;
	for (uint32_t b = 0; b < g->nbranches; b++)
		if (hq_for_branch(&d, b) < 0)
			goto fail;
	/* a reference release: a new occupation, an old one retired in its favour */
	if (gen_exec(g, "INSERT OR IGNORE INTO occupation VALUES ('ROME:M1811', 'ROME', '2511',"
		     " 'Analyste de données', 'محلل بيانات', '2025-11-01', NULL, NULL, 2)") < 0 ||
	    gen_exec(g, "UPDATE occupation SET valid_to = '2025-11-01', replaced_by = 'ROME:M1811',"
		     " ref_version = 2 WHERE code = 'ROME:M1805' AND valid_to IS NULL") < 0 ||
	    gen_exec(g, "COMMIT") < 0)
		goto fail;
	g->inserted[GT_OCCUPATION]++;
	g->updated[GT_OCCUPATION]++;
	rc = 0;
	goto done;
fail:
	sqlite3_exec(g->db, "ROLLBACK", NULL, NULL, NULL);
done:
	day_free(&d);
	return rc;
}

/*
 * gen.h - the agency data generator behind `syncctl generate` (docs/cli.md):
 * the reference data, the base rows of every branch (gen_base.c) and one
 * offline day of a branch or of HQ with the conflict scenarios C1, C2, C3,
 * C4 and C12 of domain.md §3 (gen_day.c).  Everything is a function of the
 * seed and the options: the same command on the same store writes the same
 * bytes.  It writes store.db as any application does (prepared INSERTs and
 * UPDATEs in large transactions; the store's triggers capture them).
 * Functions return 0 or -1 with the message in g->err; only
 * cmd_generate.c prints.
 */
#ifndef TZ_GEN_H
#define TZ_GEN_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "tools/agency_data.h"

#define GEN_MAX_BRANCHES 200
#define GEN_NTABLES 11

/* The tables of tools/agency/schema.sql, in the order rows are written. */
enum gen_table {
	GT_TERRITORY, GT_OCCUPATION, GT_PROGRAMME, GT_EMPLOYER, GT_OFFER,
	GT_SEEKER, GT_INTERVIEW, GT_APPLICATION, GT_PLACEMENT, GT_WORKSHOP,
	GT_ATTENDANCE
};

/* How many of each scenario one branch's day carries (domain.md §3). */
typedef struct gen_scenarios {
	uint32_t c1;   /* persons registered at the first two branches both */
	uint32_t c2;   /* job seekers HQ transfers to the next branch */
	uint32_t c3;   /* HQ fixes the name, the branch the contact */
	uint32_t c4;   /* national offers of 2 positions every branch fills */
	uint32_t c12;  /* status set at HQ and at the branch (manual) */
} gen_scenarios;

typedef struct gen_ctx {
	sqlite3 *db;
	uint64_t seed;
	uint32_t nbranches;
	uint32_t seekers;          /* base job seekers per branch */
	uint32_t day;              /* which offline day (1, 2, ...) */
	uint32_t scale;            /* the day's volumes x scale */
	gen_scenarios sc;
	char codes[GEN_MAX_BRANCHES][16];
	/* rows written (inserted) and changed (updated) per table */
	uint64_t inserted[GEN_NTABLES];
	uint64_t updated[GEN_NTABLES];
	/* what the day did, for the caller to check against the stores */
	uint32_t dup_persons, transferred, name_fixes, status_both, overfill_offers;
	void (*progress)(const char *what, uint64_t done, uint64_t total);
	char err[256];
} gen_ctx;

extern const char *const gen_table_name[GEN_NTABLES];

/* Fill g->codes from g->nbranches: CAS01, RAB01, AGA01, ... (a province
 * each, then a second branch per province, ...). */
void gen_branch_codes(gen_ctx *g);
/* The index of CODE among the branches, or -1. */
int gen_branch_index(const gen_ctx *g, const char *code);

/* Reference data and every branch's base rows (at HQ, or in any store
 * holding the tables). */
int gen_base(gen_ctx *g);
/* One offline day of branch b in a branch store (its own partition). */
int gen_day_branch(gen_ctx *g, uint32_t b);
/* HQ's side of the same day, for every branch. */
int gen_day_hq(gen_ctx *g);

/* ---- shared by gen_base.c and gen_day.c ---- */

/* Streams of the random numbers (ad_rng_seed's second argument). */
enum { GS_SEEKER = 1, GS_EMPLOYER, GS_OFFER, GS_INTERVIEW, GS_APPLICATION,
       GS_PLACEMENT, GS_WORKSHOP, GS_ATTEND, GS_IDS, GS_DAY, GS_TARGETS,
       GS_DUP, GS_HQ };

/* The provinces the branches are in (gen_base.c). */
typedef struct gen_province {
	const char *abbr;    /* branch code prefix */
	const char *code;    /* territory code */
	const char *fr, *ar;
	unsigned region;     /* 1..12 */
	const char *cin;     /* identity-card letter prefix */
	bool rural;
} gen_province;
extern const gen_province gen_provinces[];
extern const uint32_t gen_nprovinces;
const gen_province *gen_province_of(uint32_t b);

/* A UUIDv7 text id (37 bytes with NUL) for (stream, a, n) created at
 * `day` (days since 1970) + `sec` seconds. */
void gen_uuid(const gen_ctx *g, char out[37], uint64_t stream, uint64_t a, uint64_t n,
	      uint32_t day, uint32_t sec);
/* The CNIE number of person j of branch b ("BE123456"). */
void gen_cin(const gen_ctx *g, char out[16], uint32_t b, uint32_t j);
/* "YYYY-MM-DDTHH:MM:SSZ" */
void gen_stamp(char out[21], uint32_t day, uint32_t sec);

/* A person's row of job_seeker: person j of branch idb (the same pair is
 * the same person), owned by branch `owner`, registered on `day` by
 * `origin`; phone NULL: the person's own. */
int gen_seeker_row(gen_ctx *g, sqlite3_stmt *st, uint32_t idb, uint32_t j, uint32_t owner,
		   const char *id, uint32_t day, const char *origin, const char *phone);
int gen_interview_row(gen_ctx *g, sqlite3_stmt *st, uint32_t b, uint64_t n, const char *seeker,
		      uint32_t day, bool held);

/* The INSERT statements of each table (their binds: the row functions). */
#define GEN_SEEKER_SQL "INSERT INTO job_seeker(id, dossier_no, id_doc_type, id_doc_number, last_name_lat," \
	" first_name_lat, last_name_ar, first_name_ar, birth_date, gender, phone, email, address," \
	" territory_code, education_level, diploma, skills_json, experience_months, sought_occupation," \
	" mobility, registration_date, last_contact_date, status, owner_branch, origin_branch," \
	" created_at, updated_at, updated_by) VALUES (?1,?2,'CNIE',?3,?4,?5,?6,?7,?8,?9,?10,?11,?12," \
	"?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?25,?26)"

#define GEN_INTERVIEW_SQL "INSERT INTO interview(id, job_seeker_id, kind, scheduled_at, duration_min," \
	" outcome, action_plan, next_step, owner_branch, origin_branch, created_at, updated_at," \
	" updated_by) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?9,?4,?4,?9)"

#define GEN_EMPLOYER_SQL "INSERT INTO employer(id, country, ice, rc_number, legal_name, trade_name," \
	" legal_name_ar, sector_code, size_band, territory_code, address, contact_name, contact_phone," \
	" contact_email, owner_branch, origin_branch, created_at, updated_at, updated_by)" \
	" VALUES (?1,'MA',?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?14,?15,?15,?14)"

#define GEN_OFFER_SQL "INSERT INTO job_offer(id, offer_no, employer_id, occupation_code, title_fr," \
	" title_ar, description, programme_code, contract_months, positions_total, territory_code," \
	" salary_min, salary_max, currency, required_education, diffusion, status, opened_at," \
	" closes_at, owner_branch, origin_branch, created_at, updated_at, updated_by)" \
	" VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,'MAD',?14,?15,?16,?17,?18,?19,?19,?20,?20,?19)"

#define GEN_APPLICATION_SQL "INSERT INTO application(id, job_seeker_id, job_offer_id, channel, status," \
	" status_at, owner_branch, origin_branch, created_at, updated_at, updated_by)" \
	" VALUES (?1,?2,?3,?4,?5,?6,?7,?7,?6,?6,?7)"

#define GEN_PLACEMENT_SQL "INSERT INTO placement(id, job_seeker_id, job_offer_id, employer_id," \
	" application_id, programme_code, contract_ref, start_date, monthly_salary, status," \
	" owner_branch, origin_branch, created_at, updated_at, updated_by)" \
	" VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?11,?12,?12,?11)"

#define GEN_WORKSHOP_SQL "INSERT INTO workshop(id, theme, held_on, territory_code, capacity, status," \
	" owner_branch, origin_branch, created_at, updated_at, updated_by)" \
	" VALUES (?1,?2,?3,?4,12,?5,?6,?6,?7,?7,?6)"

#define GEN_ATTEND_SQL "INSERT INTO workshop_attendance(id, workshop_id, job_seeker_id, status," \
	" owner_branch, origin_branch, created_at, updated_at, updated_by)" \
	" VALUES (?1,?2,?3,?4,?5,?5,?6,?6,?5)"

uint32_t gen_employers(const gen_ctx *g);
void gen_seeker_id(const gen_ctx *g, char out[37], uint32_t b, uint32_t j);
int gen_employer_row(gen_ctx *g, sqlite3_stmt *st, uint32_t e, uint32_t b, uint32_t day);
int gen_offer_row(gen_ctx *g, sqlite3_stmt *st, uint32_t o, uint32_t e, uint32_t b, uint32_t day,
		  uint32_t c4);
int gen_application_row(gen_ctx *g, sqlite3_stmt *st, const char *id, const char *seeker,
			const char *offer, uint32_t b, const char *status, const char *at);
int gen_placement_row(gen_ctx *g, sqlite3_stmt *st, const char *id, const char *seeker,
		      const char *offer, const char *employer, const char *application,
		      const char *programme, uint32_t b, const char *at);
/* workshop w of branch b with up to 12 attendees */
int gen_workshop(gen_ctx *g, sqlite3_stmt *ws, sqlite3_stmt *at, uint32_t b, uint64_t w,
		 uint32_t day, const char *const *seekers, uint32_t nseekers, bool held);

/* SQL helpers: prepare (message in g->err), step an INSERT/UPDATE and
 * count it, run a statement, begin/commit. */
int gen_prepare(gen_ctx *g, sqlite3_stmt **st, const char *sql);
int gen_step(gen_ctx *g, sqlite3_stmt *st, enum gen_table t, bool insert);
int gen_exec(gen_ctx *g, const char *sql);
void gen_text(sqlite3_stmt *st, int i, const char *s);

/* Days since 1970-01-01: the base registrations start 2012-01-01; the
 * offline days are 2025-11-03 onward. */
#define GEN_DAY_REG0 15340u
#define GEN_DAY_OFFLINE 20395u

#endif

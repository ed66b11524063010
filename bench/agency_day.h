/*
 * agency_day.h - the deterministic "agency day" workload of DESIGN.md §10,
 * header-only so that every benchmark program in bench/ can include it
 * (the Makefile turns each .c file of bench/ into a program with its own
 * main()).
 *
 * The workload, from one 64-bit seed:
 *  - one table `job_seekers` of 18 TEXT columns (AD_CREATE_SQL), about
 *    310 bytes of values per row: a key `CAS01-000001`, a CNIE number
 *    `BE123456`, Latin and Arabic names (real names, UTF-8), birth date,
 *    gender, phone `06xxxxxxxx`, e-mail, address, one of the 12 regions of
 *    Morocco, diploma, a skills list of ~80 bytes, status, registration
 *    and last-contact dates, and the partition column `owner_branch`,
 *    always 'CAS01';
 *  - N base rows (default 100,000): row n is a pure function of (seed, n),
 *    so every contender and every run loads the same bytes;
 *  - the branch's offline period: 2,000 inserts, 10,000 updates of 1-3
 *    columns (5,000 on 1,000 hot rows, 5,000 on any live row) and 200
 *    deletes of base rows, shuffled, run in transactions of 100 statements;
 *  - HQ's concurrent 1,000 updates of base rows, 10% on rows the branch
 *    touched (for the merge benchmarks; write_cost does not use them).
 *
 * Every statement of the period, keys and values included, is generated
 * once by ad_workload_new() and kept in memory, so that running the period
 * (ad_run_period) only binds and steps prepared statements: the timed
 * section holds no generation cost, and every contender runs exactly the
 * same statements in the same order.
 *
 * Functions return SQLite result codes (SQLITE_OK on success, the message
 * in sqlite3_errmsg(db)); ad_workload_new returns NULL when out of memory
 * or when the options do not fit.  Nothing here prints or exits.
 */
#ifndef AD_AGENCY_DAY_H
#define AD_AGENCY_DAY_H

#include <sqlite3.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/agency_data.h"

#if defined(__GNUC__)
#define AD_FN static __attribute__((unused))
#else
#define AD_FN static
#endif

/* ---- the table ---- */

enum {
	AD_ID, AD_DOC, AD_LAST, AD_FIRST, AD_LAST_AR, AD_FIRST_AR, AD_BIRTH,
	AD_GENDER, AD_PHONE, AD_EMAIL, AD_ADDRESS, AD_REGION, AD_DIPLOMA,
	AD_SKILLS, AD_STATUS, AD_REGISTERED, AD_LAST_CONTACT, AD_OWNER,
	AD_NCOLS
};

#define AD_TABLE "job_seekers"
#define AD_BRANCH "CAS01"

/* Must stay byte-identical to the CREATE TABLE of bench/agency_day.sql
 * (write_cost warns when the store's table differs from this one). */
#define AD_CREATE_SQL \
	"CREATE TABLE job_seekers (\n" \
	"  id                TEXT NOT NULL PRIMARY KEY,\n" \
	"  id_doc_number     TEXT,\n" \
	"  last_name_lat     TEXT NOT NULL,\n" \
	"  first_name_lat    TEXT NOT NULL,\n" \
	"  last_name_ar      TEXT,\n" \
	"  first_name_ar     TEXT,\n" \
	"  birth_date        TEXT NOT NULL,\n" \
	"  gender            TEXT NOT NULL,\n" \
	"  phone             TEXT,\n" \
	"  email             TEXT,\n" \
	"  address           TEXT,\n" \
	"  region            TEXT NOT NULL,\n" \
	"  diploma           TEXT,\n" \
	"  skills            TEXT,\n" \
	"  status            TEXT NOT NULL,\n" \
	"  registration_date TEXT NOT NULL,\n" \
	"  last_contact_date TEXT,\n" \
	"  owner_branch      TEXT NOT NULL\n" \
	")"

#define AD_INSERT_SQL "INSERT INTO job_seekers VALUES " \
	"(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"

static const char *const ad_column[AD_NCOLS] = {
	"id", "id_doc_number", "last_name_lat", "first_name_lat",
	"last_name_ar", "first_name_ar", "birth_date", "gender", "phone",
	"email", "address", "region", "diploma", "skills", "status",
	"registration_date", "last_contact_date", "owner_branch"
};

/* ---- parameters ---- */

typedef struct ad_options {
	uint64_t seed;
	uint32_t base_rows;   /* rows loaded before the period */
	uint32_t inserts;     /* new rows during the period */
	uint32_t updates;     /* UPDATE statements during the period */
	uint32_t hot_rows;    /* size of the hot set */
	uint32_t hot_updates; /* how many of `updates` hit the hot set */
	uint32_t deletes;     /* base rows deleted during the period */
	uint32_t txn;         /* statements per transaction */
	uint32_t hq_updates;  /* HQ's concurrent updates */
	uint32_t hq_overlap;  /* of which on rows the branch touched */
} ad_options;

/* The numbers of DESIGN.md §10. */
static inline void ad_options_default(ad_options *o, uint64_t seed)
{
	o->seed = seed;
	o->base_rows = 100000;
	o->inserts = 2000;
	o->updates = 10000;
	o->hot_rows = 1000;
	o->hot_updates = 5000;
	o->deletes = 200;
	o->txn = 100;
	o->hq_updates = 1000;
	o->hq_overlap = 100;
}


/* --quick and smaller stores: the period (and HQ's edits) in proportion to
 * the base rows (DESIGN's period is for 100,000). */
static inline void ad_scale_period(ad_options *o)
{
	uint64_t n = o->base_rows, d = 100000;

#define AD_SCALE(x) ((uint32_t)(((uint64_t)(x) * n + d / 2) / d))
	o->inserts = AD_SCALE(o->inserts);
	o->updates = AD_SCALE(o->updates);
	o->hot_rows = AD_SCALE(o->hot_rows);
	o->hot_updates = AD_SCALE(o->hot_updates);
	o->deletes = AD_SCALE(o->deletes);
	o->hq_updates = AD_SCALE(o->hq_updates);
	o->hq_overlap = AD_SCALE(o->hq_overlap);
#undef AD_SCALE
	if (o->hot_rows == 0)
		o->hot_rows = 1;
}

/* The sizes the benchmark programs take: `rows` base rows when given (not
 * 0), else 10,000 for --quick, else DESIGN's 100,000; with --quick the
 * period scaled to them, so that every program's quick run is the same
 * workload. */
static inline void ad_options_size(ad_options *o, int quick, uint32_t rows)
{
	if (rows != 0 || quick)
		o->base_rows = rows ? rows : 10000;
	if (quick)
		ad_scale_period(o);
}



/* ---- value lists (names, the random numbers and dates: tools/agency_data.h) ---- */

/* The 12 regions of the 2015 division; a Casablanca branch's job seekers
 * live mostly in Casablanca-Settat. */
static const char *const ad_region[] = {
	"Casablanca-Settat", "Tanger-Tétouan-Al Hoceïma", "L'Oriental",
	"Fès-Meknès", "Rabat-Salé-Kénitra", "Béni Mellal-Khénifra",
	"Marrakech-Safi", "Drâa-Tafilalet", "Souss-Massa",
	"Guelmim-Oued Noun", "Laâyoune-Sakia El Hamra",
	"Dakhla-Oued Ed-Dahab",
};

/* Cities of the branch's area with their postal codes (Casablanca's vary
 * by district). */
typedef struct ad_city_t {
	unsigned postal;
	const char *name;
} ad_city_t;

static const ad_city_t ad_city[] = {
	{20000, "Casablanca"}, {20000, "Casablanca"}, {20000, "Casablanca"},
	{28800, "Mohammedia"}, {26100, "Berrechid"}, {26000, "Settat"},
	{24000, "El Jadida"}, {13000, "Benslimane"}, {29000, "Médiouna"},
	{27000, "Nouaceur"},
};

static const char *const ad_quarter[] = {
	"Hay Mohammadi", "Sidi Bernoussi", "Aïn Sebaâ", "Maârif",
	"Hay Hassani", "Sidi Moumen", "Derb Sultan", "Aïn Chock",
	"Bourgogne", "Oulfa", "Sbata", "Lissasfa", "Hay Moulay Rachid",
	"Ben M'Sick", "Belvédère", "Al Qods",
};

static const char *const ad_street[] = {
	"Rue Ibn Battouta", "Avenue Hassan II", "Boulevard Mohammed V",
	"Rue Al Massira", "Boulevard Zerktouni", "Rue Abdelmoumen",
	"Rue Oued Sebou", "Avenue Moulay Youssef", "Rue Al Farabi",
	"Rue Ibn Sina", "Derb El Kebir", "Impasse des Orangers",
	"Rue de Fès", "Boulevard Al Fida", "Avenue des FAR", "Rue Soumaya",
};

static const char *const ad_diploma[] = {
	"Sans diplôme", "Niveau collège", "Baccalauréat lettres",
	"Baccalauréat sciences expérimentales", "Technicien en électricité",
	"Technicien spécialisé en comptabilité", "DTS développement digital",
	"BTS commerce international", "Licence en économie et gestion",
	"Licence en droit privé", "Licence professionnelle logistique",
	"Master en finance", "Master en droit des affaires",
	"Diplôme d'ingénieur en génie civil", "Qualification en couture",
	"Spécialisation en plomberie sanitaire",
};

static const char *const ad_skill[] = {
	"Excel", "Word", "relation client", "français courant",
	"anglais B1", "permis B", "comptabilité générale", "Sage",
	"gestion de stock", "vente", "cuisine", "couture", "électricité",
	"plomberie", "Java", "SQL", "secrétariat", "caisse", "logistique",
	"maintenance industrielle", "arabe", "amazighe", "centre d'appels",
	"manutention", "cariste", "HACCP", "marketing digital",
	"réseaux informatiques", "soudure", "conduite de chantier",
	"espagnol A2", "saisie de données",
};

static const char *const ad_status[] = {
	"active", "active", "active", "active", "active", "active",
	"in_training", "placed", "self_employed", "inactive",
};

/* CNIE letter prefixes of the Casablanca area (two letters, six digits;
 * older cards have one letter). */
static const char *const ad_doc_prefix[] = {
	"BE", "BH", "BJ", "BK", "BL", "BB", "BA", "BW", "BM", "BN", "B", "W",
};

static const char *const ad_mail_domain[] = {
	"gmail.com", "gmail.com", "yahoo.fr", "hotmail.com", "outlook.fr",
};


/* ---- dates ---- */

/* Days since 1970-01-01 of the first day of the offline period
 * (2025-11-03) and of the base registrations' range (2012-01-01 ..). */
#define AD_DAY_PERIOD 20395u
#define AD_DAY_REG0   15340u


/* ---- one row ---- */

/* 1 KiB holds a generated row: the longest choice of every list plus the
 * 95-byte skills cap stays under 450 bytes. */
#define AD_ROW_MAX 1024

typedef struct ad_row {
	const char *v[AD_NCOLS];   /* NULL is SQL NULL; points into buf */
	char buf[AD_ROW_MAX];
	size_t used;
} ad_row;

/* Who row n is: gender and name indexes, a function of (seed, n) alone so
 * that an update of the e-mail still matches the person's name. */
typedef struct ad_person {
	int female;
	const ad_name *first;
	const ad_name *last;
} ad_person;

static inline void ad_person_of(ad_person *p, uint64_t seed, uint32_t n)
{
	ad_rng r;

	ad_rng_seed(&r, seed, 1, n);
	p->female = (int)ad_below(&r, 2);
	p->first = p->female ? &AD_PICK(&r, ad_female) : &AD_PICK(&r, ad_male);
	p->last = &AD_PICK(&r, ad_family);
}

/* Append a formatted value to row->buf and return it (never NULL: a value
 * longer than what remains is cut, which AD_ROW_MAX rules out). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
AD_FN const char *ad_put(ad_row *row, const char *fmt, ...)
{
	char *dst = row->buf + row->used;
	size_t room = sizeof(row->buf) - row->used;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(dst, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	row->used += (size_t)n < room ? (size_t)n + 1 : room;
	return dst;
}

/* A comma-separated skills list of 75 to 95 bytes (82 on average). */
AD_FN const char *ad_put_skills(ad_row *row, ad_rng *r)
{
	char s[128];
	size_t len = 0;

	s[0] = '\0';
	while (len < 75) {
		const char *k = AD_PICK(r, ad_skill);
		size_t kl = strlen(k);

		if (len + kl + 2 > 95)
			break;
		if (len != 0) {
			memcpy(s + len, ", ", 2);
			len += 2;
		}
		memcpy(s + len, k, kl + 1);
		len += kl;
	}
	return ad_put(row, "%s", s);
}

AD_FN const char *ad_put_email(ad_row *row, ad_rng *r, const ad_person *p)
{
	char local[64];
	size_t i, j = 0;
	const char *parts[2] = { p->first->lat, p->last->lat };
	unsigned no;
	int k;

	for (k = 0; k < 2; k++) {
		for (i = 0; parts[k][i] != '\0' && j + 2 < sizeof(local); i++) {
			char c = parts[k][i];

			if (c >= 'A' && c <= 'Z')
				c = (char)(c - 'A' + 'a');
			if (c != ' ')
				local[j++] = c;
		}
		if (k == 0)
			local[j++] = '.';
	}
	local[j] = '\0';
	/* one draw per statement: argument order is unspecified in C */
	no = ad_below(r, 100);
	return ad_put(row, "%s%u@%s", local, no, AD_PICK(r, ad_mail_domain));
}

/* A CNIE number: letters, then six digits. */
AD_FN const char *ad_put_doc(ad_row *row, ad_rng *r)
{
	const char *prefix = AD_PICK(r, ad_doc_prefix);

	return ad_put(row, "%s%06u", prefix, ad_below(r, 1000000));
}

/* Column `col` of row n drawn from r: the values an update writes.  Only
 * the columns an update may change are handled; others give NULL. */
AD_FN const char *ad_put_col(ad_row *row, ad_rng *r, int col,
    const ad_person *p, uint32_t today)
{
	char d[11], c;

	switch (col) {
	case AD_PHONE:
		c = ad_below(r, 5) == 0 ? '7' : '6';
		return ad_put(row, "0%c%08u", c, ad_below(r, 100000000));
	case AD_EMAIL:
		return ad_put_email(row, r, p);
	case AD_ADDRESS: {
		unsigned no = 1 + ad_below(r, 180);
		const char *street = AD_PICK(r, ad_street);
		const char *quarter = AD_PICK(r, ad_quarter);
		const ad_city_t *city = &AD_PICK(r, ad_city);
		unsigned postal = city->postal;

		if (postal == 20000)
			postal += 10 * ad_below(r, 60);
		return ad_put(row, "%u, %s, %s, %u %s", no, street, quarter,
		    postal, city->name);
	}
	case AD_DIPLOMA:
		return ad_put(row, "%s", AD_PICK(r, ad_diploma));
	case AD_SKILLS:
		return ad_put_skills(row, r);
	case AD_STATUS:
		return ad_put(row, "%s", AD_PICK(r, ad_status));
	case AD_LAST_CONTACT:
		ad_date(d, today);
		return ad_put(row, "%s", d);
	case AD_REGION:
		/* 85% live in the branch's own region */
		return ad_put(row, "%s", ad_below(r, 100) < 85 ? ad_region[0] :
		    ad_region[1 + ad_below(r, AD_COUNT(ad_region) - 1)]);
	default:
		return NULL;
	}
}

/* The whole of row n (key AD_BRANCH-nnnnnn).  `registered` is the day of
 * registration: a base row passes 0 (a day drawn from 2012-2025), a row
 * inserted during the period passes the day of the insert. */
AD_FN void ad_row_make(ad_row *row, uint64_t seed, uint32_t n,
    uint32_t registered)
{
	static const int rest[] = { AD_PHONE, AD_EMAIL, AD_ADDRESS, AD_REGION,
	    AD_DIPLOMA, AD_SKILLS, AD_STATUS };
	ad_person p;
	ad_rng r;
	char d[11];
	uint32_t i, contact;

	row->used = 0;
	ad_person_of(&p, seed, n);
	ad_rng_seed(&r, seed, 2, n);
	if (registered == 0)
		registered = AD_DAY_REG0 + ad_below(&r, AD_DAY_PERIOD - AD_DAY_REG0);
	contact = registered;
	if (registered < AD_DAY_PERIOD)
		contact += ad_below(&r, AD_DAY_PERIOD - registered);
	row->v[AD_ID] = ad_put(row, AD_BRANCH "-%06u", n);
	row->v[AD_DOC] = ad_put_doc(row, &r);
	row->v[AD_LAST] = p.last->lat;
	row->v[AD_FIRST] = p.first->lat;
	row->v[AD_LAST_AR] = p.last->ar;
	row->v[AD_FIRST_AR] = p.first->ar;
	/* born 1970-01-01 .. 2007-12-31: 18 to 55 years old */
	ad_date(d, ad_below(&r, 13879));
	row->v[AD_BIRTH] = ad_put(row, "%s", d);
	row->v[AD_GENDER] = p.female ? "F" : "M";
	for (i = 0; i < AD_COUNT(rest); i++)
		row->v[rest[i]] = ad_put_col(row, &r, rest[i], &p, contact);
	if (registered >= AD_DAY_PERIOD)
		row->v[AD_STATUS] = "active";
	ad_date(d, registered);
	row->v[AD_REGISTERED] = ad_put(row, "%s", d);
	ad_date(d, contact);
	row->v[AD_LAST_CONTACT] = ad_put(row, "%s", d);
	row->v[AD_OWNER] = AD_BRANCH;
}

/* Bytes of values of a row (what "~310 bytes per row" counts). */
static inline size_t ad_row_bytes(const ad_row *row)
{
	size_t n = 0;
	int i;

	for (i = 0; i < AD_NCOLS; i++)
		if (row->v[i] != NULL)
			n += strlen(row->v[i]);
	return n;
}

/* ---- the plan: every statement of the period, materialised ---- */

enum { AD_OP_INSERT, AD_OP_UPDATE, AD_OP_DELETE };

typedef struct ad_op {
	uint8_t kind;
	uint8_t nval;      /* values that follow in ad_plan.val */
	uint32_t mask;     /* updates: bit c set = column c is SET */
	uint32_t row;      /* row number */
	uint32_t key;      /* offset of the key text in the arena */
	uint32_t val;      /* index of the first value offset in ad_plan.val */
} ad_op;

#define AD_NULL UINT32_MAX

typedef struct ad_plan {
	ad_op *op;
	size_t nop;
	uint32_t *val;     /* arena offsets, AD_NULL for SQL NULL */
	size_t nval;
} ad_plan;

/* Row state bits, indexed by row number (1-based). */
#define AD_ALIVE   1u   /* exists at the end of the period */
#define AD_TOUCHED 2u   /* inserted, updated or deleted by the period */
#define AD_HOT     4u   /* in the hot set */

typedef struct ad_workload {
	ad_options opt;
	char *arena;         /* NUL-terminated strings */
	size_t arena_len, arena_cap;
	ad_plan period;      /* the branch's offline period */
	ad_plan hq;          /* HQ's concurrent updates */
	uint8_t *state;      /* [1 .. base_rows + inserts] */
	uint32_t nrows;      /* base_rows + inserts */
	uint32_t distinct;   /* rows the period touches */
	int oom;             /* sticky: an allocation failed */
} ad_workload;

AD_FN uint32_t ad_arena_add(ad_workload *w, const char *s)
{
	size_t len;
	uint32_t off;

	if (s == NULL)
		return AD_NULL;
	len = strlen(s) + 1;
	if (w->arena_len + len > w->arena_cap) {
		size_t cap = w->arena_cap ? w->arena_cap * 2 : 1u << 20;
		char *p;

		while (cap < w->arena_len + len)
			cap *= 2;
		/* offsets are 32-bit; the period needs a few MiB */
		if (cap >= AD_NULL || (p = realloc(w->arena, cap)) == NULL) {
			w->oom = 1;
			return AD_NULL;
		}
		w->arena = p;
		w->arena_cap = cap;
	}
	off = (uint32_t)w->arena_len;
	memcpy(w->arena + off, s, len);
	w->arena_len += len;
	return off;
}

/* Reserve room for `nop` ops and `nval` values in a plan. */
AD_FN int ad_plan_alloc(ad_workload *w, ad_plan *p, size_t nop, size_t nval)
{
	p->op = calloc(nop ? nop : 1, sizeof(*p->op));
	p->val = calloc(nval ? nval : 1, sizeof(*p->val));
	p->nop = p->nval = 0;
	if (p->op == NULL || p->val == NULL)
		w->oom = 1;
	return w->oom ? -1 : 0;
}

AD_FN void ad_plan_add(ad_workload *w, ad_plan *p, int kind, uint32_t n,
    uint32_t mask, const char *const *vals, int nvals)
{
	char key[32];
	ad_op *op = &p->op[p->nop++];
	int i;

	snprintf(key, sizeof(key), AD_BRANCH "-%06u", n);
	op->kind = (uint8_t)kind;
	op->row = n;
	op->mask = mask;
	op->key = ad_arena_add(w, key);
	op->val = (uint32_t)p->nval;
	op->nval = (uint8_t)nvals;
	for (i = 0; i < nvals; i++)
		p->val[p->nval++] = ad_arena_add(w, vals[i]);
}

/* Columns an update may set, and their weights (in %): a counsellor logs
 * a contact, changes a status, adds skills after a diagnostic, ... */
static const int ad_upd_col[] = { AD_LAST_CONTACT, AD_STATUS, AD_SKILLS,
    AD_PHONE, AD_ADDRESS, AD_DIPLOMA, AD_EMAIL };
static const int ad_upd_weight[] = { 30, 20, 15, 10, 10, 10, 5 };

/* Draw 1-3 distinct columns of ad_upd_col; returns the mask. */
static inline uint32_t ad_draw_mask(ad_rng *r)
{
	uint32_t mask = 0;
	uint32_t want = 1 + ad_below(r, 3);
	int n = 0;

	while (n < (int)want) {
		uint32_t x = ad_below(r, 100), acc = 0;
		uint32_t i;

		for (i = 0; i + 1 < AD_COUNT(ad_upd_col); i++) {
			acc += (uint32_t)ad_upd_weight[i];
			if (x < acc)
				break;
		}
		if (!(mask & (1u << ad_upd_col[i]))) {
			mask |= 1u << ad_upd_col[i];
			n++;
		}
	}
	return mask;
}

/* Values of an update of row n with columns `mask`, in column order. */
AD_FN int ad_update_values(ad_row *row, const char **vals, ad_rng *r,
    uint64_t seed, uint32_t n, uint32_t mask, uint32_t today)
{
	ad_person p;
	int c, k = 0;

	row->used = 0;
	ad_person_of(&p, seed, n);
	for (c = 0; c < AD_NCOLS; c++)
		if (mask & (1u << c))
			vals[k++] = ad_put_col(row, r, c, &p, today);
	return k;
}

/* A live, non-hot base row, uniformly (for deletes). */
static inline uint32_t ad_draw_deletable(ad_workload *w, ad_rng *r)
{
	for (;;) {
		uint32_t n = 1 + ad_below(r, w->opt.base_rows);

		if ((w->state[n] & (AD_ALIVE | AD_HOT)) == AD_ALIVE)
			return n;
	}
}

/* A live row among those that exist so far, uniformly. */
static inline uint32_t ad_draw_live(ad_workload *w, ad_rng *r, uint32_t upto)
{
	for (;;) {
		uint32_t n = 1 + ad_below(r, upto);

		if (w->state[n] & AD_ALIVE)
			return n;
	}
}

/* The kinds of the period's statements, shuffled (Fisher-Yates). */
AD_FN uint8_t *ad_period_kinds(const ad_options *o, ad_rng *r, size_t total)
{
	uint8_t *kind = malloc(total ? total : 1);
	size_t i = 0, j;

	if (kind == NULL)
		return NULL;
	/* 0 insert, 1 hot update, 2 other update, 3 delete */
	for (j = 0; j < o->inserts; j++)
		kind[i++] = 0;
	for (j = 0; j < o->hot_updates; j++)
		kind[i++] = 1;
	for (j = 0; j < o->updates - o->hot_updates; j++)
		kind[i++] = 2;
	for (j = 0; j < o->deletes; j++)
		kind[i++] = 3;
	for (i = total; i > 1; i--) {
		uint8_t t;

		j = ad_below(r, (uint32_t)i);
		t = kind[i - 1];
		kind[i - 1] = kind[j];
		kind[j] = t;
	}
	return kind;
}

/* The period's statements into w->period; marks w->state. */
AD_FN int ad_plan_period(ad_workload *w)
{
	const ad_options *o = &w->opt;
	size_t total = (size_t)o->inserts + o->updates + o->deletes, i;
	uint32_t *hot = NULL, next = o->base_rows + 1;
	uint8_t *kind = NULL;
	ad_row *row = malloc(sizeof(*row));
	const char *vals[AD_NCOLS];
	ad_rng r;
	int rc = -1;

	ad_rng_seed(&r, o->seed, 3, 0);
	hot = calloc(o->hot_rows ? o->hot_rows : 1, sizeof(*hot));
	kind = ad_period_kinds(o, &r, total);
	if (row == NULL || hot == NULL || kind == NULL ||
	    ad_plan_alloc(w, &w->period, total,
	    (size_t)o->inserts * AD_NCOLS + (size_t)o->updates * 3) < 0)
		goto done;
	for (i = 0; i < o->hot_rows; i++) {
		uint32_t n;

		do
			n = 1 + ad_below(&r, o->base_rows);
		while (w->state[n] & AD_HOT);
		w->state[n] |= AD_HOT;
		hot[i] = n;
	}
	for (i = 0; i < total; i++) {
		/* the period runs over 20 working days */
		uint32_t today = AD_DAY_PERIOD + (uint32_t)(i * 20 / total);
		uint32_t n, mask;
		int nv;

		switch (kind[i]) {
		case 0:
			n = next++;
			ad_row_make(row, o->seed, n, today);
			w->state[n] |= AD_ALIVE;
			ad_plan_add(w, &w->period, AD_OP_INSERT, n, 0, row->v,
			    AD_NCOLS);
			break;
		case 1:
		case 2:
			n = kind[i] == 1 ? hot[ad_below(&r, o->hot_rows)] :
			    ad_draw_live(w, &r, next - 1);
			mask = ad_draw_mask(&r);
			nv = ad_update_values(row, vals, &r, o->seed, n, mask,
			    today);
			ad_plan_add(w, &w->period, AD_OP_UPDATE, n, mask, vals,
			    nv);
			break;
		default:
			n = ad_draw_deletable(w, &r);
			w->state[n] &= (uint8_t)~AD_ALIVE;
			ad_plan_add(w, &w->period, AD_OP_DELETE, n, 0, NULL, 0);
			break;
		}
		if (!(w->state[n] & AD_TOUCHED))
			w->distinct++;
		w->state[n] |= AD_TOUCHED;
	}
	rc = w->oom ? -1 : 0;
done:
	free(kind);
	free(hot);
	free(row);
	return rc;
}

/* HQ's concurrent updates of distinct base rows (identity corrections and
 * status batches), hq_overlap of them on rows the branch touched. */
AD_FN int ad_plan_hq(ad_workload *w)
{
	static const uint32_t cols = (1u << AD_LAST) | (1u << AD_FIRST) |
	    (1u << AD_LAST_AR) | (1u << AD_FIRST_AR) | (1u << AD_DOC) |
	    (1u << AD_STATUS) | (1u << AD_REGION);
	const ad_options *o = &w->opt;
	uint8_t *seen = calloc((size_t)o->base_rows + 1, 1);
	ad_row *row = malloc(sizeof(*row));
	const char *vals[AD_NCOLS];
	ad_rng r;
	uint32_t i;
	int rc = -1;

	ad_rng_seed(&r, o->seed, 4, 0);
	if (seen == NULL || row == NULL ||
	    ad_plan_alloc(w, &w->hq, o->hq_updates, (size_t)o->hq_updates * 2) < 0)
		goto done;
	for (i = 0; i < o->hq_updates; i++) {
		int overlap = i < o->hq_overlap;
		uint32_t n, mask = 0, c;
		ad_person p;
		int k = 0, want;

		do
			n = 1 + ad_below(&r, o->base_rows);
		while (seen[n] || !(w->state[n] & AD_TOUCHED) != !overlap);
		seen[n] = 1;
		/* one or two of the HQ-side columns */
		want = 1 + (int)ad_below(&r, 2);
		while (k < want) {
			c = ad_below(&r, AD_NCOLS);
			if ((cols & (1u << c)) && !(mask & (1u << c))) {
				mask |= 1u << c;
				k++;
			}
		}
		/* a "corrected" name is another name of the lists: the bytes
		 * and the columns matter here, not the spelling */
		row->used = 0;
		ad_person_of(&p, o->seed ^ 0x5a5a5a5aULL, n);
		for (c = 0, k = 0; c < AD_NCOLS; c++) {
			if (!(mask & (1u << c)))
				continue;
			if (c == AD_LAST || c == AD_LAST_AR)
				vals[k++] = c == AD_LAST ? p.last->lat : p.last->ar;
			else if (c == AD_FIRST || c == AD_FIRST_AR)
				vals[k++] = c == AD_FIRST ? p.first->lat : p.first->ar;
			else if (c == AD_DOC)
				vals[k++] = ad_put_doc(row, &r);
			else
				vals[k++] = ad_put_col(row, &r, (int)c, &p,
				    AD_DAY_PERIOD);
		}
		ad_plan_add(w, &w->hq, AD_OP_UPDATE, n, mask, vals, k);
	}
	rc = w->oom ? -1 : 0;
done:
	free(row);
	free(seen);
	return rc;
}

AD_FN void ad_workload_free(ad_workload *w)
{
	if (w == NULL)
		return;
	free(w->period.op);
	free(w->period.val);
	free(w->hq.op);
	free(w->hq.val);
	free(w->arena);
	free(w->state);
	free(w);
}

/* Generate the workload of `o` (copied).  Returns NULL when out of memory
 * or when the options do not fit (hot_rows + deletes must leave base rows
 * to draw from, hot_updates <= updates).  Free with ad_workload_free. */
AD_FN ad_workload *ad_workload_new(const ad_options *o)
{
	ad_workload *w = calloc(1, sizeof(*w));
	uint32_t n, untouched;

	if (w == NULL)
		return NULL;
	w->opt = *o;
	if (o->base_rows == 0 || o->base_rows > 999999 - o->inserts ||
	    o->hot_updates > o->updates || o->txn == 0 ||
	    (uint64_t)o->hot_rows + 2 * (uint64_t)o->deletes > o->base_rows ||
	    (o->hot_updates > 0 && o->hot_rows == 0) ||
	    o->hq_overlap > o->hq_updates ||
	    o->hq_updates > o->base_rows / 2)
		goto fail;
	w->nrows = o->base_rows + o->inserts;
	if ((w->state = calloc((size_t)w->nrows + 1, 1)) == NULL)
		goto fail;
	for (n = 1; n <= o->base_rows; n++)
		w->state[n] = AD_ALIVE;
	if (ad_plan_period(w) < 0)
		goto fail;
	/* HQ draws distinct base rows, touched or not: keep both drawable
	 * (only a tiny --rows can need this) */
	for (n = 1, untouched = 0; n <= o->base_rows; n++)
		untouched += !(w->state[n] & AD_TOUCHED);
	if (w->opt.hq_overlap > (o->base_rows - untouched) / 2)
		w->opt.hq_overlap = (o->base_rows - untouched) / 2;
	if (w->opt.hq_updates - w->opt.hq_overlap > untouched / 2)
		w->opt.hq_updates = w->opt.hq_overlap + untouched / 2;
	if (ad_plan_hq(w) < 0)
		goto fail;
	return w;
fail:
	ad_workload_free(w);
	return NULL;
}

/* ---- running it ---- */

/* WAL, synchronous=NORMAL: what an application on a branch PC uses. */
AD_FN int ad_configure(sqlite3 *db)
{
	return sqlite3_exec(db, "PRAGMA journal_mode=WAL;"
	    "PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
}

/* Insert base rows 1 .. opt.base_rows in one transaction with one
 * prepared statement (the table must exist). */
AD_FN int ad_load_base(sqlite3 *db, const ad_workload *w)
{
	sqlite3_stmt *st = NULL;
	ad_row *row = malloc(sizeof(*row));
	uint32_t n;
	int c, rc;

	if (row == NULL)
		return SQLITE_NOMEM;
	if ((rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL)) != SQLITE_OK ||
	    (rc = sqlite3_prepare_v2(db, AD_INSERT_SQL, -1, &st, NULL)) != SQLITE_OK)
		goto done;
	for (n = 1; n <= w->opt.base_rows; n++) {
		ad_row_make(row, w->opt.seed, n, 0);
		for (c = 0; c < AD_NCOLS; c++)
			sqlite3_bind_text(st, c + 1, row->v[c], -1, SQLITE_STATIC);
		if ((rc = sqlite3_step(st)) != SQLITE_DONE)
			goto done;
		sqlite3_reset(st);
	}
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
done:
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	free(row);
	return rc;
}

/* Prepared statements of a plan: one INSERT, one DELETE, one UPDATE per
 * column set (prepared when first needed, as an application's statement
 * cache would). */
typedef struct ad_stmts {
	sqlite3_stmt *ins, *del;
	sqlite3_stmt *upd[64];
	uint32_t upd_mask[64];
	int nupd;
} ad_stmts;

AD_FN void ad_stmts_release(ad_stmts *s)
{
	int i;

	sqlite3_finalize(s->ins);
	sqlite3_finalize(s->del);
	for (i = 0; i < s->nupd; i++)
		sqlite3_finalize(s->upd[i]);
	memset(s, 0, sizeof(*s));
}

AD_FN int ad_stmt_update(sqlite3 *db, ad_stmts *s, uint32_t mask,
    sqlite3_stmt **out)
{
	char sql[1024];
	size_t len;
	int i, c, k = 0;

	for (i = 0; i < s->nupd; i++)
		if (s->upd_mask[i] == mask) {
			*out = s->upd[i];
			return SQLITE_OK;
		}
	if (s->nupd == 64)
		return SQLITE_FULL;   /* a plan uses at most 63 column sets */
	len = (size_t)snprintf(sql, sizeof(sql), "UPDATE " AD_TABLE " SET ");
	for (c = 0; c < AD_NCOLS; c++) {
		if (!(mask & (1u << c)))
			continue;
		len += (size_t)snprintf(sql + len, sizeof(sql) - len,
		    "%s%s = ?%d", k ? ", " : "", ad_column[c], k + 1);
		k++;
	}
	snprintf(sql + len, sizeof(sql) - len, " WHERE id = ?%d", k + 1);
	s->upd_mask[s->nupd] = mask;
	i = sqlite3_prepare_v2(db, sql, -1, &s->upd[s->nupd], NULL);
	if (i != SQLITE_OK)
		return i;
	*out = s->upd[s->nupd++];
	return SQLITE_OK;
}

/* One statement of a plan: bind and step. */
AD_FN int ad_exec_op(sqlite3 *db, const ad_workload *w, const ad_plan *p,
    const ad_op *op, ad_stmts *s)
{
	const char *a = w->arena;
	sqlite3_stmt *st = NULL;
	int i, rc;

	if (op->kind == AD_OP_UPDATE) {
		if ((rc = ad_stmt_update(db, s, op->mask, &st)) != SQLITE_OK)
			return rc;
	} else {
		st = op->kind == AD_OP_INSERT ? s->ins : s->del;
	}
	for (i = 0; i < op->nval; i++) {
		uint32_t off = p->val[op->val + (uint32_t)i];

		if (off == AD_NULL)
			sqlite3_bind_null(st, i + 1);
		else
			sqlite3_bind_text(st, i + 1, a + off, -1, SQLITE_STATIC);
	}
	if (op->kind != AD_OP_INSERT)
		sqlite3_bind_text(st, op->nval + 1, a + op->key, -1,
		    SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Run every statement of plan p, `txn` statements per transaction. */
AD_FN int ad_run_plan(sqlite3 *db, const ad_workload *w, const ad_plan *p)
{
	ad_stmts s;
	size_t i;
	int rc = SQLITE_OK, open = 0;

	memset(&s, 0, sizeof(s));
	if ((rc = sqlite3_prepare_v2(db, AD_INSERT_SQL, -1, &s.ins, NULL)) ||
	    (rc = sqlite3_prepare_v2(db, "DELETE FROM " AD_TABLE
	    " WHERE id = ?1", -1, &s.del, NULL)) != SQLITE_OK)
		goto done;
	for (i = 0; i < p->nop; i++) {
		if (!open) {
			if ((rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL)))
				goto done;
			open = 1;
		}
		if ((rc = ad_exec_op(db, w, p, &p->op[i], &s)) != SQLITE_OK)
			goto done;
		if ((i + 1) % w->opt.txn == 0 || i + 1 == p->nop) {
			if ((rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)))
				goto done;
			open = 0;
		}
	}
done:
	if (open)
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	ad_stmts_release(&s);
	return rc;
}

/* The branch's offline period. */
AD_FN int ad_run_period(sqlite3 *db, const ad_workload *w)
{
	return ad_run_plan(db, w, &w->period);
}

/* HQ's concurrent updates (on a database holding the base rows only). */
AD_FN int ad_run_hq(sqlite3 *db, const ad_workload *w)
{
	return ad_run_plan(db, w, &w->hq);
}

/* Update k distinct rows alive after the period, in one transaction: the
 * rows, the other columns (0-2) and the values are drawn from `salt`; every
 * update sets last_contact_date to a day after the period that depends on
 * salt % 997, so that each row's content really changes, also after an
 * earlier call with another salt (a commit must not find that the updates
 * cancel out).  *changed_out counts the rows SQLite changed (k when run on
 * the period's final state).  Not materialised: callers time what follows
 * (a commit), not this. */
AD_FN int ad_update_distinct(sqlite3 *db, const ad_workload *w, uint32_t k,
    uint64_t salt, uint32_t *changed_out)
{
	uint32_t *live = malloc(((size_t)w->nrows + 1) * sizeof(*live));
	ad_row *row = malloc(sizeof(*row));
	const char *vals[AD_NCOLS];
	ad_stmts s;
	ad_rng r;
	uint32_t n, m = 0, i;
	int rc = SQLITE_NOMEM, j, nv;

	memset(&s, 0, sizeof(s));
	*changed_out = 0;
	if (live == NULL || row == NULL)
		goto done;
	for (n = 1; n <= w->nrows; n++)
		if (w->state[n] & AD_ALIVE)
			live[m++] = n;
	if (k > m)
		k = m;
	ad_rng_seed(&r, w->opt.seed, 5, salt);
	if ((rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL)) != SQLITE_OK)
		goto done;
	for (i = 0; i < k; i++) {
		char key[32];
		sqlite3_stmt *st;
		uint32_t t, x = i + ad_below(&r, m - i), mask;

		t = live[i], live[i] = live[x], live[x] = t;
		mask = ad_draw_mask(&r) | (1u << AD_LAST_CONTACT);
		nv = ad_update_values(row, vals, &r, w->opt.seed, live[i], mask,
		    AD_DAY_PERIOD + 20 + (uint32_t)(salt % 997));
		if ((rc = ad_stmt_update(db, &s, mask, &st)) != SQLITE_OK)
			goto rollback;
		for (j = 0; j < nv; j++)
			sqlite3_bind_text(st, j + 1, vals[j], -1, SQLITE_STATIC);
		snprintf(key, sizeof(key), AD_BRANCH "-%06u", live[i]);
		sqlite3_bind_text(st, nv + 1, key, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			goto rollback;
		*changed_out += (uint32_t)sqlite3_changes(db);
	}
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		goto done;
rollback:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
done:
	ad_stmts_release(&s);
	free(row);
	free(live);
	return rc;
}

#endif /* AD_AGENCY_DAY_H */

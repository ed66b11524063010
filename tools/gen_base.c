/*
 * gen_base.c - `syncctl generate base`: the reference data (regions and
 * provinces of the 2015 division, occupations, programmes) and every
 * branch's base rows: employers with ICE numbers, their offers, job seekers
 * with bilingual names and CNIE numbers, their interviews, applications and
 * placements (never more than an offer's positions), workshops and their
 * attendance.  gen.h says what the generator promises.
 */
#include "tools/gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const gen_table_name[GEN_NTABLES] = {
	"territory", "occupation", "programme", "employer", "job_offer", "job_seeker",
	"interview", "application", "placement", "workshop", "workshop_attendance"
};

static const struct { const char *fr, *ar; } regions[12] = {
	{"Tanger-Tétouan-Al Hoceïma", "طنجة تطوان الحسيمة"}, {"L'Oriental", "الشرق"},
	{"Fès-Meknès", "فاس مكناس"}, {"Rabat-Salé-Kénitra", "الرباط سلا القنيطرة"},
	{"Béni Mellal-Khénifra", "بني ملال خنيفرة"}, {"Casablanca-Settat", "الدار البيضاء سطات"},
	{"Marrakech-Safi", "مراكش آسفي"}, {"Drâa-Tafilalet", "درعة تافيلالت"},
	{"Souss-Massa", "سوس ماسة"}, {"Guelmim-Oued Noun", "كلميم واد نون"},
	{"Laâyoune-Sakia El Hamra", "العيون الساقية الحمراء"},
	{"Dakhla-Oued Ed-Dahab", "الداخلة وادي الذهب"},
};

/* The first three are the demo's branches; a national run cycles through
 * all of them (78 branches: two in most provinces). */
const gen_province gen_provinces[] = {
	{"CAS", "MA-06-141", "Casablanca", "الدار البيضاء", 6, "BE", false},
	{"RAB", "MA-04-421", "Rabat", "الرباط", 4, "A", false},
	{"AGA", "MA-09-001", "Agadir Ida-Outanane", "أكادير إداوتنان", 9, "J", false},
	{"TNG", "MA-01-511", "Tanger-Assilah", "طنجة أصيلة", 1, "K", false},
	{"FES", "MA-03-231", "Fès", "فاس", 3, "C", false},
	{"MRK", "MA-07-351", "Marrakech", "مراكش", 7, "E", false},
	{"OUJ", "MA-02-411", "Oujda-Angad", "وجدة أنجاد", 2, "F", false},
	{"MKN", "MA-03-331", "Meknès", "مكناس", 3, "D", false},
	{"KNT", "MA-04-281", "Kénitra", "القنيطرة", 4, "G", false},
	{"TET", "MA-01-571", "Tétouan", "تطوان", 1, "L", false},
	{"SAF", "MA-07-441", "Safi", "آسفي", 7, "H", false},
	{"BML", "MA-05-091", "Béni Mellal", "بني ملال", 5, "I", false},
	{"ELJ", "MA-06-181", "El Jadida", "الجديدة", 6, "M", false},
	{"NDR", "MA-02-381", "Nador", "الناظور", 2, "S", false},
	{"KHO", "MA-05-311", "Khouribga", "خريبكة", 5, "Q", false},
	{"SET", "MA-06-461", "Settat", "سطات", 6, "W", false},
	{"ERR", "MA-08-201", "Errachidia", "الرشيدية", 8, "U", true},
	{"OUA", "MA-08-401", "Ouarzazate", "ورزازات", 8, "JC", true},
	{"TAR", "MA-09-541", "Taroudant", "تارودانت", 9, "JE", true},
	{"TIZ", "MA-09-581", "Tiznit", "تيزنيت", 9, "JK", true},
	{"GLM", "MA-10-251", "Guelmim", "كلميم", 10, "JY", true},
	{"LAA", "MA-11-321", "Laâyoune", "العيون", 11, "SH", false},
	{"DAK", "MA-12-391", "Oued Ed-Dahab", "وادي الذهب", 12, "SJ", true},
	{"AZL", "MA-05-041", "Azilal", "أزيلال", 5, "IA", true},
	{"CHF", "MA-01-151", "Chefchaouen", "شفشاون", 1, "LA", true},
	{"HOC", "MA-01-051", "Al Hoceïma", "الحسيمة", 1, "R", true},
	{"TAZ", "MA-03-561", "Taza", "تازة", 3, "Z", true},
	{"IFR", "MA-03-291", "Ifrane", "إفران", 3, "DA", true},
	{"KHN", "MA-05-301", "Khénifra", "خنيفرة", 5, "V", true},
	{"ESS", "MA-07-211", "Essaouira", "الصويرة", 7, "N", true},
	{"ZAG", "MA-08-601", "Zagora", "زاكورة", 8, "UA", true},
	{"TIN", "MA-08-603", "Tinghir", "تنغير", 8, "UB", true},
	{"LAR", "MA-01-331", "Larache", "العرائش", 1, "LC", false},
	{"SAL", "MA-04-441", "Salé", "سلا", 4, "AE", false},
	{"KHM", "MA-04-301", "Khémisset", "الخميسات", 4, "X", true},
	{"BRK", "MA-02-113", "Berkane", "بركان", 2, "FB", false},
	{"FIG", "MA-02-211", "Figuig", "فكيك", 2, "FA", true},
	{"TAN", "MA-10-551", "Tan-Tan", "طانطان", 10, "JF", true},
	{"MOH", "MA-06-371", "Mohammédia", "المحمدية", 6, "T", false},
	{"CHI", "MA-07-161", "Chichaoua", "شيشاوة", 7, "EE", true},
};
const uint32_t gen_nprovinces = AD_COUNT(gen_provinces);

static const struct { const char *code, *isco, *fr, *ar; } occupations[] = {
	{"ROME:D1106", "5223", "Vendeur en alimentation", "بائع مواد غذائية"},
	{"ROME:D1507", "5223", "Mise en rayon", "ترتيب الرفوف"},
	{"ROME:N1103", "9333", "Magasinier", "أمين مخزن"},
	{"ROME:N4101", "8332", "Conducteur poids lourd", "سائق شاحنة"},
	{"ROME:M1607", "4110", "Secrétaire", "كاتب إداري"},
	{"ROME:M1203", "4311", "Comptable", "محاسب"},
	{"ROME:M1805", "2512", "Développeur informatique", "مطور برمجيات"},
	{"ROME:D1408", "4222", "Téléconseiller", "مستشار مركز الاتصال"},
	{"ROME:G1602", "5120", "Cuisinier", "طباخ"},
	{"ROME:G1703", "5131", "Serveur", "نادل"},
	{"ROME:A1401", "9211", "Ouvrier agricole", "عامل فلاحي"},
	{"ROME:A1405", "6111", "Cueilleur de fruits rouges", "جاني الفواكه الحمراء"},
	{"ROME:F1703", "7112", "Maçon", "بناء"},
	{"ROME:F1603", "7126", "Plombier", "سباك"},
	{"ROME:I1309", "7411", "Électricien", "كهربائي"},
	{"ROME:H2913", "7212", "Soudeur", "لحام"},
	{"ROME:B1803", "7533", "Couturier", "خياط"},
	{"ROME:H2102", "8219", "Opérateur de câblage automobile", "عامل تركيب الأسلاك"},
	{"ROME:K2111", "2356", "Formateur", "مكون"},
	{"ROME:J1501", "3221", "Aide-soignant", "مساعد تمريض"},
	{"ROME:K2204", "9112", "Agent d'entretien", "عون نظافة"},
	{"ROME:N1101", "8344", "Cariste", "سائق رافعة"},
};
#define NOCC AD_COUNT(occupations)

static const struct { const char *code, *kind, *fr, *ar, *rules; } programmes[] = {
	{"CDI", "contract", "Contrat à durée indéterminée", "عقد غير محدد المدة", NULL},
	{"CDD", "contract", "Contrat à durée déterminée", "عقد محدد المدة", NULL},
	{"IDMAJ", "subsidised_contract", "Contrat d'insertion Idmaj", "عقد الإدماج", "{\"min_registration_months\":6}"},
	{"TAHFIZ", "subsidised_contract", "Programme Tahfiz", "برنامج تحفيز", "{\"max_employees\":10}"},
	{"AWRACH", "public_works", "Programme Awrach", "برنامج أوراش", "{\"max_months\":6}"},
	{"TAEHIL", "training", "Formation qualifiante Taehil", "برنامج تأهيل", NULL},
	{"INTELAKA", "self_employment", "Programme Intelaka", "برنامج انطلاقة", NULL},
	{"SAISONNIER_INTL", "contract", "Travail saisonnier à l'étranger", "العمل الموسمي بالخارج", "{\"returning_first\":true}"},
};
#define NPROG AD_COUNT(programmes)

static const char *const firm_lat[] = {"Atlas", "Souss", "Al Amal", "Maghreb", "Tadla", "Rif",
	"Oasis", "Sahara", "Noor", "Chaouia", "Bouregreg", "Ziz", "Anfa", "Tensift", "Moulouya", "Draa"};
static const char *const firm_ar[] = {"الأطلس", "سوس", "الأمل", "المغرب", "تادلة", "الريف",
	"الواحة", "الصحراء", "نور", "الشاوية", "أبي رقراق", "زيز", "أنفا", "تانسيفت", "ملوية", "درعة"};
static const struct { const char *fr, *ar, *nace; } sectors[] = {
	{"Logistique", "للوجستيك", "H52"}, {"Agro", "للصناعات الغذائية", "C10"},
	{"Textile", "للنسيج", "C14"}, {"Services", "للخدمات", "N82"}, {"BTP", "للبناء", "F41"},
	{"Distribution", "للتوزيع", "G47"}, {"Call Center", "لمراكز الاتصال", "N82"},
	{"Hôtellerie", "للفندقة", "I55"}, {"Câblage Auto", "لأسلاك السيارات", "C29"},
	{"Primeurs", "للفواكه والخضر", "A01"},
};
static const char *const legal_forms[] = {"SARL", "SARL AU", "SA", "SNC"};
static const char *const educations[] = {"none", "primary", "lower_sec", "bac", "bac+2",
	"licence", "master", "ofppt_technicien", "ofppt_specialise"};
static const char *const mobilities[] = {"commune", "province", "province", "region", "national",
	"international"};
static const char *const plans[] = {
	"Mettre à jour le CV et postuler à trois offres de la semaine.",
	"Orientation vers une formation qualifiante Taehil en logistique.",
	"تحيين السيرة الذاتية والمشاركة في ورشة البحث عن العمل.",
	"Préparer l'entretien d'embauche; simulation prévue au prochain rendez-vous.",
	"مواكبة مشروع مقاول ذاتي في إطار برنامج انطلاقة.",
	"Inscription à l'atelier numérique; candidature spontanée auprès de deux employeurs.",
};

const gen_province *gen_province_of(uint32_t b)
{
	return &gen_provinces[b % gen_nprovinces];
}

void gen_branch_codes(gen_ctx *g)
{
	for (uint32_t b = 0; b < g->nbranches; b++)
		snprintf(g->codes[b], sizeof(g->codes[b]), "%s%02u", gen_province_of(b)->abbr,
			 (b / gen_nprovinces + 1) % 100);
}

int gen_branch_index(const gen_ctx *g, const char *code)
{
	for (uint32_t b = 0; b < g->nbranches; b++)
		if (strcmp(g->codes[b], code) == 0)
			return (int)b;
	return -1;
}

void gen_stamp(char out[21], uint32_t day, uint32_t sec)
{
	ad_date(out, day);
	snprintf(out + 10, 11, "T%02u:%02u:%02uZ", sec / 3600 % 24, sec / 60 % 60, sec % 60);
}

void gen_uuid(const gen_ctx *g, char out[37], uint64_t stream, uint64_t a, uint64_t n,
	      uint32_t day, uint32_t sec)
{
	ad_rng r;
	uint64_t ms, x, y;

	ad_rng_seed(&r, g->seed, GS_IDS + (stream << 8), (a << 40) ^ n);
	ms = ((uint64_t)day * 86400 + sec) * 1000 + ad_below(&r, 1000);
	x = ad_rng_next(&r);
	y = ad_rng_next(&r);
	snprintf(out, 37, "%08x-%04x-7%03x-%04x-%012llx", (unsigned)(ms >> 16), (unsigned)(ms & 0xffff),
		 (unsigned)(x & 0xfff), (unsigned)(0x8000 | ((x >> 12) & 0x3fff)),
		 (unsigned long long)(y & 0xffffffffffffULL));
}

/* Unique nationally: the branches of one province share its letters and
 * take disjoint ranges of j (k-th branch of the province: k * stride + j),
 * scrambled by a bijection of [0, 10^6) (7919 is prime to 10^6). */
void gen_cin(const gen_ctx *g, char out[16], uint32_t b, uint32_t j)
{
	uint64_t stride = (uint64_t)g->seekers + 100000;
	uint64_t v = (b / gen_nprovinces) * stride + j;

	snprintf(out, 16, "%s%06llu", gen_province_of(b)->cin,
		 (unsigned long long)((v * 7919 + 104729) % 1000000));
}

void gen_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

int gen_prepare(gen_ctx *g, sqlite3_stmt **st, const char *sql)
{
	if (sqlite3_prepare_v2(g->db, sql, -1, st, NULL) == SQLITE_OK)
		return 0;
	snprintf(g->err, sizeof(g->err), "%s (is tools/agency/schema.sql applied?)", sqlite3_errmsg(g->db));
	return -1;
}

int gen_step(gen_ctx *g, sqlite3_stmt *st, enum gen_table t, bool insert)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		snprintf(g->err, sizeof(g->err), "cannot write %s: %s", gen_table_name[t], sqlite3_errmsg(g->db));
		return -1;
	}
	if (sqlite3_changes(g->db) > 0) {
		if (insert)
			g->inserted[t]++;
		else
			g->updated[t]++;
	}
	return 0;
}

int gen_exec(gen_ctx *g, const char *sql)
{
	if (sqlite3_exec(g->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	snprintf(g->err, sizeof(g->err), "%s", sqlite3_errmsg(g->db));
	return -1;
}

/* "El Idrissi" -> "elidrissi" for e-mail addresses. */
static void mail_part(char *out, size_t size, const char *s)
{
	size_t n = 0;

	for (; *s && n + 1 < size; s++)
		if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
			out[n++] = (char)(*s | 0x20);
	out[n] = '\0';
}


/* Identity (names, birth, CIN) from (idb, j) alone, so that C1 registers the
 * same person at two branches; everything else from the owner's view. */
int gen_seeker_row(gen_ctx *g, sqlite3_stmt *st, uint32_t idb, uint32_t j, uint32_t owner,
		   const char *id, uint32_t day, const char *origin, const char *phone)
{
	const gen_province *p = gen_province_of(owner);
	char cin[16], birth[11], reg[11], stamp[21], dossier[40], ph[20], mail[80], a[32], b[32],
	     addr[160], skills[160];
	ad_rng r;
	int female;
	const ad_name *first, *last;

	ad_rng_seed(&r, g->seed, GS_SEEKER, ((uint64_t)idb << 32) | j);
	female = (int)ad_below(&r, 2);
	first = female ? &AD_PICK(&r, ad_female) : &AD_PICK(&r, ad_male);
	last = &AD_PICK(&r, ad_family);
	ad_date(birth, GEN_DAY_REG0 - 8000 + ad_below(&r, 6000) - 3650);
	gen_cin(g, cin, idb, j);
	ad_date(reg, day);
	gen_stamp(stamp, day, 8 * 3600 + ad_below(&r, 9 * 3600));
	snprintf(dossier, sizeof(dossier), "%s/%.4s/%06u", g->codes[owner], reg, j);
	snprintf(ph, sizeof(ph), "+2126%08u", ad_below(&r, 100000000));
	mail_part(a, sizeof(a), first->lat);
	mail_part(b, sizeof(b), last->lat);
	snprintf(mail, sizeof(mail), "%s.%s%u@%s", a, b, ad_below(&r, 100),
		 ad_below(&r, 3) ? "gmail.com" : "yahoo.fr");
	if (p->rural || ad_below(&r, 10) < 3)
		snprintf(addr, sizeof(addr), "%s %s، %s", p->rural ? "دوار" : "حي", last->ar, p->ar);
	else
		snprintf(addr, sizeof(addr), "%u, Rue %s, %s", 1 + ad_below(&r, 240), last->lat, p->fr);
	snprintf(skills, sizeof(skills), "[\"%s\",\"%s\",\"%s\"]", occupations[ad_below(&r, NOCC)].fr,
		 ad_below(&r, 2) ? "français" : "العربية", ad_below(&r, 2) ? "permis B" : "Excel");
	gen_text(st, 1, id);
	gen_text(st, 2, dossier);
	gen_text(st, 3, cin);
	gen_text(st, 4, last->lat);
	gen_text(st, 5, first->lat);
	gen_text(st, 6, last->ar);
	gen_text(st, 7, first->ar);
	gen_text(st, 8, birth);
	gen_text(st, 9, female ? "F" : "M");
	gen_text(st, 10, phone ? phone : ph);
	gen_text(st, 11, ad_below(&r, 4) ? mail : NULL);
	gen_text(st, 12, addr);
	gen_text(st, 13, p->code);
	gen_text(st, 14, AD_PICK(&r, educations));
	gen_text(st, 15, ad_below(&r, 3) ? occupations[ad_below(&r, NOCC)].fr : NULL);
	gen_text(st, 16, skills);
	sqlite3_bind_int(st, 17, (int)ad_below(&r, 120));
	gen_text(st, 18, occupations[ad_below(&r, NOCC)].code);
	gen_text(st, 19, AD_PICK(&r, mobilities));
	gen_text(st, 20, reg);
	gen_text(st, 21, reg);
	gen_text(st, 22, "active");
	gen_text(st, 23, g->codes[owner]);
	gen_text(st, 24, origin);
	gen_text(st, 25, stamp);
	gen_text(st, 26, origin);
	return gen_step(g, st, GT_SEEKER, true);
}


int gen_interview_row(gen_ctx *g, sqlite3_stmt *st, uint32_t b, uint64_t n, const char *seeker,
		      uint32_t day, bool held)
{
	static const char *const kinds[] = {"reception", "diagnostic", "follow_up", "diagnostic"};
	char id[37], at[21];
	ad_rng r;
	uint32_t sec;

	ad_rng_seed(&r, g->seed, GS_INTERVIEW, ((uint64_t)b << 40) ^ n);
	sec = 8 * 3600 + 1800 * ad_below(&r, 18);
	gen_uuid(g, id, GS_INTERVIEW, b, n, day, sec);
	gen_stamp(at, day, sec);
	gen_text(st, 1, id);
	gen_text(st, 2, seeker);
	gen_text(st, 3, AD_PICK(&r, kinds));
	gen_text(st, 4, at);
	sqlite3_bind_int(st, 5, 30);
	gen_text(st, 6, held ? "held" : NULL);
	gen_text(st, 7, held ? AD_PICK(&r, plans) : NULL);
	gen_text(st, 8, held ? "rendez-vous de suivi dans un mois" : NULL);
	gen_text(st, 9, g->codes[b]);
	return gen_step(g, st, GT_INTERVIEW, true);
}

static int reference(gen_ctx *g)
{
	sqlite3_stmt *t = NULL, *o = NULL, *p = NULL;
	char code[16];
	int rc = -1;

	if (gen_prepare(g, &t, "INSERT INTO territory VALUES (?1,'MA',?2,?3,?4,?5,?6,'2015-09-01',NULL,NULL,1)") < 0 ||
	    gen_prepare(g, &o, "INSERT INTO occupation VALUES (?1,'ROME',?2,?3,?4,'2023-01-01',NULL,NULL,1)") < 0 ||
	    gen_prepare(g, &p, "INSERT INTO programme VALUES (?1,'MA',?2,?3,?4,?5,'2006-01-01',NULL,1)") < 0)
		goto done;
	for (int i = 0; i < 12; i++) {
		snprintf(code, sizeof(code), "MA-%02d", i + 1);
		gen_text(t, 1, code);
		gen_text(t, 2, "region");
		gen_text(t, 4, regions[i].fr);
		gen_text(t, 5, regions[i].ar);
		sqlite3_bind_int(t, 6, 0);
		if (gen_step(g, t, GT_TERRITORY, true) < 0)
			goto done;
	}
	for (uint32_t i = 0; i < gen_nprovinces; i++) {
		snprintf(code, sizeof(code), "MA-%02u", gen_provinces[i].region);
		gen_text(t, 1, gen_provinces[i].code);
		gen_text(t, 2, "province");
		gen_text(t, 3, code);
		gen_text(t, 4, gen_provinces[i].fr);
		gen_text(t, 5, gen_provinces[i].ar);
		sqlite3_bind_int(t, 6, gen_provinces[i].rural);
		if (gen_step(g, t, GT_TERRITORY, true) < 0)
			goto done;
	}
	for (uint32_t i = 0; i < NOCC; i++) {
		gen_text(o, 1, occupations[i].code);
		gen_text(o, 2, occupations[i].isco);
		gen_text(o, 3, occupations[i].fr);
		gen_text(o, 4, occupations[i].ar);
		if (gen_step(g, o, GT_OCCUPATION, true) < 0)
			goto done;
	}
	for (uint32_t i = 0; i < NPROG; i++) {
		gen_text(p, 1, programmes[i].code);
		gen_text(p, 2, programmes[i].kind);
		gen_text(p, 3, programmes[i].fr);
		gen_text(p, 4, programmes[i].ar);
		gen_text(p, 5, programmes[i].rules);
		if (gen_step(g, p, GT_PROGRAMME, true) < 0)
			goto done;
	}
	rc = 0;
done:
	sqlite3_finalize(t);
	sqlite3_finalize(o);
	sqlite3_finalize(p);
	return rc;
}

/* ---- employers and offers ---- */

uint32_t gen_employers(const gen_ctx *g)
{
	uint64_t n = (uint64_t)g->nbranches * g->seekers / 25;

	return (uint32_t)(n < 4u * g->nbranches ? 4u * g->nbranches : n);
}

static uint32_t gen_offer_positions(const gen_ctx *g, uint32_t o)
{
	ad_rng r;

	ad_rng_seed(&r, g->seed, GS_OFFER, o);
	return ad_below(&r, 10) == 0 ? 5 + ad_below(&r, 16) : 1 + ad_below(&r, 4);
}


/* The ICE: 9 digits for the firm, 4 for the establishment, 2 control digits
 * (here 97 - the first 13 digits mod 97, ISO 7064 style: valid-looking). */
int gen_employer_row(gen_ctx *g, sqlite3_stmt *st, uint32_t e, uint32_t b, uint32_t day)
{
	const gen_province *p = gen_province_of(b);
	char id[37], ice[16], rc[24], name[96], trade[64], name_ar[160], addr[96], contact[64],
	     ph[20], mail[80], a[32], stamp[21];
	static const char *const sizes[] = {"1-9", "1-9", "10-49", "10-49", "50-249", "250+", "unknown"};
	ad_rng r;
	uint32_t f, s, est;
	uint64_t first13;
	const ad_name *who;

	ad_rng_seed(&r, g->seed, GS_EMPLOYER, e);
	f = ad_below(&r, AD_COUNT(firm_lat));
	s = ad_below(&r, AD_COUNT(sectors));
	est = ad_below(&r, 4);
	first13 = ((uint64_t)(1000000 + e * 37 % 9000000) * 10000 + est);
	snprintf(ice, sizeof(ice), "%013llu%02u", (unsigned long long)first13, (unsigned)(97 - first13 % 97));
	snprintf(rc, sizeof(rc), "%u/%s", 10000 + ad_below(&r, 90000), p->abbr);
	snprintf(trade, sizeof(trade), "%s %s", firm_lat[f], sectors[s].fr);
	snprintf(name, sizeof(name), "%s %u %s", trade, e, AD_PICK(&r, legal_forms));
	snprintf(name_ar, sizeof(name_ar), "شركة %s %s", firm_ar[f], sectors[s].ar);
	snprintf(addr, sizeof(addr), "Zone industrielle, lot %u, %s", 1 + ad_below(&r, 400), p->fr);
	who = &AD_PICK(&r, ad_family);
	snprintf(contact, sizeof(contact), "%s %s", AD_PICK(&r, ad_female).lat, who->lat);
	snprintf(ph, sizeof(ph), "+2125%08u", ad_below(&r, 100000000));
	mail_part(a, sizeof(a), firm_lat[f]);
	snprintf(mail, sizeof(mail), "rh@%s-%u.ma", a, e);
	gen_uuid(g, id, GS_EMPLOYER, 0, e, GEN_DAY_REG0, 36000); /* offers find it by e */
	gen_stamp(stamp, day, 36000);
	gen_text(st, 1, id);
	gen_text(st, 2, ad_below(&r, 10) ? ice : NULL); /* many small employers have no ICE */
	gen_text(st, 3, rc);
	gen_text(st, 4, name);
	gen_text(st, 5, trade);
	gen_text(st, 6, name_ar);
	gen_text(st, 7, sectors[s].nace);
	gen_text(st, 8, AD_PICK(&r, sizes));
	gen_text(st, 9, p->code);
	gen_text(st, 10, addr);
	gen_text(st, 11, contact);
	gen_text(st, 12, ph);
	gen_text(st, 13, mail);
	gen_text(st, 14, g->codes[b]);
	gen_text(st, 15, stamp);
	return gen_step(g, st, GT_EMPLOYER, true);
}


/* Offer o of employer e (owner b); c4 > 0 makes the over-filled national
 * offer number c4 - 1 of scenario C4 instead. */
int gen_offer_row(gen_ctx *g, sqlite3_stmt *st, uint32_t o, uint32_t e, uint32_t b, uint32_t day,
		  uint32_t c4)
{
	static const char *const diffusion[] = {"local", "local", "local", "local", "local", "local",
		"local", "local", "regional", "national"};
	char id[37], eid[37], no[40], title_ar[128], desc[512], opened[11], closes[11], stamp[21];
	ad_rng r;
	uint32_t occ, prog, sal;

	ad_rng_seed(&r, g->seed, GS_OFFER + 100, o);
	occ = c4 ? 11 : ad_below(&r, NOCC);
	prog = c4 ? 7 : ad_below(&r, 6);
	sal = 2800 + 100 * ad_below(&r, 60);
	/* the id's time is fixed so that applications find the offer by o */
	gen_uuid(g, id, GS_OFFER, c4 ? 0xC4 : 0, c4 ? c4 - 1 : o, c4 ? GEN_DAY_OFFLINE - 2 : GEN_DAY_REG0, 39600);
	gen_uuid(g, eid, GS_EMPLOYER, 0, e, GEN_DAY_REG0, 36000);
	snprintf(no, sizeof(no), "%s-OFF-%07u", g->codes[b], c4 ? 9000000 + c4 : o);
	snprintf(title_ar, sizeof(title_ar), "مطلوب: %s", occupations[occ].ar);
	snprintf(desc, sizeof(desc), "%s. Poste basé à %s, %s. Expérience souhaitée: %u mois. "
		 "المهام: %s مع احترام معايير السلامة. الأجر حسب الخبرة.",
		 occupations[occ].fr, gen_province_of(b)->fr, programmes[prog].fr, ad_below(&r, 36),
		 occupations[occ].ar);
	ad_date(opened, day);
	ad_date(closes, day + 30 + ad_below(&r, 60));
	gen_stamp(stamp, day, 39600);
	gen_text(st, 1, id);
	gen_text(st, 2, no);
	gen_text(st, 3, eid);
	gen_text(st, 4, occupations[occ].code);
	gen_text(st, 5, c4 ? "Cueillette de fruits rouges (Huelva, Espagne)" : occupations[occ].fr);
	gen_text(st, 6, title_ar);
	gen_text(st, 7, desc);
	gen_text(st, 8, programmes[prog].code);
	sqlite3_bind_int(st, 9, c4 ? 4 : (int)(6 + 6 * ad_below(&r, 4)));
	sqlite3_bind_int(st, 10, c4 ? 2 : (int)gen_offer_positions(g, o));
	gen_text(st, 11, gen_province_of(b)->code);
	sqlite3_bind_int(st, 12, (int)sal);
	sqlite3_bind_int(st, 13, (int)(sal + 500));
	gen_text(st, 14, AD_PICK(&r, educations));
	gen_text(st, 15, c4 ? "international" : AD_PICK(&r, diffusion));
	gen_text(st, 16, c4 || ad_below(&r, 10) < 8 ? "open" : "filled");
	gen_text(st, 17, opened);
	gen_text(st, 18, closes);
	gen_text(st, 19, g->codes[b]);
	gen_text(st, 20, stamp);
	return gen_step(g, st, GT_OFFER, true);
}

/* ---- job seekers and their history ---- */

/* Base job seeker j of branch b registered on this day (j in order). */
static uint32_t gen_seeker_day(const gen_ctx *g, uint32_t j)
{
	return GEN_DAY_REG0 + (uint32_t)((uint64_t)j * (GEN_DAY_OFFLINE - GEN_DAY_REG0 - 1) / g->seekers);
}

void gen_seeker_id(const gen_ctx *g, char out[37], uint32_t b, uint32_t j)
{
	gen_uuid(g, out, GS_SEEKER, b, j, gen_seeker_day(g, j), 30000);
}


typedef struct base_stmts {
	sqlite3_stmt *seeker, *interview, *application, *placement, *workshop, *attend;
	uint8_t *fill;           /* placements per base offer */
} base_stmts;

int gen_application_row(gen_ctx *g, sqlite3_stmt *st, const char *id, const char *seeker,
			const char *offer, uint32_t b, const char *status, const char *at)
{
	gen_text(st, 1, id);
	gen_text(st, 2, seeker);
	gen_text(st, 3, offer);
	gen_text(st, 4, "counsellor");
	gen_text(st, 5, status);
	gen_text(st, 6, at);
	gen_text(st, 7, g->codes[b]);
	return gen_step(g, st, GT_APPLICATION, true);
}

int gen_placement_row(gen_ctx *g, sqlite3_stmt *st, const char *id, const char *seeker,
		      const char *offer, const char *employer, const char *application,
		      const char *programme, uint32_t b, const char *at)
{
	char ref[40];

	snprintf(ref, sizeof(ref), "%s-%.8s", programme, id);
	gen_text(st, 1, id);
	gen_text(st, 2, seeker);
	gen_text(st, 3, offer);
	gen_text(st, 4, employer);
	gen_text(st, 5, application);
	gen_text(st, 6, programme);
	gen_text(st, 7, ref);
	gen_text(st, 8, at);
	sqlite3_bind_int(st, 9, 3200);
	gen_text(st, 10, "signed");
	gen_text(st, 11, g->codes[b]);
	gen_text(st, 12, at);
	return gen_step(g, st, GT_PLACEMENT, true);
}

/* One base job seeker with 1-2 interviews, an application to one of the
 * branch's offers and, for about one in ten, a placement if the offer has a
 * position left. */
static int base_seeker(gen_ctx *g, base_stmts *s, uint32_t b, uint32_t j, uint32_t nemp)
{
	char id[37], app[37], pl[37], offer[37], emp[37], at[21];
	uint32_t day = gen_seeker_day(g, j), nb = g->nbranches, mine, e, o;
	ad_rng r;

	gen_seeker_id(g, id, b, j);
	if (gen_seeker_row(g, s->seeker, b, j, b, id, day, g->codes[b], NULL) < 0)
		return -1;
	ad_rng_seed(&r, g->seed, GS_APPLICATION, ((uint64_t)b << 32) | j);
	for (uint32_t k = 0, n = 1 + ad_below(&r, 2); k < n; k++)
		if (gen_interview_row(g, s->interview, b, (uint64_t)j * 2 + k, id, day + k * 7, true) < 0)
			return -1;
	mine = (nemp - b + nb - 1) / nb;
	e = b + nb * ad_below(&r, mine);
	o = 2 * e + ad_below(&r, 2);
	gen_uuid(g, offer, GS_OFFER, 0, o, GEN_DAY_REG0, 39600);
	gen_uuid(g, app, GS_APPLICATION, b, j, day + 14, 40000);
	gen_stamp(at, day + 14, 40000);
	bool place = ad_below(&r, 10) == 0 && s->fill[o] < gen_offer_positions(g, o);
	if (gen_application_row(g, s->application, app, id, offer, b, place ? "accepted" :
				ad_below(&r, 2) ? "sent_to_employer" : "rejected", at) < 0)
		return -1;
	if (!place)
		return 0;
	s->fill[o]++;
	gen_uuid(g, pl, GS_PLACEMENT, b, j, day + 30, 40000);
	gen_uuid(g, emp, GS_EMPLOYER, 0, e, GEN_DAY_REG0, 36000);
	gen_stamp(at, day + 30, 40000);
	return gen_placement_row(g, s->placement, pl, id, offer, emp, app, "IDMAJ", b, at);
}


int gen_workshop(gen_ctx *g, sqlite3_stmt *ws, sqlite3_stmt *at, uint32_t b, uint64_t w,
		 uint32_t day, const char *const *seekers, uint32_t nseekers, bool held)
{
	static const char *const themes[] = {"cv", "cover_letter", "job_interview", "active_search",
		"self_employment", "digital"};
	char id[37], aid[37], date[11], stamp[21];

	gen_uuid(g, id, GS_WORKSHOP, b, w, day, 32400);
	ad_date(date, day);
	gen_stamp(stamp, day, 32400);
	gen_text(ws, 1, id);
	gen_text(ws, 2, themes[w % AD_COUNT(themes)]);
	gen_text(ws, 3, date);
	gen_text(ws, 4, gen_province_of(b)->code);
	gen_text(ws, 5, held ? "held" : "planned");
	gen_text(ws, 6, g->codes[b]);
	gen_text(ws, 7, stamp);
	if (gen_step(g, ws, GT_WORKSHOP, true) < 0)
		return -1;
	for (uint32_t a = 0; a < 12 && a < nseekers; a++) {
		gen_uuid(g, aid, GS_ATTEND, b, w * 12 + a, day, 32400);
		gen_text(at, 1, aid);
		gen_text(at, 2, id);
		gen_text(at, 3, seekers[a]);
		gen_text(at, 4, held ? (a % 6 ? "present" : "absent") : "registered");
		gen_text(at, 5, g->codes[b]);
		gen_text(at, 6, stamp);
		if (gen_step(g, at, GT_ATTENDANCE, true) < 0)
			return -1;
	}
	return 0;
}

static int base_workshops(gen_ctx *g, base_stmts *s, uint32_t b)
{
	uint32_t nw = g->seekers / 250 ? g->seekers / 250 : 1;
	char ids[12][37];
	const char *p[12];

	for (uint32_t w = 0; w < nw; w++) {
		uint32_t day = GEN_DAY_OFFLINE - 7 * (nw - w);
		for (uint32_t a = 0; a < 12; a++) {
			gen_seeker_id(g, ids[a], b, (w * 12 + a) % g->seekers);
			p[a] = ids[a];
		}
		if (gen_workshop(g, s->workshop, s->attend, b, w, day, p, g->seekers < 12 ? g->seekers : 12,
				 true) < 0)
			return -1;
	}
	return 0;
}

#define BASE_BATCH 20000u

static int base_rows(gen_ctx *g, base_stmts *s)
{
	uint32_t nemp = gen_employers(g);
	uint64_t total = (uint64_t)g->seekers * g->nbranches, done = 0;
	sqlite3_stmt *emp = NULL, *off = NULL;
	int rc = -1;

	if (gen_prepare(g, &emp, GEN_EMPLOYER_SQL) < 0 || gen_prepare(g, &off, GEN_OFFER_SQL) < 0)
		goto done;
	for (uint32_t e = 0; e < nemp; e++)
		if (gen_employer_row(g, emp, e, e % g->nbranches, GEN_DAY_REG0 + e % 4000) < 0 ||
		    gen_offer_row(g, off, 2 * e, e, e % g->nbranches, GEN_DAY_OFFLINE - 1 - e % 90, 0) < 0 ||
		    gen_offer_row(g, off, 2 * e + 1, e, e % g->nbranches, GEN_DAY_OFFLINE - 1 - e % 60, 0) < 0)
			goto done;
	for (uint32_t k = 1; k <= g->sc.c4; k++)
		if (gen_offer_row(g, off, 0, 0, 0, GEN_DAY_OFFLINE - 2, k) < 0)
			goto done;
	for (uint32_t b = 0; b < g->nbranches; b++) {
		for (uint32_t j = 0; j < g->seekers; j++, done++) {
			/* one transaction for the whole run: a failure leaves the store as it was */
			if (done % BASE_BATCH == 0 && done > 0 && g->progress)
				g->progress("job seekers", done, total);
			if (base_seeker(g, s, b, j, nemp) < 0)
				goto done;
		}
		if (base_workshops(g, s, b) < 0)
			goto done;
	}
	if (g->progress)
		g->progress("job seekers", done, total);
	rc = 0;
done:
	sqlite3_finalize(emp);
	sqlite3_finalize(off);
	return rc;
}

int gen_base(gen_ctx *g)
{
	base_stmts s = { 0 };
	int rc = -1;

	s.fill = calloc((size_t)gen_employers(g) * 2, 1);
	if (s.fill == NULL) {
		snprintf(g->err, sizeof(g->err), "out of memory");
		return -1;
	}
	if (gen_prepare(g, &s.seeker, GEN_SEEKER_SQL) < 0 || gen_prepare(g, &s.interview, GEN_INTERVIEW_SQL) < 0 ||
	    gen_prepare(g, &s.application, GEN_APPLICATION_SQL) < 0 ||
	    gen_prepare(g, &s.placement, GEN_PLACEMENT_SQL) < 0 ||
	    gen_prepare(g, &s.workshop, GEN_WORKSHOP_SQL) < 0 || gen_prepare(g, &s.attend, GEN_ATTEND_SQL) < 0 ||
	    gen_exec(g, "BEGIN") < 0)
		goto done;
	if (reference(g) < 0 || base_rows(g, &s) < 0 || gen_exec(g, "COMMIT") < 0) {
		sqlite3_exec(g->db, "ROLLBACK", NULL, NULL, NULL);
		goto done;
	}
	rc = 0;
done:
	sqlite3_finalize(s.seeker);
	sqlite3_finalize(s.interview);
	sqlite3_finalize(s.application);
	sqlite3_finalize(s.placement);
	sqlite3_finalize(s.workshop);
	sqlite3_finalize(s.attend);
	free(s.fill);
	return rc;
}

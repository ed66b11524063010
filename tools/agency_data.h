/*
 * agency_data.h - what the agency data generator (syncctl generate,
 * tools/cmd_generate.c) and the benchmarks' agency day (bench/agency_day.h)
 * share: deterministic random numbers (splitmix64 seeds xoshiro256**),
 * bilingual first and family names, and day counts as dates.  Header-only
 * (static inline / static const) so that each bench/ program, which is one
 * .c file, can include it; nothing here prints, exits or allocates.
 */
#ifndef AD_AGENCY_DATA_H
#define AD_AGENCY_DATA_H

#include <stdint.h>

#if defined(__GNUC__)
#define AD_UNUSED __attribute__((unused))
#else
#define AD_UNUSED
#endif

/* ---- deterministic random numbers: splitmix64 seeds xoshiro256** ---- */

typedef struct ad_rng {
	uint64_t s[4];
} ad_rng;

static inline uint64_t ad_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Seed from (seed, stream, n): independent streams for row n's identity,
 * row n's other values, the plan, ... */
static inline void ad_rng_seed(ad_rng *r, uint64_t seed, uint64_t stream,
    uint64_t n)
{
	uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL) ^
	    (n * 0x8cb92ba72f3d8dd7ULL);
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = ad_splitmix64(&x);
}

static inline uint64_t ad_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t ad_rng_next(ad_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = ad_rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = ad_rotl(s[3], 45);
	return result;
}

/* Uniform in [0, n), n > 0 (multiply-shift; the bias is below 2^-32). */
static inline uint32_t ad_below(ad_rng *r, uint32_t n)
{
	return (uint32_t)(((ad_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* ---- value lists ---- */

typedef struct ad_name {
	const char *lat;
	const char *ar;
} ad_name;

AD_UNUSED static const ad_name ad_male[] = {
	{"Mohamed", "محمد"}, {"Ahmed", "أحمد"}, {"Youssef", "يوسف"},
	{"Amine", "أمين"}, {"Hamza", "حمزة"}, {"Omar", "عمر"},
	{"Karim", "كريم"}, {"Said", "سعيد"}, {"Rachid", "رشيد"},
	{"Hassan", "حسن"}, {"Mehdi", "مهدي"}, {"Ayoub", "أيوب"},
	{"Anas", "أنس"}, {"Khalid", "خالد"}, {"Abdellah", "عبد الله"},
	{"Mustapha", "مصطفى"}, {"Ismail", "إسماعيل"}, {"Yassine", "ياسين"},
	{"Nabil", "نبيل"}, {"Adil", "عادل"}, {"Bilal", "بلال"},
	{"Othmane", "عثمان"}, {"Zakaria", "زكرياء"}, {"Hicham", "هشام"},
	{"Soufiane", "سفيان"}, {"Tarik", "طارق"}, {"Driss", "إدريس"},
	{"Brahim", "إبراهيم"}, {"Jamal", "جمال"}, {"Redouane", "رضوان"},
	{"Abderrahim", "عبد الرحيم"}, {"Noureddine", "نور الدين"},
};

AD_UNUSED static const ad_name ad_female[] = {
	{"Fatima", "فاطمة"}, {"Khadija", "خديجة"}, {"Aicha", "عائشة"},
	{"Meryem", "مريم"}, {"Salma", "سلمى"}, {"Imane", "إيمان"},
	{"Nadia", "نادية"}, {"Hanane", "حنان"}, {"Sara", "سارة"},
	{"Zineb", "زينب"}, {"Houda", "هدى"}, {"Asmae", "أسماء"},
	{"Latifa", "لطيفة"}, {"Samira", "سميرة"}, {"Ghizlane", "غزلان"},
	{"Hajar", "هاجر"}, {"Loubna", "لبنى"}, {"Rania", "رانية"},
	{"Soukaina", "سكينة"}, {"Wiam", "وئام"}, {"Kawtar", "كوثر"},
	{"Nawal", "نوال"}, {"Btissam", "ابتسام"}, {"Naima", "نعيمة"},
	{"Malika", "مليكة"}, {"Siham", "سهام"}, {"Oumaima", "أميمة"},
	{"Chaimae", "شيماء"}, {"Yasmine", "ياسمين"}, {"Amal", "أمل"},
	{"Hafsa", "حفصة"}, {"Rajae", "رجاء"},
};

AD_UNUSED static const ad_name ad_family[] = {
	{"Benali", "بنعلي"}, {"El Idrissi", "الإدريسي"}, {"Alaoui", "العلوي"},
	{"Bennani", "بناني"}, {"Tazi", "التازي"}, {"Berrada", "برادة"},
	{"Chraibi", "الشرايبي"}, {"El Amrani", "العمراني"},
	{"Ouazzani", "الوزاني"}, {"El Fassi", "الفاسي"},
	{"Benjelloun", "بنجلون"}, {"Lahlou", "لحلو"}, {"Kettani", "الكتاني"},
	{"Haddad", "الحداد"}, {"Naciri", "الناصري"}, {"Bouzidi", "البوزيدي"},
	{"El Khatib", "الخطيب"}, {"Tahiri", "الطاهري"}, {"Saidi", "السعيدي"},
	{"Ziani", "الزياني"}, {"Belhaj", "بلحاج"}, {"Cherkaoui", "الشرقاوي"},
	{"Benkirane", "بنكيران"}, {"Mansouri", "المنصوري"},
	{"Filali", "الفيلالي"}, {"Bakkali", "البقالي"}, {"Ouahbi", "وهبي"},
	{"Zerouali", "الزروالي"}, {"Skalli", "السقلي"}, {"Bensouda", "بنسودة"},
	{"El Ouafi", "الوافي"}, {"Amzil", "أمزيل"},
	{"Ait Taleb", "آيت الطالب"}, {"Boutaleb", "بوطالب"},
	{"Jebbari", "الجباري"}, {"Rahmouni", "الرحموني"},
	{"Hilali", "الهلالي"}, {"Moussaoui", "الموساوي"},
	{"Azzouzi", "العزوزي"}, {"Lamrini", "اللمريني"},
};

#define AD_COUNT(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))
#define AD_PICK(r, a) ((a)[ad_below((r), AD_COUNT(a))])

/* "YYYY-MM-DD" of a day count (Hinnant's civil_from_days). */
static inline void ad_date(char out[11], uint32_t days)
{
	int64_t z = (int64_t)days + 719468;
	int64_t era = z / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t d = doy - (153 * mp + 2) / 5 + 1;
	int64_t m = mp < 10 ? mp + 3 : mp - 9;
	int64_t y = yoe + era * 400 + (m <= 2);

	/* digits by hand: the days used here give years 1970-9999 */
	out[0] = (char)('0' + y / 1000 % 10);
	out[1] = (char)('0' + y / 100 % 10);
	out[2] = (char)('0' + y / 10 % 10);
	out[3] = (char)('0' + y % 10);
	out[4] = '-';
	out[5] = (char)('0' + m / 10);
	out[6] = (char)('0' + m % 10);
	out[7] = '-';
	out[8] = (char)('0' + d / 10);
	out[9] = (char)('0' + d % 10);
	out[10] = '\0';
}

#endif

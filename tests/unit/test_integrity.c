/*
 * test_integrity.c - the pieces of the integrity checks that stand alone
 * (docs/integrity.md): the normalisation of unique keys (Latin, Arabic-Indic
 * and Extended Arabic-Indic digits, spaces, case, 'exact'), and redirect
 * chains (A merged into B, then B into C) through tz_duplicates_merge and
 * tz_store_redirect_target.
 */
#define _XOPEN_SOURCE 700   /* nftw */
#include "tests/unit/tz_test.h"

#include <ftw.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "conflict/tz_conflict.h"

static int norm_is(const char *in, bool exact, const char *want)
{
	tz_value v = { TZ_VTEXT, 0, 0, (const uint8_t *)in, strlen(in) };
	tz_buf b = TZ_BUF_INIT;
	int ok;

	tz_unique_normalize(&v, exact, &b);
	ok = tz_buf_error(&b) == TZ_OK && b.len == strlen(want) && (b.len == 0 || memcmp(b.data, want, b.len) == 0);
	if (!ok)
		printf("# got '%.*s' for '%s'\n", (int)b.len, b.data ? (const char *)b.data : "", in);
	tz_buf_release(&b);
	return ok;
}

static void normalisation(void)
{
	tz_value i = { TZ_VINT, 1234, 0, NULL, 0 };
	tz_buf b = TZ_BUF_INIT;

	CHECK(norm_is("BE123456", false, "BE123456"), "Latin, already normal");
	CHECK(norm_is("be123456", false, "BE123456"), "lower case is upper-cased");
	CHECK(norm_is("  be 123\t456 \n", false, "BE123456"), "trimmed, inner spaces and tabs removed");
	CHECK(norm_is("BE\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6", false, "BE123456"),
	      "Arabic-Indic digits U+0661-0666 to ASCII");
	CHECK(norm_is("\xd9\xa0\xd9\xa9", false, "09"), "U+0660 and U+0669, the ends of the range");
	CHECK(norm_is("be \xdb\xb1\xdb\xb2\xdb\xb3 \xdb\xb0\xdb\xb9", false, "BE12309"),
	      "Extended Arabic-Indic digits U+06F0-06F9 to ASCII");
	CHECK(norm_is("\xd9\xaa\xdb\xba", false, "\xd9\xaa\xdb\xba"), "U+066A and U+06FA (past the digits) stay");
	CHECK(norm_is("\xd8\xa3\xd8\xad\xd9\x85\xd8\xaf 7", false, "\xd8\xa3\xd8\xad\xd9\x85\xd8\xaf" "7"),
	      "Arabic letters stay as they are; the space goes");
	CHECK(norm_is("\xd9", false, "\xd9"), "a truncated UTF-8 sequence at the end is kept, not read past");
	CHECK(norm_is("  be 12 ", true, "  be 12 "), "'exact' compares as stored");
	CHECK(norm_is("", false, ""), "empty stays empty");
	tz_unique_normalize(&i, false, &b);
	CHECK(b.len == 4 && memcmp(b.data, "1234", 4) == 0, "an integer as its decimal text");
	tz_buf_release(&b);
}

static void sql(tz_store *s, const char *q)
{
	if (sqlite3_exec(tz_store_db(s), q, NULL, NULL, NULL) != SQLITE_OK) {
		printf("# %s: %s\n", q, sqlite3_errmsg(tz_store_db(s)));
		abort();
	}
}

static char *one(tz_store *s, const char *q)
{
	sqlite3_stmt *st = NULL;
	char *r = NULL;

	if (sqlite3_prepare_v2(tz_store_db(s), q, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_text(st, 0))
		r = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return r;
}

static int target_is(tz_store *s, const char *key, const char *want)
{
	char *t = NULL;
	int rc = tz_store_redirect_target(s, "person", key, &t), ok;

	ok = rc == TZ_OK && ((want == NULL && t == NULL) || (want && t && strcmp(t, want) == 0));
	tz_free(t);
	return ok;
}

static void chains(const char *dir)
{
	static const char schema[] =
		"CREATE TABLE person(id TEXT PRIMARY KEY, doc TEXT, phone TEXT);\n"
		"CREATE TABLE visit(id TEXT PRIMARY KEY, person_id TEXT REFERENCES person(id));\n"
		"INSERT INTO tz_track VALUES ('person', 'shared', NULL), ('visit', 'shared', NULL);\n"
		"INSERT INTO tz_unique VALUES ('doc', 'person', 'doc', NULL);\n";
	tz_store *s = NULL;
	tz_commit_result cr;
	tz_dup_merge_result res;
	tz_resolve_value set = { "phone", "0600" };
	tz_dup_merge_opts ab = { NULL, "B", "A", &set, 1, NULL }, bc = { "person", "C", "B", NULL, 0, NULL };
	char *v;

	if (tz_store_init(dir, "HQ") != TZ_OK || tz_store_open(&s, dir) != TZ_OK ||
	    tz_store_schema_apply(s, schema, "schema", &cr) != TZ_OK) {
		CHECK(0, "a store for the chains: %s", tz_error_last());
		tz_store_close(s);
		return;
	}
	sql(s, "INSERT INTO person VALUES ('A', 'X1', '0611'), ('B', 'x 1', NULL), ('C', 'X1', NULL);"
	       "INSERT INTO visit VALUES ('V1', 'A'), ('V2', 'B'), ('V3', 'C')");
	CHECK(tz_store_commit(s, NULL, &cr) == TZ_OK, "the rows are committed");
	CHECK(tz_duplicates_merge(s, &ab, &res) == TZ_OK, "A merged into B: %s", tz_error_last());
	CHECK(strcmp(res.table, "person") == 0 && res.repointed == 1, "the only table holding both; V1 re-pointed");
	CHECK(target_is(s, "A", "B") && target_is(s, "B", NULL), "A leads to B; B is nobody's redirect");
	v = one(s, "SELECT phone || ',' || (SELECT person_id FROM visit WHERE id = 'V1') FROM person WHERE id = 'B'");
	CHECK(v && strcmp(v, "0600,B") == 0, "B takes the chosen phone; V1 points to B");
	free(v);
	CHECK(tz_duplicates_merge(s, &bc, &res) == TZ_OK, "B merged into C (--table person)");
	CHECK(res.repointed == 2, "V1 and V2 re-pointed to C");
	CHECK(target_is(s, "A", "C"), "the chain A -> B -> C resolves to C");
	CHECK(target_is(s, "B", "C") && target_is(s, "C", NULL), "B leads to C; C stands");
	v = one(s, "SELECT group_concat(person_id) FROM (SELECT person_id FROM visit ORDER BY id)");
	CHECK(v && strcmp(v, "C,C,C") == 0, "every visit points to C");
	free(v);
	v = one(s, "SELECT count(*) FROM person");
	CHECK(v && strcmp(v, "1") == 0, "one person left");
	free(v);
	CHECK(tz_duplicates_merge(s, &bc, &res) == TZ_ENOTFOUND, "B cannot be merged again (it is gone)");
	sql(s, "INSERT INTO tz_redirect VALUES ('person', 'C', 'A')");
	CHECK(tz_store_redirect_target(s, "person", "A", &v) == TZ_ECORRUPT, "a loop is refused: %s", tz_error_last());
	tz_store_close(s);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

int main(void)
{
	char tmp[] = "/tmp/tz-integrity.XXXXXX", dir[64];

	normalisation();
	if (mkdtemp(tmp) == NULL) {
		CHECK(0, "mkdtemp");
		return tz_test_done();
	}
	snprintf(dir, sizeof(dir), "%s/hq", tmp);
	chains(dir);
	if (nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		printf("# cannot remove %s\n", tmp);
	return tz_test_done();
}

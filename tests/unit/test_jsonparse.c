/*
 * Unit tests for lib/jsonparse: strict JSON, and what json-c would let
 * through or cut short.
 */
#include "check_run.h"
#include <string.h>

#include "jsonparse.h"

static struct json_object	*o;
static struct jsonparse_err	 err;

/* Parse the n bytes of s (a literal: NULs included). */
#define PARSE(s)	jsonparse_bytes((s), sizeof(s) - 1, &o, &err)

static void
teardown(void)
{
	json_object_put(o);
	o = NULL;
}

START_TEST(strict_json)
{
	ck_assert_int_eq(PARSE("{\"a\":\"b\"}"), 0);
	ck_assert_str_eq(jsonparse_string(o, "a"), "b");
	ck_assert_ptr_null(jsonparse_string(o, "x"));
	json_object_put(o);
	ck_assert_int_eq(PARSE("{\"a\":"), -1);
	ck_assert_uint_eq(err.at, 5);
	ck_assert_str_eq(err.why, "unexpected end of input");
	ck_assert_int_eq(PARSE("{\"a\":1,}"), -1);
	ck_assert_int_eq(PARSE("/* c */ {}"), -1);
	ck_assert_int_eq(PARSE("[1] [2]"), -1);
	ck_assert_int_eq(PARSE("{\"a\":1} x"), -1);
	ck_assert_int_eq(PARSE("{\"a\":\"\xff\"}"), -1);
	/* Escaped, all of these are fine. */
	ck_assert_int_eq(PARSE("{\"a\":\"\\n\\t\\u0001\\\\u0000\\\"\"}"), 0);
	ck_assert_str_eq(jsonparse_string(o, "a"), "\n\t\x01\\u0000\"");
}
END_TEST

START_TEST(nul_is_refused)
{
	/* A raw NUL after the value, which json-c took for the end. */
	ck_assert_int_eq(PARSE("{\"a\":1}\0"), -1);
	ck_assert_uint_eq(err.at, 7);
	ck_assert_str_eq(err.why, "a NUL byte");
	ck_assert_int_eq(PARSE("{\"a\":\"b\0c\"}"), -1);
	ck_assert_uint_eq(err.at, 7);
	/* \u0000 in a value: the field is named. */
	ck_assert_int_eq(PARSE("{\"ok\":1,\"title\":\"ok\\u0000evil\"}"), -1);
	ck_assert_str_eq(err.why, "a string holds \\u0000");
	ck_assert_uint_eq(err.at, 19);
	ck_assert_uint_eq(err.fieldlen, 5);
	ck_assert_int_eq(memcmp(err.field, "title", 5), 0);
	/* ... in a name, which json-c would cut to "a". */
	ck_assert_int_eq(PARSE("{\"a\\u0000b\":1}"), -1);
	ck_assert_str_eq(err.why, "a name holds \\u0000");
	ck_assert_ptr_null(err.field);
	/* ... in an array, and upper-case hex is the same NUL. */
	ck_assert_int_eq(PARSE("{\"tags\":[\"x\",\"\\u0000\"]}"), -1);
	ck_assert_int_eq(memcmp(err.field, "tags", 4), 0);
	ck_assert_int_eq(PARSE("[\"\\u0000\"]"), -1);
	ck_assert_ptr_null(err.field);
}
END_TEST

START_TEST(raw_control_characters_are_refused)
{
	ck_assert_int_eq(PARSE("{\"name\":\"a\x01z\"}"), -1);
	ck_assert_uint_eq(err.at, 10);
	ck_assert_int_eq(memcmp(err.field, "name", 4), 0);
	ck_assert_int_eq(PARSE("{\"a\":\"line\nbreak\"}"), -1);
	ck_assert_int_eq(PARSE("{\"a\":\"tab\there\"}"), -1);
	/* Whitespace between tokens is whitespace. */
	ck_assert_int_eq(PARSE("{\n\t\"a\" :\r\n 1}"), 0);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("jsonparse");
	TCase	*tc = tcase_create("jsonparse");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, strict_json);
	tcase_add_test(tc, nul_is_refused);
	tcase_add_test(tc, raw_control_characters_are_refused);
	suite_add_tcase(s, tc);
	return check_run(s);
}

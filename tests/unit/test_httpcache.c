/* Unit tests for lib/httpcache: ETags and the conditional GET decision. */
#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "httpcache.h"

static struct arena	a;
static struct req	rq;
static struct resp	rs;
static struct hc_entry	e;

static void
setup(void)
{
	arena_init(&a, 4096, 2);
	memset(&e, 0, sizeof(e));
	e.status = 200;
	e.body = "{\"code\":0,\"data\":[],\"message\":\"ok\"}";
	e.body_len = strlen(e.body);
	e.last_modified = 1700000000;	/* Tue, 14 Nov 2023 22:13:20 GMT */
	httpcache_set_etag(&e);
}

static void
teardown(void)
{
	arena_free(&a);
}

/* Answer e to a GET carrying the header (NAME=value) h, or none. */
static int
answer(const char *h)
{
	char	*env[2] = { NULL, NULL };

	if (h != NULL)
		env[0] = arena_strdup(&a, h);
	req_init(&rq, &a, env);
	resp_init(&rs, &a);
	httpcache_answer(&rq, &rs, &e, "public, no-cache");
	return rs.status;
}

START_TEST(etag_is_a_hash_of_the_body)
{
	char	first[40];

	ck_assert_uint_eq(strlen(e.etag), 34);
	ck_assert_int_eq(e.etag[0], '"');
	strcpy(first, e.etag);
	e.body = "{\"code\":0,\"data\":[1],\"message\":\"ok\"}";
	e.body_len = strlen(e.body);
	httpcache_set_etag(&e);
	ck_assert_str_ne(first, e.etag);
}
END_TEST

START_TEST(plain_get_is_200_with_validators)
{
	const char	*h;

	ck_assert_int_eq(answer(NULL), 200);
	h = buf_cstr(&rs.headers);
	ck_assert_ptr_nonnull(strstr(h, "ETag: \""));
	ck_assert_ptr_nonnull(strstr(h,
	    "Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n"));
	ck_assert_ptr_nonnull(strstr(h, "Cache-Control: public, no-cache\r\n"));
	ck_assert_uint_eq(rs.body.len, e.body_len);
}
END_TEST

START_TEST(if_none_match_forms)
{
	char	weak[64], list[128];

	ck_assert_int_eq(answer(arena_printf(&a, "HTTP_IF_NONE_MATCH=%s",
	    e.etag)), 304);
	ck_assert_uint_eq(rs.body.len, 0);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&rs.headers), e.etag));
	snprintf(weak, sizeof(weak), "HTTP_IF_NONE_MATCH=W/%s", e.etag);
	ck_assert_int_eq(answer(weak), 304);
	snprintf(list, sizeof(list), "HTTP_IF_NONE_MATCH=\"x\", W/\"y\" ,%s",
	    e.etag);
	ck_assert_int_eq(answer(list), 304);
	ck_assert_int_eq(answer("HTTP_IF_NONE_MATCH=*"), 304);
	ck_assert_int_eq(answer("HTTP_IF_NONE_MATCH=\"other\""), 200);
	ck_assert_int_eq(answer("HTTP_IF_NONE_MATCH="), 200);
}
END_TEST

START_TEST(if_modified_since)
{
	ck_assert_int_eq(answer("HTTP_IF_MODIFIED_SINCE="
	    "Tue, 14 Nov 2023 22:13:20 GMT"), 304);
	ck_assert_int_eq(answer("HTTP_IF_MODIFIED_SINCE="
	    "Wed, 15 Nov 2023 00:00:00 GMT"), 304);
	ck_assert_int_eq(answer("HTTP_IF_MODIFIED_SINCE="
	    "Tue, 14 Nov 2023 22:13:19 GMT"), 200);
	ck_assert_int_eq(answer("HTTP_IF_MODIFIED_SINCE=yesterday"), 200);
}
END_TEST

START_TEST(negative_entry_is_served_as_is)
{
	e.status = 404;
	e.body = "{\"code\":40400,\"data\":null,\"message\":\"item 9 not found\"}";
	e.body_len = strlen(e.body);
	ck_assert_int_eq(answer(arena_printf(&a, "HTTP_IF_NONE_MATCH=%s",
	    e.etag)), 404);
	ck_assert_uint_eq(rs.body.len, e.body_len);
	ck_assert_ptr_null(strstr(buf_cstr(&rs.headers), "ETag"));
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("httpcache");
	TCase	*tc = tcase_create("httpcache");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, etag_is_a_hash_of_the_body);
	tcase_add_test(tc, plain_get_is_200_with_validators);
	tcase_add_test(tc, if_none_match_forms);
	tcase_add_test(tc, if_modified_since);
	tcase_add_test(tc, negative_entry_is_served_as_is);
	suite_add_tcase(s, tc);
	return check_run(s);
}

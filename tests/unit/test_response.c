/* Unit tests for lib/response: envelopes, codes, serialization. */
#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "response.h"

static struct arena	a;
static struct resp	rs;
static struct buf	out;

static void
setup(void)
{
	arena_init(&a, 4096, 2);
	resp_init(&rs, &a);
}

static void
teardown(void)
{
	arena_free(&a);
}

START_TEST(ok_envelope)
{
	struct buf	*b = resp_begin(&rs, 200);

	buf_adds(b, "{\"x\":1}");
	resp_end(&rs, "ok");
	ck_assert_str_eq(buf_cstr(&rs.body),
	    "{\"code\":0,\"data\":{\"x\":1},\"message\":\"ok\"}");
	resp_json(&rs, 201, NULL, "created");
	ck_assert_str_eq(buf_cstr(&rs.body),
	    "{\"code\":0,\"data\":null,\"message\":\"created\"}");
	ck_assert_int_eq(rs.status, 201);
}
END_TEST

START_TEST(error_envelope_and_status)
{
	resp_error(&rs, API_NOT_FOUND, "no such resource: %s", "/x\"y");
	ck_assert_int_eq(rs.status, 404);
	ck_assert_str_eq(buf_cstr(&rs.body),
	    "{\"code\":40400,\"data\":null,\"message\":\"no such resource: /x\\\"y\"}");
	/* A program's own code of the same form. */
	resp_error_data(&rs, 50302, "{\"redis\":\"down\"}", "m");
	ck_assert_int_eq(rs.status, 503);
	ck_assert_str_eq(buf_cstr(&rs.body),
	    "{\"code\":50302,\"data\":{\"redis\":\"down\"},\"message\":\"m\"}");
	ck_assert_int_eq(resp_status_of(API_OK), 200);
	ck_assert_int_eq(resp_status_of(API_MALFORMED_JSON), 400);
	ck_assert_int_eq(resp_status_of(API_RATE_LIMITED), 429);
	ck_assert_str_eq(resp_reason(413), "Content Too Large");
}
END_TEST

START_TEST(serialize_has_length_and_id)
{
	const char	*s;

	resp_json(&rs, 200, "{\"message\":\"pong\"}", "ok");
	resp_header(&rs, "ETag", "\"%s\"", "abc");
	resp_serialize(&rs, "rid-1", 0, &out);
	s = buf_cstr(&out);
	ck_assert_ptr_nonnull(strstr(s, "Status: 200 OK\r\n"));
	ck_assert_ptr_nonnull(strstr(s,
	    "Content-Type: application/json; charset=utf-8\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "Content-Length: 51\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "X-Request-Id: rid-1\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "ETag: \"abc\"\r\n"));
	ck_assert_ptr_null(strstr(s, "Cache-Control"));
	ck_assert_str_eq(strstr(s, "\r\n\r\n") + 4,
	    "{\"code\":0,\"data\":{\"message\":\"pong\"},\"message\":\"ok\"}");
}
END_TEST

START_TEST(head_and_bodyless)
{
	const char	*s;

	resp_json(&rs, 200, NULL, "ok");
	resp_serialize(&rs, "r", 1, &out);
	s = buf_cstr(&out);
	ck_assert_ptr_nonnull(strstr(s, "Content-Length: 37\r\n"));
	ck_assert_str_eq(strstr(s, "\r\n\r\n") + 4, "");
	resp_json(&rs, 304, NULL, "ok");
	resp_serialize(&rs, "r", 0, &out);
	s = buf_cstr(&out);
	ck_assert_ptr_nonnull(strstr(s, "Status: 304 Not Modified\r\n"));
	ck_assert_ptr_null(strstr(s, "Content-Length"));
	ck_assert_str_eq(strstr(s, "\r\n\r\n") + 4, "");
}
END_TEST

START_TEST(errors_are_not_cached_and_headers_not_split)
{
	const char	*s;

	resp_error(&rs, API_UNAVAILABLE, "down");
	resp_header(&rs, "Retry-After", "%s", "1\r\nSet-Cookie: evil");
	resp_serialize(&rs, "r", 0, &out);
	s = buf_cstr(&out);
	ck_assert_ptr_nonnull(strstr(s, "Cache-Control: no-store\r\n"));
	ck_assert_ptr_nonnull(strstr(s, "Retry-After: 1  Set-Cookie: evil\r\n"));
	ck_assert_ptr_null(strstr(s, "\r\nSet-Cookie"));
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("response");
	TCase	*tc = tcase_create("response");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, ok_envelope);
	tcase_add_test(tc, error_envelope_and_status);
	tcase_add_test(tc, serialize_has_length_and_id);
	tcase_add_test(tc, head_and_bodyless);
	tcase_add_test(tc, errors_are_not_cached_and_headers_not_split);
	suite_add_tcase(s, tc);
	return check_run(s);
}

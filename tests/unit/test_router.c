/* Unit tests for lib/router: matching, params, 404, 405 with Allow, HEAD. */
#include "check_run.h"
#include <stdlib.h>
#include <string.h>

#include "router.h"

/* A program's route: the library's, and what it means to the program. */
struct my_route {
	struct route	 r;
	int		 handler;
};

static const struct my_route table[] = {
	{ { "GET",	"/ping" },				1 },
	{ { "POST",	"/ping" },				2 },
	{ { "GET",	"/api/v1/users/{id}" },			3 },
	{ { "DELETE",	"/api/v1/users/{id}" },			2 },
	{ { "GET",	"/api/v1/users/{id}/posts/{post}" },	1 },
	{ { "GET",	"/api/v1/data/list" },			3 },
	{ { "PATCH",	"/api/v1/data/{id}" },			2 },
};
#define N	(sizeof(table) / sizeof(table[0]))

static struct arena	a;
static struct req	rq;
static struct resp	rs;

static enum route_result
route(const char *method, const char *path)
{
	char	*env[3];

	env[0] = arena_printf(&a, "REQUEST_METHOD=%s", method);
	env[1] = arena_printf(&a, "DOCUMENT_URI=%s", path);
	env[2] = NULL;
	req_init(&rq, &a, env);
	resp_init(&rs, &a);
	return router_match(table, N, sizeof(table[0]), &rq, &rs);
}

static void
setup(void)
{
	arena_init(&a, 4096, 2);
}

static void
teardown(void)
{
	arena_free(&a);
}

/* The handler of the route found. */
static int
handler(void)
{
	return ((const struct my_route *)(const void *)rq.route)->handler;
}

/* The value of header name in rs, or NULL. */
static const char *
header(const char *name)
{
	const char	*h = buf_cstr(&rs.headers), *p;

	if ((p = strstr(h, name)) == NULL)
		return NULL;
	p += strlen(name) + 2;
	return arena_strndup(&a, p, strcspn(p, "\r"));
}

START_TEST(literal_routes)
{
	ck_assert_int_eq(route("GET", "/ping"), ROUTE_FOUND);
	ck_assert_int_eq(handler(), 1);
	ck_assert_int_eq(route("POST", "/ping"), ROUTE_FOUND);
	ck_assert_int_eq(handler(), 2);
}
END_TEST

START_TEST(params_are_captured)
{
	ck_assert_int_eq(route("GET", "/api/v1/users/42"), ROUTE_FOUND);
	ck_assert_int_eq(handler(), 3);
	ck_assert_str_eq(req_path_param(&rq, "id"), "42");
	ck_assert_int_eq(route("GET", "/api/v1/users/7/posts/9"), ROUTE_FOUND);
	ck_assert_str_eq(req_path_param(&rq, "id"), "7");
	ck_assert_str_eq(req_path_param(&rq, "post"), "9");
	ck_assert_ptr_null(req_path_param(&rq, "nope"));
}
END_TEST

START_TEST(not_found)
{
	ck_assert_int_eq(route("GET", "/nope"), ROUTE_NOT_FOUND);
	ck_assert_int_eq(rs.status, 404);
	ck_assert_int_eq(rs.code, API_NOT_FOUND);
	ck_assert_int_eq(route("GET", "/ping/"), ROUTE_NOT_FOUND);
	ck_assert_int_eq(route("GET", "/api/v1/users/"), ROUTE_NOT_FOUND);
	ck_assert_int_eq(route("GET", "/api/v1/users"), ROUTE_NOT_FOUND);
	ck_assert_int_eq(route("GET", "/api/v1/users/1/2"), ROUTE_NOT_FOUND);
	ck_assert_int_eq(route("GET", ""), ROUTE_NOT_FOUND);
}
END_TEST

START_TEST(method_not_allowed_lists_allow)
{
	ck_assert_int_eq(route("DELETE", "/ping"), ROUTE_BAD_METHOD);
	ck_assert_int_eq(rs.status, 405);
	ck_assert_int_eq(rs.code, API_METHOD_NOT_ALLOWED);
	ck_assert_str_eq(header("Allow"), "GET, HEAD, POST");
	ck_assert_int_eq(route("PUT", "/api/v1/users/3"), ROUTE_BAD_METHOD);
	ck_assert_str_eq(header("Allow"), "GET, HEAD, DELETE");
}
END_TEST

START_TEST(literal_beats_param)
{
	ck_assert_int_eq(route("GET", "/api/v1/data/list"), ROUTE_FOUND);
	ck_assert_int_eq(handler(), 3);
	ck_assert_int_eq(route("PATCH", "/api/v1/data/list"), ROUTE_BAD_METHOD);
	ck_assert_str_eq(header("Allow"), "GET, HEAD");
	ck_assert_int_eq(route("PATCH", "/api/v1/data/7"), ROUTE_FOUND);
	ck_assert_str_eq(req_path_param(&rq, "id"), "7");
}
END_TEST

START_TEST(head_uses_get)
{
	ck_assert_int_eq(route("HEAD", "/ping"), ROUTE_FOUND);
	ck_assert_int_eq(handler(), 1);
	ck_assert_int_eq(rq.head, 1);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("router");
	TCase	*tc = tcase_create("router");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, literal_routes);
	tcase_add_test(tc, params_are_captured);
	tcase_add_test(tc, not_found);
	tcase_add_test(tc, method_not_allowed_lists_allow);
	tcase_add_test(tc, head_uses_get);
	tcase_add_test(tc, literal_beats_param);
	suite_add_tcase(s, tc);
	return check_run(s);
}

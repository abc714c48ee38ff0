/* Unit tests for lib/request: params, request id, body, query, cookies, JSON. */
#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

static struct arena	a;
static struct req	rq;
static struct resp	rs;

struct src {
	const char	*data;
	size_t		 len, off, chunk;
};

/* A body source that hands out at most `chunk` bytes per call. */
static int
src_read(void *ctx, char *p, int n)
{
	struct src	*s = ctx;
	size_t		 k = s->len - s->off;

	if (k > (size_t)n)
		k = (size_t)n;
	if (k > s->chunk)
		k = s->chunk;
	memcpy(p, s->data + s->off, k);
	s->off += k;
	return (int)k;
}

static void
setup(void)
{
	arena_init(&a, 4096, 2);
	req_id_seed();
}

static void
teardown(void)
{
	req_finish(&rq);
	arena_free(&a);
}

/* Init rq/rs from a NULL-terminated envp. */
static void
start(char *const *envp)
{
	req_finish(&rq);
	req_init(&rq, &a, envp);
	resp_init(&rs, &a);
}

START_TEST(reads_params)
{
	char *const env[] = { "REQUEST_METHOD=POST", "DOCUMENT_URI=/api/v1/x",
	    "QUERY_STRING=a=1", "REMOTE_ADDR=127.0.0.1",
	    "CONTENT_TYPE=application/json", "HTTP_IF_NONE_MATCH=\"abc\"", NULL };

	start(env);
	ck_assert_str_eq(rq.method, "POST");
	ck_assert_str_eq(rq.path, "/api/v1/x");
	ck_assert_str_eq(rq.query, "a=1");
	ck_assert_str_eq(rq.remote_addr, "127.0.0.1");
	ck_assert_str_eq(req_param(&rq, "HTTP_IF_NONE_MATCH"), "\"abc\"");
	ck_assert_ptr_null(req_param(&rq, "HTTP_IF_NONE"));
}
END_TEST

/* req_accept_q of type with this Accept header (NULL: none). */
static int
accept_q(const char *accept, const char *type)
{
	static char	hdr[256];
	char *const	env[] = { hdr, NULL }, *const none[] = { NULL };

	snprintf(hdr, sizeof(hdr), "HTTP_ACCEPT=%s", accept ? accept : "");
	start(accept != NULL ? env : none);
	return req_accept_q(&rq, type);
}

START_TEST(accept_q_values)
{
	const char	*mp = "application/msgpack", *js = "application/json";

	ck_assert_int_eq(accept_q(NULL, mp), 1000);
	ck_assert_int_eq(accept_q("application/msgpack", mp), 1000);
	ck_assert_int_eq(accept_q("application/msgpack", js), 0);
	ck_assert_int_eq(accept_q("*/*", mp), 1000);
	ck_assert_int_eq(accept_q("text/html, */*;q=0.1", mp), 100);
	/* The most specific range wins, wherever it stands. */
	ck_assert_int_eq(accept_q("application/msgpack;q=0, */*", mp), 0);
	ck_assert_int_eq(accept_q("*/*;q=0.2, application/*;q=0.5", mp), 500);
	ck_assert_int_eq(accept_q("application/json, application/msgpack;"
	    "q=0.9", js), 1000);
	ck_assert_int_eq(accept_q("application/json, application/msgpack ; "
	    "charset=x; Q=0.125", mp), 125);
	ck_assert_int_eq(accept_q("APPLICATION/MSGPACK", mp), 1000);
	/* A malformed q counts as 0; a near name is not the type. */
	ck_assert_int_eq(accept_q("application/msgpack;q=2", mp), 0);
	ck_assert_int_eq(accept_q("application/msgpack;q=0.1234", mp), 0);
	ck_assert_int_eq(accept_q("application/msgpackx", mp), 0);
	ck_assert_int_eq(accept_q("application/x-msgpack", mp), 0);
	ck_assert_int_eq(accept_q("", mp), 0);
	ck_assert_int_eq(accept_q(",,;q=1,", mp), 0);
}
END_TEST

START_TEST(path_from_request_uri)
{
	char *const env[] = { "REQUEST_METHOD=GET", "REQUEST_URI=/a/b?x=1", NULL };

	start(env);
	ck_assert_str_eq(rq.path, "/a/b");
}
END_TEST

START_TEST(request_id_rules)
{
	char *const good[] = { "HTTP_X_REQUEST_ID=abc-123.X_y", NULL };
	char *const bad[] = { "HTTP_X_REQUEST_ID=has space", NULL };
	char	 first[REQ_ID_MAX + 1];
	char	 long_id[70];

	start(good);
	ck_assert_str_eq(rq.id, "abc-123.X_y");
	start(bad);
	ck_assert_str_ne(rq.id, "has space");
	ck_assert(req_id_valid(rq.id));
	strcpy(first, rq.id);
	start(bad);
	ck_assert_str_ne(rq.id, first);
	memset(long_id, 'a', 64);
	long_id[64] = '\0';
	ck_assert(req_id_valid(long_id));
	long_id[64] = 'a';
	long_id[65] = '\0';
	ck_assert(!req_id_valid(long_id));
	ck_assert(!req_id_valid(""));
	ck_assert(!req_id_valid("<script>"));
}
END_TEST

START_TEST(traceparent)
{
	char *const ok[] = { "HTTP_TRACEPARENT="
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", NULL };
	char *const bad[] = { "HTTP_TRACEPARENT=00-xyz", NULL };

	start(ok);
	ck_assert_str_eq(rq.trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_str_eq(rq.trace.parent_id, "00f067aa0ba902b7");
	ck_assert_uint_eq(strlen(rq.trace.span_id), 16);
	ck_assert_ptr_null(rq.trace.state);
	start(bad);
	ck_assert_uint_eq(strlen(rq.trace.trace_id), 32);
	ck_assert_str_ne(rq.trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_str_eq(rq.trace.parent_id, "");
}
END_TEST

START_TEST(tracestate)
{
	char *const ok[] = { "HTTP_TRACEPARENT="
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	    "HTTP_TRACESTATE=rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", NULL };
	char *const invalid[] = { "HTTP_TRACEPARENT="
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	    "HTTP_TRACESTATE=Rojo=1", NULL };
	char *const alone[] = { "HTTP_TRACEPARENT=00-xyz",
	    "HTTP_TRACESTATE=rojo=1", NULL };

	start(ok);
	ck_assert_str_eq(rq.trace.state,
	    "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
	/* Dropped, never a failure: the trace goes on without it. */
	start(invalid);
	ck_assert_ptr_null(rq.trace.state);
	ck_assert_str_eq(rq.trace.parent_id, "00f067aa0ba902b7");
	/* Without an accepted traceparent, none. */
	start(alone);
	ck_assert_ptr_null(rq.trace.state);
	ck_assert_str_eq(rq.trace.parent_id, "");
}
END_TEST

START_TEST(query_decoding)
{
	char *const env[] = { "QUERY_STRING=a=1&name=J%C3%BCrgen+M&empty=&flag&&x=%2B", NULL };
	char *const bad[] = { "QUERY_STRING=a=%zz", NULL };
	char *const nul[] = { "QUERY_STRING=a=%00", NULL };

	start(env);
	ck_assert_int_eq(req_parse_query(&rq, &rs), 0);
	ck_assert_str_eq(req_query(&rq, "a"), "1");
	ck_assert_str_eq(req_query(&rq, "name"), "J\xc3\xbcrgen M");
	ck_assert_str_eq(req_query(&rq, "empty"), "");
	ck_assert_str_eq(req_query(&rq, "flag"), "");
	ck_assert_str_eq(req_query(&rq, "x"), "+");
	ck_assert_ptr_null(req_query(&rq, "nope"));
	start(bad);
	ck_assert_int_eq(req_parse_query(&rq, &rs), -1);
	ck_assert_int_eq(rs.status, 400);
	start(nul);
	ck_assert_int_eq(req_parse_query(&rq, &rs), -1);
}
END_TEST

START_TEST(cookie_parsing)
{
	char *const env[] = { "HTTP_COOKIE=a=1; refresh_token=abc%3D; bad=%zz", NULL };

	start(env);
	ck_assert_str_eq(req_cookie(&rq, "a"), "1");
	ck_assert_str_eq(req_cookie(&rq, "refresh_token"), "abc=");
	ck_assert_str_eq(req_cookie(&rq, "bad"), "%zz");
	ck_assert_ptr_null(req_cookie(&rq, "b"));
}
END_TEST

START_TEST(pct_decode_edges)
{
	char	out[16];

	ck_assert_int_eq(req_pct_decode(out, "%4", 2, 0, 1), -1);
	ck_assert_int_eq(req_pct_decode(out, "%", 1, 0, 1), -1);
	ck_assert_int_eq(req_pct_decode(out, "%", 1, 0, 0), 1);
	ck_assert_str_eq(out, "%");
	ck_assert_int_eq(req_pct_decode(out, "a+b", 3, 0, 1), 3);
	ck_assert_str_eq(out, "a+b");
}
END_TEST

START_TEST(body_exact)
{
	char *const env[] = { "REQUEST_METHOD=POST", "CONTENT_LENGTH=11", NULL };
	struct src	s = { "hello world", 11, 0, 3 };

	start(env);
	ck_assert_int_eq(req_read_body(&rq, &rs, 100, src_read, &s), 0);
	ck_assert_uint_eq(rq.body_len, 11);
	ck_assert_str_eq(rq.body, "hello world");
}
END_TEST

START_TEST(body_errors)
{
	char *const nolen[] = { "REQUEST_METHOD=POST", NULL };
	char *const emptylen[] = { "REQUEST_METHOD=PATCH", "CONTENT_LENGTH=", NULL };
	char *const getnolen[] = { "REQUEST_METHOD=GET", NULL };
	char *const big[] = { "REQUEST_METHOD=POST", "CONTENT_LENGTH=101", NULL };
	char *const shortb[] = { "REQUEST_METHOD=POST", "CONTENT_LENGTH=20", NULL };
	char *const badlen[] = { "REQUEST_METHOD=POST", "CONTENT_LENGTH=-5", NULL };
	struct src	s = { "hello", 5, 0, 100 };

	/* No length is no body, whatever the method. */
	start(nolen);
	ck_assert_int_eq(req_read_body(&rq, &rs, 100, src_read, &s), 0);
	ck_assert_uint_eq(rq.body_len, 0);
	ck_assert_int_eq(rs.status, 0);
	start(emptylen);
	ck_assert_int_eq(req_read_body(&rq, &rs, 100, src_read, &s), 0);
	ck_assert_uint_eq(rq.body_len, 0);
	start(getnolen);
	ck_assert_int_eq(req_read_body(&rq, &rs, 100, src_read, &s), 0);
	ck_assert_uint_eq(rq.body_len, 0);
	start(big);
	ck_assert_int_eq(req_read_body(&rq, &rs, 100, src_read, &s), -1);
	ck_assert_int_eq(rs.status, 413);
	start(shortb);
	s.off = 0;
	ck_assert_int_eq(req_read_body(&rq, &rs, 100, src_read, &s), -1);
	ck_assert_int_eq(rs.status, 400);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&rs.body), "ended after 5 of 20 bytes"));
	start(badlen);
	ck_assert_int_eq(req_read_body(&rq, &rs, 100, src_read, &s), -1);
	ck_assert_int_eq(rs.status, 400);
}
END_TEST

/* Parse body as a JSON request; returns req_json_body's result. */
static int
json_of(const char *ct, const char *body, struct json_object **obj)
{
	char		*env[3] = { NULL, NULL, NULL };

	env[0] = arena_printf(&a, "CONTENT_TYPE=%s", ct);
	start(env);
	rq.body = body;
	rq.body_len = strlen(body);
	return req_json_body(&rq, &rs, obj);
}

START_TEST(json_messages)
{
	struct json_object	*o;
	const char		*v;

	ck_assert_int_eq(json_of("application/json", "{\"echo\": ", &o), -1);
	ck_assert_int_eq(rs.code, API_MALFORMED_JSON);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&rs.body), "malformed JSON at byte 9"));
	ck_assert_int_eq(json_of("application/json", "{\"a\": tru}", &o), -1);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&rs.body), "malformed JSON at byte "));
	ck_assert_int_eq(json_of("application/json", "{} x", &o), -1);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&rs.body), "malformed JSON at byte 3: "));
	ck_assert_int_eq(json_of("application/json", "[1]", &o), -1);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&rs.body), "must be a JSON object"));
	ck_assert_int_eq(json_of("application/json", "", &o), -1);
	ck_assert_int_eq(rs.code, API_MALFORMED_JSON);
	ck_assert_int_eq(json_of("application/json", "{\"a\":\"\xff\"}", &o), -1);
	ck_assert_int_eq(rs.code, API_MALFORMED_JSON);
	ck_assert_int_eq(json_of("text/plain", "{}", &o), -1);
	ck_assert_int_eq(rs.status, 415);
	ck_assert_int_eq(json_of("application/jsonx", "{}", &o), -1);
	ck_assert_int_eq(rs.status, 415);

	ck_assert_int_eq(json_of("application/json; charset=utf-8",
	    "{\"echo\": \"hi\", \"n\": 5}", &o), 0);
	ck_assert_int_eq(req_json_string(&rs, o, "echo", &v), 0);
	ck_assert_str_eq(v, "hi");
	ck_assert_int_eq(req_json_string(&rs, o, "n", &v), -1);
	ck_assert_int_eq(rs.code, API_VALIDATION);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&rs.body), "field `n` must be a string"));
	ck_assert_int_eq(req_json_string(&rs, o, "code", &v), -1);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&rs.body), "field `code` is missing"));
}
END_TEST

START_TEST(json_depth_is_bounded)
{
	struct json_object	*o;
	char			*deep;
	size_t			 i, n = 10000;

	deep = arena_alloc(&a, 2 * n + 1);
	for (i = 0; i < n; i++) {
		deep[i] = '[';
		deep[n + i] = ']';
	}
	deep[2 * n] = '\0';
	ck_assert_int_eq(json_of("application/json", deep, &o), -1);
	ck_assert_int_eq(rs.code, API_MALFORMED_JSON);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&rs.body), "nesting too deep"));
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("request");
	TCase	*tc = tcase_create("request");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, reads_params);
	tcase_add_test(tc, path_from_request_uri);
	tcase_add_test(tc, request_id_rules);
	tcase_add_test(tc, traceparent);
	tcase_add_test(tc, tracestate);
	tcase_add_test(tc, query_decoding);
	tcase_add_test(tc, cookie_parsing);
	tcase_add_test(tc, pct_decode_edges);
	tcase_add_test(tc, body_exact);
	tcase_add_test(tc, body_errors);
	tcase_add_test(tc, json_messages);
	tcase_add_test(tc, json_depth_is_bounded);
	tcase_add_test(tc, accept_q_values);
	suite_add_tcase(s, tc);
	return check_run(s);
}

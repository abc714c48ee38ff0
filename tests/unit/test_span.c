/*
 * Unit tests for lib/span: nothing recorded for an unsampled trace; the
 * spans of a sampled one as OTLP/JSON (read back with json-c); the cap on
 * spans per request; the sink to the exporter, which drops rather than
 * waits; and the export envelope.
 */
#include "check_run.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "span.h"

#define TP	"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static struct arena	a;

static void
setup(void)
{
	arena_init(&a, 4096, 1);
}

static void
teardown(void)
{
	arena_free(&a);
}

/* Member name of o as a string, or NULL. */
static const char *
str(struct json_object *o, const char *name)
{
	struct json_object	*v;

	return json_object_object_get_ex(o, name, &v) ?
	    json_object_get_string(v) : NULL;
}

START_TEST(an_unsampled_trace_records_nothing)
{
	struct spans	 sp;
	struct trace	 t;
	struct buf	 b;

	ck_assert_int_eq(trace_start(&t, NULL), 0);	/* flags 0 */
	spans_start(&sp, &a, &t, "GET");
	ck_assert(!spans_recording(&sp));
	ck_assert_ptr_null(span_begin(&sp, "user_get", SPAN_CLIENT));
	ck_assert_ptr_null(span_begin(NULL, "user_get", SPAN_CLIENT));
	span_end(NULL, 0);
	span_attr_str(NULL, "k", "v");
	ck_assert_uint_eq(arena_used(&a), 0);
	buf_init(&b, &a, 64);
	ck_assert_int_eq(spans_encode(&sp, 0, &b), -1);
	ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(a_sampled_request_is_a_server_span_and_its_calls)
{
	struct spans		 sp;
	struct trace		 t;
	struct span		*s;
	struct buf		 b;
	struct json_object	*arr, *srv, *cl, *attrs, *v;

	ck_assert_int_eq(trace_start(&t, TP), 0);
	spans_start(&sp, &a, &t, "GET");
	ck_assert(spans_recording(&sp));
	span_attr_str(&sp.v[0], "http.request.method", "GET");
	spans_rename(&sp, "GET /api/v1/data/{id}");
	s = span_begin(&sp, "item_get", SPAN_CLIENT);
	ck_assert_ptr_nonnull(s);
	span_attr_str(s, "db.system.name", "postgresql");
	span_attr_copy(&sp, s, "db.response.status_code", "23505");
	span_attr_int(s, "n", -42);
	span_attr_str(s, "quote", "a\"b\n");
	span_attr_str(s, "fifth", "not kept");	/* SPAN_ATTRS is 4 */
	span_end(s, 1);
	buf_init(&b, &a, 64);
	ck_assert_int_eq(spans_encode(&sp, 0, &b), 0);

	arr = json_tokener_parse(buf_cstr(&b));
	ck_assert_ptr_nonnull(arr);
	ck_assert_int_eq(json_object_array_length(arr), 2);
	srv = json_object_array_get_idx(arr, 0);
	cl = json_object_array_get_idx(arr, 1);
	ck_assert_str_eq(str(srv, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_str_eq(str(srv, "spanId"), t.span_id);
	ck_assert_str_eq(str(srv, "parentSpanId"), "00f067aa0ba902b7");
	ck_assert_str_eq(str(srv, "name"), "GET /api/v1/data/{id}");
	ck_assert_str_eq(str(srv, "kind"), "2");
	ck_assert_ptr_null(str(srv, "traceState"));	/* none came */
	ck_assert_str_eq(str(cl, "traceId"), "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_str_eq(str(cl, "parentSpanId"), t.span_id);
	ck_assert_str_ne(str(cl, "spanId"), t.span_id);
	ck_assert_uint_eq(strlen(str(cl, "spanId")), 16);
	ck_assert_str_eq(str(cl, "name"), "item_get");
	ck_assert_str_eq(str(cl, "kind"), "3");
	/* Nanoseconds, as strings: int64 in proto3's JSON. */
	ck_assert(json_object_is_type(json_object_object_get(cl,
	    "startTimeUnixNano"), json_type_string));
	ck_assert_int_le(strtoull(str(cl, "startTimeUnixNano"), NULL, 10),
	    strtoull(str(cl, "endTimeUnixNano"), NULL, 10));
	ck_assert_int_ge(strtoull(str(cl, "startTimeUnixNano"), NULL, 10),
	    strtoull(str(srv, "startTimeUnixNano"), NULL, 10));
	ck_assert_str_eq(str(json_object_object_get(cl, "status"), "code"), "2");
	ck_assert_ptr_null(str(json_object_object_get(srv, "status"), "code"));
	attrs = json_object_object_get(cl, "attributes");
	ck_assert_int_eq(json_object_array_length(attrs), 4);
	v = json_object_array_get_idx(attrs, 1);
	ck_assert_str_eq(str(v, "key"), "db.response.status_code");
	ck_assert_str_eq(str(json_object_object_get(v, "value"), "stringValue"),
	    "23505");
	v = json_object_array_get_idx(attrs, 2);
	ck_assert_str_eq(str(json_object_object_get(v, "value"), "intValue"),
	    "-42");
	v = json_object_array_get_idx(attrs, 3);
	ck_assert_str_eq(str(json_object_object_get(v, "value"), "stringValue"),
	    "a\"b\n");
	json_object_put(arr);
	spans_end(&sp);
	ck_assert(!spans_recording(&sp));
}
END_TEST

START_TEST(every_span_carries_the_tracestate)
{
	struct spans		 sp;
	struct trace		 t;
	struct buf		 b;
	struct json_object	*arr;
	size_t			 i;

	ck_assert_int_eq(trace_start(&t, TP), 0);
	trace_set_state(&t, "rojo=00f067aa0ba902b7,k=\"q\\");
	spans_start(&sp, &a, &t, "GET");
	span_end(span_begin(&sp, "user_get", SPAN_CLIENT), 0);
	buf_init(&b, &a, 64);
	ck_assert_int_eq(spans_encode(&sp, 0, &b), 0);
	arr = json_tokener_parse(buf_cstr(&b));
	ck_assert_ptr_nonnull(arr);
	ck_assert_int_eq(json_object_array_length(arr), 2);
	for (i = 0; i < 2; i++)
		ck_assert_str_eq(str(json_object_array_get_idx(arr, i),
		    "traceState"), "rojo=00f067aa0ba902b7,k=\"q\\");
	json_object_put(arr);
	spans_end(&sp);
}
END_TEST

START_TEST(a_request_keeps_at_most_span_max)
{
	struct spans	sp;
	struct trace	t;
	int		i;

	ck_assert_int_eq(trace_start(&t, TP), 0);
	spans_start(&sp, &a, &t, "GET");
	for (i = 1; i < SPAN_MAX; i++)
		ck_assert_ptr_nonnull(span_begin(&sp, "x", SPAN_CLIENT));
	ck_assert_ptr_null(span_begin(&sp, "x", SPAN_CLIENT));
	ck_assert_ptr_null(span_begin(&sp, "x", SPAN_CLIENT));
	ck_assert_int_eq(sp.n, SPAN_MAX);
	ck_assert_uint_eq(sp.dropped, 2);
}
END_TEST

/* A listening SOCK_SEQPACKET socket at a fresh path; its fd. */
static int
listener(char *path, size_t len)
{
	struct sockaddr_un	sun;
	int			fd;

	snprintf(path, len, "/tmp/test_span.%d.sock", (int)getpid());
	unlink(path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	return fd;
}

START_TEST(the_sink_sends_whole_messages_and_drops_when_full)
{
	struct span_sink	 k;
	char			 path[64], msg[4096], got[8192];
	int			 lfd, c, sent;

	/* No exporter: dropped, and not tried again at once. */
	ck_assert_int_eq(span_sink_open(&k, "/nonexistent/otlp.sock"), 0);
	ck_assert_int_eq(span_sink_send(&k, "[1]", 3), -1);
	ck_assert_int_eq(k.fd, -1);
	ck_assert_int_gt(k.retry_us, 0);

	lfd = listener(path, sizeof(path));
	ck_assert_int_eq(span_sink_open(&k, path), 0);
	ck_assert_int_eq(span_sink_send(&k, "[{\"a\":1}]", 9), 0);
	c = accept(lfd, NULL, NULL);
	ck_assert_int_ge(c, 0);
	ck_assert_int_eq(recv(c, got, sizeof(got), 0), 9);
	ck_assert_int_eq(memcmp(got, "[{\"a\":1}]", 9), 0);

	/* Nobody reads: the buffer fills, and a send drops, never waits. */
	memset(msg, 'x', sizeof(msg));
	for (sent = 0; sent < 100000; sent++)
		if (span_sink_send(&k, msg, sizeof(msg)) == -1)
			break;
	ck_assert_int_lt(sent, 100000);
	ck_assert_int_gt(sent, 0);
	ck_assert_int_ge(k.fd, 0);	/* the connection stays */
	/* Too large for one message: dropped. */
	ck_assert_int_eq(span_sink_send(&k, msg, SPAN_MESSAGE_MAX + 1), -1);

	/* The exporter restarts: the sink connects to the new one. */
	close(c);
	close(lfd);
	lfd = listener(path, sizeof(path));
	ck_assert_int_eq(span_sink_send(&k, "[2]", 3), 0);
	c = accept(lfd, NULL, NULL);
	ck_assert_int_ge(c, 0);
	ck_assert_int_eq(recv(c, got, sizeof(got), 0), 3);
	span_sink_close(&k);
	close(c);
	close(lfd);
	unlink(path);
}
END_TEST

START_TEST(the_envelope_is_an_export_request)
{
	struct buf		 b;
	struct json_object	*o, *rs, *ss, *spans;

	buf_init(&b, &a, 64);
	span_export_begin(&b, "wxapp", "1.0", "host\"1");
	span_export_add(&b, "[{\"x\":1},{\"x\":2}]", 17, 1);
	span_export_add(&b, "[{\"x\":3}]", 9, 0);
	span_export_end(&b);
	o = json_tokener_parse(buf_cstr(&b));
	ck_assert_ptr_nonnull(o);
	rs = json_object_array_get_idx(json_object_object_get(o,
	    "resourceSpans"), 0);
	ss = json_object_array_get_idx(json_object_object_get(rs, "scopeSpans"),
	    0);
	spans = json_object_object_get(ss, "spans");
	ck_assert_int_eq(json_object_array_length(spans), 3);
	ck_assert_str_eq(str(json_object_object_get(ss, "scope"), "name"),
	    "wxapp");
	ck_assert_str_eq(json_object_to_json_string_ext(json_object_object_get(
	    json_object_object_get(rs, "resource"), "attributes"),
	    JSON_C_TO_STRING_PLAIN), "[{\"key\":\"service.name\",\"value\":"
	    "{\"stringValue\":\"wxapp\"}},{\"key\":\"service.version\","
	    "\"value\":{\"stringValue\":\"1.0\"}},{\"key\":\"host.name\","
	    "\"value\":{\"stringValue\":\"host\\\"1\"}}]");
	json_object_put(o);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("span");
	TCase	*tc = tcase_create("span");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, an_unsampled_trace_records_nothing);
	tcase_add_test(tc, a_sampled_request_is_a_server_span_and_its_calls);
	tcase_add_test(tc, every_span_carries_the_tracestate);
	tcase_add_test(tc, a_request_keeps_at_most_span_max);
	tcase_add_test(tc, the_sink_sends_whole_messages_and_drops_when_full);
	tcase_add_test(tc, the_envelope_is_an_export_request);
	suite_add_tcase(s, tc);
	return check_run(s);
}

/*
 * example: a responder of its own on the installed libwxapp, the way a
 * team starts one: a route table of its own elements, a handler that
 * reads a query parameter and a JSON body and answers in the envelope.
 * Built against the installed copy (pkg-config wxapp) by
 * `make installcheck`.
 *
 *	example		serve FastCGI on stdin (spawn-fcgi), one request at a time
 *	example -t	answer GET /hello?name=x and POST /echo once, print both
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include <wxapp/arena.h>
#include <wxapp/request.h>
#include <wxapp/response.h>
#include <wxapp/router.h>

struct my_route {
	struct route	 r;
	void		(*fn)(struct req *, struct resp *);
};

/* GET /hello[?name=]: a greeting. */
static void
hello(struct req *rq, struct resp *rs)
{
	const char	*name = req_query(rq, "name");
	struct buf	*b = resp_begin(rs, 200);

	buf_adds(b, "{\"greeting\":");
	buf_json_str(b, "hello", 5);
	buf_adds(b, ",\"name\":");
	if (name != NULL)
		buf_json_str(b, name, strlen(name));
	else
		buf_adds(b, "null");
	buf_addc(b, '}');
	resp_end(rs, "ok");
}

/* POST /echo {"text"}: the text back. */
static void
echo(struct req *rq, struct resp *rs)
{
	struct json_object	*body;
	const char		*text;

	if (req_json_body(rq, rs, &body) == -1 ||
	    req_json_string(rs, body, "text", &text) == -1)
		return;
	buf_json_str(resp_begin(rs, 200), text, strlen(text));
	resp_end(rs, "ok");
}

static const struct my_route routes[] = {
	{ .r = { .method = "GET", .pattern = "/hello" }, .fn = hello },
	{ .r = { .method = "POST", .pattern = "/echo" }, .fn = echo },
};

struct body {
	const char	*p;
	size_t		 n;
};

static int
read_body(void *ctx, char *p, int n)
{
	struct body	*b = ctx;
	size_t		 k = b->n < (size_t)n ? b->n : (size_t)n;

	memcpy(p, b->p, k);
	b->p += k;
	b->n -= k;
	return (int)k;
}

static int
read_fcgi(void *ctx, char *p, int n)
{
	return FCGX_GetStr(p, n, ctx);
}

/* Route, read and answer one request into out. */
static void
answer(struct arena *a, char **envp, req_read_fn rd, void *ctx,
    struct buf *out)
{
	struct req	 rq;
	struct resp	 rs;

	req_init(&rq, a, envp);
	resp_init(&rs, a);
	if (router_match(routes, sizeof(routes) / sizeof(routes[0]),
	    sizeof(routes[0]), &rq, &rs) == ROUTE_FOUND &&
	    req_parse_query(&rq, &rs) == 0 &&
	    req_read_body(&rq, &rs, 65536, rd, ctx) == 0)
		((const struct my_route *)(const void *)rq.route)->fn(&rq, &rs);
	if (!resp_is_set(&rs))
		resp_error(&rs, API_INTERNAL, "no answer");
	resp_serialize(&rs, rq.id, rq.head, out);
	req_finish(&rq);
}

/* Answer two requests made up here, on stdout. */
static int
self_test(struct arena *a)
{
	char		*get[] = { "REQUEST_METHOD=GET", "DOCUMENT_URI=/hello",
			    "QUERY_STRING=name=%E5%B0%8F%E7%A8%8B%E5%BA%8F", NULL };
	char		*post[] = { "REQUEST_METHOD=POST", "DOCUMENT_URI=/echo",
			    "CONTENT_TYPE=application/json",
			    "CONTENT_LENGTH=15", NULL };
	struct body	 b = { "{\"text\":\"hi!\"}\n", 15 };
	struct buf	 out;

	answer(a, get, read_body, &b, &out);
	fwrite(out.p, 1, out.len, stdout);
	fputc('\n', stdout);
	answer(a, post, read_body, &b, &out);
	fwrite(out.p, 1, out.len, stdout);
	fputc('\n', stdout);
	return 0;
}

int
main(int argc, char *argv[])
{
	FCGX_Request	fr;
	struct arena	a;
	struct buf	out;

	arena_init(&a, 64 * 1024, 1);
	req_id_seed();
	if (argc == 2 && strcmp(argv[1], "-t") == 0)
		return self_test(&a);
	if (FCGX_Init() != 0 || FCGX_InitRequest(&fr, 0, 0) != 0)
		return 1;
	while (FCGX_Accept_r(&fr) >= 0) {
		answer(&a, fr.envp, read_fcgi, fr.in, &out);
		(void)FCGX_PutStr(out.p, (int)out.len, fr.out);
		FCGX_Finish_r(&fr);
		arena_reset(&a);
	}
	arena_free(&a);
	return 0;
}

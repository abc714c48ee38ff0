/*
 * fuzz_request: what a request says, as the responder reads it: the
 * FastCGI params, routing, the query string and cookies (percent-
 * decoding), the body reader and the JSON body, then the answer's bytes.
 * Input: NAME=value lines, an empty line, then the body.
 */
#include <stdint.h>
#include <string.h>

#include "request.h"
#include "response.h"
#include "router.h"

#define MAX_PARAMS	64

/* The patterns of app/routes.c (the router is what is fuzzed here). */
static const struct route routes[] = {
	{ .method = "GET", .pattern = "/ping" },
	{ .method = "POST", .pattern = "/ping" },
	{ .method = "POST", .pattern = "/api/v1/user/login" },
	{ .method = "GET", .pattern = "/api/v1/users" },
	{ .method = "GET", .pattern = "/api/v1/users/{id}" },
	{ .method = "PATCH", .pattern = "/api/v1/users/{id}" },
	{ .method = "GET", .pattern = "/api/v1/data/list" },
	{ .method = "GET", .pattern = "/api/v1/data/{id}" },
	{ .method = "DELETE", .pattern = "/api/v1/data/{id}" },
	{ .method = "GET", .pattern = "/a/{x}/b/{y}" },
};

struct body {
	const uint8_t	*p;
	size_t		 n;
};

static int
body_read(void *ctx, char *p, int n)
{
	struct body	*b = ctx;
	size_t		 k = b->n < (size_t)n ? b->n : (size_t)n;

	memcpy(p, b->p, k);
	b->p += k;
	b->n -= k;
	return (int)k;
}

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct arena	 a;
	static int		 ready;
	char			*env[MAX_PARAMS + 1];
	const uint8_t		*p = data, *end = data + size, *nl;
	struct json_object	*obj;
	struct req		 rq;
	struct resp		 rs;
	struct buf		 out;
	struct body		 b;
	int			 n = 0;

	if (!ready) {
		arena_init(&a, 64 * 1024, 2);
		ready = 1;
	}
	while (p < end && n < MAX_PARAMS) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		if (nl == p) {		/* the empty line: the body follows */
			p++;
			break;
		}
		env[n++] = arena_strndup(&a, (const char *)p, (size_t)(nl - p));
		p = nl < end ? nl + 1 : end;
	}
	env[n] = NULL;
	req_init(&rq, &a, env);
	(void)req_accept_q(&rq, "application/msgpack");
	(void)req_accept_q(&rq, "application/json");
	resp_init(&rs, &a);
	if (router_match(routes, sizeof(routes) / sizeof(routes[0]),
	    sizeof(routes[0]), &rq, &rs) == ROUTE_FOUND) {
		(void)req_path_param(&rq, "id");
		b.p = p;
		b.n = (size_t)(end - p);
		if (req_parse_query(&rq, &rs) == 0 &&
		    req_read_body(&rq, &rs, 65536, body_read, &b) == 0) {
			(void)req_query(&rq, "page");
			(void)req_cookie(&rq, "refresh_token");
			if (req_json_body(&rq, &rs, &obj) == 0)
				resp_json(&rs, 200, NULL, "ok");
		}
	}
	if (!resp_is_set(&rs))
		resp_error(&rs, API_INTERNAL, "no answer");
	resp_serialize(&rs, rq.id, rq.head, &out);
	req_finish(&rq);
	arena_reset(&a);
	return 0;
}

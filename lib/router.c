/*
 * router: linear matching over a small static table.  A table of a few
 * dozen routes is scanned faster than any index is built, and the order of
 * the table is the order of precedence.
 */
#include <string.h>

#include "router.h"

/*
 * Match path against pattern segment by segment; on success store the
 * {name} captures in rq (when capture is set).  Returns 1 on a match.
 */
static int
route_path_match(const char *pattern, const char *path, struct req *rq,
    int capture)
{
	const char	*pe, *se, *close;
	int		 n = 0;

	while (*pattern != '\0' && *path != '\0') {
		if (*pattern != '/' || *path != '/')
			return 0;
		pattern++, path++;
		pe = strchr(pattern, '/');
		pe = pe ? pe : pattern + strlen(pattern);
		se = strchr(path, '/');
		se = se ? se : path + strlen(path);
		if (*pattern == '{' && (close = memchr(pattern, '}',
		    (size_t)(pe - pattern))) != NULL) {
			if (se == path || n == REQ_MAX_PARAMS)
				return 0;
			if (capture) {
				rq->params[n].name = arena_strndup(rq->a,
				    pattern + 1, (size_t)(close - pattern - 1));
				rq->params[n].value = arena_strndup(rq->a,
				    path, (size_t)(se - path));
			}
			n++;
		} else if (pe - pattern != se - path ||
		    memcmp(pattern, path, (size_t)(pe - pattern)) != 0)
			return 0;
		pattern = pe;
		path = se;
	}
	if (*pattern != '\0' || *path != '\0')
		return 0;
	if (capture)
		rq->nparams = n;
	return 1;
}

/* Append m to the Allow list unless it is there already. */
static void
allow_add(struct buf *allow, const char *m)
{
	const char	*p = buf_cstr(allow);
	size_t		 n = strlen(m);

	while ((p = strstr(p, m)) != NULL) {
		if ((p == allow->p || p[-1] == ' ') &&
		    (p[n] == ',' || p[n] == '\0'))
			return;
		p += n;
	}
	if (allow->len > 0)
		buf_add(allow, ", ", 2);
	buf_adds(allow, m);
}

/*
 * A literal pattern wins over one with {params}: /api/v1/data/list is not
 * /api/v1/data/{id}, for matching and for the Allow list alike.
 */
static int
route_considered(const struct route *r, struct req *rq, int literal_only)
{
	if (literal_only && strchr(r->pattern, '{') != NULL)
		return 0;
	return route_path_match(r->pattern, rq->path, rq, 0);
}

/* Element i of the table. */
static const struct route *
route_at(const void *table, size_t size, size_t i)
{
	return (const struct route *)(const void *)((const char *)table +
	    i * size);
}

enum route_result
router_match(const void *table, size_t n, size_t size, struct req *rq,
    struct resp *rs)
{
	const struct route	*r;
	const char		*method = rq->method;
	struct buf		 allow;
	size_t			 i;
	int			 known = 0, literal = 0;

	rq->head = strcmp(method, "HEAD") == 0;
	if (rq->head)
		method = "GET";
	/*
	 * A literal pattern matches only the very same string; most requests
	 * are found in this one pass of strcmp.
	 */
	for (i = 0; i < n; i++) {
		r = route_at(table, size, i);
		if (strcmp(r->pattern, rq->path) != 0 ||
		    strchr(r->pattern, '{') != NULL)
			continue;
		literal = 1;
		if (strcmp(r->method, method) == 0) {
			rq->route = r;
			return ROUTE_FOUND;
		}
	}
	for (i = 0; i < n; i++) {
		r = route_at(table, size, i);
		if (!route_considered(r, rq, literal))
			continue;
		known = 1;
		if (strcmp(r->method, method) == 0) {
			route_path_match(r->pattern, rq->path, rq, 1);
			rq->route = r;
			return ROUTE_FOUND;
		}
	}
	if (!known) {
		resp_error(rs, API_NOT_FOUND, "no such resource: %s", rq->path);
		return ROUTE_NOT_FOUND;
	}
	buf_init(&allow, rq->a, 64);
	for (i = 0; i < n; i++) {
		r = route_at(table, size, i);
		if (!route_considered(r, rq, literal))
			continue;
		allow_add(&allow, r->method);
		if (strcmp(r->method, "GET") == 0)
			allow_add(&allow, "HEAD");
	}
	resp_error(rs, API_METHOD_NOT_ALLOWED, "method %s is not allowed here",
	    rq->method);
	resp_header_str(rs, "Allow", buf_cstr(&allow));
	return ROUTE_BAD_METHOD;
}

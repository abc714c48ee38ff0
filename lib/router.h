/*
 * router: the table of routes (method + path pattern -> handler + flags)
 * and dispatch through it.  A pattern is literal segments and {name}
 * segments, each matching one non-empty path segment.  Owns the 404 for an
 * unknown path, the 405 with Allow for a known path and another method,
 * and serving HEAD with the GET handler.
 */
#ifndef WX_ROUTER_H
#define WX_ROUTER_H

#include <stddef.h>

#include "request.h"
#include "response.h"

struct app;

typedef void	(*route_fn)(struct app *, struct req *, struct resp *);

struct route {
	const char	*method;
	const char	*pattern;
	route_fn	 fn;
	unsigned	 flags;		/* the program's: the router ignores them */
	int		 rate_class;	/* which rate limit applies */
};

enum route_result {
	ROUTE_FOUND,
	ROUTE_NOT_FOUND,
	ROUTE_BAD_METHOD
};

/*
 * Find the route for rq's method and path; fills rq->route and the path
 * params.  On ROUTE_BAD_METHOD the allowed methods are set as an error on
 * rs (405 with Allow); on ROUTE_NOT_FOUND a 404 is set.
 */
enum route_result router_match(const struct route *, size_t, struct req *,
	    struct resp *);

#endif

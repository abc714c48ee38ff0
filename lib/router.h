/*
 * router: matching a request against a table of routes (method + path
 * pattern).  A pattern is literal segments and {name}
 * segments, each matching one non-empty path segment.  Owns the 404 for an
 * unknown path, the 405 with Allow for a known path and another method,
 * and serving HEAD with the GET handler.
 */
#ifndef WX_ROUTER_H
#define WX_ROUTER_H

#include <stddef.h>

#include "request.h"
#include "response.h"

/*
 * A route: a method and a path pattern.  A program keeps its routes in a
 * table of its own elements, each beginning with a struct route, and puts
 * beside it what the route means to it (handler, who may call it, ...).
 */
struct route {
	const char	*method;
	const char	*pattern;
};

enum route_result {
	ROUTE_FOUND,
	ROUTE_NOT_FOUND,
	ROUTE_BAD_METHOD
};

/*
 * Find the route for rq's method and path in table, n elements of size
 * bytes each, every one beginning with a struct route; fills rq->route
 * (pointing into table: cast it back to the element) and the path
 * params.  On ROUTE_BAD_METHOD the allowed methods are set as an error on
 * rs (405 with Allow); on ROUTE_NOT_FOUND a 404 is set.
 */
enum route_result router_match(const void *table, size_t n, size_t size,
	    struct req *, struct resp *);

#endif

/*
 * routes: the route table.  Order is precedence.
 */
#include "app.h"

const struct route app_routes[] = {
	{ "GET",	"/ping",	h_ping,		0,		0 },
	{ "POST",	"/ping",	h_ping_post,	0,		0 },
	{ "GET",	"/healthz",	h_healthz,	0,		0 },
};
const size_t app_nroutes = sizeof(app_routes) / sizeof(app_routes[0]);

/*
 * routes: the route table.  Order is precedence.
 */
#include "app.h"

const struct route app_routes[] = {
	{ "GET",	"/ping",		h_ping,		0,		0 },
	{ "POST",	"/ping",		h_ping_post,	0,		0 },
	{ "GET",	"/healthz",		h_healthz,	0,		0 },
	{ "GET",	"/status",		h_status,	0,		0 },
	{ "POST",	"/api/v1/user/login",	h_login,	0,		RATE_LOGIN },
	{ "POST",	"/api/v1/user/refresh",	h_refresh,	0,		RATE_LOGIN },
	{ "POST",	"/api/v1/user/logout",	h_logout,	ROUTE_AUTH,	RATE_WRITE },
	{ "GET",	"/api/v1/user/me",	h_me,		ROUTE_AUTH,	RATE_READ },
	{ "POST",	"/api/v1/user/decrypt",	h_decrypt,	ROUTE_AUTH,	RATE_WRITE },
	{ "POST",	"/api/v1/user/phone",	h_phone,	ROUTE_AUTH,	RATE_LOGIN },
	{ "GET",	"/api/v1/users",	h_users_list,	ROUTE_CACHED,		RATE_READ },
	{ "POST",	"/api/v1/users",	h_user_create,	ROUTE_AUTH,	RATE_WRITE },
	{ "GET",	"/api/v1/users/{id}",	h_user_get,	ROUTE_CACHED,		RATE_READ },
	{ "PATCH",	"/api/v1/users/{id}",	h_user_patch,	ROUTE_AUTH,	RATE_WRITE },
	{ "DELETE",	"/api/v1/users/{id}",	h_user_delete,	ROUTE_AUTH,	RATE_WRITE },
	{ "GET",	"/api/v1/data/list",	h_items_list,	ROUTE_CACHED,		RATE_READ },
	{ "POST",	"/api/v1/data",		h_item_create,	ROUTE_AUTH,	RATE_WRITE },
	{ "GET",	"/api/v1/data/{id}",	h_item_get,	ROUTE_CACHED,		RATE_READ },
	{ "PATCH",	"/api/v1/data/{id}",	h_item_patch,	ROUTE_AUTH,	RATE_WRITE },
	{ "DELETE",	"/api/v1/data/{id}",	h_item_delete,	ROUTE_AUTH,	RATE_WRITE },
};
const size_t app_nroutes = sizeof(app_routes) / sizeof(app_routes[0]);

/*
 * routes: the route table.  Order is precedence.  Each route says who may
 * call it (ROUTE_PUBLIC, _USER, _ADMIN, _LOOPBACK: see app.h); a handler
 * checks ownership on top where a resource has an owner.
 */
#include "app.h"

#define R(m, p, h, f, rc) \
	{ .method = m, .pattern = p, .fn = h, .flags = f, .rate_class = rc }

const struct route app_routes[] = {
	R("GET",    "/ping",                 h_ping,         ROUTE_PUBLIC,   RATE_NONE),
	R("POST",   "/ping",                 h_ping_post,    ROUTE_PUBLIC,   RATE_NONE),
	R("GET",    "/healthz",              h_healthz,      ROUTE_PUBLIC,   RATE_NONE),
	R("GET",    "/status",               h_status,       ROUTE_LOOPBACK, RATE_NONE),
	R("POST",   "/api/v1/user/login",    h_login,        ROUTE_PUBLIC,   RATE_LOGIN),
	R("POST",   "/api/v1/user/refresh",  h_refresh,      ROUTE_PUBLIC,   RATE_LOGIN),
	R("POST",   "/api/v1/user/logout",   h_logout,       ROUTE_USER,     RATE_WRITE),
	R("GET",    "/api/v1/user/me",       h_me,           ROUTE_USER,     RATE_READ),
	R("DELETE", "/api/v1/user/me",       h_me_delete,    ROUTE_USER,     RATE_WRITE),
	R("POST",   "/api/v1/user/decrypt",  h_decrypt,      ROUTE_USER,     RATE_WRITE),
	R("POST",   "/api/v1/user/phone",    h_phone,        ROUTE_USER,     RATE_LOGIN),
	R("GET",    "/api/v1/users",         h_users_list,   ROUTE_PUBLIC | ROUTE_CACHED, RATE_READ),
	R("POST",   "/api/v1/users",         h_user_create,  ROUTE_ADMIN | ROUTE_IDEMPOTENT, RATE_WRITE),
	R("GET",    "/api/v1/users/{id}",    h_user_get,     ROUTE_PUBLIC | ROUTE_CACHED, RATE_READ),
	R("PATCH",  "/api/v1/users/{id}",    h_user_patch,   ROUTE_USER | ROUTE_IDEMPOTENT, RATE_WRITE),
	R("DELETE", "/api/v1/users/{id}",    h_user_delete,  ROUTE_USER,     RATE_WRITE),
	R("GET",    "/api/v1/data/list",     h_items_list,   ROUTE_PUBLIC | ROUTE_CACHED, RATE_READ),
	R("POST",   "/api/v1/data",          h_item_create,  ROUTE_USER | ROUTE_IDEMPOTENT, RATE_WRITE),
	R("GET",    "/api/v1/data/{id}",     h_item_get,     ROUTE_PUBLIC | ROUTE_CACHED, RATE_READ),
	R("PATCH",  "/api/v1/data/{id}",     h_item_patch,   ROUTE_USER | ROUTE_IDEMPOTENT, RATE_WRITE),
	R("DELETE", "/api/v1/data/{id}",     h_item_delete,  ROUTE_USER | ROUTE_IDEMPOTENT, RATE_WRITE),
};
const size_t app_nroutes = sizeof(app_routes) / sizeof(app_routes[0]);

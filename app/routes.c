/*
 * routes: the route table.  Order is precedence.  Each route says who may
 * call it (ROUTE_PUBLIC, _USER, _ADMIN, _LOOPBACK: see app.h); a handler
 * checks ownership on top where a resource has an owner.  H names a
 * handler; P a read's plan, answered by app/readthrough.c from the cache.
 */
#include "app.h"

#define H(m, p, h, f, rc) { .r = { .method = m, .pattern = p }, \
	.fn = h, .flags = f, .rate = rc }
/* A read whose answer app/readthrough.c finds or builds. */
#define P(m, p, h, f, rc) { .r = { .method = m, .pattern = p }, \
	.plan = h, .flags = f, .rate = rc }

const struct app_route app_routes[] = {
	H("GET",    "/ping",                 h_ping,         ROUTE_PUBLIC,   RATE_NONE),
	H("POST",   "/ping",                 h_ping_post,    ROUTE_PUBLIC,   RATE_NONE),
	H("GET",    "/healthz",              h_healthz,      ROUTE_PUBLIC,   RATE_NONE),
	H("GET",    "/status",               h_status,       ROUTE_LOOPBACK, RATE_NONE),
	H("GET",    "/metrics",              h_metrics,      ROUTE_LOOPBACK, RATE_NONE),
	H("POST",   "/api/v1/user/login",    h_login,        ROUTE_TOKENLESS, RATE_LOGIN),
	H("POST",   "/api/v1/user/refresh",  h_refresh,      ROUTE_TOKENLESS, RATE_LOGIN),
	H("POST",   "/api/v1/user/logout",   h_logout,       ROUTE_USER,     RATE_WRITE),
	H("GET",    "/api/v1/user/me",       h_me,           ROUTE_USER,     RATE_READ),
	H("DELETE", "/api/v1/user/me",       h_me_delete,    ROUTE_USER,     RATE_WRITE),
	H("POST",   "/api/v1/user/decrypt",  h_decrypt,      ROUTE_USER,     RATE_WRITE),
	H("POST",   "/api/v1/user/phone",    h_phone,        ROUTE_USER,     RATE_LOGIN),
	P("GET",    "/api/v1/users",         p_users_list,   ROUTE_PUBLIC,   RATE_READ),
	H("POST",   "/api/v1/users",         h_user_create,  ROUTE_ADMIN | ROUTE_IDEMPOTENT, RATE_WRITE),
	P("GET",    "/api/v1/users/{id}",    p_user_get,     ROUTE_PUBLIC,   RATE_READ),
	H("PATCH",  "/api/v1/users/{id}",    h_user_patch,   ROUTE_USER | ROUTE_IDEMPOTENT | ROUTE_CALLS_OUT, RATE_WRITE),
	H("DELETE", "/api/v1/users/{id}",    h_user_delete,  ROUTE_USER,     RATE_WRITE),
	P("GET",    "/api/v1/data/list",     p_items_list,   ROUTE_PUBLIC,   RATE_READ),
	H("POST",   "/api/v1/data",          h_item_create,  ROUTE_USER | ROUTE_IDEMPOTENT | ROUTE_CALLS_OUT, RATE_WRITE),
	P("GET",    "/api/v1/data/{id}",     p_item_get,     ROUTE_PUBLIC,   RATE_READ),
	H("PATCH",  "/api/v1/data/{id}",     h_item_patch,   ROUTE_USER | ROUTE_IDEMPOTENT | ROUTE_CALLS_OUT, RATE_WRITE),
	H("DELETE", "/api/v1/data/{id}",     h_item_delete,  ROUTE_USER | ROUTE_IDEMPOTENT, RATE_WRITE),
	H("PUT",    "/api/v1/data/{id}/favorite", h_favorite_put, ROUTE_USER, RATE_WRITE),
	H("DELETE", "/api/v1/data/{id}/favorite", h_favorite_delete, ROUTE_USER, RATE_WRITE),
	P("GET",    "/api/v1/data/{id}/favorites", p_favorites_of_item, ROUTE_PUBLIC, RATE_READ),
	P("GET",    "/api/v1/user/favorites", p_favorites_mine, ROUTE_USER,  RATE_READ),
	H("POST",   "/api/v1/messages/subscribe", h_message_subscribe, ROUTE_ADMIN | ROUTE_IDEMPOTENT, RATE_WRITE),
	H("GET",    "/api/v1/messages/{id}", h_message_get, ROUTE_USER,     RATE_READ),
	H("GET",    "/api/v1/moderation",    h_moderation,   ROUTE_ADMIN,    RATE_READ),
	/* WeChat, proven by the message's signature (app/h_push.c). */
	H("GET",    "/api/v1/wechat/push",   h_push_verify,  ROUTE_PUBLIC,   RATE_NONE),
	H("POST",   "/api/v1/wechat/push",   h_push,         ROUTE_PUBLIC,   RATE_NONE),
};
const size_t app_nroutes = sizeof(app_routes) / sizeof(app_routes[0]);

/*
 * app: the responder's per-process context (configuration, connections,
 * the request arena, counters) and the handlers that the route table
 * names.  Everything mutable in a responder hangs off struct app.
 */
#ifndef WX_APP_H
#define WX_APP_H

#include <stddef.h>

#include "arena.h"
#include "cache.h"
#include "config.h"
#include "db.h"
#include "request.h"
#include "response.h"
#include "router.h"

struct app {
	struct config	 cfg;
	struct db	 db;
	struct cache	 cache;
	struct arena	 arena;
	unsigned long	 served;
};

/* The statement table (app/stmts.c): handlers name statements by index. */
enum stmt_id {
	STMT_PING,
	STMT_COUNT
};
extern const struct db_stmt app_stmts[STMT_COUNT];

/* The route table (app/routes.c). */
extern const struct route app_routes[];
extern const size_t app_nroutes;

/* Handlers. */
void	h_ping(struct app *, struct req *, struct resp *);
void	h_ping_post(struct app *, struct req *, struct resp *);
void	h_healthz(struct app *, struct req *, struct resp *);

#endif

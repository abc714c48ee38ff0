/*
 * h_health: liveness and readiness.  /ping answers without touching any
 * dependency; /healthz asks PostgreSQL and Redis and names the one that
 * does not answer.
 */
#include <string.h>

#include "app.h"

/* GET /ping: the responder is alive. */
void
h_ping(struct app *app, struct req *rq, struct resp *rs)
{
	(void)app;
	(void)rq;
	resp_json(rs, 200, "{\"message\":\"pong\"}", "ok");
}

/* POST /ping {"echo": "..."}: the body path, end to end. */
void
h_ping_post(struct app *app, struct req *rq, struct resp *rs)
{
	struct json_object	*body;
	const char		*echo;
	struct buf		*b;

	(void)app;
	if (req_json_body(rq, rs, &body) == -1 ||
	    req_json_string(rs, body, "echo", &echo) == -1)
		return;
	b = resp_begin(rs, 200);
	buf_adds(b, "{\"message\":\"pong\",\"echo\":");
	buf_json_str(b, echo, strlen(echo));
	buf_addc(b, '}');
	resp_end(rs, "ok");
}

/*
 * GET /status: the pool's scoreboard and the WeChat circuit breaker, for
 * loopback clients only (the route says so; nginx allows 127.0.0.1 alone
 * as well).
 */
void
h_status(struct app *app, struct req *rq, struct resp *rs)
{
	(void)rq;
	pool_status_json(app->pool, resp_begin(rs, 200));
	resp_end(rs, "ok");
	resp_header(rs, "Cache-Control", "no-store");
}

/* GET /healthz: 200 when PostgreSQL and Redis answer, else 503 naming them. */
void
h_healthz(struct app *app, struct req *rq, struct resp *rs)
{
	PGresult	*res;
	int		 pg_ok, redis_ok;
	const char	*data;

	(void)rq;
	pg_ok = db_exec(&app->db, STMT_PING, NULL, &res) == DB_OK;
	PQclear(res);
	redis_ok = cache_ping(&app->cache) == CACHE_OK;
	data = arena_printf(rs->a, "{\"postgres\":\"%s\",\"redis\":\"%s\"}",
	    pg_ok ? "ok" : "unavailable", redis_ok ? "ok" : "unavailable");
	if (pg_ok && redis_ok)
		resp_json(rs, 200, data, "ok");
	else if (!pg_ok)
		resp_error_data(rs, API_DB_UNAVAILABLE, data,
		    redis_ok ? "postgres is unavailable" :
		    "postgres and redis are unavailable");
	else
		resp_error_data(rs, API_CACHE_UNAVAILABLE, data,
		    "redis is unavailable");
}

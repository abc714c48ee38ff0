/*
 * h_health: liveness and readiness.  /ping answers without touching any
 * dependency; /healthz asks PostgreSQL and Redis and names the one that
 * does not answer.
 */
#include <stdlib.h>
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
 * loopback clients and those status_allow names only (the route says so;
 * nginx allows loopback alone as well, unless told more).
 */
void
h_status(struct app *app, struct req *rq, struct resp *rs)
{
	struct buf	*b = resp_begin(rs, 200);

	(void)rq;
	app_status_json(b, app->pool, &app->cache, &app->db);
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

/* route="...",method="..." for route index r (the last: none). */
static const char *
route_labels(struct arena *a, size_t r)
{
	struct buf	b;

	buf_init(&b, a, 64);
	metrics_label(&b, "route", r < app_nroutes ?
	    app_routes[r].r.pattern : "none");
	metrics_label(&b, "method", r < app_nroutes ?
	    app_routes[r].r.method : "none");
	return buf_cstr(&b);
}

/*
 * The job queue's figures, from Redis (a few round trips per scrape);
 * none while Redis is down.
 */
static void
jobs_metrics(struct app *app, struct buf *b)
{
	struct job_stats	s;
	PGresult		*res;

	if (job_stats(&app->cache, &s) != CACHE_OK)
		return;
	metrics_family(b, "wxapp_jobs", "gauge",
	    "Background jobs, by where they are.");
	metrics_sample(b, "wxapp_jobs", "state=\"queued\"",
	    (uint64_t)s.queued);
	metrics_sample(b, "wxapp_jobs", "state=\"pending\"",
	    (uint64_t)s.pending);
	metrics_sample(b, "wxapp_jobs", "state=\"retrying\"",
	    (uint64_t)s.retrying);
	metrics_sample(b, "wxapp_jobs", "state=\"dead\"", (uint64_t)s.dead);
	if (db_exec(&app->db, STMT_OUTBOX_COUNT, NULL, &res) == DB_OK) {
		metrics_sample(b, "wxapp_jobs", "state=\"outbox\"",
		    strtoull(PQgetvalue(res, 0, ONLY_COL), NULL, 10));
		PQclear(res);
	}
	metrics_family(b, "wxapp_jobs_oldest_age_seconds", "gauge",
	    "Age of the oldest job in the queue (0: none).");
	metrics_sample_f(b, "wxapp_jobs_oldest_age_seconds", NULL,
	    (double)s.oldest_ms / 1000.0);
}

/*
 * GET /metrics: the pool's figures in Prometheus's text format, from the
 * shared memory every responder counts into.  Loopback and status_allow
 * only, like /status.
 */
void
h_metrics(struct app *app, struct req *rq, struct resp *rs)
{
	static const char *const lookups[LOOKUP_COUNT] = {
		[LOOKUP_NEAR] = "near", [LOOKUP_REDIS] = "redis",
		[LOOKUP_MISS] = "miss", [LOOKUP_UNAVAILABLE] = "unavailable"
	};
	static const char *const classes[POOL_RATE_CLASSES] = {
		[RATE_NONE] = "none", [RATE_LOGIN] = "login",
		[RATE_READ] = "read", [RATE_WRITE] = "write"
	};
	static const char *const states[BREAKER_NSTATES] = {
		[BREAKER_CLOSED] = "closed", [BREAKER_OPEN] = "open",
		[BREAKER_HALF_OPEN] = "half_open"
	};
	struct pool_metrics	*m = &app->pool->metrics;
	struct buf		 b, l;
	const char		*rl;
	uint64_t		 v, in_flight, capacity;
	size_t			 r;
	int			 c, i, s, busy, idle;

	if (!app->cfg.metrics) {
		resp_error(rs, API_NOT_FOUND, "metrics are off (metrics = off)");
		return;
	}
	buf_init(&b, rq->a, 16384);
	metrics_family(&b, "wxapp_requests_total", "counter",
	    "Requests answered, by route pattern, method and status.");
	for (r = 0; r <= app_nroutes; r++) {
		rl = NULL;
		for (c = 0; c < POOL_CODES; c++) {
			v = atomic_load_explicit(&m->requests[r][c],
			    memory_order_relaxed);
			if (v == 0)
				continue;
			if (rl == NULL)
				rl = route_labels(rq->a, r);
			buf_init(&l, rq->a, 96);
			buf_adds(&l, rl);
			metrics_label(&l, "code", pool_code_of(c) != 0 ?
			    arena_printf(rq->a, "%d", pool_code_of(c)) : "other");
			metrics_sample(&b, "wxapp_requests_total", buf_cstr(&l), v);
		}
	}
	metrics_family(&b, "wxapp_request_duration_seconds", "histogram",
	    "Time from the request's arrival to its answer, by route.");
	for (r = 0; r <= app_nroutes; r++)
		if (atomic_load_explicit(&m->duration[r].count,
		    memory_order_relaxed) > 0)
			metrics_hist_samples(&b, "wxapp_request_duration_seconds",
			    route_labels(rq->a, r), &m->duration[r]);
	metrics_family(&b, "wxapp_cache_lookups_total", "counter",
	    "Cached reads, by where the answer came from.");
	for (i = 0; i < LOOKUP_COUNT; i++)
		metrics_sample(&b, "wxapp_cache_lookups_total",
		    arena_printf(rq->a, "result=\"%s\"", lookups[i]),
		    atomic_load_explicit(&m->lookups[i], memory_order_relaxed));
	metrics_family(&b, "wxapp_ratelimit_rejected_total", "counter",
	    "Requests refused with 429, by rate-limit class.");
	for (i = RATE_LOGIN; i < RATE_NCLASSES; i++)
		metrics_sample(&b, "wxapp_ratelimit_rejected_total",
		    arena_printf(rq->a, "class=\"%s\"", classes[i]),
		    atomic_load_explicit(&m->rejected[i], memory_order_relaxed));
	metrics_family(&b, "wxapp_breaker_state", "gauge",
	    "Circuit breaker: 0 closed, 1 open, 2 half-open.");
	for (i = 0; i < DEP_COUNT; i++)
		metrics_sample(&b, "wxapp_breaker_state", arena_printf(rq->a,
		    "dependency=\"%s\"", pool_dep_name(i)),
		    (uint64_t)app->pool->breakers[i].state);
	metrics_family(&b, "wxapp_breaker_transitions_total", "counter",
	    "Changes of a circuit breaker's state, by the state entered.");
	for (i = 0; i < DEP_COUNT; i++)
		for (s = 0; s < BREAKER_NSTATES; s++)
			metrics_sample(&b, "wxapp_breaker_transitions_total",
			    arena_printf(rq->a, "dependency=\"%s\",to=\"%s\"",
			    pool_dep_name(i), states[s]), atomic_load_explicit(
			    &m->deps[i].entered[s], memory_order_relaxed));
	metrics_family(&b, "wxapp_dependency_duration_seconds", "histogram",
	    "Calls to PostgreSQL, Redis and WeChat that went out.");
	for (i = 0; i < DEP_COUNT; i++)
		metrics_hist_samples(&b, "wxapp_dependency_duration_seconds",
		    arena_printf(rq->a, "dependency=\"%s\"", pool_dep_name(i)),
		    &m->deps[i].latency);
	metrics_family(&b, "wxapp_dependency_errors_total", "counter",
	    "Failed calls, by dependency and kind (slow: succeeded, but "
	    "too close to the timeout).");
	for (i = 0; i < DEP_COUNT; i++) {
		metrics_sample(&b, "wxapp_dependency_errors_total",
		    arena_printf(rq->a, "dependency=\"%s\",kind=\"failed\"",
		    pool_dep_name(i)), atomic_load_explicit(&m->deps[i].failed,
		    memory_order_relaxed));
		metrics_sample(&b, "wxapp_dependency_errors_total",
		    arena_printf(rq->a, "dependency=\"%s\",kind=\"timeout\"",
		    pool_dep_name(i)), atomic_load_explicit(
		    &m->deps[i].timed_out, memory_order_relaxed));
		metrics_sample(&b, "wxapp_dependency_errors_total",
		    arena_printf(rq->a, "dependency=\"%s\",kind=\"slow\"",
		    pool_dep_name(i)), atomic_load_explicit(
		    &m->deps[i].slow, memory_order_relaxed));
		metrics_sample(&b, "wxapp_dependency_errors_total",
		    arena_printf(rq->a, "dependency=\"%s\",kind=\"rejected\"",
		    pool_dep_name(i)), atomic_load_explicit(
		    &m->deps[i].rejected, memory_order_relaxed));
	}
	shm_lock(&app->shm);
	scoreboard_count(&app->pool->sb, &busy, &idle);
	scoreboard_load(&app->pool->sb, &in_flight, &capacity);
	shm_unlock(&app->shm);
	metrics_family(&b, "wxapp_pool_responders", "gauge",
	    "Responders of the host's pools, by state (busy: one request "
	    "in flight or more).");
	metrics_sample(&b, "wxapp_pool_responders", "state=\"idle\"",
	    (uint64_t)idle);
	metrics_sample(&b, "wxapp_pool_responders", "state=\"busy\"",
	    (uint64_t)busy);
	metrics_family(&b, "wxapp_pool_requests_in_flight", "gauge",
	    "Requests the host's responders hold now (this scrape "
	    "included).");
	metrics_sample(&b, "wxapp_pool_requests_in_flight", NULL, in_flight);
	metrics_family(&b, "wxapp_pool_requests_capacity", "gauge",
	    "Requests the host's responders can hold at once: -C each in "
	    "the concurrent loop, 1 in libfcgi's.");
	metrics_sample(&b, "wxapp_pool_requests_capacity", NULL, capacity);
	metrics_family(&b, "wxapp_responder_restarts_total", "counter",
	    "Responders that exited (recycled, crashed, killed) and were "
	    "started again by their supervisor.");
	metrics_sample(&b, "wxapp_responder_restarts_total", NULL,
	    atomic_load_explicit(&m->restarts, memory_order_relaxed));
	metrics_family(&b, "wxapp_spans_exported_total", "counter",
	    "Spans that wxapp-otlp delivered to the collector.");
	metrics_sample(&b, "wxapp_spans_exported_total", NULL,
	    atomic_load_explicit(&m->spans_exported, memory_order_relaxed));
	metrics_family(&b, "wxapp_spans_dropped_total", "counter",
	    "Spans of sampled traces dropped: a responder or the worker "
	    "could not hand them over, wxapp-otlp's queue was full, the "
	    "collector failed, or a request made more than it keeps (cap).");
	for (i = 0; i < SPANS_DROP_COUNT; i++)
		metrics_sample(&b, "wxapp_spans_dropped_total",
		    arena_printf(rq->a, "reason=\"%s\"", pool_span_drop_name(i)),
		    atomic_load_explicit(&m->spans_dropped[i],
		    memory_order_relaxed));
	jobs_metrics(app, &b);
	metrics_family(&b, "wxapp_build_info", "gauge",
	    "The running version.");
	metrics_sample(&b, "wxapp_build_info", "version=\"" PACKAGE_VERSION
	    "\"", 1);
	resp_raw(rs, 200, b.p, b.len);
	rs->content_type = "text/plain; version=0.0.4; charset=utf-8";
	resp_header(rs, "Cache-Control", "no-store");
}

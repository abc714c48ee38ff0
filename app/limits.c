/*
 * limits: rate limiting by route class and identity.  The identity is the
 * caller (auth_identify) when its access token is valid and its session
 * live, else the client address nginx passes (REMOTE_ADDR).  The login
 * class is always limited by address: a token, even a valid one, must
 * not buy a drained address fresh attempts.  Every answer of a limited
 * route carries RateLimit-Limit and RateLimit-Remaining; a 429 adds
 * RateLimit-Reset and Retry-After.
 */
#include <string.h>

#include "app.h"
#include "log.h"

void
limits_init(struct app *app)
{
	const struct config	*c = &app->cfg;

	ratelimit_init(&app->rl, &app->cache, &app->shm, app->pool->leases,
	    c->ratelimit_lease);
	app->rates[RATE_LOGIN] = (struct rl_class){ "login",
	    c->ratelimit_login_rate, c->ratelimit_login_period,
	    c->ratelimit_login_burst };
	app->rates[RATE_READ] = (struct rl_class){ "read",
	    c->ratelimit_read_rate, c->ratelimit_read_period,
	    c->ratelimit_read_burst };
	app->rates[RATE_WRITE] = (struct rl_class){ "write",
	    c->ratelimit_write_rate, c->ratelimit_write_period,
	    c->ratelimit_write_burst };
}

/* "u:<user id>" for an identified caller, else "a:<address>". */
static const char *
identity(struct app *app, const struct req *rq, enum rate_class rc)
{
	struct buf	b;

	buf_init(&b, rq->a, 48);
	if (app->who.user_id != 0 && rc != RATE_LOGIN) {
		buf_adds(&b, "u:");
		buf_addll(&b, app->who.user_id);
	} else {
		buf_adds(&b, "a:");
		buf_adds(&b, rq->remote_addr);
	}
	return buf_cstr(&b);
}

void
limits_prepare(struct app *app, const struct req *rq, struct app_limit *l)
{
	enum rate_class	rc = app_route_of(rq)->rate;

	l->sent = 0;
	l->on = app->cfg.ratelimit && rc != RATE_NONE;
	if (l->on)
		(void)ratelimit_prepare(&app->rl, rq->a, &app->rates[rc],
		    identity(app, rq, rc), &l->p);
}

struct cache_call *
limits_ride(struct app_limit *l)
{
	if (!l->on || l->p.leased || l->sent)
		return NULL;
	l->sent = 1;
	return &l->p.call;
}

int
limits_decide(struct app *app, struct req *rq, struct resp *rs,
    struct app_limit *l)
{
	struct rl_result	 r;
	struct cache_call	*call;

	if (!l->on)
		return 0;
	if ((call = limits_ride(l)) != NULL)
		cache_eval_calls(&app->cache, call, 1);
	ratelimit_finish(&app->rl, &l->p, &r);
	if (r.allowed) {
		resp_header_ll(rs, "RateLimit-Limit", r.limit);
		resp_header_ll(rs, "RateLimit-Remaining", r.remaining);
		return 0;
	}
	if (app->cfg.metrics)
		metrics_add(&app->pool->metrics.rejected[app_route_of(rq)->rate],
		    1);
	/* Whatever was answered so far (a 400, a 401) gives way. */
	resp_init(rs, rq->a);
	resp_header_ll(rs, "RateLimit-Limit", r.limit);
	resp_header_ll(rs, "RateLimit-Remaining", r.remaining);
	resp_header_ll(rs, "RateLimit-Reset", r.reset_s);
	resp_header_ll(rs, "Retry-After",
	    r.retry_after_s > 0 ? r.retry_after_s : 1);
	resp_error(rs, API_RATE_LIMITED, "too many requests: %s limit "
	    "reached; retry later", app->rates[app_route_of(rq)->rate].name);
	return -1;
}

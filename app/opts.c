/*
 * opts: the options of each lib module, read from the configuration.
 * lib/ knows nothing of struct config but its parser: this is where the
 * program hands each module the few values it needs.
 */
#include "app.h"

void
app_guards(const struct config *c, struct shm *shm, struct pool *pool,
    struct guard g[DEP_COUNT])
{
	int	i;

	for (i = 0; i < DEP_COUNT; i++) {
		g[i].name = pool_dep_name(i);
		g[i].shm = shm;
		g[i].br = &pool->breakers[i];
		g[i].stats = c->metrics ? &pool->metrics.deps[i] : NULL;
		g[i].p.window_s = c->breaker_window_s;
		g[i].p.min_calls = c->breaker_min_calls;
		g[i].p.error_pct = c->breaker_error_pct;
		g[i].p.half_open_calls = c->breaker_half_open_calls;
		g[i].p.timeouts = c->breaker_timeouts;
		/* A store is tried again soon: recovery within a second. */
		g[i].p.open_ms = i == DEP_WECHAT ? c->breaker_open_ms :
		    c->breaker_store_open_ms;
	}
	/*
	 * The longest a store's call (a trial) can take: connect, then run.
	 * A store's trial holds its whole process, so no other is let
	 * through before that.
	 */
	g[DEP_POSTGRES].p.trial_ms = c->pg_connect_timeout * 1000 >
	    c->pg_statement_timeout_ms + DB_DEADLINE_MARGIN_MS ?
	    c->pg_connect_timeout * 1000 :
	    c->pg_statement_timeout_ms + DB_DEADLINE_MARGIN_MS;
	g[DEP_REDIS].p.trial_ms = c->redis_connect_timeout_ms >
	    c->redis_command_timeout_ms ? c->redis_connect_timeout_ms :
	    c->redis_command_timeout_ms;
	/*
	 * A WeChat trial holds only its own request (the concurrent loop
	 * waits for it without blocking): another goes every open_ms even
	 * while one hangs, so that a WeChat that came back is used again
	 * within open_ms, not after the hung trial's timeout.
	 */
	g[DEP_WECHAT].p.trial_ms = 0;
	/* A success this close to the call's timeout counts as a timeout. */
	g[DEP_POSTGRES].slow_us = c->breaker_slow_pct *
	    c->pg_statement_timeout_ms * 10;
	g[DEP_REDIS].slow_us = c->breaker_slow_pct *
	    c->redis_command_timeout_ms * 10;
	g[DEP_WECHAT].slow_us = c->breaker_slow_pct * c->wechat_timeout_ms * 10;
}

void
app_db_opts(const struct config *c, struct guard *g, struct db_opts *o)
{
	*o = (struct db_opts){
		.conninfo = c->pg_conninfo,
		.connect_timeout_ms = c->pg_connect_timeout * 1000,
		.statement_timeout_ms = c->pg_statement_timeout_ms,
		.application_name = "wxapp",
		.guard = g
	};
}

void
app_cache_opts(const struct config *c, struct guard *g, struct cache_opts *o)
{
	o->addr = c->redis_addr;
	o->password = c->redis_password;
	o->connect_timeout_ms = c->redis_connect_timeout_ms;
	o->command_timeout_ms = c->redis_command_timeout_ms;
	o->guard = g;
}

void
app_wechat_opts(const struct config *c, struct guard *g,
    struct wechat_opts *o)
{
	/* Calls block (no perform or pause hook) unless a loop sets them. */
	*o = (struct wechat_opts){
		.appid = c->wechat_appid,
		.secret = c->wechat_secret,
		.api_base = c->wechat_api_base,
		.token_api = c->wechat_token_api,
		.connect_timeout_ms = c->wechat_connect_timeout_ms,
		.timeout_ms = c->wechat_timeout_ms,
		.guard = g
	};
}

void
app_token_opts(const struct config *c, struct token_opts *o)
{
	o->kid = c->jwt_kid;
	o->secret = c->jwt_secret;
	o->prev_kid = c->jwt_prev_kid;
	o->prev_secret = c->jwt_prev_secret;
	o->issuer = c->jwt_issuer;
	o->audience = c->jwt_audience;
	o->client_id = c->wechat_appid;
	o->leeway = c->jwt_leeway;
	o->max_ttl = c->access_token_ttl;
}

void
app_job_opts(const struct config *c, struct job_opts *o)
{
	o->claim_idle_ms = c->job_claim_idle_ms;
	o->retry_base_ms = c->job_retry_base_ms;
	o->retry_max = c->job_retry_max;
	o->dedup_ttl_s = c->job_dedup_ttl;
}

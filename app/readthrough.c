/*
 * readthrough: the cached read path.  A read route's plan names the
 * shared answer it wants; app_fetch looks for it before the rate limit is
 * decided (so the limit's call to Redis rides along), app_read answers.
 * A hit is answered from the responder's own copy of the entry
 * (nearcache) when it has a valid one, else from the entry Redis holds
 * (body bytes, ETag, Last-Modified), with no PostgreSQL query and no
 * serialization.  On a miss one responder rebuilds under a lock while the
 * others wait for its entry (stampede protection); with Redis down every
 * read goes to PostgreSQL (degraded, counted).  Writes go through
 * app_write, which invalidates what they change.
 */
#include <string.h>

#include "app.h"
#include "data.h"
#include "log.h"
#include "mpack.h"
#include "shm.h"
#include "util.h"

#define WAIT_STEP_US	5000

#define MSGPACK_KEY	"%s~mp"	/* the key of a MessagePack entry */

void
app_negotiate(struct req *rq, struct read_plan *rp)
{
	int	mp, xmp;

	/* No Accept header (the common case): JSON, at once. */
	if ((rp->msgpack = rq->accept != NULL) == 0)
		return;
	mp = req_accept_q(rq, MPACK_CONTENT_TYPE);
	xmp = req_accept_q(rq, "application/x-msgpack");
	if (xmp > mp)
		mp = xmp;
	rp->msgpack = mp > 0 && mp > req_accept_q(rq, "application/json");
	if (rp->msgpack && rp->key != NULL)
		rp->key = arena_printf(rq->a, MSGPACK_KEY, rp->key);
}

/*
 * Build the entry from PostgreSQL, as MessagePack when rp asks for it
 * (converted once here: every hit then answers the stored bytes); -1
 * with the error set on rs.
 */
static int
rebuild(struct app *app, struct resp *rs, const struct read_plan *rp,
    const void *arg, struct arena *a, struct hc_entry *e)
{
	enum db_status	st;
	struct buf	b;

	if ((st = rp->build(&app->db, a, arg, e)) != DB_OK) {
		app_db_error(app, rs, st, "read");
		return -1;
	}
	if (!rp->msgpack)
		return 0;
	buf_init(&b, a, e->body_len);
	if (mpack_from_json(&b, e->body, e->body_len) == -1) {
		log_error("read: the answer is not JSON: no MessagePack of it");
		resp_error(rs, API_INTERNAL, "internal error");
		return -1;
	}
	e->body = b.p;
	e->body_len = b.len;
	httpcache_set_etag(e);
	return 0;
}

/* The headers every answer of a cached read has, by representation. */
static void
represent(struct resp *rs, const struct read_plan *rp)
{
	if (rp->msgpack && rs->status != 304)
		rs->content_type = MPACK_CONTENT_TYPE;
	resp_header_str(rs, "Vary", "Accept");
}

/*
 * Answer from an entry built now for this caller alone (a private view):
 * conditional GET as for cached answers, Cache-Control private, and never
 * stored where another caller could be answered from it.  An error stays
 * JSON, whatever the client accepts.
 */
static void
private_read(struct app *app, struct req *rq, struct resp *rs,
    const struct read_plan *rp, const void *arg)
{
	struct hc_entry	e = { 0 };

	if (rebuild(app, rs, rp, arg, rq->a, &e) == -1)
		return;
	httpcache_answer(rq, rs, &e, "private, no-cache");
	represent(rs, rp);
}

void
app_fetch(struct app *app, struct req *rq, struct read_plan *rp,
    struct app_limit *lim)
{
	struct hc_pending	 hc;
	struct cache_call	 calls[2];
	struct cache_call	*ride;
	size_t			 n = 1;

	rp->copy = NULL;
	rp->near = nearcache_sync(&app->near, &app->cache);
	if (rp->near) {
		if ((rp->copy = nearcache_get(&app->near, rq->a, rp->coll,
		    rp->key)) != NULL)
			return;
		/* Before the fetch: a write from now on outdates the copy. */
		rp->mark = nearcache_mark(&app->near, rp->coll);
	}
	/*
	 * The rate limit's call rides along with the cache read: on a hit,
	 * one round trip to Redis is all the request costs.
	 */
	httpcache_prepare(rq->a, app_collections[rp->coll], rp->key, &hc);
	calls[0] = hc.call;
	if ((ride = limits_ride(lim)) != NULL)
		calls[n++] = *ride;
	cache_eval_calls(&app->cache, calls, n);
	hc.call = calls[0];
	if (ride != NULL)
		*ride = calls[1];
	rp->found = httpcache_finish(&hc, rq->a, &rp->e, &rp->vkey,
	    &rp->changed);
}

/* The entry another responder built, kept here too; 0. */
static int
built(struct app *app, struct read_plan *rp)
{
	if (rp->near)
		nearcache_put(&app->near, rp->coll, rp->key, rp->mark, &rp->e);
	return 0;
}

/* A shared read that app_fetch did not find: build it, once per key. */
static int
fill(struct app *app, struct req *rq, struct resp *rs, struct read_plan *rp)
{
	struct hc_entry	*e = &rp->e;
	int64_t		 deadline;
	int		 locked;

	locked = httpcache_lock(&app->cache, rq->a, rp->vkey);
	if (locked == 0) {
		/*
		 * Another request is rebuilding: wait for its entry, letting
		 * the process's other requests run (that one among them).
		 */
		deadline = util_mono_us() + app->cfg.cache_lock_wait_ms * 1000;
		while (util_mono_us() < deadline) {
			wechat_pause(&app->wx, WAIT_STEP_US);
			if (httpcache_get_exact(&app->cache, rq->a, rp->vkey,
			    e) == HC_HIT)
				return built(app, rp);
		}
		log_warn("cache: waited %lld ms for %s; reading myself",
		    app->cfg.cache_lock_wait_ms, rp->vkey);
	} else if (locked == 1 && httpcache_get_exact(&app->cache, rq->a,
	    rp->vkey, e) == HC_HIT) {
		/*
		 * Built by the holder of the lock before ours, between our
		 * miss and our lock: not built twice.
		 */
		httpcache_unlock(&app->cache, rq->a, rp->vkey);
		return built(app, rp);
	}
	if (rebuild(app, rs, rp, rp->arg, rq->a, e) == -1) {
		if (locked == 1)
			httpcache_unlock(&app->cache, rq->a, rp->vkey);
		return -1;
	}
	if (rp->is_list && rp->changed > e->last_modified)
		e->last_modified = rp->changed;
	if (httpcache_put(&app->cache, rq->a, rp->vkey, e, e->status == 200 ?
	    app->cfg.cache_ttl : app->cfg.cache_negative_ttl) == CACHE_OK &&
	    rp->near)
		nearcache_put(&app->near, rp->coll, rp->key, rp->mark, e);
	if (locked == 1)
		httpcache_unlock(&app->cache, rq->a, rp->vkey);
	return 0;
}

void
app_read(struct app *app, struct req *rq, struct resp *rs,
    struct read_plan *rp)
{
	if (rp->key == NULL) {
		private_read(app, rq, rs, rp, rp->arg);
		return;
	}
	if (rp->copy != NULL) {
		if (app->cfg.metrics)
			metrics_add(&app->pool->metrics.lookups[LOOKUP_NEAR], 1);
		httpcache_answer(rq, rs, rp->copy, app->cfg.http_cache_control);
		goto shown;
	}
	if (app->cfg.metrics)
		metrics_add(&app->pool->metrics.lookups[rp->found == HC_HIT ?
		    LOOKUP_REDIS : rp->found == HC_MISS ? LOOKUP_MISS :
		    LOOKUP_UNAVAILABLE], 1);
	switch (rp->found) {
	case HC_HIT:
		if (rp->near)
			nearcache_put(&app->near, rp->coll, rp->key, rp->mark,
			    &rp->e);
		break;
	case HC_UNAVAILABLE:
		app->degraded_reads++;
		if (rebuild(app, rs, rp, rp->arg, rq->a, &rp->e) == -1)
			return;
		/*
		 * Redis hangs, but its connection still vouches for the copies
		 * (nothing reported, nothing lost): what PostgreSQL answered is
		 * as good a copy as one from Redis, and spares it the next
		 * reads until a write.
		 */
		if (rp->near)
			nearcache_put(&app->near, rp->coll, rp->key, rp->mark,
			    &rp->e);
		break;
	case HC_MISS:
		if (fill(app, rq, rs, rp) == -1)
			return;
		break;
	}
	httpcache_answer(rq, rs, &rp->e, app->cfg.http_cache_control);
shown:
	/* What does not show to everyone may show to its owner. */
	if (rs->status == 404 && rp->mine != NULL) {
		private_read(app, rq, rs, rp, rp->mine);
		return;
	}
	represent(rs, rp);
}

PGresult *
app_write(struct app *app, struct resp *rs, size_t stmt,
    const char *const *params, enum app_coll coll, const char *what,
    long long id, const char *conflict)
{
	PGresult	*res;
	enum db_status	 st;

	if ((st = db_exec(&app->db, stmt, params, &res)) != DB_OK) {
		if (st == DB_ERROR && conflict != NULL &&
		    strcmp(app->db.sqlstate, "23505") == 0)
			resp_error(rs, API_CONFLICT, "%s", conflict);
		else
			app_db_error(app, rs, st, what);
		return NULL;
	}
	if (PQntuples(res) == 0 && strcmp(PQcmdTuples(res), "0") == 0) {
		PQclear(res);
		resp_error(rs, API_NOT_FOUND, "%s %lld not found", what, id);
		return NULL;
	}
	app_invalidate(app, coll);
	return res;
}

void
app_refuse(struct app *app, struct req *rq, struct resp *rs, size_t stmt,
    long long id, const char *what, int status_col, const char *rule)
{
	const char	*params[1];
	PGresult	*res;
	enum db_status	 st;
	int		 seen;

	params[0] = arena_printf(rq->a, "%lld", id);
	if ((st = db_exec(&app->db, stmt, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, what);
		return;
	}
	seen = PQntuples(res) > 0 && (status_col < 0 ||
	    strcmp(PQgetvalue(res, 0, status_col), "published") == 0);
	PQclear(res);
	if (seen)
		resp_error(rs, API_FORBIDDEN, "%s", rule);
	else
		resp_error(rs, API_NOT_FOUND, "%s %lld not found", what, id);
}

void
app_answer_row(struct resp *rs, int status, PGresult *res,
    void (*json)(struct buf *, PGresult *, int))
{
	struct buf	*b = resp_begin(rs, status);

	json(b, res, 0);
	resp_end(rs, status == 201 ? "created" : "ok");
}

void
app_invalidate(struct app *app, enum app_coll coll)
{
	if (app->txn_depth > 0) {
		app->held |= 1u << coll;
		return;
	}
	/*
	 * Every responder of this host drops its copies before we answer.
	 * When Redis missed the write, its entries stay stale until the
	 * reconnect bumps every collection (httpcache_recover).
	 */
	if (data_invalidate(&app->cache, app->pool->changes, coll) == -1) {
		scoreboard_stale_write(&app->pool->sb);
		log_warn("cache: %s changed while redis is unavailable; "
		    "invalidated on reconnect", app_collections[coll]);
	}
}

void
app_invalidate_held(struct app *app)
{
	unsigned	held = app->held;
	int		coll;

	app->held = 0;
	for (coll = 0; coll < COLL_COUNT; coll++)
		if (held & (1u << coll))
			app_invalidate(app, coll);
}

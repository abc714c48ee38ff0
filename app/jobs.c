/*
 * jobs: how a request (or the worker) hands work to wxapp-worker.  A
 * responder only enqueues -- one round trip to Redis (lib/job), never a
 * WeChat call -- inside the transaction of the change the job belongs
 * to.  When Redis is down, a job of a type that must not be lost is
 * written to the outbox table in that same transaction instead, and the
 * worker moves it into the stream when Redis is back: either the change
 * and its job are both committed, or neither is.
 *
 * Subscribe messages (jobs_message) are such jobs: the message's row, its
 * hourly limits and its job are one transaction.  The jobs_* functions
 * take their connections in a struct jobs_ctx, so that the responder and
 * the worker share them; app_* answer a request with their outcome.
 */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "keys.h"
#include "log.h"

/* Job types whose jobs take the outbox when Redis is down. */
static const char *const durable_types[] = { JOB_SUBSCRIBE, JOB_RECHECK,
	NULL };

static int
durable(const char *type)
{
	size_t	i;

	for (i = 0; durable_types[i] != NULL; i++)
		if (strcmp(durable_types[i], type) == 0)
			return 1;
	return 0;
}

enum jobs_result
jobs_enqueue(struct jobs_ctx *x, struct job *j, int *dup)
{
	struct job_opts		 jo;
	const char		*params[4];
	PGresult		*res;
	enum cache_status	 cst;

	app_job_opts(x->cfg, &jo);
	*dup = 0;
	if (j->trace == NULL) {
		j->trace = x->trace;
		j->tracestate = x->tracestate;
	}
	if ((cst = job_enqueue(x->cache, &jo, x->a, j, 0, dup)) == CACHE_OK)
		return JOBS_OK;
	if (cst == CACHE_ERROR)
		log_error("job %s: enqueue: %s", j->type, x->cache->errmsg);
	if (!durable(j->type))
		return JOBS_QUEUE_DOWN;
	params[0] = j->id;
	params[1] = j->type;
	params[2] = j->payload;
	params[3] = j->key;
	if ((x->dbst = db_exec(x->db, STMT_OUTBOX_ADD, params, &res)) !=
	    DB_OK)
		return JOBS_DB;
	PQclear(res);
	log_warn("job %s %s: redis unavailable, kept in the outbox", j->type,
	    j->id);
	return JOBS_OK;
}

/*
 * Over an hourly limit of message m?  JOBS_OVER_LIMIT naming it in
 * x->limit (its key) and x->limit_max; JOBS_DB; or JOBS_OK.
 */
static enum jobs_result
over_limits(struct jobs_ctx *x, const struct message *m)
{
	const struct {
		long long	 max;
		enum limits_col	 col;
		const char	*per, *key;
	} lim[2] = {
		{ .max = x->cfg->message_user_hourly, .col = ML_USER,
		    .per = "user", .key = "message_user_hourly" },
		{ .max = x->cfg->message_template_hourly, .col = ML_TEMPLATE,
		    .per = "template", .key = "message_template_hourly" }
	};
	const char	*params[2] = { m->openid, m->template_id };
	PGresult	*res;
	long long	 n[2];
	int		 i;

	if (lim[0].max == 0 && lim[1].max == 0)
		return JOBS_OK;
	if ((x->dbst = db_exec(x->db, STMT_MSG_LIMITS, params, &res)) != DB_OK)
		return JOBS_DB;
	for (i = 0; i < 2; i++)
		n[i] = strtoll(PQgetvalue(res, 0, lim[i].col), NULL, 10);
	PQclear(res);
	for (i = 0; i < 2; i++)
		if (lim[i].max > 0 && n[i] >= lim[i].max) {
			x->limit = lim[i].key;
			x->limit_per = lim[i].per;
			x->limit_max = lim[i].max;
			return JOBS_OVER_LIMIT;
		}
	return JOBS_OK;
}

enum jobs_result
jobs_message(struct jobs_ctx *x, struct message *m)
{
	struct job		 j = { .type = JOB_SUBSCRIBE, .payload = m->body,
	    .key = m->key != NULL ? m->key : "" };
	char			*id;
	const char		*params[5];
	PGresult		*res;
	enum jobs_result	 r;
	int			 dup;

	if ((r = over_limits(x, m)) != JOBS_OK)
		return r;
	id = arena_alloc(x->a, JOB_ID_LEN + 1);
	if (job_new_id(id) == -1)
		return JOBS_INTERNAL;
	j.id = id;
	/* The row first: the worker finds it, once committed. */
	params[0] = id;
	params[1] = m->sender_id > 0 ? arena_printf(x->a, "%lld",
	    m->sender_id) : NULL;
	params[2] = m->user_id > 0 ? arena_printf(x->a, "%lld",
	    m->user_id) : NULL;
	params[3] = m->openid;
	params[4] = m->template_id;
	if ((x->dbst = db_exec(x->db, STMT_MSG_CREATE, params, &res)) != DB_OK)
		return JOBS_DB;
	PQclear(res);
	if ((r = jobs_enqueue(x, &j, &dup)) != JOBS_OK)
		return r;
	if (dup) {
		/*
		 * Its key was enqueued already: that job is the message --
		 * unless its row never committed (a transaction rolled back
		 * after the XADD): then the key is forgotten and this one
		 * goes instead.
		 */
		params[0] = j.id;
		if ((x->dbst = db_exec(x->db, STMT_MSG_GET, params, &res)) !=
		    DB_OK)
			return JOBS_DB;
		dup = PQntuples(res) == 1;
		PQclear(res);
		params[0] = id;
		if (!dup) {
			cache_del_if(x->cache, arena_printf(x->a,
			    KEYS_JOBS_KEY "%s", j.key), j.id);
			j.id = id;
			if ((r = jobs_enqueue(x, &j, &dup)) != JOBS_OK)
				return r;
		}
	}
	if (dup) {
		if ((x->dbst = db_exec(x->db, STMT_MSG_DROP, params, &res)) !=
		    DB_OK)
			return JOBS_DB;
		PQclear(res);
	}
	m->job_id = j.id;
	return JOBS_OK;
}

/* The responder's context for the jobs_* functions. */
static struct jobs_ctx
app_jobs_ctx(struct app *app)
{
	char	*tp = NULL;

	/* The request's trace: the job's run is a span of it. */
	if (app->wx.trace != NULL) {
		tp = arena_alloc(&app->arena, TRACE_HEADER_LEN + 1);
		trace_header(app->wx.trace, tp);
	}
	return (struct jobs_ctx){ .db = &app->db, .cache = &app->cache,
	    .cfg = &app->cfg, .a = &app->arena, .trace = tp,
	    .tracestate = app->wx.trace != NULL ? app->wx.trace->state : NULL };
}

/* Answer the failure r of x (or nothing for JOBS_OK); -1 when one. */
static int
app_jobs_answer(struct app *app, struct resp *rs, const struct jobs_ctx *x,
    enum jobs_result r, const char *what)
{
	switch (r) {
	case JOBS_OK:
		return 0;
	case JOBS_QUEUE_DOWN:
		resp_error(rs, API_CACHE_UNAVAILABLE, "the job queue is "
		    "unavailable");
		resp_header(rs, "Retry-After", "1");
		break;
	case JOBS_DB:
		app_db_error(app, rs, x->dbst, what);
		break;
	case JOBS_OVER_LIMIT:
		resp_error(rs, API_RATE_LIMITED, "at most %lld messages per %s "
		    "per hour (%s)", x->limit_max, x->limit_per, x->limit);
		resp_header(rs, "Retry-After", "60");
		break;
	case JOBS_INTERNAL:
		log_error("%s: no randomness for a job id", what);
		resp_error(rs, API_INTERNAL, "internal error");
		break;
	}
	return -1;
}

int
app_job_enqueue(struct app *app, struct resp *rs, struct job *j, int *dup)
{
	struct jobs_ctx	x = app_jobs_ctx(app);

	return app_jobs_answer(app, rs, &x, jobs_enqueue(&x, j, dup),
	    "job outbox");
}

int
app_message_enqueue(struct app *app, struct resp *rs, struct message *m)
{
	struct jobs_ctx		x = app_jobs_ctx(app);
	enum jobs_result	r = jobs_message(&x, m);

	if (r == JOBS_OVER_LIMIT && m->quiet) {
		log_warn("message %s: over %s, not sent", m->template_id,
		    x.limit);
		return 1;
	}
	return app_jobs_answer(app, rs, &x, r, "message");
}

void
app_jobs_json(struct buf *b, struct cache *cc, struct db *db)
{
	struct job_stats	 s;
	PGresult		*res;
	int			 i;

	if (job_stats(cc, &s) != CACHE_OK) {
		buf_adds(b, "{\"available\":false}");
		return;
	}
	buf_printf(b, "{\"available\":true,\"queued\":%lld,\"pending\":%lld,"
	    "\"retrying\":%lld,\"dead\":%lld,\"oldest_ms\":%lld,", s.queued,
	    s.pending, s.retrying, s.dead, s.oldest_ms);
	if (db_exec(db, STMT_OUTBOX_COUNT, NULL, &res) == DB_OK) {
		buf_printf(b, "\"outbox\":%s,",
		    PQgetvalue(res, 0, ONLY_COL));
		PQclear(res);
	} else
		buf_adds(b, "\"outbox\":null,");
	buf_adds(b, "\"consumers\":{");
	for (i = 0; i < s.consumers; i++) {
		if (i > 0)
			buf_addc(b, ',');
		buf_json_str(b, s.consumer[i].name, strlen(s.consumer[i].name));
		buf_printf(b, ":%lld", s.consumer[i].pending);
	}
	buf_adds(b, "}}");
}

void
app_status_json(struct buf *b, const struct pool *pool, struct cache *cc,
    struct db *db)
{
	pool_status_json(pool, b);
	/* One more member in pool_status_json's object: the job queue. */
	if (b->len > 0 && b->p[b->len - 1] == '}') {
		b->len--;
		buf_adds(b, ",\"jobs\":");
		app_jobs_json(b, cc, db);
		buf_addc(b, '}');
	}
}

/*
 * jobs: how a request hands work to wxapp-worker.  A responder only
 * enqueues -- one round trip to Redis (lib/job), never a WeChat call --
 * inside the transaction of the change the job belongs to.  When Redis is
 * down, a job of a type that must not be lost is written to the outbox
 * table in that same transaction instead, and the worker moves it into
 * the stream when Redis is back: either the change and its job are both
 * committed, or neither is.
 *
 * Subscribe messages (app_message_enqueue) are such jobs: the message's
 * row, its hourly limits and its job are one transaction.
 */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"

/* Job types whose jobs take the outbox when Redis is down. */
static const char *const durable_types[] = { JOB_SUBSCRIBE, NULL };

static int
durable(const char *type)
{
	size_t	i;

	for (i = 0; durable_types[i] != NULL; i++)
		if (strcmp(durable_types[i], type) == 0)
			return 1;
	return 0;
}

int
app_job_enqueue(struct app *app, struct resp *rs, struct job *j, int *dup)
{
	struct job_opts		 jo;
	const char		*params[4];
	PGresult		*res;
	enum cache_status	 cst;
	enum db_status		 st;

	app_job_opts(&app->cfg, &jo);
	*dup = 0;
	if ((cst = job_enqueue(&app->cache, &jo, &app->arena, j, 0, dup)) ==
	    CACHE_OK)
		return 0;
	if (cst == CACHE_ERROR)
		log_error("job %s: enqueue: %s", j->type, app->cache.errmsg);
	if (!durable(j->type) || app->txn_depth == 0) {
		resp_error(rs, API_CACHE_UNAVAILABLE, "the job queue is "
		    "unavailable");
		resp_header(rs, "Retry-After", "1");
		return -1;
	}
	params[0] = j->id;
	params[1] = j->type;
	params[2] = j->payload;
	params[3] = j->key;
	if ((st = db_exec(&app->db, STMT_OUTBOX_ADD, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "job outbox");
		return -1;
	}
	PQclear(res);
	log_warn("job %s %s: redis unavailable, kept in the outbox", j->type,
	    j->id);
	return 0;
}

/*
 * Over an hourly limit of message m?  -1 with the 429 (or error) set; 1,
 * nothing set, when m->quiet.
 */
static int
over_limits(struct app *app, struct resp *rs, const struct message *m)
{
	const struct {
		long long	 max;
		const char	*per, *key;
	} lim[2] = {
		{ app->cfg.message_user_hourly, "user", "message_user_hourly" },
		{ app->cfg.message_template_hourly, "template",
		    "message_template_hourly" }
	};
	const char	*params[2] = { m->openid, m->template_id };
	PGresult	*res;
	enum db_status	 st;
	long long	 n[2];
	int		 i;

	if (lim[0].max == 0 && lim[1].max == 0)
		return 0;
	if ((st = db_exec(&app->db, STMT_MSG_LIMITS, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "message limits");
		return -1;
	}
	for (i = 0; i < 2; i++)
		n[i] = strtoll(PQgetvalue(res, 0, i), NULL, 10);
	PQclear(res);
	for (i = 0; i < 2; i++) {
		if (lim[i].max == 0 || n[i] < lim[i].max)
			continue;
		if (m->quiet) {
			log_warn("message %s: over %s, not sent", m->template_id,
			    lim[i].key);
			return 1;
		}
		resp_error(rs, API_RATE_LIMITED, "at most %lld messages per %s "
		    "per hour (%s)", lim[i].max, lim[i].per, lim[i].key);
		resp_header(rs, "Retry-After", "60");
		return -1;
	}
	return 0;
}

int
app_message_enqueue(struct app *app, struct resp *rs, struct message *m)
{
	struct job	 j = { .type = JOB_SUBSCRIBE, .payload = m->body,
	    .key = m->key != NULL ? m->key : "" };
	char		*id;
	const char	*params[5];
	PGresult	*res;
	enum db_status	 st;
	int		 dup, over;

	if ((over = over_limits(app, rs, m)) != 0)
		return over;
	id = arena_alloc(&app->arena, JOB_ID_LEN + 1);
	if (job_new_id(id) == -1) {
		log_error("message: no randomness for a job id");
		resp_error(rs, API_INTERNAL, "internal error");
		return -1;
	}
	j.id = id;
	/* The row first: the worker finds it, once committed. */
	params[0] = id;
	params[1] = m->sender_id > 0 ? arena_printf(&app->arena, "%lld",
	    m->sender_id) : NULL;
	params[2] = m->user_id > 0 ? arena_printf(&app->arena, "%lld",
	    m->user_id) : NULL;
	params[3] = m->openid;
	params[4] = m->template_id;
	if ((st = db_exec(&app->db, STMT_MSG_CREATE, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "message");
		return -1;
	}
	PQclear(res);
	if (app_job_enqueue(app, rs, &j, &dup) == -1)
		return -1;
	if (dup) {
		/* Its key was enqueued already: that job is the message. */
		if ((st = db_exec(&app->db, STMT_MSG_DROP, params, &res)) !=
		    DB_OK) {
			app_db_error(app, rs, st, "message");
			return -1;
		}
		PQclear(res);
	}
	m->job_id = j.id;
	return 0;
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
		buf_printf(b, "\"outbox\":%s,", PQgetvalue(res, 0, 0));
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

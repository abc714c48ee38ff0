/*
 * worker_jobs: the handlers of the job types that wxapp-worker runs.
 *
 * subscribe (subscribeMessage.send): exactly once in effect.  The
 * message's row (app/jobs.c) says whether it was sent; the worker marks
 * it `sending` before the call and `sent` (with WeChat's msgid) after, so
 * that a job run again -- its worker died before acknowledging it --
 * finds it sent and does not send it twice.  What no record can tell is
 * a worker that died during the call itself: that job is sent again,
 * with the same X-Wxapp-Job header (see wxapp-worker(8)).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "jsonparse.h"
#include "log.h"
#include "util.h"
#include "worker.h"

#define UNRECORDED_WAITS	3	/* for the row's transaction to commit */
#define UNRECORDED_PAUSE_US	100000

/* WeChat's errcodes that no retry will change. */
static int
permanent(long errcode)
{
	switch (errcode) {
	case 40003:	/* invalid openid */
	case 40037:	/* invalid template_id */
	case 41030:	/* invalid page */
	case 43101:	/* the user refused, or a one-time subscription used */
	case 47003:	/* template data invalid */
		return 1;
	case -1:	/* system busy */
	case 45009:	/* daily quota: tomorrow */
	case 40001:	/* the token went stale twice: a refresh race */
	case 42001:
		return 0;
	default:	/* unknown: a person should look (jobs retry) */
		return 1;
	}
}

/* Record the outcome of a send on the message's row; -1 when it failed. */
static int
outcome(struct job_run *r, const struct job *j, const char *status,
    long long msgid, long errcode, const char *error)
{
	const char	*params[5];
	PGresult	*res;

	params[0] = j->id;
	params[1] = status;
	params[2] = msgid != 0 ? arena_printf(r->a, "%lld", msgid) : NULL;
	params[3] = errcode != 0 ? arena_printf(r->a, "%ld", errcode) : NULL;
	params[4] = error;
	if (db_exec(r->db, STMT_MSG_OUTCOME, params, &res) != DB_OK) {
		snprintf(r->error, sizeof(r->error), "postgres: %.200s",
		    r->db->errmsg);
		return -1;
	}
	PQclear(res);
	return 0;
}

/*
 * Mark the message `sending`: 1 when it is to be sent, 0 when it was
 * sent already, -1 (r->error) when that cannot be known now.
 */
static int
claim(struct job_run *r, const struct job *j)
{
	const char	*params[1] = { j->id };
	PGresult	*res;
	int		 i, sent;

	for (i = 0; ; i++) {
		if (db_exec(r->db, STMT_MSG_SENDING, params, &res) != DB_OK)
			goto down;
		if (PQntuples(res) == 1) {
			PQclear(res);
			return 1;
		}
		PQclear(res);
		if (db_exec(r->db, STMT_MSG_GET, params, &res) != DB_OK)
			goto down;
		sent = PQntuples(res) == 1 &&
		    strcmp(PQgetvalue(res, 0, MC_STATUS), "sent") == 0;
		PQclear(res);
		if (sent)
			return 0;
		/* Enqueued in a transaction that has not committed yet? */
		if (i == UNRECORDED_WAITS) {
			snprintf(r->error, sizeof(r->error), "the message was "
			    "never recorded (its transaction did not commit)");
			return -1;
		}
		r->pause(r->pause_arg, UNRECORDED_PAUSE_US);
	}
down:
	snprintf(r->error, sizeof(r->error), "postgres: %.200s", r->db->errmsg);
	return -1;
}

static enum job_result
run_subscribe(struct job_run *r, const struct job *j)
{
	enum wechat_status	 st;
	long long		 msgid = 0;
	int			 gone;

	switch (claim(r, j)) {
	case 0:
		log_info("job %s: message sent already", j->id);
		return JOB_DONE;
	case -1:
		return JOB_RETRY;
	}
	st = wechat_subscribe_send(r->wx, r->a, j->payload, j->id, &msgid);
	if (st == WECHAT_OK) {
		if (outcome(r, j, "sent", msgid, 0, NULL) == -1) {
			/* Sent, unrecorded: the retry's send is the dup. */
			log_error("job %s: sent (msgid %lld) but not recorded: "
			    "%s", j->id, msgid, r->error);
			return JOB_RETRY;
		}
		return JOB_DONE;
	}
	gone = st == WECHAT_ERRCODE && permanent(r->wx->errcode);
	if (outcome(r, j, gone || r->last ? "failed" : "retrying", 0,
	    st == WECHAT_ERRCODE ? r->wx->errcode : 0, r->wx->errmsg) == -1)
		log_error("job %s: outcome not recorded: %s", j->id, r->error);
	snprintf(r->error, sizeof(r->error), "%s", r->wx->errmsg);
	return gone ? JOB_FAILED : JOB_RETRY;
}

/*
 * The owner of an item that content security rejected is told
 * (message_item_rejected_template; none when it is empty or the owner
 * has no openid).  -1 when that could not be recorded (r->error).
 */
static int
tell_rejected(struct job_run *r, const struct moderation_outcome *o)
{
	struct jobs_ctx		 x = { .db = r->db, .cache = r->cache,
	    .cfg = r->cfg, .a = r->a, .trace = r->trace,
	    .tracestate = r->tracestate };
	struct message		 m = { .sender_id = o->owner_id,
	    .user_id = o->owner_id,
	    .template_id = r->cfg->message_item_rejected_template };
	struct json_object	*send, *data, *v;
	const char		*params[1];
	PGresult		*res;
	enum jobs_result	 jr;

	if (m.template_id[0] == '\0' || o->owner_id == 0 || o->title == NULL)
		return 0;
	params[0] = arena_printf(r->a, "%lld", o->owner_id);
	if (db_exec(r->db, STMT_USER_OPENID, params, &res) != DB_OK)
		goto down;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, ONLY_COL))
		m.openid = arena_strdup(r->a, PQgetvalue(res, 0, ONLY_COL));
	PQclear(res);
	if (m.openid == NULL)
		return 0;
	send = json_object_new_object();
	data = json_object_new_object();
	v = json_object_new_object();
	json_object_object_add(v, "value", json_object_new_string_len(o->title,
	    (int)util_utf8_prefix(o->title, strlen(o->title), 20)));
	json_object_object_add(data, "thing1", v);
	json_object_object_add(send, "touser", json_object_new_string(m.openid));
	json_object_object_add(send, "template_id",
	    json_object_new_string(m.template_id));
	json_object_object_add(send, "data", data);
	m.body = arena_strdup(r->a, json_object_to_json_string_ext(send,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(send);
	m.key = arena_printf(r->a, "item-rejected:%lld", o->item_id);
	if ((jr = jobs_message(&x, &m)) == JOBS_OK ||
	    jr == JOBS_OVER_LIMIT)
		return 0;
down:
	snprintf(r->error, sizeof(r->error), "telling the owner: postgres: "
	    "%.180s", r->db->errmsg);
	return -1;
}

/*
 * WeChat's verdict on moderation row id: pass approves, risky rejects
 * (and tells the owner), review leaves it to a moderator.
 */
static enum job_result
verdict(struct job_run *r, long long id, const char *suggest)
{
	struct moderation_outcome	 o = { .a = r->a };
	const char			*params[3];
	PGresult			*res;

	if (strcmp(suggest, "review") == 0) {
		params[0] = arena_printf(r->a, "%lld", id);
		params[1] = "review";
		params[2] = NULL;
		if (db_exec(r->db, STMT_MOD_REASON, params, &res) != DB_OK)
			goto down;
		PQclear(res);
		return JOB_DONE;
	}
	switch (moderation_decide(r->db, r->cache, NULL, id,
	    strcmp(suggest, "pass") == 0, "wechat", &o)) {
	case MODERATION_DB:
		goto down;
	case MODERATION_NONE:		/* decided already */
		return JOB_DONE;
	case MODERATION_OK:
		break;
	}
	log_info("moderation %lld: wechat says %s%s%s", id, suggest,
	    o.item_status != NULL ? ", item " : "",
	    o.item_status != NULL ? o.item_status : "");
	if (strcmp(suggest, "risky") == 0 && o.item_id > 0 &&
	    tell_rejected(r, &o) == -1)
		log_error("moderation %lld: %s", id, r->error);
	return JOB_DONE;
down:
	snprintf(r->error, sizeof(r->error), "postgres: %.200s",
	    r->db->errmsg);
	return JOB_RETRY;
}

/* push wxa_media_check: the verdict on an image, by trace_id. */
static enum job_result
push_media_check(struct job_run *r, const struct job *j, struct json_object *o)
{
	const char	*params[1];
	PGresult	*res;
	long long	 id = 0;
	const char	*suggest = jsonparse_string(o, "result.suggest");

	(void)j;
	if ((params[0] = jsonparse_string(o, "trace_id")) == NULL ||
	    suggest == NULL)
		return JOB_DONE;	/* recorded; nothing to match */
	if (db_exec(r->db, STMT_MOD_BY_TRACE, params, &res) != DB_OK) {
		snprintf(r->error, sizeof(r->error), "postgres: %.200s",
		    r->db->errmsg);
		return JOB_RETRY;
	}
	if (PQntuples(res) == 0) {
		/*
		 * A verdict quicker than the commit of its row, or one for
		 * an image not ours: tried again, then only recorded.
		 */
		PQclear(res);
		if (r->last)
			return JOB_DONE;
		snprintf(r->error, sizeof(r->error), "no image waits with "
		    "trace_id %.64s (yet)", params[0]);
		return JOB_RETRY;
	}
	if (strcmp(PQgetvalue(res, 0, MDC_STATUS), "pending") == 0)
		id = strtoll(PQgetvalue(res, 0, MDC_ID), NULL, 10);
	PQclear(res);
	return id > 0 ? verdict(r, id, suggest) : JOB_DONE;
}

/*
 * Handlers of pushed messages, by MsgType and Event ("" for a message
 * that is not an event): NULL-ended.
 */
static const struct {
	const char	*msg_type;
	const char	*event;
	enum job_result	(*run)(struct job_run *, const struct job *,
			    struct json_object *);
} push_handlers[] = {
	{ "event", "wxa_media_check", push_media_check },
	{ NULL, NULL, NULL }
};

/* A string member of o, or "". */
static const char *
member(struct json_object *o, const char *name)
{
	const char	*s = jsonparse_string(o, name);

	return s != NULL ? s : "";
}

/*
 * push: a message WeChat pushed (app/h_push.c).  Every one is recorded
 * (push_events, once per WeChat message); those of a type with a handler
 * are handled, the others only recorded and acknowledged.
 */
static enum job_result
run_push(struct job_run *r, const struct job *j)
{
	struct json_object	*o = NULL;
	struct jsonparse_err	 err;
	enum job_result		 res = JOB_DONE;
	const char		*params[5], *type, *event;
	PGresult		*pr;
	int			 i, handled = 0;

	if (jsonparse_bytes(j->payload, strlen(j->payload), &o, &err) == -1 ||
	    !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		snprintf(r->error, sizeof(r->error), "payload is not a JSON "
		    "object");
		return JOB_FAILED;
	}
	type = arena_strdup(r->a, member(o, "MsgType"));
	event = arena_strdup(r->a, member(o, "Event"));
	for (i = 0; push_handlers[i].run != NULL; i++)
		if (strcmp(push_handlers[i].msg_type, type) == 0 &&
		    strcmp(push_handlers[i].event, event) == 0) {
			handled = 1;
			res = push_handlers[i].run(r, j, o);
			break;
		}
	json_object_put(o);
	if (res != JOB_DONE)
		return res;
	params[0] = j->key;
	params[1] = type;
	params[2] = event[0] != '\0' ? event : NULL;
	params[3] = j->payload;
	params[4] = handled ? "true" : "false";
	if (db_exec(r->db, STMT_PUSH_RECORD, params, &pr) != DB_OK) {
		snprintf(r->error, sizeof(r->error), "postgres: %.200s",
		    r->db->errmsg);
		return JOB_RETRY;
	}
	PQclear(pr);
	if (!handled)
		log_info("push %s/%s: recorded (no handler)", type, event);
	return JOB_DONE;
}

/*
 * recheck: content WeChat could not be asked about as it was written
 * (content_check_fail = queue).  Asked again; while WeChat stays away the
 * job is retried, and once it is dead the content waits for a moderator.
 */
static enum job_result
run_recheck(struct job_run *r, const struct job *j)
{
	struct json_object	*o = NULL, *idv;
	struct jsonparse_err	 err;
	struct wechat_verdict	 v;
	enum wechat_status	 st;
	const char		*params[3], *openid = NULL, *trace;
	PGresult		*res;
	long long		 id = 0;
	int			 image, tries;
	char			*field, *content;

	if (jsonparse_bytes(j->payload, strlen(j->payload), &o, &err) == 0 &&
	    json_object_object_get_ex(o, "id", &idv))
		id = json_object_get_int64(idv);
	json_object_put(o);
	if (id <= 0) {
		snprintf(r->error, sizeof(r->error), "payload has no id");
		return JOB_FAILED;
	}
	params[0] = arena_printf(r->a, "%lld", id);
	/* Enqueued in the transaction that adds the row: it may be young. */
	for (tries = 0; ; tries++) {
		if (db_exec(r->db, STMT_MOD_GET, params, &res) != DB_OK)
			goto down;
		if (PQntuples(res) == 1 || tries == UNRECORDED_WAITS)
			break;
		PQclear(res);
		r->pause(r->pause_arg, UNRECORDED_PAUSE_US);
	}
	if (PQntuples(res) == 0) {
		/* Not committed yet, or never: try later, then dead. */
		PQclear(res);
		snprintf(r->error, sizeof(r->error), "moderation %lld is not "
		    "recorded (yet)", id);
		return JOB_RETRY;
	}
	if (strcmp(PQgetvalue(res, 0, MDC_STATUS), "pending") != 0 ||
	    strcmp(PQgetvalue(res, 0, MDC_REASON), "unchecked") != 0) {
		PQclear(res);
		return JOB_DONE;	/* decided, or asked already */
	}
	field = arena_strdup(r->a, PQgetvalue(res, 0, MDC_FIELD));
	content = arena_strdup(r->a, PQgetvalue(res, 0, MDC_CONTENT));
	params[1] = PQgetisnull(res, 0, MDC_AUTHOR) ? NULL :
	    arena_strdup(r->a, PQgetvalue(res, 0, MDC_AUTHOR));
	PQclear(res);
	if (params[1] != NULL) {
		const char	*who[1] = { params[1] };

		if (db_exec(r->db, STMT_USER_OPENID, who, &res) != DB_OK)
			goto down;
		if (PQntuples(res) == 1 && !PQgetisnull(res, 0, ONLY_COL))
			openid = arena_strdup(r->a,
			    PQgetvalue(res, 0, ONLY_COL));
		PQclear(res);
	}
	if (openid == NULL)		/* WeChat cannot be asked: a person */
		return verdict(r, id, "review");
	image = strcmp(field, "cover_url") == 0;
	st = image ? wechat_media_check_async(r->wx, r->a, openid, 3, content,
	    2, &trace) : wechat_msg_sec_check(r->wx, r->a, openid,
	    strcmp(field, "name") == 0 ? 1 : 3, content, &v);
	if (st != WECHAT_OK) {
		snprintf(r->error, sizeof(r->error), "%s", r->wx->errmsg);
		return r->last ? verdict(r, id, "review") : JOB_RETRY;
	}
	if (!image)
		return verdict(r, id, v.suggest);
	params[1] = "media";
	params[2] = trace;
	if (db_exec(r->db, STMT_MOD_REASON, params, &res) != DB_OK)
		goto down;
	PQclear(res);
	return JOB_DONE;
down:
	snprintf(r->error, sizeof(r->error), "postgres: %.200s",
	    r->db->errmsg);
	return JOB_RETRY;
}

void
worker_media_late(struct job_run *r)
{
	const char	*params[1];
	PGresult	*res;
	int		 i, n;
	long long	*ids;

	params[0] = arena_printf(r->a, "%lld", r->cfg->media_check_timeout);
	if (db_exec(r->db, STMT_MOD_MEDIA_LATE, params, &res) != DB_OK)
		return;
	n = PQntuples(res);
	ids = arena_calloc(r->a, (size_t)n + 1, sizeof(*ids));
	for (i = 0; i < n; i++)
		ids[i] = strtoll(PQgetvalue(res, i, MDC_ID), NULL, 10);
	PQclear(res);
	for (i = 0; i < n; i++) {
		log_warn("moderation %lld: no media check verdict within "
		    "media_check_timeout", ids[i]);
		(void)verdict(r, ids[i], r->cfg->content_check_fail ==
		    CHECK_FAIL_OPEN ? "pass" : r->cfg->content_check_fail ==
		    CHECK_FAIL_CLOSED ? "risky" : "review");
	}
}

const struct job_type worker_job_types[] = {
	{ .type = JOB_SUBSCRIBE, .run = run_subscribe },
	{ .type = JOB_PUSH, .run = run_push },
	{ .type = JOB_RECHECK, .run = run_recheck },
	{ .type = NULL }
};

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

#include "app.h"
#include "log.h"
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

const struct job_type worker_job_types[] = {
	{ .type = JOB_SUBSCRIBE, .run = run_subscribe },
	{ .type = NULL }
};

/*
 * worker: what wxapp-worker's job handlers get, and the table of them
 * (app/worker_jobs.c).  A handler is plain blocking code; where it waits
 * for WeChat (or pauses), its coroutine yields and the worker runs other
 * jobs (lib/cowait).  It must not yield inside a database transaction:
 * the connection is the process's.
 */
#ifndef WX_WORKER_H
#define WX_WORKER_H

#include "arena.h"
#include "cache.h"
#include "config.h"
#include "db.h"
#include "job.h"
#include "wechat.h"

enum job_result {
	JOB_DONE,		/* done, or found done already */
	JOB_RETRY,		/* try again after a backoff */
	JOB_FAILED		/* never: to the dead letters */
};

/* One run of a job. */
struct job_run {
	const struct config	*cfg;
	struct db		*db;	/* the process's connection */
	struct cache		*cache;	/* ... and Redis's */
	struct wechat		*wx;	/* the run's own handle */
	struct arena		*a;	/* the run's memory */
	int			 last;	/* a failure now is final */
	const char		*trace;	/* traceparent of this run, or NULL */
	const char		*tracestate;	/* its tracestate, or NULL */
	void			(*pause)(void *, int64_t us);
	void			*pause_arg;
	char			 error[256];	/* why it failed */
};

struct job_type {
	const char	*type;
	enum job_result	(*run)(struct job_run *, const struct job *);
};

/* The job types the worker runs; NULL-ended. */
extern const struct job_type worker_job_types[];
/*
 * Images whose verdict did not come within media_check_timeout: what
 * content_check_fail says (a chore of the worker's, once a second).
 */
void	worker_media_late(struct job_run *);

#endif

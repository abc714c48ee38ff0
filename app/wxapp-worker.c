/*
 * wxapp-worker: runs the background jobs that responders enqueue (see
 * lib/job and app/jobs.c).
 *
 * One process runs up to job_concurrency jobs at once, each in a
 * coroutine of its own (lib/coro), with one PostgreSQL connection, one
 * Redis connection and one curl multi handle: a job that waits for
 * WeChat yields (lib/cowait), so that a few hundred WeChat calls can be
 * in flight while PostgreSQL and Redis, which answer in about a
 * millisecond, are called synchronously.  Jobs are taken from the stream
 * as tasks free up; once a second the worker also moves due retries into
 * the stream, takes over the jobs of workers that died (XAUTOCLAIM after
 * job_claim_idle_ms) and drains the PostgreSQL outbox into the stream.
 *
 * Its consumer name (-n, the host name by default) is kept across
 * restarts: started again, it first takes back the jobs it held when it
 * died.  SIGTERM (or SIGINT, SIGUSR1) stops taking jobs and finishes
 * those in flight within job_stop_timeout seconds; what is still running
 * then stays pending, for this worker's next start or another's claim.
 * SIGHUP reopens the log.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "app.h"
#include "coro.h"
#include "cowait.h"
#include "log.h"
#include "prefork.h"
#include "shm.h"
#include "util.h"
#include "worker.h"

#define TASK_STACK	(128 * 1024)
#define TASK_ARENA	(16 * 1024)
#define TAKE_BLOCK_MS	200	/* idle: XREADGROUP waits this long */
#define TAKE_EVERY_US	5000	/* busy: looks for new jobs this often */
#define CHORES_US	1000000	/* retries, claims and the outbox */
#define PRUNE_BATCH	2000	/* expired refresh tokens deleted a second */
#define DOWN_WAIT_US	500000	/* Redis down: before looking again */

static volatile sig_atomic_t	stop_signal;
static volatile sig_atomic_t	reopen_log;

struct worker;
struct task {
	struct worker		*w;
	struct coro		*co;
	struct cowait_task	 cw;
	struct arena		 arena;
	struct wechat		 wx;
	struct job		 job;
	struct trace		 trace;		/* its run: a span of its
						   enqueuer's trace */
	struct spans		 spans;		/* of the run, when sampled */
	int			 live;
	int64_t			 start_us;
};

/* The process's context. */
struct worker {
	struct config	 cfg;
	struct job_opts	 jo;
	struct db	 db;
	struct cache	 cache;
	struct shm	 shm;		/* private: the breakers */
	struct guard	 guards[DEP_COUNT];
	struct cowait	 cw;
	struct arena	 arena;		/* of the loop, reset every turn */
	struct task	*tasks;
	int		 max;
	int		 live;
	char		 name[128];	/* the consumer */
	char		 cursor[48];	/* of XAUTOCLAIM */
	unsigned long	 done, retried, dead;
	int		 tracing;	/* otlp_endpoint is set */
	struct span_sink otlp;		/* wxapp-otlp */
	unsigned long	 spans_dropped;
	/* The pool's, where /metrics reads what is dropped; or NULL. */
	struct shm	 pool_shm;
	struct pool_metrics *metrics;
};

static void
on_stop(int sig)
{
	stop_signal = sig;
}

static void
on_hup(int sig)
{
	(void)sig;
	reopen_log = 1;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: wxapp-worker [-t] [-c config] [-n name] [-f]\n");
}

/* The handler of a job type, or NULL. */
static const struct job_type *
type_of(const char *type)
{
	const struct job_type	*t;

	for (t = worker_job_types; t->type != NULL; t++)
		if (strcmp(t->type, type) == 0)
			return t;
	return NULL;
}

/*
 * Hand a run's spans to wxapp-otlp, never waiting; count what cannot go
 * (and what the run made beyond SPAN_MAX) where the responders do.
 */
static void
export_spans(struct worker *w, struct task *t, int failed)
{
	struct buf	b;

	if (!spans_recording(&t->spans))
		return;
	buf_init(&b, &t->arena, 2048);
	if (spans_encode(&t->spans, failed, &b) == 0 &&
	    span_sink_send(&w->otlp, b.p, b.len) == -1) {
		if (w->metrics != NULL)
			metrics_add(&w->metrics->spans_dropped[SPANS_HANDOVER],
			    (uint64_t)t->spans.n);
		/* Said once in a while. */
		if (w->spans_dropped++ % 1000 == 0)
			log_warn("spans of job runs dropped (%lu runs so far): "
			    "wxapp-otlp is not taking them", w->spans_dropped);
	}
	if (t->spans.dropped > 0 && w->metrics != NULL)
		metrics_add(&w->metrics->spans_dropped[SPANS_CAP],
		    t->spans.dropped);
	spans_end(&t->spans);
}

/* A coroutine's whole life: one run of one job, and its end. */
static void
run_task(void *arg)
{
	struct task		*t = arg;
	struct worker		*w = t->w;
	const struct job_type	*type = type_of(t->job.type);
	struct job_run		 r = { .cfg = &w->cfg, .db = &w->db,
	    .cache = &w->cache, .wx = &t->wx, .a = &t->arena,
	    .last = t->job.attempt >= w->jo.retry_max,
	    .pause = cowait_pause, .pause_arg = &w->cw };
	enum job_result		 res = JOB_FAILED;
	enum cache_status	 st;
	char			 tp[TRACE_HEADER_LEN + 1];
	int			 dead = 0;

	trace_header(&t->trace, tp);
	r.trace = tp[0] != '\0' ? tp : NULL;
	r.tracestate = r.trace != NULL ? t->trace.state : NULL;
	/* The run is a span of the trace that enqueued it, when sampled. */
	spans_start(&t->spans, &t->arena, w->tracing ? &t->trace : NULL,
	    arena_printf(&t->arena, "job %s", t->job.type));
	spans_set_kind(&t->spans, SPAN_CONSUMER);
	if (spans_recording(&t->spans)) {
		span_attr_str(&t->spans.v[0], "messaging.system", "redis");
		span_attr_str(&t->spans.v[0], "messaging.operation.type",
		    "process");
		span_attr_str(&t->spans.v[0], "messaging.message.id",
		    t->job.id);
		span_attr_int(&t->spans.v[0], "wxapp.job.attempt",
		    t->job.attempt);
	}
	t->wx.spans = &t->spans;
	if (type == NULL)
		snprintf(r.error, sizeof(r.error), "no handler for job type "
		    "%s", t->job.type);
	else
		res = type->run(&r, &t->job);
	if (res == JOB_DONE) {
		st = job_done(&w->cache, &t->job);
		w->done++;
	} else {
		st = job_fail(&w->cache, &w->jo, &t->job, r.error,
		    res == JOB_FAILED, &dead);
		if (dead)
			w->dead++;
		else
			w->retried++;
	}
	if (res == JOB_DONE)
		log_info("job %s %s attempt %lld: done in %lld ms",
		    t->job.type, t->job.id, t->job.attempt,
		    (long long)((util_mono_us() - t->start_us) / 1000));
	else
		log_warn("job %s %s attempt %lld: %s: %s", t->job.type,
		    t->job.id, t->job.attempt, dead ? "dead" : "retried later",
		    r.error);
	if (st != CACHE_OK)
		log_error("job %s %s: not acknowledged (%s): it runs again",
		    t->job.type, t->job.id, w->cache.errmsg);
	export_spans(w, t, res != JOB_DONE);
	t->wx.spans = NULL;
}

/* Run t's coroutine until it yields or ends (start: from the top). */
static void
step(struct worker *w, struct task *t, int start)
{
	int	more;

	w->cw.current = &t->cw;
	log_set_request(t->job.id, t->trace.trace_id, t->trace.span_id);
	/* PostgreSQL and Redis calls never yield: the running job's spans. */
	w->db.spans = w->cache.spans = &t->spans;
	more = start ? coro_start(t->co, run_task, t) : coro_resume(t->co);
	w->db.spans = w->cache.spans = NULL;
	log_set_request(NULL, NULL, NULL);
	w->cw.current = NULL;
	if (!more) {
		t->live = 0;
		arena_reset(&t->arena);
		w->live--;
	}
}

/* Start a task for job j (copied into its memory); -1 when none is free. */
static int
start_job(struct worker *w, const struct job *j,
    const struct wechat_opts *wo)
{
	struct task	*t = NULL;
	int		 i;

	for (i = 0; i < w->max && t == NULL; i++)
		if (!w->tasks[i].live)
			t = &w->tasks[i];
	if (t == NULL)
		return -1;
	if (t->co == NULL) {
		if ((t->co = coro_new(TASK_STACK)) == NULL)
			return -1;
		arena_init(&t->arena, TASK_ARENA, 1);
		if (wechat_init(&t->wx, wo, &w->cache) == -1) {
			coro_free(t->co);
			t->co = NULL;
			arena_free(&t->arena);
			return -1;
		}
	}
	t->job = *j;
	t->job.id = arena_strdup(&t->arena, j->id);
	t->job.type = arena_strdup(&t->arena, j->type);
	t->job.payload = arena_strdup(&t->arena, j->payload);
	t->job.key = arena_strdup(&t->arena, j->key);
	t->job.error = arena_strdup(&t->arena, j->error);
	t->job.trace = arena_strdup(&t->arena, j->trace);
	t->job.tracestate = arena_strdup(&t->arena, j->tracestate);
	(void)trace_start(&t->trace, t->job.trace);
	trace_set_state(&t->trace, t->job.tracestate);
	t->wx.trace = &t->trace;
	t->live = 1;
	t->start_us = util_mono_us();
	w->live++;
	step(w, t, 1);
	return 0;
}

/* Start every job of jobs[0..n). */
static void
start_jobs(struct worker *w, const struct job *jobs, int n,
    const struct wechat_opts *wo)
{
	int	i;

	for (i = 0; i < n; i++)
		if (start_job(w, &jobs[i], wo) == -1) {
			/* Left pending: taken back at the next start. */
			log_error("job %s: out of memory to run it", jobs[i].id);
			return;
		}
}

/* The outbox's jobs into the stream, while Redis takes them. */
static void
drain_outbox(struct worker *w)
{
	PGresult	*res, *del;
	struct job	 j;
	const char	*params[1];
	int		 i, n, dup, moved = 0;

	if (db_begin(&w->db) != DB_OK)
		return;
	if (db_exec(&w->db, STMT_OUTBOX_TAKE, NULL, &res) != DB_OK) {
		db_rollback(&w->db);
		return;
	}
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		memset(&j, 0, sizeof(j));
		j.id = PQgetvalue(res, i, OB_JOB);
		j.type = PQgetvalue(res, i, OB_TYPE);
		j.payload = PQgetvalue(res, i, OB_PAYLOAD);
		/*
		 * Moved twice if the commit below fails after the XADD: a
		 * key makes the second time nothing.
		 */
		j.key = PQgetvalue(res, i, OB_KEY)[0] != '\0' ?
		    PQgetvalue(res, i, OB_KEY) : arena_printf(&w->arena,
		    "outbox:%s", j.id);
		if (job_enqueue(&w->cache, &w->jo, &w->arena, &j, 0, &dup) !=
		    CACHE_OK)
			break;
		params[0] = PQgetvalue(res, i, OB_ID);
		if (db_exec(&w->db, STMT_OUTBOX_DEL, params, &del) != DB_OK)
			break;
		PQclear(del);
		moved++;
	}
	PQclear(res);
	if (moved == 0 || db_commit(&w->db) != DB_OK) {
		db_rollback(&w->db);
		return;
	}
	log_info("outbox: %d jobs moved into the stream", moved);
}

/* Images waiting too long for WeChat's verdict (outside any job). */
static void
media_late(struct worker *w)
{
	struct job_run	r = { .cfg = &w->cfg, .db = &w->db,
	    .cache = &w->cache, .a = &w->arena, .pause = cowait_pause,
	    .pause_arg = &w->cw };

	worker_media_late(&r);
}

/*
 * Expired refresh tokens deleted, PRUNE_BATCH a second: a login adds one
 * and a refresh another, so that without this the table and its indexes
 * grow for ever, and every login with them.
 */
static void
prune_sessions(struct worker *w)
{
	const char	*params[2], *errstr;
	PGresult	*res;
	long long	 n;

	params[0] = arena_printf(&w->arena, "%d", PRUNE_BATCH);
	params[1] = arena_printf(&w->arena, "%lld", w->cfg.access_token_ttl);
	if (db_exec(&w->db, STMT_RT_PRUNE, params, &res) != DB_OK)
		return;
	if (util_strtonum(PQcmdTuples(res), 0, LLONG_MAX, &n, &errstr) == 0 &&
	    n == PRUNE_BATCH)
		log_info("sessions: %d expired refresh tokens deleted; more "
		    "are left for the next second", PRUNE_BATCH);
	PQclear(res);
}

/*
 * Once a second: due retries, jobs of dead workers, the outbox, images,
 * expired sessions.
 */
static void
chores(struct worker *w, const struct wechat_opts *wo)
{
	struct job	 jobs[64];
	int		 n, moved, room;

	media_late(w);		/* PostgreSQL's alone */
	prune_sessions(w);
	if (job_promote(&w->cache, &moved) != CACHE_OK)
		return;
	room = w->max - w->live;
	if (room > (int)(sizeof(jobs) / sizeof(jobs[0])))
		room = (int)(sizeof(jobs) / sizeof(jobs[0]));
	if (room > 0 && job_claim(&w->cache, &w->jo, &w->arena, w->name,
	    w->cursor, jobs, room, &n) == CACHE_OK && n > 0) {
		log_warn("claimed %d jobs of a worker that stopped", n);
		start_jobs(w, jobs, n, wo);
	}
	drain_outbox(w);
}

/* The worker's loop, until stopped and drained; 0 or -1. */
static int
serve(struct worker *w, const struct wechat_opts *wo)
{
	struct job	*jobs;
	struct task	*t;
	int64_t		 now, wake, next_take = 0, next_chores = 0;
	int64_t		 deadline = 0;
	int		 i, n, mine = 1, stopping = 0, room;
	enum cache_status st;

	if ((jobs = calloc((size_t)w->max, sizeof(*jobs))) == NULL)
		return -1;
	for (;;) {
		now = util_mono_us();
		if (stop_signal && !stopping) {
			stopping = 1;
			deadline = now + w->cfg.job_stop_timeout * 1000000;
			log_info("signal %d: finishing %d jobs in flight",
			    (int)stop_signal, w->live);
		}
		if (stopping && (w->live == 0 || now >= deadline))
			break;
		if (reopen_log) {
			reopen_log = 0;
			if (log_reopen() == -1)
				log_error("cannot reopen %s: %s",
				    w->cfg.log_file, strerror(errno));
		}
		arena_reset(&w->arena);
		if (!stopping && now >= next_chores) {
			chores(w, wo);
			next_chores = now + CHORES_US;
		}
		room = w->max - w->live;
		if (!stopping && room > 0 && now >= next_take) {
			/*
			 * First what this consumer held when it stopped: at
			 * most job_concurrency, all taken in this one call.
			 */
			st = job_take(&w->cache, &w->arena, w->name, mine,
			    w->live == 0 && !mine ? TAKE_BLOCK_MS : 0, jobs,
			    room, &n);
			if (st == CACHE_OK) {
				if (mine && n > 0)
					log_info("took back %d jobs this worker "
					    "held when it stopped", n);
				start_jobs(w, jobs, n, wo);
				next_take = n > 0 || mine ? now :
				    util_mono_us() + TAKE_EVERY_US;
				mine = 0;
			} else {
				if (st == CACHE_ERROR)
					log_error("jobs: %s", w->cache.errmsg);
				next_take = util_mono_us() + DOWN_WAIT_US;
			}
		}
		/* Wait for transfers, timers, the next look for jobs. */
		wake = next_chores;
		if (!stopping && w->live < w->max && next_take < wake)
			wake = next_take;
		for (i = 0; i < w->max; i++) {
			t = &w->tasks[i];
			if (t->live && t->cw.waiting == COWAIT_TIMER &&
			    t->cw.wake_us < wake)
				wake = t->cw.wake_us;
		}
		if (stopping && deadline < wake)
			wake = deadline;
		if (w->live > 0 || wake > util_mono_us())
			cowait_poll(&w->cw, NULL, 0, wake);
		for (;;) {
			struct cowait_task *done = cowait_done(&w->cw);

			if (done == NULL)
				break;
			step(w, done->owner, 0);
		}
		now = util_mono_us();
		for (i = 0; i < w->max; i++) {
			t = &w->tasks[i];
			if (t->live && t->cw.waiting == COWAIT_TIMER &&
			    t->cw.wake_us <= now)
				step(w, t, 0);
		}
	}
	if (w->live > 0)
		log_warn("job_stop_timeout: %d jobs left running stay pending "
		    "for the next start of %s", w->live, w->name);
	free(jobs);
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "name",	required_argument,	NULL, 'n' },
		{ "supervise",	no_argument,		NULL, 'f' },
		{ "test",	no_argument,		NULL, 't' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	static struct worker	 w;
	struct prefork_opts	 pfo = { .children = 1, .retries = 20,
	    .fast_ms = 500, .title = "wxapp-worker-supervise",
	    .reopen = log_reopen };
	struct db_opts		 dbo;
	struct cache_opts	 cco;
	struct wechat_opts	 wxo;
	const char		*cfgpath = NULL, *name = NULL;
	int			 ch, test = 0, supervise = 0, i, rc;

	while ((ch = getopt_long(argc, argv, "c:fhn:tV", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'f':
			supervise = 1;
			break;
		case 'n':
			name = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("wxapp-worker %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (name == NULL && gethostname(w.name, sizeof(w.name) - 1) == -1)
		snprintf(w.name, sizeof(w.name), "worker");
	if (name != NULL && (size_t)snprintf(w.name, sizeof(w.name), "%s",
	    name) >= sizeof(w.name)) {
		fprintf(stderr, "wxapp-worker: -n %s: too long\n", name);
		return 2;
	}
	if ((rc = app_program_start("wxapp-worker", &cfgpath, &w.cfg,
	    config_check_serving, test, supervise ? &pfo : NULL)) != -1)
		return rc;
	if (app_signals(on_stop, on_hup) == -1 ||
	    curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    shm_private(&w.shm, &pool_layout) == -1 ||
	    cowait_init(&w.cw) == -1) {
		log_error("cannot initialize: %s", strerror(errno));
		return 1;
	}
	w.otlp.fd = -1;
	if (w.cfg.otlp_endpoint[0] != '\0') {
		if (span_sink_open(&w.otlp, w.cfg.otlp_socket) == -1)
			log_error("otlp_socket %s: %s: no spans are kept",
			    w.cfg.otlp_socket, strerror(errno));
		else
			w.tracing = 1;
	}
	/*
	 * Spans dropped are counted where /metrics reads, the pool's shared
	 * memory, as wxapp-otlp counts there (the breakers stay the
	 * worker's own).
	 */
	if (w.tracing && w.cfg.metrics) {
		if (shm_attach(&w.pool_shm, w.cfg.shm_name, &pool_layout) == 0)
			w.metrics = &((struct pool *)w.pool_shm.data)->metrics;
		else
			log_warn("cannot attach shared memory %s (%s): spans "
			    "dropped are not counted", w.cfg.shm_name,
			    strerror(errno));
	}
	w.max = (int)w.cfg.job_concurrency;
	if ((w.tasks = calloc((size_t)w.max, sizeof(*w.tasks))) == NULL) {
		log_error("out of memory");
		return 1;
	}
	for (i = 0; i < w.max; i++) {
		w.tasks[i].w = &w;
		w.tasks[i].cw.owner = &w.tasks[i];
	}
	strcpy(w.cursor, "0-0");
	arena_init(&w.arena, TASK_ARENA, 1);
	app_job_opts(&w.cfg, &w.jo);
	app_guards(&w.cfg, &w.shm, w.shm.data, w.guards);
	app_db_opts(&w.cfg, &w.guards[DEP_POSTGRES], &dbo);
	db_init(&w.db, &dbo, app_stmts, STMT_COUNT);
	app_cache_opts(&w.cfg, &w.guards[DEP_REDIS], &cco);
	/*
	 * An idle XREADGROUP blocks for TAKE_BLOCK_MS: not a timeout, nor
	 * a slow call.
	 */
	cco.command_timeout_ms += TAKE_BLOCK_MS;
	if (w.guards[DEP_REDIS].slow_us > 0)
		w.guards[DEP_REDIS].slow_us += TAKE_BLOCK_MS * 1000;
	cache_init(&w.cache, &cco);
	app_wechat_opts(&w.cfg, &w.guards[DEP_WECHAT], &wxo);
	wxo.perform = cowait_perform;
	wxo.pause = cowait_pause;
	wxo.io_arg = &w.cw;
	(void)db_connect(&w.db);
	if (cache_connect(&w.cache) == 0 && job_setup(&w.cache) != CACHE_OK)
		log_error("jobs: cannot create the consumer group: %s",
		    w.cache.errmsg);
	log_info("worker %s started (config %s): up to %d jobs at once",
	    w.name, cfgpath, w.max);
	rc = serve(&w, &wxo);
	log_info("worker %s exiting: %lu jobs done, %lu retried, %lu dead",
	    w.name, w.done, w.retried, w.dead);
	/* Transfers of jobs left running go with the multi handle. */
	cowait_free(&w.cw);
	for (i = 0; i < w.max; i++) {
		if (w.tasks[i].co == NULL)
			continue;
		wechat_free(&w.tasks[i].wx);
		arena_free(&w.tasks[i].arena);
		coro_free(w.tasks[i].co);
	}
	free(w.tasks);
	db_close(&w.db);
	cache_close(&w.cache);
	shm_detach(&w.shm);
	shm_detach(&w.pool_shm);
	span_sink_close(&w.otlp);
	arena_free(&w.arena);
	curl_global_cleanup();
	log_close();
	config_free(&w.cfg);
	return rc == 0 ? 0 : 1;
}

/*
 * The concurrent loop (wxapp-fcgi -C N), for the pool that serves the
 * routes which call WeChat.
 *
 * A classic responder holds a whole process for every WeChat call in
 * flight: with WeChat answering in 50 ms, a process does at most 20
 * logins a second, whatever the CPU.  Here one process holds up to N
 * requests at once.  It reads the FastCGI connections itself, without
 * blocking (lib/fcgiconn), and runs each request in a coroutine of its own
 * (lib/coro) with the same handler code as the classic loop.  Where that
 * code waits for WeChat -- lib/wechat's perform and pause hooks -- the
 * coroutine hands its transfer to one curl multi handle and yields; the
 * loop polls the sockets and curl together and resumes each coroutine
 * when its transfer is done.  The process keeps its one connection to
 * PostgreSQL and to Redis, so that the connections stay bounded by the
 * number of processes.  Redis is called synchronously, with its deadline:
 * it takes well under a millisecond.  A PostgreSQL call waits for its
 * socket as a transfer does (lib/db's struct db_io): a PostgreSQL that
 * hangs holds the requests that wait for it, each until its deadline,
 * while the process answers the others -- cached reads above all.  The
 * coroutines take turns with the connection, one statement at a time,
 * and never yield inside a transaction: its statements and anything else
 * it waits for block the process, so that no other request's statement
 * can land in it.  The login's statement is batched: the logins that
 * reach it in one turn of the loop wait, and run as one statement after
 * every coroutine that could run has (lib/dbbatch: one commit for them
 * all), from the loop, holding the process.
 *
 * What is per request lives in the coroutine's task, and is swapped into
 * the process's struct app while the coroutine runs: the arena, the
 * WeChat handle (each running request has its own easy handle, in its
 * runner; the multi handle shares their connections), the caller, and the
 * transaction state.  A task is a connection: nginx keeps them open
 * (fastcgi_keep_conn), and one reads request after request.  The
 * coroutine and the WeChat handle are a runner's, held only while a
 * request runs, so idle kept connections cost their buffers only.
 */
#define _GNU_SOURCE	/* accept4 */
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "app.h"
#include "coro.h"
#include "cowait.h"
#include "fcgiconn.h"
#include "log.h"
#include "prefork.h"
#include "util.h"

#define TASK_STACK	(128 * 1024)
#define TASK_ARENA	(16 * 1024)
#define ANSWER_MS	5000	/* to write an answer to nginx */
#define READ_MS		10000	/* for nginx to send a whole request */
#define LOG_IDLE_US	1000	/* idle this long: held access lines go out */
#define DB_YIELD_AFTER_US 1000	/* a PostgreSQL wait longer yields */

/*
 * What a request needs only while it runs: a coroutine (its stack) and a
 * WeChat handle.  A request takes one when it starts and gives it back
 * when it ends, so a connection nginx keeps idle holds neither, and a
 * pool whose requests never wait (the main pool) needs one, however many
 * connections it holds.
 */
struct runner {
	struct runner		*next;		/* on the free list */
	struct coro		*co;
	struct wechat		 wx;
};

enum task_state {
	TASK_FREE,
	TASK_READING,		/* the request is arriving */
	TASK_RUNNING		/* its coroutine runs or waits (cw) */
};

struct loop;
struct task {
	struct loop		*loop;
	enum task_state		 state;
	struct runner		*run;		/* while RUNNING */
	int			 inited;	/* arena set up */
	struct fcgiconn		 conn;
	int64_t			 since_us;	/* accepted */
	struct app_exchange	 x;
	size_t			 body_off;
	struct cowait_task	 cw;
	/* Swapped with the app's while the coroutine runs. */
	struct arena		 arena;
	struct caller		 who;
	int			 auth_code;
	const char		*auth_why;
	int			 auth_blind;
	int			 fcgi_fd;
	int			 txn_depth;
	sig_atomic_t		 db_changed;	/* app->db.changed */
	long long		 shown;
	unsigned		 held;
	struct spans		*spans;		/* where db and cache record */
	int			 answered;	/* its answer went out whole */
	int			 kept;		/* served one: nginx keeps it */
};

struct loop {
	struct app	*app;
	struct cowait	 cw;
	struct task	*tasks;
	int		 max;
	int		 live;		/* tasks not FREE */
	int		 closing;	/* the drain is over: keep none */
	uint64_t	 accepted;	/* connections, in all */
	struct runner	*idle;		/* runners no request holds */
	const struct wechat_opts *wo;	/* of the runners' WeChat handles */
	struct cowait_lock dblock;	/* the PostgreSQL connection */
	struct db_io	 dbio;		/* lib/db's waits, through cw */
	/*
	 * The stores' probe (app_probe_stores) runs as a coroutine too: a
	 * probe of a hung PostgreSQL waits out its deadline without holding
	 * the process.  RUNNING while it does; it has no connection.
	 */
	struct task	 probe;
};

/* The connections in the scoreboard. */
static void
show_connections(struct loop *L)
{
	scoreboard_connections(&L->app->pool->sb, L->app->slot,
	    (uint32_t)L->live, L->accepted);
}

#define SWAP(T, a, b)	do { T tmp_ = (a); (a) = (b); (b) = tmp_; } while (0)

/* The probe's coroutine. */
static void
run_probe(void *arg)
{
	struct task	*t = arg;

	app_probe_stores(t->loop->app);
}

/* Exchange the per-request state of the app and t (twice: back). */
static void
swap_state(struct app *app, struct task *t)
{
	SWAP(struct arena, app->arena, t->arena);
	SWAP(struct wechat, app->wx, t->run->wx);
	SWAP(struct caller, app->who, t->who);
	SWAP(int, app->auth_code, t->auth_code);
	SWAP(const char *, app->auth_why, t->auth_why);
	SWAP(int, app->auth_blind, t->auth_blind);
	SWAP(int, app->fcgi_fd, t->fcgi_fd);
	SWAP(int, app->txn_depth, t->txn_depth);
	SWAP(sig_atomic_t, app->db.changed, t->db_changed);
	SWAP(long long, app->shown, t->shown);
	SWAP(unsigned, app->held, t->held);
	SWAP(struct spans *, app->db.spans, t->spans);
	app->cache.spans = app->db.spans;
}

/* May the running coroutine yield?  Not inside a transaction. */
static int
may_yield(void *arg)
{
	struct app	*app = arg;

	return app->txn_depth == 0 && !app->db.in_txn;
}

/* lib/db's struct db_io for the loop: the connection, taken in turn. */
static int
db_io_take(void *arg, int64_t deadline)
{
	struct loop	*L = arg;

	return cowait_lock_take(&L->cw, &L->dblock, deadline);
}

static void
db_io_give(void *arg)
{
	struct loop	*L = arg;

	cowait_lock_give(&L->cw, &L->dblock);
}

/*
 * ... and its socket.  A healthy PostgreSQL answers within a millisecond:
 * wait that long in poll(2), as the classic loop does, and leave the wait
 * to the loop's poll only when it is longer (a frozen or overloaded
 * server), so that a common call costs no turn of the loop (one turn
 * looks at every task).
 */
static int
db_io_wait(void *arg, int fd, short events, int64_t deadline)
{
	struct loop	*L = arg;
	int64_t		 soon = util_mono_us() + DB_YIELD_AFTER_US;
	int		 r;

	if (soon >= deadline)
		return util_poll(fd, events, deadline);
	if ((r = util_poll(fd, events, soon)) != 0)
		return r;
	return cowait_fd(&L->cw, fd, events, deadline);
}

static int
body_read(void *ctx, char *p, int n)
{
	struct task	*t = ctx;
	size_t		 left = t->conn.body.len - t->body_off;

	if (n < 0)
		return -1;
	if ((size_t)n > left)
		n = (int)left;
	memcpy(p, t->conn.body.p + t->body_off, (size_t)n);
	t->body_off += (size_t)n;
	return n;
}

/* A coroutine's whole life: one request, answered. */
static void
run_task(void *arg)
{
	struct task	*t = arg;
	struct app	*app = t->loop->app;

	t->x.read = body_read;
	t->x.read_ctx = t;
	app_exchange_run(app, &t->x, t->conn.envp, t->conn.fd, t->conn.id);
	t->answered = fcgiconn_answer(&t->conn, t->x.out.p, t->x.out.len,
	    ANSWER_MS) == 0;
	app_exchange_end(app, &t->x, t->answered);
}

/* The per-request state of t, for a request about to arrive on fd. */
static void
task_reset(struct task *t, int fd)
{
	t->state = TASK_READING;
	t->since_us = util_mono_us();
	t->body_off = 0;
	memset(&t->who, 0, sizeof(t->who));
	t->auth_code = t->auth_blind = t->txn_depth = 0;
	t->db_changed = 0;
	t->auth_why = NULL;
	t->held = 0;
	t->fcgi_fd = fd;
	t->answered = 0;
}

/* Back to FREE: the connection closed, the memory kept for the next. */
static void
task_end(struct loop *L, struct task *t)
{
	if (t->conn.fd >= 0)
		close(t->conn.fd);
	t->conn.fd = -1;
	arena_reset(&t->arena);
	t->state = TASK_FREE;
	L->live--;
	show_connections(L);
}

/*
 * t's request is answered.  When nginx keeps the connection
 * (fastcgi_keep_conn) and the answer went out, so does t, for the next
 * request; else the connection closes.
 */
static void
task_done(struct loop *L, struct task *t)
{
	if (t->answered && !L->closing) {
		arena_reset(&t->arena);
		if (fcgiconn_next(&t->conn, &t->arena) == 0) {
			task_reset(t, t->conn.fd);
			t->kept = 1;
			return;
		}
	}
	task_end(L, t);
}

/* A runner for a request about to start; NULL when out of memory. */
static struct runner *
runner_get(struct loop *L)
{
	struct runner	*r;

	if ((r = L->idle) != NULL) {
		L->idle = r->next;
		return r;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if ((r->co = coro_new(TASK_STACK)) == NULL)
		goto fail;
	if (wechat_init(&r->wx, L->wo, L->app->wx.cache) == -1) {
		coro_free(r->co);
		goto fail;
	}
	return r;
fail:
	free(r);
	return NULL;
}

static void
runner_free(struct runner *r)
{
	wechat_free(&r->wx);
	coro_free(r->co);
	free(r);
}

/*
 * Run t's coroutine until it yields or ends (start: from the top).  While
 * it runs it holds the process: request_terminate_timeout counts (the
 * watchdog is armed by app_exchange_run for a start, here for a resume).
 */
static void
step(struct loop *L, struct task *t, int start)
{
	struct app	*app = L->app;
	int		 more;

	if (start && (t->run = runner_get(L)) == NULL) {
		log_error("out of memory for a request: connection dropped");
		task_end(L, t);
		return;
	}
	swap_state(app, t);
	L->cw.current = &t->cw;
	if (!start && t != &L->probe) {
		log_set_request(t->x.rq.id, t->x.rq.trace.trace_id,
		    t->x.rq.trace.span_id);
		app_watchdog_arm(t->conn.fd, t->conn.id, &t->x.rq);
	}
	t->state = TASK_RUNNING;
	more = start ? coro_start(t->run->co, t == &L->probe ? run_probe :
	    run_task, t) : coro_resume(t->run->co);
	app_watchdog_disarm();
	log_set_request(NULL, NULL, NULL);
	L->cw.current = NULL;
	swap_state(app, t);
	if (!more) {
		t->run->next = L->idle;
		L->idle = t->run;
		t->run = NULL;
		if (t == &L->probe)
			t->state = TASK_FREE;
		else
			task_done(L, t);
	}
}

/*
 * What t, running, waits for: its descriptor into wfd/wt (at *n), its
 * time out into *wake_us.
 */
static void
task_waits(struct task *t, struct curl_waitfd *wfd, struct task **wt,
    int *n, int64_t *wake_us)
{
	int64_t	due;

	if (t->state != TASK_RUNNING)
		return;
	if (cowait_fd_wanted(&t->cw, &wfd[*n]))
		wt[(*n)++] = t;
	if ((due = cowait_due(&t->cw)) > 0 && (*wake_us == 0 || due < *wake_us))
		*wake_us = due;
}

/* Resume t, running, if its wait timed out by now. */
static void
task_timeout(struct loop *L, struct task *t, int64_t now)
{
	int64_t	due;

	if (t->state == TASK_RUNNING && (due = cowait_due(&t->cw)) > 0 &&
	    due <= now)
		step(L, t, 0);
}

/* A FREE task for a new connection; NULL when all are busy. */
static struct task *
task_get(struct loop *L)
{
	struct task	*t;
	int		 i;

	for (i = 0; i < L->max; i++) {
		t = &L->tasks[i];
		if (t->state != TASK_FREE)
			continue;
		if (!t->inited) {
			arena_init(&t->arena, TASK_ARENA, 1);
			t->inited = 1;
		}
		return t;
	}
	return NULL;
}

/* Accept what waits on lfd, while there are free tasks. */
static void
accept_all(struct loop *L, int lfd)
{
	struct task	*t;
	int		 fd;

	while (L->live < L->max) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN &&
			    errno != EINTR && errno != ECONNABORTED)
				log_error("accept failed: %s", strerror(errno));
			return;
		}
		if ((t = task_get(L)) == NULL) {	/* live < max: never */
			close(fd);
			return;
		}
		fcgiconn_init(&t->conn, fd, &t->arena,
		    (size_t)L->app->cfg.max_body_bytes);
		task_reset(t, fd);
		t->kept = 0;
		L->live++;
		L->accepted++;
		show_connections(L);
	}
}

/* The tasks woken, and those whose transfers curl finished: resumed. */
static void
transfers_done(struct loop *L)
{
	struct cowait_task	*cw;

	while ((cw = cowait_done(&L->cw)) != NULL)
		step(L, cw->owner, 0);
}

/*
 * Every coroutine that could run has: the logins they left waiting run as
 * one statement (lib/dbbatch), and their coroutines go on -- once no
 * coroutine's call holds the connection (it will be given back in a later
 * turn, by its deadline at the latest).  While it runs,
 * request_terminate_timeout counts for the login that waited longest: if
 * it fires, that one is answered 503, and the others are cut with the
 * process, as any request in flight is when one of them hangs it.
 */
static void
run_logins(struct loop *L)
{
	struct app	*app = L->app;
	struct task	*t;

	while (dbbatch_pending(&app->logins) && !L->dblock.held) {
		t = dbbatch_first(&app->logins)->owner;
		app->db.changed = 0;
		app_watchdog_arm(t->conn.fd, t->conn.id, &t->x.rq);
		dbbatch_run(&app->logins);
		app_watchdog_disarm();
		transfers_done(L);
	}
}

int
app_serve_concurrent(struct app *app, int lfd, int max,
    volatile sig_atomic_t *stop, volatile sig_atomic_t *reopen,
    unsigned long limit)
{
	struct loop		 L = { .app = app, .max = max,
	    .cw = { .may_yield = may_yield, .arg = app } };
	struct wechat_opts	 wo = app->wx.o;
	struct curl_waitfd	*wfd = NULL;
	struct task		*t, **wt = NULL;
	struct runner		*r;
	int64_t			 now, wake_us, in, drain_until = 0;
	int			 i, n, active, incoming, ready, linger;
	int			 stopping = 0, rc = -1;

	/* Polled: the listening socket, one per task, the probe's. */
	if (fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK) == -1 ||
	    cowait_init(&L.cw) == -1 ||
	    (L.tasks = calloc((size_t)max, sizeof(*L.tasks))) == NULL ||
	    (wfd = calloc((size_t)max + 2, sizeof(*wfd))) == NULL ||
	    (wt = calloc((size_t)max + 2, sizeof(*wt))) == NULL) {
		log_error("cannot set up the concurrent loop: %s",
		    strerror(errno));
		goto out;
	}
	for (i = 0; i < max; i++) {
		L.tasks[i].loop = &L;
		L.tasks[i].conn.fd = -1;
		L.tasks[i].cw.owner = &L.tasks[i];
	}
	L.probe.loop = &L;
	L.probe.conn.fd = -1;
	L.probe.cw.owner = &L.probe;
	L.probe.fcgi_fd = -1;
	arena_init(&L.probe.arena, TASK_ARENA, 1);
	L.probe.inited = 1;
	app->logins.cw = &L.cw;
	cowait_lock_init(&L.dblock);
	L.dbio = (struct db_io){ .take = db_io_take, .give = db_io_give,
	    .wait = db_io_wait, .arg = &L };
	app->db.o.io = &L.dbio;
	wo.perform = cowait_perform;
	wo.pause = cowait_pause;
	wo.io_arg = &L.cw;
	L.wo = &wo;
	log_info("concurrent loop: up to %d connections, their requests in "
	    "flight together", max);
	for (;;) {
		now = util_mono_us();
		if (!stopping && (*stop || (limit > 0 && app->served >= limit))) {
			stopping = 1;
			drain_until = now + app->cfg.keepalive_drain_ms * 1000;
			log_info("%s: answering the requests in flight and those "
			    "of the %d connections nginx keeps, then exiting",
			    *stop ? "signal" : "max_requests", L.live);
			/*
			 * Recycled, not stopped: the successor starts now, so
			 * that the socket has a responder that accepts while
			 * this one drains (seconds, while nginx keeps
			 * connections).  Two draining at once left a socket
			 * none, and connections waited in its backlog.
			 * Without a supervisor of wxapp-fcgi -f, nothing to do.
			 */
			if (!*stop)
				(void)prefork_retiring();
		}
		/*
		 * A stopping responder takes no new connection but serves the
		 * ones nginx keeps until nginx closes them (keepalive_timeout,
		 * keepalive_time): closing one itself could race a request
		 * nginx is sending on it, which nginx never retries for a
		 * POST.  After keepalive_drain_ms it closes what is left.
		 */
		if (stopping && !L.closing && now >= drain_until) {
			L.closing = 1;
			for (i = 0; i < max; i++)
				if (L.tasks[i].state == TASK_READING)
					task_end(&L, &L.tasks[i]);
		}
		/* A probe in flight ends first: it may hold the connection. */
		if (stopping && L.live == 0 && L.probe.state == TASK_FREE)
			break;
		if (*reopen) {
			*reopen = 0;
			if (log_reopen() == -1)
				log_error("cannot reopen %s: %s",
				    app->cfg.log_file, strerror(errno));
		}
		/*
		 * What to wait for: new connections, requests arriving,
		 * PostgreSQL's socket, timers.
		 */
		n = 0;
		if (!stopping && L.live < max) {
			wt[n] = NULL;
			wfd[n].fd = lfd;
			wfd[n].events = CURL_WAIT_POLLIN;
			wfd[n++].revents = 0;
		}
		wake_us = stopping ? drain_until : 0;
		active = 0;
		for (i = 0; i < max; i++) {
			t = &L.tasks[i];
			active += t->state == TASK_RUNNING ||
			    (t->state == TASK_READING && !fcgiconn_idle(&t->conn));
			if (t->state == TASK_READING) {
				wt[n] = t;
				wfd[n].fd = t->conn.fd;
				wfd[n].events = CURL_WAIT_POLLIN;
				wfd[n++].revents = 0;
			} else
				task_waits(t, wfd, wt, &n, &wake_us);
		}
		task_waits(&L.probe, wfd, wt, &n, &wake_us);
		if ((in = app_probe_in(app)) >= 0 &&
		    (wake_us == 0 || now + in < wake_us))
			wake_us = now + in;
		/*
		 * Nothing in flight: the access log's buffer goes out once
		 * the process has had nothing to do for LOG_IDLE_US.  Under
		 * load the next request mostly comes sooner, and the timer's
		 * tick writes the buffer (every access_log_flush_ms): a
		 * write(2) in every idle turn was one per two requests.
		 */
		linger = active == 0 && log_pending();
		if (linger && (wake_us == 0 || now + LOG_IDLE_US < wake_us))
			wake_us = now + LOG_IDLE_US;
		cowait_poll(&L.cw, wfd, (unsigned)n, wake_us);
		for (i = 0, ready = 0; i < n; i++)
			ready |= wfd[i].revents != 0;
		if (linger && !ready)
			log_flush();
		/*
		 * Probes only in a turn with nothing to do: a hung Redis
		 * keeps the process waiting (as it keeps a request).
		 */
		if (!ready && active == 0 && !stopping &&
		    L.probe.state == TASK_FREE)
			step(&L, &L.probe, 1);
		/* The listening socket, when polled, is the first. */
		incoming = n > 0 && wt[0] == NULL && wfd[0].revents != 0;
		/*
		 * Requests that arrived whole start their coroutines; those
		 * whose PostgreSQL socket is ready go on.
		 */
		for (i = 0; i < n; i++) {
			if ((t = wt[i]) == NULL || wfd[i].revents == 0)
				continue;
			if (t->state == TASK_RUNNING &&
			    t->cw.waiting == COWAIT_FD) {
				cowait_fd_ready(&t->cw);
				step(&L, t, 0);
				continue;
			}
			if (t->state != TASK_READING)
				continue;
			/* READ_MS counts from a request's first byte. */
			if (fcgiconn_idle(&t->conn))
				t->since_us = util_mono_us();
			switch (fcgiconn_read(&t->conn, &t->arena)) {
			case FCGICONN_READY:
				step(&L, t, 1);
				break;
			case FCGICONN_FAILED:
				if (strcmp(t->conn.error, "closed by the peer") != 0)
					log_warn("fastcgi connection dropped: %s",
					    t->conn.error);
				task_end(&L, t);
				break;
			case FCGICONN_READING:
				break;
			}
		}
		transfers_done(&L);
		now = util_mono_us();
		for (i = 0; i < max; i++) {
			t = &L.tasks[i];
			if (t->state == TASK_RUNNING)
				task_timeout(&L, t, now);
			else if (t->state == TASK_READING &&
			    (!t->kept || !fcgiconn_idle(&t->conn)) &&
			    now - t->since_us > READ_MS * 1000LL) {
				log_warn("fastcgi connection dropped: no whole "
				    "request within %d ms", READ_MS);
				task_end(&L, t);
			}
		}
		task_timeout(&L, &L.probe, now);
		run_logins(&L);
		if (incoming && !stopping && L.live < max)
			accept_all(&L, lfd);
	}
	rc = 0;
out:
	if (L.tasks != NULL) {
		for (i = 0; i < max; i++) {
			t = &L.tasks[i];
			if (t->run != NULL)
				runner_free(t->run);
			if (t->inited)
				arena_free(&t->arena);
		}
		free(L.tasks);
	}
	if (L.probe.run != NULL)
		runner_free(L.probe.run);
	if (L.probe.inited)
		arena_free(&L.probe.arena);
	while ((r = L.idle) != NULL) {
		L.idle = r->next;
		runner_free(r);
	}
	free(wfd);
	free(wt);
	app->logins.cw = NULL;
	app->db.o.io = NULL;
	cowait_free(&L.cw);
	return rc;
}

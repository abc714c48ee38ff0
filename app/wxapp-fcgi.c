/*
 * wxapp-fcgi: the FastCGI responder.  One request at a time from the
 * FCGX_Accept_r loop; run by spawn-fcgi (listening socket on fd 0) under a
 * supervisor, or standalone with --listen for development.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "app.h"
#include "log.h"
#include "prefork.h"
#include "shm.h"
#include "util.h"

_Static_assert(RATE_NCLASSES <= POOL_RATE_CLASSES,
    "the shared memory counts refusals of every rate-limit class");
_Static_assert(COLL_COUNT <= POOL_COLLECTIONS &&
    COLL_COUNT <= NEARCACHE_COLLECTIONS,
    "the shared memory counts writes of every collection");

#define ARENA_BLOCK	(128 * 1024)
#define ARENA_KEEP	4
#define RSS_EVERY	64	/* requests between RSS samples */
#define CONCURRENT_MAX	4096	/* -C: requests in flight per process */

static volatile sig_atomic_t	stop_signal;
static volatile sig_atomic_t	reopen_log;

/*
 * What the request_terminate_timeout handler needs, prepared before each
 * request so that the handler itself only reads the clock, copies bytes,
 * adds to the pool's counters (lock-free atomics) and calls write(2) and
 * _exit(2), which are async-signal-safe.
 */
static struct {
	int		 fcgi_fd;
	int		 fcgi_id;
	int		 log_fd;
	long long	 limit_s;
	char		 what[160];	/* method and path, JSON-safe */
	char		 reqid[REQ_ID_MAX + 1];
	char		 traceparent[TRACE_HEADER_LEN + 1];	/* or "" */
	char		 trace_id[33], span_id[17];
	int64_t		 deadline_us;	/* monotonic, of the request in flight */
	int		 active;	/* a request is in flight (atomic) */
	struct pool_metrics *m;		/* NULL: not counted (metrics off) */
	/* The request in flight sent a change (app.db.changed). */
	const volatile sig_atomic_t *changed;
	/* Where its 503 is counted: by its route (atomic pointers). */
	_Atomic uint64_t *answered;
	struct metrics_hist *took;
} watchdog;

static void
on_stop(int sig)
{
	stop_signal = sig;
	/*
	 * libfcgi goes back to accept(2) by itself when a connection breaks
	 * before its request arrives; this flag (all it sets) makes it
	 * return instead.
	 */
	FCGX_ShutdownPending();
}

static void
on_hup(int sig)
{
	(void)sig;
	reopen_log = 1;
}

/* Append s to dst at *n (bounded by cap). */
static void
wd_add(char *dst, size_t *n, size_t cap, const char *s)
{
	while (*s != '\0' && *n < cap)
		dst[(*n)++] = *s++;
}

/* Append v in decimal. */
static void
wd_num(char *dst, size_t *n, size_t cap, long long v)
{
	char	tmp[24];
	int	i = 0;

	do
		tmp[i++] = (char)('0' + v % 10);
	while ((v /= 10) > 0 && i < 23);
	while (i > 0 && *n < cap)
		dst[(*n)++] = tmp[--i];
}

/* A FastCGI record header for type and length. */
static void
wd_header(unsigned char *h, int type, size_t len)
{
	h[0] = 1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(watchdog.fcgi_id >> 8);
	h[3] = (unsigned char)watchdog.fcgi_id;
	h[4] = (unsigned char)(len >> 8);
	h[5] = (unsigned char)len;
	h[6] = h[7] = 0;
}

/*
 * request_terminate_timeout: the request ran too long.  Answer 503 with
 * raw FastCGI records (nothing of the answer has been written: output
 * goes out in one piece after the handler), log the method and path, and
 * exit for the supervisor to start a fresh responder.
 */
static void
on_alarm(int sig)
{
	static const char	 body[] = "{\"code\":50300,\"data\":null,"
	    "\"message\":\"the request took too long\"}";
	static const char	 in_doubt[] = "{\"code\":50304,\"data\":null,"
	    "\"message\":\"the request took too long after a change was "
	    "sent to the database: it may have been made\"}";
	const char		*b;
	size_t			 blen;
	unsigned char		 rec[1024], end[8] = { 0 };
	char			*p = (char *)rec + 8, line[512];
	size_t			 n = 0, cap = sizeof(rec) - 8, ln = 0;
	struct timespec		 ts;
	_Atomic uint64_t	*answered;
	struct metrics_hist	*took;
	int64_t			 now;

	(void)sig;
	/* Access lines do not wait for the next request. */
	log_tick();
	/* A tick: nothing in flight, or not late yet. */
	if (!watchdog.limit_s ||
	    !__atomic_load_n(&watchdog.active, __ATOMIC_ACQUIRE) ||
	    clock_gettime(CLOCK_MONOTONIC, &ts) == -1 ||
	    (now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000) <
	    watchdog.deadline_us)
		return;
	/* Counted before the answer leaves, as every answer is. */
	if ((answered = __atomic_load_n(&watchdog.answered,
	    __ATOMIC_ACQUIRE)) != NULL)
		metrics_add(answered, 1);
	/* It ran at least this long: since it was last let run. */
	if ((took = __atomic_load_n(&watchdog.took, __ATOMIC_ACQUIRE)) != NULL)
		metrics_observe(took, now - watchdog.deadline_us +
		    watchdog.limit_s * 1000000);
	wd_add(p, &n, cap, "Status: 503 Service Unavailable\r\n"
	    "Content-Type: application/json; charset=utf-8\r\n"
	    "Cache-Control: no-store\r\nX-Request-Id: ");
	wd_add(p, &n, cap, watchdog.reqid);
	if (watchdog.traceparent[0] != '\0') {
		wd_add(p, &n, cap, "\r\ntraceparent: ");
		wd_add(p, &n, cap, watchdog.traceparent);
	}
	/* A write cut after it was sent may be done: not "nothing was". */
	if (watchdog.changed != NULL && *watchdog.changed)
		b = in_doubt, blen = sizeof(in_doubt) - 1;
	else
		b = body, blen = sizeof(body) - 1;
	wd_add(p, &n, cap, "\r\nContent-Length: ");
	wd_num(p, &n, cap, (long long)blen);
	wd_add(p, &n, cap, "\r\n\r\n");
	wd_add(p, &n, cap, b);
	wd_header(rec, 6 /* FCGI_STDOUT */, n);
	(void)!write(watchdog.fcgi_fd, rec, n + 8);
	wd_header(rec, 6, 0);
	(void)!write(watchdog.fcgi_fd, rec, 8);
	wd_header(rec, 3 /* FCGI_END_REQUEST */, 8);
	memcpy(rec + 8, end, sizeof(end));
	(void)!write(watchdog.fcgi_fd, rec, 16);
	wd_add(line, &ln, sizeof(line) - 1, "{\"level\":\"error\",\"pid\":");
	wd_num(line, &ln, sizeof(line) - 1, (long long)getpid());
	wd_add(line, &ln, sizeof(line) - 1, ",\"request_id\":\"");
	wd_add(line, &ln, sizeof(line) - 1, watchdog.reqid);
	if (watchdog.trace_id[0] != '\0' && watchdog.span_id[0] != '\0') {
		wd_add(line, &ln, sizeof(line) - 1, "\",\"trace_id\":\"");
		wd_add(line, &ln, sizeof(line) - 1, watchdog.trace_id);
		wd_add(line, &ln, sizeof(line) - 1, "\",\"span_id\":\"");
		wd_add(line, &ln, sizeof(line) - 1, watchdog.span_id);
	}
	wd_add(line, &ln, sizeof(line) - 1, "\",\"msg\":\"request_terminate_"
	    "timeout: ");
	wd_add(line, &ln, sizeof(line) - 1, watchdog.what);
	wd_add(line, &ln, sizeof(line) - 1, " ran longer than ");
	wd_num(line, &ln, sizeof(line) - 1, watchdog.limit_s);
	wd_add(line, &ln, sizeof(line) - 1, " s: answered 503, exiting\"}\n");
	(void)!write(watchdog.log_fd, line, ln);
	_exit(1);
}

/*
 * One timer, set once, for request_terminate_timeout (seconds, 0: none)
 * and for writing buffered access lines (flush_ms, 0: none).  It ticks
 * every tenth of the limit or every flush_ms, whichever is shorter, within
 * 0.1 s to 1 s: a request is cut up to one tick after its limit, rather
 * than two setitimer(2) calls around every request.  changed: whether
 * the request in flight sent PostgreSQL a change (its 503 is then 50304).
 */
static int
watchdog_start(long long seconds, long long flush_ms, struct pool_metrics *m,
    const volatile sig_atomic_t *changed)
{
	struct itimerval	it;
	long long		tick_us = 1000000;

	if (seconds > 0 && seconds * 100000 < tick_us)
		tick_us = seconds * 100000;
	if (flush_ms > 0 && flush_ms * 1000 < tick_us)
		tick_us = flush_ms * 1000;
	if (tick_us < 100000)
		tick_us = 100000;
	memset(&it, 0, sizeof(it));
	it.it_interval.tv_sec = (time_t)(tick_us / 1000000);
	it.it_interval.tv_usec = (suseconds_t)(tick_us % 1000000);
	it.it_value = it.it_interval;
	watchdog.limit_s = seconds;
	watchdog.m = m;
	watchdog.changed = changed;
	return setitimer(ITIMER_REAL, &it, NULL);
}

/* Where the watchdog counts rq's 503: its route's, or none's. */
static void
watchdog_route(const struct req *rq)
{
	size_t	r = app_nroutes;

	if (watchdog.m == NULL)
		return;
	if (rq->route != NULL)
		r = (size_t)(app_route_of(rq) - app_routes);
	__atomic_store_n(&watchdog.answered,
	    &watchdog.m->requests[r][pool_code_index(503)], __ATOMIC_RELEASE);
	__atomic_store_n(&watchdog.took, &watchdog.m->duration[r],
	    __ATOMIC_RELEASE);
}

void
app_watchdog_arm(int fd, int fcgi_id, const struct req *rq)
{
	size_t		n = 0, i;
	const char	*s;

	if (watchdog.limit_s == 0)
		return;
	/* Not read half-written by a tick. */
	__atomic_store_n(&watchdog.active, 0, __ATOMIC_RELEASE);
	watchdog.fcgi_fd = fd;
	watchdog.fcgi_id = fcgi_id;
	watchdog.log_fd = log_fd();
	memcpy(watchdog.reqid, rq->id, sizeof(watchdog.reqid));
	memcpy(watchdog.trace_id, rq->trace.trace_id, sizeof(watchdog.trace_id));
	memcpy(watchdog.span_id, rq->trace.span_id, sizeof(watchdog.span_id));
	trace_header(&rq->trace, watchdog.traceparent);
	watchdog_route(rq);
	for (i = 0; i < 2; i++) {
		for (s = i == 0 ? rq->method : rq->path; *s != '\0' &&
		    n < sizeof(watchdog.what) - 2; s++)
			watchdog.what[n++] = (*s < 0x20 || *s == '"' ||
			    *s == '\\' || (unsigned char)*s >= 0x7f) ? '?' : *s;
		if (i == 0)
			watchdog.what[n++] = ' ';
	}
	watchdog.what[n] = '\0';
	watchdog.deadline_us = util_mono_us() + watchdog.limit_s * 1000000;
	__atomic_store_n(&watchdog.active, 1, __ATOMIC_RELEASE);
}

void
app_watchdog_disarm(void)
{
	__atomic_store_n(&watchdog.active, 0, __ATOMIC_RELEASE);
}

/*
 * Stop signals end the process after the request in flight.  No
 * SA_RESTART: a signal must interrupt accept(2) so an idle responder
 * exits at once (FCGI_FAIL_ACCEPT_ON_INTR).
 */
static int
install_signals(void)
{
	struct sigaction	sa;

	if (app_signals(on_stop, on_hup) == -1)
		return -1;
	/* Ticks (see watchdog_start) must not break a read or a write. */
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	return sigaction(SIGALRM, &sa, NULL);
}

/* A connection is waiting on the listening socket fd. */
static int
connection_waiting(int fd)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };

	return poll(&pfd, 1, 0) == 1;
}

int64_t
app_probe_in(struct app *app)
{
	int64_t	pg, rd;

	pg = guard_trial_in(&app->guards[DEP_POSTGRES]);
	rd = guard_trial_in(&app->guards[DEP_REDIS]);
	if (pg < 0 && rd < 0)
		return -1;
	return pg < 0 ? rd : rd < 0 ? pg : pg < rd ? pg : rd;
}

void
app_probe_stores(struct app *app)
{
	/*
	 * What Redis reported while we waited outdates the host's copies now,
	 * not at our next request, after which fresher copies would go too.
	 */
	(void)nearcache_sync(&app->near, &app->cache);
	/*
	 * Once each: a probe of a hung store waits out its deadline, and a
	 * second one in a row would keep the requests that came meanwhile
	 * waiting for as long again.
	 */
	if (guard_trial_in(&app->guards[DEP_POSTGRES]) == 0)
		(void)db_ping(&app->db);
	if (guard_trial_in(&app->guards[DEP_REDIS]) == 0)
		(void)cache_ping(&app->cache);
}

/*
 * Wait for a connection on the listening socket fd, probing the stores
 * meanwhile (app_probe_stores).  0 when a connection may be waiting; -1
 * when a signal came (the caller looks at its flags).
 */
static int
await_request(struct app *app, int fd)
{
	struct pollfd	pfd = { fd, POLLIN, 0 };
	int64_t		in;
	int		n;

	for (;;) {
		if (!connection_waiting(fd))
			app_probe_stores(app);
		if ((in = app_probe_in(app)) < 0)
			return 0;
		if ((n = poll(&pfd, 1, (int)(in > 1000000 ? 1000 :
		    (in + 999) / 1000))) == 1)
			return 0;
		if (n == -1)
			return -1;
	}
}

static int
fcgi_read(void *ctx, char *p, int n)
{
	return FCGX_GetStr(p, n, ctx);
}

/* Resident set size in KiB, from /proc/self/statm; 0 when unknown. */
static uint64_t
rss_kb(void)
{
	FILE			*f;
	unsigned long long	 size, resident = 0;

	if ((f = fopen("/proc/self/statm", "r")) == NULL)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return resident * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}

/*
 * Serve a request routed to r: identify the caller, find a read's shared
 * answer (one round trip that carries the rate limit's call too), decide
 * the rate limit -- here and only here, for every request, refused
 * callers by their address so that a flood of bad tokens is limited too --
 * then refuse, or read the body and answer.
 */
static void
serve(struct app *app, const struct app_route *r, struct app_exchange *x)
{
	struct req		*rq = &x->rq;
	struct resp		*rs = &x->rs;
	struct app_limit	 lim;
	struct read_plan	 rp;
	int			 authed, planned = 0;

	authed = auth_identify(app, rq);
	limits_prepare(app, rq, &lim);
	if (authed == 0 && req_parse_query(rq, rs) == 0 && r->plan != NULL &&
	    r->plan(app, rq, rs, &rp) == 0) {
		planned = 1;
		app_negotiate(rq, &rp);
		if (rp.key != NULL)
			app_fetch(app, rq, &rp, &lim);
	}
	if (limits_decide(app, rq, rs, &lim) == -1)
		return;
	if (authed == -1) {
		auth_refuse(app, rs);
		return;
	}
	if (resp_is_set(rs))
		return;
	if (planned)
		app_read(app, rq, rs, &rp);
	else if (req_read_body(rq, rs, app->cfg.max_body_bytes, x->read,
	    x->read_ctx) == -1)
		return;
	else if (r->flags & ROUTE_IDEMPOTENT)
		app_idempotent(app, r, rq, rs);
	else
		r->fn(app, rq, rs);
}

/* The server span, once the route is known: "GET /api/v1/items/{id}". */
static void
server_span_route(struct app_exchange *x, const struct app_route *r)
{
	const char	*name;

	if (!spans_recording(&x->spans))
		return;
	if ((name = arena_printf(x->spans.a, "%s %s", r->r.method,
	    r->r.pattern)) != NULL)
		spans_rename(&x->spans, name);
	span_attr_str(&x->spans.v[0], "http.route", r->r.pattern);
}

/* The request in the pool's metrics: by route (or none) and status. */
static void
count(struct app *app, const struct req *rq, int status, int64_t us)
{
	struct pool_metrics	*m = &app->pool->metrics;
	size_t			 r = app_nroutes;

	if (!app->cfg.metrics)
		return;
	if (rq->route != NULL)
		r = (size_t)(app_route_of(rq) - app_routes);
	metrics_add(&m->requests[r][pool_code_index(status)], 1);
	metrics_observe(&m->duration[r], us);
}

void
app_exchange_run(struct app *app, struct app_exchange *x, char **envp,
    int fd, int fcgi_id)
{
	struct req	*rq = &x->rq;
	struct resp	*rs = &x->rs;
	char		 tp[TRACE_HEADER_LEN + 1];

	x->start = util_mono_us();
	app->db.busy_us = app->cache.busy_us = app->wx.busy_us = 0;
	app->db.changed = 0;
	app->fcgi_fd = fd;
	req_init(rq, &app->arena, envp);
	log_set_request(rq->id, rq->trace.trace_id, rq->trace.span_id);
	resp_init(rs, &app->arena);
	/*
	 * Spans are recorded when they can go somewhere, and the trace is
	 * sampled: by the caller's traceparent (unless trace_trust_parent is
	 * off), or by trace_sample_ratio.
	 */
	if (app->tracing && app->cfg.trace_trust_parent)
		trace_sample(&rq->trace, app->cfg.trace_sample_ratio);
	else if (app->tracing)
		trace_sample_any(&rq->trace, app->cfg.trace_sample_ratio);
	spans_start(&x->spans, &app->arena, app->tracing ? &rq->trace : NULL,
	    rq->method);
	span_attr_str(spans_recording(&x->spans) ? &x->spans.v[0] : NULL,
	    "http.request.method", rq->method);
	app->db.spans = app->cache.spans = app->wx.spans = &x->spans;
	/* WeChat's calls: each a span of its own in the request's trace. */
	app->wx.trace = &rq->trace;
	scoreboard_begin(&app->pool->sb, app->slot, rq->method, rq->path,
	    x->start);
	app_watchdog_arm(fd, fcgi_id, rq);
	if (router_match(app_routes, app_nroutes, sizeof(app_routes[0]), rq,
	    rs) == ROUTE_FOUND) {
		watchdog_route(rq);
		server_span_route(x, app_route_of(rq));
		serve(app, app_route_of(rq), x);
	}
	app_watchdog_disarm();
	if (!resp_is_set(rs)) {
		log_error("%s %s: handler gave no answer", rq->method, rq->path);
		resp_error(rs, API_INTERNAL, "internal error");
	}
	trace_header(&rq->trace, tp);
	if (tp[0] != '\0')
		resp_header_str(rs, "traceparent", tp);
	resp_serialize(rs, rq->id, rq->head, &x->out);
	/* Counted before the answer leaves: whoever has it sees it counted. */
	count(app, rq, rs->status, util_mono_us() - x->start);
}

/*
 * Hand the request's spans, if it kept any, to wxapp-otlp: one datagram,
 * never waited for; what cannot go is counted and dropped.
 */
static void
export_spans(struct app *app, struct app_exchange *x)
{
	struct span	*server = &x->spans.v[0];
	struct buf	 b;

	span_attr_int(server, "http.response.status_code", x->rs.status);
	buf_init(&b, &app->arena, 2048);
	if (spans_encode(&x->spans, x->rs.status >= 500, &b) == 0 &&
	    span_sink_send(&app->otlp, b.p, b.len) == -1)
		metrics_add(&app->pool->metrics.spans_dropped[SPANS_HANDOVER],
		    (uint64_t)x->spans.n);
	if (x->spans.dropped > 0)
		metrics_add(&app->pool->metrics.spans_dropped[SPANS_CAP],
		    x->spans.dropped);
	spans_end(&x->spans);
}

void
app_exchange_end(struct app *app, struct app_exchange *x, int written)
{
	struct req		*rq = &x->rq;
	struct log_access	 al;
	int64_t			 total;
	int			 slow;

	if (!written)
		log_info("%s %s: client went away", rq->method, rq->path);
	total = util_mono_us() - x->start;
	slow = app->cfg.slow_request_ms > 0 &&
	    total >= app->cfg.slow_request_ms * 1000;
	if (slow)
		log_warn("slow request: %s %s took %lld us (postgres %lld us, "
		    "redis %lld us, wechat %lld us)", rq->method, rq->path,
		    (long long)total, (long long)app->db.busy_us,
		    (long long)app->cache.busy_us, (long long)app->wx.busy_us);
	al.request_id = rq->id;
	al.method = rq->method;
	al.path = rq->path;
	al.remote_addr = rq->remote_addr;
	al.trace_id = rq->trace.trace_id;
	al.span_id = rq->trace.span_id;
	al.status = x->rs.status;
	al.duration_us = total;
	al.bytes = x->out.len;
	log_access(&al);
	app->served++;
	scoreboard_end(&app->pool->sb, app->slot, total, slow,
	    app->served % RSS_EVERY == 0 ? rss_kb() : 0, app->near.hits);
	if (spans_recording(&x->spans))
		export_spans(app, x);
	app->db.spans = app->cache.spans = app->wx.spans = NULL;
	req_finish(rq);
	app->wx.trace = NULL;
	log_set_request(NULL, NULL, NULL);
}

/* Answer one request of libfcgi's loop: run it, write once, end it. */
static void
app_handle(struct app *app, FCGX_Request *fr)
{
	struct app_exchange	x;

	x.read = fcgi_read;
	x.read_ctx = fr->in;
	app_exchange_run(app, &x, fr->envp, fr->ipcFd, fr->requestId);
	app_exchange_end(app, &x, FCGX_PutStr(x.out.p, (int)x.out.len,
	    fr->out) >= 0 && FCGX_FFlush(fr->out) >= 0);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: wxapp-fcgi [-t] [-c config] [-u user] "
	    "[--listen path|host:port]\n"
	    "                  [-f children [--retries n] [--retry-ms ms]] "
	    "[-C concurrent]\n");
}

/*
 * -t: can the responder write what it will write?  Checked as `user`
 * (root only: this process becomes that user, it exits right after),
 * else as whoever runs -t: the config must be readable and log_file
 * writable, or its directory when the file does not exist yet.
 */
static int
check_files(const char *cfgpath, const struct config *c, const char *user,
    char *err, size_t errlen)
{
	struct passwd	*pw;
	char		 dir[PATH_MAX], *slash;
	const char	*who = "this user";
	int		 fd;

	if (user != NULL) {
		if ((pw = getpwnam(user)) == NULL) {
			snprintf(err, errlen, "no user %s", user);
			return -1;
		}
		if (pw->pw_uid != geteuid() && (geteuid() != 0 ||
		    initgroups(pw->pw_name, pw->pw_gid) == -1 ||
		    setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1)) {
			snprintf(err, errlen, "cannot become %s: %s", user,
			    geteuid() != 0 ? "-u needs root" : strerror(errno));
			return -1;
		}
		who = user;
	}
	if (cfgpath != NULL && access(cfgpath, R_OK) == -1) {
		snprintf(err, errlen, "not readable by %s: %s", who,
		    strerror(errno));
		return -1;
	}
	if (c->log_file[0] == '\0')
		return 0;
	if ((fd = open(c->log_file, O_WRONLY | O_APPEND | O_NOCTTY |
	    O_NONBLOCK | O_CLOEXEC)) != -1) {
		close(fd);
		return 0;
	}
	if (errno == ENOENT) {
		if ((size_t)snprintf(dir, sizeof(dir), "%s", c->log_file) >=
		    sizeof(dir)) {
			snprintf(err, errlen, "log_file is too long");
			return -1;
		}
		if ((slash = strrchr(dir, '/')) == NULL)
			strcpy(dir, ".");
		else if (slash == dir)
			dir[1] = '\0';
		else
			*slash = '\0';
		if (access(dir, W_OK | X_OK) == 0)
			return 0;
	}
	snprintf(err, errlen, "log_file %s cannot be written by %s: %s",
	    c->log_file, who, strerror(errno));
	return -1;
}

/*
 * The supervisor's count of responders started again, in the pool's
 * shared memory (attached on the first, after the responders made it).
 */
static void
count_restart(void *arg)
{
	struct app	*app = arg;
	struct pool	*pool;

	if (!app->cfg.metrics)
		return;
	if (app->shm.hdr == NULL && shm_attach(&app->shm, app->cfg.shm_name,
	    &pool_layout) == -1)
		return;
	pool = app->shm.data;
	metrics_add(&pool->metrics.restarts, 1);
}

/* max_requests plus a random share of max_requests_jitter (0 = never). */
static unsigned long
recycle_after(const struct config *c)
{
	uint32_t	r = 0;

	if (c->max_requests == 0)
		return 0;
	if (c->max_requests_jitter > 0 && util_random(&r, sizeof(r)) == 0)
		return (unsigned long)(c->max_requests +
		    (long long)(r % (uint32_t)(c->max_requests_jitter + 1)));
	return (unsigned long)c->max_requests;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "listen",	required_argument,	NULL, 'l' },
		{ "test",	no_argument,		NULL, 't' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "children",	required_argument,	NULL, 'f' },
		{ "retries",	required_argument,	NULL, 'r' },
		{ "retry-ms",	required_argument,	NULL, 'R' },
		{ "user",	required_argument,	NULL, 'u' },
		{ "concurrent",	required_argument,	NULL, 'C' },
		{ NULL, 0, NULL, 0 }
	};
	struct app	 app;
	struct db_opts	 dbo;
	struct cache_opts cco;
	struct nearcache_opts nco;
	struct wechat_opts wxo;
	FCGX_Request	 fr;
	uint64_t	*changes = NULL;
	struct prefork_opts pfo = {
		.retries = 20, .fast_ms = 500, .title = "wxapp-supervise",
		.reopen = log_reopen
	};
	const char	*cfgpath = NULL, *listen_addr = NULL, *user = NULL;
	char		 err[1024];
	const char	*why;
	long long	 n;
	int		 concurrent = 0;
	int		 ch, test = 0, fd = 0, rc;
	unsigned long	 limit;
	uint64_t	 accepted = 0;	/* connections (a request each) */
	long long	 flush_ms;
	sigset_t	 quiet;
	struct stat	 st;

	while ((ch = getopt_long(argc, argv, "C:c:f:l:thu:V", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'C':
			if (util_strtonum(optarg, 0, CONCURRENT_MAX, &n,
			    &why) == -1) {
				fprintf(stderr, "wxapp-fcgi: --concurrent %s: "
				    "%s\n", optarg, why);
				return 2;
			}
			concurrent = (int)n;
			break;
		case 'f':
		case 'r':
		case 'R':
			if (util_strtonum(optarg, ch == 'f' ? 1 : 0,
			    ch == 'f' ? 1024 : 1000000, &n, &why) == -1) {
				fprintf(stderr, "wxapp-fcgi: --%s %s: %s\n",
				    ch == 'f' ? "children" : ch == 'r' ?
				    "retries" : "retry-ms", optarg, why);
				return 2;
			}
			if (ch == 'f')
				pfo.children = (int)n;
			else if (ch == 'r')
				pfo.retries = (int)n;
			else
				pfo.fast_ms = (int)n;
			break;
		case 'u':
			user = optarg;
			break;
		case 'c':
			cfgpath = optarg;
			break;
		case 'l':
			listen_addr = optarg;
			break;
		case 't':
			test = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("wxapp-fcgi %s\n", PACKAGE_VERSION);
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
	memset(&app, 0, sizeof(app));
	if (app_nroutes + 1 > POOL_ROUTES) {
		fprintf(stderr, "wxapp-fcgi: %zu routes: the shared memory counts "
		    "%d (POOL_ROUTES)\n", app_nroutes, POOL_ROUTES - 1);
		return 1;
	}
	cfgpath = config_pick_path(cfgpath);
	if (config_load(&app.cfg, cfgpath, err, sizeof(err)) == -1) {
		fprintf(stderr, "wxapp-fcgi: %s\n", err);
		return 1;
	}
	if (config_check_serving(&app.cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "wxapp-fcgi: %s: %s\n", cfgpath, err);
		config_free(&app.cfg);
		return 1;
	}
	if (test) {
		rc = check_files(cfgpath, &app.cfg, user, err, sizeof(err));
		if (rc == 0 && app.cfg.obsolete != NULL)
			printf("wxapp-fcgi: %s: %s is obsolete and ignored\n",
			    cfgpath, app.cfg.obsolete);
		if (rc == 0)
			printf("wxapp-fcgi: %s: config ok\n", cfgpath);
		else
			fprintf(stderr, "wxapp-fcgi: %s: %s\n", cfgpath, err);
		config_free(&app.cfg);
		return rc == 0 ? 0 : 1;
	}
	if (user != NULL) {
		fprintf(stderr, "wxapp-fcgi: -u is for -t (spawn-fcgi -u or "
		    "systemd's User= switch the user of a running pool)\n");
		return 2;
	}
	if (log_open(app.cfg.log_file, app.cfg.log_level,
	    app.cfg.access_log) == -1 ||
	    log_access_buffer((size_t)app.cfg.access_log_buffer,
	    app.cfg.access_log_flush_ms) == -1) {
		fprintf(stderr, "wxapp-fcgi: %s: %s\n", app.cfg.log_file,
		    strerror(errno));
		return 1;
	}
	if (listen_addr != NULL) {
		if ((fd = FCGX_OpenSocket(listen_addr, 1024)) < 0) {
			log_error("cannot listen on %s", listen_addr);
			return 1;
		}
	} else if (fstat(0, &st) == -1 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "wxapp-fcgi: fd 0 is not a socket: run under "
		    "spawn-fcgi or use --listen\n");
		return 1;
	}
	/* With -f, this process stays behind as the socket's supervisor. */
	if (pfo.children > 0) {
		pfo.restarted = count_restart;
		pfo.arg = &app;
		(void)prefork_run(&pfo);
		/* A child: its own mapping of the pool, below. */
		memset(&app.shm, 0, sizeof(app.shm));
	}
	if (install_signals() == -1 || FCGX_Init() != 0 ||
	    curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("cannot initialize: %s", strerror(errno));
		return 1;
	}
	if (FCGX_InitRequest(&fr, fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_error("cannot initialize the request");
		return 1;
	}
	/*
	 * The pool's shared memory; alone, this responder keeps its own, and
	 * keeps no copies of cached answers (it would not see the writes of
	 * the other responders of the host).
	 */
	if (shm_attach(&app.shm, app.cfg.shm_name, &pool_layout) == 0) {
		app.pool = app.shm.data;
		changes = app.pool->changes;
	} else {
		log_warn("cannot attach shared memory %s (%s): circuit breaker "
		    "and scoreboard are per responder, answers are not copied "
		    "into the responder", app.cfg.shm_name, strerror(errno));
		if (shm_private(&app.shm, &pool_layout) == -1) {
			log_error("out of memory");
			return 1;
		}
		app.pool = app.shm.data;
	}
	shm_lock(&app.shm);
	app.slot = scoreboard_join(&app.pool->sb, getpid(), util_wall_us());
	shm_unlock(&app.shm);
	if (app.slot == -1) {
		log_error("the scoreboard is full (%d responders)", SB_SLOTS);
		return 1;
	}
	scoreboard_capacity(&app.pool->sb, app.slot,
	    concurrent > 0 ? (uint32_t)concurrent : 1);
	arena_init(&app.arena, ARENA_BLOCK, ARENA_KEEP);
	req_id_seed();
	app.otlp.fd = -1;
	if (app.cfg.otlp_endpoint[0] != '\0') {
		if (span_sink_open(&app.otlp, app.cfg.otlp_socket) == -1)
			log_error("otlp_socket %s: %s: no spans are kept",
			    app.cfg.otlp_socket, strerror(errno));
		else
			app.tracing = 1;
	}
	app_guards(&app.cfg, &app.shm, app.pool, app.guards);
	app_db_opts(&app.cfg, &app.guards[DEP_POSTGRES], &dbo);
	db_init(&app.db, &dbo, app_stmts, STMT_COUNT);
	if (dbbatch_init(&app.logins, &app.db, STMT_LOGIN, LOGIN_NPARAMS,
	    0) == -1) {
		log_error("cannot set up the logins' batch");
		return 1;
	}
	app_cache_opts(&app.cfg, &app.guards[DEP_REDIS], &cco);
	cache_init(&app.cache, &cco);
	app.cache.on_recover = httpcache_recover;
	app.cache.recover_arg = app_collections;
	nco.redis = &cco;
	nco.changes = changes;
	nco.collections = app_collections;
	nco.subject_prefix = KEY_SESSION_PREFIX;
	if (changes != NULL && app.cfg.cache_local_bytes > 0) {
		if (pool_near_attach(&app.near_shm, app.cfg.shm_name,
		    (size_t)app.cfg.cache_local_bytes) == 0) {
			nco.store = app.near_shm.data;
			nco.store_bytes = (size_t)app.cfg.cache_local_bytes;
		} else
			log_warn("cannot attach shared memory %s%s (%s): "
			    "answers are not copied", app.cfg.shm_name,
			    POOL_NEAR_SUFFIX, strerror(errno));
	}
	nco.ttl_s = app.cfg.cache_ttl;
	nco.negative_ttl_s = app.cfg.cache_negative_ttl;
	nco.cache_control = app.cfg.http_cache_control;
	nearcache_init(&app.near, &nco);
	app_token_opts(&app.cfg, &app.tok);
	limits_init(&app);
	if (auth_init(&app) == -1) {
		log_error("out of memory");
		return 1;
	}
	app_wechat_opts(&app.cfg, &app.guards[DEP_WECHAT], &wxo);
	if (wechat_init(&app.wx, &wxo, &app.cache) == -1) {
		log_error("cannot initialize libcurl");
		return 1;
	}
	/*
	 * Dependencies that are down now are retried per request.  While
	 * PostgreSQL's breaker is open (the pool found it hung) it is not
	 * waited for here, before the process answers anything: a responder
	 * recycled during the outage would add pg_connect_timeout to it.  The
	 * first call or a probe connects.  (Redis is: its connect timeout is
	 * short, and a failed connect marks it lost, for the collections to
	 * be invalidated when it is back.)
	 */
	if (guard_trial_in(&app.guards[DEP_POSTGRES]) < 0)
		(void)db_connect(&app.db);
	(void)cache_connect(&app.cache);
	limit = recycle_after(&app.cfg);
	flush_ms = app.cfg.access_log_buffer > 0 ?
	    app.cfg.access_log_flush_ms : 0;
	if ((app.cfg.request_terminate_timeout > 0 || flush_ms > 0) &&
	    watchdog_start(app.cfg.request_terminate_timeout, flush_ms,
	    app.cfg.metrics ? &app.pool->metrics : NULL, &app.db.changed) ==
	    -1) {
		log_error("cannot start the timer: %s", strerror(errno));
		return 1;
	}
	log_info("responder started (config %s, recycled after %lu requests)",
	    cfgpath, limit);
	if (app.cfg.obsolete != NULL)
		log_warn("%s: %s is obsolete and ignored", cfgpath,
		    app.cfg.obsolete);

	sigemptyset(&quiet);
	sigaddset(&quiet, SIGALRM);
	sigaddset(&quiet, SIGIO);
	if (concurrent > 0 && app_serve_concurrent(&app, fd, concurrent,
	    &stop_signal, &reopen_log, limit) == -1)
		return 1;
	while (!stop_signal && concurrent == 0) {
		if (reopen_log) {
			reopen_log = 0;
			if (log_reopen() == -1)
				log_error("cannot reopen %s: %s",
				    app.cfg.log_file, strerror(errno));
		}
		/* About to wait for a request: nothing stays in the buffer. */
		if (log_pending() && !connection_waiting(fd))
			log_flush();
		/*
		 * A signal that came while we waited (a SIGHUP whose poll
		 * returned the request that followed it) is handled before
		 * that request, so that its access line goes to the new log.
		 */
		if (await_request(&app, fd) == -1 || reopen_log)
			continue;
		/*
		 * libfcgi drops a connection it accepted when a signal comes
		 * while it waits (select) for the request to be readable; our
		 * own signals wait until it has the request.  A SIGIO held
		 * back here is handled when unblocked, before the request.
		 */
		(void)sigprocmask(SIG_BLOCK, &quiet, NULL);
		rc = FCGX_Accept_r(&fr);
		(void)sigprocmask(SIG_UNBLOCK, &quiet, NULL);
		if (rc < 0) {
			if (rc == -EINTR || stop_signal)
				continue;
			log_error("accept failed: %s", strerror(-rc));
			break;
		}
		scoreboard_connections(&app.pool->sb, app.slot, 1, ++accepted);
		app_handle(&app, &fr);
		FCGX_Finish_r(&fr);
		scoreboard_connections(&app.pool->sb, app.slot, 0, accepted);
		arena_reset(&app.arena);
		if (limit > 0 && app.served >= limit) {
			log_info("served %lu requests: exiting to be replaced",
			    app.served);
			break;
		}
	}
	if (stop_signal)
		log_info("signal %d: exiting after %lu requests",
		    (int)stop_signal, app.served);
	shm_lock(&app.shm);
	scoreboard_leave(&app.pool->sb, app.slot);
	shm_unlock(&app.shm);
	shm_detach(&app.shm);
	span_sink_close(&app.otlp);
	FCGX_Free(&fr, 1);
	db_close(&app.db);
	cache_close(&app.cache);
	nearcache_free(&app.near);
	shm_detach(&app.near_shm);
	auth_free(&app);
	wechat_free(&app.wx);
	curl_global_cleanup();
	arena_free(&app.arena);
	log_close();
	config_free(&app.cfg);
	return 0;
}

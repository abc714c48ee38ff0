/*
 * wxapp-otlp: the host's span exporter.  Responders (and anything else
 * built on lib/span) hand it the spans of each sampled request, one
 * SOCK_SEQPACKET message each, on otlp_socket; it batches them and POSTs
 * them to the collector, otlp_endpoint + "/v1/traces", as OTLP/HTTP with
 * the JSON encoding.
 *
 * Why a process of its own: the request path must never wait for the
 * collector.  A responder only sends a message into its connection's
 * socket buffer, which is a syscall whether the collector is fast, slow,
 * down or hanging; this process is the only one that talks HTTP to it,
 * with one curl multi handle, so that reading the responders' spans never
 * stops while an export is in flight.  A thread in every responder would
 * do the same at the cost of a thread per process that forks (prefork)
 * and of a collector connection per process; the worker already has a
 * job to do, and a slow collector must not slow jobs.
 *
 * Spans are queued up to QUEUE_SPANS, and the whole queue is sent when
 * it holds BATCH_SPANS spans or its oldest has waited BATCH_DELAY_MS, one
 * export at a time.  What does not fit, or what the collector refuses or
 * does not answer within otlp_timeout_ms, is dropped and counted in the
 * pool's shared memory (wxapp_spans_dropped_total).  SIGTERM sends what
 * is queued, then exits; SIGHUP reopens the log.
 */
#define _GNU_SOURCE	/* accept4, memmem, asprintf */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "app.h"
#include "log.h"
#include "prefork.h"
#include "shm.h"
#include "span.h"
#include "util.h"

#define QUEUE_SPANS	4096	/* queued at most; beyond, dropped */
#define BATCH_SPANS	512	/* enough to send at once */
#define BATCH_DELAY_MS	1000	/* the longest a span waits to be sent */
#define MAX_CLIENTS	1024	/* connected processes */
#define BODY_BLOCK	(256 * 1024)
#define LISTEN_PAUSE_US	100000	/* full: before accepting again */
#define DRAIN_MAX	64	/* messages of one connection per pass */

static volatile sig_atomic_t	stop_signal;
static volatile sig_atomic_t	reopen_log;

/* Spans on their way: the queue, or the export in flight. */
struct batch {
	struct arena	 a;
	struct buf	 b;
	size_t		 spans;
	int64_t		 since_us;	/* its first span arrived */
};

/* The process's context. */
struct otlp {
	struct config	 cfg;
	struct shm	 shm;
	struct pool	*pool;
	int		 lfd;
	int		 fds[MAX_CLIENTS];
	int		 nfds;
	char		 host[256];
	char		*url;
	struct curl_slist *headers;
	CURLM		*multi;
	CURL		*curl;
	char		 errbuf[CURL_ERROR_SIZE];
	struct batch	 q[2];
	struct batch	*queued, *sending;	/* sending: NULL when idle */
	int		 failing;	/* the last export failed */
	int64_t		 listen_at_us;	/* accept again from then */
	int64_t		 full_logged_us;
	unsigned long	 exported, dropped;
	char		 msg[SPAN_MESSAGE_MAX + 1];
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
	fprintf(f, "usage: wxapp-otlp [-t] [-c config] [-f]\n");
}

/* Stop listening for a while, saying why once in a while. */
static void
full(struct otlp *o, const char *what)
{
	int64_t	now = util_mono_us();

	o->listen_at_us = now + LISTEN_PAUSE_US;
	if (now - o->full_logged_us >= 60 * 1000000LL) {
		log_warn("no room for %s more processes: new ones wait, or are "
		    "refused (their spans are dropped and counted)", what);
		o->full_logged_us = now;
	}
}

/* Count n spans dropped for why. */
static void
dropped(struct otlp *o, enum pool_span_drop why, size_t n)
{
	o->dropped += n;
	metrics_add(&o->pool->metrics.spans_dropped[why], n);
}

/*
 * otlp_headers as curl header lines: "k1=v1,k2=v2", values
 * percent-decoded (OTEL_EXPORTER_OTLP_HEADERS' format).  0, or -1 with
 * the offending entry logged.
 */
static int
parse_headers(struct otlp *o, const char *spec)
{
	struct curl_slist	*l;
	char			*copy, *entry, *next, *eq, *key, *val, *line;
	int			 n, rc = -1;

	if ((copy = strdup(spec)) == NULL)
		return -1;
	for (entry = copy; entry != NULL; entry = next) {
		if ((next = strchr(entry, ',')) != NULL)
			*next++ = '\0';
		key = entry + strspn(entry, " \t");
		if (*key == '\0')
			continue;
		if ((eq = strchr(key, '=')) == NULL || eq == key) {
			log_error("otlp_headers: \"%s\" is not key=value", key);
			goto fail;
		}
		*eq = '\0';
		key[strcspn(key, " \t")] = '\0';
		if ((val = curl_easy_unescape(o->curl, eq + 1 + strspn(eq + 1,
		    " \t"), 0, &n)) == NULL)
			goto fail;
		if (key[strcspn(key, "\r\n:")] != '\0' ||
		    strcspn(val, "\r\n") != (size_t)n) {
			log_error("otlp_headers: %s: a name or value may not "
			    "hold CR, LF or a colon", key);
			curl_free(val);
			goto fail;
		}
		n = asprintf(&line, "%s: %s", key, val);
		curl_free(val);
		if (n == -1)
			goto fail;
		l = curl_slist_append(o->headers, line);
		free(line);
		if (l == NULL)
			goto fail;
		o->headers = l;
	}
	rc = 0;
fail:
	free(copy);
	return rc;
}

/* Bind and listen on otlp_socket, replacing a stale socket; fd or -1. */
static int
listen_on(const char *path)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	mode_t			 old;
	int			 fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_error("otlp_socket %s: too long", path);
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1) {
		log_error("socket: %s", strerror(errno));
		return -1;
	}
	/* The owner and its group (the responders') may connect. */
	old = umask(0117);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, 128) == -1) {
		log_error("otlp_socket %s: %s", path, strerror(errno));
		umask(old);
		close(fd);
		return -1;
	}
	umask(old);
	return fd;
}

/*
 * Take the connections that wait, as many as there is room for.  Out of
 * descriptors, or full, listening pauses a while: the connection waits in
 * the backlog (or is refused), instead of waking the loop at once again.
 */
static void
accept_all(struct otlp *o)
{
	int	fd;

	while ((fd = accept4(o->lfd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) != -1 || errno == EINTR) {
		if (fd == -1)
			continue;
		if (o->nfds == MAX_CLIENTS) {
			close(fd);
			full(o, "the connections of");
			return;
		}
		o->fds[o->nfds++] = fd;
	}
	if (errno == EMFILE || errno == ENFILE)
		full(o, "the descriptors for");
}

/* The spans of one message: its Span objects, each begins so. */
static size_t
count_spans(const char *p, size_t len)
{
	static const char	 mark[] = "{\"traceId\":";
	const char		*end = p + len, *q;
	size_t			 n = 0;

	while ((q = memmem(p, (size_t)(end - p), mark, sizeof(mark) - 1)) !=
	    NULL) {
		n++;
		p = q + sizeof(mark) - 1;
	}
	return n;
}

/* Queue one message's spans, or drop them when the queue is full. */
static void
enqueue(struct otlp *o, const char *p, size_t len)
{
	struct batch	*q = o->queued;
	size_t		 n;

	/* What lib/span writes: a JSON array of Span objects. */
	if (len < 2 || p[0] != '[' || p[len - 1] != ']' ||
	    memchr(p, '\0', len) != NULL || (n = count_spans(p, len)) == 0)
		return;
	if (q->spans + n > QUEUE_SPANS) {
		dropped(o, SPANS_QUEUE, n);
		return;
	}
	if (q->spans == 0) {
		q->since_us = util_mono_us();
		buf_init(&q->b, &q->a, BODY_BLOCK);
		span_export_begin(&q->b, o->cfg.otlp_service_name,
		    PACKAGE_VERSION, o->host);
	}
	span_export_add(&q->b, p, len, q->spans == 0);
	q->spans += n;
}

/*
 * Read the messages a connection holds, DRAIN_MAX at most (the others
 * get their turn: the rest waits for the next pass); close it when it
 * closed.
 */
static void
drain(struct otlp *o, int i)
{
	ssize_t	n;
	int	k;

	for (k = 0; k < DRAIN_MAX; k++) {
		n = recv(o->fds[i], o->msg, sizeof(o->msg), MSG_DONTWAIT |
		    MSG_TRUNC);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0)
			break;
		if ((size_t)n <= SPAN_MESSAGE_MAX)
			enqueue(o, o->msg, (size_t)n);
	}
	if (k == DRAIN_MAX)
		return;
	close(o->fds[i]);
	o->fds[i] = o->fds[--o->nfds];
}

/* Start the export of the queue. */
static void
send_queued(struct otlp *o)
{
	struct batch	*b = o->queued;

	span_export_end(&b->b);
	curl_easy_setopt(o->curl, CURLOPT_POSTFIELDS, b->b.p);
	curl_easy_setopt(o->curl, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)b->b.len);
	o->errbuf[0] = '\0';
	if (curl_multi_add_handle(o->multi, o->curl) != CURLM_OK) {
		log_error("otlp: cannot start an export");
		dropped(o, SPANS_EXPORT, b->spans);
		b->spans = 0;
		arena_reset(&b->a);
		return;
	}
	o->sending = b;
	o->queued = b == &o->q[0] ? &o->q[1] : &o->q[0];
}

/* An HTTP status as text, in o's scratch space. */
static const char *
http_code(struct otlp *o, long http)
{
	snprintf(o->msg, sizeof(o->msg), "%ld", http);
	return o->msg;
}

/* The export in flight ended with cc: count it, say a change of state. */
static void
sent(struct otlp *o, CURLcode cc)
{
	struct batch	*b = o->sending;
	long		 http = 0;

	curl_multi_remove_handle(o->multi, o->curl);
	if (cc == CURLE_OK)
		curl_easy_getinfo(o->curl, CURLINFO_RESPONSE_CODE, &http);
	if (http >= 200 && http < 300) {
		o->exported += b->spans;
		metrics_add(&o->pool->metrics.spans_exported, b->spans);
		if (o->failing)
			log_info("otlp: %s takes spans again", o->url);
		o->failing = 0;
	} else {
		dropped(o, SPANS_EXPORT, b->spans);
		if (!o->failing)
			log_error("otlp: %s: %s%s: %zu spans dropped, and more "
			    "until it takes them", o->url, cc != CURLE_OK ?
			    (o->errbuf[0] ? o->errbuf : curl_easy_strerror(cc)) :
			    "HTTP ", cc != CURLE_OK ? "" : http_code(o, http),
			    b->spans);
		o->failing = 1;
	}
	b->spans = 0;
	arena_reset(&b->a);
	o->sending = NULL;
}

/* Should the queue go now?  Full enough, old enough, or stopping. */
static int
due(const struct otlp *o, int64_t now)
{
	const struct batch	*q = o->queued;

	return o->sending == NULL && q->spans > 0 && (q->spans >= BATCH_SPANS ||
	    now - q->since_us >= BATCH_DELAY_MS * 1000LL || stop_signal);
}

/* Run until stopped, then send what is queued and return. */
static void
serve(struct otlp *o)
{
	struct curl_waitfd	 w[MAX_CLIENTS + 1];
	struct CURLMsg		*m;
	int64_t			 now, wait_ms, stop_by = 0;
	int			 i, n, running, left;

	for (;;) {
		if (reopen_log) {
			reopen_log = 0;
			(void)log_reopen();
		}
		now = util_mono_us();
		if (stop_signal && stop_by == 0) {
			log_info("stopping: sending %zu queued spans",
			    o->queued->spans);
			stop_by = now + o->cfg.otlp_timeout_ms * 1000 * 2;
		}
		if (stop_signal && ((o->sending == NULL &&
		    o->queued->spans == 0) || now >= stop_by))
			break;
		/* Paused: a descriptor that is never ready stands in. */
		w[0].fd = now >= o->listen_at_us ? o->lfd : -1;
		w[0].events = CURL_WAIT_POLLIN;
		w[0].revents = 0;
		for (i = 0; i < o->nfds; i++) {
			w[i + 1].fd = o->fds[i];
			w[i + 1].events = CURL_WAIT_POLLIN;
			w[i + 1].revents = 0;
		}
		wait_ms = o->listen_at_us > now ? LISTEN_PAUSE_US / 1000 : 1000;
		/* A batch that is due waits for the export in flight: curl wakes us. */
		if (o->queued->spans > 0 && o->sending == NULL) {
			wait_ms = BATCH_DELAY_MS - (now - o->queued->since_us) /
			    1000;
			if (wait_ms < 1)
				wait_ms = 1;
		}
		n = o->nfds;
		if (curl_multi_wait(o->multi, w, (unsigned)n + 1, (int)wait_ms,
		    NULL) != CURLM_OK) {
			log_error("curl_multi_wait failed");
			break;
		}
		/* Backwards: drain moves the last connection into i. */
		for (i = n; i >= 1; i--)
			if (w[i].revents != 0)
				drain(o, i - 1);
		if (w[0].fd != -1 && w[0].revents != 0)
			accept_all(o);
		curl_multi_perform(o->multi, &running);
		while ((m = curl_multi_info_read(o->multi, &left)) != NULL)
			if (m->msg == CURLMSG_DONE && o->sending != NULL)
				sent(o, m->data.result);
		if (due(o, util_mono_us()))
			send_queued(o);
	}
	if (o->sending != NULL) {
		curl_multi_remove_handle(o->multi, o->curl);
		dropped(o, SPANS_EXPORT, o->sending->spans);
	}
	if (o->queued->spans > 0)
		dropped(o, SPANS_EXPORT, o->queued->spans);
}

/* What the exporter needs of the configuration beyond a valid file. */
static int
need_endpoint(const struct config *c, char *err, size_t len)
{
	if (c->otlp_endpoint[0] != '\0')
		return 0;
	snprintf(err, len, "otlp_endpoint is not set");
	return -1;
}

/* curl's write callback: the answer is not kept. */
static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* The curl handle of every export. */
static int
setup_curl(struct otlp *o)
{
	const char	*base = o->cfg.otlp_endpoint;
	size_t		 len = strlen(base);

	while (len > 0 && base[len - 1] == '/')
		len--;
	if (asprintf(&o->url, "%.*s/v1/traces", (int)len, base) == -1 ||
	    (o->multi = curl_multi_init()) == NULL ||
	    (o->curl = curl_easy_init()) == NULL)
		return -1;
	if ((o->headers = curl_slist_append(NULL,
	    "Content-Type: application/json")) == NULL ||
	    parse_headers(o, o->cfg.otlp_headers) == -1)
		return -1;
	curl_easy_setopt(o->curl, CURLOPT_URL, o->url);
	curl_easy_setopt(o->curl, CURLOPT_HTTPHEADER, o->headers);
	curl_easy_setopt(o->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(o->curl, CURLOPT_TIMEOUT_MS,
	    (long)o->cfg.otlp_timeout_ms);
	curl_easy_setopt(o->curl, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(o->cfg.otlp_timeout_ms < 2000 ? o->cfg.otlp_timeout_ms :
	    2000));
	curl_easy_setopt(o->curl, CURLOPT_ERRORBUFFER, o->errbuf);
	curl_easy_setopt(o->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(o->curl, CURLOPT_USERAGENT, "wxapp-otlp/"
	    PACKAGE_VERSION);
	/* The answer (an ExportTraceServiceResponse) is not needed. */
	curl_easy_setopt(o->curl, CURLOPT_WRITEFUNCTION, discard);
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "supervise",	no_argument,		NULL, 'f' },
		{ "test",	no_argument,		NULL, 't' },
		{ "help",	no_argument,		NULL, 'h' },
		{ "version",	no_argument,		NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	static struct otlp	 o;
	struct prefork_opts	 pfo = { .children = 1, .retries = 20,
	    .fast_ms = 500, .title = "wxapp-otlp-supervise",
	    .reopen = log_reopen };
	const char		*cfgpath = NULL;
	struct rlimit		 rl;
	int			 ch, test = 0, supervise = 0, i, rc;

	while ((ch = getopt_long(argc, argv, "c:fhtV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfgpath = optarg;
			break;
		case 'f':
			supervise = 1;
			break;
		case 't':
			test = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("wxapp-otlp %s\n", PACKAGE_VERSION);
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
	if ((rc = app_program_start("wxapp-otlp", &cfgpath, &o.cfg,
	    need_endpoint, test, supervise ? &pfo : NULL)) != -1)
		return rc;
	rc = 1;
	/* A connection per responder of the host: take what the system lets. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	o.lfd = -1;
	if (gethostname(o.host, sizeof(o.host) - 1) == -1)
		snprintf(o.host, sizeof(o.host), "localhost");
	for (i = 0; i < 2; i++)
		arena_init(&o.q[i].a, BODY_BLOCK, 1);
	o.queued = &o.q[0];
	/* Counted where /metrics reads: the pool's, or one of our own. */
	if (shm_attach(&o.shm, o.cfg.shm_name, &pool_layout) == -1) {
		log_warn("cannot attach shared memory %s (%s): what is dropped "
		    "is not counted", o.cfg.shm_name, strerror(errno));
		if (shm_private(&o.shm, &pool_layout) == -1) {
			log_error("out of memory");
			goto fail;
		}
	}
	o.pool = o.shm.data;
	if (app_signals(on_stop, on_hup) == -1 ||
	    curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    setup_curl(&o) == -1 || (o.lfd = listen_on(o.cfg.otlp_socket)) == -1) {
		log_error("cannot start (otlp_endpoint %s, otlp_socket %s)",
		    o.cfg.otlp_endpoint, o.cfg.otlp_socket);
		goto fail;
	}
	log_info("wxapp-otlp started (config %s): spans from %s to %s",
	    cfgpath, o.cfg.otlp_socket, o.url);
	serve(&o);
	log_info("wxapp-otlp exiting: %lu spans exported, %lu dropped",
	    o.exported, o.dropped);
	rc = 0;
fail:
	/* The socket stays: the next start replaces it. */
	if (o.lfd != -1)
		close(o.lfd);
	for (i = 0; i < o.nfds; i++)
		close(o.fds[i]);
	if (o.curl != NULL)
		curl_easy_cleanup(o.curl);
	if (o.multi != NULL)
		curl_multi_cleanup(o.multi);
	curl_slist_free_all(o.headers);
	free(o.url);
	for (i = 0; i < 2; i++)
		arena_free(&o.q[i].a);
	if (o.shm.hdr != NULL)
		shm_detach(&o.shm);
	curl_global_cleanup();
	log_close();
	config_free(&o.cfg);
	return rc;
}

/*
 * log: JSON lines.  Each line is assembled in a small arena of the log's
 * own and written with one write(2), or kept with other access lines and
 * written with them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "log.h"
#include "util.h"

const char *const log_level_names[LOG_LEVEL_ERROR + 2] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_ERROR + 1] = NULL
};

/* The log's per-process state. */
static struct {
	int		 fd;
	int		 level;
	int		 access;
	char		 path[4096];
	int		 create;	/* the file may be created */
	const char	*request_id;
	const char	*trace_id;	/* of the request, or NULL */
	const char	*span_id;
	struct arena	 arena;
	int		 arena_ready;
	long		 pid;		/* 0 until the first line */
	int		 fork_hooked;	/* pid_forked is registered */
	time_t		 ts_sec;	/* the second ts_base shows */
	char		 ts_base[24];	/* "YYYY-MM-DDTHH:MM:SS" */
	/* Access lines not written yet (NULL: none are kept). */
	char		*abuf;
	size_t		 abuf_cap;
	volatile size_t	 abuf_len;
	int64_t		 abuf_since_us;	/* when its oldest line came */
	int64_t		 flush_us;
	/* Set while the buffer or fd changes: log_tick keeps off. */
	volatile sig_atomic_t busy;
} logst = {
	.fd = STDERR_FILENO,
	.level = LOG_LEVEL_INFO,
	.access = 1,
	.ts_sec = -1
};

/* Write n bytes of p, whatever write(2) takes at a time; async-signal-safe. */
static void
write_all(const char *p, size_t n)
{
	ssize_t	w;

	while (n > 0) {
		w = write(logst.fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		p += w;
		n -= (size_t)w;
	}
}

/* Write what the buffer holds; the caller has set busy (or is log_tick). */
static void
abuf_write(void)
{
	if (logst.abuf_len > 0)
		write_all(logst.abuf, logst.abuf_len);
	logst.abuf_len = 0;
}

/* Enter and leave the part log_tick must not interrupt. */
static void
enter(void)
{
	logst.busy = 1;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static void
leave(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	logst.busy = 0;
}

int
log_access_buffer(size_t bytes, long long flush_ms)
{
	char	*p = NULL;

	log_flush();
	if (bytes > 0 && (p = malloc(bytes)) == NULL)
		return -1;
	enter();
	free(logst.abuf);
	logst.abuf = p;
	logst.abuf_cap = bytes;
	logst.flush_us = flush_ms * 1000;
	leave();
	return 0;
}

void
log_flush(void)
{
	enter();
	abuf_write();
	leave();
}

int
log_pending(void)
{
	return logst.abuf_len > 0;
}

void
log_tick(void)
{
	int	saved = errno;

	if (!logst.busy)
		abuf_write();
	errno = saved;
}

static int
log_open_fd(void)
{
	int	fd;

	if (logst.path[0] == '\0')
		return STDERR_FILENO;
	fd = open(logst.path, O_WRONLY | O_APPEND | O_CLOEXEC |
	    (logst.create ? O_CREAT : 0), 0640);
	return fd;
}

/* In a forked child: the pid is looked up again at its first line. */
static void
pid_forked(void)
{
	logst.pid = 0;
}

/* log_open and log_attach: create says whether the file may be made. */
static int
open_log(const char *path, int level, int access, int create)
{
	int	n, fd;

	logst.create = create;
	n = snprintf(logst.path, sizeof(logst.path), "%s", path ? path : "");
	if (n < 0 || (size_t)n >= sizeof(logst.path)) {
		logst.path[0] = '\0';
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = log_open_fd()) == -1) {
		logst.path[0] = '\0';
		return -1;
	}
	log_close();
	enter();
	logst.fd = fd;
	leave();
	logst.level = level;
	logst.access = access;
	if (!logst.arena_ready) {
		arena_init(&logst.arena, 8192, 1);
		logst.arena_ready = 1;
	}
	/* A forked child (a supervisor's responder) names its own pid. */
	if (!logst.fork_hooked && pthread_atfork(NULL, NULL, pid_forked) == 0)
		logst.fork_hooked = 1;
	return 0;
}

int
log_open(const char *path, int level, int access)
{
	return open_log(path, level, access, 1);
}

int
log_attach(const char *path, int level)
{
	return open_log(path, level, 0, 0);
}

int
log_reopen(void)
{
	int	fd;

	if (logst.path[0] == '\0')
		return 0;
	if ((fd = log_open_fd()) == -1)
		return -1;
	/* What came before the rotation goes to the old file. */
	enter();
	abuf_write();
	if (logst.fd != STDERR_FILENO)
		close(logst.fd);
	logst.fd = fd;
	leave();
	return 0;
}

void
log_close(void)
{
	enter();
	abuf_write();
	if (logst.fd != STDERR_FILENO)
		close(logst.fd);
	logst.fd = STDERR_FILENO;
	leave();
}

int
log_fd(void)
{
	return logst.fd;
}

void
log_set_request(const char *request_id, const char *trace_id,
    const char *span_id)
{
	logst.request_id = request_id;
	logst.trace_id = trace_id;
	logst.span_id = span_id;
}

/*
 * The time as util_rfc3339 writes it, with the part up to the second
 * formatted once per second: a busy responder logs thousands of lines in
 * each.
 */
static void
log_time(struct buf *b)
{
	int64_t		us = util_wall_us();
	time_t		t = (time_t)(us / 1000000);
	struct tm	tm;
	int		ms = (int)(us / 1000 % 1000);
	char		frac[6];

	if (t != logst.ts_sec) {
		if (gmtime_r(&t, &tm) == NULL || strftime(logst.ts_base,
		    sizeof(logst.ts_base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
			logst.ts_base[0] = '\0';
		logst.ts_sec = t;
	}
	buf_adds(b, logst.ts_base);
	frac[0] = '.';
	frac[1] = (char)('0' + ms / 100);
	frac[2] = (char)('0' + ms / 10 % 10);
	frac[3] = (char)('0' + ms % 10);
	frac[4] = 'Z';
	buf_add(b, frac, 5);
}

/* Start a line in b: {"time":...,"level":...,"pid":... */
static void
log_begin(struct buf *b, const char *level)
{
	if (!logst.arena_ready) {
		arena_init(&logst.arena, 8192, 1);
		logst.arena_ready = 1;
	}
	/* Responders never fork after their first line. */
	if (logst.pid == 0)
		logst.pid = (long)getpid();
	buf_init(b, &logst.arena, 512);
	buf_adds(b, "{\"time\":\"");
	log_time(b);
	buf_adds(b, "\",\"level\":\"");
	buf_adds(b, level);
	buf_adds(b, "\",\"pid\":");
	buf_addll(b, logst.pid);
	if (logst.request_id != NULL) {
		buf_adds(b, ",\"request_id\":");
		buf_json_str(b, logst.request_id, strlen(logst.request_id));
	}
	if (logst.trace_id != NULL && logst.trace_id[0] != '\0') {
		buf_adds(b, ",\"trace_id\":");
		buf_json_str(b, logst.trace_id, strlen(logst.trace_id));
	}
	if (logst.span_id != NULL && logst.span_id[0] != '\0') {
		buf_adds(b, ",\"span_id\":");
		buf_json_str(b, logst.span_id, strlen(logst.span_id));
	}
}

/*
 * Finish the line, write it once (after the buffered access lines, which
 * came first) or, for an access line, keep it in the buffer; recycle the
 * arena.
 */
static void
log_end(struct buf *b, int access)
{
	int64_t	now;

	buf_add(b, "}\n", 2);
	enter();
	if (!access || logst.abuf == NULL || b->len > logst.abuf_cap) {
		abuf_write();
		write_all(b->p, b->len);
	} else {
		now = util_mono_us();
		if (logst.abuf_len + b->len > logst.abuf_cap)
			abuf_write();
		if (logst.abuf_len == 0)
			logst.abuf_since_us = now;
		memcpy(logst.abuf + logst.abuf_len, b->p, b->len);
		logst.abuf_len += b->len;
		if (now - logst.abuf_since_us >= logst.flush_us)
			abuf_write();
	}
	leave();
	arena_reset(&logst.arena);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	struct buf	b, m;
	va_list		ap;

	if ((int)level < logst.level)
		return;
	log_begin(&b, log_level_names[level]);
	buf_init(&m, &logst.arena, 256);
	va_start(ap, fmt);
	buf_vprintf(&m, fmt, ap);
	va_end(ap);
	buf_adds(&b, ",\"msg\":");
	buf_json_str(&b, m.p, m.len);
	log_end(&b, 0);
}

void
log_access(const struct log_access *a)
{
	struct buf	b;
	const char	*rid = logst.request_id, *tid = logst.trace_id;
	const char	*sid = logst.span_id;

	if (!logst.access)
		return;
	/* The access line names them itself, after "type". */
	log_set_request(NULL, NULL, NULL);
	log_begin(&b, "info");
	log_set_request(rid, tid, sid);
	buf_adds(&b, ",\"type\":\"access\",\"request_id\":");
	buf_json_str(&b, a->request_id, strlen(a->request_id));
	buf_adds(&b, ",\"method\":");
	buf_json_str(&b, a->method, strlen(a->method));
	buf_adds(&b, ",\"path\":");
	buf_json_str(&b, a->path, strlen(a->path));
	buf_adds(&b, ",\"status\":");
	buf_addll(&b, a->status);
	buf_adds(&b, ",\"duration_us\":");
	buf_addll(&b, (long long)a->duration_us);
	buf_adds(&b, ",\"bytes\":");
	buf_addll(&b, (long long)a->bytes);
	buf_adds(&b, ",\"remote_addr\":");
	buf_json_str(&b, a->remote_addr, strlen(a->remote_addr));
	if (a->trace_id != NULL && a->trace_id[0] != '\0') {
		buf_adds(&b, ",\"trace_id\":");
		buf_json_str(&b, a->trace_id, strlen(a->trace_id));
	}
	if (a->span_id != NULL && a->span_id[0] != '\0') {
		buf_adds(&b, ",\"span_id\":");
		buf_json_str(&b, a->span_id, strlen(a->span_id));
	}
	log_end(&b, 1);
}

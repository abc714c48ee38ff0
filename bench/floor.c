/*
 * floor: the least a FastCGI responder can do to give wxapp's answer.
 *
 * The benchmark (bench/run) runs it on the same nginx configuration and the
 * same socket layout as wxapp-fcgi (spawn/wxapp-pool --bin floor) to get
 * the ceiling wxapp's cached GET and its 304 are measured against.
 *
 * It answers every request with the bytes of one fixed answer, loaded at
 * start from the file given with -c:
 *
 *	ETag: "..."			header lines the app sends after
 *	Last-Modified: ...		X-Request-Id (CRLF or LF)
 *	...
 *					an empty line
 *	{"code":0,...}			the body (the rest of the file)
 *
 * as "Status: 200 OK", Content-Type, Content-Length, X-Request-Id (24 hex
 * digits, like wxapp's generated ids), the header lines and the body: the
 * same shape and the same bytes as wxapp-fcgi, so that nginx does the same
 * work for both.  A request whose If-None-Match is that ETag gets
 * "Status: 304 Not Modified", X-Request-Id and the header lines, no body.
 *
 * The loop is wxapp-fcgi's: FCGX_Accept_r with FCGI_FAIL_ACCEPT_ON_INTR on
 * fd 0 (spawn-fcgi's listening socket), one request at a time, signals
 * without SA_RESTART.  Per request it does no allocation, one parameter
 * lookup and one FCGX_PutStr.
 *
 * With -C N it is the keep-alive floor: like wxapp-fcgi -C N it holds up
 * to N connections, reads them with lib/fcgiconn without blocking, answers
 * one request at a time from whichever connection is ready, and keeps a
 * connection whose request had FCGI_KEEP_CONN (nginx's fastcgi_keep_conn)
 * for the next one.  No coroutines, no stores: the least such a loop does.
 *
 * Its supervisor is wxapp-fcgi's too: with -f N it runs lib/prefork
 * (linked from the installed libwxapp), as wxapp-pool asks.
 *
 * usage: floor [-t] [-f N [--retries R] [--retry-ms MS]] [-C N] -c ANSWER_FILE
 */
#define _GNU_SOURCE	/* accept4 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "arena.h"
#include "fcgiconn.h"
#include "prefork.h"

#define ID_LEN	24	/* 16 hex digits of prefix, 8 of counter */

struct answer {
	char	*p;		/* the whole FastCGI answer */
	size_t	 len;
	size_t	 id_at;		/* where the X-Request-Id value goes */
};

static volatile sig_atomic_t	stop_signal;
static struct answer		ok, not_modified;
static char			etag[256], weak_etag[260];
static unsigned long long	id_prefix;
static unsigned int		id_counter;

static void
on_stop(int sig)
{
	stop_signal = sig;
}

static int
install_signals(void)
{
	struct sigaction	sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	if (sigaction(SIGTERM, &sa, NULL) == -1 ||
	    sigaction(SIGUSR1, &sa, NULL) == -1 ||
	    sigaction(SIGINT, &sa, NULL) == -1)
		return -1;
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE		*f;
	struct stat	 st;
	char		*p;

	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fstat(fileno(f), &st) == -1 || (p = malloc((size_t)st.st_size +
	    1)) == NULL) {
		fclose(f);
		return NULL;
	}
	*len = fread(p, 1, (size_t)st.st_size, f);
	fclose(f);
	if (*len != (size_t)st.st_size) {
		free(p);
		return NULL;
	}
	p[*len] = '\0';
	return p;
}

/* Build one answer: status line, [type, length,] id, headers, [body]. */
static int
build(struct answer *a, const char *status, int with_body, const char *hdrs,
    size_t hdrs_len, const char *body, size_t body_len)
{
	char	head[256];
	int	n;

	if (with_body)
		n = snprintf(head, sizeof(head), "Status: %s\r\n"
		    "Content-Type: application/json; charset=utf-8\r\n"
		    "Content-Length: %zu\r\nX-Request-Id: ", status, body_len);
	else
		n = snprintf(head, sizeof(head), "Status: %s\r\n"
		    "X-Request-Id: ", status);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	a->len = (size_t)n + ID_LEN + 2 + hdrs_len + 2 +
	    (with_body ? body_len : 0);
	if ((a->p = malloc(a->len)) == NULL)
		return -1;
	memcpy(a->p, head, (size_t)n);
	a->id_at = (size_t)n;
	memset(a->p + n, '0', ID_LEN);
	memcpy(a->p + n + ID_LEN, "\r\n", 2);
	memcpy(a->p + n + ID_LEN + 2, hdrs, hdrs_len);
	memcpy(a->p + n + ID_LEN + 2 + hdrs_len, "\r\n", 2);
	if (with_body)
		memcpy(a->p + n + ID_LEN + 2 + hdrs_len + 2, body, body_len);
	return 0;
}

/* Load the answer file: header lines, an empty line, the body. */
static int
load(const char *path, char *err, size_t errlen)
{
	char	*f, *line, *next, *eol, *hdrs, *body;
	size_t	 flen, hlen = 0, n;

	if ((f = slurp(path, &flen)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((hdrs = malloc(flen + 64)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	body = NULL;
	for (line = f; line < f + flen; line = next) {
		if ((eol = memchr(line, '\n', (size_t)(f + flen - line))) == NULL)
			break;
		next = eol + 1;
		if (eol > line && eol[-1] == '\r')
			eol--;
		if (eol == line) {
			body = next;
			break;
		}
		n = (size_t)(eol - line);
		if (n > 6 && strncasecmp(line, "ETag: ", 6) == 0 &&
		    n - 6 < sizeof(etag)) {
			memcpy(etag, line + 6, n - 6);
			etag[n - 6] = '\0';
		}
		memcpy(hdrs + hlen, line, n);
		memcpy(hdrs + hlen + n, "\r\n", 2);
		hlen += n + 2;
	}
	if (body == NULL || etag[0] == '\0') {
		snprintf(err, errlen, "%s: want header lines with an ETag, an "
		    "empty line, then the body", path);
		return -1;
	}
	snprintf(weak_etag, sizeof(weak_etag), "W/%s", etag);
	if (build(&ok, "200 OK", 1, hdrs, hlen, body,
	    (size_t)(f + flen - body)) == -1 ||
	    build(&not_modified, "304 Not Modified", 0, hdrs, hlen, NULL,
	    0) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(hdrs);
	free(f);
	return 0;
}

/* A new X-Request-Id, in place: the prefix and a counter, in hex. */
static void
set_id(struct answer *a)
{
	static const char	hex[] = "0123456789abcdef";
	char			*p = a->p + a->id_at;
	unsigned long long	 v = id_prefix;
	unsigned int		 c = ++id_counter;
	int			 i;

	for (i = 15; i >= 0; i--, v >>= 4)
		p[i] = hex[v & 15];
	for (i = 23; i >= 16; i--, c >>= 4)
		p[i] = hex[c & 15];
}

/* The answer for a request whose If-None-Match is inm (or NULL). */
static struct answer *
answer_for(const char *inm)
{
	struct answer	*a;

	a = inm != NULL && (strcmp(inm, etag) == 0 ||
	    strcmp(inm, weak_etag) == 0) ? &not_modified : &ok;
	set_id(a);
	return a;
}

/* A parameter of a request read by fcgiconn. */
static const char *
param(char **envp, const char *name)
{
	size_t	n = strlen(name);

	for (; *envp != NULL; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/*
 * The keep-alive floor (-C max): poll the listening socket and up to max
 * connections, answer whichever request is whole, keep what nginx keeps.
 */
static int
serve_kept(int lfd, int max)
{
	struct fcgiconn	*c;
	struct arena	*ar;
	struct pollfd	*pfd;
	struct answer	*a;
	int		 i, fd, live = 0;

	c = calloc((size_t)max, sizeof(*c));
	ar = calloc((size_t)max, sizeof(*ar));
	pfd = calloc((size_t)max + 1, sizeof(*pfd));
	if (c == NULL || ar == NULL || pfd == NULL ||
	    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK) == -1) {
		fprintf(stderr, "floor: cannot set up: %s\n", strerror(errno));
		return -1;
	}
	for (i = 0; i < max; i++) {
		c[i].fd = -1;
		arena_init(&ar[i], 4096, 1);
	}
	while (!stop_signal || live > 0) {
		for (i = 0; i < max; i++) {
			pfd[i].fd = c[i].fd;
			pfd[i].events = POLLIN;
		}
		pfd[max].fd = stop_signal || live == max ? -1 : lfd;
		pfd[max].events = POLLIN;
		if (poll(pfd, (nfds_t)max + 1, 1000) == -1 && errno != EINTR)
			break;
		/* A stopping floor closes idle connections: it is a bench. */
		for (i = 0; i < max; i++) {
			if (c[i].fd == -1 || (pfd[i].revents == 0 &&
			    !(stop_signal && fcgiconn_idle(&c[i]))))
				continue;
			if (pfd[i].revents != 0 &&
			    fcgiconn_read(&c[i], &ar[i]) == FCGICONN_READY) {
				a = answer_for(param(c[i].envp,
				    "HTTP_IF_NONE_MATCH"));
				if (fcgiconn_answer(&c[i], a->p, a->len,
				    5000) == 0 && !stop_signal) {
					arena_reset(&ar[i]);
					if (fcgiconn_next(&c[i], &ar[i]) == 0)
						continue;
				}
			} else if (c[i].state == FCGICONN_READING &&
			    !stop_signal)
				continue;
			close(c[i].fd);
			c[i].fd = -1;
			arena_reset(&ar[i]);
			live--;
		}
		if (pfd[max].revents == 0)
			continue;
		for (i = 0; i < max && live < max; i++) {
			if (c[i].fd != -1)
				continue;
			if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK |
			    SOCK_CLOEXEC)) == -1)
				break;
			fcgiconn_init(&c[i], fd, &ar[i], 65536);
			live++;
		}
	}
	return 0;
}

int
main(int argc, char *argv[])
{
	FCGX_Request	 fr;
	struct answer	*a;
	const char	*path = NULL, *inm;
	static const struct option longopts[] = {
		{ "children",	required_argument,	NULL, 'f' },
		{ "retries",	required_argument,	NULL, 'r' },
		{ "retry-ms",	required_argument,	NULL, 'R' },
		{ NULL, 0, NULL, 0 }
	};
	/* Supervised as wxapp-fcgi -f supervises its responders. */
	struct prefork_opts pfo = { .retries = 20, .fast_ms = 500,
	    .title = "wxapp-supervise" };
	char		 err[512];
	int		 ch, test = 0, rc, kept = 0;

	while ((ch = getopt_long(argc, argv, "C:c:f:t", longopts, NULL)) != -1) {
		switch (ch) {
		case 'C':
			kept = atoi(optarg);
			break;
		case 'f':
			pfo.children = atoi(optarg);
			break;
		case 'r':
			pfo.retries = atoi(optarg);
			break;
		case 'R':
			pfo.fast_ms = atoi(optarg);
			break;
		case 'c':
			path = optarg;
			break;
		case 't':
			test = 1;
			break;
		default:
			fprintf(stderr, "usage: floor [-t] [-f n] [-C n] -c "
			    "answer-file\n");
			return 2;
		}
	}
	if (path == NULL) {
		fprintf(stderr, "usage: floor [-t] -c answer-file\n");
		return 2;
	}
	if (load(path, err, sizeof(err)) == -1) {
		fprintf(stderr, "floor: %s\n", err);
		return 1;
	}
	if (test) {
		printf("floor: %s: %zu-byte answer, etag %s\n", path, ok.len,
		    etag);
		return 0;
	}
	if (pfo.children > 0)
		(void)prefork_run(&pfo);
	id_prefix = (unsigned long long)getpid() << 32 ^
	    (unsigned long long)time(NULL);
	if (kept > 0) {
		if (install_signals() == -1)
			return 1;
		return serve_kept(0, kept) == 0 ? 0 : 1;
	}
	if (install_signals() == -1 || FCGX_Init() != 0 ||
	    FCGX_InitRequest(&fr, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		fprintf(stderr, "floor: cannot initialize\n");
		return 1;
	}
	while (!stop_signal) {
		if ((rc = FCGX_Accept_r(&fr)) < 0) {
			if (rc == -EINTR)
				continue;
			fprintf(stderr, "floor: accept failed: %s\n",
			    strerror(-rc));
			break;
		}
		inm = FCGX_GetParam("HTTP_IF_NONE_MATCH", fr.envp);
		a = answer_for(inm);
		if (FCGX_PutStr(a->p, (int)a->len, fr.out) < 0 ||
		    FCGX_FFlush(fr.out) < 0)
			fprintf(stderr, "floor: client went away\n");
		FCGX_Finish_r(&fr);
	}
	FCGX_Free(&fr, 1);
	return 0;
}

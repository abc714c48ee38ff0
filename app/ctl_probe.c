/*
 * wxappctl probe ADDR [--timeout S]: is a responder socket answering?
 * One real FastCGI request, GET /ping, to a unix socket path or
 * host:port, as nginx would send it; ready means a whole answer with
 * status 200 within the timeout.  A socket that merely exists, or a
 * listen backlog that nobody accepts from, is not enough: wxapp-pool uses
 * this during a rolling restart, so that a binary that cannot start stops
 * the restart before the next socket goes down.  Prints "status N", or
 * why there is no answer.  Needs no configuration.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "util.h"

#define FCGI_VERSION		1
#define FCGI_BEGIN_REQUEST	1
#define FCGI_END_REQUEST	3
#define FCGI_PARAMS		4
#define FCGI_STDIN		5
#define FCGI_STDOUT		6
#define FCGI_RESPONDER		1
#define ANSWER_MAX		(64 * 1024)

struct probe_buf {
	unsigned char	p[ANSWER_MAX];
	size_t		len;
};

/* Append a record of type with n bytes of content; -1 when it does not fit. */
static int
record(struct probe_buf *b, int type, const void *content, size_t n)
{
	unsigned char	*h = b->p + b->len;

	if (n > 0xffff || b->len + 8 + n > sizeof(b->p))
		return -1;
	h[0] = FCGI_VERSION;
	h[1] = (unsigned char)type;
	h[2] = 0, h[3] = 1;		/* request id 1 */
	h[4] = (unsigned char)(n >> 8), h[5] = (unsigned char)n;
	h[6] = 0, h[7] = 0;		/* no padding */
	if (n > 0)	/* an empty record may come with no content at all */
		memcpy(h + 8, content, n);
	b->len += 8 + n;
	return 0;
}

/* Append one name-value pair (both shorter than 128 bytes). */
static int
param(unsigned char *p, size_t *n, size_t cap, const char *name,
    const char *value)
{
	size_t	nl = strlen(name), vl = strlen(value);

	if (nl > 127 || vl > 127 || *n + 2 + nl + vl > cap)
		return -1;
	p[(*n)++] = (unsigned char)nl;
	p[(*n)++] = (unsigned char)vl;
	memcpy(p + *n, name, nl);
	memcpy(p + *n + nl, value, vl);
	*n += nl + vl;
	return 0;
}

/* The request nginx would send for GET /ping. */
static int
request(struct probe_buf *b)
{
	static const char *const params[][2] = {
		{ "REQUEST_METHOD", "GET" }, { "REQUEST_URI", "/ping" },
		{ "DOCUMENT_URI", "/ping" }, { "SCRIPT_NAME", "/ping" },
		{ "QUERY_STRING", "" }, { "SERVER_NAME", "localhost" },
		{ "SERVER_PROTOCOL", "HTTP/1.1" },
		{ "GATEWAY_INTERFACE", "CGI/1.1" },
		{ "REMOTE_ADDR", "127.0.0.1" }, { "REMOTE_PORT", "0" },
		{ "HTTP_HOST", "localhost" },
		{ "HTTP_X_REQUEST_ID", "wxapp-probe" }
	};
	static const unsigned char begin[8] = { 0, FCGI_RESPONDER, 0 };
	unsigned char	pairs[1024];
	size_t		n = 0, i;

	for (i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		if (param(pairs, &n, sizeof(pairs), params[i][0],
		    params[i][1]) == -1)
			return -1;
	b->len = 0;
	return record(b, FCGI_BEGIN_REQUEST, begin, sizeof(begin)) == -1 ||
	    record(b, FCGI_PARAMS, pairs, n) == -1 ||
	    record(b, FCGI_PARAMS, NULL, 0) == -1 ||
	    record(b, FCGI_STDIN, NULL, 0) == -1 ? -1 : 0;
}

/* Connect to a unix socket path or host:port; the fd, or -1 with why. */
static int
dial(const char *addr, char *why, size_t whylen)
{
	struct sockaddr_un	 sun;
	struct addrinfo		 hints, *res = NULL, *ai;
	char			 host[256];
	const char		*colon;
	size_t			 n;
	int			 fd = -1, rc;

	if (addr[0] == '/') {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlen(addr) >= sizeof(sun.sun_path)) {
			snprintf(why, whylen, "socket path too long");
			return -1;
		}
		memcpy(sun.sun_path, addr, strlen(addr));
		if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
		    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
			snprintf(why, whylen, "%s", strerror(errno));
			if (fd != -1)
				close(fd);
			return -1;
		}
		return fd;
	}
	if ((colon = strrchr(addr, ':')) == NULL ||
	    (n = (size_t)(colon - addr)) == 0 || n >= sizeof(host)) {
		snprintf(why, whylen, "not a path or host:port");
		return -1;
	}
	memcpy(host, addr[0] == '[' ? addr + 1 : addr, n);
	host[addr[0] == '[' && n >= 2 ? n - 2 : n] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, colon + 1, &hints, &res)) != 0) {
		snprintf(why, whylen, "%s", gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype,
		    ai->ai_protocol)) == -1)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		snprintf(why, whylen, "%s", strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/*
 * Send the request and collect the STDOUT records until END_REQUEST,
 * before deadline (monotonic us); 0 with the answer in out, or -1 with
 * why.
 */
static int
exchange(int fd, struct probe_buf *b, int64_t deadline, struct probe_buf *out,
    char *why, size_t whylen)
{
	struct pollfd	 pfd = { fd, POLLOUT, 0 };
	unsigned char	 in[ANSWER_MAX + 8 + 255];
	size_t		 sent = 0, have = 0, clen, rlen;
	ssize_t		 n;
	int64_t		 left;

	out->len = 0;
	for (;;) {
		if ((left = deadline - util_mono_us()) <= 0) {
			snprintf(why, whylen, "no answer in time");
			return -1;
		}
		pfd.events = sent < b->len ? POLLOUT : POLLIN;
		if (poll(&pfd, 1, (int)((left + 999) / 1000)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(why, whylen, "%s", strerror(errno));
			return -1;
		}
		if (pfd.revents == 0)
			continue;
		if (sent < b->len) {
			if ((n = send(fd, b->p + sent, b->len - sent,
			    MSG_NOSIGNAL)) == -1) {
				snprintf(why, whylen, "%s", strerror(errno));
				return -1;
			}
			sent += (size_t)n;
			continue;
		}
		if ((n = recv(fd, in + have, sizeof(in) - have, 0)) <= 0) {
			snprintf(why, whylen, n == 0 ? "incomplete FastCGI "
			    "answer" : "%s", strerror(errno));
			return -1;
		}
		have += (size_t)n;
		while (have >= 8) {
			clen = (size_t)in[4] << 8 | in[5];
			rlen = 8 + clen + in[6];
			if (have < rlen)
				break;
			if (in[1] == FCGI_END_REQUEST)
				return 0;
			if (in[1] == FCGI_STDOUT) {
				if (out->len + clen > sizeof(out->p)) {
					snprintf(why, whylen, "answer too long");
					return -1;
				}
				memcpy(out->p + out->len, in + 8, clen);
				out->len += clen;
			}
			memmove(in, in + rlen, have - rlen);
			have -= rlen;
		}
		if (have == sizeof(in)) {
			snprintf(why, whylen, "garbled FastCGI answer");
			return -1;
		}
	}
}

/* The status of a CGI answer: its Status header, else 200. */
static int
status_of(const struct probe_buf *out)
{
	const char	*p = (const char *)out->p, *end = p + out->len, *eol;
	const char	*errstr;
	long long	 st;
	char		 code[4];

	while (p < end && (eol = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (eol == p || (eol == p + 1 && *p == '\r'))
			break;		/* the end of the headers */
		if (eol - p > 11 && strncasecmp(p, "Status: ", 8) == 0) {
			memcpy(code, p + 8, 3);
			code[3] = '\0';
			return util_strtonum(code, 100, 599, &st, &errstr) ==
			    0 ? (int)st : -1;
		}
		p = eol + 1;
	}
	return 200;
}

int
ctl_probe(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 }
	};
	static struct probe_buf	 req, out;
	const char		*errstr;
	char			 why[256];
	long long		 timeout_s = 2;
	int			 ch, fd, st;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch != 't' || util_strtonum(optarg, 1, 600, &timeout_s,
		    &errstr) == -1)
			return ctl_usage(ctl);
	}
	if (optind != argc - 1)
		return ctl_usage(ctl);
	if (request(&req) == -1) {
		ctl_err("probe: cannot build the request");
		return CTL_FAIL;
	}
	if ((fd = dial(argv[optind], why, sizeof(why))) == -1) {
		printf("no answer: %s\n", why);
		return CTL_FAIL;
	}
	st = exchange(fd, &req, util_mono_us() + timeout_s * 1000000, &out,
	    why, sizeof(why));
	close(fd);
	if (st == -1) {
		printf("no answer: %s\n", why);
		return CTL_FAIL;
	}
	st = status_of(&out);
	printf("status %d\n", st);
	return st == 200 ? CTL_OK : CTL_FAIL;
}

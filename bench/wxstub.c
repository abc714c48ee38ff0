/*
 * wxstub: WeChat's code2Session for the login benchmark, at the cost of a
 * few microseconds of CPU per call.
 *
 * The WeChat stand-in of the tests (tests/wechat/standin.py) speaks all of
 * WeChat's API, in Python, a thread per connection.  Under the login
 * flood it is the largest user of this 2-core machine's CPU (about a
 * quarter), which in production is WeChat's own and not the host's.  This
 * stub answers only GET /sns/jscode2session, the one call of a login, the
 * way the stand-in does for a code "user-NAME-...": the same openid for
 * the same NAME, a session_key, after a fixed delay (-d, milliseconds),
 * over HTTP/1.1 keep-alive, from one epoll loop.  Anything else is 404.
 *
 * usage: wxstub -p PORT [-d DELAY_MS]
 */
#define _GNU_SOURCE	/* accept4 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_FD		65536
#define BUF		8192

struct conn {
	int		 fd;
	char		 in[BUF];
	size_t		 len;
	int64_t		 due_us;	/* the answer is due; 0: none pending */
	char		 out[512];
	size_t		 outlen;
	struct conn	*next;		/* in the due queue */
};

static struct conn	*conns[MAX_FD];
static struct conn	*qhead, *qtail;	/* FIFO: the delay is the same for all */
static int64_t		 delay_us = 50000;

static int64_t
now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
drop(struct conn *c)
{
	close(c->fd);
	conns[c->fd] = NULL;
	c->fd = -1;		/* freed when it leaves the queue, if queued */
	if (c->due_us == 0)
		free(c);
}

/* FNV-1a of n bytes, for a stable openid per user name. */
static uint64_t
fnv(const char *p, size_t n)
{
	uint64_t	h = 1469598103934665603ULL;

	while (n-- > 0)
		h = (h ^ (unsigned char)*p++) * 1099511628211ULL;
	return h;
}

/* The answer to the request in c->in (whole: up to its blank line). */
static void
prepare(struct conn *c)
{
	static const char	b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
	    "klmnopqrstuvwxyz0123456789+/";
	char			 body[256], sk[25];
	const char		*code, *end, *name, *dash;
	uint64_t		 h, k;
	int			 n, i, status = 200;

	code = strstr(c->in, "js_code=");
	if (strncmp(c->in, "GET /sns/jscode2session?", 24) != 0 ||
	    code == NULL) {
		status = 404;
		n = snprintf(body, sizeof(body), "{\"errcode\":-1,\"errmsg\":"
		    "\"not in the stub\"}");
	} else {
		code += 8;
		end = code + strcspn(code, "& \r\n");
		/* "user-NAME-rest": NAME is the user; else the whole code. */
		name = code;
		if (end - code > 5 && strncmp(code, "user-", 5) == 0 &&
		    (dash = memchr(code + 5, '-', (size_t)(end - code - 5))) !=
		    NULL) {
			name = code + 5;
			end = dash;
		}
		h = fnv(name, (size_t)(end - name));
		k = fnv((const char *)&h, sizeof(h)) ^ (uint64_t)now_us();
		for (i = 0; i < 22; i++, k = k * 6364136223846793005ULL + 1)
			sk[i] = b64[(k >> 58) & 63];
		sk[21] = b64[(k >> 58) & 48];	/* 16 bytes: canonical */
		memcpy(sk + 22, "==", 3);
		n = snprintf(body, sizeof(body), "{\"openid\":\"o%016llx\","
		    "\"session_key\":\"%s\"}", (unsigned long long)h, sk);
	}
	c->outlen = (size_t)snprintf(c->out, sizeof(c->out), "HTTP/1.1 %d %s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
	    status, status == 200 ? "OK" : "Not Found", n, body);
}

/* Read what arrived; queue the answer once a request is whole. */
static void
on_read(struct conn *c)
{
	ssize_t	n;
	char	*eoh;

	for (;;) {
		if (c->len >= BUF - 1) {
			drop(c);
			return;
		}
		n = read(c->fd, c->in + c->len, BUF - 1 - c->len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			break;
		if (n <= 0) {
			drop(c);
			return;
		}
		c->len += (size_t)n;
	}
	c->in[c->len] = '\0';
	if (c->due_us != 0 || (eoh = strstr(c->in, "\r\n\r\n")) == NULL)
		return;
	prepare(c);
	/* GETs only: what follows the blank line is the next request. */
	eoh += 4;
	c->len -= (size_t)(eoh - c->in);
	memmove(c->in, eoh, c->len + 1);
	c->due_us = now_us() + delay_us;
	c->next = NULL;
	if (qtail != NULL)
		qtail->next = c;
	else
		qhead = c;
	qtail = c;
}

/* Send the answers that are due. */
static void
answer_due(void)
{
	struct conn	*c;
	int64_t		 now = now_us();

	while ((c = qhead) != NULL && c->due_us <= now) {
		qhead = c->next;
		if (qhead == NULL)
			qtail = NULL;
		c->due_us = 0;
		if (c->fd == -1) {
			free(c);
			continue;
		}
		/* A few hundred bytes: the socket buffer takes them. */
		if (write(c->fd, c->out, c->outlen) != (ssize_t)c->outlen) {
			drop(c);
			continue;
		}
		if (strstr(c->in, "\r\n\r\n") != NULL)
			on_read(c);
	}
}

int
main(int argc, char *argv[])
{
	struct sockaddr_in	 sin;
	struct epoll_event	 ev, evs[256];
	struct conn		*c;
	int			 lfd, ep, fd, n, i, ch, port = 0, one = 1;
	int64_t			 wait_us;

	while ((ch = getopt(argc, argv, "d:p:")) != -1) {
		switch (ch) {
		case 'd':
			delay_us = strtol(optarg, NULL, 10) * 1000;
			break;
		case 'p':
			port = (int)strtol(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: wxstub -p PORT [-d DELAY_MS]\n");
			return 2;
		}
	}
	if (port <= 0 || port > 65535 || delay_us < 0) {
		fprintf(stderr, "usage: wxstub -p PORT [-d DELAY_MS]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, 1024) == -1 || (ep = epoll_create1(0)) == -1) {
		perror("wxstub");
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		wait_us = qhead != NULL ? qhead->due_us - now_us() : 1000000;
		n = epoll_wait(ep, evs, 256, wait_us <= 0 ? 0 :
		    (int)((wait_us + 999) / 1000));
		for (i = 0; i < n; i++) {
			if (evs[i].data.fd == lfd) {
				while ((fd = accept4(lfd, NULL, NULL,
				    SOCK_NONBLOCK)) != -1) {
					if (fd >= MAX_FD ||
					    (c = calloc(1, sizeof(*c))) == NULL) {
						close(fd);
						continue;
					}
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY,
					    &one, sizeof(one));
					c->fd = fd;
					conns[fd] = c;
					ev.events = EPOLLIN;
					ev.data.fd = fd;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if ((c = conns[evs[i].data.fd]) != NULL)
				on_read(c);
		}
		answer_due();
	}
}

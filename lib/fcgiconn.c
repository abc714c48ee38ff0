/*
 * fcgiconn: one FastCGI connection, read without blocking (fcgiconn.h).
 * The record layout is the FastCGI 1.0 specification's.
 */
#include <sys/uio.h>

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "fcgiconn.h"
#include "util.h"

#define FCGI_BEGIN_REQUEST	1
#define FCGI_ABORT_REQUEST	2
#define FCGI_END_REQUEST	3
#define FCGI_PARAMS		4
#define FCGI_STDIN		5
#define FCGI_STDOUT		6
#define FCGI_RESPONDER		1
#define FCGI_KEEP_CONN		1	/* in FCGI_BEGIN_REQUEST's flags */
#define FCGI_MAX_CONTENT	65535
/* Kept beyond max_body: the application tells a body too large itself. */
#define BODY_SLACK		1024

void
fcgiconn_init(struct fcgiconn *c, int fd, struct arena *a, size_t max_body)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->state = FCGICONN_READING;
	c->max_body = max_body;
	buf_init(&c->params, a, 1024);
	buf_init(&c->body, a, 256);
}

int
fcgiconn_next(struct fcgiconn *c, struct arena *a)
{
	if (!c->keep || c->extra)
		return -1;
	fcgiconn_init(c, c->fd, a, c->max_body);
	return 0;
}

int
fcgiconn_idle(const struct fcgiconn *c)
{
	return c->state == FCGICONN_READING && !c->began && c->hlen == 0;
}

static enum fcgiconn_state
fail(struct fcgiconn *c, const char *why)
{
	c->error = why;
	return c->state = FCGICONN_FAILED;
}

/* One name or value length: 1 byte below 128, else 4 with the top bit. */
static int
nv_len(const unsigned char **p, const unsigned char *end, size_t *len)
{
	if (*p >= end)
		return -1;
	if (**p < 128) {
		*len = *(*p)++;
		return 0;
	}
	if (end - *p < 4)
		return -1;
	*len = ((size_t)((*p)[0] & 0x7f) << 24) | ((size_t)(*p)[1] << 16) |
	    ((size_t)(*p)[2] << 8) | (*p)[3];
	*p += 4;
	return 0;
}

/*
 * The name-value pairs as "NAME=VALUE" strings, NULL-terminated.  A NUL
 * in a name or a value, or a '=' in a name, would make the string say
 * something else than the pair (nginx sends neither): malformed.
 */
static int
make_env(struct fcgiconn *c, struct arena *a)
{
	const unsigned char	*p, *end, *start;
	size_t			 nl, vl, n = 0, i = 0;
	char			*s;

	start = (const unsigned char *)c->params.p;
	end = start + c->params.len;
	for (p = start; p < end; n++) {
		if (nv_len(&p, end, &nl) == -1 || nv_len(&p, end, &vl) == -1 ||
		    (size_t)(end - p) < nl || (size_t)(end - p) - nl < vl ||
		    memchr(p, '\0', nl + vl) != NULL || memchr(p, '=', nl) != NULL)
			return -1;
		p += nl + vl;
	}
	if ((c->envp = arena_calloc(a, n + 1, sizeof(char *))) == NULL)
		return -1;
	for (p = start; p < end; i++) {
		(void)nv_len(&p, end, &nl);
		(void)nv_len(&p, end, &vl);
		if ((s = arena_alloc(a, nl + vl + 2)) == NULL)
			return -1;
		memcpy(s, p, nl);
		s[nl] = '=';
		memcpy(s + nl + 1, p + nl, vl);
		s[nl + 1 + vl] = '\0';
		c->envp[i] = s;
		p += nl + vl;
	}
	c->envp[n] = NULL;
	return 0;
}

/* Content bytes of the record being read. */
static enum fcgiconn_state
content(struct fcgiconn *c, const unsigned char *p, size_t n)
{
	size_t	room;

	switch (c->type) {
	case FCGI_BEGIN_REQUEST:
		/* role (2 bytes) and flags: only the role matters. */
		if (c->params.len + n > 8)
			return fail(c, "bad FCGI_BEGIN_REQUEST");
		buf_add(&c->params, p, n);
		break;
	case FCGI_PARAMS:
		if (c->params.len + n > FCGICONN_MAX_PARAMS)
			return fail(c, "parameters too large");
		buf_add(&c->params, p, n);
		break;
	case FCGI_STDIN:
		/*
		 * Past the limit the body is read to its end and not kept:
		 * the request still gets an answer, the application's 413
		 * (from its Content-Length), as in libfcgi's loop.  Dropping
		 * the connection made nginx answer 502, then 503.
		 */
		if (c->body.len < c->max_body + BODY_SLACK) {
			room = c->max_body + BODY_SLACK - c->body.len;
			buf_add(&c->body, p, n < room ? n : room);
		}
		break;
	default:	/* FCGI_DATA, management records: not for a responder */
		break;
	}
	return c->state;
}

/* The record is read whole; reclen was its content length. */
static enum fcgiconn_state
record_end(struct fcgiconn *c, struct arena *a, size_t reclen)
{
	const unsigned char	*b;

	c->hlen = 0;
	switch (c->type) {
	case FCGI_BEGIN_REQUEST:
		b = (const unsigned char *)c->params.p;
		if (c->began || reclen != 8 ||
		    ((b[0] << 8) | b[1]) != FCGI_RESPONDER)
			return fail(c, "not a responder's FCGI_BEGIN_REQUEST");
		c->began = 1;
		c->keep = (b[2] & FCGI_KEEP_CONN) != 0;
		c->params.len = 0;
		break;
	case FCGI_ABORT_REQUEST:
		return fail(c, "request aborted");
	case FCGI_PARAMS:
		if (reclen == 0) {
			c->params_done = 1;
			if (make_env(c, a) == -1)
				return fail(c, "malformed parameters");
		}
		break;
	case FCGI_STDIN:
		if (reclen == 0) {
			if (!c->params_done)
				return fail(c, "FCGI_STDIN before the parameters");
			buf_addc(&c->body, '\0');
			c->body.len--;
			return c->state = FCGICONN_READY;
		}
		break;
	}
	return c->state;
}

enum fcgiconn_state
fcgiconn_feed(struct fcgiconn *c, struct arena *a, const unsigned char *p,
    size_t n)
{
	size_t	k, reclen;

	while (n > 0 && c->state == FCGICONN_READING) {
		if (c->hlen < 8) {
			k = 8 - c->hlen < n ? 8 - c->hlen : n;
			memcpy(c->hdr + c->hlen, p, k);
			c->hlen += k;
			p += k;
			n -= k;
			if (c->hlen < 8)
				break;
			if (c->hdr[0] != 1)
				return fail(c, "not FastCGI version 1");
			c->type = c->hdr[1];
			c->left = ((size_t)c->hdr[4] << 8) | c->hdr[5];
			c->pad = c->hdr[6];
			if (c->type == FCGI_BEGIN_REQUEST)
				c->id = (uint16_t)((c->hdr[2] << 8) | c->hdr[3]);
			else if ((c->type == FCGI_PARAMS ||
			    c->type == FCGI_STDIN) && (!c->began ||
			    ((c->hdr[2] << 8) | c->hdr[3]) != c->id))
				return fail(c, "a record of no request");
			if (c->left == 0 && c->pad == 0)
				record_end(c, a, 0);
			continue;
		}
		reclen = ((size_t)c->hdr[4] << 8) | c->hdr[5];
		if (c->left > 0) {
			k = c->left < n ? c->left : n;
			if (content(c, p, k) != FCGICONN_READING)
				break;
			c->left -= k;
		} else {
			k = c->pad < n ? c->pad : n;
			c->pad -= k;
		}
		p += k;
		n -= k;
		if (c->left == 0 && c->pad == 0)
			record_end(c, a, reclen);
	}
	if (n > 0 && c->state == FCGICONN_READY)
		c->extra = 1;
	return c->state;
}

enum fcgiconn_state
fcgiconn_read(struct fcgiconn *c, struct arena *a)
{
	unsigned char	b[16384];
	ssize_t		n;

	while (c->state == FCGICONN_READING) {
		if ((n = read(c->fd, b, sizeof(b))) > 0) {
			fcgiconn_feed(c, a, b, (size_t)n);
			continue;
		}
		if (n == 0)
			return fail(c, "closed by the peer");
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)	/* EWOULDBLOCK on Linux */
			break;
		return fail(c, "read failed");
	}
	return c->state;
}

/* Write all of iov[0..n), waiting while the socket is full; 0 or -1. */
static int
writev_all(int fd, struct iovec *iov, int n, int64_t deadline_us)
{
	struct pollfd	pfd = { .fd = fd, .events = POLLOUT };
	ssize_t		w;
	int64_t		left;

	while (n > 0) {
		if ((w = writev(fd, iov, n)) > 0) {
			/* Past what went out; into the one cut short. */
			for (; n > 0 && (size_t)w >= iov->iov_len; iov++, n--)
				w -= (ssize_t)iov->iov_len;
			if (n > 0) {
				iov->iov_base = (char *)iov->iov_base + w;
				iov->iov_len -= (size_t)w;
			}
			continue;
		}
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1 && errno != EAGAIN)	/* EWOULDBLOCK on Linux */
			return -1;
		if ((left = deadline_us - util_mono_us()) <= 0 ||
		    poll(&pfd, 1, (int)((left + 999) / 1000)) == -1)
			return -1;
	}
	return 0;
}

/* An 8-byte record header. */
static void
header(unsigned char *h, int type, uint16_t id, size_t len)
{
	h[0] = 1;
	h[1] = (unsigned char)type;
	h[2] = (unsigned char)(id >> 8);
	h[3] = (unsigned char)id;
	h[4] = (unsigned char)(len >> 8);
	h[5] = (unsigned char)len;
	h[6] = 0;
	h[7] = 0;
}

/* FCGI_STDOUT records per writev: most answers need one. */
#define ANSWER_CHUNKS	8

int
fcgiconn_answer(struct fcgiconn *c, const char *p, size_t n, int timeout_ms)
{
	unsigned char	 h[ANSWER_CHUNKS][8], end[24];
	struct iovec	 iov[2 * ANSWER_CHUNKS + 1];
	int64_t		 deadline = util_mono_us() + (int64_t)timeout_ms * 1000;
	size_t		 k;
	int		 i, v, last;

	do {
		for (i = v = 0; i < ANSWER_CHUNKS && n > 0; i++) {
			k = n > FCGI_MAX_CONTENT ? FCGI_MAX_CONTENT : n;
			header(h[i], FCGI_STDOUT, c->id, k);
			iov[v].iov_base = h[i];
			iov[v++].iov_len = 8;
			iov[v].iov_base = (void *)(uintptr_t)p;
			iov[v++].iov_len = k;
			p += k;
			n -= k;
		}
		/*
		 * With the last of the body: the empty FCGI_STDOUT, then
		 * FCGI_END_REQUEST (appStatus 0, FCGI_REQUEST_COMPLETE).
		 */
		last = n == 0;
		if (last) {
			header(end, FCGI_STDOUT, c->id, 0);
			header(end + 8, FCGI_END_REQUEST, c->id, 8);
			memset(end + 16, 0, 8);
			iov[v].iov_base = end;
			iov[v++].iov_len = sizeof(end);
		}
		if (writev_all(c->fd, iov, v, deadline) == -1)
			return -1;
	} while (!last);
	return 0;
}

/*
 * span: a request's OpenTelemetry spans, and their way out (see span.h).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "span.h"
#include "util.h"

void
spans_start(struct spans *sp, struct arena *a, const struct trace *t,
    const char *name)
{
	struct span	*s;

	sp->trace = NULL;
	sp->n = 0;
	sp->dropped = 0;
	if (t == NULL || !(t->flags & 0x01) || t->span_id[0] == '\0')
		return;
	if ((sp->v = arena_alloc(a, SPAN_MAX * sizeof(*sp->v))) == NULL)
		return;
	sp->a = a;
	sp->trace = t;
	s = &sp->v[sp->n++];
	memset(s, 0, sizeof(*s));
	memcpy(s->id, t->span_id, sizeof(s->id));
	memcpy(s->parent, t->parent_id, sizeof(s->parent));
	s->name = name;
	s->kind = SPAN_SERVER;
	s->start_us = util_wall_us();
}

struct span *
span_begin(struct spans *sp, const char *name, enum span_kind kind)
{
	struct trace	 c;
	struct span	*s;

	if (!spans_recording(sp))
		return NULL;
	if (sp->n >= SPAN_MAX || trace_child(sp->trace, &c) == -1) {
		sp->dropped++;
		return NULL;
	}
	s = &sp->v[sp->n++];
	memset(s, 0, sizeof(*s));
	memcpy(s->id, c.span_id, sizeof(s->id));
	memcpy(s->parent, sp->v[0].id, sizeof(s->parent));
	s->name = name;
	s->kind = kind;
	s->start_us = util_wall_us();
	return s;
}

void
span_end(struct span *s, int error)
{
	if (s == NULL)
		return;
	s->end_us = util_wall_us();
	s->error = error;
}

void
span_attr_str(struct span *s, const char *key, const char *value)
{
	if (s == NULL || s->nattr >= SPAN_ATTRS || value == NULL)
		return;
	s->attr[s->nattr].key = key;
	s->attr[s->nattr].str = value;
	s->nattr++;
}

void
span_attr_copy(struct spans *sp, struct span *s, const char *key,
    const char *value)
{
	if (s != NULL && value != NULL)
		span_attr_str(s, key, arena_strdup(sp->a, value));
}

void
span_attr_int(struct span *s, const char *key, long long value)
{
	if (s == NULL || s->nattr >= SPAN_ATTRS)
		return;
	s->attr[s->nattr].key = key;
	s->attr[s->nattr].str = NULL;
	s->attr[s->nattr].num = value;
	s->nattr++;
}

void
spans_rename(struct spans *sp, const char *name)
{
	if (spans_recording(sp))
		sp->v[0].name = name;
}

void
spans_set_kind(struct spans *sp, enum span_kind kind)
{
	if (spans_recording(sp))
		sp->v[0].kind = kind;
}

/* One Span object of OTLP/JSON (opentelemetry-proto's JSON mapping). */
static void
encode_one(struct buf *b, const struct trace *t, const struct span *s)
{
	int	i;

	buf_adds(b, "{\"traceId\":\"");
	buf_adds(b, t->trace_id);
	buf_adds(b, "\",\"spanId\":\"");
	buf_adds(b, s->id);
	if (s->parent[0] != '\0') {
		buf_adds(b, "\",\"parentSpanId\":\"");
		buf_adds(b, s->parent);
	}
	buf_addc(b, '"');
	/* The span context's: every span of the request has the caller's. */
	if (t->state != NULL) {
		buf_adds(b, ",\"traceState\":");
		buf_json_str(b, t->state, strlen(t->state));
	}
	buf_adds(b, ",\"name\":");
	buf_json_str(b, s->name, strlen(s->name));
	buf_adds(b, ",\"kind\":");
	buf_addll(b, s->kind);
	/* int64 fields are strings in proto3's JSON mapping. */
	buf_adds(b, ",\"startTimeUnixNano\":\"");
	buf_addll(b, s->start_us);
	buf_adds(b, "000\",\"endTimeUnixNano\":\"");
	buf_addll(b, s->end_us > s->start_us ? s->end_us : s->start_us);
	buf_adds(b, "000\",\"attributes\":[");
	for (i = 0; i < s->nattr; i++) {
		if (i > 0)
			buf_addc(b, ',');
		buf_adds(b, "{\"key\":\"");
		buf_adds(b, s->attr[i].key);
		if (s->attr[i].str != NULL) {
			buf_adds(b, "\",\"value\":{\"stringValue\":");
			buf_json_str(b, s->attr[i].str, strlen(s->attr[i].str));
			buf_adds(b, "}}");
		} else {
			buf_adds(b, "\",\"value\":{\"intValue\":\"");
			buf_addll(b, s->attr[i].num);
			buf_adds(b, "\"}}");
		}
	}
	/* STATUS_CODE_ERROR is 2; unset (0) otherwise, as the spec asks. */
	buf_adds(b, s->error ? "],\"status\":{\"code\":2}}" : "],\"status\":{}}");
}

int
spans_encode(struct spans *sp, int error, struct buf *out)
{
	int	i;

	if (!spans_recording(sp))
		return -1;
	span_end(&sp->v[0], error);
	buf_addc(out, '[');
	for (i = 0; i < sp->n; i++) {
		if (i > 0)
			buf_addc(out, ',');
		encode_one(out, sp->trace, &sp->v[i]);
	}
	buf_addc(out, ']');
	return 0;
}

void
spans_end(struct spans *sp)
{
	sp->trace = NULL;
	sp->v = NULL;
	sp->n = 0;
}

int
span_sink_open(struct span_sink *k, const char *path)
{
	size_t	len = strlen(path);

	k->fd = -1;
	k->retry_us = 0;
	if (len == 0 || len >= sizeof(k->to.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&k->to, 0, sizeof(k->to));
	k->to.sun_family = AF_UNIX;
	memcpy(k->to.sun_path, path, len);
	k->tolen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	return 0;
}

/* Connect to the exporter, unless a try failed less than a while ago. */
static int
sink_connect(struct span_sink *k)
{
	int	fd, sz = SPAN_SINK_SNDBUF;
	int64_t	now = util_mono_us();

	if (now < k->retry_us || k->tolen == 0)
		return -1;
	k->retry_us = now + SPAN_SINK_RETRY_US;
	if ((fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (connect(fd, (const struct sockaddr *)&k->to, k->tolen) == -1) {
		close(fd);
		return -1;
	}
	k->fd = fd;
	return 0;
}

int
span_sink_send(struct span_sink *k, const void *p, size_t len)
{
	ssize_t	n;
	int	tries;

	if (len > SPAN_MESSAGE_MAX)
		return -1;
	/* A second try only after the exporter went away (restarted). */
	for (tries = 0; tries < 2; tries++) {
		if (k->fd == -1 && sink_connect(k) == -1)
			return -1;
		do
			n = send(k->fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (n == -1 && errno == EINTR);
		if (n == (ssize_t)len)
			return 0;
		if (n == -1 && (errno == EAGAIN ||
		    errno == EMSGSIZE || errno == ENOBUFS))
			return -1;
		span_sink_close(k);
		k->retry_us = 0;
	}
	return -1;
}

void
span_sink_close(struct span_sink *k)
{
	if (k->fd != -1)
		close(k->fd);
	k->fd = -1;
}

void
span_export_begin(struct buf *b, const char *service, const char *version,
    const char *host)
{
	buf_adds(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
	    "{\"key\":\"service.name\",\"value\":{\"stringValue\":");
	buf_json_str(b, service, strlen(service));
	buf_adds(b, "}},{\"key\":\"service.version\",\"value\":"
	    "{\"stringValue\":");
	buf_json_str(b, version, strlen(version));
	buf_adds(b, "}},{\"key\":\"host.name\",\"value\":{\"stringValue\":");
	buf_json_str(b, host, strlen(host));
	buf_adds(b, "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"wxapp\","
	    "\"version\":");
	buf_json_str(b, version, strlen(version));
	buf_adds(b, "},\"spans\":[");
}

void
span_export_add(struct buf *b, const char *array, size_t len, int first)
{
	/* The inside of "[...]": spans_encode wrote at least one span. */
	if (len < 2)
		return;
	if (!first)
		buf_addc(b, ',');
	buf_add(b, array + 1, len - 2);
}

void
span_export_end(struct buf *b)
{
	buf_adds(b, "]}]}]}");
}

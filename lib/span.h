/*
 * span: the OpenTelemetry spans of one request, recorded only when its
 * trace is sampled, and handed over when it ends as one message of
 * OTLP/JSON span objects to a local exporter, never waiting for it.
 *
 * A request has one server span, whose id is the span id of its trace
 * (lib/trace), and a client span under it for each call it makes (a
 * statement, a Redis round trip, a WeChat call).  The spans live in the
 * request's arena.  Nothing here blocks or allocates when the trace is
 * not sampled: span_begin is then a test and a NULL.
 *
 * The exporter's socket is the buffer between the request and the
 * collector: a SOCK_SEQPACKET connection per process, whose send buffer
 * holds what the exporter has not read yet.  When it is full (the
 * exporter is slow or stopped) or there is no exporter, span_sink_send
 * drops the request's spans at once and says so, for the caller to count.
 * (A datagram socket would be simpler, but Linux queues only
 * net.unix.max_dgram_qlen, 10 by default, datagrams for a reader.)
 */
#ifndef WX_SPAN_H
#define WX_SPAN_H

#include <sys/socket.h>
#include <sys/un.h>

#include <stdint.h>

#include "arena.h"
#include "trace.h"

#define SPAN_MAX	64	/* per request; beyond, spans are dropped */
#define SPAN_ATTRS	4	/* per span */
/* The largest message sent: a request whose spans need more sends none. */
#define SPAN_MESSAGE_MAX	(60 * 1024)
#define SPAN_SINK_SNDBUF	(1024 * 1024)	/* asked for; the kernel caps it */
#define SPAN_SINK_RETRY_US	1000000	/* between tries to connect */

/* OTLP's SpanKind. */
enum span_kind {
	SPAN_INTERNAL = 1,
	SPAN_SERVER = 2,
	SPAN_CLIENT = 3,
	SPAN_CONSUMER = 5	/* the run of a queued job */
};

struct span_attr {
	const char	*key;		/* static: a semantic-convention name */
	const char	*str;		/* NULL: num is the value */
	long long	 num;
};

struct span {
	char		 id[17];
	char		 parent[17];	/* "" for a root */
	const char	*name;		/* must outlive the request */
	enum span_kind	 kind;
	int64_t		 start_us, end_us;	/* wall clock */
	int		 error;		/* status ERROR */
	int		 nattr;
	struct span_attr attr[SPAN_ATTRS];
};

struct spans {
	const struct trace *trace;	/* NULL: not recording */
	struct arena	*a;
	struct span	*v;		/* v[0]: the server span */
	int		 n;
	unsigned	 dropped;	/* beyond SPAN_MAX */
};

/*
 * Begin recording the spans of a request in trace t, with its server span
 * named name, if t is sampled; else record nothing.  sp must be
 * zero-filled or ended (spans_end) before.
 */
void	spans_start(struct spans *sp, struct arena *, const struct trace *t,
	    const char *name);
/* Is sp recording? */
static inline int
spans_recording(const struct spans *sp)
{
	return sp != NULL && sp->trace != NULL;
}
/*
 * A client (or internal) span under the server span, begun now; NULL when
 * sp is NULL or not recording, or holds SPAN_MAX spans already.
 */
struct span *span_begin(struct spans *sp, const char *name, enum span_kind);
/* Its end: now; error sets the status to ERROR.  s may be NULL. */
void	span_end(struct span *s, int error);
/* Attributes (s may be NULL; beyond SPAN_ATTRS they are not kept). */
void	span_attr_str(struct span *s, const char *key, const char *value);
void	span_attr_int(struct span *s, const char *key, long long value);
/* A string attribute whose value does not outlive the call: copied. */
void	span_attr_copy(struct spans *sp, struct span *s, const char *key,
	    const char *value);
/* The server span's name (the route, once it is known). */
void	spans_rename(struct spans *sp, const char *name);
/* The first span's kind: a job's run is SPAN_CONSUMER, not a server's. */
void	spans_set_kind(struct spans *sp, enum span_kind);
/*
 * End the server span (error: status ERROR) and write every span as a
 * JSON array of OTLP/JSON Span objects.  0, or -1 when not recording.
 */
int	spans_encode(struct spans *sp, int error, struct buf *out);
/* Stop recording (the arena's memory goes with the request). */
void	spans_end(struct spans *sp);

/* Where a process sends its spans: a connection to the exporter. */
struct span_sink {
	int			 fd;	/* -1: not connected */
	struct sockaddr_un	 to;
	socklen_t		 tolen;
	int64_t			 retry_us;	/* monotonic: next connect */
};

/*
 * Set up a sink for the exporter's SOCK_SEQPACKET socket at path; it
 * connects on the first send.  0, or -1 (ENAMETOOLONG).
 */
int	span_sink_open(struct span_sink *, const char *path);
/*
 * Send one message, never waiting: 0, or -1 when it was dropped (the
 * connection's buffer full, or no exporter: then connecting is tried
 * again at most every SPAN_SINK_RETRY_US).
 */
int	span_sink_send(struct span_sink *, const void *p, size_t len);
void	span_sink_close(struct span_sink *);

/*
 * Wrap span arrays (each a message that spans_encode wrote) into one
 * OTLP/JSON ExportTraceServiceRequest of the service `service`, for
 * POST /v1/traces.
 */
void	span_export_begin(struct buf *, const char *service,
	    const char *version, const char *host);
/* Add one message's spans (a JSON array, from spans_encode). */
void	span_export_add(struct buf *, const char *array, size_t len,
	    int first);
void	span_export_end(struct buf *);

#endif

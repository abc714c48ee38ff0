/*
 * trace: W3C Trace Context (traceparent): the trace a request belongs to,
 * taken from the caller's traceparent when it is valid and started anew
 * otherwise, a span of its own, and the header that carries it on to
 * whatever the request calls (WeChat) and back to the client.
 */
#ifndef WX_TRACE_H
#define WX_TRACE_H

#define TRACE_HEADER_LEN	55	/* 00-<32>-<16>-<2> */

struct trace {
	char		trace_id[33];	/* 32 lower-case hex digits */
	char		span_id[17];	/* ours */
	char		parent_id[17];	/* the caller's span, or "" */
	unsigned	flags;		/* trace-flags: 01 sampled */
};

/*
 * Parse a traceparent as the W3C spec reads it (any version but ff, its
 * first four fields; lower-case hex; no all-zero id): 0 with the caller's
 * trace id, span (as parent_id) and flags in t, or -1.
 */
int	trace_parse(const char *traceparent, struct trace *t);
/*
 * The trace of a request: a new span in the caller's trace when
 * traceparent is valid, else in a new trace (flags 0).  0, or -1 when no
 * random ids could be had (t then holds none: "").
 */
int	trace_start(struct trace *t, const char *traceparent);
/*
 * The sampling decision of a trace that t starts (it has no parent):
 * sampled with probability ratio (0..1), decided by the trace id, so
 * that every process that sees the trace decides alike.  A trace that
 * came with a parent keeps the parent's decision.
 */
void	trace_sample(struct trace *t, double ratio);
/* The same decision for any trace, whatever its parent said. */
void	trace_sample_any(struct trace *t, double ratio);
/* A span under t (for a call it makes): the same trace, a new id. */
int	trace_child(const struct trace *t, struct trace *child);
/* t as a traceparent header value; out: TRACE_HEADER_LEN + 1 bytes. */
void	trace_header(const struct trace *t, char *out);

#endif

/*
 * trace: W3C Trace Context (traceparent and tracestate): the trace a
 * request belongs to, taken from the caller's traceparent when it is
 * valid and started anew otherwise, a span of its own, the caller's
 * tracestate when the traceparent was taken and the tracestate is valid,
 * and the headers that carry them on to whatever the request calls
 * (WeChat, jobs) and back to the client.
 */
#ifndef WX_TRACE_H
#define WX_TRACE_H

#define TRACE_HEADER_LEN	55	/* 00-<32>-<16>-<2> */
#define TRACE_STATE_MAX		512	/* characters of a tracestate kept */
#define TRACE_STATE_MEMBERS	32	/* list members of a tracestate */

struct trace {
	char		trace_id[33];	/* 32 lower-case hex digits */
	char		span_id[17];	/* ours */
	char		parent_id[17];	/* the caller's span, or "" */
	unsigned	flags;		/* trace-flags: 01 sampled */
	const char	*state;		/* the caller's tracestate: valid, or
					   NULL; not owned */
};

/*
 * Parse a traceparent as the W3C spec reads it (any version but ff, its
 * first four fields; lower-case hex; no all-zero id): 0 with the caller's
 * trace id, span (as parent_id) and flags in t, or -1.
 */
int	trace_parse(const char *traceparent, struct trace *t);
/*
 * The trace of a request: a new span in the caller's trace when
 * traceparent is valid, else in a new trace (flags 0); no tracestate.
 * 0, or -1 when no random ids could be had (t then holds none: "").
 */
int	trace_start(struct trace *t, const char *traceparent);
/*
 * Does s follow W3C Trace Context's tracestate: at most
 * TRACE_STATE_MEMBERS list members and TRACE_STATE_MAX characters, each
 * member key=value with the spec's key and value syntax, no key twice?
 * Empty members (blanks between commas) are allowed, but a list with no
 * member at all is refused: there is nothing to pass on.  1 or 0.
 */
int	trace_state_valid(const char *s);
/*
 * Keep the caller's tracestate s in t (which points at it: s must
 * outlive t), only when t continues the caller's trace (its traceparent
 * was taken: the spec passes tracestate on with it alone) and s is
 * valid; otherwise t has none.
 */
void	trace_set_state(struct trace *t, const char *s);
/*
 * The sampling decision of a trace that t starts (it has no parent):
 * sampled with probability ratio (0..1), decided by the trace id, so
 * that every process that sees the trace decides alike.  A trace that
 * came with a parent keeps the parent's decision.
 */
void	trace_sample(struct trace *t, double ratio);
/* The same decision for any trace, whatever its parent said. */
void	trace_sample_any(struct trace *t, double ratio);
/*
 * A span under t (for a call it makes): the same trace and tracestate,
 * a new id.
 */
int	trace_child(const struct trace *t, struct trace *child);
/* t as a traceparent header value; out: TRACE_HEADER_LEN + 1 bytes. */
void	trace_header(const struct trace *t, char *out);

#endif

/*
 * request: what a request says, read from the FastCGI params and stdin.
 * Owns the params the app reads (method, path, query, headers, remote
 * address), body reading against a size limit (413/400), query and
 * cookie parsing with percent-decoding, the request id, and JSON bodies
 * with precise 400 messages.  Failures set an error envelope on the
 * response and return -1, so a handler just returns.
 */
#ifndef WX_REQUEST_H
#define WX_REQUEST_H

#include <stddef.h>

#include <json-c/json.h>

#include "arena.h"
#include "trace.h"
#include "response.h"

#define REQ_ID_MAX	64
#define REQ_MAX_PARAMS	8

struct req_kv {
	const char	*name;
	const char	*value;
};

struct route;

struct req {
	struct arena		*a;
	char *const		*envp;
	const char		*method;
	const char		*path;
	const char		*query;
	const char		*content_type;
	const char		*remote_addr;
	const char		*if_none_match;		/* NULL when absent */
	const char		*if_modified_since;
	const char		*authorization;
	const char		*accept;	/* the Accept header, or NULL */
	char			 id[REQ_ID_MAX + 1];
	struct trace		 trace;		/* its traceparent and tracestate,
						   or a new one */
	const char		*body;
	size_t			 body_len;
	int			 head;		/* HEAD served as GET */
	const struct route	*route;
	struct req_kv		 params[REQ_MAX_PARAMS];	/* path {names} */
	int			 nparams;
	struct req_kv		*queryv;
	int			 nquery;
	struct req_kv		*cookiev;
	int			 ncookie;	/* -1 until parsed */
	struct json_object	*json;		/* put by req_finish */
};

/* Reads up to n bytes of the body into p; returns bytes read, 0 at end. */
typedef int	(*req_read_fn)(void *ctx, char *p, int n);

/* Seed the request id generator (once per process). */
void	 req_id_seed(void);
/* True when s may be used as a request id: 1..64 of [A-Za-z0-9._-]. */
int	 req_id_valid(const char *s);
/* Fill rq from FastCGI params (NAME=value strings). */
void	 req_init(struct req *, struct arena *, char *const *envp);
/* Release what the request holds outside the arena. */
void	 req_finish(struct req *);
/* A param by name (e.g. "HTTP_IF_NONE_MATCH"), or NULL. */
const char *req_param(const struct req *, const char *name);
/*
 * How much the client's Accept header wants the media type `type`
 * ("application/msgpack"), as q in thousandths: the q of the most specific
 * range that matches it (type, then its type/ *, then * / *); 1000 without
 * an Accept header; 0 when no range matches or its q is 0.
 */
int	 req_accept_q(const struct req *, const char *type);
/*
 * Read exactly CONTENT_LENGTH bytes (none without it) up to limit; -1
 * with the error set.
 */
int	 req_read_body(struct req *, struct resp *, long long limit,
	    req_read_fn, void *ctx);
/* Parse QUERY_STRING; -1 with a 400 set when an escape is malformed. */
int	 req_parse_query(struct req *, struct resp *);
/* A decoded query value, or NULL. */
const char *req_query(const struct req *, const char *name);
/* A decoded cookie value, or NULL. */
const char *req_cookie(struct req *, const char *name);
/* A path parameter captured by the router, or NULL. */
const char *req_path_param(const struct req *, const char *name);
/*
 * Percent-decode n bytes of src into dst (room for n + 1); '+' is a space
 * when plus is set.  Strict: a bad escape or %00 is an error (-1); lenient:
 * it is kept as is.  Returns the decoded length.
 */
long	 req_pct_decode(char *dst, const char *src, size_t n, int plus,
	    int strict);
/* The body as a JSON object; -1 with 415/400 set. */
int	 req_json_body(struct req *, struct resp *, struct json_object **);
/* obj.field as a string, NULL when absent; -1 when not a string. */
int	 req_json_opt_string(struct resp *, struct json_object *obj,
	    const char *field, const char **out);
/* -1 with a 400 when obj has a field not in the NULL-ended allowed list. */
int	 req_json_only(struct resp *, struct json_object *obj,
	    const char *const *allowed);
/* obj.field as a string; -1 with a 400 naming the field. */
int	 req_json_string(struct resp *, struct json_object *obj,
	    const char *field, const char **out);

#endif

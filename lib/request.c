/*
 * request: FastCGI params in, checked values out.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "jsonparse.h"
#include "request.h"
#include "util.h"

/* The request id generator: a random per-process prefix and a counter. */
static struct {
	uint64_t	prefix;
	uint32_t	counter;
} reqid;

void
req_id_seed(void)
{
	if (util_random(&reqid.prefix, sizeof(reqid.prefix)) == -1)
		reqid.prefix = (uint64_t)util_wall_us() ^ (uint64_t)util_mono_us();
	reqid.counter = 0;
}

int
req_id_valid(const char *s)
{
	size_t	n;

	for (n = 0; s[n] != '\0'; n++) {
		if (n == REQ_ID_MAX)
			return 0;
		if (!isalnum((unsigned char)s[n]) && s[n] != '.' &&
		    s[n] != '_' && s[n] != '-')
			return 0;
	}
	return n > 0;
}

const char *
req_param(const struct req *rq, const char *name)
{
	size_t		 n = strlen(name);
	char *const	*e;

	for (e = rq->envp; *e != NULL; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* A q value ("0.5", "1", "0.125") in thousandths; -1 when malformed. */
static int
qvalue(const char *p, size_t n)
{
	int	q, scale = 100;
	size_t	i;

	if (n == 0 || (p[0] != '0' && p[0] != '1'))
		return -1;
	q = (p[0] - '0') * 1000;
	if (n == 1)
		return q;
	if (p[1] != '.' || n > 5)
		return -1;
	for (i = 2; i < n; i++, scale /= 10) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		q += (p[i] - '0') * scale;
	}
	return q > 1000 ? -1 : q;
}

int
req_accept_q(const struct req *rq, const char *type)
{
	const char	*h = rq->accept, *p, *end, *semi, *q;
	size_t		 tlen = strlen(type), major = strcspn(type, "/"), n;
	int		 best = 0, best_rank = 0, rank, v;

	if (h == NULL)
		return 1000;
	for (p = h; *p != '\0'; p = *end == ',' ? end + 1 : end) {
		p += strspn(p, " \t");
		end = p + strcspn(p, ",");
		semi = memchr(p, ';', (size_t)(end - p));
		n = (size_t)((semi != NULL ? semi : end) - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		/* 3: the type itself; 2: its type/ *; 1: * / *. */
		if (n == tlen && strncasecmp(p, type, n) == 0)
			rank = 3;
		else if (n == major + 2 && strncasecmp(p, type, major + 1) == 0 &&
		    p[major + 1] == '*')
			rank = 2;
		else if (n == 3 && strncmp(p, "*/*", 3) == 0)
			rank = 1;
		else
			continue;
		v = 1000;
		for (q = semi; q != NULL; q = memchr(q, ';', (size_t)(end - q))) {
			q++;
			q += strspn(q, " \t");
			if (q >= end)
				break;
			if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
				if ((v = qvalue(q + 2, strcspn(q + 2, " \t;,"))) == -1)
					v = 0;
				break;
			}
		}
		if (rank > best_rank) {
			best_rank = rank;
			best = v;
		}
	}
	return best;
}

/* The params req_init keeps, found in one pass over the environment. */
enum known {
	K_METHOD, K_QUERY, K_DOC_URI, K_REQ_URI, K_CTYPE, K_ADDR, K_REQID,
	K_TRACE, K_TRACESTATE, K_INM, K_IMS, K_AUTH, K_ACCEPT, K_NKNOWN
};
static const struct {
	const char	*name;
	size_t		 len;
} known[K_NKNOWN] = {
#define KN(s)	{ s, sizeof(s) - 1 }
	KN("REQUEST_METHOD"), KN("QUERY_STRING"), KN("DOCUMENT_URI"),
	KN("REQUEST_URI"), KN("CONTENT_TYPE"), KN("REMOTE_ADDR"),
	KN("HTTP_X_REQUEST_ID"), KN("HTTP_TRACEPARENT"), KN("HTTP_TRACESTATE"),
	KN("HTTP_IF_NONE_MATCH"), KN("HTTP_IF_MODIFIED_SINCE"),
	KN("HTTP_AUTHORIZATION"), KN("HTTP_ACCEPT")
#undef KN
};

/* Append the 32-bit v as 8 hex digits at p. */
static void
hex32(char *p, uint32_t v)
{
	static const char	digits[] = "0123456789abcdef";
	int			i;

	for (i = 7; i >= 0; i--, v >>= 4)
		p[i] = digits[v & 0xf];
}

void
req_init(struct req *rq, struct arena *a, char *const *envp)
{
	static char *const	 noenv[] = { NULL };
	const char		*v[K_NKNOWN] = { NULL }, *q;
	char *const		*e;
	size_t			 k, n;

	memset(rq, 0, sizeof(*rq));
	rq->a = a;
	rq->envp = envp != NULL ? envp : noenv;
	rq->ncookie = -1;
	/*
	 * The first of duplicates wins, as with req_param.  Most of the
	 * environment is headers and server variables we do not keep: the
	 * first letter and the "HTTP_" prefix rule them out cheaply.
	 */
	for (e = rq->envp; *e != NULL; e++) {
		switch ((*e)[0]) {
		case 'C': case 'D': case 'Q': case 'R':
			k = 0;
			break;
		case 'H':
			if (strncmp(*e, "HTTP_", 5) != 0)
				continue;
			k = K_REQID;
			break;
		default:
			continue;
		}
		for (; k < K_NKNOWN; k++) {
			n = known[k].len;
			if (v[k] == NULL && (*e)[0] == known[k].name[0] &&
			    strncmp(*e, known[k].name, n) == 0 &&
			    (*e)[n] == '=') {
				v[k] = *e + n + 1;
				break;
			}
		}
	}
	rq->method = v[K_METHOD] ? v[K_METHOD] : "GET";
	rq->query = v[K_QUERY] ? v[K_QUERY] : "";
	/* nginx's DOCUMENT_URI is the decoded, normalized path. */
	if (v[K_DOC_URI] != NULL && *v[K_DOC_URI] != '\0')
		rq->path = v[K_DOC_URI];
	else if (v[K_REQ_URI] != NULL && *v[K_REQ_URI] != '\0') {
		q = strchr(v[K_REQ_URI], '?');
		rq->path = q ? arena_strndup(a, v[K_REQ_URI],
		    (size_t)(q - v[K_REQ_URI])) : v[K_REQ_URI];
	} else
		rq->path = "/";
	rq->content_type = v[K_CTYPE];
	rq->remote_addr = v[K_ADDR] ? v[K_ADDR] : "";
	rq->if_none_match = v[K_INM];
	rq->if_modified_since = v[K_IMS];
	rq->authorization = v[K_AUTH];
	rq->accept = v[K_ACCEPT];
	if (v[K_REQID] != NULL && req_id_valid(v[K_REQID]))
		memcpy(rq->id, v[K_REQID], strlen(v[K_REQID]) + 1);
	else {
		hex32(rq->id, (uint32_t)(reqid.prefix >> 32));
		hex32(rq->id + 8, (uint32_t)reqid.prefix);
		hex32(rq->id + 16, ++reqid.counter);
		rq->id[24] = '\0';
	}
	(void)trace_start(&rq->trace, v[K_TRACE]);
	/* Only with the traceparent it came with; dropped when invalid. */
	trace_set_state(&rq->trace, v[K_TRACESTATE]);
	rq->body = "";
}

void
req_finish(struct req *rq)
{
	if (rq->json != NULL)
		json_object_put(rq->json);
	rq->json = NULL;
}

int
req_read_body(struct req *rq, struct resp *rs, long long limit,
    req_read_fn fn, void *ctx)
{
	const char	*cl, *errstr;
	long long	 len;
	size_t		 got = 0;
	char		*p;
	int		 n;

	/*
	 * No Content-Length is no body: nginx reads chunked bodies whole and
	 * passes their length, so only a request without one gets here (curl
	 * without -d, wx.request without data).  What needs a body says so.
	 */
	cl = req_param(rq, "CONTENT_LENGTH");
	if (cl == NULL || *cl == '\0')
		return 0;
	if (util_strtonum(cl, 0, INT64_MAX, &len, &errstr) == -1) {
		resp_error(rs, API_BAD_REQUEST, "Content-Length %s", errstr);
		return -1;
	}
	/* Unread input is drained by libfcgi's lingering close. */
	if (len > limit) {
		resp_error(rs, API_TOO_LARGE,
		    "request body is larger than %lld bytes", limit);
		return -1;
	}
	p = arena_alloc(rq->a, (size_t)len + 1);
	while (got < (size_t)len) {
		n = fn(ctx, p + got, (int)((size_t)len - got));
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != (size_t)len) {
		resp_error(rs, API_BAD_REQUEST,
		    "request body ended after %zu of %lld bytes", got, len);
		return -1;
	}
	p[len] = '\0';
	rq->body = p;
	rq->body_len = (size_t)len;
	return 0;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long
req_pct_decode(char *dst, const char *src, size_t n, int plus, int strict)
{
	size_t	i, o = 0;
	int	hi, lo;

	for (i = 0; i < n; i++) {
		if (src[i] == '+' && plus) {
			dst[o++] = ' ';
			continue;
		}
		if (src[i] != '%') {
			dst[o++] = src[i];
			continue;
		}
		hi = i + 1 < n ? hexval((unsigned char)src[i + 1]) : -1;
		lo = i + 2 < n ? hexval((unsigned char)src[i + 2]) : -1;
		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			if (strict)
				return -1;
			dst[o++] = src[i];
			continue;
		}
		dst[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	dst[o] = '\0';
	return (long)o;
}

/*
 * Split s at sep into name=value pairs, decoding both sides; empty pieces
 * are skipped.  Returns the count, or -1 on a bad escape when strict.
 */
static int
req_split_kv(struct arena *a, const char *s, char sep, int plus, int strict,
    struct req_kv **out)
{
	const char	*p, *end, *eq;
	struct req_kv	*v;
	char		*name, *value;
	int		 n = 1, i = 0;

	for (p = s; *p != '\0'; p++)
		if (*p == sep)
			n++;
	v = arena_calloc(a, (size_t)n, sizeof(*v));
	for (p = s; *p != '\0'; p = *end ? end + 1 : end) {
		if ((end = strchr(p, sep)) == NULL)
			end = p + strlen(p);
		while (sep == ';' && p < end && *p == ' ')
			p++;
		if (p == end)
			continue;
		if ((eq = memchr(p, '=', (size_t)(end - p))) == NULL)
			eq = end;
		name = arena_alloc(a, (size_t)(eq - p) + 1);
		value = arena_alloc(a, (size_t)(end - eq) + 1);
		if (req_pct_decode(name, p, (size_t)(eq - p), plus, strict) < 0 ||
		    req_pct_decode(value, eq < end ? eq + 1 : eq,
		    eq < end ? (size_t)(end - eq - 1) : 0, plus, strict) < 0)
			return -1;
		v[i].name = name;
		v[i].value = value;
		i++;
	}
	*out = v;
	return i;
}

int
req_parse_query(struct req *rq, struct resp *rs)
{
	int	n;

	if ((n = req_split_kv(rq->a, rq->query, '&', 1, 1, &rq->queryv)) < 0) {
		resp_error(rs, API_BAD_REQUEST,
		    "query string has a malformed percent-escape");
		return -1;
	}
	rq->nquery = n;
	return 0;
}

static const char *
kv_find(const struct req_kv *v, int n, const char *name)
{
	int	i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return v[i].value;
	return NULL;
}

const char *
req_query(const struct req *rq, const char *name)
{
	return kv_find(rq->queryv, rq->nquery, name);
}

const char *
req_cookie(struct req *rq, const char *name)
{
	const char	*h;

	if (rq->ncookie < 0) {
		h = req_param(rq, "HTTP_COOKIE");
		rq->ncookie = req_split_kv(rq->a, h ? h : "", ';', 0, 0,
		    &rq->cookiev);
	}
	return kv_find(rq->cookiev, rq->ncookie, name);
}

const char *
req_path_param(const struct req *rq, const char *name)
{
	return kv_find(rq->params, rq->nparams, name);
}

/* True when the Content-Type is application/json (parameters allowed). */
static int
is_json_type(const char *ct)
{
	size_t	n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return 0;
	return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

int
req_json_body(struct req *rq, struct resp *rs, struct json_object **out)
{
	struct json_object	*obj;
	struct jsonparse_err	 err;

	if (!is_json_type(rq->content_type)) {
		resp_error(rs, API_UNSUPPORTED_MEDIA,
		    "Content-Type must be application/json");
		return -1;
	}
	if (rq->body_len == 0) {
		resp_error(rs, API_MALFORMED_JSON,
		    "request body is empty; a JSON object is required");
		return -1;
	}
	if (jsonparse_bytes(rq->body, rq->body_len, &obj, &err) == -1) {
		if (err.field != NULL)
			resp_error(rs, API_MALFORMED_JSON, "malformed JSON at "
			    "byte %zu, field `%.*s`: %s", err.at,
			    (int)(err.fieldlen > 64 ? 64 : err.fieldlen),
			    err.field, err.why);
		else
			resp_error(rs, API_MALFORMED_JSON, "malformed JSON at "
			    "byte %zu: %s", err.at, err.why);
		return -1;
	}
	rq->json = obj;
	if (!json_object_is_type(obj, json_type_object)) {
		resp_error(rs, API_MALFORMED_JSON,
		    "request body must be a JSON object");
		return -1;
	}
	*out = obj;
	return 0;
}

int
req_json_string(struct resp *rs, struct json_object *obj, const char *field,
    const char **out)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(obj, field, &v) || v == NULL) {
		resp_error(rs, API_VALIDATION, "field `%s` is missing", field);
		return -1;
	}
	if (!json_object_is_type(v, json_type_string)) {
		resp_error(rs, API_VALIDATION, "field `%s` must be a string",
		    field);
		return -1;
	}
	*out = json_object_get_string(v);
	return 0;
}

int
req_json_opt_string(struct resp *rs, struct json_object *obj,
    const char *field, const char **out)
{
	struct json_object	*v;

	*out = NULL;
	if (!json_object_object_get_ex(obj, field, &v))
		return 0;
	return req_json_string(rs, obj, field, out);
}

int
req_json_only(struct resp *rs, struct json_object *obj,
    const char *const *allowed)
{
	size_t	i;

	json_object_object_foreach(obj, name, val) {
		(void)val;
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(name, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL) {
			resp_error(rs, API_VALIDATION, "field `%.64s` is not "
			    "allowed here", name);
			return -1;
		}
	}
	return 0;
}

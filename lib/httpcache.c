/*
 * httpcache: cached answers in Redis, and conditional GET.
 *
 * An entry is one Redis string: "<status>\n<etag>\n<last_modified>\n<body>".
 * Keys: wx:ver:<collection> holds the version; an entry lives at
 * wx:hc:<collection>:<version>:<key>; its rebuild lock at <entry>:lock.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "httpcache.h"
#include "keys.h"
#include "log.h"
#include "util.h"

#define LOCK_MS	"5000"

/* The version, the entry and the last write time in one round trip. */
static const char get_lua[] =
    "local v = redis.call('GET', KEYS[1]) or '0' "
    "return {v, redis.call('GET', ARGV[1] .. v .. ':' .. ARGV[2]), "
    "redis.call('GET', KEYS[2]) or '0'}";
/*
 * A write: a new version, and when, by Redis' clock, in seconds as HTTP
 * dates are.  Two writes within one second would share a Last-Modified
 * and a client holding the first answer would get a 304 after the
 * second, so the change time strictly increases with every write, even
 * if that runs it a little ahead of the clock under a burst of writes.
 */
static const char bump_lua[] =
    "local t = tonumber(redis.call('TIME')[1]) "
    "local prev = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "if prev >= t then t = prev + 1 end "
    "redis.call('SET', KEYS[2], t) "
    "return redis.call('INCR', KEYS[1])";

/* The per-process lock owner id, made once. */
static char	lock_owner[32];

/* Parse a stored entry; -1 when it is not in our format. */
static int
entry_parse(struct arena *a, const char *p, size_t n, struct hc_entry *e)
{
	const char	*end = p + n, *nl, *errstr;
	char		 num[24];
	long long	 v;
	int		 field;

	for (field = 0; field < 3; field++) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			return -1;
		if (field == 1) {
			if ((size_t)(nl - p) >= sizeof(e->etag))
				return -1;
			memcpy(e->etag, p, (size_t)(nl - p));
			e->etag[nl - p] = '\0';
		} else {
			if ((size_t)(nl - p) >= sizeof(num))
				return -1;
			memcpy(num, p, (size_t)(nl - p));
			num[nl - p] = '\0';
			if (util_strtonum(num, 0, LLONG_MAX, &v, &errstr) == -1)
				return -1;
			if (field == 0)
				e->status = (int)v;
			else
				e->last_modified = v;
		}
		p = nl + 1;
	}
	e->body = arena_strndup(a, p, (size_t)(end - p));
	e->body_len = (size_t)(end - p);
	e->lm_http[0] = '\0';
	e->headers = NULL;
	return 0;
}

void
httpcache_prepare(struct arena *a, const char *collection, const char *key,
    struct hc_pending *p)
{
	p->prefix = arena_printf(a, KEYS_ANSWER "%s:", collection);
	p->key = key;
	p->call.script = get_lua;
	p->call.argc = 7;
	p->call.argv[2] = "2";
	p->call.argv[3] = arena_printf(a, KEYS_VERSION "%s", collection);
	p->call.argv[4] = arena_printf(a, KEYS_MTIME "%s", collection);
	p->call.argv[5] = p->prefix;
	p->call.argv[6] = key;
	p->call.argvlen[2] = 1;
	p->call.argvlen[3] = strlen(p->call.argv[3]);
	p->call.argvlen[4] = strlen(p->call.argv[4]);
	p->call.argvlen[5] = strlen(p->prefix);
	p->call.argvlen[6] = strlen(key);
}

enum hc_result
httpcache_finish(struct hc_pending *p, struct arena *a, struct hc_entry *e,
    const char **vkey, long long *changed)
{
	redisReply		*r = p->call.reply;
	const char		*errstr;
	enum hc_result		 res = HC_MISS;

	*changed = 0;
	if (p->call.st != CACHE_OK)
		return HC_UNAVAILABLE;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[2]->type != REDIS_REPLY_STRING) {
		freeReplyObject(r);
		return HC_UNAVAILABLE;
	}
	if (util_strtonum(r->element[2]->str, 0, LLONG_MAX, changed,
	    &errstr) == -1)
		*changed = 0;
	*vkey = arena_printf(a, "%s%s:%s", p->prefix, r->element[0]->str,
	    p->key);
	if (r->element[1]->type == REDIS_REPLY_STRING) {
		if (entry_parse(a, r->element[1]->str, r->element[1]->len,
		    e) == 0)
			res = HC_HIT;
		else
			log_warn("httpcache: malformed entry at %s", *vkey);
	}
	freeReplyObject(r);
	return res;
}

enum hc_result
httpcache_get(struct cache *cc, struct arena *a, const char *collection,
    const char *key, struct hc_entry *e, const char **vkey,
    long long *changed)
{
	struct hc_pending	p;

	httpcache_prepare(a, collection, key, &p);
	cache_eval_calls(cc, &p.call, 1);
	return httpcache_finish(&p, a, e, vkey, changed);
}

enum hc_result
httpcache_get_exact(struct cache *cc, struct arena *a, const char *vkey,
    struct hc_entry *e)
{
	const char	*val;
	size_t		 len;

	if (cache_get(cc, a, vkey, &val, &len) != CACHE_OK)
		return HC_UNAVAILABLE;
	if (val == NULL || entry_parse(a, val, len, e) == -1)
		return HC_MISS;
	return HC_HIT;
}

enum cache_status
httpcache_put(struct cache *cc, struct arena *a, const char *vkey,
    const struct hc_entry *e, long long ttl)
{
	struct buf	b;

	buf_init(&b, a, e->body_len + 64);
	buf_printf(&b, "%d\n%s\n%lld\n", e->status, e->etag, e->last_modified);
	buf_add(&b, e->body, e->body_len);
	return cache_setex(cc, vkey, b.p, b.len, ttl);
}

int
httpcache_lock(struct cache *cc, struct arena *a, const char *vkey)
{
	if (lock_owner[0] == '\0' && crypto_random_b64url(16, lock_owner) == -1)
		return -1;
	return cache_lock(cc, arena_printf(a, "%s:lock", vkey), lock_owner,
	    LOCK_MS);
}

void
httpcache_unlock(struct cache *cc, struct arena *a, const char *vkey)
{
	cache_del_if(cc, arena_printf(a, "%s:lock", vkey), lock_owner);
}

enum cache_status
httpcache_bump(struct cache *cc, const char *collection)
{
	char			 ver[64], mtime[64];
	const char		*argv[5];
	size_t			 argvlen[5];
	redisReply		*r;
	enum cache_status	 st;
	int			 n1, n2;

	n1 = snprintf(ver, sizeof(ver), KEYS_VERSION "%s", collection);
	n2 = snprintf(mtime, sizeof(mtime), KEYS_MTIME "%s", collection);
	if (n1 < 0 || (size_t)n1 >= sizeof(ver) || n2 < 0 ||
	    (size_t)n2 >= sizeof(mtime))
		return CACHE_ERROR;
	argv[2] = "2", argvlen[2] = 1;
	argv[3] = ver, argvlen[3] = (size_t)n1;
	argv[4] = mtime, argvlen[4] = (size_t)n2;
	if ((st = cache_eval(cc, &r, bump_lua, 5, argv, argvlen)) == CACHE_OK)
		freeReplyObject(r);
	return st;
}

void
httpcache_recover(struct cache *cc, const void *arg)
{
	const char *const	*names = arg;
	size_t			 i;

	for (i = 0; names[i] != NULL; i++)
		if (httpcache_bump(cc, names[i]) != CACHE_OK)
			return;
	log_info("httpcache: every collection invalidated after a redis outage");
}

void
httpcache_set_etag(struct hc_entry *e)
{
	unsigned char	h[32];
	char		hex[33];

	crypto_sha256(e->body, e->body_len, h);
	crypto_hex(h, 16, hex);
	snprintf(e->etag, sizeof(e->etag), "\"%s\"", hex);
}

/* The opaque part of an entity-tag: W/"x" and "x" both give "x" (weak). */
static int
etag_match(const char *list, const char *etag)
{
	const char	*p = list, *start;
	size_t		 n, elen = strlen(etag);

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		if (*p == '*')
			return 1;
		start = p;
		if (p[0] == 'W' && p[1] == '/')
			start = p += 2;
		while (*p != '\0' && *p != ',')
			p++;
		n = (size_t)(p - start);
		while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
			n--;
		if (n == elen && memcmp(start, etag, n) == 0)
			return 1;
	}
	return 0;
}

/*
 * RFC 9110 13.2.2: If-None-Match decides when present; If-Modified-Since
 * only without it.
 */
static int
not_modified(struct req *rq, const struct hc_entry *e)
{
	const char	*inm, *ims;
	long long	 since;

	if ((inm = rq->if_none_match) != NULL)
		return etag_match(inm, e->etag);
	if ((ims = rq->if_modified_since) != NULL &&
	    e->last_modified > 0 && (since = util_parse_http_date(ims)) >= 0)
		return e->last_modified <= since;
	return 0;
}

size_t
httpcache_headers_max(const char *cache_control)
{
	return sizeof("ETag: \r\nLast-Modified: \r\nCache-Control: \r\n") +
	    sizeof(((struct hc_entry *)NULL)->etag) +
	    sizeof(((struct hc_entry *)NULL)->lm_http) + strlen(cache_control);
}

/* Append "name: value\r\n" at p, the value on one line; the new end. */
static char *
header_line(char *p, const char *name, const char *value)
{
	size_t	n = strlen(name);

	memcpy(p, name, n);
	p += n;
	*p++ = ':';
	*p++ = ' ';
	for (; *value != '\0'; value++)
		*p++ = *value == '\r' || *value == '\n' ? ' ' : *value;
	*p++ = '\r';
	*p++ = '\n';
	return p;
}

void
httpcache_prepare_answer(struct hc_entry *e, const char *cache_control,
    char *dst)
{
	char	*p = dst;

	if (e->last_modified <= 0 || util_http_date(e->last_modified,
	    e->lm_http, sizeof(e->lm_http)) == -1)
		e->lm_http[0] = '\0';
	e->headers = NULL;
	e->headers_len = 0;
	if (e->status != 200)
		return;
	p = header_line(p, "ETag", e->etag);
	if (e->lm_http[0] != '\0')
		p = header_line(p, "Last-Modified", e->lm_http);
	p = header_line(p, "Cache-Control", cache_control);
	e->headers = dst;
	e->headers_len = (size_t)(p - dst);
}

void
httpcache_answer(struct req *rq, struct resp *rs, const struct hc_entry *e,
    const char *cache_control)
{
	char	date[40];

	if (e->status != 200) {
		resp_raw(rs, e->status, e->body, e->body_len);
		return;
	}
	if (not_modified(rq, e))
		resp_raw(rs, 304, "", 0);
	else
		resp_raw(rs, 200, e->body, e->body_len);
	if (e->headers != NULL) {
		buf_add(&rs->headers, e->headers, e->headers_len);
		return;
	}
	resp_header_str(rs, "ETag", e->etag);
	if (e->lm_http[0] != '\0')
		resp_header_str(rs, "Last-Modified", e->lm_http);
	else if (e->last_modified > 0 &&
	    util_http_date(e->last_modified, date, sizeof(date)) == 0)
		resp_header_str(rs, "Last-Modified", date);
	resp_header_str(rs, "Cache-Control", cache_control);
}

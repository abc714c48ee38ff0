/*
 * cache: hiredis, synchronous, with timeouts.
 *
 * hiredis marks a context dead for good once c->err is set (a timeout
 * included: the reply may still arrive and would answer the next command).
 * So every error drops the context, and the next command connects again
 * -- if the guard lets it: a Redis that is down makes its breaker open
 * after a few failures, one that hangs after a run of timeouts, and then
 * nothing is tried until a trial call after breaker_store_open_ms.
 */
#include <sys/time.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "crypto.h"
#include "log.h"
#include "util.h"

void
cache_init(struct cache *cc, const struct cache_opts *o)
{
	memset(cc, 0, sizeof(*cc));
	cc->o = *o;
}

/*
 * Whether the context failed by timing out (Redis hangs), by what errno
 * said just after: a read timeout is EAGAIN, a connect timeout ETIMEDOUT.
 */
static int
cache_timed_out(const redisContext *c, int err)
{
	/* (EWOULDBLOCK is EAGAIN on Linux.) */
	return c != NULL && c->err == REDIS_ERR_IO && (err == EAGAIN ||
	    err == ETIMEDOUT);
}

static struct timeval
ms_tv(long long ms)
{
	struct timeval	tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/* Open the context for redis_addr: "/path" or "host:port". */
static redisContext *
cache_open(struct cache *cc)
{
	const char	*addr = cc->o.addr, *colon, *errstr;
	struct timeval	 tv = ms_tv(cc->o.connect_timeout_ms);
	char		 host[256];
	long long	 port;

	if (addr[0] == '/')
		return redisConnectUnixWithTimeout(addr, tv);
	if ((colon = strrchr(addr, ':')) == NULL ||
	    (size_t)(colon - addr) >= sizeof(host) ||
	    util_strtonum(colon + 1, 1, 65535, &port, &errstr) == -1) {
		snprintf(cc->errmsg, sizeof(cc->errmsg),
		    "redis_addr must be /path or host:port");
		return NULL;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	return redisConnectWithTimeout(host, (int)port, tv);
}

int
cache_connect(struct cache *cc)
{
	redisReply	*r = NULL;
	const char	*argv[2] = { "AUTH", cc->o.password };
	size_t		 argvlen[2] = { 4, strlen(cc->o.password) };

	cache_close(cc);
	cc->errmsg[0] = '\0';
	cc->timed_out = 0;
	errno = 0;
	if ((cc->c = cache_open(cc)) == NULL || cc->c->err) {
		cc->timed_out = cache_timed_out(cc->c, errno);
		if (cc->c != NULL)
			snprintf(cc->errmsg, sizeof(cc->errmsg), "%s",
			    cc->c->errstr);
		log_error("redis: cannot connect to %s: %s", cc->o.addr,
		    cc->errmsg);
		goto fail;
	}
	if (redisSetTimeout(cc->c, ms_tv(cc->o.command_timeout_ms)) !=
	    REDIS_OK) {
		log_error("redis: cannot set the command timeout");
		goto fail;
	}
	if (argvlen[1] > 0) {
		errno = 0;
		r = redisCommandArgv(cc->c, 2, argv, argvlen);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			cc->timed_out = r == NULL &&
			    cache_timed_out(cc->c, errno);
			log_error("redis: AUTH failed: %s",
			    r ? r->str : cc->c->errstr);
			goto fail;
		}
		freeReplyObject(r);
	}
	cc->c_born_us = util_mono_us();
	if (cc->lost) {
		cc->lost = 0;
		log_info("redis: connected again to %s", cc->o.addr);
		if (cc->on_recover != NULL)
			cc->on_recover(cc, cc->recover_arg);
		/* The hook's own commands may have lost the connection again. */
		if (cc->c == NULL)
			return -1;
	}
	return 0;
fail:
	cc->lost = 1;
	if (r != NULL)
		freeReplyObject(r);
	cache_close(cc);
	return -1;
}

void
cache_close(struct cache *cc)
{
	if (cc->c != NULL)
		redisFree(cc->c);
	cc->c = NULL;
}

int
cache_ready(struct cache *cc)
{
	if (cc->c != NULL && cc->c->err == 0)
		return 0;
	cache_close(cc);
	return cache_connect(cc);
}

/* Send every command of calls, then read every reply: one round trip. */
static int
cache_roundtrip(struct cache *cc, struct cache_call *calls, int n)
{
	int	i, j;

	cc->timed_out = 0;
	for (i = 0; i < n; i++)
		if (redisAppendCommandArgv(cc->c, calls[i].argc, calls[i].argv,
		    calls[i].argvlen) != REDIS_OK)
			return -1;
	for (i = 0; i < n; i++) {
		errno = 0;
		if (redisGetReply(cc->c, (void **)&calls[i].reply) != REDIS_OK ||
		    calls[i].reply == NULL) {
			cc->timed_out = cache_timed_out(cc->c, errno);
			for (j = 0; j < i; j++) {
				freeReplyObject(calls[j].reply);
				calls[j].reply = NULL;
			}
			calls[i].reply = NULL;
			return -1;
		}
	}
	return 0;
}

/*
 * Run n commands pipelined.  Each call ends CACHE_OK with its reply (the
 * caller frees it), CACHE_ERROR (an error reply, in errmsg), or
 * CACHE_UNAVAILABLE for all when the connection failed.
 */
static void
cache_pipeline(struct cache *cc, struct cache_call *calls, int n)
{
	struct span	*sp;
	const char	*name;
	int64_t		 t0, retry, since;
	int		 i, fresh, rc;

	for (i = 0; i < n; i++) {
		calls[i].reply = NULL;
		calls[i].st = CACHE_UNAVAILABLE;
	}
	if (!guard_allow(cc->o.guard, &retry)) {
		cc->failures++;
		return;
	}
	since = util_mono_us();
	/* Named by the command, or "pipeline": never the keys. */
	if ((sp = span_begin(cc->spans, "pipeline", SPAN_CLIENT)) != NULL &&
	    n == 1 && (name = arena_strndup(cc->spans->a, calls[0].argv[0],
	    calls[0].argvlen[0])) != NULL)
		sp->name = name;
	span_attr_str(sp, "db.system.name", "redis");
	if (n > 1)
		span_attr_int(sp, "db.operation.batch.size", n);
	if (cache_ready(cc) == -1) {
		span_end(sp, 1);
		guard_done(cc->o.guard, cc->timed_out ? BREAKER_TIMED_OUT :
		    BREAKER_FAILED, since);
		cc->failures++;
		return;
	}
	fresh = cc->c_born_us == 0 || util_mono_us() - cc->c_born_us < 1000;
	t0 = util_mono_us();
	rc = cache_roundtrip(cc, calls, n);
	cc->busy_us += util_mono_us() - t0;
	/*
	 * An old connection that fails at once (Redis restarted, an idle
	 * connection reset) never reached a live server: reconnect and try
	 * once more.  A timeout is not retried: the commands may have run.
	 */
	if (rc == -1 && !fresh && !cc->timed_out) {
		log_warn("redis: %s: stale connection (%s); reconnecting",
		    calls[0].argv[0], cc->c->errstr);
		cache_close(cc);
		cc->lost = 1;
		if (cache_connect(cc) == 0) {
			t0 = util_mono_us();
			rc = cache_roundtrip(cc, calls, n);
			cc->busy_us += util_mono_us() - t0;
		}
	}
	if (rc == -1) {
		if (cc->c != NULL)
			log_error("redis: %s: connection lost: %s",
			    calls[0].argv[0], cc->c->errstr);
		cache_close(cc);
		cc->lost = 1;
		cc->failures++;
		span_end(sp, 1);
		guard_done(cc->o.guard, cc->timed_out ? BREAKER_TIMED_OUT :
		    BREAKER_FAILED, since);
		return;
	}
	span_end(sp, 0);
	guard_done(cc->o.guard, BREAKER_SUCCEEDED, since);
	for (i = 0; i < n; i++) {
		calls[i].st = CACHE_OK;
		if (calls[i].reply->type == REDIS_REPLY_ERROR) {
			snprintf(cc->errmsg, sizeof(cc->errmsg), "%s",
			    calls[i].reply->str);
			calls[i].st = CACHE_ERROR;
		}
	}
}

enum cache_status
cache_cmd(struct cache *cc, redisReply **reply, int argc, const char **argv,
    const size_t *argvlen)
{
	struct cache_call	call;
	int			i;

	call.argc = argc;
	for (i = 0; i < argc && i < CACHE_CALL_ARGS; i++) {
		call.argv[i] = argv[i];
		call.argvlen[i] = argvlen[i];
	}
	*reply = NULL;
	if (argc > CACHE_CALL_ARGS)
		return CACHE_ERROR;
	cache_pipeline(cc, &call, 1);
	if (call.st == CACHE_ERROR) {
		freeReplyObject(call.reply);
		return CACHE_ERROR;
	}
	*reply = call.reply;
	return call.st;
}

enum cache_status
cache_ping(struct cache *cc)
{
	const char		*argv[1] = { "PING" };
	size_t			 argvlen[1] = { 4 };
	redisReply		*r;
	enum cache_status	 st;

	if ((st = cache_cmd(cc, &r, 1, argv, argvlen)) != CACHE_OK)
		return st;
	st = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0 ?
	    CACHE_OK : CACHE_ERROR;
	freeReplyObject(r);
	return st;
}

#define SCRIPT_MEMO	16

/*
 * The SHA-1 of a script into sha, computed once for each of the first
 * SCRIPT_MEMO scripts (scripts are constants), every time for others.
 */
static void
script_sha(const char *script, char sha[41])
{
	static struct {
		const char	*script;
		char		 sha[41];
	}			memo[SCRIPT_MEMO];
	unsigned char		h[20];
	size_t			i;

	for (i = 0; i < SCRIPT_MEMO && memo[i].script != NULL; i++)
		if (memo[i].script == script) {
			memcpy(sha, memo[i].sha, 41);
			return;
		}
	crypto_sha1(script, strlen(script), h);
	crypto_hex(h, sizeof(h), sha);
	if (i < SCRIPT_MEMO) {
		memcpy(memo[i].sha, sha, 41);
		memo[i].script = script;
	}
}

void
cache_eval_calls(struct cache *cc, struct cache_call *calls, int n)
{
	int	i;

	for (i = 0; i < n; i++) {
		calls[i].argv[0] = "EVALSHA", calls[i].argvlen[0] = 7;
		script_sha(calls[i].script, calls[i].sha);
		calls[i].argv[1] = calls[i].sha;
		calls[i].argvlen[1] = 40;
	}
	cache_pipeline(cc, calls, n);
	for (i = 0; i < n; i++) {
		if (calls[i].st != CACHE_ERROR)
			continue;
		if (strncmp(calls[i].reply->str, "NOSCRIPT", 8) == 0) {
			/* Not loaded yet (or Redis restarted): EVAL loads it. */
			freeReplyObject(calls[i].reply);
			calls[i].argv[0] = "EVAL", calls[i].argvlen[0] = 4;
			calls[i].argv[1] = calls[i].script;
			calls[i].argvlen[1] = strlen(calls[i].script);
			cache_pipeline(cc, &calls[i], 1);
			if (calls[i].st != CACHE_ERROR)
				continue;
		}
		freeReplyObject(calls[i].reply);
		calls[i].reply = NULL;
	}
}

enum cache_status
cache_eval(struct cache *cc, redisReply **r, const char *script, int argc,
    const char **argv, size_t *argvlen)
{
	struct cache_call	call;
	int			i;

	*r = NULL;
	if (argc > CACHE_CALL_ARGS)
		return CACHE_ERROR;
	call.script = script;
	call.argc = argc;
	for (i = 2; i < argc; i++) {
		call.argv[i] = argv[i];
		call.argvlen[i] = argvlen[i];
	}
	cache_eval_calls(cc, &call, 1);
	*r = call.reply;
	return call.st;
}

int
cache_lock(struct cache *cc, const char *key, const char *owner,
    const char *ms)
{
	const char	*argv[6] = { "SET", key, owner, "NX", "PX", ms };
	size_t		 argvlen[6];
	redisReply	*r;
	int		 i, got;

	for (i = 0; i < 6; i++)
		argvlen[i] = strlen(argv[i]);
	if (cache_cmd(cc, &r, 6, argv, argvlen) != CACHE_OK)
		return -1;
	got = r->type == REDIS_REPLY_STATUS;
	freeReplyObject(r);
	return got;
}

void
cache_del_if(struct cache *cc, const char *key, const char *value)
{
	static const char	 lua[] =
	    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
	    "return redis.call('DEL', KEYS[1]) else return 0 end";
	const char		*argv[5];
	size_t			 argvlen[5];
	redisReply		*r;

	argv[2] = "1", argvlen[2] = 1;
	argv[3] = key, argvlen[3] = strlen(key);
	argv[4] = value, argvlen[4] = strlen(value);
	if (cache_eval(cc, &r, lua, 5, argv, argvlen) == CACHE_OK)
		freeReplyObject(r);
}

enum cache_status
cache_get(struct cache *cc, struct arena *a, const char *key,
    const char **val, size_t *len)
{
	const char		*argv[2] = { "GET", key };
	size_t			 argvlen[2] = { 3, strlen(key) };
	redisReply		*r;
	enum cache_status	 st;

	*val = NULL;
	*len = 0;
	if ((st = cache_cmd(cc, &r, 2, argv, argvlen)) != CACHE_OK)
		return st;
	if (r->type == REDIS_REPLY_STRING) {
		*val = arena_strndup(a, r->str, r->len);
		*len = r->len;
	}
	freeReplyObject(r);
	return CACHE_OK;
}

enum cache_status
cache_setex(struct cache *cc, const char *key, const char *val, size_t len,
    long long ttl_s)
{
	char			 ttl[24];
	const char		*argv[5] = { "SET", key, val, "EX", ttl };
	size_t			 argvlen[5];
	redisReply		*r;
	enum cache_status	 st;
	int			 n;

	n = snprintf(ttl, sizeof(ttl), "%lld", ttl_s > 0 ? ttl_s : 1);
	if (n < 0 || (size_t)n >= sizeof(ttl))
		return CACHE_ERROR;
	argvlen[0] = 3, argvlen[1] = strlen(key), argvlen[2] = len;
	argvlen[3] = 2, argvlen[4] = (size_t)n;
	if ((st = cache_cmd(cc, &r, 5, argv, argvlen)) == CACHE_OK)
		freeReplyObject(r);
	return st;
}

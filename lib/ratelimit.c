/*
 * ratelimit: GCRA in Redis, with a local fallback.
 */
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "log.h"
#include "ratelimit.h"
#include "util.h"

/*
 * KEYS[1] bucket; ARGV[1] T (us); ARGV[2] tolerance (us).  Returns
 * {allowed, remaining, retry_after_us, reset_us}.  TIME is read before
 * the write, which Redis allows since scripts replicate their effects.
 */
static const char gcra_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "
    "local T = tonumber(ARGV[1]) "
    "local tau = tonumber(ARGV[2]) "
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if tat < now then tat = now end "
    "local diff = tat + T - now "
    "if diff > tau then return {0, 0, diff - tau, tat - now} end "
    "redis.call('SET', KEYS[1], string.format('%d', tat + T), 'PX', "
    "math.ceil(diff / 1000) + 1) "
    "return {1, math.floor((tau - diff) / T), 0, diff}";

void
ratelimit_init(struct ratelimit *rl, struct cache *cc)
{
	memset(rl, 0, sizeof(*rl));
	rl->cache = cc;
}

/* Seconds, rounded up, of a duration in microseconds. */
static long long
ceil_s(long long us)
{
	return us <= 0 ? 0 : (us + 999999) / 1000000;
}

/* The same GCRA step against a bucket in this process. */
static void
local_check(struct ratelimit *rl, const char *key, long long T,
    long long tau, struct rl_result *r)
{
	unsigned char	 h[32];
	uint64_t	 hash;
	struct rl_slot	*s;
	int64_t		 now = util_mono_us(), tat, diff;

	crypto_sha256(key, strlen(key), h);
	memcpy(&hash, h, sizeof(hash));
	s = &rl->local[hash % RATELIMIT_LOCAL_SLOTS];
	/* A slot taken by another key starts afresh: lenient, never open. */
	if (s->hash != hash) {
		s->hash = hash;
		s->tat_us = 0;
	}
	tat = s->tat_us > now ? s->tat_us : now;
	diff = tat + T - now;
	r->local = 1;
	if (diff > tau) {
		r->allowed = 0;
		r->remaining = 0;
		r->retry_after_s = ceil_s(diff - tau);
		r->reset_s = ceil_s(tat - now);
		return;
	}
	s->tat_us = tat + T;
	r->allowed = 1;
	r->remaining = (tau - diff) / T;
	r->retry_after_s = 0;
	r->reset_s = ceil_s(diff);
}

void
ratelimit_prepare(struct arena *a, const struct rl_class *c,
    const char *identity, struct rl_pending *p)
{
	p->T = c->period_s * 1000000 / c->rate;
	p->tau = p->T * c->burst;
	p->limit = c->burst;
	p->key = arena_printf(a, "wx:rl:%s:%s", c->name, identity);
	p->call.script = gcra_lua;
	p->call.argc = 6;
	p->call.argv[2] = "1";
	p->call.argv[3] = p->key;
	p->call.argv[4] = arena_printf(a, "%lld", p->T);
	p->call.argv[5] = arena_printf(a, "%lld", p->tau);
	p->call.argvlen[2] = 1;
	p->call.argvlen[3] = strlen(p->call.argv[3]);
	p->call.argvlen[4] = strlen(p->call.argv[4]);
	p->call.argvlen[5] = strlen(p->call.argv[5]);
}

void
ratelimit_finish(struct ratelimit *rl, struct rl_pending *p,
    struct rl_result *r)
{
	redisReply	*rep = p->call.reply;
	long long	 v[4];
	size_t		 i;

	memset(r, 0, sizeof(*r));
	r->limit = p->limit;
	if (p->call.st != CACHE_OK || rep->type != REDIS_REPLY_ARRAY ||
	    rep->elements != 4) {
		if (p->call.st == CACHE_OK)
			freeReplyObject(rep);
		else if (p->call.st == CACHE_ERROR)
			log_error("ratelimit: redis: %s", rl->cache->errmsg);
		rl->fallbacks++;
		local_check(rl, p->key, p->T, p->tau, r);
		return;
	}
	for (i = 0; i < 4; i++)
		v[i] = rep->element[i]->type == REDIS_REPLY_INTEGER ?
		    rep->element[i]->integer : 0;
	freeReplyObject(rep);
	r->allowed = v[0] == 1;
	r->remaining = v[1];
	r->retry_after_s = ceil_s(v[2]);
	r->reset_s = ceil_s(v[3]);
}

void
ratelimit_check(struct ratelimit *rl, struct arena *a, const struct rl_class *c,
    const char *identity, struct rl_result *r)
{
	struct rl_pending	p;

	ratelimit_prepare(a, c, identity, &p);
	cache_eval_calls(rl->cache, &p.call, 1);
	ratelimit_finish(rl, &p, r);
}

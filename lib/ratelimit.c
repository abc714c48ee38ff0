/*
 * ratelimit: GCRA in Redis, with a local fallback.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "keys.h"
#include "ratelimit.h"
#include "util.h"

/*
 * KEYS[1] bucket; ARGV[1] T (us); ARGV[2] tolerance (us); ARGV[3] the most
 * requests to take (a lease).  Takes half of what the bucket holds, at
 * least one, at most ARGV[3].  Returns {taken (0: limited), remaining,
 * retry_after_us, reset_us}.  TIME is read before the write, which Redis
 * allows since scripts replicate their effects.
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
    "local avail = math.floor((tau - diff) / T) + 1 "
    "local n = math.min(math.max(math.floor(avail / 2), 1), "
    "tonumber(ARGV[3])) "
    "tat = tat + n * T "
    "redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', "
    "math.ceil((tat - now) / 1000) + 1) "
    "return {n, avail - n, 0, tat - now}";

void
ratelimit_init(struct ratelimit *rl, struct cache *cc, struct shm *shm,
    struct rl_lease *leases, long long lease)
{
	memset(rl, 0, sizeof(*rl));
	rl->cache = cc;
	if (lease > 1 && shm != NULL && leases != NULL) {
		rl->shm = shm;
		rl->leases = leases;
	}
	(void)snprintf(rl->lease, sizeof(rl->lease), "%lld",
	    rl->leases != NULL ? lease : 1);
}

/* Seconds, rounded up, of a duration in microseconds. */
static long long
ceil_s(long long us)
{
	return us <= 0 ? 0 : (us + 999999) / 1000000;
}

/* The same GCRA step against a bucket in this process. */
static void
local_check(struct ratelimit *rl, uint64_t hash, long long T, long long tau,
    struct rl_result *r)
{
	struct rl_slot	*s = &rl->local[hash % RATELIMIT_LOCAL_SLOTS];
	int64_t		 now = util_mono_us(), tat, diff;

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

/*
 * What RateLimit-Remaining says after an allowed request: the bucket's and
 * the lease's, at most limit - 1 (a lease outliving the refill of what it
 * took would count twice).
 */
static long long
remaining_of(long long n, long long limit)
{
	return n < limit ? n : limit - 1;
}

/* Spend a request of this host's lease of hash; 0 when there is none. */
static int
lease_take(struct ratelimit *rl, uint64_t hash, struct rl_result *r)
{
	struct rl_lease	*l;
	int		 ok;

	if (rl->leases == NULL)
		return 0;
	l = &rl->leases[hash % RATELIMIT_LEASE_SLOTS];
	shm_lock(rl->shm);
	ok = l->hash == hash && l->tokens > 0 &&
	    l->expires_us > util_mono_us();
	if (ok) {
		l->tokens--;
		r->remaining = remaining_of(l->remaining + l->tokens, r->limit);
	}
	shm_unlock(rl->shm);
	if (ok) {
		r->allowed = 1;
		rl->leased++;
	}
	return ok;
}

/* Keep n requests paid for in Redis for this host's next ones. */
static void
lease_keep(struct ratelimit *rl, uint64_t hash, long long n,
    long long remaining)
{
	struct rl_lease	*l;
	int64_t		 now = util_mono_us();

	if (rl->leases == NULL || n <= 0)
		return;
	l = &rl->leases[hash % RATELIMIT_LEASE_SLOTS];
	shm_lock(rl->shm);
	/* Another bucket's live lease keeps its slot: ours is forgone. */
	if (l->hash == hash || l->expires_us <= now || l->tokens <= 0) {
		if (l->hash != hash || l->expires_us <= now)
			l->tokens = 0;
		l->hash = hash;
		l->tokens += n;
		l->remaining = remaining;
		l->expires_us = now + RATELIMIT_LEASE_US;
	}
	shm_unlock(rl->shm);
}

int
ratelimit_prepare(struct ratelimit *rl, struct arena *a,
    const struct rl_class *c, const char *identity, struct rl_pending *p)
{
	struct buf	key;

	p->T = c->period_s * 1000000 / c->rate;
	p->tau = p->T * c->burst;
	p->limit = c->burst;
	buf_init(&key, a, 64);
	buf_adds(&key, KEYS_BUCKET);
	buf_adds(&key, c->name);
	buf_addc(&key, ':');
	buf_adds(&key, identity);
	p->key = buf_cstr(&key);
	p->hash = util_fnv1a(UTIL_FNV_INIT, p->key, strlen(p->key));
	memset(&p->r, 0, sizeof(p->r));
	p->r.limit = p->limit;
	if ((p->leased = lease_take(rl, p->hash, &p->r)))
		return 0;
	p->call.script = gcra_lua;
	p->call.argc = 7;
	p->call.argv[2] = "1";
	p->call.argv[3] = p->key;
	p->call.argv[4] = arena_printf(a, "%lld", p->T);
	p->call.argv[5] = arena_printf(a, "%lld", p->tau);
	p->call.argv[6] = rl->lease;
	p->call.argvlen[2] = 1;
	p->call.argvlen[3] = strlen(p->call.argv[3]);
	p->call.argvlen[4] = strlen(p->call.argv[4]);
	p->call.argvlen[5] = strlen(p->call.argv[5]);
	p->call.argvlen[6] = strlen(rl->lease);
	return 1;
}

void
ratelimit_finish(struct ratelimit *rl, struct rl_pending *p,
    struct rl_result *r)
{
	redisReply	*rep = p->call.reply;
	long long	 v[4];
	size_t		 i;

	*r = p->r;
	if (p->leased)
		return;
	if (p->call.st != CACHE_OK || rep->type != REDIS_REPLY_ARRAY ||
	    rep->elements != 4) {
		if (p->call.st == CACHE_OK)
			freeReplyObject(rep);
		else if (p->call.st == CACHE_ERROR)
			log_error("ratelimit: redis: %s", rl->cache->errmsg);
		rl->fallbacks++;
		local_check(rl, p->hash, p->T, p->tau, r);
		return;
	}
	for (i = 0; i < 4; i++)
		v[i] = rep->element[i]->type == REDIS_REPLY_INTEGER ?
		    rep->element[i]->integer : 0;
	freeReplyObject(rep);
	r->allowed = v[0] >= 1;
	r->remaining = remaining_of(v[1] + (v[0] > 1 ? v[0] - 1 : 0),
	    r->limit);
	r->retry_after_s = ceil_s(v[2]);
	r->reset_s = ceil_s(v[3]);
	lease_keep(rl, p->hash, v[0] - 1, v[1]);
}

void
ratelimit_check(struct ratelimit *rl, struct arena *a, const struct rl_class *c,
    const char *identity, struct rl_result *r)
{
	struct rl_pending	p;

	if (ratelimit_prepare(rl, a, c, identity, &p))
		cache_eval_calls(rl->cache, &p.call, 1);
	ratelimit_finish(rl, &p, r);
}

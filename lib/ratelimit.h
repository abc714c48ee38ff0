/*
 * ratelimit: GCRA token buckets.  Owns the shared bucket (one Lua script
 * in Redis, atomic, timed by Redis' own clock, so every responder on every
 * host spends one budget), and the in-process fallback bucket used while
 * Redis is unreachable (same parameters, per responder: never unlimited).
 *
 * A class allows `rate` requests per `period` seconds with bursts of up
 * to `burst`: GCRA with emission interval T = period / rate and tolerance
 * burst * T.
 */
#ifndef WX_RATELIMIT_H
#define WX_RATELIMIT_H

#include <stdint.h>

#include "arena.h"
#include "cache.h"

#define RATELIMIT_LOCAL_SLOTS	1024

struct rl_class {
	const char	*name;
	long long	 rate;
	long long	 period_s;
	long long	 burst;
};

struct rl_result {
	int		 allowed;
	long long	 limit;		/* the burst: requests available at once */
	long long	 remaining;
	long long	 reset_s;	/* until the bucket is full again */
	long long	 retry_after_s;	/* when limited */
	int		 local;		/* decided by the fallback bucket */
};

/* A check split in two, to share a round trip with other commands. */
struct rl_pending {
	struct cache_call	 call;
	const char		*key;
	long long		 T, tau, limit;
};

struct rl_slot {
	uint64_t	hash;
	int64_t		tat_us;
};

struct ratelimit {
	struct cache	*cache;
	unsigned long	 fallbacks;	/* decisions made without Redis */
	struct rl_slot	 local[RATELIMIT_LOCAL_SLOTS];
};

void	ratelimit_init(struct ratelimit *, struct cache *);
/* Build the check of identity in class c (for cache_eval_calls). */
void	ratelimit_prepare(struct arena *, const struct rl_class *c,
	    const char *identity, struct rl_pending *);
/* Decide from the call's outcome (falling back to the local bucket). */
void	ratelimit_finish(struct ratelimit *, struct rl_pending *,
	    struct rl_result *);
/* Spend one request of identity in class c: prepare, one call, finish. */
void	ratelimit_check(struct ratelimit *, struct arena *,
	    const struct rl_class *c, const char *identity, struct rl_result *);

#endif

/*
 * ratelimit: GCRA token buckets.  Owns the shared bucket (one Lua script
 * in Redis, atomic, timed by Redis' own clock, so every responder on every
 * host spends one budget), and the in-process fallback bucket used while
 * Redis is unreachable (same parameters, per responder: never unlimited).
 *
 * A class allows `rate` requests per `period` seconds with bursts of up
 * to `burst`: GCRA with emission interval T = period / rate and tolerance
 * burst * T.
 *
 * Leases: one call may take up to `lease` requests at once from the shared
 * bucket, never more than half of what it holds, and the host keeps the
 * spare ones in shared memory for RATELIMIT_LEASE_US, so that a busy
 * identity costs one round trip to Redis per batch rather than per
 * request.  The budget stays one: every request is still paid for in
 * Redis, only earlier.  What a lease costs in precision: tokens leased on
 * one host cannot be spent on another (an identity spread over hosts may
 * be limited a little early), and a lease spent after a pause can add up
 * to rate * RATELIMIT_LEASE_US requests to a burst.
 */
#ifndef WX_RATELIMIT_H
#define WX_RATELIMIT_H

#include <stdint.h>

#include "arena.h"
#include "cache.h"
#include "shm.h"

#define RATELIMIT_LOCAL_SLOTS	1024
#define RATELIMIT_LEASE_SLOTS	4096
#define RATELIMIT_LEASE_US	100000

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
	uint64_t		 hash;		/* of the key */
	long long		 T, tau, limit;
	int			 leased;	/* decided by a lease: no call */
	struct rl_result	 r;		/* ... and how */
};

struct rl_slot {
	uint64_t	hash;
	int64_t		tat_us;
};

/* Requests of one bucket already paid for in Redis (shared memory). */
struct rl_lease {
	uint64_t	hash;		/* of the bucket's key */
	int64_t		expires_us;	/* monotonic */
	int64_t		tokens;		/* left to spend on this host */
	int64_t		remaining;	/* the shared bucket's, when leased */
};

struct ratelimit {
	struct cache		*cache;
	struct shm		*shm;		/* whose lock covers leases */
	struct rl_lease		*leases;	/* RATELIMIT_LEASE_SLOTS; NULL: none */
	char			 lease[24];	/* most requests per call */
	unsigned long		 fallbacks;	/* decisions made without Redis */
	unsigned long		 leased;	/* decisions made by a lease */
	struct rl_slot		 local[RATELIMIT_LOCAL_SLOTS];
};

/*
 * lease: the most requests one call takes (1: no leases); leases, an
 * array of RATELIMIT_LEASE_SLOTS in shm's data (both NULL: none).
 */
void	ratelimit_init(struct ratelimit *, struct cache *, struct shm *,
	    struct rl_lease *leases, long long lease);
/*
 * Build the check of identity in class c: 1 when p->call must run
 * (cache_eval_calls), 0 when a lease of this host decided it.
 */
int	ratelimit_prepare(struct ratelimit *, struct arena *,
	    const struct rl_class *c, const char *identity, struct rl_pending *);
/* Decide from the call's outcome (falling back to the local bucket). */
void	ratelimit_finish(struct ratelimit *, struct rl_pending *,
	    struct rl_result *);
/* Spend one request of identity in class c: prepare, one call, finish. */
void	ratelimit_check(struct ratelimit *, struct arena *,
	    const struct rl_class *c, const char *identity, struct rl_result *);

#endif

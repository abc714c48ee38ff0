/*
 * pool: what the responders of a host share, in the shared memory named
 * by shm_name (lib/shm): the circuit breakers of the dependencies, the
 * scoreboard, the write counters of the cached collections and the
 * rate-limit leases.  Read by wxappctl status too.
 */
#ifndef WX_POOL_H
#define WX_POOL_H

#include <stdint.h>

#include "arena.h"
#include "breaker.h"
#include "ratelimit.h"
#include "scoreboard.h"
#include "shm.h"

/* The dependencies, each behind a breaker of the pool. */
enum pool_dep {
	DEP_POSTGRES,
	DEP_REDIS,
	DEP_WECHAT,
	DEP_COUNT
};

#define POOL_COLLECTIONS	4	/* >= the collections app caches */

struct pool {
	struct breaker		breakers[DEP_COUNT];
	struct scoreboard	sb;
	/*
	 * Writes per cached collection on this host, bumped without the lock
	 * (atomics) after a write has invalidated Redis: see nearcache.
	 */
	uint64_t		changes[POOL_COLLECTIONS];
	/* Rate-limit requests already paid for in Redis (under the lock). */
	struct rl_lease		leases[RATELIMIT_LEASE_SLOTS];
};

/* Its layout, for shm_attach: bump the version with every change. */
extern const struct shm_layout pool_layout;

/* "postgres", "redis", "wechat". */
const char *pool_dep_name(enum pool_dep);
/* The pool's status as JSON: the scoreboard and the breakers. */
void	pool_status_json(const struct pool *, struct buf *);

#endif

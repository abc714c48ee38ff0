/*
 * shm: the shared memory of the responders of one host (one pool
 * configuration): a named POSIX shared memory segment holding a robust
 * process-shared mutex, the circuit breakers of the dependencies, the
 * scoreboard, the
 * write counters of the cached collections and the rate-limit leases.
 * Owns creating it exactly once, attaching to it, and the lock (which
 * survives a holder that dies: EOWNERDEAD is repaired).
 */
#ifndef WX_SHM_H
#define WX_SHM_H

#include <pthread.h>
#include <stdint.h>

#include "breaker.h"
#include "ratelimit.h"
#include "scoreboard.h"

#define SHM_MAGIC	0x77786170u	/* "wxap" */
#define SHM_VERSION	4u
#define SHM_COLLECTIONS	4	/* >= the collections the program caches */
#define SHM_BREAKERS	4	/* >= the dependencies lib/guard knows */

struct shm_region {
	uint32_t		magic;
	uint32_t		version;
	pthread_mutex_t		lock;
	struct breaker		breakers[SHM_BREAKERS];	/* lib/guard */
	struct scoreboard	sb;
	/*
	 * Writes per cached collection on this host, bumped without the lock
	 * (atomics) after a write has invalidated Redis: see nearcache.
	 */
	uint64_t		changes[SHM_COLLECTIONS];
	/* Rate-limit requests already paid for in Redis (under the lock). */
	struct rl_lease		leases[RATELIMIT_LEASE_SLOTS];
};

/*
 * Create or attach to the segment `name` ("/wxapp"); NULL with errno.  A
 * segment of another layout (left by an older version, still used by its
 * responders during a rolling restart) is unlinked and made anew.
 */
struct shm_region *shm_attach(const char *name);
/* A region in this process only, when the shared one cannot be had. */
struct shm_region *shm_private(void);
/* Attach read-only for reporting; NULL when absent. */
const struct shm_region *shm_peek(const char *name);
/* The pool's status as JSON: the scoreboard and the breakers. */
void	shm_status_json(const struct shm_region *, struct buf *);
void	shm_lock(struct shm_region *);
void	shm_unlock(struct shm_region *);

#endif

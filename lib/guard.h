/*
 * guard: the circuit breakers of a host's dependencies -- PostgreSQL,
 * Redis, WeChat -- kept in its shared memory (lib/shm), so that every
 * responder of the host sees the same dependency and pools its evidence.
 * A call goes out only when guard_allow says so, and guard_done records
 * how it went: succeeded, failed, or timed out (a hanging dependency; a
 * run of those opens the breaker at once, see lib/breaker.h).  A change
 * of state is logged once, by the responder that made it.
 */
#ifndef WX_GUARD_H
#define WX_GUARD_H

#include <stdint.h>

#include "breaker.h"

enum guard_dep {
	GUARD_POSTGRES,
	GUARD_REDIS,
	GUARD_WECHAT,
	GUARD_NDEPS
};

struct shm_region;

struct guard {
	struct shm_region	*shm;	/* NULL: no breaker, every call goes */
	enum guard_dep		 dep;
	struct breaker_params	 p;
};

/* "postgres", "redis", "wechat". */
const char *guard_name(enum guard_dep);
/* May a call go out?  1 yes; 0 no, with *retry_us until it may. */
int	guard_allow(struct guard *, int64_t *retry_us);
/* Record how the call went. */
void	guard_done(struct guard *, enum breaker_outcome);
/*
 * Microseconds until the breaker admits a trial call (0: now), or -1 when
 * it is closed: when an idle responder should probe the dependency.
 */
int64_t	guard_trial_in(struct guard *);

#endif

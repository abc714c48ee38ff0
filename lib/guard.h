/*
 * guard: a circuit breaker around a dependency (a database, a cache, a
 * remote API), kept in memory the processes of a pool share (lib/shm),
 * so that every process of the host sees the same dependency and pools
 * its evidence.  A call goes out only when guard_allow says so, and
 * guard_done records how it went: succeeded, failed, or timed out (a
 * hanging dependency; a run of those opens the breaker at once, see
 * lib/breaker.h).  A call that succeeded but took slow_us or longer
 * counts as timed out: a dependency that answers just inside its timeout
 * holds callers as long as one that hangs, and must trip the breaker the
 * same way.  A change of state is logged and counted once, by the
 * process that made it.
 */
#ifndef WX_GUARD_H
#define WX_GUARD_H

#include <stdint.h>

#include "breaker.h"
#include "metrics.h"
#include "shm.h"

/*
 * What the calls cost and how they failed, and the breaker's changes of
 * state, counted in shared memory.
 */
struct guard_stats {
	struct metrics_hist	 latency;
	_Atomic uint64_t	 failed;
	_Atomic uint64_t	 timed_out;
	_Atomic uint64_t	 slow;		/* succeeded, after slow_us */
	_Atomic uint64_t	 rejected;	/* by the open breaker */
	_Atomic uint64_t	 entered[BREAKER_NSTATES];	/* by the
						   state changed to */
};

struct guard {
	const char		*name;	/* of the dependency, for the log */
	struct shm		*shm;	/* whose lock covers br */
	struct breaker		*br;	/* in shm's data; NULL: every call goes */
	struct breaker_params	 p;
	int64_t			 slow_us;	/* a success this slow counts
						   as timed out; 0: never */
	struct guard_stats	*stats;	/* NULL: not counted */
};

/* May a call go out?  1 yes; 0 no, with *retry_us until it may. */
int	guard_allow(struct guard *, int64_t *retry_us);
/* Record how the call that began at since_us (monotonic) went. */
void	guard_done(struct guard *, enum breaker_outcome, int64_t since_us);
/*
 * Microseconds until the breaker admits a trial call (0: now), or -1 when
 * it is closed: when an idle process should probe the dependency.
 */
int64_t	guard_trial_in(struct guard *);

#endif

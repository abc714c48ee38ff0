/*
 * breaker: a Hystrix-style circuit breaker as a pure state machine over a
 * plain struct, so it can live in shared memory (see shm) and be tested
 * without clocks.  Closed: calls pass and their outcomes fill a rolling
 * window of one-second buckets; when the window holds at least min_calls
 * and error_pct of them failed, the breaker opens.  Open: calls fail at
 * once for open_ms.  Then half-open: up to half_open_calls trial calls
 * pass; a success closes the breaker, a failure opens it again.
 *
 * A dependency that hangs makes every call time out, and few calls end
 * at all: a pool of two responders facing a 3 s timeout records four
 * outcomes in 6 s, never a rate over a minimum volume of 20.  So a run
 * of `timeouts` timed-out calls in a row opens the breaker too, whatever
 * the volume: the signal does not depend on how many calls the pool can
 * make.  One call that hung (BREAKER_HUNG) is enough.
 */
#ifndef WX_BREAKER_H
#define WX_BREAKER_H

#include <stdint.h>

#define BREAKER_MAX_WINDOW	60	/* seconds */

enum breaker_state_id {
	BREAKER_CLOSED,
	BREAKER_OPEN,
	BREAKER_HALF_OPEN,
	BREAKER_NSTATES
};

struct breaker_bucket {
	int64_t		second;
	uint32_t	ok;
	uint32_t	fail;
};

/* How a call went. */
enum breaker_outcome {
	BREAKER_FAILED,
	BREAKER_SUCCEEDED,
	BREAKER_TIMED_OUT,	/* a failure, and part of a run */
	/*
	 * No answer at all by the call's own deadline, though the
	 * dependency enforces a shorter one itself (a PostgreSQL server
	 * that did not even cancel at its statement_timeout): it hangs,
	 * and the breaker opens at once (when timeouts is not 0).
	 */
	BREAKER_HUNG
};

struct breaker {
	int			state;		/* enum breaker_state_id */
	int64_t			since_us;	/* entered the state */
	uint32_t		trials;		/* half-open calls let through */
	uint32_t		timeouts;	/* timed-out calls in a row */
	uint64_t		opened;		/* times opened, for status */
	uint64_t		rejected;	/* calls failed fast */
	struct breaker_bucket	b[BREAKER_MAX_WINDOW];
};

struct breaker_params {
	long long	window_s;
	long long	min_calls;
	long long	error_pct;
	long long	open_ms;
	long long	half_open_calls;
	long long	timeouts;	/* in a row that open it; 0: no such rule */
	/*
	 * The longest a call can take (its deadline): a trial still out is
	 * not given up on, and joined by more, before then.
	 */
	long long	trial_ms;
};

/* Initialize: closed, an empty window, counters zero. */
void	breaker_reset(struct breaker *, int64_t now_us);
/* May a call go out now?  1 yes; 0 no, with *retry_us until it may. */
int	breaker_allow(struct breaker *, const struct breaker_params *,
	    int64_t now_us, int64_t *retry_us);
/*
 * When a trial call may go out: -1 when closed (no trial needed), else
 * microseconds from now (0: now).  Changes nothing.
 */
int64_t	breaker_trial_in(const struct breaker *, const struct breaker_params *,
	    int64_t now_us);
/*
 * Record the outcome of a call that went out at started_us; returns the
 * state after it.  A failure of a call that went out before the state
 * began (before the breaker closed, or before the latest trial) is
 * counted by no rule: it tells of the dependency as it was then.
 */
int	breaker_record(struct breaker *, const struct breaker_params *,
	    int64_t now_us, int64_t started_us, enum breaker_outcome);
const char *breaker_state_name(int);

#endif

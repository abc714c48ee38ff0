/*
 * guard: a breaker in shared memory, under its lock.
 */
#include "guard.h"
#include "log.h"
#include "util.h"

/* Log and count a change of state, outside the lock. */
static void
changed(const struct guard *g, int before, int after)
{
	if (before == after)
		return;
	log_warn("%s: circuit %s -> %s", g->name, breaker_state_name(before),
	    breaker_state_name(after));
	if (g->stats != NULL && after >= 0 && after < BREAKER_NSTATES)
		metrics_add(&g->stats->entered[after], 1);
}

int
guard_allow(struct guard *g, int64_t *retry_us)
{
	int	ok, before, after;

	*retry_us = 0;
	if (g == NULL || g->br == NULL)
		return 1;
	shm_lock(g->shm);
	before = g->br->state;
	ok = breaker_allow(g->br, &g->p, util_mono_us(), retry_us);
	after = g->br->state;
	shm_unlock(g->shm);
	changed(g, before, after);
	if (!ok && g->stats != NULL)
		metrics_add(&g->stats->rejected, 1);
	return ok;
}

void
guard_done(struct guard *g, enum breaker_outcome how, int64_t since_us)
{
	int64_t	now = util_mono_us();
	int	before, after;

	if (g == NULL)
		return;
	if (how == BREAKER_SUCCEEDED && g->slow_us > 0 &&
	    now - since_us >= g->slow_us) {
		how = BREAKER_TIMED_OUT;
		if (g->stats != NULL)
			metrics_add(&g->stats->slow, 1);
	} else if (g->stats != NULL) {
		if (how == BREAKER_FAILED)
			metrics_add(&g->stats->failed, 1);
		else if (how == BREAKER_TIMED_OUT || how == BREAKER_HUNG)
			metrics_add(&g->stats->timed_out, 1);
	}
	if (g->stats != NULL)
		metrics_observe(&g->stats->latency, now - since_us);
	if (g->br == NULL)
		return;
	shm_lock(g->shm);
	before = g->br->state;
	after = breaker_record(g->br, &g->p, now, since_us, how);
	shm_unlock(g->shm);
	changed(g, before, after);
}

int64_t
guard_trial_in(struct guard *g)
{
	int64_t	in;

	if (g == NULL || g->br == NULL)
		return -1;
	/*
	 * Closed, as it nearly always is: no lock, which every turn of a
	 * responder's loop would otherwise take.  A stale answer delays a
	 * probe by one turn at most.
	 */
	if (__atomic_load_n(&g->br->state, __ATOMIC_RELAXED) == BREAKER_CLOSED)
		return -1;
	shm_lock(g->shm);
	in = breaker_trial_in(g->br, &g->p, util_mono_us());
	shm_unlock(g->shm);
	return in;
}

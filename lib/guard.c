/*
 * guard: breakers in shared memory, under its lock.
 */
#include "guard.h"
#include "log.h"
#include "shm.h"
#include "util.h"

_Static_assert(GUARD_NDEPS <= SHM_BREAKERS,
    "the shared memory holds a breaker for every dependency");

const char *
guard_name(enum guard_dep dep)
{
	static const char *const names[GUARD_NDEPS] = {
		[GUARD_POSTGRES] = "postgres",
		[GUARD_REDIS] = "redis",
		[GUARD_WECHAT] = "wechat"
	};

	return (unsigned)dep < GUARD_NDEPS ? names[dep] : "?";
}

/* Log a change of state, outside the lock. */
static void
changed(const struct guard *g, int before, int after)
{
	if (before != after)
		log_warn("%s: circuit %s -> %s", guard_name(g->dep),
		    breaker_state_name(before), breaker_state_name(after));
}

int
guard_allow(struct guard *g, int64_t *retry_us)
{
	struct breaker	*br;
	int		 ok, before, after;

	*retry_us = 0;
	if (g == NULL || g->shm == NULL)
		return 1;
	br = &g->shm->breakers[g->dep];
	shm_lock(g->shm);
	before = br->state;
	ok = breaker_allow(br, &g->p, util_mono_us(), retry_us);
	after = br->state;
	shm_unlock(g->shm);
	changed(g, before, after);
	return ok;
}

void
guard_done(struct guard *g, enum breaker_outcome how)
{
	struct breaker	*br;
	int		 before, after;

	if (g == NULL || g->shm == NULL)
		return;
	br = &g->shm->breakers[g->dep];
	shm_lock(g->shm);
	before = br->state;
	after = breaker_record(br, &g->p, util_mono_us(), how);
	shm_unlock(g->shm);
	changed(g, before, after);
}

int64_t
guard_trial_in(struct guard *g)
{
	int64_t	in;

	if (g == NULL || g->shm == NULL)
		return -1;
	shm_lock(g->shm);
	in = breaker_trial_in(&g->shm->breakers[g->dep], &g->p, util_mono_us());
	shm_unlock(g->shm);
	return in;
}

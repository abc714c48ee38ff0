/*
 * breaker: the circuit breaker state machine.
 */
#include <string.h>

#include "breaker.h"

void
breaker_reset(struct breaker *br, int64_t now_us)
{
	memset(br, 0, sizeof(*br));
	br->state = BREAKER_CLOSED;
	br->since_us = now_us;
}

/* Closed again after a good trial: an empty window, counters kept. */
static void
breaker_close(struct breaker *br, int64_t now_us)
{
	memset(br->b, 0, sizeof(br->b));
	br->state = BREAKER_CLOSED;
	br->since_us = now_us;
	br->trials = 0;
}

static void
breaker_open(struct breaker *br, int64_t now_us)
{
	br->state = BREAKER_OPEN;
	br->since_us = now_us;
	br->trials = 0;
	br->opened++;
}

/* When the trial budget of a half-open breaker is renewed (see below). */
static int64_t
renewal_us(const struct breaker_params *p)
{
	return (p->trial_ms > p->open_ms ? p->trial_ms : p->open_ms) * 1000;
}

int
breaker_allow(struct breaker *br, const struct breaker_params *p,
    int64_t now_us, int64_t *retry_us)
{
	int64_t	until = br->since_us + p->open_ms * 1000;

	*retry_us = 0;
	switch (br->state) {
	case BREAKER_CLOSED:
		return 1;
	case BREAKER_OPEN:
		if (now_us < until) {
			*retry_us = until - now_us;
			br->rejected++;
			return 0;
		}
		br->state = BREAKER_HALF_OPEN;
		br->since_us = now_us;
		br->trials = 0;
		__attribute__((fallthrough));
	case BREAKER_HALF_OPEN:
		/*
		 * Trials whose outcome never came back (a responder killed
		 * mid-call) must not wedge the breaker: once the last one
		 * admitted is past its deadline, the trial budget is renewed.
		 * Not before: a trial that is merely slow (a hung store, waited
		 * out) would be joined by more, each holding its responder.
		 */
		if (now_us >= br->since_us + renewal_us(p)) {
			br->since_us = now_us;
			br->trials = 0;
		}
		if (br->trials < (uint32_t)p->half_open_calls) {
			br->trials++;
			br->since_us = now_us;
			return 1;
		}
		*retry_us = br->since_us + renewal_us(p) - now_us;
		br->rejected++;
		return 0;
	}
	return 1;
}

int64_t
breaker_trial_in(const struct breaker *br, const struct breaker_params *p,
    int64_t now_us)
{
	int64_t	until = br->since_us + p->open_ms * 1000;

	switch (br->state) {
	case BREAKER_OPEN:
		return now_us < until ? until - now_us : 0;
	case BREAKER_HALF_OPEN:
		until = br->since_us + renewal_us(p);
		if (now_us >= until || br->trials < (uint32_t)p->half_open_calls)
			return 0;
		return until - now_us;
	default:
		return -1;
	}
}

int
breaker_record(struct breaker *br, const struct breaker_params *p,
    int64_t now_us, int64_t started_us, enum breaker_outcome outcome)
{
	struct breaker_bucket	*b;
	int64_t			 sec = now_us / 1000000;
	uint64_t		 ok = 0, fail = 0;
	long long		 i;
	int			 success = outcome == BREAKER_SUCCEEDED;

	/*
	 * Calls that hung before WeChat (or a store) came back time out
	 * after it did: they must not open the breaker a good trial just
	 * closed, nor an older trial's timeout reopen it under a newer one.
	 */
	if (!success && started_us < br->since_us)
		return br->state;
	br->timeouts = outcome == BREAKER_TIMED_OUT || outcome == BREAKER_HUNG ?
	    br->timeouts + 1 : 0;
	if (br->state == BREAKER_HALF_OPEN) {
		if (success)
			breaker_close(br, now_us);
		else
			breaker_open(br, now_us);
		return br->state;
	}
	if (br->state == BREAKER_OPEN)
		return br->state;
	b = &br->b[sec % p->window_s];
	if (b->second != sec) {
		b->second = sec;
		b->ok = b->fail = 0;
	}
	if (success)
		b->ok++;
	else
		b->fail++;
	if (success)
		return br->state;
	if (p->timeouts > 0 && (outcome == BREAKER_HUNG ||
	    br->timeouts >= (uint64_t)p->timeouts)) {
		breaker_open(br, now_us);
		return br->state;
	}
	for (i = 0; i < p->window_s; i++)
		if (br->b[i].second > sec - p->window_s) {
			ok += br->b[i].ok;
			fail += br->b[i].fail;
		}
	if ((long long)(ok + fail) >= p->min_calls &&
	    (long long)(fail * 100) >= p->error_pct * (long long)(ok + fail))
		breaker_open(br, now_us);
	return br->state;
}

const char *
breaker_state_name(int s)
{
	switch (s) {
	case BREAKER_CLOSED:
		return "closed";
	case BREAKER_OPEN:
		return "open";
	case BREAKER_HALF_OPEN:
		return "half-open";
	default:
		return "unknown";
	}
}

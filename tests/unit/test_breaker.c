/* Unit tests for lib/breaker, lib/guard and lib/scoreboard. */
#include "check_run.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "breaker.h"
#include "guard.h"
#include "scoreboard.h"
#include "shm.h"
#include "util.h"

static const struct breaker_params p = { 10, 20, 50, 5000, 1, 2, 0 };
#define S	1000000LL	/* one second in us */
#define MS	1000LL		/* one millisecond in us */

START_TEST(stays_closed_below_volume)
{
	struct breaker	br;
	int64_t		retry, t = 100 * S;
	int		i;

	breaker_reset(&br, t);
	/* 19 failures: below the minimum volume of 20. */
	for (i = 0; i < 19; i++) {
		ck_assert(breaker_allow(&br, &p, t, &retry));
		ck_assert_int_eq(breaker_record(&br, &p, t, t, 0), BREAKER_CLOSED);
	}
	/* Successes keep the error rate under 50 %. */
	for (i = 0; i < 30; i++)
		breaker_record(&br, &p, t, t, 1);
	ck_assert_int_eq(breaker_record(&br, &p, t, t, 0), BREAKER_CLOSED);
}
END_TEST

START_TEST(opens_rejects_half_opens_and_closes)
{
	struct breaker	br;
	int64_t		retry, t = 100 * S;
	int		i;

	breaker_reset(&br, t);
	for (i = 0; i < 10; i++)
		breaker_record(&br, &p, t, t, 1);
	for (i = 0; i < 9; i++)
		ck_assert_int_eq(breaker_record(&br, &p, t, t, 0), BREAKER_CLOSED);
	/* The 20th call, 50 % failed: open. */
	ck_assert_int_eq(breaker_record(&br, &p, t, t, 0), BREAKER_OPEN);
	ck_assert(!breaker_allow(&br, &p, t + S, &retry));
	ck_assert_int_eq(retry, 4 * S);
	ck_assert_uint_eq(br.rejected, 1);
	/* After open_ms: one trial passes, the next waits. */
	ck_assert(breaker_allow(&br, &p, t + 5 * S, &retry));
	ck_assert_int_eq(br.state, BREAKER_HALF_OPEN);
	ck_assert(!breaker_allow(&br, &p, t + 5 * S, &retry));
	/* The trial fails: open again. */
	ck_assert_int_eq(breaker_record(&br, &p, t + 5 * S, t + 5 * S, 0), BREAKER_OPEN);
	ck_assert(!breaker_allow(&br, &p, t + 6 * S, &retry));
	/* Next trial succeeds: closed, window empty. */
	ck_assert(breaker_allow(&br, &p, t + 10 * S, &retry));
	ck_assert_int_eq(breaker_record(&br, &p, t + 10 * S, t + 10 * S, 1), BREAKER_CLOSED);
	ck_assert(breaker_allow(&br, &p, t + 10 * S, &retry));
	ck_assert_uint_eq(br.opened, 2);
}
END_TEST

/*
 * A store that hangs: its trial waits out its deadline (trial_ms), longer
 * than open_ms, and is not joined by more trials meanwhile.
 */
START_TEST(a_slow_trial_is_not_joined)
{
	static const struct breaker_params sp = { .window_s = 10,
	    .min_calls = 20, .error_pct = 50, .open_ms = 500,
	    .half_open_calls = 1, .timeouts = 2, .trial_ms = 2100 };
	struct breaker	br;
	int64_t		retry, t = 100 * S;

	breaker_reset(&br, t);
	breaker_record(&br, &sp, t, t, BREAKER_TIMED_OUT);
	ck_assert_int_eq(breaker_record(&br, &sp, t, t, BREAKER_TIMED_OUT),
	    BREAKER_OPEN);
	/* open_ms later: one trial. */
	ck_assert_int_eq(breaker_trial_in(&br, &sp, t + S / 2), 0);
	ck_assert(breaker_allow(&br, &sp, t + S / 2, &retry));
	/* Still out a second later: no second trial, nor a probe. */
	ck_assert(!breaker_allow(&br, &sp, t + 3 * S / 2, &retry));
	ck_assert_int_eq(retry, S + S / 10);
	ck_assert_int_gt(breaker_trial_in(&br, &sp, t + 3 * S / 2), 0);
	/* Past its deadline without an outcome (its responder died): again. */
	ck_assert_int_eq(breaker_trial_in(&br, &sp, t + 26 * S / 10), 0);
	ck_assert(breaker_allow(&br, &sp, t + 26 * S / 10, &retry));
	ck_assert_int_eq(breaker_record(&br, &sp, t + 27 * S / 10, t + 27 * S / 10,
	    BREAKER_SUCCEEDED), BREAKER_CLOSED);
}
END_TEST

START_TEST(timeouts_in_a_row_open_it)
{
	struct breaker	br;
	int64_t		t = 100 * S;

	breaker_reset(&br, t);
	/* Timeouts broken by a success or another failure: no run. */
	ck_assert_int_eq(breaker_record(&br, &p, t, t, BREAKER_TIMED_OUT),
	    BREAKER_CLOSED);
	ck_assert_int_eq(breaker_record(&br, &p, t, t, BREAKER_SUCCEEDED),
	    BREAKER_CLOSED);
	ck_assert_int_eq(breaker_record(&br, &p, t, t, BREAKER_TIMED_OUT),
	    BREAKER_CLOSED);
	ck_assert_int_eq(breaker_record(&br, &p, t, t, BREAKER_FAILED),
	    BREAKER_CLOSED);
	ck_assert_int_eq(breaker_record(&br, &p, t, t, BREAKER_TIMED_OUT),
	    BREAKER_CLOSED);
	/* Two in a row, far below the volume of 20: open. */
	ck_assert_int_eq(breaker_record(&br, &p, t, t, BREAKER_TIMED_OUT),
	    BREAKER_OPEN);
	/* One call that hung is enough. */
	breaker_reset(&br, t);
	ck_assert_int_eq(breaker_record(&br, &p, t, t, BREAKER_HUNG),
	    BREAKER_OPEN);
}
END_TEST

START_TEST(old_failures_leave_the_window)
{
	struct breaker	br;
	int64_t		t = 100 * S;
	int		i;

	breaker_reset(&br, t);
	for (i = 0; i < 15; i++)
		breaker_record(&br, &p, t, t, 0);
	/* 11 s later those 15 failures no longer count. */
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(breaker_record(&br, &p, t + 11 * S, t + 11 * S, 0),
		    BREAKER_CLOSED);
}
END_TEST

START_TEST(lost_trial_does_not_wedge)
{
	struct breaker	br;
	int64_t		retry, t = 100 * S;
	int		i;

	breaker_reset(&br, t);
	for (i = 0; i < 20; i++)
		breaker_record(&br, &p, t, t, 0);
	ck_assert(breaker_allow(&br, &p, t + 5 * S, &retry));
	/* Its outcome never comes back; open_ms later another trial goes. */
	ck_assert(!breaker_allow(&br, &p, t + 6 * S, &retry));
	ck_assert(breaker_allow(&br, &p, t + 10 * S, &retry));
}
END_TEST

START_TEST(trial_in_says_when_to_probe)
{
	struct breaker	br;
	int64_t		retry, t = 100 * S;

	breaker_reset(&br, t);
	ck_assert_int_eq(breaker_trial_in(&br, &p, t), -1);
	breaker_record(&br, &p, t, t, BREAKER_TIMED_OUT);
	breaker_record(&br, &p, t, t, BREAKER_TIMED_OUT);
	ck_assert_int_eq(breaker_trial_in(&br, &p, t + S), 4 * S);
	ck_assert_int_eq(breaker_trial_in(&br, &p, t + 6 * S), 0);
	/* It changed nothing: the trial is still there to take. */
	ck_assert_int_eq(br.state, BREAKER_OPEN);
	ck_assert(breaker_allow(&br, &p, t + 6 * S, &retry));
	/* Taken: the next is due when the budget is renewed. */
	ck_assert_int_eq(breaker_trial_in(&br, &p, t + 7 * S), 4 * S);
	ck_assert_int_eq(breaker_record(&br, &p, t + 7 * S, t + 7 * S, 1), BREAKER_CLOSED);
	ck_assert_int_eq(breaker_trial_in(&br, &p, t + 7 * S), -1);
}
END_TEST

START_TEST(scoreboard_slots)
{
	struct scoreboard	*sb = calloc(1, sizeof(*sb));
	struct arena		 a;
	struct buf		 b;
	int			 s1, s2;

	s1 = scoreboard_join(sb, getpid(), 1);
	ck_assert_int_ge(s1, 0);
	/* A slot of a process that no longer exists is reused. */
	sb->slots[s1 + 1].pid = 999999999;
	s2 = scoreboard_join(sb, getppid(), 1);
	ck_assert_int_eq(s2, s1 + 1);
	scoreboard_begin(sb, s1, "GET", "/api/v1/data/list", 1000);
	scoreboard_begin(sb, s2, "POST", "/api/v1/user/login", 1000);
	ck_assert_uint_eq(sb->max_busy, 2);
	ck_assert_uint_eq(sb->accepted, 2);
	scoreboard_end(sb, s2, 4000, 1, 1234, 7);
	ck_assert_uint_eq(sb->slots[s2].requests, 1);
	ck_assert_uint_eq(sb->slots[s2].local_hits, 7);
	ck_assert_int_eq(sb->slots[s2].last_us, 4000);
	ck_assert_uint_eq(sb->slow, 1);
	arena_init(&a, 4096, 1);
	buf_init(&b, &a, 256);
	scoreboard_json(sb, &b, 3000, 2000000);
	ck_assert_ptr_nonnull(strstr(buf_cstr(&b), "\"busy\":1,\"idle\":1"));
	ck_assert_ptr_nonnull(strstr(buf_cstr(&b),
	    "\"path\":\"/api/v1/data/list\",\"elapsed_us\":2000"));
	scoreboard_leave(sb, s1);
	ck_assert_int_eq(sb->slots[s1].pid, 0);
	arena_free(&a);
	free(sb);
}
END_TEST

START_TEST(a_guard_counts_every_change_of_state)
{
	const struct shm_layout	 l = { .size = sizeof(struct breaker),
	    .version = 1 };
	struct guard_stats	 st;
	struct shm		 shm;
	struct guard		 g = { .name = "test", .shm = &shm,
	    .p = { .window_s = 10, .min_calls = 2, .error_pct = 50,
	    .open_ms = 1, .half_open_calls = 1, .timeouts = 0 },
	    .stats = &st };
	int64_t			 retry;

	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(shm_private(&shm, &l), 0);
	g.br = shm.data;
	breaker_reset(g.br, util_mono_us());
	/* Two failures: open. */
	ck_assert(guard_allow(&g, &retry));
	guard_done(&g, BREAKER_FAILED, util_mono_us());
	guard_done(&g, BREAKER_FAILED, util_mono_us());
	ck_assert_int_eq(g.br->state, BREAKER_OPEN);
	ck_assert_uint_eq(st.entered[BREAKER_OPEN], 1);
	ck_assert_uint_eq(st.failed, 2);
	/* open_ms later, a trial: half-open; it fails: open again. */
	usleep(3000);
	ck_assert(guard_allow(&g, &retry));
	ck_assert_uint_eq(st.entered[BREAKER_HALF_OPEN], 1);
	guard_done(&g, BREAKER_FAILED, util_mono_us());
	ck_assert_uint_eq(st.entered[BREAKER_OPEN], 2);
	/* The next trial succeeds: closed. */
	usleep(3000);
	ck_assert(guard_allow(&g, &retry));
	guard_done(&g, BREAKER_SUCCEEDED, util_mono_us());
	ck_assert_int_eq(g.br->state, BREAKER_CLOSED);
	ck_assert_uint_eq(st.entered[BREAKER_HALF_OPEN], 2);
	ck_assert_uint_eq(st.entered[BREAKER_CLOSED], 1);
	/* Calls that change nothing count nothing. */
	ck_assert(guard_allow(&g, &retry));
	guard_done(&g, BREAKER_SUCCEEDED, util_mono_us());
	ck_assert_uint_eq(st.entered[BREAKER_CLOSED], 1);
	ck_assert_uint_eq(st.entered[BREAKER_OPEN], 2);
	ck_assert_uint_eq(g.br->opened, st.entered[BREAKER_OPEN]);
	shm_detach(&shm);
}
END_TEST

/*
 * A dependency that answers, but only near its timeout, opens the breaker
 * as one that times out: a run of slow successes is a run of timeouts.
 */
START_TEST(slow_successes_open_it)
{
	const struct shm_layout	 l = { .size = sizeof(struct breaker),
	    .version = 1 };
	struct guard_stats	 st;
	struct shm		 shm;
	struct guard		 g = { .name = "test", .shm = &shm,
	    .p = { .window_s = 10, .min_calls = 20, .error_pct = 50,
	    .open_ms = 500, .half_open_calls = 1, .timeouts = 2 },
	    .stats = &st, .slow_us = 2400000 };
	int64_t			 now;

	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(shm_private(&shm, &l), 0);
	g.br = shm.data;
	/* Closed before the calls below went out. */
	breaker_reset(g.br, util_mono_us() - 10 * S);
	/* Just under the threshold: a success, which ends any run. */
	now = util_mono_us();
	guard_done(&g, BREAKER_SUCCEEDED, now - 2300000);
	ck_assert_uint_eq(st.slow, 0);
	ck_assert_uint_eq(g.br->timeouts, 0);
	/* Two past it: a run of two, open; counted as slow, not failed. */
	guard_done(&g, BREAKER_SUCCEEDED, now - 2500000);
	ck_assert_int_eq(g.br->state, BREAKER_CLOSED);
	guard_done(&g, BREAKER_SUCCEEDED, now - 2900000);
	ck_assert_int_eq(g.br->state, BREAKER_OPEN);
	ck_assert_uint_eq(st.slow, 2);
	ck_assert_uint_eq(st.timed_out, 0);
	ck_assert_uint_eq(st.failed, 0);
	/* slow_us 0: however slow, a success. */
	breaker_reset(g.br, util_mono_us() - 10 * S);
	g.slow_us = 0;
	guard_done(&g, BREAKER_SUCCEEDED, now - 9000000);
	guard_done(&g, BREAKER_SUCCEEDED, now - 9000000);
	ck_assert_int_eq(g.br->state, BREAKER_CLOSED);
	ck_assert_uint_eq(st.slow, 2);
	shm_detach(&shm);
}
END_TEST

/*
 * With no trial deadline beyond open_ms (WeChat's: a trial holds only its
 * request), a hung trial is joined by another every open_ms, so the first
 * good answer after the dependency returns closes the breaker.
 */
START_TEST(trials_every_open_ms_while_one_hangs)
{
	struct breaker		 br;
	struct breaker_params	 wp = { .window_s = 10, .min_calls = 20,
	    .error_pct = 50, .open_ms = 500, .half_open_calls = 1,
	    .timeouts = 2, .trial_ms = 0 };
	int64_t			 t = 1000 * S, retry;

	breaker_reset(&br, t);
	breaker_record(&br, &wp, t, t, BREAKER_TIMED_OUT);
	ck_assert_int_eq(breaker_record(&br, &wp, t, t, BREAKER_TIMED_OUT),
	    BREAKER_OPEN);
	/* A trial at open_ms; it hangs.  Until open_ms later, no other. */
	ck_assert(breaker_allow(&br, &wp, t + 500 * MS, &retry));
	ck_assert(!breaker_allow(&br, &wp, t + 999 * MS, &retry));
	ck_assert_int_eq(retry, 1 * MS);
	/* Then one more, though the first has not come back. */
	ck_assert(breaker_allow(&br, &wp, t + 1000 * MS, &retry));
	/* The first times out: the second, still out, decides. */
	ck_assert_int_eq(breaker_record(&br, &wp, t + 1200 * MS, t + 500 * MS,
	    BREAKER_TIMED_OUT), BREAKER_HALF_OPEN);
	ck_assert_int_eq(breaker_record(&br, &wp, t + 1210 * MS, t + 1000 * MS,
	    BREAKER_SUCCEEDED), BREAKER_CLOSED);
	/*
	 * Calls that went out while it hung come back timed out: they do
	 * not open it again, and start no run.
	 */
	ck_assert_int_eq(breaker_record(&br, &wp, t + 3000 * MS, t + 100 * MS,
	    BREAKER_TIMED_OUT), BREAKER_CLOSED);
	ck_assert_int_eq(breaker_record(&br, &wp, t + 3100 * MS, t + 900 * MS,
	    BREAKER_TIMED_OUT), BREAKER_CLOSED);
	ck_assert_uint_eq(br.timeouts, 0);
	/* A call that went out after the close counts. */
	breaker_record(&br, &wp, t + 3200 * MS, t + 1300 * MS,
	    BREAKER_TIMED_OUT);
	ck_assert_int_eq(breaker_record(&br, &wp, t + 3300 * MS, t + 1400 * MS,
	    BREAKER_TIMED_OUT), BREAKER_OPEN);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("breaker");
	TCase	*tc = tcase_create("breaker");

	tcase_add_test(tc, stays_closed_below_volume);
	tcase_add_test(tc, opens_rejects_half_opens_and_closes);
	tcase_add_test(tc, a_slow_trial_is_not_joined);
	tcase_add_test(tc, old_failures_leave_the_window);
	tcase_add_test(tc, timeouts_in_a_row_open_it);
	tcase_add_test(tc, lost_trial_does_not_wedge);
	tcase_add_test(tc, trial_in_says_when_to_probe);
	tcase_add_test(tc, a_guard_counts_every_change_of_state);
	tcase_add_test(tc, slow_successes_open_it);
	tcase_add_test(tc, trials_every_open_ms_while_one_hangs);
	tcase_add_test(tc, scoreboard_slots);
	suite_add_tcase(s, tc);
	return check_run(s);
}

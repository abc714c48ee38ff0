/*
 * Unit tests for lib/job against the Redis that tests/unit/services.sh
 * started for this test alone (WXAPP_TEST_REDIS): enqueue, take, done,
 * de-duplication, delayed jobs, retries with backoff, dead letters and
 * their revival, taking over a dead consumer's jobs, and a lost group.
 */
#include "check_run.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "job.h"
#include "keys.h"
#include "log.h"
#include "svc.h"
#include "util.h"

static struct cache	cc;
static struct arena	a;
static struct job_opts	jo = { .claim_idle_ms = 50, .retry_base_ms = 10,
	.retry_max = 2, .dedup_ttl_s = 60 };

/* A command of C strings that must succeed; its reply is freed. */
static void
run(int argc, const char **argv)
{
	size_t		 len[CACHE_CALL_ARGS];
	redisReply	*r;
	int		 i;

	for (i = 0; i < argc; i++)
		len[i] = strlen(argv[i]);
	ck_assert_int_eq(cache_cmd(&cc, &r, argc, argv, len), CACHE_OK);
	freeReplyObject(r);
}

static void
setup(void)
{
	struct cache_opts	o = { .addr = svc_env("WXAPP_TEST_REDIS"),
	    .password = "", .connect_timeout_ms = 500,
	    .command_timeout_ms = 1000 };

	log_open(NULL, LOG_LEVEL_ERROR + 1, 0);
	arena_init(&a, 4096, 1);
	cache_init(&cc, &o);
	run(1, (const char *[]){ "FLUSHALL" });
	ck_assert_int_eq(job_setup(&cc), CACHE_OK);
}

static void
teardown(void)
{
	cache_close(&cc);
	arena_free(&a);
}

/* Enqueue a job of type and payload (key: "" none); its id. */
static const char *
put(const char *type, const char *payload, const char *key, long long nbf,
    int want_dup)
{
	struct job	j = { .type = type, .payload = payload, .key = key };
	char		*id = arena_alloc(&a, JOB_ID_LEN + 1);
	int		 dup;

	ck_assert_int_eq(job_new_id(id), 0);
	j.id = id;
	ck_assert_int_eq(job_enqueue(&cc, &jo, &a, &j, nbf, &dup), CACHE_OK);
	ck_assert_int_eq(dup, want_dup);
	return j.id;
}

/* Take what is there for consumer; how many. */
static int
take(const char *consumer, struct job *jobs, int max)
{
	int	n;

	ck_assert_int_eq(job_take(&cc, &a, consumer, 0, 0, jobs, max, &n),
	    CACHE_OK);
	return n;
}

static struct job_stats
stats(void)
{
	struct job_stats	s;

	ck_assert_int_eq(job_stats(&cc, &s), CACHE_OK);
	return s;
}

START_TEST(enqueue_take_done)
{
	struct job		 j[8];
	struct job_stats	 s;
	const char		*id1, *id2;

	id1 = put("mail", "{\"n\":1}", "", 0, 0);
	id2 = put("mail", "{\"n\":2}", "", 0, 0);
	ck_assert_int_eq(strlen(id1), JOB_ID_LEN);
	ck_assert_str_ne(id1, id2);
	s = stats();
	ck_assert_int_eq(s.queued, 2);
	ck_assert_int_eq(s.pending, 0);
	ck_assert_int_eq(take("w1", j, 8), 2);
	ck_assert_str_eq(j[0].id, id1);
	ck_assert_str_eq(j[0].type, "mail");
	ck_assert_str_eq(j[0].payload, "{\"n\":1}");
	ck_assert_int_eq(j[0].attempt, 0);
	ck_assert_str_eq(j[1].id, id2);
	ck_assert_int_ge(j[0].at_ms, util_wall_us() / 1000 - 5000);
	s = stats();
	ck_assert_int_eq(s.pending, 2);
	ck_assert_int_eq(s.consumers, 1);
	ck_assert_str_eq(s.consumer[0].name, "w1");
	ck_assert_int_eq(s.consumer[0].pending, 2);
	/* Taken jobs are not taken again. */
	ck_assert_int_eq(take("w2", j + 2, 6), 0);
	ck_assert_int_eq(job_done(&cc, &j[0]), CACHE_OK);
	ck_assert_int_eq(job_done(&cc, &j[1]), CACHE_OK);
	s = stats();
	ck_assert_int_eq(s.queued, 0);
	ck_assert_int_eq(s.pending, 0);
	ck_assert_int_eq(s.oldest_ms, 0);
}
END_TEST

START_TEST(an_idempotency_key_is_one_job)
{
	struct job	 j[4];
	const char	*id1, *id2;

	id1 = put("mail", "{}", "order-42", 0, 0);
	id2 = put("mail", "{\"other\":1}", "order-42", 0, 1);
	ck_assert_str_eq(id1, id2);
	put("mail", "{}", "order-43", 0, 0);
	ck_assert_int_eq(take("w1", j, 4), 2);
	ck_assert_str_eq(j[0].key, "order-42");
	ck_assert_str_eq(j[0].payload, "{}");
}
END_TEST

START_TEST(not_before_waits_in_the_retry_set)
{
	struct job	j[2];
	int		moved;

	put("later", "{}", "", util_wall_us() / 1000 + 300, 0);
	ck_assert_int_eq(take("w1", j, 2), 0);
	ck_assert_int_eq(stats().retrying, 1);
	ck_assert_int_eq(job_promote(&cc, &moved), CACHE_OK);
	ck_assert_int_eq(moved, 0);
	usleep(400000);
	ck_assert_int_eq(job_promote(&cc, &moved), CACHE_OK);
	ck_assert_int_eq(moved, 1);
	ck_assert_int_eq(take("w1", j, 2), 1);
	ck_assert_str_eq(j[0].type, "later");
	ck_assert_int_eq(stats().retrying, 0);
}
END_TEST

/* Fail j, wait for its backoff, bring it back and take it again. */
static void
fail_and_retake(struct job *j, const char *error)
{
	int	dead, moved = 0, i;

	ck_assert_int_eq(job_fail(&cc, &jo, j, error, 0, &dead), CACHE_OK);
	ck_assert_int_eq(dead, 0);
	ck_assert_int_eq(stats().retrying, 1);
	ck_assert_int_eq(stats().pending, 0);
	for (i = 0; i < 50 && moved == 0; i++) {
		usleep(10000);
		ck_assert_int_eq(job_promote(&cc, &moved), CACHE_OK);
	}
	ck_assert_int_eq(moved, 1);
	ck_assert_int_eq(take("w1", j, 1), 1);
}

START_TEST(retries_then_dead_with_the_last_error)
{
	struct job	 j[2], d[4];
	const char	*id;
	int		 dead, n;

	id = put("flaky", "{\"x\":\"é\"}", "k", 0, 0);
	ck_assert_int_eq(take("w1", j, 1), 1);
	fail_and_retake(&j[0], "timeout");
	ck_assert_int_eq(j[0].attempt, 1);
	ck_assert_str_eq(j[0].error, "timeout");
	ck_assert_str_eq(j[0].id, id);
	ck_assert_str_eq(j[0].payload, "{\"x\":\"é\"}");
	fail_and_retake(&j[0], "busy");
	ck_assert_int_eq(j[0].attempt, 2);
	/* retry_max 2: the third run's failure is final. */
	ck_assert_int_eq(job_fail(&cc, &jo, &j[0], "quota", 0, &dead),
	    CACHE_OK);
	ck_assert_int_eq(dead, 1);
	ck_assert_int_eq(stats().dead, 1);
	ck_assert_int_eq(stats().queued, 0);
	ck_assert_int_eq(job_dead_list(&cc, &a, d, 4, &n), CACHE_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(d[0].id, id);
	ck_assert_str_eq(d[0].error, "quota");
	ck_assert_int_eq(d[0].attempt, 3);
	ck_assert_str_eq(d[0].key, "k");
}
END_TEST

START_TEST(a_permanent_failure_is_dead_at_once)
{
	struct job	j[1];
	int		dead;

	put("send", "{}", "", 0, 0);
	ck_assert_int_eq(take("w1", j, 1), 1);
	ck_assert_int_eq(job_fail(&cc, &jo, &j[0], "43101 user refused", 1,
	    &dead), CACHE_OK);
	ck_assert_int_eq(dead, 1);
	ck_assert_int_eq(stats().dead, 1);
	ck_assert_int_eq(stats().retrying, 0);
}
END_TEST

START_TEST(dead_letters_revived_one_or_all_then_purged)
{
	struct job	 j[4];
	const char	*ids[3];
	int		 i, dead, moved;
	long long	 removed;

	for (i = 0; i < 3; i++)
		ids[i] = put("send", "{}", "", 0, 0);
	ck_assert_int_eq(take("w1", j, 4), 3);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(job_fail(&cc, &jo, &j[i], "no", 1, &dead),
		    CACHE_OK);
	ck_assert_int_eq(job_dead_retry(&cc, ids[1], &moved), CACHE_OK);
	ck_assert_int_eq(moved, 1);
	ck_assert_int_eq(job_dead_retry(&cc, "nosuchjob", &moved), CACHE_OK);
	ck_assert_int_eq(moved, 0);
	ck_assert_int_eq(take("w1", j, 4), 1);
	ck_assert_str_eq(j[0].id, ids[1]);
	ck_assert_int_eq(j[0].attempt, 0);
	ck_assert_int_eq(job_dead_retry(&cc, NULL, &moved), CACHE_OK);
	ck_assert_int_eq(moved, 2);
	ck_assert_int_eq(stats().dead, 0);
	ck_assert_int_eq(take("w1", j, 4), 2);
	ck_assert_int_eq(job_fail(&cc, &jo, &j[0], "no", 1, &dead), CACHE_OK);
	ck_assert_int_eq(job_dead_purge(&cc, &removed), CACHE_OK);
	ck_assert_int_eq(removed, 1);
	ck_assert_int_eq(stats().dead, 0);
}
END_TEST

START_TEST(a_dead_consumers_jobs_are_claimed)
{
	struct job	j[4], c[4];
	char		cursor[48] = "0-0";
	int		n;

	put("send", "{}", "", 0, 0);
	put("send", "{}", "", 0, 0);
	ck_assert_int_eq(take("dead-worker", j, 4), 2);
	/* Not idle long enough yet. */
	ck_assert_int_eq(job_claim(&cc, &jo, &a, "w2", cursor, c, 4, &n),
	    CACHE_OK);
	ck_assert_int_eq(n, 0);
	usleep(100000);
	strcpy(cursor, "0-0");
	ck_assert_int_eq(job_claim(&cc, &jo, &a, "w2", cursor, c, 4, &n),
	    CACHE_OK);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(c[0].id, j[0].id);
	ck_assert_str_eq(cursor, "0-0");
	ck_assert_int_eq(job_done(&cc, &c[0]), CACHE_OK);
	ck_assert_int_eq(job_done(&cc, &c[1]), CACHE_OK);
	ck_assert_int_eq(stats().pending, 0);
	ck_assert_int_eq(stats().queued, 0);
}
END_TEST

START_TEST(a_consumer_started_again_takes_back_its_own)
{
	struct job	j[4], mine[4];
	int		n;

	put("send", "{}", "", 0, 0);
	put("send", "{}", "", 0, 0);
	ck_assert_int_eq(take("host-1", j, 4), 2);
	ck_assert_int_eq(job_done(&cc, &j[0]), CACHE_OK);
	/* host-1 dies holding j[1]; started again, it takes it back. */
	ck_assert_int_eq(job_take(&cc, &a, "host-1", 1, 0, mine, 4, &n),
	    CACHE_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(mine[0].id, j[1].id);
	ck_assert_int_eq(job_take(&cc, &a, "host-2", 1, 0, mine, 4, &n),
	    CACHE_OK);
	ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(a_lost_group_is_made_again)
{
	struct job	j[2];

	run(2, (const char *[]){ "DEL", KEYS_JOBS });
	put("send", "{}", "", 0, 0);
	ck_assert_int_eq(take("w1", j, 2), 1);
}
END_TEST

START_TEST(a_failure_of_a_job_finished_elsewhere_changes_nothing)
{
	struct job	j[1];
	int		dead;

	put("send", "{}", "", 0, 0);
	ck_assert_int_eq(take("w1", j, 1), 1);
	ck_assert_int_eq(job_done(&cc, &j[0]), CACHE_OK);
	ck_assert_int_eq(job_fail(&cc, &jo, &j[0], "late", 0, &dead),
	    CACHE_OK);
	ck_assert_int_eq(stats().retrying, 0);
	ck_assert_int_eq(stats().dead, 0);
}
END_TEST

START_TEST(backoff_doubles_with_jitter_and_is_capped)
{
	ck_assert_int_eq(job_backoff_ms(100, 0, 0), 100);
	ck_assert_int_eq(job_backoff_ms(100, 3, 0), 800);
	/* Equal jitter: never below half. */
	ck_assert_int_eq(job_backoff_ms(100, 3, 400), 400);
	ck_assert_int_eq(job_backoff_ms(100, 3, 401), 800);
	ck_assert_int_ge(job_backoff_ms(100, 3, 0xffffffff), 400);
	ck_assert_int_eq(job_backoff_ms(1, 100, 0), 65536);
	ck_assert_int_gt(job_backoff_ms(INT64_MAX, 100, 0), 0);
	ck_assert_int_eq(job_backoff_ms(0, -5, 0), 1);
}
END_TEST

START_TEST(redis_down_is_unavailable)
{
	struct cache_opts	o = { .addr = "/nonexistent/redis.sock",
	    .password = "", .connect_timeout_ms = 100,
	    .command_timeout_ms = 100 };
	struct cache		down;
	struct job		j = { .id = "x", .type = "t", .payload = "{}",
	    .key = "" };
	int			dup;

	cache_init(&down, &o);
	ck_assert_int_eq(job_enqueue(&down, &jo, &a, &j, 0, &dup),
	    CACHE_UNAVAILABLE);
	cache_close(&down);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("job");
	TCase	*tc = tcase_create("job");

	signal(SIGPIPE, SIG_IGN);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, enqueue_take_done);
	tcase_add_test(tc, an_idempotency_key_is_one_job);
	tcase_add_test(tc, not_before_waits_in_the_retry_set);
	tcase_add_test(tc, retries_then_dead_with_the_last_error);
	tcase_add_test(tc, a_permanent_failure_is_dead_at_once);
	tcase_add_test(tc, dead_letters_revived_one_or_all_then_purged);
	tcase_add_test(tc, a_dead_consumers_jobs_are_claimed);
	tcase_add_test(tc, a_consumer_started_again_takes_back_its_own);
	tcase_add_test(tc, a_lost_group_is_made_again);
	tcase_add_test(tc, a_failure_of_a_job_finished_elsewhere_changes_nothing);
	tcase_add_test(tc, backoff_doubles_with_jitter_and_is_capped);
	tcase_add_test(tc, redis_down_is_unavailable);
	suite_add_tcase(s, tc);
	return check_run(s);
}

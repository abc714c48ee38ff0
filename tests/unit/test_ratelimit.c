/*
 * Unit tests for lib/ratelimit: the GCRA arithmetic via the local bucket,
 * and the leases, fed with made-up answers of the script.
 */
#include "check_run.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ratelimit.h"

static struct cache	cc;
static struct ratelimit	rl;
static struct arena	a;

/* No Redis listens there: every decision falls back to the local bucket. */
static void
setup(void)
{
	struct cache_opts	o = { .addr = "/nonexistent/redis.sock",
	    .password = "", .connect_timeout_ms = 10,
	    .command_timeout_ms = 10 };

	log_open(NULL, LOG_LEVEL_ERROR + 1, 0);
	cache_init(&cc, &o);
	ratelimit_init(&rl, &cc, NULL, NULL, 32);
	arena_init(&a, 4096, 2);
}

static void
teardown(void)
{
	arena_free(&a);
}

START_TEST(burst_then_limited)
{
	struct rl_class		c = { "login", 10, 60, 5 };
	struct rl_result	r;
	int			i;

	for (i = 0; i < 5; i++) {
		ratelimit_check(&rl, &a, &c, "a:1.2.3.4", &r);
		ck_assert(r.allowed);
		ck_assert(r.local);
		ck_assert_int_eq(r.limit, 5);
		ck_assert_int_eq(r.remaining, 4 - i);
	}
	ratelimit_check(&rl, &a, &c, "a:1.2.3.4", &r);
	ck_assert(!r.allowed);
	ck_assert_int_eq(r.remaining, 0);
	/* One request every 6 s refills: the next is due in about 6 s. */
	ck_assert_int_ge(r.retry_after_s, 5);
	ck_assert_int_le(r.retry_after_s, 6);
	ck_assert_int_eq(r.reset_s, 30);
	/* Another identity has its own bucket. */
	ratelimit_check(&rl, &a, &c, "a:5.6.7.8", &r);
	ck_assert(r.allowed);
	ck_assert_uint_ge(rl.fallbacks, 7);
}
END_TEST

START_TEST(refill)
{
	struct rl_class		c = { "read", 100, 1, 2 };
	struct rl_result	r;

	ratelimit_check(&rl, &a, &c, "u:1", &r);
	ratelimit_check(&rl, &a, &c, "u:1", &r);
	ratelimit_check(&rl, &a, &c, "u:1", &r);
	ck_assert(!r.allowed);
	usleep(25000);	/* 10 ms per request at 100/s */
	ratelimit_check(&rl, &a, &c, "u:1", &r);
	ck_assert(r.allowed);
}
END_TEST

/* What the GCRA script answers: {taken, remaining, retry_us, reset_us}. */
static redisReply *
script_reply(long long taken, long long remaining)
{
	redisReply	*r = calloc(1, sizeof(*r));
	long long	 v[4] = { taken, remaining, 0, 1000 };
	size_t		 i;

	ck_assert_ptr_nonnull(r);
	r->type = REDIS_REPLY_ARRAY;
	r->elements = 4;
	r->element = calloc(4, sizeof(*r->element));
	ck_assert_ptr_nonnull(r->element);
	for (i = 0; i < 4; i++) {
		r->element[i] = calloc(1, sizeof(**r->element));
		ck_assert_ptr_nonnull(r->element[i]);
		r->element[i]->type = REDIS_REPLY_INTEGER;
		r->element[i]->integer = v[i];
	}
	return r;
}

START_TEST(leases)
{
	struct rl_class		 c = { "read", 20, 1, 40 };
	struct rl_pending	 p;
	struct rl_result	 r;
	static const struct shm_layout	 lay = {
		.size = RATELIMIT_LEASE_SLOTS * sizeof(struct rl_lease),
		.version = 1
	};
	struct shm			 shm;
	int				 i;

	ck_assert_int_eq(shm_private(&shm, &lay), 0);
	ratelimit_init(&rl, &cc, &shm, shm.data, 32);
	/* The script took 8 (of 40): this request and 7 for later. */
	ck_assert_int_eq(ratelimit_prepare(&rl, &a, &c, "u:1", &p), 1);
	ck_assert_str_eq(p.call.argv[6], "32");
	p.call.st = CACHE_OK;
	p.call.reply = script_reply(8, 32);
	ratelimit_finish(&rl, &p, &r);
	ck_assert(r.allowed);
	ck_assert_int_eq(r.remaining, 39);
	/* The next 7 need no call; Remaining counts down. */
	for (i = 0; i < 7; i++) {
		ck_assert_int_eq(ratelimit_prepare(&rl, &a, &c, "u:1", &p), 0);
		ratelimit_finish(&rl, &p, &r);
		ck_assert(r.allowed);
		ck_assert(!r.local);
		ck_assert_int_eq(r.limit, 40);
		ck_assert_int_eq(r.remaining, 38 - i);
	}
	ck_assert_uint_eq(rl.leased, 7);
	/* Spent: the 9th asks Redis again; another identity always did. */
	ck_assert_int_eq(ratelimit_prepare(&rl, &a, &c, "u:1", &p), 1);
	ck_assert_int_eq(ratelimit_prepare(&rl, &a, &c, "u:2", &p), 1);
	/* A refill that the lease outlives never reports more than limit - 1. */
	ck_assert_int_eq(ratelimit_prepare(&rl, &a, &c, "u:3", &p), 1);
	p.call.st = CACHE_OK;
	p.call.reply = script_reply(20, 39);
	ratelimit_finish(&rl, &p, &r);
	ck_assert_int_eq(r.remaining, 39);
	/* A lease lives RATELIMIT_LEASE_US. */
	usleep(RATELIMIT_LEASE_US + 10000);
	ck_assert_int_eq(ratelimit_prepare(&rl, &a, &c, "u:3", &p), 1);
	/* Limited by Redis: nothing kept. */
	p.call.st = CACHE_OK;
	p.call.reply = script_reply(0, 0);
	ratelimit_finish(&rl, &p, &r);
	ck_assert(!r.allowed);
	ck_assert_int_eq(ratelimit_prepare(&rl, &a, &c, "u:3", &p), 1);
	shm_detach(&shm);
}
END_TEST

START_TEST(no_leases_without_shared_memory)
{
	struct rl_class		 c = { "read", 20, 1, 40 };
	struct rl_pending	 p;
	struct rl_result	 r;

	ratelimit_init(&rl, &cc, NULL, NULL, 32);
	ck_assert_int_eq(ratelimit_prepare(&rl, &a, &c, "u:1", &p), 1);
	ck_assert_str_eq(p.call.argv[6], "1");
	p.call.st = CACHE_OK;
	p.call.reply = script_reply(1, 39);
	ratelimit_finish(&rl, &p, &r);
	ck_assert_int_eq(r.remaining, 39);
	ck_assert_int_eq(ratelimit_prepare(&rl, &a, &c, "u:1", &p), 1);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("ratelimit");
	TCase	*tc = tcase_create("ratelimit");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, burst_then_limited);
	tcase_add_test(tc, refill);
	tcase_add_test(tc, leases);
	tcase_add_test(tc, no_leases_without_shared_memory);
	suite_add_tcase(s, tc);
	return check_run(s);
}

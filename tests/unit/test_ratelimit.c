/* Unit tests for lib/ratelimit: the GCRA arithmetic, via the local bucket. */
#include "check_run.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ratelimit.h"

static struct config	cfg;
static struct cache	cc;
static struct ratelimit	rl;
static struct arena	a;

/* No Redis listens there: every decision falls back to the local bucket. */
static void
setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.redis_addr = "/nonexistent/redis.sock";
	cfg.redis_password = "";
	cfg.redis_connect_timeout_ms = 10;
	cfg.redis_command_timeout_ms = 10;
	log_open(NULL, LOG_LEVEL_ERROR + 1, 0);
	cache_init(&cc, &cfg);
	ratelimit_init(&rl, &cc, NULL, 32);
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

int
main(void)
{
	Suite	*s = suite_create("ratelimit");
	TCase	*tc = tcase_create("ratelimit");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, burst_then_limited);
	tcase_add_test(tc, refill);
	suite_add_tcase(s, tc);
	return check_run(s);
}

/*
 * Unit tests for lib/cache against real Redis servers: the one
 * tests/unit/services.sh started (WXAPP_TEST_REDIS), and for stopping,
 * restarting and hanging one, a redis-server of the test's own.
 */
#include "check_run.h"
#include <sys/socket.h>

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "crypto.h"
#include "log.h"
#include "svc.h"
#include "util.h"

static struct cache	cc;
static struct arena	a;
static int		recovered;

/* A cache on addr with short timeouts, and its guard (NULL: none). */
static void
open_cache(const char *addr, struct guard *g)
{
	struct cache_opts	o = { .addr = addr, .password = "",
	    .connect_timeout_ms = 200, .command_timeout_ms = 200,
	    .guard = g };

	cache_init(&cc, &o);
}

static void
setup(void)
{
	log_open(NULL, LOG_LEVEL_ERROR + 1, 0);
	arena_init(&a, 4096, 1);
	open_cache(svc_env("WXAPP_TEST_REDIS"), NULL);
	recovered = 0;
}

static void
teardown(void)
{
	cache_close(&cc);
	arena_free(&a);
}

/* Run a command of C strings; its reply, which the caller frees. */
static redisReply *
cmd(int argc, const char **argv, enum cache_status want)
{
	size_t		 len[CACHE_CALL_ARGS + 1];
	redisReply	*r;
	int		 i;

	for (i = 0; i < argc && i <= CACHE_CALL_ARGS; i++)
		len[i] = strlen(argv[i]);
	ck_assert_int_eq(cache_cmd(&cc, &r, argc, argv, len), want);
	return r;
}

/* An integer reply to a command of C strings. */
static long long
cmd_int(int argc, const char **argv)
{
	redisReply	*r = cmd(argc, argv, CACHE_OK);
	long long	 v;

	ck_assert_int_eq(r->type, REDIS_REPLY_INTEGER);
	v = r->integer;
	freeReplyObject(r);
	return v;
}

/* What the on_recover hook saw. */
static void
on_recover(struct cache *c, const void *arg)
{
	ck_assert_ptr_eq(c, &cc);
	ck_assert_ptr_eq(arg, &recovered);
	recovered++;
}

/* A breaker that opens after 2 timeouts in a row, half-open after 300 ms. */
static struct guard *
new_guard(void)
{
	static const struct breaker_params	p = { 10, 20, 50, 300, 1, 2, 0 };

	return svc_guard("redis", &p);
}


START_TEST(connects_over_a_unix_socket)
{
	redisContext	*c;

	ck_assert_int_eq(cache_connect(&cc), 0);
	ck_assert_ptr_nonnull(cc.c);
	ck_assert_int_gt(cc.c_born_us, 0);
	ck_assert_int_eq(cache_ping(&cc), CACHE_OK);
	/* Connected already: cache_ready keeps the context. */
	c = cc.c;
	ck_assert_int_eq(cache_ready(&cc), 0);
	ck_assert_ptr_eq(cc.c, c);
	ck_assert_uint_eq(cc.failures, 0);
	ck_assert_int_eq(cc.lost, 0);
}
END_TEST

START_TEST(binary_values_round_trip)
{
	static const char	 v[] = "\0nul\0\xff\r\n*3\r\n$-1\0";
	const char		*argv[2] = { "TTL", "test:bin" };
	char			 big[100000];
	const char		*got;
	size_t			 len;

	/* No connect first: the first command connects. */
	ck_assert_int_eq(cache_setex(&cc, "test:bin", v, sizeof(v), 60),
	    CACHE_OK);
	ck_assert_int_eq(cache_get(&cc, &a, "test:bin", &got, &len), CACHE_OK);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(len, sizeof(v));
	ck_assert_mem_eq(got, v, sizeof(v));
	ck_assert_int_eq(got[len], '\0');
	ck_assert_int_gt(cmd_int(2, argv), 50);
	ck_assert_int_le(cmd_int(2, argv), 60);

	/* Empty is not absent. */
	ck_assert_int_eq(cache_setex(&cc, "test:empty", "", 0, 60), CACHE_OK);
	ck_assert_int_eq(cache_get(&cc, &a, "test:empty", &got, &len),
	    CACHE_OK);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(len, 0);

	/* Larger than any socket buffer. */
	memset(big, 'x', sizeof(big));
	big[12345] = '\0';
	ck_assert_int_eq(cache_setex(&cc, "test:big", big, sizeof(big), 60),
	    CACHE_OK);
	ck_assert_int_eq(cache_get(&cc, &a, "test:big", &got, &len), CACHE_OK);
	ck_assert_uint_eq(len, sizeof(big));
	ck_assert_mem_eq(got, big, sizeof(big));
}
END_TEST

START_TEST(absent_and_deleted_keys)
{
	const char	*del[2] = { "DEL", "test:gone" };
	const char	*got;
	size_t		 len;

	ck_assert_int_eq(cache_setex(&cc, "test:gone", "v", 1, 60), CACHE_OK);
	ck_assert_int_eq(cmd_int(2, del), 1);
	ck_assert_int_eq(cmd_int(2, del), 0);
	got = "stale";
	len = 99;
	ck_assert_int_eq(cache_get(&cc, &a, "test:gone", &got, &len), CACHE_OK);
	ck_assert_ptr_null(got);
	ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(keys_and_values_with_nuls_via_cache_cmd)
{
	const char	*set[3] = { "SET", "k\0ey", "v\0al" };
	const char	*get[2] = { "GET", "k\0ey" };
	const char	*get2[2] = { "GET", "k" };
	size_t		 setlen[3] = { 3, 4, 4 }, getlen[2] = { 3, 4 };
	size_t		 get2len[2] = { 3, 1 };
	redisReply	*r;

	ck_assert_int_eq(cache_cmd(&cc, &r, 3, set, setlen), CACHE_OK);
	freeReplyObject(r);
	ck_assert_int_eq(cache_cmd(&cc, &r, 2, get, getlen), CACHE_OK);
	ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
	ck_assert_uint_eq(r->len, 4);
	ck_assert_mem_eq(r->str, "v\0al", 4);
	freeReplyObject(r);
	/* "k" is another key: the lengths were used, not strlen. */
	ck_assert_int_eq(cache_cmd(&cc, &r, 2, get2, get2len), CACHE_OK);
	ck_assert_int_eq(r->type, REDIS_REPLY_NIL);
	freeReplyObject(r);
}
END_TEST

START_TEST(del_if_deletes_only_the_value_it_names)
{
	const char	*got;
	size_t		 len;

	ck_assert_int_eq(cache_setex(&cc, "test:lock", "mine", 4, 60),
	    CACHE_OK);
	cache_del_if(&cc, "test:lock", "theirs");
	ck_assert_int_eq(cache_get(&cc, &a, "test:lock", &got, &len), CACHE_OK);
	ck_assert_str_eq(got, "mine");
	cache_del_if(&cc, "test:lock", "mine");
	ck_assert_int_eq(cache_get(&cc, &a, "test:lock", &got, &len), CACHE_OK);
	ck_assert_ptr_null(got);
}
END_TEST

START_TEST(lock_is_exclusive_until_it_expires)
{
	const char	*del[2] = { "DEL", "test:mutex" };
	const char	*got;
	size_t		 len;

	(void)cmd_int(2, del);
	ck_assert_int_eq(cache_lock(&cc, "test:mutex", "a", "150"), 1);
	ck_assert_int_eq(cache_lock(&cc, "test:mutex", "b", "150"), 0);
	ck_assert_int_eq(cache_get(&cc, &a, "test:mutex", &got, &len),
	    CACHE_OK);
	ck_assert_str_eq(got, "a");
	usleep(250000);
	ck_assert_int_eq(cache_lock(&cc, "test:mutex", "b", "150"), 1);
}
END_TEST

START_TEST(error_reply_is_cache_error_and_keeps_the_connection)
{
	const char	*incr[2] = { "INCR", "test:notanumber" };
	const char	*bogus[1] = { "NOSUCHCOMMAND" };
	const char	*many[CACHE_CALL_ARGS + 1];
	size_t		 len[CACHE_CALL_ARGS + 1];
	redisReply	*r;
	redisContext	*c;
	int		 i;

	ck_assert_int_eq(cache_setex(&cc, "test:notanumber", "abc", 3, 60),
	    CACHE_OK);
	c = cc.c;
	r = cmd(2, incr, CACHE_ERROR);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(cc.errmsg, "not an integer"));
	r = cmd(1, bogus, CACHE_ERROR);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(cc.errmsg, "unknown command"));
	/* Redis answered: not a failure, and the same connection goes on. */
	ck_assert_ptr_eq(cc.c, c);
	ck_assert_uint_eq(cc.failures, 0);
	ck_assert_int_eq(cc.lost, 0);
	ck_assert_int_eq(cache_ping(&cc), CACHE_OK);

	/* Too many arguments: refused before anything is sent. */
	for (i = 0; i <= CACHE_CALL_ARGS; i++) {
		many[i] = "ECHO";
		len[i] = 4;
	}
	r = (redisReply *)&r;	/* not NULL: the call must clear it */
	ck_assert_int_eq(cache_cmd(&cc, &r, CACHE_CALL_ARGS + 1, many, len),
	    CACHE_ERROR);
	ck_assert_ptr_null(r);
	ck_assert_ptr_eq(cc.c, c);
}
END_TEST

START_TEST(eval_loads_a_script_redis_lacks)
{
	static const char	 lua[] = "return ARGV[1] .. KEYS[1]";
	static const char	 bad[] = "return redis.error_reply('nope')";
	const char		*flush[2] = { "SCRIPT", "FLUSH" };
	const char		*argv[5], *exists[3];
	size_t			 argvlen[5];
	unsigned char		 h[20];
	char			 sha[41];
	redisReply		*r;
	int			 i;

	r = cmd(2, flush, CACHE_OK);
	freeReplyObject(r);
	argv[2] = "1", argv[3] = "key", argv[4] = "val";
	for (i = 2; i < 5; i++)
		argvlen[i] = strlen(argv[i]);
	/* NOSCRIPT, then EVAL: it answers, and the script is loaded. */
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(cache_eval(&cc, &r, lua, 5, argv, argvlen),
		    CACHE_OK);
		ck_assert_int_eq(r->type, REDIS_REPLY_STRING);
		ck_assert_str_eq(r->str, "valkey");
		freeReplyObject(r);
		crypto_sha1(lua, strlen(lua), h);
		crypto_hex(h, sizeof(h), sha);
		exists[0] = "SCRIPT", exists[1] = "EXISTS", exists[2] = sha;
		r = cmd(3, exists, CACHE_OK);
		ck_assert_int_eq(r->type, REDIS_REPLY_ARRAY);
		ck_assert_int_eq(r->element[0]->integer, 1);
		freeReplyObject(r);
	}
	/* A script's own error is CACHE_ERROR, and no reply is left over. */
	ck_assert_int_eq(cache_eval(&cc, &r, bad, 5, argv, argvlen),
	    CACHE_ERROR);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(cc.errmsg, "nope"));
}
END_TEST

START_TEST(eval_calls_pipelined)
{
	static const char	 echo[] = "return ARGV[1]";
	static const char	 fail[] =
	    "return redis.error_reply('bad ' .. ARGV[1])";
	const char		*flush[2] = { "SCRIPT", "FLUSH" };
	struct cache_call	 calls[3];
	redisReply		*r;
	int			 i;

	r = cmd(2, flush, CACHE_OK);
	freeReplyObject(r);
	for (i = 0; i < 3; i++) {
		calls[i].script = i == 1 ? fail : echo;
		calls[i].argc = 4;
		calls[i].argv[2] = "0", calls[i].argvlen[2] = 1;
		calls[i].argv[3] = i == 0 ? "zero" : i == 1 ? "one" : "two";
		calls[i].argvlen[3] = strlen(calls[i].argv[3]);
	}
	/* Twice: every script missing (NOSCRIPT each), then all loaded. */
	for (i = 0; i < 2; i++) {
		cache_eval_calls(&cc, calls, 3);
		ck_assert_int_eq(calls[0].st, CACHE_OK);
		ck_assert_str_eq(calls[0].reply->str, "zero");
		ck_assert_int_eq(calls[1].st, CACHE_ERROR);
		ck_assert_ptr_null(calls[1].reply);
		ck_assert_int_eq(calls[2].st, CACHE_OK);
		ck_assert_str_eq(calls[2].reply->str, "two");
		freeReplyObject(calls[0].reply);
		freeReplyObject(calls[2].reply);
	}
}
END_TEST

/*
 * More scripts in one batch than script_sha remembers: each call must run
 * its own (the memo once handed the last slot to every later script, so
 * an earlier call of the batch ran a later call's script).
 */
START_TEST(more_than_eight_scripts_in_one_batch)
{
	static const char	 lua[10][32] = {
		"return 'script0'", "return 'script1'", "return 'script2'",
		"return 'script3'", "return 'script4'", "return 'script5'",
		"return 'script6'", "return 'script7'", "return 'script8'",
		"return 'script9'"
	};
	struct cache_call	 calls[10];
	char			 want[16];
	int			 i, round;

	for (round = 0; round < 2; round++) {
		for (i = 0; i < 10; i++) {
			calls[i].script = lua[i];
			calls[i].argc = 3;
			calls[i].argv[2] = "0", calls[i].argvlen[2] = 1;
		}
		cache_eval_calls(&cc, calls, 10);
		for (i = 0; i < 10; i++) {
			ck_assert_int_eq(calls[i].st, CACHE_OK);
			snprintf(want, sizeof(want), "script%d", i);
			ck_assert_str_eq(calls[i].reply->str, want);
			freeReplyObject(calls[i].reply);
		}
	}
}
END_TEST

START_TEST(no_server_is_unavailable_at_once)
{
	struct sockaddr_in	 sin;
	socklen_t		 sl = sizeof(sin);
	redisReply		*r;
	const char		*got;
	char			 addr[64];
	size_t			 len;
	int64_t			 t0;
	int			 s;

	open_cache("/nonexistent/redis.sock", NULL);
	t0 = util_mono_us();
	ck_assert_int_eq(cache_get(&cc, &a, "k", &got, &len),
	    CACHE_UNAVAILABLE);
	ck_assert_int_eq(cache_ping(&cc), CACHE_UNAVAILABLE);
	ck_assert_int_eq(cache_setex(&cc, "k", "v", 1, 1), CACHE_UNAVAILABLE);
	ck_assert_int_eq(cache_lock(&cc, "k", "o", "100"), -1);
	cache_del_if(&cc, "k", "v");
	ck_assert_int_eq(cache_eval(&cc, &r, "return 1", 2,
	    (const char *[2]){ NULL, NULL }, (size_t[2]){ 0, 0 }),
	    CACHE_UNAVAILABLE);
	ck_assert_ptr_null(r);
	ck_assert_int_lt(svc_ms_since(t0), 100);
	ck_assert_ptr_null(got);
	ck_assert_ptr_null(cc.c);
	ck_assert_uint_eq(cc.failures, 6);
	ck_assert_int_eq(cc.lost, 1);
	ck_assert_int_eq(cc.timed_out, 0);
	ck_assert_int_eq(cache_connect(&cc), -1);
	ck_assert_str_ne(cc.errmsg, "");

	/* A TCP port bound by no listener: refused, at once. */
	s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ne(s, -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));
	open_cache(addr, NULL);
	t0 = util_mono_us();
	ck_assert_int_eq(cache_ping(&cc), CACHE_UNAVAILABLE);
	ck_assert_int_lt(svc_ms_since(t0), 100);
	ck_assert_int_eq(cc.timed_out, 0);
	close(s);

	/* An address of neither form. */
	open_cache("localhost", NULL);
	ck_assert_int_eq(cache_connect(&cc), -1);
	ck_assert_ptr_nonnull(strstr(cc.errmsg, "host:port"));
	open_cache("localhost:http", NULL);
	ck_assert_int_eq(cache_connect(&cc), -1);
	ck_assert_ptr_nonnull(strstr(cc.errmsg, "host:port"));
}
END_TEST

START_TEST(down_then_back_connects_again)
{
	struct svc_redis	 rs = { 0 };
	const char		*got;
	size_t			 len;
	int64_t			 t0;

	svc_redis_start(&rs);
	open_cache(rs.sock, NULL);
	cc.on_recover = on_recover;
	cc.recover_arg = &recovered;
	ck_assert_int_eq(cache_setex(&cc, "k", "v", 1, 60), CACHE_OK);
	svc_redis_stop(&rs);

	/* Down: unavailable at once (the socket is gone), no crash. */
	t0 = util_mono_us();
	ck_assert_int_eq(cache_get(&cc, &a, "k", &got, &len),
	    CACHE_UNAVAILABLE);
	ck_assert_int_eq(cache_get(&cc, &a, "k", &got, &len),
	    CACHE_UNAVAILABLE);
	ck_assert_int_lt(svc_ms_since(t0), 150);
	ck_assert_ptr_null(cc.c);
	ck_assert_uint_eq(cc.failures, 2);
	ck_assert_int_eq(cc.timed_out, 0);
	ck_assert_int_eq(recovered, 0);

	/* Back (empty): the next command connects, and says so once. */
	svc_redis_start(&rs);
	ck_assert_int_eq(cache_get(&cc, &a, "k", &got, &len), CACHE_OK);
	ck_assert_ptr_null(got);
	ck_assert_int_eq(recovered, 1);
	ck_assert_int_eq(cc.lost, 0);
	ck_assert_int_eq(cache_ping(&cc), CACHE_OK);
	ck_assert_int_eq(recovered, 1);
	ck_assert_uint_eq(cc.failures, 2);
	svc_redis_stop(&rs);
}
END_TEST

START_TEST(restart_under_an_idle_connection_is_retried)
{
	struct svc_redis	 rs = { 0 };
	int64_t			 born;

	svc_redis_start(&rs);
	open_cache(rs.sock, NULL);
	cc.on_recover = on_recover;
	cc.recover_arg = &recovered;
	ck_assert_int_eq(cache_ping(&cc), CACHE_OK);
	born = cc.c_born_us;
	usleep(5000);	/* no longer a fresh connection */
	svc_redis_stop(&rs);
	svc_redis_start(&rs);
	/* The old connection fails at once: reconnect and retry, one call. */
	ck_assert_int_eq(cache_ping(&cc), CACHE_OK);
	ck_assert_ptr_nonnull(cc.c);
	ck_assert_int_gt(cc.c_born_us, born);
	ck_assert_uint_eq(cc.failures, 0);
	ck_assert_int_eq(recovered, 1);
	svc_redis_stop(&rs);
}
END_TEST

START_TEST(hang_times_out_and_opens_the_breaker)
{
	struct svc_redis	 rs = { 0 };
	struct guard		*g = new_guard();
	struct breaker		*br = g->br;
	enum cache_status	 st[3];
	long			 ms[3];
	int			 timed_out[3], i;
	const char		*got;
	size_t			 len;
	int64_t			 t0;

	svc_redis_start(&rs);
	open_cache(rs.sock, g);
	/* Longer: a connection left with this read timeout would show. */
	cc.o.connect_timeout_ms = 3000;
	ck_assert_int_eq(cache_ping(&cc), CACHE_OK);

	/* No assertions while Redis is stopped: see svc_freeze. */
	svc_freeze(rs.pid, 10000);
	for (i = 0; i < 3; i++) {
		t0 = util_mono_us();
		st[i] = cache_get(&cc, &a, "k", &got, &len);
		ms[i] = svc_ms_since(t0);
		timed_out[i] = cc.timed_out;
	}
	svc_thaw(rs.pid);

	/*
	 * The first two wait out the 200 ms command timeout, no retry (the
	 * second on a new connection: the timeout was set on it too)...
	 */
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(st[i], CACHE_UNAVAILABLE);
		ck_assert_int_eq(timed_out[i], 1);
		ck_assert_int_ge(ms[i], 180);
		ck_assert_int_lt(ms[i], 1000);
	}
	/* ... and then the breaker is open: the third fails at once. */
	ck_assert_int_eq(st[2], CACHE_UNAVAILABLE);
	ck_assert_int_lt(ms[2], 20);
	ck_assert_int_eq(br->state, BREAKER_OPEN);
	ck_assert_uint_eq(br->rejected, 1);
	ck_assert_uint_eq(cc.failures, 3);
	ck_assert_ptr_null(cc.c);

	/* Redis answers again; after open_ms a trial call closes it. */
	ck_assert_int_eq(cache_ping(&cc), CACHE_UNAVAILABLE);
	usleep(350000);
	ck_assert_int_eq(cache_ping(&cc), CACHE_OK);
	ck_assert_int_eq(br->state, BREAKER_CLOSED);
	svc_redis_stop(&rs);
	cache_close(&cc);
	svc_guard_free(g);
}
END_TEST

START_TEST(auth_with_the_password)
{
	struct svc_redis	rs = { .password = "s3cret with spaces" };
	struct cache_opts	o = { .password = "s3cret with spaces",
	    .connect_timeout_ms = 200, .command_timeout_ms = 200 };

	svc_redis_start(&rs);
	o.addr = rs.sock;
	cache_init(&cc, &o);
	ck_assert_int_eq(cache_ping(&cc), CACHE_OK);
	cache_close(&cc);
	/* A wrong one: no connection, and no command goes out. */
	o.password = "wrong";
	cache_init(&cc, &o);
	ck_assert_int_eq(cache_connect(&cc), -1);
	ck_assert_int_eq(cache_ping(&cc), CACHE_UNAVAILABLE);
	ck_assert_ptr_null(cc.c);
	ck_assert_int_eq(cc.timed_out, 0);
	/* None: Redis refuses the command itself. */
	o.password = "";
	cache_init(&cc, &o);
	ck_assert_int_eq(cache_ping(&cc), CACHE_ERROR);
	ck_assert_ptr_nonnull(strstr(cc.errmsg, "NOAUTH"));
	cache_close(&cc);
	svc_redis_stop(&rs);
}
END_TEST

START_TEST(busy_time_is_accounted)
{
	const char	*argv[3] = { "BLPOP", "test:nosuchlist", "0.05" };
	redisReply	*r;

	ck_assert_int_eq(cache_ping(&cc), CACHE_OK);
	cc.busy_us = 0;
	/* Redis answers after 50 ms: the list stays empty. */
	r = cmd(3, argv, CACHE_OK);
	ck_assert_int_eq(r->type, REDIS_REPLY_NIL);
	freeReplyObject(r);
	ck_assert_int_ge(cc.busy_us, 45000);
	ck_assert_int_lt(cc.busy_us, 1000000);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("cache");
	TCase	*tc = tcase_create("cache");

	/*
	 * hiredis writes with write(2): a connection Redis closed raises
	 * SIGPIPE, which the program ignores (wxapp-fcgi.c), as must we.
	 */
	signal(SIGPIPE, SIG_IGN);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, connects_over_a_unix_socket);
	tcase_add_test(tc, binary_values_round_trip);
	tcase_add_test(tc, absent_and_deleted_keys);
	tcase_add_test(tc, keys_and_values_with_nuls_via_cache_cmd);
	tcase_add_test(tc, del_if_deletes_only_the_value_it_names);
	tcase_add_test(tc, lock_is_exclusive_until_it_expires);
	tcase_add_test(tc, error_reply_is_cache_error_and_keeps_the_connection);
	tcase_add_test(tc, eval_loads_a_script_redis_lacks);
	tcase_add_test(tc, eval_calls_pipelined);
	tcase_add_test(tc, no_server_is_unavailable_at_once);
	tcase_add_test(tc, down_then_back_connects_again);
	tcase_add_test(tc, restart_under_an_idle_connection_is_retried);
	tcase_add_test(tc, hang_times_out_and_opens_the_breaker);
	tcase_add_test(tc, auth_with_the_password);
	tcase_add_test(tc, busy_time_is_accounted);
	tcase_add_test(tc, more_than_eight_scripts_in_one_batch);
	suite_add_tcase(s, tc);
	return check_run(s);
}

/*
 * Unit tests for lib/nearcache: when a responder's copy may be used.  The
 * invalidation connection is one end of a socketpair on which the test
 * writes what Redis would send.
 */
#include "check_run.h"
#include <sys/socket.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "nearcache.h"

static struct cache_opts	 redis;
static struct nearcache_opts	 o;
static struct nearcache	 nc;
static struct cache	 main_cc;
static const char *const collections[] = { "users", "items", "auth", NULL };
static uint64_t		 changes[3];
static int		 redis_end;	/* where "Redis" writes */
static struct hc_entry	 e;

enum { USERS, ITEMS, AUTH };

/* O_ASYNC on fd (SIGIO to us when data comes), or off. */
static void
async_io(int fd, int on)
{
	int	fl = fcntl(fd, F_GETFL);

	ck_assert_int_ne(fl, -1);
	ck_assert_int_ne(fcntl(fd, F_SETOWN, getpid()), -1);
	ck_assert_int_ne(fcntl(fd, F_SETFL, on ? fl | O_ASYNC :
	    fl & ~O_ASYNC), -1);
}

/* Set nc up as track() leaves it: connected, subscribed, signalling. */
static void
start(void)
{
	int	sv[2];

	nearcache_init(&nc, &o);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	nc.conn.c = redisConnectFd(sv[0]);
	ck_assert_ptr_nonnull(nc.conn.c);
	nc.reader = redisReaderCreate();
	ck_assert_ptr_nonnull(nc.reader);
	nc.tracking = 1;
	async_io(sv[0], 1);
	redis_end = sv[1];
}

static void
setup(void)
{
	memset(&redis, 0, sizeof(redis));
	redis.addr = "/nonexistent";
	redis.password = "";
	memset(&o, 0, sizeof(o));
	o.redis = &redis;
	o.changes = changes;
	o.collections = collections;
	o.subject_prefix = "wx:rv:";
	o.max_bytes = 1 << 20;
	o.ttl_s = 300;
	o.negative_ttl_s = 30;
	o.cache_control = "public, no-cache";
	memset(changes, 0, sizeof(changes));
	start();
	memset(&main_cc, 0, sizeof(main_cc));
	memset(&e, 0, sizeof(e));
	e.status = 200;
	e.body = "{\"code\":0}";
	e.body_len = strlen(e.body);
	httpcache_set_etag(&e);
}

static void
teardown(void)
{
	nearcache_free(&nc);
	close(redis_end);
}

/* Send what Redis would, as RESP. */
static void
redis_says(const char *resp)
{
	ck_assert_int_eq(write(redis_end, resp, strlen(resp)),
	    (ssize_t)strlen(resp));
}

/* An invalidation message for one key. */
static void
invalidate(const char *key)
{
	char	m[256];

	snprintf(m, sizeof(m), "*3\r\n$7\r\nmessage\r\n$20\r\n"
	    "__redis__:invalidate\r\n*1\r\n$%zu\r\n%s\r\n", strlen(key), key);
	redis_says(m);
}

/* Store key in coll as a fresh fetch would. */
static void
put(int coll, const char *key)
{
	ck_assert_int_eq(nearcache_sync(&nc, &main_cc), 1);
	nearcache_put(&nc, coll, key, nearcache_mark(&nc, coll), &e);
}

/* Whether a request now finds its copy of key. */
static int
has(int coll, const char *key)
{
	return nearcache_sync(&nc, &main_cc) &&
	    nearcache_get(&nc, coll, key) != NULL;
}

START_TEST(test_hit_is_the_entry)
{
	const struct hc_entry	*got;
	char			 hdrs[256];

	ck_assert_int_eq(nearcache_collection(&nc, "items"), ITEMS);
	ck_assert_int_eq(nearcache_collection(&nc, "nope"), -1);
	put(ITEMS, "list:1:20");
	got = nearcache_get(&nc, ITEMS, "list:1:20");
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got->etag, e.etag);
	ck_assert_int_eq(got->body_len, e.body_len);
	ck_assert_int_eq(memcmp(got->body, e.body, e.body_len), 0);
	ck_assert_ptr_ne(got->body, e.body);	/* a copy */
	/* Its header lines made once: ETag, Cache-Control (no date: 0). */
	ck_assert_ptr_nonnull(got->headers);
	ck_assert_uint_lt(got->headers_len, sizeof(hdrs));
	memcpy(hdrs, got->headers, got->headers_len);
	hdrs[got->headers_len] = '\0';
	ck_assert_int_eq(strncmp(hdrs, "ETag: ", 6), 0);
	ck_assert_ptr_nonnull(strstr(hdrs,
	    "\r\nCache-Control: public, no-cache\r\n"));
	ck_assert_ptr_null(strstr(hdrs, "Last-Modified"));
	ck_assert_ptr_null(nearcache_get(&nc, USERS, "list:1:20"));
	ck_assert_ptr_null(nearcache_get(&nc, ITEMS, "list:1:2"));
	ck_assert_uint_eq(nc.hits, 1);
}
END_TEST

START_TEST(test_write_on_this_host)
{
	uint64_t	mark;

	put(ITEMS, "one:7");
	put(USERS, "one:7");
	nearcache_wrote(changes, ITEMS);
	ck_assert_int_eq(has(ITEMS, "one:7"), 0);
	ck_assert_int_eq(has(USERS, "one:7"), 1);
	/* Fetched before a write, stored after it: never used. */
	mark = nearcache_mark(&nc, ITEMS);
	nearcache_wrote(changes, ITEMS);
	nearcache_put(&nc, ITEMS, "one:8", mark, &e);
	ck_assert_int_eq(has(ITEMS, "one:8"), 0);
}
END_TEST

START_TEST(test_write_reported_by_redis)
{
	put(ITEMS, "one:7");
	put(USERS, "one:7");
	invalidate("wx:ver:items");
	ck_assert_int_eq(has(ITEMS, "one:7"), 0);
	ck_assert_int_eq(has(USERS, "one:7"), 1);
	ck_assert_uint_eq(nc.invalidations, 1);
	/* A key we cannot place drops everything. */
	put(ITEMS, "one:7");
	invalidate("wx:ver:orders");
	ck_assert_int_eq(has(USERS, "one:7"), 0);
	ck_assert_int_eq(has(ITEMS, "one:7"), 0);
	/* FLUSHALL: a null instead of keys. */
	put(ITEMS, "one:7");
	redis_says("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
	    "$-1\r\n");
	ck_assert_int_eq(has(ITEMS, "one:7"), 0);
	ck_assert_int_eq(nc.tracking, 1);
}
END_TEST

START_TEST(test_read_when_signalled)
{
	put(ITEMS, "one:7");
	/* Without SIGIO nothing is read: no system call on a hit. */
	async_io(nc.conn.c->fd, 0);
	invalidate("wx:ver:items");
	ck_assert_int_eq(has(ITEMS, "one:7"), 1);
	raise(SIGIO);
	ck_assert_int_eq(has(ITEMS, "one:7"), 0);
}
END_TEST

START_TEST(test_half_a_message_is_not_trusted)
{
	put(ITEMS, "one:7");
	redis_says("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:inval");
	ck_assert_int_eq(nearcache_sync(&nc, &main_cc), 0);
	redis_says("idate\r\n*1\r\n$12\r\nwx:ver:users\r\n");
	ck_assert_int_eq(has(ITEMS, "one:7"), 1);
}
END_TEST

/* Whole messages of every shape leave nothing half-read behind. */
START_TEST(test_whole_messages_are_trusted)
{
	put(ITEMS, "one:7");
	redis_says("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
	    "*2\r\n$12\r\nwx:ver:users\r\n$10\r\nwx:rv:1234\r\n"
	    "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
	    "$12\r\nwx:ver:users\r\n");
	ck_assert_int_eq(nearcache_sync(&nc, &main_cc), 1);
	ck_assert_int_eq(has(ITEMS, "one:7"), 1);
	/* FLUSHALL: a nil list of keys. */
	redis_says("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
	    "*-1\r\n");
	ck_assert_int_eq(nearcache_sync(&nc, &main_cc), 1);
	ck_assert_int_eq(has(ITEMS, "one:7"), 0);
}
END_TEST

/* Synced with SIGIO blocked, a write could go unnoticed: refused. */
START_TEST(test_sigio_blocked_is_a_bug)
{
	sigset_t	set;

	sigemptyset(&set);
	sigaddset(&set, SIGIO);
	sigprocmask(SIG_BLOCK, &set, NULL);
	(void)nearcache_sync(&nc, &main_cc);
}
END_TEST

START_TEST(test_lost_connection_drops_everything)
{
	put(ITEMS, "one:7");
	close(redis_end);
	redis_end = -1;
	ck_assert_int_eq(nearcache_sync(&nc, &main_cc), 0);
	ck_assert_int_eq(nc.tracking, 0);
	ck_assert_ptr_null(nc.conn.c);
	ck_assert_uint_eq(nc.bytes, 0);
	/* main is down too: no reconnect attempt, no copies. */
	ck_assert_int_eq(nearcache_sync(&nc, &main_cc), 0);
	nearcache_put(&nc, ITEMS, "one:7", nearcache_mark(&nc, ITEMS), &e);
	ck_assert_uint_eq(nc.bytes, 0);
}
END_TEST

START_TEST(test_falling_behind_drops_everything)
{
	static const char	 m[] = "*3\r\n$7\r\nmessage\r\n$20\r\n"
				    "__redis__:invalidate\r\n*1\r\n$12\r\n"
				    "wx:ver:users\r\n";
	static char		 many[NEARCACHE_DRAIN_MAX + sizeof(m)];
	size_t			 n = 0;

	put(ITEMS, "one:7");
	/* Much at once: Redis may be holding the rest back. */
	while (n <= NEARCACHE_DRAIN_MAX) {
		memcpy(many + n, m, sizeof(m) - 1);
		n += sizeof(m) - 1;
	}
	many[n] = '\0';
	redis_says(many);
	ck_assert_int_eq(nearcache_sync(&nc, &main_cc), 0);
	ck_assert_int_eq(nc.tracking, 0);
	ck_assert_uint_eq(nc.bytes, 0);
}
END_TEST

START_TEST(test_bounded_in_bytes)
{
	char	key[32];
	int	i;

	nc.o.max_bytes = 4096;
	for (i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "one:%d", i);
		put(ITEMS, key);
		ck_assert_uint_le(nc.bytes, 4096);
	}
	ck_assert_uint_gt(nc.bytes, 0);
	/* No room at all: no copies, though the connection vouches on. */
	o.max_bytes = 0;
	teardown();
	start();
	put(ITEMS, "one:1");
	ck_assert_uint_eq(nc.bytes, 0);
	ck_assert_int_eq(has(ITEMS, "one:1"), 0);
}
END_TEST

/* A stamp for subject 42 of AUTH, taken now. */
static struct nc_stamp
stamp42(void)
{
	struct nc_stamp	st;

	ck_assert_int_eq(nearcache_stamp(&nc, &main_cc, AUTH, "42", &st), 1);
	return st;
}

START_TEST(test_stamp_outlived_by_its_subject)
{
	struct nc_stamp	st = stamp42();

	ck_assert_int_eq(nearcache_current(&nc, &main_cc, &st), 1);
	/* Another subject, another collection: still current. */
	invalidate("wx:rv:43");
	invalidate("wx:ver:items");
	raise(SIGIO);
	ck_assert_int_eq(nearcache_current(&nc, &main_cc, &st), 1);
	invalidate("wx:rv:42");
	raise(SIGIO);
	ck_assert_int_eq(nearcache_current(&nc, &main_cc, &st), 0);
	/* A fresh stamp is current again. */
	st = stamp42();
	ck_assert_int_eq(nearcache_current(&nc, &main_cc, &st), 1);
}
END_TEST

START_TEST(test_stamp_outlived_by_its_collection)
{
	struct nc_stamp	st = stamp42();

	invalidate("wx:ver:auth");
	raise(SIGIO);
	ck_assert_int_eq(nearcache_current(&nc, &main_cc, &st), 0);
	st = stamp42();
	nearcache_wrote(changes, AUTH);
	ck_assert_int_eq(nearcache_current(&nc, &main_cc, &st), 0);
	st = stamp42();
	redis_says("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
	    "$-1\r\n");
	raise(SIGIO);
	ck_assert_int_eq(nearcache_current(&nc, &main_cc, &st), 0);
}
END_TEST

START_TEST(test_stamp_needs_the_connection)
{
	struct nc_stamp	st = stamp42();

	close(redis_end);
	redis_end = -1;
	raise(SIGIO);
	ck_assert_int_eq(nearcache_current(&nc, &main_cc, &st), 0);
	ck_assert_int_eq(nearcache_stamp(&nc, &main_cc, AUTH, "42", &st), 0);
}
END_TEST

START_TEST(test_negative_entries_live_shorter)
{
	const struct hc_entry	*got;

	e.status = 404;
	put(ITEMS, "one:9");
	ck_assert_ptr_nonnull(nearcache_get(&nc, ITEMS, "one:9"));
	nc.o.negative_ttl_s = 0;
	usleep(2000);
	got = nearcache_get(&nc, ITEMS, "one:9");
	ck_assert_ptr_null(got);
	ck_assert_uint_eq(nc.bytes, 0);
}
END_TEST

static Suite *
suite(void)
{
	Suite	*s = suite_create("nearcache");
	TCase	*tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_hit_is_the_entry);
	tcase_add_test(tc, test_write_on_this_host);
	tcase_add_test(tc, test_write_reported_by_redis);
	tcase_add_test(tc, test_read_when_signalled);
	tcase_add_test(tc, test_half_a_message_is_not_trusted);
	tcase_add_test(tc, test_whole_messages_are_trusted);
	tcase_add_test_raise_signal(tc, test_sigio_blocked_is_a_bug, SIGABRT);
	tcase_add_test(tc, test_lost_connection_drops_everything);
	tcase_add_test(tc, test_falling_behind_drops_everything);
	tcase_add_test(tc, test_bounded_in_bytes);
	tcase_add_test(tc, test_negative_entries_live_shorter);
	tcase_add_test(tc, test_stamp_outlived_by_its_subject);
	tcase_add_test(tc, test_stamp_outlived_by_its_collection);
	tcase_add_test(tc, test_stamp_needs_the_connection);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(suite());
}

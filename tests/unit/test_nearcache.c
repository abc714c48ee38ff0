/*
 * Unit tests for lib/nearcache: when a copy may be used.  The invalidation
 * connection is one end of a socketpair on which the test writes what
 * Redis would send; the store is shared memory, as the pool's is.
 */
#include "check_run.h"
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "keys.h"
#include "nearcache.h"

#define STORE_BYTES	(1 << 20)
/* The subjects' prefix, the test's own (a program picks it). */
#define SUBJECTS	"wx:rv:"

static struct cache_opts	 redis;
static struct nearcache_opts	 o;
static struct nearcache	 nc;
static struct cache	 main_cc;
static struct arena	 a;
static void		*store;
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
	o.subject_prefix = SUBJECTS;
	store = mmap(NULL, STORE_BYTES, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(store, MAP_FAILED);
	o.store = store;
	o.store_bytes = STORE_BYTES;
	o.ttl_s = 300;
	o.negative_ttl_s = 30;
	o.cache_control = "public, no-cache";
	memset(changes, 0, sizeof(changes));
	arena_init(&a, 4096, 4096);
	start();
	memset(&main_cc, 0, sizeof(main_cc));
	memset(&e, 0, sizeof(e));
	e.status = 200;
	e.body = "{\"code\":0}";
	e.body_len = strlen(e.body);
	httpcache_set_etag(&e);
}

/* The process ends; the host's store and counters stay. */
static void
teardown_keep_store(void)
{
	nearcache_free(&nc);
	if (redis_end != -1)
		close(redis_end);
}

static void
teardown(void)
{
	teardown_keep_store();
	arena_free(&a);
	munmap(store, STORE_BYTES);
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
	    nearcache_get(&nc, &a, coll, key) != NULL;
}

START_TEST(test_hit_is_the_entry)
{
	const struct hc_entry	*got;
	char			 hdrs[256];

	ck_assert_int_eq(nearcache_collection(&nc, "items"), ITEMS);
	ck_assert_int_eq(nearcache_collection(&nc, "nope"), -1);
	put(ITEMS, "list:1:20");
	got = nearcache_get(&nc, &a, ITEMS, "list:1:20");
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got->etag, e.etag);
	ck_assert_int_eq(got->body_len, e.body_len);
	ck_assert_int_eq(memcmp(got->body, e.body, e.body_len), 0);
	ck_assert_ptr_ne(got->body, e.body);	/* a copy */
	ck_assert(got->body < (const char *)store ||
	    got->body >= (const char *)store + STORE_BYTES);	/* of a copy */
	/* Its header lines made once: ETag, Cache-Control (no date: 0). */
	ck_assert_ptr_nonnull(got->headers);
	ck_assert_uint_lt(got->headers_len, sizeof(hdrs));
	memcpy(hdrs, got->headers, got->headers_len);
	hdrs[got->headers_len] = '\0';
	ck_assert_int_eq(strncmp(hdrs, "ETag: ", 6), 0);
	ck_assert_ptr_nonnull(strstr(hdrs,
	    "\r\nCache-Control: public, no-cache\r\n"));
	ck_assert_ptr_null(strstr(hdrs, "Last-Modified"));
	ck_assert_ptr_null(nearcache_get(&nc, &a, USERS, "list:1:20"));
	ck_assert_ptr_null(nearcache_get(&nc, &a, ITEMS, "list:1:2"));
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
	invalidate(KEYS_VERSION "items");
	ck_assert_int_eq(has(ITEMS, "one:7"), 0);
	ck_assert_int_eq(has(USERS, "one:7"), 1);
	ck_assert_uint_eq(nc.invalidations, 1);
	/* A key we cannot place drops everything. */
	put(ITEMS, "one:7");
	invalidate(KEYS_VERSION "orders");
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
	invalidate(KEYS_VERSION "items");
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
	redis_says("idate\r\n*1\r\n$12\r\n" KEYS_VERSION "users\r\n");
	ck_assert_int_eq(has(ITEMS, "one:7"), 1);
}
END_TEST

/* Whole messages of every shape leave nothing half-read behind. */
START_TEST(test_whole_messages_are_trusted)
{
	put(ITEMS, "one:7");
	redis_says("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
	    "*2\r\n$12\r\n" KEYS_VERSION "users\r\n$10\r\n" SUBJECTS "1234\r\n"
	    "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"
	    "$12\r\n" KEYS_VERSION "users\r\n");
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
	uint64_t	cursor;

	put(ITEMS, "one:7");
	cursor = *nc.cursor;
	close(redis_end);
	redis_end = -1;
	ck_assert_int_eq(nearcache_sync(&nc, &main_cc), 0);
	ck_assert_int_eq(nc.tracking, 0);
	ck_assert_ptr_null(nc.conn.c);
	/* main is down too: no reconnect attempt, no copies. */
	ck_assert_int_eq(nearcache_sync(&nc, &main_cc), 0);
	nearcache_put(&nc, ITEMS, "one:7", nearcache_mark(&nc, ITEMS), &e);
	ck_assert_uint_eq(*nc.cursor, cursor);
	/* Connected again: what was stored before cannot be vouched for. */
	teardown_keep_store();
	start();
	ck_assert_int_eq(has(ITEMS, "one:7"), 0);
}
END_TEST

START_TEST(test_falling_behind_drops_everything)
{
	static const char	 m[] = "*3\r\n$7\r\nmessage\r\n$20\r\n"
				    "__redis__:invalidate\r\n*1\r\n$12\r\n"
				    KEYS_VERSION "users\r\n";
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
	teardown_keep_store();
	start();
	ck_assert_int_eq(has(ITEMS, "one:7"), 0);
}
END_TEST

/* A body that names its key, to tell one record from another. */
static void
put_named(struct nearcache *n, const char *key, char *body, size_t len)
{
	struct hc_entry	named = e;
	size_t		klen = strlen(key);

	memset(body, 'x', len);
	memcpy(body, key, klen < len ? klen : len);
	named.body = body;
	named.body_len = len;
	ck_assert_int_eq(nearcache_sync(n, &main_cc), 1);
	nearcache_put(n, ITEMS, key, nearcache_mark(n, ITEMS), &named);
}

/* Whether key's copy is there and is key's own. */
static int
has_named(struct nearcache *n, const char *key)
{
	const struct hc_entry	*got;

	arena_reset(&a);
	if (!nearcache_sync(n, &main_cc) ||
	    (got = nearcache_get(n, &a, ITEMS, key)) == NULL)
		return 0;
	ck_assert_uint_ge(got->body_len, strlen(key));
	ck_assert_int_eq(memcmp(got->body, key, strlen(key)), 0);
	return 1;
}

START_TEST(test_the_ring_comes_round)
{
	static char	body[1000];
	char		key[32];
	int		i, kept = 0;

	/* 3,000 records of about 1 KiB through a 1 MiB store. */
	for (i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "one:%d", i);
		put_named(&nc, key, body, sizeof(body));
	}
	ck_assert_uint_gt(*nc.cursor, STORE_BYTES);
	for (i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "one:%d", i);
		if (has_named(&nc, key)) {
			kept++;
			ck_assert_int_ge(i, 2000);	/* written over */
		}
	}
	ck_assert_int_gt(kept, 500);
	/* Too big for a quarter of the ring: not kept. */
	{
		static char	big[STORE_BYTES / 4];

		put_named(&nc, "one:big", big, sizeof(big));
		ck_assert_int_eq(has_named(&nc, "one:big"), 0);
	}
}
END_TEST

/* A record that the ring came round to while it was copied is not used. */
START_TEST(test_written_over_while_copied)
{
	put(ITEMS, "one:7");
	ck_assert_int_eq(has(ITEMS, "one:7"), 1);
	/* As if writers had reserved a whole ring since (and not written). */
	*nc.cursor += nc.ring_bytes;
	ck_assert_int_eq(has(ITEMS, "one:7"), 0);
}
END_TEST

START_TEST(test_too_small_a_store_keeps_nothing)
{
	o.store_bytes = 4096;
	teardown_keep_store();
	start();
	put(ITEMS, "one:1");
	ck_assert_int_eq(has(ITEMS, "one:1"), 0);
	ck_assert_uint_eq(*(uint64_t *)store, 0);
	o.store = NULL;
	o.store_bytes = STORE_BYTES;
	teardown_keep_store();
	start();
	put(ITEMS, "one:1");
	ck_assert_int_eq(has(ITEMS, "one:1"), 0);
}
END_TEST

/* A second process of the host, on the same store and counters. */
static void
other_start(struct nearcache *n, int *their_redis)
{
	int	sv[2];

	nearcache_init(n, &o);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	n->conn.c = redisConnectFd(sv[0]);
	n->reader = redisReaderCreate();
	n->tracking = 1;
	*their_redis = sv[1];
}

START_TEST(test_one_copy_per_host)
{
	struct nearcache	 other;
	static char		 body[300];
	int			 their_redis;
	pid_t			 pid;
	int			 status;

	other_start(&other, &their_redis);
	/* Stored by one process, used by another. */
	put_named(&other, "one:1", body, sizeof(body));
	ck_assert_int_eq(has_named(&nc, "one:1"), 1);
	ck_assert_int_eq(has_named(&other, "one:1"), 1);
	/* A forked process's copy too: the store is shared memory. */
	if ((pid = fork()) == 0) {
		put_named(&other, "one:2", body, sizeof(body));
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(has_named(&nc, "one:2"), 1);
	/*
	 * What one process hears from Redis outdates the copy for all: the
	 * other's connection is slower, but the host's counter moved.
	 */
	invalidate(KEYS_VERSION "items");
	raise(SIGIO);
	ck_assert_int_eq(nearcache_sync(&nc, &main_cc), 1);
	ck_assert_int_eq(has_named(&other, "one:1"), 0);
	ck_assert_int_eq(has_named(&other, "one:2"), 0);
	nearcache_free(&other);
	close(their_redis);
}
END_TEST

/*
 * A writer storing records as fast as it can while a reader reads them:
 * every copy the reader gets is whole and is the key's own.
 */
START_TEST(test_readers_never_see_half_a_record)
{
	static char	body[2000];
	char		key[32];
	int		i, status, hits = 0;
	pid_t		pid;
	const struct hc_entry	*got;

	/* The smallest store: the ring comes round every 25 records. */
	o.store_bytes = 64 * 1024;
	teardown_keep_store();
	start();
	if ((pid = fork()) == 0) {
		for (i = 0; i < 200000; i++) {
			snprintf(key, sizeof(key), "one:%d", i % 64);
			memset(body, 'a' + i % 26, sizeof(body));
			memcpy(body, key, strlen(key));
			e.body = body;
			e.body_len = sizeof(body) - (size_t)(i % 500);
			nearcache_put(&nc, ITEMS, key, 0, &e);
		}
		_exit(0);
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		for (i = 0; i < 64; i++) {
			snprintf(key, sizeof(key), "one:%d", i);
			arena_reset(&a);
			if ((got = nearcache_get(&nc, &a, ITEMS, key)) == NULL)
				continue;
			hits++;
			ck_assert_int_eq(memcmp(got->body, key, strlen(key)),
			    0);
			/* One letter all through: not two records mixed. */
			ck_assert_int_eq(memcmp(got->body + 20,
			    got->body + 21, got->body_len - 21), 0);
		}
	}
	ck_assert_int_eq(status, 0);
	ck_assert_int_gt(hits, 0);
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
	invalidate(SUBJECTS "43");
	invalidate(KEYS_VERSION "items");
	raise(SIGIO);
	ck_assert_int_eq(nearcache_current(&nc, &main_cc, &st), 1);
	invalidate(SUBJECTS "42");
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

	invalidate(KEYS_VERSION "auth");
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
	ck_assert_ptr_nonnull(nearcache_get(&nc, &a, ITEMS, "one:9"));
	nc.o.negative_ttl_s = 0;
	usleep(2000);
	got = nearcache_get(&nc, &a, ITEMS, "one:9");
	ck_assert_ptr_null(got);
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
	tcase_add_test(tc, test_the_ring_comes_round);
	tcase_add_test(tc, test_written_over_while_copied);
	tcase_add_test(tc, test_too_small_a_store_keeps_nothing);
	tcase_add_test(tc, test_one_copy_per_host);
	tcase_add_test(tc, test_readers_never_see_half_a_record);
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

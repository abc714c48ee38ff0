/*
 * Unit tests for lib/scoreboard: slots handed out and reused, the
 * per-request counters, the pool's counters (also from several processes
 * at once, as in shared memory), and the JSON of GET /status.
 */
#include "check_run.h"
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "scoreboard.h"

#define S	1000000LL	/* one second in us */

static struct scoreboard	*sb;
static struct arena		 a;

/* A board in memory shared with the children a test forks. */
static void
setup(void)
{
	sb = mmap(NULL, sizeof(*sb), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sb, MAP_FAILED);
	arena_init(&a, 4096, 1);
}

static void
teardown(void)
{
	munmap(sb, sizeof(*sb));
	arena_free(&a);
}

/* A pid that no process has now: a child's, reaped. */
static pid_t
dead_pid(void)
{
	pid_t	pid = fork();

	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	return pid;
}

/* A child that lives until killed, or until the test ends. */
static pid_t
live_child(void)
{
	pid_t	parent = getpid(), pid = fork();

	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		while (getppid() == parent)
			pause();
		_exit(0);
	}
	return pid;
}

static void
kill_child(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* The board as JSON, parsed; the caller puts it. */
static struct json_object *
board_json(int64_t now_us, int64_t now_wall_us)
{
	struct json_object	*o;
	struct buf		 b;

	buf_init(&b, &a, 256);
	scoreboard_json(sb, &b, now_us, now_wall_us);
	o = json_tokener_parse(buf_cstr(&b));
	ck_assert_msg(o != NULL, "not JSON: %s", buf_cstr(&b));
	return o;
}

static struct json_object *
get(struct json_object *o, const char *key)
{
	struct json_object	*v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no \"%s\"", key);
	return v;
}

static int64_t
get_int(struct json_object *o, const char *key)
{
	return json_object_get_int64(get(o, key));
}

START_TEST(join_hands_out_slots_and_leave_frees_them)
{
	pid_t	other = live_child();
	int	s0, s1;

	s0 = scoreboard_join(sb, getpid(), 10 * S);
	s1 = scoreboard_join(sb, other, 11 * S);
	ck_assert_int_eq(s0, 0);
	ck_assert_int_eq(s1, 1);
	ck_assert_int_eq(sb->slots[s0].pid, getpid());
	ck_assert_int_eq(sb->slots[s0].state, SB_IDLE);
	ck_assert_int_eq(sb->slots[s1].born_wall_us, 11 * S);
	ck_assert_uint_eq(sb->used, 2);
	/* Joining again (a responder that restarted its loop): its slot. */
	sb->slots[s0].requests = 5;
	ck_assert_int_eq(scoreboard_join(sb, getpid(), 12 * S), s0);
	ck_assert_uint_eq(sb->slots[s0].requests, 0);
	ck_assert_uint_eq(sb->used, 2);
	/* A slot left is the next one handed out. */
	scoreboard_leave(sb, s0);
	ck_assert_int_eq(sb->slots[s0].pid, 0);
	ck_assert(!scoreboard_live(&sb->slots[s0]));
	ck_assert(scoreboard_live(&sb->slots[s1]));
	ck_assert_int_eq(scoreboard_join(sb, getpid(), 13 * S), s0);
	kill_child(other);
}
END_TEST

START_TEST(slots_of_dead_processes_are_reused)
{
	pid_t	dead = dead_pid();
	int	i;

	/* Full, of live processes (init's pid). */
	for (i = 0; i < SB_SLOTS; i++)
		sb->slots[i].pid = 1;
	sb->used = SB_SLOTS;
	ck_assert_int_eq(scoreboard_join(sb, getpid(), S), -1);
	/* A responder that died without leaving. */
	sb->slots[200].pid = dead;
	sb->slots[200].requests = 99;
	sb->slots[200].state = SB_BUSY;
	ck_assert(!scoreboard_live(&sb->slots[200]));
	ck_assert_int_eq(scoreboard_join(sb, getpid(), S), 200);
	ck_assert_uint_eq(sb->slots[200].requests, 0);
	ck_assert_int_eq(sb->slots[200].state, SB_IDLE);
	ck_assert_int_eq(sb->slots[200].pid, getpid());
	/* Full again. */
	ck_assert_int_eq(scoreboard_join(sb, dead_pid(), S), -1);
}
END_TEST

START_TEST(begin_and_end_count_requests)
{
	pid_t	other = live_child();
	char	longpath[300];
	int	s0, s1;

	s0 = scoreboard_join(sb, getpid(), S);
	s1 = scoreboard_join(sb, other, S);
	scoreboard_begin(sb, s0, "GET", "/api/v1/items", 1000);
	ck_assert_int_eq(sb->slots[s0].state, SB_BUSY);
	ck_assert_str_eq(sb->slots[s0].method, "GET");
	ck_assert_str_eq(sb->slots[s0].path, "/api/v1/items");
	ck_assert_uint_eq(sb->max_busy, 1);
	/* Too long for the slot: truncated, terminated. */
	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	scoreboard_begin(sb, s1, "OPTIONSX", longpath, 2000);
	ck_assert_str_eq(sb->slots[s1].method, "OPTIONS");
	ck_assert_uint_eq(strlen(sb->slots[s1].path),
	    sizeof(sb->slots[s1].path) - 1);
	ck_assert_uint_eq(sb->max_busy, 2);
	ck_assert_uint_eq(sb->accepted, 2);

	scoreboard_end(sb, s0, 3000, 0, 5120, 3);
	ck_assert_int_eq(sb->slots[s0].state, SB_IDLE);
	ck_assert_uint_eq(sb->slots[s0].requests, 1);
	ck_assert_int_eq(sb->slots[s0].last_us, 3000);
	ck_assert_uint_eq(sb->slots[s0].rss_kb, 5120);
	ck_assert_uint_eq(sb->slots[s0].local_hits, 3);
	ck_assert_uint_eq(sb->slow, 0);
	/* No RSS measured this time: the last one stays. */
	scoreboard_begin(sb, s0, "POST", "/x", 10000);
	scoreboard_end(sb, s0, 500, 1, 0, 0);
	ck_assert_uint_eq(sb->slots[s0].requests, 2);
	ck_assert_int_eq(sb->slots[s0].last_us, 500);
	ck_assert_uint_eq(sb->slots[s0].rss_kb, 5120);
	ck_assert_uint_eq(sb->slow, 1);
	/* The most busy ever seen does not go down. */
	ck_assert_uint_eq(sb->max_busy, 2);
	ck_assert_uint_eq(sb->accepted, 3);
	kill_child(other);
}
END_TEST

START_TEST(a_concurrent_responder_is_busy_until_its_last_request_ends)
{
	int	s0;

	s0 = scoreboard_join(sb, getpid(), S);
	scoreboard_begin(sb, s0, "POST", "/api/v1/user/login", 1000);
	scoreboard_begin(sb, s0, "POST", "/api/v1/user/phone", 2000);
	scoreboard_begin(sb, s0, "POST", "/api/v1/user/login", 3000);
	ck_assert_uint_eq(sb->slots[s0].in_flight, 3);
	/* The busy responders, not the requests, are what max_busy counts. */
	ck_assert_uint_eq(sb->max_busy, 1);
	ck_assert_uint_eq(sb->accepted, 3);
	/* The first one ends: two are still in flight. */
	scoreboard_end(sb, s0, 3500, 0, 0, 0);
	ck_assert_int_eq(sb->slots[s0].state, SB_BUSY);
	ck_assert_uint_eq(sb->slots[s0].in_flight, 2);
	ck_assert_int_eq(sb->slots[s0].last_us, 3500);
	scoreboard_end(sb, s0, 100, 0, 0, 0);
	ck_assert_int_eq(sb->slots[s0].state, SB_BUSY);
	scoreboard_end(sb, s0, 200, 0, 0, 0);
	ck_assert_int_eq(sb->slots[s0].state, SB_IDLE);
	ck_assert_uint_eq(sb->slots[s0].in_flight, 0);
	ck_assert_uint_eq(sb->slots[s0].requests, 3);
	ck_assert_int_eq(sb->slots[s0].last_us, 200);
	/* The next request starts from zero again. */
	scoreboard_begin(sb, s0, "GET", "/x", 9000);
	ck_assert_uint_eq(sb->slots[s0].in_flight, 1);
	scoreboard_end(sb, s0, 10, 0, 0, 0);
	ck_assert_int_eq(sb->slots[s0].state, SB_IDLE);
}
END_TEST

START_TEST(count_sees_only_live_responders)
{
	pid_t	other = live_child();
	int	busy, idle, s0, s1, s2;

	s0 = scoreboard_join(sb, getpid(), S);
	s1 = scoreboard_join(sb, other, S);
	s2 = scoreboard_join(sb, dead_pid(), S);
	ck_assert_int_eq(s2, s1 + 1);
	scoreboard_begin(sb, s0, "GET", "/a", 0);
	scoreboard_begin(sb, s2, "GET", "/b", 0);
	scoreboard_count(sb, &busy, &idle);
	ck_assert_int_eq(busy, 1);
	ck_assert_int_eq(idle, 1);
	/* Killed mid-request: it no longer counts. */
	kill_child(other);
	scoreboard_count(sb, &busy, &idle);
	ck_assert_int_eq(busy, 1);
	ck_assert_int_eq(idle, 0);
}
END_TEST

START_TEST(load_is_what_live_responders_hold_against_what_they_can)
{
	pid_t		other = live_child();
	uint64_t	in_flight, capacity;
	int		s0, s1, s2;

	s0 = scoreboard_join(sb, getpid(), S);
	s1 = scoreboard_join(sb, other, S);
	s2 = scoreboard_join(sb, dead_pid(), S);
	scoreboard_load(sb, &in_flight, &capacity);
	ck_assert_uint_eq(in_flight, 0);
	ck_assert_uint_eq(capacity, 0);
	scoreboard_capacity(sb, s0, 128);	/* -C 128 */
	scoreboard_capacity(sb, s1, 1);		/* libfcgi's loop */
	scoreboard_capacity(sb, s2, 256);	/* dead: not counted */
	scoreboard_begin(sb, s0, "GET", "/a", 0);
	scoreboard_begin(sb, s0, "GET", "/b", 0);
	scoreboard_begin(sb, s1, "GET", "/c", 0);
	scoreboard_begin(sb, s2, "GET", "/d", 0);
	scoreboard_load(sb, &in_flight, &capacity);
	ck_assert_uint_eq(in_flight, 3);
	ck_assert_uint_eq(capacity, 129);
	scoreboard_end(sb, s0, 10, 0, 0, 0);
	kill_child(other);
	scoreboard_load(sb, &in_flight, &capacity);
	ck_assert_uint_eq(in_flight, 1);
	ck_assert_uint_eq(capacity, 128);
	/* A slot joined again starts without a capacity. */
	ck_assert_int_eq(scoreboard_join(sb, getpid(), S), s0);
	ck_assert_uint_eq(sb->slots[s0].capacity, 0);
}
END_TEST

START_TEST(stale_writes_count_from_every_process)
{
	pid_t	pids[4];
	int	i, j, status;

	scoreboard_stale_write(sb);
	ck_assert_uint_eq(sb->stale_writes, 1);
	for (i = 0; i < 4; i++) {
		pids[i] = fork();
		ck_assert_int_ne(pids[i], -1);
		if (pids[i] == 0) {
			for (j = 0; j < 100000; j++)
				scoreboard_stale_write(sb);
			_exit(0);
		}
	}
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
		ck_assert(WIFEXITED(status));
	}
	/* Atomic: no increment lost. */
	ck_assert_uint_eq(sb->stale_writes, 400001);
}
END_TEST

START_TEST(json_has_the_pool_and_its_responders)
{
	struct json_object	*o, *rs, *r;
	pid_t			 other = live_child();
	int			 s0, s1;

	sb->start_wall_us = 1000 * S;
	s0 = scoreboard_join(sb, getpid(), 1001 * S);
	s1 = scoreboard_join(sb, other, 1002 * S);
	(void)scoreboard_join(sb, dead_pid(), 1003 * S);
	scoreboard_begin(sb, s0, "GET", "/a\"b\\c\n\x01", 5 * S);
	scoreboard_begin(sb, s1, "POST", "/done", 5 * S);
	scoreboard_end(sb, s1, 2500, 1, 4096, 7);
	scoreboard_connections(sb, s1, 3, 40);
	scoreboard_stale_write(sb);

	o = board_json(5 * S + 700, 1100 * S);
	ck_assert_int_eq(get_int(o, "start_time"), 1000);
	ck_assert_int_eq(get_int(o, "uptime_s"), 100);
	ck_assert_int_eq(get_int(o, "accepted"), 2);
	ck_assert_int_eq(get_int(o, "busy"), 1);
	ck_assert_int_eq(get_int(o, "idle"), 1);
	ck_assert_int_eq(get_int(o, "total"), 2);
	ck_assert_int_eq(get_int(o, "max_busy"), 2);
	ck_assert_int_eq(get_int(o, "slow_requests"), 1);
	ck_assert_int_eq(get_int(o, "stale_writes"), 1);
	rs = get(o, "responders");
	ck_assert(json_object_is_type(rs, json_type_array));
	/* The dead one is not listed. */
	ck_assert_uint_eq(json_object_array_length(rs), 2);

	r = json_object_array_get_idx(rs, 0);
	ck_assert_int_eq(get_int(r, "pid"), getpid());
	ck_assert_str_eq(json_object_get_string(get(r, "state")), "busy");
	ck_assert_int_eq(get_int(r, "started"), 1001);
	ck_assert_str_eq(json_object_get_string(get(r, "method")), "GET");
	/* The path escaped, and back as it was. */
	ck_assert_str_eq(json_object_get_string(get(r, "path")),
	    "/a\"b\\c\n\x01");
	ck_assert_int_eq(get_int(r, "elapsed_us"), 700);
	ck_assert_int_eq(get_int(r, "in_flight"), 1);

	r = json_object_array_get_idx(rs, 1);
	ck_assert_int_eq(get_int(r, "pid"), other);
	ck_assert_str_eq(json_object_get_string(get(r, "state")), "idle");
	ck_assert_int_eq(get_int(r, "requests"), 1);
	ck_assert_int_eq(get_int(r, "last_request_us"), 2500);
	ck_assert_int_eq(get_int(r, "rss_kb"), 4096);
	ck_assert_int_eq(get_int(r, "local_hits"), 7);
	ck_assert_int_eq(get_int(r, "connections"), 3);
	ck_assert_int_eq(get_int(r, "connections_accepted"), 40);
	/* An idle responder has no current request. */
	ck_assert(!json_object_object_get_ex(r, "path", NULL));
	ck_assert(!json_object_object_get_ex(r, "elapsed_us", NULL));
	json_object_put(o);
	kill_child(other);

	/* An empty board is valid JSON too. */
	memset(sb, 0, sizeof(*sb));
	o = board_json(0, 0);
	ck_assert_int_eq(get_int(o, "total"), 0);
	ck_assert_uint_eq(json_object_array_length(get(o, "responders")), 0);
	json_object_put(o);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("scoreboard");
	TCase	*tc = tcase_create("scoreboard");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, join_hands_out_slots_and_leave_frees_them);
	tcase_add_test(tc, slots_of_dead_processes_are_reused);
	tcase_add_test(tc, begin_and_end_count_requests);
	tcase_add_test(tc, a_concurrent_responder_is_busy_until_its_last_request_ends);
	tcase_add_test(tc, count_sees_only_live_responders);
	tcase_add_test(tc,
	    load_is_what_live_responders_hold_against_what_they_can);
	tcase_add_test(tc, stale_writes_count_from_every_process);
	tcase_add_test(tc, json_has_the_pool_and_its_responders);
	suite_add_tcase(s, tc);
	return check_run(s);
}

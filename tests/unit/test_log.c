/*
 * Unit tests for lib/log: JSON lines, the access line buffer (kept in
 * order with the other lines, written when full, on tick and on close),
 * log_attach, which never creates the file, and the pid of each line,
 * a forked child's own.
 */
#include "check_run.h"
#include <sys/stat.h>
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static char	path[64];

static void
setup(void)
{
	int	n = snprintf(path, sizeof(path), "/tmp/wxapp-test-log-%ld",
		    (long)getpid());

	ck_assert(n > 0 && (size_t)n < sizeof(path));
	unlink(path);
	ck_assert_int_eq(log_open(path, LOG_LEVEL_INFO, 1), 0);
}

static void
teardown(void)
{
	log_close();
	unlink(path);
}

/* The file's contents (static buffer). */
static const char *
contents(void)
{
	static char	buf[65536];
	FILE		*f = fopen(path, "r");
	size_t		 n;

	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
access_line(const char *id)
{
	struct log_access	a = { .request_id = id, .method = "GET",
				    .path = "/ping", .remote_addr = "127.0.0.1",
				    .trace_id = "", .status = 200,
				    .duration_us = 5, .bytes = 42 };

	log_access(&a);
}

START_TEST(unbuffered_lines_are_written_at_once)
{
	ck_assert_int_eq(log_access_buffer(0, 500), 0);
	access_line("r1");
	ck_assert_ptr_nonnull(strstr(contents(), "\"request_id\":\"r1\""));
	ck_assert_ptr_nonnull(strstr(contents(), "\"type\":\"access\""));
	ck_assert_ptr_nonnull(strstr(contents(), "\"status\":200,"
	    "\"duration_us\":5,\"bytes\":42"));
}
END_TEST

START_TEST(buffered_lines_keep_their_order)
{
	const char	*c, *a2, *m;

	ck_assert_int_eq(log_access_buffer(4096, 60000), 0);
	access_line("r1");
	access_line("r2");
	ck_assert_str_eq(contents(), "");
	log_info("after r2");
	c = contents();
	a2 = strstr(c, "\"request_id\":\"r2\"");
	m = strstr(c, "after r2");
	ck_assert_ptr_nonnull(strstr(c, "\"request_id\":\"r1\""));
	ck_assert_ptr_nonnull(a2);
	ck_assert_ptr_nonnull(m);
	ck_assert(a2 < m);
}
END_TEST

START_TEST(tick_and_close_write_the_buffer)
{
	ck_assert_int_eq(log_access_buffer(4096, 60000), 0);
	access_line("r1");
	ck_assert_str_eq(contents(), "");
	log_tick();
	ck_assert_ptr_nonnull(strstr(contents(), "\"request_id\":\"r1\""));
	access_line("r2");
	log_close();
	ck_assert_ptr_nonnull(strstr(contents(), "\"request_id\":\"r2\""));
}
END_TEST

START_TEST(a_full_buffer_is_written)
{
	char	id[16];
	int	i;

	ck_assert_int_eq(log_access_buffer(1024, 60000), 0);
	for (i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "r%d", i);
		access_line(id);
	}
	/* Written in whole lines, the last few still waiting. */
	ck_assert_ptr_nonnull(strstr(contents(), "\"request_id\":\"r0\""));
	ck_assert_ptr_null(strstr(contents(), "\"request_id\":\"r19\""));
	ck_assert_int_eq(contents()[strlen(contents()) - 1], '\n');
}
END_TEST

START_TEST(old_lines_are_written_with_the_next)
{
	ck_assert_int_eq(log_access_buffer(4096, 1), 0);
	access_line("r1");
	usleep(5000);
	access_line("r2");
	ck_assert_ptr_nonnull(strstr(contents(), "\"request_id\":\"r2\""));
}
END_TEST

/* log_attach writes to a file that exists and never makes one. */
START_TEST(attach_never_creates_the_file)
{
	struct stat	st;

	log_close();
	unlink(path);
	ck_assert_int_eq(log_attach(path, LOG_LEVEL_INFO), -1);
	ck_assert_int_eq(stat(path, &st), -1);
	ck_assert_int_eq(log_open(path, LOG_LEVEL_INFO, 0), 0);
	log_close();
	ck_assert_int_eq(log_attach(path, LOG_LEVEL_INFO), 0);
	log_warn("attached %d", 1);
	ck_assert_ptr_nonnull(strstr(contents(), "attached 1"));
	/* A rotation does not create it either. */
	unlink(path);
	ck_assert_int_eq(log_reopen(), -1);
	ck_assert_int_eq(stat(path, &st), -1);
}
END_TEST

START_TEST(a_forked_child_logs_its_own_pid)
{
	char	want[64];
	pid_t	pid;
	int	st;

	log_info("the parent first");	/* the parent's pid is now known */
	if ((pid = fork()) == 0) {
		log_info("the child");
		log_close();
		_exit(0);
	}
	ck_assert_int_ne(pid, -1);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert(snprintf(want, sizeof(want), "\"pid\":%ld,\"msg\":\"the "
	    "child\"", (long)pid) < (int)sizeof(want));
	ck_assert_msg(strstr(contents(), want) != NULL, "%s", contents());
	ck_assert(snprintf(want, sizeof(want), "\"pid\":%ld,\"msg\":\"the "
	    "parent", (long)getpid()) < (int)sizeof(want));
	ck_assert_msg(strstr(contents(), want) != NULL, "%s", contents());
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("log");
	TCase	*tc = tcase_create("log");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, unbuffered_lines_are_written_at_once);
	tcase_add_test(tc, buffered_lines_keep_their_order);
	tcase_add_test(tc, tick_and_close_write_the_buffer);
	tcase_add_test(tc, a_full_buffer_is_written);
	tcase_add_test(tc, old_lines_are_written_with_the_next);
	tcase_add_test(tc, attach_never_creates_the_file);
	tcase_add_test(tc, a_forked_child_logs_its_own_pid);
	suite_add_tcase(s, tc);
	return check_run(s);
}

/*
 * Unit tests for lib/prefork: a supervisor forks its children and
 * replaces one that dies; SIGHUP reaches every child and stops nothing;
 * SIGTERM stops them gracefully (SIGUSR1) and the supervisor exits 0; a
 * child that keeps dying at once is given up (exit 1); children that
 * retire (prefork_retiring) are replaced before they exit.
 */
#include "check_run.h"
#include <sys/wait.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prefork.h"

static int	report[2];	/* children write "EVENT PID\n" here */

static void
say(const char *what)
{
	char	line[64];
	int	n;

	n = snprintf(line, sizeof(line), "%s %ld\n", what, (long)getpid());
	if (n > 0 && (size_t)n < sizeof(line))
		(void)!write(report[1], line, (size_t)n);
}

static void
on_hup(int sig)
{
	(void)sig;
	say("hup");
}

static void
on_usr1(int sig)
{
	(void)sig;
	say("usr1");
	_exit(0);
}

/* The supervisor, in a process of its own; its children run `child`. */
static pid_t
supervise(const struct prefork_opts *o, void (*child)(void))
{
	pid_t	pid;

	ck_assert_int_eq(pipe(report), 0);
	if ((pid = fork()) == 0) {
		close(report[0]);
		if (prefork_run(o) == 0)
			child();
		_exit(99);	/* not reached: the supervisor exits */
	}
	ck_assert_int_ne(pid, -1);
	close(report[1]);
	return pid;
}

static void
serve(void)
{
	signal(SIGHUP, on_hup);
	signal(SIGUSR1, on_usr1);
	say("start");
	for (;;)
		pause();
}

/* In the supervisor: a child is started again. */
static void
restarted(void *arg)
{
	(void)arg;
	say("restarted");
}

static void
crash(void)
{
	say("start");
	_exit(1);
}

/* The next event, as "EVENT" with its pid in *pid; "" at a 5 s timeout. */
static const char *
next(long *pid)
{
	static char	line[64];
	struct pollfd	pfd = { .fd = report[0], .events = POLLIN };
	size_t		n = 0;

	while (n < sizeof(line) - 1 && poll(&pfd, 1, 5000) == 1 &&
	    read(report[0], &line[n], 1) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	if (sscanf(line, "%*s %ld", pid) != 1)
		*pid = 0;
	line[strcspn(line, " ")] = '\0';
	return line;
}

static int
status_of(pid_t pid)
{
	int	st;

	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

START_TEST(test_supervise)
{
	struct prefork_opts o = { .children = 3, .retries = 5, .fast_ms = 100,
	    .restarted = restarted };
	long	pids[3], pid, other;
	pid_t	sup;
	const char *ev;
	int	i, hups = 0, said = 0;

	sup = supervise(&o, serve);
	for (i = 0; i < 3; i++) {
		ck_assert_str_eq(next(&pids[i]), "start");
		ck_assert_int_gt(pids[i], 0);
	}
	/*
	 * A child killed is replaced, and the supervisor says so -- after
	 * the fork, so the new child may speak first.
	 */
	ck_assert_int_eq(kill((pid_t)pids[1], SIGKILL), 0);
	other = 0;
	for (i = 0; i < 2; i++) {
		ev = next(&pid);
		if (strcmp(ev, "restarted") == 0) {
			ck_assert_int_eq(pid, sup);
			said++;
			continue;
		}
		ck_assert_str_eq(ev, "start");
		ck_assert_int_ne(pid, pids[1]);
		other = pid;
	}
	ck_assert_int_eq(said, 1);
	ck_assert_int_gt(other, 0);
	pids[1] = other;
	/* SIGHUP: every child hears it, none stops. */
	ck_assert_int_eq(kill(sup, SIGHUP), 0);
	for (i = 0; i < 3; i++) {
		ck_assert_str_eq(next(&pid), "hup");
		hups++;
	}
	ck_assert_int_eq(hups, 3);
	ck_assert_int_eq(kill(sup, 0), 0);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(kill((pid_t)pids[i], 0), 0);
	/* SIGTERM: SIGUSR1 to each child, then the supervisor exits 0. */
	ck_assert_int_eq(kill(sup, SIGTERM), 0);
	for (i = 0; i < 3; i++)
		ck_assert_str_eq(next(&other), "usr1");
	ck_assert_int_eq(status_of(sup), 0);
	ck_assert_str_eq(next(&other), "");	/* nothing was started again */
	close(report[0]);
}
END_TEST

/* A child that retires on SIGUSR2, then exits on SIGUSR1 (or SIGTERM). */
static void
on_usr2(int sig)
{
	(void)sig;
	say(prefork_retiring() == 0 ? "retiring" : "alone");
}

static void
retire_on_usr2(void)
{
	signal(SIGUSR2, on_usr2);
	signal(SIGUSR1, on_usr1);
	say("start");
	for (;;)
		pause();
}

START_TEST(test_retiring_children_are_replaced_first)
{
	struct prefork_opts o = { .children = 2, .retries = 5, .fast_ms = 100 };
	long	pids[2], pid;
	pid_t	sup;
	int	i, starts = 0, retiring = 0;

	sup = supervise(&o, retire_on_usr2);
	for (i = 0; i < 2; i++)
		ck_assert_str_eq(next(&pids[i]), "start");
	/*
	 * Both retire at once (the signals must not merge): each gets a
	 * successor while it is still alive.
	 */
	ck_assert_int_eq(kill((pid_t)pids[0], SIGUSR2), 0);
	ck_assert_int_eq(kill((pid_t)pids[1], SIGUSR2), 0);
	for (i = 0; i < 4; i++) {
		const char *ev = next(&pid);

		if (strcmp(ev, "retiring") == 0)
			retiring++;
		else {
			ck_assert_str_eq(ev, "start");
			ck_assert(pid != pids[0] && pid != pids[1]);
			starts++;
		}
	}
	ck_assert_int_eq(retiring, 2);
	ck_assert_int_eq(starts, 2);
	ck_assert_int_eq(kill((pid_t)pids[0], 0), 0);
	ck_assert_int_eq(kill((pid_t)pids[1], 0), 0);
	/* A retired child that exits is not replaced again. */
	ck_assert_int_eq(kill((pid_t)pids[0], SIGUSR1), 0);
	ck_assert_str_eq(next(&pid), "usr1");
	ck_assert_int_eq(pid, pids[0]);
	/* A stop reaches the one still retiring, and the successors. */
	ck_assert_int_eq(kill(sup, SIGTERM), 0);
	for (i = 0; i < 3; i++)
		ck_assert_str_eq(next(&pid), "usr1");
	ck_assert_int_eq(status_of(sup), 0);
	ck_assert_str_eq(next(&pid), "");
	close(report[0]);
}
END_TEST

START_TEST(test_retiring_without_a_supervisor)
{
	ck_assert_int_eq(prefork_retiring(), -1);
}
END_TEST

START_TEST(test_give_up)
{
	struct prefork_opts o = { .children = 1, .retries = 3,
	    .fast_ms = 60000 };
	long	pid;
	pid_t	sup;
	int	starts = 0;

	sup = supervise(&o, crash);
	while (strcmp(next(&pid), "start") == 0)
		starts++;
	ck_assert_int_eq(starts, 4);	/* the first and 3 retries */
	ck_assert_int_eq(status_of(sup), 1);
	close(report[0]);
}
END_TEST

START_TEST(test_bad_options)
{
	struct prefork_opts o = { .children = 0, .retries = 1, .fast_ms = 1 };
	pid_t	sup;

	sup = supervise(&o, crash);
	ck_assert_int_eq(status_of(sup), 2);
	close(report[0]);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("prefork");
	TCase	*tc = tcase_create("prefork");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_supervise);
	tcase_add_test(tc, test_retiring_children_are_replaced_first);
	tcase_add_test(tc, test_retiring_without_a_supervisor);
	tcase_add_test(tc, test_give_up);
	tcase_add_test(tc, test_bad_options);
	suite_add_tcase(s, tc);
	return check_run(s);
}

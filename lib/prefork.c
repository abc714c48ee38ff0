/*
 * prefork: fork the responders of one socket and watch them (prefork.h).
 */
#include <sys/types.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "prefork.h"

#define PREFORK_MAX	1024
#define FORK_RETRY_S	1	/* after fork(2) failed */

struct slot {
	pid_t		pid;		/* 0: not running */
	pid_t		retiring;	/* its predecessor, finishing; or 0 */
	int64_t		started_ms;
	int		fails;		/* fast deaths in a row */
	int		given_up;
};

/* In a child: its supervisor, to tell of its retirement; 0 elsewhere. */
static pid_t	supervisor;

/*
 * A real-time signal: one sent by each of two children retiring at once
 * is queued twice, with its sender, where SIGUSR2 would arrive once.
 */
#define SIG_RETIRING	(SIGRTMIN + 2)

/* The signals the supervisor waits for (SIG_RETIRING is not constant). */
static const int watched[] = { SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGCHLD,
    0 };
#define NWATCHED	(sizeof(watched) / sizeof(watched[0]))

/* watched[i], SIG_RETIRING in the last place. */
static int
watched_sig(size_t i)
{
	return i == NWATCHED - 1 ? SIG_RETIRING : watched[i];
}

int
prefork_retiring(void)
{
	if (supervisor == 0 || getppid() != supervisor)
		return -1;
	return kill(supervisor, SIG_RETIRING);
}

static int64_t
now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Handlers are only there so that a signal inherited as ignored is kept. */
static void
noop(int sig)
{
	(void)sig;
}

/* Send sig to every running child. */
static void
signal_all(struct slot *s, int n, int sig)
{
	int	i;

	for (i = 0; i < n; i++) {
		if (s[i].pid > 0)
			(void)kill(s[i].pid, sig);
		if (s[i].retiring > 0)
			(void)kill(s[i].retiring, sig);
	}
}

/*
 * Child pid said it is retiring: it finishes what it holds, and its
 * successor starts now (by the caller's loop) instead of when it exits.
 */
static void
retire(struct slot *s, int n, pid_t pid)
{
	int	i;

	for (i = 0; i < n && s[i].pid != pid; i++)
		;
	if (i == n || s[i].retiring != 0)
		return;		/* reaped already, or one retires there */
	s[i].retiring = pid;
	s[i].pid = 0;
	s[i].fails = 0;
}

/* Reap the children that exited; returns how many are still running. */
static int
reap(struct slot *s, int n, const struct prefork_opts *o, int stopping)
{
	pid_t	pid;
	int	i, st, live = 0;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < n && s[i].retiring != pid; i++)
			;
		if (i < n) {		/* replaced already */
			s[i].retiring = 0;
			continue;
		}
		for (i = 0; i < n && s[i].pid != pid; i++)
			;
		if (i == n)
			continue;
		s[i].pid = 0;
		if (stopping)
			continue;
		if (WIFSIGNALED(st))
			log_warn("responder %ld killed by signal %d: replaced",
			    (long)pid, WTERMSIG(st));
		else if (WEXITSTATUS(st) != 0)
			log_warn("responder %ld exited with status %d: replaced",
			    (long)pid, WEXITSTATUS(st));
		if (now_ms() - s[i].started_ms < o->fast_ms)
			s[i].fails++;
		else
			s[i].fails = 0;
		if (s[i].fails > o->retries) {
			s[i].given_up = 1;
			log_error("responder died %d times within %d ms of its "
			    "start: not started again", s[i].fails, o->fast_ms);
		}
	}
	for (i = 0; i < n; i++)
		live += (s[i].pid > 0) + (s[i].retiring > 0);
	return live;
}

int
prefork_run(const struct prefork_opts *o)
{
	struct sigaction	 sa, saved[NWATCHED];
	struct slot		*s;
	struct timespec		 wait = { .tv_sec = FORK_RETRY_S };
	siginfo_t		 info;
	sigset_t		 set, orig;
	char			 comm[17] = "";	/* the caller's name */
	size_t			 j;
	pid_t			 pid;
	int			 i, n = o->children, sig, stopping = 0, live, left;

	if (n < 1 || n > PREFORK_MAX || o->retries < 0 || o->fast_ms < 0) {
		fprintf(stderr, "prefork: children must be 1..%d, retries and "
		    "fast_ms not negative\n", PREFORK_MAX);
		exit(2);
	}
	if ((s = calloc((size_t)n, sizeof(*s))) == NULL) {
		fprintf(stderr, "prefork: out of memory\n");
		exit(2);
	}
	sigemptyset(&set);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = noop;
	sigemptyset(&sa.sa_mask);
	for (j = 0; j < NWATCHED; j++) {
		sigaddset(&set, watched_sig(j));
		if (sigaction(watched_sig(j), &sa, &saved[j]) == -1) {
			fprintf(stderr, "prefork: sigaction: %s\n",
			    strerror(errno));
			exit(2);
		}
	}
	if (sigprocmask(SIG_BLOCK, &set, &orig) == -1) {
		fprintf(stderr, "prefork: sigprocmask: %s\n", strerror(errno));
		exit(2);
	}
#ifdef __linux__
	if (o->title != NULL && prctl(PR_GET_NAME, comm, 0, 0, 0) == 0)
		(void)prctl(PR_SET_NAME, o->title, 0, 0, 0);
#endif
	for (;;) {
		for (i = 0; i < n && !stopping; i++) {
			if (s[i].pid != 0 || s[i].given_up)
				continue;
			if ((pid = fork()) == -1) {
				log_error("cannot fork a responder: %s (tried "
				    "again in %d s)", strerror(errno),
				    FORK_RETRY_S);
				break;
			}
			if (pid == 0) {
				for (j = 0; j < NWATCHED; j++)
					(void)sigaction(watched_sig(j),
					    &saved[j], NULL);
				(void)sigprocmask(SIG_SETMASK, &orig, NULL);
#ifdef __linux__
				if (comm[0] != '\0')
					(void)prctl(PR_SET_NAME, comm, 0, 0, 0);
#endif
				free(s);
				supervisor = getppid();
				return 0;
			}
			if (s[i].started_ms != 0 && o->restarted != NULL)
				o->restarted(o->arg);
			s[i].pid = pid;
			s[i].started_ms = now_ms();
		}
		for (live = 0, left = 0, i = 0; i < n; i++) {
			live += (s[i].pid > 0) + (s[i].retiring > 0);
			left += !s[i].given_up;
		}
		if (live == 0 && (stopping || left == 0))
			break;
		sig = sigtimedwait(&set, &info, &wait);
		if (sig == SIG_RETIRING) {
			if (!stopping)
				retire(s, n, info.si_pid);
			sig = 0;
		}
		switch (sig) {
		case SIGCHLD:
			break;
		case SIGHUP:
			if (o->reopen != NULL && o->reopen() == -1)
				log_error("cannot reopen the log: %s",
				    strerror(errno));
			signal_all(s, n, SIGHUP);
			break;
		case SIGTERM:
		case SIGINT:
		case SIGUSR1:
			signal_all(s, n, stopping ? SIGTERM : SIGUSR1);
			if (!stopping)
				log_info("signal %d: stopping %d responders",
				    sig, live);
			stopping = 1;
			break;
		default:	/* the timeout, or EINTR */
			break;
		}
		live = reap(s, n, o, stopping);
		if (live == 0 && stopping)
			break;
	}
	free(s);
	if (stopping)
		exit(0);
	log_error("every responder was given up: the supervisor exits");
	exit(1);
}

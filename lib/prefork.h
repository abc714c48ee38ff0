/*
 * prefork: the supervisor of a socket's responders.  The process that
 * calls prefork_run() forks `children` copies of itself, all sharing the
 * listening socket it holds, and stays behind to watch them:
 *
 * - a child that exits (a crash, SIGKILL, or a clean exit to be recycled)
 *   is replaced at once; one that keeps dying within fast_ms of its start
 *   is given up after `retries` such deaths in a row, and the supervisor
 *   exits when it has no child left;
 * - SIGHUP is passed to every child (they reopen their logs) and reopens
 *   the supervisor's own log: sent to the supervisor's pid, as an operator
 *   or logrotate or systemd's ExecReload would, it never stops a socket;
 * - SIGTERM, SIGINT or SIGUSR1 stop the socket gracefully: SIGUSR1 to the
 *   children (each finishes the request in flight), then the supervisor
 *   exits once they are gone.  A second such signal sends SIGTERM;
 * - a child that calls prefork_retiring() (it takes no new connection,
 *   and finishes those it holds before it exits) is replaced at once, not
 *   when it exits: the socket always has children that accept.
 *
 * It replaces multiwatch(1), which treats SIGHUP as a stop.
 */
#ifndef WX_PREFORK_H
#define WX_PREFORK_H

struct prefork_opts {
	int		 children;	/* processes to keep running, >= 1 */
	int		 retries;	/* fast deaths in a row before giving up */
	int		 fast_ms;	/* a death this soon after start is fast */
	const char	*title;		/* the supervisor's process name, or NULL */
	int		(*reopen)(void);/* reopens the supervisor's log, or NULL */
	/* Called in the supervisor as a child is started again, or NULL. */
	void		(*restarted)(void *);
	void		*arg;
};

/*
 * Returns 0 in each child, with the signal mask and dispositions the
 * caller had.  In the supervisor it does not return: it exits with 0
 * after a requested stop, 1 when every child was given up, 2 on a setup
 * error (reported on stderr).
 */
int	prefork_run(const struct prefork_opts *);
/*
 * In a child of prefork_run: have the supervisor start this child's
 * successor now, as it stops taking connections.  0, or -1 when this
 * process has no supervisor of prefork_run (or the signal failed).
 */
int	prefork_retiring(void);

#endif

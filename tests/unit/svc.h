/*
 * svc: what the unit tests of the modules that talk to Redis, PostgreSQL
 * and WeChat share: the services tests/unit/services.sh started for them
 * (found through its environment variables), stopping a process for a
 * while to make it hang, a Redis server of a test's own that it may stop
 * and start again, a breaker to put around a module, and elapsed times.
 */
#ifndef WX_SVC_H
#define WX_SVC_H

#include <sys/types.h>

#include <stdint.h>

#include <libpq-fe.h>

#include "guard.h"

/* The value of a variable services.sh exports; the test fails without it. */
const char	*svc_env(const char *name);

/*
 * Stop pid (SIGSTOP) until svc_thaw.  A watchdog process continues it
 * after max_ms in any case, so a test that dies in between leaves no
 * server frozen.  Assert nothing between the two: a failed assertion ends
 * the test at once.
 */
void	svc_freeze(pid_t pid, long max_ms);
void	svc_thaw(pid_t pid);
/* Wait up to ms for pid to be gone; 0, or -1 if it is still there. */
int	svc_wait_gone(pid_t pid, long ms);

/* A redis-server of the test's own, on a unix socket in WXAPP_TEST_TMP. */
struct svc_redis {
	const char	*password;	/* NULL: no AUTH */
	pid_t		 pid;		/* 0: not running */
	char		 dir[256];
	char		 sock[300];
};

/* Start it (empty) and wait until it answers PING; fails the test if not. */
void	svc_redis_start(struct svc_redis *);
/* Stop it (SIGTERM) and wait until it has exited. */
void	svc_redis_stop(struct svc_redis *);

/*
 * A guard named name with a breaker of its own, in a private shm, with
 * parameters p; free with svc_guard_free.
 */
struct guard	*svc_guard(const char *name, const struct breaker_params *p);
void		 svc_guard_free(struct guard *);

/*
 * Run q on c; the test fails unless it succeeds.  The first column of its
 * first row, or "" (a static buffer: copy it before the next call).
 */
const char	*svc_sql(PGconn *c, const char *q);

/* Milliseconds since t0 (util_mono_us). */
long	svc_ms_since(int64_t t0);

#endif

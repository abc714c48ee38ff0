/*
 * svc: the service tests' shared helpers (see svc.h).
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "svc.h"
#include "util.h"

#define SVC_FROZEN	8

/* The processes stopped now, and the watchdog of each. */
static struct {
	pid_t	pid;
	pid_t	watchdog;
}	frozen[SVC_FROZEN];

const char *
svc_env(const char *name)
{
	const char	*v = getenv(name);

	ck_assert_msg(v != NULL && v[0] != '\0', "%s is not set: run this "
	    "test under tests/unit/services.sh (make check does)", name);
	return v;
}

static void
sleep_ms(long ms)
{
	struct timespec	ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

void
svc_freeze(pid_t pid, long max_ms)
{
	pid_t	w;
	int	i;

	for (i = 0; i < SVC_FROZEN && frozen[i].pid != 0; i++)
		;
	ck_assert_msg(i < SVC_FROZEN, "too many frozen processes");
	ck_assert_int_gt(pid, 0);
	w = fork();
	ck_assert_int_ne(w, -1);
	if (w == 0) {
		/* Out of the test's process group, which Check may kill. */
		(void)setpgid(0, 0);
		sleep_ms(max_ms);
		(void)kill(pid, SIGCONT);
		_exit(0);
	}
	frozen[i].pid = pid;
	frozen[i].watchdog = w;
	ck_assert_int_eq(kill(pid, SIGSTOP), 0);
}

void
svc_thaw(pid_t pid)
{
	int	i;

	(void)kill(pid, SIGCONT);
	for (i = 0; i < SVC_FROZEN; i++) {
		if (frozen[i].pid != pid)
			continue;
		(void)kill(frozen[i].watchdog, SIGKILL);
		(void)waitpid(frozen[i].watchdog, NULL, 0);
		frozen[i].pid = frozen[i].watchdog = 0;
	}
}

int
svc_wait_gone(pid_t pid, long ms)
{
	int64_t	t0 = util_mono_us();

	while (kill(pid, 0) == 0 || errno != ESRCH) {
		/* Our own child: reap it, or it lingers as a zombie. */
		(void)waitpid(pid, NULL, WNOHANG);
		if (svc_ms_since(t0) > ms)
			return -1;
		sleep_ms(10);
	}
	return 0;
}

/* Whether the Redis at sock answers PING (or, with a password, AUTH). */
static int
redis_answers(const char *sock, const char *password)
{
	struct timeval	 tv = { 0, 200000 };
	redisContext	*c;
	redisReply	*r = NULL;
	int		 ok;

	if ((c = redisConnectUnixWithTimeout(sock, tv)) == NULL)
		return 0;
	if (c->err == 0)
		r = password != NULL ? redisCommand(c, "AUTH %s", password) :
		    redisCommand(c, "PING");
	ok = r != NULL && r->type == REDIS_REPLY_STATUS &&
	    strcmp(r->str, password != NULL ? "OK" : "PONG") == 0;
	if (r != NULL)
		freeReplyObject(r);
	redisFree(c);
	return ok;
}

void
svc_redis_start(struct svc_redis *r)
{
	char	 log[300];
	pid_t	 parent = getpid();
	int64_t	 t0;
	int	 n, fd;

	if (r->dir[0] == '\0') {
		n = snprintf(r->dir, sizeof(r->dir), "%s/redis.XXXXXX",
		    svc_env("WXAPP_TEST_TMP"));
		ck_assert(n > 0 && (size_t)n < sizeof(r->dir));
		ck_assert_ptr_nonnull(mkdtemp(r->dir));
		n = snprintf(r->sock, sizeof(r->sock), "%s/s", r->dir);
		ck_assert(n > 0 && (size_t)n < sizeof(r->sock));
	}
	n = snprintf(log, sizeof(log), "%s/log", r->dir);
	ck_assert(n > 0 && (size_t)n < sizeof(log));
	r->pid = fork();
	ck_assert_int_ne(r->pid, -1);
	if (r->pid == 0) {
		/* It dies with the test, however the test ends. */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		if ((fd = open("/dev/null", O_RDWR)) != -1) {
			(void)dup2(fd, 0);
			(void)dup2(fd, 1);
			(void)dup2(fd, 2);
		}
		execlp("redis-server", "redis-server", "--port", "0",
		    "--unixsocket", r->sock, "--unixsocketperm", "700",
		    "--save", "", "--appendonly", "no", "--dir", r->dir,
		    "--logfile", log, "--requirepass",
		    r->password != NULL ? r->password : "", (char *)NULL);
		_exit(127);
	}
	t0 = util_mono_us();
	while (!redis_answers(r->sock, r->password)) {
		ck_assert_msg(waitpid(r->pid, NULL, WNOHANG) == 0,
		    "redis-server exited (see %s)", log);
		ck_assert_msg(svc_ms_since(t0) < 10000,
		    "redis-server does not answer on %s", r->sock);
		sleep_ms(10);
	}
}

void
svc_redis_stop(struct svc_redis *r)
{
	if (r->pid == 0)
		return;
	(void)kill(r->pid, SIGCONT);
	ck_assert_int_eq(kill(r->pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(r->pid, NULL, 0), r->pid);
	r->pid = 0;
}

long
svc_ms_since(int64_t t0)
{
	return (long)((util_mono_us() - t0) / 1000);
}

/* What svc_guard allocates: the guard, then the shm of its breaker. */
struct svc_guard {
	struct guard	g;
	struct shm	shm;
};

struct guard *
svc_guard(const char *name, const struct breaker_params *p)
{
	static const struct shm_layout	lay = {
		.size = sizeof(struct breaker), .version = 1
	};
	struct svc_guard		*sg;

	sg = calloc(1, sizeof(*sg));
	ck_assert_ptr_nonnull(sg);
	ck_assert_int_eq(shm_private(&sg->shm, &lay), 0);
	breaker_reset(sg->shm.data, util_mono_us());
	sg->g = (struct guard){ .name = name, .shm = &sg->shm,
	    .br = sg->shm.data, .p = *p };
	return &sg->g;
}

void
svc_guard_free(struct guard *g)
{
	struct svc_guard	*sg = (struct svc_guard *)(void *)g;

	shm_detach(&sg->shm);
	free(sg);
}

const char *
svc_sql(PGconn *c, const char *q)
{
	static char	 val[256];
	PGresult	*res;

	res = PQexec(c, q);
	ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK ||
	    PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", q,
	    PQresultErrorMessage(res));
	snprintf(val, sizeof(val), "%s", PQntuples(res) > 0 &&
	    PQnfields(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	return val;
}

/*
 * Unit tests for lib/db against the PostgreSQL tests/unit/services.sh
 * started (WXAPP_TEST_PG).  A server that hangs is made by stopping our
 * connection's backend (or, for connecting, the postmaster) with SIGSTOP.
 * The "io" cases run calls from coroutines (lib/cowait), as the
 * concurrent loop does, with a small loop of their own.
 */
#include "check_run.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coro.h"
#include "cowait.h"
#include "db.h"
#include "log.h"
#include "svc.h"
#include "util.h"

#define STMT_TIMEOUT_MS	300
/* Our deadline, and what a loaded test machine may add to it. */
#define DEADLINE_MS	(STMT_TIMEOUT_MS + DB_DEADLINE_MARGIN_MS)
#define SLACK_MS	600

static const struct db_stmt stmts[] = {
	{ "t_insert", "INSERT INTO t (k, v) VALUES ($1, $2)", 2 },
	{ "t_get", "SELECT v FROM t WHERE k = $1", 1 },
	/* Lower case: a read all the same. */
	{ "t_count", "select count(*) FROM t", 0 },
	{ "t_sleep", "SELECT pg_sleep($1::float8)", 1 }
};
enum { T_INSERT, T_GET, T_COUNT, T_SLEEP };

static struct db	 db;
static PGconn		*admin;

/* Run sql on the admin connection; its one value, or "" (static). */
static const char *
sql(const char *q)
{
	return svc_sql(admin, q);
}

/* A db on conninfo with the test's timeouts and guard (NULL: none). */
static void
open_db(const char *conninfo, struct guard *g)
{
	struct db_opts	o = { .conninfo = conninfo,
	    .connect_timeout_ms = 300, .statement_timeout_ms = STMT_TIMEOUT_MS,
	    .guard = g };

	db_init(&db, &o, stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static void
setup(void)
{
	log_open(NULL, LOG_LEVEL_ERROR + 1, 0);
	admin = PQconnectdb(svc_env("WXAPP_TEST_PG"));
	ck_assert_msg(PQstatus(admin) == CONNECTION_OK, "%s",
	    PQerrorMessage(admin));
	(void)sql("SET client_min_messages TO warning");
	(void)sql("DROP TABLE IF EXISTS t");
	(void)sql("CREATE TABLE t (k text PRIMARY KEY, v text)");
	open_db(svc_env("WXAPP_TEST_PG"), NULL);
}

static void
teardown(void)
{
	db_close(&db);
	PQfinish(admin);
}

/* Statement id with up to two parameters; the status, the result freed. */
static enum db_status
exec2(size_t id, const char *p1, const char *p2)
{
	const char	*params[2] = { p1, p2 };
	PGresult	*res;
	enum db_status	 st;

	st = db_exec(&db, id, params, &res);
	if (st == DB_OK) {
		ck_assert_ptr_nonnull(res);
		PQclear(res);
	} else
		ck_assert_ptr_null(res);
	return st;
}

/* How many rows of t have key k, seen from the admin connection. */
static int
rows(const char *k)
{
	const char	*params[1] = { k };
	PGresult	*res;
	int		 n;

	res = PQexecParams(admin, "SELECT count(*) FROM t WHERE k = $1", 1,
	    NULL, params, NULL, NULL, 0);
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	n = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	return n;
}

/* A breaker that opens after 2 timeouts in a row, for a minute. */
static struct guard *
new_guard(void)
{
	static const struct breaker_params	p = { 10, 20, 50, 60000, 1, 2, 0 };

	return svc_guard("postgres", &p);
}

START_TEST(connect_prepares_the_statement_table)
{
	PGresult	*res;
	const char	*params[1] = { "a" };
	int		 i;

	ck_assert_int_eq(db_connect(&db), 0);
	ck_assert_ptr_nonnull(db.conn);
	res = PQexec(db.conn, "SELECT name, parameter_types::text "
	    "FROM pg_prepared_statements ORDER BY name");
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	ck_assert_int_eq(PQntuples(res), 4);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "t_count");
	ck_assert_str_eq(PQgetvalue(res, 1, 0), "t_get");
	ck_assert_str_eq(PQgetvalue(res, 2, 0), "t_insert");
	ck_assert_str_eq(PQgetvalue(res, 2, 1), "{text,text}");
	ck_assert_str_eq(PQgetvalue(res, 3, 0), "t_sleep");
	PQclear(res);
	/* The session has the statement timeout asked for. */
	res = PQexec(db.conn, "SHOW statement_timeout");
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "300ms");
	PQclear(res);

	/* Statements run by index, with parameters. */
	ck_assert_int_eq(exec2(T_INSERT, "a", "apple"), DB_OK);
	ck_assert_int_eq(exec2(T_INSERT, "b", NULL), DB_OK);
	ck_assert_int_eq(db_exec(&db, T_GET, params, &res), DB_OK);
	ck_assert_int_eq(PQntuples(res), 1);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "apple");
	PQclear(res);
	ck_assert_int_eq(db_exec(&db, T_COUNT, NULL, &res), DB_OK);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "2");
	PQclear(res);
	ck_assert_int_eq(db_ping(&db), DB_OK);
	ck_assert_ptr_eq(db_conn(&db), db.conn);
	ck_assert_int_gt(db.busy_us, 0);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(exec2(T_GET, "nosuchkey", NULL), DB_OK);
}
END_TEST

/* pg_stat_activity shows the name the program gives its connections. */
/* A statement of the table that does not prepare fails the connect. */
START_TEST(a_bad_statement_fails_the_connect)
{
	static const struct db_stmt	bad[] = {
		{ "b_one", "SELECT 1", 0 },
		{ "b_bad", "SELEC nonsense", 0 },
		{ "b_three", "SELECT 3", 0 }
	};
	struct db_opts			o = db.o;

	db_close(&db);
	db_init(&db, &o, bad, 3);
	ck_assert_int_eq(db_connect(&db), -1);
	ck_assert_ptr_null(db.conn);
	ck_assert_str_eq(db.sqlstate, "42601");
	ck_assert_ptr_nonnull(strstr(db.errmsg, "syntax error"));
	/* The next try prepares the whole table again (and fails again). */
	ck_assert_int_eq(db_ping(&db), DB_UNAVAILABLE);
	ck_assert_ptr_null(db.conn);
}
END_TEST

START_TEST(the_program_names_its_connections)
{
	struct db_opts	o = { .conninfo = svc_env("WXAPP_TEST_PG"),
	    .connect_timeout_ms = 300, .statement_timeout_ms = STMT_TIMEOUT_MS,
	    .application_name = "unit-test" };
	PGresult	*res;

	db_close(&db);
	db_init(&db, &o, stmts, sizeof(stmts) / sizeof(stmts[0]));
	ck_assert_int_eq(db_connect(&db), 0);
	res = PQexec(db.conn, "SHOW application_name");
	ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "unit-test");
	PQclear(res);
}
END_TEST

START_TEST(first_call_connects)
{
	ck_assert_ptr_null(db.conn);
	ck_assert_int_eq(exec2(T_INSERT, "a", "1"), DB_OK);
	ck_assert_ptr_nonnull(db.conn);
	ck_assert_int_eq(rows("a"), 1);
}
END_TEST

START_TEST(a_failing_statement_is_db_error_with_its_sqlstate)
{
	PGconn	*conn;

	ck_assert_int_eq(exec2(T_INSERT, "secret-value-42", "1"), DB_OK);
	conn = db.conn;
	ck_assert_int_eq(exec2(T_INSERT, "secret-value-42", "2"), DB_ERROR);
	ck_assert_str_eq(db.sqlstate, "23505");
	ck_assert_ptr_nonnull(strstr(db.errmsg, "duplicate key"));
	/* Terse: no DETAIL quoting the values. */
	ck_assert_ptr_null(strstr(db.errmsg, "secret-value-42"));
	ck_assert_ptr_null(strchr(db.errmsg, '\n'));
	ck_assert_int_eq(db.timed_out, 0);
	ck_assert_int_eq(db.in_doubt, 0);
	/* The server answered: the connection stays. */
	ck_assert_ptr_eq(db.conn, conn);
	ck_assert_int_eq(exec2(T_SLEEP, "not a number", NULL), DB_ERROR);
	ck_assert_str_eq(db.sqlstate, "22P02");
	ck_assert_int_eq(exec2(T_COUNT, NULL, NULL), DB_OK);
	ck_assert_ptr_eq(db.conn, conn);
}
END_TEST

START_TEST(transactions_commit_and_roll_back)
{
	ck_assert_int_eq(db_begin(&db), DB_OK);
	ck_assert_int_eq(exec2(T_INSERT, "a", "1"), DB_OK);
	ck_assert_int_eq(PQtransactionStatus(db.conn), PQTRANS_INTRANS);
	ck_assert_int_eq(rows("a"), 0);		/* not yet visible */
	db_rollback(&db);
	ck_assert_int_eq(PQtransactionStatus(db.conn), PQTRANS_IDLE);
	ck_assert_int_eq(rows("a"), 0);

	ck_assert_int_eq(db_begin(&db), DB_OK);
	ck_assert_int_eq(exec2(T_INSERT, "b", "1"), DB_OK);
	ck_assert_int_eq(db_commit(&db), DB_OK);
	ck_assert_int_eq(rows("b"), 1);

	/* A failure aborts the transaction; rollback recovers the session. */
	ck_assert_int_eq(db_begin(&db), DB_OK);
	ck_assert_int_eq(exec2(T_INSERT, "c", "1"), DB_OK);
	ck_assert_int_eq(exec2(T_INSERT, "b", "2"), DB_ERROR);
	ck_assert_str_eq(db.sqlstate, "23505");
	ck_assert_int_eq(exec2(T_COUNT, NULL, NULL), DB_ERROR);
	ck_assert_str_eq(db.sqlstate, "25P02");
	db_rollback(&db);
	ck_assert_int_eq(rows("c"), 0);
	ck_assert_int_eq(exec2(T_COUNT, NULL, NULL), DB_OK);

	/* Outside a transaction, rollback sends nothing. */
	db_rollback(&db);
	ck_assert_int_eq(PQtransactionStatus(db.conn), PQTRANS_IDLE);
	db_close(&db);
	db_rollback(&db);
	ck_assert_ptr_null(db.conn);
}
END_TEST

START_TEST(statement_timeout_keeps_the_connection)
{
	PGconn	*conn;
	int64_t	 t0;
	long	 ms;

	ck_assert_int_eq(db_connect(&db), 0);
	conn = db.conn;
	t0 = util_mono_us();
	ck_assert_int_eq(exec2(T_SLEEP, "5", NULL), DB_UNAVAILABLE);
	ms = svc_ms_since(t0);
	ck_assert_int_ge(ms, STMT_TIMEOUT_MS - 20);
	ck_assert_int_lt(ms, STMT_TIMEOUT_MS + SLACK_MS);
	ck_assert_str_eq(db.sqlstate, "57014");
	ck_assert_int_eq(db.timed_out, 1);
	/* The server cancelled it: nothing is in doubt, the link is fine. */
	ck_assert_int_eq(db.in_doubt, 0);
	ck_assert_ptr_eq(db.conn, conn);
	ck_assert_int_eq(exec2(T_SLEEP, "0", NULL), DB_OK);
	ck_assert_int_eq(db.timed_out, 0);
	ck_assert_ptr_eq(db.conn, conn);
}
END_TEST

/*
 * Freeze our backend, run statement id, thaw: its status, how long it
 * took, and the flags it left.  Then wait for the backend to exit (it
 * runs what it was sent first), so the outcome can be checked.
 */
static enum db_status
exec_frozen(size_t id, const char *p1, const char *p2, long *ms,
    int *timed_out, int *in_doubt)
{
	const char	*params[2] = { p1, p2 };
	PGresult	*res;
	enum db_status	 st;
	int64_t		 t0;
	pid_t		 backend;

	ck_assert_int_eq(db_ping(&db), DB_OK);
	backend = PQbackendPID(db.conn);
	svc_freeze(backend, 10000);
	t0 = util_mono_us();
	st = db_exec(&db, id, params, &res);
	*ms = svc_ms_since(t0);
	svc_thaw(backend);
	*timed_out = db.timed_out;
	*in_doubt = db.in_doubt;
	ck_assert_ptr_null(res);
	ck_assert_ptr_null(db.conn);
	ck_assert_int_eq(svc_wait_gone(backend, 5000), 0);
	return st;
}

START_TEST(a_hung_server_meets_our_deadline)
{
	long	ms;
	int	timed_out, in_doubt;

	/* A read: lost, but nothing was changed. */
	ck_assert_int_eq(exec_frozen(T_COUNT, NULL, NULL, &ms, &timed_out,
	    &in_doubt), DB_UNAVAILABLE);
	ck_assert_int_ge(ms, DEADLINE_MS - 20);
	ck_assert_int_lt(ms, DEADLINE_MS + SLACK_MS);
	ck_assert_int_eq(timed_out, 1);
	ck_assert_int_eq(in_doubt, 0);
	ck_assert_ptr_nonnull(strstr(db.errmsg, "no answer within 400 ms"));

	/* The next call connects again. */
	ck_assert_int_eq(exec2(T_COUNT, NULL, NULL), DB_OK);
	ck_assert_int_eq(db.timed_out, 0);
}
END_TEST

START_TEST(a_write_lost_outside_a_transaction_is_in_doubt)
{
	long	ms;
	int	timed_out, in_doubt;

	ck_assert_int_eq(exec_frozen(T_INSERT, "doubt", "1", &ms, &timed_out,
	    &in_doubt), DB_UNAVAILABLE);
	ck_assert_int_ge(ms, DEADLINE_MS - 20);
	ck_assert_int_lt(ms, DEADLINE_MS + SLACK_MS);
	ck_assert_int_eq(timed_out, 1);
	ck_assert_int_eq(in_doubt, 1);
	/* Rightly so: the server woke up and committed it. */
	ck_assert_int_eq(rows("doubt"), 1);
	/* The flag is of the last call only. */
	ck_assert_int_eq(exec2(T_COUNT, NULL, NULL), DB_OK);
	ck_assert_int_eq(db.in_doubt, 0);
}
END_TEST

START_TEST(a_write_lost_inside_a_transaction_is_not_in_doubt)
{
	long	ms;
	int	timed_out, in_doubt;

	ck_assert_int_eq(db_begin(&db), DB_OK);
	ck_assert_int_eq(exec2(T_INSERT, "before", "1"), DB_OK);
	ck_assert_int_eq(exec_frozen(T_INSERT, "inside", "1", &ms, &timed_out,
	    &in_doubt), DB_UNAVAILABLE);
	ck_assert_int_eq(timed_out, 1);
	ck_assert_int_eq(in_doubt, 0);
	/* Rightly so: the server rolled it back. */
	ck_assert_int_eq(rows("before"), 0);
	ck_assert_int_eq(rows("inside"), 0);
}
END_TEST

START_TEST(a_commit_lost_is_in_doubt)
{
	const char	*params[2] = { "committed", "1" };
	PGresult	*res;
	enum db_status	 st;
	int64_t		 t0;
	pid_t		 backend;
	long		 ms;
	int		 in_doubt;

	ck_assert_int_eq(db_begin(&db), DB_OK);
	ck_assert_int_eq(db_exec(&db, T_INSERT, params, &res), DB_OK);
	PQclear(res);
	backend = PQbackendPID(db.conn);
	svc_freeze(backend, 10000);
	t0 = util_mono_us();
	st = db_commit(&db);
	ms = svc_ms_since(t0);
	svc_thaw(backend);
	in_doubt = db.in_doubt;
	ck_assert_int_eq(st, DB_UNAVAILABLE);
	ck_assert_int_ge(ms, DEADLINE_MS - 20);
	ck_assert_int_lt(ms, DEADLINE_MS + SLACK_MS);
	ck_assert_int_eq(in_doubt, 1);
	ck_assert_int_eq(svc_wait_gone(backend, 5000), 0);
	ck_assert_int_eq(rows("committed"), 1);
}
END_TEST

START_TEST(a_hung_postmaster_meets_the_connect_deadline)
{
	pid_t		pm = (pid_t)atoi(svc_env("WXAPP_TEST_PG_PID"));
	enum db_status	st;
	int64_t		t0;
	long		ms[2];
	int		rc, timed_out[2];

	svc_freeze(pm, 10000);
	t0 = util_mono_us();
	rc = db_connect(&db);
	ms[0] = svc_ms_since(t0);
	timed_out[0] = db.timed_out;
	t0 = util_mono_us();
	st = exec2(T_COUNT, NULL, NULL);
	ms[1] = svc_ms_since(t0);
	timed_out[1] = db.timed_out;
	svc_thaw(pm);

	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(st, DB_UNAVAILABLE);
	ck_assert_int_eq(timed_out[0], 1);
	ck_assert_int_eq(timed_out[1], 1);
	ck_assert_int_ge(ms[0], 280);
	ck_assert_int_lt(ms[0], 300 + SLACK_MS);
	ck_assert_int_ge(ms[1], 280);
	ck_assert_int_lt(ms[1], 300 + SLACK_MS);
	ck_assert_ptr_null(db.conn);
	ck_assert_int_eq(db.in_doubt, 0);
	ck_assert_int_eq(exec2(T_COUNT, NULL, NULL), DB_OK);
}
END_TEST

START_TEST(no_server_is_unavailable_at_once)
{
	int64_t	t0;

	open_db("host=/nonexistent user=wxapp dbname=postgres", NULL);
	t0 = util_mono_us();
	ck_assert_int_eq(db_connect(&db), -1);
	ck_assert_int_eq(exec2(T_INSERT, "a", "1"), DB_UNAVAILABLE);
	ck_assert_int_eq(db_ping(&db), DB_UNAVAILABLE);
	ck_assert_int_eq(db_begin(&db), DB_UNAVAILABLE);
	ck_assert_ptr_null(db_conn(&db));
	ck_assert_int_lt(svc_ms_since(t0), 200);
	ck_assert_int_eq(db.timed_out, 0);
	/* Never sent: not in doubt, whatever the statement. */
	ck_assert_int_eq(db.in_doubt, 0);
	ck_assert_str_ne(db.errmsg, "");
}
END_TEST

START_TEST(a_connection_the_server_closed_is_replaced)
{
	char	q[128];
	pid_t	backend;

	ck_assert_int_eq(exec2(T_INSERT, "a", "1"), DB_OK);
	backend = PQbackendPID(db.conn);
	/* What a restart or failover does to an idle connection. */
	snprintf(q, sizeof(q), "SELECT pg_terminate_backend(%d)", (int)backend);
	ck_assert_str_eq(sql(q), "t");
	ck_assert_int_eq(svc_wait_gone(backend, 5000), 0);
	/* Noticed before sending: the call connects again and succeeds. */
	ck_assert_int_eq(exec2(T_INSERT, "b", "1"), DB_OK);
	ck_assert_int_ne(PQbackendPID(db.conn), backend);
	ck_assert_int_eq(db.in_doubt, 0);
	ck_assert_int_eq(rows("b"), 1);
}
END_TEST

START_TEST(statements_are_prepared_again_after_discard_all)
{
	PGresult	*res;

	ck_assert_int_eq(db_connect(&db), 0);
	res = PQexec(db.conn, "DISCARD ALL");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	res = PQexec(db.conn, "SELECT count(*) FROM pg_prepared_statements");
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "0");
	PQclear(res);
	/* 26000, prepare the table again, run it: one call, DB_OK. */
	ck_assert_int_eq(exec2(T_INSERT, "a", "1"), DB_OK);
	ck_assert_int_eq(rows("a"), 1);
	res = PQexec(db.conn, "SELECT count(*) FROM pg_prepared_statements");
	ck_assert_str_eq(PQgetvalue(res, 0, 0), "4");
	PQclear(res);
}
END_TEST

/*
 * One statement gone, the others still there (DEALLOCATE, a pooler's
 * server connection): the missing one is prepared again and runs (db_call
 * once prepared the whole table, and PREPARE of one that still existed
 * failed with 42P05).
 */
START_TEST(one_statement_deallocated)
{
	PGresult	*res;

	ck_assert_int_eq(db_connect(&db), 0);
	res = PQexec(db.conn, "DEALLOCATE t_insert");
	ck_assert_int_eq(PQresultStatus(res), PGRES_COMMAND_OK);
	PQclear(res);
	ck_assert_int_eq(exec2(T_INSERT, "a", "1"), DB_OK);
	ck_assert_int_eq(rows("a"), 1);
}
END_TEST

START_TEST(timeouts_open_the_breaker)
{
	struct guard	*g = new_guard();
	struct breaker	*br = g->br;
	int64_t		 t0, busy;

	open_db(svc_env("WXAPP_TEST_PG"), g);
	/* An error is the server working: no failure. */
	ck_assert_int_eq(exec2(T_INSERT, "a", "1"), DB_OK);
	ck_assert_int_eq(exec2(T_INSERT, "a", "1"), DB_ERROR);
	ck_assert_uint_eq(br->timeouts, 0);
	ck_assert_int_eq(exec2(T_SLEEP, "5", NULL), DB_UNAVAILABLE);
	ck_assert_int_eq(br->state, BREAKER_CLOSED);
	ck_assert_int_eq(exec2(T_SLEEP, "5", NULL), DB_UNAVAILABLE);
	ck_assert_int_eq(br->state, BREAKER_OPEN);
	/* Open: calls fail at once, without reaching the server. */
	busy = db.busy_us;
	t0 = util_mono_us();
	ck_assert_int_eq(exec2(T_COUNT, NULL, NULL), DB_UNAVAILABLE);
	ck_assert_int_eq(db_ping(&db), DB_UNAVAILABLE);
	ck_assert_int_lt(svc_ms_since(t0), 20);
	ck_assert_str_eq(db.errmsg, "circuit open");
	ck_assert_int_eq(db.busy_us, busy);
	ck_assert_uint_eq(br->rejected, 2);
	db_close(&db);
	svc_guard_free(g);
}
END_TEST

/*
 * A statement_timeout is the server working, slowly: a run of them
 * opens the breaker.  No answer by our own deadline is a server that
 * did not even cancel: one opens it.
 */
START_TEST(a_hung_call_opens_the_breaker_at_once)
{
	struct guard	*g = new_guard();
	long		 ms;
	int		 timed_out, in_doubt;

	db_close(&db);
	open_db(svc_env("WXAPP_TEST_PG"), g);
	ck_assert_int_eq(exec_frozen(T_COUNT, NULL, NULL, &ms, &timed_out,
	    &in_doubt), DB_UNAVAILABLE);
	ck_assert_int_eq(timed_out, 1);
	ck_assert_int_eq(db.hung, 1);
	ck_assert_int_eq(g->br->state, BREAKER_OPEN);
	ck_assert_uint_eq(g->br->timeouts, 1);
	db_close(&db);
	svc_guard_free(g);
}
END_TEST

/*
 * The io cases: calls from coroutines through a struct db_io on lib/cowait,
 * as app/concurrent.c gives the db.
 */
static struct cowait		cw;
static struct cowait_lock	dblock;

static int
io_take(void *arg, int64_t deadline)
{
	(void)arg;
	return cowait_lock_take(&cw, &dblock, deadline);
}

static void
io_give(void *arg)
{
	(void)arg;
	cowait_lock_give(&cw, &dblock);
}

static int
io_wait(void *arg, int fd, short events, int64_t deadline)
{
	(void)arg;
	return cowait_fd(&cw, fd, events, deadline);
}

static const struct db_io	io = { .take = io_take, .give = io_give,
	.wait = io_wait };

/* As the loop's: no yield inside a transaction. */
static int
io_may_yield(void *arg)
{
	(void)arg;
	return !db.in_txn;
}

/* A coroutine: its calls, what they returned, when it ended. */
struct co {
	struct cowait_task	 t;
	struct coro		*co;
	void			(*fn)(struct co *);
	const char		*arg;
	enum db_status		 st;
	char			 errmsg[256];
	int			 hung;
	int			 yields;	/* resumed after the first run */
	int			 done;
	int			 order;		/* of its end, from 1 */
};

static int	ended;

static void
co_main(void *arg)
{
	struct co	*c = arg;

	c->fn(c);
	c->order = ++ended;
}

/* Start c, as the loop starts a request: 1 when it yielded. */
static int
co_start(struct co *c, void (*fn)(struct co *), const char *a)
{
	int	more;

	c->t.owner = c;
	c->fn = fn;
	c->arg = a;
	c->co = coro_new(64 * 1024);
	ck_assert_ptr_nonnull(c->co);
	cw.current = &c->t;
	more = coro_start(c->co, co_main, c);
	cw.current = NULL;
	c->done = !more;
	return more;
}

static void
co_resume(struct co *c)
{
	cw.current = &c->t;
	c->done = !coro_resume(c->co);
	cw.current = NULL;
	c->yields++;
}

/* The loop: resume what is ready or due until every one of cs ended. */
static void
co_loop(struct co **cs, int n)
{
	struct curl_waitfd	 w[8];
	struct co		*wc[8];
	struct cowait_task	*t;
	int64_t			 wake, due;
	int			 i, k, left;

	ck_assert_int_le(n, 8);
	for (;;) {
		for (i = left = k = 0, wake = 0; i < n; i++) {
			if (cs[i]->done)
				continue;
			left++;
			if (cowait_fd_wanted(&cs[i]->t, &w[k]))
				wc[k++] = cs[i];
			if ((due = cowait_due(&cs[i]->t)) > 0 &&
			    (wake == 0 || due < wake))
				wake = due;
		}
		if (left == 0)
			return;
		cowait_poll(&cw, w, (unsigned)k, wake);
		for (i = 0; i < k; i++)
			if (w[i].revents != 0 && !wc[i]->done &&
			    wc[i]->t.waiting == COWAIT_FD) {
				cowait_fd_ready(&wc[i]->t);
				co_resume(wc[i]);
			}
		while ((t = cowait_done(&cw)) != NULL)
			co_resume(t->owner);
		for (i = 0; i < n; i++)
			if (!cs[i]->done && (due = cowait_due(&cs[i]->t)) > 0 &&
			    due <= util_mono_us())
				co_resume(cs[i]);
	}
}

static void
co_free(struct co *c)
{
	coro_free(c->co);
}

/* A call of statement T_COUNT, or T_SLEEP of c->arg seconds. */
static void
co_call(struct co *c)
{
	c->st = exec2(c->arg != NULL ? T_SLEEP : T_COUNT, c->arg, NULL);
	c->hung = db.hung;
	snprintf(c->errmsg, sizeof(c->errmsg), "%s", db.errmsg);
}

/* A transaction: BEGIN, a sleep of c->arg seconds, an insert, COMMIT. */
static void
co_txn(struct co *c)
{
	ck_assert_int_eq(db_begin(&db), DB_OK);
	ck_assert_int_eq(db.in_txn, 1);
	ck_assert_int_eq(exec2(T_SLEEP, c->arg, NULL), DB_OK);
	ck_assert_int_eq(exec2(T_INSERT, "txn", "1"), DB_OK);
	c->st = db_commit(&db);
	ck_assert_int_eq(db.in_txn, 0);
}

/* Nothing of PostgreSQL's: a request the process answers meanwhile. */
static void
co_other(struct co *c)
{
	c->st = DB_OK;
}

static void
io_setup(void)
{
	setup();
	ck_assert_int_eq(cowait_init(&cw), 0);
	cw.may_yield = io_may_yield;
	cowait_lock_init(&dblock);
	db.o.io = &io;
	ended = 0;
}

static void
io_teardown(void)
{
	teardown();
	cowait_free(&cw);
}

/*
 * A call to a hung server waits for its socket in the loop: the process
 * answers other requests meanwhile, and the call still meets its deadline.
 */
START_TEST(a_hung_server_holds_only_its_caller)
{
	struct co	 a = { 0 }, b = { 0 }, *all[] = { &a, &b };
	pid_t		 backend;

	ck_assert_int_eq(db_ping(&db), DB_OK);
	backend = PQbackendPID(db.conn);
	svc_freeze(backend, 10000);
	ck_assert_int_eq(co_start(&a, co_call, NULL), 1);
	ck_assert_int_eq(a.t.waiting, COWAIT_FD);
	/* Blocked in poll(2), a would have ended before this. */
	ck_assert_int_eq(co_start(&b, co_other, NULL), 0);
	ck_assert_int_eq(b.order, 1);
	co_loop(all, 2);
	svc_thaw(backend);
	ck_assert_int_eq(a.st, DB_UNAVAILABLE);
	ck_assert_int_eq(a.hung, 1);
	ck_assert_int_eq(dblock.held, 0);
	ck_assert_int_eq(svc_wait_gone(backend, 5000), 0);
	ck_assert_int_eq(exec2(T_COUNT, NULL, NULL), DB_OK);
	co_free(&a);
	co_free(&b);
}
END_TEST

/* Calls take turns with the connection: the second waits for the first. */
START_TEST(calls_take_turns_with_the_connection)
{
	struct co	 a = { 0 }, b = { 0 }, *all[] = { &a, &b };

	ck_assert_int_eq(db_connect(&db), 0);
	ck_assert_int_eq(co_start(&a, co_call, "0.1"), 1);
	ck_assert_int_eq(a.t.waiting, COWAIT_FD);
	ck_assert_int_eq(co_start(&b, co_call, NULL), 1);
	ck_assert_int_eq(b.t.waiting, COWAIT_EVENT);
	co_loop(all, 2);
	ck_assert_int_eq(a.st, DB_OK);
	ck_assert_int_eq(b.st, DB_OK);
	ck_assert_int_eq(a.order, 1);
	ck_assert_int_eq(b.order, 2);
	ck_assert_int_eq(dblock.held, 0);
	co_free(&a);
	co_free(&b);
}
END_TEST

/*
 * A call that waits behind a hung one fails when the hung call opens the
 * breaker, without a try of its own; one that comes while the breaker is
 * open and the trial holds the connection fails at once.
 */
START_TEST(a_call_behind_a_hung_one_fails_with_the_breaker)
{
	struct guard	*g = new_guard();
	struct co	 a = { 0 }, b = { 0 }, c = { 0 }, *all[] = { &a, &b };
	pid_t		 backend;

	db.o.guard = g;
	ck_assert_int_eq(db_ping(&db), DB_OK);
	backend = PQbackendPID(db.conn);
	svc_freeze(backend, 10000);
	ck_assert_int_eq(co_start(&a, co_call, NULL), 1);
	ck_assert_int_eq(co_start(&b, co_call, NULL), 1);
	ck_assert_int_eq(b.t.waiting, COWAIT_EVENT);
	co_loop(all, 2);
	svc_thaw(backend);
	ck_assert_int_eq(a.st, DB_UNAVAILABLE);
	ck_assert_int_eq(a.hung, 1);
	ck_assert_int_eq(g->br->state, BREAKER_OPEN);
	ck_assert_int_eq(b.st, DB_UNAVAILABLE);
	ck_assert_str_eq(b.errmsg, "circuit open");
	ck_assert_int_eq(b.hung, 0);
	ck_assert_uint_eq(g->br->timeouts, 1);
	/* The lock held, as by a trial in flight. */
	dblock.held = 1;
	ck_assert_int_eq(co_start(&c, co_call, NULL), 0);
	ck_assert_int_eq(c.st, DB_UNAVAILABLE);
	ck_assert_str_eq(c.errmsg, "circuit open");
	dblock.held = 0;
	ck_assert_int_eq(svc_wait_gone(backend, 5000), 0);
	db_close(&db);
	co_free(&a);
	co_free(&b);
	co_free(&c);
	svc_guard_free(g);
}
END_TEST

/* A call that waits its turn longer than its deadline fails, unsent. */
START_TEST(a_turn_not_given_by_the_deadline_fails)
{
	struct co	 a = { 0 }, *all[] = { &a };

	ck_assert_int_eq(db_connect(&db), 0);
	dblock.held = 1;	/* as by a call that never gives it back */
	ck_assert_int_eq(co_start(&a, co_call, NULL), 1);
	ck_assert_int_eq(a.t.waiting, COWAIT_EVENT);
	co_loop(all, 1);
	ck_assert_int_eq(a.st, DB_UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(a.errmsg, "busy for 400 ms"));
	ck_assert_ptr_null(dblock.waiters);
	dblock.held = 0;
	/* The connection was never touched: it still works. */
	ck_assert_int_eq(exec2(T_COUNT, NULL, NULL), DB_OK);
	co_free(&a);
}
END_TEST

/*
 * Inside a transaction nothing yields: a call made meanwhile runs after
 * its COMMIT, never inside it.
 */
START_TEST(no_other_call_lands_in_a_transaction)
{
	struct co	 a = { 0 }, b = { 0 }, *all[] = { &a, &b };

	ck_assert_int_eq(db_connect(&db), 0);
	/* BEGIN is sent outside the transaction: it yields. */
	ck_assert_int_eq(co_start(&a, co_txn, "0.05"), 1);
	ck_assert_int_eq(co_start(&b, co_call, NULL), 1);
	co_loop(all, 2);
	ck_assert_int_eq(a.st, DB_OK);
	/* Resumed once, after BEGIN: the rest ran without a yield. */
	ck_assert_int_eq(a.yields, 1);
	ck_assert_int_eq(b.st, DB_OK);
	ck_assert_int_eq(a.order, 1);
	ck_assert_int_eq(rows("txn"), 1);
	co_free(&a);
	co_free(&b);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("db");
	TCase	*tc = tcase_create("db");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, connect_prepares_the_statement_table);
	tcase_add_test(tc, a_bad_statement_fails_the_connect);
	tcase_add_test(tc, the_program_names_its_connections);
	tcase_add_test(tc, first_call_connects);
	tcase_add_test(tc, a_failing_statement_is_db_error_with_its_sqlstate);
	tcase_add_test(tc, transactions_commit_and_roll_back);
	tcase_add_test(tc, statement_timeout_keeps_the_connection);
	tcase_add_test(tc, a_hung_server_meets_our_deadline);
	tcase_add_test(tc, a_write_lost_outside_a_transaction_is_in_doubt);
	tcase_add_test(tc, a_write_lost_inside_a_transaction_is_not_in_doubt);
	tcase_add_test(tc, a_commit_lost_is_in_doubt);
	tcase_add_test(tc, a_hung_postmaster_meets_the_connect_deadline);
	tcase_add_test(tc, no_server_is_unavailable_at_once);
	tcase_add_test(tc, a_connection_the_server_closed_is_replaced);
	tcase_add_test(tc, statements_are_prepared_again_after_discard_all);
	tcase_add_test(tc, timeouts_open_the_breaker);
	tcase_add_test(tc, a_hung_call_opens_the_breaker_at_once);
	tcase_add_test(tc, one_statement_deallocated);
	suite_add_tcase(s, tc);
	tc = tcase_create("io");
	tcase_add_checked_fixture(tc, io_setup, io_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, a_hung_server_holds_only_its_caller);
	tcase_add_test(tc, calls_take_turns_with_the_connection);
	tcase_add_test(tc, a_call_behind_a_hung_one_fails_with_the_breaker);
	tcase_add_test(tc, a_turn_not_given_by_the_deadline_fails);
	tcase_add_test(tc, no_other_call_lands_in_a_transaction);
	suite_add_tcase(s, tc);
	return check_run(s);
}

/*
 * Unit tests for lib/db against the PostgreSQL tests/unit/services.sh
 * started (WXAPP_TEST_PG).  A server that hangs is made by stopping our
 * connection's backend (or, for connecting, the postmaster) with SIGSTOP.
 */
#include "check_run.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int
main(void)
{
	Suite	*s = suite_create("db");
	TCase	*tc = tcase_create("db");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, connect_prepares_the_statement_table);
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
	return check_run(s);
}

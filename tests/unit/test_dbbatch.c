/*
 * Unit tests for lib/dbbatch against the PostgreSQL tests/unit/services.sh
 * started (WXAPP_TEST_PG): calls from coroutines run as one statement,
 * each given its own row; the cases that run at once; a bad call that
 * does not fail the others.
 */
#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coro.h"
#include "cowait.h"
#include "db.h"
#include "dbbatch.h"
#include "log.h"
#include "svc.h"

/* Rows of t in key order, so that two batches cannot deadlock. */
static const struct db_stmt stmts[] = {
	{ "bt_put", "WITH x AS (SELECT * FROM unnest($1::text[], $2::text[])"
	    " WITH ORDINALITY AS x(k, v, ord)),"
	    " i AS (INSERT INTO bt (k, v) SELECT k, v FROM x ORDER BY k"
	    " RETURNING k, v)"
	    " SELECT i.k, i.v, x.ord FROM x JOIN i ON i.k = x.k", 2 }
};

#define NCALLS	4

static struct db	 db;
static struct dbbatch	 b;
static struct cowait	 cw;
static PGconn		*admin;

/* A coroutine's call and what it got. */
struct call {
	struct cowait_task	 t;
	struct coro		*co;
	const char		*params[2];
	enum db_status		 st;
	char			 k[64], v[64];
	int			 v_null;
	char			 sqlstate[6];
};

static void
setup(void)
{
	struct db_opts	o = { .connect_timeout_ms = 2000,
	    .statement_timeout_ms = 2000 };

	log_open(NULL, LOG_LEVEL_ERROR + 1, 0);
	admin = PQconnectdb(svc_env("WXAPP_TEST_PG"));
	ck_assert_msg(PQstatus(admin) == CONNECTION_OK, "%s",
	    PQerrorMessage(admin));
	(void)svc_sql(admin, "SET client_min_messages TO warning");
	(void)svc_sql(admin, "DROP TABLE IF EXISTS bt");
	(void)svc_sql(admin, "CREATE TABLE bt (k text PRIMARY KEY, v text"
	    " CHECK (v IS DISTINCT FROM 'bad'))");
	o.conninfo = svc_env("WXAPP_TEST_PG");
	db_init(&db, &o, stmts, 1);
	ck_assert_int_eq(cowait_init(&cw), 0);
	ck_assert_int_eq(dbbatch_init(&b, &db, 0, 2, 0), 0);
	b.cw = &cw;
}

static void
teardown(void)
{
	cowait_free(&cw);
	db_close(&db);
	PQfinish(admin);
}

/* A coroutine: one call, its row kept. */
static void
caller(void *arg)
{
	struct call	*c = arg;
	PGresult	*res;

	c->st = dbbatch_exec(&b, c->params, &res);
	memcpy(c->sqlstate, db.sqlstate, sizeof(c->sqlstate));
	if (c->st != DB_OK) {
		ck_assert_ptr_null(res);
		return;
	}
	ck_assert_int_eq(PQntuples(res), 1);
	ck_assert_int_eq(PQnfields(res), 3);
	snprintf(c->k, sizeof(c->k), "%s", PQgetvalue(res, 0, 0));
	c->v_null = PQgetisnull(res, 0, 1);
	snprintf(c->v, sizeof(c->v), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
}

/* Start the n calls, each in its coroutine, as a loop would. */
static void
start(struct call *c, int n)
{
	int	i;

	for (i = 0; i < n; i++) {
		c[i].t.owner = &c[i];
		c[i].co = coro_new(64 * 1024);
		ck_assert_ptr_nonnull(c[i].co);
		cw.current = &c[i].t;
		/* 1: it waits in the batch; 0: it ran at once. */
		(void)coro_start(c[i].co, caller, &c[i]);
		cw.current = NULL;
	}
}

/* Run the batch, resume every woken coroutine; how many there were. */
static int
finish(void)
{
	struct cowait_task	*t;
	struct call		*c;
	int			 n = 0;

	dbbatch_run(&b);
	while ((t = cowait_done(&cw)) != NULL) {
		c = t->owner;
		cw.current = t;
		ck_assert_int_eq(coro_resume(c->co), 0);
		cw.current = NULL;
		n++;
	}
	return n;
}

static void
free_calls(struct call *c, int n)
{
	int	i;

	for (i = 0; i < n; i++)
		coro_free(c[i].co);
}

START_TEST(calls_of_a_turn_run_as_one_statement)
{
	/* Quotes, backslashes, braces, commas and NULL survive the arrays. */
	static const char *const kv[NCALLS][2] = {
		{ "d", "plain" }, { "a", "with \"quotes\", {braces}" },
		{ "c", "back\\slash" }, { "b", NULL } };
	struct call	c[NCALLS];
	int		i;

	memset(c, 0, sizeof(c));
	for (i = 0; i < NCALLS; i++) {
		c[i].params[0] = kv[i][0];
		c[i].params[1] = kv[i][1];
	}
	start(c, NCALLS);
	ck_assert(dbbatch_pending(&b));
	ck_assert_uint_eq(b.runs, 0);
	ck_assert_int_eq(finish(), NCALLS);
	ck_assert(!dbbatch_pending(&b));
	ck_assert_uint_eq(b.runs, 1);
	ck_assert_uint_eq(b.rows, NCALLS);
	for (i = 0; i < NCALLS; i++) {
		ck_assert_int_eq(c[i].st, DB_OK);
		ck_assert_str_eq(c[i].k, kv[i][0]);
		if (kv[i][1] == NULL)
			ck_assert(c[i].v_null);
		else
			ck_assert_str_eq(c[i].v, kv[i][1]);
	}
	ck_assert_str_eq(svc_sql(admin, "SELECT count(*) FROM bt"), "4");
	free_calls(c, NCALLS);
}
END_TEST

START_TEST(a_key_already_waiting_runs_at_once)
{
	struct call	c[2];

	memset(c, 0, sizeof(c));
	c[0].params[0] = c[1].params[0] = "k";
	c[0].params[1] = "first";
	c[1].params[1] = "second";
	start(c, 2);
	/* The second ran alone, before the first: it has the row. */
	ck_assert_uint_eq(b.runs, 1);
	ck_assert_int_eq(c[1].st, DB_OK);
	ck_assert_str_eq(c[1].v, "second");
	ck_assert_int_eq(finish(), 1);
	ck_assert_int_eq(c[0].st, DB_ERROR);
	ck_assert_str_eq(c[0].sqlstate, "23505");
	free_calls(c, 2);
}
END_TEST

START_TEST(outside_a_coroutine_a_call_runs_at_once)
{
	const char	*params[2] = { "x", "y" };
	PGresult	*res;

	ck_assert_int_eq(dbbatch_exec(&b, params, &res), DB_OK);
	ck_assert(!dbbatch_pending(&b));
	ck_assert_int_eq(PQntuples(res), 1);
	ck_assert_str_eq(PQgetvalue(res, 0, 2), "1");
	PQclear(res);
	/* Nor without a loop at all. */
	b.cw = NULL;
	params[0] = "z";
	ck_assert_int_eq(dbbatch_exec(&b, params, &res), DB_OK);
	PQclear(res);
	ck_assert_uint_eq(b.runs, 2);
}
END_TEST

START_TEST(a_bad_call_does_not_fail_the_others)
{
	struct call	c[3];

	memset(c, 0, sizeof(c));
	c[0].params[0] = "p";
	c[0].params[1] = "good";
	c[1].params[0] = "q";
	c[1].params[1] = "bad";		/* the CHECK refuses it */
	c[2].params[0] = "r";
	c[2].params[1] = "good";
	start(c, 3);
	ck_assert_int_eq(finish(), 3);
	/* The batch, then each call alone. */
	ck_assert_uint_eq(b.runs, 4);
	ck_assert_int_eq(c[0].st, DB_OK);
	ck_assert_int_eq(c[1].st, DB_ERROR);
	ck_assert_str_eq(c[1].sqlstate, "23514");
	ck_assert_int_eq(c[2].st, DB_OK);
	ck_assert_str_eq(svc_sql(admin, "SELECT string_agg(k, ',' ORDER BY k)"
	    " FROM bt"), "p,r");
	free_calls(c, 3);
}
END_TEST

START_TEST(a_batch_is_set_up_within_its_bounds)
{
	struct dbbatch	x;

	ck_assert_int_eq(dbbatch_init(&x, &db, 0, 0, 0), -1);
	ck_assert_int_eq(dbbatch_init(&x, &db, 0, DBBATCH_PARAMS + 1, 0), -1);
	ck_assert_int_eq(dbbatch_init(&x, &db, 0, 2, 2), -1);
	ck_assert_int_eq(dbbatch_init(&x, &db, 0, 2, -1), -1);
	ck_assert_int_eq(dbbatch_init(&x, &db, 0, DBBATCH_PARAMS, 1), 0);
}
END_TEST

START_TEST(a_server_down_fails_every_call_of_the_batch)
{
	struct call	c[2];

	memset(c, 0, sizeof(c));
	c[0].params[0] = "s";
	c[1].params[0] = "t";
	c[0].params[1] = c[1].params[1] = "v";
	db_close(&db);
	db.o.conninfo = "host=/nonexistent dbname=none";
	start(c, 2);
	ck_assert_int_eq(finish(), 2);
	ck_assert_uint_eq(b.runs, 1);
	ck_assert_int_eq(c[0].st, DB_UNAVAILABLE);
	ck_assert_int_eq(c[1].st, DB_UNAVAILABLE);
	free_calls(c, 2);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("dbbatch");
	TCase	*tc = tcase_create("dbbatch");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, calls_of_a_turn_run_as_one_statement);
	tcase_add_test(tc, a_key_already_waiting_runs_at_once);
	tcase_add_test(tc, outside_a_coroutine_a_call_runs_at_once);
	tcase_add_test(tc, a_bad_call_does_not_fail_the_others);
	tcase_add_test(tc, a_batch_is_set_up_within_its_bounds);
	tcase_add_test(tc, a_server_down_fails_every_call_of_the_batch);
	suite_add_tcase(s, tc);
	return check_run(s);
}

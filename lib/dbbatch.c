/*
 * dbbatch: calls of one statement from many coroutines, run as one (see
 * dbbatch.h).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coro.h"
#include "dbbatch.h"
#include "log.h"
#include "span.h"
#include "util.h"

/* A call, on its coroutine's stack while it waits. */
struct dbbatch_call {
	const char *const	*params;
	struct cowait_task	*task;
	struct span		*sp;
	enum db_status		 st;
	PGresult		*res;
	/* What db says of the call, as if it had run alone. */
	int			 timed_out, in_doubt;
	char			 sqlstate[6];
	char			 errmsg[256];
};

int
dbbatch_init(struct dbbatch *b, struct db *db, size_t stmt, int nparams,
    int key)
{
	memset(b, 0, sizeof(*b));
	if (nparams < 1 || nparams > DBBATCH_PARAMS || key < 0 ||
	    key >= nparams)
		return -1;
	b->db = db;
	b->stmt = stmt;
	b->nparams = nparams;
	b->key = key;
	return 0;
}

int
dbbatch_pending(const struct dbbatch *b)
{
	return b->n > 0;
}

struct cowait_task *
dbbatch_first(const struct dbbatch *b)
{
	return b->n > 0 ? b->calls[0]->task : NULL;
}

/*
 * Parameter p of the n calls as a PostgreSQL array literal, every element
 * quoted ({"a","b\"c",NULL}); NULL when out of memory.
 */
static char *
array_literal(struct dbbatch_call **calls, int n, int p)
{
	const char	*v, *s;
	size_t		 len = 3;
	char		*out, *o;
	int		 i;

	for (i = 0; i < n; i++) {
		if ((v = calls[i]->params[p]) == NULL) {
			len += 5;
			continue;
		}
		len += 3;
		for (s = v; *s != '\0'; s++)
			len += *s == '"' || *s == '\\' ? 2 : 1;
	}
	if ((out = malloc(len)) == NULL)
		return NULL;
	o = out;
	*o++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*o++ = ',';
		if ((v = calls[i]->params[p]) == NULL) {
			memcpy(o, "NULL", 4);
			o += 4;
			continue;
		}
		*o++ = '"';
		for (s = v; *s != '\0'; s++) {
			if (*s == '"' || *s == '\\')
				*o++ = '\\';
			*o++ = *s;
		}
		*o++ = '"';
	}
	*o++ = '}';
	*o = '\0';
	return out;
}

/* Row r of res as a result of its own; NULL when out of memory. */
static PGresult *
row_of(const PGresult *res, int r)
{
	PGresult	*one;
	int		 f, nf = PQnfields(res);

	if ((one = PQcopyResult(res, PG_COPYRES_ATTRS)) == NULL)
		return NULL;
	for (f = 0; f < nf; f++)
		if (!PQsetvalue(one, 0, f, PQgetisnull(res, r, f) ? NULL :
		    PQgetvalue(res, r, f), PQgetisnull(res, r, f) ? -1 :
		    PQgetlength(res, r, f))) {
			PQclear(one);
			return NULL;
		}
	return one;
}

/*
 * The statement for calls[0..n), each call's row given to it; the
 * statement's status (DB_ERROR: nothing of it was done).
 */
static enum db_status
run_calls(struct dbbatch *b, struct dbbatch_call **calls, int n)
{
	const char	*params[DBBATCH_PARAMS], *errstr;
	char		*arrays[DBBATCH_PARAMS];
	PGresult	*res = NULL;
	enum db_status	 st = DB_ERROR;
	long long	 ord;
	int		 i, r, last;

	memset(arrays, 0, sizeof(arrays));
	for (i = 0; i < b->nparams; i++)
		if ((params[i] = arrays[i] = array_literal(calls, n, i)) ==
		    NULL) {
			(void)snprintf(b->db->errmsg, sizeof(b->db->errmsg),
			    "out of memory");
			b->db->sqlstate[0] = '\0';
			goto done;
		}
	st = db_exec(b->db, b->stmt, params, &res);
	b->runs++;
	if (st != DB_OK)
		goto done;
	last = PQnfields(res) - 1;
	for (r = 0; r < PQntuples(res); r++) {
		if (last < 0 || util_strtonum(PQgetvalue(res, r, last), 1, n,
		    &ord, &errstr) == -1 || calls[ord - 1]->res != NULL) {
			log_error("postgres: batch of %d: row %d has no call "
			    "of its own", n, r);
			continue;
		}
		if ((calls[ord - 1]->res = row_of(res, r)) != NULL)
			b->rows++;
	}
done:
	for (i = 0; i < n; i++) {
		if (st == DB_OK && calls[i]->res == NULL) {
			/* Logged above, or out of memory. */
			calls[i]->st = DB_ERROR;
			(void)snprintf(calls[i]->errmsg,
			    sizeof(calls[i]->errmsg), "no row for the call "
			    "in its batch");
			calls[i]->sqlstate[0] = '\0';
		} else {
			calls[i]->st = st;
			memcpy(calls[i]->errmsg, b->db->errmsg,
			    sizeof(calls[i]->errmsg));
			memcpy(calls[i]->sqlstate, b->db->sqlstate,
			    sizeof(calls[i]->sqlstate));
		}
		calls[i]->timed_out = b->db->timed_out;
		calls[i]->in_doubt = b->db->in_doubt;
	}
	PQclear(res);
	for (i = 0; i < b->nparams; i++)
		free(arrays[i]);
	return st;
}

/* Does a waiting call have params' key? */
static int
key_waits(const struct dbbatch *b, const char *const *params)
{
	const char	*k = params[b->key], *w;
	int		 i;

	for (i = 0; i < b->n; i++) {
		w = b->calls[i]->params[b->key];
		if ((k == NULL) == (w == NULL) && (k == NULL ||
		    strcmp(k, w) == 0))
			return 1;
	}
	return 0;
}

enum db_status
dbbatch_exec(struct dbbatch *b, const char *const *params, PGresult **res)
{
	struct dbbatch_call	 c, *one = &c;
	struct spans		*spans = b->db->spans;

	memset(&c, 0, sizeof(c));
	c.params = params;
	*res = NULL;
	if (b->cw == NULL || !cowait_can_yield(b->cw) ||
	    b->n == DBBATCH_MAX || key_waits(b, params)) {
		(void)run_calls(b, &one, 1);
		*res = c.res;
		return c.st;
	}
	c.task = b->cw->current;
	/* The wait for the batch counts as the call's. */
	c.sp = span_begin(spans, b->db->stmts[b->stmt].name, SPAN_CLIENT);
	span_attr_str(c.sp, "db.system.name", "postgresql");
	b->calls[b->n++] = &c;
	cowait_wait(b->cw);
	b->db->timed_out = c.timed_out;
	b->db->in_doubt = c.in_doubt;
	memcpy(b->db->sqlstate, c.sqlstate, sizeof(c.sqlstate));
	memcpy(b->db->errmsg, c.errmsg, sizeof(c.errmsg));
	if (c.st == DB_ERROR)
		span_attr_copy(spans, c.sp, "db.response.status_code",
		    c.sqlstate);
	span_end(c.sp, c.st != DB_OK);
	*res = c.res;
	return c.st;
}

void
dbbatch_run(struct dbbatch *b)
{
	struct dbbatch_call	*calls[DBBATCH_MAX];
	struct spans		*spans = b->db->spans;
	int			 i, n = b->n;

	if (n == 0)
		return;
	memcpy(calls, b->calls, (size_t)n * sizeof(calls[0]));
	b->n = 0;
	/* Recorded by each call's own span (dbbatch_exec), not here. */
	b->db->spans = NULL;
	/* One bad call must not fail the others: each alone. */
	if (run_calls(b, calls, n) == DB_ERROR && n > 1) {
		log_warn("postgres: %s: a batch of %d failed (%s): each call "
		    "runs alone", b->db->stmts[b->stmt].name, n,
		    calls[0]->sqlstate);
		for (i = 0; i < n; i++) {
			PQclear(calls[i]->res);
			calls[i]->res = NULL;
			(void)run_calls(b, &calls[i], 1);
		}
	}
	b->db->spans = spans;
	for (i = 0; i < n; i++) {
		span_attr_int(calls[i]->sp, "db.operation.batch.size", n);
		cowait_wake(b->cw, calls[i]->task);
	}
}

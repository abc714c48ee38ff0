/*
 * db: libpq, asynchronous, with deadlines of our own, prepared statements
 * and reconnection.
 *
 * A connection that breaks or passes a deadline is dropped at once; the
 * request that noticed gets DB_UNAVAILABLE (a 503), and the next call
 * connects again, unless the guard's breaker is open: then calls fail at
 * once until a trial call finds PostgreSQL back (breaker_store_open_ms).
 */
#include <sys/socket.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db.h"
#include "log.h"
#include "util.h"

void
db_init(struct db *db, const struct db_opts *o, const struct db_stmt *stmts,
    size_t nstmts)
{
	memset(db, 0, sizeof(*db));
	db->o = *o;
	db->stmts = stmts;
	db->nstmts = nstmts;
}

/* Copy libpq's message (one line, no trailing newline) into db->errmsg. */
static void
db_set_error(struct db *db, const char *msg)
{
	size_t	n;

	snprintf(db->errmsg, sizeof(db->errmsg), "%s", msg ? msg : "");
	n = strlen(db->errmsg);
	while (n > 0 && (db->errmsg[n - 1] == '\n' || db->errmsg[n - 1] == ' '))
		db->errmsg[--n] = '\0';
	for (; n > 0; n--)
		if (db->errmsg[n - 1] == '\n')
			db->errmsg[n - 1] = ' ';
}

/*
 * Wait until the connection's socket is ready for events, at most until
 * deadline (monotonic us): 1 ready, 0 the deadline passed, -1 failed.
 */
static int
db_wait(struct db *db, short events, int64_t deadline)
{
	const struct db_io	*io = db->o.io;
	int			 fd;

	if ((fd = PQsocket(db->conn)) < 0)
		return -1;
	return io != NULL ? io->wait(io->arg, fd, events, deadline) :
	    util_poll(fd, events, deadline);
}

/* The deadline of a statement sent now. */
static int64_t
db_deadline(const struct db *db)
{
	return util_mono_us() + (db->o.statement_timeout_ms +
	    DB_DEADLINE_MARGIN_MS) * 1000;
}

/*
 * Take the connection for a call (with a db_io, another request's call
 * may hold it) by deadline: 0, or -1 with why in db.
 */
static int
db_take(struct db *db, int64_t deadline)
{
	const struct db_io	*io = db->o.io;

	db->timed_out = db->hung = db->in_doubt = 0;
	if (io == NULL || io->take(io->arg, 0) == 0)
		return 0;
	/*
	 * While the breaker is not closed, the call that holds it is the
	 * trial: fail now, as every other call does, rather than wait.
	 */
	if (guard_trial_in(db->o.guard) >= 0) {
		snprintf(db->errmsg, sizeof(db->errmsg), "circuit open");
		return -1;
	}
	if (io->take(io->arg, deadline) == 0) {
		db->timed_out = db->hung = db->in_doubt = 0;
		return 0;
	}
	db->timed_out = 1;
	snprintf(db->errmsg, sizeof(db->errmsg), "the connection was busy for "
	    "%lld ms", db->o.statement_timeout_ms + DB_DEADLINE_MARGIN_MS);
	return -1;
}

static void
db_give(struct db *db)
{
	const struct db_io	*io = db->o.io;

	if (io != NULL)
		io->give(io->arg);
}

/* True for SQLSTATEs that mean the server or the link is gone. */
static int
db_state_fatal(const char *state)
{
	return strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0;
}

/* Classify a failed result; drops the connection when it is dead. */
static enum db_status
db_fail(struct db *db, PGresult *res, const char *what)
{
	const char	*state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
	db_set_error(db, PQresultErrorMessage(res));
	if (PQstatus(db->conn) != CONNECTION_OK || db_state_fatal(db->sqlstate)) {
		log_error("postgres: %s: connection lost: %s", what, db->errmsg);
		db_close(db);
		return DB_UNAVAILABLE;
	}
	/* statement_timeout fired: the database is too slow to answer. */
	if (strcmp(db->sqlstate, "57014") == 0) {
		log_warn("postgres: %s: %s", what, db->errmsg);
		db->timed_out = 1;
		return DB_UNAVAILABLE;
	}
	return DB_ERROR;
}

/*
 * Flush what was sent, then read until a result is ready, before
 * deadline: 1, 0 the deadline passed, -1 the link failed.
 */
static int
db_await(struct db *db, int64_t deadline)
{
	int	f, w;

	while ((f = PQflush(db->conn)) == 1)
		if ((w = db_wait(db, POLLOUT | POLLIN, deadline)) != 1)
			return w;
		else if (PQconsumeInput(db->conn) == 0)
			return -1;
	if (f == -1)
		return -1;
	while (PQisBusy(db->conn))
		if ((w = db_wait(db, POLLIN, deadline)) != 1)
			return w;
		else if (PQconsumeInput(db->conn) == 0)
			return -1;
	return 1;
}

/* The link failed (w -1) or the deadline passed (w 0): why, in db. */
static void
db_lost(struct db *db, int w)
{
	if (w == 0) {
		db->timed_out = db->hung = 1;
		snprintf(db->errmsg, sizeof(db->errmsg), "no answer within "
		    "%lld ms", db->o.statement_timeout_ms + DB_DEADLINE_MARGIN_MS);
	} else
		db_set_error(db, PQerrorMessage(db->conn));
}

/*
 * Collect the result of what was sent before deadline: DB_OK with *res
 * (the caller's), or why not.  A deadline passed or a broken link drops
 * the connection.
 */
static enum db_status
db_result(struct db *db, const char *what, int64_t deadline, PGresult **res)
{
	PGresult	*r;
	enum db_status	 rc;
	int		 w;

	*res = NULL;
	for (;;) {
		if ((w = db_await(db, deadline)) != 1)
			goto lost;
		if ((r = PQgetResult(db->conn)) == NULL)
			break;
		if (*res == NULL)
			*res = r;
		else
			PQclear(r);
	}
	if (*res == NULL) {
		w = -1;
		goto lost;
	}
	if (PQresultStatus(*res) == PGRES_TUPLES_OK ||
	    PQresultStatus(*res) == PGRES_COMMAND_OK)
		return DB_OK;
	rc = db_fail(db, *res, what);
	PQclear(*res);
	*res = NULL;
	return rc;
lost:
	db_lost(db, w);
	log_error("postgres: %s: connection dropped: %s", what, db->errmsg);
	PQclear(*res);
	*res = NULL;
	db_close(db);
	return DB_UNAVAILABLE;
}

/*
 * Prepare the statement table, in one round trip (libpq's pipeline mode:
 * a connection made again while the pool is busy is ready at once, and
 * one whose waits yield to other requests does not wait a turn of their
 * loop per statement).  0, or -1 (logged, connection closed).
 */
static int
db_prepare_all(struct db *db)
{
	const struct db_stmt	*st = NULL;
	PGresult		*res;
	int64_t			 deadline = db_deadline(db);
	size_t			 i;
	int			 w;

	if (db->nstmts == 0)
		return 0;
	if (PQenterPipelineMode(db->conn) == 0)
		goto fail;
	for (i = 0; i < db->nstmts; i++)
		if (PQsendPrepare(db->conn, db->stmts[i].name, db->stmts[i].sql,
		    db->stmts[i].nparams, NULL) == 0)
			goto fail;
	if (PQpipelineSync(db->conn) == 0)
		goto fail;
	for (i = 0; i < db->nstmts; i++) {
		st = &db->stmts[i];
		if (db_result(db, st->name, deadline, &res) != DB_OK) {
			/* Logged by db_result when the connection went. */
			if (db->conn != NULL)
				log_error("postgres: cannot prepare %s: %s",
				    st->name, db->errmsg);
			db_close(db);
			return -1;
		}
		PQclear(res);
	}
	st = NULL;
	if ((w = db_await(db, deadline)) != 1) {
		db_lost(db, w);
		goto failed;
	}
	res = PQgetResult(db->conn);
	w = res != NULL && PQresultStatus(res) == PGRES_PIPELINE_SYNC;
	PQclear(res);
	if (!w || PQexitPipelineMode(db->conn) == 0)
		goto fail;
	return 0;
fail:
	db_set_error(db, PQerrorMessage(db->conn));
failed:
	log_error("postgres: cannot prepare %s: %s", st != NULL ? st->name :
	    "the statements", db->errmsg);
	db_close(db);
	return -1;
}

/* Forget every prepared statement, then prepare the table; 0 or -1. */
static int
db_reprepare(struct db *db)
{
	PGresult	*res;

	if (PQsendQuery(db->conn, "DEALLOCATE ALL") == 0) {
		db_set_error(db, PQerrorMessage(db->conn));
		db_close(db);
		return -1;
	}
	if (db_result(db, "DEALLOCATE ALL", db_deadline(db), &res) != DB_OK)
		return -1;
	PQclear(res);
	return db_prepare_all(db);
}

/* Server notices go to the log, not to stderr. */
static void
db_notice(void *arg, const char *msg)
{
	(void)arg;
	log_debug("postgres: %.*s", (int)strcspn(msg, "\n"), msg);
}

int
db_connect(struct db *db)
{
	char				 timeout[16], options[64];
	const char			*keys[] = { "dbname", "connect_timeout",
	    "options", "keepalives", "keepalives_idle", "keepalives_interval",
	    "keepalives_count", "application_name", NULL };
	const char			*vals[] = { db->o.conninfo, timeout,
	    options, "1", "30", "10", "3", db->o.application_name, NULL };
	PostgresPollingStatusType	 st = PGRES_POLLING_WRITING;
	int64_t				 deadline;
	int				 n1, n2, w;

	db_close(db);
	db->timed_out = db->hung = 0;
	deadline = util_mono_us() + db->o.connect_timeout_ms * 1000;
	/* libpq's own connect_timeout (whole seconds) as a second bound. */
	n1 = snprintf(timeout, sizeof(timeout), "%lld",
	    (db->o.connect_timeout_ms + 999) / 1000);
	n2 = snprintf(options, sizeof(options), "-c statement_timeout=%lld",
	    db->o.statement_timeout_ms);
	if (n1 < 0 || (size_t)n1 >= sizeof(timeout) || n2 < 0 ||
	    (size_t)n2 >= sizeof(options)) {
		log_error("postgres: connection options truncated");
		return -1;
	}
	if ((db->conn = PQconnectStartParams(keys, vals, 1)) == NULL) {
		db_set_error(db, "out of memory");
		goto fail;
	}
	while (st != PGRES_POLLING_OK) {
		if (st == PGRES_POLLING_FAILED ||
		    PQstatus(db->conn) == CONNECTION_BAD) {
			db_set_error(db, PQerrorMessage(db->conn));
			goto fail;
		}
		w = db_wait(db, st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
		    deadline);
		if (w == 0) {
			db->timed_out = db->hung = 1;
			snprintf(db->errmsg, sizeof(db->errmsg), "no answer "
			    "within %lld ms", db->o.connect_timeout_ms);
			goto fail;
		}
		if (w == -1) {
			db_set_error(db, PQerrorMessage(db->conn));
			goto fail;
		}
		st = PQconnectPoll(db->conn);
	}
	PQsetNoticeProcessor(db->conn, db_notice, NULL);
	/*
	 * Error messages without DETAIL: it quotes the values of a failed
	 * statement ("Key (email)=(...) already exists"), and what we log
	 * must never hold personal data.
	 */
	(void)PQsetErrorVerbosity(db->conn, PQERRORS_TERSE);
	if (PQsetnonblocking(db->conn, 1) == -1) {
		db_set_error(db, PQerrorMessage(db->conn));
		goto fail;
	}
	if (db_prepare_all(db) == -1)
		return -1;
	return 0;
fail:
	log_error("postgres: cannot connect: %s", db->errmsg);
	db_close(db);
	return -1;
}

void
db_close(struct db *db)
{
	if (db->conn != NULL)
		PQfinish(db->conn);
	db->conn = NULL;
	db->in_txn = 0;
}

/*
 * A server that went away while we were idle (a restart, a failover) has
 * sent its FATAL and closed the connection: read that before sending
 * anything, so the request connects again instead of failing.  (Only
 * outside a transaction, whose statements must not go to another
 * connection.)  Two system calls, on the way to PostgreSQL anyway.
 */
static int
db_alive(struct db *db)
{
	char	c;

	if (PQconsumeInput(db->conn) == 0 || PQstatus(db->conn) != CONNECTION_OK)
		return 0;
	return recv(PQsocket(db->conn), &c, 1, MSG_PEEK | MSG_DONTWAIT) != 0;
}

/* Connected, or connected again; 0 or -1. */
static int
db_ready(struct db *db)
{
	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
	    (PQtransactionStatus(db->conn) != PQTRANS_IDLE || db_alive(db)))
		return 0;
	if (db->conn != NULL) {
		log_warn("postgres: connection lost");
		db_close(db);
	}
	return db_connect(db);
}

/*
 * Whether losing the connection after sending sql leaves its outcome
 * unknown: a COMMIT, or a change made outside a transaction.
 */
static int
db_may_commit(const struct db *db, const char *sql)
{
	while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '(')
		sql++;
	if (PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		return strcmp(sql, "COMMIT") == 0;
	return strncasecmp(sql, "SELECT", 6) != 0;
}

/*
 * Send a statement (stmt, or the SQL of a transaction command) and wait
 * for its result, through the guard.
 */
static enum db_status
db_call(struct db *db, const struct db_stmt *stmt, const char *sql,
    const char *const *params, PGresult **res)
{
	const char	*what = stmt != NULL ? stmt->name : sql;
	struct span	*sp;
	enum db_status	 rc;
	int64_t		 t0, retry, since;
	int		 retried = 0, sent, may_commit;

	*res = NULL;
	if (db_take(db, db_deadline(db)) == -1)
		return DB_UNAVAILABLE;
	if (!guard_allow(db->o.guard, &retry)) {
		snprintf(db->errmsg, sizeof(db->errmsg), "circuit open");
		db_give(db);
		return DB_UNAVAILABLE;
	}
	since = util_mono_us();
	/* Named by the statement (or the command): never its parameters. */
	sp = span_begin(db->spans, what, SPAN_CLIENT);
	span_attr_str(sp, "db.system.name", "postgresql");
	if (db_ready(db) == -1) {
		rc = DB_UNAVAILABLE;
		goto done;
	}
again:
	t0 = util_mono_us();
	may_commit = db_may_commit(db, stmt != NULL ? stmt->sql : sql);
	db->in_txn = PQtransactionStatus(db->conn) != PQTRANS_IDLE;
	if (may_commit)
		db->changed = 1;
	sent = stmt != NULL ? PQsendQueryPrepared(db->conn, stmt->name,
	    stmt->nparams, params, NULL, NULL, 0) : PQsendQuery(db->conn, sql);
	if (!sent) {
		db_set_error(db, PQerrorMessage(db->conn));
		log_error("postgres: %s: cannot send: %s", what, db->errmsg);
		db_close(db);
		rc = DB_UNAVAILABLE;
		goto done;
	}
	rc = db_result(db, what, db_deadline(db), res);
	db->busy_us += util_mono_us() - t0;
	/* Sent, and the connection lost without an answer. */
	db->in_doubt = may_commit && rc == DB_UNAVAILABLE && db->conn == NULL;
	/*
	 * 26000: the statement is gone (DISCARD ALL, DEALLOCATE, a pooler):
	 * prepare the table again, from a clean slate, since some of it may
	 * still be there.
	 */
	if (rc == DB_ERROR && stmt != NULL &&
	    strcmp(db->sqlstate, "26000") == 0 && !retried) {
		retried = 1;
		log_warn("postgres: %s was not prepared; preparing every "
		    "statement again", stmt->name);
		if (db_reprepare(db) == 0)
			goto again;
		rc = DB_UNAVAILABLE;
	}
done:
	if (rc == DB_ERROR)
		span_attr_copy(db->spans, sp, "db.response.status_code",
		    db->sqlstate);
	span_end(sp, rc != DB_OK);
	/*
	 * The server answered (an error included): it is working.  No
	 * answer by our own deadline (connecting, or past the server's own
	 * statement_timeout, which it did not even enforce): it hangs.
	 */
	guard_done(db->o.guard, rc != DB_UNAVAILABLE ? BREAKER_SUCCEEDED :
	    db->hung ? BREAKER_HUNG : db->timed_out ? BREAKER_TIMED_OUT :
	    BREAKER_FAILED, since);
	db->in_txn = db->conn != NULL &&
	    (PQtransactionStatus(db->conn) == PQTRANS_INTRANS ||
	    PQtransactionStatus(db->conn) == PQTRANS_INERROR);
	db_give(db);
	return rc;
}

enum db_status
db_exec(struct db *db, size_t id, const char *const *params, PGresult **res)
{
	return db_call(db, &db->stmts[id], NULL, params, res);
}

/* Run a transaction-control command. */
static enum db_status
db_simple(struct db *db, const char *sql)
{
	PGresult	*res;
	enum db_status	 rc;

	if ((rc = db_call(db, NULL, sql, NULL, &res)) == DB_OK)
		PQclear(res);
	return rc;
}

enum db_status
db_ping(struct db *db)
{
	return db_simple(db, "SELECT 1");
}

enum db_status
db_begin(struct db *db)
{
	return db_simple(db, "BEGIN");
}

enum db_status
db_commit(struct db *db)
{
	return db_simple(db, "COMMIT");
}

void
db_rollback(struct db *db)
{
	if (db->conn != NULL && db->in_txn)
		(void)db_simple(db, "ROLLBACK");
}

PGconn *
db_conn(struct db *db)
{
	return db_ready(db) == 0 ? db->conn : NULL;
}

/*
 * db: libpq with prepared statements and reconnection.
 *
 * A connection that breaks is dropped at once; the request that noticed
 * gets DB_UNAVAILABLE (a 503).  The next request reconnects right away; if
 * that fails, further attempts wait 100 ms, then 200 ms, ... up to
 * pg_reconnect_max_ms, so a dead database costs a request one failed
 * connect at most every backoff period, not one per request.
 */
#include <sys/socket.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "util.h"

#define DB_BACKOFF_MIN_MS	100

void
db_init(struct db *db, const struct config *cfg, const struct db_stmt *stmts,
    size_t nstmts)
{
	memset(db, 0, sizeof(*db));
	db->cfg = cfg;
	db->stmts = stmts;
	db->nstmts = nstmts;
	db->backoff_ms = DB_BACKOFF_MIN_MS;
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

static int
db_prepare_all(struct db *db)
{
	PGresult	*res;
	size_t		 i;
	int		 ok;

	for (i = 0; i < db->nstmts; i++) {
		res = PQprepare(db->conn, db->stmts[i].name, db->stmts[i].sql,
		    db->stmts[i].nparams, NULL);
		ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok)
			db_set_error(db, PQresultErrorMessage(res));
		PQclear(res);
		if (!ok) {
			log_error("postgres: cannot prepare %s: %s",
			    db->stmts[i].name, db->errmsg);
			return -1;
		}
	}
	return 0;
}

/* Server notices go to the log, not to stderr. */
static void
db_notice(void *arg, const char *msg)
{
	(void)arg;
	log_debug("postgres: %.*s", (int)strcspn(msg, "\n"), msg);
}

/* Schedule the next attempt after a failure, doubling the wait. */
static void
db_backoff(struct db *db)
{
	db->next_try_us = util_mono_us() + db->backoff_ms * 1000;
	db->backoff_ms *= 2;
	if (db->backoff_ms > db->cfg->pg_reconnect_max_ms)
		db->backoff_ms = db->cfg->pg_reconnect_max_ms;
}

int
db_connect(struct db *db)
{
	char		 timeout[16], options[64];
	const char	*keys[] = { "dbname", "connect_timeout", "options",
	    "keepalives", "keepalives_idle", "keepalives_interval",
	    "keepalives_count", "application_name", NULL };
	const char	*vals[] = { db->cfg->pg_conninfo, timeout, options,
	    "1", "30", "10", "3", "wxapp", NULL };
	int		 n1, n2;

	db_close(db);
	n1 = snprintf(timeout, sizeof(timeout), "%lld",
	    db->cfg->pg_connect_timeout);
	n2 = snprintf(options, sizeof(options), "-c statement_timeout=%lld",
	    db->cfg->pg_statement_timeout_ms);
	if (n1 < 0 || (size_t)n1 >= sizeof(timeout) || n2 < 0 ||
	    (size_t)n2 >= sizeof(options)) {
		log_error("postgres: connection options truncated");
		goto fail;
	}
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		db_set_error(db, db->conn ? PQerrorMessage(db->conn) :
		    "out of memory");
		log_error("postgres: cannot connect: %s", db->errmsg);
		goto fail;
	}
	PQsetNoticeProcessor(db->conn, db_notice, NULL);
	/*
	 * Error messages without DETAIL: it quotes the values of a failed
	 * statement ("Key (email)=(...) already exists"), and what we log
	 * must never hold personal data.
	 */
	(void)PQsetErrorVerbosity(db->conn, PQERRORS_TERSE);
	if (db_prepare_all(db) == -1)
		goto fail;
	db->backoff_ms = DB_BACKOFF_MIN_MS;
	db->next_try_us = 0;
	return 0;
fail:
	db_close(db);
	db_backoff(db);
	return -1;
}

void
db_close(struct db *db)
{
	if (db->conn != NULL)
		PQfinish(db->conn);
	db->conn = NULL;
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

int
db_ready(struct db *db)
{
	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
	    (PQtransactionStatus(db->conn) != PQTRANS_IDLE || db_alive(db)))
		return 0;
	if (db->conn != NULL) {
		log_warn("postgres: connection lost");
		db_close(db);
	}
	if (util_mono_us() < db->next_try_us)
		return -1;
	return db_connect(db);
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
	const char	*state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
	db_set_error(db, res ? PQresultErrorMessage(res) :
	    PQerrorMessage(db->conn));
	if (PQstatus(db->conn) != CONNECTION_OK || db_state_fatal(db->sqlstate)) {
		log_error("postgres: %s: connection lost: %s", what, db->errmsg);
		db_close(db);
		db->next_try_us = 0;
		return DB_UNAVAILABLE;
	}
	/* statement_timeout fired: the database is too slow to answer. */
	if (strcmp(db->sqlstate, "57014") == 0) {
		log_warn("postgres: %s: %s", what, db->errmsg);
		return DB_UNAVAILABLE;
	}
	return DB_ERROR;
}

enum db_status
db_exec(struct db *db, size_t id, const char *const *params, PGresult **res)
{
	const struct db_stmt	*st = &db->stmts[id];
	enum db_status		 rc;
	ExecStatusType		 est;
	int64_t			 t0;
	int			 retried = 0;

	*res = NULL;
	if (db_ready(db) == -1)
		return DB_UNAVAILABLE;
again:
	t0 = util_mono_us();
	*res = PQexecPrepared(db->conn, st->name, st->nparams, params, NULL,
	    NULL, 0);
	db->busy_us += util_mono_us() - t0;
	est = PQresultStatus(*res);
	if (est == PGRES_TUPLES_OK || est == PGRES_COMMAND_OK)
		return DB_OK;
	rc = db_fail(db, *res, st->name);
	PQclear(*res);
	*res = NULL;
	/* 26000: the statement is gone (DISCARD ALL, a pooler): prepare again. */
	if (rc == DB_ERROR && strcmp(db->sqlstate, "26000") == 0 && !retried) {
		retried = 1;
		log_warn("postgres: %s was not prepared; preparing again",
		    st->name);
		if (db_prepare_all(db) == 0)
			goto again;
		db_close(db);
		db_backoff(db);
		return DB_UNAVAILABLE;
	}
	return rc;
}

/* Run a transaction-control command. */
static enum db_status
db_simple(struct db *db, const char *sql)
{
	PGresult	*res;
	enum db_status	 rc = DB_OK;

	if (db_ready(db) == -1)
		return DB_UNAVAILABLE;
	res = PQexec(db->conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		rc = db_fail(db, res, sql);
	PQclear(res);
	return rc;
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
	if (db->conn != NULL &&
	    PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		(void)db_simple(db, "ROLLBACK");
}

PGconn *
db_conn(struct db *db)
{
	return db_ready(db) == 0 ? db->conn : NULL;
}

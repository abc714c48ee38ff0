/*
 * db: the responder's one PostgreSQL connection.  Owns connecting (with a
 * deadline of our own, statement_timeout and TCP keepalives), preparing
 * every statement of the program's statement table on each connect,
 * running statements by table index only, noticing a broken connection
 * and connecting again, and transactions.  No SQL is assembled from
 * strings anywhere.
 *
 * Every call has a deadline of our own: statement_timeout is enforced by
 * the server, and a server that hangs enforces nothing, so a synchronous
 * libpq call would wait forever.  Calls use libpq's asynchronous API and
 * poll(2) until the deadline (the statement timeout and a margin, for the
 * server's own cancel to win when it can); a call that passes it drops
 * the connection (PQcancel would wait on the frozen server too), and the
 * next call connects again.  Every call goes through the PostgreSQL
 * guard (lib/guard): while its breaker is open, calls fail at once.
 *
 * By default a call holds its process while it waits.  A process that
 * runs many requests at once (lib/cowait) gives the db a struct db_io: a
 * call then waits for the socket without holding the process, and the
 * calls of other requests take turns with the connection (one statement
 * at a time, and never inside another's transaction: code inside a
 * transaction must not yield, see db->in_txn).  A hung PostgreSQL then
 * holds the requests that wait for it, not the process's other requests.
 *
 * A connection lost that way after a change was sent leaves its outcome
 * unknown: the server may run it and commit once it wakes.  db->in_doubt
 * says so -- after a COMMIT, or a statement outside a transaction whose
 * SQL does not begin with SELECT (taken to change nothing).  A statement
 * lost inside a transaction is not in doubt: the server rolls it back.
 */
#ifndef WX_DB_H
#define WX_DB_H

#include <stddef.h>
#include <stdint.h>

#include <signal.h>

#include <libpq-fe.h>

#include "guard.h"
#include "span.h"

/* A statement of the program: declared once, prepared on every connect. */
struct db_stmt {
	const char	*name;
	const char	*sql;
	int		 nparams;
};

enum db_status {
	DB_OK,
	DB_UNAVAILABLE,		/* no connection, lost it, or timed out: 503 */
	DB_ERROR		/* the statement failed: see db->sqlstate */
};

/* How calls wait, when not in poll(2) holding the process. */
struct db_io {
	/*
	 * Take the connection: 0; -1 when another call holds it until
	 * deadline (monotonic us; 0: do not wait).
	 */
	int	(*take)(void *arg, int64_t deadline);
	void	(*give)(void *arg);
	/* As util_poll: 1 ready, 0 the deadline passed, -1 failed. */
	int	(*wait)(void *arg, int fd, short events, int64_t deadline);
	void	*arg;
};

struct db_opts {
	const char	*conninfo;
	long long	 connect_timeout_ms;
	long long	 statement_timeout_ms;
	const char	*application_name;	/* in pg_stat_activity; NULL:
						   libpq's (PGAPPNAME) */
	struct guard	*guard;		/* NULL: none */
	const struct db_io *io;		/* NULL: poll(2), holding the process */
};

struct db {
	PGconn			*conn;
	struct db_opts		 o;
	const struct db_stmt	*stmts;
	size_t			 nstmts;
	char			 sqlstate[6];	/* of the last DB_ERROR */
	char			 errmsg[256];	/* of the last failure */
	int64_t			 busy_us;	/* time spent in PostgreSQL */
	struct spans		*spans;		/* NULL, or where each call
						   records a span */
	int			 timed_out;	/* the last failure was one */
	int			 hung;		/* ... past our own deadline */
	int			 in_doubt;	/* ... and it may have committed */
	/*
	 * The connection is inside a transaction block (from before a
	 * statement sent in one until after the one that ends it): code
	 * running now must not yield to another request's (lib/cowait).
	 */
	int			 in_txn;
	/*
	 * A statement that may commit (see in_doubt) was sent since the
	 * caller last cleared this; read by signal handlers.
	 */
	volatile sig_atomic_t	 changed;
};

/* The margin of our deadline over the server's statement_timeout. */
#define DB_DEADLINE_MARGIN_MS	100

void	db_init(struct db *, const struct db_opts *, const struct db_stmt *,
	    size_t nstmts);
/* Connect now and prepare everything; 0, or -1 (logged). */
int	db_connect(struct db *);
void	db_close(struct db *);
/* Run statement `id` of the table; on DB_OK *res is the caller's to PQclear. */
enum db_status db_exec(struct db *, size_t id, const char *const *params,
	    PGresult **res);
/* SELECT 1, through the guard: a probe of the server. */
enum db_status db_ping(struct db *);
/* Transaction control around multi-statement writes. */
enum db_status db_begin(struct db *);
enum db_status db_commit(struct db *);
void	db_rollback(struct db *);
/* The raw connection, for SQL outside the table; NULL when down. */
PGconn	*db_conn(struct db *);

#endif

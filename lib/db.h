/*
 * db: the responder's one PostgreSQL connection.  Owns connecting (with
 * connect_timeout, statement_timeout and TCP keepalives), preparing every
 * statement of the program's statement table on each connect, running
 * statements by table index only, noticing a broken connection and
 * reconnecting with exponential backoff on a later request, and
 * transactions.  No SQL is assembled from strings anywhere.
 */
#ifndef WX_DB_H
#define WX_DB_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "config.h"

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

struct db {
	PGconn			*conn;
	const struct config	*cfg;
	const struct db_stmt	*stmts;
	size_t			 nstmts;
	int64_t			 next_try_us;	/* no reconnect before this */
	long long		 backoff_ms;
	char			 sqlstate[6];	/* of the last DB_ERROR */
	char			 errmsg[256];	/* of the last failure */
	int64_t			 busy_us;	/* time spent in PostgreSQL */
};

void	db_init(struct db *, const struct config *, const struct db_stmt *,
	    size_t nstmts);
/* Connect now and prepare everything; 0, or -1 (logged, backoff set). */
int	db_connect(struct db *);
void	db_close(struct db *);
/* Connected, or reconnected when the backoff allows; 0 or -1. */
int	db_ready(struct db *);
/* Run statement `id` of the table; on DB_OK *res is the caller's to PQclear. */
enum db_status db_exec(struct db *, size_t id, const char *const *params,
	    PGresult **res);
/* Transaction control around multi-statement writes. */
enum db_status db_begin(struct db *);
enum db_status db_commit(struct db *);
void	db_rollback(struct db *);
/* The raw connection, for wxappctl's migrations; NULL when down. */
PGconn	*db_conn(struct db *);

#endif

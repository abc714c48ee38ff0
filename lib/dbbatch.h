/*
 * dbbatch: group commit for coroutines.  Calls of one statement that many
 * coroutines (lib/cowait) make at about the same time are run as one
 * statement over arrays: one round trip, one transaction and one WAL
 * flush for them all, where each call alone would wait for a flush of its
 * own.  Under a login flood the flush is most of what a login costs
 * PostgreSQL.
 *
 * The statement takes nparams text[] parameters, each with one element
 * per call (in the order of the calls), and returns one row per call,
 * whose last column is the call's 1-based ordinal (WITH ORDINALITY).  A
 * call gets its row as a PGresult of its own, the ordinal included.
 *
 * A call that cannot yield (no loop, or inside a transaction) runs at
 * once, as a batch of one; so does a call whose key parameter equals that
 * of a call already waiting (an upsert may not touch a row twice).  The
 * loop runs what waits (dbbatch_run) after it has resumed every coroutine
 * that could run, so that a call waits no longer than the turn of the
 * loop it was made in.  When the batch fails with an error of the
 * statement, each call is run again alone, so that one bad call does not
 * fail the others.
 */
#ifndef WX_DBBATCH_H
#define WX_DBBATCH_H

#include <libpq-fe.h>

#include "cowait.h"
#include "db.h"

#define DBBATCH_MAX	64	/* calls run together, at most */
#define DBBATCH_PARAMS	16	/* parameters of the statement, at most */

struct dbbatch_call;

struct dbbatch {
	struct db		*db;
	size_t			 stmt;		/* in db's statement table */
	int			 nparams;
	int			 key;		/* the parameter calls may not share */
	struct cowait		*cw;		/* NULL: every call runs at once */
	struct dbbatch_call	*calls[DBBATCH_MAX];
	int			 n;		/* waiting */
	unsigned long long	 runs, rows;	/* statements run, calls served */
};

/* 0, or -1 when nparams is not 1..DBBATCH_PARAMS or key not below it. */
int	dbbatch_init(struct dbbatch *, struct db *, size_t stmt, int nparams,
	    int key);
/*
 * Statement b->stmt for this call's nparams values: from a coroutine,
 * with the others of this turn of the loop.  On DB_OK *res (one row) is
 * the caller's to PQclear.
 */
enum db_status dbbatch_exec(struct dbbatch *, const char *const *params,
	    PGresult **res);
/* Calls wait for dbbatch_run. */
int	dbbatch_pending(const struct dbbatch *);
/* The task of the call that has waited longest; NULL when none waits. */
struct cowait_task *dbbatch_first(const struct dbbatch *);
/* Run the waiting calls, and wake their coroutines (cowait_wake). */
void	dbbatch_run(struct dbbatch *);

#endif

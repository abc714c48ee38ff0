/*
 * migrate: the schema's history.  Owns finding the numbered SQL files
 * (NNNN_name.sql) in a directory, the schema_migrations table, and
 * applying what is pending in order, each file in its own transaction,
 * under an advisory lock so two migrators never race.
 */
#ifndef WX_MIGRATE_H
#define WX_MIGRATE_H

#include <stdio.h>

#include <libpq-fe.h>

/* Apply pending migrations, reporting each to out; count applied, or -1. */
int	migrate_apply(PGconn *, const char *dir, FILE *out, char *err,
	    size_t errlen);
/* Count pending migrations, listing every file's state to out (may be
 * NULL); -1 with err on failure. */
int	migrate_pending(PGconn *, const char *dir, FILE *out, char *err,
	    size_t errlen);

#endif

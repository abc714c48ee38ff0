/*
 * migrate: numbered SQL files applied in order.
 *
 * The statements here are constants run with parameters; the migration
 * files themselves are run as they are, each inside BEGIN/COMMIT together
 * with its row in schema_migrations, so a file is applied whole or not at
 * all.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"
#include "util.h"

/* Any constant will do; it only has to be the same for every migrator. */
#define MIGRATE_LOCK	"7236521"

static const char sql_create[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";
static const char sql_applied[] =
    "SELECT 1 FROM schema_migrations WHERE version = $1";
static const char sql_record[] =
    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)";

/* True for NNNN_name.sql. */
static int
migration_file(const struct dirent *d)
{
	const char	*s = d->d_name;
	size_t		 n = strlen(s), i;

	if (n < 10 || strcmp(s + n - 4, ".sql") != 0 || s[4] != '_')
		return 0;
	for (i = 0; i < 4; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* Run a parameterless command; 0, or -1 with err. */
static int
run(PGconn *conn, const char *sql, char *err, size_t errlen)
{
	PGresult	*res = PQexec(conn, sql);
	int		 rc = 0;

	/* A file of comments alone is an empty query: nothing to do. */
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_EMPTY_QUERY) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(res));
		rc = -1;
	}
	PQclear(res);
	return rc;
}

/* 1 when version is recorded, 0 when not, -1 on error. */
static int
applied(PGconn *conn, const char *version, char *err, size_t errlen)
{
	const char	*params[1] = { version };
	PGresult	*res;
	int		 rc;

	res = PQexecParams(conn, sql_applied, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(res));
		rc = -1;
	} else
		rc = PQntuples(res) > 0;
	PQclear(res);
	return rc;
}

/* The whole file at dir/name, NUL-terminated, malloc'ed; NULL with err. */
static char *
slurp(const char *dir, const char *name, char *err, size_t errlen)
{
	char	 path[4096], *data = NULL;
	FILE	*f = NULL;
	long	 size;
	int	 n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(err, errlen, "%s/%s: path too long", dir, name);
		return NULL;
	}
	if ((f = fopen(path, "r")) == NULL || fseek(f, 0, SEEK_END) == -1 ||
	    (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) == -1 ||
	    (data = malloc((size_t)size + 1)) == NULL ||
	    fread(data, 1, (size_t)size, f) != (size_t)size) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(data);
		data = NULL;
	} else
		data[size] = '\0';
	if (f != NULL)
		fclose(f);
	return data;
}

/* Apply one file with its record in one transaction; 0 or -1 with err. */
static int
apply_one(PGconn *conn, const char *dir, const char *name, const char *version,
    char *err, size_t errlen)
{
	const char	*params[2] = { version, name };
	char		*sql, why[512];
	PGresult	*res;
	int		 ok;

	if ((sql = slurp(dir, name, err, errlen)) == NULL)
		return -1;
	if (run(conn, "BEGIN", why, sizeof(why)) == -1 ||
	    run(conn, sql, why, sizeof(why)) == -1)
		goto fail;
	res = PQexecParams(conn, sql_record, 2, NULL, params, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		snprintf(why, sizeof(why), "%s", PQresultErrorMessage(res));
	PQclear(res);
	if (!ok || run(conn, "COMMIT", why, sizeof(why)) == -1)
		goto fail;
	free(sql);
	return 0;
fail:
	free(sql);
	(void)run(conn, "ROLLBACK", err, errlen);
	why[strcspn(why, "\n")] = '\0';
	snprintf(err, errlen, "%s: %s", name, why);
	return -1;
}

/*
 * Walk the files in order; apply the pending ones when apply is set.
 * Returns the number applied (apply) or pending (!apply), or -1.
 */
static int
migrate_walk(PGconn *conn, const char *dir, int apply, FILE *out, char *err,
    size_t errlen)
{
	struct dirent	**list = NULL;
	char		  version[8], scratch[256];
	const char	 *errstr;
	long long	  num;
	int		  n, i, count = 0, rc = -1, st;

	if (run(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")", err,
	    errlen) == -1)
		return -1;
	if (run(conn, sql_create, err, errlen) == -1)
		goto unlock;
	if ((n = scandir(dir, &list, migration_file, alphasort)) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto unlock;
	}
	for (i = 0; i < n; i++) {
		/* "0007_x.sql" -> "7": the column is an integer. */
		snprintf(version, sizeof(version), "%.4s", list[i]->d_name);
		if (util_strtonum(version, 0, 9999, &num, &errstr) == -1) {
			snprintf(err, errlen, "%s: version %s", list[i]->d_name,
			    errstr);
			goto done;
		}
		snprintf(version, sizeof(version), "%lld", num);
		if ((st = applied(conn, version, err, errlen)) == -1)
			goto done;
		if (st == 1) {
			if (out != NULL && !apply)
				fprintf(out, "applied  %s\n", list[i]->d_name);
			continue;
		}
		if (apply && apply_one(conn, dir, list[i]->d_name, version,
		    err, errlen) == -1)
			goto done;
		if (out != NULL)
			fprintf(out, "%s  %s\n", apply ? "applied" : "pending",
			    list[i]->d_name);
		count++;
	}
	rc = count;
done:
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
unlock:
	(void)run(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")",
	    scratch, sizeof(scratch));
	return rc;
}

int
migrate_apply(PGconn *conn, const char *dir, FILE *out, char *err,
    size_t errlen)
{
	return migrate_walk(conn, dir, 1, out, err, errlen);
}

int
migrate_pending(PGconn *conn, const char *dir, FILE *out, char *err,
    size_t errlen)
{
	return migrate_walk(conn, dir, 0, out, err, errlen);
}

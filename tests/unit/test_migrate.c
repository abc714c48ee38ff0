/*
 * Unit tests for lib/migrate against the PostgreSQL tests/unit/services.sh
 * started (WXAPP_TEST_PG), with migration files in a temporary directory.
 */
#include "check_run.h"
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate.h"
#include "svc.h"
#include "util.h"

/* migrate.c's advisory lock. */
#define MIGRATE_LOCK	"7236521"

static PGconn	*conn, *other;
static char	 dir[256];
static char	*out;
static size_t	 outlen;
static FILE	*outf;
static char	 err[512];

static const char *
sql(const char *q)
{
	return svc_sql(other, q);
}

/* A connection that keeps the server's notices to itself. */
static PGconn *
connect_pg(void)
{
	PGconn	*c = PQconnectdb(svc_env("WXAPP_TEST_PG"));

	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	(void)svc_sql(c, "SET client_min_messages TO warning");
	return c;
}

/* A fresh schema and an empty migration directory. */
static void
setup(void)
{
	int	n;

	conn = connect_pg();
	other = connect_pg();
	(void)sql("DROP SCHEMA public CASCADE");
	(void)sql("CREATE SCHEMA public");
	n = snprintf(dir, sizeof(dir), "%s/migrate.XXXXXX",
	    svc_env("WXAPP_TEST_TMP"));
	ck_assert(n > 0 && (size_t)n < sizeof(dir));
	ck_assert_ptr_nonnull(mkdtemp(dir));
	out = NULL;
	outf = open_memstream(&out, &outlen);
	ck_assert_ptr_nonnull(outf);
	err[0] = '\0';
}

static void
teardown(void)
{
	fclose(outf);
	free(out);
	PQfinish(conn);
	PQfinish(other);
}

/* Write a migration file. */
static void
put(const char *name, const char *text)
{
	char	 path[512];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_ne(fputs(text, f), EOF);
	ck_assert_int_eq(fclose(f), 0);
}

/* What migrate wrote to out since the last call (then forgotten). */
static const char *
output(void)
{
	static char	buf[1024];

	ck_assert_int_eq(fflush(outf), 0);
	snprintf(buf, sizeof(buf), "%s", out != NULL ? out : "");
	rewind(outf);
	if (out != NULL)
		out[0] = '\0';
	return buf;
}

/* The recorded migrations, "version name;..." in order. */
static const char *
recorded(void)
{
	return sql("SELECT coalesce(string_agg(version || ' ' || name, ';' "
	    "ORDER BY version), '') FROM schema_migrations");
}

START_TEST(applies_in_order_and_records_each)
{
	put("0001_create.sql", "CREATE TABLE m (id int);\n");
	put("0002_insert.sql", "INSERT INTO m VALUES (1);\n"
	    "INSERT INTO m VALUES (2);\n");
	/* After 0002, not between 0001 and 0002: numeric order. */
	put("0010_alter.sql", "ALTER TABLE m ADD COLUMN x int;\n"
	    "UPDATE m SET x = id * 10;\n");
	/* Not migrations: each would fail if it ran. */
	put("README", "not SQL");
	put("0003_notes.txt", "not SQL");
	put("01_short.sql", "not SQL");
	put("abcd_name.sql", "not SQL");
	put("0004-dash.sql", "not SQL");
	put("0005_x.sql.orig", "not SQL");
	put("0006_.sq", "not SQL");

	ck_assert_int_eq(migrate_apply(conn, dir, outf, err, sizeof(err)), 3);
	ck_assert_str_eq(output(), "applied  0001_create.sql\n"
	    "applied  0002_insert.sql\napplied  0010_alter.sql\n");
	ck_assert_str_eq(recorded(),
	    "1 0001_create.sql;2 0002_insert.sql;10 0010_alter.sql");
	ck_assert_str_eq(sql("SELECT sum(x) FROM m"), "30");
	ck_assert_int_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
}
END_TEST

START_TEST(running_again_is_a_no_op)
{
	put("0001_create.sql", "CREATE TABLE m (id int);\n");
	put("0002_insert.sql", "INSERT INTO m VALUES (1);\n");
	ck_assert_int_eq(migrate_apply(conn, dir, NULL, err, sizeof(err)), 2);
	ck_assert_int_eq(migrate_apply(conn, dir, outf, err, sizeof(err)), 0);
	ck_assert_str_eq(output(), "");
	ck_assert_str_eq(sql("SELECT count(*) FROM m"), "1");

	/* A new file: only it runs. */
	put("0003_more.sql", "INSERT INTO m VALUES (3);\n");
	ck_assert_int_eq(migrate_apply(conn, dir, outf, err, sizeof(err)), 1);
	ck_assert_str_eq(output(), "applied  0003_more.sql\n");
	ck_assert_str_eq(sql("SELECT count(*) FROM m"), "2");
}
END_TEST

START_TEST(pending_lists_every_file_and_applies_none)
{
	put("0001_create.sql", "CREATE TABLE m (id int);\n");
	ck_assert_int_eq(migrate_apply(conn, dir, NULL, err, sizeof(err)), 1);
	put("0002_insert.sql", "INSERT INTO m VALUES (1);\n");
	put("0003_insert.sql", "INSERT INTO m VALUES (2);\n");
	ck_assert_int_eq(migrate_pending(conn, dir, outf, err, sizeof(err)),
	    2);
	ck_assert_str_eq(output(), "applied  0001_create.sql\n"
	    "pending  0002_insert.sql\npending  0003_insert.sql\n");
	ck_assert_str_eq(recorded(), "1 0001_create.sql");
	ck_assert_str_eq(sql("SELECT count(*) FROM m"), "0");
	ck_assert_int_eq(migrate_pending(conn, dir, NULL, err, sizeof(err)),
	    2);
	ck_assert_int_eq(migrate_apply(conn, dir, NULL, err, sizeof(err)), 2);
	ck_assert_int_eq(migrate_pending(conn, dir, outf, err, sizeof(err)),
	    0);
	ck_assert_str_eq(output(), "applied  0001_create.sql\n"
	    "applied  0002_insert.sql\napplied  0003_insert.sql\n");
}
END_TEST

START_TEST(a_failing_file_rolls_back_and_is_named)
{
	put("0001_create.sql", "CREATE TABLE m (id int);\n");
	put("0002_bad.sql", "CREATE TABLE half (id int);\n"
	    "INSERT INTO m VALUES (1);\n"
	    "INSERT INTO nosuchtable VALUES (1);\n");
	put("0003_after.sql", "CREATE TABLE after (id int);\n");

	ck_assert_int_eq(migrate_apply(conn, dir, outf, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, "0002_bad.sql: ", 14) == 0, "err: %s", err);
	ck_assert_ptr_nonnull(strstr(err, "nosuchtable"));
	ck_assert_ptr_null(strchr(err, '\n'));
	/* 0001 stays; nothing of 0002, and 0003 was not tried. */
	ck_assert_str_eq(output(), "applied  0001_create.sql\n");
	ck_assert_str_eq(recorded(), "1 0001_create.sql");
	ck_assert_str_eq(sql("SELECT count(*) FROM m"), "0");
	ck_assert_str_eq(sql("SELECT to_regclass('half') IS NULL"), "t");
	ck_assert_str_eq(sql("SELECT to_regclass('after') IS NULL"), "t");
	/* The session is usable and the lock released. */
	ck_assert_int_eq(PQtransactionStatus(conn), PQTRANS_IDLE);
	ck_assert_str_eq(sql("SELECT pg_try_advisory_lock(" MIGRATE_LOCK ")"),
	    "t");
	(void)sql("SELECT pg_advisory_unlock(" MIGRATE_LOCK ")");

	/* Fixed, it applies with what follows it. */
	put("0002_bad.sql", "CREATE TABLE half (id int);\n");
	ck_assert_int_eq(migrate_apply(conn, dir, outf, err, sizeof(err)), 2);
	ck_assert_str_eq(output(), "applied  0002_bad.sql\n"
	    "applied  0003_after.sql\n");
}
END_TEST

START_TEST(the_file_and_its_record_commit_together)
{
	/* The file runs, then recording it fails (its version is taken). */
	put("0001_sneaky.sql", "CREATE TABLE half (id int);\n"
	    "INSERT INTO schema_migrations (version, name) "
	    "VALUES (1, 'sneaky');\n");
	ck_assert_int_eq(migrate_apply(conn, dir, NULL, err, sizeof(err)), -1);
	ck_assert_msg(strncmp(err, "0001_sneaky.sql: ", 17) == 0, "err: %s",
	    err);
	ck_assert_ptr_nonnull(strstr(err, "duplicate key"));
	/* Nothing of the file stays either. */
	ck_assert_str_eq(sql("SELECT to_regclass('half') IS NULL"), "t");
	ck_assert_str_eq(recorded(), "");
}
END_TEST

START_TEST(a_missing_directory_is_an_error)
{
	char	missing[300];

	snprintf(missing, sizeof(missing), "%s/nosuchdir", dir);
	ck_assert_int_eq(migrate_apply(conn, missing, outf, err, sizeof(err)),
	    -1);
	ck_assert_ptr_nonnull(strstr(err, "nosuchdir"));
	ck_assert_int_eq(migrate_pending(conn, missing, outf, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(output(), "");
	/* The lock is not left held. */
	ck_assert_str_eq(sql("SELECT pg_try_advisory_lock(" MIGRATE_LOCK ")"),
	    "t");
}
END_TEST

START_TEST(two_migrators_take_turns)
{
	int64_t	t0;
	pid_t	pid;
	int	status;

	put("0001_create.sql", "CREATE TABLE m (id int);\n");
	/* Another migrator holds the lock... */
	ck_assert_str_eq(sql("SELECT pg_try_advisory_lock(" MIGRATE_LOCK ")"),
	    "t");
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		PGconn	*c = PQconnectdb(svc_env("WXAPP_TEST_PG"));
		int	 n;

		PQclear(PQexec(c, "SET client_min_messages TO warning"));
		n = migrate_apply(c, dir, NULL, err, sizeof(err));
		PQfinish(c);
		_exit(n == 1 ? 0 : 1);
	}
	/* ... so ours waits, and applies nothing meanwhile. */
	usleep(300000);
	ck_assert_int_eq(waitpid(pid, &status, WNOHANG), 0);
	ck_assert_str_eq(sql("SELECT to_regclass('m') IS NULL"), "t");
	t0 = util_mono_us();
	(void)sql("SELECT pg_advisory_unlock(" MIGRATE_LOCK ")");
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_lt(svc_ms_since(t0), 5000);
	ck_assert_str_eq(recorded(), "1 0001_create.sql");
}
END_TEST

/*
 * A file of comments only (a placeholder, a migration emptied after a
 * revert) is an empty query, not a failure: it is recorded and the files
 * after it are applied.
 */
START_TEST(a_file_of_comments_only)
{
	put("0001_create.sql", "CREATE TABLE m (id int);\n");
	put("0002_placeholder.sql", "-- nothing to do: reverted\n");
	put("0003_insert.sql", "INSERT INTO m VALUES (1);\n");
	ck_assert_msg(migrate_apply(conn, dir, NULL, err, sizeof(err)) == 3,
	    "err: %s", err);
	ck_assert_str_eq(recorded(), "1 0001_create.sql;2 0002_placeholder.sql;"
	    "3 0003_insert.sql");
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("migrate");
	TCase	*tc = tcase_create("migrate");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, applies_in_order_and_records_each);
	tcase_add_test(tc, running_again_is_a_no_op);
	tcase_add_test(tc, pending_lists_every_file_and_applies_none);
	tcase_add_test(tc, a_failing_file_rolls_back_and_is_named);
	tcase_add_test(tc, the_file_and_its_record_commit_together);
	tcase_add_test(tc, a_missing_directory_is_an_error);
	tcase_add_test(tc, two_migrators_take_turns);
	tcase_add_test(tc, a_file_of_comments_only);
	suite_add_tcase(s, tc);
	return check_run(s);
}

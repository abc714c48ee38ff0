/*
 * Unit tests for lib/conf, with a table of its own and through app's
 * config (the keys of wxapp.conf): parsing, errors with file:line,
 * environment overrides, secrets, obsolete keys.
 */
#include "check_run.h"
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "config.h"
#include "log.h"

static char	path[64];
static char	err[1024];

/* Write text to a fresh temporary config file. */
static void
write_conf(const char *text)
{
	FILE	*f;
	int	 fd;

	snprintf(path, sizeof(path), "/tmp/wxapp-test-conf.XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
}

static void
teardown(void)
{
	unlink(path);
	unsetenv("WXAPP_MAX_REQUESTS");
	unsetenv("WXAPP_LOG_LEVEL");
	unsetenv("WXAPP_CONF");
}

START_TEST(defaults_and_values)
{
	struct config	c;

	write_conf("# comment\n\n  max_requests = 500  \nlog_level=debug\n"
	    "redis_addr = /tmp/r.sock\nredis_password = a#b c\naccess_log = off\n");
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), 0);
	ck_assert_int_eq(c.max_requests, 500);
	ck_assert_int_eq(c.log_level, LOG_LEVEL_DEBUG);
	ck_assert_str_eq(c.redis_addr, "/tmp/r.sock");
	ck_assert_str_eq(c.redis_password, "a#b c");
	ck_assert_int_eq(c.access_log, 0);
	ck_assert_int_eq(c.max_body_bytes, 65536);
	ck_assert_str_eq(c.pg_conninfo, "dbname=wxapp");
	config_free(&c);
}
END_TEST

START_TEST(unknown_key_names_file_and_line)
{
	struct config	c;

	write_conf("log_level = info\n\nmax_request = 5\n");
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":3: unknown key `max_request`"));
	ck_assert_ptr_nonnull(strstr(err, path));
}
END_TEST

START_TEST(bad_number_names_key)
{
	struct config	c;

	write_conf("max_requests = 12abc\n");
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":1: max_requests: value is not a number"));
}
END_TEST

START_TEST(out_of_range_names_key_and_range)
{
	struct config	c;

	write_conf("\nmax_body_bytes = 0\n");
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":2: max_body_bytes: value is too small"));
	ck_assert_ptr_nonnull(strstr(err, "1..67108864"));
}
END_TEST

START_TEST(duplicate_and_garbage_lines)
{
	struct config	c;

	write_conf("log_level = info\nlog_level = warn\n");
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":2: log_level: duplicate key"));
	teardown();
	write_conf("just words\n");
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":1: expected `key = value`"));
	teardown();
	write_conf("log_level = loud\n");
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "must be one of debug, info, warn, error"));
}
END_TEST

START_TEST(env_overrides_file)
{
	struct config	c;

	write_conf("max_requests = 500\n");
	setenv("WXAPP_MAX_REQUESTS", "7", 1);
	setenv("WXAPP_LOG_LEVEL", "error", 1);
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), 0);
	ck_assert_int_eq(c.max_requests, 7);
	ck_assert_int_eq(c.log_level, LOG_LEVEL_ERROR);
	config_free(&c);
	setenv("WXAPP_MAX_REQUESTS", "-1", 1);
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "WXAPP_MAX_REQUESTS: max_requests: value is too small"));
}
END_TEST

START_TEST(secrets_are_never_printed)
{
	struct config	 c;
	char		*dump = NULL;
	size_t		 len = 0;
	FILE		*f;

	write_conf("pg_conninfo = host=db password=hunter2\n"
	    "redis_password = s3cret\n");
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), 0);
	f = open_memstream(&dump, &len);
	config_dump(&c, f);
	fclose(f);
	ck_assert_ptr_null(strstr(dump, "hunter2"));
	ck_assert_ptr_null(strstr(dump, "s3cret"));
	ck_assert_ptr_nonnull(strstr(dump, "pg_conninfo = (secret)"));
	ck_assert_ptr_nonnull(strstr(dump, "max_requests = 10000"));
	free(dump);
	config_free(&c);
}
END_TEST

START_TEST(missing_file_is_an_error)
{
	struct config	c;

	ck_assert_int_eq(config_load(&c, "/nonexistent/wxapp.conf", err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/wxapp.conf: No such file"));
}
END_TEST

START_TEST(path_precedence)
{
	setenv("WXAPP_CONF", "/env/wxapp.conf", 1);
	ck_assert_str_eq(config_pick_path("/cli.conf"), "/cli.conf");
	ck_assert_str_eq(config_pick_path(NULL), "/env/wxapp.conf");
	unsetenv("WXAPP_CONF");
	ck_assert_str_eq(config_pick_path(NULL), config_default_path());
	ck_assert_ptr_nonnull(strstr(config_default_path(), "/wxapp/wxapp.conf"));
}
END_TEST

/* A program of its own, to show lib/conf needs no wxapp. */
struct mine {
	char		*name;
	long long	 port;
	int		 color;
	int		 verbose;
	double		 share;
};
static const char *const colors[] = { "red", "green", NULL };
static const struct conf_key mine_keys[] = {
	{ .name = "name", .type = CONF_STR, .off = offsetof(struct mine, name),
	  .def = "anon" },
	{ .name = "port", .type = CONF_INT, .off = offsetof(struct mine, port),
	  .def = "80", .min = 1, .max = 65535 },
	{ .name = "color", .type = CONF_ENUM,
	  .off = offsetof(struct mine, color), .def = "red", .names = colors },
	{ .name = "verbose", .type = CONF_BOOL,
	  .off = offsetof(struct mine, verbose), .def = "off" },
	{ .name = "share", .type = CONF_RATIO,
	  .off = offsetof(struct mine, share), .def = "0.25" },
	{ .name = "old_knob", .type = CONF_OBSOLETE },
};
static const struct conf_schema mine_schema = {
	.keys = mine_keys, .nkeys = sizeof(mine_keys) / sizeof(mine_keys[0]),
	.size = sizeof(struct mine), .env_prefix = "MINE_"
};

START_TEST(a_table_of_another_program)
{
	struct mine	 m;
	const char	*obsolete;

	write_conf("name = x\ncolor = green\nold_knob = 3\n");
	setenv("MINE_PORT", "8080", 1);
	ck_assert_int_eq(conf_load(&mine_schema, &m, path, &obsolete, err,
	    sizeof(err)), 0);
	unsetenv("MINE_PORT");
	ck_assert_str_eq(m.name, "x");
	ck_assert_int_eq(m.port, 8080);
	ck_assert_int_eq(m.color, 1);
	ck_assert_int_eq(m.verbose, 0);
	ck_assert_str_eq(obsolete, "old_knob");
	conf_free(&mine_schema, &m);
	ck_assert_ptr_null(m.name);
	unlink(path);
	write_conf("color = blue\n");
	ck_assert_int_eq(conf_load(&mine_schema, &m, path, &obsolete, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":1: color: value must be one of "
	    "red, green"));
}
END_TEST

START_TEST(opentelemetry_variables_fill_what_the_keys_leave_empty)
{
	struct config	c;

	write_conf("log_level = info\n");
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", 1);
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=x", 1);
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), 0);
	ck_assert_str_eq(c.otlp_endpoint, "http://collector:4318");
	ck_assert_str_eq(c.otlp_headers, "api-key=x");
	config_free(&c);
	/* wxapp's own key (in the file, or WXAPP_OTLP_*) wins. */
	unlink(path);
	write_conf("otlp_endpoint = http://mine:4318\n");
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), 0);
	ck_assert_str_eq(c.otlp_endpoint, "http://mine:4318");
	config_free(&c);
	unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	unsetenv("OTEL_EXPORTER_OTLP_HEADERS");
	unlink(path);
}
END_TEST

START_TEST(status_allow_is_a_list_of_addresses)
{
	struct config	c;

	write_conf("log_level = info\n");
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), 0);
	ck_assert_str_eq(c.status_allow, "");	/* loopback alone */
	config_free(&c);
	unlink(path);
	write_conf("status_allow = 10.0.0.0/8, 2001:db8::7\n");
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), 0);
	ck_assert_str_eq(c.status_allow, "10.0.0.0/8, 2001:db8::7");
	config_free(&c);
	unlink(path);
	write_conf("status_allow = 10.0.0.0/8, 10.0.0.0/40\n");
	ck_assert_int_eq(config_load(&c, path, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "status_allow: \"10.0.0.0/40\" is "
	    "not an address"));
	unlink(path);
}
END_TEST

START_TEST(a_ratio_is_a_number_from_0_to_1)
{
	static const char *const bad[] = { "1.5", "-0.1", "nan", "0.5x", "",
	    " 0.5", "1e400", "inf" };
	struct mine	 m;
	const char	*obsolete;
	size_t		 i;

	write_conf("share = 0.125\n");
	ck_assert_int_eq(conf_load(&mine_schema, &m, path, &obsolete, err,
	    sizeof(err)), 0);
	ck_assert(m.share == 0.125);
	conf_free(&mine_schema, &m);
	unlink(path);
	write_conf("name = x\n");
	ck_assert_int_eq(conf_load(&mine_schema, &m, path, &obsolete, err,
	    sizeof(err)), 0);
	ck_assert(m.share == 0.25);
	conf_free(&mine_schema, &m);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("MINE_SHARE", bad[i], 1);
		ck_assert_msg(conf_load(&mine_schema, &m, path, &obsolete, err,
		    sizeof(err)) == -1, "accepted \"%s\"", bad[i]);
		ck_assert_ptr_nonnull(strstr(err, "must be a number from 0 to 1"));
	}
	unsetenv("MINE_SHARE");
	unlink(path);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("config");
	TCase	*tc = tcase_create("config");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, defaults_and_values);
	tcase_add_test(tc, unknown_key_names_file_and_line);
	tcase_add_test(tc, bad_number_names_key);
	tcase_add_test(tc, out_of_range_names_key_and_range);
	tcase_add_test(tc, duplicate_and_garbage_lines);
	tcase_add_test(tc, env_overrides_file);
	tcase_add_test(tc, secrets_are_never_printed);
	tcase_add_test(tc, missing_file_is_an_error);
	tcase_add_test(tc, path_precedence);
	tcase_add_test(tc, a_table_of_another_program);
	tcase_add_test(tc, a_ratio_is_a_number_from_0_to_1);
	tcase_add_test(tc, opentelemetry_variables_fill_what_the_keys_leave_empty);
	tcase_add_test(tc, status_allow_is_a_list_of_addresses);
	suite_add_tcase(s, tc);
	return check_run(s);
}

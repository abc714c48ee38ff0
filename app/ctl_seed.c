/*
 * wxappctl seed [--users N] [--items N] [--force]: fill the database with
 * realistic data for development, tests and benchmarks.  Tops up to N;
 * running it again adds nothing.  A database that holds users who logged
 * in through WeChat is a real one: seed refuses it without --force, and
 * even then gives profiles to seeded users only.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>

#include "app.h"
#include "ctl.h"
#include "util.h"

static const char sql_users[] =
    "INSERT INTO users (name, email, created_at, updated_at)"
    " SELECT (ARRAY['王','李','张','刘','陈','杨','黄','赵','吴','周'])"
    "[1 + g % 10] || (ARRAY['伟','芳','娜','敏','静','丽','强','磊','洋',"
    "'艳','勇','军','杰','娟','涛'])[1 + g % 15],"
    " 'user' || g || '@example.com',"
    " now() - make_interval(mins => $1::int - g),"
    " now() - make_interval(mins => $1::int - g)"
    " FROM generate_series(1, $1::int) g"
    " ON CONFLICT (email) DO NOTHING";
static const char sql_profiles[] =
    "INSERT INTO user_profiles (user_id, city, gender, avatar_url, bio)"
    " SELECT id, (ARRAY['北京','上海','广州','深圳','杭州','成都'])[1 + id % 6],"
    " (id % 3)::smallint,"
    " 'https://img.example.com/avatar/' || id || '.png',"
    " '热爱生活 #' || id"
    " FROM users WHERE id % 3 = 0 AND openid IS NULL"
    " AND email ~ '^user[0-9]+@example\\.com$'"
    " ON CONFLICT (user_id) DO NOTHING";
static const char sql_real[] =
    "SELECT count(*) FROM users WHERE openid IS NOT NULL";
static const char sql_items[] =
    "INSERT INTO items (title, summary, cover_url, category, status,"
    " created_at, updated_at)"
    " SELECT (ARRAY['限时特惠','新品上市','本周精选','热门推荐','达人分享'])"
    "[1 + g % 5] || ' No.' || g,"
    " 'Item ' || g || ': a short summary a home page can show.',"
    " 'https://img.example.com/cover/' || g || '.jpg',"
    " (ARRAY['food','travel','tech','fashion','sports','music'])[1 + g % 6],"
    " CASE WHEN g % 20 = 0 THEN 'draft' ELSE 'published' END,"
    " now() - make_interval(mins => n - g), now() - make_interval(mins => n - g)"
    " FROM (SELECT greatest($1::int - count(*), 0)::int AS n FROM items) c,"
    " generate_series(1, c.n) g";

/* Run sql with one integer parameter; rows affected, or -1. */
static long long
run(struct ctl *ctl, const char *sql, const char *arg)
{
	const char	*params[1] = { arg }, *errstr;
	PGresult	*res;
	long long	 n = -1;

	res = PQexecParams(db_conn(&ctl->db), sql, arg ? 1 : 0, NULL, params,
	    NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		ctl_err("seed: %s", PQresultErrorMessage(res));
	else if (util_strtonum(PQcmdTuples(res), 0, LLONG_MAX, &n,
	    &errstr) == -1)
		n = 0;
	PQclear(res);
	return n;
}

int
ctl_seed(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "users", required_argument, NULL, 'u' },
		{ "items", required_argument, NULL, 'i' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 }
	};
	const char	*users = "10000", *items = "1000", *errstr;
	PGresult	*res;
	long long	 v, nu, np, ni, real = -1;
	int		 ch, force = 0;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch == 'f') {
			force = 1;
			continue;
		}
		if ((ch != 'u' && ch != 'i') ||
		    util_strtonum(optarg, 0, 10000000, &v, &errstr) == -1) {
			ctl_err("usage: %s (N from 0 to 10000000)",
			    ctl->cmd->usage);
			return CTL_USAGE;
		}
		if (ch == 'u')
			users = optarg;
		else
			items = optarg;
	}
	if (optind != argc) {
		return ctl_usage(ctl);
	}
	if (ctl_db(ctl, 0) != CTL_OK)
		return CTL_FAIL;
	res = PQexec(db_conn(&ctl->db), sql_real);
	if (PQresultStatus(res) == PGRES_TUPLES_OK &&
	    util_strtonum(PQgetvalue(res, 0, ONLY_COL), 0, LLONG_MAX, &real,
	    &errstr) == -1)
		real = -1;
	PQclear(res);
	if (real == -1) {
		ctl_err("seed: postgres: cannot count the users");
		return CTL_FAIL;
	}
	if (real > 0 && !force) {
		ctl_err("seed: the database holds %lld user(s) who logged in "
		    "through WeChat: not seeding it (--force to seed anyway)",
		    real);
		return CTL_FAIL;
	}
	if ((nu = run(ctl, sql_users, users)) < 0 ||
	    (np = run(ctl, sql_profiles, NULL)) < 0 ||
	    (ni = run(ctl, sql_items, items)) < 0)
		return CTL_FAIL;
	printf("seeded %lld users, %lld profiles, %lld items\n", nu, np, ni);
	return CTL_OK;
}

/*
 * wxappctl user show ID|openid, user revoke ID: look a user up; end every
 * session of a user (refresh families revoked, live access tokens denied).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "ctl.h"
#include "data.h"
#include "log.h"
#include "util.h"

/* "user show": by id when the argument is a number, else by openid. */
static int
user_show(struct ctl *ctl, const char *who)
{
	struct arena	 a;
	struct buf	 b;
	const char	*params[1] = { who }, *errstr;
	PGresult	*res = NULL, *fres = NULL;
	long long	 id;
	int		 rc = CTL_FAIL;

	if (db_exec(&ctl->db, util_strtonum(who, 1, LLONG_MAX, &id,
	    &errstr) == 0 ? STMT_USER_GET : STMT_USER_BY_OPENID, params,
	    &res) != DB_OK) {
		ctl_err("user: postgres: %s", ctl->db.errmsg);
		return CTL_FAIL;
	}
	if (PQntuples(res) == 0) {
		ctl_err("user: no user %s", who);
		goto done;
	}
	params[0] = PQgetvalue(res, 0, 0);
	if (db_exec(&ctl->db, STMT_RT_LIVE_FAMILIES, params, &fres) != DB_OK) {
		ctl_err("user: postgres: %s", ctl->db.errmsg);
		goto done;
	}
	arena_init(&a, 4096, 1);
	buf_init(&b, &a, 512);
	data_user_json(&b, res, 0);
	printf("%s\nlive sessions: %s\n", buf_cstr(&b), PQgetvalue(fres, 0, 0));
	arena_free(&a);
	rc = CTL_OK;
done:
	PQclear(fres);
	PQclear(res);
	return rc;
}

/* "user revoke": families revoked in PostgreSQL, older tokens denied. */
static int
user_revoke(struct ctl *ctl, const char *who)
{
	struct cache	 cc;
	const char	*params[1] = { who }, *errstr;
	char		 key[64], now[24];
	PGresult	*res;
	long long	 id;
	int		 n;

	if (util_strtonum(who, 1, LLONG_MAX, &id, &errstr) == -1) {
		ctl_err("usage: user revoke ID (a positive integer)");
		return CTL_USAGE;
	}
	if (db_exec(&ctl->db, STMT_RT_REVOKE_USER, params, &res) != DB_OK) {
		ctl_err("user: postgres: %s", ctl->db.errmsg);
		return CTL_FAIL;
	}
	printf("revoked %s refresh token(s) of user %lld\n", PQcmdTuples(res),
	    id);
	PQclear(res);
	/* Access tokens issued up to now die; they live access_token_ttl. */
	n = snprintf(key, sizeof(key), KEY_REVOKED, id);
	if (n < 0 || (size_t)n >= sizeof(key) ||
	    snprintf(now, sizeof(now), "%lld", (long long)time(NULL)) < 0) {
		ctl_err("user: key too long");
		return CTL_FAIL;
	}
	cache_init(&cc, &ctl->cfg);
	if (cache_connect(&cc) == -1 || cache_setex(&cc, key, now, strlen(now),
	    ctl->cfg.access_token_ttl + ctl->cfg.jwt_leeway) != CACHE_OK) {
		cache_close(&cc);
		ctl_err("user: redis unavailable: live access tokens of user "
		    "%lld stay valid until they expire (at most %lld s)", id,
		    ctl->cfg.access_token_ttl);
		return CTL_FAIL;
	}
	cache_close(&cc);
	log_warn("wxappctl: every session of user %lld revoked", id);
	printf("live access tokens of user %lld are denied\n", id);
	return CTL_OK;
}

int
ctl_user(struct ctl *ctl, int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "show") != 0 &&
	    strcmp(argv[1], "revoke") != 0)) {
		ctl_err("usage: user show ID|openid | user revoke ID");
		return CTL_USAGE;
	}
	if (ctl_db(ctl, 1) != CTL_OK)
		return CTL_FAIL;
	if (strcmp(argv[1], "show") == 0)
		return user_show(ctl, argv[2]);
	return user_revoke(ctl, argv[2]);
}

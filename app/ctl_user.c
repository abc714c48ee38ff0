/*
 * wxappctl user show ID|openid, user revoke ID, user grant ID admin|user,
 * user delete ID: look a user up; end every session of a user; change its
 * role; delete its account.  The changes are made in PostgreSQL and then
 * told to the responders through Redis (see app/auth.c): with Redis
 * unreachable the change stands, and the command says it is not known
 * everywhere yet and exits 1.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

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
	params[0] = PQgetvalue(res, 0, UC_ID);
	if (db_exec(&ctl->db, STMT_RT_LIVE_FAMILIES, params, &fres) != DB_OK) {
		ctl_err("user: postgres: %s", ctl->db.errmsg);
		goto done;
	}
	arena_init(&a, 4096, 1);
	buf_init(&b, &a, 512);
	data_user_full_json(&b, res, 0);
	printf("%s\nrole: %s\nlive sessions: %s\n", buf_cstr(&b),
	    PQgetvalue(res, 0, UC_ROLE), PQgetvalue(fres, 0, ONLY_COL));
	arena_free(&a);
	rc = CTL_OK;
done:
	PQclear(fres);
	PQclear(res);
	return rc;
}

/* Report the outcome of an account operation; the exit status. */
static int
user_report(struct ctl *ctl, enum account_result rc, long long id,
    const char *done)
{
	switch (rc) {
	case ACCOUNT_OK:
		printf("%s\n", done);
		return CTL_OK;
	case ACCOUNT_UNTOLD:
		printf("%s\n", done);
		ctl_err("user: redis %s unavailable: responders that read user "
		    "%lld before still act on what they read, until redis is "
		    "back (at most a minute); run it again then",
		    ctl->cfg.redis_addr, id);
		return CTL_FAIL;
	case ACCOUNT_NONE:
		ctl_err("user: no user %lld", id);
		return CTL_FAIL;
	case ACCOUNT_CACHE:
		ctl_err("user: redis %s unavailable: nothing changed",
		    ctl->cfg.redis_addr);
		return CTL_FAIL;
	case ACCOUNT_DB_UNAVAILABLE:
	case ACCOUNT_DB_ERROR:
		break;
	}
	ctl_err("user: postgres: %s", ctl->db.errmsg);
	return CTL_FAIL;
}

/* revoke, grant or delete user id (the role for grant). */
static int
user_change(struct ctl *ctl, const char *op, long long id, const char *role)
{
	struct cache		 cc;
	enum account_result	 rc;
	long long		 tokens = 0;
	char			 done[128];
	int			 n;

	ctl_redis(ctl, &cc);
	(void)cache_connect(&cc);
	if (strcmp(op, "revoke") == 0) {
		rc = account_revoke(&ctl->db, &cc, NULL, id, &tokens);
		n = snprintf(done, sizeof(done), "every session of user %lld "
		    "ended (%lld refresh token(s) revoked, access tokens "
		    "refused)", id, tokens);
	} else if (strcmp(op, "grant") == 0) {
		rc = account_grant(&ctl->db, &cc, NULL, id, role);
		n = snprintf(done, sizeof(done), "user %lld is now %s", id,
		    role);
	} else {
		rc = account_delete(&ctl->db, &cc, NULL, id);
		n = snprintf(done, sizeof(done), "user %lld deleted", id);
	}
	cache_close(&cc);
	if (n < 0 || (size_t)n >= sizeof(done))
		done[0] = '\0';
	if (rc == ACCOUNT_OK || rc == ACCOUNT_UNTOLD)
		log_warn("wxappctl: %s", done);
	return user_report(ctl, rc, id, done);
}

int
ctl_user(struct ctl *ctl, int argc, char **argv)
{
	const char	*errstr, *role = NULL;
	long long	 id = 0;

	if (argc < 3 || (strcmp(argv[1], "grant") == 0 ? argc != 4 :
	    argc != 3)) {
		return ctl_usage(ctl);
	}
	if (strcmp(argv[1], "show") != 0) {
		if ((strcmp(argv[1], "revoke") != 0 &&
		    strcmp(argv[1], "grant") != 0 &&
		    strcmp(argv[1], "delete") != 0) ||
		    util_strtonum(argv[2], 1, LLONG_MAX, &id, &errstr) == -1) {
			return ctl_usage(ctl);
		}
		if (strcmp(argv[1], "grant") == 0) {
			role = argv[3];
			if (strcmp(role, "admin") != 0 &&
			    strcmp(role, "user") != 0) {
				ctl_err("user: a role is admin or user");
				return CTL_USAGE;
			}
		}
	}
	if (ctl_db(ctl, 1) != CTL_OK)
		return CTL_FAIL;
	if (strcmp(argv[1], "show") == 0)
		return user_show(ctl, argv[2]);
	return user_change(ctl, argv[1], id, role);
}

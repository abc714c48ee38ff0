/*
 * account: what happens to a whole account — deletion, the end of every
 * session, a change of role — for the responder and wxappctl alike.
 * PostgreSQL is changed first and is the truth; then every responder is
 * told (auth_changed), and the cached answers that showed the account are
 * invalidated.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "util.h"

/*
 * Run statement stmt for user_id (and arg): ACCOUNT_OK with *n the rows
 * it returned or touched, or how PostgreSQL failed (db->errmsg).
 */
static enum account_result
exec_user(struct db *db, size_t stmt, long long user_id, const char *arg,
    long long *n)
{
	const char	*params[2], *errstr;
	char		 id[24];
	PGresult	*res;
	enum db_status	 st;
	int		 w;

	w = snprintf(id, sizeof(id), "%lld", user_id);
	if (w < 0 || (size_t)w >= sizeof(id))
		return ACCOUNT_DB_ERROR;
	params[0] = id;
	params[1] = arg;
	if ((st = db_exec(db, stmt, params, &res)) != DB_OK)
		return st == DB_UNAVAILABLE ? ACCOUNT_DB_UNAVAILABLE :
		    ACCOUNT_DB_ERROR;
	if ((*n = PQntuples(res)) == 0 && util_strtonum(PQcmdTuples(res), 0,
	    LLONG_MAX, n, &errstr) == -1)
		*n = 0;
	PQclear(res);
	return ACCOUNT_OK;
}

/* Tell the responders; ACCOUNT_UNTOLD when Redis could not be told. */
static enum account_result
tell(struct cache *cc, uint64_t *changes, long long user_id)
{
	return auth_changed(cc, changes, user_id) == 0 ? ACCOUNT_OK :
	    ACCOUNT_UNTOLD;
}

enum account_result
account_delete(struct db *db, struct cache *cc, uint64_t *changes,
    long long user_id)
{
	const char		*argv[2];
	size_t			 argvlen[2];
	char			 key[64];
	redisReply		*r;
	enum account_result	 rc;
	long long		 n;
	int			 w;

	/*
	 * The session_key goes first: were Redis unreachable, the account
	 * stays, rather than its key outliving it (a retry finishes it).
	 */
	w = snprintf(key, sizeof(key), KEY_SESSION_KEY, user_id);
	if (w < 0 || (size_t)w >= sizeof(key))
		return ACCOUNT_DB_ERROR;
	argv[0] = "DEL", argv[1] = key;
	argvlen[0] = 3, argvlen[1] = (size_t)w;
	if (cache_cmd(cc, &r, 2, argv, argvlen) != CACHE_OK)
		return ACCOUNT_CACHE;
	freeReplyObject(r);
	/* The profile, refresh tokens and owned items go with the row. */
	if ((rc = exec_user(db, STMT_USER_DELETE, user_id, NULL, &n)) !=
	    ACCOUNT_OK)
		return rc;
	if (n == 0)
		return ACCOUNT_NONE;
	rc = tell(cc, changes, user_id);
	(void)data_invalidate(cc, changes, COLL_USERS);
	(void)data_invalidate(cc, changes, COLL_ITEMS);
	(void)data_invalidate(cc, changes, COLL_FAVORITES);
	log_info("account: user %lld deleted", user_id);
	return rc;
}

enum account_result
account_revoke(struct db *db, struct cache *cc, uint64_t *changes,
    long long user_id, long long *tokens)
{
	enum account_result	rc;
	long long		n;

	if (db_begin(db) != DB_OK)
		return ACCOUNT_DB_UNAVAILABLE;
	if ((rc = exec_user(db, STMT_USER_NEXT_GEN, user_id, NULL, &n)) !=
	    ACCOUNT_OK)
		goto fail;
	if (n == 0) {
		rc = ACCOUNT_NONE;
		goto fail;
	}
	if ((rc = exec_user(db, STMT_RT_REVOKE_USER, user_id, NULL,
	    tokens)) != ACCOUNT_OK)
		goto fail;
	if (db_commit(db) != DB_OK) {
		rc = ACCOUNT_DB_UNAVAILABLE;
		goto fail;
	}
	log_info("account: every session of user %lld ended", user_id);
	return tell(cc, changes, user_id);
fail:
	db_rollback(db);
	return rc;
}

enum account_result
account_grant(struct db *db, struct cache *cc, uint64_t *changes,
    long long user_id, const char *role)
{
	enum account_result	rc;
	long long		n;

	if ((rc = exec_user(db, STMT_USER_SET_ROLE, user_id, role, &n)) !=
	    ACCOUNT_OK)
		return rc;
	if (n == 0)
		return ACCOUNT_NONE;
	log_info("account: user %lld is now %s", user_id, role);
	(void)data_invalidate(cc, changes, COLL_USERS);
	return tell(cc, changes, user_id);
}

void
account_answer(struct app *app, struct resp *rs, enum account_result rc,
    long long user_id, const char *done)
{
	switch (rc) {
	case ACCOUNT_OK:
	case ACCOUNT_UNTOLD:
		/* Done (auth_changed logged it if Redis was not told). */
		resp_json(rs, strcmp(done, "deleted") == 0 ? 204 : 200, NULL,
		    done);
		break;
	case ACCOUNT_NONE:
		resp_error(rs, API_NOT_FOUND, "user %lld not found", user_id);
		break;
	case ACCOUNT_DB_UNAVAILABLE:
	case ACCOUNT_DB_ERROR:
		app_db_error(app, rs, rc == ACCOUNT_DB_UNAVAILABLE ?
		    DB_UNAVAILABLE : DB_ERROR, "account");
		break;
	case ACCOUNT_CACHE:
		resp_error(rs, API_CACHE_UNAVAILABLE, "the session store is "
		    "unavailable; retry");
		resp_header_str(rs, "Retry-After", "1");
		break;
	}
}

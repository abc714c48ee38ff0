/*
 * h_user: logging in with a wx.login code, logging out, and the current
 * user.  Refresh lives with the rest of the session in session.c.
 */
#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "log.h"
#include "util.h"

#define CODE_MAX	128

/* A WeChat code as the JSON field `field`: 1..128 printable ASCII. */
static int
wx_code_field(struct req *rq, struct resp *rs, const char *field,
    const char **code)
{
	struct json_object	*body;
	size_t			 i;

	if (req_json_body(rq, rs, &body) == -1 ||
	    req_json_string(rs, body, field, code) == -1)
		return -1;
	for (i = 0; (*code)[i] != '\0'; i++)
		if (i == CODE_MAX || !isgraph((unsigned char)(*code)[i]))
			break;
	if (i == 0 || (*code)[i] != '\0') {
		resp_error(rs, API_VALIDATION, "field `%s` must be 1 to %d "
		    "printable characters", field, CODE_MAX);
		return -1;
	}
	return 0;
}

/*
 * POST /api/v1/user/login {"code"}: code2Session, then the user upserted
 * and its new session in one statement (STMT_LOGIN), run together with
 * the logins of other coroutines of this responder that reached it at the
 * same time (app->logins: one round trip and one commit for them all,
 * which matters in a login flood), then the session_key kept in Redis.
 */
void
h_login(struct app *app, struct req *rq, struct resp *rs)
{
	struct wechat_session	 ws;
	enum wechat_status	 wst;
	enum db_status		 st;
	PGresult		*res;
	const char		*code, *params[LOGIN_NPARAMS], *user_id;
	const char		*family = NULL;
	const char		*refresh, *hash, *errstr;
	long long		 uid;

	if (wx_code_field(rq, rs, "code", &code) == -1 ||
	    app_abandoned(app, rs, "login") == -1)
		return;
	if ((wst = wechat_code2session(&app->wx, rq->a, code, &ws)) !=
	    WECHAT_OK) {
		app_wx_error(app, rs, wst, "login");
		return;
	}
	if (session_mint(rq, rs, &family, &refresh, &hash) == -1)
		return;
	params[0] = ws.openid;
	params[1] = ws.unionid != NULL ? ws.unionid : "";
	params[2] = family;
	params[3] = hash;
	params[4] = arena_printf(rq->a, "%lld", app->cfg.refresh_token_ttl);
	if ((st = dbbatch_exec(&app->logins, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "login");
		return;
	}
	user_id = PQgetvalue(res, 0, UC_ID);
	if (util_strtonum(user_id, 1, LLONG_MAX, &uid, &errstr) == -1) {
		log_error("login: user id %s unreadable", user_id);
		resp_error(rs, API_INTERNAL, "internal error");
		PQclear(res);
		return;
	}
	/*
	 * The session_key stays on the server, replacing the previous one.
	 * Without Redis the login still stands; decryption will ask the
	 * client to log in again.
	 */
	if (cache_setex(&app->cache, arena_printf(rq->a, KEY_SESSION_KEY, uid),
	    ws.session_key, strlen(ws.session_key), app->cfg.session_key_ttl) !=
	    CACHE_OK)
		log_warn("login: cannot store the session_key of user %lld",
		    uid);
	session_answer(app, rq, rs, res, family, refresh);
	PQclear(res);
}

/*
 * POST /api/v1/user/logout[?all=1]: end the session of this device (the
 * refresh family its access token was issued to), or with all=1 every
 * session of the user.  Their access tokens are refused from now on.
 */
void
h_logout(struct app *app, struct req *rq, struct resp *rs)
{
	const char		*all = req_query(rq, "all"), *params[1];
	PGresult		*res;
	enum db_status		 st;
	enum account_result	 rc;
	long long		 tokens;

	if (all != NULL && strcmp(all, "1") != 0 && strcmp(all, "0") != 0) {
		resp_error(rs, API_VALIDATION, "query parameter `all` must be "
		    "1 or 0");
		return;
	}
	if (all != NULL && strcmp(all, "1") == 0) {
		rc = account_revoke(&app->db, &app->cache, app->pool->changes,
		    app->who.user_id, &tokens);
		account_answer(app, rs, rc, app->who.user_id,
		    "logged out everywhere");
	} else {
		params[0] = app->who.fam;
		if ((st = db_exec(&app->db, STMT_RT_REVOKE_FAMILY, params,
		    &res)) != DB_OK) {
			app_db_error(app, rs, st, "logout: revoke");
			return;
		}
		PQclear(res);
		(void)auth_changed(&app->cache, app->pool->changes,
		    app->who.user_id);
		resp_json(rs, 200, NULL, "logged out");
	}
	if (rs->status == 200)
		session_clear_cookie(rs);
}

/* GET /api/v1/user/me: the caller, in full. */
void
h_me(struct app *app, struct req *rq, struct resp *rs)
{
	const char	*params[1];
	PGresult	*res;
	enum db_status	 st;

	params[0] = arena_printf(rq->a, "%lld", app->who.user_id);
	if ((st = db_exec(&app->db, STMT_USER_GET, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "me");
		return;
	}
	if (PQntuples(res) == 0)
		resp_error(rs, API_NOT_FOUND, "user not found");
	else {
		resp_json(rs, 200, session_user_json(rq->a, res), "ok");
		resp_header_str(rs, "Cache-Control", "private, no-cache");
	}
	PQclear(res);
}

/*
 * DELETE /api/v1/user/me: delete the account (PIPL; the platform's rules):
 * the user, its profile, phone number, session_key, sessions and the
 * items it owns.
 */
void
h_me_delete(struct app *app, struct req *rq, struct resp *rs)
{
	(void)rq;
	account_answer(app, rs, account_delete(&app->db, &app->cache,
	    app->pool->changes, app->who.user_id), app->who.user_id,
	    "deleted");
	if (rs->status == 204)
		session_clear_cookie(rs);
}

/* POST /api/v1/user/phone {"code"}: getPhoneNumber, stored on the user. */
void
h_phone(struct app *app, struct req *rq, struct resp *rs)
{
	enum wechat_status	 wst;
	enum db_status		 st;
	PGresult		*res;
	const char		*code, *phone, *params[2];
	struct buf		*b;

	if (wx_code_field(rq, rs, "code", &code) == -1 ||
	    app_abandoned(app, rs, "phone") == -1)
		return;
	if ((wst = wechat_phone_number(&app->wx, rq->a, code, &phone)) !=
	    WECHAT_OK) {
		app_wx_error(app, rs, wst, "phone");
		return;
	}
	params[0] = arena_printf(rq->a, "%lld", app->who.user_id);
	params[1] = phone;
	if ((st = db_exec(&app->db, STMT_USER_SET_PHONE, params, &res)) !=
	    DB_OK) {
		app_db_error(app, rs, st, "phone: store");
		return;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		resp_error(rs, API_NOT_FOUND, "user not found");
		return;
	}
	b = resp_begin(rs, 200);
	buf_adds(b, "{\"phone_number\":");
	buf_json_str(b, phone, strlen(phone));
	buf_printf(b, ",\"user\":%s}", session_user_json(rq->a, res));
	resp_end(rs, "ok");
	resp_header_str(rs, "Cache-Control", "no-store");
	PQclear(res);
}

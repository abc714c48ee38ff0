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

/* POST /api/v1/user/login {"code"}: code2Session, upsert, new session. */
void
h_login(struct app *app, struct req *rq, struct resp *rs)
{
	struct wechat_session	 ws;
	enum wechat_status	 wst;
	enum db_status		 st;
	PGresult		*res = NULL;
	const char		*code, *params[2], *user_id, *user_json;
	const char		*refresh, *row_id, *errstr;
	long long		 uid;

	if (wx_code_field(rq, rs, "code", &code) == -1)
		return;
	if ((wst = wechat_code2session(&app->wx, rq->a, code, &ws)) !=
	    WECHAT_OK) {
		app_wx_error(app, rs, wst, "login");
		return;
	}
	if ((st = db_begin(&app->db)) != DB_OK) {
		app_db_error(app, rs, st, "login: begin");
		return;
	}
	params[0] = ws.openid;
	params[1] = ws.unionid != NULL ? ws.unionid : "";
	if ((st = db_exec(&app->db, STMT_USER_UPSERT_OPENID, params, &res)) !=
	    DB_OK) {
		app_db_error(app, rs, st, "login: upsert user");
		goto fail;
	}
	user_id = arena_strdup(rq->a, PQgetvalue(res, 0, 0));
	user_json = session_user_json(rq->a, res);
	PQclear(res);
	res = NULL;
	if (session_refresh_new(app, rq, rs, user_id, NULL, &refresh,
	    &row_id) == -1)
		goto fail;
	if ((st = db_commit(&app->db)) != DB_OK) {
		app_db_error(app, rs, st, "login: commit");
		goto fail;
	}
	if (util_strtonum(user_id, 1, LLONG_MAX, &uid, &errstr) == -1) {
		resp_error(rs, API_INTERNAL, "internal error");
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
	session_answer(app, rq, rs, uid, refresh, user_json);
	return;
fail:
	PQclear(res);
	db_rollback(&app->db);
}

/* POST /api/v1/user/logout: revoke the refresh family, deny the jti. */
void
h_logout(struct app *app, struct req *rq, struct resp *rs)
{
	const char	*tok, *params[2], *family = NULL;
	PGresult	*res;
	enum db_status	 st;
	long long	 left;

	if (session_presented(rq, rs, 0, &tok) == -1)
		return;
	params[1] = arena_printf(rq->a, "%lld", rq->user_id);
	if (tok != NULL) {
		params[0] = session_hash(rq->a, tok);
		if ((st = db_exec(&app->db, STMT_RT_FAMILY_OF, params, &res)) !=
		    DB_OK) {
			app_db_error(app, rs, st, "logout: family");
			return;
		}
		if (PQntuples(res) > 0)
			family = arena_strdup(rq->a, PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	/* A token we cannot place (or none): end every session of the user. */
	if (family != NULL) {
		params[0] = family;
		st = db_exec(&app->db, STMT_RT_REVOKE_FAMILY, params, &res);
	} else {
		params[0] = params[1];
		st = db_exec(&app->db, STMT_RT_REVOKE_USER, params, &res);
	}
	if (st != DB_OK) {
		app_db_error(app, rs, st, "logout: revoke");
		return;
	}
	PQclear(res);
	left = rq->token_exp + app->cfg.jwt_leeway - (long long)time(NULL);
	if (left > 0 && cache_setex(&app->cache,
	    arena_printf(rq->a, KEY_DENY_JTI, rq->jti), "1", 1, left) !=
	    CACHE_OK) {
		log_error("logout: cannot deny the access token of user %lld",
		    rq->user_id);
		resp_error(rs, API_CACHE_UNAVAILABLE,
		    "session revoked, but the access token could not be "
		    "revoked yet; retry");
		resp_header(rs, "Retry-After", "1");
		return;
	}
	resp_json(rs, 200, NULL, "logged out");
	resp_header(rs, "Set-Cookie", "refresh_token=; Max-Age=0; "
	    "Path=/api/v1/user; HttpOnly; Secure; SameSite=Strict");
}

/* GET /api/v1/user/me. */
void
h_me(struct app *app, struct req *rq, struct resp *rs)
{
	const char	*params[1];
	PGresult	*res;
	enum db_status	 st;

	params[0] = arena_printf(rq->a, "%lld", rq->user_id);
	if ((st = db_exec(&app->db, STMT_USER_GET, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "me");
		return;
	}
	if (PQntuples(res) == 0)
		resp_error(rs, API_NOT_FOUND, "user not found");
	else {
		resp_json(rs, 200, session_user_json(rq->a, res), "ok");
		resp_header(rs, "Cache-Control", "private, no-cache");
	}
	PQclear(res);
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

	if (wx_code_field(rq, rs, "code", &code) == -1)
		return;
	if ((wst = wechat_phone_number(&app->wx, rq->a, code, &phone)) !=
	    WECHAT_OK) {
		app_wx_error(app, rs, wst, "phone");
		return;
	}
	params[0] = arena_printf(rq->a, "%lld", rq->user_id);
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
	PQclear(res);
}

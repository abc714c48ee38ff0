/*
 * session: the dual-token session.  A short-lived JWT access token, and a
 * rotating refresh token of 256 random bits of which only the SHA-256 is
 * stored (PostgreSQL, so a Redis restart logs nobody out).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "data.h"
#include "crypto.h"
#include "log.h"
#include "token.h"
#include "util.h"

#define REFRESH_BYTES	32
#define REFRESH_COOKIE	"refresh_token"
#define COOKIE_ATTRS	"Path=/api/v1/user; HttpOnly; Secure; SameSite=Strict"

/* hex(SHA-256(token)) in the arena: what the database knows of a token. */
const char *
session_hash(struct arena *a, const char *token)
{
	unsigned char	 h[32];
	char		*hex = arena_alloc(a, 65);

	crypto_sha256(token, strlen(token), h);
	crypto_hex(h, sizeof(h), hex);
	return hex;
}

int
session_refresh_new(struct app *app, struct req *rq, struct resp *rs,
    const char *user_id, const char *family, const char **token,
    const char **row_id)
{
	char		*tok = arena_alloc(rq->a, 64), *fam;
	const char	*params[4];
	PGresult	*res;
	enum db_status	 st;

	if (crypto_random_b64url(REFRESH_BYTES, tok) == -1) {
		log_error("session: no randomness");
		resp_error(rs, API_INTERNAL, "internal error");
		return -1;
	}
	if (family == NULL) {
		fam = arena_alloc(rq->a, 32);
		if (crypto_random_b64url(16, fam) == -1) {
			log_error("session: no randomness");
			resp_error(rs, API_INTERNAL, "internal error");
			return -1;
		}
		family = fam;
	}
	params[0] = user_id;
	params[1] = family;
	params[2] = session_hash(rq->a, tok);
	params[3] = arena_printf(rq->a, "%lld", app->cfg.refresh_token_ttl);
	if ((st = db_exec(&app->db, STMT_RT_INSERT, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "session: refresh token");
		return -1;
	}
	*row_id = arena_strdup(rq->a, PQgetvalue(res, 0, 0));
	PQclear(res);
	*token = tok;
	return 0;
}

const char *
session_user_json(struct arena *a, PGresult *res)
{
	struct buf	b;

	buf_init(&b, a, 256);
	data_user_json(&b, res, 0);
	return buf_cstr(&b);
}

int
session_answer(struct app *app, struct req *rq, struct resp *rs,
    long long user_id, const char *refresh, const char *user_json)
{
	struct token_claims	 cl;
	const char		*access;
	struct buf		*b;

	if (token_issue(&app->cfg, user_id, app->cfg.access_token_ttl, rq->a,
	    &access, &cl) == -1) {
		log_error("session: cannot issue an access token");
		resp_error(rs, API_INTERNAL, "internal error");
		return -1;
	}
	b = resp_begin(rs, 200);
	buf_printf(b, "{\"access_token\":\"%s\",\"token_type\":\"Bearer\","
	    "\"expires_in\":%lld,\"refresh_token\":\"%s\","
	    "\"refresh_expires_in\":%lld,\"user\":%s}", access,
	    app->cfg.access_token_ttl, refresh, app->cfg.refresh_token_ttl,
	    user_json);
	resp_end(rs, "ok");
	resp_header(rs, "Set-Cookie", REFRESH_COOKIE "=%s; Max-Age=%lld; "
	    COOKIE_ATTRS, refresh, app->cfg.refresh_token_ttl);
	resp_header(rs, "Cache-Control", "no-store");
	return 0;
}

int
session_presented(struct req *rq, struct resp *rs, int required,
    const char **token)
{
	struct json_object	*body, *v;

	*token = NULL;
	if (rq->body_len > 0) {
		if (req_json_body(rq, rs, &body) == -1)
			return -1;
		if (json_object_object_get_ex(body, "refresh_token", &v) &&
		    req_json_string(rs, body, "refresh_token", token) == -1)
			return -1;
	}
	if (*token == NULL)
		*token = req_cookie(rq, REFRESH_COOKIE);
	if (*token != NULL && (strlen(*token) == 0 || strlen(*token) > 128)) {
		resp_error(rs, API_VALIDATION,
		    "field `refresh_token` must be 1 to 128 characters");
		return -1;
	}
	if (*token == NULL && required) {
		resp_error(rs, API_VALIDATION, "field `refresh_token` is missing "
		    "(send it in the body or the refresh_token cookie)");
		return -1;
	}
	return 0;
}

/* Revoke the family and answer 401: a used token came back (RFC 9700). */
static void
session_reuse(struct app *app, struct resp *rs, const char *family,
    const char *user_id)
{
	const char	*params[1] = { family };
	PGresult	*res;
	enum db_status	 st;

	if ((st = db_exec(&app->db, STMT_RT_REVOKE_FAMILY, params, &res)) !=
	    DB_OK || (st = db_commit(&app->db)) != DB_OK) {
		PQclear(res);
		db_rollback(&app->db);
		app_db_error(app, rs, st, "refresh: revoke family");
		return;
	}
	PQclear(res);
	log_warn("refresh: reuse of a used refresh token by user %s: "
	    "family revoked", user_id);
	resp_error(rs, API_REFRESH_REUSED,
	    "refresh token reuse detected: the session is revoked; log in again");
}

/* POST /api/v1/user/refresh: rotate the refresh token in one transaction. */
void
h_refresh(struct app *app, struct req *rq, struct resp *rs)
{
	const char	*tok, *params[2], *user_id, *family, *old_id, *new_id;
	const char	*fresh, *user_json;
	PGresult	*res = NULL;
	enum db_status	 st;
	long long	 uid;
	const char	*errstr;

	if (session_presented(rq, rs, 1, &tok) == -1)
		return;
	if ((st = db_begin(&app->db)) != DB_OK) {
		app_db_error(app, rs, st, "refresh: begin");
		return;
	}
	params[0] = session_hash(rq->a, tok);
	params[1] = arena_printf(rq->a, "%lld", app->cfg.refresh_grace);
	if ((st = db_exec(&app->db, STMT_RT_LOOKUP, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "refresh: lookup");
		goto fail;
	}
	if (PQntuples(res) == 0) {
		resp_error(rs, API_REFRESH_INVALID,
		    "unknown refresh token; log in again");
		goto fail;
	}
	old_id = arena_strdup(rq->a, PQgetvalue(res, 0, 0));
	user_id = arena_strdup(rq->a, PQgetvalue(res, 0, 1));
	family = arena_strdup(rq->a, PQgetvalue(res, 0, 2));
	if (*PQgetvalue(res, 0, 4) == 't') {
		resp_error(rs, API_REFRESH_INVALID,
		    "refresh token revoked; log in again");
		goto fail;
	}
	if (*PQgetvalue(res, 0, 3) == 't') {
		resp_error(rs, API_REFRESH_INVALID,
		    "refresh token expired; log in again");
		goto fail;
	}
	/* Used, and not within the grace period of a lost answer: reuse. */
	if (*PQgetvalue(res, 0, 5) == 't' && *PQgetvalue(res, 0, 6) != 't') {
		PQclear(res);
		session_reuse(app, rs, family, user_id);
		return;
	}
	PQclear(res);
	res = NULL;
	if (session_refresh_new(app, rq, rs, user_id, family, &fresh,
	    &new_id) == -1)
		goto fail;
	params[0] = old_id;
	params[1] = new_id;
	if ((st = db_exec(&app->db, STMT_RT_MARK_USED, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "refresh: mark used");
		goto fail;
	}
	PQclear(res);
	params[0] = user_id;
	if ((st = db_exec(&app->db, STMT_USER_GET, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "refresh: user");
		goto fail;
	}
	if (PQntuples(res) == 0) {
		resp_error(rs, API_REFRESH_INVALID, "user is gone; log in again");
		goto fail;
	}
	user_json = session_user_json(rq->a, res);
	PQclear(res);
	res = NULL;
	if ((st = db_commit(&app->db)) != DB_OK) {
		app_db_error(app, rs, st, "refresh: commit");
		goto fail;
	}
	if (util_strtonum(user_id, 1, LLONG_MAX, &uid, &errstr) == -1) {
		resp_error(rs, API_INTERNAL, "internal error");
		return;
	}
	session_answer(app, rq, rs, uid, fresh, user_json);
	return;
fail:
	PQclear(res);
	db_rollback(&app->db);
}

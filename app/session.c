/*
 * session: the dual-token session.  A short-lived JWT access token, and a
 * rotating refresh token of 256 random bits of which only the SHA-256 is
 * stored (PostgreSQL, so a Redis restart logs nobody out).
 *
 * Rotation (RFC 9700 4.14): a refresh token is used once.  Its successor
 * is kept on its row, sealed under a key derived from the token itself,
 * so that a retry whose answer was lost gets the very same successor back
 * within refresh_grace seconds, and the session never forks.  Any other
 * use of a used token — after the grace period, or once its successor has
 * been used or revoked — is reuse: the whole family is revoked, and with
 * it every access token issued to it.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "data.h"
#include "crypto.h"
#include "log.h"
#include "util.h"

#define REFRESH_BYTES	32
#define REFRESH_B64	43	/* characters of REFRESH_BYTES in base64url */
#define FAMILY_BYTES	12	/* after the time: 28 characters in all */
_Static_assert(CRYPTO_TIMED_PREFIX + 4 * FAMILY_BYTES / 3 + 4 <=
    TOKEN_FAM_MAX, "a family fits the access token's fam claim");
#define REFRESH_MAX	128	/* characters of a presented refresh token */
#define REFRESH_COOKIE	"refresh_token"
/* Sent only where it is needed: refreshing. */
#define COOKIE_PATH	"/api/v1/user/refresh"
#define COOKIE_ATTRS	"HttpOnly; Secure; SameSite=Strict"
/* Where versions before 0.2 set it, cleared on logout too. */
#define COOKIE_OLD_PATH	"/api/v1/user"
#define SEAL_LABEL	"wxapp refresh successor"

/*
 * What the database knows of a token, in the arena: hex(SHA-256(token)),
 * after the token's creation time when it has one (session_mint's do), so
 * that the unique index takes new tokens at its right edge and a login
 * does not read a random page of it from disk.  A token of the older
 * format (43 characters, no time) keeps the bare hash it was stored under.
 */
const char *
session_hash(struct arena *a, const char *token)
{
	unsigned char	 h[32];
	size_t		 n = strlen(token), pre = 0;
	char		*key = arena_alloc(a, CRYPTO_TIMED_PREFIX + 65);

	if (n == CRYPTO_TIMED_PREFIX + REFRESH_B64 &&
	    strspn(token, "0123456789abcdef") >= CRYPTO_TIMED_PREFIX) {
		pre = CRYPTO_TIMED_PREFIX;
		memcpy(key, token, pre);
	}
	crypto_sha256(token, n, h);
	crypto_hex(h, sizeof(h), key + pre);
	return key;
}

/* The key that seals the successor of token: only its holder has it. */
static void
seal_key(const char *token, unsigned char key[32])
{
	char	buf[sizeof(SEAL_LABEL) + REFRESH_MAX + 1];
	size_t	n = strlen(token);

	memcpy(buf, SEAL_LABEL, sizeof(SEAL_LABEL));
	memcpy(buf + sizeof(SEAL_LABEL), token, n);
	crypto_sha256(buf, sizeof(SEAL_LABEL) + n, key);
}

/* successor sealed under a key of token, as base64url; NULL on failure. */
static const char *
seal(struct arena *a, const char *token, const char *successor)
{
	unsigned char	 key[32], *box;
	size_t		 n = strlen(successor);
	char		*out;

	seal_key(token, key);
	box = arena_alloc(a, n + CRYPTO_SEAL_OVERHEAD);
	out = arena_alloc(a, (n + CRYPTO_SEAL_OVERHEAD + 2) / 3 * 4 + 1);
	if (crypto_seal(key, successor, n, box) == -1)
		return NULL;
	crypto_b64url_encode(box, n + CRYPTO_SEAL_OVERHEAD, out);
	return out;
}

/* The successor that seal made; NULL when it does not open. */
static const char *
unseal(struct arena *a, const char *token, const char *sealed)
{
	unsigned char	 key[32], *box, *plain;
	size_t		 n = strlen(sealed), boxlen, len;

	seal_key(token, key);
	box = arena_alloc(a, n / 4 * 3 + 3);
	if (crypto_b64url_decode(sealed, n, box, &boxlen) == -1 ||
	    boxlen <= CRYPTO_SEAL_OVERHEAD)
		return NULL;
	plain = arena_alloc(a, boxlen - CRYPTO_SEAL_OVERHEAD + 1);
	if (crypto_open(key, box, boxlen, plain, &len) == -1)
		return NULL;
	plain[len] = '\0';
	return (const char *)plain;
}

int
session_mint(struct req *rq, struct resp *rs, const char **family,
    const char **token, const char **hash)
{
	char		*tok = arena_alloc(rq->a, CRYPTO_TIMED_PREFIX +
	    4 * REFRESH_BYTES / 3 + 4), *fam;

	/* Both sort by time: see session_hash. */
	if (crypto_random_timed(REFRESH_BYTES, tok) == -1) {
		log_error("session: no randomness");
		resp_error(rs, API_INTERNAL, "internal error");
		return -1;
	}
	if (*family == NULL) {
		fam = arena_alloc(rq->a, TOKEN_FAM_MAX);
		if (crypto_random_timed(FAMILY_BYTES, fam) == -1) {
			log_error("session: no randomness");
			resp_error(rs, API_INTERNAL, "internal error");
			return -1;
		}
		*family = fam;
	}
	*token = tok;
	*hash = session_hash(rq->a, tok);
	return 0;
}

int
session_refresh_new(struct app *app, struct req *rq, struct resp *rs,
    const char *user_id, const char **family, const char **token,
    const char **row_id)
{
	const char	*params[4], *tok, *hash;
	PGresult	*res;
	enum db_status	 st;

	if (session_mint(rq, rs, family, &tok, &hash) == -1)
		return -1;
	params[0] = user_id;
	params[1] = *family;
	params[2] = hash;
	params[3] = arena_printf(rq->a, "%lld", app->cfg.refresh_token_ttl);
	if ((st = db_exec(&app->db, STMT_RT_INSERT, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "session: refresh token");
		return -1;
	}
	*row_id = arena_strdup(rq->a, PQgetvalue(res, 0, RT_ID));
	PQclear(res);
	*token = tok;
	return 0;
}

const char *
session_user_json(struct arena *a, PGresult *res)
{
	struct buf	b;

	buf_init(&b, a, 256);
	data_user_full_json(&b, res, 0);
	return buf_cstr(&b);
}

int
session_answer(struct app *app, struct req *rq, struct resp *rs,
    PGresult *user, const char *family, const char *refresh)
{
	struct token_claims	 cl;
	const char		*access, *errstr;
	struct buf		*b;
	size_t			 n = strlen(family);

	memset(&cl, 0, sizeof(cl));
	if (util_strtonum(PQgetvalue(user, 0, UC_ID), 1, LLONG_MAX,
	    &cl.user_id, &errstr) == -1 ||
	    util_strtonum(PQgetvalue(user, 0, UC_GEN), 0, LLONG_MAX, &cl.gen,
	    &errstr) == -1 || n >= sizeof(cl.fam)) {
		log_error("session: user row unreadable");
		resp_error(rs, API_INTERNAL, "internal error");
		return -1;
	}
	memcpy(cl.fam, family, n + 1);
	if (token_issue(&app->tok, app->cfg.access_token_ttl, rq->a, &access,
	    &cl) == -1) {
		log_error("session: cannot issue an access token");
		resp_error(rs, API_INTERNAL, "internal error");
		return -1;
	}
	b = resp_begin(rs, 200);
	buf_printf(b, "{\"access_token\":\"%s\",\"token_type\":\"Bearer\","
	    "\"expires_in\":%lld,\"refresh_token\":\"%s\","
	    "\"refresh_expires_in\":%lld,\"user\":%s}", access,
	    app->cfg.access_token_ttl, refresh, app->cfg.refresh_token_ttl,
	    session_user_json(rq->a, user));
	resp_end(rs, "ok");
	resp_header(rs, "Set-Cookie", REFRESH_COOKIE "=%s; Max-Age=%lld; "
	    "Path=" COOKIE_PATH "; " COOKIE_ATTRS, refresh,
	    app->cfg.refresh_token_ttl);
	resp_header_str(rs, "Cache-Control", "no-store");
	return 0;
}

void
session_clear_cookie(struct resp *rs)
{
	resp_header_str(rs, "Set-Cookie", REFRESH_COOKIE "=; Max-Age=0; "
	    "Path=" COOKIE_PATH "; " COOKIE_ATTRS);
	resp_header_str(rs, "Set-Cookie", REFRESH_COOKIE "=; Max-Age=0; "
	    "Path=" COOKIE_OLD_PATH "; " COOKIE_ATTRS);
}

/* The refresh token of a request: JSON field refresh_token, else cookie. */
static int
session_presented(struct req *rq, struct resp *rs, const char **token)
{
	static const char *const fields[] = { "refresh_token", NULL };
	struct json_object	*body;

	*token = NULL;
	if (rq->body_len > 0) {
		if (req_json_body(rq, rs, &body) == -1 ||
		    req_json_only(rs, body, fields) == -1 ||
		    req_json_opt_string(rs, body, "refresh_token", token) == -1)
			return -1;
	}
	if (*token == NULL)
		*token = req_cookie(rq, REFRESH_COOKIE);
	if (*token == NULL) {
		resp_error(rs, API_VALIDATION, "field `refresh_token` is missing "
		    "(send it in the body or the refresh_token cookie)");
		return -1;
	}
	if (strlen(*token) == 0 || strlen(*token) > REFRESH_MAX) {
		resp_error(rs, API_VALIDATION, "field `refresh_token` must be 1 "
		    "to %d characters", REFRESH_MAX);
		return -1;
	}
	return 0;
}

/* Revoke the family and answer 401: a used token came back (RFC 9700). */
static void
session_reuse(struct app *app, struct resp *rs, const char *family,
    const char *user_id)
{
	const char	*params[1] = { family }, *errstr;
	PGresult	*res = NULL;
	enum db_status	 st;
	long long	 uid;

	if ((st = db_exec(&app->db, STMT_RT_REVOKE_FAMILY, params, &res)) !=
	    DB_OK || (st = db_commit(&app->db)) != DB_OK) {
		PQclear(res);
		db_rollback(&app->db);
		app_db_error(app, rs, st, "refresh: revoke family");
		return;
	}
	PQclear(res);
	if (util_strtonum(user_id, 1, LLONG_MAX, &uid, &errstr) == 0)
		(void)auth_changed(&app->cache, app->pool->changes, uid);
	log_warn("refresh: reuse of a used refresh token by user %s: "
	    "family revoked", user_id);
	resp_error(rs, API_REFRESH_REUSED,
	    "refresh token reuse detected: the session is revoked; log in again");
}

/*
 * A used token within the grace period whose successor is unspent: the
 * successor, or NULL.
 */
static const char *
session_retry(struct req *rq, PGresult *res, const char *token)
{
	if (*PQgetvalue(res, 0, RT_IN_GRACE) != 't' ||
	    PQgetisnull(res, 0, RT_SUCCESSOR) ||
	    *PQgetvalue(res, 0, RT_SUCCESSOR_SPENT) == 't')
		return NULL;
	return unseal(rq->a, token, PQgetvalue(res, 0, RT_SUCCESSOR));
}

/* POST /api/v1/user/refresh: rotate the refresh token in one transaction. */
void
h_refresh(struct app *app, struct req *rq, struct resp *rs)
{
	const char	*tok, *params[3], *user_id, *family, *old_id, *new_id;
	const char	*fresh, *sealed;
	PGresult	*res = NULL;
	enum db_status	 st;
	int		 retry = 0;

	if (session_presented(rq, rs, &tok) == -1)
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
	old_id = arena_strdup(rq->a, PQgetvalue(res, 0, RT_ID));
	user_id = arena_strdup(rq->a, PQgetvalue(res, 0, RT_USER));
	family = arena_strdup(rq->a, PQgetvalue(res, 0, RT_FAMILY));
	if (*PQgetvalue(res, 0, RT_REVOKED) == 't') {
		resp_error(rs, API_REFRESH_INVALID,
		    "refresh token revoked; log in again");
		goto fail;
	}
	if (*PQgetvalue(res, 0, RT_EXPIRED) == 't') {
		resp_error(rs, API_REFRESH_INVALID,
		    "refresh token expired; log in again");
		goto fail;
	}
	if (*PQgetvalue(res, 0, RT_USED) == 't') {
		/* A retry gets the same successor; anything else is reuse. */
		if ((fresh = session_retry(rq, res, tok)) == NULL) {
			PQclear(res);
			session_reuse(app, rs, family, user_id);
			return;
		}
		retry = 1;
	}
	PQclear(res);
	res = NULL;
	if (!retry) {
		if (session_refresh_new(app, rq, rs, user_id, &family, &fresh,
		    &new_id) == -1)
			goto fail;
		if ((sealed = seal(rq->a, tok, fresh)) == NULL) {
			log_error("refresh: cannot seal the successor");
			resp_error(rs, API_INTERNAL, "internal error");
			goto fail;
		}
		params[0] = old_id;
		params[1] = new_id;
		params[2] = sealed;
		if ((st = db_exec(&app->db, STMT_RT_MARK_USED, params,
		    &res)) != DB_OK) {
			app_db_error(app, rs, st, "refresh: mark used");
			goto fail;
		}
		PQclear(res);
	}
	params[0] = user_id;
	if ((st = db_exec(&app->db, STMT_USER_GET, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "refresh: user");
		goto fail;
	}
	if (PQntuples(res) == 0) {
		resp_error(rs, API_REFRESH_INVALID, "user is gone; log in again");
		goto fail;
	}
	if ((st = db_commit(&app->db)) != DB_OK) {
		app_db_error(app, rs, st, "refresh: commit");
		goto fail;
	}
	session_answer(app, rq, rs, res, family, fresh);
	PQclear(res);
	return;
fail:
	PQclear(res);
	db_rollback(&app->db);
}

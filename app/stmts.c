/*
 * stmts: every SQL statement the responder runs, declared once.  Each is
 * prepared on every (re)connect; handlers run them by index.
 */
#include "app.h"

/* The user as the API shows it. */
#define USER_COLS \
	"id, name, phone, to_char(created_at AT TIME ZONE 'UTC', " \
	"'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

const struct db_stmt app_stmts[STMT_COUNT] = {
	[STMT_PING] = { "ping", "SELECT 1", 0 },
	[STMT_USER_UPSERT_OPENID] = { "user_upsert_openid",
	    "INSERT INTO users (openid, unionid, last_login_at)"
	    " VALUES ($1, NULLIF($2, ''), now())"
	    " ON CONFLICT (openid) DO UPDATE"
	    " SET unionid = COALESCE(EXCLUDED.unionid, users.unionid),"
	    " last_login_at = now(), updated_at = now()"
	    " RETURNING " USER_COLS, 2 },
	[STMT_USER_GET] = { "user_get",
	    "SELECT " USER_COLS " FROM users WHERE id = $1", 1 },
	[STMT_USER_SET_PHONE] = { "user_set_phone",
	    "UPDATE users SET phone = $2, updated_at = now() WHERE id = $1"
	    " RETURNING " USER_COLS, 2 },
	[STMT_RT_INSERT] = { "rt_insert",
	    "INSERT INTO refresh_tokens (user_id, family, token_hash, expires_at)"
	    " VALUES ($1, $2, $3, now() + make_interval(secs => $4))"
	    " RETURNING id", 4 },
	[STMT_RT_LOOKUP] = { "rt_lookup",
	    "SELECT id, user_id, family, expires_at <= now(),"
	    " revoked_at IS NOT NULL, used_at IS NOT NULL,"
	    " COALESCE(used_at > now() - make_interval(secs => $2), false)"
	    " FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE", 2 },
	[STMT_RT_MARK_USED] = { "rt_mark_used",
	    "UPDATE refresh_tokens SET used_at = COALESCE(used_at, now()),"
	    " replaced_by = $2 WHERE id = $1", 2 },
	[STMT_RT_REVOKE_FAMILY] = { "rt_revoke_family",
	    "UPDATE refresh_tokens SET revoked_at = now()"
	    " WHERE family = $1 AND revoked_at IS NULL", 1 },
	[STMT_RT_REVOKE_USER] = { "rt_revoke_user",
	    "UPDATE refresh_tokens SET revoked_at = now()"
	    " WHERE user_id = $1 AND revoked_at IS NULL", 1 },
	[STMT_RT_FAMILY_OF] = { "rt_family_of",
	    "SELECT family FROM refresh_tokens"
	    " WHERE token_hash = $1 AND user_id = $2", 2 },
};

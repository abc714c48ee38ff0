/*
 * stmts: every SQL statement the responder runs, declared once.  Each is
 * prepared on every (re)connect; handlers run them by index.
 */
#include "app.h"

/* A timestamp as the API shows it: RFC 3339 UTC. */
#define TS(col) \
	"to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
/* The user as the API shows it (see data_user_json). */
#define USER_COLS \
	"id, name, email, phone, " TS("created_at") ", " TS("updated_at") \
	", floor(extract(epoch FROM updated_at))::bigint"
/* An item (see data_item_json). */
#define ITEM_COLS \
	"id, title, summary, cover_url, category, status, " TS("created_at") \
	", " TS("updated_at") ", floor(extract(epoch FROM updated_at))::bigint"
#define PUBLISHED	"status = 'published'"

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
	[STMT_USERS_PAGE] = { "users_page",
	    "SELECT " USER_COLS " FROM users ORDER BY id LIMIT $1 OFFSET $2", 2 },
	[STMT_USERS_AFTER] = { "users_after",
	    "SELECT " USER_COLS " FROM users WHERE id > $2 ORDER BY id LIMIT $1",
	    2 },
	[STMT_USERS_COUNT] = { "users_count", "SELECT count(*) FROM users", 0 },
	[STMT_USER_CREATE] = { "user_create",
	    "INSERT INTO users (name, email) VALUES ($1, $2)"
	    " RETURNING " USER_COLS, 2 },
	[STMT_USER_PATCH] = { "user_patch",
	    "UPDATE users SET name = COALESCE($2, name),"
	    " email = COALESCE($3, email), updated_at = now()"
	    " WHERE id = $1 RETURNING " USER_COLS, 3 },
	[STMT_USER_DELETE] = { "user_delete",
	    "DELETE FROM users WHERE id = $1", 1 },
	[STMT_PROFILE_GET] = { "profile_get",
	    "SELECT city, gender, avatar_url, bio,"
	    " floor(extract(epoch FROM updated_at))::bigint"
	    " FROM user_profiles WHERE user_id = $1", 1 },
	[STMT_ITEMS_PAGE] = { "items_page",
	    "SELECT " ITEM_COLS " FROM items WHERE " PUBLISHED
	    " ORDER BY id DESC LIMIT $1 OFFSET $2", 2 },
	[STMT_ITEMS_PAGE_CAT] = { "items_page_cat",
	    "SELECT " ITEM_COLS " FROM items WHERE " PUBLISHED
	    " AND category = $3 ORDER BY id DESC LIMIT $1 OFFSET $2", 3 },
	[STMT_ITEMS_AFTER] = { "items_after",
	    "SELECT " ITEM_COLS " FROM items WHERE " PUBLISHED
	    " AND id < $2 ORDER BY id DESC LIMIT $1", 2 },
	[STMT_ITEMS_AFTER_CAT] = { "items_after_cat",
	    "SELECT " ITEM_COLS " FROM items WHERE " PUBLISHED
	    " AND id < $2 AND category = $3 ORDER BY id DESC LIMIT $1", 3 },
	[STMT_ITEMS_COUNT] = { "items_count",
	    "SELECT count(*) FROM items WHERE " PUBLISHED, 0 },
	[STMT_ITEMS_COUNT_CAT] = { "items_count_cat",
	    "SELECT count(*) FROM items WHERE " PUBLISHED " AND category = $1",
	    1 },
	[STMT_ITEM_GET] = { "item_get",
	    "SELECT " ITEM_COLS " FROM items WHERE id = $1", 1 },
	[STMT_ITEM_CREATE] = { "item_create",
	    "INSERT INTO items (title, summary, cover_url, category, status)"
	    " VALUES ($1, COALESCE($2, ''), COALESCE($3, ''), $4,"
	    " COALESCE($5, 'published')) RETURNING " ITEM_COLS, 5 },
	[STMT_ITEM_PATCH] = { "item_patch",
	    "UPDATE items SET title = COALESCE($2, title),"
	    " summary = COALESCE($3, summary),"
	    " cover_url = COALESCE($4, cover_url),"
	    " category = COALESCE($5, category),"
	    " status = COALESCE($6, status), updated_at = now()"
	    " WHERE id = $1 RETURNING " ITEM_COLS, 6 },
	[STMT_ITEM_DELETE] = { "item_delete",
	    "DELETE FROM items WHERE id = $1", 1 },
	[STMT_USER_BY_OPENID] = { "user_by_openid",
	    "SELECT " USER_COLS " FROM users WHERE openid = $1", 1 },
	[STMT_RT_LIVE_FAMILIES] = { "rt_live_families",
	    "SELECT count(DISTINCT family) FROM refresh_tokens WHERE user_id = $1"
	    " AND revoked_at IS NULL AND used_at IS NULL AND expires_at > now()",
	    1 },
	[STMT_CATEGORIES] = { "categories",
	    "SELECT DISTINCT category FROM items WHERE " PUBLISHED
	    " ORDER BY 1", 0 },
};

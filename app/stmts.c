/*
 * stmts: every SQL statement the responder runs, declared once.  Each is
 * prepared on every (re)connect; handlers run them by index.
 */
#include "app.h"

/* A timestamp as the API shows it: RFC 3339 UTC. */
#define TS(col) \
	"to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
/*
 * A user: every column enum user_col names, in its order.  The avatar is
 * the profile's (users without one have none).
 */
#define USER_COLS \
	"id, name, email, phone, (SELECT avatar_url FROM user_profiles p" \
	" WHERE p.user_id = users.id), role, " TS("created_at") ", " \
	TS("updated_at") ", floor(extract(epoch FROM updated_at))::bigint," \
	" token_gen"
/* An item: every column enum item_col names, in its order. */
#define ITEM_COLS \
	"id, title, summary, cover_url, category, status, owner_id, " \
	TS("created_at") ", " TS("updated_at") \
	", floor(extract(epoch FROM updated_at))::bigint"
#define PUBLISHED	"status = 'published'"
/*
 * The filters of a list that is not the public one: an owner, a status
 * and a category, each NULL for any.
 */
#define ANY_FILTER(o, s, c) \
	"($" #o "::bigint IS NULL OR owner_id = $" #o ") AND" \
	" ($" #s "::text IS NULL OR status = $" #s ") AND" \
	" ($" #c "::text IS NULL OR category = $" #c ")"
/* $n is the caller when it may change only what it owns, NULL for an admin. */
#define OWNED_BY(n)	"($" #n "::bigint IS NULL OR owner_id = $" #n ")"

_Static_assert(UC_NCOLS == 10 && IC_NCOLS == 10,
    "USER_COLS and ITEM_COLS have the columns their enums name");

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
	/* enum rt_col: the token, and whether its successor was used. */
	[STMT_RT_LOOKUP] = { "rt_lookup",
	    "SELECT r.id, r.user_id, r.family, r.expires_at <= now(),"
	    " r.revoked_at IS NOT NULL, r.used_at IS NOT NULL,"
	    " COALESCE(r.used_at > now() - make_interval(secs => $2), false),"
	    " r.successor, s.used_at IS NOT NULL OR s.revoked_at IS NOT NULL"
	    " FROM refresh_tokens r"
	    " LEFT JOIN refresh_tokens s ON s.id = r.replaced_by"
	    " WHERE r.token_hash = $1 FOR UPDATE OF r", 2 },
	[STMT_RT_MARK_USED] = { "rt_mark_used",
	    "UPDATE refresh_tokens SET used_at = now(), replaced_by = $2,"
	    " successor = $3 WHERE id = $1 AND used_at IS NULL", 3 },
	[STMT_RT_REVOKE_FAMILY] = { "rt_revoke_family",
	    "UPDATE refresh_tokens SET revoked_at = now()"
	    " WHERE family = $1 AND revoked_at IS NULL", 1 },
	[STMT_RT_REVOKE_USER] = { "rt_revoke_user",
	    "UPDATE refresh_tokens SET revoked_at = now()"
	    " WHERE user_id = $1 AND revoked_at IS NULL", 1 },
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
	/* Cascades: the profile, the refresh tokens, the items owned. */
	[STMT_USER_DELETE] = { "user_delete",
	    "DELETE FROM users WHERE id = $1", 1 },
	[STMT_USER_SET_ROLE] = { "user_set_role",
	    "UPDATE users SET role = $2, updated_at = now() WHERE id = $1"
	    " RETURNING " USER_COLS, 2 },
	/* Every access token issued before is refused from now on. */
	[STMT_USER_NEXT_GEN] = { "user_next_gen",
	    "UPDATE users SET token_gen = token_gen + 1 WHERE id = $1"
	    " RETURNING token_gen", 1 },
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
	[STMT_ITEMS_ANY_PAGE] = { "items_any_page",
	    "SELECT " ITEM_COLS " FROM items WHERE " ANY_FILTER(3, 4, 5)
	    " ORDER BY id DESC LIMIT $1 OFFSET $2", 5 },
	[STMT_ITEMS_ANY_AFTER] = { "items_any_after",
	    "SELECT " ITEM_COLS " FROM items WHERE id < $2 AND "
	    ANY_FILTER(3, 4, 5) " ORDER BY id DESC LIMIT $1", 5 },
	[STMT_ITEMS_ANY_COUNT] = { "items_any_count",
	    "SELECT count(*) FROM items WHERE " ANY_FILTER(1, 2, 3), 3 },
	[STMT_ITEM_GET] = { "item_get",
	    "SELECT " ITEM_COLS " FROM items WHERE id = $1", 1 },
	[STMT_ITEM_CREATE] = { "item_create",
	    "INSERT INTO items (title, summary, cover_url, category, status,"
	    " owner_id) VALUES ($1, COALESCE($2, ''), COALESCE($3, ''), $4,"
	    " COALESCE($5, 'published'), $6) RETURNING " ITEM_COLS, 6 },
	[STMT_ITEM_PATCH] = { "item_patch",
	    "UPDATE items SET title = COALESCE($2, title),"
	    " summary = COALESCE($3, summary),"
	    " cover_url = COALESCE($4, cover_url),"
	    " category = COALESCE($5, category),"
	    " status = COALESCE($6, status), updated_at = now()"
	    " WHERE id = $1 AND " OWNED_BY(7) " RETURNING " ITEM_COLS, 7 },
	[STMT_ITEM_DELETE] = { "item_delete",
	    "DELETE FROM items WHERE id = $1 AND " OWNED_BY(2), 2 },
	[STMT_USER_BY_OPENID] = { "user_by_openid",
	    "SELECT " USER_COLS " FROM users WHERE openid = $1", 1 },
	[STMT_RT_LIVE_FAMILIES] = { "rt_live_families",
	    "SELECT count(DISTINCT family) FROM refresh_tokens WHERE user_id = $1"
	    " AND revoked_at IS NULL AND used_at IS NULL AND expires_at > now()",
	    1 },
	/*
	 * What a session's access token is checked against (app/auth.c):
	 * no row when the user is gone.
	 */
	[STMT_AUTH_STATE] = { "auth_state",
	    "SELECT role = 'admin', token_gen, EXISTS (SELECT 1 FROM"
	    " refresh_tokens WHERE family = $2 AND revoked_at IS NOT NULL)"
	    " FROM users WHERE id = $1", 2 },
	/*
	 * A key claimed, or an expired record of it taken over: one row.
	 * No row: its live record stands (after waiting for a transaction
	 * that holds it).
	 */
	[STMT_IDEM_CLAIM] = { "idem_claim",
	    "INSERT INTO idempotency (scope, key, request) VALUES ($1, $2, $3)"
	    " ON CONFLICT (scope, key) DO UPDATE SET request = EXCLUDED.request,"
	    " status = NULL, headers = NULL, body = NULL, created_at = now()"
	    " WHERE idempotency.created_at < now() - interval '24 hours'"
	    " RETURNING 1", 3 },
	[STMT_IDEM_GET] = { "idem_get",
	    "SELECT request, status, headers, body FROM idempotency"
	    " WHERE scope = $1 AND key = $2", 2 },
	[STMT_IDEM_STORE] = { "idem_store",
	    "UPDATE idempotency SET status = $3, headers = $4, body = $5"
	    " WHERE scope = $1 AND key = $2", 5 },
	[STMT_IDEM_PURGE] = { "idem_purge",
	    "DELETE FROM idempotency WHERE ctid = ANY (ARRAY(SELECT ctid"
	    " FROM idempotency WHERE created_at < now() - interval '24 hours'"
	    " LIMIT 16))", 0 },
	[STMT_CATEGORIES] = { "categories",
	    "SELECT DISTINCT category FROM items WHERE " PUBLISHED
	    " ORDER BY 1", 0 },
};

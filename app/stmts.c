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
 * A row m of moderation keeps item it from being published: it waits, or
 * it rejected what the item still holds.
 */
#define MOD_BLOCKS(m, it) \
	"(" m ".status = 'pending' OR (" m ".status = 'rejected' AND " m \
	".content = CASE " m ".field WHEN 'title' THEN " it ".title" \
	" WHEN 'summary' THEN " it ".summary ELSE " it ".cover_url END))"
/* A row of moderation: every column enum mod_col names, in its order. */
#define MOD_COLS \
	"id, item_id, user_id, author_id, field, content, reason, trace_id," \
	" publish, status, " TS("created_at")
/*
 * The filters of a list that is not the public one: an owner, a status
 * and a category, each NULL for any.
 */
#define ANY_FILTER(o, s, c) \
	"($" #o "::bigint IS NULL OR owner_id = $" #o ") AND" \
	" ($" #s "::text IS NULL OR status = $" #s ") AND" \
	" ($" #c "::text IS NULL OR category = $" #c ")"
/* Items that user $n favorited and can see. */
#define FAVORED_BY(n) \
	"id IN (SELECT item_id FROM favorites WHERE user_id = $" #n ") AND (" \
	PUBLISHED " OR owner_id = $" #n ")"
/* $n is the caller when it may change only what it owns, NULL for an admin. */
#define OWNED_BY(n)	"($" #n "::bigint IS NULL OR owner_id = $" #n ")"

_Static_assert(UC_NCOLS == 10 && IC_NCOLS == 10,
    "USER_COLS and ITEM_COLS have the columns their enums name");

const struct db_stmt app_stmts[STMT_COUNT] = {
	[STMT_PING] = { .name = "ping", .sql = "SELECT 1", .nparams = 0 },
	[STMT_USER_UPSERT_OPENID] = { .name = "user_upsert_openid",
	    .sql = "INSERT INTO users (openid, unionid, last_login_at)"
	    " VALUES ($1, NULLIF($2, ''), now())"
	    " ON CONFLICT (openid) DO UPDATE"
	    " SET unionid = COALESCE(EXCLUDED.unionid, users.unionid),"
	    " last_login_at = now(), updated_at = now()"
	    " RETURNING " USER_COLS, .nparams = 2 },
	[STMT_USER_GET] = { .name = "user_get",
	    .sql = "SELECT " USER_COLS " FROM users WHERE id = $1", .nparams = 1 },
	[STMT_USER_SET_PHONE] = { .name = "user_set_phone",
	    .sql = "UPDATE users SET phone = $2, updated_at = now() WHERE id = $1"
	    " RETURNING " USER_COLS, .nparams = 2 },
	/*
	 * Logins in one round trip and one commit, as many as wait together
	 * (lib/dbbatch): each user upserted by openid, and its new refresh
	 * token.  $1..$5: openid, unionid ('' for none), family, token hash,
	 * ttl, one element a login.  Rows are locked in openid order, so that
	 * two batches cannot deadlock.  A row a login: USER_COLS, openid, the
	 * login's ordinal.
	 */
	[STMT_LOGIN] = { .name = "login",
	    .sql = "WITH v AS (SELECT * FROM unnest($1::text[], $2::text[],"
	    " $3::text[], $4::text[], $5::text[]) WITH ORDINALITY"
	    " AS v(openid, unionid, family, hash, ttl, ord)),"
	    " u AS (INSERT INTO users (openid, unionid, last_login_at)"
	    " SELECT openid, NULLIF(unionid, ''), now() FROM v ORDER BY openid"
	    " ON CONFLICT (openid) DO UPDATE"
	    " SET unionid = COALESCE(EXCLUDED.unionid, users.unionid),"
	    " last_login_at = now(), updated_at = now()"
	    " RETURNING " USER_COLS ", openid),"
	    " r AS (INSERT INTO refresh_tokens"
	    " (user_id, family, token_hash, expires_at)"
	    " SELECT u.id, v.family, v.hash,"
	    " now() + make_interval(secs => v.ttl::double precision)"
	    " FROM v JOIN u ON u.openid = v.openid RETURNING token_hash)"
	    " SELECT u.*, v.ord FROM v JOIN u ON u.openid = v.openid"
	    " JOIN r ON r.token_hash = v.hash", .nparams = LOGIN_NPARAMS },
	[STMT_RT_INSERT] = { .name = "rt_insert",
	    .sql = "INSERT INTO refresh_tokens"
	    " (user_id, family, token_hash, expires_at)"
	    " VALUES ($1, $2, $3, now() + make_interval(secs => $4))"
	    " RETURNING id", .nparams = 4 },
	/* enum rt_col: the token, and whether its successor was used. */
	[STMT_RT_LOOKUP] = { .name = "rt_lookup",
	    .sql = "SELECT r.id, r.user_id, r.family, r.expires_at <= now(),"
	    " r.revoked_at IS NOT NULL, r.used_at IS NOT NULL,"
	    " COALESCE(r.used_at > now() - make_interval(secs => $2), false),"
	    " r.successor, s.used_at IS NOT NULL OR s.revoked_at IS NOT NULL"
	    " FROM refresh_tokens r"
	    " LEFT JOIN refresh_tokens s ON s.id = r.replaced_by"
	    " WHERE r.token_hash = $1 FOR UPDATE OF r", .nparams = 2 },
	[STMT_RT_MARK_USED] = { .name = "rt_mark_used",
	    .sql = "UPDATE refresh_tokens SET used_at = now(), replaced_by = $2,"
	    " successor = $3 WHERE id = $1 AND used_at IS NULL", .nparams = 3 },
	[STMT_RT_REVOKE_FAMILY] = { .name = "rt_revoke_family",
	    .sql = "UPDATE refresh_tokens SET revoked_at = now()"
	    " WHERE family = $1 AND revoked_at IS NULL", .nparams = 1 },
	[STMT_RT_REVOKE_USER] = { .name = "rt_revoke_user",
	    .sql = "UPDATE refresh_tokens SET revoked_at = now()"
	    " WHERE user_id = $1 AND revoked_at IS NULL", .nparams = 1 },
	/*
	 * Up to $1 expired refresh tokens deleted (wxapp-worker), once no
	 * access token of theirs can be alive ($2: access_token_ttl): a
	 * revoked family's rows are what refuses its access tokens
	 * (STMT_AUTH_STATE).  An expired token is refused before reuse is
	 * looked for, so that nothing else needs them.
	 */
	[STMT_RT_PRUNE] = { .name = "rt_prune",
	    .sql = "DELETE FROM refresh_tokens WHERE id = ANY (ARRAY("
	    "SELECT id FROM refresh_tokens"
	    " WHERE expires_at < now() - make_interval(secs => $2)"
	    " ORDER BY expires_at LIMIT $1))", .nparams = 2 },
	[STMT_USERS_PAGE] = { .name = "users_page",
	    .sql = "SELECT " USER_COLS " FROM users ORDER BY id"
	    " LIMIT $1 OFFSET $2", .nparams = 2 },
	[STMT_USERS_AFTER] = { .name = "users_after",
	    .sql = "SELECT " USER_COLS " FROM users WHERE id > $2"
	    " ORDER BY id LIMIT $1",
	    .nparams = 2 },
	[STMT_USERS_COUNT] = { .name = "users_count",
	    .sql = "SELECT count(*) FROM users", .nparams = 0 },
	[STMT_USER_CREATE] = { .name = "user_create",
	    .sql = "INSERT INTO users (name, email) VALUES ($1, $2)"
	    " RETURNING " USER_COLS, .nparams = 2 },
	[STMT_USER_PATCH] = { .name = "user_patch",
	    .sql = "UPDATE users SET name = COALESCE($2, name),"
	    " email = COALESCE($3, email), updated_at = now()"
	    " WHERE id = $1 RETURNING " USER_COLS, .nparams = 3 },
	/* Cascades: the profile, the refresh tokens, the items owned. */
	/*
	 * The account's kept answers go with it: its own (scope u:<id>) and,
	 * by the foreign key, those that showed it to an administrator.
	 */
	[STMT_USER_DELETE] = { .name = "user_delete",
	    .sql = "WITH gone AS (DELETE FROM users WHERE id = $1 RETURNING id),"
	    " kept AS (DELETE FROM idempotency WHERE scope = 'u:' || $1::text"
	    " AND EXISTS (SELECT 1 FROM gone))"
	    " SELECT id FROM gone", .nparams = 1 },
	[STMT_USER_SET_ROLE] = { .name = "user_set_role",
	    .sql = "UPDATE users SET role = $2, updated_at = now() WHERE id = $1"
	    " RETURNING " USER_COLS, .nparams = 2 },
	/* Every access token issued before is refused from now on. */
	[STMT_USER_NEXT_GEN] = { .name = "user_next_gen",
	    .sql = "UPDATE users SET token_gen = token_gen + 1 WHERE id = $1"
	    " RETURNING token_gen", .nparams = 1 },
	[STMT_PROFILE_GET] = { .name = "profile_get",
	    .sql = "SELECT city, gender, avatar_url, bio,"
	    " floor(extract(epoch FROM updated_at))::bigint"
	    " FROM user_profiles WHERE user_id = $1", .nparams = 1 },
	[STMT_ITEMS_PAGE] = { .name = "items_page",
	    .sql = "SELECT " ITEM_COLS " FROM items WHERE " PUBLISHED
	    " ORDER BY id DESC LIMIT $1 OFFSET $2", .nparams = 2 },
	[STMT_ITEMS_PAGE_CAT] = { .name = "items_page_cat",
	    .sql = "SELECT " ITEM_COLS " FROM items WHERE " PUBLISHED
	    " AND category = $3 ORDER BY id DESC LIMIT $1 OFFSET $2", .nparams = 3 },
	[STMT_ITEMS_AFTER] = { .name = "items_after",
	    .sql = "SELECT " ITEM_COLS " FROM items WHERE " PUBLISHED
	    " AND id < $2 ORDER BY id DESC LIMIT $1", .nparams = 2 },
	[STMT_ITEMS_AFTER_CAT] = { .name = "items_after_cat",
	    .sql = "SELECT " ITEM_COLS " FROM items WHERE " PUBLISHED
	    " AND id < $2 AND category = $3 ORDER BY id DESC LIMIT $1", .nparams = 3 },
	[STMT_ITEMS_COUNT] = { .name = "items_count",
	    .sql = "SELECT count(*) FROM items WHERE " PUBLISHED, .nparams = 0 },
	[STMT_ITEMS_COUNT_CAT] = { .name = "items_count_cat",
	    .sql = "SELECT count(*) FROM items WHERE " PUBLISHED " AND category = $1",
	    .nparams = 1 },
	[STMT_ITEMS_ANY_PAGE] = { .name = "items_any_page",
	    .sql = "SELECT " ITEM_COLS " FROM items WHERE " ANY_FILTER(3, 4, 5)
	    " ORDER BY id DESC LIMIT $1 OFFSET $2", .nparams = 5 },
	[STMT_ITEMS_ANY_AFTER] = { .name = "items_any_after",
	    .sql = "SELECT " ITEM_COLS " FROM items WHERE id < $2 AND "
	    ANY_FILTER(3, 4, 5) " ORDER BY id DESC LIMIT $1", .nparams = 5 },
	[STMT_ITEMS_ANY_COUNT] = { .name = "items_any_count",
	    .sql = "SELECT count(*) FROM items WHERE " ANY_FILTER(1, 2, 3),
	    .nparams = 3 },
	[STMT_ITEM_GET] = { .name = "item_get",
	    .sql = "SELECT " ITEM_COLS " FROM items WHERE id = $1", .nparams = 1 },
	[STMT_ITEM_CREATE] = { .name = "item_create",
	    .sql = "INSERT INTO items (title, summary, cover_url, category, status,"
	    " owner_id) VALUES ($1, COALESCE($2, ''), COALESCE($3, ''), $4,"
	    " COALESCE($5, 'published'), $6) RETURNING " ITEM_COLS, .nparams = 6 },
	[STMT_ITEM_PATCH] = { .name = "item_patch",
	    .sql = "UPDATE items SET title = COALESCE($2, title),"
	    " summary = COALESCE($3, summary),"
	    " cover_url = COALESCE($4, cover_url),"
	    " category = COALESCE($5, category),"
	    " status = COALESCE($6, status), updated_at = now()"
	    " WHERE id = $1 AND " OWNED_BY(7) " RETURNING " ITEM_COLS, .nparams = 7 },
	[STMT_ITEM_DELETE] = { .name = "item_delete",
	    .sql = "DELETE FROM items WHERE id = $1 AND " OWNED_BY(2), .nparams = 2 },
	[STMT_USER_BY_OPENID] = { .name = "user_by_openid",
	    .sql = "SELECT " USER_COLS " FROM users WHERE openid = $1", .nparams = 1 },
	[STMT_RT_LIVE_FAMILIES] = { .name = "rt_live_families",
	    .sql = "SELECT count(DISTINCT family) FROM refresh_tokens"
	    " WHERE user_id = $1"
	    " AND revoked_at IS NULL AND used_at IS NULL AND expires_at > now()",
	    .nparams = 1 },
	/*
	 * What a session's access token is checked against (app/auth.c):
	 * no row when the user is gone.
	 */
	[STMT_AUTH_STATE] = { .name = "auth_state",
	    .sql = "SELECT role = 'admin', token_gen, EXISTS (SELECT 1 FROM"
	    " refresh_tokens WHERE family = $2 AND revoked_at IS NOT NULL)"
	    " FROM users WHERE id = $1", .nparams = 2 },
	/*
	 * A key claimed, or an expired record of it taken over: one row.
	 * No row: its live record stands (after waiting for a transaction
	 * that holds it).
	 */
	[STMT_IDEM_CLAIM] = { .name = "idem_claim",
	    .sql = "INSERT INTO idempotency (scope, key, request) VALUES ($1, $2, $3)"
	    " ON CONFLICT (scope, key) DO UPDATE SET request = EXCLUDED.request,"
	    " status = NULL, headers = NULL, body = NULL, created_at = now()"
	    " WHERE idempotency.created_at < now() - interval '24 hours'"
	    " RETURNING 1", .nparams = 3 },
	/* Its live record: one older than a day is the next claim's. */
	[STMT_IDEM_GET] = { .name = "idem_get",
	    .sql = "SELECT request, status, headers, body FROM idempotency"
	    " WHERE scope = $1 AND key = $2"
	    " AND created_at >= now() - interval '24 hours'", .nparams = 2 },
	/* $6: the user whose personal data the answer shows, or NULL. */
	[STMT_IDEM_STORE] = { .name = "idem_store",
	    .sql = "UPDATE idempotency SET status = $3, headers = $4, body = $5,"
	    " subject = $6 WHERE scope = $1 AND key = $2", .nparams = 6 },
	[STMT_IDEM_PURGE] = { .name = "idem_purge",
	    .sql = "DELETE FROM idempotency WHERE ctid = ANY (ARRAY(SELECT ctid"
	    " FROM idempotency WHERE created_at < now() - interval '24 hours'"
	    " LIMIT 16))", .nparams = 0 },
	/*
	 * Favorites: of an item the user can see (published, or its own);
	 * no row when it cannot.
	 */
	[STMT_FAV_ADD] = { .name = "fav_add",
	    .sql = "INSERT INTO favorites (user_id, item_id) SELECT $1, id"
	    " FROM items WHERE id = $2 AND (" PUBLISHED " OR owner_id = $1)"
	    " ON CONFLICT (user_id, item_id) DO UPDATE"
	    " SET created_at = favorites.created_at RETURNING item_id",
	    .nparams = 2 },
	[STMT_FAV_REMOVE] = { .name = "fav_remove",
	    .sql = "DELETE FROM favorites WHERE user_id = $1 AND item_id = $2",
	    .nparams = 2 },
	/* A user's favorite items it can still see, as data_build_list runs. */
	[STMT_FAV_PAGE] = { .name = "fav_page",
	    .sql = "SELECT " ITEM_COLS " FROM items WHERE " FAVORED_BY(3)
	    " ORDER BY id DESC LIMIT $1 OFFSET $2", .nparams = 3 },
	[STMT_FAV_AFTER] = { .name = "fav_after",
	    .sql = "SELECT " ITEM_COLS " FROM items WHERE id < $2 AND "
	    FAVORED_BY(3) " ORDER BY id DESC LIMIT $1", .nparams = 3 },
	[STMT_FAV_COUNT_MINE] = { .name = "fav_count_mine",
	    .sql = "SELECT count(*) FROM items WHERE " FAVORED_BY(1),
	    .nparams = 1 },
	/* enum fav_col: a published item's count; no row for others. */
	[STMT_FAV_OF_ITEM] = { .name = "fav_of_item",
	    .sql = "SELECT id, (SELECT count(*) FROM favorites"
	    " WHERE item_id = items.id),"
	    " floor(extract(epoch FROM updated_at))::bigint"
	    " FROM items WHERE id = $1 AND " PUBLISHED, .nparams = 1 },
	[STMT_USER_OPENID] = { .name = "user_openid",
	    .sql = "SELECT openid FROM users WHERE id = $1", .nparams = 1 },
	[STMT_MSG_LIMITS] = { .name = "msg_limits",
	    .sql = "SELECT (SELECT count(*) FROM messages WHERE openid = $1"
	    " AND created_at > now() - interval '1 hour'),"
	    " (SELECT count(*) FROM messages WHERE template_id = $2"
	    " AND created_at > now() - interval '1 hour')", .nparams = 2 },
	[STMT_MSG_CREATE] = { .name = "msg_create",
	    .sql = "INSERT INTO messages (job_id, sender_id, user_id, openid,"
	    " template_id) VALUES ($1, $2, $3, $4, $5)", .nparams = 5 },
	[STMT_MSG_DROP] = { .name = "msg_drop",
	    .sql = "DELETE FROM messages WHERE job_id = $1", .nparams = 1 },
	[STMT_MSG_GET] = { .name = "msg_get",
	    .sql = "SELECT job_id, sender_id, user_id, template_id, status,"
	    " attempts, msgid, errcode, error, " TS("created_at") ", "
	    TS("updated_at") " FROM messages WHERE job_id = $1",
	    .nparams = 1 },
	[STMT_MSG_SENDING] = { .name = "msg_sending",
	    .sql = "UPDATE messages SET status = 'sending',"
	    " attempts = attempts + 1, updated_at = now()"
	    " WHERE job_id = $1 AND status <> 'sent' RETURNING 1",
	    .nparams = 1 },
	[STMT_MSG_OUTCOME] = { .name = "msg_outcome",
	    .sql = "UPDATE messages SET status = $2, msgid = $3::bigint,"
	    " errcode = $4::integer, error = $5, updated_at = now()"
	    " WHERE job_id = $1", .nparams = 5 },
	[STMT_OUTBOX_ADD] = { .name = "outbox_add",
	    .sql = "INSERT INTO job_outbox (job_id, type, payload, idem_key)"
	    " VALUES ($1, $2, $3, $4)", .nparams = 4 },
	[STMT_OUTBOX_TAKE] = { .name = "outbox_take",
	    .sql = "SELECT id, job_id, type, payload, idem_key FROM job_outbox"
	    " ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED", .nparams = 0 },
	[STMT_OUTBOX_DEL] = { .name = "outbox_del",
	    .sql = "DELETE FROM job_outbox WHERE id = $1", .nparams = 1 },
	[STMT_OUTBOX_COUNT] = { .name = "outbox_count",
	    .sql = "SELECT count(*) FROM job_outbox", .nparams = 0 },
	[STMT_PUSH_RECORD] = { .name = "push_record",
	    .sql = "INSERT INTO push_events (dedup_key, msg_type, event,"
	    " payload, handled) VALUES ($1, $2, $3, $4::jsonb, $5::boolean)"
	    " ON CONFLICT (dedup_key) DO NOTHING", .nparams = 5 },
	[STMT_MOD_ADD] = { .name = "mod_add",
	    .sql = "INSERT INTO moderation (item_id, user_id, author_id, field,"
	    " content, reason, trace_id, publish) VALUES ($1::bigint,"
	    " $2::bigint, $3::bigint, $4, $5, $6, $7, $8::boolean) RETURNING id",
	    .nparams = 8 },
	[STMT_MOD_GET] = { .name = "mod_get",
	    .sql = "SELECT " MOD_COLS " FROM moderation WHERE id = $1",
	    .nparams = 1 },
	[STMT_MOD_BY_TRACE] = { .name = "mod_by_trace",
	    .sql = "SELECT " MOD_COLS " FROM moderation WHERE trace_id = $1",
	    .nparams = 1 },
	[STMT_MOD_PENDING] = { .name = "mod_pending",
	    .sql = "SELECT " MOD_COLS " FROM moderation WHERE status = 'pending'"
	    " ORDER BY id LIMIT $1", .nparams = 1 },
	[STMT_MOD_MEDIA_LATE] = { .name = "mod_media_late",
	    .sql = "SELECT " MOD_COLS " FROM moderation WHERE status = 'pending'"
	    " AND reason = 'media' AND created_at < now() - $1::int"
	    " * interval '1 second' ORDER BY id LIMIT 100", .nparams = 1 },
	[STMT_MOD_REASON] = { .name = "mod_reason",
	    .sql = "UPDATE moderation SET reason = $2, trace_id = $3"
	    " WHERE id = $1 AND status = 'pending'", .nparams = 3 },
	/*
	 * A decision: the row, then what it releases -- an approved name
	 * applied; a draft item published once nothing of it waits any more
	 * and none of its current content was rejected (and its owner asked
	 * for that), or archived when rejected.  Run after STMT_MOD_LOCK in
	 * one transaction (moderation_decide): with the item locked, this
	 * statement's snapshot sees every other decision and write of it.
	 */
	[STMT_MOD_DECIDE] = { .name = "mod_decide",
	    .sql = "WITH d AS (UPDATE moderation SET status = $2,"
	    " decided_by = $3, decided_at = now()"
	    " WHERE id = $1 AND status = 'pending' RETURNING *),"
	    " n AS (UPDATE users u SET name = d.content, updated_at = now()"
	    " FROM d WHERE d.status = 'approved' AND u.id = d.user_id"
	    " AND d.field = 'name' RETURNING u.id),"
	    " i AS (UPDATE items it SET status = CASE WHEN d.status ="
	    " 'rejected' THEN 'archived' ELSE 'published' END,"
	    " updated_at = now() FROM d WHERE it.id = d.item_id AND"
	    " (d.status = 'rejected' OR (d.publish AND it.status = 'draft'"
	    " AND NOT EXISTS (SELECT 1 FROM moderation m WHERE"
	    " m.item_id = d.item_id AND m.id <> d.id AND " MOD_BLOCKS("m", "it")
	    "))) RETURNING it.id, it.status)"
	    " SELECT d.item_id, d.user_id, (SELECT status FROM i),"
	    " (SELECT count(*) FROM n), (SELECT owner_id FROM items"
	    " WHERE id = d.item_id), (SELECT title FROM items"
	    " WHERE id = d.item_id) FROM d", .nparams = 3 },
	[STMT_MOD_LOCK] = { .name = "mod_lock",
	    .sql = "SELECT 1 FROM items WHERE id = (SELECT item_id FROM"
	    " moderation WHERE id = $1) FOR UPDATE", .nparams = 1 },
	/* What keeps item $1 from being published: a field and why. */
	[STMT_MOD_BLOCKS] = { .name = "mod_blocks",
	    .sql = "SELECT m.field, m.status FROM moderation m JOIN items it"
	    " ON it.id = m.item_id WHERE m.item_id = $1 AND "
	    MOD_BLOCKS("m", "it") " LIMIT 1", .nparams = 1 },
	[STMT_CATEGORIES] = { .name = "categories",
	    .sql = "SELECT DISTINCT category FROM items WHERE " PUBLISHED
	    " ORDER BY 1", .nparams = 0 },
};

/*
 * app: the responder's per-process context (configuration, connections,
 * the request arena, counters) and the handlers that the route table
 * names.  Everything mutable in a responder hangs off struct app.
 */
#ifndef WX_APP_H
#define WX_APP_H

#include <stddef.h>

#include "arena.h"
#include "cache.h"
#include "config.h"
#include "db.h"
#include "httpcache.h"
#include "nearcache.h"
#include "ratelimit.h"
#include "request.h"
#include "response.h"
#include "router.h"
#include "wechat.h"

/* Rate classes named by the route table. */
enum rate_class {
	RATE_NONE,
	RATE_LOGIN,
	RATE_READ,
	RATE_WRITE,
	RATE_NCLASSES
};

struct app {
	struct config	 cfg;
	struct ratelimit rl;
	struct rl_class	 rates[RATE_NCLASSES];
	struct db	 db;
	struct cache	 cache;
	struct nearcache near;		/* copies of hot cached answers */
	struct wechat	 wx;
	struct shm_region *shm;		/* breaker and scoreboard of the host */
	int		 slot;		/* ours on the scoreboard */
	struct arena	 arena;
	unsigned long	 served;
	unsigned long	 degraded_reads;	/* served without Redis */
	unsigned long	 lost_invalidations;	/* bumps Redis missed */
};

/* Redis keys of the session. */
#define KEY_SESSION_KEY	"wx:sk:%lld"	/* user id -> session_key */
#define KEY_DENY_JTI	"wx:deny:%s"	/* jti of a logged-out access token */
#define KEY_REVOKED	"wx:rvk:%lld"	/* user id -> tokens issued before are dead */

/* The statement table (app/stmts.c): handlers name statements by index. */
enum stmt_id {
	STMT_PING,
	STMT_USER_UPSERT_OPENID,
	STMT_USER_GET,
	STMT_USER_SET_PHONE,
	STMT_RT_INSERT,
	STMT_RT_LOOKUP,
	STMT_RT_MARK_USED,
	STMT_RT_REVOKE_FAMILY,
	STMT_RT_REVOKE_USER,
	STMT_RT_FAMILY_OF,
	STMT_USERS_PAGE,
	STMT_USERS_AFTER,
	STMT_USERS_COUNT,
	STMT_USER_CREATE,
	STMT_USER_PATCH,
	STMT_USER_DELETE,
	STMT_PROFILE_GET,
	STMT_ITEMS_PAGE,
	STMT_ITEMS_PAGE_CAT,
	STMT_ITEMS_AFTER,
	STMT_ITEMS_AFTER_CAT,
	STMT_ITEMS_COUNT,
	STMT_ITEMS_COUNT_CAT,
	STMT_ITEM_GET,
	STMT_ITEM_CREATE,
	STMT_ITEM_PATCH,
	STMT_ITEM_DELETE,
	STMT_CATEGORIES,
	STMT_USER_BY_OPENID,
	STMT_RT_LIVE_FAMILIES,
	STMT_COUNT
};
extern const struct db_stmt app_stmts[STMT_COUNT];

/* The route table (app/routes.c). */
extern const struct route app_routes[];
extern const size_t app_nroutes;

/* Authentication of ROUTE_AUTH routes (app/auth.c); 0 or -1 with 401 set. */
int	auth_require(struct app *, struct req *, struct resp *);
/* The rate classes from the configuration (app/limits.c). */
void	limits_init(struct app *);
/* Spend a request of the route's class; -1 with a 429 set when limited. */
int	limits_check(struct app *, struct req *, struct resp *);
/* limits_check in two steps, to share a round trip: 0 when no limit applies. */
int	limits_prepare(struct app *, struct req *, struct rl_pending *);
int	limits_apply(struct app *, struct req *, struct resp *,
	    struct rl_pending *);

/* Sessions (app/session.c). */
/* Issue a refresh token in family (NULL: a new family); its row id. */
int	session_refresh_new(struct app *, struct req *, struct resp *,
	    const char *user_id, const char *family, const char **token,
	    const char **row_id);
/* hex(SHA-256(refresh token)): the only form the database keeps. */
const char *session_hash(struct arena *, const char *token);
/* Answer 200 with a new access token, the refresh token and the user. */
int	session_answer(struct app *, struct req *, struct resp *,
	    long long user_id, const char *refresh, const char *user_json);
/* The user row 0 (USER_COLS) of res as JSON. */
const char *session_user_json(struct arena *, PGresult *res);
/* Log a database failure once and set the matching envelope (errors.c). */
void	app_db_error(struct app *, struct resp *, enum db_status,
	    const char *what);
/* Log a failed WeChat call once and set the matching envelope. */
void	app_wx_error(struct app *, struct resp *, enum wechat_status,
	    const char *what);
/* The refresh token of a request: JSON field refresh_token, else cookie. */
int	session_presented(struct req *, struct resp *, int required,
	    const char **token);

/* Handlers. */
void	h_ping(struct app *, struct req *, struct resp *);
void	h_ping_post(struct app *, struct req *, struct resp *);
void	h_healthz(struct app *, struct req *, struct resp *);
void	h_status(struct app *, struct req *, struct resp *);
void	h_login(struct app *, struct req *, struct resp *);
void	h_refresh(struct app *, struct req *, struct resp *);
void	h_logout(struct app *, struct req *, struct resp *);
void	h_me(struct app *, struct req *, struct resp *);
void	h_decrypt(struct app *, struct req *, struct resp *);
void	h_phone(struct app *, struct req *, struct resp *);
void	h_items_list(struct app *, struct req *, struct resp *);
void	h_item_get(struct app *, struct req *, struct resp *);
void	h_item_create(struct app *, struct req *, struct resp *);
void	h_item_patch(struct app *, struct req *, struct resp *);
void	h_item_delete(struct app *, struct req *, struct resp *);
void	h_users_list(struct app *, struct req *, struct resp *);
void	h_user_get(struct app *, struct req *, struct resp *);
void	h_user_create(struct app *, struct req *, struct resp *);
void	h_user_patch(struct app *, struct req *, struct resp *);
void	h_user_delete(struct app *, struct req *, struct resp *);

/* Read-through (app/readthrough.c). */
typedef enum db_status	(*build_fn)(struct db *, struct arena *, const void *,
			    struct hc_entry *);
/*
 * Answer from the cache, or build (one builder per key), store, answer.
 * A list (is_list) is modified when its collection is, not only when one
 * of its rows is: its Last-Modified includes the collection's change time.
 */
void	app_cached(struct app *, struct req *, struct resp *,
	    const char *collection, const char *key, build_fn, const void *arg,
	    int is_list);
/* After a committed write: invalidate the collection's cached answers. */
void	app_invalidate(struct app *, const char *collection);
/*
 * Run a write statement on one resource of a collection.  When it touched
 * a row: the collection is invalidated and the result returned (the
 * caller's to PQclear).  Else NULL with the answer set: 404 naming `what`
 * and id, 409 with `conflict` on a unique violation, or the database error.
 */
PGresult *app_write(struct app *, struct resp *, size_t stmt,
	    const char *const *params, const char *collection, const char *what,
	    long long id, const char *conflict);
/* Answer status with row 0 of res, serialized by json, as the data. */
void	app_answer_row(struct resp *, int status, PGresult *res,
	    void (*json)(struct buf *, PGresult *, int));
/* DELETE of the resource {id}: 204, or what app_write answers. */
void	app_delete(struct app *, struct req *, struct resp *, size_t stmt,
	    const char *collection, const char *what);

#endif

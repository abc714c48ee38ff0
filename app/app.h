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
#include "request.h"
#include "response.h"
#include "router.h"
#include "wechat.h"

struct app {
	struct config	 cfg;
	struct db	 db;
	struct cache	 cache;
	struct wechat	 wx;
	struct arena	 arena;
	unsigned long	 served;
};

/* Redis keys of the session. */
#define KEY_SESSION_KEY	"wx:sk:%lld"	/* user id -> session_key */
#define KEY_DENY_JTI	"wx:deny:%s"	/* jti of a logged-out access token */

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
	STMT_COUNT
};
extern const struct db_stmt app_stmts[STMT_COUNT];

/* The route table (app/routes.c). */
extern const struct route app_routes[];
extern const size_t app_nroutes;

/* Authentication of ROUTE_AUTH routes (app/auth.c); 0 or -1 with 401 set. */
int	auth_require(struct app *, struct req *, struct resp *);

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
/* The user row (USER_COLS) of res as JSON. */
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
void	h_login(struct app *, struct req *, struct resp *);
void	h_refresh(struct app *, struct req *, struct resp *);
void	h_logout(struct app *, struct req *, struct resp *);
void	h_me(struct app *, struct req *, struct resp *);
void	h_decrypt(struct app *, struct req *, struct resp *);
void	h_phone(struct app *, struct req *, struct resp *);

#endif

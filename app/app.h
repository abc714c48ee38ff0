/*
 * app: the responder's per-process context (configuration, connections,
 * the request arena, counters) and the handlers that the route table
 * names.  Everything mutable in a responder hangs off struct app.
 */
#ifndef WX_APP_H
#define WX_APP_H

#include <signal.h>
#include <stddef.h>

#include "arena.h"
#include "cache.h"
#include "config.h"
#include "db.h"
#include "dbbatch.h"
#include "guard.h"
#include "httpcache.h"
#include "job.h"
#include "nearcache.h"
#include "ratelimit.h"
#include "request.h"
#include "response.h"
#include "router.h"
#include "pool.h"
#include "shm.h"
#include "token.h"
#include "wechat.h"

/*
 * The program's envelope codes, beside the library's (lib/response.h):
 * HTTP status * 100 + a detail the client can act on.
 */
enum app_code {
	API_WX_CODE_INVALID	= 40010,	/* wx.login code unknown: wx.login again */
	API_WX_CODE_USED	= 40011,	/* wx.login code used already */
	API_DECRYPT_INPUT	= 40020,	/* bad base64 or key/iv length */
	API_DECRYPT_FAILED	= 40021,	/* bad padding: stale session_key? */
	API_DECRYPT_APPID	= 40022,	/* watermark.appid is not ours */
	API_DECRYPT_SIGNATURE	= 40023,	/* rawData signature mismatch */
	API_DECRYPT_STALE	= 40024,	/* older than decrypt_max_age */
	API_TOKEN_EXPIRED	= 40101,	/* refresh now */
	API_TOKEN_INVALID	= 40102,	/* log in again */
	API_REFRESH_INVALID	= 40103,	/* unknown/expired/revoked: log in */
	API_REFRESH_REUSED	= 40104,	/* reuse detected: family revoked */
	API_SESSION_KEY_GONE	= 40105,	/* no session_key: wx.login again */
	API_WX_RISKY		= 40301,	/* WeChat blocked a high-risk user */
	API_IDEMPOTENCY_REUSED	= 40901,	/* the key was another request's */
	API_CONTENT_RISKY	= 42200,	/* content security refused it */
	API_WX_RATE_LIMITED	= 42901,	/* WeChat's quota for this user */
	API_DB_UNAVAILABLE	= 50301,
	API_CACHE_UNAVAILABLE	= 50302,
	API_WX_UNAVAILABLE	= 50303,
	API_DB_IN_DOUBT		= 50304		/* a write may have committed */
};

/*
 * Who may call a route: the route table's flags.  Every route has one of
 * the first four; ownership (a user's own account, an item's owner) is
 * checked by the handler, which answers 403 naming the rule.
 */
#define ROUTE_PUBLIC	0x00	/* anyone; a token sent is still checked */
#define ROUTE_USER	0x01	/* a valid access token */
#define ROUTE_ADMIN	0x02	/* ... of a user whose role is admin */
#define ROUTE_LOOPBACK	0x04	/* clients on this host only */
/*
 * Anyone, and an Authorization header is not read: logging in again or
 * refreshing must work for a client that still sends its old token.
 */
#define ROUTE_TOKENLESS	0x08
#define ROUTE_IDEMPOTENT 0x20	/* takes Idempotency-Key (app/idempotency.c) */
/*
 * With ROUTE_IDEMPOTENT: the handler calls out (WeChat) before it writes,
 * and claims the key itself with app_idem_claim once those calls are
 * made, so that no transaction is held open across them.
 */
#define ROUTE_CALLS_OUT	0x40

/* Rate classes named by the route table. */
enum rate_class {
	RATE_NONE,
	RATE_LOGIN,
	RATE_READ,
	RATE_WRITE,
	RATE_NCLASSES
};

/* The caller of the request in flight, from its access token. */
struct caller {
	long long	 user_id;	/* 0: anonymous */
	int		 admin;
	const char	*fam;		/* the refresh family of its session */
};

/* The collections whose versions Redis keeps (see app_collections). */
enum app_coll {
	COLL_USERS,
	COLL_ITEMS,
	COLL_AUTH,		/* the session verdicts of app/auth.c */
	COLL_FAVORITES,
	COLL_COUNT
};
extern const char *const app_collections[COLL_COUNT + 1];

struct verdict;
struct seen_token;

struct app {
	struct config	 cfg;
	struct token_opts tok;		/* from cfg */
	struct ratelimit rl;
	struct rl_class	 rates[RATE_NCLASSES];
	struct db	 db;
	struct dbbatch	 logins;	/* STMT_LOGIN, for many at once */
	struct cache	 cache;
	struct nearcache near;		/* copies of hot cached answers ... */
	struct shm	 near_shm;	/* ... in the host's shared memory */
	struct wechat	 wx;
	struct shm	 shm;		/* the pool's shared memory ... */
	struct pool	*pool;		/* ... and what it holds */
	struct guard	 guards[DEP_COUNT];	/* around each dependency */
	int		 slot;		/* ours on the scoreboard */
	struct arena	 arena;
	unsigned long	 served;
	unsigned long	 degraded_reads;	/* served without Redis */
	struct caller	 who;		/* of the request in flight */
	int		 auth_code;	/* why auth_identify refused it */
	const char	*auth_why;
	struct verdict	*verdicts;	/* app/auth.c */
	struct seen_token *seen;
	int		 auth_blind;	/* the last check could not be made */
	int		 fcgi_fd;	/* the request's connection to nginx */
	int		 txn_depth;	/* in a transaction of app_idempotent */
	/*
	 * The user whose personal data the answer in flight shows (0: none):
	 * an idempotent write's kept answer goes with that user's account.
	 */
	long long	 shown;
	unsigned	 held;		/* collections to invalidate at commit */
	int		 tracing;	/* otlp_endpoint is set: spans kept */
	struct span_sink otlp;		/* where they go (wxapp-otlp) */
};

/* Redis keys of the session. */
#define KEY_SESSION_KEY	"wx:sk:%lld"	/* user id -> session_key */
/*
 * Written (with a short expiry) when the session state of a user changes:
 * the write itself is the message, which Redis broadcasts to every
 * responder's invalidation connection (see nearcache).
 */
#define KEY_SESSION_PREFIX	"wx:rv:"

/* STMT_LOGIN's parameters, arrays of one element a login (lib/dbbatch). */
#define LOGIN_NPARAMS	5

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
	STMT_RT_PRUNE,
	STMT_USERS_PAGE,
	STMT_USERS_AFTER,
	STMT_USERS_COUNT,
	STMT_USER_CREATE,
	STMT_USER_PATCH,
	STMT_USER_DELETE,
	STMT_USER_SET_ROLE,
	STMT_USER_NEXT_GEN,
	STMT_PROFILE_GET,
	STMT_ITEMS_PAGE,
	STMT_ITEMS_PAGE_CAT,
	STMT_ITEMS_AFTER,
	STMT_ITEMS_AFTER_CAT,
	STMT_ITEMS_COUNT,
	STMT_ITEMS_COUNT_CAT,
	STMT_ITEMS_ANY_PAGE,
	STMT_ITEMS_ANY_AFTER,
	STMT_ITEMS_ANY_COUNT,
	STMT_ITEM_GET,
	STMT_ITEM_CREATE,
	STMT_ITEM_PATCH,
	STMT_ITEM_DELETE,
	STMT_CATEGORIES,
	STMT_USER_BY_OPENID,
	STMT_RT_LIVE_FAMILIES,
	STMT_AUTH_STATE,
	STMT_IDEM_CLAIM,
	STMT_IDEM_GET,
	STMT_IDEM_STORE,
	STMT_IDEM_PURGE,
	STMT_FAV_ADD,
	STMT_FAV_REMOVE,
	STMT_FAV_PAGE,
	STMT_FAV_AFTER,
	STMT_FAV_COUNT_MINE,
	STMT_FAV_OF_ITEM,
	STMT_LOGIN,
	STMT_USER_OPENID,
	STMT_MSG_LIMITS,
	STMT_MSG_CREATE,
	STMT_MSG_DROP,
	STMT_MSG_GET,
	STMT_MSG_SENDING,
	STMT_MSG_OUTCOME,
	STMT_OUTBOX_ADD,
	STMT_OUTBOX_TAKE,
	STMT_OUTBOX_DEL,
	STMT_OUTBOX_COUNT,
	STMT_PUSH_RECORD,
	STMT_MOD_ADD,
	STMT_MOD_GET,
	STMT_MOD_BY_TRACE,
	STMT_MOD_PENDING,
	STMT_MOD_MEDIA_LATE,
	STMT_MOD_REASON,
	STMT_MOD_DECIDE,
	STMT_MOD_LOCK,
	STMT_MOD_BLOCKS,
	STMT_COUNT
};

/*
 * The columns of USER_COLS and ITEM_COLS (app/stmts.c), by name: results
 * of every statement that returns a user or an item.
 */
enum user_col {
	UC_ID, UC_NAME, UC_EMAIL, UC_PHONE, UC_AVATAR, UC_ROLE, UC_CREATED,
	UC_UPDATED, UC_MTIME, UC_GEN, UC_NCOLS
};
enum item_col {
	IC_ID, IC_TITLE, IC_SUMMARY, IC_COVER, IC_CATEGORY, IC_STATUS,
	IC_OWNER, IC_CREATED, IC_UPDATED, IC_MTIME, IC_NCOLS
};
/* The columns of STMT_RT_LOOKUP (RT_ID: of STMT_RT_INSERT too). */
enum rt_col {
	RT_ID, RT_USER, RT_FAMILY, RT_EXPIRED, RT_REVOKED, RT_USED,
	RT_IN_GRACE, RT_SUCCESSOR, RT_SUCCESSOR_SPENT
};
/* The columns of STMT_AUTH_STATE. */
enum auth_col {
	AS_ADMIN, AS_GEN, AS_FAM_REVOKED
};
/* The columns of STMT_IDEM_GET. */
enum idem_col {
	IDEM_REQUEST, IDEM_STATUS, IDEM_HEADERS, IDEM_BODY
};
/* The columns of STMT_FAV_OF_ITEM. */
enum fav_col {
	FC_ITEM, FC_COUNT, FC_MTIME
};
/* The columns of STMT_MSG_GET, and of STMT_OUTBOX_TAKE. */
enum msg_col {
	MC_JOB, MC_SENDER, MC_USER, MC_TEMPLATE, MC_STATUS, MC_ATTEMPTS,
	MC_MSGID, MC_ERRCODE, MC_ERROR, MC_CREATED, MC_UPDATED
};
enum mod_col {
	MDC_ID, MDC_ITEM, MDC_USER, MDC_AUTHOR, MDC_FIELD, MDC_CONTENT,
	MDC_REASON, MDC_TRACE, MDC_PUBLISH, MDC_STATUS, MDC_CREATED
};
/* The columns of STMT_MOD_BLOCKS. */
enum block_col {
	MB_FIELD, MB_STATUS
};
/* The columns of STMT_MSG_LIMITS: the messages of the last hour. */
enum limits_col {
	ML_USER, ML_TEMPLATE
};
/*
 * The column of a result that has only one: a count, STMT_USER_OPENID,
 * the id STMT_MOD_ADD returns, STMT_CATEGORIES.
 */
enum only_col {
	ONLY_COL
};
/* The columns of STMT_MOD_DECIDE. */
enum decide_col {
	DEC_ITEM, DEC_USER, DEC_ITEM_STATUS, DEC_NAMED, DEC_OWNER, DEC_TITLE
};
enum outbox_col {
	OB_ID, OB_JOB, OB_TYPE, OB_PAYLOAD, OB_KEY
};
/* The columns of STMT_PROFILE_GET. */
enum profile_col {
	PC_CITY, PC_GENDER, PC_AVATAR, PC_BIO, PC_MTIME
};
extern const struct db_stmt app_stmts[STMT_COUNT];

struct read_plan;
typedef void	(*handler_fn)(struct app *, struct req *, struct resp *);
/* Fill a read plan from the request; -1 with a 4xx set. */
typedef int	(*plan_fn)(struct app *, struct req *, struct resp *,
		    struct read_plan *);

/*
 * A route of the program: the router's method and pattern, then either a
 * handler or, for a read, the plan of its answer (app/readthrough.c), who
 * may call it and its rate class.
 */
struct app_route {
	struct route	 r;
	handler_fn	 fn;
	plan_fn		 plan;
	unsigned	 flags;		/* ROUTE_* */
	enum rate_class	 rate;
};

/* The route table (app/routes.c). */
extern const struct app_route app_routes[];
extern const size_t app_nroutes;

/* The route router_match found for rq in app_routes. */
static inline const struct app_route *
app_route_of(const struct req *rq)
{
	return (const struct app_route *)(const void *)rq->route;
}

/* The options of lib modules, from the configuration (app/opts.c). */
void	app_guards(const struct config *, struct shm *, struct pool *,
	    struct guard g[DEP_COUNT]);
void	app_db_opts(const struct config *, struct guard *, struct db_opts *);
void	app_cache_opts(const struct config *, struct guard *,
	    struct cache_opts *);
void	app_wechat_opts(const struct config *, struct guard *,
	    struct wechat_opts *);
void	app_token_opts(const struct config *, struct token_opts *);
void	app_job_opts(const struct config *, struct job_opts *);
/*
 * A program's signals: SIGTERM, SIGUSR1 and SIGINT call stop, SIGHUP
 * hup; SIGPIPE is ignored.  0 or -1.
 */
int	app_signals(void (*stop)(int), void (*hup)(int));
struct prefork_opts;
/*
 * How a long-lived program (the worker, the span exporter) starts: the
 * configuration from -c, WXAPP_CONF or the default (*cfgpath is set to
 * the one used), checked by check when not NULL; with test, "config ok"
 * and done; the log opened; with supervise, this process stays behind as
 * the supervisor of a child that goes on.  Returns -1 to go on, or the
 * exit status, with the reason on stderr.
 */
int	app_program_start(const char *prog, const char **cfgpath,
	    struct config *, int (*check)(const struct config *, char *,
	    size_t), int test, const struct prefork_opts *supervise);
/* Sessions seen by this responder (app/auth.c). */
int	auth_init(struct app *);
void	auth_free(struct app *);
/*
 * Identify the caller from the request's access token, if it sent one,
 * and check what the route's flags ask: 0 (app->who filled; user_id 0
 * for an anonymous caller of a public route), or -1 with app->auth_code
 * and auth_why saying why the request is refused (auth_refuse sets it).
 */
int	auth_identify(struct app *, struct req *);
void	auth_refuse(struct app *, struct resp *);
/*
 * The session state of user_id changed (a logout, a revocation, a role,
 * a deletion): every responder forgets what it knew of it.  -1 when Redis
 * could not be told (logged; this host's responders forget it anyway,
 * and the others when Redis is back).
 */
int	auth_changed(struct cache *, uint64_t *changes, long long user_id);
/* The rate limit of the request in flight (app/limits.c). */
struct app_limit {
	int			 on;	/* a limit applies to the route */
	int			 sent;	/* its call went out with another */
	struct rl_pending	 p;
};
/* The rate classes from the configuration. */
void	limits_init(struct app *);
/* What the route's limit will cost the caller, not yet spent. */
void	limits_prepare(struct app *, const struct req *, struct app_limit *);
/*
 * The call to Redis that the limit needs, for the caller to send along
 * with its own (then it is marked sent); NULL when there is none.
 */
struct cache_call *limits_ride(struct app_limit *);
/*
 * The decision, made once per request: -1 with a 429 set (over any
 * answer so far) when the caller is limited.  Every answer of a limited
 * route carries RateLimit-Limit and RateLimit-Remaining.
 */
int	limits_decide(struct app *, struct req *, struct resp *,
	    struct app_limit *);

/* Sessions (app/session.c). */
/*
 * A new refresh token (*token) and its hash (*hash) in *family (NULL: a
 * new family, stored there); nothing stored yet.  0, or -1 answered.
 */
int	session_mint(struct req *, struct resp *, const char **family,
	    const char **token, const char **hash);
/* Issue a refresh token in *family (NULL: a new one, stored there). */
int	session_refresh_new(struct app *, struct req *, struct resp *,
	    const char *user_id, const char **family, const char **token,
	    const char **row_id);
/* hex(SHA-256(refresh token)): the only form the database keeps. */
const char *session_hash(struct arena *, const char *token);
/*
 * Answer 200 with a new access token for the user of row 0 of res
 * (USER_COLS) in family, the refresh token and the user.
 */
int	session_answer(struct app *, struct req *, struct resp *,
	    PGresult *res, const char *family, const char *refresh);
/* The user of row 0 (USER_COLS) of res as its owner sees it. */
const char *session_user_json(struct arena *, PGresult *res);
/* Log a database failure once and set the matching envelope (errors.c). */
void	app_db_error(struct app *, struct resp *, enum db_status,
	    const char *what);
/* Log a failed WeChat call once and set the matching envelope. */
void	app_wx_error(struct app *, struct resp *, enum wechat_status,
	    const char *what);
/* Tell a browser to forget the refresh token cookie. */
void	session_clear_cookie(struct resp *);

/*
 * nginx gave up on the request in flight -- its read timeout passed while
 * the request waited for a responder, or the client went away -- and
 * closed the connection (app/wxapp-fcgi.c).  What costs something that
 * cannot be taken back (a WeChat call, a single-use code) is not done
 * then.
 */
int	app_client_gone(const struct app *);
/* 0 when the client is there; else logged, answered 503, and -1. */
int	app_abandoned(struct app *, struct resp *, const char *what);

/*
 * One request being answered (app/wxapp-fcgi.c), by libfcgi's loop or by
 * the concurrent one (app/concurrent.c): run routes, serves and
 * serializes it into out; the caller writes out, then end logs it and
 * updates the scoreboard.  fd and fcgi_id (the FastCGI connection and
 * request id) are where the watchdog of request_terminate_timeout answers
 * 503 when the request holds the process too long.
 */
struct app_exchange {
	struct req	 rq;
	struct resp	 rs;
	struct buf	 out;
	struct spans	 spans;		/* of its trace, when sampled */
	int64_t		 start;
	req_read_fn	 read;		/* the body */
	void		*read_ctx;
};
void	app_exchange_run(struct app *, struct app_exchange *, char **envp,
	    int fd, int fcgi_id);
void	app_exchange_end(struct app *, struct app_exchange *, int written);
/*
 * request_terminate_timeout from now for rq, answered on fd (a no-op when
 * the key is 0); disarm when the request lets go of the process: it is
 * answered, or, in the concurrent loop, its coroutine yields.
 */
void	app_watchdog_arm(int fd, int fcgi_id, const struct req *rq);
void	app_watchdog_disarm(void);
/*
 * While a responder has nothing to do: apply what Redis reported about
 * writes (lib/nearcache), and when the breaker of PostgreSQL or Redis
 * admits a trial, probe the store (once), so that a store that came back
 * is used again without a request having to be the trial (and a store
 * that still hangs is waited out here, not by a request).
 */
void	app_probe_stores(struct app *);
/* Microseconds until a breaker admits a probe, or -1 when none waits. */
int64_t	app_probe_in(struct app *);
/*
 * The concurrent loop (wxapp-fcgi -C N): up to `max` requests of the
 * listening socket lfd in flight at once, each in a coroutine that yields
 * while it waits for WeChat.  Returns when *stop is set and every request
 * in flight is answered, or after max_requests; 0, or -1 on a setup error.
 */
int	app_serve_concurrent(struct app *, int lfd, int max,
	    volatile sig_atomic_t *stop, volatile sig_atomic_t *reopen,
	    unsigned long limit);

/*
 * A transaction for a handler's writes, unless one is open (then begin
 * and end nest): -1 with the error answered.  end commits when commit is
 * set and the answer so far is a 2xx, else rolls back; then the held
 * invalidations go out (app/idempotency.c).
 */
int	app_txn_begin(struct app *, struct resp *);
void	app_txn_end(struct app *, struct resp *, int commit);

/*
 * Jobs (app/jobs.c).  The job types of this program: a worker runs each
 * with its handler (app/worker_jobs.c).
 */
#define JOB_SUBSCRIBE	"subscribe"	/* subscribeMessage.send */
#define JOB_PUSH	"push"		/* a message WeChat pushed */
#define JOB_RECHECK	"recheck"	/* content WeChat could not check */
/* A nonce of message push seen (app/h_push.c), for the skew window. */
#define KEY_PUSH_NONCE	"wx:push:nonce:"
/* A subscribe message to send. */
struct message {
	long long	 sender_id;	/* who asked; 0: the app itself */
	long long	 user_id;	/* the recipient, if a user; or 0 */
	const char	*openid;	/* ... its openid */
	const char	*template_id;
	const char	*body;		/* subscribeMessage.send's JSON */
	const char	*key;		/* idempotency key, or NULL */
	int		 quiet;		/* over a limit: 1, no answer set */
	const char	*job_id;	/* set by app_message_enqueue */
};
/* Where the jobs_* functions work, and why they failed. */
struct jobs_ctx {
	struct db		*db;
	struct cache		*cache;
	const struct config	*cfg;
	struct arena		*a;
	const char		*trace;		/* traceparent the jobs carry */
	const char		*tracestate;	/* and tracestate, or NULL */
	enum db_status		 dbst;		/* of JOBS_DB */
	const char		*limit;		/* of JOBS_OVER_LIMIT: its key */
	const char		*limit_per;
	long long		 limit_max;
};
enum jobs_result {
	JOBS_OK,
	JOBS_QUEUE_DOWN,	/* Redis down, and the type is not durable */
	JOBS_DB,		/* PostgreSQL failed: dbst */
	JOBS_OVER_LIMIT,	/* a message over an hourly limit */
	JOBS_INTERNAL
};
/*
 * Enqueue j (id, type, payload and key set): queued (*dup: its key was
 * queued already, j->id is that job's) or, with Redis down, for a type
 * that must not be lost, kept in the outbox (in the open transaction,
 * if any).
 */
enum jobs_result jobs_enqueue(struct jobs_ctx *, struct job *,
	    int *dup);
/* Record message m and enqueue its job, within the hourly limits. */
enum jobs_result jobs_message(struct jobs_ctx *, struct message *);
/* The same for a request: 0, or -1 with the answer set (503, 429). */
int	app_job_enqueue(struct app *, struct resp *, struct job *, int *dup);
/*
 * Record m and enqueue its job, in the open transaction; 0, or -1 with
 * the answer set (429 over message_user_hourly or
 * message_template_hourly, 503), or 1 when m->quiet and over a limit.
 */
int	app_message_enqueue(struct app *, struct resp *, struct message *);
/*
 * The job queue's figures as a JSON object (for /status and wxappctl
 * jobs --json): depth, pending per consumer, retrying, dead, the oldest
 * job's age and the outbox; {"available":false} without Redis.
 */
void	app_jobs_json(struct buf *, struct cache *, struct db *);
/*
 * What GET /status and wxappctl status --json answer: the pool's
 * scoreboard and breakers (pool_status_json) and the job queue.
 */
void	app_status_json(struct buf *, const struct pool *, struct cache *,
	    struct db *);
/*
 * Content security (app/moderation.c).  What a write's content got: pass,
 * review (a moderator decides), unchecked (WeChat could not be asked:
 * content_check_fail queue), media (an image's verdict comes by push).
 */
enum check_verdict {
	CHECK_PASS,
	CHECK_REVIEW,
	CHECK_UNCHECKED,
	CHECK_MEDIA
};
#define CHECKED_MAX	4
struct checked_field {
	const char		*field;
	const char		*content;
	int			 image;
	enum check_verdict	 verdict;
	const char		*trace_id;	/* CHECK_MEDIA's */
};
struct checked {
	struct checked_field	f[CHECKED_MAX];
	int			n;
};
/*
 * Check content (a text, or an image's URL when image) that the caller
 * writes into field, in WeChat's scene (1 profile, 3 forum); added to c.
 * -1 with the answer set: 422/42200 when risky, 503 when WeChat cannot
 * be asked and content_check_fail is closed.
 */
int	moderation_check(struct app *, struct req *, struct resp *,
	    struct checked *, const char *field, const char *content, int scene,
	    int image);
/* Does anything of c wait for a verdict? */
int	moderation_waits(const struct checked *);
/*
 * Record what of c waits (for item_id or user_id), in the open
 * transaction; the unchecked get a recheck job.  publish: the item is to
 * be published once nothing waits.  0, or -1 answered.
 */
int	moderation_hold(struct app *, struct resp *, const struct checked *,
	    long long item_id, long long user_id, int publish);
enum moderation_result {
	MODERATION_OK,
	MODERATION_NONE,	/* no such row waits */
	MODERATION_DB		/* PostgreSQL failed: db->errmsg */
};
struct moderation_outcome {
	struct arena	*a;		/* set by the caller */
	long long	 item_id, user_id, owner_id;
	const char	*item_status;	/* published, archived, or NULL */
	const char	*title;
	int		 renamed;
};
/*
 * Approve or reject the waiting row id, by whom (a moderator's name, or
 * "wechat"), and apply it: an item with nothing more waiting published
 * (if its owner asked), a rejected one archived, a name applied; the
 * caches told.  Shared by the responder, the worker and wxappctl.
 */
enum moderation_result moderation_decide(struct db *, struct cache *,
	    uint64_t *changes, long long id, int approve, const char *by,
	    struct moderation_outcome *);
/*
 * May item_id be published: nothing of it waits, and none of what it
 * holds was rejected?  0, or -1 with 409 (or the error) answered.
 */
int	moderation_may_publish(struct app *, struct resp *, long long item_id);
/* The rows of res (STMT_MOD_PENDING) as a JSON array. */
void	moderation_json(struct buf *, PGresult *);

/* Handlers, and the plans of reads. */
int	p_users_list(struct app *, struct req *, struct resp *,
	    struct read_plan *);
int	p_user_get(struct app *, struct req *, struct resp *,
	    struct read_plan *);
int	p_items_list(struct app *, struct req *, struct resp *,
	    struct read_plan *);
int	p_item_get(struct app *, struct req *, struct resp *,
	    struct read_plan *);
void	h_ping(struct app *, struct req *, struct resp *);
void	h_ping_post(struct app *, struct req *, struct resp *);
void	h_healthz(struct app *, struct req *, struct resp *);
void	h_metrics(struct app *, struct req *, struct resp *);
void	h_status(struct app *, struct req *, struct resp *);
void	h_login(struct app *, struct req *, struct resp *);
void	h_refresh(struct app *, struct req *, struct resp *);
void	h_logout(struct app *, struct req *, struct resp *);
void	h_me(struct app *, struct req *, struct resp *);
void	h_me_delete(struct app *, struct req *, struct resp *);
void	h_decrypt(struct app *, struct req *, struct resp *);
void	h_phone(struct app *, struct req *, struct resp *);
void	h_item_create(struct app *, struct req *, struct resp *);
void	h_item_patch(struct app *, struct req *, struct resp *);
void	h_item_delete(struct app *, struct req *, struct resp *);
void	h_user_create(struct app *, struct req *, struct resp *);
void	h_user_patch(struct app *, struct req *, struct resp *);
void	h_user_delete(struct app *, struct req *, struct resp *);
void	h_message_subscribe(struct app *, struct req *, struct resp *);
void	h_push_verify(struct app *, struct req *, struct resp *);
void	h_moderation(struct app *, struct req *, struct resp *);
void	h_push(struct app *, struct req *, struct resp *);
void	h_message_get(struct app *, struct req *, struct resp *);
void	h_favorite_put(struct app *, struct req *, struct resp *);
void	h_favorite_delete(struct app *, struct req *, struct resp *);
int	p_favorites_mine(struct app *, struct req *, struct resp *,
	    struct read_plan *);
int	p_favorites_of_item(struct app *, struct req *, struct resp *,
	    struct read_plan *);

/* Read-through (app/readthrough.c). */
typedef enum db_status	(*build_fn)(struct db *, struct arena *, const void *,
			    struct hc_entry *);
/*
 * How a read is answered: from a shared, cached answer under key, or,
 * with key NULL, from one built for the caller alone (app_private).  A
 * list (is_list) is modified when its collection is, not only when one of
 * its rows is: its Last-Modified includes the collection's change time.
 */
struct read_plan {
	/* Set by the route's plan. */
	enum app_coll		 coll;
	const char		*key;
	int			 is_list;
	build_fn		 build;
	const void		*arg;
	const void		*mine;	/* a shared 404: build with this, privately */
	int			 msgpack; /* the client asked for MessagePack */
	/* Set by app_fetch. */
	const struct hc_entry	*copy;	/* the responder's own, valid */
	enum hc_result		 found;
	struct hc_entry		 e;
	const char		*vkey;
	long long		 changed;
	uint64_t		 mark;
	int			 near;
};
/*
 * Look for the shared answer of rp, from this responder's copies or in
 * one round trip to Redis that also carries the limit's call.
 */
void	app_fetch(struct app *, struct req *, struct read_plan *,
	    struct app_limit *);
/*
 * The representation the client accepts: MessagePack when its Accept
 * header prefers application/msgpack (or application/x-msgpack) to JSON,
 * which stays the default; then rp's key names that representation.
 */
void	app_negotiate(struct req *, struct read_plan *);
/* Answer rp: what app_fetch found, or build it (one builder per key). */
void	app_read(struct app *, struct req *, struct resp *, struct read_plan *);
/*
 * After a committed write: invalidate the collection's cached answers.
 * Inside app_idempotent's transaction, at its commit (app_invalidate_held):
 * a reader must not cache what the write is about to replace.
 */
void	app_invalidate(struct app *, enum app_coll);
void	app_invalidate_held(struct app *);
/*
 * Run the route's handler, with the Idempotency-Key of the request if it
 * has one: the first answer of a key is stored with the write it answers,
 * and replayed for a retry (app/idempotency.c).
 */
void	app_idempotent(struct app *, const struct app_route *, struct req *,
	    struct resp *);
/*
 * A ROUTE_CALLS_OUT handler, about to write: for a keyed request, open
 * app_idempotent's transaction and claim the key in it; then open the
 * handler's own transaction when txn says so (always, for a keyed
 * request).  1: a transaction is open, which the handler ends with
 * app_txn_end; 0: none; -1: answered (a retry of what was done, 409, or
 * an error).
 */
int	app_idem_claim(struct app *, struct req *, struct resp *, int txn);
/*
 * The same outside the responder (app/data.c): Redis told, then the
 * host's responders (changes may be NULL); -1 when Redis missed it.
 */
int	data_invalidate(struct cache *, uint64_t *changes, enum app_coll);
/*
 * Run a write statement on one resource of a collection.  When it touched
 * a row: the collection is invalidated and the result returned (the
 * caller's to PQclear).  Else NULL with the answer set: 404 naming `what`
 * and id, 409 with `conflict` on a unique violation, or the database error.
 */
PGresult *app_write(struct app *, struct resp *, size_t stmt,
	    const char *const *params, enum app_coll, const char *what,
	    long long id, const char *conflict);
/*
 * A write the caller may not make: 403 naming rule when the resource
 * shows to it -- row 0 of stmt for id exists and, with status_col >= 0,
 * is published -- else 404 naming what and id, as for a resource that
 * does not exist, so that one hidden from the caller does not leak.
 */
void	app_refuse(struct app *, struct req *, struct resp *, size_t stmt,
	    long long id, const char *what, int status_col, const char *rule);
/* Answer status with row 0 of res, serialized by json, as the data. */
void	app_answer_row(struct resp *, int status, PGresult *res,
	    void (*json)(struct buf *, PGresult *, int));
/*
 * Accounts (app/account.c), shared by the responder and wxappctl.  Each
 * changes PostgreSQL first and then tells the responders (auth_changed);
 * changes is the host's write counters, or NULL outside the pool.
 */
enum account_result {
	ACCOUNT_OK,
	ACCOUNT_UNTOLD,		/* done, but Redis could not be told */
	ACCOUNT_NONE,		/* no such user */
	ACCOUNT_DB_UNAVAILABLE,	/* PostgreSQL failed: db->errmsg */
	ACCOUNT_DB_ERROR,
	ACCOUNT_CACHE		/* not done: Redis is needed and down */
};
/* Delete a user: the row, its profile, sessions, items and session_key. */
enum account_result account_delete(struct db *, struct cache *,
	    uint64_t *changes, long long user_id);
/* End every session of a user: refresh tokens revoked, access tokens too. */
enum account_result account_revoke(struct db *, struct cache *,
	    uint64_t *changes, long long user_id, long long *tokens);
/* Set the role (user, admin); it applies from the user's next request. */
enum account_result account_grant(struct db *, struct cache *,
	    uint64_t *changes, long long user_id, const char *role);
/* Answer an account operation's outcome: done is the message of success. */
void	account_answer(struct app *, struct resp *, enum account_result,
	    long long user_id, const char *done);

#endif

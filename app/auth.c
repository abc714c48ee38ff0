/*
 * auth: who is calling.  The access token is verified (signature and
 * claims, lib/token), then checked against the session state that
 * PostgreSQL keeps: the user still exists, its token generation is the
 * token's (ending every session of a user increments it), and the
 * token's refresh family is not revoked (a logout, or reuse detection).
 * The user's role comes from there too, so a change of role applies from
 * the user's next request.
 *
 * That state changes rarely, so each responder keeps what it read, the
 * verdict, per session, for at most VERDICT_MAX_S.  A verdict is used only
 * while the invalidation connection of nearcache vouches for it: Redis
 * has reported no write of wx:rv:<user> since it was read (auth_changed
 * makes that write after every change), nor of wx:ver:auth (bumped after
 * a Redis outage in which such a write may have been lost), and this
 * host's write count of "auth" is unchanged.  A cached read with a token
 * thus costs no round trip in the common case.  When nothing can be
 * vouched for (Redis down) every check reads PostgreSQL; when that fails
 * too, auth_fail_open decides: a read may then be served to a token whose
 * signature holds, as a plain user; a write is answered 503.
 *
 * A 401 carries WWW-Authenticate (RFC 6750) and an envelope code that
 * tells the client what to do: 40101 expired (refresh now), 40102
 * invalid or revoked (log in again).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "log.h"
#include "util.h"

#define VERDICTS	1024
#define VERDICT_MAX_S	60
#define CHANGED_TTL	"10"	/* seconds the wx:rv: key outlives its write */
#define TOKENS		256
#define TOKEN_KEEP	512	/* the longest token kept (ours: about 420) */

/*
 * A token that verified, kept so that the next request with it (a client
 * sends the same one for its whole life) is spared the HMAC and the JSON:
 * only its expiry is checked again, the one claim that time changes.
 */
struct seen_token {
	uint64_t		hash;
	size_t			len;	/* 0: an empty slot */
	char			tok[TOKEN_KEEP];
	struct token_claims	cl;
};

struct verdict {
	long long	 user_id;	/* 0: an empty slot */
	char		 fam[TOKEN_FAM_MAX];
	int		 exists;	/* the user has not been deleted */
	int		 admin;
	int		 fam_revoked;
	long long	 gen;		/* the user's token generation */
	struct nc_stamp	 stamp;
	int64_t		 born_us;
};

int
auth_init(struct app *app)
{
	if ((app->verdicts = calloc(VERDICTS, sizeof(*app->verdicts))) == NULL ||
	    (app->seen = calloc(TOKENS, sizeof(*app->seen))) == NULL) {
		auth_free(app);
		return -1;
	}
	return 0;
}

void
auth_free(struct app *app)
{
	free(app->verdicts);
	free(app->seen);
	app->verdicts = NULL;
	app->seen = NULL;
}

/* token_verify, or what it said of the same token before. */
static enum token_result
verify(struct app *app, const char *tok, long long now,
    struct token_claims *cl)
{
	size_t			 n = strlen(tok);
	uint64_t		 h = util_fnv1a(UTIL_FNV_INIT, tok, n);
	struct seen_token	*s = &app->seen[h % TOKENS];
	enum token_result	 rc;

	if (s->len == n && s->hash == h && memcmp(s->tok, tok, n) == 0) {
		*cl = s->cl;
		return now > cl->exp + app->tok.leeway ? TOKEN_EXPIRED :
		    TOKEN_VALID;
	}
	if ((rc = token_verify(&app->tok, tok, now, cl)) == TOKEN_VALID &&
	    n < sizeof(s->tok)) {
		s->hash = h;
		s->len = n;
		memcpy(s->tok, tok, n);
		s->cl = *cl;
	}
	return rc;
}

/* Keep why the request is refused, for auth_refuse. */
static int
refuse(struct app *app, int code, const char *why)
{
	app->auth_code = code;
	app->auth_why = why;
	return -1;
}

void
auth_refuse(struct app *app, struct resp *rs)
{
	resp_error(rs, app->auth_code, "%s", app->auth_why);
	switch (app->auth_code) {
	case API_UNAUTHORIZED:
		resp_header_str(rs, "WWW-Authenticate", "Bearer");
		break;
	case API_TOKEN_EXPIRED:
	case API_TOKEN_INVALID:
		resp_header(rs, "WWW-Authenticate", "Bearer error=\"invalid_token"
		    "\", error_description=\"%s\"", app->auth_why);
		break;
	case API_DB_UNAVAILABLE:
		resp_header_str(rs, "Retry-After", "1");
		break;
	default:
		break;
	}
}

/* The slot of a session. */
static struct verdict *
slot_of(struct app *app, long long user_id, const char *fam)
{
	uint64_t	h;

	h = util_fnv1a(UTIL_FNV_INIT, &user_id, sizeof(user_id));
	h = util_fnv1a(h, fam, strlen(fam));
	return &app->verdicts[h % VERDICTS];
}

/*
 * The session state of the token's user and family: from this
 * responder's verdict while it is vouched for, else from PostgreSQL.
 * NULL when neither can be had.
 */
static const struct verdict *
verdict(struct app *app, const struct token_claims *cl)
{
	struct verdict	*v = slot_of(app, cl->user_id, cl->fam);
	struct nc_stamp	 stamp = { 0 };
	const char	*params[2], *errstr;
	char		 uid[24];
	PGresult	*res;
	long long	 gen = 0;
	int		 vouched, n;

	if (v->user_id == cl->user_id && strcmp(v->fam, cl->fam) == 0 &&
	    util_mono_us() - v->born_us < VERDICT_MAX_S * 1000000LL &&
	    nearcache_current(&app->near, &app->cache, &v->stamp))
		return v;
	n = snprintf(uid, sizeof(uid), "%lld", cl->user_id);
	if (n < 0 || (size_t)n >= sizeof(uid))
		return NULL;
	/* Before the read: a change from now on outdates what it returns. */
	vouched = nearcache_stamp(&app->near, &app->cache, COLL_AUTH, uid,
	    &stamp);
	params[0] = uid;
	params[1] = cl->fam;
	if (db_exec(&app->db, STMT_AUTH_STATE, params, &res) != DB_OK)
		return NULL;
	if (PQntuples(res) == 1 && util_strtonum(PQgetvalue(res, 0, AS_GEN), 0,
	    LLONG_MAX, &gen, &errstr) == -1) {
		log_error("auth: token generation of user %s: %s", uid, errstr);
		PQclear(res);
		return NULL;
	}
	v->user_id = vouched ? cl->user_id : 0;
	memcpy(v->fam, cl->fam, sizeof(v->fam));
	v->exists = PQntuples(res) == 1;
	v->admin = v->exists && *PQgetvalue(res, 0, AS_ADMIN) == 't';
	v->gen = gen;
	v->fam_revoked = v->exists &&
	    *PQgetvalue(res, 0, AS_FAM_REVOKED) == 't';
	v->stamp = stamp;
	v->born_us = util_mono_us();
	PQclear(res);
	return v;
}

/* The token's session is live: 0, or -1 with the refusal kept. */
static int
session_live(struct app *app, struct req *rq, const struct token_claims *cl)
{
	const struct verdict	*v;
	int			 open;

	if ((v = verdict(app, cl)) == NULL) {
		open = app->cfg.auth_fail_open == AUTH_OPEN_ALL ||
		    (app->cfg.auth_fail_open == AUTH_OPEN_READ &&
		    app_route_of(rq)->rate == RATE_READ);
		if (!app->auth_blind)
			log_warn("auth: session state unavailable: requests "
			    "that auth_fail_open allows are accepted on the "
			    "signature alone, others refused");
		app->auth_blind = 1;
		/* Accepted as a plain user: who.admin stays 0. */
		return open ? 0 : refuse(app, API_DB_UNAVAILABLE,
		    "the session cannot be checked now; retry");
	}
	if (app->auth_blind)
		log_info("auth: session state available again");
	app->auth_blind = 0;
	if (!v->exists)
		return refuse(app, API_TOKEN_INVALID,
		    "access token revoked: the account is gone");
	if (v->fam_revoked || v->gen != cl->gen)
		return refuse(app, API_TOKEN_INVALID, "access token revoked");
	app->who.admin = v->admin;
	return 0;
}

int
auth_identify(struct app *app, struct req *rq)
{
	struct token_claims	 cl;
	const char		*h = rq->authorization;
	unsigned		 flags = app_route_of(rq)->flags;

	memset(&app->who, 0, sizeof(app->who));
	if (flags & ROUTE_TOKENLESS)
		return 0;
	/* The pool's figures: this host, and whom status_allow names. */
	if (flags & ROUTE_LOOPBACK)
		return strcmp(rq->remote_addr, "127.0.0.1") == 0 ||
		    strcmp(rq->remote_addr, "::1") == 0 ||
		    util_cidr_match(app->cfg.status_allow,
		    rq->remote_addr) == 1 ? 0 : refuse(app, API_FORBIDDEN,
		    "for local clients only");
	if (h == NULL)
		return flags & (ROUTE_USER | ROUTE_ADMIN) ?
		    refuse(app, API_UNAUTHORIZED, "an access token is required") :
		    0;
	if (strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0')
		return refuse(app, API_UNAUTHORIZED,
		    "the Authorization header must be `Bearer <access token>`");
	switch (verify(app, h + 7, (long long)(util_wall_us() / 1000000),
	    &cl)) {
	case TOKEN_VALID:
		break;
	case TOKEN_EXPIRED:
		return refuse(app, API_TOKEN_EXPIRED, "access token expired");
	case TOKEN_STALE:
		return refuse(app, API_TOKEN_EXPIRED,
		    "access token of an earlier format: refresh it");
	case TOKEN_INVALID:
		return refuse(app, API_TOKEN_INVALID, "access token invalid");
	}
	app->who.user_id = cl.user_id;
	app->who.fam = arena_strdup(rq->a, cl.fam);
	if (session_live(app, rq, &cl) == -1) {
		app->who.user_id = 0;
		return -1;
	}
	if ((flags & ROUTE_ADMIN) && !app->who.admin)
		return refuse(app, API_FORBIDDEN, "for administrators only");
	return 0;
}

int
auth_changed(struct cache *cc, uint64_t *changes, long long user_id)
{
	char		 key[64];
	const char	*argv[5];
	size_t		 argvlen[5];
	redisReply	*r;
	int		 n;

	n = snprintf(key, sizeof(key), KEY_SESSION_PREFIX "%lld", user_id);
	if (n < 0 || (size_t)n >= sizeof(key))
		return -1;
	argv[0] = "SET", argv[1] = key, argv[2] = "1";
	argv[3] = "EX", argv[4] = CHANGED_TTL;
	argvlen[0] = 3, argvlen[1] = (size_t)n, argvlen[2] = 1;
	argvlen[3] = 2, argvlen[4] = strlen(CHANGED_TTL);
	if (cache_cmd(cc, &r, 5, argv, argvlen) == CACHE_OK) {
		freeReplyObject(r);
		return 0;
	}
	/*
	 * This host forgets every verdict now; the others when Redis is
	 * back, since the reconnect bumps every collection, auth included
	 * (httpcache_recover).
	 */
	if (changes != NULL)
		nearcache_wrote(changes, COLL_AUTH);
	log_warn("auth: the session of user %lld changed while redis is "
	    "unavailable; other hosts learn it when redis is back", user_id);
	return -1;
}

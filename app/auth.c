/*
 * auth: the Bearer check in front of ROUTE_AUTH routes.  A 401 carries
 * WWW-Authenticate (RFC 6750) and an envelope code that tells the client
 * what to do: 40101 expired (refresh now), 40102 invalid (log in again).
 */
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "log.h"
#include "token.h"
#include "util.h"

static int
auth_fail(struct resp *rs, enum api_code code, const char *why)
{
	resp_error(rs, code, "%s", why);
	resp_header(rs, "WWW-Authenticate",
	    "Bearer error=\"invalid_token\", error_description=\"%s\"", why);
	return -1;
}

/*
 * Is a verified token revoked?  Its jti is denied after a logout, and
 * every token of a user issued before `wxappctl user revoke` is.  Both are
 * read in one round trip.  With Redis down the lists cannot be read: the
 * token is accepted (it lives minutes) and the lapse is logged, rather
 * than failing every call.
 */
static int
auth_revoked(struct app *app, struct arena *a, const struct token_claims *cl)
{
	const char	*argv[3], *errstr;
	size_t		 argvlen[3];
	redisReply	*r;
	long long	 before;
	int		 revoked = 0;

	argv[0] = "MGET";
	argv[1] = arena_printf(a, KEY_DENY_JTI, cl->jti);
	argv[2] = arena_printf(a, KEY_REVOKED, cl->user_id);
	argvlen[0] = 4, argvlen[1] = strlen(argv[1]), argvlen[2] = strlen(argv[2]);
	if (cache_cmd(&app->cache, &r, 3, argv, argvlen) != CACHE_OK) {
		log_warn("auth: redis unavailable, revocations not checked");
		return 0;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
		revoked = r->element[0]->type == REDIS_REPLY_STRING;
		if (r->element[1]->type == REDIS_REPLY_STRING &&
		    util_strtonum(r->element[1]->str, 0, LLONG_MAX, &before,
		    &errstr) == 0 && cl->iat <= before)
			revoked = 1;
	}
	freeReplyObject(r);
	return revoked;
}

int
auth_require(struct app *app, struct req *rq, struct resp *rs)
{
	struct token_claims	 cl;
	const char		*h;

	h = rq->authorization;
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0') {
		resp_error(rs, API_UNAUTHORIZED, "an access token is required");
		resp_header(rs, "WWW-Authenticate", "Bearer");
		return -1;
	}
	switch (token_verify(&app->cfg, h + 7, &cl)) {
	case TOKEN_VALID:
		break;
	case TOKEN_EXPIRED:
		return auth_fail(rs, API_TOKEN_EXPIRED, "access token expired");
	case TOKEN_INVALID:
		return auth_fail(rs, API_TOKEN_INVALID, "access token invalid");
	}
	if (auth_revoked(app, rq->a, &cl))
		return auth_fail(rs, API_TOKEN_INVALID, "access token revoked");
	rq->user_id = cl.user_id;
	rq->jti = arena_strdup(rq->a, cl.jti);
	rq->token_exp = cl.exp;
	return 0;
}

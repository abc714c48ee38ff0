/*
 * auth: the Bearer check in front of ROUTE_AUTH routes.  A 401 carries
 * WWW-Authenticate (RFC 6750) and an envelope code that tells the client
 * what to do: 40101 expired (refresh now), 40102 invalid (log in again).
 */
#include <string.h>
#include <strings.h>

#include "app.h"
#include "log.h"
#include "token.h"

static int
auth_fail(struct resp *rs, enum api_code code, const char *why)
{
	resp_error(rs, code, "%s", why);
	resp_header(rs, "WWW-Authenticate",
	    "Bearer error=\"invalid_token\", error_description=\"%s\"", why);
	return -1;
}

int
auth_require(struct app *app, struct req *rq, struct resp *rs)
{
	struct token_claims	 cl;
	const char		*h, *key;
	int			 denied;

	h = req_param(rq, "HTTP_AUTHORIZATION");
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
	/*
	 * A logged-out token is denied until it expires.  With Redis down
	 * the deny list cannot be read: the token is accepted (it lives
	 * minutes) and the lapse is logged, rather than failing every call.
	 */
	key = arena_printf(rq->a, KEY_DENY_JTI, cl.jti);
	if (cache_exists(&app->cache, key, &denied) != CACHE_OK)
		log_warn("auth: redis unavailable, deny list not checked");
	else if (denied)
		return auth_fail(rs, API_TOKEN_INVALID, "access token revoked");
	rq->user_id = cl.user_id;
	rq->jti = arena_strdup(rq->a, cl.jti);
	rq->token_exp = cl.exp;
	return 0;
}

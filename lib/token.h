/*
 * token: access tokens.  Owns issuing and verifying the short-lived JWT:
 * a JWS signed with HMAC-SHA-256, explicitly typed `at+jwt` (RFC 9068),
 * with the header's kid naming one of two keys (key rotation), and the
 * claims iss, aud, client_id, sub, iat, exp, jti, fam (the refresh family
 * the token was issued to) and gen (the user's token generation then).
 *
 * Verification follows RFC 8725: the algorithm is pinned to HS256 before
 * anything else is trusted, a `crit` header is refused (no extension is
 * understood), every claim must have its type (a string `exp` is
 * invalid, not expired), every time claim is range-checked before any
 * arithmetic, nbf is enforced, and iat may not lie in the future nor
 * exp - iat exceed the configured lifetime.
 *
 * A token of the earlier format (typ JWT, no fam and gen) whose signature
 * holds is TOKEN_STALE: the client refreshes it like an expired one, so an
 * upgrade logs nobody out.
 *
 * JWS is done here with OpenSSL's HMAC rather than libjwt 1.10, which
 * writes typ JWT into every token it signs and refuses any other typ.
 */
#ifndef WX_TOKEN_H
#define WX_TOKEN_H

#include "arena.h"

#define TOKEN_JTI_MAX	32
#define TOKEN_FAM_MAX	32
#define TOKEN_TIME_MAX	253402300799LL	/* 9999-12-31T23:59:59Z */

struct token_opts {
	const char	*kid;		/* the key tokens are signed with */
	const char	*secret;
	const char	*prev_kid;	/* a previous key, still verified; "" */
	const char	*prev_secret;
	const char	*issuer;
	const char	*audience;
	const char	*client_id;
	long long	 leeway;	/* seconds of clock skew allowed */
	long long	 max_ttl;	/* the most exp - iat may be */
};

enum token_result {
	TOKEN_VALID,
	TOKEN_EXPIRED,		/* good signature, past exp + leeway: refresh */
	TOKEN_STALE,		/* good signature, earlier format: refresh */
	TOKEN_INVALID		/* anything else: log in again */
};

struct token_claims {
	long long	user_id;
	long long	gen;		/* the user's token generation */
	long long	iat;
	long long	exp;
	char		jti[TOKEN_JTI_MAX];
	char		fam[TOKEN_FAM_MAX];	/* the refresh family */
};

/*
 * Issue a token for cl->user_id, cl->fam and cl->gen living ttl seconds
 * (at most max_ttl); fills cl's jti, iat and exp.  0, or -1.
 */
int	token_issue(const struct token_opts *, long long ttl, struct arena *,
	    const char **token, struct token_claims *cl);
/* Verify a compact JWS at now (unix seconds); cl is filled when VALID. */
enum token_result token_verify(const struct token_opts *, const char *token,
	    long long now, struct token_claims *cl);

#endif

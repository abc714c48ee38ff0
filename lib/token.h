/*
 * token: access tokens.  Owns issuing and verifying the short-lived JWT
 * (HS256 via libjwt) with its kid, iss, aud, sub, iat, exp and jti, and
 * key rotation (the previous kid + secret still verify).  Named `token`
 * because libjwt owns the jwt_ prefix and <jwt.h>.
 *
 * libjwt 1.10 checks no claims and takes the algorithm from the token, and
 * jwt_decode with an empty key skips the signature: so the header is read
 * and pinned to HS256 and a known kid here before libjwt sees the token,
 * the algorithm is checked again after, and every claim is checked here.
 */
#ifndef WX_TOKEN_H
#define WX_TOKEN_H

#include "arena.h"
#include "config.h"

#define TOKEN_JTI_MAX	32

enum token_result {
	TOKEN_VALID,
	TOKEN_EXPIRED,		/* good signature, past exp + leeway: refresh */
	TOKEN_INVALID		/* anything else: log in again */
};

struct token_claims {
	long long	user_id;
	long long	iat;
	long long	exp;
	char		jti[TOKEN_JTI_MAX];
};

/* Issue an access token for user_id living ttl seconds; 0 or -1. */
int	token_issue(const struct config *, long long user_id, long long ttl,
	    struct arena *, const char **token, struct token_claims *);
/* Verify a compact JWT; claims are filled when TOKEN_VALID. */
enum token_result token_verify(const struct config *, const char *token,
	    struct token_claims *);

#endif

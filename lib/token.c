/*
 * token: JWT access tokens over libjwt 1.10.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <jwt.h>

#include "crypto.h"
#include "jsonparse.h"
#include "token.h"
#include "util.h"

#define TOKEN_HEADER_MAX	512

int
token_issue(const struct config *cfg, long long user_id, long long ttl,
    struct arena *a, const char **token, struct token_claims *cl)
{
	jwt_t		*jwt = NULL;
	char		*enc = NULL, sub[24];
	time_t		 now = time(NULL);
	int		 rc = -1, n;

	n = snprintf(sub, sizeof(sub), "%lld", user_id);
	if (n < 0 || (size_t)n >= sizeof(sub) ||
	    crypto_random_b64url(16, cl->jti) == -1)
		return -1;
	cl->user_id = user_id;
	cl->iat = (long long)now;
	cl->exp = (long long)now + ttl;
	if (jwt_new(&jwt) != 0 ||
	    jwt_set_alg(jwt, JWT_ALG_HS256,
	    (const unsigned char *)cfg->jwt_secret,
	    (int)strlen(cfg->jwt_secret)) != 0 ||
	    jwt_add_header(jwt, "kid", cfg->jwt_kid) != 0 ||
	    jwt_add_grant(jwt, "iss", cfg->jwt_issuer) != 0 ||
	    jwt_add_grant(jwt, "aud", cfg->jwt_audience) != 0 ||
	    jwt_add_grant(jwt, "sub", sub) != 0 ||
	    jwt_add_grant(jwt, "jti", cl->jti) != 0 ||
	    jwt_add_grant_int(jwt, "iat", (long)cl->iat) != 0 ||
	    jwt_add_grant_int(jwt, "exp", (long)cl->exp) != 0 ||
	    (enc = jwt_encode_str(jwt)) == NULL)
		goto fail;
	*token = arena_strdup(a, enc);
	rc = 0;
fail:
	free(enc);
	jwt_free(jwt);
	return rc;
}

/*
 * Read the JOSE header without trusting it: it must say alg HS256 and name
 * a kid we hold.  Returns the secret for that kid, or NULL.
 */
static const char *
token_pick_key(const struct config *cfg, const char *tok)
{
	unsigned char		 raw[TOKEN_HEADER_MAX];
	struct json_object	*hdr = NULL, *alg, *kid;
	const char		*dot, *key = NULL, *k;
	size_t			 n, rawlen, at;
	const char		*why;

	if ((dot = strchr(tok, '.')) == NULL)
		return NULL;
	n = (size_t)(dot - tok);
	if (n == 0 || n > TOKEN_HEADER_MAX * 4 / 3 ||
	    crypto_b64url_decode(tok, n, raw, &rawlen) == -1)
		return NULL;
	if (jsonparse_bytes((const char *)raw, rawlen, &hdr, &at, &why) == -1)
		return NULL;
	if (!json_object_object_get_ex(hdr, "alg", &alg) ||
	    !json_object_is_type(alg, json_type_string) ||
	    strcmp(json_object_get_string(alg), "HS256") != 0 ||
	    !json_object_object_get_ex(hdr, "kid", &kid) ||
	    !json_object_is_type(kid, json_type_string))
		goto done;
	k = json_object_get_string(kid);
	if (strcmp(k, cfg->jwt_kid) == 0)
		key = cfg->jwt_secret;
	else if (cfg->jwt_prev_kid[0] != '\0' &&
	    strcmp(k, cfg->jwt_prev_kid) == 0)
		key = cfg->jwt_prev_secret;
done:
	json_object_put(hdr);
	return key;
}

enum token_result
token_verify(const struct config *cfg, const char *tok,
    struct token_claims *cl)
{
	jwt_t			*jwt = NULL;
	const char		*key, *s, *errstr;
	long			 exp, iat;
	enum token_result	 rc = TOKEN_INVALID;

	if ((key = token_pick_key(cfg, tok)) == NULL || key[0] == '\0')
		return TOKEN_INVALID;
	if (jwt_decode(&jwt, tok, (const unsigned char *)key,
	    (int)strlen(key)) != 0 || jwt_get_alg(jwt) != JWT_ALG_HS256)
		goto done;
	if ((s = jwt_get_grant(jwt, "iss")) == NULL ||
	    strcmp(s, cfg->jwt_issuer) != 0 ||
	    (s = jwt_get_grant(jwt, "aud")) == NULL ||
	    strcmp(s, cfg->jwt_audience) != 0)
		goto done;
	if ((s = jwt_get_grant(jwt, "sub")) == NULL ||
	    util_strtonum(s, 1, INT64_MAX, &cl->user_id, &errstr) == -1)
		goto done;
	if ((s = jwt_get_grant(jwt, "jti")) == NULL || s[0] == '\0' ||
	    strlen(s) >= sizeof(cl->jti))
		goto done;
	memcpy(cl->jti, s, strlen(s) + 1);
	errno = 0;
	exp = jwt_get_grant_int(jwt, "exp");
	if (errno != 0)
		goto done;
	iat = jwt_get_grant_int(jwt, "iat");
	if (errno != 0)
		goto done;
	cl->exp = exp;
	cl->iat = iat;
	rc = (long long)time(NULL) > cl->exp + cfg->jwt_leeway ?
	    TOKEN_EXPIRED : TOKEN_VALID;
done:
	jwt_free(jwt);
	return rc;
}

/*
 * token: HS256 JWS access tokens, issued and verified with OpenSSL's HMAC
 * and json-c.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "crypto.h"
#include "jsonparse.h"
#include "token.h"
#include "util.h"

#define TOKEN_MAX		2048	/* characters of a whole token */
#define TOKEN_PART_MAX		1024	/* decoded bytes of header or claims */
#define TOKEN_SIG_B64		43	/* 32 bytes of base64url, no padding */

/* The header every token carries (RFC 9068 2.1), before its kid. */
#define HEADER_HEAD	"{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":"

/* Append the base64url form of buf b's bytes to out. */
static void
add_b64url(struct buf *out, struct buf *b)
{
	char	*enc = arena_alloc(out->a, (b->len + 2) / 3 * 4 + 1);

	crypto_b64url_encode((const unsigned char *)b->p, b->len, enc);
	buf_adds(out, enc);
}

int
token_issue(const struct token_opts *o, long long ttl, struct arena *a,
    const char **token, struct token_claims *cl)
{
	struct buf	 hdr, body, out;
	unsigned char	 mac[32];
	char		 sig[TOKEN_SIG_B64 + 1];
	long long	 now = (long long)(util_wall_us() / 1000000);

	if (ttl < 1 || ttl > o->max_ttl || cl->user_id < 1 || cl->gen < 0 ||
	    cl->fam[0] == '\0' || strlen(cl->fam) >= TOKEN_FAM_MAX ||
	    o->secret == NULL || o->secret[0] == '\0' ||
	    crypto_random_b64url(16, cl->jti) == -1)
		return -1;
	cl->iat = now;
	cl->exp = now + ttl;
	buf_init(&hdr, a, 96);
	buf_adds(&hdr, HEADER_HEAD);
	buf_json_str(&hdr, o->kid, strlen(o->kid));
	buf_addc(&hdr, '}');
	buf_init(&body, a, 320);
	buf_adds(&body, "{\"iss\":");
	buf_json_str(&body, o->issuer, strlen(o->issuer));
	buf_adds(&body, ",\"aud\":");
	buf_json_str(&body, o->audience, strlen(o->audience));
	buf_adds(&body, ",\"client_id\":");
	buf_json_str(&body, o->client_id, strlen(o->client_id));
	buf_adds(&body, ",\"sub\":\"");
	buf_addll(&body, cl->user_id);
	buf_adds(&body, "\",\"iat\":");
	buf_addll(&body, cl->iat);
	buf_adds(&body, ",\"exp\":");
	buf_addll(&body, cl->exp);
	buf_adds(&body, ",\"jti\":");
	buf_json_str(&body, cl->jti, strlen(cl->jti));
	buf_adds(&body, ",\"fam\":");
	buf_json_str(&body, cl->fam, strlen(cl->fam));
	buf_adds(&body, ",\"gen\":");
	buf_addll(&body, cl->gen);
	buf_addc(&body, '}');
	buf_init(&out, a, 512);
	add_b64url(&out, &hdr);
	buf_addc(&out, '.');
	add_b64url(&out, &body);
	crypto_hmac_sha256(o->secret, strlen(o->secret), out.p, out.len, mac);
	crypto_b64url_encode(mac, sizeof(mac), sig);
	buf_addc(&out, '.');
	buf_adds(&out, sig);
	*token = buf_cstr(&out);
	return 0;
}

/* Decode a base64url part of n characters and parse it as a JSON object. */
static struct json_object *
part_json(const char *s, size_t n)
{
	unsigned char		 raw[TOKEN_PART_MAX];
	struct json_object	*obj = NULL;
	struct jsonparse_err	 err;
	size_t			 len;

	if (n == 0 || n > TOKEN_PART_MAX * 4 / 3 ||
	    crypto_b64url_decode(s, n, raw, &len) == -1 ||
	    jsonparse_bytes((const char *)raw, len, &obj, &err) == -1)
		return NULL;
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* The string member name of obj, or NULL (absent, or not a string). */
static const char *
member_str(struct json_object *obj, const char *name)
{
	return jsonparse_string(obj, name);
}

/*
 * The integer member name of obj in [0, max] into *v: 1 when it is
 * there, 0 when absent, -1 when it is there but of another type or range.
 */
static int
member_int(struct json_object *obj, const char *name, long long max,
    long long *v)
{
	struct json_object	*m;
	int64_t			 n;

	if (!json_object_object_get_ex(obj, name, &m))
		return 0;
	if (!json_object_is_type(m, json_type_int))
		return -1;
	errno = 0;
	n = json_object_get_int64(m);
	if (errno != 0 || n < 0 || n > max)
		return -1;
	*v = (long long)n;
	return 1;
}

/* Copy the string member name (1 to cap - 1 bytes) into dst; 0 or -1. */
static int
member_copy(struct json_object *obj, const char *name, char *dst, size_t cap)
{
	const char	*s = member_str(obj, name);
	size_t		 n;

	if (s == NULL || (n = strlen(s)) == 0 || n >= cap)
		return -1;
	memcpy(dst, s, n + 1);
	return 0;
}

/*
 * Check the JOSE header: alg HS256 (before anything else is believed), no
 * crit, a kid we hold.  Returns its secret, or NULL; *legacy is set for
 * a token of the earlier format (typ JWT or none).
 */
static const char *
header_key(const struct token_opts *o, struct json_object *hdr, int *legacy)
{
	const char	*alg, *typ, *kid;

	if ((alg = member_str(hdr, "alg")) == NULL ||
	    strcmp(alg, "HS256") != 0 ||
	    json_object_object_get_ex(hdr, "crit", NULL))
		return NULL;
	typ = member_str(hdr, "typ");
	if (typ != NULL && (strcasecmp(typ, "at+jwt") == 0 ||
	    strcasecmp(typ, "application/at+jwt") == 0))
		*legacy = 0;
	else if (typ == NULL ? !json_object_object_get_ex(hdr, "typ", NULL) :
	    strcasecmp(typ, "JWT") == 0)
		*legacy = 1;
	else
		return NULL;
	if ((kid = member_str(hdr, "kid")) == NULL)
		return NULL;
	if (o->kid[0] != '\0' && strcmp(kid, o->kid) == 0)
		return o->secret;
	if (o->prev_kid[0] != '\0' && strcmp(kid, o->prev_kid) == 0)
		return o->prev_secret;
	return NULL;
}

/* 1 when sig (base64url) is the HMAC of the signing input under key. */
static int
signature_ok(const char *key, const char *input, size_t n, const char *sig,
    size_t siglen)
{
	unsigned char	want[32], got[33];
	size_t		len;

	if (key == NULL || key[0] == '\0' || siglen != TOKEN_SIG_B64 ||
	    crypto_b64url_decode(sig, siglen, got, &len) == -1 || len != 32)
		return 0;
	crypto_hmac_sha256(key, strlen(key), input, n, want);
	return crypto_equal(want, got, sizeof(want));
}

/* The claims of a token whose signature holds; the verdict. */
static enum token_result
claims_check(const struct token_opts *o, struct json_object *c, long long now,
    int legacy, struct token_claims *cl)
{
	const char	*s, *errstr;
	long long	 nbf;
	int		 has_nbf, has_gen;

	if ((s = member_str(c, "iss")) == NULL || strcmp(s, o->issuer) != 0 ||
	    (s = member_str(c, "aud")) == NULL || strcmp(s, o->audience) != 0 ||
	    (s = member_str(c, "sub")) == NULL || s[0] < '1' || s[0] > '9' ||
	    util_strtonum(s, 1, INT64_MAX, &cl->user_id, &errstr) == -1 ||
	    member_copy(c, "jti", cl->jti, sizeof(cl->jti)) == -1 ||
	    member_int(c, "exp", TOKEN_TIME_MAX, &cl->exp) != 1 ||
	    member_int(c, "iat", TOKEN_TIME_MAX, &cl->iat) != 1 ||
	    (has_nbf = member_int(c, "nbf", TOKEN_TIME_MAX, &nbf)) == -1 ||
	    (has_gen = member_int(c, "gen", INT64_MAX, &cl->gen)) == -1)
		return TOKEN_INVALID;
	/* Every value is range-checked: no sum below can overflow. */
	if (cl->iat > now + o->leeway || cl->exp < cl->iat ||
	    cl->exp - cl->iat > o->max_ttl ||
	    (has_nbf && nbf > now + o->leeway))
		return TOKEN_INVALID;
	if (now > cl->exp + o->leeway)
		return TOKEN_EXPIRED;
	if (legacy)
		return TOKEN_STALE;
	if ((s = member_str(c, "client_id")) == NULL ||
	    strcmp(s, o->client_id) != 0 || !has_gen ||
	    member_copy(c, "fam", cl->fam, sizeof(cl->fam)) == -1)
		return TOKEN_INVALID;
	return TOKEN_VALID;
}

enum token_result
token_verify(const struct token_opts *o, const char *tok, long long now,
    struct token_claims *cl)
{
	struct json_object	*hdr = NULL, *claims = NULL;
	const char		*d1, *d2, *key;
	size_t			 n;
	int			 legacy = 0;
	enum token_result	 rc = TOKEN_INVALID;

	memset(cl, 0, sizeof(*cl));
	if (now < 0 || now > TOKEN_TIME_MAX ||
	    (n = strlen(tok)) > TOKEN_MAX || (d1 = strchr(tok, '.')) == NULL ||
	    (d2 = strchr(d1 + 1, '.')) == NULL || strchr(d2 + 1, '.') != NULL)
		return TOKEN_INVALID;
	if ((hdr = part_json(tok, (size_t)(d1 - tok))) == NULL ||
	    (key = header_key(o, hdr, &legacy)) == NULL ||
	    !signature_ok(key, tok, (size_t)(d2 - tok), d2 + 1,
	    n - (size_t)(d2 + 1 - tok)) ||
	    (claims = part_json(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL)
		goto done;
	rc = claims_check(o, claims, now, legacy, cl);
done:
	json_object_put(claims);
	json_object_put(hdr);
	return rc;
}

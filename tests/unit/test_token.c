/*
 * Unit tests for lib/token: issue, verify, and every way to be rejected
 * (RFC 8725).  Tokens with chosen headers and claims are signed here with
 * crypto_hmac_sha256, whose output test_crypto checks against RFC 7515's
 * own example.
 */
#include "check_run.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "crypto.h"
#include "token.h"
#include "util.h"

#define SECRET1	"0123456789abcdef0123456789abcdef-one"
#define SECRET2	"0123456789abcdef0123456789abcdef-two"
#define NOW	1800000000LL

static struct token_opts	o;
static struct arena		a;

static void
setup(void)
{
	memset(&o, 0, sizeof(o));
	o.kid = "k1";
	o.secret = SECRET1;
	o.prev_kid = "";
	o.prev_secret = "";
	o.issuer = "wxapp";
	o.audience = "wxapp-miniprogram";
	o.client_id = "wx0123456789abcdef";
	o.leeway = 30;
	o.max_ttl = 900;
	arena_init(&a, 4096, 2);
}

static void
teardown(void)
{
	arena_free(&a);
}

static const char *
issue(long long ttl, struct token_claims *cl)
{
	const char	*t;

	memset(cl, 0, sizeof(*cl));
	cl->user_id = 42;
	cl->gen = 3;
	strcpy(cl->fam, "family-1");
	ck_assert_int_eq(token_issue(&o, ttl, &a, &t, cl), 0);
	return t;
}

/* A token of this header and payload JSON, signed with secret. */
static const char *
sign(const char *hdr, const char *payload, const char *secret)
{
	unsigned char	 mac[32];
	char		 h[512], p[1024], sig[64];
	const char	*input;

	crypto_b64url_encode((const unsigned char *)hdr, strlen(hdr), h);
	crypto_b64url_encode((const unsigned char *)payload, strlen(payload),
	    p);
	input = arena_printf(&a, "%s.%s", h, p);
	crypto_hmac_sha256(secret, strlen(secret), input, strlen(input), mac);
	crypto_b64url_encode(mac, sizeof(mac), sig);
	return arena_printf(&a, "%s.%s", input, sig);
}

#define HDR	"{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}"

/* Claims as issued, with one member replaced (or added) by extra. */
static const char *
claims(const char *extra)
{
	return arena_printf(&a, "{\"iss\":\"wxapp\",\"aud\":\"wxapp-miniprogram\","
	    "\"client_id\":\"wx0123456789abcdef\",\"sub\":\"42\",\"iat\":%lld,"
	    "\"exp\":%lld,\"jti\":\"j1\",\"fam\":\"f1\",\"gen\":0%s%s}", NOW,
	    NOW + 900, extra[0] != '\0' ? "," : "", extra);
}

static enum token_result
verify(const char *t)
{
	struct token_claims	cl;

	return token_verify(&o, t, NOW, &cl);
}

START_TEST(valid_token_round_trip)
{
	struct token_claims	 in, cl;
	struct json_object	*hdr;
	const char		*t = issue(900, &in);
	unsigned char		 raw[256];
	size_t			 n;

	ck_assert_int_eq(token_verify(&o, t, in.iat, &cl), TOKEN_VALID);
	ck_assert_int_eq(cl.user_id, 42);
	ck_assert_int_eq(cl.gen, 3);
	ck_assert_str_eq(cl.fam, "family-1");
	ck_assert_str_eq(cl.jti, in.jti);
	ck_assert_uint_gt(strlen(cl.jti), 10);
	ck_assert_int_eq(cl.exp, in.iat + 900);
	/* Explicitly typed (RFC 9068). */
	ck_assert_int_eq(crypto_b64url_decode(t, (size_t)(strchr(t, '.') - t),
	    raw, &n), 0);
	raw[n] = '\0';
	hdr = json_tokener_parse((const char *)raw);
	ck_assert_ptr_nonnull(hdr);
	ck_assert_str_eq(json_object_get_string(json_object_object_get(hdr,
	    "typ")), "at+jwt");
	ck_assert_str_eq(json_object_get_string(json_object_object_get(hdr,
	    "kid")), "k1");
	json_object_put(hdr);
}
END_TEST

START_TEST(expiry_and_leeway)
{
	struct token_claims	 in, cl;
	const char		*t = issue(900, &in);

	ck_assert_int_eq(token_verify(&o, t, in.exp + 29, &cl), TOKEN_VALID);
	ck_assert_int_eq(token_verify(&o, t, in.exp + 31, &cl),
	    TOKEN_EXPIRED);
}
END_TEST

START_TEST(issue_refuses_what_verify_would)
{
	struct token_claims	 cl;
	const char		*t;

	memset(&cl, 0, sizeof(cl));
	cl.user_id = 1;
	ck_assert_int_eq(token_issue(&o, 60, &a, &t, &cl), -1);	/* no fam */
	strcpy(cl.fam, "f");
	ck_assert_int_eq(token_issue(&o, 901, &a, &t, &cl), -1);
	ck_assert_int_eq(token_issue(&o, 0, &a, &t, &cl), -1);
	cl.gen = -1;
	ck_assert_int_eq(token_issue(&o, 60, &a, &t, &cl), -1);
}
END_TEST

START_TEST(tampered_is_invalid)
{
	struct token_claims	 in;
	char			*t = arena_strdup(&a, issue(900, &in));
	char			*dot = strchr(t, '.') + 1;

	*dot = *dot == 'e' ? 'f' : 'e';
	ck_assert_int_eq(verify(t), TOKEN_INVALID);
	ck_assert_int_eq(verify(""), TOKEN_INVALID);
	ck_assert_int_eq(verify("a.b.c"), TOKEN_INVALID);
	ck_assert_int_eq(verify("a.b.c.d"), TOKEN_INVALID);
	ck_assert_int_eq(verify("nodots"), TOKEN_INVALID);
}
END_TEST

START_TEST(other_key_is_invalid)
{
	ck_assert_int_eq(verify(sign(HDR, claims(""), SECRET1)), TOKEN_VALID);
	ck_assert_int_eq(verify(sign(HDR, claims(""), SECRET2)),
	    TOKEN_INVALID);
	/* An empty secret never verifies anything. */
	o.secret = "";
	ck_assert_int_eq(verify(sign(HDR, claims(""), "")), TOKEN_INVALID);
}
END_TEST

START_TEST(header_pins_hs256_and_a_known_kid)
{
	static const char *const bad[] = {
		"{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}",
		"{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}",
		"{\"alg\":\"HS512\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}",
		"{\"alg\":\"hs256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"}",
		"{\"typ\":\"at+jwt\",\"kid\":\"k1\"}",
		"{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}",
		"{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"k9\"}",
		"{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":1}",
		"{\"alg\":\"HS256\",\"typ\":\"dpop+jwt\",\"kid\":\"k1\"}",
		"{\"alg\":\"HS256\",\"typ\":7,\"kid\":\"k1\"}",
		/* No extension is understood: any crit is refused. */
		"{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\","
		    "\"crit\":[\"exp\"]}",
		"{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\","
		    "\"crit\":[]}",
		"[\"alg\",\"HS256\"]",
		"{\"alg\":\"HS256\",\"typ\":\"at+jwt\",\"kid\":\"k1\"",
	};
	size_t	i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(verify(sign(bad[i], claims(""), SECRET1)) ==
		    TOKEN_INVALID, "header %s", bad[i]);
	ck_assert_int_eq(verify(sign("{\"alg\":\"HS256\",\"typ\":"
	    "\"application/at+jwt\",\"kid\":\"k1\"}", claims(""), SECRET1)),
	    TOKEN_VALID);
}
END_TEST

START_TEST(earlier_format_is_stale)
{
	const char	*old = arena_printf(&a, "{\"iss\":\"wxapp\",\"aud\":"
	    "\"wxapp-miniprogram\",\"sub\":\"42\",\"jti\":\"j\",\"iat\":%lld,"
	    "\"exp\":%lld}", NOW, NOW + 900);

	ck_assert_int_eq(verify(sign("{\"alg\":\"HS256\",\"typ\":\"JWT\","
	    "\"kid\":\"k1\"}", old, SECRET1)), TOKEN_STALE);
	ck_assert_int_eq(verify(sign("{\"alg\":\"HS256\",\"kid\":\"k1\"}",
	    old, SECRET1)), TOKEN_STALE);
	/* Stale only when its signature holds. */
	ck_assert_int_eq(verify(sign("{\"alg\":\"HS256\",\"typ\":\"JWT\","
	    "\"kid\":\"k1\"}", old, SECRET2)), TOKEN_INVALID);
	/* The new type without the new claims is not an old token. */
	ck_assert_int_eq(verify(sign(HDR, old, SECRET1)), TOKEN_INVALID);
}
END_TEST

/* A claim replaced: the claims with `name` set to the JSON value. */
static const char *
with(const char *name, const char *value)
{
	struct json_object	*c = json_tokener_parse(claims(""));
	const char		*s;

	ck_assert_ptr_nonnull(c);
	if (value == NULL)
		json_object_object_del(c, name);
	else
		json_object_object_add(c, name, json_tokener_parse(value));
	s = arena_strdup(&a, json_object_to_json_string_ext(c,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(c);
	return sign(HDR, s, SECRET1);
}

START_TEST(claims_of_the_wrong_type_are_invalid)
{
	static const struct {
		const char	*name, *value;
	} bad[] = {
		{ "exp", "\"1900000000\"" }, { "exp", "1.9e9" },
		{ "exp", "-1" }, { "exp", "9223372036854775807" },
		{ "exp", "1e300" }, { "exp", "null" }, { "exp", NULL },
		{ "iat", "\"1800000000\"" }, { "iat", NULL },
		{ "nbf", "\"0\"" }, { "gen", "\"0\"" }, { "gen", NULL },
		{ "gen", "-1" }, { "fam", "1" }, { "fam", "\"\"" },
		{ "fam", NULL }, { "jti", NULL }, { "jti", "5" },
		{ "sub", "42" }, { "sub", "\"+42\"" }, { "sub", "\" 42\"" },
		{ "sub", "\"042\"" }, { "sub", "\"0\"" }, { "sub", NULL },
		{ "iss", "\"evil\"" }, { "iss", NULL },
		{ "aud", "\"other\"" }, { "aud", "[\"wxapp-miniprogram\"]" },
		{ "client_id", "\"wx0000\"" }, { "client_id", NULL },
	};
	size_t	i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(verify(with(bad[i].name, bad[i].value)) ==
		    TOKEN_INVALID, "%s = %s", bad[i].name,
		    bad[i].value ? bad[i].value : "(absent)");
}
END_TEST

START_TEST(time_claims_are_checked_without_overflow)
{
	struct token_claims	cl;
	const char		*t;

	/* Not yet valid, beyond the leeway. */
	ck_assert_int_eq(verify(with("nbf", "1800000100")), TOKEN_INVALID);
	ck_assert_int_eq(verify(with("nbf", "1800000020")), TOKEN_VALID);
	/* Issued in the future. */
	ck_assert_int_eq(verify(with("iat", "1800000100")), TOKEN_INVALID);
	/* Living longer than access_token_ttl, or ending before it began. */
	ck_assert_int_eq(verify(with("exp", "1800000901")), TOKEN_INVALID);
	ck_assert_int_eq(verify(with("exp", "1799999999")), TOKEN_INVALID);
	/* The largest times there are, against the largest leeway. */
	o.leeway = 300;
	t = with("exp", "253402300799");
	ck_assert_int_eq(token_verify(&o, t, INT64_MAX / 2, &cl),
	    TOKEN_INVALID);
	ck_assert_int_eq(verify(with("exp", "253402300800")), TOKEN_INVALID);
}
END_TEST

START_TEST(previous_kid_still_verifies)
{
	struct token_claims	 cl, in;
	const char		*old = issue(900, &in);

	/* Rotate: k2 signs new tokens, k1 still verifies old ones. */
	o.kid = "k2";
	o.secret = SECRET2;
	o.prev_kid = "k1";
	o.prev_secret = SECRET1;
	ck_assert_int_eq(token_verify(&o, old, in.iat, &cl), TOKEN_VALID);
	ck_assert_int_eq(token_verify(&o, issue(900, &in), in.iat, &cl),
	    TOKEN_VALID);
	/* Once k1 is retired, its tokens stop working. */
	o.prev_kid = "";
	o.prev_secret = "";
	ck_assert_int_eq(token_verify(&o, old, in.iat, &cl), TOKEN_INVALID);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("token");
	TCase	*tc = tcase_create("token");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, valid_token_round_trip);
	tcase_add_test(tc, expiry_and_leeway);
	tcase_add_test(tc, issue_refuses_what_verify_would);
	tcase_add_test(tc, tampered_is_invalid);
	tcase_add_test(tc, other_key_is_invalid);
	tcase_add_test(tc, header_pins_hs256_and_a_known_kid);
	tcase_add_test(tc, earlier_format_is_stale);
	tcase_add_test(tc, claims_of_the_wrong_type_are_invalid);
	tcase_add_test(tc, time_claims_are_checked_without_overflow);
	tcase_add_test(tc, previous_kid_still_verifies);
	suite_add_tcase(s, tc);
	return check_run(s);
}

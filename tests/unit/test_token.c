/* Unit tests for lib/token: issue, verify, and every way to be rejected. */
#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "token.h"

static struct config	cfg;
static struct arena	a;

#define SECRET1	"0123456789abcdef0123456789abcdef-one"
#define SECRET2	"0123456789abcdef0123456789abcdef-two"

static void
setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.jwt_secret = SECRET1;
	cfg.jwt_kid = "k1";
	cfg.jwt_prev_secret = "";
	cfg.jwt_prev_kid = "";
	cfg.jwt_issuer = "wxapp";
	cfg.jwt_audience = "wxapp-miniprogram";
	cfg.jwt_leeway = 30;
	arena_init(&a, 4096, 2);
}

static void
teardown(void)
{
	arena_free(&a);
}

static const char *
issue(long long ttl)
{
	struct token_claims	 cl;
	const char		*t;

	ck_assert_int_eq(token_issue(&cfg, 42, ttl, &a, &t, &cl), 0);
	return t;
}

/* A token with the given header and payload JSON and a garbage signature. */
static const char *
forge(const char *hdr, const char *payload, const char *sig)
{
	char	h[512], p[512];

	crypto_b64url_encode((const unsigned char *)hdr, strlen(hdr), h);
	crypto_b64url_encode((const unsigned char *)payload, strlen(payload), p);
	return arena_printf(&a, "%s.%s.%s", h, p, sig);
}

START_TEST(valid_token_round_trip)
{
	struct token_claims	cl;

	ck_assert_int_eq(token_verify(&cfg, issue(900), &cl), TOKEN_VALID);
	ck_assert_int_eq(cl.user_id, 42);
	ck_assert_uint_gt(strlen(cl.jti), 10);
	ck_assert_int_ge(cl.exp, (long long)time(NULL) + 890);
}
END_TEST

START_TEST(expired_beyond_leeway)
{
	struct token_claims	cl;

	ck_assert_int_eq(token_verify(&cfg, issue(-100), &cl), TOKEN_EXPIRED);
	/* Within the leeway it still passes. */
	ck_assert_int_eq(token_verify(&cfg, issue(-10), &cl), TOKEN_VALID);
}
END_TEST

START_TEST(tampered_is_invalid)
{
	struct token_claims	 cl;
	char			*t = arena_strdup(&a, issue(900));
	char			*dot = strchr(t, '.') + 1;

	/* Flip one character of the payload. */
	*dot = *dot == 'e' ? 'f' : 'e';
	ck_assert_int_eq(token_verify(&cfg, t, &cl), TOKEN_INVALID);
	ck_assert_int_eq(token_verify(&cfg, "", &cl), TOKEN_INVALID);
	ck_assert_int_eq(token_verify(&cfg, "a.b.c", &cl), TOKEN_INVALID);
	ck_assert_int_eq(token_verify(&cfg, "nodots", &cl), TOKEN_INVALID);
}
END_TEST

START_TEST(other_key_is_invalid)
{
	struct token_claims	 cl;
	const char		*t = issue(900);

	cfg.jwt_secret = SECRET2;
	ck_assert_int_eq(token_verify(&cfg, t, &cl), TOKEN_INVALID);
}
END_TEST

START_TEST(alg_none_and_others_are_invalid)
{
	struct token_claims	 cl;
	char			 payload[256];

	snprintf(payload, sizeof(payload), "{\"iss\":\"wxapp\",\"aud\":"
	    "\"wxapp-miniprogram\",\"sub\":\"1\",\"jti\":\"x\",\"iat\":1,"
	    "\"exp\":%lld}", (long long)time(NULL) + 900);
	ck_assert_int_eq(token_verify(&cfg, forge("{\"alg\":\"none\","
	    "\"kid\":\"k1\"}", payload, ""), &cl), TOKEN_INVALID);
	ck_assert_int_eq(token_verify(&cfg, forge("{\"alg\":\"RS256\","
	    "\"kid\":\"k1\"}", payload, "c2ln"), &cl), TOKEN_INVALID);
	ck_assert_int_eq(token_verify(&cfg, forge("{\"alg\":\"HS512\","
	    "\"kid\":\"k1\"}", payload, "c2ln"), &cl), TOKEN_INVALID);
	ck_assert_int_eq(token_verify(&cfg, forge("{\"alg\":\"HS256\"}",
	    payload, "c2ln"), &cl), TOKEN_INVALID);
	ck_assert_int_eq(token_verify(&cfg, forge("{\"alg\":\"HS256\","
	    "\"kid\":\"k1\"}", payload, "c2ln"), &cl), TOKEN_INVALID);
}
END_TEST

START_TEST(wrong_iss_or_aud_is_invalid)
{
	struct token_claims	 cl;
	const char		*t = issue(900);

	cfg.jwt_audience = "someone-else";
	ck_assert_int_eq(token_verify(&cfg, t, &cl), TOKEN_INVALID);
	cfg.jwt_audience = "wxapp-miniprogram";
	cfg.jwt_issuer = "evil";
	ck_assert_int_eq(token_verify(&cfg, t, &cl), TOKEN_INVALID);
}
END_TEST

START_TEST(previous_kid_still_verifies)
{
	struct token_claims	 cl;
	const char		*old = issue(900);

	/* Rotate: k2 signs new tokens, k1 still verifies old ones. */
	cfg.jwt_kid = "k2";
	cfg.jwt_secret = SECRET2;
	cfg.jwt_prev_kid = "k1";
	cfg.jwt_prev_secret = SECRET1;
	ck_assert_int_eq(token_verify(&cfg, old, &cl), TOKEN_VALID);
	ck_assert_int_eq(token_verify(&cfg, issue(900), &cl), TOKEN_VALID);
	/* Once k1 is retired, its tokens stop working. */
	cfg.jwt_prev_kid = "";
	cfg.jwt_prev_secret = "";
	ck_assert_int_eq(token_verify(&cfg, old, &cl), TOKEN_INVALID);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("token");
	TCase	*tc = tcase_create("token");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, valid_token_round_trip);
	tcase_add_test(tc, expired_beyond_leeway);
	tcase_add_test(tc, tampered_is_invalid);
	tcase_add_test(tc, other_key_is_invalid);
	tcase_add_test(tc, alg_none_and_others_are_invalid);
	tcase_add_test(tc, wrong_iss_or_aud_is_invalid);
	tcase_add_test(tc, previous_kid_still_verifies);
	suite_add_tcase(s, tc);
	return check_run(s);
}

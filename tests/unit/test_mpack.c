/*
 * Unit tests for lib/mpack: JSON as MessagePack, byte for byte against
 * encodings written out by hand from the MessagePack specification.
 */
#include "check_run.h"

#include <stdio.h>
#include <string.h>

#include "mpack.h"

static struct arena	a;

static void
setup(void)
{
	arena_init(&a, 4096, 1);
}

static void
teardown(void)
{
	arena_free(&a);
}

/* json as MessagePack equals the n bytes of want. */
static void
same(const char *json, const unsigned char *want, size_t n)
{
	struct buf	b;

	buf_init(&b, &a, 16);
	ck_assert_msg(mpack_from_json(&b, json, strlen(json)) == 0,
	    "refused %s", json);
	ck_assert_msg(b.len == n && memcmp(b.p, want, n) == 0,
	    "%s: %zu bytes, not the %zu expected", json, b.len, n);
}

START_TEST(scalars)
{
	static const unsigned char	nil[] = { 0xc0 }, t[] = { 0xc3 },
	    f[] = { 0xc2 }, zero[] = { 0x00 }, fix[] = { 0x7f },
	    neg[] = { 0xff }, u8[] = { 0xcc, 0x80 },
	    u16[] = { 0xcd, 0x01, 0x00 },
	    i64[] = { 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0 },
	    dbl[] = { 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0 },
	    u64[] = { 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	same("null", nil, sizeof(nil));
	same("true", t, sizeof(t));
	same("false", f, sizeof(f));
	same("0", zero, sizeof(zero));
	same("127", fix, sizeof(fix));
	same("-1", neg, sizeof(neg));
	same("128", u8, sizeof(u8));
	same("256", u16, sizeof(u16));
	same("-9223372036854775808", i64, sizeof(i64));
	same("1.5", dbl, sizeof(dbl));
	same("18446744073709551615", u64, sizeof(u64));
}
END_TEST

START_TEST(strings_keep_their_bytes)
{
	static const unsigned char	ab[] = { 0xa2, 'a', 'b' },
	    nul[] = { 0xa3, 'a', 0x00, 'b' },
	    utf8[] = { 0xa6, 0xe5, 0xb0, 0x8f, 0xe7, 0xa8, 0x8b };
	unsigned char			long32[2 + 32];
	char				json[64];

	same("\"ab\"", ab, sizeof(ab));
	same("\"a\\u0000b\"", nul, sizeof(nul));	/* not cut at the NUL */
	same("\"\\u5c0f\\u7a0b\"", utf8, sizeof(utf8));
	/* 32 bytes: past fixstr (31), str8. */
	long32[0] = 0xd9;
	long32[1] = 32;
	memset(long32 + 2, 'x', 32);
	snprintf(json, sizeof(json), "\"%.32s\"",
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
	same(json, long32, sizeof(long32));
}
END_TEST

START_TEST(an_envelope_keeps_its_order)
{
	static const unsigned char want[] = {
		0x83,
		0xa4, 'c', 'o', 'd', 'e', 0x00,
		0xa4, 'd', 'a', 't', 'a', 0x92,
		    0x81, 0xa2, 'i', 'd', 0x01,
		    0x80,
		0xa7, 'm', 'e', 's', 's', 'a', 'g', 'e', 0xa2, 'o', 'k'
	};

	same("{\"code\":0,\"data\":[{\"id\":1},{}],\"message\":\"ok\"} \n",
	    want, sizeof(want));
}
END_TEST

START_TEST(not_json_is_refused)
{
	static const char *const bad[] = { "", "{", "[1,]", "nul", "1 2",
	    "{\"a\":1}x", "\"abc", "NaN", "[1e400]", "{\"a\":-Infinity}" };
	struct buf	b;
	size_t		i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_init(&b, &a, 16);
		ck_assert_msg(mpack_from_json(&b, bad[i], strlen(bad[i])) == -1,
		    "accepted \"%s\"", bad[i]);
	}
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("mpack");
	TCase	*tc = tcase_create("mpack");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, scalars);
	tcase_add_test(tc, strings_keep_their_bytes);
	tcase_add_test(tc, an_envelope_keeps_its_order);
	tcase_add_test(tc, not_json_is_refused);
	suite_add_tcase(s, tc);
	return check_run(s);
}

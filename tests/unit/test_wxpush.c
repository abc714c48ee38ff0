/*
 * Unit tests for lib/wxpush.  The vectors were made independently of
 * this code, from the spec: the signatures with Python's hashlib, the
 * safe-mode envelope with OpenSSL's command line (openssl enc
 * -aes-256-cbc -nopad, the 32-byte PKCS#7 padding added by hand); see
 * tests/e2e/test_push.py, which makes such messages for every run.
 */
#include "check_run.h"

#include <string.h>

#include "arena.h"
#include "wxpush.h"

#define ENC_KEY	"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
#define APPID	"wx1234567890abcdef"
#define ENCRYPT	"IG+0eOkLdhYW9kHtuT3HY9lmLMOMhKhy803Ie3JS6LW7QfBW9NMFbSIIv0CBTgHezT2M31jvVZKph3iFtewgj1SzPFmduSybzVQBRHzPrbZqvIlOkISvLWnvp00xgkqFHX6N5M2kear5t0X+EaWYwuYsVu4fPkJmTnPtfLDhhJVexRE67zHEgl3jJ2wA+iEhm8qJbIlM73MMLdr55S/tsXhahiF/TdMxQpdFxM9wxqgxmGKHjTG+//ig0V15S8qKCF4vPbzqjnh+hR6SLH6pxyWKtjNK/Oj87X3fBfDQYz6RB7mvtYuLG+wCnkB2XBmax/rzexyE3X0SF3Wid+My8OSvdfJ+sXpxGzd6LW+4J9ng1E0eOWJjKsc1mISaiEDlnAOHOr4RElJz+r/hugVy7IYtIWPjV4eDPYLI3qig3LqLdd91f+5Gnja0DlDaJ/qw4K9XcxwxV78PQIl2o1tuST5wgaJty0IHlzKcLrDySoRR8xf85h2z99TCUPSzKssv"
#define MSG	"<xml><ToUserName><![CDATA[gh_abc]]></ToUserName>" \
	"<FromUserName><![CDATA[oUser1]]></FromUserName>" \
	"<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]>" \
	"</MsgType><Event><![CDATA[wxa_media_check]]></Event>" \
	"<trace_id><![CDATA[trace-1]]></trace_id><result><suggest>" \
	"<![CDATA[pass]]></suggest><label>100</label></result></xml>"

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

START_TEST(signatures)
{
	const char	*url[3] = { "pushtoken", "1700000000", "nonce123" };
	const char	*post[4] = { "pushtoken", "1700000000", "nonce123",
	    ENCRYPT };
	char		 sig[41];

	wxpush_signature(url, 3, sig);
	ck_assert_str_eq(sig, "0637ab88496ebe043224aec75ad46a49c205cc92");
	ck_assert_int_eq(wxpush_check(url, 3, sig), 0);
	wxpush_signature(post, 4, sig);
	ck_assert_str_eq(sig, "5c3d6870a341a6f8b48e2b35d6292c41d5f2d362");
	ck_assert_int_eq(wxpush_check(post, 4,
	    "5c3d6870a341a6f8b48e2b35d6292c41d5f2d362"), 0);
	/* Another value, upper case, short, none. */
	ck_assert_int_eq(wxpush_check(post, 4,
	    "5c3d6870a341a6f8b48e2b35d6292c41d5f2d363"), -1);
	ck_assert_int_eq(wxpush_check(post, 4,
	    "5C3D6870A341A6F8B48E2B35D6292C41D5F2D362"), -1);
	ck_assert_int_eq(wxpush_check(post, 4, "5c3d"), -1);
	ck_assert_int_eq(wxpush_check(post, 4, NULL), -1);
}
END_TEST

START_TEST(safe_mode_opens)
{
	unsigned char	 key[32];
	const char	*msg;
	size_t		 len;

	ck_assert_int_eq(wxpush_aes_key(ENC_KEY, key), 0);
	ck_assert_int_eq(wxpush_decrypt(key, APPID, ENCRYPT, &a, &msg, &len),
	    WXPUSH_OK);
	ck_assert_uint_eq(len, strlen(MSG));
	ck_assert_str_eq(msg, MSG);
}
END_TEST

START_TEST(safe_mode_refuses)
{
	unsigned char	 key[32];
	char		 bad[sizeof(ENCRYPT)];
	const char	*msg;
	size_t		 len;

	ck_assert_int_eq(wxpush_aes_key(ENC_KEY, key), 0);
	ck_assert_int_eq(wxpush_decrypt(key, "wxsomeoneelse00000", ENCRYPT, &a,
	    &msg, &len), WXPUSH_BAD_APPID);
	ck_assert_int_eq(wxpush_decrypt(key, "wx1234567890abcde", ENCRYPT, &a,
	    &msg, &len), WXPUSH_BAD_APPID);
	ck_assert_int_eq(wxpush_decrypt(key, APPID, "not base64!", &a, &msg,
	    &len), WXPUSH_BAD_BASE64);
	/* One block of 16 bytes: not a whole 32-byte block. */
	ck_assert_int_eq(wxpush_decrypt(key, APPID,
	    "AAAAAAAAAAAAAAAAAAAAAA==", &a, &msg, &len), WXPUSH_BAD_LENGTH);
	/* The last block changed: its padding is garbage. */
	memcpy(bad, ENCRYPT, sizeof(bad));
	bad[sizeof(bad) - 6] = bad[sizeof(bad) - 6] == 'A' ? 'B' : 'A';
	ck_assert_int_ne(wxpush_decrypt(key, APPID, bad, &a, &msg, &len),
	    WXPUSH_OK);
	/* Another key. */
	key[0] ^= 1;
	ck_assert_int_ne(wxpush_decrypt(key, APPID, ENCRYPT, &a, &msg, &len),
	    WXPUSH_OK);
	ck_assert_int_eq(wxpush_aes_key("short", key), -1);
	ck_assert_int_eq(wxpush_aes_key(
	    "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF!", key), -1);
}
END_TEST

START_TEST(xml_and_json_fields)
{
	struct wxpush_msg	 m;
	const char		*why = NULL;
	static const char	 json[] = "{\"ToUserName\":\"gh_abc\","
	    "\"CreateTime\":1700000000,\"MsgType\":\"event\","
	    "\"Event\":\"wxa_media_check\",\"trace_id\":\"t-2\","
	    "\"result\":{\"suggest\":\"risky\",\"label\":\"20001\"},"
	    "\"detail\":[{\"strategy\":\"content_model\",\"suggest\":\"risky\"},"
	    "{\"strategy\":\"x\"}]}";

	ck_assert_int_eq(wxpush_parse(&a, MSG, strlen(MSG), &m, &why),
	    WXPUSH_OK);
	ck_assert_int_eq(m.xml, 1);
	ck_assert_str_eq(wxpush_get(&m, "FromUserName"), "oUser1");
	ck_assert_str_eq(wxpush_get(&m, "CreateTime"), "1700000000");
	ck_assert_str_eq(wxpush_get(&m, "result.suggest"), "pass");
	ck_assert_str_eq(wxpush_get(&m, "result.label"), "100");
	ck_assert_ptr_null(wxpush_get(&m, "result"));
	ck_assert_int_eq(wxpush_parse(&a, json, strlen(json), &m, &why),
	    WXPUSH_OK);
	ck_assert_int_eq(m.xml, 0);
	ck_assert_str_eq(wxpush_get(&m, "CreateTime"), "1700000000");
	ck_assert_str_eq(wxpush_get(&m, "result.suggest"), "risky");
	ck_assert_str_eq(wxpush_get(&m, "detail.strategy"), "content_model");
}
END_TEST

START_TEST(hostile_xml_is_refused)
{
	static const char *const bad[] = {
		/* billion laughs */
		"<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
		"<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>"
		"<xml><a>&lol2;</a></xml>",
		/* an external entity */
		"<!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
		"<xml><a>&x;</a></xml>",
		"<xml><a>unclosed</xml>",
		"<notxml><a>1</a></notxml>",
		"<xml><a><b><c><d><e><f><g><h><i>deep</i></h></g></f></e></d>"
		"</c></b></a></xml>",
		"<xml><a>&undefined;</a></xml>",
		"",
		"[1, 2]",
		"{\"a\": ",
	};
	struct wxpush_msg	 m;
	const char		*why;
	size_t			 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		ck_assert_msg(wxpush_parse(&a, bad[i], strlen(bad[i]), &m,
		    &why) == WXPUSH_BAD_BODY, "accepted: %s", bad[i]);
		ck_assert_ptr_nonnull(why);
	}
}
END_TEST

START_TEST(too_many_fields)
{
	struct buf		 b;
	struct wxpush_msg	 m;
	const char		*why;
	int			 i;

	buf_init(&b, &a, 4096);
	buf_adds(&b, "<xml>");
	for (i = 0; i <= WXPUSH_FIELDS; i++)
		buf_printf(&b, "<f%d>v</f%d>", i, i);
	buf_adds(&b, "</xml>");
	ck_assert_int_eq(wxpush_parse(&a, b.p, b.len, &m, &why),
	    WXPUSH_BAD_BODY);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("wxpush");
	TCase	*tc = tcase_create("wxpush");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, signatures);
	tcase_add_test(tc, safe_mode_opens);
	tcase_add_test(tc, safe_mode_refuses);
	tcase_add_test(tc, xml_and_json_fields);
	tcase_add_test(tc, hostile_xml_is_refused);
	tcase_add_test(tc, too_many_fields);
	suite_add_tcase(s, tc);
	return check_run(s);
}

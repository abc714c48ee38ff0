/*
 * Unit tests for lib/wxdata: WeChat's own sample (the decryption demo of
 * its documentation, checked with the openssl command), and every way
 * data fails to open giving one result.
 */
#include "check_run.h"
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "wxdata.h"

#define APPID	"wx4f4bc4dec97d474b"
#define KEY	"tiihtNczf5v6AKRyjwEUhQ=="
#define IV	"r7BXXKkLb8qrSNn05n0qiA=="
#define DATA \
	"CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5g" \
	"eRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBz" \
	"looOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7" \
	"UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid" \
	"1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7" \
	"b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PK" \
	"FdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f" \
	"0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
#define STAMP	1477314187LL	/* the sample's watermark.timestamp */

static struct arena		a;
static struct wxdata_opts	o;
static struct json_object	*plain;
static const char		*why;

static void
setup(void)
{
	arena_init(&a, 4096, 2);
	o.appid = APPID;
	o.max_age = 0;
	plain = NULL;
}

static void
teardown(void)
{
	json_object_put(plain);
	arena_free(&a);
}

static enum wxdata_result
open_(const char *key, const char *iv, const char *data, long long now)
{
	json_object_put(plain);
	plain = NULL;
	return wxdata_open(&o, key, iv, data, now, &a, &plain, &why);
}

START_TEST(the_sample_opens)
{
	struct json_object	*v;

	ck_assert_int_eq(open_(KEY, IV, DATA, STAMP + 10), WXDATA_OK);
	ck_assert(json_object_object_get_ex(plain, "openId", &v));
	ck_assert_str_eq(json_object_get_string(v),
	    "oGZUI0egBJY1zhBYw2KhdUfwVJJE");
	/* The watermark is checked, then taken away. */
	ck_assert(!json_object_object_get_ex(plain, "watermark", NULL));
}
END_TEST

START_TEST(one_result_for_every_failure)
{
	char	*bad = strdup(DATA);
	size_t	 n = strlen(bad);

	/* Another key; a flipped last block (padding); a flipped first. */
	ck_assert_int_eq(open_("AAAAAAAAAAAAAAAAAAAAAA==", IV, DATA, STAMP),
	    WXDATA_FAILED);
	bad[n - 6] = bad[n - 6] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(open_(KEY, IV, bad, STAMP), WXDATA_FAILED);
	memcpy(bad, DATA, n);
	bad[0] = bad[0] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(open_(KEY, IV, bad, STAMP), WXDATA_FAILED);
	/* Another iv: the first block is garbage, so not JSON. */
	ck_assert_int_eq(open_(KEY, "AAAAAAAAAAAAAAAAAAAAAA==", DATA, STAMP),
	    WXDATA_FAILED);
	free(bad);
}
END_TEST

START_TEST(input_that_is_wrong_whatever_the_key)
{
	ck_assert_int_eq(open_(KEY, "r7BXXKkLb8qrSNn05n0q", DATA, STAMP),
	    WXDATA_BAD_INPUT);
	ck_assert_ptr_nonnull(strstr(why, "`iv`"));
	ck_assert_int_eq(open_(KEY, IV, "not base64!", STAMP),
	    WXDATA_BAD_INPUT);
	ck_assert_ptr_nonnull(strstr(why, "`encryptedData`"));
	ck_assert_int_eq(open_(KEY, IV, "AAAAAAAAAAAAAAAAAAAA", STAMP),
	    WXDATA_BAD_INPUT);	/* 15 bytes: not whole blocks */
	ck_assert_int_eq(open_(KEY, IV, "", STAMP), WXDATA_BAD_INPUT);
	ck_assert_int_eq(open_("short", IV, DATA, STAMP), WXDATA_BAD_KEY);
}
END_TEST

START_TEST(watermark_appid_and_age)
{
	o.appid = "wx0000000000000000";
	ck_assert_int_eq(open_(KEY, IV, DATA, STAMP), WXDATA_OTHER_APP);
	o.appid = APPID;
	o.max_age = 300;
	ck_assert_int_eq(open_(KEY, IV, DATA, STAMP + 300), WXDATA_OK);
	ck_assert_int_eq(open_(KEY, IV, DATA, STAMP + 301), WXDATA_TOO_OLD);
	/* A watermark from the future (skewed clocks) is not old. */
	ck_assert_int_eq(open_(KEY, IV, DATA, STAMP - 50), WXDATA_OK);
	ck_assert_int_eq(open_(KEY, IV, DATA, 0), WXDATA_OK);
}
END_TEST

START_TEST(raw_data_signature)
{
	const char	*raw = "{\"nickName\":\"Band\"}";
	unsigned char	 h[20];
	char		 hex[41], msg[128];

	snprintf(msg, sizeof(msg), "%s%s", raw, KEY);
	crypto_sha1(msg, strlen(msg), h);
	crypto_hex(h, sizeof(h), hex);
	ck_assert_int_eq(wxdata_signature_ok(&a, raw, KEY, hex), 1);
	hex[0] = hex[0] == '0' ? '1' : '0';
	ck_assert_int_eq(wxdata_signature_ok(&a, raw, KEY, hex), 0);
	ck_assert_int_eq(wxdata_signature_ok(&a, raw, KEY, "abc"), 0);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("wxdata");
	TCase	*tc = tcase_create("wxdata");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, the_sample_opens);
	tcase_add_test(tc, one_result_for_every_failure);
	tcase_add_test(tc, input_that_is_wrong_whatever_the_key);
	tcase_add_test(tc, watermark_appid_and_age);
	tcase_add_test(tc, raw_data_signature);
	suite_add_tcase(s, tc);
	return check_run(s);
}

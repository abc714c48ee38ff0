/*
 * Unit tests for lib/crypto: base64, hashes, HMAC (RFC 7515's example),
 * AES-128-CBC, AES-256-GCM sealing, comparison.
 */
#include "check_run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "crypto.h"

START_TEST(base64_round_trip)
{
	const unsigned char	in[] = "any carnal pleas";
	unsigned char		out[64];
	char			enc[64];
	size_t			n, len;

	for (n = 1; n <= 16; n++) {
		crypto_b64_encode(in, n, enc);
		ck_assert_int_eq(crypto_b64_decode(enc, strlen(enc), out, &len), 0);
		ck_assert_uint_eq(len, n);
		ck_assert_int_eq(memcmp(in, out, n), 0);
		crypto_b64url_encode(in, n, enc);
		ck_assert_ptr_null(strchr(enc, '='));
		ck_assert_int_eq(crypto_b64url_decode(enc, strlen(enc), out, &len), 0);
		ck_assert_uint_eq(len, n);
	}
	crypto_b64_encode((const unsigned char *)"\xfb\xff", 2, enc);
	ck_assert_str_eq(enc, "+/8=");
	crypto_b64url_encode((const unsigned char *)"\xfb\xff", 2, enc);
	ck_assert_str_eq(enc, "-_8");
}
END_TEST

START_TEST(base64_is_strict)
{
	unsigned char	out[64];
	size_t		len;

	ck_assert_int_eq(crypto_b64_decode("", 0, out, &len), -1);
	ck_assert_int_eq(crypto_b64_decode("abc", 3, out, &len), -1);
	ck_assert_int_eq(crypto_b64_decode("ab c", 4, out, &len), -1);
	ck_assert_int_eq(crypto_b64_decode("ab%3D", 5, out, &len), -1);
	ck_assert_int_eq(crypto_b64_decode("a===", 4, out, &len), -1);
	/* Non-zero leftover bits are not a canonical encoding. */
	ck_assert_int_eq(crypto_b64_decode("QR==", 4, out, &len), -1);
	ck_assert_int_eq(crypto_b64_decode("QQ==", 4, out, &len), 0);
	ck_assert_uint_eq(len, 1);
	ck_assert_int_eq(crypto_b64url_decode("+/8", 3, out, &len), -1);
}
END_TEST

START_TEST(hashes_and_equal)
{
	unsigned char	h[32];
	char		hex[65];

	crypto_sha1("abc", 3, h);
	crypto_hex(h, 20, hex);
	ck_assert_str_eq(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
	crypto_sha256("abc", 3, h);
	crypto_hex(h, 32, hex);
	ck_assert_str_eq(hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	ck_assert(crypto_equal("abcd", "abcd", 4));
	ck_assert(!crypto_equal("abcd", "abce", 4));
}
END_TEST

START_TEST(random_tokens_differ)
{
	char	a[64], b[64];

	ck_assert_int_eq(crypto_random_b64url(32, a), 0);
	ck_assert_int_eq(crypto_random_b64url(32, b), 0);
	ck_assert_uint_eq(strlen(a), 43);
	ck_assert_str_ne(a, b);
}
END_TEST

/* Timed ids: the clock's milliseconds in hex, then the random part. */
START_TEST(timed_ids_sort_by_time)
{
	char		a[80], b[80];
	struct timespec	ts;
	unsigned long long now, then;
	int		i;

	ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &ts), 0);
	now = (unsigned long long)ts.tv_sec * 1000 +
	    (unsigned long long)ts.tv_nsec / 1000000;
	ck_assert_int_eq(crypto_random_timed(32, a), 0);
	ck_assert_uint_eq(strlen(a), CRYPTO_TIMED_PREFIX + 43);
	for (i = 0; i < CRYPTO_TIMED_PREFIX; i++)
		ck_assert(strchr("0123456789abcdef", a[i]) != NULL);
	ck_assert_int_eq(sscanf(a, "%12llx", &then), 1);
	ck_assert(then >= now && then <= now + 1000);
	/* Later ids sort after earlier ones, and the random parts differ. */
	ts.tv_sec = 0;
	ts.tv_nsec = 2000000;
	nanosleep(&ts, NULL);
	ck_assert_int_eq(crypto_random_timed(32, b), 0);
	ck_assert(strcmp(a, b) < 0);
	ck_assert(strncmp(a, b, CRYPTO_TIMED_PREFIX) < 0);
	ck_assert_str_ne(a + CRYPTO_TIMED_PREFIX, b + CRYPTO_TIMED_PREFIX);
}
END_TEST

/* Encrypt with EVP (PKCS#7) so decryption can be checked both ways. */
static size_t
encrypt(const unsigned char *key, const unsigned char *iv, const char *pt,
    unsigned char *ct)
{
	EVP_CIPHER_CTX	*ctx = EVP_CIPHER_CTX_new();
	int		 l1, l2;

	EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv);
	EVP_EncryptUpdate(ctx, ct, &l1, (const unsigned char *)pt,
	    (int)strlen(pt));
	EVP_EncryptFinal_ex(ctx, ct + l1, &l2);
	EVP_CIPHER_CTX_free(ctx);
	return (size_t)(l1 + l2);
}

START_TEST(aes_cbc_decrypt)
{
	const unsigned char	key[16] = "0123456789abcdef";
	const unsigned char	iv[16] = "fedcba9876543210";
	const char		*msg = "{\"nickName\":\"Band\",\"watermark\":{}}";
	unsigned char		ct[128], pt[128];
	size_t			n, len;

	n = encrypt(key, iv, msg, ct);
	ck_assert_int_eq(crypto_aes128cbc_decrypt(key, iv, ct, n, pt, &len),
	    CRYPTO_AES_OK);
	ck_assert_uint_eq(len, strlen(msg));
	ck_assert_int_eq(memcmp(pt, msg, len), 0);
	ck_assert_int_eq(crypto_aes128cbc_decrypt(key, iv, ct, n - 1, pt, &len),
	    CRYPTO_AES_BAD_LENGTH);
	ck_assert_int_eq(crypto_aes128cbc_decrypt(key, iv, ct, 0, pt, &len),
	    CRYPTO_AES_BAD_LENGTH);
	/* A corrupted last block breaks the padding. */
	ct[n - 1] ^= 0x5a;
	ck_assert_int_eq(crypto_aes128cbc_decrypt(key, iv, ct, n, pt, &len),
	    CRYPTO_AES_BAD_PADDING);
	ct[n - 1] ^= 0x5a;
}
END_TEST

/*
 * RFC 7515 appendix A.1: the HS256 example's key, signing input and
 * signature, computed by its authors.
 */
START_TEST(hmac_sha256_rfc7515)
{
	static const char	key_b64[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoq"
	    "Q-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
	static const char	input[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUz"
	    "I1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6"
	    "Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
	unsigned char		key[64], mac[32];
	char			sig[64];
	size_t			keylen;

	ck_assert_int_eq(crypto_b64url_decode(key_b64, strlen(key_b64), key,
	    &keylen), 0);
	crypto_hmac_sha256(key, keylen, input, strlen(input), mac);
	crypto_b64url_encode(mac, sizeof(mac), sig);
	ck_assert_str_eq(sig, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
}
END_TEST

START_TEST(seal_and_open)
{
	unsigned char	key[32], other[32], box[64 + CRYPTO_SEAL_OVERHEAD];
	unsigned char	box2[sizeof(box)], out[64];
	const char	msg[] = "the successor refresh token";
	size_t		n = sizeof(msg) - 1, len;

	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	ck_assert_int_eq(crypto_seal(key, msg, n, box), 0);
	ck_assert_int_eq(crypto_open(key, box, n + CRYPTO_SEAL_OVERHEAD, out,
	    &len), 0);
	ck_assert_uint_eq(len, n);
	ck_assert_int_eq(memcmp(out, msg, n), 0);
	/* A random nonce each time: the same message seals differently. */
	ck_assert_int_eq(crypto_seal(key, msg, n, box2), 0);
	ck_assert_int_ne(memcmp(box, box2, n + CRYPTO_SEAL_OVERHEAD), 0);
	/* Another key, a flipped bit, a cut box: nothing opens. */
	ck_assert_int_eq(crypto_open(other, box, n + CRYPTO_SEAL_OVERHEAD, out,
	    &len), -1);
	box[14] ^= 1;
	ck_assert_int_eq(crypto_open(key, box, n + CRYPTO_SEAL_OVERHEAD, out,
	    &len), -1);
	box[14] ^= 1;
	ck_assert_int_eq(crypto_open(key, box, n + CRYPTO_SEAL_OVERHEAD - 1,
	    out, &len), -1);
	ck_assert_int_eq(crypto_open(key, box, 3, out, &len), -1);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("crypto");
	TCase	*tc = tcase_create("crypto");

	tcase_add_test(tc, base64_round_trip);
	tcase_add_test(tc, base64_is_strict);
	tcase_add_test(tc, hashes_and_equal);
	tcase_add_test(tc, timed_ids_sort_by_time);
	tcase_add_test(tc, random_tokens_differ);
	tcase_add_test(tc, aes_cbc_decrypt);
	tcase_add_test(tc, hmac_sha256_rfc7515);
	tcase_add_test(tc, seal_and_open);
	suite_add_tcase(s, tc);
	return check_run(s);
}

/*
 * crypto: thin, strict wrappers over libcrypto.  Base64 is decoded here
 * rather than with EVP_DecodeBlock, which accepts whitespace and cannot
 * tell the length of padded input.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "crypto.h"

static const char b64std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Encode with alphabet abc, padding with '=' when pad is set. */
static void
b64_encode(const char *abc, int pad, const unsigned char *in, size_t n,
    char *out)
{
	size_t		i;
	unsigned	v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		*out++ = abc[v >> 18 & 63];
		*out++ = abc[v >> 12 & 63];
		*out++ = abc[v >> 6 & 63];
		*out++ = abc[v & 63];
	}
	if (n - i == 1) {
		v = (unsigned)in[i] << 16;
		*out++ = abc[v >> 18 & 63];
		*out++ = abc[v >> 12 & 63];
		if (pad) {
			*out++ = '=';
			*out++ = '=';
		}
	} else if (n - i == 2) {
		v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		*out++ = abc[v >> 18 & 63];
		*out++ = abc[v >> 12 & 63];
		*out++ = abc[v >> 6 & 63];
		if (pad)
			*out++ = '=';
	}
	*out = '\0';
}

/* Decode n chars of alphabet abc without padding; -1 on a bad char or tail. */
static int
b64_decode(const char *abc, const char *in, size_t n, unsigned char *out,
    size_t *outlen)
{
	const char	*p;
	unsigned	 v = 0;
	size_t		 i, o = 0;
	int		 bits = 0;

	if (n % 4 == 1)
		return -1;
	for (i = 0; i < n; i++) {
		if (in[i] == '\0' || (p = strchr(abc, in[i])) == NULL)
			return -1;
		v = (v << 6) | (unsigned)(p - abc);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
			v &= (1u << bits) - 1;
		}
	}
	/* Leftover bits must be zero (canonical encoding). */
	if (v != 0)
		return -1;
	*outlen = o;
	return 0;
}

int
crypto_b64_decode(const char *in, size_t n, unsigned char *out, size_t *outlen)
{
	if (n == 0 || n % 4 != 0)
		return -1;
	if (in[n - 1] == '=')
		n--;
	if (in[n - 1] == '=')
		n--;
	return b64_decode(b64std, in, n, out, outlen);
}

void
crypto_b64_encode(const unsigned char *in, size_t n, char *out)
{
	b64_encode(b64std, 1, in, n, out);
}

void
crypto_b64url_encode(const unsigned char *in, size_t n, char *out)
{
	b64_encode(b64url, 0, in, n, out);
}

int
crypto_b64url_decode(const char *in, size_t n, unsigned char *out,
    size_t *outlen)
{
	return b64_decode(b64url, in, n, out, outlen);
}

int
crypto_random_b64url(size_t n, char *out)
{
	unsigned char	raw[64];

	if (n > sizeof(raw) || RAND_bytes(raw, (int)n) != 1)
		return -1;
	crypto_b64url_encode(raw, n, out);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int
crypto_random_timed(size_t n, char *out)
{
	struct timespec	ts;
	uint64_t	ms;
	int		i;

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1 || ts.tv_sec < 0)
		return -1;
	/* 48 bits of milliseconds last until the year 10889. */
	ms = ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) &
	    0xffffffffffffULL;
	for (i = CRYPTO_TIMED_PREFIX - 1; i >= 0; i--, ms >>= 4)
		out[i] = "0123456789abcdef"[ms & 15];
	return crypto_random_b64url(n, out + CRYPTO_TIMED_PREFIX);
}

void
crypto_hex(const unsigned char *in, size_t n, char *out)
{
	static const char	hex[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void
crypto_sha256(const void *in, size_t n, unsigned char out[32])
{
	SHA256(in, n, out);
}

void
crypto_sha1(const void *in, size_t n, unsigned char out[20])
{
	SHA1(in, n, out);
}

int
crypto_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

/* AES-CBC decryption of n bytes, PKCS#7 padding checked or not. */
static enum crypto_aes_result
aes_cbc_decrypt(const EVP_CIPHER *cipher, const unsigned char *key,
    const unsigned char iv[16], const unsigned char *in, size_t n,
    unsigned char *out, size_t *outlen, int pkcs7)
{
	EVP_CIPHER_CTX		*ctx;
	enum crypto_aes_result	 rc = CRYPTO_AES_BAD_PADDING;
	int			 l1 = 0, l2 = 0;

	if (n == 0 || n % 16 != 0 || n > 0x7fffffff)
		return CRYPTO_AES_BAD_LENGTH;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return CRYPTO_AES_BAD_PADDING;
	/* With padding on, EVP checks PKCS#7 in DecryptFinal. */
	if (EVP_DecryptInit_ex(ctx, cipher, NULL, key, iv) == 1 &&
	    EVP_CIPHER_CTX_set_padding(ctx, pkcs7) == 1 &&
	    EVP_DecryptUpdate(ctx, out, &l1, in, (int)n) == 1 &&
	    EVP_DecryptFinal_ex(ctx, out + l1, &l2) == 1) {
		*outlen = (size_t)l1 + (size_t)l2;
		rc = CRYPTO_AES_OK;
	}
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

enum crypto_aes_result
crypto_aes128cbc_decrypt(const unsigned char key[16],
    const unsigned char iv[16], const unsigned char *in, size_t n,
    unsigned char *out, size_t *outlen)
{
	return aes_cbc_decrypt(EVP_aes_128_cbc(), key, iv, in, n, out, outlen,
	    1);
}

enum crypto_aes_result
crypto_aes256cbc_decrypt_raw(const unsigned char key[32],
    const unsigned char iv[16], const unsigned char *in, size_t n,
    unsigned char *out)
{
	size_t	len;

	return aes_cbc_decrypt(EVP_aes_256_cbc(), key, iv, in, n, out, &len,
	    0);
}

void
crypto_hmac_sha256(const void *key, size_t keylen, const void *in, size_t n,
    unsigned char out[32])
{
	unsigned int	len = 32;

	HMAC(EVP_sha256(), key, (int)keylen, in, n, out, &len);
}

int
crypto_seal(const unsigned char key[32], const void *in, size_t n,
    unsigned char *out)
{
	EVP_CIPHER_CTX	*ctx;
	int		 l1 = 0, l2 = 0, rc = -1;

	if (n > 0x7fffffff || RAND_bytes(out, 12) != 1 ||
	    (ctx = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, out) == 1 &&
	    EVP_EncryptUpdate(ctx, out + 12, &l1, in, (int)n) == 1 &&
	    EVP_EncryptFinal_ex(ctx, out + 12 + l1, &l2) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16,
	    out + 12 + n) == 1)
		rc = 0;
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int
crypto_open(const unsigned char key[32], const unsigned char *in, size_t n,
    unsigned char *out, size_t *outlen)
{
	EVP_CIPHER_CTX	*ctx;
	unsigned char	 tag[16];
	size_t		 ctlen;
	int		 l1 = 0, l2 = 0, rc = -1;

	if (n < CRYPTO_SEAL_OVERHEAD || n > 0x7fffffff ||
	    (ctx = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	ctlen = n - CRYPTO_SEAL_OVERHEAD;
	memcpy(tag, in + 12 + ctlen, sizeof(tag));
	/* DecryptFinal fails unless the tag matches. */
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, in) == 1 &&
	    EVP_DecryptUpdate(ctx, out, &l1, in + 12, (int)ctlen) == 1 &&
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
	    EVP_DecryptFinal_ex(ctx, out + l1, &l2) == 1) {
		*outlen = (size_t)l1 + (size_t)l2;
		rc = 0;
	}
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

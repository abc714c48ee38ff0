/*
 * fuzz_wxdata: base64 and Mini Program encrypted data (lib/wxdata).  The
 * first byte chooses: odd, the rest is a plaintext that the harness
 * encrypts with the key the opener holds (so the JSON and the watermark
 * checks are reached); even, the rest is session_key, iv and data, three
 * base64 strings separated by newlines, as a client would send them.
 */
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "wxdata.h"

#define KEY	"tiihtNczf5v6AKRyjwEUhQ=="
#define IV	"r7BXXKkLb8qrSNn05n0qiA=="

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* AES-128-CBC with PKCS#7 of n bytes at p under KEY and IV, as base64. */
static const char *
encrypt(struct arena *a, const uint8_t *p, size_t n)
{
	unsigned char	 key[18], iv[18], *ct;
	size_t		 kl, il;
	char		*out;
	int		 l1 = 0, l2 = 0, ok;
	EVP_CIPHER_CTX	*ctx;

	if (n > 1 << 20 || (ctx = EVP_CIPHER_CTX_new()) == NULL ||
	    crypto_b64_decode(KEY, strlen(KEY), key, &kl) == -1 ||
	    crypto_b64_decode(IV, strlen(IV), iv, &il) == -1)
		return NULL;
	ct = arena_alloc(a, n + 16);
	ok = EVP_EncryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, key, iv) == 1 &&
	    EVP_EncryptUpdate(ctx, ct, &l1, p, (int)n) == 1 &&
	    EVP_EncryptFinal_ex(ctx, ct + l1, &l2) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		return NULL;
	out = arena_alloc(a, ((size_t)(l1 + l2) + 2) / 3 * 4 + 1);
	crypto_b64_encode(ct, (size_t)(l1 + l2), out);
	return out;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct wxdata_opts o = { "wx0123456789abcdef", 300 };
	static struct arena	 a;
	static int		 ready;
	struct json_object	*plain;
	const char		*why, *key = KEY, *iv = IV, *enc, *part[3];
	const uint8_t		*p, *end, *nl;
	int			 i;

	if (!ready) {
		arena_init(&a, 64 * 1024, 2);
		ready = 1;
	}
	if (size == 0)
		return 0;
	if (data[0] & 1)
		enc = encrypt(&a, data + 1, size - 1);
	else {
		p = data + 1;
		end = data + size;
		for (i = 0; i < 3; i++) {
			nl = memchr(p, '\n', (size_t)(end - p));
			if (nl == NULL)
				nl = end;
			part[i] = arena_strndup(&a, (const char *)p,
			    (size_t)(nl - p));
			p = nl < end ? nl + 1 : end;
		}
		key = part[0];
		iv = part[1];
		enc = part[2];
		/* The same strings as rawData, session_key and signature. */
		(void)wxdata_signature_ok(&a, enc, key, iv);
	}
	if (enc != NULL && wxdata_open(&o, key, iv, enc, 1800000000LL, &a,
	    &plain, &why) == WXDATA_OK)
		json_object_put(plain);
	arena_reset(&a);
	return 0;
}

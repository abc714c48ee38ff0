/*
 * wxdata: Mini Program encrypted data.
 */
#include <errno.h>
#include <string.h>

#include "crypto.h"
#include "jsonparse.h"
#include "util.h"
#include "wxdata.h"

/* Decode base64 s of exactly want bytes (0: any, but whole blocks). */
static int
decode(struct arena *a, const char *s, size_t want, unsigned char **out,
    size_t *outlen)
{
	size_t	n = strlen(s);

	*out = arena_alloc(a, n / 4 * 3 + 3);
	if (crypto_b64_decode(s, n, *out, outlen) == -1)
		return -1;
	if (want != 0 ? *outlen != want : *outlen == 0 || *outlen % 16 != 0)
		return -1;
	return 0;
}

/*
 * The watermark: an object naming the appid, with an integer timestamp
 * when max_age asks for one.
 */
static enum wxdata_result
watermark(const struct wxdata_opts *o, struct json_object *plain,
    long long now)
{
	struct json_object	*wm, *ts;
	const char		*appid;
	int64_t			 t;

	if (!json_object_object_get_ex(plain, "watermark", &wm) ||
	    !json_object_is_type(wm, json_type_object) ||
	    (appid = jsonparse_string(wm, "appid")) == NULL)
		return WXDATA_FAILED;
	if (strcmp(appid, o->appid) != 0)
		return WXDATA_OTHER_APP;
	if (o->max_age <= 0)
		return WXDATA_OK;
	if (!json_object_object_get_ex(wm, "timestamp", &ts) ||
	    !json_object_is_type(ts, json_type_int))
		return WXDATA_FAILED;
	errno = 0;
	t = json_object_get_int64(ts);
	if (errno != 0 || t < 0)
		return WXDATA_FAILED;
	/* From the future (the clocks differ): not old.  Else now > t >= 0. */
	if (t >= now)
		return WXDATA_OK;
	return now - t > o->max_age ? WXDATA_TOO_OLD : WXDATA_OK;
}

enum wxdata_result
wxdata_open(const struct wxdata_opts *o, const char *session_key,
    const char *iv, const char *data, long long now, struct arena *a,
    struct json_object **plain, const char **why)
{
	unsigned char		*key, *ivb, *ct, *pt;
	size_t			 keylen, ivlen, ctlen, ptlen;
	struct jsonparse_err	 err;
	enum wxdata_result	 rc;

	*plain = NULL;
	*why = NULL;
	if (decode(a, session_key, 16, &key, &keylen) == -1)
		return WXDATA_BAD_KEY;
	if (decode(a, iv, 16, &ivb, &ivlen) == -1) {
		*why = "`iv` must be 16 bytes of base64 (was it URL-encoded? "
		    "'+' must stay '+')";
		return WXDATA_BAD_INPUT;
	}
	if (decode(a, data, 0, &ct, &ctlen) == -1) {
		*why = "`encryptedData` must be base64 of whole 16-byte "
		    "blocks (was it URL-encoded? '+' must stay '+')";
		return WXDATA_BAD_INPUT;
	}
	pt = arena_alloc(a, ctlen);
	if (crypto_aes128cbc_decrypt(key, ivb, ct, ctlen, pt, &ptlen) !=
	    CRYPTO_AES_OK ||
	    jsonparse_bytes((const char *)pt, ptlen, plain, &err) == -1)
		return WXDATA_FAILED;
	if (!json_object_is_type(*plain, json_type_object))
		rc = WXDATA_FAILED;
	else
		rc = watermark(o, *plain, now);
	if (rc != WXDATA_OK) {
		json_object_put(*plain);
		*plain = NULL;
		return rc;
	}
	json_object_object_del(*plain, "watermark");
	return WXDATA_OK;
}

int
wxdata_signature_ok(struct arena *a, const char *raw, const char *sk,
    const char *sig)
{
	unsigned char	 h[20];
	char		 hex[41], *msg;
	size_t		 rl = strlen(raw), kl = strlen(sk);

	if (strlen(sig) != 40)
		return 0;
	msg = arena_alloc(a, rl + kl);
	memcpy(msg, raw, rl);
	memcpy(msg + rl, sk, kl);
	crypto_sha1(msg, rl + kl, h);
	crypto_hex(h, sizeof(h), hex);
	return crypto_equal(hex, sig, 40);
}

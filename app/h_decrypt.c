/*
 * h_decrypt: Mini Program encryptedData (wx.getUserProfile, wx.getWeRunData,
 * group info, ...) decrypted with the user's session_key, which never
 * leaves the server.  Each failure names its reason.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "crypto.h"
#include "jsonparse.h"
#include "log.h"

/* Decode base64 field `name` of exactly want bytes (0: any) into the arena. */
static int
b64_field(struct req *rq, struct resp *rs, const char *name, const char *s,
    size_t want, unsigned char **out, size_t *outlen)
{
	size_t	n = strlen(s);

	*out = arena_alloc(rq->a, n / 4 * 3 + 3);
	if (crypto_b64_decode(s, n, *out, outlen) == -1) {
		resp_error(rs, API_DECRYPT_INPUT, "`%s` is not valid base64 "
		    "(was it URL-encoded? '+' must stay '+')", name);
		return -1;
	}
	if (want != 0 && *outlen != want) {
		resp_error(rs, API_DECRYPT_INPUT, "`%s` must decode to %zu "
		    "bytes, not %zu", name, want, *outlen);
		return -1;
	}
	return 0;
}

/* signature == hex(sha1(rawData + session_key)), compared in constant time. */
static int
signature_ok(struct arena *a, const char *raw, const char *sk,
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

/* POST /api/v1/user/decrypt {encryptedData, iv, rawData?, signature?}. */
void
h_decrypt(struct app *app, struct req *rq, struct resp *rs)
{
	struct json_object	*body, *plain = NULL, *wm;
	const char		*enc, *ivs, *raw, *sig, *sk, *appid, *why;
	unsigned char		*key, *iv, *ct, *pt;
	size_t			 keylen, ivlen, ctlen, ptlen, sklen, at;
	enum cache_status	 cst;

	if (req_json_body(rq, rs, &body) == -1 ||
	    req_json_string(rs, body, "encryptedData", &enc) == -1 ||
	    req_json_string(rs, body, "iv", &ivs) == -1 ||
	    req_json_opt_string(rs, body, "rawData", &raw) == -1 ||
	    req_json_opt_string(rs, body, "signature", &sig) == -1)
		return;
	if ((raw == NULL) != (sig == NULL)) {
		resp_error(rs, API_VALIDATION,
		    "fields `rawData` and `signature` go together");
		return;
	}
	cst = cache_get(&app->cache, rq->a,
	    arena_printf(rq->a, KEY_SESSION_KEY, app->who.user_id), &sk, &sklen);
	if (cst != CACHE_OK) {
		resp_error(rs, API_CACHE_UNAVAILABLE, "session store unavailable");
		resp_header(rs, "Retry-After", "1");
		return;
	}
	if (sk == NULL) {
		resp_error(rs, API_SESSION_KEY_GONE, "no session_key on file: "
		    "call wx.login and log in again");
		return;
	}
	key = arena_alloc(rq->a, sklen + 3);
	if (crypto_b64_decode(sk, sklen, key, &keylen) == -1 || keylen != 16) {
		log_error("decrypt: stored session_key of user %lld is not "
		    "16 bytes of base64", app->who.user_id);
		resp_error(rs, API_SESSION_KEY_GONE, "no usable session_key: "
		    "call wx.login and log in again");
		return;
	}
	if (b64_field(rq, rs, "iv", ivs, 16, &iv, &ivlen) == -1 ||
	    b64_field(rq, rs, "encryptedData", enc, 0, &ct, &ctlen) == -1)
		return;
	if (raw != NULL && !signature_ok(rq->a, raw, sk, sig)) {
		resp_error(rs, API_DECRYPT_SIGNATURE, "signature does not match "
		    "rawData and the session_key");
		return;
	}
	pt = arena_alloc(rq->a, ctlen + 1);
	switch (crypto_aes128cbc_decrypt(key, iv, ct, ctlen, pt, &ptlen)) {
	case CRYPTO_AES_OK:
		break;
	case CRYPTO_AES_BAD_LENGTH:
		resp_error(rs, API_DECRYPT_INPUT, "`encryptedData` must be a "
		    "non-empty multiple of 16 bytes");
		return;
	case CRYPTO_AES_BAD_PADDING:
		resp_error(rs, API_DECRYPT_FAILED, "decryption failed (bad "
		    "padding): the session_key may have changed since the data "
		    "was fetched; call wx.login and log in again");
		return;
	}
	if (jsonparse_bytes((const char *)pt, ptlen, &plain, &at, &why) == -1 ||
	    !json_object_is_type(plain, json_type_object)) {
		json_object_put(plain);
		resp_error(rs, API_DECRYPT_FAILED,
		    "decrypted data is not a JSON object");
		return;
	}
	if (!json_object_object_get_ex(plain, "watermark", &wm) ||
	    (appid = jsonparse_string(wm, "appid")) == NULL ||
	    strcmp(appid, app->cfg.wechat_appid) != 0) {
		json_object_put(plain);
		resp_error(rs, API_DECRYPT_APPID,
		    "watermark.appid does not match this Mini Program");
		return;
	}
	json_object_object_del(plain, "watermark");
	resp_json(rs, 200, arena_strdup(rq->a, json_object_to_json_string_ext(
	    plain, JSON_C_TO_STRING_PLAIN)), "ok");
	resp_header(rs, "Cache-Control", "no-store");
	json_object_put(plain);
}

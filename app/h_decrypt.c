/*
 * h_decrypt: Mini Program encryptedData (wx.getUserProfile, wx.getWeRunData,
 * group info, ...) opened with the user's session_key, which never leaves
 * the server (lib/wxdata).  Data that does not open gets one answer,
 * whatever the reason, so that the endpoint is no padding oracle.
 */
#include <string.h>

#include "app.h"
#include "log.h"
#include "util.h"
#include "wxdata.h"

/* POST /api/v1/user/decrypt {encryptedData, iv, rawData?, signature?}. */
void
h_decrypt(struct app *app, struct req *rq, struct resp *rs)
{
	static const char *const fields[] = { "encryptedData", "iv", "rawData",
	    "signature", NULL };
	struct json_object	*body, *plain;
	struct wxdata_opts	 o;
	const char		*enc, *iv, *raw, *sig, *sk, *why;
	size_t			 sklen;

	if (req_json_body(rq, rs, &body) == -1 ||
	    req_json_only(rs, body, fields) == -1 ||
	    req_json_string(rs, body, "encryptedData", &enc) == -1 ||
	    req_json_string(rs, body, "iv", &iv) == -1 ||
	    req_json_opt_string(rs, body, "rawData", &raw) == -1 ||
	    req_json_opt_string(rs, body, "signature", &sig) == -1)
		return;
	if ((raw == NULL) != (sig == NULL)) {
		resp_error(rs, API_VALIDATION,
		    "fields `rawData` and `signature` go together");
		return;
	}
	if (cache_get(&app->cache, rq->a, arena_printf(rq->a, KEY_SESSION_KEY,
	    app->who.user_id), &sk, &sklen) != CACHE_OK) {
		resp_error(rs, API_CACHE_UNAVAILABLE, "session store unavailable");
		resp_header_str(rs, "Retry-After", "1");
		return;
	}
	if (sk == NULL) {
		resp_error(rs, API_SESSION_KEY_GONE, "no session_key on file: "
		    "call wx.login and log in again");
		return;
	}
	if (raw != NULL && !wxdata_signature_ok(rq->a, raw, sk, sig)) {
		resp_error(rs, API_DECRYPT_SIGNATURE, "signature does not match "
		    "rawData and the session_key");
		return;
	}
	o.appid = app->cfg.wechat_appid;
	o.max_age = app->cfg.decrypt_max_age;
	switch (wxdata_open(&o, sk, iv, enc, util_wall_us() / 1000000, rq->a,
	    &plain, &why)) {
	case WXDATA_OK:
		break;
	case WXDATA_BAD_KEY:
		log_error("decrypt: stored session_key of user %lld is not "
		    "16 bytes of base64", app->who.user_id);
		resp_error(rs, API_SESSION_KEY_GONE, "no usable session_key: "
		    "call wx.login and log in again");
		return;
	case WXDATA_BAD_INPUT:
		resp_error(rs, API_DECRYPT_INPUT, "%s", why);
		return;
	case WXDATA_FAILED:
		resp_error(rs, API_DECRYPT_FAILED, "decryption failed: the data "
		    "does not open with this session's key; call wx.login, log "
		    "in and fetch the data again");
		return;
	case WXDATA_OTHER_APP:
		resp_error(rs, API_DECRYPT_APPID,
		    "watermark.appid does not match this Mini Program");
		return;
	case WXDATA_TOO_OLD:
		resp_error(rs, API_DECRYPT_STALE, "the data is older than %lld "
		    "seconds (decrypt_max_age): fetch it again",
		    app->cfg.decrypt_max_age);
		return;
	}
	resp_json(rs, 200, arena_strdup(rq->a, json_object_to_json_string_ext(
	    plain, JSON_C_TO_STRING_PLAIN)), "ok");
	resp_header_str(rs, "Cache-Control", "no-store");
	json_object_put(plain);
}

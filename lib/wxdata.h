/*
 * wxdata: what WeChat gives a Mini Program encrypted with the user's
 * session_key (wx.getUserProfile, wx.getWeRunData, share and group
 * information, ...): base64 AES-128-CBC with PKCS#7 padding, holding a
 * JSON object whose watermark names the appid and the time.  Owns opening
 * it, and the rawData signature.
 *
 * Every way the data fails to open with the key -- bad padding, not JSON,
 * no watermark -- is one result, WXDATA_FAILED, so that a caller answering
 * them alike cannot be used as a padding oracle.  Input that is wrong
 * whatever the key (not base64, the wrong length) is WXDATA_BAD_INPUT.
 */
#ifndef WX_WXDATA_H
#define WX_WXDATA_H

#include <json-c/json.h>

#include "arena.h"

struct wxdata_opts {
	const char	*appid;		/* the watermark must name it */
	long long	 max_age;	/* seconds the watermark may be old; 0: any */
};

enum wxdata_result {
	WXDATA_OK,
	WXDATA_BAD_KEY,		/* the session_key is not 16 bytes of base64 */
	WXDATA_BAD_INPUT,	/* iv or data: not base64, or the wrong size */
	WXDATA_FAILED,		/* does not open with this key */
	WXDATA_OTHER_APP,	/* opened, but for another Mini Program */
	WXDATA_TOO_OLD		/* opened, but older than max_age */
};

/*
 * Open data (base64) with iv (base64) and the session_key (base64) at now
 * (unix seconds): on WXDATA_OK *plain is the object without its
 * watermark, the caller's to json_object_put.  On WXDATA_BAD_INPUT *why
 * says which field is wrong and how.
 */
enum wxdata_result wxdata_open(const struct wxdata_opts *,
	    const char *session_key, const char *iv, const char *data,
	    long long now, struct arena *, struct json_object **plain,
	    const char **why);
/* 1 when signature is hex(sha1(raw + session_key)), in constant time. */
int	wxdata_signature_ok(struct arena *, const char *raw,
	    const char *session_key, const char *signature);

#endif

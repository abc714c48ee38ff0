/*
 * wechat: calls to WeChat's server API through one reused libcurl handle
 * (connection reuse, connect and total timeouts from config): code2Session,
 * the server access_token (shared by all responders through Redis and
 * refreshed by one of them at a time under a Redis lock), and the phone
 * number exchange.  The appsecret and session keys never reach a log line.
 */
#ifndef WX_WECHAT_H
#define WX_WECHAT_H

#include <stddef.h>

#include <curl/curl.h>

#include "arena.h"
#include "cache.h"
#include "config.h"
#include "shm.h"

enum wechat_status {
	WECHAT_OK,
	WECHAT_ERRCODE,		/* WeChat answered with a non-zero errcode */
	WECHAT_UNAVAILABLE	/* timeout, network, HTTP error, not JSON */
};

struct wechat {
	CURL			*curl;
	const struct config	*cfg;
	struct cache		*cache;
	char			 errbuf[CURL_ERROR_SIZE];
	long			 errcode;	/* of the last WECHAT_ERRCODE */
	char			 errmsg[256];	/* what failed, for the log */
	unsigned long		 calls;		/* HTTP calls made */
	int64_t			 busy_us;	/* time spent calling WeChat */
	struct shm_region	*shm;		/* holds the circuit breaker */
	long long		 retry_after_s;	/* breaker open: when to retry */
};

struct wechat_session {
	const char	*openid;
	const char	*session_key;
	const char	*unionid;	/* NULL when WeChat sent none */
};

/*
 * Create the handle; 0 or -1.  The circuit breaker in shm guards every
 * call: open, calls fail at once as WECHAT_UNAVAILABLE with retry_after_s.
 */
int	wechat_init(struct wechat *, const struct config *, struct cache *,
	    struct shm_region *);
void	wechat_free(struct wechat *);
/* auth.code2Session for a wx.login code. */
enum wechat_status wechat_code2session(struct wechat *, struct arena *,
	    const char *code, struct wechat_session *);
/* The server access_token: from Redis, else fetched under the lock. */
enum wechat_status wechat_access_token(struct wechat *, struct arena *,
	    const char **token);
/* phonenumber.getPhoneNumber; refreshes the access_token once if stale. */
enum wechat_status wechat_phone_number(struct wechat *, struct arena *,
	    const char *code, const char **phone);

#endif

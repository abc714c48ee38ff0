/*
 * wechat: calls to WeChat's server API through one reused libcurl handle
 * (connection reuse, connect and total timeouts): code2Session,
 * the server access_token (shared by all responders through Redis and
 * refreshed by one of them at a time under a Redis lock), the phone
 * number exchange, subscribe messages and content security.  The appsecret and session keys never reach a log line.
 */
#ifndef WX_WECHAT_H
#define WX_WECHAT_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "arena.h"
#include "cache.h"
#include "guard.h"
#include "span.h"
#include "trace.h"

/* Which call gets the server access_token. */
enum wechat_token_api {
	WECHAT_TOKEN_STABLE,	/* cgi-bin/stable_token */
	WECHAT_TOKEN_CLASSIC	/* cgi-bin/token */
};

struct wechat_opts {
	const char	*appid;
	const char	*secret;
	const char	*api_base;	/* "https://api.weixin.qq.com" */
	int		 token_api;	/* enum wechat_token_api */
	long long	 connect_timeout_ms;
	long long	 timeout_ms;	/* of a whole call */
	struct guard	*guard;		/* NULL: none */
	/*
	 * How a call waits.  NULL: it blocks (curl_easy_perform, usleep).
	 * Else perform runs the transfer -- for example in a coroutine that
	 * yields until the loop's curl multi handle has finished it -- and
	 * pause waits, so that one process can have many calls in flight.
	 */
	CURLcode	(*perform)(void *io_arg, CURL *);
	void		(*pause)(void *io_arg, int64_t us);
	void		*io_arg;
};

enum wechat_status {
	WECHAT_OK,
	WECHAT_ERRCODE,		/* WeChat answered with a non-zero errcode */
	WECHAT_UNAVAILABLE	/* timeout, network, HTTP error, not JSON */
};

struct wechat {
	CURL			*curl;
	struct wechat_opts	 o;
	struct cache		*cache;
	char			 errbuf[CURL_ERROR_SIZE];
	long			 errcode;	/* of the last WECHAT_ERRCODE */
	char			 errmsg[256];	/* what failed, for the log */
	unsigned long		 calls;		/* HTTP calls made */
	int64_t			 busy_us;	/* time spent calling WeChat */
	long long		 retry_after_s;	/* breaker open: when to retry */
	const struct trace	*trace;		/* of the caller: NULL, or each
						   call is a span of it */
	struct spans		*spans;		/* NULL, or where the calls
						   record their spans */
	long			 http_status;	/* of the last call, 0: none */
	char			 host[128];	/* of api_base */
	int			 timed_out;	/* the last call did */
};

struct wechat_session {
	const char	*openid;
	const char	*session_key;
	const char	*unionid;	/* NULL when WeChat sent none */
};

/*
 * Create the handle; 0 or -1.  The guard's breaker is around every call:
 * open, calls fail at once as WECHAT_UNAVAILABLE with retry_after_s.
 */
int	wechat_init(struct wechat *, const struct wechat_opts *,
	    struct cache *);
void	wechat_free(struct wechat *);
/*
 * Sleep us microseconds as a call waits: through the pause hook (a
 * coroutine yields to its loop), else usleep.  For the callers' own
 * waits for another process (a lock), which must not hold a loop either.
 */
void	wechat_pause(struct wechat *, int64_t us);
/* auth.code2Session for a wx.login code. */
enum wechat_status wechat_code2session(struct wechat *, struct arena *,
	    const char *code, struct wechat_session *);
/* The server access_token: from Redis, else fetched under the lock. */
enum wechat_status wechat_access_token(struct wechat *, struct arena *,
	    const char **token);
/* phonenumber.getPhoneNumber; refreshes the access_token once if stale. */
enum wechat_status wechat_phone_number(struct wechat *, struct arena *,
	    const char *code, const char **phone);

/*
 * subscribeMessage.send of body (the JSON WeChat takes: touser,
 * template_id, data...); refreshes the access_token once if stale.
 * job_id, when not NULL, goes along in an X-Wxapp-Job header (WeChat
 * ignores it; it names the job in a proxy's or the stand-in's log).
 */
enum wechat_status wechat_subscribe_send(struct wechat *, struct arena *,
	    const char *body, const char *job_id, long long *msgid);

/* Content security's verdict on a text or an image. */
struct wechat_verdict {
	const char	*suggest;	/* "pass", "review" or "risky" */
	long		 label;		/* 100: normal; 20001...: why */
	const char	*trace_id;
};
/* msgSecCheck v2 of a text the user openid wrote, in scene 1..4. */
enum wechat_status wechat_msg_sec_check(struct wechat *, struct arena *,
	    const char *openid, int scene, const char *content,
	    struct wechat_verdict *);
/*
 * mediaCheckAsync v2 of an image (media_type 2) or audio (1) at an https
 * URL: *trace_id; the verdict comes later through message push, as a
 * wxa_media_check event with that trace_id.
 */
enum wechat_status wechat_media_check_async(struct wechat *, struct arena *,
	    const char *openid, int scene, const char *media_url,
	    int media_type, const char **trace_id);

#endif

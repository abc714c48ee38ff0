/*
 * wechat: WeChat's server API over libcurl.
 *
 * One easy handle lives as long as the responder; options are set per
 * call, so its connection cache keeps the TLS connection to WeChat open
 * between requests.  Every answer is read into the request arena, capped,
 * and parsed strictly; an errcode other than 0 is WECHAT_ERRCODE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "jsonparse.h"
#include "log.h"
#include "util.h"
#include "keys.h"
#include "wechat.h"

#define WECHAT_BODY_MAX		(64 * 1024)
#define TOKEN_LOCK_MS		"10000"
#define TOKEN_WAIT_STEP_US	50000
/* Refresh this long before WeChat's expiry, as WeChat's SDKs do. */
#define TOKEN_EARLY_S		300


struct sink {
	struct buf	b;
	int		overflow;
};

static size_t
on_data(char *p, size_t size, size_t n, void *ctx)
{
	struct sink	*s = ctx;

	if (s->b.len + size * n > WECHAT_BODY_MAX) {
		s->overflow = 1;
		return 0;
	}
	buf_add(&s->b, p, size * n);
	return size * n;
}

int
wechat_init(struct wechat *wx, const struct wechat_opts *o, struct cache *cc)
{
	const char	*h, *e, *at;

	memset(wx, 0, sizeof(*wx));
	wx->o = *o;
	wx->cache = cc;
	/*
	 * api_base's host, for the spans: "https://[user@]host[:port]/...";
	 * never the user part, which could hold a secret.
	 */
	h = o->api_base != NULL && strstr(o->api_base, "://") != NULL ?
	    strstr(o->api_base, "://") + 3 : "";
	e = h + strcspn(h, "/");
	if ((at = memchr(h, '@', (size_t)(e - h))) != NULL)
		h = at + 1;
	e = h + (*h == '[' ? strcspn(h, "]/") + (h[strcspn(h, "]/")] == ']') :
	    strcspn(h, ":/"));
	snprintf(wx->host, sizeof(wx->host), "%.*s", (int)(e - h), h);
	if ((wx->curl = curl_easy_init()) == NULL)
		return -1;
	return 0;
}

void
wechat_free(struct wechat *wx)
{
	if (wx->curl != NULL)
		curl_easy_cleanup(wx->curl);
	wx->curl = NULL;
}

void
wechat_pause(struct wechat *wx, int64_t us)
{
	if (wx->o.pause != NULL)
		wx->o.pause(wx->o.io_arg, us);
	else
		usleep((useconds_t)us);
}

/*
 * GET (post == NULL) or POST a JSON body to url, with one more header
 * line if header is not NULL (POST only); parse the answer.  On
 * WECHAT_OK *out is the answer (the caller puts it); errcode is checked.
 * `what` names the call in log lines (never the URL: it holds the secret).
 */
static enum wechat_status
wechat_http(struct wechat *wx, struct arena *a, const char *what,
    const char *url, const char *post, const char *header,
    const struct span *sp, struct json_object **out)
{
	struct curl_slist	*hdrs = NULL;
	struct json_object	*obj = NULL, *ec;
	struct trace		 span;
	char			 tp[13 + TRACE_HEADER_LEN + 1];
	char			 ts[12 + TRACE_STATE_MAX + 1];
	int			 w;
	struct sink		 sink;
	CURLcode		 cc;
	long			 http = 0;
	struct jsonparse_err	 err;

	*out = NULL;
	buf_init(&sink.b, a, 1024);
	sink.overflow = 0;
	wx->errbuf[0] = '\0';
	wx->errcode = 0;
	wx->retry_after_s = 0;
	wx->http_status = 0;
	curl_easy_setopt(wx->curl, CURLOPT_URL, url);
	curl_easy_setopt(wx->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(wx->curl, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)wx->o.connect_timeout_ms);
	curl_easy_setopt(wx->curl, CURLOPT_TIMEOUT_MS, (long)wx->o.timeout_ms);
	curl_easy_setopt(wx->curl, CURLOPT_ERRORBUFFER, wx->errbuf);
	curl_easy_setopt(wx->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(wx->curl, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(wx->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(wx->curl, CURLOPT_USERAGENT, "wxapp/" PACKAGE_VERSION);
	/*
	 * The caller's trace goes on: this call is a span of it, the one
	 * recorded when the trace is sampled.
	 */
	if (wx->trace != NULL && sp != NULL) {
		span = *wx->trace;
		memcpy(span.span_id, sp->id, sizeof(span.span_id));
	}
	if (wx->trace != NULL && (sp != NULL ||
	    trace_child(wx->trace, &span) == 0)) {
		memcpy(tp, "traceparent: ", 13);
		trace_header(&span, tp + 13);
		if (tp[13] != '\0')
			hdrs = curl_slist_append(hdrs, tp);
		/* The caller's tracestate goes along, as it came. */
		if (tp[13] != '\0' && span.state != NULL &&
		    (w = snprintf(ts, sizeof(ts), "tracestate: %s",
		    span.state)) > 0 && (size_t)w < sizeof(ts))
			hdrs = curl_slist_append(hdrs, ts);
	}
	if (post != NULL) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		if (header != NULL)
			hdrs = curl_slist_append(hdrs, header);
		curl_easy_setopt(wx->curl, CURLOPT_POSTFIELDS, post);
	} else
		curl_easy_setopt(wx->curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(wx->curl, CURLOPT_HTTPHEADER, hdrs);
	wx->calls++;
	cc = wx->o.perform != NULL ? wx->o.perform(wx->o.io_arg, wx->curl) :
	    curl_easy_perform(wx->curl);
	curl_easy_setopt(wx->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (cc != CURLE_OK) {
		wx->timed_out = cc == CURLE_OPERATION_TIMEDOUT;
		snprintf(wx->errmsg, sizeof(wx->errmsg), "%s: %.200s", what,
		    sink.overflow ? "answer too large" :
		    wx->errbuf[0] ? wx->errbuf : curl_easy_strerror(cc));
		return WECHAT_UNAVAILABLE;
	}
	curl_easy_getinfo(wx->curl, CURLINFO_RESPONSE_CODE, &http);
	wx->http_status = http;
	if (http != 200) {
		snprintf(wx->errmsg, sizeof(wx->errmsg), "%s: HTTP %ld", what,
		    http);
		return WECHAT_UNAVAILABLE;
	}
	if (jsonparse_bytes(sink.b.p, sink.b.len, &obj, &err) == -1 ||
	    !json_object_is_type(obj, json_type_object)) {
		snprintf(wx->errmsg, sizeof(wx->errmsg),
		    "%s: answer is not a JSON object (byte %zu)", what,
		    obj == NULL ? err.at : 0);
		json_object_put(obj);
		return WECHAT_UNAVAILABLE;
	}
	if (json_object_object_get_ex(obj, "errcode", &ec) &&
	    (wx->errcode = (long)json_object_get_int64(ec)) != 0) {
		snprintf(wx->errmsg, sizeof(wx->errmsg), "%s: errcode %ld: %.64s",
		    what, wx->errcode, jsonparse_string(obj, "errmsg") ?
		    jsonparse_string(obj, "errmsg") : "");
		json_object_put(obj);
		return WECHAT_ERRCODE;
	}
	*out = obj;
	return WECHAT_OK;
}

/*
 * wechat_http behind the circuit breaker.  Timeouts, transport errors,
 * HTTP errors, garbage and errcode -1 count as failures; any other
 * errcode is WeChat working and answering about the request, a success.
 */
static enum wechat_status
wechat_call(struct wechat *wx, struct arena *a, const char *what,
    const char *url, const char *post, const char *header,
    struct json_object **out)
{
	enum wechat_status	 st;
	struct span		*sp;
	int64_t			 t0, retry;

	if (!guard_allow(wx->o.guard, &retry)) {
		*out = NULL;
		wx->errcode = 0;
		wx->retry_after_s = (retry + 999999) / 1000000;
		snprintf(wx->errmsg, sizeof(wx->errmsg), "%s: circuit open", what);
		return WECHAT_UNAVAILABLE;
	}
	t0 = util_mono_us();
	wx->timed_out = 0;
	sp = span_begin(wx->spans, what, SPAN_CLIENT);
	span_attr_str(sp, "http.request.method", post != NULL ? "POST" : "GET");
	/* Copied: a concurrent caller swaps struct wechat between requests. */
	span_attr_copy(wx->spans, sp, "server.address", wx->host);
	st = wechat_http(wx, a, what, url, post, header, sp, out);
	if (wx->http_status != 0)
		span_attr_int(sp, "http.response.status_code", wx->http_status);
	span_end(sp, st == WECHAT_UNAVAILABLE);
	wx->busy_us += util_mono_us() - t0;
	guard_done(wx->o.guard, st == WECHAT_OK || (st == WECHAT_ERRCODE &&
	    wx->errcode != -1) ? BREAKER_SUCCEEDED : wx->timed_out ?
	    BREAKER_TIMED_OUT : BREAKER_FAILED, t0);
	return st;
}

/* URL-escape s into the arena; NULL on failure. */
static char *
wechat_escape(struct wechat *wx, struct arena *a, const char *s)
{
	char	*e, *r;

	if ((e = curl_easy_escape(wx->curl, s, 0)) == NULL)
		return NULL;
	r = arena_strdup(a, e);
	curl_free(e);
	return r;
}

/* A string field copied into the arena, or NULL. */
static const char *
field(struct arena *a, struct json_object *o, const char *name)
{
	const char	*s = jsonparse_string(o, name);

	return s != NULL && s[0] != '\0' ? arena_strdup(a, s) : NULL;
}

enum wechat_status
wechat_code2session(struct wechat *wx, struct arena *a, const char *code,
    struct wechat_session *ws)
{
	struct json_object	*o;
	enum wechat_status	 st;
	char			*url, *ecode, *eappid, *esecret;

	if ((ecode = wechat_escape(wx, a, code)) == NULL ||
	    (eappid = wechat_escape(wx, a, wx->o.appid)) == NULL ||
	    (esecret = wechat_escape(wx, a, wx->o.secret)) == NULL) {
		snprintf(wx->errmsg, sizeof(wx->errmsg), "code2session: escape");
		return WECHAT_UNAVAILABLE;
	}
	url = arena_printf(a, "%s/sns/jscode2session?appid=%s&secret=%s"
	    "&js_code=%s&grant_type=authorization_code",
	    wx->o.api_base, eappid, esecret, ecode);
	if ((st = wechat_call(wx, a, "code2session", url, NULL, NULL, &o)) != WECHAT_OK)
		return st;
	ws->openid = field(a, o, "openid");
	ws->session_key = field(a, o, "session_key");
	ws->unionid = field(a, o, "unionid");
	json_object_put(o);
	if (ws->openid == NULL || ws->session_key == NULL) {
		snprintf(wx->errmsg, sizeof(wx->errmsg),
		    "code2session: answer lacks openid or session_key");
		return WECHAT_UNAVAILABLE;
	}
	return WECHAT_OK;
}

/* Ask WeChat for a new access_token; *ttl is its life in seconds. */
static enum wechat_status
wechat_fetch_token(struct wechat *wx, struct arena *a, const char **token,
    long long *ttl)
{
	struct json_object	*o, *body, *exp;
	enum wechat_status	 st;
	char			*url, *eappid, *esecret;
	const char		*post = NULL;

	if ((eappid = wechat_escape(wx, a, wx->o.appid)) == NULL ||
	    (esecret = wechat_escape(wx, a, wx->o.secret)) == NULL) {
		snprintf(wx->errmsg, sizeof(wx->errmsg), "token: escape");
		return WECHAT_UNAVAILABLE;
	}
	if (wx->o.token_api == WECHAT_TOKEN_STABLE) {
		url = arena_printf(a, "%s/cgi-bin/stable_token",
		    wx->o.api_base);
		body = json_object_new_object();
		json_object_object_add(body, "grant_type",
		    json_object_new_string("client_credential"));
		json_object_object_add(body, "appid",
		    json_object_new_string(wx->o.appid));
		json_object_object_add(body, "secret",
		    json_object_new_string(wx->o.secret));
		json_object_object_add(body, "force_refresh",
		    json_object_new_boolean(0));
		post = arena_strdup(a, json_object_to_json_string_ext(body,
		    JSON_C_TO_STRING_PLAIN));
		json_object_put(body);
	} else
		url = arena_printf(a, "%s/cgi-bin/token?grant_type="
		    "client_credential&appid=%s&secret=%s",
		    wx->o.api_base, eappid, esecret);
	if ((st = wechat_call(wx, a, "access_token", url, post, NULL, &o)) != WECHAT_OK)
		return st;
	*token = field(a, o, "access_token");
	*ttl = json_object_object_get_ex(o, "expires_in", &exp) ?
	    (long long)json_object_get_int64(exp) : 0;
	json_object_put(o);
	if (*token == NULL || *ttl <= 0) {
		snprintf(wx->errmsg, sizeof(wx->errmsg),
		    "access_token: answer lacks access_token or expires_in");
		return WECHAT_UNAVAILABLE;
	}
	return WECHAT_OK;
}

/*
 * The shared token.  One responder at a time refreshes (SET NX lock); the
 * others wait for its result for up to the WeChat timeout.  With Redis
 * down, each responder fetches for itself: with stable_token that is
 * harmless, since WeChat returns the same token to every caller.
 */
enum wechat_status
wechat_access_token(struct wechat *wx, struct arena *a, const char **token)
{
	char			 owner[32];
	long long		 ttl;
	size_t			 len;
	int64_t			 deadline;
	enum wechat_status	 st;
	int			 got;

	if (cache_get(wx->cache, a, KEYS_WX_TOKEN, token, &len) == CACHE_OK &&
	    *token != NULL)
		return WECHAT_OK;
	if (crypto_random_b64url(16, owner) == -1)
		return WECHAT_UNAVAILABLE;
	deadline = util_mono_us() + wx->o.timeout_ms * 1000;
	while ((got = cache_lock(wx->cache, KEYS_WX_TOKEN_LOCK, owner,
	    TOKEN_LOCK_MS)) == 0) {
		if (util_mono_us() > deadline) {
			snprintf(wx->errmsg, sizeof(wx->errmsg),
			    "access_token: another responder is still refreshing");
			return WECHAT_UNAVAILABLE;
		}
		wechat_pause(wx, TOKEN_WAIT_STEP_US);
		if (cache_get(wx->cache, a, KEYS_WX_TOKEN, token, &len) ==
		    CACHE_OK && *token != NULL)
			return WECHAT_OK;
	}
	/*
	 * got == 1: ours to refresh, unless the responder that held the lock
	 * stored its token between our first look and our lock; -1: Redis is
	 * down, fetch unshared.
	 */
	if (got == 1 && cache_get(wx->cache, a, KEYS_WX_TOKEN, token, &len) ==
	    CACHE_OK && *token != NULL) {
		cache_del_if(wx->cache, KEYS_WX_TOKEN_LOCK, owner);
		return WECHAT_OK;
	}
	st = wechat_fetch_token(wx, a, token, &ttl);
	if (got == 1) {
		if (st == WECHAT_OK) {
			ttl = ttl > 2 * TOKEN_EARLY_S ? ttl - TOKEN_EARLY_S : ttl / 2;
			(void)cache_setex(wx->cache, KEYS_WX_TOKEN, *token,
			    strlen(*token), ttl);
			log_info("wechat: access_token refreshed, cached %lld s",
			    ttl);
		}
		cache_del_if(wx->cache, KEYS_WX_TOKEN_LOCK, owner);
	}
	return st;
}

/* 40001, 40014, 42001: the token is stale; refresh and retry once. */
static int
stale_token(long errcode)
{
	return errcode == 40001 || errcode == 40014 || errcode == 42001;
}

/*
 * POST post to path?access_token=<the shared token>, with header (or
 * NULL); when WeChat calls the token stale, refresh it and try once more.
 */
static enum wechat_status
wechat_call_token(struct wechat *wx, struct arena *a, const char *what,
    const char *path, const char *post, const char *header,
    struct json_object **out)
{
	enum wechat_status	 st;
	const char		*token;
	char			*url, *etok;
	int			 attempt;

	for (attempt = 0; attempt < 2; attempt++) {
		if ((st = wechat_access_token(wx, a, &token)) != WECHAT_OK)
			return st;
		if ((etok = wechat_escape(wx, a, token)) == NULL)
			return WECHAT_UNAVAILABLE;
		url = arena_printf(a, "%s%s?access_token=%s", wx->o.api_base,
		    path, etok);
		st = wechat_call(wx, a, what, url, post, header, out);
		if (st != WECHAT_ERRCODE || !stale_token(wx->errcode))
			break;
		log_warn("wechat: access_token rejected (errcode %ld); "
		    "refreshing", wx->errcode);
		/* Drop the cached token if it is still the bad one. */
		cache_del_if(wx->cache, KEYS_WX_TOKEN, token);
	}
	return st;
}

enum wechat_status
wechat_phone_number(struct wechat *wx, struct arena *a, const char *code,
    const char **phone)
{
	struct json_object	*o, *body, *info;
	enum wechat_status	 st;
	const char		*post;

	body = json_object_new_object();
	json_object_object_add(body, "code", json_object_new_string(code));
	post = arena_strdup(a, json_object_to_json_string_ext(body,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(body);
	if ((st = wechat_call_token(wx, a, "getuserphonenumber",
	    "/wxa/business/getuserphonenumber", post, NULL, &o)) != WECHAT_OK)
		return st;
	*phone = json_object_object_get_ex(o, "phone_info", &info) ?
	    field(a, info, "phoneNumber") : NULL;
	json_object_put(o);
	if (*phone == NULL) {
		snprintf(wx->errmsg, sizeof(wx->errmsg),
		    "getuserphonenumber: answer lacks phone_info.phoneNumber");
		return WECHAT_UNAVAILABLE;
	}
	return WECHAT_OK;
}

enum wechat_status
wechat_subscribe_send(struct wechat *wx, struct arena *a, const char *body,
    const char *job_id, long long *msgid)
{
	struct json_object	*o, *m;
	enum wechat_status	 st;
	const char		*hdr = NULL;

	if (job_id != NULL)
		hdr = arena_printf(a, "X-Wxapp-Job: %s", job_id);
	if ((st = wechat_call_token(wx, a, "subscribe_send",
	    "/cgi-bin/message/subscribe/send", body, hdr, &o)) != WECHAT_OK)
		return st;
	*msgid = json_object_object_get_ex(o, "msgid", &m) ?
	    (long long)json_object_get_int64(m) : 0;
	json_object_put(o);
	return WECHAT_OK;
}

enum wechat_status
wechat_msg_sec_check(struct wechat *wx, struct arena *a, const char *openid,
    int scene, const char *content, struct wechat_verdict *v)
{
	struct json_object	*o, *body, *res, *label;
	enum wechat_status	 st;

	body = json_object_new_object();
	json_object_object_add(body, "version", json_object_new_int(2));
	json_object_object_add(body, "openid", json_object_new_string(openid));
	json_object_object_add(body, "scene", json_object_new_int(scene));
	json_object_object_add(body, "content",
	    json_object_new_string(content));
	st = wechat_call_token(wx, a, "msg_sec_check", "/wxa/msg_sec_check",
	    arena_strdup(a, json_object_to_json_string_ext(body,
	    JSON_C_TO_STRING_PLAIN)), NULL, &o);
	json_object_put(body);
	if (st != WECHAT_OK)
		return st;
	v->trace_id = field(a, o, "trace_id");
	v->suggest = json_object_object_get_ex(o, "result", &res) ?
	    field(a, res, "suggest") : NULL;
	/* label comes as a number, or as a string. */
	v->label = res != NULL && json_object_object_get_ex(res, "label",
	    &label) ? (long)json_object_get_int64(label) : 0;
	json_object_put(o);
	if (v->suggest == NULL || (strcmp(v->suggest, "pass") != 0 &&
	    strcmp(v->suggest, "review") != 0 &&
	    strcmp(v->suggest, "risky") != 0)) {
		snprintf(wx->errmsg, sizeof(wx->errmsg),
		    "msg_sec_check: answer lacks result.suggest");
		return WECHAT_UNAVAILABLE;
	}
	return WECHAT_OK;
}

enum wechat_status
wechat_media_check_async(struct wechat *wx, struct arena *a,
    const char *openid, int scene, const char *media_url, int media_type,
    const char **trace_id)
{
	struct json_object	*o, *body;
	enum wechat_status	 st;

	body = json_object_new_object();
	json_object_object_add(body, "media_url",
	    json_object_new_string(media_url));
	json_object_object_add(body, "media_type",
	    json_object_new_int(media_type));
	json_object_object_add(body, "version", json_object_new_int(2));
	json_object_object_add(body, "openid", json_object_new_string(openid));
	json_object_object_add(body, "scene", json_object_new_int(scene));
	st = wechat_call_token(wx, a, "media_check_async",
	    "/wxa/media_check_async", arena_strdup(a,
	    json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN)),
	    NULL, &o);
	json_object_put(body);
	if (st != WECHAT_OK)
		return st;
	*trace_id = field(a, o, "trace_id");
	json_object_put(o);
	if (*trace_id == NULL) {
		snprintf(wx->errmsg, sizeof(wx->errmsg),
		    "media_check_async: answer lacks trace_id");
		return WECHAT_UNAVAILABLE;
	}
	return WECHAT_OK;
}

/*
 * Unit tests for lib/wechat against the WeChat stand-in
 * (tests/wechat/standin.py) and the Redis tests/unit/services.sh started:
 * WXAPP_TEST_WECHAT_URL, WXAPP_TEST_WECHAT_APPID, WXAPP_TEST_WECHAT_SECRET
 * and WXAPP_TEST_REDIS.  The stand-in derives its answers from the codes
 * (see its header), so the expected openids are computed here the same way.
 */
#include "check_run.h"
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cache.h"
#include "crypto.h"
#include "keys.h"
#include "log.h"
#include "svc.h"
#include "util.h"
#include "wechat.h"

#define CODE2SESSION	"/sns/jscode2session"
#define STABLE_TOKEN	"/cgi-bin/stable_token"
#define PHONE		"/wxa/business/getuserphonenumber"

static struct wechat	wx;
static struct cache	cc;
static struct arena	a;

/* Collect an answer of the stand-in into a buf. */
static size_t
collect(char *p, size_t size, size_t n, void *ctx)
{
	buf_add(ctx, p, size * n);
	return size * n;
}

/*
 * A request to the stand-in's control paths (/__control, /__stats,
 * /__reset): its JSON answer, which the caller puts.
 */
static struct json_object *
standin(const char *path, const char *post)
{
	struct json_object	*o;
	struct buf		 b;
	CURL			*c;
	char			*url;
	long			 http = 0;

	buf_init(&b, &a, 256);
	url = arena_printf(&a, "%s%s", svc_env("WXAPP_TEST_WECHAT_URL"), path);
	c = curl_easy_init();
	ck_assert_ptr_nonnull(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (post != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
	curl_easy_cleanup(c);
	ck_assert_msg(http == 200, "%s: HTTP %ld: %s", path, http,
	    buf_cstr(&b));
	o = json_tokener_parse(buf_cstr(&b));
	ck_assert_ptr_nonnull(o);
	return o;
}

/* Set the stand-in's behaviour: a JSON object of /__control settings. */
static void
control(const char *settings)
{
	json_object_put(standin("/__control", settings));
}

/* How many calls the stand-in has answered on path. */
static int
calls(const char *path)
{
	struct json_object	*o, *c, *n;
	int			 v = 0;

	o = standin("/__stats", NULL);
	if (json_object_object_get_ex(o, "calls", &c) &&
	    json_object_object_get_ex(c, path, &n))
		v = json_object_get_int(n);
	json_object_put(o);
	return v;
}

/* A Redis value as a C string, or NULL. */
static const char *
redis_get(const char *key)
{
	const char	*v;
	size_t		 len;

	ck_assert_int_eq(cache_get(&cc, &a, key, &v, &len), CACHE_OK);
	return v;
}

/* A Redis key's TTL in seconds. */
static long long
redis_ttl(const char *key)
{
	const char	*argv[2] = { "TTL", key };
	size_t		 len[2] = { 3, strlen(key) };
	redisReply	*r;
	long long	 ttl;

	ck_assert_int_eq(cache_cmd(&cc, &r, 2, argv, len), CACHE_OK);
	ttl = r->integer;
	freeReplyObject(r);
	return ttl;
}

static void
redis_del(const char *key)
{
	const char	*argv[2] = { "DEL", key };
	size_t		 len[2] = { 3, strlen(key) };
	redisReply	*r;

	ck_assert_int_eq(cache_cmd(&cc, &r, 2, argv, len), CACHE_OK);
	freeReplyObject(r);
}

/* The stand-in's openid for a user name: "o" + base64url(sha256)[:27]. */
static const char *
openid_of(const char *prefix, const char *name)
{
	unsigned char	 h[32];
	char		 b64[48];
	char		*in;

	in = arena_printf(&a, "%s:%s", prefix, name);
	crypto_sha256(in, strlen(in), h);
	crypto_b64url_encode(h, sizeof(h), b64);
	b64[27] = '\0';
	return arena_printf(&a, "%c%s", prefix[0], b64);
}

/* The stand-in's session_key of a code: base64(sha256(...)[:16]). */
static const char *
session_key_of(const char *code)
{
	unsigned char	 h[32];
	char		 b64[32];
	char		*in;

	in = arena_printf(&a, "session_key:%s", code);
	crypto_sha256(in, strlen(in), h);
	crypto_b64_encode(h, 16, b64);
	return arena_strdup(&a, b64);
}

/* The stand-in's phone number of a phone code. */
static const char *
phone_of(const char *code)
{
	unsigned char	 h[32];
	uint64_t	 v = 0;
	char		*in;
	int		 i;

	in = arena_printf(&a, "phone:%s", code);
	crypto_sha256(in, strlen(in), h);
	for (i = 0; i < 8; i++)
		v = v << 8 | h[i];
	return arena_printf(&a, "+86 1%c%09llu", "3456789"[v % 7],
	    (unsigned long long)(v / 7 % 1000000000));
}

/* A breaker of a minimum volume of 3, opened by 2 timeouts in a row. */
static struct guard *
new_guard(void)
{
	static const struct breaker_params	p = { 10, 3, 50, 60000, 1, 2, 0 };

	return svc_guard("wechat", &p);
}


/* A port on loopback that refuses connections (bound, not listening). */
static int
refusing_port(int *port)
{
	struct sockaddr_in	sin;
	socklen_t		sl = sizeof(sin);
	int			s;

	s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ne(s, -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
	*port = ntohs(sin.sin_port);
	return s;
}

/*
 * Read one HTTP request from fd: the head, and the body it announces
 * (libcurl spells the header Content-Length).
 */
static void
read_request(int fd)
{
	char	 req[8192], *end, *cl;
	size_t	 have = 0, want = 0;
	ssize_t	 n;

	while (have < sizeof(req) - 1) {
		if ((n = read(fd, req + have, sizeof(req) - 1 - have)) <= 0)
			return;
		have += (size_t)n;
		req[have] = '\0';
		if ((end = strstr(req, "\r\n\r\n")) == NULL)
			continue;
		want = (size_t)(end + 4 - req);
		if ((cl = strstr(req, "Content-Length: ")) != NULL && cl < end)
			want += strtoul(cl + 16, NULL, 10);
		if (have >= want)
			return;
	}
}

/*
 * A server of our own for answers the stand-in does not give: a child
 * that answers one request on a loopback port with body, in an HTTP 200.
 * wx.o.api_base points at it; the child's pid is returned.
 */
static pid_t
answer_once(const char *body, size_t len)
{
	struct sockaddr_in	 sin;
	socklen_t		 sl = sizeof(sin);
	pid_t			 parent = getpid(), pid;
	char			 head[128];
	int			 s, c, n;

	s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ne(s, -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(s, 4), 0);
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
	wx.o.api_base = arena_printf(&a, "http://127.0.0.1:%d",
	    ntohs(sin.sin_port));
	n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\nConnection: close"
	    "\r\n\r\n", len);
	ck_assert(n > 0 && (size_t)n < sizeof(head));
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || (c = accept(s, NULL, NULL)) == -1)
			_exit(1);
		read_request(c);
		/* A client that hung up early is no error here. */
		signal(SIGPIPE, SIG_IGN);
		if (write(c, head, (size_t)n) != n ||
		    write(c, body, len) != (ssize_t)len)
			_exit(1);
		/* Then wait for the client to close. */
		(void)shutdown(c, SHUT_WR);
		while (read(c, head, sizeof(head)) > 0)
			;
		/* The test's state is the parent's (this frees our copy). */
		wechat_free(&wx);
		cache_close(&cc);
		arena_free(&a);
		_exit(0);
	}
	close(s);
	return pid;
}

static void
reap(pid_t pid)
{
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}

static void
open_wechat(struct wechat *w, struct guard *g)
{
	struct wechat_opts	o = {
		.appid = svc_env("WXAPP_TEST_WECHAT_APPID"),
		.secret = svc_env("WXAPP_TEST_WECHAT_SECRET"),
		.api_base = svc_env("WXAPP_TEST_WECHAT_URL"),
		.token_api = WECHAT_TOKEN_STABLE,
		.connect_timeout_ms = 500,
		.timeout_ms = 1000,
		.guard = g
	};

	ck_assert_int_eq(wechat_init(w, &o, &cc), 0);
}

static void
setup(void)
{
	struct cache_opts	o = { .password = "",
	    .connect_timeout_ms = 200, .command_timeout_ms = 500 };

	log_open(NULL, LOG_LEVEL_ERROR + 1, 0);
	arena_init(&a, 4096, 1);
	json_object_put(standin("/__reset", "{}"));
	o.addr = svc_env("WXAPP_TEST_REDIS");
	cache_init(&cc, &o);
	redis_del(KEYS_WX_TOKEN);
	redis_del(KEYS_WX_TOKEN_LOCK);
	open_wechat(&wx, NULL);
}

static void
teardown(void)
{
	wechat_free(&wx);
	cache_close(&cc);
	arena_free(&a);
}

START_TEST(code2session_returns_the_session)
{
	struct wechat_session	ws;

	ck_assert_int_eq(wechat_code2session(&wx, &a, "user-alice-1", &ws),
	    WECHAT_OK);
	ck_assert_str_eq(ws.openid, openid_of("openid", "alice"));
	ck_assert_str_eq(ws.session_key, session_key_of("user-alice-1"));
	ck_assert_ptr_null(ws.unionid);
	/* Another login of the same user, with a unionid this time. */
	ck_assert_int_eq(wechat_code2session(&wx, &a, "user-alice-union-2",
	    &ws), WECHAT_OK);
	ck_assert_str_eq(ws.openid, openid_of("openid", "alice"));
	ck_assert_str_eq(ws.unionid, openid_of("unionid", "alice"));
	ck_assert_str_eq(ws.session_key, session_key_of("user-alice-union-2"));
	ck_assert_int_eq(calls(CODE2SESSION), 2);
	ck_assert_uint_eq(wx.calls, 2);
	ck_assert_int_gt(wx.busy_us, 0);
}
END_TEST

START_TEST(the_code_is_url_escaped)
{
	static const char	code[] = "a&js_code=b c+d/%?#e";
	struct wechat_session	ws;

	ck_assert_int_eq(wechat_code2session(&wx, &a, code, &ws), WECHAT_OK);
	ck_assert_str_eq(ws.openid, openid_of("openid", code));
}
END_TEST

START_TEST(errcodes_are_wechat_errcode)
{
	static const struct {
		const char	*code;
		long		 errcode;
	} cases[] = {
		{ "invalid-1", 40029 },
		{ "risky-1", 40226 },
		{ "busy-1", -1 },
		{ "quota-1", 45011 },
	};
	struct wechat_session	ws;
	size_t			i;
	char			want[32];

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(wechat_code2session(&wx, &a, cases[i].code,
		    &ws), WECHAT_ERRCODE);
		ck_assert_int_eq(wx.errcode, cases[i].errcode);
		snprintf(want, sizeof(want), "errcode %ld", cases[i].errcode);
		ck_assert_ptr_nonnull(strstr(wx.errmsg, want));
	}
	/* A code is single use. */
	ck_assert_int_eq(wechat_code2session(&wx, &a, "once", &ws), WECHAT_OK);
	ck_assert_int_eq(wx.errcode, 0);
	ck_assert_int_eq(wechat_code2session(&wx, &a, "once", &ws),
	    WECHAT_ERRCODE);
	ck_assert_int_eq(wx.errcode, 40163);
	/* Our own credentials wrong. */
	wx.o.secret = "wrong";
	ck_assert_int_eq(wechat_code2session(&wx, &a, "c1", &ws),
	    WECHAT_ERRCODE);
	ck_assert_int_eq(wx.errcode, 40125);
	ck_assert_ptr_null(strstr(wx.errmsg, "wrong"));
	wx.o.appid = "wxnotours";
	ck_assert_int_eq(wechat_code2session(&wx, &a, "c1", &ws),
	    WECHAT_ERRCODE);
	ck_assert_int_eq(wx.errcode, 40013);
}
END_TEST

START_TEST(garbage_answers_are_unavailable)
{
	static const struct {
		const char	*code;
		const char	*why;
	} cases[] = {
		{ "garbage-1", "not a JSON object" },
		{ "trunc-1", "not a JSON object" },
		{ "http500-1", "HTTP 500" },
	};
	struct wechat_session	ws;
	size_t			i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_int_eq(wechat_code2session(&wx, &a, cases[i].code,
		    &ws), WECHAT_UNAVAILABLE);
		ck_assert_int_eq(wx.errcode, 0);
		ck_assert_int_eq(wx.timed_out, 0);
		ck_assert_msg(strstr(wx.errmsg, cases[i].why) != NULL,
		    "%s: %s", cases[i].code, wx.errmsg);
	}
	/* A 404 with a JSON errcode in its body: HTTP decides. */
	wx.o.api_base = arena_printf(&a, "%s/nosuchprefix",
	    svc_env("WXAPP_TEST_WECHAT_URL"));
	ck_assert_int_eq(wechat_code2session(&wx, &a, "c1", &ws),
	    WECHAT_UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(wx.errmsg, "HTTP 404"));
	ck_assert_int_eq(wx.errcode, 0);
}
END_TEST

START_TEST(answers_we_cannot_use_are_unavailable)
{
	static const struct {
		const char	*body;
		const char	*why;
	} cases[] = {
		{ "", "not a JSON object" },
		{ "[1, 2]", "not a JSON object" },
		{ "{\"openid\": \"o1\"} trailing", "not a JSON object" },
		{ "{\"openid\": \"o1\"}", "lacks openid or session_key" },
		{ "{\"session_key\": \"k\", \"openid\": \"\"}",
		    "lacks openid or session_key" },
		{ "{\"errcode\": 0, \"errmsg\": \"ok\", \"openid\": 7, "
		    "\"session_key\": \"k\"}", "lacks openid or session_key" },
	};
	static const char	ok[] = "{\"errcode\": 0, \"errmsg\": \"ok\", "
	    "\"openid\": \"o1\", \"session_key\": \"k\"}";
	struct wechat_session	ws;
	size_t			i;
	pid_t			pid;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pid = answer_once(cases[i].body, strlen(cases[i].body));
		ck_assert_int_eq(wechat_code2session(&wx, &a, "c", &ws),
		    WECHAT_UNAVAILABLE);
		ck_assert_msg(strstr(wx.errmsg, cases[i].why) != NULL,
		    "%s: %s", cases[i].body, wx.errmsg);
		reap(pid);
	}
	/* errcode 0 is no error. */
	pid = answer_once(ok, strlen(ok));
	ck_assert_int_eq(wechat_code2session(&wx, &a, "c", &ws), WECHAT_OK);
	ck_assert_str_eq(ws.openid, "o1");
	reap(pid);
}
END_TEST

START_TEST(an_answer_too_large_is_cut_off)
{
	static const char	 ok[] =
	    "{\"openid\": \"o1\", \"session_key\": \"k\"}";
	struct wechat_session	 ws;
	char			*big;
	pid_t			 pid;

	/* Valid JSON, padded with blanks. */
	big = arena_alloc(&a, 70000);
	memset(big, ' ', 70000);
	memcpy(big, ok, strlen(ok));
	pid = answer_once(big, 70000);
	ck_assert_int_eq(wechat_code2session(&wx, &a, "c", &ws),
	    WECHAT_UNAVAILABLE);
	ck_assert_ptr_nonnull(strstr(wx.errmsg, "answer too large"));
	reap(pid);
	/* Just under the cap is fine. */
	pid = answer_once(big, 60000);
	ck_assert_int_eq(wechat_code2session(&wx, &a, "c", &ws), WECHAT_OK);
	reap(pid);
}
END_TEST

START_TEST(a_token_answer_we_cannot_use)
{
	static const char	*bodies[] = {
		"{\"access_token\": \"t\"}",
		"{\"access_token\": \"t\", \"expires_in\": 0}",
		"{\"expires_in\": 7200}",
	};
	const char		*tok;
	size_t			 i;
	pid_t			 pid;

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		pid = answer_once(bodies[i], strlen(bodies[i]));
		ck_assert_int_eq(wechat_access_token(&wx, &a, &tok),
		    WECHAT_UNAVAILABLE);
		ck_assert_ptr_nonnull(strstr(wx.errmsg,
		    "lacks access_token or expires_in"));
		reap(pid);
		/* Nothing cached, and the lock given back. */
		ck_assert_ptr_null(redis_get(KEYS_WX_TOKEN));
		ck_assert_ptr_null(redis_get(KEYS_WX_TOKEN_LOCK));
	}
}
END_TEST

START_TEST(a_slow_wechat_times_out)
{
	struct wechat_session	ws;
	int64_t			t0;
	long			ms;

	wx.o.timeout_ms = 300;
	t0 = util_mono_us();
	ck_assert_int_eq(wechat_code2session(&wx, &a, "slow3000-1", &ws),
	    WECHAT_UNAVAILABLE);
	ms = svc_ms_since(t0);
	ck_assert_int_ge(ms, 280);
	ck_assert_int_lt(ms, 1500);
	ck_assert_int_eq(wx.timed_out, 1);
	/* Latency under the timeout is fine, and the handle still works. */
	control("{\"latency_ms\": 100}");
	ck_assert_int_eq(wechat_code2session(&wx, &a, "c2", &ws), WECHAT_OK);
	ck_assert_int_eq(wx.timed_out, 0);
}
END_TEST

START_TEST(a_refused_connection_is_unavailable_at_once)
{
	struct wechat_session	ws;
	int64_t			t0;
	int			s, port;

	s = refusing_port(&port);
	wx.o.api_base = arena_printf(&a, "http://127.0.0.1:%d", port);
	t0 = util_mono_us();
	ck_assert_int_eq(wechat_code2session(&wx, &a, "c1", &ws),
	    WECHAT_UNAVAILABLE);
	ck_assert_int_lt(svc_ms_since(t0), 200);
	ck_assert_int_eq(wx.timed_out, 0);
	/* Never the secret in what is logged. */
	ck_assert_ptr_null(strstr(wx.errmsg,
	    svc_env("WXAPP_TEST_WECHAT_SECRET")));
	close(s);
}
END_TEST

START_TEST(only_failures_count_against_the_breaker)
{
	struct guard		*g = new_guard();
	struct breaker		*br = g->br;
	struct wechat_session	 ws;
	int			 i;
	int64_t			 t0;

	wechat_free(&wx);
	open_wechat(&wx, g);
	/* WeChat answering about the code: working, whatever the errcode. */
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(wechat_code2session(&wx, &a, "invalid-x",
		    &ws), WECHAT_ERRCODE);
	ck_assert_int_eq(br->state, BREAKER_CLOSED);
	/* -1 is WeChat failing: with the volume reached, it opens. */
	breaker_reset(br, util_mono_us());
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(wechat_code2session(&wx, &a, "busy-x", &ws),
		    WECHAT_ERRCODE);
	ck_assert_int_eq(br->state, BREAKER_OPEN);
	t0 = util_mono_us();
	ck_assert_int_eq(wechat_code2session(&wx, &a, "c1", &ws),
	    WECHAT_UNAVAILABLE);
	ck_assert_int_lt(svc_ms_since(t0), 20);
	ck_assert_int_eq(wx.retry_after_s, 60);
	ck_assert_int_eq(wx.errcode, 0);
	ck_assert_ptr_nonnull(strstr(wx.errmsg, "circuit open"));
	ck_assert_int_eq(calls(CODE2SESSION), 7);
	wechat_free(&wx);
	svc_guard_free(g);
}
END_TEST

START_TEST(timeouts_open_the_breaker)
{
	struct guard		*g = new_guard();
	struct breaker		*br = g->br;
	struct wechat_session	 ws;
	const char		*tok;
	int64_t			 t0;

	wechat_free(&wx);
	open_wechat(&wx, g);
	wx.o.timeout_ms = 200;
	ck_assert_int_eq(wechat_code2session(&wx, &a, "slow2000-1", &ws),
	    WECHAT_UNAVAILABLE);
	ck_assert_int_eq(br->state, BREAKER_CLOSED);
	ck_assert_int_eq(wechat_code2session(&wx, &a, "slow2000-2", &ws),
	    WECHAT_UNAVAILABLE);
	ck_assert_int_eq(br->state, BREAKER_OPEN);
	/* Every call fails at once now, the access_token's too. */
	t0 = util_mono_us();
	ck_assert_int_eq(wechat_code2session(&wx, &a, "c3", &ws),
	    WECHAT_UNAVAILABLE);
	ck_assert_int_eq(wechat_access_token(&wx, &a, &tok),
	    WECHAT_UNAVAILABLE);
	ck_assert_int_lt(svc_ms_since(t0), 50);
	ck_assert_int_eq(calls(CODE2SESSION), 2);
	ck_assert_int_eq(calls(STABLE_TOKEN), 0);
	ck_assert_uint_eq(br->rejected, 2);
	/* The refresh that could not happen left no lock behind. */
	ck_assert_ptr_null(redis_get(KEYS_WX_TOKEN_LOCK));
	wechat_free(&wx);
	svc_guard_free(g);
}
END_TEST

START_TEST(the_access_token_is_fetched_once_and_shared)
{
	struct wechat	 wx2;
	const char	*tok, *tok2;

	ck_assert_int_eq(wechat_access_token(&wx, &a, &tok), WECHAT_OK);
	ck_assert_uint_eq(strlen(tok), 140);
	ck_assert_int_eq(calls(STABLE_TOKEN), 1);
	ck_assert_str_eq(redis_get(KEYS_WX_TOKEN), tok);
	/* Cached 300 s short of WeChat's 7200, and the lock given back. */
	ck_assert_int_gt(redis_ttl(KEYS_WX_TOKEN), 6890);
	ck_assert_int_le(redis_ttl(KEYS_WX_TOKEN), 6900);
	ck_assert_ptr_null(redis_get(KEYS_WX_TOKEN_LOCK));
	/* The same responder, then another: Redis answers. */
	ck_assert_int_eq(wechat_access_token(&wx, &a, &tok2), WECHAT_OK);
	ck_assert_str_eq(tok2, tok);
	open_wechat(&wx2, NULL);
	ck_assert_int_eq(wechat_access_token(&wx2, &a, &tok2), WECHAT_OK);
	ck_assert_str_eq(tok2, tok);
	wechat_free(&wx2);
	ck_assert_int_eq(calls(STABLE_TOKEN), 1);
}
END_TEST

START_TEST(the_token_is_cached_for_its_life_less_a_margin)
{
	const char	*tok;

	control("{\"expires_in_s\": 1000}");
	ck_assert_int_eq(wechat_access_token(&wx, &a, &tok), WECHAT_OK);
	ck_assert_int_gt(redis_ttl(KEYS_WX_TOKEN), 690);
	ck_assert_int_le(redis_ttl(KEYS_WX_TOKEN), 700);
	/* Too short a life for the margin: half of it. */
	redis_del(KEYS_WX_TOKEN);
	control("{\"expires_in_s\": 100}");
	ck_assert_int_eq(wechat_access_token(&wx, &a, &tok), WECHAT_OK);
	ck_assert_int_gt(redis_ttl(KEYS_WX_TOKEN), 45);
	ck_assert_int_le(redis_ttl(KEYS_WX_TOKEN), 50);
}
END_TEST

START_TEST(the_classic_token_api)
{
	const char	*tok;

	wx.o.token_api = WECHAT_TOKEN_CLASSIC;
	ck_assert_int_eq(wechat_access_token(&wx, &a, &tok), WECHAT_OK);
	ck_assert_uint_eq(strlen(tok), 140);
	ck_assert_int_eq(calls("/cgi-bin/token"), 1);
	ck_assert_int_eq(calls(STABLE_TOKEN), 0);
	ck_assert_str_eq(redis_get(KEYS_WX_TOKEN), tok);
}
END_TEST

START_TEST(it_waits_for_the_responder_holding_the_lock)
{
	const char	*tok;
	int64_t		 t0;
	pid_t		 pid;
	int		 status;

	ck_assert_int_eq(cache_lock(&cc, KEYS_WX_TOKEN_LOCK, "other", "10000"),
	    1);
	cache_close(&cc);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		/* The other responder stores its token 200 ms later. */
		usleep(200000);
		status = cache_setex(&cc, KEYS_WX_TOKEN, "tok-of-other", 12, 60);
		cache_close(&cc);
		_exit(status == CACHE_OK ? 0 : 1);
	}
	t0 = util_mono_us();
	ck_assert_int_eq(wechat_access_token(&wx, &a, &tok), WECHAT_OK);
	ck_assert_int_ge(svc_ms_since(t0), 150);
	ck_assert_str_eq(tok, "tok-of-other");
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(calls(STABLE_TOKEN), 0);
	/* Its lock is its own to release. */
	ck_assert_str_eq(redis_get(KEYS_WX_TOKEN_LOCK), "other");
}
END_TEST

START_TEST(it_gives_up_on_a_lock_never_released)
{
	const char	*tok;
	int64_t		 t0;
	long		 ms;

	ck_assert_int_eq(cache_lock(&cc, KEYS_WX_TOKEN_LOCK, "other", "10000"),
	    1);
	wx.o.timeout_ms = 300;
	t0 = util_mono_us();
	ck_assert_int_eq(wechat_access_token(&wx, &a, &tok),
	    WECHAT_UNAVAILABLE);
	ms = svc_ms_since(t0);
	ck_assert_int_ge(ms, 280);
	ck_assert_int_lt(ms, 1500);
	ck_assert_ptr_nonnull(strstr(wx.errmsg, "still refreshing"));
	ck_assert_int_eq(calls(STABLE_TOKEN), 0);
}
END_TEST

START_TEST(a_failed_refresh_releases_the_lock)
{
	const char	*tok;

	control("{\"fail\": \"garbage\"}");
	ck_assert_int_eq(wechat_access_token(&wx, &a, &tok),
	    WECHAT_UNAVAILABLE);
	ck_assert_ptr_null(redis_get(KEYS_WX_TOKEN_LOCK));
	ck_assert_ptr_null(redis_get(KEYS_WX_TOKEN));
	control("{\"fail\": \"busy\"}");
	ck_assert_int_eq(wechat_access_token(&wx, &a, &tok), WECHAT_ERRCODE);
	ck_assert_int_eq(wx.errcode, -1);
	ck_assert_ptr_null(redis_get(KEYS_WX_TOKEN_LOCK));
	/* So the next call refreshes at once. */
	control("{\"fail\": \"none\"}");
	ck_assert_int_eq(wechat_access_token(&wx, &a, &tok), WECHAT_OK);
	ck_assert_str_eq(redis_get(KEYS_WX_TOKEN), tok);
	ck_assert_int_eq(calls(STABLE_TOKEN), 3);
}
END_TEST

START_TEST(without_redis_each_call_fetches)
{
	struct cache_opts	 o = { .addr = "/nonexistent/redis.sock",
	    .password = "", .connect_timeout_ms = 50,
	    .command_timeout_ms = 50 };
	struct cache		 down;
	const char		*tok, *tok2;

	cache_init(&down, &o);
	wx.cache = &down;
	ck_assert_int_eq(wechat_access_token(&wx, &a, &tok), WECHAT_OK);
	ck_assert_int_eq(wechat_access_token(&wx, &a, &tok2), WECHAT_OK);
	/* stable_token gives every caller the same token. */
	ck_assert_str_eq(tok2, tok);
	ck_assert_int_eq(calls(STABLE_TOKEN), 2);
	ck_assert_uint_ge(down.failures, 2);
}
END_TEST

START_TEST(phone_number_refreshes_a_stale_token_once)
{
	const char	*phone, *tok;

	ck_assert_int_eq(wechat_phone_number(&wx, &a, "phone-1", &phone),
	    WECHAT_OK);
	ck_assert_str_eq(phone, phone_of("phone-1"));
	tok = redis_get(KEYS_WX_TOKEN);
	ck_assert_ptr_nonnull(tok);
	/* WeChat forgets every token: 40001, refresh, retry. */
	control("{\"invalidate_tokens\": true}");
	ck_assert_int_eq(wechat_phone_number(&wx, &a, "phone-2", &phone),
	    WECHAT_OK);
	ck_assert_str_eq(phone, phone_of("phone-2"));
	ck_assert_str_ne(redis_get(KEYS_WX_TOKEN), tok);
	ck_assert_int_eq(calls(STABLE_TOKEN), 2);
	ck_assert_int_eq(calls(PHONE), 3);
	/* A bad phone code is not a stale token: no refresh. */
	ck_assert_int_eq(wechat_phone_number(&wx, &a, "invalid-p", &phone),
	    WECHAT_ERRCODE);
	ck_assert_int_eq(wx.errcode, 40029);
	ck_assert_int_eq(calls(STABLE_TOKEN), 2);
	ck_assert_int_eq(calls(PHONE), 4);
}
END_TEST

START_TEST(a_token_stale_again_is_not_retried_forever)
{
	const char	*phone;

	/*
	 * Every token expires a millisecond after it is issued, and every
	 * answer waits 5 ms first: each is stale by the time it is used.
	 */
	control("{\"token_ttl_s\": 0.001, \"latency_ms\": 5}");
	ck_assert_int_eq(wechat_phone_number(&wx, &a, "phone-1", &phone),
	    WECHAT_ERRCODE);
	ck_assert_int_eq(wx.errcode, 42001);
	ck_assert_int_eq(calls(STABLE_TOKEN), 2);
	ck_assert_int_eq(calls(PHONE), 2);
}
END_TEST

#define SEND	"/cgi-bin/message/subscribe/send"
#define SEND_BODY(who) "{\"touser\":\"" who "\",\"template_id\":\"tpl\"," \
	"\"data\":{\"thing1\":{\"value\":\"hi\"}}}"

/* A number of the stand-in's /__sends log. */
static long long
sends(const char *what)
{
	struct json_object	*o, *n;
	long long		 v = -1;

	o = standin("/__sends", NULL);
	if (json_object_object_get_ex(o, what, &n))
		v = json_object_get_int64(n);
	json_object_put(o);
	return v;
}

START_TEST(subscribe_send_delivers_and_names_its_job)
{
	long long	msgid = 0, again = 0;

	ck_assert_int_eq(wechat_subscribe_send(&wx, &a, SEND_BODY("o1"),
	    "job-1", &msgid), WECHAT_OK);
	ck_assert_int_gt(msgid, 0);
	/* The same job sent again: the stand-in's dedup answers its msgid. */
	ck_assert_int_eq(wechat_subscribe_send(&wx, &a, SEND_BODY("o1"),
	    "job-1", &again), WECHAT_OK);
	ck_assert_int_eq(again, msgid);
	ck_assert_int_eq(sends("delivered"), 1);
	ck_assert_int_eq(sends("deduplicated"), 1);
	/* Without a job, every send is delivered. */
	ck_assert_int_eq(wechat_subscribe_send(&wx, &a, SEND_BODY("o1"),
	    NULL, &again), WECHAT_OK);
	ck_assert_int_ne(again, msgid);
	ck_assert_int_eq(sends("delivered"), 2);
}
END_TEST

START_TEST(subscribe_send_errors)
{
	long long	msgid;

	ck_assert_int_eq(wechat_subscribe_send(&wx, &a, SEND_BODY("refuse-1"),
	    "j", &msgid), WECHAT_ERRCODE);
	ck_assert_int_eq(wx.errcode, 43101);
	control("{\"send_fail\": \"quota\", \"send_fail_count\": 1}");
	ck_assert_int_eq(wechat_subscribe_send(&wx, &a, SEND_BODY("o1"),
	    "j", &msgid), WECHAT_ERRCODE);
	ck_assert_int_eq(wx.errcode, 45009);
	control("{\"send_fail\": \"http500\", \"send_fail_count\": 1}");
	ck_assert_int_eq(wechat_subscribe_send(&wx, &a, SEND_BODY("o1"),
	    "j", &msgid), WECHAT_UNAVAILABLE);
	/* A stale token is refreshed once, as for the phone number. */
	control("{\"invalidate_tokens\": true}");
	ck_assert_int_eq(wechat_subscribe_send(&wx, &a, SEND_BODY("o1"),
	    "j", &msgid), WECHAT_OK);
	ck_assert_int_eq(calls(STABLE_TOKEN), 2);
	ck_assert_int_eq(calls(SEND), 5);
	ck_assert_int_eq(sends("delivered"), 1);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("wechat");
	TCase	*tc = tcase_create("wechat");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, code2session_returns_the_session);
	tcase_add_test(tc, the_code_is_url_escaped);
	tcase_add_test(tc, errcodes_are_wechat_errcode);
	tcase_add_test(tc, garbage_answers_are_unavailable);
	tcase_add_test(tc, answers_we_cannot_use_are_unavailable);
	tcase_add_test(tc, an_answer_too_large_is_cut_off);
	tcase_add_test(tc, a_token_answer_we_cannot_use);
	tcase_add_test(tc, a_slow_wechat_times_out);
	tcase_add_test(tc, a_refused_connection_is_unavailable_at_once);
	tcase_add_test(tc, only_failures_count_against_the_breaker);
	tcase_add_test(tc, timeouts_open_the_breaker);
	tcase_add_test(tc, the_access_token_is_fetched_once_and_shared);
	tcase_add_test(tc, the_token_is_cached_for_its_life_less_a_margin);
	tcase_add_test(tc, the_classic_token_api);
	tcase_add_test(tc, it_waits_for_the_responder_holding_the_lock);
	tcase_add_test(tc, it_gives_up_on_a_lock_never_released);
	tcase_add_test(tc, a_failed_refresh_releases_the_lock);
	tcase_add_test(tc, without_redis_each_call_fetches);
	tcase_add_test(tc, phone_number_refreshes_a_stale_token_once);
	tcase_add_test(tc, a_token_stale_again_is_not_retried_forever);
	tcase_add_test(tc, subscribe_send_delivers_and_names_its_job);
	tcase_add_test(tc, subscribe_send_errors);
	suite_add_tcase(s, tc);
	return check_run(s);
}

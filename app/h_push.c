/*
 * h_push: /api/v1/wechat/push, the callback URL of WeChat's message push
 * (消息推送), set in the Mini Program console with wechat_push_token and,
 * in safe mode, wechat_push_aes_key (lib/wxpush does the cryptography).
 *
 * GET is the console's URL check: the signature of [token, timestamp,
 * nonce] holds, and the answer is echostr.  POST is a message: its
 * signatures hold, its timestamp is within wechat_push_max_skew, its
 * nonce was not seen in that window (Redis), and in safe mode it opens
 * under our key and names our appid.  Then it goes to the worker as a job
 * of type "push", keyed by MsgId (or the whole message), so that
 * WeChat's retries of one message are one job, and WeChat gets "success"
 * at once: it wants an answer within 5 seconds.  Whoever sends anything
 * else gets a 4xx, logged once, and the responder goes on.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "app.h"
#include "crypto.h"
#include "keys.h"
#include "log.h"
#include "util.h"
#include "wxpush.h"

/* The push endpoint is on: 0, else -1 with a 404 (as for no route). */
static int
push_on(struct app *app, struct resp *rs)
{
	if (app->cfg.wechat_push_token[0] != '\0')
		return 0;
	resp_error(rs, API_NOT_FOUND, "no message push here "
	    "(wechat_push_token is not set)");
	return -1;
}

/* A refusal: 403, its reason logged once (never the values). */
static void
refuse(struct resp *rs, int status, const char *why)
{
	log_warn("wechat push refused: %s", why);
	resp_error(rs, status == 403 ? API_FORBIDDEN : API_VALIDATION,
	    "message push: %s", why);
}

/*
 * The query's signature, timestamp (within the skew) and nonce: 0 with
 * them in q[0..2] = token, timestamp, nonce; else -1 answered.
 */
static int
check_query(struct app *app, struct req *rq, struct resp *rs,
    const char *q[3])
{
	const char	*sig = req_query(rq, "signature"), *why;
	long long	 ts, now = util_wall_us() / 1000000;

	q[0] = app->cfg.wechat_push_token;
	q[1] = req_query(rq, "timestamp");
	q[2] = req_query(rq, "nonce");
	if (sig == NULL || q[1] == NULL || q[2] == NULL) {
		refuse(rs, 400, "signature, timestamp and nonce are required");
		return -1;
	}
	if (strlen(q[2]) > 64) {
		refuse(rs, 400, "nonce is too long");
		return -1;
	}
	if (wxpush_check(q, 3, sig) == -1) {
		refuse(rs, 403, "bad signature");
		return -1;
	}
	if (util_strtonum(q[1], 0, 4102444800LL, &ts, &why) == -1 ||
	    ts < now - app->cfg.wechat_push_max_skew ||
	    ts > now + app->cfg.wechat_push_max_skew) {
		refuse(rs, 403, "timestamp outside wechat_push_max_skew");
		return -1;
	}
	return 0;
}

/* GET /api/v1/wechat/push: the console's check of the URL. */
void
h_push_verify(struct app *app, struct req *rq, struct resp *rs)
{
	const char	*q[3], *echo;

	if (push_on(app, rs) == -1 || check_query(app, rq, rs, q) == -1)
		return;
	if ((echo = req_query(rq, "echostr")) == NULL) {
		refuse(rs, 400, "echostr is required");
		return;
	}
	resp_raw(rs, 200, echo, strlen(echo));
	rs->content_type = "text/plain; charset=utf-8";
}

/*
 * The nonce was not seen within the skew window: 0, and now it is (key,
 * 128 bytes, names it); else -1 answered.
 */
static int
fresh_nonce(struct app *app, struct resp *rs, const char *nonce, char *key)
{
	int	got;

	if ((size_t)snprintf(key, 128, KEY_PUSH_NONCE "%s", nonce) >= 128) {
		refuse(rs, 400, "nonce is too long");
		return -1;
	}
	got = cache_lock(&app->cache, key, "1", arena_printf(&app->arena,
	    "%lld", 2000 * app->cfg.wechat_push_max_skew));
	if (got == 1)
		return 0;
	if (got == 0) {
		refuse(rs, 403, "nonce seen before (a replay)");
		return -1;
	}
	/* No Redis, no replay check: WeChat retries a 503. */
	resp_error(rs, API_CACHE_UNAVAILABLE, "message push: redis is "
	    "unavailable");
	resp_header(rs, "Retry-After", "1");
	return -1;
}

/* The message of a safe-mode body: 0 with *msg, *len; else -1 answered. */
static int
open_safe(struct app *app, struct req *rq, struct resp *rs, const char *q[3],
    const char **msg, size_t *len)
{
	struct wxpush_msg	 outer;
	enum wxpush_status	 st;
	unsigned char		 key[32];
	const char		*sig[4], *why;

	if ((why = req_query(rq, "encrypt_type")) == NULL ||
	    strcmp(why, "aes") != 0) {
		refuse(rs, 400, "safe mode: encrypt_type=aes is required");
		return -1;
	}
	if (wxpush_parse(rq->a, rq->body, rq->body_len, &outer, &why) !=
	    WXPUSH_OK) {
		refuse(rs, 400, why);
		return -1;
	}
	sig[0] = q[0], sig[1] = q[1], sig[2] = q[2];
	if ((sig[3] = wxpush_get(&outer, "Encrypt")) == NULL) {
		refuse(rs, 400, "safe mode: the body has no Encrypt");
		return -1;
	}
	if (wxpush_check(sig, 4, req_query(rq, "msg_signature")) == -1) {
		refuse(rs, 403, "bad msg_signature");
		return -1;
	}
	if (wxpush_aes_key(app->cfg.wechat_push_aes_key, key) == -1) {
		log_error("wechat_push_aes_key is not a 43-character "
		    "EncodingAESKey");
		resp_error(rs, API_INTERNAL, "internal error");
		return -1;
	}
	st = wxpush_decrypt(key, app->cfg.wechat_appid, sig[3], rq->a, msg,
	    len);
	if (st != WXPUSH_OK) {
		refuse(rs, st == WXPUSH_BAD_APPID ? 403 : 400,
		    wxpush_strerror(st));
		return -1;
	}
	return 0;
}

/* The job of message m: its fields as a JSON object, its dedup key. */
static void
push_job(struct arena *a, const struct wxpush_msg *m, struct job *j)
{
	struct json_object	*o = json_object_new_object();
	const char		*id = wxpush_get(m, "MsgId");
	unsigned char		 h[32];
	char			 hex[33];
	int			 i;

	for (i = 0; i < m->n; i++)
		json_object_object_add(o, m->f[i].name,
		    json_object_new_string(m->f[i].value));
	j->type = JOB_PUSH;
	j->payload = arena_strdup(a, json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	/*
	 * MsgId when it has one; else the message itself: WeChat's retries
	 * repeat it exactly, and two events of one user in one second (two
	 * images checked) differ, which sender and time alone would not.
	 */
	if (id != NULL)
		j->key = arena_printf(a, "push:%s", id);
	else {
		crypto_sha256(j->payload, strlen(j->payload), h);
		crypto_hex(h, 16, hex);
		j->key = arena_printf(a, "push:%s", hex);
	}
}

/* POST /api/v1/wechat/push: a message, acknowledged with "success". */
void
h_push(struct app *app, struct req *rq, struct resp *rs)
{
	struct wxpush_msg	 m;
	struct job		 j;
	const char		*q[3], *msg = rq->body, *why;
	char			*id, nonce[128];
	size_t			 len = rq->body_len;
	int			 dup;

	if (push_on(app, rs) == -1 || check_query(app, rq, rs, q) == -1)
		return;
	if (app->cfg.wechat_push_mode == PUSH_SAFE &&
	    open_safe(app, rq, rs, q, &msg, &len) == -1)
		return;
	if (wxpush_parse(rq->a, msg, len, &m, &why) != WXPUSH_OK) {
		refuse(rs, 400, why);
		return;
	}
	if (wxpush_get(&m, "MsgType") == NULL) {
		refuse(rs, 400, "the message has no MsgType");
		return;
	}
	if (fresh_nonce(app, rs, q[2], nonce) == -1)
		return;
	memset(&j, 0, sizeof(j));
	push_job(rq->a, &m, &j);
	id = arena_alloc(rq->a, JOB_ID_LEN + 1);
	if (job_new_id(id) == -1) {
		cache_del_if(&app->cache, nonce, "1");
		resp_error(rs, API_INTERNAL, "internal error");
		return;
	}
	j.id = id;
	if (app_job_enqueue(app, rs, &j, &dup) == -1) {
		/* Not taken: WeChat's retry (the same nonce) is welcome. */
		cache_del_if(&app->cache, nonce, "1");
		return;
	}
	resp_raw(rs, 200, "success", 7);
	rs->content_type = "text/plain; charset=utf-8";
}

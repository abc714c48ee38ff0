/*
 * h_messages: /api/v1/messages -- subscribe messages (订阅消息).
 *
 * POST .../subscribe (admins) validates a message and hands it to the
 * worker as a job (app/jobs.c): 202 with the job's id, whether the job
 * went to Redis or, with Redis down, to the outbox.  The worker sends it
 * through WeChat and records the outcome; GET .../{job id} shows it to
 * its sender and to admins, and is 404 to everyone else.
 */
#include <ctype.h>
#include <string.h>

#include "app.h"
#include "data.h"

#define DATA_KEYS_MAX	20
#define VALUE_MAX	256	/* characters of a data value */

static const char *const subscribe_fields[] = { "user_id", "openid",
	"template_id", "page", "data", "miniprogram_state", "lang", NULL };
static const char *const states[] = { "developer", "trial", "formal", NULL };
static const char *const langs[] = { "zh_CN", "en_US", "zh_HK", "zh_TW",
	NULL };

/* s is one of list? */
static int
one_of(const char *s, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* 1 to max characters of [A-Za-z0-9_-] (and extra, if not NUL). */
static int
word(const char *s, size_t max, char extra)
{
	size_t	i;

	for (i = 0; s[i] != '\0'; i++)
		if (i == max || !(isalnum((unsigned char)s[i]) ||
		    s[i] == '_' || s[i] == '-' || (extra && s[i] == extra)))
			return 0;
	return i > 0;
}

/* data: {"key": {"value": "..."}, ...} as WeChat takes it; -1 with a 400. */
static int
valid_data(struct req *rq, struct resp *rs, struct json_object *data)
{
	struct json_object	*v, *val;
	const char		*s;
	int			 n = 0;

	if (!json_object_is_type(data, json_type_object)) {
		resp_error(rs, API_VALIDATION, "field `data` must be an object");
		return -1;
	}
	json_object_object_foreach(data, key, item) {
		if (++n > DATA_KEYS_MAX || !word(key, 32, 0)) {
			resp_error(rs, API_VALIDATION, "field `data` must have "
			    "1 to %d keys of letters, digits and _",
			    DATA_KEYS_MAX);
			return -1;
		}
		v = item;
		if (!json_object_is_type(v, json_type_object) ||
		    json_object_object_length(v) != 1 ||
		    !json_object_object_get_ex(v, "value", &val) ||
		    !json_object_is_type(val, json_type_string) ||
		    data_valid_text(rq->a, rs, "data.*.value",
		    json_object_get_string(val), 1, VALUE_MAX, 0, &s) == -1) {
			if (!resp_is_set(rs))
				resp_error(rs, API_VALIDATION, "field `data.%s` "
				    "must be {\"value\": \"1 to %d characters\"}",
				    key, VALUE_MAX);
			return -1;
		}
	}
	if (n == 0) {
		resp_error(rs, API_VALIDATION, "field `data` must have 1 to %d "
		    "keys", DATA_KEYS_MAX);
		return -1;
	}
	return 0;
}

/* The recipient's openid from user_id; -1 with 404 or 409 answered. */
static int
openid_of(struct app *app, struct req *rq, struct resp *rs, long long id,
    const char **openid)
{
	const char	*params[1];
	PGresult	*res;
	enum db_status	 st;

	params[0] = arena_printf(rq->a, "%lld", id);
	if ((st = db_exec(&app->db, STMT_USER_OPENID, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "message: recipient");
		return -1;
	}
	if (PQntuples(res) == 0)
		resp_error(rs, API_NOT_FOUND, "user %lld not found", id);
	else if (PQgetisnull(res, 0, ONLY_COL))
		resp_error(rs, API_CONFLICT, "user %lld has no openid: it never "
		    "logged in through WeChat", id);
	else
		*openid = arena_strdup(rq->a, PQgetvalue(res, 0, ONLY_COL));
	PQclear(res);
	return resp_is_set(rs) ? -1 : 0;
}

/* POST /api/v1/messages/subscribe */
void
h_message_subscribe(struct app *app, struct req *rq, struct resp *rs)
{
	struct json_object	*body, *uid, *data, *send;
	struct message		 m = { .sender_id = app->who.user_id };
	const char		*page, *state, *lang;
	const char		*why;

	if (req_json_body(rq, rs, &body) == -1 ||
	    req_json_only(rs, body, subscribe_fields) == -1 ||
	    req_json_opt_string(rs, body, "openid", &m.openid) == -1 ||
	    req_json_string(rs, body, "template_id", &m.template_id) == -1 ||
	    req_json_opt_string(rs, body, "page", &page) == -1 ||
	    req_json_opt_string(rs, body, "miniprogram_state", &state) == -1 ||
	    req_json_opt_string(rs, body, "lang", &lang) == -1)
		return;
	/* "user_id": null is no user_id. */
	if (!json_object_object_get_ex(body, "user_id", &uid))
		uid = NULL;
	if ((uid != NULL) == (m.openid != NULL)) {
		resp_error(rs, API_VALIDATION, "give one of the fields `user_id` "
		    "and `openid`");
		return;
	}
	if (uid != NULL && (!json_object_is_type(uid, json_type_int) ||
	    (m.user_id = json_object_get_int64(uid)) < 1)) {
		resp_error(rs, API_VALIDATION, "field `user_id` must be a "
		    "positive integer");
		return;
	}
	why = NULL;
	if (m.openid != NULL && !word(m.openid, 128, 0))
		why = "field `openid` must be 1 to 128 letters, digits, _ or -";
	else if (!word(m.template_id, 128, 0))
		why = "field `template_id` must be 1 to 128 letters, digits, "
		    "_ or -";
	else if (page != NULL && (strlen(page) > 512 ||
	    !word(page, 512, '/') || strchr(page, ':') != NULL))
		why = "field `page` must be a Mini Program page path (letters, "
		    "digits, _, - and /, at most 512)";
	else if (state != NULL && !one_of(state, states))
		why = "field `miniprogram_state` must be developer, trial or "
		    "formal";
	else if (lang != NULL && !one_of(lang, langs))
		why = "field `lang` must be zh_CN, en_US, zh_HK or zh_TW";
	if (why != NULL) {
		resp_error(rs, API_VALIDATION, "%s", why);
		return;
	}
	if (!json_object_object_get_ex(body, "data", &data)) {
		resp_error(rs, API_VALIDATION, "field `data` is missing");
		return;
	}
	if (valid_data(rq, rs, data) == -1)
		return;
	if (m.user_id > 0 && openid_of(app, rq, rs, m.user_id, &m.openid) == -1)
		return;
	send = json_object_new_object();
	json_object_object_add(send, "touser",
	    json_object_new_string(m.openid));
	json_object_object_add(send, "template_id",
	    json_object_new_string(m.template_id));
	if (page != NULL)
		json_object_object_add(send, "page",
		    json_object_new_string(page));
	json_object_object_add(send, "data", json_object_get(data));
	if (state != NULL)
		json_object_object_add(send, "miniprogram_state",
		    json_object_new_string(state));
	if (lang != NULL)
		json_object_object_add(send, "lang",
		    json_object_new_string(lang));
	m.body = arena_strdup(rq->a, json_object_to_json_string_ext(send,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(send);
	if (app_txn_begin(app, rs) == -1)
		return;
	if (app_message_enqueue(app, rs, &m) == 0) {
		resp_json(rs, 202, arena_printf(rq->a, "{\"job_id\":\"%s\","
		    "\"status\":\"queued\"}", m.job_id), "queued");
		resp_header(rs, "Location", "/api/v1/messages/%s", m.job_id);
	}
	app_txn_end(app, rs, 1);
}

/* Row 0 of STMT_MSG_GET as JSON; NULL columns as null. */
static void
message_json(struct buf *b, PGresult *res, int row)
{
	static const struct data_col cols[] = {
		{ "job_id", MC_JOB, 0 }, { "status", MC_STATUS, 0 },
		{ "template_id", MC_TEMPLATE, 0 }, { "user_id", MC_USER, 1 },
		{ "sender_id", MC_SENDER, 1 },
		{ "attempts", MC_ATTEMPTS, 1 }, { "msgid", MC_MSGID, 1 },
		{ "errcode", MC_ERRCODE, 1 }, { "error", MC_ERROR, 0 },
		{ "created_at", MC_CREATED, 0 },
		{ "updated_at", MC_UPDATED, 0 }
	};

	data_row_json(b, res, row, cols, sizeof(cols) / sizeof(cols[0]));
}

/* GET /api/v1/messages/{id}: its sender's and admins'. */
void
h_message_get(struct app *app, struct req *rq, struct resp *rs)
{
	const char	*params[1], *sender;
	PGresult	*res;
	enum db_status	 st;
	size_t		 i;

	params[0] = req_path_param(rq, "id");
	for (i = 0; params[0] != NULL && params[0][i] != '\0'; i++)
		if (!isxdigit((unsigned char)params[0][i]) ||
		    isupper((unsigned char)params[0][i]))
			break;
	if (params[0] == NULL || i != JOB_ID_LEN || params[0][i] != '\0') {
		resp_error(rs, API_VALIDATION, "`id` must be a job id (%d "
		    "lower-case hex digits)", JOB_ID_LEN);
		return;
	}
	if ((st = db_exec(&app->db, STMT_MSG_GET, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "message");
		return;
	}
	sender = PQntuples(res) == 1 ? PQgetvalue(res, 0, MC_SENDER) : NULL;
	if (sender == NULL || (!app->who.admin &&
	    strtoll(sender, NULL, 10) != app->who.user_id)) {
		resp_error(rs, API_NOT_FOUND, "message %s not found", params[0]);
		PQclear(res);
		return;
	}
	app_answer_row(rs, 200, res, message_json);
	resp_header_str(rs, "Cache-Control", "private, no-store");
	PQclear(res);
}

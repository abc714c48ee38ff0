/*
 * moderation: WeChat's content security for what users publish, and the
 * queue of what waits for a verdict.
 *
 * Text (item titles and summaries, user names) is checked with msgSecCheck
 * as it is written, under the writer's openid: risky is refused (422,
 * 42200, naming the field), review waits for a moderator, pass goes
 * through.  An image (cover_url) is checked with mediaCheckAsync, whose
 * verdict comes later through message push (wxa_media_check, matched by
 * trace_id).  When WeChat cannot be asked -- or the writer has no openid
 * -- content_check_fail decides: closed refuses (503), open lets it
 * through, queue (the default) keeps it waiting and has the worker ask
 * again.  While anything of an item waits, the item is a draft (its owner
 * and admins see it); a user's new name waits with the old one in force.
 *
 * Decisions -- WeChat's, a moderator's (wxappctl moderation, GET
 * /api/v1/moderation) -- go through moderation_decide, shared by the
 * programs.
 */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "data.h"
#include "log.h"
#include "util.h"

/* The writer's openid, or NULL (no WeChat user, or PostgreSQL down). */
static const char *
writer_openid(struct app *app, struct arena *a)
{
	const char	*params[1];
	PGresult	*res;
	const char	*openid = NULL;

	params[0] = arena_printf(a, "%lld", app->who.user_id);
	if (db_exec(&app->db, STMT_USER_OPENID, params, &res) != DB_OK)
		return NULL;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, ONLY_COL))
		openid = arena_strdup(a, PQgetvalue(res, 0, ONLY_COL));
	PQclear(res);
	return openid;
}

/*
 * WeChat could not be asked about field: what content_check_fail says.
 * 0 with *w set (pass or unchecked), or -1 with 503 answered.
 */
static int
unasked(struct app *app, struct resp *rs, const char *field,
    enum check_verdict *w)
{
	switch (app->cfg.content_check_fail) {
	case CHECK_FAIL_CLOSED:
		resp_error(rs, API_WX_UNAVAILABLE, "content security is "
		    "unavailable: `%s` cannot be checked now", field);
		resp_header(rs, "Retry-After", "5");
		return -1;
	case CHECK_FAIL_OPEN:
		*w = CHECK_PASS;
		return 0;
	default:
		*w = CHECK_UNCHECKED;
		return 0;
	}
}

int
moderation_check(struct app *app, struct req *rq, struct resp *rs,
    struct checked *c, const char *field, const char *content, int scene,
    int image)
{
	struct wechat_verdict	 v;
	enum wechat_status	 st;
	const char		*openid;
	struct checked_field	*f;

	if (content == NULL || content[0] == '\0')
		return 0;
	if (c->n == CHECKED_MAX) {
		resp_error(rs, API_INTERNAL, "internal error");
		return -1;
	}
	f = &c->f[c->n];
	memset(f, 0, sizeof(*f));
	f->field = field;
	f->content = content;
	f->image = image;
	if ((openid = writer_openid(app, rq->a)) == NULL) {
		if (unasked(app, rs, field, &f->verdict) == -1)
			return -1;
		c->n++;
		return 0;
	}
	/* A write nginx gave up on asks WeChat nothing (and is not made). */
	if (app_abandoned(app, rs, "content security") == -1)
		return -1;
	if (image)
		st = wechat_media_check_async(&app->wx, rq->a, openid, scene,
		    content, 2, &f->trace_id);
	else
		st = wechat_msg_sec_check(&app->wx, rq->a, openid, scene,
		    content, &v);
	if (st != WECHAT_OK) {
		log_warn("content security: %s: %s", field, app->wx.errmsg);
		if (unasked(app, rs, field, &f->verdict) == -1)
			return -1;
	} else if (image)
		f->verdict = CHECK_MEDIA;
	else if (strcmp(v.suggest, "risky") == 0) {
		resp_error(rs, API_CONTENT_RISKY, "field `%s` was refused by "
		    "content security (label %ld)", field, v.label);
		return -1;
	} else
		f->verdict = strcmp(v.suggest, "review") == 0 ? CHECK_REVIEW :
		    CHECK_PASS;
	c->n++;
	return 0;
}

int
moderation_waits(const struct checked *c)
{
	int	i;

	for (i = 0; i < c->n; i++)
		if (c->f[i].verdict != CHECK_PASS)
			return 1;
	return 0;
}

int
moderation_hold(struct app *app, struct resp *rs, const struct checked *c,
    long long item_id, long long user_id, int publish)
{
	static const char *const reasons[] = {
		[CHECK_REVIEW] = "review", [CHECK_UNCHECKED] = "unchecked",
		[CHECK_MEDIA] = "media"
	};
	const char		*params[8];
	PGresult		*res;
	struct job		 j = { .type = JOB_RECHECK, .key = "" };
	enum db_status		 st;
	char			*id;
	int			 i, dup;

	for (i = 0; i < c->n; i++) {
		if (c->f[i].verdict == CHECK_PASS)
			continue;
		params[0] = item_id > 0 ? arena_printf(&app->arena, "%lld",
		    item_id) : NULL;
		params[1] = user_id > 0 ? arena_printf(&app->arena, "%lld",
		    user_id) : NULL;
		params[2] = arena_printf(&app->arena, "%lld", app->who.user_id);
		params[3] = c->f[i].field;
		params[4] = c->f[i].content;
		params[5] = reasons[c->f[i].verdict];
		params[6] = c->f[i].trace_id;
		params[7] = publish ? "true" : "false";
		if ((st = db_exec(&app->db, STMT_MOD_ADD, params, &res)) !=
		    DB_OK) {
			app_db_error(app, rs, st, "moderation");
			return -1;
		}
		/* Unchecked: the worker asks WeChat again. */
		if (c->f[i].verdict == CHECK_UNCHECKED) {
			id = arena_alloc(&app->arena, JOB_ID_LEN + 1);
			if (job_new_id(id) == -1) {
				PQclear(res);
				resp_error(rs, API_INTERNAL, "internal error");
				return -1;
			}
			j.id = id;
			j.payload = arena_printf(&app->arena, "{\"id\":%s}",
			    PQgetvalue(res, 0, ONLY_COL));
			if (app_job_enqueue(app, rs, &j, &dup) == -1) {
				PQclear(res);
				return -1;
			}
		}
		PQclear(res);
	}
	return 0;
}

enum moderation_result
moderation_decide(struct db *db, struct cache *cc, uint64_t *changes,
    long long id, int approve, const char *by, struct moderation_outcome *o)
{
	struct arena	*a = o->a;
	const char	*params[3];
	PGresult	*res;

	memset(o, 0, sizeof(*o));
	o->a = a;
	params[0] = arena_printf(a, "%lld", id);
	params[1] = approve ? "approved" : "rejected";
	params[2] = by;
	/*
	 * The item locked first, so that the decision sees what was
	 * committed of it meanwhile (another decision, its owner's write)
	 * and what comes after waits for it.
	 */
	if (db_begin(db) != DB_OK)
		return MODERATION_DB;
	if (db_exec(db, STMT_MOD_LOCK, params, &res) != DB_OK)
		goto fail;
	PQclear(res);
	if (db_exec(db, STMT_MOD_DECIDE, params, &res) != DB_OK)
		goto fail;
	if (PQntuples(res) == 0) {
		PQclear(res);
		db_rollback(db);
		return MODERATION_NONE;
	}
	o->item_id = PQgetisnull(res, 0, DEC_ITEM) ? 0 :
	    strtoll(PQgetvalue(res, 0, DEC_ITEM), NULL, 10);
	o->user_id = PQgetisnull(res, 0, DEC_USER) ? 0 :
	    strtoll(PQgetvalue(res, 0, DEC_USER), NULL, 10);
	o->item_status = PQgetisnull(res, 0, DEC_ITEM_STATUS) ? NULL :
	    arena_strdup(o->a, PQgetvalue(res, 0, DEC_ITEM_STATUS));
	o->owner_id = PQgetisnull(res, 0, DEC_OWNER) ? 0 :
	    strtoll(PQgetvalue(res, 0, DEC_OWNER), NULL, 10);
	o->title = PQgetisnull(res, 0, DEC_TITLE) ? NULL :
	    arena_strdup(o->a, PQgetvalue(res, 0, DEC_TITLE));
	o->renamed = strcmp(PQgetvalue(res, 0, DEC_NAMED), "0") != 0;
	PQclear(res);
	if (db_commit(db) != DB_OK)
		goto fail;
	/* What changed shows at once: the cached answers go. */
	if (o->item_status != NULL &&
	    data_invalidate(cc, changes, COLL_ITEMS) == -1)
		log_warn("moderation %lld: item %lld changed, redis not told",
		    id, o->item_id);
	if (o->renamed && data_invalidate(cc, changes, COLL_USERS) == -1)
		log_warn("moderation %lld: user %lld renamed, redis not told",
		    id, o->user_id);
	return MODERATION_OK;
fail:
	db_rollback(db);
	return MODERATION_DB;
}

int
moderation_may_publish(struct app *app, struct resp *rs, long long item_id)
{
	const char	*params[1];
	PGresult	*res;
	enum db_status	 st;

	params[0] = arena_printf(&app->arena, "%lld", item_id);
	if ((st = db_exec(&app->db, STMT_MOD_BLOCKS, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "moderation");
		return -1;
	}
	if (PQntuples(res) == 1)
		resp_error(rs, API_CONFLICT, strcmp(PQgetvalue(res, 0,
		    MB_STATUS), "pending") == 0 ?
		    "the item's `%s` waits for moderation" :
		    "content security rejected the item's `%s`: change it to "
		    "publish the item", PQgetvalue(res, 0, MB_FIELD));
	PQclear(res);
	return resp_is_set(rs) ? -1 : 0;
}

void
moderation_json(struct buf *b, PGresult *res)
{
	static const struct data_col cols[] = {
		{ "id", MDC_ID, 1 }, { "item_id", MDC_ITEM, 1 },
		{ "user_id", MDC_USER, 1 }, { "author_id", MDC_AUTHOR, 1 },
		{ "field", MDC_FIELD, 0 }, { "content", MDC_CONTENT, 0 },
		{ "reason", MDC_REASON, 0 }, { "created_at", MDC_CREATED, 0 }
	};
	int	i;

	buf_addc(b, '[');
	for (i = 0; i < PQntuples(res); i++) {
		if (i > 0)
			buf_addc(b, ',');
		data_row_json(b, res, i, cols, sizeof(cols) / sizeof(cols[0]));
	}
	buf_addc(b, ']');
}

/* GET /api/v1/moderation[?limit=N]: what waits for a verdict (admins). */
void
h_moderation(struct app *app, struct req *rq, struct resp *rs)
{
	const char	*params[1], *v = req_query(rq, "limit"), *why;
	long long	 limit = 100;
	PGresult	*res;
	enum db_status	 st;
	struct buf	*b;

	if (v != NULL && util_strtonum(v, 1, 1000, &limit, &why) == -1) {
		resp_error(rs, API_VALIDATION, "query parameter `limit` must be "
		    "1 to 1000");
		return;
	}
	params[0] = arena_printf(rq->a, "%lld", limit);
	if ((st = db_exec(&app->db, STMT_MOD_PENDING, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "moderation");
		return;
	}
	b = resp_begin(rs, 200);
	buf_adds(b, "{\"items\":");
	moderation_json(b, res);
	buf_addc(b, '}');
	resp_end(rs, "ok");
	resp_header_str(rs, "Cache-Control", "private, no-store");
	PQclear(res);
}

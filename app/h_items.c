/*
 * h_items: /api/v1/data — the items a Mini Program home page shows.
 *
 * Published items are public: those answers are shared and cached.  An
 * item that is a draft or archived exists only for its owner and admins;
 * everyone else is told it does not (404), in the list as by id.  Owners
 * list their own items of every status with ?owner=me, admins any items
 * with ?status=; those lists are private answers.  Whoever creates an
 * item owns it, and only its owner or an admin may change or delete it
 * (items from before owners existed: admins only).
 */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "data.h"
#include "util.h"

/* ?owner=me and ?status= of a list: 0 (q says which list), or -1. */
static int
list_filters(struct app *app, struct req *rq, struct resp *rs,
    struct list_query *q)
{
	const char	*owner = req_query(rq, "owner");
	const char	*status = req_query(rq, "status");

	if (owner != NULL) {
		if (strcmp(owner, "me") != 0) {
			resp_error(rs, API_VALIDATION, "query parameter `owner` "
			    "must be `me`");
			return -1;
		}
		if (app->who.user_id == 0) {
			resp_error(rs, API_UNAUTHORIZED, "owner=me needs an "
			    "access token");
			resp_header_str(rs, "WWW-Authenticate", "Bearer");
			return -1;
		}
		q->private = 1;
		q->owner = app->who.user_id;
	}
	/* q->status NULL: every status. */
	if (status == NULL)
		q->status = q->private ? NULL : "published";
	else if (strcmp(status, "all") == 0)
		q->status = NULL;
	else if (strcmp(status, "published") == 0 ||
	    strcmp(status, "draft") == 0 || strcmp(status, "archived") == 0)
		q->status = status;
	else {
		resp_error(rs, API_VALIDATION, "query parameter `status` must be "
		    "published, draft, archived or all");
		return -1;
	}
	if (!q->private &&
	    (q->status == NULL || strcmp(q->status, "published") != 0)) {
		if (!app->who.admin) {
			resp_error(rs, API_FORBIDDEN, "only admins list the "
			    "items of others that are not published; list your "
			    "own with owner=me");
			return -1;
		}
		q->private = 1;
	}
	return 0;
}

/* GET /api/v1/data/list[?category=][&owner=me][&status=] */
int
p_items_list(struct app *app, struct req *rq, struct resp *rs,
    struct read_plan *rp)
{
	struct list_query	*q = arena_alloc(rq->a, sizeof(*q));

	if (data_parse_list(rq, rs, 1, q) == -1 ||
	    list_filters(app, rq, rs, q) == -1)
		return -1;
	if (!q->private)
		data_list_counts(q, &app->cache, app_collections[COLL_ITEMS],
		    app->cfg.cache_ttl);
	*rp = (struct read_plan){ .coll = COLL_ITEMS, .is_list = 1,
	    .build = data_build_items, .arg = q,
	    .key = q->private ? NULL : data_list_key(rq->a, q) };
	return 0;
}

/*
 * GET /api/v1/data/{id}: the shared answer, unless it says there is no
 * such item and the caller may be the owner of one that is not
 * published, or an admin: then a private answer.
 */
int
p_item_get(struct app *app, struct req *rq, struct resp *rs,
    struct read_plan *rp)
{
	struct one_query	*q = arena_alloc(rq->a, 2 * sizeof(*q));

	memset(q, 0, 2 * sizeof(*q));
	if (data_parse_id(rq, rs, &q[0].id) == -1)
		return -1;
	*rp = (struct read_plan){ .coll = COLL_ITEMS, .build = data_build_item,
	    .arg = &q[0], .key = data_one_key(rq->a, &q[0]) };
	if (app->who.user_id != 0) {
		q[1] = (struct one_query){ .id = q[0].id, .private = 1,
		    .viewer = app->who.user_id, .admin = app->who.admin };
		rp->mine = &q[1];
	}
	return 0;
}

/*
 * Validate the item fields of body into v[IF_*]; absent fields stay
 * NULL.
 */
static int
item_fields_parse(struct req *rq, struct resp *rs, struct json_object *body,
    const char *v[IF_COUNT])
{
	const char *const	*name = data_item_fields;
	const char		*raw[IF_COUNT];
	int			 i;

	if (req_json_only(rs, body, data_item_fields) == -1)
		return -1;
	for (i = 0; i < IF_COUNT; i++)
		if (req_json_opt_string(rs, body, name[i], &raw[i]) == -1)
			return -1;
	memset(v, 0, IF_COUNT * sizeof(*v));
	if ((raw[IF_TITLE] != NULL && data_valid_text(rq->a, rs,
	    name[IF_TITLE], raw[IF_TITLE], 1, 128, 0, &v[IF_TITLE]) == -1) ||
	    (raw[IF_SUMMARY] != NULL && data_valid_text(rq->a, rs,
	    name[IF_SUMMARY], raw[IF_SUMMARY], 0, 1000, 1,
	    &v[IF_SUMMARY]) == -1))
		return -1;
	if ((v[IF_COVER] = raw[IF_COVER]) != NULL &&
	    (strlen(v[IF_COVER]) > 512 || (v[IF_COVER][0] != '\0' &&
	    strncmp(v[IF_COVER], "https://", 8) != 0) ||
	    strpbrk(v[IF_COVER], " \t\r\n\"<>") != NULL)) {
		resp_error(rs, API_VALIDATION, "field `%s` must be empty or an "
		    "https:// URL of at most 512 characters", name[IF_COVER]);
		return -1;
	}
	if ((v[IF_CATEGORY] = raw[IF_CATEGORY]) != NULL &&
	    data_valid_category(rs, name[IF_CATEGORY], v[IF_CATEGORY]) == -1)
		return -1;
	if ((v[IF_STATUS] = raw[IF_STATUS]) != NULL &&
	    strcmp(v[IF_STATUS], "draft") != 0 &&
	    strcmp(v[IF_STATUS], "published") != 0 &&
	    strcmp(v[IF_STATUS], "archived") != 0) {
		resp_error(rs, API_VALIDATION, "field `%s` must be draft, "
		    "published or archived", name[IF_STATUS]);
		return -1;
	}
	return 0;
}

/*
 * Will the write of status (NULL: unchanged, or the default of a new
 * item when create) publish an item whose owner is to be told?
 */
static int
tells_owner(struct app *app, const char *status, int create)
{
	return app->cfg.message_item_published_template[0] != '\0' &&
	    (status != NULL ? strcmp(status, "published") == 0 : create);
}

/*
 * The business event "an item was published": a subscribe message to its
 * owner (message_item_published_template), enqueued in the transaction
 * of the write -- the way an application hands work to the worker.  Its
 * key makes publishing an item again within job_dedup_ttl one message.
 * 0 (sent, or nothing to send), or -1 with the answer set.
 */
static int
tell_owner(struct app *app, struct req *rq, struct resp *rs, PGresult *item)
{
	struct message		 m = { .quiet = 1 };
	struct json_object	*send, *data, *v;
	const char		*params[1], *title, *id;
	PGresult		*res;
	enum db_status		 st;
	size_t			 k;

	if (PQgetisnull(item, 0, IC_OWNER) ||
	    strcmp(PQgetvalue(item, 0, IC_STATUS), "published") != 0)
		return 0;
	id = PQgetvalue(item, 0, IC_ID);
	params[0] = PQgetvalue(item, 0, IC_OWNER);
	if ((st = db_exec(&app->db, STMT_USER_OPENID, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "item published: owner");
		return -1;
	}
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, ONLY_COL)) {
		PQclear(res);
		return 0;	/* an owner WeChat does not know */
	}
	m.openid = arena_strdup(rq->a, PQgetvalue(res, 0, ONLY_COL));
	PQclear(res);
	m.sender_id = m.user_id = strtoll(params[0], NULL, 10);
	m.template_id = app->cfg.message_item_published_template;
	m.key = arena_printf(rq->a, "item-published:%s", id);
	/* A "thing" of WeChat's templates: at most 20 characters. */
	title = PQgetvalue(item, 0, IC_TITLE);
	k = util_utf8_prefix(title, strlen(title), 20);
	send = json_object_new_object();
	data = json_object_new_object();
	v = json_object_new_object();
	json_object_object_add(v, "value", json_object_new_string_len(title,
	    (int)k));
	json_object_object_add(data, "thing1", v);
	json_object_object_add(send, "touser", json_object_new_string(m.openid));
	json_object_object_add(send, "template_id",
	    json_object_new_string(m.template_id));
	json_object_object_add(send, "page", json_object_new_string(
	    arena_printf(rq->a, "pages/item/item?id=%s", id)));
	json_object_object_add(send, "data", data);
	m.body = arena_strdup(rq->a, json_object_to_json_string_ext(send,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(send);
	return app_message_enqueue(app, rs, &m) == -1 ? -1 : 0;
}

/*
 * Content security of the text and image fields of an item being written
 * (app/moderation.c); -1 answered (risky, or WeChat unavailable and
 * content_check_fail closed).
 */
static int
item_checks(struct app *app, struct req *rq, struct resp *rs,
    const char *const *v, struct checked *c)
{
	memset(c, 0, sizeof(*c));
	return moderation_check(app, rq, rs, c, data_item_fields[IF_TITLE],
	    v[IF_TITLE], 3, 0) == -1 ||
	    moderation_check(app, rq, rs, c, data_item_fields[IF_SUMMARY],
	    v[IF_SUMMARY], 3, 0) == -1 ||
	    moderation_check(app, rq, rs, c, data_item_fields[IF_COVER],
	    v[IF_COVER], 3, 1) == -1 ? -1 : 0;
}

/*
 * POST /api/v1/data: the caller owns what it creates.  Content that waits
 * for a verdict makes it a draft until then.
 */
void
h_item_create(struct app *app, struct req *rq, struct resp *rs)
{
	struct json_object	*body;
	struct checked		 c;
	const char		*params[IF_COUNT + 1];
	PGresult		*res;
	int			 tell, held, publish, txn;

	/* $1..$5 the fields, $6 the owner */
	if (req_json_body(rq, rs, &body) == -1 ||
	    item_fields_parse(rq, rs, body, params) == -1)
		return;
	if (params[IF_TITLE] == NULL || params[IF_CATEGORY] == NULL) {
		resp_error(rs, API_VALIDATION, "field `%s` is missing",
		    data_item_fields[params[IF_TITLE] == NULL ? IF_TITLE :
		    IF_CATEGORY]);
		return;
	}
	if (item_checks(app, rq, rs, params, &c) == -1)
		return;
	publish = params[IF_STATUS] == NULL ||
	    strcmp(params[IF_STATUS], "published") == 0;
	if ((held = moderation_waits(&c)))
		params[IF_STATUS] = "draft";
	params[IF_COUNT] = arena_printf(rq->a, "%lld", app->who.user_id);
	tell = !held && tells_owner(app, params[IF_STATUS], 1);
	if ((txn = app_idem_claim(app, rq, rs, tell || held)) == -1)
		return;
	if ((res = app_write(app, rs, STMT_ITEM_CREATE, params, COLL_ITEMS,
	    "item", 0, NULL)) != NULL) {
		if ((!tell || tell_owner(app, rq, rs, res) == 0) &&
		    (!held || moderation_hold(app, rs, &c, strtoll(
		    PQgetvalue(res, 0, IC_ID), NULL, 10), 0, publish) == 0)) {
			app_answer_row(rs, 201, res, data_item_json);
			resp_header(rs, "Location", "/api/v1/data/%s",
			    PQgetvalue(res, 0, IC_ID));
		}
		PQclear(res);
	}
	if (txn)
		app_txn_end(app, rs, 1);
}

/*
 * Item id as it is now: 0 with its owner (0: none) and whether it is
 * published, or -1 when there is none (or PostgreSQL failed).
 */
static int
item_now(struct app *app, long long id, long long *owner, int *published)
{
	const char	*params[1];
	PGresult	*res;
	int		 rc = -1;

	params[0] = arena_printf(&app->arena, "%lld", id);
	if (db_exec(&app->db, STMT_ITEM_GET, params, &res) != DB_OK)
		return -1;
	if (PQntuples(res) == 1) {
		*owner = PQgetisnull(res, 0, IC_OWNER) ? 0 :
		    strtoll(PQgetvalue(res, 0, IC_OWNER), NULL, 10);
		*published = strcmp(PQgetvalue(res, 0, IC_STATUS),
		    "published") == 0;
		rc = 0;
	}
	PQclear(res);
	return rc;
}

#define OWNER_RULE	"only the owner of an item or an admin may change or " \
			"delete it"

/* $n of a guarded write: the caller, or NULL (any owner) for an admin. */
static const char *
owner_guard(struct app *app, struct req *rq)
{
	return app->who.admin ? NULL :
	    arena_printf(rq->a, "%lld", app->who.user_id);
}

/* PATCH /api/v1/data/{id}: its owner, or an admin. */
void
h_item_patch(struct app *app, struct req *rq, struct resp *rs)
{
	struct json_object	*body;
	const char		*params[IF_COUNT + 2], *fields = "";
	struct checked		 c;
	PGresult		*res;
	long long		 id;
	long long		 owner = 0;
	int			 i, any = 0, tell, held, publish = 0, txn;
	int			 published = 0, publishing;

	/* $1 the id, $2..$6 the fields, $7 the owner guard */
	if (data_parse_id(rq, rs, &id) == -1 ||
	    req_json_body(rq, rs, &body) == -1 ||
	    item_fields_parse(rq, rs, body, params + 1) == -1)
		return;
	params[0] = arena_printf(rq->a, "%lld", id);
	for (i = 0; i < IF_COUNT; i++)
		any |= params[i + 1] != NULL;
	if (!any) {
		for (i = 0; i < IF_COUNT; i++)
			fields = arena_printf(rq->a, "%s%s%s", fields,
			    i > 0 ? ", " : "", data_item_fields[i]);
		resp_error(rs, API_VALIDATION, "give at least one of the fields "
		    "%s", fields);
		return;
	}
	params[IF_COUNT + 1] = owner_guard(app, rq);
	/*
	 * Content to check, or a status that moderation may hold back: only
	 * once the caller may write it (WeChat is not asked, nor a hidden
	 * item's state told, on a stranger's behalf).
	 */
	if ((params[1 + IF_TITLE] != NULL || params[1 + IF_SUMMARY] != NULL ||
	    params[1 + IF_COVER] != NULL || params[1 + IF_STATUS] != NULL) &&
	    (item_now(app, id, &owner,
	    &published) == -1 || (!app->who.admin &&
	    owner != app->who.user_id))) {
		app_refuse(app, rq, rs, STMT_ITEM_GET, id, "item", IC_STATUS,
		    OWNER_RULE);
		return;
	}
	if (item_checks(app, rq, rs, params + 1, &c) == -1)
		return;
	if ((held = moderation_waits(&c))) {
		publish = params[1 + IF_STATUS] != NULL ?
		    strcmp(params[1 + IF_STATUS], "published") == 0 : published;
		params[1 + IF_STATUS] = "draft";
	}
	/*
	 * Published: not while content of it waits or was rejected -- as it
	 * is after this write, so checked after it, in its transaction.
	 */
	publishing = !held && params[1 + IF_STATUS] != NULL &&
	    strcmp(params[1 + IF_STATUS], "published") == 0;
	tell = !held && tells_owner(app, params[1 + IF_STATUS], 0);
	if ((txn = app_idem_claim(app, rq, rs, tell || held || publishing)) ==
	    -1)
		return;
	if ((res = app_write(app, rs, STMT_ITEM_PATCH, params, COLL_ITEMS,
	    "item", id, NULL)) == NULL) {
		if (rs->status == 404)
			app_refuse(app, rq, rs, STMT_ITEM_GET, id, "item",
			    IC_STATUS, OWNER_RULE);
	} else {
		if ((!publishing || moderation_may_publish(app, rs, id) == 0) &&
		    (!tell || tell_owner(app, rq, rs, res) == 0) &&
		    (!held || moderation_hold(app, rs, &c, id, 0,
		    publish) == 0)) {
			/* Its status may hide it: its favorites count with it. */
			app_invalidate(app, COLL_FAVORITES);
			app_answer_row(rs, 200, res, data_item_json);
		}
		PQclear(res);
	}
	if (txn)
		app_txn_end(app, rs, 1);
}

/* DELETE /api/v1/data/{id}: its owner, or an admin. */
void
h_item_delete(struct app *app, struct req *rq, struct resp *rs)
{
	const char	*params[2];
	PGresult	*res;
	long long	 id;

	if (data_parse_id(rq, rs, &id) == -1)
		return;
	params[0] = arena_printf(rq->a, "%lld", id);
	params[1] = owner_guard(app, rq);
	if ((res = app_write(app, rs, STMT_ITEM_DELETE, params, COLL_ITEMS,
	    "item", id, NULL)) == NULL) {
		if (rs->status == 404)
			app_refuse(app, rq, rs, STMT_ITEM_GET, id, "item",
			    IC_STATUS, OWNER_RULE);
		return;
	}
	app_invalidate(app, COLL_FAVORITES);	/* its favorites went too */
	resp_json(rs, 204, NULL, "deleted");
	PQclear(res);
}

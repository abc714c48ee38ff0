/*
 * h_users: /api/v1/users — the user resource.
 *
 * Anyone may read a user as the public sees it (id, name, avatar): those
 * answers are shared and cached.  The user itself and admins read it in
 * full (e-mail, phone, role), in a private answer built for them alone.
 * Creating users is for admins.  A user may change or delete only itself,
 * and may not set its own e-mail address: addresses are not verified, so
 * letting users claim them would let anyone squat another's address, and
 * the 409 of a taken one would tell who has which.  Admins do both.
 */
#include <limits.h>
#include <string.h>

#include "app.h"
#include "data.h"
#include "util.h"

static const char *const user_fields[] = { "name", "email", NULL };

/* GET /api/v1/users: shared, but an admin's shows every field. */
int
p_users_list(struct app *app, struct req *rq, struct resp *rs,
    struct read_plan *rp)
{
	struct list_query	*q = arena_alloc(rq->a, sizeof(*q));

	if (data_parse_list(rq, rs, 0, q) == -1)
		return -1;
	q->private = app->who.admin;
	if (!q->private)
		data_list_counts(q, &app->cache, app_collections[COLL_USERS],
		    app->cfg.cache_ttl);
	*rp = (struct read_plan){ .coll = COLL_USERS, .is_list = 1,
	    .build = data_build_users, .arg = q,
	    .key = q->private ? NULL : data_list_key(rq->a, q) };
	return 0;
}

/*
 * GET /api/v1/users/{id}[?include=profile]: shared, but the user itself
 * and admins see every field.
 */
int
p_user_get(struct app *app, struct req *rq, struct resp *rs,
    struct read_plan *rp)
{
	struct one_query	*q = arena_alloc(rq->a, sizeof(*q));
	const char		*inc = req_query(rq, "include");

	memset(q, 0, sizeof(*q));
	if (data_parse_id(rq, rs, &q->id) == -1)
		return -1;
	if (inc != NULL) {
		if (strcmp(inc, "profile") != 0) {
			resp_error(rs, API_VALIDATION, "query parameter "
			    "`include` must be `profile`");
			return -1;
		}
		q->profile = 1;
	}
	q->private = app->who.admin || (app->who.user_id != 0 &&
	    app->who.user_id == q->id);
	*rp = (struct read_plan){ .coll = COLL_USERS, .build = data_build_user,
	    .arg = q, .key = q->private ? NULL : data_one_key(rq->a, q) };
	return 0;
}

/* name and email of body into v[0], v[1]; required when create is set. */
static int
user_fields_parse(struct req *rq, struct resp *rs, struct json_object *body,
    int create, const char *v[2])
{
	const char	*name, *email;

	v[0] = v[1] = NULL;
	if (req_json_only(rs, body, user_fields) == -1)
		return -1;
	if (create) {
		if (req_json_string(rs, body, "name", &name) == -1 ||
		    req_json_string(rs, body, "email", &email) == -1)
			return -1;
	} else if (req_json_opt_string(rs, body, "name", &name) == -1 ||
	    req_json_opt_string(rs, body, "email", &email) == -1)
		return -1;
	if (name != NULL &&
	    data_valid_text(rq->a, rs, "name", name, 1, 64, 0, &v[0]) == -1)
		return -1;
	if (email != NULL && data_valid_email(rq->a, rs, email, &v[1]) == -1)
		return -1;
	if (v[0] == NULL && v[1] == NULL) {
		resp_error(rs, API_VALIDATION,
		    "give at least one of the fields name, email");
		return -1;
	}
	return 0;
}

#define EMAIL_TAKEN	"field `email` is already in use"

/* POST /api/v1/users {name, email}: admins only (the route says so). */
void
h_user_create(struct app *app, struct req *rq, struct resp *rs)
{
	struct json_object	*body;
	const char		*v[2], *errstr;
	PGresult		*res;

	if (req_json_body(rq, rs, &body) == -1 ||
	    user_fields_parse(rq, rs, body, 1, v) == -1)
		return;
	if ((res = app_write(app, rs, STMT_USER_CREATE, v,
	    COLL_USERS, "user", 0, EMAIL_TAKEN)) == NULL)
		return;
	app_answer_row(rs, 201, res, data_user_full_json);
	resp_header(rs, "Location", "/api/v1/users/%s",
	    PQgetvalue(res, 0, UC_ID));
	resp_header_str(rs, "Cache-Control", "private, no-cache");
	if (util_strtonum(PQgetvalue(res, 0, UC_ID), 1, LLONG_MAX,
	    &app->shown, &errstr) == -1)
		app->shown = 0;
	PQclear(res);
}

/*
 * The caller may change user id: itself, or anyone for an admin.  Else
 * -1 with 403, or 404 when there is no such user (users are public: the
 * 403 tells nothing new).
 */
static int
user_may_change(struct app *app, struct req *rq, struct resp *rs,
    long long id)
{
	if (app->who.admin || app->who.user_id == id)
		return 0;
	app_refuse(app, rq, rs, STMT_USER_GET, id, "user", -1,
	    "a user may change or delete only its own account");
	return -1;
}

/* PATCH /api/v1/users/{id}: the user itself, or an admin. */
void
h_user_patch(struct app *app, struct req *rq, struct resp *rs)
{
	struct json_object	*body;
	struct checked		 c;
	const char		*v[2], *params[3];
	PGresult		*res;
	long long		 id;
	int			 held, txn;

	if (data_parse_id(rq, rs, &id) == -1 ||
	    user_may_change(app, rq, rs, id) == -1 ||
	    req_json_body(rq, rs, &body) == -1 ||
	    user_fields_parse(rq, rs, body, 0, v) == -1)
		return;
	if (v[1] != NULL && !app->who.admin) {
		resp_error(rs, API_FORBIDDEN, "field `email` is set by an "
		    "administrator only (addresses are not verified)");
		return;
	}
	/* A new name: content security first (scene 1, a profile). */
	memset(&c, 0, sizeof(c));
	if (moderation_check(app, rq, rs, &c, "name", v[0], 1, 0) == -1)
		return;
	if ((held = moderation_waits(&c)))
		v[0] = NULL;		/* the old name stays meanwhile */
	if ((txn = app_idem_claim(app, rq, rs, held)) == -1)
		return;
	params[0] = arena_printf(rq->a, "%lld", id);
	params[1] = v[0];
	params[2] = v[1];
	if ((res = app_write(app, rs, STMT_USER_PATCH, params,
	    COLL_USERS, "user", id, EMAIL_TAKEN)) != NULL) {
		if (!held || moderation_hold(app, rs, &c, 0, id, 0) == 0) {
			/* 202: the rest is done, the name waits. */
			app_answer_row(rs, held ? 202 : 200, res,
			    data_user_full_json);
			resp_header_str(rs, "Cache-Control", "private, no-cache");
			app->shown = id;
		}
		PQclear(res);
	}
	if (txn)
		app_txn_end(app, rs, 1);
}

/* DELETE /api/v1/users/{id}: the account, as DELETE /api/v1/user/me. */
void
h_user_delete(struct app *app, struct req *rq, struct resp *rs)
{
	long long	id;

	if (data_parse_id(rq, rs, &id) == -1 ||
	    user_may_change(app, rq, rs, id) == -1)
		return;
	account_answer(app, rs, account_delete(&app->db, &app->cache,
	    app->pool->changes, id), id, "deleted");
}

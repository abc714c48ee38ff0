/*
 * h_users: /api/v1/users — the user resource.  Reads are public and
 * cached; writes need an access token and invalidate the collection.
 */
#include <string.h>

#include "app.h"
#include "data.h"

static const char *const user_fields[] = { "name", "email", NULL };

/* GET /api/v1/users */
void
h_users_list(struct app *app, struct req *rq, struct resp *rs)
{
	struct list_query	q;

	if (data_parse_list(rq, rs, 0, &q) == -1)
		return;
	app_cached(app, rq, rs, "users", data_list_key(rq->a, &q),
	    data_build_users, &q);
}

/* GET /api/v1/users/{id}[?include=profile] */
void
h_user_get(struct app *app, struct req *rq, struct resp *rs)
{
	struct one_query	 q = { 0, 0 };
	const char		*inc = req_query(rq, "include");

	if (data_parse_id(rq, rs, &q.id) == -1)
		return;
	if (inc != NULL) {
		if (strcmp(inc, "profile") != 0) {
			resp_error(rs, API_VALIDATION, "query parameter "
			    "`include` must be `profile`");
			return;
		}
		q.profile = 1;
	}
	app_cached(app, rq, rs, "users", data_one_key(rq->a, &q),
	    data_build_user, &q);
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

/* A failed user write: a taken e-mail address is a conflict. */
static void
user_write_error(struct app *app, struct resp *rs, enum db_status st,
    const char *what)
{
	if (st == DB_ERROR && strcmp(app->db.sqlstate, "23505") == 0)
		resp_error(rs, API_CONFLICT, "field `email` is already in use");
	else
		app_db_error(app, rs, st, what);
}

static void
user_answer(struct resp *rs, int status, PGresult *res)
{
	struct buf	*b = resp_begin(rs, status);

	data_user_json(b, res, 0);
	resp_end(rs, status == 201 ? "created" : "ok");
}

/* POST /api/v1/users {name, email} */
void
h_user_create(struct app *app, struct req *rq, struct resp *rs)
{
	struct json_object	*body;
	const char		*v[2];
	PGresult		*res;
	enum db_status		 st;

	if (req_json_body(rq, rs, &body) == -1 ||
	    user_fields_parse(rq, rs, body, 1, v) == -1)
		return;
	if ((st = db_exec(&app->db, STMT_USER_CREATE, v, &res)) != DB_OK) {
		user_write_error(app, rs, st, "user create");
		return;
	}
	app_invalidate(app, "users");
	user_answer(rs, 201, res);
	resp_header(rs, "Location", "/api/v1/users/%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

/* PATCH /api/v1/users/{id} */
void
h_user_patch(struct app *app, struct req *rq, struct resp *rs)
{
	struct json_object	*body;
	const char		*v[2], *params[3];
	PGresult		*res;
	enum db_status		 st;
	long long		 id;

	if (data_parse_id(rq, rs, &id) == -1 ||
	    req_json_body(rq, rs, &body) == -1 ||
	    user_fields_parse(rq, rs, body, 0, v) == -1)
		return;
	params[0] = arena_printf(rq->a, "%lld", id);
	params[1] = v[0];
	params[2] = v[1];
	if ((st = db_exec(&app->db, STMT_USER_PATCH, params, &res)) != DB_OK) {
		user_write_error(app, rs, st, "user patch");
		return;
	}
	if (PQntuples(res) == 0)
		resp_error(rs, API_NOT_FOUND, "user %lld not found", id);
	else {
		app_invalidate(app, "users");
		user_answer(rs, 200, res);
	}
	PQclear(res);
}

/* DELETE /api/v1/users/{id} */
void
h_user_delete(struct app *app, struct req *rq, struct resp *rs)
{
	const char	*params[1];
	PGresult	*res;
	enum db_status	 st;
	long long	 id;

	if (data_parse_id(rq, rs, &id) == -1)
		return;
	params[0] = arena_printf(rq->a, "%lld", id);
	if ((st = db_exec(&app->db, STMT_USER_DELETE, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "user delete");
		return;
	}
	if (strcmp(PQcmdTuples(res), "0") == 0)
		resp_error(rs, API_NOT_FOUND, "user %lld not found", id);
	else {
		app_invalidate(app, "users");
		resp_json(rs, 204, NULL, "deleted");
	}
	PQclear(res);
}

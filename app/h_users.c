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
	    data_build_users, &q, 1);
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
	    data_build_user, &q, 0);
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

/* POST /api/v1/users {name, email} */
void
h_user_create(struct app *app, struct req *rq, struct resp *rs)
{
	struct json_object	*body;
	const char		*v[2];
	PGresult		*res;

	if (req_json_body(rq, rs, &body) == -1 ||
	    user_fields_parse(rq, rs, body, 1, v) == -1)
		return;
	if ((res = app_write(app, rs, STMT_USER_CREATE, v, "users", "user", 0,
	    EMAIL_TAKEN)) == NULL)
		return;
	app_answer_row(rs, 201, res, data_user_json);
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
	long long		 id;

	if (data_parse_id(rq, rs, &id) == -1 ||
	    req_json_body(rq, rs, &body) == -1 ||
	    user_fields_parse(rq, rs, body, 0, v) == -1)
		return;
	params[0] = arena_printf(rq->a, "%lld", id);
	params[1] = v[0];
	params[2] = v[1];
	if ((res = app_write(app, rs, STMT_USER_PATCH, params, "users", "user",
	    id, EMAIL_TAKEN)) == NULL)
		return;
	app_answer_row(rs, 200, res, data_user_json);
	PQclear(res);
}

/* DELETE /api/v1/users/{id} */
void
h_user_delete(struct app *app, struct req *rq, struct resp *rs)
{
	app_delete(app, rq, rs, STMT_USER_DELETE, "users", "user");
}

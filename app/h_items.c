/*
 * h_items: /api/v1/data — the items a Mini Program home page shows.
 * Reads are public and cached; writes need an access token and
 * invalidate the collection.
 */
#include <string.h>

#include "app.h"
#include "data.h"

static const char *const item_fields[] = { "title", "summary", "cover_url",
    "category", "status", NULL };

/* GET /api/v1/data/list */
void
h_items_list(struct app *app, struct req *rq, struct resp *rs)
{
	struct list_query	q;

	if (data_parse_list(rq, rs, 1, &q) == -1)
		return;
	app_cached(app, rq, rs, "items", data_list_key(rq->a, &q),
	    data_build_items, &q, 1);
}

/* GET /api/v1/data/{id} */
void
h_item_get(struct app *app, struct req *rq, struct resp *rs)
{
	struct one_query	q = { 0, 0 };

	if (data_parse_id(rq, rs, &q.id) == -1)
		return;
	app_cached(app, rq, rs, "items", data_one_key(rq->a, &q),
	    data_build_item, &q, 0);
}

/*
 * Validate the item fields of body into v[0..4] (title, summary,
 * cover_url, category, status); absent fields stay NULL.
 */
static int
item_fields_parse(struct req *rq, struct resp *rs, struct json_object *body,
    const char *v[5])
{
	const char	*raw[5];
	int		 i;

	if (req_json_only(rs, body, item_fields) == -1)
		return -1;
	for (i = 0; i < 5; i++)
		if (req_json_opt_string(rs, body, item_fields[i], &raw[i]) == -1)
			return -1;
	memset(v, 0, 5 * sizeof(*v));
	if ((raw[0] != NULL && data_valid_text(rq->a, rs, "title", raw[0], 1,
	    128, 0, &v[0]) == -1) ||
	    (raw[1] != NULL && data_valid_text(rq->a, rs, "summary", raw[1], 0,
	    1000, 1, &v[1]) == -1))
		return -1;
	if (raw[2] != NULL) {
		if (strlen(raw[2]) > 512 || (raw[2][0] != '\0' &&
		    strncmp(raw[2], "https://", 8) != 0) ||
		    strpbrk(raw[2], " \t\r\n\"<>") != NULL) {
			resp_error(rs, API_VALIDATION, "field `cover_url` must be "
			    "empty or an https:// URL of at most 512 characters");
			return -1;
		}
		v[2] = raw[2];
	}
	if (raw[3] != NULL) {
		if (data_valid_category(rs, "category", raw[3]) == -1)
			return -1;
		v[3] = raw[3];
	}
	if (raw[4] != NULL) {
		if (strcmp(raw[4], "draft") != 0 &&
		    strcmp(raw[4], "published") != 0 &&
		    strcmp(raw[4], "archived") != 0) {
			resp_error(rs, API_VALIDATION, "field `status` must be "
			    "draft, published or archived");
			return -1;
		}
		v[4] = raw[4];
	}
	return 0;
}

/* POST /api/v1/data */
void
h_item_create(struct app *app, struct req *rq, struct resp *rs)
{
	struct json_object	*body;
	const char		*v[5];
	PGresult		*res;

	if (req_json_body(rq, rs, &body) == -1 ||
	    item_fields_parse(rq, rs, body, v) == -1)
		return;
	if (v[0] == NULL || v[3] == NULL) {
		resp_error(rs, API_VALIDATION, "field `%s` is missing",
		    v[0] == NULL ? "title" : "category");
		return;
	}
	/* $1 title, $2 summary, $3 cover_url, $4 category, $5 status */
	if ((res = app_write(app, rs, STMT_ITEM_CREATE, v, "items", "item", 0,
	    NULL)) == NULL)
		return;
	app_answer_row(rs, 201, res, data_item_json);
	resp_header(rs, "Location", "/api/v1/data/%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

/* PATCH /api/v1/data/{id} */
void
h_item_patch(struct app *app, struct req *rq, struct resp *rs)
{
	struct json_object	*body;
	const char		*v[5], *params[6];
	PGresult		*res;
	long long		 id;
	int			 i, any = 0;

	if (data_parse_id(rq, rs, &id) == -1 ||
	    req_json_body(rq, rs, &body) == -1 ||
	    item_fields_parse(rq, rs, body, v) == -1)
		return;
	params[0] = arena_printf(rq->a, "%lld", id);
	for (i = 0; i < 5; i++) {
		params[i + 1] = v[i];
		any |= v[i] != NULL;
	}
	if (!any) {
		resp_error(rs, API_VALIDATION, "give at least one of the fields "
		    "title, summary, cover_url, category, status");
		return;
	}
	if ((res = app_write(app, rs, STMT_ITEM_PATCH, params, "items", "item",
	    id, NULL)) == NULL)
		return;
	app_answer_row(rs, 200, res, data_item_json);
	PQclear(res);
}

/* DELETE /api/v1/data/{id} */
void
h_item_delete(struct app *app, struct req *rq, struct resp *rs)
{
	app_delete(app, rq, rs, STMT_ITEM_DELETE, "items", "item");
}

/*
 * h_favorites: the items a user keeps.  A user favorites an item it can
 * see (published, or its own) and takes it back; it lists its own
 * favorites, in a private answer; anyone reads how many users favorite a
 * published item, a shared and cached answer.  A favorite goes with its
 * user and with its item (the database cascades, and the writes that
 * remove or hide an item invalidate the counts).
 */
#include "app.h"
#include "data.h"

/* The caller and the item of a favorite write: 0, or -1 with a 400. */
static int
favorite_params(struct app *app, struct req *rq, struct resp *rs,
    long long *id, const char *params[2])
{
	if (data_parse_id(rq, rs, id) == -1)
		return -1;
	params[0] = arena_printf(rq->a, "%lld", app->who.user_id);
	params[1] = arena_printf(rq->a, "%lld", *id);
	return 0;
}

/* Answer what the caller's favorite of item id now is. */
static void
favorite_answer(struct resp *rs, long long id, int favorite)
{
	struct buf	*b = resp_begin(rs, 200);

	buf_printf(b, "{\"item_id\":%lld,\"favorite\":%s}", id,
	    favorite ? "true" : "false");
	resp_end(rs, "ok");
}

/* PUT /api/v1/data/{id}/favorite: again is the same. */
void
h_favorite_put(struct app *app, struct req *rq, struct resp *rs)
{
	const char	*params[2];
	PGresult	*res;
	long long	 id;

	if (favorite_params(app, rq, rs, &id, params) == -1 ||
	    (res = app_write(app, rs, STMT_FAV_ADD, params, COLL_FAVORITES,
	    "item", id, NULL)) == NULL)
		return;
	PQclear(res);
	favorite_answer(rs, id, 1);
}

/* DELETE /api/v1/data/{id}/favorite */
void
h_favorite_delete(struct app *app, struct req *rq, struct resp *rs)
{
	const char	*params[2];
	PGresult	*res;
	long long	 id;

	if (favorite_params(app, rq, rs, &id, params) == -1 ||
	    (res = app_write(app, rs, STMT_FAV_REMOVE, params, COLL_FAVORITES,
	    "favorite of item", id, NULL)) == NULL)
		return;
	PQclear(res);
	favorite_answer(rs, id, 0);
}

/* The caller's favorite items, newest first, paged as every list. */
static enum db_status
build_mine(struct db *db, struct arena *a, const void *arg,
    struct hc_entry *e)
{
	const struct list_query	*q = arg;
	const char		*filters[3] = { NULL, NULL, NULL };

	filters[0] = arena_printf(a, "%lld", q->owner);
	return data_build_list(db, a, q, STMT_FAV_PAGE, STMT_FAV_AFTER,
	    STMT_FAV_COUNT_MINE, filters, data_item_json, IC_MTIME, e);
}

/* GET /api/v1/user/favorites: the caller's alone. */
int
p_favorites_mine(struct app *app, struct req *rq, struct resp *rs,
    struct read_plan *rp)
{
	struct list_query	*q = arena_alloc(rq->a, sizeof(*q));

	if (data_parse_list(rq, rs, 0, q) == -1)
		return -1;
	q->private = 1;
	q->owner = app->who.user_id;
	*rp = (struct read_plan){ .coll = COLL_FAVORITES, .is_list = 1,
	    .build = build_mine, .arg = q, .key = NULL };
	return 0;
}

/* How many users favorite a published item; 404 for any other. */
static enum db_status
build_of_item(struct db *db, struct arena *a, const void *arg,
    struct hc_entry *e)
{
	const struct one_query	*q = arg;
	const char		*params[1];
	PGresult		*res;
	enum db_status		 st;
	struct buf		 b;

	params[0] = arena_printf(a, "%lld", q->id);
	if ((st = db_exec(db, STMT_FAV_OF_ITEM, params, &res)) != DB_OK)
		return st;
	if (PQntuples(res) == 0)
		data_entry_not_found(a, e, "item", q->id);
	else {
		buf_init(&b, a, 96);
		buf_printf(&b, "{\"code\":0,\"data\":{\"item_id\":%s,"
		    "\"count\":%s},\"message\":\"ok\"}",
		    PQgetvalue(res, 0, FC_ITEM), PQgetvalue(res, 0, FC_COUNT));
		data_entry_done(e, 200, &b, data_int_col(res, 0, FC_MTIME));
	}
	PQclear(res);
	return DB_OK;
}

/*
 * GET /api/v1/data/{id}/favorites: shared.  A count changes with every
 * favorite of the host's users, so its Last-Modified is the collection's
 * (is_list).
 */
int
p_favorites_of_item(struct app *app, struct req *rq, struct resp *rs,
    struct read_plan *rp)
{
	struct one_query	*q = arena_alloc(rq->a, sizeof(*q));

	(void)app;
	*q = (struct one_query){ 0 };
	if (data_parse_id(rq, rs, &q->id) == -1)
		return -1;
	*rp = (struct read_plan){ .coll = COLL_FAVORITES, .is_list = 1,
	    .build = build_of_item, .arg = q,
	    .key = arena_printf(rq->a, "count:%lld", q->id) };
	return 0;
}

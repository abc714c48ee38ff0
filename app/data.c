/*
 * data: list parsing, cache keys, builders and validation.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "data.h"
#include "util.h"

const char *const app_collections[COLL_COUNT + 1] = {
	[COLL_USERS] = "users",
	[COLL_ITEMS] = "items",
	[COLL_AUTH] = "auth",
	[COLL_FAVORITES] = "favorites",
	[COLL_COUNT] = NULL
};

/*
 * Every cache key starts with the version of what its answer shows: a
 * change of representation (such as the public user losing its e-mail)
 * must not be answered from entries made before it.
 */
#define KEY_VERSION	"v2:"

/* A query parameter as an integer in [min, max]; dflt when absent. */
static int
query_int(struct req *rq, struct resp *rs, const char *name, long long min,
    long long max, long long dflt, long long *out)
{
	const char	*v = req_query(rq, name), *errstr;

	*out = dflt;
	if (v == NULL)
		return 0;
	if (util_strtonum(v, min, max, out, &errstr) == -1) {
		resp_error(rs, API_VALIDATION, "query parameter `%s` must be an "
		    "integer from %lld to %lld", name, min, max);
		return -1;
	}
	return 0;
}

int
data_valid_category(struct resp *rs, const char *field, const char *in)
{
	size_t	i;

	for (i = 0; in[i] != '\0'; i++)
		if (i == 32 || !(islower((unsigned char)in[i]) ||
		    isdigit((unsigned char)in[i]) || in[i] == '_' ||
		    in[i] == '-'))
			break;
	if (i == 0 || in[i] != '\0') {
		resp_error(rs, API_VALIDATION, "%s `%s` must be 1 to 32 of "
		    "[a-z0-9_-]", field[0] == '?' ? "query parameter" : "field",
		    field[0] == '?' ? field + 1 : field);
		return -1;
	}
	return 0;
}

int
data_parse_list(struct req *rq, struct resp *rs, int category,
    struct list_query *q)
{
	memset(q, 0, sizeof(*q));
	if (query_int(rq, rs, "page_size", 1, DATA_PAGE_SIZE_MAX,
	    DATA_PAGE_SIZE, &q->page_size) == -1 ||
	    query_int(rq, rs, "page", 1, DATA_PAGE_MAX, 1, &q->page) == -1 ||
	    query_int(rq, rs, "after", 1, LLONG_MAX, 0, &q->after) == -1)
		return -1;
	if (q->after != 0) {
		if (req_query(rq, "page") != NULL) {
			resp_error(rs, API_VALIDATION, "query parameters `page` "
			    "and `after` cannot be used together");
			return -1;
		}
		q->page = 0;
	}
	if (category && (q->category = req_query(rq, "category")) != NULL &&
	    data_valid_category(rs, "?category", q->category) == -1)
		return -1;
	return 0;
}

int
data_parse_id(struct req *rq, struct resp *rs, long long *id)
{
	const char	*v = req_path_param(rq, "id"), *errstr;

	if (v == NULL || util_strtonum(v, 1, LLONG_MAX, id, &errstr) == -1) {
		resp_error(rs, API_VALIDATION, "`id` must be a positive integer");
		return -1;
	}
	return 0;
}

const char *
data_list_key(struct arena *a, const struct list_query *q)
{
	struct buf	b;

	buf_init(&b, a, 64);
	buf_adds(&b, KEY_VERSION "list:");
	buf_adds(&b, q->category ? q->category : "");
	buf_adds(&b, q->after != 0 ? ":after=" : ":page=");
	buf_addll(&b, q->after != 0 ? q->after : q->page);
	buf_adds(&b, ":size=");
	buf_addll(&b, q->page_size);
	return buf_cstr(&b);
}

const char *
data_one_key(struct arena *a, const struct one_query *q)
{
	return arena_printf(a, KEY_VERSION "one:%lld:%s", q->id,
	    q->profile ? "p" : "");
}

/* Append column col of row as a JSON string, or null when NULL. */
static void
json_col(struct buf *b, PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		buf_adds(b, "null");
	else
		buf_json_str(b, PQgetvalue(res, row, col),
		    (size_t)PQgetlength(res, row, col));
}

long long
data_int_col(PGresult *res, int row, int col)
{
	const char	*errstr;
	long long	 v;

	if (util_strtonum(PQgetvalue(res, row, col), 0, LLONG_MAX, &v,
	    &errstr) == -1)
		return 0;
	return v;
}

/* "{"id":..,"name":..,"avatar_url":..": what anyone may see of a user. */
static void
user_public_fields(struct buf *b, PGresult *res, int row)
{
	buf_adds(b, "{\"id\":");
	buf_adds(b, PQgetvalue(res, row, UC_ID));
	buf_adds(b, ",\"name\":");
	json_col(b, res, row, UC_NAME);
	buf_adds(b, ",\"avatar_url\":");
	json_col(b, res, row, UC_AVATAR);
}

void
data_user_json(struct buf *b, PGresult *res, int row)
{
	user_public_fields(b, res, row);
	buf_addc(b, '}');
}

void
data_user_full_json(struct buf *b, PGresult *res, int row)
{
	user_public_fields(b, res, row);
	buf_adds(b, ",\"email\":");
	json_col(b, res, row, UC_EMAIL);
	buf_adds(b, ",\"phone\":");
	json_col(b, res, row, UC_PHONE);
	buf_adds(b, ",\"role\":");
	json_col(b, res, row, UC_ROLE);
	buf_printf(b, ",\"created_at\":\"%s\",\"updated_at\":\"%s\"}",
	    PQgetvalue(res, row, UC_CREATED), PQgetvalue(res, row, UC_UPDATED));
}

const char *const data_item_fields[IF_COUNT + 1] = {
	[IF_TITLE] = "title",
	[IF_SUMMARY] = "summary",
	[IF_COVER] = "cover_url",
	[IF_CATEGORY] = "category",
	[IF_STATUS] = "status",
	[IF_COUNT] = NULL
};
_Static_assert(IC_SUMMARY == IC_TITLE + IF_SUMMARY &&
    IC_COVER == IC_TITLE + IF_COVER && IC_CATEGORY == IC_TITLE + IF_CATEGORY &&
    IC_STATUS == IC_TITLE + IF_STATUS, "item fields are columns in order");

void
data_item_json(struct buf *b, PGresult *res, int row)
{
	int	i;

	buf_adds(b, "{\"id\":");
	buf_adds(b, PQgetvalue(res, row, IC_ID));
	for (i = 0; i < IF_COUNT; i++) {
		buf_printf(b, ",\"%s\":", data_item_fields[i]);
		json_col(b, res, row, IC_TITLE + i);
	}
	buf_adds(b, ",\"owner_id\":");
	buf_adds(b, PQgetisnull(res, row, IC_OWNER) ? "null" :
	    PQgetvalue(res, row, IC_OWNER));
	buf_printf(b, ",\"created_at\":\"%s\",\"updated_at\":\"%s\"}",
	    PQgetvalue(res, row, IC_CREATED), PQgetvalue(res, row, IC_UPDATED));
}

void
data_entry_done(struct hc_entry *e, int status, struct buf *b,
    long long last_modified)
{
	e->status = status;
	e->body = b->p;
	e->body_len = b->len;
	e->last_modified = last_modified;
	httpcache_set_etag(e);
}

void
data_entry_not_found(struct arena *a, struct hc_entry *e, const char *what,
    long long id)
{
	struct buf	b;

	buf_init(&b, a, 96);
	buf_printf(&b, "{\"code\":%d,\"data\":null,\"message\":\"%s %lld not "
	    "found\"}", API_NOT_FOUND, what, id);
	data_entry_done(e, 404, &b, 0);
}

_Static_assert((int)UC_ID == (int)IC_ID, "users and items have their id first");

/*
 * A list page: rows of res serialized by fn, then page, page_size and
 * total (page-based) or next_after (keyset).
 */
static void
list_body(struct arena *a, struct hc_entry *e, PGresult *res,
    void (*fn)(struct buf *, PGresult *, int), int epoch_col_no,
    const struct list_query *q, const char *total)
{
	struct buf	b;
	long long	lm = 0, t;
	int		i, n = PQntuples(res);

	buf_init(&b, a, 512 + (size_t)n * 320);
	buf_adds(&b, "{\"code\":0,\"data\":{\"items\":[");
	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_addc(&b, ',');
		fn(&b, res, i);
		if ((t = data_int_col(res, i, epoch_col_no)) > lm)
			lm = t;
	}
	if (q->after != 0) {
		buf_printf(&b, "],\"page_size\":%lld,\"next_after\":", q->page_size);
		if (n == q->page_size && n > 0)
			buf_adds(&b, PQgetvalue(res, n - 1, UC_ID));
		else
			buf_adds(&b, "null");
	} else
		buf_printf(&b, "],\"page\":%lld,\"page_size\":%lld,\"total\":%s",
		    q->page, q->page_size, total);
	buf_adds(&b, "},\"message\":\"ok\"}");
	data_entry_done(e, 200, &b, lm);
}

void
data_list_counts(struct list_query *q, struct cache *cc, const char *coll,
    long long ttl)
{
	q->counts = cc;
	q->count_coll = coll;
	q->count_ttl = ttl;
}

/*
 * The total of a page-based list.  On a large table the count costs far
 * more than the page, and a write makes every page of the collection
 * unreachable at once: counted for each page, the rebuilds after a write
 * would each pay it.  So a shared list's total is kept in Redis like an
 * answer, under the collection's version (a write makes it unreachable
 * with the pages), and counted once per version and filter.  The key is
 * the filter's alone.  Without Redis, or for a private list, it is
 * counted here.
 */
static enum db_status
list_total(struct db *db, struct arena *a, const struct list_query *q,
    size_t count_st, const char *const *filters, const char **total)
{
	struct hc_entry	 e = { 0 };
	enum hc_result	 hr = HC_UNAVAILABLE;
	enum db_status	 st;
	PGresult	*res;
	const char	*vkey = NULL, *key;
	long long	 changed;

	if (q->counts != NULL) {
		key = arena_printf(a, KEY_VERSION "count:%s",
		    q->category ? q->category : "");
		hr = httpcache_get(q->counts, a, q->count_coll, key, &e, &vkey,
		    &changed);
		if (hr == HC_HIT && e.status == 200) {
			*total = arena_strndup(a, e.body, e.body_len);
			return DB_OK;
		}
	}
	if ((st = db_exec(db, count_st, filters, &res)) != DB_OK)
		return st;
	*total = arena_strdup(a, PQgetvalue(res, 0, ONLY_COL));
	PQclear(res);
	if (hr == HC_MISS && vkey != NULL) {
		e.status = 200;
		e.body = *total;
		e.body_len = strlen(*total);
		httpcache_set_etag(&e);
		(void)httpcache_put(q->counts, a, vkey, &e, q->count_ttl);
	}
	return DB_OK;
}

enum db_status
data_build_list(struct db *db, struct arena *a, const struct list_query *q,
    size_t page_st, size_t after_st, size_t count_st,
    const char *const *filters, void (*fn)(struct buf *, PGresult *, int),
    int epoch_no, struct hc_entry *e)
{
	const char	*params[5], *total = "0";
	PGresult	*res = NULL;
	enum db_status	 st;

	params[0] = arena_printf(a, "%lld", q->page_size);
	params[1] = q->after != 0 ? arena_printf(a, "%lld", q->after) :
	    arena_printf(a, "%lld", (q->page - 1) * q->page_size);
	memcpy(params + 2, filters, 3 * sizeof(*filters));
	if ((st = db_exec(db, q->after != 0 ? after_st : page_st, params,
	    &res)) != DB_OK)
		return st;
	if (q->after == 0 && (st = list_total(db, a, q, count_st, filters,
	    &total)) != DB_OK) {
		PQclear(res);
		return st;
	}
	list_body(a, e, res, fn, epoch_no, q, total);
	PQclear(res);
	return DB_OK;
}

enum db_status
data_build_items(struct db *db, struct arena *a, const void *arg,
    struct hc_entry *e)
{
	const struct list_query	*q = arg;
	const char		*filters[3] = { q->category, NULL, NULL };

	if (q->private) {
		filters[0] = q->owner != 0 ? arena_printf(a, "%lld", q->owner) :
		    NULL;
		filters[1] = q->status;
		filters[2] = q->category;
		return data_build_list(db, a, q, STMT_ITEMS_ANY_PAGE,
		    STMT_ITEMS_ANY_AFTER, STMT_ITEMS_ANY_COUNT, filters,
		    data_item_json, IC_MTIME, e);
	}
	if (q->category != NULL)
		return data_build_list(db, a, q, STMT_ITEMS_PAGE_CAT,
		    STMT_ITEMS_AFTER_CAT, STMT_ITEMS_COUNT_CAT, filters,
		    data_item_json, IC_MTIME, e);
	return data_build_list(db, a, q, STMT_ITEMS_PAGE, STMT_ITEMS_AFTER,
	    STMT_ITEMS_COUNT, filters, data_item_json, IC_MTIME, e);
}

enum db_status
data_build_users(struct db *db, struct arena *a, const void *arg,
    struct hc_entry *e)
{
	const struct list_query	*q = arg;
	const char		*filters[3] = { NULL, NULL, NULL };

	return data_build_list(db, a, q, STMT_USERS_PAGE, STMT_USERS_AFTER,
	    STMT_USERS_COUNT, filters, q->private ? data_user_full_json :
	    data_user_json, UC_MTIME, e);
}

/*
 * An item that is not published exists only for its owner and admins,
 * and only in a private answer: everyone else is told it does not.
 */
static int
item_visible(PGresult *res, const struct one_query *q)
{
	if (strcmp(PQgetvalue(res, 0, IC_STATUS), "published") == 0)
		return 1;
	return q->private && (q->admin ||
	    (q->viewer != 0 && data_int_col(res, 0, IC_OWNER) == q->viewer));
}

enum db_status
data_build_item(struct db *db, struct arena *a, const void *arg,
    struct hc_entry *e)
{
	const struct one_query	*q = arg;
	const char		*params[1];
	PGresult		*res;
	enum db_status		 st;
	struct buf		 b;

	params[0] = arena_printf(a, "%lld", q->id);
	if ((st = db_exec(db, STMT_ITEM_GET, params, &res)) != DB_OK)
		return st;
	if (PQntuples(res) == 0 || !item_visible(res, q))
		data_entry_not_found(a, e, "item", q->id);
	else {
		buf_init(&b, a, 512);
		buf_adds(&b, "{\"code\":0,\"data\":");
		data_item_json(&b, res, 0);
		buf_adds(&b, ",\"message\":\"ok\"}");
		data_entry_done(e, 200, &b, data_int_col(res, 0, IC_MTIME));
	}
	PQclear(res);
	return DB_OK;
}

/*
 * A user, with the profile only on ?include=profile: the profile query
 * runs only then (lazy loading of the expensive relation).
 */
enum db_status
data_build_user(struct db *db, struct arena *a, const void *arg,
    struct hc_entry *e)
{
	const struct one_query	*q = arg;
	const char		*params[1];
	PGresult		*res, *pres = NULL;
	enum db_status		 st;
	struct buf		 b;
	long long		 lm;

	params[0] = arena_printf(a, "%lld", q->id);
	if ((st = db_exec(db, STMT_USER_GET, params, &res)) != DB_OK)
		return st;
	if (PQntuples(res) == 0) {
		PQclear(res);
		data_entry_not_found(a, e, "user", q->id);
		return DB_OK;
	}
	if (q->profile &&
	    (st = db_exec(db, STMT_PROFILE_GET, params, &pres)) != DB_OK) {
		PQclear(res);
		return st;
	}
	lm = data_int_col(res, 0, UC_MTIME);
	buf_init(&b, a, 768);
	buf_adds(&b, "{\"code\":0,\"data\":");
	if (q->private)
		data_user_full_json(&b, res, 0);
	else
		data_user_json(&b, res, 0);
	if (q->profile) {
		b.len--;	/* reopen the user object */
		buf_adds(&b, ",\"profile\":");
		if (PQntuples(pres) == 0)
			buf_adds(&b, "null");
		else {
			buf_adds(&b, "{\"city\":");
			json_col(&b, pres, 0, PC_CITY);
			buf_printf(&b, ",\"gender\":%s,\"avatar_url\":",
			    PQgetvalue(pres, 0, PC_GENDER));
			json_col(&b, pres, 0, PC_AVATAR);
			buf_adds(&b, ",\"bio\":");
			json_col(&b, pres, 0, PC_BIO);
			buf_addc(&b, '}');
			if (data_int_col(pres, 0, PC_MTIME) > lm)
				lm = data_int_col(pres, 0, PC_MTIME);
		}
		buf_addc(&b, '}');
	}
	buf_adds(&b, ",\"message\":\"ok\"}");
	data_entry_done(e, 200, &b, lm);
	PQclear(pres);
	PQclear(res);
	return DB_OK;
}

int
data_valid_text(struct arena *a, struct resp *rs, const char *field,
    const char *in, long min, long max, int multiline, const char **out)
{
	const char	*s = in, *e, *p;
	long		 n;

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
	    e[-1] == '\r'))
		e--;
	n = util_utf8_len(s, (size_t)(e - s));
	if (n < min || n > max) {
		resp_error(rs, API_VALIDATION, "field `%s` must be %ld to %ld "
		    "characters of UTF-8 after trimming", field, min, max);
		return -1;
	}
	for (p = s; p < e; p++)
		if (((unsigned char)*p < 0x20 &&
		    !(multiline && (*p == '\n' || *p == '\t'))) || *p == 0x7f) {
			resp_error(rs, API_VALIDATION, "field `%s` must not "
			    "contain control characters", field);
			return -1;
		}
	*out = arena_strndup(a, s, (size_t)(e - s));
	return 0;
}

/*
 * A pragmatic address check: at most 254 characters, one @, a local part
 * of 1 to 64 printable characters, and a dotted domain of letters, digits
 * and hyphens.  Stored lower-cased.
 */
int
data_valid_email(struct arena *a, struct resp *rs, const char *in,
    const char **out)
{
	const char	*at = strchr(in, '@'), *p, *label;
	size_t		 n = strlen(in);
	char		*low;
	int		 dots = 0;

	if (n > 254 || at == NULL || strchr(at + 1, '@') != NULL ||
	    at == in || at - in > 64)
		goto bad;
	for (p = in; p < at; p++)
		if (!isgraph((unsigned char)*p) || *p == '"' || *p == ',' ||
		    *p == '<' || *p == '>' || *p == '(' || *p == ')' ||
		    *p == '[' || *p == ']' || *p == ';' || *p == ':' ||
		    *p == '\\')
			goto bad;
	for (label = p = at + 1;; p++) {
		if (*p == '.' || *p == '\0') {
			if (p == label || label[0] == '-' || p[-1] == '-')
				goto bad;
			if (*p == '\0')
				break;
			dots++;
			label = p + 1;
		} else if (!isalnum((unsigned char)*p) && *p != '-')
			goto bad;
	}
	if (dots == 0)
		goto bad;
	low = arena_strdup(a, in);
	for (p = low; *p != '\0'; p++)
		low[p - low] = (char)tolower((unsigned char)*p);
	*out = low;
	return 0;
bad:
	resp_error(rs, API_VALIDATION, "field `email` must be a valid e-mail "
	    "address (one @, a dotted domain, at most 254 characters)");
	return -1;
}

int
data_invalidate(struct cache *cc, uint64_t *changes, enum app_coll coll)
{
	int	rc;

	rc = httpcache_bump(cc, app_collections[coll]) == CACHE_OK ? 0 : -1;
	if (changes != NULL)
		nearcache_wrote(changes, coll);
	return rc;
}

void
data_row_json(struct buf *b, PGresult *res, int row,
    const struct data_col *cols, size_t n)
{
	const char	*v;
	size_t		 i;

	buf_addc(b, '{');
	for (i = 0; i < n; i++) {
		buf_printf(b, "%s\"%s\":", i > 0 ? "," : "", cols[i].name);
		v = PQgetvalue(res, row, cols[i].col);
		if (PQgetisnull(res, row, cols[i].col))
			buf_adds(b, "null");
		else if (cols[i].number)
			buf_adds(b, v);
		else
			buf_json_str(b, v, strlen(v));
	}
	buf_addc(b, '}');
}

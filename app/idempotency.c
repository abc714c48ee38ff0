/*
 * idempotency: the Idempotency-Key header on writes.  The first answer to
 * a key is kept (PostgreSQL, 24 hours) in the same transaction as the
 * write it answers, so that a retry of a write whose answer was lost --
 * a timeout, a dropped connection -- gets that answer back instead of
 * making the change twice.  Either the write and its answer are both
 * committed, or neither is, and a retry does it anew.
 *
 * The key is the caller's: u:<user> for a user, a:<address> otherwise.
 * Used again for another request (method, path, query or body differ),
 * it is refused with 409.  Two requests with one key at once: the second
 * waits for the first's transaction and gets its answer.
 */
#include <string.h>

#include "app.h"
#include "crypto.h"
#include "util.h"

#define KEY_MAX		255

/* hex(SHA-256) of what makes the request what it is. */
static const char *
request_hash(struct req *rq)
{
	struct buf	 b;
	unsigned char	 h[32];
	char		*hex = arena_alloc(rq->a, 65);

	buf_init(&b, rq->a, 256 + rq->body_len);
	buf_adds(&b, rq->method);
	buf_addc(&b, '\n');
	buf_adds(&b, rq->path);
	buf_addc(&b, '\n');
	buf_adds(&b, rq->query);
	buf_addc(&b, '\n');
	buf_add(&b, rq->body, rq->body_len);
	crypto_sha256(b.p, b.len, h);
	crypto_hex(h, sizeof(h), hex);
	return hex;
}

/* The Idempotency-Key of rq: 0 (NULL when none), or -1 with a 400. */
static int
key_of(struct req *rq, struct resp *rs, const char **key)
{
	size_t	i;

	if ((*key = req_param(rq, "HTTP_IDEMPOTENCY_KEY")) == NULL)
		return 0;
	for (i = 0; (*key)[i] != '\0'; i++)
		if (i == KEY_MAX || (*key)[i] < 0x21 || (*key)[i] > 0x7e)
			break;
	if (i == 0 || (*key)[i] != '\0') {
		resp_error(rs, API_VALIDATION, "header Idempotency-Key must be "
		    "1 to %d visible ASCII characters", KEY_MAX);
		return -1;
	}
	return 0;
}

/* Answer with what was stored for the key. */
static void
replay(struct resp *rs, PGresult *res)
{
	const char	*errstr;
	long long	 status;

	if (util_strtonum(PQgetvalue(res, 0, IDEM_STATUS), 200, 299, &status,
	    &errstr) == -1) {
		resp_error(rs, API_INTERNAL, "internal error");
		return;
	}
	resp_raw(rs, (int)status, PQgetvalue(res, 0, IDEM_BODY),
	    (size_t)PQgetlength(res, 0, IDEM_BODY));
	buf_add(&rs->headers, PQgetvalue(res, 0, IDEM_HEADERS),
	    (size_t)PQgetlength(res, 0, IDEM_HEADERS));
	resp_header_str(rs, "Idempotent-Replayed", "true");
}

/*
 * What was kept for the key: 1 answered from it (or 409 when it was for
 * another request), 0 nothing kept (or still being written), -1 answered
 * with the error.
 */
static int
kept(struct app *app, struct resp *rs, const char *const *params,
    const char *hash)
{
	PGresult	*res;
	enum db_status	 st;
	int		 rc = 1;

	if ((st = db_exec(&app->db, STMT_IDEM_GET, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "idempotency: get");
		return -1;
	}
	if (PQntuples(res) == 0 || PQgetisnull(res, 0, IDEM_STATUS))
		rc = 0;
	else if (strcmp(PQgetvalue(res, 0, IDEM_REQUEST), hash) != 0)
		resp_error(rs, API_IDEMPOTENCY_REUSED, "Idempotency-Key already "
		    "used for another request");
	else
		replay(rs, res);
	PQclear(res);
	return rc;
}

/*
 * The key of rq and its scope: params[0..2] (scope, key, request hash),
 * or 0 when rq has none.  The key was checked by app_idempotent.
 */
static int
claim_params(struct app *app, struct req *rq, const char **params)
{
	if ((params[1] = req_param(rq, "HTTP_IDEMPOTENCY_KEY")) == NULL)
		return 0;
	params[0] = app->who.user_id != 0 ? arena_printf(rq->a, "u:%lld",
	    app->who.user_id) : arena_printf(rq->a, "a:%s", rq->remote_addr);
	params[2] = request_hash(rq);
	return 1;
}

/*
 * In a transaction: claim the key, waiting for a transaction that holds
 * it, if one does.  0 claimed; -1 answered (from the key's record, 409,
 * or an error).
 */
static int
claim(struct app *app, struct resp *rs, const char *const *params)
{
	PGresult	*res;
	enum db_status	 st;
	int		 claimed;

	if ((st = db_exec(&app->db, STMT_IDEM_CLAIM, params, &res)) != DB_OK) {
		app_db_error(app, rs, st, "idempotency: claim");
		return -1;
	}
	claimed = PQntuples(res) == 1;
	PQclear(res);
	if (claimed)
		return 0;
	if (kept(app, rs, params, params[2]) == 0)
		resp_error(rs, API_UNAVAILABLE, "the request with this "
		    "Idempotency-Key did not finish; retry");
	return -1;
}

void
app_idempotent(struct app *app, const struct app_route *r, struct req *rq,
    struct resp *rs)
{
	const char	*key, *params[6];
	PGresult	*res = NULL;
	enum db_status	 st;
	size_t		 mark;

	if (key_of(rq, rs, &key) == -1)
		return;
	if (key == NULL) {
		r->fn(app, rq, rs);
		return;
	}
	claim_params(app, rq, params);
	mark = rs->headers.len;
	app->shown = 0;
	if (r->flags & ROUTE_CALLS_OUT) {
		/*
		 * The handler claims the key itself (app_idem_claim), once
		 * its calls are made: a retry of what was done is answered
		 * first, without them.
		 */
		if (kept(app, rs, params, params[2]) != 0)
			return;
		r->fn(app, rq, rs);
		if (app->txn_depth == 0)	/* it answered before writing */
			return;
	} else {
		if (app_txn_begin(app, rs) == -1)
			return;
		if (claim(app, rs, params) == -1)
			goto fail;
		/* The write, its invalidations held until the commit. */
		r->fn(app, rq, rs);
	}
	if (rs->status < 200 || rs->status > 299)
		goto fail;
	params[2] = arena_printf(rq->a, "%d", rs->status);
	params[3] = arena_strndup(rq->a, rs->headers.p + mark,
	    rs->headers.len - mark);
	params[4] = arena_strndup(rq->a, rs->body.p, rs->body.len);
	params[5] = app->shown > 0 ? arena_printf(rq->a, "%lld", app->shown) :
	    NULL;
	if ((st = db_exec(&app->db, STMT_IDEM_STORE, params, &res)) !=
	    DB_OK) {
		app_db_error(app, rs, st, "idempotency: store");
		goto fail;
	}
	PQclear(res);
	/* Records older than a day go, a few at a time. */
	if ((st = db_exec(&app->db, STMT_IDEM_PURGE, NULL, &res)) != DB_OK) {
		app_db_error(app, rs, st, "idempotency: purge");
		goto fail;
	}
	PQclear(res);
	res = NULL;
	app_txn_end(app, rs, 1);
	return;
fail:
	PQclear(res);
	app_txn_end(app, rs, 0);
}

int
app_idem_claim(struct app *app, struct req *rq, struct resp *rs, int txn)
{
	const char	*params[3];

	if ((app_route_of(rq)->flags & ROUTE_CALLS_OUT) &&
	    app->txn_depth == 0 && claim_params(app, rq, params)) {
		if (app_txn_begin(app, rs) == -1)
			return -1;
		if (claim(app, rs, params) == -1) {
			app_txn_end(app, rs, 0);
			return -1;
		}
		txn = 1;	/* the handler's own, inside app_idempotent's */
	}
	if (!txn)
		return 0;
	return app_txn_begin(app, rs) == -1 ? -1 : 1;
}

int
app_txn_begin(struct app *app, struct resp *rs)
{
	enum db_status	st;

	if (app->txn_depth > 0) {	/* nested: the outer one decides */
		app->txn_depth++;
		return 0;
	}
	if ((st = db_begin(&app->db)) != DB_OK) {
		app_db_error(app, rs, st, "begin");
		return -1;
	}
	app->txn_depth++;
	return 0;
}

void
app_txn_end(struct app *app, struct resp *rs, int commit)
{
	enum db_status	st;

	if (--app->txn_depth > 0)
		return;
	if (commit && rs->status >= 200 && rs->status <= 299) {
		if ((st = db_commit(&app->db)) == DB_OK) {
			app_invalidate_held(app);
			return;
		}
		app_db_error(app, rs, st, "commit");
	}
	db_rollback(&app->db);
	/* A commit in doubt may have made the change: invalidate anyway. */
	if (app->db.in_doubt)
		app_invalidate_held(app);
	app->held = 0;
}

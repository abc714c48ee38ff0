/*
 * errors: how failures of the dependencies become envelopes.  Each
 * failure is logged here, once, with what the client is not shown; so is
 * a request that nginx gave up on.
 */
#define _GNU_SOURCE	/* POLLRDHUP */

#include <poll.h>

#include "app.h"
#include "log.h"

void
app_db_error(struct app *app, struct resp *rs, enum db_status st,
    const char *what)
{
	if (st == DB_UNAVAILABLE && app->db.in_doubt) {
		resp_error(rs, API_DB_IN_DOUBT, "the database did not answer in "
		    "time: the change may have been made");
		resp_header(rs, "Retry-After", "1");
		return;
	}
	if (st == DB_UNAVAILABLE) {
		resp_error(rs, API_DB_UNAVAILABLE, "database unavailable");
		resp_header(rs, "Retry-After", "1");
		return;
	}
	log_error("%s: %s (SQLSTATE %s)", what, app->db.errmsg,
	    app->db.sqlstate);
	resp_error(rs, API_INTERNAL, "internal error");
}

/*
 * WeChat's errcodes for a user's code become 4xx the client can act on;
 * everything else (-1, unknown errcodes, timeouts, garbage) is WeChat
 * being unavailable: 503.
 */
void
app_wx_error(struct app *app, struct resp *rs, enum wechat_status st,
    const char *what)
{
	long	ec = app->wx.errcode;

	if (st == WECHAT_UNAVAILABLE) {
		log_error("%s: wechat unavailable: %s", what, app->wx.errmsg);
		resp_error(rs, API_WX_UNAVAILABLE, "WeChat is unavailable");
		resp_header_ll(rs, "Retry-After", app->wx.retry_after_s > 0 ?
		    app->wx.retry_after_s : 1);
		return;
	}
	log_warn("%s: wechat errcode %ld (%s)", what, ec, app->wx.errmsg);
	switch (ec) {
	case 40029:
		resp_error(rs, API_WX_CODE_INVALID,
		    "invalid code: call wx.login (or the button) again");
		break;
	case 40163:
		resp_error(rs, API_WX_CODE_USED,
		    "code already used: call wx.login (or the button) again");
		break;
	case 45011:
		resp_error(rs, API_WX_RATE_LIMITED,
		    "WeChat rate limit reached for this user; retry later");
		resp_header(rs, "Retry-After", "60");
		break;
	case 40226:
		resp_error(rs, API_WX_RISKY, "WeChat blocked this user as high-risk");
		break;
	default:
		resp_error(rs, API_WX_UNAVAILABLE, "WeChat is unavailable");
		resp_header(rs, "Retry-After", "1");
		break;
	}
}

int
app_client_gone(const struct app *app)
{
	struct pollfd	pfd = { app->fcgi_fd, POLLRDHUP, 0 };

	return poll(&pfd, 1, 0) == 1 &&
	    (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

int
app_abandoned(struct app *app, struct resp *rs, const char *what)
{
	if (!app_client_gone(app))
		return 0;
	log_warn("%s: nginx gave up on the request while it waited: dropped "
	    "before calling WeChat", what);
	resp_error(rs, API_UNAVAILABLE, "the request was abandoned");
	return -1;
}

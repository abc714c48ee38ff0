/*
 * wxappctl check: is this installation ready to serve?  Checks the
 * configuration and its secrets, PostgreSQL, the schema, Redis, and that
 * the WeChat API's host name resolves, printing one line per check.
 */
#include <sys/socket.h>

#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "cache.h"
#include "ctl.h"
#include "migrate.h"

/* The host of an http(s)://host[:port]/... URL resolves; 0 or -1. */
static int
url_resolves(const char *url, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res = NULL;
	const char	*p;
	char		 host[256];
	size_t		 n;
	int		 rc;

	if ((p = strstr(url, "://")) == NULL) {
		snprintf(err, errlen, "%s is not an http(s) URL", url);
		return -1;
	}
	p += 3;
	n = strcspn(p, ":/");
	if (n == 0 || n >= sizeof(host)) {
		snprintf(err, errlen, "%s has no host", url);
		return -1;
	}
	memcpy(host, p, n);
	host[n] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	freeaddrinfo(res);
	return 0;
}

int
ctl_check(struct ctl *ctl, int argc, char **argv)
{
	struct cache	cc;
	char		err[1024];
	int		rc = CTL_OK, pending;

	(void)argv;
	if (argc != 1) {
		return ctl_usage(ctl);
	}
	if (config_check_serving(&ctl->cfg, err, sizeof(err)) == -1) {
		ctl_err("config: %s", err);
		rc = CTL_FAIL;
	} else
		printf("config    ok (%s)\n", ctl->cfgpath);
	if (ctl_db(ctl, 0) != CTL_OK)
		rc = CTL_FAIL;
	else {
		printf("postgres  ok\n");
		pending = migrate_pending(db_conn(&ctl->db), ctl->cfg.sql_dir,
		    NULL, err, sizeof(err));
		if (pending < 0) {
			ctl_err("schema: %s", err);
			rc = CTL_FAIL;
		} else if (pending > 0) {
			ctl_err("schema: %d migration(s) pending: run "
			    "`wxappctl migrate`", pending);
			rc = CTL_FAIL;
		} else
			printf("schema    ok (current)\n");
	}
	ctl_redis(ctl, &cc);
	if (cache_connect(&cc) == -1 || cache_ping(&cc) != CACHE_OK) {
		ctl_err("redis: %s unavailable", ctl->cfg.redis_addr);
		rc = CTL_FAIL;
	} else
		printf("redis     ok\n");
	cache_close(&cc);
	if (url_resolves(ctl->cfg.wechat_api_base, err, sizeof(err)) == -1) {
		ctl_err("wechat: wechat_api_base: %s", err);
		rc = CTL_FAIL;
	} else
		printf("wechat    ok (%s resolves)\n", ctl->cfg.wechat_api_base);
	return rc;
}

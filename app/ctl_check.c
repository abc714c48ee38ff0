/*
 * wxappctl check: is this installation ready to serve?  Checks the
 * configuration (already loaded by now), PostgreSQL, the schema, and
 * Redis, printing one line per check.
 */
#include <stdio.h>

#include "cache.h"
#include "ctl.h"
#include "migrate.h"

int
ctl_check(struct ctl *ctl, int argc, char **argv)
{
	struct cache	cc;
	char		err[1024];
	int		rc = CTL_OK, pending;

	(void)argv;
	if (argc != 1) {
		ctl_err("usage: check");
		return CTL_USAGE;
	}
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
	cache_init(&cc, &ctl->cfg);
	if (cache_connect(&cc) == -1 || cache_ping(&cc) != CACHE_OK) {
		ctl_err("redis: %s unavailable", ctl->cfg.redis_addr);
		rc = CTL_FAIL;
	} else
		printf("redis     ok\n");
	cache_close(&cc);
	return rc;
}

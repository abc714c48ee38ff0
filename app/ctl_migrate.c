/*
 * wxappctl migrate [--status]: apply pending migrations, or list them.
 */
#include <getopt.h>
#include <stdio.h>

#include "ctl.h"
#include "migrate.h"

int
ctl_migrate(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "status", no_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 }
	};
	char	err[1024];
	int	ch, status = 0, n;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch != 's') {
			return ctl_usage(ctl);
		}
		status = 1;
	}
	if (optind != argc) {
		return ctl_usage(ctl);
	}
	if (ctl_db(ctl, 0) != CTL_OK)
		return CTL_FAIL;
	if (status) {
		if ((n = migrate_pending(db_conn(&ctl->db), ctl->cfg.sql_dir,
		    stdout, err, sizeof(err))) < 0) {
			ctl_err("migrate: %s", err);
			return CTL_FAIL;
		}
		printf("%d pending\n", n);
		return CTL_OK;
	}
	if ((n = migrate_apply(db_conn(&ctl->db), ctl->cfg.sql_dir, stdout,
	    err, sizeof(err))) < 0) {
		ctl_err("migrate: %s", err);
		return CTL_FAIL;
	}
	printf("%d applied\n", n);
	return CTL_OK;
}

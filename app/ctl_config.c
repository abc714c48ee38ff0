/*
 * wxappctl config [--keys]: the configuration in force (file plus
 * environment), secrets masked; --keys lists every key name.
 */
#include <getopt.h>
#include <stdio.h>

#include "ctl.h"

int
ctl_config(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "keys", no_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 }
	};
	int	ch, keys = 0;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch != 'k') {
			return ctl_usage(ctl);
		}
		keys = 1;
	}
	if (optind != argc) {
		return ctl_usage(ctl);
	}
	if (keys)
		config_list_keys(stdout);
	else
		config_dump(&ctl->cfg, stdout);
	return CTL_OK;
}

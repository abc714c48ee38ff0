/*
 * wxappctl cache flush [--collection NAME]: invalidate cached answers by
 * bumping collection versions (see lib/httpcache.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "ctl.h"
#include "httpcache.h"

int
ctl_cache(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "collection", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 }
	};
	struct cache	 cc;
	const char	*only = NULL;
	int		 ch, i, rc = CTL_OK, found = 0;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch != 'c') {
			return ctl_usage(ctl);
		}
		only = optarg;
	}
	if (optind != argc - 1 || strcmp(argv[optind], "flush") != 0) {
		return ctl_usage(ctl);
	}
	for (i = 0; only != NULL && app_collections[i] != NULL; i++)
		found |= strcmp(only, app_collections[i]) == 0;
	if (only != NULL && !found) {
		ctl_err("cache: unknown collection `%s`", only);
		return CTL_USAGE;
	}
	ctl_redis(ctl, &cc);
	if (cache_connect(&cc) == -1) {
		ctl_err("cache: redis %s unavailable", ctl->cfg.redis_addr);
		return CTL_FAIL;
	}
	for (i = 0; app_collections[i] != NULL; i++) {
		if (only != NULL && strcmp(only, app_collections[i]) != 0)
			continue;
		if (httpcache_bump(&cc, app_collections[i]) != CACHE_OK) {
			ctl_err("cache: cannot flush %s", app_collections[i]);
			rc = CTL_FAIL;
		} else
			printf("flushed %s\n", app_collections[i]);
	}
	cache_close(&cc);
	return rc;
}

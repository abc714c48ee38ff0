/*
 * wxappctl preload: warm the hot cache keys — the first preload_pages
 * pages of /api/v1/data/list, overall and per category — with entries
 * built by the same code the responders use.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "ctl.h"
#include "data.h"

/* Build and store one list page; 0 or -1 (reported). */
static int
preload_page(struct ctl *ctl, struct cache *cc, struct arena *a,
    const struct list_query *q)
{
	struct hc_entry	 e = { 0 };
	const char	*vkey;
	long long	 changed;

	if (httpcache_get(cc, a, app_collections[COLL_ITEMS],
	    data_list_key(a, q), &e, &vkey, &changed) == HC_UNAVAILABLE) {
		ctl_err("preload: redis unavailable");
		return -1;
	}
	if (data_build_items(&ctl->db, a, q, &e) != DB_OK) {
		ctl_err("preload: postgres: %s", ctl->db.errmsg);
		return -1;
	}
	if (changed > e.last_modified)
		e.last_modified = changed;
	if (httpcache_put(cc, a, vkey, &e, ctl->cfg.cache_ttl) != CACHE_OK) {
		ctl_err("preload: redis unavailable");
		return -1;
	}
	arena_reset(a);
	return 0;
}

int
ctl_preload(struct ctl *ctl, int argc, char **argv)
{
	struct cache		 cc;
	struct arena		 a;
	struct list_query	 q;
	PGresult		*res = NULL;
	int			 rc = CTL_FAIL, i, ncat, n = 0;
	long long		 page;

	(void)argv;
	if (argc != 1) {
		return ctl_usage(ctl);
	}
	if (ctl_db(ctl, 1) != CTL_OK)
		return CTL_FAIL;
	ctl_redis(ctl, &cc);
	arena_init(&a, 64 * 1024, 2);
	if (cache_connect(&cc) == -1) {
		ctl_err("preload: redis %s unavailable", ctl->cfg.redis_addr);
		goto done;
	}
	if (db_exec(&ctl->db, STMT_CATEGORIES, NULL, &res) != DB_OK) {
		ctl_err("preload: postgres: %s", ctl->db.errmsg);
		goto done;
	}
	ncat = PQntuples(res);
	for (i = -1; i < ncat; i++) {
		for (page = 1; page <= ctl->cfg.preload_pages; page++) {
			memset(&q, 0, sizeof(q));
			q.category = i < 0 ? NULL : PQgetvalue(res, i, ONLY_COL);
			q.page = page;
			q.page_size = ctl->cfg.preload_page_size;
			data_list_counts(&q, &cc, app_collections[COLL_ITEMS],
			    ctl->cfg.cache_ttl);
			if (preload_page(ctl, &cc, &a, &q) == -1)
				goto done;
			n++;
		}
	}
	printf("preloaded %d pages (%d categories)\n", n, ncat);
	rc = CTL_OK;
done:
	PQclear(res);
	arena_free(&a);
	cache_close(&cc);
	return rc;
}

/*
 * wxappctl moderation list [--json] | approve ID | reject ID: what waits
 * for content security's verdict (app/moderation.c), and a moderator's.
 */
#include <getopt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "ctl.h"
#include "util.h"

/* list: one line each, or the JSON of GET /api/v1/moderation. */
static int
mod_list(struct ctl *ctl, int json)
{
	const char	*params[1] = { "1000" };
	PGresult	*res;
	struct arena	 a;
	struct buf	 b;
	int		 i;

	if (db_exec(&ctl->db, STMT_MOD_PENDING, params, &res) != DB_OK) {
		ctl_err("moderation: %s", ctl->db.errmsg);
		return CTL_FAIL;
	}
	if (json) {
		arena_init(&a, 16384, 1);
		buf_init(&b, &a, 4096);
		moderation_json(&b, res);
		printf("%s\n", buf_cstr(&b));
		arena_free(&a);
	}
	for (i = 0; !json && i < PQntuples(res); i++)
		printf("%s %s%s %s %s %s\n", PQgetvalue(res, i, MDC_ID),
		    PQgetisnull(res, i, MDC_ITEM) ? "user " : "item ",
		    PQgetisnull(res, i, MDC_ITEM) ?
		    PQgetvalue(res, i, MDC_USER) : PQgetvalue(res, i, MDC_ITEM),
		    PQgetvalue(res, i, MDC_FIELD),
		    PQgetvalue(res, i, MDC_REASON),
		    PQgetvalue(res, i, MDC_CONTENT));
	PQclear(res);
	return CTL_OK;
}

int
ctl_moderation(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	struct moderation_outcome	 o;
	struct cache			 cc;
	struct arena			 a;
	struct passwd			*pw;
	const char			*why, *by;
	long long			 id;
	int				 ch, json = 0, rc;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch != 'j')
			return ctl_usage(ctl);
		json = 1;
	}
	if (optind == argc)
		return ctl_usage(ctl);
	if (strcmp(argv[optind], "list") == 0) {
		if (optind + 1 != argc)
			return ctl_usage(ctl);
		if (ctl_db(ctl, 1) != CTL_OK)
			return CTL_FAIL;
		return mod_list(ctl, json);
	}
	if (json || optind + 2 != argc || (strcmp(argv[optind], "approve") != 0 &&
	    strcmp(argv[optind], "reject") != 0))
		return ctl_usage(ctl);
	if (util_strtonum(argv[optind + 1], 1, LLONG_MAX, &id, &why) == -1) {
		ctl_err("moderation: ID %s: %s", argv[optind + 1], why);
		return CTL_USAGE;
	}
	if (ctl_db(ctl, 1) != CTL_OK)
		return CTL_FAIL;
	ctl_redis(ctl, &cc);
	(void)cache_connect(&cc);
	arena_init(&a, 4096, 1);
	o.a = &a;
	pw = getpwuid(getuid());
	by = arena_printf(&a, "wxappctl:%s", pw != NULL ? pw->pw_name : "?");
	switch (moderation_decide(&ctl->db, &cc, NULL, id,
	    strcmp(argv[optind], "approve") == 0, by, &o)) {
	case MODERATION_OK:
		printf("moderation %lld: %s", id, strcmp(argv[optind],
		    "approve") == 0 ? "approved" : "rejected");
		if (o.item_status != NULL)
			printf(", item %lld %s", o.item_id, o.item_status);
		else if (o.renamed)
			printf(", user %lld renamed", o.user_id);
		printf("\n");
		rc = CTL_OK;
		break;
	case MODERATION_NONE:
		ctl_err("moderation: nothing waits as %lld", id);
		rc = CTL_FAIL;
		break;
	default:
		ctl_err("moderation: %s", ctl->db.errmsg);
		rc = CTL_FAIL;
		break;
	}
	arena_free(&a);
	cache_close(&cc);
	return rc;
}

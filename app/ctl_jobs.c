/*
 * wxappctl jobs [--json] | jobs dead [--limit N] | jobs retry ID|--all |
 * jobs purge: the job queue (lib/job) as an operator sees it.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "ctl.h"
#include "util.h"

#define DEAD_LIMIT	100

/* jobs [--json]: the figures. */
static int
jobs_show(struct ctl *ctl, struct cache *cc, int json)
{
	struct job_stats	 s;
	struct arena		 a;
	struct buf		 b;
	PGresult		*res;
	int			 i;

	if (json) {
		arena_init(&a, 4096, 1);
		buf_init(&b, &a, 512);
		(void)ctl_db(ctl, 1);
		app_jobs_json(&b, cc, &ctl->db);
		printf("%s\n", buf_cstr(&b));
		i = strstr(b.p, "\"available\":true") != NULL ? CTL_OK :
		    CTL_FAIL;
		arena_free(&a);
		return i;
	}
	if (job_stats(cc, &s) != CACHE_OK) {
		ctl_err("jobs: redis %s unavailable: %s", ctl->cfg.redis_addr,
		    cc->errmsg);
		return CTL_FAIL;
	}
	printf("queued    %lld (oldest %lld ms)\n", s.queued, s.oldest_ms);
	printf("pending   %lld\n", s.pending);
	for (i = 0; i < s.consumers; i++)
		printf("  %-24s %lld\n", s.consumer[i].name,
		    s.consumer[i].pending);
	printf("retrying  %lld\n", s.retrying);
	printf("dead      %lld\n", s.dead);
	if (ctl_db(ctl, 1) == CTL_OK &&
	    db_exec(&ctl->db, STMT_OUTBOX_COUNT, NULL, &res) == DB_OK) {
		printf("outbox    %s\n", PQgetvalue(res, 0, ONLY_COL));
		PQclear(res);
	} else
		printf("outbox    unknown (postgres unavailable)\n");
	return CTL_OK;
}

/* jobs dead: the oldest dead letters, one per line. */
static int
jobs_dead(struct cache *cc, long long limit)
{
	struct arena	 a;
	struct job	*d;
	char		 when[40];
	int		 i, n;

	arena_init(&a, 16384, 1);
	d = arena_calloc(&a, (size_t)limit, sizeof(*d));
	if (job_dead_list(cc, &a, d, (int)limit, &n) != CACHE_OK) {
		ctl_err("jobs dead: %s", cc->errmsg);
		arena_free(&a);
		return CTL_FAIL;
	}
	for (i = 0; i < n; i++) {
		if (util_rfc3339(d[i].at_ms * 1000, when, sizeof(when)) == -1)
			strcpy(when, "-");
		printf("%s %s %s attempts=%lld error=%s\n", d[i].id, d[i].type,
		    when, d[i].attempt, d[i].error);
	}
	arena_free(&a);
	return CTL_OK;
}

int
ctl_jobs(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "limit", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 }
	};
	struct cache	 cc;
	const char	*sub = NULL, *why;
	long long	 limit = DEAD_LIMIT, removed;
	int		 ch, json = 0, all = 0, rc, moved;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j':
			json = 1;
			break;
		case 'a':
			all = 1;
			break;
		case 'l':
			if (util_strtonum(optarg, 1, 100000, &limit, &why) == -1) {
				ctl_err("jobs: --limit %s: %s", optarg, why);
				return CTL_USAGE;
			}
			break;
		default:
			return ctl_usage(ctl);
		}
	}
	if (optind < argc)
		sub = argv[optind++];
	/* What each form takes, and nothing else. */
	if ((sub == NULL && (all || limit != DEAD_LIMIT || optind != argc)) ||
	    (sub != NULL && strcmp(sub, "dead") == 0 &&
	    (json || all || optind != argc)) ||
	    (sub != NULL && strcmp(sub, "retry") == 0 &&
	    (json || limit != DEAD_LIMIT || all == (optind == argc - 1))) ||
	    (sub != NULL && strcmp(sub, "purge") == 0 &&
	    (json || all || limit != DEAD_LIMIT || optind != argc)) ||
	    (sub != NULL && strcmp(sub, "dead") != 0 &&
	    strcmp(sub, "retry") != 0 && strcmp(sub, "purge") != 0))
		return ctl_usage(ctl);
	ctl_redis(ctl, &cc);
	if (cache_connect(&cc) == -1) {
		ctl_err("jobs: redis %s unavailable", ctl->cfg.redis_addr);
		return CTL_FAIL;
	}
	rc = CTL_OK;
	if (sub == NULL)
		rc = jobs_show(ctl, &cc, json);
	else if (strcmp(sub, "dead") == 0)
		rc = jobs_dead(&cc, limit);
	else if (strcmp(sub, "retry") == 0) {
		if (job_dead_retry(&cc, all ? NULL : argv[optind], &moved) !=
		    CACHE_OK) {
			ctl_err("jobs retry: %s", cc.errmsg);
			rc = CTL_FAIL;
		} else if (moved == 0 && !all) {
			ctl_err("jobs retry: no dead job %s", argv[optind]);
			rc = CTL_FAIL;
		} else
			printf("%d jobs queued again\n", moved);
	} else {
		if (job_dead_purge(&cc, &removed) != CACHE_OK) {
			ctl_err("jobs purge: %s", cc.errmsg);
			rc = CTL_FAIL;
		} else
			printf("%lld dead jobs removed\n", removed);
	}
	cache_close(&cc);
	return rc;
}

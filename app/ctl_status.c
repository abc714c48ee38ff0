/*
 * wxappctl status [--json]: the pool's scoreboard from shared memory, as
 * PHP-FPM's status page shows it; --json prints what GET /status answers.
 * A pool with no responder running is reported stopped: exit status 3.
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "app.h"
#include "ctl.h"
#include "pool.h"
#include "util.h"

/* The human form: pool totals, then one line per responder. */
static void
status_text(const struct ctl *ctl, const struct pool *r)
{
	const struct scoreboard	*sb = &r->sb;
	const struct sb_slot	*s;
	char			 ts[40];
	int64_t			 now = util_mono_us();
	int			 i, busy, idle;

	scoreboard_count(sb, &busy, &idle);
	if (util_rfc3339(sb->start_wall_us, ts, sizeof(ts)) == -1)
		ts[0] = '\0';
	printf("pool:               %s\n", ctl->cfg.shm_name);
	printf("start time:         %s (%lld s ago)\n", ts,
	    (long long)((util_wall_us() - sb->start_wall_us) / 1000000));
	printf("accepted requests:  %llu\n", (unsigned long long)sb->accepted);
	printf("responders:         %d busy, %d idle (max busy %u)\n", busy,
	    idle, sb->max_busy);
	printf("slow requests:      %llu\n", (unsigned long long)sb->slow);
	printf("stale writes:       %llu\n",
	    (unsigned long long)sb->stale_writes);
	for (i = 0; i < DEP_COUNT; i++)
		printf("%-8s circuit:   %s (opened %llu times, %llu calls "
		    "rejected)\n", pool_dep_name(i),
		    breaker_state_name(r->breakers[i].state),
		    (unsigned long long)r->breakers[i].opened,
		    (unsigned long long)r->breakers[i].rejected);
	printf("\n");
	printf("%-8s %-5s %9s %10s %9s %9s %6s %9s  %s\n", "PID", "STATE",
	    "REQUESTS", "LOCALHITS", "LAST(us)", "RSS(KiB)", "CONNS",
	    "ACCEPTED", "CURRENT");
	for (i = 0; i < SB_SLOTS; i++) {
		s = &sb->slots[i];
		if (!scoreboard_live(s))
			continue;
		printf("%-8d %-5s %9llu %9llu %10lld %9llu %6u %9llu  ",
		    (int)s->pid, s->state == SB_BUSY ? "busy" : "idle",
		    (unsigned long long)s->requests,
		    (unsigned long long)s->local_hits, (long long)s->last_us,
		    (unsigned long long)s->rss_kb, s->conns,
		    (unsigned long long)s->conns_accepted);
		if (s->state == SB_BUSY && s->in_flight > 1)
			printf("%.*s %.*s (%lld ms), %u in flight\n",
			    (int)sizeof(s->method), s->method,
			    (int)sizeof(s->path), s->path,
			    (long long)((now - s->started_us) / 1000),
			    s->in_flight);
		else if (s->state == SB_BUSY)
			printf("%.*s %.*s (%lld ms)\n", (int)sizeof(s->method),
			    s->method, (int)sizeof(s->path), s->path,
			    (long long)((now - s->started_us) / 1000));
		else
			printf("-\n");
	}
}

int
ctl_status(struct ctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	struct shm		 shm;
	struct cache		 cc;
	const struct pool	*r;
	struct arena		 a;
	struct buf		 b;
	int			 ch, json = 0, busy, idle;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (ch != 'j') {
			return ctl_usage(ctl);
		}
		json = 1;
	}
	if (optind != argc) {
		return ctl_usage(ctl);
	}
	if (shm_peek(&shm, ctl->cfg.shm_name, &pool_layout) == -1) {
		printf("pool: %s: stopped (no pool has run on this host since "
		    "it started)\n", ctl->cfg.shm_name);
		return CTL_STOPPED;
	}
	r = shm.data;
	/* The segment outlives the pool: no live responder means stopped. */
	scoreboard_count(&r->sb, &busy, &idle);
	if (busy + idle == 0 && !json) {
		printf("pool: %s: stopped (no responder runs)\n",
		    ctl->cfg.shm_name);
		shm_detach(&shm);
		return CTL_STOPPED;
	}
	if (json) {
		arena_init(&a, 64 * 1024, 1);
		buf_init(&b, &a, 4096);
		ctl_redis(ctl, &cc);
		(void)cache_connect(&cc);
		(void)ctl_db(ctl, 1);	/* the outbox's count, or null */
		app_status_json(&b, r, &cc, &ctl->db);
		cache_close(&cc);
		printf("%s\n", buf_cstr(&b));
		arena_free(&a);
	} else
		status_text(ctl, r);
	shm_detach(&shm);
	return busy + idle == 0 ? CTL_STOPPED : CTL_OK;
}

/*
 * job: durable background jobs in Redis Streams.  Owns the job record
 * (type, JSON payload, idempotency key, attempt, stable id), enqueuing
 * with de-duplication by key, taking jobs through one consumer group,
 * taking over the jobs of a consumer that died (XAUTOCLAIM), the end of a
 * job (done, retried after an exponential backoff with jitter, or dead),
 * the sorted set where retries wait, the dead-letter stream, and the
 * figures an operator reads.
 *
 * A job is run at least once: it is acknowledged only after its work is
 * done, so a consumer that dies mid-job leaves it pending for another to
 * claim.  Exactly once *in effect* is the job handler's part: it records
 * what it did (in PostgreSQL) and looks there before doing it again.
 *
 * Every change of a job's place (stream, retry set, dead letters) is one
 * Lua script, so Redis never holds a job twice or loses one between two
 * commands.  Redis must persist (appendonly) for jobs to survive its
 * restart.
 */
#ifndef WX_JOB_H
#define WX_JOB_H

#include <stdint.h>

#include "arena.h"
#include "cache.h"

#define JOB_ID_LEN	32	/* hex characters of a job id */
#define JOB_GROUP	"workers"	/* the consumer group */

struct job_opts {
	long long	 claim_idle_ms;	/* a pending job is taken over after */
	long long	 retry_base_ms;	/* the first retry's delay */
	long long	 retry_max;	/* runs in all before the job is dead */
	long long	 dedup_ttl_s;	/* an idempotency key is remembered */
};

struct job {
	char		 entry[48];	/* its stream entry, to acknowledge */
	const char	*id;		/* stable across retries */
	const char	*type;
	const char	*payload;	/* JSON text */
	const char	*key;		/* idempotency key, "" for none */
	long long	 attempt;	/* 0 on the first run */
	const char	*error;		/* of the last failed run, or "" */
	const char	*trace;		/* traceparent of who enqueued it */
	const char	*tracestate;	/* and the tracestate it had ("" none) */
	long long	 at_ms;		/* when it entered its stream */
};

/* A new random job id: JOB_ID_LEN hex characters; 0 or -1. */
int	job_new_id(char id[JOB_ID_LEN + 1]);
/*
 * Enqueue j (id, type, payload, key; attempt 0) to run from not_before_ms
 * on (0: now), in one round trip.  When j->key was enqueued within
 * dedup_ttl_s, nothing is and *dup is set: j->id is then that job's id.
 */
enum cache_status job_enqueue(struct cache *, const struct job_opts *,
	    struct arena *, struct job *, long long not_before_ms, int *dup);
/* Create the stream and its consumer group, when missing. */
enum cache_status job_setup(struct cache *);
/*
 * Up to max new jobs for consumer, waiting up to block_ms (0: not at
 * all) for one; *n taken.  With mine set, instead the jobs that consumer
 * took and never finished: a worker started again under its name takes
 * back at once what it held when it died.  Recreates a group that Redis
 * lost.
 */
enum cache_status job_take(struct cache *, struct arena *,
	    const char *consumer, int mine, long long block_ms, struct job *,
	    int max, int *n);
/*
 * Up to max jobs that another consumer took more than claim_idle_ms ago
 * and never finished; *cursor (start at "0-0") carries the scan on.
 */
enum cache_status job_claim(struct cache *, const struct job_opts *,
	    struct arena *, const char *consumer, char cursor[48],
	    struct job *, int max, int *n);
/* The job is done: gone from the stream. */
enum cache_status job_done(struct cache *, const struct job *);
/*
 * The run failed with error: the job waits in the retry set for its next
 * run, or, when permanent or out of runs, goes to the dead letters
 * (*dead set).
 */
enum cache_status job_fail(struct cache *, const struct job_opts *,
	    const struct job *, const char *error, int permanent, int *dead);
/* Retries that are due back into the stream; *moved of them. */
enum cache_status job_promote(struct cache *, int *moved);
/*
 * The delay before run attempt + 1 (attempt 0 failed first): base
 * doubled per attempt, capped at 2^16 base, then a random share of its
 * upper half dropped ("equal jitter"), from rnd.
 */
long long job_backoff_ms(long long base_ms, long long attempt, uint32_t rnd);

#define JOB_STATS_CONSUMERS	16
struct job_stats {
	long long	 queued;	/* in the stream, taken or not */
	long long	 pending;	/* taken, not finished */
	long long	 retrying;	/* waiting for their next run */
	long long	 dead;
	long long	 oldest_ms;	/* age of the oldest queued, or 0 */
	int		 consumers;	/* with jobs pending */
	struct {
		char		 name[64];
		long long	 pending;
	}		 consumer[JOB_STATS_CONSUMERS];
};
enum cache_status job_stats(struct cache *, struct job_stats *);
/* The oldest max dead letters; *n of them. */
enum cache_status job_dead_list(struct cache *, struct arena *, struct job *,
	    int max, int *n);
/* Dead letters back into the stream with attempt 0: the one of id, or all
 * (id NULL); *moved of them. */
enum cache_status job_dead_retry(struct cache *, const char *id, int *moved);
/* Remove every dead letter; *removed of them. */
enum cache_status job_dead_purge(struct cache *, long long *removed);

#endif

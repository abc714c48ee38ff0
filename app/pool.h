/*
 * pool: what the responders of a host share, in the shared memory named
 * by shm_name (lib/shm): the circuit breakers of the dependencies, the
 * scoreboard, the write counters of the cached collections and the
 * rate-limit leases.  Read by wxappctl status too.
 */
#ifndef WX_POOL_H
#define WX_POOL_H

#include <stdint.h>

#include "arena.h"
#include "breaker.h"
#include "guard.h"
#include "metrics.h"
#include "ratelimit.h"
#include "scoreboard.h"
#include "shm.h"

/* The dependencies, each behind a breaker of the pool. */
enum pool_dep {
	DEP_POSTGRES,
	DEP_REDIS,
	DEP_WECHAT,
	DEP_COUNT
};

#define POOL_COLLECTIONS	4	/* >= the collections app caches */
#define POOL_ROUTES		48	/* >= the routes, + 1 for none */
#define POOL_CODES		19	/* the statuses counted by name, + other */
#define POOL_RATE_CLASSES	4	/* >= the rate-limit classes */

/* How a cached read was answered. */
enum pool_lookup {
	LOOKUP_NEAR,		/* the responder's own copy */
	LOOKUP_REDIS,
	LOOKUP_MISS,		/* built, then stored */
	LOOKUP_UNAVAILABLE,	/* Redis down: built, not stored */
	LOOKUP_COUNT
};

/* Why spans were dropped (lib/span, wxapp-otlp). */
enum pool_span_drop {
	SPANS_HANDOVER,		/* a responder or the worker could not hand
				   them over */
	SPANS_QUEUE,		/* wxapp-otlp's queue was full */
	SPANS_EXPORT,		/* the collector refused or did not answer */
	SPANS_CAP,		/* beyond SPAN_MAX in one request or job run */
	SPANS_DROP_COUNT
};

/*
 * The figures GET /metrics shows (Prometheus), counted by every responder
 * with relaxed atomics, no lock: see lib/metrics.
 */
struct pool_metrics {
	_Atomic uint64_t	requests[POOL_ROUTES][POOL_CODES];
	struct metrics_hist	duration[POOL_ROUTES];
	_Atomic uint64_t	lookups[LOOKUP_COUNT];
	_Atomic uint64_t	rejected[POOL_RATE_CLASSES];
	_Atomic uint64_t	restarts;	/* responders that started again */
	struct guard_stats	deps[DEP_COUNT];
	_Atomic uint64_t	spans_dropped[SPANS_DROP_COUNT];
	_Atomic uint64_t	spans_exported;
};

struct pool {
	struct breaker		breakers[DEP_COUNT];
	struct scoreboard	sb;
	/*
	 * Writes per cached collection on this host, bumped without the lock
	 * (atomics) after a write has invalidated Redis: see nearcache.
	 */
	uint64_t		changes[POOL_COLLECTIONS];
	/* Rate-limit requests already paid for in Redis (under the lock). */
	struct rl_lease		leases[RATELIMIT_LEASE_SLOTS];
	struct pool_metrics	metrics;
};

/* Its layout, for shm_attach: bump the version with every change. */
extern const struct shm_layout pool_layout;

/*
 * The host's copies of cached answers (lib/nearcache) have a segment of
 * their own, sized by cache_local_bytes, named shm_name + this.
 */
#define POOL_NEAR_SUFFIX	".near"

/* Attach to (or create) that segment; 0, or -1 with errno. */
int	pool_near_attach(struct shm *, const char *shm_name, size_t bytes);

/* "handover", "queue", "export", "cap". */
const char *pool_span_drop_name(enum pool_span_drop);
/* "postgres", "redis", "wechat". */
const char *pool_dep_name(enum pool_dep);
/* The pool's status as JSON: the scoreboard and the breakers. */
void	pool_status_json(const struct pool *, struct buf *);
/* The index of an HTTP status in pool_metrics.requests (last: other). */
int	pool_code_index(int status);
/* The HTTP status of an index, 0 for other. */
int	pool_code_of(int index);

#endif

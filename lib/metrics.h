/*
 * metrics: counters and latency histograms that many processes update at
 * once, and their Prometheus text exposition (format 0.0.4).
 *
 * The figures are plain structs meant to live in memory the processes of
 * a pool share (lib/shm): every update is one relaxed atomic add, never a
 * lock, so a request pays a few nanoseconds for them and a process that
 * dies loses nothing it already counted.  The program decides which
 * series exist (their names and labels); this module gives the storage
 * and writes the text.
 *
 * Histograms have fixed buckets, 0.5 ms to 10 s, so that every process
 * and every scrape agree on them without coordination.
 */
#ifndef WX_METRICS_H
#define WX_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "arena.h"

#define METRICS_BUCKETS	15	/* upper bounds; +Inf is the count */

struct metrics_hist {
	_Atomic uint64_t	bucket[METRICS_BUCKETS];	/* not cumulative */
	_Atomic uint64_t	count;
	_Atomic uint64_t	sum_us;
};

/* The buckets' upper bounds in microseconds (0.5 ms ... 10 s). */
extern const int64_t	metrics_bounds_us[METRICS_BUCKETS];

/* Add n to a counter. */
static inline void
metrics_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* Record one observation of us microseconds (negative counts as 0). */
void	metrics_observe(struct metrics_hist *, int64_t us);

/* "# HELP name help" and "# TYPE name type" lines. */
void	metrics_family(struct buf *, const char *name, const char *type,
	    const char *help);
/*
 * One sample: name{labels} value.  labels is the inside of the braces,
 * already escaped (see metrics_label), or NULL/"" for none.
 */
void	metrics_sample(struct buf *, const char *name, const char *labels,
	    uint64_t value);
/* The same with a value that is not a whole number. */
void	metrics_sample_f(struct buf *, const char *name, const char *labels,
	    double value);
/*
 * A histogram's samples, name_bucket{labels,le="..."}, name_sum (in
 * seconds) and name_count, from one consistent enough read of h.
 */
void	metrics_hist_samples(struct buf *, const char *name, const char *labels,
	    const struct metrics_hist *);
/* Append key="value" to a label list, escaping \, " and newlines. */
void	metrics_label(struct buf *, const char *key, const char *value);

#endif

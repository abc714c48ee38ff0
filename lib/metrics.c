/*
 * metrics: shared counters and histograms, Prometheus text (metrics.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"

const int64_t metrics_bounds_us[METRICS_BUCKETS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 7500000, 10000000
};

void
metrics_observe(struct metrics_hist *h, int64_t us)
{
	int	i;

	if (us < 0)
		us = 0;
	for (i = 0; i < METRICS_BUCKETS; i++)
		if (us <= metrics_bounds_us[i]) {
			metrics_add(&h->bucket[i], 1);
			break;
		}
	metrics_add(&h->count, 1);
	metrics_add(&h->sum_us, (uint64_t)us);
}

void
metrics_family(struct buf *b, const char *name, const char *type,
    const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name or name{labels}, with a trailing space. */
static void
series(struct buf *b, const char *name, const char *labels, const char *more)
{
	int	has = labels != NULL && *labels != '\0';

	buf_adds(b, name);
	if (has || more != NULL) {
		buf_addc(b, '{');
		if (has)
			buf_adds(b, labels);
		if (more != NULL) {
			if (has)
				buf_addc(b, ',');
			buf_adds(b, more);
		}
		buf_addc(b, '}');
	}
	buf_addc(b, ' ');
}

void
metrics_sample(struct buf *b, const char *name, const char *labels,
    uint64_t value)
{
	series(b, name, labels, NULL);
	buf_printf(b, "%" PRIu64 "\n", value);
}

void
metrics_sample_f(struct buf *b, const char *name, const char *labels,
    double value)
{
	series(b, name, labels, NULL);
	buf_printf(b, "%.17g\n", value);
}

void
metrics_hist_samples(struct buf *b, const char *name, const char *labels,
    const struct metrics_hist *h)
{
	char		 n[128], le[32];
	uint64_t	 cum = 0, count, sum;
	int		 i;

	/*
	 * Each field is read once; updates racing with the scrape may make
	 * count differ from the last bucket by a request or two, so the +Inf
	 * bucket is the cumulative count itself and _count never less.
	 */
	if ((size_t)snprintf(n, sizeof(n), "%s_bucket", name) >= sizeof(n))
		return;
	for (i = 0; i < METRICS_BUCKETS; i++) {
		cum += atomic_load_explicit(&h->bucket[i],
		    memory_order_relaxed);
		snprintf(le, sizeof(le), "le=\"%g\"",
		    (double)metrics_bounds_us[i] / 1e6);
		series(b, n, labels, le);
		buf_printf(b, "%" PRIu64 "\n", cum);
	}
	count = atomic_load_explicit(&h->count, memory_order_relaxed);
	if (count < cum)
		count = cum;
	sum = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
	series(b, n, labels, "le=\"+Inf\"");
	buf_printf(b, "%" PRIu64 "\n", count);
	if ((size_t)snprintf(n, sizeof(n), "%s_sum", name) < sizeof(n))
		metrics_sample_f(b, n, labels, (double)sum / 1e6);
	if ((size_t)snprintf(n, sizeof(n), "%s_count", name) < sizeof(n))
		metrics_sample(b, n, labels, count);
}

void
metrics_label(struct buf *b, const char *key, const char *value)
{
	const char	*p;

	if (b->len > 0)
		buf_addc(b, ',');
	buf_adds(b, key);
	buf_adds(b, "=\"");
	for (p = value; *p != '\0'; p++) {
		if (*p == '\\' || *p == '"')
			buf_addc(b, '\\');
		if (*p == '\n') {
			buf_adds(b, "\\n");
			continue;
		}
		buf_addc(b, *p);
	}
	buf_addc(b, '"');
}

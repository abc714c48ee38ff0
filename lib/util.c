/*
 * util: range-checked number parsing and clocks.
 */
#include <sys/random.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"

/* Parse all of s as a decimal integer in [min, max], like OpenBSD strtonum. */
int
util_strtonum(const char *s, long long min, long long max, long long *out,
    const char **errstr)
{
	char		*end;
	long long	 v;

	*errstr = NULL;
	if (s == NULL || *s == '\0') {
		*errstr = "is empty";
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end != '\0') {
		*errstr = "is not a number";
		return -1;
	}
	if ((errno == ERANGE && v == LLONG_MIN) || v < min) {
		*errstr = "is too small";
		return -1;
	}
	if ((errno == ERANGE && v == LLONG_MAX) || v > max) {
		*errstr = "is too large";
		return -1;
	}
	*out = v;
	return 0;
}

int64_t
util_mono_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
util_wall_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Format wall-clock microseconds as 2026-11-26T17:30:00.123Z. */
int
util_rfc3339(int64_t wall_us, char *dst, size_t len)
{
	struct tm	tm;
	time_t		t = (time_t)(wall_us / 1000000);
	char		base[32];
	int		n;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return -1;
	n = snprintf(dst, len, "%s.%03dZ", base, (int)(wall_us / 1000 % 1000));
	if (n < 0 || (size_t)n >= len)
		return -1;
	return 0;
}

/* Fill dst from getrandom(2), looping over short reads and EINTR. */
int
util_random(void *dst, size_t n)
{
	unsigned char	*p = dst;
	ssize_t		 r;

	while (n > 0) {
		r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * util: the few helpers every module needs and no module owns:
 * range-checked number parsing (strtonum-style) and clocks.
 */
#ifndef WX_UTIL_H
#define WX_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Parse all of s as a decimal integer in [min, max]; *errstr says why not. */
int	util_strtonum(const char *s, long long min, long long max, long long *out,
	    const char **errstr);
/* Monotonic microseconds, for durations. */
int64_t	util_mono_us(void);
/* Wall-clock microseconds since the epoch. */
int64_t	util_wall_us(void);
/* Format wall-clock us as RFC 3339 UTC with milliseconds; 0 or -1 on truncation. */
int	util_rfc3339(int64_t wall_us, char *dst, size_t len);
/* Fill dst with n bytes from the kernel's CSPRNG; 0 or -1. */
int	util_random(void *dst, size_t n);

#endif

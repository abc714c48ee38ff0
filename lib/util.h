/*
 * util: the few helpers every module needs and no module owns:
 * range-checked number parsing (strtonum-style), clocks and dates,
 * UTF-8 validation, randomness, and lists of network addresses.
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
/*
 * Wait until fd is ready for poll(2)'s events, at most until deadline
 * (monotonic us), through EINTR: 1 ready, 0 the deadline passed, -1 failed.
 */
int	util_poll(int fd, short events, int64_t deadline);
/* FNV-1a (64 bits) of n bytes, continuing from h (UTIL_FNV_INIT to start). */
#define UTIL_FNV_INIT	0xcbf29ce484222325ULL
uint64_t util_fnv1a(uint64_t h, const void *p, size_t n);
/* Wall-clock microseconds since the epoch. */
int64_t	util_wall_us(void);
/* Format wall-clock us as RFC 3339 UTC with milliseconds; 0 or -1 on truncation. */
int	util_rfc3339(int64_t wall_us, char *dst, size_t len);
/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
size_t	util_utf8_seq(const unsigned char *s, size_t n);
/*
 * Bytes of the first `chars` code points of s[0..n) (all of it when
 * shorter), never cutting a sequence; stops at invalid UTF-8.
 */
size_t	util_utf8_prefix(const char *s, size_t n, size_t chars);
/* Code points in s[0..n) when it is valid UTF-8, else -1. */
long	util_utf8_len(const char *s, size_t n);
/* Format unix seconds as an HTTP-date (IMF-fixdate); 0 or -1. */
int	util_http_date(long long t, char *dst, size_t len);
/* Parse an HTTP-date (IMF-fixdate); unix seconds or -1. */
long long util_parse_http_date(const char *s);
/* Fill dst with n bytes from the kernel's CSPRNG; 0 or -1. */
int	util_random(void *dst, size_t n);
/*
 * Is list a list of addresses and CIDR prefixes, IPv4 or IPv6, separated
 * by commas (blanks around them ignored; an empty list is one): "10.0.0.5,
 * 192.0.2.0/24, 2001:db8::/32"?  0, or -1 with err naming the bad item.
 */
int	util_cidr_check(const char *list, char *err, size_t errlen);
/*
 * The next item of the comma-separated list at *list, without the blanks
 * around it (empty items skipped): 1 with *item and *len, 0 at its end.
 */
int	util_list_next(const char **list, const char **item, size_t *len);
/*
 * Is the address addr (text, as a peer's address is written) in such a
 * list?  An IPv4-mapped IPv6 address is its IPv4 address.  1 yes; 0 no,
 * or addr is no address; -1 when the list is invalid.
 */
int	util_cidr_match(const char *list, const char *addr);

#endif

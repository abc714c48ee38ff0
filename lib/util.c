/*
 * util: range-checked number parsing and clocks.
 */
#include <sys/types.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <poll.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/*
 * Parse all of s as a decimal integer in [min, max], like OpenBSD strtonum,
 * but only digits after an optional '-'.
 */
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
	/* strtoll would also take leading blanks and a '+': no one writes them. */
	if (!isdigit((unsigned char)s[0]) &&
	    !(s[0] == '-' && isdigit((unsigned char)s[1]))) {
		*errstr = "is not a number";
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

int
util_poll(int fd, short events, int64_t deadline)
{
	struct pollfd	pfd = { .fd = fd, .events = events };
	int64_t		left;
	int		n;

	for (;;) {
		if ((left = deadline - util_mono_us()) <= 0)
			return 0;
		n = poll(&pfd, 1, (int)(left > 60000000 ? 60000 :
		    (left + 999) / 1000));
		if (n > 0)
			return 1;
		if (n == -1 && errno != EINTR)
			return -1;
	}
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

size_t
util_utf8_seq(const unsigned char *s, size_t n)
{
	size_t		len, i;
	uint32_t	cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

long
util_utf8_len(const char *s, size_t n)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, seq;
	long			 count = 0;

	while (i < n) {
		if ((seq = util_utf8_seq(p + i, n - i)) == 0)
			return -1;
		i += seq;
		count++;
	}
	return count;
}

int
util_http_date(long long t, char *dst, size_t len)
{
	struct tm	tm;
	time_t		tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(dst, len, "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
		return -1;
	return 0;
}

long long
util_parse_http_date(const char *s)
{
	struct tm	 tm;
	const char	*end;

	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm)) == NULL ||
	    *end != '\0')
		return -1;
	return (long long)timegm(&tm);
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

uint64_t
util_fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char	*c = p;
	size_t			 i;

	for (i = 0; i < n; i++) {
		h ^= c[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

size_t
util_utf8_prefix(const char *s, size_t n, size_t chars)
{
	size_t	k = 0, seq;

	while (chars-- > 0 && k < n &&
	    (seq = util_utf8_seq((const unsigned char *)s + k, n - k)) > 0)
		k += seq;
	return k;
}

/* An address, or a prefix of one. */
struct cidr {
	int		af;		/* AF_INET or AF_INET6 */
	unsigned char	a[16];
	int		bits;		/* of the prefix: 0..32 or 0..128 */
};

/*
 * The address (prefix: or CIDR prefix, "a/bits") of the n characters at
 * s into c, an IPv4-mapped IPv6 address as its IPv4 one; 0 or -1.
 */
static int
cidr_parse(const char *s, size_t n, int prefix, struct cidr *c)
{
	static const unsigned char	 mapped[12] = {
		[10] = 0xff, [11] = 0xff
	};
	char				 buf[INET6_ADDRSTRLEN + 8], *slash;
	const char			*why;
	long long			 bits;
	int				 max;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if ((slash = strchr(buf, '/')) != NULL) {
		if (!prefix)
			return -1;
		*slash++ = '\0';
	}
	memset(c->a, 0, sizeof(c->a));
	if (inet_pton(AF_INET, buf, c->a) == 1) {
		c->af = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->a) == 1) {
		c->af = AF_INET6;
		max = 128;
	} else
		return -1;
	if (slash == NULL)
		bits = max;
	else if (util_strtonum(slash, 0, max, &bits, &why) == -1)
		return -1;
	c->bits = (int)bits;
	if (c->af == AF_INET6 && c->bits >= 96 &&
	    memcmp(c->a, mapped, sizeof(mapped)) == 0) {
		memmove(c->a, c->a + 12, 4);
		memset(c->a + 4, 0, 12);
		c->af = AF_INET;
		c->bits -= 96;
	}
	return 0;
}

/* Is the address a within the prefix p? */
static int
cidr_in(const struct cidr *p, const struct cidr *a)
{
	int	full = p->bits / 8, rest = p->bits % 8;

	if (p->af != a->af || memcmp(p->a, a->a, (size_t)full) != 0)
		return 0;
	return rest == 0 || ((p->a[full] ^ a->a[full]) &
	    (0xff << (8 - rest)) & 0xff) == 0;
}

int
util_list_next(const char **list, const char **item, size_t *len)
{
	const char	*s, *e;

	while ((s = *list) != NULL) {
		if ((e = strchr(s, ',')) != NULL)
			*list = e + 1;
		else {
			e = s + strlen(s);
			*list = NULL;
		}
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (s != e) {
			*item = s;
			*len = (size_t)(e - s);
			return 1;
		}
	}
	return 0;
}

/*
 * Walk list: each item parsed, and matched against a when a is not NULL.
 * 1 when one matched, 0 when none did, -1 when an item is bad (the first
 * is named in err when err is not NULL).
 */
static int
cidr_walk(const char *list, const struct cidr *a, char *err, size_t errlen)
{
	struct cidr	 c;
	const char	*s;
	size_t		 n;
	int		 found = 0;

	while (util_list_next(&list, &s, &n)) {
		if (cidr_parse(s, n, 1, &c) == -1) {
			if (err != NULL)
				snprintf(err, errlen, "\"%.*s\" is not an "
				    "address or a CIDR prefix (a/bits)",
				    (int)(n < 64 ? n : 64), s);
			return -1;
		}
		found |= a != NULL && cidr_in(&c, a);
	}
	return found;
}

int
util_cidr_check(const char *list, char *err, size_t errlen)
{
	return cidr_walk(list, NULL, err, errlen) == -1 ? -1 : 0;
}

int
util_cidr_match(const char *list, const char *addr)
{
	struct cidr	a;

	if (addr == NULL || cidr_parse(addr, strlen(addr), 0, &a) == -1)
		return cidr_walk(list, NULL, NULL, 0);
	return cidr_walk(list, &a, NULL, 0);
}

/*
 * trace: W3C Trace Context (see trace.h).
 */
#include <sys/types.h>

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "trace.h"
#include "util.h"

/* n lower-case hex digits, not all zero? */
static int
hex_id(const char *s, size_t n)
{
	size_t	i;
	int	nonzero = 0;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' &&
		    s[i] <= 'f')))
			return 0;
		nonzero |= s[i] != '0';
	}
	return nonzero;
}

/* The value of a lower-case hex digit (already checked). */
static unsigned
hexval(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'a' + 10);
}

/*
 * Ids come from a per-process xorshift128+ seeded from the kernel once
 * (again after a fork, which pthread_atfork tells us of: a getpid(2) per
 * id would be a system call, glibc caches no pid): unique and
 * unpredictable enough for trace ids, which are not secrets, without a
 * getrandom(2) on every request.
 */
static uint64_t	rng[2];
static int	rng_seeded, rng_hooked;

/* A forked child must not repeat its parent's ids. */
static void
rng_forked(void)
{
	rng_seeded = 0;
}

static int
rng_next(uint64_t *out)
{
	uint64_t	a, b;

	if (!rng_seeded) {
		if (!rng_hooked && pthread_atfork(NULL, NULL, rng_forked) != 0)
			return -1;
		rng_hooked = 1;
		if (util_random(rng, sizeof(rng)) == -1)
			return -1;
		rng[0] |= 1;	/* never all zero */
		rng_seeded = 1;
	}
	a = rng[0];
	b = rng[1];
	rng[0] = b;
	a ^= a << 23;
	rng[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
	*out = rng[1] + b;
	return 0;
}

/* n (8 or 16) random bytes as lower-case hex, not all zero; 0 or -1. */
static int
random_id(char *out, size_t n)
{
	unsigned char	r[16];
	uint64_t	v;
	size_t		i;

	do {
		for (i = 0; i < n; i += 8) {
			if (rng_next(&v) == -1) {
				out[0] = '\0';
				return -1;
			}
			memcpy(r + i, &v, 8);
		}
		crypto_hex(r, n, out);
	} while (!hex_id(out, 2 * n));
	return 0;
}

int
trace_parse(const char *tp, struct trace *t)
{
	size_t	len;
	unsigned flags;

	if (tp == NULL || (len = strlen(tp)) < TRACE_HEADER_LEN)
		return -1;
	/* Version 00 is exactly 55; a later one may add "-..." after. */
	if (!(hex_id(tp, 2) || (tp[0] == '0' && tp[1] == '0')) ||
	    strncmp(tp, "ff", 2) == 0 || (strncmp(tp, "00", 2) == 0 &&
	    len != TRACE_HEADER_LEN) || (len > TRACE_HEADER_LEN &&
	    tp[TRACE_HEADER_LEN] != '-') || tp[2] != '-' || tp[35] != '-' ||
	    tp[52] != '-' || !hex_id(tp + 3, 32) || !hex_id(tp + 36, 16))
		return -1;
	if (!((tp[53] >= '0' && tp[53] <= '9') || (tp[53] >= 'a' &&
	    tp[53] <= 'f')) || !((tp[54] >= '0' && tp[54] <= '9') ||
	    (tp[54] >= 'a' && tp[54] <= 'f')))
		return -1;
	flags = hexval(tp[54]);	/* "sampled" is the lowest bit */
	memcpy(t->trace_id, tp + 3, 32);
	t->trace_id[32] = '\0';
	memcpy(t->parent_id, tp + 36, 16);
	t->parent_id[16] = '\0';
	t->flags = flags & 0x01;	/* only "sampled" is defined */
	return 0;
}

int
trace_start(struct trace *t, const char *traceparent)
{
	t->state = NULL;
	if (trace_parse(traceparent, t) == -1) {
		t->parent_id[0] = '\0';
		t->flags = 0;
		if (random_id(t->trace_id, 16) == -1) {
			t->span_id[0] = '\0';
			return -1;
		}
	}
	return random_id(t->span_id, 8);
}

int
trace_child(const struct trace *t, struct trace *child)
{
	memcpy(child->trace_id, t->trace_id, sizeof(child->trace_id));
	memcpy(child->parent_id, t->span_id, sizeof(child->parent_id));
	child->flags = t->flags;
	child->state = t->state;
	return random_id(child->span_id, 8);
}

/* A character of a tracestate key after its first: lcalpha DIGIT _-*\/ */
static int
key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
	    c == '-' || c == '*' || c == '/';
}

/* n characters of key_char from s, the first of them a letter (or digit). */
static int
key_part(const char *s, size_t n, size_t max, int digit_first)
{
	size_t	i;

	if (n == 0 || n > max || !((s[0] >= 'a' && s[0] <= 'z') ||
	    (digit_first && s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (i = 1; i < n; i++)
		if (!key_char(s[i]))
			return 0;
	return 1;
}

/*
 * A list member's key: simple-key (a letter, then up to 255 of key_char)
 * or multi-tenant-key (tenant-id "@" system-id: a letter or digit then up
 * to 240, "@", a letter then up to 13).
 */
static int
state_key(const char *k, size_t n)
{
	const char	*at = memchr(k, '@', n);
	size_t		 t;

	if (at == NULL)
		return key_part(k, n, 256, 0);
	t = (size_t)(at - k);
	return key_part(k, t, 241, 1) && key_part(at + 1, n - t - 1, 14, 0);
}

/* A list member's value: 1 to 256 of 0x20-0x7e but ',' '=', no blank last. */
static int
state_value(const char *v, size_t n)
{
	size_t	i;

	if (n == 0 || n > 256 || v[n - 1] == ' ')
		return 0;
	for (i = 0; i < n; i++)
		if (v[i] < 0x20 || v[i] > 0x7e || v[i] == ',' || v[i] == '=')
			return 0;
	return 1;
}

int
trace_state_valid(const char *s)
{
	const char	*key[TRACE_STATE_MEMBERS], *m, *e, *eq;
	size_t		 keylen[TRACE_STATE_MEMBERS], len;
	int		 n = 0, i;

	if (s == NULL || strlen(s) > TRACE_STATE_MAX)
		return 0;
	/* OWS around a member; a member of OWS alone is empty. */
	while (util_list_next(&s, &m, &len)) {
		e = m + len;
		if (n == TRACE_STATE_MEMBERS ||
		    (eq = memchr(m, '=', (size_t)(e - m))) == NULL ||
		    !state_key(m, (size_t)(eq - m)) ||
		    !state_value(eq + 1, (size_t)(e - eq - 1)))
			return 0;
		for (i = 0; i < n; i++)
			if (keylen[i] == (size_t)(eq - m) &&
			    memcmp(key[i], m, keylen[i]) == 0)
				return 0;
		key[n] = m;
		keylen[n++] = (size_t)(eq - m);
	}
	return n > 0;
}

void
trace_set_state(struct trace *t, const char *s)
{
	t->state = t->parent_id[0] != '\0' && t->trace_id[0] != '\0' &&
	    trace_state_valid(s) ? s : NULL;
}

void
trace_sample(struct trace *t, double ratio)
{
	if (t->parent_id[0] == '\0')
		trace_sample_any(t, ratio);
}

void
trace_sample_any(struct trace *t, double ratio)
{
	uint64_t	r = 0;
	int		i;

	if (t->trace_id[0] == '\0')
		return;
	if (ratio <= 0 || ratio >= 1) {
		t->flags = (t->flags & ~0x01u) | (ratio >= 1 ? 0x01u : 0);
		return;
	}
	/*
	 * The last 14 hex digits (56 bits) are random in any trace id that
	 * follows W3C Trace Context level 2, ours included.  (By hand: this
	 * runs for every request, and sscanf costs a hundred times more.)
	 */
	for (i = 18; i < 32; i++)
		r = r << 4 | hexval(t->trace_id[i]);
	t->flags = (t->flags & ~0x01u) |
	    ((double)r < ratio * 72057594037927936.0 ? 0x01u : 0);
}

void
trace_header(const struct trace *t, char *out)
{
	static const char	hex[] = "0123456789abcdef";

	if (t->trace_id[0] == '\0' || t->span_id[0] == '\0') {
		out[0] = '\0';
		return;
	}
	/* Every answer carries one: built by hand, not by snprintf. */
	memcpy(out, "00-", 3);
	memcpy(out + 3, t->trace_id, 32);
	out[35] = '-';
	memcpy(out + 36, t->span_id, 16);
	out[52] = '-';
	out[53] = hex[(t->flags >> 4) & 0xf];
	out[54] = hex[t->flags & 0xf];
	out[55] = '\0';
}

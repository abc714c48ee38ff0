/*
 * arena: bump allocation from a list of blocks.  Reset rewinds every block
 * and keeps up to `keep` standard-sized blocks for the next request; an
 * oversized block (one huge body) is freed so a single request cannot pin
 * its memory for the life of the responder.
 *
 * Like redis' zmalloc, running out of memory aborts: a responder that
 * cannot allocate cannot answer either, and its supervisor starts a new
 * one.  This keeps every caller free of allocation-failure paths.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "util.h"

#define ARENA_ALIGN	16

struct arena_block {
	struct arena_block	*next;
	size_t			 size;
	size_t			 used;
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

static void
arena_oom(size_t n)
{
	char	msg[96];
	int	len;

	len = snprintf(msg, sizeof(msg),
	    "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n", n);
	if (len > 0 && (size_t)len < sizeof(msg))
		(void)!write(STDERR_FILENO, msg, (size_t)len);
	abort();
}

static struct arena_block *
arena_block_new(struct arena *a, size_t size)
{
	struct arena_block	*b;

	if ((b = malloc(sizeof(*b) + size)) == NULL)
		arena_oom(size);
	b->next = NULL;
	b->size = size;
	b->used = 0;
	a->mallocs++;
	return b;
}

void
arena_init(struct arena *a, size_t block_size, size_t keep)
{
	a->block_size = block_size;
	a->keep = keep > 0 ? keep : 1;
	a->mallocs = 0;
	a->first = a->cur = arena_block_new(a, block_size);
}

/* Rewind every block; free oversized blocks and those beyond `keep`. */
void
arena_reset(struct arena *a)
{
	struct arena_block	*b, *next, **link = &a->first;
	size_t			 kept = 0;

	for (b = a->first; b != NULL; b = next) {
		next = b->next;
		if (b->size != a->block_size || kept == a->keep) {
			*link = next;
			free(b);
			continue;
		}
		b->used = 0;
		kept++;
		link = &b->next;
	}
	if (a->first == NULL)
		a->first = arena_block_new(a, a->block_size);
	a->cur = a->first;
}

void
arena_free(struct arena *a)
{
	struct arena_block	*b, *next;

	for (b = a->first; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	a->first = a->cur = NULL;
}

/*
 * Allocate n bytes aligned to 16 from the current block, else from the next
 * retained one, else from a new block linked after the current one.  An
 * oversized request gets a block of its own and leaves `cur` where it was.
 */
void *
arena_alloc(struct arena *a, size_t n)
{
	struct arena_block	*b = a->cur;
	size_t			 need;

	need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (need < n)
		arena_oom(n);
	if (b->size - b->used < need) {
		if (b->next != NULL && b->next->size - b->next->used >= need)
			b = b->next;
		else {
			b = arena_block_new(a,
			    need > a->block_size ? need : a->block_size);
			b->next = a->cur->next;
			a->cur->next = b;
		}
		if (b->size == a->block_size)
			a->cur = b;
	}
	b->used += need;
	return b->data + b->used - need;
}

void *
arena_calloc(struct arena *a, size_t nmemb, size_t size)
{
	void	*p;

	if (size != 0 && nmemb > SIZE_MAX / size)
		arena_oom(SIZE_MAX);
	p = arena_alloc(a, nmemb * size);
	memset(p, 0, nmemb * size);
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
	char	*p;

	p = arena_alloc(a, n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *
arena_printf(struct arena *a, const char *fmt, ...)
{
	struct buf	b;
	va_list		ap;

	buf_init(&b, a, 64);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	(void)buf_cstr(&b);
	return b.p;
}

size_t
arena_used(const struct arena *a)
{
	const struct arena_block	*b;
	size_t				 n = 0;

	for (b = a->first; b != NULL; b = b->next)
		n += b->used;
	return n;
}

void
buf_init(struct buf *b, struct arena *a, size_t hint)
{
	b->a = a;
	b->len = 0;
	b->cap = hint > 0 ? hint : 64;
	b->p = arena_alloc(a, b->cap);
}

/* Grow to hold n more bytes plus a NUL, in place when possible. */
static void
buf_grow(struct buf *b, size_t n)
{
	struct arena_block	*cur = b->a->cur;
	size_t			 want, grow;
	char			*np;

	want = b->cap * 2;
	if (want < b->len + n + 1)
		want = b->len + n + 1;
	want = (want + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	grow = want - b->cap;
	/* The buffer is the newest allocation of the current block: extend it. */
	if ((unsigned char *)b->p + b->cap == cur->data + cur->used &&
	    cur->size - cur->used >= grow) {
		cur->used += grow;
		b->cap = want;
		return;
	}
	np = arena_alloc(b->a, want);
	memcpy(np, b->p, b->len);
	b->p = np;
	b->cap = want;
}

/* Make room for n more bytes plus a NUL (the test inline: most fit). */
static inline void
buf_reserve(struct buf *b, size_t n)
{
	if (b->cap - b->len <= n)
		buf_grow(b, n);
}

void
buf_add(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_addc(struct buf *b, char c)
{
	buf_reserve(b, 1);
	b->p[b->len++] = c;
}

void
buf_addll(struct buf *b, long long v)
{
	char			 tmp[24];
	unsigned long long	 u = v < 0 ? 0 - (unsigned long long)v :
				    (unsigned long long)v;
	int			 i = sizeof(tmp);

	do
		tmp[--i] = (char)('0' + u % 10);
	while ((u /= 10) > 0);
	if (v < 0)
		tmp[--i] = '-';
	buf_add(b, tmp + i, sizeof(tmp) - (size_t)i);
}

void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list	ap2;
	int	n;

	va_copy(ap2, ap);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	if ((size_t)n >= b->cap - b->len) {
		buf_reserve(b, (size_t)n);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		if (n < 0 || (size_t)n >= b->cap - b->len)
			return;
	}
	b->len += (size_t)n;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
buf_json_str(struct buf *b, const char *s, size_t n)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, run = 0, seq;

	buf_reserve(b, n + 2);
	buf_addc(b, '"');
	while (i < n) {
		if (p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\') {
			i++, run++;
			continue;
		}
		if (p[i] >= 0x80 && (seq = util_utf8_seq(p + i, n - i)) > 0) {
			i += seq, run += seq;
			continue;
		}
		buf_add(b, p + i - run, run);
		run = 0;
		switch (p[i]) {
		case '"':
			buf_add(b, "\\\"", 2);
			break;
		case '\\':
			buf_add(b, "\\\\", 2);
			break;
		case '\n':
			buf_add(b, "\\n", 2);
			break;
		case '\r':
			buf_add(b, "\\r", 2);
			break;
		case '\t':
			buf_add(b, "\\t", 2);
			break;
		default:
			if (p[i] < 0x20) {
				char	esc[6] = { '\\', 'u', '0', '0',
				    hex[p[i] >> 4], hex[p[i] & 0xf] };
				buf_add(b, esc, sizeof(esc));
			} else
				buf_add(b, "\\ufffd", 6);
			break;
		}
		i++;
	}
	buf_add(b, p + i - run, run);
	buf_addc(b, '"');
}

const char *
buf_cstr(struct buf *b)
{
	buf_reserve(b, 0);
	b->p[b->len] = '\0';
	return b->p;
}

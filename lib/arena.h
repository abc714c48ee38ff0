/*
 * arena: per-request memory.  Every allocation a request makes comes from
 * one arena that is reset, not freed, when the request ends, so a
 * responder does no malloc/free per request once it has warmed up.
 * Also owns struct buf, a growable byte buffer living in an arena, which
 * is how bodies and headers are assembled.
 */
#ifndef WX_ARENA_H
#define WX_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena_block;

struct arena {
	struct arena_block	*first;
	struct arena_block	*cur;
	size_t			 block_size;	/* size of a standard block */
	size_t			 keep;		/* standard blocks kept on reset */
	size_t			 mallocs;	/* blocks ever malloc'ed (for tests) */
};

struct buf {
	struct arena	*a;
	char		*p;
	size_t		 len;
	size_t		 cap;
};

void	 arena_init(struct arena *, size_t block_size, size_t keep);
void	 arena_reset(struct arena *);
void	 arena_free(struct arena *);
void	*arena_alloc(struct arena *, size_t);
void	*arena_calloc(struct arena *, size_t, size_t);
char	*arena_strndup(struct arena *, const char *, size_t);
char	*arena_strdup(struct arena *, const char *);
char	*arena_printf(struct arena *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
/* Bytes in use across all blocks (for tests and status). */
size_t	 arena_used(const struct arena *);

void	 buf_init(struct buf *, struct arena *, size_t hint);
void	 buf_add(struct buf *, const void *, size_t);
void	 buf_adds(struct buf *, const char *);
void	 buf_addc(struct buf *, char);
/* v in decimal, without printf (hot paths). */
void	 buf_addll(struct buf *, long long v);
void	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 buf_vprintf(struct buf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
/* Append s as a quoted JSON string; invalid UTF-8 becomes U+FFFD. */
void	 buf_json_str(struct buf *, const char *s, size_t n);
/* NUL-terminate (not counted in len) and return the bytes. */
const char *buf_cstr(struct buf *);

#endif

/*
 * coro: stackful coroutines, so that a request handler written
 * as plain blocking code can wait for a slow call -- a WeChat API call --
 * without holding its process: at the wait it yields to the event loop,
 * which resumes it when the call is done.
 *
 * Each coroutine has its own stack (mmap'ed, with a guard page below it,
 * so an overflow faults instead of corrupting memory).  One process runs
 * one coroutine at a time; the one that resumed it is the loop.  Nothing
 * here is thread-safe.
 */
#ifndef WX_CORO_H
#define WX_CORO_H

#include <stddef.h>

struct coro;

/* A coroutine with a stack of stack_size bytes (rounded up to pages). */
struct coro	*coro_new(size_t stack_size);
void		 coro_free(struct coro *);
/*
 * Run fn(arg) on co until it yields or returns: 1 when it yielded (resume
 * it later), 0 when fn returned (co may be started again).
 */
int		 coro_start(struct coro *, void (*fn)(void *), void *arg);
/* Continue co where it yielded: 1 or 0 as for coro_start. */
int		 coro_resume(struct coro *);
/* From inside a coroutine: back to whoever started or resumed it. */
void		 coro_yield(void);
/* The coroutine running now, or NULL when called from the loop. */
struct coro	*coro_current(void);

#endif

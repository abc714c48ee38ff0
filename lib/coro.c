/*
 * coro: stackful coroutines on ucontext (coro.h).
 */
#define _GNU_SOURCE	/* makecontext, MAP_ANONYMOUS */
#include <sys/mman.h>

#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>
#include <unistd.h>

#include "coro.h"

/*
 * AddressSanitizer must be told when the stack changes, or it takes the
 * other stack's frames for overflows (the fiber annotations of
 * sanitizer/common_interface_defs.h).
 */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#include <sanitizer/common_interface_defs.h>
#define ASAN_START(save, bottom, size) \
	__sanitizer_start_switch_fiber((save), (bottom), (size))
#define ASAN_FINISH(save, bottom, size) \
	__sanitizer_finish_switch_fiber((save), (bottom), (size))
#else
#define ASAN_START(save, bottom, size)	((void)(save), (void)(bottom), \
					    (void)(size))
#define ASAN_FINISH(save, bottom, size)	((void)(save), (void)(bottom), \
					    (void)(size))
#endif

struct coro {
	ucontext_t	 ctx;
	ucontext_t	 caller;
	void		*map;		/* guard page + stack */
	size_t		 maplen;
	void		(*fn)(void *);
	void		*arg;
	int		 done;
	/* For AddressSanitizer: the stack we came from, and ours. */
	const void	*from_bottom;
	size_t		 from_size;
	void		*fake;
};

/*
 * The one process-wide fact: which coroutine runs now (NULL: the loop).
 * A coroutine is resumed only by the loop, never by another coroutine.
 */
static struct coro	*running;

struct coro *
coro_new(size_t stack_size)
{
	struct coro	*co;
	size_t		 page = (size_t)sysconf(_SC_PAGESIZE);

	if (stack_size < 4 * page)
		stack_size = 4 * page;
	stack_size = (stack_size + page - 1) / page * page;
	if ((co = calloc(1, sizeof(*co))) == NULL)
		return NULL;
	co->maplen = stack_size + page;
	co->map = mmap(NULL, co->maplen, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (co->map == MAP_FAILED || mprotect(co->map, page, PROT_NONE) == -1) {
		if (co->map != MAP_FAILED)
			munmap(co->map, co->maplen);
		free(co);
		return NULL;
	}
	co->done = 1;
	return co;
}

void
coro_free(struct coro *co)
{
	if (co == NULL)
		return;
	munmap(co->map, co->maplen);
	free(co);
}

/*
 * makecontext passes int arguments only: the pointer goes through the
 * process-wide `running`, set just before the switch.
 */
static void
trampoline(void)
{
	struct coro	*co = running;

	ASAN_FINISH(NULL, &co->from_bottom, &co->from_size);
	co->fn(co->arg);
	co->done = 1;
	/* uc_link is NULL: switch back by hand, never to return here. */
	running = NULL;
	ASAN_START(NULL, co->from_bottom, co->from_size);
	setcontext(&co->caller);
}

/* Switch to co until it yields or ends. */
static int
enter(struct coro *co)
{
	size_t	 page = (size_t)sysconf(_SC_PAGESIZE);
	void	*fake = NULL;

	running = co;
	ASAN_START(&fake, (char *)co->map + page, co->maplen - page);
	swapcontext(&co->caller, &co->ctx);
	ASAN_FINISH(fake, NULL, NULL);
	running = NULL;
	return co->done ? 0 : 1;
}

int
coro_start(struct coro *co, void (*fn)(void *), void *arg)
{
	size_t	page = (size_t)sysconf(_SC_PAGESIZE);

	if (getcontext(&co->ctx) == -1)
		return 0;
	co->ctx.uc_stack.ss_sp = (char *)co->map + page;
	co->ctx.uc_stack.ss_size = co->maplen - page;
	co->ctx.uc_link = NULL;
	co->fn = fn;
	co->arg = arg;
	co->done = 0;
	makecontext(&co->ctx, trampoline, 0);
	return enter(co);
}

int
coro_resume(struct coro *co)
{
	if (co->done)
		return 0;
	return enter(co);
}

void
coro_yield(void)
{
	struct coro	*co = running;

	if (co == NULL)
		return;
	running = NULL;
	ASAN_START(&co->fake, co->from_bottom, co->from_size);
	swapcontext(&co->ctx, &co->caller);
	ASAN_FINISH(co->fake, &co->from_bottom, &co->from_size);
	running = co;
}

struct coro *
coro_current(void)
{
	return running;
}

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

struct coro {
	ucontext_t	 ctx;
	ucontext_t	 caller;
	void		*map;		/* guard page + stack */
	size_t		 maplen;
	void		(*fn)(void *);
	void		*arg;
	int		 done;
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

	co->fn(co->arg);
	co->done = 1;
	/* uc_link is NULL: switch back by hand, never to return here. */
	running = NULL;
	setcontext(&co->caller);
}

/* Switch to co until it yields or ends. */
static int
enter(struct coro *co)
{
	running = co;
	swapcontext(&co->caller, &co->ctx);
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
	swapcontext(&co->ctx, &co->caller);
	running = co;
}

struct coro *
coro_current(void)
{
	return running;
}

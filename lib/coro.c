/*
 * coro: stackful coroutines (coro.h).
 *
 * On x86-64 a coroutine switch is coro_switch below: it saves the
 * registers a call must preserve on the stack it leaves and loads them
 * from the one it enters.  ucontext's swapcontext does the same and also
 * saves and restores the signal mask with rt_sigprocmask(2): three system
 * calls per request (getcontext, swapcontext in, setcontext out), which
 * in the concurrent loop were half of a cached read's.  Nothing here
 * changes the signal mask, so there is nothing to save.  Elsewhere (or
 * built with -DCORO_UCONTEXT, as one unit test is) ucontext does it.
 */
#define _GNU_SOURCE	/* makecontext, MAP_ANONYMOUS */
#include <sys/mman.h>

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "coro.h"

/*
 * Not with shadow stacks (-fcf-protection=return sets bit 2 of __CET__):
 * the first switch into a coroutine returns where no call was made.
 */
#if defined(__x86_64__) && !defined(CORO_UCONTEXT) && \
    !(defined(__CET__) && (__CET__ & 2))
#define CORO_SWITCH	1
#else
#include <ucontext.h>
#endif

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

/*
 * Valgrind, when its header is there, is told where each stack is: it
 * otherwise takes a switch for a frame of gigabytes ("client switching
 * stacks?") and may judge the memory around it wrongly.
 */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define VG_REGISTER(lo, hi)	VALGRIND_STACK_REGISTER((lo), (hi))
#define VG_DEREGISTER(id)	VALGRIND_STACK_DEREGISTER(id)
#endif
#endif
#ifndef VG_REGISTER
#define VG_REGISTER(lo, hi)	((void)(lo), (void)(hi), 0u)
#define VG_DEREGISTER(id)	((void)(id))
#endif

struct coro {
#ifdef CORO_SWITCH
	void		*sp;		/* where coro_switch left it */
	void		*caller_sp;
#else
	ucontext_t	 ctx;
	ucontext_t	 caller;
#endif
	void		*map;		/* guard page + stack */
	size_t		 maplen;
	size_t		 page;
	unsigned	 vg_stack;	/* valgrind's id of the stack */
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

#ifdef CORO_SWITCH
/*
 * coro_switch(&save, to): push rbp, rbx, r12-r15 and the SSE and x87
 * control words (MXCSR, FPU CW: the rounding mode is the context's, as
 * with swapcontext), store the stack pointer in save, load to and pop the
 * same from it, and return to where that stack called coro_switch -- or,
 * for a new coroutine, to the start its first frame names (frame_new).
 */
void	coro_switch(void **, void *);
__asm__(
	".pushsection .text\n"
	".p2align 4\n"
	".globl coro_switch\n"
	".hidden coro_switch\n"
	".type coro_switch, @function\n"
	"coro_switch:\n"
	"	pushq %rbp\n"
	"	pushq %rbx\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	subq $8, %rsp\n"
	"	stmxcsr (%rsp)\n"
	"	fnstcw 4(%rsp)\n"
	"	movq %rsp, (%rdi)\n"
	"	movq %rsi, %rsp\n"
	"	ldmxcsr (%rsp)\n"
	"	fldcw 4(%rsp)\n"
	"	addq $8, %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbx\n"
	"	popq %rbp\n"
	"	ret\n"
	".size coro_switch, .-coro_switch\n"
	".popsection\n");
#endif

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
	co->page = page;
	co->maplen = stack_size + page;
	co->map = mmap(NULL, co->maplen, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (co->map == MAP_FAILED || mprotect(co->map, page, PROT_NONE) == -1) {
		if (co->map != MAP_FAILED)
			munmap(co->map, co->maplen);
		free(co);
		return NULL;
	}
	co->vg_stack = VG_REGISTER((char *)co->map + page,
	    (char *)co->map + co->maplen);
	co->done = 1;
	return co;
}

void
coro_free(struct coro *co)
{
	if (co == NULL)
		return;
	VG_DEREGISTER(co->vg_stack);
	munmap(co->map, co->maplen);
	free(co);
}

/*
 * The first frame of every run: fn(arg), then back to the caller for
 * good.  The coroutine comes through `running`, set just before the
 * switch (makecontext passes int arguments only).
 */
static void
trampoline(void)
{
	struct coro	*co = running;

	ASAN_FINISH(NULL, &co->from_bottom, &co->from_size);
	co->fn(co->arg);
	co->done = 1;
	running = NULL;
	ASAN_START(NULL, co->from_bottom, co->from_size);
#ifdef CORO_SWITCH
	coro_switch(&co->sp, co->caller_sp);
#else
	/* uc_link is NULL: switch back by hand, never to return here. */
	setcontext(&co->caller);
#endif
	abort();	/* a finished coroutine is started afresh, never resumed */
}

/* Make co's stack start at trampoline on the next switch to it. */
static int
frame_new(struct coro *co)
{
#ifdef CORO_SWITCH
	uintptr_t	*sp;
	uint32_t	 mxcsr;
	uint16_t	 fpucw;
	int		 i;

	/*
	 * From the (16-aligned) top down: a return address trampoline never
	 * uses, where coro_switch's ret goes, six registers (zero: rbp ends
	 * a debugger's backtrace there), the control words, now the loop's.
	 * At trampoline's entry rsp is 8 past a multiple of 16, as after a
	 * call.
	 */
	sp = (uintptr_t *)(((uintptr_t)co->map + co->maplen) &
	    ~(uintptr_t)15);
	*--sp = 0;
	*--sp = (uintptr_t)trampoline;
	for (i = 0; i < 6; i++)
		*--sp = 0;
	__asm__ volatile ("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(fpucw));
	*--sp = (uintptr_t)mxcsr | (uintptr_t)fpucw << 32;
	co->sp = sp;
	return 0;
#else
	if (getcontext(&co->ctx) == -1)
		return -1;
	co->ctx.uc_stack.ss_sp = (char *)co->map + co->page;
	co->ctx.uc_stack.ss_size = co->maplen - co->page;
	co->ctx.uc_link = NULL;
	makecontext(&co->ctx, trampoline, 0);
	return 0;
#endif
}

/* Switch to co until it yields or ends. */
static int
enter(struct coro *co)
{
	void	*fake = NULL;

	running = co;
	ASAN_START(&fake, (char *)co->map + co->page, co->maplen - co->page);
#ifdef CORO_SWITCH
	coro_switch(&co->caller_sp, co->sp);
#else
	swapcontext(&co->caller, &co->ctx);
#endif
	ASAN_FINISH(fake, NULL, NULL);
	running = NULL;
	return co->done ? 0 : 1;
}

int
coro_start(struct coro *co, void (*fn)(void *), void *arg)
{
	if (frame_new(co) == -1)
		return 0;
	co->fn = fn;
	co->arg = arg;
	co->done = 0;
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
#ifdef CORO_SWITCH
	coro_switch(&co->sp, co->caller_sp);
#else
	swapcontext(&co->ctx, &co->caller);
#endif
	ASAN_FINISH(co->fake, &co->from_bottom, &co->from_size);
	running = co;
}

struct coro *
coro_current(void)
{
	return running;
}

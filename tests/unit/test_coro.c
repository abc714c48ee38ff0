/*
 * Unit tests for lib/coro: start, yield, resume in any order, reuse; what
 * a switch must keep (the registers a call preserves, each context's
 * rounding mode, an ABI-aligned stack); and that a switch makes no system
 * call.  Built twice: with the x86-64 switch (test_coro) and with
 * ucontext (test_coro_uc, -DCORO_UCONTEXT).
 */
#include "check_run.h"
#include <sys/wait.h>

#include <fenv.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) && !defined(CORO_UCONTEXT)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#define SWITCH_IN_ASM	1
#endif

#include "coro.h"

#define STACK	(64 * 1024)

static int	steps;

static void
count_to_three(void *arg)
{
	int	*seen = arg;

	for (steps = 0; steps < 3; steps++) {
		*seen = coro_current() != NULL;
		coro_yield();
	}
}

START_TEST(yields_and_resumes_until_the_end)
{
	struct coro	*co = coro_new(STACK);
	int		 seen = 0, n = 1;

	ck_assert_ptr_nonnull(co);
	ck_assert_ptr_null(coro_current());
	ck_assert_int_eq(coro_start(co, count_to_three, &seen), 1);
	ck_assert_int_eq(seen, 1);
	ck_assert_ptr_null(coro_current());
	while (coro_resume(co) == 1)
		n++;
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(steps, 3);
	/* Ended: resuming does nothing; starting again runs afresh. */
	ck_assert_int_eq(coro_resume(co), 0);
	ck_assert_int_eq(coro_start(co, count_to_three, &seen), 1);
	ck_assert_int_eq(steps, 0);
	while (coro_resume(co) == 1)
		;
	coro_free(co);
}
END_TEST

static char	trace[64];

static void
worker(void *arg)
{
	const char	*name = arg;

	strncat(trace, name, 1);
	coro_yield();
	strncat(trace, name, 1);
	ck_assert_ptr_nonnull(coro_current());
	coro_yield();
	strncat(trace, name, 1);
}

START_TEST(resumed_in_any_order)
{
	struct coro	*x = coro_new(64 * 1024), *y = coro_new(64 * 1024);

	trace[0] = '\0';
	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(y);
	ck_assert_int_eq(coro_start(x, worker, "a"), 1);
	ck_assert_int_eq(coro_start(y, worker, "b"), 1);
	ck_assert_int_eq(coro_resume(y), 1);
	ck_assert_int_eq(coro_resume(x), 1);
	ck_assert_int_eq(coro_resume(y), 0);	/* ended */
	ck_assert_int_eq(coro_resume(y), 0);
	ck_assert_int_eq(coro_resume(x), 0);
	ck_assert_str_eq(trace, "abbaba");
	ck_assert_ptr_null(coro_current());
	/* An ended coroutine starts again. */
	ck_assert_int_eq(coro_start(x, worker, "c"), 1);
	ck_assert_int_eq(coro_resume(x), 1);
	ck_assert_int_eq(coro_resume(x), 0);
	ck_assert_str_eq(trace, "abbabaccc");
	coro_free(x);
	coro_free(y);
}
END_TEST

/* The values a coroutine keeps in registers and on its stack. */
struct mixer {
	uint64_t	 out;
	int		 rounds;
};

/* Many values live across each yield: callee-saved registers, and more. */
static void
mix(void *arg)
{
	struct mixer	*m = arg;
	uint64_t	 a = 1, b = 2, c = 3, d = 4, e = 5, f = 6, g = 7, h = 8;
	char		 pad[512];
	int		 i;

	memset(pad, m->rounds & 0xff, sizeof(pad));
	for (i = 0; i < m->rounds; i++) {
		a = a * 31 + h; b ^= a << 1; c += b * 7; d = d * 3 + c;
		e ^= d >> 3; f += e * 11; g = g * 5 + f; h ^= g + (uint64_t)i;
		coro_yield();
	}
	for (i = 0; i < (int)sizeof(pad); i++)
		if (pad[i] != (char)(m->rounds & 0xff))
			h = 0;
	m->out = a ^ b ^ c ^ d ^ e ^ f ^ g ^ h;
}

/* The same sums, without switching. */
static uint64_t
mix_plain(int rounds)
{
	uint64_t	 a = 1, b = 2, c = 3, d = 4, e = 5, f = 6, g = 7, h = 8;
	int		 i;

	for (i = 0; i < rounds; i++) {
		a = a * 31 + h; b ^= a << 1; c += b * 7; d = d * 3 + c;
		e ^= d >> 3; f += e * 11; g = g * 5 + f; h ^= g + (uint64_t)i;
	}
	return a ^ b ^ c ^ d ^ e ^ f ^ g ^ h;
}

START_TEST(interleaved_coroutines_keep_their_own_values)
{
	struct coro	*x = coro_new(STACK), *y = coro_new(STACK);
	struct mixer	 mx = { .rounds = 100 }, my = { .rounds = 77 };
	uint64_t	 l1 = 11, l2 = 22, l3 = 33;
	int		 rx, ry;

	ck_assert_ptr_nonnull(x);
	ck_assert_ptr_nonnull(y);
	rx = coro_start(x, mix, &mx);
	ry = coro_start(y, mix, &my);
	while (rx || ry) {
		l1 = l1 * 3 + l2; l2 ^= l3; l3 += l1;
		if (rx)
			rx = coro_resume(x);
		if (ry)
			ry = coro_resume(y);
	}
	ck_assert_uint_eq(mx.out, mix_plain(100));
	ck_assert_uint_eq(my.out, mix_plain(77));
	/* The loop's own values, kept across the switches too. */
	{
		uint64_t	k1 = 11, k2 = 22, k3 = 33;
		int		i;

		for (i = 0; i < 100; i++) {
			k1 = k1 * 3 + k2; k2 ^= k3; k3 += k1;
		}
		ck_assert_uint_eq(l1, k1);
		ck_assert_uint_eq(l2, k2);
		ck_assert_uint_eq(l3, k3);
	}
	coro_free(x);
	coro_free(y);
}
END_TEST

static int	coro_round;

/* Round upward here; the loop's mode must stay its own. */
static void
round_up(void *arg)
{
	(void)arg;
	fesetround(FE_UPWARD);
	coro_yield();
	coro_round = fegetround();
	fesetround(FE_TONEAREST);
}

START_TEST(each_context_keeps_its_rounding_mode)
{
	struct coro	*co = coro_new(STACK);

	ck_assert_ptr_nonnull(co);
	fesetround(FE_TONEAREST);
	ck_assert_int_eq(coro_start(co, round_up, NULL), 1);
	ck_assert_int_eq(fegetround(), FE_TONEAREST);
	fesetround(FE_TOWARDZERO);
	ck_assert_int_eq(coro_resume(co), 0);
	ck_assert_int_eq(coro_round, FE_UPWARD);
	ck_assert_int_eq(fegetround(), FE_TOWARDZERO);
	fesetround(FE_TONEAREST);
	coro_free(co);
}
END_TEST

static char	formatted[64];

/* printf of a double uses aligned SSE stores: a misaligned stack faults. */
static void
format_double(void *arg)
{
	(void)arg;
	snprintf(formatted, sizeof(formatted), "%.3f %Lf", 2.5,
	    (long double)1.25);
	coro_yield();
	snprintf(formatted, sizeof(formatted), "%.3f %Lf", 3.5,
	    (long double)0.5);
}

/* Recursion that uses most of a stack, with a value at each level. */
static int
deep(int n)
{
	volatile char	frame[1024];

	frame[0] = (char)n;
	if (n == 0)
		return 0;
	return deep(n - 1) + frame[0];
}

static void
go_deep(void *arg)
{
	int	*sum = arg;

	*sum = deep(48);
	coro_yield();
	*sum += deep(48);
}

START_TEST(the_stack_is_aligned_and_whole)
{
	struct coro	*co = coro_new(STACK);
	int		 sum = 0;

	ck_assert_ptr_nonnull(co);
	ck_assert_int_eq(coro_start(co, format_double, NULL), 1);
	ck_assert_str_eq(formatted, "2.500 1.250000");
	ck_assert_int_eq(coro_resume(co), 0);
	ck_assert_str_eq(formatted, "3.500 0.500000");
	ck_assert_int_eq(coro_start(co, go_deep, &sum), 1);
	ck_assert_int_eq(sum, 48 * 49 / 2);
	ck_assert_int_eq(coro_resume(co), 0);
	ck_assert_int_eq(sum, 48 * 49);
	coro_free(co);
}
END_TEST

/* A signal blocked by the loop stays blocked in the coroutine, and back. */
static int	blocked_inside;

static void
look_at_the_mask(void *arg)
{
	sigset_t	now;

	(void)arg;
	sigprocmask(SIG_BLOCK, NULL, &now);
	blocked_inside = sigismember(&now, SIGUSR2);
	coro_yield();
}

START_TEST(the_signal_mask_is_the_process_s)
{
	struct coro	*co = coro_new(STACK);
	sigset_t	 block, now;

	ck_assert_ptr_nonnull(co);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, NULL);
	ck_assert_int_eq(coro_start(co, look_at_the_mask, NULL), 1);
	ck_assert_int_eq(blocked_inside, 1);
	ck_assert_int_eq(coro_resume(co), 0);
	sigprocmask(SIG_BLOCK, NULL, &now);
	ck_assert_int_eq(sigismember(&now, SIGUSR2), 1);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	coro_free(co);
}
END_TEST

#ifdef SWITCH_IN_ASM
/*
 * In a child whose rt_sigprocmask(2) fails (seccomp), a coroutine still
 * starts, yields and ends: a switch makes no such call.  ucontext's would
 * fail there (getcontext, swapcontext).
 */
START_TEST(a_switch_makes_no_system_call)
{
	struct sock_filter	 f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigprocmask, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog	 prog = {
		.len = sizeof(f) / sizeof(f[0]), .filter = f
	};
	struct coro		*co;
	int			 seen = 0, st, n = 1;
	pid_t			 pid;

	/*
	 * Valgrind blocks signals around each system call it runs for us,
	 * which the filter refuses: under it, this case cannot run.
	 */
	if (strstr(getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "",
	    "vgpreload") != NULL)
		return;
	co = coro_new(STACK);
	ck_assert_ptr_nonnull(co);
	pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1)
			_exit(2);
		/* The filter holds: the call fails. */
		if (sigprocmask(SIG_BLOCK, NULL, &(sigset_t){ 0 }) == 0)
			_exit(3);
		if (coro_start(co, count_to_three, &seen) != 1 || seen != 1)
			_exit(4);
		while (coro_resume(co) == 1)
			n++;
		_exit(n == 3 && steps == 3 ? 0 : 5);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	coro_free(co);
}
END_TEST
#endif

int
main(void)
{
	Suite	*s = suite_create("coro");
	TCase	*tc = tcase_create("coro");

	tcase_add_test(tc, yields_and_resumes_until_the_end);
	tcase_add_test(tc, resumed_in_any_order);
	tcase_add_test(tc, interleaved_coroutines_keep_their_own_values);
	tcase_add_test(tc, each_context_keeps_its_rounding_mode);
	tcase_add_test(tc, the_stack_is_aligned_and_whole);
	tcase_add_test(tc, the_signal_mask_is_the_process_s);
#ifdef SWITCH_IN_ASM
	tcase_add_test(tc, a_switch_makes_no_system_call);
#endif
	suite_add_tcase(s, tc);
	return check_run(s);
}

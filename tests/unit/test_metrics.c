/*
 * Unit tests for lib/metrics: histogram buckets and their text (cumulative,
 * +Inf, sum in seconds, count), label escaping, and counters added to by
 * several processes at once in shared memory, none lost.
 */
#include "check_run.h"
#include <sys/mman.h>
#include <sys/wait.h>

#include <string.h>
#include <unistd.h>

#include "metrics.h"

static struct arena	a;

static void
setup(void)
{
	arena_init(&a, 4096, 1);
}

static void
teardown(void)
{
	arena_free(&a);
}

START_TEST(histogram_text)
{
	struct metrics_hist	h;
	struct buf		b;
	const char		*t;

	memset(&h, 0, sizeof(h));
	metrics_observe(&h, 400);	/* <= 0.5 ms */
	metrics_observe(&h, 500);	/* the bound itself */
	metrics_observe(&h, 3000);	/* <= 5 ms */
	metrics_observe(&h, 60000000);	/* past 10 s: +Inf only */
	metrics_observe(&h, -5);	/* counts as 0 */
	buf_init(&b, &a, 1024);
	metrics_hist_samples(&b, "x_seconds", "route=\"/r\"", &h);
	t = buf_cstr(&b);
	ck_assert_ptr_nonnull(strstr(t, "x_seconds_bucket{route=\"/r\",le=\"0.0005\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(t, "x_seconds_bucket{route=\"/r\",le=\"0.001\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(t, "x_seconds_bucket{route=\"/r\",le=\"0.005\"} 4\n"));
	ck_assert_ptr_nonnull(strstr(t, "x_seconds_bucket{route=\"/r\",le=\"10\"} 4\n"));
	ck_assert_ptr_nonnull(strstr(t, "x_seconds_bucket{route=\"/r\",le=\"+Inf\"} 5\n"));
	ck_assert_ptr_nonnull(strstr(t, "x_seconds_sum{route=\"/r\"} 60.0039"));
	ck_assert_ptr_nonnull(strstr(t, "x_seconds_count{route=\"/r\"} 5\n"));
}
END_TEST

START_TEST(labels_and_samples)
{
	struct buf	b, l;

	buf_init(&l, &a, 64);
	metrics_label(&l, "path", "a\"b\\c\nd");
	metrics_label(&l, "code", "200");
	ck_assert_str_eq(buf_cstr(&l), "path=\"a\\\"b\\\\c\\nd\",code=\"200\"");
	buf_init(&b, &a, 256);
	metrics_family(&b, "y_total", "counter", "Things.");
	metrics_sample(&b, "y_total", buf_cstr(&l), 7);
	metrics_sample(&b, "y_total", NULL, 8);
	ck_assert_str_eq(buf_cstr(&b), "# HELP y_total Things.\n"
	    "# TYPE y_total counter\n"
	    "y_total{path=\"a\\\"b\\\\c\\nd\",code=\"200\"} 7\n"
	    "y_total 8\n");
}
END_TEST

START_TEST(many_processes_lose_nothing)
{
	struct metrics_hist	*h;
	int			 i, j, st;
	pid_t			 pid;

	h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(h, MAP_FAILED);
	memset(h, 0, sizeof(*h));
	for (i = 0; i < 4; i++) {
		if ((pid = fork()) == 0) {
			for (j = 0; j < 20000; j++)
				metrics_observe(h, 700);
			_exit(0);
		}
		ck_assert_int_ne(pid, -1);
	}
	for (i = 0; i < 4; i++) {
		ck_assert_int_ne(wait(&st), -1);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	ck_assert_uint_eq(h->count, 80000);
	ck_assert_uint_eq(h->bucket[1], 80000);	/* <= 1 ms */
	ck_assert_uint_eq(h->sum_us, 80000 * 700);
	munmap(h, sizeof(*h));
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("metrics");
	TCase	*tc = tcase_create("metrics");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, histogram_text);
	tcase_add_test(tc, labels_and_samples);
	tcase_add_test(tc, many_processes_lose_nothing);
	suite_add_tcase(s, tc);
	return check_run(s);
}

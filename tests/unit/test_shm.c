/*
 * Unit tests for lib/shm: one segment per name, shared by whoever
 * attaches, the program's layout initialized once, and a segment of
 * another layout replaced rather than used.
 */
#include "check_run.h"
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shm.h"

struct layout_v1 {
	uint64_t	counters[8];
	int		inits;
};

static void
init_v1(void *data)
{
	struct layout_v1	*l = data;

	l->inits++;
	l->counters[0] = 7;
}

static const struct shm_layout	v1 = {
	.size = sizeof(struct layout_v1), .version = 1, .init = init_v1
};
static const struct shm_layout	v2 = {
	.size = sizeof(struct layout_v1), .version = 2, .init = init_v1
};
static const struct shm_layout	bigger = {
	.size = 2 * sizeof(struct layout_v1), .version = 1, .init = NULL
};

static char	name[64];

static void
setup(void)
{
	int	n;

	n = snprintf(name, sizeof(name), "/wxapp-test-shm-%ld", (long)getpid());
	ck_assert(n > 0 && (size_t)n < sizeof(name));
	shm_unlink(name);
}

static void
teardown(void)
{
	shm_unlink(name);
}

START_TEST(one_segment_per_name)
{
	struct shm		 s1, s2, peek;
	struct layout_v1	*l1, *l2;

	ck_assert_int_eq(shm_attach(&s1, name, &v1), 0);
	ck_assert_int_eq(shm_attach(&s2, name, &v1), 0);
	l1 = s1.data;
	l2 = s2.data;
	ck_assert_ptr_ne(l1, l2);		/* two mappings ... */
	l1->counters[1] = 42;
	ck_assert_uint_eq(l2->counters[1], 42);	/* ... of one segment */
	ck_assert_int_eq(l2->inits, 1);		/* initialized once */
	ck_assert_uint_eq(l2->counters[0], 7);
	ck_assert_int_eq(shm_peek(&peek, name, &v1), 0);
	ck_assert_uint_eq(((struct layout_v1 *)peek.data)->counters[1], 42);
	shm_lock(&s1);
	shm_unlock(&s1);
	shm_detach(&peek);
	shm_detach(&s1);
	shm_detach(&s2);
}
END_TEST

START_TEST(another_version_is_replaced)
{
	struct shm		 old, s, peek;

	ck_assert_int_eq(shm_attach(&old, name, &v1), 0);
	((struct layout_v1 *)old.data)->counters[1] = 99;
	/* A program of layout v2 attaches: a fresh segment for it. */
	ck_assert_int_eq(shm_peek(&peek, name, &v2), -1);
	ck_assert_int_eq(shm_attach(&s, name, &v2), 0);
	ck_assert_uint_eq(((struct layout_v1 *)s.data)->counters[1], 0);
	ck_assert_int_eq(shm_peek(&peek, name, &v2), 0);
	shm_detach(&peek);
	/* The old processes keep their mapping of the old object. */
	ck_assert_uint_eq(((struct layout_v1 *)old.data)->counters[1], 99);
	shm_detach(&old);
	shm_detach(&s);
}
END_TEST

START_TEST(another_size_is_replaced)
{
	struct shm	s, t;

	ck_assert_int_eq(shm_attach(&s, name, &bigger), 0);
	ck_assert_int_eq(shm_peek(&t, name, &v1), -1);
	ck_assert_int_eq(shm_attach(&t, name, &v1), 0);
	ck_assert_int_eq(((struct layout_v1 *)t.data)->inits, 1);
	shm_detach(&s);
	shm_detach(&t);
}
END_TEST

START_TEST(private_region)
{
	struct shm	s;

	ck_assert_int_eq(shm_private(&s, &v1), 0);
	ck_assert_int_eq(s.shared, 0);
	ck_assert_int_eq(((struct layout_v1 *)s.data)->inits, 1);
	shm_lock(&s);
	shm_unlock(&s);
	shm_detach(&s);
	ck_assert_ptr_null(s.data);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("shm");
	TCase	*tc = tcase_create("shm");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, one_segment_per_name);
	tcase_add_test(tc, another_version_is_replaced);
	tcase_add_test(tc, another_size_is_replaced);
	tcase_add_test(tc, private_region);
	suite_add_tcase(s, tc);
	return check_run(s);
}

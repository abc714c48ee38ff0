/* Unit tests for lib/arena: allocation, reuse across resets, buffers. */
#include "check_run.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

START_TEST(alloc_is_aligned_and_distinct)
{
	struct arena	a;
	char		*p, *q;

	arena_init(&a, 4096, 2);
	p = arena_alloc(&a, 3);
	q = arena_alloc(&a, 5);
	ck_assert_uint_eq((uintptr_t)p % 16, 0);
	ck_assert_uint_eq((uintptr_t)q % 16, 0);
	ck_assert_ptr_ne(p, q);
	arena_free(&a);
}
END_TEST

/* 10,000 request-shaped cycles allocate no new blocks after warm-up. */
START_TEST(reset_reuses_blocks)
{
	struct arena	a;
	size_t		warm;
	int		i, j;

	arena_init(&a, 8192, 4);
	for (j = 0; j < 20; j++)
		(void)arena_alloc(&a, 1000);
	arena_reset(&a);
	warm = a.mallocs;
	for (i = 0; i < 10000; i++) {
		for (j = 0; j < 20; j++)
			memset(arena_alloc(&a, 1000), 'x', 1000);
		arena_reset(&a);
	}
	ck_assert_uint_eq(a.mallocs, warm);
	ck_assert_uint_eq(arena_used(&a), 0);
	arena_free(&a);
}
END_TEST

START_TEST(oversized_block_is_released_on_reset)
{
	struct arena	a;
	char		*big;

	arena_init(&a, 4096, 1);
	big = arena_alloc(&a, 100000);
	memset(big, 1, 100000);
	ck_assert_uint_ge(arena_used(&a), 100000);
	arena_reset(&a);
	ck_assert_uint_eq(arena_used(&a), 0);
	/* The standard block is still usable after the big one went. */
	ck_assert_ptr_nonnull(arena_alloc(&a, 100));
	arena_free(&a);
}
END_TEST

START_TEST(buf_grows_and_keeps_content)
{
	struct arena	a;
	struct buf	b;
	int		i;

	arena_init(&a, 1024, 1);
	buf_init(&b, &a, 8);
	for (i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i % 10);
	ck_assert_uint_eq(b.len, 2000);
	ck_assert_int_eq(strncmp(buf_cstr(&b), "0,1,2,3,", 8), 0);
	ck_assert_int_eq(b.p[1998], '9');
	arena_free(&a);
}
END_TEST

START_TEST(strdup_and_printf)
{
	struct arena	a;

	arena_init(&a, 1024, 1);
	ck_assert_str_eq(arena_strndup(&a, "hello", 4), "hell");
	ck_assert_str_eq(arena_printf(&a, "%s-%d", "x", 42), "x-42");
	arena_free(&a);
}
END_TEST

START_TEST(json_string_escapes)
{
	struct arena	a;
	struct buf	b;

	arena_init(&a, 1024, 1);
	buf_init(&b, &a, 16);
	buf_json_str(&b, "a\"b\\c\n\x01", 7);
	ck_assert_str_eq(buf_cstr(&b), "\"a\\\"b\\\\c\\n\\u0001\"");
	b.len = 0;
	/* Valid UTF-8 passes; a stray byte and an overlong form do not. */
	buf_json_str(&b, "\xe4\xbd\xa0|\xff|\xc0\xaf", 8);
	ck_assert_str_eq(buf_cstr(&b), "\"\xe4\xbd\xa0|\\ufffd|\\ufffd\\ufffd\"");
	arena_free(&a);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("arena");
	TCase	*tc = tcase_create("arena");

	tcase_add_test(tc, alloc_is_aligned_and_distinct);
	tcase_add_test(tc, reset_reuses_blocks);
	tcase_add_test(tc, oversized_block_is_released_on_reset);
	tcase_add_test(tc, buf_grows_and_keeps_content);
	tcase_add_test(tc, strdup_and_printf);
	tcase_add_test(tc, json_string_escapes);
	suite_add_tcase(s, tc);
	return check_run(s);
}

/*
 * Unit tests for lib/shm: one segment per name, shared by whoever
 * attaches, and a segment of another layout replaced rather than used.
 */
#include "check_run.h"
#include <sys/mman.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shm.h"

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
	struct shm_region	*r1, *r2;

	r1 = shm_attach(name);
	ck_assert_ptr_nonnull(r1);
	r2 = shm_attach(name);
	ck_assert_ptr_nonnull(r2);
	ck_assert_ptr_ne(r1, r2);		/* two mappings ... */
	r1->changes[1] = 42;
	ck_assert_uint_eq(r2->changes[1], 42);	/* ... of one segment */
	ck_assert_ptr_nonnull(shm_peek(name));
	munmap(r1, sizeof(*r1));
	munmap(r2, sizeof(*r2));
}
END_TEST

START_TEST(another_layout_is_replaced)
{
	struct shm_region	*old, *r;
	int			 fd;

	/* What an older version left: smaller, its own magic and version. */
	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(ftruncate(fd, 4096), 0);
	old = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(old, MAP_FAILED);
	old->magic = SHM_MAGIC;
	old->version = SHM_VERSION - 1;
	close(fd);
	ck_assert_ptr_null(shm_peek(name));
	r = shm_attach(name);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->version, SHM_VERSION);
	ck_assert_ptr_nonnull(shm_peek(name));
	/* The old responders keep their mapping of the old object. */
	ck_assert_uint_eq(old->version, SHM_VERSION - 1);
	munmap(old, 4096);
	munmap(r, sizeof(*r));
}
END_TEST

START_TEST(same_size_other_version_is_replaced)
{
	struct shm_region	*r;
	int			 fd;

	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(ftruncate(fd, sizeof(*r)), 0);
	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(r, MAP_FAILED);
	r->magic = SHM_MAGIC;
	r->version = SHM_VERSION + 1;
	close(fd);
	munmap(r, sizeof(*r));
	r = shm_attach(name);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->version, SHM_VERSION);
	munmap(r, sizeof(*r));
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("shm");
	TCase	*tc = tcase_create("shm");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, one_segment_per_name);
	tcase_add_test(tc, another_layout_is_replaced);
	tcase_add_test(tc, same_size_other_version_is_replaced);
	suite_add_tcase(s, tc);
	return check_run(s);
}

/*
 * check_run: the main() every unit test shares: run one Check suite and
 * turn its result into the exit status automake's harness reads.
 */
#ifndef WX_CHECK_RUN_H
#define WX_CHECK_RUN_H

#include <check.h>
#include <stdlib.h>

static inline int
check_run(Suite *s)
{
	SRunner	*sr = srunner_create(s);
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif

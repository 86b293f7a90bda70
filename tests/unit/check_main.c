/*
 * The main() of every Check test program: each test file defines
 * tw_test_suite() and tw_add_unit_test() links this file beside it.
 * Set CK_RUN_CASE / CK_RUN_SUITE to run part of a suite (Check reads them).
 */
#include "tw_check.h"
#include <stdlib.h>

int main(void)
{
    SRunner *sr = srunner_create(tw_test_suite());
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

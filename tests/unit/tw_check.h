/*
 * Shared by every Check test program: each defines tw_test_suite(), and
 * tests/unit/check_main.c runs it.
 */
#ifndef TW_CHECK_H
#define TW_CHECK_H

#include <check.h>

Suite *tw_test_suite(void);

#endif

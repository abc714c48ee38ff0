/* Unit tests for lib/util and lib/jsonparse. */
#include "check_run.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

START_TEST(strtonum_ranges)
{
	long long	 v;
	const char	*err;

	ck_assert_int_eq(util_strtonum("42", 1, 100, &v, &err), 0);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(util_strtonum("0", 1, 100, &v, &err), -1);
	ck_assert_str_eq(err, "is too small");
	ck_assert_int_eq(util_strtonum("101", 1, 100, &v, &err), -1);
	ck_assert_str_eq(err, "is too large");
	ck_assert_int_eq(util_strtonum("4x", 1, 100, &v, &err), -1);
	ck_assert_str_eq(err, "is not a number");
	ck_assert_int_eq(util_strtonum("", 1, 100, &v, &err), -1);
	ck_assert_int_eq(util_strtonum("99999999999999999999", 1, LLONG_MAX,
	    &v, &err), -1);
	ck_assert_str_eq(err, "is too large");
	/* Digits after an optional '-', and nothing else: strtoll is kinder. */
	ck_assert_int_eq(util_strtonum("-5", -10, 10, &v, &err), 0);
	ck_assert_int_eq(v, -5);
	ck_assert_int_eq(util_strtonum("+5", 1, 100, &v, &err), -1);
	ck_assert_str_eq(err, "is not a number");
	ck_assert_int_eq(util_strtonum(" 5", 1, 100, &v, &err), -1);
	ck_assert_int_eq(util_strtonum("\t5", 1, 100, &v, &err), -1);
	ck_assert_int_eq(util_strtonum("-", -10, 10, &v, &err), -1);
	ck_assert_int_eq(util_strtonum("- 5", -10, 10, &v, &err), -1);
	ck_assert_int_eq(util_strtonum("5 ", 1, 100, &v, &err), -1);
}
END_TEST

START_TEST(utf8_lengths)
{
	ck_assert_int_eq(util_utf8_len("abc", 3), 3);
	ck_assert_int_eq(util_utf8_len("\xe7\x8e\x8b\xe4\xbc\x9f", 6), 2);
	ck_assert_int_eq(util_utf8_len("\xf0\x9f\x98\x80", 4), 1);
	ck_assert_int_eq(util_utf8_len("\xff", 1), -1);
	ck_assert_int_eq(util_utf8_len("\xe7\x8e", 2), -1);
	ck_assert_int_eq(util_utf8_len("\xed\xa0\x80", 3), -1);
	ck_assert_int_eq(util_utf8_len("", 0), 0);
}
END_TEST

START_TEST(http_dates)
{
	char	d[40];

	ck_assert_int_eq(util_http_date(1700000000, d, sizeof(d)), 0);
	ck_assert_str_eq(d, "Tue, 14 Nov 2023 22:13:20 GMT");
	ck_assert_int_eq(util_parse_http_date(d), 1700000000);
	ck_assert_int_eq(util_parse_http_date("Tue, 14 Nov 2023"), -1);
	ck_assert_int_eq(util_parse_http_date("Tue, 14 Nov 2023 22:13:20 GMTx"),
	    -1);
}
END_TEST

START_TEST(utf8_prefix_counts_code_points)
{
	const char	*s = "节日ab\xf0\x9f\x8e\x89";	/* 3+3+1+1+4 bytes */

	ck_assert_uint_eq(util_utf8_prefix(s, strlen(s), 0), 0);
	ck_assert_uint_eq(util_utf8_prefix(s, strlen(s), 1), 3);
	ck_assert_uint_eq(util_utf8_prefix(s, strlen(s), 3), 7);
	ck_assert_uint_eq(util_utf8_prefix(s, strlen(s), 5), 12);
	ck_assert_uint_eq(util_utf8_prefix(s, strlen(s), 20), 12);
	/* A sequence cut short by n is not counted, nor what follows. */
	ck_assert_uint_eq(util_utf8_prefix(s, 4, 5), 3);
	ck_assert_uint_eq(util_utf8_prefix("a\xff" "b", 3, 5), 1);
}
END_TEST

START_TEST(address_lists_are_checked)
{
	static const char *const good[] = {
		"", " ", "10.0.0.5", "10.0.0.0/8, 192.0.2.0/24",
		"2001:db8::/32,::1", " 10.1.2.3/32 ,, fe80::1/128 ",
		"0.0.0.0/0", "::/0", "::ffff:10.0.0.0/104",
	};
	static const char *const bad[] = {
		"10.0.0", "10.0.0.0/33", "2001:db8::/129", "10.0.0.0/",
		"10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8x", "example.org",
		"10.0.0.1 10.0.0.2", "10.0.0.0/8, bad",
	};
	char	err[128];
	size_t	i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(util_cidr_check(good[i], err, sizeof(err)) == 0,
		    "refused \"%s\": %s", good[i], err);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(util_cidr_check(bad[i], err, sizeof(err)) == -1,
		    "accepted \"%s\"", bad[i]);
		ck_assert_ptr_nonnull(strstr(err, "is not an address"));
	}
	ck_assert_ptr_nonnull(strstr(err, "\"bad\""));
}
END_TEST

START_TEST(addresses_match_their_prefixes)
{
	const char	*l = "10.0.0.0/8, 192.0.2.7, 2001:db8::/32, "
	    "198.51.100.0/23";

	ck_assert_int_eq(util_cidr_match(l, "10.1.2.3"), 1);
	ck_assert_int_eq(util_cidr_match(l, "11.0.0.1"), 0);
	ck_assert_int_eq(util_cidr_match(l, "192.0.2.7"), 1);
	ck_assert_int_eq(util_cidr_match(l, "192.0.2.8"), 0);
	/* A prefix that ends inside a byte: 198.51.100.0 - 198.51.101.255. */
	ck_assert_int_eq(util_cidr_match(l, "198.51.101.255"), 1);
	ck_assert_int_eq(util_cidr_match(l, "198.51.102.0"), 0);
	ck_assert_int_eq(util_cidr_match(l, "198.51.99.255"), 0);
	ck_assert_int_eq(util_cidr_match(l, "2001:db8:1::5"), 1);
	ck_assert_int_eq(util_cidr_match(l, "2001:db9::5"), 0);
	/* IPv4-mapped IPv6 is the IPv4 address; IPv4 never matches IPv6. */
	ck_assert_int_eq(util_cidr_match(l, "::ffff:10.9.9.9"), 1);
	ck_assert_int_eq(util_cidr_match(l, "::ffff:11.9.9.9"), 0);
	ck_assert_int_eq(util_cidr_match("::/0", "10.0.0.1"), 0);
	ck_assert_int_eq(util_cidr_match("0.0.0.0/0", "2001:db8::1"), 0);
	ck_assert_int_eq(util_cidr_match("0.0.0.0/0", "10.0.0.1"), 1);
	ck_assert_int_eq(util_cidr_match("::ffff:10.0.0.0/104", "10.2.3.4"),
	    1);
	/* Not an address, or a prefix where an address goes: no. */
	ck_assert_int_eq(util_cidr_match(l, ""), 0);
	ck_assert_int_eq(util_cidr_match(l, "10.0.0.0/8"), 0);
	ck_assert_int_eq(util_cidr_match(l, "unix:"), 0);
	ck_assert_int_eq(util_cidr_match(l, NULL), 0);
	/* Nothing matches the empty list; a bad list is said to be bad. */
	ck_assert_int_eq(util_cidr_match("", "10.0.0.1"), 0);
	ck_assert_int_eq(util_cidr_match("10.0.0.0/8,x", "10.0.0.1"), -1);
	ck_assert_int_eq(util_cidr_match("x", "10.0.0.1"), -1);
}
END_TEST

int
main(void)
{
	Suite	*s = suite_create("util");
	TCase	*tc = tcase_create("util");

	tcase_add_test(tc, strtonum_ranges);
	tcase_add_test(tc, utf8_lengths);
	tcase_add_test(tc, http_dates);
	tcase_add_test(tc, utf8_prefix_counts_code_points);
	tcase_add_test(tc, address_lists_are_checked);
	tcase_add_test(tc, addresses_match_their_prefixes);
	suite_add_tcase(s, tc);
	return check_run(s);
}

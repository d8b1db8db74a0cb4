/* Size and number parsing for the command line. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "util/parse.h"

static void test_sizes(void **state)
{
	static const struct { const char *in; uint64_t out; } ok[] = {
		{ "0", 0 }, { "4096", 4096 }, { "1K", 1024 }, { "256M", 256ULL << 20 },
		{ "256m", 256ULL << 20 }, { "8G", 8ULL << 30 }, { "3500M", 3500ULL << 20 },
		{ "2T", 2ULL << 40 }, { "512MiB", 512ULL << 20 }, { "1GB", 1ULL << 30 },
		{ "16777215T", 16777215ULL << 40 },
	};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(parse_size(ok[i].in, &v), 0);
		assert_int_equal(v, ok[i].out);
	}
}

static void test_bad_sizes(void **state)
{
	static const char *const bad[] = {
		"", "M", "-1G", "+1G", " 1G", "1G ", "1.5G", "1X", "1GG", "1Gi", "0x100", "1 G", "G1",
	};
	uint64_t v = 77;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse_size(bad[i], &v), -EINVAL);
		assert_int_equal(v, 77);   /* untouched on error */
	}
	assert_int_equal(parse_size(NULL, &v), -EINVAL);
	assert_int_equal(parse_size("16777216T", &v), -ERANGE);
	assert_int_equal(parse_size("18446744073709551616", &v), -ERANGE);
	assert_int_equal(parse_size("18446744073709551615", &v), 0);
}

static void test_uint(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(parse_uint("4", 1, 254, &v), 0);
	assert_int_equal(v, 4);
	assert_int_equal(parse_uint("0", 1, 254, &v), -ERANGE);
	assert_int_equal(parse_uint("255", 1, 254, &v), -ERANGE);
	assert_int_equal(parse_uint("4x", 1, 254, &v), -EINVAL);
	assert_int_equal(parse_uint("", 1, 254, &v), -EINVAL);
	assert_int_equal(parse_uint("-1", 0, 254, &v), -EINVAL);
	assert_int_equal(parse_uint("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
}

static void test_format_size(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(format_size(256ULL << 20, buf, sizeof(buf)), "256 MiB");
	assert_string_equal(format_size(1536ULL << 10, buf, sizeof(buf)), "1536 KiB");
	assert_string_equal(format_size(8ULL << 30, buf, sizeof(buf)), "8 GiB");
	assert_string_equal(format_size(1000, buf, sizeof(buf)), "1000 bytes");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_format_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* `popek run` option parsing: defaults, values, and one clear error line
 * for each mistake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/options.h"

#define ARGV(...) ((char *[]){ "run", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "run", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(o, err, ...) \
	options_parse_run(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (o), (err), sizeof(err))

static void test_defaults(void **state)
{
	struct run_options o;
	char err[256];
	char *argv[] = { "run", NULL };

	(void)state;
	assert_int_equal(options_parse_run(1, argv, &o, err, sizeof(err)), OPTIONS_RUN);
	assert_int_equal(o.cpus, 1);
	assert_int_equal(o.memory, 256ULL << 20);
	assert_null(o.kernel);
	assert_null(o.initrd);
	assert_null(o.cmdline);
}

static void test_values(void **state)
{
	struct run_options o;
	char err[256];

	(void)state;
	assert_int_equal(PARSE(&o, err, "--cpus", "4", "--memory", "3500M", "--kernel", "/k",
			       "--initrd", "/i", "--cmdline", "a=1 b"), OPTIONS_RUN);
	assert_int_equal(o.cpus, 4);
	assert_int_equal(o.memory, 3500ULL << 20);
	assert_string_equal(o.kernel, "/k");
	assert_string_equal(o.initrd, "/i");
	assert_string_equal(o.cmdline, "a=1 b");

	assert_int_equal(PARSE(&o, err, "--memory=8G", "--cpus=2", "-v", "-v"), OPTIONS_RUN);
	assert_int_equal(o.memory, 8ULL << 30);
	assert_int_equal(o.cpus, 2);
	assert_int_equal(o.verbosity, 2);
	assert_null(o.initrd);

	assert_int_equal(PARSE(&o, err, "--initrd=/boot/initrd.img"), OPTIONS_RUN);
	assert_string_equal(o.initrd, "/boot/initrd.img");
	assert_null(o.kernel);   /* the built-in guest gets it as its module */
	assert_int_equal(o.on_reboot, ON_REBOOT_EXIT);

	assert_int_equal(PARSE(&o, err, "--on-reboot", "restart"), OPTIONS_RUN);
	assert_int_equal(o.on_reboot, ON_REBOOT_RESTART);
	assert_int_equal(PARSE(&o, err, "--on-reboot=exit"), OPTIONS_RUN);
	assert_int_equal(o.on_reboot, ON_REBOOT_EXIT);

	assert_int_equal(PARSE(&o, err, "--disk", "/a.img", "--disk", "/b.img,ro,serial=B1"),
			 OPTIONS_RUN);
	assert_int_equal(o.ndisks, 2);
	assert_string_equal(o.disks[0].path, "/a.img");
	assert_false(o.disks[0].readonly);
	assert_string_equal(o.disks[1].path, "/b.img");
	assert_true(o.disks[1].readonly);
	assert_string_equal(o.disks[1].serial, "B1");
	assert_true(o.rng);
	assert_int_equal(PARSE(&o, err, "--no-rng"), OPTIONS_RUN);
	assert_false(o.rng);
}

static void expect_error(int ret, const char *err, const char *needle)
{
	assert_int_equal(ret, OPTIONS_ERROR);
	if (!strstr(err, needle))
		fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
	assert_null(strchr(err, '\n'));   /* one line */
}

static void test_errors(void **state)
{
	struct run_options o;
	char err[256];

	(void)state;
	expect_error(PARSE(&o, err, "--cpus", "0"), err, "--cpus 0: must be between 1 and");
	expect_error(PARSE(&o, err, "--cpus", "255"), err, "--cpus 255");
	expect_error(PARSE(&o, err, "--cpus", "two"), err, "--cpus two: not a number");
	expect_error(PARSE(&o, err, "--memory", "lots"), err, "--memory lots: not a size");
	expect_error(PARSE(&o, err, "--memory", "1M"), err, "at least 2M");
	expect_error(PARSE(&o, err, "--memory", "4000001"), err, "multiple of 4K");
	expect_error(PARSE(&o, err, "--memory", "99999999999T"), err, "too large");
	expect_error(PARSE(&o, err, "--kernel", ""), err, "--kernel: empty");
	expect_error(PARSE(&o, err, "--initrd", ""), err, "--initrd: empty");
	expect_error(PARSE(&o, err, "--initrd"), err, "--initrd: needs a value");
	expect_error(PARSE(&o, err, "--frobnicate"), err, "--frobnicate: unknown option");
	expect_error(PARSE(&o, err, "-x"), err, "-x: unknown option");
	expect_error(PARSE(&o, err, "--cpus"), err, "--cpus: needs a value");
	expect_error(PARSE(&o, err, "stray"), err, "stray: unexpected argument");
	expect_error(PARSE(&o, err, "--disk", "/d.img,rw"), err, "--disk /d.img,rw: unknown option 'rw'");
	expect_error(PARSE(&o, err, "--disk", ""), err, "empty path");
	expect_error(PARSE(&o, err, "--on-reboot", "reboot"), err, "--on-reboot reboot: must be exit or restart");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* util/log: the log file (Firecracker's line format, module filter,
 * truncation, pipes without a reader). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"

static char dir[] = "/tmp/popek-log-XXXXXX";

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	log_set_level(LOG_INFO);
	return 0;
}

static int teardown(void **state)
{
	char cmd[64];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static size_t slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, len - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return (size_t)n;
}

static void test_line_format_and_filter(void **state)
{
	char path[128], buf[4096], err[256];
	struct log_file_config cfg = { .path = path, .show_level = true, .show_origin = true,
				       .module = "util/", .instance_id = "vm7" };

	(void)state;
	snprintf(path, sizeof(path), "%s/a.log", dir);
	assert_int_equal(log_set_file(&cfg, err, sizeof(err)), 0);
	log_msg_at(LOG_WARN, "../src/util/parse.c", 12, "hello %d", 42);
	/* Outside the module: not in the file. */
	log_msg_at(LOG_WARN, "../src/virtio/net.c", 7, "filtered");
	log_msg_at(LOG_DEBUG, "../src/util/parse.c", 13, "below the level");
	slurp(path, buf, sizeof(buf));
	/* One line: time [instance:thread:LEVEL:origin] message */
	assert_int_equal(strchr(buf, '\n') - buf + 1, (long)strlen(buf));
	assert_int_equal(buf[4], '-');
	assert_int_equal(buf[10], 'T');
	assert_int_equal(buf[29], ' ');
	assert_non_null(strstr(buf, " [vm7:"));
	assert_non_null(strstr(buf, ":WARN:util/parse.c:12] hello 42\n"));
	assert_int_equal(access(path, F_OK), 0);
}

static void test_truncated_line_ends(void **state)
{
	char buf[64];
	size_t n;

	(void)state;
	n = log_format_file_line(buf, sizeof(buf), LOG_INFO, "x.c", 1,
				 "a message much longer than the sixty-four bytes of the buffer");
	assert_int_equal(n, sizeof(buf) - 1);
	assert_int_equal(buf[n - 1], '\n');
	assert_int_equal(buf[n], '\0');
}

static void test_errors_name_the_path(void **state)
{
	char path[128], err[256];
	struct log_file_config cfg = { .path = path };

	(void)state;
	snprintf(path, sizeof(path), "%s/missing/a.log", dir);
	assert_int_equal(log_set_file(&cfg, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));
	cfg.path = dir;
	assert_true(log_set_file(&cfg, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, dir));
}

static void test_fifo_without_reader(void **state)
{
	char path[128], err[256], buf[4096];
	struct log_file_config cfg = { .path = path };
	int rd;

	(void)state;
	snprintf(path, sizeof(path), "%s/p", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	/* Replaces the earlier file in place. */
	assert_int_equal(log_set_file(&cfg, err, sizeof(err)), 0);
	/* More than a pipe holds: lines are dropped, nothing blocks. */
	for (int i = 0; i < 800; i++)
		pr_info("line %d with some padding to fill the pipe quickly .................", i);
	rd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(rd >= 0);
	assert_true(read(rd, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "] line 0 with"));
	close(rd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_format_and_filter),
		cmocka_unit_test(test_truncated_line_ends),
		cmocka_unit_test(test_errors_name_the_path),
		cmocka_unit_test(test_fifo_without_reader),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

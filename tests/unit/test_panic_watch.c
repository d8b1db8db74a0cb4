/* The console panic matcher: both messages, across any split of the
 * stream, with near-misses and overlapping prefixes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/panic_watch.h"

static const char begin_msg[] =
	"[    1.234] Kernel panic - not syncing: Requested init /nonexistent failed (error -2).\r\n";
static const char end_msg[] =
	"[    1.240] ---[ end Kernel panic - not syncing: Requested init /nonexistent failed ]---\r\n";

static enum panic_event feed_str(struct panic_watch *w, const char *s)
{
	return panic_watch_feed(w, (const uint8_t *)s, strlen(s));
}

static void test_whole_messages(void **state)
{
	struct panic_watch w;

	(void)state;
	panic_watch_init(&w);
	assert_int_equal(feed_str(&w, "[    0.000] Linux version 6.1.0\r\n"), PANIC_NONE);
	assert_int_equal(feed_str(&w, begin_msg), PANIC_BEGIN);
	assert_int_equal(feed_str(&w, "Call Trace:\r\n <TASK>\r\n"), PANIC_NONE);
	assert_int_equal(feed_str(&w, end_msg), PANIC_END);
}

static void test_split_at_every_byte(void **state)
{
	struct panic_watch w;
	size_t n = strlen(end_msg);

	(void)state;
	/* One byte at a time: the event comes exactly when the last byte of
	 * the pattern arrives. */
	for (size_t cut = 1; cut < n; cut++) {
		panic_watch_init(&w);
		enum panic_event a = panic_watch_feed(&w, (const uint8_t *)end_msg, cut);
		enum panic_event b = panic_watch_feed(&w, (const uint8_t *)end_msg + cut, n - cut);

		assert_true(a == PANIC_END || b == PANIC_END);
		assert_false(a == PANIC_END && b == PANIC_END);
	}
	panic_watch_init(&w);
	int ends = 0;

	for (size_t i = 0; i < n; i++)
		ends += panic_watch_feed(&w, (const uint8_t *)end_msg + i, 1) == PANIC_END;
	assert_int_equal(ends, 1);
}

static void test_near_misses(void **state)
{
	struct panic_watch w;

	(void)state;
	panic_watch_init(&w);
	assert_int_equal(feed_str(&w, "Kernel panic - not syncin"), PANIC_NONE);
	assert_int_equal(feed_str(&w, "x\r\nKernel Panic - not syncing\r\n"), PANIC_NONE);
	assert_int_equal(feed_str(&w, "kernel panic - not syncing"), PANIC_NONE);
	assert_int_equal(feed_str(&w, "end Kernel panic - not syncin!"), PANIC_NONE);
	/* A prefix that restarts inside itself ("eend", "KKernel"). */
	assert_int_equal(feed_str(&w, "KKernel panic - not syncing"), PANIC_BEGIN);
	assert_int_equal(feed_str(&w, "eend Kernel panic - not syncing"), PANIC_END);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_messages),
		cmocka_unit_test(test_split_at_every_byte),
		cmocka_unit_test(test_near_misses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

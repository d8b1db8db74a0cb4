/* Token buckets at chosen times (rate_limiter_consume_at), then the real
 * timer path (rate_limiter_consume arms the timerfd, which fires when the
 * tokens are there). */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "virtio/rate_limiter.h"

#define MS 1000000ULL
#define T0 (1000 * MS)      /* any start; 0 means "not yet" to a bucket */

static int setup(void **state)
{
	static struct rate_limiter rl;

	assert_int_equal(rate_limiter_init(&rl), 0);
	*state = &rl;
	return 0;
}

static int teardown(void **state)
{
	rate_limiter_destroy(*state);
	return 0;
}

static void set(struct rate_limiter *rl, uint64_t bw_size, uint64_t bw_burst, uint64_t bw_ms,
		uint64_t ops_size, uint64_t ops_burst, uint64_t ops_ms)
{
	struct rate_limit_params p = {
		.bandwidth = { bw_size, bw_burst, bw_ms },
		.ops = { ops_size, ops_burst, ops_ms },
	};

	rate_limiter_update(rl, &p);
}

static bool at(struct rate_limiter *rl, uint64_t bytes, uint64_t t, uint64_t *wait)
{
	uint64_t w;

	return rate_limiter_consume_at(rl, bytes, t, wait ? wait : &w);
}

static void test_unlimited(void **state)
{
	struct rate_limiter *rl = *state;

	for (int i = 0; i < 10000; i++)
		assert_true(rate_limiter_consume(rl, 1 << 20));
	assert_int_equal(rate_limiter_throttled(rl), 0);
	/* size 0 or refill_time 0: that bucket does not limit. */
	set(rl, 0, 0, 100, 10, 0, 0);
	for (int i = 0; i < 1000; i++)
		assert_true(rate_limiter_consume(rl, 4096));
	assert_int_equal(rate_limiter_throttled(rl), 0);
}

static void test_ops_bucket(void **state)
{
	struct rate_limiter *rl = *state;
	uint64_t wait;

	/* 10 requests per 100 ms. */
	set(rl, 0, 0, 0, 10, 0, 100);
	for (int i = 0; i < 10; i++)
		assert_true(at(rl, 4096, T0, NULL));
	assert_false(at(rl, 4096, T0, &wait));
	/* One token takes a tenth of the refill time. */
	assert_int_equal(wait, 10 * MS);
	assert_false(at(rl, 4096, T0 + 10 * MS - 1, NULL));
	assert_true(at(rl, 4096, T0 + 10 * MS, NULL));
	assert_false(at(rl, 4096, T0 + 10 * MS, NULL));
	/* A long idle time fills the bucket, not more. */
	for (int i = 0; i < 10; i++)
		assert_true(at(rl, 0, T0 + 10000 * MS, NULL));
	assert_false(at(rl, 0, T0 + 10000 * MS, NULL));
}

static void test_bandwidth_rate_over_time(void **state)
{
	struct rate_limiter *rl = *state;
	uint64_t t = T0, served = 0;

	/* 1 MiB per second, requests of 1000 bytes (not a divisor of the
	 * rate: fractions of tokens must not get lost or created). */
	set(rl, 1 << 20, 0, 1000, 0, 0, 0);
	for (; t < T0 + 10000 * MS; t += MS / 4) {
		while (at(rl, 1000, t, NULL))
			served += 1000;
	}
	/* 10 s: the first full bucket plus 10 s of refill, within a
	 * request. */
	assert_true(served <= 11ULL * (1 << 20));
	assert_true(served >= 11ULL * (1 << 20) - 3000);
}

static void test_one_time_burst(void **state)
{
	struct rate_limiter *rl = *state;
	uint64_t wait;

	/* 100 bytes per second, 1000 bytes of burst at the start. */
	set(rl, 100, 1000, 1000, 0, 0, 0);
	assert_true(at(rl, 600, T0, NULL));     /* burst */
	assert_true(at(rl, 400, T0, NULL));     /* burst, now spent */
	assert_true(at(rl, 100, T0, NULL));     /* the bucket */
	assert_false(at(rl, 1, T0, &wait));
	assert_int_equal(wait, 10 * MS);
	/* The burst does not come back with time. */
	assert_true(at(rl, 100, T0 + 1000 * MS, NULL));
	assert_false(at(rl, 100, T0 + 1000 * MS, NULL));
	/* A burst covers part of a request, the bucket the rest. */
	set(rl, 100, 50, 1000, 0, 0, 0);
	assert_true(at(rl, 150, T0, NULL));
	assert_false(at(rl, 1, T0, NULL));
}

static void test_larger_than_bucket(void **state)
{
	struct rate_limiter *rl = *state;
	uint64_t wait;

	/* A 1000-byte bucket refilled per second, a 2500-byte request: it
	 * waits for a full bucket, passes, and leaves 1500 bytes of debt. */
	set(rl, 1000, 0, 1000, 0, 0, 0);
	assert_true(at(rl, 10, T0, NULL));
	assert_false(at(rl, 2500, T0, &wait));
	assert_int_equal(wait, 10 * MS);
	assert_true(at(rl, 2500, T0 + 10 * MS, NULL));
	assert_false(at(rl, 1, T0 + 10 * MS, &wait));
	assert_int_equal(wait, 1501 * MS);
	assert_true(at(rl, 1, T0 + 1511 * MS, NULL));
}

static void test_both_or_neither(void **state)
{
	struct rate_limiter *rl = *state;

	/* Plenty of bytes, 1 request per second: a request refused for its
	 * op keeps its bytes in the bandwidth bucket. */
	set(rl, 1000, 0, 1000, 1, 0, 1000);
	assert_true(at(rl, 500, T0, NULL));
	for (int i = 0; i < 100; i++)
		assert_false(at(rl, 500, T0, NULL));
	assert_true(at(rl, 500, T0 + 1000 * MS, NULL));
	/* And the other way round: no bytes, an op is not spent. */
	set(rl, 100, 0, 1000, 3, 0, 1000);
	assert_true(at(rl, 50, T0, NULL));
	assert_false(at(rl, 100, T0, NULL));
	assert_true(at(rl, 50, T0, NULL));
	assert_true(at(rl, 0, T0, NULL));       /* the third op is still there */
	assert_false(at(rl, 0, T0, NULL));
}

static void test_update(void **state)
{
	struct rate_limiter *rl = *state;
	struct rate_limit_params p = { .ops = { 1, 0, 1000 } };

	assert_true(rate_limiter_update(rl, &p));
	assert_true(rate_limiter_consume(rl, 0));
	assert_false(rate_limiter_consume(rl, 0));
	assert_int_equal(rate_limiter_throttled(rl), 1);
	/* Blocked: asking again does not count again, or re-arm. */
	assert_false(rate_limiter_consume(rl, 0));
	assert_int_equal(rate_limiter_throttled(rl), 1);
	/* The same limits again change nothing (a PATCH of the path only). */
	assert_false(rate_limiter_update(rl, &p));
	assert_false(rate_limiter_consume(rl, 0));
	/* New limits release the limiter with a full bucket... */
	p.ops.size = 2;
	assert_true(rate_limiter_update(rl, &p));
	assert_true(rate_limiter_consume(rl, 0));
	assert_true(rate_limiter_consume(rl, 0));
	assert_false(rate_limiter_consume(rl, 0));
	/* ... and none lifts them. */
	assert_true(rate_limiter_update(rl, NULL));
	for (int i = 0; i < 100; i++)
		assert_true(rate_limiter_consume(rl, 1 << 30));
}

static void test_extreme_values(void **state)
{
	struct rate_limiter *rl = *state;
	uint64_t wait;

	/* The API takes any refill_time up to 2^63 ms: 2^58 ms in ns is a
	 * multiple of 2^64, which must not become a division by zero. */
	set(rl, 0, 0, 0, 1, 0, 1ULL << 58);
	assert_true(at(rl, 0, T0, NULL));
	assert_false(at(rl, 0, T0 + 1000000 * MS, &wait));
	assert_true(wait > 0);
	set(rl, UINT64_MAX, UINT64_MAX, UINT64_MAX, 0, 0, 0);
	assert_true(at(rl, UINT64_MAX, T0, NULL));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_timer(void **state)
{
	struct rate_limiter *rl = *state;
	struct pollfd p = { .fd = rate_limiter_fd(rl), .events = POLLIN };
	double start, waited;

	/* 4 KiB per 100 ms: after the first 4 KiB, the next 2 KiB need
	 * 50 ms. */
	set(rl, 4096, 0, 100, 0, 0, 0);
	assert_true(rate_limiter_consume(rl, 4096));
	start = now_s();
	assert_false(rate_limiter_consume(rl, 2048));
	assert_int_equal(poll(&p, 1, 5000), 1);
	waited = now_s() - start;
	/* Not before the tokens are there; the upper bound only catches a
	 * timer armed for the wrong unit (seconds, not milliseconds). */
	assert_true(waited >= 0.049);
	assert_true(waited < 2.0);
	/* Until fired() is called, the limiter stays blocked. */
	assert_false(rate_limiter_consume(rl, 2048));
	rate_limiter_timer_fired(rl);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_true(rate_limiter_consume(rl, 2048));
	assert_int_equal(rate_limiter_throttled(rl), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unlimited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ops_bucket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bandwidth_rate_over_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_time_burst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_larger_than_bucket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_or_neither, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extreme_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timer, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

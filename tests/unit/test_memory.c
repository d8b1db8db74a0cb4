/* Guest memory layout around the 32-bit MMIO hole, and bounds of every
 * guest-address translation. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "vmm/memory.h"

static void test_layout_below_hole(void **state)
{
	struct guest_memory m;

	(void)state;
	assert_int_equal(guest_memory_layout(&m, MiB(256)), 0);
	assert_int_equal(m.nregions, 1);
	assert_int_equal(m.regions[0].gpa, 0);
	assert_int_equal(m.regions[0].size, MiB(256));
	assert_int_equal(guest_memory_end(&m), MiB(256));

	/* Exactly 3 GiB still fits below the hole. */
	assert_int_equal(guest_memory_layout(&m, GiB(3)), 0);
	assert_int_equal(m.nregions, 1);
	assert_int_equal(guest_memory_end(&m), GiB(3));
}

static void test_layout_split_around_hole(void **state)
{
	struct guest_memory m;

	(void)state;
	assert_int_equal(guest_memory_layout(&m, MiB(3500)), 0);
	assert_int_equal(m.nregions, 2);
	assert_int_equal(m.regions[0].gpa, 0);
	assert_int_equal(m.regions[0].size, GiB(3));
	assert_int_equal(m.regions[1].gpa, GiB(4));
	assert_int_equal(m.regions[1].size, MiB(3500) - GiB(3));

	assert_int_equal(guest_memory_layout(&m, GiB(8)), 0);
	assert_int_equal(m.regions[1].gpa, GiB(4));
	assert_int_equal(m.regions[1].size, GiB(5));
	assert_int_equal(guest_memory_end(&m), GiB(9));
}

static void test_layout_rejects_bad_sizes(void **state)
{
	struct guest_memory m;

	(void)state;
	assert_int_equal(guest_memory_layout(&m, 0), -EINVAL);
	assert_int_equal(guest_memory_layout(&m, MiB(1)), -EINVAL);
	assert_int_equal(guest_memory_layout(&m, MiB(256) + 1), -EINVAL);
	assert_int_equal(guest_memory_layout(&m, UINT64_MAX & ~0xfffULL), -EINVAL);
}

static void test_ptr_bounds(void **state)
{
	struct guest_memory m;
	uint8_t buf[16] = { 1, 2, 3 };

	(void)state;
	assert_int_equal(guest_memory_init(&m, MiB(3500)), 0);
	/* Inside each region. */
	assert_non_null(guest_memory_ptr(&m, 0, 4096));
	assert_non_null(guest_memory_ptr(&m, GiB(3) - 4096, 4096));
	assert_non_null(guest_memory_ptr(&m, GiB(4), 4096));
	assert_non_null(guest_memory_ptr(&m, MiB(3500) + GiB(1) - 1, 1));
	/* The hole, straddling its edges, past the end, and overflowing sums. */
	assert_null(guest_memory_ptr(&m, GiB(3), 1));
	assert_null(guest_memory_ptr(&m, GiB(3) - 1, 2));
	assert_null(guest_memory_ptr(&m, GiB(4) - 1, 2));
	assert_null(guest_memory_ptr(&m, MiB(3500) + GiB(1), 1));
	assert_null(guest_memory_ptr(&m, MiB(3500) + GiB(1) - 1, 2));
	assert_null(guest_memory_ptr(&m, 0x1000, UINT64_MAX));
	assert_null(guest_memory_ptr(&m, UINT64_MAX, 2));
	/* Both regions are one host mapping, but a range across the hole is
	 * not one guest range. */
	assert_null(guest_memory_ptr(&m, GiB(3) - 8, GiB(1) + 16));

	assert_int_equal(guest_memory_write(&m, GiB(4) + 8, buf, 3), 0);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(guest_memory_read(&m, GiB(4) + 8, buf, 3), 0);
	assert_int_equal(buf[2], 3);
	assert_int_equal(guest_memory_write(&m, GiB(3) - 1, buf, 2), -EFAULT);
	assert_int_equal(guest_memory_read(&m, GiB(3), buf, 1), -EFAULT);
	guest_memory_destroy(&m);
}

static void test_large_memory_is_lazy(void **state)
{
	struct guest_memory m;

	(void)state;
	/* 64 GiB must be reservable at once on a host with less RAM: the
	 * mapping is MAP_NORESERVE and only touched pages cost anything. */
	assert_int_equal(guest_memory_init(&m, GiB(64)), 0);
	uint8_t *top = guest_memory_ptr(&m, guest_memory_end(&m) - 1, 1);

	assert_non_null(top);
	*top = 0x5a;
	assert_int_equal(*top, 0x5a);
	guest_memory_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_below_hole),
		cmocka_unit_test(test_layout_split_around_hole),
		cmocka_unit_test(test_layout_rejects_bad_sizes),
		cmocka_unit_test(test_ptr_bounds),
		cmocka_unit_test(test_large_memory_is_lazy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

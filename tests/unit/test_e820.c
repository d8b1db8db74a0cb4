/* e820_build: the guest memory map for representative RAM sizes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "vmm/memory.h"

static void check_map(uint64_t ram, const struct e820_entry *want, int nwant)
{
	struct e820_entry got[E820_MAX_ENTRIES];
	struct guest_memory mem;
	int n, i;

	/* e820_build only reads the regions: no host mapping needed. */
	assert_int_equal(guest_memory_layout(&mem, ram), 0);
	n = e820_build(&mem, got, E820_MAX_ENTRIES);
	assert_int_equal(n, nwant);
	for (i = 0; i < n; i++) {
		assert_int_equal(got[i].addr, want[i].addr);
		assert_int_equal(got[i].size, want[i].size);
		assert_int_equal(got[i].type, want[i].type);
	}
}

#define LOW_ENTRIES(low_end) \
	{ 0, 0x9fc00, E820_RAM }, \
	{ 0x9fc00, 0x400, E820_RESERVED }, \
	{ 0xf0000, 0x10000, E820_RESERVED }, \
	{ 0x100000, (low_end) - 0x100000, E820_RAM }

static void test_128m(void **state)
{
	const struct e820_entry want[] = { LOW_ENTRIES(MiB(128)) };

	(void)state;
	check_map(MiB(128), want, 4);
}

static void test_minimum(void **state)
{
	const struct e820_entry want[] = { LOW_ENTRIES(LAYOUT_MIN_RAM) };

	(void)state;
	check_map(LAYOUT_MIN_RAM, want, 4);
}

static void test_3g_exactly(void **state)
{
	const struct e820_entry want[] = { LOW_ENTRIES(GiB(3)) };

	(void)state;
	/* All of it fits below the hole: nothing above 4 GiB. */
	check_map(GiB(3), want, 4);
}

static void test_3500m(void **state)
{
	const struct e820_entry want[] = {
		LOW_ENTRIES(GiB(3)),
		{ GiB(4), MiB(3500) - GiB(3), E820_RAM },
	};

	(void)state;
	check_map(MiB(3500), want, 5);
}

static void test_8g(void **state)
{
	const struct e820_entry want[] = {
		LOW_ENTRIES(GiB(3)),
		{ GiB(4), GiB(5), E820_RAM },
	};

	(void)state;
	check_map(GiB(8), want, 5);
}

static void test_no_overlap_sorted(void **state)
{
	struct e820_entry e[E820_MAX_ENTRIES];
	struct guest_memory mem;
	int n, i;

	(void)state;
	assert_int_equal(guest_memory_layout(&mem, GiB(8)), 0);
	n = e820_build(&mem, e, E820_MAX_ENTRIES);
	assert_true(n > 0);
	for (i = 1; i < n; i++)
		assert_true(e[i - 1].addr + e[i - 1].size <= e[i].addr);
	/* Nothing in the VGA window or the MMIO hole is reported. */
	for (i = 0; i < n; i++) {
		assert_false(e[i].addr < LAYOUT_BIOS_START &&
			     e[i].addr + e[i].size > LAYOUT_VGA_HOLE_START);
		assert_false(e[i].addr < LAYOUT_MMIO_HOLE_END &&
			     e[i].addr + e[i].size > LAYOUT_MMIO_HOLE_START);
	}
}

static void test_too_small_buffer(void **state)
{
	struct e820_entry e[E820_MAX_ENTRIES];
	struct guest_memory mem;

	(void)state;
	assert_int_equal(guest_memory_layout(&mem, GiB(8)), 0);
	assert_int_equal(e820_build(&mem, e, 4), -ENOSPC);
	assert_int_equal(e820_build(&mem, e, 0), -ENOSPC);
	assert_int_equal(e820_build(&mem, e, 5), 5);
}

static void test_empty_memory(void **state)
{
	struct e820_entry e[E820_MAX_ENTRIES];
	struct guest_memory mem = { 0 };

	(void)state;
	assert_int_equal(e820_build(&mem, e, E820_MAX_ENTRIES), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_128m),
		cmocka_unit_test(test_minimum),
		cmocka_unit_test(test_3g_exactly),
		cmocka_unit_test(test_3500m),
		cmocka_unit_test(test_8g),
		cmocka_unit_test(test_no_overlap_sorted),
		cmocka_unit_test(test_too_small_buffer),
		cmocka_unit_test(test_empty_memory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Bus registration (overlap refused, sorted) and dispatch (offsets, widths,
 * unclaimed accesses read all-ones and are counted). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/bus.h"

struct fake_dev {
	uint64_t last_offset;
	uint32_t last_len;
	uint8_t last_data[8];
	int reads, writes;
	uint8_t fill;
};

static void fake_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct fake_dev *d = opaque;

	d->reads++;
	d->last_offset = offset;
	d->last_len = len;
	memset(data, d->fill, len);
}

static void fake_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct fake_dev *d = opaque;

	d->writes++;
	d->last_offset = offset;
	d->last_len = len;
	memcpy(d->last_data, data, len);
}

static const struct bus_ops fake_ops = { .read = fake_read, .write = fake_write };

static void test_register_rejects_overlap(void **state)
{
	struct bus bus;
	struct fake_dev a = { 0 };

	(void)state;
	bus_init(&bus, "pio");
	assert_int_equal(bus_register(&bus, 0x3f8, 8, &fake_ops, &a, "com1"), 0);
	/* Every kind of overlap: same, inside, straddling either end, covering. */
	assert_int_equal(bus_register(&bus, 0x3f8, 8, &fake_ops, &a, "x"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x3fa, 1, &fake_ops, &a, "x"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x3f0, 9, &fake_ops, &a, "x"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x3ff, 4, &fake_ops, &a, "x"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x300, 0x200, &fake_ops, &a, "x"), -EEXIST);
	/* Adjacent ranges are fine. */
	assert_int_equal(bus_register(&bus, 0x3f0, 8, &fake_ops, &a, "below"), 0);
	assert_int_equal(bus_register(&bus, 0x400, 1, &fake_ops, &a, "above"), 0);
	assert_int_equal(bus.count, 3);
	assert_true(bus.ranges[0].base < bus.ranges[1].base);
	assert_true(bus.ranges[1].base < bus.ranges[2].base);
	bus_destroy(&bus);
}

static void test_register_rejects_bad_ranges(void **state)
{
	struct bus bus;

	(void)state;
	bus_init(&bus, "mmio");
	assert_int_equal(bus_register(&bus, 0x1000, 0, &fake_ops, NULL, "empty"), -EINVAL);
	assert_int_equal(bus_register(&bus, UINT64_MAX - 1, 4, &fake_ops, NULL, "wraps"), -EINVAL);
	assert_int_equal(bus_register(&bus, 0x1000, 4, NULL, NULL, "no ops"), -EINVAL);
	/* The very top of the address space is a valid range. */
	assert_int_equal(bus_register(&bus, UINT64_MAX, 1, &fake_ops, NULL, "top"), 0);
	assert_int_equal(bus_register(&bus, 0, 1, &fake_ops, NULL, "bottom"), 0);
	bus_destroy(&bus);
}

static void test_dispatch_offsets_and_data(void **state)
{
	struct bus bus;
	struct fake_dev a = { .fill = 0x11 }, b = { .fill = 0x22 };
	uint8_t buf[4];

	(void)state;
	bus_init(&bus, "pio");
	assert_int_equal(bus_register(&bus, 0x60, 1, &fake_ops, &a, "a"), 0);
	assert_int_equal(bus_register(&bus, 0xcf8, 8, &fake_ops, &b, "b"), 0);

	assert_true(bus_read(&bus, 0x60, buf, 1));
	assert_int_equal(buf[0], 0x11);
	assert_int_equal(a.last_offset, 0);

	assert_true(bus_write(&bus, 0xcfc, (const uint8_t *)"\x01\x02\x03\x04", 4));
	assert_int_equal(b.writes, 1);
	assert_int_equal(b.last_offset, 4);
	assert_int_equal(b.last_len, 4);
	assert_memory_equal(b.last_data, "\x01\x02\x03\x04", 4);

	assert_true(bus_read(&bus, 0xcfe, buf, 2));
	assert_int_equal(b.last_offset, 6);
	assert_int_equal(buf[0], 0x22);
	assert_int_equal(buf[1], 0x22);
	assert_int_equal(a.writes, 0);
	bus_destroy(&bus);
}

static void test_unclaimed_reads_ones_and_counts(void **state)
{
	struct bus bus;
	struct fake_dev a = { .fill = 0x55 };
	uint8_t buf[8];

	(void)state;
	bus_init(&bus, "pio");
	assert_int_equal(bus_register(&bus, 0x70, 2, &fake_ops, &a, "a"), 0);

	memset(buf, 0, sizeof(buf));
	assert_false(bus_read(&bus, 0x80, buf, 4));
	assert_memory_equal(buf, "\xff\xff\xff\xff", 4);
	assert_false(bus_write(&bus, 0x81, buf, 1));
	assert_false(bus_write(&bus, 0x6f, buf, 1));
	/* An access that straddles the end of a range is nobody's. */
	assert_false(bus_read(&bus, 0x71, buf, 2));
	assert_int_equal(a.reads, 0);
	assert_int_equal(a.writes, 0);
	assert_int_equal(atomic_load(&bus.unclaimed_reads), 2);
	assert_int_equal(atomic_load(&bus.unclaimed_writes), 2);
	bus_destroy(&bus);
}

static void test_find_many_ranges(void **state)
{
	struct bus bus;
	struct fake_dev d[64];

	(void)state;
	bus_init(&bus, "mmio");
	/* Registered out of order; lookup must still find each. */
	for (int i = 63; i >= 0; i--)
		assert_int_equal(bus_register(&bus, 0x10000 + (uint64_t)i * 0x100, 0x80, &fake_ops,
					      &d[i], "d"), 0);
	for (int i = 0; i < 64; i++) {
		const struct bus_range *r = bus_find(&bus, 0x10000 + (uint64_t)i * 0x100 + 0x7f, 1);

		assert_non_null(r);
		assert_ptr_equal(r->opaque, &d[i]);
		assert_null(bus_find(&bus, 0x10000 + (uint64_t)i * 0x100 + 0x80, 1));
	}
	assert_null(bus_find(&bus, 0xffff, 1));
	bus_destroy(&bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_rejects_overlap),
		cmocka_unit_test(test_register_rejects_bad_ranges),
		cmocka_unit_test(test_dispatch_offsets_and_data),
		cmocka_unit_test(test_unclaimed_reads_ones_and_counts),
		cmocka_unit_test(test_find_many_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* isa-debug-exit: status (v << 1) | 1 for writes of any width; reads 0.
 * Also the POST port, which has no test program of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/debug_exit.h"
#include "devices/post.h"

struct fake_stopper {
	int calls;
	enum vm_stop_reason reason;
	int status;
};

static void fake_stop(void *opaque, enum vm_stop_reason reason, int status)
{
	struct fake_stopper *st = opaque;

	st->calls++;
	st->reason = reason;
	st->status = status;
}

static struct debug_exit *make(struct fake_stopper *st)
{
	struct vm_stopper stopper = { .stop = fake_stop, .opaque = st };
	struct debug_exit *dev = debug_exit_create(&stopper);

	assert_non_null(dev);
	return dev;
}

static int write_status(uint64_t offset, uint32_t v, uint32_t len)
{
	struct fake_stopper st = { 0 };
	struct debug_exit *dev = make(&st);
	uint8_t data[8] = { 0 };
	uint32_t i;

	for (i = 0; i < len && i < 4; i++)
		data[i] = (uint8_t)(v >> (8 * i));
	debug_exit_bus_ops.write(dev, offset, data, len);
	debug_exit_destroy(dev);
	assert_int_equal(st.calls, 1);
	assert_int_equal(st.reason, VM_STOP_DEBUG_EXIT);
	return st.status;
}

static void test_byte_writes(void **state)
{
	(void)state;
	assert_int_equal(write_status(0, 0, 1), 1);
	assert_int_equal(write_status(0, 1, 1), 3);
	assert_int_equal(write_status(0, 0x7f, 1), 0xff);
	assert_int_equal(write_status(0, 0x10, 1), 0x21);
	/* 8-bit exit status after truncation: 0x80 -> 0x101 -> 1. */
	assert_int_equal(write_status(0, 0x80, 1), 0x101);
	assert_int_equal(write_status(0, 0x80, 1) & 0xff, 1);
}

static void test_wide_writes(void **state)
{
	(void)state;
	/* Little-endian, all bytes count. */
	assert_int_equal(write_status(0, 0x1234, 2), 0x2469);
	assert_int_equal(write_status(0, 0x0100, 2), 0x201);
	assert_int_equal(write_status(0, 0x00010000, 4), 0x20001);
	assert_int_equal(write_status(0, 0x7fffffff, 4), -1);
	/* Any offset inside the 4 ports, as QEMU. */
	assert_int_equal(write_status(2, 0x21, 1), 0x43);
	assert_int_equal(write_status(3, 0x05, 1), 0x0b);
	/* An 8-byte write keeps the low 4 bytes. */
	assert_int_equal(write_status(0, 0x11, 8), 0x23);
}

static void test_reads(void **state)
{
	struct fake_stopper st = { 0 };
	struct debug_exit *dev = make(&st);
	uint8_t data[4];

	(void)state;
	memset(data, 0xaa, sizeof(data));
	debug_exit_bus_ops.read(dev, 0, data, 4);
	assert_int_equal(data[0] | data[1] | data[2] | data[3], 0);
	memset(data, 0xaa, sizeof(data));
	debug_exit_bus_ops.read(dev, 3, data, 1);
	assert_int_equal(data[0], 0);
	assert_int_equal(st.calls, 0);
	debug_exit_destroy(dev);
}

static void test_post_port(void **state)
{
	static struct post_port post;
	uint8_t v = 0x5a, d[2];

	(void)state;
	post_port_init(&post);
	post_bus_ops.read(&post, 0, d, 1);
	assert_int_equal(d[0], 0);
	post_bus_ops.write(&post, 0, &v, 1);
	assert_int_equal(post_port_last(&post), 0x5a);
	post_bus_ops.read(&post, 0, d, 2);
	assert_int_equal(d[0], 0x5a);
	assert_int_equal(d[1], 0xff);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_byte_writes),
		cmocka_unit_test(test_wide_writes),
		cmocka_unit_test(test_reads),
		cmocka_unit_test(test_post_port),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

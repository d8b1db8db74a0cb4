/* i8042 controller: status, the probe commands Linux sends, and reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "devices/i8042.h"

#define STR_OBF 0x01
#define STR_IBF 0x02
#define STR_SYS 0x04
#define STR_CMD 0x08

struct fake_stopper {
	int calls;
	enum vm_stop_reason reason;
	int status;
};

struct fixture {
	struct fake_stopper st;
	struct i8042 *kbc;
};

static void fake_stop(void *opaque, enum vm_stop_reason reason, int status)
{
	struct fake_stopper *st = opaque;

	st->calls++;
	st->reason = reason;
	st->status = status;
}

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	struct vm_stopper stopper = { .stop = fake_stop, .opaque = &f->st };

	f->kbc = i8042_create(&stopper);
	assert_non_null(f->kbc);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	i8042_destroy(f->kbc);
	test_free(f);
	return 0;
}

static uint8_t status(struct fixture *f)
{
	uint8_t v;

	i8042_cmd_ops.read(f->kbc, 0, &v, 1);
	return v;
}

static uint8_t data_in(struct fixture *f)
{
	uint8_t v;

	i8042_data_ops.read(f->kbc, 0, &v, 1);
	return v;
}

static void command(struct fixture *f, uint8_t cmd)
{
	i8042_cmd_ops.write(f->kbc, 0, &cmd, 1);
}

static void data_out(struct fixture *f, uint8_t v)
{
	i8042_data_ops.write(f->kbc, 0, &v, 1);
}

static void test_idle_status(void **state)
{
	struct fixture *f = *state;
	uint8_t st = status(f);

	assert_int_equal(st & (STR_OBF | STR_IBF), 0);
	assert_int_equal(st & STR_SYS, STR_SYS);
	assert_int_equal(f->st.calls, 0);
}

static void test_reset_command(void **state)
{
	struct fixture *f = *state;

	command(f, 0xfe);
	assert_int_equal(f->st.calls, 1);
	assert_int_equal(f->st.reason, VM_STOP_RESET);
	assert_int_equal(f->st.status, 0);
}

static void test_pulse_without_reset_bit(void **state)
{
	struct fixture *f = *state;

	/* 0xFF pulses nothing; 0xFD pulses bit 1 only. */
	command(f, 0xff);
	command(f, 0xfd);
	assert_int_equal(f->st.calls, 0);
	command(f, 0xf0);
	assert_int_equal(f->st.calls, 1);
	assert_int_equal(f->st.reason, VM_STOP_RESET);
}

static void test_self_test(void **state)
{
	struct fixture *f = *state;

	command(f, 0xaa);
	assert_int_equal(status(f) & (STR_OBF | STR_CMD), STR_OBF | STR_CMD);
	assert_int_equal(data_in(f), 0x55);
	assert_int_equal(status(f) & STR_OBF, 0);
	assert_int_equal(status(f) & STR_SYS, STR_SYS);
}

static void test_port_tests(void **state)
{
	struct fixture *f = *state;

	command(f, 0xab);
	assert_int_equal(status(f) & STR_OBF, STR_OBF);
	assert_int_equal(data_in(f), 0x00);
	command(f, 0xa9);
	assert_int_equal(status(f) & STR_OBF, STR_OBF);
	assert_int_equal(data_in(f), 0x00);
	assert_int_equal(status(f) & STR_OBF, 0);
}

static void test_command_byte_round_trip(void **state)
{
	struct fixture *f = *state;

	command(f, 0x20);
	assert_int_equal(status(f) & STR_OBF, STR_OBF);
	assert_int_equal(data_in(f) & 0x04, 0x04);	/* system flag */

	command(f, 0x60);
	assert_int_equal(status(f) & STR_OBF, 0);
	data_out(f, 0x47);
	assert_int_equal(status(f) & STR_CMD, 0);
	command(f, 0x20);
	assert_int_equal(data_in(f), 0x47);

	/* Port enable/disable commands flip CTR bits 4 and 5. */
	command(f, 0xad);
	command(f, 0xa7);
	command(f, 0x20);
	assert_int_equal(data_in(f), 0x47 | 0x10 | 0x20);
	command(f, 0xae);
	command(f, 0xa8);
	command(f, 0x20);
	assert_int_equal(data_in(f), 0x47);

	/* Clearing CTR bit 2 clears the status system flag. */
	command(f, 0x60);
	data_out(f, 0x00);
	assert_int_equal(status(f) & STR_SYS, 0);
	assert_int_equal(f->st.calls, 0);
}

static void test_write_output_port(void **state)
{
	struct fixture *f = *state;

	/* Bit 0 set: no reset; readable back through 0xD0. */
	command(f, 0xd1);
	data_out(f, 0xdf);
	assert_int_equal(f->st.calls, 0);
	command(f, 0xd0);
	assert_int_equal(data_in(f), 0xdf);

	command(f, 0xd1);
	data_out(f, 0xde);
	assert_int_equal(f->st.calls, 1);
	assert_int_equal(f->st.reason, VM_STOP_RESET);
}

static void test_queue_order_and_stray(void **state)
{
	struct fixture *f = *state;
	uint8_t d[2];

	command(f, 0xaa);
	command(f, 0xab);
	command(f, 0x20);
	assert_int_equal(data_in(f), 0x55);
	assert_int_equal(data_in(f), 0x00);
	assert_int_equal(status(f) & STR_OBF, STR_OBF);
	data_in(f);
	assert_int_equal(status(f) & STR_OBF, 0);

	/* Unknown commands and device bytes are ignored. */
	command(f, 0x12);
	data_out(f, 0xf2);
	assert_int_equal(status(f) & STR_OBF, 0);
	assert_int_equal(f->st.calls, 0);

	/* A command waiting for data is dropped by a new command. */
	command(f, 0xd1);
	command(f, 0x20);
	data_out(f, 0x00);
	assert_int_equal(f->st.calls, 0);

	/* Wide reads fill with 0xff; other offsets are inert. */
	i8042_cmd_ops.read(f->kbc, 0, d, 2);
	assert_int_equal(d[1], 0xff);
	i8042_data_ops.read(f->kbc, 1, d, 1);
	assert_int_equal(d[0], 0xff);
	d[0] = 0xfe;
	i8042_cmd_ops.write(f->kbc, 1, d, 1);
	assert_int_equal(f->st.calls, 0);
}

/* Each test gets a fresh device. */
#define DEVICE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		DEVICE_TEST(test_idle_status),
		DEVICE_TEST(test_reset_command),
		DEVICE_TEST(test_pulse_without_reset_bit),
		DEVICE_TEST(test_self_test),
		DEVICE_TEST(test_port_tests),
		DEVICE_TEST(test_command_byte_round_trip),
		DEVICE_TEST(test_write_output_port),
		DEVICE_TEST(test_queue_order_and_stray),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

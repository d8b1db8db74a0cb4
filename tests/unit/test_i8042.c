/* i8042 controller: status, the probe commands Linux sends, and reset;
 * the keyboard behind it: atkbd's probe commands, IRQ 1, Ctrl-Alt-Del. */
#include <errno.h>
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

/* IRQ 1 as the IOAPIC sees it: the level, and how many rising edges. */
struct fake_irq {
	bool level;
	int rises;
	unsigned gsi;
};

struct fixture {
	struct fake_stopper st;
	struct fake_irq irq;
	struct i8042 *kbc;
};

static void fake_set_level(void *opaque, unsigned gsi, bool level)
{
	struct fake_irq *irq = opaque;

	if (level && !irq->level)
		irq->rises++;
	irq->level = level;
	irq->gsi = gsi;
}

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
	struct irq_line irq = {
		.set_level = fake_set_level, .opaque = &f->irq, .gsi = I8042_KBD_IRQ,
	};

	f->kbc = i8042_create(&stopper);
	assert_non_null(f->kbc);
	i8042_set_kbd_irq(f->kbc, &irq);
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

	/* Unknown commands and bytes for the (absent) mouse are ignored. */
	command(f, 0x12);
	command(f, 0xd4);
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

/* --- The keyboard --- */

#define CTR_KBDINT	0x01
#define CTR_SYS		0x04
#define CTR_KBDDIS	0x10
#define CTR_XLATE	0x40

static void write_ctr(struct fixture *f, uint8_t ctr)
{
	command(f, 0x60);
	data_out(f, ctr);
}

/* Reads n bytes at 0x60 as an interrupt handler does, checking that each
 * one came with a rising edge of IRQ 1, and that nothing follows. */
static void expect_bytes(struct fixture *f, const uint8_t *want, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int rises = f->irq.rises;
		uint8_t got;

		assert_true(status(f) & STR_OBF);
		assert_true(f->irq.level);
		got = data_in(f);
		if (got != want[i])
			fail_msg("byte %zu: 0x%02x, want 0x%02x", i, got, want[i]);
		if (i + 1 < n)
			assert_int_equal(f->irq.rises, rises + 1);
	}
	assert_int_equal(status(f) & STR_OBF, 0);
	assert_false(f->irq.level);
}

#define EXPECT(f, ...) do { \
	static const uint8_t want_[] = { __VA_ARGS__ }; \
	expect_bytes(f, want_, sizeof(want_)); \
} while (0)

/* What Linux's i8042 and atkbd drivers do, in order: the controller's
 * self-test, interrupts on (translation as the BIOS left it), then the
 * keyboard: disable, get ID, LEDs, typematic rate, enable. */
static void test_atkbd_probe(void **state)
{
	struct fixture *f = *state;

	command(f, 0xaa);
	assert_int_equal(data_in(f), 0x55);
	assert_false(f->irq.level);	/* interrupts still off */
	assert_int_equal(f->irq.rises, 0);
	write_ctr(f, CTR_XLATE | CTR_SYS | CTR_KBDINT);
	assert_int_equal(f->irq.gsi, 0);	/* no call yet */

	data_out(f, 0xf5);
	EXPECT(f, 0xfa);
	assert_int_equal(f->irq.gsi, 1);
	/* MF2 keyboard; the translating controller turns 83 into 41. */
	data_out(f, 0xf2);
	EXPECT(f, 0xfa, 0xab, 0x41);
	data_out(f, 0xed);
	EXPECT(f, 0xfa);
	data_out(f, 0x00);
	EXPECT(f, 0xfa);
	data_out(f, 0xf3);
	data_out(f, 0x20);
	EXPECT(f, 0xfa, 0xfa);
	data_out(f, 0xf4);
	EXPECT(f, 0xfa);
	/* Reset: ACK, then the self-test passed. */
	data_out(f, 0xff);
	EXPECT(f, 0xfa, 0xaa);
	data_out(f, 0xee);
	EXPECT(f, 0xee);
	assert_int_equal(f->irq.rises, 12);

	/* Without translation: the keyboard's own bytes. */
	write_ctr(f, CTR_SYS | CTR_KBDINT);
	data_out(f, 0xf2);
	EXPECT(f, 0xfa, 0xab, 0x83);
	assert_int_equal(f->st.calls, 0);
}

static void test_leds_and_scan_sets(void **state)
{
	struct fixture *f = *state;

	write_ctr(f, CTR_SYS | CTR_KBDINT);
	/* LED command and its argument, each ACKed. */
	data_out(f, 0xed);
	data_out(f, 0x07);
	EXPECT(f, 0xfa, 0xfa);
	/* A command byte where the argument should be starts over. */
	data_out(f, 0xed);
	data_out(f, 0xf2);
	EXPECT(f, 0xfa, 0xfa, 0xab, 0x83);

	/* Scan code set: get (2), set 3, get, bad set, set 1. */
	data_out(f, 0xf0);
	data_out(f, 0x00);
	EXPECT(f, 0xfa, 0xfa, 0x02);
	data_out(f, 0xf0);
	data_out(f, 0x03);
	EXPECT(f, 0xfa, 0xfa);
	data_out(f, 0xf0);
	data_out(f, 0x00);
	EXPECT(f, 0xfa, 0xfa, 0x03);
	data_out(f, 0xf0);
	data_out(f, 0x04);
	EXPECT(f, 0xfa, 0xfe);
	/* Set-3 key type commands are ACKed, unknown ones get a resend. */
	data_out(f, 0xfa);
	data_out(f, 0x12);
	EXPECT(f, 0xfa, 0xfe);
	/* Defaults bring set 2 back. */
	data_out(f, 0xf6);
	data_out(f, 0xf0);
	data_out(f, 0x00);
	EXPECT(f, 0xfa, 0xfa, 0xfa, 0x02);
	/* Translated, the set number reads as the controller maps it. */
	write_ctr(f, CTR_XLATE | CTR_SYS | CTR_KBDINT);
	data_out(f, 0xf0);
	data_out(f, 0x00);
	EXPECT(f, 0xfa, 0xfa, 0x41);
}

static void test_irq_needs_kbdint(void **state)
{
	struct fixture *f = *state;

	/* Interrupts off: the bytes wait with OBF, IRQ 1 stays low. */
	data_out(f, 0xf2);
	assert_true(status(f) & STR_OBF);
	assert_false(f->irq.level);
	assert_int_equal(data_in(f), 0xfa);
	assert_int_equal(data_in(f), 0xab);
	assert_int_equal(data_in(f), 0x41);
	assert_int_equal(f->irq.rises, 0);
	/* Turning them on with a byte waiting raises the line. */
	data_out(f, 0xee);
	assert_int_equal(f->irq.rises, 0);
	write_ctr(f, CTR_XLATE | CTR_SYS | CTR_KBDINT);
	assert_true(f->irq.level);
	EXPECT(f, 0xee);
	/* Controller replies raise it too, as an 8042 does. */
	command(f, 0x20);
	EXPECT(f, CTR_XLATE | CTR_SYS | CTR_KBDINT);
}

static void test_ctrl_alt_del_translated(void **state)
{
	struct fixture *f = *state;

	write_ctr(f, CTR_XLATE | CTR_SYS | CTR_KBDINT);
	assert_int_equal(i8042_send_ctrl_alt_del(f->kbc), 0);
	/* Set 1: Ctrl, Alt, Delete pressed, then released backwards. */
	EXPECT(f, 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d);
	assert_int_equal(f->irq.rises, 8);
	assert_int_equal(f->st.calls, 0);
	/* Empty again: a read returns the last byte, without interrupts. */
	assert_int_equal(data_in(f), 0x9d);
	assert_int_equal(f->irq.rises, 8);
}

static void test_ctrl_alt_del_sets(void **state)
{
	struct fixture *f = *state;

	write_ctr(f, CTR_SYS | CTR_KBDINT);
	assert_int_equal(i8042_send_ctrl_alt_del(f->kbc), 0);
	EXPECT(f, 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14);

	data_out(f, 0xf0);
	data_out(f, 0x01);
	EXPECT(f, 0xfa, 0xfa);
	assert_int_equal(i8042_send_ctrl_alt_del(f->kbc), 0);
	EXPECT(f, 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d);

	data_out(f, 0xf0);
	data_out(f, 0x03);
	EXPECT(f, 0xfa, 0xfa);
	assert_int_equal(i8042_send_ctrl_alt_del(f->kbc), 0);
	EXPECT(f, 0x11, 0x19, 0x64, 0xf0, 0x64, 0xf0, 0x19, 0xf0, 0x11);
}

static void test_ctrl_alt_del_overflow(void **state)
{
	struct fixture *f = *state;
	int i;

	write_ctr(f, CTR_XLATE | CTR_SYS | CTR_KBDINT);
	/* The keyboard holds 16 bytes; the sequence is 11 in set 2. */
	assert_int_equal(i8042_send_ctrl_alt_del(f->kbc), 0);
	for (i = 0; i < 100; i++)
		assert_int_equal(i8042_send_ctrl_alt_del(f->kbc), -ENOSPC);
	/* Nothing of the refused ones got in: one whole sequence. */
	EXPECT(f, 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d);
	assert_int_equal(i8042_send_ctrl_alt_del(f->kbc), 0);
	EXPECT(f, 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d);

	/* Reading part of it makes room: the next one queues behind. */
	assert_int_equal(i8042_send_ctrl_alt_del(f->kbc), 0);
	for (i = 0; i < 6; i++)
		data_in(f);
	assert_int_equal(i8042_send_ctrl_alt_del(f->kbc), 0);
	EXPECT(f, 0xb8, 0x9d, 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d);

	/* A keyboard the guest disabled (atkbd between probe and enable)
	 * takes no keys; once enabled again it does. */
	data_out(f, 0xf5);
	EXPECT(f, 0xfa);
	assert_int_equal(i8042_send_ctrl_alt_del(f->kbc), -EAGAIN);
	assert_int_equal(status(f) & STR_OBF, 0);
	data_out(f, 0xf4);
	EXPECT(f, 0xfa);
	assert_int_equal(i8042_send_ctrl_alt_del(f->kbc), 0);
	/* A reset drops what the guest has not read. */
	data_out(f, 0xff);
	assert_int_equal(data_in(f), 0x1d);	/* already in the buffer */
	EXPECT(f, 0xfa, 0xaa);
}

static void test_kbd_interface_disabled(void **state)
{
	struct fixture *f = *state;

	write_ctr(f, CTR_XLATE | CTR_SYS | CTR_KBDINT | CTR_KBDDIS);
	assert_int_equal(i8042_send_ctrl_alt_del(f->kbc), 0);
	/* The clock line is held: the keyboard keeps its bytes. */
	assert_int_equal(status(f) & STR_OBF, 0);
	assert_false(f->irq.level);
	command(f, 0xae);
	EXPECT(f, 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d);

	/* Writing to the keyboard enables the interface again. */
	command(f, 0xad);
	data_out(f, 0xf4);
	EXPECT(f, 0xfa);
	command(f, 0x20);
	assert_int_equal(data_in(f) & CTR_KBDDIS, 0);
}

static void test_no_irq_line(void **state)
{
	struct fixture *f = *state;

	/* Without a line (or after taking it away) bytes still flow. */
	i8042_set_kbd_irq(f->kbc, NULL);
	write_ctr(f, CTR_XLATE | CTR_SYS | CTR_KBDINT);
	assert_int_equal(i8042_send_ctrl_alt_del(f->kbc), 0);
	assert_int_equal(data_in(f), 0x1d);
	assert_int_equal(f->irq.rises, 0);
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
		DEVICE_TEST(test_atkbd_probe),
		DEVICE_TEST(test_leds_and_scan_sets),
		DEVICE_TEST(test_irq_needs_kbdint),
		DEVICE_TEST(test_ctrl_alt_del_translated),
		DEVICE_TEST(test_ctrl_alt_del_sets),
		DEVICE_TEST(test_ctrl_alt_del_overflow),
		DEVICE_TEST(test_kbd_interface_disabled),
		DEVICE_TEST(test_no_irq_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

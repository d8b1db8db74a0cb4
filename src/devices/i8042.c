/* i8042 keyboard controller, the subset a PC guest touches. Commands and
 * bits follow the IBM PC/AT Technical Reference (keyboard controller) and
 * what Linux's drivers/input/serio/i8042.c sends while probing. */
#include "devices/i8042.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/log.h"

/* Status register (read at 0x64). */
#define STR_OBF		0x01	/* output buffer full: a byte waits at 0x60 */
#define STR_IBF		0x02	/* input buffer full: never, we act at once */
#define STR_SYS		0x04	/* system flag, mirrors CTR bit 2 */
#define STR_CMD		0x08	/* last write went to 0x64 (command) */
#define STR_UNLOCKED	0x10	/* keyboard not inhibited by the keylock */

/* Controller command byte ("CTR", internal RAM byte 0). */
#define CTR_KBDINT	0x01
#define CTR_SYS		0x04
#define CTR_KBDDIS	0x10
#define CTR_AUXDIS	0x20
#define CTR_XLATE	0x40

/* Output port (commands 0xD0/0xD1). */
#define OUTP_RESET	0x01	/* 0 holds the CPU in reset */
#define OUTP_A20	0x02

#define CMD_READ_CTR	0x20
#define CMD_WRITE_CTR	0x60
#define CMD_AUX_DISABLE	0xa7
#define CMD_AUX_ENABLE	0xa8
#define CMD_AUX_TEST	0xa9
#define CMD_SELF_TEST	0xaa
#define CMD_KBD_TEST	0xab
#define CMD_KBD_DISABLE	0xad
#define CMD_KBD_ENABLE	0xae
#define CMD_READ_OUTP	0xd0
#define CMD_WRITE_OUTP	0xd1
#define CMD_PULSE_BASE	0xf0	/* 0xf0-0xff: pulse output port bits 3:0 low */

#define SELF_TEST_OK	0x55
#define PORT_TEST_OK	0x00

/* Room for a reply now and, later, a keyboard's scancode bursts. */
#define OUTQ_LEN	16

struct i8042 {
	pthread_mutex_t lock;
	struct vm_stopper stopper;
	uint8_t ctr;
	uint8_t outp;
	uint8_t pending_cmd;	/* command waiting for its data byte, or 0 */
	bool last_was_cmd;
	uint8_t last_out;	/* re-read when the queue is empty */
	uint8_t outq[OUTQ_LEN];
	unsigned int outq_head, outq_count;
};

/* Queues a byte for the guest to read at 0x60. A full queue drops the
 * byte, as a controller drops what the guest does not collect. */
static void outq_push(struct i8042 *kbc, uint8_t byte)
{
	if (kbc->outq_count == OUTQ_LEN) {
		pr_debug("i8042: output queue full, dropping 0x%02x", byte);
		return;
	}
	kbc->outq[(kbc->outq_head + kbc->outq_count) % OUTQ_LEN] = byte;
	kbc->outq_count++;
}

static uint8_t outq_pop(struct i8042 *kbc)
{
	if (!kbc->outq_count)
		return kbc->last_out;
	kbc->last_out = kbc->outq[kbc->outq_head];
	kbc->outq_head = (kbc->outq_head + 1) % OUTQ_LEN;
	kbc->outq_count--;
	return kbc->last_out;
}

static uint8_t i8042_status(const struct i8042 *kbc)
{
	uint8_t st = STR_UNLOCKED;

	if (kbc->outq_count)
		st |= STR_OBF;
	if (kbc->ctr & CTR_SYS)
		st |= STR_SYS;
	if (kbc->last_was_cmd)
		st |= STR_CMD;
	return st;
}

/* Returns whether the command asks for a reset. */
static bool i8042_command(struct i8042 *kbc, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CTR:
		outq_push(kbc, kbc->ctr);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTP:
		kbc->pending_cmd = cmd;
		break;
	case CMD_AUX_DISABLE:
		kbc->ctr |= CTR_AUXDIS;
		break;
	case CMD_AUX_ENABLE:
		kbc->ctr &= (uint8_t)~CTR_AUXDIS;
		break;
	case CMD_AUX_TEST:
	case CMD_KBD_TEST:
		outq_push(kbc, PORT_TEST_OK);
		break;
	case CMD_SELF_TEST:
		/* A passed self-test sets the system flag. */
		kbc->ctr |= CTR_SYS;
		outq_push(kbc, SELF_TEST_OK);
		break;
	case CMD_KBD_DISABLE:
		kbc->ctr |= CTR_KBDDIS;
		break;
	case CMD_KBD_ENABLE:
		kbc->ctr &= (uint8_t)~CTR_KBDDIS;
		break;
	case CMD_READ_OUTP:
		outq_push(kbc, kbc->outp);
		break;
	default:
		/* 0xFE is the usual one, but any pulse of bit 0 resets. */
		if ((cmd & 0xf0) == CMD_PULSE_BASE)
			return !(cmd & OUTP_RESET);
		pr_debug("i8042: ignoring command 0x%02x", cmd);
		break;
	}
	return false;
}

/* Returns whether the byte asks for a reset. */
static bool i8042_data(struct i8042 *kbc, uint8_t val)
{
	uint8_t cmd = kbc->pending_cmd;

	kbc->pending_cmd = 0;
	switch (cmd) {
	case CMD_WRITE_CTR:
		kbc->ctr = val;
		return false;
	case CMD_WRITE_OUTP:
		/* A20 (bit 1) is always on under KVM; bit 0 low is reset. */
		kbc->outp = val | OUTP_A20;
		return !(val & OUTP_RESET);
	default:
		pr_debug("i8042: no keyboard, dropping 0x%02x", val);
		return false;
	}
}

static void fill_rest(uint8_t *data, uint32_t len)
{
	uint32_t i;

	for (i = 1; i < len; i++)
		data[i] = 0xff;
}

/* Both ports are one byte wide: a read of the data port (0x60) pops the
 * output buffer, one of the command port (0x64) returns the status. */
static void i8042_read(struct i8042 *kbc, bool cmd, uint64_t offset, uint8_t *data,
		       uint32_t len)
{
	fill_rest(data, len);
	if (offset) {
		data[0] = 0xff;
		return;
	}
	pthread_mutex_lock(&kbc->lock);
	data[0] = cmd ? i8042_status(kbc) : outq_pop(kbc);
	pthread_mutex_unlock(&kbc->lock);
}

static void i8042_data_read(void *opaque, uint64_t offset, uint8_t *data,
			    uint32_t len)
{
	i8042_read(opaque, false, offset, data, len);
}

static void i8042_cmd_read(void *opaque, uint64_t offset, uint8_t *data,
			   uint32_t len)
{
	i8042_read(opaque, true, offset, data, len);
}

static void i8042_write(struct i8042 *kbc, bool cmd, uint64_t offset, const uint8_t *data,
			uint32_t len)
{
	bool reset;

	if (offset || !len)
		return;
	pthread_mutex_lock(&kbc->lock);
	kbc->last_was_cmd = cmd;
	if (cmd) {
		/* A new command abandons one still waiting for its data byte. */
		kbc->pending_cmd = 0;
		reset = i8042_command(kbc, data[0]);
	} else {
		reset = i8042_data(kbc, data[0]);
	}
	pthread_mutex_unlock(&kbc->lock);
	if (reset) {
		pr_debug("i8042: guest pulsed the reset line");
		vm_stopper_request(&kbc->stopper, VM_STOP_RESET, 0);
	}
}

static void i8042_data_write(void *opaque, uint64_t offset, const uint8_t *data,
			     uint32_t len)
{
	i8042_write(opaque, false, offset, data, len);
}

static void i8042_cmd_write(void *opaque, uint64_t offset, const uint8_t *data,
			    uint32_t len)
{
	i8042_write(opaque, true, offset, data, len);
}

const struct bus_ops i8042_data_ops = {
	.read = i8042_data_read,
	.write = i8042_data_write,
};

const struct bus_ops i8042_cmd_ops = {
	.read = i8042_cmd_read,
	.write = i8042_cmd_write,
};

struct i8042 *i8042_create(const struct vm_stopper *stopper)
{
	struct i8042 *kbc = calloc(1, sizeof(*kbc));

	if (!kbc)
		return NULL;
	if (pthread_mutex_init(&kbc->lock, NULL)) {
		free(kbc);
		return NULL;
	}
	if (stopper)
		kbc->stopper = *stopper;
	/* As a BIOS leaves it: POST passed, scancode translation on, both
	 * ports enabled, no interrupts until the OS asks (we have no IRQ). */
	kbc->ctr = CTR_SYS | CTR_XLATE;
	kbc->outp = OUTP_RESET | OUTP_A20;
	return kbc;
}

void i8042_destroy(struct i8042 *kbc)
{
	if (!kbc)
		return;
	pthread_mutex_destroy(&kbc->lock);
	free(kbc);
}

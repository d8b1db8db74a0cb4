/* i8042 keyboard controller, the subset a PC guest touches, and an AT
 * keyboard behind it. Commands and bits follow the IBM PC/AT Technical
 * Reference (keyboard controller, keyboard) and what Linux's
 * drivers/input/serio/i8042.c and drivers/input/keyboard/atkbd.c send
 * while probing. */
#include "devices/i8042.h"

#include <errno.h>
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
#define CMD_WRITE_AUX	0xd4	/* next data byte goes to the mouse */
#define CMD_PULSE_BASE	0xf0	/* 0xf0-0xff: pulse output port bits 3:0 low */

#define SELF_TEST_OK	0x55
#define PORT_TEST_OK	0x00

/* Keyboard commands (bytes written to 0x60 for the keyboard) and replies. */
#define KBD_CMD_SET_LEDS	0xed	/* + LED bits */
#define KBD_CMD_ECHO		0xee
#define KBD_CMD_SCANSET		0xf0	/* + 0: get, 1-3: set */
#define KBD_CMD_GET_ID		0xf2
#define KBD_CMD_TYPEMATIC	0xf3	/* + rate and delay */
#define KBD_CMD_ENABLE		0xf4
#define KBD_CMD_DISABLE		0xf5	/* and restore defaults */
#define KBD_CMD_DEFAULTS	0xf6
#define KBD_CMD_SET3_FIRST	0xf7	/* 0xf7-0xfd: set 3 key types */
#define KBD_CMD_SET3_LAST	0xfd
#define KBD_CMD_RESEND		0xfe
#define KBD_CMD_RESET		0xff	/* ACK, then the self-test result */

#define KBD_REPLY_BAT_OK	0xaa
#define KBD_REPLY_ECHO		0xee
#define KBD_REPLY_ACK		0xfa
#define KBD_REPLY_RESEND	0xfe
#define KBD_ID_1		0xab	/* MF2 keyboard: AB 83 */
#define KBD_ID_2		0x83

#define KBD_DEFAULT_SET		2
#define KBD_DEFAULT_TYPEMATIC	0x2b	/* 10.9 characters/s after 500 ms */

/* Set 2 prefixes: extended key, and release ("break"). */
#define SC_EXTENDED		0xe0
#define SC2_BREAK		0xf0
#define SC1_BREAK_BIT		0x80

/* Room for a reply now and, later, a keyboard's scancode bursts. */
#define OUTQ_LEN	16
/* What the keyboard holds until the controller takes it: a real one
 * buffers 16 bytes. */
#define KBDQ_LEN	16

/* One key's make code in each scan code set; extended keys have an E0
 * prefix in sets 1 and 2, none in set 3. */
struct key_codes {
	uint8_t set1, set2, set3;
	bool extended;
};

static const struct key_codes key_left_ctrl = { 0x1d, 0x14, 0x11, false };
static const struct key_codes key_left_alt = { 0x38, 0x11, 0x19, false };
static const struct key_codes key_delete = { 0x53, 0x71, 0x64, true };

static const struct key_codes *const known_keys[] = {
	&key_left_ctrl, &key_left_alt, &key_delete,
};

struct kbd {
	bool enabled;		/* scanning: 0xF4 on, 0xF5 off */
	uint8_t set;		/* scan code set 1, 2 or 3 */
	uint8_t leds;
	uint8_t typematic;
	uint8_t pending;	/* command waiting for its argument, or 0 */
	uint8_t last_sent;	/* for 0xFE, resend */
	uint8_t q[KBDQ_LEN];
	unsigned int q_head, q_count;
};

struct i8042 {
	pthread_mutex_t lock;
	struct vm_stopper stopper;
	struct irq_line kbd_irq;
	bool irq_level;
	uint8_t ctr;
	uint8_t outp;
	uint8_t pending_cmd;	/* command waiting for its data byte, or 0 */
	bool last_was_cmd;
	bool xlate_break;	/* translating: an F0 came, the next byte is a release */
	uint8_t last_out;	/* re-read when the queue is empty */
	uint8_t outq[OUTQ_LEN];
	unsigned int outq_head, outq_count;
	struct kbd kbd;
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

/* --- The keyboard --- */

static unsigned int kbd_room(const struct kbd *kbd)
{
	return KBDQ_LEN - kbd->q_count;
}

/* Replies to commands always fit: the guest sends one command at a time
 * and a reset or disable empties the queue first. */
static void kbd_send(struct kbd *kbd, uint8_t byte)
{
	if (!kbd_room(kbd)) {
		pr_debug("i8042: keyboard buffer full, dropping 0x%02x", byte);
		return;
	}
	kbd->q[(kbd->q_head + kbd->q_count) % KBDQ_LEN] = byte;
	kbd->q_count++;
}

static uint8_t kbd_take(struct kbd *kbd)
{
	uint8_t byte = kbd->q[kbd->q_head];

	kbd->q_head = (kbd->q_head + 1) % KBDQ_LEN;
	kbd->q_count--;
	kbd->last_sent = byte;
	return byte;
}

static void kbd_flush(struct kbd *kbd)
{
	kbd->q_head = 0;
	kbd->q_count = 0;
}

static void kbd_defaults(struct kbd *kbd)
{
	kbd->set = KBD_DEFAULT_SET;
	kbd->typematic = KBD_DEFAULT_TYPEMATIC;
	kbd->leds = 0;
}

/* The argument byte of 0xED, 0xF0 or 0xF3. */
static void kbd_argument(struct kbd *kbd, uint8_t cmd, uint8_t val)
{
	switch (cmd) {
	case KBD_CMD_SET_LEDS:
		kbd->leds = val & 0x07;	/* scroll, num, caps lock */
		kbd_send(kbd, KBD_REPLY_ACK);
		break;
	case KBD_CMD_SCANSET:
		if (val > 3) {
			kbd_send(kbd, KBD_REPLY_RESEND);
			break;
		}
		kbd_send(kbd, KBD_REPLY_ACK);
		if (val)
			kbd->set = val;
		else
			kbd_send(kbd, kbd->set);
		break;
	case KBD_CMD_TYPEMATIC:
		kbd->typematic = val;
		kbd_send(kbd, KBD_REPLY_ACK);
		break;
	}
}

/* A byte the guest wrote to the keyboard (port 0x60, no controller
 * command pending). */
static void kbd_write(struct kbd *kbd, uint8_t val)
{
	uint8_t cmd = kbd->pending;

	kbd->pending = 0;
	/* Arguments have bit 7 clear; a command byte in their place is
	 * taken as a new command, as keyboards do. */
	if (cmd && !(val & 0x80)) {
		kbd_argument(kbd, cmd, val);
		return;
	}
	switch (val) {
	case KBD_CMD_SET_LEDS:
	case KBD_CMD_SCANSET:
	case KBD_CMD_TYPEMATIC:
		kbd_send(kbd, KBD_REPLY_ACK);
		kbd->pending = val;
		break;
	case KBD_CMD_ECHO:
		kbd_send(kbd, KBD_REPLY_ECHO);
		break;
	case KBD_CMD_GET_ID:
		kbd_send(kbd, KBD_REPLY_ACK);
		kbd_send(kbd, KBD_ID_1);
		kbd_send(kbd, KBD_ID_2);
		break;
	case KBD_CMD_ENABLE:
		kbd_send(kbd, KBD_REPLY_ACK);
		kbd->enabled = true;
		break;
	case KBD_CMD_DISABLE:
		/* Stops scanning and drops the keys not yet sent. */
		kbd_flush(kbd);
		kbd_send(kbd, KBD_REPLY_ACK);
		kbd_defaults(kbd);
		kbd->enabled = false;
		break;
	case KBD_CMD_DEFAULTS:
		kbd_send(kbd, KBD_REPLY_ACK);
		kbd_defaults(kbd);
		break;
	case KBD_CMD_RESEND:
		kbd_send(kbd, kbd->last_sent);
		break;
	case KBD_CMD_RESET:
		/* ACK, then the basic assurance test passes; scanning on. */
		kbd_flush(kbd);
		kbd_send(kbd, KBD_REPLY_ACK);
		kbd_defaults(kbd);
		kbd->enabled = true;
		kbd_send(kbd, KBD_REPLY_BAT_OK);
		break;
	default:
		if (val >= KBD_CMD_SET3_FIRST && val <= KBD_CMD_SET3_LAST) {
			kbd_send(kbd, KBD_REPLY_ACK);	/* set 3 key types: no effect */
			break;
		}
		pr_debug("i8042: keyboard: unknown command 0x%02x", val);
		kbd_send(kbd, KBD_REPLY_RESEND);
		break;
	}
}

/* A key's make or break bytes in the keyboard's scan code set; returns
 * their count (at most 3). */
static unsigned int kbd_key_bytes(const struct kbd *kbd, const struct key_codes *key,
				  bool make, uint8_t *out)
{
	unsigned int n = 0;

	switch (kbd->set) {
	case 1:
		if (key->extended)
			out[n++] = SC_EXTENDED;
		out[n++] = make ? key->set1 : (uint8_t)(key->set1 | SC1_BREAK_BIT);
		break;
	case 3:
		if (!make)
			out[n++] = SC2_BREAK;
		out[n++] = key->set3;
		break;
	default:
		if (key->extended)
			out[n++] = SC_EXTENDED;
		if (!make)
			out[n++] = SC2_BREAK;
		out[n++] = key->set2;
		break;
	}
	return n;
}

/* --- The controller --- */

/*
 * The controller's translation of what the keyboard sends (command byte
 * bit 6): set 2 scan codes become set 1 ones, a release (F0 xx) becomes
 * one byte with bit 7 set. A real 8042 translates through a 128-entry
 * table; this one knows the bytes our keyboard can send: its keys, the
 * scan code set numbers (0xF0 0x00 replies) and the replies from 0x80 up,
 * which pass unchanged but for the second ID byte (0x83 -> 0x41: an MF2
 * keyboard behind a translating controller reads AB 41, as QEMU's does).
 * Returns -1 for a byte swallowed (the F0 prefix).
 */
static int xlate(struct i8042 *kbc, uint8_t byte)
{
	static const uint8_t set_numbers[4] = { 0x00, 0x43, 0x41, 0x3f };
	uint8_t out = byte;
	size_t i;

	if (byte == SC2_BREAK) {
		kbc->xlate_break = true;
		return -1;
	}
	if (byte == KBD_ID_2) {
		out = 0x41;
	} else if (byte >= 1 && byte <= 3) {
		out = set_numbers[byte];
	} else if (byte < 0x80) {
		for (i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++) {
			if (known_keys[i]->set2 == byte) {
				out = known_keys[i]->set1;
				break;
			}
		}
	}
	if (kbc->xlate_break) {
		kbc->xlate_break = false;
		out |= SC1_BREAK_BIT;
	}
	return out;
}

/*
 * Moves the keyboard's bytes to the output buffer, one at a time: only
 * when the guest has read everything before them (the keyboard waits
 * while the buffer is full) and the keyboard interface is not disabled
 * (command byte bit 4). Then drives IRQ 1: high while a byte waits and the
 * guest enabled the interrupt (command byte bit 0). ISA IRQ 1 is edge
 * triggered: i8042_read lowers it after each byte so the next one raises
 * a new edge.
 */
static void i8042_sync(struct i8042 *kbc)
{
	bool level;

	while (!kbc->outq_count && kbc->kbd.q_count && !(kbc->ctr & CTR_KBDDIS)) {
		uint8_t byte = kbd_take(&kbc->kbd);
		int out = (kbc->ctr & CTR_XLATE) ? xlate(kbc, byte) : byte;

		if (out >= 0)
			outq_push(kbc, (uint8_t)out);
	}
	level = kbc->outq_count && (kbc->ctr & CTR_KBDINT);
	if (level != kbc->irq_level) {
		kbc->irq_level = level;
		irq_line_set(&kbc->kbd_irq, level);
	}
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
	case CMD_WRITE_AUX:
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
	case CMD_WRITE_AUX:
		pr_debug("i8042: no mouse, dropping 0x%02x", val);
		return false;
	default:
		/* For the keyboard; writing to it enables its interface
		 * again, as QEMU's controller does. */
		kbc->ctr &= (uint8_t)~CTR_KBDDIS;
		kbd_write(&kbc->kbd, val);
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
	if (cmd) {
		data[0] = i8042_status(kbc);
	} else {
		data[0] = outq_pop(kbc);
		/* End this byte's interrupt; the next byte raises its own. */
		if (kbc->irq_level) {
			kbc->irq_level = false;
			irq_line_set(&kbc->kbd_irq, false);
		}
		i8042_sync(kbc);
	}
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
	i8042_sync(kbc);
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
	 * ports enabled, no interrupts until the OS asks. The keyboard has
	 * passed its self-test (the BIOS read the AA) and scans in set 2. */
	kbc->ctr = CTR_SYS | CTR_XLATE;
	kbc->outp = OUTP_RESET | OUTP_A20;
	kbd_defaults(&kbc->kbd);
	kbc->kbd.enabled = true;
	return kbc;
}

void i8042_set_kbd_irq(struct i8042 *kbc, const struct irq_line *kbd_irq)
{
	pthread_mutex_lock(&kbc->lock);
	if (kbd_irq)
		kbc->kbd_irq = *kbd_irq;
	else
		kbc->kbd_irq = (struct irq_line){ 0 };
	kbc->irq_level = false;
	i8042_sync(kbc);
	pthread_mutex_unlock(&kbc->lock);
}

int i8042_send_ctrl_alt_del(struct i8042 *kbc)
{
	static const struct key_codes *const keys[] = {
		&key_left_ctrl, &key_left_alt, &key_delete,
	};
	const size_t nkeys = sizeof(keys) / sizeof(keys[0]);
	uint8_t seq[2 * 3 * sizeof(keys) / sizeof(keys[0])];
	unsigned int n = 0;
	int ret = 0;
	size_t i;

	pthread_mutex_lock(&kbc->lock);
	if (!kbc->kbd.enabled) {
		ret = -EAGAIN;
		goto out;
	}
	/* Press all three, then release them in reverse order. */
	for (i = 0; i < nkeys; i++)
		n += kbd_key_bytes(&kbc->kbd, keys[i], true, seq + n);
	for (i = nkeys; i-- > 0;)
		n += kbd_key_bytes(&kbc->kbd, keys[i], false, seq + n);
	/* All or nothing: half a key combination is worse than none. */
	if (n > kbd_room(&kbc->kbd)) {
		ret = -ENOSPC;
		goto out;
	}
	for (i = 0; i < n; i++)
		kbd_send(&kbc->kbd, seq[i]);
	i8042_sync(kbc);
out:
	pthread_mutex_unlock(&kbc->lock);
	return ret;
}

void i8042_destroy(struct i8042 *kbc)
{
	if (!kbc)
		return;
	pthread_mutex_destroy(&kbc->lock);
	free(kbc);
}

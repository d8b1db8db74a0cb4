/* A minimal i8042 PS/2 controller: enough for a guest to probe it and to
 * reset the machine through it (command 0xFE, or 0xD1 with bit 0 clear),
 * with an AT keyboard on its first port that answers the commands Linux's
 * atkbd sends and types Ctrl-Alt-Del on request (i8042_send_ctrl_alt_del:
 * Firecracker's SendCtrlAltDel). No mouse: bytes for the aux port are
 * dropped.
 *
 * The controller answers at two ports that are not contiguous, and 0x61
 * between them is the speaker/PIT port KVM's in-kernel PIT handles, so it
 * is registered as two one-port ranges with the same opaque:
 *
 *	bus_register(pio, I8042_DATA_PORT, 1, &i8042_data_ops, kbc, "i8042");
 *	bus_register(pio, I8042_CMD_PORT, 1, &i8042_cmd_ops, kbc, "i8042");
 *
 * Safe to access from several vCPU threads at once. The stopper is called
 * without the controller's lock held.
 */
#ifndef POPEK_DEVICES_I8042_H
#define POPEK_DEVICES_I8042_H

#include "vmm/bus.h"
#include "vmm/device.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64	/* read: status, write: command */
#define I8042_KBD_IRQ 1		/* ISA IRQ 1: keyboard output buffer full */

struct i8042;

/* Copies *stopper (may be NULL: reset requests are then ignored).
 * Returns NULL on allocation failure. */
struct i8042 *i8042_create(const struct vm_stopper *stopper);
/* Copies *kbd_irq (NULL: none), the line raised while the output buffer
 * holds a byte and the guest enabled the interrupt (command byte bit 0).
 * Call before the vCPUs run. */
void i8042_set_kbd_irq(struct i8042 *kbc, const struct irq_line *kbd_irq);
void i8042_destroy(struct i8042 *kbc);

/*
 * Presses Ctrl, Alt and Delete and releases them (in reverse order), as
 * the keyboard's scan codes: set 2 translated by the controller to set 1
 * when the guest keeps translation on (command byte bit 6, Linux's
 * default): 1D 38 E0 53 E0 D3 B8 9D; otherwise in the keyboard's own set.
 * The bytes reach the guest one at a time at port 0x60, each raising IRQ 1.
 * Any thread. Returns 0, or nothing is queued and:
 *   -EAGAIN  the guest disabled the keyboard (0xF5) and has not enabled it
 *            again (no driver is listening);
 *   -ENOSPC  the keyboard still holds too many bytes the guest has not read.
 */
int i8042_send_ctrl_alt_del(struct i8042 *kbc);

/* Offsets other than 0 read 0xff and drop writes; wider accesses use the
 * first byte and fill the rest with 0xff. */
extern const struct bus_ops i8042_data_ops;
extern const struct bus_ops i8042_cmd_ops;

#endif

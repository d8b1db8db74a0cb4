/* A minimal i8042 PS/2 controller: enough for a guest to probe it and to
 * reset the machine through it (command 0xFE, or 0xD1 with bit 0 clear).
 * No keyboard or mouse is attached yet: bytes written for the devices are
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

struct i8042;

/* Copies *stopper (may be NULL: reset requests are then ignored).
 * Returns NULL on allocation failure. */
struct i8042 *i8042_create(const struct vm_stopper *stopper);
void i8042_destroy(struct i8042 *kbc);

/* Offsets other than 0 read 0xff and drop writes; wider accesses use the
 * first byte and fill the rest with 0xff. */
extern const struct bus_ops i8042_data_ops;
extern const struct bus_ops i8042_cmd_ops;

#endif

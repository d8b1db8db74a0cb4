/* QEMU's pvpanic ISA device (QEMU docs/specs/pvpanic.rst, hw/misc/
 * pvpanic-isa.c): one I/O port through which a guest kernel reports a
 * panic. Linux's pvpanic driver finds it through the DSDT device
 * "QEMU0001" (arch/x86/acpi.c), reads the events the device supports and
 * writes one when it panics.
 *
 *	bus_register(pio, PVPANIC_PORT, PVPANIC_NR_PORTS, &pvpanic_bus_ops,
 *		     pv, "pvpanic");
 */
#ifndef POPEK_DEVICES_PVPANIC_H
#define POPEK_DEVICES_PVPANIC_H

#include "vmm/bus.h"
#include "vmm/device.h"

#define PVPANIC_PORT     0x505
#define PVPANIC_NR_PORTS 1

/* Event bits, as in Linux's include/uapi/misc/pvpanic.h. */
#define PVPANIC_PANICKED     (1u << 0)  /* the host should handle the panic */
#define PVPANIC_CRASH_LOADED (1u << 1)  /* a kdump kernel takes over: note only */
#define PVPANIC_EVENTS       (PVPANIC_PANICKED | PVPANIC_CRASH_LOADED)

struct pvpanic;

/* Copies *stopper (may be NULL). Returns NULL on allocation failure. */
struct pvpanic *pvpanic_create(const struct vm_stopper *stopper);
void pvpanic_destroy(struct pvpanic *pv);

/* Reads return PVPANIC_EVENTS (in the first byte; others 0). A write with
 * PVPANIC_PANICKED requests VM_STOP_PANIC with POPEK_EXIT_GUEST_PANIC;
 * PVPANIC_CRASH_LOADED alone is logged and the guest goes on; unknown
 * bits are logged once and ignored. As in QEMU, PANICKED wins when both
 * are set. */
extern const struct bus_ops pvpanic_bus_ops;

#endif

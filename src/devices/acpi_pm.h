/* The power-management registers of a hardware-reduced ACPI machine
 * (ACPI 6.5 §4.1): instead of the PM1 blocks of a PC, the FADT points at
 * a Sleep Control Register, a Sleep Status Register (§4.8.3.7, §4.8.3.8)
 * and a Reset Register (§4.8.3.6), each one byte of port I/O here:
 *
 *	ACPI_PM_BASE + 0  sleep control: bits 4:2 SLP_TYP, bit 5 SLP_EN
 *	ACPI_PM_BASE + 1  sleep status:  bit 7 WAK_STS (write 1 to clear)
 *	ACPI_PM_BASE + 2  reset:         ACPI_PM_RESET_VALUE resets
 *
 * Soft-off is SLP_EN with SLP_TYP ACPI_PM_SLP_TYP_S5 (the value of the
 * DSDT's \_S5 package): the machine powers off. Other sleep types are
 * logged and ignored: popek does not suspend, so the machine "wakes" at
 * once: WAK_STS reads 1 until the guest clears it (write 1). Register
 * with
 *
 *	bus_register(pio, ACPI_PM_BASE, ACPI_PM_NR_PORTS, &acpi_pm_bus_ops,
 *		     pm, "acpi-pm");
 *
 * Safe to access from several vCPU threads at once. */
#ifndef POPEK_DEVICES_ACPI_PM_H
#define POPEK_DEVICES_ACPI_PM_H

#include "vmm/bus.h"
#include "vmm/device.h"

/* Free on a PC with no PM1/GPE blocks (QEMU's q35 has its ICH9 PM
 * block there; popek has none, so the port range is unused). */
#define ACPI_PM_BASE        0x600
#define ACPI_PM_NR_PORTS    3
#define ACPI_PM_SLEEP_CONTROL 0     /* offsets from ACPI_PM_BASE */
#define ACPI_PM_SLEEP_STATUS  1
#define ACPI_PM_RESET         2

/* Sleep Control Register (§4.8.3.7). */
#define ACPI_PM_SLP_TYP_SHIFT 2
#define ACPI_PM_SLP_TYP_MASK  (7u << ACPI_PM_SLP_TYP_SHIFT)
#define ACPI_PM_SLP_EN        (1u << 5)
#define ACPI_PM_SLP_TYP_S5    5     /* must match the DSDT's \_S5 */

/* Sleep Status Register (§4.8.3.8). */
#define ACPI_PM_WAK_STS       (1u << 7)

/* What the FADT's RESET_VALUE says to write to the reset register. */
#define ACPI_PM_RESET_VALUE   0x01

struct acpi_pm;

/* Copies *stopper (may be NULL: requests are then ignored). Returns NULL
 * on allocation failure. */
struct acpi_pm *acpi_pm_create(const struct vm_stopper *stopper);
void acpi_pm_destroy(struct acpi_pm *pm);

/* Accesses use the first byte (the registers are 8 bits wide; wider reads
 * fill the rest with 0). The sleep control and reset registers read 0. */
extern const struct bus_ops acpi_pm_bus_ops;

#endif

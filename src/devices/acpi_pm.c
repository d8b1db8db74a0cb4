/* Hardware-reduced ACPI sleep and reset registers (ACPI 6.5 §4.8.3.6-8),
 * as the FADT describes them (arch/x86/acpi.c). */
#include "devices/acpi_pm.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

struct acpi_pm {
	struct vm_stopper stopper;
	/* The Sleep Status Register: WAK_STS or 0. Clear at start; set when
	 * a sleep request is dropped (the machine "wakes" at once); cleared
	 * by the guest writing 1 to it. */
	atomic_uint_fast8_t sleep_status;
	atomic_bool sleep_logged;   /* first ignored sleep request logged at info */
};

static void acpi_pm_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct acpi_pm *pm = opaque;

	memset(data, 0, len);
	if (offset == ACPI_PM_SLEEP_STATUS && len)
		data[0] = (uint8_t)atomic_load(&pm->sleep_status);
}

static void acpi_pm_sleep_control(struct acpi_pm *pm, uint8_t v)
{
	unsigned typ = (v & ACPI_PM_SLP_TYP_MASK) >> ACPI_PM_SLP_TYP_SHIFT;

	/* §4.8.3.7: nothing happens until SLP_EN is written as 1; OSPM
	 * writes SLP_TYP and SLP_EN together (ACPICA's
	 * acpi_hw_extended_sleep does). */
	if (!(v & ACPI_PM_SLP_EN))
		return;
	if (typ == ACPI_PM_SLP_TYP_S5) {
		pr_debug("acpi-pm: guest entered S5 (soft-off)");
		vm_stopper_request(&pm->stopper, VM_STOP_POWEROFF, 0);
		return;
	}
	/* S1-S4 (and S0, 6, 7) would need suspend support: the request is
	 * dropped and the machine wakes at once. OSPM waits for WAK_STS after
	 * SLP_EN (ACPICA's acpi_hw_extended_sleep polls the status register
	 * for it), so set it, or the guest would spin forever. The DSDT only
	 * offers \_S5, so only a confused guest gets here. Logged once at
	 * info level so a guest cannot flood the host's log. */
	atomic_fetch_or(&pm->sleep_status, ACPI_PM_WAK_STS);
	if (!atomic_exchange(&pm->sleep_logged, true))
		pr_info("acpi-pm: guest asked for sleep type %u; popek does not suspend, ignored",
			typ);
	else
		pr_debug("acpi-pm: sleep type %u ignored", typ);
}

static void acpi_pm_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct acpi_pm *pm = opaque;
	uint8_t v;

	if (!len)
		return;
	v = data[0];
	switch (offset) {
	case ACPI_PM_SLEEP_CONTROL:
		acpi_pm_sleep_control(pm, v);
		break;
	case ACPI_PM_SLEEP_STATUS:
		/* §4.8.3.8: WAK_STS is cleared by writing 1 to it; writing 0
		 * has no effect, and the other bits are reserved. */
		atomic_fetch_and(&pm->sleep_status, (uint_fast8_t)~(v & ACPI_PM_WAK_STS));
		break;
	case ACPI_PM_RESET:
		/* §4.8.3.6: the FADT's RESET_VALUE written to RESET_REG resets
		 * the machine; other values do nothing. */
		if (v == ACPI_PM_RESET_VALUE) {
			pr_debug("acpi-pm: guest wrote the reset register");
			vm_stopper_request(&pm->stopper, VM_STOP_RESET, 0);
		}
		break;
	default:
		break;
	}
}

const struct bus_ops acpi_pm_bus_ops = {
	.read = acpi_pm_read,
	.write = acpi_pm_write,
};

struct acpi_pm *acpi_pm_create(const struct vm_stopper *stopper)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return NULL;
	if (stopper)
		pm->stopper = *stopper;
	atomic_init(&pm->sleep_status, 0);
	atomic_init(&pm->sleep_logged, false);
	return pm;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	free(pm);
}

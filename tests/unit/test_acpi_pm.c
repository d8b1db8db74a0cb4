/* The hardware-reduced ACPI sleep/reset registers, and pvpanic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/acpi_pm.h"
#include "devices/pvpanic.h"
#include "vmm/vm.h"

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

static struct acpi_pm *make_pm(struct fake_stopper *st)
{
	struct vm_stopper stopper = { .stop = fake_stop, .opaque = st };
	struct acpi_pm *pm;

	memset(st, 0, sizeof(*st));
	pm = acpi_pm_create(&stopper);
	assert_non_null(pm);
	return pm;
}

static void pm_write(struct acpi_pm *pm, uint64_t offset, uint8_t v)
{
	acpi_pm_bus_ops.write(pm, offset, &v, 1);
}

static uint8_t pm_read(struct acpi_pm *pm, uint64_t offset)
{
	uint8_t v = 0xaa;

	acpi_pm_bus_ops.read(pm, offset, &v, 1);
	return v;
}

/* (SLP_TYP << 2) | SLP_EN, as ACPICA's acpi_hw_extended_sleep writes it. */
static uint8_t sleep_value(unsigned typ, bool en)
{
	return (uint8_t)((typ << 2) | (en ? 0x20 : 0));
}

static void test_register_layout(void **state)
{
	(void)state;
	/* The FADT and the DSDT's \_S5 rely on these. */
	assert_int_equal(ACPI_PM_SLP_EN, 0x20);
	assert_int_equal(ACPI_PM_SLP_TYP_MASK, 0x1c);
	assert_int_equal(ACPI_PM_WAK_STS, 0x80);
	assert_int_equal(ACPI_PM_SLP_TYP_S5, 5);
	assert_int_equal(ACPI_PM_NR_PORTS, 3);
}

static void test_s5_powers_off(void **state)
{
	struct fake_stopper st;
	struct acpi_pm *pm = make_pm(&st);

	(void)state;
	/* ACPICA clears WAK_STS first, then writes SLP_TYP|SLP_EN. */
	pm_write(pm, ACPI_PM_SLEEP_STATUS, ACPI_PM_WAK_STS);
	assert_int_equal(st.calls, 0);
	pm_write(pm, ACPI_PM_SLEEP_CONTROL, sleep_value(5, true));
	assert_int_equal(st.calls, 1);
	assert_int_equal(st.reason, VM_STOP_POWEROFF);
	assert_int_equal(st.status, 0);
	acpi_pm_destroy(pm);

	/* Reserved bits set alongside do not matter. */
	pm = make_pm(&st);
	pm_write(pm, ACPI_PM_SLEEP_CONTROL, (uint8_t)(sleep_value(5, true) | 0xc3));
	assert_int_equal(st.calls, 1);
	assert_int_equal(st.reason, VM_STOP_POWEROFF);
	acpi_pm_destroy(pm);
}

static void test_s5_without_slp_en(void **state)
{
	struct fake_stopper st;
	struct acpi_pm *pm = make_pm(&st);

	(void)state;
	pm_write(pm, ACPI_PM_SLEEP_CONTROL, sleep_value(5, false));
	assert_int_equal(st.calls, 0);
	pm_write(pm, ACPI_PM_SLEEP_CONTROL, 0);
	pm_write(pm, ACPI_PM_SLEEP_CONTROL, ACPI_PM_SLP_EN);   /* S0 */
	assert_int_equal(st.calls, 0);
	acpi_pm_destroy(pm);
}

static void test_other_sleep_types_ignored(void **state)
{
	struct fake_stopper st;
	struct acpi_pm *pm = make_pm(&st);
	unsigned typ;

	(void)state;
	for (typ = 0; typ < 8; typ++) {
		if (typ == 5)
			continue;
		pm_write(pm, ACPI_PM_SLEEP_CONTROL, sleep_value(typ, true));
		pm_write(pm, ACPI_PM_SLEEP_CONTROL, sleep_value(typ, true));
	}
	assert_int_equal(st.calls, 0);
	/* and S5 still works afterwards */
	pm_write(pm, ACPI_PM_SLEEP_CONTROL, sleep_value(5, true));
	assert_int_equal(st.calls, 1);
	acpi_pm_destroy(pm);
}

static void test_reset_register(void **state)
{
	struct fake_stopper st;
	struct acpi_pm *pm = make_pm(&st);
	unsigned v;

	(void)state;
	for (v = 0; v < 256; v++) {
		if (v != ACPI_PM_RESET_VALUE)
			pm_write(pm, ACPI_PM_RESET, (uint8_t)v);
	}
	assert_int_equal(st.calls, 0);
	/* The reset value at another register does nothing either. */
	pm_write(pm, ACPI_PM_SLEEP_STATUS, ACPI_PM_RESET_VALUE);
	assert_int_equal(st.calls, 0);

	pm_write(pm, ACPI_PM_RESET, ACPI_PM_RESET_VALUE);
	assert_int_equal(st.calls, 1);
	assert_int_equal(st.reason, VM_STOP_RESET);
	assert_int_equal(st.status, 0);
	acpi_pm_destroy(pm);
}

static void test_sleep_status_w1c(void **state)
{
	struct fake_stopper st;
	struct acpi_pm *pm = make_pm(&st);
	uint8_t wide[4];

	(void)state;
	/* Never asked to sleep: WAK_STS reads 0. */
	assert_int_equal(pm_read(pm, ACPI_PM_SLEEP_STATUS), 0);
	/* Writing 1 clears (it is already clear); writes never set it. */
	pm_write(pm, ACPI_PM_SLEEP_STATUS, ACPI_PM_WAK_STS);
	assert_int_equal(pm_read(pm, ACPI_PM_SLEEP_STATUS), 0);
	pm_write(pm, ACPI_PM_SLEEP_STATUS, 0xff);
	assert_int_equal(pm_read(pm, ACPI_PM_SLEEP_STATUS), 0);
	pm_write(pm, ACPI_PM_SLEEP_STATUS, 0x00);
	assert_int_equal(pm_read(pm, ACPI_PM_SLEEP_STATUS), 0);
	/* SLP_TYP 3 without SLP_EN: no sleep, no wake. */
	pm_write(pm, ACPI_PM_SLEEP_CONTROL, sleep_value(3, false));
	assert_int_equal(pm_read(pm, ACPI_PM_SLEEP_STATUS), 0);
	/* An ignored S3 wakes at once: WAK_STS is set, so OSPM's wait for
	 * it ends; writing 0 (or other bits) leaves it, writing 1 clears. */
	pm_write(pm, ACPI_PM_SLEEP_CONTROL, sleep_value(3, true));
	assert_int_equal(pm_read(pm, ACPI_PM_SLEEP_STATUS), ACPI_PM_WAK_STS);
	pm_write(pm, ACPI_PM_SLEEP_STATUS, 0x00);
	pm_write(pm, ACPI_PM_SLEEP_STATUS, 0x7f);
	assert_int_equal(pm_read(pm, ACPI_PM_SLEEP_STATUS), ACPI_PM_WAK_STS);
	pm_write(pm, ACPI_PM_SLEEP_STATUS, ACPI_PM_WAK_STS);
	assert_int_equal(pm_read(pm, ACPI_PM_SLEEP_STATUS), 0);

	/* Control and reset read 0; a wide read is filled. */
	assert_int_equal(pm_read(pm, ACPI_PM_SLEEP_CONTROL), 0);
	assert_int_equal(pm_read(pm, ACPI_PM_RESET), 0);
	memset(wide, 0xaa, sizeof(wide));
	acpi_pm_bus_ops.read(pm, ACPI_PM_SLEEP_CONTROL, wide, 2);
	assert_int_equal(wide[0] | wide[1], 0);
	assert_int_equal(st.calls, 0);
	acpi_pm_destroy(pm);
}

static void test_pm_without_stopper(void **state)
{
	struct acpi_pm *pm = acpi_pm_create(NULL);

	(void)state;
	assert_non_null(pm);
	pm_write(pm, ACPI_PM_SLEEP_CONTROL, sleep_value(5, true));
	pm_write(pm, ACPI_PM_RESET, ACPI_PM_RESET_VALUE);
	acpi_pm_destroy(pm);
}

/* --- pvpanic --- */

static struct pvpanic *make_pv(struct fake_stopper *st)
{
	struct vm_stopper stopper = { .stop = fake_stop, .opaque = st };
	struct pvpanic *pv;

	memset(st, 0, sizeof(*st));
	pv = pvpanic_create(&stopper);
	assert_non_null(pv);
	return pv;
}

static void pv_write(struct pvpanic *pv, uint8_t v)
{
	pvpanic_bus_ops.write(pv, 0, &v, 1);
}

static void test_pvpanic_read_caps(void **state)
{
	struct fake_stopper st;
	struct pvpanic *pv = make_pv(&st);
	uint8_t d[4];

	(void)state;
	assert_int_equal(PVPANIC_PORT, 0x505);
	memset(d, 0xaa, sizeof(d));
	pvpanic_bus_ops.read(pv, 0, d, 1);
	assert_int_equal(d[0], 0x03);   /* PANICKED | CRASH_LOADED */
	memset(d, 0xaa, sizeof(d));
	pvpanic_bus_ops.read(pv, 0, d, 4);
	assert_int_equal(d[0], 0x03);
	assert_int_equal(d[1] | d[2] | d[3], 0);
	assert_int_equal(st.calls, 0);
	pvpanic_destroy(pv);
}

static void test_pvpanic_panic_stops(void **state)
{
	struct fake_stopper st;
	struct pvpanic *pv = make_pv(&st);

	(void)state;
	pv_write(pv, PVPANIC_PANICKED);
	assert_int_equal(st.calls, 1);
	assert_int_equal(st.reason, VM_STOP_PANIC);
	assert_int_equal(st.status, 10);
	assert_int_equal(st.status, POPEK_EXIT_GUEST_PANIC);
	pvpanic_destroy(pv);

	/* Both bits: PANICKED wins, as in QEMU. Unknown bits do not hide it. */
	pv = make_pv(&st);
	pv_write(pv, PVPANIC_PANICKED | PVPANIC_CRASH_LOADED | 0xf0);
	assert_int_equal(st.calls, 1);
	assert_int_equal(st.reason, VM_STOP_PANIC);
	assert_int_equal(st.status, POPEK_EXIT_GUEST_PANIC);
	pvpanic_destroy(pv);
}

static void test_pvpanic_crash_loaded_runs_on(void **state)
{
	struct fake_stopper st;
	struct pvpanic *pv = make_pv(&st);

	(void)state;
	pv_write(pv, PVPANIC_CRASH_LOADED);
	pv_write(pv, PVPANIC_CRASH_LOADED);
	assert_int_equal(st.calls, 0);
	/* Unknown bits (QEMU 9's SHUTDOWN among them) and 0: ignored. */
	pv_write(pv, 0x04);
	pv_write(pv, 0x80);
	pv_write(pv, 0x00);
	assert_int_equal(st.calls, 0);
	pvpanic_destroy(pv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_layout),
		cmocka_unit_test(test_s5_powers_off),
		cmocka_unit_test(test_s5_without_slp_en),
		cmocka_unit_test(test_other_sleep_types_ignored),
		cmocka_unit_test(test_reset_register),
		cmocka_unit_test(test_sleep_status_w1c),
		cmocka_unit_test(test_pm_without_stopper),
		cmocka_unit_test(test_pvpanic_read_caps),
		cmocka_unit_test(test_pvpanic_panic_stops),
		cmocka_unit_test(test_pvpanic_crash_loaded_runs_on),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

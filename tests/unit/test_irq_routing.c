/* GSI routing table: KVM's default entries, MSI routes, GSI allocation,
 * all without /dev/kvm (vm_fd -1: tables are built, no ioctl). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "vmm/irq_routing.h"

static void test_default_entries(void **state)
{
	struct kvm_irq_routing_entry e[IRQ_ROUTING_DEFAULT_ENTRIES];
	unsigned n = 0;

	(void)state;
	irq_routing_default_entries(e);
	/* KVM's default_routing[]: ROUTING_ENTRY2 (IOAPIC, then PIC) for
	 * 0-15, ROUTING_ENTRY1 (IOAPIC) for 16-23. */
	for (unsigned gsi = 0; gsi < 24; gsi++) {
		assert_int_equal(e[n].gsi, gsi);
		assert_int_equal(e[n].type, KVM_IRQ_ROUTING_IRQCHIP);
		assert_int_equal(e[n].flags, 0);
		assert_int_equal(e[n].u.irqchip.irqchip, KVM_IRQCHIP_IOAPIC);
		assert_int_equal(e[n].u.irqchip.pin, gsi);
		n++;
		if (gsi < 16) {
			assert_int_equal(e[n].gsi, gsi);
			assert_int_equal(e[n].type, KVM_IRQ_ROUTING_IRQCHIP);
			assert_int_equal(e[n].u.irqchip.irqchip,
					 gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE);
			assert_int_equal(e[n].u.irqchip.pin, gsi % 8);
			n++;
		}
	}
	assert_int_equal(n, IRQ_ROUTING_DEFAULT_ENTRIES);
	assert_int_equal(n, 40);
}

static void test_build_empty(void **state)
{
	struct irq_routing r;
	struct kvm_irq_routing *t;

	(void)state;
	assert_int_equal(irq_routing_init(&r, -1, 0), 0);
	assert_int_equal(r.max_gsi, IRQ_ROUTING_MAX_GSI);
	t = irq_routing_build(&r);
	assert_non_null(t);
	assert_int_equal(t->nr, 40);
	assert_int_equal(t->entries[39].gsi, 23);
	free(t);
	assert_int_equal(r.commits, 0);
	irq_routing_destroy(&r);
	irq_routing_destroy(&r);   /* twice is harmless */
}

static void test_msi_add_update_remove(void **state)
{
	struct irq_routing r;
	struct kvm_irq_routing *t;
	unsigned g1 = 0, g2 = 0, g3 = 0;

	(void)state;
	assert_int_equal(irq_routing_init(&r, -1, 0), 0);
	assert_int_equal(irq_routing_add_msi(&r, 0xfee00000, 0x4041, &g1), 0);
	assert_int_equal(irq_routing_add_msi(&r, 0x1fee01000ULL, 0x30, &g2), 0);
	assert_int_equal(g1, 24);
	assert_int_equal(g2, 25);
	assert_int_equal(r.commits, 2);

	t = irq_routing_build(&r);
	assert_non_null(t);
	assert_int_equal(t->nr, 42);
	assert_int_equal(t->entries[40].gsi, 24);
	assert_int_equal(t->entries[40].type, KVM_IRQ_ROUTING_MSI);
	assert_int_equal(t->entries[40].u.msi.address_lo, 0xfee00000);
	assert_int_equal(t->entries[40].u.msi.address_hi, 0);
	assert_int_equal(t->entries[40].u.msi.data, 0x4041);
	assert_int_equal(t->entries[41].gsi, 25);
	assert_int_equal(t->entries[41].u.msi.address_lo, 0xfee01000);
	assert_int_equal(t->entries[41].u.msi.address_hi, 1);
	free(t);

	/* Update: a change commits, the same message does not. */
	assert_int_equal(irq_routing_update_msi(&r, g1, 0xfee02000, 0x51), 0);
	assert_int_equal(r.commits, 3);
	assert_int_equal(irq_routing_update_msi(&r, g1, 0xfee02000, 0x51), 0);
	assert_int_equal(r.commits, 3);
	t = irq_routing_build(&r);
	assert_int_equal(t->entries[40].u.msi.address_lo, 0xfee02000);
	assert_int_equal(t->entries[40].u.msi.data, 0x51);
	free(t);

	/* Remove frees the GSI; the lowest free one is reused. */
	assert_int_equal(irq_routing_remove(&r, g1), 0);
	t = irq_routing_build(&r);
	assert_int_equal(t->nr, 41);
	assert_int_equal(t->entries[40].gsi, 25);
	free(t);
	assert_int_equal(irq_routing_add_msi(&r, 0xfee00000, 0x22, &g3), 0);
	assert_int_equal(g3, 24);

	/* Not MSI routes: IRQCHIP GSIs, free or out-of-range ones. */
	assert_int_equal(irq_routing_remove(&r, 5), -ENOENT);
	assert_int_equal(irq_routing_remove(&r, 23), -ENOENT);
	assert_int_equal(irq_routing_remove(&r, 26), -ENOENT);
	assert_int_equal(irq_routing_remove(&r, 100000), -ENOENT);
	assert_int_equal(irq_routing_update_msi(&r, 3, 0, 0), -ENOENT);
	assert_int_equal(irq_routing_update_msi(&r, 26, 0, 0), -ENOENT);
	assert_int_equal(irq_routing_update_msi(&r, ~0u, 0, 0), -ENOENT);
	irq_routing_destroy(&r);
}

static void test_exhaustion(void **state)
{
	struct irq_routing r;
	struct kvm_irq_routing *t;
	unsigned gsi = 0;

	(void)state;
	assert_int_equal(irq_routing_init(&r, -1, 24), -EINVAL);
	assert_int_equal(irq_routing_init(&r, -1, IRQ_ROUTING_MAX_GSI + 1), -EINVAL);
	assert_int_equal(irq_routing_init(&r, -1, 28), 0);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(irq_routing_add_msi(&r, 0xfee00000, i, &gsi), 0);
		assert_int_equal(gsi, 24 + i);
	}
	gsi = 77;
	assert_int_equal(irq_routing_add_msi(&r, 0xfee00000, 9, &gsi), -ENOSPC);
	assert_int_equal(gsi, 77);
	assert_int_equal(irq_routing_remove(&r, 26), 0);
	assert_int_equal(irq_routing_add_msi(&r, 0xfee00000, 9, &gsi), 0);
	assert_int_equal(gsi, 26);
	t = irq_routing_build(&r);
	assert_int_equal(t->nr, 44);
	assert_int_equal(t->entries[42].gsi, 26);
	assert_int_equal(t->entries[42].u.msi.data, 9);
	free(t);
	irq_routing_destroy(&r);

	/* The full range. */
	assert_int_equal(irq_routing_init(&r, -1, 0), 0);
	for (unsigned i = 24; i < IRQ_ROUTING_MAX_GSI; i++)
		assert_int_equal(irq_routing_add_msi(&r, 0xfee00000, i, &gsi), 0);
	assert_int_equal(gsi, IRQ_ROUTING_MAX_GSI - 1);
	assert_int_equal(irq_routing_add_msi(&r, 0xfee00000, 0, &gsi), -ENOSPC);
	irq_routing_destroy(&r);
}

static void test_irqfd_bad_fd(void **state)
{
	(void)state;
	assert_int_equal(irqfd_assign(-1, 3, 24), -EBADF);
	assert_int_equal(irqfd_deassign(-1, 3, 24), -EBADF);
	assert_int_equal(irqfd_assign(0, -1, 24), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_entries),
		cmocka_unit_test(test_build_empty),
		cmocka_unit_test(test_msi_add_update_remove),
		cmocka_unit_test(test_exhaustion),
		cmocka_unit_test(test_irqfd_bad_fd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

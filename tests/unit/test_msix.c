/* MSI-X: capability, table, PBA, function and vector masking, pending
 * bits delivered on unmask, routes following the table. Interrupts are
 * observed on the vectors' real eventfds; routes in an irq_routing built
 * without KVM (vm_fd -1). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "pci/msix.h"
#include "pci/pci.h"
#include "vmm/irq_routing.h"

#define NVEC      4
#define TABLE_OFF 0x0
#define PBA_OFF   0x800
#define BAR_SIZE  KiB(16)

/* A device whose BAR 2 holds its own registers at 0x1000 and the MSI-X
 * table and PBA below, as a virtio-pci transport would lay it out. */
struct dev {
	struct pci_device pci;
	struct msix msix;
	unsigned own_reads;
};

static void dev_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct dev *d = opaque;

	if (msix_table_read(&d->msix, offset, data, len))
		return;
	d->own_reads++;
	memset(data, 0x5a, len);
}

static void dev_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct dev *d = opaque;

	msix_table_write(&d->msix, offset, data, len);
}

static const struct bus_ops dev_ops = { .read = dev_read, .write = dev_write };

struct fixture {
	struct pci_bus bus;
	struct irq_routing routing;
	struct dev d;
	uint64_t bar;     /* guest address of BAR 2 */
};

static int setup(void **state)
{
	static struct fixture fx;
	struct fixture *f = &fx;

	memset(f, 0, sizeof(*f));
	assert_int_equal(pci_bus_init(&f->bus, LAYOUT_PCI_MMIO32_START, LAYOUT_PCI_MMIO32_SIZE,
				      GiB(64), GiB(64)), 0);
	assert_int_equal(irq_routing_init(&f->routing, -1, 0), 0);
	pci_device_init(&f->d.pci, "msix-test", 0x1af4, 0x1041, 0x020000, 1, 0x1af4, 1);
	assert_int_equal(pci_device_set_bar(&f->d.pci, 2, BAR_SIZE, PCI_BAR_MEM64, &dev_ops, &f->d), 0);
	assert_int_equal(pci_device_add_capability(&f->d.pci, PCI_CAP_ID_VNDR, "\x10virtio", 7, NULL),
			 0x40);
	assert_int_equal(msix_init(&f->d.msix, &f->d.pci, NVEC, 2, TABLE_OFF, PBA_OFF, &f->routing), 0);
	assert_int_equal(pci_bus_add_device(&f->bus, &f->d.pci), 1);
	f->bar = pci_device_bar_addr(&f->d.pci, 2);
	assert_int_equal(f->bar, GiB(64));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	msix_destroy(&f->d.msix);
	assert_int_equal(f->routing.nmsi, 0);
	irq_routing_destroy(&f->routing);
	pci_bus_destroy(&f->bus);
	return 0;
}

static uint32_t cfg(struct fixture *f, uint32_t off, uint32_t len)
{
	uint32_t v = 0;

	pci_config_read(&f->bus, 1, 0, off, (uint8_t *)&v, len);
	return v;
}

static void cfg_w(struct fixture *f, uint32_t off, uint32_t len, uint32_t v)
{
	pci_config_write(&f->bus, 1, 0, off, (const uint8_t *)&v, len);
}

/* Through the 64-bit window, as the guest would. */
static uint64_t bar_r(struct fixture *f, uint64_t off, uint32_t len)
{
	uint64_t v = 0;

	pci_mmio64_window_ops.read(&f->bus, f->bar - f->bus.mmio64_base + off, (uint8_t *)&v, len);
	return v;
}

static void bar_w(struct fixture *f, uint64_t off, uint32_t len, uint64_t v)
{
	pci_mmio64_window_ops.write(&f->bus, f->bar - f->bus.mmio64_base + off, (const uint8_t *)&v,
				    len);
}

static void write_entry(struct fixture *f, unsigned v, uint64_t addr, uint32_t data, uint32_t ctrl)
{
	uint64_t e = TABLE_OFF + v * PCI_MSIX_ENTRY_SIZE;

	bar_w(f, e + PCI_MSIX_ENTRY_ADDR_LO, 4, (uint32_t)addr);
	bar_w(f, e + PCI_MSIX_ENTRY_ADDR_HI, 4, addr >> 32);
	bar_w(f, e + PCI_MSIX_ENTRY_DATA, 4, data);
	bar_w(f, e + PCI_MSIX_ENTRY_CTRL, 4, ctrl);
}

static void set_ctrl(struct fixture *f, unsigned v, uint32_t ctrl)
{
	bar_w(f, TABLE_OFF + v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_CTRL, 4, ctrl);
}

/* How many times the vector's eventfd was signalled since last asked. */
static uint64_t fired(struct fixture *f, unsigned v)
{
	uint64_t n = 0;

	if (read(msix_vector_eventfd(&f->d.msix, v), &n, sizeof(n)) < 0) {
		assert_int_equal(errno, EAGAIN);
		return 0;
	}
	return n;
}

static unsigned msix_cap(struct fixture *f)
{
	return f->d.msix.cap;
}

static void msg_ctrl(struct fixture *f, uint16_t bits)
{
	cfg_w(f, msix_cap(f) + PCI_MSIX_FLAGS, 2, bits);
}

static const struct irq_route_msi *route(struct fixture *f, int gsi)
{
	assert_true(gsi >= IRQ_ROUTING_MSI_GSI_BASE);
	return &f->routing.msi[gsi - IRQ_ROUTING_MSI_GSI_BASE];
}

static void test_capability(void **state)
{
	struct fixture *f = *state;
	unsigned cap = msix_cap(f);

	/* Second in the list, after the vendor capability. */
	assert_int_equal(cap, 0x4c);
	assert_int_equal(cfg(f, 0x41, 1), cap);
	assert_int_equal(cfg(f, cap, 1), PCI_CAP_ID_MSIX);
	assert_int_equal(cfg(f, cap + 1, 1), 0);
	assert_int_equal(cfg(f, cap + PCI_MSIX_FLAGS, 2), NVEC - 1);
	assert_int_equal(cfg(f, cap + PCI_MSIX_TABLE, 4), TABLE_OFF | 2);
	assert_int_equal(cfg(f, cap + PCI_MSIX_PBA, 4), PBA_OFF | 2);
	assert_false(msix_enabled(&f->d.msix));

	/* Only enable and function mask are writable. */
	cfg_w(f, cap + PCI_MSIX_FLAGS, 2, 0xffff);
	assert_int_equal(cfg(f, cap + PCI_MSIX_FLAGS, 2), 0xc000 | (NVEC - 1));
	assert_true(msix_enabled(&f->d.msix));
	cfg_w(f, cap + PCI_MSIX_TABLE, 4, 0x12345678);
	cfg_w(f, cap, 4, 0);
	assert_int_equal(cfg(f, cap + PCI_MSIX_TABLE, 4), TABLE_OFF | 2);
	assert_int_equal(cfg(f, cap, 2), PCI_CAP_ID_MSIX);
	assert_false(msix_enabled(&f->d.msix));

	/* §6.8.2.9: every vector starts masked, nothing pending. */
	for (unsigned v = 0; v < NVEC; v++) {
		assert_true(msix_vector_masked(&f->d.msix, v));
		assert_false(msix_vector_pending(&f->d.msix, v));
		assert_int_equal(bar_r(f, v * 16 + PCI_MSIX_ENTRY_CTRL, 4), 1);
		assert_true(msix_vector_eventfd(&f->d.msix, v) >= 0);
	}
	assert_int_equal(msix_vector_eventfd(&f->d.msix, NVEC), -1);
	assert_true(msix_vector_masked(&f->d.msix, NVEC));
	assert_int_equal(bar_r(f, PBA_OFF, 8), 0);
	/* The device's own registers are still its own. */
	assert_int_equal(bar_r(f, 0x1000, 4), 0x5a5a5a5a);
	assert_int_equal(f->d.own_reads, 1);
}

static void test_init_errors(void **state)
{
	struct fixture *f = *state;
	struct pci_device d;
	struct msix m;

	(void)f;
	pci_device_init(&d, "x", 1, 2, 0, 0, 0, 0);
	assert_int_equal(pci_device_set_bar(&d, 0, KiB(4), PCI_BAR_MEM64, &dev_ops, NULL), 0);
	assert_int_equal(msix_init(&m, &d, 0, 0, 0, 0x800, NULL), -EINVAL);
	assert_int_equal(msix_init(&m, &d, 2049, 0, 0, 0x800, NULL), -EINVAL);
	assert_int_equal(msix_init(&m, &d, 4, 6, 0, 0x800, NULL), -EINVAL);
	assert_int_equal(msix_init(&m, &d, 4, 1, 0, 0x800, NULL), -EINVAL);   /* upper half */
	assert_int_equal(msix_init(&m, &d, 4, 0, 4, 0x800, NULL), -EINVAL);   /* unaligned */
	assert_int_equal(msix_init(&m, &d, 4, 0, 0, 0x20, NULL), -EINVAL);   /* overlap */
	assert_int_equal(msix_init(&m, &d, 4, 0, 0, 0x1000, NULL), -EINVAL); /* past the BAR */
	assert_int_equal(msix_init(&m, &d, 256, 0, 0, 0xf00, NULL), -EINVAL); /* table too big */
	assert_int_equal(msix_init(&m, &d, 4, 0, 0xffffffff8ULL, 0, NULL), -EINVAL);
	assert_null(d.msix);
	assert_int_equal(d.config[PCI_CAPABILITY_LIST], 0);
	/* The largest table fits a BAR declared later. */
	assert_int_equal(msix_init(&m, &d, 2048, 3, 0, 0x8000, NULL), 0);
	assert_ptr_equal(d.msix, &m);
	struct msix m2;

	assert_int_equal(msix_init(&m2, &d, 4, 3, 0, 0x8000, NULL), -EEXIST);
	assert_int_equal(msix_notify(&m, 2047), MSIX_DISABLED);
	assert_int_equal(msix_notify(&m, 2048), MSIX_BAD_VECTOR);
	msix_destroy(&m);
	assert_null(d.msix);
}

static void test_table_entries(void **state)
{
	struct fixture *f = *state;

	write_entry(f, 1, 0x00000001fee01003ULL, 0x4041, 0xfffffffe);
	/* Address bits 1:0 and reserved control bits read as 0. */
	assert_int_equal(bar_r(f, 16 + PCI_MSIX_ENTRY_ADDR_LO, 4), 0xfee01000);
	assert_int_equal(bar_r(f, 16 + PCI_MSIX_ENTRY_ADDR_HI, 4), 1);
	assert_int_equal(bar_r(f, 16 + PCI_MSIX_ENTRY_DATA, 4), 0x4041);
	assert_int_equal(bar_r(f, 16 + PCI_MSIX_ENTRY_CTRL, 4), 0);
	assert_int_equal(bar_r(f, 16, 8), 0x00000001fee01000ULL);
	assert_int_equal(bar_r(f, 24, 8), 0x4041);
	/* Qword writes. */
	bar_w(f, 32, 8, 0x00000000fee02000ULL);
	bar_w(f, 40, 8, 0x0000000100000051ULL);
	assert_int_equal(bar_r(f, 32, 4), 0xfee02000);
	assert_int_equal(bar_r(f, 40, 4), 0x51);
	assert_int_equal(bar_r(f, 44, 4), 1);
	/* Disabled: no route was made yet (vector 1 is unmasked). */
	assert_int_equal(f->routing.nmsi, 0);
	assert_int_equal(f->d.msix.vectors[1].gsi, -1);

	/* Enabling routes the unmasked vector with its message. */
	msg_ctrl(f, PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(f->routing.nmsi, 1);
	int gsi = f->d.msix.vectors[1].gsi;

	assert_int_equal(gsi, 24);
	assert_int_equal(route(f, gsi)->addr_lo, 0xfee01000);
	assert_int_equal(route(f, gsi)->addr_hi, 1);
	assert_int_equal(route(f, gsi)->data, 0x4041);

	/* Masked vector 0: writing its message leaves KVM alone until the
	 * unmask, so a half-written entry is never routed. */
	bar_w(f, 0, 4, 0xfee03000);
	bar_w(f, 8, 4, 0x61);
	assert_int_equal(f->routing.nmsi, 1);
	uint64_t commits = f->routing.commits;

	set_ctrl(f, 0, 0);
	assert_int_equal(f->routing.nmsi, 2);
	assert_int_equal(f->routing.commits, commits + 1);
	gsi = f->d.msix.vectors[0].gsi;
	assert_int_equal(gsi, 25);
	assert_int_equal(route(f, gsi)->addr_lo, 0xfee03000);
	assert_int_equal(route(f, gsi)->data, 0x61);
	/* Unmasking again with the same message changes nothing. */
	set_ctrl(f, 0, 0);
	assert_int_equal(f->routing.commits, commits + 1);
	/* Rewritten while unmasked: the route follows. */
	bar_w(f, 8, 4, 0x62);
	assert_int_equal(route(f, gsi)->data, 0x62);
	assert_int_equal(f->d.msix.vectors[0].gsi, 25);
	/* Masked and rewritten: the route keeps the old message. */
	set_ctrl(f, 0, 1);
	bar_w(f, 8, 4, 0x63);
	assert_int_equal(route(f, gsi)->data, 0x62);
	set_ctrl(f, 0, 0);
	assert_int_equal(route(f, gsi)->data, 0x63);
}

static void test_vector_mask_pending(void **state)
{
	struct fixture *f = *state;

	write_entry(f, 2, 0xfee00000, 0x31, 1);
	msg_ctrl(f, PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(fired(f, 2), 0);

	/* Masked: pending bit, no interrupt. */
	assert_int_equal(msix_notify(&f->d.msix, 2), MSIX_PENDING);
	assert_int_equal(msix_notify(&f->d.msix, 2), MSIX_PENDING);
	assert_true(msix_vector_pending(&f->d.msix, 2));
	assert_int_equal(bar_r(f, PBA_OFF, 4), 1 << 2);
	assert_int_equal(bar_r(f, PBA_OFF, 8), 1 << 2);
	assert_int_equal(fired(f, 2), 0);

	/* PBA is read-only. */
	bar_w(f, PBA_OFF, 4, 0);
	bar_w(f, PBA_OFF, 8, 0xff);
	assert_int_equal(bar_r(f, PBA_OFF, 4), 1 << 2);

	/* Unmask: the pending message goes out once, the bit clears. */
	set_ctrl(f, 2, 0);
	assert_int_equal(fired(f, 2), 1);
	assert_false(msix_vector_pending(&f->d.msix, 2));
	assert_int_equal(bar_r(f, PBA_OFF, 4), 0);

	/* Unmasked: straight through. */
	assert_int_equal(msix_notify(&f->d.msix, 2), MSIX_DELIVERED);
	assert_int_equal(msix_notify(&f->d.msix, 2), MSIX_DELIVERED);
	assert_int_equal(fired(f, 2), 2);
	assert_int_equal(fired(f, 1), 0);
	assert_int_equal(msix_notify(&f->d.msix, NVEC), MSIX_BAD_VECTOR);
	assert_int_equal(msix_notify(&f->d.msix, 0xffff), MSIX_BAD_VECTOR);
}

static void test_function_mask(void **state)
{
	struct fixture *f = *state;

	write_entry(f, 0, 0xfee00000, 0x41, 0);
	write_entry(f, 3, 0xfee00000, 0x43, 1);
	msg_ctrl(f, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	assert_true(msix_vector_masked(&f->d.msix, 0));
	/* Function mask: the entries' mask bits are unchanged (§6.8.2.3). */
	assert_int_equal(bar_r(f, PCI_MSIX_ENTRY_CTRL, 4), 0);
	assert_int_equal(msix_notify(&f->d.msix, 0), MSIX_PENDING);
	assert_int_equal(msix_notify(&f->d.msix, 3), MSIX_PENDING);
	assert_int_equal(bar_r(f, PBA_OFF, 4), 0x9);
	assert_int_equal(fired(f, 0), 0);

	/* Clearing the function mask sends the pending vector 0 only;
	 * vector 3 stays pending behind its own mask bit. */
	msg_ctrl(f, PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(fired(f, 0), 1);
	assert_int_equal(fired(f, 3), 0);
	assert_int_equal(bar_r(f, PBA_OFF, 4), 0x8);
	set_ctrl(f, 3, 0);
	assert_int_equal(fired(f, 3), 1);
	assert_int_equal(bar_r(f, PBA_OFF, 4), 0);

	/* Disabled: no MSI-X (the function would use INTx), nothing pending. */
	msg_ctrl(f, 0);
	assert_int_equal(msix_notify(&f->d.msix, 0), MSIX_DISABLED);
	assert_false(msix_vector_pending(&f->d.msix, 0));
	/* Pending while masked, then enabled in one write with the mask off. */
	msg_ctrl(f, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
	assert_int_equal(msix_notify(&f->d.msix, 0), MSIX_PENDING);
	msg_ctrl(f, 0);
	msg_ctrl(f, PCI_MSIX_FLAGS_ENABLE);
	assert_int_equal(fired(f, 0), 1);
	assert_int_equal(fired(f, 0), 0);
}

static void test_odd_accesses(void **state)
{
	struct fixture *f = *state;
	uint8_t b[8];

	write_entry(f, 0, 0xfee00000, 0x11, 1);
	/* Sizes other than 4/8, misaligned: all-ones, dropped. */
	assert_int_equal(bar_r(f, 0, 1), 0xff);
	assert_int_equal(bar_r(f, 0, 2), 0xffff);
	assert_int_equal(bar_r(f, 2, 4), 0xffffffff);
	assert_int_equal(bar_r(f, 4, 8), ~0ULL);
	bar_w(f, 0, 1, 0);
	bar_w(f, 8, 2, 0);
	bar_w(f, 6, 4, 0);
	bar_w(f, 12, 8, 0);
	assert_int_equal(bar_r(f, 0, 4), 0xfee00000);
	assert_int_equal(bar_r(f, 8, 4), 0x11);
	assert_int_equal(bar_r(f, 12, 4), 1);
	/* Straddling the end of the table or PBA. */
	assert_true(msix_table_read(&f->d.msix, NVEC * 16 - 4, b, 8));
	assert_int_equal(b[7], 0xff);
	assert_true(msix_table_write(&f->d.msix, NVEC * 16 - 4, b, 8));
	assert_true(msix_table_read(&f->d.msix, PBA_OFF + 4, b, 8));
	assert_true(msix_table_read(&f->d.msix, PBA_OFF - 4, b, 8));
	/* Outside both: not MSI-X's, the device handles it. */
	assert_false(msix_table_read(&f->d.msix, NVEC * 16, b, 4));
	assert_false(msix_table_read(&f->d.msix, PBA_OFF + 8, b, 4));
	assert_false(msix_table_write(&f->d.msix, 0x1000, b, 4));
	assert_false(msix_table_read(&f->d.msix, ~0ULL - 3, b, 4));
	assert_false(msix_table_read(&f->d.msix, ~0ULL - 3, b, 8));   /* wraps */
	/* msix_bar_ops: everything outside reads all-ones. */
	msix_bar_ops.read(&f->d.msix, 0x3000, b, 4);
	assert_int_equal(b[0] & b[1] & b[2] & b[3], 0xff);
	msix_bar_ops.read(&f->d.msix, 0, b, 4);
	assert_int_equal(b[3], 0xfe);
	msix_bar_ops.write(&f->d.msix, 0x3000, b, 4);
	/* PBA bits past the last vector read 0. */
	assert_int_equal(bar_r(f, PBA_OFF, 8), 0);
}

struct race {
	struct fixture *f;
	unsigned sent;
};

static void *notifier(void *p)
{
	struct race *r = p;

	for (int i = 0; i < 20000; i++) {
		enum msix_notify_result res = msix_notify(&r->f->d.msix, 1);

		assert_true(res == MSIX_DELIVERED || res == MSIX_PENDING);
	}
	return NULL;
}

/* Device threads notify while a vCPU toggles the mask: nothing lost. An
 * interrupt raised while masked is delivered by the unmask at the latest. */
static void test_concurrent_notify(void **state)
{
	struct fixture *f = *state;
	struct race r = { .f = f };
	pthread_t t[2];
	uint64_t got = 0;

	write_entry(f, 1, 0xfee00000, 0x21, 0);
	msg_ctrl(f, PCI_MSIX_FLAGS_ENABLE);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, notifier, &r), 0);
	for (int i = 0; i < 2000; i++) {
		set_ctrl(f, 1, i & 1);
		got += fired(f, 1);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	set_ctrl(f, 1, 0);
	got += fired(f, 1);
	assert_false(msix_vector_pending(&f->d.msix, 1));
	assert_true(got >= 1);
	assert_int_equal(msix_notify(&f->d.msix, 1), MSIX_DELIVERED);
	assert_int_equal(fired(f, 1), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_capability, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_entries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vector_mask_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_function_mask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_odd_accesses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_notify, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

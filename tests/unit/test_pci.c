/* PCI bus: header defaults and write masks, BAR sizing and moves, decode
 * gating on the windows, capability lists, 0xCF8/0xCFC and ECAM, and
 * hostile accesses (run under ASan too). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "pci/pci.h"
#include "vmm/bus.h"

#define W32_BASE LAYOUT_PCI_MMIO32_START
#define W32_SIZE LAYOUT_PCI_MMIO32_SIZE
#define W64_BASE GiB(64)
#define W64_SIZE GiB(64)

/* A device model that counts what reaches its BAR. */
struct fake {
	struct pci_device dev;
	unsigned reads, writes;
	uint64_t last_offset;
	uint32_t last_len;
	uint8_t last_byte;
};

static void fake_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct fake *f = opaque;

	/* Atomics: test_concurrent_moves reads from two threads. */
	__atomic_fetch_add(&f->reads, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&f->last_offset, offset, __ATOMIC_RELAXED);
	__atomic_store_n(&f->last_len, len, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < len; i++)
		data[i] = (uint8_t)(offset + i);
}

static void fake_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct fake *f = opaque;

	f->writes++;
	f->last_offset = offset;
	f->last_len = len;
	f->last_byte = data[0];
}

static const struct bus_ops fake_ops = { .read = fake_read, .write = fake_write };

struct machine {
	struct pci_bus pci;
	struct bus pio, mmio;
};

static void machine_init(struct machine *m)
{
	assert_int_equal(pci_bus_init(&m->pci, W32_BASE, W32_SIZE, W64_BASE, W64_SIZE), 0);
	bus_init(&m->pio, "pio");
	bus_init(&m->mmio, "mmio");
	assert_int_equal(bus_register(&m->pio, 0xcf8, 8, &pci_cf8_ops, &m->pci, "cf8"), 0);
	assert_int_equal(bus_register(&m->mmio, LAYOUT_PCI_ECAM_START, LAYOUT_PCI_ECAM_SIZE,
				      &pci_ecam_ops, &m->pci, "ecam"), 0);
	m->pci.ecam_base = LAYOUT_PCI_ECAM_START;
	m->pci.ecam_size = LAYOUT_PCI_ECAM_SIZE;
	assert_int_equal(bus_register(&m->mmio, W32_BASE, W32_SIZE, &pci_mmio32_window_ops,
				      &m->pci, "mmio32"), 0);
	assert_int_equal(bus_register(&m->mmio, W64_BASE, W64_SIZE, &pci_mmio64_window_ops,
				      &m->pci, "mmio64"), 0);
}

static void machine_destroy(struct machine *m)
{
	bus_destroy(&m->pio);
	bus_destroy(&m->mmio);
	pci_bus_destroy(&m->pci);
}

static void fake_init(struct fake *f, uint16_t device)
{
	pci_device_init(&f->dev, "fake", 0x1af4, device, 0x020000, 3, 0x1af4, 0x0042);
	f->reads = f->writes = 0;
	f->dev.opaque = f;
}

static uint32_t cfg(struct pci_bus *bus, unsigned slot, uint32_t off, uint32_t len)
{
	uint8_t b[4] = { 0 };
	uint32_t v = 0;

	pci_config_read(bus, slot, 0, off, b, len);
	memcpy(&v, b, len);
	return v;
}

static void cfg_w(struct pci_bus *bus, unsigned slot, uint32_t off, uint32_t len, uint32_t v)
{
	uint8_t b[4];

	memcpy(b, &v, 4);
	pci_config_write(bus, slot, 0, off, b, len);
}

static uint32_t mmio_r32(struct machine *m, uint64_t addr)
{
	uint32_t v;

	bus_read(&m->mmio, addr, (uint8_t *)&v, 4);
	return v;
}

static void mmio_w32(struct machine *m, uint64_t addr, uint32_t v)
{
	bus_write(&m->mmio, addr, (const uint8_t *)&v, 4);
}

static uint32_t pio_in(struct machine *m, uint16_t port, uint32_t len)
{
	uint32_t v = 0;

	bus_read(&m->pio, port, (uint8_t *)&v, len);
	return v;
}

static void pio_out(struct machine *m, uint16_t port, uint32_t len, uint32_t v)
{
	bus_write(&m->pio, port, (const uint8_t *)&v, len);
}

static void test_header_defaults(void **state)
{
	struct machine m;
	struct fake f;
	int slot;

	(void)state;
	machine_init(&m);
	/* Slot 0: the host bridge. */
	assert_int_equal(cfg(&m.pci, 0, PCI_VENDOR_ID, 2), PCI_HOST_BRIDGE_VENDOR);
	assert_int_equal(cfg(&m.pci, 0, PCI_DEVICE_ID, 2), PCI_HOST_BRIDGE_DEVICE);
	assert_int_equal(cfg(&m.pci, 0, PCI_REVISION_ID, 4) >> 8, 0x060000);
	assert_int_equal(cfg(&m.pci, 0, PCI_HEADER_TYPE, 1), 0);
	assert_int_equal(cfg(&m.pci, 0, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
	for (unsigned b = 0; b < PCI_NUM_BARS; b++)
		assert_int_equal(cfg(&m.pci, 0, PCI_BAR0 + 4 * b, 4), 0);

	fake_init(&f, 0x1041);
	assert_int_equal(pci_device_set_bar(&f.dev, 0, 0x4000, PCI_BAR_MEM32, &fake_ops, &f), 0);
	pci_device_set_intx_pin(&f.dev, 1);
	slot = pci_bus_add_device(&m.pci, &f.dev);
	assert_int_equal(slot, 1);
	assert_int_equal(f.dev.slot, 1);
	assert_int_equal(pci_bus_add_device(&m.pci, &f.dev), -EEXIST);
	assert_int_equal(cfg(&m.pci, 1, PCI_VENDOR_ID, 4), 0x10411af4);
	assert_int_equal(cfg(&m.pci, 1, PCI_REVISION_ID, 4), 0x02000003);
	assert_int_equal(cfg(&m.pci, 1, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x00421af4);
	assert_int_equal(cfg(&m.pci, 1, PCI_HEADER_TYPE, 1), 0);
	/* Firmware-like: BAR assigned in the window, memory decode on. */
	assert_int_equal(cfg(&m.pci, 1, PCI_BAR0, 4), W32_BASE);
	assert_int_equal(cfg(&m.pci, 1, PCI_COMMAND, 2), PCI_COMMAND_MEMORY);
	assert_int_equal(pci_device_bar_addr(&f.dev, 0), W32_BASE);
	/* INTA of slot 1: GSI 16 + (1 + 0) % 4. */
	assert_int_equal(pci_device_intx_gsi(&f.dev), 17);
	assert_int_equal(cfg(&m.pci, 1, PCI_INTERRUPT_LINE, 2), 0x0111);
	assert_int_equal(cfg(&m.pci, 1, PCI_CAPABILITY_LIST, 1), 0);

	struct pci_windows w;

	pci_bus_windows(&m.pci, &w);
	assert_int_equal(w.bus_first, 0);
	assert_int_equal(w.bus_last, 0);
	assert_int_equal(w.cf8_port, 0xcf8);
	assert_int_equal(w.cf8_len, 8);
	assert_int_equal(w.ecam_base, LAYOUT_PCI_ECAM_START);
	assert_int_equal(w.ecam_size, MiB(1));
	assert_int_equal(w.mmio32_base, W32_BASE);
	assert_int_equal(w.mmio32_size, W32_SIZE);
	assert_int_equal(w.mmio64_base, W64_BASE);
	assert_int_equal(w.mmio64_size, W64_SIZE);
	machine_destroy(&m);
}

static void test_read_only_fields(void **state)
{
	struct machine m;
	struct fake f;

	(void)state;
	machine_init(&m);
	fake_init(&f, 0x1042);
	assert_int_equal(pci_bus_add_device(&m.pci, &f.dev), 1);

	cfg_w(&m.pci, 1, PCI_VENDOR_ID, 4, 0xffffffff);
	cfg_w(&m.pci, 1, PCI_REVISION_ID, 4, 0xffffffff);
	cfg_w(&m.pci, 1, PCI_SUBSYSTEM_VENDOR_ID, 4, 0);
	cfg_w(&m.pci, 1, PCI_CAPABILITY_LIST, 1, 0x80);
	cfg_w(&m.pci, 1, PCI_ROM_ADDRESS, 4, 0xffffffff);
	cfg_w(&m.pci, 1, PCI_INTERRUPT_PIN, 1, 2);
	assert_int_equal(cfg(&m.pci, 1, PCI_VENDOR_ID, 4), 0x10421af4);
	assert_int_equal(cfg(&m.pci, 1, PCI_REVISION_ID, 4), 0x02000003);
	assert_int_equal(cfg(&m.pci, 1, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x00421af4);
	assert_int_equal(cfg(&m.pci, 1, PCI_CAPABILITY_LIST, 1), 0);
	assert_int_equal(cfg(&m.pci, 1, PCI_ROM_ADDRESS, 4), 0);
	assert_int_equal(cfg(&m.pci, 1, PCI_INTERRUPT_PIN, 1), 0);
	/* Header type and BIST: read-only. */
	cfg_w(&m.pci, 1, PCI_CACHE_LINE_SIZE, 4, 0xffffffff);
	assert_int_equal(cfg(&m.pci, 1, PCI_CACHE_LINE_SIZE, 4), 0x0000ffff);

	/* Command: only the implemented bits stick. */
	cfg_w(&m.pci, 1, PCI_COMMAND, 2, 0xffff);
	assert_int_equal(cfg(&m.pci, 1, PCI_COMMAND, 2), 0x0547);
	cfg_w(&m.pci, 1, PCI_COMMAND, 2, 0);
	assert_int_equal(cfg(&m.pci, 1, PCI_COMMAND, 2), 0);

	/* Status: error bits are write-one-to-clear, the rest read-only. */
	pci_config_set(&f.dev, PCI_STATUS, 2, 0xa000 | PCI_STATUS_INTERRUPT);
	cfg_w(&m.pci, 1, PCI_STATUS, 2, 0);
	assert_int_equal(cfg(&m.pci, 1, PCI_STATUS, 2), 0xa008);
	cfg_w(&m.pci, 1, PCI_STATUS, 2, 0x2000 | PCI_STATUS_INTERRUPT);
	assert_int_equal(cfg(&m.pci, 1, PCI_STATUS, 2), 0x8008);
	/* A dword write at 0x04 writes command and clears status bits. */
	cfg_w(&m.pci, 1, PCI_COMMAND, 4, 0xffff0002);
	assert_int_equal(cfg(&m.pci, 1, PCI_COMMAND, 4), 0x00080002);

	/* Interrupt line: a scratch register. */
	cfg_w(&m.pci, 1, PCI_INTERRUPT_LINE, 1, 0x0b);
	assert_int_equal(cfg(&m.pci, 1, PCI_INTERRUPT_LINE, 1), 0x0b);
	/* Past the header: nothing writable without capabilities. */
	cfg_w(&m.pci, 1, 0x40, 4, 0xffffffff);
	cfg_w(&m.pci, 1, 0x800, 4, 0xffffffff);
	assert_int_equal(cfg(&m.pci, 1, 0x40, 4), 0);
	assert_int_equal(cfg(&m.pci, 1, 0x800, 4), 0);
	machine_destroy(&m);
}

static void test_bar_sizing(void **state)
{
	struct machine m;
	struct fake f;

	(void)state;
	machine_init(&m);
	fake_init(&f, 0x1043);
	assert_int_equal(pci_device_set_bar(&f.dev, 0, KiB(16), PCI_BAR_MEM32, &fake_ops, &f), 0);
	assert_int_equal(pci_device_set_bar(&f.dev, 1, KiB(4), PCI_BAR_PREFETCH, &fake_ops, &f), 0);
	assert_int_equal(pci_device_set_bar(&f.dev, 2, MiB(1), PCI_BAR_MEM64 | PCI_BAR_PREFETCH,
					    &fake_ops, &f), 0);
	assert_int_equal(pci_device_set_bar(&f.dev, 4, GiB(8), PCI_BAR_MEM64, &fake_ops, &f), 0);
	/* Bad declarations. */
	assert_int_equal(pci_device_set_bar(&f.dev, 0, KiB(4), 0, NULL, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&f.dev, 3, KiB(4), 0, NULL, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&f.dev, 5, KiB(4), 0, NULL, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&f.dev, 6, KiB(4), 0, NULL, NULL), -EINVAL);

	struct fake g;

	fake_init(&g, 1);
	assert_int_equal(pci_device_set_bar(&g.dev, 0, 3 * KiB(4), 0, NULL, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&g.dev, 0, 2048, 0, NULL, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&g.dev, 0, GiB(4), 0, NULL, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&g.dev, 5, KiB(4), PCI_BAR_MEM64, NULL, NULL), -EINVAL);
	assert_int_equal(pci_device_set_bar(&g.dev, 0, KiB(4), PCI_BAR_IO, NULL, NULL), -EOPNOTSUPP);
	assert_int_equal(pci_device_set_bar(&g.dev, 0, KiB(4), 0x80, NULL, NULL), -EINVAL);

	assert_int_equal(pci_bus_add_device(&m.pci, &f.dev), 1);
	uint32_t bar0 = cfg(&m.pci, 1, PCI_BAR0, 4);
	uint32_t bar1 = cfg(&m.pci, 1, PCI_BAR0 + 4, 4);

	assert_int_equal(bar0, W32_BASE);
	assert_int_equal(bar1, (W32_BASE + KiB(16)) | PCI_BASE_ADDRESS_MEM_PREFETCH);
	/* 64-bit BARs above RAM, naturally aligned. */
	assert_int_equal(cfg(&m.pci, 1, PCI_BAR0 + 8, 4), 0x0c);
	assert_int_equal(cfg(&m.pci, 1, PCI_BAR0 + 12, 4), W64_BASE >> 32);
	assert_int_equal(pci_device_bar_addr(&f.dev, 4), W64_BASE + GiB(8));

	/* PCI 3.0 §6.2.5.1: all-ones, read back ~(size - 1) | type bits. */
	for (unsigned b = 0; b < PCI_NUM_BARS; b++)
		cfg_w(&m.pci, 1, PCI_BAR0 + 4 * b, 4, 0xffffffff);
	assert_int_equal(cfg(&m.pci, 1, PCI_BAR0, 4), 0xffffc000);
	assert_int_equal(cfg(&m.pci, 1, PCI_BAR0 + 4, 4), 0xfffff008);
	assert_int_equal(cfg(&m.pci, 1, PCI_BAR0 + 8, 4), 0xfff0000c);
	assert_int_equal(cfg(&m.pci, 1, PCI_BAR0 + 12, 4), 0xffffffff);
	assert_int_equal(cfg(&m.pci, 1, PCI_BAR0 + 16, 4), 0x00000004);
	assert_int_equal(cfg(&m.pci, 1, PCI_BAR0 + 20, 4), 0xfffffffe);

	/* Restoring the addresses restores decoding. */
	cfg_w(&m.pci, 1, PCI_BAR0, 4, bar0);
	assert_int_equal(cfg(&m.pci, 1, PCI_BAR0, 4), W32_BASE);
	assert_int_equal(pci_device_bar_addr(&f.dev, 0), W32_BASE);
	/* Low bits of a BAR cannot be written. */
	cfg_w(&m.pci, 1, PCI_BAR0, 4, W32_BASE | 0x123f);
	assert_int_equal(cfg(&m.pci, 1, PCI_BAR0, 4), W32_BASE);
	/* Byte writes to a BAR work on their lane. */
	cfg_w(&m.pci, 1, PCI_BAR0 + 2, 1, 0x10);
	assert_int_equal(cfg(&m.pci, 1, PCI_BAR0, 4), W32_BASE | 0x00100000);
	machine_destroy(&m);
}

static void test_bar_dispatch(void **state)
{
	struct machine m;
	struct fake f, g;
	uint64_t a, b;

	(void)state;
	machine_init(&m);
	fake_init(&f, 1);
	fake_init(&g, 2);
	assert_int_equal(pci_device_set_bar(&f.dev, 0, KiB(4), 0, &fake_ops, &f), 0);
	assert_int_equal(pci_device_set_bar(&f.dev, 2, KiB(64), PCI_BAR_MEM64, &fake_ops, &f), 0);
	assert_int_equal(pci_device_set_bar(&g.dev, 0, KiB(4), 0, &fake_ops, &g), 0);
	assert_int_equal(pci_bus_add_device(&m.pci, &f.dev), 1);
	assert_int_equal(pci_bus_add_device(&m.pci, &g.dev), 2);
	a = pci_device_bar_addr(&f.dev, 0);
	b = pci_device_bar_addr(&g.dev, 0);
	assert_int_equal(a, W32_BASE);
	assert_int_equal(b, W32_BASE + KiB(4));

	assert_int_equal(mmio_r32(&m, a + 0x10), 0x13121110);
	assert_int_equal(f.reads, 1);
	assert_int_equal(f.last_offset, 0x10);
	mmio_w32(&m, b + 0xffc, 0x5a);
	assert_int_equal(g.writes, 1);
	assert_int_equal(g.last_offset, 0xffc);
	assert_int_equal(g.last_byte, 0x5a);
	/* The 64-bit BAR in the 64-bit window. */
	assert_int_equal(mmio_r32(&m, W64_BASE + 0x8000), 0x03020100);
	assert_int_equal(f.last_offset, 0x8000);
	assert_int_equal(f.reads, 2);

	/* Memory decode off: unclaimed, reads all-ones. */
	cfg_w(&m.pci, 1, PCI_COMMAND, 2, 0);
	assert_int_equal(mmio_r32(&m, a), 0xffffffff);
	mmio_w32(&m, a, 1);
	assert_int_equal(mmio_r32(&m, W64_BASE), 0xffffffff);
	assert_int_equal(f.reads, 2);
	assert_int_equal(f.writes, 0);
	assert_int_equal(m.pci.unclaimed, 3);
	assert_int_equal(pci_device_bar_addr(&f.dev, 0), 0);
	cfg_w(&m.pci, 1, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	assert_int_equal(mmio_r32(&m, a), 0x03020100);
	assert_int_equal(f.reads, 3);

	/* Move BAR0 up: the old address goes dead, the new one decodes. */
	cfg_w(&m.pci, 1, PCI_BAR0, 4, (uint32_t)(W32_BASE + MiB(1)));
	assert_int_equal(mmio_r32(&m, a), 0xffffffff);
	assert_int_equal(mmio_r32(&m, W32_BASE + MiB(1) + 4), 0x07060504);
	assert_int_equal(f.reads, 4);
	/* Move the 64-bit BAR below 4 GiB, into the 32-bit window. */
	cfg_w(&m.pci, 1, PCI_BAR0 + 8, 4, (uint32_t)(W32_BASE + MiB(2)));
	cfg_w(&m.pci, 1, PCI_BAR0 + 12, 4, 0);
	assert_int_equal(mmio_r32(&m, W64_BASE), 0xffffffff);
	assert_int_equal(mmio_r32(&m, W32_BASE + MiB(2) + 0x100), 0x03020100);
	assert_int_equal(f.last_offset, 0x100);

	/* Overlap: g's BAR on top of f's BAR0: neither gets it. */
	cfg_w(&m.pci, 2, PCI_BAR0, 4, (uint32_t)(W32_BASE + MiB(1)));
	unsigned fr = f.reads, gr = g.reads;

	assert_int_equal(mmio_r32(&m, W32_BASE + MiB(1)), 0xffffffff);
	assert_int_equal(f.reads, fr);
	assert_int_equal(g.reads, gr);
	/* Outside every window: nothing reaches the devices, no crash. */
	cfg_w(&m.pci, 2, PCI_BAR0, 4, 0xfee00000);
	assert_int_equal(mmio_r32(&m, W32_BASE + MiB(1)), 0x03020100);
	assert_int_equal(mmio_r32(&m, 0xfee00000), 0xffffffff);
	assert_int_equal(g.reads, gr);
	/* Straddling the end of a BAR: unclaimed. */
	uint64_t v64 = 0;

	bus_read(&m.mmio, W32_BASE + MiB(1) + KiB(4) - 4, (uint8_t *)&v64, 8);
	assert_int_equal(v64, ~0ULL);
	/* 8-byte access inside: passed on. */
	bus_read(&m.mmio, W32_BASE + MiB(1) + 8, (uint8_t *)&v64, 8);
	assert_int_equal(v64, 0x0f0e0d0c0b0a0908ULL);
	/* A BAR at the top of the address space: harmless. */
	cfg_w(&m.pci, 1, PCI_BAR0 + 8, 4, 0xffff0000);
	cfg_w(&m.pci, 1, PCI_BAR0 + 12, 4, 0xffffffff);
	assert_int_equal(pci_device_bar_addr(&f.dev, 2), 0xffffffffffff0000ULL);
	assert_int_equal(mmio_r32(&m, W64_BASE), 0xffffffff);
	/* Window ops straight, at the window's last bytes. */
	uint8_t buf[8];

	pci_mmio32_window_ops.read(&m.pci, W32_SIZE - 8, buf, 8);
	pci_mmio64_window_ops.write(&m.pci, W64_SIZE - 1, buf, 1);
	machine_destroy(&m);
}

static void test_capabilities(void **state)
{
	struct machine m;
	struct fake f;
	uint8_t body1[14] = { 14 + 2, 1, 2, 3 };
	uint8_t body2[5] = { 0xaa, 0xbb, 0xcc, 0xdd, 0xee };
	uint8_t wm2[5] = { 0, 0xff, 0x0f, 0, 0 };
	unsigned off, n, ids[3];

	(void)state;
	machine_init(&m);
	fake_init(&f, 5);
	assert_int_equal(pci_device_add_capability(&f.dev, PCI_CAP_ID_VNDR, body1, 14, NULL), 0x40);
	assert_int_equal(pci_device_add_capability(&f.dev, PCI_CAP_ID_VNDR, body2, 5, wm2), 0x50);
	assert_int_equal(pci_device_add_capability(&f.dev, 0x05, NULL, 0, NULL), 0x58);
	assert_int_equal(pci_bus_add_device(&m.pci, &f.dev), 1);

	assert_true(cfg(&m.pci, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	/* Walk the list as an OS does. */
	off = cfg(&m.pci, 1, PCI_CAPABILITY_LIST, 1);
	for (n = 0; off && n < 48; n++) {
		assert_int_equal(off & 3, 0);
		assert_true(off >= 0x40);
		ids[n < 3 ? n : 2] = cfg(&m.pci, 1, off, 1);
		off = cfg(&m.pci, 1, off + 1, 1);
	}
	assert_int_equal(n, 3);
	assert_int_equal(ids[0], PCI_CAP_ID_VNDR);
	assert_int_equal(ids[1], PCI_CAP_ID_VNDR);
	assert_int_equal(ids[2], 0x05);
	assert_int_equal(cfg(&m.pci, 1, 0x42, 2), 0x0110);
	assert_int_equal(cfg(&m.pci, 1, 0x52, 2), 0xbbaa);
	assert_int_equal(cfg(&m.pci, 1, 0x54, 4), 0x00eeddcc);
	assert_int_equal(cfg(&m.pci, 1, 0x52, 4), 0xffffffff);   /* crosses a dword */

	/* Body writable per its mask; header (ID, next) read-only. */
	cfg_w(&m.pci, 1, 0x50, 4, 0xffffffff);
	assert_int_equal(cfg(&m.pci, 1, 0x50, 4), 0xffaa5809);
	cfg_w(&m.pci, 1, 0x54, 4, 0);
	assert_int_equal(cfg(&m.pci, 1, 0x54, 4), 0x00eeddc0);
	cfg_w(&m.pci, 1, 0x52, 2, 0x1234);
	assert_int_equal(cfg(&m.pci, 1, 0x52, 2), 0x12aa);
	cfg_w(&m.pci, 1, 0x40, 4, 0);
	assert_int_equal(cfg(&m.pci, 1, 0x40, 4), 0x01105009);
	machine_destroy(&m);

	/* The standard space fills up. */
	uint8_t big[250] = { 0 };

	fake_init(&f, 6);
	assert_int_equal(pci_device_add_capability(&f.dev, 9, big, 170, NULL), 0x40);
	assert_int_equal(pci_device_add_capability(&f.dev, 9, big, 30, NULL), -ENOSPC);
	assert_int_equal(pci_device_add_capability(&f.dev, 9, big, 18, NULL), 0x100 - 20);
	assert_int_equal(pci_device_add_capability(&f.dev, 9, NULL, 0, NULL), -ENOSPC);
	fake_init(&f, 7);
	assert_int_equal(pci_device_add_capability(&f.dev, 9, big, 250, NULL), -ENOSPC);
}

static void test_cf8_lanes(void **state)
{
	struct machine m;
	struct fake f;

	(void)state;
	machine_init(&m);
	fake_init(&f, 0x1044);
	assert_int_equal(pci_bus_add_device(&m.pci, &f.dev), 1);

	pio_out(&m, 0xcf8, 4, PCI_CF8_ENABLE | 1 << 11);
	assert_int_equal(pio_in(&m, 0xcf8, 4), PCI_CF8_ENABLE | 1 << 11);
	assert_int_equal(pio_in(&m, 0xcfc, 4), 0x10441af4);
	assert_int_equal(pio_in(&m, 0xcfc, 1), 0xf4);
	assert_int_equal(pio_in(&m, 0xcfd, 1), 0x1a);
	assert_int_equal(pio_in(&m, 0xcfe, 1), 0x44);
	assert_int_equal(pio_in(&m, 0xcff, 1), 0x10);
	assert_int_equal(pio_in(&m, 0xcfe, 2), 0x1044);
	assert_int_equal(pio_in(&m, 0xcfd, 2), 0x441a);   /* inside the dword */

	/* Register 0x3c: line writable on lane 0, pin read-only on lane 1. */
	pio_out(&m, 0xcf8, 4, PCI_CF8_ENABLE | 1 << 11 | 0x3c);
	pio_out(&m, 0xcfc, 1, 0x0b);
	pio_out(&m, 0xcfd, 1, 0x02);
	assert_int_equal(pio_in(&m, 0xcfc, 4), 0x0000000b);
	/* Lane 2 of register 0x04 is the status register (w1c). */
	pci_config_set(&f.dev, PCI_STATUS, 2, 0x4000);
	pio_out(&m, 0xcf8, 4, PCI_CF8_ENABLE | 1 << 11 | 0x04);
	pio_out(&m, 0xcfe, 2, 0x4000);
	assert_int_equal(cfg(&m.pci, 1, PCI_STATUS, 2), 0);
	pio_out(&m, 0xcfc, 2, PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY);
	assert_int_equal(cfg(&m.pci, 1, PCI_COMMAND, 2), 6);

	/* Low bits and reserved bits of CONFIG_ADDRESS read as zero. */
	pio_out(&m, 0xcf8, 4, 0xffffffff);
	assert_int_equal(pio_in(&m, 0xcf8, 4), 0x80fffffc);
	/* Non-dword accesses to 0xCF8-0xCFB: ignored, read all-ones. */
	pio_out(&m, 0xcf8, 4, PCI_CF8_ENABLE);
	pio_out(&m, 0xcf8, 2, 0x0800);
	pio_out(&m, 0xcf9, 1, 0x06);
	pio_out(&m, 0xcfa, 2, 0);
	assert_int_equal(pio_in(&m, 0xcf8, 4), PCI_CF8_ENABLE);
	assert_int_equal(pio_in(&m, 0xcf8, 1), 0xff);
	assert_int_equal(pio_in(&m, 0xcf9, 1), 0xff);
	assert_int_equal(pio_in(&m, 0xcfa, 2), 0xffff);

	/* Enable bit clear: data port reads all-ones, writes dropped. */
	pio_out(&m, 0xcf8, 4, 1 << 11 | 0x3c);
	assert_int_equal(pio_in(&m, 0xcfc, 4), 0xffffffff);
	pio_out(&m, 0xcfc, 1, 0x0c);
	assert_int_equal(cfg(&m.pci, 1, PCI_INTERRUPT_LINE, 1), 0x0b);
	/* Bus 1, function 1, empty slot: all-ones. */
	pio_out(&m, 0xcf8, 4, PCI_CF8_ENABLE | 1 << 16 | 1 << 11);
	assert_int_equal(pio_in(&m, 0xcfc, 4), 0xffffffff);
	pio_out(&m, 0xcf8, 4, PCI_CF8_ENABLE | 1 << 11 | 1 << 8);
	assert_int_equal(pio_in(&m, 0xcfc, 4), 0xffffffff);
	pio_out(&m, 0xcf8, 4, PCI_CF8_ENABLE | 9 << 11);
	assert_int_equal(pio_in(&m, 0xcfc, 4), 0xffffffff);
	pio_out(&m, 0xcfc, 4, 0);
	/* Past 0xCFF: not the bridge's. */
	pio_out(&m, 0xcf8, 4, PCI_CF8_ENABLE | 1 << 11);
	assert_int_equal(pio_in(&m, 0xcfe, 4), 0xffffffff);
	assert_int_equal(m.pio.unclaimed_reads, 1);
	machine_destroy(&m);
}

static void test_ecam(void **state)
{
	struct machine m;
	struct fake f, g;
	uint32_t e, c;

	(void)state;
	machine_init(&m);
	fake_init(&f, 0x1045);
	fake_init(&g, 0x1046);
	pci_device_add_capability(&g.dev, PCI_CAP_ID_VNDR, "abcdefgh", 8, NULL);
	assert_int_equal(pci_device_set_bar(&g.dev, 0, KiB(8), 0, &fake_ops, &g), 0);
	assert_int_equal(pci_bus_add_device(&m.pci, &f.dev), 1);
	assert_int_equal(pci_bus_add_device(&m.pci, &g.dev), 2);

	/* Same bytes through both mechanisms, every width. */
	for (unsigned slot = 0; slot < 4; slot++) {
		for (unsigned reg = 0; reg < 256; reg += 4) {
			pio_out(&m, 0xcf8, 4, PCI_CF8_ENABLE | slot << 11 | reg);
			for (unsigned lane = 0; lane < 4; lane++) {
				for (unsigned len = 1; lane + len <= 4; len *= 2) {
					uint64_t ea = LAYOUT_PCI_ECAM_START + (slot << 15) + reg + lane;

					e = c = 0;
					bus_read(&m.mmio, ea, (uint8_t *)&e, len);
					c = pio_in(&m, 0xcfc + lane, len);
					assert_int_equal(e, c);
				}
			}
		}
	}
	/* A write through ECAM shows through 0xCFC. */
	mmio_w32(&m, LAYOUT_PCI_ECAM_START + (2 << 15) + PCI_COMMAND, 0);
	pio_out(&m, 0xcf8, 4, PCI_CF8_ENABLE | 2 << 11 | PCI_COMMAND);
	assert_int_equal(pio_in(&m, 0xcfc, 2), 0);
	/* Extended space of a present conventional device reads 0 (no
	 * extended capabilities); functions 1-7 and empty slots all-ones. */
	assert_int_equal(mmio_r32(&m, LAYOUT_PCI_ECAM_START + (1 << 15) + 0x100), 0);
	assert_int_equal(mmio_r32(&m, LAYOUT_PCI_ECAM_START + (1 << 15) + 0xffc), 0);
	assert_int_equal(mmio_r32(&m, LAYOUT_PCI_ECAM_START + (1 << 15) + (1 << 12)), 0xffffffff);
	assert_int_equal(mmio_r32(&m, LAYOUT_PCI_ECAM_START + (31 << 15)), 0xffffffff);
	/* Beyond bus 0 (ECAM ops registered larger than 1 MiB): all-ones. */
	uint8_t b[8];

	pci_ecam_ops.read(&m.pci, 1 << 20, b, 4);
	assert_int_equal(b[0] & b[1] & b[2] & b[3], 0xff);
	pci_ecam_ops.write(&m.pci, (1 << 20) + (1 << 15) + 0x3c, b, 1);
	pci_ecam_ops.read(&m.pci, ~0ULL - 8, b, 8);
	assert_int_equal(cfg(&m.pci, 1, 0x3c, 1), 0);
	/* 8-byte and dword-crossing ECAM accesses: all-ones, dropped. */
	memset(b, 0, 8);
	bus_read(&m.mmio, LAYOUT_PCI_ECAM_START + (1 << 15), b, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(b[i], 0xff);
	bus_read(&m.mmio, LAYOUT_PCI_ECAM_START + (1 << 15) + 3, b, 2);
	assert_int_equal(b[0] & b[1], 0xff);
	memset(b, 0, 8);
	bus_write(&m.mmio, LAYOUT_PCI_ECAM_START + (1 << 15) + 0x3b, b, 2);
	bus_write(&m.mmio, LAYOUT_PCI_ECAM_START + (1 << 15) + 0x3c, (uint8_t[8]){ 9 }, 8);
	assert_int_equal(cfg(&m.pci, 1, 0x3c, 1), 0);
	machine_destroy(&m);
}

static void test_absent_and_odd(void **state)
{
	struct machine m;
	struct fake f;
	uint8_t b[8];

	(void)state;
	machine_init(&m);
	fake_init(&f, 0x1047);
	assert_int_equal(pci_bus_add_device(&m.pci, &f.dev), 1);

	assert_int_equal(cfg(&m.pci, 7, 0, 4), 0xffffffff);
	assert_int_equal(cfg(&m.pci, 7, 0, 2), 0xffff);
	cfg_w(&m.pci, 7, PCI_COMMAND, 2, 2);
	pci_config_read(&m.pci, 1, 1, 0, b, 4);
	assert_int_equal(b[0] & b[1] & b[2] & b[3], 0xff);
	pci_config_read(&m.pci, 32, 0, 0, b, 4);
	assert_int_equal(b[0] & b[3], 0xff);
	pci_config_read(&m.pci, ~0u, ~0u, 0, b, 4);
	assert_int_equal(b[0] & b[3], 0xff);
	cfg_w(&m.pci, 1000, PCI_COMMAND, 2, 0);

	/* Sizes and offsets with no config transaction: all-ones/dropped. */
	static const struct { uint32_t off, len; } odd[] = {
		{ 0, 3 }, { 0, 8 }, { 0, 0 }, { 3, 2 }, { 2, 4 }, { 4095, 2 },
		{ 4094, 4 }, { 4096, 1 }, { 0xffffffff, 1 }, { 0xfffffffe, 4 },
	};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		memset(b, 0, sizeof(b));
		pci_config_read(&m.pci, 1, 0, odd[i].off, b, odd[i].len);
		for (uint32_t j = 0; j < odd[i].len; j++)
			assert_int_equal(b[j], 0xff);
		memset(b, 0xff, sizeof(b));
		pci_config_write(&m.pci, 1, 0, odd[i].off, b, odd[i].len);
	}
	assert_int_equal(cfg(&m.pci, 1, PCI_COMMAND, 2), PCI_COMMAND_MEMORY);
	assert_int_equal(cfg(&m.pci, 1, 4095, 1), 0);
	assert_int_equal(cfg(&m.pci, 1, 4092, 4), 0);
	/* Image accessors clip at the end. */
	assert_int_equal(pci_config_get(&f.dev, 4094, 4), 0);
	pci_config_set(&f.dev, 4095, 4, 0xffffffff);
	assert_int_equal(f.dev.config[4095], 0xff);
	machine_destroy(&m);
}

static void test_add_device_limits(void **state)
{
	struct pci_bus bus;
	static struct fake devs[PCI_MAX_DEVICES + 1];
	struct fake big;

	(void)state;
	assert_int_equal(pci_bus_init(&bus, W32_BASE, MiB(1), 0, 0), 0);
	/* 1 GiB 32-bit BAR in a 1 MiB window: no room, nothing changes. */
	fake_init(&big, 9);
	assert_int_equal(pci_device_set_bar(&big.dev, 0, KiB(4), 0, &fake_ops, &big), 0);
	assert_int_equal(pci_device_set_bar(&big.dev, 1, GiB(1), 0, &fake_ops, &big), 0);
	assert_int_equal(pci_bus_add_device(&bus, &big.dev), -ENOSPC);
	assert_int_equal(big.dev.slot, -1);
	assert_int_equal(bus.mmio32_next, W32_BASE);
	/* Without a 64-bit window, 64-bit BARs go below 4 GiB. */
	fake_init(&devs[0], 0);
	assert_int_equal(pci_device_set_bar(&devs[0].dev, 0, KiB(64), PCI_BAR_MEM64, &fake_ops,
					    &devs[0]), 0);
	assert_int_equal(pci_bus_add_device(&bus, &devs[0].dev), 1);
	assert_int_equal(pci_device_bar_addr(&devs[0].dev, 0), W32_BASE);
	for (int i = 1; i < PCI_MAX_DEVICES; i++) {
		fake_init(&devs[i], i);
		assert_int_equal(pci_bus_add_device(&bus, &devs[i].dev), i + 1 < 32 ? i + 1 : -ENOSPC);
	}
	fake_init(&devs[PCI_MAX_DEVICES], 99);
	assert_int_equal(pci_bus_add_device(&bus, &devs[PCI_MAX_DEVICES].dev), -ENOSPC);
	pci_bus_destroy(&bus);

	assert_int_equal(pci_bus_init(&bus, W32_BASE + 1, MiB(1), 0, 0), -EINVAL);
	assert_int_equal(pci_bus_init(&bus, GiB(4) - MiB(1), MiB(2), 0, 0), -EINVAL);
	assert_int_equal(pci_bus_init(&bus, W32_BASE, 0, 0, 0), -EINVAL);
	assert_int_equal(pci_bus_init(&bus, W32_BASE, MiB(1), ~0ULL << 12, GiB(1)), -EINVAL);
	memset(&bus, 0, sizeof(bus));
	pci_bus_destroy(&bus);   /* zeroed: nothing to do */
}

static void test_mmio64_window(void **state)
{
	uint64_t base, size;

	(void)state;
	assert_int_equal(pci_mmio64_window(GiB(2), 39, &base, &size), 0);
	assert_int_equal(base, GiB(4));
	assert_int_equal(size, GiB(64));
	assert_int_equal(pci_mmio64_window(GiB(65) + MiB(2), 48, &base, &size), 0);
	assert_int_equal(base, GiB(66));
	assert_int_equal(size, GiB(64));
	/* Shrunk below MAXPHYADDR. */
	assert_int_equal(pci_mmio64_window(GiB(60), 36, &base, &size), 0);
	assert_int_equal(base, GiB(60));
	assert_int_equal(size, GiB(4));
	assert_int_equal(pci_mmio64_window(GiB(64), 36, &base, &size), -ENOSPC);
	assert_int_equal(base, 0);
	assert_int_equal(size, 0);
	assert_int_equal(pci_mmio64_window(~0ULL, 64, &base, &size), -ENOSPC);
	assert_int_equal(pci_mmio64_window(0, 32, &base, &size), -ENOSPC);
	/* The 32-bit window, ECAM and the fixed devices do not collide. */
	assert_true(LAYOUT_PCI_MMIO32_START >= LAYOUT_MMIO_HOLE_START);
	assert_true(LAYOUT_PCI_MMIO32_START + LAYOUT_PCI_MMIO32_SIZE <= LAYOUT_PCI_ECAM_START);
	assert_true(LAYOUT_PCI_ECAM_START + LAYOUT_PCI_ECAM_SIZE <= LAYOUT_IOAPIC_BASE);
	assert_int_equal(LAYOUT_PCI_ECAM_START % MiB(1), 0);
}

/* vCPUs reading BARs while another moves them and toggles decode. */
struct race {
	struct machine *m;
	struct fake *f;
	volatile int stop;
};

static void *reader(void *p)
{
	struct race *r = p;

	for (int i = 0; i < 20000; i++) {
		uint32_t v = mmio_r32(r->m, W32_BASE + 0x10);

		assert_true(v == 0x13121110 || v == 0xffffffff);
	}
	return NULL;
}

static void test_concurrent_moves(void **state)
{
	struct machine m;
	struct fake f;
	struct race r = { .m = &m, .f = &f };
	pthread_t t[2];

	(void)state;
	machine_init(&m);
	fake_init(&f, 1);
	assert_int_equal(pci_device_set_bar(&f.dev, 0, KiB(4), 0, &fake_ops, &f), 0);
	assert_int_equal(pci_bus_add_device(&m.pci, &f.dev), 1);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, reader, &r), 0);
	for (int i = 0; i < 2000; i++) {
		cfg_w(&m.pci, 1, PCI_BAR0, 4, (uint32_t)(W32_BASE + (i & 1) * MiB(1)));
		cfg_w(&m.pci, 1, PCI_COMMAND, 2, (i & 2) ? 0 : PCI_COMMAND_MEMORY);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	machine_destroy(&m);
}

/* A fake machine's reset line for 0xCF9. */
struct stops {
	unsigned n;
	enum vm_stop_reason reason;
	int status;
};

static void record_stop(void *opaque, enum vm_stop_reason reason, int status)
{
	struct stops *s = opaque;

	s->n++;
	s->reason = reason;
	s->status = status;
}

/* 0xCF9, the Reset Control Register: what Linux's BOOT_CF9_FORCE and
 * BOOT_CF9_SAFE do, read-back, and that nothing else in 0xCF8-0xCFB
 * resets. */
static void test_cf9_reset(void **state)
{
	struct stops stops = { 0 };
	const struct vm_stopper stopper = { .stop = record_stop, .opaque = &stops };
	struct machine m;
	struct pci_windows w;
	uint8_t cf9;

	(void)state;
	machine_init(&m);
	/* No stopper: no register, as before. */
	pio_out(&m, 0xcf9, 1, 0x06);
	assert_int_equal(pio_in(&m, 0xcf9, 1), 0xff);

	pci_bus_set_stopper(&m.pci, &stopper);
	assert_int_equal(pio_in(&m, 0xcf9, 1), 0x00);

	/* Linux, reboot_mode cold: code 0x0E. */
	cf9 = (uint8_t)pio_in(&m, 0xcf9, 1) & ~0x0e;
	pio_out(&m, 0xcf9, 1, cf9 | 0x02);          /* SYS_RST: not yet */
	assert_int_equal(stops.n, 0);
	assert_int_equal(pio_in(&m, 0xcf9, 1), 0x02);
	pio_out(&m, 0xcf9, 1, cf9 | 0x0e);          /* RST_CPU: reset */
	assert_int_equal(stops.n, 1);
	assert_int_equal(stops.reason, VM_STOP_RESET);
	assert_int_equal(stops.status, 0);
	assert_int_equal(pio_in(&m, 0xcf9, 1), 0x0e);

	/* Warm: code 0x06; the read-back keeps only bits 3:1. */
	pio_out(&m, 0xcf9, 1, 0xf1);
	assert_int_equal(stops.n, 1);
	assert_int_equal(pio_in(&m, 0xcf9, 1), 0x00);
	pio_out(&m, 0xcf9, 1, 0x06);
	assert_int_equal(stops.n, 2);
	assert_int_equal(pio_in(&m, 0xcf9, 1), 0x06);

	/* Only byte accesses at 0xCF9 are the RCR: a dword at 0xCF8 is
	 * CONFIG_ADDRESS even with bit 10 (0xCF9's bit 2) set, and word
	 * accesses covering 0xCF9 are ignored. */
	pio_out(&m, 0xcf8, 4, PCI_CF8_ENABLE | 0x0400);
	assert_int_equal(pio_in(&m, 0xcf8, 4), PCI_CF8_ENABLE | 0x0400);
	pio_out(&m, 0xcf8, 2, 0x0400);
	pio_out(&m, 0xcf9, 2, 0x0004);
	pio_out(&m, 0xcfa, 1, 0x04);
	pio_out(&m, 0xcfb, 1, 0x04);
	assert_int_equal(stops.n, 2);
	assert_int_equal(pio_in(&m, 0xcf8, 4), PCI_CF8_ENABLE | 0x0400);
	assert_int_equal(pio_in(&m, 0xcf8, 2), 0xffff);
	assert_int_equal(pio_in(&m, 0xcf9, 2), 0xffff);
	assert_int_equal(pio_in(&m, 0xcf8, 1), 0xff);
	assert_int_equal(pio_in(&m, 0xcfa, 1), 0xff);
	/* The RCR did not change meanwhile, and config access still works. */
	assert_int_equal(pio_in(&m, 0xcf9, 1), 0x06);
	pio_out(&m, 0xcf8, 4, PCI_CF8_ENABLE);
	assert_int_equal(pio_in(&m, 0xcfc, 2), PCI_HOST_BRIDGE_VENDOR);

	/* Taken away again: all-ones, writes ignored. */
	pci_bus_set_stopper(&m.pci, NULL);
	pio_out(&m, 0xcf9, 1, 0x0e);
	assert_int_equal(stops.n, 2);
	assert_int_equal(pio_in(&m, 0xcf9, 1), 0xff);

	/* The windows carry the INTx base the ACPI _PRT swizzles from. */
	pci_bus_windows(&m.pci, &w);
	assert_int_equal(w.intx_gsi_base, PCI_INTX_GSI_BASE);
	machine_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_defaults),
		cmocka_unit_test(test_read_only_fields),
		cmocka_unit_test(test_bar_sizing),
		cmocka_unit_test(test_bar_dispatch),
		cmocka_unit_test(test_capabilities),
		cmocka_unit_test(test_cf8_lanes),
		cmocka_unit_test(test_ecam),
		cmocka_unit_test(test_absent_and_odd),
		cmocka_unit_test(test_add_device_limits),
		cmocka_unit_test(test_mmio64_window),
		cmocka_unit_test(test_concurrent_moves),
		cmocka_unit_test(test_cf9_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The virtio device model (src/virtio/virtio.c) through the modern PCI
 * transport (src/virtio/pci.c), without KVM: common configuration
 * (feature windows, queue selection and set-up, the status sequence,
 * reset), notifications reaching the device's handler (directly and
 * through the worker thread), DEVICE_NEEDS_RESET, the configuration
 * generation, the device configuration, the PCI cfg window, MSI-X and
 * INTx delivery. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "pci/msix.h"
#include "pci/pci.h"
#include "virtio/pci.h"
#include "virtio/virtio.h"
#include "vmm/memory.h"

#define RAM     (16ULL << 20)
#define DESC    0x10000ULL
#define AVAIL   0x20000ULL
#define USED    0x30000ULL
#define BUF     0x100000ULL
#define NQ      2
#define QMAX    64
#define DEV_FEATURES ((1ULL << 0) | (1ULL << 5))

#define COMMON(x) (VIRTIO_PCI_COMMON_OFFSET + VIRTIO_PCI_COMMON_##x)

struct fake {
	int activations, resets, ready_calls, last_queue;
	int fail_activate;
	uint8_t config[8];
	int config_writes;
	bool refuse_features;
	unsigned popped;
};

struct line {
	bool level;
	int raises;
};

struct fx {
	struct guest_memory mem;
	struct fake fake;
	struct virtio_pci *vp;
	struct pci_bus bus;
	bool on_bus;
	struct line intx;
};

static struct fx *current;

static void fake_queue_ready(struct virtio_dev *d, unsigned q)
{
	struct fake *f = virtio_dev_opaque(d);
	struct virtq *vq = virtio_dev_vq(d, q);
	struct virtq_req *req = malloc(sizeof(*req));
	int ret;

	assert_non_null(req);
	__atomic_add_fetch(&f->ready_calls, 1, __ATOMIC_SEQ_CST);
	f->last_queue = q;
	while ((ret = virtq_pop(vq, req)) > 0) {
		virtq_push(vq, req, 0);
		f->popped++;
	}
	free(req);
	virtio_notify_queue(d, q);
}

static int fake_activate(struct virtio_dev *d)
{
	struct fake *f = virtio_dev_opaque(d);

	f->activations++;
	return f->fail_activate;
}

static void fake_reset(struct virtio_dev *d)
{
	struct fake *f = virtio_dev_opaque(d);

	f->resets++;
}

static void fake_read_config(struct virtio_dev *d, uint32_t off, void *data, uint32_t len)
{
	struct fake *f = virtio_dev_opaque(d);

	assert_true(off + len <= sizeof(f->config));
	memcpy(data, f->config + off, len);
}

static void fake_write_config(struct virtio_dev *d, uint32_t off, const void *data, uint32_t len)
{
	struct fake *f = virtio_dev_opaque(d);

	assert_true(off + len <= sizeof(f->config));
	memcpy(f->config + off, data, len);
	f->config_writes++;
}

static bool fake_features_ok(struct virtio_dev *d, uint64_t features)
{
	struct fake *f = virtio_dev_opaque(d);

	(void)features;
	return !f->refuse_features;
}

static const struct virtio_device_ops fake_ops = {
	.name = "virtio-fake",
	.device_id = 42,
	.features = DEV_FEATURES,
	.nqueues = NQ,
	.max_queue_size = QMAX,
	.config_size = 8,
	.read_config = fake_read_config,
	.write_config = fake_write_config,
	.features_ok = fake_features_ok,
	.activate = fake_activate,
	.queue_ready = fake_queue_ready,
	.reset = fake_reset,
};

static void line_set(void *opaque, unsigned gsi, bool level)
{
	struct line *l = opaque;

	(void)gsi;
	if (level && !l->level)
		l->raises++;
	l->level = level;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[128];
	struct irq_line line = { .set_level = line_set, .gsi = 16 };

	assert_non_null(f);
	assert_int_equal(guest_memory_init(&f->mem, RAM), 0);
	f->vp = virtio_pci_new(&f->mem, -1, NULL, &fake_ops, &f->fake, err, sizeof(err));
	if (!f->vp)
		fail_msg("virtio_pci_new: %s", err);
	line.opaque = &f->intx;
	virtio_pci_set_intx(f->vp, &line);
	current = f;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	virtio_pci_destroy(f->vp);
	if (f->on_bus)
		pci_bus_destroy(&f->bus);
	guest_memory_destroy(&f->mem);
	free(f);
	return 0;
}

/* --- BAR accesses --- */

static uint64_t rd(struct fx *f, uint64_t off, uint32_t len)
{
	uint64_t v = 0;

	virtio_pci_bar_ops.read(f->vp, off, (uint8_t *)&v, len);
	return v;
}

static void wr(struct fx *f, uint64_t off, uint32_t len, uint64_t v)
{
	virtio_pci_bar_ops.write(f->vp, off, (const uint8_t *)&v, len);
}

static uint8_t status(struct fx *f)
{
	return rd(f, COMMON(STATUS), 1);
}

static void set_status(struct fx *f, uint8_t s)
{
	wr(f, COMMON(STATUS), 1, s);
}

static void write_features(struct fx *f, uint64_t features)
{
	wr(f, COMMON(GFSELECT), 4, 0);
	wr(f, COMMON(GF), 4, (uint32_t)features);
	wr(f, COMMON(GFSELECT), 4, 1);
	wr(f, COMMON(GF), 4, features >> 32);
}

static const uint64_t driver_features = (1ULL << VIRTIO_F_VERSION_1) |
	(1ULL << VIRTIO_F_RING_EVENT_IDX) | (1ULL << VIRTIO_F_RING_INDIRECT_DESC) | (1ULL << 5);

/* §3.1.1 steps 1-6. */
static void negotiate(struct fx *f)
{
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE);
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	write_features(f, driver_features);
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(status(f), 0x0b);
}

static void setup_queue(struct fx *f, unsigned q, uint16_t size, uint64_t base)
{
	wr(f, COMMON(Q_SELECT), 2, q);
	wr(f, COMMON(Q_SIZE), 2, size);
	wr(f, COMMON(Q_DESCLO), 4, (uint32_t)(DESC + base));
	wr(f, COMMON(Q_DESCHI), 4, (DESC + base) >> 32);
	wr(f, COMMON(Q_AVAILLO), 8, AVAIL + base);   /* one 64-bit write also works */
	wr(f, COMMON(Q_USEDLO), 4, (uint32_t)(USED + base));
	wr(f, COMMON(Q_USEDHI), 4, 0);
	wr(f, COMMON(Q_MSIX), 2, q + 1);
	wr(f, COMMON(Q_ENABLE), 2, 1);
}

static void driver_ok(struct fx *f)
{
	negotiate(f);
	setup_queue(f, 0, 16, 0);
	setup_queue(f, 1, 16, 0x1000);
	wr(f, COMMON(MSIX), 2, 0);
	set_status(f, 0x0f);
	assert_int_equal(status(f), 0x0f);
}

/* One buffer made available on queue q (set up with base offset). */
static void make_avail(struct fx *f, uint64_t base, uint16_t idx, uint16_t head, uint64_t addr,
		       uint32_t len, uint16_t flags)
{
	struct virtq_desc d = { .addr = addr, .len = len, .flags = flags };
	uint16_t next = idx + 1;

	assert_int_equal(guest_memory_write(&f->mem, DESC + base + 16 * head, &d, sizeof(d)), 0);
	assert_int_equal(guest_memory_write(&f->mem, AVAIL + base + 4 + 2 * (idx % 16), &head, 2), 0);
	assert_int_equal(guest_memory_write(&f->mem, AVAIL + base + 2, &next, 2), 0);
}

/* --- the PCI function --- */

static int find_vendor_cap(struct fx *f, uint8_t type)
{
	const struct pci_device *p = &f->vp->pci;
	unsigned off = p->config[PCI_CAPABILITY_LIST], guard = 0;

	while (off && guard++ < 48) {
		if (p->config[off] == PCI_CAP_ID_VNDR && p->config[off + VIRTIO_PCI_CAP_CFG_TYPE] == type)
			return off;
		off = p->config[off + 1];
	}
	return -1;
}

static void test_pci_identity_and_caps(void **state)
{
	struct fx *f = *state;
	const struct pci_device *p = &f->vp->pci;
	struct { uint8_t type; uint32_t off, len; } caps[] = {
		{ VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFFSET, 0x38 },
		{ VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFFSET, NQ * 4 },
		{ VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFFSET, 1 },
		{ VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFFSET, 8 },
		{ VIRTIO_PCI_CAP_PCI_CFG, 0, 0 },
	};

	assert_int_equal(pci_config_get(p, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(pci_config_get(p, PCI_DEVICE_ID, 2), 0x1040 + 42);
	assert_true(pci_config_get(p, PCI_REVISION_ID, 1) >= 1);
	assert_true(pci_config_get(p, PCI_SUBSYSTEM_ID, 2) >= 0x40);
	assert_int_equal(pci_config_get(p, PCI_BAR0, 4) & 0x6, PCI_BASE_ADDRESS_MEM_TYPE_64);
	assert_int_equal(p->bars[0].size, VIRTIO_PCI_BAR_SIZE);
	for (unsigned i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		int c = find_vendor_cap(f, caps[i].type);

		assert_true(c > 0);
		assert_int_equal(p->config[c + VIRTIO_PCI_CAP_BAR], 0);
		assert_int_equal(pci_config_get(p, c + VIRTIO_PCI_CAP_OFFSET, 4), caps[i].off);
		assert_int_equal(pci_config_get(p, c + VIRTIO_PCI_CAP_LENGTH, 4), caps[i].len);
		assert_int_equal(p->config[c + VIRTIO_PCI_CAP_LEN],
				 caps[i].type == VIRTIO_PCI_CAP_NOTIFY_CFG ||
				 caps[i].type == VIRTIO_PCI_CAP_PCI_CFG ? 20 : 16);
		if (caps[i].type == VIRTIO_PCI_CAP_NOTIFY_CFG)
			assert_int_equal(pci_config_get(p, c + 16, 4), 4);
	}
	assert_true(f->vp->msix.cap > 0);
	assert_int_equal(f->vp->msix.nvectors, NQ + 1);
}

/* --- common configuration --- */

static void test_feature_windows(void **state)
{
	struct fx *f = *state;
	uint64_t offered = DEV_FEATURES | VIRTIO_CORE_FEATURES;

	wr(f, COMMON(DFSELECT), 4, 0);
	assert_int_equal(rd(f, COMMON(DFSELECT), 4), 0);
	assert_int_equal(rd(f, COMMON(DF), 4), (uint32_t)offered);
	wr(f, COMMON(DFSELECT), 4, 1);
	assert_int_equal(rd(f, COMMON(DF), 4), offered >> 32);
	assert_int_equal(rd(f, COMMON(DF), 4), 1);     /* VERSION_1 */
	wr(f, COMMON(DFSELECT), 4, 2);
	assert_int_equal(rd(f, COMMON(DF), 4), 0);
	wr(f, COMMON(DFSELECT), 4, 0xffffffff);
	assert_int_equal(rd(f, COMMON(DF), 4), 0);
	/* device_feature is read-only. */
	wr(f, COMMON(DF), 4, 0xffffffff);
	wr(f, COMMON(DFSELECT), 4, 0);
	assert_int_equal(rd(f, COMMON(DF), 4), (uint32_t)offered);

	write_features(f, 0x123456789abcdefULL);
	wr(f, COMMON(GFSELECT), 4, 0);
	assert_int_equal(rd(f, COMMON(GF), 4), 0x89abcdef);
	wr(f, COMMON(GFSELECT), 4, 1);
	assert_int_equal(rd(f, COMMON(GF), 4), 0x1234567);
	/* Windows past the 64 bits drop writes and read 0. */
	wr(f, COMMON(GFSELECT), 4, 7);
	wr(f, COMMON(GF), 4, 0xffffffff);
	assert_int_equal(rd(f, COMMON(GF), 4), 0);
	assert_int_equal(rd(f, COMMON(NUMQ), 2), NQ);
}

static void test_status_sequence(void **state)
{
	struct fx *f = *state;

	assert_int_equal(status(f), 0);
	driver_ok(f);
	assert_int_equal(f->fake.activations, 1);
	assert_true(virtio_dev_has_feature(virtio_pci_dev(f->vp), VIRTIO_F_RING_EVENT_IDX));
	assert_true(virtio_dev_has_feature(virtio_pci_dev(f->vp), 5));
	assert_false(virtio_dev_has_feature(virtio_pci_dev(f->vp), 0));
	/* DRIVER_OK again activates nothing more. */
	set_status(f, 0x0f);
	assert_int_equal(f->fake.activations, 1);
}

static void test_features_ok_refused_unoffered(void **state)
{
	struct fx *f = *state;

	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	write_features(f, driver_features | (1ULL << 1));   /* bit 1 not offered */
	set_status(f, 0x0b);
	assert_int_equal(status(f), 0x03);           /* §3.1.1 step 6: not set */
	/* Without VERSION_1: refused too. */
	write_features(f, 1ULL << 5);
	set_status(f, 0x0b);
	assert_int_equal(status(f), 0x03);
	/* Packed rings are not offered. */
	write_features(f, (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_PACKED));
	set_status(f, 0x0b);
	assert_int_equal(status(f), 0x03);
	/* The device may refuse a combination. */
	f->fake.refuse_features = true;
	write_features(f, 1ULL << VIRTIO_F_VERSION_1);
	set_status(f, 0x0b);
	assert_int_equal(status(f), 0x03);
	f->fake.refuse_features = false;
	set_status(f, 0x0b);
	assert_int_equal(status(f), 0x0b);
	/* After FEATURES_OK, feature writes are ignored. */
	write_features(f, driver_features);
	wr(f, COMMON(GFSELECT), 4, 0);
	assert_int_equal(rd(f, COMMON(GF), 4), 0);
	assert_false(virtio_dev_has_feature(virtio_pci_dev(f->vp), VIRTIO_F_RING_EVENT_IDX));
}

static void test_status_rules(void **state)
{
	struct fx *f = *state;

	/* DRIVER_OK without FEATURES_OK stays clear. */
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(status(f), 0x03);
	assert_int_equal(f->fake.activations, 0);
	/* Clearing a bit without reset is ignored (§2.1.1). */
	set_status(f, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(status(f), 0x03);
	/* NEEDS_RESET and reserved bits cannot be set by the driver. */
	set_status(f, 0x03 | VIRTIO_STATUS_NEEDS_RESET | 0x30);
	assert_int_equal(status(f), 0x03);
	/* Only the exact width reaches the register. */
	wr(f, COMMON(STATUS), 2, 0);
	assert_int_equal(status(f), 0x03);
	/* FAILED sticks until reset. */
	set_status(f, 0x03 | VIRTIO_STATUS_FAILED);
	assert_int_equal(status(f), 0x83);
	set_status(f, 0);
	assert_int_equal(status(f), 0);
}

static void test_activate_failure_needs_reset(void **state)
{
	struct fx *f = *state;

	f->fake.fail_activate = -EIO;
	negotiate(f);
	setup_queue(f, 0, 16, 0);
	set_status(f, 0x0f);
	assert_int_equal(status(f), 0x0f | VIRTIO_STATUS_NEEDS_RESET);
	/* The kick is not served. */
	make_avail(f, 0, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE);
	virtio_dev_process_queue(virtio_pci_dev(f->vp), 0);
	assert_int_equal(f->fake.ready_calls, 0);
}

static void test_reset_clears_everything(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *d = virtio_pci_dev(f->vp);

	driver_ok(f);
	make_avail(f, 0, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE);
	virtio_dev_process_queue(d, 0);
	assert_int_equal(f->fake.popped, 1);
	wr(f, COMMON(DFSELECT), 4, 1);
	set_status(f, 0);

	assert_int_equal(f->fake.resets, 1);
	assert_int_equal(status(f), 0);
	assert_int_equal(rd(f, COMMON(DFSELECT), 4), 0);
	assert_int_equal(rd(f, COMMON(MSIX), 2), VIRTIO_MSI_NO_VECTOR);
	for (unsigned q = 0; q < NQ; q++) {
		wr(f, COMMON(Q_SELECT), 2, q);
		assert_int_equal(rd(f, COMMON(Q_ENABLE), 2), 0);
		assert_int_equal(rd(f, COMMON(Q_SIZE), 2), QMAX);
		assert_int_equal(rd(f, COMMON(Q_MSIX), 2), VIRTIO_MSI_NO_VECTOR);
		assert_int_equal(rd(f, COMMON(Q_DESCLO), 8), 0);
		assert_int_equal(rd(f, COMMON(Q_AVAILLO), 8), 0);
		assert_int_equal(rd(f, COMMON(Q_USEDLO), 8), 0);
	}
	assert_false(virtio_dev_has_feature(d, VIRTIO_F_VERSION_1));
	wr(f, COMMON(GFSELECT), 4, 1);
	assert_int_equal(rd(f, COMMON(GF), 4), 0);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFFSET, 1), 0);
	/* A kick after reset reaches nobody. */
	virtio_dev_process_queue(d, 0);
	assert_int_equal(f->fake.ready_calls, 1);
	/* And the device can be brought up again from scratch; the ring
	 * starts over at index 0. */
	driver_ok(f);
	assert_int_equal(f->fake.activations, 2);
	make_avail(f, 0, 0, 3, BUF, 8, VIRTQ_DESC_F_WRITE);
	virtio_dev_process_queue(d, 0);
	assert_int_equal(f->fake.popped, 2);
}

static void test_queue_select_out_of_range(void **state)
{
	struct fx *f = *state;

	negotiate(f);
	wr(f, COMMON(Q_SELECT), 2, NQ);
	assert_int_equal(rd(f, COMMON(Q_SELECT), 2), NQ);
	assert_int_equal(rd(f, COMMON(Q_SIZE), 2), 0);   /* unavailable */
	assert_int_equal(rd(f, COMMON(Q_MSIX), 2), VIRTIO_MSI_NO_VECTOR);
	wr(f, COMMON(Q_SIZE), 2, 16);
	wr(f, COMMON(Q_DESCLO), 4, DESC);
	wr(f, COMMON(Q_MSIX), 2, 0);
	wr(f, COMMON(Q_ENABLE), 2, 1);
	assert_int_equal(rd(f, COMMON(Q_SIZE), 2), 0);
	assert_int_equal(rd(f, COMMON(Q_ENABLE), 2), 0);
	wr(f, COMMON(Q_SELECT), 2, 0xffff);
	wr(f, COMMON(Q_ENABLE), 2, 1);
	assert_int_equal(status(f), 0x0b);
	/* Queue 0 untouched. */
	wr(f, COMMON(Q_SELECT), 2, 0);
	assert_int_equal(rd(f, COMMON(Q_SIZE), 2), QMAX);
	assert_int_equal(rd(f, COMMON(Q_NOFF), 2), 0);
	wr(f, COMMON(Q_SELECT), 2, 1);
	assert_int_equal(rd(f, COMMON(Q_NOFF), 2), 1);
}

static void test_queue_size_not_power_of_two(void **state)
{
	struct fx *f = *state;

	negotiate(f);
	setup_queue(f, 0, 24, 0);
	assert_int_equal(rd(f, COMMON(Q_ENABLE), 2), 0);
	assert_true(status(f) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_queue_size_too_big(void **state)
{
	struct fx *f = *state;

	negotiate(f);
	setup_queue(f, 0, QMAX * 2, 0);
	assert_int_equal(rd(f, COMMON(Q_ENABLE), 2), 0);
	assert_true(status(f) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_queue_bad_address(void **state)
{
	struct fx *f = *state;

	negotiate(f);
	wr(f, COMMON(Q_SELECT), 2, 0);
	wr(f, COMMON(Q_SIZE), 2, 16);
	wr(f, COMMON(Q_DESCLO), 8, RAM - 64);    /* 256 bytes would run past RAM */
	wr(f, COMMON(Q_AVAILLO), 8, AVAIL);
	wr(f, COMMON(Q_USEDLO), 8, USED);
	wr(f, COMMON(Q_ENABLE), 2, 1);
	assert_int_equal(rd(f, COMMON(Q_ENABLE), 2), 0);
	assert_int_equal(status(f), 0x0b | VIRTIO_STATUS_NEEDS_RESET);
	/* Not DRIVER_OK yet: no configuration interrupt. */
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFFSET, 1), 0);
	/* Reset recovers. */
	set_status(f, 0);
	assert_int_equal(status(f), 0);
	driver_ok(f);
}

static void test_queue_before_features_ok(void **state)
{
	struct fx *f = *state;

	set_status(f, 0x03);
	setup_queue(f, 0, 16, 0);
	assert_int_equal(rd(f, COMMON(Q_ENABLE), 2), 0);
	assert_true(status(f) & VIRTIO_STATUS_NEEDS_RESET);
}

static void test_queue_writes_after_driver_ok_ignored(void **state)
{
	struct fx *f = *state;

	driver_ok(f);
	wr(f, COMMON(Q_SELECT), 2, 0);
	wr(f, COMMON(Q_SIZE), 2, 8);
	wr(f, COMMON(Q_DESCLO), 4, 0x5000);
	wr(f, COMMON(Q_AVAILLO), 8, 0x6000);
	wr(f, COMMON(Q_USEDHI), 4, 1);
	assert_int_equal(rd(f, COMMON(Q_SIZE), 2), 16);
	assert_int_equal(rd(f, COMMON(Q_DESCLO), 8), DESC);
	assert_int_equal(rd(f, COMMON(Q_AVAILLO), 8), AVAIL);
	assert_int_equal(rd(f, COMMON(Q_USEDLO), 8), USED);
	assert_int_equal(rd(f, COMMON(Q_ENABLE), 2), 1);
	/* Writing 0 to queue_enable is not allowed (§4.1.4.3.2): ignored. */
	wr(f, COMMON(Q_ENABLE), 2, 0);
	assert_int_equal(rd(f, COMMON(Q_ENABLE), 2), 1);
	assert_int_equal(status(f), 0x0f);
}

static void test_odd_widths(void **state)
{
	struct fx *f = *state;

	/* Reads of any width are slices of the registers. */
	wr(f, COMMON(Q_SELECT), 2, 1);
	assert_int_equal(rd(f, COMMON(NUMQ), 1), NQ);
	assert_int_equal(rd(f, COMMON(Q_SELECT), 1), 1);
	assert_int_equal(rd(f, COMMON(Q_SIZE) + 1, 1), QMAX >> 8);
	/* Writes of the wrong width are dropped. */
	wr(f, COMMON(Q_SELECT), 4, 0);
	assert_int_equal(rd(f, COMMON(Q_SELECT), 2), 1);
	wr(f, COMMON(Q_SELECT) + 1, 1, 1);
	assert_int_equal(rd(f, COMMON(Q_SELECT), 2), 1);
	/* Past the common structure and in the gaps: 0, no effect. */
	assert_int_equal(rd(f, VIRTIO_PCI_COMMON_OFFSET + VIRTIO_PCI_COMMON_SIZE, 4), 0);
	assert_int_equal(rd(f, VIRTIO_PCI_COMMON_OFFSET + VIRTIO_PCI_COMMON_SIZE - 2, 4), 0);
	wr(f, 0xff0, 8, ~0ULL);
	assert_int_equal(rd(f, VIRTIO_PCI_NOTIFY_OFFSET, 2), 0);
	assert_int_equal(rd(f, VIRTIO_PCI_BAR_SIZE - 8, 8), 0);
}

/* --- notifications --- */

static void test_notify_calls_handler(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *d = virtio_pci_dev(f->vp);
	struct pollfd pfd = { .events = POLLIN };

	driver_ok(f);
	/* DRIVER_OK looks at every enabled queue once. */
	virtio_dev_process_queue(d, 0);
	virtio_dev_process_queue(d, 1);
	f->fake.ready_calls = 0;

	/* Without ioeventfd, the notify write exits and only signals the
	 * queue's eventfd... */
	make_avail(f, 0x1000, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE);
	wr(f, VIRTIO_PCI_NOTIFY_OFFSET + 4 * 1, 2, 1);
	pfd.fd = virtio_dev_kick_fd(d, 1);
	assert_int_equal(poll(&pfd, 1, 0), 1);
	assert_int_equal(f->fake.ready_calls, 0);
	/* ...which the worker turns into a queue_ready call. */
	virtio_dev_process_queue(d, 1);
	assert_int_equal(f->fake.ready_calls, 1);
	assert_int_equal(f->fake.last_queue, 1);
	assert_int_equal(f->fake.popped, 1);
	assert_int_equal(poll(&pfd, 1, 0), 0);   /* drained */
	/* Notify addresses past the queues do nothing. */
	wr(f, VIRTIO_PCI_NOTIFY_OFFSET + 4 * NQ, 2, NQ);
	pfd.fd = virtio_dev_kick_fd(d, 0);
	assert_int_equal(poll(&pfd, 1, 0), 0);
}

static void test_no_handler_before_driver_ok(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *d = virtio_pci_dev(f->vp);

	negotiate(f);
	setup_queue(f, 0, 16, 0);
	wr(f, VIRTIO_PCI_NOTIFY_OFFSET, 2, 0);
	virtio_dev_process_queue(d, 0);
	assert_int_equal(f->fake.ready_calls, 0);
}

static bool eventfd_fired(int fd)
{
	uint64_t v;

	return read(fd, &v, sizeof(v)) == sizeof(v);
}

/* Enables MSI-X and unmasks every vector, as a driver would. */
static void msix_on(struct fx *f)
{
	struct msix *m = &f->vp->msix;
	uint16_t ctrl = PCI_MSIX_FLAGS_ENABLE;

	for (unsigned v = 0; v < m->nvectors; v++) {
		uint64_t e = VIRTIO_PCI_MSIX_TABLE_OFFSET + 16 * v;

		wr(f, e + PCI_MSIX_ENTRY_ADDR_LO, 4, 0xfee00000);
		wr(f, e + PCI_MSIX_ENTRY_DATA, 4, 0x40 + v);
		wr(f, e + PCI_MSIX_ENTRY_CTRL, 4, 0);
	}
	pci_config_set(&f->vp->pci, m->cap + PCI_MSIX_FLAGS, 2,
		       pci_config_get(&f->vp->pci, m->cap + PCI_MSIX_FLAGS, 2) | ctrl);
	msix_config_written(m, m->cap + PCI_MSIX_FLAGS, 2);
	assert_true(msix_enabled(m));
}

static void test_msix_delivery(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *d = virtio_pci_dev(f->vp);
	struct msix *m = &f->vp->msix;

	/* Vector numbers beyond the table read back as NO_VECTOR. */
	wr(f, COMMON(MSIX), 2, NQ + 1);
	assert_int_equal(rd(f, COMMON(MSIX), 2), VIRTIO_MSI_NO_VECTOR);
	wr(f, COMMON(MSIX), 2, NQ);
	assert_int_equal(rd(f, COMMON(MSIX), 2), NQ);

	driver_ok(f);   /* config vector 0, queue q vector q + 1 */
	msix_on(f);
	virtio_dev_process_queue(d, 0);
	virtio_dev_process_queue(d, 1);
	for (unsigned v = 0; v < m->nvectors; v++)
		eventfd_fired(msix_vector_eventfd(m, v));

	make_avail(f, 0x1000, 0, 2, BUF, 8, VIRTQ_DESC_F_WRITE);
	virtio_dev_kick(d, 1);
	virtio_dev_process_queue(d, 1);
	assert_true(eventfd_fired(msix_vector_eventfd(m, 2)));
	assert_false(eventfd_fired(msix_vector_eventfd(m, 1)));
	assert_false(f->intx.level);

	virtio_config_changed(d);
	assert_true(eventfd_fired(msix_vector_eventfd(m, 0)));

	/* NO_VECTOR: the driver wants no interrupt for that queue. */
	wr(f, COMMON(Q_SELECT), 2, 1);
	wr(f, COMMON(Q_MSIX), 2, 0xffff);
	make_avail(f, 0x1000, 1, 3, BUF, 8, VIRTQ_DESC_F_WRITE);
	virtio_dev_process_queue(d, 1);
	assert_int_equal(f->fake.popped, 2);
	for (unsigned v = 0; v < m->nvectors; v++)
		assert_false(eventfd_fired(msix_vector_eventfd(m, v)));
	assert_false(f->intx.level);
}

static void test_intx_and_isr(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *d = virtio_pci_dev(f->vp);

	driver_ok(f);   /* MSI-X stays disabled: INTx */
	virtio_dev_process_queue(d, 0);
	virtio_dev_process_queue(d, 1);
	make_avail(f, 0, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE);
	virtio_dev_process_queue(d, 0);
	assert_true(f->intx.level);
	assert_int_equal(f->intx.raises, 1);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFFSET, 1), VIRTIO_PCI_ISR_QUEUE);
	assert_false(f->intx.level);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFFSET, 1), 0);   /* read-to-clear */

	virtio_config_changed(d);
	assert_true(f->intx.level);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFFSET, 1), VIRTIO_PCI_ISR_CONFIG);
	assert_false(f->intx.level);
}

static void test_event_idx_suppresses_interrupt(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *d = virtio_pci_dev(f->vp);
	uint16_t used_event = 5;

	driver_ok(f);
	virtio_dev_process_queue(d, 0);
	virtio_dev_process_queue(d, 1);
	/* Driver: "interrupt me once entry 5 is used". */
	assert_int_equal(guest_memory_write(&f->mem, AVAIL + 4 + 2 * 16, &used_event, 2), 0);
	make_avail(f, 0, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE);
	virtio_dev_process_queue(d, 0);
	/* The first decision has nothing to compare with: notify. */
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFFSET, 1), VIRTIO_PCI_ISR_QUEUE);
	make_avail(f, 0, 1, 1, BUF, 8, VIRTQ_DESC_F_WRITE);
	virtio_dev_process_queue(d, 0);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFFSET, 1), 0);
	assert_int_equal(f->fake.popped, 2);
}

/* --- errors --- */

static void test_bad_chain_needs_reset(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *d = virtio_pci_dev(f->vp);

	driver_ok(f);
	virtio_dev_process_queue(d, 0);
	virtio_dev_process_queue(d, 1);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFFSET, 1), 0);
	/* A buffer outside RAM. */
	make_avail(f, 0, 0, 0, RAM - 4, 8, VIRTQ_DESC_F_WRITE);
	virtio_dev_process_queue(d, 0);
	assert_int_equal(status(f), 0x0f | VIRTIO_STATUS_NEEDS_RESET);
	/* §2.1.2: with DRIVER_OK, a configuration change notification. */
	assert_true(f->intx.level);
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFFSET, 1), VIRTIO_PCI_ISR_CONFIG);
	/* The device stops: no more handler calls, on any queue. */
	make_avail(f, 0x1000, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE);
	virtio_dev_process_queue(d, 1);
	assert_int_equal(f->fake.ready_calls, 3);
	assert_int_equal(f->fake.popped, 0);
	/* The driver cannot clear NEEDS_RESET by writing status... */
	set_status(f, 0x0f);
	assert_int_equal(status(f), 0x4f);
	/* ...only a reset does; the driver then starts with fresh rings. */
	set_status(f, 0);
	assert_int_equal(status(f), 0);
	assert_int_equal(guest_memory_write(&f->mem, AVAIL + 2, &(uint16_t){ 0 }, 2), 0);
	assert_int_equal(guest_memory_write(&f->mem, AVAIL + 0x1000 + 2, &(uint16_t){ 0 }, 2), 0);
	driver_ok(f);
	virtio_dev_process_queue(d, 0);
	virtio_dev_process_queue(d, 1);
	assert_int_equal(status(f), 0x0f);
	make_avail(f, 0, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE);
	virtio_dev_process_queue(d, 0);
	assert_int_equal(f->fake.popped, 1);
	assert_int_equal(f->fake.activations, 2);
}

/* --- configuration --- */

static void test_device_config_and_generation(void **state)
{
	struct fx *f = *state;
	struct virtio_dev *d = virtio_pci_dev(f->vp);
	uint8_t gen;

	memcpy(f->fake.config, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFFSET, 4), 0x04030201);
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFFSET + 4, 4), 0x08070605);
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFFSET, 8), 0x0807060504030201ULL);
	/* Past config_size, or straddling its end: 0, not handed on. */
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFFSET + 6, 4), 0);
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFFSET + 8, 1), 0);
	wr(f, VIRTIO_PCI_DEVICE_OFFSET + 6, 4, 0xffffffff);
	wr(f, VIRTIO_PCI_DEVICE_OFFSET + 0x100, 4, 0xffffffff);
	assert_int_equal(f->fake.config_writes, 0);
	wr(f, VIRTIO_PCI_DEVICE_OFFSET + 2, 2, 0xbeef);
	assert_int_equal(f->fake.config_writes, 1);
	assert_int_equal(rd(f, VIRTIO_PCI_DEVICE_OFFSET + 2, 2), 0xbeef);

	gen = rd(f, COMMON(CFGGENERATION), 1);
	driver_ok(f);
	assert_int_equal(rd(f, COMMON(CFGGENERATION), 1), gen);
	virtio_config_changed(d);
	assert_int_equal(rd(f, COMMON(CFGGENERATION), 1), (uint8_t)(gen + 1));
	assert_int_equal(rd(f, VIRTIO_PCI_ISR_OFFSET, 1), VIRTIO_PCI_ISR_CONFIG);
	/* Generation is read-only. */
	wr(f, COMMON(CFGGENERATION), 1, 0);
	assert_int_equal(rd(f, COMMON(CFGGENERATION), 1), (uint8_t)(gen + 1));
}

/* --- on a bus: PCI cfg access capability and the worker thread --- */

static void plug(struct fx *f)
{
	char err[128];

	assert_int_equal(pci_bus_init(&f->bus, 0xc0000000ULL, 0x10000000ULL, 0, 0), 0);
	f->on_bus = true;
	if (virtio_pci_plug(f->vp, &f->bus, err, sizeof(err)))
		fail_msg("plug: %s", err);
	assert_true(f->vp->pci.slot > 0);
}

/* The used idx of the queue at base once it reaches want (or 2 s). */
static uint16_t wait_used(struct fx *f, uint64_t base, uint16_t want)
{
	/* The worker writes it concurrently: read it as the guest would. */
	uint16_t *p = guest_memory_ptr(&f->mem, USED + base + 2, 2), idx = 0;

	assert_non_null(p);
	for (int i = 0; i < 2000; i++) {
		struct timespec ts = { 0, 1000000 };

		idx = __atomic_load_n(p, __ATOMIC_ACQUIRE);
		if (idx == want)
			break;
		nanosleep(&ts, NULL);
	}
	return idx;
}

static void cfg_write(struct fx *f, uint32_t off, uint32_t len, uint32_t v)
{
	pci_config_write(&f->bus, f->vp->pci.slot, 0, off, (const uint8_t *)&v, len);
}

static uint32_t cfg_read(struct fx *f, uint32_t off, uint32_t len)
{
	uint32_t v = 0;

	pci_config_read(&f->bus, f->vp->pci.slot, 0, off, (uint8_t *)&v, len);
	return v;
}

static void test_pci_cfg_window(void **state)
{
	struct fx *f = *state;
	int c = find_vendor_cap(f, VIRTIO_PCI_CAP_PCI_CFG);

	plug(f);
	assert_true(c > 0);
	/* §4.1.4.9: bar, offset, length, then data. */
	cfg_write(f, c + VIRTIO_PCI_CAP_BAR, 1, 0);
	cfg_write(f, c + VIRTIO_PCI_CAP_OFFSET, 4, COMMON(NUMQ));
	cfg_write(f, c + VIRTIO_PCI_CAP_LENGTH, 4, 2);
	assert_int_equal(cfg_read(f, c + VIRTIO_PCI_CFG_DATA, 4) & 0xffff, NQ);
	cfg_write(f, c + VIRTIO_PCI_CAP_OFFSET, 4, COMMON(STATUS));
	cfg_write(f, c + VIRTIO_PCI_CAP_LENGTH, 4, 1);
	cfg_write(f, c + VIRTIO_PCI_CFG_DATA, 4, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(status(f), VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(cfg_read(f, c + VIRTIO_PCI_CFG_DATA, 1), VIRTIO_STATUS_ACKNOWLEDGE);

	/* Refused windows: another BAR, length 3 or 8, misaligned, past
	 * the BAR. Nothing happens; the data register keeps its value. */
	cfg_write(f, c + VIRTIO_PCI_CAP_BAR, 1, 2);
	cfg_write(f, c + VIRTIO_PCI_CFG_DATA, 1, 0x03);
	assert_int_equal(status(f), VIRTIO_STATUS_ACKNOWLEDGE);
	cfg_write(f, c + VIRTIO_PCI_CAP_BAR, 1, 0);
	cfg_write(f, c + VIRTIO_PCI_CAP_LENGTH, 4, 3);
	cfg_write(f, c + VIRTIO_PCI_CFG_DATA, 4, 0x03);
	cfg_write(f, c + VIRTIO_PCI_CAP_LENGTH, 4, 8);
	cfg_write(f, c + VIRTIO_PCI_CFG_DATA, 4, 0x03);
	cfg_write(f, c + VIRTIO_PCI_CAP_LENGTH, 4, 2);
	cfg_write(f, c + VIRTIO_PCI_CAP_OFFSET, 4, COMMON(STATUS) - 1);
	cfg_write(f, c + VIRTIO_PCI_CFG_DATA, 4, 0x0300);
	cfg_write(f, c + VIRTIO_PCI_CAP_LENGTH, 4, 4);
	cfg_write(f, c + VIRTIO_PCI_CAP_OFFSET, 4, VIRTIO_PCI_BAR_SIZE);
	cfg_write(f, c + VIRTIO_PCI_CFG_DATA, 4, 0x03);
	cfg_write(f, c + VIRTIO_PCI_CAP_OFFSET, 4, 0xfffffffc);
	cfg_write(f, c + VIRTIO_PCI_CFG_DATA, 4, 0x03);
	(void)cfg_read(f, c + VIRTIO_PCI_CFG_DATA, 4);
	assert_int_equal(status(f), VIRTIO_STATUS_ACKNOWLEDGE);
	/* The cap's type and the other read-only fields stay. */
	cfg_write(f, c + VIRTIO_PCI_CAP_CFG_TYPE, 1, 1);
	assert_int_equal(cfg_read(f, c + VIRTIO_PCI_CAP_CFG_TYPE, 1), VIRTIO_PCI_CAP_PCI_CFG);
	/* A notify through the window reaches the worker. */
	set_status(f, 0);
	driver_ok(f);
	make_avail(f, 0, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE);
	cfg_write(f, c + VIRTIO_PCI_CAP_OFFSET, 4, VIRTIO_PCI_NOTIFY_OFFSET);
	cfg_write(f, c + VIRTIO_PCI_CAP_LENGTH, 4, 2);
	cfg_write(f, c + VIRTIO_PCI_CFG_DATA, 2, 0);
	assert_int_equal(wait_used(f, 0, 1), 1);
}

static void test_worker_thread_end_to_end(void **state)
{
	struct fx *f = *state;
	uint64_t bar;

	plug(f);
	bar = pci_device_bar_addr(&f->vp->pci, 0);
	assert_true(bar >= 0xc0000000ULL && bar < 0xd0000000ULL);
	driver_ok(f);
	make_avail(f, 0, 0, 0, BUF, 8, VIRTQ_DESC_F_WRITE);
	/* The guest's write through the bus window, as a vCPU exit would
	 * deliver it. */
	{
		uint16_t q = 0;

		pci_mmio32_window_ops.write(&f->bus, bar + VIRTIO_PCI_NOTIFY_OFFSET - 0xc0000000ULL,
					    (const uint8_t *)&q, 2);
	}
	assert_int_equal(wait_used(f, 0, 1), 1);
	/* Reset while the worker runs: it must not touch the queues after. */
	set_status(f, 0);
	assert_int_equal(status(f), 0);
}

static void test_reset_races_worker(void **state)
{
	struct fx *f = *state;
	uint16_t zero = 0;

	/* Kicks and resets in quick succession, the worker running: a reset
	 * waits for the handler, and the handler never sees a queue being
	 * torn down (ASan/TSan builds check the rest). */
	plug(f);
	for (int i = 0; i < 200; i++) {
		assert_int_equal(guest_memory_write(&f->mem, AVAIL + 2, &zero, 2), 0);
		driver_ok(f);
		make_avail(f, 0, 0, i % 16, BUF, 8, VIRTQ_DESC_F_WRITE);
		wr(f, VIRTIO_PCI_NOTIFY_OFFSET, 2, 0);
		set_status(f, 0);
		assert_int_equal(status(f), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_pci_identity_and_caps),
		T(test_feature_windows),
		T(test_status_sequence),
		T(test_features_ok_refused_unoffered),
		T(test_status_rules),
		T(test_activate_failure_needs_reset),
		T(test_reset_clears_everything),
		T(test_queue_select_out_of_range),
		T(test_queue_size_not_power_of_two),
		T(test_queue_size_too_big),
		T(test_queue_bad_address),
		T(test_queue_before_features_ok),
		T(test_queue_writes_after_driver_ok_ignored),
		T(test_odd_widths),
		T(test_notify_calls_handler),
		T(test_no_handler_before_driver_ok),
		T(test_msix_delivery),
		T(test_intx_and_isr),
		T(test_event_idx_suppresses_interrupt),
		T(test_bad_chain_needs_reset),
		T(test_device_config_and_generation),
		T(test_pci_cfg_window),
		T(test_worker_thread_end_to_end),
		T(test_reset_races_worker),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

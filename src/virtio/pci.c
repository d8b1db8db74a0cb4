#include "virtio/pci.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "util/log.h"
#include "virtio/worker.h"
#include "vmm/vm.h"

/* --- interrupts --- */

/* Delivers one interrupt: the vector when MSI-X is on (§4.1.5.3/4:
 * NO_VECTOR means the driver wants none), else the ISR bit and INTx. The
 * ISR bit is set in both cases, as QEMU does; only INTx drivers read it. */
static void interrupt(struct virtio_pci *vp, uint8_t isr_bit, uint16_t vector)
{
	enum msix_notify_result r = MSIX_DISABLED;

	if (vector != VIRTIO_MSI_NO_VECTOR)
		r = msix_notify(&vp->msix, vector);
	else if (msix_enabled(&vp->msix))
		r = MSIX_BAD_VECTOR;
	pthread_mutex_lock(&vp->isr_lock);
	vp->isr |= isr_bit;
	if (r == MSIX_DISABLED)
		irq_line_set(&vp->intx, true);
	pthread_mutex_unlock(&vp->isr_lock);
}

static void transport_notify_queue(void *opaque, unsigned q)
{
	struct virtio_pci *vp = opaque;

	interrupt(vp, VIRTIO_PCI_ISR_QUEUE, __atomic_load_n(&vp->queue_vector[q], __ATOMIC_ACQUIRE));
}

static void transport_notify_config(void *opaque)
{
	struct virtio_pci *vp = opaque;

	interrupt(vp, VIRTIO_PCI_ISR_CONFIG, __atomic_load_n(&vp->config_vector, __ATOMIC_ACQUIRE));
}

/* §4.1.4.5: reading the ISR clears it, and with it the INTx line. */
static uint8_t isr_read(struct virtio_pci *vp)
{
	uint8_t v;

	pthread_mutex_lock(&vp->isr_lock);
	v = vp->isr;
	vp->isr = 0;
	if (v)
		irq_line_set(&vp->intx, false);
	pthread_mutex_unlock(&vp->isr_lock);
	return v;
}

/* §4.1.5.1.2: a vector the function does not have maps to NO_VECTOR,
 * which the driver reads back as the failure. */
static uint16_t vector_value(struct virtio_pci *vp, uint16_t v)
{
	return v < vp->msix.nvectors ? v : VIRTIO_MSI_NO_VECTOR;
}

/* --- common configuration (§4.1.4.3), device lock held --- */

static void put(uint8_t *img, unsigned off, unsigned len, uint64_t v)
{
	for (unsigned i = 0; i < len; i++)
		img[off + i] = v >> (8 * i);
}

/* The registers as the driver sees them now (queue fields of the selected
 * queue; zeros for a queue that does not exist, so queue_size 0 says it
 * is unavailable). Any read is a slice of this image. */
static void common_image(struct virtio_pci *vp, uint8_t *img)
{
	struct virtio_dev *d = &vp->dev;
	struct virtq *q = virtio_dev_queue(d, vp->queue_select);

	memset(img, 0, VIRTIO_PCI_COMMON_SIZE);
	put(img, VIRTIO_PCI_COMMON_DFSELECT, 4, vp->dfselect);
	put(img, VIRTIO_PCI_COMMON_DF, 4, virtio_dev_device_features(d, vp->dfselect));
	put(img, VIRTIO_PCI_COMMON_GFSELECT, 4, vp->gfselect);
	put(img, VIRTIO_PCI_COMMON_GF, 4, virtio_dev_driver_features(d, vp->gfselect));
	put(img, VIRTIO_PCI_COMMON_MSIX, 2, vp->config_vector);
	put(img, VIRTIO_PCI_COMMON_NUMQ, 2, d->nqueues);
	put(img, VIRTIO_PCI_COMMON_STATUS, 1, virtio_dev_status(d));
	put(img, VIRTIO_PCI_COMMON_CFGGENERATION, 1, virtio_dev_config_generation(d));
	put(img, VIRTIO_PCI_COMMON_Q_SELECT, 2, vp->queue_select);
	if (!q) {
		put(img, VIRTIO_PCI_COMMON_Q_MSIX, 2, VIRTIO_MSI_NO_VECTOR);
		return;
	}
	put(img, VIRTIO_PCI_COMMON_Q_SIZE, 2, q->size);
	put(img, VIRTIO_PCI_COMMON_Q_MSIX, 2, vp->queue_vector[vp->queue_select]);
	put(img, VIRTIO_PCI_COMMON_Q_ENABLE, 2, q->enabled);
	put(img, VIRTIO_PCI_COMMON_Q_NOFF, 2, vp->queue_select);
	put(img, VIRTIO_PCI_COMMON_Q_DESCLO, 8, q->desc_addr);
	put(img, VIRTIO_PCI_COMMON_Q_AVAILLO, 8, q->driver_addr);
	put(img, VIRTIO_PCI_COMMON_Q_USEDLO, 8, q->device_addr);
}

static void common_read(struct virtio_pci *vp, uint64_t off, uint8_t *data, uint32_t len)
{
	uint8_t img[VIRTIO_PCI_COMMON_SIZE];

	virtio_dev_lock(&vp->dev);
	common_image(vp, img);
	virtio_dev_unlock(&vp->dev);
	memcpy(data, img + off, len);
}

static void reset_transport(struct virtio_pci *vp)
{
	vp->dfselect = vp->gfselect = 0;
	vp->queue_select = 0;
	__atomic_store_n(&vp->config_vector, VIRTIO_MSI_NO_VECTOR, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		__atomic_store_n(&vp->queue_vector[i], VIRTIO_MSI_NO_VECTOR, __ATOMIC_RELEASE);
	isr_read(vp);
}

/* A 32-bit half (or all 64 bits) of a queue address. */
static void set_addr(uint64_t *addr, uint64_t off, uint32_t len, uint64_t v)
{
	if (len == 8)
		*addr = v;
	else if (off & 4)
		*addr = (*addr & 0xffffffffULL) | (v << 32);
	else
		*addr = (*addr & ~0xffffffffULL) | (uint32_t)v;
}

static void common_write_locked(struct virtio_pci *vp, uint64_t off, uint32_t len, uint64_t v)
{
	struct virtio_dev *d = &vp->dev;
	unsigned qs = vp->queue_select;
	struct virtq *q = virtio_dev_queue(d, qs);
	/* §4.1.4.3.2 / §3.1.1: queue fields are set up before DRIVER_OK
	 * and before the queue is enabled; later writes are ignored. */
	bool qw = virtio_dev_queue_writable(d, qs);

	/* §4.1.3.1: each field is accessed with its own width (64-bit ones
	 * also as two 32-bit halves); other writes are dropped. */
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		if (len == 4)
			vp->dfselect = v;
		break;
	case VIRTIO_PCI_COMMON_GFSELECT:
		if (len == 4)
			vp->gfselect = v;
		break;
	case VIRTIO_PCI_COMMON_GF:
		if (len == 4)
			virtio_dev_set_driver_features(d, vp->gfselect, v);
		break;
	case VIRTIO_PCI_COMMON_MSIX:
		if (len == 2)
			__atomic_store_n(&vp->config_vector, vector_value(vp, v), __ATOMIC_RELEASE);
		break;
	case VIRTIO_PCI_COMMON_STATUS:
		if (len == 1 && virtio_dev_set_status(d, v))
			reset_transport(vp);
		break;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		if (len == 2)
			vp->queue_select = v;
		break;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		/* Checked (power of two, within the maximum) on enable. */
		if (len == 2 && qw)
			q->size = v;
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		if (len == 2 && q)
			__atomic_store_n(&vp->queue_vector[qs], vector_value(vp, v), __ATOMIC_RELEASE);
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		/* §4.1.4.3.2: the driver MUST NOT write 0; ignored. */
		if (len == 2 && v == 1)
			virtio_dev_queue_enable(d, qs);
		break;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
	case VIRTIO_PCI_COMMON_Q_DESCHI:
		if (qw && (len == 4 || (len == 8 && !(off & 4))))
			set_addr(&q->desc_addr, off, len, v);
		break;
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
		if (qw && (len == 4 || (len == 8 && !(off & 4))))
			set_addr(&q->driver_addr, off, len, v);
		break;
	case VIRTIO_PCI_COMMON_Q_USEDLO:
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		if (qw && (len == 4 || (len == 8 && !(off & 4))))
			set_addr(&q->device_addr, off, len, v);
		break;
	default:
		break;   /* read-only (device_feature, num_queues...) */
	}
}

static void common_write(struct virtio_pci *vp, uint64_t off, const uint8_t *data, uint32_t len)
{
	uint64_t v = 0;

	memcpy(&v, data, len);   /* little-endian host */
	virtio_dev_lock(&vp->dev);
	common_write_locked(vp, off, len, v);
	virtio_dev_unlock(&vp->dev);
}

/* --- the BAR --- */

static bool inside(uint64_t off, uint32_t len, uint64_t start, uint64_t size)
{
	return off >= start && off - start < size && len <= size - (off - start);
}

static void bar_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_pci *vp = opaque;
	uint32_t cfg_size = vp->dev.ops->config_size;

	if (msix_table_read(&vp->msix, off, data, len))
		return;
	memset(data, 0, len);
	if (inside(off, len, VIRTIO_PCI_COMMON_OFFSET, VIRTIO_PCI_COMMON_SIZE)) {
		common_read(vp, off - VIRTIO_PCI_COMMON_OFFSET, data, len);
	} else if (off == VIRTIO_PCI_ISR_OFFSET) {
		data[0] = isr_read(vp);
	} else if (inside(off, len, VIRTIO_PCI_DEVICE_OFFSET, cfg_size)) {
		virtio_dev_lock(&vp->dev);
		virtio_dev_read_config(&vp->dev, off - VIRTIO_PCI_DEVICE_OFFSET, data, len);
		virtio_dev_unlock(&vp->dev);
	}
	/* The notify region and the gaps read 0. */
}

static void bar_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_pci *vp = opaque;
	uint32_t cfg_size = vp->dev.ops->config_size;
	uint64_t notify_size = (uint64_t)vp->dev.nqueues * VIRTIO_PCI_NOTIFY_MULTIPLIER;

	if (msix_table_write(&vp->msix, off, data, len))
		return;
	if (inside(off, len, VIRTIO_PCI_COMMON_OFFSET, VIRTIO_PCI_COMMON_SIZE)) {
		common_write(vp, off - VIRTIO_PCI_COMMON_OFFSET, data, len);
	} else if (inside(off, len, VIRTIO_PCI_DEVICE_OFFSET, cfg_size)) {
		virtio_dev_lock(&vp->dev);
		virtio_dev_write_config(&vp->dev, off - VIRTIO_PCI_DEVICE_OFFSET, data, len);
		virtio_dev_unlock(&vp->dev);
	} else if (inside(off, len, VIRTIO_PCI_NOTIFY_OFFSET, notify_size)) {
		/* §4.1.4.4: the address names the queue; the value written
		 * (its index) is not needed. This is the path without
		 * ioeventfd: hand the kick to the worker. */
		virtio_dev_kick(&vp->dev, (off - VIRTIO_PCI_NOTIFY_OFFSET) / VIRTIO_PCI_NOTIFY_MULTIPLIER);
	}
}

const struct bus_ops virtio_pci_bar_ops = { .read = bar_read, .write = bar_write };

/* --- ioeventfds --- */

/* The length of the notify ioeventfds. 0 where KVM takes it
 * (KVM_CAP_IOEVENTFD_ANY_LENGTH, Linux 4.5): any write width signals, and
 * KVM puts the address on its fast MMIO bus, where Intel's EPT
 * misconfiguration exit skips the write without decoding it (QEMU's
 * virtio-pci registers its notify eventfds so too). Else 2: a driver
 * without VIRTIO_F_NOTIFICATION_DATA writes the 16-bit queue index
 * (§4.1.5.2); other widths take the exit path, to the same eventfd. */
static uint32_t ioeventfd_len(int vm_fd)
{
	return ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD_ANY_LENGTH) > 0 ? 0 : 2;
}

static int ioeventfd(struct virtio_pci *vp, unsigned q, uint64_t base, bool assign)
{
	struct kvm_ioeventfd io = {
		.addr = base + (uint64_t)q * VIRTIO_PCI_NOTIFY_MULTIPLIER,
		.len = vp->ioeventfd_len,
		.fd = virtio_dev_kick_fd(&vp->dev, q),
		.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	return ioctl(vp->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static void ioeventfds_unbind(struct virtio_pci *vp)
{
	for (unsigned q = 0; q < vp->dev.nqueues; q++) {
		int ret = vp->ioeventfd[q] ? ioeventfd(vp, q, vp->ioeventfd_base, false) : 0;

		if (ret)
			pr_warn("%s: removing the ioeventfd of queue %u: %s", vp->name, q,
				strerror(-ret));
		vp->ioeventfd[q] = false;
	}
	vp->ioeventfd_base = 0;
}

/* Puts the ioeventfds where the notify region is now: nowhere while
 * memory decoding is off, and at the new place after a BAR move. Bus
 * lock held (or the device not yet visible). */
static void ioeventfds_update(struct virtio_pci *vp)
{
	const struct pci_bar *bar = &vp->pci.bars[VIRTIO_PCI_BAR];
	bool decode = pci_config_get(&vp->pci, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY;
	uint64_t base = 0;
	int ret;

	if (vp->vm_fd < 0)
		return;
	if (decode && bar->addr && bar->addr + bar->size - 1 > bar->addr)
		base = bar->addr + VIRTIO_PCI_NOTIFY_OFFSET;
	if (base == vp->ioeventfd_base)
		return;
	ioeventfds_unbind(vp);
	if (!base)
		return;
	vp->ioeventfd_base = base;
	vp->ioeventfd_len = ioeventfd_len(vp->vm_fd);
	for (unsigned q = 0; q < vp->dev.nqueues; q++) {
		ret = ioeventfd(vp, q, base, true);
		if (ret) {
			pr_warn("%s: KVM_IOEVENTFD for queue %u at 0x%llx: %s; notifications exit",
				vp->name, q, (unsigned long long)base, strerror(-ret));
			continue;
		}
		vp->ioeventfd[q] = true;
	}
}

/* --- configuration space --- */

/* §4.1.4.9: the pci_cfg capability's window onto the BAR. Returns false
 * when the window does not describe an access the device does (BAR,
 * length 1, 2 or 4, offset aligned to it and inside the BAR). */
static bool cfg_window(struct virtio_pci *vp, uint32_t *off, uint32_t *len)
{
	int c = vp->cfg_cap;
	uint8_t bar = pci_config_get(&vp->pci, c + VIRTIO_PCI_CAP_BAR, 1);

	*off = pci_config_get(&vp->pci, c + VIRTIO_PCI_CAP_OFFSET, 4);
	*len = pci_config_get(&vp->pci, c + VIRTIO_PCI_CAP_LENGTH, 4);
	if (bar != VIRTIO_PCI_BAR || (*len != 1 && *len != 2 && *len != 4))
		return false;
	return !(*off & (*len - 1)) && *off <= VIRTIO_PCI_BAR_SIZE - *len;
}

static bool touches(uint32_t off, uint32_t len, uint32_t start, uint32_t size)
{
	return off < start + size && start < off + len;
}

static void config_written(struct pci_device *dev, uint32_t off, uint32_t len)
{
	struct virtio_pci *vp = dev->opaque;
	uint32_t woff, wlen;
	uint8_t data[4];

	if (touches(off, len, PCI_COMMAND, 2) || touches(off, len, PCI_BAR0, 8))
		ioeventfds_update(vp);
	if (touches(off, len, vp->cfg_cap + VIRTIO_PCI_CFG_DATA, 4) && cfg_window(vp, &woff, &wlen)) {
		for (uint32_t i = 0; i < wlen; i++)
			data[i] = dev->config[vp->cfg_cap + VIRTIO_PCI_CFG_DATA + i];
		bar_write(vp, woff, data, wlen);
	}
}

static void config_reading(struct pci_device *dev, uint32_t off, uint32_t len)
{
	struct virtio_pci *vp = dev->opaque;
	uint32_t woff, wlen;
	uint8_t data[4] = { 0 };

	if (!touches(off, len, vp->cfg_cap + VIRTIO_PCI_CFG_DATA, 4) || !cfg_window(vp, &woff, &wlen))
		return;
	bar_read(vp, woff, data, wlen);
	for (uint32_t i = 0; i < wlen; i++)
		dev->config[vp->cfg_cap + VIRTIO_PCI_CFG_DATA + i] = data[i];
}

static const struct pci_device_ops virtio_pci_device_ops = {
	.config_written = config_written,
	.config_reading = config_reading,
};

/* Appends a virtio vendor capability (§4.1.4: struct virtio_pci_cap and
 * its notify and pci_cfg extensions). extra: the 4 bytes after it. */
static int add_cap(struct virtio_pci *vp, uint8_t type, uint32_t offset, uint32_t length,
		   const uint32_t *extra, bool cfg_window_cap)
{
	uint8_t body[18] = { 0 }, wmask[18] = { 0 };
	uint8_t body_len = extra ? 18 : 14;

	/* body[i] is the capability's byte i + 2. */
	body[VIRTIO_PCI_CAP_LEN - 2] = body_len + 2;
	body[VIRTIO_PCI_CAP_CFG_TYPE - 2] = type;
	body[VIRTIO_PCI_CAP_BAR - 2] = VIRTIO_PCI_BAR;
	memcpy(&body[VIRTIO_PCI_CAP_OFFSET - 2], &offset, 4);
	memcpy(&body[VIRTIO_PCI_CAP_LENGTH - 2], &length, 4);
	if (extra)
		memcpy(&body[16 - 2], extra, 4);
	if (cfg_window_cap) {
		/* §4.1.4.9: bar, offset, length and data are the driver's. */
		wmask[VIRTIO_PCI_CAP_BAR - 2] = 0xff;
		memset(&wmask[VIRTIO_PCI_CAP_OFFSET - 2], 0xff, 8);
		memset(&wmask[VIRTIO_PCI_CFG_DATA - 2], 0xff, 4);
	}
	return pci_device_add_capability(&vp->pci, PCI_CAP_ID_VNDR, body, body_len, wmask);
}

/* PCI class per device type (base class, subclass, prog-if), as QEMU
 * presents them, so lspci reads the same. */
static uint32_t class_of(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET:
		return 0x020000;   /* network controller, Ethernet */
	case VIRTIO_ID_BLOCK:
		return 0x010000;   /* mass storage, SCSI */
	case VIRTIO_ID_CONSOLE:
		return 0x078000;   /* communication, other */
	default:
		return 0x00ff00;   /* unclassified */
	}
}

static int build(struct virtio_pci *vp, struct irq_routing *routing, char *err, size_t errlen)
{
	const struct virtio_device_ops *ops = vp->dev.ops;
	uint32_t mult = VIRTIO_PCI_NOTIFY_MULTIPLIER, zero = 0;
	int ret;

	pci_device_init(&vp->pci, vp->name, VIRTIO_PCI_VENDOR_ID,
			VIRTIO_PCI_DEVICE_ID_BASE + ops->device_id, class_of(ops->device_id),
			1, VIRTIO_PCI_VENDOR_ID, VIRTIO_PCI_SUBSYS_ID);
	vp->pci.ops = &virtio_pci_device_ops;
	vp->pci.opaque = vp;
	pci_device_set_intx_pin(&vp->pci, 1);
	ret = pci_device_set_bar(&vp->pci, VIRTIO_PCI_BAR, VIRTIO_PCI_BAR_SIZE, PCI_BAR_MEM64,
				 &virtio_pci_bar_ops, vp);
	if (ret) {
		snprintf(err, errlen, "%s: BAR: %s", vp->name, strerror(-ret));
		return ret;
	}
	if ((ret = add_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFFSET,
			   VIRTIO_PCI_COMMON_SIZE, NULL, false)) < 0 ||
	    (ret = add_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFFSET,
			   vp->dev.nqueues * VIRTIO_PCI_NOTIFY_MULTIPLIER, &mult, false)) < 0 ||
	    (ret = add_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFFSET, 1, NULL, false)) < 0 ||
	    (ops->config_size &&
	     (ret = add_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFFSET,
			    ops->config_size, NULL, false)) < 0) ||
	    (ret = add_cap(vp, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, &zero, true)) < 0) {
		snprintf(err, errlen, "%s: capabilities: %s", vp->name, strerror(-ret));
		return ret;
	}
	vp->cfg_cap = ret;
	/* One vector per queue and one for configuration changes, what
	 * Linux asks for first (vp_find_vqs_msix). */
	ret = msix_init(&vp->msix, &vp->pci, vp->dev.nqueues + 1, VIRTIO_PCI_BAR,
			VIRTIO_PCI_MSIX_TABLE_OFFSET, VIRTIO_PCI_MSIX_PBA_OFFSET, routing);
	if (ret) {
		snprintf(err, errlen, "%s: MSI-X: %s", vp->name, strerror(-ret));
		return ret;
	}
	return 0;
}

struct virtio_pci *virtio_pci_new(const struct guest_memory *mem, int vm_fd,
				  struct irq_routing *routing,
				  const struct virtio_device_ops *ops, void *dev_opaque,
				  char *err, size_t errlen)
{
	struct virtio_pci *vp;
	struct virtio_transport t = {
		.notify_queue = transport_notify_queue,
		.notify_config = transport_notify_config,
	};
	int ret;

	if (ops->config_size > VIRTIO_PCI_DEVICE_MAX || ops->nqueues > VIRTIO_MAX_QUEUES) {
		snprintf(err, errlen, "%s: bad device description", ops->name ? ops->name : "virtio");
		return NULL;
	}
	vp = calloc(1, sizeof(*vp));
	if (!vp) {
		snprintf(err, errlen, "virtio-pci: out of memory");
		return NULL;
	}
	snprintf(vp->name, sizeof(vp->name), "%s", ops->name ? ops->name : "virtio");
	vp->vm_fd = vm_fd;
	vp->msix.cap = -1;
	pthread_mutex_init(&vp->isr_lock, NULL);
	t.opaque = vp;
	ret = virtio_dev_init(&vp->dev, ops, dev_opaque, mem, &t);
	if (ret) {
		snprintf(err, errlen, "%s: %s", vp->name, strerror(-ret));
		pthread_mutex_destroy(&vp->isr_lock);
		free(vp);
		return NULL;
	}
	reset_transport(vp);
	if (build(vp, routing, err, errlen))
		goto fail;
	vp->worker = virtio_worker_create(vp->name, err, errlen);
	if (!vp->worker)
		goto fail;
	ret = virtio_worker_watch_queues(vp->worker, &vp->dev);
	if (ret) {
		snprintf(err, errlen, "%s: worker: %s", vp->name, strerror(-ret));
		goto fail;
	}
	return vp;
fail:
	virtio_pci_destroy(vp);
	return NULL;
}

int virtio_pci_plug(struct virtio_pci *vp, struct pci_bus *bus, char *err, size_t errlen)
{
	/* The worker first: it only waits until the device is set up, and
	 * a failure leaves nothing on the bus (which has no removal). */
	int ret = virtio_worker_start(vp->worker, err, errlen);

	if (ret)
		return ret;
	ret = pci_bus_add_device(bus, &vp->pci);
	if (ret < 0) {
		snprintf(err, errlen, "%s: no room on the PCI bus: %s", vp->name, strerror(-ret));
		return ret;
	}
	/* Not visible to a running guest yet: no bus lock needed. */
	ioeventfds_update(vp);
	pr_debug("%s: PCI slot %d, BAR 0x%llx, %s notifications", vp->name, vp->pci.slot,
		 (unsigned long long)vp->pci.bars[VIRTIO_PCI_BAR].addr,
		 vp->ioeventfd_base ? "ioeventfd" : "exit-path");
	return 0;
}

void virtio_pci_set_intx(struct virtio_pci *vp, const struct irq_line *line)
{
	pthread_mutex_lock(&vp->isr_lock);
	vp->intx = *line;
	pthread_mutex_unlock(&vp->isr_lock);
}

struct virtio_pci *virtio_pci_create(struct vm *vm, struct pci_bus *bus,
				     struct irq_routing *routing,
				     const struct virtio_device_ops *ops, void *dev_opaque,
				     char *err, size_t errlen)
{
	struct virtio_pci *vp = virtio_pci_new(&vm->mem, vm->fd, routing, ops, dev_opaque,
					       err, errlen);
	struct irq_line line;
	int gsi;

	if (!vp)
		return NULL;
	if (virtio_pci_plug(vp, bus, err, errlen)) {
		virtio_pci_destroy(vp);   /* not on the bus: plug adds it last */
		return NULL;
	}
	gsi = pci_device_intx_gsi(&vp->pci);
	if (gsi >= 0) {
		vm_irq_line(vm, (unsigned)gsi, &line);
		virtio_pci_set_intx(vp, &line);
	}
	return vp;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	if (!vp)
		return;
	/* The worker first: nothing may touch the queues afterwards. */
	virtio_worker_destroy(vp->worker);
	vp->worker = NULL;
	if (vp->vm_fd >= 0)
		ioeventfds_unbind(vp);
	msix_destroy(&vp->msix);
	virtio_dev_destroy(&vp->dev);
	pthread_mutex_destroy(&vp->isr_lock);
	free(vp);
}

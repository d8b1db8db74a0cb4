/* The virtio PCI transport, modern only (virtio 1.2 §4.1): no legacy I/O
 * BAR, device ID 0x1040 + type, revision 1 (§4.1.2.1).
 *
 * One 64-bit memory BAR (BAR 0, taking BAR 1 as its upper half) holds
 * every register, each region on its own page:
 *
 *   0x0000  common configuration (§4.1.4.3), 0x38 bytes
 *   0x1000  ISR status (§4.1.4.5), 1 byte, read-to-clear
 *   0x2000  device configuration (§4.1.4.6), config_size bytes (no
 *           capability when the device has none)
 *   0x3000  notifications (§4.1.4.4): queue q at 0x3000 + 4 * q
 *           (queue_notify_off = q, notify_off_multiplier = 4)
 *   0x4000  MSI-X table (nqueues + 1 vectors), 0x6000 its PBA
 *
 * plus the PCI configuration access capability (§4.1.4.9), which reaches
 * the same registers through configuration space.
 *
 * Interrupts: MSI-X (vector per queue, plus one for configuration
 * changes, as the driver assigns them through queue_msix_vector and
 * config_msix_vector), each an eventfd bound to the guest with KVM_IRQFD
 * (src/pci/msix.c). When the driver has not enabled MSI-X, INTx pin A
 * with the ISR (§4.1.5.3/4.1.5.4): the ISR bits are set and the line is
 * raised; reading the ISR clears both. The PCI status register's
 * Interrupt bit is not maintained, and INTx Disable is not honoured.
 *
 * Notifications: each queue's notify address is a KVM_IOEVENTFD on that
 * queue's kick eventfd, so a kick never exits to user space; the worker
 * thread (virtio/worker.c) waits on those eventfds. When ioeventfd is
 * not available (no VM fd, or the ioctl fails) the write exits to the
 * vCPU thread, which only signals the same eventfd. The ioeventfds
 * follow the BAR when the guest moves it or turns memory decoding off.
 */
#ifndef POPEK_VIRTIO_PCI_H
#define POPEK_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pci/msix.h"
#include "pci/pci.h"
#include "virtio/virtio.h"
#include "vmm/device.h"

#define VIRTIO_PCI_VENDOR_ID        0x1af4
#define VIRTIO_PCI_DEVICE_ID_BASE   0x1040   /* + virtio device ID (§4.1.2.1) */
#define VIRTIO_PCI_SUBSYS_ID        0x1100   /* >= 0x40 for modern devices */

/* Capability types (§4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG   1
#define VIRTIO_PCI_CAP_NOTIFY_CFG   2
#define VIRTIO_PCI_CAP_ISR_CFG      3
#define VIRTIO_PCI_CAP_DEVICE_CFG   4
#define VIRTIO_PCI_CAP_PCI_CFG      5

/* Offsets inside a virtio capability (§4.1.4: struct virtio_pci_cap). */
#define VIRTIO_PCI_CAP_LEN          2
#define VIRTIO_PCI_CAP_CFG_TYPE     3
#define VIRTIO_PCI_CAP_BAR          4
#define VIRTIO_PCI_CAP_ID           5
#define VIRTIO_PCI_CAP_OFFSET       8
#define VIRTIO_PCI_CAP_LENGTH       12
#define VIRTIO_PCI_NOTIFY_MULTIPLIER_OFF 16   /* notify cap */
#define VIRTIO_PCI_CFG_DATA         16        /* pci_cfg cap */

/* Common configuration registers (§4.1.4.3). */
#define VIRTIO_PCI_COMMON_DFSELECT      0x00
#define VIRTIO_PCI_COMMON_DF            0x04
#define VIRTIO_PCI_COMMON_GFSELECT      0x08
#define VIRTIO_PCI_COMMON_GF            0x0c
#define VIRTIO_PCI_COMMON_MSIX          0x10
#define VIRTIO_PCI_COMMON_NUMQ          0x12
#define VIRTIO_PCI_COMMON_STATUS        0x14
#define VIRTIO_PCI_COMMON_CFGGENERATION 0x15
#define VIRTIO_PCI_COMMON_Q_SELECT      0x16
#define VIRTIO_PCI_COMMON_Q_SIZE        0x18
#define VIRTIO_PCI_COMMON_Q_MSIX        0x1a
#define VIRTIO_PCI_COMMON_Q_ENABLE      0x1c
#define VIRTIO_PCI_COMMON_Q_NOFF        0x1e
#define VIRTIO_PCI_COMMON_Q_DESCLO      0x20
#define VIRTIO_PCI_COMMON_Q_DESCHI      0x24
#define VIRTIO_PCI_COMMON_Q_AVAILLO     0x28
#define VIRTIO_PCI_COMMON_Q_AVAILHI     0x2c
#define VIRTIO_PCI_COMMON_Q_USEDLO      0x30
#define VIRTIO_PCI_COMMON_Q_USEDHI      0x34
#define VIRTIO_PCI_COMMON_SIZE          0x38

#define VIRTIO_PCI_ISR_QUEUE        0x1
#define VIRTIO_PCI_ISR_CONFIG       0x2
#define VIRTIO_MSI_NO_VECTOR        0xffff

/* The BAR layout above. */
#define VIRTIO_PCI_BAR              0
#define VIRTIO_PCI_COMMON_OFFSET    0x0000
#define VIRTIO_PCI_ISR_OFFSET       0x1000
#define VIRTIO_PCI_DEVICE_OFFSET    0x2000
#define VIRTIO_PCI_DEVICE_MAX       0x1000   /* config_size at most */
#define VIRTIO_PCI_NOTIFY_OFFSET    0x3000
#define VIRTIO_PCI_NOTIFY_MULTIPLIER 4
#define VIRTIO_PCI_MSIX_TABLE_OFFSET 0x4000
#define VIRTIO_PCI_MSIX_PBA_OFFSET  0x6000
#define VIRTIO_PCI_BAR_SIZE         0x8000

/* Treat as opaque outside virtio/pci.c and its tests. */
struct virtio_pci {
	struct pci_device pci;
	struct msix msix;
	struct virtio_dev dev;
	struct virtio_worker *worker;
	int vm_fd;                       /* -1: no ioeventfd (tests) */
	char name[32];

	/* Guest-visible transport registers, under the device lock. */
	uint32_t dfselect, gfselect;
	uint16_t queue_select;
	uint16_t config_vector;          /* atomic: read by notifiers */
	uint16_t queue_vector[VIRTIO_MAX_QUEUES];   /* atomic, ditto */

	/* ISR and INTx level move together under isr_lock. */
	pthread_mutex_t isr_lock;
	uint8_t isr;
	struct irq_line intx;

	/* ioeventfds, under the bus lock (config writes) or at creation. */
	uint64_t ioeventfd_base;         /* guest address of the notify region; 0: none */
	uint32_t ioeventfd_len;          /* as bound: 0 (any width) or 2 */
	bool ioeventfd[VIRTIO_MAX_QUEUES];
	int cfg_cap;                     /* config offset of the pci_cfg capability */
};

/* Builds the PCI function (not yet on a bus) for a device type: header,
 * BAR, capabilities, MSI-X (routing may be NULL: no KVM routes), the
 * virtio_dev and a worker thread (created, not started). vm_fd < 0: no
 * ioeventfd, notifications exit to the vCPU. NULL on failure with err
 * set. */
struct virtio_pci *virtio_pci_new(const struct guest_memory *mem, int vm_fd,
				  struct irq_routing *routing,
				  const struct virtio_device_ops *ops, void *dev_opaque,
				  char *err, size_t errlen);

/* Starts the worker, adds the function to bus (BAR assigned) and binds
 * the ioeventfds. Returns 0 or -errno with err set; on failure the
 * function is not on the bus and virtio_pci_destroy() frees it. */
int virtio_pci_plug(struct virtio_pci *vp, struct pci_bus *bus, char *err, size_t errlen);

/* The line INTx pin A drives (after plug: pci_device_intx_gsi gives the
 * GSI). Without it, a driver that does not enable MSI-X gets no
 * interrupts. */
void virtio_pci_set_intx(struct virtio_pci *vp, const struct irq_line *line);

/* Everything at once for a VM being built (before vCPUs run): new with
 * vm->mem and vm->fd, plug on bus, INTx through KVM_IRQ_LINE on the GSI
 * the bus wired pin A to. bus and routing come from pci_attach(). */
struct virtio_pci *virtio_pci_create(struct vm *vm, struct pci_bus *bus,
				     struct irq_routing *routing,
				     const struct virtio_device_ops *ops, void *dev_opaque,
				     char *err, size_t errlen);

/* Stops the worker, unbinds the ioeventfds, frees everything. The bus
 * must no longer dispatch to it (vCPUs joined, bus destroyed or about to
 * be). NULL is fine. */
void virtio_pci_destroy(struct virtio_pci *vp);

static inline struct virtio_dev *virtio_pci_dev(struct virtio_pci *vp)
{
	return &vp->dev;
}

/* The BAR's accesses (opaque: struct virtio_pci), offset relative to BAR
 * 0; the bus calls them, tests may too. */
extern const struct bus_ops virtio_pci_bar_ops;

#endif

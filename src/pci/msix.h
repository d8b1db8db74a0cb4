/* MSI-X (PCI Local Bus 3.0 §6.8.2): the capability in config space, the
 * vector table and the pending-bit array (PBA) in a memory BAR, and the
 * path from a vector to the guest: each vector owns an eventfd bound with
 * KVM_IRQFD to a GSI whose KVM route is an MSI route carrying the
 * vector's address and data.
 *
 * A device model (e.g. the virtio-pci transport):
 *   - declares a memory BAR that holds the table and the PBA,
 *   - calls msix_init() once before pci_bus_add_device(),
 *   - forwards accesses inside the table/PBA to msix_table_read/write()
 *     from its BAR handler (both return false for offsets outside the
 *     table and the PBA, so the handler can go on with its own registers),
 *     or uses msix_bar_ops when the table and PBA have a BAR to themselves,
 *   - calls msix_notify() to interrupt the guest, from any thread.
 * Config-space writes to the capability (enable, function mask) reach the
 * MSI-X model through the bus itself (pci_device.msix): the device's own
 * pci_device_ops need not forward them.
 *
 * Lock order: the bus lock, then msix.lock, then the irq_routing lock.
 */
#ifndef POPEK_PCI_MSIX_H
#define POPEK_PCI_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"

struct pci_device;
struct irq_routing;

/* Capability layout (PCI 3.0 §6.8.2.1-6.8.2.5), offsets from its start. */
#define PCI_MSIX_FLAGS            2       /* Message Control, 16 bits */
#define PCI_MSIX_FLAGS_QSIZE      0x07ff  /* table size - 1 */
#define PCI_MSIX_FLAGS_MASKALL    0x4000  /* function mask */
#define PCI_MSIX_FLAGS_ENABLE     0x8000
#define PCI_MSIX_TABLE            4       /* table offset | BIR */
#define PCI_MSIX_PBA              8       /* PBA offset | BIR */
#define PCI_MSIX_BIR_MASK         0x7
#define PCI_MSIX_CAP_SIZE         12

/* Table entries (§6.8.2.6-6.8.2.9): 16 bytes each. */
#define PCI_MSIX_ENTRY_SIZE       16
#define PCI_MSIX_ENTRY_ADDR_LO    0
#define PCI_MSIX_ENTRY_ADDR_HI    4
#define PCI_MSIX_ENTRY_DATA       8
#define PCI_MSIX_ENTRY_CTRL       12
#define PCI_MSIX_ENTRY_CTRL_MASKBIT 0x1

#define MSIX_MAX_VECTORS          2048    /* the table size field is 11 bits */

/* Bytes the table and the PBA of n vectors take (the PBA is a whole
 * number of qwords, §6.8.2.10). */
#define MSIX_TABLE_SIZE(n)        ((uint64_t)(n) * PCI_MSIX_ENTRY_SIZE)
#define MSIX_PBA_SIZE(n)          ((((uint64_t)(n) + 63) / 64) * 8)

struct msix_vector {
	uint32_t addr_lo, addr_hi, data, ctrl;  /* the guest's table entry */
	int eventfd;        /* notify writes here; bound to gsi with KVM_IRQFD */
	int gsi;            /* KVM route of this vector, -1 until first unmasked */
	uint32_t routed_addr_lo, routed_addr_hi, routed_data; /* what gsi carries */
};

struct msix {
	struct pci_device *dev;
	struct irq_routing *routing;   /* NULL: no KVM routes (unit tests) */
	unsigned nvectors;
	unsigned bar;
	uint64_t table_offset, pba_offset;  /* in the BAR */
	int cap;                       /* config-space offset of the capability */

	pthread_mutex_t lock;          /* everything below */
	bool enabled;                  /* Message Control: MSI-X Enable */
	bool function_masked;          /* Message Control: Function Mask */
	struct msix_vector *vectors;
	uint64_t *pba;                 /* one bit per vector */
};

/* Adds the capability to dev (table size nvectors, table and PBA at the
 * given offsets of BAR bar, each 8-byte aligned as §6.8.2.4/5 require, not
 * overlapping, inside the BAR if the BAR is already declared), creates one
 * eventfd per vector, and links dev->msix to m. Every vector starts
 * masked, MSI-X disabled (§6.8.2.3, §6.8.2.9). routing may be NULL.
 * Returns 0 or a negative errno (-EINVAL, -EEXIST: dev has MSI-X
 * already, -ENOSPC: no room for the capability, -ENOMEM, -EMFILE...);
 * on failure dev is unchanged and m needs no msix_destroy. */
int msix_init(struct msix *m, struct pci_device *dev, unsigned nvectors, unsigned bar,
	      uint64_t table_offset, uint64_t pba_offset, struct irq_routing *routing);
/* Removes the vectors' routes and irqfds and closes their eventfds. */
void msix_destroy(struct msix *m);

/* BAR accesses, offset relative to the start of the BAR. They return false
 * when [offset, offset + len) is not inside the table or the PBA (the
 * caller handles it). Inside, accesses other than an aligned 4 or 8 bytes
 * are ignored and read all-ones; PBA writes are ignored (read-only). */
bool msix_table_read(struct msix *m, uint64_t offset, uint8_t *data, uint32_t len);
bool msix_table_write(struct msix *m, uint64_t offset, const uint8_t *data, uint32_t len);

/* bus_ops (opaque: struct msix *) for a BAR holding only the table and
 * PBA; offsets relative to the BAR; anything else reads all-ones. */
extern const struct bus_ops msix_bar_ops;

enum msix_notify_result {
	MSIX_DELIVERED = 0,     /* the vector's eventfd was signalled */
	MSIX_PENDING = 1,       /* masked (function or vector): pending bit set,
				 * delivered when unmasked (§6.8.2.9) */
	MSIX_DISABLED = 2,      /* MSI-X not enabled: the function uses INTx
				 * (§6.8.2.3); nothing recorded, the caller
				 * raises INTx if it supports it */
	MSIX_BAD_VECTOR = -1,   /* vector >= nvectors (e.g. virtio's NO_VECTOR) */
};

/* Signals vector; safe from any thread. */
enum msix_notify_result msix_notify(struct msix *m, unsigned vector);

/* The eventfd of vector (KVM_IRQFD-bound once the vector is routed), or -1
 * for a bad vector. Writing it directly bypasses masking and the PBA; use
 * msix_notify unless something outside popek (e.g. vhost) signals it. */
int msix_vector_eventfd(struct msix *m, unsigned vector);

bool msix_enabled(struct msix *m);
/* Whether vector is masked by its own mask bit or the function mask.
 * A bad vector counts as masked. */
bool msix_vector_masked(struct msix *m, unsigned vector);
bool msix_vector_pending(struct msix *m, unsigned vector);

/* Called by the bus after a config write touched [offset, offset + len)
 * of m->dev, with the bus lock held; picks up enable and function mask. */
void msix_config_written(struct msix *m, uint32_t offset, uint32_t len);

#endif

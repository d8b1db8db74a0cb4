/* PCI: one host bridge, one bus (bus 0), up to 32 single-function devices.
 *
 * There is no firmware, so the VMM does what a BIOS would: it assigns every
 * BAR an address (32-bit BARs in the window below the MMIO hole's devices,
 * 64-bit BARs in a window above RAM) and enables decoding. A guest may
 * still size and move BARs (PCI Local Bus 3.0 §6.2.5.1); the bus follows.
 *
 * Configuration space reaches devices through port 0xCF8/0xCFC (PCI 3.0
 * §3.2.2.3.2, mechanism #1) and through ECAM (PCIe 4.0 §7.2.2, described by
 * the ACPI MCFG table). Both end in pci_config_read/write.
 *
 * BAR accesses: the bus registers its two address windows on the VM's MMIO
 * bus once, when the VM is built, and dispatches inside them itself, so
 * BARs can move at run time without touching the VM's frozen bus table.
 */
#ifndef POPEK_PCI_PCI_H
#define POPEK_PCI_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"

#define PCI_CONFIG_SPACE_SIZE   4096    /* PCIe extended configuration space */
#define PCI_MAX_DEVICES         32
#define PCI_NUM_BARS            6

/* Standard header offsets (PCI 3.0 §6.1). */
#define PCI_VENDOR_ID           0x00
#define PCI_DEVICE_ID           0x02
#define PCI_COMMAND             0x04
#define PCI_STATUS              0x06
#define PCI_REVISION_ID         0x08
#define PCI_CLASS_PROG          0x09
#define PCI_HEADER_TYPE         0x0e
#define PCI_BAR0                0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID        0x2e
#define PCI_CAPABILITY_LIST     0x34
#define PCI_INTERRUPT_LINE      0x3c
#define PCI_INTERRUPT_PIN       0x3d

#define PCI_COMMAND_IO          0x0001
#define PCI_COMMAND_MEMORY      0x0002
#define PCI_COMMAND_MASTER      0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_CAP_LIST     0x0010

#define PCI_CAP_ID_MSIX         0x11
#define PCI_CAP_ID_VNDR         0x09

enum pci_bar_flags {
	PCI_BAR_MEM32 = 0,
	PCI_BAR_MEM64 = 1 << 0,       /* takes this BAR and the next */
	PCI_BAR_PREFETCH = 1 << 1,
	PCI_BAR_IO = 1 << 2,
};

struct pci_device;

/* What a device does beyond the generic config-space model. */
struct pci_device_ops {
	/* Called after the generic model has applied a config write that
	 * touched [offset, offset + len) (e.g. MSI-X enable, virtio's
	 * pci_cfg window). May be NULL. */
	void (*config_written)(struct pci_device *dev, uint32_t offset, uint32_t len);
	/* Called before a config read of [offset, offset + len), so a device
	 * can refresh registers with side effects. May be NULL. */
	void (*config_reading)(struct pci_device *dev, uint32_t offset, uint32_t len);
};

struct pci_bar {
	uint64_t size;                /* power of two, >= 4 KiB for memory; 0: unused */
	unsigned flags;               /* enum pci_bar_flags */
	uint64_t addr;                /* current guest address (as programmed) */
	const struct bus_ops *ops;    /* accesses, offset relative to the BAR */
	void *opaque;
};

struct pci_device {
	const char *name;
	const struct pci_device_ops *ops;
	void *opaque;                 /* the device model behind this function */
	uint8_t config[PCI_CONFIG_SPACE_SIZE];
	uint8_t wmask[PCI_CONFIG_SPACE_SIZE];   /* bits the guest may write */
	uint8_t w1cmask[PCI_CONFIG_SPACE_SIZE]; /* bits a 1 clears (status) */
	struct pci_bar bars[PCI_NUM_BARS];
	uint8_t next_cap;             /* where the next capability goes */
	int slot;                     /* device number on bus 0, -1 until added */
	struct pci_bus *bus;
};

struct pci_bus {
	struct pci_device *devices[PCI_MAX_DEVICES];
	/* Windows BARs are assigned from (guest-physical). */
	uint64_t mmio32_base, mmio32_size, mmio32_next;
	uint64_t mmio64_base, mmio64_size, mmio64_next;
	uint32_t cf8;                 /* the CONFIG_ADDRESS latch */
	/* Config writes (rare) take it for writing; BAR dispatch on the exit
	 * path takes it for reading, so vCPUs never wait on each other. */
	pthread_rwlock_t lock;
	unsigned irq_base;            /* first GSI for legacy INTx routing */
};

/* --- devices --- */

/* Sets up the header of a type-0 function: IDs, class (24 bits: class,
 * subclass, prog-if), revision, subsystem IDs, and the write masks of the
 * generic registers. */
void pci_device_init(struct pci_device *dev, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id);

/* Declares BAR n (size a power of two). Returns 0 or -EINVAL. */
int pci_device_set_bar(struct pci_device *dev, unsigned n, uint64_t size, unsigned flags,
		       const struct bus_ops *ops, void *opaque);

/* Appends a capability (PCI 3.0 §6.7) with body bytes after the 2-byte
 * header; its registers are read-only unless wmask_body says otherwise
 * (NULL: all read-only). Returns its config-space offset, or -ENOSPC. */
int pci_device_add_capability(struct pci_device *dev, uint8_t cap_id, const void *body,
			      uint8_t body_len, const void *wmask_body);

/* Little-endian accessors of the config image. */
uint32_t pci_config_get(const struct pci_device *dev, uint32_t offset, unsigned len);
void pci_config_set(struct pci_device *dev, uint32_t offset, unsigned len, uint32_t value);

/* --- the bus --- */

int pci_bus_init(struct pci_bus *bus, uint64_t mmio32_base, uint64_t mmio32_size,
		 uint64_t mmio64_base, uint64_t mmio64_size);
void pci_bus_destroy(struct pci_bus *bus);

/* Puts dev in the first free slot (after the host bridge in slot 0) and
 * assigns its BARs from the windows, as firmware would. Returns the slot
 * or a negative errno (-ENOSPC: no slot or window space). */
int pci_bus_add_device(struct pci_bus *bus, struct pci_device *dev);

/* Configuration access by (slot, function, offset); absent functions read
 * all-ones, as on real hardware. */
void pci_config_read(struct pci_bus *bus, unsigned slot, unsigned fn, uint32_t offset,
		     uint8_t *data, uint32_t len);
void pci_config_write(struct pci_bus *bus, unsigned slot, unsigned fn, uint32_t offset,
		      const uint8_t *data, uint32_t len);

/* bus_ops for the VM's buses, all with the pci_bus as opaque:
 * 0xCF8-0xCFF on the port-I/O bus, the ECAM window, and the two BAR
 * windows (registered at mmio32_base and mmio64_base). */
extern const struct bus_ops pci_cf8_ops;
extern const struct bus_ops pci_ecam_ops;
extern const struct bus_ops pci_mmio32_window_ops;
extern const struct bus_ops pci_mmio64_window_ops;

#endif

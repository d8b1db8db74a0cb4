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
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/device.h"

#define PCI_CONFIG_SPACE_SIZE   4096    /* PCIe extended configuration space */
#define PCI_MAX_DEVICES         32
#define PCI_NUM_BARS            6
#define PCI_HOST_BRIDGE_SLOT    0
/* The host bridge (src/pci/host_bridge.c): QEMU's generic PCIe host bridge
 * ID, which no guest driver binds to and no chipset quirk matches. */
#define PCI_HOST_BRIDGE_VENDOR  0x1b36
#define PCI_HOST_BRIDGE_DEVICE  0x0008
#define PCI_CLASS_BRIDGE_HOST   0x060000

/* Standard header offsets (PCI 3.0 §6.1). */
#define PCI_VENDOR_ID           0x00
#define PCI_DEVICE_ID           0x02
#define PCI_COMMAND             0x04
#define PCI_STATUS              0x06
#define PCI_REVISION_ID         0x08
#define PCI_CLASS_PROG          0x09
#define PCI_CACHE_LINE_SIZE     0x0c
#define PCI_LATENCY_TIMER       0x0d
#define PCI_HEADER_TYPE         0x0e
#define PCI_BIST                0x0f
#define PCI_BAR0                0x10
#define PCI_CARDBUS_CIS         0x28
#define PCI_ROM_ADDRESS         0x30
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID        0x2e
#define PCI_CAPABILITY_LIST     0x34
#define PCI_INTERRUPT_LINE      0x3c
#define PCI_INTERRUPT_PIN       0x3d
#define PCI_MIN_GNT             0x3e
#define PCI_MAX_LAT             0x3f
#define PCI_CAP_START           0x40    /* first byte after the type-0 header */
#define PCI_STD_CONFIG_SIZE     256     /* what 0xCF8/0xCFC reaches */

#define PCI_COMMAND_IO          0x0001
#define PCI_COMMAND_MEMORY      0x0002
#define PCI_COMMAND_MASTER      0x0004
#define PCI_COMMAND_PARITY      0x0040
#define PCI_COMMAND_SERR        0x0100
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_INTERRUPT    0x0008  /* read-only: INTx asserted */
#define PCI_STATUS_CAP_LIST     0x0010
/* Error bits, write-one-to-clear (PCI 3.0 §6.2.3). */
#define PCI_STATUS_W1C          0xf900

/* BAR register low bits (PCI 3.0 §6.2.5.1). */
#define PCI_BASE_ADDRESS_SPACE_IO    0x01
#define PCI_BASE_ADDRESS_MEM_TYPE_64 0x04
#define PCI_BASE_ADDRESS_MEM_PREFETCH 0x08
#define PCI_BASE_ADDRESS_MEM_MASK    (~0x0fULL)

/* 0xCF8 CONFIG_ADDRESS (PCI 3.0 §3.2.2.3.2). */
#define PCI_CF8_ENABLE          0x80000000u
#define PCI_CF8_PORT            0xcf8
#define PCI_CF8_PORTS           8       /* 0xCF8-0xCFB address, 0xCFC-0xCFF data */

/* 0xCF9, Intel's Reset Control Register (PIIX3/4 RCR, ICH RST_CNT): a
 * byte register inside the 0xCF8 range, modelled once the bus has a
 * stopper (pci_bus_set_stopper). */
#define PCI_RCR_PORT            0xcf9
#define PCI_RCR_SYS_RST         0x02    /* hard (system) rather than soft reset */
#define PCI_RCR_RST_CPU         0x04    /* writing 1 resets */
#define PCI_RCR_FULL_RST        0x08    /* full power cycle */
#define PCI_RCR_MASK            (PCI_RCR_SYS_RST | PCI_RCR_RST_CPU | PCI_RCR_FULL_RST)

/* Legacy INTx: slot s, pin p (1 = INTA) is wired to GSI
 * irq_base + (s + p - 1) % 4, the usual swizzle, on IOAPIC pins 16-19
 * (level-triggered, active-low: the ACPI _PRT or MP table says so). */
#define PCI_INTX_GSI_BASE       16

#define PCI_CAP_ID_MSIX         0x11
#define PCI_CAP_ID_VNDR         0x09

enum pci_bar_flags {
	PCI_BAR_MEM32 = 0,
	PCI_BAR_MEM64 = 1 << 0,       /* takes this BAR and the next */
	PCI_BAR_PREFETCH = 1 << 1,
	PCI_BAR_IO = 1 << 2,          /* not supported: pci_device_set_bar refuses it */
};

struct pci_device;
struct msix;

/* What a device does beyond the generic config-space model. */
struct pci_device_ops {
	/* Called after the generic model has applied a config write that
	 * touched [offset, offset + len) (e.g. virtio's pci_cfg window;
	 * MSI-X reaches its model without this, see pci_device.msix).
	 * May be NULL. Both hooks run with the bus lock held: they may use
	 * pci_config_get/set on dev, not pci_config_read/write. */
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
	uint8_t last_cap;             /* offset of the last capability, 0: none */
	int slot;                     /* device number on bus 0, -1 until added */
	struct pci_bus *bus;
	struct msix *msix;            /* set by msix_init; the bus forwards
				       * capability writes to it */
};

/* One enabled memory BAR as the windows decode it. */
struct pci_bar_map {
	uint64_t start, end;          /* [start, end] inclusive */
	struct pci_device *dev;
	unsigned bar;
};

struct pci_bus {
	struct pci_device *devices[PCI_MAX_DEVICES];
	/* Windows BARs are assigned from (guest-physical). */
	uint64_t mmio32_base, mmio32_size, mmio32_next;
	uint64_t mmio64_base, mmio64_size, mmio64_next;
	uint64_t ecam_base, ecam_size;  /* where pci_attach put ECAM; 0: none */
	_Atomic uint32_t cf8;         /* the CONFIG_ADDRESS latch */
	_Atomic uint8_t rcr;          /* 0xCF9 as last written, & PCI_RCR_MASK */
	struct vm_stopper stopper;    /* 0xCF9 resets through it; none: no RCR */
	/* Config accesses (rare) take it for writing; BAR dispatch on the
	 * exit path takes it for reading, so vCPUs never wait on each other. */
	pthread_rwlock_t lock;
	unsigned irq_base;            /* first GSI for legacy INTx routing */
	/* Decoded memory BARs, rebuilt under the write lock after every
	 * config write; the windows' dispatch searches it. */
	struct pci_bar_map map[PCI_MAX_DEVICES * PCI_NUM_BARS];
	unsigned nmap;
	atomic_uint_fast64_t unclaimed; /* window accesses no BAR decoded */
	struct pci_device host_bridge;  /* slot 0 */
};

/* The resources the firmware tables describe (ACPI DSDT host bridge _CRS,
 * MCFG): bus numbers, config ports, ECAM and the two BAR windows. */
struct pci_windows {
	unsigned bus_first, bus_last;   /* 0, 0 */
	uint16_t cf8_port, cf8_len;     /* 0xCF8, 8 */
	uint64_t ecam_base, ecam_size;  /* 0 when ECAM is not attached */
	uint64_t mmio32_base, mmio32_size;
	uint64_t mmio64_base, mmio64_size;  /* size 0: no 64-bit window */
	unsigned intx_gsi_base;             /* the _PRT's swizzle base (irq_base) */
};

/* --- devices --- */

/* Sets up the header of a type-0 function: IDs, class (24 bits: class,
 * subclass, prog-if), revision, subsystem IDs, and the write masks of the
 * generic registers. Clears the whole struct first: set ops and opaque
 * afterwards. */
void pci_device_init(struct pci_device *dev, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id);

/* Declares BAR n (size a power of two, memory BARs at least 4 KiB so two
 * never share a page; a 64-bit BAR also takes n + 1). Returns 0, -EINVAL
 * (bad n, size or flags, BAR taken) or -EOPNOTSUPP (I/O BARs). */
int pci_device_set_bar(struct pci_device *dev, unsigned n, uint64_t size, unsigned flags,
		       const struct bus_ops *ops, void *opaque);

/* Appends a capability (PCI 3.0 §6.7) with body bytes after the 2-byte
 * header; its registers are read-only unless wmask_body says otherwise
 * (NULL: all read-only). Returns its config-space offset, or -ENOSPC. */
int pci_device_add_capability(struct pci_device *dev, uint8_t cap_id, const void *body,
			      uint8_t body_len, const void *wmask_body);

/* Legacy INTx pin (1-4 = INTA-INTD; 0: none, the default). */
void pci_device_set_intx_pin(struct pci_device *dev, uint8_t pin);
/* The GSI dev's INTx pin is wired to, once added; -1 without a pin or slot. */
int pci_device_intx_gsi(const struct pci_device *dev);

/* The BAR's current guest address if the guest has memory decoding on,
 * else 0 (for log lines and tests; takes the bus lock). */
uint64_t pci_device_bar_addr(struct pci_device *dev, unsigned n);

/* Little-endian accessors of the config image, without locking and
 * without the write masks (the VMM's own view); out-of-range bytes read
 * 0 and are not written. */
uint32_t pci_config_get(const struct pci_device *dev, uint32_t offset, unsigned len);
void pci_config_set(struct pci_device *dev, uint32_t offset, unsigned len, uint32_t value);

/* --- the bus --- */

/* Also puts the host bridge in slot 0. The windows must not wrap and
 * must be 4 KiB aligned; mmio64_size may be 0 (64-bit BARs then go below
 * 4 GiB). Returns 0 or a negative errno. */
int pci_bus_init(struct pci_bus *bus, uint64_t mmio32_base, uint64_t mmio32_size,
		 uint64_t mmio64_base, uint64_t mmio64_size);
void pci_bus_destroy(struct pci_bus *bus);

/* Sets up dev as the host bridge (host_bridge.c); pci_bus_init does it. */
void pci_host_bridge_init(struct pci_device *dev);

void pci_bus_windows(const struct pci_bus *bus, struct pci_windows *w);

/* Gives the bus the machine's reset line: a byte write to 0xCF9 with
 * RST_CPU set then stops the VM with VM_STOP_RESET (status 0), and 0xCF9
 * reads back what was written (& PCI_RCR_MASK). Copies *stopper; NULL
 * takes it away (0xCF9 then reads all-ones and ignores writes). Call
 * while the VM is built, before vCPUs run. */
void pci_bus_set_stopper(struct pci_bus *bus, const struct vm_stopper *stopper);

/* The 64-bit window for a machine whose RAM ends at ram_end with
 * phys_bits of guest-physical address: from ram_end (at least 4 GiB)
 * rounded up to LAYOUT_PCI_MMIO64_ALIGN, LAYOUT_PCI_MMIO64_SIZE long or
 * less so it ends below 1 << phys_bits. Returns 0, or -ENOSPC when not
 * even one aligned GiB fits (then base and size are 0). */
int pci_mmio64_window(uint64_t ram_end, unsigned phys_bits, uint64_t *base, uint64_t *size);

/* Puts dev in the first free slot (after the host bridge in slot 0) and
 * assigns its BARs from the windows, as firmware would. Returns the slot
 * or a negative errno (-ENOSPC: no slot or window space). */
int pci_bus_add_device(struct pci_bus *bus, struct pci_device *dev);

/* Configuration access by (slot, function, offset); absent functions read
 * all-ones, as on real hardware. len must be 1, 2 or 4 and the access must
 * not cross a dword boundary (PCI 3.0 §3.2.2.3.2: config transactions are
 * one dword with byte enables); anything else reads all-ones and writes
 * nothing, as does offset + len > 4096. Take the bus lock. */
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

/* --- wiring (attach.c) --- */

struct vm;
struct irq_routing;

/* One call while the VM is built, before vCPUs run: sets up routing for
 * vm (irq_routing_init), bus with the windows of layout.h (the 64-bit one
 * above the VM's RAM, below the guest's MAXPHYADDR), and registers
 * 0xCF8-0xCFF on vm->pio and ECAM plus both windows on vm->mmio. Devices
 * are added afterwards with pci_bus_add_device. On failure err holds one
 * line and nothing needs undoing but pci_bus_destroy/irq_routing_destroy
 * of what was set up (both are safe on a zeroed struct). */
int pci_attach(struct vm *vm, struct pci_bus *bus, struct irq_routing *routing,
	       char *err, size_t errlen);

#endif

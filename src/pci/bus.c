/* The PCI configuration space model, bus 0, its config mechanisms (0xCF8,
 * ECAM) and the BAR windows. See pci.h and docs/pci.md. */
#include "pci/pci.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "pci/msix.h"

/* --- the config image --- */

uint32_t pci_config_get(const struct pci_device *dev, uint32_t offset, unsigned len)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < len && i < 4; i++) {
		if (offset + i < PCI_CONFIG_SPACE_SIZE)
			v |= (uint32_t)dev->config[offset + i] << (8 * i);
	}
	return v;
}

void pci_config_set(struct pci_device *dev, uint32_t offset, unsigned len, uint32_t value)
{
	for (unsigned i = 0; i < len && i < 4; i++) {
		if (offset + i < PCI_CONFIG_SPACE_SIZE)
			dev->config[offset + i] = value >> (8 * i);
	}
}

static void set_wmask(struct pci_device *dev, uint32_t offset, unsigned len, uint32_t mask)
{
	for (unsigned i = 0; i < len; i++)
		dev->wmask[offset + i] = mask >> (8 * i);
}

void pci_device_init(struct pci_device *dev, const char *name, uint16_t vendor, uint16_t device,
		     uint32_t class_code, uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(dev, 0, sizeof(*dev));
	dev->name = name;
	dev->slot = -1;
	dev->next_cap = PCI_CAP_START;

	pci_config_set(dev, PCI_VENDOR_ID, 2, vendor);
	pci_config_set(dev, PCI_DEVICE_ID, 2, device);
	pci_config_set(dev, PCI_REVISION_ID, 1, revision);
	pci_config_set(dev, PCI_CLASS_PROG, 3, class_code & 0xffffff);
	pci_config_set(dev, PCI_HEADER_TYPE, 1, 0);   /* type 0, single function */
	pci_config_set(dev, PCI_SUBSYSTEM_VENDOR_ID, 2, subsys_vendor);
	pci_config_set(dev, PCI_SUBSYSTEM_ID, 2, subsys_id);

	/* PCI 3.0 §6.2.2: I/O, memory, bus master, parity and SERR# enables
	 * and the INTx disable bit are the command bits a device of ours
	 * implements; the others (special cycles, MWI, VGA snoop, fast
	 * back-to-back) are hardwired to 0. */
	set_wmask(dev, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER |
		  PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE);
	/* §6.2.3: the error bits of the status register are cleared by
	 * writing 1; everything else there is read-only. */
	dev->w1cmask[PCI_STATUS] = PCI_STATUS_W1C & 0xff;
	dev->w1cmask[PCI_STATUS + 1] = PCI_STATUS_W1C >> 8;
	/* §6.2.4: cache line size and latency timer are read/write
	 * (software writes them; we do nothing with them), as is the
	 * interrupt line (a scratch register for the OS). */
	dev->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
	dev->wmask[PCI_LATENCY_TIMER] = 0xff;
	dev->wmask[PCI_INTERRUPT_LINE] = 0xff;
	/* BARs stay read-only zero (unimplemented, §6.2.5.1) until
	 * pci_device_set_bar; so do the expansion ROM BAR and CardBus CIS. */
}

static bool bar_is_upper_half(const struct pci_device *dev, unsigned n)
{
	return n > 0 && dev->bars[n - 1].size && (dev->bars[n - 1].flags & PCI_BAR_MEM64);
}

int pci_device_set_bar(struct pci_device *dev, unsigned n, uint64_t size, unsigned flags,
		       const struct bus_ops *ops, void *opaque)
{
	uint32_t reg = PCI_BAR0 + 4 * n;
	uint32_t low = 0;
	uint64_t mask;

	if (flags & PCI_BAR_IO)
		return -EOPNOTSUPP;
	if (flags & ~(unsigned)(PCI_BAR_MEM64 | PCI_BAR_PREFETCH))
		return -EINVAL;
	if (n >= PCI_NUM_BARS || dev->bars[n].size || bar_is_upper_half(dev, n))
		return -EINVAL;
	/* Memory BARs: at least 4 KiB, so no two devices share a page
	 * (PCI 3.0 §6.2.5.1 recommends it), a power of two. */
	if (size < 4096 || (size & (size - 1)))
		return -EINVAL;
	if (flags & PCI_BAR_MEM64) {
		if (n + 1 >= PCI_NUM_BARS || dev->bars[n + 1].size)
			return -EINVAL;
		if (size > (1ULL << 63))
			return -EINVAL;
	} else if (size > (1ULL << 31)) {
		return -EINVAL;
	}

	dev->bars[n] = (struct pci_bar){
		.size = size, .flags = flags, .addr = 0, .ops = ops, .opaque = opaque,
	};
	if (flags & PCI_BAR_MEM64)
		low |= PCI_BASE_ADDRESS_MEM_TYPE_64;
	if (flags & PCI_BAR_PREFETCH)
		low |= PCI_BASE_ADDRESS_MEM_PREFETCH;
	pci_config_set(dev, reg, 4, low);
	/* The address bits below the size are hardwired to zero: writing
	 * all-ones reads back ~(size - 1) | type bits, which is how
	 * software sizes a BAR (§6.2.5.1). */
	mask = ~(size - 1);
	set_wmask(dev, reg, 4, (uint32_t)mask & ~0xfu);
	if (flags & PCI_BAR_MEM64) {
		pci_config_set(dev, reg + 4, 4, 0);
		set_wmask(dev, reg + 4, 4, (uint32_t)(mask >> 32));
	}
	return 0;
}

int pci_device_add_capability(struct pci_device *dev, uint8_t cap_id, const void *body,
			      uint8_t body_len, const void *wmask_body)
{
	unsigned off = dev->next_cap;
	unsigned end = off + 2 + body_len;

	/* Capabilities live in the device-specific part of the standard
	 * space, dword aligned (the pointers' low 2 bits are reserved,
	 * PCI 3.0 §6.7). next_cap below 0x40 means the space is used up. */
	if (off < PCI_CAP_START || end > PCI_STD_CONFIG_SIZE)
		return -ENOSPC;
	dev->config[off] = cap_id;
	dev->config[off + 1] = 0;          /* end of the list */
	if (body_len)
		memcpy(&dev->config[off + 2], body, body_len);
	if (wmask_body && body_len)
		memcpy(&dev->wmask[off + 2], wmask_body, body_len);

	if (dev->last_cap)
		dev->config[dev->last_cap + 1] = off;
	else
		dev->config[PCI_CAPABILITY_LIST] = off;
	dev->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	dev->last_cap = off;
	end = (end + 3) & ~3u;
	dev->next_cap = end >= PCI_STD_CONFIG_SIZE ? 0 : end;
	return off;
}

void pci_device_set_intx_pin(struct pci_device *dev, uint8_t pin)
{
	dev->config[PCI_INTERRUPT_PIN] = pin <= 4 ? pin : 0;
}

int pci_device_intx_gsi(const struct pci_device *dev)
{
	unsigned pin = dev->config[PCI_INTERRUPT_PIN];

	if (!dev->bus || dev->slot < 0 || pin < 1 || pin > 4)
		return -1;
	return dev->bus->irq_base + (dev->slot + pin - 1) % 4;
}

/* The address software programmed into BAR n (the image holds it). */
static uint64_t bar_address(const struct pci_device *dev, unsigned n)
{
	uint32_t reg = PCI_BAR0 + 4 * n;
	uint64_t addr = pci_config_get(dev, reg, 4) & PCI_BASE_ADDRESS_MEM_MASK & 0xffffffffULL;

	if (dev->bars[n].flags & PCI_BAR_MEM64)
		addr |= (uint64_t)pci_config_get(dev, reg + 4, 4) << 32;
	return addr;
}

uint64_t pci_device_bar_addr(struct pci_device *dev, unsigned n)
{
	uint64_t addr = 0;
	struct pci_bus *bus = dev->bus;

	if (n >= PCI_NUM_BARS)
		return 0;
	if (bus)
		pthread_rwlock_rdlock(&bus->lock);
	if (dev->bars[n].size && (pci_config_get(dev, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY))
		addr = dev->bars[n].addr;
	if (bus)
		pthread_rwlock_unlock(&bus->lock);
	return addr;
}

/* --- the bus --- */

/* Rebuilds the table of decoded BARs; write lock held. A BAR decodes when
 * its device has memory space enabled (PCI 3.0 §6.2.2). BARs that wrap
 * the address space are left out; overlaps are sorted out at dispatch. */
static void rebuild_map(struct pci_bus *bus)
{
	unsigned n = 0;

	for (unsigned s = 0; s < PCI_MAX_DEVICES; s++) {
		struct pci_device *dev = bus->devices[s];

		if (!dev)
			continue;
		bool mem = pci_config_get(dev, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY;

		for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
			struct pci_bar *bar = &dev->bars[b];

			if (!bar->size)
				continue;
			bar->addr = bar_address(dev, b);
			if (!mem || bar->addr + bar->size - 1 < bar->addr)
				continue;
			bus->map[n++] = (struct pci_bar_map){
				.start = bar->addr, .end = bar->addr + bar->size - 1,
				.dev = dev, .bar = b,
			};
		}
	}
	bus->nmap = n;
}

int pci_bus_init(struct pci_bus *bus, uint64_t mmio32_base, uint64_t mmio32_size,
		 uint64_t mmio64_base, uint64_t mmio64_size)
{
	if ((mmio32_base | mmio32_size | mmio64_base | mmio64_size) & 0xfff)
		return -EINVAL;
	if (mmio32_size == 0 || mmio32_base + mmio32_size - 1 < mmio32_base ||
	    mmio32_base + mmio32_size > (1ULL << 32))
		return -EINVAL;
	if (mmio64_size && mmio64_base + mmio64_size - 1 < mmio64_base)
		return -EINVAL;

	memset(bus, 0, sizeof(*bus));
	if (pthread_rwlock_init(&bus->lock, NULL))
		return -ENOMEM;
	bus->mmio32_base = bus->mmio32_next = mmio32_base;
	bus->mmio32_size = mmio32_size;
	bus->mmio64_base = bus->mmio64_next = mmio64_base;
	bus->mmio64_size = mmio64_size;
	bus->irq_base = PCI_INTX_GSI_BASE;
	atomic_init(&bus->cf8, 0);
	atomic_init(&bus->rcr, 0);
	atomic_init(&bus->unclaimed, 0);

	pci_host_bridge_init(&bus->host_bridge);
	bus->host_bridge.slot = PCI_HOST_BRIDGE_SLOT;
	bus->host_bridge.bus = bus;
	bus->devices[PCI_HOST_BRIDGE_SLOT] = &bus->host_bridge;
	return 0;
}

void pci_bus_destroy(struct pci_bus *bus)
{
	/* Safe on a zeroed struct (pci_attach failing early). */
	if (bus->host_bridge.bus != bus)
		return;
	pthread_rwlock_destroy(&bus->lock);
	memset(bus->devices, 0, sizeof(bus->devices));
	bus->host_bridge.bus = NULL;
	bus->nmap = 0;
}

void pci_bus_windows(const struct pci_bus *bus, struct pci_windows *w)
{
	*w = (struct pci_windows){
		.bus_first = 0, .bus_last = 0,
		.cf8_port = PCI_CF8_PORT, .cf8_len = PCI_CF8_PORTS,
		.ecam_base = bus->ecam_base, .ecam_size = bus->ecam_size,
		.mmio32_base = bus->mmio32_base, .mmio32_size = bus->mmio32_size,
		.mmio64_base = bus->mmio64_base, .mmio64_size = bus->mmio64_size,
		.intx_gsi_base = bus->irq_base,
	};
}

void pci_bus_set_stopper(struct pci_bus *bus, const struct vm_stopper *stopper)
{
	if (stopper)
		bus->stopper = *stopper;
	else
		bus->stopper = (struct vm_stopper){ 0 };
	atomic_store_explicit(&bus->rcr, 0, memory_order_relaxed);
}

int pci_mmio64_window(uint64_t ram_end, unsigned phys_bits, uint64_t *base, uint64_t *size)
{
	uint64_t b = ram_end < GiB(4) ? GiB(4) : ram_end;
	uint64_t limit, s;

	*base = *size = 0;
	if (phys_bits > 63)
		phys_bits = 63;
	limit = 1ULL << phys_bits;
	if (b > limit - LAYOUT_PCI_MMIO64_ALIGN)
		return -ENOSPC;
	b = (b + LAYOUT_PCI_MMIO64_ALIGN - 1) & ~(LAYOUT_PCI_MMIO64_ALIGN - 1);
	if (b >= limit || limit - b < LAYOUT_PCI_MMIO64_ALIGN)
		return -ENOSPC;
	s = limit - b;
	if (s > LAYOUT_PCI_MMIO64_SIZE)
		s = LAYOUT_PCI_MMIO64_SIZE;
	s &= ~(LAYOUT_PCI_MMIO64_ALIGN - 1);
	*base = b;
	*size = s;
	return 0;
}

/* Next address aligned to size in [*next, base + wsize), or 0 if none. */
static uint64_t window_alloc(uint64_t *next, uint64_t base, uint64_t wsize, uint64_t size)
{
	uint64_t a = (*next + size - 1) & ~(size - 1);

	if (a < *next || a < base || a - base > wsize || size > wsize - (a - base))
		return 0;
	*next = a + size;
	return a;
}

int pci_bus_add_device(struct pci_bus *bus, struct pci_device *dev)
{
	uint64_t addr[PCI_NUM_BARS] = { 0 };
	uint64_t next32, next64;
	int slot = -1;

	pthread_rwlock_wrlock(&bus->lock);
	for (unsigned s = 0; s < PCI_MAX_DEVICES; s++) {
		if (bus->devices[s] == dev) {
			pthread_rwlock_unlock(&bus->lock);
			return -EEXIST;
		}
		if (!bus->devices[s] && slot < 0)
			slot = s;
	}
	if (slot < 0)
		goto nospace;

	/* Firmware-like assignment (what SeaBIOS or OVMF would leave for the
	 * OS): 64-bit BARs above RAM when there is a 64-bit window, the rest
	 * in the 32-bit window, each naturally aligned. Computed first so a
	 * device that does not fit changes nothing. */
	next32 = bus->mmio32_next;
	next64 = bus->mmio64_next;
	for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
		const struct pci_bar *bar = &dev->bars[b];

		if (!bar->size)
			continue;
		if ((bar->flags & PCI_BAR_MEM64) && bus->mmio64_size)
			addr[b] = window_alloc(&next64, bus->mmio64_base, bus->mmio64_size, bar->size);
		else
			addr[b] = window_alloc(&next32, bus->mmio32_base, bus->mmio32_size, bar->size);
		if (!addr[b])
			goto nospace;
	}
	bus->mmio32_next = next32;
	bus->mmio64_next = next64;

	for (unsigned b = 0; b < PCI_NUM_BARS; b++) {
		const struct pci_bar *bar = &dev->bars[b];
		uint32_t reg = PCI_BAR0 + 4 * b;

		if (!bar->size)
			continue;
		pci_config_set(dev, reg, 4, (pci_config_get(dev, reg, 4) & 0xf) | (uint32_t)addr[b]);
		if (bar->flags & PCI_BAR_MEM64)
			pci_config_set(dev, reg + 4, 4, addr[b] >> 32);
	}
	pci_config_set(dev, PCI_COMMAND, 2,
		       pci_config_get(dev, PCI_COMMAND, 2) | PCI_COMMAND_MEMORY);
	dev->slot = slot;
	dev->bus = bus;
	if (pci_device_intx_gsi(dev) >= 0)
		dev->config[PCI_INTERRUPT_LINE] = pci_device_intx_gsi(dev);
	bus->devices[slot] = dev;
	rebuild_map(bus);
	pthread_rwlock_unlock(&bus->lock);
	return slot;

nospace:
	pthread_rwlock_unlock(&bus->lock);
	return -ENOSPC;
}

/* --- configuration access --- */

/* PCI 3.0 §3.2.2.3.2: a configuration transaction addresses one dword and
 * selects bytes in it with byte enables. An access that is not 1, 2 or 4
 * bytes, or spills into the next dword, has no such encoding: we define
 * it as reading all-ones and writing nothing. */
static bool config_access_ok(uint32_t offset, uint32_t len)
{
	if (len != 1 && len != 2 && len != 4)
		return false;
	if (offset >= PCI_CONFIG_SPACE_SIZE || (offset & 3) + len > 4)
		return false;
	return true;
}

static struct pci_device *find_device(struct pci_bus *bus, unsigned slot, unsigned fn)
{
	/* Every device is single-function (header type bit 7 clear), so
	 * functions 1-7 are absent. */
	if (slot >= PCI_MAX_DEVICES || fn != 0)
		return NULL;
	return bus->devices[slot];
}

void pci_config_read(struct pci_bus *bus, unsigned slot, unsigned fn, uint32_t offset,
		     uint8_t *data, uint32_t len)
{
	struct pci_device *dev;

	memset(data, 0xff, len);
	if (!config_access_ok(offset, len))
		return;
	/* Writer lock: config_reading may refresh the image. */
	pthread_rwlock_wrlock(&bus->lock);
	dev = find_device(bus, slot, fn);
	if (dev) {
		if (dev->ops && dev->ops->config_reading)
			dev->ops->config_reading(dev, offset, len);
		memcpy(data, &dev->config[offset], len);
	}
	pthread_rwlock_unlock(&bus->lock);
}

static bool ranges_overlap(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
	return a < b + blen && b < a + alen;
}

void pci_config_write(struct pci_bus *bus, unsigned slot, unsigned fn, uint32_t offset,
		      const uint8_t *data, uint32_t len)
{
	struct pci_device *dev;

	if (!config_access_ok(offset, len))
		return;
	pthread_rwlock_wrlock(&bus->lock);
	dev = find_device(bus, slot, fn);
	if (!dev) {
		pthread_rwlock_unlock(&bus->lock);
		return;
	}
	for (uint32_t i = 0; i < len; i++) {
		uint32_t o = offset + i;
		uint8_t wm = dev->wmask[o], w1c = dev->w1cmask[o];

		dev->config[o] = (dev->config[o] & ~wm) | (data[i] & wm);
		dev->config[o] &= ~(data[i] & w1c);
	}
	/* BAR moves and decode changes take effect for the next access. */
	if (ranges_overlap(offset, len, PCI_COMMAND, 2) ||
	    ranges_overlap(offset, len, PCI_BAR0, 4 * PCI_NUM_BARS))
		rebuild_map(bus);
	if (dev->msix && dev->msix->cap > 0 &&
	    ranges_overlap(offset, len, dev->msix->cap, PCI_MSIX_CAP_SIZE))
		msix_config_written(dev->msix, offset, len);
	if (dev->ops && dev->ops->config_written)
		dev->ops->config_written(dev, offset, len);
	pthread_rwlock_unlock(&bus->lock);
}

/* --- 0xCF8/0xCFC: configuration mechanism #1 (PCI 3.0 §3.2.2.3.2) --- */

/*
 * 0xCF9 is not part of mechanism #1 but Intel's Reset Control Register,
 * which shares the dword: PIIX3/PIIX4 "RCR" and ICH "RST_CNT", byte-wide.
 * RST_CPU (bit 2) going to 1 resets the machine, SYS_RST (bit 1) and
 * FULL_RST (bit 3) choose how hard; all three read back as written. A
 * VM has one kind of reset, so every write with RST_CPU set stops it
 * for a reset, as QEMU's PIIX and ICH9 do. Linux writes it with
 * reboot=pci (BOOT_CF9_FORCE) and, as BOOT_CF9_SAFE once its 0xCF8 probe
 * worked, after the ACPI reset register, keyboard controller, EFI and
 * BIOS methods: it reads the register, writes SYS_RST, then SYS_RST |
 * RST_CPU (| FULL_RST) (arch/x86/kernel/reboot.c). Past it there is only
 * a triple fault.
 */
static bool rcr_access(const struct pci_bus *bus, uint64_t offset, uint32_t len)
{
	return offset == PCI_RCR_PORT - PCI_CF8_PORT && len == 1 && bus->stopper.stop;
}

static void rcr_write(struct pci_bus *bus, uint8_t v)
{
	atomic_store_explicit(&bus->rcr, v & PCI_RCR_MASK, memory_order_relaxed);
	if (v & PCI_RCR_RST_CPU)
		vm_stopper_request(&bus->stopper, VM_STOP_RESET, 0);
}

static bool cf8_decode(struct pci_bus *bus, uint64_t port_offset, unsigned *slot, unsigned *fn,
		       uint32_t *reg)
{
	uint32_t cf8 = atomic_load_explicit(&bus->cf8, memory_order_relaxed);

	/* The data port forwards only while the enable bit is set; other
	 * buses than 0 do not exist here. */
	if (!(cf8 & PCI_CF8_ENABLE) || ((cf8 >> 16) & 0xff) != 0)
		return false;
	*slot = (cf8 >> 11) & 0x1f;
	*fn = (cf8 >> 8) & 0x7;
	*reg = (cf8 & 0xfc) + (uint32_t)(port_offset - 4);
	return true;
}

static void cf8_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct pci_bus *bus = opaque;
	unsigned slot, fn;
	uint32_t reg;

	memset(data, 0xff, len);
	if (rcr_access(bus, offset, len)) {
		data[0] = atomic_load_explicit(&bus->rcr, memory_order_relaxed);
		return;
	}
	if (offset < 4) {
		/* CONFIG_ADDRESS is a dword register: like QEMU, only a dword
		 * access at 0xCF8 reaches it; other byte and word accesses at
		 * 0xCF8-0xCFB are not ours and read all-ones. */
		if (offset == 0 && len == 4) {
			uint32_t v = atomic_load_explicit(&bus->cf8, memory_order_relaxed);

			memcpy(data, &v, 4);
		}
		return;
	}
	/* 0xCFC-0xCFF: byte lanes of the addressed dword. The port bus hands
	 * us only accesses inside our 8 ports, so lane + len <= 4. */
	if (cf8_decode(bus, offset, &slot, &fn, &reg))
		pci_config_read(bus, slot, fn, reg, data, len);
}

static void cf8_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct pci_bus *bus = opaque;
	unsigned slot, fn;
	uint32_t reg;

	if (rcr_access(bus, offset, len)) {
		rcr_write(bus, data[0]);
		return;
	}
	if (offset < 4) {
		if (offset == 0 && len == 4) {
			uint32_t v;

			memcpy(&v, data, 4);
			/* Bits 30:24 are reserved and 1:0 select type 0/1
			 * cycles on Intel chipsets: kept as zero. */
			atomic_store_explicit(&bus->cf8, v & 0x80fffffcu, memory_order_relaxed);
		}
		return;
	}
	if (cf8_decode(bus, offset, &slot, &fn, &reg))
		pci_config_write(bus, slot, fn, reg, data, len);
}

const struct bus_ops pci_cf8_ops = { .read = cf8_read, .write = cf8_write };

/* --- ECAM (PCIe 4.0 §7.2.2): bus << 20 | device << 15 | function << 12 | register --- */

static bool ecam_decode(uint64_t offset, unsigned *slot, unsigned *fn, uint32_t *reg)
{
	if (offset >> 20)           /* only bus 0 exists */
		return false;
	*slot = (offset >> 15) & 0x1f;
	*fn = (offset >> 12) & 0x7;
	*reg = offset & 0xfff;
	return true;
}

static void ecam_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	unsigned slot, fn;
	uint32_t reg;

	memset(data, 0xff, len);
	if (ecam_decode(offset, &slot, &fn, &reg))
		pci_config_read(opaque, slot, fn, reg, data, len);
}

static void ecam_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	unsigned slot, fn;
	uint32_t reg;

	if (ecam_decode(offset, &slot, &fn, &reg))
		pci_config_write(opaque, slot, fn, reg, data, len);
}

const struct bus_ops pci_ecam_ops = { .read = ecam_read, .write = ecam_write };

/* --- BAR windows --- */

/* Finds the one decoded BAR holding [addr, addr + len). Two BARs decoding
 * the same address is a programming error of the guest's: like an access
 * nobody decodes, it is left unclaimed rather than given to either. */
static bool window_lookup(struct pci_bus *bus, uint64_t addr, uint32_t len,
			  const struct bus_ops **ops, void **opaque, uint64_t *offset)
{
	const struct pci_bar_map *hit = NULL;
	uint64_t last = addr + len - 1;

	if (len == 0 || last < addr)
		return false;
	pthread_rwlock_rdlock(&bus->lock);
	for (unsigned i = 0; i < bus->nmap; i++) {
		const struct pci_bar_map *m = &bus->map[i];

		if (last < m->start || addr > m->end)
			continue;
		if (hit || addr < m->start || last > m->end) {
			hit = NULL;   /* overlap, or straddles the BAR's edge */
			break;
		}
		hit = m;
	}
	if (hit) {
		const struct pci_bar *bar = &hit->dev->bars[hit->bar];

		*ops = bar->ops;
		*opaque = bar->opaque;
		*offset = addr - hit->start;
	}
	pthread_rwlock_unlock(&bus->lock);
	/* The handler runs without the lock: devices are never removed while
	 * the VM runs, and an access racing a BAR move is one that happened
	 * just before it. It may then take the bus lock itself. */
	return hit != NULL;
}

static void window_read(struct pci_bus *bus, uint64_t addr, uint8_t *data, uint32_t len)
{
	const struct bus_ops *ops;
	void *opaque;
	uint64_t offset;

	if (window_lookup(bus, addr, len, &ops, &opaque, &offset) && ops && ops->read) {
		ops->read(opaque, offset, data, len);
		return;
	}
	memset(data, 0xff, len);
	atomic_fetch_add_explicit(&bus->unclaimed, 1, memory_order_relaxed);
}

static void window_write(struct pci_bus *bus, uint64_t addr, const uint8_t *data, uint32_t len)
{
	const struct bus_ops *ops;
	void *opaque;
	uint64_t offset;

	if (window_lookup(bus, addr, len, &ops, &opaque, &offset)) {
		if (ops && ops->write)
			ops->write(opaque, offset, data, len);
		return;
	}
	atomic_fetch_add_explicit(&bus->unclaimed, 1, memory_order_relaxed);
}

static void mmio32_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct pci_bus *bus = opaque;

	window_read(bus, bus->mmio32_base + offset, data, len);
}

static void mmio32_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct pci_bus *bus = opaque;

	window_write(bus, bus->mmio32_base + offset, data, len);
}

static void mmio64_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct pci_bus *bus = opaque;

	window_read(bus, bus->mmio64_base + offset, data, len);
}

static void mmio64_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct pci_bus *bus = opaque;

	window_write(bus, bus->mmio64_base + offset, data, len);
}

const struct bus_ops pci_mmio32_window_ops = { .read = mmio32_read, .write = mmio32_write };
const struct bus_ops pci_mmio64_window_ops = { .read = mmio64_read, .write = mmio64_write };

/* Wires the PCI bus and the interrupt routing into a VM being built. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "pci/pci.h"
#include "util/log.h"
#include "vmm/irq_routing.h"
#include "vmm/vm.h"

/* The guest's MAXPHYADDR: KVM reports the host's in CPUID 0x80000008
 * EAX[7:0], and the guest sees that. 36 bits (the architectural default
 * when the leaf is missing, SDM vol. 3A §4.1.4) otherwise. */
static unsigned guest_phys_bits(const struct kvm *kvm)
{
	const struct kvm_cpuid2 *c = kvm ? kvm->supported_cpuid : NULL;

	for (unsigned i = 0; c && i < c->nent; i++) {
		if (c->entries[i].function == 0x80000008 && (c->entries[i].eax & 0xff))
			return c->entries[i].eax & 0xff;
	}
	return 36;
}

int pci_attach(struct vm *vm, struct pci_bus *bus, struct irq_routing *routing,
	       char *err, size_t errlen)
{
	uint64_t base64, size64;
	unsigned bits = guest_phys_bits(vm->kvm);
	int ret;

	ret = irq_routing_init(routing, vm->fd, 0);
	if (ret) {
		snprintf(err, errlen, "GSI routing: %s", strerror(-ret));
		return ret;
	}
	if (pci_mmio64_window(guest_memory_end(&vm->mem), bits, &base64, &size64))
		pr_warn("PCI: no room for a 64-bit window below %u-bit addresses; "
			"64-bit BARs go below 4 GiB", bits);
	ret = pci_bus_init(bus, LAYOUT_PCI_MMIO32_START, LAYOUT_PCI_MMIO32_SIZE, base64, size64);
	if (ret) {
		snprintf(err, errlen, "PCI bus: %s", strerror(-ret));
		return ret;
	}
	ret = bus_register(&vm->pio, PCI_CF8_PORT, PCI_CF8_PORTS, &pci_cf8_ops, bus, "pci-cf8");
	if (ret) {
		snprintf(err, errlen, "PCI config ports 0x%x: %s", PCI_CF8_PORT, strerror(-ret));
		return ret;
	}
	ret = bus_register(&vm->mmio, LAYOUT_PCI_ECAM_START, LAYOUT_PCI_ECAM_SIZE, &pci_ecam_ops,
			   bus, "pci-ecam");
	if (ret) {
		snprintf(err, errlen, "PCI ECAM at 0x%llx: %s",
			 (unsigned long long)LAYOUT_PCI_ECAM_START, strerror(-ret));
		return ret;
	}
	bus->ecam_base = LAYOUT_PCI_ECAM_START;
	bus->ecam_size = LAYOUT_PCI_ECAM_SIZE;
	ret = bus_register(&vm->mmio, bus->mmio32_base, bus->mmio32_size, &pci_mmio32_window_ops,
			   bus, "pci-mmio32");
	if (ret) {
		snprintf(err, errlen, "PCI 32-bit window at 0x%llx: %s",
			 (unsigned long long)bus->mmio32_base, strerror(-ret));
		return ret;
	}
	if (bus->mmio64_size) {
		ret = bus_register(&vm->mmio, bus->mmio64_base, bus->mmio64_size,
				   &pci_mmio64_window_ops, bus, "pci-mmio64");
		if (ret) {
			snprintf(err, errlen, "PCI 64-bit window at 0x%llx: %s",
				 (unsigned long long)bus->mmio64_base, strerror(-ret));
			return ret;
		}
	}
	pr_debug("PCI: ECAM 0x%llx, windows 0x%llx+0x%llx, 0x%llx+0x%llx",
		 (unsigned long long)bus->ecam_base, (unsigned long long)bus->mmio32_base,
		 (unsigned long long)bus->mmio32_size, (unsigned long long)bus->mmio64_base,
		 (unsigned long long)bus->mmio64_size);
	return 0;
}

/* The host bridge in slot 0 of bus 0: what an OS expects to find first
 * (Linux's ACPI PCI root probe does not need it, but lspci, Windows and
 * firmware-less probes of 00:00.0 do).
 *
 * ID: QEMU's generic PCIe host bridge (vendor 0x1b36 Red Hat, device
 * 0x0008, "QEMU PCIe Host bridge", in pci.ids), class 0x060000. A real
 * chipset ID such as the Q35 MCH (0x8086:0x29c0) would invite chipset
 * code to read registers we do not model: Linux probes MMCONFIG through
 * Intel host bridges' PCIEXBAR (arch/x86/pci/mmconfig-shared.c) and its
 * EDAC and AGP/GTT drivers bind to Intel MCH IDs. A virtual-hardware ID
 * that no driver binds to and no quirk matches leaves the ACPI tables as
 * the only description of the machine. */
#include "pci/pci.h"

/* QEMU's subsystem IDs for its own devices (Red Hat/Qumranet 0x1af4,
 * "QEMU" 0x1100), as QEMU reports them for this bridge. */
#define HOST_BRIDGE_SUBSYS_VENDOR 0x1af4
#define HOST_BRIDGE_SUBSYS_ID     0x1100

void pci_host_bridge_init(struct pci_device *dev)
{
	pci_device_init(dev, "host-bridge", PCI_HOST_BRIDGE_VENDOR, PCI_HOST_BRIDGE_DEVICE,
			PCI_CLASS_BRIDGE_HOST, 0, HOST_BRIDGE_SUBSYS_VENDOR, HOST_BRIDGE_SUBSYS_ID);
	/* It claims no addresses: no BARs, no capabilities, no interrupt.
	 * Memory decoding on, as firmware leaves a host bridge (Linux keeps
	 * it on for host bridges too: quirk_mmio_always_on). */
	pci_config_set(dev, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
}

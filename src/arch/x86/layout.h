/* Guest-physical memory layout of a popek x86-64 machine.
 *
 * Shaped like a PC so unmodified guests find what they expect:
 * low RAM up to the EBDA, the legacy VGA/BIOS hole, RAM from 1 MiB,
 * the 32-bit MMIO hole [3 GiB, 4 GiB) and the rest of RAM above 4 GiB. */
#ifndef POPEK_ARCH_X86_LAYOUT_H
#define POPEK_ARCH_X86_LAYOUT_H

#define KiB(x) ((uint64_t)(x) << 10)
#define MiB(x) ((uint64_t)(x) << 20)
#define GiB(x) ((uint64_t)(x) << 30)

/* Low memory, below 1 MiB. */
#define LAYOUT_ZERO_PAGE        0x0000ULL   /* real-mode IVT and BIOS data area */
#define LAYOUT_BDA_EBDA_SEG     0x040eULL   /* BDA word: EBDA segment (MP spec 1.4 §4) */
#define LAYOUT_BDA_BASEMEM_KB   0x0413ULL   /* BDA word: base memory size in KiB */
#define LAYOUT_BOOT_GDT         0x0500ULL   /* flat GDT the 32-bit entry runs on (4 entries) */
#define LAYOUT_BOOT_INFO        0x6000ULL   /* hvm_start_info / multiboot_info + memory map, 4 KiB */
#define LAYOUT_BOOT_INFO_SIZE   0x1000ULL
#define LAYOUT_CMDLINE          0x7000ULL   /* kernel command line, NUL-terminated */
#define LAYOUT_CMDLINE_MAX      0x1000ULL   /* bytes, including the NUL */
/* Identity page tables for the 64-bit Linux entry (boot.rst "64-bit Boot
 * Protocol": the VMM enters long mode, so paging must already be on):
 * one PML4, one PDPT and four page directories of 2 MiB pages map
 * [0, 4 GiB). Written only on the bzImage path. */
#define LAYOUT_PML4             0x9000ULL
#define LAYOUT_PDPT             0xa000ULL
#define LAYOUT_PD               0xb000ULL   /* LAYOUT_PD_COUNT pages */
#define LAYOUT_PD_COUNT         4
#define LAYOUT_IDENTITY_MAP_END GiB(LAYOUT_PD_COUNT)
#define LAYOUT_EBDA_START       0x9fc00ULL  /* extended BIOS data area: MP floating pointer + table */
#define LAYOUT_EBDA_SIZE        0x400ULL
#define LAYOUT_LOW_RAM_END      LAYOUT_EBDA_START
#define LAYOUT_VGA_HOLE_START   0xa0000ULL  /* legacy VGA and option ROMs: no RAM reported */
#define LAYOUT_BIOS_START       0xf0000ULL  /* system BIOS area, reported reserved */
#define LAYOUT_MPTABLE_START    0xf0000ULL  /* MP configuration table (floating pointer is in the EBDA) */
#define LAYOUT_MPTABLE_MAX      0x8000ULL   /* 32 KiB; the ACPI tables take the upper half */
/* ACPI tables, RSDP first: 16-byte aligned inside [0xe0000, 0x100000),
 * where an OS without a boot-protocol pointer scans for it (ACPI 6.5
 * §5.2.5.1), and inside the E820-reserved BIOS area. */
#define LAYOUT_ACPI_START       0xf8000ULL
#define LAYOUT_ACPI_MAX         0x7ff0ULL   /* up to the reset vector */
#define LAYOUT_HIGH_RAM_START   0x100000ULL /* 1 MiB: kernels load here or above */

/* The BIOS reset vector, F000:FFF0. There is no BIOS, but Linux jumps
 * here in real mode when other reboot methods are missing (reboot.c:
 * BOOT_EFI falls back to machine_real_restart), so popek puts a stub
 * there that resets the machine through the i8042. */
#define LAYOUT_RESET_VECTOR     0xffff0ULL

/* The 32-bit MMIO hole: RAM that would sit here is moved above 4 GiB. */
#define LAYOUT_MMIO_HOLE_START  GiB(3)
#define LAYOUT_MMIO_HOLE_END    GiB(4)
#define LAYOUT_IOAPIC_BASE      0xfec00000ULL
#define LAYOUT_LAPIC_BASE       0xfee00000ULL
/* KVM needs three pages for the real-mode TSS and one for the EPT identity
 * map on Intel; both sit in the hole just below the BIOS ROM, as on QEMU. */
#define LAYOUT_KVM_IDENTITY_MAP 0xfeffc000ULL
#define LAYOUT_KVM_TSS          0xfeffd000ULL

/* PCI (src/pci/, docs/pci.md). The 32-bit BAR window takes the bottom half
 * of the hole and ECAM sits right above it, both below the IOAPIC; the
 * 64-bit BAR window lies above RAM (pci_mmio64_window() computes it: 1 GiB
 * aligned, up to LAYOUT_PCI_MMIO64_SIZE, below the CPU's physical address
 * limit). The ACPI DSDT's host bridge _CRS lists both windows and the MCFG
 * table describes ECAM (bus 0 only: 32 devices x 8 functions x 4 KiB). */
#define LAYOUT_PCI_MMIO32_START 0xc0000000ULL
#define LAYOUT_PCI_MMIO32_SIZE  MiB(512)    /* up to 0xe0000000 */
#define LAYOUT_PCI_ECAM_START   0xe0000000ULL
#define LAYOUT_PCI_ECAM_SIZE    MiB(1)      /* bus 0 (PCIe 4.0 §7.2.2: 1 MiB a bus) */
#define LAYOUT_PCI_MMIO64_ALIGN GiB(1)
#define LAYOUT_PCI_MMIO64_SIZE  GiB(64)

/* The smallest guest we accept: the low tables plus 1 MiB of kernel room. */
#define LAYOUT_MIN_RAM          MiB(2)

#endif

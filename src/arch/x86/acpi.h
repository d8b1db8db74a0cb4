/* ACPI tables (ACPI 6.5 §5.2) for a hardware-reduced ACPI machine
 * (§4.1), as Firecracker and QEMU's microvm build them: how an
 * unmodified Linux finds its CPUs and interrupt routing (MADT), the
 * serial port and pvpanic (DSDT), and how it powers off (\_S5 and the
 * sleep registers) and resets (the reset register) without any of the
 * fixed PM1/GPE hardware of a PC.
 *
 * Everything lies in [LAYOUT_ACPI_START, LAYOUT_ACPI_START +
 * LAYOUT_ACPI_MAX), RSDP first so a legacy scan of 0xE0000-0xFFFFF finds
 * it. The registers the FADT points at are devices/acpi_pm.h. */
#ifndef POPEK_ARCH_X86_ACPI_H
#define POPEK_ARCH_X86_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86/aml.h"
#include "vmm/memory.h"

/* xAPIC ids are 8 bits, 0xff is the broadcast id and the I/O APIC takes
 * the id after the last CPU (as in the MP table). */
#define ACPI_MAX_CPUS 254

#define ACPI_OEM_ID        "POPEK "     /* 6 bytes */
#define ACPI_OEM_TABLE_ID  "POPEKVM "   /* 8 bytes */
#define ACPI_OEM_REVISION  1
#define ACPI_CREATOR_ID    "POPK"       /* 4 bytes */
#define ACPI_CREATOR_REVISION 1
#define ACPI_HYPERVISOR_ID "POPEK   "   /* FADT Hypervisor Vendor Identity, 8 bytes */

/* System description table header (§5.2.6). */
struct acpi_table_header {
	char signature[4];
	uint32_t length;            /* whole table, header included */
	uint8_t revision;
	uint8_t checksum;           /* all bytes of the table sum to 0 */
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} __attribute__((packed));

/* Root System Description Pointer, revision 2 (§5.2.5.3). */
struct acpi_rsdp {
	char signature[8];          /* "RSD PTR " */
	uint8_t checksum;           /* first 20 bytes sum to 0 */
	char oem_id[6];
	uint8_t revision;           /* 2: ACPI 2.0+ with an XSDT */
	uint32_t rsdt_address;      /* 0: no RSDT, the XSDT is used */
	uint32_t length;            /* 36 */
	uint64_t xsdt_address;
	uint8_t extended_checksum;  /* all 36 bytes sum to 0 */
	uint8_t reserved[3];
} __attribute__((packed));

/* Generic Address Structure (§5.2.3.2). */
struct acpi_gas {
	uint8_t space_id;           /* ACPI_GAS_SYSTEM_IO */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;        /* ACPI_GAS_ACCESS_BYTE */
	uint64_t address;
} __attribute__((packed));

#define ACPI_GAS_SYSTEM_IO   1
#define ACPI_GAS_ACCESS_BYTE 1

/* Fixed ACPI Description Table, revision 6 (§5.2.9). Fields
 * for the fixed hardware a hardware-reduced platform does not have stay
 * zero (§4.1). */
struct acpi_fadt {
	struct acpi_table_header header;    /* "FACP" */
	uint32_t firmware_ctrl;
	uint32_t dsdt;                      /* 0: X_DSDT is used */
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk;
	uint32_t pm1a_cnt_blk, pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len;
	uint8_t gpe0_blk_len, gpe1_blk_len, gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat;
	uint16_t flush_size, flush_stride;
	uint8_t duty_offset, duty_width;
	uint8_t day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk, x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk, x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk, x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	char hypervisor_vendor_id[8];
} __attribute__((packed));

#define ACPI_FADT_REVISION       6
#define ACPI_FADT_MINOR_VERSION  5      /* ACPI 6.5 */

/* FADT Fixed Feature Flags (§5.2.9). */
#define ACPI_FADT_F_WBINVD          (1u << 0)
#define ACPI_FADT_F_PWR_BUTTON      (1u << 4)   /* set: no fixed power button */
#define ACPI_FADT_F_SLP_BUTTON      (1u << 5)   /* set: no fixed sleep button */
#define ACPI_FADT_F_RESET_REG_SUP   (1u << 10)
#define ACPI_FADT_F_HW_REDUCED_ACPI (1u << 20)

/* IA-PC Boot Architecture Flags (§5.2.9.3). */
#define ACPI_IAPC_LEGACY_DEVICES    (1u << 0)
#define ACPI_IAPC_8042              (1u << 1)
#define ACPI_IAPC_VGA_NOT_PRESENT   (1u << 2)
#define ACPI_IAPC_MSI_NOT_SUPPORTED (1u << 3)
#define ACPI_IAPC_PCIE_ASPM_CONTROLS (1u << 4)
#define ACPI_IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)

/* Multiple APIC Description Table (§5.2.12). */
struct acpi_madt {
	struct acpi_table_header header;    /* "APIC" */
	uint32_t lapic_address;
	uint32_t flags;
} __attribute__((packed));

#define ACPI_MADT_REVISION     5        /* ACPI 6.3+: Online Capable is defined */
#define ACPI_MADT_PCAT_COMPAT  (1u << 0)

/* Interrupt controller structure types (§5.2.12). */
enum acpi_madt_type {
	ACPI_MADT_LAPIC = 0,
	ACPI_MADT_IOAPIC = 1,
	ACPI_MADT_INT_SRC_OVERRIDE = 2,
	ACPI_MADT_LAPIC_NMI = 4,
};

struct acpi_madt_lapic {            /* §5.2.12.2 */
	uint8_t type, length;       /* 0, 8 */
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;             /* ACPI_MADT_LAPIC_ENABLED */
} __attribute__((packed));

#define ACPI_MADT_LAPIC_ENABLED (1u << 0)

struct acpi_madt_ioapic {           /* §5.2.12.3 */
	uint8_t type, length;       /* 1, 12 */
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} __attribute__((packed));

struct acpi_madt_int_src_override { /* §5.2.12.5 */
	uint8_t type, length;       /* 2, 10 */
	uint8_t bus;                /* 0: ISA */
	uint8_t source;             /* ISA IRQ */
	uint32_t gsi;
	uint16_t flags;             /* MPS INTI flags; 0: conforms to the bus */
} __attribute__((packed));

struct acpi_madt_lapic_nmi {        /* §5.2.12.7 */
	uint8_t type, length;       /* 4, 6 */
	uint8_t processor_uid;      /* 0xff: all processors */
	uint16_t flags;
	uint8_t lint;               /* LINT0 or LINT1 */
} __attribute__((packed));

/* PCI Express memory mapped configuration space base address description
 * table, MCFG (PCI Firmware Specification 3.x §4.1.2): the header, 8
 * reserved bytes, then one allocation per ECAM range. */
struct acpi_mcfg {
	struct acpi_table_header header;    /* "MCFG" */
	uint64_t reserved;
} __attribute__((packed));

struct acpi_mcfg_allocation {
	uint64_t base_address;      /* ECAM of bus 0 of the segment */
	uint16_t segment;           /* PCI segment group */
	uint8_t start_bus, end_bus; /* decoded through this range */
	uint32_t reserved;
} __attribute__((packed));

#define ACPI_MCFG_REVISION 1

#define ACPI_DSDT_REVISION 2    /* 64-bit AML integers */

/* The \_S5 package's SLP_TYPa: what the sleep control register must
 * see for soft-off (devices/acpi_pm.h decodes it). */
#define ACPI_S5_SLP_TYP 5

/* PCI bus 0 behind the host bridge, as the firmware tables describe it
 * (the fields of src/pci/pci.h's struct pci_windows, which
 * pci_bus_windows() fills). Buses 0 to ecam_size / 1 MiB - 1 (0 without
 * ECAM), segment 0, config mechanism #1 at 0xCF8-0xCFF. */
struct acpi_pci_windows {
	uint64_t ecam_base, ecam_size;      /* size 0: no ECAM, no MCFG */
	uint64_t mmio32_base, mmio32_size;  /* the 32-bit BAR window, below 4 GiB */
	uint64_t mmio64_base, mmio64_size;  /* size 0: no 64-bit window */
	unsigned intx_gsi_base;             /* slot s, pin p (1 = INTA):
					     * GSI intx_gsi_base + (s + p - 1) % 4 */
};

struct acpi_config {
	unsigned ncpus;             /* 1..ACPI_MAX_CPUS */
	/* A PCI bus: an MCFG table (with ECAM), \_SB.PCI0 (PNP0A08) with its
	 * _CRS and _PRT, \_SB.MBRD (PNP0C02) reserving ECAM, and FADT boot
	 * flags that allow MSI. */
	bool pci;
	struct acpi_pci_windows pci_windows;
	/* Optional: appends more devices inside Scope(\_SB_), after COM1,
	 * PEVT (and PCI0, MBRD), with the aml_* builder. Return 0 or a
	 * negative errno; builder errors (aml_error) are checked by the
	 * caller. NULL: nothing more. */
	int (*sb_devices)(struct aml_buf *b, void *opaque);
	void *sb_opaque;
};

/* Writes RSDP, XSDT, FADT, MADT, MCFG (with PCI and ECAM) and DSDT into
 * guest memory inside [LAYOUT_ACPI_START, LAYOUT_ACPI_START +
 * LAYOUT_ACPI_MAX) and sets *rsdp_paddr (for hvm_start_info.rsdp_paddr
 * or boot_params.acpi_rsdp_addr). Returns 0, or a negative errno with one
 * line in err: -EINVAL for ncpus 0 or above ACPI_MAX_CPUS, PCI windows
 * that cannot be described (see acpi.c), or a bad sb_devices name;
 * -E2BIG when the tables do not fit, -EFAULT when the area is not RAM,
 * or what sb_devices returned. */
int acpi_write_tables(const struct guest_memory *mem, const struct acpi_config *cfg,
		      uint64_t *rsdp_paddr, char *err, size_t errlen);

#endif

/* ACPI tables for a hardware-reduced x86 machine; section numbers are
 * ACPI 6.5's. */
#include "arch/x86/acpi.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/pvpanic.h"
#include "devices/serial.h"
#include "util/log.h"

_Static_assert(sizeof(struct acpi_table_header) == 36, "§5.2.6");
_Static_assert(sizeof(struct acpi_rsdp) == 36, "§5.2.5.3");
_Static_assert(sizeof(struct acpi_gas) == 12, "§5.2.3.2");
_Static_assert(sizeof(struct acpi_fadt) == 276, "§5.2.9: FADT revision 6");
_Static_assert(offsetof(struct acpi_fadt, iapc_boot_arch) == 109, "§5.2.9");
_Static_assert(offsetof(struct acpi_fadt, flags) == 112, "§5.2.9");
_Static_assert(offsetof(struct acpi_fadt, reset_reg) == 116, "§5.2.9");
_Static_assert(offsetof(struct acpi_fadt, minor_version) == 131, "§5.2.9");
_Static_assert(offsetof(struct acpi_fadt, x_dsdt) == 140, "§5.2.9");
_Static_assert(offsetof(struct acpi_fadt, sleep_control_reg) == 244, "§5.2.9");
_Static_assert(offsetof(struct acpi_fadt, hypervisor_vendor_id) == 268, "§5.2.9");
_Static_assert(sizeof(struct acpi_madt) == 44, "§5.2.12");
_Static_assert(sizeof(struct acpi_madt_lapic) == 8, "§5.2.12.2");
_Static_assert(sizeof(struct acpi_madt_ioapic) == 12, "§5.2.12.3");
_Static_assert(sizeof(struct acpi_madt_int_src_override) == 10, "§5.2.12.5");
_Static_assert(sizeof(struct acpi_madt_lapic_nmi) == 6, "§5.2.12.7");
_Static_assert(sizeof(struct acpi_mcfg) == 44, "PCI Firmware 3.x §4.1.2");
_Static_assert(sizeof(struct acpi_mcfg_allocation) == 16, "PCI Firmware 3.x §4.1.2");
_Static_assert(ACPI_S5_SLP_TYP == ACPI_PM_SLP_TYP_S5, "the DSDT's \\_S5 is what acpi_pm decodes");
_Static_assert(LAYOUT_ACPI_START >= 0xe0000 && LAYOUT_ACPI_START % 16 == 0 &&
	       LAYOUT_ACPI_START + LAYOUT_ACPI_MAX <= 0x100000,
	       "§5.2.5.1: the RSDP is found on a 16-byte boundary in 0xE0000-0xFFFFF");

#define ACPI_TABLE_ALIGN 16
#define ACPI_XSDT_MAX_ENTRIES 3         /* FADT, MADT, MCFG */

/* The PIT's IRQ 0 is wired to I/O APIC pin 2 (as in the MP table and
 * KVM's default routing). */
#define ACPI_PIT_IRQ 0
#define ACPI_PIT_GSI 2
#define ACPI_NMI_LINT 1                 /* NMIs arrive on LINT1 (virtual wire mode) */
#define ACPI_ALL_PROCESSORS 0xff

/* PCI: configuration mechanism #1 (PCI 3.0 §3.2.2.3.2) and what the host
 * bridge forwards of the rest of port space; ECAM is 1 MiB a bus (PCIe
 * 4.0 §7.2.2); the I/O APIC has 24 inputs and GSIs 0-15 are ISA IRQs
 * (edge, active high unless overridden), so PCI INTx takes 4 of 16-23. */
#define ACPI_PCI_CF8_PORT       0xcf8
#define ACPI_PCI_CF8_LEN        8
#define ACPI_PCI_ECAM_BUS_SIZE  (1ULL << 20)
#define ACPI_PCI_MAX_BUSES      256
#define ACPI_PCI_SLOTS          32
#define ACPI_PCI_PINS           4
#define ACPI_IOAPIC_PINS        24
#define ACPI_ISA_IRQS           16

/* Where each table goes, as offsets from LAYOUT_ACPI_START. Everything
 * but the DSDT has a size known up front, so the DSDT comes last and may
 * take the rest of the area. */
struct acpi_layout {
	size_t rsdp, xsdt, fadt, madt, mcfg, dsdt;
	size_t xsdt_len, madt_len, mcfg_len;   /* mcfg_len 0: no MCFG */
};

static size_t acpi_align(size_t v)
{
	return (v + ACPI_TABLE_ALIGN - 1) & ~(size_t)(ACPI_TABLE_ALIGN - 1);
}

static uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

static void acpi_header(struct acpi_table_header *h, const char sig[4], uint32_t len,
			uint8_t revision)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = revision;
	memcpy(h->oem_id, ACPI_OEM_ID, sizeof(h->oem_id));
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, sizeof(h->oem_table_id));
	h->oem_revision = ACPI_OEM_REVISION;
	memcpy(h->creator_id, ACPI_CREATOR_ID, sizeof(h->creator_id));
	h->creator_revision = ACPI_CREATOR_REVISION;
}

/* Sets the checksum of the table at t: its length is in its header. */
static void acpi_seal(uint8_t *t)
{
	struct acpi_table_header h;

	memcpy(&h, t, sizeof(h));
	t[offsetof(struct acpi_table_header, checksum)] = 0;
	t[offsetof(struct acpi_table_header, checksum)] = acpi_checksum(t, h.length);
}

static size_t acpi_madt_size(unsigned ncpus)
{
	return sizeof(struct acpi_madt) + ncpus * sizeof(struct acpi_madt_lapic) +
	       sizeof(struct acpi_madt_ioapic) + sizeof(struct acpi_madt_int_src_override) +
	       sizeof(struct acpi_madt_lapic_nmi);
}

/* ECAM is described (MCFG, PNP0C02) when there is PCI and it has ECAM. */
static bool acpi_has_ecam(const struct acpi_config *cfg)
{
	return cfg->pci && cfg->pci_windows.ecam_size;
}

static void acpi_plan(struct acpi_layout *l, const struct acpi_config *cfg)
{
	size_t entries = 2 + acpi_has_ecam(cfg);

	l->rsdp = 0;
	l->xsdt = acpi_align(l->rsdp + sizeof(struct acpi_rsdp));
	l->xsdt_len = sizeof(struct acpi_table_header) + entries * sizeof(uint64_t);
	l->fadt = acpi_align(l->xsdt + l->xsdt_len);
	l->madt = acpi_align(l->fadt + sizeof(struct acpi_fadt));
	l->madt_len = acpi_madt_size(cfg->ncpus);
	l->mcfg = acpi_align(l->madt + l->madt_len);
	l->mcfg_len = acpi_has_ecam(cfg) ?
		      sizeof(struct acpi_mcfg) + sizeof(struct acpi_mcfg_allocation) : 0;
	l->dsdt = acpi_align(l->mcfg + l->mcfg_len);
}

static void acpi_put_rsdp(uint8_t *base, const struct acpi_layout *l)
{
	struct acpi_rsdp r = {
		.signature = { 'R', 'S', 'D', ' ', 'P', 'T', 'R', ' ' },
		.revision = 2,
		.rsdt_address = 0,
		.length = sizeof(struct acpi_rsdp),
		.xsdt_address = LAYOUT_ACPI_START + l->xsdt,
	};

	memcpy(r.oem_id, ACPI_OEM_ID, sizeof(r.oem_id));
	/* §5.2.5.3: the checksum covers the ACPI 1.0 part (20 bytes), the
	 * extended checksum the whole structure, checksum included. */
	r.checksum = acpi_checksum((const uint8_t *)&r, 20);
	r.extended_checksum = acpi_checksum((const uint8_t *)&r, sizeof(r));
	memcpy(base + l->rsdp, &r, sizeof(r));
}

static void acpi_put_xsdt(uint8_t *base, const struct acpi_layout *l)
{
	struct acpi_table_header h;
	uint64_t entries[ACPI_XSDT_MAX_ENTRIES] = {
		LAYOUT_ACPI_START + l->fadt,
		LAYOUT_ACPI_START + l->madt,
		LAYOUT_ACPI_START + l->mcfg,
	};

	acpi_header(&h, "XSDT", (uint32_t)l->xsdt_len, 1);
	memcpy(base + l->xsdt, &h, sizeof(h));
	/* xsdt_len counts the entries that exist: the MCFG only with ECAM. */
	memcpy(base + l->xsdt + sizeof(h), entries, l->xsdt_len - sizeof(h));
	acpi_seal(base + l->xsdt);
}

/* A byte-wide register in system I/O space. */
static struct acpi_gas acpi_io_reg(uint16_t port)
{
	return (struct acpi_gas){
		.space_id = ACPI_GAS_SYSTEM_IO,
		.bit_width = 8,
		.bit_offset = 0,
		.access_size = ACPI_GAS_ACCESS_BYTE,
		.address = port,
	};
}

static void acpi_put_fadt(uint8_t *base, const struct acpi_layout *l,
			  const struct acpi_config *cfg)
{
	struct acpi_fadt f;

	memset(&f, 0, sizeof(f));
	acpi_header(&f.header, "FACP", sizeof(f), ACPI_FADT_REVISION);
	f.minor_version = ACPI_FADT_MINOR_VERSION;
	/*
	 * §4.1, §5.2.9: hardware-reduced ACPI. There is no SCI, no PM1
	 * event/control blocks, no PM timer and no GPE blocks, so all of
	 * those fields stay 0, as does FIRMWARE_CTRL (no FACS: allowed when
	 * HW_REDUCED_ACPI is set). Sleep goes through the sleep control and
	 * status registers, reset through RESET_REG; PWR_BUTTON/SLP_BUTTON
	 * set say there is no fixed-feature button (and the DSDT declares no
	 * control-method one either). WBINVD works on every CPU KVM runs on,
	 * which is what the WBINVD flag tells OSPM (§8.2).
	 */
	f.flags = ACPI_FADT_F_WBINVD | ACPI_FADT_F_PWR_BUTTON | ACPI_FADT_F_SLP_BUTTON |
		  ACPI_FADT_F_RESET_REG_SUP | ACPI_FADT_F_HW_REDUCED_ACPI;
	/*
	 * §5.2.9.3. What Linux does with each bit (most in acpi_parse_fadt,
	 * arch/x86/kernel/acpi/boot.c), and why:
	 * - LEGACY_DEVICES clear: only turns off the 32-bit PnP BIOS probe;
	 *   the ISA devices we have are declared in the DSDT.
	 * - 8042 set: there is an i8042 with a keyboard (Ctrl-Alt-Del comes
	 *   through it). Linux finds it through the DSDT's PNP0303 (KBD) in
	 *   drivers/input/serio/i8042-acpipnpio.h; with this flag clear it
	 *   would also mark the controller "firmware absent".
	 * - VGA_NOT_PRESENT set: there is no VGA; Linux sets
	 *   x86_platform.legacy.no_vga and vgacon stays away from 0xb8000.
	 * - MSI_NOT_SUPPORTED: set without PCI (Linux's acpi_pci_init() in
	 *   drivers/pci/pci-acpi.c then calls pci_no_msi()), clear with it:
	 *   the PCI devices' MSI-X is how their interrupts arrive.
	 * - PCIE_ASPM_CONTROLS: set with PCI, as Firecracker does
	 *   (acpi_pci_init() then calls pcie_no_aspm()): link power states
	 *   mean nothing on virtual links, and there is no _OSC to hand
	 *   ASPM to the OS anyway.
	 * - CMOS_RTC_NOT_PRESENT set: popek has no RTC at ports 0x70/0x71.
	 *   Linux then registers no rtc_cmos device and its x86 wallclock
	 *   does not poll the absent chip (thousands of unclaimed port
	 *   accesses at boot otherwise); kvmclock gives it the time.
	 */
	f.iapc_boot_arch = ACPI_IAPC_8042 | ACPI_IAPC_VGA_NOT_PRESENT |
			   ACPI_IAPC_CMOS_RTC_NOT_PRESENT;
	if (cfg->pci)
		f.iapc_boot_arch |= ACPI_IAPC_PCIE_ASPM_CONTROLS;
	else
		f.iapc_boot_arch |= ACPI_IAPC_MSI_NOT_SUPPORTED;
	/* §4.8.3.6: Linux's acpi_reboot() writes RESET_VALUE there with a
	 * byte-wide port write (ACPI_RESET_REGISTER_WIDTH is 8). */
	f.reset_reg = acpi_io_reg(ACPI_PM_BASE + ACPI_PM_RESET);
	f.reset_value = ACPI_PM_RESET_VALUE;
	/* §5.2.9: DSDT must be 0 when X_DSDT is set. */
	f.dsdt = 0;
	f.x_dsdt = LAYOUT_ACPI_START + l->dsdt;
	/* §4.8.3.7-8: ACPICA's acpi_hw_extended_sleep() clears WAK_STS, then
	 * writes (SLP_TYPa << 2) | SLP_EN to the control register. */
	f.sleep_control_reg = acpi_io_reg(ACPI_PM_BASE + ACPI_PM_SLEEP_CONTROL);
	f.sleep_status_reg = acpi_io_reg(ACPI_PM_BASE + ACPI_PM_SLEEP_STATUS);
	memcpy(f.hypervisor_vendor_id, ACPI_HYPERVISOR_ID, sizeof(f.hypervisor_vendor_id));

	memcpy(base + l->fadt, &f, sizeof(f));
	acpi_seal(base + l->fadt);
}

static void acpi_put_madt(uint8_t *base, const struct acpi_layout *l, unsigned ncpus)
{
	struct acpi_madt m;
	struct acpi_madt_ioapic io = {
		.type = ACPI_MADT_IOAPIC,
		.length = sizeof(io),
		/* The id after the last CPU, as the MP table says. */
		.ioapic_id = (uint8_t)ncpus,
		.address = (uint32_t)LAYOUT_IOAPIC_BASE,
		.gsi_base = 0,
	};
	struct acpi_madt_int_src_override iso = {
		.type = ACPI_MADT_INT_SRC_OVERRIDE,
		.length = sizeof(iso),
		.bus = 0,
		.source = ACPI_PIT_IRQ,
		.gsi = ACPI_PIT_GSI,
		.flags = 0,     /* conforms to ISA: edge, active high */
	};
	struct acpi_madt_lapic_nmi nmi = {
		.type = ACPI_MADT_LAPIC_NMI,
		.length = sizeof(nmi),
		.processor_uid = ACPI_ALL_PROCESSORS,
		.flags = 0,
		.lint = ACPI_NMI_LINT,
	};
	uint8_t *p = base + l->madt;
	unsigned i;

	acpi_header(&m.header, "APIC", (uint32_t)l->madt_len, ACPI_MADT_REVISION);
	m.lapic_address = (uint32_t)LAYOUT_LAPIC_BASE;
	/*
	 * §5.2.12: PCAT_COMPAT says the machine also has dual 8259s that an
	 * OS enabling the APICs must mask. KVM's in-kernel irqchip does
	 * include a PIC and LINT0 is programmed as ExtINT (virtual wire), so
	 * this is the truthful answer, as QEMU gives it; Firecracker leaves
	 * it clear. Linux in hardware-reduced mode uses no legacy PIC either
	 * way (acpi_generic_reduced_hw_init), other OSes mask it.
	 */
	m.flags = ACPI_MADT_PCAT_COMPAT;
	memcpy(p, &m, sizeof(m));
	p += sizeof(m);

	for (i = 0; i < ncpus; i++) {
		struct acpi_madt_lapic lapic = {
			.type = ACPI_MADT_LAPIC,
			.length = sizeof(lapic),
			.processor_uid = (uint8_t)i,
			.apic_id = (uint8_t)i,
			.flags = ACPI_MADT_LAPIC_ENABLED,
		};

		memcpy(p, &lapic, sizeof(lapic));
		p += sizeof(lapic);
	}
	memcpy(p, &io, sizeof(io));
	p += sizeof(io);
	memcpy(p, &iso, sizeof(iso));
	p += sizeof(iso);
	memcpy(p, &nmi, sizeof(nmi));
	acpi_seal(base + l->madt);
}

/* Device(COM1): the 16550A at 0x3f8, IRQ 4. Linux binds 8250_pnp to it
 * and takes the IRQ from _CRS. */
static void acpi_dsdt_com1(struct aml_buf *b)
{
	size_t dev, crs;

	dev = aml_device_begin(b, "COM1");
	aml_name(b, "_HID");
	aml_eisaid(b, "PNP0501");
	aml_name(b, "_UID");
	aml_integer(b, 1);
	aml_name(b, "_CRS");
	crs = aml_resource_template_begin(b);
	aml_io(b, true, SERIAL_COM1_BASE, SERIAL_COM1_BASE, 1, SERIAL_NR_PORTS);
	aml_irq_noflags(b, SERIAL_COM1_IRQ);
	aml_resource_template_end(b, crs);
	aml_end(b, dev);
}

/* Device(KBD): the i8042 with its keyboard (PNP0303: IBM enhanced
 * keyboard, 101/102 keys), data port then command/status port, IRQ 1.
 * Linux's i8042 driver takes both ports and the IRQ from this _CRS
 * (i8042_pnp_kbd_probe); there is no PNP0F13 (mouse), so it probes no
 * aux port. */
static void acpi_dsdt_kbd(struct aml_buf *b)
{
	size_t dev, crs;

	dev = aml_device_begin(b, "KBD");
	aml_name(b, "_HID");
	aml_eisaid(b, "PNP0303");
	aml_name(b, "_CRS");
	crs = aml_resource_template_begin(b);
	aml_io(b, true, I8042_DATA_PORT, I8042_DATA_PORT, 1, 1);
	aml_io(b, true, I8042_CMD_PORT, I8042_CMD_PORT, 1, 1);
	aml_irq_noflags(b, I8042_KBD_IRQ);
	aml_resource_template_end(b, crs);
	aml_end(b, dev);
}

/* Device(PEVT): pvpanic, named and described as QEMU does, so Linux's
 * pvpanic-mmio driver (ACPI id QEMU0001) finds the port. */
static void acpi_dsdt_pvpanic(struct aml_buf *b)
{
	size_t dev, crs;

	dev = aml_device_begin(b, "PEVT");
	aml_name(b, "_HID");
	aml_string(b, "QEMU0001");
	aml_name(b, "_CRS");
	crs = aml_resource_template_begin(b);
	aml_io(b, true, PVPANIC_PORT, PVPANIC_PORT, 1, PVPANIC_NR_PORTS);
	aml_resource_template_end(b, crs);
	aml_end(b, dev);
}

/* MCFG (PCI Firmware Specification 3.x §4.1.2): one allocation, segment
 * 0, the buses ECAM covers. Linux uses it only if the range is also
 * reserved: in the E820 map or, as here, by a PNP0C02 device (MBRD). */
static void acpi_put_mcfg(uint8_t *base, const struct acpi_layout *l,
			  const struct acpi_pci_windows *w)
{
	struct acpi_mcfg m;
	struct acpi_mcfg_allocation a = {
		.base_address = w->ecam_base,
		.segment = 0,
		.start_bus = 0,
		.end_bus = (uint8_t)(w->ecam_size / ACPI_PCI_ECAM_BUS_SIZE - 1),
		.reserved = 0,
	};

	memset(&m, 0, sizeof(m));
	acpi_header(&m.header, "MCFG", (uint32_t)l->mcfg_len, ACPI_MCFG_REVISION);
	memcpy(base + l->mcfg, &m, sizeof(m));
	memcpy(base + l->mcfg + sizeof(m), &a, sizeof(a));
	acpi_seal(base + l->mcfg);
}

/* The last bus number the host bridge decodes: as far as ECAM reaches. */
static unsigned acpi_pci_last_bus(const struct acpi_pci_windows *w)
{
	return w->ecam_size ? (unsigned)(w->ecam_size / ACPI_PCI_ECAM_BUS_SIZE) - 1 : 0;
}

/* What the tables can say about the windows; 0 or -EINVAL with err set. */
static int acpi_check_pci(const struct acpi_pci_windows *w, char *err, size_t errlen)
{
	if (!w->mmio32_size || w->mmio32_base > (1ULL << 32) ||
	    w->mmio32_size > (1ULL << 32) - w->mmio32_base) {
		snprintf(err, errlen, "ACPI tables: PCI 32-bit window 0x%llx+0x%llx is not "
			 "a non-empty range below 4 GiB", (unsigned long long)w->mmio32_base,
			 (unsigned long long)w->mmio32_size);
		return -EINVAL;
	}
	if (w->mmio64_size && w->mmio64_base + (w->mmio64_size - 1) < w->mmio64_base) {
		snprintf(err, errlen, "ACPI tables: PCI 64-bit window 0x%llx+0x%llx wraps",
			 (unsigned long long)w->mmio64_base, (unsigned long long)w->mmio64_size);
		return -EINVAL;
	}
	/* MCFG describes whole buses, from bus 0, at most 256 of them. */
	if (w->ecam_size && (w->ecam_size % ACPI_PCI_ECAM_BUS_SIZE ||
			     w->ecam_base % ACPI_PCI_ECAM_BUS_SIZE ||
			     w->ecam_size > ACPI_PCI_MAX_BUSES * ACPI_PCI_ECAM_BUS_SIZE ||
			     w->ecam_base + (w->ecam_size - 1) < w->ecam_base)) {
		snprintf(err, errlen, "ACPI tables: PCI ECAM 0x%llx+0x%llx is not 1 to 256 "
			 "buses of 1 MiB, 1 MiB aligned", (unsigned long long)w->ecam_base,
			 (unsigned long long)w->ecam_size);
		return -EINVAL;
	}
	if (w->intx_gsi_base < ACPI_ISA_IRQS ||
	    w->intx_gsi_base > ACPI_IOAPIC_PINS - ACPI_PCI_PINS) {
		snprintf(err, errlen, "ACPI tables: PCI INTx GSIs from %u: must be I/O APIC "
			 "pins %u-%u", w->intx_gsi_base, ACPI_ISA_IRQS, ACPI_IOAPIC_PINS - 1);
		return -EINVAL;
	}
	return 0;
}

/* _CRS of the host bridge (§6.2.2, §6.4.3.5): the bus numbers it decodes,
 * the config ports it consumes itself, and the windows it forwards to
 * bus 0: all other port I/O, as on a PC (QEMU describes the same two
 * ranges), the 32-bit BAR window (non-cacheable: device registers) and
 * the 64-bit one. ResourceProducer throughout: the windows are the
 * bridge's to hand to its children. */
static void acpi_pci0_crs(struct aml_buf *b, const struct acpi_pci_windows *w)
{
	size_t crs;

	aml_name(b, "_CRS");
	crs = aml_resource_template_begin(b);
	aml_word_bus_number(b, 0, (uint16_t)acpi_pci_last_bus(w));
	aml_io(b, true, ACPI_PCI_CF8_PORT, ACPI_PCI_CF8_PORT, 1, ACPI_PCI_CF8_LEN);
	aml_word_io(b, 0x0000, ACPI_PCI_CF8_PORT - 1);
	aml_word_io(b, 0x0d00, 0xffff);
	aml_dword_memory(b, AML_MEM_NON_CACHEABLE | AML_MEM_READ_WRITE,
			 (uint32_t)w->mmio32_base, (uint32_t)(w->mmio32_base + w->mmio32_size - 1));
	/* Cacheable as QEMU's: Linux gives the attribute no meaning on a
	 * root window (only Prefetchable would, and would then keep
	 * non-prefetchable BARs out of it). */
	if (w->mmio64_size)
		aml_qword_memory(b, AML_MEM_CACHEABLE | AML_MEM_READ_WRITE, w->mmio64_base,
				 w->mmio64_base + w->mmio64_size - 1);
	aml_resource_template_end(b, crs);
}

/* _PRT (§6.2.13) in GSI form: Package { Address (device << 16 | 0xFFFF:
 * any function), Pin (0 = INTA), Source 0, Source Index (the GSI) } for
 * every pin of every slot, so a device added anywhere is covered. Linux
 * (drivers/acpi/pci_irq.c) registers such GSIs level-triggered,
 * active-low, as PCI INTx is. The same swizzle as pci_device_intx_gsi()
 * (src/pci/bus.c); test_acpi.c compares the two. */
static void acpi_pci0_prt(struct aml_buf *b, const struct acpi_pci_windows *w)
{
	size_t prt, entry;
	unsigned slot, pin;

	aml_name(b, "_PRT");
	prt = aml_package_begin(b, ACPI_PCI_SLOTS * ACPI_PCI_PINS);
	for (slot = 0; slot < ACPI_PCI_SLOTS; slot++) {
		for (pin = 0; pin < ACPI_PCI_PINS; pin++) {
			entry = aml_package_begin(b, 4);
			aml_integer(b, (uint64_t)slot << 16 | 0xffff);
			aml_integer(b, pin);
			aml_integer(b, 0);
			aml_integer(b, w->intx_gsi_base + (slot + pin) % ACPI_PCI_PINS);
			aml_end(b, entry);
		}
	}
	aml_end(b, prt);
}

/* Device(PCI0): the PCI Express host bridge of segment 0 (§6.1.5 _HID,
 * §6.5.6 _SEG, §6.5.5 _BBN; PNP0A08 with PNP0A03 for OSes that know only
 * conventional PCI). No _OSC: Linux then keeps native PCIe services
 * (hotplug, AER, PME) off, which a machine without them wants anyway. */
static void acpi_dsdt_pci0(struct aml_buf *b, const struct acpi_pci_windows *w)
{
	size_t dev;

	dev = aml_device_begin(b, "PCI0");
	aml_name(b, "_HID");
	aml_eisaid(b, "PNP0A08");
	aml_name(b, "_CID");
	aml_eisaid(b, "PNP0A03");
	aml_name(b, "_SEG");
	aml_integer(b, 0);
	aml_name(b, "_BBN");
	aml_integer(b, 0);
	aml_name(b, "_UID");
	aml_integer(b, 0);
	acpi_pci0_crs(b, w);
	acpi_pci0_prt(b, w);
	aml_end(b, dev);
}

/* Device(MBRD): motherboard resources (PNP0C02) holding the ECAM range,
 * which is what makes Linux trust the MCFG without an E820 entry
 * (arch/x86/pci/mmconfig-shared.c: "reserved as ACPI motherboard
 * resource"; it accepts Memory32Fixed and address space descriptors). */
static void acpi_dsdt_mbrd(struct aml_buf *b, const struct acpi_pci_windows *w)
{
	size_t dev, crs;

	dev = aml_device_begin(b, "MBRD");
	aml_name(b, "_HID");
	aml_eisaid(b, "PNP0C02");
	aml_name(b, "_UID");
	aml_integer(b, 0);
	aml_name(b, "_CRS");
	crs = aml_resource_template_begin(b);
	if (w->ecam_base + w->ecam_size <= (1ULL << 32)) {
		aml_memory32_fixed(b, true, (uint32_t)w->ecam_base, (uint32_t)w->ecam_size);
	} else {
		struct aml_address_space as = {
			.type = AML_AS_MEMORY,
			.general_flags = AML_AS_CONSUMER | AML_AS_MIN_FIXED | AML_AS_MAX_FIXED,
			.type_flags = AML_MEM_NON_CACHEABLE | AML_MEM_READ_WRITE,
			.min = w->ecam_base,
			.max = w->ecam_base + w->ecam_size - 1,
			.length = w->ecam_size,
		};

		aml_qword_address_space(b, &as);
	}
	aml_resource_template_end(b, crs);
	aml_end(b, dev);
}

static int acpi_dsdt_body(struct aml_buf *b, const struct acpi_config *cfg)
{
	size_t pkg, sb;
	int ret = 0;

	/* "\_Sx (System States)": \_S5 is Package { SLP_TYPa, SLP_TYPb,
	 * reserved, reserved }; a hardware-reduced platform uses SLP_TYPa
	 * only (§4.8.3.7). Four elements, as older ACPICA versions want at
	 * least two. */
	aml_name(b, "\\_S5_");
	pkg = aml_package_begin(b, 4);
	aml_integer(b, ACPI_S5_SLP_TYP);
	aml_integer(b, 0);
	aml_integer(b, 0);
	aml_integer(b, 0);
	aml_end(b, pkg);

	sb = aml_scope_begin(b, "\\_SB_");
	acpi_dsdt_com1(b);
	acpi_dsdt_kbd(b);
	acpi_dsdt_pvpanic(b);
	if (cfg->pci)
		acpi_dsdt_pci0(b, &cfg->pci_windows);
	if (acpi_has_ecam(cfg))
		acpi_dsdt_mbrd(b, &cfg->pci_windows);
	if (cfg->sb_devices)
		ret = cfg->sb_devices(b, cfg->sb_opaque);
	aml_end(b, sb);
	return ret;
}

static int acpi_put_dsdt(uint8_t *base, const struct acpi_layout *l,
			 const struct acpi_config *cfg, char *err, size_t errlen)
{
	struct acpi_table_header h;
	struct aml_buf b;
	size_t hdr = sizeof(h);
	int ret;

	aml_init(&b, base + l->dsdt + hdr, LAYOUT_ACPI_MAX - l->dsdt - hdr);
	ret = acpi_dsdt_body(&b, cfg);
	if (ret) {
		snprintf(err, errlen, "ACPI DSDT: adding devices: %s", strerror(-ret));
		return ret;
	}
	ret = aml_error(&b);
	if (ret == -ENOSPC) {
		snprintf(err, errlen, "ACPI tables do not fit in %llu KiB",
			 (unsigned long long)(LAYOUT_ACPI_MAX >> 10));
		return -E2BIG;
	}
	if (ret) {
		snprintf(err, errlen, "ACPI DSDT: bad AML: %s", strerror(-ret));
		return ret;
	}
	acpi_header(&h, "DSDT", (uint32_t)(hdr + b.len), ACPI_DSDT_REVISION);
	memcpy(base + l->dsdt, &h, hdr);
	acpi_seal(base + l->dsdt);
	return 0;
}

int acpi_write_tables(const struct guest_memory *mem, const struct acpi_config *cfg,
		      uint64_t *rsdp_paddr, char *err, size_t errlen)
{
	struct acpi_layout l;
	uint8_t *base;
	int ret;

	if (!cfg || cfg->ncpus == 0 || cfg->ncpus > ACPI_MAX_CPUS) {
		snprintf(err, errlen, "ACPI tables: %u CPUs: must be 1 to %u",
			 cfg ? cfg->ncpus : 0, ACPI_MAX_CPUS);
		return -EINVAL;
	}
	if (cfg->pci) {
		ret = acpi_check_pci(&cfg->pci_windows, err, errlen);
		if (ret)
			return ret;
	}
	acpi_plan(&l, cfg);
	if (l.dsdt + sizeof(struct acpi_table_header) > LAYOUT_ACPI_MAX) {
		snprintf(err, errlen, "ACPI tables do not fit in %llu KiB",
			 (unsigned long long)(LAYOUT_ACPI_MAX >> 10));
		return -E2BIG;
	}
	base = guest_memory_ptr(mem, LAYOUT_ACPI_START, LAYOUT_ACPI_MAX);
	if (!base) {
		snprintf(err, errlen, "ACPI tables: 0x%llx is not guest RAM",
			 (unsigned long long)LAYOUT_ACPI_START);
		return -EFAULT;
	}
	memset(base, 0, LAYOUT_ACPI_MAX);

	ret = acpi_put_dsdt(base, &l, cfg, err, errlen);
	if (ret) {
		memset(base, 0, LAYOUT_ACPI_MAX);
		return ret;
	}
	acpi_put_fadt(base, &l, cfg);
	acpi_put_madt(base, &l, cfg->ncpus);
	if (l.mcfg_len)
		acpi_put_mcfg(base, &l, &cfg->pci_windows);
	acpi_put_xsdt(base, &l);
	acpi_put_rsdp(base, &l);
	pr_debug("acpi: RSDP 0x%llx XSDT 0x%llx FADT 0x%llx MADT 0x%llx%s DSDT 0x%llx",
		 (unsigned long long)(LAYOUT_ACPI_START + l.rsdp),
		 (unsigned long long)(LAYOUT_ACPI_START + l.xsdt),
		 (unsigned long long)(LAYOUT_ACPI_START + l.fadt),
		 (unsigned long long)(LAYOUT_ACPI_START + l.madt),
		 l.mcfg_len ? " MCFG" : "",
		 (unsigned long long)(LAYOUT_ACPI_START + l.dsdt));
	*rsdp_paddr = LAYOUT_ACPI_START + l.rsdp;
	return 0;
}

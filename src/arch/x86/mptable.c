#include "arch/x86/mptable.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "arch/x86/layout.h"

_Static_assert(sizeof(struct mpf_intel) == 16, "MP spec 1.4 Table 4-1");
_Static_assert(sizeof(struct mpc_table) == 44, "MP spec 1.4 Table 4-2");
_Static_assert(sizeof(struct mpc_cpu) == 20, "MP spec 1.4 Table 4-4");
_Static_assert(sizeof(struct mpc_bus) == 8, "MP spec 1.4 Table 4-6");
_Static_assert(sizeof(struct mpc_ioapic) == 8, "MP spec 1.4 Table 4-9");
_Static_assert(sizeof(struct mpc_intsrc) == 8, "MP spec 1.4 Tables 4-10, 4-12");

#define MP_ISA_BUS_ID 0
#define MP_ISA_IRQS 16
/* ISA IRQ 2 is the 8259 cascade and never raised; on a PC (and in KVM's
 * default GSI routing) the PIT's IRQ 0 arrives on I/O APIC pin 2, so IRQ 2
 * gets no entry and pin 2 is not claimed twice. */
#define MP_ISA_INTSRCS (MP_ISA_IRQS - 1)
#define MP_LINTSRCS 2             /* ExtINT on LINT0, NMI on LINT1 */
#define MP_ALL_LAPICS 0xff
/* A family 6 CPU; the features a guest might print: FPU, TSC, MSR, CX8, APIC. */
#define MP_CPU_SIGNATURE ((6u << 8) | (0xfu << 4) | 0x1u)
#define MP_CPU_FEATURES  ((1u << 0) | (1u << 4) | (1u << 5) | (1u << 8) | (1u << 9))

static uint8_t mp_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)-sum;
}

static size_t mp_table_size(unsigned ncpus)
{
	return sizeof(struct mpc_table) + ncpus * sizeof(struct mpc_cpu) +
	       sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) +
	       (MP_ISA_INTSRCS + MP_LINTSRCS) * sizeof(struct mpc_intsrc);
}

static uint8_t *mp_put_cpus(uint8_t *p, unsigned ncpus)
{
	unsigned i;

	for (i = 0; i < ncpus; i++) {
		struct mpc_cpu cpu = {
			.type = MP_PROCESSOR,
			.apicid = (uint8_t)i,
			.apicver = MPTABLE_LAPIC_VERSION,
			.cpuflag = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			.cpufeature = MP_CPU_SIGNATURE,
			.featureflag = MP_CPU_FEATURES,
		};

		memcpy(p, &cpu, sizeof(cpu));
		p += sizeof(cpu);
	}
	return p;
}

static uint8_t *mp_put_intsrc(uint8_t *p, uint8_t type, uint8_t irqtype,
			      uint8_t srcbusirq, uint8_t dstapic, uint8_t dstirq)
{
	struct mpc_intsrc e = {
		.type = type,
		.irqtype = irqtype,
		.irqflag = 0,
		.srcbus = MP_ISA_BUS_ID,
		.srcbusirq = srcbusirq,
		.dstapic = dstapic,
		.dstirq = dstirq,
	};

	memcpy(p, &e, sizeof(e));
	return p + sizeof(e);
}

static uint8_t *mp_put_irqs(uint8_t *p, uint8_t ioapic_id)
{
	unsigned irq;

	for (irq = 0; irq < MP_ISA_IRQS; irq++) {
		if (irq == 2) /* the cascade: see MP_ISA_INTSRCS */
			continue;
		p = mp_put_intsrc(p, MP_INTSRC, MP_INT, (uint8_t)irq, ioapic_id,
				  irq == 0 ? 2 : (uint8_t)irq);
	}
	/* Virtual wire mode: the 8259 reaches every CPU's LINT0 as ExtINT,
	 * NMIs come in on LINT1 (MP spec 1.4 §3.6.2.2; entry format §4.3.5). */
	p = mp_put_intsrc(p, MP_LINTSRC, MP_EXTINT, 0, MP_ALL_LAPICS, 0);
	return mp_put_intsrc(p, MP_LINTSRC, MP_NMI, 0, MP_ALL_LAPICS, 1);
}

static void mp_fill_table(uint8_t *base, unsigned ncpus, size_t len)
{
	struct mpc_table hdr = {
		.signature = { 'P', 'C', 'M', 'P' },
		.length = (uint16_t)len,
		.spec = MPTABLE_SPEC_REV,
		.oem = { 'P', 'O', 'P', 'E', 'K', ' ', ' ', ' ' },
		.productid = { 'P', 'O', 'P', 'E', 'K', ' ', 'V', 'M', ' ', ' ', ' ', ' ' },
		/* CPUs, the bus, the I/O APIC, then the interrupt entries */
		.oemcount = (uint16_t)(ncpus + 2 + MP_ISA_INTSRCS + MP_LINTSRCS),
		.lapic = (uint32_t)LAYOUT_LAPIC_BASE,
	};
	struct mpc_bus bus = {
		.type = MP_BUS,
		.busid = MP_ISA_BUS_ID,
		.bustype = { 'I', 'S', 'A', ' ', ' ', ' ' },
	};
	struct mpc_ioapic ioapic = {
		.type = MP_IOAPIC,
		.apicid = (uint8_t)ncpus,
		.apicver = MPTABLE_IOAPIC_VERSION,
		.flags = MP_IOAPIC_ENABLED,
		.apicaddr = (uint32_t)LAYOUT_IOAPIC_BASE,
	};
	uint8_t *p = base + sizeof(hdr);

	p = mp_put_cpus(p, ncpus);
	memcpy(p, &bus, sizeof(bus));
	p += sizeof(bus);
	memcpy(p, &ioapic, sizeof(ioapic));
	p += sizeof(ioapic);
	mp_put_irqs(p, ioapic.apicid);

	memcpy(base, &hdr, sizeof(hdr));
	base[offsetof(struct mpc_table, checksum)] = mp_checksum(base, len);
}

static int mp_write_floating(const struct guest_memory *mem)
{
	struct mpf_intel mpf = {
		.signature = { '_', 'M', 'P', '_' },
		.physptr = (uint32_t)LAYOUT_MPTABLE_START,
		.length = 1,
		.specification = MPTABLE_SPEC_REV,
	};
	uint16_t ebda_seg = (uint16_t)(LAYOUT_EBDA_START >> 4);
	uint16_t base_kb = (uint16_t)(LAYOUT_EBDA_START >> 10);
	int ret;

	mpf.checksum = mp_checksum(&mpf, sizeof(mpf));
	ret = guest_memory_write(mem, LAYOUT_EBDA_START, &mpf, sizeof(mpf));
	/* MP spec 1.4 §4: the BIOS data area tells the OS where the EBDA
	 * (and so the floating pointer) is; base memory ends where it starts. */
	if (!ret)
		ret = guest_memory_write(mem, LAYOUT_BDA_EBDA_SEG, &ebda_seg, sizeof(ebda_seg));
	if (!ret)
		ret = guest_memory_write(mem, LAYOUT_BDA_BASEMEM_KB, &base_kb, sizeof(base_kb));
	return ret;
}

int mptable_write(const struct guest_memory *mem, unsigned ncpus)
{
	uint8_t *table;
	size_t len;

	if (ncpus == 0 || ncpus > MPTABLE_MAX_CPUS)
		return -EINVAL;
	len = mp_table_size(ncpus);
	if (len > LAYOUT_MPTABLE_MAX || len > UINT16_MAX)
		return -E2BIG;
	table = guest_memory_ptr(mem, LAYOUT_MPTABLE_START, len);
	if (!table)
		return -EFAULT;
	memset(table, 0, len);
	mp_fill_table(table, ncpus, len);
	return mp_write_floating(mem);
}

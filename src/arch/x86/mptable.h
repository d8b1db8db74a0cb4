/* Intel MultiProcessor Specification 1.4 tables: how a guest without ACPI
 * finds its CPUs, the I/O APIC and the ISA interrupt routing. */
#ifndef POPEK_ARCH_X86_MPTABLE_H
#define POPEK_ARCH_X86_MPTABLE_H

#include <stdint.h>

#include "vmm/memory.h"

/* xAPIC ids are 8 bits, 0xff is the broadcast id and the I/O APIC takes
 * the id after the last CPU. */
#define MPTABLE_MAX_CPUS 254

#define MPTABLE_SPEC_REV 4        /* MP spec 1.4 */
#define MPTABLE_LAPIC_VERSION 0x14
#define MPTABLE_IOAPIC_VERSION 0x11
#define MPTABLE_IOAPIC_PINS 24    /* KVM's in-kernel I/O APIC */

/* MP spec 1.4 §4.1: the MP floating pointer structure. */
struct mpf_intel {
	char signature[4];        /* "_MP_" */
	uint32_t physptr;         /* MP configuration table address */
	uint8_t length;           /* in 16-byte units: 1 */
	uint8_t specification;    /* 4 */
	uint8_t checksum;         /* all 16 bytes sum to 0 */
	uint8_t feature1;         /* 0: a configuration table is present */
	uint8_t feature2;         /* bit 7 IMCRP: 0, virtual wire mode */
	uint8_t feature3, feature4, feature5;
} __attribute__((packed));

/* MP spec 1.4 §4.2: configuration table header. */
struct mpc_table {
	char signature[4];        /* "PCMP" */
	uint16_t length;          /* base table length, header included */
	uint8_t spec;
	uint8_t checksum;         /* base table sums to 0 */
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount;        /* number of base table entries */
	uint32_t lapic;           /* local APIC address */
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

/* MP spec 1.4 §4.3: base table entry types, in the order they must appear. */
enum mp_entry_type {
	MP_PROCESSOR = 0,
	MP_BUS = 1,
	MP_IOAPIC = 2,
	MP_INTSRC = 3,
	MP_LINTSRC = 4,
};

#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP     0x02
#define MP_IOAPIC_ENABLED 0x01

enum mp_irq_type { MP_INT = 0, MP_NMI = 1, MP_SMI = 2, MP_EXTINT = 3 };

struct mpc_cpu {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature;      /* CPUID.1 EAX: stepping, model, family */
	uint32_t featureflag;     /* CPUID.1 EDX */
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type;
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));

/* I/O (type 3) and local (type 4) interrupt assignment entries share a
 * layout; dstapic 0xff means every local APIC. */
struct mpc_intsrc {
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag;         /* polarity/trigger: 0 conforms to the bus */
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq;
} __attribute__((packed));

/* Writes the floating pointer into the EBDA (and points the BDA at the
 * EBDA), and the configuration table at LAYOUT_MPTABLE_START. Returns 0,
 * -EINVAL for ncpus 0 or above MPTABLE_MAX_CPUS, -E2BIG when the table
 * would not fit LAYOUT_MPTABLE_MAX, -EFAULT when the area is not RAM. */
int mptable_write(const struct guest_memory *mem, unsigned ncpus);

#endif
